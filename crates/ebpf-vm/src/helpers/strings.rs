//! String helpers: `bpf_strtol` (105), `bpf_strtoul` (106) and `bpf_snprintf` (165), with the
//! kernel's semantics (kernel/bpf/helpers.c).
//!
//! strtol/strtoul: `flags` is the base (0, 8, 10 or 16; any other bit: -EINVAL); leading white
//! space and one `-` are skipped; base 0 picks 16 for `0x` + hex digit, 8 for a leading `0`, else
//! 10; base 16 skips a `0x`; at most 63 characters after the sign are looked at; no digit: -EINVAL;
//! overflow: -ERANGE; `strtoul` of a negative number: -EINVAL. Success returns the number of
//! characters consumed and stores the value at `res`; failure stores 0 there (as Linux 6.12+).

use super::format::{bprintf, format_string};
use super::{HelperContext, HelperError, HelperTable};
use crate::vm::errno::{EINVAL, ERANGE};

pub const BPF_STRTOL: u32 = 105;
pub const BPF_STRTOUL: u32 = 106;
pub const BPF_SNPRINTF: u32 = 165;

const BASE_MASK: u64 = 0x1f;
/// `MAX_BPF_FUNC_VARARGS`: arguments `bpf_snprintf` accepts.
const MAX_VARARGS: u64 = 12;

/// The kernel's `isspace` (its ctype table also counts 0xa0 as space).
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0xa0)
}

/// Parses like the kernel's `__bpf_strtoull`: (magnitude, negative, characters consumed).
fn strtoull(buf: &[u8], flags: u64) -> Result<(u64, bool, usize), i64> {
    let mut base = (flags & BASE_MASK) as u32;
    if buf.is_empty() || !matches!(base, 0 | 8 | 10 | 16) || flags & !BASE_MASK != 0 {
        return Err(-EINVAL);
    }
    let mut i = 0;
    while i < buf.len() && is_space(buf[i]) {
        i += 1;
    }
    let negative = i < buf.len() && buf[i] == b'-';
    if negative {
        i += 1;
    }
    if i == buf.len() {
        return Err(-EINVAL);
    }
    let consumed = i;
    // The kernel copies at most 63 characters into a NUL-terminated scratch string.
    let s = &buf[i..buf.len().min(i + 63)];
    let at = |k: usize| s.get(k).copied().unwrap_or(0);
    let mut k = 0;
    if base == 0 {
        base = if at(0) == b'0' {
            if at(1).eq_ignore_ascii_case(&b'x') && at(2).is_ascii_hexdigit() {
                16
            } else {
                8
            }
        } else {
            10
        };
    }
    if base == 16 && at(0) == b'0' && at(1).eq_ignore_ascii_case(&b'x') {
        k = 2;
    }
    let start = k;
    let mut value: u64 = 0;
    let mut overflow = false;
    while let Some(d) = (at(k) as char).to_digit(16) {
        if at(k) == 0 || d >= base {
            break;
        }
        match value
            .checked_mul(base as u64)
            .and_then(|v| v.checked_add(d as u64))
        {
            Some(v) => value = v,
            None => overflow = true,
        }
        k += 1;
    }
    if overflow {
        return Err(-ERANGE);
    }
    if k == start {
        return Err(-EINVAL);
    }
    Ok((value, negative, consumed + k))
}

fn strtol_value(buf: &[u8], flags: u64) -> Result<(i64, usize), i64> {
    let (mag, negative, n) = strtoull(buf, flags)?;
    if negative {
        if (mag.wrapping_neg() as i64) > 0 {
            return Err(-ERANGE);
        }
        Ok((mag.wrapping_neg() as i64, n))
    } else {
        if (mag as i64) < 0 {
            return Err(-ERANGE);
        }
        Ok((mag as i64, n))
    }
}

fn strtoul_value(buf: &[u8], flags: u64) -> Result<(u64, usize), i64> {
    let (mag, negative, n) = strtoull(buf, flags)?;
    if negative {
        return Err(-EINVAL);
    }
    Ok((mag, n))
}

