// Packet pointers and helpers (xdp and tc): helpers that change the packet leave no packet
// pointer usable (registers, spilled copies, callers' frames), the data_meta range learned from
// comparing meta + N with data, and packet pointers as helper memory (only helpers with
// `pkt_access`; never data_end).
import { prog } from './_lib.mjs'

const out = []
const sfx = (ok) => (ok ? '_ok' : '_rej')
const PROG_ARRAY = { type: 3, keySize: 4, valueSize: 4, maxEntries: 1 }
const HASH_4_8 = { type: 1, keySize: 4, valueSize: 8, maxEntries: 4 }
const RINGBUF = { type: 27, keySize: 0, valueSize: 0, maxEntries: 4096 }
const QUEUE_8 = { type: 22, keySize: 0, valueSize: 8, maxEntries: 4 }

// The context offsets of data, data_end, data_meta: xdp_md and __sk_buff.
const CTX = {
  xdp: { data: 0, end: 4, meta: 8 },
  tc: { data: 76, end: 80, meta: 140 },
}
const ret = { xdp: 2, tc: 0 }
// r6 = ctx, r2 = data, r3 = data_end, and data + 14 checked (falls through in range).
const checked = (t) =>
  `r6 = r1\nr2 = *(u32 *)(r1 + ${CTX[t].data})\nr3 = *(u32 *)(r1 + ${CTX[t].end})\nr4 = r2\nr4 += 14\nif r4 > r3 goto out`
const tail = (t) => `r0 = ${ret[t]}\nexit\nout:\nr0 = ${ret[t]}\nexit`

