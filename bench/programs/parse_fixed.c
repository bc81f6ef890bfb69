/* parse.c with its frame count a constant (the input's PARAM(0), 64), so that the verifier can
 * bound the loop; every read is then proved inside its 128-byte slot from the length checks and
 * the IHL mask: the form mode 'verified' accepts (raw, dataSize 64 + 64 * 128). Otherwise the
 * same source as parse.c. */
#define BENCH_NAME parse_fixed
#define PARSE_N 64
#include "parse.c"
