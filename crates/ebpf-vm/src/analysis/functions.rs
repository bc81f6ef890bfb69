//! Functions (the kernel's subprograms): where they start, their instruction ranges, and the call
//! graph between them.
//!
//! A function starts at instruction 0 (the main function), at the target of a bpf-to-bpf `call`
//! (src 1), at the target of a function `lddw` (src 4, the callback of `bpf_loop` and its kin), or
//! at an entry the loader names (BTF function info). As in the kernel (`add_subprog_and_kfunc`,
//! `check_subprogs`), functions are contiguous: each runs from its entry to the next one, no jump
//! leaves it ("jump out of range from insn X to Y") and its last instruction is `exit` or an
//! unconditional jump, so control never falls into the next function.

use crate::error::{ErrorCode, LoadError};
use crate::isa::opcodes::*;

use super::flow::{Flow, BPF_TAIL_CALL};
use super::program::LogicalProgram;

/// One function of the program. Indices are logical.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Function {
    /// The entry, and one past the last instruction.
    pub start: usize,
    pub end: usize,
    /// Some `call` (src 1) targets it.
    pub called: bool,
    /// Some function `lddw` (src 4) takes its address (a callback).
    pub address_taken: bool,
    /// The loader's function info names it.
    pub from_loader: bool,
    /// It calls `bpf_tail_call` (the kernel's `has_tail_call`).
    pub has_tail_call: bool,
}

/// How a function reaches another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallKind {
    /// `call` with src 1.
    Call,
    /// `lddw` with src 4: the callee runs when a helper calls it back, in a frame above the
    /// helper's caller (the kernel counts it as a call in stack and frame limits).
    FuncPointer,
}

/// One edge of the call graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CallSite {
    /// The calling instruction (logical index).
    pub site: usize,
    pub caller: usize,
    pub callee: usize,
    pub kind: CallKind,
}

/// The functions of a program and its call graph.
#[derive(Clone, Debug, Default)]
pub struct Functions {
    /// Sorted by entry; function 0 is the main function.
    pub funcs: Vec<Function>,
    /// Every call site, sorted by site (so grouped by caller).
    pub calls: Vec<CallSite>,
    /// `calls[calls_from[f]..calls_from[f + 1]]` are the calls that function `f` makes.
    calls_from: Vec<u32>,
    /// Whether each function is on a cycle of the call graph (calls itself, directly or not).
    pub recursive: Vec<bool>,
    /// The most frames a run can hold at once (the main function's is one), `None` when a
    /// recursive function is reachable from the main function (no static bound).
    pub max_frames: Option<u32>,
}

impl Functions {
    /// The function holding instruction `index`.
    pub fn function_of(&self, index: usize) -> usize {
        self.funcs.partition_point(|f| f.start <= index) - 1
    }

    /// The calls function `f` makes.
    pub fn calls_from(&self, f: usize) -> &[CallSite] {
        &self.calls[self.calls_from[f] as usize..self.calls_from[f + 1] as usize]
    }

    /// Functions reachable from the main function through the call graph, main first, each
    /// callee after all of its callers when there is no recursion (a topological order).
    pub fn reachable_from_main(&self) -> Vec<usize> {
        let mut seen = vec![false; self.funcs.len()];
        let mut post = Vec::new();
        // Iterative depth-first search: (function, next call to follow).
        let mut stack = vec![(0usize, 0usize)];
        seen[0] = true;
        while let Some(&mut (f, ref mut next)) = stack.last_mut() {
            let calls = self.calls_from(f);
            if let Some(c) = calls.get(*next) {
                *next += 1;
                if !seen[c.callee] {
                    seen[c.callee] = true;
                    stack.push((c.callee, 0));
                }
            } else {
                post.push(f);
                stack.pop();
            }
        }
        post.reverse();
        post
    }
}

/// The function a function `lddw` (src 4) at `index` points to, `None` for other instructions.
pub fn func_pointer_target(
    program: &LogicalProgram,
    index: usize,
) -> Result<Option<usize>, LoadError> {
    let insn = program.get(index);
    if !insn.is_lddw() || insn.src != PSEUDO_FUNC {
        return Ok(None);
    }
    if insn.constant >> 32 != 0 {
        return Err(LoadError::at(
            ErrorCode::Einval,
            program.slot(index),
            "function pointer lddw with a non-zero upper half",
        ));
    }
    program
        .target(index, insn.imm() as i64, "function pointer")
        .map(Some)
}

