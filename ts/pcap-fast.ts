/**
 * The fast path of `filterPcap` for the common case: a little-endian microsecond pcap file read
 * from a path and written, if at all, to a path in the same format. The records are read where
 * they lie in 4 MiB chunks of the file (no object, BigInt timestamp or view per packet), packed into
 * one buffer per batch for `runBatchRetvals`, and the kept ones written back as their own record
 * bytes with the captured length cut to what the filter returned: byte for byte what the general
 * path (`readBatches` + `writeBatches`) writes for such a file.
 *
 * A first pass checks every record header (the file is read twice; the second read comes from the
 * page cache). A file the fast path does not take as it is (another magic or version, a fraction
 * of a second out of range, a record longer than the writer's snap length, a truncated tail) is
 * left to the general path, before any packet has run, so that its errors and its output are the
 * general path's.
 */
import { once } from 'node:events'
import { createWriteStream } from 'node:fs'
import { open } from 'node:fs/promises'
import { EbpfError } from './errors.js'
import { DEFAULT_SNAPLEN, PCAP_HEADER_LENGTH, PCAP_MAGIC_US, PCAP_RECORD_HEADER_LENGTH } from './pcap/format.js'
import { fileHeader } from './pcap/write.js'
import type { Program } from './program.js'

const CHUNK = 4 << 20
const FLUSH = 1 << 20

/** Not for the fast path: left to the general one. */
class NotFast extends Error {}

/**
 * Calls `each(buf, start, end)` for every run of whole records of the file (after its header),
 * `buf` holding them from `start` to `end`; throws `NotFast` for a record the fast path does not take.
 */
async function forRecords(
  path: string,
  each: (buf: Buffer, start: number, end: number) => void | Promise<void>,
): Promise<{ linkType: number; records: number }> {
  const file = await open(path, 'r')
  try {
    const buf = Buffer.allocUnsafe(CHUNK)
    let { bytesRead } = await file.read(buf, 0, PCAP_HEADER_LENGTH, 0)
    if (bytesRead < PCAP_HEADER_LENGTH) throw new NotFast()
    if (buf.readUInt32LE(0) !== PCAP_MAGIC_US || buf.readUInt16LE(4) !== 2) throw new NotFast()
    const linkType = buf.readUInt32LE(20) & 0xffff
    let position = PCAP_HEADER_LENGTH
    let carry = 0
    let records = 0
    for (;;) {
      ;({ bytesRead } = await file.read(buf, carry, CHUNK - carry, position))
      position += bytesRead
      const end = carry + bytesRead
      let at = 0
      while (at + PCAP_RECORD_HEADER_LENGTH <= end) {
        const fraction = buf.readUInt32LE(at + 4)
        const captured = buf.readUInt32LE(at + 8)
        if (fraction >= 1_000_000 || captured > DEFAULT_SNAPLEN) throw new NotFast()
        if (at + PCAP_RECORD_HEADER_LENGTH + captured > end) break
        at += PCAP_RECORD_HEADER_LENGTH + captured
        records++
      }
      if (at > 0) await each(buf, 0, at)
      if (bytesRead === 0) {
        if (end !== 0) throw new NotFast() // a truncated record at the end
        return { linkType, records }
      }
      buf.copyWithin(0, at, end)
      carry = end - at
    }
  } finally {
    await file.close()
  }
}

/** `FilterPcapSummary` (pcap-filter.ts, which imports this module). */
interface FastSummary {
  packets: number
  kept: number
  trapped: number
  bytes: number
  keptBytes: number
  durationNs: number
  packetsPerSecond: number
}

