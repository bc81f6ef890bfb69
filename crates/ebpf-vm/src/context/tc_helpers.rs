//! The helpers of tc programs that read or change the packet and its `sk_buff` (numbers and
//! checksum arithmetic in `helpers/skb.rs`), as Linux 6.18's net/core/filter.c defines them:
//! the same checks in the same order, the same errors, the same bytes. Where the kernel depends
//! on what this runtime has no model of, it says so:
//! - the `sk_buff` has no checksum offload state (`CHECKSUM_NONE`, as in the kernel's test run),
//!   so `BPF_F_RECOMPUTE_CSUM` and the pseudo-header flags change nothing beyond the checksum
//!   field the kernel also changes;
//! - `bpf_get_hash_recalc` computes a hash of its own (FNV-1a over addresses, protocol and
//!   ports): the kernel's flow hash is seeded randomly at boot, so no fixed value can equal it;
//!
//! Every helper that moves or resizes the packet ends with `tc::sync`, which moves the packet's
//! region and the `data`/`data_end` words: packet pointers taken before the call no longer
//! reach bytes that left the packet, as the kernel's verifier invalidates them. The resizing
//! helpers charge the run's budget for the bytes they may copy (`resized`).

use crate::helpers::packet::{read_arg, require_ctx};
use crate::helpers::skb::*;
use crate::helpers::{HelperContext, HelperError, HelperTable};

use super::layout::skb as off;
use super::tc::{
    self, field, set_field, TcSkb, ETH_HLEN, ETH_P_8021AD, ETH_P_8021Q, ETH_P_IP, ETH_P_IPV6,
    SKB_MAX_LEN,
};
use crate::vm::errno::{EALREADY, EFAULT, EINVAL, ENOMEM, ENOTSUPP};

fn err(e: i64) -> Result<u64, HelperError> {
    Ok(crate::vm::errno::negated(e))
}

const BPF_F_RECOMPUTE_CSUM: u64 = 1;
const BPF_F_INVALIDATE_HASH: u64 = 2;
const BPF_F_HDR_FIELD_MASK: u64 = 0xf;
const BPF_F_PSEUDO_HDR: u64 = 1 << 4;
const BPF_F_MARK_MANGLED_0: u64 = 1 << 5;
const BPF_F_MARK_ENFORCE: u64 = 1 << 6;
const BPF_F_IPV6: u64 = 1 << 7;
const CSUM_MANGLED_0: u16 = 0xffff;

const ADJ_ROOM_NET: u32 = 0;
const ADJ_ROOM_MAC: u32 = 1;
const ADJ_FIXED_GSO: u64 = 1 << 0;
const ADJ_ENCAP_L3_IPV4: u64 = 1 << 1;
const ADJ_ENCAP_L3_IPV6: u64 = 1 << 2;
const ADJ_ENCAP_L4_GRE: u64 = 1 << 3;
const ADJ_ENCAP_L4_UDP: u64 = 1 << 4;
const ADJ_NO_CSUM_RESET: u64 = 1 << 5;
const ADJ_ENCAP_L2_ETH: u64 = 1 << 6;
const ADJ_DECAP_L3_IPV4: u64 = 1 << 7;
const ADJ_DECAP_L3_IPV6: u64 = 1 << 8;
const ADJ_ENCAP_L2_SHIFT: u64 = 56;
const ADJ_ENCAP_L3_MASK: u64 = ADJ_ENCAP_L3_IPV4 | ADJ_ENCAP_L3_IPV6;
const ADJ_DECAP_L3_MASK: u64 = ADJ_DECAP_L3_IPV4 | ADJ_DECAP_L3_IPV6;
/// `BPF_F_ADJ_ROOM_MASK`.
const ADJ_ROOM_MASK: u64 = ADJ_FIXED_GSO
    | ADJ_ENCAP_L3_MASK
    | ADJ_ENCAP_L4_GRE
    | ADJ_ENCAP_L4_UDP
    | ADJ_ENCAP_L2_ETH
    | (0xff << ADJ_ENCAP_L2_SHIFT)
    | ADJ_DECAP_L3_MASK;
/// `BPF_SKB_MAX_LEN` (`SKB_MAX_ALLOC`: four pages less `skb_shared_info`), the limit of
/// `bpf_skb_adjust_room`'s growth.
const BPF_SKB_MAX_LEN: u64 = 16384 - 320;

