/**
 * pcap and pcapng reading and writing, with tcpdump (libpcap) as the oracle: files our writer makes
 * are listed by `tcpdump -r F -tt -nn -xx` with the timestamps and bytes we wrote; files tcpdump
 * writes (`-w`) read back equal; hand-built files in the other byte order, with several interfaces,
 * timestamp resolutions, simple packet blocks and unknown blocks read as tcpdump lists them.
 * Malformed files give a FormatError (EINVAL) naming the byte offset.
 */
import { spawnSync } from 'node:child_process'
import { createReadStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable, Writable } from 'node:stream'
import { afterAll, describe, expect, it } from 'vitest'
import { FormatError, pcap } from '../ts/index'
import { Random } from './helpers/random'

const dir = mkdtempSync(join(tmpdir(), 'ebpf-pcap-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** Deterministic bytes (a linear congruential generator), so failures reproduce. */
function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n)
  let s = seed >>> 0
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0
    out[i] = s >>> 24
  }
  return out
}

/** Frames tcpdump prints on one line: Ethernet with the local experimental ethertype 0x88b5. */
function frame(n: number, seed: number): Uint8Array {
  const out = bytes(Math.max(n, 14), seed)
  out[12] = 0x88
  out[13] = 0xb5
  return out
}

const BASE = 1_700_000_000n * 1_000_000_000n
const packets = Array.from({ length: 40 }, (_, i) => ({
  timestamp: BASE + BigInt(i) * 1_234_567_891n + BigInt(i * 7),
  data: frame(14 + ((i * 37) % 300), i + 1),
}))

interface Listed {
  timestamp: string
  hex: string
}

/** What `tcpdump -r FILE -tt -nn -xx` lists: each packet's timestamp text and its bytes in hex. */
function tcpdumpList(file: string, nano: boolean): Listed[] {
  const args = ['-r', file, '-tt', '-nn', '-xx']
  if (nano) args.push('--time-stamp-precision=nano')
  const r = spawnSync('tcpdump', args, { encoding: 'utf8' })
  expect(r.status, r.stderr).toBe(0)
  const out: Listed[] = []
  for (const line of r.stdout.split('\n')) {
    const hex = /^\s+0x[0-9a-f]{4}:\s+([0-9a-f ]+)$/.exec(line)
    if (hex) out[out.length - 1]!.hex += hex[1]!.replace(/\s/g, '')
    else if (/^\d/.test(line)) out.push({ timestamp: line.split(' ')[0]!, hex: '' })
  }
  return out
}

const hexOf = (b: Uint8Array) => Buffer.from(b).toString('hex')

function timestampText(ns: bigint, nano: boolean): string {
  const s = ns / 1_000_000_000n
  const f = ns % 1_000_000_000n
  return nano ? `${s}.${f.toString().padStart(9, '0')}` : `${s}.${(f / 1000n).toString().padStart(6, '0')}`
}

async function collect(input: pcap.PcapInput): Promise<pcap.Packet[]> {
  const out: pcap.Packet[] = []
  for await (const p of pcap.read(input)) out.push(p)
  return out
}

