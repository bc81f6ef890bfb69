//! Context layouts as the program sees them: the kernel's UAPI structs (`struct __sk_buff`,
//! `struct xdp_md` from `linux/bpf.h`), followed by a hidden tail of 64-bit words that hold the real
//! packet pointers.
//!
//! Why a hidden tail: the UAPI structs declare `data`, `data_end` and `data_meta` as `__u32`, yet
//! programs use them as pointers. The kernel's verifier rewrites each such 32-bit load into a 64-bit
//! load of the real pointer from its internal struct; we do the same at load time (see
//! `rewrite.rs`), pointing the rewritten load at the hidden tail of our context buffer. The UAPI
//! slots themselves hold 0. The hidden tail is part of the read-only context region, so a program
//! can read but never forge the pointers; helpers keep them current (XDP adjust helpers).

/// A 32-bit UAPI field that really holds a pointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PointerField {
    pub name: &'static str,
    /// Offset of the `__u32` in the UAPI struct.
    pub off: u32,
    /// Offset of the 64-bit pointer in the hidden tail.
    pub hidden: u32,
}

/// One context struct.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CtxLayout {
    pub name: &'static str,
    /// `sizeof` the UAPI struct.
    pub size: u32,
    /// Size of the whole buffer: the UAPI struct plus the hidden tail.
    pub buffer_size: u32,
    pub pointers: &'static [PointerField],
    /// Byte ranges `[start, end)` a program may store to with any size (`cb[]`).
    pub writable: &'static [(u32, u32)],
    /// Fields a program may store to with exactly their size (tc's `mark`, `tc_index`, ...).
    pub stores: &'static [FieldStore],
    /// Byte ranges `[start, end)` a program may not load (tc cannot read the socket fields).
    pub unreadable: &'static [(u32, u32)],
}

/// A context field a program may store to: at `off`, exactly `size` bytes; the kernel stores
/// `width` bytes of the value (2 for the fields that are `__u16` inside `struct sk_buff`), so the
/// store is rewritten to that width, which leaves the field's upper bytes 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldStore {
    pub off: u32,
    pub size: u32,
    pub width: u32,
    /// Immediate values from which a `BPF_ST` to the field stores nothing (`queue_mapping`:
    /// `NO_QUEUE_MAPPING`, 0xffff; the store becomes a no-op, as in the kernel). The
    /// kernel also skips a `BPF_STX` of such a value, with a test it inserts; this runtime keeps
    /// every instruction's slot and stores the low 16 bits instead.
    pub skip_imm_from: Option<i32>,
}

impl CtxLayout {
    /// The pointer field whose 4 bytes overlap `[off, off + size)`, if any.
    pub fn pointer_at(&self, off: i64, size: u32) -> Option<&PointerField> {
        self.pointers
            .iter()
            .find(|p| off < p.off as i64 + 4 && off + size as i64 > p.off as i64)
    }

    /// How a store of `size` bytes at `off` is made: as it is inside a writable range (a
    /// `FieldStore` of that size and width), as the field says for a store to exactly that
    /// field; `None` when the store is refused.
    pub fn store_at(&self, off: i64, size: u32) -> Option<FieldStore> {
        if self
            .writable
            .iter()
            .any(|&(s, e)| off >= s as i64 && off + size as i64 <= e as i64)
        {
            return Some(field_store(off as u32, size, size));
        }
        self.stores
            .iter()
            .find(|f| f.off as i64 == off && f.size == size)
            .copied()
    }

    /// Whether a load of `size` bytes at `off` touches a field the program type may not read.
    pub fn is_unreadable(&self, off: i64, size: u32) -> bool {
        self.unreadable
            .iter()
            .any(|&(s, e)| off < e as i64 && off + size as i64 > s as i64)
    }
}

/// `struct __sk_buff` offsets (linux/bpf.h; checked with `offsetof` against the installed header).
pub mod skb {
    pub const LEN: u32 = 0;
    pub const PKT_TYPE: u32 = 4;
    pub const MARK: u32 = 8;
    pub const QUEUE_MAPPING: u32 = 12;
    pub const PROTOCOL: u32 = 16;
    pub const VLAN_PRESENT: u32 = 20;
    pub const VLAN_TCI: u32 = 24;
    pub const VLAN_PROTO: u32 = 28;
    pub const PRIORITY: u32 = 32;
    pub const INGRESS_IFINDEX: u32 = 36;
    pub const IFINDEX: u32 = 40;
    pub const TC_INDEX: u32 = 44;
    /// `cb[5]`: 20 bytes of scratch space the program may write.
    pub const CB: u32 = 48;
    pub const HASH: u32 = 68;
    pub const TC_CLASSID: u32 = 72;
    pub const DATA: u32 = 76;
    pub const DATA_END: u32 = 80;
    pub const NAPI_ID: u32 = 84;
    pub const FAMILY: u32 = 88;
    pub const REMOTE_IP4: u32 = 92;
    pub const LOCAL_IP4: u32 = 96;
    pub const REMOTE_IP6: u32 = 100;
    pub const LOCAL_IP6: u32 = 116;
    pub const REMOTE_PORT: u32 = 132;
    pub const LOCAL_PORT: u32 = 136;
    pub const DATA_META: u32 = 140;
    /// 64-bit pointer fields (`__bpf_md_ptr`): always NULL here.
    pub const FLOW_KEYS: u32 = 144;
    pub const TSTAMP: u32 = 152;
    pub const WIRE_LEN: u32 = 160;
    pub const GSO_SEGS: u32 = 164;
    pub const SK: u32 = 168;
    pub const GSO_SIZE: u32 = 176;
    pub const TSTAMP_TYPE: u32 = 180;
    pub const HWTSTAMP: u32 = 184;
    pub const SIZE: u32 = 192;
    /// Hidden tail: the real `data`, `data_end` and `data_meta` pointers.
    pub const HIDDEN_DATA: u32 = 192;
    pub const HIDDEN_DATA_END: u32 = 200;
    pub const HIDDEN_DATA_META: u32 = 208;
    pub const BUFFER_SIZE: u32 = 216;
}

