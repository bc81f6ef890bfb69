//! What the verifier knows about a number: its known bits ([`Tnum`]) and four ranges, signed and
//! unsigned, of the whole 64-bit register and of its low 32 bits (the kernel's `var_off`,
//! `smin_value` ... `u32_max_value` of `struct bpf_reg_state`). The five views describe the same
//! set of values, each from its side; after every change [`Bounds::sync`] lets each view learn
//! what the others know (the kernel's `reg_bounds_sync`), in the kernel's order, so that the
//! ranges we print and compare are the kernel's.
//!
//! The same bounds describe a pointer's variable offset; for a scalar they are its value.

use super::tnum::Tnum;

/// Known bits and ranges of a 64-bit value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Bounds {
    pub var_off: Tnum,
    pub smin: i64,
    pub smax: i64,
    pub umin: u64,
    pub umax: u64,
    pub s32_min: i32,
    pub s32_max: i32,
    pub u32_min: u32,
    pub u32_max: u32,
}

impl Default for Bounds {
    fn default() -> Bounds {
        Bounds::UNKNOWN
    }
}

impl Bounds {
    /// Any value (the kernel's `__mark_reg_unknown` bounds).
    pub const UNKNOWN: Bounds = Bounds {
        var_off: Tnum::UNKNOWN,
        smin: i64::MIN,
        smax: i64::MAX,
        umin: 0,
        umax: u64::MAX,
        s32_min: i32::MIN,
        s32_max: i32::MAX,
        u32_min: 0,
        u32_max: u32::MAX,
    };

    /// Exactly `v` (the kernel's `__mark_reg_known`).
    pub const fn constant(v: u64) -> Bounds {
        Bounds {
            var_off: Tnum::constant(v),
            smin: v as i64,
            smax: v as i64,
            umin: v,
            umax: v,
            s32_min: v as i32,
            s32_max: v as i32,
            u32_min: v as u32,
            u32_max: v as u32,
        }
    }

    /// Whether the value is one known number (bits and ranges agree on it).
    pub fn is_const(&self) -> bool {
        self.var_off.is_const() && self.smin == self.smax && self.umin == self.umax
    }

    /// Whether the low 32 bits are one known number.
    pub fn is_const32(&self) -> bool {
        self.var_off.subreg_is_const()
            && self.s32_min == self.s32_max
            && self.u32_min == self.u32_max
    }

    /// Whether the value is known, in the width a jump or ALU operation of `alu32` reads.
    pub fn is_const_in(&self, alu32: bool) -> bool {
        if alu32 {
            self.is_const32()
        } else {
            self.is_const()
        }
    }

    /// The known value in that width (the low 32 bits for `alu32`).
    pub fn const_value_in(&self, alu32: bool) -> u64 {
        if alu32 {
            self.var_off.value as u32 as u64
        } else {
            self.var_off.value
        }
    }

    /// Sets the low 32 bits to `v`, keeping the high half's bits (the kernel's
    /// `__mark_reg32_known`).
    pub fn mark_known32(&mut self, v: u32) {
        self.var_off = self.var_off.with_const_subreg(v);
        self.s32_min = v as i32;
        self.s32_max = v as i32;
        self.u32_min = v;
        self.u32_max = v;
    }

    pub fn mark_unbounded64(&mut self) {
        self.smin = i64::MIN;
        self.smax = i64::MAX;
        self.umin = 0;
        self.umax = u64::MAX;
    }

    pub fn mark_unbounded32(&mut self) {
        self.s32_min = i32::MIN;
        self.s32_max = i32::MAX;
        self.u32_min = 0;
        self.u32_max = u32::MAX;
    }

    /// Ranges narrowed to what the known bits allow, low half (`__update_reg32_bounds`).
    pub fn update_bounds32(&mut self) {
        let t = self.var_off.subreg();
        let (value, mask) = (t.value as u32, t.mask as u32);
        // Smallest signed: sign bit set if it may be; largest: every other unknown bit set.
        self.s32_min = self.s32_min.max((value | (mask & 0x8000_0000)) as i32);
        self.s32_max = self.s32_max.min((value | (mask & 0x7fff_ffff)) as i32);
        self.u32_min = self.u32_min.max(value);
        self.u32_max = self.u32_max.min(value | mask);
    }

