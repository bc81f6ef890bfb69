//! Tracked numbers (the kernel's `tnum`): what is known about each bit of a 64-bit value. A bit is
//! known 0, known 1, or unknown; `mask` has a 1 for each unknown bit and `value` holds the known
//! bits (0 where unknown). Every operation over-approximates: the result describes every value the
//! operation can produce from values the operands describe.
//!
//! The operations follow Linux 6.18 (`kernel/bpf/tnum.c`) so that the states we print are the
//! kernel's: the verifier's log and its pruning depend on exactly these approximations.

use std::fmt;

/// Known bits of a value: `value` the known ones, `mask` the unknown ones (never both set).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Tnum {
    pub value: u64,
    pub mask: u64,
}

impl Tnum {
    /// Nothing known.
    pub const UNKNOWN: Tnum = Tnum {
        value: 0,
        mask: u64::MAX,
    };

    pub const fn new(value: u64, mask: u64) -> Tnum {
        Tnum { value, mask }
    }

    /// Exactly `value`.
    pub const fn constant(value: u64) -> Tnum {
        Tnum { value, mask: 0 }
    }

    /// The smallest tnum holding every value of `min..=max` (unsigned): the bits above the highest
    /// bit where `min` and `max` differ are known; that bit and everything below are not.
    pub fn range(min: u64, max: u64) -> Tnum {
        let differing = min ^ max;
        let bits = 64 - differing.leading_zeros();
        if bits > 63 {
            return Tnum::UNKNOWN;
        }
        let low = (1u64 << bits) - 1;
        Tnum::new(min & !low, low)
    }

    pub fn is_const(self) -> bool {
        self.mask == 0
    }

    pub fn is_unknown(self) -> bool {
        self.mask == u64::MAX
    }

    /// Whether the low 32 bits are all known.
    pub fn subreg_is_const(self) -> bool {
        self.mask as u32 == 0
    }

    /// Whether the value may equal `v`.
    pub fn contains(self, v: u64) -> bool {
        v & !self.mask == self.value
    }

    /// Whether every value of `b` is a value of `self` (the kernel's `tnum_in(self, b)`).
    pub fn includes(self, b: Tnum) -> bool {
        if b.mask & !self.mask != 0 {
            return false;
        }
        self.value == b.value & !self.mask
    }

    /// The smallest member greater than `z`, for `value <= z < umax()`; `value` below the
    /// smallest member, `umax()` from the largest on (the kernel's `tnum_step`). Found from the
    /// top bit down: follow `z` while the known bits allow; where a known bit is above `z`'s,
    /// the rest is the smallest completion; where it is below, or at the end (`z` itself),
    /// raise the lowest unknown bit passed where `z` has a 0.
    pub fn step(self, z: u64) -> u64 {
        let max = self.umax();
        if z >= max {
            return max;
        }
        if z < self.value {
            return self.value;
        }
        // Bits at and below position `i`.
        let low = |i: u32| if i == 63 { u64::MAX } else { (2u64 << i) - 1 };
        let mut raise: Option<u32> = None;
        for i in (0..64).rev() {
            let bit = 1u64 << i;
            let z_bit = z & bit != 0;
            if self.mask & bit != 0 {
                if !z_bit {
                    raise = Some(i);
                }
                continue;
            }
            let v_bit = self.value & bit != 0;
            if v_bit == z_bit {
                continue;
            }
            if v_bit {
                return (z & !low(i)) | (self.value & low(i));
            }
            break;
        }
        match raise {
            Some(p) => {
                let bit = 1u64 << p;
                (z & !low(p)) | bit | (self.value & (bit - 1))
            }
            None => max,
        }
    }

    /// The smallest and largest values, unsigned.
    pub fn umin(self) -> u64 {
        self.value
    }

    pub fn umax(self) -> u64 {
        self.value | self.mask
    }

    pub fn lshift(self, shift: u8) -> Tnum {
        Tnum::new(self.value << shift, self.mask << shift)
    }

    pub fn rshift(self, shift: u8) -> Tnum {
        Tnum::new(self.value >> shift, self.mask >> shift)
    }

    /// Arithmetic right shift by `shift`, of the whole register (`bits` 64) or of its low half
    /// (`bits` 32, the result zero-extended). An unknown sign bit stays unknown in every bit it
    /// fills, because the mask is shifted arithmetically too.
    pub fn arshift(self, shift: u8, bits: u8) -> Tnum {
        if bits == 32 {
            Tnum::new(
                ((self.value as i32) >> shift) as u32 as u64,
                ((self.mask as i32) >> shift) as u32 as u64,
            )
        } else {
            Tnum::new(
                ((self.value as i64) >> shift) as u64,
                ((self.mask as i64) >> shift) as u64,
            )
        }
    }

