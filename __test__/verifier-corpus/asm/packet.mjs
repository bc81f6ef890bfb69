// Direct packet access (xdp): the range learned from comparing data + N with data_end, in each
// comparison form, just inside and just outside; data_meta; writes; packet pointers after a helper
// that moves the packet; socket filters and kprobes, which have no direct packet access.
import { prog } from './_lib.mjs'

const out = []
const sfx = (ok) => (ok ? '_ok' : '_rej')
const LOAD = 'r2 = *(u32 *)(r1 + 0)\nr3 = *(u32 *)(r1 + 4)'
// [name, check (r4 = data + N against r3 = data_end; falls through when in range), access, ok]
const CHECKS = [
  ['gt_14_read_13', 'r4 = r2\nr4 += 14\nif r4 > r3 goto out', 'r0 = *(u8 *)(r2 + 13)', true],
  ['gt_14_read_14', 'r4 = r2\nr4 += 14\nif r4 > r3 goto out', 'r0 = *(u8 *)(r2 + 14)', false],
  ['gt_14_read_u16_12', 'r4 = r2\nr4 += 14\nif r4 > r3 goto out', 'r0 = *(u16 *)(r2 + 12)', true],
  ['gt_14_read_u32_12', 'r4 = r2\nr4 += 14\nif r4 > r3 goto out', 'r0 = *(u32 *)(r2 + 12)', false],
  ['gt_14_read_u64_6', 'r4 = r2\nr4 += 14\nif r4 > r3 goto out', 'r0 = *(u64 *)(r2 + 6)', true],
  ['gt_14_read_minus_1', 'r4 = r2\nr4 += 14\nif r4 > r3 goto out', 'r0 = *(u8 *)(r2 - 1)', false],
  ['ge_14_read_13', 'r4 = r2\nr4 += 14\nif r4 >= r3 goto out', 'r0 = *(u8 *)(r2 + 13)', true],
  ['ge_14_read_14', 'r4 = r2\nr4 += 14\nif r4 >= r3 goto out', 'r0 = *(u8 *)(r2 + 14)', true],
  ['ge_14_read_15', 'r4 = r2\nr4 += 14\nif r4 >= r3 goto out', 'r0 = *(u8 *)(r2 + 15)', false],
  ['lt_end_reversed_read_13', 'r4 = r2\nr4 += 14\nif r3 < r4 goto out', 'r0 = *(u8 *)(r2 + 13)', true],
  ['lt_end_reversed_read_14', 'r4 = r2\nr4 += 14\nif r3 < r4 goto out', 'r0 = *(u8 *)(r2 + 14)', false],
  ['le_inverted_read_13', 'r4 = r2\nr4 += 14\nif r4 <= r3 goto +1\ngoto out', 'r0 = *(u8 *)(r2 + 13)', true],
  ['le_inverted_read_14', 'r4 = r2\nr4 += 14\nif r4 <= r3 goto +1\ngoto out', 'r0 = *(u8 *)(r2 + 14)', false],
  ['eq_end_is_not_a_range', 'r4 = r2\nr4 += 14\nif r4 == r3 goto out', 'r0 = *(u8 *)(r2 + 0)', false],
  ['no_check', '', 'r0 = *(u8 *)(r2 + 0)', false],
  ['check_on_wrong_branch', 'r4 = r2\nr4 += 14\nif r4 <= r3 goto out', 'r0 = *(u8 *)(r2 + 0)', false],
  ['jmp32_compare_not_a_range', 'r4 = r2\nr4 += 14\nif w4 > w3 goto out', 'r0 = *(u8 *)(r2 + 0)', false],
  ['signed_compare_not_a_range', 'r4 = r2\nr4 += 14\nif r4 s> r3 goto out', 'r0 = *(u8 *)(r2 + 0)', false],
  ['check_copy_access_original', 'r5 = r2\nr4 = r5\nr4 += 14\nif r4 > r3 goto out', 'r0 = *(u8 *)(r2 + 13)', true],
  [
    'check_access_through_advanced_ptr',
    'r4 = r2\nr4 += 14\nif r4 > r3 goto out\nr2 += 10',
    'r0 = *(u32 *)(r2 + 0)',
    true,
  ],
  [
    'check_access_through_advanced_ptr_past',
    'r4 = r2\nr4 += 14\nif r4 > r3 goto out\nr2 += 11',
    'r0 = *(u32 *)(r2 + 0)',
    false,
  ],
  ['write_inside', 'r4 = r2\nr4 += 14\nif r4 > r3 goto out', '*(u8 *)(r2 + 13) = 0', true],
  ['write_past', 'r4 = r2\nr4 += 14\nif r4 > r3 goto out', '*(u16 *)(r2 + 13) = 0', false],
  [
    'var_offset_masked_inside',
    'call 5\nr2 = *(u32 *)(r6 + 0)\nr3 = *(u32 *)(r6 + 4)\nr0 &= 15\nr2 += r0\nr4 = r2\nr4 += 14\nif r4 > r3 goto out',
    'r0 = *(u8 *)(r2 + 13)',
    true,
  ],
  [
    'var_offset_unbounded',
    'call 5\nr2 = *(u32 *)(r6 + 0)\nr3 = *(u32 *)(r6 + 4)\nr2 += r0\nr4 = r2\nr4 += 14\nif r4 > r3 goto out',
    'r0 = *(u8 *)(r2 + 13)',
    false,
  ],
  // Adding a variable to a checked packet pointer gives a new pointer with no range of its own.
  [
    'var_offset_after_check_loses_range',
    'r4 = r2\nr4 += 14\nif r4 > r3 goto out\nr6 = r2\ncall 5\nr2 = r6\nr0 &= 7\nr2 += r0',
    'r0 = *(u8 *)(r2 + 0)',
    false,
  ],
  ['range_32k_const_read', 'r4 = r2\nr4 += 32767\nif r4 > r3 goto out', 'r0 = *(u8 *)(r2 + 32766)', true],
  ['range_64k_plus_1_const', 'r4 = r2\nr4 += 65536\nif r4 > r3 goto out', 'r0 = *(u8 *)(r2 + 0)', false],
  ['data_end_deref', '', 'r0 = *(u8 *)(r3 + 0)', false],
  ['data_end_arith', 'r3 += 1', 'r0 = 0', false],
  ['pkt_ptr_sub_pkt_ptr_length', 'r4 = r3\nr4 -= r2', 'r0 = r4', true],
  [
    'pkt_ptr_spill_fill_keeps_range',
    'r4 = r2\nr4 += 14\nif r4 > r3 goto out\n*(u64 *)(r10 - 8) = r2\nr2 = *(u64 *)(r10 - 8)',
    'r0 = *(u8 *)(r2 + 13)',
    true,
  ],
]
for (const [name, check, access, ok] of CHECKS) {
  const head = name.startsWith('var_offset') && check.startsWith('call') ? 'r6 = r1' : LOAD
  const tail = check.includes('out') ? '\nout:\nr0 = 2\nexit' : ''
  out.push(prog(`xdp_pkt_${name}${sfx(ok)}`, 'xdp', `${head}\n${check}\n${access}\nr0 = 2\nexit${tail}`))
}
// data_meta: the range before data, learned from comparing meta + N with data.
out.push(
  prog(
    'xdp_pkt_meta_checked_read_ok',
    'xdp',
    'r2 = *(u32 *)(r1 + 8)\nr3 = *(u32 *)(r1 + 0)\nr4 = r2\nr4 += 4\nif r4 > r3 goto +1\nr0 = *(u32 *)(r2 + 0)\nr0 = 2\nexit',
  ),
)
out.push(prog('xdp_pkt_meta_unchecked_read_rej', 'xdp', 'r2 = *(u32 *)(r1 + 8)\nr0 = *(u32 *)(r2 + 0)\nr0 = 2\nexit'))
out.push(
  prog(
    'xdp_pkt_meta_checked_against_data_end_rej',
    'xdp',
    'r2 = *(u32 *)(r1 + 8)\nr3 = *(u32 *)(r1 + 4)\nr4 = r2\nr4 += 4\nif r4 > r3 goto +1\nr0 = *(u32 *)(r2 + 0)\nr0 = 2\nexit',
  ),
)
// bpf_xdp_adjust_head (44) may move the packet: older pointers lose their range.
out.push(
  prog(
    'xdp_pkt_adjust_head_invalidates_old_ptr_rej',
    'xdp',
    `r6 = r1\n${LOAD}\nr4 = r2\nr4 += 14\nif r4 > r3 goto out\nr7 = r2\nr1 = r6\nr2 = 4\ncall 44\nr0 = *(u8 *)(r7 + 0)\nout:\nr0 = 2\nexit`,
  ),
)
out.push(
  prog(
    'xdp_pkt_adjust_head_reload_and_check_ok',
    'xdp',
    `r6 = r1\nr1 = r6\nr2 = 4\ncall 44\nr2 = *(u32 *)(r6 + 0)\nr3 = *(u32 *)(r6 + 4)\nr4 = r2\nr4 += 1\nif r4 > r3 goto +1\nr0 = *(u8 *)(r2 + 0)\nr0 = 2\nexit`,
  ),
)
out.push(
  prog(
    'xdp_pkt_adjust_tail_invalidates_old_ptr_rej',
    'xdp',
    `r6 = r1\n${LOAD}\nr4 = r2\nr4 += 14\nif r4 > r3 goto out\nr7 = r2\nr1 = r6\nr2 = -4\ncall 65\nr0 = *(u8 *)(r7 + 0)\nout:\nr0 = 2\nexit`,
  ),
)
out.push(
  prog(
    'xdp_pkt_ktime_keeps_old_range_ok',
    'xdp',
    `${LOAD}\nr4 = r2\nr4 += 14\nif r4 > r3 goto out\nr7 = r2\ncall 5\nr0 = *(u8 *)(r7 + 0)\nout:\nr0 = 2\nexit`,
  ),
)
// Packet pointers as helper memory: bpf_csum_diff (28) reads from a checked packet range.
out.push(
  prog(
    'xdp_pkt_csum_diff_from_checked_range_ok',
    'xdp',
    `${LOAD}\nr4 = r2\nr4 += 8\nif r4 > r3 goto out\nr1 = r2\nr2 = 8\nr3 = 0\nr4 = 0\nr5 = 0\ncall 28\nout:\nr0 = 2\nexit`,
  ),
)
out.push(
  prog(
    'xdp_pkt_csum_diff_size_past_range_rej',
    'xdp',
    `${LOAD}\nr4 = r2\nr4 += 8\nif r4 > r3 goto out\nr1 = r2\nr2 = 12\nr3 = 0\nr4 = 0\nr5 = 0\ncall 28\nout:\nr0 = 2\nexit`,
  ),
)
// data_end is no memory, even of size 0 (found by scripts/verifier-fuzz.mjs).
out.push(
  prog(
    'xdp_pkt_csum_diff_pkt_end_as_to_with_size_0_rej',
    'xdp',
    `${LOAD}\nr4 = r2\nr4 += 8\nif r4 > r3 goto out\nr1 = r2\nr2 = 8\nr4 = 0\nr5 = 0\ncall 28\nout:\nr0 = 2\nexit`,
  ),
)
// Return values: xdp programs may return any scalar to the verifier (the action is checked at run time).
for (const [name, r0, ok] of [
  ['xdp_pass', 'r0 = 2', true],
  ['xdp_redirect', 'r0 = 4', true],
  ['out_of_range_99', 'r0 = 99', true],
  ['negative', 'r0 = -1', true],
  ['packet_pointer', 'r0 = *(u32 *)(r1 + 0)\nr0 = r1', true],
]) {
  out.push(prog(`xdp_return_${name}${sfx(ok)}`, 'xdp', `${r0}\nexit`))
}
// Socket filters and kprobes read packets only through helpers and LD_ABS.
out.push(
  prog(
    'socket_filter_pkt_data_field_rej',
    'socket_filter',
    'r2 = *(u32 *)(r1 + 76)\nr0 = *(u8 *)(r2 + 0)\nr0 = 0\nexit',
  ),
)
out.push(
  prog(
    'socket_filter_skb_load_bytes_to_stack_ok',
    'socket_filter',
    'r2 = 0\nr3 = r10\nr3 += -8\nr4 = 8\ncall 26\nr0 = *(u64 *)(r10 - 8)\nr0 = 0\nexit',
  ),
)
out.push(
  prog(
    'socket_filter_skb_load_bytes_len_9_into_8_rej',
    'socket_filter',
    'r2 = 0\nr3 = r10\nr3 += -8\nr4 = 9\ncall 26\nr0 = 0\nexit',
  ),
)
out.push(
  prog(
    'socket_filter_skb_load_bytes_len_0_rej',
    'socket_filter',
    'r2 = 0\nr3 = r10\nr3 += -8\nr4 = 0\ncall 26\nr0 = 0\nexit',
  ),
)
out.push(
  prog(
    'socket_filter_skb_load_bytes_var_len_bounded_ok',
    'socket_filter',
    'r6 = r1\ncall 5\nr4 = r0\nr4 &= 7\nr4 += 1\nr1 = r6\nr2 = 0\nr3 = r10\nr3 += -8\ncall 26\nr0 = 0\nexit',
  ),
)
out.push(
  prog(
    'socket_filter_skb_load_bytes_var_len_unbounded_rej',
    'socket_filter',
    'r6 = r1\ncall 5\nr4 = r0\nr1 = r6\nr2 = 0\nr3 = r10\nr3 += -8\ncall 26\nr0 = 0\nexit',
  ),
)
out.push(
  prog(
    'socket_filter_skb_load_bytes_ctx_not_r1_rej',
    'socket_filter',
    'r1 = r10\nr2 = 0\nr3 = r10\nr3 += -8\nr4 = 8\ncall 26\nr0 = 0\nexit',
  ),
)
out.push(
  prog('kprobe_skb_load_bytes_not_allowed_rej', 'kprobe', 'r2 = 0\nr3 = r10\nr3 += -8\nr4 = 8\ncall 26\nr0 = 0\nexit'),
)
out.push(prog('xdp_skb_load_bytes_not_allowed_rej', 'xdp', 'r2 = 0\nr3 = r10\nr3 += -8\nr4 = 8\ncall 26\nr0 = 0\nexit'))
out.push(prog('xdp_load_bytes_helper_ok', 'xdp', 'r2 = 0\nr3 = r10\nr3 += -8\nr4 = 8\ncall 189\nr0 = 2\nexit'))
export default out
