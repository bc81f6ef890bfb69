//! The reference semantics: an interpreter of validated instructions, checked mode. Everything
//! another engine does must agree with this module, bit for bit: r0, memory, the trap (kind,
//! instruction index, address, size) and the instruction count.
//!
//! On `crate::semantics` (each operation written once, `general`, the reference code by
//! instruction class, and `reference_loop`, which runs it one instruction at a time; below both
//! engines, as the JIT finishes budget-stopped runs with it), three parts: `prepared` (the form
//! made once at load: per-slot ops, segments, fused idioms), `threaded` (a handler per slot,
//! chained by tail calls, for the common cases) and `fast` (the fast loop over prepared ops, whose
//! arms call the primitives of `semantics`, runs the threaded form first and whatever it leaves,
//! then the reference loop for the last, partial segment). The reference is `general` driven one
//! instruction at a time (`run_reference`); `run`/`run_prepared` take the fast loop, which must
//! give the same results (`tests/interpreter_fast_path.rs` checks it against the reference loop).
//!
//! Semantics fixed here where RFC 9669 leaves a choice to the implementation:
//! - helper calls leave r1-r5 as they were (as the kernel's own interpreter does);
//! - `callx` takes a helper id from its register (the bpf_conformance convention);
//! - a legacy packet load (`LD_ABS`/`LD_IND`) outside the packet ends the program with r0 = 0,
//!   as the kernel does;
//! - atomic operations must be naturally aligned (a misaligned one traps as `misaligned`).

use crate::error::{LoadError, Trap};
use crate::isa::Insn;
pub use crate::vm::env::{call_helper, memory_trap, RunEnv};
use crate::vm::env::{Entry, ExecutionEngine, Validated};
pub use crate::vm::{
    budget_trap, HelperReturn, RunOutput, MAX_CALL_FRAMES, STACK_FRAME_SIZE, STACK_SIZE,
};

mod fast;
mod observe;
mod prepared;
mod threaded;

use fast::run_from;
pub use observe::run_traced;
pub use prepared::{prepare, prepare_analysed, prepare_proved, Prepared};

/// The interpreter's side of the run ABI: its prepared form, run by the fast loop (the counting
/// loop when the run counts coverage).
impl ExecutionEngine for Prepared {
    fn prepare(program: &Validated<'_>) -> Result<Self, LoadError> {
        Ok(prepare_analysed(
            program.insns,
            program.analysis,
            program.proved,
        ))
    }

    fn run_from(
        &self,
        _insns: &[Insn],
        env: &mut RunEnv<'_>,
        args: [u64; 5],
        entry: Entry,
    ) -> Result<RunOutput, Trap> {
        let entry = entry.pc();
        if env.state.coverage.is_some() {
            run_from::<true>(self, env, args, entry)
        } else {
            run_from::<false>(self, env, args, entry)
        }
    }
}

/// Runs validated instructions from slot 0 with r1-r5 = `args` (preparing them first; see
/// `run_prepared` to prepare once for many runs).
pub fn run(insns: &[Insn], env: &mut RunEnv<'_>, args: [u64; 5]) -> Result<RunOutput, Trap> {
    run_prepared(&prepare(insns), env, args)
}

/// Runs validated instructions with the reference loop alone: one instruction at a time through
/// the reference code, the budget checked before each. Slow; for tests that check the fast loop
/// (and other engines) against it.
pub fn run_reference(
    insns: &[Insn],
    env: &mut RunEnv<'_>,
    args: [u64; 5],
) -> Result<RunOutput, Trap> {
    let mut p = prepare(insns);
    p.fast = false;
    run_prepared(&p, env, args)
}

/// Runs prepared instructions from slot 0 with r1-r5 = `args`.
pub fn run_prepared(p: &Prepared, env: &mut RunEnv<'_>, args: [u64; 5]) -> Result<RunOutput, Trap> {
    run_from::<false>(p, env, args, 0)
}

/// Runs prepared instructions from slot `entry` (0, or a callback's first instruction) as
/// `run_prepared`/`run_function` do, counting coverage into `env.state.coverage` (see
/// `coverage`): one count per segment entered, and the fall-throughs of conditional jumps.
pub fn run_counted(
    p: &Prepared,
    env: &mut RunEnv<'_>,
    args: [u64; 5],
    entry: usize,
) -> Result<RunOutput, Trap> {
    run_from::<true>(p, env, args, entry)
}

/// Runs the function that starts at slot `entry` (a callback: see `helpers/callbacks.rs`) until
/// its `exit`, as `run_prepared` runs the program from slot 0. `entry` must start an instruction
/// (not the second slot of `lddw`), as the loader checks for callback entries.
pub fn run_function(
    p: &Prepared,
    env: &mut RunEnv<'_>,
    args: [u64; 5],
    entry: usize,
) -> Result<RunOutput, Trap> {
    run_from::<false>(p, env, args, entry)
}
