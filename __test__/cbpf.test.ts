/**
 * Classic BPF: reading, `tcpdump -d` listings, the kernel's checks and the conversion to eBPF socket
 * filters. Oracles: tcpdump itself (its `-d` text for our disassembler; `tcpdump -r file.pcap EXPR`
 * for which packets a converted `tcpdump -dd` program keeps), the kernel's documented rules
 * (`bpf_check_classic`, Documentation/networking/filter.rst) and hand computation. Tests that need
 * tcpdump skip, saying why, where it is not installed.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { cbpf, EbpfError, LoadError, Program } from '../ts/index'

const hasTcpdump = (() => {
  try {
    execFileSync('tcpdump', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
})()
if (!hasTcpdump) console.warn('cbpf.test.ts: tcpdump is not installed; the tcpdump oracle tests are skipped')

const tcpdump = (args: string[]): string =>
  execFileSync('tcpdump', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
const compile = (flag: '-d' | '-dd' | '-ddd', expr: string): string => tcpdump([flag, '-y', 'EN10MB', '--', expr])

const ENGINES = ['interpreter', 'jit'] as const

// ---------------------------------------------------------------- packets

const MAC_A = [0x02, 0, 0, 0, 0, 0x01]
const MAC_B = [0x02, 0, 0, 0, 0, 0x02]
const BROADCAST = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
const MULTICAST = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x01]

const be16 = (v: number): number[] => [v >> 8, v & 0xff]
const ip4 = (s: string): number[] => s.split('.').map(Number)

function ether(dst: number[], type: number, payload: number[], src = MAC_B): number[] {
  return [...dst, ...src, ...be16(type), ...payload]
}

/** An 802.1Q tag's TCI and the inner Ethernet type, in front of `payload` (the TPID is the outer type). */
function vlan(id: number, type: number, payload: number[]): number[] {
  return [...be16(id), ...be16(type), ...payload]
}

interface Ip4 {
  src: string
  dst: string
  proto: number
  payload: number[]
  options?: number[]
  frag?: number
  ttl?: number
  totalLength?: number
}

function ipv4(p: Ip4): number[] {
  const options = p.options ?? []
  const ihl = 5 + options.length / 4
  const total = p.totalLength ?? ihl * 4 + p.payload.length
  return [
    0x40 | ihl,
    0,
    ...be16(total),
    0x12,
    0x34,
    ...be16(p.frag ?? 0),
    p.ttl ?? 64,
    p.proto,
    0,
    0,
    ...ip4(p.src),
    ...ip4(p.dst),
    ...options,
    ...p.payload,
  ]
}

function ipv6(next: number, payload: number[], src = 1, dst = 2): number[] {
  const addr = (last: number): number[] => [0x20, 0x01, 0x0d, 0xb8, ...new Array<number>(11).fill(0), last]
  return [0x60, 0, 0, 0, ...be16(payload.length), next, 64, ...addr(src), ...addr(dst), ...payload]
}

function tcp(sport: number, dport: number, flags: number, data: number[] = []): number[] {
  return [...be16(sport), ...be16(dport), 0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0x20, 0, 0, 0, 0, 0, ...data]
}

function udp(sport: number, dport: number, data: number[] = []): number[] {
  return [...be16(sport), ...be16(dport), ...be16(8 + data.length), 0, 0, ...data]
}

const icmp = (type: number): number[] => [type, 0, 0, 0, 0, 1, 0, 1]
const arp = (op: number): number[] => [
  0,
  1,
  8,
  0,
  6,
  4,
  0,
  op,
  ...MAC_B,
  ...ip4('10.0.0.2'),
  0,
  0,
  0,
  0,
  0,
  0,
  ...ip4('10.0.0.1'),
]
const SYN = 0x02
const ACK = 0x10

