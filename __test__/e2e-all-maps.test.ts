/**
 * One clang-built XDP program that uses every map type (fixtures/all_maps.c), run on both engines;
 * every map is then read from JavaScript and compared with what the C source says it must hold.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { BpfMap, Collection, loadCollectionSpec } from '../ts/index'
import { IPPROTO_TCP, IPPROTO_UDP, ipv4Packet } from './helpers/packets'

const XDP_DROP = 1
const XDP_PASS = 2
const IN_NET = 1
const MAYBE_SEEN = 2
const HAS_HASH_INNER = 4

// The program keys by the source address as loaded from the packet: network-order bytes in a u32.
const addr = (ip: number[]) => new DataView(Uint8Array.from(ip).buffer).getUint32(0, true)
const u32s = (recs: Uint8Array[]) => recs.map((r) => new DataView(r.buffer, r.byteOffset).getUint32(0, true))
const sum = (values: unknown) => (values as bigint[]).reduce((a, b) => a + b, 0n)

describe('every map type from one program', () => {
  for (const engine of ['interpreter', 'jit'] as const) {
    it(engine, async () => {
      const coll = new Collection(await loadCollectionSpec(join(__dirname, 'fixtures', 'all_maps.bpf.o')), { engine })
      const m = (name: string) => coll.maps.get(name)!
      const prog = coll.programs.get('all_maps')!
      // 10.0.0.0/8 is a known net; 10.0.0.1 has been "seen"; outer_hash[1] gets a fresh inner array.
      m('nets').update({ prefixlen: 8, addr: addr([10, 0, 0, 0]) }, 1)
      m('seen').push(addr([10, 0, 0, 1]))
      const hashInner = new BpfMap({ type: 'array', keySize: 4, valueSize: 8, maxEntries: 1 })
      m('outer_hash').update(1, hashInner.id)

      const p1 = ipv4Packet({ src: [10, 0, 0, 1], proto: IPPROTO_UDP })
      const p2 = ipv4Packet({ src: [10, 0, 0, 1], proto: IPPROTO_TCP })
      const p3 = ipv4Packet({ src: [192, 168, 1, 5], proto: IPPROTO_UDP, payload: 10 })
      // No program in the prog_array yet: the tail call falls through to XDP_DROP.
      expect(prog.run({ data: p1 }).retval).toBe(XDP_DROP)
      expect(coll.variable('last_flags')).toBe(IN_NET | MAYBE_SEEN | HAS_HASH_INNER)
      m('next').setProgram(0, coll.programs.get('tail')!)
      expect(prog.run({ data: p2 }).retval).toBe(XDP_PASS)
      expect(prog.run({ data: p3 }).retval).toBe(XDP_PASS)
      expect((coll.variable('last_flags') as number) & (IN_NET | HAS_HASH_INNER)).toBe(HAS_HASH_INNER)

      expect([0, 1].map((k) => m('packets').lookup(k))).toEqual([3n, 2n])
      expect(m('by_source').lookup(addr([10, 0, 0, 1]))).toBe(2n)
      expect(m('by_source').lookup(addr([192, 168, 1, 5]))).toBe(1n)
      expect(m('recent').lookup(addr([10, 0, 0, 1]))).toBe(p2.length)
      expect(m('recent').lookup(addr([192, 168, 1, 5]))).toBe(p3.length)
      expect(sum(m('cpu_packets').lookup(0))).toBe(3n)
      expect(sum(m('proto_bytes').lookup(IPPROTO_UDP))).toBe(BigInt(p1.length + p3.length))
      expect(sum(m('proto_bytes').lookup(IPPROTO_TCP))).toBe(BigInt(p2.length))
      expect(u32s(m('lengths').drainRecords())).toEqual([p1.length, p2.length, p3.length])
      const drain = (map: BpfMap) => {
        const out: number[] = []
        for (let v = map.pop(); v !== undefined; v = map.pop()) out.push(u32s([v as Uint8Array])[0]!)
        return out
      }
      expect(drain(m('arrivals'))).toEqual([p1.length, p2.length, p3.length])
      expect(drain(m('protos'))).toEqual([IPPROTO_UDP, IPPROTO_TCP, IPPROTO_UDP])
      expect(m('inner0').lookup(0)).toBe(3n)
      expect(hashInner.lookup(0)).toEqual(Uint8Array.of(3, 0, 0, 0, 0, 0, 0, 0))
    })
  }
})
