//! The main scheme for executable memory (`super`): arenas of one memory file (`memfd_create`)
//! mapped twice, a read+execute view that code runs from and a read+write view that loads write
//! through. No mapping is ever writable and executable; a load or a drop makes no system call
//! once an arena is mapped (the kernel's part of the fallback's `mprotect` pair, `paged.rs`, was
//! 14-20% of the samples of the JIT's load of the bench programs under `perf`).
//!
//! Chunks are handed out first fit from each arena's sorted, coalesced free list, in multiples of
//! `GRANULE` bytes (the compiler aligns loop heads relative to the code's start, so a chunk
//! starts where the code would on a page of its own, modulo the cache line). A freed chunk is
//! filled with `int3` through the write view at once, so a stale pointer into it traps.
//!
//! Memory: an arena that no chunk is handed out of any more is unmapped, unless it is the only
//! such one, which is kept for the next load (as the fallback's pool keeps up to 1 MiB): a
//! load-drop cycle maps nothing, and what is held beyond live code is at most one empty arena
//! and the holes in arenas that hold code. Code larger than `LARGEST` gets pages of its own from
//! the fallback (rare, and its compile costs far more than two `mprotect`s).
//!
//! Fork: the views are shared mappings, so after `fork` parent and child see the same bytes. The
//! prepare handler takes the lock (no chunk is half handed out at the fork); the child's handler
//! marks every arena inherited, never written nor handed out of in the child (the parent goes on
//! using it; new loads in the child map arenas of their own), and both handlers advance the
//! epoch: a chunk handed out before the fork may still be run by the other process's copy of
//! its program, so once freed it is neither filled nor reused (an arena left with such holes is
//! unmapped, in this process only, when its last chunk is freed). Only `fork` (which runs the
//! handlers) is covered; a raw `clone` without `CLONE_VM` is not.
//!
//! Code written through one view and run through the other needs no cache maintenance on x86-64:
//! instruction fetch stays coherent with stores to the same physical memory, whatever the
//! virtual address; a program reaches another thread only through the synchronisation that
//! hands it over.
//!
//! Valgrind translates code once and, for file-backed memory such as these views, does not
//! watch it for writes: reused code addresses are announced with its client request
//! `DISCARD_TRANSLATIONS` (a few register rotations, a no-op on hardware).

use super::PADDING;
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// Bytes of one arena: a few dozen programs the size of the bench programs' (3-12 KB of code).
pub const ARENA_BYTES: usize = 1 << 20;
/// Larger code gets its own pages from the fallback: it would fragment arenas.
pub const LARGEST: usize = ARENA_BYTES / 4;
/// Chunks start at, and span, multiples of this (the compiler's `LOOP_ALIGN`).
const GRANULE: usize = 64;
const _: () = assert!(GRANULE == crate::jit::compile::LOOP_ALIGN);

/// One memory file mapped twice.
struct Arena {
    /// The read+execute view, which code runs from.
    exec: *mut u8,
    /// The read+write view, at an address no program is given; null once inherited and settled.
    write: *mut u8,
    /// Free ranges (offset, length), sorted by offset, none adjacent to another.
    free: Vec<(usize, usize)>,
    /// Chunks handed out and not freed (in this process).
    live: usize,
    /// Mapped by the parent before a fork (in a child): never written nor handed out of here.
    inherited: bool,
}

impl Arena {
    fn contains(&self, exec: *const u8) -> bool {
        (self.exec as usize..self.exec as usize + ARENA_BYTES).contains(&(exec as usize))
    }

    fn is_empty(&self) -> bool {
        self.free[..] == [(0, ARENA_BYTES)]
    }

    /// The offset of `len` free bytes, taken from the first range that holds them.
    fn take(&mut self, len: usize) -> Option<usize> {
        let i = self.free.iter().position(|&(_, l)| l >= len)?;
        let (at, l) = self.free[i];
        if l == len {
            self.free.remove(i);
        } else {
            self.free[i] = (at + len, l - len);
        }
        Some(at)
    }

