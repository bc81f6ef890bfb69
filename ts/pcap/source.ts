/**
 * Reads exact byte counts from a stream of chunks, holding only what the current read needs: the
 * pcap readers pull one header or one block at a time, so a file of any size streams through.
 */
import { createReadStream } from 'node:fs'
import { FormatError } from '../errors.js'

/** What the readers accept: a file path, a Node.js readable stream (or any async iterable of byte chunks), or the bytes themselves. */
export type PcapInput = string | AsyncIterable<Uint8Array | string> | Iterable<Uint8Array> | Uint8Array

function chunksOf(input: PcapInput): AsyncIterator<Uint8Array | string> | Iterator<Uint8Array> {
  if (typeof input === 'string') return createReadStream(input, { highWaterMark: 1 << 16 })[Symbol.asyncIterator]()
  if (input instanceof Uint8Array) return [input][Symbol.iterator]()
  if (Symbol.asyncIterator in input) return input[Symbol.asyncIterator]()
  return input[Symbol.iterator]()
}

export class ByteSource {
  private readonly chunks: AsyncIterator<Uint8Array | string> | Iterator<Uint8Array>
  private buffer: Uint8Array = new Uint8Array(0)
  private position = 0
  /** File offset of the next byte `read` returns. */
  offset = 0

  constructor(input: PcapInput) {
    this.chunks = chunksOf(input)
  }

  /**
   * The next `n` bytes when they are already buffered, else `undefined` (then `read` them): the
   * readers' per-packet path, which skips a promise per read for all but one read in a chunk.
   */
  take(n: number): Uint8Array | undefined {
    if (this.buffer.length - this.position < n) return undefined
    const out = this.buffer.slice(this.position, this.position + n)
    this.position += n
    this.offset += n
    return out
  }

  /**
   * The next `n` bytes, or `undefined` at a clean end of input (no byte left) when `eofOk`. An end
   * of input inside the `n` bytes is a `FormatError` naming `what` and the offset where it started.
   */
  async read(n: number, what: string, eofOk = false): Promise<Uint8Array | undefined> {
    const have = this.buffer.length - this.position
    if (have < n) {
      // Gather whole chunks first and join once, so that a large block costs one copy.
      const parts = [this.buffer.subarray(this.position)]
      let total = have
      while (total < n) {
        const next = await this.chunks.next()
        if (next.done === true) {
          if (total === 0 && eofOk) return undefined
          throw new FormatError(`truncated file: ${what} needs ${n} bytes, only ${total} left`, this.offset)
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
      this.position = 0
    }
    const out = this.buffer.slice(this.position, this.position + n)
    this.position += n
    this.offset += n
    return out
  }

  /** Stops reading (closes a file opened by path). */
  async close(): Promise<void> {
    await this.chunks.return?.()
  }
}
