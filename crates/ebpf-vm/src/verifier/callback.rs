//! Callbacks: functions a helper calls back (`bpf_loop`, `bpf_for_each_map_elem`), verified
//! as the kernel verifies them (`push_callback_call`): at each visit of the helper's call, a
//! run of the callback is pushed as a path of its own, in a frame above the caller with the
//! arguments the kernel gives it (`set_loop_callback_state`, `set_map_elem_callback_state`),
//! while the caller goes on after the call as if the callback never ran. The callback's `exit`
//! checks R0 against its range (`[0, 1]`) and goes back to the helper's call
//! ([`super::subprog::exit`]), where the state after that run visits the call again: one run
//! more, and the caller going on after it. The visits stop when the state at the call lies
//! within the one an earlier run started from (every scalar compared by range, imprecise ones
//! widened to unknown first: [`widen_imprecise_scalars`]), or for `bpf_loop` once as many
//! runs as its count allows were started (`callback_depth`).

use super::env::{eacces, refuse, Env, Refusal};
use super::reg::{BaseType, MapRef, RegState, RegType};
use super::state::{CallbackFrame, SlotType, VerifierState, BPF_REG_SIZE};
use super::subprog;
use crate::error::ErrorCode;

pub const BPF_FOR_EACH_MAP_ELEM: i32 = 164;
pub const BPF_FIND_VMA: i32 = 180;
pub const BPF_LOOP: i32 = 181;
pub const BPF_USER_RINGBUF_DRAIN: i32 = 209;

/// Whether helper `id` calls its callback before it returns (`is_sync_callback_calling_function`):
/// its call is then a place the walk comes back to after each run of the callback.
pub fn calls_back_at_once(id: u32) -> bool {
    matches!(
        id as i32,
        BPF_FOR_EACH_MAP_ELEM | BPF_FIND_VMA | BPF_LOOP | BPF_USER_RINGBUF_DRAIN
    )
}

/// The map types `bpf_for_each_map_elem` walks: hash, array, percpu hash, percpu array, LRU
/// hash, LRU percpu hash.
const FOR_EACH_MAP_TYPES: [u32; 6] = [1, 2, 5, 6, 9, 10];

/// The range a callback's R0 must be in (`retval_range(0, 1)` for both helpers).
const RETURN_RANGE: (i64, i64) = (0, 1);

/// The register holding the context pointer the helper passes on (`callback_ctx`): R3 for
/// both helpers.
const CTX_ARG: usize = 3;

/// After the arguments of helper `helper` (at logical instruction `index`) were checked on
/// `state`, and before R0-R5 change: the state one more run of the callback at `entry` starts
/// in, or none when `bpf_loop` started as many as its count (R1, which is then precise) allows.
pub fn visit(
    env: &mut Env<'_>,
    state: &mut VerifierState,
    (helper, index): (i32, usize),
    entry: usize,
    map: Option<&MapRef>,
) -> Result<Option<VerifierState>, Refusal> {
    let ctx = state.frame().regs[CTX_ARG].clone();
    if helper == BPF_LOOP {
        // The count decides how many runs there are.
        env.want_precise(1);
        if state.frame().callback_depth as u64 >= state.frame().regs[1].bounds.umax {
            state.frame_mut().callback_depth = 0;
            return Ok(None);
        }
    }
    let mut callee = subprog::new_frame(env, state, index, entry)?;
    let regs = &mut callee.regs;
    match helper {
        BPF_LOOP => {
            // callback(u64 index, void *ctx)
            regs[1] = RegState::unknown_scalar();
            regs[2] = ctx;
            for reg in &mut regs[3..=5] {
                *reg = RegState::not_init();
            }
        }
        BPF_FOR_EACH_MAP_ELEM => {
            // callback(struct bpf_map *map, void *key, void *value, void *ctx), for the maps
            // that can walk their elements (`map_for_each_callback`).
            if !map.is_some_and(|m| FOR_EACH_MAP_TYPES.contains(&m.map_type)) {
                return Err(refuse(
                    ErrorCode::Enotsupp,
                    "callback function not allowed for map",
                ));
            }
            let map = map.cloned();
            let of = |base| RegState {
                map: map.clone(),
                ..RegState::pointer(RegType::of(base))
            };
            regs[1] = of(BaseType::ConstMap);
            regs[2] = of(BaseType::MapKey);
            regs[3] = of(BaseType::MapValue);
            regs[4] = ctx;
            regs[5] = RegState::not_init();
        }
        _ => {
            return Err(super::env::unsupported(&format!(
                "the callback of helper #{helper}"
            )))
        }
    }
    callee.callback = Some(CallbackFrame { ret: RETURN_RANGE });
    let mut start = state.clone();
    start.callback_unroll_depth += 1;
    start.frame_mut().callback_depth += 1;
    start.frames.push(callee);
    state.frame_mut().callback_depth = 0;
    Ok(Some(start))
}

/// Back at the helper's call after a run of the callback (`widen_imprecise_scalars`): every
/// scalar of `cur` (registers and spilled slots, in every frame) that is not precise in
/// `cur` nor in `old`, the state the run started from, and differs from it, becomes an unknown
/// number, so that the runs converge as the kernel's do.
pub fn widen_imprecise_scalars(old: &VerifierState, cur: &mut VerifierState) {
    let mut ids = super::equiv::IdMap::new(0);
    for (fold, fcur) in old.frames.iter().zip(cur.frames.iter_mut()) {
        for (o, c) in fold.regs.iter().zip(fcur.regs.iter_mut()) {
            maybe_widen(o, c, &mut ids);
        }
        for (o, c) in fold.stack.iter().zip(fcur.stack.iter_mut()) {
            let spilled = |t: &[SlotType; BPF_REG_SIZE]| t[BPF_REG_SIZE - 1] == SlotType::Spill;
            if spilled(&o.types) && spilled(&c.types) {
                maybe_widen(&o.spilled, &mut c.spilled, &mut ids);
            }
        }
    }
}

fn maybe_widen(old: &RegState, cur: &mut RegState, ids: &mut super::equiv::IdMap) {
    if !old.is_scalar() || !cur.is_scalar() || old.precise || cur.precise {
        return;
    }
    if !super::equiv::regs_exact(old, cur, ids) {
        *cur = RegState::unknown_scalar();
    }
}

/// A callback's exit: R0 a scalar in its range. What it acquired and did not release, or a
/// lock it holds, the walk finds where the caller goes on (the helper's call again, the
/// program's exit), as the kernel does.
pub fn check_exit(r0: &RegState, callback: &CallbackFrame) -> Result<(), Refusal> {
    if !r0.is_scalar() {
        return Err(eacces("R0 not a scalar value"));
    }
    check_return(r0, callback.ret, "At callback return")
}

/// R0, a scalar, at a callback's or the program's exit (`at`: "At callback return", "At
/// program exit"): its signed range lies in `[min, max]` (`retval_range_within`, with the
/// kernel's `verbose_invalid_scalar` message).
pub fn check_return(r0: &RegState, (min, max): (i64, i64), at: &str) -> Result<(), Refusal> {
    let b = &r0.bounds;
    if min <= b.smin && b.smax <= max {
        return Ok(());
    }
    let mut has = String::new();
    if b.smin > i64::MIN {
        has.push_str(&format!(" smin={}", b.smin));
    }
    if b.smax < i64::MAX {
        has.push_str(&format!(" smax={}", b.smax));
    }
    if has.is_empty() {
        has.push_str(" unknown scalar value");
    }
    Err(refuse(
        ErrorCode::Einval,
        format!("{at} the register R0 has{has} should have been in [{min}, {max}]"),
    ))
}
