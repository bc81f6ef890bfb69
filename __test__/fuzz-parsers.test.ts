/**
 * Seeded fuzzing of the parsers (issue #11 §7): the BTF parser with its raw and C dumps,
 * declarations and codecs on mutated fixture blobs and on generated ones; the assembler on
 * mutated real listings and random token soup; the disassembler on random bytes. (ELF objects
 * through loadCollectionSpec: elf-mutation.test.ts; bytecode through the engines:
 * fuzz-api.test.ts.) Any untyped error, unexpected code, changed round trip or output over its
 * limit is a failure naming the seed and case; see helpers/fuzz-runner.ts for the long runs.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { readElf } from '../ts/binary/elf.js'
import { disassemble, loadCollectionSpecSync } from '../ts/index.js'
import { BtfBuilder, type MemberSpec, nestedUnions } from './helpers/btf-builder.js'
import { conformanceSuiteExists, loadConformanceSuite } from './helpers/conformance.js'
import { fuzz, fuzzTimeoutMs } from './helpers/fuzz-runner.js'
import type { Random } from './helpers/random.js'

const fixtures = join(__dirname, 'fixtures')
const objects = readdirSync(fixtures).filter((f) => f.endsWith('.bpf.o'))

// ---- BTF ------------------------------------------------------------------------------------

/** The .BTF sections of the fixtures, plus two hostile blobs: the seeds of the mutations. */
const btfCorpus: Uint8Array[] = [
  ...objects.flatMap((f) => {
    const sec = readElf(new Uint8Array(readFileSync(join(fixtures, f)))).sectionByName('.BTF')
    return sec ? [sec.data.slice()] : []
  }),
  nestedUnions(8),
]

const INTERESTING = [
  0, 1, 2, 3, 4, 7, 8, 0x7f, 0x80, 0xff, 0xffff, 0xffffff, 0x1000000, 0x7fffffff, 0x80000000, 0xffffffff,
]

/** A fixture blob with one or two changes: bytes, whole words, header fields, truncation, splices. */
function mutatedBtf(r: Random): Uint8Array {
  const b = r.pick(btfCorpus).slice()
  const view = new DataView(b.buffer)
  const typeEnd = Math.min(b.length, 24 + view.getUint32(12, true))
  for (let n = 1 + r.below(2); n > 0; n--) {
    const word = 4 * r.below(Math.max(1, Math.floor((typeEnd - 4) / 4)))
    switch (r.below(6)) {
      case 0: {
        const at = r.below(4) === 0 ? r.below(b.length) : r.below(typeEnd)
        b[at] = r.below(3) === 0 ? r.pick([0, 0xff]) : b[at]! ^ (1 << r.below(8))
        break
      }
      case 1:
        if (word + 4 <= b.length) view.setUint32(word, r.pick(INTERESTING), true)
        break
      case 2:
        // A type's info word: kind, kind_flag and vlen are what parsers trust most.
        if (word + 4 <= b.length)
          view.setUint32(word, view.getUint32(word, true) ^ r.pick([0x80000000, 0x1000000, 1, 0xffff]), true)
        break
      case 3:
        view.setUint32(4 * (2 + r.below(4)), r.pick(INTERESTING), true)
        break
      case 4:
        return b.slice(0, r.below(b.length))
      default: {
        // Copy one stretch of types over another.
        const len = 4 * (1 + r.below(16))
        const from = 24 + 4 * r.below(Math.max(1, (typeEnd - 24) / 4))
        const to = 24 + 4 * r.below(Math.max(1, (typeEnd - 24) / 4))
        b.copyWithin(to, from, Math.min(from + len, typeEnd))
      }
    }
  }
  return b
}

const NAMES = ['', '', '', 'a', 'b', 'x', 'x___2', 'same', 'int', 'top', '__builtin_va_list', 'n'.repeat(300)]

