//! A conditional jump over one register instruction, `if c goto +1; r += k` (or `r -= k`,
//! `r = s`), as a conditional move: the compare, the value the instruction would give, then
//! `cmov` on the way that does not jump. A jump that data decides (strcmp's `if a[k] <= b[k]`
//! counting ordered pairs) is mispredicted about as often as not, some fifteen cycles each; the
//! move costs two. Unmetered code only: metered, the two ways charge different counts.

use super::control::{invert, is_cond_jump};
use super::snippets::Snippet;
use super::{Compiler, REG};
use crate::analysis::cfg::Block;
use crate::isa::opcodes::*;
use crate::jit::blind::worth_blinding;
use crate::jit::x86::*;

impl Compiler<'_> {
    /// The jump at `pc` and the instruction after it as a conditional move, when it jumps over
    /// that one instruction alone (a block of its own, which other jumps may enter: for them it
    /// is emitted out of line too, `Snippet::Selected`). Returns whether it emitted the pair.
    /// Asked of every conditional jump: the test of the opcode is inlined into the caller.
    #[inline(always)]
    pub(super) fn jump_as_cmov(&mut self, pc: usize) -> bool {
        is_cond_jump(&self.insns[pc]) && self.jump_as_cmov_at(pc)
    }

    #[inline(never)]
    fn jump_as_cmov_at(&mut self, pc: usize) -> bool {
        if self.metered
            || self.coverage.is_some()
            || self.shape.target(pc) != Some(pc + 2)
            || self.shape.chains[pc + 1] != 1
            || self.shape.loop_heads[pc + 1]
            || !self.alone_after(pc)
        {
            return false;
        }
        let (jump, body) = (self.insns[pc], self.insns[pc + 1]);
        let cls = class(body.opcode);
        let wide = cls == CLASS_ALU64;
        // A blinded constant is rebuilt in rax by its own instructions: not here.
        let plain = |k: i32| self.blind.is_none() || !worth_blinding(k as i64 as u64);
        let d = REG[body.dst as usize];
        // The value `body` gives: `[d + k]` or a register.
        let sum = match body.opcode & !(CLASS_ALU64 ^ CLASS_ALU) {
            _ if !matches!(cls, CLASS_ALU | CLASS_ALU64) || body.off != 0 => return false,
            op if op == CLASS_ALU | ALU_ADD | SRC_K && plain(body.imm) => Some(body.imm),
            op if op == CLASS_ALU | ALU_SUB | SRC_K && body.imm != i32::MIN && plain(body.imm) => {
                Some(-body.imm)
            }
            op if op == CLASS_ALU | ALU_MOV | SRC_X => None,
            _ => return false,
        };
        let cc = self.compare(pc, &jump);
        // Neither `lea` nor `mov` touches the flags. A 32-bit result is zero-extended in rax
        // and moved whole: a 32-bit `cmov` would clear d's upper half even when it does not move.
        let keep = invert(cc);
        let a = &mut self.a;
        match sum {
            Some(k) if wide => a.lea(RAX, mem(d, k)),
            Some(k) => a.lea32(RAX, mem(d, k)),
            None if wide => a.cmov(keep, W::B64, d, REG[body.src as usize]),
            None => a.mov_rr(W::B32, RAX, REG[body.src as usize]),
        }
        if sum.is_some() || !wide {
            a.cmov(keep, W::B64, d, RAX);
        }
        self.snippets.push(Snippet::Selected { pc: pc + 1 });
        true
    }

    /// Whether the instruction after the jump at `pc` is a block of its own that no function
    /// starts at (other jumps may go there: they go to its copy out of line).
    fn alone_after(&self, pc: usize) -> bool {
        let (program, cfg) = (&self.analysis.program, &self.analysis.cfg);
        let Some(i) = program.index_of_slot(pc) else {
            return false;
        };
        let b = cfg.block_of(i + 1);
        cfg.blocks[b]
            == (Block {
                start: i + 1,
                end: i + 2,
            })
            && !cfg.is_entry(b)
    }
}
