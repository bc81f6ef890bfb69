/**
 * Reader of the bpf_conformance suite's `.data` files, following the suite's own parser
 * (see ../shared/conformance/README.md): `#` starts a comment anywhere, a line containing `--` is
 * a section header, `-- mem` is hex bytes, `-- result` the expected r0 (last line counts),
 * `-- raw` 64-bit instruction words that replace the asm.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'

export interface ConformanceCase {
  name: string
  /** The `-- asm` section, comments removed, line structure kept. */
  asm: string
  /** 64-bit words of `-- raw`, when present (they replace the asm). */
  raw: bigint[] | undefined
  mem: Uint8Array
  expected: bigint
}

/** `$BPF_CONFORMANCE_DIR`, else `../shared/conformance/tests` relative to the project root. */
export function conformanceDir(): string {
  return process.env.BPF_CONFORMANCE_DIR ?? resolve(__dirname, '..', '..', '..', 'shared', 'conformance', 'tests')
}

export function conformanceSuiteExists(): boolean {
  return existsSync(conformanceDir())
}

export function parseConformance(name: string, text: string): ConformanceCase {
  let section = 'ignore'
  const asm: string[] = []
  const raw: string[] = []
  const mem: string[] = []
  let result: string | undefined
  for (const full of text.split(/\r?\n/)) {
    const hash = full.indexOf('#')
    const line = hash >= 0 ? full.slice(0, hash) : full
    if (line.includes('--')) {
      // The suite's parser checks these words in this order.
      if (line.includes('asm')) section = 'asm'
      else if (line.includes('result')) section = 'result'
      else if (line.includes('mem')) section = 'mem'
      else if (line.includes('raw')) section = 'raw'
      else section = 'ignore'
      continue
    }
    if (section === 'asm') asm.push(line)
    else if (line.trim() === '') continue
    else if (section === 'result') result = line.trim()
    else if (section === 'mem') mem.push(line)
    else if (section === 'raw') raw.push(line)
  }
  if (result === undefined) throw new Error(`${name}: no -- result section`)
  const bytes = mem
    .join(' ')
    .split(/\s+/)
    .filter((b) => b !== '')
    .map((b) => Number.parseInt(b, 16))
  const words = raw
    .join(' ')
    .split(/\s+/)
    .filter((w) => w !== '')
    .map((w) => BigInt(w))
  return {
    name,
    asm: asm.join('\n'),
    raw: words.length > 0 ? words : undefined,
    mem: Uint8Array.from(bytes),
    expected: BigInt.asUintN(64, BigInt(result)),
  }
}

/** Every `*.data` case of the suite, sorted by name. */
export function loadConformanceSuite(dir = conformanceDir()): ConformanceCase[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.data'))
    .sort()
    .map((f) => parseConformance(f, readFileSync(join(dir, f), 'utf8')))
}

/** Raw 64-bit words (low byte = opcode) to bytecode, as the suite's parser reinterprets them. */
export function wordsToBytes(words: readonly bigint[]): Uint8Array {
  const out = new Uint8Array(words.length * 8)
  const view = new DataView(out.buffer)
  words.forEach((w, i) => {
    view.setBigUint64(i * 8, BigInt.asUintN(64, w), true)
  })
  return out
}
