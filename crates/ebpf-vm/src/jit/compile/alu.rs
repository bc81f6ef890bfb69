//! Register arithmetic: the ALU and ALU64 classes, and `dst = src; dst += x` fused into a `lea`
//! or, before proved accesses through `dst` alone, into their addresses (`fold`); the rotate
//! idiom `x << k | x >> (64 - k)` fused into a `rol` (`rotate`), and multiplications by 3, 5 and
//! 9 (`dst = src; dst *= 5` as well) into a `lea`.

use super::{blinded, ctx, pool_slot, Compiler, Folded, DATA_NEG, REG};
use crate::isa::opcodes::*;
use crate::isa::Insn;
use crate::jit::blind::worth_blinding;
use crate::jit::frame::OFF_DATA_NEG;
use crate::jit::x86::*;

impl Compiler<'_> {
    /// `dst = src; dst += x` (x a register or an immediate, both 64-bit or both 32-bit) as one
    /// `lea`, when the instruction after `pc` is that add. Returns whether it emitted the pair.
    /// Asked of every instruction: the test of the first opcode is inlined into the caller, so
    /// that the others pay no call (a tenth of a verified load's JIT part went to calls that
    /// returned false at once).
    #[inline(always)]
    pub(super) fn mov_add(&mut self, pc: usize) -> bool {
        let op = self.insns[pc].opcode;
        (op == CLASS_ALU64 | ALU_MOV | SRC_X || op == CLASS_ALU | ALU_MOV | SRC_X)
            && self.mov_add_pair(pc)
    }

    #[inline(never)]
    fn mov_add_pair(&mut self, pc: usize) -> bool {
        let (mv, add) = (self.insns[pc], self.insns[pc + 1]);
        let cls = class(mv.opcode);
        if !matches!(cls, CLASS_ALU | CLASS_ALU64)
            || mv.opcode != cls | ALU_MOV | SRC_X
            || mv.off != 0
            || add.opcode & !SRC_X != cls | ALU_ADD
            || add.dst != mv.dst
        {
            return false;
        }
        if add.opcode & SRC_X == 0 && self.blind.is_some() && worth_blinding(add.imm as i64 as u64)
        {
            // The lea would carry the add's immediate as its displacement.
            return false;
        }
        if cls == CLASS_ALU64 && self.fold(pc) {
            return true;
        }
        let d = REG[mv.dst as usize];
        let y = REG[mv.src as usize];
        let m = if add.opcode & SRC_X != 0 {
            // After the mov, dst holds src: `dst += dst` adds src.
            let z = if add.src == mv.dst {
                y
            } else {
                REG[add.src as usize]
            };
            mem_idx(y, z, 0, 0)
        } else {
            mem(y, add.imm)
        };
        if cls == CLASS_ALU64 {
            self.a.lea(d, m);
        } else {
            self.a.lea32(d, m);
        }
        true
    }

    /// `t = b; t += x` (64-bit; x a register or an immediate) followed, in the same block, by
    /// loads and stores through `t` that the verifier proved in bounds, after which `t` is dead:
    /// the last of them loads into `t`, or the liveness analysis finds `t` dead after the last
    /// (`live_after`). `t`'s sum is read by those accesses alone, so the pair emits nothing and
    /// the accesses address `[b + x + off]` (x86's base + index + displacement), one `lea` fewer
    /// and its latency off the loads' path (clang's native code addresses so). None of the
    /// accesses but the last writes `b`, `x` or `t`. Returns whether it folded the pair.
    fn fold(&mut self, pc: usize) -> bool {
        /// Most accesses looked at after the pair.
        const WINDOW: usize = 8;
        let (mv, add) = (self.insns[pc], self.insns[pc + 1]);
        let t = mv.dst;
        let b = REG[mv.src as usize];
        let at = if add.opcode & SRC_X != 0 {
            // `t += t` after the mov adds b.
            let x = if add.src == t { mv.src } else { add.src };
            mem_idx(b, REG[x as usize], 0, 0)
        } else {
            mem(b, add.imm)
        };
        let read = [
            mv.src,
            if add.opcode & SRC_X != 0 {
                add.src
            } else {
                mv.src
            },
        ];
        let mut last = None;
        for p in pc + 2..(pc + 2 + WINDOW).min(self.insns.len()) {
            if self.shape.chains[p] != 0 || !self.proved[p] {
                break;
            }
            let insn = &self.insns[p];
            let op = insn.opcode;
            let mode = op & 0xe0;
            let (base, off) = match class(op) {
                CLASS_LDX if mode == MODE_MEM || mode == MODE_MEMSX => (insn.src, insn.off),
                CLASS_ST if mode == MODE_MEM => (insn.dst, insn.off),
                CLASS_STX if mode == MODE_MEM && insn.src != t => (insn.dst, insn.off),
                _ => break,
            };
            if base != t || i32::try_from(at.disp as i64 + off as i64).is_err() {
                break;
            }
            last = Some(p);
            if class(op) == CLASS_LDX {
                if insn.dst == t {
                    self.folded = Some(Folded { t, at, last: p });
                    return true;
                }
                if read.contains(&insn.dst) {
                    // The next access would see another b or x.
                    break;
                }
            }
        }
        match last {
            Some(last) if !self.live_after(last, t) => {
                self.folded = Some(Folded { t, at, last });
                true
            }
            _ => false,
        }
    }

    /// The rotate idiom starting at `pc` (see `rotate_idiom`), within the `avail` instructions
    /// left in its block, as one `rol` (and the temporary's value, if it is read after), or the
    /// pair `dst = src; dst *= 3, 5 or 9` as one `lea`. Returns how many instructions it emitted
    /// (0: none, nothing was emitted). eBPF instructions stay the unit of metering: the caller
    /// counts all of them in the block, and none of them can trap.
    /// Asked of every instruction: the test of the first opcode is inlined into the caller (as
    /// `mov_add`'s), the rest is not.
    #[inline(always)]
    pub(super) fn idiom(&mut self, pc: usize, avail: usize) -> usize {
        // Both idioms start with a register move, and a rotate may start with a shift by an
        // immediate: most instructions are neither (this runs for every instruction at load).
        // A masked select starts with a `neg` (`select`).
        let first = self.insns[pc].opcode;
        let cls = class(first);
        if !matches!(cls, CLASS_ALU | CLASS_ALU64)
            || !matches!(first ^ cls, op if op == ALU_MOV | SRC_X || op == ALU_LSH || op == ALU_RSH || op == ALU_NEG)
        {
            return 0;
        }
        self.idiom_at(pc, avail)
    }

    #[inline(never)]
    fn idiom_at(&mut self, pc: usize, avail: usize) -> usize {
        let first = self.insns[pc].opcode;
        if first ^ class(first) == ALU_NEG {
            return self.select(pc, avail);
        }
        let within = |n: usize| {
            n <= avail
                && pc + n <= self.insns.len()
                && (pc + 1..pc + n).all(|p| self.shape.chains[p] == 0)
        };
        // A rotate's instructions but its last are copies and shifts of one class, at least
        // three of them: without two more after this one, none starts here (most moves are
        // followed by something else, and this test spares the search below).
        let cls = class(self.insns[pc].opcode);
        let in_body = |p: usize| self.insns.get(p).is_some_and(|i| rotate_body(i, cls));
        let rotates = in_body(pc + 1) && in_body(pc + 2);
        // The idiom's own test first: it looks at one instruction before anything else, and most
        // instructions are no rotate's end (`within` walks the shape's chains); the last
        // instruction's opcode is tested here, before the call.
        for n in (4..=ROTATE_WINDOW).filter(|_| rotates) {
            if !self.insns.get(pc + n - 1).is_some_and(ends_rotate) {
                continue;
            }
            if let Some(r) = rotate_idiom(self.insns, pc, n).filter(|_| within(n)) {
                self.rotate(pc, &r);
                return r.n;
            }
        }
        let (mv, mul) = match self.insns.get(pc..pc + 2) {
            Some(&[mv, mul]) if within(2) => (mv, mul),
            _ => return 0,
        };
        let cls = class(mv.opcode);
        match lea_scale(&mul) {
            Some(scale)
                if matches!(cls, CLASS_ALU | CLASS_ALU64)
                    && mv.opcode == cls | ALU_MOV | SRC_X
                    && mv.off == 0
                    && mul.opcode == cls | ALU_MUL
                    && mul.dst == mv.dst =>
            {
                let (d, s) = (REG[mv.dst as usize], REG[mv.src as usize]);
                self.lea_mul(cls == CLASS_ALU64, d, s, scale);
                2
            }
            _ => 0,
        }
    }

    /// `d = x * (2^scale + 1)` as `lea d, [x + x * 2^scale]` (one cycle where `imul` takes three).
    fn lea_mul(&mut self, wide: bool, d: u8, x: u8, scale: u8) {
        let m = mem_idx(x, x, scale, 0);
        if wide {
            self.a.lea(d, m);
        } else {
            self.a.lea32(d, m);
        }
    }

    /// Emits a matched rotate idiom: `d = rol(x, left)`, and `t` as the idiom left it when it is
    /// read after (without liveness, in mode checked, always).
    fn rotate(&mut self, pc: usize, r: &Rotate) {
        let w = if r.wide { W::B64 } else { W::B32 };
        let (d, t, x) = (REG[r.d as usize], REG[r.t as usize], REG[r.x as usize]);
        let last = pc + r.n - 1;
        // No liveness without a proved access (mode checked): `t` counts as live.
        let t_live = !self.any_proved || self.live_after(last, r.t);
        let a = &mut self.a;
        let bits = if r.wide { 64 } else { 32 };
        let rol = |a: &mut Asm| {
            if d != x && bmi2() {
                a.rorx(w, d, x, bits - r.left);
            } else {
                if d != x {
                    a.mov_rr(w, d, x);
                }
                a.shift_ri(Shift::Rol, w, d, r.left);
            }
        };
        let temp = |a: &mut Asm| {
            if t != x {
                a.mov_rr(w, t, x);
            }
            a.shift_ri(r.t_shift, w, t, r.t_count);
        };
        // Neither may overwrite x before the other reads it: t first unless t is x (d is not t,
        // so writing t leaves a d that is x intact).
        if r.x == r.t {
            rol(a);
            if t_live {
                temp(a);
            }
        } else {
            if t_live {
                temp(a);
            }
            rol(a);
        }
    }

    pub(super) fn alu(&mut self, insn: &Insn) {
        let op = insn.opcode;
        let wide = class(op) == CLASS_ALU64;
        let w = if wide { W::B64 } else { W::B32 };
        let d = REG[insn.dst as usize];
        let x = op & SRC_X != 0;
        // Validation guarantees src <= 10 for register forms and 0 for immediate forms.
        let s = REG[insn.src as usize];
        let imm = insn.imm;
        let (a, blind) = (&mut self.a, &mut self.blind);
        let simple = match op & 0xf0 {
            ALU_ADD => Some(Alu::Add),
            ALU_SUB => Some(Alu::Sub),
            ALU_OR => Some(Alu::Or),
            ALU_AND => Some(Alu::And),
            ALU_XOR => Some(Alu::Xor),
            _ => None,
        };
        if let Some(o) = simple {
            if x {
                a.alu_rr(o, w, d, s);
            } else if let Some(slot) = pool_slot(blind, imm) {
                a.alu_rm(o, w, d, slot);
            } else if blinded(a, blind, w, RAX, imm) {
                a.alu_rr(o, w, d, RAX);
            } else {
                a.alu_ri(o, w, d, imm);
            }
            return;
        }
        match op & 0xf0 {
            ALU_MUL => {
                if let Some(scale) = lea_scale(insn) {
                    self.lea_mul(wide, d, d, scale);
                } else if x {
                    a.imul_rr(w, d, s);
                } else if let Some(slot) = pool_slot(blind, imm) {
                    a.imul_rm(w, d, slot);
                } else if blinded(a, blind, w, RAX, imm) {
                    a.imul_rr(w, d, RAX);
                } else {
                    a.imul_rri(w, d, d, imm);
                }
            }
            ALU_DIV | ALU_MOD => self.divide(insn, w, d, s),
            ALU_LSH | ALU_RSH | ALU_ARSH => {
                let sh = match op & 0xf0 {
                    ALU_LSH => Shift::Shl,
                    ALU_RSH => Shift::Shr,
                    _ => Shift::Sar,
                };
                if x {
                    // The hardware masks cl by 63 (or 31) exactly as RFC 9669 asks.
                    a.mov_rr(W::B64, RCX, s);
                    a.shift_cl(sh, w, d);
                    if !wide {
                        // A zero count leaves the register unwritten on some CPUs: zero-extend.
                        a.mov_rr(W::B32, d, d);
                    }
                } else {
                    let n = imm as u32 & if wide { 63 } else { 31 };
                    if n != 0 && blinded(a, blind, W::B32, RCX, n as i32) {
                        a.shift_cl(sh, w, d);
                    } else if n != 0 {
                        a.shift_ri(sh, w, d, n as u8);
                    } else if !wide {
                        a.mov_rr(W::B32, d, d);
                    }
                }
            }
            ALU_NEG => a.neg(w, d),
            ALU_MOV => {
                if !x {
                    if imm == 0 {
                        // No flags live across eBPF instructions: the short zeroing idiom.
                        a.alu_rr(Alu::Xor, W::B32, d, d);
                    } else if blinded(a, blind, w, d, imm) {
                        // Loaded straight into the destination.
                    } else if wide {
                        a.mov_imm64(d, imm as i64 as u64);
                    } else {
                        a.mov_r32_imm(d, imm as u32);
                    }
                } else {
                    match insn.off {
                        8 => a.movsx_rr(w, d, s, 1),
                        16 => a.movsx_rr(w, d, s, 2),
                        32 => a.movsx_rr(W::B64, d, s, 4),
                        _ => a.mov_rr(w, d, s),
                    }
                }
            }
            _ => {
                // ALU_END: le (ALU|K) truncates; be (ALU|X) and bswap (ALU64) also swap.
                let swap = op == CLASS_ALU | ALU_END | SRC_X || op == CLASS_ALU64 | ALU_END;
                match (imm, swap) {
                    (16, false) => a.movzx16_rr(d, d),
                    (32, false) => a.mov_rr(W::B32, d, d),
                    (16, true) => {
                        a.shift_ri(Shift::Rol, W::B16, d, 8);
                        a.movzx16_rr(d, d);
                    }
                    (32, true) => a.bswap(W::B32, d),
                    (_, true) => a.bswap(W::B64, d),
                    _ => {}
                }
            }
        }
    }

    /// Division and modulo with RFC 9669's total semantics: x/0 = 0, x%0 = x, and for the signed
    /// forms x/-1 = -x and x%-1 = 0 (where `idiv` would fault on INT_MIN / -1).
    pub(super) fn divide(&mut self, insn: &Insn, w: W, d: u8, s: u8) {
        let op = insn.opcode;
        let is_mod = op & 0xf0 == ALU_MOD;
        let signed = insn.off == 1;
        let wide = w == W::B64;
        let (a, blind) = (&mut self.a, &mut self.blind);
        let zero = a.new_label();
        let minus_one = a.new_label();
        let done = a.new_label();
        // The divisor goes to rcx: from the register, or the immediate as the interpreter sees it.
        if op & SRC_X != 0 {
            a.mov_rr(w, RCX, s);
            a.test_rr(w, RCX, RCX);
            a.jcc(Cond::E, zero);
            if signed {
                a.alu_ri(Alu::Cmp, w, RCX, -1);
                a.jcc(Cond::E, minus_one);
            }
        } else if insn.imm == 0 {
            a.jmp(zero);
        } else if signed && insn.imm == -1 {
            a.jmp(minus_one);
        } else if blinded(a, blind, w, RCX, insn.imm) {
            // The divisor, rebuilt in rcx.
        } else if wide {
            a.mov_r64_simm(RCX, insn.imm);
        } else {
            a.mov_r32_imm(RCX, insn.imm as u32);
        }
        a.mov_rr(w, RAX, d);
        if signed {
            a.sign_extend_ax(w);
            a.idiv(w, RCX);
        } else {
            a.alu_rr(Alu::Xor, W::B32, RDX, RDX);
            a.div(w, RCX);
        }
        a.mov_rr(w, d, if is_mod { RDX } else { RAX });
        a.load(W::B64, DATA_NEG, ctx(OFF_DATA_NEG));
        a.jmp(done);
        a.bind(minus_one);
        if is_mod {
            a.alu_rr(Alu::Xor, W::B32, d, d);
        } else {
            a.neg(w, d);
        }
        a.jmp(done);
        a.bind(zero);
        if !is_mod {
            a.alu_rr(Alu::Xor, W::B32, d, d);
        } else if !wide {
            a.mov_rr(W::B32, d, d);
        }
        a.bind(done);
    }
}

