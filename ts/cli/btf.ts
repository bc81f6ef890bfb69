/**
 * `ebpf btf dump OBJ.o [--format raw|c]`: the object's BTF as in the file. `raw` is byte for byte
 * what `bpftool btf dump file OBJ.o` prints; `c` is a header declaring the types. A raw BTF blob
 * (such as /sys/kernel/btf/vmlinux) is dumped too.
 */
import { btf } from '../index.js'
import { expectPositionals, optFlag, optString, UsageError } from './args.js'
import type { Command } from './command.js'
import { about, displayName, readInput } from './io.js'

export const btfDumpCommand: Command = {
  name: 'btf dump',
  usage: 'ebpf btf dump OBJ.o|BTF_FILE [--format raw|c] [--json]',
  summary: 'print the BTF types of an object (as bpftool btf dump file)',
  description:
    "Prints the .BTF section of an ELF object, or a raw BTF blob. --format raw (default) is bpftool's text\n" +
    '([id] KIND name ... lines, identical bytes); --format c is a C header declaring every named type; --json is\n' +
    'bpftool -j\'s object ({"types": [...]}, identical bytes).',
  options: {
    format: { value: true, arg: 'FORMAT', choices: ['raw', 'c'], help: 'raw (default) or c' },
    json: { short: 'j', help: 'JSON output (the raw dump as bpftool -j prints it)' },
  },
  run(args) {
    const [file] = expectPositionals(args, ['OBJ.o'], 'btf dump') as [string]
    const given = optString(args, 'format') as 'raw' | 'c' | undefined
    if (optFlag(args, 'json') && given === 'c')
      throw new UsageError('--json is the raw dump as JSON, not --format c', 'btf dump')
    const format = optFlag(args, 'json') ? 'json' : (given ?? 'raw')
    const bytes = readInput(file)
    // The BTF as in the file, not libbpf's fixed-up form: bpftool dumps the file's bytes.
    const types = about(file, () => btf.parse(bytes))
    process.stdout.write(about(displayName(file), () => types.dump({ format })))
    return 0
  },
}