/** Hand-made frames: Ethernet, VLAN (single and QinQ), IPv4 (options, fragments), IPv6, ARP, short ones. */
const PACKETS: number[][] = [
  ether(MAC_A, 0x0800, ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 6, payload: tcp(1234, 80, SYN) })),
  ether(MAC_A, 0x0800, ipv4({ src: '192.168.1.5', dst: '10.0.0.1', proto: 6, payload: tcp(80, 5555, ACK) })),
  ether(
    MAC_A,
    0x0800,
    ipv4({ src: '10.1.2.3', dst: '172.16.0.9', proto: 6, payload: tcp(40000, 22, SYN | ACK), options: [1, 1, 1, 0] }),
  ),
  ether(MAC_A, 0x0800, ipv4({ src: '10.0.0.2', dst: '8.8.8.8', proto: 17, payload: udp(5353, 53, [1, 2, 3, 4]) })),
  ether(BROADCAST, 0x0800, ipv4({ src: '0.0.0.0', dst: '255.255.255.255', proto: 17, payload: udp(68, 67) })),
  ether(MAC_A, 0x0800, ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 1, payload: icmp(8) })),
  ether(MAC_A, 0x0800, ipv4({ src: '10.0.0.2', dst: '10.0.0.1', proto: 1, payload: icmp(0), ttl: 1 })),
  ether(
    MAC_A,
    0x0800,
    ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 6, payload: [1, 2, 3, 4, 5, 6, 7, 8], frag: 100 }),
  ),
  ether(MAC_A, 0x0800, ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 6, payload: tcp(1000, 80, ACK), frag: 0x2000 })),
  ether(
    MULTICAST,
    0x0800,
    ipv4({ src: '10.0.0.7', dst: '224.0.0.1', proto: 2, payload: [0x11, 0x64, 0, 0, 0, 0, 0, 0] }),
  ),
  ether(
    MAC_A,
    0x0800,
    ipv4({
      src: '10.0.0.1',
      dst: '10.9.9.9',
      proto: 6,
      payload: tcp(2222, 8080, ACK, new Array<number>(960).fill(0x61)),
    }),
  ),
  ether(MAC_A, 0x86dd, ipv6(6, tcp(1234, 80, SYN))),
  ether(MAC_A, 0x86dd, ipv6(17, udp(1000, 53))),
  ether(MAC_A, 0x86dd, ipv6(58, [128, 0, 0, 0, 0, 1, 0, 1])),
  ether(MAC_A, 0x86dd, ipv6(0, [6, 0, 1, 4, 0, 0, 0, 0, ...tcp(1234, 443, SYN)])),
  ether(BROADCAST, 0x0806, arp(1)),
  ether(MAC_A, 0x0806, arp(2)),
  ether(BROADCAST, 0x8035, arp(3)),
  ether(
    MAC_A,
    0x8100,
    vlan(5, 0x0800, ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 6, payload: tcp(1234, 80, SYN) })),
  ),
  ether(MAC_A, 0x8100, vlan(7, 0x0800, ipv4({ src: '10.0.0.3', dst: '10.0.0.4', proto: 17, payload: udp(9, 53) }))),
  ether(
    MAC_A,
    0x88a8,
    vlan(100, 0x8100, vlan(5, 0x0800, ipv4({ src: '10.0.0.1', dst: '1.1.1.1', proto: 17, payload: udp(1, 2) }))),
  ),
  ether(MAC_A, 0x8847, [
    0,
    0,
    0x11,
    0x40,
    ...ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 17, payload: udp(7, 7) }),
  ]),
  ether(MAC_A, 0x0800, ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 6, payload: [] }).slice(0, 20)),
  ether(MAC_A, 0x0800, []),
  [...MAC_A, ...MAC_B],
  [0x02, 0, 0],
]

/** A pcap file (LINKTYPE_ETHERNET, microsecond timestamps): packet i has the timestamp i seconds. */
function pcapFile(packets: number[][]): Uint8Array {
  const parts: number[] = []
  const u32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24]
  const u16 = (v: number): number[] => [v & 0xff, v >> 8]
  parts.push(...u32(0xa1b2c3d4), ...u16(2), ...u16(4), ...u32(0), ...u32(0), ...u32(65535), ...u32(1))
  packets.forEach((p, i) => {
    parts.push(...u32(i + 1), ...u32(0), ...u32(p.length), ...u32(p.length), ...p)
  })
  return new Uint8Array(parts)
}

/** The records of a pcap file tcpdump wrote (host byte order, microseconds): index and captured length. */
function pcapRecords(bytes: Buffer): Array<{ index: number; caplen: number }> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  expect(view.getUint32(0, true)).toBe(0xa1b2c3d4)
  const out: Array<{ index: number; caplen: number }> = []
  for (let at = 24; at + 16 <= bytes.length; ) {
    const caplen = view.getUint32(at + 8, true)
    out.push({ index: view.getUint32(at, true) - 1, caplen })
    at += 16 + caplen
  }
  return out
}

// ---------------------------------------------------------------- expressions

