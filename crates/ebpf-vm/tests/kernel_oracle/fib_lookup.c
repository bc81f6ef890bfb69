#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
/* Packet (128 bytes): 14 family, 15 flags, 16 ifindex, 17-18 tot_len (LE), 20-35 destination.
 * The params after the lookup are copied to bytes 64-127; returns the lookup's result. */
static __always_inline int probe(void *ctx, unsigned char *d, unsigned char *e) {
  struct bpf_fib_lookup p = {};
  if (d + 128 > e) return 0xff;
  p.family = d[14];
  p.ifindex = d[16];
  p.tot_len = d[17] | d[18] << 8;
  __builtin_memcpy(p.ipv6_dst, d + 20, 16);
  int rc = bpf_fib_lookup(ctx, &p, sizeof(p), d[15]);
  __builtin_memcpy(d + 64, &p, 64);
  return rc;
}
SEC("xdp") int fib_xdp(struct xdp_md *ctx) { return probe(ctx, (void *)(long)ctx->data, (void *)(long)ctx->data_end); }
SEC("tc") int fib_tc(struct __sk_buff *ctx) { return probe(ctx, (void *)(long)ctx->data, (void *)(long)ctx->data_end); }
char LICENSE[] SEC("license") = "GPL";
