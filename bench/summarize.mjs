// Turns criterion's estimates (target/criterion/<group>/<engine>/new/estimates.json, written by
// `cargo bench -p ebpf-vm --bench engines` and `--bench compile`) into the Markdown tables of
// BENCHMARKS.md: times per engine, then ratios, with the median over programs.
//
//   node bench/summarize.mjs [target/criterion]
//
// Times are criterion's median estimates. A ratio `a / b` reads "a takes that many times as long
// as b"; a ratio "x faster" is the other engine's time over ours.
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

const dir = process.argv[2] ?? join(import.meta.dirname, '..', 'target', 'criterion')
const PROGRAMS = ['sieve', 'memcopy', 'strcmp', 'dispatch', 'parse', 'big']
const ENGINES = ['native', 'ebpf_jit', 'ebpf_interp', 'rbpf_jit', 'rbpf_interp']

function estimate(group, engine) {
  const file = join(dir, group, engine, 'new', 'estimates.json')
  if (!existsSync(file)) return undefined
  return JSON.parse(readFileSync(file, 'utf8')).median.point_estimate // nanoseconds
}

function time(ns) {
  if (ns === undefined) return 'n/a'
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(2)} µs`
  return `${ns.toFixed(1)} ns`
}

function ratio(a, b) {
  return a === undefined || b === undefined ? undefined : a / b
}

function fmt(r) {
  return r === undefined ? 'n/a' : `${r.toFixed(2)}x`
}

function median(xs) {
  const v = xs.filter((x) => x !== undefined).sort((a, b) => a - b)
  if (v.length === 0) return undefined
  const m = Math.floor(v.length / 2)
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2
}

const t = Object.fromEntries(PROGRAMS.map((p) => [p, Object.fromEntries(ENGINES.map((e) => [e, estimate(p, e)]))]))

console.log(`| program | ${ENGINES.join(' | ')} |`)
console.log(`|${' --- |'.repeat(ENGINES.length + 1)}`)
for (const p of PROGRAMS) console.log(`| ${p} | ${ENGINES.map((e) => time(t[p][e])).join(' | ')} |`)
console.log()

const RATIOS = [
  ['ebpf_jit / native', (x) => ratio(x.ebpf_jit, x.native)],
  ['ebpf_interp / native', (x) => ratio(x.ebpf_interp, x.native)],
  ['ebpf_jit faster than rbpf_jit', (x) => ratio(x.rbpf_jit, x.ebpf_jit)],
  ['ebpf_interp faster than rbpf_interp', (x) => ratio(x.rbpf_interp, x.ebpf_interp)],
]
console.log(`| program | ${RATIOS.map(([n]) => n).join(' | ')} |`)
console.log(`|${' --- |'.repeat(RATIOS.length + 1)}`)
for (const p of PROGRAMS) console.log(`| ${p} | ${RATIOS.map(([, f]) => fmt(f(t[p]))).join(' | ')} |`)
console.log(`| **median** | ${RATIOS.map(([, f]) => fmt(median(PROGRAMS.map((p) => f(t[p]))))).join(' | ')} |`)
console.log()

const COMPILE = ['ebpf_jit', 'ebpf_interp', 'rbpf_jit', 'rbpf_interp']
console.log(`| load/compile | ${COMPILE.join(' | ')} | ebpf_jit / rbpf_jit |`)
console.log(`|${' --- |'.repeat(COMPILE.length + 2)}`)
for (const g of ['compile_big', 'compile_parse']) {
  const x = Object.fromEntries(COMPILE.map((e) => [e, estimate(g, e)]))
  console.log(`| ${g} | ${COMPILE.map((e) => time(x[e])).join(' | ')} | ${fmt(ratio(x.ebpf_jit, x.rbpf_jit))} |`)
}
