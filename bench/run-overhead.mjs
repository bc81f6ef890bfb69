// The cost of `program.run()` from JavaScript on a trivial program (`mov r0, 0; exit`), next to a
// no-op N-API call (the `engine` getter of the native program object), on both engines.
//
//   npm run build && node bench/run-overhead.mjs
//
// Each timed task makes INNER calls, so the timer's own cost (tens of nanoseconds) does not
// dominate; figures are per call. Prints a table and the ratios BENCHMARKS.md records.
import { Bench } from 'tinybench'
import { Program } from '../dist/index.js'

const INNER = 1000
// mov r0, 0 ; exit
const TRIVIAL = new Uint8Array([0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0])

const programs = {
  interpreter: new Program({ type: 'raw', instructions: TRIVIAL, engine: 'interpreter' }),
  jit: new Program({ type: 'raw', instructions: TRIVIAL, engine: 'jit' }),
}
for (const [name, p] of Object.entries(programs)) {
  if (p.engine !== name) throw new Error(`asked for ${name}, got ${p.engine}`)
  if (p.run().r0 !== 0n) throw new Error(`${name}: r0 is not 0`)
}

let sink = 0
const bench = new Bench({ time: 2000, warmupTime: 500 })
bench.add('no-op napi call (native.engine)', () => {
  const n = programs.interpreter.native
  for (let i = 0; i < INNER; i++) sink += n.engine.length
})
bench.add('program.run() interpreter', () => {
  const p = programs.interpreter
  for (let i = 0; i < INNER; i++) sink += p.run().retval
})
bench.add('program.run() jit', () => {
  const p = programs.jit
  for (let i = 0; i < INNER; i++) sink += p.run().retval
})
// With data, each run also returns a private copy of it (a new ArrayBuffer per call).
const DATA = new Uint8Array(64)
bench.add('program.run({ data: 64 bytes }) interpreter', () => {
  const p = programs.interpreter
  for (let i = 0; i < INNER; i++) sink += p.run({ data: DATA }).retval
})
bench.add('empty JS loop (reference)', () => {
  for (let i = 0; i < INNER; i++) sink += i & 1
})

await bench.run()
const perCall = {}
const rows = bench.tasks.map((t) => {
  const r = t.result
  const median = (r.latency.p50 * 1e6) / INNER
  const mean = (r.latency.mean * 1e6) / INNER
  perCall[t.name] = median
  return {
    task: t.name,
    'median ns/call': median.toFixed(1),
    'mean ns/call': mean.toFixed(1),
    samples: r.latency.samplesCount,
  }
})
console.table(rows)
const noop = perCall['no-op napi call (native.engine)']
for (const e of ['interpreter', 'jit', '{ data: 64 bytes }) interpreter']) {
  const run = perCall[e.startsWith('{') ? `program.run(${e}` : `program.run() ${e}`]
  console.log(
    `run() overhead, ${e}: ${run.toFixed(1)} ns = ${(run / noop).toFixed(2)}x a no-op napi call (${noop.toFixed(1)} ns)`,
  )
}
if (sink === 0.5) console.log(sink)
