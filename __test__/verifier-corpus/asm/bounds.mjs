// Scalar bounds and branch refinement: an unknown scalar (bpf_get_prandom_u32: a u32, or
// bpf_ktime_get_ns: a u64) is bounded by a comparison, an AND, a shift or a modulo, then used as an
// offset into a 64-byte stack buffer at fp-64 or into a 64-byte map value. Each bound comes in two
// variants: the limit just inside (offsets 0..63: accepted) and just outside (rejected).
import { ARRAY_4_64, LOOKUP0, prog, TYPES } from './_lib.mjs'

const out = []
const sfx = (ok) => (ok ? '_ok' : '_rej')
// bpf_get_prandom_u32 returns an unknown 64-bit scalar to the verifier; w0 = w0 makes it a u32.
const PRANDOM = 'call 7\nw0 = w0'
const KTIME = 'call 5'

// Use r0 as an offset into the 64-byte stack buffer at fp-64, writing one byte there.
const USE_STACK = `r3 = r10
r3 += -64
r3 += r0
*(u8 *)(r3 + 0) = 1
r0 = 0
exit`
// `out` (the path the bound rejects) exists only where some jump goes there: dead code is refused.
const tail = (code) => (code.includes('out') ? '\nout:\nr0 = 0\nexit' : '')
const stack = (source, bound) => `${source}\n${bound}\n${USE_STACK}${tail(bound)}`

// Each bound: [name, code (may jump to `out`), source, accepted?]
const BOUNDS = [
  ['jgt_63', 'if r0 > 63 goto out', KTIME, true],
  ['jgt_64', 'if r0 > 64 goto out', KTIME, false],
  ['jge_64', 'if r0 >= 64 goto out', KTIME, true],
  ['jge_65', 'if r0 >= 65 goto out', KTIME, false],
  ['jlt_64_inverted', 'if r0 < 64 goto +1\ngoto out', KTIME, true],
  ['jlt_65_inverted', 'if r0 < 65 goto +1\ngoto out', KTIME, false],
  ['jle_63_inverted', 'if r0 <= 63 goto +1\ngoto out', KTIME, true],
  ['jle_64_inverted', 'if r0 <= 64 goto +1\ngoto out', KTIME, false],
  ['jsgt_63_only', 'if r0 s> 63 goto out', KTIME, false],
  ['jsgt_63_and_jslt_0', 'if r0 s> 63 goto out\nif r0 s< 0 goto out', KTIME, true],
  ['jsgt_64_and_jslt_0', 'if r0 s> 64 goto out\nif r0 s< 0 goto out', KTIME, false],
  ['jsge_64_and_jsle_minus1', 'if r0 s>= 64 goto out\nif r0 s<= -1 goto out', KTIME, true],
  // Negative offsets reach below the buffer, into the rest of the 512-byte stack: fp-512 is the end.
  ['jsgt_63_and_jslt_minus_448', 'if r0 s> 63 goto out\nif r0 s< -448 goto out', KTIME, true],
  ['jsgt_63_and_jslt_minus_449', 'if r0 s> 63 goto out\nif r0 s< -449 goto out', KTIME, false],
  ['jslt_64_inverted_u32_source', 'if r0 s< 64 goto +1\ngoto out', PRANDOM, true],
  ['jgt_63_u32_source', 'if r0 > 63 goto out', PRANDOM, true],
  ['jgt_64_u32_source', 'if r0 > 64 goto out', PRANDOM, false],
  ['jmp32_jgt_63_u32_source', 'if w0 > 63 goto out', PRANDOM, true],
  ['jmp32_jgt_64_u32_source', 'if w0 > 64 goto out', PRANDOM, false],
  ['jmp32_jgt_63_u64_source', 'if w0 > 63 goto out', KTIME, false],
  ['jmp32_jsgt_63_and_jslt_0_u32', 'if w0 s> 63 goto out\nif w0 s< 0 goto out', PRANDOM, true],
  ['jmp32_jge_64_then_mov32', 'if w0 >= 64 goto out\nw0 = w0', KTIME, true],
  ['jeq_const_63', 'if r0 != 63 goto out', KTIME, true],
  ['jeq_const_64', 'if r0 != 64 goto out', KTIME, false],
  ['jne_const_only_rej', 'if r0 == 64 goto out', KTIME, false],
  ['and_63', 'r0 &= 63', KTIME, true],
  ['and_64', 'r0 &= 64', KTIME, false],
  ['and_127', 'r0 &= 127', KTIME, false],
  ['and_62_even_only', 'r0 &= 62', KTIME, true],
  ['and32_63', 'w0 &= 63', KTIME, true],
  ['rsh_58', 'r0 >>= 58', KTIME, true],
  ['rsh_57', 'r0 >>= 57', KTIME, false],
  ['rsh32_26', 'w0 >>= 26', KTIME, true],
  ['rsh32_25', 'w0 >>= 25', KTIME, false],
  ['arsh_58_signed_range_in_stack', 'r0 s>>= 58', KTIME, true],
  ['mod_64', 'r0 %= 64', KTIME, false],
  ['mod32_64', 'w0 %= 64', KTIME, false],
  // Division and modulo leave the result unknown in 6.18, whatever the operands' bounds.
  ['div_u32_by_67108864_bounds_lost', 'r0 /= 67108864', PRANDOM, false],
  ['and_31_plus_32', 'r0 &= 31\nr0 += 32', KTIME, true],
  ['and_31_plus_33', 'r0 &= 31\nr0 += 33', KTIME, false],
  ['and_15_mul_4', 'r0 &= 15\nr0 *= 4', KTIME, true],
  ['and_15_mul_5', 'r0 &= 15\nr0 *= 5', KTIME, false],
  ['and_7_lsh_3', 'r0 &= 7\nr0 <<= 3', KTIME, true],
  ['and_7_lsh_4', 'r0 &= 7\nr0 <<= 4', KTIME, false],
  ['and_63_sub_0_then_neg_check', 'r0 &= 63\nr1 = 63\nr1 -= r0\nr0 = r1', KTIME, true],
  ['and_63_neg_in_stack', 'r0 &= 63\nr0 = -r0', KTIME, true],
  ['and_63_xor_32', 'r0 &= 63\nr0 ^= 32', KTIME, true],
  ['and_63_or_64', 'r0 &= 63\nr0 |= 64', KTIME, false],
  ['and_63_or_1', 'r0 &= 63\nr0 |= 1', KTIME, true],
  ['two_bounded_sum', 'r0 &= 31\nr6 = r0\ncall 5\nr0 &= 32\nr0 += r6', KTIME, true],
  ['two_bounded_sum_too_big', 'r0 &= 31\nr6 = r0\ncall 5\nr0 &= 63\nr0 += r6', KTIME, false],
  ['reg_limit_jgt', 'r1 = 63\nif r0 > r1 goto out', KTIME, true],
  ['reg_limit_jgt_64', 'r1 = 64\nif r0 > r1 goto out', KTIME, false],
  ['copy_bounded_after_check', 'r6 = r0\nif r6 > 63 goto out\nr0 = r6', KTIME, true],
  ['linked_copy_checked_original_used', 'r6 = r0\nif r0 > 63 goto out\nr0 = r6', KTIME, true],
  ['linked_copy_broken_by_add', 'r6 = r0\nr6 += 1\nif r0 > 63 goto out\nr0 = r6', KTIME, false],
  ['spilled_then_checked_refill', '*(u64 *)(r10 - 72) = r0\nif r0 > 63 goto out\nr0 = *(u64 *)(r10 - 72)', KTIME, true],
  ['movsx8_then_and', 'r0 = (s8)r0\nr0 &= 63', KTIME, true],
  ['movsx8_alone', 'r0 = (s8)r0\nif r0 s< 0 goto out', KTIME, false],
  ['movsx8_nonneg', 'r0 = (s8)r0\nif r0 s< 0 goto out\nif r0 s> 63 goto out', KTIME, true],
  ['bswap16_and_63', 'r0 = bswap16 r0\nr0 &= 63', KTIME, true],
  ['be16_unbounded', 'r0 = be16 r0', KTIME, false],
  ['unbounded_no_check', '', KTIME, false],
  ['u32_unbounded_no_check', '', PRANDOM, false],
  ['jset_high_bits_then_use', 'if r0 & -64 goto out', KTIME, true],
  ['and_const_in_reg', 'r1 = 63\nr0 &= r1', KTIME, true],
]
for (const t of TYPES) {
  for (const [name, code, source, ok] of BOUNDS) {
    out.push(prog(`${t}_bounds_stack_${name}${sfx(ok)}`, t, stack(source, code)))
  }
}

