//! Stack bytes written before they are read, a forward client of the dataflow solver: a byte of
//! the frame is written at an instruction when every path from the function's entry stores to it
//! first (a "must" problem: the join is the intersection, and the bottom is "every byte", the
//! identity of intersection). A load through r10 of a byte that is not written on every path is
//! listed: the kernel refuses such reads ("invalid read from stack") unless the loader may read
//! uninitialised stack (`allow_uninit_stack`, CAP_PERFMON), and then the value is unknown.
//!
//! The syntactic version only: stores and loads through r10 itself. Writes made through another
//! pointer (a register copied from r10, a helper filling a buffer) are not seen, so reads after
//! them are listed too; the verifier, which knows every pointer and helper prototype, replaces this.

use crate::isa::opcodes::*;

use super::cfg::Cfg;
use super::dataflow::{solve, Direction, Problem};
use super::program::LogicalProgram;

/// One bit per byte of the 512-byte frame: bit `k` is the byte at r10 - 512 + k.
pub type FrameBytes = [u64; 8];

const FRAME: i64 = 512;

/// A load through r10 that may read bytes no store wrote on some path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UnprovenRead {
    /// The load (logical index).
    pub index: usize,
    /// Its offset from r10 and size.
    pub off: i16,
    pub size: u32,
}

/// The bytes `[off, off + size)` below r10 as bit positions, clipped to the frame (a range, not
/// a filter per byte: this transfer runs for every instruction on every pass of the solver).
fn bytes(off: i64, size: u32) -> std::ops::Range<usize> {
    let clip = |b: i64| (b.clamp(-FRAME, 0) + FRAME) as usize;
    clip(off)..clip(off + size as i64)
}

fn all_written(fact: &FrameBytes, off: i64, size: u32) -> bool {
    bytes(off, size).all(|k| fact[k / 64] & (1 << (k % 64)) != 0)
}

/// A memory access through r10: its offset and size, and whether it writes / reads.
fn frame_access(insn: &super::program::Instruction) -> Option<(i64, u32, bool, bool)> {
    let op = insn.opcode;
    let size = access_size(op);
    let off = insn.off as i64;
    match class(op) {
        CLASS_LDX if insn.src == FP => Some((off, size, false, true)),
        CLASS_ST if insn.dst == FP => Some((off, size, true, false)),
        CLASS_STX => match atomic_access(op, insn.imm()) {
            Some(AtomicAccess::LoadAcquire) if insn.src == FP => Some((off, size, false, true)),
            Some(AtomicAccess::LoadAcquire) => None,
            Some(AtomicAccess::StoreRelease) | None if insn.dst == FP => {
                Some((off, size, true, false))
            }
            Some(AtomicAccess::ReadModifyWrite) if insn.dst == FP => Some((off, size, true, true)),
            _ => None,
        },
        _ => None,
    }
}

struct Written;

impl Problem for Written {
    type Fact = FrameBytes;
    const DIRECTION: Direction = Direction::Forward;

    fn bottom(&self) -> FrameBytes {
        [u64::MAX; 8]
    }
    fn boundary(&self) -> FrameBytes {
        [0; 8]
    }
    fn join(&self, into: &mut FrameBytes, other: &FrameBytes) -> bool {
        let mut changed = false;
        for (a, b) in into.iter_mut().zip(other) {
            let j = *a & *b;
            changed |= j != *a;
            *a = j;
        }
        changed
    }
    fn transfer(&self, program: &LogicalProgram, index: usize, fact: &mut FrameBytes) {
        if let Some((off, size, true, _)) = frame_access(program.get(index)) {
            for k in bytes(off, size) {
                fact[k / 64] |= 1 << (k % 64);
            }
        }
    }
}

/// Loads through r10 (and atomic operations, which read first) of bytes not written on every path
/// from their function's entry, in program order. Unreachable code reports nothing.
pub fn unproven_stack_reads(program: &LogicalProgram, cfg: &Cfg) -> Vec<UnprovenRead> {
    let solution = solve(program, cfg, &Written);
    let mut found = Vec::new();
    solution.visit(program, cfg, &Written, |i, fact| {
        let insn = program.get(i);
        if let Some((off, size, _, true)) = frame_access(insn) {
            if !all_written(fact, off, size) {
                found.push(UnprovenRead {
                    index: i,
                    off: insn.off,
                    size,
                });
            }
        }
    });
    found.sort_unstable_by_key(|r| r.index);
    found
}
