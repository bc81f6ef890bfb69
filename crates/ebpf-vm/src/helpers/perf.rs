//! `bpf_perf_event_output` (25): hands a record to the embedder's `PerfSink`, on the running
//! thread, before the helper returns. Flags as in the kernel: the low 32 bits are the perf event
//! array index or `BPF_F_CURRENT_CPU`; for socket filters and XDP the bits 32-51
//! (`BPF_F_CTXLEN_MASK`) ask for that many packet bytes to be appended (-EFAULT when the packet is
//! shorter); any other bit is -EINVAL. No sink: -ENOENT (an empty perf event array slot). A record
//! that does not fit in what is left of the run's perf buffer is dropped and counted as lost:
//! -ENOSPC (see `output`).

use crate::program::ProgramType;

use super::output::{perf_record_bytes, PerfRecord};
use super::packet::require_ctx;
use super::{HelperContext, HelperError, HelperTable};

pub const BPF_PERF_EVENT_OUTPUT: u32 = 25;

pub const BPF_F_INDEX_MASK: u64 = 0xffff_ffff;
pub const BPF_F_CURRENT_CPU: u64 = BPF_F_INDEX_MASK;
pub const BPF_F_CTXLEN_MASK: u64 = 0xfffff << 32;

const ENOENT: i64 = 2;
const EFAULT: i64 = 14;
const EINVAL: i64 = 22;
const ENOSPC: i64 = 28;

fn perf_event_output(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    require_ctx(cx, a[0])?;
    let (map, flags, data, size) = (a[1], a[2], a[3], a[4]);
    let has_packet = match cx.state.prog_type {
        ProgramType::SocketFilter | ProgramType::Tc => true,
        ProgramType::Xdp => cx.state.xdp.is_some(),
        _ => false,
    };
    let allowed = if has_packet {
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
    if has_packet && ctx_len > 0 {
        let Some(head) = packet_head(cx, ctx_len)? else {
            return Ok((-EFAULT) as u64);
        };
        bytes.extend_from_slice(&head);
    }
    cx.refuse_leaked_words("bpf_perf_event_output: the record's", &bytes)?;
    let index = match flags & BPF_F_INDEX_MASK {
        BPF_F_CURRENT_CPU => 0,
        i => i as u32,
    };
    let Some(output) = cx.state.output.clone() else {
        return Ok((-ENOENT) as u64);
    };
    let Some(sink) = &output.perf_sink else {
        return Ok((-ENOENT) as u64);
    };
    let record = perf_record_bytes(bytes.len() as u64);
    if cx.state.perf_bytes + record > output.perf_buffer_bytes {
        cx.state.perf_lost += 1;
        sink.lost(1);
        return Ok((-ENOSPC) as u64);
    }
    let delivered = sink.deliver(&PerfRecord {
        map,
        index,
        data: bytes,
    });
    if !delivered {
        cx.state.perf_lost += 1;
        return Ok((-ENOSPC) as u64);
    }
    cx.state.perf_bytes += record;
    Ok(0)
}

/// The first `n` bytes of the run's packet, `None` when it is shorter. XDP: across the linear part
/// and the fragments, as the kernel's `bpf_xdp_copy` (bounded by `xdp_get_buff_len`).
fn packet_head(cx: &HelperContext<'_>, n: u64) -> Result<Option<Vec<u8>>, HelperError> {
    if let Some(frame) = &cx.state.xdp {
        return Ok(frame.read_packet(0, n));
    }
    let (pkt, pkt_len) = cx.state.skb_packet;
    if n > pkt_len {
        return Ok(None);
    }
    cx.regions
        .slice(pkt, n)
        .map(|b| Some(b.to_vec()))
        .map_err(|_| HelperError("the packet is not readable memory".into()))
}

pub fn register(table: &mut HelperTable) {
    table.register_kernel(
        BPF_PERF_EVENT_OUTPUT,
        "bpf_perf_event_output",
        perf_event_output,
    );
}
