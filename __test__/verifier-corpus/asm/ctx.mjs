// Context access per program type: every field of __sk_buff (socket_filter), xdp_md (xdp) and
// pt_regs (kprobe) read at its own size, read at other sizes, written, and read beyond the end;
// tracepoint and raw_tp contexts at the edges of what the kernel allows.
import { prog } from './_lib.mjs'

const out = []
const sfx = (ok) => (ok ? '_ok' : '_rej')

// struct __sk_buff (linux/bpf.h, 6.18): offset, name, size in bytes.
const SK_BUFF = [
  [0, 'len', 4],
  [4, 'pkt_type', 4],
  [8, 'mark', 4],
  [12, 'queue_mapping', 4],
  [16, 'protocol', 4],
  [20, 'vlan_present', 4],
  [24, 'vlan_tci', 4],
  [28, 'vlan_proto', 4],
  [32, 'priority', 4],
  [36, 'ingress_ifindex', 4],
  [40, 'ifindex', 4],
  [44, 'tc_index', 4],
  [48, 'cb0', 4],
  [52, 'cb1', 4],
  [56, 'cb2', 4],
  [60, 'cb3', 4],
  [64, 'cb4', 4],
  [68, 'hash', 4],
  [72, 'tc_classid', 4],
  [76, 'data', 4],
  [80, 'data_end', 4],
  [84, 'napi_id', 4],
  [88, 'family', 4],
  [92, 'remote_ip4', 4],
  [96, 'local_ip4', 4],
  [100, 'remote_ip6_0', 4],
  [116, 'local_ip6_0', 4],
  [132, 'remote_port', 4],
  [136, 'local_port', 4],
  [140, 'data_meta', 4],
  [144, 'flow_keys', 8],
  [152, 'tstamp', 8],
  [160, 'wire_len', 4],
  [164, 'gso_segs', 4],
  [168, 'sk', 8],
  [176, 'gso_size', 4],
  [180, 'tstamp_type', 1],
  [184, 'hwtstamp', 8],
]
const CAST = { 1: 'u8', 2: 'u16', 4: 'u32', 8: 'u64' }
const t = 'socket_filter'
// What a socket filter may not read: the packet pointers (no direct packet access), the socket
// fields of sk_skb/sk_msg, tc's classid, and the fields of newer program types. 8-byte reads: only
// of the 8-aligned cb words. Writes: only cb.
const SK_HIDDEN = new Set([
  'data',
  'data_end',
  'data_meta',
  'family',
  'remote_ip4',
  'local_ip4',
  'remote_ip6_0',
  'local_ip6_0',
  'remote_port',
  'local_port',
  'tc_classid',
  'wire_len',
  'flow_keys',
  'tstamp',
  'tstamp_type',
  'hwtstamp',
])
for (const [off, name, size] of SK_BUFF) {
  const read = (s) => `r0 = *(${CAST[s]} *)(r1 + ${off})\nr0 = 0\nexit`
  out.push(prog(`${t}_ctx_read_${name}${sfx(!SK_HIDDEN.has(name))}`, t, read(size)))
  if (size === 4) out.push(prog(`${t}_ctx_read_${name}_narrow_u8${sfx(!SK_HIDDEN.has(name))}`, t, read(1)))
  if (size === 4) out.push(prog(`${t}_ctx_read_${name}_as_u64${sfx(name === 'cb0' || name === 'cb2')}`, t, read(8)))
  out.push(
    prog(`${t}_ctx_write_${name}${sfx(name.startsWith('cb'))}`, t, `*(${CAST[size]} *)(r1 + ${off}) = 0\nr0 = 0\nexit`),
  )
  out.push(
    prog(
      `${t}_ctx_write_${name}_from_reg${sfx(name.startsWith('cb'))}`,
      t,
      `r2 = 1\n*(${CAST[size]} *)(r1 + ${off}) = r2\nr0 = 0\nexit`,
    ),
  )
}
// Writes into cb must be aligned to their size and stay inside one word (u64: the 8-aligned ones);
// found by scripts/verifier-fuzz.mjs.
for (const [name, cast, off, ok] of [
  ['u32_misaligned_off_58', 'u32', 58, false],
  ['u32_misaligned_off_51', 'u32', 51, false],
  ['u16_off_50', 'u16', 50, true],
  ['u16_misaligned_off_49', 'u16', 49, false],
  ['u8_off_49', 'u8', 49, true],
  ['u64_off_48', 'u64', 48, true],
  ['u64_off_56', 'u64', 56, true],
  ['u64_off_60_straddles_cb3_cb4', 'u64', 60, false],
  ['u64_misaligned_off_49', 'u64', 49, false],
  ['u64_off_64_past_cb4', 'u64', 64, false],
]) {
  out.push(prog(`${t}_ctx_write_cb_${name}${sfx(ok)}`, t, `*(${cast} *)(r1 + ${off}) = 0\nr0 = 0\nexit`))
  out.push(prog(`${t}_ctx_read_cb_${name}${sfx(ok)}`, t, `r0 = *(${cast} *)(r1 + ${off})\nr0 = 0\nexit`))
}
// __sk_buff.sk: a sock_common pointer or NULL; after the null check some struct bpf_sock fields
// may be read (not type .. priority, which only full sockets have), nothing written.
const SK = 'r2 = *(u64 *)(r1 + 168)\nif r2 == 0 goto +1\n'
for (const [name, access, ok] of [
  ['family', 'r0 = *(u32 *)(r2 + 4)', true],
  ['family_narrow_u8', 'r0 = *(u8 *)(r2 + 4)', true],
  ['dst_port_u16', 'r0 = *(u16 *)(r2 + 48)', true],
  ['dst_port_padding', 'r0 = *(u16 *)(r2 + 50)', false],
  ['type', 'r0 = *(u32 *)(r2 + 8)', false],
  ['past_end_off_80', 'r0 = *(u32 *)(r2 + 80)', false],
  ['write_mark', '*(u32 *)(r2 + 16) = 0', false],
]) {
  out.push(prog(`${t}_ctx_sk_${name}${sfx(ok)}`, t, `${SK}${access}\nr0 = 0\nexit`))
}
out.push(
  prog(`${t}_ctx_sk_read_without_null_check_rej`, t, `r2 = *(u64 *)(r1 + 168)\nr0 = *(u32 *)(r2 + 4)\nr0 = 0\nexit`),
)
out.push(prog(`${t}_ctx_sk_arithmetic_rej`, t, `${SK}r2 += 4\nr0 = 0\nexit`))
out.push(prog(`${t}_ctx_read_sk_as_u32_rej`, t, `r0 = *(u32 *)(r1 + 168)\nr0 = 0\nexit`))
out.push(prog(`${t}_ctx_read_past_end_off_192_rej`, t, `r0 = *(u32 *)(r1 + 192)\nexit`))
out.push(prog(`${t}_ctx_read_misaligned_off_2_u32_rej`, t, `r0 = *(u32 *)(r1 + 2)\nexit`))
out.push(prog(`${t}_ctx_read_negative_off_rej`, t, `r0 = *(u32 *)(r1 - 4)\nexit`))
out.push(prog(`${t}_ctx_read_len_high_half_u16_ok`, t, `r0 = *(u16 *)(r1 + 2)\nexit`))
out.push(prog(`${t}_ctx_read_len_byte_3_ok`, t, `r0 = *(u8 *)(r1 + 3)\nexit`))

