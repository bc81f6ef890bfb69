//! Loads and stores: where a pointer may read or write, how many bytes, and what a load gives
//! (`check_mem_access` and the checks under it: stack, context, packet, map value, memory), with
//! the kernel's messages. Privileged rules (as root loads it): a read of stack bytes never
//! written gives an unknown number.

use super::arith::loaded_scalar;
use super::ctx_access;
use super::env::{eacces, Env, Refusal};
use super::reg::{BaseType, RegState};
use super::state::{slot_of, FuncState, SlotType, BPF_REG_SIZE};
use super::tnum::Tnum;
use crate::analysis::MAX_BPF_STACK;

/// Offsets at or above this are beyond any object (`BPF_MAX_VAR_OFF`).
const MAX_VAR_OFF: u64 = 1 << 29;

/// What is stored: a register's state, an immediate (`BPF_ST`), or a value nothing is known
/// about (what an atomic operation leaves).
pub enum Stored<'a> {
    Reg(&'a RegState),
    Imm(i32),
    Unknown,
}

/// `[off, off + size)` inside `[0, limit)`, or the message for `base` (`__check_mem_access`).
fn within(base: &RegState, regno: u8, off: i64, size: u32, limit: u32) -> Result<(), Refusal> {
    if off >= 0 && off + size as i64 <= limit as i64 && size > 0 {
        return Ok(());
    }
    let message = match base.ty.base {
        BaseType::MapKey => {
            format!("invalid access to map key, key_size={limit} off={off} size={size}")
        }
        BaseType::MapValue => {
            format!("invalid access to map value, value_size={limit} off={off} size={size}")
        }
        BaseType::Packet | BaseType::PacketMeta | BaseType::PacketEnd => format!(
            "invalid access to packet, off={off} size={size}, R{regno}(id={},off={off},r={limit})",
            base.id
        ),
        _ => format!("invalid access to memory, mem_size={limit} off={off} size={size}"),
    };
    Err(eacces(message))
}

/// What the map's flags let programs do to its values (`check_map_access_type`, before the
/// bounds): a `BPF_F_RDONLY_PROG` map (`.rodata`) is never written, a `BPF_F_WRONLY_PROG` one
/// never read. `off` is the access's fixed offset from the value's start.
fn map_access_type(base: &RegState, off: i64, size: u32, write: bool) -> Result<(), Refusal> {
    let Some(map) = base.map.as_ref() else {
        return Ok(());
    };
    let (allowed, what) = if write {
        (map.program_may_write(), "write into")
    } else {
        (map.program_may_read(), "read from")
    };
    if allowed {
        return Ok(());
    }
    Err(eacces(format!(
        "{what} map forbidden, value_size={} off={off} size={size}",
        map.value_size
    )))
}

/// A region of `limit` bytes through a pointer with a variable part (`check_mem_region_access`).
fn region(base: &RegState, regno: u8, off: i64, size: u32, limit: u32) -> Result<(), Refusal> {
    let b = &base.bounds;
    if b.smin < 0
        && (b.smin == i64::MIN || off + b.smin != (off + b.smin) as i32 as i64 || b.smin + off < 0)
    {
        return Err(eacces(format!(
            "R{regno} min value is negative, either use unsigned index or do a if (index >=0) check."
        )));
    }
    within(base, regno, b.smin + off, size, limit).map_err(|(m, c)| {
        (
            format!("{m}\nR{regno} min value is outside of the allowed memory range"),
            c,
        )
    })?;
    if b.umax >= MAX_VAR_OFF {
        return Err(eacces(format!(
            "R{regno} unbounded memory access, make sure to bounds check any such access"
        )));
    }
    within(base, regno, b.umax as i64 + off, size, limit).map_err(|(m, c)| {
        (
            format!("{m}\nR{regno} max value is outside of the allowed memory range"),
            c,
        )
    })
}

