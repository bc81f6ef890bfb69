/* The kernel verifier as an oracle: loads one program through the bpf() syscall with a verifier
 * log, prints the verdict and the whole log, and closes the program again. Nothing is attached or
 * pinned. Built by the tests with `cc` (tests/verifier_support/oracle.rs).
 *
 *   kernel_load PROG_TYPE LOG_LEVEL FILE [MAP...]
 *
 * FILE holds the instruction slots, 8 bytes each, little-endian (as the ISA encodes them).
 * Each MAP is TYPE:KEY_SIZE:VALUE_SIZE:MAX_ENTRIES[:LOCK_OFFSET][/FLAGS]; the maps are created
 * in order (with FLAGS as their map_flags, e.g. 128 for BPF_F_RDONLY_PROG), and an lddw whose src
 * is 1 (BPF_PSEUDO_MAP_FD) or 2 (BPF_PSEUDO_MAP_VALUE) and whose imm is i is given the fd of
 * map i before the load. With LOCK_OFFSET the map gets BTF: an int key and a value struct of
 * VALUE_SIZE bytes holding a `struct bpf_spin_lock` at that offset (the kernel finds spin locks
 * through the map's BTF). A map of maps names its inner map template, an earlier map, after an
 * `@`: `12:4:4:2@0` is an array of maps whose inner maps are like map 0 (`inner_map_fd`).
 *
 * With KERNEL_LOAD_FUNCS=S0,S1,... (the first instruction slot of each function, 0 first) the
 * program gets BTF function info: each function a static `int fN(void)` (the kernel wants it
 * for function pointers, the callbacks of bpf_loop and its kin).
 *
 * With KERNEL_LOAD_RUN=HEX,HEX,... an accepted program is also test-run (BPF_PROG_TEST_RUN, one
 * repetition) once per packet, each given in hex (`-` for an empty one), and a line
 * `run RETVAL` (or `run error ERRNO_NAME`) per packet follows the verdict line, before the log.
 *
 * Output on stdout: one line `verdict accepted` or `verdict rejected ERRNO_NAME ERRNO`, then the
 * kernel's log as it wrote it. Exit status 0 after a verdict (either), 2 when something other than
 * the program's load failed (bad arguments, map creation refused: then stderr says why).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/bpf.h>
#include <linux/btf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LOG_SIZE (64u << 20)
#define MAX_MAPS 16

static long bpf(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

static int fail(const char *what)
{
	fprintf(stderr, "kernel_load: %s: %s\n", what, strerror(errno));
	return 2;
}

/* A BTF object with: 1 `int`, 2 `struct bpf_spin_lock { int val; }`, 3 `struct value` of
 * `value_size` bytes with member `lock` (type 2) at `lock_off`. Returns its fd, or -1. */
static int spin_lock_btf(unsigned value_size, unsigned lock_off)
{
	static const char strs[] = "\0int\0bpf_spin_lock\0val\0value\0lock";
	/* name offsets in strs */
	enum { S_INT = 1, S_LOCK_T = 5, S_VAL = 19, S_VALUE = 23, S_LOCK = 29 };
	uint32_t types[] = {
		/* 1: int, 4 bytes, signed, 32 bits */
		S_INT, (1u << 24), 4, (1u << 24) | 32,
		/* 2: struct bpf_spin_lock, 4 bytes, one member */
		S_LOCK_T, (4u << 24) | 1, 4, S_VAL, 1, 0,
		/* 3: struct value, value_size bytes, one member at lock_off bytes */
		S_VALUE, (4u << 24) | 1, value_size, S_LOCK, 2, lock_off * 8,
	};
	struct btf_header hdr = {
		.magic = 0xeB9F,
		.version = 1,
		.hdr_len = sizeof(struct btf_header),
		.type_off = 0,
		.type_len = sizeof(types),
		.str_off = sizeof(types),
		.str_len = sizeof(strs),
	};
	static unsigned char blob[sizeof(struct btf_header) + sizeof(types) + sizeof(strs)];
	memcpy(blob, &hdr, sizeof(hdr));
	memcpy(blob + sizeof(hdr), types, sizeof(types));
	memcpy(blob + sizeof(hdr) + sizeof(types), strs, sizeof(strs));
	union bpf_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.btf = (uint64_t)(uintptr_t)blob;
	attr.btf_size = sizeof(blob);
	return (int)bpf(BPF_BTF_LOAD, &attr);
}

