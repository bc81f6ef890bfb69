//! The reference semantics: an interpreter of validated instructions, checked mode. Everything
//! another engine does must agree with this file, bit for bit: r0, memory, the trap (kind,
//! instruction index, address, size) and the instruction count.
//!
//! The reference itself is `general` (one instruction, by class) driven one instruction at a time
//! (`run_reference`). `run`/`run_prepared` add a fast loop over prepared ops that must give the
//! same results (`tests/interpreter_fast_path.rs` checks it against the reference loop).
//!
//! Semantics fixed here where RFC 9669 leaves a choice to the implementation:
//! - helper calls leave r1-r5 as they were (as the kernel's own interpreter does);
//! - `callx` takes a helper id from its register (the bpf_conformance convention);
//! - a legacy packet load (`LD_ABS`/`LD_IND`) outside the packet ends the program with r0 = 0,
//!   as the kernel does;
//! - atomic operations must be naturally aligned (a misaligned one traps as `misaligned`).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::error::LoadError;
use crate::error::{Trap, TrapKind};
use crate::isa::opcodes::*;
use crate::isa::{jump_target, lddw_imm, Insn};
use crate::limits::Meter;
use crate::memory::{Region, Regions};
pub use crate::vm::env::{call_helper, memory_trap, RunEnv};
use crate::vm::env::{Entry, ExecutionEngine, Validated};
use crate::vm::trap;
pub use crate::vm::{
    budget_trap, HelperReturn, RunOutput, MAX_CALL_FRAMES, STACK_FRAME_SIZE, STACK_SIZE,
};

mod observe;
pub use observe::run_traced;

struct Frame {
    return_pc: usize,
    saved: [u64; 4],
    saved_fp: u64,
}

#[inline(always)]
fn alu64(op: u8, off: i16, dst: u64, src: u64) -> u64 {
    match op {
        ALU_ADD => dst.wrapping_add(src),
        ALU_SUB => dst.wrapping_sub(src),
        ALU_MUL => dst.wrapping_mul(src),
        ALU_DIV if off == 1 => match src {
            0 => 0,
            _ => (dst as i64).wrapping_div(src as i64) as u64,
        },
        ALU_DIV => dst.checked_div(src).unwrap_or(0),
        ALU_MOD if off == 1 => match src {
            0 => dst,
            _ => (dst as i64).wrapping_rem(src as i64) as u64,
        },
        ALU_MOD => dst.checked_rem(src).unwrap_or(dst),
        ALU_OR => dst | src,
        ALU_AND => dst & src,
        ALU_XOR => dst ^ src,
        ALU_LSH => dst.wrapping_shl(src as u32 & 63),
        ALU_RSH => dst.wrapping_shr(src as u32 & 63),
        ALU_ARSH => (dst as i64).wrapping_shr(src as u32 & 63) as u64,
        ALU_NEG => (dst as i64).wrapping_neg() as u64,
        ALU_MOV => match off {
            8 => src as i8 as i64 as u64,
            16 => src as i16 as i64 as u64,
            32 => src as i32 as i64 as u64,
            _ => src,
        },
        _ => unreachable!("validated ALU64 op {op:#x}"),
    }
}

#[inline(always)]
fn alu32(op: u8, off: i16, dst: u32, src: u32) -> u32 {
    match op {
        ALU_ADD => dst.wrapping_add(src),
        ALU_SUB => dst.wrapping_sub(src),
        ALU_MUL => dst.wrapping_mul(src),
        ALU_DIV if off == 1 => match src {
            0 => 0,
            _ => (dst as i32).wrapping_div(src as i32) as u32,
        },
        ALU_DIV => dst.checked_div(src).unwrap_or(0),
        ALU_MOD if off == 1 => match src {
            0 => dst,
            _ => (dst as i32).wrapping_rem(src as i32) as u32,
        },
        ALU_MOD => dst.checked_rem(src).unwrap_or(dst),
        ALU_OR => dst | src,
        ALU_AND => dst & src,
        ALU_XOR => dst ^ src,
        ALU_LSH => dst.wrapping_shl(src & 31),
        ALU_RSH => dst.wrapping_shr(src & 31),
        ALU_ARSH => (dst as i32).wrapping_shr(src & 31) as u32,
        ALU_NEG => (dst as i32).wrapping_neg() as u32,
        ALU_MOV => match off {
            8 => src as i8 as i32 as u32,
            16 => src as i16 as i32 as u32,
            _ => src,
        },
        _ => unreachable!("validated ALU32 op {op:#x}"),
    }
}

/// `END` instructions: `le`/`be` convert from host (little-endian) order, `bswap` always swaps;
/// the result is truncated to the width and zero-extended.
#[inline(always)]
fn byte_order(opcode: u8, width: i32, v: u64) -> u64 {
    let swap = opcode == (CLASS_ALU | ALU_END | SRC_X) || opcode == (CLASS_ALU64 | ALU_END);
    match (width, swap) {
        (16, false) => v as u16 as u64,
        (32, false) => v as u32 as u64,
        (16, true) => (v as u16).swap_bytes() as u64,
        (32, true) => (v as u32).swap_bytes() as u64,
        (_, false) => v,
        (_, true) => v.swap_bytes(),
    }
}

#[inline(always)]
fn condition(op: u8, a: u64, b: u64, wide: bool) -> bool {
    let (a, b) = if wide {
        (a, b)
    } else {
        (a as u32 as u64, b as u32 as u64)
    };
    let (sa, sb) = if wide {
        (a as i64, b as i64)
    } else {
        (a as u32 as i32 as i64, b as u32 as i32 as i64)
    };
    match op {
        JMP_JEQ => a == b,
        JMP_JNE => a != b,
        JMP_JGT => a > b,
        JMP_JGE => a >= b,
        JMP_JLT => a < b,
        JMP_JLE => a <= b,
        JMP_JSET => a & b != 0,
        JMP_JSGT => sa > sb,
        JMP_JSGE => sa >= sb,
        JMP_JSLT => sa < sb,
        JMP_JSLE => sa <= sb,
        _ => unreachable!("validated jump op {op:#x}"),
    }
}

/// Reads `size` bytes at a checked address, zero-extended.
#[inline(always)]
unsafe fn load(addr: u64, size: u32) -> u64 {
    let p = addr as *const u8;
    match size {
        1 => *p as u64,
        2 => (p as *const u16).read_unaligned() as u64,
        4 => (p as *const u32).read_unaligned() as u64,
        _ => (p as *const u64).read_unaligned(),
    }
}

#[inline(always)]
unsafe fn store(addr: u64, size: u32, v: u64) {
    let p = addr as *mut u8;
    match size {
        1 => *p = v as u8,
        2 => (p as *mut u16).write_unaligned(v as u16),
        4 => (p as *mut u32).write_unaligned(v as u32),
        _ => (p as *mut u64).write_unaligned(v),
    }
}

