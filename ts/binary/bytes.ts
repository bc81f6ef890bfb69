/**
 * Bounds-checked little-endian reads over a byte buffer. Every object parser goes through this so
 * that truncated or corrupted input becomes a `FormatError` naming what was being read and where,
 * never a `RangeError` from a `DataView` or a silent read of garbage.
 */
import { FormatError } from '../errors.js'

export class ByteReader {
  readonly bytes: Uint8Array
  private readonly view: DataView
  /** Name of the structure being read, for error messages ("ELF header", ".BTF type #3"...). */
  readonly what: string
  /** Offset of `bytes[0]` in the whole file, so that errors report file offsets. */
  readonly base: number

  constructor(bytes: Uint8Array, what: string, base = 0) {
    this.bytes = bytes
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    this.what = what
    this.base = base
  }

  get length(): number {
    return this.bytes.length
  }

  /** Throws unless `size` bytes starting at `off` are inside the buffer. */
  need(off: number, size: number, field: string): void {
    if (!Number.isSafeInteger(off) || off < 0 || size < 0 || off + size > this.bytes.length) {
      throw new FormatError(
        `${this.what}: ${field} needs ${size} bytes at offset ${off}, but only ${this.bytes.length} bytes are present`,
        this.base + Math.max(0, Math.min(off, this.bytes.length)),
      )
    }
  }

  u8(off: number, field = 'u8'): number {
    this.need(off, 1, field)
    return this.view.getUint8(off)
  }
  u16(off: number, field = 'u16'): number {
    this.need(off, 2, field)
    return this.view.getUint16(off, true)
  }
  u32(off: number, field = 'u32'): number {
    this.need(off, 4, field)
    return this.view.getUint32(off, true)
  }
  i32(off: number, field = 'i32'): number {
    this.need(off, 4, field)
    return this.view.getInt32(off, true)
  }
  /** A 64-bit field that must fit a JavaScript number (sizes, offsets). */
  u64n(off: number, field = 'u64'): number {
    this.need(off, 8, field)
    const v = this.view.getBigUint64(off, true)
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new FormatError(`${this.what}: ${field} is too large (${v})`, this.base + off)
    }
    return Number(v)
  }
  u64(off: number, field = 'u64'): bigint {
    this.need(off, 8, field)
    return this.view.getBigUint64(off, true)
  }

  /** A sub-range as its own reader; offsets in errors stay file-relative. */
  slice(off: number, size: number, what: string): ByteReader {
    this.need(off, size, what)
    return new ByteReader(this.bytes.subarray(off, off + size), what, this.base + off)
  }

  /** A NUL-terminated string starting at `off` (UTF-8). */
  cstring(off: number, field = 'string'): string {
    this.need(off, 0, field)
    if (off >= this.bytes.length) {
      throw new FormatError(`${this.what}: ${field} offset ${off} is outside the string table`, this.base + off)
    }
    const end = this.bytes.indexOf(0, off)
    if (end < 0) throw new FormatError(`${this.what}: ${field} at offset ${off} is not NUL-terminated`, this.base + off)
    return decoder.decode(this.bytes.subarray(off, end))
  }

  fail(message: string, off: number): never {
    throw new FormatError(`${this.what}: ${message}`, this.base + off)
  }
}

const decoder = new TextDecoder('utf-8')
