//! Coverage (`ProgramOptions::coverage`, `Program::coverage`): instruction hits and branch
//! counts over runs, worked out by hand for small programs (the comments say how), the same on
//! both engines; and the same figures from both engines for generated programs (loops, calls,
//! traps, budgets that end mid-chain).
#![cfg(target_arch = "x86_64")]

mod common;
mod random_programs;
mod rng;

use common::*;
use ebpf_vm::coverage::{BranchCount, CoverageReport};
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::{encode_all, Insn};
use ebpf_vm::{Engine, Program, ProgramOptions, RunInput};
use rng::Random;

const ENGINES: [Engine; 2] = [Engine::Interpreter, Engine::Jit];

fn load_counting(insns: &[Insn], engine: Engine) -> Program {
    Program::load(
        &encode_all(insns),
        ProgramOptions {
            engine,
            coverage: true,
            ..ProgramOptions::default()
        },
    )
    .expect("program loads")
}

fn branch(slot: usize, taken: u64, not_taken: u64) -> BranchCount {
    BranchCount {
        slot,
        taken,
        not_taken,
    }
}

/// r0 = 0; r2 = 0; loop: r0 += r2; r2 += 1; if r2 < 3 goto loop; if r0 == 3 goto +1; r0 = 100;
/// exit. The loop body runs 3 times (r2 = 0, 1, 2), its jump is taken twice and falls through
/// once; r0 = 0 + 1 + 2 = 3, so the second jump is taken and slot 6 never runs.
fn looping() -> Vec<Insn> {
    vec![
        mov64_imm(0, 0),                             // 0
        mov64_imm(2, 0),                             // 1
        alu64_reg(ALU_ADD, 0, 2),                    // 2
        alu64_imm(ALU_ADD, 2, 1),                    // 3
        i(CLASS_JMP | JMP_JLT | SRC_K, 2, 0, -3, 3), // 4
        i(CLASS_JMP | JMP_JEQ | SRC_K, 0, 0, 1, 3),  // 5
        mov64_imm(0, 100),                           // 6
        exit(),                                      // 7
    ]
}

#[test]
fn hits_and_branches_of_a_loop_over_two_runs() {
    for engine in ENGINES {
        let p = load_counting(&looping(), engine);
        for _ in 0..2 {
            let out = p.run(&mut RunInput::default()).unwrap();
            assert_eq!(out.r0, 3);
        }
        assert_eq!(
            p.coverage().unwrap(),
            CoverageReport {
                hits: vec![2, 2, 6, 6, 6, 2, 0, 2],
                branches: vec![branch(4, 4, 2), branch(5, 2, 0)],
            },
            "{engine:?}"
        );
        p.reset_coverage();
        assert_eq!(p.coverage().unwrap().hits, vec![0; 8]);
    }
}

/// r0 = 0; r2 = 0; loop: r3 = r1; r3 += r2; r4 = *(u8 *)(r3 + 0); if r4 == 0 goto out; r0 += r4;
/// r2 += 1; if r2 < 16 goto loop; out: exit. With data 1, 2, 3, 0, ...: the loop starts 4 times
/// (i = 0..3), leaves from its middle at i = 3 (byte 0), so its second half runs 3 times;
/// r0 = 1 + 2 + 3 = 6. (A counted loop over the data, as the JIT's fast-loop copies run, left in
/// an even iteration: the second half of an unrolled copy.)
#[test]
fn a_loop_left_from_its_middle() {
    let insns = vec![
        mov64_imm(0, 0),                              // 0
        mov64_imm(2, 0),                              // 1
        mov64_reg(3, 1),                              // 2
        alu64_reg(ALU_ADD, 3, 2),                     // 3
        i(CLASS_LDX | SIZE_B | MODE_MEM, 4, 3, 0, 0), // 4
        i(CLASS_JMP | JMP_JEQ | SRC_K, 4, 0, 3, 0),   // 5
        alu64_reg(ALU_ADD, 0, 4),                     // 6
        alu64_imm(ALU_ADD, 2, 1),                     // 7
        i(CLASS_JMP | JMP_JLT | SRC_K, 2, 0, -7, 16), // 8
        exit(),                                       // 9
    ];
    for engine in ENGINES {
        let p = load_counting(&insns, engine);
        let mut data = [0u8; 16];
        data[..3].copy_from_slice(&[1, 2, 3]);
        let out = p
            .run(&mut RunInput {
                data: &mut data,
                budget: None,
            })
            .unwrap();
        assert_eq!(out.r0, 6);
        assert_eq!(
            p.coverage().unwrap(),
            CoverageReport {
                hits: vec![1, 1, 4, 4, 4, 4, 3, 3, 3, 1],
                branches: vec![branch(5, 1, 3), branch(8, 3, 0)],
            },
            "{engine:?}"
        );
    }
}

