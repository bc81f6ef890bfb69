/**
 * `ebpf filter`, run as users run it (`node bin/ebpf.js filter ...` on the built package). The
 * oracle is tcpdump: the file written equals, record for record, what `tcpdump -r IN -w OUT EXPR`
 * writes for the same filter (as an expression, as `tcpdump -dd` text, and for a clang-built
 * socket filter the classic expression that reads the same bytes). Skipped where tcpdump is absent.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pcap } from '../ts/index'
import { PacketGenerator } from './helpers/capture-gen'

const root = join(__dirname, '..')
const bin = join(root, 'bin', 'ebpf.js')
const fixtures = join(__dirname, 'fixtures')
const hasTcpdump = spawnSync('tcpdump', ['--version'], { stdio: 'ignore' }).status === 0
if (!hasTcpdump) console.warn('cli-filter.test.ts: tcpdump is not installed; the ebpf filter tests are skipped')

let work = ''
let input = ''
const PACKETS = 2000

function ebpf(args: readonly string[]): { status: number | null; stdout: Buffer; stderr: string } {
  const r = spawnSync(process.execPath, [bin, 'filter', ...args], { cwd: work, maxBuffer: 1 << 26 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString() }
}

/** The records of a pcap file, without its header (whose snap length field differs between writers). */
const body = (bytes: Buffer): Buffer => bytes.subarray(24)

function tcpdump(expr: string, from = input): Buffer {
  const out = join(work, 'tcpdump.pcap')
  const r = spawnSync('tcpdump', ['-r', from, '-w', out, '--', expr], { encoding: 'utf8' })
  expect(r.status, r.stderr).toBe(0)
  return readFileSync(out)
}

beforeAll(async () => {
  if (!existsSync(join(root, 'dist', 'cli', 'main.js')))
    throw new Error('dist/cli/main.js is missing: run `npm run build`')
  work = mkdtempSync(join(tmpdir(), 'ebpf-cli-filter-'))
  input = join(work, 'in.pcap')
  const packets = new PacketGenerator(7).packets(PACKETS)
  await pcap.write(
    input,
    packets.map((p, i) => ({ data: p.data, originalLength: p.originalLength, timestamp: BigInt(i) * 1000n })),
  )
})
afterAll(() => rmSync(work, { recursive: true, force: true }))

