/**
 * The llvm-objdump / kernel dialect, as llvm-objdump-19 prints it and llvm-mc reads it:
 * `r0 = 1`, `w1 += w2`, `r1 = *(u8 *)(r2 + 0x4)`, `if r1 s> r2 goto +3`, `lock *(u64 *)(r1 + 0) += r2`,
 * `r1 = 0x1122334455667788 ll`, `r0 = *(u16 *)skb[12]`. A `w` register selects the 32-bit form
 * of arithmetic and comparisons; loads, stores and atomics take their width from the `(u32 *)` cast
 * and accept either register name.
 */
import * as E from './encode.js'
import type { Cursor, Token } from './lexer.js'
import type { AluOp, AtomicOp, JumpOp, Size } from './opcodes.js'
import {
  imm32,
  mapReference,
  memoryDisplacement,
  type Reg,
  register,
  register64,
  signedNumber,
  startsNumber,
  target,
} from './operands.js'
import type { Output } from './output.js'

const COMPOUND: Readonly<Record<string, AluOp>> = {
  '+=': 'add',
  '-=': 'sub',
  '*=': 'mul',
  '/=': 'div',
  's/=': 'sdiv',
  '%=': 'mod',
  's%=': 'smod',
  '|=': 'or',
  '&=': 'and',
  '<<=': 'lsh',
  '>>=': 'rsh',
  's>>=': 'arsh',
  '^=': 'xor',
}

const COMPARE: Readonly<Record<string, JumpOp>> = {
  '==': 'jeq',
  '!=': 'jne',
  '>': 'jgt',
  '>=': 'jge',
  '<': 'jlt',
  '<=': 'jle',
  's>': 'jsgt',
  's>=': 'jsge',
  's<': 'jslt',
  's<=': 'jsle',
  '&': 'jset',
}

const LOCK_OPS: Readonly<Record<string, AtomicOp>> = { '+=': 'add', '|=': 'or', '&=': 'and', '^=': 'xor' }

const CASTS: Readonly<Record<string, { size: Size; signed: boolean }>> = {
  u8: { size: 'b', signed: false },
  u16: { size: 'h', signed: false },
  u32: { size: 'w', signed: false },
  u64: { size: 'dw', signed: false },
  s8: { size: 'b', signed: true },
  s16: { size: 'h', signed: true },
  s32: { size: 'w', signed: true },
}

/** `record[key]` for own keys only: `constructor` and friends are not operators. */
function own<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined
}

const ENDIAN = /^(be|le|bswap)(16|32|64)$/
// llvm-objdump: atomic_fetch_add((u64 *)(r1 + 0x8), r2), xchg_64(r1 + 0x8, r2), xchg32_32(...),
// cmpxchg_64(r1 + 0x8, r0, r2); the kernel's verifier log: atomic64_fetch_add((u64 *)(r1 +8), r2),
// atomic64_xchg((u64 *)(...), r2), atomic_cmpxchg((u32 *)(...), r0, r2).
const ATOMIC_CALL = /^(?:atomic(64)?_(fetch_(?:add|or|and|xor)|xchg|cmpxchg)|(xchg|cmpxchg)(_64|32_32))$/

/** True if the statement starting with `head` belongs to this dialect. */
export function isLlvmStart(head: Token, next: Token | undefined): boolean {
  if (head.kind === 'punct') return head.text === '*'
  if (head.kind === 'ident' && ['if', 'goto', 'gotol'].includes(head.text)) return true
  if (head.text === 'store_release') return next?.text === '('
  return head.text === 'lock' && next?.text === '*'
}

/** `(u32 *)`: the access size of a load, store or atomic. */
function sizeCast(cur: Cursor): { size: Size; signed: boolean; token: Token } {
  cur.expect('(', "a size cast such as '(u32 *)'")
  const t = cur.next('a size (u8, u16, u32, u64, s8, s16, s32)')
  const cast = own(CASTS, t.text)
  if (t.kind !== 'ident' || cast === undefined) cur.fail(`unknown access size '${t.text}'`, t)
  cur.expect('*', "'*' in the size cast")
  cur.expect(')', "')' closing the size cast")
  return { ...cast, token: t }
}

