//! A batch of runs of one program over many packets, set up once: the runs share one run space
//! (`run_space`: stack area, region and map tables, context buffer, XDP frame) and the clock, as
//! the kernel's `BPF_PROG_TEST_RUN` repeat loop shares its set-up. Packets are read where they lie
//! (XDP and tc copy them into their frame, socket filters map them read-only); only a raw program,
//! which writes its data in place, gets a copy (in one buffer for the batch). Each packet still runs on memory as fresh as a single run's (the preparers
//! zero what a run can read), so a packet's outcome is the one `Program::run_with_context` gives.
//! Both engines take this path; the binding's `runBatch`, `runBatchRetvals` and `filterPcap` call
//! it once per batch, with nothing per packet on the JavaScript side.

use std::borrow::Cow;
use std::time::Instant;

use crate::context::{AddressSpace, ContextInput, ContextOutput, ProcessInfo, RunData};
use crate::error::{ErrorCode, LoadError, Trap};
use crate::limits::RunLimits;
use crate::program::{Outputs, Program, ProgramType, RunHow, XdpBatchShared, XdpPackets};
use crate::run_space::with_run_space;
use crate::vm::RunOutput;

/// The inputs of a batch: the packets, concatenated, and what every run shares.
#[derive(Clone, Debug, Default)]
pub struct BatchInput<'a> {
    /// The packets one after the other, `lengths[i]` bytes each (they must add up); or, with
    /// `offsets`, anywhere in this buffer.
    pub packets: &'a [u8],
    pub lengths: &'a [u32],
    /// Where each packet starts in `packets` (one per packet), when they are not back to back:
    /// the records of a capture run where they lie, their headers between them.
    pub offsets: Option<&'a [usize]>,
    /// Socket filters: each packet's length on the wire, its `__sk_buff.len` where larger than
    /// the packet (a capture cut to its snap length); one per packet.
    pub wire_lengths: Option<&'a [u32]>,
    /// The context image of every run (see `ContextInput::ctx`).
    pub ctx: Option<&'a [u8]>,
    pub process: ProcessInfo,
    pub memory: Option<&'a AddressSpace>,
    /// tc and XDP: the interfaces and routes of every run (see `context::net`).
    pub network: Option<&'a std::sync::Arc<crate::context::net::Network>>,
    /// tc: the tunnel metadata every packet arrives with (see `context::tunnel`).
    pub tunnel: Option<crate::context::tunnel::TunnelInfo>,
    pub budget: Option<u64>,
    /// Deadline and cancellation of the whole batch.
    pub limits: RunLimits,
    /// Only r0 is wanted: no context output is made (the packet, context and metadata are not
    /// copied out of the run's memory) and runs are not timed one by one.
    pub r0_only: bool,
    /// Packets that lie in order in `packets` (a capture's records, with `offsets`): before each
    /// run of `run_batch_r0`, ask the cache for `packets` up to this many bytes past the packet's
    /// start (0: none). Interleaved with the runs, the fetches of the packets ahead overlap the
    /// runs instead of stalling a walk that comes first.
    pub prefetch_ahead: usize,
}

/// One packet's run, as the batch hands it to its consumer.
pub struct BatchRun<'a> {
    pub index: usize,
    /// The run's output and the context after it (empty with `r0_only`), or its trap.
    pub result: Result<(RunOutput, ContextOutput), Trap>,
    /// The data as the run left it (a raw program may write it; for the other types the packet
    /// as given: XDP and tc hand back theirs in the context output).
    pub data: &'a [u8],
    /// Nanoseconds of this run (0 with `r0_only`).
    pub duration_ns: f64,
    /// `bpf_perf_event_output` records this run dropped.
    pub perf_lost: u64,
}

impl<'a> BatchRun<'a> {
    /// A run of an `r0_only` batch: no context output, no duration, nothing dropped.
    fn r0_only(index: usize, data: &'a [u8], result: Result<RunOutput, Trap>) -> Self {
        BatchRun {
            index,
            result: result.map(|out| (out, ContextOutput::default())),
            data,
            duration_ns: 0.0,
            perf_lost: 0,
        }
    }
}

/// What a whole batch took.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BatchSummary {
    pub runs: usize,
    /// Wall time of the whole loop, one clock reading at each end (as the kernel's repeat loop
    /// measures), in nanoseconds.
    pub duration_ns: f64,
}

