// cgroup_skb (BPF_PROG_TYPE_CGROUP_SKB): __sk_buff with cg_skb_is_valid_access's rules as root:
// the fields it reads (the socket addresses too, not tc_classid, data_meta, wire_len,
// tstamp_type) and writes (mark, priority, tstamp, cb[]); direct packet read, never write;
// LD_ABS refused; its helpers (cg_skb_func_proto); r0 in [0, 1], on egress [0, 3].
import { ARRAY_4_8, LOOKUP0, prog } from './_lib.mjs'

const out = []
const sfx = (ok) => (ok ? '_ok' : '_rej')
const W = { 1: 'u8', 2: 'u16', 4: 'u32', 8: 'u64' }

// [name, offset, size (1, 2, 4, 8), readable]
const READS = [
  ['len', 0, 4, true],
  ['pkt_type_u8', 4, 1, true],
  ['mark', 8, 4, true],
  ['mark_u16_2', 10, 2, true],
  ['mark_u64', 8, 8, false],
  ['queue_mapping', 12, 4, true],
  ['protocol', 16, 4, true],
  ['priority', 32, 4, true],
  ['ifindex', 40, 4, true],
  ['tc_index', 44, 4, true],
  ['cb0_u64', 48, 8, true],
  ['cb4_u32', 64, 4, true],
  ['cb4_u64', 64, 8, false],
  ['hash', 68, 4, true],
  ['tc_classid', 72, 4, false],
  ['tc_classid_u16', 74, 2, false],
  ['data', 76, 4, true],
  ['data_u16', 76, 2, false],
  ['data_end', 80, 4, true],
  ['data_end_u64', 80, 8, false],
  ['napi_id', 84, 4, true],
  ['family', 88, 4, true],
  ['family_u8', 88, 1, true],
  ['remote_ip4', 92, 4, true],
  ['remote_ip4_u16_2', 94, 2, false],
  ['remote_ip4_u8', 92, 1, false],
  ['local_ip4_u16', 96, 2, false],
  ['family_u16_2', 90, 2, true],
  ['local_ip4', 96, 4, true],
  ['remote_ip6_3', 112, 4, true],
  ['local_ip6_0_u8', 116, 1, false],
  ['local_ip6_u64', 120, 8, false],
  ['remote_port', 132, 4, true],
  ['remote_port_u16', 132, 2, true],
  ['remote_port_u8_1', 133, 1, true],
  ['local_port_u16_2', 138, 2, true],
  ['local_port', 136, 4, true],
  ['data_meta', 140, 4, false],
  ['flow_keys', 144, 8, false],
  ['tstamp', 152, 8, true],
  ['tstamp_u32', 152, 4, false],
  ['wire_len', 160, 4, false],
  ['gso_segs', 164, 4, true],
  ['sk', 168, 8, true],
  ['sk_u32', 168, 4, false],
  ['sk_u32_172', 172, 4, false],
  ['gso_size', 176, 4, true],
  ['tstamp_type_u8', 180, 1, false],
  ['padding_181', 181, 1, false],
  ['hwtstamp', 184, 8, true],
  ['hwtstamp_u32', 184, 4, false],
  ['past_end_192', 192, 4, false],
  ['misaligned_mark_u32_9', 9, 4, false],
]
for (const [name, off, size, ok] of READS) {
  out.push(prog(`cgskb_ctx_read_${name}${sfx(ok)}`, 'cgroup_skb', `r0 = *(${W[size]} *)(r1 + ${off})\nr0 = 1\nexit`))
}
// Sign-extending loads of a number field and of a packet pointer.
out.push(prog('cgskb_ctx_read_sx_mark_ok', 'cgroup_skb', 'r0 = *(s32 *)(r1 + 8)\nr0 = 1\nexit'))
out.push(prog('cgskb_ctx_read_sx_data_rej', 'cgroup_skb', 'r0 = *(s32 *)(r1 + 76)\nr0 = 1\nexit'))