    /// The same for the whole register (`__update_reg64_bounds`).
    pub fn update_bounds64(&mut self) {
        let t = self.var_off;
        self.smin = self.smin.max((t.value | (t.mask & (1 << 63))) as i64);
        self.smax = self.smax.min((t.value | (t.mask & !(1 << 63))) as i64);
        self.umin = self.umin.max(t.value);
        self.umax = self.umax.min(t.value | t.mask);
        // When the unsigned range and the bits have one value in common, that is the value.
        let next = t.step(self.umin);
        let umin_in_bits = t.contains(self.umin);
        if umin_in_bits && next > self.umax {
            *self = Bounds::constant(self.umin);
        } else if !umin_in_bits
            && (next == t.umax() || (next <= self.umax && t.step(next) > self.umax))
        {
            // The first value of the bits above `umin` is the last (of the bits, or within
            // `umax`).
            *self = Bounds::constant(next);
        }
    }

    pub fn update_bounds(&mut self) {
        self.update_bounds32();
        self.update_bounds64();
    }

    /// The 32-bit ranges learned from the 64-bit ones and from each other
    /// (`__reg32_deduce_bounds`).
    fn deduce_bounds32(&mut self) {
        // When the high halves of both ends are equal, the low halves form a range of their own.
        if self.umin >> 32 == self.umax >> 32 {
            self.u32_min = self.u32_min.max(self.umin as u32);
            self.u32_max = self.u32_max.min(self.umax as u32);
            if (self.umin as i32) <= (self.umax as i32) {
                self.s32_min = self.s32_min.max(self.umin as i32);
                self.s32_max = self.s32_max.min(self.umax as i32);
            }
        }
        if self.smin >> 32 == self.smax >> 32 {
            self.u32_min = self.u32_min.max(self.smin as u32);
            self.u32_max = self.u32_max.min(self.smax as u32);
            if (self.smin as i32) <= (self.smax as i32) {
                self.s32_min = self.s32_min.max(self.smin as i32);
                self.s32_max = self.s32_max.min(self.smax as i32);
            }
        }
        // High halves that are two consecutive numbers (0xffffffff then 0 counts too): the low
        // halves cross from negative to non-negative once, a valid signed 32-bit range.
        if ((self.umin >> 32) as u32).wrapping_add(1) == (self.umax >> 32) as u32
            && (self.umin as i32) < 0
            && (self.umax as i32) >= 0
        {
            self.s32_min = self.s32_min.max(self.umin as i32);
            self.s32_max = self.s32_max.min(self.umax as i32);
        }
        if ((self.smin >> 32) as u32).wrapping_add(1) == (self.smax >> 32) as u32
            && (self.smin as i32) < 0
            && (self.smax as i32) >= 0
        {
            self.s32_min = self.s32_min.max(self.smin as i32);
            self.s32_max = self.s32_max.min(self.smax as i32);
        }
        // An unsigned range whose ends share the sign bit is a signed range, and back.
        if (self.u32_min as i32) <= (self.u32_max as i32) {
            self.s32_min = self.s32_min.max(self.u32_min as i32);
            self.s32_max = self.s32_max.min(self.u32_max as i32);
        }
        if (self.s32_min as u32) <= (self.s32_max as u32) {
            self.u32_min = self.u32_min.max(self.s32_min as u32);
            self.u32_max = self.u32_max.min(self.s32_max as u32);
        } else if self.u32_max < self.s32_min as u32 {
            // The signed range crosses the sign boundary (two unsigned pieces) and the unsigned
            // range meets only its non-negative piece, as in the 64-bit case below.
            self.s32_min = self.u32_min as i32;
            self.u32_max = self.u32_max.min(self.s32_max as u32);
        } else if (self.s32_max as u32) < self.u32_min {
            // ... or only its negative piece.
            self.s32_max = self.u32_max as i32;
            self.u32_min = self.u32_min.max(self.s32_min as u32);
        }
    }

    /// The 64-bit signed and unsigned ranges learned from each other (`__reg64_deduce_bounds`).
    fn deduce_bounds64(&mut self) {
        if (self.umin as i64) <= (self.umax as i64) {
            self.smin = self.smin.max(self.umin as i64);
            self.smax = self.smax.min(self.umax as i64);
        }
        if (self.smin as u64) <= (self.smax as u64) {
            self.umin = self.umin.max(self.smin as u64);
            self.umax = self.umax.min(self.smax as u64);
        } else if self.umax < self.smin as u64 {
            // The signed range crosses the sign boundary, so unsigned it is two pieces: the top
            // of the u64 domain (its negative part) and the bottom (its non-negative part). An
            // unsigned range that meets only the non-negative piece bounds both.
            self.smin = self.umin as i64;
            self.umax = self.umax.min(self.smax as u64);
        } else if (self.smax as u64) < self.umin {
            // ... or only the negative piece.
            self.smax = self.umax as i64;
            self.umin = self.umin.max(self.smin as u64);
        }
    }

