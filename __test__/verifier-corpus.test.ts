/**
 * The verifier agreement corpus (issue #9, "Agreement with the kernel"): about 1,400 programs we
 * wrote in assembly (__test__/verifier-corpus/asm/*.mjs) and C (__test__/verifier-corpus/c/*.c),
 * each accepted or rejected by the live Linux 6.18 verifier, whose verdict, errno and rejection
 * line `node scripts/verifier-corpus.mjs --record` stored in verifier-corpus/verdicts.json.
 *
 * Here every program is loaded through the public API in mode 'verified' and our verdict is
 * compared with the kernel's. Where they differ (verdict, errno, or the rejection line), the
 * program must be listed in verifier-corpus/disagreements.json with the reason; the test fails
 * when the actual differences are not exactly the listed ones, both ways: a new difference is a
 * regression or an unexplained gap, a listed one that went away must leave the list
 * (`node scripts/verifier-corpus.mjs --disagreements` rewrites it, keeping the reasons).
 *
 * Where the kernel can be asked (root, cc, libbpf), a sample of the recorded verdicts is checked
 * against it again, so the file cannot drift from the kernel it claims to record.
 */
import { release } from 'node:os'
import { beforeAll, describe, expect, it } from 'vitest'
import { assemble } from '../dist/index.js'
import {
  asmPrograms,
  cObjects,
  kernelAsmVerdict,
  kernelObjectVerdicts,
  kernelUnavailable,
} from './verifier-corpus/corpus.mjs'
import { difference, listedDisagreements, ourVerdicts, recordedVerdicts } from './verifier-corpus/ours.mjs'

interface Verdict {
  verdict: 'accepted' | 'rejected'
  errno?: string
  message?: string
  kind?: 'asm' | 'c'
  file?: string
}
type Kind = 'verdict' | 'errno' | 'message'

const recordedFile = recordedVerdicts() as { kernel: string; programs: Record<string, Verdict> }
const recorded = recordedFile.programs
const names = Object.keys(recorded)
let ours: Record<string, Verdict>

beforeAll(async () => {
  ours = await ourVerdicts(recorded)
}, 120_000)

describe('verifier corpus: the recorded kernel verdicts', () => {
  it('holds at least 600 programs, both verdicts, every program type', async () => {
    expect(names.length).toBeGreaterThanOrEqual(600)
    const verdicts = new Set(names.map((n) => recorded[n]!.verdict))
    expect([...verdicts].sort()).toEqual(['accepted', 'rejected'])
    const asm = await asmPrograms()
    const types = new Set(asm.map((p: { type: string }) => p.type))
    for (const t of ['socket_filter', 'xdp', 'kprobe', 'tracepoint', 'raw_tp']) expect(types.has(t), t).toBe(true)
  })

  it('names say what the kernel does: _ok when it accepts, _rej when it rejects', () => {
    const misnamed = names.filter((n) => !n.endsWith(recorded[n]!.verdict === 'accepted' ? '_ok' : '_rej'))
    expect(misnamed).toEqual([])
  })

  it('every assembly program and C object is recorded, and nothing else', async () => {
    const asm = (await asmPrograms()).map((p: { name: string }) => p.name).sort()
    expect(names.filter((n) => recorded[n]!.kind === 'asm').sort()).toEqual(asm)
    const objects = new Set(names.filter((n) => recorded[n]!.kind === 'c').map((n) => recorded[n]!.file))
    expect([...objects].sort()).toEqual(cObjects())
  })
})

describe('verifier corpus: our verifier against the kernel', () => {
  it('differs from the kernel exactly where disagreements.json says, each with a reason', () => {
    const listed = listedDisagreements() as Record<string, { kind: Kind; reason: string }>
    const actual: Record<string, Kind> = {}
    for (const n of names) {
      const kind = difference(recorded[n]!, ours[n]!) as Kind | null
      if (kind) actual[n] = kind
    }
    const agreeVerdict = names.filter((n) => recorded[n]!.verdict === ours[n]!.verdict).length
    const agreeAll = names.length - Object.keys(actual).length
    const pct = (k: number) => ((100 * k) / names.length).toFixed(1)
    console.log(
      `verifier corpus: ${names.length} programs; verdicts agree ${agreeVerdict} (${pct(agreeVerdict)}%), ` +
        `verdict + errno + message agree ${agreeAll} (${pct(agreeAll)}%)`,
    )
    const show = (n: string) => {
      const k = recorded[n]!
      const o = ours[n]!
      return `${n}: kernel ${k.verdict} ${k.errno ?? ''} ${k.message ?? ''} | ours ${o.verdict} ${o.errno ?? ''} ${o.message ?? ''}`
    }
    const unlisted = Object.keys(actual)
      .filter((n) => listed[n]?.kind !== actual[n])
      .map((n) => `${actual[n]}: ${show(n)}`)
    const gone = Object.keys(listed)
      .filter((n) => actual[n] !== listed[n]!.kind)
      .map((n) => `${n} (listed as ${listed[n]!.kind}, now ${actual[n] ?? 'agrees'})`)
    expect(unlisted, 'differences not in disagreements.json (regressions, or new ones to explain)').toEqual([])
    expect(gone, 'listed differences that are gone: run node scripts/verifier-corpus.mjs --disagreements').toEqual([])
    for (const [n, d] of Object.entries(listed))
      expect(d.reason.length > 20 && d.reason !== 'UNEXPLAINED', n).toBe(true)
  })
})

// About one program in eight, and every C object: a few seconds of kernel loads. Another kernel
// series may legitimately differ (the verdicts are 6.18's): that is a skip, not a failure.
const series = (r: string) => r.split('.').slice(0, 2).join('.')
const why =
  kernelUnavailable() ??
  (series(release()) === series(recordedFile.kernel)
    ? null
    : `this kernel is ${release()}, the verdicts are ${recordedFile.kernel}'s`)
describe('verifier corpus: the live kernel still gives the recorded verdicts', () => {
  it.skipIf(why !== null)(`a sample of the recorded verdicts${why ? ` (skipped: ${why})` : ''}`, async () => {
    const key = (v: Verdict) => `${v.verdict} ${v.errno ?? ''} ${v.message ?? ''}`
    const changed: string[] = []
    const asm = (await asmPrograms()) as { name: string; text: string }[]
    asm.forEach((p, i) => {
      if (i % 8 !== 0) return
      const v = kernelAsmVerdict(p, assemble(p.text)) as Verdict
      if (key(v) !== key(recorded[p.name]!))
        changed.push(`${p.name}: recorded ${key(recorded[p.name]!)}; now ${key(v)}`)
    })
    for (const object of cObjects()) {
      for (const [name, v] of kernelObjectVerdicts(object) as Map<string, Verdict>) {
        const r = recorded[name]
        if (!r || key(v) !== key(r)) changed.push(`${name}: recorded ${r ? key(r) : 'nothing'}; now ${key(v)}`)
      }
    }
    // Builds of one release differ in which helpers they offer a program type (6.18.44-fc-v1300
    // offers XDP no bpf_xdp_adjust_meta, where the recorded build does): on another build, such
    // refusals are reported and left out; on the recorded build every verdict must agree.
    const otherBuild = release() !== recordedFile.kernel
    const unoffered = changed.filter((c) => otherBuild && c.includes('program of this type cannot use helper'))
    if (unoffered.length > 0) console.log(`not compared on ${release()}: ${unoffered.join('; ')}`)
    expect(changed.filter((c) => !unoffered.includes(c))).toEqual([])
  })
})