/// Stack accesses are aligned to their size, always (the kernel's spill tracking relies on it;
/// `check_ptr_alignment` with strict checking for the stack).
fn check_stack_alignment(base: &RegState, insn_off: i16, size: u32) -> Result<(), Refusal> {
    check_alignment(base, insn_off, size)
}

/// `base + insn_off` aligned to `size` (`check_generic_ptr_alignment`, strict): for the stack
/// always, for any memory an atomic operation touches.
pub fn check_alignment(base: &RegState, insn_off: i16, size: u32) -> Result<(), Refusal> {
    // Packet data starts `NET_IP_ALIGN` (2) bytes past an aligned address, as the kernel assumes
    // for strict checks (`check_pkt_ptr_alignment`).
    let ip_align = if base.ty.base.is_packet() { 2 } else { 0 };
    let total =
        base.bounds.var_off + Tnum::constant((ip_align + base.off as i64 + insn_off as i64) as u64);
    if size == 1 || total.is_aligned(size as u64) {
        return Ok(());
    }
    let var = if base.bounds.var_off.is_const() {
        super::log::unum(base.bounds.var_off.value)
    } else {
        base.bounds.var_off.to_string()
    };
    if ip_align != 0 {
        return Err(eacces(format!(
            "misaligned packet access off {ip_align}+{var}+{}+{insn_off} size {size}",
            base.off
        )));
    }
    let desc = match base.ty.base {
        BaseType::Stack => "stack ",
        BaseType::Ctx => "context ",
        BaseType::MapValue => "value ",
        BaseType::MapKey => "key ",
        _ => "",
    };
    Err(eacces(format!(
        "misaligned {desc}access off {var}+{}+{insn_off} size {size}",
        base.off
    )))
}

/// The stack bytes an access may touch: one place, or (a variable offset) the range
/// `[min, end)` that every value of the offset stays in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StackRange {
    Fixed(i64),
    Variable { min: i64, end: i64 },
}

/// Where a stack access of `size` bytes at `off` (the instruction's plus the pointer's fixed
/// offset) lands, or the kernel's message (`check_stack_access_within_bounds`; `what` is
/// "read from" or "write to").
fn stack_range(
    base: &RegState,
    regno: u8,
    off: i64,
    size: u32,
    what: &str,
) -> Result<StackRange, Refusal> {
    let b = &base.bounds;
    let stack = MAX_BPF_STACK as i64;
    if b.var_off.is_const() {
        let at = b.var_off.value as i64 + off;
        if at < -stack || at + size as i64 > 0 || size == 0 {
            return Err(eacces(format!(
                "invalid {what} stack R{regno} off={at} size={size}"
            )));
        }
        return Ok(StackRange::Fixed(at));
    }
    let limit = MAX_VAR_OFF as i64;
    if b.smax >= limit || b.smin <= -limit {
        return Err(eacces(format!(
            "invalid unbounded variable-offset {what} stack R{regno}"
        )));
    }
    let (min, end) = (b.smin + off, b.smax + off + size as i64);
    if min < -stack || min > -1 || end > 0 {
        return Err(eacces(format!(
            "invalid variable-offset {what} stack R{regno} var_off={} off={off} size={size}",
            b.var_off
        )));
    }
    Ok(StackRange::Variable { min, end })
}

/// The first read of an atomic operation, which has no destination register: on the stack,
/// within bounds, and then at a fixed offset (the kernel's message for such a read names
/// helpers, which share its path in `check_stack_read`).
pub fn atomic_stack_read(
    base: &RegState,
    regno: u8,
    insn_off: i16,
    size: u32,
) -> Result<(), Refusal> {
    if base.ty.base != BaseType::Stack || base.ty.maybe_null {
        return Ok(());
    }
    let off = insn_off as i64 + base.off as i64;
    if let StackRange::Variable { .. } = stack_range(base, regno, off, size, "read from")? {
        return Err(eacces(format!(
            "variable offset stack pointer cannot be passed into helper function; var_off={} off={off} size={size}",
            base.bounds.var_off
        )));
    }
    Ok(())
}

