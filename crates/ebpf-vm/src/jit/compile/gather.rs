//! A value gathered from bytes, as clang's BPF backend writes `p[0] << 8 | p[1]` and `p[0] << 24
//! | p[1] << 16 | p[2] << 8 | p[3]` (it has no unaligned loads to merge them into): byte loads
//! from consecutive offsets of one base, each shifted by a multiple of 8 and or-ed together. In
//! proved code (mode verified, no meter, no coverage) such a tree is one load of 2 or 4 bytes and
//! a byte swap (`movzx` and `rol` by 8, or `mov` and `bswap`), or the load alone when the bytes
//! are or-ed in little-endian order.
//!
//! Only trees whose instructions follow one another are taken: 4 (two bytes: two loads, a shift,
//! an `or`) or 10 (four bytes) starting at a proved byte load, each instruction a part of the
//! tree, which is what can be found at no cost to loads without one (a test of the opcodes after
//! the byte load). clang also interleaves gathers with other work and spills halves of them to
//! the stack; a pass following values through whole runs found more (parse_fixed 405 -> 375 ns a
//! run, against 388 ns for these alone) but cost a third of the JIT's part of a verified load
//! (BENCHMARKS.md, "The machine of session 14").
//!
//! The tree is taken when
//! - its loads are proved and go through one base register not written before the last of them,
//!   at offsets `o..o + n`, each shifted (`<<=` by an immediate, 32 or 64 bits: the values are
//!   below 2^32 either way) by `8 * (n - 1 - i)` for offset `o + i` (big-endian) or by `8 * i`
//!   (little-endian);
//! - every instruction's result is read once, by a later one of the tree, but the last one's
//!   (an `or`, the root): with `n - 1` reads among `n` results, the instructions form one tree;
//! - the registers the pieces leave behind are not live after it.
//!
//! Then the load goes at the first instruction's place into the root's register (the base holds
//! there what every byte load read), and the others emit nothing: their registers hold results
//! nobody reads, and no instruction in proved unmetered code can trap, so no trap or budget stop
//! sees the registers in between.

use crate::isa::opcodes::*;

use super::{Compiler, REG};
use crate::jit::x86::{Shift, W};

/// No tree result held (`holds`).
const NONE: u8 = u8::MAX;

#[derive(Clone, Copy)]
enum Part {
    Byte { off: i16 },
    Shl { of: u8, k: u32 },
    Or,
}

/// The load a gather becomes: `size` bytes at `base + off` into `dst`, swapped when `swap`.
struct Load {
    base: u8,
    off: i16,
    size: u32,
    swap: bool,
    dst: u8,
}

