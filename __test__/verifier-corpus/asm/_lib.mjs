// Shorthands the assembly corpus files share.

/** One program: `type` is a key of KERNEL_PROG_TYPE (corpus.mjs), `text` the llvm-dialect source. */
export function prog(name, type, text, maps = []) {
  return { name, type, text: text.trim(), maps }
}

/** Map definitions in the kernel's numbering (BPF_MAP_TYPE_*). */
export const ARRAY_4_8 = { type: 2, keySize: 4, valueSize: 8, maxEntries: 4 }
export const ARRAY_4_64 = { type: 2, keySize: 4, valueSize: 64, maxEntries: 4 }
export const HASH_8_16 = { type: 1, keySize: 8, valueSize: 16, maxEntries: 16 }
export const RINGBUF = { type: 27, keySize: 0, valueSize: 0, maxEntries: 4096 }

/** `r0 = map value (or null)` of map[0] with key 0: leaves r0 = lookup result. Clobbers r1-r5. */
export const LOOKUP0 = `
*(u32 *)(r10 - 4) = 0
r2 = r10
r2 += -4
r1 = map[0] ll
call 1`

/** The three program types every family runs under. */
export const TYPES = ['socket_filter', 'xdp', 'kprobe']

/**
 * `r0 = map value or null` of a hash map[0] with key 0 (8 bytes at fp-8). A hash lookup can always
 * miss; an array lookup with a constant key inside max_entries is known non-null by 6.18.
 */
export const LOOKUP_HASH = `
*(u64 *)(r10 - 8) = 0
r2 = r10
r2 += -8
r1 = map[0] ll
call 1`
