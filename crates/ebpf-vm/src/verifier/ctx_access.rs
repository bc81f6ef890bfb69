//! What a program may read and write through its context pointer, per program type (the
//! kernel's `is_valid_access` callbacks: `sk_filter_is_valid_access` with
//! `bpf_skb_is_valid_access`, `xdp_is_valid_access`, `kprobe_prog_is_valid_access`,
//! `tp_prog_is_valid_access`, `raw_tp_prog_is_valid_access`), and what a load gives: a number,
//! a packet pointer (XDP's `data`, `data_end`, `data_meta`) or a socket pointer that may be NULL
//! (`__sk_buff.sk`); and what may be read through that socket pointer
//! (`bpf_sock_common_is_valid_access`). The caller has checked that the context pointer is
//! unmoved, so the instruction's offset is the field's.
//!
//! Sign-extending loads (`LDX | MEMSX`) read the number fields as plain loads do (the kernel
//! converts them, then sign-extends); they may not read the fields that hold pointers.

use super::arith::loaded_scalar;
use super::env::{eacces, ProgramKind, Refusal};
use super::reg::{BaseType, RegState, RegType};
use crate::context::layout::{skb, xdp};
use crate::context::tracing::{MAX_BPF_FUNC_ARGS, PERF_MAX_TRACE_SIZE};

/// `sizeof(struct pt_regs)` on x86-64 (21 registers of 8 bytes), the kprobe context.
pub const PT_REGS_SIZE: u32 = 168;

/// The bytes of a tracepoint record that programs may not read: the common header
/// (`struct trace_entry`, refused as `off < sizeof(void *)`).
pub const TRACE_ENTRY_HEADER: u32 = 8;

/// `sizeof(struct bpf_sock)` (linux/bpf.h), what a `sock_common` pointer may be read within.
pub const BPF_SOCK_SIZE: u32 = 80;

/// What a context load of `size` bytes at `off` gives, or the kernel's refusal.
pub fn load(kind: ProgramKind, off: i64, size: u32, signed: bool) -> Result<RegState, Refusal> {
    let invalid = || invalid_access(off, size);
    let field = u32::try_from(off).map_err(|_| invalid())?;
    // Every callback wants the access aligned to its size.
    if size == 0 || !field.is_multiple_of(size) {
        return Err(invalid());
    }
    let number = || Ok(loaded_scalar(size as u8, signed));
    match kind {
        ProgramKind::Xdp | ProgramKind::XdpDevmap => {
            let pointer = match field {
                xdp::DATA => Some(BaseType::Packet),
                xdp::DATA_END => Some(BaseType::PacketEnd),
                xdp::DATA_META => Some(BaseType::PacketMeta),
                _ => None,
            };
            // egress_ifindex is set only when a devmap runs the program (BPF_XDP_DEVMAP).
            let hidden = field == xdp::EGRESS_IFINDEX && kind != ProgramKind::XdpDevmap;
            if hidden || size != 4 || field >= xdp::SIZE || (signed && pointer.is_some()) {
                return Err(invalid());
            }
            match pointer {
                Some(ty) => Ok(RegState::pointer(RegType::of(ty))),
                None => number(),
            }
        }
        ProgramKind::SocketFilter => {
            if !socket_filter_readable(field, size) {
                return Err(invalid());
            }
            if field == skb::SK {
                // A `struct bpf_sock *` that may be NULL (the walk gives it an id).
                return Ok(RegState::pointer(RegType::or_null(BaseType::SockCommon)));
            }
            number()
        }
        ProgramKind::Tc => super::tc_context::load(field, size, signed, false).ok_or_else(invalid),
        ProgramKind::CgroupSkb { .. } => {
            super::tc_context::load(field, size, signed, true).ok_or_else(invalid)
        }
        ProgramKind::Kprobe => {
            if field + size > PT_REGS_SIZE {
                return Err(invalid());
            }
            number()
        }
        ProgramKind::Tracepoint => {
            if !(TRACE_ENTRY_HEADER..PERF_MAX_TRACE_SIZE).contains(&field) {
                return Err(invalid());
            }
            number()
        }
        ProgramKind::RawTracepoint => {
            if field >= MAX_BPF_FUNC_ARGS * 8 {
                return Err(invalid());
            }
            number()
        }
        ProgramKind::Raw { .. } => Err(invalid()),
    }
}

