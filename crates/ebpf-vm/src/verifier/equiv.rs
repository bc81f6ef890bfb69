//! State equivalence (the kernel's `states_equal`, `regsafe`, `stacksafe`, `refsafe`): whether
//! every path from an explored state `old` that was proved safe also proves a new state `cur`
//! safe, because `cur` is at least as constrained as `old` in everything that can matter later.
//!
//! - Registers dead at the instruction (static liveness, the kernel's `compute_live_registers`)
//!   are not compared.
//! - Scalars: `cur`'s ranges and known bits lie within `old`'s (`range_within`, `tnum_in`), and
//!   the ids that tie copies together map one to one. A scalar `old` never needed exactly (not
//!   precise, see [`Compare::NotExact`]) matches any scalar.
//! - Pointers: the same type and target; map values and memory within the old variable offset;
//!   packet pointers with at least the old range; stack pointers exactly.
//! - Stack, byte by byte: what `old` never wrote (invalid) or holds as an untracked number (a
//!   privileged program reads either as an unknown scalar) matches anything; spills compare as
//!   registers.
//!
//! Every field of the states is named below (the structs are destructured), so that a field
//! added to [`VerifierState`], [`FuncState`] or [`RegState`] does not compile until it is
//! compared here.

use super::bounds::Bounds;
use super::reg::{BaseType, RegState};
use super::state::{FuncState, Reference, SlotType, StackSlot, VerifierState, BPF_REG_SIZE};
use crate::analysis::RegSet;

/// How strictly states are compared (`enum exact_level`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    /// Pruning: scalars not marked precise in `old` match any scalar.
    NotExact,
    /// Every scalar compared by range, precise or not.
    RangeWithin,
    /// Identical up to id renaming (infinite-loop detection).
    Exact,
}

/// Old ids mapped to current ones (`struct bpf_idmap`): two registers that shared an id in the
/// old state must share one in the current state.
#[derive(Default)]
pub struct IdMap {
    pairs: Vec<(u32, u32)>,
    /// Fresh ids for scalars without one (`check_scalar_ids`), above every id in use.
    tmp_id_gen: u32,
}

impl IdMap {
    pub fn new(ids_in_use: u32) -> IdMap {
        IdMap {
            pairs: Vec::new(),
            tmp_id_gen: ids_in_use,
        }
    }

    /// `check_ids`: both ids zero, or both set and consistently mapped.
    fn check(&mut self, old: u32, cur: u32) -> bool {
        if (old == 0) != (cur == 0) {
            return false;
        }
        if old == 0 {
            return true;
        }
        for &(o, c) in &self.pairs {
            if o == old {
                return c == cur;
            }
            if c == cur {
                return false;
            }
        }
        self.pairs.push((old, cur));
        true
    }

    /// `check_scalar_ids`: an id of zero gets a fresh one, so that "none vs unique" matches while
    /// a scalar linked in `old` must stay linked to the same registers.
    fn check_scalar(&mut self, old: u32, cur: u32) -> bool {
        let mut fresh = |id: u32| {
            if id == 0 {
                self.tmp_id_gen += 1;
                self.tmp_id_gen
            } else {
                id
            }
        };
        let (old, cur) = (fresh(old), fresh(cur));
        self.check(old, cur)
    }
}

/// `range_within`: every bound of `cur` is inside `old`'s.
pub fn range_within(old: &Bounds, cur: &Bounds) -> bool {
    old.umin <= cur.umin
        && old.umax >= cur.umax
        && old.smin <= cur.smin
        && old.smax >= cur.smax
        && old.u32_min <= cur.u32_min
        && old.u32_max >= cur.u32_max
        && old.s32_min <= cur.s32_min
        && old.s32_max >= cur.s32_max
}

/// `cur`'s value set is inside `old`'s: ranges and known bits.
fn bounds_within(old: &Bounds, cur: &Bounds) -> bool {
    range_within(old, cur) && old.var_off.includes(cur.var_off)
}

/// The fields the kernel's `regs_exact` compares byte for byte (everything before `id`).
fn same_value(old: &RegState, cur: &RegState) -> bool {
    let RegState {
        ty,
        off,
        bounds,
        range,
        mem_size,
        map,
        id: _,
        add_const,
        ref_obj_id: _,
        frameno: _,
        precise: _,
        func_entry,
    } = old;
    *ty == cur.ty
        && *func_entry == cur.func_entry
        && *off == cur.off
        && *bounds == cur.bounds
        && *range == cur.range
        && *mem_size == cur.mem_size
        && *map == cur.map
        && *add_const == cur.add_const
}

