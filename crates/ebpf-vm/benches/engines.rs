//! Run time of the benchmark programs on every engine, side by side:
//!
//!   cargo bench -p ebpf-vm --bench engines -- --warm-up-time 1 --measurement-time 3
//!
//! Groups are programs, functions are engines (`native`, `ebpf_jit`, `ebpf_interp`, `rbpf_jit`,
//! `rbpf_interp`); `node bench/summarize.mjs` turns criterion's estimates into the ratio table of
//! BENCHMARKS.md. Setup asserts that every engine returns the same r0.

mod support;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};

use support::engines;
use support::inputs::programs;
use support::native::NativeLib;

fn run_time(c: &mut Criterion) {
    let native = match NativeLib::build() {
        Ok(lib) => {
            eprintln!("native baseline compiled with {}", lib.compiler);
            Some(lib)
        }
        Err(e) => {
            eprintln!("native baseline left out: {e}");
            None
        }
    };
    for prog in programs() {
        let mut group = c.benchmark_group(prog.name);
        for mut runner in engines::all(&prog, native.as_ref()) {
            group.bench_function(runner.engine, |b| b.iter(|| runner.run()));
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    // Short by default so the whole run fits in a few minutes on two cores; flags override.
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = run_time
}
criterion_main!(benches);
