//! Verification time of loop and branch programs, ours against the kernel's own
//! `verification time N usec` for the same programs on the same machine:
//!
//!   cargo bench -p ebpf-vm --bench verify
//!
//! Ours: `verifier::verify` (log level 0, analysis done once outside the timing), the median of
//! repeated runs. The kernel's: `tests/verifier_support/kernel_load.c` (built here with `cc`)
//! loads each program with log level 4 (`BPF_LOG_STATS`: only the statistics) and the median of
//! its reported times is taken; skipped, saying why, when the kernel cannot be asked (not root).
//! Both print the processed-instruction count, which must be the same.
//!
//! Memory: a counting global allocator records the most heap bytes held at once during one
//! `verify` beyond what was held when it started (states kept for pruning, the path's stack of
//! pending states, logs); printed with the peak number of kept states.

#[path = "../tests/prune_support/programs.rs"]
mod programs;

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The system allocator, counting the bytes held now and the most held since `reset_peak`.
struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            let now = HELD.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            if new_size >= layout.size() {
                let grow = new_size - layout.size();
                let now = HELD.fetch_add(grow, Ordering::Relaxed) + grow;
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                HELD.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The most heap bytes `f` held at once beyond those held when it started.
fn peak_bytes_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = HELD.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed) - base)
}

use ebpf_vm::analysis::{analyse, AnalysisOptions};
use ebpf_vm::isa::Insn;
use ebpf_vm::verifier::{verify, ProgramKind, VerifyOptions};
use programs::*;

/// `BPF_PROG_TYPE_SOCKET_FILTER`, `BPF_PROG_TYPE_XDP`.
const SOCKET_FILTER: u32 = 1;
const XDP: u32 = 6;

fn subjects() -> Vec<(&'static str, u32, Vec<Insn>)> {
    vec![
        ("for (i < 16)", SOCKET_FILTER, counted_loop(16)),
        ("for (i < 1000)", SOCKET_FILTER, counted_loop(1000)),
        ("while (n) n--, n <= 64", SOCKET_FILTER, bounded_while()),
        ("packet loop, 8 bytes", XDP, packet_loop()),
        ("30 diamonds, live scalar", SOCKET_FILTER, live_diamonds(30)),
        (
            "counter past the limit (1M insns)",
            SOCKET_FILTER,
            vec![
                mov(1, 0),
                add(1, 1),
                i(0xa5, 1, 0, -2, 2_000_000),
                mov(0, 0),
                exit(),
            ],
        ),
    ]
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    xs[xs.len() / 2]
}

/// Our median time in microseconds, the processed count, and one run's peak heap bytes and
/// peak kept states.
fn ours(prog_type: u32, slots: &[Insn]) -> (f64, u64, usize, u32) {
    let analysis = analyse(slots, &AnalysisOptions::default()).expect("the program analyses");
    let names = |_: i32| None;
    let prototype = |id: i32| {
        u32::try_from(id)
            .ok()
            .and_then(ebpf_vm::helpers::kernel_prototypes::kernel_prototype)
    };
    let options = VerifyOptions {
        globals: &[],
        unprivileged: false,
        exit_range: false,
        kind: if prog_type == XDP {
            ProgramKind::Xdp
        } else {
            ProgramKind::SocketFilter
        },
        maps: &[],
        helper_name: &names,
        prototype: &prototype,
        gpl_compatible: true,
        log_level: 0,
    };
    let run = || {
        let start = Instant::now();
        let processed = verify(&analysis, &options).map(|v| v.processed).ok();
        (start.elapsed(), processed)
    };
    let (peak_states, peak_bytes) =
        peak_bytes_of(|| verify(&analysis, &options).map_or(0, |v| v.stats.peak_states));
    let (first, processed) = run();
    // A rejection carries no count: read it off the summary line of a run with a log.
    let processed = processed.unwrap_or_else(|| {
        let logged = VerifyOptions {
            globals: &[],
            unprivileged: false,
            exit_range: false,
            log_level: 1,
            ..options
        };
        let log = verify(&analysis, &logged).map_or_else(|r| r.log, |v| v.log);
        log.lines()
            .last()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    });
    // Enough runs for about half a second, at least 5.
    let runs = (Duration::from_millis(500).as_nanos() / first.as_nanos().max(1)).clamp(5, 2000);
    let times = (0..runs).map(|_| run().0.as_secs_f64() * 1e6).collect();
    (median(times), processed, peak_bytes, peak_states)
}

fn loader() -> Result<PathBuf, String> {
    extern "C" {
        fn geteuid() -> u32;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { geteuid() } != 0 {
        return Err("not root".into());
    }
    let source =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/verifier_support/kernel_load.c");
    let out = std::env::temp_dir().join(format!("bench_kernel_load_{}", std::process::id()));
    let built = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&out)
        .arg(&source)
        .output()
        .map_err(|e| format!("cannot run cc: {e}"))?;
    if !built.status.success() {
        return Err(String::from_utf8_lossy(&built.stderr).into_owned());
    }
    Ok(out)
}

/// The kernel's median `verification time` in microseconds and its processed count.
fn kernel(loader: &PathBuf, prog_type: u32, slots: &[Insn]) -> Result<(f64, u64), String> {
    let file = std::env::temp_dir().join(format!("bench_verify_{}.bin", std::process::id()));
    let bytes: Vec<u8> = slots.iter().flat_map(|s| s.encode()).collect();
    std::fs::write(&file, bytes).map_err(|e| e.to_string())?;
    let mut times = Vec::new();
    let mut processed = 0;
    for _ in 0..9 {
        let out = Command::new(loader)
            .arg(prog_type.to_string())
            .arg("4")
            .arg(&file)
            .output()
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out.stdout);
        let after = |key: &str| -> Option<f64> {
            let words: Vec<&str> = text.split_whitespace().collect();
            let at = words.iter().position(|w| *w == key)?;
            words.get(at + 1)?.parse().ok()
        };
        times.push(after("time").ok_or_else(|| format!("no verification time in {text}"))?);
        processed = after("processed").unwrap_or(0.0) as u64;
    }
    let _ = std::fs::remove_file(&file);
    Ok((median(times), processed))
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to filter here.
    let loader = loader();
    if let Err(why) = &loader {
        eprintln!("the kernel's times are skipped: {why}");
    }
    println!(
        "| program | processed (ours / kernel) | ours | kernel | ours / kernel | peak heap (peak states) |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for (name, prog_type, slots) in subjects() {
        let (ours_us, ours_n, bytes, states) = ours(prog_type, &slots);
        let memory = format!("{:.1} KiB ({states})", bytes as f64 / 1024.0);
        let theirs = loader.as_ref().ok().map(|l| kernel(l, prog_type, &slots));
        match theirs {
            Some(Ok((k_us, k_n))) => println!(
                "| {name} | {ours_n} / {k_n} | {ours_us:.0} us | {k_us:.0} us | {:.2} | {memory} |",
                ours_us / k_us.max(1.0)
            ),
            Some(Err(e)) => {
                println!("| {name} | {ours_n} / ? | {ours_us:.0} us | ({e}) | | {memory} |")
            }
            None => println!("| {name} | {ours_n} | {ours_us:.0} us | | | {memory} |"),
        }
    }
    if let Ok(l) = loader {
        let _ = std::fs::remove_file(l);
    }
}
