//! A proved byte-sum loop summed 16 bytes at a time with `psadbw`, in unmetered code: clang's
//! form of `for (; i < n; i++) acc += p[i]` with a constant n,
//!
//! ```text
//! head: t = b; t += i; t = *(u8 *)(t + off); acc += t; i += 1;
//!       if i != K goto head        (or: if i == K goto out; goto head)
//! ```
//!
//! (sieve's count loop). From i0 < K it runs K - i0 iterations and leaves acc increased by the
//! bytes at b + off + i0 .. b + off + K, i = K and t the last of them: what the preamble here
//! computes, the bytes summed by `psadbw` against zero (each 16 bytes as two sums of eight) into
//! two 64-bit lanes, a byte loop for the last few. The verifier proved the load for every
//! iteration, so the wide loads read no byte the loop would not. Below `MIN_BYTES` bytes, or
//! when i0 is not below K (a loop that would wrap), the preamble enters the loop's own code,
//! which follows it.
//!
//! Why: the loop adds one byte a cycle into one register (a one-cycle loop-carried add), where
//! clang's native code unrolls eight times with a tree of adds; here 16 bytes take one vector
//! load, one `psadbw` and one `paddq`. xmm0-xmm2 are scratch (caller-saved in the ABIs that call
//! the code; nothing else in it uses vector registers).

use super::{blinded, ctx, Compiler, DATA_NEG, REG};
use crate::isa::opcodes::*;
use crate::isa::Insn;
use crate::jit::frame::OFF_DATA_NEG;
use crate::jit::x86::*;

/// Fewer bytes than this are summed by the loop itself.
const MIN_BYTES: i32 = 64;
/// Upper bound on the preamble's bytes (about 175 with a blinded bound rebuilt in place).
pub const PREAMBLE_BYTES: usize = 192;

/// A matched byte-sum loop; registers are eBPF registers.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct SumLoop {
    pub n: usize,
    pub t: u8,
    pub b: u8,
    pub i: u8,
    pub acc: u8,
    pub off: i16,
    pub k: i32,
}

/// The instructions at `head` as the byte-sum loop (six, ending `if i != K goto head`, or seven,
/// `if i == K goto +1; goto head`), 64-bit, with t, b, i and acc four registers and K positive.
pub(super) fn sum_loop(insns: &[Insn], head: usize) -> Option<SumLoop> {
    let [mv, add, ld, sum, inc, cmp] = insns.get(head..head + 6)? else {
        return None;
    };
    let (t, b, i, acc) = (mv.dst, mv.src, add.src, sum.dst);
    let regs = [t, b, i, acc];
    let distinct = (0..4).all(|x| (x + 1..4).all(|y| regs[x] != regs[y]));
    let back = |at: usize, off: i16| head as i64 == at as i64 + 1 + off as i64;
    let n = match cmp.opcode {
        op if op == CLASS_JMP | JMP_JNE | SRC_K && back(head + 5, cmp.off) => 6,
        op if op == CLASS_JMP | JMP_JEQ | SRC_K && cmp.off == 1 => {
            let ja = insns.get(head + 6)?;
            if ja.opcode != CLASS_JMP | JMP_JA || !back(head + 6, ja.off) {
                return None;
            }
            7
        }
        _ => return None,
    };
    let ok = distinct
        && mv.opcode == CLASS_ALU64 | ALU_MOV | SRC_X
        && mv.off == 0
        && *add == Insn::new(CLASS_ALU64 | ALU_ADD | SRC_X, t, i, 0, 0)
        && ld.opcode == CLASS_LDX | MODE_MEM | SIZE_B
        && ld.dst == t
        && ld.src == t
        && *sum == Insn::new(CLASS_ALU64 | ALU_ADD | SRC_X, acc, t, 0, 0)
        && *inc == Insn::new(CLASS_ALU64 | ALU_ADD, i, 0, 0, 1)
        && cmp.dst == i
        && cmp.imm > 0;
    ok.then_some(SumLoop {
        n,
        t,
        b,
        i,
        acc,
        off: ld.off,
        k: cmp.imm,
    })
}

