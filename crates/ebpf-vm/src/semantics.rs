//! The semantics of one instruction, written once: the ALU, byte-order and condition primitives
//! (`#[inline(always)]`, so that the interpreter's fast loop's arms, which call them with constant
//! operations, compile to the one operation each), memory access and atomics, `general`, the
//! reference code by instruction class, and `reference_loop`, which runs it one instruction at a
//! time with the budget checked before each. The interpreter runs the reference loop for what its
//! fast loop leaves (and its fast loop runs `general` for the instructions without an arm of
//! their own); the JIT runs it to finish a run whose budget ends inside a metered chain
//! (`jit::finish`). Below both engines, so that they share one meaning of every instruction.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::error::{Trap, TrapKind};
use crate::isa::opcodes::*;
use crate::isa::{jump_target, lddw_imm, Insn};
use crate::limits::Meter;
use crate::memory::Region;
use crate::vm::env::{call_helper, memory_trap, RunEnv};
use crate::vm::{budget_trap, trap, RunOutput, MAX_CALL_FRAMES, STACK_FRAME_SIZE};

/// A caller's frame, saved across a bpf-to-bpf call.
pub(crate) struct Frame {
    pub(crate) return_pc: usize,
    pub(crate) saved: [u64; 4],
    pub(crate) saved_fp: u64,
}

/// The registers at entry: r1-r5 the arguments, r10 the top of the stack, the rest zero. Sixteen
/// slots so that a validated register nibble indexes without a bounds check.
pub(crate) fn entry_registers(args: [u64; 5], stack_top: u64) -> [u64; 16] {
    let mut reg = [0u64; 16];
    reg[1..6].copy_from_slice(&args);
    reg[FP as usize] = stack_top;
    reg
}

