/**
 * Code generation: the syntax tree to a predicate over the packet (blocks of classic BPF), with
 * the meaning libpcap gives each primitive (checked against `tcpdump -d` and `tcpdump -r`):
 * - protocol tests check the link-layer type first (`ip` is Ethernet type 0x800; on RAW the IP
 *   version nibble); `tcp`, `udp`, `sctp`, `icmp6` and `ip6 proto` also accept the protocol behind
 *   one IPv6 fragment header, the extension header walking tcpdump does;
 * - IPv4 ports and transport-layer data are read only in the first fragment, past the header's
 *   IHL (`ldxb 4*([14]&0xf)`); IPv6 ports at the fixed offset 40;
 * - `vlan` and `mpls` move the offsets of everything after them in the expression (not only of
 *   what they are `and`ed with), which is how stacked tags are matched;
 * - a packet-data access `proto[i:n]` checks `proto` first; the load itself, like every load,
 *   rejects the packet when it falls past its end.
 */
import type { Arith, Expr, Id, ProtoName, Qualifiers, Relop } from './ast.js'
import { ALU_OPS, and, not, OP, or, type Pred, type Stmt, test } from './blocks.js'
import { FilterError } from './error.js'
import type { LinkLayer } from './link.js'

const ETHERTYPE = { IP: 0x0800, IP6: 0x86dd, ARP: 0x0806, RARP: 0x8035, MPLS: 0x8847 } as const
const VLAN_TPIDS = [0x8100, 0x88a8, 0x9100]
const IPPROTO = {
  ICMP: 1,
  IGMP: 2,
  TCP: 6,
  UDP: 17,
  FRAGMENT: 44,
  ESP: 50,
  AH: 51,
  ICMP6: 58,
  PIM: 103,
  VRRP: 112,
  SCTP: 132,
}
/** 802.2 SAPs whose test compares DSAP and SSAP together (libpcap's). */
const DOUBLE_SAPS = new Set([0x06, 0xf0, 0xfe])
const ETHERMTU = 1500

/** Names `proto \name` and `ether proto \name` accept (the values of /etc/protocols and libpcap's own table). */
const IP_PROTOCOL_NAMES: Record<string, number> = {
  icmp: 1,
  igmp: 2,
  tcp: 6,
  udp: 17,
  gre: 47,
  esp: 50,
  ah: 51,
  icmp6: 58,
  pim: 103,
  vrrp: 112,
  sctp: 132,
}
const ETHER_PROTOCOL_NAMES: Record<string, number> = {
  ip: ETHERTYPE.IP,
  ip6: ETHERTYPE.IP6,
  arp: ETHERTYPE.ARP,
  rarp: ETHERTYPE.RARP,
  atalk: 0x809b,
  aarp: 0x80f3,
  decnet: 0x6003,
  lat: 0x6004,
  sca: 0x6007,
  moprc: 0x6002,
  mopdl: 0x6001,
}

/** Transport protocols whose header follows the IPv4 header (`tcp[0]`, `port`), by protocol number. */
const TRANSPORT: Partial<Record<ProtoName, number>> = {
  tcp: IPPROTO.TCP,
  udp: IPPROTO.UDP,
  sctp: IPPROTO.SCTP,
  icmp: IPPROTO.ICMP,
  igmp: IPPROTO.IGMP,
  pim: IPPROTO.PIM,
  vrrp: IPPROTO.VRRP,
}

const SIZE_LOAD: Record<1 | 2 | 4, number> = { 1: OP.LD_B, 2: OP.LD_H, 4: OP.LD_W }
const SIZE_LOAD_IND: Record<1 | 2 | 4, number> = { 1: OP.LD_B_IND, 2: OP.LD_H_IND, 4: OP.LD_W_IND }
const SCRATCH_WORDS = 16

/** An arithmetic value: statements leaving it in A, and the checks that must pass before they run. */
interface Value {
  stmts: Stmt[]
  guards: Pred[]
}

export class CodeGen {
  private protocolOffset: number | undefined
  private networkOffset: number
  private mplsDepth = 0
  private scratch = 0

  constructor(private readonly link: LinkLayer) {
    this.protocolOffset = link.protocolOffset
    this.networkOffset = link.networkOffset
  }

