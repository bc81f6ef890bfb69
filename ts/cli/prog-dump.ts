/**
 * `ebpf prog dump xlated|jited OBJ.o [--program NAME] [linum] [opcodes] [--json]`: a program of an
 * object as loaded here, in the layout of `bpftool prog dump xlated|jited`: the function's
 * prototype from BTF (`int xdp_firewall(struct xdp_md * ctx):`), the C source line from line info
 * (`; ...`, with `linum` its file, line and column) before the instructions it covers, and then
 * `xlated`: each instruction after load-time rewriting (relocation, the context rewrite) as the
 * kernel's verifier log writes it, but for calls of functions and callbacks' addresses, which
 * bpftool prints its own way (with `opcodes` its bytes), or `jited`: the x86-64 code as
 * bpftool built with libbfd prints it (`%4x:\t` and GNU objdump's AT&T text, `opcodes` on the
 * next line), one section per function (the kernel's subprograms) under the kernel's symbol of
 * its image, `bpf_prog_TAG_NAME`, with offsets from the function's start, and source lines placed
 * as bpftool places them (`bpf_prog_linfo__lfind_addr_func` over each function's records).
 * Differences from the kernel's output: maps are `map[idx:N]` (their index in the program) where
 * the kernel prints its map id; the context rewrite and the code are this runtime's own, which
 * compiles the functions into one image and puts the code they share (slow paths of checks,
 * trap exits, stubs) after the last one, listed as a last section `SYMBOL.cold`; a subprogram
 * that calls a helper has another tag than the kernel's (see `functionTags`).
 */
import type { Btf } from '../btf/btf.js'
import type { BtfType } from '../btf/types.js'
import type { FuncInfo, LineInfo, ProgramSpec } from '../index.js'
import { Collection, EbpfError } from '../index.js'
import { optFlag, optString, type Parsed, UsageError } from './args.js'
import type { Command } from './command.js'
import { json } from './format.js'
import { CliError, displayName, readObject, writeOutput } from './io.js'
import { loadOptionsFrom, OBJECT_OPTIONS } from './object-options.js'
import { functionTags } from './prog-tag.js'
import { selectProgram } from './select.js'

const KINDS = ['xlated', 'jited'] as const
const KEYWORDS = ['linum', 'opcodes'] as const

/** A type's name as bpftool writes it in a prototype: `struct xdp_md *`, `const char *`, `int`. */
function typeName(btf: Btf, id: number, depth = 0): string {
  if (id === 0) return 'void'
  if (depth > 32) return '?'
  const t: BtfType = btf.typeById(id)
  switch (t.kind) {
    case 'PTR':
      return `${typeName(btf, t.type ?? 0, depth + 1)} *`
    case 'CONST':
    case 'VOLATILE':
    case 'RESTRICT':
      return `${t.kind.toLowerCase()} ${typeName(btf, t.type ?? 0, depth + 1)}`
    case 'STRUCT':
    case 'UNION':
    case 'ENUM':
      return `${t.kind.toLowerCase()} ${t.name}`
    case 'ENUM64':
      return `enum ${t.name}`
    case 'FWD':
      return `${t.fwdUnion ? 'union' : 'struct'} ${t.name}`
    case 'TYPE_TAG':
      return typeName(btf, t.type ?? 0, depth + 1)
    default:
      return t.name || t.kind.toLowerCase()
  }
}

/** `int xdp_firewall(struct xdp_md * ctx)` for a function of the object's function info. */
function prototype(btf: Btf, f: FuncInfo): string {
  try {
    const fn = btf.typeById(f.typeId)
    const proto = btf.typeById(fn.type ?? 0)
    const params = (proto.params ?? []).map((p) => `${typeName(btf, p.type)} ${p.name}`)
    return `${typeName(btf, proto.type ?? 0)} ${f.name}(${params.join(', ')})`
  } catch {
    return `${f.name}()`
  }
}

function slotBytes(bytes: Uint8Array, slot: number, slots: number): string {
  return [...bytes.subarray(slot * 8, (slot + slots) * 8)].map((b) => b.toString(16).padStart(2, '0')).join(' ')
}

