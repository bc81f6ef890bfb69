/* sieve.c with its size a constant (the input's PARAM(0), 8192), so that every loop has a bound the
 * verifier can count and every index is known to stay in the data area: the form mode 'verified'
 * accepts (raw, dataSize 64 + 8192). Same work and result as sieve.c on the bench's input. */
#include "bench.h"

#define N 8192

BENCH(sieve_fixed)
{
	u8 *s = DATA;
	u64 count = 0;

	for (u32 i = 0; i < N; i++)
		s[i] = 1;
	s[0] = 0;
	s[1] = 0;
	for (u32 i = 2; i * i < N; i++) {
		if (!s[i])
			continue;
		for (u32 j = i * i; j < N; j += i)
			s[j] = 0;
	}
	for (u32 i = 0; i < N; i++)
		count += s[i];
	return count;
}