  expr(e: Expr): Pred {
    switch (e.kind) {
      case 'and':
        // Left before right: vlan/mpls offsets follow the order of the text.
        return and(this.expr(e.left), this.expr(e.right))
      case 'or': {
        const l = this.expr(e.left)
        return or(l, this.expr(e.right))
      }
      case 'not':
        return not(this.expr(e.operand))
      case 'protocol':
        return this.protocol(e.proto, e.column)
      case 'primitive':
        return this.primitive(e.qualifiers, e.id)
      case 'relation':
        return this.relation(e.op, e.left, e.right, e.column)
      case 'vlan':
        return this.vlan(e.id, e.column)
      case 'mpls':
        return this.mpls(e.id, e.column)
      case 'broadcast':
      case 'multicast':
        return this.cast(e.kind, e.proto, e.column)
    }
  }

  // ------------------------------------------------------------ tests of headers

  private cmp(offset: number, size: 1 | 2 | 4, value: number, mask?: number, jcode: number = OP.JEQ): Pred {
    const stmts: Stmt[] = [{ code: SIZE_LOAD[size], k: offset }]
    if (mask !== undefined) stmts.push({ code: OP.ALU | ALU_OPS['&']!, k: mask >>> 0 })
    return test(stmts, jcode, value)
  }

  /** The packet's link-layer protocol type is `type` (an Ethernet type). */
  private linkProtocol(type: number, column: number): Pred {
    const nl = this.networkOffset
    if (this.mplsDepth > 0) {
      // Behind MPLS only IP can be told, by the bottom-of-stack bit and the version nibble.
      if (type !== ETHERTYPE.IP && type !== ETHERTYPE.IP6) {
        throw new FilterError('only ip and ip6 can be tested behind mpls', column)
      }
      return and(this.cmp(nl - 2, 1, 1, 1), this.cmp(nl, 1, type === ETHERTYPE.IP ? 0x40 : 0x60, 0xf0))
    }
    const family = this.link.addressFamily
    if (family !== undefined) {
      // NULL and LOOP: the address family word, AF_INET (2) or one of the BSDs' AF_INET6 values
      // (24, 28, 30), as libpcap tests them; no other protocol can be told.
      const af = (v: number): Pred =>
        this.cmp(0, 4, family === 'big' ? v : (((v & 0xff) << 24) | ((v & 0xff00) << 8)) >>> 0)
      if (type === ETHERTYPE.IP) return af(2)
      if (type === ETHERTYPE.IP6) return or(or(af(30), af(24)), af(28))
      return false
    }
    const off = this.protocolOffset
    if (off === undefined) {
      // RAW: the IP version says it; nothing else can be there.
      if (type === ETHERTYPE.IP) return this.cmp(nl, 1, 0x40, 0xf0)
      if (type === ETHERTYPE.IP6) return this.cmp(nl, 1, 0x60, 0xf0)
      return false
    }
    if (type <= ETHERMTU) {
      if (!this.link.ethernet)
        throw new FilterError(`protocol ${type} (an 802.2 SAP) needs an Ethernet link layer`, column)
      // An 802.3 length, not an Ethernet type: then the LLC header's SAP.
      const sap = DOUBLE_SAPS.has(type) ? this.cmp(nl, 2, (type << 8) | type) : this.cmp(nl, 1, type)
      return and(not(this.cmp(off, 2, ETHERMTU, undefined, OP.JGT)), sap)
    }
    return this.cmp(off, 2, type)
  }

  private ipProtocol(p: number, column: number): Pred {
    return and(this.linkProtocol(ETHERTYPE.IP, column), this.cmp(this.networkOffset + 9, 1, p))
  }

  /** IPv6 next header `p`, directly or behind one fragment header. */
  private ip6Protocol(p: number, column: number): Pred {
    const nh = this.networkOffset + 6
    const direct = this.cmp(nh, 1, p)
    const fragment = and(this.cmp(nh, 1, IPPROTO.FRAGMENT), this.cmp(this.networkOffset + 40, 1, p))
    return and(this.linkProtocol(ETHERTYPE.IP6, column), or(direct, fragment))
  }

