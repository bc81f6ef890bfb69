//! Which registers point into the current function's stack frame, and where: a forward client of
//! the dataflow solver. r10 is the frame pointer (offset 0, the top of the frame); `mov rX, r10`
//! copies it, `rX += imm` and `rX -= imm` move it. The value of a register is the set of frame
//! offsets it may hold, as one of: none (not a pointer into this frame), one offset, or any offset
//! (a pointer moved by a run-time amount, or several offsets joined). This is what the stack depth
//! of a function is read from (`stack_depth.rs`), as the kernel's verifier reads it from register
//! types.
//!
//! What is deliberately not tracked: a frame pointer spilled to the stack and filled back (the
//! verifier, which knows every slot, will be exact), and pointers into a caller's frame (r1-r5 at a
//! function's entry are "none": the caller's depth counts them at the call).

use crate::isa::opcodes::*;

use super::dataflow::{Direction, Problem};
use super::program::LogicalProgram;

/// What a register may hold, as a pointer into the current frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FrameOffset {
    /// Not a pointer into this frame (the bottom of the lattice).
    #[default]
    None,
    /// r10 plus this many bytes (negative below the top of the frame).
    At(i32),
    /// A pointer into the frame at an offset not known statically.
    Any,
}

impl FrameOffset {
    fn join(self, other: FrameOffset) -> FrameOffset {
        match (self, other) {
            (FrameOffset::None, x) | (x, FrameOffset::None) => x,
            (FrameOffset::At(a), FrameOffset::At(b)) if a == b => self,
            _ => FrameOffset::Any,
        }
    }

    fn moved(self, by: i64) -> FrameOffset {
        match self {
            FrameOffset::At(a) => {
                i32::try_from(a as i64 + by).map_or(FrameOffset::Any, FrameOffset::At)
            }
            other => other,
        }
    }

    pub fn is_frame(self) -> bool {
        self != FrameOffset::None
    }
}

/// The frame offset of each register r0-r10.
pub type Frame = [FrameOffset; 11];

pub(super) struct FramePointers;

impl Problem for FramePointers {
    type Fact = Frame;
    const DIRECTION: Direction = Direction::Forward;

    fn bottom(&self) -> Frame {
        let mut f = [FrameOffset::None; 11];
        f[FP as usize] = FrameOffset::At(0);
        f
    }
    fn boundary(&self) -> Frame {
        self.bottom()
    }
    fn join(&self, into: &mut Frame, other: &Frame) -> bool {
        let mut changed = false;
        for (a, b) in into.iter_mut().zip(other) {
            let j = a.join(*b);
            changed |= j != *a;
            *a = j;
        }
        changed
    }
    fn transfer(&self, program: &LogicalProgram, index: usize, regs: &mut Frame) {
        let insn = program.get(index);
        let op = insn.opcode;
        let d = (insn.dst & 0x0f) as usize;
        let s = (insn.src & 0x0f) as usize;
        if d > 10 || s > 10 {
            return;
        }
        match class(op) {
            CLASS_ALU | CLASS_ALU64 => {
                let wide = class(op) == CLASS_ALU64;
                let x = op & SRC_X != 0;
                regs[d] = match op & 0xf0 {
                    ALU_MOV if x && wide && insn.off == 0 => regs[s],
                    ALU_MOV if !x => FrameOffset::None,
                    ALU_ADD if !x && wide => regs[d].moved(insn.constant),
                    ALU_SUB if !x && wide => regs[d].moved(-insn.constant),
                    // Anything else done to a frame pointer leaves a pointer at an unknown place
                    // (or garbage the verifier will refuse): count it as anywhere in the frame.
                    _ if regs[d].is_frame() || (x && regs[s].is_frame()) => FrameOffset::Any,
                    _ => FrameOffset::None,
                };
            }
            CLASS_LDX => regs[d] = FrameOffset::None,
            CLASS_LD if insn.is_lddw() => regs[d] = FrameOffset::None,
            CLASS_LD => regs[..6].fill(FrameOffset::None),
            CLASS_STX if op & 0xe0 == MODE_ATOMIC => {
                if insn.imm() == ATOMIC_LOAD_ACQ {
                    regs[d] = FrameOffset::None;
                } else if insn.imm() == ATOMIC_CMPXCHG {
                    regs[0] = FrameOffset::None;
                } else if insn.imm() & ATOMIC_FETCH != 0 {
                    regs[s] = FrameOffset::None;
                }
            }
            CLASS_JMP if op & 0xf0 == JMP_CALL => regs[..6].fill(FrameOffset::None),
            _ => {}
        }
    }
}
