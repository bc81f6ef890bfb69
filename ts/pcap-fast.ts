/**
 * The fast path of `filterPcap` for pcap files: a pcap file (either byte order, micro- or
 * nanosecond timestamps) read from a path and written, if at all, to a path as pcap or pcap-ns.
 * The file is read once, in 1 MiB chunks; each chunk's whole records go to the engine in one call
 * (`Program.filterPcapRecords`, crates/ebpf-node/src/pcap_records.rs), which runs the filter over
 * every record where it lies and writes the kept ones as the writer does (little-endian, the
 * fraction of a second in the output's unit, the captured length cut to what the filter returned):
 * byte for byte what the general path (`readBatches` + `writeBatches`) writes for such a file.
 * Nothing is done per packet in JavaScript, and memory stays bounded by two buffers of a chunk (or
 * of the largest record, at most 16 MiB).
 *
 * A file whose header this path does not take (another magic or version, a header cut short), a
 * program with JavaScript helpers, and a file the general path refuses before any packet has run
 * go the general way, errors and all. A record the general path refuses later (a fraction of a
 * second out of range, a captured length over the reader's limit, a truncated tail, a kept packet
 * longer than its original length) ends the pass with the general path's error, after the kept
 * packets before it are written, as the general path writes them.
 */
import { type FileHandle, open } from 'node:fs/promises'
import { EbpfError } from './errors.js'
import {
  DEFAULT_SNAPLEN,
  PCAP_HEADER_LENGTH,
  PCAP_MAGIC_NS,
  PCAP_MAGIC_US,
  PCAP_RECORD_HEADER_LENGTH,
} from './pcap/format.js'
import { pcapRecordError } from './pcap/read.js'
import { truncated } from './pcap/source.js'
import { checkOriginalLength, fileHeader } from './pcap/write.js'
import type { Program } from './program.js'

// 1 MiB: small enough that the records the read just copied are still in the cache when the engine
// walks them (4 MiB chunks ran about a third slower here).
const CHUNK = 1 << 20
const NONE = new Uint8Array(0)

/** What a pass of `filterPcap` did, on either road (re-exported by pcap-filter.ts, which imports this module). */
export interface FilterPcapSummary {
  /** Packets read. */
  packets: number
  /** Packets the filter kept (and wrote). */
  kept: number
  /** Packets whose run trapped (dropped). */
  trapped: number
  /** Captured bytes read, and written (after cutting to the returned length). */
  bytes: number
  keptBytes: number
  /** Wall time of the whole pass, reading and writing included. */
  durationNs: number
  packetsPerSecond: number
}

/** Not for this path: left to the general one (nothing has run). */
class NotFast extends Error {}

async function writeAll(sink: FileHandle, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length; ) at += (await sink.write(bytes, at, bytes.length - at)).bytesWritten
}

