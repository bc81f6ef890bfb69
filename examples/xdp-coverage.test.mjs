// A vitest suite for an XDP program, with the C line coverage of its runs written as lcov:
//
//   npm run build && npx vitest run --config examples/vitest.config.mjs
//   genhtml --branch-coverage -o coverage-html xdp-firewall.lcov   # Debian package `lcov`
//
// The program is the XDP firewall of the test fixtures (__test__/fixtures/xdp_firewall.c): it drops
// IPv4 packets whose source matches an LPM-trie rule, and counts verdicts in an array map. The
// collection counts coverage over every run of every test (`coverage: true`); `afterAll` writes
// the tracefile (LCOV_OUT, default xdp-firewall.lcov), naming the C source where it is in this checkout.
import { writeFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeEach, describe, expect, it } from 'vitest'
import { Collection, loadCollectionSpecSync } from '../dist/index.js'

const fixtures = join(fileURLToPath(import.meta.url), '..', '..', '__test__', 'fixtures')
const XDP_DROP = 1
const XDP_PASS = 2
const RULE = { prefixlen: 24, addr: [192, 168, 7, 0] }

/** An Ethernet + IPv4 + UDP frame from `src`, with EtherType `ethType`. */
function packet(src, ethType = 0x0800) {
  const p = new Uint8Array(14 + 20 + 8)
  const v = new DataView(p.buffer)
  v.setUint16(12, ethType)
  p[14] = 0x45
  v.setUint16(16, 28)
  p[23] = 17
  p.set(src, 26)
  p.set([10, 0, 0, 2], 30)
  return p
}

const coll = new Collection(loadCollectionSpecSync(join(fixtures, 'xdp_firewall.bpf.o')), { coverage: true })
const firewall = coll.programs.get('xdp_firewall')
const blocklist = coll.maps.get('blocklist')

describe('xdp_firewall', () => {
  beforeEach(() => {
    blocklist.update(RULE, { hits: 0n, action: XDP_DROP, rule_id: 7 })
  })

  it('drops a blocked source and counts the hit', () => {
    expect(firewall.run({ data: packet([192, 168, 7, 9]) }).retval).toBe(XDP_DROP)
    expect(blocklist.lookup(RULE).hits).toBe(1n)
  })

  it('passes other sources', () => {
    expect(firewall.run({ data: packet([192, 168, 8, 1]) }).retval).toBe(XDP_PASS)
  })

  it('passes frames that are not IPv4', () => {
    expect(firewall.run({ data: packet([192, 168, 7, 9], 0x86dd) }).retval).toBe(XDP_PASS)
  })

  it('passes runts without inspection', () => {
    expect(firewall.run({ data: packet([192, 168, 7, 9]).subarray(0, 20) }).retval).toBe(XDP_PASS)
  })
})

afterAll(() => {
  // BTF names the source where it was compiled; the report names it where it is now.
  const lcov = coll.coverage.toLcov({ testName: 'xdp_firewall', resolve: (file) => join(fixtures, basename(file)) })
  writeFileSync(process.env.LCOV_OUT ?? 'xdp-firewall.lcov', lcov)
})