// [name, offset, size, writable]
const WRITES = [
  ['mark', 8, 4, true],
  ['mark_u8', 8, 1, false],
  ['mark_u64', 8, 8, false],
  ['priority', 32, 4, true],
  ['priority_u16', 32, 2, false],
  ['tc_index', 44, 4, false],
  ['queue_mapping', 12, 4, false],
  ['tc_classid', 72, 4, false],
  ['cb0_u8', 48, 1, true],
  ['cb3_u32', 60, 4, true],
  ['cb2_u64', 56, 8, true],
  ['cb4_u64', 64, 8, false],
  ['tstamp', 152, 8, true],
  ['tstamp_u32', 152, 4, false],
  ['len', 0, 4, false],
  ['hash', 68, 4, false],
  ['protocol', 16, 4, false],
  ['data', 76, 4, false],
  ['family', 88, 4, false],
  ['remote_port', 132, 4, false],
  ['hwtstamp', 184, 8, false],
  ['napi_id', 84, 4, false],
  ['sk', 168, 8, false],
]
for (const [name, off, size, ok] of WRITES) {
  out.push(
    prog(`cgskb_ctx_write_${name}${sfx(ok)}`, 'cgroup_skb', `r2 = 1\n*(${W[size]} *)(r1 + ${off}) = r2\nr0 = 1\nexit`),
  )
  out.push(
    prog(`cgskb_ctx_store_imm_${name}${sfx(ok)}`, 'cgroup_skb', `*(${W[size]} *)(r1 + ${off}) = 1\nr0 = 1\nexit`),
  )
}
// A moved context pointer.
out.push(prog('cgskb_ctx_moved_read_rej', 'cgroup_skb', 'r1 += 8\nr0 = *(u32 *)(r1 + 0)\nr0 = 1\nexit'))

// The packet: read after a check against data_end; never written.
const PKT = 'r2 = *(u32 *)(r1 + 76)\nr3 = *(u32 *)(r1 + 80)\nr4 = r2\nr4 += 20\nif r4 > r3 goto out'
for (const [name, access, ok] of [
  ['read_u8_19', 'r0 = *(u8 *)(r2 + 19)', true],
  ['read_u32_16', 'r0 = *(u32 *)(r2 + 16)', true],
  ['read_u64_12', 'r0 = *(u64 *)(r2 + 12)', true],
  ['read_u8_20', 'r0 = *(u8 *)(r2 + 20)', false],
  ['read_u32_17', 'r0 = *(u32 *)(r2 + 17)', false],
  ['write_u8_0', '*(u8 *)(r2 + 0) = 1', false],
  ['write_reg_u32_4', 'r5 = 7\n*(u32 *)(r2 + 4) = r5', false],
  ['atomic_add_0', 'r5 = 1\nlock *(u32 *)(r2 + 0) += r5', false],
]) {
  out.push(prog(`cgskb_pkt_${name}${sfx(ok)}`, 'cgroup_skb', `${PKT}\n${access}\nr0 = 1\nexit\nout:\nr0 = 1\nexit`))
}
out.push(
  prog('cgskb_pkt_unchecked_read_rej', 'cgroup_skb', 'r2 = *(u32 *)(r1 + 76)\nr0 = *(u8 *)(r2 + 0)\nr0 = 1\nexit'),
)
out.push(
  prog('cgskb_pkt_data_end_deref_rej', 'cgroup_skb', 'r2 = *(u32 *)(r1 + 80)\nr0 = *(u8 *)(r2 + 0)\nr0 = 1\nexit'),
)
// Packet memory as a helper's key (map_lookup_elem has pkt_access) and as skb_load_bytes's
// destination (no pkt_access).
out.push(
  prog('cgskb_pkt_as_map_key_ok', 'cgroup_skb', `${PKT}\nr1 = map[0] ll\ncall 1\nr0 = 1\nexit\nout:\nr0 = 1\nexit`, [
    ARRAY_4_8,
  ]),
)
out.push(
  prog(
    'cgskb_pkt_as_load_bytes_dst_rej',
    'cgroup_skb',
    'r2 = *(u32 *)(r1 + 76)\nr3 = *(u32 *)(r1 + 80)\nr4 = r2\nr4 += 20\nif r4 > r3 goto out\nr3 = r2\nr2 = 0\nr4 = 4\ncall 26\nout:\nr0 = 1\nexit',
  ),
)
// LD_ABS and LD_IND: not for cgroup_skb (may_access_skb).
out.push(prog('cgskb_ld_abs_h_rej', 'cgroup_skb', 'r6 = r1\nr0 = *(u16 *)skb[12]\nr0 = 1\nexit'))
out.push(prog('cgskb_ld_ind_b_rej', 'cgroup_skb', 'r6 = r1\nr7 = 2\nr0 = *(u8 *)skb[r7 + 12]\nr0 = 1\nexit'))

