/**
 * `ebpf prog run OBJ.o [name PROG] data_in FILE [data_out FILE] [ctx_in FILE] [ctx_out FILE]
 * [repeat N]`: bpftool's own argument order (`bpftool prog run PROG data_in ...`), with an object
 * file instead of a loaded program, and its output: `Return value: R, duration: Dns`, the output
 * data and context as its hex dump for `-`, and its JSON object with `--json`. Every option of
 * `ebpf run` is taken too (`--program` is `name`, `--data` is `data_in`, ...).
 */
import { expectPositionals, type Parsed, UsageError } from './args.js'
import type { Command } from './command.js'
import { runCommand, runProgram } from './run.js'

/** bpftool's keywords and the `ebpf run` option each stands for. */
const KEYWORDS: Record<string, string | null> = {
  name: 'program',
  data_in: 'data',
  data_out: 'data-out',
  ctx_in: 'ctx-in',
  ctx_out: 'ctx-out',
  repeat: 'repeat',
  // bpftool sizes its output buffers with these; a run here always hands back the whole data and context.
  data_size_out: null,
  ctx_size_out: null,
}

const COMMAND = 'prog run'

/** The keyword pairs after the file, moved into the options they stand for. */
function keywordsToOptions(args: Parsed): { file: string; args: Parsed } {
  const [file, ...rest] = args.positionals
  if (file === undefined) expectPositionals(args, ['OBJ.o'], COMMAND)
  const options = new Map(args.options)
  for (let i = 0; i < rest.length; i += 2) {
    const word = rest[i]!
    if (!(word in KEYWORDS)) {
      throw new UsageError(`unknown argument '${word}'; expected one of ${Object.keys(KEYWORDS).join(', ')}`, COMMAND)
    }
    const value = rest[i + 1]
    if (value === undefined) throw new UsageError(`${word} needs a value`, COMMAND)
    const option = KEYWORDS[word]
    if (option === null || option === undefined) {
      if (!/^\d+$/.test(value)) throw new UsageError(`${word} must be a byte count, got '${value}'`, COMMAND)
      continue
    }
    if (options.has(option)) throw new UsageError(`${word} and --${option} say the same thing: give one`, COMMAND)
    options.set(option, value)
  }
  return { file: file!, args: { positionals: [file!], options } }
}

export const progRunCommand: Command = {
  name: COMMAND,
  usage:
    'ebpf prog run OBJ.o|FILE [name PROG] data_in FILE [data_out FILE [data_size_out L]]\n' +
    '              [ctx_in FILE [ctx_out FILE [ctx_size_out M]]] [repeat N] [--json] [ebpf run options]',
  summary: "run a program with bpftool prog run's arguments and output",
  description:
    "bpftool's `prog run` on an object file (or raw bytecode, assembly, classic BPF as `ebpf run` takes them):\n" +
    'data_in and ctx_in read the packet and the context from files (- for standard input), data_out and\n' +
    'ctx_out write them after the run (- prints the hex dump bpftool prints), repeat runs N times; the result\n' +
    'line is bpftool\'s ("Return value: 2, duration (average): 35ns") and --json its object ({"retval", "duration",\n' +
    '"data_out", "ctx_out"}). The options of `ebpf run` (--engine, --ctx FIELD=VALUE,..., --trace, --coverage, ...)\n' +
    'apply as there.',
  options: runCommand.options,
  words: { keywords: Object.keys(KEYWORDS), valued: Object.keys(KEYWORDS) },
  run(parsed) {
    const { file, args } = keywordsToOptions(parsed)
    return runProgram(file, args, COMMAND, 'bpftool')
  },
}