/// One atomic read-modify-write; returns the old value (zero-extended for 32-bit).
unsafe fn atomic(addr: u64, size: u32, op: i32, src: u64, r0: u64) -> u64 {
    // The fetch bit changes only where the old value goes, not the operation.
    let op = if op == ATOMIC_XCHG || op == ATOMIC_CMPXCHG {
        op
    } else {
        op & !ATOMIC_FETCH
    };
    if size == 4 {
        let a = AtomicU32::from_ptr(addr as *mut u32);
        let s = src as u32;
        (match op {
            ATOMIC_ADD => a.fetch_add(s, Ordering::SeqCst),
            ATOMIC_OR => a.fetch_or(s, Ordering::SeqCst),
            ATOMIC_AND => a.fetch_and(s, Ordering::SeqCst),
            ATOMIC_XOR => a.fetch_xor(s, Ordering::SeqCst),
            ATOMIC_XCHG => a.swap(s, Ordering::SeqCst),
            _ => match a.compare_exchange(r0 as u32, s, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(v) | Err(v) => v,
            },
        }) as u64
    } else {
        let a = AtomicU64::from_ptr(addr as *mut u64);
        match op {
            ATOMIC_ADD => a.fetch_add(src, Ordering::SeqCst),
            ATOMIC_OR => a.fetch_or(src, Ordering::SeqCst),
            ATOMIC_AND => a.fetch_and(src, Ordering::SeqCst),
            ATOMIC_XOR => a.fetch_xor(src, Ordering::SeqCst),
            ATOMIC_XCHG => a.swap(src, Ordering::SeqCst),
            _ => match a.compare_exchange(r0, src, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(v) | Err(v) => v,
            },
        }
    }
}

/// Whether `[addr, addr + size)` lies inside `r` (`size` >= 1): `Region::contains` with one
/// branch fewer. Below the start `off` wraps to a huge value, which the first test rejects.
#[inline(always)]
fn fits(r: &Region, addr: u64, size: u64) -> bool {
    let off = addr.wrapping_sub(r.start);
    (off < r.len) & (r.len.wrapping_sub(off) >= size)
}

/// The first two regions of a run (the stack and the data, for every program type so far), kept in
/// locals so that most accesses are checked without walking the region list. An absent region is
/// empty and contains nothing.
#[inline(always)]
fn hot_regions(regions: &Regions) -> [Region; 2] {
    let list = regions.as_slice();
    let empty = Region::new(0, 0, false);
    [
        list.first().copied().unwrap_or(empty),
        list.get(1).copied().unwrap_or(empty),
    ]
}

/// What the fast loop does with a slot: one variant per instruction with an arm of its own
/// (named after the mnemonic, class width and source), `General` for the rest. An enum rather
/// than the opcode byte so that the dispatch `match` is exhaustive: the compiler checks that every
/// code has an arm, and the jump table needs no range check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
enum Code {
    /// Handed to `general` (and the never-executed second slot of `lddw`).
    #[default]
    General,
    Add64Imm,
    Add64Reg,
    Sub64Imm,
    Sub64Reg,
    Mul64Imm,
    Mul64Reg,
    Div64Imm,
    Div64Reg,
    Or64Imm,
    Or64Reg,
    And64Imm,
    And64Reg,
    Lsh64Imm,
    Lsh64Reg,
    Rsh64Imm,
    Rsh64Reg,
    Mod64Imm,
    Mod64Reg,
    Xor64Imm,
    Xor64Reg,
    Mov64Imm,
    Mov64Reg,
    Arsh64Imm,
    Arsh64Reg,
    Add32Imm,
    Add32Reg,
    Sub32Imm,
    Sub32Reg,
    Mul32Imm,
    Mul32Reg,
    Div32Imm,
    Div32Reg,
    Or32Imm,
    Or32Reg,
    And32Imm,
    And32Reg,
    Lsh32Imm,
    Lsh32Reg,
    Rsh32Imm,
    Rsh32Reg,
    Mod32Imm,
    Mod32Reg,
    Xor32Imm,
    Xor32Reg,
    Mov32Imm,
    Mov32Reg,
    Arsh32Imm,
    Arsh32Reg,
    Ja,
    JeqImm,
    JeqReg,
    JgtImm,
    JgtReg,
    JgeImm,
    JgeReg,
    JsetImm,
    JsetReg,
    JneImm,
    JneReg,
    JsgtImm,
    JsgtReg,
    JsgeImm,
    JsgeReg,
    JltImm,
    JltReg,
    JleImm,
    JleReg,
    JsltImm,
    JsltReg,
    JsleImm,
    JsleReg,
    Exit,
    Jeq32Imm,
    Jeq32Reg,
    Jgt32Imm,
    Jgt32Reg,
    Jge32Imm,
    Jge32Reg,
    Jset32Imm,
    Jset32Reg,
    Jne32Imm,
    Jne32Reg,
    Jsgt32Imm,
    Jsgt32Reg,
    Jsge32Imm,
    Jsge32Reg,
    Jlt32Imm,
    Jlt32Reg,
    Jle32Imm,
    Jle32Reg,
    Jslt32Imm,
    Jslt32Reg,
    Jsle32Imm,
    Jsle32Reg,
    LdxW,
    LdxH,
    LdxB,
    LdxDw,
    StW,
    StH,
    StB,
    StDw,
    StxW,
    StxH,
    StxB,
    StxDw,
    Lddw,
    // Fused sequences (see `fuse`): `rD = rS; rD += rT` alone, or followed by a load or a store
    // through rD, the way clang indexes arrays.
    MovAdd,
    MovAddLdxW,
    MovAddLdxH,
    MovAddLdxB,
    MovAddLdxDw,
    MovAddStxW,
    MovAddStxH,
    MovAddStxB,
    MovAddStxDw,
}

