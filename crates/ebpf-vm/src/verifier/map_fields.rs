//! Loads through a map pointer (`CONST_PTR_TO_MAP`): the kernel lets privileged programs read the
//! map's own `struct bpf_map` (the kernel's `check_ptr_to_map_access`, through the BTF type of the
//! map's kernel struct, `struct bpf_array` for arrays, whose first member is the `struct bpf_map`).
//!
//! The order of the kernel's checks and their messages: a negative offset, then a store, are
//! refused naming that struct. What a read gives is a scalar of the access size, as in the kernel.
//!
//! This runtime has no kernel `struct bpf_map` in memory: a map pointer is an opaque handle. So a
//! read is answered from what the verifier knows of the map, and the walk records, per
//! instruction, the value the load gives; `Program::load` then rewrites the load into a move of
//! that constant (both engines run the same instruction). That needs one value per instruction:
//! a load reached with maps whose fields differ is refused, and so are the fields this runtime
//! cannot answer for every map a pointer may stand for (an inner map template's id, or its
//! `max_entries` under `BPF_F_INNER_MAP`). The fields answered, at their Linux 6.18 x86-64
//! offsets (vmlinux BTF of the reference kernel):
//!
//! | off | field | value |
//! | --- | --- | --- |
//! | 0 | `u8 sha[32]` | zeros (the kernel fills it only for exclusive maps or when asked for the hash) |
//! | 32 | `u32 excl` | 0 (no map here is exclusive to a program) |
//! | 64 | `enum bpf_map_type map_type` | the map's type |
//! | 68 | `u32 key_size` | |
//! | 72 | `u32 value_size` | |
//! | 76 | `u32 max_entries` | |
//! | 80 | `u64 map_extra` | |
//! | 88 | `u32 map_flags` | |
//! | 92 | `u32 id` | the map's id in this process (`MapCommon::id`) |
//!
//! A read may take part of a field (little-endian), never two fields. The pointer members, read
//! whole (8 bytes; part of one is refused as the kernel refuses it), give what the kernel's
//! `btf_struct_access` gives (Linux 6.18's log, recorded by hand from the live kernel):
//!
//! | off | member | register |
//! | --- | --- | --- |
//! | 40 | `const struct bpf_map_ops *ops` | `untrusted_ptr_bpf_map_ops` |
//! | 48 | `struct bpf_map *inner_map_meta` | `untrusted_ptr_bpf_map` |
//! | 56 | `void *security` | `rdonly_untrusted_mem(sz=0)` (nothing readable) |
//!
//! At run time they hold fixed made-up kernel addresses ([`KERNEL_OBJECT_BASE`] + the offset):
//! no host address is shown, and the verifier refuses every read through them. Everything else
//! of the struct (BTF ids, name, counters, the rest of the map type's own struct) is refused as
//! not supported yet, where the kernel allows reads.

use super::env::{eacces, unsupported, Refusal};
use super::reg::{BaseType, MapRef, RegState, RegType};
use crate::isa::opcodes::{ALU_MOV, CLASS_ALU, CLASS_ALU64, SRC_K};
use crate::isa::Insn;

/// A field this runtime answers: offset, size, name.
const FIELDS: [(u32, u32, &str); 9] = [
    (0, 32, "sha"),
    (32, 4, "excl"),
    (64, 4, "map_type"),
    (68, 4, "key_size"),
    (72, 4, "value_size"),
    (76, 4, "max_entries"),
    (80, 8, "map_extra"),
    (88, 4, "map_flags"),
    (92, 4, "id"),
];

/// The pointer members: offset, name, the register a whole read gives.
const POINTERS: [(u32, &str, BaseType); 3] = [
    (
        40,
        "ops",
        BaseType::KernelObject("untrusted_ptr_bpf_map_ops"),
    ),
    (
        48,
        "inner_map_meta",
        BaseType::KernelObject("untrusted_ptr_bpf_map"),
    ),
    (56, "security", BaseType::Mem),
];

/// What a run reads from a pointer member at offset `off`: `KERNEL_OBJECT_BASE + off`, an
/// address in the kernel's half of the address space that one sign-extending move gives.
pub const KERNEL_OBJECT_BASE: u64 = 0xffff_ffff_8a00_0000;

