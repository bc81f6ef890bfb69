// Instruction encoding: the reserved fields the kernel checks (and the ones it does not), unknown
// opcodes, and lddw's second slot, as raw 8-byte words (`.8byte`), one per rule.
import { prog, TYPES } from './_lib.mjs'

const out = []
const sfx = (ok) => (ok ? '_ok' : '_rej')

/** `.8byte` of one instruction: opcode, dst, src, 16-bit offset, 32-bit immediate. */
function raw(op, dst, src, off, imm) {
  const v =
    (BigInt(imm >>> 0) << 32n) |
    (BigInt(off & 0xffff) << 16n) |
    (BigInt(((src & 15) << 4) | (dst & 15)) << 8n) |
    BigInt(op)
  return `.8byte 0x${v.toString(16).padStart(16, '0')}`
}
const R0_0 = 'r0 = 0'
const CASES = [
  // exit: src, dst and imm must be zero; the kernel does not look at the offset.
  ['exit_with_offset_8', `${R0_0}\n${raw(0x95, 0, 0, 8, 0)}`, true],
  ['exit_with_offset_minus_1', `${R0_0}\n${raw(0x95, 0, 0, -1, 0)}`, true],
  ['exit_with_imm_1', `${R0_0}\n${raw(0x95, 0, 0, 0, 1)}`, false],
  ['exit_with_dst_1', `${R0_0}\n${raw(0x95, 1, 0, 0, 0)}`, false],
  ['exit_jmp32_class', `${R0_0}\n${raw(0x96, 0, 0, 0, 0)}`, false],
  // The kernel checks an instruction's fields when its walk reaches it: on a branch it knows is
  // never taken, a malformed exit passes (found by scripts/verifier-fuzz.mjs).
  ['exit_with_src_7_on_dead_branch', `call 5\nif r0 < 0 goto +2\nr0 = 1\nexit\nr0 = 2\n${raw(0x95, 0, 7, 0, 0)}`, true],
  [
    'exit_with_src_7_on_live_branch',
    `call 5\nif r0 > 0 goto +2\nr0 = 1\nexit\nr0 = 2\n${raw(0x95, 0, 7, 0, 0)}`,
    false,
  ],
  ['exit_with_imm_on_dead_branch', `r0 = 0\nif r0 != 0 goto +1\nexit\n${raw(0x95, 0, 0, 0, -8)}`, true],
  // call: a helper call must have src 0, dst 0 and offset 0.
  ['call_helper_with_offset_1', `${raw(0x85, 0, 0, 1, 5)}\nexit`, false],
  ['call_helper_with_dst_1', `${raw(0x85, 1, 0, 0, 5)}\nexit`, false],
  // ALU: the offset is reserved except for sdiv/smod (1) and movsx (8, 16, 32).
  ['alu64_add_imm_offset_1', `${R0_0}\n${raw(0x07, 0, 0, 1, 1)}\nexit`, false],
  ['alu64_mov_reg_offset_8_is_movsx8', `r1 = 5\n${raw(0xbf, 0, 1, 8, 0)}\nexit`, true],
  ['alu64_mov_reg_offset_4_unknown', `r1 = 5\n${raw(0xbf, 0, 1, 4, 0)}\nexit`, false],
  ['alu64_div_imm_offset_1_is_sdiv', `r0 = 9\n${raw(0x37, 0, 0, 1, 3)}\nexit`, true],
  ['alu64_div_imm_offset_2_unknown', `r0 = 9\n${raw(0x37, 0, 0, 2, 3)}\nexit`, false],
  ['alu64_add_imm_src_1', `${R0_0}\n${raw(0x07, 0, 1, 0, 1)}\nexit`, false],
  ['alu64_add_reg_imm_1', `${R0_0}\nr1 = 1\n${raw(0x0f, 0, 1, 0, 1)}\nexit`, false],
  ['alu_unknown_op_0xe0', `${R0_0}\n${raw(0xe7, 0, 0, 0, 1)}\nexit`, false],
  ['alu64_neg_with_imm_1', `${R0_0}\n${raw(0x87, 0, 0, 0, 1)}\nexit`, false],
  ['end_le_width_24', `${R0_0}\n${raw(0xd4, 0, 0, 0, 24)}\nexit`, false],
  ['end_be_width_64', `${R0_0}\n${raw(0xdc, 0, 0, 0, 64)}\nexit`, true],
  // Jumps: ja with an immediate, conditional jumps with reserved fields, register 11.
  ['ja_with_imm_1', `${R0_0}\n${raw(0x05, 0, 0, 0, 1)}\nexit`, false],
  ['jeq_imm_with_src_1', `${R0_0}\n${raw(0x15, 0, 1, 0, 0)}\nexit`, false],
  ['jeq_reg_with_imm_1', `${R0_0}\nr1 = 0\n${raw(0x1d, 0, 1, 0, 1)}\nexit`, false],
  ['register_11', `${R0_0}\n${raw(0xb7, 11, 0, 0, 0)}\nexit`, false],
  ['unknown_class_opcode_0x06_jmp32_ja_imm', `${R0_0}\n${raw(0x06, 0, 0, 0, 0)}\nexit`, true],
  // Memory: stores with an immediate have no source register; loads no immediate.
  ['store_imm_with_src_1', `${raw(0x7a, 10, 1, -8, 0)}\n${R0_0}\nexit`, false],
  ['load_with_imm_1', `*(u64 *)(r10 - 8) = 0\n${raw(0x79, 0, 10, -8, 1)}\nexit`, false],
  ['load_mode_0x80_unknown', `*(u64 *)(r10 - 8) = 0\n${raw(0x99, 0, 10, -8, 0)}\nexit`, false],
  // lddw: the second slot must be all zero except its immediate.
  ['lddw_second_slot_opcode_set', `${raw(0x18, 0, 0, 0, 1)}\n${raw(0x07, 0, 0, 0, 0)}\nexit`, false],
  ['lddw_second_slot_imm_only', `${raw(0x18, 0, 0, 0, 1)}\n${raw(0x00, 0, 0, 0, 2)}\nexit`, true],
  ['lddw_last_slot_missing', `${R0_0}\nexit\n${raw(0x18, 0, 0, 0, 1)}`, false],
]
for (const t of TYPES) {
  for (const [name, code, ok] of CASES) out.push(prog(`${t}_enc_${name}${sfx(ok)}`, t, code))
}
export default out
