// Instructions with verifier rules of their own: atomics (on which memory, what r0 and the source
// become), LD_ABS/LD_IND (which program types, r6 = ctx, clobbered registers), the cpu v4 additions
// (sdiv/smod, movsx, ldsx, bswap, gotol, 32-bit jumps) and division by zero.
import { ARRAY_4_8, LOOKUP0, prog, TYPES } from './_lib.mjs'

const out = []
const sfx = (ok) => (ok ? '_ok' : '_rej')
const INIT = '*(u64 *)(r10 - 8) = 0\nr1 = 1'
const ATOMICS = [
  ['stack_add', `${INIT}\nlock *(u64 *)(r10 - 8) += r1`, true],
  ['stack_add32', `${INIT}\nlock *(u32 *)(r10 - 8) += w1`, true],
  ['stack_or', `${INIT}\nlock *(u64 *)(r10 - 8) |= r1`, true],
  ['stack_fetch_add_result_scalar', `${INIT}\nr1 = atomic_fetch_add((u64 *)(r10 - 8), r1)\nr0 = r1\nexit`, true],
  ['stack_xchg', `${INIT}\nr1 = xchg_64(r10 - 8, r1)`, true],
  ['stack_cmpxchg', `${INIT}\nr0 = 0\nr0 = cmpxchg_64(r10 - 8, r0, r1)`, true],
  ['stack_cmpxchg_r0_uninit', `${INIT}\nr0 = cmpxchg_64(r10 - 8, r0, r1)`, false],
  ['stack_add_uninit_slot_privileged', 'r1 = 1\nlock *(u64 *)(r10 - 16) += r1', true],
  ['stack_add_misaligned', `${INIT}\nlock *(u64 *)(r10 - 4) += r1`, false],
  ['stack_add_u8_size_invalid', null, false],
  ['stack_xchg_pointer_into_slot_privileged', `${INIT}\nr1 = r10\nr1 = xchg_64(r10 - 8, r1)`, true],
  [
    'stack_spilled_pointer_atomic_add_privileged',
    'r2 = r10\n*(u64 *)(r10 - 8) = r2\nr1 = 1\nlock *(u64 *)(r10 - 8) += r1',
    true,
  ],
  ['ctx_add', 'r2 = 1\nlock *(u64 *)(r1 + 0) += r2', false],
  ['map_value_add', `${LOOKUP0}\nif r0 == 0 goto +2\nr1 = 1\nlock *(u64 *)(r0 + 0) += r1`, true],
  [
    'map_value_fetch_add_past_end',
    `${LOOKUP0}\nif r0 == 0 goto +2\nr1 = 1\nr1 = atomic_fetch_add((u64 *)(r0 + 4), r1)`,
    false,
  ],
  [
    'map_value_source_pointer_privileged',
    `${LOOKUP0}\nif r0 == 0 goto +2\nr1 = r10\nlock *(u64 *)(r0 + 0) += r1`,
    true,
  ],
  ['map_value_xchg_pointer_privileged', `${LOOKUP0}\nif r0 == 0 goto +2\nr1 = r10\nr1 = xchg_64(r0 + 0, r1)`, true],
  ['scalar_address', 'r2 = 4096\nr1 = 1\nlock *(u64 *)(r2 + 0) += r1', false],
]
for (const t of TYPES) {
  for (const [name, code, ok] of ATOMICS) {
    if (code === null) continue
    const body = code.endsWith('exit') ? code : `${code}\nr0 = 0\nexit`
    out.push(prog(`${t}_atomic_${name}${sfx(ok)}`, t, body, [ARRAY_4_8]))
  }
}
// Atomics on packet memory are refused.
out.push(
  prog(
    'xdp_atomic_packet_add_rej',
    'xdp',
    'r2 = *(u32 *)(r1 + 0)\nr3 = *(u32 *)(r1 + 4)\nr4 = r2\nr4 += 8\nif r4 > r3 goto +2\nr1 = 1\nlock *(u64 *)(r2 + 0) += r1\nr0 = 2\nexit',
  ),
)

