/** `ebpf asm FILE.s [-o OUT.bin]`: assembly text (either dialect) to raw bytecode. */
import { expectPositionals, optFlag, optString } from './args.js'
import type { Command } from './command.js'
import { json } from './format.js'
import { assembleFile, readInput, writeOutput } from './io.js'

/** The default output: the input's name with its extension replaced by `.bin`. */
function defaultOutput(input: string): string {
  if (input === '-') return '-'
  return `${input.replace(/\.(s|S|asm)$/, '')}.bin`
}

export const asmCommand: Command = {
  name: 'asm',
  usage: 'ebpf asm FILE.s [-o OUT.bin] [--json]',
  summary: 'assemble text (conformance or llvm dialect) into raw bytecode',
  description:
    'Assembles FILE.s (the bpf_conformance dialect, the llvm-objdump/kernel dialect, or both mixed) into 8-byte\n' +
    'little-endian instruction slots. The output defaults to FILE.bin ("-" writes to standard output, and a\n' +
    'FILE of "-" reads standard input). Errors are printed as FILE:LINE:COLUMN: message. --json prints\n' +
    '{ slots, bytes (hex) } on standard output instead of writing a file.',
  options: {
    output: {
      short: 'o',
      value: true,
      arg: 'OUT.bin',
      help: 'where to write the bytecode (default FILE.bin, - for stdout)',
    },
    json: { short: 'j', help: 'print { slots, bytes } as JSON instead of writing the bytecode' },
  },
  run(args) {
    const [file] = expectPositionals(args, ['FILE.s'], 'asm') as [string]
    const bytes = assembleFile(file, readInput(file))
    if (optFlag(args, 'json')) {
      process.stdout.write(json({ slots: bytes.length / 8, bytes }))
      return 0
    }
    writeOutput(optString(args, 'output') ?? defaultOutput(file), bytes)
    return 0
  },
}
