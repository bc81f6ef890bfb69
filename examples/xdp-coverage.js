// Unit-test an XDP program and measure which of its C lines the tests ran:
//
//   npm run build && node examples/xdp-coverage.js [OUT.lcov]
//   genhtml --branch-coverage -o coverage-html xdp-firewall.lcov   # Debian package `lcov`
//
// The program is the XDP firewall of the test fixtures (__test__/fixtures/xdp_firewall.c): it drops
// IPv4 packets whose source matches an LPM-trie rule, and counts verdicts in an array map. Each
// check below is one test; the collection counts coverage over all their runs (`coverage: true`),
// and the lcov tracefile names the C source where it is in this checkout.
const assert = require('node:assert/strict')
const { writeFileSync } = require('node:fs')
const { basename, join } = require('node:path')
const { Collection, loadCollectionSpecSync } = require('../dist')

const fixtures = join(__dirname, '..', '__test__', 'fixtures')
const XDP_DROP = 1
const XDP_PASS = 2

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

const spec = loadCollectionSpecSync(join(fixtures, 'xdp_firewall.bpf.o'))
const coll = new Collection(spec, { coverage: true })
const firewall = coll.programs.get('xdp_firewall')
const blocklist = coll.maps.get('blocklist')
blocklist.update({ prefixlen: 24, addr: [192, 168, 7, 0] }, { hits: 0n, action: XDP_DROP, rule_id: 7 })

const tests = {
  'drops a blocked source and counts the hit': () => {
    assert.equal(firewall.run({ data: packet([192, 168, 7, 9]) }).retval, XDP_DROP)
    assert.equal(blocklist.lookup({ prefixlen: 24, addr: [192, 168, 7, 0] }).hits, 1n)
  },
  'passes other sources': () => {
    assert.equal(firewall.run({ data: packet([192, 168, 8, 1]) }).retval, XDP_PASS)
  },
  'passes frames that are not IPv4': () => {
    assert.equal(firewall.run({ data: packet([192, 168, 7, 9], 0x86dd) }).retval, XDP_PASS)
  },
  'passes runts without inspection': () => {
    assert.equal(firewall.run({ data: packet([192, 168, 7, 9]).subarray(0, 20) }).retval, XDP_PASS)
  },
}
for (const [name, test] of Object.entries(tests)) {
  test()
  console.log(`ok - ${name}`)
}

const coverage = coll.coverage
// BTF names the source where it was compiled; the report names it where it is now.
const lcov = coverage.toLcov({ testName: 'xdp_firewall', resolve: (file) => join(fixtures, basename(file)) })
const out = process.argv[2] ?? 'xdp-firewall.lcov'
writeFileSync(out, lcov)
const lines = coverage.lines()
const hit = lines.filter((l) => l.hits > 0).length
console.log(`${out}: ${hit} of ${lines.length} lines of xdp_firewall.c run`)
for (const l of lines.filter((l) => l.hits === 0)) console.log(`  not run: line ${l.line}`)