impl Compiler<'_> {
    /// At a loop head, before its code: the byte-sum loop starting there, when its load is
    /// proved and the code is unmetered and uncounted, as the preamble that sums with `psadbw`
    /// and goes on after the loop (see the file's comment), or falls through into the loop's
    /// code. Clobbers rax, rcx, (reloaded) rdx and xmm0-xmm2. Returns whether it emitted one.
    pub(super) fn sum_loop(&mut self, head: usize) -> bool {
        if self.metered || self.coverage.is_some() {
            return false;
        }
        let Some(s) = sum_loop(self.insns, head) else {
            return false;
        };
        if self.shape.chains[head] as usize != s.n || !self.proved[head + 2] {
            return false;
        }
        let [t, b, i, acc] = [s.t, s.b, s.i, s.acc].map(|r| REG[r as usize]);
        let (after, pre) = (self.label(head + s.n), self.a.pos());
        let (a, blind) = (&mut self.a, &mut self.blind);
        let (plain, wide, tail, done) =
            (a.new_label(), a.new_label(), a.new_label(), a.new_label());
        // rax = K - i0, the bytes, when i0 < K and they are enough.
        if !blinded(a, blind, W::B64, RAX, s.k) {
            a.mov_r64_simm(RAX, s.k);
        }
        a.alu_rr(Alu::Cmp, W::B64, i, RAX);
        a.jcc(Cond::Ae, plain);
        a.alu_rr(Alu::Sub, W::B64, RAX, i);
        a.alu_ri(Alu::Cmp, W::B64, RAX, MIN_BYTES);
        a.jcc(Cond::B, plain);
        // rdx = the first byte, rcx = the bytes; i = K.
        a.lea(RDX, mem_idx(b, i, 0, s.off as i32));
        a.mov_rr(W::B64, RCX, RAX);
        a.alu_rr(Alu::Add, W::B64, i, RAX);
        a.raw(&[0x66, 0x0f, 0xef, 0xc9]); // pxor xmm1, xmm1
        a.raw(&[0x66, 0x0f, 0xef, 0xd2]); // pxor xmm2, xmm2
        a.bind(wide);
        a.alu_ri(Alu::Cmp, W::B64, RCX, 16);
        a.jcc(Cond::B, tail);
        a.raw(&[0xf3, 0x0f, 0x6f, 0x02]); // movdqu xmm0, [rdx]
        a.raw(&[0x66, 0x0f, 0xf6, 0xc1]); // psadbw xmm0, xmm1
        a.raw(&[0x66, 0x0f, 0xd4, 0xd0]); // paddq xmm2, xmm0
        a.alu_ri(Alu::Add, W::B64, RDX, 16);
        a.alu_ri(Alu::Sub, W::B64, RCX, 16);
        a.jmp(wide);
        a.bind(tail);
        // rax = the two lanes' sum.
        a.raw(&[0x66, 0x0f, 0x70, 0xc2, 0x4e]); // pshufd xmm0, xmm2, 0x4e (halves swapped)
        a.raw(&[0x66, 0x0f, 0xd4, 0xc2]); // paddq xmm0, xmm2
        a.raw(&[0x66, 0x48, 0x0f, 0x7e, 0xc0]); // movq rax, xmm0
        let bytes = a.new_label();
        a.bind(bytes);
        a.test_rr(W::B64, RCX, RCX);
        a.jcc(Cond::E, done);
        a.load_zx(1, t, mem(RDX, 0));
        a.alu_rr(Alu::Add, W::B64, RAX, t);
        a.alu_ri(Alu::Add, W::B64, RDX, 1);
        a.alu_ri(Alu::Sub, W::B64, RCX, 1);
        a.jmp(bytes);
        a.bind(done);
        a.alu_rr(Alu::Add, W::B64, acc, RAX);
        a.load_zx(1, t, mem(RDX, -1));
        a.load(W::B64, DATA_NEG, ctx(OFF_DATA_NEG));
        a.jmp(after);
        a.bind(plain);
        debug_assert!(a.pos() - pre <= PREAMBLE_BYTES);
        true
    }
}
