/**
 * Perf event output with the packet sample (`bpf_perf_event_output` with packet bytes asked for in
 * the upper 32 bits of the flags: the kernel's `bpf_xdp_event_output` and `bpf_skb_event_output`)
 * read through `PerfBuffer`, against the kernel: fixtures/perf_sample.c test-run in the kernel by
 * helpers/perf_sample_run.c, which reads the records with libbpf's `perf_buffer`. Compared: each
 * run's return value and each record's bytes as libbpf hands them to its sample callback (the
 * kernel pads a raw sample so that its 4-byte size and data end on 8 bytes). Skipped, saying why,
 * without root, cc or libbpf. The expected values are worked by hand (a 4-byte tag, the packet
 * bytes, zeros up to the kernel's raw-sample size; -EFAULT past the packet, -EINVAL for a stray
 * flag bit), and the kernel's runs must give them too (they did on Linux 6.18).
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { Collection, loadCollectionSpec, PerfBuffer } from '../ts/index'
import { kernelOracle } from './helpers/kernel'

const fixture = join(__dirname, 'fixtures', 'perf_sample.bpf.o')
const ENGINES = ['interpreter', 'jit'] as const
const oracle = kernelOracle()

/** A 60-byte frame: bytes 14-15 the sample length asked for (LE), 16 the stray flag, then 17, 18, ... */
function packet(n: number, strayFlag = 0): Uint8Array {
  const b = new Uint8Array(60)
  b.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0, n & 0xff, n >> 8, strayFlag])
  for (let i = 17; i < 60; i++) b[i] = i
  return b
}

const PACKETS = [packet(0), packet(14), packet(60), packet(61), packet(3, 1)]
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')
/** The tag the program writes first: 0xfeed0000 | n, little-endian. */
const tag = (n: number) => hex(Uint8Array.of(n & 0xff, n >> 8, 0xed, 0xfe))

/** What a run gives: the return value and the samples' bytes (CPUs are not compared: the kernel's is whichever ran it). */
interface Outcome {
  retval: number
  samples: string[]
}

/** By hand: a tag, the first n packet bytes, zeros up to (4 + 4 + n) rounded up to 8, less the size word. */
function expected(n: number, strayFlag: number): Outcome {
  if (strayFlag) return { retval: 2 ** 32 - 22, samples: [] } // -EINVAL: a bit outside every mask
  if (n > 60) return { retval: 2 ** 32 - 14, samples: [] } // -EFAULT: more than the packet
  const raw = Math.ceil((4 + 4 + n) / 8) * 8 - 4
  const bytes = new Uint8Array(raw)
  bytes.set(packet(n, strayFlag).subarray(0, n), 4)
  return { retval: 0, samples: [tag(n) + hex(bytes.subarray(4))] }
}

const HAND = PACKETS.map((p) => expected(p[14]! | (p[15]! << 8), p[16]!))

async function ours(program: string, engine: (typeof ENGINES)[number]): Promise<Outcome[]> {
  const coll = new Collection(await loadCollectionSpec(fixture), { engine })
  const pb = new PerfBuffer(coll.maps.get('events')!, { pageCount: 8 })
  try {
    return PACKETS.map((data) => {
      const retval = coll.programs.get(program)!.run({ data }).retval
      const samples = pb.read().map((e) => (e.type === 'sample' ? hex(e.data) : `lost ${e.count}`))
      return { retval, samples }
    })
  } finally {
    pb.close()
  }
}

const scratch = mkdtempSync(join(tmpdir(), 'ebpf-perf-sample-'))
/** The compiled helpers/perf_sample_run.c, or why the kernel cannot be asked. */
const runner = ((): { exe: string } | { reason: string } => {
  if (!oracle.ok) return { reason: oracle.reason }
  const exe = join(scratch, 'perf_sample_run')
  try {
    execFileSync('cc', ['-O1', '-o', exe, join(__dirname, 'helpers', 'perf_sample_run.c'), '-lbpf'], { stdio: 'pipe' })
  } catch (e) {
    return { reason: `cannot build helpers/perf_sample_run.c with cc and libbpf: ${(e as Error).message}` }
  }
  return { exe }
})()

function kernelRuns(exe: string, program: string): Outcome[] {
  const out = execFileSync(exe, [fixture, program, ...PACKETS.map(hex)], { encoding: 'utf8' })
  const runs: Outcome[] = []
  for (const line of out.trim().split('\n')) {
    const [what, a, b] = line.split(' ')
    if (what === 'retval') runs.push({ retval: Number(a), samples: [] })
    else runs.at(-1)!.samples.push(what === 'sample' ? b! : `lost ${b}`)
  }
  return runs
}
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

for (const program of ['xdp_sample', 'tc_sample']) {
  describe(`${program}: packet samples into a perf event array`, () => {
    for (const engine of ENGINES) {
      it(`${engine}: records and results as worked by hand`, async () => {
        expect(await ours(program, engine)).toEqual(HAND)
      })
    }
    const why = 'reason' in runner ? runner.reason : 'root, cc, libbpf'
    it.skipIf('reason' in runner)(`the kernel's test runs read by libbpf's perf_buffer agree (${why})`, async () => {
      if (!('exe' in runner)) return
      const kernel = kernelRuns(runner.exe, program)
      expect(kernel).toEqual(HAND)
      expect(await ours(program, 'jit')).toEqual(kernel)
      expect(await ours(program, 'interpreter')).toEqual(kernel)
    })
  })
}
