/**
 * Bytecode to instruction forms: what each slot means, for the disassembler. Only canonical
 * encodings get a form (reserved fields zero, registers r0-r10, known operation values, exactly as
 * `encode.ts` produces them); anything else is a `raw` slot, printed as `.8byte`, so that text
 * always reads back to the very same bytes.
 */
import type { Instruction } from './instruction.js'
import { slotWord } from './instruction.js'
import {
  ALU_END,
  ALU_MOV,
  ALU_NEG,
  ALU_OPS,
  type AluOp,
  ATOMIC_CMPXCHG,
  ATOMIC_FETCH,
  ATOMIC_LOAD_ACQ,
  ATOMIC_OPS,
  ATOMIC_STORE_REL,
  ATOMIC_XCHG,
  type AtomicOp,
  CALL_HELPER,
  CALL_KFUNC,
  CALL_LOCAL,
  CLASS_ALU,
  CLASS_ALU64,
  CLASS_JMP,
  CLASS_JMP32,
  CLASS_LD,
  CLASS_LDX,
  CLASS_ST,
  CLASS_STX,
  invert,
  JMP_CALL,
  JMP_EXIT,
  JMP_JA,
  JUMP_OPS,
  type JumpOp,
  MODE_ABS,
  MODE_ATOMIC,
  MODE_IMM,
  MODE_IND,
  MODE_MEM,
  MODE_MEMSX,
  NUM_REGS,
  SIZE_DW,
  SIZES,
  type Size,
  SRC_X,
} from './opcodes.js'

export type Form =
  | { k: 'alu'; wide: boolean; op: AluOp; dst: number; src: number | undefined; imm: number }
  | { k: 'neg'; wide: boolean; dst: number }
  | { k: 'movsx'; wide: boolean; dst: number; src: number; bits: number }
  | { k: 'endian'; op: 'le' | 'be' | 'bswap'; dst: number; bits: number }
  | { k: 'lddw'; dst: number; value: bigint }
  /** lddw with pseudo source 5 (`map[index]`) or 6 (`map_value[index] + offset`). */
  | { k: 'ldmap'; dst: number; value: boolean; index: number; offset: number }
  | { k: 'ldx'; size: Size; signed: boolean; dst: number; src: number; off: number }
  | { k: 'st'; size: Size; dst: number; off: number; imm: number }
  | { k: 'stx'; size: Size; dst: number; off: number; src: number }
  | {
      k: 'atomic'
      wide: boolean
      op: AtomicOp | 'xchg' | 'cmpxchg'
      fetch: boolean
      dst: number
      off: number
      src: number
    }
  | { k: 'loadAcquire'; size: Size; dst: number; src: number; off: number }
  | { k: 'storeRelease'; size: Size; dst: number; off: number; src: number }
  | { k: 'ldabs'; size: 'b' | 'h' | 'w'; imm: number }
  | { k: 'ldind'; size: 'b' | 'h' | 'w'; src: number; imm: number }
  | { k: 'jump'; wide: boolean; op: JumpOp; dst: number; src: number | undefined; imm: number; off: number }
  | { k: 'ja'; off: number }
  | { k: 'ja32'; imm: number }
  | { k: 'call'; imm: number }
  | { k: 'callLocal'; imm: number }
  | { k: 'kfunc'; imm: number }
  | { k: 'callx'; reg: number }
  | { k: 'exit' }
  | { k: 'raw'; word: bigint }

/** A form and the number of slots it covers (2 for `lddw`). */
export interface Decoded {
  form: Form
  slots: 1 | 2
}

const ALU_BY_BITS = new Map<string, AluOp>(
  (Object.entries(ALU_OPS) as [AluOp, { op: number; off: number }][]).map(([name, v]) => [`${v.op}/${v.off}`, name]),
)
const JUMP_BY_BITS = invert(JUMP_OPS)
const SIZE_BY_BITS = invert(SIZES)
const ATOMIC_BY_IMM = invert(ATOMIC_OPS)