/** The summary of `filterPcap` over `input`, or undefined where the general path must do it. */
export async function fastFilterPcap(
  program: Program,
  input: string,
  output: string | undefined,
  options: { batchSize?: number; onProgress?: (packets: number, bytes: number) => void },
): Promise<FastSummary | undefined> {
  const batchSize = options.batchSize ?? 4096
  // A batch size out of range is the general path's error to report.
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 1 << 24) return undefined
  const started = process.hrtime.bigint()
  let first: { linkType: number; records: number }
  try {
    first = await forRecords(input, () => {})
  } catch (e) {
    // Not this path's file, or one that cannot be opened: the general path reports it as it does.
    if (e instanceof NotFast || (e as NodeJS.ErrnoException).code !== undefined) return undefined
    throw e
  }
  const summary = { packets: 0, kept: 0, trapped: 0, bytes: 0, keptBytes: 0 }
  const stream = output === undefined ? undefined : createWriteStream(output)
  let failure: Error | undefined
  stream?.on('error', (e) => {
    failure ??= e
  })
  // Kept records go into `out` (a record is at most 16 + DEFAULT_SNAPLEN bytes), written when it fills.
  const out = Buffer.allocUnsafe(FLUSH + PCAP_RECORD_HEADER_LENGTH + DEFAULT_SNAPLEN)
  let outBytes = 0
  /** Filled parts of `out`, copied, waiting for the stream. */
  let ready: Buffer[] = []
  const flush = async (): Promise<void> => {
    if (failure) throw failure
    if (!stream) return
    if (outBytes > 0) ready.push(Buffer.from(out.subarray(0, outBytes)))
    outBytes = 0
    const chunks = ready
    ready = []
    for (const chunk of chunks) if (!stream.write(chunk)) await once(stream, 'drain')
    if (failure) throw failure
  }
  const lengths = new Uint32Array(batchSize)
  const wire = new Uint32Array(batchSize)
  const starts = new Uint32Array(batchSize)
  let arena = Buffer.allocUnsafe(1 << 20)
  const run = (buf: Buffer, count: number, packed: number): void => {
    const { retvals, errors } = program.runBatchRetvals(
      { bytes: arena.subarray(0, packed), lengths: lengths.subarray(0, count) },
      { wireLengths: wire.subarray(0, count) },
    )
    summary.packets += count
    summary.trapped += errors.length
    for (let i = 0; i < count; i++) {
      const captured = lengths[i]!
      summary.bytes += captured
      const r = retvals[i]!
      if (r === 0) continue
      const keep = Math.min(r, captured)
      summary.kept++
      summary.keptBytes += keep
      if (!stream) continue
      const s = starts[i]!
      if (outBytes + PCAP_RECORD_HEADER_LENGTH + keep > out.length) {
        ready.push(Buffer.from(out.subarray(0, outBytes)))
        outBytes = 0
      }
      buf.copy(out, outBytes, s, s + PCAP_RECORD_HEADER_LENGTH + keep)
      out.writeUInt32LE(keep, outBytes + 8)
      outBytes += PCAP_RECORD_HEADER_LENGTH + keep
    }
  }
  try {
    if (stream) {
      // The link type of the first packet, as the general path writes it (EN10MB for an empty capture).
      out.set(fileHeader('pcap', first.records > 0 ? first.linkType : 1, DEFAULT_SNAPLEN), 0)
      outBytes = PCAP_HEADER_LENGTH
    }
    const second = await forRecords(input, async (buf, start, end) => {
      let at = start
      while (at < end) {
        let count = 0
        let packed = 0
        while (at < end && count < batchSize) {
          const captured = buf.readUInt32LE(at + 8)
          if (packed + captured > arena.length) {
            if (count > 0) break
            arena = Buffer.allocUnsafe(Math.max(captured, arena.length))
          }
          buf.copy(arena, packed, at + PCAP_RECORD_HEADER_LENGTH, at + PCAP_RECORD_HEADER_LENGTH + captured)
          lengths[count] = captured
          wire[count] = buf.readUInt32LE(at + 12)
          starts[count] = at
          packed += captured
          count++
          at += PCAP_RECORD_HEADER_LENGTH + captured
        }
        run(buf, count, packed)
        if (ready.length > 0) await flush()
      }
      options.onProgress?.(summary.packets, summary.bytes)
    })
    if (second.records !== first.records || second.linkType !== first.linkType) {
      throw new EbpfError('EINVAL', `${input}: the capture changed while it was read`)
    }
    await flush()
  } catch (e) {
    failure ??=
      e instanceof NotFast ? new EbpfError('EINVAL', `${input}: the capture changed while it was read`) : (e as Error)
  } finally {
    if (stream) {
      stream.end()
      await once(stream, 'close').catch(() => {})
    }
  }
  if (failure) throw failure
  const durationNs = Number(process.hrtime.bigint() - started)
  return {
    ...summary,
    durationNs,
    packetsPerSecond: durationNs === 0 ? 0 : summary.packets / (durationNs / 1e9),
  }
}
