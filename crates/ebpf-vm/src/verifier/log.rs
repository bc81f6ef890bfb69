//! The verifier's log, as Linux 6.18 prints it: registers (`R1=ctx() R10=fp0`,
//! `R0=scalar(smin=smin32=0,smax=umax=smax32=umax32=255,var_off=(0x0; 0xff))`), stack slots
//! (`fp-8=mmmmmmmm`, `fp-16=????3`, `fp-8=scalar(id=2)`), and the numbers in them (decimal when
//! small, hex otherwise).

use std::fmt::Write;

use super::bounds::Bounds;
use super::reg::{BaseType, RegState};
use super::state::{FuncState, SlotType, VerifierState, BPF_REG_SIZE};

/// Unsigned numbers up to this print in decimal (`%llu`), larger ones in hex (`%#llx`).
const UNUM_MAX_DECIMAL: u64 = u16::MAX as u64;
/// Signed numbers in this range print in decimal (`%lld`), others in hex of their bits.
const SNUM_DECIMAL: std::ops::RangeInclusive<i64> = i16::MIN as i64..=i16::MAX as i64;

/// An unsigned number as the kernel's log writes it (`verbose_unum`).
pub fn unum(v: u64) -> String {
    if v <= UNUM_MAX_DECIMAL {
        v.to_string()
    } else {
        format!("{v:#x}")
    }
}

/// A signed number as the kernel's log writes it (`verbose_snum`).
pub fn snum(v: i64) -> String {
    if SNUM_DECIMAL.contains(&v) {
        v.to_string()
    } else {
        format!("{:#x}", v as u64)
    }
}

/// The ranges of a scalar that are not the defaults, each written once: a name that has the
/// same value as a later one of its kind (min with mins, max with maxes, signed only with signed
/// values of the same sign) is joined to it, `smax=umax=smax32=umax32=255`
/// (`print_scalar_ranges`).
fn scalar_ranges(b: &Bounds, out: &mut String, sep: &mut &'static str) {
    // (name, value as u64, omitted, signed)
    let mut items = [
        ("smin", b.smin as u64, b.smin == i64::MIN, true),
        ("smax", b.smax as u64, b.smax == i64::MAX, true),
        ("umin", b.umin, b.umin == 0, false),
        ("umax", b.umax, b.umax == u64::MAX, false),
        ("smin32", signed32(b.s32_min), b.s32_min == i32::MIN, true),
        ("smax32", signed32(b.s32_max), b.s32_max == i32::MAX, true),
        ("umin32", b.u32_min as u64, b.u32_min == 0, false),
        ("umax32", b.u32_max as u64, b.u32_max == u32::MAX, false),
    ];
    for i in 0..items.len() {
        let (name, val, omit, signed) = items[i];
        if omit {
            continue;
        }
        let negative = signed && (val as i64) < 0;
        let _ = write!(out, "{sep}{name}=");
        *sep = ",";
        let mut j = i + 2;
        while j < items.len() {
            let (name2, val2, omit2, signed2) = items[j];
            if !omit2 && negative == (signed2 && (val2 as i64) < 0) && val == val2 {
                let _ = write!(out, "{name2}=");
                items[j].2 = true;
            }
            j += 2;
        }
        out.push_str(&if signed { snum(val as i64) } else { unum(val) });
    }
}

/// A signed 32-bit bound as the ranges list holds it: sign-extended when it prints in decimal,
/// zero-extended when it prints in hex (so that `smin32=0xfffffffe` is not shown as the
/// different 64-bit number `0xfffffffffffffffe`, nor joined with it).
fn signed32(v: i32) -> u64 {
    if SNUM_DECIMAL.contains(&(v as i64)) {
        v as i64 as u64
    } else {
        v as u32 as u64
    }
}

