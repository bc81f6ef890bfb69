/**
 * Streaming writer of pcap (microsecond or nanosecond timestamps) and pcapng (one section, one
 * interface or several, each with nanosecond if_tsresol, enhanced packet blocks), in little-endian
 * order. Packets come
 * from any (async) iterable and go out in batches with the stream's back-pressure respected.
 */

import { once } from 'node:events'
import { createWriteStream } from 'node:fs'
import type { Writable } from 'node:stream'
import { EbpfError } from '../errors.js'
import {
  DEFAULT_SNAPLEN,
  IF_TSRESOL,
  LINK_TYPES,
  type LinkTypeName,
  PCAP_MAGIC_NS,
  PCAP_MAGIC_US,
  PCAPNG_BYTE_ORDER_MAGIC,
  PCAPNG_ENHANCED_PACKET,
  PCAPNG_INTERFACE_DESCRIPTION,
  PCAPNG_SECTION_HEADER,
} from './format.js'

/** A packet to write: `timestamp` (nanoseconds since the epoch) defaults to 0, `originalLength` to the data's length. */
export interface PacketToWrite {
  data: Uint8Array
  timestamp?: bigint
  originalLength?: number
  /** pcapng with `interfaces`: the index of the interface it was captured on (default 0); else ignored. */
  interface?: number
}

export interface WriteOptions {
  /** The link type of every packet: a `LINK_TYPES` name or a LINKTYPE_ number (default EN10MB). */
  linkType?: LinkTypeName | number
  /** Packets are cut to this many bytes, keeping their original length (default 262144). */
  snaplen?: number
  /** `pcap` (microseconds, the default), `pcap-ns` (nanoseconds) or `pcapng`. */
  format?: 'pcap' | 'pcap-ns' | 'pcapng'
  /**
   * pcapng only: the link type of each interface (one interface description block each, in
   * order); packets name theirs by index (`PacketToWrite.interface`). Instead of `linkType`.
   */
  interfaces?: ReadonlyArray<LinkTypeName | number>
}

const FLUSH_BYTES = 1 << 16
const NS_PER_SECOND = 1_000_000_000n

function linkTypeNumber(linkType: LinkTypeName | number): number {
  if (typeof linkType === 'number') {
    if (!Number.isInteger(linkType) || linkType < 0 || linkType > 0xffff) {
      throw new EbpfError('EINVAL', `linkType ${linkType} is not a LINKTYPE_ number (0..65535)`)
    }
    return linkType
  }
  const n = (LINK_TYPES as Record<string, number>)[linkType]
  if (n === undefined)
    throw new EbpfError('EINVAL', `linkType '${linkType}' is not one of ${Object.keys(LINK_TYPES).join(', ')}`)
  return n
}

/**
 * The file header `write` starts a capture with (pcap; pcapng: the section header and an interface
 * description block per link type of `linkType`, one or an array).
 */
export function fileHeader(
  format: 'pcap' | 'pcap-ns' | 'pcapng',
  linkType: number | readonly number[],
  snaplen: number,
): Uint8Array {
  const linkTypes = typeof linkType === 'number' ? [linkType] : linkType
  if (format !== 'pcapng') {
    const h = new DataView(new ArrayBuffer(24))
    h.setUint32(0, format === 'pcap' ? PCAP_MAGIC_US : PCAP_MAGIC_NS, true)
    h.setUint16(4, 2, true)
    h.setUint16(6, 4, true)
    h.setUint32(16, snaplen, true)
    h.setUint32(20, linkTypes[0]!, true)
    return new Uint8Array(h.buffer)
  }
  const h = new DataView(new ArrayBuffer(28 + 32 * linkTypes.length))
  h.setUint32(0, PCAPNG_SECTION_HEADER, true)
  h.setUint32(4, 28, true)
  h.setUint32(8, PCAPNG_BYTE_ORDER_MAGIC, true)
  h.setUint16(12, 1, true)
  h.setBigInt64(16, -1n, true) // section length unknown: the writer streams
  h.setUint32(24, 28, true)
  linkTypes.forEach((type, i) => {
    const at = 28 + 32 * i
    h.setUint32(at, PCAPNG_INTERFACE_DESCRIPTION, true)
    h.setUint32(at + 4, 32, true)
    h.setUint16(at + 8, type, true)
    h.setUint32(at + 12, snaplen, true)
    h.setUint16(at + 16, IF_TSRESOL, true)
    h.setUint16(at + 18, 1, true)
    h.setUint8(at + 20, 9) // 10^-9: nanoseconds
    // bytes 24..27: opt_endofopt (zero)
    h.setUint32(at + 28, 32, true)
  })
  return new Uint8Array(h.buffer)
}

