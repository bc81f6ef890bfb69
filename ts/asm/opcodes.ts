/**
 * The instruction-set vocabulary of RFC 9669 (the IETF BPF ISA): classes, operation codes, access
 * sizes and modes. An opcode byte is `class | op | source` for arithmetic and jumps, and
 * `class | size | mode` for loads and stores. Names follow the RFC so that the numbers can be
 * checked against it line by line.
 */

import { describeValue } from '../arguments.js'
import { FormatError } from '../errors.js'

// Instruction classes (RFC 9669, 3.3): the low three bits.
export const CLASS_LD = 0x00
export const CLASS_LDX = 0x01
export const CLASS_ST = 0x02
export const CLASS_STX = 0x03
export const CLASS_ALU = 0x04
export const CLASS_JMP = 0x05
export const CLASS_JMP32 = 0x06
export const CLASS_ALU64 = 0x07

// Source bit of arithmetic and jump instructions (RFC 9669, 4.1): immediate or src register.
export const SRC_K = 0x00
export const SRC_X = 0x08

// Arithmetic operations (RFC 9669, 4.1), the high four bits.
export const ALU_ADD = 0x00
export const ALU_SUB = 0x10
export const ALU_MUL = 0x20
export const ALU_DIV = 0x30
export const ALU_OR = 0x40
export const ALU_AND = 0x50
export const ALU_LSH = 0x60
export const ALU_RSH = 0x70
export const ALU_NEG = 0x80
export const ALU_MOD = 0x90
export const ALU_XOR = 0xa0
export const ALU_MOV = 0xb0
export const ALU_ARSH = 0xc0
export const ALU_END = 0xd0

// Jump operations (RFC 9669, 4.3), the high four bits.
export const JMP_JA = 0x00
export const JMP_JEQ = 0x10
export const JMP_JGT = 0x20
export const JMP_JGE = 0x30
export const JMP_JSET = 0x40
export const JMP_JNE = 0x50
export const JMP_JSGT = 0x60
export const JMP_JSGE = 0x70
export const JMP_CALL = 0x80
export const JMP_EXIT = 0x90
export const JMP_JLT = 0xa0
export const JMP_JLE = 0xb0
export const JMP_JSLT = 0xc0
export const JMP_JSLE = 0xd0

// Access sizes of loads and stores (RFC 9669, 5.1), bits 3-4.
export const SIZE_W = 0x00
export const SIZE_H = 0x08
export const SIZE_B = 0x10
export const SIZE_DW = 0x18

// Access modes (RFC 9669, 5.1), the high three bits.
export const MODE_IMM = 0x00
export const MODE_ABS = 0x20
export const MODE_IND = 0x40
export const MODE_MEM = 0x60
export const MODE_MEMSX = 0x80
export const MODE_ATOMIC = 0xc0

// Atomic operations (RFC 9669, 5.3), carried in the immediate of `STX | ATOMIC`.
export const ATOMIC_FETCH = 0x01
export const ATOMIC_ADD = 0x00
export const ATOMIC_OR = 0x40
export const ATOMIC_AND = 0x50
export const ATOMIC_XOR = 0xa0
export const ATOMIC_XCHG = 0xe0 | ATOMIC_FETCH
export const ATOMIC_CMPXCHG = 0xf0 | ATOMIC_FETCH
/** Load-acquire and store-release (cpu v4, Linux 6.15): plain accesses of any size, ordered. */
export const ATOMIC_LOAD_ACQ = 0x100
export const ATOMIC_STORE_REL = 0x110

// The `src` field of `call` (RFC 9669, 4.3.1).
export const CALL_HELPER = 0
export const CALL_LOCAL = 1
export const CALL_KFUNC = 2

// Whole opcodes used by name.
export const OP_LDDW = CLASS_LD | MODE_IMM | SIZE_DW
export const OP_CALL = CLASS_JMP | JMP_CALL
export const OP_CALLX = CLASS_JMP | JMP_CALL | SRC_X
export const OP_EXIT = CLASS_JMP | JMP_EXIT
export const OP_JA = CLASS_JMP | JMP_JA
export const OP_JA32 = CLASS_JMP32 | JMP_JA

