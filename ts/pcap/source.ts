/**
 * Reads exact byte counts from a stream of chunks, holding only what the current read needs: the
 * pcap readers pull one header or one block at a time, so a file of any size streams through.
 */
import { createReadStream } from 'node:fs'
import { EbpfError, FormatError, unreadableFile } from '../errors.js'

/** What the readers accept: a file path, a Node.js readable stream (or any async iterable of byte chunks), or the bytes themselves. */
export type PcapInput = string | AsyncIterable<Uint8Array | string> | Iterable<Uint8Array> | Uint8Array

/** The chunks of a file; a file that cannot be opened or read is an EbpfError naming it. */
async function* fileChunks(path: string): AsyncGenerator<Uint8Array | string> {
  try {
    yield* createReadStream(path, { highWaterMark: 1 << 16 })
  } catch (e) {
    throw unreadableFile('capture file', path, e)
  }
}

function chunksOf(input: PcapInput): AsyncIterator<Uint8Array | string> | Iterator<Uint8Array> {
  if (typeof input === 'string') return fileChunks(input)
  if (input instanceof Uint8Array) return [input][Symbol.iterator]()
  if (typeof input === 'object' && input !== null) {
    if (Symbol.asyncIterator in input) return input[Symbol.asyncIterator]()
    if (Symbol.iterator in input) return input[Symbol.iterator]()
  }
  throw new EbpfError(
    'EINVAL',
    'pcap.read takes a path, a readable stream, an (async) iterable of byte chunks or bytes',
  )
}

/** An end of input inside `n` bytes of `what` that start at file offset `offset`, `left` bytes short of them. */
export function truncated(what: string, n: number, left: number, offset: number): FormatError {
  return new FormatError(`truncated file: ${what} needs ${n} bytes, only ${left} left`, offset)
}

export class ByteSource {
  private readonly chunks: AsyncIterator<Uint8Array | string> | Iterator<Uint8Array>
  private buffer: Uint8Array = new Uint8Array(0)
  /** A view of the buffered bytes: header fields are read in place at the index `skip` returns. */
  view = new DataView(this.buffer.buffer)
  private position = 0
  /** File offset of the next byte `skip` passes. */
  offset = 0

  constructor(input: PcapInput) {
    this.chunks = chunksOf(input)
  }

  /** Whether `n` bytes are buffered: the per-packet path, which costs no promise. */
  available(n: number): boolean {
    return this.buffer.length - this.position >= n
  }

  /**
   * Buffers at least `n` bytes; false at a clean end of input (no byte left) when `eofOk`. An end of
   * input inside the `n` bytes is a `FormatError` naming `what` and the offset where it started.
   * The indices `skip` returned before are void afterwards (the buffer is replaced).
   */
  async fill(n: number, what: string, eofOk = false): Promise<boolean> {
    const have = this.buffer.length - this.position
    if (have >= n) return true
    // Gather whole chunks first and join once, so that a large block costs one copy.
    const parts = [this.buffer.subarray(this.position)]
    let total = have
    while (total < n) {
      const next = await this.chunks.next()
      if (next.done === true) {
        if (total === 0 && eofOk) return false
        throw truncated(what, n, total, this.offset)
      }
      const value = next.value
      if (typeof value === 'string') {
        throw new FormatError('the input stream yields strings; open it without an encoding', this.offset)
      }
      parts.push(value)
      total += value.length
    }
    const joined = new Uint8Array(total)
    let at = 0
    for (const part of parts) {
      joined.set(part, at)
      at += part.length
    }
    this.buffer = joined
    this.view = new DataView(joined.buffer)
    this.position = 0
    return true
  }

  /** Passes `n` buffered bytes (check `available` or `fill` first); returns their index in `view`. */
  skip(n: number): number {
    const at = this.position
    this.position += n
    this.offset += n
    return at
  }

  /** A copy of buffered bytes at an index `skip` returned (a copy: a packet must not pin the chunk). */
  copy(at: number, n: number): Uint8Array {
    return this.buffer.slice(at, at + n)
  }

  /** Copies buffered bytes at an index `skip` returned into `target`. */
  copyInto(at: number, n: number, target: Uint8Array): void {
    target.set(this.buffer.subarray(at, at + n))
  }

  /** The next `n` bytes as a copy (the readers' headers), or `undefined` at a clean end when `eofOk`. */
  async read(n: number, what: string, eofOk = false): Promise<Uint8Array | undefined> {
    if (!(await this.fill(n, what, eofOk))) return undefined
    return this.copy(this.skip(n), n)
  }

  /** Stops reading (closes a file opened by path). */
  async close(): Promise<void> {
    await this.chunks.return?.()
  }
}
