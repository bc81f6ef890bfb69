//! Compare trees on a masked register as jump tables, in unmetered code.
//!
//! clang's BPF backend emits no jump tables: a C `switch` over a small range becomes a tree of
//! conditional jumps on one register (the bench's `dispatch`: `w4 &= 15`, then fifteen jumps on
//! w4, four on every case's path), where clang's x86 code loads the case's address from a table
//! and jumps there once. With the register just masked to `0..=k` (`r &= k`), each value's path
//! through the tree is known at compile time: the JIT finds, for every value, the first
//! instruction its path leaves the tree to, and jumps there through a table of `k + 1` entries.
//!
//! The tree is the conditional jumps comparing that register with an immediate met from the root
//! (and the `ja`s between them): none writes anything, so jumping straight to where a value's path
//! ends is exact whatever else jumps into the tree (its instructions keep their own code). Only
//! unmetered code (no budget counts the skipped jumps) without coverage (no fall-through counted),
//! and only where the mask is the root's one way in: the instruction before it, and no jump to the
//! root (it heads no chain).

use super::Compiler;
use super::REG;
use crate::isa::opcodes::*;
use crate::isa::Insn;
use crate::jit::x86::*;

/// Most table entries (a mask of at most `MAX_CASES - 1`): the root's code and its table stay
/// within an instruction's bound on code (`MAX_INSN_BYTES`).
pub(super) const MAX_CASES: usize = 24;
/// Most conditional jumps (and `ja`s) on one value's path: longer paths are no tree worth a table.
const MAX_PATH: usize = 16;
/// Fewest conditional jumps in the tree for a table to pay: a lone compare or two stays as it is.
const MIN_JUMPS: usize = 3;

/// A table the code jumps through: its label and, by value, the label of where the value goes.
pub(super) struct JumpTable {
    pub at: Label,
    pub cases: Vec<Label>,
}

/// Whether `insn` is a conditional jump on register `r` against an immediate.
fn compares(insn: &Insn, r: u8) -> bool {
    super::control::is_cond_jump(insn) && insn.opcode & SRC_X == 0 && insn.dst == r
}

/// Whether the conditional jump `insn` (register against immediate) is taken for register value
/// `v`, as RFC 9669 compares: 64-bit (`JMP`) or the low 32 bits (`JMP32`), the immediate
/// sign-extended to 64 bits, or taken as 32 bits.
pub(super) fn taken(insn: &Insn, v: u64) -> bool {
    let (a, b, sa, sb) = if class(insn.opcode) == CLASS_JMP {
        let b = insn.imm as i64 as u64;
        (v, b, v as i64, b as i64)
    } else {
        let (a, b) = (v as u32, insn.imm as u32);
        (a as u64, b as u64, a as i32 as i64, b as i32 as i64)
    };
    match insn.opcode & 0xf0 {
        JMP_JEQ => a == b,
        JMP_JNE => a != b,
        JMP_JSET => a & b != 0,
        JMP_JGT => a > b,
        JMP_JGE => a >= b,
        JMP_JLT => a < b,
        JMP_JLE => a <= b,
        JMP_JSGT => sa > sb,
        JMP_JSGE => sa >= sb,
        JMP_JSLT => sa < sb,
        _ => sa <= sb,
    }
}

/// Whether `insn` is `ja` (either width).
fn is_ja(insn: &Insn) -> bool {
    matches!(insn.opcode, OP_JA | OP_JA32)
}

/// `r &= k` with `0 <= k < MAX_CASES`: the register's value is then in `0..=k` (the 32-bit form
/// zero-extends).
fn mask(insn: &Insn) -> Option<(u8, u64)> {
    let op = insn.opcode;
    let and = op == CLASS_ALU | ALU_AND | SRC_K || op == CLASS_ALU64 | ALU_AND | SRC_K;
    (and && (0..MAX_CASES as i32).contains(&insn.imm)).then_some((insn.dst, insn.imm as u64))
}

/// For each value `0..=k` of register `r` at the conditional jump `root`, the instruction its
/// path through the tree leaves to (see the module's comment); `None` when the tree has fewer
/// than `MIN_JUMPS` jumps or a path is longer than `MAX_PATH`. `target(pc)` is where the jump at
/// `pc` goes.
pub(super) fn leaves(
    insns: &[Insn],
    target: impl Fn(usize) -> Option<usize>,
    root: usize,
    r: u8,
    k: u64,
) -> Option<Vec<usize>> {
    let mut jumps: Vec<usize> = Vec::new();
    let mut out = Vec::with_capacity(k as usize + 1);
    for v in 0..=k {
        let mut pc = root;
        let mut steps = 0;
        loop {
            let insn = insns.get(pc)?;
            if is_ja(insn) {
                pc = target(pc)?;
            } else if compares(insn, r) {
                if !jumps.contains(&pc) {
                    jumps.push(pc);
                }
                pc = if taken(insn, v) { target(pc)? } else { pc + 1 };
            } else {
                break;
            }
            steps += 1;
            if steps > MAX_PATH {
                return None;
            }
        }
        out.push(pc);
    }
    (jumps.len() >= MIN_JUMPS).then_some(out)
}

impl Compiler<'_> {
    /// At a conditional jump `pc`, emitted with no layout of its own: when it roots a tree on
    /// a register masked just before (see the module's comment), the jump through a table to
    /// where the register's value goes, and true; otherwise nothing, and false. Clobbers rax and
    /// rcx. (Asked of jumps only: the instructions after the root keep their code, which other
    /// jumps may enter; where a copy of the root is emitted, in a latch's copy, it jumps through
    /// a table of its own, as exact.)
    pub(super) fn switch_table(&mut self, pc: usize) -> bool {
        let Some((r, k)) = pc.checked_sub(1).and_then(|p| mask(&self.insns[p])) else {
            return false;
        };
        if self.metered
            || self.coverage.is_some()
            || self.cond.is_some()
            || self.fast.is_some()
            || self.shape.chains[pc] != 0
            || !compares(&self.insns[pc], r)
        {
            return false;
        }
        let shape = &self.shape;
        let Some(leaves) = leaves(self.insns, |p| shape.target(p), pc, r, k) else {
            return false;
        };
        let table = JumpTable {
            at: self.a.new_label(),
            cases: leaves.iter().map(|&l| self.label(l)).collect(),
        };
        // rcx = table[v] (where case v starts, from the table); rax = its address.
        let d = REG[r as usize];
        self.a.lea_label(RAX, table.at);
        self.a.load_sx(4, RCX, mem_idx(RAX, d, 2, 0));
        self.a.alu_rr(Alu::Add, W::B64, RAX, RCX);
        self.a.jmp_r(RAX);
        self.tables.push(table);
        true
    }

    /// The tables, after all code (4-byte entries: each case's offset from its table).
    pub(super) fn emit_tables(&mut self) {
        self.a.align(4);
        for t in std::mem::take(&mut self.tables) {
            self.a.bind(t.at);
            for case in t.cases {
                self.a.offset32(case, t.at);
            }
        }
    }
}
