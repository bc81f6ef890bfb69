//! Register state, in the kernel's vocabulary (`enum bpf_reg_type`, `struct bpf_reg_state`): what
//! a register holds (a scalar or one of the pointer types), its fixed offset `off`, the variable
//! part as [`Bounds`] (a scalar's value, a pointer's variable offset), the packet range learned
//! from comparisons against `data_end`, and the ids that tie copies together (null checks, linked
//! scalars, references to release).

use super::bounds::Bounds;
use crate::maps::def::flags::{BPF_F_RDONLY_PROG, BPF_F_WRONLY_PROG};

/// The base types the verifier tracks (the kernel's `enum bpf_reg_type`, without the flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BaseType {
    /// Never written (reading it is an error).
    NotInit,
    Scalar,
    /// The program's context argument.
    Ctx,
    /// A map handle (an `lddw` of a map).
    ConstMap,
    /// A map value of `map`; the access range is the value size.
    MapValue,
    /// A map key (callbacks of `bpf_for_each_map_elem`).
    MapKey,
    /// The stack of frame `frameno`; `off` + the variable part is the offset from its top.
    Stack,
    Packet,
    PacketMeta,
    PacketEnd,
    /// Memory a helper returned (`mem_size` bytes): ringbuf records and the like.
    Mem,
    /// A function's address (`lddw` with src 4), for callbacks.
    Func,
    /// A socket's common fields (`struct bpf_sock`, read only): `__sk_buff.sk`.
    SockCommon,
    /// A pointer to a kernel object read from a `struct bpf_map` (`PTR_TO_BTF_ID |
    /// PTR_UNTRUSTED` and the like), named as the kernel prints it
    /// (`untrusted_ptr_bpf_map_ops`). This runtime has no such object: the program may keep,
    /// move and compare the pointer, never read through it (see `map_fields`).
    KernelObject(&'static str),
}

impl BaseType {
    /// The name the kernel prints (`reg_type_str`).
    pub fn name(self) -> &'static str {
        match self {
            BaseType::NotInit => "?",
            BaseType::Scalar => "scalar",
            BaseType::Ctx => "ctx",
            BaseType::ConstMap => "map_ptr",
            BaseType::MapValue => "map_value",
            BaseType::MapKey => "map_key",
            BaseType::Stack => "fp",
            BaseType::Packet => "pkt",
            BaseType::PacketMeta => "pkt_meta",
            BaseType::PacketEnd => "pkt_end",
            BaseType::Mem => "mem",
            BaseType::Func => "func",
            BaseType::SockCommon => "sock_common",
            BaseType::KernelObject(name) => name,
        }
    }

    pub fn is_packet(self) -> bool {
        matches!(self, BaseType::Packet | BaseType::PacketMeta)
    }
}

/// A base type and the flags the kernel adds to it (`PTR_MAYBE_NULL`, `MEM_RDONLY`,
/// `MEM_RINGBUF`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RegType {
    pub base: BaseType,
    /// `_or_null`: may be NULL until a null check.
    pub maybe_null: bool,
    /// `rdonly_`: the program may read, not write.
    pub rdonly: bool,
    /// `ringbuf_`: a ringbuf record, released by submit or discard.
    pub ringbuf: bool,
}

impl RegType {
    pub const fn of(base: BaseType) -> RegType {
        RegType {
            base,
            maybe_null: false,
            rdonly: false,
            ringbuf: false,
        }
    }

    pub const fn or_null(base: BaseType) -> RegType {
        RegType {
            maybe_null: true,
            ..RegType::of(base)
        }
    }

    /// The kernel's name: flags as prefixes, `_or_null` as a suffix
    /// (`ringbuf_mem_or_null`, `map_value_or_null`).
    pub fn name(&self) -> String {
        let mut s = String::new();
        if self.rdonly {
            s.push_str("rdonly_");
        }
        if self.ringbuf {
            s.push_str("ringbuf_");
        }
        s.push_str(self.base.name());
        if self.maybe_null {
            s.push_str("_or_null");
        }
        s
    }
}

