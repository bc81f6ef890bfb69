//! Calling back into the program: `HelperContext::call_function`, and `bpf_loop` (181) on top of it.
//!
//! The contract between helpers and engines (see also `helpers/mod.rs`):
//! - A callback is named by the value of a `lddw rX, <function>` (`BPF_PSEUDO_FUNC`), which the
//!   loader turned into the function's instruction index (`context::pseudo_func`). Only indices in
//!   the program's list (`RunState::callbacks`) are accepted.
//! - The engine that runs the program provides a `FunctionRunner` in `RunEnv::function_runner`:
//!   "run the function at `Callback::pc`, with r1-r5 = its args and r10 = its stack top, until
//!   its `exit`; return its r0 and how many instructions it executed, or the trap that stopped it".
//!   The runner gets the helper's context and builds the callback's run environment from it
//!   (`vm::env::RunEnv::of_callback`), so that helpers need nothing of the engines' ABI above
//!   them. `Program` runs it on the program's own engine (the interpreter's prepared form or the
//!   JIT's code, entered at that index); an engine without one leaves it `None` and callbacks
//!   fail with a helper error.
//! - Each callback runs as a new frame on its own stack area (one 4 KiB area per nesting depth,
//!   allocated on first use and added to the run's regions), at most 8 deep.
//! - Budget: the run has one budget. Each call costs one instruction (the call itself) plus the
//!   instructions the callback executes, all charged to the helper call (`HelperContext::charged`),
//!   which the calling engine adds to its count; a callback may execute what is left of the run's
//!   budget at its start. So `insn_count` covers callbacks, and a run never executes more than
//!   its budget, however deeply callbacks nest.
//! - A trap inside a callback (bad access, budget) stops the whole run with that trap, its count
//!   and (for a budget trap) its budget restated as the run's: the helper returns an error and
//!   `vm::env::call_helper` re-raises the trap saved in `RunState::pending_trap`.

use crate::error::{Trap, TrapKind};
use crate::memory::Region;
use crate::run_state::{OwnedBuf, MAX_CALLBACK_DEPTH};
use crate::vm::{budget_trap, RunOutput, STACK_SIZE};

use super::{HelperContext, HelperError, HelperTable};
use crate::vm::errno::{E2BIG, EINVAL};

pub const BPF_LOOP: u32 = 181;
/// `BPF_MAX_LOOPS`: the most iterations `bpf_loop` accepts.
pub const BPF_MAX_LOOPS: u64 = 1 << 23;

/// One call back into the program: where, with what, on which stack and budget.
#[derive(Clone, Copy, Debug)]
pub struct Callback {
    /// The function's first instruction.
    pub pc: usize,
    /// r1-r5.
    pub args: [u64; 5],
    /// r10: the top of the callback's own stack area.
    pub stack_top: u64,
    /// Instructions the callback may execute.
    pub budget: u64,
    /// The packet `LD_ABS`/`LD_IND` read, as it is now.
    pub packet: (u64, u64),
}

