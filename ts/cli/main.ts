/**
 * `ebpf`: entry point of the command line. Finds the command from the first words, parses its
 * options, runs it and turns every failure into one line on stderr and an exit code (0 ok, 1 usage
 * or load error, 2 trap). A stack trace is printed only for errors that are bugs of this program.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { EbpfError, TrapError } from '../index.js'
import { parseArgs, UsageError } from './args.js'
import type { Command } from './command.js'
import { commandByName, GROUPS } from './commands.js'
import { commandHelp, groupHelp, topHelp } from './help.js'
import { CliError } from './io.js'

function version(): string {
  try {
    // dist/cli/main.js -> package.json at the package root.
    const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version?: string }
    return pkg.version ?? 'unknown'
  } catch {
    return 'unknown'
  }
}

/** The command the words select, and the words left for it; undefined for a help request. */
function resolve(
  argv: readonly string[],
): { command: Command; rest: readonly string[] } | { help: string; code: number } {
  const [first, second] = argv
  if (first === undefined) return { help: topHelp(), code: 1 }
  const group = GROUPS[first]
  if (group) {
    if (second === undefined || second === 'help' || second === '--help' || second === '-h') {
      return { help: groupHelp(first), code: second === undefined ? 1 : 0 }
    }
    const command = group[second]
    if (!command) {
      throw new UsageError(`unknown command '${first} ${second}'; ${first} has: ${Object.keys(group).join(', ')}`)
    }
    return { command, rest: argv.slice(2) }
  }
  const command = commandByName(first)
  if (!command) throw new UsageError(`unknown command '${first}'`)
  return { command, rest: argv.slice(1) }
}

function helpFor(words: readonly string[]): string {
  if (words.length === 0) return topHelp()
  const [first, second] = words
  const group = GROUPS[first!]
  if (group) {
    if (second === undefined) return groupHelp(first!)
    const c = group[second]
    if (!c) throw new UsageError(`no help for unknown command '${first} ${second}'`)
    return commandHelp(c)
  }
  const c = commandByName(first!)
  if (!c) throw new UsageError(`no help for unknown command '${first}'`)
  return commandHelp(c)
}

/** Runs the CLI with `argv` (without node and the script); resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  // `ebpf ... | head` closes the pipe early: that is not an error worth a stack trace.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0)
    throw e
  })
  let commandName = ''
  try {
    const first = argv[0]
    if (first === '--version' || first === '-V' || first === 'version') {
      process.stdout.write(`ebpf ${version()}\n`)
      return 0
    }
    if (first === 'help' || first === '--help' || first === '-h') {
      process.stdout.write(helpFor(argv.slice(1)))
      return 0
    }
    const r = resolve(argv)
    if ('help' in r) {
      ;(r.code === 0 ? process.stdout : process.stderr).write(r.help)
      return r.code
    }
    commandName = r.command.name
    const end = r.rest.indexOf('--')
    const opts = end < 0 ? r.rest : r.rest.slice(0, end)
    if (opts.includes('--help') || opts.includes('-h')) {
      process.stdout.write(commandHelp(r.command))
      return 0
    }
    const parsed = parseArgs(r.rest, r.command.options, r.command.name)
    return await r.command.run(parsed)
  } catch (e) {
    return reportError(e, commandName)
  }
}

function reportError(e: unknown, commandName: string): number {
  const who = commandName ? `ebpf ${commandName}` : 'ebpf'
  if (e instanceof UsageError) {
    const cmd = e.command || commandName
    process.stderr.write(`${who}: ${e.message}\nTry 'ebpf help${cmd ? ` ${cmd}` : ''}'.\n`)
    return 1
  }
  if (e instanceof CliError) {
    process.stderr.write(`${who}: ${e.message}\n`)
    return e.exitCode
  }
  if (e instanceof EbpfError) {
    // Library errors the command did not attribute to a file still get one line, with their code.
    process.stderr.write(`${who}: ${e.code}: ${e.message}\n`)
    return e instanceof TrapError ? 2 : 1
  }
  // Anything else is a bug here, not a user mistake: keep the stack for the report.
  process.stderr.write(`${who}: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`)
  return 1
}