impl Compiler<'_> {
    /// At a proved byte load: a gather of the 4 or 10 instructions from `pc` on, emitted as one
    /// load; how many instructions it took (0: none, nothing emitted).
    #[inline(never)]
    pub(super) fn gather(&mut self, pc: usize) -> usize {
        for n in [4, 10] {
            if let Some(g) = self.gather_of(pc, n) {
                let m = self.operand(pc, g.base, g.off, g.size, false);
                let d = REG[g.dst as usize];
                self.a.load_zx(g.size, d, m);
                match (g.swap, g.size) {
                    (true, 2) => self.a.shift_ri(Shift::Rol, W::B16, d, 8),
                    (true, _) => self.a.bswap(W::B32, d),
                    _ => {}
                }
                return n;
            }
        }
        0
    }

    /// The gather that the `n` instructions from `pc` on are, if they are one (see the module's
    /// notes).
    fn gather_of(&mut self, pc: usize, n: usize) -> Option<Load> {
        let insns = self.insns.get(pc..pc + n)?;
        let bytes = n.div_ceil(3);
        // The second instruction loads the other byte or shifts this one, the last is an `or`:
        // most byte loads are turned away here.
        let alu_or =
            |op: u8| matches!(class(op), CLASS_ALU | CLASS_ALU64) && op & 0xf8 == ALU_OR | SRC_X;
        let second = insns[1].opcode;
        if !alu_or(insns[n - 1].opcode)
            || !(second == CLASS_LDX | MODE_MEM | SIZE_B
                || matches!(class(second), CLASS_ALU | CLASS_ALU64) && second & 0xf8 == ALU_LSH)
        {
            return None;
        }
        // The opcodes first: `bytes` byte loads, `bytes - 1` register `or`s, shifts by an
        // immediate; no jump lands inside.
        let mut counts = [0usize; 2];
        for (i, insn) in insns.iter().enumerate() {
            match (insn.opcode, class(insn.opcode)) {
                (op, _) if op == CLASS_LDX | MODE_MEM | SIZE_B => counts[0] += 1,
                (op, CLASS_ALU | CLASS_ALU64) if op & 0xf8 == ALU_OR | SRC_X => counts[1] += 1,
                (op, CLASS_ALU | CLASS_ALU64) if op & 0xf8 == ALU_LSH => {}
                _ => return None,
            }
            if i > 0 && self.shape.chains[pc + i] != 0 {
                return None;
            }
        }
        if counts != [bytes, bytes - 1] {
            return None;
        }
        // Follow the values: which part each register holds, how often each part is read.
        let mut parts = [(Part::Or, 0u8, 0u32); 10];
        let mut holds = [NONE; 16];
        let mut written = 0u16;
        let base = insns[0].src;
        for (j, insn) in insns.iter().enumerate() {
            let (d, s) = ((insn.dst & 15) as usize, (insn.src & 15) as usize);
            let part = match class(insn.opcode) {
                CLASS_LDX => {
                    if insn.src != base || written & 1 << s != 0 || !self.proved[pc + j] {
                        return None;
                    }
                    Part::Byte { off: insn.off }
                }
                _ if insn.opcode & 0xf0 == ALU_LSH => {
                    let of = holds[d];
                    if of == NONE || !matches!(parts[of as usize].0, Part::Byte { .. }) {
                        return None;
                    }
                    if !matches!(insn.imm, 8 | 16 | 24) {
                        return None;
                    }
                    parts[of as usize].2 += 1;
                    Part::Shl {
                        of,
                        k: insn.imm as u32,
                    }
                }
                _ => {
                    let (a, b) = (holds[d], holds[s]);
                    if a == NONE || b == NONE || d == s {
                        return None;
                    }
                    parts[a as usize].2 += 1;
                    parts[b as usize].2 += 1;
                    Part::Or
                }
            };
            parts[j] = (part, insn.dst, 0);
            holds[d] = j as u8;
            written |= 1 << d;
        }
        let parts = &parts[..n];
        if !matches!(parts[n - 1].0, Part::Or) || parts[..n - 1].iter().any(|p| p.2 != 1) {
            return None;
        }
        // Each byte's place: its shift, if a shift reads it.
        let mut shift_of = [0u32; 10];
        for &(part, _, _) in parts {
            if let Part::Shl { of, k } = part {
                shift_of[of as usize] = k;
            }
        }
        let first = parts
            .iter()
            .filter_map(|p| match p.0 {
                Part::Byte { off } => Some(off as i32),
                _ => None,
            })
            .min()?;
        let mut at_byte = [None; 4];
        for (j, &(part, _, _)) in parts.iter().enumerate() {
            if let Part::Byte { off } = part {
                let i = (off as i32 - first) as usize;
                if i >= bytes || at_byte[i].is_some() {
                    return None;
                }
                at_byte[i] = Some(shift_of[j]);
            }
        }
        let big = (0..bytes).all(|i| at_byte[i] == Some(8 * (bytes - 1 - i) as u32));
        let little = (0..bytes).all(|i| at_byte[i] == Some(8 * i as u32));
        if !big && !little {
            return None;
        }
        // What the pieces leave in registers must be dead after the tree.
        let last = pc + n - 1;
        for (j, &(_, dst, _)) in parts[..n - 1].iter().enumerate() {
            if holds[dst as usize] == j as u8
                && !self.overwritten_next(last + 1, dst)
                && self.live_after(last, dst)
            {
                return None;
            }
        }
        Some(Load {
            base,
            off: i16::try_from(first).ok()?,
            size: bytes as u32,
            swap: big,
            dst: parts[n - 1].1,
        })
    }

    /// Whether one of the few instructions from `at` on, straight on in one chain, writes `r`
    /// before any reads it: dead then, without asking liveness (clang's temporaries mostly are).
    fn overwritten_next(&self, at: usize, r: u8) -> bool {
        const LOOK: usize = 3;
        for p in at..(at + LOOK).min(self.insns.len()) {
            let insn = &self.insns[p];
            let op = insn.opcode;
            let x = op & SRC_X != 0;
            let (reads, writes) = match class(op) {
                CLASS_LDX => (insn.src == r, insn.dst == r),
                CLASS_ALU | CLASS_ALU64 if op & 0xf0 == ALU_MOV => {
                    (x && insn.src == r, insn.dst == r)
                }
                CLASS_ALU | CLASS_ALU64 => (insn.dst == r || x && insn.src == r, insn.dst == r),
                CLASS_ST => (insn.dst == r, false),
                CLASS_STX if op & 0xe0 != MODE_ATOMIC => (insn.dst == r || insn.src == r, false),
                _ => return false,
            };
            if reads || (p > at && self.shape.chains[p] != 0) {
                return false;
            }
            if writes {
                return true;
            }
        }
        false
    }
}