  private protocol(proto: ProtoName, column: number): Pred {
    switch (proto) {
      case 'ip':
        return this.linkProtocol(ETHERTYPE.IP, column)
      case 'ip6':
        return this.linkProtocol(ETHERTYPE.IP6, column)
      case 'arp':
        return this.linkProtocol(ETHERTYPE.ARP, column)
      case 'rarp':
        return this.linkProtocol(ETHERTYPE.RARP, column)
      case 'tcp':
      case 'udp':
      case 'sctp':
      case 'pim':
      case 'ah':
      case 'esp': {
        const p = proto === 'ah' ? IPPROTO.AH : proto === 'esp' ? IPPROTO.ESP : TRANSPORT[proto]!
        const v4 = this.ipProtocol(p, column)
        return or(v4, this.ip6Protocol(p, column))
      }
      case 'icmp':
      case 'igmp':
      case 'vrrp':
        return this.ipProtocol(TRANSPORT[proto]!, column)
      case 'icmp6':
        return this.ip6Protocol(IPPROTO.ICMP6, column)
      case 'ether':
      case 'link':
        throw new FilterError(`'${proto}' needs a qualifier (host, src, dst, proto, broadcast, multicast)`, column)
    }
  }

  /** The first IPv4 fragment (fragment offset 0): only it holds the transport header. */
  private firstFragment(): Pred {
    return not(this.cmp(this.networkOffset + 6, 2, 0x1fff, undefined, OP.JSET))
  }

  // ------------------------------------------------------------ host, net, port, proto

  private primitive(q: Qualifiers, id: Id): Pred {
    const kind = q.kind ?? 'host'
    switch (kind) {
      case 'host':
      case 'net':
        return this.address(q, id, kind)
      case 'port':
      case 'portrange':
        return this.port(q, id, kind)
      case 'proto':
        return this.protoNumber(q, id)
      case 'gateway':
        throw new FilterError("'gateway' needs host name resolution, which compileFilter does not do", q.column)
      case 'protochain':
        throw new FilterError("'protochain' (a loop over IPv6 extension headers) is not supported", q.column)
    }
  }

  private address(q: Qualifiers, id: Id, kind: 'host' | 'net'): Pred {
    const dir = q.dir ?? 'src or dst'
    if (id.kind === 'name') {
      throw new FilterError(`'${id.text}' is a name; compileFilter does not resolve names: give an address`, id.column)
    }
    if (id.kind === 'eid' || q.proto === 'ether' || q.proto === 'link') {
      if (id.kind !== 'eid') throw new FilterError(`'${id.text}' is not an Ethernet address`, id.column)
      if (q.proto !== 'ether' && q.proto !== 'link') {
        throw new FilterError('ethernet address used in non-ether expression', id.column)
      }
      if (kind === 'net') throw new FilterError("'ether net' is not a thing: use 'ether host'", q.column)
      return this.etherHost(macBytes(id), dir, id.column)
    }
    if (id.kind === 'hid6') {
      if (q.proto !== undefined && q.proto !== 'ip6') {
        throw new FilterError(`'${q.proto}' qualifier applied to an IPv6 address`, q.column)
      }
      const { words, mask } = ip6Network(id, kind)
      return and(
        this.linkProtocol(ETHERTYPE.IP6, q.column),
        this.direction(dir, (off) => this.ip6Words(off, words, mask), 8, 24),
      )
    }
    const { addr, mask } = ip4Network(id, kind)
    const at = (type: number, src: number, dst: number): Pred =>
      and(
        this.linkProtocol(type, q.column),
        this.direction(dir, (off) => this.cmp(off, 4, addr, mask === 0xffffffff ? undefined : mask), src, dst),
      )
    switch (q.proto) {
      case undefined: {
        const ip = at(ETHERTYPE.IP, 12, 16)
        // Behind MPLS only IPv4 can carry the address (libpcap leaves ARP and RARP out there).
        if (this.mplsDepth > 0) return ip
        const arp = at(ETHERTYPE.ARP, 14, 24)
        return or(or(ip, arp), at(ETHERTYPE.RARP, 14, 24))
      }
      case 'ip':
        return at(ETHERTYPE.IP, 12, 16)
      case 'arp':
        return at(ETHERTYPE.ARP, 14, 24)
      case 'rarp':
        return at(ETHERTYPE.RARP, 14, 24)
      default:
        throw new FilterError(`'${q.proto}' modifier applied to ${kind}`, q.column)
    }
  }

  /** `src`, `dst` or both of an address test whose source and destination fields are at `src`/`dst` past the network header. */
  private direction(dir: string, one: (offset: number) => Pred, src: number, dst: number): Pred {
    const nl = this.networkOffset
    if (dir === 'src') return one(nl + src)
    if (dir === 'dst') return one(nl + dst)
    const s = one(nl + src)
    return dir === 'src and dst' ? and(s, one(nl + dst)) : or(s, one(nl + dst))
  }

