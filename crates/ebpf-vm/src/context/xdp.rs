//! XDP: the frame (headroom, packet, room to grow), `struct xdp_md`, and the three adjust helpers'
//! arithmetic with the kernel's limits and errors (net/core/filter.c, as of Linux 6.x).
//!
//! The frame is laid out as the kernel's `BPF_PROG_TEST_RUN` lays out an XDP buffer:
//! `data_hard_start`, then `XDP_PACKET_HEADROOM` (256) bytes of headroom whose first 40 bytes the
//! kernel reserves for `struct xdp_frame`, then metadata (if the caller gave some) ending where the
//! packet starts, then the packet, then free room up to `data_hard_end`, which lies 320 bytes
//! (`skb_shared_info`) before the end of a 4096-byte frame. So the linear part holds at most
//! 3,520 packet bytes; the rest of a longer input goes into fragments (`xdp_frags`), which
//! `data_end` does not cover. As in Linux 6.18, an input whose packet (after the metadata) is
//! shorter than an Ethernet header is refused (EINVAL), and so is one that needs more than 17
//! fragments (the kernel: ENOMEM).
//!
//! In checked mode the whole frame `[data_hard_start, data_hard_end)` is one writable region:
//! a program cannot reach outside it, but, unlike under the kernel's verifier, it is not stopped
//! from touching the headroom below `data_meta`.

use crate::error::Trap;
use crate::memory::{Region, Regions};

use super::layout::xdp as off;
use super::run_state::{OwnedBuf, RunState};
use super::xdp_frags::{XdpFrags, FRAG_PAGE_SIZE, MAX_FRAGS};
use super::Entry;
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
const XDP_FRAME_END: u64 = XDP_FRAME_SIZE - XDP_TAILROOM;
/// The most packet bytes the linear part holds: from the headroom to `data_hard_end` (3,520).
pub const XDP_LINEAR_MAX: u64 = XDP_FRAME_END - XDP_PACKET_HEADROOM;

