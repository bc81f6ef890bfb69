/* Socket filters as people write them: the packet through bpf_skb_load_bytes and the legacy
 * load_byte/half/word (LD_ABS), the __sk_buff fields they may read and the cb words they may write,
 * and the helpers they may call. */
#include "corpus.h"

unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");
unsigned long long load_half(void *skb, unsigned long long off) asm("llvm.bpf.load.half");
unsigned long long load_word(void *skb, unsigned long long off) asm("llvm.bpf.load.word");

SEC("socket")
int socket_ld_abs_ip_proto_ok(struct __sk_buff *skb)
{
	if (load_half(skb, 12) != ETH_P_IP)
		return 0;
	return load_byte(skb, 23) == IPPROTO_TCP ? -1 : 0;
}

SEC("socket")
int socket_ld_ind_variable_offset_ok(struct __sk_buff *skb)
{
	__u32 ihl = (load_byte(skb, 14) & 0xf) * 4;
	return load_half(skb, 14 + ihl + 2) == 53 ? -1 : 0;
}

SEC("socket")
int socket_load_bytes_eth_header_ok(struct __sk_buff *skb)
{
	struct ethhdr eth;
	if (bpf_skb_load_bytes(skb, 0, &eth, sizeof(eth)))
		return 0;
	return eth.h_proto == bpf_htons(ETH_P_IP) ? skb->len : 0;
}

SEC("socket")
int socket_load_bytes_uninit_result_privileged_ok(struct __sk_buff *skb)
{
	struct ethhdr eth;
	bpf_skb_load_bytes(skb, 0, &eth, sizeof(eth));
	return eth.h_proto;
}

SEC("socket")
int socket_load_bytes_var_len_masked_ok(struct __sk_buff *skb)
{
	char buf[32];
	__u32 n = (skb->len & 31) + 1;
	if (bpf_skb_load_bytes(skb, 0, buf, n))
		return 0;
	return buf[0];
}

SEC("socket")
int socket_load_bytes_var_len_31_plus_2_rej(struct __sk_buff *skb)
{
	char buf[32];
	__u32 n = (skb->len & 31) + opaque(2);
	if (bpf_skb_load_bytes(skb, 0, buf, n))
		return 0;
	return buf[0];
}

SEC("socket")
int socket_cb_write_then_read_ok(struct __sk_buff *skb)
{
	skb->cb[0] = skb->len;
	skb->cb[4] = skb->protocol;
	return skb->cb[0] + skb->cb[4];
}

SEC("socket")
int socket_mark_write_rej(struct __sk_buff *skb)
{
	skb->mark = 1;
	return 0;
}

SEC("socket")
int socket_priority_write_rej(struct __sk_buff *skb)
{
	skb->priority = 1;
	return 0;
}

SEC("socket")
int socket_return_len_ok(struct __sk_buff *skb)
{
	return skb->len;
}

SEC("socket")
int socket_cookie_helper_ok(struct __sk_buff *skb)
{
	return bpf_get_socket_cookie(skb) & 1;
}

SEC("socket")
int socket_uid_helper_ok(struct __sk_buff *skb)
{
	return bpf_get_socket_uid(skb) == 0;
}

SEC("socket")
int socket_xdp_adjust_head_not_allowed_rej(struct __sk_buff *skb)
{
	return bpf_xdp_adjust_head((void *)skb, 4);
}

SEC("socket")
int socket_store_bytes_not_allowed_rej(struct __sk_buff *skb)
{
	__u32 v = 0;
	return bpf_skb_store_bytes(skb, 0, &v, 4, 0);
}

SEC("socket")
int socket_direct_data_pointer_rej(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	if (data + 1 > end)
		return 0;
	return *(__u8 *)data;
}
char LICENSE[] SEC("license") = "GPL";
