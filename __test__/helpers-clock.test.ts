/**
 * The clock helpers as the kernel relates them (bpf-helpers(7), Linux 6.18 kernel/bpf/helpers.c):
 * `ktime_get_ns` (5) is CLOCK_MONOTONIC; `ktime_get_boot_ns` (125) is CLOCK_BOOTTIME, the monotonic
 * clock plus the time the system was suspended, so never behind a monotonic reading taken before it;
 * `ktime_get_coarse_ns` (160) is CLOCK_MONOTONIC_COARSE, the monotonic clock as of the last tick, so
 * never ahead of a monotonic reading taken after it. Absolute values are not compared: the engine's
 * clocks need not share the kernel's origin.
 */
import { describe, expect, it } from 'vitest'
import { assemble, Program } from '../ts/index'

// Readings in order into data[0..32]: t0 = ktime_get_ns, boot, coarse, t1 = ktime_get_ns.
const READINGS = assemble(`
  r6 = r1
  call 5
  *(u64 *)(r6 + 0) = r0
  call 125
  *(u64 *)(r6 + 8) = r0
  call 160
  *(u64 *)(r6 + 16) = r0
  call 5
  *(u64 *)(r6 + 24) = r0
  r0 = 0
  exit`)

describe.each(['interpreter', 'jit'] as const)('clock helpers (%s)', (engine) => {
  it('boot_ns is not behind, coarse_ns not ahead of, the monotonic clock; each is non-decreasing', () => {
    const prog = new Program({ instructions: READINGS, engine })
    let last: bigint[] | undefined
    for (let i = 0; i < 3; i++) {
      const { data } = prog.run({ data: new Uint8Array(32) })
      const view = new DataView(data.buffer, data.byteOffset, data.byteLength)
      const [t0, boot, coarse, t1] = [0, 8, 16, 24].map((o) => view.getBigUint64(o, true)) as [
        bigint,
        bigint,
        bigint,
        bigint,
      ]
      expect(t1).toBeGreaterThan(0n) // the stores happened
      expect(t1).toBeGreaterThanOrEqual(t0)
      expect(boot).toBeGreaterThanOrEqual(t0)
      expect(coarse).toBeLessThanOrEqual(t1)
      if (last !== undefined) {
        expect(t0).toBeGreaterThanOrEqual(last[0] as bigint)
        expect(boot).toBeGreaterThanOrEqual(last[1] as bigint)
        expect(coarse).toBeGreaterThanOrEqual(last[2] as bigint)
      }
      last = [t0, boot, coarse]
    }
  })
})
