//! The ALU transfer functions on scalars: for each operation, the bounds of the result from the
//! bounds of the operands (the kernel's `adjust_scalar_min_max_vals` and its `scalar*_min_max_*`
//! family, Linux 6.18). Each operation updates the known bits, the 32-bit ranges and the 64-bit
//! ranges; a 32-bit operation then zero-extends, and every result is synced
//! ([`Bounds::sync`]).
//!
//! Where the kernel gives up, so do we, because the kernel's states are what we compare with:
//! division and modulo give an unknown scalar (whatever the operands; at run time BPF defines
//! `x / 0 = 0` and `x % 0 = x`, so a result always exists), and a shift by an amount that is not
//! a constant below the operand width gives an unknown 64-bit scalar, even for a 32-bit shift.

use super::bounds::Bounds;
use crate::isa::opcodes::*;

/// The result of `dst = dst OP src` (`alu32`: the 32-bit form, `wDST OP= wSRC`). `op` is the
/// operation's opcode bits (`ALU_ADD` ... `ALU_ARSH`, `ALU_NEG` ignores `src`); `ALU_MOV` and
/// `ALU_END` have their own functions ([`mov`], [`byte_swap`]).
pub fn scalar_alu(dst: &Bounds, src: &Bounds, op: u8, alu32: bool) -> Bounds {
    if !is_safe_to_compute(src, op, alu32) {
        return Bounds::UNKNOWN;
    }
    let mut d = *dst;
    match op {
        ALU_ADD => {
            add32(&mut d, src);
            add64(&mut d, src);
            d.var_off = d.var_off + src.var_off;
        }
        ALU_SUB => {
            sub32(&mut d, src);
            sub64(&mut d, src);
            d.var_off = d.var_off - src.var_off;
        }
        ALU_NEG => {
            // 0 - dst, with the subtraction's rules.
            let operand = *dst;
            d = Bounds::constant(0);
            sub32(&mut d, &operand);
            sub64(&mut d, &operand);
            d.var_off = -operand.var_off;
        }
        ALU_MUL => {
            d.var_off = d.var_off * src.var_off;
            mul32(&mut d, src);
            mul64(&mut d, src);
        }
        ALU_AND => {
            d.var_off = d.var_off.and(src.var_off);
            and32(&mut d, src);
            and64(&mut d, src);
        }
        ALU_OR => {
            d.var_off = d.var_off.or(src.var_off);
            or32(&mut d, src);
            or64(&mut d, src);
        }
        ALU_XOR => {
            d.var_off = d.var_off.xor(src.var_off);
            xor32(&mut d, src);
            xor64(&mut d, src);
        }
        ALU_LSH if alu32 => lsh32(&mut d, src),
        ALU_LSH => lsh64(&mut d, src),
        ALU_RSH if alu32 => rsh32(&mut d, src),
        ALU_RSH => rsh64(&mut d, src),
        ALU_ARSH if alu32 => arsh32(&mut d, src),
        ALU_ARSH => arsh64(&mut d, src),
        _ => return Bounds::UNKNOWN,
    }
    if alu32 {
        d.zext_32_to_64();
    }
    d.sync();
    d
}

/// Whether the kernel computes a range for this operation (`is_safe_to_compute_dst_reg_range`):
/// the arithmetic and bitwise operations always; shifts only by a constant below the width;
/// division and modulo never.
fn is_safe_to_compute(src: &Bounds, op: u8, alu32: bool) -> bool {
    match op {
        ALU_ADD | ALU_SUB | ALU_NEG | ALU_AND | ALU_XOR | ALU_OR | ALU_MUL => true,
        ALU_LSH | ALU_RSH | ALU_ARSH => {
            let width = if alu32 { 32 } else { 64 };
            src.is_const_in(alu32) && src.umax < width
        }
        _ => false,
    }
}

fn add32(d: &mut Bounds, s: &Bounds) {
    match (
        d.s32_min.checked_add(s.s32_min),
        d.s32_max.checked_add(s.s32_max),
    ) {
        (Some(lo), Some(hi)) => (d.s32_min, d.s32_max) = (lo, hi),
        _ => (d.s32_min, d.s32_max) = (i32::MIN, i32::MAX),
    }
    // When both ends wrap, or neither does, the sums are still a range; when only the upper
    // one does, the range covers the wrap point and nothing is known.
    let (lo, lo_wrapped) = d.u32_min.overflowing_add(s.u32_min);
    let (hi, hi_wrapped) = d.u32_max.overflowing_add(s.u32_max);
    if !lo_wrapped && hi_wrapped {
        (d.u32_min, d.u32_max) = (0, u32::MAX);
    } else {
        (d.u32_min, d.u32_max) = (lo, hi);
    }
}