// The same bounds on a 64-byte map value (value_size 64): offset + 1-byte access <= 64.
const USE_VALUE = `r6 = r0
${LOOKUP0}
if r0 == 0 goto out
r0 += r6
*(u8 *)(r0 + 0) = 1
r0 = 0
exit`
const MAP_BOUNDS = [
  ['jgt_63', 'if r0 > 63 goto out', true],
  ['jgt_64', 'if r0 > 64 goto out', false],
  ['and_63', 'r0 &= 63', true],
  ['and_127', 'r0 &= 127', false],
  ['jsgt_63_only', 'if r0 s> 63 goto out', false],
  ['jsgt_63_and_jslt_0', 'if r0 s> 63 goto out\nif r0 s< 0 goto out', true],
  ['unbounded', '', false],
  ['rsh_58', 'r0 >>= 58', true],
]
for (const t of TYPES) {
  for (const [name, code, ok] of MAP_BOUNDS) {
    out.push(
      prog(`${t}_bounds_map_value_${name}${sfx(ok)}`, t, `${KTIME}\n${code}\n${USE_VALUE}\nout:\nr0 = 0\nexit`, [
        ARRAY_4_64,
      ]),
    )
  }
  // Fixed offsets into the 64-byte value: last byte, one past, an 8-byte read ending at the end.
  for (const [name, access, ok] of [
    ['u8_off_63', 'r1 = *(u8 *)(r0 + 63)', true],
    ['u8_off_64', 'r1 = *(u8 *)(r0 + 64)', false],
    ['u64_off_56', 'r1 = *(u64 *)(r0 + 56)', true],
    ['u64_off_60', 'r1 = *(u64 *)(r0 + 60)', false],
    ['u32_off_minus_4', 'r1 = *(u32 *)(r0 - 4)', false],
    ['write_u64_off_56', '*(u64 *)(r0 + 56) = 1', true],
    ['write_u64_off_57', '*(u64 *)(r0 + 57) = 1', false],
  ]) {
    out.push(
      prog(`${t}_map_value_${name}${sfx(ok)}`, t, `${LOOKUP0}\nif r0 == 0 goto out\n${access}\nout:\nr0 = 0\nexit`, [
        ARRAY_4_64,
      ]),
    )
  }
}
export default out
