/* BTF-defined maps and global data: lookups by struct keys, value field bounds, array indexes by a
 * variable (checked and not), per-CPU and LRU maps, map-in-map, and the .data/.bss/.rodata maps
 * libbpf makes (.rodata is frozen: programs may read it, not write it). */
#include "corpus.h"

struct flow {
	__u32 saddr, daddr;
	__u16 sport, dport;
	__u32 proto;
};

struct stats {
	__u64 packets;
	__u64 bytes;
	__u32 slots[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct flow);
	__type(value, struct stats);
	__uint(max_entries, 64);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct stats);
	__uint(max_entries, 8);
} table SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} percpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, __u64);
	__type(value, __u64);
	__uint(max_entries, 64);
} lru SEC(".maps");

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} inner_a SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct inner);
} outer SEC(".maps") = {.values = {&inner_a}};

__u64 counter = 1;             /* .data */
__u64 zeroed;                  /* .bss */
const volatile __u64 limit = 10; /* .rodata */
__u32 ring[16];                /* .bss array */

#define MAP_PROGS(sec, ctxt, pre)                                                               \
	SEC(sec) int pre##_struct_key_lookup_field_ok(ctxt *ctx)                                      \
	{                                                                                             \
		struct flow f = {.saddr = 1, .daddr = 2, .sport = 3, .dport = 4, .proto = 6};             \
		struct stats *s = bpf_map_lookup_elem(&flows, &f);                                        \
		if (!s)                                                                                   \
			return 0;                                                                             \
		s->packets++;                                                                             \
		return s->slots[3];                                                                       \
	}                                                                                             \
	SEC(sec) int pre##_struct_key_lookup_unchecked_rej(ctxt *ctx)                                 \
	{                                                                                             \
		struct flow f = {.saddr = 1};                                                             \
		struct stats *s = bpf_map_lookup_elem(&flows, &f);                                        \
		return opaque(s)->packets;                                                                \
	}                                                                                             \
	SEC(sec) int pre##_value_slot_index_masked_ok(ctxt *ctx)                                      \
	{                                                                                             \
		__u32 k = opaque(0u);                                                                     \
		struct stats *s = bpf_map_lookup_elem(&table, &k);                                        \
		if (!s)                                                                                   \
			return 0;                                                                             \
		__u32 i = bpf_get_prandom_u32() & 3;                                                      \
		return s->slots[i];                                                                       \
	}                                                                                             \
	SEC(sec) int pre##_value_slot_index_unchecked_rej(ctxt *ctx)                                  \
	{                                                                                             \
		__u32 k = opaque(0u);                                                                     \
		struct stats *s = bpf_map_lookup_elem(&table, &k);                                        \
		if (!s)                                                                                   \
			return 0;                                                                             \
		__u32 i = bpf_get_prandom_u32();                                                          \
		return s->slots[i];                                                                       \
	}                                                                                             \
	SEC(sec) int pre##_value_slot_index_off_by_one_rej(ctxt *ctx)                                 \
	{                                                                                             \
		__u32 k = opaque(0u);                                                                     \
		struct stats *s = bpf_map_lookup_elem(&table, &k);                                        \
		if (!s)                                                                                   \
			return 0;                                                                             \
		__u32 i = bpf_get_prandom_u32();                                                          \
		if (i > 4)                                                                                \
			return 0;                                                                             \
		return s->slots[opaque(i)];                                                               \
	}                                                                                             \
	SEC(sec) int pre##_update_struct_value_ok(ctxt *ctx)                                          \
	{                                                                                             \
		struct flow f = {};                                                                       \
		struct stats s = {.packets = 1};                                                          \
		return bpf_map_update_elem(&flows, &f, &s, BPF_NOEXIST);                                  \
	}                                                                                             \
	SEC(sec) int pre##_percpu_counter_ok(ctxt *ctx)                                               \
	{                                                                                             \
		__u32 k = 0;                                                                              \
		__u64 *v = bpf_map_lookup_elem(&percpu, &k);                                              \
		if (v)                                                                                    \
			(*v)++;                                                                               \
		return 0;                                                                                 \
	}                                                                                             \
	SEC(sec) int pre##_lru_lookup_or_insert_ok(ctxt *ctx)                                         \
	{                                                                                             \
		__u64 k = bpf_get_prandom_u32(), one = 1;                                                 \
		__u64 *v = bpf_map_lookup_elem(&lru, &k);                                                 \
		if (v)                                                                                    \
			__sync_fetch_and_add(v, 1);                                                           \
		else                                                                                      \
			bpf_map_update_elem(&lru, &k, &one, BPF_ANY);                                         \
		return 0;                                                                                 \
	}                                                                                             \
	SEC(sec) int pre##_map_in_map_lookup_ok(ctxt *ctx)                                            \
	{                                                                                             \
		__u32 k = 0;                                                                              \
		void *m = bpf_map_lookup_elem(&outer, &k);                                                \
		if (!m)                                                                                   \
			return 0;                                                                             \
		__u64 *v = bpf_map_lookup_elem(m, &k);                                                    \
		return v ? *v : 0;                                                                        \
	}                                                                                             \
	SEC(sec) int pre##_map_in_map_inner_unchecked_rej(ctxt *ctx)                                  \
	{                                                                                             \
		__u32 k = 0;                                                                              \
		void *m = bpf_map_lookup_elem(&outer, &k);                                                \
		__u64 *v = bpf_map_lookup_elem(opaque(m), &k);                                            \
		return v ? *v : 0;                                                                        \
	}                                                                                             \
	SEC(sec) int pre##_global_data_increment_ok(ctxt *ctx)                                        \
	{                                                                                             \
		counter++;                                                                                \
		zeroed += counter;                                                                        \
		return counter < limit;                                                                   \
	}                                                                                             \
	SEC(sec) int pre##_global_array_index_masked_ok(ctxt *ctx)                                    \
	{                                                                                             \
		__u32 i = bpf_get_prandom_u32() & 15;                                                     \
		ring[i]++;                                                                                \
		return 0;                                                                                 \
	}                                                                                             \
	SEC(sec) int pre##_global_array_index_mask_31_rej(ctxt *ctx)                                 \
	{                                                                                             \
		__u32 i = bpf_get_prandom_u32() & 31;                                                     \
		ring[i]++;                                                                                \
		return 0;                                                                                 \
	}                                                                                             \
	SEC(sec) int pre##_rodata_write_rej(ctxt *ctx)                                                \
	{                                                                                             \
		*(volatile __u64 *)&limit = 3;                                                            \
		return 0;                                                                                 \
	}

MAP_PROGS("socket", struct __sk_buff, socket)
MAP_PROGS("xdp", struct xdp_md, xdp)
MAP_PROGS("kprobe/do_nanosleep", struct pt_regs, kprobe)
MAP_PROGS("tracepoint/syscalls/sys_enter_nanosleep", void, tracepoint)
char LICENSE[] SEC("license") = "GPL";
