//! ALU instructions on register states: scalars through [`alu`](super::alu), moves with the ids
//! that link copies, and pointer arithmetic with the kernel's rules and messages
//! (`check_alu_op`, `adjust_reg_min_max_vals`, `adjust_ptr_min_max_vals`), for a privileged
//! program (as root loads it).

use super::alu;
use super::bounds::Bounds;
use super::env::{eacces, Env, Refusal};
use super::reg::{BaseType, RegState};
use crate::analysis::Instruction;
use crate::error::ErrorCode;
use crate::isa::opcodes::*;

/// The kernel's names of the ALU operations in its messages (`bpf_alu_string`).
pub const ALU_NAMES: [&str; 14] = [
    "+=", "-=", "*=", "/=", "|=", "&=", "<<=", ">>=", "neg", "%=", "^=", "=", "s>>=", "endian",
];

fn alu_name(op: u8) -> &'static str {
    ALU_NAMES[(op >> 4) as usize]
}

/// Reading a register that was never written.
pub fn check_init(regs: &[RegState], r: u8) -> Result<(), Refusal> {
    if regs[r as usize].is_init() {
        Ok(())
    } else {
        Err(eacces(format!("R{r} !read_ok")))
    }
}

/// Writing r10.
pub fn check_writable(r: u8) -> Result<(), Refusal> {
    if r == FP {
        Err(eacces("frame pointer is read only"))
    } else {
        Ok(())
    }
}

/// Gives a scalar an id before it is copied, so that the copies stay linked (a constant needs
/// none: it is the same everywhere anyway).
fn assign_scalar_id(env: &mut Env<'_>, reg: &mut RegState) {
    if reg.is_scalar() && reg.id == 0 && !reg.bounds.var_off.is_const() {
        reg.id = env.new_id();
    }
}

/// Executes one ALU instruction on `regs`.
pub fn alu_insn(
    env: &mut Env<'_>,
    regs: &mut [RegState],
    insn: &Instruction,
) -> Result<(), Refusal> {
    let code = insn.opcode;
    let alu32 = class(code) == CLASS_ALU;
    let op = code & 0xf0;
    let (d, s) = (insn.dst, insn.src);
    match op {
        ALU_MOV => {
            if code & SRC_X != 0 {
                check_init(regs, s)?;
            }
            check_writable(d)?;
            mov(env, regs, insn, alu32)
        }
        ALU_NEG | ALU_END => {
            check_init(regs, d)?;
            check_writable(d)?;
            super::unprivileged::check_unary(env, &regs[d as usize], d)?;
            let dst = &mut regs[d as usize];
            if !dst.is_scalar() {
                // A pointer negated or swapped is just a number (privileged programs may).
                *dst = RegState::unknown_scalar();
                if alu32 && op == ALU_NEG {
                    dst.bounds.zext_32_to_64();
                    dst.bounds.sync();
                }
                return Ok(());
            }
            let bounds = if op == ALU_NEG {
                alu::scalar_alu(&dst.bounds, &dst.bounds, ALU_NEG, alu32)
            } else {
                let bits = insn.imm() as u8;
                let swap = class(code) == CLASS_ALU64 || code & SRC_X != 0;
                alu::byte_swap(&dst.bounds, bits, swap)
            };
            *dst = RegState::scalar(bounds);
            Ok(())
        }
        _ => {
            if code & SRC_X != 0 {
                check_init(regs, s)?;
            }
            check_init(regs, d)?;
            check_writable(d)?;
            binary(env, regs, insn, alu32, op)
        }
    }
}

