/**
 * The XDP firewall fixture end to end: LPM-trie rules and the `.rodata` dry-run switch set from
 * JavaScript, verdicts and counters checked against values worked out by hand from the C source,
 * and against the real kernel where it can be used.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Collection, loadCollectionSpec } from '../ts/index'
import { KernelObject, kernelOracle } from './helpers/kernel'
import { ipv4Packet } from './helpers/packets'

const OBJECT = join(__dirname, 'fixtures', 'xdp_firewall.bpf.o')
const XDP_DROP = 1
const XDP_PASS = 2

const blocked = ipv4Packet({ src: [192, 168, 7, 9] })
const allowed = ipv4Packet({ src: [192, 168, 8, 1] })
const exact = ipv4Packet({ src: [10, 1, 2, 3] })
const ipv6 = ipv4Packet({ ethType: 0x86dd })
const runt = Uint8Array.from(blocked.subarray(0, 20))

async function load(engine: 'interpreter' | 'jit', dryRun = false) {
  const spec = await loadCollectionSpec(OBJECT)
  if (dryRun) spec.variables.get('dry_run')!.set(1)
  const coll = new Collection(spec, { engine })
  const blocklist = coll.maps.get('blocklist')!
  // 192.168.7.0/24 dropped (rule 7), 10.1.2.3/32 passed (rule 9).
  blocklist.update({ prefixlen: 24, addr: [192, 168, 7, 0] }, { hits: 0n, action: XDP_DROP, rule_id: 7 })
  blocklist.update({ prefixlen: 32, addr: [10, 1, 2, 3] }, { hits: 0n, action: XDP_PASS, rule_id: 9 })
  return { coll, fw: coll.programs.get('xdp_firewall')!, blocklist, verdicts: coll.maps.get('verdicts')! }
}

describe('XDP firewall (LPM trie + .rodata switch)', () => {
  for (const engine of ['interpreter', 'jit'] as const) {
    it(`${engine}: drops blocked sources, counts hits and verdicts`, async () => {
      const { fw, blocklist, verdicts } = await load(engine)
      expect(fw.type).toBe('xdp')
      expect(fw.run({ data: blocked }).retval).toBe(XDP_DROP)
      expect(fw.run({ data: blocked }).retval).toBe(XDP_DROP)
      expect(fw.run({ data: allowed }).retval).toBe(XDP_PASS)
      expect(fw.run({ data: exact }).retval).toBe(XDP_PASS)
      expect(fw.run({ data: ipv6 }).retval).toBe(XDP_PASS)
      // Shorter than min_len (34): passed without inspection.
      expect(fw.run({ data: runt }).retval).toBe(XDP_PASS)
      // The packet comes back unchanged.
      expect(fw.run({ data: allowed }).data).toEqual(allowed)
      // Lookups are longest-prefix: both 192.168.7.9 packets matched the /24; 192.168.8.1 matched nothing.
      expect(blocklist.lookup({ prefixlen: 24, addr: [192, 168, 7, 0] })).toEqual({
        hits: 2n,
        action: XDP_DROP,
        rule_id: 7,
      })
      expect(blocklist.lookup({ prefixlen: 32, addr: [10, 1, 2, 3] })).toEqual({
        hits: 1n,
        action: XDP_PASS,
        rule_id: 9,
      })
      // verdicts[XDP_DROP] = 2; verdicts[XDP_PASS] = allowed, exact, ipv6, runt, allowed = 5.
      expect(verdicts.lookup(XDP_DROP)).toBe(2n)
      expect(verdicts.lookup(XDP_PASS)).toBe(5n)
    })

    it(`${engine}: dry_run set in .rodata before load passes everything but still counts hits`, async () => {
      const { coll, fw, blocklist, verdicts } = await load(engine, true)
      expect(coll.variable('dry_run')).toBe(1)
      expect(fw.run({ data: blocked }).retval).toBe(XDP_PASS)
      expect(blocklist.lookup({ prefixlen: 24, addr: [192, 168, 7, 0] })).toEqual({
        hits: 1n,
        action: XDP_DROP,
        rule_id: 7,
      })
      expect(verdicts.lookup(XDP_DROP)).toBe(0n)
      expect(verdicts.lookup(XDP_PASS)).toBe(1n)
    })
  }

  const oracle = kernelOracle()
  it.skipIf(!oracle.ok)(`agrees with the kernel (${oracle.ok ? 'root, bpftool' : oracle.reason})`, async () => {
    const { fw, verdicts } = await load('jit')
    const kernel = KernelObject.load(OBJECT)
    try {
      // Same rules in the kernel's trie: key {prefixlen u32, addr[4]}, value {hits u64, action u32, rule_id u32}.
      kernel.updateMap(
        'blocklist',
        Uint8Array.of(24, 0, 0, 0, 192, 168, 7, 0),
        Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 7, 0, 0, 0),
      )
      kernel.updateMap(
        'blocklist',
        Uint8Array.of(32, 0, 0, 0, 10, 1, 2, 3),
        Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 9, 0, 0, 0),
      )
      for (const pkt of [blocked, allowed, exact, ipv6, runt, blocked]) {
        const k = kernel.run('xdp_firewall', pkt)
        const ours = fw.run({ data: pkt })
        expect(ours.retval).toBe(k.retval)
        expect(ours.data).toEqual(k.data)
      }
      const kernelVerdicts = kernel.dumpMap('verdicts').map((e) => e.value)
      const ourVerdicts = [0, 1, 2, 3].map((i) => {
        const b = new Uint8Array(8)
        new DataView(b.buffer).setBigUint64(0, verdicts.lookup(i) as bigint, true)
        return b
      })
      expect(ourVerdicts).toEqual(kernelVerdicts)
    } finally {
      kernel.close()
    }
  })
})
