/**
 * `ebpf filter` with XDP and tc programs (per-verdict outputs) and `ebpf run --pcap`, run as users
 * run them (`node bin/ebpf.js ...` on the built package). The oracle is the kernel: each packet of
 * the capture goes through BPF_PROG_TEST_RUN (bpftool prog run) of the same object, and every
 * output capture must hold exactly the packets the kernel gave that verdict, as the kernel left
 * them. tcpdump reads the outputs back (they are valid captures). Kernel parts are skipped without
 * root/bpftool.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Collection, loadCollectionSpec, pcap, TC_ACTIONS, XDP_ACTIONS } from '../ts/index'
import { PacketGenerator } from './helpers/capture-gen'
import { KernelObject, kernelOracle } from './helpers/kernel'
import { ipv4Packet } from './helpers/packets'

const root = join(__dirname, '..')
const bin = join(root, 'bin', 'ebpf.js')
const object = join(__dirname, 'fixtures', 'pcap_verdicts.bpf.o')
const hasTcpdump = spawnSync('tcpdump', ['--version'], { stdio: 'ignore' }).status === 0
const oracle = kernelOracle()

let work = ''
let input = ''
let packets: Array<{ data: Uint8Array; originalLength: number; timestamp: bigint }> = []

function ebpf(args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: work, encoding: 'utf8', maxBuffer: 1 << 26 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

async function readAll(path: string): Promise<Array<{ data: Uint8Array; originalLength: number; timestamp: bigint }>> {
  const out = []
  for await (const p of pcap.read(path))
    out.push({ data: p.data, originalLength: p.originalLength, timestamp: p.timestamp })
  return out
}

/** Each packet's verdict name and output bytes from the kernel's test run ('trapped' with the input where it refuses the packet). */
function kernelVerdicts(
  program: string,
  names: readonly string[],
  of = packets,
): Array<{ verdict: string; data: Uint8Array }> {
  const kernel = KernelObject.load(object)
  try {
    return of.map((p) => {
      try {
        const r = kernel.run(program, p.data)
        return { verdict: names[r.retval] ?? String(r.retval), data: r.data }
      } catch (e) {
        // The kernel's test run refuses frames shorter than an Ethernet header (EINVAL); so do we, as a trap.
        expect(String((e as { stderr?: string }).stderr ?? e)).toMatch(/Invalid argument/)
        expect(p.data.length).toBeLessThan(14)
        return { verdict: 'trapped', data: p.data }
      }
    })
  } finally {
    kernel.close()
  }
}

beforeAll(async () => {
  if (!existsSync(join(root, 'dist', 'cli', 'main.js')))
    throw new Error('dist/cli/main.js is missing: run `npm run build`')
  work = mkdtempSync(join(tmpdir(), 'ebpf-cli-verdicts-'))
  input = join(work, 'in.pcap')
  // Generated frames of every kind, and IPv4 of each branch of the programs (UDP, TCP 80 and 443, ICMP, IGMP).
  const generated = new PacketGenerator(23)
    .packets(240)
    .map((p) => ({ data: p.data, originalLength: p.originalLength }))
  const crafted = [
    ...[80, 443, 22].map((dport) => ipv4Packet({ proto: 6, dport, payload: 10 })),
    ipv4Packet({ proto: 17, dport: 53, payload: 12 }),
    ipv4Packet({ proto: 1, payload: 16 }),
    ipv4Packet({ proto: 2, payload: 8 }),
  ].map((data) => ({ data, originalLength: data.length }))
  const all = [...generated]
  for (const [i, c] of crafted.entries()) all.splice(7 + i * 31, 0, c, c)
  packets = all.map((p, i) => ({ ...p, timestamp: 1_700_000_000_000_000_000n + BigInt(i) * 1000n }))
  await pcap.write(input, packets)
})
afterAll(() => rmSync(work, { recursive: true, force: true }))