/// The packet of the run whose context is `r1`.
fn skb<'a>(cx: &'a mut HelperContext<'_>, r1: u64) -> Result<&'a mut TcSkb, HelperError> {
    require_ctx(cx, r1)?;
    cx.state
        .tc
        .as_deref_mut()
        .ok_or_else(|| HelperError("the run has no tc packet".into()))
}

/// Bytes of packet a resizing helper may copy or zero per instruction of the run's budget it is
/// charged (`HelperContext::charge`): a 64 KiB packet costs 1,024, so that a loop resizing a
/// large packet stays bounded by the budget in time, not only in instructions.
const BYTES_PER_INSN: u64 = 64;

/// Moves the run to the packet as a resizing helper left it (`tc::sync`) and charges the work.
fn resized(cx: &mut HelperContext<'_>) -> Result<(), HelperError> {
    tc::sync(cx.state, cx.regions);
    let len = cx.state.tc.as_deref().map_or(0, TcSkb::len);
    cx.charge(len / BYTES_PER_INSN)
}

/// `skb->protocol` as it lies in memory (`htons(ETH_P_IP)` reads 0x0008).
fn protocol(cx: &HelperContext<'_>) -> u16 {
    field(cx.state, off::PROTOCOL) as u16
}

fn set_protocol(cx: &HelperContext<'_>, ethertype: u16) {
    set_field(cx.state, off::PROTOCOL, ethertype.to_be() as u32);
}

fn is_proto(p: u16, ethertype: u16) -> bool {
    p == ethertype.to_be()
}

/// `skb_clear_hash`.
fn clear_hash(cx: &mut HelperContext<'_>) {
    set_field(cx.state, off::HASH, 0);
    if let Some(skb) = cx.state.tc.as_deref_mut() {
        skb.hash_valid = false;
    }
}

/// `bpf_skb_store_bytes(skb, offset, from, len, flags)`.
fn skb_store_bytes(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (offset, len, flags) = (a[1] as u32 as u64, a[3] as u32 as u64, a[4]);
    let bytes = read_arg(cx, a[2], len, "from")?;
    let skb = skb(cx, a[0])?;
    if flags & !(BPF_F_RECOMPUTE_CSUM | BPF_F_INVALIDATE_HASH) != 0 {
        return err(EINVAL);
    }
    if offset > i32::MAX as u64 || offset + len > skb.len() {
        return err(EFAULT);
    }
    skb.write(offset, &bytes);
    if flags & BPF_F_INVALIDATE_HASH != 0 {
        clear_hash(cx);
    }
    Ok(0)
}

/// The 16-bit checksum field at `offset` for the csum_replace helpers: -EFAULT for an odd or
/// large offset or one past the packet.
fn csum_field(skb: &TcSkb, offset: u64) -> Result<u16, i64> {
    if offset > 0xffff || offset & 1 != 0 || offset + 2 > skb.len() {
        return Err(EFAULT);
    }
    let b = skb.read(offset, 2);
    Ok(u16::from_le_bytes([b[0], b[1]]))
}

/// `bpf_l3_csum_replace(skb, offset, from, to, flags)`: the low 4 bits of `flags` are the size
/// of the changed field (2 or 4), or 0 when `to` is a difference (`bpf_csum_diff`).
fn l3_csum_replace(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (offset, from, to, flags) = (a[1] as u32 as u64, a[2], a[3], a[4]);
    let skb = skb(cx, a[0])?;
    if flags & !BPF_F_HDR_FIELD_MASK != 0 {
        return err(EINVAL);
    }
    let sum = match csum_field(skb, offset) {
        Ok(s) => s,
        Err(e) => return err(e),
    };
    let new = match flags & BPF_F_HDR_FIELD_MASK {
        0 if from != 0 => return err(EINVAL),
        0 => csum_replace_by_diff(sum, to as u32),
        2 => csum_replace2(sum, from as u16, to as u16),
        4 => csum_replace4(sum, from as u32, to as u32),
        _ => return err(EINVAL),
    };
    skb.write(offset, &new.to_le_bytes());
    Ok(0)
}

