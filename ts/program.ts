/**
 * `Program`: a loaded program and its runs. The engine validates, prepares and runs; this class
 * checks options, converts results and turns error data from the engine into typed errors.
 */
import { type ErrorCode, LoadError, TrapError, type TrapKind } from './errors.js'
import { asBpfMap, type BpfMap } from './map.js'
import { type NativeError, type NativeProgram, type NativeRunResult, native } from './native.js'
import type { LineInfo } from './spec.js'

/** What r1 points to at entry; see README "Program types". */
export type ProgramType = 'raw' | 'socket_filter' | 'xdp' | 'tracing'
export type EngineName = 'jit' | 'interpreter' | 'auto'
export type SafetyMode = 'checked'

export interface ProgramOptions {
  /** What r1/r2 hold at entry. `raw`: r1 = address of `data`, r2 = its length. Default `raw`. */
  type?: ProgramType
  /** Bytecode: 8-byte little-endian instruction slots, as `assemble` or `asm` produce. */
  instructions: Uint8Array
  /** `auto` (default) uses the JIT where the host supports it, else the interpreter. */
  engine?: EngineName
  /** `checked` (default): run-time bounds checks and an instruction budget. */
  mode?: SafetyMode
  /** Instructions a run may execute before it is stopped (default 10,000,000). */
  budget?: number
  /**
   * The maps the program uses: `lddw rX, map[i]` (src 5) loads a reference to `maps[i]`, and
   * `lddw rX, map_value[i] + off` (src 6) the address of byte `off` of a single-value array map
   * (global data). A `Collection` fills this in from the object's relocations.
   */
  maps?: readonly BpfMap[]
  /**
   * Source line of instructions (`ProgramSpec.lineInfo`): errors about an instruction then name the
   * C source line it came from.
   */
  lineInfo?: readonly LineInfo[]
}

export interface RunOptions {
  /** The input data (packet); the program sees a copy, returned as `data`. */
  data?: Uint8Array
  /** Runs this many times over the same input (default 1); the result is the last run's, `durationNs` the mean. */
  repeat?: number
  /** Overrides the program's instruction budget for this run. */
  budget?: number
}

export interface RunResult {
  /** The full 64-bit r0 at exit. */
  r0: bigint
  /** r0 truncated to 32 bits, unsigned: what the kernel's BPF_PROG_TEST_RUN reports. */
  retval: number
  /** The data as the program left it. */
  data: Uint8Array
  /** Instructions executed. */
  insnCount: number
  /** Wall time of one run inside the engine, in nanoseconds (the mean when `repeat` > 1). */
  durationNs: number
}

const PROGRAM_TYPES: readonly ProgramType[] = ['raw', 'socket_filter', 'xdp', 'tracing']
const ENGINES: readonly EngineName[] = ['jit', 'interpreter', 'auto']
const MODES: readonly SafetyMode[] = ['checked']

function oneOf<T extends string>(what: string, value: unknown, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T
  throw new LoadError(
    'EINVAL',
    `${what} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${String(value)}`,
  )
}

function checkBudget(budget: unknown): number | undefined {
  if (budget === undefined) return undefined
  if (typeof budget !== 'number' || !Number.isSafeInteger(budget) || budget < 1) {
    throw new LoadError('EINVAL', `budget must be a positive integer, got ${String(budget)}`)
  }
  return budget
}

function checkRunOptions(options: RunOptions): {
  data: Uint8Array
  repeat: number | undefined
  budget: number | undefined
} {
  if (options === null || typeof options !== 'object') throw new LoadError('EINVAL', 'run options must be an object')
  const data = options.data ?? new Uint8Array(0)
  if (!(data instanceof Uint8Array)) throw new LoadError('EINVAL', 'data must be a Uint8Array')
  const { repeat } = options
  if (repeat !== undefined && (!Number.isInteger(repeat) || repeat < 1 || repeat > 0xffffffff)) {
    throw new LoadError('EINVAL', `repeat must be an integer from 1 to 2^32-1, got ${String(repeat)}`)
  }
  return { data, repeat, budget: checkBudget(options.budget) }
}

/** One packet's outcome in `runBatch`. */
export type BatchEntry = ({ ok: true } & RunResult) | { ok: false; error: LoadError | TrapError }

function checkBatch(
  packets: readonly Uint8Array[],
  options: { budget?: number },
): { list: Buffer[]; budget: number | undefined } {
  if (!Array.isArray(packets)) throw new LoadError('EINVAL', 'runBatch takes an array of Uint8Array packets')
  const list = packets.map((p, i) => {
    if (!(p instanceof Uint8Array)) throw new LoadError('EINVAL', `packets[${i}] must be a Uint8Array`)
    return Buffer.from(p.buffer, p.byteOffset, p.byteLength)
  })
  return { list, budget: checkBudget(options?.budget) }
}

function toResult(res: NativeRunResult): RunResult {
  return {
    r0: res.r0,
    retval: Number(res.r0 & 0xffffffffn),
    data: new Uint8Array(res.data.buffer, res.data.byteOffset, res.data.byteLength),
    insnCount: res.insnCount,
    durationNs: res.durationNs,
  }
}

