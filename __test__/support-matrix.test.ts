/**
 * README's support matrix (issue #13 section 5): it is what `scripts/support-matrix.mjs` makes from the
 * built package's tables now, and every helper it marks as supported is called by some test.
 *
 * "Called by a test" is read from the test sources: a `call N` / `call(N)` instruction, `call
 * bpf_name` in assembly, or a C call `bpf_name(` in a test or in a fixture source that a suite
 * names. The suites whose job is prototypes (they call every helper only to compare the verifier's
 * answer with the kernel's) do not count. The helpers no test calls yet are listed below, by name,
 * so the list can only shrink.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { basename, join, relative } from 'node:path'
import { describe, expect, it } from 'vitest'
// @ts-expect-error: a plain ES module script, without type declarations
import { readmeCopy, supportMatrix } from '../scripts/support-matrix.mjs'

const ROOT = join(__dirname, '..')
const README = readFileSync(join(ROOT, 'README.md'), 'utf8')

/** Helpers the matrix marks as supported that no test calls yet (an honest gap, not a pass). */
const UNCALLED: string[] = []

/**
 * Helpers whose tests pass the id to a function that emits the call (`strto(105, ...)` builds
 * `call(helper)`), which the patterns cannot see: the file and the text of one such call, checked to be there.
 */
const CALLED_THROUGH: Record<string, { file: string; text: string }> = {
  bpf_probe_read: { file: 'crates/ebpf-vm/tests/context_tracing_memory.rs', text: 'r0_of(4, 8, TASK' },
  bpf_probe_read_str: { file: 'crates/ebpf-vm/tests/context_tracing_memory.rs', text: 'r0_of(45, 16' },
  bpf_strtol: { file: 'crates/ebpf-vm/tests/helpers_trace.rs', text: 'strto(105, ' },
  bpf_strtoul: { file: 'crates/ebpf-vm/tests/helpers_trace.rs', text: 'strto(106, ' },
}

/** Files that mention every helper without running it: prototype and kernel-access suites, and this one. */
const NOT_BEHAVIOUR = new Set([
  '__test__/support-matrix.test.ts',
  '__test__/helper-prototypes.test.ts',
  'crates/ebpf-vm/tests/helper_prototypes.rs',
  'crates/ebpf-vm/tests/helper_prototypes_live.rs',
  'crates/ebpf-vm/tests/kernel_oracle/helper_access.c',
])

function files(dir: string, keep: (path: string) => boolean): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) out.push(...files(path, keep))
    else if (keep(path)) out.push(path)
  }
  return out
}

/** Test sources: the JS suites and their fixtures, the Rust integration tests, and the `#[cfg(test)]` parts of the crates. */
function testSources(): { path: string; text: string }[] {
  const paths = [
    ...files(join(ROOT, '__test__'), (p) => /\.(ts|mjs|cjs|js|c|h)$/.test(p)),
    ...readdirSync(join(ROOT, 'crates')).flatMap((crate) => {
      const dir = join(ROOT, 'crates', crate)
      const tests = join(dir, 'tests')
      const src = join(dir, 'src')
      return [
        ...(safeIsDir(tests) ? files(tests, (p) => /\.(rs|c|h)$/.test(p)) : []),
        ...(safeIsDir(src) ? files(src, (p) => p.endsWith('.rs')) : []),
      ]
    }),
  ]
  const all = paths
    .map((path) => ({ path: relative(ROOT, path), text: readFileSync(path, 'utf8') }))
    .filter((f) => !NOT_BEHAVIOUR.has(f.path))
  const suites = all.filter((f) => !isFixtureSource(f.path))
  return all
    .filter((f) => !isFixtureSource(f.path) || namedBySuite(f.path, suites))
    .map((f) => {
      if (!f.path.includes('/src/')) return f
      const at = f.text.indexOf('#[cfg(test)]')
      return { path: f.path, text: at < 0 ? '' : f.text.slice(at) }
    })
    .map((f) => ({ path: f.path, text: withoutComments(f.text) }))
}

/** The text without comment lines (`//`, `/*`, ` *`, `#`), so prose that names a helper is no call. */
function withoutComments(text: string): string {
  return text
    .split('\n')
    .filter((line) => !/^\s*(\/\/|\/\*|\*|#(?!\[))/.test(line))
    .join('\n')
}

function isFixtureSource(path: string): boolean {
  return /\/fixtures\/[^/]+\.[ch]$/.test(path)
}

/**
 * A C fixture counts only when a suite names it (`probe_read.c`, `probe_read.bpf.o` or `'probe_read'`):
 * a source no suite builds or loads exercises nothing. (Which of its functions a suite runs is not looked at.)
 */
function namedBySuite(path: string, suites: { text: string }[]): boolean {
  const stem = basename(path).replace(/\.[ch]$/, '')
  const named = new RegExp(`\\b${stem}\\.(c|h|o|bpf\\.o)\\b|['"]${stem}['"]`)
  return suites.some((f) => named.test(f.text))
}

function safeIsDir(path: string): boolean {
  try {
    return statSync(path).isDirectory()
  } catch {
    return false
  }
}

/** The helpers the README's matrix marks as supported: `| id | `bpf_name` | ...` rows. */
function matrixHelpers(): { id: number; name: string }[] {
  const copy = readmeCopy(README) as string | undefined
  if (copy === undefined) throw new Error('README.md has no support matrix markers')
  return [...copy.matchAll(/^\| (\d+) \| `(bpf_[a-z_0-9]+)` \|/gm)].map((m) => ({
    id: Number(m[1]),
    name: m[2] as string,
  }))
}

describe('support matrix', () => {
  it("README's copy is what scripts/support-matrix.mjs makes now (else: node scripts/support-matrix.mjs --write)", () => {
    expect(readmeCopy(README)).toBe(supportMatrix())
  })

  it('every supported helper is called by at least one test; the ones that are not are listed', () => {
    const sources = testSources()
    const helpers = matrixHelpers()
    expect(helpers.length).toBeGreaterThan(0)
    const uncalled = helpers
      .filter(({ id, name }) => {
        const through = CALLED_THROUGH[name]
        if (through !== undefined) return !readFileSync(join(ROOT, through.file), 'utf8').includes(through.text)
        const short = name.replace(/^bpf_/, '')
        const call = new RegExp(`\\bcall[ (]\\s*${id}(?![0-9])|\\bcall\\s+(bpf_)?${short}\\b|\\bbpf_${short}\\(`)
        return !sources.some((f) => call.test(f.text))
      })
      .map((h) => h.name)
    expect(uncalled).toEqual(UNCALLED)
  })
})