fn add64(d: &mut Bounds, s: &Bounds) {
    match (d.smin.checked_add(s.smin), d.smax.checked_add(s.smax)) {
        (Some(lo), Some(hi)) => (d.smin, d.smax) = (lo, hi),
        _ => (d.smin, d.smax) = (i64::MIN, i64::MAX),
    }
    let (lo, lo_wrapped) = d.umin.overflowing_add(s.umin);
    let (hi, hi_wrapped) = d.umax.overflowing_add(s.umax);
    if !lo_wrapped && hi_wrapped {
        (d.umin, d.umax) = (0, u64::MAX);
    } else {
        (d.umin, d.umax) = (lo, hi);
    }
}

fn sub32(d: &mut Bounds, s: &Bounds) {
    match (
        d.s32_min.checked_sub(s.s32_max),
        d.s32_max.checked_sub(s.s32_min),
    ) {
        (Some(lo), Some(hi)) => (d.s32_min, d.s32_max) = (lo, hi),
        _ => (d.s32_min, d.s32_max) = (i32::MIN, i32::MAX),
    }
    // As for addition: only a lower end that wraps below zero alone loses the range.
    let (lo, lo_wrapped) = d.u32_min.overflowing_sub(s.u32_max);
    let (hi, hi_wrapped) = d.u32_max.overflowing_sub(s.u32_min);
    if lo_wrapped && !hi_wrapped {
        (d.u32_min, d.u32_max) = (0, u32::MAX);
    } else {
        (d.u32_min, d.u32_max) = (lo, hi);
    }
}

fn sub64(d: &mut Bounds, s: &Bounds) {
    match (d.smin.checked_sub(s.smax), d.smax.checked_sub(s.smin)) {
        (Some(lo), Some(hi)) => (d.smin, d.smax) = (lo, hi),
        _ => (d.smin, d.smax) = (i64::MIN, i64::MAX),
    }
    let (lo, lo_wrapped) = d.umin.overflowing_sub(s.umax);
    let (hi, hi_wrapped) = d.umax.overflowing_sub(s.umin);
    if lo_wrapped && !hi_wrapped {
        (d.umin, d.umax) = (0, u64::MAX);
    } else {
        (d.umin, d.umax) = (lo, hi);
    }
}

fn mul32(d: &mut Bounds, s: &Bounds) {
    match (
        d.u32_max.checked_mul(s.u32_max),
        d.u32_min.checked_mul(s.u32_min),
    ) {
        (Some(hi), Some(lo)) => (d.u32_min, d.u32_max) = (lo, hi),
        _ => (d.u32_min, d.u32_max) = (0, u32::MAX),
    }
    // The signed extremes are among the four products of the ends.
    let products = [
        d.s32_min.checked_mul(s.s32_min),
        d.s32_min.checked_mul(s.s32_max),
        d.s32_max.checked_mul(s.s32_min),
        d.s32_max.checked_mul(s.s32_max),
    ];
    if products.iter().all(Option::is_some) {
        let p = products.map(|p| p.unwrap_or_default());
        d.s32_min = *p.iter().min().unwrap_or(&i32::MIN);
        d.s32_max = *p.iter().max().unwrap_or(&i32::MAX);
    } else {
        (d.s32_min, d.s32_max) = (i32::MIN, i32::MAX);
    }
}

fn mul64(d: &mut Bounds, s: &Bounds) {
    match (d.umax.checked_mul(s.umax), d.umin.checked_mul(s.umin)) {
        (Some(hi), Some(lo)) => (d.umin, d.umax) = (lo, hi),
        _ => (d.umin, d.umax) = (0, u64::MAX),
    }
    let products = [
        d.smin.checked_mul(s.smin),
        d.smin.checked_mul(s.smax),
        d.smax.checked_mul(s.smin),
        d.smax.checked_mul(s.smax),
    ];
    if products.iter().all(Option::is_some) {
        let p = products.map(|p| p.unwrap_or_default());
        d.smin = *p.iter().min().unwrap_or(&i64::MIN);
        d.smax = *p.iter().max().unwrap_or(&i64::MAX);
    } else {
        (d.smin, d.smax) = (i64::MIN, i64::MAX);
    }
}

