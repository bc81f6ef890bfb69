import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  assemble,
  BpfMap,
  Collection,
  loadCollectionSpec,
  MapError,
  PerfBuffer,
  type PerfEvent,
  Program,
  possibleCpus,
} from '../ts/index'
import { KernelObject, kernelOracle } from './helpers/kernel'
import { IPPROTO_TCP, ipv4Packet } from './helpers/packets'

// r6 = perf_event_output(ctx, map[0], BPF_F_CURRENT_CPU, r10 - 8 = ctx's first u32, 4);
// r0 = cpu | r6 << 32.
const OUTPUT = assemble(`
    r6 = r1
    r2 = *(u32 *)(r1 + 0)
    *(u32 *)(r10 - 8) = r2
    r1 = r6
    r2 = map[0] ll
    r3 = 0xffffffff ll
    r4 = r10
    r4 += -8
    r5 = 4
    call 25
    r6 = r0
    call 8
    r6 <<= 32
    r0 |= r6
    exit
`)

// A kprobe's context (struct pt_regs, 168 bytes on x86-64) whose first u32 is n.
const u32 = (n: number) => {
  const b = new Uint8Array(168)
  new DataView(b.buffer).setUint32(0, n, true)
  return b
}
const sample = (n: number) => u32(n).subarray(0, 4)
const result = (r0: bigint) => ({ ret: Number(BigInt.asIntN(32, r0 >> 32n)), cpu: Number(r0 & 0xffffffffn) })

describe('perf event arrays and PerfBuffer', () => {
  it('a map without max_entries in a definition is refused; maps take key and value 4, as the kernel', () => {
    expect(() => new BpfMap({ type: 'perf_event_array', keySize: 4, valueSize: 8, maxEntries: 4 })).toThrow(MapError)
    const m = new BpfMap({ type: 'perf_event_array', keySize: 4, valueSize: 4, maxEntries: 4 })
    // No lookups from user space (the kernel's ENOTSUPP, 524).
    expect(() => m.lookup(0)).toThrow(expect.objectContaining({ code: 'ENOTSUPP' }))
  })

  for (const engine of ['interpreter', 'jit'] as const) {
    it(`${engine}: samples arrive per CPU through the async iterator; no reader: -ENOENT`, async () => {
      const map = new BpfMap({ type: 'perf_event_array', keySize: 4, valueSize: 4, maxEntries: possibleCpus() })
      const prog = new Program({ type: 'tracing', instructions: OUTPUT, maps: [map], engine })
      // Nobody opened the slot: -ENOENT (-2), as a perf event array slot without an event.
      expect(result(prog.run({ ctx: u32(1) }).r0).ret).toBe(-2)
      const pb = new PerfBuffer(map, { pageCount: 1 })
      expect(pb.cpuCount).toBe(possibleCpus())
      const { ret, cpu } = result(prog.run({ ctx: u32(7) }).r0)
      expect(ret).toBe(0)
      const got: PerfEvent[] = []
      setTimeout(() => prog.run({ ctx: u32(8) }), 30)
      for await (const e of pb) {
        got.push(e)
        if (got.length === 2) break
      }
      expect(got).toEqual([
        { type: 'sample', cpu, data: sample(7) },
        { type: 'sample', cpu: expect.any(Number), data: sample(8) },
      ])
      pb.close()
      expect(result(prog.run({ ctx: u32(9) }).r0).ret).toBe(-2)
    })
  }

  it('a full ring drops and counts; onLost hears the count before the next sample', async () => {
    // One page (4096 bytes, at most 4095 in use): 4-byte samples take 16 bytes, 255 fit.
    const map = new BpfMap({ type: 'perf_event_array', keySize: 4, valueSize: 4, maxEntries: possibleCpus() })
    const prog = new Program({ type: 'tracing', instructions: OUTPUT, maps: [map] })
    const events: string[] = []
    const pb = new PerfBuffer(map, {
      pageCount: 1,
      autoPoll: false,
      onSample: (cpu, data) => events.push(`s${cpu}:${data[0]}`),
      onLost: (cpu, n) => events.push(`l${cpu}:${n}`),
    })
    const rets: number[] = []
    let cpu = -1
    for (let n = 0; n < 260; n++) {
      const r = result(prog.run({ ctx: u32(n) }).r0)
      rets.push(r.ret)
      cpu = r.cpu
    }
    expect(rets.filter((r) => r === 0)).toHaveLength(255)
    // The kernel's perf_output_begin fails with -ENOSPC (-28) on a full ring.
    expect(rets.slice(255)).toEqual([-28, -28, -28, -28, -28])
    expect(pb.lostTotal).toBe(5)
    expect(pb.consume()).toBe(255)
    expect(events[0]).toBe(`s${cpu}:0`)
    events.length = 0
    expect(result(prog.run({ ctx: u32(1) }).r0).ret).toBe(0)
    expect(await pb.poll(1000)).toBe(2)
    expect(events).toEqual([`l${cpu}:5`, `s${cpu}:1`])
    pb.close()
  })

  it('callbacks read in the background, off the JavaScript thread, until close()', async () => {
    const map = new BpfMap({ type: 'perf_event_array', keySize: 4, valueSize: 4, maxEntries: possibleCpus() })
    const prog = new Program({ type: 'tracing', instructions: OUTPUT, maps: [map] })
    const seen: number[] = []
    let done!: () => void
    const all = new Promise<void>((r) => {
      done = r
    })
    const pb = new PerfBuffer(map, {
      pollMs: 20,
      onSample: (_cpu, data) => {
        seen.push(data[0]!)
        if (seen.length === 3) done()
      },
    })
    for (const n of [3, 4, 5]) setTimeout(() => prog.run({ ctx: u32(n) }), 10 * n)
    await all
    pb.close()
    expect(seen).toEqual([3, 4, 5])
  })

  it('bad options are typed errors', () => {
    const map = new BpfMap({ type: 'perf_event_array', keySize: 4, valueSize: 4, maxEntries: 2 })
    expect(() => new PerfBuffer(map, { pageCount: 3 })).toThrow(expect.objectContaining({ code: 'EINVAL' }))
    expect(() => new PerfBuffer(map, { onSample: 5 as never })).toThrow(MapError)
    const array = new BpfMap({ type: 'array', keySize: 4, valueSize: 4, maxEntries: 2 })
    expect(() => new PerfBuffer(array)).toThrow(expect.objectContaining({ code: 'EINVAL' }))
    expect(() => new PerfBuffer({} as never)).toThrow()
  })
})

