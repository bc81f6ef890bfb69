//! Reads assembled from bytes: `r = *(u8 *)(b + o); r <<= 8; s = *(u8 *)(b + o + 1); r |= s`
//! (a big-endian u16, and the u32 of four bytes; little-endian too), in the order clang emits
//! them, which interleaves the bytes of several reads with other work. When the verifier proved
//! the byte loads (mode verified), one load of the word (and a `bswap`, or a `rol` by 8 for a
//! u16) stands for them: clang's x86 code reads packets so, where the byte form costs four loads,
//! three shifts and three `or`s (parse_fixed's headers).
//!
//! The search looks at the straight code after a proved byte load (no jump target, jump, store,
//! call or unproved access inside), following what each register holds: a gather of bytes of
//! `[b + o..]` at bit positions, or something else. When some register comes to hold the whole
//! read and its bytes include the first load's, the instructions it came from (its parts) emit
//! nothing but the last byte load, which emits the word load into the read's register; every
//! other instruction of the window is emitted as it is, in its place. That is sound when:
//! - no other instruction reads a value a part wrote (it would not be there);
//! - after the last byte load, no other instruction reads or writes the read's register (it
//!   holds the whole read from there on);
//! - every other register whose last write in the window is a part's is dead after it
//!   (`live_after`), and `b` keeps its value over the byte loads (checked: loads through `b`
//!   after another write of `b` are no part).
//!
//! Moving the earlier byte loads to the last one is sound: there is no store in between, and
//! none of them can trap (proved). Metering is by block, unchanged.

use super::*;

/// Most instructions a gather's window spans (bit masks of its slots fit a u64).
const WINDOW: usize = 40;
/// No write of a register in the window yet: its value is from before the window.
const BEFORE: u8 = u8::MAX;

/// A found gather, being emitted: slots `first..=end`, of which those in `parts` emit nothing but
/// `at`, which loads the read.
pub(super) struct Gather {
    first: usize,
    end: usize,
    at: usize,
    /// Bit k: slot `first + k` is a part.
    parts: u64,
    dst: u8,
    base: u8,
    off: i16,
    size: u32,
    swap: bool,
}

/// What the search knows of a window so far.
struct Scan {
    /// By register: its last write in the window (`BEFORE`: none).
    def: [u8; 11],
    /// By window index: the writes a gathering instruction read (its dependencies).
    deps: [[u8; 2]; WINDOW],
    /// The gathering instructions (bits by window index).
    gathered: u64,
    /// By window index: the registers the instruction reads (bits).
    regs: [u16; WINDOW],
}

/// What a register holds within the window: bytes `off + k` of the base at bit `shift[k]`
/// (`NONE`: not in it).
#[derive(Clone, Copy)]
struct Bytes {
    shift: [u8; 4],
    off: i16,
}

const NONE: u8 = u8::MAX;

impl Bytes {
    fn byte(off: i16) -> Self {
        Bytes {
            shift: [0, NONE, NONE, NONE],
            off,
        }
    }

    /// Shifted left by `n`, if every byte stays within the low 32 bits.
    fn shl(self, n: i32) -> Option<Self> {
        let mut out = self;
        for s in out.shift.iter_mut().filter(|s| **s != NONE) {
            let t = *s as i32 + n;
            if n < 0 || n % 8 != 0 || t > 24 {
                return None;
            }
            *s = t as u8;
        }
        Some(out)
    }

    /// The `or` of two gathers whose bytes and bit positions are disjoint, within 4 bytes.
    fn or(self, other: Self) -> Option<Self> {
        let off = self.off.min(other.off);
        let mut shift = [NONE; 4];
        let mut bits = 0u32;
        for g in [self, other] {
            for (k, &s) in g.shift.iter().enumerate().filter(|(_, s)| **s != NONE) {
                let at = (g.off - off) as usize + k;
                if at >= 4 || shift[at] != NONE || bits & 0xff << s != 0 {
                    return None;
                }
                shift[at] = s;
                bits |= 0xff << s;
            }
        }
        Some(Bytes { shift, off })
    }

