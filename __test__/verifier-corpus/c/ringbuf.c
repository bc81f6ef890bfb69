/* Ring buffer records as programs use them: reserve a struct, fill it, submit or discard on every
 * path; the leaks, double releases and uses after release the kernel refuses. */
#include "corpus.h"

struct event {
	__u64 ts;
	__u32 pid;
	__u32 len;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

#define RINGBUF_PROGS(sec, ctxt, pre)                                                          \
	SEC(sec) int pre##_ringbuf_reserve_fill_submit_ok(ctxt *ctx)                                  \
	{                                                                                             \
		struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);                            \
		if (!e)                                                                                   \
			return 0;                                                                             \
		e->ts = bpf_ktime_get_ns();                                                               \
		e->pid = 1;                                                                               \
		e->len = 2;                                                                               \
		bpf_ringbuf_submit(e, 0);                                                                 \
		return 0;                                                                                 \
	}                                                                                             \
	SEC(sec) int pre##_ringbuf_discard_on_error_path_ok(ctxt *ctx)                                \
	{                                                                                             \
		struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);                            \
		if (!e)                                                                                   \
			return 0;                                                                             \
		if (bpf_get_prandom_u32() & 1) {                                                          \
			bpf_ringbuf_discard(e, 0);                                                            \
			return 1;                                                                             \
		}                                                                                         \
		e->len = 3;                                                                               \
		bpf_ringbuf_submit(e, 0);                                                                 \
		return 0;                                                                                 \
	}                                                                                             \
	SEC(sec) int pre##_ringbuf_leak_on_error_path_rej(ctxt *ctx)                                  \
	{                                                                                             \
		struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);                            \
		if (!e)                                                                                   \
			return 0;                                                                             \
		if (bpf_get_prandom_u32() & 1)                                                            \
			return 1;                                                                             \
		bpf_ringbuf_submit(e, 0);                                                                 \
		return 0;                                                                                 \
	}                                                                                             \
	SEC(sec) int pre##_ringbuf_write_after_submit_rej(ctxt *ctx)                                  \
	{                                                                                             \
		struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);                            \
		if (!e)                                                                                   \
			return 0;                                                                             \
		bpf_ringbuf_submit(e, 0);                                                                 \
		opaque(e)->len = 1;                                                                       \
		return 0;                                                                                 \
	}                                                                                             \
	SEC(sec) int pre##_ringbuf_write_past_struct_rej(ctxt *ctx)                                   \
	{                                                                                             \
		struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);                            \
		if (!e)                                                                                   \
			return 0;                                                                             \
		e->comm[opaque(16)] = 1;                                                                  \
		bpf_ringbuf_submit(e, 0);                                                                 \
		return 0;                                                                                 \
	}                                                                                             \
	SEC(sec) int pre##_ringbuf_unchecked_write_rej(ctxt *ctx)                                     \
	{                                                                                             \
		struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);                            \
		opaque(e)->len = 1;                                                                       \
		if (e)                                                                                    \
			bpf_ringbuf_submit(e, 0);                                                             \
		return 0;                                                                                 \
	}                                                                                             \
	SEC(sec) int pre##_ringbuf_output_stack_event_ok(ctxt *ctx)                                   \
	{                                                                                             \
		struct event e = {.pid = 1};                                                              \
		return bpf_ringbuf_output(&events, &e, sizeof(e), 0);                                     \
	}                                                                                             \
	SEC(sec) int pre##_ringbuf_comm_into_record_ok(ctxt *ctx)                                     \
	{                                                                                             \
		struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);                            \
		if (!e)                                                                                   \
			return 0;                                                                             \
		bpf_get_current_comm(e->comm, sizeof(e->comm));                                           \
		bpf_ringbuf_submit(e, 0);                                                                 \
		return 0;                                                                                 \
	}                                                                                             \
	SEC(sec) int pre##_ringbuf_comm_size_past_record_rej(ctxt *ctx)                               \
	{                                                                                             \
		struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);                            \
		if (!e)                                                                                   \
			return 0;                                                                             \
		bpf_get_current_comm(e->comm, opaque(sizeof(e->comm) + 1));                               \
		bpf_ringbuf_submit(e, 0);                                                                 \
		return 0;                                                                                 \
	}

RINGBUF_PROGS("socket", struct __sk_buff, socket)
RINGBUF_PROGS("xdp", struct xdp_md, xdp)
RINGBUF_PROGS("kprobe/do_nanosleep", struct pt_regs, kprobe)
char LICENSE[] SEC("license") = "GPL";
