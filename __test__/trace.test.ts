/**
 * Instruction traces (`run({ trace: true })`, `formatTrace`, `ebpf run --trace`). Expected steps
 * are worked out by hand from the programs (each comment says how); the C line of a fixture's
 * step comes from its C source, read here.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { assemble, Collection, formatTrace, LoadError, loadCollectionSpecSync, Program, TrapError } from '../ts/index'
import { ipv4Packet } from './helpers/packets'

const SUM = `r0 = 1
r2 = *(u32 *)(r1 + 0)
r0 += r2
*(u64 *)(r10 - 8) = r0
if r0 > 5 goto +1
r0 = 0
exit`

/**
 * With data 05 00 00 00: r0 = 1; r2 = 5 (the u32 at data+0); r0 = 6; 6 stored at stack-8; 6 > 5
 * jumps over slot 5 to the exit at slot 6. The texts are the kernel verifier log's.
 */
const SUM_STEPS = [
  { pc: 0, insn: '(b7) r0 = 1', regs: { r0: 1n } },
  {
    pc: 1,
    insn: '(61) r2 = *(u32 *)(r1 +0)',
    regs: { r2: 5n },
    mem: { kind: 'load', size: 4, place: 'data+0', value: 5n },
  },
  { pc: 2, insn: '(0f) r0 += r2', regs: { r0: 6n } },
  { pc: 3, insn: '(7b) *(u64 *)(r10 -8) = r0', regs: {}, mem: { kind: 'store', size: 8, place: 'stack-8', value: 6n } },
  { pc: 4, insn: '(25) if r0 > 0x5 goto pc+1', regs: {} },
  { pc: 6, insn: '(95) exit', regs: {} },
]

describe('run({ trace: true })', () => {
  for (const engine of ['interpreter', 'jit'] as const) {
    it(`lists every step with the registers it wrote and the memory it touched (${engine})`, () => {
      const p = new Program({ instructions: assemble(SUM), engine })
      const res = p.run({ data: new Uint8Array([5, 0, 0, 0]), trace: true })
      expect(res.r0).toBe(6n)
      expect(res.trace).toEqual({ steps: SUM_STEPS, dropped: 0, limit: 10_000 })
    })
  }

  it('keeps the last traceLimit steps and counts the ones before', () => {
    const p = new Program({ instructions: assemble(SUM) })
    const res = p.run({ data: new Uint8Array([5, 0, 0, 0]), traceLimit: 2 })
    expect(res.trace).toEqual({ steps: SUM_STEPS.slice(4), dropped: 4, limit: 2 })
  })

  it('gives the trace up to a trap on the TrapError', () => {
    // r2 = r1 (a pointer: shown as its place); the u32 at data+8 lies past 4 bytes of data.
    const p = new Program({ instructions: assemble('r2 = r1\nr0 = *(u32 *)(r1 + 8)\nexit') })
    let err: unknown
    try {
      p.run({ data: new Uint8Array(4), trace: true })
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(TrapError)
    expect((err as TrapError).trace?.steps).toEqual([
      { pc: 0, insn: '(bf) r2 = r1', regs: { r2: 'data+0' } },
      { pc: 1, insn: '(61) r0 = *(u32 *)(r1 +8)', regs: {}, mem: { kind: 'load', size: 4, place: 'data+8' } },
    ])
  })

  it('formats steps as the kernel verifier log does', () => {
    const p = new Program({ instructions: assemble(SUM) })
    const res = p.run({ data: new Uint8Array([5, 0, 0, 0]), trace: true })
    expect(formatTrace(res.trace!).split('\n')).toEqual([
      '0: (b7) r0 = 1  ; R0=0x1',
      '1: (61) r2 = *(u32 *)(r1 +0)  ; R2=0x5 [data+0]=0x5',
      '2: (0f) r0 += r2  ; R0=0x6',
      '3: (7b) *(u64 *)(r10 -8) = r0  ; [stack-8]=0x6',
      '4: (25) if r0 > 0x5 goto pc+1',
      '6: (95) exit',
    ])
  })

  it('rejects bad trace options and traces in the batch forms', () => {
    const p = new Program({ instructions: assemble(SUM) })
    for (const bad of [{ traceLimit: 0 }, { traceLimit: 1.5 }, { trace: 'yes' }, { trace: false, traceLimit: 3 }]) {
      expect(() => p.run({ data: new Uint8Array(4), ...(bad as object) })).toThrow(LoadError)
    }
    expect(() => p.runBatch([new Uint8Array(4)], { trace: true })).toThrow(/batch forms record no traces/)
  })

  it("names each step's C source line from the object's line info", () => {
    const file = join(__dirname, 'fixtures', 'xdp_firewall.bpf.o')
    const source = readFileSync(join(__dirname, 'fixtures', 'xdp_firewall.c'), 'utf8').split('\n')
    const protoLine = source.findIndex((l) => l.includes('eth->h_proto != bpf_htons(ETH_P_IP)')) + 1
    const coll = new Collection(loadCollectionSpecSync(readFileSync(file)))
    const p = coll.programs.get('xdp_firewall')!
    const res = p.run({ data: ipv4Packet({ src: [10, 0, 0, 1], dst: [10, 0, 0, 2] }), trace: true })
    expect(res.retval).toBe(2) // XDP_PASS: no blocklist entry
    const steps = res.trace!.steps
    expect(steps.length).toBe(res.insnCount)
    // Bytes 12 and 13 of the frame are the EtherType (h_proto): read on the C line that tests it.
    const proto = steps.filter((s) => s.mem?.kind === 'load' && /^data\+1[23]$/.test(s.mem.place ?? ''))
    expect(proto.length).toBeGreaterThan(0)
    for (const s of proto) expect(s.source?.line).toBe(protoLine)
    expect(steps.at(-1)!.insn).toBe('(95) exit')
    expect(formatTrace(res.trace!)).toContain(`; ${source[protoLine - 1]!.trim()} @ `)
  })
})

describe('ebpf run --trace', () => {
  const work = mkdtempSync(join(tmpdir(), 'ebpf-trace-'))
  afterAll(() => rmSync(work, { recursive: true, force: true }))
  const bin = join(__dirname, '..', 'bin', 'ebpf.js')

  it('prints the steps after the result', () => {
    const prog = join(work, 'sum.s')
    writeFileSync(prog, `${SUM}\n`)
    const r = spawnSync(process.execPath, [bin, 'run', prog, '--hex', '05000000', '--trace'], { encoding: 'utf8' })
    expect(r.status).toBe(0)
    expect(r.stdout).toContain(
      'instructions:\n0: (b7) r0 = 1  ; R0=0x1\n1: (61) r2 = *(u32 *)(r1 +0)  ; R2=0x5 [data+0]=0x5\n',
    )
    const j = spawnSync(process.execPath, [bin, 'run', prog, '--hex', '05000000', '--trace-limit', '1', '--json'], {
      encoding: 'utf8',
    })
    expect(JSON.parse(j.stdout).insnTrace).toEqual({
      dropped: 5,
      limit: 1,
      steps: [{ pc: 6, insn: '(95) exit', regs: {} }],
    })
  })
})
