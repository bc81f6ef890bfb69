/**
 * tc programs against the Linux kernel: every program of `fixtures/tc_skb.c` gets the same seeded
 * packets here (both engines) and in the kernel (BPF_PROG_TEST_RUN through bpftool, as a
 * `sched_cls` program); return values, output packets and, when a context image goes in, the
 * `__sk_buff` that comes back must be equal. The programs read what the test run computes (len,
 * protocol, pkt_type, ifindex, wire_len), write tc's writable fields and the packet directly, and
 * call the checksum, store, resize, VLAN, hash, ECN and redirect helpers, leaving what they saw
 * and what the helpers returned in `cb[]`. Inputs the kernel refuses (shorter than an Ethernet
 * header, longer than 3,712 bytes) must be refused here too.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Collection, loadCollectionSpec } from '../ts/index'
import { KernelObject, type KernelRun, kernelOracle } from './helpers/kernel'
import { ipv4Packet } from './helpers/packets'

const OBJECT = join(__dirname, 'fixtures', 'tc_skb.bpf.o')
const PROGRAMS = ['tc_fields', 'tc_nat', 'tc_resize', 'tc_vlan', 'tc_misc']
const PACKETS = 100

function rng(seed: number) {
  let x = seed
  return () => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return x >>> 0
  }
}

/** A destination MAC: the loopback's (zeros), broadcast, a group address or a unicast one. */
function dest(next: () => number): number[] {
  switch (next() % 4) {
    case 0:
      return [0, 0, 0, 0, 0, 0]
    case 1:
      return [0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
    case 2:
      return [0x01, 0x00, 0x5e, 0, 0, next() & 0xff]
    default:
      return [0x02, 0, 0, 0, 0, next() & 0xff]
  }
}

/** IPv4 (TCP, UDP, ICMP; ECN bits varied), IPv6, VLAN-tagged IPv4, other ethertypes, 802.3 frames. */
function packets(seed: number): Uint8Array[] {
  const next = rng(seed)
  return Array.from({ length: PACKETS }, () => {
    const kind = next() % 10
    let p: Uint8Array
    if (kind < 5) {
      p = ipv4Packet({
        src: [10, 0, next() % 3, 1 + (next() % 4)],
        dst: [192, 168, 7, next() % 4],
        proto: [6, 17, 1][next() % 3]!,
        sport: next() % 65536,
        dport: [53, 80, 443, 8080][next() % 4]!,
        payload: next() % 200,
      })
      p[15] = next() & 0xff // TOS, ECN bits included
      p[24] = next() & 0xff // header checksum
      p[25] = next() & 0xff
    } else if (kind < 7) {
      p = Uint8Array.from({ length: 54 + (next() % 80) }, () => next() & 0xff)
      p.set([0x86, 0xdd], 12)
      p[14] = 0x60 | (p[14]! & 0x0f)
    } else if (kind === 7) {
      const inner = ipv4Packet({ sport: next() % 65536, payload: next() % 40 })
      p = new Uint8Array(inner.length + 4)
      p.set(inner.subarray(0, 12))
      p.set([0x81, 0x00, next() & 0x0f, next() & 0xff], 12)
      p.set(inner.subarray(12), 16)
    } else {
      p = Uint8Array.from({ length: 14 + (next() % 100) }, () => next() & 0xff)
      if (kind === 8) p.set([0x05, 0xdc], 12) // an 802.3 length
    }
    p.set(dest(next), 0)
    return p
  })
}

/** A context image the kernel's test run accepts: mark, priority, cb[], tstamp, ifindex 0 or 1. */
function context(next: () => number): Uint8Array {
  const ctx = new Uint8Array(192)
  const v = new DataView(ctx.buffer)
  v.setUint32(8, next(), true) // mark
  v.setUint32(32, next(), true) // priority
  v.setUint32(36, next() % 8, true) // ingress_ifindex
  v.setUint32(40, next() % 2, true) // ifindex
  for (let i = 0; i < 5; i++) v.setUint32(48 + 4 * i, next(), true) // cb[]
  v.setBigUint64(152, BigInt(next()) << 8n, true) // tstamp
  return ctx
}

function kernelRun(kernel: KernelObject, program: string, p: Uint8Array, ctx?: Uint8Array) {
  try {
    return kernel.run(program, p, 1, ctx)
  } catch (e) {
    return { error: String((e as { stderr?: string }).stderr ?? e) }
  }
}

const oracle = kernelOracle()

describe(`tc programs against the kernel (${oracle.ok ? 'root, bpftool' : `skipped: ${oracle.reason}`})`, () => {
  for (const program of PROGRAMS) {
    it.skipIf(!oracle.ok)(program, async () => {
      const kernel = KernelObject.load(OBJECT)
      try {
        const spec = await loadCollectionSpec(OBJECT)
        const ours = (['interpreter', 'jit'] as const).map(
          (engine) => new Collection(spec, { engine }).programs.get(program)!,
        )
        expect(ours[0]!.type).toBe('tc')
        const next = rng(program.length * 977)
        const seq = packets(program.length * 31)
        seq.push(new Uint8Array(13), new Uint8Array(3712).fill(0x45), new Uint8Array(3713))
        for (const [i, p] of seq.entries()) {
          const ctx = next() % 2 ? context(next) : undefined
          const k: KernelRun | { error: string } = kernelRun(kernel, program, p, ctx)
          for (const prog of ours) {
            const what = `${prog.engine}, packet ${i} (${p.length} bytes${ctx ? ', ctx' : ''})`
            if ('error' in k) {
              expect(k.error, what).toMatch(/Invalid argument/)
              expect(() => prog.run({ data: p, ctx }), what).toThrow(expect.objectContaining({ code: 'EINVAL' }))
              continue
            }
            const r = prog.run({ data: p, ctx })
            expect([i, r.retval], what).toEqual([i, k.retval])
            expect(r.data, `${what}: data`).toEqual(k.data)
            if (ctx) expect(r.ctx, `${what}: ctx`).toEqual(k.ctx)
            expect(r.redirect !== undefined, `${what}: redirect`).toBe(program === 'tc_misc' && r.retval === 7)
          }
        }
      } finally {
        kernel.close()
      }
    })
  }
})
