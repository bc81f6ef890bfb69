//! Executable memory for compiled code, W^X: mapped read+write, filled, then switched to
//! read+execute with `mprotect` before anything runs; never writable and executable at once.
//! Unmapped on drop.

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

impl ExecMem {
    pub fn new(code: &[u8]) -> Result<ExecMem, String> {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let page = if page > 0 { page as usize } else { 4096 };
        let len = code.len().max(1).div_ceil(page) * page;
        // SAFETY: a fresh anonymous private mapping; the result is checked.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(format!(
                "mmap of {len} bytes for JIT code failed: {}",
                std::io::Error::last_os_error()
            ));
        }
        let mem = ExecMem {
            ptr: ptr as *mut u8,
            len,
            code_len: code.len(),
        };
        // SAFETY: the mapping is `len >= code.len()` bytes and writable; the tail stays zero,
        // then becomes int3-free padding that is never jumped to.
        unsafe {
            std::ptr::copy_nonoverlapping(code.as_ptr(), mem.ptr, code.len());
            if libc::mprotect(ptr, len, libc::PROT_READ | libc::PROT_EXEC) != 0 {
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
        // SAFETY: unmapping exactly what `new` mapped; nothing runs the code any more (runs
        // borrow the program that owns this value).
        unsafe {
            libc::munmap(self.ptr as *mut libc::c_void, self.len);
        }
    }
}

impl std::fmt::Debug for ExecMem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ExecMem({} bytes at {:p})", self.code_len, self.ptr)
    }
}
