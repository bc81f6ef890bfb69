/**
 * `filterPcap`'s fast path (a pcap file of either byte order, micro- or nanoseconds, from and to a
 * path, run where the records lie) against its general path (the same file given as bytes, which takes
 * `readBatches` + `writeBatches`): the same summary and the same output file, byte for byte, over
 * generated frames with snap-length cuts and runts, over files of several read chunks and records
 * larger than a chunk or than the writer's snap length, both byte orders and both units in and out;
 * files with a truncated tail or a bad fraction, and records it refuses part way (a bad
 * fraction, a truncated header or data, a kept packet longer than its original length) give the
 * general path's result or error, and the same output bytes before it.
 * The general path itself is checked against tcpdump in filter.test.ts.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it, vi } from 'vitest'
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

/** A little-endian pcap file with every header field swapped by hand: the same file, big-endian. */
function bigEndian(le: Buffer): Buffer {
  const be = Buffer.from(le)
  for (const at of [0, 8, 12, 16, 20]) be.writeUInt32BE(le.readUInt32LE(at), at)
  be.writeUInt16BE(le.readUInt16LE(4), 4)
  be.writeUInt16BE(le.readUInt16LE(6), 6)
  for (let at = 24; at < le.length; ) {
    const captured = le.readUInt32LE(at + 8)
    for (let f = 0; f < 16; f += 4) be.writeUInt32BE(le.readUInt32LE(at + f), at + f)
    at += 16 + captured
  }
  return be
}

/** The summary without the timings, which differ. */
const counts = (s: { durationNs: number; packetsPerSecond: number }) => {
  const { durationNs: _d, packetsPerSecond: _p, ...rest } = s
  return rest
}

/** A TCP frame to port 80 of `size` bytes (kept by `tcp port 80`). */
function bigFrame(size: number): Uint8Array {
  const f = new Uint8Array(size)
  f.set([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00, 0x45], 0)
  f[23] = 6
  f[37] = 80
  f[46] = 0x50
  return f
}

/**
 * A little-endian microsecond pcap file of `packets`, each record written whole (the writer cuts
 * packets to its snap length), and the file offset of each record.
 */
async function wholeRecords(
  packets: ReadonlyArray<{ data: Uint8Array; originalLength: number }>,
): Promise<{ file: Buffer; offsets: number[] }> {
  const parts: Buffer[] = [Buffer.from(readFileSync(await capture('header.pcap', 0, 1)).subarray(0, 24))]
  const offsets: number[] = []
  let at = 24
  packets.forEach((p, i) => {
    const h = Buffer.alloc(16)
    h.writeUInt32LE(1_700_000_000 + i, 0)
    h.writeUInt32LE(i % 1_000_000, 4)
    h.writeUInt32LE(p.data.length, 8)
    h.writeUInt32LE(p.originalLength, 12)
    parts.push(h, Buffer.from(p.data))
    offsets.push(at)
    at += 16 + p.data.length
  })
  return { file: Buffer.concat(parts), offsets }
}

