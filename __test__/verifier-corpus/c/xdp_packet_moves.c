// SPDX-License-Identifier: GPL-2.0
/* XDP programs that move the packet (adjust_head/meta/tail), in the main function, a static
 * function and a global function, then use packet pointers from before or after; data_meta
 * checked against data. */
#include "corpus.h"

char _license[] SEC("license") = "GPL";

__noinline int grow_head_global(struct xdp_md *ctx)
{
	return bpf_xdp_adjust_head(ctx, -4);
}

static __noinline int grow_head_static(struct xdp_md *ctx)
{
	return bpf_xdp_adjust_head(ctx, opaque(-4));
}

__noinline int count_global(struct xdp_md *ctx)
{
	return ctx->ingress_ifindex + 1;
}

SEC("xdp")
int xdp_global_adjust_then_old_pointer_rej(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	if (data + 1 > end)
		return XDP_DROP;
	grow_head_global(ctx);
	return *(__u8 *)opaque(data);
}

SEC("xdp")
int xdp_global_adjust_then_reload_ok(struct xdp_md *ctx)
{
	grow_head_global(ctx);
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	if (data + 1 > end)
		return XDP_DROP;
	return *(__u8 *)data;
}

SEC("xdp")
int xdp_global_no_change_keeps_pointer_ok(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	if (data + 1 > end)
		return XDP_DROP;
	count_global(ctx);
	return *(__u8 *)opaque(data);
}

SEC("xdp")
int xdp_static_adjust_then_old_pointer_rej(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	if (data + 1 > end)
		return XDP_DROP;
	grow_head_static(ctx);
	return *(__u8 *)opaque(data);
}

SEC("xdp")
int xdp_adjust_tail_then_reload_ok(struct xdp_md *ctx)
{
	if (bpf_xdp_adjust_tail(ctx, -4))
		return XDP_DROP;
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	if (data + 14 > end)
		return XDP_DROP;
	return ((__u8 *)data)[13];
}

SEC("xdp")
int xdp_meta_write_then_read_in_bounds_ok(struct xdp_md *ctx)
{
	if (bpf_xdp_adjust_meta(ctx, -8))
		return XDP_PASS;
	void *meta = (void *)(long)ctx->data_meta, *data = (void *)(long)ctx->data;
	__u32 *m = meta;
	if ((void *)(m + 2) > data)
		return XDP_PASS;
	m[0] = 1;
	m[1] = m[0] + 1;
	return XDP_PASS;
}

SEC("xdp")
int xdp_meta_read_past_check_rej(struct xdp_md *ctx)
{
	void *meta = (void *)(long)ctx->data_meta, *data = (void *)(long)ctx->data;
	__u32 *m = meta;
	if ((void *)(m + 1) > data)
		return XDP_PASS;
	return opaque(m)[1];
}

SEC("xdp")
int xdp_meta_pointer_after_adjust_meta_rej(struct xdp_md *ctx)
{
	void *meta = (void *)(long)ctx->data_meta, *data = (void *)(long)ctx->data;
	__u32 *m = meta;
	if ((void *)(m + 1) > data)
		return XDP_PASS;
	bpf_xdp_adjust_meta(ctx, -4);
	return *opaque(m);
}

static int adjust_in_callback(__u32 i, void *arg)
{
	bpf_xdp_adjust_head(*(struct xdp_md **)arg, 0);
	return 0;
}

static int read_in_callback(__u32 i, void *arg)
{
	return (*(struct xdp_md **)arg)->ingress_ifindex ? 0 : 1;
}

SEC("xdp")
int xdp_loop_callback_adjust_then_old_pointer_rej(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	if (data + 1 > end)
		return XDP_DROP;
	struct xdp_md *c = ctx;
	bpf_loop(1, adjust_in_callback, &c, 0);
	return *(__u8 *)opaque(data);
}

SEC("xdp")
int xdp_loop_callback_no_change_keeps_pointer_ok(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	if (data + 1 > end)
		return XDP_DROP;
	struct xdp_md *c = ctx;
	bpf_loop(1, read_in_callback, &c, 0);
	return *(__u8 *)opaque(data);
}
