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

use crate::analysis::{Analysis, Flow, BPF_TAIL_CALL, MAX_BPF_STACK, MAX_CALL_FRAMES};
use crate::isa::opcodes::{class, is_load_acquire, CLASS_LDX, CLASS_ST, CLASS_STX, FP};

/// The bytes a run must zero before it starts, as (bytes from the top of the stack area down to
/// the first of them, their number): the `frames` reachable frames, or, for a program whose
/// stack only its own direct loads can read, only the bytes those loads may read before a store
/// wrote them (`Analysis::unproven_stack_reads`), or none. The rest of the frame is memory of
/// the run too but nothing can read it before the program writes it, so what an earlier run on
/// the same stack left there is never seen (`run_space`).
///
/// Direct use means: the one function (no calls of functions, no callbacks, so one frame), and
/// r10 appearing only as the base address of loads and stores. A copy of r10 (`mov`, arithmetic,
/// a comparison, a store of it, a packet load indexed by it) could reach a helper or a load the
/// syntactic analysis does not follow; such programs zero their whole reach, as before.
pub fn zeroed_bytes(analysis: &Analysis, frames: usize) -> (usize, usize) {
    // A frame is `MAX_BPF_STACK` bytes (the engines' `STACK_FRAME_SIZE`).
    let reach = frames * MAX_BPF_STACK as usize;
    let whole = (reach, reach);
    if frames != 1 || analysis.functions.funcs.len() != 1 {
        return whole;
    }
    let escapes = analysis
        .program
        .insns()
        .iter()
        .any(|insn| match class(insn.opcode) {
            CLASS_LDX => insn.dst == FP,
            CLASS_ST => false,
            // A load-acquire's src is its base address, like an `LDX`'s.
            CLASS_STX => insn.src == FP && !is_load_acquire(insn.opcode, insn.imm()),
            _ => insn.src == FP || insn.dst == FP,
        });
    if escapes {
        return whole;
    }
    let reads = analysis.unproven_stack_reads();
    let frame = reach as i64;
    let clip = |off: i64| off.clamp(-frame, 0);
    let lowest = reads.iter().map(|r| clip(r.off as i64)).min();
    let highest = reads
        .iter()
        .map(|r| clip(r.off as i64 + r.size as i64))
        .max();
    match (lowest, highest) {
        (Some(lo), Some(hi)) if hi > lo => ((-lo) as usize, (hi - lo) as usize),
        _ => (0, 0),
    }
}

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
    fn a_run_zeroes_only_the_stack_bytes_a_direct_load_may_read_before_a_store() {
        let zeroed = |insns: &[Insn]| {
            let a = analyse(insns, &AnalysisOptions::default()).unwrap();
            zeroed_bytes(&a, reachable_frames(&a))
        };
        let st = |off: i16| Insn::new(CLASS_ST | MODE_MEM | SIZE_DW, FP, 0, off, 1);
        let ld = |off: i16, size: u8| Insn::new(CLASS_LDX | MODE_MEM | size, 0, FP, off, 0);
        // Written, then read: nothing to zero. Read first: those bytes.
        assert_eq!(zeroed(&[st(-8), ld(-8, SIZE_DW), exit()]), (0, 0));
        assert_eq!(zeroed(&[ld(-16, SIZE_DW), exit()]), (16, 8));
        // Two reads: the span from the lowest to the highest byte.
        assert_eq!(zeroed(&[ld(-64, SIZE_W), ld(-8, SIZE_B), exit()]), (64, 57));
        // Written on one path only: the read may see the bytes unwritten.
        let jeq = Insn::new(CLASS_JMP | JMP_JEQ | SRC_K, 1, 0, 1, 0);
        assert_eq!(zeroed(&[jeq, st(-8), ld(-8, SIZE_DW), exit()]), (8, 8));
        // A copy of r10 (a helper or a load through it may read anything): the whole frame.
        let copy = Insn::new(CLASS_ALU64 | ALU_MOV | SRC_X, 1, FP, 0, 0);
        assert_eq!(zeroed(&[copy, st(-8), exit()]), (512, 512));
        let store_fp = Insn::new(CLASS_STX | MODE_MEM | SIZE_DW, FP, FP, -8, 0);
        assert_eq!(zeroed(&[store_fp, exit()]), (512, 512));
        // Calls: every reachable frame, as before.
        let call = Insn::new(OP_CALL, 0, CALL_LOCAL, 0, 1);
        assert_eq!(
            zeroed(&[call, exit(), ld(-8, SIZE_DW), exit()]),
            (1024, 1024)
        );
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
