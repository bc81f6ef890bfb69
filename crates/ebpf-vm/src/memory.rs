//! Memory regions of one run. Programs use real host addresses (as in the kernel); in checked mode
//! every access must fall entirely inside one region of the run, and stores need a writable one.
//! The region list is the whole of what a program may touch: its stack, its input data, its
//! context and the map values that helpers handed it during the run.

use crate::error::TrapKind;

/// One contiguous range `[start, start + len)` of host memory that the program may access.
/// `repr(C)` because the JIT reads the table directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Region {
    pub start: u64,
    pub len: u64,
    /// 1 when stores are allowed, 0 when the region is read-only.
    pub writable: u64,
}

impl Region {
    pub fn new(start: u64, len: u64, writable: bool) -> Self {
        Region {
            start,
            len,
            writable: writable as u64,
        }
    }

    pub fn from_slice(s: &[u8]) -> Self {
        Region::new(s.as_ptr() as u64, s.len() as u64, false)
    }

    pub fn from_mut_slice(s: &mut [u8]) -> Self {
        Region::new(s.as_mut_ptr() as u64, s.len() as u64, true)
    }

    /// Whether `[addr, addr + size)` lies inside this region (no overflow possible: the
    /// subtraction happens only once `addr >= start`).
    #[inline(always)]
    pub fn contains(&self, addr: u64, size: u64) -> bool {
        addr >= self.start
            && addr - self.start <= self.len
            && self.len - (addr - self.start) >= size
    }
}

/// The regions of a run, searched in order; the most used (stack, then data) come first.
#[derive(Clone, Debug, Default)]
pub struct Regions {
    list: Vec<Region>,
}

impl Regions {
    pub fn new() -> Self {
        Regions {
            list: Vec::with_capacity(8),
        }
    }

    pub fn push(&mut self, region: Region) {
        if region.len > 0 {
            self.list.push(region);
        }
    }

    pub fn as_slice(&self) -> &[Region] {
        &self.list
    }

    /// Checks an access of `size` bytes at `addr`.
    #[inline(always)]
    pub fn check(&self, addr: u64, size: u64, write: bool) -> Result<(), TrapKind> {
        for r in &self.list {
            if r.contains(addr, size) {
                return if write && r.writable == 0 {
                    Err(TrapKind::ReadOnly)
                } else {
                    Ok(())
                };
            }
        }
        Err(TrapKind::OutOfBounds)
    }

    /// A checked view of run memory for helpers that take pointer arguments.
    pub fn slice(&self, addr: u64, len: u64) -> Result<&[u8], TrapKind> {
        self.check(addr, len, false)?;
        // SAFETY: the range lies inside a region, and regions describe memory that stays alive and
        // in place for the whole run (the run owns or borrows it).
        Ok(unsafe { std::slice::from_raw_parts(addr as *const u8, len as usize) })
    }

    /// A checked mutable view of run memory for helpers that write through pointer arguments.
    #[allow(clippy::mut_from_ref)]
    pub fn slice_mut(&self, addr: u64, len: u64) -> Result<&mut [u8], TrapKind> {
        self.check(addr, len, true)?;
        // SAFETY: as for `slice`; the program is suspended while a helper runs, so the helper is
        // the only writer of run memory during the call.
        Ok(unsafe { std::slice::from_raw_parts_mut(addr as *mut u8, len as usize) })
    }
}
