//! Run limits (`RunLimits`: a deadline and a cancel token) on both engines: a run stops with a
//! `timeout` or `aborted` trap at a slice boundary, and limits that are never reached change
//! nothing (counts, results and budget traps are those of a run without limits). No test here
//! asserts a duration.

mod context_support;

use std::time::{Duration, Instant};

use context_support::*;
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::Insn;
use ebpf_vm::limits::SLICE;
use ebpf_vm::{
    CancelToken, ContextInput, Engine, ErrorCode, Program, ProgramOptions, ProgramType, RunInput,
    RunLimits, RunOutput, Trap, TrapKind,
};

fn engines() -> Vec<Engine> {
    let mut v = vec![Engine::Interpreter];
    if cfg!(target_arch = "x86_64") {
        v.push(Engine::Jit);
    }
    v
}

fn load_on(engine: Engine, insns: &[Insn]) -> Program {
    let p = load_with(
        insns,
        ProgramOptions {
            engine,
            ..options(ProgramType::Raw)
        },
    )
    .unwrap();
    assert_eq!(p.engine(), engine);
    p
}

fn run(p: &Program, data: &mut [u8], budget: u64, limits: RunLimits) -> Result<RunOutput, Trap> {
    let input = &mut RunInput {
        data,
        budget: Some(budget),
    };
    p.run_with_limits(input, &ContextInput::default(), &limits)
        .map(|(out, _)| out)
}

/// r0 = 0; loop: r0 += 1; goto loop
fn spin() -> Vec<Insn> {
    prog![mov(0, 0), add(0, 1), ja(-2), exit()]
}

/// An endless loop around `bpf_loop(1000, cb)`, cb = `r0 = 0; exit`: a run spends its time in
/// callbacks too short to reach a slice of their own.
fn spin_in_callbacks() -> Vec<Insn> {
    prog![
        mov(1, 1000),    // 0
        lddw_func(2, 5), // 1-2: the callback at 1 + 5 + 1 = 7
        mov(3, 0),       // 3
        mov(4, 0),       // 4
        call(181),       // 5
        ja(-7),          // 6: back to 0
        mov(0, 0),       // 7
        exit(),          // 8
    ]
}

#[test]
fn a_cancelled_run_stops_with_an_aborted_trap() {
    for engine in engines() {
        for insns in [spin(), spin_in_callbacks()] {
            let p = load_on(engine, &insns);
            let token = CancelToken::new();
            let canceller = {
                let token = token.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(20));
                    token.cancel();
                })
            };
            let limits = RunLimits {
                deadline: None,
                cancel: Some(token),
            };
            let t = run(&p, &mut [], u64::MAX / 2, limits).unwrap_err();
            canceller.join().unwrap();
            assert_eq!(
                (t.kind, t.kind.code()),
                (TrapKind::Aborted, ErrorCode::AbortErr),
                "{engine:?}: {t}"
            );
            assert_eq!(t.message, "the run was cancelled");
        }
    }
}

#[test]
fn a_run_past_its_deadline_stops_with_a_timeout_trap() {
    for engine in engines() {
        for insns in [spin(), spin_in_callbacks()] {
            let p = load_on(engine, &insns);
            let limits = RunLimits {
                deadline: Some(Instant::now() + Duration::from_millis(20)),
                cancel: None,
            };
            let t = run(&p, &mut [], u64::MAX / 2, limits).unwrap_err();
            assert_eq!(
                (t.kind, t.kind.code()),
                (TrapKind::Timeout, ErrorCode::Etime),
                "{engine:?}: {t}"
            );
        }
    }
}

/// A loop of `n` iterations with loads, stores and a helper call that charges the budget
/// (bpf_loop of one callback) per iteration; returns a checksum of the data.
fn busy(n: i32) -> Vec<Insn> {
    prog![
        mov(6, 0), // 0: i
        mov(7, 0), // 1: sum
        // loop:
        ldx(SIZE_B, 8, 1, 0),   // 2
        addr(7, 8),             // 3
        addr(7, 6),             // 4
        stx(SIZE_B, 1, 7, 1),   // 5
        movr(9, 1),             // 6: keep r1 (the data)
        mov(1, 1),              // 7
        lddw_func(2, 10),       // 8-9: the callback at 8 + 10 + 1 = 19
        mov(3, 0),              // 10
        mov(4, 0),              // 11
        call(181),              // 12
        movr(1, 9),             // 13
        add(6, 1),              // 14
        ji(JMP_JLT, 6, n, -14), // 15: back to 2
        movr(0, 7),             // 16
        exit(),                 // 17
        exit(),                 // 18 (unreached)
        mov(0, 0),              // 19: the callback
        exit(),                 // 20
    ]
}

#[test]
fn limits_that_are_not_reached_change_nothing() {
    // 2 + n * (13 + (1 + 2)) + 2 instructions (slots 0-1; 2-8, 10-15 and one callback per
    // iteration; 16-17): just over a slice for n = 70,000, so budgets around the slice boundary
    // put a budget trap just after it (a slice of one instruction) and at the end of the last.
    let insns = busy(70_000);
    let full = 2 + 70_000 * 16 + 2;
    assert!(full > SLICE);
    let budgets = [full, full - 1, SLICE + 1];
    for engine in engines() {
        let p = load_on(engine, &insns);
        for budget in budgets {
            let mut plain_data = [5u8, 0, 0, 0];
            let mut limited_data = plain_data;
            let plain = run(&p, &mut plain_data, budget, RunLimits::default());
            let limits = RunLimits {
                deadline: Some(Instant::now() + Duration::from_secs(3600)),
                cancel: Some(CancelToken::new()),
            };
            let limited = run(&p, &mut limited_data, budget, limits);
            assert_eq!(plain, limited, "{engine:?}, budget {budget}");
            assert_eq!(plain_data, limited_data, "{engine:?}, budget {budget}");
            if budget == full {
                assert_eq!(plain.unwrap().insn_count, full);
            } else {
                let t = plain.unwrap_err();
                assert_eq!((t.kind, t.insn_count), (TrapKind::BudgetExhausted, budget));
            }
        }
    }
}