// LD_ABS / LD_IND: socket filters only; the context must be in r6; r1-r5 are clobbered.
const LD = [
  ['abs_u8', 'r6 = r1\nr0 = *(u8 *)skb[0]', true],
  ['abs_u16', 'r6 = r1\nr0 = *(u16 *)skb[12]', true],
  ['abs_u32', 'r6 = r1\nr0 = *(u32 *)skb[26]', true],
  ['abs_negative_offset', 'r6 = r1\nr0 = *(u8 *)skb[-1]', true],
  ['abs_r6_not_ctx', 'r6 = 0\nr0 = *(u8 *)skb[0]', false],
  ['abs_r6_uninit', 'r0 = *(u8 *)skb[0]', false],
  ['abs_r1_clobbered', 'r6 = r1\nr0 = *(u8 *)skb[0]\nr0 = r1', false],
  ['abs_r5_clobbered', 'r6 = r1\nr5 = 1\nr0 = *(u8 *)skb[0]\nr0 = r5', false],
  ['abs_r7_preserved', 'r6 = r1\nr7 = 1\nr0 = *(u8 *)skb[0]\nr0 = r7', true],
  ['ind_u8', 'r6 = r1\nr7 = 14\nr0 = *(u8 *)skb[r7 + 0]', true],
  ['ind_u32_with_imm', 'r6 = r1\nr7 = 14\nr0 = *(u32 *)skb[r7 + 12]', true],
  ['ind_index_uninit', 'r6 = r1\nr0 = *(u8 *)skb[r7 + 0]', false],
  ['ind_index_pointer_privileged', 'r6 = r1\nr7 = r10\nr0 = *(u8 *)skb[r7 + 0]', true],
]
for (const t of TYPES) {
  for (const [name, code, ok] of LD) {
    const accepted = ok && t === 'socket_filter'
    out.push(prog(`${t}_ld_${name}${sfx(accepted)}`, t, `${code}\nr0 = 0\nexit`))
  }
}
// cpu v4 and division.
const V4 = [
  ['sdiv_imm', 'r0 = 7\nr0 s/= -2', true],
  ['smod_imm', 'r0 = 7\nr0 s%= -2', true],
  ['sdiv32_reg', 'w0 = 7\nw1 = -2\nw0 s/= w1', true],
  ['div_by_zero_imm', 'r0 = 7\nr0 /= 0', false],
  ['mod_by_zero_imm', 'r0 = 7\nr0 %= 0', false],
  ['div_by_zero_reg_runtime', 'r0 = 7\nr1 = 0\nr0 /= r1', true],
  ['sdiv_by_zero_imm', 'r0 = 7\nr0 s/= 0', false],
  ['movsx8', 'r0 = 255\nr0 = (s8)r0', true],
  ['movsx32_w', 'w0 = 255\nw0 = (s16)w0', true],
  ['movsx_from_pointer_then_deref', 'r2 = r10\nr2 = (s32)r2\nr0 = *(u8 *)(r2 - 8)', false],
  ['ldsx_stack', '*(u64 *)(r10 - 8) = -1\nr0 = *(s8 *)(r10 - 8)', true],
  ['ldsx_ctx_field', null, null],
  [
    'ldsx_range_used_as_offset',
    '*(u64 *)(r10 - 8) = -1\nr0 = *(s8 *)(r10 - 8)\nr2 = r10\nr2 += -200\nr2 += r0\n*(u8 *)(r2 + 0) = 1',
    true,
  ],
  ['bswap64', 'r0 = 1\nr0 = bswap64 r0', true],
  ['be32', 'r0 = 1\nr0 = be32 r0', true],
  ['gotol_over_dead_insn', 'r0 = 0\ngotol +1\nr0 = 1', false],
  ['gotol_forward', 'call 5\nif r0 > 5 goto l1\ngotol l2\nl1:\nr0 = 1\nl2:', true],
  ['jmp32_jeq_imm', 'r0 = 0\nif w0 == 0 goto +1\nr0 = 1', true],
  ['jmp32_reg_uninit', 'r0 = 0\nif w0 == w5 goto +1\nr0 = 1', false],
  ['neg32', 'w0 = 5\nw0 = -w0', true],
]
for (const t of TYPES) {
  for (const [name, code, ok] of V4) {
    if (code === null) continue
    out.push(prog(`${t}_v4_${name}${sfx(ok)}`, t, `${code}\nr0 = 0\nexit`))
  }
}
// Sign-extending loads from the context's plain fields are accepted.
out.push(prog('kprobe_v4_ldsx_ctx_field_ok', 'kprobe', 'r0 = *(s32 *)(r1 + 0)\nexit'))
out.push(prog('socket_filter_v4_ldsx_ctx_len_ok', 'socket_filter', 'r0 = *(s32 *)(r1 + 0)\nexit'))
out.push(prog('xdp_v4_ldsx_ctx_ingress_ifindex_ok', 'xdp', 'r0 = *(s32 *)(r1 + 12)\nexit'))
// ... but not from the fields that hold packet pointers.
out.push(prog('xdp_v4_ldsx_ctx_data_rej', 'xdp', 'r0 = *(s32 *)(r1 + 0)\nr0 = 2\nexit'))
out.push(prog('socket_filter_v4_ldsx_ctx_cb_byte_ok', 'socket_filter', 'r0 = *(s8 *)(r1 + 49)\nexit'))
export default out
