//! `bpf_spin_lock` (93) / `bpf_spin_unlock` (94): real locks on the 4-byte `struct bpf_spin_lock`
//! word of a map value (0 = free, 1 = taken), so that runs on several threads exclude each other.
//!
//! What the kernel's verifier guarantees, checked here at run time instead: the word is writable,
//! aligned memory of the run; a run holds at most one lock; it unlocks only the lock it holds; it
//! calls no helper but `bpf_spin_unlock` while holding it (the verifier's "function calls are not
//! allowed while holding a lock"; bpf-to-bpf calls are allowed, as the kernel allows static
//! subprograms); it does not exit holding it. Each of these stops the run with a helper error. A
//! run that ends in any way releases its lock, and the lock keeps the memory of its word alive
//! until then (`context::run_state::HeldLock`), so the release never writes into memory a
//! concurrent delete freed. A lock word that stays taken (another run holds it, or something wrote
//! the word directly) is waited for at most one second, then the run stops with a helper error
//! rather than hang.

use std::sync::atomic::AtomicU32;

use super::{HelperContext, HelperError, HelperTable};
use crate::maps::lock::{acquire, WAIT_LIMIT};
use crate::run_state::{HeldLock, RunState};

pub const BPF_SPIN_LOCK: u32 = 93;
pub const BPF_SPIN_UNLOCK: u32 = 94;

fn spin_lock(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let addr = a[0];
    if !addr.is_multiple_of(4) || cx.regions.check(addr, 4, true).is_err() {
        return Err(HelperError(format!(
            "lock ({}) is not 4 aligned, writable bytes of the run",
            cx.describe(addr)
        )));
    }
    if let Some(held) = &cx.state.held_lock {
        return Err(HelperError(format!(
            "bpf_spin_lock while this run holds the lock at {} (one lock at a time)",
            cx.describe(held.addr)
        )));
    }
    // SAFETY: 4 aligned, writable bytes inside a region of the run (checked above); other
    // threads touch the word only atomically.
    let word = unsafe { AtomicU32::from_ptr(addr as *mut u32) };
    if !acquire(word) {
        return Err(HelperError(format!(
            "the spin lock at {} was not released within {WAIT_LIMIT:?}",
            cx.describe(addr)
        )));
    }
    cx.state.held_lock = Some(HeldLock {
        addr,
        pc: cx.caller.pc,
        owner: cx.maps.owner_of(addr),
    });
    Ok(0)
}

fn spin_unlock(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    match &cx.state.held_lock {
        Some(held) if held.addr == a[0] => {
            cx.state.release_lock();
            Ok(0)
        }
        _ => Err(HelperError(format!(
            "bpf_spin_unlock of {}, a lock this run does not hold",
            cx.describe(a[0])
        ))),
    }
}

/// The kernel verifier's rule for calls inside a critical section, checked before every helper
/// call: while a lock is held only `bpf_spin_unlock` may be called. A helper could otherwise wait
/// for the lock the run holds, free the value the lock lives in, or run JavaScript or a callback
/// inside the critical section.
pub fn check_call(state: &RunState, id: u32) -> Result<(), String> {
    match &state.held_lock {
        Some(held) if id != BPF_SPIN_UNLOCK => Err(format!(
            "function calls are not allowed while holding a lock (helper {id} called with the \
             bpf_spin_lock taken at instruction {} still held; only bpf_spin_unlock may be)",
            held.pc
        )),
        _ => Ok(()),
    }
}

pub fn register(table: &mut HelperTable) {
    table.register_kernel(BPF_SPIN_LOCK, "bpf_spin_lock", spin_lock);
    table.register_kernel(BPF_SPIN_UNLOCK, "bpf_spin_unlock", spin_unlock);
}
