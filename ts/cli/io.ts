/**
 * Input and output of the CLI: reading the files commands name (with errors that name the file,
 * never a stack trace), telling objects and classic BPF text from raw bytecode, hex in and out, writing results.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import {
  AssembleError,
  assemble,
  type CollectionSpec,
  cbpf,
  EbpfError,
  type LoadOptions,
  loadCollectionSpecSync,
} from '../index.js'

/** An error the CLI reports as one line and the exit code it ends with (1: usage or load, 2: trap). */
export class CliError extends Error {
  readonly exitCode: number
  constructor(message: string, exitCode = 1) {
    super(message)
    this.name = 'CliError'
    this.exitCode = exitCode
  }
}

/** Why a file could not be read, in words (the errno names of fs errors are not for end users). */
function fsReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code
  switch (code) {
    case 'ENOENT':
      return 'no such file'
    case 'EISDIR':
      return 'is a directory'
    case 'EACCES':
    case 'EPERM':
      return 'permission denied'
    default:
      return (e as Error).message
  }
}

/** The bytes of `path` ('-' is standard input). */
export function readInput(path: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path === '-' ? 0 : path))
  } catch (e) {
    throw new CliError(`${displayName(path)}: cannot read: ${fsReason(e)}`)
  }
}

/** Writes `data` to `path` ('-' is standard output). */
export function writeOutput(path: string, data: Uint8Array | string): void {
  if (path === '-') {
    process.stdout.write(data)
    return
  }
  try {
    writeFileSync(path, data)
  } catch (e) {
    throw new CliError(`${path}: cannot write: ${fsReason(e)}`)
  }
}

export function displayName(path: string): string {
  return path === '-' ? '<stdin>' : path
}

/** ELF objects start with `\x7fELF`; anything else is taken as raw bytecode. */
export function isElf(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46
}

/**
 * Classic BPF as tcpdump prints it (`-dd` C array or `-ddd` decimal), recognised so that it is never
 * disassembled as eBPF bytes: such text read as 8-byte slots would be nonsense instructions. A
 * `tcpdump -d` listing cannot be read back (it is for people) and is refused with a hint.
 */
export function classicText(bytes: Uint8Array, file: string): { text: string; form: string } | undefined {
  if (bytes.length === 0 || bytes.length > 1 << 20 || bytes.some((b) => b === 0 || b > 0x7e)) return undefined
  const text = new TextDecoder().decode(bytes)
  if (cbpf.isDdText(text)) return { text, form: 'tcpdump -dd' }
  if (/^\s*\d+\s*[\n,]\s*\d+ \d+ \d+ \d+\s*([\n,]|$)/.test(text)) return { text, form: 'tcpdump -ddd' }
  if (/^\s*\(000\) \S/.test(text)) {
    throw new CliError(
      `${displayName(file)}: a 'tcpdump -d' listing of classic BPF, which cannot be read back; give 'tcpdump -dd' or '-ddd' output`,
    )
  }
  return undefined
}

/** Runs `fn`; a library error becomes a CliError that names `file` (exit 1). */
export function about<T>(file: string, fn: () => T): T {
  try {
    return fn()
  } catch (e) {
    if (e instanceof EbpfError) throw new CliError(`${displayName(file)}: ${e.message}${cliHint(e.message)}`)
    throw e
  }
}

/** The library names its load options; on the command line they are options of their own. */
export function cliHint(message: string): string {
  if (message.includes('kernelTypes')) return ' [on the command line: --kernel-btf FILE]'
  if (message.includes('kconfig load option')) return ' [on the command line: --kconfig NAME=VALUE]'
  return ''
}

/** Parses an object file into its spec; anything that is not a readable object is a CliError naming the file. */
export function readObject(path: string, options: LoadOptions = {}): CollectionSpec {
  const bytes = readInput(path)
  if (!isElf(bytes)) throw new CliError(`${displayName(path)}: not an ELF object file`)
  return about(path, () => loadCollectionSpecSync(bytes, options))
}

/** Bytes from hex text: whitespace, ':' and a leading 0x are ignored (`00 01`, `00:01`, `0x0001`). */
export function parseHex(text: string, what: string): Uint8Array {
  const clean = text.replace(/^0x/i, '').replace(/[\s:]/g, '')
  if (!/^[0-9a-fA-F]*$/.test(clean)) {
    const bad = /[^0-9a-fA-F]/.exec(clean)![0]
    throw new CliError(`${what}: '${bad}' is not a hex digit`)
  }
  if (clean.length % 2 !== 0) throw new CliError(`${what}: odd number of hex digits (${clean.length})`)
  return new Uint8Array(Buffer.from(clean, 'hex'))
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}

/** Assembles the text of `file`; an error is printed as compilers do, `FILE:LINE:COLUMN: message`. */
export function assembleFile(file: string, text: Uint8Array): Uint8Array {
  try {
    return assemble(Buffer.from(text.buffer, text.byteOffset, text.byteLength).toString('utf8'))
  } catch (e) {
    if (e instanceof AssembleError) {
      // The error's own message starts with "line:col: "; the file name goes in front of that.
      const prefix = `${e.line}:${e.column}: `
      const message = e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message
      throw new CliError(`${displayName(file)}:${e.line}:${e.column}: ${message}`)
    }
    throw e
  }
}
