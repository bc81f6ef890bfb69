//! Tracing programs (kprobe, tracepoint, raw tracepoint, fentry style): r1 points to context bytes
//! the caller supplies (`pt_regs`, a tracepoint record, an argument array ...), laid out as the
//! caller's C struct. They are copied into an 8-byte aligned buffer and are read-only, as the kernel
//! gives these program types no writable context. No packet. The caller's memory images
//! (`ContextInput::memory`) are the address space the probe-read helpers read.

use crate::error::Trap;
use crate::memory::{Region, Regions};

use super::run_state::{OwnedBuf, RunState};
use super::Entry;

pub(crate) fn prepare(
    ctx_in: Option<&[u8]>,
    state: &mut RunState,
    regions: &mut Regions,
) -> Result<Entry, Trap> {
    let bytes = ctx_in.unwrap_or(&[]);
    let ctx = OwnedBuf::zeroed_from(state.spare_ctx.take(), bytes.len());
    ctx.write(0, bytes);
    regions.push(Region::new(ctx.addr, bytes.len() as u64, false));
    state.ctx_addr = ctx.addr;
    state.ctx = Some(ctx);
    Ok(Entry {
        args: [state.ctx_addr, 0, 0, 0, 0],
        packet: (0, 0),
    })
}