/// The fast loop's code for an instruction.
fn code_of(insn: &Insn) -> Code {
    match insn.opcode {
        0x07 => Code::Add64Imm,
        0x0f => Code::Add64Reg,
        0x17 => Code::Sub64Imm,
        0x1f => Code::Sub64Reg,
        0x27 => Code::Mul64Imm,
        0x2f => Code::Mul64Reg,
        0x37 if insn.off == 0 => Code::Div64Imm,
        0x3f if insn.off == 0 => Code::Div64Reg,
        0x47 => Code::Or64Imm,
        0x4f => Code::Or64Reg,
        0x57 => Code::And64Imm,
        0x5f => Code::And64Reg,
        0x67 => Code::Lsh64Imm,
        0x6f => Code::Lsh64Reg,
        0x77 => Code::Rsh64Imm,
        0x7f => Code::Rsh64Reg,
        0x97 if insn.off == 0 => Code::Mod64Imm,
        0x9f if insn.off == 0 => Code::Mod64Reg,
        0xa7 => Code::Xor64Imm,
        0xaf => Code::Xor64Reg,
        0xb7 => Code::Mov64Imm,
        0xbf if insn.off == 0 => Code::Mov64Reg,
        0xc7 => Code::Arsh64Imm,
        0xcf => Code::Arsh64Reg,
        0x04 => Code::Add32Imm,
        0x0c => Code::Add32Reg,
        0x14 => Code::Sub32Imm,
        0x1c => Code::Sub32Reg,
        0x24 => Code::Mul32Imm,
        0x2c => Code::Mul32Reg,
        0x34 if insn.off == 0 => Code::Div32Imm,
        0x3c if insn.off == 0 => Code::Div32Reg,
        0x44 => Code::Or32Imm,
        0x4c => Code::Or32Reg,
        0x54 => Code::And32Imm,
        0x5c => Code::And32Reg,
        0x64 => Code::Lsh32Imm,
        0x6c => Code::Lsh32Reg,
        0x74 => Code::Rsh32Imm,
        0x7c => Code::Rsh32Reg,
        0x94 if insn.off == 0 => Code::Mod32Imm,
        0x9c if insn.off == 0 => Code::Mod32Reg,
        0xa4 => Code::Xor32Imm,
        0xac => Code::Xor32Reg,
        0xb4 => Code::Mov32Imm,
        0xbc if insn.off == 0 => Code::Mov32Reg,
        0xc4 => Code::Arsh32Imm,
        0xcc => Code::Arsh32Reg,
        0x05 => Code::Ja,
        0x15 => Code::JeqImm,
        0x1d => Code::JeqReg,
        0x25 => Code::JgtImm,
        0x2d => Code::JgtReg,
        0x35 => Code::JgeImm,
        0x3d => Code::JgeReg,
        0x45 => Code::JsetImm,
        0x4d => Code::JsetReg,
        0x55 => Code::JneImm,
        0x5d => Code::JneReg,
        0x65 => Code::JsgtImm,
        0x6d => Code::JsgtReg,
        0x75 => Code::JsgeImm,
        0x7d => Code::JsgeReg,
        0xa5 => Code::JltImm,
        0xad => Code::JltReg,
        0xb5 => Code::JleImm,
        0xbd => Code::JleReg,
        0xc5 => Code::JsltImm,
        0xcd => Code::JsltReg,
        0xd5 => Code::JsleImm,
        0xdd => Code::JsleReg,
        0x95 => Code::Exit,
        0x16 => Code::Jeq32Imm,
        0x1e => Code::Jeq32Reg,
        0x26 => Code::Jgt32Imm,
        0x2e => Code::Jgt32Reg,
        0x36 => Code::Jge32Imm,
        0x3e => Code::Jge32Reg,
        0x46 => Code::Jset32Imm,
        0x4e => Code::Jset32Reg,
        0x56 => Code::Jne32Imm,
        0x5e => Code::Jne32Reg,
        0x66 => Code::Jsgt32Imm,
        0x6e => Code::Jsgt32Reg,
        0x76 => Code::Jsge32Imm,
        0x7e => Code::Jsge32Reg,
        0xa6 => Code::Jlt32Imm,
        0xae => Code::Jlt32Reg,
        0xb6 => Code::Jle32Imm,
        0xbe => Code::Jle32Reg,
        0xc6 => Code::Jslt32Imm,
        0xce => Code::Jslt32Reg,
        0xd6 => Code::Jsle32Imm,
        0xde => Code::Jsle32Reg,
        0x61 => Code::LdxW,
        0x69 => Code::LdxH,
        0x71 => Code::LdxB,
        0x79 => Code::LdxDw,
        0x62 => Code::StW,
        0x6a => Code::StH,
        0x72 => Code::StB,
        0x7a => Code::StDw,
        0x63 => Code::StxW,
        0x6b => Code::StxH,
        0x73 => Code::StxB,
        0x7b => Code::StxDw,
        OP_LDDW => Code::Lddw,
        _ => Code::General,
    }
}

/// One instruction slot as the fast loop reads it: 16 bytes, fields ready to use.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
struct Op {
    code: Code,
    dst: u8,
    src: u8,
    /// Bit 0 (`ENDS`): the instruction may transfer control (jumps, calls, exit, legacy packet
    /// loads, which can end the program): it ends a segment. Bit 1 (`DIRECT`): its load or store
    /// (for a fused op, that of its third slot) was proved in bounds by the verifier and runs
    /// without a check.
    ends_segment: u8,
    imm: i32,
    off: i32,
    /// Instructions executed from this slot through the end of its segment (0 for an `lddw`
    /// second slot).
    run: u32,
}

const ENDS: u8 = 1;
const DIRECT: u8 = 2;

/// Nothing, in a way the optimiser cannot see through: called on one side of a branch, it keeps
/// the branch from becoming a conditional move (see `branch!` in `run_prepared`).
#[inline(always)]
fn keep_branch() {
    #[cfg(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64"))]
    // SAFETY: an empty asm block: no instructions, no effects.
    unsafe {
        std::arch::asm!("", options(nomem, nostack, preserves_flags))
    };
}

/// The second source register of a fused op (see `fuse`).
#[inline(always)]
fn t_of(op: &Op) -> usize {
    let t = (op.imm & 0xff) as usize;
    // SAFETY: `fuse` stores a register number of a validated instruction (at most r10), and runs
    // only when `prepare` checked them all.
    unsafe { std::hint::assert_unchecked(t < 11) };
    t
}

/// The register a fused op loads into or stores from (see `fuse`).
#[inline(always)]
fn x_of(op: &Op) -> usize {
    let x = ((op.imm >> 8) & 0xff) as usize;
    // SAFETY: as for `t_of`.
    unsafe { std::hint::assert_unchecked(x < 11) };
    x
}

/// Instructions prepared for repeated runs (see `prepare`).
#[derive(Clone, Debug, Default)]
pub struct Prepared {
    insns: Vec<Insn>,
    ops: Vec<Op>,
    /// Whether the fast loop may run these instructions: every jump target and fall-through lands
    /// on an executable slot inside the program, and registers are in range. Otherwise only the
    /// reference loop runs them.
    fast: bool,
}

/// Precomputes what the fast loop needs: per-slot ops (fused where `fuse` finds an idiom) and
/// segment lengths.
/// Cheap (one pass each way); a `Program` does it once at load.
pub fn prepare(insns: &[Insn]) -> Prepared {
    prepare_proved(insns, None)
}

