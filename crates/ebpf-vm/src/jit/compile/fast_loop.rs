//! Emission of counted loops (`jit::loops`): the check at the head that covers every access of
//! every iteration, and the copy of the chain, unrolled twice, that runs them unchecked: out of
//! line in metered code, right after the check (which falls into it) in unmetered code without
//! coverage (`Compiler::inline_fail`).

use super::{
    ctx, fast_bound, is_lddw, Compiler, CondLayout, FastCopy, BUDGET, DATA_NEG, LOOP_ALIGN, REG,
};
use crate::jit::blind::{worth_blinding, Blinder};
use crate::jit::frame::*;
use crate::jit::loops::{FastLoop, Fill, FillValue, Limit};
use crate::jit::x86::*;

/// What the copy of a fast loop's chain needs (`Snippet::FastLoop`): the chain (`head`, `n`
/// instructions), entered at `top` once the check at the head passed; `slow` is the chain's
/// budget exit, `checked` the ordinary chain after its head check; `accesses` those the check
/// covered; whether the chain is `rotated`; the compare whose blinded bound is in
/// `Ctx::loop_limit` (`limit_at`); a fill loop's entry from its head check, and its fill.
pub(super) struct LoopCopy {
    pub head: usize,
    pub n: u32,
    pub top: Label,
    pub slow: Label,
    pub checked: Label,
    pub accesses: Vec<usize>,
    pub rotated: bool,
    pub limit_at: Option<usize>,
    pub fill: Option<(Label, Fill)>,
}

