/* Memory-heavy: copies PARAM(0) bytes from the data area to the 8-byte aligned area right after it,
 * eight bytes at a time with a byte tail, then folds the copy into an FNV-style hash so that the
 * result depends on every copied byte. */
#include "bench.h"

/* The sizes, from the header; memcopy_fixed.c sets constants and includes this file. */
#ifndef BENCH_NAME
#define BENCH_NAME memcopy
#define MEMCOPY_LEN PARAM(0)
#endif

BENCH(BENCH_NAME)
{
	u32 len = MEMCOPY_LEN;
	u8 *src = DATA;
	u8 *dst = src + ((len + 7) & ~7u);
	u64 h = 0xcbf29ce484222325ULL;
	u32 i = 0;

	for (; i + 8 <= len; i += 8)
		*(u64 *)(dst + i) = *(u64 *)(src + i);
	for (; i < len; i++)
		dst[i] = src[i];
	for (i = 0; i + 8 <= len; i += 8)
		h = (h ^ *(u64 *)(dst + i)) * 0x100000001b3ULL;
	for (; i < len; i++)
		h = (h ^ dst[i]) * 0x100000001b3ULL;
	return h;
}