/// As `prepare`, for a verified program: the loads and stores `proved` marks (by slot,
/// `VerifierReport::proved`) run in the fast loop without a check.
pub fn prepare_proved(insns: &[Insn], proved: Option<&[bool]>) -> Prepared {
    let len = insns.len();
    let direct = |pc: usize| proved.and_then(|p| p.get(pc)).copied().unwrap_or(false);
    let mut ops = vec![Op::default(); len];
    let mut second = vec![false; len];
    let mut fast = len > 0 && len < u32::MAX as usize;
    let mut pc = 0;
    while pc < len {
        if insns[pc].opcode == OP_LDDW && pc + 1 < len {
            second[pc + 1] = true;
            pc += 2;
        } else {
            pc += 1;
        }
    }
    // A slot where control may arrive: inside the program and not an lddw second slot.
    let lands = |t: i64| t >= 0 && (t as usize) < len && !second[t as usize];
    for pc in (0..len).rev() {
        let insn = &insns[pc];
        if second[pc] {
            // Never executed; the lddw before it reads the high half of its immediate here.
            ops[pc].imm = insn.imm;
            continue;
        }
        let op = insn.opcode;
        let cls = class(op);
        let is_jump = cls == CLASS_JMP || cls == CLASS_JMP32;
        let is_packet_load = cls == CLASS_LD && op != OP_LDDW;
        let ends = is_jump || is_packet_load;
        let step = if op == OP_LDDW { 2 } else { 1 };
        if insn.dst > 10 || insn.src > 10 || (op == OP_LDDW && pc + 1 >= len) {
            fast = false;
        }
        // Where control goes next: every successor must land (validation guarantees it; this
        // keeps the fast loop's unchecked indexing sound for any input).
        if is_jump && op != OP_EXIT && op != OP_CALLX && !(op == OP_CALL && insn.src != 1) {
            let delta = if op == OP_JA32 || op == OP_CALL {
                insn.imm as i64
            } else {
                insn.off as i64
            };
            if !lands(jump_target(pc, delta)) {
                fast = false;
            }
        }
        let falls_through = op != OP_EXIT && op != OP_JA && op != OP_JA32;
        if falls_through && !lands((pc + step) as i64) {
            fast = false;
        }
        let run = if ends || pc + step >= len {
            1
        } else {
            1 + ops[pc + step].run
        };
        ops[pc] = Op {
            code: code_of(insn),
            dst: insn.dst & 0x0f,
            src: insn.src & 0x0f,
            ends_segment: ends as u8 | if direct(pc) { DIRECT } else { 0 },
            imm: insn.imm,
            off: insn.off as i32,
            run,
        };
    }
    if fast {
        fuse(insns, &second, &mut ops);
        for (pc, op) in ops.iter_mut().enumerate() {
            if matches!(
                op.code,
                Code::MovAddLdxW
                    | Code::MovAddLdxH
                    | Code::MovAddLdxB
                    | Code::MovAddLdxDw
                    | Code::MovAddStxW
                    | Code::MovAddStxH
                    | Code::MovAddStxB
                    | Code::MovAddStxDw
            ) {
                // The access is the third slot's.
                op.ends_segment =
                    (op.ends_segment & !DIRECT) | if direct(pc + 2) { DIRECT } else { 0 };
            }
        }
    }
    Prepared {
        insns: insns.to_vec(),
        ops,
        fast,
    }
}

/// Replaces the op of a slot that starts `rD = rS; rD += rT` (64-bit, registers), optionally
/// followed by a load or store whose base is rD, with one op that does all of it. The later slots
/// keep their own ops, so a jump into the middle still works; none of these instructions ends a
/// segment, so counting is unchanged, and a trap in the memory access names its own slot.
/// The fused op keeps rD/rS in `dst`/`src`, rT in bits 0-7 of `imm` and the register loaded or
/// stored in bits 8-15, and the access's offset in `off`.
fn fuse(insns: &[Insn], second: &[bool], ops: &mut [Op]) {
    const MOV64_REG: u8 = CLASS_ALU64 | ALU_MOV | SRC_X;
    const ADD64_REG: u8 = CLASS_ALU64 | ALU_ADD | SRC_X;
    let len = insns.len();
    for pc in 0..len.saturating_sub(1) {
        let (a, b) = (&insns[pc], &insns[pc + 1]);
        if second[pc]
            || second[pc + 1]
            || a.opcode != MOV64_REG
            || a.off != 0
            || b.opcode != ADD64_REG
            || b.dst != a.dst
        {
            continue;
        }
        let d = a.dst;
        let mut code = Code::MovAdd;
        let mut other = 0u8;
        let mut off = 0i32;
        if pc + 2 < len && !second[pc + 2] {
            let c = &insns[pc + 2];
            let access = match c.opcode {
                0x61 if c.src == d => Some((Code::MovAddLdxW, c.dst)),
                0x69 if c.src == d => Some((Code::MovAddLdxH, c.dst)),
                0x71 if c.src == d => Some((Code::MovAddLdxB, c.dst)),
                0x79 if c.src == d => Some((Code::MovAddLdxDw, c.dst)),
                0x63 if c.dst == d => Some((Code::MovAddStxW, c.src)),
                0x6b if c.dst == d => Some((Code::MovAddStxH, c.src)),
                0x73 if c.dst == d => Some((Code::MovAddStxB, c.src)),
                0x7b if c.dst == d => Some((Code::MovAddStxDw, c.src)),
                _ => None,
            };
            if let Some((c_code, reg)) = access {
                code = c_code;
                other = reg;
                off = c.off as i32;
            }
        }
        let op = &mut ops[pc];
        op.code = code;
        op.imm = (b.src as i32) | ((other as i32) << 8);
        op.off = off;
    }
}

impl Prepared {
    pub fn instructions(&self) -> &[Insn] {
        &self.insns
    }
}

/// The interpreter's side of the run ABI: its prepared form, run by the fast loop (the counting
/// loop when the run counts coverage).
impl ExecutionEngine for Prepared {
    fn prepare(program: &Validated<'_>) -> Result<Self, LoadError> {
        Ok(prepare_proved(program.insns, program.proved))
    }

    fn run_from(
        &self,
        _insns: &[Insn],
        env: &mut RunEnv<'_>,
        args: [u64; 5],
        entry: Entry,
    ) -> Result<RunOutput, Trap> {
        let entry = match entry {
            Entry::Main => 0,
            Entry::Function(pc) => pc,
        };
        if env.state.coverage.is_some() {
            run_from::<true>(self, env, args, entry)
        } else {
            run_from::<false>(self, env, args, entry)
        }
    }
}

/// Runs validated instructions from slot 0 with r1-r5 = `args` (preparing them first; see
/// `run_prepared` to prepare once for many runs).
pub fn run(insns: &[Insn], env: &mut RunEnv<'_>, args: [u64; 5]) -> Result<RunOutput, Trap> {
    run_prepared(&prepare(insns), env, args)
}

/// Runs validated instructions with the reference loop alone: one instruction at a time through
/// the reference code, the budget checked before each. Slow; for tests that check the fast loop
/// (and other engines) against it.
pub fn run_reference(
    insns: &[Insn],
    env: &mut RunEnv<'_>,
    args: [u64; 5],
) -> Result<RunOutput, Trap> {
    let mut p = prepare(insns);
    p.fast = false;
    run_prepared(&p, env, args)
}

/// Runs prepared instructions from slot 0 with r1-r5 = `args`.
pub fn run_prepared(p: &Prepared, env: &mut RunEnv<'_>, args: [u64; 5]) -> Result<RunOutput, Trap> {
    run_from::<false>(p, env, args, 0)
}