    pub fn and(self, b: Tnum) -> Tnum {
        let may_a = self.value | self.mask;
        let may_b = b.value | b.mask;
        let ones = self.value & b.value;
        Tnum::new(ones, may_a & may_b & !ones)
    }

    pub fn or(self, b: Tnum) -> Tnum {
        let ones = self.value | b.value;
        Tnum::new(ones, (self.mask | b.mask) & !ones)
    }

    pub fn xor(self, b: Tnum) -> Tnum {
        let unknown = self.mask | b.mask;
        Tnum::new((self.value ^ b.value) & !unknown, unknown)
    }

    /// What both describe, when both hold (a bit known 1 in one and known 0 in the other comes
    /// out known 1: the caller knows the two agree).
    pub fn intersect(self, b: Tnum) -> Tnum {
        let unknown = self.mask & b.mask;
        Tnum::new((self.value | b.value) & !unknown, unknown)
    }

    /// What either describes: bits where the two disagree become unknown.
    pub fn union(self, b: Tnum) -> Tnum {
        let unknown = (self.value ^ b.value) | self.mask | b.mask;
        Tnum::new(self.value & b.value & !unknown, unknown)
    }

    /// The low `size` bytes (1, 2, 4 or 8), zero-extended.
    pub fn cast(self, size: u8) -> Tnum {
        if size >= 8 {
            return self;
        }
        let keep = (1u64 << (size as u32 * 8)) - 1;
        Tnum::new(self.value & keep, self.mask & keep)
    }

    /// Whether every value is a multiple of `size` (a power of two; 0 counts as aligned).
    pub fn is_aligned(self, size: u64) -> bool {
        size == 0 || (self.value | self.mask) & (size - 1) == 0
    }

    /// The low 32 bits, zero-extended.
    pub fn subreg(self) -> Tnum {
        self.cast(4)
    }

    /// The high 32 bits, with the low 32 known zero.
    pub fn clear_subreg(self) -> Tnum {
        self.rshift(32).lshift(32)
    }

    /// The high half of `self` with the low half of `subreg`.
    pub fn with_subreg(self, subreg: Tnum) -> Tnum {
        self.clear_subreg().or(subreg.subreg())
    }

    /// The high half of `self` with the low half exactly `value`.
    pub fn with_const_subreg(self, value: u32) -> Tnum {
        self.with_subreg(Tnum::constant(value as u64))
    }

    /// Byte swap of the low `bits` (16, 32 or 64) bits, the rest zero: each known bit moves with
    /// its byte.
    pub fn bswap(self, bits: u8) -> Tnum {
        match bits {
            16 => Tnum::new(
                (self.value as u16).swap_bytes() as u64,
                (self.mask as u16).swap_bytes() as u64,
            ),
            32 => Tnum::new(
                (self.value as u32).swap_bytes() as u64,
                (self.mask as u32).swap_bytes() as u64,
            ),
            _ => Tnum::new(self.value.swap_bytes(), self.mask.swap_bytes()),
        }
    }
}

impl std::ops::Add for Tnum {
    type Output = Tnum;

    /// Addition: the carries that unknown bits may produce are unknown.
    fn add(self, b: Tnum) -> Tnum {
        let masks = self.mask.wrapping_add(b.mask);
        let values = self.value.wrapping_add(b.value);
        // Where the sum with every unknown bit set differs from the sum with none set, a carry
        // may or may not happen.
        let carries = masks.wrapping_add(values) ^ values;
        let unknown = carries | self.mask | b.mask;
        Tnum::new(values & !unknown, unknown)
    }
}

impl std::ops::Sub for Tnum {
    type Output = Tnum;

    /// Subtraction: the borrows that unknown bits may produce are unknown.
    fn sub(self, b: Tnum) -> Tnum {
        let diff = self.value.wrapping_sub(b.value);
        let highest = diff.wrapping_add(self.mask);
        let lowest = diff.wrapping_sub(b.mask);
        let unknown = (highest ^ lowest) | self.mask | b.mask;
        Tnum::new(diff & !unknown, unknown)
    }
}

impl std::ops::Mul for Tnum {
    type Output = Tnum;

    /// Multiplication as long multiplication over the bits of `self`: a known 1 adds the shifted
    /// `b`, an unknown bit adds the union of "added" and "not added".
    fn mul(self, b: Tnum) -> Tnum {
        let (mut a, mut b) = (self, b);
        let mut acc = Tnum::constant(0);
        while a.value != 0 || a.mask != 0 {
            if a.value & 1 != 0 {
                acc = acc + b;
            } else if a.mask & 1 != 0 {
                acc = acc.union(acc + b);
            }
            a = a.rshift(1);
            b = b.lshift(1);
        }
        acc
    }
}