    /// The 64-bit ranges learned from the 32-bit ones (`__reg_deduce_mixed_bounds`).
    fn deduce_mixed_bounds(&mut self) {
        // The low half of every value lies in the 32-bit range: replace the low halves of the
        // 64-bit ends with the 32-bit ends, and keep what is tighter.
        let low = 0xffff_ffffu64;
        let new_umin = (self.umin & !low) | self.u32_min as u64;
        let new_umax = (self.umax & !low) | self.u32_max as u64;
        self.umin = self.umin.max(new_umin);
        self.umax = self.umax.min(new_umax);
        let new_smin = ((self.smin as u64 & !low) | self.u32_min as u64) as i64;
        let new_smax = ((self.smax as u64 & !low) | self.u32_max as u64) as i64;
        self.smin = self.smin.max(new_smin);
        self.smax = self.smax.min(new_smax);
        // After a sign-extending load the high half is all zeros or all ones; when the 64-bit
        // value fits in s32 and the 32-bit range is non-negative, the two are the same range.
        if self.s32_min >= 0 && self.smin >= i32::MIN as i64 && self.smax <= i32::MAX as i64 {
            self.smin = self.s32_min as i64;
            self.smax = self.s32_max as i64;
            self.umin = self.s32_min as u64;
            self.umax = self.s32_max as u64;
            self.var_off = self
                .var_off
                .intersect(Tnum::range(self.smin as u64, self.smax as u64));
        }
    }

    fn deduce_bounds(&mut self) {
        self.deduce_bounds32();
        self.deduce_bounds64();
        self.deduce_mixed_bounds();
    }

    /// The known bits learned from the unsigned ranges (`__reg_bound_offset`).
    fn bound_offset(&mut self) {
        let var64 = self.var_off.intersect(Tnum::range(self.umin, self.umax));
        let var32 = var64
            .subreg()
            .intersect(Tnum::range(self.u32_min as u64, self.u32_max as u64));
        self.var_off = var64.clear_subreg().or(var32);
    }

    /// Every view learns from the others (the kernel's `reg_bounds_sync`): ranges from bits,
    /// ranges from each other (three rounds, as Linux 6.18.44 does: what the 64-bit deduction
    /// of one round learns, the 32-bit deduction of the next uses),
    /// bits from ranges, and ranges from bits again.
    pub fn sync(&mut self) {
        self.update_bounds();
        self.deduce_bounds();
        self.deduce_bounds();
        self.deduce_bounds();
        self.bound_offset();
        self.update_bounds();
    }

    /// The 64-bit ranges set from the 32-bit ones after a 32-bit operation cleared the high
    /// half (`__reg_assign_32_into_64`): a signed 32-bit range carries over only when it is
    /// non-negative; otherwise the sync learns it again from the bits.
    pub fn assign_32_into_64(&mut self) {
        self.umin = self.u32_min as u64;
        self.umax = self.u32_max as u64;
        if self.s32_min >= 0 && self.s32_max >= 0 {
            self.smin = self.s32_min as i64;
            self.smax = self.s32_max as i64;
        } else {
            self.smin = 0;
            self.smax = u32::MAX as i64;
        }
    }

    /// The high half cleared, as every 32-bit ALU operation does (`zext_32_to_64`).
    pub fn zext_32_to_64(&mut self) {
        self.var_off = self.var_off.subreg();
        self.assign_32_into_64();
    }

    /// Truncated to the low `size` bytes and zero-extended, as a narrow load or a narrowing
    /// move sees it (`coerce_reg_to_size`).
    pub fn coerce_to_size(&mut self, size: u8) {
        if size >= 8 {
            return;
        }
        self.var_off = self.var_off.cast(size);
        let mask = (1u64 << (size as u32 * 8)) - 1;
        if self.umin & !mask == self.umax & !mask {
            self.umin &= mask;
            self.umax &= mask;
        } else {
            self.umin = 0;
            self.umax = mask;
        }
        self.smin = self.umin as i64;
        self.smax = self.umax as i64;
        // Narrower than 32 bits: the 32-bit ranges are recomputed from the rest.
        if size < 4 {
            self.mark_unbounded32();
        }
        self.sync();
    }

