//! The masked select `t = -t; t &= y; t ^= a` (t 0 or 1), clang's branch-free form of
//! `if (x & 1) a ^= y` (`t = x & 1` earlier), emitted as a test of t and a short jump over one
//! `xor`: `test t, t; mov t, a; jz +n; xor t, y`.
//!
//! Why: the mask form puts `and` and `xor` (two cycles) between y and the result, a branch puts
//! the `xor` alone (one); in `big` that is one cycle of each round's loop-carried chain (5 -> 4
//! cycles a round, clang's native code branches there). A branch is only right when it is
//! predicted, and the JIT cannot know the data; so it branches only where the program has already
//! branched on the same bit: every path to the `neg` goes through a conditional jump on t after t
//! was set to 0 or 1 (`if t == 0`, `if t != 0`, `if t & 1`). The new branch's outcome is then the
//! earlier one's, which the predictor has in its history: it adds no mispredictions of its own
//! (clang gives that shape to an `if`/`else` on a bit whose arms it both flattened: the one arm's
//! select as a jump over a move, the other's as a mask). Elsewhere the mask form stays.
//!
//! Exact for every value of y and a (the interpreter's result for t in {0, 1}): t = 0 gives a,
//! t = 1 gives y ^ a. `or` and `add` in place of `xor` are the same (0 op a = a; each commutes).
//! All of t's value is the result, so no temporary is left behind. One instruction between the
//! `neg` and the `and` that does not touch t (clang interleaves `y = b >> 7` there) is emitted
//! first, unchanged. A fused group counts all of its eBPF instructions in its block's metering
//! (the caller does) and none of them can trap.

use super::{Compiler, REG};
use crate::analysis::{all_five, liveness::uses_and_defs, Analysis};
use crate::isa::opcodes::*;
use crate::isa::Insn;
use crate::jit::x86::*;

/// A matched masked select: after its `n` instructions, t = (t != 0 ? y op a : a), where `op` is
/// `xor`, `or` or `add`; `between`, an instruction between the `neg` and the `and` (pc + 1)
/// that touches no t.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Select {
    pub n: usize,
    pub wide: bool,
    pub t: u8,
    pub y: u8,
    pub a: u8,
    pub op: Alu,
    pub between: bool,
}

/// The instructions at `pc` as `t = -t; [one ALU instruction without t]; t &= y; t op= a` with
/// y and a registers other than t, all three of t's instructions ALU64 or all ALU, op `xor`, `or`
/// or `add`. Whether t is 0 or 1, and jump targets inside, are the caller's to check.
pub(super) fn select_idiom(insns: &[Insn], pc: usize) -> Option<Select> {
    let neg = insns.get(pc)?;
    let cls = class(neg.opcode);
    if !matches!(cls, CLASS_ALU | CLASS_ALU64) || neg.opcode != cls | ALU_NEG {
        return None;
    }
    let t = neg.dst;
    let mut k = pc + 1;
    let next = insns.get(k)?;
    let between = next.opcode != cls | ALU_AND | SRC_X || next.dst != t;
    if between {
        let c = class(next.opcode);
        let reads_t = next.opcode & SRC_X != 0 && next.src == t;
        if !matches!(c, CLASS_ALU | CLASS_ALU64) || next.dst == t || reads_t {
            return None;
        }
        k += 1;
    }
    let (and, last) = (insns.get(k)?, insns.get(k + 1)?);
    let op = match last.opcode ^ cls {
        o if o == ALU_XOR | SRC_X => Alu::Xor,
        o if o == ALU_OR | SRC_X => Alu::Or,
        o if o == ALU_ADD | SRC_X => Alu::Add,
        _ => return None,
    };
    if and.opcode != cls | ALU_AND | SRC_X || and.dst != t || and.src == t {
        return None;
    }
    if last.dst != t || last.src == t {
        return None;
    }
    Some(Select {
        n: k + 2 - pc,
        wide: cls == CLASS_ALU64,
        t,
        y: and.src,
        a: last.src,
        op,
        between,
    })
}

