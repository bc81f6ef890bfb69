/**
 * `runPcap`: any packet program (XDP, tc, socket filter, raw) over every packet of a capture, in
 * batches (`runBatch`, one crossing into the engine per batch), with the packets sorted by verdict:
 * each verdict named in `outputs` (`XDP_PASS`, `TC_ACT_SHOT`, `trapped`, or a number) gets a capture
 * of the packets that got it, as the program left them (after `bpf_xdp_adjust_head`/`tail`, stores
 * into the packet...); a packet that trapped is written as it came in. This is `ebpf filter` for
 * XDP and tc programs, and `ebpf run --pcap`.
 */
import type { Writable } from 'node:stream'
import { EbpfError } from './errors.js'
import { type PacketBatch, readBatches } from './pcap/read.js'
import type { PcapInput } from './pcap/source.js'
import { createWriter, type PacketToWrite, type PcapWriter, type WriteOptions } from './pcap/write.js'
import type { BatchEntry, Program, ProgramType, RunOptions } from './program.js'

/** XDP actions by return value (linux/bpf.h enum xdp_action). */
export const XDP_ACTIONS: readonly string[] = ['XDP_ABORTED', 'XDP_DROP', 'XDP_PASS', 'XDP_TX', 'XDP_REDIRECT']
/** tc actions from 0 (linux/pkt_cls.h); -1 (retval 0xffffffff) is TC_ACT_UNSPEC. */
export const TC_ACTIONS: readonly string[] = [
  'TC_ACT_OK',
  'TC_ACT_RECLASSIFY',
  'TC_ACT_SHOT',
  'TC_ACT_PIPE',
  'TC_ACT_STOLEN',
  'TC_ACT_QUEUED',
  'TC_ACT_REPEAT',
  'TC_ACT_REDIRECT',
  'TC_ACT_TRAP',
]

/** The name of a return value where the program type gives it one (`XDP_PASS`, `TC_ACT_SHOT`), else undefined. */
export function actionName(type: ProgramType, retval: number): string | undefined {
  if (type === 'xdp') return XDP_ACTIONS[retval]
  if (type === 'tc') return retval === 0xffffffff ? 'TC_ACT_UNSPEC' : TC_ACTIONS[retval]
  return undefined
}

/** The verdict a packet is counted under: its action name, else the return value in decimal. */
export function verdictName(type: ProgramType, retval: number): string {
  return actionName(type, retval) ?? String(retval)
}

export interface RunPcapOptions {
  /** Packets per batch (default 4096). */
  batchSize?: number
  /** Format of the outputs: `pcap` (microseconds, the default), `pcap-ns` or `pcapng`. */
  format?: WriteOptions['format']
  /** Inputs of every run besides the packet (`ctx`, `budget`...), as `runBatch` takes them. */
  run?: Omit<RunOptions, 'data' | 'repeat'>
  /** Called for every packet, in order, with its 0-based index and outcome (the data is valid during the call only). */
  onPacket?: (index: number, entry: BatchEntry, input: Uint8Array) => void
  /** Called after every batch with the packets and captured bytes read so far. */
  onProgress?: (packets: number, bytes: number) => void
}

export interface RunPcapSummary {
  /** Packets read. */
  packets: number
  /** Packets written to one of the outputs. */
  written: number
  /** Packets whose run trapped (counted under the verdict `trapped` too). */
  trapped: number
  /** Packets per verdict name (`XDP_PASS`: 10, ...; `trapped` for the runs that trapped). */
  verdicts: Record<string, number>
  /** Captured bytes read, and bytes written (of the packets as the program left them). */
  bytes: number
  writtenBytes: number
  /** Wall time of the whole pass, reading and writing included. */
  durationNs: number
  packetsPerSecond: number
}

/** `XDP_PASS`, `xdp_pass`, `pass` (for the program's type), `trapped`, or a return value: the verdict's name. */
export function normalizeVerdict(type: ProgramType, verdict: string): string {
  const v = verdict.trim()
  if (v.toLowerCase() === 'trapped') return 'trapped'
  if (/^(0x[0-9a-f]+|\d+)$/i.test(v)) {
    const n = Number(v)
    if (n > 0xffffffff) throw new EbpfError('EINVAL', `verdict ${v} is not a 32-bit return value`)
    return verdictName(type, n)
  }
  const upper = v.toUpperCase()
  const names = type === 'xdp' ? XDP_ACTIONS : type === 'tc' ? [...TC_ACTIONS, 'TC_ACT_UNSPEC'] : []
  for (const name of names) {
    if (upper === name || name.endsWith(`_${upper}`)) return name
  }
  const known = names.length > 0 ? `${names.join(', ')}, ` : ''
  throw new EbpfError(
    'EINVAL',
    `verdict '${verdict}' is not one of a ${type} program's: ${known}a return value, or trapped`,
  )
}

