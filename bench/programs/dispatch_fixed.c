/* dispatch.c with constant sizes: the bench's 256 instructions, run twice rather than 16 times, so
 * that the verifier can bound the loops. Every instruction leaves pending branches of the switch
 * on the walk's stack, and 16 rounds (4,096 instructions) go beyond the kernel's 8,192 of them.
 * The form mode 'verified' accepts (raw, dataSize 64 + 512). */
#define BENCH_NAME dispatch_fixed
#define DISPATCH_OPS 256
#define DISPATCH_ROUNDS 2
#include "dispatch.c"
