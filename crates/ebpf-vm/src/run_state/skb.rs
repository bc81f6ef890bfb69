//! The packet of one tc run and what the kernel's `sk_buff` knows about it besides the context
//! fields (`TcSkb`), with the tc constants. How a run's skb and `struct __sk_buff` are built from
//! a test-run input is `context::tc`'s.

use crate::memory::Region;

use super::layout::skb as off;
use super::OwnedBuf;

/// tc actions (`linux/pkt_cls.h`).
pub const TC_ACT_OK: u64 = 0;
pub const TC_ACT_SHOT: u64 = 2;
pub const TC_ACT_REDIRECT: u64 = 7;

pub const ETH_HLEN: u64 = 14;
/// Headroom of the test run's skb (`NET_SKB_PAD + NET_IP_ALIGN` on x86-64).
pub(crate) const TEST_RUN_HEADROOM: u64 = 64;
/// The largest test-run input: a page less the headroom and `skb_shared_info` (320 bytes).
pub const TC_INPUT_MAX: u64 = 4096 - TEST_RUN_HEADROOM - 320;
/// Room kept past the packet when the buffer is made: small growth needs no new buffer.
pub(crate) const TAILROOM: u64 = 256;
/// The loopback device, which the test run's skb belongs to: its ifindex, MTU, header length.
pub const LOOPBACK_IFINDEX: u32 = 1;
pub const LOOPBACK_MTU: u32 = 65536;
/// `__bpf_skb_max_len` on the loopback device: MTU plus the Ethernet header.
pub const SKB_MAX_LEN: u64 = LOOPBACK_MTU as u64 + ETH_HLEN;
/// `wire_len` may not exceed `GSO_LEGACY_MAX_SIZE`; `gso_segs` not `GSO_MAX_SEGS`.
pub(crate) const GSO_LEGACY_MAX_SIZE: u32 = 65536;
pub(crate) const GSO_MAX_SEGS: u32 = 65535;

pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;
const ETH_P_802_3: u16 = 0x0001;
const ETH_P_802_2: u16 = 0x0004;

/// `pkt_type` values (`linux/if_packet.h`).
const PACKET_MULTICAST: u32 = 2;
const PACKET_OTHERHOST: u32 = 3;

/// The fields the kernel's test run copies back into the context image after the run.
pub(crate) const COPIED_BACK: &[(u32, u32)] = &[
    (off::MARK, 4),
    (off::PRIORITY, 4),
    (off::INGRESS_IFINDEX, 4),
    (off::IFINDEX, 4),
    (off::CB, 20),
    (off::TSTAMP, 8),
    (off::WIRE_LEN, 4),
    (off::GSO_SEGS, 4),
    (off::HWTSTAMP, 8),
];

/// Fields of the image that are 16 bits wide in the kernel's `sk_buff`.
pub(crate) const U16_FIELDS: &[u32] = &[off::QUEUE_MAPPING, off::TC_INDEX, off::TC_CLASSID];

/// The packet of a tc run and what the kernel's `sk_buff` knows about it besides the context
/// fields. Offsets are from the start of `buf`.
pub struct TcSkb {
    pub(crate) buf: OwnedBuf,
    pub(crate) data: u64,
    pub(crate) tail: u64,
    /// Where the MAC and network headers start (`skb->mac_header`, `skb->network_header`).
    pub(crate) mac_header: u64,
    pub(crate) network_header: u64,
    /// `skb->mac_len`: 0 in the test run's skb, set by the helpers that call
    /// `skb_reset_mac_len` (the VLAN helpers, `bpf_skb_change_head`).
    pub mac_len: u64,
    /// The context image the caller gave (zero-extended), for `ctx_out`.
    pub(crate) input: Vec<u8>,
    /// `skb->encapsulation`: set by `bpf_skb_adjust_room` with an encapsulation flag.
    pub encapsulation: bool,
    /// `skb->sw_hash || skb->l4_hash`: `skb->hash` is valid (`bpf_get_hash_recalc` keeps it).
    pub hash_valid: bool,
    /// The packet region of the run as it is now (what `sync` replaces).
    pub(crate) region: Region,
}