export async function runPcap(
  program: Program,
  input: PcapInput,
  outputs: Record<string, string | Writable> = {},
  options: RunPcapOptions = {},
): Promise<RunPcapSummary> {
  if (typeof options !== 'object' || options === null)
    throw new EbpfError('EINVAL', 'runPcap options must be an object')
  if (typeof outputs !== 'object' || outputs === null) {
    throw new EbpfError('EINVAL', 'runPcap outputs must be an object of verdict: path or stream')
  }
  const targets = new Map<string, string | Writable>()
  for (const [verdict, to] of Object.entries(outputs)) {
    const name = normalizeVerdict(program.type, verdict)
    if (targets.has(name)) throw new EbpfError('EINVAL', `two outputs for the verdict ${name}`)
    targets.set(name, to)
  }
  const started = process.hrtime.bigint()
  const summary = { packets: 0, written: 0, trapped: 0, bytes: 0, writtenBytes: 0 }
  const verdicts: Record<string, number> = {}
  const batches = readBatches(input, options.batchSize === undefined ? {} : { batchSize: options.batchSize })
  const writers = new Map<string, PcapWriter>()
  let linkType: number | undefined

  /** Each packet's outcome: its verdict and the packet as the run left it (views, which no later batch reuses). */
  const outcomes = (batch: PacketBatch): Array<{ verdict: string; data: Uint8Array }> => {
    const lengths = new Uint32Array(batch.length)
    for (let i = 0; i < batch.length; i++) lengths[i] = batch[i]!.data.length
    const packed = { bytes: batch.bytes, lengths }
    if (options.onPacket) {
      const entries = program.runBatch(
        batch.map((p) => p.data),
        options.run,
      )
      return entries.map((entry, i) => {
        const p = batch[i]!
        options.onPacket!(summary.packets + i, entry, p.data)
        return entry.ok
          ? { verdict: verdictName(program.type, entry.retval), data: entry.data }
          : { verdict: 'trapped', data: p.data }
      })
    }
    // The lean form: no object per run, the outputs packed.
    const { retvals, data, dataLengths, errors } = program.runBatchData(packed, options.run)
    const trapped = new Set(errors.map((e) => e.index))
    let at = 0
    return batch.map((p, i) => {
      const out = data.subarray(at, at + dataLengths[i]!)
      at += dataLengths[i]!
      return trapped.has(i)
        ? { verdict: 'trapped', data: p.data }
        : { verdict: verdictName(program.type, retvals[i]!), data: out }
    })
  }

  const sort = (batch: PacketBatch): Map<string, PacketToWrite[]> => {
    const results = outcomes(batch)
    const out = new Map<string, PacketToWrite[]>()
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i]!
      const { verdict, data } = results[i]!
      summary.bytes += p.data.length
      if (verdict === 'trapped') summary.trapped++
      verdicts[verdict] = (verdicts[verdict] ?? 0) + 1
      if (!targets.has(verdict)) continue
      // Bytes past the snap length stay as they were: the original length moves by what the program added or cut.
      const originalLength = Math.max(data.length, p.originalLength + data.length - p.data.length)
      summary.written++
      summary.writtenBytes += data.length
      let list = out.get(verdict)
      if (!list) {
        list = []
        out.set(verdict, list)
      }
      list.push({ data, timestamp: p.timestamp, originalLength })
    }
    summary.packets += batch.length
    return out
  }

  let failure: unknown
  try {
    for await (const batch of batches) {
      if (batch.length === 0) continue
      if (linkType === undefined) {
        linkType = batch[0]!.linkType
        for (const [verdict, to] of targets) {
          writers.set(
            verdict,
            createWriter(to, { linkType, ...(options.format === undefined ? {} : { format: options.format }) }),
          )
        }
      }
      const other = batch.find((p) => p.linkType !== linkType)
      if (other !== undefined) {
        throw new EbpfError(
          'EINVAL',
          `the capture mixes link types ${linkType} and ${other.linkType}; runPcap writes one: split it by interface first`,
        )
      }
      const sorted = sort(batch)
      for (const [verdict, packets] of sorted) await writers.get(verdict)!.write(packets)
      options.onProgress?.(summary.packets, summary.bytes)
    }
    // An empty capture still gives each output a valid (empty) file, of link type EN10MB.
    if (linkType === undefined) {
      for (const [verdict, to] of targets) {
        writers.set(verdict, createWriter(to, options.format === undefined ? {} : { format: options.format }))
      }
    }
  } catch (e) {
    failure = e
  } finally {
    await batches.return(undefined)
    for (const w of writers.values()) {
      try {
        await w.close()
      } catch (e) {
        failure ??= e
      }
    }
  }
  if (failure !== undefined) throw failure
  const durationNs = Number(process.hrtime.bigint() - started)
  return {
    ...summary,
    verdicts,
    durationNs,
    packetsPerSecond: durationNs === 0 ? 0 : summary.packets / (durationNs / 1e9),
  }
}