const hex = (b: number) => `0x${b.toString(16).padStart(2, '0')}`

/** bpftool's JSON `opcodes` of one slot. */
function opcodesJson(bytes: Uint8Array, slot: number): object {
  const b = bytes.subarray(slot * 8, slot * 8 + 8)
  return {
    code: hex(b[0]!),
    src_reg: hex(b[1]! >> 4).replace(/^0x0(?=.)/, '0x'),
    dst_reg: hex(b[1]! & 0xf).replace(/^0x0(?=.)/, '0x'),
    off: [hex(b[2]!), hex(b[3]!)],
    imm: [hex(b[4]!), hex(b[5]!), hex(b[6]!), hex(b[7]!)],
  }
}

/** One x86-64 instruction of the JIT's code, its offset from its section's start. */
interface JitedInsn {
  offset: number
  bytes: Uint8Array
  text: string
  insn?: number
}

/** One function's code, or the shared out-of-line code (no `slot`): the binding's `jitedFunctions`. */
interface JitedFunction {
  slot?: number
  insns: JitedInsn[]
}

interface Listing {
  prog: ProgramSpec
  texts: string[]
  /**
   * The bytes as loaded, but for `lddw`s, which are the object's own: relocation writes the map's
   * handle (a host address) into them, which is not shown.
   */
  xlated: Uint8Array
  jited: JitedFunction[]
  /** The first slot of each function, ascending (the main function's 0 first). */
  functions: number[]
}

function load(file: string, args: Parsed): Listing & { btf: Btf } {
  const spec = readObject(file, loadOptionsFrom(args, 'prog dump'))
  const prog = selectProgram(spec, optString(args, 'program'), file)
  let coll: Collection
  try {
    coll = new Collection(spec, { programs: [prog.name] })
  } catch (e) {
    if (e instanceof EbpfError) throw new CliError(`${displayName(file)}: ${e.message}`)
    throw e
  }
  const program = coll.programs.get(prog.name)!
  return {
    prog,
    btf: spec.types,
    texts: program.native.xlatedTexts(),
    xlated: withObjectLddw(program.dump('xlated'), prog.instructions),
    jited: program.native.jitedFunctions(),
    functions: program.native.functionSlots(),
  }
}

/** `loaded` with the two slots of every `lddw` (opcode 0x18) taken from `object`. */
function withObjectLddw(loaded: Uint8Array, object: Uint8Array): Uint8Array {
  const out = new Uint8Array(loaded)
  for (let slot = 0; slot * 8 < out.length; slot++) {
    if (out[slot * 8] !== 0x18) continue
    out.set(object.subarray(slot * 8, slot * 8 + 16), slot * 8)
    slot++
  }
  return out
}

/** The line info records by instruction slot (several may start at one slot). */
function linesBySlot(lineInfo: readonly LineInfo[]): Map<number, LineInfo[]> {
  const out = new Map<number, LineInfo[]>()
  for (const li of lineInfo) out.set(li.insn, [...(out.get(li.insn) ?? []), li])
  return out
}

function srcLine(li: LineInfo, linum: boolean): string {
  const at = linum ? ` [file:${li.file} line_num:${li.line} line_col:${li.column}]` : ''
  return `; ${li.text.trim()}${at}`
}

/**
 * The instruction texts as bpftool prints them, where its printer differs from the verifier
 * log's: a call of a function names the callee's symbol (`call pc+8#bpf_prog_TAG_NAME`), and a
 * function's address (an `lddw` with src 4, a callback) is `subprog[+N]`, N its distance in
 * instructions.
 */
function bpftoolTexts(l: Listing): string[] {
  const symbols = functionSymbols(l)
  const view = new DataView(l.xlated.buffer, l.xlated.byteOffset, l.xlated.byteLength)
  return l.texts.map((text, slot) => {
    const at = slot * 8
    const src = (l.xlated[at + 1] ?? 0) >> 4
    if (l.xlated[at] === 0x85 && src === 1) {
      const symbol = symbols.get(slot + 1 + view.getInt32(at + 4, true))
      return symbol ? `${text}#${symbol}` : text
    }
    if (l.xlated[at] === 0x18 && src === 4) {
      const imm = view.getInt32(at + 4, true)
      return `(18) r${l.xlated[at + 1]! & 0xf} = subprog[${imm < 0 ? imm : `+${imm}`}]`
    }
    return text
  })
}

