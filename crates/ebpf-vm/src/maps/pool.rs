//! Preallocated value storage of hash maps and LPM tries, as the kernel preallocates hash elements:
//! `max_entries` slots of `slot_bytes` each in one zeroed allocation that lives as long as the map
//! (the operating system commits its pages only when they are first written, so a large map that
//! holds few elements costs little), and a free list of slots. Creating an element takes a slot,
//! deleting or evicting it gives the slot back for a later insert.
//!
//! What this buys: every value address handed to a program points into memory the map owns for
//! its whole life, so nothing has to be kept alive per run, and no sequence of deletes, inserts
//! and lookups can make a run hold more than the map's own memory. What it costs, as in the
//! kernel's preallocated maps: a program that keeps the address of a deleted element may read or
//! write the value of a later element that reused the slot.
//!
//! The free list is not synchronised here: the map keeps it under its own lock, beside the index
//! that says which slot each key has.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::ErrorCode;

use super::def::MAX_MAP_BYTES;
use super::{MapError, MapResult, Words};

pub struct ValuePool {
    words: Words,
    slot_bytes: usize,
    slots: u32,
}

/// Which slots are free: those never used yet (`fresh..slots`), then released ones, which are
/// reused first (the most recently released first), so that the part of the pool in use stays
/// small and its pages stay warm.
#[derive(Default)]
pub struct FreeSlots {
    fresh: u32,
    released: Vec<u32>,
}

/// A slot handed out by `FreeSlots::take`.
pub struct Taken {
    pub slot: u32,
    /// The slot held an element before (its bytes are that element's, not zeros).
    pub reused: bool,
}

impl FreeSlots {
    /// A free slot of a pool of `slots`, if any.
    pub fn take(&mut self, slots: u32) -> Option<Taken> {
        if let Some(slot) = self.released.pop() {
            return Some(Taken { slot, reused: true });
        }
        (self.fresh < slots).then(|| {
            self.fresh += 1;
            Taken {
                slot: self.fresh - 1,
                reused: false,
            }
        })
    }

    /// Gives back a slot that `take` handed out and whose element is gone.
    pub fn give(&mut self, slot: u32) {
        self.released.push(slot);
    }
}

impl ValuePool {
    /// `slots` values of `slot_bytes` (a multiple of 8) each; E2BIG over `MAX_MAP_BYTES` or when the
    /// memory cannot be had. `what` names the map in the error.
    pub fn new(slots: u32, slot_bytes: usize, what: &str) -> MapResult<ValuePool> {
        debug_assert!(slot_bytes.is_multiple_of(8));
        let bytes = slots as u64 * slot_bytes as u64;
        if bytes > MAX_MAP_BYTES {
            return Err(MapError::new(
                ErrorCode::E2big,
                format!(
                    "{what}: {slots} preallocated values of {slot_bytes} bytes ({bytes} bytes) exceed \
                     the limit of {MAX_MAP_BYTES} bytes"
                ),
            ));
        }
        let words = Words::try_zeroed(bytes as usize).ok_or_else(|| {
            MapError::new(
                ErrorCode::E2big,
                format!("{what}: cannot allocate {bytes} bytes of values"),
            )
        })?;
        Ok(ValuePool {
            words,
            slot_bytes,
            slots,
        })
    }

    pub fn slots(&self) -> u32 {
        self.slots
    }

    pub fn words(&self) -> &Words {
        &self.words
    }

    /// Byte offset of `slot` in `words()`.
    pub fn offset(&self, slot: u32) -> usize {
        slot as usize * self.slot_bytes
    }

    /// Host address of byte `at` of `slot`.
    pub fn addr(&self, slot: u32, at: usize) -> u64 {
        self.words.addr(self.offset(slot) + at)
    }

    /// The whole pool (`Map::value_area`).
    pub fn area(&self) -> (u64, u64) {
        (self.words.addr(0), self.words.len() as u64)
    }

    /// Zeroes a reused slot for a new element, except the 4-byte spin lock word at byte `lock`:
    /// a run may still hold the lock it took in the deleted element, and releases it by writing
    /// that word (the kernel keeps the lock word of a reused element too).
    pub fn clear(&self, slot: u32, lock: Option<u32>) {
        let base = self.offset(slot);
        let Some(lock) = lock.map(|l| l as usize) else {
            return self.words.zero(base, self.slot_bytes);
        };
        let word = lock / 8 * 8;
        self.words.zero(base, word);
        // The other half of the lock's 8-byte word, as a 4-byte store beside the lock word.
        let other = if lock.is_multiple_of(8) {
            word + 4
        } else {
            word
        };
        // SAFETY: 4 aligned bytes inside the slot (the lock lies inside the value, 4-aligned),
        // which lives as long as the pool; accessed atomically.
        unsafe { AtomicU32::from_ptr(self.words.as_ptr().add(base + other) as *mut u32) }
            .store(0, Ordering::Relaxed);
        self.words
            .zero(base + word + 8, self.slot_bytes.saturating_sub(word + 8));
    }
}
