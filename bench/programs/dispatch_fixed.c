/* dispatch.c with constant sizes: the bench's 256 instructions, run twice rather than 16 times, so
 * that the verifier can bound the loops. Every instruction leaves pending branches of the switch
 * on the walk's stack, and 16 rounds (4,096 instructions) go beyond the kernel's 8,192 of them.
 * The form mode 'verified' accepts (raw, dataSize 64 + 512). */
#include "bench.h"

#define OPS 256
#define ROUNDS 2

BENCH(dispatch_fixed)
{
	const u8 *code = DATA;
	u64 a = 1, b = 2, c = 0x9e3779b97f4a7c15ULL, d = 0;

	for (u32 r = 0; r < ROUNDS; r++) {
		for (u32 pc = 0; pc < OPS; pc++) {
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
