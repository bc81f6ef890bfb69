/**
 * Streaming readers of pcap (both byte orders, micro- and nanosecond timestamps) and pcapng
 * (sections in either byte order, interface descriptions with their timestamp resolution and offset,
 * enhanced and simple packet blocks; other blocks are skipped). One record or block is in memory at a
 * time and a block is at most `MAX_BLOCK_LENGTH`, so malformed lengths give a `FormatError`
 * (`EINVAL`, naming the byte offset) rather than a huge allocation.
 */
import { EbpfError, FormatError } from '../errors.js'
import {
  IF_TSOFFSET,
  IF_TSRESOL,
  MAX_BLOCK_LENGTH,
  type Packet,
  PCAP_HEADER_LENGTH,
  PCAP_MAGIC_NS,
  PCAP_MAGIC_US,
  PCAP_RECORD_HEADER_LENGTH,
  PCAPNG_BYTE_ORDER_MAGIC,
  PCAPNG_ENHANCED_PACKET,
  PCAPNG_INTERFACE_DESCRIPTION,
  PCAPNG_SECTION_HEADER,
  PCAPNG_SIMPLE_PACKET,
} from './format.js'
import { ByteSource, type PcapInput } from './source.js'

const NS_PER_SECOND = 1_000_000_000n

/** Which capture format a file's first four bytes announce, or undefined for neither. */
export function captureFormat(head: Uint8Array): 'pcap' | 'pcapng' | undefined {
  if (head.length < 4) return undefined
  const view = new DataView(head.buffer, head.byteOffset, 4)
  for (const little of [true, false]) {
    const magic = view.getUint32(0, little)
    if (magic === PCAP_MAGIC_US || magic === PCAP_MAGIC_NS) return 'pcap'
  }
  return view.getUint32(0, true) === PCAPNG_SECTION_HEADER ? 'pcapng' : undefined
}

/** The packets of a pcap or pcapng file or stream, in file order. */
export async function* read(input: PcapInput): AsyncGenerator<Packet, void, undefined> {
  for await (const batch of readBatches(input, { batchSize: 256 })) {
    for (const p of batch) {
      // A packet of its own: one kept by the caller must not pin its batch's arena (1 MiB).
      p.data = p.data.slice()
      yield p
    }
  }
}

/**
 * A batch of `readBatches`: the packets, and `bytes`, their data back to back (each packet's `data`
 * is a view of it), which `Program.runBatchRetvals({ bytes, lengths })` takes without a copy.
 */
export type PacketBatch = Packet[] & { bytes: Uint8Array }

/** Bytes of packet data one batch holds at most (a larger packet has a batch of its own). */
const ARENA_BYTES = 1 << 20

/** Packets per batch `readBatches` yields when no size is given. */
export const DEFAULT_BATCH_SIZE = 4096

/**
 * The packets of a pcap or pcapng file or stream in arrays of up to `batchSize`, read without an
 * asynchronous step per packet (only where the buffered bytes run out): the form for throughput,
 * as `Program.filterPcap` uses it. Packets before a malformed record come out before its error.
 * The packets of a batch are views, one after the other, of one buffer of their own (1 MiB, or one larger packet).
 */
export async function* readBatches(
  input: PcapInput,
  options: { batchSize?: number } = {},
): AsyncGenerator<PacketBatch, void, undefined> {
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 1 << 24) {
    throw new EbpfError('EINVAL', `batchSize must be an integer from 1 to 2^24, got ${String(batchSize)}`)
  }
  const source = new ByteSource(input)
  try {
    await source.fill(4, 'file magic')
    const magic = source.copy(source.skip(0), 4)
    const format = captureFormat(magic)
    // The packets of a batch are copied one after the other into one arena, so that the batch
    // reaches the engine as one buffer without another copy (see `runBatchRetvals`); a batch ends
    // early where its arena is full.
    let arena = new Uint8Array(ARENA_BYTES)
    let used = 0
    let fresh = false
    const take: Take = (at, n) => {
      if (used + n > arena.length) {
        arena = new Uint8Array(Math.max(ARENA_BYTES, n))
        used = 0
        fresh = true
      }
      const data = arena.subarray(used, used + n)
      source.copyInto(at, n, data)
      used += n
      return data
    }
    const packets =
      format === 'pcap' ? readPcap(source, take) : format === 'pcapng' ? readPcapng(source, take) : undefined
    if (packets === undefined) {
      const hex = Array.from(magic, (b) => b.toString(16).padStart(2, '0')).join('')
      throw new FormatError(`not a pcap or pcapng file (magic 0x${hex})`, 0)
    }
    let batch: Packet[] = []
    /** The batch with the bytes of its packets, which lie back to back in one arena. */
    const packedBatch = (): PacketBatch => {
      const first = batch[0]!.data
      const last = batch[batch.length - 1]!.data
      const bytes = new Uint8Array(first.buffer, first.byteOffset, last.byteOffset + last.length - first.byteOffset)
      return Object.assign(batch, { bytes })
    }
    try {
      // The readers yield packets while bytes are buffered, and a request where they must wait for more.
      let next = packets.next(false)
      while (!next.done) {
        const v = next.value
        if ('need' in v) {
          next = packets.next(await source.fill(v.need, v.what, v.eofOk))
          continue
        }
        if ((fresh && batch.length > 0) || batch.length >= batchSize) {
          yield packedBatch()
          batch = []
        }
        fresh = false
        batch.push(v)
        next = packets.next(false)
      }
    } catch (e) {
      if (batch.length > 0) yield packedBatch()
      throw e
    }
    if (batch.length > 0) yield packedBatch()
  } finally {
    await source.close()
  }
}

