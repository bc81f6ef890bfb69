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

mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use ebpf_vm::{Engine, Program, ProgramOptions};

use support::engines::{compile_rbpf_jit, MEASURE_OUR_JIT};
use support::inputs::programs;

fn load(bytecode: &[u8], engine: Engine) -> Result<Program, String> {
    let options = ProgramOptions {
        engine,
        ..ProgramOptions::default()
    };
    Program::load(bytecode, options).map_err(|e| e.to_string())
}

fn compile_latency(c: &mut Criterion) {
    for prog in programs()
        .into_iter()
        .filter(|p| p.name == "big" || p.name == "parse")
    {
        let bytes = prog.bytecode;
        let mut group = c.benchmark_group(format!("compile_{}", prog.name));
        eprintln!("compile_{}: {} instructions", prog.name, bytes.len() / 8);
        match load(bytes, Engine::Jit) {
            Ok(p) if MEASURE_OUR_JIT && p.engine() == Engine::Jit => {
                group.bench_function("ebpf_jit", |b| {
                    b.iter(|| load(black_box(bytes), Engine::Jit).unwrap())
                });
            }
            Ok(_) => eprintln!("ebpf_jit left out: switched off or resolved to another engine"),
            Err(e) => eprintln!("ebpf_jit left out: {e}"),
        }
        group.bench_function("ebpf_interp", |b| {
            b.iter(|| load(black_box(bytes), Engine::Interpreter).unwrap())
        });
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

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = compile_latency
}
criterion_main!(benches);
