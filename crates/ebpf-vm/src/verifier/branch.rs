//! Conditional jumps on scalars: whether a jump's outcome is already decided by what is known
//! (the kernel's `is_scalar_branch_taken`), and what each branch learns about both operands
//! (`regs_refine_cond_op` under `reg_set_min_max`), for every condition, 64- and 32-bit
//! (`jmp32` compares the low halves).

use super::bounds::Bounds;
use super::tnum::Tnum;
use crate::isa::opcodes::*;

/// A jump's outcome known before it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Taken {
    Always,
    Never,
    Unknown,
}

/// The condition that holds on the other branch: `a OP b` false means `a REV(OP) b` true.
/// `JSET`'s negation has no opcode; the kernel writes it `JSET | X`, and so do we.
pub fn reverse(op: u8) -> u8 {
    match op {
        JMP_JEQ => JMP_JNE,
        JMP_JNE => JMP_JEQ,
        JMP_JSET => JMP_JSET | SRC_X,
        o if o == JMP_JSET | SRC_X => JMP_JSET,
        JMP_JGE => JMP_JLT,
        JMP_JLT => JMP_JGE,
        JMP_JGT => JMP_JLE,
        JMP_JLE => JMP_JGT,
        JMP_JSGE => JMP_JSLT,
        JMP_JSLT => JMP_JSGE,
        JMP_JSGT => JMP_JSLE,
        JMP_JSLE => JMP_JSGT,
        o => o,
    }
}

/// The condition with its operands swapped: `a OP b` is `b FLIP(OP) a`.
pub fn flip(op: u8) -> u8 {
    match op {
        JMP_JGE => JMP_JLE,
        JMP_JLE => JMP_JGE,
        JMP_JGT => JMP_JLT,
        JMP_JLT => JMP_JGT,
        JMP_JSGE => JMP_JSLE,
        JMP_JSLE => JMP_JSGE,
        JMP_JSGT => JMP_JSLT,
        JMP_JSLT => JMP_JSGT,
        o => o,
    }
}

/// The view of a scalar a jump compares: unsigned and signed range and known bits, of the
/// whole register or (`jmp32`) of its low half.
struct View {
    umin: u64,
    umax: u64,
    smin: i64,
    smax: i64,
    value: u64,
    mask: u64,
}

fn view(b: &Bounds, jmp32: bool) -> View {
    if jmp32 {
        let t = b.var_off.subreg();
        View {
            umin: b.u32_min as u64,
            umax: b.u32_max as u64,
            smin: b.s32_min as i64,
            smax: b.s32_max as i64,
            value: t.value,
            mask: t.mask,
        }
    } else {
        View {
            umin: b.umin,
            umax: b.umax,
            smin: b.smin,
            smax: b.smax,
            value: b.var_off.value,
            mask: b.var_off.mask,
        }
    }
}