/** A reader's request for `need` buffered bytes; the answer is `ByteSource.fill`'s. */
interface Need {
  need: number
  what: string
  eofOk: boolean
}

type Reader = Generator<Packet | Need, void, boolean>
/** Where a reader puts a packet's bytes: `n` buffered bytes at index `at` of the source's view. */
type Take = (at: number, n: number) => Uint8Array

/** True when `n` bytes are buffered, after asking the driver to buffer them if they were not. */
function* fill(source: ByteSource, n: number, what: string, eofOk = false): Generator<Need, boolean, boolean> {
  if (source.available(n)) return true
  return yield { need: n, what, eofOk }
}

/**
 * Why the reader refuses a pcap record header at file offset `at` (a fraction of a second out of
 * range, a captured length over `MAX_BLOCK_LENGTH`), or undefined; `filterPcap`'s fast path reports
 * the same errors.
 */
export function pcapRecordError(
  fraction: number,
  capturedLength: number,
  nano: boolean,
  at: number,
): FormatError | undefined {
  if (fraction >= (nano ? 1_000_000_000 : 1_000_000)) {
    return new FormatError(
      `packet record: ${nano ? 'nano' : 'micro'}second field ${fraction} is not below one second`,
      at + 4,
    )
  }
  if (capturedLength > MAX_BLOCK_LENGTH) {
    return new FormatError(
      `packet record: captured length ${capturedLength} is over the ${MAX_BLOCK_LENGTH}-byte limit`,
      at + 8,
    )
  }
  return undefined
}

function* readPcap(source: ByteSource, take: Take): Reader {
  yield* fill(source, PCAP_HEADER_LENGTH, 'pcap file header')
  const header = new DataView(source.copy(source.skip(PCAP_HEADER_LENGTH), PCAP_HEADER_LENGTH).buffer)
  const magic = header.getUint32(0, true)
  const little = magic === PCAP_MAGIC_US || magic === PCAP_MAGIC_NS
  const nano = header.getUint32(0, little) === PCAP_MAGIC_NS
  const major = header.getUint16(4, little)
  if (major !== 2) {
    throw new FormatError(`pcap file header: version ${major}.${header.getUint16(6, little)} is not 2.x`, 4)
  }
  // The link type is the low 16 bits; the upper bits carry the FCS length of some captures.
  const linkType = header.getUint32(20, little) & 0xffff
  for (;;) {
    const at = source.offset
    if (!(yield* fill(source, PCAP_RECORD_HEADER_LENGTH, 'packet record header', true))) return
    const r = source.skip(PCAP_RECORD_HEADER_LENGTH)
    const v = source.view
    const seconds = v.getUint32(r, little)
    const fraction = v.getUint32(r + 4, little)
    const capturedLength = v.getUint32(r + 8, little)
    const originalLength = v.getUint32(r + 12, little)
    const refused = pcapRecordError(fraction, capturedLength, nano, at)
    if (refused) throw refused
    yield* fill(source, capturedLength, 'packet data')
    yield {
      timestamp: BigInt(seconds) * NS_PER_SECOND + BigInt(fraction) * (nano ? 1n : 1000n),
      data: take(source.skip(capturedLength), capturedLength),
      originalLength,
      interface: 0,
      linkType,
    }
  }
}

interface Interface {
  linkType: number
  snaplen: number
  /** Timestamp units per second (if_tsresol; 10^6 when absent). */
  unitsPerSecond: bigint
  /** Seconds added to every timestamp (if_tsoffset). */
  offsetSeconds: bigint
}