#define MAX_FUNCS 64

/* Program BTF for `n` functions: 1 `int`, 2 `int (void)`, 3.. `static int fK(void)`, named
 * in `strs`. Returns its fd, or -1. */
static int funcs_btf(int n)
{
	static char strs[1 + 4 + MAX_FUNCS * 4];
	static uint32_t types[4 + 3 + MAX_FUNCS * 3];
	size_t s = 0, t = 0;
	strs[s++] = 0;
	memcpy(strs + s, "int", 4);
	uint32_t int_name = (uint32_t)s;
	s += 4;
	types[t++] = int_name;
	types[t++] = 1u << 24; /* BTF_KIND_INT */
	types[t++] = 4;
	types[t++] = (1u << 24) | 32;
	types[t++] = 0;
	types[t++] = 13u << 24; /* BTF_KIND_FUNC_PROTO, no parameters */
	types[t++] = 1;
	for (int k = 0; k < n; k++) {
		uint32_t name = (uint32_t)s;
		s += (size_t)sprintf(strs + s, "f%d", k) + 1;
		types[t++] = name;
		types[t++] = 12u << 24; /* BTF_KIND_FUNC, static linkage */
		types[t++] = 2;
	}
	struct btf_header hdr = {
		.magic = 0xeB9F,
		.version = 1,
		.hdr_len = sizeof(struct btf_header),
		.type_off = 0,
		.type_len = (uint32_t)(t * 4),
		.str_off = (uint32_t)(t * 4),
		.str_len = (uint32_t)s,
	};
	static unsigned char blob[sizeof(struct btf_header) + sizeof(types) + sizeof(strs)];
	memcpy(blob, &hdr, sizeof(hdr));
	memcpy(blob + sizeof(hdr), types, t * 4);
	memcpy(blob + sizeof(hdr) + t * 4, strs, s);
	union bpf_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.btf = (uint64_t)(uintptr_t)blob;
	attr.btf_size = (uint32_t)(sizeof(hdr) + t * 4 + s);
	return (int)bpf(BPF_BTF_LOAD, &attr);
}

