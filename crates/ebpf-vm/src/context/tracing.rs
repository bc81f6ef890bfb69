//! Tracing programs (kprobe, tracepoint, raw tracepoint, fentry style): r1 points to context bytes
//! the caller supplies (`pt_regs`, a tracepoint record, an argument array ...), laid out as the
//! caller's C struct. They are copied into an 8-byte aligned buffer and are read-only, as the kernel
//! gives these program types no writable context. No packet. The caller's memory images
//! (`ContextInput::memory`) are the address space the probe-read helpers read.
//!
//! Tracepoint and raw tracepoint programs have a context of a fixed size, the most the kernel's
//! verifier lets them read (`verifier::ctx_access`): the caller's bytes are zero-extended to it,
//! and more bytes than it holds are refused, so every read the verifier allows is inside the
//! buffer.

use crate::error::Trap;
use crate::memory::{Region, Regions};

use super::Entry;
use crate::run_state::{OwnedBuf, RunState};

/// `PERF_MAX_TRACE_SIZE` (include/linux/trace_events.h, 6.18): a tracepoint program may read
/// its record below this offset (the kernel does not know the record's size at load).
pub const PERF_MAX_TRACE_SIZE: u32 = 8192;

/// `MAX_BPF_FUNC_ARGS`: a raw tracepoint's context is at most this many u64 arguments.
pub const MAX_BPF_FUNC_ARGS: u32 = 12;

/// The context of a tracepoint program: a record the kernel lets it read up to
/// `PERF_MAX_TRACE_SIZE`.
pub const TRACEPOINT_CTX_SIZE: u32 = PERF_MAX_TRACE_SIZE;

/// The context of a raw tracepoint program: its u64 arguments, 12 at most.
pub const RAW_TRACEPOINT_CTX_SIZE: u32 = MAX_BPF_FUNC_ARGS * 8;

/// `size`: the context's fixed size, if the type has one (the caller's bytes are zero-extended
/// to it; more are refused).
pub(crate) fn prepare(
    ctx_in: Option<&[u8]>,
    size: Option<u32>,
    state: &mut RunState,
    regions: &mut Regions,
) -> Result<Entry, Trap> {
    let bytes = ctx_in.unwrap_or(&[]);
    let len = match size {
        Some(size) if bytes.len() > size as usize => {
            return Err(Trap::invalid_input(format!(
                "the context is {} bytes; this program type's context has {size}",
                bytes.len()
            )))
        }
        Some(size) => size as usize,
        None => bytes.len(),
    };
    let ctx = OwnedBuf::zeroed_from(state.spare_ctx.take(), len);
    ctx.write(0, bytes);
    regions.push_context(Region::new(ctx.addr, len as u64, false));
    state.ctx_addr = ctx.addr;
    state.ctx = Some(ctx);
    Ok(Entry {
        args: [state.ctx_addr, 0, 0, 0, 0],
        packet: (0, 0),
    })
}