/** Filter expressions for the tcpdump oracles: protocols, addresses, ports, VLAN, arithmetic with K and X. */
const EXPRESSIONS = [
  'ip',
  'ip6',
  'arp',
  'rarp',
  'tcp',
  'udp',
  'icmp',
  'icmp6',
  'igmp',
  'tcp port 80',
  'tcp dst port 80',
  'udp port 53',
  'port 80',
  'src port 80',
  'portrange 20-100',
  'host 10.0.0.1',
  'src host 10.0.0.1',
  'dst net 10.0.0.0/8',
  'net 192.168.0.0/16',
  'ip host 10.0.0.1 and ip host 10.0.0.2',
  'ether broadcast',
  'ether multicast',
  'ether host 02:00:00:00:00:01',
  'ether src 02:00:00:00:00:02',
  'ether proto 0x0806',
  'vlan',
  'vlan 5',
  'vlan and udp',
  'vlan 100 and vlan 5',
  'mpls',
  'ip proto 2',
  'ip6 proto 58',
  'ip6 and tcp dst port 80',
  'len < 100',
  'greater 500',
  'less 60',
  'tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn',
  'tcp[tcpflags] & tcp-ack != 0',
  'icmp[icmptype] = icmp-echo',
  'ip[2:2] > 576',
  'ip[6:2] & 0x1fff != 0',
  'ip[0] & 0xf > 5',
  'ip[8] = 1',
  'ether[0] & 1 = 0',
  'udp[8:2] = 0x0102',
  'not ip',
  'tcp and not port 22',
  'ip and (udp or icmp)',
  'tcp dst port 80 and not host 10.0.0.1 or vlan 5 and ether[0] & 1 = 0 or ip[2:2] > 576 and len < 100',
  '(ip[2:2] - ((ip[0] & 0xf) << 2)) * 3 / 2 % 7 > 1',
  'ip[1] ^ 0xff | 1 = 0xff',
  'len - 14 >> 1 > 20',
  '-ether[12:2] & 0xffff = 0xf800',
  'ether[12:2] / ip[1] > 100',
  'ether[12:2] % ip[1] = 0',
  'ether[ether[14] & 0xf] = 2',
  'ip[2:2] * (ip[0] & 0xf) - len > 0x800',
  'ether[12:2] >> (ether[0] & 7) = 0x400',
  'ether[0] << (ether[1] & 7) = 2',
  'ip[0] + 1 = 0x46',
  'ip[1] | 0x10 = 0x10',
  'ip[2:2] % 7 = 5',
  'ether[0] = ether[6]',
  'ip[2:2] - 20 > ip[0] * 4',
]

// ---------------------------------------------------------------- tests

describe.skipIf(!hasTcpdump)('disassemble equals tcpdump -d', () => {
  it.each(EXPRESSIONS)('%s', (expr) => {
    const expected = compile('-d', expr)
    expect(cbpf.disassemble(compile('-dd', expr))).toBe(expected)
    // -ddd, struct sock_filter bytes and arrays read to the same instructions.
    const insns = cbpf.parse(compile('-dd', expr))
    expect(cbpf.parse(compile('-ddd', expr))).toEqual(insns)
    expect(cbpf.parse(cbpf.toBytes(insns))).toEqual(insns)
    expect(cbpf.disassemble(insns.map((i) => [i.code, i.jt, i.jf, i.k] as const))).toBe(expected)
  })
})

describe.skipIf(!hasTcpdump)('verdicts equal tcpdump -r on a pcap of hand-made packets', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-cbpf-'))
  const input = join(dir, 'in.pcap')
  writeFileSync(input, pcapFile(PACKETS))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it.each(EXPRESSIONS)('%s', (expr) => {
    const kept = pcapRecords(
      execFileSync('tcpdump', ['-r', input, '-w', '-', '--', expr], { stdio: ['ignore', 'pipe', 'pipe'] }),
    )
    const program = compile('-dd', expr)
    for (const engine of ENGINES) {
      const prog = Program.fromClassic(program, { engine })
      const ours = PACKETS.flatMap((p, index) => {
        const { retval } = prog.run({ data: new Uint8Array(p) })
        return retval === 0 ? [] : [{ index, caplen: Math.min(retval, p.length) }]
      })
      expect(ours, `${engine}`).toEqual(kept)
    }
  })

  it('the expressions keep and drop a mix of the packets', () => {
    // The oracle is only worth something if the verdicts vary: every expression keeps some and drops some.
    const uniform = EXPRESSIONS.filter((expr) => {
      const n = pcapRecords(
        execFileSync('tcpdump', ['-r', input, '-w', '-', '--', expr], { stdio: ['ignore', 'pipe', 'pipe'] }),
      ).length
      return n === 0 || n === PACKETS.length
    })
    expect(uniform).toEqual([])
  })
})

// ---------------------------------------------------------------- the kernel's checks

const AD = cbpf.SKF_AD_OFF
const RET_A: [number, number, number, number] = [0x16, 0, 0, 0]
const RET_0: [number, number, number, number] = [0x06, 0, 0, 0]

/** The LoadError a program gets from `toEbpf` (which checks it first). */
function refusal(program: cbpf.ClassicInput): LoadError {
  try {
    cbpf.toEbpf(program)
  } catch (e) {
    expect(e).toBeInstanceOf(LoadError)
    return e as LoadError
  }
  throw new Error('the program was accepted')
}

