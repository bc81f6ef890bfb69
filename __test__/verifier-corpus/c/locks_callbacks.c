/* Spin locks (one held at a time, released before exit and before helper calls, the value beside
 * the lock readable while held) and callbacks (bpf_loop, bpf_for_each_map_elem: verified as
 * functions of their own, with a return range of 0 or 1). */
#include "corpus.h"

struct locked {
	struct bpf_spin_lock lock;
	__u64 count;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct locked);
	__uint(max_entries, 4);
} locks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 16);
} counts SEC(".maps");

static __always_inline struct locked *slot(void)
{
	__u32 k = opaque(0u);
	return bpf_map_lookup_elem(&locks, &k);
}

#define LOCK_PROGS(sec, ctxt, pre)                                                              \
	SEC(sec) int pre##_lock_unlock_ok(ctxt *ctx)                                                  \
	{                                                                                             \
		struct locked *l = slot();                                                                \
		if (!l)                                                                                   \
			return 0;                                                                             \
		bpf_spin_lock(&l->lock);                                                                  \
		l->count++;                                                                               \
		bpf_spin_unlock(&l->lock);                                                                \
		return 0;                                                                                 \
	}                                                                                             \
	SEC(sec) int pre##_lock_exit_held_rej(ctxt *ctx)                                              \
	{                                                                                             \
		struct locked *l = slot();                                                                \
		if (!l)                                                                                   \
			return 0;                                                                             \
		bpf_spin_lock(&l->lock);                                                                  \
		l->count++;                                                                               \
		return 0;                                                                                 \
	}                                                                                             \
	SEC(sec) int pre##_lock_helper_call_while_held_rej(ctxt *ctx)                                 \
	{                                                                                             \
		struct locked *l = slot();                                                                \
		if (!l)                                                                                   \
			return 0;                                                                             \
		bpf_spin_lock(&l->lock);                                                                  \
		l->count = bpf_ktime_get_ns();                                                            \
		bpf_spin_unlock(&l->lock);                                                                \
		return 0;                                                                                 \
	}                                                                                             \
	SEC(sec) int pre##_lock_unlock_without_lock_rej(ctxt *ctx)                                    \
	{                                                                                             \
		struct locked *l = slot();                                                                \
		if (!l)                                                                                   \
			return 0;                                                                             \
		bpf_spin_unlock(&l->lock);                                                                \
		return 0;                                                                                 \
	}                                                                                             \
	SEC(sec) int pre##_lock_twice_rej(ctxt *ctx)                                                  \
	{                                                                                             \
		struct locked *l = slot();                                                                \
		if (!l)                                                                                   \
			return 0;                                                                             \
		bpf_spin_lock(&l->lock);                                                                  \
		bpf_spin_lock(&l->lock);                                                                  \
		bpf_spin_unlock(&l->lock);                                                                \
		bpf_spin_unlock(&l->lock);                                                                \
		return 0;                                                                                 \
	}                                                                                             \
	SEC(sec) int pre##_lock_read_lock_word_rej(ctxt *ctx)                                         \
	{                                                                                             \
		struct locked *l = slot();                                                                \
		if (!l)                                                                                   \
			return 0;                                                                             \
		return *(volatile __u32 *)&l->lock;                                                       \
	}                                                                                             \
	SEC(sec) int pre##_lock_on_one_branch_only_rej(ctxt *ctx)                                     \
	{                                                                                             \
		struct locked *l = slot();                                                                \
		if (!l)                                                                                   \
			return 0;                                                                             \
		if (bpf_get_prandom_u32() & 1)                                                            \
			bpf_spin_lock(&l->lock);                                                              \
		l->count++;                                                                               \
		bpf_spin_unlock(&l->lock);                                                                \
		return 0;                                                                                 \
	}

LOCK_PROGS("xdp", struct xdp_md, xdp)