/** `filterPcap` of the file at `path` (the fast road) and of its bytes (the general path): the same summary and output bytes. */
async function sameAsGeneral(program: Program, path: string, name: string, expected: { packets: number }) {
  const fastOut = join(work, `${name}-fast.pcap`)
  const generalOut = join(work, `${name}-general.pcap`)
  const fast = await program.filterPcap(path, fastOut)
  const general = await program.filterPcap(new Uint8Array(readFileSync(path)), generalOut)
  expect(counts(fast), name).toEqual(counts(general))
  expect(fast.packets, name).toBe(expected.packets)
  expect(readFileSync(fastOut).equals(readFileSync(generalOut)), name).toBe(true)
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

    const le = readFileSync(await capture('le.pcap', 100, 53))
    const be = bigEndian(le)
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

  it('both byte orders, micro- and nanoseconds in, pcap and pcap-ns out: on the fast road, as the general path', async () => {
    const us = readFileSync(await capture('orders-us.pcap', 2500, 67))
    const ns = readFileSync(await capture('orders-ns.pcap', 2500, 67, 'pcap-ns'))
    const inputs: Array<[string, Buffer]> = [
      ['le-us', us],
      ['le-ns', ns],
      ['be-us', bigEndian(us)],
      ['be-ns', bigEndian(ns)],
    ]
    for (const [name, bytes] of inputs) {
      const path = join(work, `orders-${name}.pcap`)
      writeFileSync(path, bytes)
      for (const format of ['pcap', 'pcap-ns'] as const) {
        const program = filter('tcp or udp port 53')
        const records = vi.spyOn(program, 'filterPcapRecords')
        const fastOut = join(work, 'orders-fast.pcap')
        const generalOut = join(work, 'orders-general.pcap')
        const fast = await program.filterPcap(path, fastOut, { format })
        expect(records, `${name} ${format}: the fast road`).toHaveBeenCalled()
        const general = await program.filterPcap(new Uint8Array(bytes), generalOut, { format })
        expect(counts(fast), `${name} ${format}`).toEqual(counts(general))
        expect(fast.kept).toBeGreaterThan(0)
        expect(readFileSync(fastOut).equals(readFileSync(generalOut)), `${name} ${format}`).toBe(true)
      }
    }
    // A nanosecond field of a whole second in a big-endian file, part way: the general path's error.
    const bad = bigEndian(ns)
    let at = 24
    for (let i = 0; i < 2000; i++) at += 16 + bad.readUInt32BE(at + 8)
    bad.writeUInt32BE(1_000_000_000, at + 4)
    const badPath = join(work, 'orders-bad.pcap')
    writeFileSync(badPath, bad)
    const program = filter('tcp')
    const fromPath = await program.filterPcap(badPath, join(work, 'ob1.pcap')).catch((e) => e)
    const fromBytes = await program.filterPcap(new Uint8Array(bad), join(work, 'ob2.pcap')).catch((e) => e)
    expect(fromPath.message).toMatch(/nanosecond field 1000000000/)
    expect(fromPath.message).toBe(fromBytes.message)
    expect(readFileSync(join(work, 'ob1.pcap')).equals(readFileSync(join(work, 'ob2.pcap')))).toBe(true)
  })

  it('files of several chunks, a record larger than a chunk and one over the snap length: as the general path', async () => {
    const path = join(work, 'large.pcap')
    const generated = new PacketGenerator(59).packets(12000)
    // A 2 MiB frame (over the writer's 262,144-byte snap length, and the 1 MiB read chunk the fast
    // road once had) and a 300,000-byte one, among the generated frames; both TCP to port 80, so
    // the filter keeps them.
    const packets = generated.map((p) => ({ data: p.data, originalLength: p.originalLength }))
    packets.splice(5000, 0, { data: bigFrame(2 << 20), originalLength: 2 << 20 })
    packets.splice(9000, 0, { data: bigFrame(300_000), originalLength: 300_000 })
    writeFileSync(path, (await wholeRecords(packets)).file)
    for (const expr of ['tcp port 80', 'ip or ip6']) {
      await sameAsGeneral(filter(expr), path, `large ${expr}`, { packets: 12002 })
    }
  })

  it('a file of several 64 MiB windows of the engine: as the general path, and a record refused in a later window', async () => {
    // 36 records of 2 MiB (TCP to port 80, kept) among 3,000 generated frames: about 75 MiB, so
    // records lie across the ends of the windows the engine maps (ts/pcap-fast.ts).
    const big = bigFrame(2 << 20)
    const packets = new PacketGenerator(71).packets(3000).map((p, i) => {
      const data = i % 83 === 5 ? big : p.data
      return { data, originalLength: Math.max(data.length, p.originalLength) }
    })
    const { file, offsets } = await wholeRecords(packets)
    expect(file.length).toBeGreaterThan(70 << 20)
    const path = join(work, 'windows.pcap')
    writeFileSync(path, file)
    await sameAsGeneral(filter('tcp port 80'), path, 'windows', { packets: 3000 })
    // A fraction of a whole second in the last record that starts past 64 MiB: the general
    // path's error (naming the record's file offset), after the same kept packets.
    const late = offsets.findLast((o) => o < 70 << 20)!
    expect(late).toBeGreaterThan(64 << 20)
    const bad = Buffer.from(file)
    bad.writeUInt32LE(1_000_000, late + 4)
    const badPath = join(work, 'windows-bad.pcap')
    writeFileSync(badPath, bad)
    const program = filter('tcp port 80')
    const fromPath = await program.filterPcap(badPath, join(work, 'wb1.pcap')).catch((e) => e)
    const fromBytes = await program.filterPcap(new Uint8Array(bad), join(work, 'wb2.pcap')).catch((e) => e)
    expect(fromPath).toBeInstanceOf(Error)
    expect(fromPath.message).toMatch(/microsecond field 1000000/)
    expect(fromPath.message).toBe(fromBytes.message)
    expect(readFileSync(join(work, 'wb1.pcap')).equals(readFileSync(join(work, 'wb2.pcap')))).toBe(true)
  })

  it('records refused part way: the general path error, after the same kept packets', async () => {
    const program = filter('ip or ip6 or arp')
    const le = readFileSync(await capture('refused.pcap', 8000, 61))
    /** The file offset of record `n`. */
    const recordAt = (n: number): number => {
      let at = 24
      for (let i = 0; i < n; i++) at += 16 + le.readUInt32LE(at + 8)
      return at
    }
    const deep = recordAt(6000)
    const badFraction = Buffer.from(le)
    badFraction.writeUInt32LE(2_000_000, deep + 4)
    const tooLong = Buffer.from(le)
    tooLong.writeUInt32LE(20 << 20, deep + 8)
    // A kept packet longer than its original length: the writer refuses it (the first untagged
    // IPv4 frame of at least 34 bytes from record 6000 on, which 'ip' keeps).
    let kept = deep
    while (le.readUInt16BE(kept + 16 + 12) !== 0x0800 || le.readUInt32LE(kept + 8) < 34)
      kept += 16 + le.readUInt32LE(kept + 8)
    const shortOriginal = Buffer.from(le)
    shortOriginal.writeUInt32LE(10, kept + 12)
    const cases: Array<[string, Buffer]> = [
      ['fraction', badFraction],
      ['length', tooLong],
      ['original', shortOriginal],
      ['truncated header', le.subarray(0, deep + 7)],
      ['truncated data', le.subarray(0, deep + 20)],
    ]
    for (const [name, bytes] of cases) {
      const path = join(work, `refused-${name.replace(' ', '-')}.pcap`)
      writeFileSync(path, bytes)
      const fastOut = join(work, 'refused-fast.pcap')
      const generalOut = join(work, 'refused-general.pcap')
      const fromPath = await program.filterPcap(path, fastOut).catch((e) => e)
      const fromBytes = await program.filterPcap(new Uint8Array(bytes), generalOut).catch((e) => e)
      expect(fromBytes, name).toBeInstanceOf(Error)
      expect(fromPath, name).toBeInstanceOf(Error)
      expect(fromPath.code, name).toBe(fromBytes.code)
      expect(fromPath.message, name).toBe(fromBytes.message)
      expect(readFileSync(fastOut).equals(readFileSync(generalOut)), name).toBe(true)
    }
    // Counting only, the writer's check does not apply: the same summary as the general path.
    expect(counts(await program.filterPcap(join(work, 'refused-original.pcap'), undefined))).toEqual(
      counts(await program.filterPcap(new Uint8Array(shortOriginal), undefined)),
    )
  })
})
