//! The task identity helpers of tracing programs: `bpf_get_current_pid_tgid` (14),
//! `bpf_get_current_uid_gid` (15), `bpf_get_current_comm` (16). The values come from the run's
//! `ProcessInfo` (`RunInput::process`), so tests can set them; by default they are 0 and "".

use super::{HelperContext, HelperError, HelperTable};
use crate::vm::errno::EINVAL;

pub const BPF_GET_CURRENT_PID_TGID: u32 = 14;
pub const BPF_GET_CURRENT_UID_GID: u32 = 15;
pub const BPF_GET_CURRENT_COMM: u32 = 16;

/// `bpf_get_current_comm(buf, size)`: the name, cut to `size - 1` bytes, NUL-padded to `size`
/// (the kernel's `strscpy_pad`).
fn get_current_comm(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (buf, size) = (a[0], a[1] as u32 as u64);
    if size == 0 {
        return Ok((-EINVAL) as u64);
    }
    let comm = cx.state.process.comm;
    let dst = cx.writable(buf, size, "buf")?;
    let name_len = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    let n = name_len.min(size as usize - 1);
    dst.fill(0);
    dst[..n].copy_from_slice(&comm[..n]);
    Ok(0)
}

pub fn register(table: &mut HelperTable) {
    table.register_kernel(
        BPF_GET_CURRENT_PID_TGID,
        "bpf_get_current_pid_tgid",
        |cx, _| {
            let p = cx.state.process;
            Ok((p.tgid as u64) << 32 | p.pid as u64)
        },
    );
    table.register_kernel(
        BPF_GET_CURRENT_UID_GID,
        "bpf_get_current_uid_gid",
        |cx, _| {
            let p = cx.state.process;
            Ok((p.gid as u64) << 32 | p.uid as u64)
        },
    );
    table.register_kernel(
        BPF_GET_CURRENT_COMM,
        "bpf_get_current_comm",
        get_current_comm,
    );
}
