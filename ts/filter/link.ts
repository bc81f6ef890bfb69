/**
 * The link layers a filter can be compiled for, and where their headers put the fields the
 * primitives test: the protocol type (Ethernet type) and the network header. The offsets are the
 * link-layer header formats' (tcpdump.org/linktypes.html).
 */
import { LINK_TYPES } from '../pcap/format.js'

export interface LinkLayer {
  name: 'EN10MB' | 'RAW' | 'LINUX_SLL' | 'LINUX_SLL2' | 'NULL' | 'LOOP'
  linkType: number
  /**
   * Offset of the 16-bit protocol type; undefined where the header has none (RAW: the IP version
   * says it; NULL and LOOP: `addressFamily`).
   */
  protocolOffset: number | undefined
  /**
   * BSD loopback headers: a 32-bit address family (AF_) value at offset 0, in the byte order named
   * (LOOP: network order; NULL: the capturing host's, taken as little-endian).
   */
  addressFamily?: 'little' | 'big'
  /** Offset of the network-layer header. */
  networkOffset: number
  /** Ethernet addresses, `vlan` and `mpls` apply (an Ethernet header is there). */
  ethernet: boolean
}

export const LINK_LAYERS: Record<LinkLayer['name'], LinkLayer> = {
  EN10MB: { name: 'EN10MB', linkType: LINK_TYPES.EN10MB, protocolOffset: 12, networkOffset: 14, ethernet: true },
  RAW: { name: 'RAW', linkType: LINK_TYPES.RAW, protocolOffset: undefined, networkOffset: 0, ethernet: false },
  // struct sll_header: packet type, ARPHRD type, address length, 8 address bytes, protocol.
  LINUX_SLL: {
    name: 'LINUX_SLL',
    linkType: LINK_TYPES.LINUX_SLL,
    protocolOffset: 14,
    networkOffset: 16,
    ethernet: false,
  },
  // struct sll2_header: protocol first, then reserved, interface index, ARPHRD type, ...: 20 bytes.
  LINUX_SLL2: {
    name: 'LINUX_SLL2',
    linkType: LINK_TYPES.LINUX_SLL2,
    protocolOffset: 0,
    networkOffset: 20,
    ethernet: false,
  },
  // A 4-byte address family, then the IP header. libpcap reads NULL's family in the capture
  // file's byte order; ours is for a little-endian file (what x86 and ARM hosts write).
  NULL: {
    name: 'NULL',
    linkType: LINK_TYPES.NULL,
    protocolOffset: undefined,
    networkOffset: 4,
    ethernet: false,
    addressFamily: 'little',
  },
  LOOP: {
    name: 'LOOP',
    linkType: LINK_TYPES.LOOP,
    protocolOffset: undefined,
    networkOffset: 4,
    ethernet: false,
    addressFamily: 'big',
  },
}

/** The link layer named or numbered by `linkType` (a LINKTYPE_ value or its name); undefined if not supported. */
export function linkLayer(linkType: string | number): LinkLayer | undefined {
  if (typeof linkType === 'string') return (LINK_LAYERS as Record<string, LinkLayer>)[linkType]
  return Object.values(LINK_LAYERS).find((l) => l.linkType === linkType)
}