pub fn regs_exact(old: &RegState, cur: &RegState, ids: &mut IdMap) -> bool {
    same_value(old, cur) && ids.check(old.id, cur.id) && ids.check(old.ref_obj_id, cur.ref_obj_id)
}

/// `regsafe`: whether `old` being safe implies `cur` is.
pub fn regsafe(
    old: &RegState,
    cur: &RegState,
    ids: &mut IdMap,
    exact: Compare,
    precision_tracked: bool,
) -> bool {
    if exact == Compare::Exact {
        return regs_exact(old, cur, ids) && old.frameno == cur.frameno;
    }
    if !old.is_init() {
        // The explored state cannot have read it (or it would have been rejected).
        return exact == Compare::NotExact || !cur.is_init();
    }
    // Types match exactly, flags included: a maybe-null pointer is not a valid one (a null
    // check of the old register may have refined others with its id).
    if old.ty != cur.ty {
        return false;
    }
    match old.ty.base {
        BaseType::Scalar => {
            if exact == Compare::NotExact && precision_tracked && !old.precise {
                return true;
            }
            if old.add_const != cur.add_const || (old.add_const && old.off != cur.off) {
                return false;
            }
            bounds_within(&old.bounds, &cur.bounds) && ids.check_scalar(old.id, cur.id)
        }
        BaseType::MapValue | BaseType::MapKey | BaseType::Mem => {
            old.off == cur.off
                && old.map == cur.map
                && old.mem_size == cur.mem_size
                && old.range == cur.range
                && old.frameno == cur.frameno
                && old.add_const == cur.add_const
                && bounds_within(&old.bounds, &cur.bounds)
                && ids.check(old.id, cur.id)
                && ids.check(old.ref_obj_id, cur.ref_obj_id)
        }
        BaseType::Packet | BaseType::PacketMeta => {
            // At least the old readable range. A negative range (at or past `data_end`) decides
            // later comparisons, so it must be the same: stricter than the kernel's `>`.
            let range_ok = if old.range >= 0 {
                cur.range >= old.range
            } else {
                cur.range == old.range
            };
            range_ok
                && old.off == cur.off
                && ids.check(old.id, cur.id)
                && bounds_within(&old.bounds, &cur.bounds)
        }
        BaseType::Stack => regs_exact(old, cur, ids) && old.frameno == cur.frameno,
        BaseType::NotInit
        | BaseType::Ctx
        | BaseType::ConstMap
        | BaseType::PacketEnd
        | BaseType::Func
        | BaseType::SockCommon
        | BaseType::KernelObject(_) => regs_exact(old, cur, ids),
    }
}

/// A slot whose 8 bytes spill a scalar (`is_spilled_scalar_reg64`).
fn spilled_scalar64(slot: &StackSlot) -> bool {
    slot.types.iter().all(|t| *t == SlotType::Spill) && slot.spilled.is_scalar()
}

/// The scalar a full read of `slot` gives, if it gives one (`scalar_reg_for_stack`): the spilled
/// scalar, or an unknown number when every byte is untracked or never written.
fn scalar_for_stack(slot: &StackSlot) -> Option<RegState> {
    if spilled_scalar64(slot) {
        return Some(slot.spilled.clone());
    }
    let untracked = slot
        .types
        .iter()
        .all(|t| matches!(t, SlotType::Misc | SlotType::Invalid));
    untracked.then(|| RegState {
        precise: false,
        ..RegState::unknown_scalar()
    })
}

