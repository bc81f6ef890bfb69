//! Value storage shared by programs, Rust and JavaScript: zero-initialised 64-bit words, so every
//! value starts 8-byte aligned (atomic instructions on values are real atomics), allocated once and
//! never moved (addresses handed to programs stay valid as long as the `Words` lives).
//!
//! Rust-side copies go word by word through relaxed atomic loads and stores: a program or another
//! thread may be writing the same value at the same moment (as in the kernel, a reader may then see
//! a torn value), and atomics keep that a well-defined race instead of undefined behaviour.
//!
//! Every map keeps all its values in `Words` it owns for its whole life: arrays one element after
//! the other, hash maps and LPM tries in a preallocated pool of slots (`pool`). So an address a
//! program was handed stays valid as long as the map does, whatever deletes happen meanwhile.

use std::alloc::{alloc_zeroed, Layout};
use std::sync::atomic::{AtomicU64, Ordering};

pub struct Words {
    words: Box<[AtomicU64]>,
}

/// `n` (at least 1) zeroed 64-bit atomics, or `None` when the allocator refuses. The memory comes
/// zeroed from the allocator (`calloc`: the fresh pages of a large block are the kernel's zero
/// page until written), so a big map that holds little costs little resident memory.
pub fn zeroed_atomics(n: usize) -> Option<Box<[AtomicU64]>> {
    let layout = Layout::array::<AtomicU64>(n.max(1)).ok()?;
    // SAFETY: a non-zero size; all-zero bytes are a valid `AtomicU64`.
    let ptr = unsafe { alloc_zeroed(layout) } as *mut AtomicU64;
    if ptr.is_null() {
        return None;
    }
    // SAFETY: `n` zero-initialised `AtomicU64`s, allocated with the layout that
    // `Box<[AtomicU64]>` frees them with.
    Some(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, n.max(1))) })
}

impl std::fmt::Debug for Words {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Words({} bytes at {:p})", self.len(), self.as_ptr())
    }
}

impl Words {
    /// `bytes` zero bytes, rounded up to whole words. Aborts, as any allocation does, when the
    /// memory cannot be had: large maps use `try_zeroed`.
    pub fn zeroed(bytes: usize) -> Words {
        let n = bytes.div_ceil(8).max(1);
        match Words::try_zeroed(bytes) {
            Some(w) => w,
            None => std::alloc::handle_alloc_error(Words::layout(n).expect("a size that fits")),
        }
    }

    fn layout(words: usize) -> Option<Layout> {
        Layout::array::<AtomicU64>(words).ok()
    }

    /// `bytes` zero bytes, rounded up to whole words, or `None` when the allocator refuses (see
    /// `zeroed_atomics`).
    pub fn try_zeroed(bytes: usize) -> Option<Words> {
        zeroed_atomics(bytes.div_ceil(8).max(1)).map(|words| Words { words })
    }

    pub fn from_bytes(bytes: &[u8]) -> Words {
        let w = Words::zeroed(bytes.len());
        w.write(0, bytes);
        w
    }

    /// Capacity in bytes (a multiple of 8).
    pub fn len(&self) -> usize {
        self.words.len() * 8
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Address of byte 0. Writing through it is allowed: the words are `AtomicU64`, whose contents
    /// are interior-mutable.
    pub fn as_ptr(&self) -> *mut u8 {
        self.words.as_ptr() as *mut u8
    }

    pub fn addr(&self, offset: usize) -> u64 {
        self.as_ptr() as u64 + offset as u64
    }

    /// Word `i` (bytes `8 * i ..`), for callers that need orderings stronger than relaxed.
    pub fn word(&self, i: usize) -> &AtomicU64 {
        &self.words[i]
    }

    /// Copies `out.len()` bytes starting at byte `offset` (a multiple of 8).
    pub fn read(&self, offset: usize, out: &mut [u8]) {
        debug_assert!(offset.is_multiple_of(8) && offset + out.len() <= self.len());
        let first = offset / 8;
        for (i, chunk) in out.chunks_mut(8).enumerate() {
            let w = self.words[first + i].load(Ordering::Relaxed).to_le_bytes();
            chunk.copy_from_slice(&w[..chunk.len()]);
        }
    }

    pub fn read_vec(&self, offset: usize, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        self.read(offset, &mut v);
        v
    }

    /// Copies `src` to byte `offset` (a multiple of 8). A partial last word keeps its other bytes.
    pub fn write(&self, offset: usize, src: &[u8]) {
        debug_assert!(offset.is_multiple_of(8) && offset + src.len() <= self.len());
        let first = offset / 8;
        for (i, chunk) in src.chunks(8).enumerate() {
            let word = &self.words[first + i];
            if chunk.len() == 8 {
                word.store(
                    u64::from_le_bytes(chunk.try_into().expect("8 bytes")),
                    Ordering::Relaxed,
                );
            } else {
                let mut w = word.load(Ordering::Relaxed).to_le_bytes();
                w[..chunk.len()].copy_from_slice(chunk);
                word.store(u64::from_le_bytes(w), Ordering::Relaxed);
            }
        }
    }

    /// Zeroes `len` bytes from byte `offset` (a multiple of 8), whole words only when `len` is a
    /// multiple of 8.
    pub fn zero(&self, offset: usize, len: usize) {
        debug_assert!(offset.is_multiple_of(8));
        let first = offset / 8;
        for i in 0..len / 8 {
            self.words[first + i].store(0, Ordering::Relaxed);
        }
        if !len.is_multiple_of(8) {
            self.write(offset + len / 8 * 8, &vec![0; len % 8]);
        }
    }

    /// Byte-wise copy of a range that does not start on a word boundary (ring buffer data).
    pub fn read_unaligned(&self, offset: usize, out: &mut [u8]) {
        debug_assert!(offset + out.len() <= self.len());
        for (i, b) in out.iter_mut().enumerate() {
            let at = offset + i;
            *b = self.words[at / 8].load(Ordering::Relaxed).to_le_bytes()[at % 8];
        }
    }
}
