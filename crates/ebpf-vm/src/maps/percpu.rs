//! What a "CPU" is for per-CPU maps in a userspace runtime.
//!
//! There is a fixed number of slots, `possible_cpus()`: the host's available parallelism, or the
//! `EBPF_NR_CPUS` environment variable (1..=1024) when set, read once per process. User space sees
//! a per-CPU value as `possible_cpus()` values, each padded to 8 bytes, as the kernel's syscall
//! gives them.
//!
//! A thread that runs a program claims the lowest free slot the first time it needs one and gives
//! it back when it exits, so that as long as no more threads than slots run programs at once, no
//! two threads share a slot (as no two kernel programs share a CPU). When every slot is taken, the
//! thread shares a slot (slot = claim counter modulo the number of slots); plain read-modify-write
//! updates of a shared slot can then lose counts, so programs meant for more threads than slots
//! should use atomic instructions. `bpf_get_smp_processor_id` should report the same number.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// Number of per-CPU slots in this process.
pub fn possible_cpus() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| {
        std::env::var("EBPF_NR_CPUS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| (1..=1024).contains(n))
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            })
    })
}

fn taken() -> &'static Mutex<Vec<bool>> {
    static TAKEN: OnceLock<Mutex<Vec<bool>>> = OnceLock::new();
    TAKEN.get_or_init(|| Mutex::new(vec![false; possible_cpus()]))
}

static OVERFLOW: AtomicUsize = AtomicUsize::new(0);

/// A thread's slot; released when the thread exits (if it owned it exclusively).
struct Slot {
    index: Cell<Option<(usize, bool)>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some((i, true)) = self.index.get() {
            let mut t = taken().lock().unwrap_or_else(|e| e.into_inner());
            t[i] = false;
        }
    }
}

thread_local! {
    static SLOT: Slot = const { Slot { index: Cell::new(None) } };
}

fn claim() -> (usize, bool) {
    let mut t = taken().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(i) = t.iter().position(|x| !x) {
        t[i] = true;
        (i, true)
    } else {
        (OVERFLOW.fetch_add(1, Ordering::Relaxed) % t.len(), false)
    }
}

/// The calling thread's per-CPU slot, in `0..possible_cpus()`.
pub fn current_cpu() -> usize {
    SLOT.try_with(|s| match s.index.get() {
        Some((i, _)) => i,
        None => {
            let c = claim();
            s.index.set(Some(c));
            c.0
        }
    })
    // Thread-local storage already torn down (a program run from a TLS destructor): share slot 0.
    .unwrap_or(0)
}
