//! The out-of-line snippets, emitted after the body: budget slow paths, second-region checks, trap exits, refunds, and the copies of fast loops and of
//! groups whose shared check failed.

use super::fast_loop::LoopCopy;
use super::{is_lddw, Compiler, BUDGET};
use crate::jit::x86::*;

pub(super) enum Snippet {
    /// Budget in hand too small for the block at `pc` of `n` instructions: take the next slice
    /// (`runtime::refill_entry`) and go on at `resume` if it covers the block; else the stub
    /// leaves for Rust to finish the run (`jit::finish`).
    Budget {
        at: Label,
        resume: Label,
        pc: usize,
        n: u32,
    },
    CallDepth {
        at: Label,
        pc: usize,
    },
    Misaligned {
        at: Label,
        info: u32,
        adj: u32,
    },
    /// A legacy packet load outside the packet.
    PacketMiss {
        at: Label,
        adj: u32,
        pc: usize,
    },
    /// A chain of one `ja` that a conditional jump just before it jumps over: placed out of line
    /// so that the way over it is the fall-through (see `jump_over_ja`).
    LoneJa {
        pc: usize,
    },
    /// The instruction a conditional move stands for (see `cmov`), for the jumps to it: the
    /// instruction, then on to the one after it.
    Selected {
        pc: usize,
    },
    /// A conditional jump taken out of the middle of a chain: give back the `adj` instructions
    /// of the chain that it skips, then go to the target.
    Refund {
        at: Label,
        adj: u32,
        target: Label,
    },
    /// The copy of a loop chain whose covered accesses go unchecked (see `loops`), unrolled
    /// twice (`LoopCopy` has what it needs).
    FastLoop(LoopCopy),
    /// A group's check failed: run its accesses (and what lies between them) with their own
    /// checks, then rejoin the ordinary code after the last of them; or for a quiet group
    /// (`recheck`, see `group`), check its accesses in turn and rejoin it after its check.
    Group {
        at: Label,
        first: usize,
        last: usize,
        block_n: u32,
        block_k: u32,
        rejoin: Label,
        recheck: bool,
    },
    /// The inline check against one fast region failed: call the second-region stub (`stub`,
    /// see `emit_second_region_stubs`) with what the check stub needs of this site, and go
    /// back.
    Check {
        at: Label,
        back: Label,
        stub: Label,
        info: u32,
        adj: u32,
    },
}

/// What the check stub takes in rax: the access's `access_info`, and what the chain charged
/// ahead of it in the high half (see `runtime::check_entry`).
pub(super) fn check_info(info: u32, adj: u32) -> u64 {
    u64::from(adj) << 32 | u64::from(info)
}

impl Compiler<'_> {
    /// Emits the out-of-line snippets, including those that copies of code (groups, fast loops)
    /// add.
    pub(super) fn emit_snippets(&mut self) {
        // Two vectors that trade places, so that neither is reallocated round after round.
        let mut pending = Vec::with_capacity(self.snippets.capacity());
        while !self.snippets.is_empty() {
            std::mem::swap(&mut pending, &mut self.snippets);
            for s in pending.drain(..) {
                self.snippet(s);
            }
        }
    }

    pub(super) fn snippet(&mut self, s: Snippet) {
        // A copy emits `t = b; t += x` as it is, unless it folds the pair again itself.
        self.folded = None;
        match s {
            Snippet::Budget { at, resume, pc, n } => {
                self.a.bind(at);
                // r12 = rem - n (wrapped): the stub charges the block from the next slice, or
                // does not come back.
                self.a.mov_r32_imm(RAX, pc as u32);
                self.a.mov_r32_imm(RDX, n);
                let l = self.stubs.refill;
                self.a.call(l);
                self.a.jmp(resume);
            }
            Snippet::FastLoop(copy) => self.fast_copy(copy),
            Snippet::Group {
                at,
                first,
                last,
                block_n,
                block_k,
                rejoin,
                recheck,
            } => {
                self.a.bind(at);
                self.block_n = block_n;
                if recheck {
                    self.group_checks(first, last, block_k);
                    self.a.jmp(rejoin);
                    return;
                }
                self.block_k = block_k;
                let mut pc = first;
                loop {
                    self.insn(pc);
                    self.block_k += 1;
                    if pc == last {
                        break;
                    }
                    pc += if is_lddw(&self.insns[pc]) { 2 } else { 1 };
                }
                self.a.jmp(rejoin);
            }
            Snippet::LoneJa { pc } => {
                let l = self.label(pc);
                self.a.bind(l);
                self.meter(pc, 1);
                self.block_n = 1;
                self.block_k = 0;
                self.insn(pc);
            }
            Snippet::Selected { pc } => {
                let l = self.label(pc);
                self.a.bind(l);
                self.block_n = 1;
                self.block_k = 0;
                self.insn(pc);
                let next = self.label(pc + 1);
                self.a.jmp(next);
            }
            Snippet::Refund { at, adj, target } => {
                self.a.bind(at);
                self.a.alu_ri(Alu::Add, W::B64, BUDGET, adj as i32);
                self.a.jmp(target);
            }
            Snippet::CallDepth { at, pc } => {
                self.a.bind(at);
                self.a.mov_r32_imm(RAX, pc as u32);
                let l = self.stubs.call_depth;
                self.a.jmp(l);
            }
            Snippet::Check {
                at,
                back,
                stub,
                info,
                adj,
            } => {
                // All but what differs between sites is in the second-region stub.
                self.a.bind(at);
                self.a.mov_imm64(RAX, check_info(info, adj));
                self.a.call(stub);
                self.a.jmp(back);
            }
            Snippet::Misaligned { at, info, adj } => {
                self.a.bind(at);
                self.leave_with_count(adj);
                self.a.mov_r32_imm(RDX, info);
                let l = self.stubs.misaligned;
                self.a.jmp(l);
            }
            Snippet::PacketMiss { at, adj, pc } => {
                self.a.bind(at);
                self.leave_with_count(adj);
                self.a.mov_r32_imm(RCX, pc as u32);
                let l = self.stubs.packet_miss;
                self.a.jmp(l);
            }
        }
    }
}