describe('validation as bpf_check_classic', () => {
  // Each case: the program, the instruction the kernel's check stops at, and words of our message.
  const cases: Array<[string, Array<[number, number, number, number]>, number | undefined, RegExp]> = [
    ['no instruction', [], undefined, /1 to 4096 instructions, got 0/],
    ['4097 instructions', [...new Array(4096).fill([0x00, 0, 0, 1]), RET_A], undefined, /got 4097/],
    ['an unknown opcode', [[0xff, 0, 0, 0], RET_A], 0, /instruction 0 \(unimp +0xff\): unknown opcode 0xff/],
    ['BPF_LDX|BPF_B|BPF_IMM (a size on an immediate)', [[0x11, 0, 0, 0], RET_A], 0, /unknown opcode 0x11/],
    ['div #0', [[0x34, 0, 0, 0], RET_A], 0, /instruction 0 \(div +#0\): division by the constant 0/],
    ['mod #0', [[0x94, 0, 0, 0], RET_A], 0, /division by the constant 0/],
    ['lsh #32', [[0x64, 0, 0, 32], RET_A], 0, /shift by 32/],
    ['st M[16]', [[0x02, 0, 0, 16], RET_A], 0, /M\[16\]: scratch memory has 16 words/],
    ['ld M[16]', [[0x60, 0, 0, 16], RET_A], 0, /M\[16\]/],
    ['ja past the end', [[0x05, 0, 0, 1], RET_A], 0, /jump past the end/],
    ['jeq jt past the end', [[0x15, 1, 0, 0], RET_A], 0, /jump past the end/],
    ['jgt jf past the end', [[0x25, 0, 5, 0], RET_A], 0, /jump past the end/],
    ['no ret last', [[0x00, 0, 0, 1]], 0, /the last instruction must be a ret/],
    ['an unknown ancillary offset', [[0x20, 0, 0, AD + 64], RET_A], 0, /SKF_AD_OFF \+ 64/],
    ['an ancillary offset between two known ones', [[0x30, 0, 0, AD + 2], RET_A], 0, /SKF_AD_OFF \+ 2/],
    ['M[3] read before any write', [[0x60, 0, 0, 3], RET_A], 0, /M\[3\] is read before it is written/],
    [
      'M[0] written on one branch only',
      [[0x15, 0, 1, 0], [0x02, 0, 0, 0], [0x61, 0, 0, 0], RET_A],
      2,
      /instruction 2 \(ldx +M\[0\]\)/,
    ],
  ]
  it.each(cases)('refuses %s', (_, program, insn, message) => {
    const e = refusal(program)
    expect(e.code).toBe('EINVAL')
    expect(e.insn).toBe(insn)
    expect(e.message).toMatch(message)
  })

  it('accepts what the kernel accepts', () => {
    const ok: Array<Array<[number, number, number, number]>> = [
      [RET_0],
      [...new Array(4095).fill([0x00, 0, 0, 1]), RET_A],
      // M[0] written on both branches before the read.
      [[0x15, 0, 2, 0], [0x02, 0, 0, 0], [0x05, 0, 0, 1], [0x02, 0, 0, 0], [0x60, 0, 0, 0], RET_A],
      // Loads below SKF_AD_OFF (the network and link-layer areas) and a known ancillary load of any size.
      [[0x30, 0, 0, cbpf.SKF_NET_OFF + 9], [0x28, 0, 0, cbpf.SKF_LL_OFF + 12], [0x30, 0, 0, AD + 4], RET_A],
      [[0x64, 0, 0, 31], [0x34, 0, 0, 1], [0x81, 0, 0, 0], RET_A],
    ]
    for (const p of ok) expect(() => cbpf.toEbpf(p)).not.toThrow()
  })

  it('refuses ancillary loads a socket filter run cannot answer, naming them', () => {
    for (const [off, name] of [
      [28, 'hatype'],
      [52, 'poff'],
      [12, 'nla'],
      [16, 'nlan'],
    ] as const) {
      const e = refusal([[0x20, 0, 0, AD + off], RET_A])
      expect(e.code).toBe('ENOTSUPP')
      expect(e.insn).toBe(0)
      expect(e.message).toContain(`[${name}]`)
    }
  })
})

describe('reading', () => {
  it('refuses malformed input with EINVAL', () => {
    const bad: unknown[] = [
      '',
      '{ 0x6, 0, 0 },',
      '{ 0x6, 0, 0, 0 }, garbage',
      '{ 0x6, 0, 0, zz },',
      '2\n6 0 0 0\n',
      'x\n6 0 0 0',
      new Uint8Array(7),
      new Uint8Array(0),
      [[0x6, 0, 256, 0]],
      [[0x10000, 0, 0, 0]],
      [{ code: 6, k: 2 ** 32 }],
      [[6, 0, 0]],
      42,
    ]
    for (const input of bad) {
      expect(() => cbpf.parse(input as cbpf.ClassicInput), String(input)).toThrow(EbpfError)
    }
  })

  it('reads -dd text with comments, -ddd with commas (iptables) and signed k', () => {
    const want = [
      { code: 0x28, jt: 0, jf: 0, k: 12 },
      { code: 0x06, jt: 0, jf: 0, k: 0xffffffff },
    ]
    expect(cbpf.parse('/* ip */\n{ 0x28, 0, 0, 0x0000000c }, // ldh [12]\n{ 6, 0, 0, 4294967295 },\n')).toEqual(want)
    expect(cbpf.parse('2,40 0 0 12,6 0 0 4294967295')).toEqual(want)
    expect(cbpf.parse([{ code: 0x28, k: 12 }, [6, 0, 0, -1]])).toEqual(want)
  })
})

// ---------------------------------------------------------------- semantics by hand computation

describe('converted programs compute what classic BPF defines', () => {
  const frame = new Uint8Array(
    ether(MAC_A, 0x0800, ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 6, payload: tcp(1234, 80, SYN) })),
  ) // 14 + 20 + 20 = 54 bytes
  const run = (program: Array<[number, number, number, number]>, ctx = {}, data = frame): number[] =>
    ENGINES.map((engine) => Program.fromClassic(program, { engine }).run({ data, ctx }).retval)

  it('ret #k is the snap length; ret a returns A', () => {
    expect(run([[0x06, 0, 0, 20]])).toEqual([20, 20])
    expect(run([[0x80, 0, 0, 0], RET_A])).toEqual([54, 54]) // ld #pktlen
    expect(run([[0x81, 0, 0, 0], [0x87, 0, 0, 0], RET_A])).toEqual([54, 54]) // ldx len; txa
  })

  it('packet loads are big-endian; a load past the end returns 0', () => {
    expect(run([[0x28, 0, 0, 12], RET_A])).toEqual([0x0800, 0x0800])
    expect(run([[0x20, 0, 0, 26], RET_A])).toEqual([0x0a000001, 0x0a000001]) // ip src
    expect(
      run([
        [0x20, 0, 0, 51],
        [0x06, 0, 0, 1],
      ]),
    ).toEqual([0, 0]) // 4 bytes at 51 of 54
    // ldxb 4*([14]&0xf) = 20; ldh [x + 16] = tcp dst port 80; A is kept across ldxb.
    expect(run([[0x00, 0, 0, 7], [0xb1, 0, 0, 14], [0x48, 0, 0, 16], RET_A])).toEqual([80, 80])
    expect(run([[0x00, 0, 0, 7], [0xb1, 0, 0, 14], RET_A])).toEqual([7, 7])
  })

  it('SKF_NET_OFF and SKF_LL_OFF address the network and link-layer headers', () => {
    expect(run([[0x30, 0, 0, cbpf.SKF_NET_OFF + 9], RET_A])).toEqual([6, 6]) // ip proto
    expect(run([[0x28, 0, 0, cbpf.SKF_LL_OFF + 12], RET_A])).toEqual([0x0800, 0x0800])
    // ldx #9; ldb [x + SKF_NET_OFF]: the IP protocol again; ldx #2; ldh [x + SKF_LL_OFF + 10].
    expect(run([[0x01, 0, 0, 9], [0x50, 0, 0, cbpf.SKF_NET_OFF], RET_A])).toEqual([6, 6])
    expect(run([[0x01, 0, 0, 2], [0x48, 0, 0, cbpf.SKF_LL_OFF + 10], RET_A])).toEqual([0x0800, 0x0800])
    // Raw IP packets: networkOffset 0.
    const raw = frame.subarray(14)
    const rawProto = Program.fromClassic([[0x30, 0, 0, cbpf.SKF_NET_OFF + 9], RET_A], { networkOffset: 0 })
    expect(rawProto.run({ data: raw }).retval).toBe(6)
  })

  it('ALU is 32-bit; division and modulo by X = 0 return 0', () => {
    // A = 7; A -= 9 -> 0xfffffffe; A *= 3 -> 0xfffffffa (mod 2^32); A >>= 4 -> 0x0fffffff.
    expect(run([[0x00, 0, 0, 7], [0x14, 0, 0, 9], [0x24, 0, 0, 3], [0x74, 0, 0, 4], RET_A])).toEqual([
      0x0fffffff, 0x0fffffff,
    ])
    expect(run([[0x00, 0, 0, 5], [0x84, 0, 0, 0], RET_A])).toEqual([0xfffffffb, 0xfffffffb]) // neg
    expect(run([[0x01, 0, 0, 0], [0x00, 0, 0, 7], [0x3c, 0, 0, 0], [0x04, 0, 0, 1], RET_A])).toEqual([0, 0])
    expect(run([[0x01, 0, 0, 0], [0x00, 0, 0, 7], [0x9c, 0, 0, 0], [0x04, 0, 0, 1], RET_A])).toEqual([0, 0])
    expect(run([[0x01, 0, 0, 3], [0x00, 0, 0, 7], [0x9c, 0, 0, 0], RET_A])).toEqual([1, 1]) // 7 % 3
    // The kernel converts lsh x to a 32-bit eBPF shift, whose amount is masked to 5 bits (RFC 9669
    // 4.1): 1 << 33 is 2. (libpcap's own interpreter gives 0: tcpdump -r keeps the broadcast frames
    // for 'ether[0] << ether[1] = 0', where ether[1] is 0xff; that expression is not in the oracle list.)
    expect(run([[0x00, 0, 0, 1], [0x01, 0, 0, 33], [0x6c, 0, 0, 0], RET_A])).toEqual([2, 2])
  })

  it('M[] holds words across instructions; jumps compare unsigned 32 bits', () => {
    // ld #5; st M[3]; ldx M[3]; add x -> 10
    expect(run([[0x00, 0, 0, 5], [0x02, 0, 0, 3], [0x61, 0, 0, 3], [0x0c, 0, 0, 0], RET_A])).toEqual([10, 10])
    // ld #0xffffffff; jgt #0x7fffffff (unsigned: true) -> ret #1 else ret #2
    const jgt: Array<[number, number, number, number]> = [
      [0x00, 0, 0, 0xffffffff],
      [0x25, 0, 1, 0x7fffffff],
      [0x06, 0, 0, 1],
      [0x06, 0, 0, 2],
    ]
    expect(run(jgt)).toEqual([1, 1])
    // jset #0x2 on 0x5: false; jt = jf = next: no jump at all.
    expect(
      run([
        [0x00, 0, 0, 5],
        [0x45, 0, 1, 2],
        [0x06, 0, 0, 1],
        [0x06, 0, 0, 2],
      ]),
    ).toEqual([2, 2])
    expect(
      run([
        [0x00, 0, 0, 5],
        [0x45, 0, 0, 2],
        [0x06, 0, 0, 3],
      ]),
    ).toEqual([3, 3])
  })

  it('ancillary loads read the __sk_buff fields in classic BPF order', () => {
    const ctx = {
      mark: 0x1234,
      ifindex: 7,
      pkt_type: 3,
      queue_mapping: 2,
      hash: 0xdeadbeef,
      vlan_tci: 0x0005,
      vlan_present: 1,
      // skb->vlan_proto is big-endian: 0x88a8 lies in memory as a8 88... read as a little-endian u32.
      vlan_proto: 0xa888,
    }
    const load = (off: number): number[] => run([[0x20, 0, 0, AD + off], RET_A], ctx)
    expect(load(0)).toEqual([0x0800, 0x0800]) // protocol (from the frame), host order
    expect(load(4)).toEqual([3, 3])
    expect(load(8)).toEqual([7, 7])
    expect(load(20)).toEqual([0x1234, 0x1234])
    expect(load(24)).toEqual([2, 2])
    expect(load(32)).toEqual([0xdeadbeef, 0xdeadbeef])
    expect(load(44)).toEqual([5, 5])
    expect(load(48)).toEqual([1, 1])
    expect(load(60)).toEqual([0x88a8, 0x88a8])
    // A ^= X: 0x0f ^ 0xff.
    expect(run([[0x00, 0, 0, 0x0f], [0x01, 0, 0, 0xff], [0x20, 0, 0, AD + 40], RET_A])).toEqual([0xf0, 0xf0])
    // cpu and random call helpers: the run goes through (values are the engine's).
    for (const r of run([
      [0x20, 0, 0, AD + 36],
      [0x06, 0, 0, 1],
    ]))
      expect(r).toBe(1)
    for (const r of run([
      [0x20, 0, 0, AD + 56],
      [0x06, 0, 0, 1],
    ]))
      expect(r).toBe(1)
  })
})