/// A load of `size` bytes at `insn_off` through `regs[regno]` (`signed`: `LDX | MEMSX`):
/// the state the destination gets.
pub fn load(
    env: &Env<'_>,
    frame: &FuncState,
    regno: u8,
    insn_off: i16,
    size: u32,
    signed: bool,
) -> Result<RegState, Refusal> {
    let base = &frame.regs[regno as usize];
    let off = insn_off as i64 + base.off as i64;
    let scalar = || loaded_scalar(size as u8, signed);
    if base.ty.maybe_null || !base.is_pointer() {
        return Err(eacces(format!(
            "R{regno} invalid mem access '{}'",
            base.ty.name()
        )));
    }
    match base.ty.base {
        BaseType::Stack => {
            check_stack_alignment(base, insn_off, size)?;
            match stack_range(base, regno, off, size, "read from")? {
                StackRange::Fixed(at) => {
                    let unprivileged = env.options.unprivileged;
                    super::unprivileged::check_stack_allocated(
                        unprivileged,
                        frame,
                        regno,
                        at,
                        size,
                    )?;
                    let value = read_stack(frame, at, size, signed)?;
                    super::unprivileged::check_stack_read(env, frame, at, size)?;
                    Ok(value)
                }
                StackRange::Variable { min, end } => {
                    Ok(read_stack_range(frame, min, end, size, signed))
                }
            }
        }
        BaseType::Ctx => {
            check_ctx_offset(base, regno)?;
            ctx_access::load(env.options.kind, off, size, signed)
        }
        BaseType::SockCommon => {
            if base.bounds.smin < 0 {
                return Err(eacces(format!(
                    "R{regno} min value is negative, either use unsigned index or do a if (index >=0) check."
                )));
            }
            ctx_access::sock_common_load(regno, off, size)
        }
        BaseType::Packet | BaseType::PacketMeta => {
            packet_access(base, regno, off, size)?;
            Ok(scalar())
        }
        BaseType::MapValue => {
            map_access_type(base, off, size, false)?;
            let limit = base.map.as_ref().map_or(0, |m| m.value_size);
            region(base, regno, off, size, limit)?;
            Ok(scalar())
        }
        BaseType::MapKey => {
            // The key a `bpf_for_each_map_elem` callback is given.
            let limit = base.map.as_ref().map_or(0, |m| m.key_size);
            region(base, regno, off, size, limit)?;
            Ok(scalar())
        }
        BaseType::Mem => {
            region(base, regno, off, size, base.mem_size)?;
            Ok(scalar())
        }
        // The kernel reads these with fault-tolerant probe loads of its own objects.
        BaseType::KernelObject(name) => Err(super::env::unsupported(&format!(
            "R{regno} a read through {name} (a kernel object this runtime does not have)"
        ))),
        _ => Err(eacces(format!(
            "R{regno} invalid mem access '{}'",
            base.ty.name()
        ))),
    }
}

/// `size` bytes at `off` inside the map value `base` points to (`check_map_access`).
pub fn map_value_in_bounds(base: &RegState, regno: u8, off: i64, size: u32) -> Result<(), Refusal> {
    let limit = base.map.as_ref().map_or(0, |m| m.value_size);
    region(base, regno, off, size, limit)
}

