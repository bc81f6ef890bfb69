// Register types and pointer arithmetic: which ALU operations each pointer type allows, what a
// pointer may be compared with or stored to, and what a scalar may not be dereferenced as.
import { ARRAY_4_8, HASH_8_16, LOOKUP_HASH, LOOKUP0, prog, TYPES } from './_lib.mjs'

const out = []
const sfx = (ok) => (ok ? '_ok' : '_rej')
// [name, code, accepted?]; r1 is the context at entry.
const ALU_ON_CTX = [
  ['ctx_mul', 'r1 *= 2', false],
  ['ctx_or', 'r1 |= 1', false],
  ['ctx_and', 'r1 &= -8', false],
  ['ctx_xor', 'r1 ^= 1', false],
  ['ctx_lsh', 'r1 <<= 1', false],
  ['ctx_rsh', 'r1 >>= 1', false],
  ['ctx_arsh', 'r1 s>>= 1', false],
  ['ctx_div', 'r1 /= 2', false],
  ['ctx_mod', 'r1 %= 2', false],
  // Privileged: a pointer under neg/bswap/movsx just becomes an unknown scalar.
  ['ctx_neg_becomes_scalar', 'r1 = -r1', true],
  ['ctx_add32', 'w1 += 4', false],
  ['ctx_sub_const', 'r1 -= 4', true],
  ['ctx_add_const_no_deref', 'r1 += 8', true],
  ['ctx_plus_ctx', 'r2 = r1\nr1 += r2', false],
  ['ctx_minus_ctx_scalar_result', 'r2 = r1\nr1 -= r2\nr0 = r1\nexit', true],
  ['ctx_mov32_makes_scalar', 'w1 = w1\nr0 = r1\nexit', true],
  ['ctx_mov32_then_deref', 'w1 = w1\nr0 = *(u32 *)(r1 + 0)', false],
  ['ctx_bswap_becomes_scalar', 'r1 = bswap64 r1', true],
  ['ctx_neg_then_deref', 'r1 = -r1\nr0 = *(u32 *)(r1 + 0)', false],
  ['ctx_movsx_becomes_scalar', 'r1 = (s32)r1', true],
  ['scalar_deref', 'r2 = 4096\nr0 = *(u64 *)(r2 + 0)', false],
  ['scalar_store', 'r2 = 4096\n*(u64 *)(r2 + 0) = 1', false],
  ['null_deref', 'r2 = 0\nr0 = *(u8 *)(r2 + 0)', false],
  ['ctx_compare_scalar', 'if r1 == 5 goto +0', true],
  ['ctx_compare_ctx', 'r2 = r1\nif r1 > r2 goto +0', true],
  ['stack_ptr_minus_stack_ptr', 'r2 = r10\nr2 += -8\nr3 = r10\nr3 -= r2\nr0 = r3\nexit', true],
  ['stack_ptr_plus_stack_ptr', 'r2 = r10\nr3 = r10\nr3 += r2', false],
  ['scalar_minus_ptr', 'r2 = 100\nr2 -= r10', false],
  ['scalar_plus_ptr_then_store', 'r2 = -8\nr2 += r10\n*(u64 *)(r2 + 0) = 1', true],
  ['fp_mul', 'r2 = r10\nr2 *= 2', false],
  ['fp_and', 'r2 = r10\nr2 &= -8', false],
  ['fp_add32', 'r2 = r10\nw2 += -8', false],
  ['store_ctx_into_ctx_cb_privileged', '*(u32 *)(r1 + 48) = r1', true],
  ['store_fp_into_ctx_cb_privileged', 'r2 = r10\n*(u64 *)(r1 + 48) = r2', true],
  ['return_ctx_pointer', 'r0 = r1\nexit', true],
  ['return_fp', 'r0 = r10\nexit', true],
]
for (const t of TYPES) {
  for (const [name, code, ok] of ALU_ON_CTX) {
    // socket_filter's cb words are the only writable ctx; the two stores name them.
    if (name.startsWith('store_') && t !== 'socket_filter') continue
    const body = code.endsWith('exit') ? code : `${code}\nr0 = 0\nexit`
    out.push(prog(`${t}_ptr_${name}${sfx(ok)}`, t, body))
  }
}