/** `(rN + off)` / `(rN - off)` / `(rN)`, or without parentheses inside xchg/cmpxchg. */
function address(cur: Cursor, parenthesised: boolean): { base: number; off: number } {
  if (parenthesised) cur.expect('(', "a memory operand '(rN + off)'")
  const base = register64(cur, 'a memory base').index
  const off = memoryDisplacement(cur)
  if (parenthesised) cur.expect(')', "')' closing the memory operand")
  return { base, off }
}

function sameRegister(cur: Cursor, r: Reg, expected: Reg, what: string): void {
  if (r.index !== expected.index) {
    cur.fail(`${what}: expected ${expected.token.text}, found '${r.token.text}'`, r.token)
  }
}

function sameWidth(cur: Cursor, r: Reg, dst: Reg): void {
  if (r.w !== dst.w) {
    cur.fail(
      `register '${r.token.text}' does not match the width of '${dst.token.text}' (use both r or both w)`,
      r.token,
    )
  }
}

function regOrImm(cur: Cursor, dst: Reg): E.Operand {
  if (startsNumber(cur)) return { imm: imm32(cur) }
  const r = register(cur)
  sameWidth(cur, r, dst)
  return { reg: r.index }
}

/** Parses one statement; the cursor is at its first token. */
export function llvmStatement(cur: Cursor, out: Output): void {
  const head = cur.peek()
  const keyword = head?.kind === 'number' ? undefined : head?.text
  if (keyword === 'if' || keyword === 'goto' || keyword === 'gotol' || keyword === 'lock' || keyword === '*') {
    cur.next(keyword)
    if (keyword === 'if') {
      conditional(cur, out)
      return
    }
    if (keyword === 'goto') {
      out.emitTo(E.ja(0), 'off', target(cur, 16))
      return
    }
    if (keyword === 'gotol') {
      out.emitTo(E.ja32(0), 'imm', target(cur, 32))
      return
    }
    if (keyword === 'lock') {
      lock(cur, out)
      return
    }
    store(cur, out)
    return
  }
  if (keyword === 'store_release') {
    cur.next(keyword)
    storeRelease(cur, out)
    return
  }
  // Everything else starts with the destination register.
  const dst = register(cur)
  const op = cur.next("an operator such as '=' or '+='")
  if (op.text === '=' && op.kind === 'punct') {
    assignment(dst, cur, out)
    return
  }
  const alu = op.kind === 'punct' ? own(COMPOUND, op.text) : undefined
  if (alu === undefined) cur.fail(`unknown operator '${op.text}'`, op)
  out.emit(E.alu(!dst.w, alu, dst.index, regOrImm(cur, dst)))
}

function conditional(cur: Cursor, out: Output): void {
  const dst = register(cur)
  const cmp = cur.next('a comparison')
  const op = cmp.kind === 'punct' ? own(COMPARE, cmp.text) : undefined
  if (op === undefined) cur.fail(`unknown comparison '${cmp.text}'`, cmp)
  const operand = regOrImm(cur, dst)
  cur.expect('goto', "'goto'")
  out.emitTo(E.jump(!dst.w, op, dst.index, operand, 0), 'off', target(cur, 16))
}

function store(cur: Cursor, out: Output): void {
  const { size, signed, token } = sizeCast(cur)
  if (signed) cur.fail(`stores take an unsigned size, found '${token.text}'`, token)
  const { base, off } = address(cur, true)
  cur.expect('=', "'='")
  if (startsNumber(cur)) out.emit(E.st(size, base, off, imm32(cur)))
  else out.emit(E.stx(size, base, off, register(cur).index))
}