/** The writer's check of a packet's original length (`filterPcap`'s fast path makes it too). */
export function checkOriginalLength(index: number, originalLength: number, dataLength: number): void {
  if (!Number.isInteger(originalLength) || originalLength < dataLength || originalLength > 0xffffffff) {
    throw new EbpfError(
      'EINVAL',
      `packet ${index}: originalLength ${originalLength} is below the data's ${dataLength} bytes or not a u32`,
    )
  }
}

function record(
  format: 'pcap' | 'pcap-ns' | 'pcapng',
  packet: PacketToWrite,
  snaplen: number,
  index: number,
  interfaces: number,
): Uint8Array {
  const { data } = packet
  if (!(data instanceof Uint8Array)) throw new EbpfError('EINVAL', `packet ${index}: data is not a Uint8Array`)
  const timestamp = packet.timestamp ?? 0n
  const originalLength = packet.originalLength ?? data.length
  if (typeof timestamp !== 'bigint' || timestamp < 0n) {
    throw new EbpfError('EINVAL', `packet ${index}: timestamp must be a non-negative bigint of nanoseconds`)
  }
  checkOriginalLength(index, originalLength, data.length)
  const captured = data.subarray(0, Math.min(data.length, snaplen))
  if (format === 'pcapng') {
    if (timestamp >= 1n << 64n)
      throw new EbpfError('EINVAL', `packet ${index}: timestamp is past pcapng's 64-bit nanoseconds`)
    // `interfaces` described by the option (0 without it: every packet goes on the one interface).
    const iface = interfaces > 0 ? (packet.interface ?? 0) : 0
    if (!Number.isInteger(iface) || iface < 0 || (interfaces > 0 && iface >= interfaces)) {
      throw new EbpfError(
        'EINVAL',
        `packet ${index}: interface ${String(packet.interface)} is not one of the ${interfaces} described`,
      )
    }
    const padded = (captured.length + 3) & ~3
    const length = 32 + padded
    const out = new Uint8Array(length)
    const v = new DataView(out.buffer)
    v.setUint32(0, PCAPNG_ENHANCED_PACKET, true)
    v.setUint32(4, length, true)
    v.setUint32(8, iface, true)
    v.setUint32(12, Number(timestamp >> 32n) >>> 0, true)
    v.setUint32(16, Number(timestamp & 0xffffffffn), true)
    v.setUint32(20, captured.length, true)
    v.setUint32(24, originalLength, true)
    out.set(captured, 28)
    v.setUint32(length - 4, length, true)
    return out
  }
  const seconds = timestamp / NS_PER_SECOND
  if (seconds > 0xffffffffn)
    throw new EbpfError('EINVAL', `packet ${index}: timestamp is past what pcap's 32-bit seconds hold`)
  const fraction = timestamp % NS_PER_SECOND
  const out = new Uint8Array(16 + captured.length)
  const v = new DataView(out.buffer)
  v.setUint32(0, Number(seconds), true)
  v.setUint32(4, Number(format === 'pcap' ? fraction / 1000n : fraction), true)
  v.setUint32(8, captured.length, true)
  v.setUint32(12, originalLength, true)
  out.set(captured, 16)
  return out
}

/**
 * Writes `packets` to a file path or a writable stream; resolves to the number of packets written.
 * A path is created (or truncated) and closed at the end; a stream given by the caller is left open.
 */
export async function write(
  output: string | Writable,
  packets: Iterable<PacketToWrite> | AsyncIterable<PacketToWrite>,
  options: WriteOptions = {},
): Promise<number> {
  if (
    typeof packets !== 'object' ||
    packets === null ||
    !(Symbol.iterator in packets || Symbol.asyncIterator in packets)
  ) {
    throw new EbpfError('EINVAL', 'pcap.write takes the packets as an iterable or async iterable')
  }
  return writeBatches(output, Symbol.asyncIterator in packets ? oneByOne(packets) : [packets], options)
}

