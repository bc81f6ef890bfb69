//! `BPF_MAP_TYPE_STACK_TRACE` (7): stack ids to stacks, as the kernel's `kernel/bpf/stackmap.c`.
//! Key: a u32 stack id; value: `value_size / 8` u64 instruction pointers (`value_size` a multiple
//! of 8, at most `PERF_MAX_STACK` entries). The map has `roundup_pow_of_two(max_entries)` buckets
//! and `max_entries` stored stacks at most (the kernel's freelist).
//!
//! `bpf_get_stackid` (`get_stackid`) hashes the stack's words with the kernel's `jhash2` (seed 0);
//! the id is the hash masked by the bucket count. With the same stack in the bucket the id is
//! returned; `BPF_F_FAST_STACK_CMP` trusts an equal hash alone; a different stack in the bucket is
//! EEXIST unless `BPF_F_REUSE_STACKID` replaces it; with no stored stack left, ENOMEM. Where the
//! stacks come from is the caller's business (a run option here, the perf callchain in the kernel).
//!
//! User space: lookups copy the stack and zero the rest of the value, deletes empty a bucket,
//! `get_next_key` walks the filled buckets in id order (an absent or out-of-range key starts over),
//! updates are EINVAL, all as in the kernel.

use std::sync::{Mutex, MutexGuard};

use crate::error::ErrorCode;

use super::{Map, MapCommon, MapDef, MapError, MapResult};
use crate::vm::errno::{EEXIST, EFAULT, EINVAL, ENOMEM};

/// `sysctl_perf_event_max_stack`'s default: the deepest stack a callchain holds.
pub const PERF_MAX_STACK: u32 = 127;

pub const BPF_F_SKIP_FIELD_MASK: u64 = 0xff;
pub const BPF_F_USER_STACK: u64 = 1 << 8;
pub const BPF_F_FAST_STACK_CMP: u64 = 1 << 9;
pub const BPF_F_REUSE_STACKID: u64 = 1 << 10;
pub const BPF_F_USER_BUILD_ID: u64 = 1 << 11;

/// `BPF_F_STACK_BUILD_ID`, a creation flag of stack trace maps (values of build id records).
pub const BPF_F_STACK_BUILD_ID: u32 = 1 << 5;

/// The kernel's `jhash2` (Bob Jenkins' lookup3 `hashword`, `JHASH_INITVAL` 0xdeadbeef).
pub fn jhash2(k: &[u32], initval: u32) -> u32 {
    let mut a = 0xdead_beef_u32
        .wrapping_add((k.len() as u32) << 2)
        .wrapping_add(initval);
    let (mut b, mut c) = (a, a);
    let mut k = k;
    while k.len() > 3 {
        a = a.wrapping_add(k[0]);
        b = b.wrapping_add(k[1]);
        c = c.wrapping_add(k[2]);
        // __jhash_mix
        a = a.wrapping_sub(c);
        a ^= c.rotate_left(4);
        c = c.wrapping_add(b);
        b = b.wrapping_sub(a);
        b ^= a.rotate_left(6);
        a = a.wrapping_add(c);
        c = c.wrapping_sub(b);
        c ^= b.rotate_left(8);
        b = b.wrapping_add(a);
        a = a.wrapping_sub(c);
        a ^= c.rotate_left(16);
        c = c.wrapping_add(b);
        b = b.wrapping_sub(a);
        b ^= a.rotate_left(19);
        a = a.wrapping_add(c);
        c = c.wrapping_sub(b);
        c ^= b.rotate_left(4);
        b = b.wrapping_add(a);
        k = &k[3..];
    }
    if k.is_empty() {
        return c;
    }
    if k.len() == 3 {
        c = c.wrapping_add(k[2]);
    }
    if k.len() >= 2 {
        b = b.wrapping_add(k[1]);
    }
    a = a.wrapping_add(k[0]);
    // __jhash_final
    c ^= b;
    c = c.wrapping_sub(b.rotate_left(14));
    a ^= c;
    a = a.wrapping_sub(c.rotate_left(11));
    b ^= a;
    b = b.wrapping_sub(a.rotate_left(25));
    c ^= b;
    c = c.wrapping_sub(b.rotate_left(16));
    a ^= c;
    a = a.wrapping_sub(c.rotate_left(4));
    b ^= a;
    b = b.wrapping_sub(a.rotate_left(14));
    c ^= b;
    c = c.wrapping_sub(b.rotate_left(24));
    c
}

