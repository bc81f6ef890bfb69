/**
 * Classic BPF to text in the format of `tcpdump -d` (libpcap's `bpf_image`): `(NNN) op       operand`,
 * conditional jumps with `jt N\tjf N` as absolute targets, ancillary loads by libpcap's names.
 * Numbers are printed as libpcap prints them (`%d` of the signed 32-bit `k` or `#0x%x`), so the
 * text equals tcpdump's for the same program.
 */

import { ANCILLARY_NAMES, ancillaryOf, type ClassicInstruction } from './instruction.js'
import { type ClassicInput, parse } from './parse.js'

const signed = (k: number): string => String(k | 0)
const hex = (k: number): string => `0x${(k >>> 0).toString(16)}`

/** `[k]`, or `[name]` for a known ancillary load. */
function absOperand(k: number): string {
  const anc = ancillaryOf(k)
  const name = anc === undefined ? undefined : ANCILLARY_NAMES[anc]
  return name === undefined ? `[${signed(k)}]` : `[${name}]`
}

/** Mnemonic and operand of one instruction at index `n`. */
function image(p: ClassicInstruction, n: number): [string, string] {
  const k = p.k
  switch (p.code) {
    case 0x06:
      return ['ret', `#${signed(k)}`]
    case 0x16:
      return ['ret', '']
    case 0x20:
      return ['ld', absOperand(k)]
    case 0x28:
      return ['ldh', absOperand(k)]
    case 0x30:
      return ['ldb', absOperand(k)]
    case 0x80:
      return ['ld', '#pktlen']
    case 0x40:
      return ['ld', `[x + ${signed(k)}]`]
    case 0x48:
      return ['ldh', `[x + ${signed(k)}]`]
    case 0x50:
      return ['ldb', `[x + ${signed(k)}]`]
    case 0x00:
      return ['ld', `#${hex(k)}`]
    case 0x01:
      return ['ldx', `#${hex(k)}`]
    case 0xb1:
      return ['ldxb', `4*([${signed(k)}]&0xf)`]
    case 0x60:
      return ['ld', `M[${signed(k)}]`]
    case 0x61:
      return ['ldx', `M[${signed(k)}]`]
    case 0x02:
      return ['st', `M[${signed(k)}]`]
    case 0x03:
      return ['stx', `M[${signed(k)}]`]
    case 0x05:
      return ['ja', String((n + 1 + k) | 0)]
    case 0x84:
      return ['neg', '']
    case 0x07:
      return ['tax', '']
    case 0x87:
      return ['txa', '']
  }
  const cls = p.code & 0x07
  const op = p.code & 0xf0
  const byX = (p.code & 0x08) !== 0
  if (cls === 0x05 && (p.code & ~0xf8) === 0x05) {
    const name = ({ 16: 'jeq', 32: 'jgt', 48: 'jge', 64: 'jset' } as Record<number, string>)[op]
    if (name !== undefined) return [name, byX ? 'x' : `#${hex(k)}`]
  }
  if (cls === 0x04 && (p.code & ~0xf8) === 0x04) {
    const names: Record<number, [string, boolean]> = {
      0: ['add', false],
      16: ['sub', false],
      32: ['mul', false],
      48: ['div', false],
      144: ['mod', false],
      80: ['and', true],
      64: ['or', true],
      160: ['xor', true],
      96: ['lsh', false],
      112: ['rsh', false],
    }
    const entry = names[op]
    if (entry !== undefined) return [entry[0], byX ? 'x' : entry[1] ? `#${hex(k)}` : `#${signed(k)}`]
  }
  return ['unimp', hex(p.code)]
}

/** One line of `tcpdump -d` for instruction `n`. */
export function disassembleInstruction(p: ClassicInstruction, n: number): string {
  const [op, operand] = image(p, n)
  const at = `(${String(n).padStart(3, '0')}) ${op.padEnd(8)}`
  if ((p.code & 0x07) === 0x05 && (p.code & 0xf0) !== 0x00) {
    return `${at} ${operand.padEnd(16)} jt ${n + 1 + p.jt}\tjf ${n + 1 + p.jf}`
  }
  return `${at} ${operand}`
}

/** The listing of a classic BPF program, one line per instruction, as `tcpdump -d` prints it. */
export function disassemble(program: ClassicInput): string {
  return parse(program)
    .map((p, n) => `${disassembleInstruction(p, n)}\n`)
    .join('')
}
