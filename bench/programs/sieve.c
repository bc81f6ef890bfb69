/* Loop-heavy: sieve of Eratosthenes over PARAM(0) bytes of the data area; returns how many primes
 * are below PARAM(0). Re-initialises its array on every run, so runs are independent. */
#include "bench.h"

/* The sizes, from the header; sieve_fixed.c sets constants and includes this file. */
#ifndef BENCH_NAME
#define BENCH_NAME sieve
#define SIEVE_N PARAM(0)
#endif

BENCH(BENCH_NAME)
{
	u32 n = SIEVE_N;
	u8 *s = DATA;
	u64 count = 0;

	for (u32 i = 0; i < n; i++)
		s[i] = 1;
	s[0] = 0;
	s[1] = 0;
	for (u32 i = 2; i * i < n; i++) {
		if (!s[i])
			continue;
		for (u32 j = i * i; j < n; j += i)
			s[j] = 0;
	}
	for (u32 i = 0; i < n; i++)
		count += s[i];
	return count;
}