describe('ebpf filter with an XDP program: per-verdict outputs', () => {
  it.skipIf(!oracle.ok)(
    'each output holds the packets the kernel gave that verdict, as the kernel left them',
    async () => {
      const outs = { XDP_PASS: 'pass.pcap', XDP_DROP: 'drop.pcap', XDP_TX: 'tx.pcap', XDP_ABORTED: 'aborted.pcap' }
      const r = ebpf([
        'filter',
        object,
        '--program',
        'xdp_sort',
        input,
        '--out-pass',
        outs.XDP_PASS,
        '--out-drop',
        outs.XDP_DROP,
        '--out-tx',
        outs.XDP_TX,
        '--out-aborted',
        outs.XDP_ABORTED,
        '--out-trapped',
        'trapped.pcap',
        '--json',
      ])
      expect(r.status, r.stderr).toBe(0)
      const expected = kernelVerdicts('xdp_sort', XDP_ACTIONS)
      const counts: Record<string, number> = {}
      for (const e of expected) counts[e.verdict] = (counts[e.verdict] ?? 0) + 1
      // Every branch ran at least twice (the crafted packets), and the generator gave runts.
      for (const v of ['XDP_PASS', 'XDP_DROP', 'XDP_TX', 'XDP_ABORTED', 'trapped'])
        expect(counts[v]).toBeGreaterThanOrEqual(2)
      const summary = JSON.parse(r.stdout)
      expect(summary).toMatchObject({ packets: packets.length, verdicts: counts, trapped: counts.trapped, type: 'xdp' })
      expect(summary.written).toBe(packets.length)
      for (const [verdict, file] of [...Object.entries(outs), ['trapped', 'trapped.pcap']] as const) {
        const got = await readAll(join(work, file))
        const want = expected.flatMap((e, i) => (e.verdict === verdict ? [{ ...packets[i]!, data: e.data }] : []))
        expect(
          got.map((p) => [p.timestamp, Buffer.from(p.data).toString('hex')]),
          verdict,
        ).toEqual(want.map((p) => [p.timestamp, Buffer.from(p.data).toString('hex')]))
        // Cut or grown by the program: the original length moves with it.
        for (const [i, p] of got.entries()) {
          const src = want[i]!
          const inPacket = packets.find((q) => q.timestamp === src.timestamp)!
          expect(p.originalLength).toBe(
            Math.max(p.data.length, inPacket.originalLength + p.data.length - inPacket.data.length),
          )
        }
        if (hasTcpdump) {
          const t = spawnSync('tcpdump', ['-r', join(work, file), '-w', '/dev/null'], { encoding: 'utf8' })
          expect(t.status, t.stderr).toBe(0)
        }
      }
    },
  )

  it('counts verdicts without outputs; the plain summary', () => {
    const r = ebpf(['filter', object, '--program', 'xdp_sort', input, '--out-drop', 'only-drop.pcap'])
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toMatch(
      /^\d+ packets, \d+ written, verdicts: (XDP_[A-Z]+ \d+|trapped \d+)(, (XDP_[A-Z]+ \d+|trapped \d+))*; \d+ trapped, \d+ of \d+ bytes written, [\d.]+ s, \d+ packets\/s\n$/,
    )
    expect(r.stdout.startsWith(`${packets.length} packets, `)).toBe(true)
  })

  it('refuses -w for an XDP program, --out-tx for tc, --out-* for a socket filter', () => {
    let r = ebpf(['filter', object, '--program', 'xdp_sort', input, '-w', 'x.pcap'])
    expect(r.status).toBe(1)
    expect(r.stderr).toContain('--out-pass')
    r = ebpf(['filter', object, '--program', 'tc_sort', input, '--out-tx', 'x.pcap'])
    expect(r.status).toBe(1)
    expect(r.stderr).toContain('--out-tx is for XDP programs')
    r = ebpf(['filter', 'tcp', input, '--out-pass', 'x.pcap'])
    expect(r.status).toBe(1)
    expect(r.stderr).toContain('socket filter keeps packets with -w')
    r = ebpf(['filter', object, '--program', 'xdp_sort', input, '--out', 'XDP_BOGUS=x.pcap'])
    expect(r.status).toBe(1)
    expect(r.stderr).toContain("verdict 'XDP_BOGUS'")
  })
})