/* One BPF_PROG_TEST_RUN of `fd` per packet in `list` (see KERNEL_LOAD_RUN above). */
static void test_runs(int fd, const char *list)
{
	static unsigned char data[4096], out[4096 + 512];
	while (list && *list) {
		size_t len = 0;
		const char *p = list;
		if (*p == '-')
			p++;
		while (*p && *p != ',' && len < sizeof(data)) {
			unsigned int byte;
			if (sscanf(p, "%2x", &byte) != 1)
				break;
			data[len++] = (unsigned char)byte;
			p += 2;
		}
		union bpf_attr attr;
		memset(&attr, 0, sizeof(attr));
		attr.test.prog_fd = (uint32_t)fd;
		attr.test.data_in = (uint64_t)(uintptr_t)data;
		attr.test.data_size_in = (uint32_t)len;
		attr.test.data_out = (uint64_t)(uintptr_t)out;
		attr.test.data_size_out = sizeof(out);
		attr.test.repeat = 1;
		if (bpf(BPF_PROG_TEST_RUN, &attr) == 0)
			printf("run %u\n", attr.test.retval);
		else
			printf("run error %s\n", strerrorname_np(errno) ? strerrorname_np(errno) : "?");
		list = *p == ',' ? p + 1 : p;
		if (*p && *p != ',')
			break;
	}
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: kernel_load PROG_TYPE LOG_LEVEL FILE [TYPE:KEY:VALUE:MAX...]\n");
		return 2;
	}
	unsigned prog_type = (unsigned)strtoul(argv[1], NULL, 0);
	unsigned log_level = (unsigned)strtoul(argv[2], NULL, 0);

	FILE *f = fopen(argv[3], "rb");
	if (!f)
		return fail(argv[3]);
	static struct bpf_insn insns[1u << 20];
	size_t n = fread(insns, sizeof(insns[0]), sizeof(insns) / sizeof(insns[0]), f);
	fclose(f);
	if (n == 0) {
		fprintf(stderr, "kernel_load: %s holds no instruction\n", argv[3]);
		return 2;
	}

	int map_fds[MAX_MAPS];
	int maps = 0;
	for (int a = 4; a < argc; a++) {
		unsigned type, key, value, max, lock_off;
		int inner = -1;
		char *at = strchr(argv[a], '@');
		if (at) {
			inner = atoi(at + 1);
			*at = 0;
			if (inner < 0 || inner >= maps) {
				fprintf(stderr, "kernel_load: inner map %d of %d\n", inner, maps);
				return 2;
			}
		}
		int fields = maps == MAX_MAPS ? 0 : sscanf(argv[a], "%u:%u:%u:%u:%u", &type, &key, &value, &max, &lock_off);
		if (fields != 4 && fields != 5) {
			fprintf(stderr, "kernel_load: bad map argument %s\n", argv[a]);
			return 2;
		}
		union bpf_attr attr;
		memset(&attr, 0, sizeof(attr));
		attr.map_type = type;
		attr.key_size = key;
		attr.value_size = value;
		attr.max_entries = max;
		const char *flags = strchr(argv[a], '/');
		if (flags)
			attr.map_flags = (uint32_t)strtoul(flags + 1, NULL, 0);
		if (inner >= 0)
			attr.inner_map_fd = map_fds[inner];
		if (fields == 5) {
			int btf = spin_lock_btf(value, lock_off);
			if (btf < 0)
				return fail("BTF for a spin lock");
			attr.btf_fd = btf;
			attr.btf_key_type_id = 1;
			attr.btf_value_type_id = 3;
		}
		snprintf(attr.map_name, sizeof(attr.map_name), "m%d", maps);
		int fd = (int)bpf(BPF_MAP_CREATE, &attr);
		if (fd < 0)
			return fail(argv[a]);
		map_fds[maps++] = fd;
	}
	for (size_t i = 0; i + 1 < n; i++) {
		if (insns[i].code == (BPF_LD | BPF_IMM | BPF_DW) &&
		    (insns[i].src_reg == BPF_PSEUDO_MAP_FD || insns[i].src_reg == BPF_PSEUDO_MAP_VALUE)) {
			if (insns[i].imm < 0 || insns[i].imm >= maps) {
				fprintf(stderr, "kernel_load: instruction %zu names map %d of %d\n", i, insns[i].imm, maps);
				return 2;
			}
			insns[i].imm = map_fds[insns[i].imm];
		}
	}

	char *log = calloc(1, LOG_SIZE);
	if (!log)
		return fail("log buffer");
	union bpf_attr attr;
	memset(&attr, 0, sizeof(attr));
	/* The upper 16 bits of the type argument: the expected attach type (BPF_XDP_DEVMAP). */
	attr.prog_type = prog_type & 0xffff;
	attr.expected_attach_type = prog_type >> 16;
	attr.insns = (uint64_t)(uintptr_t)insns;
	attr.insn_cnt = (uint32_t)n;
	/* The license the test asks for (GPL-only helpers), GPL by default. */
	const char *license = getenv("KERNEL_LOAD_LICENSE");
	attr.license = (uint64_t)(uintptr_t)(license ? license : "GPL");
	static struct bpf_func_info func_info[MAX_FUNCS];
	const char *funcs = getenv("KERNEL_LOAD_FUNCS");
	if (funcs && *funcs) {
		int n = 0;
		for (const char *p = funcs; *p && n < MAX_FUNCS; n++) {
			char *end;
			func_info[n].insn_off = (uint32_t)strtoul(p, &end, 0);
			func_info[n].type_id = 3 + (uint32_t)n;
			p = *end == ',' ? end + 1 : end;
		}
		int btf = funcs_btf(n);
		if (btf < 0)
			return fail("BTF for the functions");
		attr.prog_btf_fd = btf;
		attr.func_info = (uint64_t)(uintptr_t)func_info;
		attr.func_info_rec_size = sizeof(struct bpf_func_info);
		attr.func_info_cnt = n;
	}
	attr.log_level = log_level;
	attr.log_buf = (uint64_t)(uintptr_t)log;
	attr.log_size = LOG_SIZE;
	int fd = (int)bpf(BPF_PROG_LOAD, &attr);
	int err = errno;
	if (fd >= 0) {
		printf("verdict accepted\n");
		test_runs(fd, getenv("KERNEL_LOAD_RUN"));
		close(fd);
	} else {
		/* 524 is the kernel's own ENOTSUPP, which libc does not name. */
		const char *name = err == 524 ? "ENOTSUPP" : strerrorname_np(err);
		printf("verdict rejected %s %d\n", name ? name : "?", err);
	}
	fputs(log, stdout);
	for (int m = 0; m < maps; m++)
		close(map_fds[m]);
	free(log);
	return 0;
}
