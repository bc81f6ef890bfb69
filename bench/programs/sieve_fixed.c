/* sieve.c with its size a constant (the input's PARAM(0), 8192), so that every loop has a bound the
 * verifier can count and every index is known to stay in the data area: the form mode 'verified'
 * accepts (raw, dataSize 64 + 8192). Same work and result as sieve.c on the bench's input. */
#define BENCH_NAME sieve_fixed
#define SIEVE_N 8192
#include "sieve.c"