/// `struct xdp_md` offsets (linux/bpf.h).
pub mod xdp {
    pub const DATA: u32 = 0;
    pub const DATA_END: u32 = 4;
    pub const DATA_META: u32 = 8;
    pub const INGRESS_IFINDEX: u32 = 12;
    pub const RX_QUEUE_INDEX: u32 = 16;
    pub const EGRESS_IFINDEX: u32 = 20;
    pub const SIZE: u32 = 24;
    pub const HIDDEN_DATA: u32 = 24;
    pub const HIDDEN_DATA_END: u32 = 32;
    pub const HIDDEN_DATA_META: u32 = 40;
    pub const BUFFER_SIZE: u32 = 48;
}

/// `struct __sk_buff` as a socket filter sees it. Stores: only `cb[]`, as the kernel allows socket
/// filters. Loads: every field (the kernel hides `data`/`data_end` from socket filters and shows
/// them to tc programs; we show them to both, so that packet parsing written for tc runs here).
pub const SKB: CtxLayout = CtxLayout {
    name: "__sk_buff",
    size: skb::SIZE,
    buffer_size: skb::BUFFER_SIZE,
    pointers: SKB_POINTERS,
    writable: &[(skb::CB, skb::CB + 20)],
    stores: &[],
    unreadable: &[],
};

const SKB_POINTERS: &[PointerField] = &[
    PointerField {
        name: "data",
        off: skb::DATA,
        hidden: skb::HIDDEN_DATA,
    },
    PointerField {
        name: "data_end",
        off: skb::DATA_END,
        hidden: skb::HIDDEN_DATA_END,
    },
    PointerField {
        name: "data_meta",
        off: skb::DATA_META,
        hidden: skb::HIDDEN_DATA_META,
    },
];

/// The fields of `struct __sk_buff` a tc program may store to besides `cb[]`
/// (`tc_cls_act_is_valid_access`): `u32` stores, `tstamp` a `u64` one. `queue_mapping`,
/// `tc_index` and `tc_classid` are 16 bits wide in the kernel (`sk_buff.queue_mapping`,
/// `sk_buff.tc_index`, `qdisc_skb_cb.tc_classid`), which keeps the low half of the value.
const TC_STORES: &[FieldStore] = &[
    field_store(skb::MARK, 4, 4),
    FieldStore {
        skip_imm_from: Some(0xffff),
        ..field_store(skb::QUEUE_MAPPING, 4, 2)
    },
    field_store(skb::PRIORITY, 4, 4),
    field_store(skb::TC_INDEX, 4, 2),
    field_store(skb::TC_CLASSID, 4, 2),
    field_store(skb::TSTAMP, 8, 8),
];

const fn field_store(off: u32, size: u32, width: u32) -> FieldStore {
    FieldStore {
        off,
        size,
        width,
        skip_imm_from: None,
    }
}

/// `struct __sk_buff` as a tc program sees it: `data`, `data_end` and `data_meta` are packet
/// pointers, `mark`, `queue_mapping`, `priority`, `tc_index`, `cb[]`, `tc_classid` and `tstamp`
/// are writable, and the socket fields (`family` .. `local_port`) cannot be read.
pub const TC_SKB: CtxLayout = CtxLayout {
    name: "__sk_buff",
    size: skb::SIZE,
    buffer_size: skb::BUFFER_SIZE,
    pointers: SKB_POINTERS,
    writable: &[(skb::CB, skb::CB + 20)],
    stores: TC_STORES,
    unreadable: &[(skb::FAMILY, skb::LOCAL_PORT + 4)],
};

/// `struct __sk_buff` as a cgroup_skb program sees it (`cg_skb_is_valid_access`): a socket
/// filter's, plus `u32` stores to `mark` and `priority` and a `u64` store to `tstamp`.
pub const CGROUP_SKB: CtxLayout = CtxLayout {
    stores: &[
        field_store(skb::MARK, 4, 4),
        field_store(skb::PRIORITY, 4, 4),
        field_store(skb::TSTAMP, 8, 8),
    ],
    ..SKB
};

/// `struct xdp_md`: read-only, as in the kernel.
pub const XDP: CtxLayout = CtxLayout {
    name: "xdp_md",
    size: xdp::SIZE,
    buffer_size: xdp::BUFFER_SIZE,
    pointers: &[
        PointerField {
            name: "data",
            off: xdp::DATA,
            hidden: xdp::HIDDEN_DATA,
        },
        PointerField {
            name: "data_end",
            off: xdp::DATA_END,
            hidden: xdp::HIDDEN_DATA_END,
        },
        PointerField {
            name: "data_meta",
            off: xdp::DATA_META,
            hidden: xdp::HIDDEN_DATA_META,
        },
    ],
    writable: &[],
    stores: &[],
    unreadable: &[],
};
