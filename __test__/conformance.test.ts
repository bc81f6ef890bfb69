/**
 * The bpf_conformance suite (313 programs with expected results) on every engine: assemble the
 * asm (or take the raw words), load as a `raw` program in checked mode, run over `-- mem`, and
 * compare r0. A missing suite skips locally and fails under CI.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { assemble } from '../ts/asm/index.js'
import { Program } from '../ts/program.js'
import { conformanceDir, conformanceSuiteExists, loadConformanceSuite, wordsToBytes } from './helpers/conformance.js'

const ENGINES = ['interpreter', 'jit'] as const

/** Cases known to fail on an engine, with the reason (see the report of the issue that found them). */
const KNOWN_FAILURES: Partial<Record<(typeof ENGINES)[number], Record<string, string>>> = {}

const present = conformanceSuiteExists()
const ci = process.env.CI !== undefined && !['', '0', 'false'].includes(process.env.CI)

describe('bpf_conformance suite', () => {
  it('is present (required under CI)', () => {
    if (!present && ci) {
      throw new Error(`conformance suite not found at ${conformanceDir()} (set BPF_CONFORMANCE_DIR)`)
    }
  })
})

const cases = present ? loadConformanceSuite() : []

for (const engine of ENGINES) {
  describe.skipIf(!present)(`conformance (${engine})`, () => {
    let passed = 0
    let failed = 0
    afterAll(() => {
      console.log(`conformance (${engine}): ${passed} passed, ${failed} failed`)
    })

    it('has all 313 programs', () => {
      expect(cases.length).toBe(313)
    })

    for (const c of cases) {
      const known = KNOWN_FAILURES[engine]?.[c.name]
      const test = known === undefined ? it : it.fails
      test(c.name, () => {
        try {
          const instructions = c.raw ? wordsToBytes(c.raw) : assemble(c.asm)
          const program = new Program({ type: 'raw', instructions, engine, mode: 'checked' })
          const { r0 } = program.run({ data: c.mem })
          expect(`0x${r0.toString(16)}`).toBe(`0x${c.expected.toString(16)}`)
          passed++
        } catch (e) {
          failed++
          throw e
        }
      })
    }
  })
}
