/**
 * clang-built objects end to end through `loadCollectionSpec` and `Collection`, on both engines:
 * per-source counting, a socket filter, ring-buffer events read by an async iterator, tail-call
 * dispatch, per-CPU maps and bpf_loop. Expected values are worked out by hand from the C sources
 * (and, where the kernel can be used, compared with its own test runs).
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { BpfMap, Collection, loadCollectionSpec } from '../ts/index'
import { KernelObject, kernelOracle } from './helpers/kernel'
import { IPPROTO_TCP, IPPROTO_UDP, ipv4Packet } from './helpers/packets'

const fixture = (name: string) => join(__dirname, 'fixtures', `${name}.bpf.o`)
const XDP_DROP = 1
const XDP_PASS = 2
const ENGINES = ['interpreter', 'jit'] as const
const oracle = kernelOracle()
const kernelNote = oracle.ok ? 'root, bpftool' : oracle.reason

async function collection(name: string, engine: (typeof ENGINES)[number]) {
  return new Collection(await loadCollectionSpec(fixture(name)), { engine })
}

describe('per-source packet counter (hash map, .text sub-program, atomics)', () => {
  const a = ipv4Packet({ src: [10, 0, 0, 1], payload: 10 })
  const b = ipv4Packet({ src: [10, 0, 0, 2], payload: 100 })
  for (const engine of ENGINES) {
    it(engine, async () => {
      const coll = await collection('pkt_counter', engine)
      const xdp = coll.programs.get('xdp_count')!
      for (const p of [a, a, b]) expect(xdp.run({ data: p }).retval).toBe(XDP_PASS)
      const counts = coll.maps.get('counts')!
      // Keys are the source address as the program read it: network order bytes in a u32.
      const key = (ip: number[]) => new DataView(Uint8Array.from(ip).buffer).getUint32(0, true)
      expect(counts.lookup(key([10, 0, 0, 1]))).toEqual({ packets: 2n, bytes: BigInt(2 * a.length) })
      expect(counts.lookup(key([10, 0, 0, 2]))).toEqual({ packets: 1n, bytes: BigInt(b.length) })
      expect(counts.size).toBe(2)
    })
  }

  it.skipIf(!oracle.ok)(`agrees with the kernel's map contents (${kernelNote})`, async () => {
    const coll = await collection('pkt_counter', 'jit')
    const kernel = KernelObject.load(fixture('pkt_counter'))
    try {
      for (const p of [a, b, a, a]) {
        expect(coll.programs.get('xdp_count')!.run({ data: p }).retval).toBe(kernel.run('xdp_count', p).retval)
      }
      const counts = coll.maps.get('counts')!
      const ours = [...counts.keys()].map((k) => ({
        key: counts.encodeKey(k),
        value: counts.encodeValue(counts.lookup(k)!),
      }))
      const sort = (e: { key: Uint8Array }[]) => [...e].sort((x, y) => Buffer.compare(x.key, y.key))
      expect(sort(ours)).toEqual(sort(kernel.dumpMap('counts')))
    } finally {
      kernel.close()
    }
  })
})

describe('socket filter (array-map config, bpf_skb_load_bytes)', () => {
  const dns = ipv4Packet({ proto: IPPROTO_UDP, dport: 53, payload: 40 })
  const web = ipv4Packet({ proto: IPPROTO_UDP, dport: 80 })
  const tcp = ipv4Packet({ proto: IPPROTO_TCP, dport: 53 })
  for (const engine of ENGINES) {
    it(engine, async () => {
      const coll = await collection('socket_filter', engine)
      const filter = coll.programs.get('udp_port_filter')!
      expect(filter.type).toBe('socket_filter')
      const config = coll.maps.get('config')!
      config.update(0, { port: 53, snaplen: 64, matched: 0 })
      // Matching datagrams are kept up to the snap length; others are dropped (0).
      expect(filter.run({ data: dns }).retval).toBe(64)
      expect(filter.run({ data: web }).retval).toBe(0)
      expect(filter.run({ data: tcp }).retval).toBe(0)
      config.update(0, { port: 53, snaplen: 0, matched: 1 })
      // snaplen 0 keeps the whole packet (skb->len).
      expect(filter.run({ data: dns }).retval).toBe(dns.length)
      expect(config.lookup(0)).toEqual({ port: 53, snaplen: 0, matched: 2 })
    })
  }

  // The kernel's BPF_PROG_TEST_RUN gives a socket filter the packet from its network header on (the
  // Ethernet header is pulled), where our socket_filter type gives the whole frame, as a packet socket
  // does. To compare engines on the same bytes, the kernel gets 14 pad bytes after the Ethernet header
  // (so that its L3 view lines up with the fixture's ETH_HLEN offsets) and we get that same L3 view.
  it.skipIf(!oracle.ok)(`agrees with the kernel on the same bytes (${kernelNote})`, async () => {
    const coll = await collection('socket_filter', 'jit')
    const kernel = KernelObject.load(fixture('socket_filter'))
    try {
      // port 53, snaplen 64: struct filter_config { u16 port; u16 snaplen; u32 matched; }
      kernel.updateMap('config', Uint8Array.of(0, 0, 0, 0), Uint8Array.of(53, 0, 64, 0, 0, 0, 0, 0))
      coll.maps.get('config')!.update(0, { port: 53, snaplen: 64, matched: 0 })
      const filter = coll.programs.get('udp_port_filter')!
      let matched = 0
      for (const p of [dns, web, tcp, dns]) {
        const padded = new Uint8Array(p.length + 14)
        padded.set(p.subarray(0, 14))
        padded.set(p.subarray(14), 28)
        const k = kernel.run('udp_port_filter', padded).retval
        // skb->protocol as the kernel stores it: the Ethernet type in network order (0x0800 -> 0x0008).
        const ours = filter.run({ data: padded.subarray(14), ctx: { protocol: 0x0008 } }).retval
        expect(ours).toBe(k)
        if (k !== 0) matched++
      }
      expect(matched).toBe(2)
      expect(coll.maps.get('config')!.lookup(new Uint8Array(4))).toEqual({ port: 53, snaplen: 64, matched: 2 })
      expect(kernel.dumpMap('config')[0]!.value).toEqual(Uint8Array.of(53, 0, 64, 0, 2, 0, 0, 0))
    } finally {
      kernel.close()
    }
  })
})

describe('ring buffer events read by an async iterator', () => {
  for (const engine of ENGINES) {
    it(engine, async () => {
      const spec = await loadCollectionSpec(fixture('ringbuf'))
      const coll = new Collection(spec, { engine })
      const events = coll.maps.get('events')!
      // struct event is only the type of a local, so the object has no BTF for it: decode by its C
      // layout (u32 saddr @0, u32 daddr @4, u16 len @8, u8 protocol @10, u8 ttl @11, u64 ts @16).
      const event = {
        decode(r: Uint8Array) {
          const v = new DataView(r.buffer, r.byteOffset, r.byteLength)
          return {
            saddr: v.getUint32(0, true),
            daddr: v.getUint32(4, true),
            len: v.getUint16(8, true),
            protocol: v.getUint8(10),
            ttl: v.getUint8(11),
            ts: v.getBigUint64(16, true),
          }
        },
      }
      const sample = coll.programs.get('xdp_sample')!
      const p1 = ipv4Packet({ src: [1, 2, 3, 4], dst: [5, 6, 7, 8], proto: IPPROTO_TCP })
      const p2 = ipv4Packet({ src: [9, 9, 9, 9], payload: 3 })
      sample.run({ data: p1 })
      sample.run({ data: p2 })
      const got = []
      const controller = new AbortController()
      for await (const rec of events.records({ signal: controller.signal, pollMs: 10 })) {
        got.push(event.decode(rec) as Record<string, unknown>)
        if (got.length === 2) controller.abort()
      }
      const addr = (ip: number[]) => new DataView(Uint8Array.from(ip).buffer).getUint32(0, true)
      expect(got.map(({ ts, ...rest }) => rest)).toEqual([
        { saddr: addr([1, 2, 3, 4]), daddr: addr([5, 6, 7, 8]), len: p1.length, protocol: IPPROTO_TCP, ttl: 64 },
        { saddr: addr([9, 9, 9, 9]), daddr: addr([10, 0, 0, 2]), len: p2.length, protocol: IPPROTO_UDP, ttl: 64 },
      ])
      // Timestamps come from bpf_ktime_get_ns: monotonic.
      expect((got[1]!.ts as bigint) >= (got[0]!.ts as bigint)).toBe(true)
    })
  }
})

describe('tail-call dispatch by protocol (prog_array)', () => {
  for (const engine of ENGINES) {
    it(engine, async () => {
      const coll = await collection('tail_calls', engine)
      const table = coll.maps.get('jump_table')!
      const dispatch = coll.programs.get('dispatch')!
      // An empty slot: the tail call falls through and dispatch returns XDP_PASS itself.
      expect(dispatch.run({ data: ipv4Packet({ proto: IPPROTO_UDP }) }).retval).toBe(XDP_PASS)
      table.setProgram(0, coll.programs.get('handle_tcp')!)
      table.setProgram(1, coll.programs.get('handle_udp')!)
      table.setProgram(2, coll.programs.get('handle_other')!)
      expect(dispatch.run({ data: ipv4Packet({ proto: IPPROTO_UDP }) }).retval).toBe(XDP_DROP)
      expect(dispatch.run({ data: ipv4Packet({ proto: IPPROTO_TCP }) }).retval).toBe(XDP_PASS)
      expect(dispatch.run({ data: ipv4Packet({ proto: 1 }) }).retval).toBe(XDP_PASS)
      const handled = coll.maps.get('handled')!
      expect([0, 1, 2].map((i) => handled.lookup(i))).toEqual([1n, 1n, 1n])
    })
  }
})

describe('per-CPU maps', () => {
  for (const engine of ENGINES) {
    it(engine, async () => {
      const coll = await collection('percpu', engine)
      const prog = coll.programs.get('percpu_stats')!
      // The program keys port_bytes by the UDP destination port (bytes 2-3 of the header).
      const udp = ipv4Packet({ proto: IPPROTO_UDP, dport: 5353 })
      prog.run({ data: udp })
      prog.run({ data: udp })
      // One value per slot; this thread's runs all land in one slot.
      const stats = coll.maps.get('proto_stats')!.lookup(IPPROTO_UDP) as unknown as Array<{
        packets: bigint
        bytes: bigint
      }>
      expect(Array.isArray(stats)).toBe(true)
      expect(stats.reduce((n, s) => n + s.packets, 0n)).toBe(2n)
      expect(stats.reduce((n, s) => n + s.bytes, 0n)).toBe(BigInt(2 * udp.length))
      expect(stats.filter((s) => s.packets > 0n).length).toBe(1)
      const bytes = coll.maps.get('port_bytes')!.lookup(5353) as unknown as bigint[]
      expect(bytes.reduce((n, b) => n + b, 0n)).toBe(BigInt(2 * udp.length))
    })
  }
})

describe('bpf_loop with a callback', () => {
  for (const engine of ENGINES) {
    it(engine, async () => {
      const coll = await collection('bpf_loop', engine)
      const prog = coll.programs.get('xdp_loop_sum')!
      // 14 bytes 1..14 (an XDP test run needs an Ethernet header's worth): the callback stops at
      // index 14 (past data_end) after 14 bytes.
      const data = Uint8Array.from({ length: 14 }, (_, i) => i + 1)
      expect(prog.run({ data }).retval).toBe(XDP_PASS)
      expect(coll.variable('last_sum')).toBe(105)
      // bpf_loop returns the number of callback calls: 14 that continued plus the one that stopped.
      expect(coll.variable('iterations')).toBe(15)
    })
  }
})

describe('maps reused by pin or replacement must have the shape the object wants (libbpf map_is_reuse_compat)', () => {
  // pinned.c: shared_total is array, key 4, value 8, max_entries 1, pinned by name.
  const wants = 'array key_size 4 value_size 8 max_entries 1 map_flags 0x0 map_extra 0'
  const hash = () => new BpfMap({ type: 'hash', keySize: 16, valueSize: 2, maxEntries: 7 })
  let n = 0
  const pinPath = () => `/test/reuse-${process.pid}-${n++}`

  for (const engine of ENGINES) {
    it(`${engine}: two collections share a compatible pinned map`, async () => {
      const spec = await loadCollectionSpec(fixture('pinned'))
      const dir = pinPath()
      const a = new Collection(spec, { engine, pinPath: dir })
      const b = new Collection(spec, { engine, pinPath: dir })
      expect(b.maps.get('shared_total')!.id).toBe(a.maps.get('shared_total')!.id)
      // The socket filter adds skb->len: 60 then 40 bytes.
      a.programs.get('count_shared')!.run({ data: new Uint8Array(60) })
      b.programs.get('count_shared')!.run({ data: new Uint8Array(40) })
      expect(a.maps.get('shared_total')!.lookup(0)).toBe(100n)
    })
  }

  it('a pinned map of another shape is EINVAL naming the map and both shapes', async () => {
    const spec = await loadCollectionSpec(fixture('pinned'))
    const dir = pinPath()
    hash().pin(`${dir}/shared_total`)
    expect(() => new Collection(spec, { pinPath: dir })).toThrow(
      expect.objectContaining({
        code: 'EINVAL',
        message: `EINVAL: map 'shared_total': the map pinned at ${dir}/shared_total is hash key_size 16 value_size 2 max_entries 7 map_flags 0x0 map_extra 0, but the object wants ${wants}`,
      }),
    )
  })

  it('a replacement of another shape is EINVAL, one of the same shape is used', async () => {
    const spec = await loadCollectionSpec(fixture('pinned'))
    expect(() => new Collection(spec, { pinPath: pinPath(), mapReplacements: { shared_total: hash() } })).toThrow(
      expect.objectContaining({
        code: 'EINVAL',
        message: `EINVAL: map 'shared_total': the replacement map is hash key_size 16 value_size 2 max_entries 7 map_flags 0x0 map_extra 0, but the object wants ${wants}`,
      }),
    )
    // Flags count too: a mmapable array (BPF_F_MMAPABLE = 1 << 10) is another shape.
    const mmapable = new BpfMap({ type: 'array', keySize: 4, valueSize: 8, maxEntries: 1, flags: 1 << 10 })
    expect(() => new Collection(spec, { pinPath: pinPath(), mapReplacements: { shared_total: mmapable } })).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringContaining('map_flags 0x400') }),
    )
    const same = new BpfMap({ type: 'array', keySize: 4, valueSize: 8, maxEntries: 1 })
    const coll = new Collection(spec, { pinPath: pinPath(), mapReplacements: { shared_total: same } })
    expect(coll.maps.get('shared_total')!.id).toBe(same.id)
    expect(() => new Collection(spec, { mapReplacements: { shared_total: {} as BpfMap } })).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringContaining("mapReplacements['shared_total']") }),
    )
  })
})