describe('our writer, tcpdump reads', () => {
  for (const format of ['pcap', 'pcap-ns', 'pcapng'] as const) {
    for (const snaplen of [262144, 64]) {
      it(`${format}, snaplen ${snaplen}: tcpdump lists the packets we wrote`, async () => {
        const file = join(dir, `ours-${format}-${snaplen}`)
        expect(await pcap.write(file, packets, { linkType: 'EN10MB', snaplen, format })).toBe(packets.length)
        const nano = format !== 'pcap'
        const listed = tcpdumpList(file, nano)
        expect(listed).toEqual(
          packets.map((p) => ({
            timestamp: timestampText(nano ? p.timestamp : (p.timestamp / 1000n) * 1000n, nano),
            hex: hexOf(p.data.subarray(0, snaplen)),
          })),
        )
        // And we read back what we wrote, original lengths kept past the snap length.
        const back = await collect(file)
        expect(back.map((p) => [p.timestamp, hexOf(p.data), p.originalLength, p.linkType, p.interface])).toEqual(
          packets.map((p) => [
            format === 'pcap' ? (p.timestamp / 1000n) * 1000n : p.timestamp,
            hexOf(p.data.subarray(0, snaplen)),
            p.data.length,
            1,
            0,
          ]),
        )
      })
    }
  }

  it('pcapng with several interfaces: tcpdump lists every packet; the blocks name the interfaces; we read them back', async () => {
    const file = join(dir, 'interfaces.pcapng')
    const onTwo = packets.map((p, i) => ({ ...p, interface: i % 3 === 0 ? 1 : 0 }))
    expect(await pcap.write(file, onTwo, { format: 'pcapng', interfaces: ['EN10MB', 'EN10MB'] })).toBe(40)
    expect(tcpdumpList(file, true)).toEqual(
      packets.map((p) => ({ timestamp: timestampText(p.timestamp, true), hex: hexOf(p.data) })),
    )
    // By hand: the section header (28 bytes), two interface description blocks (32 bytes each, link
    // type 1), then enhanced packet blocks whose interface id (bytes 8..11) is the packet's.
    const bytes = readFileSync(file)
    expect([bytes.readUInt32LE(28), bytes.readUInt16LE(36), bytes.readUInt32LE(60), bytes.readUInt16LE(68)]).toEqual([
      1, 1, 1, 1,
    ])
    const ids: number[] = []
    for (let at = 92; at < bytes.length; at += bytes.readUInt32LE(at + 4)) {
      expect(bytes.readUInt32LE(at)).toBe(6)
      ids.push(bytes.readUInt32LE(at + 8))
    }
    expect(ids).toEqual(onTwo.map((p) => p.interface))
    expect((await collect(file)).map((p) => [p.interface, hexOf(p.data)])).toEqual(
      onTwo.map((p) => [p.interface, hexOf(p.data)]),
    )
    // Interfaces of different link types: each packet reads back with its interface's.
    const mixed = join(dir, 'mixed.pcapng')
    await pcap.write(mixed, onTwo.slice(0, 6), { format: 'pcapng', interfaces: ['EN10MB', 'RAW'] })
    expect((await collect(mixed)).map((p) => p.linkType)).toEqual([101, 1, 1, 101, 1, 1])
    // Refused: an interface not described, interfaces for pcap, both linkType and interfaces.
    const refused = async (list: pcap.PacketToWrite[], options: pcap.WriteOptions) =>
      pcap.write(join(dir, 'refused.pcapng'), list, options).catch((e) => e)
    expect(
      await refused([{ data: packets[0]!.data, interface: 2 }], { format: 'pcapng', interfaces: [1, 1] }),
    ).toMatchObject({
      code: 'EINVAL',
      message: 'packet 0: interface 2 is not one of the 2 described',
    })
    expect(await refused([], { format: 'pcap', interfaces: [1, 1] })).toMatchObject({ code: 'EINVAL' })
    expect(await refused([], { format: 'pcapng', interfaces: [1], linkType: 1 })).toMatchObject({ code: 'EINVAL' })
  })

  for (const [name, number] of Object.entries(pcap.LINK_TYPES)) {
    it(`link type ${name} (${number}) is in the header tcpdump reads`, async () => {
      const file = join(dir, `link-${name}`)
      await pcap.write(file, packets.slice(0, 3), { linkType: name as pcap.LinkTypeName, format: 'pcapng' })
      // tcpdump -r prints the link type's DLT name: read it from its stderr banner.
      const r = spawnSync('tcpdump', ['-r', file, '-nn', '-c', '1'], { encoding: 'utf8' })
      expect(r.status, r.stderr).toBe(0)
      const dlt = /link-type (\S+)/.exec(r.stderr)![1]
      expect(dlt).toBe(name === 'LINUX_SLL' ? 'LINUX_SLL' : name)
      expect((await collect(file)).map((p) => p.linkType)).toEqual([number, number, number])
    })
  }
})