/** A blob of 1 to 40 random types: every kind, references mostly backwards, layouts sane or wild. */
function generatedBtf(r: Random): Uint8Array {
  const b = new BtfBuilder()
  const n = 1 + r.below(40)
  // Mostly types that exist already; now and then a forward, self or missing reference.
  const ref = () => (r.below(8) === 0 ? r.below(b.nextId + 3) : r.below(b.nextId))
  const name = () => r.pick(NAMES)
  const members = (): MemberSpec[] => {
    const count = r.below(10) === 0 ? 200 : r.below(6)
    const wild = r.below(4) === 0
    let bit = 0
    return Array.from({ length: count }, () => {
      const bitfield = r.below(4) === 0 ? 1 + r.below(40) : undefined
      const bitOffset = wild ? r.u32() & 0xffffff : bit
      bit += bitfield ?? 8 * r.pick([1, 2, 4, 8])
      return { name: name(), type: ref(), bitOffset, bitfieldSize: bitfield }
    })
  }
  for (let i = 0; i < n; i++) {
    // One blob in six or so gets the hostile nesting (it is slow by design: it runs to the limits).
    switch (r.below(15 + (r.below(40) === 0 ? 1 : 0))) {
      case 0:
        b.int(r.pick(['int', 'char', 'long', 'bool', '_Bool']), r.pick([1, 2, 4, 8, 16]), r.below(2) === 0)
        break
      case 1:
        b.ptr(ref())
        break
      case 2:
        b.typedef(name(), ref())
        break
      case 3:
        b.const(ref())
        break
      case 4:
        b.volatile(ref())
        break
      case 5:
        b.array(ref(), r.pick([0, 1, 2, 7, 64, 0xffff, 0xffffffff]))
        break
      case 6:
      case 7:
        b.struct(name(), r.pick([0, 1, 4, 8, 16, 64, 0x200000, 0xffffffff]), members())
        break
      case 8:
        b.union(name(), r.pick([0, 4, 8, 64]), members())
        break
      case 9:
        b.enum(
          name(),
          r.pick([1, 2, 4, 8]),
          Array.from({ length: r.below(5) }, () => [r.pick(NAMES) || 'E', r.u32()] as [string, number]),
        )
        break
      case 10:
        b.fwd(name(), r.below(2) === 0)
        break
      case 11:
        b.funcProto(
          ref(),
          Array.from({ length: r.below(4) }, () => [name(), ref()] as [string, number]),
        )
        break
      case 12:
        b.func(name(), ref())
        break
      case 13:
        b.var(name(), ref())
        break
      case 14:
        b.datasec(
          r.pick(['.data', '.bss', name()]),
          r.pick([0, 8, 64]),
          Array.from({ length: r.below(4) }, () => ({ type: ref(), offset: r.below(80), size: r.pick([0, 4, 8]) })),
        )
        break
      default: {
        // Anonymous unions nested in themselves: the C dump's exponential case.
        let inner = ref()
        for (let d = r.below(40); d > 0; d--) {
          inner = b.union(
            '',
            4,
            [0, 1, 2].map(() => ({ name: '', type: inner, bitOffset: 0 })),
          )
        }
        b.struct(name(), 4, [{ name: 'x', type: inner, bitOffset: 0 }])
      }
    }
  }
  return b.build()
}

// ---- assembler and disassembler -------------------------------------------------------------

/** Real listings: every fixture program disassembled in both dialects, and the conformance suite. */
const asmCorpus: string[] = [
  ...objects.flatMap((f) => {
    try {
      const spec = loadCollectionSpecSync(new Uint8Array(readFileSync(join(fixtures, f))))
      return [...spec.programs.values()].flatMap((p) => [
        disassemble(p.instructions),
        disassemble(p.instructions, { dialect: 'conformance' }),
      ])
    } catch {
      return [] // objects that need a kernel BTF for CO-RE
    }
  }),
  ...(conformanceSuiteExists() ? loadConformanceSuite().map((c) => c.asm) : []),
]

const FRAGMENTS = [
  'r0',
  'w1',
  '%r2',
  'r11',
  '=',
  '+=',
  's>>=',
  's<',
  '*',
  '(',
  'u32',
  ')',
  '[',
  ']',
  '+',
  '-',
  '0x10',
  '5',
  'll',
  'goto',
  'if',
  'lock',
  'call',
  'local',
  'exit',
  'mov',
  'ldxw',
  'lddw',
  'jeq',
  ',',
  'skb',
  'atomic_fetch_add',
  'xchg_64',
  'cmpxchg_64',
  '(s8)',
  'be16',
  '<',
  '>',
  ':',
  'label',
  'fetch',
  'add32',
  '.8byte',
  'pc',
  'gotol',
  'callx',
  '0xffffffffffffffffff',
  '-0x8000',
  '#',
  ';',
  '\t',
  'constructor',
  '__proto__',
  'toString',
  '<L1>',
  'L1:',
  '+32767',
  '-32769',
  'map[0]',
  'map_value[1]',
  'bpf_map_lookup_elem#1',
  '12: (b7)',
  '0000000000000000 <prog>:',
]

