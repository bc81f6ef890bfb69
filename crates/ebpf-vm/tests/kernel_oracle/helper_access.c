/*
 * Asks the running kernel, through the bpf() syscall, which program types may call which helper
 * and which helpers are GPL-only. For every helper of the UAPI header's list and every program
 * type below it loads `call <id>; r0 = 0; exit` with a verifier log and classifies the log:
 *   "unknown func" / "cannot use helper" / "invalid func" -> the type has no such helper ("-");
 *   otherwise the helper is callable: it is loaded again under a non-GPL license, and
 *   "cannot call GPL-restricted function" marks it GPL-only ("gpl"), else "ok".
 * The verifier checks that the helper exists for the type, then the license, and only then the
 * arguments, so a call with unset argument registers is enough to ask both questions.
 *
 * Output: a header line, then one line per helper: `<id> bpf_<name> <verdict per type>`.
 * Loads only: nothing is attached or pinned, and every loaded program is closed at once.
 * Needs root (or CAP_BPF + CAP_PERFMON + CAP_NET_ADMIN). Built with cc at test time.
 */
#include <errno.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NAME_OF(x) #x
static const char *const helper_names[] = { __BPF_FUNC_MAPPER(NAME_OF) };
#define HELPER_COUNT ((int)(sizeof(helper_names) / sizeof(helper_names[0])))

static const struct {
	const char *name;
	unsigned int type;
} prog_types[] = {
	{ "socket_filter", BPF_PROG_TYPE_SOCKET_FILTER },
	{ "kprobe", BPF_PROG_TYPE_KPROBE },
	{ "sched_cls", BPF_PROG_TYPE_SCHED_CLS },
	{ "tracepoint", BPF_PROG_TYPE_TRACEPOINT },
	{ "xdp", BPF_PROG_TYPE_XDP },
	{ "perf_event", BPF_PROG_TYPE_PERF_EVENT },
	{ "raw_tracepoint", BPF_PROG_TYPE_RAW_TRACEPOINT },
	{ "cgroup_skb", BPF_PROG_TYPE_CGROUP_SKB },
};
#define TYPE_COUNT ((int)(sizeof(prog_types) / sizeof(prog_types[0])))

static char log_buf[1 << 16];

/* 0: loaded or refused for another reason; 1: no such helper for the type; 2: GPL-only. */
static int try_load(unsigned int type, int id, const char *license)
{
	struct bpf_insn insns[3];
	union bpf_attr attr;
	int fd;

	memset(insns, 0, sizeof(insns));
	insns[0].code = BPF_JMP | BPF_CALL;
	insns[0].imm = id;
	insns[1].code = BPF_ALU64 | BPF_MOV | BPF_K;
	insns[1].dst_reg = BPF_REG_0;
	insns[2].code = BPF_JMP | BPF_EXIT;

	memset(&attr, 0, sizeof(attr));
	attr.prog_type = type;
	attr.insns = (uint64_t)(uintptr_t)insns;
	attr.insn_cnt = 3;
	attr.license = (uint64_t)(uintptr_t)license;
	attr.log_buf = (uint64_t)(uintptr_t)log_buf;
	attr.log_size = sizeof(log_buf);
	attr.log_level = 1;
	log_buf[0] = 0;
	fd = syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	if (strstr(log_buf, "unknown func") || strstr(log_buf, "cannot use helper") ||
	    strstr(log_buf, "invalid func"))
		return 1;
	if (strstr(log_buf, "cannot call GPL-restricted function"))
		return 2;
	if (errno == EPERM && log_buf[0] == 0)
		return -1;
	return 0;
}

int main(void)
{
	int id, t;

	printf("# id name");
	for (t = 0; t < TYPE_COUNT; t++)
		printf(" %s", prog_types[t].name);
	printf("\n");
	for (id = 1; id < HELPER_COUNT; id++) {
		printf("%d bpf_%s", id, helper_names[id]);
		for (t = 0; t < TYPE_COUNT; t++) {
			int r = try_load(prog_types[t].type, id, "GPL");
			if (r < 0) {
				fprintf(stderr, "bpf(BPF_PROG_LOAD) refused without a log: not permitted\n");
				return 2;
			}
			if (r == 1) {
				printf(" -");
				continue;
			}
			r = try_load(prog_types[t].type, id, "Proprietary");
			printf(r == 2 ? " gpl" : " ok");
		}
		printf("\n");
	}
	return 0;
}
