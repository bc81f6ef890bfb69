//! A value gathered from bytes, as clang's BPF backend writes `p[0] << 8 | p[1]` and `p[0] << 24
//! | p[1] << 16 | p[2] << 8 | p[3]` (it has no unaligned loads to merge them into): byte loads
//! from consecutive offsets of one base, each shifted by a multiple of 8 and or-ed together. In
//! proved code (mode verified, no meter, no coverage) such a tree is one load of 2 or 4 bytes and
//! a byte swap (`movzx` and `rol` by 8, or `mov` and `bswap`), or the load alone when the bytes
//! are or-ed in little-endian order.
//!
//! The tree is found by a walk from a proved byte load over the rest of its chain (at most
//! `WINDOW` instructions), started only where the next instruction loads another byte through
//! the same base, or shifts this one and the one after loads another (most byte loads cost a
//! test or two), and not at a byte load that the last walk took in and found nothing with.
//! clang interleaves gathers with other work (parse_fixed's IPv4 addresses: two gathers whose
//! pieces alternate); the walk steps over an instruction of other work when it reads no register
//! a piece of the tree wrote, writes no base and no piece not yet or-ed in, stores nothing and
//! cannot trap or leave the chain. Gathers whose halves clang spills to the stack (parse_fixed's
//! IPv6 addresses) are not taken: a pass over whole runs found them too, but cost a third of the
//! JIT's part of a verified load (BENCHMARKS.md, "The machine of session 14"); these walks cost
//! about a twelfth (parse_fixed: 129.8k -> 140.1k instructions per load, callgrind).
//!
//! The tree is taken when
//! - its loads are proved and go through one base register, written by nothing before the last
//!   of them, at offsets `o..o + n` (n = 2 or 4), each shifted (`<<=` by an immediate, 32 or 64
//!   bits: the values are below 2^32 either way) by `8 * (n - 1 - i)` for offset `o + i`
//!   (big-endian) or by `8 * i` (little-endian);
//! - every piece's result is read once, by a later instruction of the tree, but the root's (the
//!   `or` that joins the last two pieces): the instructions form one tree;
//! - the registers the pieces leave behind (where other work did not write them since) are not
//!   live after the root.
//!
//! Then the root's instruction loads into its register (the base holds there what every byte
//! load read: nothing wrote it and nothing stored in between) and the tree's other instructions
//! emit nothing: their registers hold results nobody reads, and no instruction in proved
//! unmetered code can trap, so no trap or budget stop sees the registers in between.

use crate::analysis::liveness::data_uses_and_defs;
use crate::isa::opcodes::*;
use crate::isa::Insn;

use super::memory::frame_local;
use super::{Compiler, REG};
use crate::jit::x86::{Mem, Shift, W};

/// Most instructions a walk looks at from the first byte load (a gather of four bytes takes 10
/// and clang puts up to another gather's worth of work between its pieces).
const WINDOW: usize = 24;

/// No piece held (`holds`).
const NONE: u8 = u8::MAX;

const LDXB: u8 = CLASS_LDX | MODE_MEM | SIZE_B;

#[derive(Clone, Copy)]
enum Part {
    Byte { off: i16 },
    Shl { of: u8, k: u32 },
    Or,
}

/// A gather found at its first byte load, emitted at its root (`Compiler::pending`).
#[derive(Clone, Copy)]
pub(super) struct Gather {
    /// The first byte load's slot.
    first: usize,
    /// The root's slot: the load goes there.
    root: usize,
    /// The tree's other instructions, as bits from `first` on: they emit nothing.
    skip: u32,
    /// Where the bytes are, as the first load addressed them.
    at: Mem,
    size: u32,
    swap: bool,
    dst: u8,
}

/// A shift left by an immediate (32 or 64 bits).
fn shift(insn: &Insn) -> bool {
    matches!(class(insn.opcode), CLASS_ALU | CLASS_ALU64) && insn.opcode & 0xf8 == ALU_LSH
}

/// The registers (bit r for r) an instruction of other work between a tree's pieces reads and
/// writes; `None` for what the walk does not step over: jumps, calls and exits, stores and
/// atomics (they may write the bytes), 64-bit immediates, and loads that may trap.
fn other_work(insn: &Insn, proved: bool) -> Option<(u16, u16)> {
    let op = insn.opcode;
    let steps_over = match class(op) {
        CLASS_LDX => proved || frame_local(insn.src, insn.off, access_size(op)),
        CLASS_ALU | CLASS_ALU64 => true,
        _ => false,
    };
    steps_over.then(|| data_uses_and_defs(op, insn.dst, insn.src))
}

