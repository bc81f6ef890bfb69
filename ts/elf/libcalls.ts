/**
 * Byte-loop implementations of the C library functions clang calls when it does not inline a copy,
 * fill or comparison (older clang did for non-constant sizes; clang-19 with -fno-builtin-*). No
 * kernel provides them and libbpf 1.1 refuses such an object ("failed to find BTF for extern
 * 'memcpy'"); we link these in as sub-programs instead, so the program runs. Each takes its
 * arguments in r1..r3 as C does and returns in r0 what C returns (the destination, or the
 * difference of the first differing bytes). The loops are bounded by n; every byte access is
 * checked like any other in checked mode.
 */

const INSN = 8

/** One instruction: opcode, dst, src, offset, immediate (little-endian, as clang emits). */
function insn(op: number, dst: number, src: number, off: number, imm: number): number[] {
  const b = new Uint8Array(INSN)
  const v = new DataView(b.buffer)
  b[0] = op
  b[1] = (src << 4) | dst
  v.setInt16(2, off, true)
  v.setInt32(4, imm, true)
  return [...b]
}

const MOV_REG = (d: number, s: number) => insn(0xbf, d, s, 0, 0)
const MOV_IMM = (d: number, imm: number) => insn(0xb7, d, 0, 0, imm)
const ADD_IMM = (d: number, imm: number) => insn(0x07, d, 0, 0, imm)
const ADD_REG = (d: number, s: number) => insn(0x0f, d, s, 0, 0)
const SUB_REG = (d: number, s: number) => insn(0x1f, d, s, 0, 0)
const LDXB = (d: number, s: number) => insn(0x71, d, s, 0, 0)
const STXB = (d: number, s: number) => insn(0x73, d, s, 0, 0)
const JEQ_IMM = (d: number, imm: number, off: number) => insn(0x15, d, 0, off, imm)
const JNE_IMM = (d: number, imm: number, off: number) => insn(0x55, d, 0, off, imm)
const JLE_REG = (d: number, s: number, off: number) => insn(0xbd, d, s, off, 0)
const JA = (off: number) => insn(0x05, 0, 0, off, 0)
const EXIT = insn(0x95, 0, 0, 0, 0)

// r1 = dst, r2 = src, r3 = n; r0 = dst.
const memcpy = [
  MOV_REG(0, 1),
  JEQ_IMM(3, 0, 6), // -> exit
  LDXB(4, 2), // loop:
  STXB(1, 4),
  ADD_IMM(1, 1),
  ADD_IMM(2, 1),
  ADD_IMM(3, -1),
  JNE_IMM(3, 0, -6), // -> loop
  EXIT,
]

// r1 = dst, r2 = byte, r3 = n; r0 = dst.
const memset = [
  MOV_REG(0, 1),
  JEQ_IMM(3, 0, 4), // -> exit
  STXB(1, 2), // loop:
  ADD_IMM(1, 1),
  ADD_IMM(3, -1),
  JNE_IMM(3, 0, -4), // -> loop
  EXIT,
]

// As memcpy, but copies backwards when dst is above src, so overlapping ranges come out right.
const memmove = [
  MOV_REG(0, 1),
  JEQ_IMM(3, 0, 16), // -> exit
  JLE_REG(1, 2, 9), // dst <= src: -> forward
  ADD_REG(1, 3),
  ADD_REG(2, 3),
  ADD_IMM(1, -1), // back:
  ADD_IMM(2, -1),
  LDXB(4, 2),
  STXB(1, 4),
  ADD_IMM(3, -1),
  JNE_IMM(3, 0, -6), // -> back
  JA(6), // -> exit
  LDXB(4, 2), // forward:
  STXB(1, 4),
  ADD_IMM(1, 1),
  ADD_IMM(2, 1),
  ADD_IMM(3, -1),
  JNE_IMM(3, 0, -6), // -> forward
  EXIT,
]

// r1 = a, r2 = b, r3 = n; r0 = a[i] - b[i] (unsigned bytes) at the first difference, else 0.
const memcmp = [
  MOV_IMM(0, 0),
  JEQ_IMM(3, 0, 9), // -> exit
  LDXB(4, 1), // loop:
  LDXB(5, 2),
  MOV_REG(0, 4),
  SUB_REG(0, 5),
  JNE_IMM(0, 0, 4), // -> exit
  ADD_IMM(1, 1),
  ADD_IMM(2, 1),
  ADD_IMM(3, -1),
  JNE_IMM(3, 0, -9), // -> loop
  EXIT,
]

const CODE: Record<string, number[][]> = { memcpy, memset, memmove, memcmp, bcmp: memcmp }

/** The bytecode of library function `name`, or undefined when we have none. */
export function libcallCode(name: string): Uint8Array | undefined {
  const code = Object.hasOwn(CODE, name) ? CODE[name] : undefined
  return code && Uint8Array.from(code.flat())
}