impl Program {
    /// Runs every packet of `input` in order and hands each run to `each`; a trap ends only its
    /// own packet's run. EINVAL when the lengths do not add up to the packets' bytes or the wire
    /// lengths are not one per packet.
    pub fn run_batch(
        &self,
        input: &BatchInput<'_>,
        mut each: impl FnMut(BatchRun<'_>),
    ) -> Result<BatchSummary, LoadError> {
        check_packets(input)?;
        check_wire_lengths(input)?;
        let outputs = if input.r0_only {
            Outputs::R0
        } else {
            Outputs::All
        };
        // `len` is the first field of `struct __sk_buff`: a wire length replaces it in a copy of
        // the context image (or in an image of that field alone).
        let mut image = input.ctx.map(<[u8]>::to_vec).unwrap_or_default();
        if image.len() < 4 {
            image.resize(4, 0);
        }
        let mut data = Vec::new();
        let in_place = self.prog_type() == ProgramType::Raw;
        let starts = starts(input);
        let packet = |i: usize| &input.packets[starts[i]..][..input.lengths[i] as usize];
        let wire = |i: usize| input.wire_lengths.map_or(0, |w| w[i]);
        let start = Instant::now();
        if input.r0_only && self.runs_straight(input.ctx) {
            let runs = self.straight_batch(input, &starts, |index, data, result| {
                each(BatchRun::r0_only(index, data, result))
            });
            return Ok(BatchSummary {
                runs,
                duration_ns: start.elapsed().as_nanos() as f64,
            });
        }
        if input.r0_only && self.takes_xdp_batch(input) {
            self.xdp_batch(input, &starts, |index, result| {
                each(BatchRun::r0_only(index, packet(index), result))
            });
            return Ok(BatchSummary {
                runs: input.lengths.len(),
                duration_ns: start.elapsed().as_nanos() as f64,
            });
        }
        with_run_space(|space| {
            for index in 0..input.lengths.len() {
                let len = input.lengths[index];
                let packet = packet(index);
                // Only a raw program writes its data in place: it runs on a copy, the other types
                // read the packet where it is.
                let run_data = if in_place {
                    data.clear();
                    data.extend_from_slice(packet);
                    RunData::Writable(&mut data)
                } else {
                    RunData::ReadOnly(packet)
                };
                let wire = wire(index);
                let ctx = if wire > len {
                    image[..4].copy_from_slice(&wire.to_le_bytes());
                    Some(&image[..input.ctx.map_or(4, |c| c.len().max(4))])
                } else {
                    input.ctx
                };
                // A batch's packets have no socket and read the clock for jiffies64.
                let cx = ContextInput {
                    ctx,
                    process: input.process,
                    socket: None,
                    jiffies: None,
                    memory: input.memory,
                    network: input.network,
                    tunnel: input.tunnel,
                };
                let t0 = (!input.r0_only).then(Instant::now);
                // Runs too short to reach a check of their own still end at the limits.
                let (result, perf_lost) = match input.limits.check(0, 0) {
                    Err(trap) => (Err(trap), 0),
                    Ok(()) => {
                        let how = RunHow {
                            budget: input.budget,
                            trace: None,
                            outputs,
                        };
                        let (result, lost, _) =
                            self.run_on(space, run_data, &cx, &input.limits, how);
                        (result, lost)
                    }
                };
                let duration_ns = t0.map_or(0.0, |t| t.elapsed().as_nanos() as f64);
                each(BatchRun {
                    index,
                    result,
                    data: if in_place { &data } else { packet },
                    duration_ns,
                    perf_lost,
                });
            }
        });
        Ok(BatchSummary {
            runs: input.lengths.len(),
            duration_ns: start.elapsed().as_nanos() as f64,
        })
    }

    /// Only the return values: runs every packet of `input` as `run_batch` with `r0_only` does
    /// and hands each run's output or trap to `each`, with no `BatchRun` made per packet (the
    /// per-packet cost of `filterPcap`'s fast road and `runBatchRetvals`).
    pub fn run_batch_r0(
        &self,
        input: &BatchInput<'_>,
        mut each: impl FnMut(usize, Result<RunOutput, Trap>),
    ) -> Result<BatchSummary, LoadError> {
        // A verified XDP program's batch, with no `BatchRun` made and dropped per packet.
        if self.takes_xdp_batch(input) {
            check_packets(input)?;
            let starts = starts(input);
            let start = Instant::now();
            self.xdp_batch(input, &starts, each);
            return Ok(BatchSummary {
                runs: input.lengths.len(),
                duration_ns: start.elapsed().as_nanos() as f64,
            });
        }
        if !self.runs_straight(input.ctx) {
            let input = BatchInput {
                r0_only: true,
                ..input.clone()
            };
            return self.run_batch(&input, |run| {
                each(run.index, run.result.map(|(out, _)| out))
            });
        }
        check_packets(input)?;
        check_wire_lengths(input)?;
        let starts = starts(input);
        let start = Instant::now();
        let runs = self.straight_batch(input, &starts, |index, _, result| each(index, result));
        Ok(BatchSummary {
            runs,
            duration_ns: start.elapsed().as_nanos() as f64,
        })
    }

    /// Whether the runs of `input` (r0 only) can take `run_xdp_batch`: a verified XDP program,
    /// and no context image, address space, tunnel nor wire lengths.
    fn takes_xdp_batch(&self, input: &BatchInput<'_>) -> bool {
        let plain = input.ctx.is_none()
            && input.memory.is_none()
            && input.tunnel.is_none()
            && input.wire_lengths.is_none();
        self.runs_xdp_batch(input.lengths, plain)
    }

    /// The runs of a batch that `takes_xdp_batch` (`program/xdp_batch.rs`), packet `i` at
    /// `starts[i]`.
    fn xdp_batch(
        &self,
        input: &BatchInput<'_>,
        starts: &[usize],
        each: impl FnMut(usize, Result<RunOutput, Trap>),
    ) {
        let packets = XdpPackets::new(input.packets, input.lengths, starts);
        let shared = XdpBatchShared {
            process: input.process,
            network: input.network,
            budget: input.budget,
            limits: &input.limits,
        };
        with_run_space(|space| {
            self.run_xdp_batch(space, packets, &shared, each);
        });
    }

    /// The runs of a batch of a program that `runs_straight` (`program/straight.rs`), packet `i`
    /// at `starts[i]`; the number of runs.
    fn straight_batch<'p>(
        &self,
        input: &BatchInput<'p>,
        starts: &[usize],
        mut each: impl FnMut(usize, &'p [u8], Result<RunOutput, Trap>),
    ) -> usize {
        let packets = input.packets;
        // The first byte not yet asked for (see `BatchInput::prefetch_ahead`).
        let fetched = std::cell::Cell::new(starts.first().copied().unwrap_or(0));
        let packet = |i: usize| {
            if input.prefetch_ahead != 0 {
                let ahead = (starts[i] + input.prefetch_ahead).min(packets.len());
                let mut at = fetched.get();
                while at < ahead {
                    prefetch(packets[at..].as_ptr());
                    at += 64;
                }
                fetched.set(at);
            }
            &packets[starts[i]..][..input.lengths[i] as usize]
        };
        let wire = |i: usize| input.wire_lengths.map_or(0, |w| w[i]);
        let runs = input.lengths.len();
        with_run_space(|space| {
            let run = |i: usize| (packet(i), wire(i));
            self.run_straight(space, runs, run, input.ctx, &input.limits, input.budget, {
                |index, data, result| each(index, data, result)
            });
        });
        runs
    }
}

/// Asks the cache for the line at `p` (a hint: it never faults).
#[inline(always)]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch has no effect on memory and never faults.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Where packet i starts: its offset, or the sum of the lengths before it.
fn starts<'a>(input: &BatchInput<'a>) -> Cow<'a, [usize]> {
    match input.offsets {
        Some(o) => Cow::Borrowed(o),
        None => (input.lengths.iter())
            .scan(0usize, |at, &len| {
                let start = *at;
                *at += len as usize;
                Some(start)
            })
            .collect::<Vec<_>>()
            .into(),
    }
}

