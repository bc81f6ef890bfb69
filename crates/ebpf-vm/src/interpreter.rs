//! The reference semantics: a straightforward interpreter of validated instructions, checked mode.
//! Everything another engine does must agree with this file, bit for bit: r0, memory, the trap
//! (kind, instruction index, address, size) and the instruction count.
//!
//! Semantics fixed here where RFC 9669 leaves a choice to the implementation:
//! - helper calls leave r1-r5 as they were (as the kernel's own interpreter does);
//! - `callx` takes a helper id from its register (the bpf_conformance convention);
//! - a legacy packet load (`LD_ABS`/`LD_IND`) outside the packet ends the program with r0 = 0,
//!   as the kernel does;
//! - atomic operations must be naturally aligned (a misaligned one traps as `misaligned`).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::error::{Trap, TrapKind};
use crate::helpers::{CallerInfo, HelperContext, HelperTable};
use crate::isa::opcodes::*;
use crate::isa::{lddw_imm, Insn};
use crate::memory::Regions;

/// Bytes of stack per call frame, as in the kernel.
pub const STACK_FRAME_SIZE: usize = 512;
/// The most call frames that may be live at once (the main program included), as in the kernel.
pub const MAX_CALL_FRAMES: usize = 8;
/// The whole stack area of a run: one frame for each possible level of bpf-to-bpf call.
pub const STACK_SIZE: usize = STACK_FRAME_SIZE * MAX_CALL_FRAMES;

/// Everything a run needs besides the instructions.
pub struct RunEnv<'a> {
    pub helpers: &'a HelperTable,
    pub regions: Regions,
    /// r10 of the main frame (one past the top of the stack area).
    pub stack_top: u64,
    /// Instructions that may execute before the run is stopped.
    pub budget: u64,
    /// The packet that `LD_ABS`/`LD_IND` read: start address and length.
    pub packet: (u64, u64),
    /// The maps of the run (`RunMaps::default()` for a program without maps).
    pub maps: crate::maps::RunMaps,
    /// The program-type side of the run (context, packet, output, callbacks, tail calls).
    pub state: crate::context::RunState,
    /// How this engine runs a function of the program, for helpers that call back
    /// (`bpf_loop`); see `helpers/callbacks.rs`.
    pub function_runner: Option<&'a crate::helpers::callbacks::FunctionRunner<'a>>,
}

/// How a run ended normally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunOutput {
    pub r0: u64,
    pub insn_count: u64,
}

struct Frame {
    return_pc: usize,
    saved: [u64; 4],
    saved_fp: u64,
}

fn trap(kind: TrapKind, pc: usize, addr: u64, size: u32, count: u64, message: String) -> Trap {
    Trap {
        kind,
        pc,
        addr,
        size,
        insn_count: count,
        message,
    }
}

/// The trap for a failed memory check; the message is the one both engines give.
pub fn memory_trap(
    kind: TrapKind,
    pc: usize,
    addr: u64,
    size: u32,
    count: u64,
    write: bool,
) -> Trap {
    let what = if write { "store" } else { "load" };
    let message = match kind {
        TrapKind::ReadOnly => format!("{what} of {size} bytes at 0x{addr:x} into read-only memory"),
        TrapKind::Misaligned => format!("misaligned atomic {what} of {size} bytes at 0x{addr:x}"),
        _ => format!("{what} of {size} bytes at 0x{addr:x} is outside the program's memory"),
    };
    trap(kind, pc, addr, size, count, message)
}

pub fn budget_trap(pc: usize, budget: u64) -> Trap {
    trap(
        TrapKind::BudgetExhausted,
        pc,
        0,
        0,
        budget,
        format!("instruction budget of {budget} exhausted"),
    )
}

/// Calls helper `id` with r1-r5; the trap on failure names instruction `pc`.
pub fn call_helper(
    env: &mut RunEnv<'_>,
    id: u64,
    args: [u64; 5],
    pc: usize,
    count: u64,
) -> Result<u64, Trap> {
    // `env.helpers` is a shared reference of its own: the helper is borrowed from the table
    // while the run's state is lent to it mutably, with no reference counting per call (which
    // threads running one program would contend on).
    let helpers: &HelperTable = env.helpers;
    let Some(helper) = u32::try_from(id).ok().and_then(|id| helpers.get(id)) else {
        return Err(trap(
            TrapKind::BadCallTarget,
            pc,
            0,
            0,
            count,
            format!("callx to {id}, which is not a helper"),
        ));
    };
    let mut cx = HelperContext {
        regions: &mut env.regions,
        maps: &mut env.maps,
        state: &mut env.state,
        caller: CallerInfo {
            helpers: env.helpers,
            packet: env.packet,
            budget: env.budget,
            insn_base: count + 1,
            pc,
            runner: env.function_runner,
        },
    };
    (helper.func)(&mut cx, args).map_err(|e| {
        // A trap inside a callback stops the run as it is.
        if let Some(t) = env.state.pending_trap.take() {
            return t;
        }
        trap(
            TrapKind::HelperError,
            pc,
            0,
            0,
            count,
            format!("helper {} ({}) failed: {e}", helper.id, helper.name),
        )
    })
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

/// Runs validated instructions from slot 0 with r1-r5 = `args`.
pub fn run(insns: &[Insn], env: &mut RunEnv<'_>, args: [u64; 5]) -> Result<RunOutput, Trap> {
    // Sixteen slots so that a validated register nibble indexes without a bounds check.
    let mut reg = [0u64; 16];
    reg[1..6].copy_from_slice(&args);
    reg[FP as usize] = env.stack_top;
    let mut frames: Vec<Frame> = Vec::new();
    let mut pc = 0usize;
    let mut count = 0u64;
    let budget = env.budget;

    macro_rules! check {
        ($addr:expr, $size:expr, $write:expr) => {
            if let Err(kind) = env.regions.check($addr, $size as u64, $write) {
                return Err(memory_trap(kind, pc, $addr, $size, count - 1, $write));
            }
        };
    }

    loop {
        if count == budget {
            return Err(budget_trap(pc, budget));
        }
        let insn = insns[pc];
        count += 1;
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
                    JMP_JA if wide => next = (pc as i64 + 1 + insn.off as i64) as usize,
                    JMP_JA => next = (pc as i64 + 1 + insn.imm as i64) as usize,
                    JMP_CALL if op & SRC_X != 0 => {
                        let args = [reg[1], reg[2], reg[3], reg[4], reg[5]];
                        reg[0] = call_helper(env, reg[d], args, pc, count - 1)?;
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
                        next = (pc as i64 + 1 + insn.imm as i64) as usize;
                    }
                    JMP_CALL => {
                        let args = [reg[1], reg[2], reg[3], reg[4], reg[5]];
                        reg[0] = call_helper(env, insn.imm as u32 as u64, args, pc, count - 1)?;
                    }
                    JMP_EXIT => match frames.pop() {
                        None => {
                            return Ok(RunOutput {
                                r0: reg[0],
                                insn_count: count,
                            })
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
                            next = (pc as i64 + 1 + insn.off as i64) as usize;
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
                    if addr % size as u64 != 0 {
                        return Err(memory_trap(
                            TrapKind::Misaligned,
                            pc,
                            addr,
                            size,
                            count - 1,
                            true,
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
                        return Ok(RunOutput {
                            r0: 0,
                            insn_count: count,
                        });
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
        pc = next;
    }
}
