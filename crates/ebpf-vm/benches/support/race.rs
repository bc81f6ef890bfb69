//! Timing on a busy machine: closures take turns in short batches, and each keeps its fastest
//! batch (the run least disturbed by other processes), so that load that comes and goes hits
//! them alike. Shared by `--bench ratios` and `--bench coverage`.

use std::time::{Duration, Instant};

/// A named thing to time.
pub type Task<'a> = (&'static str, Box<dyn FnMut() + 'a>);

/// The fastest per-call time of each closure, over interleaved batches sized to take ~50 µs.
pub fn race(mut tasks: Vec<Task<'_>>, total: Duration) -> Vec<(&'static str, f64)> {
    let mut batch: Vec<u32> = tasks
        .iter_mut()
        .map(|(_, f)| {
            // Sized from a second run: a first one pays page faults and cold caches and branch
            // predictors, and sized dispatch_fixed's batches at 7 to 11 runs where ~50 take
            // 50 µs, so that every batch, after the other engines' turns, ran mostly cold.
            f();
            let t = Instant::now();
            f();
            let once = t.elapsed().as_secs_f64().max(1e-8);
            ((50e-6 / once) as u32).clamp(1, 10_000)
        })
        .collect();
    let mut best = vec![f64::MAX; tasks.len()];
    let end = Instant::now() + total;
    while Instant::now() < end {
        for (i, (_, f)) in tasks.iter_mut().enumerate() {
            let t = Instant::now();
            for _ in 0..batch[i] {
                f();
            }
            best[i] = best[i].min(t.elapsed().as_secs_f64() / batch[i] as f64);
        }
        batch.iter_mut().for_each(|b| *b = (*b).max(1));
    }
    tasks.iter().map(|(n, _)| *n).zip(best).collect()
}

pub fn fmt_time(s: Option<f64>) -> String {
    match s {
        None => "n/a".into(),
        Some(s) if s >= 1e-3 => format!("{:.2} ms", s * 1e3),
        Some(s) if s >= 1e-6 => format!("{:.2} µs", s * 1e6),
        Some(s) => format!("{:.1} ns", s * 1e9),
    }
}

pub fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or("n/a".into(), |r| format!("{r:.2}x"))
}

pub fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}
