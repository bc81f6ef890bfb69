/** `ebpf prog list OBJ.o [--json]`: the programs of an object, as `bpftool prog list` shows loaded ones. */
import { expectPositionals, optFlag } from './args.js'
import type { Command } from './command.js'
import { json, table } from './format.js'
import { cliHint, readObject } from './io.js'
import { loadOptionsFrom, OBJECT_OPTIONS } from './object-options.js'
import { programTag } from './prog-tag.js'

export const progListCommand: Command = {
  name: 'prog list',
  usage: 'ebpf prog list OBJ.o [--json]',
  summary: 'list the programs of an object',
  description:
    'One row per program: function name, ELF section, program type (libbpf names, from the section),\n' +
    'instruction slots (sub-programs it calls included) and license, then why a program cannot be\n' +
    'loaded here, for those that cannot. --json prints an array of objects that also carry the attach\n' +
    'target, the sub-programs and `unsupported` (the reason) where it applies.',
  options: { json: { short: 'j', help: 'JSON output' }, ...OBJECT_OPTIONS },
  run(args) {
    const [file] = expectPositionals(args, ['OBJ.o'], 'prog list') as [string]
    const spec = readObject(file, loadOptionsFrom(args, 'prog list'))
    const progs = [...spec.programs.values()]
    if (optFlag(args, 'json')) {
      process.stdout.write(
        json(
          progs.map((p) => ({
            name: p.name,
            section: p.section,
            type: p.type,
            tag: programTag(p),
            insns: p.instructions.length / 8,
            license: p.license,
            attachTo: p.attachTo,
            subprograms: p.subprograms.map((s) => s.name),
            ...(p.unsupported === undefined ? {} : { unsupported: p.unsupported }),
          })),
        ),
      )
      return 0
    }
    const rows = progs.map((p) => [
      p.name,
      p.section,
      p.type,
      programTag(p),
      String(p.instructions.length / 8),
      p.license,
    ])
    process.stdout.write(table(['NAME', 'SECTION', 'TYPE', 'TAG', 'INSNS', 'LICENSE'], rows))
    for (const p of progs) {
      if (p.unsupported !== undefined)
        process.stdout.write(`${p.name}: cannot be loaded here: ${p.unsupported}${cliHint(p.unsupported)}\n`)
    }
    return 0
  },
}
