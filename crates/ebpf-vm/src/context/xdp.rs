//! XDP: the frame (headroom, packet, room to grow), `struct xdp_md`, and the three adjust helpers'
//! arithmetic with the kernel's limits and errors (net/core/filter.c, as of Linux 6.x).
//!
//! The frame is laid out as the kernel's `BPF_PROG_TEST_RUN` lays out an XDP buffer:
//! `data_hard_start`, then `XDP_PACKET_HEADROOM` (256) bytes of headroom whose first 40 bytes the
//! kernel reserves for `struct xdp_frame`, then metadata (if the caller gave some) ending where the
//! packet starts, then the packet, then free room up to `data_hard_end`, which lies 320 bytes
//! (`skb_shared_info`) before the end of a 4096-byte frame. A larger packet gets a frame exactly
//! big enough for it (the kernel would switch to fragments).
//!
//! In checked mode the whole frame `[data_hard_start, data_hard_end)` is one writable region:
//! a program cannot reach outside it, but, unlike under the kernel's verifier, it is not stopped
//! from touching the headroom below `data_meta`.

use crate::error::{Trap, TrapKind};
use crate::memory::{Region, Regions};

use super::layout::xdp as off;
use super::run_state::{OwnedBuf, RunState};
use super::Entry;

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

/// XDP actions (`enum xdp_action`).
pub const XDP_ABORTED: u64 = 0;
pub const XDP_DROP: u64 = 1;
pub const XDP_PASS: u64 = 2;
pub const XDP_TX: u64 = 3;
pub const XDP_REDIRECT: u64 = 4;

const EINVAL: i64 = 22;
const EACCES: i64 = 13;

fn metalen_invalid(metalen: u64) -> bool {
    !metalen.is_multiple_of(4) || metalen > XDP_META_MAX
}

/// The frame of one XDP run. All fields are host addresses.
pub struct XdpFrame {
    buf: OwnedBuf,
    pub hard_start: u64,
    /// `data_hard_end`: the packet may grow up to here.
    pub hard_end: u64,
    pub data_meta: u64,
    pub data: u64,
    pub data_end: u64,
    /// The context buffer whose hidden pointer words mirror `data`, `data_end`, `data_meta`.
    ctx: Option<OwnedBuf>,
}

impl XdpFrame {
    /// The context buffer's address and length, for naming places (`places`).
    pub(crate) fn ctx_extent(&self) -> Option<(u64, u64)> {
        self.ctx.as_ref().map(|c| (c.addr, c.len))
    }

