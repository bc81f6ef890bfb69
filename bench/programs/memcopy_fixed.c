/* memcopy.c with its length a constant (the input's PARAM(0), 8192 + 5), so that the verifier can
 * bound its loops and indices: the form mode 'verified' accepts (raw, dataSize 64 + 8200 + 8197).
 * Same work and result as memcopy.c on the bench's input. */
#define BENCH_NAME memcopy_fixed
#define MEMCOPY_LEN (8192 + 5)
#include "memcopy.c"
