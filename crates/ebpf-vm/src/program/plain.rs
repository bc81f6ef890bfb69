//! Single runs (`Program::run`) of a raw program that calls no helper and has no maps: what a
//! compute kernel or a benchmark program is.
//!
//! Such a run reads and writes nothing but its stack and its data, and cannot change the run
//! state (no helper, callback, tail call, lock, output or context), so most of what `run_on`
//! does per run (the context preparation, the map table's run, `RunState::recycle`, the context
//! output) has nothing to do here: the run sets the few fields of the thread's run space that it
//! uses and puts them back as a recycled state has them. The memory is as fresh as `run_on`'s
//! (the same stack bytes zeroed, the data region the run's data), and the outcome is the one
//! `run_on` gives (tests/metering.rs compares the two).

use crate::analysis::Flow;
use crate::error::Trap;
use crate::memory::Region;
use crate::pointer_leaks::PointerLeaks;
use crate::vm::env::RunEnv;
use crate::vm::{RunOutput, STACK_FRAME_SIZE, STACK_SIZE};

use super::{refuse_exit_leak, Program, ProgramType};

impl Program {
    /// Whether single runs of this program can take `run_plain`: a raw program with no helper
    /// call (`callx` included), no map, no global data and no coverage counters. Decided at load.
    pub(super) fn plain_runs(&self) -> bool {
        self.options.prog_type == ProgramType::Raw
            && self.maps.list().is_none()
            && self.maps.regions.is_empty()
            && self.coverage.is_none()
            && !(self.analysis.cfg.flows.iter())
                .any(|f| matches!(f, Flow::Helper { .. } | Flow::CallX))
    }

    /// One run on `data`, as `run` gives it (r0 and the count). Only for a program whose
    /// `plain` is set (`plain_runs`).
    pub(super) fn run_plain(
        &self,
        data: &mut [u8],
        budget: Option<u64>,
    ) -> Result<RunOutput, Trap> {
        debug_assert!(self.plain);
        if let Some(trap) = self.unverified_input(data.len(), None) {
            return Err(trap);
        }
        crate::run_space::with_run_space(|space| {
            let stack_bytes = space.stack_bytes();
            let stack_top = stack_bytes + STACK_SIZE as u64;
            let reach = (self.stack_frames * STACK_FRAME_SIZE) as u64;
            // SAFETY: the top of the stack area `space` owns.
            unsafe { self.zero_stack(stack_top) };
            let addr = if data.is_empty() {
                0
            } else {
                data.as_mut_ptr() as u64
            };
            let len = data.len() as u64;
            let regions = &mut space.regions;
            regions.clear();
            regions.set_stack(Region::new(stack_top - reach, reach, true));
            regions.set_data(Region::from_mut_slice(data));
            // A recycled state (the last run's `recycle`, or a new one) but for these, which are
            // put back below.
            let state = &mut space.state;
            debug_assert!(!state.limits.is_active() && state.trace.is_none());
            state.prog_type = ProgramType::Raw;
            state.stack = (stack_bytes, STACK_SIZE as u64);
            state.data = (addr, len);
            let refuse = self.options.pointer_leaks == PointerLeaks::Refuse;
            state.refuse_pointer_leaks = refuse;
            let maps = match &mut space.maps {
                Some(maps) if maps.is_for(None) => maps,
                slot => slot.insert(self.maps.run()),
            };
            let mut env = RunEnv {
                helpers: &self.helpers,
                regions,
                stack_top,
                budget: self.engine_budget(budget.unwrap_or(self.options.budget)),
                packet: (addr, len),
                maps,
                state,
                function_runner: None,
            };
            let args = [addr, len, 0, 0, 0];
            let home = &mut space.jit_home;
            let mut result = (self.prepared).run_main(&self.insns, &mut env, args, home);
            if refuse {
                refuse_exit_leak(&mut result, &env);
            }
            self.clear_unmetered_count(&mut result);
            let state = env.state;
            state.stack = (0, 0);
            state.data = (0, 0);
            state.refuse_pointer_leaks = false;
            result
        })
    }
}
