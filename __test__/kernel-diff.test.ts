/**
 * Differential test against the Linux kernel: every XDP and tc program of the fixtures that the
 * kernel loads gets the same sequence of random packets here (both engines) and in the kernel
 * (BPF_PROG_TEST_RUN through bpftool); verdicts and output packets must be equal. Each side starts
 * from a freshly loaded object, so map state evolves the same way on both. XDP programs also get
 * runts (fewer than 14 bytes, which the kernel's test run refuses with EINVAL, and so must we) and
 * packets longer than the 3,520-byte linear part (the rest in fragments).
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Collection, loadCollectionSpec } from '../ts/index'
import { KernelObject, type KernelRun, kernelOracle } from './helpers/kernel'
import { ipv4Packet } from './helpers/packets'

const PROGRAMS: Array<[fixture: string, program: string]> = [
  ['xdp_firewall', 'xdp_firewall'],
  ['pkt_counter', 'xdp_count'],
  ['pkt_counter', 'tc_count'],
  ['bpf_loop', 'xdp_loop_sum'],
  ['globals', 'xdp_globals'],
  ['map_in_map', 'xdp_tenant_count'],
  ['ringbuf', 'xdp_sample'],
  ['ringbuf', 'xdp_sample_copy'],
  ['subprogs', 'xdp_bucket'],
  ['subprogs', 'xdp_fold_only'],
  ['tail_calls', 'dispatch'],
  ['all_maps', 'all_maps'],
  ['xdp_frags', 'xdp_frags'],
  ['redirect', 'xdp_redirect'],
]
const PACKETS = 40

function rng(seed: number) {
  let x = seed
  return () => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return x >>> 0
  }
}

/** IPv4 of a few protocols and addresses (so that map entries repeat), other ethertypes, runts. */
function packets(seed: number): Uint8Array[] {
  const next = rng(seed)
  return Array.from({ length: PACKETS }, () => {
    const kind = next() % 10
    if (kind < 6) {
      return ipv4Packet({
        src: [10, 0, next() % 3, 1 + (next() % 4)],
        dst: [192, 168, 7, next() % 4],
        proto: [6, 17, 1][next() % 3]!,
        sport: next() % 65536,
        dport: [53, 80, 443, 8080][next() % 4]!,
        payload: next() % 200,
      })
    }
    const len = kind < 8 ? 14 + (next() % 60) : 60 + (next() % 100)
    const p = Uint8Array.from({ length: len }, () => next() & 0xff)
    if (kind === 8) p.set([0x86, 0xdd], 12)
    return p
  })
}

/** XDP only: runts the kernel refuses and packets that go on in fragments, in a seeded order. */
function xdpExtremes(seed: number): Uint8Array[] {
  const next = rng(seed)
  const lengths = [0, 13, 3520, 3521, 4000, 8000, 3521 + (next() % 20000), next() % 14, 7616, 9000]
  return lengths.map((len) => Uint8Array.from({ length: len }, () => next() & 0xff))
}

/** The kernel's test run of one packet, or the error bpftool reported. */
function kernelRun(kernel: KernelObject, program: string, p: Uint8Array): KernelRun | { error: string } {
  try {
    return kernel.run(program, p)
  } catch (e) {
    return { error: String((e as { stderr?: string }).stderr ?? e) }
  }
}

const oracle = kernelOracle()

describe(`our engines against the kernel (${oracle.ok ? 'root, bpftool' : `skipped: ${oracle.reason}`})`, () => {
  for (const [fixture, program] of PROGRAMS) {
    it.skipIf(!oracle.ok)(`${fixture}/${program}`, async () => {
      const object = join(__dirname, 'fixtures', `${fixture}.bpf.o`)
      const kernel = KernelObject.load(object)
      try {
        const ours = await Promise.all(
          (['interpreter', 'jit'] as const).map(
            async (engine) => new Collection(await loadCollectionSpec(object), { engine }).programs.get(program)!,
          ),
        )
        const seed = fixture.length * 31 + program.length
        const seq = packets(seed)
        if (ours[0]!.type === 'xdp') seq.push(...xdpExtremes(seed))
        for (const [i, p] of seq.entries()) {
          const k = kernelRun(kernel, program, p)
          for (const prog of ours) {
            if ('error' in k) {
              // Only the XDP runts: the kernel's EINVAL is ours.
              expect(k.error, `packet ${i} (${p.length} bytes)`).toMatch(/Invalid argument/)
              expect(p.length).toBeLessThan(14)
              expect(() => prog.run({ data: p }), `${prog.engine}, packet ${i}`).toThrow(
                expect.objectContaining({ code: 'EINVAL', kind: 'invalid_input' }),
              )
              continue
            }
            const r = prog.run({ data: p })
            expect([i, r.retval], `${prog.engine}, packet ${i}`).toEqual([i, k.retval])
            expect(r.data, `${prog.engine}, packet ${i} data`).toEqual(k.data)
            // A run that ends in XDP_REDIRECT after bpf_redirect says where the packet went.
            if (program === 'xdp_redirect') expect(r.redirect !== undefined).toBe(r.retval === 4)
          }
        }
      } finally {
        kernel.close()
      }
    })
  }
})

describe('objects with the less common map types', () => {
  it('more_maps (bloom filter, devmap, queue, stack, per-CPU LRU, NUMA hash) loads every map', async () => {
    // The devmap was refused (ENOTSUPP) until devmaps came (issue #13); bpftool map list on the
    // object gives these types (BPF_MAP_TYPE_DEVMAP is 14, BLOOM_FILTER 30).
    const spec = await loadCollectionSpec(join(__dirname, 'fixtures', 'more_maps.bpf.o'))
    const coll = new Collection(spec)
    expect(coll.maps.get('ports')?.type).toBe(14)
    expect(coll.maps.get('seen')?.type).toBe(30)
  })
})