impl Compiler<'_> {
    /// The masked select at `pc` (see the file's comment) within the `avail` instructions left
    /// in its block, when t is 0 or 1 and was branched on; returns how many instructions it
    /// emitted (0: none, nothing was emitted).
    #[inline(never)]
    pub(super) fn select(&mut self, pc: usize, avail: usize) -> usize {
        let Some(s) = select_idiom(self.insns, pc) else {
            return 0;
        };
        if s.n > avail || (pc + 1..pc + s.n).any(|p| self.shape.chains[p] != 0) {
            return 0;
        }
        let Some(at) = self.analysis.program.index_of_slot(pc) else {
            return 0;
        };
        if !branched_bit(self.analysis, at, s.t) {
            return 0;
        }
        if s.between {
            // Through `insn`, `alu`'s one caller (kept so, it stays inlined there).
            self.insn(pc + 1);
        }
        let w = if s.wide { W::B64 } else { W::B32 };
        let (t, y, a) = (REG[s.t as usize], REG[s.y as usize], REG[s.a as usize]);
        let asm = &mut self.a;
        asm.test_rr(w, t, t);
        // A move leaves the flags as they are; in 32 bits it zero-extends as the ALU class does.
        asm.mov_rr(w, t, a);
        let skip = asm.jcc_short(Cond::E);
        asm.alu_rr(s.op, w, t, y);
        asm.bind_short(skip);
        s.n
    }
}

/// Whether register `t` is 0 or 1 at logical instruction `at`, and a conditional jump on it came
/// after it was set: on every path to `at`, going back, a jump `if t == 0`, `if t != 0` (or
/// against 1) or `if t & 1` comes before the last write to t, which is `t &= 1`, `t >>= 63` (31
/// in 32 bits) or `t = 0` / `t = 1`. A search back over the analysis' blocks, each path followed
/// until it decides; false when it would look at more than `STEPS` instructions or `PATHS`
/// paths, or reaches a function's entry or a block nothing enters.
fn branched_bit(analysis: &Analysis, at: usize, t: u8) -> bool {
    const STEPS: usize = 64;
    const PATHS: usize = 16;
    let (p, cfg) = (&analysis.program, &analysis.cfg);
    let bit = 1u16 << t;
    // Each path: its block, where to look back from (exclusive), whether it passed a jump on t.
    let first = cfg.block_of(at);
    let (mut seen, mut work) = ([(0usize, false); PATHS], [(0usize, 0usize, false); PATHS]);
    let (mut n_seen, mut n_work) = (0, 1);
    work[0] = (first, at, false);
    let mut steps = 0;
    while n_work > 0 {
        n_work -= 1;
        let (block, end, mut tested) = work[n_work];
        let start = cfg.blocks[block].start;
        let mut decided = false;
        for i in (start..end).rev() {
            steps += 1;
            if steps > STEPS {
                return false;
            }
            let insn = p.get(i);
            if tests_bit(insn.opcode, insn.dst, insn.constant, t) {
                tested = true;
                continue;
            }
            let (_, defs) = uses_and_defs(p, cfg.flows[i], i, &all_five);
            if defs & bit != 0 {
                if !(tested && sets_bit(insn.opcode, insn.constant)) {
                    return false;
                }
                decided = true;
                break;
            }
        }
        if decided {
            continue;
        }
        let preds = cfg.preds(block);
        if preds.is_empty() || cfg.is_entry(block) {
            return false;
        }
        for &pb in preds {
            let pb = pb as usize;
            if seen[..n_seen].contains(&(pb, tested)) {
                continue;
            }
            if n_seen == PATHS {
                return false;
            }
            seen[n_seen] = (pb, tested);
            n_seen += 1;
            work[n_work] = (pb, cfg.blocks[pb].end, tested);
            n_work += 1;
        }
    }
    true
}

/// Whether the instruction is a conditional jump on register `t` whose outcome, t being 0 or 1,
/// is t's value or its negation: `t == k`, `t != k` (k 0 or 1) or `t & k` (k odd), 64 or 32 bits.
fn tests_bit(opcode: u8, dst: u8, imm: i64, t: u8) -> bool {
    let cls = class(opcode);
    if !matches!(cls, CLASS_JMP | CLASS_JMP32) || dst != t || opcode & SRC_X != 0 {
        return false;
    }
    match opcode & 0xf0 {
        JMP_JEQ | JMP_JNE => imm == 0 || imm == 1,
        JMP_JSET => imm & 1 != 0,
        _ => false,
    }
}

/// Whether the instruction, which writes its destination, leaves it 0 or 1 whatever it held:
/// `&= 1`, `>>= 63` (64-bit) or `>>= 31` (32-bit), or a move of 0 or 1.
fn sets_bit(opcode: u8, imm: i64) -> bool {
    let cls = class(opcode);
    if !matches!(cls, CLASS_ALU | CLASS_ALU64) || opcode & SRC_X != 0 {
        return false;
    }
    match opcode & 0xf0 {
        ALU_AND => imm == 1,
        ALU_RSH => imm == if cls == CLASS_ALU64 { 63 } else { 31 },
        ALU_MOV => imm == 0 || imm == 1,
        _ => false,
    }
}
