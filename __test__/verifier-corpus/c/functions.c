/* Global functions (verified once, against their BTF argument types, not in the caller's context)
 * and static ones (verified in the caller's context). */
#include "corpus.h"

__noinline int global_add(int a, int b)
{
	return a + b;
}

__noinline int global_deref_unchecked(int *p)
{
	return *p;
}

__noinline int global_deref_checked(int *p)
{
	return p ? *p : 0;
}

__noinline int global_reads_past_int(int *p)
{
	return p ? p[1] : 0;
}

static __noinline int static_deref(int *p)
{
	return *p;
}

__noinline int global_skb_len(struct __sk_buff *skb)
{
	return skb ? skb->len : 0;
}

__noinline int global_xdp_first_byte(struct xdp_md *xdp)
{
	if (!xdp)
		return 0;
	void *data = (void *)(long)xdp->data, *end = (void *)(long)xdp->data_end;
	if (data + 1 > end)
		return 0;
	return *(__u8 *)data;
}

__noinline int global_xdp_first_byte_unchecked(struct xdp_md *xdp)
{
	if (!xdp)
		return 0;
	return *(__u8 *)(long)xdp->data;
}

__noinline __u64 global_loop(__u32 n)
{
	__u64 s = 0;
	for (__u32 i = 0; i < n && i < 1000; i++)
		s += i;
	return s;
}

#define FUNC_PROGS(sec, ctxt, pre)                                                              \
	SEC(sec) int pre##_global_add_ok(ctxt *ctx) { return global_add(1, 2); }                       \
	SEC(sec) int pre##_global_deref_unchecked_rej(ctxt *ctx)                                      \
	{                                                                                             \
		int v = 1;                                                                                \
		return global_deref_unchecked(&v);                                                        \
	}                                                                                             \
	SEC(sec) int pre##_global_deref_checked_ok(ctxt *ctx)                                         \
	{                                                                                             \
		int v = 1;                                                                                \
		return global_deref_checked(&v);                                                          \
	}                                                                                             \
	SEC(sec) int pre##_global_reads_past_int_rej(ctxt *ctx)                                       \
	{                                                                                             \
		int v[2] = {1, 2};                                                                        \
		return global_reads_past_int(v);                                                          \
	}                                                                                             \
	SEC(sec) int pre##_static_deref_in_context_ok(ctxt *ctx)                                      \
	{                                                                                             \
		int v = 1;                                                                                \
		return static_deref(&v);                                                                  \
	}                                                                                             \
	SEC(sec) int pre##_global_loop_bounded_ok(ctxt *ctx) { return global_loop(bpf_get_prandom_u32()) & 1; }

FUNC_PROGS("socket", struct __sk_buff, socket)
FUNC_PROGS("xdp", struct xdp_md, xdp)
FUNC_PROGS("kprobe/do_nanosleep", struct pt_regs, kprobe)

SEC("socket") int socket_global_skb_ctx_arg_ok(struct __sk_buff *skb) { return global_skb_len(skb); }
SEC("xdp") int xdp_global_xdp_ctx_arg_ok(struct xdp_md *ctx) { return global_xdp_first_byte(ctx); }
SEC("xdp") int xdp_global_xdp_ctx_unchecked_packet_rej(struct xdp_md *ctx) { return global_xdp_first_byte_unchecked(ctx); }
char LICENSE[] SEC("license") = "GPL";
