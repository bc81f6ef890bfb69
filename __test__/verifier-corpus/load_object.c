/* The kernel verifier as the corpus's oracle for C objects: for each program of OBJ in turn, opens
 * the object afresh with libbpf, marks only that program for loading (the others' autoload off),
 * loads it with a level-1 verifier log and closes the object again, so every program gets its own
 * verdict even when a neighbour is rejected. Nothing is attached or pinned; maps libbpf creates for
 * a load are freed with the object.
 *
 *   load_object OBJ
 *
 * Output: one line per program, tab-separated: NAME SECTION VERDICT ERRNO_NAME, then the log's
 * lines each prefixed with "\t| ", so a reader can split programs apart without parsing JSON here.
 * VERDICT is `accepted`, `rejected` (the kernel refused the load: ERRNO_NAME is its errno) or
 * `libbpf` (libbpf failed before the kernel saw the program; the log holds libbpf's messages).
 */
#define _GNU_SOURCE
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_SIZE (16u << 20)

static char libbpf_messages[1 << 16];
static size_t libbpf_used;

static int keep_message(enum libbpf_print_level level, const char *fmt, va_list args)
{
	(void)level;
	if (libbpf_used < sizeof(libbpf_messages) - 1) {
		int n = vsnprintf(libbpf_messages + libbpf_used, sizeof(libbpf_messages) - libbpf_used, fmt, args);
		if (n > 0)
			libbpf_used += (size_t)n;
		if (libbpf_used > sizeof(libbpf_messages) - 1)
			libbpf_used = sizeof(libbpf_messages) - 1;
	}
	return 0;
}

static void print_prefixed(const char *text)
{
	const char *p = text;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		printf("\t| %.*s\n", (int)len, p);
		p += len + (nl ? 1 : 0);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: load_object OBJ\n");
		return 2;
	}
	libbpf_set_print(keep_message);
	struct bpf_object *probe = bpf_object__open_file(argv[1], NULL);
	if (!probe) {
		fprintf(stderr, "load_object: cannot open %s: %s\n%s", argv[1], strerror(errno), libbpf_messages);
		return 2;
	}
	int count = 0;
	struct bpf_program *p;
	bpf_object__for_each_program(p, probe) count++;
	bpf_object__close(probe);

	char *log = malloc(LOG_SIZE);
	if (!log)
		return 2;
	for (int target = 0; target < count; target++) {
		struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
		if (!obj) {
			fprintf(stderr, "load_object: cannot reopen %s\n", argv[1]);
			return 2;
		}
		struct bpf_program *chosen = NULL;
		int i = 0;
		bpf_object__for_each_program(p, obj) {
			if (i++ == target) {
				chosen = p;
				bpf_program__set_autoload(p, true);
			} else {
				bpf_program__set_autoload(p, false);
			}
		}
		log[0] = 0;
		libbpf_used = 0;
		libbpf_messages[0] = 0;
		bpf_program__set_log_buf(chosen, log, LOG_SIZE);
		bpf_program__set_log_level(chosen, 1);
		int err = bpf_object__load(obj);
		const char *verdict = "accepted";
		const char *errname = "-";
		if (err) {
			/* A program fd means the kernel saw it; libbpf failures leave the log buffer empty. */
			verdict = log[0] ? "rejected" : "libbpf";
			/* 524 is the kernel's own ENOTSUPP, which libc does not name. */
			errname = -err == 524 ? "ENOTSUPP" : strerrorname_np(-err) ? strerrorname_np(-err) : "?";
		}
		printf("%s\t%s\t%s\t%s\n", bpf_program__name(chosen), bpf_program__section_name(chosen), verdict, errname);
		print_prefixed(log[0] ? log : (err ? libbpf_messages : ""));
		bpf_object__close(obj);
	}
	free(log);
	return 0;
}
