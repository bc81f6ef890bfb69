//! The out-of-line snippets, emitted after the body: budget slow paths, second-region checks, trap exits, refunds, and the copies of fast loops and of
//! groups whose shared check failed.

use super::fast_loop::LoopCopy;
use super::{ctx, fast_bound, fast_start, is_lddw, Compiler, BUDGET, DATA_NEG};
use crate::jit::frame::*;
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
    /// checks, then rejoin the ordinary code after the last of them.
    Group {
        at: Label,
        first: usize,
        last: usize,
        block_n: u32,
        block_k: u32,
        rejoin: Label,
    },
    /// The inline check against one fast region failed: try the other, then the stub.
    Check {
        at: Label,
        back: Label,
        m: Mem,
        region: usize,
        bi: usize,
        info: u32,
        adj: u32,
    },
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
            } => {
                self.a.bind(at);
                self.block_n = block_n;
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
                m,
                region,
                bi,
                info,
                adj,
            } => {
                self.a.bind(at);
                self.a.lea(RCX, m);
                self.a
                    .alu_rm(Alu::Sub, W::B64, RCX, ctx(fast_start(region)));
                self.a
                    .alu_rm(Alu::Cmp, W::B64, RCX, ctx(fast_bound(region, bi)));
                self.a.jcc(Cond::B, back);
                self.slow_check(m, info, adj);
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

    /// The check of the access at `m` by the stub, which walks the whole region table and traps
    /// on failure (`info`: `access_info`; `adj`: what the chain charged ahead). Clobbers rax and
    /// rcx; rdx (`DATA_NEG`) is reloaded.
    pub(super) fn slow_check(&mut self, m: Mem, info: u32, adj: u32) {
        self.a.lea(RAX, m);
        self.a.mov_r32_imm(RDX, info);
        let stub = self.stubs.check;
        self.with_count(adj, |a| a.call(stub));
        self.a.load(W::B64, DATA_NEG, ctx(OFF_DATA_NEG));
    }
}
