/**
 * `filterPcap`'s fast path (a little-endian microsecond pcap from and to a path, read and written
 * where the records lie) against its general path (the same file given as bytes, which takes
 * `readBatches` + `writeBatches`): the same summary and the same output file, byte for byte, over
 * generated frames with snap-length cuts and runts; files the fast path leaves to the general one
 * (nanoseconds, big-endian, a truncated tail, a bad fraction) give the general path's result or error.
 * The general path itself is checked against tcpdump in filter.test.ts.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { compileFilter, Program, pcap } from '../ts/index'
import { PacketGenerator } from './helpers/capture-gen'

const work = mkdtempSync(join(tmpdir(), 'ebpf-pcap-fast-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

const filter = (expr: string) =>
  new Program({ type: 'socket_filter', instructions: compileFilter(expr).instructions, engine: 'interpreter' })

async function capture(name: string, count: number, seed: number, format?: 'pcap-ns'): Promise<string> {
  const path = join(work, name)
  const packets = new PacketGenerator(seed).packets(count)
  await pcap.write(
    path,
    packets.map((p, i) => ({
      data: p.data,
      originalLength: p.originalLength,
      timestamp: 1_700_000_000_000_000_000n + BigInt(i) * 1_234_567n,
    })),
    format ? { format } : {},
  )
  return path
}

/** The summary without the timings, which differ. */
const counts = (s: { durationNs: number; packetsPerSecond: number }) => {
  const { durationNs: _d, packetsPerSecond: _p, ...rest } = s
  return rest
}

describe('filterPcap fast path', () => {
  it('equals the general path: summary and output bytes, for several filters and batch sizes', async () => {
    const input = await capture('in.pcap', 3000, 41)
    const bytes = new Uint8Array(readFileSync(input))
    for (const [expr, batchSize] of [
      ['tcp port 80', undefined],
      ['ip and len > 100', 7],
      ['ether[0] & 1 = 0', 4096],
      ['udp or icmp', 1],
    ] as const) {
      const program = filter(expr)
      const options = batchSize === undefined ? {} : { batchSize }
      const fastOut = join(work, 'fast.pcap')
      const generalOut = join(work, 'general.pcap')
      const fast = await program.filterPcap(input, fastOut, options)
      const general = await program.filterPcap(bytes, generalOut, options)
      expect(counts(fast), expr).toEqual(counts(general))
      expect(fast.kept, expr).toBeGreaterThan(0)
      expect(readFileSync(fastOut).equals(readFileSync(generalOut)), expr).toBe(true)
      // Counting only (no output) gives the same summary.
      expect(counts(await program.filterPcap(input, undefined, options))).toEqual(counts(general))
    }
  })

  it('a socket filter that cuts packets (returns fewer bytes) writes the cut records as the general path', async () => {
    const input = await capture('cut.pcap', 500, 43)
    // ld #20; ret a: keep 20 bytes of every packet.
    const program = Program.fromClassic([
      { code: 0x00, jt: 0, jf: 0, k: 20 },
      { code: 0x16, jt: 0, jf: 0, k: 0 },
    ])
    const fast = await program.filterPcap(input, join(work, 'cut-fast.pcap'))
    const general = await program.filterPcap(new Uint8Array(readFileSync(input)), join(work, 'cut-general.pcap'))
    expect(counts(fast)).toEqual(counts(general))
    expect(readFileSync(join(work, 'cut-fast.pcap')).equals(readFileSync(join(work, 'cut-general.pcap')))).toBe(true)
  })

  it('an empty capture, nanosecond and big-endian files, and malformed ones: as the general path', async () => {
    const program = filter('tcp')
    const empty = join(work, 'empty.pcap')
    await pcap.write(empty, [], { linkType: 'RAW' })
    const emptyOut = join(work, 'empty-out.pcap')
    expect(counts(await program.filterPcap(empty, emptyOut))).toMatchObject({ packets: 0, kept: 0 })
    // The general path writes EN10MB for an empty capture; so does the fast one.
    expect(readFileSync(emptyOut).readUInt32LE(20)).toBe(1)

    const nano = await capture('nano.pcap', 200, 47, 'pcap-ns')
    const nanoBytes = new Uint8Array(readFileSync(nano))
    expect(counts(await program.filterPcap(nano, join(work, 'n1.pcap')))).toEqual(
      counts(await program.filterPcap(nanoBytes, join(work, 'n2.pcap'))),
    )
    expect(readFileSync(join(work, 'n1.pcap')).equals(readFileSync(join(work, 'n2.pcap')))).toBe(true)

    // Big-endian: every header field swapped by hand from the little-endian file.
    const le = readFileSync(await capture('le.pcap', 100, 53))
    const be = Buffer.from(le)
    for (const at of [0, 8, 12, 16, 20]) be.writeUInt32BE(le.readUInt32LE(at), at)
    be.writeUInt16BE(le.readUInt16LE(4), 4)
    be.writeUInt16BE(le.readUInt16LE(6), 6)
    for (let at = 24; at < le.length; ) {
      const captured = le.readUInt32LE(at + 8)
      for (let f = 0; f < 16; f += 4) be.writeUInt32BE(le.readUInt32LE(at + f), at + f)
      at += 16 + captured
    }
    const bePath = join(work, 'be.pcap')
    writeFileSync(bePath, be)
    expect(counts(await program.filterPcap(bePath, undefined))).toEqual(
      counts(await program.filterPcap(new Uint8Array(le), undefined)),
    )

    // A truncated last record, and a microsecond field of a whole second: the general path's errors.
    const truncated = join(work, 'truncated.pcap')
    writeFileSync(truncated, le.subarray(0, le.length - 3))
    const fromPath = await program.filterPcap(truncated, join(work, 't1.pcap')).catch((e) => e)
    const fromBytes = await program
      .filterPcap(new Uint8Array(le.subarray(0, le.length - 3)), join(work, 't2.pcap'))
      .catch((e) => e)
    expect(fromPath).toBeInstanceOf(Error)
    expect(fromPath.message).toBe(fromBytes.message)
    expect(fromPath.code).toBe('EINVAL')
    const badFraction = Buffer.from(le)
    badFraction.writeUInt32LE(1_000_000, 24 + 4)
    const badPath = join(work, 'bad.pcap')
    writeFileSync(badPath, badFraction)
    await expect(program.filterPcap(badPath, undefined)).rejects.toThrow(/microsecond field 1000000/)
  })
})