/// Runs prepared instructions from slot `entry` (0, or a callback's first instruction) as
/// `run_prepared`/`run_function` do, counting coverage into `env.state.coverage` (see
/// `coverage`): one count per segment entered, and the fall-throughs of conditional jumps.
pub fn run_counted(
    p: &Prepared,
    env: &mut RunEnv<'_>,
    args: [u64; 5],
    entry: usize,
) -> Result<RunOutput, Trap> {
    run_from::<true>(p, env, args, entry)
}

/// Runs the function that starts at slot `entry` (a callback: see `helpers/callbacks.rs`) until
/// its `exit`, as `run_prepared` runs the program from slot 0. `entry` must start an instruction
/// (not the second slot of `lddw`), as the loader checks for callback entries.
pub fn run_function(
    p: &Prepared,
    env: &mut RunEnv<'_>,
    args: [u64; 5],
    entry: usize,
) -> Result<RunOutput, Trap> {
    run_from::<false>(p, env, args, entry)
}

/// Runs prepared instructions from slot `entry` with r1-r5 = `args`.
///
/// Two loops share the machine state. The fast loop dispatches once per op on its `Code` (one
/// jump table), with an arm of its own for each frequent instruction and fused idiom; the rest go
/// through `general`, the reference code by instruction class. It counts instructions per
/// *segment* (a straight run of slots ending at the first jump, call, exit or packet load): on
/// entering a segment it adds the segment's length at once, if the budget covers it. When it does
/// not, the budget ends inside that segment, and the reference loop finishes the run one
/// instruction at a time. Traps in the middle of a segment recompute the exact count from the
/// length of the rest of the segment, so counts and traps are what a per-instruction count would
/// give. Conditional jumps stay host branches (see `keep_branch`).
/// Memory checks try the first two regions inline before walking the list, in the list's order,
/// so the outcome (including which region decides a store's writability) is the same.
/// With run limits the budget comes in slices (`limits::Meter`): when the budget in hand does not
/// cover a segment, the limits are checked and the next slice taken; only when the whole budget
/// is in hand does the reference loop take over.
/// With `COUNT`, both loops also count coverage (a copy of their own: runs without coverage pay
/// nothing for it): the fast loop at each segment it enters and at each conditional jump that
/// falls through; the reference loop likewise, one instruction at a time.
fn run_from<const COUNT: bool>(
    p: &Prepared,
    env: &mut RunEnv<'_>,
    args: [u64; 5],
    entry: usize,
) -> Result<RunOutput, Trap> {
    // Sixteen slots so that a validated register nibble indexes without a bounds check.
    let mut reg = [0u64; 16];
    reg[1..6].copy_from_slice(&args);
    reg[FP as usize] = env.stack_top;
    let mut frames: Vec<Frame> = Vec::new();
    let mut pc = entry;
    let budget = env.budget;
    // Budget in hand: in the fast loop, what is left once the current segment has run to its end;
    // the count is `meter.count(left)` (`budget - left` without limits).
    let (mut meter, mut left) = Meter::start(budget, &env.state.limits);
    let coverage = if COUNT {
        env.state.coverage.clone()
    } else {
        None
    };
    macro_rules! count {
        ($method:ident, $slot:expr) => {
            if COUNT {
                if let Some(c) = &coverage {
                    c.$method($slot);
                }
            }
        };
    }

    'fast: {
        if !p.fast {
            break 'fast;
        }
        let ops = &p.ops[..];
        // Refreshed after every helper call, the only thing that can add regions during a run.
        let mut hot = hot_regions(&env.regions);

        // Enters the segment at `$t`; if the budget in hand does not cover it, takes the next
        // slice, and leaves for the reference loop if the whole budget ends in it.
        macro_rules! enter {
            ($t:expr) => {{
                let t = $t;
                count!(enter, t);
                // SAFETY: `prepare` checked that every successor lands inside the program.
                let run = unsafe { ops.get_unchecked(t) }.run as u64;
                pc = t;
                match left.checked_sub(run) {
                    Some(l) => left = l,
                    None => {
                        left = meter.next_slice(&env.state.limits, left, run, t);
                        // A limit met leaves `left` short too (see `Meter::next_slice`).
                        match left.checked_sub(run) {
                            Some(l) => left = l,
                            None => break 'fast,
                        }
                    }
                }
            }};
        }
        // Instructions executed before slot `$at` of the current segment: the count at the end of
        // the segment less the instructions from `$at` through that end.
        macro_rules! exact {
            ($at:expr) => {
                meter.count(left) - ops[$at].run as u64
            };
        }
        // The slow half of a memory check; `pc` has already moved past the instruction.
        macro_rules! check {
            ($addr:expr, $size:expr, $write:expr) => {
                if let Err(kind) = env.regions.check($addr, $size as u64, $write) {
                    let at = pc - 1;
                    return Err(memory_trap(kind, at, $addr, $size, exact!(at), $write, env));
                }
            };
        }
        macro_rules! load_fast {
            ($size:expr, $op:expr, $d:expr, $s:expr) => {{
                let addr = reg[$s].wrapping_add($op.off as i64 as u64);
                if $op.ends_segment & DIRECT == 0
                    && !(fits(&hot[0], addr, $size) | fits(&hot[1], addr, $size))
                {
                    check!(addr, $size, false);
                }
                // SAFETY: inside a region of the run (checked just above, or proved by the
                // verifier).
                reg[$d] = unsafe { load(addr, $size) };
            }};
        }
        macro_rules! store_fast {
            ($size:expr, $op:expr, $d:expr, $v:expr) => {{
                let addr = reg[$d].wrapping_add($op.off as i64 as u64);
                if $op.ends_segment & DIRECT == 0 {
                    let in0 = fits(&hot[0], addr, $size);
                    let ok = (in0 & (hot[0].writable != 0))
                        | (!in0 & fits(&hot[1], addr, $size) & (hot[1].writable != 0));
                    if !ok {
                        check!(addr, $size, true);
                    }
                }
                // SAFETY: inside a writable region of the run (checked just above, or proved by
                // the verifier).
                unsafe { store(addr, $size, $v) };
            }};
        }
        // `rD = rS; rD += rT`, then the access of the third slot (`pc` moved past it first, so
        // that a trap names that slot).
        macro_rules! mov_add_access {
            ($op:expr, $d:expr, $s:expr, $access:expr) => {{
                reg[$d] = reg[$s];
                reg[$d] = reg[$d].wrapping_add(reg[t_of($op)]);
                pc += 2;
                $access
            }};
        }
        // A conditional jump ends the segment whichever way it goes.
        // It stays a branch of the host: the empty asm keeps the compiler from turning it into a
        // conditional move, which would make the next dispatch wait for the comparison instead of
        // running ahead on the prediction.
        macro_rules! branch {
            ($cond:expr, $op:expr) => {{
                if $cond {
                    keep_branch();
                    enter!(pc.wrapping_add($op.off as isize as usize));
                } else {
                    count!(fall_through, pc - 1);
                    enter!(pc);
                }
            }};
        }

        enter!(pc);
        loop {
            // SAFETY: `pc` is a slot the program reaches: slot 0, a checked successor, or the next
            // slot inside a segment, which `prepare` checked exists.
            let op = unsafe { ops.get_unchecked(pc) };
            let d = op.dst as usize;
            let s = op.src as usize;
            // SAFETY: `prepare` only lets the fast loop run when every register is at most r10.
            unsafe { std::hint::assert_unchecked(d < 11 && s < 11) };
            // Read in the arms that need it, so that the others do not pay for it.
            macro_rules! imm {
                () => {
                    op.imm as i64 as u64
                };
            }
            // `pc` now names the next slot; jumps add their offset to it.
            pc += 1;
            match op.code {
                // ALU64, immediate and register.
                Code::Add64Imm => reg[d] = reg[d].wrapping_add(imm!()),
                Code::Add64Reg => reg[d] = reg[d].wrapping_add(reg[s]),
                Code::Sub64Imm => reg[d] = reg[d].wrapping_sub(imm!()),
                Code::Sub64Reg => reg[d] = reg[d].wrapping_sub(reg[s]),
                Code::Mul64Imm => reg[d] = reg[d].wrapping_mul(imm!()),
                Code::Mul64Reg => reg[d] = reg[d].wrapping_mul(reg[s]),
                Code::Div64Imm => reg[d] = reg[d].checked_div(imm!()).unwrap_or(0),
                Code::Div64Reg => reg[d] = reg[d].checked_div(reg[s]).unwrap_or(0),
                Code::Or64Imm => reg[d] |= imm!(),
                Code::Or64Reg => reg[d] |= reg[s],
                Code::And64Imm => reg[d] &= imm!(),
                Code::And64Reg => reg[d] &= reg[s],
                Code::Lsh64Imm => reg[d] <<= imm!() & 63,
                Code::Lsh64Reg => reg[d] <<= reg[s] & 63,
                Code::Rsh64Imm => reg[d] >>= imm!() & 63,
                Code::Rsh64Reg => reg[d] >>= reg[s] & 63,
                Code::Mod64Imm => reg[d] = reg[d].checked_rem(imm!()).unwrap_or(reg[d]),
                Code::Mod64Reg => reg[d] = reg[d].checked_rem(reg[s]).unwrap_or(reg[d]),
                Code::Xor64Imm => reg[d] ^= imm!(),
                Code::Xor64Reg => reg[d] ^= reg[s],
                Code::Mov64Imm => reg[d] = imm!(),
                Code::Mov64Reg => reg[d] = reg[s],
                Code::Arsh64Imm => reg[d] = ((reg[d] as i64) >> (imm!() & 63)) as u64,
                Code::Arsh64Reg => reg[d] = ((reg[d] as i64) >> (reg[s] & 63)) as u64,
                // ALU32: the result is zero-extended.
                Code::Add32Imm => reg[d] = (reg[d] as u32).wrapping_add(imm!() as u32) as u64,
                Code::Add32Reg => reg[d] = (reg[d] as u32).wrapping_add(reg[s] as u32) as u64,
                Code::Sub32Imm => reg[d] = (reg[d] as u32).wrapping_sub(imm!() as u32) as u64,
                Code::Sub32Reg => reg[d] = (reg[d] as u32).wrapping_sub(reg[s] as u32) as u64,
                Code::Mul32Imm => reg[d] = (reg[d] as u32).wrapping_mul(imm!() as u32) as u64,
                Code::Mul32Reg => reg[d] = (reg[d] as u32).wrapping_mul(reg[s] as u32) as u64,
                Code::Div32Imm => {
                    reg[d] = (reg[d] as u32).checked_div(imm!() as u32).unwrap_or(0) as u64
                }
                Code::Div32Reg => {
                    reg[d] = (reg[d] as u32).checked_div(reg[s] as u32).unwrap_or(0) as u64
                }
                Code::Or32Imm => reg[d] = (reg[d] as u32 | imm!() as u32) as u64,
                Code::Or32Reg => reg[d] = (reg[d] as u32 | reg[s] as u32) as u64,
                Code::And32Imm => reg[d] = (reg[d] as u32 & imm!() as u32) as u64,
                Code::And32Reg => reg[d] = (reg[d] as u32 & reg[s] as u32) as u64,
                Code::Lsh32Imm => reg[d] = ((reg[d] as u32) << (imm!() & 31)) as u64,
                Code::Lsh32Reg => reg[d] = ((reg[d] as u32) << (reg[s] & 31)) as u64,
                Code::Rsh32Imm => reg[d] = ((reg[d] as u32) >> (imm!() & 31)) as u64,
                Code::Rsh32Reg => reg[d] = ((reg[d] as u32) >> (reg[s] & 31)) as u64,
                Code::Mod32Imm => {
                    let a = reg[d] as u32;
                    reg[d] = a.checked_rem(imm!() as u32).unwrap_or(a) as u64
                }
                Code::Mod32Reg => {
                    let a = reg[d] as u32;
                    reg[d] = a.checked_rem(reg[s] as u32).unwrap_or(a) as u64
                }
                Code::Xor32Imm => reg[d] = (reg[d] as u32 ^ imm!() as u32) as u64,
                Code::Xor32Reg => reg[d] = (reg[d] as u32 ^ reg[s] as u32) as u64,
                Code::Mov32Imm => reg[d] = imm!() as u32 as u64,
                Code::Mov32Reg => reg[d] = reg[s] as u32 as u64,
                Code::Arsh32Imm => reg[d] = ((reg[d] as i32) >> (imm!() & 31)) as u32 as u64,
                Code::Arsh32Reg => reg[d] = ((reg[d] as i32) >> (reg[s] & 31)) as u32 as u64,
                // JMP: 64-bit comparisons.
                Code::Ja => enter!(pc.wrapping_add(op.off as isize as usize)),
                Code::JeqImm => branch!(reg[d] == imm!(), op),
                Code::JeqReg => branch!(reg[d] == reg[s], op),
                Code::JgtImm => branch!(reg[d] > imm!(), op),
                Code::JgtReg => branch!(reg[d] > reg[s], op),
                Code::JgeImm => branch!(reg[d] >= imm!(), op),
                Code::JgeReg => branch!(reg[d] >= reg[s], op),
                Code::JsetImm => branch!(reg[d] & imm!() != 0, op),
                Code::JsetReg => branch!(reg[d] & reg[s] != 0, op),
                Code::JneImm => branch!(reg[d] != imm!(), op),
                Code::JneReg => branch!(reg[d] != reg[s], op),
                Code::JsgtImm => branch!(reg[d] as i64 > imm!() as i64, op),
                Code::JsgtReg => branch!(reg[d] as i64 > reg[s] as i64, op),
                Code::JsgeImm => branch!(reg[d] as i64 >= imm!() as i64, op),
                Code::JsgeReg => branch!(reg[d] as i64 >= reg[s] as i64, op),
                Code::JltImm => branch!(reg[d] < imm!(), op),
                Code::JltReg => branch!(reg[d] < reg[s], op),
                Code::JleImm => branch!(reg[d] <= imm!(), op),
                Code::JleReg => branch!(reg[d] <= reg[s], op),
                Code::JsltImm => branch!((reg[d] as i64) < imm!() as i64, op),
                Code::JsltReg => branch!((reg[d] as i64) < reg[s] as i64, op),
                Code::JsleImm => branch!(reg[d] as i64 <= imm!() as i64, op),
                Code::JsleReg => branch!(reg[d] as i64 <= reg[s] as i64, op),
                Code::Exit if frames.is_empty() => {
                    return Ok(RunOutput {
                        r0: reg[0],
                        insn_count: meter.count(left),
                        exit_pc: pc - 1,
                    })
                }
                // JMP32: comparisons of the low halves.
                Code::Jeq32Imm => branch!(reg[d] as u32 == imm!() as u32, op),
                Code::Jeq32Reg => branch!(reg[d] as u32 == reg[s] as u32, op),
                Code::Jgt32Imm => branch!(reg[d] as u32 > imm!() as u32, op),
                Code::Jgt32Reg => branch!(reg[d] as u32 > reg[s] as u32, op),
                Code::Jge32Imm => branch!(reg[d] as u32 >= imm!() as u32, op),
                Code::Jge32Reg => branch!(reg[d] as u32 >= reg[s] as u32, op),
                Code::Jset32Imm => branch!(reg[d] as u32 & imm!() as u32 != 0, op),
                Code::Jset32Reg => branch!(reg[d] as u32 & reg[s] as u32 != 0, op),
                Code::Jne32Imm => branch!(reg[d] as u32 != imm!() as u32, op),
                Code::Jne32Reg => branch!(reg[d] as u32 != reg[s] as u32, op),
                Code::Jsgt32Imm => branch!(reg[d] as i32 > imm!() as i32, op),
                Code::Jsgt32Reg => branch!(reg[d] as i32 > reg[s] as i32, op),
                Code::Jsge32Imm => branch!(reg[d] as i32 >= imm!() as i32, op),
                Code::Jsge32Reg => branch!(reg[d] as i32 >= reg[s] as i32, op),
                Code::Jlt32Imm => branch!((reg[d] as u32) < imm!() as u32, op),
                Code::Jlt32Reg => branch!((reg[d] as u32) < reg[s] as u32, op),
                Code::Jle32Imm => branch!(reg[d] as u32 <= imm!() as u32, op),
                Code::Jle32Reg => branch!(reg[d] as u32 <= reg[s] as u32, op),
                Code::Jslt32Imm => branch!((reg[d] as i32) < imm!() as i32, op),
                Code::Jslt32Reg => branch!((reg[d] as i32) < reg[s] as i32, op),
                Code::Jsle32Imm => branch!(reg[d] as i32 <= imm!() as i32, op),
                Code::Jsle32Reg => branch!(reg[d] as i32 <= reg[s] as i32, op),
                // Loads and stores.
                Code::LdxW => load_fast!(4, op, d, s),
                Code::LdxH => load_fast!(2, op, d, s),
                Code::LdxB => load_fast!(1, op, d, s),
                Code::LdxDw => load_fast!(8, op, d, s),
                Code::StW => store_fast!(4, op, d, imm!()),
                Code::StH => store_fast!(2, op, d, imm!()),
                Code::StB => store_fast!(1, op, d, imm!()),
                Code::StDw => store_fast!(8, op, d, imm!()),
                Code::StxW => store_fast!(4, op, d, reg[s]),
                Code::StxH => store_fast!(2, op, d, reg[s]),
                Code::StxB => store_fast!(1, op, d, reg[s]),
                Code::StxDw => store_fast!(8, op, d, reg[s]),
                Code::Lddw => {
                    // SAFETY: `prepare` checked that an lddw has its second slot.
                    let hi = unsafe { ops.get_unchecked(pc) }.imm;
                    reg[d] = (op.imm as u32 as u64) | ((hi as u32 as u64) << 32);
                    pc += 1;
                }
                Code::MovAdd => {
                    reg[d] = reg[s];
                    reg[d] = reg[d].wrapping_add(reg[t_of(op)]);
                    pc += 1;
                }
                Code::MovAddLdxW => mov_add_access!(op, d, s, load_fast!(4, op, x_of(op), d)),
                Code::MovAddLdxH => mov_add_access!(op, d, s, load_fast!(2, op, x_of(op), d)),
                Code::MovAddLdxB => mov_add_access!(op, d, s, load_fast!(1, op, x_of(op), d)),
                Code::MovAddLdxDw => mov_add_access!(op, d, s, load_fast!(8, op, x_of(op), d)),
                Code::MovAddStxW => mov_add_access!(op, d, s, store_fast!(4, op, d, reg[x_of(op)])),
                Code::MovAddStxH => mov_add_access!(op, d, s, store_fast!(2, op, d, reg[x_of(op)])),
                Code::MovAddStxB => mov_add_access!(op, d, s, store_fast!(1, op, d, reg[x_of(op)])),
                Code::MovAddStxDw => {
                    mov_add_access!(op, d, s, store_fast!(8, op, d, reg[x_of(op)]))
                }
                Code::General | Code::Exit => {
                    let at = pc - 1;
                    let insn = p.insns[at];
                    match general(
                        &p.insns,
                        at,
                        insn,
                        &mut reg,
                        &mut frames,
                        env,
                        exact!(at) + 1,
                    )? {
                        Step::Next(next) => {
                            if op.ends_segment & ENDS != 0 {
                                enter!(next);
                            } else {
                                pc = next;
                            }
                        }
                        Step::Call(next, charged) => {
                            // A call ends its segment, so `left` is exact here.
                            left = meter.take(left, charged);
                            // A helper may have handed the program new regions.
                            hot = hot_regions(&env.regions);
                            enter!(next);
                        }
                        Step::Exit(out) => return Ok(out),
                    }
                }
            }
        }
    }

    if let Some(trap) = meter.stop_trap(left) {
        return Err(trap);
    }
    // The reference loop: one instruction at a time, the budget checked before each. It runs a
    // whole program that `prepare` could not vouch for, and otherwise the last, partial segment.
    // Counting, it enters a segment at its start and after each instruction that ends one (the
    // fast loop has counted the segment it left in).
    let mut fresh = !p.fast;
    loop {
        // Counted before the budget check: the instruction a run stops at counts as reached
        // (see `coverage`), but a jump the budget stopped at did not fall through.
        if COUNT && fresh {
            count!(enter, pc);
        }
        if left == 0 {
            left = meter.refill(&env.state.limits, 0, 1, pc)?;
            if left == 0 {
                return Err(budget_trap(pc, budget));
            }
        }
        left -= 1;
        let insn = p.insns[pc];
        if COUNT {
            fresh = p.ops[pc].ends_segment & ENDS != 0;
            if observe::is_cond_jump(&insn) && !observe::taken(&insn, &reg) {
                count!(fall_through, pc);
            }
        }
        match general(
            &p.insns,
            pc,
            insn,
            &mut reg,
            &mut frames,
            env,
            meter.count(left),
        )? {
            Step::Next(next) => pc = next,
            Step::Call(next, charged) => {
                left = meter.take(left, charged);
                pc = next;
            }
            Step::Exit(out) => return Ok(out),
        }
    }
}

