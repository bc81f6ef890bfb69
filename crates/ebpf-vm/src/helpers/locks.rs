//! `bpf_spin_lock` (93) / `bpf_spin_unlock` (94): real locks on the 4-byte `struct bpf_spin_lock`
//! word of a map value (0 = free, 1 = taken), so that runs on several threads exclude each other.
//!
//! What the kernel's verifier guarantees, checked here at run time instead: the word is writable,
//! aligned memory of the run; a run holds at most one lock; it unlocks only the lock it holds; it
//! does not exit holding it (the run stops with a helper error, and the lock is released). A run
//! that ends in any way releases its lock. A lock word that stays taken (another run holds it, or
//! something wrote the word directly) is waited for at most one second, then the run stops with a
//! helper error rather than hang.

use std::sync::atomic::AtomicU32;

use super::{HelperContext, HelperError, HelperTable};
use crate::maps::lock::{acquire, WAIT_LIMIT};

pub const BPF_SPIN_LOCK: u32 = 93;
pub const BPF_SPIN_UNLOCK: u32 = 94;

fn spin_lock(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let addr = a[0];
    if !addr.is_multiple_of(4) || cx.regions.check(addr, 4, true).is_err() {
        return Err(HelperError(format!(
            "lock (0x{addr:x}) is not 4 aligned, writable bytes of the run"
        )));
    }
    if let Some((held, _)) = cx.state.held_lock {
        return Err(HelperError(format!(
            "bpf_spin_lock while this run holds the lock at 0x{held:x} (one lock at a time)"
        )));
    }
    // SAFETY: 4 aligned, writable bytes inside a region of the run (checked above); other
    // threads touch the word only atomically.
    let word = unsafe { AtomicU32::from_ptr(addr as *mut u32) };
    if !acquire(word) {
        return Err(HelperError(format!(
            "the spin lock at 0x{addr:x} was not released within {WAIT_LIMIT:?}"
        )));
    }
    cx.state.held_lock = Some((addr, cx.caller.pc));
    Ok(0)
}

fn spin_unlock(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    match cx.state.held_lock {
        Some((held, _)) if held == a[0] => {
            cx.state.release_lock();
            Ok(0)
        }
        _ => Err(HelperError(format!(
            "bpf_spin_unlock of 0x{:x}, a lock this run does not hold",
            a[0]
        ))),
    }
}

pub fn register(table: &mut HelperTable) {
    table.register(BPF_SPIN_LOCK, "bpf_spin_lock", spin_lock);
    table.register(BPF_SPIN_UNLOCK, "bpf_spin_unlock", spin_unlock);
}
