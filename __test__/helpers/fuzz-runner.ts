/**
 * Runs a parser fuzz target: seeded inputs through one of the exercises of fuzz-exercise.mjs.
 *
 * - `npm test`: a fixed number of cases in the test process, against the TypeScript sources. A
 *   case cannot hang there by construction: every parser and dump has a work or size limit.
 * - Long runs (`EBPF_FUZZ_LONG=1`, `npm run fuzz:long`): cases until `EBPF_FUZZ_SECONDS` have
 *   passed, each in a worker thread against the built package (`npm run build` first) with a time
 *   limit, so that a hang is a failure that names its case instead of a stuck run.
 *
 * A failure names the seed and the case, and writes the input to a file for reproduction.
 */
import { writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import * as lib from '../../ts/index.js'
import { exerciseAsm, exerciseBtf, exerciseDisasm, exerciseElf } from './fuzz-exercise.mjs'
import { Random } from './random.js'

export type FuzzKind = 'btf' | 'asm' | 'disasm' | 'elf'
type Input = Uint8Array | string

interface Outcome {
  parsed: boolean
  codes: string[]
}

export interface FuzzStats {
  target: string
  seed: number
  cases: number
  /** Inputs the parser accepted (and whose every later step ran). */
  accepted: number
  /** Typed errors by code. */
  codes: Record<string, number>
  seconds: number
}

export const LONG = process.env.EBPF_FUZZ_LONG === '1'
/** Seconds per target in a long run. */
export const LONG_SECONDS = Number(process.env.EBPF_FUZZ_SECONDS ?? 300)
export const FUZZ_SEED = Number(process.env.EBPF_FUZZ_SEED ?? 1)
/** A case of a long run that takes longer than this is a hang. */
const CASE_TIMEOUT_MS = Number(process.env.EBPF_FUZZ_CASE_MS ?? 60_000)

const exercises = { btf: exerciseBtf, asm: exerciseAsm, disasm: exerciseDisasm, elf: exerciseElf } as const

/** The test timeout a target needs (vitest's default is a minute). */
export const fuzzTimeoutMs = (shortMs: number) => (LONG ? (LONG_SECONDS + 120) * 1000 : shortMs)

function fail(target: string, seed: number, index: number, input: Input, message: string): never {
  const file = join(
    tmpdir(),
    `ebpf-fuzz-${target.replace(/\W+/g, '_')}-${seed}-${index}.${typeof input === 'string' ? 'txt' : 'bin'}`,
  )
  writeFileSync(file, input)
  throw new Error(`fuzz ${target}: seed ${seed}, case ${index} (input in ${file}):\n${message}`)
}

/** One worker, restarted after a timeout; answers one case at a time. */
class CaseWorker {
  #worker: Worker | undefined
  #next = 0

  async run(kind: FuzzKind, input: Input, core: Uint8Array | undefined): Promise<Outcome | { failure: string }> {
    this.#worker ??= new Worker(new URL('../workers/fuzz-case.mjs', import.meta.url))
    const worker = this.#worker
    const id = this.#next++
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        worker.removeAllListeners('message')
        void worker.terminate()
        this.#worker = undefined
        resolve({ failure: `no answer within ${CASE_TIMEOUT_MS} ms: a hang` })
      }, CASE_TIMEOUT_MS)
      worker.on('message', function onMessage(m: { id: number; outcome?: Outcome; failure?: string }) {
        if (m.id !== id) return
        clearTimeout(timer)
        worker.off('message', onMessage)
        resolve(m.failure === undefined ? m.outcome! : { failure: m.failure })
      })
      worker.postMessage({ id, kind, input, core })
    })
  }

  async close(): Promise<void> {
    await this.#worker?.terminate()
  }
}

/**
 * Runs `cases` inputs from `generate` (or, in a long run, as many as fit the time) through the
 * exercise of `kind`. `core` is the kernel BTF stand-in the ELF exercise relocates against.
 */
export async function fuzz(
  target: string,
  kind: FuzzKind,
  cases: number,
  generate: (r: Random, index: number) => Input,
  options: { seed?: number; core?: Uint8Array; seconds?: number } = {},
): Promise<FuzzStats> {
  const seed = options.seed ?? FUZZ_SEED
  const r = new Random(seed)
  const stats: FuzzStats = { target, seed, cases: 0, accepted: 0, codes: {}, seconds: 0 }
  const start = Date.now()
  const deadline = start + (options.seconds ?? LONG_SECONDS) * 1000
  const worker = LONG ? new CaseWorker() : undefined
  const coreTarget = options.core && !LONG ? lib.btf.parse(options.core) : undefined
  try {
    for (let i = 0; LONG ? Date.now() < deadline : i < cases; i++) {
      const input = generate(r, i)
      let outcome: Outcome
      if (worker) {
        const res = await worker.run(kind, input, options.core)
        if ('failure' in res) fail(target, seed, i, input, res.failure)
        outcome = res
      } else {
        try {
          outcome = (exercises[kind] as (l: unknown, i: Input, c: unknown) => Outcome)(lib, input, coreTarget)
        } catch (e) {
          fail(target, seed, i, input, (e as Error).message)
        }
      }
      stats.cases++
      if (outcome.parsed) stats.accepted++
      for (const c of outcome.codes) stats.codes[c] = (stats.codes[c] ?? 0) + 1
    }
  } finally {
    await worker?.close()
  }
  stats.seconds = Math.round((Date.now() - start) / 100) / 10
  console.log(
    `fuzz ${target}: ${stats.cases} cases in ${stats.seconds} s (seed ${seed}), ${stats.accepted} accepted, typed errors ${JSON.stringify(stats.codes)}`,
  )
  return stats
}
