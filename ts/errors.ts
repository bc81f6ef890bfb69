/**
 * Error classes of the library. Every error has a Node-style `code` (`EINVAL` malformed input,
 * `EACCES` rejected by the verifier, `E2BIG` over a limit, `ENOENT`/`EEXIST` for map keys,
 * `EFAULT` a bad memory access at run time, `ETIME` an exhausted instruction budget or a run past
 * its `timeoutMs`, `ABORT_ERR` a run cancelled through its `AbortSignal`) and the structured
 * details that go with its kind.
 */

import type { Trace } from './trace.js'

/** The codes, listed once: the type below and the check of a native error's `code` read it. */
const ERROR_CODES = [
  'EINVAL',
  'EACCES',
  'E2BIG',
  'ENOENT',
  'EEXIST',
  'ENOSPC',
  'ENOTSUPP',
  'EFAULT',
  'ETIME',
  'EPERM',
  'EBUSY',
  'ABORT_ERR',
  'ENODEV',
  'EOVERFLOW',
] as const

export type ErrorCode = (typeof ERROR_CODES)[number]

function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && (ERROR_CODES as readonly string[]).includes(code)
}

/** Where in the C source an instruction came from (from BTF line info). */
export interface SourceLocation {
  file: string
  line: number
  column: number
  /** The source line's text. */
  text: string
}

/** Base class of every error this library throws on purpose. */
export class EbpfError extends Error {
  readonly code: ErrorCode
  /** The C source line of the instruction the error is about, where the object had line info. */
  source: SourceLocation | undefined
  constructor(code: ErrorCode, message: string) {
    super(message)
    this.code = code
    this.name = new.target.name
  }
}

/** A file that cannot be read: `ENOENT` when it does not exist, else `EINVAL`; the message names it. */
export function unreadableFile(what: string, path: string, e: unknown): EbpfError {
  const code = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'ENOENT' : 'EINVAL'
  return new EbpfError(code, `cannot read ${what} '${path}': ${(e as Error).message}`)
}

/** A program or object that cannot be loaded: malformed bytecode, unknown helper, bad option. */
export class LoadError extends EbpfError {
  /** Index of the offending instruction slot, when the error is about one. */
  readonly insn: number | undefined
  constructor(code: ErrorCode, message: string, insn?: number) {
    super(code, message)
    this.insn = insn
  }
}

/**
 * A program the verifier rejected (mode `verified`): `code` is the kernel's errno for the rejection
 * (`EACCES` for most, `EINVAL` where the kernel says EINVAL, `E2BIG` for a program too large to
 * verify), `insn` the rejected instruction slot, `message` the kernel-style rejection line (with the
 * C source line when the object has line info, also in `source`), and `log` the verifier's whole
 * log in the kernel's format, never truncated (at `logLevel` 1 when the load asked for none). A
 * `Collection` names the program in `program`.
 */
export class VerifierError extends LoadError {
  readonly log: string
  /** The rejected program's name, when a `Collection` loaded it. */
  program: string | undefined
  constructor(code: ErrorCode, message: string, details: { insn?: number | undefined; log: string }) {
    super(code, message, details.insn)
    this.log = details.log
  }
}

/** Text that the assembler cannot read (`EINVAL`) or that is over a limit (`E2BIG`); `line` and `column` are 1-based. */
export class AssembleError extends EbpfError {
  readonly line: number
  readonly column: number
  constructor(message: string, line: number, column: number, code: ErrorCode = 'EINVAL') {
    super(code, `${line}:${column}: ${message}`)
    this.line = line
    this.column = column
  }
}

/** Kinds of run-time traps, as the engine names them. */
export type TrapKind =
  | 'out_of_bounds'
  | 'read_only'
  | 'misaligned'
  | 'budget_exhausted'
  | 'call_depth'
  | 'bad_call_target'
  | 'helper_error'
  | 'tail_call_limit'
  | 'invalid_input'
  | 'pointer_leak'
  | 'timeout'
  | 'aborted'

