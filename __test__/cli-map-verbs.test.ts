/**
 * `ebpf map dump|lookup|update`: an object's maps offline, as created, filled and after a run.
 * Expected values come from the fixtures' C sources (globals.c's initialisers) and from the live
 * kernel: the same object loaded with bpftool, run on the same packets, its map dumped with
 * `bpftool map dump` and decoded by hand (struct counter { __u64 packets, bytes; } keyed by the
 * IPv4 source address, pkt_counter.c).
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KernelObject, kernelOracle } from './helpers/kernel'
import { ipv4Packet } from './helpers/packets'

const root = join(__dirname, '..')
const bin = join(root, 'bin', 'ebpf.js')
const GLOBALS = join(__dirname, 'fixtures', 'globals.bpf.o')
const COUNTER = join(__dirname, 'fixtures', 'pkt_counter.bpf.o')

let work = ''
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'ebpf-map-verbs-'))
})
afterAll(() => rmSync(work, { recursive: true, force: true }))

function ebpf(args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: work, encoding: 'utf8' })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

const SRC: [number, number, number, number] = [10, 1, 2, 3]
/** The key pkt_counter.c uses: the source address as the packet holds it, read as a little-endian u32. */
const SRC_KEY = SRC[0] | (SRC[1] << 8) | (SRC[2] << 16) | (SRC[3] << 24)

describe('ebpf map dump', () => {
  it("prints global data sections with the C source's initial values", () => {
    const out = ebpf(['map', 'dump', GLOBALS, '--json'])
    expect(out.stderr).toBe('')
    const maps = JSON.parse(out.stdout)
    // globals.c: magic = 0xfeedfacecafebeef, banner = "ebpf-fixture", packets_seen = 7, weights = {1, 2, 4, 8}.
    expect(maps['.rodata'].variables.magic).toBe(BigInt('0xfeedfacecafebeef').toString())
    expect(maps['.rodata'].variables.banner).toBe('ebpf-fixture')
    expect(maps['.data'].variables.packets_seen).toBe(7)
    expect(maps['.rodata.tables'].variables.weights).toEqual([1, 2, 4, 8])
    const only = ebpf(['map', 'dump', GLOBALS, '--map', '.data'])
    expect(only.stdout).toBe('map .data (array):\n  packets_seen = 7\n  last_delta = -1\n  last_tag = "none"\n')
  })

  it('refuses what it cannot do with a message that names it', () => {
    const noMap = ebpf(['map', 'dump', COUNTER, '--map', 'nope'])
    expect(noMap.status).toBe(1)
    expect(noMap.stderr).toContain("no map 'nope'; the object has: counts")
    const noRun = ebpf(['map', 'dump', COUNTER, '--data', 'x.bin'])
    expect(noRun.status).toBe(1)
    expect(noRun.stderr).toContain('--data goes with --run PROG')
    const noKey = ebpf(['map', 'lookup', COUNTER, '--map', 'counts', '--key', '99'])
    expect(noKey.status).toBe(1)
    expect(noKey.stderr).toContain("map 'counts' has no key 99")
    const badValue = ebpf(['map', 'update', COUNTER, '--map', 'counts', '--key', '1', '--value', '{"bogus":1}'])
    expect(badValue.status).toBe(1)
    expect(badValue.stderr).toContain("no member 'bogus'")
  })
})

const oracle = kernelOracle()
describe.skipIf(!oracle.ok)(
  `ebpf map verbs against the kernel${oracle.ok ? '' : ` (skipped: ${oracle.reason})`}`,
  () => {
    let kernel: KernelObject
    beforeAll(() => {
      kernel = KernelObject.load(COUNTER)
    })
    afterAll(() => kernel?.close())

    it('a map after --run holds what the kernel map holds after the same runs', () => {
      const packet = ipv4Packet({ src: SRC, proto: 6, dport: 80, payload: 10 })
      const data = join(work, 'pkt.bin')
      writeFileSync(data, packet)
      kernel.run('xdp_count', packet, 5)
      const entries = kernel.dumpMap('counts')
      expect(entries).toHaveLength(1)
      const key = new DataView(entries[0]!.key.buffer).getUint32(0, true)
      const v = new DataView((entries[0]!.value as Uint8Array).buffer)
      const kernelValue = { packets: Number(v.getBigUint64(0, true)), bytes: Number(v.getBigUint64(8, true)) }
      expect(key).toBe(SRC_KEY)

      const dump = JSON.parse(
        ebpf(['map', 'dump', COUNTER, '--run', 'xdp_count', '--data', data, '--repeat', '5', '--json']).stdout,
      )
      expect(dump.counts.entries).toEqual([{ key: SRC_KEY, value: kernelValue }])
      const lookup = ebpf([
        'map',
        'lookup',
        COUNTER,
        '--map',
        'counts',
        '--key',
        String(SRC_KEY),
        '--run',
        'xdp_count',
        '--data',
        data,
        '--repeat',
        '5',
      ])
      expect(lookup.stdout).toBe(
        `key: ${SRC_KEY}  value: { packets: ${kernelValue.packets}, bytes: ${kernelValue.bytes} }\n`,
      )

      // An entry written first is counted on by the program, in the kernel and here.
      const start = new Uint8Array(16)
      new DataView(start.buffer).setBigUint64(0, 100n, true)
      new DataView(start.buffer).setBigUint64(8, 1000n, true)
      const keyBytes = new Uint8Array(new Uint32Array([SRC_KEY]).buffer)
      kernel.updateMap('counts', keyBytes, start)
      kernel.run('xdp_count', packet, 2)
      const after = new DataView((kernel.dumpMap('counts')[0]!.value as Uint8Array).buffer)
      const expected = { packets: Number(after.getBigUint64(0, true)), bytes: Number(after.getBigUint64(8, true)) }
      const update = JSON.parse(
        ebpf([
          'map',
          'update',
          COUNTER,
          '--map',
          'counts',
          '--key',
          String(SRC_KEY),
          '--value',
          '{"packets":100,"bytes":1000}',
          '--run',
          'xdp_count',
          '--data',
          data,
          '--repeat',
          '2',
          '--json',
        ]).stdout,
      )
      expect(update.counts.entries).toEqual([{ key: SRC_KEY, value: expected }])
    })
  },
)
