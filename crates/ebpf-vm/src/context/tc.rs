//! tc (`sched_cls`, `sched_act`): `struct __sk_buff` with tc's rules over a copy of the packet,
//! which the program may write directly and helpers may resize at either end.
//!
//! The run is built as Linux 6.18's `bpf_prog_test_run_skb` builds it for tc: the packet starts at
//! the Ethernet header (`data`), has at least 14 and at most 3,712 bytes (a page less the test
//! run's 64 bytes of headroom and 320 of `skb_shared_info`; the kernel: EINVAL otherwise), and:
//! - `len` and `wire_len` are the packet length, `protocol` is what `eth_type_trans` makes of the
//!   Ethernet header (the ethertype from 0x600 on; below, 802.3 or 802.2), `pkt_type` is what it
//!   makes of the destination address on the loopback device (all zeros: host; a group
//!   address, broadcast included: multicast; else other host), `ifindex` is the loopback's (1).
//! - From a context image (optional, up to 192 bytes) the run takes what the kernel's test run
//!   takes: `mark`, `priority`, `ingress_ifindex`, `ifindex` (other than 0), `cb[]`, `tstamp`,
//!   `wire_len` (0: the packet length; less than it or over 65,536: EINVAL), `gso_segs` (over
//!   65,535: EINVAL), `gso_size`, `hwtstamp`; and, beyond the kernel (which refuses them with
//!   EINVAL), `hash`, `vlan_present`, `vlan_tci`, `vlan_proto`, `tc_index`, `tc_classid`,
//!   `queue_mapping` (the last three keep 16 bits, as in the kernel's `sk_buff`) and `napi_id`,
//!   so that programs reading them can be tested. The other fields are the run's own.
//! - `sk` is NULL here (the kernel's test run gives a dummy socket).
//!
//! After the run, `ctx_out` is what the kernel's test run hands back: the input image with
//! `mark`, `priority`, `ingress_ifindex`, `ifindex`, `tstamp`, `cb[]`, `wire_len`, `gso_segs` and
//! `hwtstamp` as the program left them; `skb_out` is the whole `__sk_buff` as the program left
//! it (`tc_classid`, `tc_index`, `queue_mapping`, `hash`, `vlan_*`, `protocol`, ...).
//!
//! The packet lies in a buffer with room at both ends; helpers that need more room move it to a
//! larger one (as `pskb_expand_head` does), so packet pointers the program held before such a
//! call no longer reach it (the kernel's verifier makes the program reload them). The packet's
//! region and the `data`/`data_end` words follow every change (`sync`).

use crate::error::Trap;
use crate::memory::{Region, Regions};

use super::layout::skb as off;
use super::run_state::{OwnedBuf, RunState};
use super::Entry;

/// tc actions (`linux/pkt_cls.h`).
pub const TC_ACT_OK: u64 = 0;
pub const TC_ACT_SHOT: u64 = 2;
pub const TC_ACT_REDIRECT: u64 = 7;

