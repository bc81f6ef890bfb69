/** Every command of the CLI, in the order help lists them, and the command groups (`prog`, `map`, `btf`). */
import { asmCommand } from './asm.js'
import { btfDumpCommand } from './btf.js'
import type { Command } from './command.js'
import { completionCommand as makeCompletionCommand } from './completion.js'
import { disasmCommand } from './disasm.js'
import { filterCommand } from './filter.js'
import { genTypesCommand } from './gen-types.js'
import { mapListCommand } from './map.js'
import { mapDumpCommand, mapLookupCommand, mapUpdateCommand } from './map-verbs.js'
import { progListCommand } from './prog.js'
import { progDumpCommand } from './prog-dump.js'
import { progRunCommand } from './prog-run.js'
import { runCommand } from './run.js'
import { genSkeletonCommand } from './skeleton.js'
import { verifyCommand } from './verify.js'

const completionCommand = makeCompletionCommand(() => ({ commands: COMMANDS, groups: GROUPS }))

export const COMMANDS: readonly Command[] = [
  asmCommand,
  disasmCommand,
  progListCommand,
  progDumpCommand,
  progRunCommand,
  mapListCommand,
  mapDumpCommand,
  mapLookupCommand,
  mapUpdateCommand,
  btfDumpCommand,
  genTypesCommand,
  genSkeletonCommand,
  runCommand,
  verifyCommand,
  filterCommand,
  completionCommand,
]

/** Second words of the groups; `show` is bpftool's alias of `list`. */
export const GROUPS: Record<string, Record<string, Command>> = {
  prog: { list: progListCommand, show: progListCommand, dump: progDumpCommand, run: progRunCommand },
  map: {
    list: mapListCommand,
    show: mapListCommand,
    dump: mapDumpCommand,
    lookup: mapLookupCommand,
    update: mapUpdateCommand,
  },
  btf: { dump: btfDumpCommand },
  gen: { skeleton: genSkeletonCommand, types: genTypesCommand },
}

export function commandByName(name: string): Command | undefined {
  return COMMANDS.find((c) => c.name === name)
}
