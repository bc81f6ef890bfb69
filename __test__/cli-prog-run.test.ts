/**
 * `ebpf prog run` takes bpftool's argument order and prints what `bpftool prog run` prints. The
 * oracle is bpftool itself: the same object loaded into the live kernel and test-run with the same
 * files, its output compared with ours line for line (durations aside). Without root and bpftool
 * the comparisons skip and say why; the argument handling is tested either way.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KernelObject, kernelOracle } from './helpers/kernel'
import { ipv4Packet } from './helpers/packets'

const root = join(__dirname, '..')
const bin = join(root, 'bin', 'ebpf.js')
const FIREWALL = join(__dirname, 'fixtures', 'xdp_firewall.bpf.o')
const TC = join(__dirname, 'fixtures', 'tc_skb.bpf.o')

let work = ''
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'ebpf-prog-run-'))
})
afterAll(() => rmSync(work, { recursive: true, force: true }))

function ebpf(args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: work, encoding: 'utf8' })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

const file = (name: string, bytes: Uint8Array): string => {
  const p = join(work, name)
  writeFileSync(p, bytes)
  return p
}

/** Durations differ from run to run and engine to engine: compare the rest. */
const withoutDuration = (text: string) => text.replace(/duration( \(average\))?: \d+ns/, 'duration$1: Dns')

describe('ebpf prog run: arguments', () => {
  it('takes data_in, repeat and name as bpftool does, and says what is wrong with the rest', () => {
    const pkt = file('udp.bin', ipv4Packet({ proto: 17, dport: 53 }))
    const ok = ebpf(['prog', 'run', FIREWALL, 'name', 'xdp_firewall', 'data_in', pkt, 'repeat', '4'])
    expect(ok.stderr).toBe('')
    expect(ok.stdout).toMatch(/^Return value: \d+, duration \(average\): \d+ns\n$/)
    const unknown = ebpf(['prog', 'run', FIREWALL, 'data_in', pkt, 'bogus', '1'])
    expect(unknown.status).toBe(1)
    expect(unknown.stderr).toContain("unknown argument 'bogus'")
    const both = ebpf(['prog', 'run', FIREWALL, 'data_in', pkt, '--data', pkt])
    expect(both.status).toBe(1)
    expect(both.stderr).toContain('data_in and --data say the same thing')
    const missing = ebpf(['prog', 'run', FIREWALL, 'data_in'])
    expect(missing.status).toBe(1)
    expect(missing.stderr).toContain('data_in needs a value')
  })

  it('--ctx by field names gives the same context as the bytes of linux/bpf.h layout', () => {
    const pkt = file('tcp.bin', ipv4Packet({ proto: 6, dport: 80 }))
    // struct xdp_md: data, data_end, data_meta, ingress_ifindex (offset 12), rx_queue_index (16), egress_ifindex.
    const bytes = new Uint8Array(24)
    new DataView(bytes.buffer).setUint32(12, 7, true)
    new DataView(bytes.buffer).setUint32(16, 2, true)
    const ctxIn = file('ctx.bin', bytes)
    const byFields = ebpf(['run', FIREWALL, '--data', pkt, '--ctx', 'ingress_ifindex=7,rx_queue_index=2', '--json'])
    const byFile = ebpf(['run', FIREWALL, '--data', pkt, '--ctx-in', ctxIn, '--json'])
    expect(byFields.status).toBe(0)
    const a = JSON.parse(byFields.stdout)
    const b = JSON.parse(byFile.stdout)
    expect(a.ctx).toEqual(b.ctx)
    expect(a.ctx.ingress_ifindex).toBe(7)
    expect(a.ctx.rx_queue_index).toBe(2)
    const bad = ebpf(['run', FIREWALL, '--data', pkt, '--ctx', 'ingress_ifindex=x'])
    expect(bad.status).toBe(1)
    expect(bad.stderr).toContain('--ctx ingress_ifindex must be an integer')
    const twice = ebpf(['run', FIREWALL, '--data', pkt, '--ctx', 'mark=1', '--ctx-in', ctxIn])
    expect(twice.status).toBe(1)
    expect(twice.stderr).toContain('give the context once')
  })
})

const oracle = kernelOracle()
describe.skipIf(!oracle.ok)(
  `ebpf prog run against bpftool prog run${oracle.ok ? '' : ` (skipped: ${oracle.reason})`}`,
  () => {
    let firewall: KernelObject
    let tc: KernelObject
    beforeAll(() => {
      firewall = KernelObject.load(FIREWALL)
      tc = KernelObject.load(TC)
    })
    afterAll(() => {
      firewall?.close()
      tc?.close()
    })

    it('prints the retval line and the data_out hex dump as bpftool does', () => {
      for (const [i, spec] of [
        { proto: 6, dport: 22 },
        { proto: 17, dport: 53, payload: 11 },
        { proto: 1 },
      ].entries()) {
        const pkt = file(`p${i}.bin`, ipv4Packet(spec))
        for (const repeat of ['1', '3']) {
          const args = ['data_in', pkt, 'data_out', '-', 'repeat', repeat]
          const ours = ebpf(['prog', 'run', FIREWALL, ...args])
          expect(ours.stderr).toBe('')
          expect(withoutDuration(ours.stdout)).toBe(withoutDuration(firewall.runText('xdp_firewall', args)))
        }
      }
    })

    it('writes data_out and ctx_out files with the kernel bytes, and prints its JSON object', () => {
      const pkt = file('tc.bin', ipv4Packet({ proto: 17, dport: 53, payload: 5 }))
      // struct __sk_buff with mark (offset 8) and priority (32) set, as the kernel's test run takes it.
      const skb = new Uint8Array(192)
      new DataView(skb.buffer).setUint32(8, 0x1234, true)
      new DataView(skb.buffer).setUint32(32, 3, true)
      const ctxIn = file('skb.bin', skb)
      for (const prog of ['tc_fields', 'tc_nat', 'tc_misc']) {
        const oursData = join(work, `${prog}.ours.data`)
        const oursCtx = join(work, `${prog}.ours.ctx`)
        const kernData = join(work, `${prog}.kern.data`)
        const kernCtx = join(work, `${prog}.kern.ctx`)
        const ours = ebpf([
          'prog',
          'run',
          TC,
          'name',
          prog,
          'data_in',
          pkt,
          'data_out',
          oursData,
          'ctx_in',
          ctxIn,
          'ctx_out',
          oursCtx,
        ])
        const kern = tc.runText(prog, ['data_in', pkt, 'data_out', kernData, 'ctx_in', ctxIn, 'ctx_out', kernCtx])
        expect(ours.stderr, prog).toBe('')
        expect(withoutDuration(ours.stdout), prog).toBe(withoutDuration(kern))
        expect(readFileSync(oursData), prog).toEqual(readFileSync(kernData))
        expect(readFileSync(oursCtx), prog).toEqual(readFileSync(kernCtx))
        const oursJson = JSON.parse(
          ebpf(['prog', 'run', TC, 'name', prog, 'data_in', pkt, 'data_out', '-', '--json']).stdout,
        )
        const kernJson = JSON.parse(tc.runText(prog, ['data_in', pkt, 'data_out', '-'], true))
        expect(Object.keys(oursJson).sort(), prog).toEqual(Object.keys(kernJson).sort())
        expect({ ...oursJson, duration: 0 }, prog).toEqual({ ...kernJson, duration: 0 })
      }
    })
  },
)