#[inline(always)]
pub(crate) fn alu64(op: u8, off: i16, dst: u64, src: u64) -> u64 {
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
pub(crate) fn alu32(op: u8, off: i16, dst: u32, src: u32) -> u32 {
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
pub(crate) fn byte_order(opcode: u8, width: i32, v: u64) -> u64 {
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
pub(crate) fn condition(op: u8, a: u64, b: u64, wide: bool) -> bool {
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
pub(crate) unsafe fn load(addr: u64, size: u32) -> u64 {
    let p = addr as *const u8;
    match size {
        1 => *p as u64,
        2 => (p as *const u16).read_unaligned() as u64,
        4 => (p as *const u32).read_unaligned() as u64,
        _ => (p as *const u64).read_unaligned(),
    }
}

#[inline(always)]
pub(crate) unsafe fn store(addr: u64, size: u32, v: u64) {
    let p = addr as *mut u8;
    match size {
        1 => *p = v as u8,
        2 => (p as *mut u16).write_unaligned(v as u16),
        4 => (p as *mut u32).write_unaligned(v as u32),
        _ => (p as *mut u64).write_unaligned(v),
    }
}

/// One atomic read-modify-write; returns the old value (zero-extended for 32-bit).
pub(crate) unsafe fn atomic(addr: u64, size: u32, op: i32, src: u64, r0: u64) -> u64 {
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
pub(crate) fn fits(r: &Region, addr: u64, size: u64) -> bool {
    let off = addr.wrapping_sub(r.start);
    (off < r.len) & (r.len.wrapping_sub(off) >= size)
}

/// What the general path did with one instruction.
pub(crate) enum Step {
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
pub(crate) fn general(
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

    // Atomic accesses must be aligned to their size, as the kernel's verifier requires of them.
    macro_rules! misaligned {
        ($addr:expr, $size:expr, $write:expr) => {
            if !$addr.is_multiple_of($size as u64) {
                return Err(memory_trap(
                    TrapKind::Misaligned,
                    pc,
                    $addr,
                    $size,
                    count - 1,
                    $write,
                    env,
                ));
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
        CLASS_STX if is_load_acquire(op, insn.imm) => {
            // An ordinary zero-extending load of its size; our loads are already as ordered as
            // the interpreter's own code (Acquire would add nothing a single thread can see).
            let size = access_size(op);
            let addr = reg[s].wrapping_add(insn.off as i64 as u64);
            check!(addr, size, false);
            misaligned!(addr, size, false);
            // SAFETY: checked against the run's regions just above.
            reg[d] = unsafe { load(addr, size) };
        }
        CLASS_ST | CLASS_STX => {
            let size = access_size(op);
            let addr = reg[d].wrapping_add(insn.off as i64 as u64);
            check!(addr, size, true);
            if is_store_release(op, insn.imm) {
                misaligned!(addr, size, true);
                // SAFETY: checked against the run's regions just above.
                unsafe { store(addr, size, reg[s]) };
            } else if op & 0xe0 == MODE_ATOMIC {
                misaligned!(addr, size, true);
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

/// Whether `insn` is a conditional jump (for coverage's fall-through counts).
pub(crate) fn is_cond_jump(insn: &Insn) -> bool {
    matches!(class(insn.opcode), CLASS_JMP | CLASS_JMP32)
        && !matches!(insn.opcode & 0xf0, JMP_JA | JMP_CALL | JMP_EXIT)
}

/// Whether the conditional jump `insn` is taken with these registers (decided apart from the
/// target, so that a jump to the next instruction still counts as taken when it is).
pub(crate) fn taken(insn: &Insn, reg: &[u64; 16]) -> bool {
    let b = if insn.opcode & SRC_X != 0 {
        reg[(insn.src & 0x0f) as usize]
    } else {
        insn.imm as i64 as u64
    };
    let wide = class(insn.opcode) == CLASS_JMP;
    condition(insn.opcode & 0xf0, reg[(insn.dst & 0x0f) as usize], b, wide)
}

/// How `reference_loop` counts coverage: each engine by its own runs of instructions (see
/// `coverage`). Runs without coverage pass `None`.
pub(crate) trait Counting {
    /// Control is at `pc`, before the budget check (the instruction a run stops at counts as
    /// reached).
    fn arrive(&mut self, pc: usize);
    /// The instruction at `pc` is about to run with these registers.
    fn run(&mut self, pc: usize, insn: &Insn, reg: &[u64; 16]);
}

impl<C: Counting> Counting for Option<C> {
    #[inline(always)]
    fn arrive(&mut self, pc: usize) {
        if let Some(c) = self {
            c.arrive(pc);
        }
    }

    #[inline(always)]
    fn run(&mut self, pc: usize, insn: &Insn, reg: &[u64; 16]) {
        if let Some(c) = self {
            c.run(pc, insn, reg);
        }
    }
}

/// Runs from `pc` with registers `reg` and the callers' `frames`, one instruction at a time
/// through `general`, the budget checked before each: `left` instructions in hand and what
/// `meter` holds back (its slices handed over as they run out). Ends at the main frame's exit,
/// a trap, or the budget trap of the instruction the budget ends before.
#[allow(clippy::too_many_arguments)]
pub(crate) fn reference_loop(
    insns: &[Insn],
    mut pc: usize,
    reg: &mut [u64; 16],
    frames: &mut Vec<Frame>,
    env: &mut RunEnv<'_>,
    meter: &mut Meter,
    mut left: u64,
    counting: &mut impl Counting,
) -> Result<RunOutput, Trap> {
    loop {
        counting.arrive(pc);
        if left == 0 {
            left = meter.refill(&env.state.limits, 0, 1, pc)?;
            if left == 0 {
                return Err(budget_trap(pc, meter.budget));
            }
        }
        left -= 1;
        let insn = insns[pc];
        counting.run(pc, &insn, reg);
        match general(insns, pc, insn, reg, frames, env, meter.count(left))? {
            Step::Next(next) => pc = next,
            Step::Call(next, charged) => {
                left = meter.take(left, charged);
                pc = next;
            }
            Step::Exit(out) => return Ok(out),
        }
    }
}
