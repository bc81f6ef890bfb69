/* Packet parsing: PARAM(0) frames in 128-byte slots (u32 length, then the frame from byte 8).
 * Each frame is parsed like an XDP program would: Ethernet, optional 802.1Q tag, IPv4 (with
 * options) or IPv6, then TCP or UDP ports, every read checked against the frame length. Returns
 * per-protocol counters and a flow hash folded together. */
#include "bench.h"

#define SLOT 128

INLINE u16 be16(const u8 *p)
{
	return (u16)(p[0] << 8 | p[1]);
}

INLINE u32 be32(const u8 *p)
{
	return (u32)p[0] << 24 | (u32)p[1] << 16 | (u32)p[2] << 8 | p[3];
}

INLINE u32 mix(u32 h, u32 v)
{
	h ^= v;
	h *= 0x01000193;
	return h ^ (h >> 15);
}

/* The sizes, from the header; parse_fixed.c sets constants and includes this file. */
#ifndef BENCH_NAME
#define BENCH_NAME parse
#define PARSE_N PARAM(0)
#endif

BENCH(BENCH_NAME)
{
	u32 n = PARSE_N;
	u64 tcp = 0, udp = 0, other = 0, bad = 0;
	u32 hash = 0x811c9dc5;

	for (u32 i = 0; i < n; i++) {
		const u8 *slot = DATA + i * SLOT;
		u32 len = *(const u32 *)slot;
		const u8 *p = slot + 8;
		u32 off = 14, proto, l4;
		u16 type;

		if (len > SLOT - 8 || len < 14) {
			bad++;
			continue;
		}
		type = be16(p + 12);
		if (type == 0x8100) {
			if (len < 18) {
				bad++;
				continue;
			}
			type = be16(p + 16);
			off = 18;
		}
		if (type == 0x0800) {
			u32 ihl;
			if (off + 20 > len) {
				bad++;
				continue;
			}
			ihl = (p[off] & 15) * 4;
			if (ihl < 20 || off + ihl > len) {
				bad++;
				continue;
			}
			proto = p[off + 9];
			hash = mix(hash, be32(p + off + 12));
			hash = mix(hash, be32(p + off + 16));
			l4 = off + ihl;
		} else if (type == 0x86dd) {
			if (off + 40 > len) {
				bad++;
				continue;
			}
			proto = p[off + 6];
			for (u32 k = 8; k < 40; k += 4)
				hash = mix(hash, be32(p + off + k));
			l4 = off + 40;
		} else {
			other++;
			continue;
		}
		if (proto == 6 || proto == 17) {
			if (l4 + 4 > len) {
				bad++;
				continue;
			}
			hash = mix(hash, (u32)be16(p + l4) << 16 | be16(p + l4 + 2));
			if (proto == 6)
				tcp++;
			else
				udp++;
		} else {
			other++;
		}
	}
	return (tcp << 48 | udp << 32 | other << 16 | bad) ^ ((u64)hash << 8);
}
