//! Packet helpers, as in net/core/filter.c: `bpf_skb_load_bytes` (26, socket filters),
//! `bpf_csum_diff` (28), the XDP bounds helpers `bpf_xdp_adjust_head` (44),
//! `bpf_xdp_adjust_meta` (54), `bpf_xdp_adjust_tail` (65) (the arithmetic is in
//! `context/xdp.rs`), and the XDP helpers that see the fragments of a long packet too:
//! `bpf_xdp_get_buff_len` (188), `bpf_xdp_load_bytes` (189), `bpf_xdp_store_bytes` (190). The context argument must be the run's context: anything else is refused,
//! as the kernel's verifier would.

use super::{HelperContext, HelperError, HelperTable};
use crate::vm::errno::{EFAULT, EINVAL};

pub const BPF_SKB_LOAD_BYTES: u32 = 26;
pub const BPF_CSUM_DIFF: u32 = 28;
pub const BPF_XDP_ADJUST_HEAD: u32 = 44;
pub const BPF_XDP_ADJUST_META: u32 = 54;
pub const BPF_XDP_ADJUST_TAIL: u32 = 65;
pub const BPF_XDP_GET_BUFF_LEN: u32 = 188;
pub const BPF_XDP_LOAD_BYTES: u32 = 189;
pub const BPF_XDP_STORE_BYTES: u32 = 190;

/// `bpf_xdp_load_bytes`/`store_bytes` refuse offsets and lengths above this with -EFAULT.
const XDP_BYTES_MAX: u64 = 0xffff;

pub(crate) fn require_ctx(cx: &HelperContext<'_>, r1: u64) -> Result<(), HelperError> {
    if cx.state.ctx_addr != 0 && r1 == cx.state.ctx_addr {
        Ok(())
    } else {
        Err(HelperError(format!(
            "r1 ({}) is not the program's context",
            cx.describe(r1)
        )))
    }
}

/// `bpf_skb_load_bytes(skb, offset, to, len)`: 0, or -EFAULT with `to` zeroed when the range is
/// not inside the packet.
fn skb_load_bytes(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    require_ctx(cx, a[0])?;
    let (offset, to, len) = (a[1] as u32 as u64, a[2], a[3] as u32 as u64);
    let (pkt, pkt_len) = cx.state.skb_packet;
    let src = if offset <= i32::MAX as u64 && offset + len <= pkt_len {
        Some(cx.regions.slice(pkt + offset, len).map(<[u8]>::to_vec))
    } else {
        None
    };
    let dst = cx.writable(to, len, "to")?;
    match src {
        Some(Ok(bytes)) => {
            dst.copy_from_slice(&bytes);
            Ok(0)
        }
        _ => {
            dst.fill(0);
            Ok((-EFAULT) as u64)
        }
    }
}

/// `csum_partial` as x86-64 Linux computes it: the one's complement sum of `seed` and the bytes
/// read as little-endian 32-bit words (the last one zero-padded), folded to 32 bits; it is 0 only
/// when everything added was 0, and 0xffffffff for any other sum that is 0 modulo 2^32 - 1.
fn csum_partial(bytes: &[u8], seed: u32) -> u32 {
    let mut sum = seed as u64;
    let mut any = seed != 0;
    for c in bytes.chunks(4) {
        let mut w = [0u8; 4];
        w[..c.len()].copy_from_slice(c);
        let w = u32::from_le_bytes(w);
        any |= w != 0;
        sum += w as u64;
    }
    while sum >> 32 != 0 {
        sum = (sum & 0xffff_ffff) + (sum >> 32);
    }
    if any && sum == 0 {
        0xffff_ffff
    } else {
        sum as u32
    }
}

/// One's complement 32-bit addition (the kernel's `csum_add`).
fn csum_add(a: u32, b: u32) -> u32 {
    let (r, carry) = a.overflowing_add(b);
    r + carry as u32
}

/// Folds 32 bits to 16 without complementing (the kernel's `csum_from32to16`).
fn from32to16(x: u32) -> u16 {
    (x.wrapping_add(x.rotate_right(16)) >> 16) as u16
}

/// `bpf_csum_diff` as Linux 6.13+ computes it (checked against Linux 6.18 with
/// `bpftool prog run`, see tests/helpers_packet.rs): with both buffers, the checksum of `to`
/// (seeded) minus that of `from`; with one, that one added (or, for `from`, removed); with
/// neither, the seed; always folded to 16 bits. (Older kernels returned the unfolded 32-bit
/// sum and refused sizes that are not multiples of 4.)
pub fn csum_diff_value(from: &[u8], to: &[u8], seed: u32) -> u64 {
    let ret = match (from.is_empty(), to.is_empty()) {
        (false, false) => csum_add(csum_partial(to, seed), !csum_partial(from, 0)),
        (true, false) => csum_partial(to, seed),
        (false, true) => !csum_partial(from, !seed),
        (true, true) => seed,
    };
    from32to16(ret) as u64
}

/// A copy of `len` bytes a helper argument points to (none for 0), or the error naming argument
/// `what` and where it points.
pub fn read_arg(
    cx: &HelperContext<'_>,
    addr: u64,
    len: u64,
    what: &str,
) -> Result<Vec<u8>, HelperError> {
    cx.readable(addr, len, what).map(<[u8]>::to_vec)
}

