//! Socket filters: `struct __sk_buff` over the caller's packet.
//!
//! The caller may pass an `__sk_buff` image (up to 192 bytes, shorter is zero-extended) whose
//! fields the program then reads: `mark`, `priority`, `ifindex`, `hash`, `cb[]`, `vlan_*`, ... .
//! The run fills in what the packet determines: `len` (the packet length, unless the image gives a
//! larger one: a capture cut to its snap length, whose packets were longer on the wire than the
//! bytes the program can load, as libpcap's `len` is) and `protocol`
//! (when the image leaves it 0: the Ethernet type of the packet, in network byte order as the
//! kernel stores `skb->protocol`). Pointer fields are the run's own (`data`, `data_end`,
//! `data_meta` through the hidden tail; `flow_keys` and `sk` are NULL).
//!
//! The packet is the caller's bytes from the first one on (the kernel's test run strips the
//! Ethernet header for socket filters; attached to a packet socket, a filter sees it): `LD_ABS`,
//! `LD_IND`, `bpf_skb_load_bytes` and direct loads all read the same bytes. It is read-only, as
//! socket filters cannot write packets. The context is read-only except `cb[]`.
//! The return value is the number of bytes to keep (0 drops the packet); the caller truncates.
//!
//! cgroup_skb programs run on the same context and packet; they may also store to `mark`,
//! `priority` and `tstamp` ([`CGROUP_SKB_WRITABLE`]), and their return value is a verdict.

use crate::error::Trap;
use crate::memory::{Region, Regions};

use super::layout::skb as off;
use super::Entry;
use crate::run_state::{OwnedBuf, RunState};

/// The context bytes a cgroup_skb program may store to besides `cb[]` (`layout::CGROUP_SKB`).
pub(crate) const CGROUP_SKB_WRITABLE: &[(u32, u64)] =
    &[(off::MARK, 4), (off::PRIORITY, 4), (off::TSTAMP, 8)];

/// A socket filter's run (`writable`: none) or a cgroup_skb program's.
pub(crate) fn prepare(
    data: &[u8],
    ctx_in: Option<&[u8]>,
    writable: &[(u32, u64)],
    state: &mut RunState,
    regions: &mut Regions,
) -> Result<Entry, Trap> {
    let ctx = image(state.spare_ctx.take(), ctx_in)?;
    let entry = place_packet(&ctx, data, state);
    push_regions(regions, ctx.addr, entry.packet, writable);
    state.ctx = Some(ctx);
    Ok(entry)
}

/// The context buffer before a packet is placed in it: zeroed, the caller's image, and the run's
/// own fields zeroed (pointers: the UAPI slots read 0; the real values are in the hidden tail).
pub(crate) fn image(spare: Option<OwnedBuf>, ctx_in: Option<&[u8]>) -> Result<OwnedBuf, Trap> {
    let ctx = OwnedBuf::zeroed_from(spare, off::BUFFER_SIZE as usize);
    if let Some(c) = ctx_in {
        if c.len() > off::SIZE as usize {
            return Err(Trap::invalid_input(format!(
                "the socket filter context is {} bytes; struct __sk_buff has {}",
                c.len(),
                off::SIZE
            )));
        }
        ctx.write(0, c);
    }
    for (at, n) in [
        (off::DATA, 4),
        (off::DATA_END, 4),
        (off::DATA_META, 4),
        (off::FLOW_KEYS, 8),
        (off::SK, 8),
    ] {
        ctx.write(at as u64, &[0u8; 8][..n]);
    }
    Ok(ctx)
}

/// Writes what `data` determines into `ctx` (an `image`, or one whose `len` a batch set to the
/// wire length): `len` where the image's is not larger, `protocol` where the image leaves it 0,
/// and the packet pointers; records the packet in `state`. The run's entry.
pub(crate) fn place_packet(ctx: &OwnedBuf, data: &[u8], state: &mut RunState) -> Entry {
    let entry = write_packet(ctx, data);
    record_packet(state, ctx.addr, entry.packet);
    entry
}

/// The part of `place_packet` that writes into `ctx`: the run's entry.
#[inline(always)]
pub(crate) fn write_packet(ctx: &OwnedBuf, data: &[u8]) -> Entry {
    let len = data.len() as u64;
    let addr = if data.is_empty() {
        0
    } else {
        data.as_ptr() as u64
    };
    if ctx.read_u32(off::LEN) as u64 <= len {
        ctx.write_u32(off::LEN, len as u32);
    }
    if ctx.read_u32(off::PROTOCOL) == 0 && data.len() >= 14 {
        // The two ethertype bytes as they lie in memory: htons(ethertype) read natively.
        ctx.write(off::PROTOCOL as u64, &data[12..14]);
    }
    ctx.write_u64(off::HIDDEN_DATA, addr);
    ctx.write_u64(off::HIDDEN_DATA_END, addr + len);
    ctx.write_u64(off::HIDDEN_DATA_META, addr);
    Entry {
        args: [ctx.addr, 0, 0, 0, 0],
        packet: (addr, len),
    }
}

/// The part of `place_packet` that records the packet (at `packet`) and the context (at
/// `ctx_addr`) in the run state.
#[inline(always)]
pub(crate) fn record_packet(state: &mut RunState, ctx_addr: u64, packet: (u64, u64)) {
    state.ctx_addr = ctx_addr;
    state.skb_packet = packet;
    state.data = packet;
}

/// The regions of the run after the stack: the packet (read-only), `cb[]` and the `writable`
/// fields, the whole context (read-only).
pub(crate) fn push_regions(
    regions: &mut Regions,
    ctx_addr: u64,
    (addr, len): (u64, u64),
    writable: &[(u32, u64)],
) {
    regions.set_data(Region::new(addr, len, false));
    // cb[] first: the first region that contains an access decides whether it may store.
    regions.push_context(Region::new(ctx_addr + off::CB as u64, 20, true));
    for &(at, n) in writable {
        regions.push_context(Region::new(ctx_addr + at as u64, n, true));
    }
    regions.push_context(Region::new(ctx_addr, off::BUFFER_SIZE as u64, false));
}

/// The `__sk_buff` image after the run (pointer fields read 0).
pub(crate) fn ctx_out(state: &RunState) -> Option<Vec<u8>> {
    state.ctx.as_ref().map(|c| c.read(0, off::SIZE as u64))
}