/// `bpf_l4_csum_replace(skb, offset, from, to, flags)`: as the l3 form, and
/// `BPF_F_MARK_MANGLED_0` leaves a zero checksum (UDP's "none") alone unless
/// `BPF_F_MARK_ENFORCE`, and writes a result of 0 as 0xffff.
fn l4_csum_replace(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (offset, from, to, flags) = (a[1] as u32 as u64, a[2], a[3], a[4]);
    let skb = skb(cx, a[0])?;
    let allowed = BPF_F_MARK_MANGLED_0
        | BPF_F_MARK_ENFORCE
        | BPF_F_PSEUDO_HDR
        | BPF_F_HDR_FIELD_MASK
        | BPF_F_IPV6;
    if flags & !allowed != 0 {
        return err(EINVAL);
    }
    let sum = match csum_field(skb, offset) {
        Ok(s) => s,
        Err(e) => return err(e),
    };
    let mangled_0 = flags & BPF_F_MARK_MANGLED_0 != 0;
    if mangled_0 && flags & BPF_F_MARK_ENFORCE == 0 && sum == 0 {
        return Ok(0);
    }
    let mut new = match flags & BPF_F_HDR_FIELD_MASK {
        0 if from != 0 => return err(EINVAL),
        0 => csum_replace_by_diff(sum, to as u32),
        // inet_proto_csum_replace2 widens both values to 32 bits.
        2 => csum_replace4(sum, from as u16 as u32, to as u16 as u32),
        4 => csum_replace4(sum, from as u32, to as u32),
        _ => return err(EINVAL),
    };
    if mangled_0 && new == 0 {
        new = CSUM_MANGLED_0;
    }
    skb.write(offset, &new.to_le_bytes());
    Ok(0)
}

/// `bpf_skb_change_proto(skb, proto, flags)`: IPv4 to IPv6 makes 20 zeroed bytes of room after
/// the MAC header, IPv6 to IPv4 takes 20 away (the program rewrites the header); -ENOTSUPP for
/// anything else.
fn skb_change_proto(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (to, flags) = (a[1] as u16, a[2]);
    require_ctx(cx, a[0])?;
    if flags != 0 {
        return err(EINVAL);
    }
    let from = protocol(cx);
    let skb = skb(cx, a[0])?;
    let off = skb.mac_header_len();
    let ret = if is_proto(from, ETH_P_IP) && is_proto(to, ETH_P_IPV6) {
        skb.insert(off, 20);
        set_protocol(cx, ETH_P_IPV6);
        clear_hash(cx);
        0
    } else if is_proto(from, ETH_P_IPV6) && is_proto(to, ETH_P_IP) {
        if off + 20 > skb.len() {
            -ENOMEM
        } else {
            skb.remove(off, 20, true);
            set_protocol(cx, ETH_P_IP);
            clear_hash(cx);
            0
        }
    } else {
        -ENOTSUPP
    };
    resized(cx)?;
    Ok(ret as u64)
}

/// `bpf_skb_change_type(skb, type)`: `pkt_type` to host, broadcast, multicast or other host.
fn skb_change_type(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    require_ctx(cx, a[0])?;
    let ty = a[1] as u32;
    if field(cx.state, off::PKT_TYPE) > 3 || ty > 3 {
        return err(EINVAL);
    }
    set_field(cx.state, off::PKT_TYPE, ty);
    Ok(0)
}

/// `bpf_csum_update(skb, csum)`: adds to `skb->csum` of a `CHECKSUM_COMPLETE` packet; the
/// packets here have no checksum state (`CHECKSUM_NONE`, as in the kernel's test run), so
/// -ENOTSUPP.
fn csum_update(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    require_ctx(cx, a[0])?;
    err(ENOTSUPP)
}

/// FNV-1a, the hash `bpf_get_hash_recalc` computes here (see the module comment).
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ b as u32).wrapping_mul(0x0100_0193)
    })
}