/// The signed 32-bit range of an unsigned one, when it does not cross the sign bit.
fn signed32_of_unsigned(d: &mut Bounds) {
    if (d.u32_min as i32) <= (d.u32_max as i32) {
        (d.s32_min, d.s32_max) = (d.u32_min as i32, d.u32_max as i32);
    } else {
        (d.s32_min, d.s32_max) = (i32::MIN, i32::MAX);
    }
}

fn signed64_of_unsigned(d: &mut Bounds) {
    if (d.umin as i64) <= (d.umax as i64) {
        (d.smin, d.smax) = (d.umin as i64, d.umax as i64);
    } else {
        (d.smin, d.smax) = (i64::MIN, i64::MAX);
    }
}

// The bitwise operations run after the known bits were combined (`d.var_off` is the result's).
// Result and source known (the kernel asks it of the combined bits): the result is that number.
// Otherwise the bits give one end of the unsigned range and the operands' ranges the other.

fn and32(d: &mut Bounds, s: &Bounds) {
    let bits = d.var_off.subreg();
    if s.var_off.subreg_is_const() && bits.is_const() {
        d.mark_known32(bits.value as u32);
        return;
    }
    d.u32_min = bits.value as u32;
    d.u32_max = d.u32_max.min(s.u32_max);
    signed32_of_unsigned(d);
}

fn and64(d: &mut Bounds, s: &Bounds) {
    if s.var_off.is_const() && d.var_off.is_const() {
        *d = Bounds::constant(d.var_off.value);
        return;
    }
    d.umin = d.var_off.value;
    d.umax = d.umax.min(s.umax);
    signed64_of_unsigned(d);
    d.update_bounds();
}

fn or32(d: &mut Bounds, s: &Bounds) {
    let bits = d.var_off.subreg();
    if s.var_off.subreg_is_const() && bits.is_const() {
        d.mark_known32(bits.value as u32);
        return;
    }
    d.u32_min = d.u32_min.max(s.u32_min);
    d.u32_max = (bits.value | bits.mask) as u32;
    signed32_of_unsigned(d);
}

fn or64(d: &mut Bounds, s: &Bounds) {
    if s.var_off.is_const() && d.var_off.is_const() {
        *d = Bounds::constant(d.var_off.value);
        return;
    }
    d.umin = d.umin.max(s.umin);
    d.umax = d.var_off.value | d.var_off.mask;
    signed64_of_unsigned(d);
    d.update_bounds();
}

fn xor32(d: &mut Bounds, s: &Bounds) {
    let bits = d.var_off.subreg();
    if s.var_off.subreg_is_const() && bits.is_const() {
        d.mark_known32(bits.value as u32);
        return;
    }
    d.u32_min = bits.value as u32;
    d.u32_max = (bits.value | bits.mask) as u32;
    signed32_of_unsigned(d);
}

fn xor64(d: &mut Bounds, s: &Bounds) {
    if s.var_off.is_const() && d.var_off.is_const() {
        *d = Bounds::constant(d.var_off.value);
        return;
    }
    d.umin = d.var_off.value;
    d.umax = d.var_off.value | d.var_off.mask;
    signed64_of_unsigned(d);
    d.update_bounds();
}

fn lsh32_ranges(d: &mut Bounds, shift_min: u64, shift_max: u64) {
    // Shifting left loses the sign.
    (d.s32_min, d.s32_max) = (i32::MIN, i32::MAX);
    if shift_max > 31 || d.u32_max as u64 > 1u64 << (31 - shift_max) {
        // A set bit may be shifted out.
        (d.u32_min, d.u32_max) = (0, u32::MAX);
    } else {
        d.u32_min <<= shift_min;
        d.u32_max <<= shift_max;
    }
}

fn lsh32(d: &mut Bounds, s: &Bounds) {
    let (shift_min, shift_max) = (s.u32_min as u64, s.u32_max as u64);
    let low = d.var_off.subreg();
    lsh32_ranges(d, shift_min, shift_max);
    d.var_off = low.lshift(shift_min as u8).subreg();
    d.mark_unbounded64();
    d.update_bounds32();
}