fn mov(
    env: &mut Env<'_>,
    regs: &mut [RegState],
    insn: &Instruction,
    alu32: bool,
) -> Result<(), Refusal> {
    let (d, s, off) = (insn.dst as usize, insn.src as usize, insn.off);
    if insn.opcode & SRC_X == 0 {
        regs[d] = RegState::scalar(alu::mov_imm(insn.imm(), alu32));
        return Ok(());
    }
    if !regs[s].is_scalar() {
        super::unprivileged::check_mov(env, &regs[s], s as u8, alu32, off)?;
        regs[d] = if !alu32 && off == 0 {
            regs[s].clone()
        } else {
            // Part of a pointer is a number (privileged programs may take it).
            let mut r = RegState::unknown_scalar();
            if alu32 {
                r.bounds.zext_32_to_64();
                r.bounds.sync();
            }
            r
        };
        return Ok(());
    }
    // Which copies stay linked to their source: a plain 64-bit copy; a 32-bit copy of a value
    // that fits in 32 bits; a sign extension of a value that needs none.
    let umax = regs[s].bounds.umax;
    let linked = match (alu32, off) {
        (false, 0) => true,
        (true, 0) => umax <= u32::MAX as u64,
        (_, bits) => umax < 1u64 << (bits - 1),
    };
    if linked {
        let mut src = regs[s].clone();
        assign_scalar_id(env, &mut src);
        regs[s] = src;
    }
    let mut dst = regs[s].clone();
    if !linked {
        dst.id = 0;
    }
    dst.bounds = alu::mov(&regs[s].bounds, off, alu32);
    regs[d] = dst;
    Ok(())
}

fn binary(
    env: &mut Env<'_>,
    regs: &mut [RegState],
    insn: &Instruction,
    alu32: bool,
    op: u8,
) -> Result<(), Refusal> {
    let d = insn.dst as usize;
    let src = if insn.opcode & SRC_X != 0 {
        regs[insn.src as usize].clone()
    } else {
        RegState::known(insn.imm() as i64 as u64)
    };
    let dst = regs[d].clone();
    let with_imm = insn.opcode & SRC_X == 0;
    if (op == ALU_DIV || op == ALU_MOD) && with_imm && insn.imm() == 0 {
        return Err(refuse_einval("div by zero"));
    }
    let width = if alu32 { 32 } else { 64 };
    if matches!(op, ALU_LSH | ALU_RSH | ALU_ARSH) && with_imm && !(0..width).contains(&insn.imm()) {
        return Err(refuse_einval(&format!("invalid shift {}", insn.imm())));
    }
    match (dst.is_scalar(), src.is_scalar()) {
        (true, true) => {
            let bounds = alu::scalar_alu(&dst.bounds, &src.bounds, op, alu32);
            let mut out = RegState::scalar(bounds);
            // `rX += const` keeps rX linked to its copies, as their value plus a delta (once).
            if op == ALU_ADD && !alu32 && dst.id != 0 && src.bounds.is_const() {
                let val = src.bounds.var_off.value;
                if !dst.add_const && val <= i32::MAX as u64 {
                    out.id = dst.id;
                    out.add_const = true;
                    out.off = val as i32;
                }
            }
            regs[d] = out;
            Ok(())
        }
        (false, false) => {
            if op == ALU_SUB {
                super::unprivileged::check_pointer_pair(env, d as u8, alu_name(op))?;
                regs[d] = RegState::unknown_scalar();
                Ok(())
            } else {
                Err(eacces(format!(
                    "R{d} pointer {} pointer prohibited",
                    alu_name(op)
                )))
            }
        }
        (false, true) => {
            // The offset's value decides where the pointer goes: precise.
            if !with_imm {
                env.want_precise(insn.src);
            }
            regs[d] = pointer_arith(env, insn, alu32, op, &dst, &src, false)?;
            Ok(())
        }
        (true, false) => {
            env.want_precise(insn.dst);
            regs[d] = pointer_arith(env, insn, alu32, op, &src, &dst, true)?;
            Ok(())
        }
    }
}

fn refuse_einval(message: &str) -> Refusal {
    (message.to_string(), ErrorCode::Einval)
}

