/**
 * The bpf_conformance dialect: `mnemonic operand, operand`, registers `%r0`-`%r10`, memory
 * operands `[%r1+8]`. The grammar is the suite's (see its README); operands may be separated by
 * commas or spaces. Also reads `ldabs{b,h,w} imm` and `ldind{b,h,w} %rS, imm` (uBPF's names for the
 * legacy packet loads, which the suite has no syntax for).
 */
import * as E from './encode.js'
import type { Cursor, Token } from './lexer.js'
import { type AluOp, ATOMIC_OPS, type AtomicOp, type JumpOp, type Size } from './opcodes.js'
import {
  imm32,
  imm64,
  mapReference,
  memoryDisplacement,
  type Reg,
  register,
  register64,
  startsNumber,
  target,
} from './operands.js'
import type { Output } from './output.js'

const ALU = /^(add|sub|mul|div|sdiv|or|and|lsh|rsh|mod|smod|xor|mov|arsh)(32|64)?$/
const NEG = /^neg(32|64)?$/
const MOVSX = /^movsx(8|16|32)(32|64)$/
const ENDIAN = /^(be|le|bswap|swap)(16|32|64)$/
const LDX = /^ldx(s?)(b|h|w|dw)$/
const ST = /^st(b|h|w|dw)$/
const STX = /^stx(b|h|w|dw)$/
const PACKET = /^ld(abs|ind)(b|h|w)$/
const JUMP = /^(jeq|jgt|jge|jset|jne|jsgt|jsge|jlt|jle|jslt|jsle)(32)?$/

/** True if `word` is a mnemonic of this dialect (the assembler dispatches on it). */
export function isConformanceMnemonic(word: string): boolean {
  return (
    [ALU, NEG, MOVSX, ENDIAN, LDX, ST, STX, PACKET, JUMP].some((re) => re.test(word)) ||
    ['lddw', 'ja', 'ja32', 'lock'].includes(word)
  )
}

function comma(cur: Cursor): void {
  cur.accept(',')
}

/** A register written with or without `%` (the suite always writes `%`). */
function reg(cur: Cursor): Reg {
  const r = register(cur)
  if (r.w) cur.fail(`unknown register '${r.token.text}' (this dialect has %r0-%r10)`, r.token)
  return r
}

/** `[%rN]`, `[%rN+off]`, `[%rN-off]`. */
function memory(cur: Cursor): { base: number; off: number } {
  cur.expect('[', "a memory operand '[%rN+off]'")
  const base = register64(cur, 'a memory base').index
  const off = memoryDisplacement(cur)
  cur.expect(']', "']' closing the memory operand")
  return { base, off }
}

function regOrImm(cur: Cursor): E.Operand {
  return startsNumber(cur) ? { imm: imm32(cur) } : { reg: reg(cur).index }
}

/** Parses one statement whose mnemonic `head` has been read. */
export function conformanceStatement(head: Token, cur: Cursor, out: Output): void {
  const word = head.text
  for (const [re, parse] of STATEMENTS) {
    const m = re.exec(word)
    if (m) {
      parse(m, cur, out, head)
      return
    }
  }
  cur.fail(`unknown mnemonic '${word}'`, head)
}

type Parse = (m: RegExpExecArray, cur: Cursor, out: Output, head: Token) => void

const STATEMENTS: [RegExp, Parse][] = [
  [
    ALU,
    (m, cur, out) => {
      const dst = reg(cur).index
      comma(cur)
      out.emit(E.alu(m[2] !== '32', m[1] as AluOp, dst, regOrImm(cur)))
    },
  ],
  [NEG, (m, cur, out) => out.emit(E.neg(m[1] !== '32', reg(cur).index))],
  [
    MOVSX,
    (m, cur, out, head) => {
      const bits = Number(m[1])
      const wide = m[2] === '64'
      if (!wide && bits === 32) cur.fail(`'${head.text}' does not exist: 32-bit movsx takes 8 or 16`, head)
      const dst = reg(cur).index
      comma(cur)
      out.emit(E.movsx(wide, dst, reg(cur).index, bits))
    },
  ],
  [
    ENDIAN,
    (m, cur, out) => {
      const op = m[1] === 'swap' ? 'bswap' : (m[1] as 'be' | 'le' | 'bswap')
      out.emit(E.endian(op, reg(cur).index, Number(m[2])))
    },
  ],
  [
    LDX,
    (m, cur, out, head) => {
      if (m[1] === 's' && m[2] === 'dw')
        cur.fail(`'${head.text}' does not exist: sign-extending loads are b, h, w`, head)
      const dst = reg(cur).index
      comma(cur)
      const { base, off } = memory(cur)
      out.emit(E.ldx(m[2] as Size, dst, base, off, m[1] === 's'))
    },
  ],
  [
    ST,
    (m, cur, out) => {
      const { base, off } = memory(cur)
      comma(cur)
      out.emit(E.st(m[1] as Size, base, off, imm32(cur)))
    },
  ],
  [
    STX,
    (m, cur, out) => {
      const { base, off } = memory(cur)
      comma(cur)
      out.emit(E.stx(m[1] as Size, base, off, reg(cur).index))
    },
  ],
  [
    PACKET,
    (m, cur, out) => {
      const size = m[2] as 'b' | 'h' | 'w'
      if (m[1] === 'abs') {
        out.emit(E.ldabs(size, imm32(cur)))
        return
      }
      const src = reg(cur).index
      comma(cur)
      out.emit(E.ldind(size, src, imm32(cur)))
    },
  ],
  [
    JUMP,
    (m, cur, out) => {
      const dst = reg(cur).index
      comma(cur)
      const operand = regOrImm(cur)
      comma(cur)
      out.emitTo(E.jump(m[2] !== '32', m[1] as JumpOp, dst, operand, 0), 'off', target(cur, 16))
    },
  ],
  [
    /^lddw$/,
    (_m, cur, out) => {
      const dst = reg(cur).index
      comma(cur)
      const ref = mapReference(cur)
      out.emit(...(ref ? E.lddw(dst, ref.value, ref.src) : E.lddw(dst, imm64(cur))))
    },
  ],
  [/^ja$/, (_m, cur, out) => out.emitTo(E.ja(0), 'off', target(cur, 16))],
  [/^ja32$/, (_m, cur, out) => out.emitTo(E.ja32(0), 'imm', target(cur, 32))],
  [/^lock$/, (_m, cur, out) => lock(cur, out)],
]

const LOCK_OP = /^(add|and|or|xor|xchg|cmpxchg)(32)?$/

/** `lock [fetch] add|and|or|xor[32] [mem], %rS`, `lock xchg[32] ...`, `lock cmpxchg[32] ...`. */
function lock(cur: Cursor, out: Output): void {
  const fetch = cur.accept('fetch') !== undefined
  const t = cur.next('an atomic operation')
  const m = t.kind === 'ident' ? LOCK_OP.exec(t.text) : null
  if (m === null) cur.fail(`unknown atomic operation '${t.text}'`, t)
  const { base, off } = memory(cur)
  comma(cur)
  const src = reg(cur).index
  const op = m[1] as AtomicOp | 'xchg' | 'cmpxchg'
  // xchg and cmpxchg always fetch; `fetch` in front of them is redundant but harmless.
  out.emit(E.atomic(m[2] !== '32', op, fetch || !(op in ATOMIC_OPS), base, off, src))
}