impl Compiler<'_> {
    /// At a proved byte load, or while a gather is pending: whether slot `pc` emits nothing (the
    /// first load of a gather found here, or a piece of the pending one) or its root's load.
    #[inline(never)]
    pub(super) fn gathered(&mut self, pc: usize) -> bool {
        match self.pending {
            Some(g) if pc == g.root => {
                self.pending = None;
                let d = REG[g.dst as usize];
                self.a.load_zx(g.size, d, g.at);
                match (g.swap, g.size) {
                    (true, 2) => self.a.shift_ri(Shift::Rol, W::B16, d, 8),
                    (true, _) => self.a.bswap(W::B32, d),
                    _ => {}
                }
                true
            }
            Some(g) => g.skip >> (pc - g.first) & 1 != 0,
            None => {
                self.pending = self.gather_at(pc);
                self.pending.is_some()
            }
        }
    }

    /// The gather whose first byte load is at `pc`, if there is one (see the module's notes): the
    /// first complete tree of four bytes, else of two (clang builds a be32's halves first).
    fn gather_at(&mut self, pc: usize) -> Option<Gather> {
        let insns = self.insns;
        let first = insns[pc];
        let base = first.src;
        // The next instruction loads another byte, or shifts this one and the one after loads
        // another: most byte loads stop here, and so do the spilled halves of clang's gathers.
        let another = |at: usize| {
            insns
                .get(at)
                .is_some_and(|i| i.opcode == LDXB && i.src == base)
        };
        let next = insns.get(pc + 1)?;
        if !(another(pc + 1) || shift(next) && next.dst == first.dst && another(pc + 2)) {
            return None;
        }
        // A byte load taken in by the last walk, which found nothing, starts none of its own
        // (clang's gathers that do not fold are mostly spilled: each walk would fail alike).
        let (last, loads) = self.walked;
        if pc > last && pc - last < 32 && loads >> (pc - last) & 1 != 0 {
            return None;
        }
        // A base folded into an address (`fold`) holds for the first load's operand only while
        // nothing but the tree has run.
        let folded = self.folded.is_some_and(|f| f.t == base && pc <= f.last);
        // Follow the values: the pieces (each byte load, shift and `or` of the tree), which one
        // each register holds (`holds`, bit r of `held`), and which of those no instruction of the
        // tree has read yet (`unread`).
        let mut parts = [(Part::Or, 0u8); 10];
        let mut count = 0;
        let mut open = 0;
        let mut holds = [NONE; 16];
        let (mut held, mut unread) = (0u16, 0u16);
        let mut skip = 1u32;
        let mut loads = 0u32;
        // The bytes loaded and their shifts' sum: a tree in place has 2 and 8, or 4 and 48.
        let (mut bytes, mut shifted) = (0, 0);
        let mut base_written = false;
        let mut found: Option<Gather> = None;
        let end = (pc + WINDOW).min(insns.len());
        for (p, insn) in insns[..end].iter().enumerate().skip(pc) {
            if p > pc && self.shape.chains[p] != 0 {
                break;
            }
            let op = insn.opcode;
            let (d, s) = ((insn.dst & 15) as usize, (insn.src & 15) as usize);
            let (bd, bs) = (1u16 << d, 1u16 << s);
            let part = if op == LDXB
                && insn.src == base
                && !base_written
                && (insn.off as i32 - first.off as i32).abs() <= 3
            {
                if !self.proved[p] || unread & bd != 0 {
                    break;
                }
                open += 1;
                loads |= 1 << (p - pc);
                bytes += 1;
                Part::Byte { off: insn.off }
            } else if shift(insn) && held & bd != 0 {
                let of = holds[d];
                if !matches!(parts[of as usize].0, Part::Byte { .. })
                    || unread & bd == 0
                    || !matches!(insn.imm, 8 | 16 | 24)
                {
                    break;
                }
                shifted += insn.imm;
                Part::Shl {
                    of,
                    k: insn.imm as u32,
                }
            } else if matches!(class(op), CLASS_ALU | CLASS_ALU64)
                && op & 0xf8 == ALU_OR | SRC_X
                && held & (bd | bs) != 0
            {
                if unread & bd == 0 || unread & bs == 0 || d == s {
                    break;
                }
                // The source's piece is read once: by this one (the destination's becomes this).
                unread &= !bs;
                open -= 1;
                Part::Or
            } else {
                // Other work: it must not see or lose a piece, nor move the base.
                let Some((reads, writes)) = other_work(insn, self.proved[p]) else {
                    break;
                };
                // (A piece lost so would keep `open` above 1 for good: `unread` only stops early.)
                if folded || reads & held != 0 || writes & (1 << base | unread) != 0 {
                    break;
                }
                held &= !writes;
                continue;
            };
            if count == parts.len() {
                break;
            }
            parts[count] = (part, insn.dst);
            holds[d] = count as u8;
            held |= bd;
            unread |= bd;
            count += 1;
            base_written |= d == base as usize;
            if !matches!(part, Part::Or)
                || open != 1
                || !matches!((bytes, shifted), (2, 8) | (4, 48))
            {
                skip |= 1 << (p - pc);
                continue;
            }
            // One tree: taken if its bytes are in place and its pieces dead after the root.
            if let Some((size, swap, off)) = placed(&parts[..count]) {
                let left = held & !bd;
                let dead = (0..16u8)
                    .filter(|&r| left & 1 << r != 0)
                    .all(|r| self.overwritten_next(p + 1, r) || !self.live_after(p, r));
                if dead {
                    found = Some(Gather {
                        first: pc,
                        root: p,
                        skip,
                        at: self.operand(pc, base, off, size, false),
                        size,
                        swap,
                        dst: insn.dst,
                    });
                    if size == 4 {
                        break;
                    }
                }
            }
            skip |= 1 << (p - pc);
        }
        if found.is_none() {
            self.walked = (pc, loads);
        }
        found
    }

    /// Whether one of the few instructions from `at` on, straight on in one chain, writes `r`
    /// before any reads it: dead then, without asking liveness (clang's temporaries mostly are).
    fn overwritten_next(&self, at: usize, r: u8) -> bool {
        const LOOK: usize = 3;
        for p in at..(at + LOOK).min(self.insns.len()) {
            let insn = &self.insns[p];
            let op = insn.opcode;
            let (d, s): (u16, u16) = (1 << (insn.dst & 15), 1 << (insn.src & 15));
            let (reads, writes) = match class(op) {
                CLASS_LDX | CLASS_ALU | CLASS_ALU64 => data_uses_and_defs(op, insn.dst, insn.src),
                CLASS_ST => (d, 0),
                CLASS_STX if op & 0xe0 != MODE_ATOMIC => (d | s, 0),
                _ => return false,
            };
            if reads & 1 << r != 0 || (p > at && self.shape.chains[p] != 0) {
                return false;
            }
            if writes & 1 << r != 0 {
                return true;
            }
        }
        false
    }
}

