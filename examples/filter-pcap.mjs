/**
 * Writes a small capture (Ethernet, IPv4: TCP to ports 80, 22 and 443, UDP to 53; 1,000 packets,
 * one every millisecond) and keeps its web traffic with a compiled filter expression, as
 * `tcpdump -r capture.pcap -w http.pcap 'tcp dst port 80'` would.
 * Usage: node examples/filter-pcap.mjs [capture.pcap]   (needs the built package: npm run build)
 */
import { compileFilter, Program, pcap } from '../dist/index.js'

const path = process.argv[2] ?? 'capture.pcap'

function packet(i) {
  const data = new Uint8Array(60)
  const v = new DataView(data.buffer)
  data.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]) // destination and source MAC
  v.setUint16(12, 0x0800) // IPv4
  data[14] = 0x45 // version 4, 20-byte header
  v.setUint16(16, 46) // total length
  data[22] = 64 // TTL
  data[23] = i % 4 === 3 ? 17 : 6 // UDP every fourth packet, else TCP
  data.set([10, 0, 0, 1, 10, 0, 0, 2], 26) // 10.0.0.1 -> 10.0.0.2
  v.setUint16(34, 40000 + i) // source port
  v.setUint16(36, [80, 22, 443, 53][i % 4]) // destination port
  data[46] = 0x50 // TCP header length
  return { data, timestamp: 1_700_000_000_000_000_000n + BigInt(i) * 1_000_000n }
}

const written = await pcap.write(
  path,
  Array.from({ length: 1000 }, (_, i) => packet(i)),
)
console.log(`wrote ${path}: ${written} packets`)

const filter = compileFilter('tcp dst port 80')
const program = new Program({ type: 'socket_filter', instructions: filter.instructions })
const summary = await program.filterPcap(path, 'http.pcap')
console.log(`kept ${summary.kept} of ${summary.packets} packets in http.pcap`)
