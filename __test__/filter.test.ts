/**
 * `compileFilter` and `Program.filterPcap` against tcpdump. The oracle: for each expression, the
 * packets of a generated capture that `tcpdump -r in.pcap -w out.pcap EXPR` keeps (libpcap's
 * compiler and interpreter) are exactly those `filterPcap` keeps with the compiled program, on both
 * engines, byte for byte. Program sizes are compared with `tcpdump -d`. Skipped, saying why, where
 * tcpdump is not installed (.ci/run installs it).
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { compileFilter, EbpfError, FilterError, Program, pcap } from '../ts/index'
import { type GeneratedPacket, PacketGenerator } from './helpers/capture-gen'
import { filterExpressions } from './helpers/filter-expressions'
import { Random } from './helpers/random'

const hasTcpdump = spawnSync('tcpdump', ['--version'], { stdio: 'ignore' }).status === 0
if (!hasTcpdump) console.warn('filter.test.ts: tcpdump is not installed; the tcpdump oracle tests are skipped')

const PACKETS = 3000
const SEED = 20261205
const EXPRESSIONS = filterExpressions()
const ENGINES = ['interpreter', 'jit'] as const

/** Records of a pcap file: the packet index (its timestamp in seconds) and the bytes. */
function records(bytes: Uint8Array): Array<{ index: number; data: string; originalLength: number }> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  expect(view.getUint32(0, true)).toBe(0xa1b2c3d4)
  const out: Array<{ index: number; data: string; originalLength: number }> = []
  for (let at = 24; at + 16 <= bytes.length; ) {
    const caplen = view.getUint32(at + 8, true)
    out.push({
      index: view.getUint32(at, true),
      data: Buffer.from(bytes.subarray(at + 16, at + 16 + caplen)).toString('hex'),
      originalLength: view.getUint32(at + 12, true),
    })
    at += 16 + caplen
  }
  return out
}

/**
 * What tcpdump keeps, or its message where it refuses the expression. `optimize: false` is
 * `tcpdump -O`: libpcap's code as generated, whose meaning is the expression's.
 */
function tcpdumpKeeps(
  input: string,
  output: string,
  expr: string,
  optimize = true,
): ReturnType<typeof records> | string {
  const r = spawnSync('tcpdump', [...(optimize ? [] : ['-O']), '-r', input, '-w', output, '--', expr], {
    encoding: 'utf8',
  })
  if (r.status !== 0) return r.stderr.trim()
  return records(readFileSync(output))
}

async function writeCapture(
  path: string,
  packets: GeneratedPacket[],
  linkType: 'EN10MB' | 'RAW' | 'LINUX_SLL' | 'LINUX_SLL2' | 'NULL' | 'LOOP',
): Promise<void> {
  await pcap.write(
    path,
    packets.map((p, i) => ({ data: p.data, originalLength: p.originalLength, timestamp: BigInt(i) * 1_000_000_000n })),
    { linkType },
  )
}

/**
 * libpcap's optimizer moves loads across `or` (`host a or host b` compares the source field with
 * both addresses before it loads the destination), which changes the verdict on a packet cut inside
 * the header it reads: the load that would have rejected it is not reached. Our program evaluates
 * the expression as written (as `tcpdump -O` does), so it must equal `tcpdump -O` on every packet,
 * and tcpdump's optimized filter on every packet that is not cut short.
 */
