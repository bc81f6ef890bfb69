/** The syntax tree of a filter expression, as the parser builds it and the code generator walks it. */

/** Protocol qualifiers and the protocols of packet-data accesses (`tcp[13]`). */
export type ProtoName =
  | 'ether'
  | 'link'
  | 'ip'
  | 'ip6'
  | 'arp'
  | 'rarp'
  | 'tcp'
  | 'udp'
  | 'sctp'
  | 'icmp'
  | 'icmp6'
  | 'igmp'
  | 'pim'
  | 'vrrp'
  | 'ah'
  | 'esp'

export type Direction = 'src' | 'dst' | 'src or dst' | 'src and dst'
export type AddressKind = 'host' | 'net' | 'port' | 'portrange' | 'proto' | 'gateway' | 'protochain'

/** The qualifiers in front of an id: `ip src host`, `tcp dst port`, `ether proto`. */
export interface Qualifiers {
  proto?: ProtoName
  dir?: Direction
  kind?: AddressKind
  /** Column of the first qualifier, for errors about the combination. */
  column: number
}

/** What follows the qualifiers: a number, an address or a name. */
export interface Id {
  kind: 'num' | 'hid' | 'hid6' | 'eid' | 'name'
  text: string
  value: number
  /** `/len` or `mask M` after a network address. */
  prefix?: { kind: 'len'; bits: number } | { kind: 'mask'; text: string }
  column: number
}

export type Arith =
  | { kind: 'num'; value: number; column: number }
  | { kind: 'len'; column: number }
  | { kind: 'load'; proto: ProtoName; index: Arith; size: 1 | 2 | 4; column: number }
  | { kind: 'binary'; op: string; left: Arith; right: Arith; column: number }
  | { kind: 'neg'; operand: Arith; column: number }

export type Relop = '=' | '!=' | '<' | '<=' | '>' | '>='

export type Expr =
  | { kind: 'and' | 'or'; left: Expr; right: Expr }
  | { kind: 'not'; operand: Expr }
  | { kind: 'primitive'; qualifiers: Qualifiers; id: Id }
  | { kind: 'protocol'; proto: ProtoName; column: number }
  | { kind: 'relation'; op: Relop; left: Arith; right: Arith; column: number }
  | { kind: 'vlan' | 'mpls'; id?: number; column: number }
  | { kind: 'broadcast' | 'multicast'; proto?: ProtoName; column: number }
