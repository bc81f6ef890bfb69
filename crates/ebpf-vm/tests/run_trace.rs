//! Instruction traces (`Program::run_traced`): the steps of small programs whose every step is
//! computed by hand in the comments, on both engines (a JIT program's traced runs take the
//! interpreter's traced loop), the cap on a trace's length, and a trace that ends in a trap.

mod common;

use common::*;
use ebpf_vm::context::ContextInput;
use ebpf_vm::error::Place;
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::Insn;
use ebpf_vm::run_trace::{RunTrace, TraceAccess, TraceStep, TraceValue};
use ebpf_vm::{Engine, RunInput, RunLimits, TrapKind};

use TraceValue::{Pointer, Scalar};

fn place(region: &str, offset: i64) -> Place {
    Place {
        region: region.into(),
        offset,
    }
}

fn step(pc: usize, regs: &[(u8, TraceValue)], access: Option<TraceAccess>) -> TraceStep {
    TraceStep {
        pc,
        regs: regs.to_vec(),
        access,
    }
}

fn traced(
    insns: &[Insn],
    engine: Engine,
    data: &mut [u8],
    limit: usize,
) -> (Result<u64, TrapKind>, RunTrace) {
    let prog = load(insns, engine).expect("program loads");
    let (result, trace) = prog.run_traced(
        &mut RunInput { data, budget: None },
        &ContextInput::default(),
        &RunLimits::default(),
        limit,
    );
    (result.map(|(out, _)| out.r0).map_err(|t| t.kind), trace)
}

/// r0 = 1; r2 = *(u32 *)(r1 + 0); r0 += r2; *(u64 *)(r10 - 8) = r0; if r0 > 5 goto +1; r0 = 0; exit
fn sum_program() -> Vec<Insn> {
    vec![
        mov64_imm(0, 1),                                 // 0
        i(CLASS_LDX | SIZE_W | MODE_MEM, 2, 1, 0, 0),    // 1
        alu64_reg(ALU_ADD, 0, 2),                        // 2
        i(CLASS_STX | SIZE_DW | MODE_MEM, 10, 0, -8, 0), // 3
        i(CLASS_JMP | JMP_JGT | SRC_K, 0, 0, 1, 5),      // 4
        mov64_imm(0, 0),                                 // 5
        exit(),                                          // 6
    ]
}

/// With data 5, 0, 0, 0: r0 = 1, r2 = 5 (loaded from data+0), r0 = 6, 6 stored at stack-8,
/// 6 > 5 jumps over slot 5 to the exit.
fn sum_steps() -> Vec<TraceStep> {
    vec![
        step(0, &[(0, Scalar(1))], None),
        step(
            1,
            &[(2, Scalar(5))],
            Some(TraceAccess {
                write: false,
                size: 4,
                place: Some(place("data", 0)),
                value: Some(Scalar(5)),
            }),
        ),
        step(2, &[(0, Scalar(6))], None),
        step(
            3,
            &[],
            Some(TraceAccess {
                write: true,
                size: 8,
                place: Some(place("stack", -8)),
                value: Some(Scalar(6)),
            }),
        ),
        step(4, &[], None),
        step(6, &[], None),
    ]
}

#[test]
fn every_step_with_the_registers_it_wrote_and_the_memory_it_touched() {
    for engine in [Engine::Interpreter, Engine::Jit] {
        let (r0, trace) = traced(&sum_program(), engine, &mut [5, 0, 0, 0], 100);
        assert_eq!(r0, Ok(6), "{engine:?}");
        assert_eq!(
            trace.steps().cloned().collect::<Vec<_>>(),
            sum_steps(),
            "{engine:?}"
        );
        assert_eq!(trace.dropped(), 0);
    }
}

#[test]
fn a_trace_keeps_the_last_steps_up_to_its_limit_and_counts_the_others() {
    let (r0, trace) = traced(&sum_program(), Engine::Interpreter, &mut [5, 0, 0, 0], 2);
    assert_eq!(r0, Ok(6));
    assert_eq!(trace.steps().cloned().collect::<Vec<_>>(), sum_steps()[4..]);
    assert_eq!(trace.dropped(), 4);
}

/// r6 = 7; call +2 (slot 4); r0 += r6; exit; | r6 = 3; r0 = r6; exit
/// The call moves r10 down one frame (512 bytes); the callee's exit restores r6 = 7 and r10.
#[test]
fn a_local_call_and_its_return_show_the_frame_pointer_and_restored_registers() {
    let insns = vec![
        mov64_imm(6, 7),                              // 0
        i(CLASS_JMP | JMP_CALL, 0, CALL_LOCAL, 0, 2), // 1
        alu64_reg(ALU_ADD, 0, 6),                     // 2
        exit(),                                       // 3
        mov64_imm(6, 3),                              // 4
        mov64_reg(0, 6),                              // 5
        exit(),                                       // 6
    ];
    let expected = vec![
        step(0, &[(6, Scalar(7))], None),
        step(1, &[(10, Pointer(place("stack", -512)))], None),
        step(4, &[(6, Scalar(3))], None),
        step(5, &[(0, Scalar(3))], None),
        step(6, &[(6, Scalar(7)), (10, Pointer(place("stack", 0)))], None),
        step(2, &[(0, Scalar(10))], None),
        step(3, &[], None),
    ];
    for engine in [Engine::Interpreter, Engine::Jit] {
        let (r0, trace) = traced(&insns, engine, &mut [], 100);
        assert_eq!(r0, Ok(10), "{engine:?}");
        assert_eq!(
            trace.steps().cloned().collect::<Vec<_>>(),
            expected,
            "{engine:?}"
        );
    }
}

/// r2 = r1; r0 = *(u32 *)(r1 + 8) with 4 bytes of data: the load traps, and the trace ends with
/// it (the place it tried, no value, no register written).
#[test]
fn a_trace_ends_with_the_instruction_that_trapped() {
    let insns = vec![
        mov64_reg(2, 1),                              // 0
        i(CLASS_LDX | SIZE_W | MODE_MEM, 0, 1, 8, 0), // 1
        exit(),                                       // 2
    ];
    let (r0, trace) = traced(&insns, Engine::Interpreter, &mut [1, 2, 3, 4], 100);
    assert_eq!(r0, Err(TrapKind::OutOfBounds));
    let expected = vec![
        step(0, &[(2, Pointer(place("data", 0)))], None),
        step(
            1,
            &[],
            Some(TraceAccess {
                write: false,
                size: 4,
                place: Some(place("data", 8)),
                value: None,
            }),
        ),
    ];
    assert_eq!(trace.steps().cloned().collect::<Vec<_>>(), expected);
}

#[test]
fn instruction_text_is_the_kernel_verifier_logs() {
    let prog = load(&sum_program(), Engine::Interpreter).unwrap();
    let texts = prog.insn_texts();
    assert_eq!(texts[1], "(61) r2 = *(u32 *)(r1 +0)");
    assert_eq!(texts[3], "(7b) *(u64 *)(r10 -8) = r0");
    assert_eq!(texts[4], "(25) if r0 > 0x5 goto pc+1");
}