    /// Writes the current bounds into the context's hidden pointer words.
    fn sync(&self) {
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

    /// `bpf_xdp_adjust_tail`: moves `data_end` by `delta`. -EINVAL past `data_hard_end` or below
    /// an Ethernet header; bytes gained are zeroed.
    pub fn adjust_tail(&mut self, delta: i32) -> i64 {
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

    /// The packet, `[data, data_end)`.
    pub fn packet(&self) -> Vec<u8> {
        self.bytes(self.data, self.data_end)
    }

    /// The metadata, `[data_meta, data)`.
    pub fn meta(&self) -> Vec<u8> {
        self.bytes(self.data_meta, self.data)
    }
}

fn bad_input(message: String) -> Trap {
    Trap {
        kind: TrapKind::InvalidInput,
        pc: 0,
        addr: 0,
        size: 0,
        insn_count: 0,
        message,
        place: None,
    }
}

fn field(ctx: &[u8], at: u32) -> u32 {
    let mut b = [0u8; 4];
    let at = at as usize;
    if at < ctx.len() {
        let n = (ctx.len() - at).min(4);
        b[..n].copy_from_slice(&ctx[at..at + n]);
    }
    u32::from_le_bytes(b)
}

/// Builds the frame and `struct xdp_md` of a run.
///
/// `ctx_in` (optional) is an `xdp_md` image, checked as the kernel's test run checks it:
/// `data` = how many leading bytes of `data` are metadata (a multiple of 4, at most 255),
/// `data_end` = the input length (or 0 for "all of it"), `data_meta` = 0, `egress_ifindex` = 0,
/// and `rx_queue_index` only with an `ingress_ifindex`. Without it, `ingress_ifindex` is 1 (the
/// loopback device, what the kernel's test run reports) and there is no metadata.
pub(crate) fn prepare(
    data: &[u8],
    ctx_in: Option<&[u8]>,
    state: &mut RunState,
    regions: &mut Regions,
) -> Result<Entry, Trap> {
    let len = data.len() as u64;
    let (metalen, ingress, rxq) = match ctx_in {
        None => (0u64, 1u32, 0u32),
        Some(c) => {
            if c.len() > off::SIZE as usize {
                return Err(bad_input(format!(
                    "the XDP context is {} bytes; struct xdp_md has {}",
                    c.len(),
                    off::SIZE
                )));
            }
            let (d, de, dm) = (
                field(c, off::DATA) as u64,
                field(c, off::DATA_END) as u64,
                field(c, off::DATA_META),
            );
            let de = if de == 0 { len } else { de };
            if dm != 0 || de != len || d > de || metalen_invalid(d) {
                return Err(bad_input(format!(
                    "xdp_md must have data_meta = 0, data_end = the input length ({len}) and \
                     data = a metadata size that is a multiple of 4 and at most {XDP_META_MAX} \
                     (got data = {d}, data_end = {de}, data_meta = {dm})"
                )));
            }
            if field(c, off::EGRESS_IFINDEX) != 0 {
                return Err(bad_input("xdp_md.egress_ifindex must be 0 on input".into()));
            }
            let (ing, rxq) = (
                field(c, off::INGRESS_IFINDEX),
                field(c, off::RX_QUEUE_INDEX),
            );
            if ing == 0 && rxq != 0 {
                return Err(bad_input(
                    "xdp_md.rx_queue_index needs an ingress_ifindex".into(),
                ));
            }
            // No device named: the loopback device, as in the kernel's test run.
            (d, if ing == 0 { 1 } else { ing }, rxq)
        }
    };
    let pkt_len = len - metalen;
    let frame_len = (XDP_FRAME_SIZE - XDP_TAILROOM).max(XDP_PACKET_HEADROOM + pkt_len);
    let buf = OwnedBuf::zeroed(frame_len as usize);
    buf.write(XDP_PACKET_HEADROOM - metalen, data);
    let hard_start = buf.addr;
    let ctx = OwnedBuf::zeroed(off::BUFFER_SIZE as usize);
    ctx.write_u32(off::INGRESS_IFINDEX, ingress);
    ctx.write_u32(off::RX_QUEUE_INDEX, rxq);
    let ctx_addr = ctx.addr;
    let frame = XdpFrame {
        hard_start,
        hard_end: hard_start + frame_len,
        data_meta: hard_start + XDP_PACKET_HEADROOM - metalen,
        data: hard_start + XDP_PACKET_HEADROOM,
        data_end: hard_start + XDP_PACKET_HEADROOM + pkt_len,
        buf,
        ctx: Some(ctx),
    };
    frame.sync();
    regions.push(Region::new(hard_start, frame_len, true));
    regions.push(Region::new(ctx_addr, off::BUFFER_SIZE as u64, false));
    let packet = (frame.data, pkt_len);
    state.ctx_addr = ctx_addr;
    state.xdp = Some(Box::new(frame));
    Ok(Entry {
        args: [ctx_addr, 0, 0, 0, 0],
        packet,
    })
}

/// The `xdp_md` a run hands back (as the kernel's test run does): `data` = metadata size,
/// `data_end` = metadata + packet size, `data_meta` = 0.
pub(crate) fn ctx_out(frame: &XdpFrame) -> Vec<u8> {
    let mut out = vec![0u8; off::SIZE as usize];
    let put = |out: &mut Vec<u8>, at: u32, v: u32| {
        out[at as usize..at as usize + 4].copy_from_slice(&v.to_le_bytes())
    };
    let metalen = (frame.data - frame.data_meta) as u32;
    put(&mut out, off::DATA, metalen);
    put(
        &mut out,
        off::DATA_END,
        (frame.data_end - frame.data_meta) as u32,
    );
    if let Some(ctx) = &frame.ctx {
        let b = ctx.read(off::INGRESS_IFINDEX as u64, 8);
        out[off::INGRESS_IFINDEX as usize..off::INGRESS_IFINDEX as usize + 8].copy_from_slice(&b);
    }
    out
}
