//! The validated program, analysed once for every later stage: the facts that the context
//! rewrite, the verifier and both engines need about a program's shape, in the vocabulary of the
//! kernel's verifier and of cilium/ebpf.
//!
//! [`analyse`] takes the slots that `isa::validate` accepted and builds an [`Analysis`]:
//! - [`LogicalProgram`]: logical instructions (an `lddw` pair is one instruction with a 64-bit
//!   constant) and the map between logical indices and slots;
//! - [`Flow`] of each instruction (fall-through, jump, branch, exit, calls; `bpf_tail_call` and
//!   legacy packet loads may end the run);
//! - [`Functions`]: entries from local calls, function `lddw`s and the loader's function info,
//!   contiguous ranges checked as the kernel's `check_subprogs` checks them, the call graph,
//!   recursion and the most frames a run can hold;
//! - [`Cfg`]: basic blocks, successors, predecessors and reverse postorder, per function;
//! - [`Dominators`] (Cooper-Harvey-Kennedy) and [`Loops`]: natural loops from back edges, with
//!   headers, latches and nesting, and the edges that make the graph irreducible;
//! - [`StackDepth`] of each function, as the kernel counts it (on demand);
//! - [`Aux`], the per-instruction side table (what each `lddw` loads, which context field an
//!   access touches, and what the verifier proves);
//! - the instructions no run can reach.
//!
//! A small worklist solver ([`dataflow`]) serves dataflow problems over the blocks, forward or
//! backward; register liveness and "stack bytes written before read" are its first clients.
//!
//! Indices are logical instruction indices (and block or function indices) unless a name says
//! `slot`; errors name slots, as the kernel's messages and jump offsets do. Every pass is linear
//! or near-linear in the program's size. Nothing here panics on a program `isa::validate`
//! accepted; structural problems are `LoadError`s with EINVAL naming the instruction.

pub mod cfg;
pub mod dataflow;
pub mod dominators;
pub mod flow;
pub mod frame_pointer;
pub mod functions;
pub mod liveness;
pub mod loops;
pub mod program;
pub mod reach;
pub mod side_table;
pub mod stack_depth;
pub mod stack_init;

pub use cfg::{Block, Cfg};
pub use dominators::Dominators;
pub use flow::{Flow, BPF_TAIL_CALL};
pub use functions::{CallKind, CallSite, Function, Functions};
pub use liveness::{all_five, HelperArgs, RegSet};
pub use loops::{IrreducibleEdge, Loop, Loops};
pub use program::{Instruction, LogicalProgram};
pub use side_table::{Aux, Imm64};
pub use stack_depth::{StackDepth, StackRounding, MAX_BPF_STACK, MAX_CALL_FRAMES};
pub use stack_init::UnprovenRead;

use crate::error::LoadError;
use crate::isa::Insn;

/// What the loader knows beyond the bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct AnalysisOptions<'a> {
    /// Function entries from the object's function info (BTF `func_info`), as slots.
    pub func_entries: &'a [usize],
}

/// Everything [`analyse`] finds.
#[derive(Clone, Debug, Default)]
pub struct Analysis {
    pub program: LogicalProgram,
    pub functions: Functions,
    pub cfg: Cfg,
    pub dominators: Dominators,
    pub loops: Loops,
    /// One entry per logical instruction.
    pub aux: Vec<Aux>,
    /// Instructions no run can reach (logical indices, increasing).
    pub unreachable: Vec<usize>,
}

/// Analyses validated instruction slots.
pub fn analyse(slots: &[Insn], options: &AnalysisOptions<'_>) -> Result<Analysis, LoadError> {
    let program = LogicalProgram::new(slots)?;
    let flows = flow::resolve_flows(&program)?;
    let functions = functions::find_functions(&program, &flows, options.func_entries)?;
    let cfg = Cfg::build(flows, &functions);
    let dominators = Dominators::compute(&cfg);
    let loops = Loops::compute(&cfg, &dominators);
    let aux = side_table::build(&program)?;
    let unreachable = reach::unreachable_instructions(&cfg, &functions);
    Ok(Analysis {
        program,
        functions,
        cfg,
        dominators,
        loops,
        aux,
        unreachable,
    })
}

impl Analysis {
    /// The registers live before each instruction (bit `r` for register `r`).
    pub fn live_registers(&self, helper_args: HelperArgs<'_>) -> Vec<RegSet> {
        liveness::live_registers(&self.program, &self.cfg, helper_args)
    }

    /// Loads through r10 of stack bytes not written on every path before them.
    pub fn unproven_stack_reads(&self) -> Vec<UnprovenRead> {
        stack_init::unproven_stack_reads(&self.program, &self.cfg)
    }

    /// The stack depth of each function (computed on demand: no engine needs it). A frame
    /// pointer passed to a helper counts as an access, for the first `helper_args(id)` arguments.
    pub fn stack_depths(&self, helper_args: HelperArgs<'_>) -> Vec<StackDepth> {
        stack_depth::stack_depths(&self.program, &self.cfg, &self.functions, helper_args)
    }

    /// The deepest chain of calls by stack use, given each function's `depths`: its rounded
    /// total and its functions, main first (`None` when recursion is reachable).
    pub fn deepest_stack_chain(
        &self,
        depths: &[StackDepth],
        rounding: StackRounding,
    ) -> Option<(u32, Vec<usize>)> {
        stack_depth::deepest_chain(&self.functions, depths, rounding)
    }

    /// The kernel's frame and combined-stack limits (`check_max_stack_depth`), as a load error.
    pub fn check_stack_limits(
        &self,
        depths: &[StackDepth],
        rounding: StackRounding,
    ) -> Result<(), LoadError> {
        stack_depth::check_stack_limits(&self.functions, depths, rounding)
    }

    /// The block holding instruction `index`.
    pub fn block_of(&self, index: usize) -> usize {
        self.cfg.block_of(index)
    }

    /// The function holding instruction `index`.
    pub fn function_of(&self, index: usize) -> usize {
        self.functions.function_of(index)
    }
}
