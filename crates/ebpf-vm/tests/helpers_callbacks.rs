//! `bpf_loop` (181): callbacks named by `lddw rX, <function>` (BPF_PSEUDO_FUNC), run as nested
//! frames through the engine's function runner; the kernel's return values and limits.

mod context_support;

use context_support::*;
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::Insn;
use ebpf_vm::{ProgramType, RunInput, TrapKind};

const RAW: ProgramType = ProgramType::Raw;

fn run_raw(insns: &[Insn], budget: Option<u64>) -> Result<u64, ebpf_vm::Trap> {
    let p = load(insns, RAW).unwrap();
    p.run(&mut RunInput {
        data: &mut [],
        budget,
    })
    .map(|o| o.r0)
}

#[test]
fn bpf_loop_calls_the_callback_nr_times() {
    // sum of 0..9 = 45; bpf_loop returns 10.
    assert_eq!(
        run_raw(&looped(10, 0, &add_index()), None).unwrap(),
        45 << 32 | 10
    );
    // Zero iterations: nothing called, 0 returned.
    assert_eq!(run_raw(&looped(0, 0, &add_index()), None).unwrap(), 0);
}

#[test]
fn a_non_zero_callback_result_stops_the_loop() {
    // sum += index; return index == 3
    let body = prog![
        ldx(SIZE_DW, 3, 2, 0),
        addr(3, 1),
        stx(SIZE_DW, 2, 3, 0),
        mov(0, 0),
        ji(JMP_JNE, 1, 3, 1),
        mov(0, 1),
        exit()
    ];
    // 0 + 1 + 2 + 3 = 6, and 4 calls were made.
    assert_eq!(run_raw(&looped(100, 0, &body), None).unwrap(), 6 << 32 | 4);
}

#[test]
fn flags_and_the_iteration_limit_are_checked_as_in_the_kernel() {
    let einval = (-22i64) as u32 as u64;
    let e2big = (-7i64) as u32 as u64;
    assert_eq!(run_raw(&looped(3, 1, &add_index()), None).unwrap(), einval);
    assert_eq!(
        run_raw(&looped((1 << 23) + 1, 0, &add_index()), None).unwrap(),
        e2big
    );
}

#[test]
fn only_function_pointers_of_the_program_are_callbacks() {
    // r2 = 12 (a number, and not a function entry): the run stops at the call.
    let mut insns = looped(3, 0, &add_index());
    insns[2] = mov(2, 12);
    insns[3] = mov(0, 0);
    let p = load(&insns, RAW).unwrap();
    let t = p
        .run(&mut RunInput {
            data: &mut [],
            budget: None,
        })
        .unwrap_err();
    assert_eq!((t.kind, t.pc), (TrapKind::HelperError, 7));
    // A function pointer outside the program is a load error naming the lddw.
    let mut bad = looped(3, 0, &add_index());
    bad[2].imm = 1000;
    let e = load(&bad, RAW).unwrap_err();
    assert_eq!(e.insn, Some(2));
}

#[test]
fn a_trap_in_a_callback_stops_the_run_at_the_callbacks_instruction() {
    // The callback loads from address 8.
    let body = prog![mov(3, 8), ldx(SIZE_DW, 0, 3, 0), exit()];
    let t = run_raw(&looped(3, 0, &body), None).unwrap_err();
    assert_eq!((t.kind, t.pc, t.addr), (TrapKind::OutOfBounds, 16, 8));
}

#[test]
fn callbacks_share_the_runs_budget() {
    // 2^23 iterations of a 5-instruction callback cannot finish in 10,000 instructions.
    let t = run_raw(&looped(1 << 23, 0, &add_index()), Some(10_000)).unwrap_err();
    assert_eq!(t.kind, TrapKind::BudgetExhausted);
}

#[test]
fn callbacks_have_their_own_stack_frame_and_may_loop_again() {
    // Callback: stores the index in its own frame, then runs an inner bpf_loop of 2 iterations of
    // add_index over the outer sum; returns 0. Outer: 3 iterations -> sum = 3 * (0 + 1) = 3.
    let inner_at = 15 + 11; // slot of the inner callback
    let body = prog![
        stx(SIZE_DW, 10, 1, -8),     // 15
        movr(3, 2),                  // 16: the outer &sum is the inner ctx
        mov(1, 2),                   // 17
        lddw_func(2, inner_at - 19), // 18-19
        mov(4, 0),                   // 20
        call(181),                   // 21
        ldx(SIZE_DW, 1, 10, -8),     // 22: still our index
        mov(0, 0),                   // 23
        exit(),                      // 24
        exit(),                      // 25 (unreached filler; a function ends in exit or a jump)
    ];
    let mut insns = looped(3, 0, &body);
    insns.extend(add_index());
    assert_eq!(run_raw(&insns, None).unwrap(), 3 << 32 | 3);
}

#[test]
fn callbacks_work_the_same_when_the_main_program_is_compiled() {
    let insns = looped(10, 0, &add_index());
    let p = load_with(
        &insns,
        ebpf_vm::ProgramOptions {
            engine: ebpf_vm::Engine::Auto,
            ..options(RAW)
        },
    )
    .unwrap();
    let out = p
        .run(&mut RunInput {
            data: &mut [],
            budget: None,
        })
        .unwrap();
    assert_eq!(out.r0, 45 << 32 | 10, "engine {:?}", p.engine());
}

