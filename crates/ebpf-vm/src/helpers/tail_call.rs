//! `bpf_tail_call` (12): ends the current program and starts the one at `index` of a prog array
//! map, with the same context, stack area and remaining budget; it does not return. As in the
//! kernel, a failed tail call (no such map, index out of range, empty slot, a program of another
//! type, or already 33 tail calls in this run) falls through: the program goes on with r0 = a
//! negative errno (-ENOENT for a missing program, -E2BIG past the limit, -EINVAL otherwise).
//!
//! How a helper ends the current program: `HelperContext::tail_call` records the target in
//! `RunState::tail_call` and returns an error; `call_helper` turns it into a trap that the engine
//! propagates like any other, and `Program::run` sees the recorded target, drops the trap and runs
//! the target (see `program.rs`). Both engines therefore need nothing special.

use std::any::Any;
use std::sync::Arc;

use crate::maps::prog_array::ProgArray;
use crate::run_state::MAX_TAIL_CALLS;

use super::{HelperContext, HelperError, HelperTable};
use crate::vm::errno::{E2BIG, EINVAL, ENOENT};

pub const BPF_TAIL_CALL: u32 = 12;

impl HelperContext<'_> {
    /// Asks for a tail call to `prog` (a prog array's entry). `Ok(r0)` when it falls through,
    /// `Err` when accepted (the helper must return that error as is).
    pub fn tail_call(&mut self, prog: Arc<dyn Any + Send + Sync>) -> Result<u64, HelperError> {
        let Some(prog) = self.state.tail_call_target.and_then(|of| of(prog)) else {
            return Ok((-EINVAL) as u64);
        };
        if prog.prog_type() != self.state.prog_type || self.state.callback_depth > 0 {
            return Ok((-EINVAL) as u64);
        }
        if self.state.tail_calls >= MAX_TAIL_CALLS {
            return Ok((-E2BIG) as u64);
        }
        self.state.tail_calls += 1;
        self.state.tail_call = Some(prog);
        Err(HelperError("tail call".into()))
    }
}

fn tail_call(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (map, index) = (a[1], a[2] as u32);
    let Some(map) = cx.maps.resolve(map) else {
        return Err(HelperError("r2 is not a map of this program".into()));
    };
    let Some(array) = map.as_any().downcast_ref::<ProgArray>() else {
        return Err(HelperError("bpf_tail_call needs a prog array map".into()));
    };
    match array.get(index) {
        Some(prog) => cx.tail_call(prog),
        None => Ok((-ENOENT) as u64),
    }
}

pub fn register(table: &mut HelperTable) {
    table.register_kernel(BPF_TAIL_CALL, "bpf_tail_call", tail_call);
}
