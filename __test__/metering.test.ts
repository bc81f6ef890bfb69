import { describe, expect, it } from 'vitest'
import { assemble, LoadError, Program, TrapError } from '../ts/index'

// The sum of the 16 bytes at r1, by a loop the verifier bounds (r2 counts 0..16). A run executes
// 2 + 16 * 6 + 1 = 99 instructions (counted by hand).
const SUM_LOOP = assemble(`
  r0 = 0
  r2 = 0
loop:
  r3 = r1
  r3 += r2
  r4 = *(u8 *)(r3 + 0)
  r0 += r4
  r2 += 1
  if r2 < 16 goto loop
  exit`)
const data = () => Uint8Array.from({ length: 16 }, (_, i) => i * 7 + 3)
// 3 + 10 + ... + 108: 16 * 3 + 7 * 120.
const SUM = 888n

describe('metering (README "Metering")', () => {
  for (const engine of ['interpreter', 'jit'] as const) {
    it(`${engine}: a verified program runs unmetered by default, with no count and no budget`, () => {
      const prog = new Program({ instructions: SUM_LOOP, engine, mode: 'verified', dataSize: 16 })
      const res = prog.run({ data: data() })
      expect([res.r0, res.insnCount]).toEqual([SUM, 0])
      // A budget of 10 would stop a metered run in its second iteration.
      expect(prog.run({ data: data(), budget: 10 }).r0).toBe(SUM)
    })

    it(`${engine}: meter: true counts and stops at the budget, as mode checked does`, () => {
      for (const opts of [{ mode: 'verified', dataSize: 16, meter: true }, { mode: 'checked' }] as const) {
        const prog = new Program({ instructions: SUM_LOOP, engine, ...opts })
        const res = prog.run({ data: data() })
        expect([res.r0, res.insnCount]).toEqual([SUM, 99])
        try {
          prog.run({ data: data(), budget: 10 })
          expect.unreachable('the budget stops it')
        } catch (e) {
          expect(e).toBeInstanceOf(TrapError)
          const t = e as TrapError
          // Slots 0-7 and then 2-3 ran; the 11th instruction (slot 4) is where it stops.
          expect([t.kind, t.insn, t.insnCount]).toEqual(['budget_exhausted', 4, 10])
        }
      }
    })
  }

  it('checks that meter is a boolean', () => {
    expect(
      () =>
        new Program({
          instructions: SUM_LOOP,
          mode: 'verified',
          dataSize: 16,
          meter: 'yes' as unknown as boolean,
        }),
    ).toThrow(LoadError)
  })
})
