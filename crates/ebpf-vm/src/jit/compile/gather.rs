//! Reads assembled from bytes: `r = *(u8 *)(b + o); r <<= 8; s = *(u8 *)(b + o + 1); r |= s`
//! (a big-endian u16, and the u32 of four bytes; little-endian too), in the order clang emits
//! them, which interleaves the bytes of several reads with other work. When the verifier proved
//! the byte loads (mode verified), one load of the word (and a `bswap`, or a `rol` by 8 for a
//! u16) stands for them: clang's x86 code reads packets so, where the byte form costs four loads,
//! three shifts and three `or`s (parse_fixed's headers).
//!
//! The search looks at the straight code after a proved byte load (no jump target, jump, store,
//! call or unproved access inside, at most `WINDOW` instructions, the first byte's value waiting
//! at most `IDLE` of them: the search runs at every proved byte load the JIT meets), following what each register holds: a gather of bytes of
//! `[b + o..]` at bit positions, or something else. When some register comes to hold the whole
//! read and its bytes include the first load's, the instructions it came from (its parts) emit
//! nothing but the last byte load, which emits the word load into the read's register; every
//! other instruction of the window is emitted as it is, in its place. That is sound when:
//! - no other instruction reads a value a part wrote (it would not be there);
//! - after the last byte load, no other instruction reads or writes the read's register (it
//!   holds the whole read from there on);
//! - every other register whose last write in the window is a part's is dead after it
//!   (`live_in_line`: the search near the read, not the whole program's liveness), and `b` keeps its value over the byte loads (checked: loads through `b`
//!   after another write of `b` are no part).
//!
//! Moving the earlier byte loads to the last one is sound: there is no store in between, and
//! none of them can trap (proved). Metering is by block, unchanged.

use super::*;

/// Most instructions a gather's window spans (bit masks of its slots fit a u64).
const WINDOW: usize = 20;
/// Most instructions between two that gather the first byte's value (parse_fixed's IPv4
/// addresses: 9).
const IDLE: usize = 10;
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

/// What a register holds within the window: in each byte lane of its low 32 bits (the lane's
/// 8 bits of `lanes`), 1 + which byte of the base from `off` on it holds (0: none). A u32 is
/// read big-endian from `off` when `lanes` is 0x01020304, little-endian when 0x04030201.
#[derive(Clone, Copy)]
struct Bytes {
    lanes: u32,
    off: i16,
}

impl Bytes {
    fn byte(off: i16) -> Self {
        Bytes { lanes: 1, off }
    }

    /// Shifted left by `n`, if every byte stays within the low 32 bits.
    fn shl(self, n: i32) -> Option<Self> {
        match n {
            8 | 16 | 24 if self.lanes >> (32 - n) == 0 => Some(Bytes {
                lanes: self.lanes << n,
                ..self
            }),
            _ => None,
        }
    }

    /// The `or` of two gathers whose lanes are disjoint, of bytes within 4 of each other.
    fn or(self, other: Self) -> Option<Self> {
        let (lo, hi) = if self.off <= other.off {
            (self, other)
        } else {
            (other, self)
        };
        let d = (hi.off as i32 - lo.off as i32) as u32;
        if d > 3 {
            return None;
        }
        // 0x01 in each lane of `hi` that holds a byte.
        let mut add = 0;
        for k in 0..4 {
            let lane = hi.lanes >> (8 * k) & 0xff;
            if lane != 0 {
                if lo.lanes >> (8 * k) & 0xff != 0 {
                    return None;
                }
                add |= 1 << (8 * k);
            }
        }
        Some(Bytes {
            lanes: lo.lanes | (hi.lanes + d * add),
            off: lo.off,
        })
    }

    /// A whole read: its size and whether it is big-endian (a u16 or u32 of bytes `off..`).
    fn read(&self) -> Option<(u32, bool)> {
        match self.lanes {
            0x0102 => Some((2, true)),
            0x0201 => Some((2, false)),
            0x0102_0304 => Some((4, true)),
            0x0403_0201 => Some((4, false)),
            _ => None,
        }
    }
}

/// Whether the byte load at `pc` starts a read as clang orders one: its byte shifted to the top
/// of a u32 next (`r = b[o]; r <<= 24`), or a u16's second byte loaded first
/// (`s = b[o + 1]; r = b[o]; r <<= 8`). Other byte loads (most are a read's later bytes) are
/// not searched from: a search costs at every byte load, and a load later in a read fails it.
fn opens(insns: &[Insn], pc: usize) -> bool {
    let (l, next) = (insns[pc], insns.get(pc + 1..pc + 3));
    let lsh = |i: &Insn, r: u8, n: i32| {
        i.dst == r
            && i.imm == n
            && matches!(i.opcode, o if o == CLASS_ALU | ALU_LSH || o == CLASS_ALU64 | ALU_LSH)
    };
    match next {
        Some(&[a, b]) => {
            lsh(&a, l.dst, 24)
                || (byte_load(a.opcode)
                    && a.src == l.src
                    && a.dst != l.dst
                    && a.off as i32 + 1 == l.off as i32
                    && lsh(&b, a.dst, 8))
        }
        _ => false,
    }
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
        if !opens(insns, pc) {
            return false;
        }
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
        let mut last_part = 0;
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
                _ => return false,
            };
            w.regs[k] = reads;
            if k > last_part + IDLE {
                // The first byte's value has waited too long: a read that far apart is rare, and
                // the search costs at every byte load.
                return false;
            }
            if part.is_some() {
                w.deps[k] = if cls == CLASS_LDX {
                    [BEFORE; 2]
                } else {
                    [w.def[d], if op & SRC_X != 0 { w.def[s] } else { BEFORE }]
                };
                w.gathered |= 1 << k;
                let from_start = k == 0 || (reads & start) != 0;
                if from_start {
                    last_part = k;
                }
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
            val[d] = part;
            w.def[d] = k as u8;
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
                let (reads, writes) = (regs[j], 1u16 << insn.dst);
                for r in (0..11).filter(|r| reads & 1 << r != 0) {
                    if cur[r] != BEFORE && parts & 1 << cur[r] != 0 {
                        return false;
                    }
                }
                if j > at && (reads | writes) & 1 << dst != 0 {
                    return false;
                }
            }
            cur[insn.dst as usize] = j as u8;
        }
        // Registers left holding a part's value (the read's aside) must be dead after.
        for r in (0..11u8).filter(|&r| r != dst) {
            let w = def[r as usize];
            // Only as far as the code near enough decides it: the whole program's liveness
            // would cost more than the read saves at load.
            let dead = || live_in_line(self.analysis, pc + k, r) == Some(false);
            if w != BEFORE && parts & 1 << w != 0 && !dead() {
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

    /// Emits slot `pc` of the gather being emitted: nothing for a part, the read for the last
    /// byte load, and any other instruction as it is.
    #[inline(never)]
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