    /// Gives `len` bytes at `at` back, merged with the free ranges beside them.
    fn give_back(&mut self, at: usize, len: usize) {
        let i = self.free.partition_point(|&(o, _)| o < at);
        let joins_next = i < self.free.len() && at + len == self.free[i].0;
        let joins_prev = i > 0 && self.free[i - 1].0 + self.free[i - 1].1 == at;
        match (joins_prev, joins_next) {
            (true, true) => {
                self.free[i - 1].1 += len + self.free[i].1;
                self.free.remove(i);
            }
            (true, false) => self.free[i - 1].1 += len,
            (false, true) => self.free[i] = (at, len + self.free[i].1),
            (false, false) => self.free.insert(i, (at, len)),
        }
    }

    /// Unmaps both views (this process's only: another process's stay as they are).
    fn unmap(self) {
        // SAFETY: the views were mapped `ARENA_BYTES` long by `map_arena`; nothing runs or
        // writes them any more (the caller's contract).
        unsafe {
            libc::munmap(self.exec.cast(), ARENA_BYTES);
            if !self.write.is_null() {
                libc::munmap(self.write.cast(), ARENA_BYTES);
            }
        }
    }
}

/// The arenas, behind a lock that `fork` takes (see the module's text).
struct State {
    arenas: Vec<Arena>,
    /// Advanced by every fork, in parent and child: chunks handed out in an older epoch are
    /// neither filled nor reused once freed.
    epoch: u64,
    /// The epoch inherited arenas were last settled in (write views unmapped, empty ones gone).
    settled: u64,
}

struct Shared {
    lock: UnsafeCell<libc::pthread_mutex_t>,
    state: UnsafeCell<State>,
}

// SAFETY: `state` is only reached through `Guard`, which holds `lock`.
unsafe impl Sync for Shared {}

static SHARED: Shared = Shared {
    lock: UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER),
    state: UnsafeCell::new(State {
        arenas: Vec::new(),
        epoch: 0,
        settled: 0,
    }),
};

/// `SHARED.state`, locked. A pthread mutex rather than `std::sync::Mutex`: the fork handlers
/// lock it in one handler and unlock it in another.
struct Guard;

impl Guard {
    fn lock() -> Guard {
        // SAFETY: a statically initialised mutex, only locked and unlocked in pairs.
        unsafe { libc::pthread_mutex_lock(SHARED.lock.get()) };
        Guard
    }
}

impl std::ops::Deref for Guard {
    type Target = State;
    fn deref(&self) -> &State {
        // SAFETY: the lock is held.
        unsafe { &*SHARED.state.get() }
    }
}

impl std::ops::DerefMut for Guard {
    fn deref_mut(&mut self) -> &mut State {
        // SAFETY: the lock is held, by this guard alone.
        unsafe { &mut *SHARED.state.get() }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // SAFETY: locked by `Guard::lock`.
        unsafe { libc::pthread_mutex_unlock(SHARED.lock.get()) };
    }
}

extern "C" fn before_fork() {
    std::mem::forget(Guard::lock());
}

/// Unlocks what `before_fork` locked, in the process it runs in.
fn after_fork(child: bool) {
    // SAFETY: `before_fork` locked the mutex in this thread (the child's only one), and the
    // state is this process's own copy.
    unsafe {
        let state = &mut *SHARED.state.get();
        state.epoch += 1;
        if child {
            for arena in &mut state.arenas {
                arena.inherited = true;
            }
        }
        libc::pthread_mutex_unlock(SHARED.lock.get());
    }
}

extern "C" fn after_fork_parent() {
    after_fork(false)
}

extern "C" fn after_fork_child() {
    after_fork(true)
}

/// Set by `force_fallback`.
static FALLBACK_FORCED: AtomicBool = AtomicBool::new(false);

/// Makes `usable` answer no, if it has not answered yet; says whether it now answers no.
pub fn force_fallback() -> bool {
    FALLBACK_FORCED.store(true, Ordering::SeqCst);
    !usable()
}

static USABLE: OnceLock<bool> = OnceLock::new();

/// Whether arenas can be made here (chosen once, at the first load): the fork handlers are
/// registered and a first arena is mapped. Refused `memfd_create` or `mmap` (seccomp filters,
/// limits) leave every load to the fallback.
pub fn usable() -> bool {
    *USABLE.get_or_init(|| {
        if FALLBACK_FORCED.load(Ordering::SeqCst) {
            return false;
        }
        let Ok(arena) = map_arena() else {
            return false;
        };
        // SAFETY: plain function pointers that live as long as the process.
        let registered = unsafe {
            libc::pthread_atfork(
                Some(before_fork),
                Some(after_fork_parent),
                Some(after_fork_child),
            )
        } == 0;
        if !registered {
            arena.unmap();
            return false;
        }
        Guard::lock().arenas.push(arena);
        true
    })
}

