//! Where a program's output goes: the lines of `bpf_trace_printk` (a per-program log the embedder
//! reads, or a callback of its own) and the records of `bpf_perf_event_output` (a callback the
//! embedder registers; without one the helper returns -ENOENT, as the kernel does for a perf event
//! array slot with no event).
//!
//! Perf records are bounded per run as the kernel's perf ring is by its size: a run may output
//! `perf_buffer_bytes` (default `DEFAULT_PERF_BUFFER_BYTES`) of records, each counted as the kernel
//! lays it out in the ring (`perf_record_bytes`). A record beyond that is dropped, the helper
//! returns -ENOSPC as the kernel's does when the ring is full, and the loss is counted: the sink's
//! `lost` callback hears of it (the kernel's `PERF_RECORD_LOST`), and the run reports the number
//! (`ContextOutput::perf_lost`, `TestRunOutput::perf_lost`).

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};

/// One `bpf_perf_event_output` record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PerfRecord {
    /// The map handle the program passed (what its `lddw` of the perf event array was relocated
    /// to); not checked against the program's maps.
    pub map: u64,
    /// The slot of the perf event array: the index from the flags, or the running CPU (0) for
    /// `BPF_F_CURRENT_CPU`.
    pub index: u32,
    /// The program's bytes followed, for socket filter and XDP programs, by the requested number
    /// of packet bytes (the upper 32 bits of the flags, `BPF_F_CTXLEN_MASK`).
    pub data: Vec<u8>,
}

type PerfFn = dyn Fn(&PerfRecord) -> bool + Send + Sync;
type LostFn = dyn Fn(u64) + Send + Sync;
type TraceFn = dyn Fn(&str) + Send + Sync;

/// Bytes of perf records one run may output by default: 64 pages, a common size of a perf ring.
pub const DEFAULT_PERF_BUFFER_BYTES: u64 = 64 * 4096;

/// The bytes a record of `len` data bytes takes in the kernel's perf ring: the 8-byte
/// `perf_event_header`, then the raw sample (a u32 size and the data) padded to 8 bytes.
pub fn perf_record_bytes(len: u64) -> u64 {
    8 + (len + 4).div_ceil(8) * 8
}

/// Receives `bpf_perf_event_output` records, on the thread that runs the program, and the count of
/// records dropped because a run's perf buffer was full.
#[derive(Clone)]
pub struct PerfSink {
    record: Arc<PerfFn>,
    lost: Option<Arc<LostFn>>,
}

impl PerfSink {
    pub fn new(f: impl Fn(&PerfRecord) + Send + Sync + 'static) -> Self {
        PerfSink::accepting(move |r| {
            f(r);
            true
        })
    }

    /// A sink with a bound of its own (records waiting for a consumer): `f` returns false for a
    /// record it drops, which then counts as lost for the run (the sink counts it itself).
    pub fn accepting(f: impl Fn(&PerfRecord) -> bool + Send + Sync + 'static) -> Self {
        PerfSink {
            record: Arc::new(f),
            lost: None,
        }
    }

    /// Also tells `f` of records dropped (with their number, each time some are).
    pub fn with_lost(mut self, f: impl Fn(u64) + Send + Sync + 'static) -> Self {
        self.lost = Some(Arc::new(f));
        self
    }

    /// Hands `record` over; false when the sink dropped it.
    pub fn deliver(&self, record: &PerfRecord) -> bool {
        (self.record)(record)
    }

    pub fn lost(&self, count: u64) {
        if let Some(f) = &self.lost {
            f(count)
        }
    }
}

impl fmt::Debug for PerfSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PerfSink")
    }
}

/// Receives `bpf_trace_printk` lines instead of the program's log, on the running thread.
#[derive(Clone)]
pub struct TraceSink(pub Arc<TraceFn>);

impl TraceSink {
    pub fn new(f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        TraceSink(Arc::new(f))
    }
}

impl fmt::Debug for TraceSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TraceSink")
    }
}

/// Bytes of trace text a program keeps; older lines are dropped first beyond it.
pub const TRACE_LOG_LIMIT: usize = 1 << 20;

#[derive(Default)]
struct Log {
    lines: VecDeque<String>,
    bytes: usize,
    dropped: u64,
}

/// The output side of one program, shared by all its runs (and threads).
#[derive(Default)]
pub struct ProgramOutput {
    log: Mutex<Log>,
    pub trace_sink: Option<TraceSink>,
    pub perf_sink: Option<PerfSink>,
    /// Bytes of perf records a run may output (see the module comment).
    pub perf_buffer_bytes: u64,
}

impl fmt::Debug for ProgramOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProgramOutput")
            .field("trace_sink", &self.trace_sink)
            .field("perf_sink", &self.perf_sink)
            .field("perf_buffer_bytes", &self.perf_buffer_bytes)
            .finish()
    }
}

impl ProgramOutput {
    pub fn new(
        trace_sink: Option<TraceSink>,
        perf_sink: Option<PerfSink>,
        perf_buffer_bytes: u64,
    ) -> Self {
        ProgramOutput {
            log: Mutex::default(),
            trace_sink,
            perf_sink,
            perf_buffer_bytes,
        }
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records one `bpf_trace_printk` output.
    pub fn trace(&self, text: &str) {
        if let Some(sink) = &self.trace_sink {
            return (sink.0)(text);
        }
        let mut log = self.log();
        log.bytes += text.len();
        log.lines.push_back(text.to_string());
        while log.bytes > TRACE_LOG_LIMIT {
            let Some(old) = log.lines.pop_front() else {
                break;
            };
            log.bytes -= old.len();
            log.dropped += 1;
        }
    }

    /// The trace text so far, every output as the program printed it, concatenated.
    pub fn trace_log(&self) -> String {
        self.log().lines.iter().map(String::as_str).collect()
    }

    /// The trace text so far, emptying the log.
    pub fn take_trace_log(&self) -> String {
        let mut log = self.log();
        log.bytes = 0;
        log.lines.drain(..).collect()
    }

    /// How many outputs were dropped because the log was full.
    pub fn trace_dropped(&self) -> u64 {
        self.log().dropped
    }
}
