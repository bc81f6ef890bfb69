//! The printf engine of `bpf_trace_printk` and `bpf_snprintf`, with the kernel's grammar
//! (`bpf_bprintf_prepare` in kernel/bpf/helpers.c, then `bstr_printf` in lib/vsprintf.c): only
//! printable ASCII and white space in the format; `%%`; flags `0 + - space` and a width;
//! conversions `d i u x X` with `l`/`ll` (no `l`: 32-bit int), `c`, `s`, and the pointer forms
//! below. No precision, no `h`, no `o`: -EINVAL, as in the kernel. More conversions than arguments:
//! -EINVAL. A `%s` whose pointer is not readable memory of the run prints nothing (the kernel prints
//! an empty string for a faulting pointer); strings are cut at 512 bytes (the kernel's
//! `MAX_BPRINTF_BUF`).
//!
//! Pointers print as the kernel prints them to an unprivileged reader, so that no host address
//! of the run reaches the text:
//! - `%p` (followed by the end, white space or punctuation), `%px`, `%ps`, `%pS`, `%pB`: the
//!   pointer's id, as `ptr_to_id` makes it: a keyed hash of the value cut to 32 bits, in 16 hex
//!   digits. The key is random per process (the kernel's is per boot), so ids are stable within a
//!   process and say nothing about the address. NULL and error values (the top 4095) print as
//!   they are, as in the kernel. `%px` prints the raw address in the kernel, but only programs
//!   with CAP_BPF and CAP_PERFMON may print at all there; bytecode here is untrusted, so `%px` is
//!   hashed too. `%ps`/`%pS`/`%pB` name a kernel symbol, and there are none here.
//! - `%pK`: zeros, what `kptr_restrict` gives a reader without CAP_SYSLOG.
//! - `%pks`: a string, read from run memory as `%s`. `%pus`: a string from user memory, which no
//!   address of a run is (as in the kernel, where the BPF stack is not user memory): empty.
//! - `%pi4`, `%pI4`, `%pi6`, `%pI6`: the IP address at the pointer (zeros when it cannot be read),
//!   as the kernel copies and formats it.
//! - any other letter after `%p`: -EINVAL. As vsprintf does, the letters and digits right after a
//!   pointer conversion are consumed by it (`%pI4h` is `%pI4`).
use crate::memory::Regions;
use crate::vm::errno::EINVAL;

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

/// A formatted text and which arguments it printed as numbers or characters.
pub struct Printed {
    pub text: Vec<u8>,
    /// Bit k: argument k went through `d i u x X c` (its value is in the text), not through a
    /// pointer conversion (`s`, `p...`: a string, an id, zeros or an IP address).
    pub scalar_args: u32,
}

/// Formats `fmt` (without its NUL) with `args` (at most 32); Err holds a negative errno.
pub fn bprintf(fmt: &[u8], args: &[u64], regions: &Regions) -> Result<Printed, i64> {
    let mut out = Vec::with_capacity(fmt.len() + 16);
    let mut scalar_args = 0u32;
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
            b'p' => i = pointer(fmt, i + 1, arg, spec, regions, &mut out)?,
            b's' => {
                pad(&mut out, &c_string(regions, arg), b"", spec, false);
                i += 1;
            }
            b'c' => {
                pad(&mut out, &[arg as u8], b"", spec, false);
                scalar_args |= 1u32.checked_shl(used as u32 - 1).unwrap_or(0);
                i += 1;
            }
            _ => {
                scalar_args |= 1u32.checked_shl(used as u32 - 1).unwrap_or(0);
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
    Ok(Printed {
        text: out,
        scalar_args,
    })
}

/// Formats the `%p` conversion whose modifiers start at `fmt[i]`; returns the index after it.
fn pointer(
    fmt: &[u8],
    mut i: usize,
    arg: u64,
    spec: Spec,
    regions: &Regions,
    out: &mut Vec<u8>,
) -> Result<usize, i64> {
    let at = |i: usize| fmt.get(i).copied().unwrap_or(0);
    let modifier = at(i);
    match modifier {
        // Plain `%p`: nothing of what follows belongs to it.
        c if c == 0 || c.is_ascii_whitespace() || c.is_ascii_punctuation() => {
            pointer_string(out, pointer_id(arg), spec);
            return Ok(i);
        }
        b'x' | b's' | b'S' | b'B' => {
            pointer_string(out, pointer_id(arg), spec);
        }
        b'K' => {
            pointer_string(out, 0, spec);
        }
        b'k' if at(i + 1) == b's' => {
            pad(out, &c_string(regions, arg), b"", spec, false);
        }
        // A string in user memory: no address of a run is one (the kernel's
        // `copy_from_user_nofault` fails on the BPF stack too), so it prints empty.
        b'u' if at(i + 1) == b's' => pad(out, b"", b"", spec, false),
        b'i' | b'I' if matches!(at(i + 1), b'4' | b'6') => {
            let text = ip_string(regions, arg, modifier == b'I', at(i + 1) == b'6');
            pad(out, text.as_bytes(), b"", spec, false);
        }
        _ => return Err(-EINVAL),
    }
    // vsprintf skips every letter and digit after the conversion's first modifier.
    i += 1;
    while at(i).is_ascii_alphanumeric() {
        i += 1;
    }
    Ok(i)
}

/// The kernel's `pointer_string`: hex, zero-padded to 16 digits when no width was given.
fn pointer_string(out: &mut Vec<u8>, v: u64, spec: Spec) {
    if spec.width == 0 {
        out.extend_from_slice(format!("{v:016x}").as_bytes());
    } else {
        pad(out, format!("{v:x}").as_bytes(), b"", spec, true);
    }
}

/// What `%p` prints for `v` (the kernel's `ptr_to_id`): NULL and error values as they are, any
/// other value as a keyed hash cut to 32 bits, the key random per process.
pub fn pointer_id(v: u64) -> u64 {
    use std::hash::BuildHasher;
    static KEY: std::sync::OnceLock<std::hash::RandomState> = std::sync::OnceLock::new();
    const MAX_ERRNO: u64 = 4095;
    if v == 0 || v >= MAX_ERRNO.wrapping_neg() {
        return v;
    }
    KEY.get_or_init(std::hash::RandomState::new).hash_one(v) & 0xffff_ffff
}

/// `%pI4`/`%pi4`/`%pI6`/`%pi6` of the address at `addr` (zeros when it cannot be read, as the
/// kernel's `copy_from_kernel_nofault` failure gives): dotted decimal (`%pi4`: three digits each),
/// eight colon-separated 4-digit groups (`%pi6`: 32 hex digits, no colons).
fn ip_string(regions: &Regions, addr: u64, separated: bool, v6: bool) -> String {
    let len = if v6 { 16 } else { 4 };
    let mut b = [0u8; 16];
    if let Ok(s) = regions.slice(addr, len) {
        b[..len as usize].copy_from_slice(s);
    }
    let b = &b[..len as usize];
    match (v6, separated) {
        (false, true) => format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3]),
        (false, false) => format!("{:03}.{:03}.{:03}.{:03}", b[0], b[1], b[2], b[3]),
        (true, sep) => {
            let groups: Vec<String> = b
                .chunks(2)
                .map(|g| format!("{:02x}{:02x}", g[0], g[1]))
                .collect();
            groups.join(if sep { ":" } else { "" })
        }
    }
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
