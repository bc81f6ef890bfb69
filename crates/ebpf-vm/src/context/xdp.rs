//! XDP: how a run's frame (headroom, packet, room to grow) and `struct xdp_md` are built from a
//! test-run input. The frame itself and the three adjust helpers' arithmetic on it, with the
//! kernel's limits and errors (net/core/filter.c, as of Linux 6.x), are `run_state::xdp`'s.
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

use super::Entry;
use crate::run_state::layout::xdp as off;
pub use crate::run_state::xdp::*;
use crate::run_state::xdp_frags::{XdpFrags, FRAG_PAGE_SIZE, MAX_FRAGS};
use crate::run_state::{OwnedBuf, RunState};

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

/// The frame of the run before, made the frame of a run on `data` (a batch's next packet; no
/// metadata, the default `xdp_md`, as `prepare` builds them without a context image): the bytes
/// the last run may have written (`touched`: a verified program's stores and the helpers' lie
/// there) are zeroed where the packet is not written over them, the packet is written at the
/// headroom and the bounds are reset. `None`
/// when `prepare` must build the frame instead: no frame yet, a frame a checked program wrote
/// (it may have stored anywhere in it), fragments, or a packet that does not fit the linear part
/// or is shorter than an Ethernet header. Inline: it runs once per packet of a batch.
#[inline]
pub(crate) fn refill(state: &mut RunState, data: &[u8]) -> Option<Entry> {
    let len = data.len() as u64;
    let frame = state.xdp.as_deref_mut()?;
    if !(ETH_HLEN..=XDP_LINEAR_MAX).contains(&len)
        || !state.packet_stores_proved
        || !frame.frags.is_empty()
    {
        return None;
    }
    // What the packet is written over needs no zeroing: only the touched bytes before and after.
    let (lo, hi) = frame.touched;
    let (p0, p1) = (XDP_PACKET_HEADROOM, XDP_PACKET_HEADROOM + len);
    if lo < hi.min(p0) {
        frame.buf.zero(lo, hi.min(p0) - lo);
    }
    if lo.max(p1) < hi {
        frame.buf.zero(lo.max(p1), hi - lo.max(p1));
    }
    frame.buf.write(XDP_PACKET_HEADROOM, data);
    frame.data = frame.hard_start + XDP_PACKET_HEADROOM;
    frame.data_meta = frame.data;
    frame.data_end = frame.data + len;
    frame.touched = (u64::MAX, 0);
    frame.sync();
    Some(Entry {
        args: [state.ctx_addr, 0, 0, 0, 0],
        packet: (frame.data, len),
    })
}

/// Where the loop of machine code that runs a batch's packets (`jit::Loop`) finds the frame:
/// `data` (each packet is copied there), the end of what the runs before may have written from
/// `data` on, and the two words that hold `data_end` (the context's hidden word, the frame's).
#[cfg(target_arch = "x86_64")]
pub(crate) struct LoopFrame {
    pub data: u64,
    pub written_end: u64,
    pub ctx_data_end: u64,
    pub frame_data_end: u64,
}

/// The frame of the run before, made ready for the loop of machine code, which per packet writes
/// only the packet at `data` and `data_end` and zeroes what the run before wrote past the packet
/// (see `refill`, which it does the work of): the bytes before `data` a run may have written (its
/// metadata, a moved head) zeroed, `data` and `data_meta` put back at the headroom's end. `None`
/// where `refill` would give up (no frame, a checked program's frame, fragments).
#[cfg(target_arch = "x86_64")]
pub(crate) fn loop_frame(state: &mut RunState) -> Option<LoopFrame> {
    let frame = state.xdp.as_deref_mut()?;
    if !state.packet_stores_proved || !frame.frags.is_empty() {
        return None;
    }
    let (lo, hi) = frame.touched;
    if lo < hi.min(XDP_PACKET_HEADROOM) {
        frame.buf.zero(lo, hi.min(XDP_PACKET_HEADROOM) - lo);
    }
    let data = frame.hard_start + XDP_PACKET_HEADROOM;
    (frame.data, frame.data_meta) = (data, data);
    let ctx = frame.ctx.as_ref()?;
    ctx.write_u64(off::HIDDEN_DATA, data);
    ctx.write_u64(off::HIDDEN_DATA_META, data);
    frame.touched = (XDP_PACKET_HEADROOM, hi.max(XDP_PACKET_HEADROOM));
    Some(LoopFrame {
        data,
        written_end: frame.hard_start + frame.touched.1,
        ctx_data_end: ctx.addr + off::HIDDEN_DATA_END as u64,
        frame_data_end: std::ptr::addr_of_mut!(frame.data_end) as u64,
    })
}

/// After the loop of machine code: what it wrote (up to `written_end`) counts as touched, for the
/// zeroing before the next packet (`refill`, `loop_frame`); `data_end` is where the loop or a
/// helper left it.
#[cfg(target_arch = "x86_64")]
pub(crate) fn after_loop(state: &mut RunState, written_end: u64) -> Option<(u64, u64)> {
    let frame = state.xdp.as_deref_mut()?;
    let (lo, hi) = frame.touched;
    frame.touched = (
        lo.min(XDP_PACKET_HEADROOM),
        hi.max(written_end - frame.hard_start),
    );
    Some((frame.data, frame.data_end - frame.data))
}

/// Mode verified: the loads and stores the engines run without a check, by slot: those the
/// verifier proved (`proved`: `VerifierReport::packet_proved`, the packet's accesses included:
/// the verifier proved them against `data_end` or `data`, as the kernel's JIT trusts, and the
/// packet lies in the frame, memory of the whole run whose linear part `data_end` never passes;
/// a helper that moves the packet makes the verifier forget every packet pointer, as the
/// kernel's does), and the loads of an XDP program whose base is the unmodified
/// context pointer on every path (`ctx_bases`) and that, as the context rewrite left them in
/// `insns`, lie inside the context buffer: every XDP run's r1 points to `BUFFER_SIZE` bytes of
/// it (`prepare`), a region of the run, so their check could only succeed.
pub(crate) fn direct_accesses(
    insns: &[crate::isa::Insn],
    proved: &[bool],
    ctx_bases: &[crate::context::rewrite::CtxBase],
) -> Vec<bool> {
    use crate::isa::opcodes::{access_size, class, CLASS_LDX, MODE_MEM};
    let in_buffer = |i: &crate::isa::Insn| {
        class(i.opcode) == CLASS_LDX
            && i.opcode & 0xe0 == MODE_MEM
            && i.off >= 0
            && i.off as u64 + access_size(i.opcode) as u64 <= off::BUFFER_SIZE as u64
    };
    (insns.iter().zip(proved).zip(ctx_bases))
        .map(|((insn, &proved), &base)| {
            proved || (base == crate::context::rewrite::CtxBase::Ctx && in_buffer(insn))
        })
        .collect()
}
