#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_DEVMAP); __uint(key_size, 4); __uint(value_size, 4); __uint(max_entries, 4); } dev SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_DEVMAP_HASH); __uint(key_size, 4); __uint(value_size, 4); __uint(max_entries, 4); } devh SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_CPUMAP); __uint(key_size, 4); __uint(value_size, 4); __uint(max_entries, 2); } cpu SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_XSKMAP); __uint(key_size, 4); __uint(value_size, 4); __uint(max_entries, 4); } xsk SEC(".maps");
SEC("xdp") int redir(struct xdp_md *ctx) {
  unsigned char *d = (void *)(long)ctx->data, *e = (void *)(long)ctx->data_end;
  if (d + 17 > e) return 1;
  __u32 key = d[14]; __u64 flags = d[15];
  switch (d[16]) {
  case 0: return bpf_redirect_map(&dev, key, flags);
  case 1: return bpf_redirect_map(&devh, key, flags);
  case 2: return bpf_redirect_map(&cpu, key, flags);
  default: return bpf_redirect_map(&xsk, key, flags);
  }
}
char LICENSE[] SEC("license") = "GPL";
