#!/usr/bin/env node
// Verification of the fixture objects, ours against the kernel's, for issue #9's Performance
// bullet (BENCHMARKS.md "Verification of the fixture programs"):
//
//   node bench/verify.bench.mjs [ROUNDS]      # root, bpftool, `npm run build` first
//
// Kernel: `bpftool -d prog loadall OBJ DIR` (libbpf's debug output carries each program's log with
// BPF_LOG_STATS: `verification time N usec` and `processed N insns ...`), pinned into a fresh
// directory of the bpf filesystem that is removed at once; ROUNDS loads, the median time per
// program. Ours: `new Collection(spec, { mode: 'verified', programs: [name] })`, ROUNDS loads,
// the median of `verifierStats.verificationTimeNs` (the verifier alone, analysis and relocation
// excluded, as the kernel's figure is its `do_check` time). Both columns take turns per round.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { Collection, loadCollectionSpecSync } from '../dist/index.js'
import { VERIFIED_FIXTURES as OBJECTS } from '../__test__/helpers/verifier-fixtures.mjs'

const ROUNDS = Number(process.argv[2] ?? 9)
const FIXTURES = new URL('../__test__/fixtures/', import.meta.url).pathname

const bpffs = readFileSync('/proc/mounts', 'utf8')
  .split('\n')
  .map((l) => l.split(' '))
  .find((f) => f[2] === 'bpf')?.[1]
if (process.getuid?.() !== 0 || !bpffs) {
  console.error('needs root and a mounted bpf filesystem')
  process.exit(2)
}

/** One kernel load of the object: program -> { us, processed }. */
function kernelRound(file) {
  const dir = mkdtempSync(join(bpffs, 'ebpf-verify-bench-'))
  let out
  try {
    const r = spawnSync('bpftool', ['-d', 'prog', 'loadall', file, join(dir, 'progs')], {
      encoding: 'utf8',
      maxBuffer: 1 << 28,
    })
    out = `${r.stdout ?? ''}${r.stderr ?? ''}`
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  const figures = new Map()
  for (const m of out.matchAll(/prog '([^']+)': -- BEGIN PROG LOAD LOG --\n([\s\S]*?)-- END PROG LOAD LOG --/g)) {
    const time = /^verification time (\d+) usec$/m.exec(m[2])
    const processed = /^processed (\d+) insns/m.exec(m[2])
    if (time && processed) figures.set(m[1], { us: Number(time[1]), processed: Number(processed[1]) })
  }
  return figures
}

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1]

const rows = []
for (const object of OBJECTS) {
  const file = join(FIXTURES, `${object}.bpf.o`)
  const spec = loadCollectionSpecSync(file)
  const kernel = new Map()
  const ours = new Map()
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, f] of kernelRound(file)) {
      if (!kernel.has(name)) kernel.set(name, { us: [], processed: f.processed })
      kernel.get(name).us.push(f.us)
    }
    for (const name of spec.programs.keys()) {
      const s = new Collection(spec, { mode: 'verified', programs: [name] }).programs.get(name).verifierStats
      if (!ours.has(name)) ours.set(name, { us: [], processed: s.processedInsns, peak: s.peakStates })
      ours.get(name).us.push(s.verificationTimeNs / 1000)
    }
  }
  for (const [name, k] of kernel) {
    const o = ours.get(name)
    if (!o) continue
    rows.push({ program: `${object}/${name}`, o, k, ous: median(o.us), kus: median(k.us) })
  }
}

console.log(
  '| program | processed (ours / kernel) | ours us | kernel us | ours / kernel | ns per insn (ours / kernel) |',
)
console.log('| --- | --- | --- | --- | --- | --- |')
let sumO = 0
let sumK = 0
let insnO = 0
let insnK = 0
for (const r of rows) {
  sumO += r.ous
  sumK += r.kus
  insnO += r.o.processed
  insnK += r.k.processed
  const ratio = r.kus > 0 ? (r.ous / r.kus).toFixed(2) : '-'
  const per = (us, n) => ((us * 1000) / n).toFixed(0)
  console.log(
    `| ${r.program} | ${r.o.processed} / ${r.k.processed} | ${r.ous.toFixed(1)} | ${r.kus} | ${ratio} | ${per(r.ous, r.o.processed)} / ${per(r.kus, r.k.processed)} |`,
  )
}
const processedRatios = rows.map((r) => r.o.processed / r.k.processed)
console.log(
  `\n${rows.length} programs, ${ROUNDS} rounds: total ${sumO.toFixed(0)} us ours, ${sumK} us kernel (${(sumO / sumK).toFixed(2)}x); ` +
    `${insnO} / ${insnK} instructions processed; per instruction ${((sumO * 1000) / insnO).toFixed(0)} ns ours, ` +
    `${((sumK * 1000) / insnK).toFixed(0)} ns kernel; processed ratio per program ${Math.min(...processedRatios).toFixed(2)}-${Math.max(...processedRatios).toFixed(2)}`,
)
