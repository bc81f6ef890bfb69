//! `bpf_perf_event_output` (25): writes a record into the `perf_event_array` map the program
//! names (`maps::perf_event_array`: the slot of the index, or of the running CPU for
//! `BPF_F_CURRENT_CPU`; E2BIG past the end, ENOENT with no ring open there, EOPNOTSUPP for a ring
//! of another CPU, ENOSPC when it is full), and hands it to the embedder's `PerfSink` too, when the
//! program has one (the `onPerfEvent` shortcut, which takes records whatever the map and reports
//! index 0 for `BPF_F_CURRENT_CPU`), on the running thread, before the helper returns. The result
//! is the ring's, or the sink's when no ring is open at the slot. Flags as in the kernel: the low 32 bits are the perf event
//! array index or `BPF_F_CURRENT_CPU`; for socket filters and XDP the bits 32-51
//! (`BPF_F_CTXLEN_MASK`) ask for that many packet bytes to be appended (-EFAULT when the packet is
//! shorter); any other bit is -EINVAL. Neither ring nor sink: -ENOENT (an empty perf event array
//! slot). A record that does not fit in what is left of the run's perf buffer of the sink is
//! dropped and counted as lost: -ENOSPC (see `output`).

use crate::maps::perf_event_array::PerfEventArray;
use crate::vm::ProgramType;

use super::output::{perf_record_bytes, PerfRecord};
use super::packet::require_ctx;
use super::{HelperContext, HelperError, HelperTable};
use crate::vm::errno::{EFAULT, EINVAL, ENOENT, ENOSPC};

pub const BPF_PERF_EVENT_OUTPUT: u32 = 25;

pub const BPF_F_INDEX_MASK: u64 = 0xffff_ffff;
pub const BPF_F_CURRENT_CPU: u64 = BPF_F_INDEX_MASK;
pub const BPF_F_CTXLEN_MASK: u64 = 0xfffff << 32;

fn perf_event_output(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    require_ctx(cx, a[0])?;
    let (map, flags, data, size) = (a[1], a[2], a[3], a[4]);
    let has_packet = match cx.state.prog_type {
        ProgramType::SocketFilter | ProgramType::Tc | ProgramType::CgroupSkb => true,
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
    let mut bytes = cx.readable(data, size, "data")?.to_vec();
    let ctx_len = (flags & BPF_F_CTXLEN_MASK) >> 32;
    if has_packet && ctx_len > 0 {
        let Some(head) = packet_head(cx, ctx_len)? else {
            return Ok((-EFAULT) as u64);
        };
        bytes.extend_from_slice(&head);
    }
    cx.refuse_leaked_words("bpf_perf_event_output: the record's", &bytes)?;
    // Into the perf event array the program named, when a consumer opened the slot.
    let array = cx.maps.resolve(map);
    let ring_result = match array.as_ref().and_then(|m| m.downcast::<PerfEventArray>()) {
        Some(array) => {
            let cpu = cx.maps.cpu() as u32;
            let index = match flags & BPF_F_INDEX_MASK {
                BPF_F_CURRENT_CPU => cpu,
                i => i as u32,
            };
            Some(array.output(cpu, index, &bytes))
        }
        None => None,
    };
    // The program's own sink (the `onPerfEvent` shortcut) hears of every record besides.
    let index = match flags & BPF_F_INDEX_MASK {
        BPF_F_CURRENT_CPU => 0,
        i => i as u32,
    };
    let sink_result = sink_output(cx, map, index, bytes);
    Ok(match (ring_result, sink_result) {
        (Some(r), Some(s)) if r == -ENOENT => s,
        (Some(r), _) => r,
        (None, Some(s)) => s,
        (None, None) => -ENOENT,
    } as u64)
}

/// Hands the record to the program's `PerfSink`, if it has one: 0, or -ENOSPC when the run's perf
/// budget is spent or the sink dropped it.
fn sink_output(cx: &mut HelperContext<'_>, map: u64, index: u32, data: Vec<u8>) -> Option<i64> {
    let output = cx.state.output.clone()?;
    let sink = output.perf_sink.as_ref()?;
    let record = perf_record_bytes(data.len() as u64);
    if cx.state.perf_bytes + record > output.perf_buffer_bytes {
        cx.state.perf_lost += 1;
        sink.lost(1);
        return Some(-ENOSPC);
    }
    let delivered = sink.deliver(&PerfRecord { map, index, data });
    if !delivered {
        cx.state.perf_lost += 1;
        return Some(-ENOSPC);
    }
    cx.state.perf_bytes += record;
    Some(0)
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