describe.skipIf(!hasTcpdump)('compileFilter keeps what tcpdump -r keeps', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-filter-'))
  const input = join(dir, 'in.pcap')
  const generated = new PacketGenerator(SEED).packets(PACKETS)
  const cut = new Set(generated.flatMap((p, i) => (p.cut ? [i] : [])))
  const sizes: Array<{ expr: string; ours: number; tcpdump: number }> = []
  const optimizerDiffers: string[] = []
  beforeAll(async () => {
    await writeCapture(input, generated, 'EN10MB')
  })
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true })
    if (sizes.length === 0) return
    const ours = sizes.reduce((a, s) => a + s.ours, 0)
    const theirs = sizes.reduce((a, s) => a + s.tcpdump, 0)
    const larger = sizes.filter((s) => s.ours > s.tcpdump).length
    const smaller = sizes.filter((s) => s.ours < s.tcpdump).length
    console.log(
      `filter.test.ts: ${sizes.length} expressions over ${PACKETS} packets (${cut.size} cut short): ` +
        `${ours} classic instructions in all, tcpdump -d ${theirs} (ratio ${(ours / theirs).toFixed(3)}); ` +
        `ours larger for ${larger}, smaller for ${smaller}, equal for ${sizes.length - larger - smaller}. ` +
        `tcpdump's optimizer changes the verdict on cut packets for ${optimizerDiffers.length}: ${optimizerDiffers.join(' | ')}`,
    )
  })

  it(`has at least 200 expressions (${EXPRESSIONS.length}) and no duplicate`, () => {
    expect(EXPRESSIONS.length).toBeGreaterThanOrEqual(200)
    expect(new Set(EXPRESSIONS).size).toBe(EXPRESSIONS.length)
  })

  it('every compiled expression passes our verifier (mode verified), as a socket filter', () => {
    for (const expr of EXPRESSIONS) {
      const program = new Program({
        type: 'socket_filter',
        instructions: compileFilter(expr).instructions,
        mode: 'verified',
      })
      expect(program.mode, expr).toBe('verified')
    }
  })

  it.each(EXPRESSIONS)('%s', async (expr) => {
    const expected = tcpdumpKeeps(input, join(dir, 'tcpdump-O.pcap'), expr, false)
    const optimized = tcpdumpKeeps(input, join(dir, 'tcpdump.pcap'), expr)
    const compiled = compileFilter(expr)
    if (typeof expected === 'string' || typeof optimized === 'string') {
      // tcpdump refuses a filter that can never match; ours must keep nothing.
      expect(optimized).toMatch(/expression rejects all packets/)
      expect(compiled.classic).toEqual([{ code: 6, jt: 0, jf: 0, k: 0 }])
      return
    }
    const tcpdumpSize = execFileSync('tcpdump', ['-d', '-y', 'EN10MB', '--', expr], { encoding: 'utf8' })
      .trim()
      .split('\n').length
    sizes.push({ expr, ours: compiled.classic.length, tcpdump: tcpdumpSize })
    const whole = (rs: ReturnType<typeof records>) => rs.filter((r) => !cut.has(r.index))
    if (JSON.stringify(optimized) !== JSON.stringify(expected)) optimizerDiffers.push(expr)
    for (const engine of ENGINES) {
      const program = new Program({ type: 'socket_filter', instructions: compiled.instructions, engine })
      const out = join(dir, `ours-${engine}.pcap`)
      const summary = await program.filterPcap(input, out, { batchSize: 512 })
      const kept = records(readFileSync(out))
      expect(
        kept.map((r) => r.index),
        `${engine}: the packets kept, as tcpdump -O`,
      ).toEqual(expected.map((r) => r.index))
      expect(kept, `${engine}: the bytes written`).toEqual(expected)
      expect(whole(kept), `${engine}: the whole packets kept, as tcpdump`).toEqual(whole(optimized))
      expect(summary).toMatchObject({ packets: PACKETS, kept: expected.length, trapped: 0 })
    }
  })

  it('the expressions keep and drop a mix of the packets', () => {
    // The oracle is worth something only if the verdicts vary: few expressions keep all or nothing.
    const uniform = EXPRESSIONS.filter((expr) => {
      const kept = tcpdumpKeeps(input, join(dir, 'mix.pcap'), expr)
      return typeof kept === 'string' || kept.length === 0 || kept.length === PACKETS
    })
    expect(uniform.length, uniform.join('\n')).toBeLessThanOrEqual(5)
  })
})

/**
 * Random combinations of primitives with `and`, `or`, `not` and parentheses, the shapes in which
 * the jump threading and reload removal of the compiler act most: the same oracle (`tcpdump -O`).
 */
