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
use crate::context::RunState;
use crate::error::Trap;
use crate::isa::opcodes::{CLASS_STX, MODE_ATOMIC};
use crate::memory::{Region, Regions};
use crate::pointer_leaks::PointerLeaks;
use crate::pointer_leaks::FIRST_PAGE;
use crate::vm::env::{Entry, RunEnv};
use crate::vm::{RunOutput, STACK_FRAME_SIZE, STACK_SIZE};

use super::{refuse_exit_leak, PreparedEngine, Program, ProgramType};

/// What a plain run's memory is, in the region table and the run state's fields: its stack (the
/// frames it can reach) and data as regions, the stack area and the data as the state names them
/// (`places`, `pointer_leaks`), and whether it refuses pointer leaks.
struct RunMemory {
    stack: Region,
    data: Region,
    stack_area: (u64, u64),
    packet: (u64, u64),
    refuse: bool,
}

impl RunMemory {
    /// Sets the region table to this memory alone, and the state's fields to it (the rest of
    /// the state is recycled: the last run's `recycle`, or new).
    #[inline(always)]
    fn set(&self, regions: &mut Regions, state: &mut RunState) {
        regions.clear();
        regions.set_stack(self.stack);
        regions.set_data(self.data);
        state.prog_type = ProgramType::Raw;
        state.stack = self.stack_area;
        state.data = self.packet;
        state.refuse_pointer_leaks = self.refuse;
    }

