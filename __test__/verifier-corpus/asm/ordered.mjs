// Load-acquire and store-release (BPF_LOAD_ACQ / BPF_STORE_REL, cpu v4, Linux 6.15): every size,
// the memory they may reach (stack, map values; not the context, packets or scalars), strict
// alignment, what the loaded register becomes, and pointers spilled and filled through them.
import { ARRAY_4_8, ARRAY_4_64, HASH_8_16, LOOKUP_HASH, LOOKUP0, prog, TYPES } from './_lib.mjs'

const out = []
const sfx = (ok) => (ok ? '_ok' : '_rej')
const INIT = 'r1 = 7\n*(u64 *)(r10 - 8) = r1'
const CASES = [
  ['stack_acquire_u8', `${INIT}\nw0 = load_acquire((u8 *)(r10 - 1))`, true],
  ['stack_acquire_u16', `${INIT}\nw0 = load_acquire((u16 *)(r10 - 8))`, true],
  ['stack_acquire_u32', `${INIT}\nw0 = load_acquire((u32 *)(r10 - 4))`, true],
  ['stack_acquire_u64', `${INIT}\nr0 = load_acquire((u64 *)(r10 - 8))`, true],
  ['stack_release_u8', `${INIT}\nstore_release((u8 *)(r10 - 3), w1)`, true],
  ['stack_release_u16', `${INIT}\nstore_release((u16 *)(r10 - 16), w1)`, true],
  ['stack_release_u32', `${INIT}\nstore_release((u32 *)(r10 - 12), w1)`, true],
  ['stack_release_u64', `${INIT}\nstore_release((u64 *)(r10 - 16), r1)`, true],
  ['stack_acquire_misaligned_u16', `${INIT}\nw0 = load_acquire((u16 *)(r10 - 7))`, false],
  ['stack_acquire_misaligned_u64', `${INIT}\nr0 = load_acquire((u64 *)(r10 - 12))`, false],
  ['stack_release_misaligned_u32', `${INIT}\nstore_release((u32 *)(r10 - 6), w1)`, false],
  ['stack_acquire_uninit_privileged', 'w0 = load_acquire((u32 *)(r10 - 16))', true],
  ['stack_acquire_out_of_frame', `${INIT}\nr0 = load_acquire((u64 *)(r10 + 0))`, false],
  ['stack_release_uninit_source', 'store_release((u64 *)(r10 - 8), r5)', false],
  ['stack_acquire_uninit_base', 'r0 = load_acquire((u64 *)(r5 + 0))', false],
  // The loaded value: a byte is [0, 255] (zero-extended), usable as a bounded scalar.
  [
    'stack_acquired_byte_dead_branch',
    `${INIT}\nw2 = load_acquire((u8 *)(r10 - 8))\nif r2 > 255 goto +2\nr0 = 0\nexit\nr0 = *(u64 *)(r0 + 0)\nexit`,
    true,
  ],
  // A spilled pointer comes back as the pointer; part of it is refused.
  [
    'stack_pointer_fill_u64',
    'r2 = r10\n*(u64 *)(r10 - 8) = r2\nr3 = load_acquire((u64 *)(r10 - 8))\nr0 = *(u64 *)(r3 - 8)',
    true,
  ],
  ['stack_pointer_fill_u32', 'r2 = r10\n*(u64 *)(r10 - 8) = r2\nw3 = load_acquire((u32 *)(r10 - 8))', false],
  [
    'stack_pointer_spilled_by_release',
    'r2 = r10\nstore_release((u64 *)(r10 - 8), r2)\nr3 = *(u64 *)(r10 - 8)\nr1 = 1\n*(u64 *)(r3 - 16) = r1',
    true,
  ],
  // Map values.
  [
    'map_value_acquire_release',
    `${LOOKUP0}\nif r0 == 0 goto +3\nw1 = load_acquire((u32 *)(r0 + 4))\nstore_release((u64 *)(r0 + 0), r1)\nw1 = load_acquire((u8 *)(r0 + 7))`,
    true,
    [ARRAY_4_8],
  ],
  ['map_value_or_null_acquire', `${LOOKUP_HASH}\nw1 = load_acquire((u32 *)(r0 + 0))`, false, [HASH_8_16]],
  [
    'map_value_release_past_end',
    `${LOOKUP0}\nif r0 == 0 goto +2\nr1 = 1\nstore_release((u64 *)(r0 + 8), r1)`,
    false,
    [ARRAY_4_8],
  ],
  [
    'map_value_acquire_misaligned',
    `${LOOKUP0}\nif r0 == 0 goto +1\nw1 = load_acquire((u32 *)(r0 + 2))`,
    false,
    [ARRAY_4_8],
  ],
  [
    'map_value_index_by_acquired_byte',
    `${LOOKUP0}\nif r0 == 0 goto +3\nw1 = load_acquire((u8 *)(r0 + 0))\nr0 += r1\nw2 = load_acquire((u8 *)(r0 + 0))`,
    false,
    [ARRAY_4_64],
  ],
  [
    'map_value_index_by_masked_byte',
    `${LOOKUP0}\nif r0 == 0 goto +4\nw1 = load_acquire((u8 *)(r0 + 0))\nr1 &= 56\nr0 += r1\nr2 = load_acquire((u64 *)(r0 + 0))`,
    true,
    [ARRAY_4_64],
  ],
  [
    'map_value_release_pointer_privileged',
    `${LOOKUP0}\nif r0 == 0 goto +2\nr1 = r10\nstore_release((u64 *)(r0 + 0), r1)`,
    true,
    [ARRAY_4_8],
  ],
  // Refused memory: the context and scalars.
  ['ctx_release', 'r2 = 0\nstore_release((u64 *)(r1 + 0), r2)', false],
  ['scalar_acquire', 'r2 = 4096\nw0 = load_acquire((u32 *)(r2 + 0))', false],
]
for (const t of TYPES) {
  for (const [name, code, ok, maps = []] of CASES) {
    const body = code.endsWith('exit') ? code : `${code}\nr0 = 0\nexit`
    out.push(prog(`${t}_ordered_${name}${sfx(ok)}`, t, body, maps))
  }
}
// The context of each type (its first field read, when readable), and the packet.
out.push(prog('socket_filter_ordered_ctx_acquire_rej', 'socket_filter', 'w0 = load_acquire((u32 *)(r1 + 0))\nexit'))
out.push(prog('xdp_ordered_ctx_acquire_rej', 'xdp', 'w0 = load_acquire((u32 *)(r1 + 0))\nr0 = 0\nexit'))
out.push(prog('kprobe_ordered_ctx_acquire_rej', 'kprobe', 'r0 = load_acquire((u64 *)(r1 + 0))\nr0 = 0\nexit'))
const PKT = 'r2 = *(u32 *)(r1 + 0)\nr3 = *(u32 *)(r1 + 4)\nr4 = r2\nr4 += 8\nif r4 > r3 goto +1'
out.push(prog('xdp_ordered_packet_acquire_u32_rej', 'xdp', `${PKT}\nw5 = load_acquire((u32 *)(r2 + 0))\nr0 = 2\nexit`))
out.push(prog('xdp_ordered_packet_acquire_u8_rej', 'xdp', `${PKT}\nw5 = load_acquire((u8 *)(r2 + 3))\nr0 = 2\nexit`))
out.push(prog('xdp_ordered_packet_release_u16_rej', 'xdp', `${PKT}\nstore_release((u16 *)(r2 + 2), w4)\nr0 = 2\nexit`))
out.push(prog('xdp_ordered_packet_release_u8_rej', 'xdp', `${PKT}\nstore_release((u8 *)(r2 + 1), w4)\nr0 = 2\nexit`))
// A load-acquire is refused for its pointer type first, a store-release checks its access first:
// packet alignment as the kernel assumes it (data at NET_IP_ALIGN, 2, past an aligned address).
out.push(
  prog('xdp_ordered_packet_acquire_u16_odd_rej', 'xdp', `${PKT}\nw5 = load_acquire((u16 *)(r2 + 1))\nr0 = 2\nexit`),
)
out.push(
  prog('xdp_ordered_packet_release_u32_at_4_rej', 'xdp', `${PKT}\nstore_release((u32 *)(r2 + 4), w4)\nr0 = 2\nexit`),
)
out.push(
  prog('xdp_ordered_packet_release_u32_at_2_rej', 'xdp', `${PKT}\nstore_release((u32 *)(r2 + 2), w4)\nr0 = 2\nexit`),
)
out.push(prog('xdp_ordered_ctx_acquire_misaligned_rej', 'xdp', 'w5 = load_acquire((u32 *)(r1 + 2))\nr0 = 2\nexit'))
out.push(
  prog(
    'kprobe_ordered_ctx_release_u32_misaligned_rej',
    'kprobe',
    'r2 = 0\nstore_release((u32 *)(r1 + 2), w2)\nr0 = 0\nexit',
  ),
)

export default out