  /**
   * The 128-bit field at `off` equals `words` under `mask`. Words whose mask is 0 are still loaded
   * (libpcap's generated code loads them, so a packet cut inside the field is rejected), with no test.
   */
  private ip6Words(off: number, words: number[], mask: number[]): Pred {
    let p: Pred = true
    let loads: Stmt[] = []
    words.forEach((w, i) => {
      const load = { code: OP.LD_W, k: off + 4 * i }
      if (mask[i] === 0) {
        loads.push(load)
        return
      }
      const stmts = [...loads, load]
      if (mask[i] !== 0xffffffff) stmts.push({ code: OP.ALU | ALU_OPS['&']!, k: mask[i]! })
      p = and(p, test(stmts, OP.JEQ, w))
      loads = []
    })
    // Loads left over: a test that always holds, after them.
    if (loads.length > 0) p = and(p, test([...loads, { code: OP.LD_IMM, k: 0 }], OP.JEQ, 0))
    return p
  }

  private etherHost(mac: number[], dir: string, column: number): Pred {
    if (!this.link.ethernet) {
      throw new FilterError(`Ethernet addresses need an Ethernet link layer, not ${this.link.name}`, column)
    }
    const hi = (mac[0]! << 8) | mac[1]!
    const lo = ((mac[2]! << 24) | (mac[3]! << 16) | (mac[4]! << 8) | mac[5]!) >>> 0
    const at = (off: number): Pred => and(this.cmp(off + 2, 4, lo), this.cmp(off, 2, hi))
    if (dir === 'src') return at(6)
    if (dir === 'dst') return at(0)
    const s = at(6)
    return dir === 'src and dst' ? and(s, at(0)) : or(s, at(0))
  }

  private port(q: Qualifiers, id: Id, kind: 'port' | 'portrange'): Pred {
    const [lo, hi] = portRange(id, kind)
    const protos =
      q.proto === undefined
        ? [IPPROTO.SCTP, IPPROTO.TCP, IPPROTO.UDP]
        : q.proto === 'tcp' || q.proto === 'udp' || q.proto === 'sctp'
          ? [TRANSPORT[q.proto]!]
          : undefined
    if (protos === undefined) throw new FilterError(`illegal qualifier of '${kind}': '${q.proto}'`, q.column)
    const dir = q.dir ?? 'src or dst'
    const one = (load: () => Stmt[]): Pred => {
      if (lo === hi) return test(load(), OP.JEQ, lo)
      return and(test(load(), OP.JGE, lo), not(test(load(), OP.JGT, hi)))
    }
    const ports = (at: (field: number) => Stmt[]): Pred => {
      if (dir === 'src') return one(() => at(0))
      if (dir === 'dst') return one(() => at(2))
      const s = one(() => at(0))
      return dir === 'src and dst'
        ? and(
            s,
            one(() => at(2)),
          )
        : or(
            s,
            one(() => at(2)),
          )
    }
    const anyOf = (offset: number): Pred => protos.reduce<Pred>((p, n) => or(p, this.cmp(offset, 1, n)), false)
    const nl = this.networkOffset
    const v6 = and(
      this.linkProtocol(ETHERTYPE.IP6, q.column),
      and(
        anyOf(nl + 6),
        ports((field) => [{ code: OP.LD_H, k: nl + 40 + field }]),
      ),
    )
    const v4 = and(
      this.linkProtocol(ETHERTYPE.IP, q.column),
      and(
        anyOf(nl + 9),
        and(
          this.firstFragment(),
          ports((field) => [
            { code: OP.LDX_MSH, k: nl },
            { code: OP.LD_H_IND, k: nl + field },
          ]),
        ),
      ),
    )
    return or(v6, v4)
  }

  private protoNumber(q: Qualifiers, id: Id): Pred {
    const names = q.proto === 'ether' || q.proto === 'link' ? ETHER_PROTOCOL_NAMES : IP_PROTOCOL_NAMES
    let n: number
    if (id.kind === 'num') n = id.value
    else if (id.kind === 'name' && names[id.text] !== undefined) n = names[id.text]!
    else throw new FilterError(`unknown protocol '${id.text}' (known: ${Object.keys(names).join(', ')})`, id.column)
    switch (q.proto) {
      case 'ether':
      case 'link':
        if (n > 0xffff) throw new FilterError(`Ethernet type ${n} is past 0xffff`, id.column)
        return this.linkProtocol(n, id.column)
      case 'ip':
        return this.ipProtocol(checkByte(n, id), q.column)
      case 'ip6':
        return this.ip6Protocol(checkByte(n, id), q.column)
      case undefined: {
        const v4 = this.ipProtocol(checkByte(n, id), q.column)
        return or(v4, this.ip6Protocol(n, q.column))
      }
      default:
        throw new FilterError(`'${q.proto} proto' is not a thing: proto applies to ether, ip and ip6`, q.column)
    }
  }

