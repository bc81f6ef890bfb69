/**
 * Options every command that reads an object shares: `--kernel-btf FILE|none` (the target kernel's
 * BTF for CO-RE relocations; the running kernel's by default) and `--kconfig NAME=VALUE` (values of `.kconfig` externs). Without them an
 * object that needs them is refused with a message that says which option to give.
 */
import { btf, type LoadOptions } from '../index.js'
import { type OptionSpec, optList, optString, type Parsed, UsageError } from './args.js'
import { about, readInput } from './io.js'

export const OBJECT_OPTIONS: Record<string, OptionSpec> = {
  'kernel-btf': {
    value: true,
    arg: 'FILE',
    help: "BTF of the target kernel for CO-RE relocations (default /sys/kernel/btf/vmlinux when readable; 'none': no kernel BTF)",
  },
  kconfig: { value: true, repeat: true, arg: 'NAME=VALUE', help: 'value of a .kconfig extern (CONFIG_HZ=250)' },
}

/**
 * A command-line value for a global, an extern or a map key/value: integers (decimal or 0x hex;
 * bigints past 2^53), JSON (objects, arrays, strings, booleans), or else the text itself (char
 * arrays, enum names).
 */
export function parseValue(text: string): unknown {
  if (/^-?(0x[0-9a-f]+|\d+)$/i.test(text)) {
    const neg = text.startsWith('-')
    const big = BigInt(neg ? text.slice(1) : text) * (neg ? -1n : 1n)
    return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big
  }
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

/** `NAME=VALUE` split at the first '='. */
export function assignment(text: string, option: string, command: string): [string, string] {
  const eq = text.indexOf('=')
  if (eq <= 0) throw new UsageError(`--${option} takes NAME=VALUE, got '${text}'`, command)
  return [text.slice(0, eq), text.slice(eq + 1)]
}

/** The loader options the command line asked for. */
export function loadOptionsFrom(args: Parsed, command: string): LoadOptions {
  const options: LoadOptions = {}
  const kernelBtf = optString(args, 'kernel-btf')
  if (kernelBtf === 'none') options.kernelTypes = null
  else if (kernelBtf !== undefined) {
    const bytes = readInput(kernelBtf)
    options.kernelTypes = about(kernelBtf, () => btf.parse(bytes))
  }
  const kconfig = optList(args, 'kconfig')
  if (kconfig.length > 0) {
    options.kconfig = Object.fromEntries(
      kconfig.map((k) => assignment(k, 'kconfig', command)).map(([n, v]) => [n, parseValue(v)]),
    )
  }
  return options
}
