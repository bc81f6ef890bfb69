//! A batch's results as JavaScript gets them: one typed array or buffer per field, entry `i` of
//! each belonging to packet `i`, so that a batch of any size costs a handful of JavaScript values
//! (a list of numbers per field would be one N-API call per packet and field).

use ebpf_vm::{BatchInput, BatchRun, Program, TestRunInput, Trap};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::errors::{einval, Code};
use crate::NativeError;

/// The results of a batch, packed: entry `i` of each array belongs to packet `i`.
#[napi(object)]
pub struct NativeBatch {
    /// r0 of each run (0 where the run trapped).
    pub r0: BigUint64Array,
    /// Instructions executed by each run.
    pub insn_counts: Float64Array,
    /// Nanoseconds of each run.
    pub durations: Float64Array,
    /// The data each run left, concatenated, `data_lengths[i]` bytes each.
    pub data: Buffer,
    pub data_lengths: Uint32Array,
    /// Context images, concatenated (empty when the type has none).
    pub ctx: Buffer,
    pub ctx_lengths: Uint32Array,
    /// XDP metadata, concatenated.
    pub meta: Buffer,
    pub meta_lengths: Uint32Array,
    /// tc: each run's whole `__sk_buff` (`RunResult.skb`), concatenated (empty for other types).
    pub skb: Buffer,
    pub skb_lengths: Uint32Array,
    /// tc: each run's redirect target and flags; flags -1 where the run redirected nowhere.
    pub redirect_ifindexes: Uint32Array,
    pub redirect_flags: Int32Array,
    /// The runs that trapped.
    pub errors: Vec<NativeBatchError>,
}

#[napi(object)]
pub struct NativeBatchError {
    pub index: u32,
    pub error: NativeError,
}

/// A batch's results as they are gathered, run by run (on any thread: no JavaScript values yet).
#[derive(Default)]
pub struct PackedRuns {
    r0: Vec<u64>,
    insn_counts: Vec<f64>,
    durations: Vec<f64>,
    data: Vec<u8>,
    data_lengths: Vec<u32>,
    ctx: Vec<u8>,
    ctx_lengths: Vec<u32>,
    meta: Vec<u8>,
    meta_lengths: Vec<u32>,
    skb: Vec<u8>,
    skb_lengths: Vec<u32>,
    redirect_ifindexes: Vec<u32>,
    redirect_flags: Vec<i32>,
    errors: Vec<(u32, Trap)>,
}

impl PackedRuns {
    /// Room for `count` runs whose packets have `bytes` bytes in all.
    fn with_capacity(count: usize, bytes: usize) -> Self {
        PackedRuns {
            r0: Vec::with_capacity(count),
            insn_counts: Vec::with_capacity(count),
            durations: Vec::with_capacity(count),
            data: Vec::with_capacity(bytes),
            data_lengths: Vec::with_capacity(count),
            ctx_lengths: Vec::with_capacity(count),
            meta_lengths: Vec::with_capacity(count),
            skb_lengths: Vec::with_capacity(count),
            redirect_ifindexes: Vec::with_capacity(count),
            redirect_flags: Vec::with_capacity(count),
            ..PackedRuns::default()
        }
    }

    /// Appends one run: what it returned and left, or (trapped) r0 0, the packet as it came in
    /// and its trap.
    fn push(&mut self, run: BatchRun<'_>) {
        let (r0, insn_count, cx) = match run.result {
            Ok((out, cx)) => (out.r0, out.insn_count, Some(cx)),
            Err(trap) => {
                let insn_count = trap.insn_count;
                self.errors.push((run.index as u32, trap));
                (0, insn_count, None)
            }
        };
        self.r0.push(r0);
        self.insn_counts.push(insn_count as f64);
        self.durations.push(run.duration_ns);
        let cx = cx.unwrap_or_default();
        // XDP and tc hand back their packet in the context output; the other types leave the
        // data as `run.data` has it.
        let data = cx.packet.as_deref().unwrap_or(run.data);
        append(&mut self.data, &mut self.data_lengths, data);
        append(
            &mut self.ctx,
            &mut self.ctx_lengths,
            cx.ctx.as_deref().unwrap_or_default(),
        );
        append(
            &mut self.meta,
            &mut self.meta_lengths,
            cx.meta.as_deref().unwrap_or_default(),
        );
        append(
            &mut self.skb,
            &mut self.skb_lengths,
            cx.skb.as_deref().unwrap_or_default(),
        );
        self.redirect_ifindexes
            .push(cx.redirect.as_ref().map_or(0, |r| r.ifindex));
        self.redirect_flags
            .push(cx.redirect.as_ref().map_or(-1, |r| r.flags as i32));
    }

    /// The JavaScript values (on the JavaScript thread): the vectors are handed over, not copied.
    pub fn into_js(self) -> NativeBatch {
        NativeBatch {
            r0: BigUint64Array::new(self.r0),
            insn_counts: Float64Array::new(self.insn_counts),
            durations: Float64Array::new(self.durations),
            data: self.data.into(),
            data_lengths: Uint32Array::new(self.data_lengths),
            ctx: self.ctx.into(),
            ctx_lengths: Uint32Array::new(self.ctx_lengths),
            meta: self.meta.into(),
            meta_lengths: Uint32Array::new(self.meta_lengths),
            skb: self.skb.into(),
            skb_lengths: Uint32Array::new(self.skb_lengths),
            redirect_ifindexes: Uint32Array::new(self.redirect_ifindexes),
            redirect_flags: Int32Array::new(self.redirect_flags),
            errors: (self.errors.into_iter())
                .map(|(index, trap)| NativeBatchError {
                    index,
                    error: trap.into(),
                })
                .collect(),
        }
    }
}

/// Appends `part` to `all` and its length to `lengths`.
fn append(all: &mut Vec<u8>, lengths: &mut Vec<u32>, part: &[u8]) {
    all.extend_from_slice(part);
    lengths.push(part.len() as u32);
}

/// `EINVAL` unless `lengths` add up to the `total` bytes of the packets.
pub fn check_lengths(total: usize, lengths: &[u32]) -> Result<(), Code> {
    let sum: u64 = lengths.iter().map(|&l| l as u64).sum();
    if sum != total as u64 {
        return Err(einval(format!(
            "packet lengths add up to {sum} bytes, the packets have {total}"
        )));
    }
    Ok(())
}

/// Runs each packet of `packets` (`lengths[i]` bytes each, checked by `check_lengths`) in order,
/// with the other inputs of `input`, as one batch of the engine (`Program::run_batch`), and packs
/// each run's results as it ends. A batch records no traces (one per packet would be a trace per
/// run of a whole capture).
pub fn run_packets(
    program: &Program,
    packets: &[u8],
    lengths: &[u32],
    input: &TestRunInput,
) -> Result<PackedRuns, Code> {
    let batch = BatchInput {
        packets,
        lengths,
        offsets: None,
        wire_lengths: None,
        ctx: input.ctx.as_deref(),
        process: input.process,
        memory: Some(&input.memory),
        network: input.network.as_ref(),
        tunnel: input.tunnel,
        budget: input.budget,
        limits: input.limits.clone(),
        r0_only: false,
        prefetch_ahead: 0,
    };
    let mut runs = PackedRuns::with_capacity(lengths.len(), packets.len());
    program
        .run_batch(&batch, |run| runs.push(run))
        .map_err(|e| einval(e.message))?;
    Ok(runs)
}