impl Compiler<'_> {
    /// At the head of a fast loop (before its meter: the copy meters itself): if one check shows
    /// that every covered access of every iteration is in the data region, go to the copy
    /// without their checks; otherwise fall through to the ordinary chain (or, when the copy
    /// follows, `Compiler::inline_fail`, jump to it past the copy). Clobbers rax and
    /// rcx; reads registers only, so it is invisible to the budget. See `loops`. Returns where
    /// the copy starts, where its fill starts (a fill loop's, see `fill`), and whether the bound,
    /// a blinded constant, was left in `Ctx::loop_limit`.
    pub(super) fn guard(&mut self, fl: &FastLoop) -> (Label, Option<Label>, bool) {
        // A byte-sum loop's preamble comes first (its compare is the fifth after the head):
        // every entry to the loop comes here, its back jumps go to the copy.
        if let Some(head) = fl.cmp.checked_sub(5) {
            self.sum_loop(head);
        }
        let fail = self.a.new_label();
        let top = self.a.new_label();
        // Coverage counts chain entries, which a fill does not make.
        let fill = (fl.fill.is_some() && self.coverage.is_none()).then(|| self.a.new_label());
        let a = &mut self.a;
        let i = REG[fl.i as usize];
        if let (true, Limit::Imm(v)) = (fl.counts_up, fl.limit) {
            // i0 < n, and then m = n (64-bit: n is the immediate sign-extended).
            match &mut self.blind {
                Some(b) if worth_blinding(v as i64 as u64) => {
                    b.load(a, W::B64, RCX, v);
                    a.store(W::B64, ctx(OFF_LOOP_LIMIT), RCX);
                    a.alu_rr(Alu::Cmp, W::B64, i, RCX);
                    a.jcc(Cond::Ae, fail);
                }
                _ => {
                    a.alu_ri(Alu::Cmp, W::B64, i, v);
                    a.jcc(Cond::Ae, fail);
                    a.mov_imm64(RCX, v as i64 as u64);
                }
            }
        } else {
            Self::loop_bound(a, self.blind.as_mut(), fl, i, fail);
        }
        // Accesses the verifier proved need no check here, as nowhere else.
        for acc in fl.accesses.iter().filter(|acc| !self.proved[acc.pc]) {
            // Exclusive bound on `addr - start` of one-byte accesses of this direction: the
            // region's length, or 0 when such accesses are not allowed inline.
            let len = ctx(fast_bound(1, bound_index(1, acc.write)));
            // rax = (b + off - start) mod 2^64, the offset of the first access in the region.
            // With no carry below, rax + m - 1 + size <= len holds as integers, so for every
            // i < m the access at offset rax + i (mod 2^64 the address minus start) ends
            // inside the region; rax < len follows (m >= 1), no check of its own needed.
            a.lea(
                RAX,
                mem_idx(REG[acc.b as usize], DATA_NEG, 0, acc.off as i32),
            );
            a.alu_rr(Alu::Add, W::B64, RAX, RCX);
            a.jcc(Cond::B, fail);
            if acc.size > 1 {
                a.alu_ri(Alu::Add, W::B64, RAX, acc.size as i32 - 1);
                a.jcc(Cond::B, fail);
            }
            a.alu_rm(Alu::Cmp, W::B64, RAX, len);
            a.jcc(Cond::A, fail);
        }
        // The fill, when there is one, starts with rcx = m. A copy that follows is fallen into,
        // and the ordinary chain after it is where a failed check goes.
        if self.inline_fail.is_some() {
            self.inline_fail = Some(fail);
        } else {
            a.jmp(fill.unwrap_or(top));
            a.bind(fail);
        }
        let stored = matches!(fl.limit, Limit::Imm(v) if worth_blinding(v as i64 as u64))
            && self.blind.is_some();
        (top, fill, stored)
    }

    /// A fill loop (`loops::Fill`) entered from its head check, with rcx = m: when `k = m - i0`
    /// is worth it (the copy is faster for a few bytes) and the budget has all `k` iterations,
    /// charges them, stores the `k` bytes with one `rep stosb` and sets `i` and `t` as the last
    /// iteration leaves them, then goes on after the loop; otherwise runs the copy from `top`.
    /// Clobbers rax, rcx and (reloaded) rdx.
    fn fill(&mut self, f: Fill, n: u32, rotated: bool, top: Label, after: Label) {
        /// Fewer bytes than this are filled by the copy (`rep stosb` has a start-up cost).
        const MIN_FILL: i32 = 64;
        let a = &mut self.a;
        let copy = a.new_label();
        let (t, b, i) = (REG[f.t as usize], REG[f.b as usize], REG[f.i as usize]);
        // rax = k >= 1.
        a.mov_rr(W::B64, RAX, RCX);
        a.alu_rr(Alu::Sub, W::B64, RAX, i);
        a.alu_ri(Alu::Cmp, W::B64, RAX, MIN_FILL);
        a.jcc(Cond::B, copy);
        if self.metered {
            // rdx = k * n instructions (the `ja` of a rotated loop's last iteration does not run).
            a.imul_rri(W::B64, RDX, RAX, n as i32);
            if rotated {
                a.alu_ri(Alu::Sub, W::B64, RDX, 1);
            }
            a.alu_rr(Alu::Cmp, W::B64, BUDGET, RDX);
            a.jcc(Cond::B, copy);
            a.alu_rr(Alu::Sub, W::B64, BUDGET, RDX);
        }
        // rdx = the first byte; then t and i as the last iteration leaves them (t, b and i are
        // three registers; the stored one is neither t nor i).
        a.lea(RDX, mem_idx(b, i, 0, f.off as i32));
        a.lea(t, mem_idx(b, RCX, 0, -1));
        a.mov_rr(W::B64, i, RCX);
        a.mov_rr(W::B64, RCX, RAX);
        match f.value {
            FillValue::Reg(v) => a.mov_rr(W::B32, RAX, REG[v as usize]),
            FillValue::Imm(v) => a.mov_r32_imm(RAX, v as u32),
        }
        // `rep stosb` stores al at [rdi], rcx times (the direction flag is clear, as the ABI
        // keeps it); rdi holds r0, kept in the slot the copy would read its bound from (the copy
        // does not run after a fill).
        a.store(W::B64, ctx(OFF_LOOP_LIMIT), RDI);
        a.mov_rr(W::B64, RDI, RDX);
        a.raw(&[0xf3, 0xaa]);
        a.load(W::B64, RDI, ctx(OFF_LOOP_LIMIT));
        a.load(W::B64, DATA_NEG, ctx(OFF_DATA_NEG));
        a.jmp(after);
        a.bind(copy);
        if self.metered {
            a.load(W::B64, DATA_NEG, ctx(OFF_DATA_NEG));
        }
        a.jmp(top);
    }

    /// rcx = m (see `loops`) for the head check, or a jump to `fail` when it cannot be had.
    pub(super) fn loop_bound(
        a: &mut Asm,
        blind: Option<&mut Blinder>,
        fl: &FastLoop,
        i: u8,
        fail: Label,
    ) {
        // rax = n as the compare sees it.
        let w = if fl.wide { W::B64 } else { W::B32 };
        match (fl.limit, fl.wide, blind) {
            (Limit::Reg(r), _, _) => a.mov_rr(w, RAX, REG[r as usize]),
            (Limit::Imm(v), _, Some(b)) if worth_blinding(v as i64 as u64) => {
                b.load(a, w, RAX, v);
                // For the copy's compare (`FastCopy::limit_at`).
                a.store(W::B64, ctx(OFF_LOOP_LIMIT), RAX);
            }
            (Limit::Imm(v), true, _) => a.mov_imm64(RAX, v as i64 as u64),
            (Limit::Imm(v), false, _) => a.mov_r32_imm(RAX, v as u32),
        }
        if fl.counts_up {
            // i0 < n, and then m = n.
            a.alu_rr(Alu::Cmp, W::B64, i, RAX);
            a.jcc(Cond::Ae, fail);
            a.mov_rr(W::B64, RCX, RAX);
        } else {
            if let Some(s) = fl.stride {
                // A stride loop (see `loops`): its twin equals `i` here, and rax = n - d.
                if let Some(j) = s.twin {
                    a.alu_rr(Alu::Cmp, W::B64, REG[j as usize], i);
                    a.jcc(Cond::Ne, fail);
                }
                match s.d() {
                    0 => {}
                    d if d > 0 => a.alu_ri(Alu::Sub, W::B64, RAX, d as i32),
                    d => a.alu_ri(Alu::Add, W::B64, RAX, d.unsigned_abs() as i32),
                }
                if s.d() != 0 {
                    a.jcc(Cond::B, fail);
                }
            }
            // rcx = m = max(i + 1, n), unsigned; i + 1 must not wrap.
            a.mov_rr(W::B64, RCX, i);
            a.alu_ri(Alu::Add, W::B64, RCX, 1);
            a.jcc(Cond::B, fail);
            a.alu_rr(Alu::Cmp, W::B64, RCX, RAX);
            a.cmov(Cond::B, W::B64, RCX, RAX);
        }
    }

    /// The copy of a fast loop's chain, unrolled twice and metered as one chain of `2n`: the
    /// first half's back jump becomes a jump out when the loop ends (giving back the second
    /// half), the second half's goes back to the top; the covered accesses go unchecked. With
    /// less than `2n` of budget left it runs the ordinary chain instead (checked, or metered
    /// through `slow` when even `n` is not left). A `rotated` chain (see `loops`) leaves by its
    /// compare, one before its last instruction: the first half's compare jumps out (giving back
    /// the `ja` too) and its `ja` falls into the second half; the second half's compare, inverted,
    /// goes back to the top, and its fall-through leaves (`CondLayout::OverJa`).
    pub(super) fn fast_copy(&mut self, copy: LoopCopy) {
        let LoopCopy {
            head,
            n,
            top,
            slow,
            checked,
            accesses,
            rotated,
            limit_at,
            fill,
        } = copy;
        if let Some((at, f)) = fill {
            self.a.bind(at);
            // The chain's end: the instruction after it.
            let end = (0..n).fold(head, |pc, _| {
                pc + if is_lddw(&self.insns[pc]) { 2 } else { 1 }
            });
            let after = self.label(end);
            self.fill(f, n, rotated, top, after);
        }
        let slow2 = self.a.new_label();
        let exit = self.a.new_label();
        self.a.align(LOOP_ALIGN);
        self.a.bind(top);
        if self.metered {
            self.a.alu_ri(Alu::Sub, W::B64, BUDGET, 2 * n as i32);
            self.a.jcc(Cond::B, slow2);
        }
        self.fast = Some(FastCopy {
            head,
            top,
            accesses,
            limit_at,
        });
        self.block_n = 2 * n;
        self.block_k = 0;
        let mut next = head;
        let mut back = head;
        // The instruction that leaves the loop or goes back: the compare.
        let cmp_k = n - 1 - rotated as u32;
        for half in 0..2 {
            if let (1, Some((entries, _))) = (half, self.coverage) {
                // The first half's back jump was taken: the chain is entered again.
                self.count(entries, head);
            }
            let mut pc = head;
            let mut k = 0;
            while k < n {
                let idiom = self.idiom(pc, (n - k) as usize);
                let fused = idiom == 0 && k + 1 < n && self.mov_add(pc);
                if idiom > 0 {
                    self.block_k += idiom as u32 - 1;
                    k += idiom as u32 - 1;
                } else if fused {
                    self.block_k += 1;
                    k += 1;
                } else {
                    if k == cmp_k {
                        self.cond = match (half, rotated) {
                            (0, false) => Some(CondLayout::UnrollExit(exit)),
                            (0, true) => Some(CondLayout::UnrollLeave(exit)),
                            (_, true) => Some(CondLayout::OverJa(top)),
                            (_, false) => None,
                        };
                        if half == 0 {
                            back = pc;
                        }
                    }
                    self.insn(pc);
                    self.cond = None;
                    if rotated && k == cmp_k {
                        // The `ja`: the first half's falls into the second, the second's was
                        // laid out with the compare.
                        self.block_k += 1;
                        k += 1;
                        pc += 1;
                    }
                }
                self.block_k += 1;
                k += 1;
                pc += if idiom > 0 {
                    idiom
                } else if is_lddw(&self.insns[pc]) || fused {
                    2
                } else {
                    1
                };
            }
            next = pc;
        }
        self.fast = None;
        // The chain ended with its back jump, not taken: on to the instruction after it.
        let after = self.label(next);
        self.a.jmp(after);
        // The loop ended after the first half: the second half's n were charged, not run (nor
        // the first half's `ja` in a rotated chain).
        self.a.bind(exit);
        if let Some((_, fall)) = self.coverage {
            // The first half's back jump fell through.
            self.count(fall, back);
        }
        if !self.metered {
            self.a.jmp(after);
            return;
        }
        self.a
            .alu_ri(Alu::Add, W::B64, BUDGET, (n + rotated as u32) as i32);
        self.a.jmp(after);
        // Less than 2n left: r12 = rem - 2n. Charge one chain instead (r12 = rem - n) and run
        // it checked, or metered if rem < n.
        self.a.bind(slow2);
        self.a.alu_ri(Alu::Add, W::B64, BUDGET, n as i32);
        self.a.lea(RAX, mem(BUDGET, n as i32));
        self.a.alu_ri(Alu::Cmp, W::B64, RAX, n as i32);
        self.a.jcc(Cond::B, slow);
        self.a.jmp(checked);
    }
}