  // ------------------------------------------------------------ vlan, mpls, broadcast

  private vlan(id: number | undefined, column: number): Pred {
    if (!this.link.ethernet) throw new FilterError(`no VLAN support for ${this.link.name}`, column)
    if (this.mplsDepth > 0) throw new FilterError('no VLAN match after MPLS', column)
    if (id !== undefined && id > 4095) throw new FilterError(`VLAN id ${id} is past 4095`, column)
    const off = this.protocolOffset!
    let p: Pred = VLAN_TPIDS.reduce<Pred>((acc, tpid) => or(acc, this.cmp(off, 2, tpid)), false)
    if (id !== undefined) p = and(p, this.cmp(this.networkOffset, 2, id, 0x0fff))
    // Everything after this in the expression looks behind the tag.
    this.protocolOffset = off + 4
    this.networkOffset += 4
    return p
  }

  private mpls(label: number | undefined, column: number): Pred {
    if (!this.link.ethernet) throw new FilterError(`no MPLS support for ${this.link.name}`, column)
    if (label !== undefined && label > 0xfffff) throw new FilterError(`MPLS label ${label} is past 2^20 - 1`, column)
    const nl = this.networkOffset
    // The first label follows the Ethernet type; a further one needs the previous label's bottom-of-stack bit clear.
    let p: Pred =
      this.mplsDepth === 0
        ? this.cmp(this.protocolOffset!, 2, ETHERTYPE.MPLS)
        : not(this.cmp(nl - 2, 1, 1, undefined, OP.JSET))
    if (label !== undefined) p = and(p, this.cmp(nl, 4, label << 12, 0xfffff000))
    this.networkOffset += 4
    this.mplsDepth++
    return p
  }

  private cast(kind: 'broadcast' | 'multicast', proto: ProtoName | undefined, column: number): Pred {
    const nl = this.networkOffset
    if (proto === undefined || proto === 'ether' || proto === 'link') {
      if (!this.link.ethernet) {
        throw new FilterError(`'${kind}' of Ethernet addresses needs an Ethernet link layer`, column)
      }
      if (kind === 'multicast') return test([{ code: OP.LD_B, k: 0 }], OP.JSET, 1)
      return and(this.cmp(2, 4, 0xffffffff), this.cmp(0, 2, 0xffff))
    }
    if (proto === 'ip') {
      const ip = this.linkProtocol(ETHERTYPE.IP, column)
      if (kind === 'multicast') return and(ip, this.cmp(nl + 16, 1, 224, undefined, OP.JGE))
      // With no netmask known, the broadcast addresses are all-zeros and all-ones (as libpcap's).
      return and(ip, or(this.cmp(nl + 16, 4, 0), this.cmp(nl + 16, 4, 0xffffffff)))
    }
    if (proto === 'ip6' && kind === 'multicast') {
      return and(this.linkProtocol(ETHERTYPE.IP6, column), this.cmp(nl + 24, 1, 0xff))
    }
    throw new FilterError(`'${proto} ${kind}' is not supported`, column)
  }

  // ------------------------------------------------------------ arithmetic and relations

  private relation(op: Relop, left: Arith, right: Arith, column: number): Pred {
    let [l, r, o] = [left, right, op]
    if (constant(l) !== undefined && constant(r) === undefined) {
      // `5 < x` is `x > 5`: the constant goes to the jump.
      const mirror: Record<Relop, Relop> = { '=': '=', '!=': '!=', '<': '>', '<=': '>=', '>': '<', '>=': '<=' }
      ;[l, r, o] = [right, left, mirror[op]]
    }
    const [jcode, negate] = RELATIONS[o]
    const rc = constant(r)
    if (rc !== undefined) {
      const lc = constant(l)
      if (lc !== undefined) return compare(lc, o, rc)
      // `x & m != 0` and `x & m = 0` are one jset.
      if (
        rc === 0 &&
        (o === '=' || o === '!=') &&
        l.kind === 'binary' &&
        l.op === '&' &&
        constant(l.right) !== undefined
      ) {
        const v = this.value(l.left)
        const p = test(v.stmts, OP.JSET, constant(l.right)!)
        return this.guarded(v.guards, o === '=' ? not(p) : p)
      }
      const v = this.value(l)
      const p = test(v.stmts, jcode, rc)
      return this.guarded(v.guards, negate ? not(p) : p)
    }
    const { stmts, guards } = this.binary(l, r, column, (slot) => [{ code: OP.LDX_MEM, k: slot }])
    const p = test(stmts, jcode | OP.X, 0)
    return this.guarded(guards, negate ? not(p) : p)
  }

