#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
/* Packet byte 14 picks the case. */
SEC("tc") int tcr(struct __sk_buff *ctx) {
  unsigned char *d = (void *)(long)ctx->data, *e = (void *)(long)ctx->data_end;
  if (d + 16 > e) return 0xff;
  struct bpf_redir_neigh nh = { .nh_family = 2, .ipv4_nh = 0x010200c0 };
  switch (d[14]) {
  case 0: return bpf_redirect_neigh(5, 0, 0, 0);
  case 1: return bpf_redirect_neigh(5, &nh, sizeof(nh), 0);
  case 2: return bpf_redirect_neigh(5, &nh, 8, 0);
  case 3: return bpf_redirect_neigh(5, &nh, sizeof(nh), 1);
  case 4: return bpf_redirect_peer(6, 0);
  case 5: return bpf_redirect_peer(6, 1);
  case 6: return bpf_clone_redirect(ctx, 1, 2);
  default: return bpf_clone_redirect(ctx, 9, 0);
  }
}
char LICENSE[] SEC("license") = "GPL";
/* bpftool prog run on Linux 6.18, 60-byte packet, case (byte 14) -> retval:
 * 0 -> 7, 1 -> 7, 2 -> 2, 3 -> 2, 4 -> 7, 5 -> 2, 6 -> -22 (4294967274), 7 -> -22. */