/// A store of `size` bytes at `insn_off` through `regs[regno]`.
pub fn store(
    env: &Env<'_>,
    frame: &mut FuncState,
    regno: u8,
    insn_off: i16,
    size: u32,
    value: Stored<'_>,
) -> Result<(), Refusal> {
    let base = frame.regs[regno as usize].clone();
    let off = insn_off as i64 + base.off as i64;
    if base.ty.maybe_null || !base.is_pointer() {
        return Err(eacces(format!(
            "R{regno} invalid mem access '{}'",
            base.ty.name()
        )));
    }
    match base.ty.base {
        BaseType::Stack => {
            check_stack_alignment(&base, insn_off, size)?;
            match stack_range(&base, regno, off, size, "write to")? {
                StackRange::Fixed(at) => {
                    super::unprivileged::check_stack_write(env, frame, at, size)?;
                    if let Some(zero) = super::unprivileged::plain_write(env, &value) {
                        frame.mark_stack_written(at, size as usize, zero);
                        return Ok(());
                    }
                    write_stack(frame, at, size, value)
                }
                StackRange::Variable { min, end } => {
                    write_stack_range(frame, min, end, value);
                    Ok(())
                }
            }
        }
        BaseType::Ctx => {
            check_ctx_offset(&base, regno)?;
            ctx_access::store(env.options.kind, off, size)
        }
        BaseType::SockCommon => Err(eacces(format!(
            "R{regno} cannot write into {}",
            base.ty.name()
        ))),
        BaseType::KernelObject(_) => Err(eacces("only read is supported")),
        BaseType::Packet | BaseType::PacketMeta => {
            if !super::packet::may_write_direct(env.options.kind) {
                return Err(eacces("cannot write into packet"));
            }
            packet_access(&base, regno, off, size)
        }
        BaseType::MapValue => {
            map_access_type(&base, off, size, true)?;
            let limit = base.map.as_ref().map_or(0, |m| m.value_size);
            region(&base, regno, off, size, limit)
        }
        BaseType::Mem => region(&base, regno, off, size, base.mem_size),
        BaseType::MapKey => Err(eacces(format!("write to change key R{regno} not allowed"))),
        BaseType::ConstMap => Err(super::map_fields::store(&base)),
        _ => Err(eacces(format!(
            "R{regno} invalid mem access '{}'",
            base.ty.name()
        ))),
    }
}

/// Packet bytes: a non-negative pointer whose fixed offset and size fit in the range learned
/// from `data_end` (`check_packet_access`).
fn packet_access(base: &RegState, regno: u8, off: i64, size: u32) -> Result<(), Refusal> {
    if base.bounds.smin < 0 {
        return Err(eacces(format!(
            "R{regno} min value is negative, either use unsigned index or do a if (index >=0) check."
        )));
    }
    let outside = || format!("R{regno} offset is outside of the packet");
    if base.range < 0 {
        // Known to be at or beyond data_end.
        return Err((outside(), crate::error::ErrorCode::Einval));
    }
    within(base, regno, off, size, base.range as u32)
        .map_err(|(m, c)| (format!("{m}\n{}", outside()), c))
}

/// The context pointer must be unmoved (`__check_ptr_off_reg` for ctx).
fn check_ctx_offset(base: &RegState, regno: u8) -> Result<(), Refusal> {
    if base.off != 0 {
        return Err(eacces(format!(
            "dereference of modified ctx ptr R{regno} off={} disallowed",
            base.off
        )));
    }
    if !base.bounds.var_off.is_const() || base.bounds.var_off.value != 0 {
        return Err(eacces(format!(
            "variable ctx access var_off={} disallowed",
            base.bounds.var_off
        )));
    }
    Ok(())
}

