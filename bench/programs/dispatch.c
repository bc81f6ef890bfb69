/* Switch-heavy dispatcher: a tiny accumulator machine whose PARAM(0) two-byte instructions
 * (opcode, operand) sit in the data area; the code runs PARAM(1) times over. Sixteen cases, each a
 * different operation on the machine state, so the switch cannot become a lookup table. */
#include "bench.h"

/* The sizes, from the header; dispatch_fixed.c sets constants and includes this file. */
#ifndef BENCH_NAME
#define BENCH_NAME dispatch
#define DISPATCH_OPS PARAM(0)
#define DISPATCH_ROUNDS PARAM(1)
#endif

BENCH(BENCH_NAME)
{
	u32 n = DISPATCH_OPS, rounds = DISPATCH_ROUNDS;
	const u8 *code = DATA;
	u64 a = 1, b = 2, c = 0x9e3779b97f4a7c15ULL, d = 0;

	for (u32 r = 0; r < rounds; r++) {
		for (u32 pc = 0; pc < n; pc++) {
			u64 arg = code[2 * pc + 1];
			switch (code[2 * pc] & 15) {
			case 0: a += arg; break;
			case 1: a ^= b; break;
			case 2: b += a >> 3; break;
			case 3: c = (c << 7) | (c >> 57); break;
			case 4: a *= 3; break;
			case 5: b ^= arg << 17; break;
			case 6: d += a & 0xffff; break;
			case 7: c += b; break;
			case 8: a -= arg; break;
			case 9: b = b * 5 + 1; break;
			case 10: d ^= c; break;
			case 11: a = (a >> 1) | (a << 63); break;
			case 12: c ^= d >> 9; break;
			case 13: if (a & 1) b++; else d--; break;
			case 14: d = d * 33 + arg; break;
			default: a ^= c; break;
			}
		}
	}
	return a ^ b ^ c ^ d;
}
