//! Coverage of a program's instructions and branches, accumulated over its runs
//! (`ProgramOptions::coverage`, `Program::coverage`).
//!
//! The engines count what is cheap for each, in the same counters, once per straight run of
//! instructions rather than per instruction:
//! - the interpreter counts the segments it enters (`entries[slot]` where one starts: after a
//!   jump, call, exit or packet load, or at an entry; `interpreter::run_counted`); a segment
//!   runs on into the next one's slots when nothing ends it there (`Counted::Segments`);
//! - the JIT counts entries into its metered chains (`entries[head]`, one increment per chain,
//!   at its head, however control arrives: see `jit::compile::chains`), the same runs of blocks
//!   it charges its budget by (`Counted::Chains`).
//!
//! Both count, for each conditional jump, the times it fell through (`fall[slot]`), and the
//! program counts where each run stopped (`stops[slot]`: the exit, or the instruction of a trap).
//! `report` turns either into the same figures: hits per instruction, taken / not taken per
//! conditional jump. The instruction a run stopped at counts as reached (a trap's instruction,
//! the one a budget stopped before). A run of instructions is left early only by a conditional
//! jump taken or a stop, so walking it from its entry count, less the stops and the jumps taken,
//! gives each of its instructions' hits exactly.
//!
//! Counters are plain loads and stores (no locked instructions, to stay cheap enough to leave
//! on): runs of one program on several threads at once may lose increments.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::analysis::LogicalProgram;
use crate::isa::opcodes::*;
use crate::isa::Insn;

/// The counters of one program, one of each per instruction slot.
#[derive(Debug)]
pub struct CoverageCounters {
    entries: Box<[AtomicU64]>,
    fall: Box<[AtomicU64]>,
    stops: Box<[AtomicU64]>,
}

fn zeroed(n: usize) -> Box<[AtomicU64]> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

/// Adds one to a counter, without a locked instruction (see the module comment).
#[inline(always)]
pub fn bump(c: &AtomicU64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
}

impl CoverageCounters {
    pub fn new(slots: usize) -> CoverageCounters {
        CoverageCounters {
            entries: zeroed(slots),
            fall: zeroed(slots),
            stops: zeroed(slots),
        }
    }

    #[inline(always)]
    pub fn enter(&self, slot: usize) {
        bump(&self.entries[slot]);
    }

    #[inline(always)]
    pub fn fall_through(&self, slot: usize) {
        bump(&self.fall[slot]);
    }

    pub fn stop(&self, slot: usize) {
        if let Some(c) = self.stops.get(slot) {
            bump(c);
        }
    }

    /// Where the JIT's code increments `entries[slot]` and `fall[slot]`: the arrays' addresses.
    pub fn addresses(&self) -> (u64, u64) {
        (self.entries.as_ptr() as u64, self.fall.as_ptr() as u64)
    }

    pub fn reset(&self) {
        for c in self.entries.iter().chain(&*self.fall).chain(&*self.stops) {
            c.store(0, Ordering::Relaxed);
        }
    }

    fn get(v: &[AtomicU64], slot: usize) -> u64 {
        v[slot].load(Ordering::Relaxed)
    }
}

/// A conditional jump's counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BranchCount {
    pub slot: usize,
    pub taken: u64,
    pub not_taken: u64,
}

/// Hits per instruction slot (0 for the second slot of `lddw`) and the counts of every
/// conditional jump, in slot order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoverageReport {
    pub hits: Vec<u64>,
    pub branches: Vec<BranchCount>,
}

fn is_cond_jump(insn: &Insn) -> bool {
    matches!(class(insn.opcode), CLASS_JMP | CLASS_JMP32)
        && !matches!(insn.opcode & 0xf0, JMP_JA | JMP_CALL | JMP_EXIT)
}

/// Which engine counted, and so what an entry count means.
#[derive(Clone, Copy, Debug)]
pub enum Counted<'a> {
    /// The interpreter: entries of segments, which run on through the slots of others.
    Segments,
    /// The JIT: entries of the chains of these lengths by head slot, each arrival counted.
    Chains(&'a [u32]),
}

/// Whether an instruction ends the interpreter's segment: a jump, call or exit, or a legacy
/// packet load (which may end the program).
fn ends_segment(insn: &Insn) -> bool {
    match class(insn.opcode) {
        CLASS_JMP | CLASS_JMP32 => true,
        CLASS_LD => insn.opcode != OP_LDDW,
        _ => false,
    }
}

/// The figures of `counters` for `insns` (by slot; `program` its logical view), as `counted`.
pub fn report(
    counters: &CoverageCounters,
    insns: &[Insn],
    program: &LogicalProgram,
    counted: Counted<'_>,
) -> CoverageReport {
    let c = counters;
    let mut hits = vec![0u64; insns.len()];
    let mut branches = Vec::new();
    // What arrives at the next instruction from the one before it, without a count of its own.
    let mut reached = 0u64;
    for i in 0..program.len() {
        let slot = program.slot(i);
        let insn = &insns[slot];
        let entered = CoverageCounters::get(&c.entries, slot);
        let hit = match counted {
            Counted::Segments => entered + reached,
            Counted::Chains(chains) if chains[slot] > 0 => entered,
            Counted::Chains(_) => reached,
        };
        hits[slot] = hit;
        let stopped = CoverageCounters::get(&c.stops, slot);
        let after = hit.saturating_sub(stopped);
        reached = after;
        if is_cond_jump(insn) {
            let not_taken = CoverageCounters::get(&c.fall, slot);
            branches.push(BranchCount {
                slot,
                taken: after.saturating_sub(not_taken),
                not_taken,
            });
            reached = not_taken;
        }
        if matches!(counted, Counted::Segments) && ends_segment(insn) {
            // The next segment counts its own entries, the way that falls through included.
            reached = 0;
        }
    }
    CoverageReport { hits, branches }
}
