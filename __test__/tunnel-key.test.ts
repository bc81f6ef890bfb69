/**
 * `bpf_skb_get_tunnel_key` and `bpf_skb_set_tunnel_key` (tc), through `fixtures/tunnel_key.c`, a
 * program that sets and reads tunnel metadata as its packet says and copies what get wrote into
 * the packet.
 *
 * Oracles: the kernel's BPF_PROG_TEST_RUN of the same object, recorded in
 * `fixtures/tunnel_key.kernel.txt` (156 runs: every flag bit of set and get, every size of the
 * struct's layouts and sizes it refuses, IPv6, a label without the IPv6 flag, a non-zero
 * `tunnel_ext`, get without metadata) and, as root, asked again here; the kernel's test run gives
 * a packet no tunnel metadata, so the runs with metadata from `RunOptions.tunnel` are worked by
 * hand from net/core/filter.c (`bpf_skb_get_tunnel_key`: remote from the outer source, host-order
 * IPv4 addresses, `tunnel_id` a __u32).
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Collection, loadCollectionSpec, type Program } from '../ts/index'
import { KernelObject, kernelOracle } from './helpers/kernel'

const OBJECT = join(__dirname, 'fixtures', 'tunnel_key.bpf.o')
const RECORDED = readFileSync(join(__dirname, 'fixtures', 'tunnel_key.kernel.txt'), 'utf8')
  .split('\n')
  .filter((l) => l && !l.startsWith('#'))

const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex')

/** The keys set_tunnel_key reads (struct bpf_tunnel_key, 48 bytes given), as the recording used them. */
function keys(): Record<string, Uint8Array> {
  const k = new Uint8Array(48)
  const v = new DataView(k.buffer)
  v.setUint32(0, 0x11223344, true) // tunnel_id
  v.setUint32(4, 0x0a000001, true) // remote_ipv4 10.0.0.1
  k[20] = 0x10 // tos
  k[21] = 64 // ttl
  v.setUint32(28, 0xc0a80001, true) // local_ipv4 192.168.0.1
  const k6 = Uint8Array.from({ length: 48 }, (_, i) => i + 1)
  k6[22] = 0
  k6[23] = 0
  const kl = k.slice()
  new DataView(kl.buffer).setUint32(24, 0xfff12345, true) // tunnel_label
  const ke = k.slice()
  ke[22] = 1 // tunnel_ext
  return { k, k6, kl, ke }
}

/** The 128-byte packet of a case: bytes 14-19 drive the program, 20-67 are the key. */
function packet(ops: number[], key: Uint8Array): Uint8Array {
  const p = new Uint8Array(128)
  p.set([2, 0, 0, 0, 0, 1], 6)
  p.set([0x88, 0xb5], 12)
  p.set(ops, 14)
  p.set(key, 20)
  return p
}

async function programs(): Promise<Program[]> {
  const spec = await loadCollectionSpec(OBJECT)
  return (['interpreter', 'jit'] as const).map((engine) => new Collection(spec, { engine }).programs.get('tunnel_key')!)
}

/** get_tunnel_key of a packet that did not set any: size (0 means 44) and flags. */
const getOnly = (size: number, flags: number) => packet([0, 0, 0, 1, size, flags], new Uint8Array(48))

