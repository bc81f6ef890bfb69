//! References a program acquires and must release (the kernel's `acquire_reference`,
//! `release_reference`, `check_reference_leak`): a ring buffer record from
//! `bpf_ringbuf_reserve` is one, submit and discard release it. Every register and spilled copy
//! of the pointer carries the reference's id (`ref_obj_id`); releasing it turns them all into
//! numbers (the privileged rule), so a use after release is an invalid access, and a path that
//! exits (or tail-calls, or uses a legacy packet load, which may exit) still holding one leaks
//! it. The spin lock held is on the same list (the log's `refs=` names it too).

use super::env::{refuse, Env, Refusal};
use super::reg::RegState;
use super::state::{Reference, VerifierState};
use crate::error::ErrorCode;

/// A new reference acquired by the instruction at `slot`; its id (also the nullable pointer's
/// id, as the kernel makes them one).
pub fn acquire(env: &mut Env<'_>, state: &mut VerifierState, slot: usize) -> u32 {
    let id = env.new_id();
    state.refs.push(Reference {
        id,
        alloc_insn: slot,
        lock: None,
    });
    id
}

/// Releases reference `id`: every register and spilled copy holding it becomes an unknown
/// number. `false` when the path does not hold it.
pub fn release(state: &mut VerifierState, id: u32) -> bool {
    let Some(at) = state
        .refs
        .iter()
        .position(|r| r.id == id && r.lock.is_none())
    else {
        return false;
    };
    state.refs.remove(at);
    state.for_each_reg_mut(|reg| {
        if reg.is_init() && reg.ref_obj_id == id {
            *reg = RegState::unknown_scalar();
        }
    });
    true
}

/// On the side of a null check where the pointer with `id` is NULL, the reference it would
/// have held was never taken (`mark_ptr_or_null_regs` drops it).
pub fn drop_if_null(state: &mut VerifierState, id: u32) {
    state.refs.retain(|r| r.id != id || r.lock.is_some());
}

/// A path that leaves the program at `what` ("BPF_EXIT instruction in main prog",
/// "tail_call", ...) must hold no lock and no reference (`check_resource_leak`): each reference
/// it holds is named, then the rejection.
pub fn check_resource_leak(state: &VerifierState, what: &str) -> Result<(), Refusal> {
    if super::lock::held(state).is_some() {
        return Err(refuse(
            ErrorCode::Einval,
            format!("{what} cannot be used inside bpf_spin_lock-ed region"),
        ));
    }
    leak(state.refs.iter().filter(|r| r.lock.is_none()), what)
}

/// The references in `held` leak at `what`: each is named, then the rejection
/// (`check_reference_leak`); nothing when `held` is empty.
pub fn leak<'a>(held: impl Iterator<Item = &'a Reference>, what: &str) -> Result<(), Refusal> {
    let mut message = String::new();
    for r in held {
        message.push_str(&format!(
            "Unreleased reference id={} alloc_insn={}\n",
            r.id, r.alloc_insn
        ));
    }
    if message.is_empty() {
        return Ok(());
    }
    message.push_str(&format!("{what} would lead to reference leak"));
    Err(refuse(ErrorCode::Einval, message))
}