describe('writing to a stream', () => {
  it('a slow stream (16-byte high-water mark) gets the same bytes as a file, and stays open', async () => {
    const path = join(dir, 'to-file.pcapng')
    await pcap.write(path, packets, { format: 'pcapng', snaplen: 100 })
    const chunks: Buffer[] = []
    const sink = new Writable({
      highWaterMark: 16,
      write(chunk, _encoding, done) {
        chunks.push(chunk)
        setImmediate(done)
      },
    })
    async function* slowly() {
      for (const p of packets) yield p
    }
    expect(await pcap.write(sink, slowly(), { format: 'pcapng', snaplen: 100 })).toBe(packets.length)
    expect(sink.writableEnded).toBe(false)
    expect(Buffer.concat(chunks).equals(readFileSync(path))).toBe(true)
  })

  it('bad options and packets are EINVAL EbpfErrors', async () => {
    const sink = join(dir, 'bad')
    await expect(pcap.write(sink, 42 as unknown as [])).rejects.toMatchObject({ code: 'EINVAL' })
    await expect(collect(42 as unknown as Uint8Array)).rejects.toThrow(/pcap.read takes a path/)
    await expect(pcap.write(sink, [], { linkType: 'ETHERNET' as pcap.LinkTypeName })).rejects.toThrow(
      /not one of NULL, EN10MB/,
    )
    await expect(pcap.write(sink, [], { snaplen: 0 })).rejects.toMatchObject({ code: 'EINVAL' })
    await expect(pcap.write(sink, [{ data: new Uint8Array(4), originalLength: 3 }])).rejects.toThrow(/originalLength 3/)
    await expect(pcap.write(sink, [{ data: new Uint8Array(4), timestamp: -1n }])).rejects.toMatchObject({
      code: 'EINVAL',
    })
    await expect(pcap.write(sink, [{ data: new Uint8Array(4), timestamp: 1n << 63n }])).rejects.toThrow(
      /32-bit seconds/,
    )
    await expect(
      pcap.write(sink, [{ data: new Uint8Array(4), timestamp: 1n << 64n }], { format: 'pcapng' }),
    ).rejects.toThrow(/64-bit nanoseconds/)
  })
})

describe('reading part of a file', () => {
  it('a break after the first packet closes the file stream', async () => {
    const path = join(dir, 'break.pcap')
    await pcap.write(path, packets)
    const stream = createReadStream(path)
    for await (const p of pcap.read(stream)) {
      expect(hexOf(p.data)).toBe(hexOf(packets[0]!.data))
      break
    }
    expect(stream.destroyed).toBe(true)
  })
})

describe('tcpdump writes, we read', () => {
  for (const nano of [false, true]) {
    it(`tcpdump -w (${nano ? 'nano' : 'micro'}seconds) reads back equal`, async () => {
      const ours = join(dir, `src-${nano}.pcapng`)
      await pcap.write(ours, packets, { format: 'pcapng' })
      const theirs = join(dir, `tcpdump-${nano}.pcap`)
      const args = ['-r', ours, '-w', theirs]
      if (nano) args.push('--time-stamp-precision=nano')
      expect(spawnSync('tcpdump', args).status).toBe(0)
      const back = await collect(theirs)
      expect(back.map((p) => [p.timestamp, hexOf(p.data), p.originalLength])).toEqual(
        packets.map((p) => [nano ? p.timestamp : (p.timestamp / 1000n) * 1000n, hexOf(p.data), p.data.length]),
      )
      // One byte per chunk from a stream: every header and block straddles chunk boundaries.
      const file = readFileSync(theirs)
      const stream = Readable.from(
        (function* () {
          for (let i = 0; i < file.length; i++) yield file.subarray(i, i + 1)
        })(),
      )
      expect((await collect(stream)).map((p) => hexOf(p.data))).toEqual(back.map((p) => hexOf(p.data)))
    })
  }
})

