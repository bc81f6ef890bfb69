/* Compile-latency subject (about 1,000 instructions): a fully unrolled keyed mix over the first
 * 384 bytes of the data area, with a data-dependent branch per round so that the code has jumps as
 * well as loads and ALU work. Also run as a benchmark, as straight-line code. */
#include "bench.h"

BENCH(big)
{
	const u64 *w = (const u64 *)DATA;
	u64 a = 0x243f6a8885a308d3ULL, b = 0x13198a2e03707344ULL;

#pragma clang loop unroll(full)
	for (u32 i = 0; i < 48; i++) {
		u64 x = w[i];
		a += x ^ b;
		b = (b << 13 | b >> 51) ^ a;
		if (x & 1)
			a ^= b >> 7;
		else
			b += a * 5;
	}
	return a ^ b;
}