// ---------------------------------------------------------------- the CLI

describe.skipIf(!hasTcpdump)('ebpf disasm on classic BPF text', () => {
  const bin = join(__dirname, '..', 'bin', 'ebpf.js')
  const cli = (args: string[], input: string) =>
    spawnSync(process.execPath, [bin, ...args], { input, encoding: 'utf8' })

  it.each(['-dd', '-ddd'] as const)('lists tcpdump %s text as tcpdump -d does, and says it is classic BPF', (flag) => {
    const expr = 'tcp dst port 80 and not host 10.0.0.1'
    const r = cli(['disasm', '-'], compile(flag, expr))
    expect(r.status).toBe(0)
    expect(r.stdout).toBe(compile('-d', expr))
    expect(r.stderr).toContain(`classic BPF (tcpdump ${flag} text), `)
  })

  it('--ebpf prints the converted socket filter, or says why the program is refused', () => {
    const r = cli(['disasm', '-', '--ebpf'], compile('-dd', 'ip'))
    expect(r.status).toBe(0)
    expect(r.stdout).toContain('r0 = *(u16 *)skb[0xc]')
    // The listing shows any instructions, as tcpdump -d does; the conversion checks them first.
    const text = '{ 0x28, 0, 0, 0x0000000c },\n'
    expect(cli(['disasm', '-'], text).stdout).toBe('(000) ldh      [12]\n')
    const bad = cli(['disasm', '-', '--ebpf'], text)
    expect(bad.status).toBe(1)
    expect(bad.stderr).toContain('the last instruction must be a ret')
  })

  it('refuses a tcpdump -d listing with a hint, never reading it as eBPF', () => {
    for (const cmd of ['disasm', 'run']) {
      const r = cli([cmd, '-'], compile('-d', 'ip'))
      expect(r.status).toBe(1)
      expect(r.stdout).toBe('')
      expect(r.stderr).toContain("a 'tcpdump -d' listing of classic BPF, which cannot be read back; give 'tcpdump -dd'")
    }
  })

  it('ebpf run converts classic BPF text to a socket filter', () => {
    const hex = Buffer.from(PACKETS[0]!).toString('hex')
    const keep = cli(['run', '-', '--hex', hex], compile('-dd', 'tcp dst port 80'))
    expect(keep.status).toBe(0)
    expect(keep.stdout).toMatch(/^retval: 262144\n/)
    expect(cli(['run', '-', '--hex', hex], compile('-ddd', 'udp')).stdout).toMatch(/^retval: 0\n/)
    const wrongType = cli(['run', '-', '--type', 'xdp'], compile('-dd', 'ip'))
    expect(wrongType.status).toBe(1)
    expect(wrongType.stderr).toContain("classic BPF (tcpdump -dd text): it runs as a socket_filter, not 'xdp'")
  })
})