  private guarded(guards: Pred[], p: Pred): Pred {
    return guards.reduceRight<Pred>((acc, g) => and(g, acc), p)
  }

  /**
   * `right` computed and kept in a scratch word, then `left` in A and `tail(slot)` after it (X
   * loaded from the word, and the operation or comparison).
   */
  private binary(
    left: Arith,
    right: Arith,
    column: number,
    tail: (slot: number) => Stmt[],
  ): Value & { leftGuards: number } {
    const r = this.value(right)
    const slot = this.scratch++
    if (slot >= SCRATCH_WORDS) throw new FilterError('the expression needs more than 16 scratch words', column, 'E2BIG')
    const l = this.value(left)
    this.scratch--
    return {
      stmts: [...r.stmts, { code: OP.ST, k: slot }, ...l.stmts, ...tail(slot)],
      guards: [...l.guards, ...r.guards],
      leftGuards: l.guards.length,
    }
  }

  /** Statements that leave `e` in A (X and scratch words above the ones in use may change). */
  private value(e: Arith): Value {
    const c = constant(e)
    if (c !== undefined) return { stmts: [{ code: OP.LD_IMM, k: c }], guards: [] }
    switch (e.kind) {
      case 'len':
        return { stmts: [{ code: OP.LD_LEN, k: 0 }], guards: [] }
      case 'neg': {
        const v = this.value(e.operand)
        return { stmts: [...v.stmts, { code: OP.NEG, k: 0 }], guards: v.guards }
      }
      case 'binary': {
        const alu = OP.ALU | ALU_OPS[e.op]!
        const rc = constant(e.right)
        if (rc !== undefined) {
          checkOperand(e.op, rc, e.column)
          const v = this.value(e.left)
          return { stmts: [...v.stmts, { code: alu, k: rc }], guards: v.guards }
        }
        const v = this.binary(e.left, e.right, e.column, (slot) => [
          { code: OP.LDX_MEM, k: slot },
          { code: alu | OP.X, k: 0 },
        ])
        // libpcap keeps only the left operand's protocol checks for an arithmetic operation
        // (`ether[12:2] / ip[1]` reads ip[1] of any packet): the same is done here.
        return { stmts: v.stmts, guards: v.guards.slice(0, v.leftGuards) }
      }
      case 'load':
        return this.load(e.proto, e.index, e.size, e.column)
      default:
        throw new Error('unreachable: constants are folded above')
    }
  }

  /** `proto[index:size]`: the protocol's checks first, then the load (which rejects the packet past its end). */
  private load(proto: ProtoName, index: Arith, size: 1 | 2 | 4, column: number): Value {
    const nl = this.networkOffset
    const ic = constant(index)
    const idx = ic === undefined ? this.value(index) : undefined
    /** Loads at `base + index`; `x` first computes a header length into X that the offset adds to. */
    const at = (base: number, headerLength?: Stmt): Stmt[] => {
      if (ic !== undefined) {
        return headerLength
          ? [headerLength, { code: SIZE_LOAD_IND[size], k: base + ic }]
          : [{ code: SIZE_LOAD[size], k: base + ic }]
      }
      return [
        ...idx!.stmts,
        ...(headerLength ? [headerLength, { code: OP.ALU | OP.X | ALU_OPS['+']!, k: 0 }] : []),
        { code: OP.TAX, k: 0 },
        { code: SIZE_LOAD_IND[size], k: base },
      ]
    }
    const inner = idx?.guards ?? []
    switch (proto) {
      case 'ether':
      case 'link':
        return { stmts: at(0), guards: inner }
      case 'ip':
      case 'ip6':
      case 'arp':
      case 'rarp': {
        const type = { ip: ETHERTYPE.IP, ip6: ETHERTYPE.IP6, arp: ETHERTYPE.ARP, rarp: ETHERTYPE.RARP }[proto]
        return { stmts: at(nl), guards: [...inner, this.linkProtocol(type, column)] }
      }
      case 'icmp6': {
        const guards = [this.linkProtocol(ETHERTYPE.IP6, column), ...inner, this.cmp(nl + 6, 1, IPPROTO.ICMP6)]
        return { stmts: at(nl + 40), guards }
      }
      default: {
        const p = TRANSPORT[proto]
        if (p === undefined) throw new FilterError(`'${proto}[...]' is not supported`, column)
        const guards = [this.linkProtocol(ETHERTYPE.IP, column), ...inner, this.cmp(nl + 9, 1, p), this.firstFragment()]
        return { stmts: at(nl, { code: OP.LDX_MSH, k: nl }), guards }
      }
    }
  }
}

