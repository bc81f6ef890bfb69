//! The probe-read helpers of tracing programs and the current task's address, with Linux 6.18's
//! semantics (kernel/trace/bpf_trace.c, mm/maccess.c, mm/uaccess via strncpy_from_user), reading
//! the run's `AddressSpace` (the caller's memory images, `address_space.rs`):
//!
//! - `bpf_probe_read_user` (112) / `_kernel` (113) `(dst, size, src)`: copy `size` bytes; 0, or
//!   on a fault `dst` zeroed and -EFAULT.
//! - `bpf_probe_read_user_str` (114) / `_kernel_str` (115) `(dst, size, src)`: copy a string up
//!   to its NUL or `size` bytes, the last byte copied forced to NUL; the length copied including
//!   the NUL (`size` when truncated), 0 when `size` is 0; on a fault before the NUL, `dst`
//!   zeroed and -EFAULT. Bytes of `dst` past the copy are left as they were (no padding).
//! - `bpf_probe_read` (4) / `bpf_probe_read_str` (45), the compat forms: the user form below
//!   the user address limit, the kernel form above (x86-64's split; tracing programs only, as
//!   the kernel offers them to kprobe, tracepoint, perf_event and raw_tracepoint only). The
//!   other forms are offered to every type, as the kernel does.
//! - `bpf_get_attach_cookie(ctx)` (174; kprobe, tracepoint, perf_event and raw_tracepoint, as
//!   the kernel offers it): the cookie the probe was attached with, as the caller gave it
//!   (`AddressSpace::cookie`); 0 by default, what the kernel's raw_tp test run returns.
//! - `bpf_get_func_ip(ctx)` (173): the address of the probed function, as the caller gave it
//!   (`AddressSpace::func_ip`; the kernel's kprobe form returns the function's entry address, 0
//!   for a probe that is not on a function's entry). Linux 6.18 offers it to every tracing type
//!   but its verifier lets kprobes (and fentry/fexit/fmod_ret, no type here) call it only: other
//!   types are refused at load with `func bpf_get_func_ip#173 not supported for program type N`
//!   (ENOTSUPP), as bpftool showed for tracepoint, perf_event and raw_tracepoint programs.
//! - `bpf_probe_write_user(dst, src, size)` (36; GPL-only, tracing types): copies `size` bytes
//!   of the program's memory at `src` to the user address `dst` of the traced task: 0, or
//!   -EFAULT when `dst + size` is above the user half (x86-64's `access_ok`, before any byte is
//!   written) or a byte of the range is in no writable image (`MemoryImage::writable`); the
//!   bytes before that one are written, as the kernel's copy stops at the fault. The run
//!   reports the writable images as it left them (`ContextOutput::memory`). The kernel's
//!   -EPERM for kernel threads and interrupts does not arise: the traced task is a user task.
//! - `bpf_get_current_task` (35) / `bpf_get_current_task_btf` (158): the task address the caller
//!   gave (`ProcessInfo::task`). The kernel lets a program dereference the BTF form directly;
//!   here the task is not the program's memory, so fields are read with the probe-read helpers.
//!
//! The kernel forms refuse user-half addresses before reading anything (x86-64's
//! `copy_from_kernel_nofault_allowed`: below the kernel half, the non-canonical hole and the
//! vsyscall page): -ERANGE, with `dst` zeroed, unless the caller mapped an image there. Checked
//! against the live kernel: `probe_read_kernel(dst, 8, NULL)` is -34, `(dst, 0, NULL)` too,
//! `probe_read_kernel_str(dst, 0, NULL)` is 0, the user forms of NULL are -14.
//!
//! `dst` is the program's memory and is checked like every helper's memory argument: a `dst`
//! outside the run's writable memory stops the run with a helper error.

use super::{HelperContext, HelperError, HelperTable};
use crate::vm::errno::{EFAULT, ERANGE};

pub const BPF_PROBE_READ: u32 = 4;
pub const BPF_GET_CURRENT_TASK: u32 = 35;
pub const BPF_PROBE_READ_STR: u32 = 45;
pub const BPF_PROBE_READ_USER: u32 = 112;
pub const BPF_PROBE_READ_KERNEL: u32 = 113;
pub const BPF_PROBE_READ_USER_STR: u32 = 114;
pub const BPF_PROBE_READ_KERNEL_STR: u32 = 115;
pub const BPF_GET_CURRENT_TASK_BTF: u32 = 158;
pub const BPF_GET_ATTACH_COOKIE: u32 = 174;
pub const BPF_GET_FUNC_IP: u32 = 173;
pub const BPF_PROBE_WRITE_USER: u32 = 36;

/// x86-64's `TASK_SIZE_MAX` (4-level paging): user addresses are below it.
const TASK_SIZE: u64 = 0x7fff_ffff_f000;
/// The lowest kernel-half address (4-level paging); everything between the user half and it is
/// the non-canonical hole.
const KERNEL_HALF: u64 = 0xffff_8000_0000_0000;
/// x86-64's vsyscall page, which `copy_from_kernel_nofault` also refuses.
const VSYSCALL_PAGE: u64 = 0xffff_ffff_ff60_0000;

/// Which of the kernel's two copies a helper uses.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    User,
    Kernel,
}

impl Side {
    /// The compat helpers' choice (`bpf_probe_read_compat`): by the address.
    fn of_address(addr: u64) -> Side {
        if addr < TASK_SIZE {
            Side::User
        } else {
            Side::Kernel
        }
    }
}

