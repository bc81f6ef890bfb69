/* Shared conventions of the benchmark programs.
 *
 * Each program is one function taking a single pointer `mem` to a buffer the bench fills in: a
 * 64-byte header of u32 parameters, then the program's data from offset 64. Only r1 is used, so the
 * same bytes run unchanged on our engine (r1 = data), on rbpf's EbpfVmRaw (r1 = mem) and natively.
 *
 * For BPF the function goes into its own section "bench" (extracted as raw bytecode by build.sh);
 * every other function is always_inline because rbpf does not run bpf-to-bpf calls. Natively the
 * same source becomes `u64 bench_<name>(u8 *mem)` in a shared library the bench loads. */
#ifndef BENCH_H
#define BENCH_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

#if defined(__bpf__)
#define BENCH(name) __attribute__((section("bench"), used)) u64 name(u8 *mem)
#else
#define BENCH_SYMBOL(name) u64 bench_##name(u8 *mem)
#define BENCH(name) BENCH_SYMBOL(name)
#endif

#define INLINE static inline __attribute__((always_inline))

/* A program's `_fixed.c` form (the constant sizes mode 'verified' can bound) is the same source:
 * it defines BENCH_NAME and the program's size macros, then includes the original, which falls
 * back to its own name and to sizes read from the header. */

/* Header fields: the n-th u32 parameter. */
#define PARAM(n) (((u32 *)mem)[n])
#define DATA (mem + 64)

#endif
