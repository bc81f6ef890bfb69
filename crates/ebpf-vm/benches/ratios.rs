//! The ratio table of BENCHMARKS.md, measured so that it holds up on a busy machine:
//!
//!   cargo bench -p ebpf-vm --bench ratios
//!
//! Criterion (`--bench engines`) measures one engine after another, so load from other processes
//! that comes and goes between them skews the ratios. Here the engines take turns: each round
//! times a small batch of runs on every engine, and each engine keeps its fastest batch (the
//! run least disturbed). Prints Markdown: times, then ratios with the median over programs.

mod support;

use std::hint::black_box;
use std::time::Duration;

use ebpf_vm::{Engine, Program, ProgramOptions};

use support::engines::{self, compile_rbpf_jit, Runner, MEASURE_OUR_JIT};
use support::inputs::programs;
use support::native::NativeLib;
use support::race::{fmt_ratio, fmt_time, median, race, Task};

const ENGINES: [&str; 8] = [
    "native",
    "ebpf_jit",
    "ebpf_interp",
    "rbpf_jit",
    "rbpf_interp",
    "ebpf_jit_plain",
    "ebpf_jit_verified",
    "ebpf_interp_verified",
];
/// Time spent per program, all engines together.
const PER_PROGRAM: Duration = Duration::from_millis(3000);

