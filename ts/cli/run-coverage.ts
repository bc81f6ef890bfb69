/**
 * `ebpf run --coverage OUT.lcov`: the program is loaded counting coverage, and after the run
 * (also one that trapped) its coverage is written as an lcov tracefile (genhtml renders it). The
 * option, its parsing and the writing live here so that `run.ts` only passes them through.
 */
import { writeFileSync } from 'node:fs'
import type { Coverage } from '../index.js'
import { type OptionSpec, optString, type Parsed } from './args.js'
import { CliError } from './io.js'

export const COVERAGE_OPTIONS: Record<string, OptionSpec> = {
  coverage: {
    value: true,
    arg: 'OUT.lcov',
    help: 'write the C line and branch coverage of the run(s) as an lcov tracefile (objects with BTF line info)',
  },
}

/** Whether the arguments ask for coverage. */
export function wantsCoverage(args: Parsed): boolean {
  return optString(args, 'coverage') !== undefined
}

/** Writes the coverage where --coverage says; returns a note for stderr when it has no lines. */
export function writeCoverage(args: Parsed, coverage: Coverage | undefined): string {
  const out = optString(args, 'coverage')
  if (out === undefined) return ''
  const lcov = coverage?.toLcov({ testName: 'ebpf_run' }) ?? ''
  try {
    writeFileSync(out, lcov)
  } catch (e) {
    throw new CliError(`--coverage ${out}: ${(e as Error).message}`)
  }
  return lcov.includes('\nDA:') ? '' : `ebpf run: ${out}: no source lines (the program has no BTF line info)\n`
}
