//! Stack depth: how many bytes of its 512-byte frame each function uses, and what chains of calls
//! use together, in the kernel's terms.
//!
//! A function's depth is its deepest access below r10, rounded up to 8 bytes, as the kernel
//! records it per subprogram (`grow_stack_state`: `round_up(-off, BPF_REG_SIZE)`; the
//! `stack depth A+B+...` line of a verifier log). Accesses count through r10 and through registers
//! that hold r10 plus a constant (see `frame_pointer.rs`); a frame pointer passed to a call as an
//! argument counts as an access at its offset (the callee or helper reads upwards from there).
//! Without helper prototypes every argument register a helper reads counts, so the figure can
//! only be above the kernel's, never below, except for pointers spilled and filled back.
//!
//! Along a chain of calls the kernel adds each frame's depth rounded again (`round_up_stack_depth`:
//! to 16 bytes when the program is JIT-compiled, to 32 with a minimum of 32 for its interpreter)
//! and refuses more than 512 bytes in all (`check_max_stack_depth`); callbacks taken with a
//! function `lddw` count as calls, as they run in a frame above the helper's caller.

use crate::error::{ErrorCode, LoadError};
use crate::isa::opcodes::*;

use super::cfg::Cfg;
use super::dataflow::{solve, Problem, Solution};
use super::flow::Flow;
use super::frame_pointer::{FrameOffset, FramePointers};
use super::functions::Functions;
use super::liveness::HelperArgs;
use super::program::LogicalProgram;

/// The kernel's `MAX_BPF_STACK`: the bytes of one frame, and of a whole chain of calls.
pub const MAX_BPF_STACK: u32 = 512;
/// The kernel's `MAX_CALL_FRAMES`: the main function's frame and seven nested calls.
pub const MAX_CALL_FRAMES: u32 = 8;

/// The stack use of one function.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct StackDepth {
    /// Bytes below r10 that the function's constant-offset accesses reach, rounded up to 8.
    pub bytes: u32,
    /// Some access goes through a frame pointer moved by an amount not known statically; only the
    /// verifier can bound it (until then, count the whole frame).
    pub variable: bool,
}

impl StackDepth {
    /// The depth to assume for limits: the whole frame when an offset is variable.
    pub fn bound(&self) -> u32 {
        if self.variable {
            MAX_BPF_STACK
        } else {
            self.bytes
        }
    }
}

/// How the kernel rounds each frame when adding frames up along a call chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StackRounding {
    /// `round_up(depth, 16)`: programs the kernel JIT-compiles.
    Jit,
    /// `round_up(max(depth, 1), 32)`: programs the kernel interprets.
    Interpreter,
}

impl StackRounding {
    pub fn round(self, depth: u32) -> u32 {
        match self {
            StackRounding::Jit => depth.div_ceil(16) * 16,
            StackRounding::Interpreter => depth.max(1).div_ceil(32) * 32,
        }
    }
}

