//! The fixed cost of a run, for instruction counts under callgrind (issue #10: per-run set-up):
//! `r0 = 2; exit` run COUNT times, as single raw runs (`Program::run`) or as one XDP batch of
//! 64-byte packets (`Program::run_batch`, r0 only). Run it twice with different counts and divide
//! the difference of the instruction counts by the difference of the counts:
//!
//!     valgrind --tool=callgrind cargo run --release -p ebpf-vm --example run_cost -- raw jit verified 10000

use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::{encode_all, Insn};
use ebpf_vm::{BatchInput, Engine, Mode, Program, ProgramOptions, ProgramType, RunInput};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: run_cost raw|xdp jit|interpreter checked|verified COUNT";
    let [_, kind, engine, mode, count] = &args[..] else {
        return Err(usage.into());
    };
    let count: usize = count.parse()?;
    let engine = match engine.as_str() {
        "jit" => Engine::Jit,
        _ => Engine::Interpreter,
    };
    let mode = match mode.as_str() {
        "verified" => Mode::Verified,
        _ => Mode::Checked,
    };
    let code = encode_all(&[
        Insn::new(CLASS_ALU64 | ALU_MOV | SRC_K, 0, 0, 0, 2),
        Insn::new(OP_EXIT, 0, 0, 0, 0),
    ]);
    let prog_type = if kind == "xdp" {
        ProgramType::Xdp
    } else {
        ProgramType::Raw
    };
    let prog = Program::load(
        &code,
        ProgramOptions {
            prog_type,
            engine,
            mode,
            data_size: (prog_type == ProgramType::Raw).then_some(64),
            ..ProgramOptions::default()
        },
    )?;
    let mut sum = 0u64;
    if prog_type == ProgramType::Raw {
        let mut data = [0u8; 64];
        for _ in 0..count {
            sum += prog
                .run(&mut RunInput {
                    data: &mut data,
                    budget: None,
                })?
                .r0;
        }
    } else {
        let packets = vec![0u8; 64 * count];
        let lengths = vec![64u32; count];
        let input = BatchInput {
            packets: &packets,
            lengths: &lengths,
            r0_only: true,
            ..BatchInput::default()
        };
        prog.run_batch(&input, |run| {
            sum += run.result.as_ref().map_or(0, |(out, _)| out.r0)
        })?;
    }
    println!("{sum}");
    Ok(())
}
