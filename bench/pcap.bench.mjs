/**
 * pcap.write and pcap.read throughput on a large file, and the reader's peak memory against the
 * file's size (the readers stream: one block in memory at a time). Needs the built package
 * (`npm run build`). Usage: node bench/pcap.bench.mjs [PACKETS] (default 1,000,000).
 * Also times `tcpdump -r FILE -w /dev/null` (libpcap reading the same file) when tcpdump is installed.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { resourceUsage } from 'node:process'
import { pcap } from '../dist/index.js'

const count = Number(process.argv[2] ?? 1_000_000)
const dir = mkdtempSync(join(tmpdir(), 'ebpf-pcap-bench-'))
const frames = Array.from({ length: 64 }, (_, i) => new Uint8Array(60 + i * 23).fill(i))

function* packets() {
  for (let i = 0; i < count; i++)
    yield { timestamp: 1_700_000_000_000_000_000n + BigInt(i) * 1000n, data: frames[i % 64] }
}

const rows = []
try {
  for (const format of ['pcap', 'pcapng']) {
    const file = join(dir, `bench.${format}`)
    let t = process.hrtime.bigint()
    await pcap.write(file, packets(), { format })
    const writeNs = Number(process.hrtime.bigint() - t)
    const size = statSync(file).size
    t = process.hrtime.bigint()
    let n = 0
    let bytes = 0
    for await (const p of pcap.read(file)) {
      n++
      bytes += p.data.length
    }
    const readNs = Number(process.hrtime.bigint() - t)
    if (n !== count) throw new Error(`read ${n} packets, wrote ${count}`)
    let tcpdump = 'n/a'
    t = process.hrtime.bigint()
    const r = spawnSync('tcpdump', ['-r', file, '-w', '/dev/null'], { stdio: 'ignore' })
    if (r.status === 0) tcpdump = `${((count / Number(process.hrtime.bigint() - t)) * 1e3).toFixed(2)} M/s`
    rows.push(
      `| ${format} | ${count} | ${(size / 2 ** 20).toFixed(0)} MiB | ${((count / writeNs) * 1e3).toFixed(2)} M/s | ` +
        `${((count / readNs) * 1e3).toFixed(2)} M/s (${((bytes / readNs) * 1e3).toFixed(0)} MB/s) | ${tcpdump} |`,
    )
  }
} finally {
  rmSync(dir, { recursive: true, force: true })
}
console.log('| format | packets | file | write (packets/s) | read (packets/s, data) | tcpdump -r -w /dev/null |')
console.log('| --- | --- | --- | --- | --- | --- |')
for (const row of rows) console.log(row)
console.log(`peak RSS of this process: ${(resourceUsage().maxRSS / 1024).toFixed(0)} MiB`)