    /// A whole read: its size and whether it is big-endian (a u16 or u32 of bytes `off..`).
    fn read(&self) -> Option<(u32, bool)> {
        let n = self.shift.iter().take_while(|&&s| s != NONE).count();
        if !(n == 2 || n == 4) || self.shift[n..].iter().any(|&s| s != NONE) {
            return None;
        }
        let le = (0..n).all(|k| self.shift[k] as usize == 8 * k);
        let be = (0..n).all(|k| self.shift[k] as usize == 8 * (n - 1 - k));
        match (le, be) {
            (true, _) => Some((n as u32, false)),
            (_, true) => Some((n as u32, true)),
            _ => None,
        }
    }
}

/// The register an instruction of a window writes (a bit), none for a store.
fn writes(insn: &Insn) -> u16 {
    match class(insn.opcode) {
        CLASS_ST | CLASS_STX => 0,
        _ => 1 << insn.dst,
    }
}

/// Whether no register of `insns` ever holds an address in the stack: r10 is read only as the
/// base of a load or store (no `r = r10`, `r += r10`, store of r10, atomic with it). Then only
/// accesses through r10 reach the stack, and a store there changes no byte a load through another
/// register reads.
fn stack_private(insns: &[Insn]) -> bool {
    insns.iter().all(|i| {
        let cls = class(i.opcode);
        match cls {
            CLASS_ALU | CLASS_ALU64 => i.dst != 10 && (i.opcode & SRC_X == 0 || i.src != 10),
            CLASS_STX => i.src != 10,
            _ => true,
        }
    })
}

/// Whether `op` is a byte load (`starts::GATHER`).
pub(super) const fn byte_load(op: u8) -> bool {
    op == CLASS_LDX | MODE_MEM | SIZE_B
}