// ---------------------------------------------------------------- random programs against a reference

/**
 * A classic BPF interpreter written from the instruction set's definition with the kernel's
 * semantics where they are its own (division by X = 0 and loads outside the packet return 0, shift
 * amounts masked to 5 bits, `[x + k]` at the 32-bit sum taken as signed): the oracle for random
 * programs. Ancillary loads are left out (they have their own tests above).
 */
function reference(insns: readonly cbpf.ClassicInstruction[], pkt: Uint8Array): number {
  let A = 0
  let X = 0
  const M = new Uint32Array(16)
  const load = (off: number, size: number): number | undefined => {
    if (off < 0 || off + size > pkt.length) return undefined
    let v = 0
    for (let i = 0; i < size; i++) v = v * 256 + pkt[off + i]!
    return v
  }
  for (let pc = 0; ; pc++) {
    const { code, jt, jf, k } = insns[pc]!
    const cls = code & 7
    if (cls === 0x00 || cls === 0x01) {
      const size = { 0: 4, 8: 2, 16: 1 }[code & 0x18]!
      let v: number | undefined
      switch (code & 0xe0) {
        case 0x00:
          v = k
          break
        case 0x20:
          v = load(k | 0, size)
          break
        case 0x40:
          v = load((X + k) | 0, size)
          break
        case 0x60:
          v = M[k]!
          break
        case 0x80:
          v = pkt.length
          break
        case 0xa0: {
          const b = load(k | 0, 1)
          if (b === undefined) return 0
          X = (b & 0xf) * 4
          continue
        }
      }
      if (v === undefined) return 0
      if (cls === 0x00) A = v >>> 0
      else X = v >>> 0
    } else if (cls === 0x02) M[k] = A
    else if (cls === 0x03) M[k] = X
    else if (cls === 0x04) {
      const b = code & 0x08 ? X : k
      switch (code & 0xf0) {
        case 0x00:
          A = (A + b) >>> 0
          break
        case 0x10:
          A = (A - b) >>> 0
          break
        case 0x20:
          A = Math.imul(A, b) >>> 0
          break
        case 0x30:
          if (b === 0) return 0
          A = Math.floor(A / b) >>> 0
          break
        case 0x90:
          if (b === 0) return 0
          A = (A % b) >>> 0
          break
        case 0x40:
          A = (A | b) >>> 0
          break
        case 0x50:
          A = (A & b) >>> 0
          break
        case 0xa0:
          A = (A ^ b) >>> 0
          break
        case 0x60:
          A = (A << (b & 31)) >>> 0
          break
        case 0x70:
          A = A >>> (b & 31)
          break
        case 0x80:
          A = -A >>> 0
          break
      }
    } else if (cls === 0x05) {
      const b = code & 0x08 ? X : k
      const op = code & 0xf0
      if (op === 0x00) pc += k
      else {
        const taken = op === 0x10 ? A === b : op === 0x20 ? A > b : op === 0x30 ? A >= b : (A & b) !== 0
        pc += taken ? jt : jf
      }
    } else if (cls === 0x06) return code === 0x16 ? A : k
    else if (code === 0x07) X = A
    else A = X
  }
}

