/* strcmp.c over a constant 16 strings (the first 16 of the bench's 64), so that the verifier can
 * bound every loop. With 64 strings the proof does not fit the kernel's limits: each of the 2,016
 * pairs leaves up to 33 pending branches (one per way out of the prefix loop) on the walk's stack,
 * beyond its 8,192. The form mode 'verified' accepts (raw, dataSize 64 + 64 * 32). */
#include "bench.h"

#define SLOT 32
#define N 16

/* Length of the common prefix of a and b (stops at a NUL or the end of the slot). */
INLINE u32 prefix(const u8 *a, const u8 *b)
{
	u32 k = 0;

	while (k < SLOT && a[k] && a[k] == b[k])
		k++;
	return k;
}

BENCH(strcmp_fixed)
{
	const u8 *s = DATA;
	u64 ordered = 0, common = 0;

	for (u32 i = 0; i < N; i++) {
		for (u32 j = i + 1; j < N; j++) {
			const u8 *a = s + i * SLOT, *b = s + j * SLOT;
			u32 k = prefix(a, b);
			common += k;
			if (k == SLOT || a[k] <= b[k])
				ordered++;
		}
	}
	return ordered | (common << 32);
}
