/**
 * Reading classic BPF programs: `tcpdump -dd` (C array of `struct sock_filter` initialisers),
 * `tcpdump -ddd` (a count, then `code jt jf k` in decimal per line; commas may stand for newlines,
 * as in iptables' `--bytecode`), `struct sock_filter` bytes (8 each, little-endian as on the hosts
 * we run on) and JavaScript arrays of `{ code, jt, jf, k }` objects or `[code, jt, jf, k]` tuples.
 */
import { describeValue } from '../arguments.js'
import { LoadError } from '../errors.js'
import { type ClassicInstruction, SOCK_FILTER_SIZE } from './instruction.js'

/** What `parse` reads. */
export type ClassicInput =
  | string
  | Uint8Array
  | ReadonlyArray<ClassicInstruction | readonly [number, number, number, number]>

/** The instructions of a classic BPF program in any of the accepted forms. */
export function parse(input: ClassicInput): ClassicInstruction[] {
  if (typeof input === 'string') return parseText(input)
  if (input instanceof Uint8Array) return parseBytes(input)
  if (Array.isArray(input)) return input.map((v, i) => fromValue(v, i))
  throw new LoadError(
    'EINVAL',
    `a classic BPF program must be tcpdump -dd/-ddd text, struct sock_filter bytes or an array, got ${describeValue(input)}`,
  )
}

/** True when `text` looks like `tcpdump -dd` output (a C array of 4-field initialisers). */
export function isDdText(text: string): boolean {
  return /^\s*\{\s*(0x[0-9a-f]+|\d+)\s*,\s*\d+\s*,\s*\d+\s*,\s*(0x[0-9a-f]+|\d+)\s*\}\s*,?\s*(\n|$)/i.test(text)
}

function parseText(text: string): ClassicInstruction[] {
  return text.includes('{') ? parseDd(text) : parseDdd(text)
}

function parseDd(text: string): ClassicInstruction[] {
  const out: ClassicInstruction[] = []
  const group = /\{([^{}]*)\}/g
  let last = 0
  for (let m = group.exec(text); m !== null; m = group.exec(text)) {
    between(text, last, m.index, out.length)
    const fields = m[1]!.split(',').map((s) => s.trim())
    if (fields.length !== 4) {
      throw new LoadError('EINVAL', `${lineOf(text, m.index)}: '{${m[1]}}' must have 4 fields: code, jt, jf, k`)
    }
    out.push(fromFields(fields, `${lineOf(text, m.index)}`, out.length))
    last = m.index + m[0].length
  }
  between(text, last, text.length, out.length)
  if (out.length === 0) throw new LoadError('EINVAL', 'no { code, jt, jf, k } instruction in the text')
  return out
}

/** Between initialisers only commas, whitespace and C comments may stand. */
function between(text: string, from: number, to: number, insn: number): void {
  const rest = text
    .slice(from, to)
    .replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, '')
    .replace(/[\s,]/g, '')
  if (rest !== '') {
    throw new LoadError('EINVAL', `${lineOf(text, from)}: unexpected '${rest.slice(0, 20)}' before instruction ${insn}`)
  }
}

function parseDdd(text: string): ClassicInstruction[] {
  const lines = text
    .split(/[\n,]/)
    .map((l) => l.trim())
    .filter((l) => l !== '')
  if (lines.length === 0) throw new LoadError('EINVAL', 'empty classic BPF program text')
  const count = Number(lines[0])
  if (!/^\d+$/.test(lines[0]!)) {
    throw new LoadError('EINVAL', `line 1: the tcpdump -ddd form starts with the instruction count, got '${lines[0]}'`)
  }
  const out = lines.slice(1).map((l, i) => fromFields(l.split(/\s+/), `instruction ${i}`, i))
  if (count !== out.length) {
    throw new LoadError('EINVAL', `the text says ${count} instructions but holds ${out.length}`)
  }
  return out
}

function fromFields(fields: string[], where: string, insn: number): ClassicInstruction {
  if (fields.length !== 4) {
    throw new LoadError('EINVAL', `${where}: expected 4 fields (code jt jf k), got '${fields.join(' ')}'`, insn)
  }
  const [code, jt, jf, k] = fields.map((f) => {
    if (!/^(0x[0-9a-f]+|\d+)$/i.test(f)) throw new LoadError('EINVAL', `${where}: '${f}' is not a number`, insn)
    return Number(f)
  }) as [number, number, number, number]
  return checked({ code, jt, jf, k }, insn)
}

function fromValue(v: unknown, i: number): ClassicInstruction {
  if (Array.isArray(v)) {
    if (v.length !== 4) throw new LoadError('EINVAL', `instruction ${i}: a tuple must be [code, jt, jf, k]`, i)
    return checked({ code: v[0], jt: v[1], jf: v[2], k: v[3] }, i)
  }
  if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>
    return checked({ code: o.code, jt: o.jt ?? 0, jf: o.jf ?? 0, k: o.k ?? 0 }, i)
  }
  throw new LoadError('EINVAL', `instruction ${i} must be { code, jt, jf, k } or a 4-tuple, got ${describeValue(v)}`, i)
}

/** Field ranges of `struct sock_filter`; `k` may be given signed (SKF_AD_OFF is -0x1000) and is kept unsigned. */
function checked(f: Record<'code' | 'jt' | 'jf' | 'k', unknown>, i: number): ClassicInstruction {
  const field = (name: string, v: unknown, min: number, max: number): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw new LoadError(
        'EINVAL',
        `instruction ${i}: ${name} must be an integer from ${min} to ${max}, got ${describeValue(v)}`,
        i,
      )
    }
    return v
  }
  return {
    code: field('code', f.code, 0, 0xffff),
    jt: field('jt', f.jt, 0, 0xff),
    jf: field('jf', f.jf, 0, 0xff),
    k: field('k', f.k, -0x80000000, 0xffffffff) >>> 0,
  }
}

function parseBytes(bytes: Uint8Array): ClassicInstruction[] {
  if (bytes.length === 0 || bytes.length % SOCK_FILTER_SIZE !== 0) {
    throw new LoadError(
      'EINVAL',
      `struct sock_filter bytes must be a non-zero multiple of ${SOCK_FILTER_SIZE}, got ${bytes.length}`,
    )
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const out: ClassicInstruction[] = []
  for (let at = 0; at < bytes.length; at += SOCK_FILTER_SIZE) {
    out.push({
      code: view.getUint16(at, true),
      jt: view.getUint8(at + 2),
      jf: view.getUint8(at + 3),
      k: view.getUint32(at + 4, true),
    })
  }
  return out
}

/** `struct sock_filter` bytes of instructions (little-endian), as `setsockopt(SO_ATTACH_FILTER)` takes them here. */
export function toBytes(insns: readonly ClassicInstruction[]): Uint8Array {
  const out = new Uint8Array(insns.length * SOCK_FILTER_SIZE)
  const view = new DataView(out.buffer)
  insns.forEach((ins, i) => {
    const at = i * SOCK_FILTER_SIZE
    view.setUint16(at, ins.code, true)
    view.setUint8(at + 2, ins.jt)
    view.setUint8(at + 3, ins.jf)
    view.setUint32(at + 4, ins.k >>> 0, true)
  })
  return out
}

function lineOf(text: string, at: number): string {
  return `line ${text.slice(0, at).split('\n').length}`
}
