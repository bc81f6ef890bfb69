/**
 * Classic BPF: reading, `tcpdump -d` listings, the kernel's checks and the conversion to eBPF socket
 * filters. Oracles: tcpdump itself (its `-d` text for our disassembler; `tcpdump -r file.pcap EXPR`
 * for which packets a converted `tcpdump -dd` program keeps), the kernel's documented rules
 * (`bpf_check_classic`, Documentation/networking/filter.rst) and hand computation. Tests that need
 * tcpdump skip, saying why, where it is not installed.
 */
import { execFileSync } from 'node:child_process'
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
