// Issue #11: memory a hostile program must not be able to misuse, from JavaScript, on both engines.
import { describe, expect, it } from 'vitest'
import { assemble, BpfMap, Program, TrapError } from '../ts/index'

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