pub const ETH_HLEN: u64 = 14;
/// Headroom of the test run's skb (`NET_SKB_PAD + NET_IP_ALIGN` on x86-64).
const TEST_RUN_HEADROOM: u64 = 64;
/// The largest test-run input: a page less the headroom and `skb_shared_info` (320 bytes).
pub const TC_INPUT_MAX: u64 = 4096 - TEST_RUN_HEADROOM - 320;
/// Room kept past the packet when the buffer is made: small growth needs no new buffer.
const TAILROOM: u64 = 256;
/// The loopback device, which the test run's skb belongs to: its ifindex, MTU, header length.
pub const LOOPBACK_IFINDEX: u32 = 1;
pub const LOOPBACK_MTU: u32 = 65536;
/// `__bpf_skb_max_len` on the loopback device: MTU plus the Ethernet header.
pub const SKB_MAX_LEN: u64 = LOOPBACK_MTU as u64 + ETH_HLEN;
/// `wire_len` may not exceed `GSO_LEGACY_MAX_SIZE`; `gso_segs` not `GSO_MAX_SEGS`.
const GSO_LEGACY_MAX_SIZE: u32 = 65536;
const GSO_MAX_SEGS: u32 = 65535;

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
const COPIED_BACK: &[(u32, u32)] = &[
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
const U16_FIELDS: &[u32] = &[off::QUEUE_MAPPING, off::TC_INDEX, off::TC_CLASSID];

/// The packet of a tc run and what the kernel's `sk_buff` knows about it besides the context
/// fields. Offsets are from the start of `buf`.
pub struct TcSkb {
    buf: OwnedBuf,
    data: u64,
    tail: u64,
    /// Where the MAC and network headers start (`skb->mac_header`, `skb->network_header`).
    mac_header: u64,
    network_header: u64,
    /// `skb->mac_len`: 0 in the test run's skb, set by the helpers that call
    /// `skb_reset_mac_len` (the VLAN helpers, `bpf_skb_change_head`).
    pub mac_len: u64,
    /// The context image the caller gave (zero-extended), for `ctx_out`.
    input: Vec<u8>,
    /// `skb->encapsulation`: set by `bpf_skb_adjust_room` with an encapsulation flag.
    pub encapsulation: bool,
    /// `skb->sw_hash || skb->l4_hash`: `skb->hash` is valid (`bpf_get_hash_recalc` keeps it).
    pub hash_valid: bool,
    /// The packet region of the run as it is now (what `sync` replaces).
    region: Region,
}

fn u32_at(b: &[u8], at: u32) -> u32 {
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
fn pkt_type(packet: &[u8]) -> u32 {
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

/// Writes what a helper changed into the run: the context's hidden pointer words and `len`, the
/// packet's region, the packet `LD_ABS` reads and the places of messages.
pub fn sync(state: &mut RunState, regions: &mut Regions) {
    let Some(skb) = state.tc.as_deref_mut() else {
        return;
    };
    let (addr, len) = (skb.data_addr(), skb.len());
    let region = Region::new(addr, len, true);
    if region != skb.region {
        regions.set_data(region);
        skb.region = region;
    }
    if let Some(ctx) = &state.ctx {
        ctx.write_u64(off::HIDDEN_DATA, addr);
        ctx.write_u64(off::HIDDEN_DATA_END, addr + len);
        ctx.write_u64(off::HIDDEN_DATA_META, addr);
        ctx.write_u32(off::LEN, len as u32);
    }
    state.data = (addr, len);
    state.skb_packet = (addr, len);
    state.packet_moved = Some((addr, len));
}

/// Builds the packet and `struct __sk_buff` of a run (see the module comment).
pub(crate) fn prepare(
    data: &[u8],
    ctx_in: Option<&[u8]>,
    state: &mut RunState,
    regions: &mut Regions,
) -> Result<Entry, Trap> {
    let len = data.len() as u64;
    if !(ETH_HLEN..=TC_INPUT_MAX).contains(&len) {
        return Err(Trap::invalid_input(format!(
            "the tc packet has {len} bytes; the kernel's test run takes {ETH_HLEN} (an Ethernet \
             header) to {TC_INPUT_MAX}"
        )));
    }
    let mut input = vec![0u8; off::SIZE as usize];
    if let Some(c) = ctx_in {
        if c.len() > off::SIZE as usize {
            return Err(Trap::invalid_input(format!(
                "the tc context is {} bytes; struct __sk_buff has {}",
                c.len(),
                off::SIZE
            )));
        }
        input[..c.len()].copy_from_slice(c);
    }
    let wire_len = u32_at(&input, off::WIRE_LEN);
    if wire_len != 0 && (u64::from(wire_len) < len || wire_len > GSO_LEGACY_MAX_SIZE) {
        return Err(Trap::invalid_input(format!(
            "__sk_buff.wire_len is {wire_len}: 0, or from the packet length ({len}) to \
             {GSO_LEGACY_MAX_SIZE}"
        )));
    }
    if u32_at(&input, off::GSO_SEGS) > GSO_MAX_SEGS {
        return Err(Trap::invalid_input(format!(
            "__sk_buff.gso_segs is {}: at most {GSO_MAX_SEGS}",
            u32_at(&input, off::GSO_SEGS)
        )));
    }
    let ctx = OwnedBuf::zeroed_from(state.spare_ctx.take(), off::BUFFER_SIZE as usize);
    // What the image may set (module comment); the rest is the run's own.
    for (at, n) in [
        (off::MARK, 8),
        (off::VLAN_PRESENT, 16),
        (off::INGRESS_IFINDEX, 8),
        (off::TC_INDEX, 32),
        (off::NAPI_ID, 4),
        (off::TSTAMP, 8),
        (off::GSO_SEGS, 4),
        (off::GSO_SIZE, 4),
        (off::HWTSTAMP, 8),
    ] {
        ctx.write(at as u64, &input[at as usize..(at + n) as usize]);
    }
    for &f in U16_FIELDS {
        ctx.write_u32(f, u32_at(&input, f) & 0xffff);
    }
    ctx.write_u32(off::LEN, len as u32);
    ctx.write_u32(off::PKT_TYPE, pkt_type(data));
    ctx.write_u32(off::PROTOCOL, eth_protocol(data));
    if u32_at(&input, off::IFINDEX) == 0 {
        ctx.write_u32(off::IFINDEX, LOOPBACK_IFINDEX);
    }
    ctx.write_u32(
        off::WIRE_LEN,
        if wire_len == 0 { len as u32 } else { wire_len },
    );
    let buf = OwnedBuf::zeroed((TEST_RUN_HEADROOM + len + TAILROOM) as usize);
    buf.write(TEST_RUN_HEADROOM, data);
    let addr = buf.addr + TEST_RUN_HEADROOM;
    let region = Region::new(addr, len, true);
    let skb = TcSkb {
        buf,
        data: TEST_RUN_HEADROOM,
        tail: TEST_RUN_HEADROOM + len,
        mac_header: TEST_RUN_HEADROOM,
        network_header: TEST_RUN_HEADROOM + ETH_HLEN,
        mac_len: 0,
        input,
        encapsulation: false,
        hash_valid: u32_at(&ctx.read(0, off::SIZE as u64), off::HASH) != 0,
        region,
    };
    ctx.write_u64(off::HIDDEN_DATA, addr);
    ctx.write_u64(off::HIDDEN_DATA_END, addr + len);
    ctx.write_u64(off::HIDDEN_DATA_META, addr);
    regions.set_data(region);
    // The writable fields first: the first region that contains an access decides.
    for &(at, n) in WRITABLE {
        regions.push_context(Region::new(ctx.addr + at as u64, n, true));
    }
    regions.push_context(Region::new(ctx.addr, off::BUFFER_SIZE as u64, false));
    state.ctx_addr = ctx.addr;
    state.skb_packet = (addr, len);
    state.data = (addr, len);
    state.ctx = Some(ctx);
    state.tc = Some(Box::new(skb));
    Ok(Entry {
        args: [state.ctx_addr, 0, 0, 0, 0],
        packet: (addr, len),
    })
}

/// The context bytes a tc program may store to (`layout::TC_SKB`), as regions of the run.
const WRITABLE: &[(u32, u64)] = &[
    (off::MARK, 8),
    (off::PRIORITY, 4),
    (off::TC_INDEX, 24),
    (off::TC_CLASSID, 4),
    (off::TSTAMP, 8),
];

/// The context image the kernel's test run hands back (module comment).
pub(crate) fn ctx_out(state: &RunState) -> Option<Vec<u8>> {
    let (skb, ctx) = (state.tc.as_deref()?, state.ctx.as_ref()?);
    let mut out = skb.input.clone();
    for &(at, n) in COPIED_BACK {
        out[at as usize..(at + n) as usize].copy_from_slice(&ctx.read(at as u64, n as u64));
    }
    Some(out)
}

/// The whole `__sk_buff` as the program left it (pointer fields read 0).
pub(crate) fn skb_out(state: &RunState) -> Option<Vec<u8>> {
    let ctx = state.ctx.as_ref()?;
    let mut out = ctx.read(0, off::SIZE as u64);
    for at in [off::DATA, off::DATA_END, off::DATA_META] {
        out[at as usize..at as usize + 4].fill(0);
    }
    Some(out)
}

/// The run's `u32` context field at `at`.
pub fn field(state: &RunState, at: u32) -> u32 {
    state.ctx.as_ref().map_or(0, |c| {
        u32::from_le_bytes(c.read(at as u64, 4).try_into().expect("4 bytes"))
    })
}

/// Sets the run's `u32` context field at `at`.
pub fn set_field(state: &RunState, at: u32, value: u32) {
    if let Some(c) = &state.ctx {
        c.write_u32(at, value);
    }
}