/** One line of random fragments (the token soup of the old asm.test round trip). */
const soup = (r: Random): string => {
  let text = ''
  for (let k = 1 + r.below(10); k > 0; k--) text += r.pick(FRAGMENTS) + (r.below(2) ? ' ' : '')
  return text
}

/** A listing with one to three line or token changes, or a line of soup. */
function mutatedAsm(r: Random): string {
  if (asmCorpus.length === 0 || r.below(3) === 0) return soup(r)
  const lines = r.pick(asmCorpus).split('\n')
  for (let n = 1 + r.below(3); n > 0; n--) {
    // A one-line listing whose line an earlier change removed (found by the long run).
    if (lines.length === 0) lines.push('')
    const i = r.below(lines.length)
    const line = lines[i]!
    switch (r.below(7)) {
      case 0:
        lines.splice(i, 1)
        break
      case 1:
        lines.splice(r.below(lines.length), 0, line)
        break
      case 2:
        lines[i] = lines[r.below(lines.length)]!
        break
      case 3: {
        const tokens = line.split(/(\s+|,)/)
        tokens[r.below(tokens.length)] = r.pick(FRAGMENTS)
        lines[i] = tokens.join('')
        break
      }
      case 4:
        lines[i] = line.replace(/-?(0x[0-9a-f]+|\d+)/i, () =>
          r.pick(['0', '-1', '0x7fffffff', '-0x80000000', '65536', '0xffffffffffffffff']),
        )
        break
      case 5: {
        const at = r.below(line.length + 1)
        lines[i] = line.slice(0, at) + String.fromCharCode(32 + r.below(95)) + line.slice(at)
        break
      }
      default:
        lines[i] = soup(r)
    }
  }
  return lines.join('\n')
}

/** Bytecode-like bytes: mostly small registers and zero fields so that many slots are canonical. */
function randomBytecode(r: Random): Uint8Array {
  const slots = 1 + r.below(12)
  const b = new Uint8Array(slots * 8 + (r.below(10) === 0 ? 1 + r.below(7) : 0))
  const view = new DataView(b.buffer)
  for (let i = 0; i + 8 <= b.length; i += 8) {
    b[i] = r.u32() & 0xff
    b[i + 1] = r.below(4) === 0 ? r.u32() & 0xff : (r.below(11) | ((r.below(11) << 4) * r.below(2))) & 0xff
    view.setUint16(i + 2, r.below(3) === 0 ? r.u32() & 0xffff : r.below(3) === 0 ? r.below(8) : 0, true)
    view.setUint32(i + 4, r.below(3) === 0 ? r.u32() : r.pick([0, 1, 16, 32, 64, 0xe1, 0xf1, 0x41]), true)
  }
  return b
}

describe('parser fuzzing (seeded; EBPF_FUZZ_LONG=1 for the long run)', () => {
  it(
    'BTF: mutated fixture blobs through parse, dumps, declarations and codecs',
    async () => {
      expect(btfCorpus.length).toBeGreaterThan(10)
      const s = await fuzz('btf-mutated', 'btf', 400, mutatedBtf)
      expect(s.accepted).toBeGreaterThan(s.cases / 20)
      expect(Object.keys(s.codes)).toContain('EINVAL')
    },
    fuzzTimeoutMs(120_000),
  )

  it(
    'BTF: generated blobs of every kind, hostile nesting included',
    async () => {
      const s = await fuzz('btf-generated', 'btf', 400, generatedBtf)
      expect(s.accepted).toBeGreaterThan(s.cases / 3)
      expect(Object.keys(s.codes)).toEqual(expect.arrayContaining(['EINVAL', 'E2BIG']))
    },
    fuzzTimeoutMs(120_000),
  )

  it(
    'assembler: mutated listings and token soup give AssembleError or bytes that round-trip',
    async () => {
      expect(asmCorpus.length).toBeGreaterThan(20)
      const s = await fuzz('asm', 'asm', 5000, mutatedAsm)
      expect(s.accepted).toBeGreaterThan(s.cases / 10)
      expect(s.cases - s.accepted).toBeGreaterThan(s.cases / 10)
    },
    fuzzTimeoutMs(120_000),
  )

  it(
    'disassembler: random bytes print as text that reads back to them (both dialects)',
    async () => {
      const s = await fuzz('disasm', 'disasm', 1000, randomBytecode)
      expect(s.accepted).toBeGreaterThan(s.cases / 2)
    },
    fuzzTimeoutMs(120_000),
  )
})