/** A run that stopped abnormally. Both engines report the same trap for the same program and input. */
export class TrapError extends EbpfError {
  readonly kind: TrapKind
  /** Index of the instruction that trapped. */
  readonly insn: number
  /**
   * For memory traps, the faulting address relative to `region` (`-8n` with `region` 'stack' is 8
   * bytes below r10 of the main frame), else 0n. Host addresses never reach JavaScript.
   */
  readonly addr: bigint
  /**
   * The region `addr` is relative to: 'stack', 'callback stack', 'data', 'ctx', `map 'NAME' value`,
   * `map 'NAME' key`, `ringbuf 'NAME' record`, or 'null' (an address near 0); undefined for traps
   * without an address and for an address far from every region of the run.
   */
  readonly region: string | undefined
  /** Access size in bytes for memory traps, else 0. */
  readonly size: number
  /** Instructions executed before the trap. */
  readonly insnCount: number
  /** The run's instruction trace up to the trap, when the run asked for one (`trace: true`). */
  trace?: Trace
  constructor(
    code: ErrorCode,
    message: string,
    details: {
      kind: TrapKind
      insn: number
      addr: bigint
      region?: string | undefined
      size: number
      insnCount: number
    },
  ) {
    super(code, message)
    this.kind = details.kind
    this.insn = details.insn
    this.addr = details.addr
    this.region = details.region
    this.size = details.size
    this.insnCount = details.insnCount
  }
}

/**
 * A run cancelled through the `signal` of `runAsync`/`runBatchAsync` (code `ABORT_ERR`, kind
 * `aborted`, named `AbortError` as Node's own cancellations are). `cause` is the signal's reason.
 * `insn` and `insnCount` say where the run stopped (0 when it never started).
 */
export class AbortError extends TrapError {
  constructor(
    message: string,
    details: { insn: number; insnCount: number } = { insn: 0, insnCount: 0 },
    cause?: unknown,
  ) {
    super('ABORT_ERR', message, { kind: 'aborted', addr: 0n, size: 0, ...details })
    if (cause !== undefined) Object.defineProperty(this, 'cause', { value: cause, configurable: true, writable: true })
  }
}

/**
 * Malformed ELF, BTF or other object data (`EINVAL`), or data whose processing would go over a
 * limit (`E2BIG`); `offset` is the byte offset where it went wrong.
 */
export class FormatError extends EbpfError {
  readonly offset: number | undefined
  constructor(message: string, offset?: number, code: ErrorCode = 'EINVAL') {
    super(code, offset === undefined ? message : `${message} (at byte offset ${offset})`)
    this.offset = offset
  }
}

/** A map operation that failed: `EEXIST`/`ENOENT` for keys, `E2BIG` when full, `EINVAL` for wrong sizes or flags, `EPERM` for a frozen or read-only map. */
export class MapError extends EbpfError {}

/**
 * The native core (the `.node` file) has no build for this platform, or it failed to load:
 * `platform` is napi-rs's name for the host (`linux-x64-gnu`), `packageName` the prebuilt package
 * that would hold it. Only what runs programs or holds maps needs it; the assembler, the object
 * loader and `ebpf help` work without it.
 */
export class NativeBindingError extends EbpfError {
  readonly platform: string
  readonly packageName: string
  constructor(message: string, details: { platform: string; packageName: string; cause?: unknown }) {
    super('ENOTSUPP', message)
    this.platform = details.platform
    this.packageName = details.packageName
    if (details.cause !== undefined) this.cause = details.cause
  }
}

/**
 * Errors the native layer throws carry their errno name as their `code` (napi-rs sets it from
 * the binding's error status); this turns one into a `MapError` with that code. Other errors
 * pass through.
 */
export function fromNativeMapError(e: unknown, what?: string): unknown {
  return fromCodedError(e, MapError, what)
}

/**
 * As `fromNativeMapError`, into any error class of the library; the message is the code and
 * the native message (`EEXIST: ...`). An error of napi-rs's own (a value the binding could not
 * convert: `code` 'InvalidArg', 'StringExpected', ...) becomes an `EINVAL` of that class naming
 * `what`; the TypeScript layer checks arguments first, so this is the last line, not the usual path.
 */
export function fromCodedError(
  e: unknown,
  Kind: new (code: ErrorCode, message: string) => EbpfError,
  what = 'argument',
): unknown {
  if (e instanceof Error && !(e instanceof EbpfError)) {
    const code = (e as { code?: unknown }).code
    if (isErrorCode(code)) return new Kind(code, `${code}: ${e.message}`)
    // napi-rs's status names are CamelCase; Node's own codes (ERR_...) pass through.
    if (typeof code === 'string' && /^[A-Z][a-z][A-Za-z]*$/.test(code)) {
      return new Kind('EINVAL', `invalid ${what}: ${e.message.trim() || code}`)
    }
  }
  return e
}