describe('ebpf filter with a tc program', () => {
  it.skipIf(!oracle.ok)('TC_ACT_OK / TC_ACT_SHOT / --out TC_ACT_STOLEN=... against the kernel', async () => {
    // The kernel's skb test run also refuses IPv4 frames with less than an IPv4 header after the
    // Ethernet one (and IPv6 with less than 40 bytes): a limit of its test run, not a tc verdict (a
    // program attached to an interface does see such frames), which our runs do not copy. Those
    // frames are left out of this comparison.
    const runnable = packets.filter((p) => {
      const type = p.data.length >= 14 ? (p.data[12]! << 8) | p.data[13]! : 0
      return p.data.length >= 14 && !(type === 0x0800 && p.data.length < 34) && !(type === 0x86dd && p.data.length < 54)
    })
    expect(runnable.length).toBeGreaterThan(200)
    const tcInput = join(work, 'in-tc.pcap')
    await pcap.write(tcInput, runnable)
    const r = ebpf([
      'filter',
      object,
      '--program',
      'tc_sort',
      tcInput,
      '--out-pass',
      'ok.pcap',
      '--out-drop',
      'shot.pcap',
      '--out',
      'stolen=stolen.pcap',
      '--json',
    ])
    expect(r.status, r.stderr).toBe(0)
    const expected = kernelVerdicts('tc_sort', TC_ACTIONS, runnable)
    const counts: Record<string, number> = {}
    for (const e of expected) counts[e.verdict] = (counts[e.verdict] ?? 0) + 1
    expect(JSON.parse(r.stdout)).toMatchObject({ packets: runnable.length, verdicts: counts, type: 'tc' })
    for (const [verdict, file] of [
      ['TC_ACT_OK', 'ok.pcap'],
      ['TC_ACT_SHOT', 'shot.pcap'],
      ['TC_ACT_STOLEN', 'stolen.pcap'],
    ] as const) {
      expect(counts[verdict], verdict).toBeGreaterThanOrEqual(2)
      const got = await readAll(join(work, file))
      const want = expected.flatMap((e, i) =>
        e.verdict === verdict ? [[runnable[i]!.timestamp, Buffer.from(e.data).toString('hex')]] : [],
      )
      expect(
        got.map((p) => [p.timestamp, Buffer.from(p.data).toString('hex')]),
        verdict,
      ).toEqual(want)
    }
  })
})

describe("the kernel test run's short-frame limit (tc and socket filters)", () => {
  it.skipIf(!oracle.ok)(
    'the kernel refuses IPv4 frames under 34 bytes and IPv6 under 54; ours run them, as tcpdump and an attached program see them',
    async () => {
      // Frames by EtherType: the kernel's skb test run (BPF_PROG_TEST_RUN of sched_cls and
      // socket_filter alike) refuses one shorter than an Ethernet header, IPv4 with less than an
      // IPv4 header after the Ethernet one and IPv6 with less than an IPv6 header; other types
      // (ARP, 802.1Q) it runs.
      const frame = (type: number, length: number): Uint8Array => {
        const f = new Uint8Array(length)
        f[12] = type >> 8
        f[13] = type & 0xff
        if (length > 14) f[14] = type === 0x86dd ? 0x60 : 0x45
        return f
      }
      const cases: Array<[number, number, boolean]> = [
        [0x0800, 10, true],
        [0x0800, 14, true],
        [0x0800, 33, true],
        [0x0800, 34, false],
        [0x86dd, 34, true],
        [0x86dd, 53, true],
        [0x86dd, 54, false],
        [0x0806, 20, false],
        [0x8100, 20, false],
      ]
      const programs = [
        { object, name: 'tc_sort' },
        { object: join(__dirname, 'fixtures', 'socket_filter.bpf.o'), name: 'udp_port_filter' },
      ]
      for (const { object: path, name } of programs) {
        const kernel = KernelObject.load(path)
        const ours = new Collection(await loadCollectionSpec(path)).programs.get(name)!
        try {
          for (const [type, length, refused] of cases) {
            const what = `${name}: EtherType 0x${type.toString(16)}, ${length} bytes`
            const data = frame(type, length)
            const k = (() => {
              try {
                return kernel.run(name, data).retval
              } catch (e) {
                return String((e as { stderr?: string }).stderr ?? e)
              }
            })()
            if (refused) expect(k, what).toMatch(/Invalid argument/)
            else expect(typeof k, what).toBe('number')
            // Ours give every such frame a verdict (README, "the kernel's short-frame limit"), but
            // for a tc program one shorter than an Ethernet header, refused as the kernel does.
            if (name === 'tc_sort' && length < 14)
              expect(() => ours.run({ data }), what).toThrow(expect.objectContaining({ code: 'EINVAL' }))
            else expect(typeof ours.run({ data }).retval, what).toBe('number')
          }
        } finally {
          kernel.close()
        }
      }
    },
  )
})