impl Compiler<'_> {
    /// At a proved byte load (`pc`), looks for a gather starting there (see the module's
    /// comment); found, it is kept in `self.gather` for `gather_emit`.
    #[inline(never)]
    pub(super) fn gather_start(&mut self, pc: usize) -> bool {
        let insns = self.insns;
        let b = insns[pc].src;
        let mut w = Scan {
            def: [BEFORE; 11],
            deps: [[BEFORE; 2]; WINDOW],
            gathered: 0,
            regs: [0; WINDOW],
        };
        // By register: what it holds.
        let mut val: [Option<Bytes>; 11] = [None; 11];
        // The registers whose value has the first byte in it: when none has, or something other
        // than a gathering reads one, no read can start here.
        let mut start = 0u16;
        let end = (pc + WINDOW).min(insns.len());
        for (k, &insn) in insns[pc..end].iter().enumerate() {
            let p = pc + k;
            if k > 0 && self.shape.chains[p] != 0 {
                return false;
            }
            let (op, d, s) = (insn.opcode, insn.dst as usize, insn.src as usize);
            let cls = class(op);
            let alu = cls == CLASS_ALU || cls == CLASS_ALU64;
            let part = if byte_load(op) && self.proved[p] && s == b as usize && w.def[s] == BEFORE {
                Some(Bytes::byte(insn.off))
            } else if alu && op ^ cls == ALU_LSH {
                val[d].and_then(|v| v.shl(insn.imm))
            } else if alu && op ^ cls == ALU_OR | SRC_X && d != s {
                val[d].zip(val[s]).and_then(|(x, y)| x.or(y))
            } else {
                None
            };
            let code = op & 0xf0;
            // The registers it reads and writes (bits).
            let (reads, writes) = match cls {
                CLASS_LDX if self.proved[p] && matches!(op & 0xe0, MODE_MEM | MODE_MEMSX) => {
                    (1 << s, 1 << d)
                }
                // Arithmetic (no call: that is `CLASS_JMP`); a move reads no `dst`, `end` no
                // `src`.
                _ if alu => {
                    let x = if op & SRC_X != 0 && code != ALU_END {
                        1 << s
                    } else {
                        0
                    };
                    (if code == ALU_MOV { x } else { x | 1 << d }, 1 << d)
                }
                // A store to the stack frame, when no register ever points into the stack and
                // the bytes are not the stack's (a spill, which the byte loads cannot see).
                CLASS_ST | CLASS_STX
                    if op & 0xe0 == MODE_MEM && d == 10 && b != 10 && self.stack_private() =>
                {
                    (
                        if cls == CLASS_STX {
                            1 << s | 1 << d
                        } else {
                            1 << d
                        },
                        0,
                    )
                }
                _ => return false,
            };
            w.regs[k] = reads;
            if part.is_some() {
                w.deps[k] = if cls == CLASS_LDX {
                    [BEFORE; 2]
                } else {
                    [w.def[d], if op & SRC_X != 0 { w.def[s] } else { BEFORE }]
                };
                w.gathered |= 1 << k;
                let from_start = k == 0 || (reads & start) != 0;
                start = start & !writes | if from_start { writes } else { 0 };
            } else if reads & start != 0 {
                // Something else reads the first byte's value: it can be in no read.
                return false;
            } else {
                start &= !writes;
            }
            if start == 0 {
                return false;
            }
            if writes != 0 {
                val[d] = part;
                w.def[d] = k as u8;
            }
            if let Some(read) = part.and_then(|v| v.read()) {
                if self.gather_found(pc, k, read, &w) {
                    return true;
                }
            }
        }
        false
    }

    /// Checks that the read in register `dst` of window index `k` (written there) may be
    /// emitted as one load (see the module's comment); if so keeps it in `self.gather`.
    fn gather_found(&mut self, pc: usize, k: usize, (size, swap): (u32, bool), w: &Scan) -> bool {
        let Scan {
            def,
            deps,
            gathered,
            regs,
        } = w;
        let insns = self.insns;
        let dst = insns[pc + k].dst;
        // The parts: what the read came from, back to the byte loads.
        let mut parts = 1u64 << k;
        for j in (0..=k).rev() {
            if parts & 1 << j != 0 {
                for &d in deps[j].iter().filter(|&&d| d != BEFORE) {
                    parts |= 1 << d;
                }
            }
        }
        if parts & 1 == 0 || parts & !gathered != 0 {
            return false;
        }
        let loads =
            (0..=k).filter(|&j| parts & 1 << j != 0 && class(insns[pc + j].opcode) == CLASS_LDX);
        let at = loads.clone().max().unwrap_or(0);
        let off = loads.map(|j| insns[pc + j].off).min().unwrap_or(0);
        // Every other instruction: reads no part's value, and after `at` leaves `dst` alone.
        // A register's writes are replayed to know, at each, which write it reads.
        let mut cur = [BEFORE; 11];
        for j in 0..=k {
            let insn = insns[pc + j];
            if parts & 1 << j == 0 {
                let (reads, writes) = (regs[j], writes(&insn));
                for r in (0..11).filter(|r| reads & 1 << r != 0) {
                    if cur[r] != BEFORE && parts & 1 << cur[r] != 0 {
                        return false;
                    }
                }
                if j > at && (reads | writes) & 1 << dst != 0 {
                    return false;
                }
            }
            if writes(&insn) != 0 {
                cur[insn.dst as usize] = j as u8;
            }
        }
        // Registers left holding a part's value (the read's aside) must be dead after.
        for r in (0..11u8).filter(|&r| r != dst) {
            let w = def[r as usize];
            if w != BEFORE && parts & 1 << w != 0 && self.live_after(pc + k, r) {
                return false;
            }
        }
        self.gather = Some(Gather {
            first: pc,
            end: pc + k,
            at: pc + at,
            parts,
            dst,
            base: insns[pc].src,
            off,
            size,
            swap,
        });
        true
    }

    /// `stack_private` of the program, found once.
    fn stack_private(&mut self) -> bool {
        *self
            .stack_private
            .get_or_insert_with(|| stack_private(self.insns))
    }

    /// Emits slot `pc` of the gather being emitted: nothing for a part, the read for the last
    /// byte load, and any other instruction as it is.
    pub(super) fn gather_emit(&mut self, pc: usize) {
        let Some(g) = self.gather.as_ref() else {
            return;
        };
        let (first, end, at, parts) = (g.first, g.end, g.at, g.parts);
        if parts & 1 << (pc - first) == 0 {
            self.insn(pc);
        } else if pc == at {
            let (dst, base, off, size, swap) = (g.dst, g.base, g.off, g.size, g.swap);
            let m = self.operand(pc, base, off, size, false);
            let d = REG[dst as usize];
            self.a.load_zx(size, d, m);
            match (size, swap) {
                (4, true) => self.a.bswap(W::B32, d),
                (_, true) => self.a.shift_ri(Shift::Rol, W::B16, d, 8),
                _ => {}
            }
        }
        if pc == end {
            self.gather = None;
        }
    }
}