// Return values: ingress 0 or 1; egress (expected attach type BPF_CGROUP_INET_EGRESS) 0 to 3.
const RET = [
  ['0', 'r0 = 0', true, true],
  ['1', 'r0 = 1', true, true],
  ['2', 'r0 = 2', false, true],
  ['3', 'r0 = 3', false, true],
  ['4', 'r0 = 4', false, false],
  ['minus_1', 'r0 = -1', false, false],
  ['w0_minus_1', 'w0 = -1', false, false],
  ['uninit', '', false, false],
  ['ctx', 'r0 = r1', false, false],
  ['unknown', 'r0 = *(u32 *)(r1 + 8)', false, false],
  ['and_1', 'r0 = *(u32 *)(r1 + 8)\nr0 &= 1', true, true],
  ['and_3', 'r0 = *(u32 *)(r1 + 8)\nr0 &= 3', false, true],
  ['and_7', 'r0 = *(u32 *)(r1 + 8)\nr0 &= 7', false, false],
  ['bounded_by_branch', 'r0 = *(u32 *)(r1 + 8)\nif r0 > 1 goto +1\nexit\nr0 = 0', true, true],
  ['loose_branch', 'r0 = *(u32 *)(r1 + 8)\nif r0 > 2 goto +1\nexit\nr0 = 0', false, true],
]
for (const [name, r0, ingress, egress] of RET) {
  out.push(prog(`cgskb_return_${name}${sfx(ingress)}`, 'cgroup_skb', `${r0}\nexit`))
  out.push(prog(`cgskb_egress_return_${name}${sfx(egress)}`, 'cgroup_skb_egress', `${r0}\nexit`))
}
// Pruning must not hide an out-of-range r0: two paths reach one exit with different constants.
out.push(
  prog(
    'cgskb_return_two_paths_one_bad_rej',
    'cgroup_skb',
    'r2 = *(u32 *)(r1 + 8)\nr0 = 1\nif r2 == 0 goto +1\nr0 = 5\nr3 = 0\nexit',
  ),
)
out.push(
  prog(
    'cgskb_return_two_paths_ok',
    'cgroup_skb',
    'r2 = *(u32 *)(r1 + 8)\nr0 = 1\nif r2 == 0 goto +1\nr0 = 0\nr3 = 0\nexit',
  ),
)
// A subprogram's return is not checked against the range; the main program's is.
out.push(prog('cgskb_subprog_returns_7_ok', 'cgroup_skb', 'call f\nr0 = 1\nexit\nf:\nr0 = 7\nexit'))
out.push(prog('cgskb_subprog_result_returned_rej', 'cgroup_skb', 'call f\nexit\nf:\nr0 = 7\nexit'))

// Helpers: cg_skb_func_proto (a socket filter's and more), not tc's or XDP's.
for (const [name, text, ok, maps] of [
  ['skb_load_bytes', 'r2 = 0\nr3 = r10\nr3 += -8\nr4 = 8\ncall 26', true],
  ['get_socket_cookie', 'call 46', true],
  ['get_socket_uid', 'call 47', true],
  ['ktime_get_coarse_ns', 'call 160', true],
  ['skb_ecn_set_ce', 'call 97', true],
  ['skb_store_bytes', '*(u64 *)(r10 - 8) = 0\nr2 = 0\nr3 = r10\nr3 += -8\nr4 = 8\nr5 = 0\ncall 9', false],
  ['redirect', 'r1 = 1\nr2 = 0\ncall 23', false],
  ['csum_diff', '*(u64 *)(r10 - 8) = 0\nr1 = r10\nr1 += -8\nr2 = 8\nr3 = 0\nr4 = 0\nr5 = 0\ncall 28', false],
  ['xdp_adjust_head', 'r2 = 4\ncall 44', false],
  ['probe_read', 'r1 = r10\nr1 += -8\nr2 = 8\nr3 = 0\ncall 4', false],
  ['get_stackid', 'r2 = 0\nr3 = 0\ncall 27', false],
  ['skb_change_tail', 'r2 = 64\nr3 = 0\ncall 38', false],
  ['map_lookup', `${LOOKUP0}`, true, [ARRAY_4_8]],
]) {
  out.push(prog(`cgskb_helper_${name}${sfx(ok)}`, 'cgroup_skb', `${text}\nr0 = 1\nexit`, maps ?? []))
}
// The socket: sk may be NULL until checked; then sock_common's fields.
out.push(
  prog('cgskb_sk_read_unchecked_rej', 'cgroup_skb', 'r1 = *(u64 *)(r1 + 168)\nr0 = *(u32 *)(r1 + 4)\nr0 = 1\nexit'),
)
out.push(
  prog(
    'cgskb_sk_read_family_checked_ok',
    'cgroup_skb',
    'r1 = *(u64 *)(r1 + 168)\nif r1 == 0 goto +1\nr0 = *(u32 *)(r1 + 4)\nr0 = 1\nexit',
  ),
)
out.push(
  prog(
    'cgskb_sk_read_type_checked_rej',
    'cgroup_skb',
    'r1 = *(u64 *)(r1 + 168)\nif r1 == 0 goto +1\nr0 = *(u32 *)(r1 + 8)\nr0 = 1\nexit',
  ),
)
// A pointer stored into mark (root may), into the packet (never: read only).
out.push(prog('cgskb_ctx_write_pointer_into_mark_ok', 'cgroup_skb', 'r2 = r10\n*(u32 *)(r1 + 8) = r2\nr0 = 1\nexit'))
export default out