/* Socket filters and tracing programs may not take spin locks at all. */
#define LOCK_NOT_ALLOWED(sec, ctxt, name)                                                       \
	SEC(sec) int name(ctxt *ctx)                                                                  \
	{                                                                                             \
		struct locked *l = slot();                                                                \
		if (!l)                                                                                   \
			return 0;                                                                             \
		bpf_spin_lock(&l->lock);                                                                  \
		l->count++;                                                                               \
		bpf_spin_unlock(&l->lock);                                                                \
		return 0;                                                                                 \
	}
LOCK_NOT_ALLOWED("socket", struct __sk_buff, socket_lock_unlock_type_not_allowed_rej)
LOCK_NOT_ALLOWED("kprobe/do_nanosleep", struct pt_regs, kprobe_lock_unlock_type_not_allowed_rej)

struct loop_ctx {
	__u64 sum;
};

static long add_index(__u32 i, void *data)
{
	struct loop_ctx *c = data;
	c->sum += i;
	return 0;
}

static long returns_2(__u32 i, void *data)
{
	return 2;
}

static long writes_past_ctx(__u32 i, void *data)
{
	struct loop_ctx *c = data;
	(&c->sum)[1] = i;
	return 0;
}

static long visit(void *map, __u32 *key, __u64 *value, void *data)
{
	*(__u64 *)data += *value;
	return 0;
}

static long visit_writes_key(void *map, __u32 *key, __u64 *value, void *data)
{
	*key = 1;
	return 0;
}

#define CALLBACK_PROGS(sec, ctxt, pre)                                                           \
	SEC(sec) int pre##_bpf_loop_sum_ok(ctxt *ctx)                                                 \
	{                                                                                             \
		struct loop_ctx c = {};                                                                   \
		bpf_loop(100, add_index, &c, 0);                                                          \
		return c.sum & 1;                                                                         \
	}                                                                                             \
	SEC(sec) int pre##_bpf_loop_unknown_count_ok(ctxt *ctx)                                       \
	{                                                                                             \
		struct loop_ctx c = {};                                                                   \
		bpf_loop(bpf_get_prandom_u32(), add_index, &c, 0);                                        \
		return c.sum & 1;                                                                         \
	}                                                                                             \
	SEC(sec) int pre##_bpf_loop_callback_returns_2_rej(ctxt *ctx)                                 \
	{                                                                                             \
		struct loop_ctx c = {};                                                                   \
		bpf_loop(10, returns_2, &c, 0);                                                           \
		return 0;                                                                                 \
	}                                                                                             \
	SEC(sec) int pre##_bpf_loop_callback_writes_past_ctx_rej(ctxt *ctx)                           \
	{                                                                                             \
		struct loop_ctx c = {};                                                                   \
		bpf_loop(10, writes_past_ctx, &c, 0);                                                     \
		return c.sum & 1;                                                                         \
	}                                                                                             \
	SEC(sec) int pre##_bpf_loop_nonzero_flags_checked_at_run_time_ok(ctxt *ctx)                                      \
	{                                                                                             \
		struct loop_ctx c = {};                                                                   \
		bpf_loop(10, add_index, &c, 1);                                                           \
		return 0;                                                                                 \
	}                                                                                             \
	SEC(sec) int pre##_for_each_map_elem_sum_ok(ctxt *ctx)                                       \
	{                                                                                             \
		__u64 sum = 0;                                                                            \
		bpf_for_each_map_elem(&counts, visit, &sum, 0);                                           \
		return sum & 1;                                                                           \
	}                                                                                             \
	SEC(sec) int pre##_for_each_map_elem_writes_key_rej(ctxt *ctx)                               \
	{                                                                                             \
		__u64 sum = 0;                                                                            \
		bpf_for_each_map_elem(&counts, visit_writes_key, &sum, 0);                                \
		return sum & 1;                                                                           \
	}

CALLBACK_PROGS("socket", struct __sk_buff, socket)
CALLBACK_PROGS("xdp", struct xdp_md, xdp)
CALLBACK_PROGS("kprobe/do_nanosleep", struct pt_regs, kprobe)
char LICENSE[] SEC("license") = "GPL";