/** Hand-built big-endian pcapng: pieces of a file, each a block written per the pcapng draft. */
class BigEndianBlocks {
  parts: Buffer[] = []
  block(type: number, body: Buffer): this {
    const padded = Buffer.concat([body, Buffer.alloc((4 - (body.length % 4)) % 4)])
    const head = Buffer.alloc(8)
    head.writeUInt32BE(type, 0)
    head.writeUInt32BE(padded.length + 12, 4)
    const tail = Buffer.alloc(4)
    tail.writeUInt32BE(padded.length + 12, 0)
    this.parts.push(head, padded, tail)
    return this
  }
  section(): this {
    const b = Buffer.alloc(16)
    b.writeUInt32BE(0x1a2b3c4d, 0)
    b.writeUInt16BE(1, 4)
    b.writeBigInt64BE(-1n, 8)
    return this.block(0x0a0d0d0a, b)
  }
  iface(linkType: number, snaplen: number, tsresol?: number, tsoffset?: bigint): this {
    const head = Buffer.alloc(8)
    head.writeUInt16BE(linkType, 0)
    head.writeUInt32BE(snaplen, 4)
    const options: Buffer[] = []
    if (tsresol !== undefined) {
      const o = Buffer.alloc(8) // if_tsresol (9), 1 byte, padded to 4
      o.writeUInt16BE(9, 0)
      o.writeUInt16BE(1, 2)
      o.writeUInt8(tsresol, 4)
      options.push(o)
    }
    if (tsoffset !== undefined) {
      const o = Buffer.alloc(12) // if_tsoffset (14), 8 bytes: seconds
      o.writeUInt16BE(14, 0)
      o.writeUInt16BE(8, 2)
      o.writeBigInt64BE(tsoffset, 4)
      options.push(o)
    }
    return this.block(1, Buffer.concat([head, ...options, Buffer.alloc(4)]))
  }
  enhanced(iface: number, units: bigint, data: Uint8Array, originalLength = data.length): this {
    const b = Buffer.alloc(20)
    b.writeUInt32BE(iface, 0)
    b.writeUInt32BE(Number(units >> 32n), 4)
    b.writeUInt32BE(Number(units & 0xffffffffn), 8)
    b.writeUInt32BE(data.length, 12)
    b.writeUInt32BE(originalLength, 16)
    return this.block(6, Buffer.concat([b, data]))
  }
  simple(data: Uint8Array): this {
    const b = Buffer.alloc(4)
    b.writeUInt32BE(data.length, 0)
    return this.block(3, Buffer.concat([b, data]))
  }
  bytes(): Buffer {
    return Buffer.concat(this.parts)
  }
}