/// `bpf_csum_diff(from, from_size, to, to_size, seed)`.
fn csum_diff(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (from, from_size, to, to_size) = (a[0], a[1] as u32 as u64, a[2], a[3] as u32 as u64);
    let f = read_arg(cx, from, from_size, "from")?;
    let t = read_arg(cx, to, to_size, "to")?;
    Ok(csum_diff_value(&f, &t, a[4] as u32))
}

fn xdp_adjust(
    cx: &mut HelperContext<'_>,
    a: [u64; 5],
    op: fn(&mut crate::run_state::xdp::XdpFrame, i32) -> i64,
) -> Result<u64, HelperError> {
    require_ctx(cx, a[0])?;
    match cx.state.xdp.as_mut() {
        Some(frame) => Ok(op(frame, a[1] as i32) as u64),
        None => Ok((-EINVAL) as u64),
    }
}

/// The frame of an XDP run, for the helpers that take its context.
fn xdp_frame<'a>(
    cx: &'a mut HelperContext<'_>,
    r1: u64,
) -> Result<Option<&'a mut crate::run_state::xdp::XdpFrame>, HelperError> {
    require_ctx(cx, r1)?;
    Ok(cx.state.xdp.as_deref_mut())
}

/// `bpf_xdp_get_buff_len(ctx)`: the linear part and the fragments.
fn xdp_get_buff_len(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    Ok(xdp_frame(cx, a[0])?.map_or(0, |f| f.buff_len()))
}

/// The checks of the kernel's `bpf_xdp_pointer`: -EFAULT for an offset or length over 0xffff,
/// -EINVAL for a range past the end of the packet (fragments included).
fn xdp_range_error(frame: &crate::run_state::xdp::XdpFrame, offset: u64, len: u64) -> Option<i64> {
    if offset > XDP_BYTES_MAX || len > XDP_BYTES_MAX {
        Some(-EFAULT)
    } else if offset + len > frame.buff_len() {
        Some(-EINVAL)
    } else {
        None
    }
}

/// `bpf_xdp_load_bytes(ctx, offset, buf, len)`: packet bytes, across fragments, into `buf`.
fn xdp_load_bytes(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (offset, buf, len) = (a[1] as u32 as u64, a[2], a[3] as u32 as u64);
    let Some(frame) = xdp_frame(cx, a[0])? else {
        return Ok((-EINVAL) as u64);
    };
    if let Some(e) = xdp_range_error(frame, offset, len) {
        return Ok(e as u64);
    }
    let Some(bytes) = frame.read_packet(offset, len) else {
        return Ok((-EINVAL) as u64);
    };
    let dst = cx.regions.slice_mut(buf, len).map_err(|_| {
        HelperError(format!(
            "buf (0x{buf:x}, {len} bytes) is not writable memory"
        ))
    })?;
    dst.copy_from_slice(&bytes);
    Ok(0)
}

/// `bpf_xdp_store_bytes(ctx, offset, buf, len)`: `buf` into the packet, across fragments.
fn xdp_store_bytes(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (offset, buf, len) = (a[1] as u32 as u64, a[2], a[3] as u32 as u64);
    let bytes = cx
        .regions
        .slice(buf, len)
        .map(<[u8]>::to_vec)
        .map_err(|_| {
            HelperError(format!(
                "buf (0x{buf:x}, {len} bytes) is not readable memory"
            ))
        })?;
    let Some(frame) = xdp_frame(cx, a[0])? else {
        return Ok((-EINVAL) as u64);
    };
    if let Some(e) = xdp_range_error(frame, offset, len) {
        return Ok(e as u64);
    }
    Ok(if frame.write_packet(offset, &bytes) {
        0
    } else {
        (-EINVAL) as u64
    })
}

/// Helpers of socket filters.
pub fn register_skb(table: &mut HelperTable) {
    table.register_kernel(BPF_SKB_LOAD_BYTES, "bpf_skb_load_bytes", skb_load_bytes);
}

/// `bpf_csum_diff`, for the packet program types that have it.
pub fn register_csum(table: &mut HelperTable) {
    table.register_kernel(BPF_CSUM_DIFF, "bpf_csum_diff", csum_diff);
}

/// Helpers of XDP programs.
pub fn register_xdp(table: &mut HelperTable) {
    table.register_kernel(BPF_XDP_ADJUST_HEAD, "bpf_xdp_adjust_head", |cx, a| {
        xdp_adjust(cx, a, |f, d| f.adjust_head(d))
    });
    table.register_kernel(BPF_XDP_ADJUST_META, "bpf_xdp_adjust_meta", |cx, a| {
        xdp_adjust(cx, a, |f, d| f.adjust_meta(d))
    });
    table.register_kernel(BPF_XDP_ADJUST_TAIL, "bpf_xdp_adjust_tail", |cx, a| {
        xdp_adjust(cx, a, |f, d| f.adjust_tail(d))
    });
    table.register_kernel(
        BPF_XDP_GET_BUFF_LEN,
        "bpf_xdp_get_buff_len",
        xdp_get_buff_len,
    );
    table.register_kernel(BPF_XDP_LOAD_BYTES, "bpf_xdp_load_bytes", xdp_load_bytes);
    table.register_kernel(BPF_XDP_STORE_BYTES, "bpf_xdp_store_bytes", xdp_store_bytes);
}
