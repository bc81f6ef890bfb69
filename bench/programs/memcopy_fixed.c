/* memcopy.c with its length a constant (the input's PARAM(0), 8192 + 5), so that the verifier can
 * bound its loops and indices: the form mode 'verified' accepts (raw, dataSize 64 + 8200 + 8197).
 * Same work and result as memcopy.c on the bench's input. */
#include "bench.h"

#define LEN (8192 + 5)

BENCH(memcopy_fixed)
{
	u8 *src = DATA;
	u8 *dst = src + ((LEN + 7) & ~7u);
	u64 h = 0xcbf29ce484222325ULL;
	u32 i = 0;

	for (; i + 8 <= LEN; i += 8)
		*(u64 *)(dst + i) = *(u64 *)(src + i);
	for (; i < LEN; i++)
		dst[i] = src[i];
	for (i = 0; i + 8 <= LEN; i += 8)
		h = (h ^ *(u64 *)(dst + i)) * 0x100000001b3ULL;
	for (; i < LEN; i++)
		h = (h ^ dst[i]) * 0x100000001b3ULL;
	return h;
}
