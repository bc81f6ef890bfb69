#!/usr/bin/env node
// Differential verdict fuzzing against the kernel (issue #9): mutations of the corpus's accepted
// assembly programs (__test__/verifier-corpus/asm) are loaded into the live kernel and into our
// verifier (mode 'verified'), and the verdicts compared. A program we accept and the kernel
// rejects is a soundness bug until explained; one we reject and the kernel accepts is a gap.
//
//   node scripts/verifier-fuzz.mjs [--programs N] [--seed S] [--out FILE] [--bases REGEX]
//
// --bases: mutate only the accepted programs whose names match (e.g. '^(tc|xdp)_(pkt|meta)_').
//
// Needs `npm run build`, root, cc. Prints the counts, and the kernel's rejection lines for the
// programs we accept and it rejects, by how often they occur; --out writes every disagreement
// (mutated program as text, both verdicts) as JSON. About 10 ms a program, mostly the kernel's.
import { writeFileSync } from 'node:fs'
import { assemble, disassemble } from '../dist/index.js'
import { asmPrograms, kernelAsmVerdict, kernelUnavailable, recordedVerdictsOf } from '../__test__/verifier-corpus/corpus.mjs'
import { ourAsmVerdict } from '../__test__/verifier-corpus/ours.mjs'

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name)
  return i < 0 ? fallback : process.argv[i + 1]
}
const total = Number(arg('--programs', '1000'))
let seed = BigInt(arg('--seed', '1'))
const outFile = arg('--out', undefined)
const why = kernelUnavailable()
if (why) {
  console.error(`cannot ask the kernel: ${why}`)
  process.exit(2)
}

/** splitmix64: a seeded, reproducible stream. */
function next() {
  seed = (seed + 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn
  let z = seed
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & 0xffffffffffffffffn
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & 0xffffffffffffffffn
  return Number((z ^ (z >> 31n)) & 0xffffffffn)
}
const pick = (list) => list[next() % list.length]

// Bases: the programs the kernel accepted, without the long loops (a mutation of those can walk a
// million instructions on both sides).
const recorded = recordedVerdictsOf()
const only = arg('--bases', undefined) ? new RegExp(arg('--bases', undefined)) : null
const bases = (await asmPrograms()).filter(
  (p) =>
    recorded[p.name]?.verdict === 'accepted' &&
    (recorded[p.name].processed ?? 0) < 2000 &&
    (!only || only.test(p.name)),
)

const IMMS = [0, 1, -1, 2, 4, 7, 8, 13, 14, 15, 16, 31, 32, 63, 64, 65, 255, 256, 511, 512, 4096, 0x7fffffff, -8, -64, -512, -520]
const SIZES = [0x00, 0x08, 0x10, 0x18] // BPF_W, BPF_H, BPF_B, BPF_DW in the size bits
const JMP_OPS = [0x10, 0x20, 0x30, 0x50, 0x60, 0x70, 0xa0, 0xb0, 0xc0, 0xd0] // jeq..jsle (not ja/call/exit)
const ALU_OPS = [0x00, 0x10, 0x20, 0x40, 0x50, 0x60, 0x70, 0x80, 0xa0, 0xb0, 0xc0] // add..arsh, no div/mod/end

/** One random change to one instruction; never to either slot of an lddw. */
function mutate(bytes) {
  const out = Uint8Array.from(bytes)
  const view = new DataView(out.buffer)
  const slots = []
  for (let i = 0; i < out.length / 8; i++) {
    if (out[i * 8] === 0x18) {
      i++
      continue
    }
    slots.push(i)
  }
  const at = pick(slots) * 8
  const op = out[at]
  const cls = op & 7
  const kind = next() % 7
  if (kind === 0) view.setInt32(at + 4, pick(IMMS), true)
  else if (kind === 1 && (cls === 5 || cls === 6)) {
    // Jump offsets move forward only: a new back-edge makes an endless loop that both verifiers
    // walk for a million instructions, which would be most of the run's time.
    const off = view.getInt16(at + 2, true)
    if (off >= 0) view.setInt16(at + 2, off + pick([1, 1, 2, 3]), true)
  } else if (kind === 1) view.setInt16(at + 2, view.getInt16(at + 2, true) + pick([-8, -4, -2, -1, 1, 2, 4, 8]), true)
  else if (kind === 2) out[at + 1] = (out[at + 1] & 0xf0) | next() % 11
  else if (kind === 3) out[at + 1] = (out[at + 1] & 0x0f) | ((next() % 11) << 4)
  else if (kind === 4 && (cls === 1 || cls === 2 || cls === 3)) out[at] = (op & ~0x18) | pick(SIZES)
  else if (kind === 5 && (cls === 5 || cls === 6) && (op & 0xf0) !== 0 && (op & 0xf0) < 0x80) out[at] = (op & 0x0f) | pick(JMP_OPS)
  else if (kind === 5 && (cls === 4 || cls === 7)) out[at] = (op & 0x0f) | pick(ALU_OPS)
  else view.setInt32(at + 4, view.getInt32(at + 4, true) + pick([-1, 1, -8, 8]), true)
  return out
}

const counts = { programs: 0, bothAccept: 0, bothReject: 0, oursOnlyAccepts: 0, kernelOnlyAccepts: 0, notLoadable: 0 }
const unsound = new Map()
const gaps = new Map()
const found = []
const start = Date.now()
while (counts.programs < total) {
  const base = pick(bases)
  let bytes = assemble(base.text)
  const rounds = 1 + (next() % 3)
  for (let r = 0; r < rounds; r++) bytes = mutate(bytes)
  let kernel
  try {
    kernel = kernelAsmVerdict(base, bytes)
  } catch {
    counts.notLoadable++ // kernel_load refused its arguments (a map index out of range)
    continue
  }
  const ours = ourAsmVerdict(base, bytes)
  counts.programs++
  if (kernel.verdict === ours.verdict) counts[kernel.verdict === 'accepted' ? 'bothAccept' : 'bothReject']++
  else {
    const weAccept = ours.verdict === 'accepted'
    counts[weAccept ? 'oursOnlyAccepts' : 'kernelOnlyAccepts']++
    const key = weAccept ? kernel.message.replace(/\d+/g, 'N') : ours.message.replace(/\d+/g, 'N')
    const tally = weAccept ? unsound : gaps
    tally.set(key, (tally.get(key) ?? 0) + 1)
    found.push({ base: base.name, type: base.type, kernel, ours, text: disassemble(bytes) })
  }
  if (counts.programs % 1000 === 0) console.error(`${counts.programs} programs, ${((Date.now() - start) / 1000).toFixed(0)} s`)
}
console.log(JSON.stringify({ seed: arg('--seed', '1'), bases: bases.length, ...counts }))
const top = (m) => [...m].sort((a, b) => b[1] - a[1]).slice(0, 25)
console.log('we accept, the kernel rejects (kernel rejection line, numbers as N):')
for (const [k, n] of top(unsound)) console.log(`  ${n}  ${k}`)
console.log('we reject, the kernel accepts (our rejection line):')
for (const [k, n] of top(gaps)) console.log(`  ${n}  ${k}`)
if (outFile) writeFileSync(outFile, `${JSON.stringify(found, null, 2)}\n`)