/// XDP actions (`enum xdp_action`).
pub const XDP_ABORTED: u64 = 0;
pub const XDP_DROP: u64 = 1;
pub const XDP_PASS: u64 = 2;
pub const XDP_TX: u64 = 3;
pub const XDP_REDIRECT: u64 = 4;

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
    /// The packet bytes past the linear part (`data_end`).
    frags: XdpFrags,
    /// The context buffer whose hidden pointer words mirror `data`, `data_end`, `data_meta`.
    ctx: Option<OwnedBuf>,
    /// The lowest `data_meta` and highest `data_end` the frame had, as offsets from
    /// `hard_start`: where a verified program and the helpers can have written (see
    /// `prepare`'s reuse of a frame).
    touched: (u64, u64),
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
    fn sync(&mut self) {
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

fn field(ctx: &[u8], at: u32) -> u32 {
    let mut b = [0u8; 4];
    let at = at as usize;
    if at < ctx.len() {
        let n = (ctx.len() - at).min(4);
        b[..n].copy_from_slice(&ctx[at..at + n]);
    }
    u32::from_le_bytes(b)
}

/// Builds the frame and `struct xdp_md` of a run, as Linux 6.18's `bpf_prog_test_run_xdp` does.
///
/// `ctx_in` (optional) is an `xdp_md` image, checked as the kernel's test run checks it:
/// `data` = how many leading bytes of `data` are metadata (a multiple of 4, at most 216),
/// `data_end` = where the linear part ends (metadata included; at most the input length, and 0
/// means all of it), `data_meta` = 0, `egress_ifindex` = 0, and `rx_queue_index` only with an
/// `ingress_ifindex`. Without it, `ingress_ifindex` is 1 (the loopback device, what the kernel's
/// test run reports) and there is no metadata. The packet after the metadata must have at least
/// 14 bytes; past the linear part's 3,520 bytes (or `data_end`) it continues in fragments.
///
/// One difference: the kernel takes `data_end` = 0 literally (an empty linear part); here it means
/// "the whole input", so that a context image need not repeat the input's length.
pub(crate) fn prepare(
    data: &[u8],
    ctx_in: Option<&[u8]>,
    state: &mut RunState,
    regions: &mut Regions,
) -> Result<Entry, Trap> {
    let len = data.len() as u64;
    let (metalen, linear_end, ingress, rxq) = match ctx_in {
        None => (0u64, len, 1u32, 0u32),
        Some(c) => {
            if c.len() > off::SIZE as usize {
                return Err(Trap::invalid_input(format!(
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
            if dm != 0 || de > len || d > de || metalen_invalid(d) || d > XDP_META_MAX_INPUT {
                return Err(Trap::invalid_input(format!(
                    "xdp_md must have data_meta = 0, data_end = the end of the linear part (at \
                     most the input length, {len}) and data = a metadata size that is a \
                     multiple of 4 and at most {XDP_META_MAX_INPUT} (got data = {d}, data_end = \
                     {de}, data_meta = {dm})"
                )));
            }
            if field(c, off::EGRESS_IFINDEX) != 0 {
                return Err(Trap::invalid_input(
                    "xdp_md.egress_ifindex must be 0 on input",
                ));
            }
            let (ing, rxq) = (
                field(c, off::INGRESS_IFINDEX),
                field(c, off::RX_QUEUE_INDEX),
            );
            if ing == 0 && rxq != 0 {
                return Err(Trap::invalid_input(
                    "xdp_md.rx_queue_index needs an ingress_ifindex",
                ));
            }
            // No device named: the loopback device, as in the kernel's test run.
            (d, de, if ing == 0 { 1 } else { ing }, rxq)
        }
    };
    if len - metalen < ETH_HLEN {
        return Err(Trap::invalid_input(format!(
            "the XDP packet has {} bytes after {metalen} bytes of metadata; the kernel's test run \
             needs at least an Ethernet header ({ETH_HLEN})",
            len - metalen
        )));
    }
    // The linear part (metadata included) ends at `data_end`, and at the frame's end at most.
    let linear_end = linear_end.min(metalen + XDP_LINEAR_MAX);
    let Some(frags) = XdpFrags::from_bytes(&data[linear_end as usize..]) else {
        return Err(Trap::invalid_input(format!(
            "the XDP input has {len} bytes; at most {} fit (the linear part and {MAX_FRAGS} \
             fragments of {FRAG_PAGE_SIZE} bytes; the kernel's test run fails with ENOMEM)",
            linear_end + (MAX_FRAGS * FRAG_PAGE_SIZE) as u64
        )));
    };
    let pkt_len = linear_end - metalen;
    // The context first: allocators hand out ascending addresses, so it then lies below the
    // frame rather than just past `data_hard_end`, where a trap's address past the frame would be
    // nearer the context than the data and be named from it (`places`).
    // The previous run's frame on the same run space (a batch), zeroed again: the same memory
    // as a new frame, without the allocations. A verified program stores only inside the packet
    // and its metadata (the verifier proved each store against `data_meta`/`data_end`), and
    // the helpers write there too, so the bytes the last run may have changed are those it
    // ever had between `data_meta` and `data_end` (`touched`): only they need zeroing, not the
    // whole 3,776 bytes a checked program may write.
    let (spare_buf, spare_ctx, spare_box) = match state.spare_xdp.take() {
        Some(mut f) => {
            let buf = std::mem::replace(&mut f.buf, OwnedBuf::empty());
            let buf = match f.stores_proved {
                true => buf.zero_range(f.touched.0, f.touched.1 - f.touched.0),
                false => OwnedBuf::zeroed_from(Some(buf), XDP_FRAME_END as usize),
            };
            (Some(buf), f.ctx.take(), Some(f))
        }
        None => (None, None, None),
    };
    let ctx = OwnedBuf::zeroed_from(spare_ctx, off::BUFFER_SIZE as usize);
    let buf = spare_buf.unwrap_or_else(|| OwnedBuf::zeroed(XDP_FRAME_END as usize));
    buf.write(XDP_PACKET_HEADROOM - metalen, &data[..linear_end as usize]);
    let hard_start = buf.addr;
    ctx.write_u32(off::INGRESS_IFINDEX, ingress);
    ctx.write_u32(off::RX_QUEUE_INDEX, rxq);
    let ctx_addr = ctx.addr;
    let mut frame = XdpFrame {
        hard_start,
        hard_end: hard_start + XDP_FRAME_END,
        data_meta: hard_start + XDP_PACKET_HEADROOM - metalen,
        data: hard_start + XDP_PACKET_HEADROOM,
        data_end: hard_start + XDP_PACKET_HEADROOM + pkt_len,
        buf,
        frags,
        ctx: Some(ctx),
        touched: (u64::MAX, 0),
        // Until the run ends and says otherwise (`RunState::recycle`).
        stores_proved: true,
    };
    frame.sync();
    regions.set_data(Region::new(hard_start, XDP_FRAME_END, true));
    regions.push_context(Region::new(ctx_addr, off::BUFFER_SIZE as u64, false));
    let packet = (frame.data, pkt_len);
    state.ctx_addr = ctx_addr;
    state.xdp = Some(match spare_box {
        Some(mut b) => {
            *b = frame;
            b
        }
        None => Box::new(frame),
    });
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