/// A fresh arena: a memory file of `ARENA_BYTES` (zeros), mapped read+execute and read+write.
fn map_arena() -> std::io::Result<Arena> {
    let err = std::io::Error::last_os_error;
    // SAFETY: plain system calls on a file this function owns; every result is checked, and
    // the file is closed whatever happens (the mappings keep its memory).
    unsafe {
        // The system call itself rather than glibc's wrapper (2.27 and later): a binary built
        // against an older glibc still links, and a kernel without it answers ENOSYS.
        let fd = libc::syscall(
            libc::SYS_memfd_create,
            c"ebpf-jit-code".as_ptr(),
            libc::MFD_CLOEXEC,
        ) as libc::c_int;
        if fd < 0 {
            return Err(err());
        }
        let view = |prot| {
            let p = libc::mmap(
                std::ptr::null_mut(),
                ARENA_BYTES,
                prot,
                libc::MAP_SHARED,
                fd,
                0,
            );
            (p != libc::MAP_FAILED).then_some(p.cast::<u8>())
        };
        let mapped = if libc::ftruncate(fd, ARENA_BYTES as libc::off_t) != 0 {
            Err(err())
        } else {
            match (
                view(libc::PROT_READ | libc::PROT_EXEC),
                view(libc::PROT_READ | libc::PROT_WRITE),
            ) {
                (Some(exec), Some(write)) => Ok(Arena {
                    exec,
                    write,
                    free: vec![(0, ARENA_BYTES)],
                    live: 0,
                    inherited: false,
                }),
                (exec, write) => {
                    let e = err();
                    for p in [exec, write].into_iter().flatten() {
                        libc::munmap(p.cast(), ARENA_BYTES);
                    }
                    Err(e)
                }
            }
        };
        libc::close(fd);
        mapped
    }
}

/// Code in an arena, read+execute from `alloc` until `free`.
pub struct Chunk {
    pub exec: *const u8,
    /// Bytes handed out (whole granules).
    pub len: usize,
    /// The epoch it was handed out in.
    epoch: u64,
}

/// A chunk holding `code`, then `int3` to its end; `None` if the code is larger than `LARGEST`
/// or no arena has room and none can be mapped (the fallback then takes the load).
pub fn alloc(code: &[u8]) -> Option<Chunk> {
    let len = code.len().max(1).next_multiple_of(GRANULE);
    if len > LARGEST {
        return None;
    }
    let (exec, write, epoch) = {
        let mut state = Guard::lock();
        state.settle();
        let epoch = state.epoch;
        let found = (state.arenas.iter_mut().enumerate())
            .filter(|(_, a)| !a.inherited)
            .find_map(|(i, a)| Some((i, a.take(len)?)));
        let (i, at) = match found {
            Some(found) => found,
            None => {
                let mut arena = map_arena().ok()?;
                let at = arena.take(len).expect("a fresh arena holds LARGEST");
                state.arenas.push(arena);
                (state.arenas.len() - 1, at)
            }
        };
        let arena = &mut state.arenas[i];
        arena.live += 1;
        // SAFETY: `at + len <= ARENA_BYTES`, inside both views.
        unsafe { (arena.exec.add(at), arena.write.add(at), epoch) }
    };
    // SAFETY: the chunk is this load's alone (handed out above, not yet to any program), and
    // `len >= code.len()` bytes of the read+write view.
    unsafe {
        std::ptr::copy_nonoverlapping(code.as_ptr(), write, code.len());
        std::ptr::write_bytes(write.add(code.len()), PADDING, len - code.len());
    }
    discard_translations(exec, len);
    Some(Chunk { exec, len, epoch })
}

