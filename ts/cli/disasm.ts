/**
 * `ebpf disasm FILE.bin|OBJ.o [--program NAME] [--dialect llvm|conformance]`: bytecode to text. For a
 * program of an object, the C source lines of its line info are interleaved as comments (as
 * `bpftool prog dump xlated linum` does), sub-programs are labelled `<name>:` and relocated lddw
 * instructions name their map. Every added line is a comment or a label, so the text still assembles.
 */
import { basename } from 'node:path'
import { cbpf, disassemble, type ProgramSpec } from '../index.js'

type Dialect = 'llvm' | 'conformance'

import { expectPositionals, optFlag, optString, UsageError } from './args.js'
import type { Command } from './command.js'
import { json } from './format.js'
import { about, CliError, classicText, displayName, isElf, readInput, readObject } from './io.js'
import { loadOptionsFrom, OBJECT_OPTIONS } from './object-options.js'
import { selectPrograms } from './select.js'

const LDDW = 0x18

/** One instruction of a listing: its first slot and its text. */
export interface ListingRow {
  insn: number
  text: string
}

/**
 * The disassembler's lines by instruction slot (`L<slot>:` labels dropped: the slots say where
 * jumps go), or undefined if its lines cannot be matched to the slots.
 */
export function listingRows(instructions: Uint8Array, dialect: Dialect): ListingRow[] | undefined {
  const rows: ListingRow[] = []
  let pc = 0
  for (const line of disassemble(instructions, { dialect }).split('\n')) {
    if (line === '' || /^L\d+:$/.test(line)) continue
    rows.push({ insn: pc, text: line })
    // `.8byte` lines are one slot; an lddw printed as an instruction is two.
    pc += !line.startsWith('.8byte') && instructions[pc * 8] === LDDW ? 2 : 1
  }
  return pc * 8 === instructions.length ? rows : undefined
}

/** `--json`: the instructions of one program (or of raw bytecode), with their bytes and C lines. */
function programJson(name: string | undefined, instructions: Uint8Array, dialect: Dialect, prog?: ProgramSpec) {
  const rows = listingRows(instructions, dialect) ?? []
  const hex = (pc: number, slots: number) =>
    [...instructions.subarray(pc * 8, (pc + slots) * 8)].map((b) => b.toString(16).padStart(2, '0')).join('')
  return {
    ...(name === undefined ? {} : { name }),
    instructions: rows.map((r, i) => {
      const next = rows[i + 1]?.insn ?? instructions.length / 8
      const line = prog?.lineInfo.find((l) => l.insn === r.insn)
      const reloc = prog?.relocations.find((x) => x.insn === r.insn)
      return {
        insn: r.insn,
        text: r.text,
        bytes: hex(r.insn, next - r.insn),
        ...(line ? { source: { file: line.file, line: line.line, column: line.column, text: line.text.trim() } } : {}),
        ...(reloc ? { map: reloc.map } : {}),
      }
    }),
  }
}

/** The text of one program of an object, with source comments, sub-program labels and map names. */
export function annotatedListing(prog: ProgramSpec, dialect: Dialect, withSource: boolean): string {
  const plain = disassemble(prog.instructions, { dialect })
  const lines = plain.split('\n').filter((l) => l !== '')
  const source = new Map<number, string[]>()
  if (withSource) {
    for (const li of prog.lineInfo) {
      const at = source.get(li.insn) ?? []
      at.push(`; ${li.text.trim()}  [${basename(li.file)}:${li.line}:${li.column}]`)
      source.set(li.insn, at)
    }
  }
  const funcs = new Map<number, string>([[0, prog.name]])
  for (const s of prog.subprograms) funcs.set(s.insn, s.name)
  const relocs = new Map(prog.relocations.map((r) => [r.insn, r]))

  const out: string[] = []
  const headed = new Set<number>()
  // Everything that belongs in front of instruction `pc` (function label, source lines), once.
  const head = (pc: number): void => {
    if (headed.has(pc)) return
    headed.add(pc)
    const f = funcs.get(pc)
    if (f !== undefined) out.push(`<${f}>:`)
    for (const s of source.get(pc) ?? []) out.push(s)
  }
  let pc = 0
  for (const line of lines) {
    if (/^L\d+:$/.test(line)) {
      head(pc)
      out.push(line)
      continue
    }
    head(pc)
    const r = relocs.get(pc)
    if (r === undefined) out.push(line)
    else if (r.kind === 'map') out.push(`${line}  ; map ${r.map}`)
    else out.push(`${line}  ; &${r.map}[${r.offset}]`)
    // `.8byte` lines are one slot; an lddw printed as an instruction is two.
    pc += !line.startsWith('.8byte') && prog.instructions[pc * 8] === LDDW ? 2 : 1
  }
  if (pc * 8 !== prog.instructions.length) {
    // The walk lost track of slots: give the plain listing rather than misplaced comments.
    return plain
  }
  return `${out.join('\n')}\n`
}

