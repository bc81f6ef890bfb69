//! The JIT against the interpreter (the reference semantics) on the bench programs, compiled C
//! (`bench/programs/bpf/*.bin`), with budgets that end the run at instruction after instruction:
//! each budget that ends inside a metered chain leaves the code at that chain's head for Rust to
//! finish the run (exactly as many instructions as the budget allows, `jit/finish.rs`), so that
//! every chain of these programs is left at many of its instructions. Both engines must
//! give the same result (r0 and count, or the trap with its place and count) and leave the same
//! data behind.
#![cfg(target_arch = "x86_64")]

#[allow(dead_code)]
#[path = "../benches/support/inputs.rs"]
mod inputs;

use ebpf_vm::{Engine, Program, ProgramOptions, RunInput, RunOutput, Trap};

fn load(bytecode: &[u8], engine: Engine) -> Program {
    let options = ProgramOptions {
        engine,
        ..ProgramOptions::default()
    };
    let p = Program::load(bytecode, options).unwrap();
    assert_eq!(p.engine(), engine);
    p
}

/// r0, count and exit pc; or the trap's kind and message, pc, size and count.
type Outcome = Result<(u64, u64, usize), (String, usize, u32, u64)>;

/// A run's outcome without the host address of a memory trap (which names the data buffer,
/// different for each run).
fn outcome(r: Result<RunOutput, Trap>) -> Outcome {
    r.map(|o| (o.r0, o.insn_count, o.exit_pc)).map_err(|t| {
        (
            format!("{:?}: {}", t.kind, t.message),
            t.pc,
            t.size,
            t.insn_count,
        )
    })
}

/// Budgets 0 to 600 one by one, then about 400 spread (by an odd stride) up to one past the
/// whole run's count.
fn budgets(full: u64) -> impl Iterator<Item = u64> {
    let stride = ((full / 400) | 1).max(1);
    (0..=600.min(full + 1)).chain((601..=full + 1).step_by(stride as usize))
}

#[test]
fn every_budget_ends_the_jit_where_it_ends_the_interpreter() {
    for prog in inputs::programs() {
        let (interp, jit) = (
            load(prog.bytecode, Engine::Interpreter),
            load(prog.bytecode, Engine::Jit),
        );
        let input = (prog.input)();
        let mut data = input.clone();
        let full = interp
            .run(&mut RunInput {
                data: &mut data,
                budget: None,
            })
            .unwrap()
            .insn_count;
        for budget in budgets(full) {
            let run = |p: &Program| {
                let mut data = input.clone();
                let r = p.run(&mut RunInput {
                    data: &mut data,
                    budget: Some(budget),
                });
                (outcome(r), data)
            };
            let (want, want_data) = run(&interp);
            let (got, got_data) = run(&jit);
            assert_eq!(got, want, "{} with budget {budget}", prog.name);
            assert!(
                got_data == want_data,
                "{} with budget {budget}: the data differ",
                prog.name
            );
        }
    }
}
