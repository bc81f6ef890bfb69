/**
 * Issue #9, "Soundness by execution": every conformance program the verifier accepts returns an
 * r0 inside the range the verifier inferred for r0 at exit. Each of the 313 programs of the
 * bpf_conformance suite is loaded as `raw` in mode `verified` with `dataSize` the length of its
 * `-- mem` (the model of raw programs: r1 = that memory, r2 = its length); for the ones accepted,
 * `verifierStats.exitR0` (asked for with `exitRange: true`) is the union of r0's bounds at every
 * exit the walk reached (r0 is then kept precise at exit, so a path pruning left out ends inside
 * it too), and the run
 * on both engines, which must give the suite's expected r0, must lie inside it, signed and
 * unsigned. A missing suite skips locally and fails under CI (conformance.test.ts says so).
 */
import { afterAll, describe, expect, it } from 'vitest'
import { assemble } from '../ts/asm/index.js'
import { Program } from '../ts/program.js'
import { conformanceSuiteExists, loadConformanceSuite, wordsToBytes } from './helpers/conformance.js'

const ENGINES = ['interpreter', 'jit'] as const

describe('exitRange', () => {
  // r0 = 5, or 7 when the first data byte is at most 3: by hand, r0 in [5, 7] over both exits.
  const instructions = assemble('r0 = 5\nr2 = *(u8 *)(r1 + 0)\nif r2 > 3 goto +1\nr0 = 7\nexit')
  it('reports the union of r0 at every exit when asked, and nothing otherwise', () => {
    const asked = new Program({ type: 'raw', instructions, mode: 'verified', dataSize: 4, exitRange: true })
    expect(asked.verifierStats?.exitR0).toEqual({ smin: 5n, smax: 7n, umin: 5n, umax: 7n })
    const plain = new Program({ type: 'raw', instructions, mode: 'verified', dataSize: 4 })
    expect(plain.verifierStats?.exitR0).toBeUndefined()
  })
  it('needs mode verified and a boolean', () => {
    expect(() => new Program({ type: 'raw', instructions, exitRange: true })).toThrow(
      /exitRange: true needs mode 'verified'/,
    )
    expect(
      () =>
        new Program({ type: 'raw', instructions, mode: 'verified', dataSize: 4, exitRange: 1 as unknown as boolean }),
    ).toThrow(/exitRange must be a boolean/)
  })
})
const present = conformanceSuiteExists()
const cases = present ? loadConformanceSuite() : []

describe.skipIf(!present)('conformance programs the verifier accepts exit with r0 in its range', () => {
  const accepted: string[] = []
  const rejected: string[] = []
  let exact = 0
  let bounded = 0
  afterAll(() => {
    console.log(
      `exit r0 ranges: ${accepted.length} of ${cases.length} programs accepted and checked ` +
        `(${exact} with one value, ${bounded} more with a bounded range), ${rejected.length} refused: ${rejected.join(' ')}`,
    )
  })

  for (const c of cases) {
    it(c.name, () => {
      const instructions = c.raw ? wordsToBytes(c.raw) : assemble(c.asm)
      let program: Program
      try {
        program = new Program({ type: 'raw', instructions, mode: 'verified', dataSize: c.mem.length, exitRange: true })
      } catch (e) {
        expect((e as Error).name).toMatch(/^(VerifierError|LoadError)$/)
        rejected.push(c.name)
        return
      }
      const range = program.verifierStats?.exitR0
      expect(range, 'exitRange: true reports the exit range').toBeDefined()
      if (!range) return
      expect(range.smin <= range.smax && range.umin <= range.umax).toBe(true)
      for (const engine of ENGINES) {
        const run = new Program({
          type: 'raw',
          instructions,
          mode: 'verified',
          dataSize: c.mem.length,
          exitRange: true,
          engine,
        })
        const { r0 } = run.run({ data: Uint8Array.from(c.mem) })
        expect(r0).toBe(c.expected)
        const signed = BigInt.asIntN(64, r0)
        const where = `${engine}: r0 ${signed} / 0x${r0.toString(16)} in s[${range.smin}, ${range.smax}] u[${range.umin}, ${range.umax}]`
        expect(signed >= range.smin && signed <= range.smax, where).toBe(true)
        expect(r0 >= range.umin && r0 <= range.umax, where).toBe(true)
      }
      accepted.push(c.name)
      if (range.smin === range.smax) exact++
      else if (range.umax !== 0xffff_ffff_ffff_ffffn || range.smin !== -(1n << 63n)) bounded++
    })
  }

  it('saw every program', () => {
    expect(accepted.length + rejected.length).toBe(cases.length)
  })
})