fn lsh64(d: &mut Bounds, s: &Bounds) {
    let (shift_min, shift_max) = (s.umin, s.umax);
    // `<< 32` then `s>> 32` is how compilers sign-extend a 32-bit value: shifted by exactly 32,
    // the 64-bit signed value is the low half's signed value times 2^32, so the signed 32-bit
    // range carries over (Linux 6.18.44 keeps negative ranges too).
    if shift_min == 32 && shift_max == 32 {
        d.smin = (d.s32_min as i64) << 32;
        d.smax = (d.s32_max as i64) << 32;
    } else {
        (d.smin, d.smax) = (i64::MIN, i64::MAX);
    }
    if d.umax > 1u64 << (63 - shift_max) {
        (d.umin, d.umax) = (0, u64::MAX);
    } else {
        d.umin <<= shift_min;
        d.umax <<= shift_max;
    }
    lsh32_ranges(d, shift_min, shift_max);
    d.var_off = d.var_off.lshift(shift_min as u8);
    d.update_bounds();
}

fn rsh32(d: &mut Bounds, s: &Bounds) {
    let (shift_min, shift_max) = (s.u32_min, s.u32_max);
    let low = d.var_off.subreg();
    (d.s32_min, d.s32_max) = (i32::MIN, i32::MAX);
    d.var_off = low.rshift(shift_min as u8);
    d.u32_min >>= shift_max;
    d.u32_max >>= shift_min;
    d.mark_unbounded64();
    d.update_bounds32();
}

fn rsh64(d: &mut Bounds, s: &Bounds) {
    let (shift_min, shift_max) = (s.umin, s.umax);
    (d.smin, d.smax) = (i64::MIN, i64::MAX);
    d.var_off = d.var_off.rshift(shift_min as u8);
    d.umin >>= shift_max;
    d.umax >>= shift_min;
    // The bits shifted in from the high half decide the low half: learned again from the bits.
    d.mark_unbounded32();
    d.update_bounds();
}

fn arsh32(d: &mut Bounds, s: &Bounds) {
    // The shift is a known constant here.
    let shift = s.u32_min;
    d.s32_min >>= shift;
    d.s32_max >>= shift;
    d.var_off = d.var_off.subreg().arshift(shift as u8, 32);
    (d.u32_min, d.u32_max) = (0, u32::MAX);
    d.mark_unbounded64();
    d.update_bounds32();
}

fn arsh64(d: &mut Bounds, s: &Bounds) {
    let shift = s.umin;
    d.smin >>= shift;
    d.smax >>= shift;
    d.var_off = d.var_off.arshift(shift as u8, 64);
    (d.umin, d.umax) = (0, u64::MAX);
    d.mark_unbounded32();
    d.update_bounds();
}

/// `dst = imm` (64-bit: the immediate sign-extended; 32-bit: zero-extended).
pub fn mov_imm(imm: i32, alu32: bool) -> Bounds {
    if alu32 {
        Bounds::constant(imm as u32 as u64)
    } else {
        Bounds::constant(imm as i64 as u64)
    }
}

/// The bounds of a scalar copied by `dst = src` with the move's offset (`off` 0: a plain copy;
/// 8, 16 or 32: `movsx`, sign-extending from that many bits) and width.
pub fn mov(src: &Bounds, off: i16, alu32: bool) -> Bounds {
    let mut d = *src;
    match (alu32, off) {
        (false, 0) => {}
        (false, bits) => d.coerce_to_size_sx((bits / 8) as u8),
        (true, 0) => {
            d.zext_32_to_64();
            d.sync();
        }
        (true, bits) => {
            d.coerce_subreg_to_size_sx((bits / 8) as u8);
            d.zext_32_to_64();
            d.sync();
        }
    }
    d
}

/// `dst = bswapN dst` / `dst = beN dst` / `dst = leN dst` on a little-endian machine. `swap` is
/// whether the bytes are swapped (always for the 64-bit class `bswap`, for `be` on little
/// endian); otherwise (`le` on little endian) the value is only truncated to `bits`.
pub fn byte_swap(dst: &Bounds, bits: u8, swap: bool) -> Bounds {
    if !swap {
        // A truncation: the ranges of what is kept survive.
        let mut d = *dst;
        d.coerce_to_size(bits / 8);
        return d;
    }
    // The bytes move: only the known bits follow them, the ranges are learned again.
    let mut d = Bounds {
        var_off: dst.var_off.bswap(bits),
        ..Bounds::UNKNOWN
    };
    d.sync();
    d
}
