/** `ebpf asm FILE.s [-o OUT.bin]`: assembly text (either dialect) to raw bytecode. */
import { expectPositionals, optString } from './args.js'
import type { Command } from './command.js'
import { assembleFile, readInput, writeOutput } from './io.js'

/** The default output: the input's name with its extension replaced by `.bin`. */
function defaultOutput(input: string): string {
  if (input === '-') return '-'
  return `${input.replace(/\.(s|S|asm)$/, '')}.bin`
}

export const asmCommand: Command = {
  name: 'asm',
  usage: 'ebpf asm FILE.s [-o OUT.bin]',
  summary: 'assemble text (conformance or llvm dialect) into raw bytecode',
  description:
    'Assembles FILE.s (the bpf_conformance dialect, the llvm-objdump/kernel dialect, or both mixed) into 8-byte\n' +
    'little-endian instruction slots. The output defaults to FILE.bin ("-" writes to standard output, and a\n' +
    'FILE of "-" reads standard input). Errors are printed as FILE:LINE:COLUMN: message.',
  options: {
    output: {
      short: 'o',
      value: true,
      arg: 'OUT.bin',
      help: 'where to write the bytecode (default FILE.bin, - for stdout)',
    },
  },
  run(args) {
    const [file] = expectPositionals(args, ['FILE.s'], 'asm') as [string]
    const bytes = assembleFile(file, readInput(file))
    writeOutput(optString(args, 'output') ?? defaultOutput(file), bytes)
    return 0
  },
}
