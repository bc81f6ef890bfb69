//! The Linux errno numbers helpers and map operations return (negated) to programs, as
//! include/uapi/asm-generic/errno-base.h, errno.h and include/linux/errno.h (`ENOTSUPP`, the
//! kernel-internal one) number them: one table for every helper, map and context.

pub const ENOENT: i64 = 2;
pub const E2BIG: i64 = 7;
pub const EAGAIN: i64 = 11;
pub const ENOMEM: i64 = 12;
pub const EACCES: i64 = 13;
pub const EFAULT: i64 = 14;
pub const EEXIST: i64 = 17;
pub const ENODEV: i64 = 19;
pub const EINVAL: i64 = 22;
pub const ENOSPC: i64 = 28;
pub const ERANGE: i64 = 34;
pub const EPROTO: i64 = 71;
pub const EOPNOTSUPP: i64 = 95;
pub const EAFNOSUPPORT: i64 = 97;
pub const EALREADY: i64 = 114;
pub const ENOTSUPP: i64 = 524;

/// `-e` as a helper's r0 (a negative errno in two's complement).
pub const fn negated(e: i64) -> u64 {
    (-e) as u64
}
