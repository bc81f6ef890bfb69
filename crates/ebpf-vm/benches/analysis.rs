//! The analysis layer's cost (validation excluded: the slots are validated once, outside the
//! timing):
//!
//!   cargo bench -p ebpf-vm --bench analysis -- --warm-up-time 1 --measurement-time 3
//!
//! Subjects: the benchmark programs `parse` (316 instructions) and `big` (1,011), a 1,000,000-slot
//! straight-line program, and 100,000 slots in 1,000 functions with 18,000 loops
//! (`tests/analysis_support/generated.rs`). Functions: `analyse` (everything `analyse` builds) and
//! `liveness` (the register-liveness client of the dataflow solver, on an analysed program).

#[path = "../tests/analysis_support/generated.rs"]
mod generated;
mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use ebpf_vm::analysis::{all_five, analyse, AnalysisOptions};
use ebpf_vm::isa::{decode_all, Insn};

fn subjects() -> Vec<(String, Vec<Insn>)> {
    let mut s: Vec<(String, Vec<Insn>)> = support::inputs::programs()
        .into_iter()
        .filter(|p| p.name == "parse" || p.name == "big")
        .map(|p| (p.name.to_string(), decode_all(p.bytecode)))
        .collect();
    s.push(("straight_1m".into(), generated::straight_line(1_000_000)));
    s.push(("functions_100k".into(), generated::many_functions(1000, 92)));
    s
}

fn analysis(c: &mut Criterion) {
    for (name, slots) in subjects() {
        let mut group = c.benchmark_group(format!("analysis_{name}"));
        if slots.len() > 10_000 {
            group.sample_size(10);
        }
        let options = AnalysisOptions::default();
        group.bench_function("analyse", |b| {
            b.iter(|| analyse(black_box(&slots), &options).unwrap())
        });
        let analysed = analyse(&slots, &options).unwrap();
        group.bench_function("liveness", |b| {
            b.iter(|| black_box(&analysed).live_registers(&all_five))
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3));
    targets = analysis
}
criterion_main!(benches);