/// Whether this CPU has BMI2 (`rorx`); std detects it once and caches it.
fn bmi2() -> bool {
    std::arch::is_x86_feature_detected!("bmi2")
}

/// Most instructions a rotate idiom spans: two copies of x, their two shifts, the `or`.
const ROTATE_WINDOW: usize = 5;

/// For `dst *= 3, 5 or 9` (immediate form), the `lea` scale that computes it (1, 2 or 3).
fn lea_scale(insn: &Insn) -> Option<u8> {
    if !matches!(class(insn.opcode), CLASS_ALU | CLASS_ALU64) || insn.opcode & 0xf8 != ALU_MUL {
        return None;
    }
    match insn.imm {
        3 => Some(1),
        5 => Some(2),
        9 => Some(3),
        _ => None,
    }
}

/// A register's value within a rotate idiom, in terms of the values registers had before it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Val {
    Reg(u8),
    Shl(u8, u8),
    Shr(u8, u8),
}

/// A matched rotate idiom: after its `n` instructions, `d = rol(x, left)` and `t` (the `or`'s
/// source) holds x's value before them shifted by `t_shift` `t_count`; no other register changed.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Rotate {
    pub n: usize,
    pub wide: bool,
    pub d: u8,
    pub t: u8,
    pub x: u8,
    pub left: u8,
    pub t_shift: Shift,
    pub t_count: u8,
}

