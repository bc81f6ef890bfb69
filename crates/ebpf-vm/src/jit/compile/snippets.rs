//! The out-of-line snippets, emitted after the body: budget slow paths with the metered copies
//! of chains, second-region checks, trap exits, refunds, and the copies of fast loops and of
//! groups whose shared check failed.

use super::fast_loop::LoopCopy;
use super::memory::frame_local;
use super::{is_lddw, Compiler, BUDGET};
use crate::isa::opcodes::*;
use crate::isa::Insn;
use crate::jit::x86::*;

/// Whether an instruction can have an effect that outlives a trap of the run: it may trap
/// itself, end the run, or change memory other than the current stack frame. Register
/// arithmetic, `lddw` and frame-local stack accesses cannot.
pub(super) fn observable(insn: &Insn) -> bool {
    let op = insn.opcode;
    match class(op) {
        CLASS_ALU | CLASS_ALU64 => false,
        CLASS_LD => !is_lddw(insn),
        CLASS_LDX => !frame_local(insn.src, insn.off, access_size(op)),
        CLASS_ST => !frame_local(insn.dst, insn.off, access_size(op)),
        CLASS_STX => op & 0xe0 == MODE_ATOMIC || !frame_local(insn.dst, insn.off, access_size(op)),
        _ => true,
    }
}

pub(super) enum Snippet {
    /// Budget in hand too small for the block at `pc` of `n` instructions: take the next slice
    /// (`runtime::refill_entry`) and go on at `resume` if it covers the block; else run its
    /// metered copy (or stop at once when no instruction before its last is observable).
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
    /// Emits the out-of-line snippets, including those that the metered copies of blocks add.
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
                // r12 = rem - n (wrapped): back to rem, and ask for the next slice.
                self.a.alu_ri(Alu::Add, W::B64, BUDGET, n as i32);
                self.a.mov_r32_imm(RAX, pc as u32);
                self.a.mov_r32_imm(RDX, n);
                let l = self.stubs.refill;
                self.a.call(l);
                self.a.alu_ri(Alu::Sub, W::B64, BUDGET, n as i32);
                self.a.jcc(Cond::Ae, resume);
                self.metered_copy(pc, n);
                // Budget exhausted at the instruction `rem` places into the block (r12 + n).
                self.a.alu_ri(Alu::Add, W::B64, BUDGET, n as i32);
                self.a.mov_r32_imm(RAX, pc as u32);
                let l = self.stubs.budget;
                self.a.jmp(l);
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

    /// The check of the access at `m` by the stub, which walks the whole region table and traps
    /// on failure (`info`: `access_info`; `adj`: what the chain charged ahead). Clobbers rax and
    /// rcx; rdx (`DATA_NEG`) is reloaded by the stub.
    pub(super) fn slow_check(&mut self, m: Mem, info: u32, adj: u32) {
        self.a.lea(RCX, m);
        self.a.mov_imm64(RAX, check_info(info, adj));
        let stub = self.stubs.check;
        self.a.call(stub);
    }

    /// The block at `pc` of `n` instructions, for a run whose budget ends inside it: r12 is
    /// `rem - n` (wrapped), `rem < n`. The interpreter would execute the first `rem` instructions
    /// and trap before the next; so each observable instruction `k` runs only if `k < rem`, and
    /// the others (register arithmetic, frame-local stack traffic: invisible once the run traps)
    /// may run regardless. Falls through to the budget trap; the block's last instruction (its
    /// jump, call or exit, if it has one) is never reached, as `rem <= n - 1`. Nor is what
    /// follows the last observable instruction before it: the run traps before anything it
    /// does can be seen, so the copy ends there.
    pub(super) fn metered_copy(&mut self, start: usize, n: u32) {
        // The slots of the block's instructions but its last, and whether each is observable,
        // found in one walk (into a buffer kept for every copy of the compile).
        let insns = self.insns;
        let mut pcs = std::mem::take(&mut self.copy_pcs);
        pcs.clear();
        let mut last = None;
        let mut pc = start;
        for k in 0..n as usize - 1 {
            let seen = observable(&insns[pc]);
            if seen {
                last = Some(k);
            }
            pcs.push((pc, seen));
            pc += if is_lddw(&insns[pc]) { 2 } else { 1 };
        }
        if let Some(last) = last {
            let out = self.a.new_label();
            self.block_n = n;
            self.cold = true;
            for (k, &(pc, seen)) in pcs[..=last].iter().enumerate() {
                if seen {
                    // if rem <= k: stop here. r12 = rem - n lies in [-n, -1] (rem < n), so a
                    // signed compare with k - n tells.
                    self.a.alu_ri(Alu::Cmp, W::B64, BUDGET, k as i32 - n as i32);
                    self.a.jcc(Cond::Le, out);
                }
                self.block_k = k as u32;
                self.insn(pc);
            }
            self.cold = false;
            self.a.bind(out);
        }
        self.copy_pcs = pcs;
    }
}
