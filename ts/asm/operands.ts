/**
 * Operand readers shared by both dialects: registers, numbers in range, memory operands and jump
 * targets. Each reads from a Cursor and fails at the token it could not accept.
 */
import type { Cursor, Token } from './lexer.js'

/** A register as written: its number and whether it was a 32-bit `w` name. */
export interface Reg {
  index: number
  w: boolean
  token: Token
}

/** Where a jump or call goes: a label, or a slot offset written out. */
export type Target = { label: string; token: Token } | { offset: number; token: Token }

const REG_NAME = /^%?([rw])([0-9]+)$/

/** True if the token looks like a register name (valid or not). */
export function looksLikeRegister(t: Token | undefined): boolean {
  return t !== undefined && (t.kind === 'reg' || (t.kind === 'ident' && REG_NAME.test(t.text)))
}

/** Reads `r0`-`r10`, `w0`-`w10` or `%r0`-`%r10`. */
export function register(cur: Cursor): Reg {
  const t = cur.next('a register')
  const m = t.kind === 'reg' || t.kind === 'ident' ? REG_NAME.exec(t.text) : null
  if (m === null || (t.kind === 'reg' && m[1] === 'w')) {
    if (t.kind === 'reg') cur.fail(`unknown register '${t.text}'`, t)
    cur.fail(`expected a register, found '${t.text}'`, t)
  }
  const index = Number(m[2])
  if (index > 10 || (m[2]!.length > 1 && m[2]!.startsWith('0'))) {
    cur.fail(`unknown register '${t.text}' (registers are r0-r10)`, t)
  }
  return { index, w: m[1] === 'w', token: t }
}

/** A 64-bit register name (`r` or `%r`), for memory bases and `lddw`. */
export function register64(cur: Cursor, what: string): Reg {
  const r = register(cur)
  if (r.w) cur.fail(`${what} must be a 64-bit register (r0-r10), found '${r.token.text}'`, r.token)
  return r
}

/** An optionally signed integer literal, as an exact bigint, and the token where it starts. */
export function signedNumber(cur: Cursor, what: string): { value: bigint; token: Token } {
  const first = cur.next(what)
  let negative = false
  let t = first
  if (t.kind === 'punct' && (t.text === '-' || t.text === '+')) {
    negative = t.text === '-'
    t = cur.next(what)
  }
  if (t.kind !== 'number') cur.fail(`expected ${what}, found '${t.text}'`, t)
  const magnitude = BigInt(t.text)
  return { value: negative ? -magnitude : magnitude, token: first }
}

/** True if the next tokens start a number (`5`, `-5`, `+0x5`). */
export function startsNumber(cur: Cursor): boolean {
  const t = cur.peek()
  if (t?.kind === 'number') return true
  return t?.kind === 'punct' && (t.text === '-' || t.text === '+') && cur.peek(1)?.kind === 'number'
}

/**
 * A 32-bit immediate. Both signed (-2^31..2^31-1) and unsigned (up to 2^32-1) spellings are
 * accepted, since tools print both; the result is the signed field value.
 */
export function imm32(cur: Cursor, what = 'an immediate'): number {
  const { value, token } = signedNumber(cur, what)
  return checkImm32(cur, value, token)
}

export function checkImm32(cur: Cursor, value: bigint, token: Token): number {
  if (value < -(2n ** 31n) || value > 2n ** 32n - 1n) {
    cur.fail(`immediate ${value} does not fit in 32 bits`, token)
  }
  return Number(BigInt.asIntN(32, value))
}

/** A 64-bit immediate (`lddw`): -2^63..2^64-1. */
export function imm64(cur: Cursor): bigint {
  const { value, token } = signedNumber(cur, 'a 64-bit immediate')
  if (value < -(2n ** 63n) || value > 2n ** 64n - 1n) cur.fail(`immediate ${value} does not fit in 64 bits`, token)
  return BigInt.asUintN(64, value)
}

export function checkOffset16(cur: Cursor, value: bigint, token: Token, what = 'offset'): number {
  if (value < -32768n || value > 32767n) cur.fail(`${what} ${value} is out of the 16-bit range (-32768..32767)`, token)
  return Number(value)
}

/** The `+ off` / `- off` that follows a base register inside a memory operand (0 when absent). */
export function memoryDisplacement(cur: Cursor): number {
  const sign = cur.peek()
  if (sign?.kind !== 'punct' || (sign.text !== '+' && sign.text !== '-')) return 0
  cur.next('+ or -')
  const t = cur.next('an offset')
  if (t.kind !== 'number') cur.fail(`expected an offset after '${sign.text}', found '${t.text}'`, t)
  const v = BigInt(t.text)
  return checkOffset16(cur, sign.text === '-' ? -v : v, t)
}

/**
 * A jump or call target: a label, a signed slot offset (`+3`, `-0x2`, `3`), or the kernel's
 * `pc+3`. An llvm-objdump annotation such as `<prog+0x58>` after an offset is skipped.
 */
export function target(cur: Cursor, range: 16 | 32): Target {
  const t = cur.peek()
  if (t === undefined) cur.fail('expected a jump target (label or +offset) at end of line')
  let result: Target
  if (t.kind === 'ident' && t.text !== 'pc') {
    cur.next('a label')
    result = { label: t.text, token: t }
  } else {
    if (t.kind === 'ident') cur.next('pc')
    const { value, token } = signedNumber(cur, 'a jump target (label or +offset)')
    const limit = range === 16 ? 2n ** 15n : 2n ** 31n
    if (value < -limit || value >= limit) {
      cur.fail(`jump offset ${value} is out of the ${range}-bit range`, token)
    }
    result = { offset: Number(value), token: t }
  }
  skipAnnotation(cur)
  return result
}

/** Skips an llvm-objdump symbol annotation `<name+0x10>` at the end of a line. */
export function skipAnnotation(cur: Cursor): void {
  if (cur.peek()?.text !== '<') return
  const n = cur.tokens.length
  if (cur.tokens[n - 1]?.text !== '>') return
  while (!cur.done) cur.next('>')
}

/**
 * A map reference as the engine resolves it against a program's map list: `map[N]` (lddw pseudo
 * source 5, a reference to map N) or `map_value[N] + OFF` (source 6, the address of byte OFF of
 * the single value of array map N, as global data is addressed). Undefined when the next token
 * does not start one. Returns the lddw's source and its 64-bit immediate (index | offset << 32).
 */
export function mapReference(cur: Cursor): { src: number; value: bigint } | undefined {
  const t = cur.peek()
  if (t?.kind !== 'ident' || (t.text !== 'map' && t.text !== 'map_value')) return undefined
  cur.next('map')
  cur.expect('[')
  const { value: index, token } = signedNumber(cur, 'a map index')
  if (index < 0n || index > 0xffffffffn) cur.fail(`map index ${index} is out of range`, token)
  cur.expect(']')
  let offset = 0n
  if (t.text === 'map_value' && cur.accept('+')) {
    const off = signedNumber(cur, 'a value offset')
    if (off.value < 0n || off.value > 0xffffffffn) cur.fail(`value offset ${off.value} is out of range`, off.token)
    offset = off.value
  }
  return { src: t.text === 'map' ? 5 : 6, value: index | (offset << 32n) }
}
