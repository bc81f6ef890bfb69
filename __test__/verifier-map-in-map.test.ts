/**
 * Maps of maps and map pointers in mode 'verified': a lookup in an array/hash of maps gives the
 * inner map or NULL (the verifier types it `map_ptr_or_null` with the inner template's sizes, as
 * Linux 6.18 does), usable as a map once checked; loads through a map pointer read the map's
 * `struct bpf_map` fields. Expected counts are worked out by hand from the fixture's C source;
 * the verifier's rules are checked against the kernel in crates/ebpf-vm/tests/verifier_calls.rs.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { assemble, Collection, loadCollectionSpec, Program } from '../ts/index'
import { BpfMap } from '../ts/map'

const FIXTURES = join(__dirname, 'fixtures')

describe.each(['interpreter', 'jit'] as const)('maps of maps, verified (%s)', (engine) => {
  it('map_in_map.c counts per tenant through the inner map a lookup returned', async () => {
    const spec = await loadCollectionSpec(join(FIXTURES, 'map_in_map.bpf.o'))
    const coll = new Collection(spec, { mode: 'verified', engine, programs: ['xdp_tenant_count'] })
    const prog = coll.programs.get('xdp_tenant_count')!
    const ctx = { rx_queue_index: 8, ingress_ifindex: 5 } // tenant 8 & 7 = 0, key 5
    for (let i = 0; i < 3; i++) expect(prog.run({ data: new Uint8Array(64), ctx }).retval).toBe(2) // XDP_PASS
    // tenants[0] is tenant0 (placed statically): the first run inserted 1, the next two added.
    expect(coll.maps.get('tenant0')!.lookup(5)).toBe(3n)
    // Tenant 1 has no inner map: the lookup's NULL branch returns XDP_PASS, nothing counted.
    expect(prog.run({ data: new Uint8Array(64), ctx: { rx_queue_index: 1, ingress_ifindex: 5 } }).retval).toBe(2)
    expect(coll.maps.get('tenant0')!.lookup(5)).toBe(3n)
  })

  it('a map pointer reads key_size, value_size and max_entries of its map', () => {
    const map = new BpfMap({ type: 'hash', keySize: 4, valueSize: 24, maxEntries: 300 })
    // r0 = key_size (off 68) + value_size (72) * 1000 + max_entries (76) * 1000000
    const prog = new Program({
      type: 'xdp',
      mode: 'verified',
      engine,
      maps: [map],
      instructions: assemble(`
        r1 = map[0] ll
        r0 = *(u32 *)(r1 + 68)
        r2 = *(u32 *)(r1 + 72)
        r2 *= 1000
        r0 += r2
        r2 = *(u32 *)(r1 + 76)
        r2 *= 1000000
        r0 += r2
        exit`),
    })
    expect(prog.run({ data: new Uint8Array(64) }).r0).toBe(300_024_004n)
  })
})