/// What the general path did with one instruction.
enum Step {
    /// Go on at this slot.
    Next(usize),
    /// A helper call: go on at this slot, with the instructions the helper charged to the budget
    /// (callbacks and other work, see `HelperReturn`) added to the count.
    Call(usize, u64),
    /// The program ended.
    Exit(RunOutput),
}

/// Executes any instruction (`count` already includes it): the reference code by instruction
/// class, used for the instructions the fast arms of `run` leave out.
#[inline(never)]
fn general(
    insns: &[Insn],
    pc: usize,
    insn: Insn,
    reg: &mut [u64; 16],
    frames: &mut Vec<Frame>,
    env: &mut RunEnv<'_>,
    count: u64,
) -> Result<Step, Trap> {
    macro_rules! check {
        ($addr:expr, $size:expr, $write:expr) => {
            if let Err(kind) = env.regions.check($addr, $size as u64, $write) {
                return Err(memory_trap(kind, pc, $addr, $size, count - 1, $write, env));
            }
        };
    }

    let d = (insn.dst & 0x0f) as usize;
    let s = (insn.src & 0x0f) as usize;
    let imm64 = insn.imm as i64 as u64;
    let op = insn.opcode;
    let mut next = pc + 1;
    match class(op) {
        CLASS_ALU64 => {
            let src = if op & SRC_X != 0 { reg[s] } else { imm64 };
            reg[d] = if op & 0xf0 == ALU_END {
                byte_order(op, insn.imm, reg[d])
            } else {
                alu64(op & 0xf0, insn.off, reg[d], src)
            };
        }
        CLASS_ALU => {
            let src = if op & SRC_X != 0 {
                reg[s] as u32
            } else {
                insn.imm as u32
            };
            reg[d] = if op & 0xf0 == ALU_END {
                byte_order(op, insn.imm, reg[d])
            } else {
                alu32(op & 0xf0, insn.off, reg[d] as u32, src) as u64
            };
        }
        CLASS_JMP | CLASS_JMP32 => {
            let wide = class(op) == CLASS_JMP;
            match op & 0xf0 {
                JMP_JA if wide => next = jump_target(pc, insn.off as i64) as usize,
                JMP_JA => next = jump_target(pc, insn.imm as i64) as usize,
                JMP_CALL if op & SRC_X != 0 => {
                    let args = [reg[1], reg[2], reg[3], reg[4], reg[5]];
                    let ret = call_helper(env, reg[d], args, pc, count - 1)?;
                    reg[0] = ret.r0;
                    return Ok(Step::Call(next, ret.charged));
                }
                JMP_CALL if insn.src == CALL_LOCAL => {
                    if frames.len() + 1 >= MAX_CALL_FRAMES {
                        return Err(trap(
                            TrapKind::CallDepth,
                            pc,
                            0,
                            0,
                            count - 1,
                            format!("call depth exceeds {MAX_CALL_FRAMES} frames"),
                        ));
                    }
                    frames.push(Frame {
                        return_pc: next,
                        saved: [reg[6], reg[7], reg[8], reg[9]],
                        saved_fp: reg[FP as usize],
                    });
                    reg[FP as usize] -= STACK_FRAME_SIZE as u64;
                    next = jump_target(pc, insn.imm as i64) as usize;
                }
                JMP_CALL => {
                    let args = [reg[1], reg[2], reg[3], reg[4], reg[5]];
                    let ret = call_helper(env, insn.imm as u32 as u64, args, pc, count - 1)?;
                    reg[0] = ret.r0;
                    return Ok(Step::Call(next, ret.charged));
                }
                JMP_EXIT => match frames.pop() {
                    None => {
                        return Ok(Step::Exit(RunOutput {
                            r0: reg[0],
                            insn_count: count,
                            exit_pc: pc,
                        }))
                    }
                    Some(f) => {
                        reg[6..10].copy_from_slice(&f.saved);
                        reg[FP as usize] = f.saved_fp;
                        next = f.return_pc;
                    }
                },
                cond => {
                    let b = if op & SRC_X != 0 { reg[s] } else { imm64 };
                    if condition(cond, reg[d], b, wide) {
                        next = jump_target(pc, insn.off as i64) as usize;
                    }
                }
            }
        }
        CLASS_LDX => {
            let size = access_size(op);
            let addr = reg[s].wrapping_add(insn.off as i64 as u64);
            check!(addr, size, false);
            // SAFETY: checked against the run's regions just above.
            let v = unsafe { load(addr, size) };
            reg[d] = if op & 0xe0 == MODE_MEMSX {
                match size {
                    1 => v as i8 as i64 as u64,
                    2 => v as i16 as i64 as u64,
                    _ => v as i32 as i64 as u64,
                }
            } else {
                v
            };
        }
        CLASS_ST | CLASS_STX => {
            let size = access_size(op);
            let addr = reg[d].wrapping_add(insn.off as i64 as u64);
            check!(addr, size, true);
            if op & 0xe0 == MODE_ATOMIC {
                if !addr.is_multiple_of(size as u64) {
                    return Err(memory_trap(
                        TrapKind::Misaligned,
                        pc,
                        addr,
                        size,
                        count - 1,
                        true,
                        env,
                    ));
                }
                // SAFETY: checked and aligned; other threads may touch it only atomically.
                let old = unsafe { atomic(addr, size, insn.imm, reg[s], reg[0]) };
                if insn.imm == ATOMIC_CMPXCHG {
                    reg[0] = old;
                } else if insn.imm & ATOMIC_FETCH != 0 {
                    reg[s] = old;
                }
            } else {
                let v = if class(op) == CLASS_ST { imm64 } else { reg[s] };
                // SAFETY: checked against the run's regions just above.
                unsafe { store(addr, size, v) };
            }
        }
        _ => {
            if op == OP_LDDW {
                reg[d] = lddw_imm(&insn, &insns[pc + 1]);
                next = pc + 2;
            } else {
                // Legacy packet load: big-endian value at packet + imm (+ src for IND).
                let size = access_size(op);
                let mut off = insn.imm as i64;
                if op & 0xe0 == MODE_IND {
                    off += reg[s] as u32 as i32 as i64;
                }
                let (start, len) = env.packet;
                if off < 0 || off as u64 + size as u64 > len {
                    return Ok(Step::Exit(RunOutput {
                        r0: 0,
                        insn_count: count,
                        exit_pc: pc,
                    }));
                }
                // SAFETY: inside the packet, which is one of the run's regions.
                let v = unsafe { load(start + off as u64, size) };
                reg[0] = match size {
                    1 => v,
                    2 => (v as u16).swap_bytes() as u64,
                    _ => (v as u32).swap_bytes() as u64,
                };
            }
        }
    }
    Ok(Step::Next(next))
}