/// Finds the functions, checks that they are contiguous, and builds the call graph.
/// `loader_entries` are slot indices.
pub fn find_functions(
    program: &LogicalProgram,
    flows: &[Flow],
    loader_entries: &[usize],
) -> Result<Functions, LoadError> {
    let n = program.len();
    // What starts a function, and how.
    const CALLED: u8 = 1;
    const ADDRESS_TAKEN: u8 = 2;
    const FROM_LOADER: u8 = 4;
    const MAIN: u8 = 8;
    let mut starts = vec![0u8; n];
    starts[0] |= MAIN;
    let mut pointers = Vec::new();
    for (index, flow) in flows.iter().enumerate() {
        if let Flow::Call { target } = *flow {
            starts[target as usize] |= CALLED;
        }
        if let Some(target) = func_pointer_target(program, index)? {
            starts[target] |= ADDRESS_TAKEN;
            pointers.push((index, target));
        }
    }
    for &slot in loader_entries {
        let Some(index) = program.index_of_slot(slot) else {
            return Err(LoadError::new(
                ErrorCode::Einval,
                format!(
                    "function info names instruction {slot} as a function entry, which does not \
                     start an instruction of the program (0..{})",
                    program.slot_count()
                ),
            ));
        };
        starts[index] |= FROM_LOADER;
    }
    let mut funcs: Vec<Function> = Vec::new();
    for (index, &how) in starts.iter().enumerate() {
        if how == 0 {
            continue;
        }
        if let Some(last) = funcs.last_mut() {
            last.end = index;
        }
        funcs.push(Function {
            start: index,
            end: n,
            called: how & CALLED != 0,
            address_taken: how & ADDRESS_TAKEN != 0,
            from_loader: how & FROM_LOADER != 0,
            has_tail_call: false,
        });
    }
    check_ranges(program, flows, &mut funcs)?;

    let function_of = |index: usize| funcs.partition_point(|f| f.start <= index) - 1;
    let mut calls: Vec<CallSite> = Vec::new();
    for (index, flow) in flows.iter().enumerate() {
        if let Flow::Call { target } = *flow {
            calls.push(CallSite {
                site: index,
                caller: function_of(index),
                callee: function_of(target as usize),
                kind: CallKind::Call,
            });
        }
    }
    calls.extend(pointers.into_iter().map(|(site, target)| CallSite {
        site,
        caller: function_of(site),
        callee: function_of(target),
        kind: CallKind::FuncPointer,
    }));
    calls.sort_unstable_by_key(|c| c.site);
    let mut calls_from = vec![0u32; funcs.len() + 1];
    for c in &calls {
        calls_from[c.caller + 1] += 1;
    }
    for f in 0..funcs.len() {
        calls_from[f + 1] += calls_from[f];
    }
    let mut functions = Functions {
        recursive: vec![false; funcs.len()],
        funcs,
        calls,
        calls_from,
        max_frames: None,
    };
    functions.recursive = on_cycles(&functions);
    functions.max_frames = longest_chain(&functions, |_| 1);
    Ok(functions)
}

/// The kernel's `check_subprogs`: no jump leaves its function, and the last instruction of each
/// function is `exit` or an unconditional jump. Also notes which functions tail-call.
fn check_ranges(
    program: &LogicalProgram,
    flows: &[Flow],
    funcs: &mut [Function],
) -> Result<(), LoadError> {
    for f in funcs.iter_mut() {
        for (index, flow) in flows.iter().enumerate().take(f.end).skip(f.start) {
            if let Some(target) = flow.jump_target() {
                if target < f.start || target >= f.end {
                    let from = program.slot(index);
                    let to = program.slot(target);
                    return Err(LoadError::at(
                        ErrorCode::Einval,
                        from,
                        format!("jump out of range from insn {from} to {to}: it leaves the function at {}..{}", program.slot(f.start), program.slot(f.end)),
                    ));
                }
            }
            if *flow == (Flow::Helper { id: BPF_TAIL_CALL }) {
                f.has_tail_call = true;
            }
        }
        let last = f.end - 1;
        if !matches!(flows[last], Flow::Exit | Flow::Jump { .. }) {
            let slot = program.slot(f.end) - 1;
            return Err(LoadError::at(
                ErrorCode::Einval,
                slot,
                format!(
                    "last insn is not an exit or jmp: control would fall from the function at {} \
                     into the function at {}",
                    program.slot(f.start),
                    program.slot(f.end)
                ),
            ));
        }
    }
    Ok(())
}

/// Which functions lie on a cycle of the call graph: Tarjan's strongly connected components,
/// iteratively (a deep call chain must not overflow the host's stack).
fn on_cycles(g: &Functions) -> Vec<bool> {
    const UNSEEN: u32 = u32::MAX;
    let n = g.funcs.len();
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0u32; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<usize> = Vec::new();
    let mut cyclic = vec![false; n];
    let mut counter = 0u32;
    for root in 0..n {
        if index[root] != UNSEEN {
            continue;
        }
        let mut frames = vec![(root, 0usize)];
        index[root] = counter;
        low[root] = counter;
        counter += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (f, ref mut next)) = frames.last_mut() {
            let calls = g.calls_from(f);
            if let Some(c) = calls.get(*next) {
                *next += 1;
                let w = c.callee;
                if w == f {
                    cyclic[f] = true;
                }
                if index[w] == UNSEEN {
                    index[w] = counter;
                    low[w] = counter;
                    counter += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    frames.push((w, 0));
                } else if on_stack[w] {
                    low[f] = low[f].min(index[w]);
                }
                continue;
            }
            frames.pop();
            if let Some(&(caller, _)) = frames.last() {
                low[caller] = low[caller].min(low[f]);
            }
            if low[f] == index[f] {
                // `f` roots a component: everything above it on the stack.
                let at = stack.iter().rposition(|&w| w == f).unwrap_or(0);
                let members = stack.split_off(at);
                for &w in &members {
                    on_stack[w] = false;
                }
                if members.len() > 1 {
                    for &w in &members {
                        cyclic[w] = true;
                    }
                }
            }
        }
    }
    cyclic
}

/// The largest sum of `weight` along a chain of calls from the main function (the main
/// function's own weight included), `None` when recursion is reachable from it.
pub fn longest_chain(g: &Functions, weight: impl Fn(usize) -> u32) -> Option<u32> {
    let order = g.reachable_from_main();
    if order.iter().any(|&f| g.recursive[f]) {
        return None;
    }
    // Callees come after their callers in `order`: fold from the end.
    let mut best = vec![0u32; g.funcs.len()];
    for &f in order.iter().rev() {
        let deepest = g
            .calls_from(f)
            .iter()
            .map(|c| best[c.callee])
            .max()
            .unwrap_or(0);
        best[f] = weight(f).saturating_add(deepest);
    }
    Some(best[0])
}
