//! Executable memory for compiled code, W^X: written while read+write, then switched to
//! read+execute with `mprotect` before anything runs; never writable and executable at once.
//!
//! Mappings are recycled: a dropped program's mapping is made read+write again (so no longer
//! executable: a stale pointer into freed code faults) and kept in a small pool that the next
//! load of about that size takes, so a load maps nothing and faults no page in: it copies its
//! code and calls `mprotect` once. (Mapping, faulting in and unmapping fresh pages was about a
//! sixth of the JIT's load of the 316-instruction `parse` bench program.) The pool is bounded
//! in mappings and in bytes; what does not fit is unmapped.

use std::sync::Mutex;

/// At most this many idle mappings are kept...
const POOL_MAPPINGS: usize = 16;
/// ...holding at most this many bytes together; a mapping larger than this is never kept.
const POOL_BYTES: usize = 1 << 20;

/// Idle mappings, read+write and not executable: (address, length in whole pages).
static POOL: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());

/// Fills the bytes past the code: `int3`, which traps if ever executed.
const PADDING: u8 = 0xcc;

pub struct ExecMem {
    ptr: *mut u8,
    /// Mapped length (whole pages).
    len: usize,
    /// Bytes of code.
    code_len: usize,
}

// SAFETY: the mapping is immutable (read+execute) once built and owned by this value alone.
unsafe impl Send for ExecMem {}
unsafe impl Sync for ExecMem {}

/// The page size, asked of the system once (a `sysconf` per load was measurable).
fn page_size() -> usize {
    static PAGE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if page > 0 {
            page as usize
        } else {
            4096
        }
    })
}

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

impl ExecMem {
    pub fn new(code: &[u8]) -> Result<ExecMem, String> {
        let page = page_size();
        let len = code.len().max(1).div_ceil(page) * page;
        let (ptr, len) = match take_pooled(len) {
            Some((ptr, len)) => (ptr as *mut u8, len),
            None => (map(len)?, len),
        };
        // From here on the mapping is owned by `mem`: dropped on an error, it goes back to the
        // pool or is unmapped.
        let mem = ExecMem {
            ptr,
            len,
            code_len: code.len(),
        };
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
        Ok(mem)
    }

    pub fn entry(&self) -> *const u8 {
        self.ptr
    }

    /// The code as mapped, for disassembly.
    pub fn code(&self) -> &[u8] {
        // SAFETY: the first `code_len` bytes of the readable mapping hold the code.
        unsafe { std::slice::from_raw_parts(self.ptr, self.code_len) }
    }
}

impl Drop for ExecMem {
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

impl std::fmt::Debug for ExecMem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ExecMem({} bytes at {:p})", self.code_len, self.ptr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The permissions (`r-xp`, ...) of the mapping holding `addr`, from /proc/self/maps.
    fn perms(addr: usize) -> Option<String> {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        maps.lines().find_map(|line| {
            let (range, rest) = line.split_once(' ')?;
            let (lo, hi) = range.split_once('-')?;
            let (lo, hi) = (
                usize::from_str_radix(lo, 16).ok()?,
                usize::from_str_radix(hi, 16).ok()?,
            );
            (lo <= addr && addr < hi).then(|| rest[..4].to_string())
        })
    }

    #[test]
    fn code_is_never_writable_and_executable() {
        // ret; then what the mapping holds past the code.
        let a = ExecMem::new(&[0xc3]).unwrap();
        let at = a.entry() as usize;
        assert_eq!(perms(at).as_deref(), Some("r-xp"));
        assert_eq!(a.code(), [0xc3]);
        // SAFETY: inside the mapping, which is readable.
        let tail = unsafe { std::slice::from_raw_parts(a.entry(), a.len) };
        assert!(tail[1..].iter().all(|&b| b == PADDING));
        drop(a);
        // Pooled (read+write, not executable) or unmapped; other tests may have taken it since.
        assert!(matches!(perms(at).as_deref(), None | Some("rw-p" | "r-xp")));
    }

    #[test]
    fn a_recycled_mapping_holds_only_the_new_code() {
        let big = vec![0x90; 3000];
        for _ in 0..4 {
            let a = ExecMem::new(&big).unwrap();
            drop(a);
            let b = ExecMem::new(&[0xc3]).unwrap();
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
        let held: Vec<ExecMem> = (0..3 * POOL_MAPPINGS)
            .map(|_| ExecMem::new(&[0xc3; 100]).unwrap())
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