/** The summary of `filterPcap` over `input`, or undefined where the general path must do it. */
export async function fastFilterPcap(
  program: Program,
  input: string,
  output: string | undefined,
  options: { batchSize?: number; format?: string; onProgress?: (packets: number, bytes: number) => void },
): Promise<FilterPcapSummary | undefined> {
  // Every chunk is one call of the engine whatever the batch size; one out of range is the general
  // path's error to report.
  const batchSize = options.batchSize ?? 4096
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 1 << 24) return undefined
  const format = options.format ?? 'pcap'
  if (format !== 'pcap' && format !== 'pcap-ns') return undefined
  const started = process.hrtime.bigint()
  let file: FileHandle
  try {
    file = await open(input, 'r')
  } catch {
    return undefined // the general path reports a file it cannot open
  }
  let sink: FileHandle | undefined
  const summary = { packets: 0, kept: 0, trapped: 0, bytes: 0, keptBytes: 0 }
  try {
    let buf = Buffer.allocUnsafe(CHUNK)
    const head = await file.read(buf, 0, PCAP_HEADER_LENGTH, 0)
    if (head.bytesRead < PCAP_HEADER_LENGTH) return undefined
    const layout = {
      bigEndian: buf.readUInt32BE(0) === PCAP_MAGIC_US || buf.readUInt32BE(0) === PCAP_MAGIC_NS,
      nano: buf.readUInt32LE(0) === PCAP_MAGIC_NS || buf.readUInt32BE(0) === PCAP_MAGIC_NS,
      nanoOut: format === 'pcap-ns',
    }
    const u32 = (at: number): number => (layout.bigEndian ? buf.readUInt32BE(at) : buf.readUInt32LE(at))
    const magic = u32(0)
    const major = layout.bigEndian ? buf.readUInt16BE(4) : buf.readUInt16LE(4)
    if ((magic !== PCAP_MAGIC_US && magic !== PCAP_MAGIC_NS) || major !== 2) return undefined
    const linkType = u32(20) & 0xffff
    let out = output === undefined ? NONE : Buffer.allocUnsafe(CHUNK)
    /** File offset of the next read, and of `buf[0]`. */
    let position = PCAP_HEADER_LENGTH
    let base = PCAP_HEADER_LENGTH
    let carry = 0
    /** An error of the general path: its own (nothing has run yet) or thrown here. */
    const refuse = (error: EbpfError): never => {
      if (summary.packets === 0) throw new NotFast()
      throw error
    }
    const openSink = async (empty: boolean): Promise<void> => {
      if (output === undefined || sink !== undefined) return
      sink = await open(output, 'w')
      // The link type of the first packet, as the general path writes it (EN10MB for an empty capture).
      await writeAll(sink, fileHeader(format, empty ? 1 : linkType, DEFAULT_SNAPLEN))
    }
    for (;;) {
      const { bytesRead } = await file.read(buf, carry, buf.length - carry, position)
      position += bytesRead
      const end = carry + bytesRead
      if (output !== undefined && out.length < end) out = Buffer.allocUnsafe(buf.length)
      const r = program.filterPcapRecords(buf.subarray(0, end), out, DEFAULT_SNAPLEN, output !== undefined, layout)
      if (r === undefined) return undefined // JavaScript helpers: nothing has run
      summary.packets += r.packets
      summary.kept += r.kept
      summary.trapped += r.trapped
      summary.bytes += r.bytes
      summary.keptBytes += r.keptBytes
      if (summary.packets > 0) await openSink(false)
      if (sink !== undefined && r.written > 0) await writeAll(sink, out.subarray(0, r.written))
      const at = r.consumed
      if (r.stop === 'original') {
        checkOriginalLength(summary.kept, u32(at + 12), r.stopKeep)
        throw new EbpfError('EINVAL', `${input}: a kept packet is longer than its original length`)
      }
      if (r.stop !== '') {
        refuse(
          pcapRecordError(u32(at + 4), u32(at + 8), layout.nano, base + at) ??
            new EbpfError('EINVAL', `${input}: packet record at byte offset ${base + at} refused`),
        )
      }
      options.onProgress?.(summary.packets, summary.bytes)
      const left = end - at
      if (bytesRead === 0) {
        if (left === 0) break
        // A truncated last record, reported as the general path's byte source does.
        refuse(
          left < PCAP_RECORD_HEADER_LENGTH
            ? truncated('packet record header', PCAP_RECORD_HEADER_LENGTH, left, base + at)
            : truncated(
                'packet data',
                u32(at + 8),
                left - PCAP_RECORD_HEADER_LENGTH,
                base + at + PCAP_RECORD_HEADER_LENGTH,
              ),
        )
      }
      buf.copyWithin(0, at, end)
      base += at
      carry = left
      if (carry === buf.length) {
        // One record larger than the buffer (at most the reader's 16 MiB limit, which the engine
        // call checked): a buffer of its size.
        const bigger = Buffer.allocUnsafe(PCAP_RECORD_HEADER_LENGTH + u32(8))
        buf.copy(bigger, 0, 0, carry)
        buf = bigger
      }
    }
    await openSink(summary.packets === 0)
  } catch (e) {
    if (e instanceof NotFast) return undefined
    throw e
  } finally {
    await file.close()
    await sink?.close()
  }
  const durationNs = Number(process.hrtime.bigint() - started)
  return {
    ...summary,
    durationNs,
    packetsPerSecond: durationNs === 0 ? 0 : summary.packets / (durationNs / 1e9),
  }
}