function lock(cur: Cursor, out: Output): void {
  cur.expect('*')
  const { size, signed, token } = sizeCast(cur)
  if (signed || (size !== 'w' && size !== 'dw'))
    cur.fail(`atomic operations are u32 or u64, found '${token.text}'`, token)
  const { base, off } = address(cur, true)
  const opTok = cur.next("an atomic operator ('+=', '|=', '&=', '^=')")
  const op = own(LOCK_OPS, opTok.text)
  if (op === undefined || opTok.kind !== 'punct') cur.fail(`unknown atomic operator '${opTok.text}'`, opTok)
  out.emit(E.atomic(size === 'dw', op, false, base, off, register(cur).index))
}

/** The right-hand sides of `dst = ...`. */
function assignment(dst: Reg, cur: Cursor, out: Output): void {
  const t = cur.peek()
  if (t === undefined) cur.fail("expected a value after '='")
  if (t.text === '*' && t.kind === 'punct') {
    load(dst, cur, out)
    return
  }
  if (t.text === '(' && t.kind === 'punct') {
    // movsx: `r1 = (s8)r2`
    cur.next('(')
    const c = cur.next('s8, s16 or s32')
    const bits = own({ s8: 8, s16: 16, s32: 32 }, c.text)
    if (bits === undefined || c.kind !== 'ident') cur.fail(`unknown sign-extension cast '${c.text}'`, c)
    if (dst.w && bits === 32) cur.fail('32-bit movsx takes (s8) or (s16)', c)
    cur.expect(')', "')'")
    const src = register(cur)
    sameWidth(cur, src, dst)
    out.emit(E.movsx(!dst.w, dst.index, src.index, bits))
    return
  }
  if (t.kind === 'ident') {
    const endian = ENDIAN.exec(t.text)
    if (endian) {
      cur.next('byte-order operation')
      sameRegister(cur, register(cur), dst, 'byte-order operations work in place')
      out.emit(E.endian(endian[1] as 'be' | 'le' | 'bswap', dst.index, Number(endian[2])))
      return
    }
    if (t.text === 'load_acquire') {
      cur.next('load_acquire')
      loadAcquire(dst, cur, out)
      return
    }
    const call = ATOMIC_CALL.exec(t.text)
    if (call) {
      cur.next('atomic operation')
      atomicCall(dst, call, cur, out)
      return
    }
  }
  if (t.text === '-' && t.kind === 'punct' && cur.peek(1)?.kind !== 'number') {
    cur.next('-')
    const src = register(cur)
    sameRegister(cur, src, dst, 'neg works in place')
    sameWidth(cur, src, dst)
    out.emit(E.neg(!dst.w, dst.index))
    return
  }
  const ref = mapReference(cur)
  if (ref) {
    if (dst.w) cur.fail('a map reference needs a 64-bit register', dst.token)
    cur.accept('ll')
    out.emit(...E.lddw(dst.index, ref.value, ref.src))
    return
  }
  if (startsNumber(cur)) {
    const { value, token } = signedNumber(cur, 'a value')
    if (cur.accept('ll')) {
      if (dst.w) cur.fail('a 64-bit immediate (ll) needs a 64-bit register', dst.token)
      if (value < -(2n ** 63n) || value > 2n ** 64n - 1n) cur.fail(`immediate ${value} does not fit in 64 bits`, token)
      out.emit(...E.lddw(dst.index, value))
      return
    }
    if (value < -(2n ** 31n) || value > 2n ** 32n - 1n) {
      cur.fail(`immediate ${value} does not fit in 32 bits (write 'll' after it for lddw)`, token)
    }
    out.emit(E.alu(!dst.w, 'mov', dst.index, { imm: Number(BigInt.asIntN(32, value)) }))
    return
  }
  const src = register(cur)
  sameWidth(cur, src, dst)
  out.emit(E.alu(!dst.w, 'mov', dst.index, { reg: src.index }))
}