/// The flow of the packet for hashing: IPv4 or IPv6 addresses, protocol and (TCP, UDP) ports
/// when the packet has them, else the whole packet.
fn flow_bytes(skb: &TcSkb, proto: u16) -> Vec<u8> {
    let net = skb.network_offset().max(0) as u64;
    let pkt = skb.packet();
    let (addrs, l4proto, l4) = if is_proto(proto, ETH_P_IP) && net + 20 <= skb.len() {
        let ihl = (pkt[net as usize] & 0xf) as u64 * 4;
        (net + 12..net + 20, pkt[net as usize + 9], net + ihl)
    } else if is_proto(proto, ETH_P_IPV6) && net + 40 <= skb.len() {
        (net + 8..net + 40, pkt[net as usize + 6], net + 40)
    } else {
        return pkt;
    };
    let mut out = pkt[addrs.start as usize..addrs.end as usize].to_vec();
    out.push(l4proto);
    if matches!(l4proto, 6 | 17) && l4 + 4 <= skb.len() {
        out.extend_from_slice(&pkt[l4 as usize..l4 as usize + 4]);
    }
    out
}

/// `bpf_get_hash_recalc(skb)`: `skb->hash`, computed first when it is not valid (never 0).
fn get_hash_recalc(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    require_ctx(cx, a[0])?;
    let proto = protocol(cx);
    let skb = skb(cx, a[0])?;
    if !skb.hash_valid {
        let h = fnv1a(&flow_bytes(skb, proto)).max(1);
        skb.hash_valid = true;
        set_field(cx.state, off::HASH, h);
    }
    Ok(field(cx.state, off::HASH) as u64)
}

/// `bpf_set_hash_invalid(skb)`: clears `skb->hash`, so that the next recalc computes it.
fn set_hash_invalid(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    require_ctx(cx, a[0])?;
    clear_hash(cx);
    Ok(0)
}

/// `bpf_set_hash(skb, hash)`: a software hash, which recalc then keeps.
fn set_hash(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    skb(cx, a[0])?.hash_valid = true;
    set_field(cx.state, off::HASH, a[1] as u32);
    Ok(0)
}

/// `bpf_skb_change_tail(skb, len, flags)`: the packet to `len` bytes (bytes gained are zeroed),
/// at least up to the network header and at most the device's MTU plus its header.
fn skb_change_tail(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (new_len, flags) = (a[1] as u32 as u64, a[2]);
    let skb = skb(cx, a[0])?;
    let min_len = skb.network_offset().max(0) as u64;
    if flags != 0 || new_len > SKB_MAX_LEN || new_len < min_len {
        return err(EINVAL);
    }
    if skb.encapsulation {
        return err(ENOTSUPP);
    }
    skb.set_len(new_len);
    resized(cx)?;
    Ok(0)
}

/// `bpf_skb_change_head(skb, len, flags)`: `len` zeroed bytes in front of the packet, which
/// become its MAC header.
fn skb_change_head(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (room, flags) = (a[1] as u32 as u64, a[2]);
    let skb = skb(cx, a[0])?;
    let new_len = skb.len() + room;
    if flags != 0 || new_len > SKB_MAX_LEN || new_len > u32::MAX as u64 {
        return err(EINVAL);
    }
    skb.push_head(room);
    skb.reset_mac_header();
    skb.reset_mac_len();
    resized(cx)?;
    Ok(0)
}

/// `bpf_skb_pull_data(skb, len)`: makes `len` bytes (0: all) directly accessible; the packet is
/// linear here, so this only fails (-ENOMEM) for more bytes than the packet has.
fn skb_pull_data(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let len = a[1] as u32 as u64;
    let skb = skb(cx, a[0])?;
    let want = if len == 0 { skb.len() } else { len };
    let ret = if want > skb.len() { -ENOMEM } else { 0 };
    tc::sync(cx.state, cx.regions);
    Ok(ret as u64)
}

/// `bpf_skb_adjust_room(skb, len_diff, mode, flags)`: room added (zeroed) or removed after the
/// MAC header (`BPF_ADJ_ROOM_MAC`) or after the network header's base length
/// (`BPF_ADJ_ROOM_NET`), for IPv4 and IPv6 packets; the encapsulation flags mark the packet
/// encapsulated and may switch `protocol` to the new outer header's.
fn skb_adjust_room(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (len_diff, mode, flags) = (a[1] as i32, a[2] as u32, a[3]);
    require_ctx(cx, a[0])?;
    let proto = protocol(cx);
    let ret = adjust_room(cx, a[0], len_diff, mode, flags, proto)?;
    resized(cx)?;
    Ok(ret as u64)
}

