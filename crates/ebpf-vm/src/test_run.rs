//! BPF_PROG_TEST_RUN in user space: run a program `repeat` times over the same input and report the
//! last outcome with the mean duration of one run, as the kernel's test-run command does.

use std::time::Instant;

use crate::error::Trap;
use crate::program::{Program, RunInput};

/// Input of a test run.
#[derive(Clone, Debug, Default)]
pub struct TestRunInput {
    pub data: Vec<u8>,
    /// How many times to run (at least once).
    pub repeat: u32,
    pub budget: Option<u64>,
}

/// Outcome of the last repetition.
#[derive(Clone, Debug)]
pub struct TestRunOutput {
    /// r0 of the last run, or the trap that stopped it.
    pub result: Result<u64, Trap>,
    pub insn_count: u64,
    /// The data as the last run left it.
    pub data: Vec<u8>,
    /// Mean wall time of one run, in nanoseconds.
    pub duration_ns: f64,
}

impl Program {
    /// Runs `input.repeat` times; every repetition starts from the same input bytes, so that each
    /// one sees what the caller passed (the copy is not timed).
    pub fn test_run(&self, input: &TestRunInput) -> TestRunOutput {
        let repeat = input.repeat.max(1);
        let mut data = input.data.clone();
        let mut total_ns = 0u128;
        let mut runs = 0u32;
        let mut last = None;
        for i in 0..repeat {
            if i > 0 {
                data.copy_from_slice(&input.data);
            }
            let start = Instant::now();
            let outcome = self.run(&mut RunInput {
                data: &mut data,
                budget: input.budget,
            });
            total_ns += start.elapsed().as_nanos();
            runs += 1;
            let trapped = outcome.is_err();
            last = Some(outcome);
            if trapped {
                // A trap ends the test run: the same input would trap again.
                break;
            }
        }
        let outcome = last.expect("at least one repetition");
        let insn_count = match &outcome {
            Ok(out) => out.insn_count,
            Err(trap) => trap.insn_count,
        };
        TestRunOutput {
            result: outcome.map(|o| o.r0),
            insn_count,
            data,
            duration_ns: total_ns as f64 / runs as f64,
        }
    }
}
