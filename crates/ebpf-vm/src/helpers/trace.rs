//! `bpf_trace_printk` (6): formats up to three arguments and appends the text to the program's
//! trace log (`Program::trace_log`) or hands it to the embedder's `TraceSink`. Like the kernel it
//! returns the length of the formatted text, cuts the text at 511 bytes, and returns -EINVAL for a
//! format without a NUL within `fmt_size` or with a conversion it does not support.

use super::format::bprintf;
use super::{HelperContext, HelperError, HelperTable};
use crate::vm::errno::EINVAL;

pub const BPF_TRACE_PRINTK: u32 = 6;
/// The kernel's `MAX_BPRINTF_BUF`: the formatted text is cut to one less than this.
pub const MAX_BPRINTF_BUF: usize = 512;

fn trace_printk(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (fmt, size) = (a[0], a[1] as u32 as u64);
    if size == 0 {
        return Ok((-EINVAL) as u64);
    }
    let bytes = cx.readable(fmt, size, "fmt")?.to_vec();
    let Some(nul) = bytes.iter().position(|&b| b == 0) else {
        return Ok((-EINVAL) as u64);
    };
    let printed = match bprintf(&bytes[..nul], &a[2..5], cx.regions) {
        Ok(p) => p,
        Err(e) => return Ok(e as u64),
    };
    cx.refuse_leaked_args("bpf_trace_printk", &a[2..5], printed.scalar_args)?;
    let mut text = printed.text;
    let len = text.len();
    text.truncate(MAX_BPRINTF_BUF - 1);
    if let Some(out) = &cx.state.output {
        out.trace(&String::from_utf8_lossy(&text));
    }
    Ok(len as u64)
}

pub fn register(table: &mut HelperTable) {
    table.register_kernel(BPF_TRACE_PRINTK, "bpf_trace_printk", trace_printk);
}
