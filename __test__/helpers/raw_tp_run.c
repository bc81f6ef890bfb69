/* BPF_PROG_TEST_RUN of a pinned raw tracepoint program with the given arguments as its context
 * (bpftool cannot: it always passes a repeat count, which raw_tp test runs refuse). Prints the
 * return value as an unsigned decimal. Usage: raw_tp_run PIN [ARG...] (at most 12 arguments). */
#include <bpf/bpf.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	unsigned long long args[12] = { 0 };
	int n = argc - 2;
	int fd, err;

	if (argc < 2 || n > 12) {
		fprintf(stderr, "usage: raw_tp_run PIN [ARG...]\n");
		return 2;
	}
	for (int i = 0; i < n; i++)
		args[i] = strtoull(argv[i + 2], NULL, 0);
	fd = bpf_obj_get(argv[1]);
	if (fd < 0) {
		perror("bpf_obj_get");
		return 1;
	}
	LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = args, .ctx_size_in = n * sizeof(args[0]));
	err = bpf_prog_test_run_opts(fd, &opts);
	if (err) {
		perror("BPF_PROG_TEST_RUN");
		return 1;
	}
	printf("%u\n", opts.retval);
	return 0;
}
