//! `ebpf-vm`: a userspace eBPF engine. Pure Rust, no N-API: the Node binding (`ebpf-node`) and Rust
//! users share it.
//!
//! - [`isa`]: RFC 9669 instruction encoding and table-driven validation.
//! - [`analysis`]: the validated program's shape: logical instructions, blocks, dominators,
//!   loops, functions, call graph, stack depth, the per-instruction side table, a dataflow solver.
//! - [`interpreter`]: the reference semantics.
//! - `jit`: x86-64 code generation (x86-64 hosts only).
//! - [`program`]: a loaded program and its runs.
//! - [`helpers`]: helper functions by kernel number.
//! - [`memory`]: the regions a run may touch.

pub mod analysis;
pub mod context;
pub mod error;
pub mod helpers;
pub mod interpreter;
pub mod isa;
#[cfg(target_arch = "x86_64")]
pub mod jit;
pub mod maps;
pub mod memory;
pub mod pins;
pub mod program;
pub mod stack_reach;
pub mod test_run;

pub use context::{ContextInput, ContextOutput, ProcessInfo};
pub use error::{ErrorCode, LoadError, Trap, TrapKind};
pub use helpers::{HelperContext, HelperError, HelperTable};
pub use interpreter::RunOutput;
pub use program::{Engine, Mode, Program, ProgramOptions, ProgramType, RunInput};
pub use test_run::{TestRunInput, TestRunOutput};