// struct xdp_md
const XDP_MD = [
  [0, 'data'],
  [4, 'data_end'],
  [8, 'data_meta'],
  [12, 'ingress_ifindex'],
  [16, 'rx_queue_index'],
  [20, 'egress_ifindex'],
]
for (const [off, name] of XDP_MD) {
  out.push(
    prog(`xdp_ctx_read_${name}${sfx(name !== 'egress_ifindex')}`, 'xdp', `r0 = *(u32 *)(r1 + ${off})\nr0 = 2\nexit`),
  )
  out.push(prog(`xdp_ctx_read_${name}_as_u64_rej`, 'xdp', `r0 = *(u64 *)(r1 + ${off})\nr0 = 2\nexit`))
  out.push(prog(`xdp_ctx_read_${name}_narrow_u16_rej`, 'xdp', `r0 = *(u16 *)(r1 + ${off})\nr0 = 2\nexit`))
  out.push(prog(`xdp_ctx_write_${name}_rej`, 'xdp', `*(u32 *)(r1 + ${off}) = 0\nr0 = 2\nexit`))
}
out.push(prog('xdp_ctx_read_past_end_off_24_rej', 'xdp', `r0 = *(u32 *)(r1 + 24)\nr0 = 2\nexit`))
out.push(prog('xdp_ctx_read_misaligned_off_1_rej', 'xdp', `r0 = *(u32 *)(r1 + 1)\nr0 = 2\nexit`))

