//! How many 512-byte stack frames a program can reach: one for its own, plus one for each level of
//! bpf-to-bpf calls below it. A run zeroes and exposes only those frames (the rest of the stack
//! area is outside the run's regions), so that a program without calls does not pay for zeroing
//! eight frames on every run. The kernel's verifier bounds stack use the same way: an access below
//! the frames a program has is refused there and traps here.
//!
//! Worked out from the instructions alone: the functions are the entry and every local-call
//! target; a function's calls are those reachable from its entry along jumps and fall-through.
//! Recursion, and `bpf_tail_call` (the next program runs on the same stack), get every frame.

use std::collections::HashMap;

use crate::interpreter::MAX_CALL_FRAMES;
use crate::isa::opcodes::*;
use crate::isa::Insn;

/// Above this many instructions the analysis is skipped and every frame is given.
const ANALYSIS_LIMIT: usize = 100_000;
/// bpf_tail_call: the called program reuses this run's stack.
const BPF_TAIL_CALL: i32 = 12;

/// Local-call targets reachable from `entry` (not following calls), or `None` if the function
/// can tail-call.
fn calls_from(insns: &[Insn], entry: usize) -> Option<Vec<usize>> {
    let mut seen = vec![false; insns.len()];
    let mut todo = vec![entry];
    let mut calls = Vec::new();
    while let Some(pc) = todo.pop() {
        if pc >= insns.len() || seen[pc] {
            continue;
        }
        seen[pc] = true;
        let i = &insns[pc];
        let target = |delta: i64| (pc as i64 + 1 + delta) as usize;
        match (class(i.opcode), i.opcode & 0xf0) {
            _ if i.opcode == OP_LDDW => todo.push(pc + 2),
            _ if i.opcode == OP_EXIT => {}
            _ if i.opcode == OP_CALL && i.src == CALL_LOCAL => {
                calls.push(target(i.imm as i64));
                todo.push(pc + 1);
            }
            _ if i.opcode == OP_CALL && i.src == CALL_HELPER && i.imm == BPF_TAIL_CALL => {
                return None;
            }
            _ if i.opcode == OP_JA => todo.push(target(i.off as i64)),
            _ if i.opcode == OP_JA32 => todo.push(target(i.imm as i64)),
            (CLASS_JMP | CLASS_JMP32, op) if op != JMP_CALL => {
                todo.push(target(i.off as i64));
                todo.push(pc + 1);
            }
            _ => todo.push(pc + 1),
        }
    }
    Some(calls)
}

/// Frames of the deepest call chain from `f` (itself included); `MAX_CALL_FRAMES` on recursion
/// or a tail call. `state`: 0 unvisited, 1 in progress, n + 1 done with depth n.
fn depth(insns: &[Insn], f: usize, state: &mut HashMap<usize, usize>) -> usize {
    match state.get(&f) {
        Some(1) => return MAX_CALL_FRAMES,
        Some(&d) if d > 1 => return d - 1,
        _ => {}
    }
    state.insert(f, 1);
    let d = match calls_from(insns, f) {
        None => MAX_CALL_FRAMES,
        Some(calls) => {
            let deepest = calls
                .into_iter()
                .map(|g| depth(insns, g, state))
                .max()
                .unwrap_or(0);
            (1 + deepest).min(MAX_CALL_FRAMES)
        }
    };
    state.insert(f, d + 1);
    d
}

/// Frames a run of `insns` (validated) can reach, 1 to `MAX_CALL_FRAMES`.
pub fn reachable_frames(insns: &[Insn]) -> usize {
    if insns.len() > ANALYSIS_LIMIT {
        return MAX_CALL_FRAMES;
    }
    depth(insns, 0, &mut HashMap::new()).clamp(1, MAX_CALL_FRAMES)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(imm: i32) -> Insn {
        Insn::new(OP_CALL, 0, CALL_LOCAL, 0, imm)
    }
    fn helper(id: i32) -> Insn {
        Insn::new(OP_CALL, 0, CALL_HELPER, 0, id)
    }
    fn exit() -> Insn {
        Insn::new(OP_EXIT, 0, 0, 0, 0)
    }
    fn nop() -> Insn {
        Insn::new(CLASS_ALU64 | ALU_MOV | SRC_K, 0, 0, 0, 0)
    }

    #[test]
    fn frames_follow_the_call_graph() {
        assert_eq!(reachable_frames(&[nop(), exit()]), 1);
        // main -> f (1 level).
        assert_eq!(reachable_frames(&[call(1), exit(), nop(), exit()]), 2);
        // main -> f -> g.
        assert_eq!(
            reachable_frames(&[call(1), exit(), call(1), exit(), exit()]),
            3
        );
        // A call behind a jump is still reached.
        let jumped = [
            Insn::new(CLASS_JMP | JMP_JEQ | SRC_K, 1, 0, 1, 0),
            exit(),
            call(1),
            exit(),
            exit(),
        ];
        assert_eq!(reachable_frames(&jumped), 2);
        // Helper calls other than tail calls add nothing.
        assert_eq!(reachable_frames(&[helper(1), exit()]), 1);
    }

    #[test]
    fn recursion_and_tail_calls_get_every_frame() {
        assert_eq!(reachable_frames(&[call(-1), exit()]), MAX_CALL_FRAMES);
        assert_eq!(
            reachable_frames(&[helper(BPF_TAIL_CALL), exit()]),
            MAX_CALL_FRAMES
        );
        // A tail call in a called function counts too.
        assert_eq!(
            reachable_frames(&[call(1), exit(), helper(12), exit()]),
            MAX_CALL_FRAMES
        );
    }
}