describe.skipIf(!hasTcpdump)('random combinations keep what tcpdump -O keeps', () => {
  const ATOMS = [
    'ip',
    'ip6',
    'arp',
    'tcp',
    'udp',
    'icmp',
    'icmp6',
    'vlan',
    'vlan 5',
    'mpls',
    'port 80',
    'port 53',
    'tcp port 443',
    'src port 22',
    'host 10.0.0.1',
    'dst host 10.0.0.2',
    'net 192.168.0.0/16',
    'host 2001:db8::1',
    'ether broadcast',
    'ether multicast',
    'ether src 02:00:00:00:00:02',
    'len > 100',
    'less 60',
    'tcp[tcpflags] & tcp-syn != 0',
    'ip[8] = 64',
    'ip[6:2] & 0x1fff != 0',
    'ether[12:2] = 0x800',
    'ip proto 47',
    'ip6 proto 58',
    'portrange 20-100',
    'udp[0:2] > 1000',
    'icmp[icmptype] = icmp-echo',
    'ip[0] & 0xf > 5',
    'ether[0] & 1 = 0',
    'ip multicast',
  ]
  const random = new Random(0x5eed)
  const gen = (depth: number): string => {
    const r = random.below(10)
    if (depth === 0 || r < 3) return ATOMS[random.below(ATOMS.length)]!
    if (r < 4) return `not ${gen(depth - 1)}`
    const op = random.below(2) === 0 ? 'and' : 'or'
    const e = `${gen(depth - 1)} ${op} ${gen(depth - 1)}`
    return random.below(2) === 0 ? `(${e})` : e
  }
  const exprs = [...new Set(Array.from({ length: 160 }, () => gen(3)))].slice(0, 120)
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-filter-random-'))
  const input = join(dir, 'in.pcap')
  beforeAll(async () => {
    await writeCapture(input, new PacketGenerator(SEED + 2).packets(1500), 'EN10MB')
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it.each(exprs)('%s', async (expr) => {
    const expected = tcpdumpKeeps(input, join(dir, 'tcpdump.pcap'), expr, false)
    if (typeof expected === 'string' && !/rejects all packets/.test(expected)) {
      // tcpdump refuses it (vlan after mpls): so do we, with its words.
      expect(() => compileFilter(expr)).toThrow(/no VLAN match after MPLS/)
      expect(expected).toMatch(/no VLAN match after MPLS/)
      return
    }
    const compiled = compileFilter(expr)
    if (typeof expected === 'string') {
      expect(compiled.classic).toEqual([{ code: 6, jt: 0, jf: 0, k: 0 }])
      return
    }
    const program = new Program({ type: 'socket_filter', instructions: compiled.instructions })
    const out = join(dir, 'ours.pcap')
    await program.filterPcap(input, out)
    expect(records(readFileSync(out)).map((r) => r.index)).toEqual(expected.map((r) => r.index))
  })
})

describe.skipIf(!hasTcpdump)('other link types', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-filter-link-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  type Relinked = 'RAW' | 'LINUX_SLL' | 'LINUX_SLL2' | 'NULL' | 'LOOP'
  /**
   * The generated frames without their Ethernet header (untagged IP ones), as RAW, cooked (SLL,
   * SLL2) or BSD loopback packets (NULL: the address family little-endian, LOOP: big-endian; IPv4
   * is 2, IPv6 the BSDs' 24, 28 or 30 in turn, anything else an unknown family 99).
   */
  function relink(linkType: Relinked): GeneratedPacket[] {
    return new PacketGenerator(SEED + 1)
      .packets(1500)
      .filter((p) => p.data.length > 14)
      .map((p) => {
        const type = [p.data[12]!, p.data[13]!]
        const body = p.data.subarray(14)
        // SLL: packet type, ARPHRD_ETHER, address length, 8 address bytes, protocol. SLL2: protocol,
        // reserved, interface index 1, ARPHRD_ETHER, packet type, address length, 8 address bytes.
        const source = p.data.subarray(6, 12)
        const ethertype = (type[0]! << 8) | type[1]!
        const family = ethertype === 0x0800 ? 2 : ethertype === 0x86dd ? [24, 28, 30][p.data.length % 3]! : 99
        const data =
          linkType === 'RAW'
            ? body
            : linkType === 'LINUX_SLL'
              ? Uint8Array.from([0, 0, 0, 1, 0, 6, ...source, 0, 0, ...type, ...body])
              : linkType === 'LINUX_SLL2'
                ? Uint8Array.from([...type, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, ...source, 0, 0, ...body])
                : linkType === 'NULL'
                  ? Uint8Array.from([family, 0, 0, 0, ...body])
                  : Uint8Array.from([0, 0, 0, family, ...body])
        return { data, originalLength: p.originalLength - p.data.length + data.length, cut: p.cut }
      })
  }
  /** Expressions for link layers that carry only IP (RAW, NULL, LOOP). */
  const network = [
    'ip',
    'ip6',
    'tcp',
    'udp port 53',
    'host 10.0.0.1',
    'ip6 net 2001:db8::/32',
    'tcp[tcpflags] & tcp-syn != 0',
    'ip[8] = 64',
    'icmp6',
    'len > 60',
    'not ip',
    'port 80 or port 443',
    'ip proto 47',
  ]
  const cooked = [
    'ip',
    'ip6',
    'arp',
    'tcp',
    'udp port 53',
    'host 10.0.0.1',
    'net 2001:db8::/32',
    'tcp[13] & 2 != 0',
    'icmp',
    'len < 80',
    'ether proto 0x88cc',
    'not tcp',
    'portrange 20-100',
  ]
  const cases: Array<[Relinked, string[]]> = [
    ['RAW', [...network, 'ip6 proto 58']],
    ['LINUX_SLL', [...cooked, 'rarp host 10.0.0.2']],
    ['LINUX_SLL2', [...cooked, 'ip6 proto 58']],
    ['NULL', [...network, 'link[0] = 2 or link[3] = 2']],
    ['LOOP', [...network, 'link[0] = 2 or link[3] = 2']],
  ]
  for (const [linkType, exprs] of cases) {
    it.each(exprs)(`${linkType}: %s`, async (expr) => {
      const input = join(dir, `${linkType}.pcap`)
      await writeCapture(input, relink(linkType), linkType)
      const expected = tcpdumpKeeps(input, join(dir, 'tcpdump.pcap'), expr, false)
      const compiled = compileFilter(expr, { linkType })
      if (typeof expected === 'string') {
        expect(expected).toMatch(/rejects all packets|not supported|no .* support/)
        return
      }
      const program = new Program({ type: 'socket_filter', instructions: compiled.instructions })
      const out = join(dir, 'ours.pcap')
      await program.filterPcap(input, out)
      expect(records(readFileSync(out))).toEqual(expected)
      expect(expected.length).toBeGreaterThan(0)
    })
  }
})

describe('errors name the column', () => {
  const cases: Array<[string, number, RegExp]> = [
    ['', 1, /expected a filter expression/],
    ['tcp port', 9, /expected an address, number or name, got the end/],
    ['tcp and', 8, /expected a primitive/],
    ['ip[2:3] = 1', 6, /data size must be 1, 2 or 4/],
    ['tcp port 80 xor 1', 13, /expected 'and', 'or'/],
    ['host 10.0.0.1 or (', 19, /expected a primitive/],
    ['ip[0] / 0 = 1', 7, /division by zero/],
    ['ip[0] << 32 = 1', 7, /shift by 32/],
    ['host foo', 6, /'foo' is a name; compileFilter does not resolve names/],
    ['10.0.0.1', 1, /'10.0.0.1' needs a qualifier/],
    ['gateway 10.0.0.1', 1, /'gateway' needs host name resolution/],
    ['port http', 6, /port names need \/etc\/services/],
    ['ip6 port 80', 1, /illegal qualifier of 'port': 'ip6'/],
    ['tcp host 10.0.0.1', 1, /'tcp' modifier applied to host/],
    ['host 02:00:00:00:00:01', 6, /ethernet address used in non-ether expression/],
    ['net 10.0.0.1/8', 5, /non-network bits set in '10.0.0.1'/],
    ['vlan 5000', 1, /VLAN id 5000 is past 4095/],
    ['ip $ 1', 4, /unexpected character '\$'/],
    ['mpls and arp', 10, /only ip and ip6 can be tested behind mpls/],
    ['port 70000', 6, /port 70000 is past 65535/],
    ['ether', 6, /expected a qualifier after 'ether'/],
    ['ip[1', 5, /expected '\]'/],
    ['len > 99999999999', 7, /past 2\^32 - 1/],
  ]
  it.each(cases)('%j: column %i', (expr, column, message) => {
    let error: unknown
    try {
      compileFilter(expr)
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(FilterError)
    const e = error as FilterError
    expect(e.code).toBe('EINVAL')
    expect(e.column).toBe(column)
    expect(e.message).toMatch(new RegExp(`^column ${column}: `))
    expect(e.message).toMatch(message)
  })

  it('refuses options it cannot use', () => {
    expect(() => compileFilter('ip', { linkType: 'FDDI' })).toThrow(/linkType FDDI is not one compileFilter supports/)
    expect(() => compileFilter('vlan', { linkType: 'RAW' })).toThrow(/no VLAN support for RAW/)
    expect(() => compileFilter('mpls', { linkType: 'LINUX_SLL' })).toThrow(/no MPLS support for LINUX_SLL/)
    expect(() => compileFilter('ether host 1:2:3:4:5:6', { linkType: 'LINUX_SLL' })).toThrow(
      /need an Ethernet link layer/,
    )
    expect(() => compileFilter('ip', { snaplen: 0 })).toThrow(EbpfError)
    expect(() => compileFilter(42 as unknown as string)).toThrow(/must be a string/)
  })
})

describe('the batch path filterPcap uses', () => {
  const len = compileFilter('len > 100')
  const program = new Program({ type: 'socket_filter', instructions: len.instructions })
  const packets = [new Uint8Array(60), new Uint8Array(120), new Uint8Array(80)]

  it('runBatchRetvals: packed packets equal the array form; wireLengths are __sk_buff.len where larger', () => {
    const bytes = new Uint8Array(260)
    const lengths = Uint32Array.of(60, 120, 80)
    expect([...program.runBatchRetvals(packets).retvals]).toEqual([0, 262144, 0])
    expect([...program.runBatchRetvals({ bytes, lengths }).retvals]).toEqual([0, 262144, 0])
    // A packet captured short of a 200-byte frame is longer than 100 on the wire; a smaller wire length changes nothing.
    const wire = program.runBatchRetvals({ bytes, lengths }, { wireLengths: [200, 10, 80] })
    expect([...wire.retvals]).toEqual([262144, 262144, 0])
  })

  it('runBatchRetvals refuses what it cannot use', () => {
    const raw = new Program({ instructions: Uint8Array.from([0xb7, 0, 0, 0, 1, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]) })
    expect(() => raw.runBatchRetvals(packets, { wireLengths: [1, 2, 3] })).toThrow(/socket filters/)
    expect(() => program.runBatchRetvals(packets, { wireLengths: [1] })).toThrow(/1 entries for 3 packets/)
    expect(() => program.runBatchRetvals({ bytes: new Uint8Array(10), lengths: [4, 4] })).toThrow(/add up to 8 bytes/)
    expect(() => program.runBatchRetvals({ bytes: new Uint8Array(10), lengths: [-1] })).toThrow(EbpfError)
  })

  it('pcap.readBatches: batches of at most batchSize, each packet a view of the batch bytes', async () => {
    const generated = new PacketGenerator(3).packets(1000)
    const bytes = await (async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ebpf-batches-'))
      const file = join(dir, 'b.pcapng')
      await pcap.write(
        file,
        generated.map((p) => ({ data: p.data, originalLength: p.originalLength })),
        { format: 'pcapng' },
      )
      const all = readFileSync(file)
      rmSync(dir, { recursive: true, force: true })
      return all
    })()
    const seen: Uint8Array[] = []
    for await (const batch of pcap.readBatches(bytes, { batchSize: 300 })) {
      expect(batch.length).toBeLessThanOrEqual(300)
      let at = 0
      for (const p of batch) {
        expect(p.data.buffer).toBe(batch.bytes.buffer)
        expect(p.data.byteOffset).toBe(batch.bytes.byteOffset + at)
        at += p.data.length
        seen.push(p.data)
      }
      expect(at).toBe(batch.bytes.length)
    }
    expect(seen.map((d) => Buffer.from(d).toString('hex'))).toEqual(
      generated.map((p) => Buffer.from(p.data).toString('hex')),
    )
  })
})