describe('hand-built files read as tcpdump lists them', () => {
  it('big-endian pcapng: two interfaces (10^-3 and 2^-20 s), simple and unknown blocks, if_tsoffset, three sections', async () => {
    const f = (i: number) => frame(20 + i, 100 + i)
    const file = new BigEndianBlocks()
      .section()
      .iface(1, 65535, 3)
      .iface(1, 65535, 0x80 | 20)
      .enhanced(0, 1_700_000_000_123n, f(0))
      .block(0x0bad, Buffer.from('unknown block, skipped'))
      .enhanced(1, (1_700_000_001n << 20n) | 524288n, f(1))
      .simple(f(2))
      .section()
      .iface(1, 65535)
      .enhanced(0, 1_700_000_002_000_001n, f(3), 60)
      .section()
      .iface(1, 65535, 9, 1_700_000_000n)
      .enhanced(0, 3_000_000_007n, f(4))
      .bytes()
    const path = join(dir, 'be.pcapng')
    writeFileSync(path, file)
    const ours = await collect(path)
    expect(ours.map((p) => ({ timestamp: timestampText(p.timestamp, true), hex: hexOf(p.data) }))).toEqual(
      tcpdumpList(path, true),
    )
    // Hand-computed: 123 ms; 2^19 / 2^20 s = 0.5 s; the simple packet has no time; 1 µs; 1.7e9 s + 3 s + 7 ns.
    expect(ours.map((p) => [p.timestamp, p.interface, p.originalLength])).toEqual([
      [1_700_000_000_123_000_000n, 0, 20],
      [1_700_000_001_500_000_000n, 1, 21],
      [0n, 0, 22],
      [1_700_000_002_000_001_000n, 0, 60],
      [1_700_000_003_000_000_007n, 0, 24],
    ])
  })

  it('big-endian pcap with nanosecond timestamps', async () => {
    const header = Buffer.alloc(24)
    header.writeUInt32BE(0xa1b23c4d, 0)
    header.writeUInt16BE(2, 4)
    header.writeUInt16BE(4, 6)
    header.writeUInt32BE(65535, 16)
    header.writeUInt32BE(1, 20)
    const records = packets.slice(0, 5).map((p) => {
      const r = Buffer.alloc(16)
      r.writeUInt32BE(Number(p.timestamp / 1_000_000_000n), 0)
      r.writeUInt32BE(Number(p.timestamp % 1_000_000_000n), 4)
      r.writeUInt32BE(p.data.length, 8)
      r.writeUInt32BE(p.data.length + 4, 12)
      return Buffer.concat([r, p.data])
    })
    const path = join(dir, 'be-ns.pcap')
    writeFileSync(path, Buffer.concat([header, ...records]))
    const ours = await collect(path)
    expect(ours.map((p) => ({ timestamp: timestampText(p.timestamp, true), hex: hexOf(p.data) }))).toEqual(
      tcpdumpList(path, true),
    )
    expect(ours.map((p) => p.originalLength)).toEqual(packets.slice(0, 5).map((p) => p.data.length + 4))
  })
})

describe('malformed files', () => {
  async function failure(file: Uint8Array): Promise<FormatError> {
    try {
      await collect(file)
    } catch (e) {
      expect(e).toBeInstanceOf(FormatError)
      expect((e as FormatError).code).toBe('EINVAL')
      return e as FormatError
    }
    throw new Error('no error')
  }

  it('a path that does not exist is an ENOENT EbpfError naming it', async () => {
    const missing = join(dir, 'missing.pcap')
    await expect(collect(missing)).rejects.toMatchObject({
      name: 'EbpfError',
      code: 'ENOENT',
      message: expect.stringContaining("cannot read capture file '"),
    })
  })

  it('names the offset of a bad magic, a truncated record and an oversized length', async () => {
    expect((await failure(new Uint8Array([1, 2, 3, 4, 5]))).message).toMatch(/not a pcap or pcapng file.*offset 0/)
    const path = join(dir, 'good.pcap')
    await pcap.write(path, packets.slice(0, 2))
    const good = readFileSync(path)
    const cut = await failure(good.subarray(0, good.length - 3))
    expect(cut.message).toMatch(/truncated file: packet data/)
    const huge = Buffer.from(good.subarray(0, 24 + 16))
    huge.writeUInt32LE(0x7fffffff, 24 + 8)
    const e = await failure(huge)
    expect(e.offset).toBe(32)
    expect(e.message).toMatch(/over the 16777216-byte limit/)
  })

  it('pcapng: huge, misframed and unaligned block lengths, undescribed interfaces', async () => {
    const good = Buffer.from(new BigEndianBlocks().section().iface(1, 0).enhanced(0, 0n, frame(20, 1)).bytes())
    const sectionAndIface = 28 + 24
    const huge = Buffer.from(good)
    huge.writeUInt32BE(0xfffffff0, sectionAndIface + 4)
    expect((await failure(huge)).offset).toBe(sectionAndIface + 4)
    const odd = Buffer.from(good)
    odd.writeUInt32BE(62, sectionAndIface + 4)
    expect((await failure(odd)).message).toMatch(/not a multiple of 4/)
    const trailer = Buffer.from(good)
    trailer.writeUInt32BE(1234, good.length - 4)
    expect((await failure(trailer)).message).toMatch(/trailing length 1234/)
    const noIface = Buffer.from(new BigEndianBlocks().section().enhanced(3, 0n, frame(20, 1)).bytes())
    expect((await failure(noIface)).message).toMatch(/interface 3 is not described/)
  })

  it('a stream that claims a huge block stops with an error, not a wait for 4 GiB', async () => {
    // A 16 MiB + 4 claim: refused from the length alone, before any of the body is read.
    const head = Buffer.from(new BigEndianBlocks().section().bytes())
    const claim = Buffer.alloc(8)
    claim.writeUInt32BE(6, 0)
    claim.writeUInt32BE(16 * 1024 * 1024 + 4, 4)
    const endless = Readable.from(
      (function* () {
        yield Buffer.concat([head, claim])
        for (;;) yield Buffer.alloc(1 << 16)
      })(),
    )
    expect((await failure(endless as unknown as Uint8Array)).offset).toBe(head.length + 4)
  })
})

