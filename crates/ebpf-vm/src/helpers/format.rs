//! The printf engine of `bpf_trace_printk` and `bpf_snprintf`, with the kernel's grammar
//! (`bpf_bprintf_prepare` in kernel/bpf/helpers.c): only printable ASCII and white space in the
//! format; `%%`; flags `0 + - space` and a width; conversions `d i u x X` with `l`/`ll` (no `l`:
//! 32-bit int), `c`, `s`, `p` (`%p`, `%px`, `%pK`, `%pB` print the value as 16 hex digits: there
//! are no kernel addresses to hide here). No precision, no `h`, no `o`: -EINVAL, as in the kernel.
//! More conversions than arguments: -EINVAL. A `%s` whose pointer is not readable memory of the
//! run prints nothing (the kernel prints an empty string for a faulting pointer); strings are cut
//! at 512 bytes (the kernel's `MAX_BPRINTF_BUF`).

use crate::memory::Regions;

pub const EINVAL: i64 = 22;
/// Longest string a `%s` contributes.
const MAX_STR: u64 = 512;

#[derive(Default, Clone, Copy)]
struct Spec {
    zero: bool,
    plus: bool,
    left: bool,
    space: bool,
    width: usize,
}

fn pad(out: &mut Vec<u8>, body: &[u8], sign: &[u8], spec: Spec, numeric: bool) {
    let len = body.len() + sign.len();
    let fill = spec.width.saturating_sub(len);
    if spec.left {
        out.extend_from_slice(sign);
        out.extend_from_slice(body);
        out.resize(out.len() + fill, b' ');
    } else if spec.zero && numeric {
        out.extend_from_slice(sign);
        out.resize(out.len() + fill, b'0');
        out.extend_from_slice(body);
    } else {
        out.resize(out.len() + fill, b' ');
        out.extend_from_slice(sign);
        out.extend_from_slice(body);
    }
}

/// Reads a NUL-terminated string at `addr` from run memory (empty when unreadable).
fn c_string(regions: &Regions, addr: u64) -> Vec<u8> {
    let mut s = Vec::new();
    for i in 0..MAX_STR {
        match regions.slice(addr.wrapping_add(i), 1) {
            Ok([0]) | Err(_) => break,
            Ok(b) => s.push(b[0]),
        }
    }
    s
}

/// Formats `fmt` (without its NUL) with `args`; Err holds a negative errno.
pub fn bprintf(fmt: &[u8], args: &[u64], regions: &Regions) -> Result<Vec<u8>, i64> {
    let mut out = Vec::with_capacity(fmt.len() + 16);
    let mut used = 0usize;
    let mut i = 0usize;
    let at = |i: usize| fmt.get(i).copied().unwrap_or(0);
    while i < fmt.len() {
        let c = fmt[i];
        if !(c.is_ascii_graphic() || c == b' ' || c.is_ascii_whitespace()) {
            return Err(-EINVAL);
        }
        if c != b'%' {
            out.push(c);
            i += 1;
            continue;
        }
        if at(i + 1) == b'%' {
            out.push(b'%');
            i += 2;
            continue;
        }
        if used >= args.len() {
            return Err(-EINVAL);
        }
        let arg = args[used];
        used += 1;
        i += 1;
        let mut spec = Spec::default();
        loop {
            match at(i) {
                b'0' => spec.zero = true,
                b'+' => spec.plus = true,
                b'-' => spec.left = true,
                b' ' => spec.space = true,
                _ => break,
            }
            i += 1;
        }
        while at(i).is_ascii_digit() {
            spec.width = (spec.width * 10 + (at(i) - b'0') as usize).min(4096);
            i += 1;
        }
        match at(i) {
            b'p' => {
                if matches!(at(i + 1), b'K' | b'x' | b'B') {
                    i += 1;
                } else if matches!(at(i + 1), b'k' | b'u') && at(i + 2) == b's' {
                    // %pks / %pus: a string from kernel or user memory, here run memory.
                    i += 2;
                    pad(&mut out, &c_string(regions, arg), b"", spec, false);
                    i += 1;
                    continue;
                } else if matches!(at(i + 1), b'i' | b'I') {
                    return Err(-EINVAL);
                }
                pad(&mut out, format!("{arg:016x}").as_bytes(), b"", spec, true);
                i += 1;
            }
            b's' => {
                pad(&mut out, &c_string(regions, arg), b"", spec, false);
                i += 1;
            }
            b'c' => {
                pad(&mut out, &[arg as u8], b"", spec, false);
                i += 1;
            }
            _ => {
                let mut wide = false;
                if at(i) == b'l' {
                    wide = true;
                    i += 1;
                    if at(i) == b'l' {
                        i += 1;
                    }
                }
                let conv = at(i);
                let (body, sign): (String, &[u8]) = match conv {
                    b'd' | b'i' => {
                        let v = if wide {
                            arg as i64
                        } else {
                            arg as u32 as i32 as i64
                        };
                        let sign: &[u8] = if v < 0 {
                            b"-"
                        } else if spec.plus {
                            b"+"
                        } else if spec.space {
                            b" "
                        } else {
                            b""
                        };
                        (v.unsigned_abs().to_string(), sign)
                    }
                    b'u' | b'x' | b'X' => {
                        let v = if wide { arg } else { arg as u32 as u64 };
                        let s = match conv {
                            b'u' => v.to_string(),
                            b'x' => format!("{v:x}"),
                            _ => format!("{v:X}"),
                        };
                        (s, b"")
                    }
                    _ => return Err(-EINVAL),
                };
                pad(&mut out, body.as_bytes(), sign, spec, true);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// The format string at `addr`: the bytes before the first NUL within `max` bytes (`None` when
/// there is no NUL there or the memory is not readable).
pub fn format_string(regions: &Regions, addr: u64, max: u64) -> Option<Vec<u8>> {
    let mut s = Vec::new();
    for i in 0..max {
        match regions.slice(addr.wrapping_add(i), 1).ok()? {
            [0] => return Some(s),
            b => s.push(b[0]),
        }
    }
    None
}