/// The kernel struct a map type's pointer reads through (its `map_btf_id`).
fn struct_name(map_type: u32) -> &'static str {
    match map_type {
        1 | 5 | 9 | 10 | 13 => "bpf_htab",
        2 | 3 | 4 | 6 | 8 | 12 => "bpf_array",
        7 => "bpf_stack_map",
        11 => "lpm_trie",
        22 | 23 => "bpf_queue_stack",
        27 => "bpf_ringbuf_map",
        30 => "bpf_bloom_filter",
        _ => "bpf_map",
    }
}

/// The whole field's value for `map`, or why it has none.
fn field_value(map: &MapRef, name: &str) -> Result<u64, Refusal> {
    let varies = |what: &str| {
        unsupported(&format!(
            "reading {what} of an inner map (it may differ between the maps stored in '{}')",
            map.name
        ))
    };
    Ok(match name {
        "sha" | "excl" => 0,
        "map_type" => map.map_type as u64,
        "key_size" => map.key_size as u64,
        "value_size" => map.value_size as u64,
        "max_entries" if map.max_entries_vary => return Err(varies("max_entries")),
        "max_entries" => map.max_entries as u64,
        "map_flags" => map.flags as u64,
        "map_extra" | "id" => match map.id {
            None => return Err(varies(name)),
            Some(id) if name == "id" => id as u64,
            Some(_) => map.map_extra,
        },
        _ => unreachable!("FIELDS names every field"),
    })
}

/// A load of `size` bytes at `off` through map pointer `regs[regno]`: the state the
/// destination gets, and the 64-bit value a run loads (sign-extended for `signed`).
pub fn load(
    base: &RegState,
    regno: u8,
    off: i64,
    size: u32,
    signed: bool,
) -> Result<(RegState, u64), Refusal> {
    let map = base.map.as_ref().expect("a map pointer names its map");
    let tname = struct_name(map.map_type);
    if off < 0 {
        return Err(eacces(format!(
            "R{regno} is {tname} invalid negative access: off={off}"
        )));
    }
    if let Some(&(at, name, ty)) =
        (POINTERS.iter()).find(|(at, _, _)| (*at as i64..*at as i64 + 8).contains(&off))
    {
        if off != at as i64 || size != 8 {
            return Err(eacces(format!(
                "cannot access ptr member {name} with moff {at} in struct bpf_map with off {off} size {size}"
            )));
        }
        let mut reg = RegState::pointer(RegType::of(ty));
        // `void *security`: read-only memory of size 0 (`rdonly_untrusted_mem`).
        reg.mem_size = 0;
        return Ok((reg, KERNEL_OBJECT_BASE + at as u64));
    }
    let field = FIELDS
        .iter()
        .find(|(at, len, _)| off >= *at as i64 && off < (*at + *len) as i64);
    let Some(&(at, len, name)) = field else {
        return Err(unsupported(&format!(
            "reading struct {tname} at off={off} (a field this runtime does not model)"
        )));
    };
    if off + size as i64 > (at + len) as i64 {
        return Err(eacces(format!(
            "access beyond the end of member {name} (mend:{}) in struct bpf_map with off {off} size {size}",
            at + len
        )));
    }
    // Wider fields (the sha array) are zeros wherever read.
    let whole = field_value(map, name)?;
    let shift = 8 * (off as u32 - at);
    let mut value = if shift >= 64 { 0 } else { whole >> shift };
    if size < 8 {
        value &= (1u64 << (8 * size)) - 1;
        if signed && value >> (8 * size - 1) & 1 == 1 {
            value |= !((1u64 << (8 * size)) - 1);
        }
    }
    Ok((super::arith::loaded_scalar(size as u8, signed), value))
}

/// A store through a map pointer: the kernel allows reads only.
pub fn store(base: &RegState) -> Refusal {
    let map_type = base.map.as_ref().map_or(0, |m| m.map_type);
    eacces(format!(
        "only read from {} is supported",
        struct_name(map_type)
    ))
}

/// The instruction that gives `dst` the 64-bit `value` in one slot: a 64-bit move of a value
/// that sign-extends from 32 bits, or a 32-bit move (which zero-extends); `None` for the values
/// neither reaches.
pub fn constant_move(dst: u8, value: u64) -> Option<Insn> {
    if value as i64 == value as i32 as i64 {
        Some(Insn::new(
            CLASS_ALU64 | ALU_MOV | SRC_K,
            dst,
            0,
            0,
            value as i32,
        ))
    } else if value <= u32::MAX as u64 {
        Some(Insn::new(
            CLASS_ALU | ALU_MOV | SRC_K,
            dst,
            0,
            0,
            value as u32 as i32,
        ))
    } else {
        None
    }
}
