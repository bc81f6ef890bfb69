//! Constant blinding, as the kernel's `bpf_jit_blind_constants` (with `bpf_jit_harden`) and sbpf do
//! it. Without it the JIT copies the program's immediates into executable memory as they are, so
//! untrusted bytecode chooses 4 (or 8) bytes of machine code per instruction: the raw material of a
//! JIT-spray attack, which jumps into the middle of such constants.
//!
//! With blinding, every constant the program chose (ALU and JMP immediates, store immediates,
//! `lddw`, legacy packet load offsets, helper numbers, loop bounds the fast-loop check uses) is
//! emitted as `imm ^ key` and rebuilt at run time into a scratch register (`mov r, imm ^ key;
//! xor r, key`), with a fresh random key per instruction drawn from a per-program random seed;
//! the instruction then uses the register. The code holds `imm ^ key` and `key`, never `imm`.
//!
//! As in sbpf (`should_sanitize_constant`), constants that choose at most one byte are left as
//! they are: values from -256 to 255 (the rest of their bytes are all 0 or all 1) and the masks
//! 0xffff .. 0xffff_ffff_ffff_ff. They are most of a program's constants (loop steps, small
//! bounds, shift counts, flags) and the cheapest to leave; one chosen byte between bytes the JIT
//! chose is no sprayed instruction. The kernel blinds them too, at a cost measured in
//! BENCHMARKS.md.
//!
//! Not blinded, as in the kernel: 16-bit memory offsets and jump offsets, and numbers the compiler
//! derives from the program's shape (instruction indices, block lengths), which the program cannot
//! set to arbitrary 32-bit values.

use std::hash::{BuildHasher, RandomState};

use super::frame::{OFF_POOL, POOL_SLOTS};
use super::x86::{mem, Alu, Asm, Mem, RAX, RSP, W};

/// Whether a constant (as the instruction sees it, 64 bits) lets the program choose more than one
/// byte of the code: what is worth blinding (sbpf's rule).
pub fn worth_blinding(v: u64) -> bool {
    const MASKS: [u64; 6] = [
        0xffff,
        0xff_ffff,
        0xffff_ffff,
        0xff_ffff_ffff,
        0xffff_ffff_ffff,
        0xff_ffff_ffff_ffff,
    ];
    !(v <= 0xff || !v <= 0xff || MASKS.contains(&v))
}

/// Draws the keys of one program: xorshift64* from a random seed (std's per-process random
/// `RandomState`, a new one per program).
pub struct Blinder {
    state: u64,
    /// Constants that the code's entry rebuilt once into `Ctx::pool` (their slot is their
    /// index): `load` reads them from there, one load instead of two instructions each time.
    pool: Vec<i32>,
}

impl Blinder {
    pub fn new() -> Blinder {
        // A xorshift state must not be 0.
        let seed = RandomState::new().hash_one(0x9e37_79b9_u64) | 1;
        Blinder {
            state: seed,
            pool: Vec::new(),
        }
    }

    fn next(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A non-zero 32-bit key (zero would leave the constant as it is).
    fn key32(&mut self) -> i32 {
        loop {
            let k = self.next() as u32 as i32;
            if k != 0 {
                return k;
            }
        }
    }

    /// `reg = imm` as an instruction of width `w` sees its immediate: sign-extended to 64 bits
    /// (`W::B64`), or the 32-bit value zero-extended (any narrower width).
    pub fn load(&mut self, a: &mut Asm, w: W, reg: u8, imm: i32) {
        if let Some(k) = self.pool.iter().position(|&c| c == imm) {
            // The slot holds the constant sign-extended; a 32-bit load zero-extends its low half.
            let w = if w == W::B64 { W::B64 } else { W::B32 };
            a.load(w, reg, mem(RSP, OFF_POOL + 8 * k as i32));
            return;
        }
        self.rebuild(a, w, reg, imm);
    }

    /// Where the code's entry rebuilt `imm` (sign-extended to 64 bits), if it is in the pool: an
    /// operand an instruction of any width can read in place of the immediate (a 32-bit one
    /// reads the low half, the immediate as it is).
    pub fn pooled(&self, imm: i32) -> Option<Mem> {
        let k = self.pool.iter().position(|&c| c == imm)?;
        Some(mem(RSP, OFF_POOL + 8 * k as i32))
    }

    /// Emits, where the code starts, the rebuilding of `consts` (at most `POOL_SLOTS`) into
    /// `Ctx::pool`, and has `load` read them from there from now on. Clobbers rax.
    pub fn fill_pool(&mut self, a: &mut Asm, consts: &[i32]) {
        debug_assert!(consts.len() <= POOL_SLOTS);
        for (k, &c) in consts.iter().enumerate() {
            self.rebuild(a, W::B64, RAX, c);
            a.store(W::B64, mem(RSP, OFF_POOL + 8 * k as i32), RAX);
        }
        self.pool = consts.to_vec();
    }

    fn rebuild(&mut self, a: &mut Asm, w: W, reg: u8, imm: i32) {
        let key = self.key32();
        if w == W::B64 {
            // sext(imm ^ key) ^ sext(key) = sext(imm).
            a.mov_r64_simm(reg, imm ^ key);
            a.alu_ri(Alu::Xor, W::B64, reg, key);
        } else {
            a.mov_r32_imm(reg, (imm ^ key) as u32);
            a.alu_ri(Alu::Xor, W::B32, reg, key);
        }
    }

    /// `reg = v` for a 64-bit constant, with `scratch` (another register) clobbered.
    pub fn load64(&mut self, a: &mut Asm, reg: u8, v: u64, scratch: u8) {
        let key = loop {
            let k = self.next();
            // Both halves differ from zero, so neither half of `v` appears as it is.
            if k as u32 != 0 && k >> 32 != 0 {
                break k;
            }
        };
        a.mov_imm64(reg, v ^ key);
        a.mov_imm64(scratch, key);
        a.alu_rr(Alu::Xor, W::B64, reg, scratch);
    }
}

#[cfg(test)]
mod tests {
    use super::worth_blinding;

    #[test]
    fn one_chosen_byte_is_not_worth_blinding() {
        for v in [
            0u64,
            1,
            0x7f,
            0x80,
            0xff,
            u64::MAX,
            (-256i64) as u64,
            0xffff,
            0xffff_ffff,
        ] {
            assert!(!worth_blinding(v), "{v:#x}");
        }
        for v in [
            0x100u64,
            (-257i64) as u64,
            0x1234,
            0xfffe,
            0x1_0000,
            0x8000_0000,
            1 << 63,
        ] {
            assert!(worth_blinding(v), "{v:#x}");
        }
    }
}
