//! The cost of coverage (and of traces) against plain runs, for BENCHMARKS.md:
//!
//!   cargo bench -p ebpf-vm --bench coverage
//!
//! Per benchmark program, on each engine: a plain run, a run of the same program loaded with
//! `coverage: true` (counters accumulate over all runs, as in a test suite), and a traced run
//! (the interpreter's observed loop keeping the last 1,000 steps). The engines take turns as in
//! `--bench ratios`. Prints Markdown: times, then the ratios to the plain run.

mod support;

use std::hint::black_box;
use std::time::Duration;

use ebpf_vm::context::ContextInput;
use ebpf_vm::{Engine, Program, ProgramOptions, RunInput, RunLimits};

use support::inputs::programs;
use support::race::{fmt_ratio, fmt_time, median, race, Task};

const COLUMNS: [&str; 5] = ["jit", "jit_coverage", "interp", "interp_coverage", "traced"];
/// Time spent per program, all columns together.
const PER_PROGRAM: Duration = Duration::from_millis(2500);
const TRACE_LIMIT: usize = 1000;

fn load(bytecode: &[u8], engine: Engine, coverage: bool) -> Program {
    let p = Program::load(
        bytecode,
        ProgramOptions {
            engine,
            coverage,
            ..ProgramOptions::default()
        },
    )
    .expect("benchmark program loads");
    assert_eq!(p.engine(), engine);
    p
}

fn main() {
    let mut rows = vec![];
    for prog in programs() {
        // Both engines count the same (the fast loops of the JIT's copies included).
        let counted = [Engine::Jit, Engine::Interpreter].map(|engine| {
            let p = load(prog.bytecode, engine, true);
            let mut mem = (prog.input)();
            p.run(&mut RunInput {
                data: &mut mem,
                budget: None,
            })
            .expect("benchmark program runs");
            p.coverage()
        });
        assert_eq!(
            counted[0], counted[1],
            "{}: the engines' coverage differs",
            prog.name
        );
        let mut tasks: Vec<Task> = vec![];
        for (name, engine, coverage) in [
            ("jit", Engine::Jit, false),
            ("jit_coverage", Engine::Jit, true),
            ("interp", Engine::Interpreter, false),
            ("interp_coverage", Engine::Interpreter, true),
        ] {
            let p = load(prog.bytecode, engine, coverage);
            let mut mem = (prog.input)();
            tasks.push((
                name,
                Box::new(move || {
                    let out = p.run(&mut RunInput {
                        data: &mut mem,
                        budget: None,
                    });
                    black_box(out.expect("benchmark program runs"));
                }),
            ));
        }
        let p = load(prog.bytecode, Engine::Interpreter, false);
        let mut mem = (prog.input)();
        tasks.push((
            "traced",
            Box::new(move || {
                let (out, trace) = p.run_traced(
                    &mut RunInput {
                        data: &mut mem,
                        budget: None,
                    },
                    &ContextInput::default(),
                    &RunLimits::default(),
                    TRACE_LIMIT,
                );
                black_box((out.expect("benchmark program runs"), trace));
            }),
        ));
        let times = race(tasks, PER_PROGRAM);
        let get = |c: &str| times.iter().find(|(n, _)| *n == c).map(|(_, t)| *t);
        rows.push((prog.name, COLUMNS.map(get)));
        eprintln!("{}: done", prog.name);
    }
    println!("| program | {} |", COLUMNS.join(" | "));
    println!("|{}", " --- |".repeat(COLUMNS.len() + 1));
    for (name, t) in &rows {
        let cells: Vec<String> = t.iter().map(|x| fmt_time(*x)).collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
    println!();
    let div = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b);
    type RatioFn = fn(&[Option<f64>; 5]) -> (Option<f64>, Option<f64>);
    let ratios: [(&str, RatioFn); 3] = [
        ("jit_coverage / jit", |t| (t[1], t[0])),
        ("interp_coverage / interp", |t| (t[3], t[2])),
        ("traced / interp", |t| (t[4], t[2])),
    ];
    let names: Vec<&str> = ratios.iter().map(|(n, _)| *n).collect();
    println!("| program | {} |", names.join(" | "));
    println!("|{}", " --- |".repeat(ratios.len() + 1));
    for (name, t) in &rows {
        let cells: Vec<String> = (ratios.iter())
            .map(|(_, f)| {
                let (a, b) = f(t);
                fmt_ratio(div(a, b))
            })
            .collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
    let medians: Vec<String> = (ratios.iter())
        .map(|(_, f)| {
            let all = rows.iter().filter_map(|(_, t)| {
                let (a, b) = f(t);
                div(a, b)
            });
            fmt_ratio(median(all.collect()))
        })
        .collect();
    println!("| **median** | {} |", medians.join(" | "));
}
