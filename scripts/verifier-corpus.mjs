#!/usr/bin/env node
// The verifier agreement corpus's recorder: asks the live kernel's verifier (root) about every
// corpus program and writes __test__/verifier-corpus/verdicts.json, the harness's expected values.
//
//   node scripts/verifier-corpus.mjs --record   load every program into the kernel, write verdicts.json
//   node scripts/verifier-corpus.mjs --check    load every program, compare with verdicts.json (exit 1 on a change)
//   node scripts/verifier-corpus.mjs --disagreements
//                                               run our verifier on every program and rewrite
//                                               disagreements.json (reasons: listed ones kept, new
//                                               ones from reasons.mjs; exit 1 if one is unexplained)
//
// Needs `npm run build` (the assembler comes from dist/), root, cc and libbpf-dev. Nothing is
// attached or pinned: each program is loaded, its fd closed at once.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { release } from 'node:os'
import { assemble } from '../dist/index.js'
import {
  asmPrograms,
  cObjects,
  kernelAsmVerdict,
  kernelObjectVerdicts,
  kernelUnavailable,
  DISAGREEMENTS_FILE,
  VERDICTS_FILE,
} from '../__test__/verifier-corpus/corpus.mjs'
import { difference, ourVerdicts, recordedVerdicts } from '../__test__/verifier-corpus/ours.mjs'
import { reasonFor } from '../__test__/verifier-corpus/reasons.mjs'

/** Our verifier against verdicts.json; rewrites disagreements.json. Needs no kernel. */
async function writeDisagreements() {
  const recorded = recordedVerdicts().programs
  const ours = await ourVerdicts(recorded)
  const listed = existsSync(DISAGREEMENTS_FILE) ? JSON.parse(readFileSync(DISAGREEMENTS_FILE, 'utf8')) : {}
  const out = {}
  let unexplained = 0
  for (const [name, kernel] of Object.entries(recorded)) {
    const kind = difference(kernel, ours[name])
    if (!kind) continue
    const kept = listed[name]?.kind === kind && listed[name].reason !== 'UNEXPLAINED' ? listed[name].reason : null
    const reason = kept ?? reasonFor(name, kind, kernel, ours[name])
    if (!reason) {
      unexplained++
      console.error(`unexplained ${kind}: ${name}: kernel ${kernel.verdict} ${kernel.errno ?? ''} ${kernel.message ?? ''}; ours ${ours[name].verdict} ${ours[name].errno ?? ''} ${ours[name].message ?? ''}`)
    }
    out[name] = { kind, reason: reason ?? 'UNEXPLAINED' }
  }
  writeFileSync(DISAGREEMENTS_FILE, `${JSON.stringify(out, null, 2)}\n`)
  const kinds = Object.values(out).reduce((c, d) => ((c[d.kind] = (c[d.kind] ?? 0) + 1), c), {})
  console.log(`${Object.keys(out).length} disagreements of ${Object.keys(recorded).length} programs: ${JSON.stringify(kinds)}`)
  if (unexplained) process.exitCode = 1
}

const mode = process.argv[2]
if (mode === '--disagreements') {
  await writeDisagreements()
  process.exit(process.exitCode ?? 0)
}
if (mode !== '--record' && mode !== '--check') {
  console.error('usage: node scripts/verifier-corpus.mjs --record | --check | --disagreements')
  process.exit(2)
}
const why = kernelUnavailable()
if (why) {
  console.error(`cannot ask the kernel: ${why}`)
  process.exit(2)
}

const programs = {}
const add = (name, v) => {
  if (programs[name]) throw new Error(`two corpus programs are named ${name} (${programs[name].file}, ${v.file})`)
  programs[name] = v
}
for (const p of await asmPrograms()) add(p.name, kernelAsmVerdict(p, assemble(p.text)))
for (const object of cObjects()) for (const [name, v] of kernelObjectVerdicts(object)) add(name, v)

// A name ends in _ok when the kernel accepts the program and _rej when it rejects it.
const misnamed = Object.entries(programs).filter(
  ([name, v]) => !name.endsWith(v.verdict === 'accepted' ? '_ok' : '_rej'),
)
for (const [name, v] of misnamed) console.error(`misnamed: ${name} is ${v.verdict} ${v.errno ?? ''} ${v.message ?? ''}`)

const sorted = Object.fromEntries(Object.entries(programs).sort(([a], [b]) => (a < b ? -1 : 1)))
const counts = Object.values(sorted).reduce((c, v) => ((c[v.verdict] = (c[v.verdict] ?? 0) + 1), c), {})
console.log(`${Object.keys(sorted).length} programs: ${JSON.stringify(counts)} (kernel ${release()})`)

if (mode === '--record') {
  const file = { kernel: release(), programs: sorted }
  writeFileSync(VERDICTS_FILE, `${JSON.stringify(file, null, 2)}\n`)
  console.log(`wrote ${VERDICTS_FILE}`)
  process.exit(misnamed.length ? 1 : 0)
}
const recorded = JSON.parse(readFileSync(VERDICTS_FILE, 'utf8')).programs
let changed = 0
for (const name of new Set([...Object.keys(recorded), ...Object.keys(sorted)])) {
  const a = recorded[name]
  const b = sorted[name]
  const key = (v) => (v ? `${v.verdict} ${v.errno ?? ''} ${v.message ?? ''}` : 'missing')
  if (key(a) !== key(b)) {
    changed++
    console.log(`${name}: recorded ${key(a)}; kernel now ${key(b)}`)
  }
}
console.log(changed ? `${changed} verdicts differ from verdicts.json` : 'every recorded verdict holds')
process.exit(changed ? 1 : 0)