describe('random classic programs: both engines equal the reference interpreter', () => {
  let seed = 0x2545f491
  const rand = (n: number): number => {
    seed ^= seed << 13
    seed ^= seed >>> 17
    seed ^= seed << 5
    return (seed >>> 0) % n
  }
  const pick = <T>(xs: readonly T[]): T => xs[rand(xs.length)]!
  const wide = (): number => pick([0, 1, 2, 7, 14, 31, 32, 0x7fffffff, 0x80000000, 0xffffffff, rand(2 ** 32)])

  /** A random program the kernel accepts: all of M[] written first, jumps forward, a ret last. */
  function randomProgram(): cbpf.ClassicInstruction[] {
    const out: cbpf.ClassicInstruction[] = []
    for (let i = 0; i < 16; i++) out.push({ code: rand(2) ? 0x02 : 0x03, jt: 0, jf: 0, k: i })
    const body = 4 + rand(36)
    for (let i = 0; i < body; i++) {
      const left = body - i // instructions after this one, the final ret included
      const ins = (code: number, k = 0, jt = 0, jf = 0): cbpf.ClassicInstruction => ({ code, jt, jf, k: k >>> 0 })
      const aluOp = pick([0x00, 0x10, 0x20, 0x30, 0x90, 0x40, 0x50, 0xa0, 0x60, 0x70])
      const choices: Array<() => cbpf.ClassicInstruction> = [
        () => ins(0x00, wide()),
        () => ins(0x01, pick([0, 1, 2, 4, 14, 20, 0xffffffff, wide()])),
        () => ins(pick([0x20, 0x28, 0x30]), rand(70)),
        () => ins(pick([0x40, 0x48, 0x50]), rand(40)),
        () => ins(0xb1, rand(60)),
        () => ins(pick([0x80, 0x81])),
        () => ins(pick([0x60, 0x61, 0x02, 0x03]), rand(16)),
        () => {
          let k = wide()
          if ((aluOp === 0x30 || aluOp === 0x90) && k === 0) k = 3
          if (aluOp === 0x60 || aluOp === 0x70) k = rand(32)
          return ins(0x04 | aluOp, k)
        },
        () => ins(0x0c | aluOp),
        () => ins(pick([0x84, 0x07, 0x87])),
        () => ins(pick([0x15, 0x25, 0x35, 0x45, 0x1d, 0x2d, 0x3d, 0x4d]), wide(), rand(left), rand(left)),
        () => ins(0x05, rand(left)),
        () => ins(pick([0x06, 0x16]), wide()),
      ]
      out.push(pick(choices)())
    }
    out.push({ code: pick([0x06, 0x16]), jt: 0, jf: 0, k: wide() >>> 0 })
    return out
  }

  const packets = [
    new Uint8Array(0),
    new Uint8Array([0x45]),
    new Uint8Array(PACKETS[0]!),
    new Uint8Array(PACKETS[2]!),
    new Uint8Array(Array.from({ length: 64 }, (_, i) => (i * 37 + 11) & 0xff)),
  ]

  it('on 300 programs x 5 packets', () => {
    // The programs must reach their ends in varied ways, or the comparison says little.
    const results = new Set<number>()
    let kept = 0
    for (let n = 0; n < 300; n++) {
      const program = randomProgram()
      const progs = ENGINES.map((engine) => Program.fromClassic(program, { engine }))
      for (const pkt of packets) {
        const want = reference(program, pkt)
        results.add(want)
        if (want !== 0) kept++
        for (const [i, p] of progs.entries()) {
          const got = p.run({ data: pkt }).retval
          if (got !== want) {
            throw new Error(
              `${ENGINES[i]}: ${got} != reference ${want} on a ${pkt.length}-byte packet for\n${cbpf.disassemble(program)}`,
            )
          }
        }
      }
    }
    expect(kept).toBeGreaterThan(300)
    expect(kept).toBeLessThan(1200)
    expect(results.size).toBeGreaterThan(50)
  })
})

