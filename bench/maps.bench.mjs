// Map and ring-buffer throughput, from JavaScript and from programs (issue #5's figures).
// Run after `npm run build`:  node bench/maps.bench.mjs
// Peers in the same run: a JavaScript `Map` for the JavaScript-side operations.
import { createRequire } from 'node:module'
import { Bench } from 'tinybench'

const require = createRequire(import.meta.url)
const { assemble, BpfMap, Program } = require('../dist')

const N = 1024
const key = (i) => {
  const b = new Uint8Array(4)
  new DataView(b.buffer).setUint32(0, i, true)
  return b
}
const keys = Array.from({ length: N }, (_, i) => key(i))
const value = new Uint8Array(8)

const hash = new BpfMap({ type: 'hash', keySize: 4, valueSize: 8, maxEntries: N })
const jsMap = new Map()
for (let i = 0; i < N; i++) {
  hash.update(keys[i], value)
  jsMap.set(i, value)
}

// A program that looks up (and on the second variant updates) `iterations` keys of maps[0].
const LOOKUPS = 1000
const lookupLoop = assemble(`
    r6 = 0
loop:
    if r6 >= ${LOOKUPS} goto done
    r1 = r6
    r1 &= ${N - 1}
    *(u32 *)(r10 - 4) = r1
    r1 = map[0] ll
    r2 = r10
    r2 += -4
    call 1
    r6 += 1
    goto loop
done:
    r0 = 0
    exit
`)
const updateLoop = assemble(`
    r6 = 0
    *(u64 *)(r10 - 16) = 7
loop:
    if r6 >= ${LOOKUPS} goto done
    r1 = r6
    r1 &= ${N - 1}
    *(u32 *)(r10 - 4) = r1
    r1 = map[0] ll
    r2 = r10
    r2 += -4
    r3 = r10
    r3 += -16
    r4 = 0
    call 2
    r6 += 1
    goto loop
done:
    r0 = 0
    exit
`)
// Emits `RECORDS` 8-byte records into a ring buffer with bpf_ringbuf_output.
const RECORDS = 200
const ring = new BpfMap({ type: 'ringbuf', keySize: 0, valueSize: 0, maxEntries: 1 << 16 })
const emit = assemble(`
    r6 = 0
loop:
    if r6 >= ${RECORDS} goto done
    *(u64 *)(r10 - 8) = r6
    r1 = map[0] ll
    r2 = r10
    r2 += -8
    r3 = 8
    r4 = 0
    call 130
    r6 += 1
    goto loop
done:
    r0 = 0
    exit
`)

const bench = new Bench({ time: 1000, warmupTime: 200 })
let i = 0
bench
  .add('JS: BpfMap.lookup (hash, 4-byte key)', () => {
    hash.lookup(keys[i++ & (N - 1)])
  })
  .add('JS peer: Map.get', () => {
    jsMap.get(i++ & (N - 1))
  })
  .add('JS: BpfMap.update (hash, existing key)', () => {
    hash.update(keys[i++ & (N - 1)], value)
  })
  .add('JS peer: Map.set', () => {
    jsMap.set(i++ & (N - 1), value)
  })
for (const engine of ['interpreter', 'jit']) {
  const lookup = new Program({ instructions: lookupLoop, maps: [hash], engine })
  const update = new Program({ instructions: updateLoop, maps: [hash], engine })
  const producer = new Program({ instructions: emit, maps: [ring], engine })
  bench
    .add(`program (${engine}): ${LOOKUPS} x bpf_map_lookup_elem`, () => {
      lookup.run()
    })
    .add(`program (${engine}): ${LOOKUPS} x bpf_map_update_elem`, () => {
      update.run()
    })
    .add(`ringbuf (${engine}): ${RECORDS} records produced and drained in JS`, () => {
      producer.run()
      if (ring.drainRecords().length !== RECORDS) throw new Error('lost records')
    })
}

await bench.run()
const rows = bench.tasks.map((t) => {
  const mean = t.result.latency?.mean ?? t.result.mean // ms
  const per = t.name.startsWith('program') ? LOOKUPS : t.name.startsWith('ringbuf') ? RECORDS : 1
  return { task: t.name, 'ns/op': ((mean * 1e6) / per).toFixed(1), 'Mops/s': (per / (mean * 1e3)).toFixed(2) }
})
console.table(rows)
