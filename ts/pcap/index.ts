/**
 * `ebpf`'s capture files: `read` streams the packets of a pcap or pcapng file, `write` writes pcap or
 * pcapng, and `captureFormat` tells a capture file from its first bytes (the CLI uses it to refuse one
 * as raw packet data).
 */
export { LINK_TYPES, type LinkTypeName, MAX_BLOCK_LENGTH, type Packet } from './format.js'
export { captureFormat, DEFAULT_BATCH_SIZE, type PacketBatch, read, readBatches } from './read.js'
export type { PcapInput } from './source.js'
export { createWriter, type PacketToWrite, type PcapWriter, type WriteOptions, write, writeBatches } from './write.js'
