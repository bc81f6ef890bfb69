/**
 * A seeded generator of varied link-layer frames for the filter oracles: Ethernet with and without
 * 802.1Q/802.1ad tags (stacked), MPLS label stacks, 802.3/LLC frames, IPv4 (options, fragments,
 * DF/MF flags), IPv6 with extension headers (hop-by-hop, routing, destination options, fragment),
 * ARP/RARP, TCP (every flag combination over the run), UDP, SCTP, ICMP, ICMPv6, IGMP and other
 * protocols, broadcast and multicast addresses, padding, frames cut short and captures cut to a
 * snap length. Checksums are left zero: filters do not read them.
 */
import { Random } from './random'

export interface GeneratedPacket {
  data: Uint8Array
  /** The length on the wire: more than `data.length` where the capture was cut to a snap length. */
  originalLength: number
  /** Cut short: on the wire (a runt) or by the capture's snap length. */
  cut: boolean
}

const be16 = (v: number): number[] => [(v >> 8) & 0xff, v & 0xff]
const be32 = (v: number): number[] => [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]

export const MACS = {
  a: [0x02, 0, 0, 0, 0, 0x01],
  b: [0x02, 0, 0, 0, 0, 0x02],
  c: [0x00, 0x1b, 0x21, 0x3c, 0x4d, 0x5e],
  broadcast: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
  ip4multicast: [0x01, 0x00, 0x5e, 0x00, 0x00, 0x01],
  ip6multicast: [0x33, 0x33, 0x00, 0x00, 0x00, 0x01],
}

export const IP4S = [
  '10.0.0.1',
  '10.0.0.2',
  '10.1.2.3',
  '192.168.1.5',
  '192.168.200.1',
  '172.16.0.9',
  '8.8.8.8',
  '224.0.0.1',
  '239.1.1.1',
  '255.255.255.255',
  '0.0.0.0',
]
export const IP6S = [
  '2001:db8::1',
  '2001:db8::2',
  '2001:db8:8000::5',
  '2001:db9::1',
  '::1',
  'fe80::1',
  'ff02::1',
  '2001:db8::10.0.0.1',
]
export const PORTS = [80, 443, 22, 53, 20, 21, 100, 101, 1234, 8080, 65535, 0, 67, 68, 5353]

function ip4(text: string): number[] {
  return text.split('.').map(Number)
}

function ip6(text: string): number[] {
  let t = text
  let tail: number[] = []
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(t)
  if (v4) {
    tail = ip4(v4[1]!)
    t = `${t.slice(0, v4.index)}0:0`
  }
  const [h, r] = t.includes('::') ? t.split('::') : [t, undefined]
  const hs = h ? h.split(':').filter((x) => x !== '') : []
  const rs = r ? r.split(':').filter((x) => x !== '') : []
  const groups = [...hs, ...new Array<string>(8 - hs.length - rs.length).fill('0'), ...rs]
  const bytes = groups.flatMap((g) => be16(Number.parseInt(g, 16)))
  if (v4) bytes.splice(12, 4, ...tail)
  return bytes
}

export class PacketGenerator {
  private readonly r: Random
  constructor(seed: number) {
    this.r = new Random(seed)
  }

  private pick<T>(xs: readonly T[]): T {
    return xs[this.r.below(xs.length)]!
  }

  private chance(p: number): boolean {
    return this.r.float() < p
  }

  private bytes(n: number): number[] {
    return Array.from({ length: n }, () => this.r.below(256))
  }

  private transport(proto: number): number[] {
    const sport = this.pick(PORTS)
    const dport = this.pick(PORTS)
    const data = this.bytes(
      this.r.below(4) === 0 ? 0 : this.r.below(10) === 0 ? 500 + this.r.below(900) : this.r.below(48),
    )
    switch (proto) {
      case 6: {
        const flags = this.r.below(256)
        const options = this.chance(0.3) ? [2, 4, 5, 0xb4, 1, 1, 4, 2] : []
        const doff = 5 + options.length / 4
        return [
          ...be16(sport),
          ...be16(dport),
          ...be32(this.r.u32()),
          ...be32(this.r.u32()),
          doff << 4,
          flags,
          ...be16(0xffff),
          0,
          0,
          0,
          0,
          ...options,
          ...data,
        ]
      }
      case 17:
        return [...be16(sport), ...be16(dport), ...be16(8 + data.length), 0, 0, ...data]
      case 132:
        return [...be16(sport), ...be16(dport), ...be32(this.r.u32()), 0, 0, 0, 0, ...data]
      case 1:
        return [this.pick([0, 3, 5, 8, 11, 13, 17]), this.r.below(4), 0, 0, ...be16(1), ...be16(7), ...data]
      case 58:
        return [this.pick([1, 128, 129, 133, 135, 136]), 0, 0, 0, ...be32(this.r.u32()), ...data]
      case 2:
        return [this.pick([0x11, 0x16, 0x17]), 100, 0, 0, ...ip4(this.pick(IP4S))]
      default:
        return this.bytes(8 + this.r.below(24))
    }
  }

