// Helper calls: argument types and sizes against the map, return types, clobbered registers,
// helpers per program type, unknown helpers, ringbuf reference tracking, tail calls.
import { ARRAY_4_8, HASH_8_16, LOOKUP_HASH, prog, RINGBUF, TYPES } from './_lib.mjs'

const out = []
const sfx = (ok) => (ok ? '_ok' : '_rej')
const KEY = '*(u64 *)(r10 - 8) = 0\nr2 = r10\nr2 += -8'
// [name, code, maps, ok]; map[0] is the hash map (key 8, value 16) unless said otherwise.
const CASES = [
  ['lookup_key_on_stack', `${KEY}\nr1 = map[0] ll\ncall 1\nr0 = 0\nexit`, true],
  ['lookup_key_uninit_stack_privileged', 'r2 = r10\nr2 += -8\nr1 = map[0] ll\ncall 1\nr0 = 0\nexit', true],
  [
    'lookup_key_4_bytes_of_stack_for_8_byte_key',
    '*(u32 *)(r10 - 4) = 0\nr2 = r10\nr2 += -4\nr1 = map[0] ll\ncall 1\nr0 = 0\nexit',
    false,
  ],
  ['lookup_key_ptr_is_ctx', 'r2 = r1\nr1 = map[0] ll\ncall 1\nr0 = 0\nexit', false],
  ['lookup_key_is_scalar', 'r2 = 0\nr1 = map[0] ll\ncall 1\nr0 = 0\nexit', false],
  ['lookup_map_is_scalar', `${KEY}\nr1 = 0\ncall 1\nr0 = 0\nexit`, false],
  ['lookup_map_is_stack', `${KEY}\nr1 = r10\ncall 1\nr0 = 0\nexit`, false],
  [
    'lookup_key_from_map_value',
    `${LOOKUP_HASH}\nif r0 == 0 goto out\nr2 = r0\nr1 = map[0] ll\ncall 1\nout:\nr0 = 0\nexit`,
    true,
  ],
  [
    'lookup_key_in_value_too_small',
    `${LOOKUP_HASH}\nif r0 == 0 goto out\nr2 = r0\nr2 += 12\nr1 = map[0] ll\ncall 1\nout:\nr0 = 0\nexit`,
    false,
  ],
  [
    'update_value_on_stack',
    `${KEY}\n*(u64 *)(r10 - 24) = 0\n*(u64 *)(r10 - 16) = 0\nr3 = r10\nr3 += -24\nr4 = 0\nr1 = map[0] ll\ncall 2\nr0 = 0\nexit`,
    true,
  ],
  // fp-16..fp-1 holds the value's 16 bytes, overlapping the key: legal, and uninit is allowed.
  [
    'update_value_overlapping_key_privileged',
    `${KEY}\n*(u64 *)(r10 - 16) = 0\nr3 = r10\nr3 += -16\nr4 = 0\nr1 = map[0] ll\ncall 2\nr0 = 0\nexit`,
    true,
  ],
  ['update_value_past_stack_top', `${KEY}\nr3 = r10\nr3 += -8\nr4 = 0\nr1 = map[0] ll\ncall 2\nr0 = 0\nexit`, false],
  [
    'update_flags_unknown_scalar',
    `${KEY}\n*(u64 *)(r10 - 24) = 0\n*(u64 *)(r10 - 16) = 0\nr6 = r2\ncall 5\nr4 = r0\nr2 = r6\nr3 = r10\nr3 += -24\nr1 = map[0] ll\ncall 2\nr0 = 0\nexit`,
    true,
  ],
  [
    'update_r4_uninit',
    `${KEY}\n*(u64 *)(r10 - 24) = 0\n*(u64 *)(r10 - 16) = 0\nr3 = r10\nr3 += -24\nr1 = map[0] ll\ncall 2\nr0 = 0\nexit`,
    false,
  ],
  ['delete_key_on_stack', `${KEY}\nr1 = map[0] ll\ncall 3\nr0 = 0\nexit`, true],
  ['delete_return_is_scalar_deref', `${KEY}\nr1 = map[0] ll\ncall 3\nr0 = *(u64 *)(r0 + 0)\nr0 = 0\nexit`, false],
  ['r1_clobbered_after_call', 'call 5\nr0 = r1\nexit', false],
  ['r5_clobbered_after_call', 'r5 = 1\ncall 5\nr0 = r5\nexit', false],
  ['r6_preserved_across_call', 'r6 = 1\ncall 5\nr0 = r6\nexit', true],
  ['r9_preserved_across_call', 'r9 = 1\ncall 5\nr0 = r9\nexit', true],
  ['ctx_in_r6_survives_call', 'r6 = r1\ncall 5\nr1 = r6\nr0 = 0\nexit', true],
  ['unknown_helper_999', 'call 999\nr0 = 0\nexit', false],
  ['helper_id_0_unspec', 'call 0\nr0 = 0\nexit', false],
  ['ktime_get_ns', 'call 5\nexit', true],
  ['get_prandom_u32', 'call 7\nexit', true],
  ['get_smp_processor_id', 'call 8\nexit', true],
  ['get_current_pid_tgid', 'call 14\nexit', true],
  ['get_current_comm_to_stack', 'r1 = r10\nr1 += -16\nr2 = 16\ncall 16\nr0 = 0\nexit', true],
  ['get_current_comm_size_too_big', 'r1 = r10\nr1 += -16\nr2 = 17\ncall 16\nr0 = 0\nexit', false],
  ['probe_read_kernel_to_stack', 'r1 = r10\nr1 += -8\nr2 = 8\nr3 = 0\ncall 113\nr0 = 0\nexit', true],
  ['ktime_get_boot_ns', 'call 125\nexit', true],
  ['jiffies64', 'call 118\nexit', true],
  ['trace_printk_stack_fmt', '*(u64 *)(r10 - 8) = 0\nr1 = r10\nr1 += -8\nr2 = 8\ncall 6\nr0 = 0\nexit', true],
  [
    'ringbuf_reserve_submit',
    'r1 = map[0] ll\nr2 = 8\nr3 = 0\ncall 131\nif r0 == 0 goto out\n*(u64 *)(r0 + 0) = 1\nr1 = r0\nr2 = 0\ncall 132\nout:\nr0 = 0\nexit',
    true,
    [RINGBUF],
  ],
  [
    'ringbuf_reserve_discard',
    'r1 = map[0] ll\nr2 = 8\nr3 = 0\ncall 131\nif r0 == 0 goto out\nr1 = r0\nr2 = 0\ncall 133\nout:\nr0 = 0\nexit',
    true,
    [RINGBUF],
  ],
  [
    'ringbuf_reserve_leaked',
    'r1 = map[0] ll\nr2 = 8\nr3 = 0\ncall 131\nif r0 == 0 goto out\n*(u64 *)(r0 + 0) = 1\nout:\nr0 = 0\nexit',
    false,
    [RINGBUF],
  ],
  [
    'ringbuf_reserve_no_null_check_submit',
    'r1 = map[0] ll\nr2 = 8\nr3 = 0\ncall 131\nr1 = r0\nr2 = 0\ncall 132\nr0 = 0\nexit',
    false,
    [RINGBUF],
  ],
  [
    'ringbuf_submit_twice',
    'r1 = map[0] ll\nr2 = 8\nr3 = 0\ncall 131\nif r0 == 0 goto out\nr6 = r0\nr1 = r0\nr2 = 0\ncall 132\nr1 = r6\nr2 = 0\ncall 132\nout:\nr0 = 0\nexit',
    false,
    [RINGBUF],
  ],
  [
    'ringbuf_write_past_record',
    'r1 = map[0] ll\nr2 = 8\nr3 = 0\ncall 131\nif r0 == 0 goto out\n*(u64 *)(r0 + 4) = 1\nr1 = r0\nr2 = 0\ncall 133\nout:\nr0 = 0\nexit',
    false,
    [RINGBUF],
  ],
  [
    'ringbuf_use_after_submit',
    'r1 = map[0] ll\nr2 = 8\nr3 = 0\ncall 131\nif r0 == 0 goto out\nr6 = r0\nr1 = r0\nr2 = 0\ncall 132\n*(u64 *)(r6 + 0) = 1\nout:\nr0 = 0\nexit',
    false,
    [RINGBUF],
  ],
  [
    'ringbuf_reserve_var_size',
    'call 5\nr2 = r0\nr2 &= 63\nr1 = map[0] ll\nr3 = 0\ncall 131\nif r0 == 0 goto out\nr1 = r0\nr2 = 0\ncall 133\nout:\nr0 = 0\nexit',
    false,
    [RINGBUF],
  ],
  ['ringbuf_submit_stack_ptr', 'r1 = r10\nr1 += -8\nr2 = 0\ncall 132\nr0 = 0\nexit', false, [RINGBUF]],
  [
    'ringbuf_submit_offset_ptr',
    'r1 = map[0] ll\nr2 = 16\nr3 = 0\ncall 131\nif r0 == 0 goto out\nr0 += 8\nr1 = r0\nr2 = 0\ncall 132\nout:\nr0 = 0\nexit',
    false,
    [RINGBUF],
  ],
  [
    'ringbuf_reserve_on_array_map',
    'r1 = map[0] ll\nr2 = 8\nr3 = 0\ncall 131\nif r0 == 0 goto out\nr1 = r0\nr2 = 0\ncall 133\nout:\nr0 = 0\nexit',
    false,
    [ARRAY_4_8],
  ],
  [
    'ringbuf_output_from_stack',
    '*(u64 *)(r10 - 8) = 1\nr1 = map[0] ll\nr2 = r10\nr2 += -8\nr3 = 8\nr4 = 0\ncall 130\nr0 = 0\nexit',
    true,
    [RINGBUF],
  ],
  [
    'ringbuf_leak_on_one_path_only',
    'r1 = map[0] ll\nr2 = 8\nr3 = 0\ncall 131\nif r0 == 0 goto out\nr6 = r0\ncall 5\nif r0 == 7 goto out\nr1 = r6\nr2 = 0\ncall 132\nout:\nr0 = 0\nexit',
    false,
    [RINGBUF],
  ],
  ['lookup_on_ringbuf_map', `${KEY}\nr1 = map[0] ll\ncall 1\nr0 = 0\nexit`, false, [RINGBUF]],
  [
    'tail_call_prog_array',
    'r2 = map[0] ll\nr3 = 0\ncall 12\nr0 = 0\nexit',
    true,
    [{ type: 3, keySize: 4, valueSize: 4, maxEntries: 4 }],
  ],
  ['tail_call_on_array_map', 'r2 = map[0] ll\nr3 = 0\ncall 12\nr0 = 0\nexit', false, [ARRAY_4_8]],
  [
    'tail_call_ctx_not_r1',
    'r1 = 0\nr2 = map[0] ll\nr3 = 0\ncall 12\nr0 = 0\nexit',
    false,
    [{ type: 3, keySize: 4, valueSize: 4, maxEntries: 4 }],
  ],
  [
    'map_lookup_percpu_array',
    '*(u32 *)(r10 - 4) = 0\nr2 = r10\nr2 += -4\nr1 = map[0] ll\ncall 1\nif r0 == 0 goto out\nr0 = *(u64 *)(r0 + 0)\nout:\nr0 = 0\nexit',
    true,
    [{ type: 6, keySize: 4, valueSize: 8, maxEntries: 4 }],
  ],
  [
    'map_push_queue',
    '*(u64 *)(r10 - 8) = 1\nr2 = r10\nr2 += -8\nr1 = map[0] ll\nr3 = 0\ncall 87\nr0 = 0\nexit',
    true,
    [{ type: 22, keySize: 0, valueSize: 8, maxEntries: 4 }],
  ],
  [
    'map_lookup_queue',
    `${KEY}\nr1 = map[0] ll\ncall 1\nr0 = 0\nexit`,
    false,
    [{ type: 22, keySize: 0, valueSize: 8, maxEntries: 4 }],
  ],
]
for (const t of TYPES) {
  for (const [name, code, ok, maps = [HASH_8_16]] of CASES)
    out.push(prog(`${t}_helper_${name}${sfx(ok)}`, t, code, maps))
}
// bpf_get_func_ip: offered to every tracing type, callable by kprobes only (check_get_func_ip).
for (const [t, ok] of [
  ['kprobe', true],
  ['tracepoint', false],
  ['raw_tp', false],
  ['tc', false],
]) {
  out.push(prog(`${t}_helper_get_func_ip${sfx(ok)}`, t, 'call 173\nexit'))
}
// bpf_skb_get/set_tunnel_key (tc): the key on the stack, sizes of the struct's layouts.
const GET_KEY = (size) => `r2 = r10\nr2 += -48\nr3 = ${size}\nr4 = 0\ncall 20\nr0 = 0\nexit`
const SET_KEY = (size) =>
  `r2 = 0\n*(u64 *)(r10 - 48) = r2\n*(u64 *)(r10 - 40) = r2\n*(u64 *)(r10 - 32) = r2\n*(u64 *)(r10 - 24) = r2\n*(u64 *)(r10 - 16) = r2\n*(u64 *)(r10 - 8) = r2\nr2 = r10\nr2 += -48\nr3 = ${size}\nr4 = 0\ncall 21\nr0 = 0\nexit`
for (const [name, t, code, ok] of [
  ['get_tunnel_key_uninit_stack', 'tc', GET_KEY(44), true],
  ['get_tunnel_key_size_0', 'tc', GET_KEY(0), false],
  ['get_tunnel_key_past_stack', 'tc', GET_KEY(49), false],
  ['get_tunnel_key', 'xdp', GET_KEY(44), false],
  ['set_tunnel_key', 'tc', SET_KEY(44), true],
  ['set_tunnel_key_old_size', 'tc', SET_KEY(8), true],
  ['set_tunnel_key', 'socket_filter', SET_KEY(44), false],
]) {
  out.push(prog(`${t}_helper_${name}${sfx(ok)}`, t, code))
}
export default out
