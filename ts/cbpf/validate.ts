/**
 * The kernel's checks of a classic program before it attaches it (`bpf_check_classic` in
 * net/core/filter.c): 1 to 4096 instructions, only the opcodes Linux knows, no division or modulo
 * by a constant 0, shifts by a constant below 32, `M[]` indices below 16, jumps forward and inside
 * the program, ancillary loads only of known `SKF_AD_*` offsets, a `ret` last, and no `M[k]` read
 * on a path where it was not written before. Each refusal is a `LoadError` (`EINVAL`) naming the
 * instruction.
 */
import { LoadError } from '../errors.js'
import { disassembleInstruction } from './disassemble.js'
import {
  ANCILLARY_END,
  ANCILLARY_NAMES,
  ancillaryOf,
  type ClassicInstruction,
  MAX_INSNS,
  MEMWORDS,
} from './instruction.js'

/** The opcodes Linux accepts in a classic program (`chk_code_allowed`). */
const ALLOWED = new Set<number>([
  // ALU: add sub mul div mod and or xor lsh rsh, by K and by X; neg.
  ...[0x00, 0x10, 0x20, 0x30, 0x90, 0x50, 0x40, 0xa0, 0x60, 0x70].flatMap((op) => [0x04 | op, 0x0c | op]),
  0x84,
  // LD: W/H/B ABS and IND, W LEN, IMM, MEM. LDX: W LEN, B MSH, IMM, MEM.
  0x20,
  0x28,
  0x30,
  0x40,
  0x48,
  0x50,
  0x80,
  0x00,
  0x60,
  0x81,
  0xb1,
  0x01,
  0x61,
  // ST, STX, TAX, TXA, RET K, RET A.
  0x02,
  0x03,
  0x07,
  0x87,
  0x06,
  0x16,
  // JA; JEQ JGT JGE JSET by K and by X.
  0x05,
  ...[0x10, 0x20, 0x30, 0x40].flatMap((op) => [0x05 | op, 0x0d | op]),
])

/** Throws a `LoadError` unless the kernel would accept the program. */
export function validate(insns: readonly ClassicInstruction[]): void {
  const n = insns.length
  if (n === 0 || n > MAX_INSNS) {
    throw new LoadError('EINVAL', `a classic BPF program has 1 to ${MAX_INSNS} instructions, got ${n}`)
  }
  const refuse = (pc: number, why: string): never => {
    throw new LoadError(
      'EINVAL',
      `instruction ${pc} (${disassembleInstruction(insns[pc]!, pc).slice(6).trim()}): ${why}`,
      pc,
    )
  }
  insns.forEach((p, pc) => {
    const { code, k } = p
    if (!ALLOWED.has(code)) refuse(pc, `unknown opcode 0x${code.toString(16)}`)
    switch (code) {
      case 0x34:
      case 0x94:
        if (k === 0) refuse(pc, 'division by the constant 0')
        break
      case 0x64:
      case 0x74:
        if (k >= 32) refuse(pc, `shift by ${k}: at most 31`)
        break
      case 0x60:
      case 0x61:
      case 0x02:
      case 0x03:
        if (k >= MEMWORDS) refuse(pc, `M[${k}]: scratch memory has ${MEMWORDS} words`)
        break
      case 0x05:
        if (k >= n - pc - 1) refuse(pc, `jump past the end of the program (${n} instructions)`)
        break
      case 0x20:
      case 0x28:
      case 0x30: {
        const anc = ancillaryOf(k)
        if (anc !== undefined && (anc >= ANCILLARY_END || anc % 4 !== 0 || ANCILLARY_NAMES[anc] === undefined)) {
          refuse(pc, `unknown ancillary offset SKF_AD_OFF + ${anc}`)
        }
        break
      }
      default:
        if ((code & 0x07) === 0x05 && (pc + p.jt + 1 >= n || pc + p.jf + 1 >= n)) {
          refuse(pc, `jump past the end of the program (${n} instructions)`)
        }
    }
  })
  const last = insns[n - 1]!.code
  if (last !== 0x06 && last !== 0x16) refuse(n - 1, 'the last instruction must be a ret')
  checkScratchInitialised(insns, refuse)
}

/**
 * Every `M[k]` read must follow a write of `M[k]` on every path to it (`check_load_and_stores`):
 * the words surely written flow forward along jumps, met by intersection at each join.
 */
function checkScratchInitialised(
  insns: readonly ClassicInstruction[],
  refuse: (pc: number, why: string) => never,
): void {
  const all = (1 << MEMWORDS) - 1
  const incoming = new Array<number>(insns.length).fill(all)
  let valid = 0
  insns.forEach((p, pc) => {
    valid &= incoming[pc]!
    switch (p.code) {
      case 0x02:
      case 0x03:
        valid |= 1 << p.k
        break
      case 0x60:
      case 0x61:
        if ((valid & (1 << p.k)) === 0) refuse(pc, `M[${p.k}] is read before it is written on some path`)
        break
      case 0x05:
        incoming[pc + 1 + p.k]! &= valid
        valid = all
        break
      default:
        if ((p.code & 0x07) === 0x05) {
          incoming[pc + 1 + p.jt]! &= valid
          incoming[pc + 1 + p.jf]! &= valid
          valid = all
        }
    }
  })
}
