//! Jumps, exits and calls (helper and bpf-to-bpf), the budget meter at each chain's head and the
//! refunds of jumps taken out of a chain's middle, and the layouts of conditional jumps around a
//! `ja` (`cond_over_ja`, `jump_over_ja`).

use super::snippets::Snippet;
use super::stubs::frame_slot;
use super::{
    blinded, ctx, pool_slot, Compiler, CondLayout, BUDGET, DATA_NEG, MAX_CALL_FRAMES, REG,
    STACK_FRAME_SIZE,
};
use crate::isa::opcodes::*;
use crate::isa::Insn;
use crate::jit::frame::*;
use crate::jit::x86::*;

/// Most register instructions of a latch that `copy_latch` copies (its conditional jump aside):
/// the copy stays within an instruction's bound on code (`MAX_INSN_BYTES`).
const LATCH_COPY: usize = 3;

/// Whether an instruction is a conditional jump: control may fall through to the next one.
pub(super) fn is_cond_jump(insn: &Insn) -> bool {
    let op = insn.opcode;
    matches!(class(op), CLASS_JMP | CLASS_JMP32)
        && !matches!(op & 0xf0, JMP_JA | JMP_CALL | JMP_EXIT)
}

impl Compiler<'_> {
    /// Charges a block of `n` instructions; if fewer are left, goes out of line to run exactly as
    /// many as the budget allows. Unmetered code charges nothing (the label is then never used).
    /// Inlined (the main pass asks it once per chain; the call cost more than its tests).
    #[inline(always)]
    pub(super) fn meter(&mut self, pc: usize, n: u32) -> Label {
        let at = self.a.new_label();
        if !self.metered {
            return at;
        }
        let resume = self.a.new_label();
        self.a.alu_ri(Alu::Sub, W::B64, BUDGET, n as i32);
        self.a.jcc(Cond::B, at);
        self.a.bind(resume);
        self.snippets.push(Snippet::Budget { at, resume, pc, n });
        at
    }

    /// `if c goto t; ja back` where the `ja` ends the chain (clang's rotated loops end so): as
    /// `if !c goto back`, then the way to t. Returns whether it emitted the pair.
    /// Asked of every instruction (as `jump_over_ja` is): the test of the opcode is inlined into
    /// the caller, the rest is not.
    #[inline(always)]
    pub(super) fn cond_over_ja(&mut self, pc: usize) -> bool {
        is_cond_jump(&self.insns[pc]) && self.cond_over_ja_at(pc)
    }

    #[inline(never)]
    fn cond_over_ja_at(&mut self, pc: usize) -> bool {
        let (cond, ja) = (self.insns[pc], self.insns[pc + 1]);
        if !is_cond_jump(&cond) || self.block_k + 2 != self.block_n {
            return false;
        }
        let back = match ja.opcode {
            OP_JA | OP_JA32 => self.shape.target(pc + 1).expect("ja has a target"),
            _ => return false,
        };
        self.cond = Some(CondLayout::OverJa(self.label(back)));
        self.insn(pc);
        debug_assert!(self.cond.is_none(), "the jump used it");
        true
    }

    /// `if c goto pc + 2` ending its chain, where `pc + 1` is a chain of one `ja` and no loop
    /// head: emits `if !c goto <the ja>` and puts the `ja` chain out of line, so that the jump
    /// over it (a loop going on, as clang lays loops out) costs no taken branch. Returns whether
    /// it did (the caller then skips `pc + 1`).
    #[inline(always)]
    pub(super) fn jump_over_ja(&mut self, pc: usize) -> bool {
        is_cond_jump(&self.insns[pc]) && self.jump_over_ja_at(pc)
    }

    #[inline(never)]
    fn jump_over_ja_at(&mut self, pc: usize) -> bool {
        let insn = self.insns[pc];
        let next = pc + 1;
        if !is_cond_jump(&insn)
            || self.block_k + 1 != self.block_n
            || next >= self.insns.len()
            || self.shape.chains[next] != 1
            || self.shape.loop_heads[next]
            || !matches!(self.insns[next].opcode, OP_JA | OP_JA32)
            || self.shape.target(pc) != Some(pc + 2)
        {
            return false;
        }
        let l = self.label(next);
        self.cond = Some(CondLayout::ToLoneJa(l));
        self.insn(pc);
        debug_assert!(self.cond.is_none(), "the jump used it");
        self.snippets.push(Snippet::LoneJa { pc: next });
        true
    }

    pub(super) fn jump(&mut self, pc: usize, insn: &Insn) {
        let op = insn.opcode;
        let x = op & SRC_X != 0;
        match op & 0xf0 {
            JMP_JA => {
                let t = self.shape.target(pc).expect("ja has a target");
                if !self.copy_latch(t) {
                    let l = self.label(t);
                    self.a.jmp(l);
                }
            }
            JMP_EXIT => {
                // The exit record names the instruction the run leaves by (`RunOutput::exit_pc`).
                self.a.mov_r32_imm(RCX, pc as u32);
                // Without calls between functions every exit is the main program's: it skips
                // the test of the call depth (always 0).
                let l = match self.local_calls {
                    true => self.stubs.exit,
                    false => self.stubs.main_exit,
                };
                self.a.jmp(l);
            }
            JMP_CALL if x => {
                self.a.mov_rr(W::B64, RAX, REG[insn.dst as usize]);
                self.call_helper(pc);
            }
            JMP_CALL if insn.src == CALL_LOCAL => self.local_call(pc),
            JMP_CALL => {
                if !blinded(&mut self.a, &mut self.blind, W::B32, RAX, insn.imm) {
                    self.a.mov_r32_imm(RAX, insn.imm as u32);
                }
                self.call_helper(pc);
            }
            _ if self.switch_table(pc) => {}
            _ => {
                let cc = self.compare(pc, insn);
                let t = self
                    .shape
                    .target(pc)
                    .expect("conditional jump has a target");
                match self.cond.take() {
                    Some(CondLayout::UnrollExit(exit)) => {
                        // The first half of an unrolled fast loop: leave when the loop ends.
                        self.a.jcc(invert(cc), exit);
                        return;
                    }
                    Some(CondLayout::UnrollLeave(exit)) => {
                        self.a.jcc(cc, exit);
                        return;
                    }
                    Some(CondLayout::ToLoneJa(ja)) => {
                        // Ends its chain: nothing to give back either way.
                        debug_assert_eq!(self.adj(), 0);
                        self.a.jcc(invert(cc), ja);
                        return;
                    }
                    Some(CondLayout::OverJa(back)) => {
                        // `if c goto t; ja back` ending a chain: one jump on the path through
                        // the `ja` (both charged, adj 0 there); the jump to t gives back the `ja`.
                        let adj = self.adj();
                        self.a.jcc(invert(cc), back);
                        self.leave_with_count(adj);
                        // The main pass emits `pc + 2` next: no jump to it (a loop's exit).
                        if t != pc + 2 {
                            let target = self.label(t);
                            self.a.jmp(target);
                        }
                        return;
                    }
                    None => {}
                }
                // Only the chain's own back jump (its last instruction) stays in a fast loop's
                // copy: any other way to the head must pass the head's check again.
                let back_in_copy = self
                    .fast
                    .as_ref()
                    .is_some_and(|f| f.head == t && self.adj() == 0);
                let target = match &self.fast {
                    Some(f) if back_in_copy => f.top,
                    _ => self.label(t),
                };
                let adj = self.adj();
                if let (true, Some((entries, _))) = (back_in_copy, self.coverage) {
                    // Another iteration of a fast loop's copy: an entry of its chain that the
                    // head's counter (in the ordinary code) does not see. (Counted per
                    // iteration: a count taken ahead for two would be wrong when the second
                    // leaves early, by a jump out of the chain or a trap.)
                    let skip = self.a.new_label();
                    self.a.jcc(invert(cc), skip);
                    self.count(entries, t);
                    self.a.jmp(target);
                    self.a.bind(skip);
                } else if adj == 0 {
                    self.a.jcc(cc, target);
                } else {
                    let at = self.a.new_label();
                    self.a.jcc(cc, at);
                    self.snippets.push(Snippet::Refund { at, adj, target });
                }
                if let Some((_, fall)) = self.coverage {
                    // Only the way that falls through gets here.
                    self.count(fall, pc);
                }
            }
        }
    }

    /// The compare of the conditional jump at `pc`, and the condition on which it is taken.
    pub(super) fn compare(&mut self, pc: usize, insn: &Insn) -> Cond {
        let op = insn.opcode;
        let w = if class(op) == CLASS_JMP {
            W::B64
        } else {
            W::B32
        };
        let x = op & SRC_X != 0;
        let cond = op & 0xf0;
        let d = REG[insn.dst as usize];
        if x {
            let s = REG[insn.src as usize];
            if cond == JMP_JSET {
                self.a.test_rr(w, d, s);
            } else {
                self.a.alu_rr(Alu::Cmp, w, d, s);
            }
        } else if insn.imm == 0 && cond != JMP_JSET {
            // Same flags as `cmp d, 0` for every condition (CF = OF = 0).
            self.a.test_rr(w, d, d);
        } else if self.fast.as_ref().is_some_and(|f| f.limit_at == Some(pc)) {
            // A fast loop's blinded bound, rebuilt once by its head check.
            self.a.alu_rm(Alu::Cmp, w, d, ctx(OFF_LOOP_LIMIT));
        } else if let Some(slot) = pool_slot(&self.blind, insn.imm).filter(|_| cond != JMP_JSET) {
            self.a.alu_rm(Alu::Cmp, w, d, slot);
        } else if blinded(&mut self.a, &mut self.blind, w, RAX, insn.imm) {
            if cond == JMP_JSET {
                self.a.test_rr(w, d, RAX);
            } else {
                self.a.alu_rr(Alu::Cmp, w, d, RAX);
            }
        } else if cond == JMP_JSET {
            self.a.test_ri(w, d, insn.imm);
        } else {
            self.a.alu_ri(Alu::Cmp, w, d, insn.imm);
        }
        match cond {
            JMP_JEQ => Cond::E,
            JMP_JNE | JMP_JSET => Cond::Ne,
            JMP_JGT => Cond::A,
            JMP_JGE => Cond::Ae,
            JMP_JLT => Cond::B,
            JMP_JLE => Cond::Be,
            JMP_JSGT => Cond::G,
            JMP_JSGE => Cond::Ge,
            JMP_JSLT => Cond::L,
            _ => Cond::Le,
        }
    }

    /// `ja t` where t's chain is short, register arithmetic then a conditional jump (a loop's
    /// latch: `i += 1; if i < n goto head`, which a `continue` or each case of a switch jumps
    /// to): emits a copy of that chain in place of the jump, then a jump to what follows it, so
    /// that the way round the loop takes one taken jump fewer (a switch's case goes straight back
    /// to the head). Only in unmetered code without coverage, where the copy has no meter or
    /// counter of its own to keep. Returns whether it did.
    pub(super) fn copy_latch(&mut self, t: usize) -> bool {
        if self.metered || self.coverage.is_some() || self.fast.is_some() {
            return false;
        }
        let n = self.shape.chains[t] as usize;
        let last = t + n.max(1) - 1;
        if !(2..=LATCH_COPY + 1).contains(&n) || last + 1 >= self.insns.len() {
            return false;
        }
        let arithmetic = |insn: &Insn| {
            matches!(class(insn.opcode), CLASS_ALU | CLASS_ALU64)
                && !matches!(insn.opcode & 0xf0, ALU_DIV | ALU_MOD)
        };
        if !self.insns[t..last].iter().all(arithmetic) || !is_cond_jump(&self.insns[last]) {
            return false;
        }
        // The chain's own code may have folded an access's address; the copy emits all of it.
        self.folded = None;
        let (block_n, block_k) = (self.block_n, self.block_k);
        self.block_n = n as u32;
        for (k, p) in (t..=last).enumerate() {
            self.block_k = k as u32;
            self.insn(p);
        }
        (self.block_n, self.block_k) = (block_n, block_k);
        let after = self.label(last + 1);
        self.a.jmp(after);
        true
    }

    /// rax = helper id; the stub passes r1-r5 to `interpreter::call_helper` and sets r0, and r12
    /// to what the helper left of the budget. A helper call ends its chain (`ends_block`), so no
    /// instruction after it was charged in advance.
    pub(super) fn call_helper(&mut self, pc: usize) {
        debug_assert_eq!(self.adj(), 0, "a helper call ends its chain");
        // A map lookup the verifier proved (its map and key, `Proved`) skips the checks of the
        // general path; `runtime::lookup_entry` takes that path for anything else.
        let insn = &self.insns[pc];
        let proved_lookup = self.proved[pc]
            && insn.src == 0
            && insn.imm as u32 == crate::helpers::maps::BPF_MAP_LOOKUP_ELEM;
        let l = if proved_lookup {
            self.stubs.lookup
        } else {
            self.stubs.helper
        };
        // A lookup in a batch into an array (inline) or a hash map or trie (a direct call)
        // skips the stub (`lookup.rs`); the stub's call is the way out for anything else.
        let done = match proved_lookup.then(|| self.inline_lookup_at(pc)).flatten() {
            Some(lookup) => {
                let (slow, done) = (self.a.new_label(), self.a.new_label());
                self.inline_lookup(&lookup, slow, done);
                self.a.bind(slow);
                Some(done)
            }
            None => None,
        };
        self.a.mov_r32_imm(RDX, pc as u32);
        self.a.call(l);
        // The helper may have moved the regions: the stub's call refreshed the context.
        self.a.load(W::B64, DATA_NEG, ctx(OFF_DATA_NEG));
        if let Some(done) = done {
            self.a.bind(done);
        }
    }

    /// Instructions of the current block after the one being emitted. The block was charged in
    /// full on entry, so at this instruction `r12 + adj` is the budget left after it: what the
    /// stubs must see to count the instructions executed before it. 0 in unmetered code, which
    /// charged nothing ahead.
    pub(super) fn adj(&self) -> u32 {
        if self.metered {
            self.block_n - 1 - self.block_k
        } else {
            0
        }
    }

    /// Raises r12 by `adj` (given back by a jump out of a chain's middle, or for a stub that
    /// counts instructions and leaves the run).
    pub(super) fn leave_with_count(&mut self, adj: u32) {
        if adj > 0 {
            self.a.alu_ri(Alu::Add, W::B64, BUDGET, adj as i32);
        }
    }

    /// A bpf-to-bpf call: saves r6-r10 and the return address in the next frame slot of the
    /// context, moves r10 down one frame and jumps. `exit` in the callee comes back through the
    /// exit stub. Host `call`/`ret` are not used so that rsp stays fixed and the context stays at
    /// a constant offset from it.
    pub(super) fn local_call(&mut self, pc: usize) {
        let target = self.shape.target(pc).expect("local call has a target");
        let over = self.a.new_label();
        self.snippets.push(Snippet::CallDepth { at: over, pc });
        let ret = self.label(pc + 1);
        let tl = self.label(target);
        let a = &mut self.a;
        a.load(W::B64, RAX, ctx(OFF_DEPTH));
        a.alu_ri(Alu::Cmp, W::B64, RAX, MAX_CALL_FRAMES as i32 - 1);
        a.jcc(Cond::Ae, over);
        a.lea(RCX, mem(RAX, 1));
        a.store(W::B64, ctx(OFF_DEPTH), RCX);
        frame_slot(a);
        for (k, r) in REG[6..11].iter().enumerate() {
            a.store(W::B64, mem_idx(RSP, RAX, 0, OFF_FRAMES + 8 * k as i32), *r);
        }
        a.lea_label(RCX, ret);
        a.store(W::B64, mem_idx(RSP, RAX, 0, OFF_FRAMES + 40), RCX);
        a.alu_ri(Alu::Sub, W::B64, REG[10], STACK_FRAME_SIZE as i32);
        a.jmp(tl);
    }
}

/// The opposite condition (of those eBPF jumps use).
pub(super) fn invert(c: Cond) -> Cond {
    match c {
        Cond::B => Cond::Ae,
        Cond::Ae => Cond::B,
        Cond::E => Cond::Ne,
        Cond::Ne => Cond::E,
        Cond::Be => Cond::A,
        Cond::A => Cond::Be,
        Cond::L => Cond::Ge,
        Cond::Ge => Cond::L,
        Cond::Le => Cond::G,
        Cond::G => Cond::Le,
        Cond::S => unreachable!("no eBPF jump tests the sign flag"),
    }
}