describe.skipIf(!hasTcpdump)('ebpf filter', () => {
  it('an expression: writes what tcpdump writes and prints the summary', () => {
    const out = join(work, 'out.pcap')
    const expected = tcpdump('tcp port 80 or udp port 53')
    const r = ebpf(['tcp port 80 or udp port 53', input, '-w', out])
    expect(r.status, r.stderr).toBe(0)
    expect(body(readFileSync(out))).toEqual(body(expected))
    const kept = pcapCount(expected)
    expect(kept).toBeGreaterThan(10)
    expect(r.stdout.toString()).toMatch(
      new RegExp(
        `^${PACKETS} packets, ${kept} kept \\(\\d+\\.\\d%\\), 0 trapped, \\d+ of \\d+ bytes kept, [\\d.]+ s, \\d+ packets/s\\n$`,
      ),
    )
  })

  it("examples/filter-pcap.mjs: its capture's web traffic, as tcpdump keeps it, and the README's transcript", () => {
    const dir = mkdtempSync(join(work, 'example-'))
    const r = spawnSync(process.execPath, [join(root, 'examples', 'filter-pcap.mjs'), 'capture.pcap'], {
      cwd: dir,
      encoding: 'utf8',
    })
    expect(r.status, r.stderr).toBe(0)
    const expected = tcpdump('tcp dst port 80', join(dir, 'capture.pcap'))
    expect(body(readFileSync(join(dir, 'http.pcap')))).toEqual(body(expected))
    expect(r.stdout).toBe(
      `wrote capture.pcap: 1000 packets\nkept ${pcapCount(expected)} of 1000 packets in http.pcap\n`,
    )
    expect(pcapCount(expected)).toBe(250)
  })

  it('words after the filter are joined; --json; no -w only counts', () => {
    const r = ebpf(['tcp', 'and', 'not', 'port', '80', input, '--json', '--engine', 'interpreter'])
    expect(r.status, r.stderr).toBe(0)
    const s = JSON.parse(r.stdout.toString())
    expect(s).toMatchObject({
      packets: PACKETS,
      kept: pcapCount(tcpdump('tcp and not port 80')),
      trapped: 0,
      engine: 'interpreter',
    })
    expect(typeof s.packetsPerSecond).toBe('number')
  })

  it('-w - writes the capture to standard output and the summary to standard error', () => {
    const r = ebpf(['icmp or icmp6', input, '-w', '-'])
    expect(r.status, r.stderr).toBe(0)
    expect(body(r.stdout)).toEqual(body(tcpdump('icmp or icmp6')))
    expect(r.stderr).toMatch(/^2000 packets, \d+ kept/)
  })

  it('classic BPF text from tcpdump -dd', () => {
    const text = spawnSync('tcpdump', ['-dd', '-y', 'EN10MB', 'vlan and udp'], { encoding: 'utf8' }).stdout
    const file = join(work, 'vlan-udp.cbpf')
    writeFileSync(file, text)
    const out = join(work, 'cbpf.pcap')
    expect(ebpf([file, input, '-w', out]).status).toBe(0)
    expect(body(readFileSync(out))).toEqual(body(tcpdump('vlan and udp')))
  })

  it('a socket filter of an object (socket_filter.c: UDP to port 0 of its zeroed config, no IP options)', () => {
    const out = join(work, 'obj.pcap')
    const r = ebpf([join(fixtures, 'socket_filter.bpf.o'), input, '-w', out])
    expect(r.status, r.stderr).toBe(0)
    // The same bytes read as classic loads: Ethernet type, IP protocol, UDP destination port at 14 + 20 + 2.
    const expected = tcpdump('ether[12:2] = 0x800 and ether[23] = 17 and ether[36:2] = 0')
    expect(pcapCount(expected)).toBeGreaterThan(0)
    expect(body(readFileSync(out))).toEqual(body(expected))
  })

  it('--coverage: the C lines of an object filter over the capture, counted as tcpdump counts the packets', () => {
    const lcov = join(work, 'filter.lcov')
    const r = ebpf([join(fixtures, 'socket_filter.bpf.o'), input, '--coverage', lcov])
    expect(r.status, r.stderr).toBe(0)
    const text = readFileSync(lcov, 'utf8')
    const source = readFileSync(join(fixtures, 'socket_filter.c'), 'utf8').split('\n')
    const hits = new Map<number, number>()
    for (const m of text.matchAll(/^DA:(\d+),(\d+)$/gm)) hits.set(Number(m[1]), Number(m[2]))
    const lineOf = (needle: string) => source.findIndex((l) => l.includes(needle)) + 1
    // socket_filter.c: every packet reaches the protocol check; IPv4 ones load the IP protocol;
    // UDP ones load the port; those to port 0 (the zeroed config) reach the count. The counts
    // come from tcpdump over the same capture.
    expect(hits.get(lineOf('skb->protocol != bpf_htons(ETH_P_IP)'))).toBe(PACKETS)
    expect(hits.get(lineOf('offsetof(struct iphdr, protocol)'))).toBe(pcapCount(tcpdump('ether[12:2] = 0x800')))
    expect(hits.get(lineOf('offsetof(struct udphdr, dest)'))).toBe(
      pcapCount(tcpdump('ether[12:2] = 0x800 and ether[23] = 17')),
    )
    expect(hits.get(lineOf('__sync_fetch_and_add(&cfg->matched, 1)'))).toBe(
      pcapCount(tcpdump('ether[12:2] = 0x800 and ether[23] = 17 and ether[36:2] = 0')),
    )
    // An expression has no C source: the file is written empty and the summary says so.
    const none = ebpf(['udp', input, '--coverage', join(work, 'expr.lcov')])
    expect(none.status).toBe(0)
    expect(none.stderr).toContain('no source lines')
  })

  it('a cooked (LINUX_SLL) capture: the expression is compiled for its link type', async () => {
    const sll = join(work, 'sll.pcap')
    const packets = new PacketGenerator(8).packets(500).filter((p) => p.data.length > 14)
    await pcap.write(
      sll,
      packets.map((p, i) => ({
        data: Uint8Array.from([0, 0, 0, 1, 0, 6, ...p.data.subarray(6, 12), 0, 0, ...p.data.subarray(12)]),
        timestamp: BigInt(i) * 1000n,
      })),
      { linkType: 'LINUX_SLL' },
    )
    const out = join(work, 'sll-out.pcap')
    expect(ebpf(['udp or arp', sll, '-w', out]).status).toBe(0)
    expect(body(readFileSync(out))).toEqual(body(tcpdump('udp or arp', sll)))
  })

  it('errors: one line (and a caret under the column), exit 1, no stack', () => {
    const bad = ebpf(['tcp port 80 and', input])
    expect(bad.status).toBe(1)
    expect(bad.stderr).toBe(
      'ebpf filter: filter expression: column 16: syntax error: expected a primitive, got the end of the expression\n' +
        '  tcp port 80 and\n' +
        '                 ^\n',
    )
    // XDP and tc programs sort packets by verdict (cli-pcap-verdicts.test.ts); tracing programs have no packet.
    const kprobe = ebpf([join(fixtures, 'tracing.bpf.o'), '--program', 'trace_unlink', input])
    expect(kprobe.stderr).toMatch(/is of type 'kprobe'; ebpf filter runs socket filters, XDP and tc programs/)
    expect(kprobe.status).toBe(1)
    expect(ebpf(['tcp', join(work, 'missing.pcap')]).stderr).toMatch(/missing.pcap: cannot read: no such file/)
    expect(ebpf(['tcp']).stderr).toMatch(/missing IN.pcap/)
    const notCapture = join(work, 'not.pcap')
    writeFileSync(notCapture, 'hello world')
    expect(ebpf(['tcp', notCapture]).stderr).toMatch(/not a pcap or pcapng file/)
    for (const r of [bad, kprobe]) expect(r.stderr).not.toMatch(/\n\s+at /)
  })
})

function pcapCount(bytes: Buffer): number {
  let n = 0
  for (let at = 24; at + 16 <= bytes.length; n++) at += 16 + bytes.readUInt32LE(at + 8)
  return n
}
