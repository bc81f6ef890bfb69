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

use super::Entry;
use crate::run_state::layout::skb as off;
pub use crate::run_state::skb::*;
use crate::run_state::{OwnedBuf, RunState};

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
