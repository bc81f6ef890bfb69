/**
 * A progress line on standard error for long work (`filter` and `run --pcap` over a large capture,
 * a large `--repeat`): shown when standard error is a terminal and the work is large, or always /
 * never with `--progress`. It is rewritten in place (carriage return) at most ten times a second and
 * erased at the end, so that what the command prints after it is left alone.
 */
import type { OptionSpec, Parsed } from './args.js'
import { optString } from './args.js'

export const PROGRESS_OPTIONS: Record<string, OptionSpec> = {
  progress: {
    value: true,
    arg: 'WHEN',
    choices: ['auto', 'always', 'never'],
    help: 'progress line on standard error: auto (when it is a terminal and the work is large), always, never',
  },
}

/** Captures at least this large get a progress line (auto). */
export const LARGE_CAPTURE_BYTES = 32 << 20
/** `--repeat` at least this large gets a progress line (auto). */
export const LARGE_REPEAT = 1_000_000

const INTERVAL_MS = 100
const WIDTH = 30

export interface ProgressSink {
  isTTY?: boolean
  write(text: string): unknown
}

/** Whether to show progress: `--progress always|never`, else when `stream` is a terminal and the work is `large`. */
export function progressWanted(args: Parsed, large: boolean, stream: ProgressSink = process.stderr): boolean {
  const when = optString(args, 'progress') ?? 'auto'
  if (when === 'always') return true
  if (when === 'never') return false
  return large && stream.isTTY === true
}

export class Progress {
  readonly #stream: ProgressSink
  readonly #what: string
  readonly #total: number | undefined
  readonly #started = Date.now()
  #last = 0
  #shown = false

  /** `what`: the unit counted (packets, runs); `total` the amount of work when known (bytes, runs). */
  constructor(what: string, total: number | undefined, stream: ProgressSink = process.stderr) {
    this.#stream = stream
    this.#what = what
    this.#total = total
  }

  /** `count` units done; `done` of `total` work (for the percentage), default `count`. */
  update(count: number, done = count): void {
    const now = Date.now()
    if (now - this.#last < INTERVAL_MS) return
    this.#last = now
    const seconds = (now - this.#started) / 1000
    const rate = seconds > 0 ? `, ${formatRate(count / seconds)} ${this.#what}/s` : ''
    let bar = ''
    if (this.#total !== undefined && this.#total > 0) {
      const f = Math.min(1, done / this.#total)
      const full = Math.round(f * WIDTH)
      bar = `[${'#'.repeat(full)}${'.'.repeat(WIDTH - full)}] ${(100 * f).toFixed(0).padStart(3)}% `
    }
    this.#stream.write(`\r${bar}${count} ${this.#what}${rate}\x1b[K`)
    this.#shown = true
  }

  /** Erases the line (when one was shown). */
  end(): void {
    if (this.#shown) this.#stream.write('\r\x1b[K')
    this.#shown = false
  }
}

function formatRate(r: number): string {
  if (r >= 1e6) return `${(r / 1e6).toFixed(2)} M`
  if (r >= 1e3) return `${(r / 1e3).toFixed(1)} k`
  return r.toFixed(0)
}