function xlatedText(l: Listing & { btf: Btf }, linum: boolean, opcodes: boolean): string {
  const out: string[] = []
  const texts = bpftoolTexts(l)
  const funcs = new Map(l.prog.funcInfo.map((f) => [f.insn, f]))
  const lines = linesBySlot(l.prog.lineInfo)
  for (let slot = 0; slot < texts.length; slot++) {
    const text = texts[slot]!
    if (text === '') continue // the second slot of an lddw
    const f = funcs.get(slot)
    if (f) out.push(`${prototype(l.btf, f)}:`)
    const li = lines.get(slot)?.at(-1)
    if (li) out.push(srcLine(li, linum))
    out.push(`${String(slot).padStart(4)}: ${text}`)
    if (opcodes) out.push(`       ${slotBytes(l.xlated, slot, l.xlated[slot * 8] === 0x18 ? 2 : 1)}`)
  }
  return `${out.join('\n')}\n`
}

function xlatedJson(l: Listing & { btf: Btf }, linum: boolean, opcodes: boolean): object[] {
  const funcs = new Map(l.prog.funcInfo.map((f) => [f.insn, f]))
  const lines = linesBySlot(l.prog.lineInfo)
  const out: object[] = []
  const texts = bpftoolTexts(l)
  for (let slot = 0; slot < texts.length; slot++) {
    const text = texts[slot]!
    if (text === '') continue
    const f = funcs.get(slot)
    const li = lines.get(slot)?.at(-1)
    out.push({
      ...(f ? { proto: prototype(l.btf, f) } : {}),
      ...(li ? { src: li.text.trim() } : {}),
      ...(li && linum ? { file: li.file, line_num: li.line, line_col: li.column } : {}),
      disasm: text,
      ...(opcodes ? { opcodes: opcodesJson(l.xlated, slot) } : {}),
    })
  }
  return out
}

/**
 * The line info record bpftool prints before each instruction of a function's code, by offset:
 * each record of the function has an address (its first at the function's start, every other
 * where the code of its instruction begins), and at each instruction bpftool takes, if the first
 * record it has not yet counted is at or before it, the last record at or before it, and counts
 * one more (libbpf's `bpf_prog_linfo__lfind_addr_func` with bpftool's `nr_skip`).
 */
function jitedLines(l: Listing, f: JitedFunction, end: number): Map<number, LineInfo> {
  const records = l.prog.lineInfo.filter((li) => li.insn >= f.slot! && li.insn < end)
  const marked = f.insns.filter((i) => i.insn !== undefined)
  const addresses = records.map((li, k) =>
    k === 0 ? 0 : (marked.find((i) => i.insn! >= li.insn)?.offset ?? Number.POSITIVE_INFINITY),
  )
  const out = new Map<number, LineInfo>()
  let skip = 0
  for (const i of f.insns) {
    if (skip >= records.length || addresses[skip]! > i.offset) continue
    let last = skip
    while (last + 1 < records.length && addresses[last + 1]! <= i.offset) last++
    out.set(i.offset, records[last]!)
    skip++
  }
  return out
}

/** A section of the code as bpftool lists a function: prototype, symbol, and the instructions with their source lines. */
interface JitedSection {
  proto?: string
  name: string
  insns: JitedInsn[]
  lines: Map<number, LineInfo>
}

/**
 * The kernel's symbol of each function's image, by its first slot: `bpf_prog_TAG_NAME`, the
 * function's name from BTF function info, else (the main function) the program's name cut to 15
 * characters as at load, else none.
 */
