//! `bpf_send_signal` (109) and `bpf_send_signal_thread` (117): in the kernel they signal the
//! current task's process (thread group) or thread. Here nothing is ever signalled: the signal is
//! recorded in the run (`RunState::signals`, handed back as `ContextOutput::signals`) so that the
//! embedder sees what the program asked for. The run's "current task" is the one `ProcessInfo`
//! describes.
//!
//! Return values as Linux 6.18 gives them to a task that may be signalled (checked with
//! `bpftool prog run` of a socket filter on the live kernel): a number above 64 (`_NSIG`) is
//! -EINVAL; 0 asks only whether the signal could be sent (`kill(pid, 0)`), returns 0 and sends
//! nothing, so it is not recorded; 1-64 return 0.

use super::{HelperContext, HelperError, HelperTable};
use crate::vm::errno::EINVAL;

pub use crate::run_state::SentSignal;

pub const BPF_SEND_SIGNAL: u32 = 109;
pub const BPF_SEND_SIGNAL_THREAD: u32 = 117;

/// The kernel's `_NSIG` on x86-64 and arm64: the highest valid signal number.
const NSIG: u64 = 64;

fn send(cx: &mut HelperContext<'_>, sig: u64, thread: bool) -> u64 {
    // The argument is the kernel's `u32 sig`: the upper half of r1 is not looked at.
    let sig = sig as u32 as u64;
    if sig > NSIG {
        return (-EINVAL) as u64;
    }
    if sig != 0 {
        cx.state.signals.push(SentSignal {
            signal: sig as u32,
            thread,
        });
    }
    0
}

pub fn register(table: &mut HelperTable) {
    table.register_kernel(
        BPF_SEND_SIGNAL,
        "bpf_send_signal",
        |cx, a| -> Result<u64, HelperError> { Ok(send(cx, a[0], false)) },
    );
    table.register_kernel(
        BPF_SEND_SIGNAL_THREAD,
        "bpf_send_signal_thread",
        |cx, a| -> Result<u64, HelperError> { Ok(send(cx, a[0], true)) },
    );
}