  private ipv4(): number[] {
    const proto = this.pick([6, 6, 6, 17, 17, 1, 2, 132, 47, 50, 51, 103, 112])
    const options = this.pick([[], [], [], [1, 1, 1, 0], [0x94, 4, 0, 0, 1, 1, 1, 0]])
    const ihl = 5 + options.length / 4
    // Fragment offset 0 (maybe MF or DF), or a later fragment.
    const frag = this.pick([0, 0, 0, 0x4000, 0x2000, 100, 0x2000 | 185])
    const payload = this.transport(proto)
    const total = ihl * 4 + payload.length
    return [
      0x40 | ihl,
      this.pick([0, 0x10, 0xb8]),
      ...be16(total),
      ...be16(this.r.below(65536)),
      ...be16(frag),
      this.pick([1, 64, 128, 255]),
      proto,
      0,
      0,
      ...ip4(this.pick(IP4S)),
      ...ip4(this.pick(IP4S)),
      ...options,
      ...payload,
    ]
  }

  private ipv6(): number[] {
    const final = this.pick([6, 6, 17, 17, 58, 132, 59])
    // A chain of extension headers in front of the final protocol: hop-by-hop 0, routing 43, fragment 44, dstopts 60.
    const chain = this.pick([[], [], [], [44], [0], [60], [0, 44], [43], [44, 60], [0, 43, 44]])
    let next = final
    let body = final === 59 ? [] : this.transport(final)
    for (const h of [...chain].reverse()) {
      const ext =
        h === 44
          ? [next, 0, ...be16(this.pick([0, 1, 8 << 3])), ...be32(this.r.u32())]
          : [next, 0, ...(h === 43 ? [0, 0] : [1, 4]), 0, 0, 0, 0]
      body = [...ext, ...body]
      next = h
    }
    return [0x60, 0, 0, 0, ...be16(body.length), next, 64, ...ip6(this.pick(IP6S)), ...ip6(this.pick(IP6S)), ...body]
  }

  private arp(): number[] {
    return [
      ...be16(1),
      ...be16(0x0800),
      6,
      4,
      ...be16(this.pick([1, 2, 3, 4])),
      ...MACS.b,
      ...ip4(this.pick(IP4S)),
      ...MACS.a,
      ...ip4(this.pick(IP4S)),
    ]
  }

  /** The network layer and its Ethernet type. */
  private network(): [number, number[]] {
    const n = this.r.below(100)
    if (n < 55) return [0x0800, this.ipv4()]
    if (n < 78) return [0x86dd, this.ipv6()]
    if (n < 84) return [0x0806, this.arp()]
    if (n < 86) return [0x8035, this.arp()]
    if (n < 91) {
      // MPLS: one or two labels, bottom of stack set on the last, then IPv4 or IPv6.
      const labels = this.chance(0.5) ? [5] : [this.pick([3, 16]), 5]
      const inner = this.chance(0.6) ? this.ipv4() : this.ipv6()
      const stack = labels.flatMap((l, i) => be32(((l << 12) | (i === labels.length - 1 ? 0x100 : 0) | 64) >>> 0))
      return [0x8847, [...stack, ...inner]]
    }
    if (n < 95) {
      // 802.3 with an LLC header: the type field is a length.
      const sap = this.pick([0x06, 0x42, 0xaa, 0xfe, 0xf0, 100])
      const body = [sap, sap, 3, ...this.bytes(30)]
      return [body.length, body]
    }
    return [this.pick([0x88cc, 0x88e5, 0x9000, 0x0842]), this.bytes(20 + this.r.below(30))]
  }

  /** One Ethernet frame, maybe tagged, cut, padded or captured short. */
  packet(): GeneratedPacket {
    const dst = this.pick([MACS.a, MACS.a, MACS.b, MACS.c, MACS.broadcast, MACS.ip4multicast, MACS.ip6multicast])
    const src = this.pick([MACS.a, MACS.b, MACS.b, MACS.c])
    let [type, body] = this.network()
    const tags = this.pick([0, 0, 0, 0, 1, 1, 2])
    for (let i = 0; i < tags; i++) {
      const tci = (this.pick([0, 0, 5, 3]) << 13) | this.pick([5, 7, 100, 4095, 1])
      body = [...be16(tci), ...be16(type), ...body]
      type = i === 0 ? this.pick([0x8100, 0x8100, 0x88a8, 0x9100]) : this.pick([0x88a8, 0x8100])
    }
    let frame = [...dst, ...src, ...be16(type), ...body]
    if (frame.length < 60 && this.chance(0.5)) frame = [...frame, ...new Array<number>(60 - frame.length).fill(0)]
    const wire = frame.length
    const cut = this.r.below(100)
    if (cut < 7) {
      // A frame that is short on the wire (a runt, or a header cut by a broken sender).
      const n = 1 + this.r.below(frame.length - 1)
      return { data: Uint8Array.from(frame.slice(0, n)), originalLength: n, cut: true }
    }
    if (cut < 14) {
      // Captured with a snap length: the bytes stop, the wire length stays.
      const n = this.pick([14, 34, 40, 54, 60, 20 + this.r.below(60)])
      if (n < wire) return { data: Uint8Array.from(frame.slice(0, n)), originalLength: wire, cut: true }
    }
    return { data: Uint8Array.from(frame), originalLength: wire, cut: false }
  }

  packets(n: number): GeneratedPacket[] {
    return Array.from({ length: n }, () => this.packet())
  }
}
