//! The helpers that need nothing but the run itself, numbered as in the kernel's `linux/bpf.h`.
//! Map, packet and ring-buffer helpers live beside the objects they work on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use super::HelperTable;

pub const BPF_KTIME_GET_NS: u32 = 5;
pub const BPF_GET_PRANDOM_U32: u32 = 7;
pub const BPF_GET_SMP_PROCESSOR_ID: u32 = 8;
pub const BPF_KTIME_GET_BOOT_NS: u32 = 125;
pub const BPF_KTIME_GET_COARSE_NS: u32 = 160;
pub const BPF_JIFFIES64: u32 = 118;

/// The tick rate `bpf_jiffies64` counts at: Linux 6.18's `CONFIG_HZ` on the reference machine
/// (250, Debian's and most distributions' default; measured there as 501 jiffies over 2 s with
/// `bpftool prog run`).
pub const KERNEL_HZ: u64 = 250;
/// Where the kernel's `jiffies_64` starts at boot (`INITIAL_JIFFIES`, 64-bit: the 32-bit
/// counter wraps five minutes after boot, so that code that mishandles the wrap fails early).
pub const INITIAL_JIFFIES: u64 = (1 << 32) - 300 * KERNEL_HZ;

/// Nanoseconds on a monotonic clock whose origin is the first call in this process.
fn monotonic_ns() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// What `bpf_jiffies64` returns: the run's value if the embedder set one
/// (`ContextInput::jiffies`), otherwise the kernel's count on the clock of `bpf_ktime_get_ns`
/// (its origin counts as boot): `INITIAL_JIFFIES` plus `KERNEL_HZ` ticks a second.
fn jiffies64(set: Option<u64>) -> u64 {
    set.unwrap_or_else(|| {
        let ticks = (monotonic_ns() as u128 * KERNEL_HZ as u128 / 1_000_000_000) as u64;
        INITIAL_JIFFIES.wrapping_add(ticks)
    })
}

/// xorshift64* over a process-wide state: fast, not cryptographic, like the kernel's prandom.
fn prandom_u32() -> u32 {
    static STATE: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
    let mut x = STATE.load(Ordering::Relaxed);
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    STATE.store(x, Ordering::Relaxed);
    (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
}

pub fn register(table: &mut HelperTable) {
    table.register_kernel(BPF_KTIME_GET_NS, "bpf_ktime_get_ns", |_, _| {
        Ok(monotonic_ns())
    });
    table.register_kernel(BPF_KTIME_GET_BOOT_NS, "bpf_ktime_get_boot_ns", |_, _| {
        Ok(monotonic_ns())
    });
    table.register_kernel(
        BPF_KTIME_GET_COARSE_NS,
        "bpf_ktime_get_coarse_ns",
        |_, _| Ok(monotonic_ns()),
    );
    table.register_kernel(BPF_JIFFIES64, "bpf_jiffies64", |cx, _| {
        Ok(jiffies64(cx.state.jiffies))
    });
    table.register_kernel(BPF_GET_PRANDOM_U32, "bpf_get_prandom_u32", |_, _| {
        Ok(prandom_u32() as u64)
    });
    table.register_kernel(
        BPF_GET_SMP_PROCESSOR_ID,
        "bpf_get_smp_processor_id",
        |_, _| Ok(0),
    );
}