/// Whether `insn` may be in a rotate idiom of class `cls` before its last instruction: a copy
/// between registers or a shift by an immediate (`rotate_idiom` checks the rest).
#[inline(always)]
fn rotate_body(insn: &Insn, cls: u8) -> bool {
    matches!(insn.opcode ^ cls, op if op == ALU_MOV | SRC_X || op == ALU_LSH || op == ALU_RSH)
}

/// Whether `insn` may end a rotate idiom: a register `or`, `xor` or `add` (ALU64 or ALU).
#[inline(always)]
fn ends_rotate(insn: &Insn) -> bool {
    let cls = class(insn.opcode);
    matches!(cls, CLASS_ALU | CLASS_ALU64)
        && matches!(insn.opcode ^ cls, op if op == ALU_OR | SRC_X || op == ALU_XOR | SRC_X || op == ALU_ADD | SRC_X)
}

/// Whether the `n` instructions at `pc` (all ALU64, or all ALU) are copies between registers and
/// shifts by an immediate, ending with `d |= t` (or `^=`, `+=`: the same on disjoint bits) where
/// one of d and t holds `x << k` and the other `x >> (64 - k)` (32 for ALU), for the value x
/// had before them: clang's form of `x << k | x >> (64 - k)`, e.g. `t = x; t >>= 51; d = x;
/// d <<= 13; d |= t` or `t = x; t <<= 13; x >>= 51; x |= t`. The caller checks that no jump
/// lands inside.
pub(super) fn rotate_idiom(insns: &[Insn], pc: usize, n: usize) -> Option<Rotate> {
    let (last, body) = insns.get(pc..pc + n)?.split_last()?;
    if !ends_rotate(last) {
        return None;
    }
    let cls = class(last.opcode);
    let bits = if cls == CLASS_ALU64 { 64 } else { 32 };
    let mut val: [Val; 11] = std::array::from_fn(|r| Val::Reg(r as u8));
    let mut written = 0u16;
    for insn in body {
        let d = insn.dst as usize;
        let k = u8::try_from(insn.imm)
            .ok()
            .filter(|k| (1..bits).contains(k));
        val[d] = match (insn.opcode ^ cls, val[d], k) {
            (op, _, _) if op == ALU_MOV | SRC_X && insn.off == 0 => val[insn.src as usize],
            (ALU_LSH, Val::Reg(x), Some(k)) => Val::Shl(x, k),
            (ALU_RSH, Val::Reg(x), Some(k)) => Val::Shr(x, k),
            _ => return None,
        };
        written |= 1 << d;
    }
    let (d, t) = (last.dst, last.src);
    if d == t || written & !(1 << d | 1 << t) != 0 {
        return None;
    }
    let (x, left) = match (val[d as usize], val[t as usize]) {
        (Val::Shl(x, l), Val::Shr(y, r)) | (Val::Shr(y, r), Val::Shl(x, l))
            if x == y && l + r == bits =>
        {
            (x, l)
        }
        _ => return None,
    };
    let (t_shift, t_count) = match val[t as usize] {
        Val::Shl(_, k) => (Shift::Shl, k),
        Val::Shr(_, k) => (Shift::Shr, k),
        Val::Reg(_) => return None,
    };
    Some(Rotate {
        n,
        wide: cls == CLASS_ALU64,
        d,
        t,
        x,
        left,
        t_shift,
        t_count,
    })
}
