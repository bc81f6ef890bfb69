// Our verifier's verdict on each corpus program, through the public API in mode 'verified': an
// assembly program as `new Program({ type, instructions, maps, mode: 'verified' })`, a C program as
// `new Collection(spec, { mode: 'verified', programs: [name] })` (libbpf's autoload, one program).
// Shared by the harness (__test__/verifier-corpus.test.ts) and `scripts/verifier-corpus.mjs`.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { assemble, BpfMap, Collection, EbpfError, loadCollectionSpecSync, Program } from '../../dist/index.js'
import {
  asmPrograms,
  CORPUS_DIR,
  DISAGREEMENTS_FILE,
  OUR_ATTACH_TYPE,
  OUR_PROG_TYPE,
  rejectionLine,
  VERDICTS_FILE,
} from './corpus.mjs'

/** verdicts.json: { kernel, programs: { name: { kind, file, verdict, errno?, message?, ... } } } */
export function recordedVerdicts() {
  return JSON.parse(readFileSync(VERDICTS_FILE, 'utf8'))
}

/** disagreements.json: { name: { kind: 'verdict' | 'errno' | 'message', reason } } */
export function listedDisagreements() {
  return JSON.parse(readFileSync(DISAGREEMENTS_FILE, 'utf8'))
}

/**
 * Our verdict from a load: accepted, or rejected with the error's code and the rejection line.
 * Every EbpfError counts as a rejection (the validator's, a map type we lack), as the kernel's
 * refusals of every kind do; the message is taken from the verifier's log like the kernel's, and
 * from the error's first line when there is no log.
 */
function verdictOf(load) {
  try {
    load()
    return { verdict: 'accepted' }
  } catch (e) {
    if (!(e instanceof EbpfError)) throw e
    const message = typeof e.log === 'string' && e.log !== '' ? rejectionLine(e.log) : e.message.split('\n')[0]
    return { verdict: 'rejected', errno: e.code, message, error: e.name }
  }
}

/** Our verdict on one assembly program (`{ type, maps }` as asm/*.mjs give them) of these bytes. */
export function ourAsmVerdict(program, bytes) {
  return verdictOf(() => {
    const maps = program.maps.map((m) => new BpfMap(m))
    new Program({
      type: OUR_PROG_TYPE[program.type],
      expectedAttachType: OUR_ATTACH_TYPE[program.type],
      instructions: bytes,
      maps,
      mode: 'verified',
    })
  })
}

/** Our verdict on every recorded program: name -> { verdict, errno?, message?, error? }. */
export async function ourVerdicts(recorded) {
  const out = {}
  const asm = new Map((await asmPrograms()).map((p) => [p.name, p]))
  const specs = new Map()
  for (const [name, r] of Object.entries(recorded)) {
    if (r.kind === 'asm') {
      const p = asm.get(name)
      if (!p) throw new Error(`verdicts.json names ${name}, which no asm/*.mjs file defines`)
      out[name] = ourAsmVerdict(p, assemble(p.text))
    } else {
      if (!specs.has(r.file)) specs.set(r.file, loadCollectionSpecSync(join(CORPUS_DIR, r.file)))
      const spec = specs.get(r.file)
      out[name] = verdictOf(() => new Collection(spec, { mode: 'verified', programs: [name] }))
    }
  }
  return out
}

/**
 * How our verdict differs from the kernel's, or null when it agrees: `verdict` (accepted vs
 * rejected), `errno` (both reject, with another errno), `message` (same errno, another line).
 */
export function difference(kernel, ours) {
  if (kernel.verdict !== ours.verdict) return 'verdict'
  if (kernel.verdict === 'accepted') return null
  if (kernel.errno !== ours.errno) return 'errno'
  if (kernel.message !== ours.message) return 'message'
  return null
}
