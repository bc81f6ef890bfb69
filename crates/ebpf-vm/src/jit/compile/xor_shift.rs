//! `t = h; t >>= k; t ^= x; t ^= h` (a hash's mixing step, `h ^ h >> k` then `^ x`, as clang
//! orders it for BPF) with its two `xor`s taken in the other order: `t = (x ^ h) ^ (h >> k)`,
//! where the shift and the first `xor` both start from `h` at once. As written, `h` reaches the
//! result through the shift and both `xor`s (3 cycles); reordered, through two (2 cycles), and a
//! hash over a packet's words is one chain of these (parse_fixed: clang's x86 code orders them so).
//! One instruction that reads neither `t` nor writes `h` may stand between the shift and the
//! `xor`s (a load of `x`, say): it is emitted first.

use super::{Compiler, REG};
use crate::isa::opcodes::*;
use crate::isa::Insn;
use crate::jit::blind::worth_blinding;
use crate::jit::x86::*;

impl Compiler<'_> {
    /// The step starting at `pc` (a register move), emitted reordered; returns how many
    /// instructions it emitted (0: not the step, nothing emitted).
    #[inline(never)]
    pub(super) fn xor_shift(&mut self, pc: usize) -> usize {
        let insns = self.insns;
        let Some(&[mv, sh]) = insns.get(pc..pc + 2) else {
            return 0;
        };
        let cls = class(mv.opcode);
        let shift = sh.opcode ^ cls;
        if !matches!(cls, CLASS_ALU | CLASS_ALU64)
            || mv.opcode != cls | ALU_MOV | SRC_X
            || mv.off != 0
            || !matches!(shift, ALU_LSH | ALU_RSH | ALU_ARSH)
            || sh.dst != mv.dst
            || mv.src == mv.dst
        {
            return 0;
        }
        let (t, h) = (mv.dst, mv.src);
        let xor = cls | ALU_XOR | SRC_X;
        // The gap, if any: the two `xor`s follow at `at`.
        let gap = match insns.get(pc + 2) {
            Some(i) if i.opcode == xor && i.dst == t => None,
            Some(i) if self.gap_ok(pc + 2, i, t, h) => Some(pc + 2),
            _ => return 0,
        };
        let at = pc + 2 + gap.is_some() as usize;
        let n = at + 2 - pc;
        let Some(&[x1, x2]) = insns.get(at..at + 2) else {
            return 0;
        };
        let x = x1.src;
        let bits = if cls == CLASS_ALU64 { 64 } else { 32 };
        if x1.opcode != xor
            || x1.dst != t
            || x == t
            || x == h
            || x2.opcode != xor
            || x2.dst != t
            || x2.src != h
            || !(0..bits).contains(&sh.imm)
            || (self.blind.is_some() && worth_blinding(sh.imm as u64))
            || (pc + 1..pc + n).any(|p| self.shape.chains[p] != 0)
        {
            return 0;
        }
        if let Some(g) = gap {
            self.insn(g);
        }
        let w = if cls == CLASS_ALU64 { W::B64 } else { W::B32 };
        let op = match shift {
            ALU_LSH => Shift::Shl,
            ALU_RSH => Shift::Shr,
            _ => Shift::Sar,
        };
        let (t, h, x) = (REG[t as usize], REG[h as usize], REG[x as usize]);
        let a = &mut self.a;
        a.mov_rr(w, RAX, h);
        a.shift_ri(op, w, RAX, sh.imm as u8);
        a.mov_rr(w, t, x);
        a.alu_rr(Alu::Xor, w, t, h);
        a.alu_rr(Alu::Xor, w, t, RAX);
        n
    }

    /// Whether `insn` (at `pc`) may be emitted before the step's move and shift: a proved load or
    /// arithmetic that reads and writes no `t` and writes no `h`.
    fn gap_ok(&self, pc: usize, insn: &Insn, t: u8, h: u8) -> bool {
        let op = insn.opcode;
        let cls = class(op);
        let reads_t = match cls {
            CLASS_LDX => {
                if !self.proved[pc] || !matches!(op & 0xe0, MODE_MEM | MODE_MEMSX) {
                    return false;
                }
                insn.src == t
            }
            CLASS_ALU | CLASS_ALU64 => {
                // A move reads no `dst`; the other forms read it.
                let code = op & 0xf0;
                (code != ALU_MOV && insn.dst == t)
                    || (op & SRC_X != 0 && code != ALU_END && insn.src == t)
            }
            _ => return false,
        };
        !reads_t && insn.dst != t && insn.dst != h
    }
}
