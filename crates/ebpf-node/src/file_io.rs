//! File access for `filterPcap`'s fast road (pcap_records.rs), on descriptors the TypeScript layer
//! opened: a read-only mapping of a window of the input (no copy into a read buffer: the records
//! are walked and filtered where the page cache holds them), and a vectored writer that sends the
//! kept records to the output from where they lie (only a header that must change is written
//! anew), in `writev` calls of up to `IOV_MAX` pieces.

use std::io;

/// Pieces one `writev` takes at most (Linux's `IOV_MAX`).
const IOV_MAX: usize = 1024;

/// The size of the file open as `fd`.
pub fn file_size(fd: i32) -> io::Result<u64> {
    // SAFETY: fstat writes the struct it is given; `stat` is plain data, valid when zeroed.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st.st_size as u64)
}

/// Bytes `from..to` of the file open as `fd`, mapped read-only and populated up front (one call
/// into the kernel for the whole window instead of a fault per 64 KiB), unmapped on drop.
///
/// Like any reader that maps a file, a pass whose file is cut shorter by another process while
/// it is mapped is ended by SIGBUS on the first page past the new end.
pub struct Window {
    base: *mut libc::c_void,
    mapped: usize,
    /// Offset of `from` in the mapping (the mapping starts on a page boundary).
    skip: usize,
}

impl Window {
    pub fn map(fd: i32, from: u64, to: u64) -> io::Result<Window> {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
        let start = from - from % page;
        let mapped = (to - start) as usize;
        if to <= from {
            return Ok(Window {
                base: std::ptr::null_mut(),
                mapped: 0,
                skip: 0,
            });
        }
        // SAFETY: a fresh private read-only mapping of the file; nothing else refers to it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mapped,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_POPULATE,
                fd,
                start as libc::off_t,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Window {
            base,
            mapped,
            skip: (from - start) as usize,
        })
    }

    /// The bytes from `from` to `to`.
    pub fn bytes(&self) -> &[u8] {
        if self.mapped == 0 {
            return &[];
        }
        // SAFETY: `mapped` readable bytes at `base`, alive as long as `self`.
        unsafe {
            std::slice::from_raw_parts(self.base.cast::<u8>(), self.mapped)
                .get_unchecked(self.skip..)
        }
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        if self.mapped != 0 {
            // SAFETY: the mapping made in `map`, no longer borrowed (`bytes` borrows `self`).
            unsafe { libc::munmap(self.base, self.mapped) };
        }
    }
}

/// Writes pieces of memory to `fd` in order, gathered into `writev` calls. The pieces are borrowed
/// for `'a` (the input window, or `header`'s own slots), so they need no copy; `flush` before they
/// go away.
pub struct Gather<'a> {
    fd: i32,
    pieces: Vec<libc::iovec>,
    /// Record headers written anew, each a piece: a fixed block so that pieces can point into it.
    headers: Box<[[u8; 16]; IOV_MAX]>,
    used: usize,
    _borrow: std::marker::PhantomData<&'a [u8]>,
}

impl<'a> Gather<'a> {
    pub fn new(fd: i32) -> Gather<'a> {
        Gather {
            fd,
            pieces: Vec::with_capacity(IOV_MAX),
            headers: Box::new([[0; 16]; IOV_MAX]),
            used: 0,
            _borrow: std::marker::PhantomData,
        }
    }

    /// Queues `bytes` (joined to the piece before when they follow it in memory).
    pub fn push(&mut self, bytes: &'a [u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        if let Some(last) = self.pieces.last_mut() {
            if last.iov_base.cast::<u8>().wrapping_add(last.iov_len) == bytes.as_ptr().cast_mut() {
                last.iov_len += bytes.len();
                return Ok(());
            }
        }
        if self.pieces.len() == IOV_MAX {
            self.flush()?;
        }
        self.pieces.push(libc::iovec {
            iov_base: bytes.as_ptr().cast_mut().cast(),
            iov_len: bytes.len(),
        });
        Ok(())
    }

    /// Queues a record header of its own.
    pub fn push_header(&mut self, header: [u8; 16]) -> io::Result<()> {
        if self.used == IOV_MAX || self.pieces.len() == IOV_MAX {
            self.flush()?;
        }
        self.headers[self.used] = header;
        let slot = &self.headers[self.used];
        self.used += 1;
        self.pieces.push(libc::iovec {
            iov_base: slot.as_ptr().cast_mut().cast(),
            iov_len: 16,
        });
        Ok(())
    }

    /// Writes every queued piece (a short write goes on from where it stopped).
    pub fn flush(&mut self) -> io::Result<()> {
        let mut first = 0;
        while first < self.pieces.len() {
            let rest = &self.pieces[first..];
            // SAFETY: every piece points at `iov_len` bytes alive for 'a or in `headers`.
            let n = unsafe { libc::writev(self.fd, rest.as_ptr(), rest.len() as libc::c_int) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            let mut n = n as usize;
            while n > 0 {
                let piece = &mut self.pieces[first];
                if n >= piece.iov_len {
                    n -= piece.iov_len;
                    first += 1;
                } else {
                    piece.iov_base = piece.iov_base.cast::<u8>().wrapping_add(n).cast();
                    piece.iov_len -= n;
                    n = 0;
                }
            }
        }
        self.pieces.clear();
        self.used = 0;
        Ok(())
    }
}
