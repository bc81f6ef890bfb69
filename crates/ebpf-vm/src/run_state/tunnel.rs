//! A tc packet's tunnel metadata, which a run takes from its input and `bpf_skb_set_tunnel_key`
//! replaces (`context::tunnel` has the helpers).

/// A packet's tunnel metadata (the kernel's `ip_tunnel_info` as far as the helpers see it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TunnelInfo {
    /// An IPv6 outer header (else IPv4).
    pub ipv6: bool,
    /// Transmit metadata (what `bpf_skb_set_tunnel_key` gives), else receive metadata.
    pub tx: bool,
    /// The tunnel id (VNI, key), `key.tun_id` as a number.
    pub id: u64,
    /// The outer source and destination addresses in network order (IPv4 in the first 4 bytes).
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub tos: u8,
    pub ttl: u8,
    /// The IPv6 flow label (20 bits); 0 for IPv4.
    pub label: u32,
    /// `TUNNEL_*` flags.
    pub flags: u16,
}
