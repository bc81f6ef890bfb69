//! The cost of a JIT load, for profiles (issue #10 item 4): loads the bytecode in FILE COUNT
//! times, whole (`Program::load`) or only the JIT's part (`JitProgram::compile_program` on what
//! one load found: emission, the W^X copy, and the drop). Under callgrind, run it with two counts
//! and divide the difference of the instruction counts by the difference of the counts:
//!
//!     cargo build --release -p ebpf-vm --example load_cost
//!     valgrind --tool=callgrind target/release/examples/load_cost \
//!         bench/programs/bpf/parse.bin checked jit 200
//!
//! Mode verified loads a raw program with `dataSize` DATA_SIZE (8256 by default: the bench
//! programs' input, 64 frames of 128 bytes after a 64-byte header).

use ebpf_vm::jit::{JitOptions, JitProgram};
use ebpf_vm::{Engine, Mode, Program, ProgramOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: load_cost FILE checked|verified whole|jit|rbpf COUNT [DATA_SIZE]";
    let (file, mode, part, count, data_size) = match &args[..] {
        [_, f, m, p, c] => (f, m, p, c, 8256),
        [_, f, m, p, c, d] => (f, m, p, c, d.parse()?),
        _ => return Err(usage.into()),
    };
    // 'static for rbpf's VM, which borrows the bytecode for its lifetime; leaked once, not per
    // compile (a copy per compile would be counted as rbpf's work).
    let bytecode: &'static [u8] = Box::leak(std::fs::read(file)?.into_boxed_slice());
    let mode = match mode.as_str() {
        "verified" => Mode::Verified,
        "checked" => Mode::Checked,
        _ => return Err(usage.into()),
    };
    let count: usize = count.parse()?;
    let options = ProgramOptions {
        engine: Engine::Jit,
        mode,
        data_size: (mode == Mode::Verified).then_some(data_size),
        ..ProgramOptions::default()
    };
    let program = Program::load(bytecode, options.clone())?;
    let proved = program.verifier_report().map(|v| v.proved.clone());
    let analysis = program.analysis();
    let stack_frames = ebpf_vm::stack_reach::reachable_frames(analysis);
    let jit_options = JitOptions {
        meter: program.metered(),
        ..JitOptions::default()
    };
    let mut bytes = 0;
    for _ in 0..count {
        match part.as_str() {
            "whole" => {
                std::hint::black_box(Program::load(bytecode, options.clone())?);
            }
            "jit" => {
                let jit = JitProgram::compile_program(
                    program.instructions(),
                    analysis,
                    jit_options,
                    &[],
                    stack_frames,
                    proved.as_deref(),
                    &[],
                )?;
                bytes = jit.code_len();
            }
            // rbpf 0.4's compile of the same bytecode, as the `load` bench times it (its
            // verifier, then `jit_compile`): the instruction count to compare with.
            "rbpf" => {
                let mut vm = rbpf::EbpfVmRaw::new(Some(bytecode))?;
                vm.jit_compile()?;
                std::hint::black_box(vm);
            }
            _ => return Err(usage.into()),
        }
    }
    println!("{count} loads ({part}), {bytes} bytes of code");
    Ok(())
}
