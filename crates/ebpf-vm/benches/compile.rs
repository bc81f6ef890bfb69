//! Load/compile latency:
//!
//!   cargo bench -p ebpf-vm --bench compile -- --warm-up-time 1 --measurement-time 3
//!
//! Subjects: `big` (bench/programs/big.c, about 1,000 instructions) and `parse` (316 instructions,
//! the largest benchmark program that fits rbpf's one-page JIT buffer). Functions:
//! - `ebpf_jit`: `Program::load` with `Engine::Jit` (validation + code generation);
//! - `ebpf_interp`: `Program::load` with `Engine::Interpreter` (validation + preparation);
//! - `rbpf_jit`: `EbpfVmRaw::new` (rbpf's verifier) + `jit_compile`, where rbpf can compile it;
//! - `rbpf_interp`: `EbpfVmRaw::new` alone.
//!
//! `compile_straight_200k` and `compile_straight_1m`: `Program::load` of generated straight-line
//! programs of 200,000 and 1,000,000 instructions (loads and stores through the data pointer and
//! the stack, ALU), on both engines: the guard that every load-time pass stays linear.

mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion};
use ebpf_vm::{Engine, Program, ProgramOptions};

use support::engines::{compile_rbpf_jit, MEASURE_OUR_JIT};
use support::inputs::programs;

fn options(engine: Engine) -> ProgramOptions {
    ProgramOptions {
        engine,
        ..ProgramOptions::default()
    }
}

fn load(bytecode: &[u8], options: ProgramOptions) -> Result<Program, String> {
    Program::load(bytecode, options).map_err(|e| e.to_string())
}

/// Times `Program::load` alone: the options (helper table and all) are built outside the timing,
/// as rbpf's VM is given no helpers either.
fn bench_load(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, bytes: &[u8], engine: Engine) {
    group.bench_function(name, |b| {
        b.iter_batched(
            || options(engine),
            |o| load(black_box(bytes), o).unwrap(),
            BatchSize::SmallInput,
        )
    });
}

fn compile_latency(c: &mut Criterion) {
    for prog in programs()
        .into_iter()
        .filter(|p| p.name == "big" || p.name == "parse")
    {
        let bytes = prog.bytecode;
        let mut group = c.benchmark_group(format!("compile_{}", prog.name));
        eprintln!("compile_{}: {} instructions", prog.name, bytes.len() / 8);
        match load(bytes, options(Engine::Jit)) {
            Ok(p) if MEASURE_OUR_JIT && p.engine() == Engine::Jit => {
                bench_load(&mut group, "ebpf_jit", bytes, Engine::Jit);
            }
            Ok(_) => eprintln!("ebpf_jit left out: switched off or resolved to another engine"),
            Err(e) => eprintln!("ebpf_jit left out: {e}"),
        }
        bench_load(&mut group, "ebpf_interp", bytes, Engine::Interpreter);
        match compile_rbpf_jit(bytes) {
            Ok(_) => {
                group.bench_function("rbpf_jit", |b| {
                    b.iter(|| compile_rbpf_jit(black_box(bytes)).unwrap())
                });
            }
            Err(e) => eprintln!("rbpf_jit left out: {e}"),
        }
        group.bench_function("rbpf_interp", |b| {
            b.iter(|| rbpf::EbpfVmRaw::new(Some(black_box(bytes))).unwrap())
        });
        group.finish();
    }
}

/// `n` instructions: a repeated mix of data and stack accesses and ALU, then `exit`.
fn straight_line(n: usize) -> Vec<u8> {
    use ebpf_vm::isa::opcodes::*;
    use ebpf_vm::isa::Insn;
    let mut v = Vec::with_capacity(n);
    let mut k = 0i16;
    while v.len() < n - 1 {
        let step = [
            Insn::new(CLASS_LDX | MODE_MEM | SIZE_W, 3, 1, (k % 8) * 4, 0),
            Insn::new(CLASS_ALU64 | ALU_ADD | SRC_X, 0, 3, 0, 0),
            Insn::new(CLASS_STX | MODE_MEM | SIZE_DW, 10, 0, -8, 0),
            Insn::new(CLASS_LDX | MODE_MEM | SIZE_DW, 4, 10, -8, 0),
            Insn::new(CLASS_ALU64 | ALU_XOR | SRC_X, 0, 4, 0, 0),
            Insn::new(CLASS_ALU64 | ALU_MUL | SRC_K, 0, 0, 0, 3),
            Insn::new(CLASS_STX | MODE_MEM | SIZE_B, 1, 0, k % 32, 0),
            Insn::new(CLASS_ALU64 | ALU_RSH | SRC_K, 0, 0, 0, 1),
        ];
        v.extend(step.iter().take(n - 1 - v.len()));
        k = k.wrapping_add(1);
    }
    v.push(Insn::new(OP_EXIT, 0, 0, 0, 0));
    v.iter().flat_map(|i| i.encode()).collect()
}

fn compile_large(c: &mut Criterion) {
    for (name, n) in [("200k", 200_000), ("1m", 1_000_000)] {
        let bytes = straight_line(n);
        let mut group = c.benchmark_group(format!("compile_straight_{name}"));
        group.sample_size(10);
        if MEASURE_OUR_JIT {
            bench_load(&mut group, "ebpf_jit", &bytes, Engine::Jit);
        }
        bench_load(&mut group, "ebpf_interp", &bytes, Engine::Interpreter);
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = compile_latency, compile_large
}
criterion_main!(benches);
