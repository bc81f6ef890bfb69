// Spill and fill in detail: what a filled register knows (a constant spilled at 64 or 32 bits, a
// bounded scalar, a pointer), partial overwrites of a spilled slot, and reads of the stack at a
// variable offset (which make the slots they may touch unknown).
import { prog, TYPES } from './_lib.mjs'

const out = []
const sfx = (ok) => (ok ? '_ok' : '_rej')
// Each filled value is used as an offset into the 64 bytes at fp-64 (accepted only if the fill
// kept a bound of 0..63).
const USE = 'r3 = r10\nr3 += -64\nr3 += r2\n*(u8 *)(r3 + 0) = 1\nr0 = 0\nexit'
const CASES = [
  ['const_u64_spill_fill', 'r1 = 63\n*(u64 *)(r10 - 72) = r1\nr2 = *(u64 *)(r10 - 72)', true],
  ['const_u32_spill_u32_fill', 'w1 = 63\n*(u32 *)(r10 - 72) = r1\nr2 = *(u32 *)(r10 - 72)', true],
  ['const_u64_spill_u32_fill_low_half', 'r1 = 63\n*(u64 *)(r10 - 72) = r1\nr2 = *(u32 *)(r10 - 72)', true],
  ['const_u64_spill_u8_fill', 'r1 = 63\n*(u64 *)(r10 - 72) = r1\nr2 = *(u8 *)(r10 - 72)', true],
  ['const_64_spill_fill_too_big', 'r1 = 64\n*(u64 *)(r10 - 72) = r1\nr2 = *(u64 *)(r10 - 72)', false],
  ['bounded_spill_fill', 'call 5\nr0 &= 63\n*(u64 *)(r10 - 72) = r0\nr2 = *(u64 *)(r10 - 72)', true],
  ['bounded_spill_fill_high_u32_unknown', 'call 5\nr0 &= 63\n*(u64 *)(r10 - 72) = r0\nr2 = *(u32 *)(r10 - 68)', false],
  ['unbounded_spill_u8_fill', 'call 5\n*(u64 *)(r10 - 72) = r0\nr2 = *(u8 *)(r10 - 72)\nr2 &= 63', true],
  ['unbounded_spill_u16_fill_unbounded', 'call 5\n*(u64 *)(r10 - 72) = r0\nr2 = *(u16 *)(r10 - 72)', false],
  [
    'spill_then_byte_overwrite_bounded_lost',
    'call 5\nr0 &= 63\n*(u64 *)(r10 - 72) = r0\n*(u8 *)(r10 - 66) = 1\nr2 = *(u64 *)(r10 - 72)',
    false,
  ],
  [
    'spill_then_spill_other_over_it',
    'call 5\nr0 &= 63\n*(u64 *)(r10 - 72) = r0\nr1 = 100\n*(u64 *)(r10 - 72) = r1\nr2 = *(u64 *)(r10 - 72)',
    false,
  ],
  ['zero_store_imm_then_fill_is_zero', '*(u64 *)(r10 - 72) = 0\nr2 = *(u64 *)(r10 - 72)', true],
  ['store_imm_63_then_fill', '*(u64 *)(r10 - 72) = 63\nr2 = *(u64 *)(r10 - 72)', true],
  ['store_imm_64_then_fill', '*(u64 *)(r10 - 72) = 64\nr2 = *(u64 *)(r10 - 72)', false],
  ['store_imm_u32_63_then_u32_fill', '*(u32 *)(r10 - 72) = 63\nr2 = *(u32 *)(r10 - 72)', true],
  ['misc_bytes_fill_unknown', '*(u8 *)(r10 - 72) = 1\n*(u8 *)(r10 - 71) = 0\nr2 = *(u16 *)(r10 - 72)', false],
  [
    'var_offset_write_makes_slot_unknown',
    'r1 = 7\n*(u64 *)(r10 - 72) = r1\ncall 5\nr0 &= 8\nr4 = r10\nr4 += -80\nr4 += r0\n*(u64 *)(r4 + 0) = 1000\nr2 = *(u64 *)(r10 - 72)',
    false,
  ],
  [
    'var_offset_read_of_const_spills',
    'r1 = 7\n*(u64 *)(r10 - 72) = r1\n*(u64 *)(r10 - 80) = r1\ncall 5\nr0 &= 8\nr4 = r10\nr4 += -80\nr4 += r0\nr2 = *(u64 *)(r4 + 0)',
    false,
  ],
  ['pointer_spill_u32_fill', 'r1 = r10\n*(u64 *)(r10 - 72) = r1\nr2 = *(u32 *)(r10 - 72)', false],
  ['fill_from_other_slot_uninit_privileged', 'r1 = 1\n*(u64 *)(r10 - 72) = r1\nr2 = *(u64 *)(r10 - 88)', false],
]
for (const t of TYPES) {
  for (const [name, code, ok] of CASES) out.push(prog(`${t}_spill_${name}${sfx(ok)}`, t, `${code}\n${USE}`))
}
export default out
