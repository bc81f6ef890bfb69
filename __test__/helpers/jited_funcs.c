/* The kernel as the oracle of how a program's JIT code is cut into functions: opens OBJECT with
 * libbpf, loads it (nothing is attached or pinned) and prints, for each program, what
 * BPF_OBJ_GET_INFO_BY_FD says of its JIT images: one "func NAME LEN" line per image (its symbol
 * looked up in /proc/kallsyms by the address in jited_ksyms, its length from jited_func_lens), in
 * the kernel's order, then one "line FUNC INSN LINE COL OFF" line per line info record: the image
 * whose code holds the record's jited address, the record's instruction, source line and column,
 * and its offset in that image; then "xlated HEX", the instructions as the kernel dumps them, and one
 * "finfo INSN" line per function (where its instructions start there).
 * Usage: jited_funcs OBJECT */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int symbol_at(unsigned long long addr, char *name, size_t size)
{
	FILE *f = fopen("/proc/kallsyms", "r");
	char line[512];
	int found = 0;

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned long long a;
		char type, sym[256];

		if (sscanf(line, "%llx %c %255s", &a, &type, sym) == 3 && a == addr) {
			snprintf(name, size, "%s", sym);
			found = 1;
		}
	}
	fclose(f);
	return found;
}

static int dump(struct bpf_program *prog)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	int fd = bpf_program__fd(prog);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -1;
	__u32 nfunc = info.nr_jited_ksyms, nlens = info.nr_jited_func_lens;
	__u32 nline = info.nr_line_info, njline = info.nr_jited_line_info;
	__u32 line_rec = info.line_info_rec_size;
	__u32 nfinfo = info.nr_func_info, finfo_rec = info.func_info_rec_size;
	__u32 xlated_len = info.xlated_prog_len;
	unsigned char *xlated = calloc(xlated_len + 1, 1);
	struct bpf_func_info *finfo = calloc(nfinfo + 1, finfo_rec ? finfo_rec : sizeof(*finfo));
	__u64 *ksyms = calloc(nfunc + 1, sizeof(__u64));
	__u32 *lens = calloc(nlens + 1, sizeof(__u32));
	__u64 *jlines = calloc(njline + 1, sizeof(__u64));
	struct bpf_line_info *lines = calloc(nline + 1, line_rec ? line_rec : sizeof(*lines));

	memset(&info, 0, sizeof(info));
	info.nr_jited_ksyms = nfunc;
	info.jited_ksyms = (__u64)(unsigned long)ksyms;
	info.nr_jited_func_lens = nlens;
	info.jited_func_lens = (__u64)(unsigned long)lens;
	info.nr_line_info = nline;
	info.line_info_rec_size = line_rec;
	info.line_info = (__u64)(unsigned long)lines;
	info.nr_jited_line_info = njline;
	info.jited_line_info_rec_size = sizeof(__u64);
	info.jited_line_info = (__u64)(unsigned long)jlines;
	info.nr_func_info = nfinfo;
	info.func_info_rec_size = finfo_rec;
	info.func_info = (__u64)(unsigned long)finfo;
	info.xlated_prog_len = xlated_len;
	info.xlated_prog_insns = (__u64)(unsigned long)xlated;
	len = sizeof(info);
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -1;
	printf("prog %s\n", bpf_program__name(prog));
	for (__u32 i = 0; i < nfunc && i < nlens; i++) {
		char name[256] = "?";

		symbol_at(ksyms[i], name, sizeof(name));
		printf("func %s %u\n", name, lens[i]);
	}
	for (__u32 k = 0; k < nline && k < njline; k++) {
		struct bpf_line_info *li = (void *)((char *)lines + (size_t)k * line_rec);

		for (__u32 i = 0; i < nfunc && i < nlens; i++) {
			if (jlines[k] >= ksyms[i] && jlines[k] < ksyms[i] + lens[i]) {
				printf("line %u %u %u %u %llu\n", i, li->insn_off, li->line_col >> 10,
				       li->line_col & 0x3ff, (unsigned long long)(jlines[k] - ksyms[i]));
				break;
			}
		}
	}
	printf("xlated ");
	for (__u32 i = 0; i < xlated_len; i++)
		printf("%02x", xlated[i]);
	printf("\n");
	for (__u32 i = 0; i < nfinfo; i++)
		printf("finfo %u\n", ((struct bpf_func_info *)((char *)finfo + (size_t)i * finfo_rec))->insn_off);
	free(xlated);
	free(finfo);
	free(ksyms);
	free(lens);
	free(jlines);
	free(lines);
	return 0;
}

int main(int argc, char **argv)
{
	struct bpf_object *obj;
	struct bpf_program *prog;
	int err = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: jited_funcs OBJECT\n");
		return 2;
	}
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj || bpf_object__load(obj)) {
		fprintf(stderr, "cannot load %s\n", argv[1]);
		return 1;
	}
	bpf_object__for_each_program(prog, obj)
	{
		if (dump(prog))
			err = 1;
	}
	bpf_object__close(obj);
	return err;
}
