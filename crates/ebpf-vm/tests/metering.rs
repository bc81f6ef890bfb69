//! Metering (issue #10 item 1): programs loaded in mode verified run without the instruction
//! budget (their termination is proved) unless `meter` asks for it; mode checked always meters.
//! Expected counts and results are worked out by hand from the programs below.

mod context_support;

use context_support::*;
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::Insn;
use ebpf_vm::{
    ContextInput, Engine, Mode, Program, ProgramOptions, ProgramType, RunInput, RunOutput, Trap,
    TrapKind,
};

const DATA: usize = 16;

/// r0 = the sum of the 16 bytes at r1, by a loop the verifier bounds (i counts 0..16):
///   0: r0 = 0; 1: r2 = 0
///   2: r3 = r1; 3: r3 += r2; 4: r4 = *(u8 *)(r3 + 0); 5: r0 += r4; 6: r2 += 1
///   7: if r2 < 16 goto 2
///   8: exit
/// A run executes 2 + 16 * 6 + 1 = 99 instructions.
fn sum_loop() -> Vec<Insn> {
    prog![
        mov(0, 0),
        mov(2, 0),
        movr(3, 1),
        addr(3, 2),
        ldx(SIZE_B, 4, 3, 0),
        addr(0, 4),
        add(2, 1),
        ji(JMP_JLT, 2, DATA as i32, -6),
        exit(),
    ]
}
const SUM_LOOP_COUNT: u64 = 99;

fn engines() -> Vec<Engine> {
    let mut v = vec![Engine::Interpreter];
    if cfg!(target_arch = "x86_64") {
        v.push(Engine::Jit);
    }
    v
}

fn load_sum(engine: Engine, mode: Mode, meter: bool) -> Program {
    let p = load_with(
        &sum_loop(),
        ProgramOptions {
            engine,
            mode,
            meter,
            data_size: (mode == Mode::Verified).then_some(DATA as u32),
            ..options(ProgramType::Raw)
        },
    )
    .expect("the loop loads");
    assert_eq!(p.engine(), engine);
    p
}

/// `insns` loaded raw in mode verified on `engine`, with `meter`, for data of `data_size` bytes.
fn load_verified(insns: &[Insn], engine: Engine, meter: bool, data_size: u32) -> Program {
    load_with(
        insns,
        ProgramOptions {
            engine,
            mode: Mode::Verified,
            meter,
            data_size: Some(data_size),
            ..options(ProgramType::Raw)
        },
    )
    .expect("loads verified")
}

fn data() -> [u8; DATA] {
    std::array::from_fn(|i| (i * 7 + 3) as u8)
}

/// 3 + 10 + 17 + ... + 108 (16 terms, 3 + 7i): 16 * 3 + 7 * 120 = 888.
const SUM: u64 = 888;

fn run(p: &Program, budget: Option<u64>) -> Result<RunOutput, Trap> {
    let mut d = data();
    p.run(&mut RunInput {
        data: &mut d,
        budget,
    })
}

/// The same run through the general run path (`run_with_context`), which `run` of a helper-free
/// raw program skips.
fn run_general(p: &Program, budget: Option<u64>) -> Result<RunOutput, Trap> {
    let mut d = data();
    p.run_with_context(
        &mut RunInput {
            data: &mut d,
            budget,
        },
        &ContextInput::default(),
    )
    .map(|(out, _)| out)
}

#[test]
fn a_verified_loop_runs_unmetered_by_default() {
    for engine in engines() {
        let p = load_sum(engine, Mode::Verified, false);
        assert!(!p.metered());
        for out in [run(&p, None), run_general(&p, None)] {
            let out = out.expect("runs");
            assert_eq!((out.r0, out.insn_count), (SUM, 0), "{engine:?}");
        }
        // No budget stops it: a budget of 10 would stop a metered run in its first iteration.
        for out in [run(&p, Some(10)), run_general(&p, Some(10))] {
            assert_eq!(out.expect("runs").r0, SUM, "{engine:?}");
        }
    }
}

#[test]
fn meter_opts_back_in_to_the_count_and_the_budget() {
    for engine in engines() {
        for (mode, meter) in [(Mode::Verified, true), (Mode::Checked, false)] {
            let p = load_sum(engine, mode, meter);
            assert!(p.metered(), "{engine:?} {mode:?}");
            for out in [run(&p, None), run_general(&p, None)] {
                let out = out.expect("runs");
                assert_eq!(
                    (out.r0, out.insn_count),
                    (SUM, SUM_LOOP_COUNT),
                    "{engine:?} {mode:?}"
                );
            }
            // 10 instructions: slots 0-7 and then 2-3; the 11th (slot 4) is not executed.
            for out in [run(&p, Some(10)), run_general(&p, Some(10))] {
                let trap = out.expect_err("the budget stops it");
                assert_eq!(
                    (trap.kind, trap.pc, trap.insn_count),
                    (TrapKind::BudgetExhausted, 4, 10),
                    "{engine:?} {mode:?}"
                );
            }
            // Exactly enough.
            let out = run(&p, Some(SUM_LOOP_COUNT)).expect("runs");
            assert_eq!(out.insn_count, SUM_LOOP_COUNT);
        }
    }
}

#[test]
fn an_unmetered_trap_has_no_count_and_the_same_place() {
    // r0 = r10: a host address at exit, refused (pointer leaks are refused by default) after
    // 2 instructions when metered.
    let leak = prog![movr(0, 10), exit()];
    for engine in engines() {
        for (meter, count) in [(false, 0), (true, 1)] {
            // Returning a pointer is refused only to unprivileged loads.
            let p = load_verified(&leak, engine, meter, 0);
            let trap = p
                .run(&mut RunInput {
                    data: &mut [],
                    budget: None,
                })
                .expect_err("the leak is refused");
            assert_eq!(
                (trap.kind, trap.pc, trap.insn_count),
                (TrapKind::PointerLeak, 1, count),
                "{engine:?} meter {meter}"
            );
        }
    }
}

#[test]
fn callbacks_of_an_unmetered_run_are_bounded_by_their_count() {
    let nr = 100_000u64;
    let sum: u64 = (0..nr).sum();
    for engine in engines() {
        for meter in [false, true] {
            let p = load_verified(&looped(nr as i32, 0, &add_index()), engine, meter, 0);
            let out = p
                .run(&mut RunInput {
                    data: &mut [],
                    budget: Some(1000),
                })
                .map(|o| (o.r0, o.insn_count))
                .map_err(|t| t.kind);
            // Metered: 14 instructions of the main program, 6 per iteration (the call and the
            // callback's 5), far over 1,000. Unmetered: the loop's count bounds it.
            let expected = if meter {
                Err(TrapKind::BudgetExhausted)
            } else {
                Ok(((sum << 32) | nr, 0))
            };
            assert_eq!(out, expected, "{engine:?} meter {meter}");
        }
    }
}

#[test]
fn an_unmetered_run_calls_helpers_that_charge_nothing() {
    // bpf_ktime_get_ns (5) charges no instruction: the JIT's helper stub must still go on.
    // 0: call 5; 1: r0 = 5; 2: exit.
    let insns = prog![call(5), mov(0, 5), exit()];
    for engine in engines() {
        for (meter, count) in [(false, 0), (true, 3)] {
            let p = load_verified(&insns, engine, meter, 0);
            let out = p
                .run(&mut RunInput {
                    data: &mut [],
                    budget: None,
                })
                .expect("runs");
            assert_eq!(
                (out.r0, out.insn_count),
                (5, count),
                "{engine:?} meter {meter}"
            );
        }
    }
}
