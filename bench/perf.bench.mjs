// Perf event buffer throughput: records a program outputs with bpf_perf_event_output into a
// perf event array, read in JavaScript with a PerfBuffer. Peer in the same run: the same records
// through a ring buffer (bpf_ringbuf_output, drainRecords()).
// Run after `npm run build`:  node bench/perf.bench.mjs
import { createRequire } from 'node:module'
import { Bench } from 'tinybench'

const require = createRequire(import.meta.url)
const { assemble, BpfMap, PerfBuffer, Program, possibleCpus } = require('../dist')

const RECORDS = 200
const loop = (call) =>
  assemble(`
    r7 = r1
    r6 = 0
loop:
    if r6 >= ${RECORDS} goto done
    *(u64 *)(r10 - 8) = r6
${call}
    r6 += 1
    goto loop
done:
    r0 = 0
    exit
`)
const perfOut = loop(`
    r1 = r7
    r2 = map[0] ll
    r3 = 0xffffffff ll
    r4 = r10
    r4 += -8
    r5 = 8
    call 25`)
const ringOut = loop(`
    r1 = map[0] ll
    r2 = r10
    r2 += -8
    r3 = 8
    r4 = 0
    call 130`)

const events = new BpfMap({ type: 'perf_event_array', keySize: 4, valueSize: 4, maxEntries: possibleCpus() })
const pb = new PerfBuffer(events, { pageCount: 64 })
const ring = new BpfMap({ type: 'ringbuf', keySize: 0, valueSize: 0, maxEntries: 1 << 18 })
const ctx = new Uint8Array(8)

const bench = new Bench({ time: 1000, warmupTime: 200 })
for (const engine of ['interpreter', 'jit']) {
  const perf = new Program({ type: 'tracing', instructions: perfOut, maps: [events], engine })
  const rb = new Program({ type: 'tracing', instructions: ringOut, maps: [ring], engine })
  bench
    .add(`perf (${engine}): ${RECORDS} records output and read with PerfBuffer.read()`, () => {
      perf.run({ ctx })
      if (pb.read().length !== RECORDS) throw new Error('lost records')
    })
    .add(`peer ringbuf (${engine}): ${RECORDS} records output and drained`, () => {
      rb.run({ ctx })
      if (ring.drainRecords().length !== RECORDS) throw new Error('lost records')
    })
}
await bench.run()
pb.close()
console.table(
  bench.tasks.map((t) => {
    const mean = t.result.latency?.mean ?? t.result.mean // ms
    return {
      task: t.name,
      'ns/record': ((mean * 1e6) / RECORDS).toFixed(1),
      'records/s (M)': (RECORDS / (mean * 1e3)).toFixed(2),
    }
  }),
)