function functionSymbols(l: Listing): Map<number, string> {
  const tags = functionTags(l.prog, l.functions)
  const info = new Map(l.prog.funcInfo.map((f) => [f.insn, f]))
  return new Map(
    l.functions.map((slot, k) => {
      const fi = info.get(slot)
      const name = fi ? `_${fi.name}` : k === 0 ? `_${l.prog.name.slice(0, 15)}` : ''
      return [slot, `bpf_prog_${tags[k]}${name}`]
    }),
  )
}

/**
 * The sections of the code: one per function, named as the kernel names each image in its
 * symbols (`functionSymbols`), then the shared out-of-line code as `SYMBOL.cold`.
 */
function jitedSections(l: Listing & { btf: Btf }): JitedSection[] {
  const funcs = l.jited.filter((f) => f.slot !== undefined)
  const symbols = functionSymbols(l)
  const info = new Map(l.prog.funcInfo.map((f) => [f.insn, f]))
  const sections = funcs.map((f, k): JitedSection => {
    const fi = info.get(f.slot!)
    const end = funcs[k + 1]?.slot ?? l.texts.length
    return {
      ...(fi ? { proto: prototype(l.btf, fi) } : {}),
      name: symbols.get(f.slot!)!,
      insns: f.insns,
      lines: jitedLines(l, f, end),
    }
  })
  const cold = l.jited.find((f) => f.slot === undefined)
  if (cold && cold.insns.length > 0) {
    sections.push({ name: `${sections[0]!.name}.cold`, insns: cold.insns, lines: new Map() })
  }
  return sections
}

/**
 * `push   %rbx` -> operation `push`, operands `['%rbx']`: the operands split at the commas
 * between them (not those inside a memory operand's parentheses); none gives bpftool's `[null]`.
 */
export function operationAndOperands(text: string): { operation: string; operands: (string | null)[] } {
  const m = /^(\S+(?: \S+)*?)(?: {2,}| (?=[$%*(\-0-9a-z]))(.*)$/.exec(text)
  if (!m || m[2] === '') return { operation: text.trim(), operands: [null] }
  const operands: string[] = []
  let depth = 0
  let cur = ''
  for (const ch of m[2]!) {
    if (ch === '(') depth++
    else if (ch === ')') depth--
    if (ch === ',' && depth === 0) {
      operands.push(cur)
      cur = ''
    } else cur += ch
  }
  operands.push(cur)
  return { operation: m[1]!, operands }
}

const byteHex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, '0'))

/**
 * `bpftool prog dump jited`'s text: for each function its prototype, its symbol, `; C line`,
 * `%4x:\t` and the instruction, and an empty line.
 */
function jitedText(l: Listing & { btf: Btf }, linum: boolean, opcodes: boolean): string {
  const out: string[] = []
  for (const s of jitedSections(l)) {
    if (s.proto) out.push(`${s.proto}:`)
    out.push(`${s.name}:`)
    for (const i of s.insns) {
      const li = s.lines.get(i.offset)
      if (li) out.push(srcLine(li, linum))
      out.push(`${i.offset.toString(16).padStart(4)}:\t${i.text}`)
      if (opcodes) out.push(`\t${byteHex(i.bytes).join(' ')} `)
    }
    out.push('')
  }
  return `${out.join('\n')}\n`
}

/**
 * `bpftool -j prog dump jited`'s JSON: one object per function, `[{ proto, name, insns: [{ src,
 * file, line_num, line_col, pc, operation, operands, opcodes }] }]`, and `insn`, the eBPF
 * instruction whose code starts at that x86-64 instruction (not in bpftool's, which has no such
 * boundary); the shared out-of-line code last, named `SYMBOL.cold`, without `proto`.
 */
function jitedJson(l: Listing & { btf: Btf }, linum: boolean, opcodes: boolean): object[] {
  return jitedSections(l).map((s) => ({
    ...(s.proto ? { proto: s.proto } : {}),
    name: s.name,
    insns: s.insns.map((i) => {
      const li = s.lines.get(i.offset)
      return {
        ...(li ? { src: li.text.trim() } : {}),
        ...(li && linum ? { file: li.file, line_num: li.line, line_col: li.column } : {}),
        pc: `0x${i.offset.toString(16)}`,
        ...operationAndOperands(i.text),
        ...(opcodes ? { opcodes: byteHex(i.bytes).map((b) => `0x${b}`) } : {}),
        ...(i.insn === undefined ? {} : { insn: i.insn }),
      }
    }),
  }))
}