// Map pointers and map values.
const MAPS = [
  ['map_ptr_add', 'r1 = map[0] ll\nr1 += 8\nr0 = 0\nexit', false],
  // struct bpf_map's fields are readable through BTF.
  ['map_ptr_deref_struct_bpf_map', 'r1 = map[0] ll\nr0 = *(u64 *)(r1 + 0)\nr0 = 0\nexit', true],
  // Its fields by name (Linux 6.18 x86-64 offsets: max_entries 76, key_size 68, ops 40), part of
  // one, across two, before it, and a store into it.
  ['map_ptr_read_max_entries', 'r1 = map[0] ll\nr2 = *(u32 *)(r1 + 76)\nr0 = 0\nexit', true],
  ['map_ptr_read_key_size_low_byte', 'r1 = map[0] ll\nr2 = *(u8 *)(r1 + 68)\nr0 = 0\nexit', true],
  ['map_ptr_read_across_key_and_value_size', 'r1 = map[0] ll\nr2 = *(u64 *)(r1 + 68)\nr0 = 0\nexit', false],
  ['map_ptr_read_negative_off', 'r1 = map[0] ll\nr2 = *(u64 *)(r1 - 8)\nr0 = 0\nexit', false],
  ['map_ptr_store_max_entries', 'r1 = map[0] ll\n*(u32 *)(r1 + 76) = 1\nr0 = 0\nexit', false],
  ['map_ptr_read_ops_pointer', 'r1 = map[0] ll\nr2 = *(u64 *)(r1 + 40)\nr0 = 0\nexit', true],
  // The pointer members give kernel-object pointers (untrusted_ptr_bpf_map_ops, ..._bpf_map, the
  // void *security as rdonly_untrusted_mem): kept, moved by constants, compared; part of one refused.
  ['map_ptr_read_ops_pointer_u32', 'r1 = map[0] ll\nr2 = *(u32 *)(r1 + 40)\nr0 = 0\nexit', false],
  ['map_ptr_read_ops_pointer_at_44', 'r1 = map[0] ll\nr2 = *(u32 *)(r1 + 44)\nr0 = 0\nexit', false],
  ['map_ptr_read_inner_map_meta_pointer', 'r1 = map[0] ll\nr2 = *(u64 *)(r1 + 48)\nr0 = 0\nexit', true],
  ['map_ptr_read_security_pointer', 'r1 = map[0] ll\nr2 = *(u64 *)(r1 + 56)\nr0 = 0\nexit', true],
  [
    'map_ptr_ops_pointer_null_compare_both_ways',
    'r1 = map[0] ll\nr2 = *(u64 *)(r1 + 40)\nif r2 == 0 goto +2\nr0 = 0\nexit\nr0 = 1\nexit',
    true,
  ],
  ['map_ptr_ops_pointer_add_const', 'r1 = map[0] ll\nr2 = *(u64 *)(r1 + 40)\nr2 += 8\nr0 = 0\nexit', true],
  ['map_ptr_ops_pointer_mul', 'r1 = map[0] ll\nr2 = *(u64 *)(r1 + 40)\nr2 *= 2\nr0 = 0\nexit', false],
  [
    'map_ptr_ops_pointer_spill_fill',
    'r1 = map[0] ll\nr2 = *(u64 *)(r1 + 40)\n*(u64 *)(r10 - 8) = r2\nr3 = *(u64 *)(r10 - 8)\nr0 = 0\nexit',
    true,
  ],
  [
    'map_ptr_ops_pointer_store_through',
    'r1 = map[0] ll\nr2 = *(u64 *)(r1 + 40)\n*(u64 *)(r2 + 0) = 1\nr0 = 0\nexit',
    false,
  ],
  [
    'map_ptr_store_to_stack_fill_call',
    `r1 = map[0] ll\n*(u64 *)(r10 - 16) = r1\n*(u32 *)(r10 - 4) = 0\nr2 = r10\nr2 += -4\nr1 = *(u64 *)(r10 - 16)\ncall 1\nr0 = 0\nexit`,
    true,
  ],
  // An array lookup with a constant key below max_entries cannot fail: 6.18 drops the null.
  ['array_const_key_lookup_deref_without_check', `${LOOKUP0}\nr0 = *(u64 *)(r0 + 0)\nr0 = 0\nexit`, true],
  [
    'array_const_key_4_past_max_entries_deref',
    `*(u32 *)(r10 - 4) = 4\nr2 = r10\nr2 += -4\nr1 = map[0] ll\ncall 1\nr0 = *(u64 *)(r0 + 0)\nr0 = 0\nexit`,
    false,
  ],
  [
    'array_var_key_lookup_deref_without_check',
    `call 7\n*(u32 *)(r10 - 4) = r0\nr2 = r10\nr2 += -4\nr1 = map[0] ll\ncall 1\nr0 = *(u64 *)(r0 + 0)\nr0 = 0\nexit`,
    false,
  ],
  ['map_value_or_null_deref', `${LOOKUP0}\nr0 = *(u64 *)(r0 + 0)\nr0 = 0\nexit`, false],
  ['map_value_or_null_add_before_check', `${LOOKUP0}\nr0 += 8\nif r0 == 0 goto +1\nr0 = 0\nexit`, false],
  ['map_value_checked_deref', `${LOOKUP0}\nif r0 == 0 goto +1\nr0 = *(u64 *)(r0 + 0)\nr0 = 0\nexit`, true],
  [
    'map_value_checked_ne_form',
    `${LOOKUP0}\nif r0 != 0 goto +2\nr0 = 0\nexit\nr0 = *(u64 *)(r0 + 0)\nr0 = 0\nexit`,
    true,
  ],
  ['map_value_wrong_branch_deref', `${LOOKUP0}\nif r0 != 0 goto +1\nr0 = *(u64 *)(r0 + 0)\nr0 = 0\nexit`, false],
  [
    'map_value_copy_checked_via_id',
    `${LOOKUP0}\nr6 = r0\nif r0 == 0 goto +1\nr0 = *(u64 *)(r6 + 0)\nr0 = 0\nexit`,
    true,
  ],
  [
    'map_value_spilled_copy_checked_via_id',
    `${LOOKUP0}\n*(u64 *)(r10 - 16) = r0\nif r0 == 0 goto +2\nr1 = *(u64 *)(r10 - 16)\nr0 = *(u64 *)(r1 + 0)\nr0 = 0\nexit`,
    true,
  ],
  [
    'map_value_copy_of_other_lookup_unchecked',
    `${LOOKUP0}\nr6 = r0\n${LOOKUP0}\nif r0 == 0 goto +1\nr0 = *(u64 *)(r6 + 0)\nr0 = 0\nexit`,
    false,
  ],
  [
    'map_value_compare_with_1_not_null_check',
    `${LOOKUP0}\nif r0 == 1 goto +1\nr0 = *(u64 *)(r0 + 0)\nr0 = 0\nexit`,
    false,
  ],
  ['map_value_store_pointer_into_value', `${LOOKUP0}\nif r0 == 0 goto +1\n*(u64 *)(r0 + 0) = r10\nr0 = 0\nexit`, true],
  ['map_value_mul', `${LOOKUP0}\nif r0 == 0 goto +1\nr0 *= 2\nr0 = 0\nexit`, false],
  [
    'map_value_sub_const_then_read',
    `${LOOKUP0}\nif r0 == 0 goto +3\nr0 += 8\nr0 -= 8\nr0 = *(u64 *)(r0 + 0)\nr0 = 0\nexit`,
    true,
  ],
  [
    'map_value_var_add_unbounded',
    `${LOOKUP0}\nif r0 == 0 goto +4\nr6 = r0\ncall 5\nr6 += r0\nr0 = *(u8 *)(r6 + 0)\nr0 = 0\nexit`,
    false,
  ],
  ['lookup_result_used_as_scalar_after_check', `${LOOKUP0}\nif r0 == 0 goto +1\nr0 = 1\nexit`, true],
  ['return_map_value_or_null', `${LOOKUP0}\nexit`, true],
  // Only the immediate 0 makes a null check: against a register holding 0 the kernel keeps
  // the pointer `_or_null` on both sides, whichever side of the comparison it is on.
  [
    'null_check_against_zero_register',
    `${LOOKUP0}\nr1 = 0\nif r0 == r1 goto +1\nr0 = *(u64 *)(r0 + 0)\nr0 = 0\nexit`,
    false,
  ],
  [
    'null_check_ne_zero_register',
    `${LOOKUP0}\nr1 = 0\nif r0 != r1 goto +2\nr0 = 0\nexit\nr0 = *(u64 *)(r0 + 0)\nr0 = 0\nexit`,
    false,
  ],
  [
    'null_check_zero_register_first',
    `${LOOKUP0}\nr1 = 0\nif r1 == r0 goto +1\nr0 = *(u64 *)(r0 + 0)\nr0 = 0\nexit`,
    false,
  ],
]
for (const t of TYPES) {
  for (const [name, code, ok] of MAPS) {
    // Null checks are about hash lookups (which may miss); the array_ ones are about the array case.
    const hash = !name.startsWith('array_') && !name.startsWith('map_ptr')
    out.push(
      prog(`${t}_ptr_${name}${sfx(ok)}`, t, hash ? code.replaceAll(LOOKUP0, LOOKUP_HASH) : code, [
        hash ? HASH_8_16 : ARRAY_4_8,
      ]),
    )
  }
}
export default out