// r0 = bpf_get_stackid(ctx, map[0], flags)
const stackid = (flags: number) =>
  assemble(`
    r2 = map[0] ll
    r3 = ${flags}
    call 27
    exit
`)

describe('stack trace maps', () => {
  it('bpf_get_stackid stores the run stack; lookups give it back zero-padded', () => {
    // One entry, one bucket: every stack's id is 0.
    const map = new BpfMap({ type: 'stack_trace', keySize: 4, valueSize: 32, maxEntries: 1 })
    const prog = new Program({ type: 'tracing', instructions: stackid(0), maps: [map], mode: 'verified' })
    // A kprobe's context: struct pt_regs (168 bytes on x86-64).
    const ctx = new Uint8Array(168)
    expect(prog.run({ ctx, stack: [0xffffffff81000010n, 0xffffffff81000020n] }).r0).toBe(0n)
    const v = map.lookup(0) as Uint8Array
    const dv = new DataView(v.buffer, v.byteOffset, v.byteLength)
    expect([0, 8, 16, 24].map((o) => dv.getBigUint64(o, true))).toEqual([
      0xffffffff81000010n,
      0xffffffff81000020n,
      0n,
      0n,
    ])
    // A different stack in the taken bucket: -EEXIST (-17); no stack: -EFAULT (-14).
    expect(BigInt.asIntN(64, prog.run({ ctx, stack: [1, 2] }).r0)).toBe(-17n)
    expect(BigInt.asIntN(64, prog.run({ ctx }).r0)).toBe(-14n)
    // BPF_F_USER_STACK | BPF_F_REUSE_STACKID: the user stack replaces it.
    const user = new Program({ type: 'tracing', instructions: stackid(0x500), maps: [map] })
    expect(user.run({ ctx, stack: [1], userStack: [0x401000] }).r0).toBe(0n)
    const w = map.lookup(0) as Uint8Array
    expect(new DataView(w.buffer, w.byteOffset, w.byteLength).getBigUint64(0, true)).toBe(0x401000n)
    expect(() => prog.run({ ctx, stack: new Array(128).fill(1) })).toThrow(expect.objectContaining({ code: 'EINVAL' }))
  })
})

