/* strcmp.c over a constant 16 strings (the first 16 of the bench's 64), so that the verifier can
 * bound every loop. With 64 strings the proof does not fit the kernel's limits: each of the 2,016
 * pairs leaves up to 33 pending branches (one per way out of the prefix loop) on the walk's stack,
 * beyond its 8,192. The form mode 'verified' accepts (raw, dataSize 64 + 64 * 32). */
#define BENCH_NAME strcmp_fixed
#define STRCMP_N 16
#include "strcmp.c"