/// Whether `a OP b` is decided by what is known of the two scalars.
pub fn branch_taken(a: &Bounds, b: &Bounds, op: u8, jmp32: bool) -> Taken {
    let (x, y) = (view(a, jmp32), view(b, jmp32));
    let decided = |cond: bool| if cond { Taken::Always } else { Taken::Never };
    match op {
        JMP_JEQ | JMP_JNE => {
            let equal = op == JMP_JEQ;
            if x.mask == 0 && y.mask == 0 {
                return decided((x.value == y.value) == equal);
            }
            let disjoint = x.umin > y.umax
                || x.umax < y.umin
                || x.smin > y.smax
                || x.smax < y.smin
                // A bit known in both and different.
                || (x.value ^ y.value) & !(x.mask | y.mask) != 0
                || (!jmp32
                    && (a.u32_min > b.u32_max
                        || a.u32_max < b.u32_min
                        || a.s32_min > b.s32_max
                        || a.s32_max < b.s32_min));
            if disjoint {
                return decided(!equal);
            }
            Taken::Unknown
        }
        JMP_JSET => {
            // Decided only against a constant: some bit of it known set, or none possibly set.
            let (x, y) = if b.is_const_in(jmp32) {
                (x, y)
            } else if a.is_const_in(jmp32) {
                (y, x)
            } else {
                return Taken::Unknown;
            };
            if x.value & !x.mask & y.value != 0 {
                Taken::Always
            } else if (x.value | x.mask) & y.value == 0 {
                Taken::Never
            } else {
                Taken::Unknown
            }
        }
        JMP_JGT => order(x.umin > y.umax, x.umax <= y.umin),
        JMP_JGE => order(x.umin >= y.umax, x.umax < y.umin),
        JMP_JLT => order(x.umax < y.umin, x.umin >= y.umax),
        JMP_JLE => order(x.umax <= y.umin, x.umin > y.umax),
        JMP_JSGT => order(x.smin > y.smax, x.smax <= y.smin),
        JMP_JSGE => order(x.smin >= y.smax, x.smax < y.smin),
        JMP_JSLT => order(x.smax < y.smin, x.smin >= y.smax),
        JMP_JSLE => order(x.smax <= y.smin, x.smin > y.smax),
        _ => Taken::Unknown,
    }
}

fn order(always: bool, never: bool) -> Taken {
    if always {
        Taken::Always
    } else if never {
        Taken::Never
    } else {
        Taken::Unknown
    }
}

/// What each branch of `a OP b` learns: `((a, b) where the jump is taken, (a, b) where it falls
/// through)`, both synced (`reg_set_min_max`).
pub fn refine(a: &Bounds, b: &Bounds, op: u8, jmp32: bool) -> ((Bounds, Bounds), (Bounds, Bounds)) {
    let (mut fa, mut fb) = (*a, *b);
    refine_cond(&mut fa, &mut fb, reverse(op), jmp32);
    fa.sync();
    fb.sync();
    let (mut ta, mut tb) = (*a, *b);
    refine_cond(&mut ta, &mut tb, op, jmp32);
    ta.sync();
    tb.sync();
    ((ta, tb), (fa, fb))
}