    /// Sign-extended from its low `size` bytes (1, 2 or 4) to 64 bits, as `movsx` and a
    /// sign-extending load do (`coerce_reg_to_size_sx`). Not synced afterwards (the kernel
    /// does not either).
    pub fn coerce_to_size_sx(&mut self, size: u8) {
        let bits = size as u32 * 8;
        let extend = |v: u64| -> i64 {
            match size {
                1 => v as i8 as i64,
                2 => v as i16 as i64,
                _ => v as i32 as i64,
            }
        };
        if self.var_off.is_const() {
            *self = Bounds::constant(extend(self.var_off.value) as u64);
            return;
        }
        // The low half's signed range within the `size`-byte signed range: the low bytes'
        // signed value is the low half's, and so is the result's (Linux 6.18.44; for `size` 4
        // always so).
        let (min, max) = sext_limits(size);
        if self.s32_min as i64 >= min && self.s32_max as i64 <= max {
            self.smin = self.s32_min as i64;
            self.smax = self.s32_max as i64;
            self.umin = 0;
            self.umax = u64::MAX;
            self.var_off = Tnum::UNKNOWN;
            self.sync();
            return;
        }
        // When the bits above the low `size` bytes are the same at both signed ends, the low
        // bytes of the values form one range; if both of its ends sign-extend the same way the
        // result is that range.
        let top_max = (self.smax as u64 >> bits) << bits;
        let top_min = (self.smin as u64 >> bits) << bits;
        if top_max == top_min {
            let a = extend(self.smax as u64);
            let b = extend(self.smin as u64);
            let (lo, hi) = (a.min(b), a.max(b));
            if (lo >= 0) == (hi >= 0) {
                self.smin = lo;
                self.smax = hi;
                self.s32_min = lo as i32;
                self.s32_max = hi as i32;
                self.umin = lo as u64;
                self.umax = hi as u64;
                self.u32_min = lo as u32;
                self.u32_max = hi as u32;
                self.var_off = Tnum::range(lo as u64, hi as u64);
                return;
            }
        }
        self.set_sext64_default(size);
    }

    /// Any value a sign extension from `size` bytes gives (`set_sext64_default_val`).
    fn set_sext64_default(&mut self, size: u8) {
        let (min, max) = sext_limits(size);
        self.smin = min;
        self.smax = max;
        self.s32_min = min as i32;
        self.s32_max = max as i32;
        self.umin = 0;
        self.u32_min = 0;
        self.umax = u64::MAX;
        self.u32_max = u32::MAX;
        self.var_off = Tnum::UNKNOWN;
    }

    /// The low 32 bits sign-extended from their low `size` bytes (1 or 2), as 32-bit `movsx`
    /// does (`coerce_subreg_to_size_sx`); the caller zero-extends into 64 bits.
    pub fn coerce_subreg_to_size_sx(&mut self, size: u8) {
        let bits = size as u32 * 8;
        let extend = |v: u32| -> i32 {
            if size == 1 {
                v as i8 as i32
            } else {
                v as i16 as i32
            }
        };
        if self.var_off.is_const() {
            let v = extend(self.var_off.value as u32);
            self.var_off = Tnum::constant(v as i64 as u64);
            self.s32_min = v;
            self.s32_max = v;
            self.u32_min = v as u32;
            self.u32_max = v as u32;
            return;
        }
        let top_max = (self.s32_max as u32 >> bits) << bits;
        let top_min = (self.s32_min as u32 >> bits) << bits;
        if top_max == top_min {
            let a = extend(self.s32_max as u32);
            let b = extend(self.s32_min as u32);
            let (lo, hi) = (a.min(b), a.max(b));
            if (lo >= 0) == (hi >= 0) {
                self.s32_min = lo;
                self.s32_max = hi;
                self.u32_min = lo as u32;
                self.u32_max = hi as u32;
                self.var_off = Tnum::range(lo as i64 as u64, hi as i64 as u64).subreg();
                return;
            }
        }
        let (min, max) = sext_limits(size);
        self.s32_min = min as i32;
        self.s32_max = max as i32;
        self.u32_min = 0;
        self.u32_max = u32::MAX;
        self.var_off = Tnum::UNKNOWN.subreg();
    }
}

