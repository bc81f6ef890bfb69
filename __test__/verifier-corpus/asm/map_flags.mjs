// Map flags: what a map created with BPF_F_RDONLY_PROG (as libbpf creates .rodata) or
// BPF_F_WRONLY_PROG lets a program do to its values: stores, atomics, values found by lookup,
// helpers that fill memory, map helpers that change the map.
import { prog, TYPES } from './_lib.mjs'

const out = []
const sfx = (ok) => (ok ? '_ok' : '_rej')
/** One 8-byte array value programs may only read / only write. */
const RDONLY = { type: 2, keySize: 4, valueSize: 8, maxEntries: 1, flags: 128 }
const WRONLY = { type: 2, keySize: 4, valueSize: 8, maxEntries: 1, flags: 256 }
const VALUE = 'r1 = map_value[0] + 0 ll'
const END = 'r0 = 0\nexit'
const STACK_KV = '*(u64 *)(r10 - 8) = 0\n*(u64 *)(r10 - 16) = 0\nr2 = r10\nr2 += -8'
// [name, code, ok, map]
const CASES = [
  ['rdonly_st', `${VALUE}\n*(u64 *)(r1 + 0) = 1\n${END}`, false, RDONLY],
  ['rdonly_stx_at_value_plus_4', `r1 = map_value[0] + 4 ll\nr2 = 1\n*(u32 *)(r1 + 0) = r2\n${END}`, false, RDONLY],
  // The flags are checked before the bounds: the message is the flags', not the bounds'.
  ['rdonly_stx_past_the_end', `${VALUE}\nr2 = 1\n*(u64 *)(r1 + 8) = r2\n${END}`, false, RDONLY],
  ['rdonly_ldx', `${VALUE}\nr2 = *(u64 *)(r1 + 0)\n${END}`, true, RDONLY],
  ['rdonly_atomic_add', `${VALUE}\nr2 = 1\nlock *(u64 *)(r1 + 0) += r2\n${END}`, false, RDONLY],
  ['rdonly_atomic_fetch_add', `${VALUE}\nr2 = 1\nr2 = atomic_fetch_add((u64 *)(r1 + 0), r2)\n${END}`, false, RDONLY],
  [
    'rdonly_lookup_then_store',
    `*(u32 *)(r10 - 4) = 0\nr2 = r10\nr2 += -4\nr1 = map[0] ll\ncall 1\nif r0 == 0 goto +1\n*(u64 *)(r0 + 0) = 1\n${END}`,
    false,
    RDONLY,
  ],
  ['rdonly_update_elem', `${STACK_KV}\nr3 = r10\nr3 += -16\nr4 = 0\nr1 = map[0] ll\ncall 2\n${END}`, false, RDONLY],
  ['rdonly_delete_elem', `${STACK_KV}\nr1 = map[0] ll\ncall 3\n${END}`, false, RDONLY],
  ['rdonly_value_as_lookup_key', `r2 = map_value[0] + 0 ll\nr1 = map[0] ll\ncall 1\n${END}`, true, RDONLY],
  ['wronly_ldx', `${VALUE}\nr2 = *(u64 *)(r1 + 0)\n${END}`, false, WRONLY],
  ['wronly_st', `${VALUE}\n*(u64 *)(r1 + 0) = 1\n${END}`, true, WRONLY],
]
for (const t of TYPES) {
  for (const [name, code, ok, map] of CASES) out.push(prog(`${t}_mapflags_${name}${sfx(ok)}`, t, code, [map]))
}
// Helpers that fill memory: bpf_skb_load_bytes (socket filters), bpf_probe_read_kernel (kprobes).
out.push(
  prog(
    'socket_filter_mapflags_rdonly_skb_load_bytes_into_value_rej',
    'socket_filter',
    `r3 = map_value[0] + 4 ll\nr2 = 0\nr4 = 4\ncall 26\n${END}`,
    [RDONLY],
  ),
  prog(
    'kprobe_mapflags_rdonly_probe_read_kernel_into_value_rej',
    'kprobe',
    `${VALUE}\nr2 = 8\nr3 = 0\ncall 113\n${END}`,
    [RDONLY],
  ),
)
export default out
