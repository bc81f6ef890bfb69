//! Callbacks: functions a helper calls back (`bpf_loop`, `bpf_for_each_map_elem`), verified
//! in a frame above the helper's caller with the arguments the helper passes and a return
//! value in the range the helper allows (the kernel's `set_*_callback_state` and the callback
//! part of `prepare_func_exit`).

use super::env::{eacces, refuse, Refusal};
use super::reg::RegState;
use crate::error::ErrorCode;

/// R0 at a callback's exit: a scalar whose signed range lies in `[min, max]`
/// (`retval_range_within`, with the kernel's `verbose_invalid_scalar` message).
pub fn check_return(r0: &RegState, (min, max): (i64, i64)) -> Result<(), Refusal> {
    if !r0.is_scalar() {
        return Err(eacces("R0 not a scalar value"));
    }
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
        format!("At callback return the register R0 has{has} should have been in [{min}, {max}]"),
    ))
}