const fixture = (name: string) => join(__dirname, 'fixtures', `${name}.bpf.o`)
const oracle = kernelOracle()
const kernelNote = oracle.ok ? 'root, bpftool' : oracle.reason

describe('a clang-built object with a perf event array and a stack trace map', () => {
  const p1 = ipv4Packet({ src: [1, 2, 3, 4], proto: IPPROTO_TCP })
  for (const engine of ['interpreter', 'jit'] as const) {
    it(`${engine}: loads verified; samples carry the struct and 14 packet bytes; stacks are counted by id`, async () => {
      const coll = new Collection(await loadCollectionSpec(fixture('perf_events')), { engine, mode: 'verified' })
      const events = coll.maps.get('events')!
      // Declared without max_entries: one slot per CPU, as libbpf sizes it.
      expect(events.maxEntries).toBe(possibleCpus())
      const xdp = coll.programs.get('xdp_perf')!
      // No reader: bpf_perf_event_output fails (-ENOENT) and the program drops (XDP_DROP = 1).
      expect(xdp.run({ data: p1 }).retval).toBe(1)
      const pb = new PerfBuffer(events, { pageCount: 4 })
      expect(xdp.run({ data: p1 }).retval).toBe(2)
      const [e, ...rest] = pb.read()
      expect(rest).toEqual([])
      expect(e?.type).toBe('sample')
      const data = (e as { data: Uint8Array }).data
      // struct event {u32 saddr; u16 len; u8 protocol; u8 ttl} (8 bytes), then the Ethernet header,
      // then 6 zeros: the kernel pads a raw sample so its u32 size and data end on 8 bytes, and
      // libbpf hands the padded size on (perf-sample.test.ts compares with the kernel).
      expect(data.length).toBe(8 + 14 + 6)
      expect(data.subarray(22)).toEqual(new Uint8Array(6))
      const v = new DataView(data.buffer, data.byteOffset, data.byteLength)
      expect([v.getUint32(0, true), v.getUint16(4, true), data[6], data[7]]).toEqual([
        new DataView(Uint8Array.of(1, 2, 3, 4).buffer).getUint32(0, true),
        p1.length,
        IPPROTO_TCP,
        64,
      ])
      expect(data.subarray(8, 22)).toEqual(p1.subarray(0, 14))
      pb.close()

      const kprobe = coll.programs.get('count_stacks')!
      const ctx = new Uint8Array(168)
      const a = [0xffffffff81000100n, 0xffffffff81000200n]
      const b = [0xffffffff81000300n]
      for (const stack of [a, a, b, a]) kprobe.run({ ctx, stack })
      const stacks = coll.maps.get('stacks')!
      const counts = coll.maps.get('counts')!
      const byStack = new Map<string, bigint>()
      for (const [id, n] of counts) {
        const s = stacks.lookup(id as number) as Uint8Array
        const w = new DataView(s.buffer, s.byteOffset, s.byteLength)
        const frames = [0, 8].map((o) => w.getBigUint64(o, true)).filter((x) => x !== 0n)
        byStack.set(frames.map((x) => x.toString(16)).join(','), n as bigint)
      }
      expect(byStack).toEqual(
        new Map([
          [a.map((x) => x.toString(16)).join(','), 3n],
          [b.map((x) => x.toString(16)).join(','), 1n],
        ]),
      )
    })
  }

  it.skipIf(!oracle.ok)(`without a reader the kernel drops too (${kernelNote})`, () => {
    const kernel = KernelObject.load(fixture('perf_events'))
    try {
      // The kernel's test run has no perf event in the slot either: -ENOENT, XDP_DROP.
      expect(kernel.run('xdp_perf', p1).retval).toBe(1)
    } finally {
      kernel.close()
    }
  })
})
