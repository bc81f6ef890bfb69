/** Hand-built Ethernet/IPv4/UDP/TCP packets for end-to-end tests (checksums left zero: nothing here checks them). */

export const ETH_P_IP = 0x0800
export const ETH_P_IPV6 = 0x86dd
export const IPPROTO_TCP = 6
export const IPPROTO_UDP = 17

export interface PacketSpec {
  src?: [number, number, number, number]
  dst?: [number, number, number, number]
  proto?: number
  ethType?: number
  sport?: number
  dport?: number
  /** Bytes after the L4 header. */
  payload?: number
}

/** Ethernet (14) + IPv4 (20) + UDP (8) or TCP (20) + payload. */
export function ipv4Packet(spec: PacketSpec = {}): Uint8Array {
  const proto = spec.proto ?? IPPROTO_UDP
  const l4 = proto === IPPROTO_TCP ? 20 : 8
  const payload = spec.payload ?? 0
  const pkt = new Uint8Array(14 + 20 + l4 + payload)
  const v = new DataView(pkt.buffer)
  pkt.set([0x02, 0, 0, 0, 0, 2], 0)
  pkt.set([0x02, 0, 0, 0, 0, 1], 6)
  v.setUint16(12, spec.ethType ?? ETH_P_IP)
  pkt[14] = 0x45
  v.setUint16(16, 20 + l4 + payload)
  pkt[22] = 64
  pkt[23] = proto
  pkt.set(spec.src ?? [10, 0, 0, 1], 26)
  pkt.set(spec.dst ?? [10, 0, 0, 2], 30)
  v.setUint16(34, spec.sport ?? 1234)
  v.setUint16(36, spec.dport ?? 80)
  if (proto === IPPROTO_UDP) v.setUint16(38, 8 + payload)
  else pkt[46] = 0x50
  return pkt
}
