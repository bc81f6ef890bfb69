#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
/* Packet bytes 14: ifindex, 15-16: *mtu_len in (LE), 17: len_diff (s8), 18: flags.
 * Returns (u8)ret | mtu_len out << 8. */
static __always_inline int probe(void *ctx, unsigned char *d, unsigned char *e) {
  if (d + 19 > e) return 0xff;
  __u32 mtu = d[15] | d[16] << 8;
  int ret = bpf_check_mtu(ctx, d[14], &mtu, (__s8)d[17], d[18]);
  return (ret & 0xff) | mtu << 8;
}
SEC("xdp") int mtu_xdp(struct xdp_md *ctx) { return probe(ctx, (void *)(long)ctx->data, (void *)(long)ctx->data_end); }
SEC("tc") int mtu_tc(struct __sk_buff *ctx) { return probe(ctx, (void *)(long)ctx->data, (void *)(long)ctx->data_end); }
char LICENSE[] SEC("license") = "GPL";