/// A context store of `size` bytes at `off`: socket filters only into `cb[]`, aligned to the
/// size and inside the five words; tc and cgroup_skb programs into their writable fields
/// ([`super::tc_context::store`]).
pub fn store(kind: ProgramKind, off: i64, size: u32) -> Result<(), Refusal> {
    let in_cb = u32::try_from(off).is_ok_and(|field| cb_access_ok(field, size));
    let skb_store = |cgroup_skb| {
        u32::try_from(off).is_ok_and(|field| super::tc_context::store(field, size, cgroup_skb))
    };
    let allowed = match kind {
        ProgramKind::SocketFilter => in_cb,
        ProgramKind::Tc => skb_store(false),
        ProgramKind::CgroupSkb { .. } => skb_store(true),
        _ => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(invalid_access(off, size))
    }
}

fn invalid_access(off: i64, size: u32) -> Refusal {
    eacces(format!("invalid bpf_context access off={off} size={size}"))
}

/// An access to `__sk_buff.cb[]`: it starts in the five words, is aligned to its size, and
/// ends inside them (so 8 bytes only at the 8-aligned words 0 and 2).
fn cb_access_ok(field: u32, size: u32) -> bool {
    (skb::CB..skb::CB + 20).contains(&field)
        && field.is_multiple_of(size)
        && field + size <= skb::CB + 20
}

/// A socket filter's read of `size` bytes at `field` (aligned to its size): `cb[]` as
/// [`cb_access_ok`] says; the `sk` pointer whole; other fields that socket filters may read
/// (not the packet pointers, `tc_classid`, the socket address fields, the timestamps,
/// `wire_len`, `flow_keys`) at 1, 2 or 4 bytes inside one `u32`.
fn socket_filter_readable(field: u32, size: u32) -> bool {
    if (skb::CB..skb::CB + 20).contains(&field) {
        return cb_access_ok(field, size);
    }
    if (skb::SK..skb::SK + 8).contains(&field) {
        return field == skb::SK && size == 8;
    }
    let number = field < skb::CB
        || (skb::HASH..skb::HASH + 4).contains(&field)
        || (skb::NAPI_ID..skb::NAPI_ID + 4).contains(&field)
        || (skb::GSO_SEGS..skb::GSO_SEGS + 4).contains(&field)
        || (skb::GSO_SIZE..skb::GSO_SIZE + 4).contains(&field);
    number && size <= 4
}

/// `struct bpf_sock` offsets (linux/bpf.h) that the rules below name.
mod sock {
    pub const FAMILY: u32 = 4;
    pub const TYPE: u32 = 8;
    /// `type`, `protocol`, `mark` and `priority` (up to here) only full sockets have.
    pub const PRIORITY_END: u32 = 24;
    pub const SRC_IP4: u32 = 24;
    /// `src_ip6[4]` ends here.
    pub const SRC_PORT: u32 = 44;
    /// `__be16 dst_port`, then 16 bits of padding.
    pub const DST_PORT: u32 = 48;
    pub const DST_IP4: u32 = 52;
    /// `dst_ip6[4]` ends here.
    pub const STATE: u32 = 72;
    pub const RX_QUEUE_MAPPING: u32 = 76;
}

/// A read of `size` bytes at `off` through a `sock_common` pointer (`check_sock_access` with
/// `bpf_sock_common_is_valid_access`): inside `struct bpf_sock`, aligned to the size, not the
/// fields only full sockets have (`type` .. `priority`). Narrow (1, 2 or 4 bytes): the
/// addresses anywhere in them, `family`, `src_port`, `state` and `rx_queue_mapping` at their
/// start, `dst_port`'s two bytes (or its `u32` slot whole), never the padding after it;
/// `bound_dev_if` 4 bytes whole.
pub fn sock_common_load(regno: u8, off: i64, size: u32) -> Result<RegState, Refusal> {
    let refused = || {
        eacces(format!(
            "R{regno} invalid {} access off={off} size={size}",
            BaseType::SockCommon.name()
        ))
    };
    let field = u32::try_from(off).map_err(|_| refused())?;
    if field >= BPF_SOCK_SIZE || size == 0 || !field.is_multiple_of(size) {
        return Err(refused());
    }
    let narrow = size <= 4;
    let ok = match field {
        sock::TYPE..sock::PRIORITY_END => false,
        sock::DST_PORT..sock::DST_IP4 => size == 4 || (field < sock::DST_PORT + 2 && size <= 2),
        sock::SRC_IP4..sock::SRC_PORT | sock::DST_IP4..sock::STATE => narrow,
        sock::FAMILY | sock::SRC_PORT | sock::STATE | sock::RX_QUEUE_MAPPING => narrow,
        _ => size == 4,
    };
    if ok {
        Ok(loaded_scalar(size as u8, false))
    } else {
        Err(refused())
    }
}
