//! `ebpf-vm`: a userspace eBPF engine. Pure Rust, no N-API: the Node binding (`ebpf-node`) and Rust
//! users share it.
//!
//! The modules form layers, and a module uses only the layers below its own (never a peer of its
//! own layer, never anything above):
//!
//! 1. [`error`]: load errors and traps, as data.
//! 2. [`isa`]: RFC 9669 instruction encoding and table-driven validation.
//! 3. [`analysis`]: the validated program's shape: logical instructions, blocks, dominators,
//!    loops, functions, call graph, stack depth, the per-instruction side table, a dataflow solver.
//! 4. the run ABI both engines share: [`memory`] (the run memory: its stack, data and context by
//!    name, and the regions a run adds), [`limits`] (a
//!    run's deadline and cancellation, and the budget meter that slices for them), [`run_trace`] (a
//!    run's instruction trace, as data) and [`coverage`] (a program's coverage counters and
//!    what they come to), then [`vm`] (frame constants, run output, trap constructors, what a
//!    helper call returns, the program types, the tail-call target), then [`stack_reach`] (the
//!    frames a run exposes).
//! 5. [`maps`] (and [`pins`]), then [`run_state`] (what one run owns and helpers and contexts
//!    both act on: the XDP frame, the tc skb, output sinks, redirects, the network, callback and
//!    tail-call bookkeeping, the context layouts, and [`run_state::places`]: addresses named by
//!    their region, for traps and messages), then [`helpers`] (by kernel number), then [`context`]
//!    (how each program type builds its run from an input, and the helpers tied to a program
//!    type); then [`vm::env`](mod@vm::env) (the run environment: helpers, maps and run state in
//!    one, the helper call path both engines take, the memory trap); above them [`pointer_leaks`]
//!    (the run-time refusal of addresses in a program's output), then [`verifier`] (the static
//!    safety proof: abstract interpretation of register and stack states, and its kernel-format
//!    log); then [`semantics`] (what one instruction does, the reference code both engines run
//!    it by: the interpreter for every instruction it has no faster arm for, the JIT to finish a
//!    run whose budget ends inside a chain).
//! 6. the engines, peers: [`interpreter`] (the reference semantics) and `jit` (x86-64 code
//!    generation, x86-64 hosts only).
//! 7. [`verification`]: the verifier run on a load (mode `Verified`), its rejection a load error;
//!    then [`run_space`] (what a run needs that outlives it: the stack area, the tables, the run
//!    state of the last run).
//! 8. [`program`]: a loaded program and its runs; then [`test_run`] and [`batch`] (peers).
//!
//! `tests/layering.rs` reads every file's `crate::` references and enforces this order; the edges
//! the tree still has against it are listed there, with their reasons, and may only go away.
//!
//! A load ([`program::Program::load`]) is one pipeline through these layers:
//!
//! ```text
//! bytes -> validate (isa) -> analyse (analysis) -> relocate -> verify (verifier, mode Verified)
//!       -> rewrite (context) -> prepare (interpreter) / compile (jit) -> run
//! ```
//!
//! The analysis runs once, on the validated slots, and the program keeps it. Every later stage
//! reads its facts there instead of deriving them again: relocation (`maps::reloc`) and function
//! pointers (`context::pseudo_func`) read the side table (`analysis::Aux`) and write constants
//! while the side table keeps what they meant; the context rewrite (`context::rewrite`) takes the
//! context accesses from the verifier's pointer types when the program was verified (else from
//! a provenance pass over the resolved flows) and records the field each one touches; [`stack_reach`] takes
//! the frames a run exposes from the call graph; the JIT takes its targets, blocks, chains and
//! loop heads (where it aligns code and looks for counted loops) from the flows and the natural
//! loops.

pub mod analysis;
pub mod batch;
pub mod context;
pub mod coverage;
pub mod error;
pub mod helpers;
pub mod interpreter;
pub mod isa;
#[cfg(target_arch = "x86_64")]
pub mod jit;
pub mod limits;
pub mod maps;
pub mod memory;
pub mod pins;
pub mod pointer_leaks;
pub mod program;
pub mod run_space;
pub mod run_state;
pub mod run_trace;
pub mod semantics;
pub mod stack_reach;
pub mod test_run;
pub mod verification;
pub mod verifier;
pub mod vm;

pub use batch::{BatchInput, BatchRun, BatchSummary};
pub use context::{
    AddressSpace, ContextInput, ContextOutput, MemoryImage, ProcessInfo, SentSignal, SocketInfo,
};
pub use error::{ErrorCode, LoadError, Trap, TrapKind};
pub use helpers::{ArgType, HelperContext, HelperError, HelperPrototype, HelperTable, RetType};
pub use limits::{CancelToken, RunLimits};
pub use pointer_leaks::PointerLeaks;
pub use program::{AttachType, Engine, Mode, Program, ProgramOptions, ProgramType, RunInput};
pub use test_run::{TestRunInput, TestRunOutput};
pub use verification::{license_is_gpl_compatible, VerifierReport};
pub use vm::RunOutput;