/// One register's state after its `R<n>=` (`print_reg_state`); `frameno` is the frame whose
/// state is printed (a stack pointer into another frame names its frame).
pub fn reg_state(reg: &RegState, frameno: u32) -> String {
    let mut out = String::new();
    let b = &reg.bounds;
    if reg.is_scalar() && reg.precise {
        out.push('P');
    }
    if reg.is_scalar() && b.var_off.is_const() {
        out.push_str(&snum(b.var_off.value as i64));
        return out;
    }
    out.push_str(&reg.ty.name());
    if reg.ty.base == BaseType::Stack {
        if reg.frameno != frameno {
            let _ = write!(out, "[{}]", reg.frameno);
        }
        if b.var_off.is_const() {
            out.push_str(&snum((b.var_off.value as i64).wrapping_add(reg.off as i64)));
            return out;
        }
    }
    out.push('(');
    let mut sep = "";
    if reg.id != 0 {
        let _ = write!(out, "{sep}id={}", reg.id);
        if reg.add_const {
            let _ = write!(out, "{:+}", reg.off);
        }
        sep = ",";
    }
    if reg.ref_obj_id != 0 {
        let _ = write!(out, "{sep}ref_obj_id={}", reg.ref_obj_id);
        sep = ",";
    }
    if let Some(map) = &reg.map {
        if matches!(reg.ty.base, BaseType::ConstMap | BaseType::MapValue) {
            if !map.name.is_empty() {
                let _ = write!(out, "{sep}map={}", map.name);
                sep = ",";
            }
            let _ = write!(out, "{sep}ks={},vs={}", map.key_size, map.value_size);
            sep = ",";
        }
    }
    if !reg.is_scalar() && reg.off != 0 {
        let _ = write!(out, "{sep}off={}", snum(reg.off as i64));
        sep = ",";
    }
    if reg.ty.base.is_packet() {
        let _ = write!(out, "{sep}r={}", unum(reg.range as i64 as u64));
        sep = ",";
    }
    if reg.ty.base == BaseType::Mem {
        let _ = write!(out, "{sep}sz={}", unum(reg.mem_size as u64));
        sep = ",";
    }
    if b.var_off.is_const() {
        // A pointer with a fixed offset only.
        if b.var_off.value != 0 {
            let _ = write!(out, "{sep}imm={}", snum(b.var_off.value as i64));
        }
    } else {
        scalar_ranges(b, &mut out, &mut sep);
        if !b.var_off.is_unknown() {
            let _ = write!(out, "{sep}var_off={}", b.var_off);
        }
    }
    out.push(')');
    out
}

/// A frame's registers and stack as the log prints them after an instruction: ` R<n>=...` for
/// each initialised register in `regs` (all when `None`), then ` fp-<off>=...` for each slot
/// with something in it (`print_verifier_state`). The result starts with a space per item, as
/// the kernel's does; a called function's frame is named first (` frame1: R1=...`) when
/// anything is printed.
pub fn frame_state(frame: &FuncState, regs: Option<&[u8]>, slots: Option<&[usize]>) -> String {
    let mut out = String::new();
    if frame.frameno != 0 {
        let _ = write!(out, " frame{}:", frame.frameno);
    }
    let header = out.len();
    for (r, reg) in frame.regs.iter().enumerate() {
        if !reg.is_init() || regs.is_some_and(|l| !l.contains(&(r as u8))) {
            continue;
        }
        let _ = write!(out, " R{r}={}", reg_state(reg, frame.frameno));
    }
    for (i, slot) in frame.stack.iter().enumerate() {
        if slots.is_some_and(|l| !l.contains(&i)) {
            continue;
        }
        if slot.types.iter().all(|t| *t == SlotType::Invalid) {
            continue;
        }
        let offset = -((i as i64 + 1) * BPF_REG_SIZE as i64);
        let mut types: String = slot.types.iter().map(|t| t.symbol()).collect();
        if slot.types[BPF_REG_SIZE - 1] == SlotType::Spill {
            // The bytes above a spill of fewer than 8 bytes, then the spilled register.
            let first_spill = slot
                .types
                .iter()
                .position(|t| *t == SlotType::Spill)
                .unwrap_or(BPF_REG_SIZE);
            types.truncate(first_spill);
            let _ = write!(
                out,
                " fp{offset}={types}{}",
                reg_state(&slot.spilled, frame.frameno)
            );
        } else {
            let _ = write!(out, " fp{offset}={types}");
        }
    }
    if out.len() == header {
        out.clear();
    }
    out
}