/// Runs `insns` (raw, no data) on `engine` with `budget`.
fn run_on(
    engine: ebpf_vm::Engine,
    insns: &[Insn],
    budget: Option<u64>,
) -> Result<ebpf_vm::RunOutput, ebpf_vm::Trap> {
    let p = load_with(
        insns,
        ebpf_vm::ProgramOptions {
            engine,
            ..options(RAW)
        },
    )
    .unwrap();
    assert_eq!(p.engine(), engine);
    p.run(&mut RunInput {
        data: &mut [],
        budget,
    })
}

fn both_engines() -> Vec<ebpf_vm::Engine> {
    let mut v = vec![ebpf_vm::Engine::Interpreter];
    if cfg!(target_arch = "x86_64") {
        v.push(ebpf_vm::Engine::Jit);
    }
    v
}

// Counts by hand for `looped(n, 0, add_index())`: the main program executes slots 0, 1, 2 (lddw,
// one instruction), 4, 5, 6 and the call at 7 (7 instructions), then 8-14 (7 more): 14. Each
// iteration costs 1 (the call of the callback) + 5 (its instructions, slots 15-19).

#[test]
fn callback_instructions_count_in_the_run_on_both_engines() {
    for engine in both_engines() {
        let out = run_on(engine, &looped(100_000, 0, &add_index()), None).unwrap();
        // sum 0..99999 = 4999950000 (upper half, truncated to 32 bits), 100,000 calls.
        let sum: u64 = (0..100_000u64).sum();
        assert_eq!(out.r0, (sum << 32) | 100_000, "{engine:?}");
        assert_eq!(out.insn_count, 14 + 100_000 * 6, "{engine:?}");
        let out = run_on(engine, &looped(0, 0, &add_index()), None).unwrap();
        assert_eq!(out.insn_count, 14, "{engine:?}");
    }
}

#[test]
fn a_budget_trap_inside_a_callback_names_its_instruction_and_the_runs_budget() {
    for engine in both_engines() {
        let budget_trap = |budget: u64, pc: usize| {
            let t = run_on(engine, &looped(10, 0, &add_index()), Some(budget)).unwrap_err();
            assert_eq!(
                (t.kind, t.pc, t.insn_count, t.message),
                (
                    TrapKind::BudgetExhausted,
                    pc,
                    budget,
                    format!("instruction budget of {budget} exhausted")
                ),
                "{engine:?}"
            );
        };
        // 7 + 3 iterations (18) + the 4th call (1) + 2 callback instructions (ldx at 15, add at
        // 16) = 28: the store at 17 is the first instruction past the budget.
        budget_trap(28, 17);
        // 25 = 7 + 3 iterations: the 4th call of the callback itself is past the budget, so the
        // trap names the bpf_loop call (slot 7).
        budget_trap(25, 7);
        // The whole program needs 14 + 10 * 6 = 74: with one less, the exit at 14 is past it.
        budget_trap(73, 14);
        assert_eq!(
            run_on(engine, &looped(10, 0, &add_index()), Some(74))
                .unwrap()
                .insn_count,
            74
        );
    }
}

#[test]
fn nested_callbacks_count_and_trap_as_the_run() {
    // As `callbacks_have_their_own_stack_frame_and_may_loop_again`: the outer callback (slots
    // 15-24) executes 9 instructions (15-18, 20-24) and its bpf_loop charges 2 * (1 + 5) = 12:
    // 21, plus 1 for its call = 22 per outer iteration; 3 of them after the main 14 = 80.
    let inner_at = 15 + 11;
    let body = prog![
        stx(SIZE_DW, 10, 1, -8),
        movr(3, 2),
        mov(1, 2),
        lddw_func(2, inner_at - 19),
        mov(4, 0),
        call(181),
        ldx(SIZE_DW, 1, 10, -8),
        mov(0, 0),
        exit(),
        exit(), // unreached filler; a function ends in exit or a jump
    ];
    let mut insns = looped(3, 0, &body);
    insns.extend(add_index());
    for engine in both_engines() {
        let out = run_on(engine, &insns, None).unwrap();
        assert_eq!((out.r0, out.insn_count), (3 << 32 | 3, 80), "{engine:?}");
        // Budget 7 + 1 (outer call) + 6 (15-18, 20, 21) + 1 (inner call) + 1 (ldx at 26):
        // the add at 27 is past it.
        let t = run_on(engine, &insns, Some(16)).unwrap_err();
        assert_eq!(
            (t.kind, t.pc, t.insn_count, t.message.as_str()),
            (
                TrapKind::BudgetExhausted,
                27,
                16,
                "instruction budget of 16 exhausted"
            ),
            "{engine:?}"
        );
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn compiled_programs_run_their_callbacks_compiled() {
    // A callback's stack is one of the run's callback stacks, so compiled code runs it (there is
    // no other way: a stack it could not vouch for is a trap).
    let out = run_on(ebpf_vm::Engine::Jit, &looped(1000, 0, &add_index()), None).unwrap();
    assert_eq!(out.insn_count, 14 + 1000 * 6);
}