/** r0-r9 general purpose, r10 the read-only frame pointer. */
export const NUM_REGS = 11

/** Access size in bytes, by size bits. */
export function accessBytes(sizeBits: number): 1 | 2 | 4 | 8 {
  if (typeof sizeBits !== 'number') throw new FormatError(`size bits must be a number, got ${describeValue(sizeBits)}`)
  switch (sizeBits & 0x18) {
    case SIZE_B:
      return 1
    case SIZE_H:
      return 2
    case SIZE_W:
      return 4
    default:
      return 8
  }
}

/** Names shared by both dialects and the builder. */
export type AluOp =
  | 'add'
  | 'sub'
  | 'mul'
  | 'div'
  | 'sdiv'
  | 'or'
  | 'and'
  | 'lsh'
  | 'rsh'
  | 'mod'
  | 'smod'
  | 'xor'
  | 'mov'
  | 'arsh'

/** Binary ALU operations: opcode bits and the `off` value that selects the signed variant. */
export const ALU_OPS: Readonly<Record<AluOp, { op: number; off: number }>> = {
  add: { op: ALU_ADD, off: 0 },
  sub: { op: ALU_SUB, off: 0 },
  mul: { op: ALU_MUL, off: 0 },
  div: { op: ALU_DIV, off: 0 },
  sdiv: { op: ALU_DIV, off: 1 },
  or: { op: ALU_OR, off: 0 },
  and: { op: ALU_AND, off: 0 },
  lsh: { op: ALU_LSH, off: 0 },
  rsh: { op: ALU_RSH, off: 0 },
  mod: { op: ALU_MOD, off: 0 },
  smod: { op: ALU_MOD, off: 1 },
  xor: { op: ALU_XOR, off: 0 },
  mov: { op: ALU_MOV, off: 0 },
  arsh: { op: ALU_ARSH, off: 0 },
}

export type JumpOp = 'jeq' | 'jgt' | 'jge' | 'jset' | 'jne' | 'jsgt' | 'jsge' | 'jlt' | 'jle' | 'jslt' | 'jsle'

export const JUMP_OPS: Readonly<Record<JumpOp, number>> = {
  jeq: JMP_JEQ,
  jgt: JMP_JGT,
  jge: JMP_JGE,
  jset: JMP_JSET,
  jne: JMP_JNE,
  jsgt: JMP_JSGT,
  jsge: JMP_JSGE,
  jlt: JMP_JLT,
  jle: JMP_JLE,
  jslt: JMP_JSLT,
  jsle: JMP_JSLE,
}

export type AtomicOp = 'add' | 'or' | 'and' | 'xor'

export const ATOMIC_OPS: Readonly<Record<AtomicOp, number>> = {
  add: ATOMIC_ADD,
  or: ATOMIC_OR,
  and: ATOMIC_AND,
  xor: ATOMIC_XOR,
}

export type Size = 'b' | 'h' | 'w' | 'dw'

export const SIZES: Readonly<Record<Size, number>> = { b: SIZE_B, h: SIZE_H, w: SIZE_W, dw: SIZE_DW }

/** Byte-order operations: `le`/`be` convert from host order (ALU class), `bswap` swaps always (ALU64). */
export type EndianOp = 'le' | 'be' | 'bswap'

export const ENDIAN_OPCODES: Readonly<Record<EndianOp, number>> = {
  le: CLASS_ALU | ALU_END | SRC_K,
  be: CLASS_ALU | ALU_END | SRC_X,
  bswap: CLASS_ALU64 | ALU_END | SRC_K,
}

/** Reverse lookup of a small record: value -> key. */
export function invert<K extends string>(record: Readonly<Record<K, number>>): Map<number, K> {
  if (record === null || typeof record !== 'object')
    throw new FormatError(`invert takes a record of numbers, got ${describeValue(record)}`)
  const out = new Map<number, K>()
  for (const [k, v] of Object.entries(record) as [K, number][]) if (!out.has(v)) out.set(v, k)
  return out
}