/// r0 = 1; r2 = *(u32 *)(r1 + 0); r3 = *(u32 *)(r1 + 8); r0 = 2; exit, with 4 bytes of data: the
/// second load traps, so it counts as reached and what follows it does not.
#[test]
fn a_trap_ends_the_count_at_its_instruction() {
    let insns = vec![
        mov64_imm(0, 1),
        i(CLASS_LDX | SIZE_W | MODE_MEM, 2, 1, 0, 0),
        i(CLASS_LDX | SIZE_W | MODE_MEM, 3, 1, 8, 0),
        mov64_imm(0, 2),
        exit(),
    ];
    for engine in ENGINES {
        let p = load_counting(&insns, engine);
        let mut data = [0u8; 4];
        assert!(p
            .run(&mut RunInput {
                data: &mut data,
                budget: None
            })
            .is_err());
        assert_eq!(
            p.coverage().unwrap().hits,
            vec![1, 1, 1, 0, 0],
            "{engine:?}"
        );
    }
}

/// r0 = 1; if r0 == 1 goto +0; exit: a jump to the next instruction is still taken.
#[test]
fn a_jump_to_the_next_instruction_counts_as_taken() {
    let insns = vec![
        mov64_imm(0, 1),
        i(CLASS_JMP | JMP_JEQ | SRC_K, 0, 0, 0, 1),
        exit(),
    ];
    for engine in ENGINES {
        let p = load_counting(&insns, engine);
        p.run(&mut RunInput::default()).unwrap();
        let c = p.coverage().unwrap();
        assert_eq!(c.hits, vec![1, 1, 1], "{engine:?}");
        assert_eq!(c.branches, vec![branch(1, 1, 0)], "{engine:?}");
    }
}

#[test]
fn programs_without_coverage_report_none() {
    let p = load(&looping(), Engine::Jit).unwrap();
    p.run(&mut RunInput::default()).unwrap();
    assert_eq!(p.coverage(), None);
}

/// Generated programs (loops, sub-program calls, memory accesses that may trap), run a few times
/// with random data and budgets (some ending inside a chain): both engines must count the same.
#[test]
fn both_engines_count_the_same_on_generated_programs() {
    let cases: u64 = std::env::var("EBPF_COVERAGE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let mut compared = 0;
    for seed in 1..=cases {
        let mut r = rng::Rng::new(seed);
        let insns = random_programs::generate(&mut r);
        let (Ok(a), Ok(b)) = (
            Program::load(&encode_all(&insns), counting(Engine::Interpreter)),
            Program::load(&encode_all(&insns), counting(Engine::Jit)),
        ) else {
            continue;
        };
        // One buffer for both runs: a program that computes with its pointers then sees the same
        // addresses on both engines.
        let mut data = vec![0u8; 64];
        for _ in 0..3 {
            let init: Vec<u8> = (0..64).map(|_| r.next() as u8).collect();
            let budget = Some(r.range(1, 400) as u64);
            data.copy_from_slice(&init);
            let ra = a.run(&mut RunInput {
                data: &mut data,
                budget,
            });
            data.copy_from_slice(&init);
            let rb = b.run(&mut RunInput {
                data: &mut data,
                budget,
            });
            assert_eq!(
                ra.map(|o| o.r0).map_err(|t| t.pc),
                rb.map(|o| o.r0).map_err(|t| t.pc),
                "seed {seed}: outcomes differ"
            );
        }
        assert_eq!(a.coverage(), b.coverage(), "seed {seed}");
        compared += 1;
    }
    assert!(
        compared > cases / 2,
        "only {compared} of {cases} programs loaded"
    );
}

fn counting(engine: Engine) -> ProgramOptions {
    ProgramOptions {
        engine,
        coverage: true,
        ..ProgramOptions::default()
    }
}