async function* oneByOne(packets: AsyncIterable<PacketToWrite>): AsyncGenerator<PacketToWrite[]> {
  for await (const p of packets) yield [p]
}

/**
 * `write` of packets that come in batches (arrays or other iterables): one asynchronous step per
 * batch rather than per packet, the form `Program.filterPcap` writes with.
 */
export async function writeBatches(
  output: string | Writable,
  batches: Iterable<Iterable<PacketToWrite>> | AsyncIterable<Iterable<PacketToWrite>>,
  options: WriteOptions = {},
): Promise<number> {
  const writer = createWriter(output, options)
  try {
    for await (const batch of batches) await writer.write(batch)
  } finally {
    await writer.close()
  }
  return writer.count
}

/** A capture being written, fed by the caller: one `write` per batch, then `close` (always). */
export interface PcapWriter {
  /** Appends the packets; resolves once the stream has room for more. */
  write(packets: Iterable<PacketToWrite>): Promise<void>
  /** Flushes and, for a path, closes the file; resolves to the packets written. */
  close(): Promise<number>
  /** Packets written so far. */
  readonly count: number
}

/**
 * A writer for several captures written side by side (as `runPcap` writes one per verdict); the
 * header is written with the first flush, so a capture with no packet is still a valid file.
 */
export function createWriter(output: string | Writable, options: WriteOptions = {}): PcapWriter {
  const format = options.format ?? 'pcap'
  if (format !== 'pcap' && format !== 'pcap-ns' && format !== 'pcapng') {
    throw new EbpfError('EINVAL', `format '${String(format)}' is not pcap, pcap-ns or pcapng`)
  }
  const snaplen = options.snaplen ?? DEFAULT_SNAPLEN
  if (!Number.isInteger(snaplen) || snaplen < 1 || snaplen > 0x7fffffff) {
    throw new EbpfError('EINVAL', `snaplen ${snaplen} is not a positive 32-bit length`)
  }
  const { interfaces } = options
  if (interfaces !== undefined) {
    if (format !== 'pcapng')
      throw new EbpfError('EINVAL', `interfaces are for pcapng; a ${format} file has one link type`)
    if (!Array.isArray(interfaces) || interfaces.length === 0 || interfaces.length > 0xffff)
      throw new EbpfError('EINVAL', 'interfaces must be a non-empty array of link types')
    if (options.linkType !== undefined) throw new EbpfError('EINVAL', 'give linkType or interfaces, not both')
  }
  const linkType = (interfaces ?? [options.linkType ?? 'EN10MB']).map(linkTypeNumber)
  const described = interfaces === undefined ? 0 : linkType.length
  const stream = typeof output === 'string' ? createWriteStream(output) : output
  let pending: Uint8Array[] = [fileHeader(format, linkType, snaplen)]
  let pendingBytes = pending[0]!.length
  let failure: Error | undefined
  // A file that cannot be opened reports on the stream: kept for the next write or close.
  const onError = (e: Error): void => {
    failure ??= e
  }
  stream.on('error', onError)
  const flush = async (): Promise<void> => {
    if (failure) throw failure
    if (pending.length === 0) return
    const chunk = Buffer.concat(pending, pendingBytes)
    pending = []
    pendingBytes = 0
    // `once` rejects on an 'error' event too, and removes its listeners either way.
    if (!stream.write(chunk)) await once(stream, 'drain')
    if (failure) throw failure
  }
  let count = 0
  let closed = false
  return {
    get count() {
      return count
    },
    async write(packets) {
      if (closed) throw new EbpfError('EINVAL', 'pcap writer written after close')
      for (const packet of packets) {
        const r = record(format, packet, snaplen, count++, described)
        pending.push(r)
        pendingBytes += r.length
        // Within a batch too: a synchronous iterable is one batch of any length.
        if (pendingBytes >= FLUSH_BYTES) await flush()
      }
    },
    async close() {
      if (closed) return count
      closed = true
      try {
        await flush()
      } finally {
        if (typeof output === 'string') {
          if (!stream.destroyed) {
            stream.end()
            await once(stream, 'close')
          }
        }
        stream.off('error', onError)
      }
      return count
    },
  }
}
