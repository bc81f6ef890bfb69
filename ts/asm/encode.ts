/**
 * Constructors of every instruction form. The text assembler (both dialects) and the builder go
 * through these, so that the same instruction always gets the same bytes. Arguments are assumed to
 * be in range: callers check them, because only they know where to point the error.
 */
import type { Instruction } from './instruction.js'
import {
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
  ENDIAN_OPCODES,
  type EndianOp,
  JUMP_OPS,
  type JumpOp,
  MODE_ABS,
  MODE_ATOMIC,
  MODE_IND,
  MODE_MEM,
  MODE_MEMSX,
  OP_CALL,
  OP_CALLX,
  OP_EXIT,
  OP_JA,
  OP_JA32,
  OP_LDDW,
  SIZES,
  type Size,
  SRC_K,
  SRC_X,
} from './opcodes.js'

/** The second operand of an ALU or jump instruction: a register or a 32-bit immediate. */
export type Operand = { reg: number } | { imm: number }

function insn(opcode: number, dst = 0, src = 0, off = 0, imm = 0): Instruction {
  return { opcode, dst, src, off, imm: imm | 0 }
}

const aluClass = (wide: boolean) => (wide ? CLASS_ALU64 : CLASS_ALU)

export function alu(wide: boolean, op: AluOp, dst: number, operand: Operand): Instruction {
  const { op: bits, off } = ALU_OPS[op]
  return 'reg' in operand
    ? insn(aluClass(wide) | bits | SRC_X, dst, operand.reg, off, 0)
    : insn(aluClass(wide) | bits | SRC_K, dst, 0, off, operand.imm)
}

export function neg(wide: boolean, dst: number): Instruction {
  return insn(aluClass(wide) | ALU_NEG | SRC_K, dst)
}

/** `movsx`: dst = sign extension of the low `bits` of src (8/16/32 for 64-bit, 8/16 for 32-bit). */
export function movsx(wide: boolean, dst: number, src: number, bits: number): Instruction {
  return insn(aluClass(wide) | ALU_MOV | SRC_X, dst, src, bits, 0)
}

export function endian(op: EndianOp, dst: number, bits: number): Instruction {
  return insn(ENDIAN_OPCODES[op], dst, 0, 0, bits)
}

/** `lddw`: two slots, the low half of the value in the first immediate, the high half in the second. */
export function lddw(dst: number, value: bigint, src = 0): [Instruction, Instruction] {
  const v = BigInt.asUintN(64, value)
  return [
    insn(OP_LDDW, dst, src, 0, Number(BigInt.asIntN(32, v))),
    insn(0, 0, 0, 0, Number(BigInt.asIntN(32, v >> 32n))),
  ]
}

export function ldx(size: Size, dst: number, src: number, off: number, signed = false): Instruction {
  return insn(CLASS_LDX | SIZES[size] | (signed ? MODE_MEMSX : MODE_MEM), dst, src, off)
}

export function st(size: Size, dst: number, off: number, imm: number): Instruction {
  return insn(CLASS_ST | SIZES[size] | MODE_MEM, dst, 0, off, imm)
}

export function stx(size: Size, dst: number, off: number, src: number): Instruction {
  return insn(CLASS_STX | SIZES[size] | MODE_MEM, dst, src, off)
}

/** `dst = load_acquire((size *)(src + off))`: a zero-extending load ordered before later accesses. */
export function loadAcquire(size: Size, dst: number, src: number, off: number): Instruction {
  return insn(CLASS_STX | SIZES[size] | MODE_ATOMIC, dst, src, off, ATOMIC_LOAD_ACQ)
}

/** `store_release((size *)(dst + off), src)`: a store ordered after earlier accesses. */
export function storeRelease(size: Size, dst: number, off: number, src: number): Instruction {
  return insn(CLASS_STX | SIZES[size] | MODE_ATOMIC, dst, src, off, ATOMIC_STORE_REL)
}

/** Atomic read-modify-write of the 32-bit (`wide` false) or 64-bit word at dst + off. */
export function atomic(
  wide: boolean,
  op: AtomicOp | 'xchg' | 'cmpxchg',
  fetch: boolean,
  dst: number,
  off: number,
  src: number,
): Instruction {
  let imm: number
  if (op === 'xchg') imm = ATOMIC_XCHG
  else if (op === 'cmpxchg') imm = ATOMIC_CMPXCHG
  else imm = ATOMIC_OPS[op] | (fetch ? ATOMIC_FETCH : 0)
  return insn(CLASS_STX | SIZES[wide ? 'dw' : 'w'] | MODE_ATOMIC, dst, src, off, imm)
}

/** Legacy packet loads: r0 = packet[imm] (`LD_ABS`) or packet[src + imm] (`LD_IND`). */
export function ldabs(size: Exclude<Size, 'dw'>, imm: number): Instruction {
  return insn(CLASS_LD | SIZES[size] | MODE_ABS, 0, 0, 0, imm)
}

export function ldind(size: Exclude<Size, 'dw'>, src: number, imm: number): Instruction {
  return insn(CLASS_LD | SIZES[size] | MODE_IND, 0, src, 0, imm)
}

/** Conditional jump; `wide` false compares the low 32 bits (JMP32 class). */
export function jump(wide: boolean, op: JumpOp, dst: number, operand: Operand, off: number): Instruction {
  const cls = wide ? CLASS_JMP : CLASS_JMP32
  return 'reg' in operand
    ? insn(cls | JUMP_OPS[op] | SRC_X, dst, operand.reg, off, 0)
    : insn(cls | JUMP_OPS[op] | SRC_K, dst, 0, off, operand.imm)
}

export const ja = (off: number): Instruction => insn(OP_JA, 0, 0, off)
/** `ja32` / `gotol`: the offset is in the immediate. */
export const ja32 = (imm: number): Instruction => insn(OP_JA32, 0, 0, 0, imm)
export const call = (helper: number): Instruction => insn(OP_CALL, 0, CALL_HELPER, 0, helper)
/** Local (bpf-to-bpf) call: imm = target - (pc + 1). */
export const callLocal = (imm: number): Instruction => insn(OP_CALL, 0, CALL_LOCAL, 0, imm)
export const callKfunc = (id: number): Instruction => insn(OP_CALL, 0, CALL_KFUNC, 0, id)
/** `callx`: the register goes in dst (as LLVM and the kernel encode it), imm 0. */
export const callx = (reg: number): Instruction => insn(OP_CALLX, reg)
export const exit = (): Instruction => insn(OP_EXIT)