/// Gives `chunk` back: filled with `int3` and reused, or, handed out before a fork, left alone.
///
/// # Safety
/// `chunk` came from `alloc` and nothing runs its code any more.
pub unsafe fn free(chunk: &Chunk) {
    let mut state = Guard::lock();
    let epoch = state.epoch;
    let i = (state.arenas.iter())
        .position(|a| a.contains(chunk.exec))
        .expect("a chunk's arena stays mapped while the chunk is handed out");
    let arena = &mut state.arenas[i];
    arena.live -= 1;
    let at = chunk.exec as usize - arena.exec as usize;
    if !arena.inherited && chunk.epoch == epoch {
        // SAFETY: the chunk lies in the arena's read+write view, and nothing runs it (the
        // caller's contract; no other process has it: handed out in this epoch).
        unsafe { std::ptr::write_bytes(arena.write.add(at), PADDING, chunk.len) };
        arena.give_back(at, chunk.len);
    }
    if arena.live > 0 {
        return;
    }
    // Unused here now: kept if it is whole and the only such arena, else unmapped.
    let arena = &state.arenas[i];
    let keep = !arena.inherited && arena.is_empty() && state.empty_arenas() == 1;
    if !keep {
        state.arenas.swap_remove(i).unmap();
    }
}

impl State {
    /// Arenas that chunks can come from and none is handed out of.
    fn empty_arenas(&self) -> usize {
        (self.arenas.iter())
            .filter(|a| !a.inherited && a.live == 0 && a.is_empty())
            .count()
    }

    /// After a fork, in a child: unmaps the write views of inherited arenas (nothing here writes
    /// them) and the arenas no program of this process uses.
    fn settle(&mut self) {
        if self.settled == self.epoch {
            return;
        }
        self.settled = self.epoch;
        let mut i = 0;
        while i < self.arenas.len() {
            let arena = &mut self.arenas[i];
            if arena.inherited && !arena.write.is_null() {
                // SAFETY: a view `map_arena` mapped; nothing in this process writes it.
                unsafe { libc::munmap(arena.write.cast(), ARENA_BYTES) };
                arena.write = std::ptr::null_mut();
            }
            if arena.inherited && arena.live == 0 {
                self.arenas.swap_remove(i).unmap();
            } else {
                i += 1;
            }
        }
    }
}

/// Tells valgrind (when the process runs under it) to forget its translations of `len` bytes of
/// code at `addr`: it does not watch file-backed memory for writes, and a chunk's addresses may
/// have run other code before. Valgrind's client request on amd64: `rax` points at the request
/// and its arguments, `rdx` holds the default answer; the four rotations of `rdi` (by 128 bits
/// in all: no change) and `xchg rbx, rbx` are what valgrind recognises, and do nothing otherwise.
fn discard_translations(addr: *const u8, len: usize) {
    const DISCARD_TRANSLATIONS: u64 = 0x1002;
    let request: [u64; 6] = [DISCARD_TRANSLATIONS, addr as u64, len as u64, 0, 0, 0];
    // SAFETY: register rotations that end where they began, and an exchange of rbx with itself.
    unsafe {
        std::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            in("rax") request.as_ptr(),
            inout("rdx") 0u64 => _,
            inout("rdi") 0u64 => _,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arena_with(free: &[(usize, usize)]) -> Arena {
        Arena {
            exec: std::ptr::null_mut(),
            write: std::ptr::null_mut(),
            free: free.to_vec(),
            live: 0,
            inherited: false,
        }
    }

    #[test]
    fn free_ranges_are_taken_first_fit_and_merged_when_given_back() {
        let mut a = arena_with(&[(0, ARENA_BYTES)]);
        assert_eq!(a.take(128), Some(0));
        assert_eq!(a.take(64), Some(128));
        assert_eq!(a.take(256), Some(192));
        assert_eq!(a.free, [(448, ARENA_BYTES - 448)]);
        a.give_back(128, 64);
        assert_eq!(a.free, [(128, 64), (448, ARENA_BYTES - 448)]);
        // Too large for the hole: from the tail.
        assert_eq!(a.take(128), Some(448));
        assert_eq!(a.take(64), Some(128));
        a.give_back(0, 128);
        a.give_back(192, 256);
        // 0..128 and 192..448, with 128..192 still out: two ranges.
        assert_eq!(a.free, [(0, 128), (192, 256), (576, ARENA_BYTES - 576)]);
        a.give_back(128, 64);
        assert_eq!(a.free, [(0, 448), (576, ARENA_BYTES - 576)]);
        a.give_back(448, 128);
        assert!(a.is_empty());
        assert_eq!(a.take(ARENA_BYTES + 64), None);
    }

    #[test]
    fn valgrinds_client_request_is_harmless_outside_valgrind() {
        let buf = [0u8; 64];
        discard_translations(buf.as_ptr(), buf.len());
    }
}
