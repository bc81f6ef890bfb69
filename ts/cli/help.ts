/** Help texts: the command list (`ebpf help`) and one command's synopsis, description and options. */
import type { Command } from './command.js'
import { COMMANDS, GROUPS } from './commands.js'

export function topHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length))
  return [
    'Usage: ebpf COMMAND [ARGS...]',
    '',
    'A small bpftool for eBPF objects and bytecode that runs in user space.',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    `  ${'help'.padEnd(width)}  show help for a command (ebpf help run)`,
    '',
    'Options: --help (-h) after any command, --version (-V).',
    'Exit codes: 0 ok, 1 usage or load error, 2 the program trapped.',
    '',
  ].join('\n')
}

export function commandHelp(c: Command): string {
  const opts = Object.entries(c.options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.value ? ` ${o.arg ?? 'VALUE'}` : ''}`
    return [flag, o.help] as const
  })
  const width = Math.max(0, ...opts.map(([f]) => f.length))
  const lines = [`Usage: ${c.usage}`, '', c.description, '']
  if (opts.length > 0) {
    lines.push('Options:')
    for (const [f, h] of opts) lines.push(`  ${f.padEnd(width)}  ${h}`)
    lines.push('')
  }
  return lines.join('\n')
}

/** Help for the commands of a group (`ebpf help prog`). */
export function groupHelp(group: string): string {
  const seen = new Set<Command>()
  const cmds = Object.values(GROUPS[group] ?? {}).filter((c) => !seen.has(c) && seen.add(c))
  return `${cmds.map(commandHelp).join('\n')}`
}