/** Converts error data from the engine into the matching error class. */
export function fromNative(e: NativeError): LoadError | TrapError {
  const code = e.code as ErrorCode
  if (e.kind !== undefined) {
    return new TrapError(code, e.message, {
      kind: e.kind as TrapKind,
      insn: e.insn ?? 0,
      addr: e.addr ?? 0n,
      size: e.size ?? 0,
      insnCount: e.insnCount ?? 0,
    })
  }
  return new LoadError(code, e.message, e.insn)
}

export class Program {
  readonly type: ProgramType
  readonly mode: SafetyMode
  /** Process-unique id, as the kernel's program id. */
  readonly id: number
  /** @internal the engine's program */
  readonly native: NativeProgram
  readonly #lineInfo: LineInfo[]

  constructor(options: ProgramOptions) {
    if (options === null || typeof options !== 'object') {
      throw new LoadError('EINVAL', 'Program options must be an object')
    }
    const { instructions } = options
    if (!(instructions instanceof Uint8Array)) {
      throw new LoadError('EINVAL', 'instructions must be a Uint8Array of bytecode')
    }
    this.type = oneOf('type', options.type, PROGRAM_TYPES, 'raw')
    this.mode = oneOf('mode', options.mode, MODES, 'checked')
    const engine = oneOf('engine', options.engine, ENGINES, 'auto')
    const budget = checkBudget(options.budget)
    const maps = options.maps ?? []
    if (!Array.isArray(maps)) throw new LoadError('EINVAL', 'maps must be an array of BpfMap')
    const mapIds = maps.map((m, i) => asBpfMap(m, `maps[${i}]`).id)
    const loaded = native.loadProgram(instructions, { progType: this.type, engine, mode: this.mode, budget, mapIds })
    this.#lineInfo = [...(options.lineInfo ?? [])].sort((a, b) => a.insn - b.insn)
    if ('error' in loaded) {
      throw this.#located(fromNative(loaded.error as NativeError))
    }
    this.native = loaded as NativeProgram
    this.id = this.native.id
  }

  /** The engine that runs this program: `jit` or `interpreter` (`auto` resolved). */
  get engine(): 'jit' | 'interpreter' {
    return this.native.engine as 'jit' | 'interpreter'
  }

  /** Runs the program (`repeat` times) on the calling thread. Throws `TrapError` if a run stops abnormally. */
  run(options: RunOptions = {}): RunResult {
    const { data, repeat, budget } = checkRunOptions(options)
    return this.#result(this.native.run(data, repeat, budget))
  }

  /** The same as `run`, off the JavaScript thread (on the libuv thread pool). */
  async runAsync(options: RunOptions = {}): Promise<RunResult> {
    const { data, repeat, budget } = checkRunOptions(options)
    return this.#result(await this.native.runAsync(data, repeat, budget))
  }

  /**
   * One run per packet, in order; a trap on one packet does not stop the others. Each entry is the
   * run's result or its error.
   */
  runBatch(packets: readonly Uint8Array[], options: { budget?: number } = {}): BatchEntry[] {
    const { list, budget } = checkBatch(packets, options)
    return this.native.runBatch(list, budget).map((r) => this.#entry(r))
  }

  /** `runBatch` off the JavaScript thread. */
  async runBatchAsync(packets: readonly Uint8Array[], options: { budget?: number } = {}): Promise<BatchEntry[]> {
    const { list, budget } = checkBatch(packets, options)
    return (await this.native.runBatchAsync(list, budget)).map((r) => this.#entry(r))
  }

  #entry(r: NativeRunResult): BatchEntry {
    return r.error ? { ok: false, error: this.#located(fromNative(r.error)) } : { ok: true, ...toResult(r) }
  }

  #result(res: NativeRunResult): RunResult {
    if (res.error) throw this.#located(fromNative(res.error))
    return toResult(res)
  }

  /** Adds the C source line of the error's instruction, when line info says it. */
  #located<E extends LoadError | TrapError>(e: E): E {
    const insn = e.insn
    if (insn === undefined || this.#lineInfo.length === 0) return e
    let found: LineInfo | undefined
    for (const li of this.#lineInfo) {
      if (li.insn > insn) break
      found = li
    }
    if (found) {
      e.source = { file: found.file, line: found.line, column: found.column, text: found.text }
      e.message += ` (${found.file}:${found.line}:${found.column}: ${found.text.trim()})`
    }
    return e
  }

  /**
   * `xlated`: the bytecode as loaded. `jited`: the x86-64 machine code as Intel-syntax assembly,
   * one `; insn N` marker where each instruction's code begins (a one-line note when the program
   * runs on the interpreter).
   */
  dump(what: 'xlated'): Uint8Array
  dump(what: 'jited'): string
  dump(what: 'xlated' | 'jited'): Uint8Array | string {
    if (what === 'jited') return this.native.jited()
    if (what !== 'xlated') throw new LoadError('EINVAL', `unknown dump kind ${String(what)}`)
    const b = this.native.xlated()
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
  }
}
