//! Using the engine from Rust, as the README shows: load bytecode, run it over some data, read r0
//! and the instruction count, and see what a trap looks like.
//!
//!     cargo run -p ebpf-vm --example sum_bytes

use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::{encode_all, Insn};
use ebpf_vm::{Engine, Program, ProgramOptions, RunInput};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // r0 = 0; r3 = r1 + r2; loop: if r1 >= r3 goto done; r4 = *(u8 *)r1; r0 += r4; r1 += 1; goto loop
    let sum = encode_all(&[
        Insn::new(CLASS_ALU64 | ALU_MOV | SRC_K, 0, 0, 0, 0),
        Insn::new(CLASS_ALU64 | ALU_MOV | SRC_X, 3, 1, 0, 0),
        Insn::new(CLASS_ALU64 | ALU_ADD | SRC_X, 3, 2, 0, 0),
        Insn::new(CLASS_JMP | JMP_JGE | SRC_X, 1, 3, 4, 0),
        Insn::new(CLASS_LDX | MODE_MEM | SIZE_B, 4, 1, 0, 0),
        Insn::new(CLASS_ALU64 | ALU_ADD | SRC_X, 0, 4, 0, 0),
        Insn::new(CLASS_ALU64 | ALU_ADD | SRC_K, 1, 0, 0, 1),
        Insn::new(OP_JA, 0, 0, -5, 0),
        Insn::new(OP_EXIT, 0, 0, 0, 0),
    ]);
    for engine in [Engine::Interpreter, Engine::Auto] {
        let prog = Program::load(
            &sum,
            ProgramOptions {
                engine,
                ..ProgramOptions::default()
            },
        )?;
        let mut data: Vec<u8> = (1..=100).collect();
        let out = prog.run(&mut RunInput {
            data: &mut data,
            budget: None,
        })?;
        println!(
            "{:?}: r0 = {} after {} instructions",
            prog.engine(),
            out.r0,
            out.insn_count
        );
        assert_eq!(out.r0, 5050);
    }
    // A budget too small for the loop is a trap, not a hang.
    let prog = Program::load(&sum, ProgramOptions::default())?;
    let trap = prog
        .run(&mut RunInput {
            data: &mut [1u8; 100],
            budget: Some(50),
        })
        .unwrap_err();
    println!("{} ({}): {}", trap.kind.as_str(), trap.kind.code(), trap);
    Ok(())
}