describe('bpf_skb_set_tunnel_key / bpf_skb_get_tunnel_key', () => {
  it('return and write what the kernel does (recorded test runs, both engines)', async () => {
    const ks = keys()
    expect(RECORDED.length).toBe(156)
    for (const prog of await programs()) {
      for (const line of RECORDED) {
        const [key, ...f] = line.split(' ')
        const ops = f.slice(0, 6).map(Number)
        const r = prog.run({ data: packet(ops, ks[key!]!) })
        expect([line, r.retval, toHex(r.data.subarray(72, 120))], prog.engine).toEqual([line, Number(f[6]), f[7]])
      }
    }
  })

  const oracle = kernelOracle()
  it.skipIf(!oracle.ok)(`the recording is the running kernel's (${oracle.ok ? 'root' : oracle.reason})`, () => {
    const kernel = KernelObject.load(OBJECT)
    try {
      const ks = keys()
      for (const line of RECORDED.filter((_, i) => i % 4 === 0)) {
        const [key, ...f] = line.split(' ')
        const k = kernel.run('tunnel_key', packet(f.slice(0, 6).map(Number), ks[key!]!))
        expect([line, k.retval, toHex(k.data.subarray(72, 120))]).toEqual([line, Number(f[6]), f[7]])
      }
    } finally {
      kernel.close()
    }
  })

  it('reports what the program set, remote as the outer destination', async () => {
    const ks = keys()
    for (const prog of await programs()) {
      const set = prog.run({ data: packet([1, 0, 0x04 | 0x08, 0, 0, 0], ks.k!) })
      expect(set.retval).toBe(0)
      // flags: DONT_FRAGMENT 0x100 and SEQ 0x8 asked, NOCACHE 0x2000, CSUM 0x1 and KEY 0x4 by default.
      expect(set.tunnel).toEqual({
        id: 0x11223344n,
        remote: '10.0.0.1',
        local: '192.168.0.1',
        tos: 0x10,
        ttl: 64,
        label: 0,
        flags: 0x2000 | 0x100 | 0x8 | 0x4 | 0x1,
      })
      const v6 = prog.run({ data: packet([1, 0, 1, 0, 0, 0], ks.kl!) })
      expect(v6.tunnel).toMatchObject({
        remote: '100:a::',
        local: '100:a8c0::',
        label: 0x12345,
        flags: 0x2005,
      })
      expect(prog.run({ data: packet([1, 0, 0x20, 0, 0, 0], ks.k!) }).tunnel, 'refused flags').toBeUndefined()
      expect(prog.run({ data: getOnly(0, 0) }).tunnel, 'nothing set').toBeUndefined()
    }
  })

  it('reads the metadata the packet arrived with (worked by hand from net/core/filter.c)', async () => {
    const v4 = { id: 0x1_0000_00abn, remote: '10.1.2.3', local: '192.168.0.9', tos: 0x28, ttl: 63, flags: 0x0004 }
    const v6 = { id: 7, remote: 'fd00::1', local: 'fd00::2', ttl: 1, label: 0x12345, flags: 0x2005 }
    const zeros = (n: number) => '00'.repeat(n)
    const aa = (n: number) => 'aa'.repeat(n)
    for (const prog of await programs()) {
      const get = (tunnel: object, size: number, flags: number) => {
        const r = prog.run({ data: getOnly(size, flags), tunnel })
        return [r.retval >> 8, toHex(r.data.subarray(72, 120))]
      }
      // tunnel_id: the low 32 bits; remote_ipv4 0x0a010203 and local_ipv4 0xc0a80009 in host order.
      const ipv4 = `ab000000${'0302010a'}${zeros(12)}283f0000${zeros(4)}0900a8c0${zeros(12)}`
      expect(get(v4, 0, 0)).toEqual([0, `${ipv4}${aa(4)}`])
      // BPF_F_TUNINFO_FLAGS: TUNNEL_KEY big-endian in tunnel_flags.
      expect(get(v4, 0, 0x10)).toEqual([0, `${ipv4.slice(0, 44)}0004${ipv4.slice(48)}${aa(4)}`])
      // The oldest layout (8 bytes, IPv4 only) and the IPv6 flag on IPv4 metadata (-EPROTO).
      expect(get(v4, 8, 0)).toEqual([0, `ab0000000302010a${aa(40)}`])
      expect(get(v4, 0, 1)).toEqual([0xb9, `${zeros(44)}${aa(4)}`])
      expect(get(v4, 48, 0)).toEqual([0xea, zeros(48)])
      // IPv6: addresses as they are, the label in host order; the 8-byte layout refused.
      const fd = (last: number) => `fd00${zeros(13)}${last.toString(16).padStart(2, '0')}`
      const ipv6 = `07000000${fd(1)}00010000${'45230100'}${fd(2)}`
      expect(get(v6, 0, 1)).toEqual([0, `${ipv6}${aa(4)}`])
      expect(get(v6, 0, 0x11)).toEqual([0, `${ipv6.slice(0, 44)}2005${ipv6.slice(48)}${aa(4)}`])
      expect(get(v6, 8, 1)).toEqual([0xea, `${zeros(8)}${aa(40)}`])
      expect(get(v6, 0, 0)).toEqual([0xb9, `${zeros(44)}${aa(4)}`])
      // The batch forms give every packet the metadata.
      const batch = prog.runBatch([getOnly(0, 0), getOnly(8, 0x10)], { tunnel: v4 })
      expect(batch.map((b) => b.ok && [b.retval, toHex(b.data.subarray(72, 80))])).toEqual([
        [0, 'ab0000000302010a'],
        [0, 'ab0000000302010a'],
      ])
      // A set replaces it; a later get reads what was set (remote and local swapped).
      const r = prog.run({ data: packet([1, 0, 0, 1, 0, 0], keys().k!), tunnel: v6 })
      expect([r.retval, toHex(r.data.subarray(72, 76))]).toEqual([0, '44332211'])
    }
  })

  it('refuses malformed tunnel options', async () => {
    const [prog] = await programs()
    const bad = (tunnel: unknown) => () => prog!.run({ data: getOnly(0, 0), tunnel: tunnel as never })
    expect(bad({ remote: 'nope' })).toThrow(/tunnel.remote must be an IPv4 or IPv6 address/)
    expect(bad({ remote: '10.0.0.1', local: 'fd00::1' })).toThrow(/not of tunnel.remote's family/)
    expect(bad({ remote: '10.0.0.1', label: 1 })).toThrow(/IPv4 metadata has none/)
    expect(bad({ remote: 'fd00::1', label: 0x100000 })).toThrow(/tunnel.label must be at most 1048575/)
    expect(bad({ remote: '10.0.0.1', ttl: 256 })).toThrow(/tunnel.ttl must be at most 255/)
    expect(bad({ remote: '10.0.0.1', id: -1 })).toThrow(expect.objectContaining({ code: 'EINVAL' }))
  })
})