/** `dst = *(u32 *)(src + off)` and the packet loads `r0 = *(u16 *)skb[12]` / `skb[r1 + 4]`. */
function load(dst: Reg, cur: Cursor, out: Output): void {
  cur.expect('*')
  const { size, signed, token } = sizeCast(cur)
  if (cur.accept('skb')) {
    if (signed || size === 'dw') cur.fail(`packet loads are u8, u16 or u32, found '${token.text}'`, token)
    if (dst.index !== 0) cur.fail('packet loads (skb[...]) always load into r0', dst.token)
    const s = size as 'b' | 'h' | 'w'
    cur.expect('[', "'['")
    if (startsNumber(cur)) {
      out.emit(E.ldabs(s, imm32(cur)))
    } else {
      const src = register64(cur, 'a packet index register').index
      let imm = 0
      const sign = cur.accept('+') ?? cur.accept('-')
      if (sign) {
        const v = imm32(cur, 'an offset')
        imm = sign.text === '-' ? -v | 0 : v
      }
      out.emit(E.ldind(s, src, imm))
    }
    cur.expect(']', "']'")
    return
  }
  const { base, off } = address(cur, true)
  out.emit(E.ldx(size, dst.index, base, off, signed))
}

/** The `(uN *)(rB + off)` operand of load-acquire and store-release (any unsigned size). */
function orderedOperand(cur: Cursor): { size: Size; base: number; off: number } {
  cur.expect('(', "'('")
  const { size, signed, token } = sizeCast(cur)
  if (signed) cur.fail(`load-acquire and store-release take an unsigned size, found '${token.text}'`, token)
  return { size, ...address(cur, true) }
}

/**
 * `wD = load_acquire((u8 *)(rS + off))` as LLVM 21 writes it (a w register below 64 bits), or
 * `rD = ...` for any size as the kernel's verifier log does.
 */
function loadAcquire(dst: Reg, cur: Cursor, out: Output): void {
  const { size, base, off } = orderedOperand(cur)
  if (dst.w && size === 'dw') cur.fail('a 64-bit load-acquire needs a 64-bit register', dst.token)
  cur.expect(')', "')'")
  out.emit(E.loadAcquire(size, dst.index, base, off))
}

/** `store_release((u8 *)(rD + off), wS)` (LLVM 21), or with `rS` (the kernel's verifier log). */
function storeRelease(cur: Cursor, out: Output): void {
  const { size, base, off } = orderedOperand(cur)
  cur.expect(',', "','")
  const src = register(cur)
  if (src.w && size === 'dw') cur.fail('a 64-bit store-release needs a 64-bit register', src.token)
  cur.expect(')', "')'")
  out.emit(E.storeRelease(size, base, off, src.index))
}

/** `dst = <atomic>(...)`: the function-call forms of fetching atomics (see ATOMIC_CALL). */
function atomicCall(dst: Reg, m: RegExpExecArray, cur: Cursor, out: Output): void {
  const [name, kernel64, kernelOp, llvmOp, llvmWidth] = m
  const op = (kernelOp ?? llvmOp)!.replace('fetch_', '') as AtomicOp | 'xchg' | 'cmpxchg'
  cur.expect('(', "'('")
  let wide: boolean
  if (llvmWidth !== undefined) {
    // llvm-objdump names the width and writes the address without a cast.
    wide = llvmWidth === '_64'
  } else {
    const { size, token } = sizeCast(cur)
    if (size !== 'w' && size !== 'dw') cur.fail(`atomic operations are u32 or u64, found '${token.text}'`, token)
    wide = size === 'dw'
    if (kernel64 !== undefined && !wide) cur.fail(`'${name}' takes a (u64 *) address`, token)
  }
  const { base, off } = address(cur, llvmWidth === undefined)
  cur.expect(',', "','")
  if (op === 'cmpxchg') {
    // cmpxchg compares with r0 and returns the old value there.
    if (dst.index !== 0) cur.fail('cmpxchg returns the old value in r0', dst.token)
    const r0 = register(cur)
    if (r0.index !== 0) cur.fail('cmpxchg compares with r0', r0.token)
    cur.expect(',', "','")
  }
  const src = register(cur)
  if (op !== 'cmpxchg') sameRegister(cur, src, dst, 'the old value goes to the source register')
  cur.expect(')', "')'")
  out.emit(E.atomic(wide, op, true, base, off, src.index))
}
