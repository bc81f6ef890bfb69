/* Global functions' arguments: what a call may pass for each BTF argument type (any scalar for
 * an int, NULL or memory of the pointed-to type's size for a pointer, the context for a pointer
 * to the context struct), prototypes the kernel cannot use, and global functions that call
 * global functions. Each global function is verified once, on its own, from its prototype. */
#include "corpus.h"

#define __arg_nonnull __attribute__((btf_decl_tag("arg:nonnull")))

struct pair {
	int a, b;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct pair);
	__uint(max_entries, 4);
} pairs SEC(".maps");

__noinline int ga_read_checked(int *p)
{
	return p ? *p : 0;
}

__noinline int ga_sum_pair(struct pair *p)
{
	if (!p)
		return 0;
	return p->a + p->b;
}

__noinline int ga_scale(long x)
{
	return x * 3;
}

__noinline int ga_store(int *p)
{
	if (p)
		*p = 7;
	return 0;
}

__noinline void ga_void_store(int *p)
{
	if (p)
		*p = 9;
}

__noinline int ga_outer(int *p)
{
	return ga_read_checked(p) + ga_scale(2);
}

__noinline int ga_nonnull_read(int *p __arg_nonnull)
{
	return *p;
}

__noinline int *ga_returns_pointer(int *p)
{
	return opaque(p);
}

__noinline int ga_void_pointer(void *p)
{
	return p != 0;
}

#define GA_PROGS(sec, ctxt, pre)                                                                \
	SEC(sec) int pre##_ga_null_for_pointer_ok(ctxt *ctx) { return ga_read_checked(0); }          \
	SEC(sec) int pre##_ga_map_value_for_pointer_ok(ctxt *ctx)                                   \
	{                                                                                           \
		__u32 k = 0;                                                                            \
		struct pair *v = bpf_map_lookup_elem(&pairs, &k);                                        \
		return v ? ga_sum_pair(v) : 0;                                                          \
	}                                                                                           \
	SEC(sec) int pre##_ga_map_value_or_null_for_pointer_ok(ctxt *ctx)                           \
	{                                                                                           \
		__u32 k = 0;                                                                            \
		return ga_sum_pair(bpf_map_lookup_elem(&pairs, &k));                                    \
	}                                                                                           \
	SEC(sec) int pre##_ga_stack_too_small_for_struct_rej(ctxt *ctx)                             \
	{                                                                                           \
		int v = 1;                                                                              \
		return ga_sum_pair((struct pair *)&v);                                                   \
	}                                                                                           \
	SEC(sec) int pre##_ga_scalar_for_pointer_rej(ctxt *ctx)                                     \
	{                                                                                           \
		return ga_read_checked((int *)(long)(bpf_get_prandom_u32() | 1));                        \
	}                                                                                           \
	SEC(sec) int pre##_ga_pointer_for_scalar_rej(ctxt *ctx)                                     \
	{                                                                                           \
		int v = 1;                                                                              \
		return ga_scale((long)&v);                                                              \
	}                                                                                           \
	SEC(sec) int pre##_ga_store_through_argument_ok(ctxt *ctx)                                  \
	{                                                                                           \
		int v = 0;                                                                              \
		ga_store(&v);                                                                           \
		return v;                                                                               \
	}                                                                                           \
	SEC(sec) int pre##_ga_void_function_rej(ctxt *ctx)                                           \
	{                                                                                           \
		int v = 0;                                                                              \
		ga_void_store(&v);                                                                      \
		return v;                                                                               \
	}                                                                                           \
	SEC(sec) int pre##_ga_global_calls_global_ok(ctxt *ctx)                                     \
	{                                                                                           \
		int v = 5;                                                                              \
		return ga_outer(&v);                                                                    \
	}                                                                                           \
	SEC(sec) int pre##_ga_nonnull_given_stack_ok(ctxt *ctx)                                     \
	{                                                                                           \
		int v = 5;                                                                              \
		return ga_nonnull_read(&v);                                                             \
	}                                                                                           \
	SEC(sec) int pre##_ga_nonnull_given_map_value_or_null_ok(ctxt *ctx)                        \
	{                                                                                           \
		__u32 k = 0;                                                                            \
		return ga_nonnull_read((int *)bpf_map_lookup_elem(&pairs, &k));                         \
	}                                                                                           \
	SEC(sec) int pre##_ga_returns_pointer_rej(ctxt *ctx)                                        \
	{                                                                                           \
		int v = 5;                                                                              \
		int *q = ga_returns_pointer(&v);                                                        \
		return q ? *q : 0;                                                                      \
	}                                                                                           \
	SEC(sec) int pre##_ga_void_pointer_argument_rej(ctxt *ctx)                                  \
	{                                                                                           \
		int v = 5;                                                                              \
		return ga_void_pointer(&v);                                                             \
	}                                                                                           \
	SEC(sec) int pre##_ga_ctx_for_int_pointer_rej(ctxt *ctx) { return ga_read_checked((int *)ctx); }

GA_PROGS("socket", struct __sk_buff, socket)
GA_PROGS("xdp", struct xdp_md, xdp)
GA_PROGS("kprobe/do_nanosleep", struct pt_regs, kprobe)
char LICENSE[] SEC("license") = "GPL";