/// Runs a callback of the program whose helper context it is given (see the module comment).
pub type FunctionRunner<'a> =
    dyn Fn(&mut HelperContext<'_>, &Callback) -> Result<RunOutput, Trap> + Sync + 'a;

/// A trap of an execution that started `base` instructions into an execution with `budget`
/// instructions (a callback inside its caller, a tail-called program inside its chain), restated
/// in the outer execution's terms: its count from the outer start, and a budget trap naming the
/// outer budget.
pub fn rebase_trap(trap: &mut Trap, base: u64, budget: u64) {
    trap.insn_count += base;
    if trap.kind == TrapKind::BudgetExhausted {
        *trap = budget_trap(trap.pc, budget);
    }
}

impl HelperContext<'_> {
    fn callback_trap(&mut self, kind: TrapKind, message: String) -> HelperError {
        self.state.pending_trap = Some(Trap {
            kind,
            pc: self.caller.pc,
            addr: 0,
            size: 0,
            insn_count: self.caller.insn_base.saturating_sub(1) + self.charged,
            message: message.clone(),
            place: None,
        });
        HelperError(message)
    }

    /// Instructions of the calling frame's budget still unused: what a callback may execute, or
    /// a helper charge.
    pub fn budget_left(&self) -> u64 {
        self.caller
            .budget
            .saturating_sub(self.caller.insn_base)
            .saturating_sub(self.charged)
    }

    /// Charges `n` instructions of work to the run's budget. When the budget does not cover it,
    /// the run stops with a budget trap at the helper call (an `Err` the helper must return as
    /// is).
    pub fn charge(&mut self, n: u64) -> Result<(), HelperError> {
        if n > self.budget_left() {
            self.charged += self.budget_left();
            let trap = budget_trap(self.caller.pc, self.caller.budget);
            let message = trap.message.clone();
            self.state.pending_trap = Some(trap);
            return Err(HelperError(message));
        }
        self.charged += n;
        Ok(())
    }

    /// Calls the program's function `target` (a value from a function `lddw`) with `args`;
    /// returns its r0. An `Err` means the run must stop (the helper should return it as is).
    pub fn call_function(&mut self, target: u64, args: [u64; 5]) -> Result<u64, HelperError> {
        let known =
            self.state.callbacks.as_deref().is_some_and(|c| {
                usize::try_from(target).is_ok_and(|t| c.binary_search(&t).is_ok())
            });
        if !known {
            return Err(HelperError(format!(
                "{} is not a callback function of this program",
                self.describe(target)
            )));
        }
        let Some(runner) = self.caller.runner else {
            return Err(HelperError(
                "this engine cannot call back into the program".into(),
            ));
        };
        let depth = self.state.callback_depth;
        if depth >= MAX_CALLBACK_DEPTH {
            return Err(self.callback_trap(
                TrapKind::CallDepth,
                format!("callbacks nested more than {MAX_CALLBACK_DEPTH} deep"),
            ));
        }
        // A helper calling back many times checks the run's limits as it goes (a callback too
        // short to finish a slice of its own never would).
        if let Err(mut trap) = self.state.limits.check(self.caller.pc, 0) {
            trap.insn_count = self.caller.insn_base - 1 + self.charged;
            let message = trap.message.clone();
            self.state.pending_trap = Some(trap);
            return Err(HelperError(message));
        }
        // The call itself.
        self.charge(1)?;
        while self.state.callback_stacks.len() <= depth {
            let stack = OwnedBuf::zeroed(STACK_SIZE);
            self.regions
                .push(Region::new(stack.addr, STACK_SIZE as u64, true));
            self.state.callback_stacks.push(stack);
        }
        let stack_top = self.state.callback_stacks[depth].addr + STACK_SIZE as u64;
        let base = self.caller.insn_base + self.charged;
        let callback = Callback {
            pc: target as usize,
            args,
            stack_top,
            budget: self.budget_left(),
            packet: self.state.packet_moved.unwrap_or(self.caller.packet),
        };
        self.state.callback_depth += 1;
        let result = runner(self, &callback);
        self.state.callback_depth -= 1;
        match result {
            Ok(out) => {
                self.charged += out.insn_count;
                Ok(out.r0)
            }
            Err(mut trap) => {
                self.charged += trap.insn_count;
                rebase_trap(&mut trap, base, self.caller.budget);
                let message = trap.message.clone();
                self.state.pending_trap = Some(trap);
                Err(HelperError(format!("callback stopped: {message}")))
            }
        }
    }
}

/// `bpf_loop(nr_loops, callback, ctx, flags)`: calls `callback(i, ctx)` for i = 0.. until it
/// returns non-zero; returns the number of calls made. flags != 0: -EINVAL; more than 2^23
/// iterations: -E2BIG.
fn bpf_loop(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (nr, callback, ctx, flags) = (a[0] as u32 as u64, a[1], a[2], a[3]);
    if flags != 0 {
        return Ok((-EINVAL) as u64);
    }
    if nr > BPF_MAX_LOOPS {
        return Ok((-E2BIG) as u64);
    }
    for i in 0..nr {
        if cx.call_function(callback, [i, ctx, 0, 0, 0])? != 0 {
            return Ok(i + 1);
        }
    }
    Ok(nr)
}

pub fn register(table: &mut HelperTable) {
    table.register_kernel(BPF_LOOP, "bpf_loop", bpf_loop);
}
