/* The context structs CO-RE programs commonly relocate against, for machines without kernel BTF:
 * the UAPI ones from linux/bpf.h and linux/bpf_perf_event.h as the kernel lays them out, and the
 * kernel's struct pt_regs for x86-64 (register names as vmlinux.h has them: di, si, ...) with
 * arm64's struct user_pt_regs (what libbpf's bpf_tracing.h reads on arm64). gen.sh compiles this
 * with clang-19 and writes its BTF into ts/btf/uapi-context.ts. */
#include <linux/types.h>
#include <linux/bpf.h>

/* arch/x86/include/asm/ptrace.h (kernel view, x86-64): 21 eight-byte slots. */
struct pt_regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8;
	unsigned long ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
};

/* arch/arm64/include/uapi/asm/ptrace.h. */
struct user_pt_regs {
	__u64 regs[31];
	__u64 sp;
	__u64 pc;
	__u64 pstate;
};

/* include/uapi/linux/bpf_perf_event.h, with x86-64's bpf_user_pt_regs_t (struct pt_regs). */
struct bpf_perf_event_data {
	struct pt_regs regs;
	__u64 sample_period;
	__u64 addr;
};

/* One function naming every type (held by value in one struct: BPF functions take at most five
 * arguments, and a pointer alone would only give a forward declaration),
 * so that clang emits their full BTF. */
struct uapi_context_types {
	struct __sk_buff skb;
	struct xdp_md xdp;
	struct bpf_sock_ops sock_ops;
	struct sk_msg_md msg;
	struct pt_regs regs;
	struct user_pt_regs user_regs;
	struct bpf_perf_event_data perf;
};

int uapi_context_types(struct uapi_context_types *types)
{
	return 0;
}
