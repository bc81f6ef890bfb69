/* String compare: PARAM(0) NUL-terminated strings in 32-byte slots, compared pairwise (every i < j);
 * returns the number of pairs in order plus, in the high half, the sum of the common prefix lengths. */
#include "bench.h"

#define SLOT 32

/* Length of the common prefix of a and b (stops at a NUL or the end of the slot). */
INLINE u32 prefix(const u8 *a, const u8 *b)
{
	u32 k = 0;

	while (k < SLOT && a[k] && a[k] == b[k])
		k++;
	return k;
}

/* The sizes, from the header; strcmp_fixed.c sets constants and includes this file. */
#ifndef BENCH_NAME
#define BENCH_NAME strcmp
#define STRCMP_N PARAM(0)
#endif

BENCH(BENCH_NAME)
{
	u32 n = STRCMP_N;
	const u8 *s = DATA;
	u64 ordered = 0, common = 0;

	for (u32 i = 0; i < n; i++) {
		for (u32 j = i + 1; j < n; j++) {
			const u8 *a = s + i * SLOT, *b = s + j * SLOT;
			u32 k = prefix(a, b);
			common += k;
			if (k == SLOT || a[k] <= b[k])
				ordered++;
		}
	}
	return ordered | (common << 32);
}
