/*
 * Lets the running kernel answer questions about its jhash2, through a bloom filter map: with one
 * hash function (map_extra 1), a zero seed (BPF_F_ZERO_SEED) and max_entries 1, the filter is one
 * 64-bit word and a value sets bit jhash2(value, value_size / 4, 0) & 63 (kernel/bpf/bloom_filter.c;
 * value sizes that are multiples of 4 use jhash2, the hash bpf_get_stackid gives stacks).
 *
 * Usage: bloom_jhash X Y1 Y2 ...   (hex strings of equal even length, value bytes in memory order)
 * Pushes X into a new filter, then prints one line per Y: 1 if the kernel says Y may be present
 * (its bit is X's), 0 if not. Exit 2 when the syscall itself is refused. Nothing is pinned; the map
 * is closed at exit. Needs root (or CAP_BPF). Built with cc at test time.
 */
#include <errno.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static long sys_bpf(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

static int parse_hex(const char *s, unsigned char *out, size_t max)
{
	size_t n = strlen(s);
	if (n % 2 || n / 2 > max)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned int b;
		if (sscanf(s + 2 * i, "%2x", &b) != 1)
			return -1;
		out[i] = (unsigned char)b;
	}
	return (int)(n / 2);
}

int main(int argc, char **argv)
{
	unsigned char x[512], y[512];
	union bpf_attr attr;
	int len, fd;

	if (argc < 2 || (len = parse_hex(argv[1], x, sizeof(x))) <= 0) {
		fprintf(stderr, "usage: bloom_jhash X Y...\n");
		return 1;
	}
	memset(&attr, 0, sizeof(attr));
	attr.map_type = BPF_MAP_TYPE_BLOOM_FILTER;
	attr.key_size = 0;
	attr.value_size = len;
	attr.max_entries = 1;
	attr.map_flags = BPF_F_ZERO_SEED;
	attr.map_extra = 1;
	fd = (int)sys_bpf(BPF_MAP_CREATE, &attr);
	if (fd < 0) {
		fprintf(stderr, "map create: %s\n", strerror(errno));
		return 2;
	}
	memset(&attr, 0, sizeof(attr));
	attr.map_fd = fd;
	attr.value = (uint64_t)(uintptr_t)x;
	attr.flags = BPF_ANY;
	if (sys_bpf(BPF_MAP_UPDATE_ELEM, &attr) < 0) {
		fprintf(stderr, "push: %s\n", strerror(errno));
		return 1;
	}
	for (int i = 2; i < argc; i++) {
		if (parse_hex(argv[i], y, sizeof(y)) != len) {
			fprintf(stderr, "value %d: not %d bytes of hex\n", i - 1, len);
			return 1;
		}
		memset(&attr, 0, sizeof(attr));
		attr.map_fd = fd;
		attr.value = (uint64_t)(uintptr_t)y;
		if (sys_bpf(BPF_MAP_LOOKUP_ELEM, &attr) == 0)
			puts("1");
		else if (errno == ENOENT)
			puts("0");
		else {
			fprintf(stderr, "peek: %s\n", strerror(errno));
			return 1;
		}
	}
	close(fd);
	return 0;
}
