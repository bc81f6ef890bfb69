/* Helpers under a proprietary license: the GPL-only ones are refused ("cannot call GPL-restricted
 * function from non-GPL compatible program"), the others load (gpl_helpers.c: the same bodies). */
#include "corpus.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 127 * sizeof(__u64));
	__uint(max_entries, 16);
} stacks SEC(".maps");

#define BODY_TRACE_PRINTK { char fmt[] = "x"; bpf_trace_printk(fmt, sizeof(fmt)); return 0; }
#define BODY_PROBE_READ { __u64 v = 0; bpf_probe_read_kernel(&v, sizeof(v), (void *)opaque(0UL)); return v; }
#define BODY_PROBE_READ_USER_STR { char s[16]; bpf_probe_read_user_str(s, sizeof(s), (void *)opaque(0UL)); return s[0]; }
#define BODY_PERF_OUTPUT { __u64 v = 1; bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &v, sizeof(v)); return 0; }
#define BODY_STACKID { return bpf_get_stackid(ctx, &stacks, 0); }
#define BODY_KTIME { return bpf_ktime_get_ns() & 1; }
#define BODY_PID { return bpf_get_current_pid_tgid() & 1; }
#define BODY_COMM { char c[16]; bpf_get_current_comm(c, sizeof(c)); return c[0]; }
#define BODY_PRANDOM { return bpf_get_prandom_u32() & 1; }
#define BODY_SEND_SIGNAL { return bpf_send_signal(0); }
#define BODY_CURRENT_TASK { return bpf_get_current_task() & 1; }

#define KPROBE_PROG(name, body) SEC("kprobe/do_nanosleep") int name(struct pt_regs *ctx) body
#define SOCKET_PROG(name, body) SEC("socket") int name(struct __sk_buff *ctx) body
#define XDP_PROG(name, body) SEC("xdp") int name(struct xdp_md *ctx) body
#define CAT3(a, b, c) a##b##c
#define XCAT3(a, b, c) CAT3(a, b, c)
#define G(name, kind) XCAT3(nongpl_, name, kind)
#define GPLONLY _rej
#define ANY _ok
#include "helpers_by_license.h"
char LICENSE[] SEC("license") = "Proprietary";