fn adjust_room(
    cx: &mut HelperContext<'_>,
    r1: u64,
    len_diff: i32,
    mode: u32,
    flags: u64,
    proto: u16,
) -> Result<i64, HelperError> {
    let skb = skb(cx, r1)?;
    let n = len_diff.unsigned_abs() as u64;
    let shrink = len_diff < 0;
    if flags & !(ADJ_ROOM_MASK | ADJ_NO_CSUM_RESET) != 0 {
        return Ok(-EINVAL);
    }
    if n > 0xfff {
        return Ok(-EFAULT);
    }
    let net_base = if is_proto(proto, ETH_P_IP) {
        20
    } else if is_proto(proto, ETH_P_IPV6) {
        40
    } else {
        return Ok(-ENOTSUPP);
    };
    let at = skb.mac_header_len()
        + match mode {
            ADJ_ROOM_NET => net_base,
            ADJ_ROOM_MAC => 0,
            _ => return Ok(-ENOTSUPP),
        };
    let mut len_min = net_base;
    if flags & ADJ_DECAP_L3_MASK != 0 {
        if !shrink {
            return Ok(-EINVAL);
        }
        len_min = match flags & ADJ_DECAP_L3_MASK {
            ADJ_DECAP_L3_IPV4 => 20,
            ADJ_DECAP_L3_IPV6 => 40,
            _ => return Ok(-EINVAL),
        };
    }
    let len_cur = skb.len() as i64 - skb.network_offset();
    if (shrink && (n as i64 >= len_cur || len_cur - (n as i64) < len_min as i64))
        || (!shrink && skb.len() + n > BPF_SKB_MAX_LEN)
    {
        return Ok(-ENOTSUPP);
    }
    if shrink {
        if flags & !(ADJ_FIXED_GSO | ADJ_DECAP_L3_MASK | ADJ_NO_CSUM_RESET) != 0 {
            return Ok(-EINVAL);
        }
        if at + n > skb.len() {
            return Ok(-ENOMEM);
        }
        skb.remove(at, n, true);
        if is_proto(proto, ETH_P_IP) && flags & ADJ_DECAP_L3_IPV6 != 0 {
            set_protocol(cx, ETH_P_IPV6);
        } else if is_proto(proto, ETH_P_IPV6) && flags & ADJ_DECAP_L3_IPV4 != 0 {
            set_protocol(cx, ETH_P_IP);
        }
        return Ok(0);
    }
    let encap = flags & ADJ_ENCAP_L3_MASK != 0;
    let inner_mac_len = flags >> ADJ_ENCAP_L2_SHIFT;
    let mac_len = skb.mac_header_len();
    if encap {
        if flags & ADJ_ENCAP_L3_MASK == ADJ_ENCAP_L3_MASK
            || flags & (ADJ_ENCAP_L4_GRE | ADJ_ENCAP_L4_UDP) == ADJ_ENCAP_L4_GRE | ADJ_ENCAP_L4_UDP
            || (flags & ADJ_ENCAP_L2_ETH != 0 && inner_mac_len < ETH_HLEN)
        {
            return Ok(-EINVAL);
        }
        if skb.encapsulation {
            return Ok(-EALREADY);
        }
        if inner_mac_len > n {
            return Ok(-EINVAL);
        }
    }
    skb.insert(at, n);
    if encap {
        skb.encapsulation = true;
        skb.set_network_offset(mac_len);
        if is_proto(proto, ETH_P_IP) && flags & ADJ_ENCAP_L3_IPV6 != 0 {
            set_protocol(cx, ETH_P_IPV6);
        } else if is_proto(proto, ETH_P_IPV6) && flags & ADJ_ENCAP_L3_IPV4 != 0 {
            set_protocol(cx, ETH_P_IP);
        }
    }
    Ok(0)
}

fn is_vlan(p: u16) -> bool {
    is_proto(p, ETH_P_8021Q) || is_proto(p, ETH_P_8021AD)
}

/// The VLAN tag the `sk_buff` carries outside the packet (`skb->vlan_all`).
fn set_vlan_tag(cx: &HelperContext<'_>, proto: u16, tci: u16) {
    let present = (proto != 0 || tci != 0) as u32;
    set_field(cx.state, off::VLAN_PRESENT, present);
    set_field(cx.state, off::VLAN_TCI, tci as u32);
    set_field(cx.state, off::VLAN_PROTO, proto as u32);
}

