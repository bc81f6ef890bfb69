/**
 * `Program.filterPcap`: a socket filter over every packet of a capture, the packets it keeps
 * written to another. Packets are read in batches (`pcap.readBatches`, no asynchronous step per
 * packet) and run in batches (`runBatchRetvals`, one crossing into the engine per batch), so the
 * cost per packet is the program's own and a few array writes.
 *
 * Socket filter semantics: a run's return value is the number of bytes to keep, 0 drops the packet;
 * a packet kept is cut to that many bytes (its original length stays), and a run that traps drops
 * its packet and is counted. A packet captured short of its length on the wire (the capture's snap
 * length) runs with `__sk_buff.len` set to the wire length (`wireLengths`), as libpcap's `len` is.
 */
import type { Writable } from 'node:stream'
import { EbpfError } from './errors.js'
import type { Packet } from './pcap/format.js'
import { type PacketBatch, readBatches } from './pcap/read.js'
import type { PcapInput } from './pcap/source.js'
import { type PacketToWrite, type WriteOptions, writeBatches } from './pcap/write.js'
import { type FilterPcapSummary, fastFilterPcap } from './pcap-fast.js'
import type { Program } from './program.js'

export interface FilterPcapOptions {
  /** Packets per batch (default 4096) on the general path; the fast road walks each 64 MiB window of the file in the engine, in runs of 64 records. */
  batchSize?: number
  /** Format of the output: `pcap` (microseconds, the default), `pcap-ns` or `pcapng`. */
  format?: WriteOptions['format']
  /** Called after every batch with the packets and captured bytes read so far. */
  onProgress?: (packets: number, bytes: number) => void
}

export type { FilterPcapSummary }

export async function filterPcap(
  program: Program,
  input: PcapInput,
  output: string | Writable | undefined,
  options: FilterPcapOptions = {},
): Promise<FilterPcapSummary> {
  if (typeof options !== 'object' || options === null) {
    throw new EbpfError('EINVAL', 'filterPcap options must be an object')
  }
  if (program.type !== 'socket_filter') {
    throw new EbpfError(
      'EINVAL',
      `filterPcap runs socket filters (the return value is the bytes to keep); this program is of type '${program.type}'`,
    )
  }
  // A pcap file from and to a path (pcap or pcap-ns): run where the records lie.
  if (typeof input === 'string' && (output === undefined || typeof output === 'string')) {
    const fast = await fastFilterPcap(program, input, output, options)
    if (fast !== undefined) return fast
  }
  const started = process.hrtime.bigint()
  const summary = { packets: 0, kept: 0, trapped: 0, bytes: 0, keptBytes: 0 }
  const batches = readBatches(input, options.batchSize === undefined ? {} : { batchSize: options.batchSize })

  /** The kept packets of one batch, cut to the length the filter returned. */
  const filter = (batch: PacketBatch): PacketToWrite[] => {
    const lengths = new Uint32Array(batch.length)
    const wire = new Uint32Array(batch.length)
    for (let i = 0; i < batch.length; i++) {
      lengths[i] = batch[i]!.data.length
      wire[i] = batch[i]!.originalLength
    }
    const { retvals, errors } = program.runBatchRetvals({ bytes: batch.bytes, lengths }, { wireLengths: wire })
    const kept: PacketToWrite[] = []
    batch.forEach((p, i) => {
      summary.bytes += p.data.length
      const r = retvals[i]!
      if (r === 0) return
      const data = r < p.data.length ? p.data.subarray(0, r) : p.data
      summary.keptBytes += data.length
      kept.push({ data, timestamp: p.timestamp, originalLength: p.originalLength })
    })
    summary.packets += batch.length
    summary.kept += kept.length
    summary.trapped += errors.length
    options.onProgress?.(summary.packets, summary.bytes)
    return kept
  }

  const first = await batches.next()
  const linkType = first.done ? 1 : first.value[0]!.linkType
  const checkLinkType = (batch: Packet[]): void => {
    const other = batch.find((p) => p.linkType !== linkType)
    if (other !== undefined) {
      throw new EbpfError(
        'EINVAL',
        `the capture mixes link types ${linkType} and ${other.linkType}; filterPcap writes one: split it by interface first`,
      )
    }
  }
  async function* kept(): AsyncGenerator<PacketToWrite[]> {
    if (first.done) return
    checkLinkType(first.value)
    yield filter(first.value)
    for await (const batch of batches) {
      checkLinkType(batch)
      yield filter(batch)
    }
  }
  try {
    if (output === undefined) {
      for await (const _ of kept()) {
        // Counted in `filter`.
      }
    } else {
      await writeBatches(output, kept(), {
        linkType,
        ...(options.format === undefined ? {} : { format: options.format }),
      })
    }
  } finally {
    await batches.return(undefined)
  }
  const durationNs = Number(process.hrtime.bigint() - started)
  return {
    ...summary,
    durationNs,
    packetsPerSecond: durationNs === 0 ? 0 : summary.packets / (durationNs / 1e9),
  }
}