/// `stacksafe`: the explored stack, byte by byte, against the current one (slots the current
/// stack has beyond the old one were not used by the old paths).
fn stacksafe(
    old: &FuncState,
    cur: &FuncState,
    ids: &mut IdMap,
    exact: Compare,
    precision_tracked: bool,
) -> bool {
    let empty = StackSlot::default();
    for (spi, old_slot) in old.stack.iter().enumerate() {
        let cur_slot = cur.stack.get(spi);
        for j in 0..BPF_REG_SIZE {
            let old_type = old_slot.types[j];
            let cur_type = cur_slot.unwrap_or(&empty).types[j];
            if exact != Compare::NotExact && (cur_slot.is_none() || old_type != cur_type) {
                return false;
            }
            // Never written, or untracked: privileged programs read either as an unknown
            // number, so whatever the current byte holds reads as no less.
            if matches!(old_type, SlotType::Invalid | SlotType::Misc) {
                continue;
            }
            let Some(cur_slot) = cur_slot else {
                return false;
            };
            if let (Some(o), Some(c)) = (scalar_for_stack(old_slot), scalar_for_stack(cur_slot)) {
                if !regsafe(&o, &c, ids, exact, precision_tracked) {
                    return false;
                }
                break;
            }
            if old_type != cur_type {
                return false;
            }
            if j != BPF_REG_SIZE - 1 {
                continue;
            }
            if old_slot.types[BPF_REG_SIZE - 1] == SlotType::Spill
                && !regsafe(
                    &old_slot.spilled,
                    &cur_slot.spilled,
                    ids,
                    exact,
                    precision_tracked,
                )
            {
                return false;
            }
        }
    }
    true
}

/// `func_states_equal`: the live registers and the stack of one frame.
fn frames_equal(
    old: &FuncState,
    cur: &FuncState,
    live: RegSet,
    ids: &mut IdMap,
    exact: Compare,
    precision_tracked: bool,
) -> bool {
    let FuncState {
        regs,
        stack: _,
        frameno: _,
        callsite,
        subprog,
        callback,
        callback_depth,
    } = old;
    // The same function, called from the same place, under the same callback terms.
    if *callsite != cur.callsite || *subprog != cur.subprog || *callback != cur.callback {
        return false;
    }
    // A state that started more runs of a callback than `cur` does not cover it: `bpf_loop`
    // would start fewer from it.
    if *callback_depth > cur.callback_depth {
        return false;
    }
    let regs_ok = regs
        .iter()
        .zip(cur.regs.iter())
        .enumerate()
        .all(|(r, (o, c))| live & (1 << r) == 0 || regsafe(o, c, ids, exact, precision_tracked));
    regs_ok && stacksafe(old, cur, ids, exact, precision_tracked)
}

/// The logical instruction each frame of `state` is at: the innermost at `insn`, each caller at
/// the call it made (`frame_insn_idx`), for its register liveness.
pub fn frame_insns(state: &VerifierState, insn: usize) -> Vec<usize> {
    let n = state.frames.len();
    (0..n)
        .map(|i| {
            if i + 1 == n {
                insn
            } else {
                state.frames[i + 1].callsite.unwrap_or(insn)
            }
        })
        .collect()
}

/// `states_equal`: `cur` at `insn` is covered by `old` at the same instruction. `live[i]` is the
/// set of registers live before logical instruction `i`; `ids_in_use` the largest id handed out.
pub fn states_equal(
    old: &VerifierState,
    cur: &VerifierState,
    insn: usize,
    live: &[RegSet],
    ids_in_use: u32,
    exact: Compare,
    precision_tracked: bool,
) -> bool {
    // The callbacks started on the path say nothing about what is safe after it.
    let VerifierState {
        frames,
        refs,
        callback_unroll_depth: _,
    } = old;
    if frames.len() != cur.frames.len() {
        return false;
    }
    let mut ids = IdMap::new(ids_in_use);
    // `refsafe`: the same references (and lock) held, ids mapped; where each was acquired only
    // names it in a message.
    let same_refs = refs.iter().zip(&cur.refs).all(|(o, c)| {
        let Reference {
            id,
            alloc_insn: _,
            lock,
        } = o;
        *lock == c.lock && ids.check(*id, c.id)
    });
    if refs.len() != cur.refs.len() || !same_refs {
        return false;
    }
    frame_insns(old, insn)
        .into_iter()
        .zip(frames.iter().zip(&cur.frames))
        .all(|(at, (o, c))| {
            let live_regs = live.get(at).copied().unwrap_or(RegSet::MAX);
            frames_equal(o, c, live_regs, &mut ids, exact, precision_tracked)
        })
}

/// `states_maybe_looping`: the innermost frames hold the same registers (ids included, bit for
/// bit): the cheap test before the exact comparison that detects an infinite loop.
pub fn maybe_looping(old: &VerifierState, cur: &VerifierState) -> bool {
    if old.frames.len() != cur.frames.len() {
        return false;
    }
    old.frame()
        .regs
        .iter()
        .zip(cur.frame().regs.iter())
        .all(|(o, c)| same_value(o, c) && o.id == c.id && o.ref_obj_id == c.ref_obj_id)
}