describe('mutated files (seeded)', () => {
  const INTERESTING = [0, 1, 3, 4, 12, 0x7fffffff, 0x80000000, 0xfffffffc, 0xffffffff, 0x1000004]

  /** A valid file with one or two changes: a byte, an aligned word, a truncation or a duplicated span. */
  function mutate(r: Random, seed: Uint8Array): Uint8Array {
    // Copies (a Buffer's slice() is a view): the seeds stay as written, the DataView starts at 0.
    let b = Uint8Array.from(seed)
    for (let n = 1 + r.below(2); n > 0; n--) {
      const kind = r.below(4)
      if (kind === 0) b[r.below(b.length)] = r.u32() & 0xff
      else if (kind === 1 && b.length >= 4) {
        new DataView(b.buffer).setUint32(r.below(b.length >> 2) * 4, r.pick(INTERESTING), r.below(2) === 0)
      } else if (kind === 2) b = b.slice(0, r.below(b.length))
      else {
        const at = r.below(b.length)
        const span = b.subarray(at, at + 1 + r.below(64))
        b = Uint8Array.from(Buffer.concat([b.subarray(0, at), span, b.subarray(at)]))
      }
    }
    return b
  }

  it('3000 mutations of pcap, pcap-ns, pcapng and big-endian pcapng: packets or an EINVAL FormatError in the file', async () => {
    const seeds: Uint8Array[] = []
    for (const format of ['pcap', 'pcap-ns', 'pcapng'] as const) {
      const path = join(dir, `seed-${format}`)
      await pcap.write(path, packets.slice(0, 6), { format, snaplen: 100 })
      seeds.push(readFileSync(path))
    }
    seeds.push(
      new BigEndianBlocks()
        .section()
        .iface(1, 200, 6)
        .iface(1, 200, 0x80 | 10)
        .enhanced(1, 5n, frame(30, 1))
        .simple(frame(40, 2))
        .block(0xbad, Buffer.alloc(8))
        .enhanced(0, 7n, frame(50, 3))
        .bytes(),
    )
    const r = new Random(20261205)
    let accepted = 0
    let refused = 0
    for (let i = 0; i < 3000; i++) {
      const file = mutate(r, r.pick(seeds))
      try {
        for await (const p of pcap.read(file)) expect(p.data.length, `case ${i}`).toBeLessThanOrEqual(file.length)
        accepted++
      } catch (e) {
        expect(e, `case ${i}: ${e}`).toBeInstanceOf(FormatError)
        expect((e as FormatError).code).toBe('EINVAL')
        expect((e as FormatError).offset).toBeLessThanOrEqual(file.length)
        refused++
      }
    }
    expect(accepted).toBeGreaterThan(300)
    expect(refused).toBeGreaterThan(300)
  })
})
