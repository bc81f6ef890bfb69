//! tc's `struct __sk_buff` (`sched_cls`, `sched_act`): what a classifier or action may read and
//! write through its context, as Linux 6.18's `tc_cls_act_is_valid_access` (over
//! `bpf_skb_is_valid_access`) decides.
//!
//! Reads: the number fields socket filters read, plus `tc_classid`, `napi_id`, `wire_len`,
//! `gso_segs`, `gso_size` (1, 2 or 4 bytes inside their `u32`), `tstamp` and `hwtstamp` (8 bytes
//! whole), `tstamp_type` (its one byte); the packet pointers `data`, `data_end` and `data_meta`
//! (4 bytes, no sign extension); `sk` (a `sock_common` pointer or NULL). Never the socket
//! address fields (`family` .. `local_port`), `flow_keys`, or the padding after `tstamp_type`.
//!
//! Writes: `mark`, `priority`, `tc_index`, `tc_classid` and `queue_mapping` (4 bytes at the
//! field), `cb[]` (aligned, inside the five words), `tstamp` (8 bytes).
//!
//! cgroup_skb programs (`cg_skb_is_valid_access`, as root) read the same `__sk_buff` with other
//! limits: not `tc_classid`, `data_meta`, `wire_len` or `tstamp_type`, but the socket address
//! fields (`family` .. `local_port`, narrow reads inside each `u32`); they write `mark`,
//! `priority` (4 bytes), `tstamp` (8) and `cb[]`. Their packet is read only ([`super::packet`]).

use super::arith::loaded_scalar;
use super::reg::{BaseType, RegState, RegType};
use crate::context::layout::skb;

/// The fields a cgroup_skb program may not read that tc programs may (`[start, end)`).
const CGROUP_SKB_HIDDEN: [(u32, u32); 4] = [
    (skb::TC_CLASSID, skb::TC_CLASSID + 4),
    (skb::DATA_META, skb::DATA_META + 4),
    (skb::WIRE_LEN, skb::WIRE_LEN + 4),
    (skb::TSTAMP_TYPE, skb::TSTAMP_TYPE + 1),
];

/// A tc (`cgroup_skb` false) or cgroup_skb context read of `size` bytes at `field` (the caller
/// checked size and alignment against the access, as the kernel's `off % size`): the register
/// it gives, or `None` (refused).
pub fn load(field: u32, size: u32, signed: bool, cgroup_skb: bool) -> Option<RegState> {
    if field >= skb::SIZE || size == 0 || !field.is_multiple_of(size) {
        return None;
    }
    if cgroup_skb {
        if CGROUP_SKB_HIDDEN
            .iter()
            .any(|&(s, e)| (s..e).contains(&field))
        {
            return None;
        }
        // The socket's family and ports: numbers, narrow inside each u32; its addresses
        // (`remote_ip4` .. `local_ip6`) 4 bytes at a time.
        if (skb::REMOTE_IP4..skb::REMOTE_PORT).contains(&field) {
            return (size == 4).then(|| loaded_scalar(4, signed));
        }
        if (skb::FAMILY..skb::DATA_META).contains(&field) {
            return (size <= 4).then(|| loaded_scalar(size as u8, signed));
        }
    }
    let pointer = match field {
        skb::DATA => Some(BaseType::Packet),
        skb::DATA_END => Some(BaseType::PacketEnd),
        skb::DATA_META => Some(BaseType::PacketMeta),
        _ => None,
    };
    let in_ptr_field = |start: u32| (start..start + 4).contains(&field);
    if let Some(ty) = pointer {
        return (size == 4 && !signed).then(|| RegState::pointer(RegType::of(ty)));
    }
    if in_ptr_field(skb::DATA) || in_ptr_field(skb::DATA_END) || in_ptr_field(skb::DATA_META) {
        return None;
    }
    let number = || Some(loaded_scalar(size as u8, signed));
    match field {
        // cb[]: aligned, ending inside the five words.
        f if (skb::CB..skb::CB + 20).contains(&f) => {
            (f + size <= skb::CB + 20).then(|| loaded_scalar(size as u8, signed))
        }
        // family .. local_port: the socket's addresses, not tc's.
        f if (skb::FAMILY..skb::DATA_META).contains(&f) => None,
        f if (skb::FLOW_KEYS..skb::TSTAMP).contains(&f) => None,
        skb::TSTAMP | skb::HWTSTAMP => (size == 8).then(|| loaded_scalar(8, signed)),
        f if (skb::TSTAMP..skb::TSTAMP + 8).contains(&f)
            || (skb::HWTSTAMP..skb::HWTSTAMP + 8).contains(&f) =>
        {
            None
        }
        skb::SK => (size == 8).then(|| RegState::pointer(RegType::or_null(BaseType::SockCommon))),
        f if (skb::SK..skb::SK + 8).contains(&f) => None,
        skb::TSTAMP_TYPE => (size == 1).then(|| loaded_scalar(1, signed)),
        // The padding between tstamp_type and hwtstamp.
        f if (skb::TSTAMP_TYPE..skb::HWTSTAMP).contains(&f) => None,
        // Every other field is a u32: narrow reads inside it.
        _ => {
            if size <= 4 {
                number()
            } else {
                None
            }
        }
    }
}

/// A tc (`cgroup_skb` false) or cgroup_skb context write of `size` bytes at `field`: the
/// writable fields only.
pub fn store(field: u32, size: u32, cgroup_skb: bool) -> bool {
    if size == 0 || !field.is_multiple_of(size) {
        return false;
    }
    match field {
        f if (skb::CB..skb::CB + 20).contains(&f) => f + size <= skb::CB + 20,
        skb::MARK | skb::PRIORITY => size == 4,
        skb::TC_INDEX | skb::TC_CLASSID | skb::QUEUE_MAPPING => size == 4 && !cgroup_skb,
        skb::TSTAMP => size == 8,
        _ => false,
    }
}
