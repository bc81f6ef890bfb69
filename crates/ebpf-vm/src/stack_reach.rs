//! How many 512-byte stack frames a run exposes: one for a program that has no bpf-to-bpf call
//! instruction at all (it can never leave its own frame), every frame otherwise (calls,
//! recursion, and `bpf_tail_call`, whose next program runs on the same stack with calls of its
//! own). A `callx` counts as a possible tail call: its helper id is a register value the load
//! does not know, so it may be 12. A run zeroes and exposes only those frames (the rest of the area is outside the run's
//! regions), so that most programs do not pay for zeroing eight frames on every run. The kernel's
//! verifier bounds stack use the same way: an access below a program's frame is refused there and
//! traps here. The rule is deliberately this coarse: the JIT leaves `[r10 - 512, r10)` unchecked,
//! which is sound only if every frame a run can enter is exposed, and a rule that looks at nothing
//! but the presence of call instructions cannot be wrong about that.

use crate::interpreter::MAX_CALL_FRAMES;
use crate::isa::opcodes::*;
use crate::isa::Insn;

/// bpf_tail_call: the called program reuses this run's stack.
const BPF_TAIL_CALL: i32 = 12;

/// Whether `insns` contain a bpf-to-bpf call or a possible tail call (`call 12`, or any `callx`,
/// whose register may hold 12).
pub fn may_leave_first_frame(insns: &[Insn]) -> bool {
    insns.iter().any(|i| {
        i.opcode == OP_CALLX
            || (i.opcode == OP_CALL
                && (i.src == CALL_LOCAL || (i.src == CALL_HELPER && i.imm == BPF_TAIL_CALL)))
    })
}

/// Frames a run of `insns` exposes: 1 or `MAX_CALL_FRAMES`.
pub fn reachable_frames(insns: &[Insn]) -> usize {
    if may_leave_first_frame(insns) {
        MAX_CALL_FRAMES
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit() -> Insn {
        Insn::new(OP_EXIT, 0, 0, 0, 0)
    }

    #[test]
    fn one_frame_without_calls_every_frame_with_them() {
        let nop = Insn::new(CLASS_ALU64 | ALU_MOV | SRC_K, 0, 0, 0, 0);
        assert_eq!(reachable_frames(&[nop, exit()]), 1);
        // Helper calls other than tail calls stay in the frame.
        assert_eq!(
            reachable_frames(&[Insn::new(OP_CALL, 0, CALL_HELPER, 0, 1), exit()]),
            1
        );
        let local = Insn::new(OP_CALL, 0, CALL_LOCAL, 0, 1);
        assert_eq!(
            reachable_frames(&[local, exit(), nop, exit()]),
            MAX_CALL_FRAMES
        );
        let tail = Insn::new(OP_CALL, 0, CALL_HELPER, 0, BPF_TAIL_CALL);
        assert_eq!(reachable_frames(&[tail, exit()]), MAX_CALL_FRAMES);
        // callx: the helper id is a register value, which may be 12.
        let callx = Insn::new(OP_CALLX, 1, 0, 0, 0);
        assert_eq!(reachable_frames(&[callx, exit()]), MAX_CALL_FRAMES);
    }
}