/// The load a complete tree is (its size, whether its bytes are swapped: big-endian, its first
/// byte's offset), if its bytes are 2 or 4 consecutive ones each shifted to its place.
fn placed(parts: &[(Part, u8)]) -> Option<(u32, bool, i16)> {
    // Each byte's place: its shift, if a shift reads it.
    let mut shift_of = [0u32; 10];
    for &(part, _) in parts {
        if let Part::Shl { of, k } = part {
            shift_of[of as usize] = k;
        }
    }
    let offs = || {
        parts.iter().enumerate().filter_map(|(j, p)| match p.0 {
            Part::Byte { off } => Some((j, off)),
            _ => None,
        })
    };
    let bytes = offs().count();
    if bytes != 2 && bytes != 4 {
        return None;
    }
    let first = offs().map(|(_, off)| off).min()?;
    let mut at_byte = [None; 4];
    for (j, off) in offs() {
        let i = (off as i32 - first as i32) as usize;
        if i >= bytes || at_byte[i].is_some() {
            return None;
        }
        at_byte[i] = Some(shift_of[j]);
    }
    let big = (0..bytes).all(|i| at_byte[i] == Some(8 * (bytes - 1 - i) as u32));
    let little = (0..bytes).all(|i| at_byte[i] == Some(8 * i as u32));
    (big || little).then_some((bytes as u32, big, first))
}