// struct pt_regs (x86-64)
const PT_REGS = [
  'r15',
  'r14',
  'r13',
  'r12',
  'bp',
  'bx',
  'r11',
  'r10',
  'r9',
  'r8',
  'ax',
  'cx',
  'dx',
  'si',
  'di',
  'orig_ax',
  'ip',
  'cs',
  'flags',
  'sp',
  'ss',
]
PT_REGS.forEach((name, i) => {
  const off = i * 8
  out.push(prog(`kprobe_ctx_read_${name}_ok`, 'kprobe', `r0 = *(u64 *)(r1 + ${off})\nexit`))
  out.push(prog(`kprobe_ctx_read_${name}_low_u32_ok`, 'kprobe', `r0 = *(u32 *)(r1 + ${off})\nexit`))
  out.push(prog(`kprobe_ctx_write_${name}_rej`, 'kprobe', `*(u64 *)(r1 + ${off}) = 0\nr0 = 0\nexit`))
})
out.push(prog('kprobe_ctx_read_past_end_off_168_rej', 'kprobe', `r0 = *(u64 *)(r1 + 168)\nexit`))
out.push(prog('kprobe_ctx_read_last_u32_off_164_ok', 'kprobe', `r0 = *(u32 *)(r1 + 164)\nexit`))
out.push(prog('kprobe_ctx_read_misaligned_off_4_u64_rej', 'kprobe', `r0 = *(u64 *)(r1 + 4)\nexit`))
out.push(prog('kprobe_ctx_read_u8_off_9_ok', 'kprobe', `r0 = *(u8 *)(r1 + 9)\nexit`))
out.push(prog('kprobe_ctx_read_negative_off_rej', 'kprobe', `r0 = *(u64 *)(r1 - 8)\nexit`))

// Tracepoint: a raw record; raw_tp: the u64 arguments.
// The first 8 bytes are the common trace_entry header, which the kernel keeps from programs.
for (const [off, cast, ok] of [
  [0, 'u64', 0],
  [8, 'u32', 1],
  [2040, 'u64', 1],
  [2048, 'u64', 1],
  [3, 'u8', 0],
  [4, 'u64', 0],
  // PERF_MAX_TRACE_SIZE (8192 in 6.18) bounds where a read may start.
  [8184, 'u64', 1],
  [8192, 'u64', 0],
  [8191, 'u8', 1],
]) {
  out.push(
    prog(
      `tracepoint_ctx_read_${cast}_off_${off}${sfx(ok)}`,
      'tracepoint',
      `r0 = *(${cast} *)(r1 + ${off})\nr0 = 0\nexit`,
    ),
  )
}
out.push(prog('tracepoint_ctx_write_u64_off_0_rej', 'tracepoint', `*(u64 *)(r1 + 0) = 0\nr0 = 0\nexit`))
// Twelve u64 arguments at most (96 bytes).
for (const [off, cast, ok] of [
  [0, 'u64', 1],
  [88, 'u64', 1],
  [96, 'u64', 0],
  [0, 'u32', 1],
  [4, 'u64', 0],
  [92, 'u32', 1],
]) {
  out.push(
    prog(`raw_tp_ctx_read_${cast}_off_${off}${sfx(ok)}`, 'raw_tp', `r0 = *(${cast} *)(r1 + ${off})\nr0 = 0\nexit`),
  )
}
out.push(prog('raw_tp_ctx_write_u64_off_0_rej', 'raw_tp', `*(u64 *)(r1 + 0) = 0\nr0 = 0\nexit`))
// Modified context pointers: the kernel wants the constant in the load, not in the register.
for (const tt of ['socket_filter', 'xdp', 'kprobe']) {
  out.push(prog(`${tt}_ctx_ptr_plus_4_then_load_rej`, tt, `r1 += 4\nr0 = *(u32 *)(r1 + 0)\nr0 = 0\nexit`))
  out.push(
    prog(
      `${tt}_ctx_ptr_plus_var_then_load_rej`,
      tt,
      `r6 = r1\ncall 7\nr0 &= 4\nr6 += r0\nr0 = *(u32 *)(r6 + 0)\nr0 = 0\nexit`,
    ),
  )
  out.push(
    prog(`${tt}_ctx_ptr_plus_4_minus_4_then_load_ok`, tt, `r1 += 4\nr1 += -4\nr0 = *(u32 *)(r1 + 0)\nr0 = 0\nexit`),
  )
}
export default out