describe('ebpf run --pcap', () => {
  it.skipIf(!oracle.ok)(
    'runs every packet: one line each with the kernel retval, then the verdicts; exit 2 for traps',
    () => {
      const r = ebpf(['run', object, '--program', 'xdp_sort', '--pcap', input])
      const expected = kernelVerdicts('xdp_sort', XDP_ACTIONS)
      expect(r.status, r.stderr).toBe(expected.some((e) => e.verdict === 'trapped') ? 2 : 0)
      const lines = r.stdout.trimEnd().split('\n')
      expect(lines).toHaveLength(packets.length + 1)
      for (const [i, e] of expected.entries()) {
        if (e.verdict === 'trapped') expect(lines[i]).toMatch(new RegExp(`^${i + 1}: trap `))
        else {
          const changed = Buffer.compare(Buffer.from(e.data), Buffer.from(packets[i]!.data)) !== 0
          expect(lines[i]).toMatch(
            new RegExp(
              `^${i + 1}: retval ${XDP_ACTIONS.indexOf(e.verdict)} \\(${e.verdict}\\), \\d+ insns${changed ? `, data changed \\(${e.data.length} bytes\\)` : ''}$`,
            ),
          )
        }
      }
      expect(lines.at(-1)).toMatch(new RegExp(`^${packets.length} packets, verdicts: .*; \\d+ trapped, \\d+ bytes, `))
    },
  )

  it('--json gives each packet, with the output data where the program changed it', () => {
    const r = ebpf(['run', object, '--program', 'tc_sort', '--pcap', input, '--json', '--engine', 'interpreter'])
    expect([0, 2]).toContain(r.status)
    const out = JSON.parse(r.stdout)
    expect(out.packets).toBe(packets.length)
    expect(out.runs).toHaveLength(packets.length)
    expect(out.engine).toBe('interpreter')
    // The UDP packet (the 4th crafted kind): TTL set to 1 by hand, as the program says.
    const udp = ipv4Packet({ proto: 17, dport: 53, payload: 12 })
    const i = packets.findIndex((p) => Buffer.compare(Buffer.from(p.data), Buffer.from(udp)) === 0)
    const want = Uint8Array.from(udp)
    want[22] = 1
    expect(out.runs[i]).toMatchObject({
      index: i,
      retval: 0,
      action: 'TC_ACT_OK',
      dataChanged: true,
      data: Buffer.from(want).toString('hex'),
    })
  })

  it('--data refuses a capture file and names --pcap and filter; --pcap refuses --data/--repeat', () => {
    let r = ebpf(['run', object, '--program', 'xdp_sort', '--data', input])
    expect(r.status).toBe(1)
    expect(r.stderr).toContain('is a pcap capture file')
    expect(r.stderr).toContain('--pcap')
    expect(r.stderr).toContain('ebpf filter')
    r = ebpf(['run', object, '--program', 'xdp_sort', '--pcap', input, '--repeat', '3'])
    expect(r.status).toBe(1)
    expect(r.stderr).toContain('--repeat does not go with --pcap')
  })
})

describe('progress on standard error', () => {
  it('--progress always draws the line and erases it; none when stderr is not a terminal', () => {
    let r = ebpf(['filter', object, '--program', 'xdp_sort', input, '--progress', 'always'])
    expect(r.status, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/\r\[#+\.*\] +\d+% \d+ packets/)
    expect(r.stderr.endsWith('\r\x1b[K')).toBe(true)
    r = ebpf(['filter', object, '--program', 'xdp_sort', input])
    expect(r.stderr).toBe('')
    const prog = join(work, 'ret.s')
    writeFileSync(prog, 'r0 = 1\nexit\n')
    r = ebpf(['run', prog, '--repeat', '3000', '--progress', 'always', '--json'])
    expect(r.status, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/\r\[#+\.*\] +\d+% \d+ runs/)
    expect(JSON.parse(r.stdout)).toMatchObject({ retval: 1, repeat: 3000 })
  })

  const hasScript = spawnSync('sh', ['-c', 'command -v script'], { stdio: 'ignore' }).status === 0
  it.skipIf(!hasScript)(
    'auto: a terminal (a pty from script(1)) and a million runs get the line; a pipe does not',
    () => {
      const prog = join(work, 'ret.s')
      writeFileSync(prog, 'r0 = 1\nexit\n')
      const command = `${JSON.stringify(process.execPath)} ${JSON.stringify(bin)} run ${JSON.stringify(prog)} --repeat 1000000`
      const tty = spawnSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8' })
      expect(tty.status, tty.stdout).toBe(0)
      expect(tty.stdout).toMatch(/\r\[[#.]+\] +\d+% \d+ runs, [\d.]+ [kM]? ?runs\/s/)
      expect(tty.stdout).toContain('runs/s\x1b[K')
      expect(tty.stdout).toContain('\r\x1b[Kretval: 1')
      expect(tty.stdout).toContain('(mean of 1000000 runs)')
      const piped = ebpf(['run', prog, '--repeat', '1000000'])
      expect(piped.status).toBe(0)
      expect(piped.stderr).toBe('')
    },
  )
})
