//! Finishing in Rust a run whose budget ends inside a metered chain. When a chain's charge fails
//! and the next slice of the budget (`runtime::refill_entry`) does not cover it either, no
//! instruction of the chain has run: the code leaves at the chain's head with the eBPF registers,
//! the live calls' frames and the budget left (`rem`, less than the chain's length) captured
//! (`Paused`), and the run goes on here, in the reference semantics (`semantics::reference_loop`)
//! on the same memory, helpers and maps: at most `rem` more instructions, then the budget trap,
//! or the end of the run if an exit or a trap comes first. So every outcome of the run (r0,
//! memory, the trap with its place, the count) is the interpreter's by construction.

use std::sync::atomic::AtomicU64;

use super::frame::{Ctx, FRAME_WORDS};
use crate::coverage::bump;
use crate::error::Trap;
use crate::isa::opcodes::*;
use crate::isa::Insn;
use crate::limits::Meter;
use crate::semantics::{is_cond_jump, reference_loop, taken, Counting, Frame};
use crate::vm::env::RunEnv;
use crate::vm::RunOutput;

/// What a finish needs of the code, which the program hands to each of its runs.
#[derive(Debug)]
pub(super) struct Layout {
    /// By slot, the offset of its code (`compile::Compiled`), `u32::MAX` for none.
    pub offsets: Vec<u32>,
    /// The address of the code's first byte, set once the code is in place.
    pub base: u64,
    /// With coverage: the counters' addresses (`JitOptions::coverage`) and the chains' lengths
    /// by head slot, which the code counts its entries by (`compile::chains`).
    pub coverage: Option<((u64, u64), Vec<u32>)>,
}

/// A run left at the head of the chain at `pc`, which its budget does not cover.
pub(super) struct Paused {
    pc: usize,
    reg: [u64; 11],
    /// The live calls' frames as the code keeps them (`Ctx::frames`): r6-r10 and the host
    /// address the callee's exit returns to.
    frames: Vec<[u64; FRAME_WORDS]>,
    /// The budget in hand, all that is left (the refill handed over the reserve).
    left: u64,
}

impl Paused {
    /// The state of the run whose host-stack block is `ctx`, leaving at the chain at `pc` with
    /// the eBPF registers r0-r10 at `reg` and `left` of budget.
    ///
    /// # Safety
    /// `ctx` is the block of a live run; `reg` points at 11 words.
    pub(super) unsafe fn capture(
        ctx: *const Ctx,
        pc: usize,
        reg: *const [u64; 11],
        left: u64,
    ) -> Paused {
        let depth = (*ctx).depth as usize;
        let frames = (*ctx).frames.as_ptr().cast::<[u64; FRAME_WORDS]>();
        Paused {
            pc,
            reg: *reg,
            frames: (0..depth).map(|d| *frames.add(d)).collect(),
            left,
        }
    }
}

/// The run `paused` left, finished from where it stopped: its output or trap, as the
/// interpreter gives them. `insns` and `layout` are those of the code that ran; `meter` is the
/// run's.
pub(super) fn finish(
    paused: Paused,
    (insns, layout): (&[Insn], &Layout),
    env: &mut RunEnv<'_>,
    meter: &mut Meter,
) -> Result<RunOutput, Trap> {
    // A helper of the finish may take a trie's lock that a batch holds on this thread.
    crate::maps::lpm::unpin_batch();
    let mut reg = [0u64; 16];
    reg[..11].copy_from_slice(&paused.reg);
    let mut frames: Vec<Frame> = (paused.frames.iter())
        .map(|f| Frame {
            return_pc: return_slot(layout, insns, f[5]),
            saved: [f[0], f[1], f[2], f[3]],
            saved_fp: f[4],
        })
        .collect();
    let mut chains = (layout.coverage.as_ref()).map(|&((entries, fall), ref chains)| Chains {
        entries,
        fall,
        chains,
        first: true,
    });
    let (pc, left) = (paused.pc, paused.left);
    reference_loop(
        insns,
        pc,
        &mut reg,
        &mut frames,
        env,
        meter,
        left,
        &mut chains,
    )
}

/// The slot a saved host return address goes back to: the code of a call's next slot
/// (`compile::control`'s `local_call` saves its label).
fn return_slot(layout: &Layout, insns: &[Insn], ret: u64) -> usize {
    let at = ret.wrapping_sub(layout.base);
    (1..insns.len())
        .find(|&s| {
            let call = &insns[s - 1];
            u64::from(layout.offsets[s]) == at && call.opcode == OP_CALL && call.src == CALL_LOCAL
        })
        .expect("a saved return address is the code of a call's next slot")
}

/// The JIT's coverage (see `coverage`): an entry each time control arrives at a chain's head
/// (but at the one the code left at, which it counted), and each conditional jump's
/// fall-through, into the counters the code counts into.
struct Chains<'a> {
    entries: u64,
    fall: u64,
    chains: &'a [u32],
    first: bool,
}

/// Adds one to the counter of `slot` in the array at `base`.
fn count(base: u64, slot: usize) {
    // SAFETY: the program's counters, one word per slot, which outlive its code
    // (`JitOptions::coverage`).
    bump(unsafe { &*((base + 8 * slot as u64) as *const AtomicU64) });
}

impl Counting for Chains<'_> {
    fn arrive(&mut self, pc: usize) {
        if !self.first && self.chains[pc] > 0 {
            count(self.entries, pc);
        }
        self.first = false;
    }

    fn run(&mut self, pc: usize, insn: &Insn, reg: &[u64; 16]) {
        if is_cond_jump(insn) && !taken(insn, reg) {
            count(self.fall, pc);
        }
    }
}