const RELATIONS: Record<Relop, [number, boolean]> = {
  '=': [OP.JEQ, false],
  '!=': [OP.JEQ, true],
  '>': [OP.JGT, false],
  '>=': [OP.JGE, false],
  '<': [OP.JGE, true],
  '<=': [OP.JGT, true],
}

function compare(a: number, op: Relop, b: number): boolean {
  switch (op) {
    case '=':
      return a === b
    case '!=':
      return a !== b
    case '<':
      return a < b
    case '<=':
      return a <= b
    case '>':
      return a > b
    case '>=':
      return a >= b
  }
}

/** Division by a constant 0 and shifts past 31 are refused as libpcap refuses them. */
function checkOperand(op: string, k: number, column: number): void {
  if ((op === '/' || op === '%') && k === 0)
    throw new FilterError(`${op === '/' ? 'division' : 'modulus'} by zero`, column)
  if ((op === '<<' || op === '>>') && k > 31) throw new FilterError(`shift by ${k}: at most 31`, column)
}

/** The value of a constant expression (32-bit unsigned arithmetic), or undefined. */
export function constant(e: Arith): number | undefined {
  switch (e.kind) {
    case 'num':
      return e.value >>> 0
    case 'neg': {
      const v = constant(e.operand)
      return v === undefined ? undefined : -v >>> 0
    }
    case 'binary': {
      const a = constant(e.left)
      const b = constant(e.right)
      if (a === undefined || b === undefined) return undefined
      checkOperand(e.op, b, e.column)
      switch (e.op) {
        case '+':
          return (a + b) >>> 0
        case '-':
          return (a - b) >>> 0
        case '*':
          return Math.imul(a, b) >>> 0
        case '/':
          return Math.floor(a / b) >>> 0
        case '%':
          return (a % b) >>> 0
        case '&':
          return (a & b) >>> 0
        case '|':
          return (a | b) >>> 0
        case '^':
          return (a ^ b) >>> 0
        case '<<':
          return (a << b) >>> 0
        case '>>':
          return a >>> b
      }
      return undefined
    }
    default:
      return undefined
  }
}

function checkByte(n: number, id: Id): number {
  if (n > 255) throw new FilterError(`protocol ${n} is past 255`, id.column)
  return n
}

function macBytes(id: Id): number[] {
  const hex = id.text.replace(/[-:.]/g, (s) => s)
  const parts = /^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$/i.test(hex)
    ? hex.split('.').flatMap((g) => [g.slice(0, 2), g.slice(2)])
    : hex.split(/[-:.]/)
  return parts.map((p) => Number.parseInt(p, 16))
}

