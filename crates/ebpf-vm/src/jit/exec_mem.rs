//! Executable memory for compiled code, W^X: no mapping is ever writable and executable at once.
//!
//! Two schemes, chosen once, at the first load:
//! - `arena` (the usual one): code is written through a read+write view of a memory file and runs
//!   from a read+execute view of the same file, at another address; a load and a drop make no
//!   system call once an arena is mapped.
//! - `paged` (the fallback, where arenas cannot be made: `memfd_create` or `mmap` refused by a
//!   seccomp filter or a limit): pages of its own per program, switched between read+write and
//!   read+execute with `mprotect` at each load and drop. It also takes code too large for an
//!   arena, and loads when no arena has room and none can be mapped.

mod arena;
mod paged;

/// Fills the bytes past the code, and freed code: `int3`, which traps if ever executed.
const PADDING: u8 = 0xcc;

/// Where a program's code lives.
enum Home {
    Arena(arena::Chunk),
    Pages(paged::Pages),
}

pub struct ExecMem {
    home: Home,
    /// Bytes of code.
    code_len: usize,
}

// SAFETY: the code is immutable (read+execute) once built and owned by this value alone.
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

/// Makes every later load take the fallback scheme, if no load has chosen yet; says whether the
/// fallback is now the choice. For the test of the fallback (a process of its own).
pub fn force_fallback() -> bool {
    arena::force_fallback()
}

impl ExecMem {
    /// Read+execute memory holding `code`, then `int3` to the end of what it takes.
    pub fn new(code: &[u8]) -> Result<ExecMem, String> {
        let chunk = if arena::usable() {
            arena::alloc(code)
        } else {
            None
        };
        let home = match chunk {
            Some(chunk) => Home::Arena(chunk),
            None => Home::Pages(paged::Pages::new(code)?),
        };
        Ok(ExecMem {
            home,
            code_len: code.len(),
        })
    }

    pub fn entry(&self) -> *const u8 {
        match &self.home {
            Home::Arena(chunk) => chunk.exec,
            Home::Pages(pages) => pages.entry(),
        }
    }

    /// The code as mapped (read through the executable view), for disassembly.
    pub fn code(&self) -> &[u8] {
        // SAFETY: the first `code_len` bytes at the entry hold the code, readable.
        unsafe { std::slice::from_raw_parts(self.entry(), self.code_len) }
    }
}

impl Drop for ExecMem {
    fn drop(&mut self) {
        if let Home::Arena(chunk) = &self.home {
            // SAFETY: the chunk `new` took; nothing runs the code any more (runs borrow the
            // program that owns this value).
            unsafe { arena::free(chunk) };
        }
        // Pages give themselves back as they drop.
    }
}

impl std::fmt::Debug for ExecMem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ExecMem({} bytes at {:p})", self.code_len, self.entry())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// The permissions (`r-xs`, ...) of the mapping holding `addr`, from /proc/self/maps.
    pub fn perms(addr: usize) -> Option<String> {
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
        // ret; then int3 to the end of what the code takes.
        let a = ExecMem::new(&[0xc3]).unwrap();
        let at = a.entry() as usize;
        // A shared mapping of the arena's file (or private pages, where arenas cannot be made).
        assert!(matches!(perms(at).as_deref(), Some("r-xs" | "r-xp")));
        assert_eq!(a.code(), [0xc3]);
        // SAFETY: inside the chunk (whole 64-byte granules), which is readable.
        let tail = unsafe { std::slice::from_raw_parts(a.entry(), 64) };
        assert!(tail[1..].iter().all(|&b| b == PADDING));
        // The arenas' file is never mapped writable and executable at once.
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        for line in maps.lines().filter(|l| l.contains("memfd:ebpf-jit-code")) {
            let p = line.split(' ').nth(1).unwrap();
            assert!(p == "r-xs" || p == "rw-s", "{line}");
        }
    }
}
