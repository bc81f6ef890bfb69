//! The XDP frame of one run (`xdp_buff`): headroom, metadata, packet, room to grow, and the
//! fragments past the linear part; the three adjust helpers' arithmetic on it with the kernel's
//! limits and errors (net/core/filter.c). How a run's frame and `struct xdp_md` are built from a
//! test-run input is `context::xdp`'s.

use super::layout::xdp as off;
use super::xdp_frags::XdpFrags;
use super::OwnedBuf;
use crate::vm::errno::{EACCES, EINVAL};

pub const XDP_PACKET_HEADROOM: u64 = 256;
/// `sizeof(struct xdp_frame)`, kept free at the start of the headroom.
pub const XDP_FRAME_RESERVED: u64 = 40;
/// `SKB_DATA_ALIGN(sizeof(struct skb_shared_info))` on x86-64: room the frame keeps at its end.
pub const XDP_TAILROOM: u64 = 320;
/// The frame size `BPF_PROG_TEST_RUN` uses (one page).
pub const XDP_FRAME_SIZE: u64 = 4096;
pub const ETH_HLEN: u64 = 14;
/// The largest metadata area: `skb_shared_info.meta_len` is a u8 (and it must be a multiple of 4).
pub const XDP_META_MAX: u64 = 255;
/// The largest metadata a test run's input may carry: the headroom less `struct xdp_frame`.
pub const XDP_META_MAX_INPUT: u64 = XDP_PACKET_HEADROOM - XDP_FRAME_RESERVED;
/// `data_hard_end`, from `data_hard_start`.
pub(crate) const XDP_FRAME_END: u64 = XDP_FRAME_SIZE - XDP_TAILROOM;
/// The most packet bytes the linear part holds: from the headroom to `data_hard_end` (3,520).
pub const XDP_LINEAR_MAX: u64 = XDP_FRAME_END - XDP_PACKET_HEADROOM;

/// XDP actions (`enum xdp_action`).
pub const XDP_ABORTED: u64 = 0;
pub const XDP_DROP: u64 = 1;
pub const XDP_PASS: u64 = 2;
pub const XDP_TX: u64 = 3;
pub const XDP_REDIRECT: u64 = 4;

pub(crate) fn metalen_invalid(metalen: u64) -> bool {
    !metalen.is_multiple_of(4) || metalen > XDP_META_MAX
}

/// The frame of one XDP run. All fields are host addresses.
pub struct XdpFrame {
    pub(crate) buf: OwnedBuf,
    pub hard_start: u64,
    /// `data_hard_end`: the packet may grow up to here.
    pub hard_end: u64,
    pub data_meta: u64,
    pub data: u64,
    pub data_end: u64,
    /// The packet bytes past the linear part (`data_end`).
    pub(crate) frags: XdpFrags,
    /// The context buffer whose hidden pointer words mirror `data`, `data_end`, `data_meta`.
    pub(crate) ctx: Option<OwnedBuf>,
    /// The lowest `data_meta` and highest `data_end` the frame had, as offsets from
    /// `hard_start`: where a verified program and the helpers can have written (see
    /// `prepare`'s reuse of a frame).
    pub(crate) touched: (u64, u64),
    /// Every program that ran on the frame was verified (`RunState::packet_stores_proved`, set
    /// when the run ends): then only `touched` can have changed.
    pub(crate) stores_proved: bool,
}

impl XdpFrame {
    /// The context buffer's address and length, for naming places (`places`).
    pub(crate) fn ctx_extent(&self) -> Option<(u64, u64)> {
        self.ctx.as_ref().map(|c| (c.addr, c.len))
    }

    /// Writes the current bounds into the context's hidden pointer words, and widens `touched`.
    pub(crate) fn sync(&mut self) {
        let (lo, hi) = (
            self.data_meta - self.hard_start,
            self.data_end - self.hard_start,
        );
        self.touched = (self.touched.0.min(lo), self.touched.1.max(hi));
        if let Some(ctx) = &self.ctx {
            ctx.write_u64(off::HIDDEN_DATA, self.data);
            ctx.write_u64(off::HIDDEN_DATA_END, self.data_end);
            ctx.write_u64(off::HIDDEN_DATA_META, self.data_meta);
        }
    }

    fn metalen(&self) -> u64 {
        self.data - self.data_meta
    }

    /// `bpf_xdp_adjust_head`: moves `data` by `delta` (the metadata moves with it). Returns 0 or
    /// -EINVAL when the new start would eat into the reserved area or leave less than an Ethernet
    /// header.
    pub fn adjust_head(&mut self, delta: i32) -> i64 {
        let metalen = self.metalen();
        let lowest = self.hard_start + XDP_FRAME_RESERVED + metalen;
        let new = self.data as i64 + delta as i64;
        if new < lowest as i64 || new > (self.data_end - ETH_HLEN) as i64 {
            return -EINVAL;
        }
        let new_meta = (self.data_meta as i64 + delta as i64) as u64;
        if metalen > 0 {
            // SAFETY: both ranges lie inside the frame (new_meta >= hard_start + 40 by the check).
            unsafe {
                std::ptr::copy(
                    self.data_meta as *const u8,
                    new_meta as *mut u8,
                    metalen as usize,
                )
            };
        }
        self.data_meta = new_meta;
        self.data = new as u64;
        self.sync();
        0
    }

