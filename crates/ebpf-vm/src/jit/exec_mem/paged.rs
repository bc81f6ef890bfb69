//! The fallback scheme for executable memory (`super`), W^X by `mprotect`: each program has
//! its own pages, written while read+write, then switched to read+execute before anything runs.
//!
//! Mappings are recycled: a dropped program's mapping is made read+write again (so no longer
//! executable: a stale pointer into freed code faults) and kept in a small pool that the next
//! load of about that size takes, so a load maps nothing and faults no page in: it copies its
//! code and calls `mprotect` once. (Mapping, faulting in and unmapping fresh pages was about a
//! sixth of the JIT's load of the 316-instruction `parse` bench program.) The pool is bounded
//! in mappings and in bytes; what does not fit is unmapped.

use super::{page_size, PADDING};

use std::sync::Mutex;

/// At most this many idle mappings are kept...
const POOL_MAPPINGS: usize = 16;
/// ...holding at most this many bytes together; a mapping larger than this is never kept.
const POOL_BYTES: usize = 1 << 20;

/// Idle mappings, read+write and not executable: (address, length in whole pages).
static POOL: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());

/// An idle mapping of `len` bytes or more but less than twice that (a larger one would hold
/// memory the code does not use for as long as the program lives), the smallest such.
fn take_pooled(len: usize) -> Option<(usize, usize)> {
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let (i, _) = (pool.iter().enumerate())
        .filter(|(_, &(_, l))| l >= len && l < 2 * len)
        .min_by_key(|(_, &(_, l))| l)?;
    Some(pool.swap_remove(i))
}

/// Keeps the mapping of `len` bytes at `ptr` (read+execute, run by nothing any more) for a later
/// load, made read+write first (so no longer executable), or says it did not: the pool was full
/// (checked before the `mprotect`, which a mapping about to be unmapped need not pay for) or the
/// `mprotect` failed. The lock is held across the `mprotect`, so that the room found is still
/// there when the mapping goes in.
///
/// # Safety
/// `ptr` and `len` must be those of a mapping from `map`, which nothing uses any more.
unsafe fn keep(ptr: *mut u8, len: usize) -> bool {
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let held: usize = pool.iter().map(|&(_, l)| l).sum();
    if pool.len() >= POOL_MAPPINGS || held + len > POOL_BYTES {
        return false;
    }
    // SAFETY: per the contract, a whole mapping of ours that nothing uses.
    if unsafe { libc::mprotect(ptr.cast(), len, libc::PROT_READ | libc::PROT_WRITE) } != 0 {
        return false;
    }
    pool.push((ptr as usize, len));
    true
}

/// A fresh read+write mapping of `len` bytes, between two inaccessible guard pages: its
/// neighbours never share its permissions, so the kernel never merges it with them, and
/// switching it between read+write and read+execute changes one whole area in place (splitting
/// and merging areas at each switch was most of the cost of `mprotect`).
fn map(len: usize) -> Result<*mut u8, String> {
    let page = page_size();
    let fail = |what: &str| {
        format!(
            "{what} of {len} bytes for JIT code failed: {}",
            std::io::Error::last_os_error()
        )
    };
    // SAFETY: a fresh anonymous private mapping; the result is checked.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len + 2 * page,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(fail("mmap"));
    }
    // SAFETY: inside the mapping just made.
    let ptr = unsafe { base.cast::<u8>().add(page) };
    // SAFETY: the pages between the guards, of the mapping just made.
    if unsafe { libc::mprotect(ptr.cast(), len, libc::PROT_READ | libc::PROT_WRITE) } != 0 {
        let e = fail("mprotect");
        // SAFETY: unmapping what was just mapped.
        unsafe { libc::munmap(base, len + 2 * page) };
        return Err(e);
    }
    Ok(ptr)
}

/// Unmaps what `map` mapped for `len` bytes at `ptr`, guards included.
///
/// # Safety
/// `ptr` and `len` must be those of a mapping from `map`, which nothing uses any more.
unsafe fn unmap(ptr: *mut u8, len: usize) {
    let page = page_size();
    // SAFETY: per the contract, the guard pages lie one page on either side.
    unsafe { libc::munmap(ptr.sub(page).cast(), len + 2 * page) };
}

/// One program's pages: read+execute from `new` until dropped, then back to the pool (read+write)
/// or unmapped.
pub struct Pages {
    ptr: *mut u8,
    /// Mapped length (whole pages).
    len: usize,
}

impl Pages {
    /// Pages holding `code`, then `int3` to their end, read+execute.
    pub fn new(code: &[u8]) -> Result<Pages, String> {
        let page = page_size();
        let len = code.len().max(1).div_ceil(page) * page;
        let (ptr, len) = match take_pooled(len) {
            Some((ptr, len)) => (ptr as *mut u8, len),
            None => (map(len)?, len),
        };
        // From here on the mapping is owned by `pages`: dropped on an error, it goes back to
        // the pool or is unmapped.
        let pages = Pages { ptr, len };
        // SAFETY: the mapping is `len >= code.len()` bytes, read+write (fresh, or made so when
        // it went into the pool) and used by nothing else.
        unsafe {
            std::ptr::copy_nonoverlapping(code.as_ptr(), ptr, code.len());
            std::ptr::write_bytes(ptr.add(code.len()), PADDING, len - code.len());
            if libc::mprotect(ptr.cast(), len, libc::PROT_READ | libc::PROT_EXEC) != 0 {
                return Err(format!(
                    "mprotect of JIT code to read+exec failed: {}",
                    std::io::Error::last_os_error()
                ));
            }
        }
        Ok(pages)
    }

    pub fn entry(&self) -> *const u8 {
        self.ptr
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        // SAFETY: the mapping is exactly what `new` took or mapped, and nothing runs the code any
        // more (runs borrow the program that owns this value). Made read+write (not executable)
        // before another load may take it; unmapped if the pool is full or that fails.
        unsafe {
            if !keep(self.ptr, self.len) {
                unmap(self.ptr, self.len);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::perms;
    use super::*;

    #[test]
    fn a_recycled_mapping_holds_only_the_new_code() {
        let big = vec![0x90; 3000];
        for _ in 0..4 {
            let a = Pages::new(&big).unwrap();
            drop(a);
            let b = Pages::new(&[0xc3]).unwrap();
            // SAFETY: inside the mapping, which is readable.
            let all = unsafe { std::slice::from_raw_parts(b.entry(), b.len) };
            assert_eq!(all[0], 0xc3);
            assert!(
                all[1..].iter().all(|&x| x == PADDING),
                "old code left behind"
            );
            assert_eq!(perms(b.entry() as usize).as_deref(), Some("r-xp"));
        }
    }

    #[test]
    fn the_pool_is_bounded() {
        let held: Vec<Pages> = (0..3 * POOL_MAPPINGS)
            .map(|_| Pages::new(&[0xc3; 100]).unwrap())
            .collect();
        drop(held);
        let pool = POOL.lock().unwrap();
        assert!(pool.len() <= POOL_MAPPINGS);
        assert!(pool.iter().map(|&(_, l)| l).sum::<usize>() <= POOL_BYTES);
        for &(ptr, _) in pool.iter() {
            assert_eq!(perms(ptr).as_deref(), Some("rw-p"));
        }
    }
}