impl std::ops::Neg for Tnum {
    type Output = Tnum;

    fn neg(self) -> Tnum {
        Tnum::constant(0) - self
    }
}

/// As the kernel prints it: `(0x0; 0xff)` (value; mask), `%#llx`, so zero is `0x0`.
impl fmt::Display for Tnum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({:#x}; {:#x})", self.value, self.mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value a tnum of few unknown bits describes.
    fn members(t: Tnum) -> Vec<u64> {
        let bits: Vec<u32> = (0..64).filter(|b| t.mask >> b & 1 == 1).collect();
        assert!(bits.len() <= 10, "too many members to list");
        (0..1u64 << bits.len())
            .map(|k| {
                bits.iter()
                    .enumerate()
                    .fold(t.value, |v, (i, b)| v | ((k >> i & 1) << b))
            })
            .collect()
    }

    // Hand-computed examples.

    #[test]
    fn range_keeps_the_bits_above_the_highest_difference() {
        // 4..=7 = 0b1xx; 0..=255 = 8 unknown bits; 5..=5 = 5; 0..=u64::MAX unknown.
        assert_eq!(Tnum::range(4, 7), Tnum::new(4, 3));
        assert_eq!(Tnum::range(0, 255), Tnum::new(0, 0xff));
        assert_eq!(Tnum::range(5, 5), Tnum::constant(5));
        assert_eq!(Tnum::range(0, u64::MAX), Tnum::UNKNOWN);
        // 8..=9 = 0b100x; 7..=8 differ in bit 3: 0..=15.
        assert_eq!(Tnum::range(8, 9), Tnum::new(8, 1));
        assert_eq!(Tnum::range(7, 8), Tnum::new(0, 0xf));
    }

    #[test]
    fn add_and_sub_make_the_possible_carries_unknown() {
        // 0b0x + 1 = 1 or 2 = 0bxx.
        assert_eq!(Tnum::new(0, 1) + Tnum::constant(1), Tnum::new(0, 3));
        // 0bx0 + 1 = 1 or 3 = 0bx1.
        assert_eq!(Tnum::new(0, 2) + Tnum::constant(1), Tnum::new(1, 2));
        assert_eq!(Tnum::constant(7) + Tnum::constant(9), Tnum::constant(16));
        // 0b1xx - 1 = 3..=6: every low bit unknown.
        assert_eq!(Tnum::new(4, 3) - Tnum::constant(1), Tnum::new(0, 7));
        // 0bx00 - 1 is 3 or 7, but the borrow from the lowest possible value (0 - 1) runs
        // through every bit, and the kernel's formula keeps only the two low bits known.
        assert_eq!(Tnum::new(0, 4) - Tnum::constant(1), Tnum::new(3, !3));
        // 0 - 0bx = 0 or -1: every bit unknown.
        assert_eq!(Tnum::constant(0) - Tnum::new(0, 1), Tnum::UNKNOWN);
        assert_eq!(-Tnum::new(0, 1), Tnum::UNKNOWN);
        assert_eq!(-Tnum::constant(5), Tnum::constant(5u64.wrapping_neg()));
    }

    #[test]
    fn bitwise_operations() {
        // 0b1x & 0b011 = 0b01x & ... : values 2,3 & 3 = 2,3 = 0b1x.
        assert_eq!(Tnum::new(2, 1).and(Tnum::constant(3)), Tnum::new(2, 1));
        // unknown & 0xff = 0..0xff.
        assert_eq!(Tnum::UNKNOWN.and(Tnum::constant(0xff)), Tnum::new(0, 0xff));
        // 0bx0 | 0b01 = 0bx1.
        assert_eq!(Tnum::new(0, 2).or(Tnum::constant(1)), Tnum::new(1, 2));
        // 0bx1 ^ 0b11 = 0bx0.
        assert_eq!(Tnum::new(1, 2).xor(Tnum::constant(3)), Tnum::new(0, 2));
    }

    #[test]
    fn shifts() {
        assert_eq!(Tnum::new(1, 2).lshift(4), Tnum::new(0x10, 0x20));
        assert_eq!(Tnum::new(0x10, 0x20).rshift(4), Tnum::new(1, 2));
        // Unknown sign bit: every bit it fills is unknown.
        assert_eq!(
            Tnum::new(0, 1 << 63).arshift(60, 64),
            Tnum::new(0, 0xffff_ffff_ffff_fff8)
        );
        // Known negative 32-bit value, 32-bit shift: zero-extended result.
        assert_eq!(
            Tnum::constant(0x8000_0000).arshift(4, 32),
            Tnum::constant(0xf800_0000)
        );
    }

    #[test]
    fn mul_of_small_tnums_holds_every_product() {
        // 0b1x * 3 = {6, 9}: the union of 6 = 0b0110 and 9 = 0b1001 is 0bxxxx.
        let p = Tnum::new(2, 1) * Tnum::constant(3);
        assert!(p.contains(6) && p.contains(9));
        assert_eq!(Tnum::constant(6) * Tnum::constant(7), Tnum::constant(42));
        assert_eq!(Tnum::new(0, 3) * Tnum::constant(0), Tnum::constant(0));
    }

    #[test]
    fn intersect_union_and_subregisters() {
        assert_eq!(
            Tnum::new(0, 0xff).intersect(Tnum::new(0x10, 0xf0f)),
            Tnum::new(0x10, 0xf)
        );
        assert_eq!(Tnum::constant(1).union(Tnum::constant(2)), Tnum::new(0, 3));
        let t = Tnum::new(0x1_0000_0002, 0xf0_0000_0001);
        assert_eq!(t.subreg(), Tnum::new(2, 1));
        assert_eq!(t.clear_subreg(), Tnum::new(0x1_0000_0000, 0xf0_0000_0000));
        assert_eq!(
            t.with_const_subreg(7),
            Tnum::new(0x1_0000_0007, 0xf0_0000_0000)
        );
        assert_eq!(t.cast(1), Tnum::new(2, 1));
        assert_eq!(Tnum::new(0x12, 0x0f00).bswap(16), Tnum::new(0x1200, 0x0f));
    }

    #[test]
    fn printed_as_the_kernel_prints_it() {
        assert_eq!(Tnum::new(0, 0xff).to_string(), "(0x0; 0xff)");
        assert_eq!(Tnum::new(0x10, 0x7).to_string(), "(0x10; 0x7)");
    }

    // Soundness: each operation's result holds every concrete result, for small tnums.

    fn small_tnums() -> Vec<Tnum> {
        let mut out = Vec::new();
        for mask in [0u64, 1, 2, 3, 5, 0xc, 0x8000_0000_0000_0001, 0x8000_0000] {
            for value in [
                0u64,
                1,
                2,
                4,
                6,
                8,
                0x7fff_ffff_0000_0000,
                0xffff_ffff_ffff_fff0,
            ] {
                out.push(Tnum::new(value & !mask, mask));
            }
        }
        out
    }

    #[test]
    fn binary_operations_hold_every_concrete_result() {
        type Op = (fn(Tnum, Tnum) -> Tnum, fn(u64, u64) -> u64);
        let ops: [Op; 6] = [
            (|a, b| a + b, u64::wrapping_add),
            (|a, b| a - b, u64::wrapping_sub),
            (|a, b| a * b, u64::wrapping_mul),
            (Tnum::and, |a, b| a & b),
            (Tnum::or, |a, b| a | b),
            (Tnum::xor, |a, b| a ^ b),
        ];
        let all = small_tnums();
        for (abstract_op, concrete) in ops {
            for &a in &all {
                for &b in &all {
                    let r = abstract_op(a, b);
                    assert_eq!(r.value & r.mask, 0);
                    for x in members(a) {
                        for y in members(b) {
                            assert!(r.contains(concrete(x, y)), "{a} {b} -> {r}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn step_finds_the_next_member() {
        // x11100x0 after 241 (11110001) is 242 (11110010): the kernel's own example.
        let t = Tnum::new(0b0111_0000, 0b1000_0010);
        assert_eq!(t.step(241), 242);
        // Members of (0x0; 0x1000): 0 and 4096.
        assert_eq!(Tnum::new(0, 0x1000).step(256), 4096);
        assert_eq!(Tnum::new(0, 0x1000).step(0), 4096);
        // Every member, in order, by stepping, for a few small tnums.
        for t in [
            Tnum::new(0b100, 0b1011),
            Tnum::new(1, 0x30),
            Tnum::new(0, 7),
        ] {
            let mut all = members(t);
            all.sort_unstable();
            for w in all.windows(2) {
                for z in w[0]..w[1] {
                    assert_eq!(t.step(z), w[1], "{t} after {z}");
                }
            }
        }
    }

    #[test]
    fn range_holds_every_value_between() {
        for min in 0..40u64 {
            for max in min..40 {
                let t = Tnum::range(min, max);
                assert!((min..=max).all(|v| t.contains(v)));
            }
        }
    }
}
