/**
 * The constants of the pcap and pcapng file formats (libpcap's savefile(5) / pcap-savefile and the
 * pcapng draft), and the packet record both readers yield and the writer takes.
 */

/** LINKTYPE_ values (tcpdump.org/linktypes.html) of the link layers the readers and writer name. */
export const LINK_TYPES = {
  NULL: 0,
  EN10MB: 1,
  RAW: 101,
  LOOP: 108,
  LINUX_SLL: 113,
  LINUX_SLL2: 276,
} as const

export type LinkTypeName = keyof typeof LINK_TYPES

/** One captured packet. */
export interface Packet {
  /** Capture time in nanoseconds since the Unix epoch. */
  timestamp: bigint
  /** The captured bytes (at most the snap length). */
  data: Uint8Array
  /** The packet's length on the wire (>= `data.length`). */
  originalLength: number
  /** Index of the pcapng interface it was captured on (in its section); 0 for pcap. */
  interface: number
  /** The LINKTYPE_ value of the interface (see `LINK_TYPES`). */
  linkType: number
}

/** pcap global header magic, microsecond timestamps (as read in the writer's byte order). */
export const PCAP_MAGIC_US = 0xa1b2c3d4
/** pcap global header magic, nanosecond timestamps. */
export const PCAP_MAGIC_NS = 0xa1b23c4d
export const PCAP_HEADER_LENGTH = 24
export const PCAP_RECORD_HEADER_LENGTH = 16

export const PCAPNG_SECTION_HEADER = 0x0a0d0d0a
export const PCAPNG_BYTE_ORDER_MAGIC = 0x1a2b3c4d
export const PCAPNG_INTERFACE_DESCRIPTION = 1
export const PCAPNG_SIMPLE_PACKET = 3
export const PCAPNG_ENHANCED_PACKET = 6
/** Interface description options: the timestamp resolution and the seconds added to every timestamp. */
export const IF_TSRESOL = 9
export const IF_TSOFFSET = 14

/**
 * The largest packet record or pcapng block the readers accept (libpcap's pcapng reader has the same
 * 16 MiB limit): a corrupted length can never make a reader buffer more than this.
 */
export const MAX_BLOCK_LENGTH = 16 * 1024 * 1024

/** The snap length the writer uses when none is given (libpcap's MAXIMUM_SNAPLEN). */
export const DEFAULT_SNAPLEN = 262144