    /// Puts the state's fields `set` sets back as a recycled state has them.
    #[inline(always)]
    fn unset(state: &mut RunState) {
        state.stack = (0, 0);
        state.data = (0, 0);
        state.refuse_pointer_leaks = false;
    }
}

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

    /// Whether plain runs of this program can leave the region table and the run state's
    /// fields unset (`bare`, decided at load): nothing of such a run reads them. The program is
    /// verified and unmetered, and compiled with every load and store proved (no check of
    /// either kind) and no atomic (no misalignment trap, which names its address by the run's
    /// memory): its code reaches no Rust entry point (no helper, no memory check, no budget
    /// refill) and can leave only normally or past the call depth, which names no address. The
    /// pointer-leak check of r0 at exit, the one reader left, sets them first when r0 may be
    /// an address.
    pub(super) fn bare_runs(&self) -> bool {
        #[cfg(target_arch = "x86_64")]
        if let PreparedEngine::Jit(jit) = &self.prepared {
            // Class and mode (any size: validation refuses all but words and double words).
            let atomic = |i: &crate::isa::Insn| i.opcode & 0xe7 == CLASS_STX | MODE_ATOMIC;
            return self.plain
                && self.verifier.is_some()
                && !self.metered
                && !jit.checks()
                && !self.insns.iter().any(atomic);
        }
        false
    }

    /// One run on `data`, as `run` gives it (r0 and the count). Only for a program whose
    /// `plain` is set (`plain_runs`).
    pub(super) fn run_plain(
        &self,
        data: &mut [u8],
        budget: Option<u64>,
    ) -> Result<RunOutput, Trap> {
        debug_assert!(self.plain);
        self.check_data_len(data.len())?;
        #[cfg(target_arch = "x86_64")]
        if let Some(entry) = self.bare_entry {
            return self.run_bare(entry, data);
        }
        // The closure hands its trap back boxed: a run's outcome is then four words, not a
        // whole `Trap`, on its way out of the run space (a copy per run fewer).
        let result = crate::run_space::with_run_space(|space| {
            let stack_top = space.stack_bytes() + STACK_SIZE as u64;
            // SAFETY: the top of the stack area `space` owns.
            unsafe { self.zero_stack(stack_top) };
            let memory = self.memory(space.stack_bytes(), data);
            let (addr, len) = memory.packet;
            let (stack, data) = (memory.stack, memory.data);
            let refuse = memory.refuse;
            let (regions, state) = (&mut space.regions, &mut space.state);
            debug_assert!(!state.limits.is_active() && state.trace.is_none());
            if !self.bare {
                memory.set(regions, state);
            }
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
            let mut result = match &self.prepared {
                // The hot regions are the two set above (`Regions::hot`: the data, as there is
                // no context), which the block is compared with as they are, not read back.
                #[cfg(target_arch = "x86_64")]
                PreparedEngine::Jit(jit) => {
                    let hot = [stack.start, stack.len, 1, data.start, data.len, 1];
                    debug_assert!(self.bare || env.regions.hot() == [stack, data]);
                    let home = &mut space.jit_home;
                    // SAFETY: the stack region is the program's `stack_frames` frames under
                    // `stack_top` (above), which it was compiled for (`PreparedEngine::select`);
                    // a plain program calls no helper and has no maps, and `Program::run` runs
                    // have no limits.
                    unsafe { jit.run_plain(home, &self.insns, &mut env, args, hot) }
                }
                _ => (self.prepared).run_from(&self.insns, &mut env, args, Entry::Main),
            };
            // (`refuse_exit_leak` without its first test, made here.)
            if refuse && result.as_ref().is_ok_and(|out| out.r0 >= FIRST_PAGE) {
                // What the check reads, for a run that did not set it.
                if self.bare {
                    memory.set(env.regions, env.state);
                }
                refuse_exit_leak(&mut result, &env);
            }
            self.clear_unmetered_count(&mut result);
            // (A bare run that set nothing finds them as `unset` leaves them.)
            RunMemory::unset(env.state);
            result.map_err(Box::new)
        });
        result.map_err(|trap| *trap)
    }

    /// Refuses data of another length than a verified raw program's `data_size`.
    #[inline(always)]
    fn check_data_len(&self, len: usize) -> Result<(), Trap> {
        if self.data_len.is_some_and(|n| n != len) {
            return Err((self.unverified_input(len, None))
                .expect("a verified raw program refuses other lengths"));
        }
        Ok(())
    }

    /// The memory of a plain run on `data` with the run space's stack area at `stack_bytes`.
    #[inline(always)]
    fn memory(&self, stack_bytes: u64, data: &mut [u8]) -> RunMemory {
        let stack_top = stack_bytes + STACK_SIZE as u64;
        let reach = (self.stack_frames * STACK_FRAME_SIZE) as u64;
        let addr = crate::context::raw_data_address(data);
        RunMemory {
            stack: Region::new(stack_top - reach, reach, true),
            packet: (addr, data.len() as u64),
            data: Region::from_mut_slice(data),
            stack_area: (stack_bytes, STACK_SIZE as u64),
            refuse: self.options.pointer_leaks == PointerLeaks::Refuse,
        }
    }

    /// `run_plain` of a bare program through its own entry into its code (`bare_entry`): the
    /// stack zeroed as a run needs it, the code called with the data and the stack's top, and r0
    /// checked as a pointer leak (inline when it is no address, `r0 < 4096`). Nothing else of
    /// the run space or the JIT's block is set or read: the code can leave only by its exits
    /// (`jit::JitProgram::bare_entry`), and the run is unmetered (its count is 0).
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn run_bare(&self, entry: crate::jit::BareEntry, data: &mut [u8]) -> Result<RunOutput, Trap> {
        debug_assert!(self.bare && !self.metered);
        let addr = crate::context::raw_data_address(data);
        let len = data.len() as u64;
        let stack_bytes = crate::run_space::bare_stack_bytes();
        let stack_top = stack_bytes + STACK_SIZE as u64;
        // SAFETY: the top of this thread's bare-run stack area, which no other run holds (a
        // bare run calls nothing out), whose `stack_frames` frames the code was compiled for
        // (the whole area holds them all); `data` is `len` bytes the run may write, the length
        // it was verified for (`data_len`, checked by the caller).
        let exit = unsafe {
            self.zero_stack(stack_top);
            entry(addr, len, stack_top)
        };
        let out = RunOutput {
            r0: exit.r0,
            insn_count: 0,
            exit_pc: exit.exit_pc as usize,
        };
        if out.r0 < FIRST_PAGE || self.options.pointer_leaks != PointerLeaks::Refuse {
            return Ok(out);
        }
        // A plain run's memory is its stack area and its data alone (no maps, no helpers): r0
        // in neither, one past the end included as `is_host_address` counts it, is no address
        // of the run (a hash or a large count), and needs no region table to tell.
        let in_stack = out.r0.wrapping_sub(stack_bytes) <= STACK_SIZE as u64;
        let in_data = len != 0 && out.r0.wrapping_sub(addr) <= len;
        if !in_stack && !in_data {
            return Ok(out);
        }
        crate::run_space::with_run_space(|space| self.bare_leak(space, stack_bytes, data, out))
    }

    /// The pointer-leak check of a bare run's r0 at exit (`run_bare`), when it may be an
    /// address: the region table and the run state's fields of the thread's run space `space`
    /// set to the run's memory (its stack the bare-run stack area at `stack_bytes`) for it to
    /// read, and put back after.
    #[cfg(target_arch = "x86_64")]
    #[cold]
    #[inline(never)]
    fn bare_leak(
        &self,
        space: &mut crate::run_space::RunSpace,
        stack_bytes: u64,
        data: &mut [u8],
        out: RunOutput,
    ) -> Result<RunOutput, Trap> {
        let memory = self.memory(stack_bytes, data);
        let (regions, state) = (&mut space.regions, &mut space.state);
        memory.set(regions, state);
        if space.maps.as_ref().is_some_and(|maps| !maps.is_for(None)) {
            space.maps = None;
        }
        let maps = space.maps.get_or_insert_with(|| self.maps.run());
        let env = RunEnv {
            helpers: &self.helpers,
            regions,
            stack_top: memory.stack.start + memory.stack.len,
            budget: self.engine_budget(self.options.budget),
            packet: memory.packet,
            maps,
            state,
            function_runner: None,
        };
        let mut result = Ok(out);
        refuse_exit_leak(&mut result, &env);
        self.clear_unmetered_count(&mut result);
        RunMemory::unset(env.state);
        result
    }
}