/// `frame` as [`frame_state`] prints it, then the references `state` holds (` refs=2,4`),
/// as the kernel ends every state it prints (`print_verifier_state`).
pub fn state_text(
    state: &VerifierState,
    frame: &FuncState,
    regs: Option<&[u8]>,
    slots: Option<&[usize]>,
) -> String {
    let mut out = frame_state(frame, regs, slots);
    for (n, r) in state.refs.iter().enumerate() {
        let _ = write!(out, "{}{}", if n == 0 { " refs=" } else { "," }, r.id);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verifier::reg::RegType;
    use crate::verifier::tnum::Tnum;

    #[test]
    fn numbers_are_decimal_when_small() {
        assert_eq!(unum(65535), "65535");
        assert_eq!(unum(65536), "0x10000");
        assert_eq!(snum(-32768), "-32768");
        assert_eq!(snum(-32769), "0xffffffffffff7fff");
        assert_eq!(snum(32767), "32767");
    }

    // The expected strings are the kernel's (Linux 6.18.44, log_level 2) for the same states.

    #[test]
    fn scalar_ranges_are_joined_as_the_kernel_joins_them() {
        let r = RegState::scalar(Bounds {
            var_off: Tnum::new(0, 0xff),
            smin: 0,
            smax: 255,
            umin: 0,
            umax: 255,
            s32_min: 0,
            s32_max: 255,
            u32_min: 0,
            u32_max: 255,
        });
        assert_eq!(
            reg_state(&r, 0),
            "scalar(smin=smin32=0,smax=umax=smax32=umax32=255,var_off=(0x0; 0xff))"
        );
        let r = RegState::scalar(Bounds {
            var_off: Tnum::new(0xffff_ffff_ffff_fe00, 0x1ff),
            smin: -300,
            smax: -45,
            umin: 0xffff_ffff_ffff_fed4,
            umax: 0xffff_ffff_ffff_ffd3,
            s32_min: -300,
            s32_max: -45,
            u32_min: 0xffff_fed4,
            u32_max: 0xffff_ffd3,
        });
        assert_eq!(
            reg_state(&r, 0),
            "scalar(smin=smin32=-300,smax=smax32=-45,umin=0xfffffffffffffed4,\
             umax=0xffffffffffffffd3,umin32=0xfffffed4,umax32=0xffffffd3,\
             var_off=(0xfffffffffffffe00; 0x1ff))"
        );
        assert_eq!(reg_state(&RegState::unknown_scalar(), 0), "scalar()");
        let mut r = RegState::unknown_scalar();
        r.id = 2;
        assert_eq!(reg_state(&r, 0), "scalar(id=2)");
        assert_eq!(reg_state(&RegState::known(7), 0), "7");
        assert_eq!(
            reg_state(&RegState::known(0x3412_0000_0000_0000), 0),
            "0x3412000000000000"
        );
    }

    #[test]
    fn pointers() {
        assert_eq!(
            reg_state(&RegState::pointer(RegType::of(BaseType::Ctx)), 0),
            "ctx()"
        );
        assert_eq!(reg_state(&RegState::frame_pointer(0), 0), "fp0");
        let mut fp = RegState::frame_pointer(0);
        fp.off = -8;
        assert_eq!(reg_state(&fp, 0), "fp-8");
        let mut pkt = RegState::pointer(RegType::of(BaseType::Packet));
        assert_eq!(reg_state(&pkt, 0), "pkt(r=0)");
        pkt.off = 14;
        pkt.range = 14;
        assert_eq!(reg_state(&pkt, 0), "pkt(off=14,r=14)");
    }
}