fn main() {
    // `cargo bench` passes `--bench`; any other argument keeps only the programs whose names
    // contain it (`cargo bench -p ebpf-vm --bench ratios -- _fixed`).
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f));
    let native = NativeLib::build()
        .map_err(|e| eprintln!("native left out: {e}"))
        .ok();
    let mut rows = vec![];
    for prog in programs().into_iter().filter(|p| wanted(p.name)) {
        let runners: Vec<Runner> = engines::all(&prog, native.as_ref());
        let tasks = runners
            .into_iter()
            .map(|mut r| {
                let name = r.engine;
                (
                    name,
                    Box::new(move || {
                        black_box(r.run());
                    }) as Box<dyn FnMut()>,
                )
            })
            .collect();
        let times = race(tasks, PER_PROGRAM);
        let get = |e: &str| times.iter().find(|(n, _)| *n == e).map(|(_, t)| *t);
        rows.push((prog.name, ENGINES.map(get)));
        eprintln!("{}: done", prog.name);
    }

    println!("| program | {} |", ENGINES.join(" | "));
    println!("|{}", " --- |".repeat(ENGINES.len() + 1));
    for (name, t) in &rows {
        let cells: Vec<String> = t.iter().map(|x| fmt_time(*x)).collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
    println!();
    type RatioFn = fn(&[Option<f64>; 8]) -> Option<f64>;
    let div = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b);
    let ratios: [(&str, RatioFn); 8] = [
        ("ebpf_jit / native", |t| t[1].zip(t[0]).map(|(a, b)| a / b)),
        ("ebpf_interp / native", |t| {
            t[2].zip(t[0]).map(|(a, b)| a / b)
        }),
        ("ebpf_jit faster than rbpf_jit", |t| {
            t[3].zip(t[1]).map(|(a, b)| a / b)
        }),
        ("ebpf_interp faster than rbpf_interp", |t| {
            t[4].zip(t[2]).map(|(a, b)| a / b)
        }),
        // The cost of constant blinding: the default JIT against the same without it.
        ("ebpf_jit / ebpf_jit_plain", |t| {
            t[1].zip(t[5]).map(|(a, b)| a / b)
        }),
        // Mode verified (the programs that load so): the proved accesses unchecked.
        ("ebpf_jit_verified / native", |t| {
            t[6].zip(t[0]).map(|(a, b)| a / b)
        }),
        ("ebpf_jit_verified faster than rbpf_jit", |t| {
            t[3].zip(t[6]).map(|(a, b)| a / b)
        }),
        ("ebpf_interp_verified / native", |t| {
            t[7].zip(t[0]).map(|(a, b)| a / b)
        }),
    ];
    let names: Vec<&str> = ratios.iter().map(|(n, _)| *n).collect();
    println!("| program | {} |", names.join(" | "));
    println!("|{}", " --- |".repeat(ratios.len() + 1));
    for (name, t) in &rows {
        let cells: Vec<String> = ratios.iter().map(|(_, f)| fmt_ratio(f(t))).collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
    let medians: Vec<String> = ratios
        .iter()
        .map(|(_, f)| fmt_ratio(median(rows.iter().filter_map(|(_, t)| f(t)).collect())))
        .collect();
    println!("| **median** | {} |", medians.join(" | "));
    println!();

    // Load/compile latency, the same way.
    println!(
        "| load/compile | ebpf_jit | ebpf_jit_plain | ebpf_interp | rbpf_jit | rbpf_interp | ebpf_jit / rbpf_jit |"
    );
    println!("|{}", " --- |".repeat(7));
    for prog in programs()
        .into_iter()
        .filter(|p| (p.name == "big" || p.name == "parse") && wanted(p.name))
    {
        let bytes = prog.bytecode;
        let opts = |engine| ProgramOptions {
            engine,
            ..ProgramOptions::default()
        };
        let (jit_opts, interp_opts) = (opts(Engine::Jit), opts(Engine::Interpreter));
        // `Program::load` takes its options by value: the clone is timed on its own and taken
        // off, so that the figure is the load alone.
        let clone_opts = interp_opts.clone();
        let mut tasks: Vec<Task> = vec![(
            "clone",
            Box::new(move || {
                black_box(clone_opts.clone());
            }),
        )];
        let jit_ok = MEASURE_OUR_JIT
            && Program::load(bytes, jit_opts.clone()).is_ok_and(|p| p.engine() == Engine::Jit);
        if jit_ok {
            let plain_opts = ProgramOptions {
                blind_constants: false,
                ..jit_opts.clone()
            };
            tasks.push((
                "ebpf_jit",
                Box::new(move || {
                    black_box(Program::load(bytes, jit_opts.clone()).unwrap());
                }),
            ));
            tasks.push((
                "ebpf_jit_plain",
                Box::new(move || {
                    black_box(Program::load(bytes, plain_opts.clone()).unwrap());
                }),
            ));
        }
        tasks.push((
            "ebpf_interp",
            Box::new(move || {
                black_box(Program::load(bytes, interp_opts.clone()).unwrap());
            }),
        ));
        if compile_rbpf_jit(bytes).is_ok() {
            tasks.push((
                "rbpf_jit",
                Box::new(move || {
                    black_box(compile_rbpf_jit(bytes).unwrap());
                }),
            ));
        }
        tasks.push((
            "rbpf_interp",
            Box::new(move || {
                black_box(rbpf::EbpfVmRaw::new(Some(bytes)).unwrap());
            }),
        ));
        let times = race(tasks, Duration::from_millis(2000));
        let clone = times
            .iter()
            .find(|(n, _)| *n == "clone")
            .map_or(0.0, |(_, t)| *t);
        let get = |e: &str| {
            let t = times.iter().find(|(n, _)| *n == e).map(|(_, t)| *t);
            if e.starts_with("ebpf") {
                t.map(|t| (t - clone).max(0.0))
            } else {
                t
            }
        };
        println!(
            "| compile_{} ({} insns) | {} | {} | {} | {} | {} | {} |",
            prog.name,
            bytes.len() / 8,
            fmt_time(get("ebpf_jit")),
            fmt_time(get("ebpf_jit_plain")),
            fmt_time(get("ebpf_interp")),
            fmt_time(get("rbpf_jit")),
            fmt_time(get("rbpf_interp")),
            fmt_ratio(div(get("ebpf_jit"), get("rbpf_jit"))),
        );
    }
}
