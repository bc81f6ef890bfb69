/**
 * The argument parser of the `ebpf` command line: GNU-style long options (`--name value`,
 * `--name=value`), single-letter aliases (`-o value`), boolean flags, repeatable options and `--`
 * to end options. Anything it cannot read is a `UsageError` (exit code 1) that names the option.
 */

/** A mistake in how the command was invoked, or an input file that cannot be used: exit code 1. */
export class UsageError extends Error {
  /** The command whose help the message points to ('' for the top level). */
  readonly command: string
  constructor(message: string, command = '') {
    super(message)
    this.name = 'UsageError'
    this.command = command
  }
}

export interface OptionSpec {
  /** One-letter alias, without the dash. */
  short?: string
  /** Takes a value (`--name VALUE`); otherwise a boolean flag. */
  value?: boolean
  /** May be given more than once; all values are kept in order. */
  repeat?: boolean
  /** Allowed values, checked here so that commands only see valid ones. */
  choices?: readonly string[]
  /** Placeholder of the value in help texts. */
  arg?: string
  /** One line for the help text. */
  help: string
}

export interface Parsed {
  positionals: string[]
  /** Flags are `true`; valued options hold their last value; repeatable ones an array. */
  options: Map<string, string | true | string[]>
}

/** Parses `argv` (after the command words) against `specs`; `command` names the command in errors. */
export function parseArgs(argv: readonly string[], specs: Record<string, OptionSpec>, command: string): Parsed {
  const byShort = new Map<string, string>()
  for (const [name, s] of Object.entries(specs)) if (s.short) byShort.set(s.short, name)
  const parsed: Parsed = { positionals: [], options: new Map() }
  let i = 0
  const take = (name: string, inline: string | undefined): void => {
    const spec = specs[name]!
    if (!spec.value) {
      if (inline !== undefined) throw new UsageError(`option --${name} takes no value`, command)
      parsed.options.set(name, true)
      return
    }
    let value = inline
    if (value === undefined) {
      // The next word is the value even when it starts with '-' (`--hex -` is unusual, but `--set x=-1` is not).
      if (i >= argv.length) throw new UsageError(`option --${name} needs a value (${spec.arg ?? 'VALUE'})`, command)
      value = argv[i++]!
    }
    if (spec.choices && !spec.choices.includes(value)) {
      throw new UsageError(`option --${name} must be one of ${spec.choices.join(', ')}, got '${value}'`, command)
    }
    if (spec.repeat) {
      const prev = parsed.options.get(name)
      parsed.options.set(name, [...(Array.isArray(prev) ? prev : []), value])
    } else {
      parsed.options.set(name, value)
    }
  }
  while (i < argv.length) {
    const word = argv[i++]!
    if (word === '--') {
      parsed.positionals.push(...argv.slice(i))
      break
    }
    if (word.startsWith('--')) {
      const eq = word.indexOf('=')
      const name = eq < 0 ? word.slice(2) : word.slice(2, eq)
      if (!(name in specs)) throw new UsageError(`unknown option '--${name}'`, command)
      take(name, eq < 0 ? undefined : word.slice(eq + 1))
    } else if (word.length > 1 && word.startsWith('-') && !/^-\d/.test(word)) {
      // `-o FILE` or `-oFILE`; a lone '-' is a positional (standard input/output).
      const name = byShort.get(word[1]!)
      if (name === undefined) throw new UsageError(`unknown option '${word.slice(0, 2)}'`, command)
      take(name, word.length > 2 ? word.slice(2) : undefined)
    } else {
      parsed.positionals.push(word)
    }
  }
  return parsed
}

/** The value of a valued option, if given. */
export function optString(p: Parsed, name: string): string | undefined {
  const v = p.options.get(name)
  return typeof v === 'string' ? v : undefined
}

export function optFlag(p: Parsed, name: string): boolean {
  return p.options.get(name) === true
}

export function optList(p: Parsed, name: string): string[] {
  const v = p.options.get(name)
  return Array.isArray(v) ? v : []
}

/** A positive integer option (`--repeat`, `--budget`), or undefined when absent. */
export function optPositiveInt(
  p: Parsed,
  name: string,
  command: string,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined {
  const v = optString(p, name)
  if (v === undefined) return undefined
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > max) {
    throw new UsageError(`option --${name} must be an integer from 1 to ${max}, got '${v}'`, command)
  }
  return Number(v)
}

/** Exactly `n` positionals, named in the error by `names`. */
export function expectPositionals(p: Parsed, names: readonly string[], command: string): string[] {
  if (p.positionals.length < names.length) {
    throw new UsageError(`missing ${names.slice(p.positionals.length).join(' and ')}`, command)
  }
  if (p.positionals.length > names.length) {
    throw new UsageError(`unexpected argument '${p.positionals[names.length]}'`, command)
  }
  return p.positionals
}