/// Whether the kernel form refuses `src` before reading (-ERANGE). Only on x86-64: other
/// architectures allow every address there and fault (-EFAULT) instead.
fn kernel_refuses(cx: &HelperContext<'_>, side: Side, src: u64) -> bool {
    let user_half = src < KERNEL_HALF || src & !0xfff == VSYSCALL_PAGE;
    side == Side::Kernel
        && cfg!(target_arch = "x86_64")
        && user_half
        && cx.state.address_space.byte(src).is_none()
}

/// `dst` as the program's writable memory of `size` bytes, or the helper error naming it.
fn destination<'a>(
    cx: &'a HelperContext<'_>,
    dst: u64,
    size: u64,
) -> Result<&'a mut [u8], HelperError> {
    cx.writable(dst, size, "dst")
}

fn probe_read(cx: &mut HelperContext<'_>, a: [u64; 5], side: Side) -> Result<u64, HelperError> {
    let (dst, size, src) = (a[0], a[1] as u32 as u64, a[2]);
    let refused = kernel_refuses(cx, side, src);
    let space = cx.state.address_space.clone();
    destination(cx, dst, size).map(|buf| {
        if refused {
            buf.fill(0);
            (-ERANGE) as u64
        } else if space.read(src, buf) {
            0
        } else {
            buf.fill(0);
            (-EFAULT) as u64
        }
    })
}

fn probe_read_str(cx: &mut HelperContext<'_>, a: [u64; 5], side: Side) -> Result<u64, HelperError> {
    let (dst, size, src) = (a[0], a[1] as u32 as u64, a[2]);
    if size == 0 {
        return Ok(0);
    }
    let refused = kernel_refuses(cx, side, src);
    let space = cx.state.address_space.clone();
    destination(cx, dst, size).map(|buf| {
        if refused {
            buf.fill(0);
            return (-ERANGE) as u64;
        }
        for k in 0..buf.len() {
            let Some(b) = src.checked_add(k as u64).and_then(|at| space.byte(at)) else {
                buf.fill(0);
                return (-EFAULT) as u64;
            };
            buf[k] = b;
            if b == 0 {
                return k as u64 + 1;
            }
        }
        let last = buf.len() - 1;
        buf[last] = 0;
        buf.len() as u64
    })
}

fn probe_write_user(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (dst, src, size) = (a[0], a[1], a[2] as u32 as u64);
    let bytes = cx.readable(src, size, "src")?.to_vec();
    let in_user_half = dst.checked_add(size).is_some_and(|end| end <= TASK_SIZE);
    if !in_user_half {
        return Ok((-EFAULT) as u64);
    }
    let written = cx.state.address_space.write(dst, &bytes);
    Ok(if written == bytes.len() {
        0
    } else {
        (-EFAULT) as u64
    })
}

/// The compat forms, `bpf_get_attach_cookie`, `bpf_get_func_ip` and `bpf_probe_write_user`,
/// which the kernel offers to the classic tracing types only.
pub fn register_compat(table: &mut HelperTable) {
    table.register_kernel(BPF_GET_FUNC_IP, "bpf_get_func_ip", |cx, a| {
        super::packet::require_ctx(cx, a[0])?;
        Ok(cx.state.address_space.func_ip())
    });
    table.register_kernel(
        BPF_PROBE_WRITE_USER,
        "bpf_probe_write_user",
        probe_write_user,
    );
    table.register_kernel(BPF_GET_ATTACH_COOKIE, "bpf_get_attach_cookie", |cx, a| {
        super::packet::require_ctx(cx, a[0])?;
        Ok(cx.state.address_space.cookie())
    });
    table.register_kernel(BPF_PROBE_READ, "bpf_probe_read", |cx, a| {
        probe_read(cx, a, Side::of_address(a[2]))
    });
    table.register_kernel(BPF_PROBE_READ_STR, "bpf_probe_read_str", |cx, a| {
        probe_read_str(cx, a, Side::of_address(a[2]))
    });
}

/// The user and kernel forms and the current task, which Linux 6.18 offers to every program
/// type (`bpf_base_func_proto`, to programs loaded with CAP_PERFMON). Only tracing programs
/// are usually given an address space; elsewhere every read faults.
pub fn register(table: &mut HelperTable) {
    table.register_kernel(BPF_PROBE_READ_USER, "bpf_probe_read_user", |cx, a| {
        probe_read(cx, a, Side::User)
    });
    table.register_kernel(BPF_PROBE_READ_KERNEL, "bpf_probe_read_kernel", |cx, a| {
        probe_read(cx, a, Side::Kernel)
    });
    table.register_kernel(
        BPF_PROBE_READ_USER_STR,
        "bpf_probe_read_user_str",
        |cx, a| probe_read_str(cx, a, Side::User),
    );
    table.register_kernel(
        BPF_PROBE_READ_KERNEL_STR,
        "bpf_probe_read_kernel_str",
        |cx, a| probe_read_str(cx, a, Side::Kernel),
    );
    table.register_kernel(BPF_GET_CURRENT_TASK, "bpf_get_current_task", |cx, _| {
        Ok(cx.state.process.task)
    });
    table.register_kernel(
        BPF_GET_CURRENT_TASK_BTF,
        "bpf_get_current_task_btf",
        |cx, _| Ok(cx.state.process.task),
    );
}