/// What a read of `size` bytes at `at` (fixed, aligned, in bounds) gives
/// (`check_stack_read_fixed_off`): a spilled register back whole; a narrower read of a scalar
/// spill at the bottom of the slot, that scalar narrowed; known-zero bytes, zero; anything
/// else an unknown number (never-written bytes too: privileged programs may read them). A
/// spilled pointer is read back whole or not at all.
fn read_stack(frame: &FuncState, at: i64, size: u32, signed: bool) -> Result<RegState, Refusal> {
    let (index, within_slot) = slot_of(at);
    let unknown = || loaded_scalar(size as u8, signed);
    let Some(slot) = frame.stack.get(index) else {
        return Ok(unknown());
    };
    let narrow = |mut reg: RegState| {
        if signed {
            reg.bounds.coerce_to_size_sx(size as u8);
        } else {
            reg.bounds.coerce_to_size(size as u8);
        }
        reg
    };
    let bytes = |k: u32| slot.types[within_slot - k as usize];
    if slot.types[BPF_REG_SIZE - 1] == SlotType::Spill {
        let spill_size = 1 + slot.types[..BPF_REG_SIZE - 1]
            .iter()
            .rev()
            .take_while(|t| **t == SlotType::Spill)
            .count();
        let spilled = &slot.spilled;
        if size as usize == BPF_REG_SIZE && spill_size == BPF_REG_SIZE {
            return Ok(spilled.clone());
        }
        if !spilled.is_scalar() {
            return Err(eacces("invalid size of register fill"));
        }
        if size as usize <= spill_size && at % BPF_REG_SIZE as i64 == 0 {
            let mut reg = spilled.clone();
            if size as usize != spill_size {
                reg.id = 0;
            }
            return Ok(if size < 8 { narrow(reg) } else { reg });
        }
        let spills = (0..size).filter(|&k| bytes(k) == SlotType::Spill).count();
        let zeros = (0..size).filter(|&k| bytes(k) == SlotType::Zero).count();
        let spilled_zero = spilled.bounds.var_off.is_const() && spilled.bounds.var_off.value == 0;
        if (spills == size as usize && spilled_zero) || zeros == size as usize {
            return Ok(RegState::known(0));
        }
        return Ok(unknown());
    }
    if (0..size).all(|k| bytes(k) == SlotType::Zero) {
        return Ok(RegState::known(0));
    }
    Ok(unknown())
}

/// A read at a variable offset (`check_stack_read_var_off`): zero if every byte it may read is
/// known zero, an unknown number otherwise (privileged programs may read any byte).
fn read_stack_range(frame: &FuncState, min: i64, end: i64, size: u32, signed: bool) -> RegState {
    let all_zero = (min..end).all(|at| {
        let (i, w) = slot_of(at);
        frame
            .stack
            .get(i)
            .is_some_and(|s| s.types[w] == SlotType::Zero)
    });
    if all_zero {
        RegState::known(0)
    } else {
        loaded_scalar(size as u8, signed)
    }
}

/// A write at a variable offset (`check_stack_write_var_off`): every byte it may write holds an
/// unknown number afterwards (zero stays zero when zero is written), and what was spilled
/// there is gone, except a spilled 0 that a 0 overwrites.
fn write_stack_range(frame: &mut FuncState, min: i64, end: i64, value: Stored<'_>) {
    let writing_zero = matches!(value, Stored::Reg(r) if r.is_scalar() && r.bounds.is_const() && r.bounds.var_off.value == 0);
    for at in min..end {
        let (_, w) = slot_of(at);
        let Some(slot) = frame.slot_mut(at) else {
            continue;
        };
        let spilled_zero = slot.spilled.is_scalar()
            && slot.spilled.bounds.var_off.is_const()
            && slot.spilled.bounds.var_off.value == 0;
        if writing_zero && slot.types[w] == SlotType::Spill && spilled_zero {
            continue;
        }
        slot.spilled = RegState::not_init();
        slot.types[w] = if writing_zero && slot.types[w] == SlotType::Zero {
            SlotType::Zero
        } else {
            SlotType::Misc
        };
    }
}

