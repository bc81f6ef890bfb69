/**
 * The network a tc or XDP run sees (`RunOptions.network`): its interfaces, for `bpf_check_mtu`,
 * `bpf_clone_redirect` and `bpf_fib_lookup`, and its routing table, for `bpf_fib_lookup`. The
 * engine has no devices and reads no routing table of the host: what these helpers answer comes
 * from here (see `context/net.rs` for the rules, checked against the kernel's test runs).
 */
import { isIP } from 'node:net'
import { checkBoolean, checkDenseArray, checkObject, checkU32, checkUnsigned64, describeValue } from './arguments.js'
import { LoadError } from './errors.js'
import type { NativeNetwork, NativeRoute, NativeTunnel } from './native.js'

/** An interface: what `bpf_check_mtu` and `bpf_fib_lookup` know of a device. */
export interface NetworkInterface {
  /** Its index (1 and up). */
  ifindex: number
  /** Its MTU, without the 14-byte Ethernet header (1500 for most Ethernet devices). */
  mtu: number
  /** Its MAC address (`'02:fc:00:00:00:01'` or 6 bytes): a forwarded packet's `smac`. Default 00:00:00:00:00:00. */
  mac?: string | Uint8Array
  /**
   * IP forwarding on for it (`net.ipv4.conf.<dev>.forwarding`). `bpf_fib_lookup` from an
   * interface without it answers `BPF_FIB_LKUP_RET_FWD_DISABLED` (5), as the kernel does. Default false.
   */
  forwarding?: boolean
}

/** A route of the table `bpf_fib_lookup` searches (the longest prefix that holds the destination wins). */
export interface NetworkRoute {
  /** The destination prefix: `'192.0.2.0/24'`, `'fd00::/64'`, `'0.0.0.0/0'` (a bare address is a host route). */
  dst: string
  /** What it does with the packets it matches (`RTN_*`): `BLACKHOLE` 1, `UNREACHABLE` 2, `PROHIBIT` 3. Default 'unicast'. */
  kind?: 'unicast' | 'blackhole' | 'unreachable' | 'prohibit'
  /** The interface it leaves by (unicast routes). */
  ifindex?: number
  /** The next hop, of the destination's family; without one the destination itself is the next hop. */
  gateway?: string
  /** `rt_metric` of a successful lookup. Default 0. */
  metric?: number
  /** The route's MTU; 0 (the default): its interface's. */
  mtu?: number
  /** The next hop's MAC (its neighbour entry); without one a lookup is `NO_NEIGH` (7) unless `BPF_FIB_LOOKUP_SKIP_NEIGH`. */
  neighbor?: string | Uint8Array
}

/**
 * The interfaces and routes of a run. Without `network` a run has the kernel test run's device,
 * the loopback (ifindex 1, MTU 65536), and no routing table: every well-formed `bpf_fib_lookup`
 * answers `BPF_FIB_LKUP_RET_NOT_FWDED` (4). With it, the interfaces are exactly these (ifindex 0 of
 * `bpf_check_mtu` is interface 1 if listed, else the first); without `routes` there is still no
 * table (NOT_FWDED), and `routes: []` is an empty one (every lookup from a forwarding interface
 * is NOT_FWDED too, after the argument and forwarding checks).
 */
export interface Network {
  interfaces: readonly NetworkInterface[]
  routes?: readonly NetworkRoute[]
}

/**
 * A packet's tunnel metadata (tc), in `struct bpf_tunnel_key`'s terms: as input
 * (`RunOptions.tunnel`), what a collect-metadata tunnel device recorded when the packet arrived,
 * which `bpf_skb_get_tunnel_key` reads; as output (`RunResult.tunnel`), what the program set with
 * `bpf_skb_set_tunnel_key` for the packet to be sent with. See `context/tunnel.rs` for the rules.
 */
export interface TunnelMetadata {
  /** The tunnel id (VNI, GRE key), 0 to 2^64-1; the helper's `tunnel_id` is its low 32 bits. Default 0. */
  id?: bigint | number
  /** The far end: the outer source of a received packet, the outer destination of one to send ('192.0.2.1', 'fd00::1'). */
  remote: string
  /** This end, of the same family. Default the family's 0 address. */
  local?: string
  /** Outer TOS / traffic class and TTL / hop limit, 0 to 255. Default 0. */
  tos?: number
  ttl?: number
  /** The IPv6 flow label (20 bits); must be 0 for IPv4. Default 0. */
  label?: number
  /**
   * `TUNNEL_*` flags, 16 bits as include/uapi/linux/if_tunnel.h numbers them (`TUNNEL_CSUM` 0x1,
   * `TUNNEL_KEY` 0x4, `TUNNEL_SEQ` 0x8, `TUNNEL_DONT_FRAGMENT` 0x100, `TUNNEL_NOCACHE` 0x2000):
   * what `BPF_F_TUNINFO_FLAGS` reads (big-endian, in `tunnel_flags`). Default 0.
   */
  flags?: number
}