/** An IPv4 host or network: the address and its mask, with libpcap's rules for short forms. */
function ip4Network(id: Id, kind: 'host' | 'net'): { addr: number; mask: number } {
  let addr: number
  let bits: number
  if (id.kind === 'num') {
    // `net 10` is 10.0.0.0/8: the number's significant bytes are the network part.
    addr = id.value
    bits = 32
    if (kind === 'net' && addr !== 0) {
      while ((addr & 0xff000000) === 0) {
        addr = (addr << 8) >>> 0
        bits -= 8
      }
    }
  } else if (id.kind === 'hid') {
    const parts = id.text.split('.').map(Number)
    if (parts.some((p) => p > 255)) throw new FilterError(`'${id.text}' is not an IPv4 address`, id.column)
    if (kind === 'host' && parts.length !== 4) throw new FilterError(`'${id.text}' is not a host address`, id.column)
    addr = parts.reduce((a, p, i) => (a | (p << (24 - 8 * i))) >>> 0, 0)
    bits = 8 * parts.length
  } else throw new FilterError(`'${id.text}' is not an IPv4 address`, id.column)
  let mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0
  if (id.prefix?.kind === 'len') {
    if (id.prefix.bits > 32) throw new FilterError(`mask length ${id.prefix.bits} is past 32`, id.column)
    mask = id.prefix.bits === 0 ? 0 : (0xffffffff << (32 - id.prefix.bits)) >>> 0
  } else if (id.prefix?.kind === 'mask') {
    const m = id.prefix.text.split('.').map(Number)
    if (m.length !== 4 || m.some((p) => p > 255)) throw new FilterError(`'${id.prefix.text}' is not a mask`, id.column)
    mask = m.reduce((a, p, i) => (a | (p << (24 - 8 * i))) >>> 0, 0)
  }
  if (kind === 'host' && id.prefix !== undefined) throw new FilterError("a mask goes with 'net', not 'host'", id.column)
  if ((addr & ~mask) >>> 0 !== 0) {
    throw new FilterError(`non-network bits set in '${id.text}'`, id.column)
  }
  return { addr, mask }
}

/** An IPv6 host or network as four big-endian words and their masks. */
function ip6Network(id: Id, kind: 'host' | 'net'): { words: number[]; mask: number[] } {
  const bytes = ip6Bytes(id)
  const bits = id.prefix?.kind === 'len' ? id.prefix.bits : 128
  if (bits > 128) throw new FilterError(`mask length ${bits} is past 128`, id.column)
  if (kind === 'host' && id.prefix !== undefined) throw new FilterError("a mask goes with 'net', not 'host'", id.column)
  const words: number[] = []
  const mask: number[] = []
  for (let i = 0; i < 4; i++) {
    const w = ((bytes[4 * i]! << 24) | (bytes[4 * i + 1]! << 16) | (bytes[4 * i + 2]! << 8) | bytes[4 * i + 3]!) >>> 0
    const b = Math.max(0, Math.min(32, bits - 32 * i))
    const m = b === 0 ? 0 : (0xffffffff << (32 - b)) >>> 0
    if ((w & ~m) >>> 0 !== 0) throw new FilterError(`non-network bits set in '${id.text}'`, id.column)
    words.push(w)
    mask.push(m)
  }
  return { words, mask }
}

function ip6Bytes(id: Id): number[] {
  let text = id.text
  let tail: number[] = []
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text)
  if (v4) {
    tail = v4.slice(1).map(Number)
    text = `${text.slice(0, v4.index)}0:0`
  }
  const [head, rest] = text.includes('::') ? text.split('::') : [text, undefined]
  const groups = (s: string | undefined): string[] => (s === undefined || s === '' ? [] : s.split(':'))
  const h = groups(head)
  const r = groups(rest)
  const fill = rest === undefined ? 0 : 8 - h.length - r.length
  const all = [...h, ...new Array<string>(fill).fill('0'), ...r]
  if (all.length !== 8 || all.some((g) => !/^[0-9a-f]{1,4}$/i.test(g)) || tail.some((b) => b > 255)) {
    throw new FilterError(`'${id.text}' is not an IPv6 address`, id.column)
  }
  const bytes = all.flatMap((g) => {
    const v = Number.parseInt(g, 16)
    return [v >> 8, v & 0xff]
  })
  if (v4) bytes.splice(12, 4, ...tail)
  return bytes
}

/** A port or `lo-hi` range (swapped when given high first, as libpcap does). */
function portRange(id: Id, kind: 'port' | 'portrange'): [number, number] {
  const port = (text: string, value?: number): number => {
    const v = value ?? (/^\d+$/.test(text) ? Number(text) : Number.NaN)
    if (!Number.isInteger(v)) {
      throw new FilterError(
        `'${text}' is not a port number (port names need /etc/services: give the number)`,
        id.column,
      )
    }
    if (v > 0xffff) throw new FilterError(`port ${v} is past 65535`, id.column)
    return v
  }
  if (id.kind === 'num') return [port(id.text, id.value), port(id.text, id.value)]
  const m = kind === 'portrange' ? /^(\d+)-(\d+)$/.exec(id.text) : null
  if (m) {
    const [a, b] = [port(m[1]!), port(m[2]!)]
    return a <= b ? [a, b] : [b, a]
  }
  const p = port(id.text)
  return [p, p]
}
