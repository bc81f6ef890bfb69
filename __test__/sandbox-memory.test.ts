// Issue #11: memory a hostile program must not be able to misuse, from JavaScript, on both engines.
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  assemble,
  BpfMap,
  Collection,
  loadCollectionSpec,
  type MapDefinition,
  MapError,
  type MapSpec,
  Program,
  TrapError,
} from '../ts/index'

const MIB = 2 ** 20

// The program of the issue: lock the value of key 0, delete the key, exit holding the lock.
const LOCK_DELETE_EXIT = assemble(`
    *(u32 *)(r10 - 4) = 0
    r1 = map[0] ll
    r2 = r10
    r2 += -4
    call 1
    if r0 == 0 goto out
    r1 = r0
    call 93
    r1 = map[0] ll
    r2 = r10
    r2 += -4
    call 3
  out:
    r0 = 0
    exit
  `)

describe('a spin lock on a value the program deletes', () => {
  for (const engine of ['interpreter', 'jit'] as const) {
    for (const valueSize of [8, 1 << 20]) {
      it(`${engine}, ${valueSize}-byte values: a typed trap at the delete, the lock released`, () => {
        const m = new BpfMap({ type: 'hash', keySize: 4, valueSize, maxEntries: 4 })
        m.update(0, new Uint8Array(valueSize))
        const prog = new Program({ instructions: LOCK_DELETE_EXIT, maps: [m], engine })
        for (let run = 0; run < 3; run++) {
          let error: unknown
          try {
            prog.run({})
          } catch (e) {
            error = e
          }
          expect(error).toBeInstanceOf(TrapError)
          expect(error).toMatchObject({ code: 'EINVAL', kind: 'helper_error', insn: 13 })
          expect((error as Error).message).toContain('not allowed while holding a lock')
          // The delete never happened, and the lock word reads free again (the next run takes it).
          expect(m.size).toBe(1)
        }
      })
    }
  }
})

// 25 times: bpf_perf_event_output(ctx, 0, BPF_F_CURRENT_CPU, r10 - 8, 8); r0 = the calls that
// returned 0. An 8-byte record takes 24 bytes of a perf ring (8-byte header, u32 size, data,
// padding to 8), so 240 bytes hold 10.
const PERF_25 = assemble(`
    r6 = r1
    r7 = 0
    r8 = 25
  again:
    *(u64 *)(r10 - 8) = 85
    r1 = r6
    r2 = 0
    r3 = 4294967295 ll
    r4 = r10
    r4 += -8
    r5 = 8
    call 25
    if r0 != 0 goto skip
    r7 += 1
  skip:
    r8 += -1
    if r8 != 0 goto again
    r0 = r7
    exit
  `)

describe('bpf_perf_event_output is bounded per run', () => {
  for (const engine of ['interpreter', 'jit'] as const) {
    it(`${engine}: records beyond perfBufferBytes are dropped, counted and reported`, async () => {
      const records: Uint8Array[] = []
      const lost: number[] = []
      const prog = new Program({
        type: 'tracing',
        instructions: PERF_25,
        engine,
        // Map 0 (r2 = 0) is the onPerfEvent shortcut of an unverified program; the verifier wants a map.
        mode: 'checked',
        perfBufferBytes: 240,
        onPerfEvent: (r) => records.push(r.data),
        onPerfLost: (n) => lost.push(n),
      })
      const ctx = new Uint8Array(8)
      const res = prog.run({ ctx })
      expect(res.r0).toBe(10n)
      expect(res.perfLost).toBe(15)
      expect(records).toHaveLength(10)
      expect(records[0]).toEqual(Uint8Array.of(85, 0, 0, 0, 0, 0, 0, 0))
      expect(lost).toEqual([15])
      // Records wait for delivery in a buffer of the same size: the second and third repetitions
      // find it full (-ENOSPC to the program, as a perf ring nobody reads).
      const three = await prog.runAsync({ ctx, repeat: 3 })
      expect(three.r0).toBe(0n)
      expect(three.perfLost).toBe(15 + 25 + 25)
      expect(records).toHaveLength(20)
      expect(lost).toEqual([15, 65])
    })
  }

  it('perfBufferBytes must be an integer from 1 to 2^30', () => {
    for (const perfBufferBytes of [0, 1.5, 2 ** 31, Number.NaN]) {
      expect(() => new Program({ instructions: PERF_25, type: 'tracing', perfBufferBytes })).toThrow(
        expect.objectContaining({ code: 'EINVAL' }),
      )
    }
  })
})