describe('hostile input', () => {
  it('random instructions and text give a LoadError or a program that runs, nothing else', () => {
    let seed = 0x9e3779b9
    const rand = (n: number): number => {
      seed ^= seed << 13
      seed ^= seed >>> 17
      seed ^= seed << 5
      return (seed >>> 0) % n
    }
    let accepted = 0
    for (let n = 0; n < 2000; n++) {
      const len = 1 + rand(6)
      const program = Array.from({ length: len }, (_, i) =>
        i === len - 1 && rand(2)
          ? ([0x06, 0, 0, rand(100)] as const)
          : ([rand(2) ? rand(0x100) : rand(0x10000), rand(4), rand(4), rand(2) ? rand(20) : rand(2 ** 32)] as const),
      )
      try {
        const prog = Program.fromClassic(program, { engine: rand(2) ? 'jit' : 'interpreter' })
        prog.run({ data: new Uint8Array(PACKETS[0]!) })
        accepted++
      } catch (e) {
        expect(e).toBeInstanceOf(LoadError)
        expect(['EINVAL', 'ENOTSUPP']).toContain((e as LoadError).code)
      }
    }
    expect(accepted).toBeGreaterThan(20)
    for (let n = 0; n < 500; n++) {
      const text = Array.from({ length: rand(80) }, () => '{}, 0x1234567890\n#x-'[rand(20)]).join('')
      try {
        cbpf.parse(text)
      } catch (e) {
        expect(e).toBeInstanceOf(LoadError)
      }
    }
  })

  it('checks Program.fromClassic options', () => {
    expect(() => Program.fromClassic([RET_0], { networkOffset: -1 })).toThrow(/networkOffset must be an integer/)
    expect(() => Program.fromClassic([RET_0], { hatype: 1.5 })).toThrow(/hatype must be an integer/)
    // ld [hatype] with the option: the given device type.
    const hatype = Program.fromClassic([[0x20, 0, 0, AD + 28], RET_A], { hatype: 1 })
    expect(hatype.run({ data: new Uint8Array(PACKETS[0]!) }).retval).toBe(1)
    expect(() => Program.fromClassic([RET_0], null as never)).toThrow(LoadError)
    // The type is always socket_filter, whatever a JavaScript caller passes.
    expect(Program.fromClassic([RET_0], { type: 'xdp' } as never).type).toBe('socket_filter')
  })
})
