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
import { about, CliError, classicText, displayName, isElf, readInput, readObject } from './io.js'
import { loadOptionsFrom, OBJECT_OPTIONS } from './object-options.js'
import { selectPrograms } from './select.js'

const LDDW = 0x18

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
      process.stdout.write(about(file, () => disassemble(bytes, { dialect })))
      return 0
    }
    const spec = readObject(file, loadOptionsFrom(args, 'disasm'))
    const progs = selectPrograms(spec, name, file)
    if (progs.length === 0) throw new CliError(`${displayName(file)}: the object has no programs`)
    const texts = progs.map((p) => about(file, () => annotatedListing(p, dialect, !optFlag(args, 'no-source'))))
    process.stdout.write(texts.join('\n'))
    return 0
  },
}
