//! A proved copy loop as one `rep movsq`, in unmetered code: clang's form of `for (; i + 8 <=
//! len; i += 8) *(u64 *)(dst + i) = *(u64 *)(src + i)` with a constant length,
//!
//! ```text
//! head: c = i; t = b; t += c; v = *(u64 *)(t + so); *(u64 *)(t + do) = v; i += 8;
//!       if c < K goto head
//! ```
//!
//! (memcopy's first loop). The loop runs N iterations, c = i0, i0 + 8, ... up to the first c that
//! is not below K: N = 1 when i0 >= K, else (K - i0 + 7) / 8 + 1. Every iteration copies one
//! word forward, after the words before it, which is what `rep movsq` does (direction flag clear,
//! as the ABI keeps it) whatever the overlap; then i = i0 + 8N, c = i - 8, t = b + c, and v, the
//! last word loaded, must be dead after the loop (the liveness analysis says so; else no fusion).
//! The verifier proved both accesses for every iteration, so the copy touches nothing else.
//!
//! Why: a word per iteration at about a cycle each (memcopy_fixed's 1,025 iterations) where
//! clang's native code copies 64 bytes an iteration with vector moves; a string copy moves tens
//! of bytes a cycle. Below `MIN_WORDS` words the loop runs as it is (the string copy's start-up
//! costs more): the preamble emitted here decides at run time and enters the loop's own code,
//! which follows it, otherwise.

use super::{blinded, ctx, Compiler, DATA_NEG, REG};
use crate::isa::opcodes::*;
use crate::isa::Insn;
use crate::jit::frame::OFF_DATA_NEG;
use crate::jit::x86::*;

/// Fewer words than this are copied by the loop itself.
const MIN_WORDS: i32 = 32;

/// A matched copy loop (see the file's comment); registers are eBPF registers.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct CopyLoop {
    pub i: u8,
    pub c: u8,
    pub b: u8,
    pub t: u8,
    pub v: u8,
    pub so: i16,
    pub dof: i16,
    pub k: i32,
}

/// The seven instructions at `head` as the copy loop, its compare jumping back to `head`, with
/// `i`, `c`, `b`, `t` and `v` five registers and K positive.
pub(super) fn copy_loop(insns: &[Insn], head: usize) -> Option<CopyLoop> {
    let [mv_c, mv_t, add, ld, st, inc, cmp] = insns.get(head..head + 7)? else {
        return None;
    };
    let (i, c, t, b, v) = (mv_c.src, mv_c.dst, mv_t.dst, mv_t.src, ld.dst);
    let regs = [i, c, t, b, v];
    let distinct = (0..5).all(|x| (x + 1..5).all(|y| regs[x] != regs[y]));
    let mov = CLASS_ALU64 | ALU_MOV | SRC_X;
    let ok = distinct
        && mv_c.opcode == mov
        && mv_c.off == 0
        && mv_t.opcode == mov
        && mv_t.off == 0
        && *add == Insn::new(CLASS_ALU64 | ALU_ADD | SRC_X, t, c, 0, 0)
        && ld.opcode == CLASS_LDX | MODE_MEM | SIZE_DW
        && ld.src == t
        && st.opcode == CLASS_STX | MODE_MEM | SIZE_DW
        && st.dst == t
        && st.src == v
        && *inc == Insn::new(CLASS_ALU64 | ALU_ADD, i, 0, 0, 8)
        && cmp.opcode == CLASS_JMP | JMP_JLT | SRC_K
        && cmp.dst == c
        && cmp.imm > 0
        && head as i64 == (head + 7) as i64 + cmp.off as i64;
    ok.then_some(CopyLoop {
        i,
        c,
        b,
        t,
        v,
        so: ld.off,
        dof: st.off,
        k: cmp.imm,
    })
}

impl Compiler<'_> {
    /// At a loop head, before its code: the copy loop starting there, when it is one whose two
    /// accesses the verifier proved and the code is unmetered and uncounted, as the preamble
    /// that copies with `rep movsq` and goes on after the loop (see the file's comment), or falls
    /// through into the loop's code for a short copy. Clobbers rax, rcx and (reloaded) rdx.
    /// Returns whether it emitted one.
    pub(super) fn copy_loop(&mut self, head: usize) -> bool {
        if self.metered || self.coverage.is_some() || self.shape.chains[head] != 7 {
            return false;
        }
        let Some(cl) = copy_loop(self.insns, head) else {
            return false;
        };
        if !self.proved[head + 3] || !self.proved[head + 4] || self.live_after(head + 6, cl.v) {
            return false;
        }
        let [i, c, b, t] = [cl.i, cl.c, cl.b, cl.t].map(|r| REG[r as usize]);
        let after = self.label(head + 7);
        let (a, blind) = (&mut self.a, &mut self.blind);
        let (one, count, plain) = (a.new_label(), a.new_label(), a.new_label());
        // rcx = N.
        a.mov_rr(W::B64, RCX, i);
        if !blinded(a, blind, W::B64, RAX, cl.k) {
            a.mov_r64_simm(RAX, cl.k);
        }
        a.alu_rr(Alu::Cmp, W::B64, RCX, RAX);
        a.jcc(Cond::Ae, one);
        // (K - i0 + 15) / 8 = (K - i0 + 7) / 8 + 1; K < 2^31 and i0 < K: no overflow.
        a.alu_rr(Alu::Sub, W::B64, RAX, RCX);
        a.alu_ri(Alu::Add, W::B64, RAX, 15);
        a.shift_ri(Shift::Shr, W::B64, RAX, 3);
        a.mov_rr(W::B64, RCX, RAX);
        a.jmp(count);
        a.bind(one);
        a.mov_r32_imm(RCX, 1);
        a.bind(count);
        a.alu_ri(Alu::Cmp, W::B64, RCX, MIN_WORDS);
        a.jcc(Cond::B, plain);
        // rax = i0, rdx = N; rsi and rdi (r1 and r0) kept on the stack (nothing here addresses
        // the frame through rsp) while they hold the source and the destination.
        a.mov_rr(W::B64, RAX, i);
        a.mov_rr(W::B64, RDX, RCX);
        a.push(RSI);
        a.push(RDI);
        let src = mem_idx(b, RAX, 0, cl.so as i32);
        let dst = mem_idx(b, RAX, 0, cl.dof as i32);
        // Whichever of the two is b is written last.
        if b == RSI {
            a.lea(RDI, dst);
            a.lea(RSI, src);
        } else {
            a.lea(RSI, src);
            a.lea(RDI, dst);
        }
        a.raw(&[0xf3, 0x48, 0xa5]); // rep movsq
        a.pop(RDI);
        a.pop(RSI);
        a.lea(c, mem_idx(RAX, RDX, 3, -8));
        a.lea(t, mem_idx(b, c, 0, 0));
        a.lea(i, mem_idx(RAX, RDX, 3, 0));
        a.load(W::B64, DATA_NEG, ctx(OFF_DATA_NEG));
        a.jmp(after);
        a.bind(plain);
        true
    }
}