export const progDumpCommand: Command = {
  name: 'prog dump',
  usage: 'ebpf prog dump xlated|jited OBJ.o [--program NAME] [linum] [opcodes] [file FILE] [--json]',
  summary: 'list a program as loaded here: its instructions after rewriting, or its x86-64 code',
  description:
    "As bpftool prog dump xlated|jited, for a program of an object loaded here: the function's\n" +
    'prototype from BTF and the C source lines from line info (`linum`: with file, line and column)\n' +
    'before the instructions they cover; xlated lists the instructions after relocation and the\n' +
    "context rewrite as the kernel's verifier log writes them (`opcodes`: with their bytes), jited the\n" +
    "x86-64 code as bpftool built with libbfd prints it (GNU objdump's AT&T syntax; `opcodes`: the bytes\n" +
    'on the next line). Maps are map[idx:N] (their index in the program) where bpftool prints the kernel\n' +
    'map id. jited lists each function (subprogram) as bpftool does, under its kernel symbol with offsets\n' +
    'from its start; the code the functions share here (slow paths, stubs) follows as SYMBOL.cold.\n' +
    'file FILE writes the raw bytes instead, as bpftool does (the instructions, or the whole code).\n' +
    '--json as bpftool -j: xlated one object per instruction (proto, src, disasm, opcodes), jited one per\n' +
    'function, [{proto, name, insns: [{src, pc, operation, operands, opcodes, insn}]}].',
  options: {
    program: { value: true, arg: 'NAME', help: "the object's program (needed when it has several)" },
    json: { short: 'j', help: "bpftool -j's JSON" },
    ...OBJECT_OPTIONS,
  },
  words: { first: KINDS, keywords: [...KEYWORDS, 'file'], valued: ['file'] },
  run(args) {
    const [kind, file, ...words] = args.positionals
    if (kind === undefined || !(KINDS as readonly string[]).includes(kind)) {
      throw new UsageError(
        `say what to dump: xlated or jited${kind === undefined ? '' : `, not '${kind}'`}`,
        'prog dump',
      )
    }
    if (file === undefined) throw new UsageError('missing OBJ.o', 'prog dump')
    let out: string | undefined
    for (let i = 0; i < words.length; i++) {
      const w = words[i]!
      if (w === 'file') {
        out = words[++i]
        if (out === undefined) throw new UsageError('file needs a path', 'prog dump')
      } else if (!(KEYWORDS as readonly string[]).includes(w)) {
        throw new UsageError(`unknown word '${w}': prog dump takes ${[...KEYWORDS, 'file'].join(', ')}`, 'prog dump')
      }
    }
    const linum = words.includes('linum')
    const opcodes = words.includes('opcodes')
    if (out !== undefined && (linum || opcodes)) {
      throw new UsageError("'file' is not compatible with 'opcodes' or 'linum'", 'prog dump')
    }
    const listing = load(file, args)
    if (kind === 'jited' && listing.jited.length === 0) {
      throw new CliError(
        `${displayName(file)}: ${listing.prog.name} is not JIT-compiled here (it runs on the interpreter)`,
      )
    }
    if (out !== undefined) {
      // bpftool's `file`: the raw bytes, the instructions or the whole code (every section).
      writeOutput(
        out,
        kind === 'xlated' ? listing.xlated : Buffer.concat(listing.jited.flatMap((f) => f.insns.map((i) => i.bytes))),
      )
      if (optFlag(args, 'json')) process.stdout.write(json(null))
      return 0
    }
    if (kind === 'xlated') {
      process.stdout.write(
        optFlag(args, 'json') ? json(xlatedJson(listing, linum, opcodes)) : xlatedText(listing, linum, opcodes),
      )
    } else {
      process.stdout.write(
        optFlag(args, 'json') ? json(jitedJson(listing, linum, opcodes)) : jitedText(listing, linum, opcodes),
      )
    }
    return 0
  },
}
