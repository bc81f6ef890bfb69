// SPDX-License-Identifier: GPL-2.0
/* tc (sched_cls) programs as C code writes them: parsing and rewriting the packet through
 * data/data_end, writing the skb fields tc may write, checksum and resizing helpers and the
 * packet pointers they invalidate, data_meta, and the reads tc may not make. */
#include "corpus.h"

char _license[] SEC("license") = "GPL";

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} tc_counts SEC(".maps");

SEC("tc")
int tc_parse_ipv4_set_tos_ok(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end)
		return TC_ACT_OK;
	ip->tos = 0x10;
	skb->mark = ip->protocol;
	skb->priority = 7;
	skb->tc_index = 1;
	skb->cb[0] = ip->saddr;
	return TC_ACT_OK;
}

SEC("tc")
int tc_read_past_ip_header_rej(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return TC_ACT_OK;
	struct iphdr *ip = (void *)(eth + 1);
	return opaque(ip)->protocol;
}

SEC("tc")
int tc_count_by_protocol_key_in_packet_ok(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	/* The map key is read straight from the packet (lookup has pkt_access). */
	if (data + 18 > end)
		return TC_ACT_OK;
	__u64 *v = bpf_map_lookup_elem(&tc_counts, data + 14);
	if (v)
		__sync_fetch_and_add(v, 1);
	return TC_ACT_OK;
}

SEC("tc")
int tc_store_bytes_then_old_pointer_rej(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return TC_ACT_OK;
	__u16 proto = bpf_htons(ETH_P_IPV6);
	bpf_skb_store_bytes(skb, 12, &proto, 2, 0);
	return opaque(eth)->h_dest[0];
}

SEC("tc")
int tc_store_bytes_then_reload_ok(struct __sk_buff *skb)
{
	__u16 proto = bpf_htons(ETH_P_IPV6);
	bpf_skb_store_bytes(skb, 12, &proto, 2, 0);
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return TC_ACT_OK;
	return eth->h_proto == proto ? TC_ACT_OK : TC_ACT_SHOT;
}

SEC("tc")
int tc_l3_csum_replace_then_old_ip_rej(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	if ((void *)(ip + 1) > end)
		return TC_ACT_OK;
	bpf_l3_csum_replace(skb, 24, 0, 1, 2);
	return opaque(ip)->ttl;
}

SEC("tc")
int tc_pull_data_then_reload_ok(struct __sk_buff *skb)
{
	if (bpf_skb_pull_data(skb, 34))
		return TC_ACT_OK;
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	if ((void *)(ip + 1) > end)
		return TC_ACT_OK;
	return ip->ttl;
}

SEC("tc")
int tc_change_tail_then_old_pointer_rej(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	if (data + 1 > end)
		return TC_ACT_OK;
	bpf_skb_change_tail(skb, skb->len + 4, 0);
	return *(__u8 *)opaque(data);
}

SEC("tc")
int tc_meta_read_ok(struct __sk_buff *skb)
{
	void *meta = (void *)(long)skb->data_meta, *data = (void *)(long)skb->data;
	if (meta + 4 > data)
		return TC_ACT_OK;
	return *(__u32 *)meta;
}

SEC("tc")
int tc_meta_unchecked_rej(struct __sk_buff *skb)
{
	void *meta = (void *)(long)skb->data_meta;
	return *(__u32 *)opaque(meta);
}

SEC("tc")
int tc_write_fields_ok(struct __sk_buff *skb)
{
	skb->tc_classid = 0x10001;
	skb->queue_mapping = 1;
	skb->tstamp = 0;
	skb->cb[4] = skb->hash;
	return TC_ACT_OK;
}

SEC("tc")
int tc_write_len_rej(struct __sk_buff *skb)
{
	skb->len = 0;
	return TC_ACT_OK;
}

SEC("tc")
int tc_read_family_rej(struct __sk_buff *skb)
{
	return skb->family;
}

SEC("tc")
int tc_read_wire_len_and_tstamp_ok(struct __sk_buff *skb)
{
	return skb->wire_len + (__u32)skb->tstamp + skb->gso_segs;
}

SEC("tc")
int tc_redirect_ok(struct __sk_buff *skb)
{
	return bpf_redirect(skb->ifindex, 0);
}

SEC("tc")
int tc_csum_diff_over_packet_ok(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	if (data + 8 > end)
		return TC_ACT_OK;
	return bpf_csum_diff(0, 0, data, 8, 0);
}