/// `bpf_skb_vlan_push(skb, vlan_proto, vlan_tci)`: the new tag goes outside the packet; a tag
/// already there goes into the packet first, after the MAC addresses.
fn skb_vlan_push(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (mut proto, tci) = (a[1] as u16, a[2] as u16);
    require_ctx(cx, a[0])?;
    if !is_vlan(proto) {
        proto = ETH_P_8021Q.to_be();
    }
    if field(cx.state, off::VLAN_PRESENT) != 0 {
        let old_proto = field(cx.state, off::VLAN_PROTO) as u16;
        let old_tci = field(cx.state, off::VLAN_TCI) as u16;
        let skb = skb(cx, a[0])?;
        if skb.mac_header_offset() != 0 {
            return err(EINVAL);
        }
        skb.insert(12, 4);
        let mut tag = old_proto.to_le_bytes().to_vec();
        tag.extend_from_slice(&old_tci.to_be_bytes());
        skb.write(12, &tag);
        set_field(cx.state, off::PROTOCOL, old_proto as u32);
    }
    set_vlan_tag(cx, proto, tci);
    if let Some(skb) = cx.state.tc.as_deref_mut() {
        skb.reset_mac_len();
    }
    resized(cx)?;
    Ok(0)
}

/// `__skb_vlan_pop`: takes the VLAN tag after the MAC addresses out of the packet; its TCI, and
/// `protocol` becomes the encapsulated one.
fn pop_packet_tag(cx: &mut HelperContext<'_>, r1: u64) -> Result<Result<u16, i64>, HelperError> {
    let skb = skb(cx, r1)?;
    if skb.mac_header_offset() != 0 {
        return Ok(Err(EINVAL));
    }
    if skb.len() < 18 {
        return Ok(Err(ENOMEM));
    }
    let hdr = skb.read(14, 4);
    let tci = u16::from_be_bytes([hdr[0], hdr[1]]);
    let encap = u16::from_be_bytes([hdr[2], hdr[3]]);
    let next = if skb.len() >= 20 {
        skb.read(18, 2)
    } else {
        Vec::new()
    };
    let proto = if encap >= 0x600 {
        encap
    } else if next == [0xff, 0xff] {
        0x0001
    } else {
        0x0004
    };
    skb.remove(12, 4, false);
    if skb.network_offset() < ETH_HLEN as i64 {
        skb.set_network_offset(ETH_HLEN);
    }
    skb.reset_mac_len();
    set_protocol(cx, proto);
    Ok(Ok(tci))
}

/// `bpf_skb_vlan_pop(skb)`: removes the tag outside the packet (or, without one, the first tag
/// in it); a tag in the packet behind it then moves outside.
fn skb_vlan_pop(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    require_ctx(cx, a[0])?;
    let ret = vlan_pop(cx, a[0])?;
    resized(cx)?;
    Ok(ret as u64)
}

fn vlan_pop(cx: &mut HelperContext<'_>, r1: u64) -> Result<i64, HelperError> {
    if field(cx.state, off::VLAN_PRESENT) != 0 {
        set_vlan_tag(cx, 0, 0);
    } else {
        if !is_vlan(protocol(cx)) {
            return Ok(0);
        }
        if let Err(e) = pop_packet_tag(cx, r1)? {
            return Ok(-e);
        }
    }
    let proto = protocol(cx);
    if !is_vlan(proto) {
        return Ok(0);
    }
    match pop_packet_tag(cx, r1)? {
        Ok(tci) => {
            set_vlan_tag(cx, proto, tci);
            Ok(0)
        }
        Err(e) => Ok(-e),
    }
}

/// `vlan_get_protocol`: `protocol`, or for a VLAN packet the protocol behind its tags in the
/// packet (from `mac_len` less a tag, or the Ethernet header's end; 0 when the packet ends first).
fn protocol_behind_vlans(skb: &TcSkb, proto: u16) -> u16 {
    if !is_vlan(proto) {
        return proto;
    }
    let mut depth = if skb.mac_len > 0 {
        skb.mac_len.saturating_sub(4)
    } else {
        ETH_HLEN
    };
    for _ in 0..8 {
        if depth + 4 > skb.len() {
            return 0;
        }
        let h = skb.read(depth + 2, 2);
        let ty = u16::from_le_bytes([h[0], h[1]]);
        depth += 4;
        if !is_vlan(ty) {
            return ty;
        }
    }
    0
}