// [type, helper name, call with r1 = ctx (args after), changes the packet]
const CHANGERS = [
  ['xdp', 'adjust_head', 'r2 = 4\ncall 44', true],
  ['xdp', 'adjust_head_0', 'r2 = 0\ncall 44', true],
  ['xdp', 'adjust_meta', 'r2 = -4\ncall 54', true],
  ['xdp', 'adjust_tail', 'r2 = -4\ncall 65', true],
  ['xdp', 'get_buff_len', 'call 188', false],
  ['xdp', 'load_bytes', 'r2 = 0\nr3 = r10\nr3 += -8\nr4 = 8\ncall 189', false],
  ['tc', 'skb_store_bytes', '*(u64 *)(r10 - 8) = 0\nr2 = 0\nr3 = r10\nr3 += -8\nr4 = 2\nr5 = 0\ncall 9', true],
  ['tc', 'l3_csum_replace', 'r2 = 24\nr3 = 0\nr4 = 0\nr5 = 2\ncall 10', true],
  ['tc', 'l4_csum_replace', 'r2 = 50\nr3 = 0\nr4 = 0\nr5 = 2\ncall 11', true],
  ['tc', 'skb_vlan_push', 'r2 = 0x81\nr3 = 1\ncall 18', true],
  ['tc', 'skb_vlan_pop', 'call 19', true],
  ['tc', 'skb_change_proto', 'r2 = 0xdd86\nr3 = 0\ncall 31', true],
  ['tc', 'skb_change_tail', 'r2 = 100\nr3 = 0\ncall 38', true],
  ['tc', 'skb_pull_data', 'r2 = 14\ncall 39', true],
  ['tc', 'skb_change_head', 'r2 = 4\nr3 = 0\ncall 43', true],
  ['tc', 'skb_adjust_room', 'r2 = 4\nr3 = 0\nr4 = 0\ncall 50', true],
  ['tc', 'skb_change_type', 'r2 = 0\ncall 32', false],
  ['tc', 'set_hash', 'r2 = 1\ncall 48', false],
  ['tc', 'get_hash_recalc', 'call 34', false],
  ['tc', 'csum_update', 'r2 = 0\ncall 40', false],
  ['tc', 'redirect', 'r1 = 1\nr2 = 0\ncall 23', false],
]
for (const [t, name, call, changes] of CHANGERS) {
  // A copy of data (r7) checked before the call, read after it.
  out.push(
    prog(
      `${t}_pkt_inval_${name}_old_ptr${sfx(!changes)}`,
      t,
      `${checked(t)}\nr7 = r2\nr1 = r6\n${call}\nr0 = *(u8 *)(r7 + 0)\n${tail(t)}`,
    ),
  )
}
for (const t of ['xdp', 'tc']) {
  const change = t === 'xdp' ? 'r2 = 4\ncall 44' : 'r2 = 14\ncall 39'
  // data reloaded after the call and checked again: fine.
  out.push(
    prog(
      `${t}_pkt_inval_reload_and_check_ok`,
      t,
      `r6 = r1\n${change}\nr2 = *(u32 *)(r6 + ${CTX[t].data})\nr3 = *(u32 *)(r6 + ${CTX[t].end})\nr4 = r2\nr4 += 14\nif r4 > r3 goto out\nr0 = *(u8 *)(r2 + 13)\n${tail(t)}`,
    ),
  )
  // A spilled copy is invalidated too.
  out.push(
    prog(
      `${t}_pkt_inval_spilled_copy_rej`,
      t,
      `${checked(t)}\n*(u64 *)(r10 - 16) = r2\nr1 = r6\n${change}\nr7 = *(u64 *)(r10 - 16)\nr0 = *(u8 *)(r7 + 0)\n${tail(t)}`,
    ),
  )
  // The old pointer is now a number: returning it (or doing arithmetic on it) is fine.
  out.push(
    prog(
      `${t}_pkt_inval_old_ptr_as_number_ok`,
      t,
      `${checked(t)}\nr7 = r2\nr1 = r6\n${change}\nr0 = r7\nr0 &= 1\nexit\nout:\nr0 = ${ret[t]}\nexit`,
    ),
  )
  // data reloaded, but compared with the old data_end (now a number): no range.
  out.push(
    prog(
      `${t}_pkt_inval_old_data_end_rej`,
      t,
      `${checked(t)}\nr8 = r3\nr1 = r6\n${change}\nr2 = *(u32 *)(r6 + ${CTX[t].data})\nr4 = r2\nr4 += 14\nif r4 > r8 goto out\nr0 = *(u8 *)(r2 + 0)\n${tail(t)}`,
    ),
  )
  // data_end kept in a register is a number after the call: comparing a fresh pointer with
  // it teaches nothing, but reading through the fresh data after a fresh check is fine.
  out.push(
    prog(
      `${t}_pkt_inval_old_end_deref_rej`,
      t,
      `${checked(t)}\nr8 = r3\nr1 = r6\n${change}\nr0 = *(u8 *)(r8 + 0)\n${tail(t)}`,
    ),
  )
  // A static function that changes the packet: the caller's pointers are invalid after it.
  out.push(
    prog(
      `${t}_pkt_inval_in_static_callee_rej`,
      t,
      `${checked(t)}\nr7 = r2\nr1 = r6\ncall change\nr0 = *(u8 *)(r7 + 0)\n${tail(t)}\nchange:\n${change}\nr0 = 0\nexit`,
    ),
  )
  out.push(
    prog(
      `${t}_pkt_inval_static_callee_no_change_ok`,
      t,
      `${checked(t)}\nr7 = r2\nr1 = r6\ncall nochange\nr0 = *(u8 *)(r7 + 0)\n${tail(t)}\nnochange:\ncall 5\nr0 = 0\nexit`,
    ),
  )
  // The callee's pointer into the caller's packet, passed in r2, after the callee changes it.
  out.push(
    prog(
      `${t}_pkt_inval_callee_own_copy_rej`,
      t,
      `${checked(t)}\nr1 = r6\ncall f\n${tail(t)}\nf:\nr7 = r2\n${change.replace('r2 = ', 'r2 = ')}\nr0 = *(u8 *)(r7 + 0)\nr0 = 0\nexit`,
    ),
  )
  // A failed tail call returns to the caller: Linux 6.18.44 keeps the packet pointers.
  out.push(
    prog(
      `${t}_pkt_inval_tail_call_keeps_range_ok`,
      t,
      `${checked(t)}\nr7 = r2\nr1 = r6\nr2 = map[0] ll\nr3 = 0\ncall 12\nr0 = *(u8 *)(r7 + 0)\n${tail(t)}`,
      [PROG_ARRAY],
    ),
  )
  // data_meta: meta + N compared with data (as loaded).
  const M = CTX[t]
  const meta = (cmp, access) =>
    `r2 = *(u32 *)(r1 + ${M.meta})\nr3 = *(u32 *)(r1 + ${M.data})\nr4 = r2\nr4 += 8\n${cmp}\n${access}\n${tail(t)}`
  for (const [name, cmp, access, ok] of [
    ['gt_8_read_u64', 'if r4 > r3 goto out', 'r0 = *(u64 *)(r2 + 0)', true],
    ['gt_8_read_u32_4', 'if r4 > r3 goto out', 'r0 = *(u32 *)(r2 + 4)', true],
    ['gt_8_read_u8_8', 'if r4 > r3 goto out', 'r0 = *(u8 *)(r2 + 8)', false],
    ['ge_8_read_u8_8', 'if r4 >= r3 goto out', 'r0 = *(u8 *)(r2 + 8)', true],
    ['lt_reversed_read_u8_7', 'if r3 < r4 goto out', 'r0 = *(u8 *)(r2 + 7)', true],
    ['le_jump_side_read', 'if r4 <= r3 goto +1\ngoto out', 'r0 = *(u8 *)(r2 + 7)', true],
    ['gt_8_write_u32', 'if r4 > r3 goto out', '*(u32 *)(r2 + 0) = 1', true],
    ['gt_8_read_minus_1', 'if r4 > r3 goto out', 'r0 = *(u8 *)(r2 - 1)', false],
    ['wrong_side_read', 'if r4 <= r3 goto out', 'r0 = *(u8 *)(r2 + 0)', false],
    ['against_moved_data', 'r3 += 1\nif r4 > r3 goto out', 'r0 = *(u8 *)(r2 + 0)', false],
    ['against_data_end', `r3 = *(u32 *)(r1 + ${M.end})\nif r4 > r3 goto out`, 'r0 = *(u8 *)(r2 + 0)', false],
    ['copy_gets_range', 'r5 = r2\nif r4 > r3 goto out', 'r0 = *(u8 *)(r5 + 7)', true],
    ['unchecked_read', '', 'r0 = *(u8 *)(r2 + 0)', false],
  ]) {
    out.push(prog(`${t}_meta_${name}${sfx(ok)}`, t, meta(cmp, access)))
  }
  // data compared with meta (the other way round) learns nothing about data.
  out.push(
    prog(
      `${t}_meta_data_vs_meta_no_range_rej`,
      t,
      `r2 = *(u32 *)(r1 + ${M.meta})\nr3 = *(u32 *)(r1 + ${M.data})\nr4 = r3\nr4 += 8\nif r4 > r2 goto out\nr0 = *(u8 *)(r3 + 0)\n${tail(t)}`,
    ),
  )
  // Packet pointers as helper memory.
  const pkt = (body) => `${checked(t)}\n${body}\n${tail(t)}`
  for (const [name, text, maps, ok] of [
    ['lookup_key_from_pkt', pkt('r2 += 4\nr1 = map[0] ll\ncall 1'), [HASH_4_8], true],
    ['lookup_key_past_range', pkt('r2 += 12\nr1 = map[0] ll\ncall 1'), [HASH_4_8], false],
    ['update_key_and_value_from_pkt', pkt('r3 = r2\nr3 += 4\nr1 = map[0] ll\nr4 = 0\ncall 2'), [HASH_4_8], true],
    ['delete_key_from_pkt', pkt('r1 = map[0] ll\ncall 3'), [HASH_4_8], true],
    ['lookup_key_is_data_end', pkt('r2 = r3\nr1 = map[0] ll\ncall 1'), [HASH_4_8], false],
    ['push_value_from_pkt', pkt('r1 = map[0] ll\nr3 = 0\ncall 87'), [QUEUE_8], true],
    ['pop_value_into_pkt', pkt('r1 = map[0] ll\ncall 88'), [QUEUE_8], false],
    ['ringbuf_output_from_pkt', pkt('r1 = map[0] ll\nr3 = 8\nr4 = 0\ncall 130'), [RINGBUF], false],
    ['csum_diff_data_end_size_0', pkt('r1 = r2\nr2 = 8\nr4 = 0\nr5 = 0\ncall 28'), [], false],
    ['csum_diff_ctx_as_mem', pkt('r1 = r6\nr2 = 4\nr3 = 0\nr4 = 0\nr5 = 0\ncall 28'), [], false],
    ['csum_diff_data_end_as_from', pkt('r1 = r3\nr2 = 0\nr3 = 0\nr4 = 0\nr5 = 0\ncall 28'), [], false],
    ['csum_diff_from_pkt_to_pkt', pkt('r1 = r2\nr3 = r2\nr2 = 4\nr4 = 8\nr5 = 0\ncall 28'), [], true],
    ['pkt_as_ctx_arg_of_pkt_helper', pkt('r1 = r2\nr2 = map[0] ll\nr3 = 0\ncall 12'), [PROG_ARRAY], false],
  ]) {
    out.push(prog(`${t}_pkt_helper_${name}${sfx(ok)}`, t, text, maps))
  }
}
// Helpers without pkt_access: packet memory refused.
out.push(
  prog(
    'xdp_pkt_helper_xdp_store_bytes_from_pkt_rej',
    'xdp',
    `${checked('xdp')}\nr1 = r6\nr3 = r2\nr2 = 0\nr4 = 4\ncall 190\n${tail('xdp')}`,
  ),
)
out.push(
  prog(
    'xdp_pkt_helper_xdp_load_bytes_into_pkt_rej',
    'xdp',
    `${checked('xdp')}\nr1 = r6\nr3 = r2\nr2 = 0\nr4 = 4\ncall 189\n${tail('xdp')}`,
  ),
)
out.push(
  prog(
    'tc_pkt_helper_skb_store_bytes_from_pkt_rej',
    'tc',
    `${checked('tc')}\nr1 = r6\nr3 = r2\nr2 = 0\nr4 = 4\nr5 = 0\ncall 9\n${tail('tc')}`,
  ),
)
out.push(
  prog(
    'tc_pkt_helper_skb_load_bytes_into_pkt_rej',
    'tc',
    `${checked('tc')}\nr1 = r6\nr3 = r2\nr2 = 0\nr4 = 4\ncall 26\n${tail('tc')}`,
  ),
)
export default out