/// A parser: (buffer, flags) to (value, characters consumed) or a negative errno.
type Parse = fn(&[u8], u64) -> Result<(u64, usize), i64>;

/// Shared argument handling: reads the buffer, runs `parse`, writes `res`.
fn strto(cx: &mut HelperContext<'_>, a: [u64; 5], parse: Parse) -> Result<u64, HelperError> {
    let (buf, len, flags, res) = (a[0], a[1], a[2], a[3]);
    cx.regions.check(res, 8, true).map_err(|_| {
        HelperError(format!(
            "res ({}) is not 8 writable bytes",
            cx.describe(res)
        ))
    })?;
    let outcome = if len == 0 {
        Err(-EINVAL)
    } else {
        let bytes = cx.readable(buf, len, "buf")?;
        parse(bytes, flags)
    };
    let (value, ret) = match outcome {
        Ok((v, n)) => (v, n as u64),
        Err(e) => (0, e as u64),
    };
    let out = cx.regions.slice_mut(res, 8).expect("checked above");
    out.copy_from_slice(&value.to_le_bytes());
    Ok(ret)
}

fn snprintf(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (out, out_size, fmt, data, data_len) =
        (a[0], a[1] as u32 as u64, a[2], a[3], a[4] as u32 as u64);
    if data_len % 8 != 0 || data_len > MAX_VARARGS * 8 || (data_len != 0 && data == 0) {
        return Ok((-EINVAL) as u64);
    }
    let Some(fmt) = format_string(cx.regions, fmt, 1 << 16) else {
        return Err(HelperError(format!(
            "fmt ({}) is not a NUL-terminated string in the program's memory",
            cx.describe(fmt)
        )));
    };
    let args: Vec<u64> = if data_len == 0 {
        Vec::new()
    } else {
        cx.readable(data, data_len, "data")?
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect()
    };
    let text = match bprintf(&fmt, &args, cx.regions) {
        Ok(p) => {
            cx.refuse_leaked_args("bpf_snprintf", &args, p.scalar_args)?;
            p.text
        }
        Err(e) => return Ok(e as u64),
    };
    if out_size > 0 {
        let dst = cx.writable(out, out_size, "str")?;
        let n = text.len().min(out_size as usize - 1);
        dst[..n].copy_from_slice(&text[..n]);
        dst[n] = 0;
    }
    Ok(text.len() as u64 + 1)
}

pub fn register(table: &mut HelperTable) {
    table.register_kernel(BPF_STRTOL, "bpf_strtol", |cx, a| {
        strto(cx, a, |b, f| strtol_value(b, f).map(|(v, n)| (v as u64, n)))
    });
    table.register_kernel(BPF_STRTOUL, "bpf_strtoul", |cx, a| {
        strto(cx, a, strtoul_value)
    });
    table.register_kernel(BPF_SNPRINTF, "bpf_snprintf", snprintf);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_the_kernel() {
        assert_eq!(strtol_value(b"  -42xyz", 0), Ok((-42, 5)));
        assert_eq!(strtol_value(b"0x1f", 0), Ok((31, 4)));
        assert_eq!(strtol_value(b"0x", 0), Ok((0, 1)));
        assert_eq!(strtol_value(b"0x", 16), Err(-EINVAL));
        assert_eq!(strtol_value(b"017", 0), Ok((15, 3)));
        assert_eq!(strtol_value(b"9223372036854775807", 10), Ok((i64::MAX, 19)));
        assert_eq!(strtol_value(b"9223372036854775808", 10), Err(-ERANGE));
        assert_eq!(
            strtol_value(b"-9223372036854775808", 10),
            Ok((i64::MIN, 20))
        );
        assert_eq!(strtoul_value(b"18446744073709551616", 10), Err(-ERANGE));
        assert_eq!(strtoul_value(b"-1", 10), Err(-EINVAL));
        assert_eq!(strtoul_value(b"   ", 10), Err(-EINVAL));
        assert_eq!(strtoul_value(b"12", 7), Err(-EINVAL));
        assert_eq!(strtoul_value(b"12", 0x20 | 10), Err(-EINVAL));
    }
}
