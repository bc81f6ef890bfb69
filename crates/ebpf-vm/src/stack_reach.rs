//! How many 512-byte stack frames a run exposes: as many as the deepest chain of bpf-to-bpf calls
//! from the main function holds (the analysis' `Functions::max_frames`: one for a program without
//! calls), and every frame when that has no static bound (recursion) or when the program may
//! `bpf_tail_call` (the next program runs on the same stack, with calls of its own). A `callx`
//! counts as a possible tail call: its helper id is a register value the load does not know, so
//! it may be 12. A run zeroes and exposes only those frames (the rest of the area is outside the
//! run's regions), so that most programs do not pay for zeroing eight frames on every run. The
//! kernel's verifier bounds stack use the same way: an access below a program's frames is refused
//! there and traps here. The JIT leaves `[r10 - 512, r10)` unchecked, which is sound because every
//! frame a run can enter is exposed: a call at run time follows an edge of the call graph, and
//! callbacks run on stacks of their own (`helpers::callbacks`). Computed once at load, for both
//! engines.

use crate::analysis::{Analysis, Flow, BPF_TAIL_CALL, MAX_CALL_FRAMES};

/// Frames a run of the analysed program exposes: from 1 to `MAX_CALL_FRAMES`.
pub fn reachable_frames(analysis: &Analysis) -> usize {
    let all = MAX_CALL_FRAMES as usize;
    let may_tail_call = analysis
        .cfg
        .flows
        .iter()
        .any(|f| matches!(f, Flow::CallX | Flow::Helper { id: BPF_TAIL_CALL }));
    if may_tail_call {
        return all;
    }
    match analysis.functions.max_frames {
        Some(frames) => (frames as usize).clamp(1, all),
        None => all,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{analyse, AnalysisOptions};
    use crate::isa::opcodes::*;
    use crate::isa::Insn;

    fn exit() -> Insn {
        Insn::new(OP_EXIT, 0, 0, 0, 0)
    }

    fn frames(insns: &[Insn]) -> usize {
        reachable_frames(&analyse(insns, &AnalysisOptions::default()).unwrap())
    }

    #[test]
    fn the_deepest_call_chain_or_every_frame() {
        let nop = Insn::new(CLASS_ALU64 | ALU_MOV | SRC_K, 0, 0, 0, 0);
        assert_eq!(frames(&[nop, exit()]), 1);
        // Helper calls other than tail calls stay in the frame.
        assert_eq!(
            frames(&[Insn::new(OP_CALL, 0, CALL_HELPER, 0, 1), exit()]),
            1
        );
        // main -> f: two frames; main -> f -> g: three.
        let call = |imm| Insn::new(OP_CALL, 0, CALL_LOCAL, 0, imm);
        assert_eq!(frames(&[call(1), exit(), nop, exit()]), 2);
        assert_eq!(frames(&[call(1), exit(), call(1), exit(), exit()]), 3);
        // Recursion: no static bound.
        assert_eq!(
            frames(&[call(1), exit(), call(-1), exit()]),
            MAX_CALL_FRAMES as usize
        );
        let tail = Insn::new(OP_CALL, 0, CALL_HELPER, 0, BPF_TAIL_CALL as i32);
        assert_eq!(frames(&[tail, exit()]), MAX_CALL_FRAMES as usize);
        // callx: the helper id is a register value, which may be 12.
        let callx = Insn::new(OP_CALLX, 1, 0, 0, 0);
        assert_eq!(frames(&[callx, exit()]), MAX_CALL_FRAMES as usize);
    }
}