/** Checks `RunOptions.tunnel` and turns it into the engine's. */
export function tunnelOf(tunnel: unknown): NativeTunnel | undefined {
  if (tunnel === undefined) return undefined
  const t = checkObject<TunnelMetadata>(LoadError, 'tunnel', tunnel)
  const remote = addressOf('tunnel.remote', t.remote)
  const ipv6 = remote.byteLength === 16
  const local = t.local === undefined ? new Uint8Array(remote.byteLength) : addressOf('tunnel.local', t.local)
  if (local.byteLength !== remote.byteLength) {
    throw new LoadError('EINVAL', `tunnel.local (${t.local}) is not of tunnel.remote's family (${t.remote})`)
  }
  const small = (what: keyof TunnelMetadata, max: number): number => {
    const v = t[what] === undefined ? 0 : checkU32(LoadError, `tunnel.${what}`, t[what])
    if (v > max) throw new LoadError('EINVAL', `tunnel.${what} must be at most ${max}, got ${v}`)
    return v
  }
  const label = small('label', 0xfffff)
  if (!ipv6 && label !== 0) throw new LoadError('EINVAL', 'tunnel.label is an IPv6 flow label: IPv4 metadata has none')
  return {
    ipv6,
    id: t.id === undefined ? 0n : checkUnsigned64(LoadError, 'tunnel.id', t.id),
    remote: Buffer.from(remote),
    local: Buffer.from(local),
    tos: small('tos', 255),
    ttl: small('ttl', 255),
    label,
    flags: small('flags', 0xffff),
  }
}

/** An address's text: dotted IPv4, or IPv6 with its longest run of zero groups as `::` (RFC 5952). */
export function ipText(b: Uint8Array): string {
  if (b.byteLength === 4) return Array.from(b).join('.')
  const groups = Array.from({ length: 8 }, (_, i) => ((b[2 * i] ?? 0) << 8) | (b[2 * i + 1] ?? 0))
  let best = { at: -1, len: 1 }
  for (let i = 0; i < 8; ) {
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > best.len) best = { at: i, len: j - i }
    i = j === i ? i + 1 : j
  }
  const hex = (g: number[]) => g.map((x) => x.toString(16)).join(':')
  if (best.at < 0) return hex(groups)
  return `${hex(groups.slice(0, best.at))}::${hex(groups.slice(best.at + best.len))}`
}

/** The metadata a run set, as `RunResult.tunnel` reports it (every field present). */
export function tunnelResult(t: NativeTunnel): Required<TunnelMetadata> & { id: bigint } {
  return {
    id: t.id,
    remote: ipText(t.remote),
    local: ipText(t.local),
    tos: t.tos,
    ttl: t.ttl,
    label: t.label,
    flags: t.flags,
  }
}

/** A packet `bpf_clone_redirect` sent: a copy of the packet as it was at the call. */
export interface ClonedPacket {
  ifindex: number
  /** `BPF_F_INGRESS` (1): to the interface's ingress. */
  flags: number
  packet: Uint8Array
}

const KINDS = ['unicast', 'blackhole', 'unreachable', 'prohibit'] as const

