/**
 * The fast path of `filterPcap` for pcap files: a pcap file (either byte order, micro- or
 * nanosecond timestamps) read from a path and written, if at all, to a path as pcap or pcap-ns.
 * The file is read once, in 1 MiB chunks (the next one read while the engine filters this one);
 * each chunk's whole records go to the engine in one call
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
/** Room before each chunk for the unfinished last record of the chunk before (larger ones are joined by a copy). */
const ROOM = 1 << 16
const NONE = new Uint8Array(0)
const NONE_BUFFER = Buffer.alloc(0)

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
  // The read of the next chunk and the writes of kept records run on the thread pool while the
  // engine filters the chunk before: `reading` is the read under way, `writing` the last write
  // queued (writes are chained, so the file gets them in order).
  let reading: Promise<{ bytesRead: number }> | undefined
  let writing: Promise<void> = Promise.resolve()
  try {
    /** Two chunk buffers, each with room before its chunk for the unfinished record before it. */
    const blocks = [Buffer.allocUnsafe(ROOM + CHUNK), Buffer.allocUnsafe(ROOM + CHUNK)]
    const head = await file.read(blocks[0]!, 0, PCAP_HEADER_LENGTH, 0)
    if (head.bytesRead < PCAP_HEADER_LENGTH) return undefined
    const h = blocks[0]!
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
    /** Output buffers, one per chunk buffer, and the write that last used each. */
    const outs =
      output === undefined ? [NONE, NONE] : [Buffer.allocUnsafe(ROOM + CHUNK), Buffer.allocUnsafe(ROOM + CHUNK)]
    const written: Array<Promise<void>> = [writing, writing]
    /** File offset of the next read. */
    let position = PCAP_HEADER_LENGTH
    /** The bytes of the last chunk after its last whole record, and the file offset of their first. */
    let carry: Buffer = NONE_BUFFER
    let base = PCAP_HEADER_LENGTH
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
    /** Starts the read of the chunk at `position` into `block`; its failure is awaited where it is used. */
    const readInto = (block: Buffer): void => {
      reading = file.read(block, ROOM, CHUNK, position)
      reading.catch(() => {})
    }
    readInto(blocks[0]!)
    for (let k = 0; ; k++) {
      const block = blocks[k % 2]!
      const { bytesRead } = await reading!
      reading = undefined
      position += bytesRead
      // The records to walk: the carry, then the chunk just read (a record longer than the room
      // before the chunk, at most the reader's 16 MiB limit, joins it in a buffer of its own).
      let view: Buffer
      if (carry.length <= ROOM) {
        carry.copy(block, ROOM - carry.length)
        view = block.subarray(ROOM - carry.length, ROOM + bytesRead)
      } else {
        view = Buffer.concat([carry, block.subarray(ROOM, ROOM + bytesRead)])
      }
      // The other buffer's bytes are all in `view` now: the next chunk can be read into it.
      if (bytesRead > 0) readInto(blocks[(k + 1) % 2]!)
      await written[k % 2]
      let out = outs[k % 2]!
      if (output !== undefined && out.length < view.length) {
        out = Buffer.allocUnsafe(view.length)
        outs[k % 2] = out
      }
      const r = program.filterPcapRecords(view, out, DEFAULT_SNAPLEN, output !== undefined, layout)
      if (r === undefined) return undefined // JavaScript helpers: nothing has run
      summary.packets += r.packets
      summary.kept += r.kept
      summary.trapped += r.trapped
      summary.bytes += r.bytes
      summary.keptBytes += r.keptBytes
      if (summary.packets > 0) await openSink(false)
      if (sink !== undefined && r.written > 0) {
        const to = sink
        writing = writing.then(() => writeAll(to, out.subarray(0, r.written)))
        // Awaited before `out` is used again and at the end; a failure is not unhandled meanwhile.
        writing.catch(() => {})
        written[k % 2] = writing
      }
      const at = r.consumed
      if (r.stop === 'original') {
        checkOriginalLength(summary.kept, u32(view, at + 12), r.stopKeep)
        throw new EbpfError('EINVAL', `${input}: a kept packet is longer than its original length`)
      }
      if (r.stop !== '') {
        refuse(
          pcapRecordError(u32(view, at + 4), u32(view, at + 8), layout.nano, base + at) ??
            new EbpfError('EINVAL', `${input}: packet record at byte offset ${base + at} refused`),
        )
      }
      options.onProgress?.(summary.packets, summary.bytes)
      const left = view.length - at
      if (bytesRead === 0) {
        if (left === 0) break
        // A truncated last record, reported as the general path's byte source does.
        refuse(
          left < PCAP_RECORD_HEADER_LENGTH
            ? truncated('packet record header', PCAP_RECORD_HEADER_LENGTH, left, base + at)
            : truncated(
                'packet data',
                u32(view, at + 8),
                left - PCAP_RECORD_HEADER_LENGTH,
                base + at + PCAP_RECORD_HEADER_LENGTH,
              ),
        )
      }
      carry = view.subarray(at)
      base += at
    }
    await writing
    await openSink(summary.packets === 0)
  } catch (e) {
    if (e instanceof NotFast) return undefined
    throw e
  } finally {
    // The kept records before an error are written, as the general path writes them.
    await writing.catch(() => {})
    await reading?.catch(() => {})
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
