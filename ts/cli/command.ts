/** The shape of one CLI command: its words, help text, options and what it does. */
import type { OptionSpec, Parsed } from './args.js'

export interface Command {
  /** The words that select it: 'asm', 'prog list', ... */
  name: string
  /** Synopsis line(s) for help: `ebpf asm FILE.s [-o OUT.bin]`. */
  usage: string
  /** One line for the command list. */
  summary: string
  /** A paragraph for `ebpf help COMMAND`. */
  description: string
  options: Record<string, OptionSpec>
  /**
   * Words shell completion offers besides options and files, for commands that take bpftool's
   * words: `first`, the choices of the first word after the command (prog dump's xlated|jited);
   * `keywords`, the words after the object file (linum, data_in, ...), of which `valued` take a
   * value next (a file or a number).
   */
  words?: { first?: readonly string[]; keywords: readonly string[]; valued: readonly string[] }
  /** Returns the exit code (0 ok, 1 usage/load error, 2 trap); errors may also be thrown as CliError/UsageError. */
  run(args: Parsed): number | Promise<number>
}
