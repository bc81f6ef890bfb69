//! Verified programs run their proved accesses without checks (issue #10, item 1): the bench
//! programs' verifiable forms (bench/programs/*_fixed.c, and `big`) load in mode verified and give
//! the same r0 and memory on both engines in both modes; their expected r0 is the checked
//! interpreter's, which the `ratios` bench also holds native code and rbpf to.

#[allow(dead_code)]
#[path = "../benches/support/inputs.rs"]
mod inputs;

use ebpf_vm::{Engine, Mode, Program, ProgramOptions, RunInput};

fn load(bytecode: &[u8], engine: Engine, mode: Mode, data_size: usize) -> Program {
    let options = ProgramOptions {
        engine,
        mode,
        data_size: (mode == Mode::Verified).then_some(data_size as u32),
        ..ProgramOptions::default()
    };
    let p = Program::load(bytecode, options).unwrap_or_else(|e| panic!("{engine:?} {mode:?}: {e}"));
    assert_eq!(p.engine(), engine);
    p
}

fn run(p: &Program, input: &[u8]) -> (u64, Vec<u8>) {
    let mut data = input.to_vec();
    let out = p
        .run(&mut RunInput {
            data: &mut data,
            budget: None,
        })
        .unwrap_or_else(|t| panic!("trapped: {t}"));
    (out.r0, data)
}

#[test]
fn bench_programs_verified_agree_with_checked_on_both_engines() {
    for prog in inputs::programs().into_iter().filter(|p| p.verifiable) {
        let input = (prog.input)();
        let reference = run(
            &load(prog.bytecode, Engine::Interpreter, Mode::Checked, 0),
            &input,
        );
        for engine in [Engine::Interpreter, Engine::Jit] {
            for mode in [Mode::Checked, Mode::Verified] {
                let p = load(prog.bytecode, engine, mode, input.len());
                if mode == Mode::Verified {
                    every_access_proved(prog.name, &p);
                }
                assert_eq!(
                    run(&p, &input),
                    reference,
                    "{}: {engine:?} {mode:?}",
                    prog.name
                );
            }
        }
    }
}

/// These programs access only their data (memory of `dataSize` bytes) and their stack, so the
/// proof covers every plain load and store.
fn every_access_proved(name: &str, p: &Program) {
    let proved = &p.verifier_report().expect("verified").proved;
    let mut accesses = 0;
    for (slot, insn) in p.instructions().iter().enumerate() {
        let (class, mode) = (insn.opcode & 7, insn.opcode & 0xe0);
        // LDX, ST, STX with mode MEM (0x60).
        if matches!(class, 1..=3) && mode == 0x60 {
            accesses += 1;
            assert!(proved[slot], "{name}: access at {slot} not proved");
        }
    }
    assert!(accesses > 0, "{name}: no accesses");
}