describe('map memory a collection may take', () => {
  const allMaps = () => loadCollectionSpec(join(__dirname, 'fixtures', 'all_maps.bpf.o'))

  it('a prog_array of 25,000,000 entries fails fast with E2BIG naming it', async () => {
    const spec = await allMaps()
    spec.maps.get('next')!.maxEntries = 25_000_000
    const before = process.memoryUsage().rss
    // Over the collection's default limit, and over the 1 GiB a single map may take once full.
    for (const memoryLimit of [undefined, 2 ** 40]) {
      let error: unknown
      try {
        new Collection(spec, { memoryLimit })
      } catch (e) {
        error = e
      }
      expect(error).toBeInstanceOf(MapError)
      expect(error).toMatchObject({ code: 'E2BIG' })
      expect((error as Error).message).toMatch(/map '?"?next/)
    }
    // It used to commit 1.9 GiB.
    expect(process.memoryUsage().rss - before).toBeLessThan(64 * MIB)
  })

  it('a prog_array of 10,000,000 entries loads lazily', async () => {
    const spec = await allMaps()
    spec.maps.get('next')!.maxEntries = 10_000_000
    const before = process.memoryUsage().rss
    const coll = new Collection(spec)
    expect(coll.maps.get('next')!.maxEntries).toBe(10_000_000)
    expect(process.memoryUsage().rss - before).toBeLessThan(64 * MIB)
  })

  it('counts every map it creates against one limit', async () => {
    const spec = await allMaps()
    const def = (m: MapSpec): MapDefinition => ({
      type: m.type,
      keySize: m.keySize,
      valueSize: m.valueSize,
      maxEntries: m.maxEntries,
      flags: m.flags,
      mapExtra: m.mapExtra,
      innerMap: m.innerMap && def(m.innerMap),
    })
    const bounds = [...spec.maps.values()].map((m) => BpfMap.memoryBound(def(m)))
    const total = bounds.reduce((a, b) => a + b, 0)
    expect(() => new Collection(spec, { memoryLimit: total })).not.toThrow()
    // One byte less: the last map goes over, and it is the one named.
    const last = [...spec.maps.values()].at(-1)!
    expect(() => new Collection(spec, { memoryLimit: total - 1 })).toThrow(
      expect.objectContaining({ code: 'E2BIG', message: expect.stringContaining(`map '${last.name}'`) }),
    )
    expect(() => new Collection(spec, { memoryLimit: -1 })).toThrow(expect.objectContaining({ code: 'EINVAL' }))
  })

  it('big maps made from JavaScript commit only what they touch', () => {
    const before = process.memoryUsage().rss
    const maps = [
      new BpfMap({ type: 'prog_array', keySize: 4, valueSize: 4, maxEntries: 10_000_000 }),
      new BpfMap({ type: 'hash', keySize: 4, valueSize: 64, maxEntries: 1 << 20 }),
      new BpfMap({ type: 'array', keySize: 4, valueSize: 64, maxEntries: 1 << 20 }),
    ]
    expect(maps.map((m) => m.size)).toEqual([0, 0, 1 << 20])
    expect(process.memoryUsage().rss - before).toBeLessThan(32 * MIB)
    // What they may take once full: the prog_array's index, 64 MiB of values each for the others.
    expect(BpfMap.memoryBound({ type: 'array', keySize: 4, valueSize: 64, maxEntries: 1 << 20 })).toBe(64 * MIB)
  })
})
