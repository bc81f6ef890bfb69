/* The kernel as the oracle of perf event output: opens OBJECT with libbpf, loads it (nothing is
 * attached or pinned), opens a perf buffer (libbpf's perf_buffer__new, 8 pages per CPU) on its map
 * "events", test-runs PROG once on each PACKET (hex) and prints, per run, "retval N" and then one
 * "sample CPU HEX" line per record and "lost CPU N" per lost-sample record the ring held.
 * Usage: perf_sample_run OBJECT PROG PACKET... */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_sample(void *cookie, int cpu, void *data, __u32 size)
{
	(void)cookie;
	printf("sample %d ", cpu);
	for (__u32 i = 0; i < size; i++)
		printf("%02x", ((unsigned char *)data)[i]);
	printf("\n");
}

static void on_lost(void *cookie, int cpu, __u64 n)
{
	(void)cookie;
	printf("lost %d %llu\n", cpu, (unsigned long long)n);
}

static int unhex(const char *s, unsigned char *out, size_t max)
{
	size_t n = strlen(s) / 2;
	if (n > max)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned int b;
		if (sscanf(s + 2 * i, "%2x", &b) != 1)
			return -1;
		out[i] = b;
	}
	return (int)n;
}

int main(int argc, char **argv)
{
	static unsigned char packet[4096];
	struct bpf_object *obj;
	struct bpf_program *prog;
	struct bpf_map *map;
	struct perf_buffer *pb;

	if (argc < 4) {
		fprintf(stderr, "usage: perf_sample_run OBJECT PROG PACKET...\n");
		return 2;
	}
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj || bpf_object__load(obj)) {
		fprintf(stderr, "cannot load %s\n", argv[1]);
		return 1;
	}
	prog = bpf_object__find_program_by_name(obj, argv[2]);
	map = bpf_object__find_map_by_name(obj, "events");
	if (!prog || !map) {
		fprintf(stderr, "no program %s or map events\n", argv[2]);
		return 1;
	}
	pb = perf_buffer__new(bpf_map__fd(map), 8, on_sample, on_lost, NULL, NULL);
	if (!pb) {
		perror("perf_buffer__new");
		return 1;
	}
	for (int i = 3; i < argc; i++) {
		int len = unhex(argv[i], packet, sizeof(packet));
		if (len < 0) {
			fprintf(stderr, "bad packet %s\n", argv[i]);
			return 2;
		}
		LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = packet, .data_size_in = len, .repeat = 1);
		if (bpf_prog_test_run_opts(bpf_program__fd(prog), &opts)) {
			perror("BPF_PROG_TEST_RUN");
			return 1;
		}
		printf("retval %u\n", opts.retval);
		perf_buffer__consume(pb);
		fflush(stdout);
	}
	perf_buffer__free(pb);
	bpf_object__close(obj);
	return 0;
}
