/**
 * The fast path of `filterPcap` for pcap files: a pcap file (either byte order, micro- or
 * nanosecond timestamps) read from a path and written, if at all, to a path as pcap or pcap-ns.
 * The engine does the whole pass (`Program.filterPcapRecords`, crates/ebpf-node/src/pcap_records.rs),
 * one call per 64 MiB window of the file: it maps the window, walks its records, runs the filter
 * over each where it lies and writes the kept ones to the output descriptor as the writer does
 * (little-endian, the fraction of a second in the output's unit, the captured length cut to what
 * the filter returned), an unchanged record as its own bytes: byte for byte what the general path
 * (`readBatches` + `writeBatches`) writes for such a file. Nothing is done per packet in
 * JavaScript, nothing is copied in user space, and memory stays bounded by the mapped window.
 *
 * A file whose header this path does not take (another magic or version, a header cut short), a
 * program with JavaScript helpers, and a file the general path refuses before any packet has run
 * (its first record refused or cut short) go the general way, errors and all. A record the general
 * path refuses later (a fraction of a second out of range, a captured length over the reader's
 * limit, a truncated tail, a kept packet longer than its original length) ends the pass with the
 * general path's error, after the kept packets before it are written, as the general path writes them.
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
  // The engine's batches do not depend on the batch size; one out of range is the general path's
  // error to report.
  const batchSize = options.batchSize ?? 4096
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 1 << 24) return undefined
  const format = options.format ?? 'pcap'
  if (format !== 'pcap' && format !== 'pcap-ns') return undefined
  if (!program.filtersPcapRecords()) return undefined // JavaScript helpers
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
    const h = Buffer.alloc(PCAP_HEADER_LENGTH + PCAP_RECORD_HEADER_LENGTH)
    let size = (await file.stat()).size
    const { bytesRead } = await file.read(h, 0, h.length, 0)
    if (bytesRead < PCAP_HEADER_LENGTH) return undefined
    const layout = {
      bigEndian: h.readUInt32BE(0) === PCAP_MAGIC_US || h.readUInt32BE(0) === PCAP_MAGIC_NS,
      nano: h.readUInt32LE(0) === PCAP_MAGIC_NS || h.readUInt32BE(0) === PCAP_MAGIC_NS,
      nanoOut: format === 'pcap-ns',
    }
    const u32 = (b: Buffer, at: number): number => (layout.bigEndian ? b.readUInt32BE(at) : b.readUInt32LE(at))
    const magic = u32(h, 0)
    const major = layout.bigEndian ? h.readUInt16BE(4) : h.readUInt16LE(4)
    if ((magic !== PCAP_MAGIC_US && magic !== PCAP_MAGIC_NS) || major !== 2) return undefined
    const linkType = u32(h, 20) & 0xffff
    const openSink = async (empty: boolean): Promise<void> => {
      if (output === undefined) return
      sink = await open(output, 'w')
      // The link type of the first packet, as the general path writes it (EN10MB for an empty capture).
      await writeAll(sink, fileHeader(format, empty ? 1 : linkType, DEFAULT_SNAPLEN))
    }
    if (size === PCAP_HEADER_LENGTH) {
      await openSink(true)
    } else {
      // A first record the general path refuses before any packet runs is its own to report.
      const first = PCAP_HEADER_LENGTH
      if (bytesRead < h.length) return undefined
      const captured = u32(h, first + 8)
      if (pcapRecordError(u32(h, first + 4), captured, layout.nano, first)) return undefined
      if (first + PCAP_RECORD_HEADER_LENGTH + captured > size) return undefined
      await openSink(false)
    }
    /** The 16 bytes of the record header at file offset `at` (or what the file has of them). */
    const headerAt = async (at: number): Promise<Buffer> => {
      const b = Buffer.alloc(PCAP_RECORD_HEADER_LENGTH)
      await file.read(b, 0, b.length, at)
      return b
    }
    // `size` as each call of the engine found it: a file that another process (or this pass's
    // own output) cuts shorter ends the pass at its new end.
    for (let at = PCAP_HEADER_LENGTH; at < size; ) {
      const r = program.filterPcapRecords(file.fd, at, sink?.fd ?? -1, DEFAULT_SNAPLEN, layout)
      size = r.size
      summary.packets += r.packets
      summary.kept += r.kept
      summary.trapped += r.trapped
      summary.bytes += r.bytes
      summary.keptBytes += r.keptBytes
      at = r.consumed
      if (r.stop === 'original') {
        checkOriginalLength(summary.kept, u32(await headerAt(at), 12), r.stopKeep)
        throw new EbpfError('EINVAL', `${input}: a kept packet is longer than its original length`)
      }
      if (r.stop !== '') {
        const b = await headerAt(at)
        throw (
          pcapRecordError(u32(b, 4), u32(b, 8), layout.nano, at) ??
          new EbpfError('EINVAL', `${input}: packet record at byte offset ${at} refused`)
        )
      }
      options.onProgress?.(summary.packets, summary.bytes)
      if (r.packets === 0 && at < size) {
        // A truncated last record (a window holds any whole record), reported as the general
        // path's byte source does.
        const left = size - at
        throw left < PCAP_RECORD_HEADER_LENGTH
          ? truncated('packet record header', PCAP_RECORD_HEADER_LENGTH, left, at)
          : truncated(
              'packet data',
              u32(await headerAt(at), 8),
              left - PCAP_RECORD_HEADER_LENGTH,
              at + PCAP_RECORD_HEADER_LENGTH,
            )
      }
    }
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