/// The hash `bpf_get_stackid` gives `ips`: `jhash2` over their 32-bit halves (host order), seed 0.
pub fn stack_hash(ips: &[u64]) -> u32 {
    let words: Vec<u32> = ips
        .iter()
        .flat_map(|ip| {
            let b = ip.to_ne_bytes();
            [
                u32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
                u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
            ]
        })
        .collect();
    jhash2(&words, 0)
}

struct Bucket {
    hash: u32,
    ips: Vec<u64>,
}

struct Buckets {
    buckets: Vec<Option<Bucket>>,
    /// Stacks stored (at most `max_entries`).
    used: u32,
}

pub struct StackTraceMap {
    common: MapCommon,
    state: Mutex<Buckets>,
}

impl StackTraceMap {
    pub fn new(def: MapDef) -> MapResult<StackTraceMap> {
        let n = def.max_entries.next_power_of_two() as usize;
        let mut buckets = Vec::new();
        buckets.try_reserve_exact(n).map_err(|_| {
            MapError::new(
                ErrorCode::E2big,
                format!("cannot allocate {n} stack buckets"),
            )
        })?;
        buckets.resize_with(n, || None);
        Ok(StackTraceMap {
            common: MapCommon::new(def),
            state: Mutex::new(Buckets { buckets, used: 0 }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Buckets> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of buckets: `max_entries` rounded up to a power of two.
    pub fn buckets(&self) -> u32 {
        self.lock().buckets.len() as u32
    }

    /// Entries of one value.
    pub fn max_depth(&self) -> u32 {
        self.common.def.value_size / 8
    }

    /// `bpf_get_stackid` on the callchain `trace` (innermost frame first): the stack id, or the
    /// negative errno of the kernel's `bpf_get_stackid` / `__bpf_get_stackid`.
    pub fn get_stackid(&self, trace: &[u64], flags: u64) -> i64 {
        if flags
            & !(BPF_F_SKIP_FIELD_MASK
                | BPF_F_USER_STACK
                | BPF_F_FAST_STACK_CMP
                | BPF_F_REUSE_STACKID)
            != 0
        {
            return -EINVAL;
        }
        let skip = (flags & BPF_F_SKIP_FIELD_MASK) as usize;
        // The callchain is taken max_depth + skip deep (at most PERF_MAX_STACK).
        let depth = (self.max_depth() as usize + skip).min(PERF_MAX_STACK as usize);
        let trace = &trace[..trace.len().min(depth)];
        if trace.len() <= skip {
            return -EFAULT;
        }
        let ips = &trace[skip..];
        let hash = stack_hash(ips);
        let mut s = self.lock();
        let id = hash as usize & (s.buckets.len() - 1);
        let hash_matches = s.buckets[id].as_ref().is_some_and(|b| b.hash == hash);
        if hash_matches && flags & BPF_F_FAST_STACK_CMP != 0 {
            return id as i64;
        }
        if hash_matches && s.buckets[id].as_ref().is_some_and(|b| b.ips == ips) {
            return id as i64;
        }
        let occupied = s.buckets[id].is_some();
        if occupied && flags & BPF_F_REUSE_STACKID == 0 {
            return -EEXIST;
        }
        // A new stored stack comes from the freelist; the replaced one goes back to it.
        if !occupied && s.used >= self.common.def.max_entries {
            return -ENOMEM;
        }
        if !occupied {
            s.used += 1;
        }
        s.buckets[id] = Some(Bucket {
            hash,
            ips: ips.to_vec(),
        });
        id as i64
    }
}

/// `bpf_get_stack` on the callchain `trace` into a buffer of `size` bytes: the bytes to copy (the
/// buffer's start; the rest is zeroed) and the helper's return value (bytes copied or the negative
/// errno; on an error the whole buffer is zeroed). `BPF_F_USER_BUILD_ID` gives 32-byte
/// `struct bpf_stack_build_id` records with status `BPF_STACK_BUILD_ID_IP` (2), what the kernel
/// writes when it finds no build id (this runtime knows none).
pub fn get_stack(trace: &[u64], size: u32, flags: u64) -> (Vec<u8>, i64) {
    let zero = |err: i64| (vec![0u8; size as usize], -err);
    if flags & !(BPF_F_SKIP_FIELD_MASK | BPF_F_USER_STACK | BPF_F_USER_BUILD_ID) != 0 {
        return zero(EINVAL);
    }
    let user = flags & BPF_F_USER_STACK != 0;
    let build_id = flags & BPF_F_USER_BUILD_ID != 0;
    if build_id && !user {
        return zero(EINVAL);
    }
    let elem = if build_id { 32 } else { 8 };
    if !size.is_multiple_of(elem) {
        return zero(EINVAL);
    }
    let skip = (flags & BPF_F_SKIP_FIELD_MASK) as usize;
    let num = (size / elem) as usize;
    let depth = (num + skip).min(PERF_MAX_STACK as usize);
    let trace = &trace[..trace.len().min(depth)];
    if trace.len() < skip {
        return zero(EFAULT);
    }
    let ips = &trace[skip..];
    let ips = &ips[..ips.len().min(num)];
    let mut out = vec![0u8; size as usize];
    for (i, ip) in ips.iter().enumerate() {
        if build_id {
            let at = i * 32;
            out[at..at + 4].copy_from_slice(&2i32.to_ne_bytes());
            out[at + 24..at + 32].copy_from_slice(&ip.to_ne_bytes());
        } else {
            out[i * 8..i * 8 + 8].copy_from_slice(&ip.to_ne_bytes());
        }
    }
    let copied = ips.len() as i64 * elem as i64;
    (out, copied)
}

fn key_id(key: &[u8]) -> usize {
    u32::from_ne_bytes([key[0], key[1], key[2], key[3]]) as usize
}

impl Map for StackTraceMap {
    map_identity!();

    fn lookup_elem(&self, key: &[u8]) -> MapResult<Vec<u8>> {
        let s = self.lock();
        let id = key_id(key);
        let Some(Some(b)) = s.buckets.get(id) else {
            return Err(MapError::new(
                ErrorCode::Enoent,
                format!("no stack with id {id}"),
            ));
        };
        let mut v = vec![0u8; self.common.def.value_size as usize];
        for (i, ip) in b.ips.iter().enumerate() {
            v[i * 8..i * 8 + 8].copy_from_slice(&ip.to_ne_bytes());
        }
        Ok(v)
    }

    fn update_elem(&self, _key: &[u8], _value: &[u8], _flags: u64) -> MapResult<()> {
        Err(MapError::new(
            ErrorCode::Einval,
            "stack trace maps are filled by bpf_get_stackid only",
        ))
    }

    fn delete_elem(&self, key: &[u8]) -> MapResult<()> {
        let mut s = self.lock();
        let id = key_id(key);
        if id >= s.buckets.len() {
            return Err(MapError::new(
                ErrorCode::E2big,
                format!(
                    "stack id {id} is outside the map's {} buckets",
                    s.buckets.len()
                ),
            ));
        }
        if s.buckets[id].take().is_none() {
            return Err(MapError::new(
                ErrorCode::Enoent,
                format!("no stack with id {id}"),
            ));
        }
        s.used -= 1;
        Ok(())
    }

    fn get_next_key(&self, key: Option<&[u8]>) -> MapResult<Vec<u8>> {
        let s = self.lock();
        let n = s.buckets.len();
        let mut id = match key.map(key_id) {
            Some(id) if id < n && s.buckets[id].is_some() => id + 1,
            _ => 0,
        };
        while id < n && s.buckets[id].is_none() {
            id += 1;
        }
        if id >= n {
            return Err(MapError::new(
                ErrorCode::Enoent,
                "no stack id after this one",
            ));
        }
        Ok((id as u32).to_ne_bytes().to_vec())
    }

    fn len(&self) -> usize {
        self.lock().used as usize
    }
}
