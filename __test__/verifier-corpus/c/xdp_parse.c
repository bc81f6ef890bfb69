/* Packet parsing in XDP as real programs write it: Ethernet, IPv4 with a variable header length,
 * UDP and TCP ports, VLAN tags, loops over bytes; each with the bounds check right, and with it
 * one byte short, missing, or done on the wrong pointer. */
#include "corpus.h"

SEC("xdp")
int xdp_eth_proto_checked_ok(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return XDP_DROP;
	return eth->h_proto == bpf_htons(ETH_P_IP) ? XDP_PASS : XDP_DROP;
}

SEC("xdp")
int xdp_eth_proto_unchecked_rej(struct xdp_md *ctx)
{
	struct ethhdr *eth = (void *)(long)ctx->data;
	return eth->h_proto == bpf_htons(ETH_P_IP) ? XDP_PASS : XDP_DROP;
}

SEC("xdp")
int xdp_eth_check_one_byte_short_rej(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if (data + 13 > end)
		return XDP_DROP;
	return eth->h_proto == bpf_htons(ETH_P_IP) ? XDP_PASS : XDP_DROP;
}

SEC("xdp")
int xdp_ipv4_fixed_header_checked_ok(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	if ((void *)(ip + 1) > end)
		return XDP_DROP;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	return ip->protocol == IPPROTO_UDP ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int xdp_ipv4_checked_eth_only_reads_ip_rej(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	if ((void *)(eth + 1) > end)
		return XDP_DROP;
	return ip->protocol == IPPROTO_UDP ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int xdp_udp_after_variable_ihl_checked_ok(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	if ((void *)(ip + 1) > end)
		return XDP_DROP;
	if (ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	struct udphdr *udp = (void *)ip + ip->ihl * 4;
	if ((void *)(udp + 1) > end)
		return XDP_DROP;
	return udp->dest == bpf_htons(53) ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int xdp_udp_after_variable_ihl_unchecked_rej(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	if ((void *)(ip + 1) > end)
		return XDP_DROP;
	struct udphdr *udp = (void *)ip + ip->ihl * 4;
	return udp->dest == bpf_htons(53) ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int xdp_tcp_flags_checked_ok(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	struct tcphdr *tcp = (void *)(ip + 1);
	if ((void *)(tcp + 1) > end)
		return XDP_DROP;
	return tcp->syn && !tcp->ack ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int xdp_write_mac_checked_ok(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return XDP_DROP;
	for (int i = 0; i < ETH_ALEN; i++) {
		unsigned char t = eth->h_dest[i];
		eth->h_dest[i] = eth->h_source[i];
		eth->h_source[i] = t;
	}
	return XDP_TX;
}

SEC("xdp")
int xdp_vlan_two_tags_checked_ok(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return XDP_DROP;
	__u16 proto = eth->h_proto;
	void *cur = eth + 1;
#pragma unroll
	for (int i = 0; i < 2; i++) {
		if (proto != bpf_htons(ETH_P_8021Q))
			break;
		if (cur + 4 > end)
			return XDP_DROP;
		proto = *(__u16 *)(cur + 2);
		cur += 4;
	}
	return proto == bpf_htons(ETH_P_IP) ? XDP_PASS : XDP_DROP;
}

SEC("xdp")
int xdp_sum_bytes_bounded_loop_ok(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	__u32 sum = 0;
	for (int i = 0; i < 64; i++) {
		__u8 *p = data + i;
		if ((void *)(p + 1) > end)
			break;
		sum += *p;
	}
	return sum & 1 ? XDP_PASS : XDP_DROP;
}

SEC("xdp")
int xdp_read_at_len_from_packet_masked_ok(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	if (data + 1 > end)
		return XDP_DROP;
	__u32 off = *(__u8 *)data & 31;
	__u8 *p = data + off;
	if ((void *)(p + 1) > end)
		return XDP_DROP;
	return *p;
}

SEC("xdp")
int xdp_read_at_len_from_packet_unmasked_rej(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	if (data + 4 > end)
		return XDP_DROP;
	__u64 off = opaque(*(__u32 *)data) * 4096ULL * 4096ULL;
	__u8 *p = data + off;
	if ((void *)(p + 1) > end)
		return XDP_DROP;
	return *p;
}

SEC("xdp")
int xdp_past_end_by_data_end_minus_one_ok(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	if (data + 2 > end)
		return XDP_DROP;
	return *(__u8 *)(data + 1);
}

SEC("xdp")
int xdp_adjust_head_then_old_eth_rej(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return XDP_DROP;
	if (bpf_xdp_adjust_head(ctx, 0))
		return XDP_DROP;
	return opaque(eth)->h_proto ? XDP_PASS : XDP_DROP;
}

SEC("xdp")
int xdp_adjust_head_then_reload_ok(struct xdp_md *ctx)
{
	if (bpf_xdp_adjust_head(ctx, -4))
		return XDP_DROP;
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	if (data + 4 > end)
		return XDP_DROP;
	*(__u32 *)data = 0;
	return XDP_PASS;
}

SEC("xdp")
int xdp_meta_after_adjust_meta_ok(struct xdp_md *ctx)
{
	if (bpf_xdp_adjust_meta(ctx, -4))
		return XDP_PASS;
	void *meta = (void *)(long)ctx->data_meta, *data = (void *)(long)ctx->data;
	if (meta + 4 > data)
		return XDP_PASS;
	*(__u32 *)meta = 42;
	return XDP_PASS;
}

SEC("xdp")
int xdp_meta_write_unchecked_rej(struct xdp_md *ctx)
{
	void *meta = (void *)(long)ctx->data_meta;
	*(__u32 *)meta = 42;
	return XDP_PASS;
}

SEC("xdp")
int xdp_ingress_ifindex_return_ok(struct xdp_md *ctx)
{
	return ctx->ingress_ifindex == 1 ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int xdp_egress_ifindex_plain_xdp_rej(struct xdp_md *ctx)
{
	return ctx->egress_ifindex == 1 ? XDP_DROP : XDP_PASS;
}

/* A devmap program (expected attach type BPF_XDP_DEVMAP) may read egress_ifindex. */
SEC("xdp/devmap")
int xdp_egress_ifindex_devmap_ok(struct xdp_md *ctx)
{
	return ctx->egress_ifindex == 1 ? XDP_DROP : XDP_PASS;
}
char LICENSE[] SEC("license") = "GPL";