/// A store of `size` bytes at `at` (fixed, in bounds) (`check_stack_write_fixed_off`).
fn write_stack(
    frame: &mut FuncState,
    at: i64,
    size: u32,
    value: Stored<'_>,
) -> Result<(), Refusal> {
    let aligned = at % BPF_REG_SIZE as i64 == 0;
    match value {
        Stored::Reg(reg) if aligned && reg.is_scalar() => {
            // A scalar spill keeps its bounds (narrowed to the width written).
            let mut spilled = reg.clone();
            if (size as usize) < BPF_REG_SIZE {
                let fits = 64 - reg.bounds.umax.leading_zeros() <= size * 8;
                if !fits {
                    spilled.id = 0;
                }
            }
            frame.spill(at, size as usize, &spilled);
            Ok(())
        }
        Stored::Imm(imm) if aligned => {
            frame.spill(at, size as usize, &RegState::known(imm as i64 as u64));
            Ok(())
        }
        Stored::Reg(reg) if reg.is_pointer() => {
            if size as usize != BPF_REG_SIZE {
                return Err(eacces("invalid size of register spill"));
            }
            if !aligned {
                // A pointer in misaligned bytes: the bytes hold some number.
                frame.mark_stack_written(at, size as usize, false);
                return Ok(());
            }
            frame.spill(at, size as usize, reg);
            Ok(())
        }
        Stored::Reg(reg) => {
            let zero = reg.bounds.is_const() && reg.bounds.var_off.value == 0;
            frame.mark_stack_written(at, size as usize, zero);
            Ok(())
        }
        Stored::Imm(imm) => {
            frame.mark_stack_written(at, size as usize, imm == 0);
            Ok(())
        }
        Stored::Unknown => {
            frame.mark_stack_written(at, size as usize, false);
            Ok(())
        }
    }
}

/// A helper reading `size` bytes through `regs[regno]` (a key or value argument): in bounds of
/// what the pointer points to (`check_helper_mem_access`; stack bytes never written are fine
/// for privileged programs).
pub fn helper_read(frame: &FuncState, regno: u8, size: u32) -> Result<(), Refusal> {
    helper_access(frame, regno, size, false)
}

/// A write of `size` bytes through `regs[regno]` checked as a helper's would be, without
/// marking anything written (a global function's memory argument: `check_mem_reg`).
pub fn helper_check_write(frame: &FuncState, regno: u8, size: u32) -> Result<(), Refusal> {
    helper_access(frame, regno, size, true)
}

/// A helper's access to `size` bytes through `regs[regno]`, a write or a read (the kernel
/// passes the helper's access type since 6.13: it names the access in the stack's message and
/// decides what a map's flags allow).
fn helper_access(frame: &FuncState, regno: u8, size: u32, write: bool) -> Result<(), Refusal> {
    let what = if write { "write to" } else { "read from" };
    let base = &frame.regs[regno as usize];
    let off = base.off as i64;
    match base.ty.base {
        _ if base.ty.maybe_null || !base.is_pointer() => Err(eacces(format!(
            "R{regno} type={} expected=fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_",
            base.ty.name()
        ))),
        BaseType::Stack => stack_range(base, regno, off, size, what).map(|_| ()),
        BaseType::Packet | BaseType::PacketMeta => packet_access(base, regno, off, size),
        BaseType::MapValue => {
            map_access_type(base, off, size, write)?;
            let limit = base.map.as_ref().map_or(0, |m| m.value_size);
            region(base, regno, off, size, limit)
        }
        BaseType::Mem => region(base, regno, off, size, base.mem_size),
        _ => Err(eacces(format!(
            "R{regno} type={} expected=fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_",
            base.ty.name()
        ))),
    }
}

/// A helper writing `size` bytes through `regs[regno]` (memory it fills, `MEM_UNINIT`): in
/// bounds as for a read, and the stack bytes become written with an unknown value (the kernel
/// writes them byte by byte after the call's checks).
pub fn helper_write(frame: &mut FuncState, regno: u8, size: u32) -> Result<(), Refusal> {
    helper_access(frame, regno, size, true)?;
    let base = frame.regs[regno as usize].clone();
    if base.ty.base == BaseType::Stack {
        match stack_range(&base, regno, base.off as i64, size, "write to")? {
            StackRange::Fixed(at) => frame.mark_stack_written(at, size as usize, false),
            StackRange::Variable { min, end } => {
                write_stack_range(frame, min, end, Stored::Unknown)
            }
        }
    }
    Ok(())
}