/** An IPv4 or IPv6 address in text as bytes (4 or 16), or undefined when it is neither. */
export function ipBytes(text: string): Uint8Array | undefined {
  const family = isIP(text)
  if (family === 4) return Uint8Array.from(text.split('.').map(Number))
  if (family !== 6) return undefined
  let s = text.replace(/%.*$/, '')
  // A trailing dotted quad (::ffff:192.0.2.1) is two groups.
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s)
  if (quad) {
    const [a, b, c, d] = quad.slice(1).map(Number) as [number, number, number, number]
    s = `${s.slice(0, quad.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined]
  const groups = (t: string | undefined) => (t ? t.split(':').map((g) => Number.parseInt(g, 16)) : [])
  const h = groups(head)
  const t = groups(tail)
  const all = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t]
  const out = new Uint8Array(16)
  all.forEach((g, i) => {
    out[2 * i] = g >> 8
    out[2 * i + 1] = g & 0xff
  })
  return out
}

function macOf(what: string, v: unknown): Buffer {
  if (v instanceof Uint8Array && v.byteLength === 6) return Buffer.from(v)
  if (typeof v === 'string' && /^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$/i.test(v)) {
    return Buffer.from(v.split(/[:-]/).map((p) => Number.parseInt(p, 16)))
  }
  throw new LoadError(
    'EINVAL',
    `${what} must be a MAC address ('02:00:00:00:00:01' or 6 bytes), got ${describeValue(v)}`,
  )
}

function addressOf(what: string, v: unknown): Uint8Array {
  const b = typeof v === 'string' ? ipBytes(v) : undefined
  if (!b) throw new LoadError('EINVAL', `${what} must be an IPv4 or IPv6 address, got ${describeValue(v)}`)
  return b
}

function routeOf(r: unknown, i: number, interfaces: ReadonlySet<number>): NativeRoute {
  const at = `network.routes[${i}]`
  const route = checkObject<NetworkRoute>(LoadError, at, r)
  if (typeof route.dst !== 'string') {
    throw new LoadError('EINVAL', `${at}.dst must be a prefix ('192.0.2.0/24'), got ${describeValue(route.dst)}`)
  }
  const [addr, len, extra] = route.dst.split('/')
  if (extra !== undefined) throw new LoadError('EINVAL', `${at}.dst '${route.dst}' is not a prefix`)
  const dst = addressOf(`${at}.dst`, addr)
  const bits = dst.byteLength * 8
  const prefixLen = len === undefined ? bits : /^\d+$/.test(len) ? Number(len) : Number.NaN
  if (!(prefixLen >= 0 && prefixLen <= bits)) {
    throw new LoadError('EINVAL', `${at}.dst '${route.dst}': the prefix length must be from 0 to ${bits}`)
  }
  const kind = route.kind ?? 'unicast'
  if (!KINDS.includes(kind)) {
    throw new LoadError('EINVAL', `${at}.kind must be one of ${KINDS.join(', ')}, got ${describeValue(kind)}`)
  }
  const ifindex = route.ifindex === undefined ? 0 : checkU32(LoadError, `${at}.ifindex`, route.ifindex)
  if (kind === 'unicast' && !interfaces.has(ifindex)) {
    throw new LoadError(
      'EINVAL',
      `${at}: a unicast route needs the ifindex of one of network.interfaces, got ${ifindex}`,
    )
  }
  const gateway = route.gateway === undefined ? undefined : addressOf(`${at}.gateway`, route.gateway)
  if (gateway && gateway.byteLength !== dst.byteLength) {
    throw new LoadError('EINVAL', `${at}.gateway is not of the family of its destination`)
  }
  return {
    ipv6: dst.byteLength === 16,
    dst: Buffer.from(dst),
    prefixLen,
    kind,
    ifindex,
    gateway: gateway && Buffer.from(gateway),
    metric: route.metric === undefined ? 0 : checkU32(LoadError, `${at}.metric`, route.metric),
    mtu: route.mtu === undefined ? 0 : checkU32(LoadError, `${at}.mtu`, route.mtu),
    neighbor: route.neighbor === undefined ? undefined : macOf(`${at}.neighbor`, route.neighbor),
  }
}

/** Checks `RunOptions.network` and turns it into the engine's. */
export function networkOf(network: unknown): NativeNetwork | undefined {
  if (network === undefined) return undefined
  const n = checkObject<Network>(LoadError, 'network', network)
  const seen = new Set<number>()
  const interfaces = checkDenseArray<NetworkInterface>(LoadError, 'network.interfaces', n.interfaces).map((v, i) => {
    const at = `network.interfaces[${i}]`
    const itf = checkObject<NetworkInterface>(LoadError, at, v)
    const ifindex = checkU32(LoadError, `${at}.ifindex`, itf.ifindex)
    if (ifindex === 0) throw new LoadError('EINVAL', `${at}.ifindex must not be 0 (0 names the packet's own device)`)
    if (seen.has(ifindex)) throw new LoadError('EINVAL', `${at}: ifindex ${ifindex} is listed twice`)
    seen.add(ifindex)
    return {
      ifindex,
      mtu: checkU32(LoadError, `${at}.mtu`, itf.mtu),
      mac: itf.mac === undefined ? Buffer.alloc(6) : macOf(`${at}.mac`, itf.mac),
      forwarding: itf.forwarding === undefined ? false : checkBoolean(LoadError, `${at}.forwarding`, itf.forwarding),
    }
  })
  const routes =
    n.routes === undefined
      ? undefined
      : checkDenseArray<unknown>(LoadError, 'network.routes', n.routes).map((r, i) => routeOf(r, i, seen))
  return { interfaces, routes }
}
