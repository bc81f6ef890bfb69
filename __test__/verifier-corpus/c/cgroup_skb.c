// SPDX-License-Identifier: GPL-2.0
/* cgroup_skb programs as C code writes them (ingress and egress, libbpf's sections): reading the
 * socket fields and the IP header through data/data_end (read only), counting flows in a map,
 * writing mark and priority, the return codes each direction allows, and the helpers of the type. */
#include "corpus.h"

char _license[] SEC("license") = "GPL";

struct flow {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u32 proto;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct flow);
	__type(value, __u64);
} cg_flows SEC(".maps");

SEC("cgroup_skb/ingress")
int cg_ingress_count_flows_ok(struct __sk_buff *skb)
{
	struct flow f = {};
	__u64 one = 1, *n;

	f.saddr = skb->remote_ip4;
	f.daddr = skb->local_ip4;
	f.sport = skb->remote_port >> 16;
	f.dport = skb->local_port;
	f.proto = skb->protocol;
	n = bpf_map_lookup_elem(&cg_flows, &f);
	if (n)
		__sync_fetch_and_add(n, skb->len);
	else
		bpf_map_update_elem(&cg_flows, &f, &one, BPF_NOEXIST);
	return 1;
}

SEC("cgroup_skb/ingress")
int cg_ingress_parse_ip_header_ok(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct iphdr *ip = data;

	if ((void *)(ip + 1) > end)
		return 1;
	if (ip->protocol == IPPROTO_UDP && ip->ttl < 2)
		return 0;
	return 1;
}

SEC("cgroup_skb/ingress")
int cg_ingress_read_past_ip_header_rej(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct iphdr *ip = data;

	if ((void *)(ip + 1) > end)
		return 1;
	return ((__u8 *)data)[opaque(sizeof(*ip))] == 0;
}

SEC("cgroup_skb/ingress")
int cg_ingress_write_packet_rej(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct iphdr *ip = data;

	if ((void *)(ip + 1) > end)
		return 1;
	ip->tos = 0;
	return 1;
}

SEC("cgroup_skb/egress")
int cg_egress_mark_priority_ok(struct __sk_buff *skb)
{
	skb->mark = skb->len > 1000 ? 2 : 1;
	skb->priority = 6;
	skb->cb[0] = skb->ifindex;
	return 1;
}

SEC("cgroup_skb/egress")
int cg_egress_write_tc_index_rej(struct __sk_buff *skb)
{
	skb->tc_index = 1;
	return 1;
}

SEC("cgroup_skb/egress")
int cg_egress_drop_with_cn_ok(struct __sk_buff *skb)
{
	/* 2: drop with congestion notification, 3: pass with it (egress only). */
	return skb->len > 1400 ? 2 : 3;
}

SEC("cgroup_skb/ingress")
int cg_ingress_return_2_rej(struct __sk_buff *skb)
{
	return skb->len > 1400 ? 2 : 1;
}

SEC("cgroup_skb/ingress")
int cg_ingress_return_len_rej(struct __sk_buff *skb)
{
	return skb->len;
}

SEC("cgroup_skb/egress")
int cg_egress_return_masked_ok(struct __sk_buff *skb)
{
	return skb->mark & 3;
}

SEC("cgroup_skb/ingress")
int cg_ingress_sk_family_ok(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;

	if (!sk)
		return 1;
	return sk->family == 2;
}

SEC("cgroup_skb/ingress")
int cg_ingress_sk_unchecked_rej(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;

	return sk->family == 2;
}

SEC("cgroup_skb/ingress")
int cg_ingress_load_bytes_tcp_flags_ok(struct __sk_buff *skb)
{
	__u8 flags = 0;

	bpf_skb_load_bytes(skb, sizeof(struct iphdr) + 13, &flags, 1);
	return !(flags & 0x02);
}

SEC("cgroup_skb/ingress")
int cg_ingress_socket_cookie_uid_ok(struct __sk_buff *skb)
{
	return (bpf_get_socket_cookie(skb) ^ bpf_get_socket_uid(skb)) & 1;
}

SEC("cgroup_skb/ingress")
int cg_ingress_read_tc_classid_rej(struct __sk_buff *skb)
{
	return skb->tc_classid & 1;
}

SEC("cgroup_skb/ingress")
int cg_ingress_read_wire_len_rej(struct __sk_buff *skb)
{
	return skb->wire_len & 1;
}

SEC("cgroup_skb/egress")
int cg_egress_tstamp_ok(struct __sk_buff *skb)
{
	skb->tstamp = skb->tstamp + 1000;
	return 1;
}

SEC("cgroup/skb")
int cg_skb_section_return_1_ok(struct __sk_buff *skb)
{
	return skb->remote_ip6[0] != 0;
}