    /// `bpf_xdp_adjust_meta`: moves `data_meta` by `delta`. -EINVAL outside
    /// `[hard_start + 40, data]`, -EACCES for a metadata size not a multiple of 4 or over 255.
    pub fn adjust_meta(&mut self, delta: i32) -> i64 {
        let meta = self.data_meta as i64 + delta as i64;
        if meta < (self.hard_start + XDP_FRAME_RESERVED) as i64 || meta > self.data as i64 {
            return -EINVAL;
        }
        if metalen_invalid(self.data - meta as u64) {
            return -EACCES;
        }
        self.data_meta = meta as u64;
        self.sync();
        0
    }

    /// `bpf_xdp_adjust_tail`: moves the end of the packet by `delta`; bytes gained are zeroed.
    /// Linear packets: -EINVAL past `data_hard_end` or below an Ethernet header. Packets with
    /// fragments: growing extends the last fragment within its page (-EINVAL beyond); shrinking
    /// takes whole fragments from the end, then the linear part once none is left (-EINVAL when
    /// fewer than 14 bytes would remain).
    pub fn adjust_tail(&mut self, delta: i32) -> i64 {
        if !self.frags.is_empty() {
            let n = delta.unsigned_abs() as u64;
            if delta >= 0 {
                return if self.frags.grow(n) { 0 } else { -EINVAL };
            }
            if n as i64 > self.buff_len() as i64 - ETH_HLEN as i64 {
                return -EINVAL;
            }
            let from_linear = self.frags.shrink(n);
            self.data_end -= from_linear;
            self.sync();
            return 0;
        }
        let end = self.data_end as i64 + delta as i64;
        if end > self.hard_end as i64 || end < (self.data + ETH_HLEN) as i64 {
            return -EINVAL;
        }
        if delta > 0 {
            // SAFETY: [data_end, end) lies inside the frame (end <= hard_end).
            unsafe { std::ptr::write_bytes(self.data_end as *mut u8, 0, delta as usize) };
        }
        self.data_end = end as u64;
        self.sync();
        0
    }

    fn bytes(&self, from: u64, to: u64) -> Vec<u8> {
        self.buf.read(from - self.hard_start, to - from)
    }

    /// The whole packet: the linear part `[data, data_end)`, then the fragments.
    pub fn packet(&self) -> Vec<u8> {
        let mut out = self.bytes(self.data, self.data_end);
        out.extend_from_slice(&self.frags.bytes());
        out
    }

    /// Packet bytes, linear part and fragments (`xdp_get_buff_len`).
    pub fn buff_len(&self) -> u64 {
        self.data_end - self.data + self.frags.len()
    }

    /// Packet bytes `[at, at + len)` across the linear part and the fragments; `None` when the
    /// range goes past the end (`bpf_xdp_copy`, `bpf_xdp_load_bytes`).
    pub fn read_packet(&self, at: u64, len: u64) -> Option<Vec<u8>> {
        let mut out = vec![0u8; usize::try_from(len).ok()?];
        let linear = self.data_end - self.data;
        if at.checked_add(len)? > self.buff_len() {
            return None;
        }
        let in_linear = linear.saturating_sub(at).min(len);
        if in_linear > 0 {
            out[..in_linear as usize]
                .copy_from_slice(&self.bytes(self.data + at, self.data + at + in_linear));
        }
        if in_linear < len {
            // The rest lies past the linear part: at + in_linear >= linear.
            self.frags
                .read(at + in_linear - linear, &mut out[in_linear as usize..]);
        }
        Some(out)
    }

    /// Writes `bytes` at packet offset `at` across the linear part and the fragments; false when
    /// the range goes past the end (`bpf_xdp_store_bytes`).
    pub fn write_packet(&mut self, at: u64, bytes: &[u8]) -> bool {
        let len = bytes.len() as u64;
        let linear = self.data_end - self.data;
        match at.checked_add(len) {
            Some(end) if end <= self.buff_len() => {}
            _ => return false,
        }
        let in_linear = linear.saturating_sub(at).min(len);
        if in_linear > 0 {
            self.buf.write(
                self.data + at - self.hard_start,
                &bytes[..in_linear as usize],
            );
        }
        if in_linear < len {
            self.frags
                .write(at + in_linear - linear, &bytes[in_linear as usize..]);
        }
        true
    }

    /// The metadata, `[data_meta, data)`.
    pub fn meta(&self) -> Vec<u8> {
        self.bytes(self.data_meta, self.data)
    }
}