/// `ptr OP scalar` (or, `scalar_dst`, `scalar OP ptr`): the pointer moved by a fixed or variable
/// offset, with the kernel's checks in its order.
fn pointer_arith(
    env: &mut Env<'_>,
    insn: &Instruction,
    alu32: bool,
    op: u8,
    ptr: &RegState,
    off: &RegState,
    scalar_dst: bool,
) -> Result<RegState, Refusal> {
    let d = insn.dst;
    if alu32 {
        if op == ALU_SUB {
            super::unprivileged::check_pointer_alu32(env, d)?;
            return Ok(RegState::unknown_scalar());
        }
        return Err(eacces(format!("R{d} 32-bit pointer arithmetic prohibited")));
    }
    if ptr.ty.maybe_null {
        return Err(eacces(format!(
            "R{d} pointer arithmetic on {} prohibited, null-check it first",
            ptr.ty.name()
        )));
    }
    let known = off.bounds.is_const();
    let allowed = match ptr.ty.base {
        BaseType::Ctx
        | BaseType::MapValue
        | BaseType::MapKey
        | BaseType::Stack
        | BaseType::Packet
        | BaseType::PacketMeta
        | BaseType::Mem
        | BaseType::Func => true,
        BaseType::ConstMap => known && off.bounds.smin == 0 && op == ALU_ADD,
        // The kernel also allows variable offsets; a constant one is all this needs.
        BaseType::KernelObject(_) => known,
        _ => false,
    };
    if !allowed {
        return Err(eacces(format!(
            "R{d} pointer arithmetic on {} prohibited",
            ptr.ty.name()
        )));
    }
    sane_offset(off, ptr)?;
    sane_offset(ptr, ptr)?;
    let sanitize = super::unprivileged::check_sanitize(env, insn, op, (ptr, off), scalar_dst)?;
    let mut out = ptr.clone();
    if op == ALU_SUB && scalar_dst {
        return Err(eacces(format!(
            "R{d} tried to subtract pointer from scalar"
        )));
    }
    if op == ALU_SUB && ptr.ty.base == BaseType::Stack {
        return Err(eacces(format!(
            "R{d} subtraction from stack pointer prohibited"
        )));
    }
    match op {
        ALU_ADD | ALU_SUB => {
            let delta = if op == ALU_ADD {
                off.bounds.smin
            } else {
                off.bounds.smin.wrapping_neg()
            };
            let fixed = (ptr.off as i64).checked_add(delta);
            if known
                && fixed.is_some_and(|f| f == f as i32 as i64)
                && !(op == ALU_SUB && off.bounds.smin == i64::MIN)
            {
                out.off = fixed.unwrap_or_default() as i32;
                super::unprivileged::check_moved(env, insn, &out, sanitize)?;
                return Ok(out);
            }
            // A variable part: added to the pointer's own, with the scalar rules.
            out.bounds = alu::scalar_alu(&ptr.bounds, &off.bounds, op, false);
            if ptr.ty.base.is_packet() {
                // Something unknown was added: the range learned so far is for another pointer.
                out.id = env.new_id();
                out.range = 0;
            }
            super::unprivileged::check_moved(env, insn, &out, sanitize)?;
            Ok(out)
        }
        ALU_AND | ALU_OR | ALU_XOR => Err(eacces(format!(
            "R{d} bitwise operator {} on pointer prohibited",
            alu_name(op)
        ))),
        _ => Err(eacces(format!(
            "R{d} pointer arithmetic with {} operator prohibited",
            alu_name(op)
        ))),
    }
}

/// Offsets too large to reason about (`check_reg_sane_offset`), for the offset register and
/// for the pointer itself.
fn sane_offset(reg: &RegState, ptr: &RegState) -> Result<(), Refusal> {
    let limit = MAX_VAR_OFF as i64;
    let name = ptr.ty.name();
    let b = &reg.bounds;
    let val = b.var_off.value as i64;
    let einval = |m: String| Err((m, ErrorCode::Einval));
    if b.var_off.is_const() && (val >= limit || val <= -limit) {
        return einval(format!(
            "math between {name} pointer and {val} is not allowed"
        ));
    }
    if reg.off as i64 >= limit || reg.off as i64 <= -limit {
        return einval(format!("{name} pointer offset {} is not allowed", reg.off));
    }
    if b.smin == i64::MIN {
        return einval(format!(
            "math between {name} pointer and register with unbounded min value is not allowed"
        ));
    }
    if b.smin >= limit || b.smin <= -limit {
        return einval(format!(
            "value {} makes {name} pointer be out of bounds",
            b.smin
        ));
    }
    Ok(())
}

/// Offsets at or above this are beyond any object (`BPF_MAX_VAR_OFF`).
const MAX_VAR_OFF: u64 = 1 << 29;

/// A scalar's bounds as the start of a fresh scalar: used where a value is loaded.
pub fn loaded_scalar(size: u8, signed: bool) -> RegState {
    let mut b = Bounds::UNKNOWN;
    if size < 8 {
        if signed {
            b.coerce_to_size_sx(size);
        } else {
            b.coerce_to_size(size);
        }
    }
    RegState::scalar(b)
}
