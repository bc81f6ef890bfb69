// tc (sched_cls): __sk_buff with tc's rules (tc_cls_act_is_valid_access): the fields it reads
// and writes, at which sizes; direct packet read and write; LD_ABS; return values; helpers.
import { prog } from './_lib.mjs'

const out = []
const sfx = (ok) => (ok ? '_ok' : '_rej')

// [name, offset, size (1, 2, 4, 8), readable]
const READS = [
  ['len', 0, 4, true],
  ['mark', 8, 4, true],
  ['mark_u8_1', 9, 1, true],
  ['mark_u16_2', 10, 2, true],
  ['mark_u64', 8, 8, false],
  ['queue_mapping', 12, 4, true],
  ['priority', 32, 4, true],
  ['tc_index', 44, 4, true],
  ['cb0_u64', 48, 8, true],
  ['cb4_u32', 64, 4, true],
  ['cb4_u64', 64, 8, false],
  ['hash', 68, 4, true],
  ['tc_classid', 72, 4, true],
  ['tc_classid_u16', 74, 2, true],
  ['data_u16', 76, 2, false],
  ['data_end_u64', 80, 8, false],
  ['napi_id', 84, 4, true],
  ['family', 88, 4, false],
  ['remote_ip4', 92, 4, false],
  ['local_port', 136, 4, false],
  ['data_meta', 140, 4, true],
  ['flow_keys', 144, 8, false],
  ['tstamp', 152, 8, true],
  ['tstamp_u32', 152, 4, false],
  ['wire_len', 160, 4, true],
  ['gso_segs', 164, 4, true],
  ['sk', 168, 8, true],
  ['sk_u32', 168, 4, false],
  ['gso_size', 176, 4, true],
  ['tstamp_type_u8', 180, 1, true],
  ['tstamp_type_u16', 180, 2, false],
  ['padding_181', 181, 1, false],
  ['hwtstamp', 184, 8, true],
  ['hwtstamp_u32', 184, 4, false],
  ['past_end_192', 192, 4, false],
  ['misaligned_mark_u32_9', 9, 4, false],
]
const W = { 1: 'u8', 2: 'u16', 4: 'u32', 8: 'u64' }
for (const [name, off, size, ok] of READS) {
  out.push(prog(`tc_ctx_read_${name}${sfx(ok)}`, 'tc', `r0 = *(${W[size]} *)(r1 + ${off})\nr0 = 0\nexit`))
}
// [name, offset, size, writable]
const WRITES = [
  ['mark', 8, 4, true],
  ['mark_u8', 8, 1, false],
  ['priority', 32, 4, true],
  ['tc_index', 44, 4, true],
  ['queue_mapping', 12, 4, true],
  ['queue_mapping_u16', 12, 2, false],
  ['tc_classid', 72, 4, true],
  ['cb0_u8', 48, 1, true],
  ['cb2_u64', 56, 8, true],
  ['cb4_u64', 64, 8, false],
  ['tstamp', 152, 8, true],
  ['tstamp_u32', 152, 4, false],
  ['len', 0, 4, false],
  ['hash', 68, 4, false],
  ['protocol', 16, 4, false],
  ['data', 76, 4, false],
  ['hwtstamp', 184, 8, false],
  ['napi_id', 84, 4, false],
  ['wire_len', 160, 4, false],
]
for (const [name, off, size, ok] of WRITES) {
  out.push(prog(`tc_ctx_write_${name}${sfx(ok)}`, 'tc', `r2 = 1\n*(${W[size]} *)(r1 + ${off}) = r2\nr0 = 0\nexit`))
  out.push(prog(`tc_ctx_store_imm_${name}${sfx(ok)}`, 'tc', `*(${W[size]} *)(r1 + ${off}) = 1\nr0 = 0\nexit`))
}
// The packet: read and write after a check against data_end.
const PKT = 'r2 = *(u32 *)(r1 + 76)\nr3 = *(u32 *)(r1 + 80)\nr4 = r2\nr4 += 14\nif r4 > r3 goto out'
for (const [name, access, ok] of [
  ['read_13', 'r0 = *(u8 *)(r2 + 13)', true],
  ['read_14', 'r0 = *(u8 *)(r2 + 14)', false],
  ['write_u16_12', '*(u16 *)(r2 + 12) = 8', true],
  ['write_u32_12', '*(u32 *)(r2 + 12) = 8', false],
  ['write_reg_u64_0', 'r5 = 7\n*(u64 *)(r2 + 0) = r5', true],
]) {
  out.push(prog(`tc_pkt_${name}${sfx(ok)}`, 'tc', `${PKT}\n${access}\nr0 = 0\nexit\nout:\nr0 = 0\nexit`))
}
out.push(prog('tc_pkt_unchecked_read_rej', 'tc', 'r2 = *(u32 *)(r1 + 76)\nr0 = *(u8 *)(r2 + 0)\nr0 = 0\nexit'))
out.push(prog('tc_pkt_data_end_deref_rej', 'tc', 'r2 = *(u32 *)(r1 + 80)\nr0 = *(u8 *)(r2 + 0)\nr0 = 0\nexit'))
// LD_ABS and LD_IND read the packet from r6 = ctx.
out.push(prog('tc_ld_abs_h_ok', 'tc', 'r6 = r1\nr0 = *(u16 *)skb[12]\nr0 = 0\nexit'))
out.push(prog('tc_ld_abs_without_r6_ctx_rej', 'tc', 'r0 = *(u16 *)skb[12]\nr0 = 0\nexit'))
// Return values: tc actions, checked at run time, any scalar here.
for (const [name, r0, ok] of [
  ['act_ok_0', 'r0 = 0', true],
  ['act_shot_2', 'r0 = 2', true],
  ['act_redirect_7', 'r0 = 7', true],
  ['minus_1', 'r0 = -1', true],
  ['big', 'r0 = 1000', true],
  ['uninit', '', false],
]) {
  out.push(prog(`tc_return_${name}${sfx(ok)}`, 'tc', `${r0}\nexit`))
}
// Helpers: tc's set, not XDP's.
out.push(prog('tc_helper_xdp_adjust_head_not_allowed_rej', 'tc', 'r2 = 4\ncall 44\nr0 = 0\nexit'))
out.push(prog('tc_helper_skb_load_bytes_ok', 'tc', 'r2 = 0\nr3 = r10\nr3 += -8\nr4 = 8\ncall 26\nr0 = 0\nexit'))
out.push(prog('tc_helper_get_socket_cookie_ok', 'tc', 'call 46\nr0 = 0\nexit'))
out.push(prog('tc_helper_redirect_ok', 'tc', 'r1 = 1\nr2 = 0\ncall 23\nexit'))
out.push(
  prog(
    'tc_helper_csum_diff_stack_ok',
    'tc',
    '*(u64 *)(r10 - 8) = 0\nr1 = r10\nr1 += -8\nr2 = 8\nr3 = 0\nr4 = 0\nr5 = 0\ncall 28\nr0 = 0\nexit',
  ),
)
out.push(
  prog(
    'tc_helper_skb_store_bytes_stack_ok',
    'tc',
    '*(u64 *)(r10 - 8) = 0\nr2 = 0\nr3 = r10\nr3 += -8\nr4 = 8\nr5 = 0\ncall 9\nr0 = 0\nexit',
  ),
)
out.push(
  prog(
    'tc_helper_skb_store_bytes_uninit_stack_ok',
    'tc',
    'r2 = 0\nr3 = r10\nr3 += -8\nr4 = 8\nr5 = 0\ncall 9\nr0 = 0\nexit',
  ),
)
// The socket: sk may be NULL until checked.
out.push(prog('tc_sk_read_unchecked_rej', 'tc', 'r1 = *(u64 *)(r1 + 168)\nr0 = *(u32 *)(r1 + 4)\nr0 = 0\nexit'))
out.push(
  prog(
    'tc_sk_read_family_checked_ok',
    'tc',
    'r1 = *(u64 *)(r1 + 168)\nif r1 == 0 goto +1\nr0 = *(u32 *)(r1 + 4)\nr0 = 0\nexit',
  ),
)
// A pointer into the context stored in the context (root may).
out.push(prog('tc_ctx_write_pointer_into_mark_ok', 'tc', 'r2 = r10\n*(u32 *)(r1 + 8) = r2\nr0 = 0\nexit'))
export default out
