//! `bpf_get_stackid` (27) and `bpf_get_stack` (67), tracing programs' stack helpers, with Linux
//! 6.18's semantics (kernel/bpf/stackmap.c). The callchain is the one the caller gave the run
//! (`AddressSpace::stack`: the kernel stack, or the user stack with `BPF_F_USER_STACK`), innermost
//! frame first, where the kernel would walk the task's stack; no stack given is an empty
//! callchain. The callchain is taken as deep as the kernel takes it (the value's or buffer's
//! entries plus the skipped ones, at most `sysctl_perf_event_max_stack` = 127).
//!
//! - `bpf_get_stackid(ctx, map, flags)`: the id of the stack in the `stack_trace` map (see
//!   `maps::stack_trace` for ids, EEXIST, ENOMEM and the flags); -EFAULT when the skip (flags bits
//!   0-7) leaves nothing; -EINVAL for unknown flags.
//! - `bpf_get_stack(ctx, buf, size, flags)`: copies the stack into `buf`, zeroes the rest, and
//!   returns the bytes copied; on an error the whole buffer is zeroed (-EINVAL for unknown flags or
//!   a size not a multiple of the entry, -EFAULT when the skip is past the callchain).

use crate::maps::stack_trace::{self, StackTraceMap, BPF_F_USER_STACK};

use super::{HelperContext, HelperError, HelperTable};

pub const BPF_GET_STACKID: u32 = 27;
pub const BPF_GET_STACK: u32 = 67;

fn get_stackid(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let map = cx.maps.resolve(a[1]).ok_or_else(|| {
        HelperError(format!(
            "bpf_get_stackid: 0x{:x} is no map of the program",
            a[1]
        ))
    })?;
    let Some(stacks) = map.downcast::<StackTraceMap>() else {
        return Err(HelperError(format!(
            "bpf_get_stackid cannot be used on {} maps",
            map.common().def.map_type.name()
        )));
    };
    let flags = a[2];
    let trace = cx.state.address_space.stack(flags & BPF_F_USER_STACK != 0);
    Ok(stacks.get_stackid(trace, flags) as u64)
}

fn get_stack(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (buf, size, flags) = (a[1], a[2] as u32, a[3]);
    let space = cx.state.address_space.clone();
    let trace = space.stack(flags & BPF_F_USER_STACK != 0);
    let (bytes, ret) = stack_trace::get_stack(trace, size, flags);
    if size > 0 {
        let dst = cx.regions.slice_mut(buf, size as u64).map_err(|_| {
            HelperError(format!(
                "buf ({}, {size} bytes) is not writable memory",
                cx.describe(buf)
            ))
        })?;
        dst.copy_from_slice(&bytes);
    }
    Ok(ret as u64)
}

pub fn register(table: &mut HelperTable) {
    table.register_kernel(BPF_GET_STACKID, "bpf_get_stackid", get_stackid);
    table.register_kernel(BPF_GET_STACK, "bpf_get_stack", get_stack);
}
