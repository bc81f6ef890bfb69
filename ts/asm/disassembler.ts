/**
 * `disassemble(bytes)`: bytecode to text, one instruction per line, in the llvm-objdump dialect
 * (default) or the bpf_conformance dialect. Jump and local-call targets inside the program get
 * labels `L<slot>:`; targets outside it are printed as offsets. Slots without a canonical form
 * (unknown opcodes, non-zero reserved fields, map-load pseudo sources) are printed as `.8byte`.
 * Whatever is printed, `assemble` reads back to the same bytes. A length that is not a multiple
 * of 8 is an error (FormatError, EINVAL).
 */
import { describeValue } from '../arguments.js'
import { FormatError } from '../errors.js'
import { type Decoded, decodeForms, type Form } from './decode.js'
import * as E from './encode.js'
import { decodeInstructions, slotWord } from './instruction.js'
import type { Size } from './opcodes.js'

export type Dialect = 'llvm' | 'conformance'

export interface DisassembleOptions {
  /** `llvm` (default): `r0 = 1`, `if r1 > r2 goto L3`. `conformance`: `mov %r0, 1`, `jgt %r1, %r2, L3`. */
  dialect?: Dialect
}

export function disassemble(bytes: Uint8Array, options: DisassembleOptions = {}): string {
  if (options === null || typeof options !== 'object')
    throw new FormatError(`disassemble options must be an object, got ${describeValue(options)}`)
  const dialect = options.dialect ?? 'llvm'
  if (dialect !== 'llvm' && dialect !== 'conformance') {
    throw new FormatError(`dialect must be 'llvm' or 'conformance', got ${describeValue(dialect)}`)
  }
  const decoded = decodeForms(decodeInstructions(bytes))
  const starts = new Map<number, Decoded>()
  let pc = 0
  for (const d of decoded) {
    starts.set(pc, d)
    pc += d.slots
  }
  const total = pc

  // Targets that can carry a label: inside the program and at the start of an instruction.
  const targets = new Set<number>()
  const targetOf = (at: number, delta: number): number | undefined => {
    const t = at + 1 + delta
    return t >= 0 && t < total && starts.has(t) ? t : undefined
  }
  pc = 0
  for (const d of decoded) {
    const delta = jumpDelta(d.form)
    const t = delta === undefined ? undefined : targetOf(pc, delta)
    if (t !== undefined) targets.add(t)
    pc += d.slots
  }

  const format = dialect === 'llvm' ? llvm : conformance
  const lines: string[] = []
  pc = 0
  for (const d of decoded) {
    if (targets.has(pc)) lines.push(`L${pc}:`)
    const delta = jumpDelta(d.form)
    const t = delta === undefined ? undefined : targetOf(pc, delta)
    lines.push(format(d.form, t === undefined ? undefined : `L${t}`))
    pc += d.slots
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`
}

function jumpDelta(f: Form): number | undefined {
  switch (f.k) {
    case 'jump':
    case 'ja':
      return f.off
    case 'ja32':
    case 'callLocal':
      return f.imm
    default:
      return undefined
  }
}

const signedOffset = (n: number) => (n < 0 ? `${n}` : `+${n}`)
const hex = (n: number | bigint) => (n < 0 ? `-0x${(-BigInt(n)).toString(16)}` : `0x${n.toString(16)}`)
/** `map[N]` or `map_value[N] + OFF`, as both dialects read them. */
const mapRef = (f: { value: boolean; index: number; offset: number }) =>
  f.value ? `map_value[${f.index}] + ${f.offset}` : `map[${f.index}]`

const rawLine = (word: bigint) => `.8byte 0x${word.toString(16).padStart(16, '0')}`

// ---- llvm-objdump dialect -------------------------------------------------------------------

const LLVM_ALU: Record<string, string> = {
  add: '+=',
  sub: '-=',
  mul: '*=',
  div: '/=',
  sdiv: 's/=',
  or: '|=',
  and: '&=',
  lsh: '<<=',
  rsh: '>>=',
  mod: '%=',
  smod: 's%=',
  xor: '^=',
  mov: '=',
  arsh: 's>>=',
}
const LLVM_JUMP: Record<string, string> = {
  jeq: '==',
  jne: '!=',
  jgt: '>',
  jge: '>=',
  jlt: '<',
  jle: '<=',
  jsgt: 's>',
  jsge: 's>=',
  jslt: 's<',
  jsle: 's<=',
  jset: '&',
}
const LLVM_SIZE: Record<Size, string> = { b: '8', h: '16', w: '32', dw: '64' }
const LLVM_LOCK: Record<string, string> = { add: '+=', or: '|=', and: '&=', xor: '^=' }

const mem = (base: number, off: number) => `(r${base} ${off < 0 ? '-' : '+'} ${hex(Math.abs(off))})`

function llvm(f: Form, label: string | undefined): string {
  const reg = (wide: boolean, r: number) => `${wide ? 'r' : 'w'}${r}`
  switch (f.k) {
    case 'alu': {
      const rhs = f.src === undefined ? hex(f.imm) : reg(f.wide, f.src)
      return `${reg(f.wide, f.dst)} ${LLVM_ALU[f.op]} ${rhs}`
    }
    case 'neg':
      return `${reg(f.wide, f.dst)} = -${reg(f.wide, f.dst)}`
    case 'movsx':
      return `${reg(f.wide, f.dst)} = (s${f.bits})${reg(f.wide, f.src)}`
    case 'endian':
      return `r${f.dst} = ${f.op}${f.bits} r${f.dst}`
    case 'lddw':
      return `r${f.dst} = ${hex(f.value)} ll`
    case 'ldmap':
      return `r${f.dst} = ${mapRef(f)} ll`
    case 'ldx':
      return `r${f.dst} = *(${f.signed ? 's' : 'u'}${LLVM_SIZE[f.size]} *)${mem(f.src, f.off)}`
    case 'st':
      return `*(u${LLVM_SIZE[f.size]} *)${mem(f.dst, f.off)} = ${hex(f.imm)}`
    case 'stx':
      return `*(u${LLVM_SIZE[f.size]} *)${mem(f.dst, f.off)} = r${f.src}`
    case 'atomic': {
      const r = (n: number) => reg(f.wide, n)
      const at = `${f.dst} ${f.off < 0 ? '-' : '+'} ${hex(Math.abs(f.off))}`
      const size = f.wide ? 'u64' : 'u32'
      if (f.op === 'xchg') return `${r(f.src)} = ${f.wide ? 'xchg_64' : 'xchg32_32'}(r${at}, ${r(f.src)})`
      if (f.op === 'cmpxchg') return `${r(0)} = ${f.wide ? 'cmpxchg_64' : 'cmpxchg32_32'}(r${at}, ${r(0)}, ${r(f.src)})`
      if (f.fetch) return `${r(f.src)} = atomic_fetch_${f.op}((${size} *)${mem(f.dst, f.off)}, ${r(f.src)})`
      return `lock *(${size} *)${mem(f.dst, f.off)} ${LLVM_LOCK[f.op]} ${r(f.src)}`
    }
    // LLVM 21's syntax (llvm/test/CodeGen/BPF/atomic-load-store.ll): a w register below 64 bits.
    case 'loadAcquire':
      return `${reg(f.size === 'dw', f.dst)} = load_acquire((u${LLVM_SIZE[f.size]} *)${mem(f.src, f.off)})`
    case 'storeRelease':
      return `store_release((u${LLVM_SIZE[f.size]} *)${mem(f.dst, f.off)}, ${reg(f.size === 'dw', f.src)})`
    case 'ldabs':
      return `r0 = *(u${LLVM_SIZE[f.size]} *)skb[${hex(f.imm)}]`
    case 'ldind':
      return f.imm === 0
        ? `r0 = *(u${LLVM_SIZE[f.size]} *)skb[r${f.src}]`
        : `r0 = *(u${LLVM_SIZE[f.size]} *)skb[r${f.src} ${f.imm < 0 ? '-' : '+'} ${hex(Math.abs(f.imm))}]`
    case 'jump': {
      const rhs = f.src === undefined ? hex(f.imm) : reg(f.wide, f.src)
      return `if ${reg(f.wide, f.dst)} ${LLVM_JUMP[f.op]} ${rhs} goto ${label ?? signedOffset(f.off)}`
    }
    case 'ja':
      return `goto ${label ?? signedOffset(f.off)}`
    case 'ja32':
      return `gotol ${label ?? signedOffset(f.imm)}`
    case 'call':
      return `call ${hex(f.imm >>> 0)}`
    case 'callLocal':
      return `call ${label ?? `pc${signedOffset(f.imm)}`}`
    case 'kfunc':
      return `call kfunc ${hex(f.imm >>> 0)}`
    case 'callx':
      return `callx r${f.reg}`
    case 'exit':
      return 'exit'
    case 'raw':
      return rawLine(f.word)
  }
}

// ---- bpf_conformance dialect ----------------------------------------------------------------

const cmem = (base: number, off: number) => (off === 0 ? `[%r${base}]` : `[%r${base}${off < 0 ? '' : '+'}${off}]`)

function conformance(f: Form, label: string | undefined): string {
  const w = (wide: boolean) => (wide ? '' : '32')
  switch (f.k) {
    case 'alu':
      return `${f.op}${w(f.wide)} %r${f.dst}, ${f.src === undefined ? f.imm : `%r${f.src}`}`
    case 'neg':
      return `neg${w(f.wide)} %r${f.dst}`
    case 'movsx':
      return `movsx${f.bits}${f.wide ? '64' : '32'} %r${f.dst}, %r${f.src}`
    case 'endian':
      return `${f.op}${f.bits} %r${f.dst}`
    case 'lddw':
      return `lddw %r${f.dst}, ${hex(f.value)}`
    case 'ldmap':
      return `lddw %r${f.dst}, ${mapRef(f)}`
    case 'ldx':
      return `ldx${f.signed ? 's' : ''}${f.size} %r${f.dst}, ${cmem(f.src, f.off)}`
    case 'st':
      return `st${f.size} ${cmem(f.dst, f.off)}, ${f.imm}`
    case 'stx':
      return `stx${f.size} ${cmem(f.dst, f.off)}, %r${f.src}`
    case 'atomic': {
      const fetch = f.fetch && f.op !== 'xchg' && f.op !== 'cmpxchg' ? 'fetch ' : ''
      return `lock ${fetch}${f.op}${w(f.wide)} ${cmem(f.dst, f.off)}, %r${f.src}`
    }
    // bpf_conformance has no syntax for these: the raw word, which its assembler reads back.
    case 'loadAcquire':
      return rawLine(slotWord(E.loadAcquire(f.size, f.dst, f.src, f.off)))
    case 'storeRelease':
      return rawLine(slotWord(E.storeRelease(f.size, f.dst, f.off, f.src)))
    case 'ldabs':
      return `ldabs${f.size} ${f.imm}`
    case 'ldind':
      return `ldind${f.size} %r${f.src}, ${f.imm}`
    case 'jump':
      return `${f.op}${w(f.wide)} %r${f.dst}, ${f.src === undefined ? f.imm : `%r${f.src}`}, ${label ?? signedOffset(f.off)}`
    case 'ja':
      return `ja ${label ?? signedOffset(f.off)}`
    case 'ja32':
      return `ja32 ${label ?? signedOffset(f.imm)}`
    case 'call':
      // Unsigned: a negative number after `call` would read back as a local call.
      return `call ${f.imm >= 0 ? f.imm : hex(f.imm >>> 0)}`
    case 'callLocal':
      return `call local ${label ?? signedOffset(f.imm)}`
    case 'kfunc':
      return `call runtime ${f.imm >= 0 ? f.imm : hex(f.imm >>> 0)}`
    case 'callx':
      return `call %r${f.reg}`
    case 'exit':
      return 'exit'
    case 'raw':
      return rawLine(f.word)
  }
}