/// EINVAL when the wire lengths are not one per packet.
fn check_wire_lengths(input: &BatchInput<'_>) -> Result<(), LoadError> {
    match input.wire_lengths {
        Some(w) if w.len() != input.lengths.len() => Err(LoadError::new(
            ErrorCode::Einval,
            format!(
                "{} wire lengths for {} packets",
                w.len(),
                input.lengths.len()
            ),
        )),
        _ => Ok(()),
    }
}

/// EINVAL when the packets do not lie in the buffer as the lengths (and offsets) say: lengths
/// that do not add up to the buffer's bytes, or offsets that are not one per packet or place a
/// packet past the buffer's end.
fn check_packets(input: &BatchInput<'_>) -> Result<(), LoadError> {
    let einval = |message: String| Err(LoadError::new(ErrorCode::Einval, message));
    let size = input.packets.len() as u64;
    let Some(offsets) = input.offsets else {
        let total: u64 = input.lengths.iter().map(|&l| l as u64).sum();
        if total != size {
            return einval(format!(
                "packet lengths add up to {total} bytes, the packets have {size}"
            ));
        }
        return Ok(());
    };
    if offsets.len() != input.lengths.len() {
        return einval(format!(
            "{} offsets for {} packets",
            offsets.len(),
            input.lengths.len()
        ));
    }
    for (i, (&at, &len)) in offsets.iter().zip(input.lengths).enumerate() {
        if at as u64 + len as u64 > size {
            return einval(format!(
                "packet {i} of {len} bytes at offset {at} runs past the {size} bytes given"
            ));
        }
    }
    Ok(())
}