pub(crate) fn u32_at(b: &[u8], at: u32) -> u32 {
    let at = at as usize;
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// `eth_type_trans`'s protocol: the ethertype from 0x600 on; below, 802.3 for Novell's raw
/// frames (payload starting 0xffff) and 802.2 for the rest. As the bytes lie in memory
/// (`htons`), which is how `skb->protocol` reads.
pub fn eth_protocol(packet: &[u8]) -> u32 {
    let ethertype = u16::from_be_bytes([packet[12], packet[13]]);
    let proto = if ethertype >= 0x600 {
        ethertype
    } else if packet.len() >= 16 && packet[14..16] == [0xff, 0xff] {
        ETH_P_802_3
    } else {
        ETH_P_802_2
    };
    proto.to_be() as u32
}

/// `eth_type_trans`'s `pkt_type` on the loopback device, whose address and broadcast address
/// are all zeros: host for that address, multicast for a group address (ff:ff:ff:ff:ff:ff
/// included: it is not the loopback's broadcast address), other host for the rest.
pub(crate) fn pkt_type(packet: &[u8]) -> u32 {
    let dest = &packet[..6];
    if dest == [0; 6] {
        0
    } else if dest[0] & 1 == 1 {
        PACKET_MULTICAST
    } else {
        PACKET_OTHERHOST
    }
}

impl TcSkb {
    pub fn len(&self) -> u64 {
        self.tail - self.data
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Host address of the first packet byte.
    pub fn data_addr(&self) -> u64 {
        self.buf.addr + self.data
    }

    /// The packet bytes.
    pub fn packet(&self) -> Vec<u8> {
        self.buf.read(self.data, self.len())
    }

    /// Packet bytes `[at, at + n)` (the caller checked the range).
    pub fn read(&self, at: u64, n: u64) -> Vec<u8> {
        self.buf.read(self.data + at, n)
    }

    /// Writes `bytes` at packet offset `at` (the caller checked the range).
    pub fn write(&self, at: u64, bytes: &[u8]) {
        self.buf.write(self.data + at, bytes);
    }

    /// Offset of the network header from the packet start (`skb_network_offset`).
    pub fn network_offset(&self) -> i64 {
        self.network_header as i64 - self.data as i64
    }

    /// `skb_mac_header_len`: from the MAC header to the network header.
    pub fn mac_header_len(&self) -> u64 {
        self.network_header.saturating_sub(self.mac_header)
    }

    /// Makes sure `head` bytes of room lie before the packet and `tail` after it, moving the
    /// packet to a larger buffer when they do not.
    fn reserve(&mut self, head: u64, tail: u64) {
        let room_after = self.buf.len - self.tail;
        if self.data >= head && room_after >= tail {
            return;
        }
        let new_head = head.max(TEST_RUN_HEADROOM);
        let cap = new_head + self.len() + tail.max(TAILROOM);
        let buf = OwnedBuf::zeroed(cap as usize);
        buf.write(new_head, &self.packet());
        let shift = new_head as i64 - self.data as i64;
        let moved = |o: u64| (o as i64 + shift).max(0) as u64;
        self.mac_header = moved(self.mac_header);
        self.network_header = moved(self.network_header);
        self.tail = new_head + self.len();
        self.data = new_head;
        self.buf = buf;
    }

    /// `skb_push`: `n` bytes (zeroed) in front of the packet, which becomes the MAC header.
    pub fn push_head(&mut self, n: u64) {
        self.reserve(n, 0);
        self.data -= n;
        self.buf.write(self.data, &vec![0u8; n as usize]);
    }

    /// `n` zeroed bytes inserted at packet offset `at` (`bpf_skb_generic_push`): what lies
    /// before `at` moves to the front, and the MAC and network headers with it. An `at` past the
    /// end moves the room's bytes too (zeros here), as the kernel's `memmove` does.
    pub fn insert(&mut self, at: u64, n: u64) {
        let len = self.len();
        let mut bytes = self.packet();
        bytes.resize(at.max(len) as usize, 0);
        bytes.splice(
            at as usize..at as usize,
            std::iter::repeat_n(0u8, n as usize),
        );
        bytes.truncate((len + n) as usize);
        self.reserve(n, 0);
        self.data -= n;
        self.write(0, &bytes);
        self.mac_header = self.mac_header.saturating_sub(n);
        self.network_header = self.network_header.saturating_sub(n);
    }

    /// Removes `n` bytes at packet offset `at` (`bpf_skb_generic_pop`; `at + n` is inside the
    /// packet): what lies before them moves back, and the MAC header with it (the network
    /// header too when `move_network`).
    pub fn remove(&mut self, at: u64, n: u64, move_network: bool) {
        let front = self.read(0, at);
        self.data += n;
        self.write(0, &front);
        self.mac_header += n;
        if move_network {
            self.network_header += n;
        }
    }

    /// Offset of the MAC header from the packet start (0 unless a helper moved one of them).
    pub fn mac_header_offset(&self) -> i64 {
        self.mac_header as i64 - self.data as i64
    }

    /// Sets the packet length to `len`: bytes gained at the end are zeroed.
    pub fn set_len(&mut self, len: u64) {
        let cur = self.len();
        if len > cur {
            self.reserve(0, len - cur);
            self.buf.write(self.tail, &vec![0u8; (len - cur) as usize]);
        }
        self.tail = self.data + len;
    }

    /// `skb_reset_mac_header`: the MAC header at the packet start.
    pub fn reset_mac_header(&mut self) {
        self.mac_header = self.data;
    }

    /// `skb_reset_mac_len`: from the MAC header to the network header.
    pub fn reset_mac_len(&mut self) {
        self.mac_len = self.mac_header_len();
    }

    /// `skb_set_network_header(skb, offset)`: relative to the packet start.
    pub fn set_network_offset(&mut self, offset: u64) {
        self.network_header = self.data + offset;
    }
}
