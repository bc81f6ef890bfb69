//! BPF_PROG_TEST_RUN in user space: run a program `repeat` times over the same input (data and
//! context) and report the last outcome with the mean duration of one run, as the kernel's test-run
//! command does: `retval`, `data_out` (for XDP the packet as the program left it, moved and resized
//! by the adjust helpers), `ctx_out`.

use std::time::Instant;

use crate::context::{ContextInput, ProcessInfo, RunData, SentSignal, SocketInfo};
use crate::error::Trap;
use crate::limits::RunLimits;
use crate::program::{Outputs, Program, RunHow};
use crate::run_space::with_run_space;
use crate::run_trace::RunTrace;

/// Input of a test run.
#[derive(Clone, Debug, Default)]
pub struct TestRunInput {
    pub data: Vec<u8>,
    /// The context image (`__sk_buff` fields, `xdp_md` fields, or a tracing program's context).
    pub ctx: Option<Vec<u8>>,
    /// What the `get_current_*` helpers report.
    pub process: ProcessInfo,
    /// The packet's socket (`bpf_get_socket_cookie` / `_uid`), or none (see `ContextInput`).
    pub socket: Option<SocketInfo>,
    /// What `bpf_jiffies64` returns, or the clock's count (see `ContextInput`).
    pub jiffies: Option<u64>,
    /// Tracing programs: the memory images the probe-read helpers read (see `ContextInput`).
    pub memory: crate::context::AddressSpace,
    /// tc and XDP: the interfaces and routes of the run (see `context::net`); `None`: the
    /// loopback and no routes.
    pub network: Option<std::sync::Arc<crate::context::net::Network>>,
    /// tc: the tunnel metadata the packet arrives with (see `context::tunnel`); `None`: none.
    pub tunnel: Option<crate::context::tunnel::TunnelInfo>,
    /// How many times to run (at least once).
    pub repeat: u32,
    pub budget: Option<u64>,
    /// Deadline and cancellation of the whole test run (every repetition; see `limits`).
    pub limits: RunLimits,
    /// Record an instruction trace of the last repetition that keeps this many steps (see
    /// `run_trace`).
    pub trace_limit: Option<usize>,
}

/// Outcome of the last repetition.
#[derive(Clone, Debug)]
pub struct TestRunOutput {
    /// r0 of the last run, or the trap that stopped it.
    pub result: Result<u64, Trap>,
    pub insn_count: u64,
    /// The data as the last run left it (XDP: the packet between data and data_end).
    pub data: Vec<u8>,
    /// The context as the last run left it, where the type has one.
    pub ctx: Option<Vec<u8>>,
    /// XDP: the metadata in front of the packet.
    pub meta: Option<Vec<u8>>,
    /// tc: the whole `__sk_buff` as the last run left it (`ctx` is the kernel's view).
    pub skb: Option<Vec<u8>>,
    /// tc and XDP: where the last run sent the packet (the redirect action after `bpf_redirect`).
    pub redirect: Option<crate::context::redirect::Redirect>,
    /// tc: the packets the last run sent with `bpf_clone_redirect`.
    pub clones: Vec<crate::context::redirect::Clone>,
    /// tc: the tunnel metadata the last run set with `bpf_skb_set_tunnel_key`, if it did.
    pub tunnel: Option<crate::context::tunnel::TunnelInfo>,
    /// Tracing: the writable memory images as the last run left them (`bpf_probe_write_user`).
    pub memory: Vec<crate::context::MemoryImage>,
    /// Mean wall time of one run, in nanoseconds.
    pub duration_ns: f64,
    /// `bpf_perf_event_output` records dropped, over all repetitions (see `helpers::output`).
    pub perf_lost: u64,
    /// The signals the last run asked `bpf_send_signal(_thread)` to send (none is sent).
    pub signals: Vec<SentSignal>,
    /// The instruction trace of the last repetition, when `trace_limit` asked for one.
    pub trace: Option<RunTrace>,
}

impl Program {
    /// Runs `input.repeat` times; every repetition starts from the same input bytes, so that each
    /// one sees what the caller passed. A trap ends the test run.
    pub fn test_run(&self, input: &TestRunInput) -> TestRunOutput {
        let repeat = input.repeat.max(1);
        let cx = ContextInput {
            ctx: input.ctx.as_deref(),
            process: input.process,
            socket: input.socket,
            jiffies: input.jiffies,
            memory: Some(&input.memory),
            network: input.network.as_ref(),
            tunnel: input.tunnel,
        };
        let mut data = input.data.clone();
        let mut runs = 0u32;
        let mut perf_lost = 0u64;
        let mut last = None;
        let mut trace = None;
        // One clock reading around the loop, as the kernel's test run does: per-repetition readings
        // cost as much as a short program (the data reset inside the loop is a small memcpy). The
        // repetitions share one run space (set up once, see `run_space`), and only the last one
        // copies its context output out.
        let start = Instant::now();
        with_run_space(|space| {
            for i in 0..repeat {
                if i > 0 {
                    data.copy_from_slice(&input.data);
                }
                let outputs = if i + 1 == repeat {
                    Outputs::All
                } else {
                    Outputs::R0
                };
                // Runs too short to reach a check of their own still end at the limits: a run
                // that starts with a limit reached stops before its first instruction.
                let (outcome, lost) = match input.limits.check(0, 0) {
                    Err(trap) => (Err(trap), 0),
                    Ok(()) => {
                        let how = RunHow {
                            budget: input.budget,
                            trace: input.trace_limit.map(|n| Box::new(RunTrace::new(n))),
                            outputs,
                        };
                        let data = RunData::Writable(&mut data);
                        let (outcome, lost, run_trace) =
                            self.run_on(space, data, &cx, &input.limits, how);
                        trace = run_trace;
                        (outcome, lost)
                    }
                };
                runs += 1;
                perf_lost += lost;
                let trapped = outcome.is_err();
                last = Some(outcome);
                if trapped {
                    break;
                }
            }
        });
        let duration_ns = start.elapsed().as_nanos() as f64 / runs as f64;
        TestRunOutput::from_outcome(
            last.expect("at least one repetition"),
            &data,
            duration_ns,
            perf_lost,
            trace.map(|t| *t),
        )
    }
}

impl TestRunOutput {
    /// The output of a run that ended with `outcome` on `data` (the data as the run left it; XDP
    /// and tc hand back their packet in the context output instead).
    pub fn from_outcome(
        outcome: Result<(crate::vm::RunOutput, crate::context::ContextOutput), Trap>,
        data: &[u8],
        duration_ns: f64,
        perf_lost: u64,
        trace: Option<RunTrace>,
    ) -> TestRunOutput {
        match outcome {
            Ok((out, cx_out)) => TestRunOutput {
                result: Ok(out.r0),
                insn_count: out.insn_count,
                data: cx_out.packet.unwrap_or_else(|| data.to_vec()),
                ctx: cx_out.ctx,
                meta: cx_out.meta,
                skb: cx_out.skb,
                redirect: cx_out.redirect,
                clones: cx_out.clones,
                tunnel: cx_out.tunnel,
                memory: cx_out.memory,
                duration_ns,
                perf_lost,
                signals: cx_out.signals,
                trace,
            },
            Err(trap) => TestRunOutput {
                insn_count: trap.insn_count,
                result: Err(trap),
                data: data.to_vec(),
                ctx: None,
                meta: None,
                skb: None,
                redirect: None,
                clones: Vec::new(),
                tunnel: None,
                memory: Vec::new(),
                duration_ns,
                perf_lost,
                signals: Vec::new(),
                trace,
            },
        }
    }
}