/// The stack depth of every function.
pub fn stack_depths(
    program: &LogicalProgram,
    cfg: &Cfg,
    functions: &Functions,
    helper_args: HelperArgs<'_>,
) -> Vec<StackDepth> {
    let mut deepest = vec![0i64; functions.funcs.len()];
    let mut variable = vec![false; functions.funcs.len()];
    let problem = FramePointers;
    // Only an ALU instruction reading r10 makes another register a frame pointer. Without one,
    // r10 is the only frame pointer there is and no dataflow is needed.
    let copies_r10 = program.insns().iter().any(|insn| {
        matches!(class(insn.opcode), CLASS_ALU | CLASS_ALU64)
            && insn.opcode & SRC_X != 0
            && insn.src == FP
    });
    let solution = if copies_r10 {
        solve(program, cfg, &problem)
    } else {
        let only_r10 = problem.boundary();
        Solution {
            before: vec![only_r10; cfg.len()],
            after: Vec::new(),
        }
    };
    for (b, block) in cfg.blocks.iter().enumerate() {
        let f = functions.function_of(block.start);
        let mut reach = |at: FrameOffset, off: i64| match at {
            FrameOffset::None => {}
            FrameOffset::At(a) => deepest[f] = deepest[f].max(-(a as i64 + off)),
            FrameOffset::Any => variable[f] = true,
        };
        let mut regs = solution.before[b];
        for i in block.start..block.end {
            let insn = program.get(i);
            let reg = |r: u8| regs[(r & 0x0f).min(10) as usize];
            match class(insn.opcode) {
                CLASS_LDX => reach(reg(insn.src), insn.off as i64),
                CLASS_STX if is_load_acquire(insn.opcode, insn.imm()) => {
                    reach(reg(insn.src), insn.off as i64)
                }
                CLASS_ST | CLASS_STX => reach(reg(insn.dst), insn.off as i64),
                _ => {
                    let args = match cfg.flows[i] {
                        Flow::Helper { id } => helper_args(id).min(5),
                        Flow::Call { .. } | Flow::CallX => 5,
                        _ => 0,
                    };
                    for r in 1..=args {
                        reach(reg(r), 0);
                    }
                }
            }
            if copies_r10 {
                problem.transfer(program, i, &mut regs);
            }
        }
    }
    deepest
        .iter()
        .zip(&variable)
        .map(|(&d, &variable)| StackDepth {
            bytes: (d.clamp(0, u32::MAX as i64 - 8) as u32).div_ceil(8) * 8,
            variable,
        })
        .collect()
}

/// The deepest chain of calls from the main function by stack use: the functions along it, main
/// first, and their rounded depths added up. `None` when recursion is reachable (no bound).
pub fn deepest_chain(
    functions: &Functions,
    depths: &[StackDepth],
    rounding: StackRounding,
) -> Option<(u32, Vec<usize>)> {
    let order = functions.reachable_from_main();
    if order.iter().any(|&f| functions.recursive[f]) {
        return None;
    }
    let mut best = vec![0u32; functions.funcs.len()];
    let mut next = vec![usize::MAX; functions.funcs.len()];
    for &f in order.iter().rev() {
        let mut below = 0;
        for c in functions.calls_from(f) {
            if next[f] == usize::MAX || best[c.callee] > below {
                below = best[c.callee];
                next[f] = c.callee;
            }
        }
        best[f] = rounding.round(depths[f].bound()).saturating_add(below);
    }
    let mut chain = vec![0];
    while let Some(&f) = chain.last() {
        if next[f] == usize::MAX || chain.len() > functions.funcs.len() {
            break;
        }
        chain.push(next[f]);
    }
    Some((best[0], chain))
}

/// The kernel's limits on frames and stack along call chains (`check_max_stack_depth`), with its
/// messages: E2BIG past `MAX_CALL_FRAMES`, EACCES past `MAX_BPF_STACK` bytes in all. The analysis
/// does not apply them itself; the verifier does.
pub fn check_stack_limits(
    functions: &Functions,
    depths: &[StackDepth],
    rounding: StackRounding,
) -> Result<(), LoadError> {
    let Some(frames) = functions.max_frames else {
        return Err(LoadError::new(
            ErrorCode::E2big,
            "the call stack is unbounded: a recursive function is reachable from the main function",
        ));
    };
    if frames > MAX_CALL_FRAMES {
        return Err(LoadError::new(
            ErrorCode::E2big,
            format!("the call stack of {frames} frames is too deep ! (at most {MAX_CALL_FRAMES})"),
        ));
    }
    if let Some((bytes, chain)) = deepest_chain(functions, depths, rounding) {
        if bytes > MAX_BPF_STACK {
            return Err(LoadError::new(
                ErrorCode::Eacces,
                format!(
                    "combined stack size of {} calls is {bytes}. Too large",
                    chain.len()
                ),
            ));
        }
    }
    Ok(())
}
