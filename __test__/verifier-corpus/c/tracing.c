/* Tracing programs as people write them: kprobe arguments through PT_REGS, reading kernel and
 * user memory with the probe_read helpers into the stack, strings, and the sizes those helpers
 * accept; tracepoint and raw_tp contexts. */
#include "corpus.h"

SEC("kprobe/do_nanosleep")
int BPF_KPROBE(kprobe_arg1_read_ok, void *req)
{
	return PT_REGS_PARM2(ctx) == 0;
}

SEC("kprobe/do_nanosleep")
int kprobe_probe_read_kernel_arg_ok(struct pt_regs *ctx)
{
	__u64 v = 0;
	bpf_probe_read_kernel(&v, sizeof(v), (void *)PT_REGS_PARM1(ctx));
	return v & 1;
}

SEC("kprobe/do_nanosleep")
int kprobe_probe_read_into_ctx_rej(struct pt_regs *ctx)
{
	bpf_probe_read_kernel(ctx, 8, (void *)PT_REGS_PARM1(ctx));
	return 0;
}

SEC("kprobe/do_nanosleep")
int kprobe_probe_read_size_var_masked_ok(struct pt_regs *ctx)
{
	char buf[64];
	__u32 n = bpf_get_prandom_u32() & 63;
	bpf_probe_read_kernel(buf, n, (void *)PT_REGS_PARM1(ctx));
	return buf[0];
}

SEC("kprobe/do_nanosleep")
int kprobe_probe_read_size_var_unbounded_rej(struct pt_regs *ctx)
{
	char buf[64];
	__u32 n = opaque(bpf_get_prandom_u32());
	bpf_probe_read_kernel(buf, n, (void *)PT_REGS_PARM1(ctx));
	return buf[0];
}

SEC("kprobe/do_nanosleep")
int kprobe_probe_read_size_65_into_64_rej(struct pt_regs *ctx)
{
	char buf[64];
	bpf_probe_read_kernel(buf, opaque(65), (void *)PT_REGS_PARM1(ctx));
	return buf[0];
}

SEC("kprobe/do_nanosleep")
int kprobe_probe_read_str_user_ok(struct pt_regs *ctx)
{
	char s[32];
	long n = bpf_probe_read_user_str(s, sizeof(s), (void *)PT_REGS_PARM1(ctx));
	return n > 0 ? s[0] : 0;
}

SEC("kprobe/do_nanosleep")
int kprobe_probe_read_result_ptr_deref_rej(struct pt_regs *ctx)
{
	__u64 p = 0;
	bpf_probe_read_kernel(&p, sizeof(p), (void *)PT_REGS_PARM1(ctx));
	return *(__u32 *)opaque(p);
}

SEC("kprobe/do_nanosleep")
int kprobe_deref_arg_directly_rej(struct pt_regs *ctx)
{
	return *(__u32 *)PT_REGS_PARM1(ctx);
}

SEC("kprobe/do_nanosleep")
int kprobe_comm_and_pid_ok(struct pt_regs *ctx)
{
	char comm[16];
	bpf_get_current_comm(comm, sizeof(comm));
	return (bpf_get_current_pid_tgid() >> 32) + comm[0];
}

struct sys_enter_args {
	__u64 common;
	long id;
	unsigned long args[6];
};

SEC("tracepoint/raw_syscalls/sys_enter")
int tracepoint_sys_enter_id_ok(struct sys_enter_args *ctx)
{
	return ctx->id == 35;
}

SEC("tracepoint/raw_syscalls/sys_enter")
int tracepoint_sys_enter_common_header_rej(struct sys_enter_args *ctx)
{
	return ctx->common == 0;
}

SEC("tracepoint/raw_syscalls/sys_enter")
int tracepoint_sys_enter_args_loop_ok(struct sys_enter_args *ctx)
{
	unsigned long s = 0;
	for (int i = 0; i < 6; i++)
		s += ctx->args[i];
	return s & 1;
}

SEC("raw_tp/sys_enter")
int raw_tp_sys_enter_args_ok(struct bpf_raw_tracepoint_args *ctx)
{
	return ctx->args[1] == 35;
}

SEC("raw_tp/sys_enter")
int raw_tp_write_args_rej(struct bpf_raw_tracepoint_args *ctx)
{
	ctx->args[0] = 0;
	return 0;
}

SEC("raw_tp/sys_enter")
int raw_tp_probe_read_regs_ok(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	__u64 di = 0;
	bpf_probe_read_kernel(&di, sizeof(di), &regs->rdi);
	return di & 1;
}
char LICENSE[] SEC("license") = "GPL";