const isReg = (r: number) => r < NUM_REGS

function alu(i: Instruction): Form | undefined {
  const wide = (i.opcode & 0x07) === CLASS_ALU64
  const op = i.opcode & 0xf0
  const x = (i.opcode & SRC_X) !== 0
  if (!isReg(i.dst)) return undefined
  if (op === ALU_NEG) {
    return !x && i.src === 0 && i.off === 0 && i.imm === 0 ? { k: 'neg', wide, dst: i.dst } : undefined
  }
  if (op === ALU_END) {
    if (i.src !== 0 || i.off !== 0 || ![16, 32, 64].includes(i.imm)) return undefined
    if (wide) return x ? undefined : { k: 'endian', op: 'bswap', dst: i.dst, bits: i.imm }
    return { k: 'endian', op: x ? 'be' : 'le', dst: i.dst, bits: i.imm }
  }
  if (op === ALU_MOV && x && i.off !== 0) {
    const widths = wide ? [8, 16, 32] : [8, 16]
    return widths.includes(i.off) && i.imm === 0 && isReg(i.src)
      ? { k: 'movsx', wide, dst: i.dst, src: i.src, bits: i.off }
      : undefined
  }
  const name = ALU_BY_BITS.get(`${op}/${i.off}`)
  if (name === undefined) return undefined
  if (x) return i.imm === 0 && isReg(i.src) ? { k: 'alu', wide, op: name, dst: i.dst, src: i.src, imm: 0 } : undefined
  return i.src === 0 ? { k: 'alu', wide, op: name, dst: i.dst, src: undefined, imm: i.imm } : undefined
}

function jump(i: Instruction): Form | undefined {
  const wide = (i.opcode & 0x07) === CLASS_JMP
  const op = i.opcode & 0xf0
  const x = (i.opcode & SRC_X) !== 0
  if (op === JMP_JA) {
    if (x || i.dst !== 0 || i.src !== 0) return undefined
    if (wide) return i.imm === 0 ? { k: 'ja', off: i.off } : undefined
    return i.off === 0 ? { k: 'ja32', imm: i.imm } : undefined
  }
  if (op === JMP_CALL) {
    if (!wide || i.off !== 0) return undefined
    if (x) return i.src === 0 && i.imm === 0 && isReg(i.dst) ? { k: 'callx', reg: i.dst } : undefined
    if (i.dst !== 0) return undefined
    if (i.src === CALL_HELPER) return { k: 'call', imm: i.imm }
    if (i.src === CALL_LOCAL) return { k: 'callLocal', imm: i.imm }
    if (i.src === CALL_KFUNC) return { k: 'kfunc', imm: i.imm }
    return undefined
  }
  if (op === JMP_EXIT) {
    return wide && !x && i.dst === 0 && i.src === 0 && i.off === 0 && i.imm === 0 ? { k: 'exit' } : undefined
  }
  const name = JUMP_BY_BITS.get(op)
  if (name === undefined || !isReg(i.dst)) return undefined
  if (x) {
    return i.imm === 0 && isReg(i.src)
      ? { k: 'jump', wide, op: name, dst: i.dst, src: i.src, imm: 0, off: i.off }
      : undefined
  }
  return i.src === 0 ? { k: 'jump', wide, op: name, dst: i.dst, src: undefined, imm: i.imm, off: i.off } : undefined
}