/// Narrows `a` and `b` to the values where `a OP b` holds (`regs_refine_cond_op`).
pub fn refine_cond(a: &mut Bounds, b: &mut Bounds, op: u8, jmp32: bool) {
    // Greater-than forms are the less-than forms with the operands swapped.
    let (a, b, op) = match op {
        JMP_JGE | JMP_JGT | JMP_JSGE | JMP_JSGT => (b, a, flip(op)),
        _ => (a, b, op),
    };
    match op {
        JMP_JEQ if jmp32 => {
            a.u32_min = a.u32_min.max(b.u32_min);
            a.u32_max = a.u32_max.min(b.u32_max);
            a.s32_min = a.s32_min.max(b.s32_min);
            a.s32_max = a.s32_max.min(b.s32_max);
            (b.u32_min, b.u32_max, b.s32_min, b.s32_max) =
                (a.u32_min, a.u32_max, a.s32_min, a.s32_max);
            let low = a.var_off.subreg().intersect(b.var_off.subreg());
            a.var_off = a.var_off.with_subreg(low);
            b.var_off = b.var_off.with_subreg(low);
        }
        JMP_JEQ => {
            a.umin = a.umin.max(b.umin);
            a.umax = a.umax.min(b.umax);
            a.smin = a.smin.max(b.smin);
            a.smax = a.smax.min(b.smax);
            (b.umin, b.umax, b.smin, b.smax) = (a.umin, a.umax, a.smin, a.smax);
            a.var_off = a.var_off.intersect(b.var_off);
            b.var_off = a.var_off;
        }
        JMP_JNE => {
            // Only a constant at an end of the other's range removes a value.
            let (a, b) = if b.is_const_in(jmp32) { (a, b) } else { (b, a) };
            if !b.is_const_in(jmp32) {
                return;
            }
            let v = b.const_value_in(jmp32);
            if jmp32 {
                if a.u32_min == v as u32 {
                    a.u32_min = a.u32_min.wrapping_add(1);
                }
                if a.u32_max == v as u32 {
                    a.u32_max = a.u32_max.wrapping_sub(1);
                }
                if a.s32_min == v as i32 {
                    a.s32_min = a.s32_min.wrapping_add(1);
                }
                if a.s32_max == v as i32 {
                    a.s32_max = a.s32_max.wrapping_sub(1);
                }
            } else {
                if a.umin == v {
                    a.umin = a.umin.wrapping_add(1);
                }
                if a.umax == v {
                    a.umax = a.umax.wrapping_sub(1);
                }
                if a.smin == v as i64 {
                    a.smin = a.smin.wrapping_add(1);
                }
                if a.smax == v as i64 {
                    a.smax = a.smax.wrapping_sub(1);
                }
            }
        }
        JMP_JSET => {
            // Some bit of the constant is set: known only when the constant is a single bit.
            let (a, b) = if b.is_const_in(jmp32) { (a, b) } else { (b, a) };
            if !b.is_const_in(jmp32) {
                return;
            }
            let v = b.const_value_in(jmp32);
            if !v.is_power_of_two() {
                return;
            }
            set_known_bits(a, jmp32, |t| t.or(Tnum::constant(v)));
        }
        o if o == JMP_JSET | SRC_X => {
            // No bit of the constant is set.
            let (a, b) = if b.is_const_in(jmp32) { (a, b) } else { (b, a) };
            if !b.is_const_in(jmp32) {
                return;
            }
            let v = b.const_value_in(jmp32);
            // The ranges are forgotten first and learned again from the bits (Linux 6.18.44
            // does so on this branch, so that a branch no run takes cannot leave ranges that
            // contradict the bits).
            *a = Bounds {
                var_off: a.var_off,
                ..Bounds::UNKNOWN
            };
            set_known_bits(a, jmp32, |t| t.and(Tnum::constant(!v)));
        }
        JMP_JLE if jmp32 => {
            a.u32_max = a.u32_max.min(b.u32_max);
            b.u32_min = a.u32_min.max(b.u32_min);
        }
        JMP_JLE => {
            a.umax = a.umax.min(b.umax);
            b.umin = a.umin.max(b.umin);
        }
        JMP_JLT if jmp32 => {
            a.u32_max = a.u32_max.min(b.u32_max.wrapping_sub(1));
            b.u32_min = a.u32_min.wrapping_add(1).max(b.u32_min);
        }
        JMP_JLT => {
            a.umax = a.umax.min(b.umax.wrapping_sub(1));
            b.umin = a.umin.wrapping_add(1).max(b.umin);
        }
        JMP_JSLE if jmp32 => {
            a.s32_max = a.s32_max.min(b.s32_max);
            b.s32_min = a.s32_min.max(b.s32_min);
        }
        JMP_JSLE => {
            a.smax = a.smax.min(b.smax);
            b.smin = a.smin.max(b.smin);
        }
        JMP_JSLT if jmp32 => {
            a.s32_max = a.s32_max.min(b.s32_max.wrapping_sub(1));
            b.s32_min = a.s32_min.wrapping_add(1).max(b.s32_min);
        }
        JMP_JSLT => {
            a.smax = a.smax.min(b.smax.wrapping_sub(1));
            b.smin = a.smin.wrapping_add(1).max(b.smin);
        }
        _ => {}
    }
}

/// Applies `f` to the known bits of `a`, or (`jmp32`) of its low half only.
fn set_known_bits(a: &mut Bounds, jmp32: bool, f: impl Fn(Tnum) -> Tnum) {
    if jmp32 {
        a.var_off = a.var_off.with_subreg(f(a.var_off.subreg()));
    } else {
        a.var_off = f(a.var_off);
    }
}