/// The signed range of a `size`-byte integer.
fn sext_limits(size: u8) -> (i64, i64) {
    match size {
        1 => (i8::MIN as i64, i8::MAX as i64),
        2 => (i16::MIN as i64, i16::MAX as i64),
        _ => (i32::MIN as i64, i32::MAX as i64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synced(mut b: Bounds) -> Bounds {
        b.sync();
        b
    }

    #[test]
    fn a_constant_is_its_own_range() {
        let b = Bounds::constant(0xffff_ffff_ffff_fffb); // -5
        assert!(b.is_const());
        assert_eq!((b.smin, b.s32_min, b.u32_min), (-5, -5, 0xffff_fffb));
        assert_eq!(synced(b), b);
    }

    #[test]
    fn ranges_follow_from_known_bits() {
        // 0..=255 from the bits (0x0; 0xff): every view is 0..=255.
        let b = synced(Bounds {
            var_off: Tnum::new(0, 0xff),
            ..Bounds::UNKNOWN
        });
        assert_eq!((b.smin, b.smax, b.umin, b.umax), (0, 255, 0, 255));
        assert_eq!(
            (b.s32_min, b.s32_max, b.u32_min, b.u32_max),
            (0, 255, 0, 255)
        );
    }

    #[test]
    fn known_bits_follow_from_ranges() {
        // umax 100: below 128, so bits 7 and up are known zero: (0x0; 0x7f), as the kernel
        // prints after `if r0 > 100` on the fall-through branch.
        let b = synced(Bounds {
            umax: 100,
            ..Bounds::UNKNOWN
        });
        assert_eq!(b.var_off, Tnum::new(0, 0x7f));
        assert_eq!((b.smin, b.smax, b.s32_min, b.s32_max), (0, 100, 0, 100));
    }

    #[test]
    fn a_signed_range_that_crosses_zero_leaves_unsigned_unknown() {
        // -5..=250: unsigned it wraps, so nothing unsigned is known; 32-bit is the same range.
        let b = synced(Bounds {
            smin: -5,
            smax: 250,
            ..Bounds::UNKNOWN
        });
        assert_eq!((b.umin, b.umax), (0, u64::MAX));
        assert_eq!((b.s32_min, b.s32_max), (-5, 250));
        assert_eq!((b.u32_min, b.u32_max), (0, u32::MAX));
    }

    #[test]
    fn zero_extension_keeps_a_non_negative_32_bit_range() {
        let mut b = Bounds {
            var_off: Tnum::new(0x5_0000_0000, 0xf),
            s32_min: 0,
            s32_max: 15,
            u32_min: 0,
            u32_max: 15,
            ..Bounds::UNKNOWN
        };
        b.zext_32_to_64();
        assert_eq!(b.var_off, Tnum::new(0, 0xf));
        assert_eq!((b.smin, b.smax, b.umin, b.umax), (0, 15, 0, 15));
    }

    #[test]
    fn narrowing_and_sign_extension() {
        // 0x1_0000_0005..=0x1_0000_0007 to 1 byte: 5..=7.
        let mut b = synced(Bounds {
            umin: 0x1_0000_0005,
            umax: 0x1_0000_0007,
            ..Bounds::UNKNOWN
        });
        b.coerce_to_size(1);
        assert_eq!((b.umin, b.umax, b.smin, b.smax), (5, 7, 5, 7));
        // 0x80..=0x81 sign-extended from one byte: -128..=-127.
        let mut b = synced(Bounds {
            umin: 0x80,
            umax: 0x81,
            ..Bounds::UNKNOWN
        });
        b.coerce_to_size_sx(1);
        assert_eq!((b.smin, b.smax), (-128, -127));
        assert_eq!(b.umin, (-128i64) as u64);
        // 0x7f..=0x80 crosses the sign of a byte: any s8.
        let mut b = synced(Bounds {
            umin: 0x7f,
            umax: 0x80,
            ..Bounds::UNKNOWN
        });
        b.coerce_to_size_sx(1);
        assert_eq!((b.smin, b.smax, b.umin, b.umax), (-128, 127, 0, u64::MAX));
        assert_eq!(b.var_off, Tnum::UNKNOWN);
    }
}
