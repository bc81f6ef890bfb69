//! `bpf_perf_event_output` (25): hands a record to the embedder's `PerfSink`, on the running
//! thread, before the helper returns. Flags as in the kernel: the low 32 bits are the perf event
//! array index or `BPF_F_CURRENT_CPU`; for socket filters and XDP the bits 32-51
//! (`BPF_F_CTXLEN_MASK`) ask for that many packet bytes to be appended (-EFAULT when the packet is
//! shorter); any other bit is -EINVAL. No sink: -ENOENT (an empty perf event array slot).

use crate::program::ProgramType;

use super::output::PerfRecord;
use super::packet::require_ctx;
use super::{HelperContext, HelperError, HelperTable};

pub const BPF_PERF_EVENT_OUTPUT: u32 = 25;

pub const BPF_F_INDEX_MASK: u64 = 0xffff_ffff;
pub const BPF_F_CURRENT_CPU: u64 = BPF_F_INDEX_MASK;
pub const BPF_F_CTXLEN_MASK: u64 = 0xfffff << 32;

const ENOENT: i64 = 2;
const EFAULT: i64 = 14;
const EINVAL: i64 = 22;

fn perf_event_output(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    require_ctx(cx, a[0])?;
    let (map, flags, data, size) = (a[1], a[2], a[3], a[4]);
    let packet = match cx.state.prog_type {
        ProgramType::SocketFilter => Some(cx.state.skb_packet),
        ProgramType::Xdp => cx.state.xdp.as_ref().map(|f| (f.data, f.data_end - f.data)),
        _ => None,
    };
    let allowed = if packet.is_some() {
        BPF_F_INDEX_MASK | BPF_F_CTXLEN_MASK
    } else {
        BPF_F_INDEX_MASK
    };
    if flags & !allowed != 0 {
        return Ok((-EINVAL) as u64);
    }
    let mut bytes = if size == 0 {
        Vec::new()
    } else {
        cx.regions
            .slice(data, size)
            .map_err(|_| {
                HelperError(format!(
                    "data ({}, {size} bytes) is not readable memory",
                    cx.describe(data)
                ))
            })?
            .to_vec()
    };
    let ctx_len = (flags & BPF_F_CTXLEN_MASK) >> 32;
    if let (Some((pkt, pkt_len)), true) = (packet, ctx_len > 0) {
        if ctx_len > pkt_len {
            return Ok((-EFAULT) as u64);
        }
        let tail = cx
            .regions
            .slice(pkt, ctx_len)
            .map_err(|_| HelperError("the packet is not readable memory".into()))?;
        bytes.extend_from_slice(tail);
    }
    cx.refuse_leaked_words("bpf_perf_event_output: the record's", &bytes)?;
    let index = match flags & BPF_F_INDEX_MASK {
        BPF_F_CURRENT_CPU => 0,
        i => i as u32,
    };
    let Some(sink) = cx.state.output.as_ref().and_then(|o| o.perf_sink.clone()) else {
        return Ok((-ENOENT) as u64);
    };
    (sink.0)(&PerfRecord {
        map,
        index,
        data: bytes,
    });
    Ok(0)
}

pub fn register(table: &mut HelperTable) {
    table.register(
        BPF_PERF_EVENT_OUTPUT,
        "bpf_perf_event_output",
        perf_event_output,
    );
}