function* readPcapng(source: ByteSource, take: Take): Reader {
  let little = true
  let interfaces: Interface[] = []
  for (;;) {
    const at = source.offset
    // Every block has at least its type, its length and the length again: 12 bytes.
    if (!(yield* fill(source, 12, 'block header', true))) return
    let h = source.skip(0)
    const section = source.view.getUint32(h, true) === PCAPNG_SECTION_HEADER
    if (section) {
      // The section header's type reads the same in both orders; its byte-order magic sets the order.
      const bom = source.view.getUint32(h + 8, true)
      if (bom === PCAPNG_BYTE_ORDER_MAGIC) little = true
      else if (bom === 0x4d3c2b1a) little = false
      else {
        throw new FormatError(`section header block: byte-order magic 0x${bom.toString(16)} is not 0x1a2b3c4d`, at + 8)
      }
    }
    const type = source.view.getUint32(h, little)
    const length = checkLength(source.view.getUint32(h + 4, little), at, section ? 28 : 12)
    yield* fill(source, length, `block of type ${type}`)
    const b = source.skip(length)
    const v = source.view
    const trailer = v.getUint32(b + length - 4, little)
    if (trailer !== length) {
      throw new FormatError(
        `block's trailing length ${trailer} differs from its leading length ${length}`,
        at + length - 4,
      )
    }
    const content = length - 12
    h = b + 8
    if (section) {
      const major = v.getUint16(h + 4, little)
      if (major !== 1) throw new FormatError(`section header block: version ${major} is not 1.x`, at + 12)
      interfaces = []
    } else if (type === PCAPNG_INTERFACE_DESCRIPTION) {
      if (content < 8) throw new FormatError(`interface description block: ${content} bytes, needs 8`, at)
      interfaces.push(interfaceOf(v, h, content, little, at))
    } else if (type === PCAPNG_ENHANCED_PACKET) {
      if (content < 20) throw new FormatError(`enhanced packet block: ${content} bytes, needs 20`, at)
      const id = v.getUint32(h, little)
      const iface = interfaces[id]
      if (iface === undefined) {
        throw new FormatError(
          `enhanced packet block: interface ${id} is not described (${interfaces.length} in this section)`,
          at + 8,
        )
      }
      const units = (BigInt(v.getUint32(h + 4, little)) << 32n) | BigInt(v.getUint32(h + 8, little))
      const capturedLength = v.getUint32(h + 12, little)
      if (capturedLength > content - 20) {
        throw new FormatError(
          `enhanced packet block: captured length ${capturedLength} is past the block's end`,
          at + 20,
        )
      }
      yield {
        timestamp: timestampOf(units, iface),
        data: take(h + 20, capturedLength),
        originalLength: v.getUint32(h + 16, little),
        interface: id,
        linkType: iface.linkType,
      }
    } else if (type === PCAPNG_SIMPLE_PACKET) {
      const iface = interfaces[0]
      if (iface === undefined)
        throw new FormatError('simple packet block: no interface is described in this section', at)
      if (content < 4) throw new FormatError(`simple packet block: ${content} bytes, needs 4`, at)
      const originalLength = v.getUint32(h, little)
      // The captured length is implied: the original length cut to the snap length and the block.
      let capturedLength = Math.min(originalLength, content - 4)
      if (iface.snaplen !== 0) capturedLength = Math.min(capturedLength, iface.snaplen)
      yield {
        timestamp: 0n,
        data: take(h + 4, capturedLength),
        originalLength,
        interface: 0,
        linkType: iface.linkType,
      }
    }
    // Any other block (name resolution, statistics, custom...) carries no packet: skipped.
  }
}

function checkLength(length: number, at: number, minimum: number): number {
  if (length < minimum || length % 4 !== 0) {
    throw new FormatError(`block total length ${length} is not a multiple of 4 of at least ${minimum}`, at + 4)
  }
  if (length > MAX_BLOCK_LENGTH)
    throw new FormatError(`block total length ${length} is over the ${MAX_BLOCK_LENGTH}-byte limit`, at + 4)
  return length
}

/** An interface description block's fields and options; `h` is the index of its content in `v`. */
function interfaceOf(v: DataView, h: number, content: number, little: boolean, at: number): Interface {
  const iface: Interface = {
    linkType: v.getUint16(h, little),
    snaplen: v.getUint32(h + 4, little),
    unitsPerSecond: 1_000_000n,
    offsetSeconds: 0n,
  }
  let off = 8
  while (off + 4 <= content) {
    const code = v.getUint16(h + off, little)
    const len = v.getUint16(h + off + 2, little)
    if (code === 0) break
    if (off + 4 + len > content) {
      throw new FormatError(
        `interface description block: option ${code} of ${len} bytes runs past the block`,
        at + 8 + off,
      )
    }
    if (code === IF_TSRESOL && len >= 1) {
      const r = v.getUint8(h + off + 4)
      // High bit set: a negative power of two; clear: a negative power of ten.
      iface.unitsPerSecond = r & 0x80 ? 1n << BigInt(r & 0x7f) : 10n ** BigInt(r)
    } else if (code === IF_TSOFFSET && len >= 8) {
      iface.offsetSeconds = v.getBigInt64(h + off + 4, little)
    }
    off += 4 + ((len + 3) & ~3)
  }
  return iface
}

function timestampOf(units: bigint, iface: Interface): bigint {
  return (units * NS_PER_SECOND) / iface.unitsPerSecond + iface.offsetSeconds * NS_PER_SECOND
}