function memory(i: Instruction): Form | undefined {
  const cls = i.opcode & 0x07
  const mode = i.opcode & 0xe0
  const size = SIZE_BY_BITS.get(i.opcode & 0x18)!
  if (!isReg(i.dst) || !isReg(i.src)) return undefined
  switch (cls) {
    case CLASS_LD:
      if (i.off !== 0 || i.dst !== 0 || size === 'dw') return undefined
      if (mode === MODE_ABS) return i.src === 0 ? { k: 'ldabs', size, imm: i.imm } : undefined
      if (mode === MODE_IND) return { k: 'ldind', size, src: i.src, imm: i.imm }
      return undefined
    case CLASS_LDX:
      if (i.imm !== 0 || (mode !== MODE_MEM && mode !== MODE_MEMSX)) return undefined
      if (mode === MODE_MEMSX && size === 'dw') return undefined
      return { k: 'ldx', size, signed: mode === MODE_MEMSX, dst: i.dst, src: i.src, off: i.off }
    case CLASS_ST:
      return mode === MODE_MEM && i.src === 0 ? { k: 'st', size, dst: i.dst, off: i.off, imm: i.imm } : undefined
    case CLASS_STX:
      if (mode === MODE_MEM) return i.imm === 0 ? { k: 'stx', size, dst: i.dst, off: i.off, src: i.src } : undefined
      if (mode !== MODE_ATOMIC) return undefined
      if (i.imm === ATOMIC_LOAD_ACQ) return { k: 'loadAcquire', size, dst: i.dst, src: i.src, off: i.off }
      if (i.imm === ATOMIC_STORE_REL) return { k: 'storeRelease', size, dst: i.dst, off: i.off, src: i.src }
      if (size !== 'w' && size !== 'dw') return undefined
      return atomicForm(i, size === 'dw')
    default:
      return undefined
  }
}

function atomicForm(i: Instruction, wide: boolean): Form | undefined {
  const common = { k: 'atomic' as const, wide, dst: i.dst, off: i.off, src: i.src }
  if (i.imm === ATOMIC_XCHG) return { ...common, op: 'xchg', fetch: true }
  if (i.imm === ATOMIC_CMPXCHG) return { ...common, op: 'cmpxchg', fetch: true }
  const op = ATOMIC_BY_IMM.get(i.imm & ~ATOMIC_FETCH)
  if (op === undefined) return undefined
  return { ...common, op, fetch: (i.imm & ATOMIC_FETCH) !== 0 }
}

/** Decodes every slot; a second `lddw` slot belongs to the entry before it and gets none. */
export function decodeForms(insns: readonly Instruction[]): Decoded[] {
  const out: Decoded[] = []
  for (let pc = 0; pc < insns.length; pc++) {
    const i = insns[pc]!
    const cls = i.opcode & 0x07
    if (i.opcode === (CLASS_LD | MODE_IMM | SIZE_DW)) {
      const next = insns[pc + 1]
      // Only plain 64-bit constants have a mnemonic; map and BTF pseudo sources stay raw.
      if (
        next !== undefined &&
        isReg(i.dst) &&
        i.src === 0 &&
        i.off === 0 &&
        next.opcode === 0 &&
        next.dst === 0 &&
        next.src === 0 &&
        next.off === 0
      ) {
        const value = BigInt(i.imm >>> 0) | (BigInt(next.imm >>> 0) << 32n)
        out.push({ form: { k: 'lddw', dst: i.dst, value }, slots: 2 })
        pc++
        continue
      }
      if (
        next !== undefined &&
        isReg(i.dst) &&
        (i.src === 5 || i.src === 6) &&
        i.off === 0 &&
        next.opcode === 0 &&
        next.dst === 0 &&
        next.src === 0 &&
        next.off === 0 &&
        (i.src === 6 || next.imm === 0)
      ) {
        const form: Form = { k: 'ldmap', dst: i.dst, value: i.src === 6, index: i.imm >>> 0, offset: next.imm >>> 0 }
        out.push({ form, slots: 2 })
        pc++
        continue
      }
    }
    let form: Form | undefined
    if (cls === CLASS_ALU || cls === CLASS_ALU64) form = alu(i)
    else if (cls === CLASS_JMP || cls === CLASS_JMP32) form = jump(i)
    else if (i.opcode !== (CLASS_LD | MODE_IMM | SIZE_DW)) form = memory(i)
    out.push({ form: form ?? { k: 'raw', word: slotWord(i) }, slots: 1 })
  }
  return out
}
