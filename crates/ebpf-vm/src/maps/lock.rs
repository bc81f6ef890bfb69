//! Values that hold a `struct bpf_spin_lock` (`MapDef::spin_lock_off`), as the kernel treats them:
//! the lock word belongs to the programs that take it with `bpf_spin_lock` (helpers/locks.rs: a
//! 4-byte word, 0 free, 1 taken, changed atomically), so user-space copies never write it and
//! read it as zero; with `BPF_F_LOCK` a copy happens while holding that lock, so it cannot
//! interleave with a program's critical section.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::error::ErrorCode;

use super::{MapError, MapResult, Words};

/// How long anyone waits for a `bpf_spin_lock` word (programs release their lock by the end of
/// their run; a word that stays taken was written by something else).
pub const WAIT_LIMIT: Duration = Duration::from_secs(1);

/// Takes the lock word (0 free, 1 taken): spins, yields every 64 tries, and gives up with `false`
/// after `WAIT_LIMIT`. The one acquisition loop of `BPF_F_LOCK` copies and `bpf_spin_lock`.
pub fn acquire(word: &AtomicU32) -> bool {
    let mut start: Option<Instant> = None;
    let mut spins = 0u32;
    while word
        .compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        spins = spins.wrapping_add(1);
        if !spins.is_multiple_of(64) {
            std::hint::spin_loop();
            continue;
        }
        std::thread::yield_now();
        if start.get_or_insert_with(Instant::now).elapsed() > WAIT_LIMIT {
            return false;
        }
    }
    true
}

fn lock_word(words: &Words, at: usize) -> &AtomicU32 {
    debug_assert!(at.is_multiple_of(4) && at + 4 <= words.len());
    // SAFETY: 4 aligned bytes inside `words` (the offset was validated against the value size,
    // and values start 8-aligned), which lives as long as the returned reference; the word is
    // only ever accessed atomically.
    unsafe { AtomicU32::from_ptr(words.as_ptr().add(at) as *mut u32) }
}

/// Runs `f` holding the value's spin lock at byte `at` of `words`.
pub fn with_lock<R>(words: &Words, at: usize, f: impl FnOnce() -> R) -> MapResult<R> {
    let word = lock_word(words, at);
    if !acquire(word) {
        return Err(MapError::new(
            ErrorCode::Etime,
            format!("the value's spin lock was not released within {WAIT_LIMIT:?}"),
        ));
    }
    let r = f();
    word.store(0, Ordering::Release);
    Ok(r)
}

/// Writes `src` at byte `offset` of `words` except the 4 lock bytes at `offset + lock`: the lock's
/// 8-byte word gets its other half written as a 4-byte atomic store, so a concurrent
/// `bpf_spin_lock` on the lock half is never overwritten.
pub fn write_around(words: &Words, offset: usize, src: &[u8], lock: usize) {
    let word_start = lock / 8 * 8;
    if word_start > 0 {
        words.write(offset, &src[..word_start]);
    }
    let other = if lock.is_multiple_of(8) {
        word_start + 4
    } else {
        word_start
    };
    if other + 4 <= src.len() {
        let mut half = [0u8; 4];
        half.copy_from_slice(&src[other..other + 4]);
        lock_word(words, offset + other).store(u32::from_ne_bytes(half), Ordering::Relaxed);
    } else if other < src.len() {
        // The value ends inside the other half: write its bytes one at a time.
        for (i, b) in src[other..].iter().enumerate() {
            // SAFETY: inside `words` (src fits in the value); single bytes of a value that only
            // this copy writes.
            unsafe { std::ptr::write_volatile(words.as_ptr().add(offset + other + i), *b) };
        }
    }
    if word_start + 8 < src.len() {
        words.write(offset + word_start + 8, &src[word_start + 8..]);
    }
}

/// The user-space copy of a value: the lock word reads as zero.
pub fn hide_lock(value: &mut [u8], lock: usize) {
    value[lock..lock + 4].fill(0);
}