export const disasmCommand: Command = {
  name: 'disasm',
  usage: 'ebpf disasm FILE.bin|OBJ.o|FILTER.cbpf [--program NAME] [--dialect llvm|conformance] [--no-source] [--ebpf]',
  summary: 'disassemble raw bytecode or the programs of an object',
  description:
    'Prints one instruction per line with labels L<slot>: at jump targets. FILE.bin is raw bytecode; for an\n' +
    'ELF object every program is printed (or only --program NAME), its C source lines interleaved as comments\n' +
    'when the object has BTF line info, and relocated map loads annotated with the map. The output assembles\n' +
    "back with 'ebpf asm'. Classic BPF text (tcpdump -dd or -ddd output) is recognised and listed as\n" +
    "'tcpdump -d' prints it, or with --ebpf as the eBPF socket filter it converts to.",
  options: {
    program: { value: true, arg: 'NAME', help: 'only this program of the object' },
    dialect: {
      value: true,
      arg: 'DIALECT',
      choices: ['llvm', 'conformance'],
      help: 'llvm (default: r0 = 1) or conformance (mov %r0, 1)',
    },
    'no-source': { help: 'leave out the C source comments' },
    json: {
      short: 'j',
      help: 'JSON: per program { name, instructions: [{ insn, text, bytes, source?, map? }] } (raw bytecode: one, unnamed)',
    },
    ebpf: { help: 'for classic BPF text, print the eBPF socket filter it converts to instead' },
    ...OBJECT_OPTIONS,
  },
  run(args) {
    const [file] = expectPositionals(args, ['FILE'], 'disasm') as [string]
    const dialect = (optString(args, 'dialect') ?? 'llvm') as Dialect
    const name = optString(args, 'program')
    const bytes = readInput(file)
    const classic = classicText(bytes, file)
    if (classic !== undefined) {
      if (name !== undefined)
        throw new UsageError(`--program needs an ELF object; ${displayName(file)} is classic BPF`, 'disasm')
      const insns = about(file, () => cbpf.parse(classic.text))
      process.stderr.write(
        `${displayName(file)}: classic BPF (${classic.form} text), ${insns.length} instructions; ` +
          (optFlag(args, 'ebpf')
            ? 'printing the eBPF socket filter it converts to\n'
            : "listed as 'tcpdump -d' prints it (--ebpf for the converted eBPF)\n"),
      )
      process.stdout.write(
        about(file, () =>
          optFlag(args, 'ebpf') ? disassemble(cbpf.toEbpf(insns), { dialect }) : cbpf.disassemble(insns),
        ),
      )
      return 0
    }
    if (!isElf(bytes)) {
      if (name !== undefined)
        throw new UsageError(`--program needs an ELF object; ${displayName(file)} is raw bytecode`, 'disasm')
      if (optFlag(args, 'json')) {
        process.stdout.write(json([programJson(undefined, bytes, dialect)]))
        return 0
      }
      process.stdout.write(about(file, () => disassemble(bytes, { dialect })))
      return 0
    }
    const spec = readObject(file, loadOptionsFrom(args, 'disasm'))
    const progs = selectPrograms(spec, name, file)
    if (progs.length === 0) throw new CliError(`${displayName(file)}: the object has no programs`)
    if (optFlag(args, 'json')) {
      process.stdout.write(json(progs.map((p) => programJson(p.name, p.instructions, dialect, p))))
      return 0
    }
    const texts = progs.map((p) => about(file, () => annotatedListing(p, dialect, !optFlag(args, 'no-source'))))
    process.stdout.write(texts.join('\n'))
    return 0
  },
}