/// The map a map pointer or map value refers to, as the log names it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct MapRef {
    /// The map's index in the program's map list.
    pub index: u32,
    pub name: String,
    /// `BPF_MAP_TYPE_*`, in the kernel's numbering.
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    /// `map_flags` and `map_extra` as the map was created with.
    pub flags: u32,
    pub map_extra: u64,
    /// The map's id (`MapCommon::id`); `None` for an inner map template, which stands for every
    /// map stored in its outer map.
    pub id: Option<u32>,
    /// The map was created with BTF for its value (spin locks need it).
    pub btf: bool,
    /// The offset of the `struct bpf_spin_lock` in the value, when its BTF has one (the
    /// kernel's `record->spin_lock_off`).
    pub spin_lock: Option<u32>,
    /// Maps of maps: the template every inner map matches (the kernel's `inner_map_meta`),
    /// which a lookup's result points to. It has no name (the kernel's template has none) and
    /// the outer map's `index`.
    pub inner: Option<Box<MapRef>>,
    /// An inner map template created with `BPF_F_INNER_MAP`: the maps it stands for may have
    /// any `max_entries`, so no constant key is known to be in range of them.
    pub max_entries_vary: bool,
}

impl MapRef {
    /// Programs may write its values (the kernel's `bpf_map_flags_to_cap`).
    pub fn program_may_write(&self) -> bool {
        self.flags & BPF_F_RDONLY_PROG == 0
    }

    /// Programs may read its values.
    pub fn program_may_read(&self) -> bool {
        self.flags & BPF_F_WRONLY_PROG == 0
    }
}

/// One register (`struct bpf_reg_state`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RegState {
    pub ty: RegType,
    /// Fixed offset of a pointer (0 for scalars).
    pub off: i32,
    /// A scalar's value, or a pointer's variable offset.
    pub bounds: Bounds,
    /// Packet pointers: bytes known readable from the pointer (`r=`); negative: the pointer is
    /// at (`AT_PKT_END`, -1) or beyond (`BEYOND_PKT_END`, -2) `data_end`.
    pub range: i32,
    /// Memory pointers: the size of the memory (`sz=`).
    pub mem_size: u32,
    /// Map pointers and map values: the map.
    pub map: Option<MapRef>,
    /// Ties copies together: a nullable pointer and its copies (checked at once), linked
    /// scalars (refined at once).
    pub id: u32,
    /// Scalars: this register is its id's value plus `off` (`r1 = r0; r1 += 4` keeps the two
    /// linked; the kernel's `BPF_ADD_CONST`), printed `id=1+4`.
    pub add_const: bool,
    /// The reference a pointer holds (ringbuf records), to release before exit.
    pub ref_obj_id: u32,
    /// Stack pointers: the frame they point into.
    pub frameno: u32,
    /// Scalars: marked precise (printed `P`).
    pub precise: bool,
    /// Function pointers: the logical index of the function's entry (`subprogno`).
    pub func_entry: u32,
}

impl Default for RegState {
    fn default() -> RegState {
        RegState::not_init()
    }
}

impl RegState {
    pub fn not_init() -> RegState {
        RegState {
            ty: RegType::of(BaseType::NotInit),
            off: 0,
            bounds: Bounds::UNKNOWN,
            range: 0,
            mem_size: 0,
            map: None,
            id: 0,
            add_const: false,
            ref_obj_id: 0,
            frameno: 0,
            precise: false,
            func_entry: 0,
        }
    }

    /// A scalar with these bounds (`__mark_reg_unknown` then the bounds).
    pub fn scalar(bounds: Bounds) -> RegState {
        RegState {
            ty: RegType::of(BaseType::Scalar),
            bounds,
            ..RegState::not_init()
        }
    }

    pub fn unknown_scalar() -> RegState {
        RegState::scalar(Bounds::UNKNOWN)
    }

    pub fn known(v: u64) -> RegState {
        RegState::scalar(Bounds::constant(v))
    }

    /// A pointer of type `ty` with fixed offset 0 and no variable part.
    pub fn pointer(ty: RegType) -> RegState {
        RegState {
            ty,
            bounds: Bounds::constant(0),
            ..RegState::not_init()
        }
    }

    /// The frame pointer of frame `frameno`.
    pub fn frame_pointer(frameno: u32) -> RegState {
        RegState {
            frameno,
            ..RegState::pointer(RegType::of(BaseType::Stack))
        }
    }

    pub fn is_scalar(&self) -> bool {
        self.ty.base == BaseType::Scalar
    }

    pub fn is_init(&self) -> bool {
        self.ty.base != BaseType::NotInit
    }

    pub fn is_pointer(&self) -> bool {
        self.is_init() && !self.is_scalar()
    }
}