/// `bpf_skb_ecn_set_ce(skb)`: marks an ECN-capable IPv4 or IPv6 packet "congestion
/// experienced" (IPv4: with its header checksum updated); 1 when the mark is set, else 0. The
/// protocol is the one behind VLAN tags, but the header is taken at the network header, which
/// for a tagged packet is where the kernel also takes it: at the tag.
fn skb_ecn_set_ce(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    require_ctx(cx, a[0])?;
    let proto = protocol(cx);
    let skb = skb(cx, a[0])?;
    let proto = protocol_behind_vlans(skb, proto);
    let net = skb.network_offset();
    let hdr_len = if is_proto(proto, ETH_P_IP) {
        20
    } else if is_proto(proto, ETH_P_IPV6) {
        40
    } else {
        return Ok(0);
    };
    if net < 0 || skb.len() < hdr_len || net as u64 + hdr_len > skb.len() {
        return Ok(0);
    }
    let net = net as u64;
    if hdr_len == 20 {
        let h = skb.read(net, 12);
        let ecn = (h[1].wrapping_add(1) & 3) as u16;
        if ecn & 2 == 0 {
            return Ok((ecn == 0) as u64);
        }
        let check_add = 0xfffbu16.swap_bytes().wrapping_add(ecn.swap_bytes());
        let check = csum16_add(u16::from_le_bytes([h[10], h[11]]), check_add);
        skb.write(net + 10, &check.to_le_bytes());
        skb.write(net + 1, &[h[1] | 3]);
        return Ok(1);
    }
    let h = skb.read(net, 4);
    let word = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    if (word >> 20) & 3 == 0 {
        return Ok(0);
    }
    skb.write(net, &(word | 3 << 20).to_be_bytes());
    Ok(1)
}

/// The helpers tc programs have besides the socket-filter and checksum ones.
pub fn register(table: &mut HelperTable) {
    table.register_kernel(BPF_SKB_STORE_BYTES, "bpf_skb_store_bytes", skb_store_bytes);
    table.register_kernel(BPF_L3_CSUM_REPLACE, "bpf_l3_csum_replace", l3_csum_replace);
    table.register_kernel(BPF_L4_CSUM_REPLACE, "bpf_l4_csum_replace", l4_csum_replace);
    table.register_kernel(BPF_SKB_VLAN_PUSH, "bpf_skb_vlan_push", skb_vlan_push);
    table.register_kernel(BPF_SKB_VLAN_POP, "bpf_skb_vlan_pop", skb_vlan_pop);
    table.register_kernel(
        BPF_SKB_CHANGE_PROTO,
        "bpf_skb_change_proto",
        skb_change_proto,
    );
    table.register_kernel(BPF_SKB_CHANGE_TYPE, "bpf_skb_change_type", skb_change_type);
    table.register_kernel(BPF_GET_HASH_RECALC, "bpf_get_hash_recalc", get_hash_recalc);
    table.register_kernel(BPF_SKB_CHANGE_TAIL, "bpf_skb_change_tail", skb_change_tail);
    table.register_kernel(BPF_SKB_PULL_DATA, "bpf_skb_pull_data", skb_pull_data);
    table.register_kernel(BPF_CSUM_UPDATE, "bpf_csum_update", csum_update);
    table.register_kernel(
        BPF_SET_HASH_INVALID,
        "bpf_set_hash_invalid",
        set_hash_invalid,
    );
    table.register_kernel(BPF_SKB_CHANGE_HEAD, "bpf_skb_change_head", skb_change_head);
    table.register_kernel(BPF_SET_HASH, "bpf_set_hash", set_hash);
    table.register_kernel(BPF_SKB_ADJUST_ROOM, "bpf_skb_adjust_room", skb_adjust_room);
    table.register_kernel(BPF_SKB_ECN_SET_CE, "bpf_skb_ecn_set_ce", skb_ecn_set_ce);
}
