/**
 * Argument checks shared by the public entry points: every value that crosses into the library
 * from a caller is checked here (or next to its use) so that a wrong type is an `EbpfError` whose
 * message names the argument, never a TypeError or a napi conversion error from deeper down.
 */
import type { EbpfError, ErrorCode } from './errors.js'

/** The error class an entry point throws: `LoadError`, `MapError`, ... (all take a code and a message). */
export type ErrorClass = new (code: ErrorCode, message: string) => EbpfError

/**
 * A short, safe description of a value for error messages: never throws (`String()` does on
 * symbols in templates, on null-prototype objects and on hostile `toString`s) and never prints
 * more than a few dozen characters of a long string or bigint.
 */
export function describeValue(v: unknown): string {
  try {
    switch (typeof v) {
      case 'undefined':
        return 'undefined'
      case 'number':
        return String(v)
      case 'bigint': {
        const s = `${v}n`
        return s.length > 40 ? `a ${v.toString(2).length}-bit bigint` : s
      }
      case 'string':
        return v.length > 40 ? `a string of ${v.length} characters` : JSON.stringify(v)
      case 'boolean':
        return String(v)
      case 'symbol':
        return `Symbol(${v.description ?? ''})`
      case 'function':
        return 'a function'
      default: {
        if (v === null) return 'null'
        if (Array.isArray(v)) return `an array of ${v.length}`
        if (ArrayBuffer.isView(v)) return `a ${v.constructor.name} of ${v.byteLength} bytes`
        const ctor = Object.getPrototypeOf(v)?.constructor?.name
        return typeof ctor === 'string' && ctor !== '' && ctor !== 'Object' ? `a ${ctor}` : 'an object'
      }
    }
  } catch {
    return 'a value'
  }
}

/** `v` if it is a non-null object (not an array unless `arrays`), else `Kind` EINVAL naming `what`. */
export function checkObject<T extends object>(Kind: ErrorClass, what: string, v: unknown): T {
  if (v === null || typeof v !== 'object' || Array.isArray(v))
    throw new Kind('EINVAL', `${what} must be an object, got ${describeValue(v)}`)
  return v as T
}

/** As `checkObject`, where `undefined` means `{}`. */
export function optionsObject<T extends object>(Kind: ErrorClass, what: string, v: unknown): T {
  return v === undefined ? ({} as T) : checkObject<T>(Kind, what, v)
}

export function checkString(Kind: ErrorClass, what: string, v: unknown): string {
  if (typeof v !== 'string') throw new Kind('EINVAL', `${what} must be a string, got ${describeValue(v)}`)
  return v
}

export function checkBytes(Kind: ErrorClass, what: string, v: unknown): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new Kind('EINVAL', `${what} must be a Uint8Array, got ${describeValue(v)}`)
  return v
}

export function checkFunction<T extends (...args: never[]) => unknown>(Kind: ErrorClass, what: string, v: unknown): T {
  if (typeof v !== 'function') throw new Kind('EINVAL', `${what} must be a function, got ${describeValue(v)}`)
  return v as T
}

export function checkBoolean(Kind: ErrorClass, what: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw new Kind('EINVAL', `${what} must be a boolean, got ${describeValue(v)}`)
  return v
}

/** An integer number from `min` to `max` (both safe integers). */
export function checkInteger(Kind: ErrorClass, what: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    const range = max === 0xffffffff ? '2^32-1' : max === Number.MAX_SAFE_INTEGER ? '2^53-1' : String(max)
    throw new Kind('EINVAL', `${what} must be an integer from ${min} to ${range}, got ${describeValue(v)}`)
  }
  return v
}

export function checkU32(Kind: ErrorClass, what: string, v: unknown): number {
  return checkInteger(Kind, what, v, 0, 0xffffffff)
}

const TWO_63 = 1n << 63n
const TWO_64 = 1n << 64n

/**
 * A 64-bit register or memory word given as a bigint from -2^63 to 2^64-1 or a safe integer;
 * negative values are two's complement. Anything else (1.5, 1e300, 2n ** 64n, a string) is
 * `EINVAL`: it would otherwise be truncated silently.
 */
export function checkU64(Kind: ErrorClass, what: string, v: unknown): bigint {
  if (typeof v === 'bigint') {
    if (v >= -TWO_63 && v < TWO_64) return BigInt.asUintN(64, v)
  } else if (typeof v === 'number' && Number.isSafeInteger(v)) {
    return BigInt.asUintN(64, BigInt(v))
  }
  throw new Kind('EINVAL', `${what} must be a bigint from -2^63 to 2^64-1 or a safe integer, got ${describeValue(v)}`)
}

/** An unsigned 64-bit value (an address, map_extra): a bigint or safe integer from 0 to 2^64-1. */
export function checkUnsigned64(Kind: ErrorClass, what: string, v: unknown): bigint {
  if ((typeof v === 'bigint' && v >= 0n && v < TWO_64) || (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0))
    return BigInt(v)
  throw new Kind('EINVAL', `${what} must be a bigint or safe integer from 0 to 2^64-1, got ${describeValue(v)}`)
}

/** An array of any length whose every slot holds a value (a sparse array's holes are named). */
export function checkDenseArray<T>(Kind: ErrorClass, what: string, v: unknown): readonly T[] {
  const a = checkArray<T>(Kind, what, v)
  for (let i = 0; i < a.length; i++) checkSlot(Kind, what, a, i)
  return a
}

/** An array, its slots not looked at (a caller that checks each element itself: `checkSlot`). */
export function checkArray<T>(Kind: ErrorClass, what: string, v: unknown): readonly T[] {
  if (!Array.isArray(v)) throw new Kind('EINVAL', `${what} must be an array, got ${describeValue(v)}`)
  return v as T[]
}

/** Slot `i` of `a` holds a value (is not a hole of a sparse array). */
export function checkSlot(Kind: ErrorClass, what: string, a: readonly unknown[], i: number): void {
  if (!(i in a)) throw new Kind('EINVAL', `${what}[${i}] is missing (a sparse array)`)
}
