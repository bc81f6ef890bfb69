//! `BPF_MAP_TYPE_RINGBUF` (27): a multi-producer, single-consumer byte ring of `max_entries` bytes
//! (a power of two, multiple of the page size), in the kernel's record format: each record is an
//! 8-byte header (u32 length with bit 31 = busy and bit 30 = discarded, u32 page offset, which we
//! leave 0) followed by the data, padded to 8 bytes. Producer and consumer positions only grow; a
//! record's offset in the ring is its position modulo the size.
//!
//! Producers (programs: `ringbuf_reserve`/`submit`/`discard`/`output`) reserve space under a lock,
//! write the data in place, then commit by clearing the busy bit (release ordering). The consumer
//! (user space: `consume`) delivers committed records in reservation order and stops at the first
//! record still busy, as in the kernel. A reservation fails (NULL / -EAGAIN) when it would bring the
//! unconsumed bytes above `size - 1`, like the kernel's `new_prod - cons > mask` test.
//!
//! Wraparound: the kernel maps the data pages twice so a record that runs past the end is still
//! contiguous. We allocate `2 * size` bytes instead: a reservation near the end extends into the
//! second half, and commit copies the part past the end to the start of the ring, where the consumer
//! reads it. Addresses handed to programs thus always cover the whole record.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::error::ErrorCode;

use super::def::MAX_MAP_BYTES;
use super::{Map, MapCommon, MapDef, MapError, MapResult, Words};

pub const BPF_RINGBUF_BUSY_BIT: u32 = 1 << 31;
pub const BPF_RINGBUF_DISCARD_BIT: u32 = 1 << 30;
pub const BPF_RINGBUF_HDR_SZ: u64 = 8;
/// Largest record length (`RINGBUF_MAX_RECORD_SZ`: the bits below discard and busy).
pub const RINGBUF_MAX_RECORD_SZ: u64 = (u32::MAX >> 2) as u64;

pub const BPF_RB_NO_WAKEUP: u64 = 1;
pub const BPF_RB_FORCE_WAKEUP: u64 = 2;
pub const BPF_RB_AVAIL_DATA: u64 = 0;
pub const BPF_RB_RING_SIZE: u64 = 1;
pub const BPF_RB_CONS_POS: u64 = 2;
pub const BPF_RB_PROD_POS: u64 = 3;

pub struct RingBuf {
    common: MapCommon,
    size: u64,
    data: Words,
    producer: AtomicU64,
    consumer: AtomicU64,
    /// Serialises producers (the kernel's spinlock).
    produce: Mutex<()>,
    /// Serialises consumers.
    consuming: Mutex<()>,
    /// Counts commits, for `wait`.
    commits: Mutex<u64>,
    committed: Condvar,
}

fn round8(v: u64) -> u64 {
    v.div_ceil(8) * 8
}

impl RingBuf {
    pub fn new(def: MapDef) -> MapResult<RingBuf> {
        let size = def.max_entries as u64;
        // Twice the size is allocated (see the wraparound note above).
        if 2 * size > MAX_MAP_BYTES {
            return Err(MapError::new(
                ErrorCode::E2big,
                format!(
                    "a ring buffer of {size} bytes exceeds the limit of {} bytes",
                    MAX_MAP_BYTES / 2
                ),
            ));
        }
        Ok(RingBuf {
            common: MapCommon::new(def),
            size,
            data: Words::try_zeroed(2 * size as usize).ok_or_else(|| {
                MapError::new(
                    ErrorCode::E2big,
                    format!("cannot allocate the {size}-byte ring buffer"),
                )
            })?,
            producer: AtomicU64::new(0),
            consumer: AtomicU64::new(0),
            produce: Mutex::new(()),
            consuming: Mutex::new(()),
            commits: Mutex::new(0),
            committed: Condvar::new(),
        })
    }

    fn lock_commits(&self) -> MutexGuard<'_, u64> {
        self.commits.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn producer_pos(&self) -> u64 {
        self.producer.load(Ordering::Acquire)
    }

    pub fn consumer_pos(&self) -> u64 {
        self.consumer.load(Ordering::Acquire)
    }

    /// Bytes reserved or committed and not yet consumed.
    pub fn avail_data(&self) -> u64 {
        self.producer_pos() - self.consumer_pos()
    }

    /// What `bpf_ringbuf_query` returns for `flags`; 0 for an unknown flag, as in the kernel.
    pub fn query(&self, flags: u64) -> u64 {
        match flags {
            BPF_RB_AVAIL_DATA => self.avail_data(),
            BPF_RB_RING_SIZE => self.size,
            BPF_RB_CONS_POS => self.consumer_pos(),
            BPF_RB_PROD_POS => self.producer_pos(),
            _ => 0,
        }
    }

    /// Reserves a record of `len` bytes; returns the host address of its data, or `None` when
    /// the ring has no room (or `len` can never fit).
    pub fn reserve(&self, len: u64) -> Option<u64> {
        if len > RINGBUF_MAX_RECORD_SZ {
            return None;
        }
        let total = round8(len + BPF_RINGBUF_HDR_SZ);
        if total > self.size {
            return None;
        }
        let _guard = self.produce.lock().unwrap_or_else(|e| e.into_inner());
        let prod = self.producer.load(Ordering::Relaxed);
        let cons = self.consumer.load(Ordering::Acquire);
        if prod + total - cons > self.size - 1 {
            return None;
        }
        let off = prod & (self.size - 1);
        self.data.word((off / 8) as usize).store(
            (len as u32 | BPF_RINGBUF_BUSY_BIT) as u64,
            Ordering::Relaxed,
        );
        self.producer.store(prod + total, Ordering::Release);
        Some(self.data.addr((off + BPF_RINGBUF_HDR_SZ) as usize))
    }

    /// Whether `addr` is the data address of a record this ring could have handed out (inside
    /// the ring, 8 bytes past a header slot). The caller also checks that it reserved it.
    pub fn owns(&self, addr: u64) -> bool {
        let base = self.data.addr(0);
        addr >= base + BPF_RINGBUF_HDR_SZ
            && addr < base + self.size + BPF_RINGBUF_HDR_SZ
            && (addr - base).is_multiple_of(8)
    }

    /// Commits (or discards) the record whose data starts at `addr`, which `reserve` returned and
    /// which has not been committed yet. False (and nothing done) when `addr` is outside the ring,
    /// misaligned, or its header is not busy (committed twice). This is a cheap sanity check, not
    /// a proof: the helpers commit only reservations their own run made (`RunMaps`).
    pub fn commit(&self, addr: u64, discard: bool) -> bool {
        if !self.owns(addr) {
            return false;
        }
        let base = self.data.addr(0);
        let hdr = addr - BPF_RINGBUF_HDR_SZ - base;
        let word = self.data.word((hdr / 8) as usize);
        let head = word.load(Ordering::Relaxed);
        if head as u32 & BPF_RINGBUF_BUSY_BIT == 0 {
            return false;
        }
        let len = (head as u32 & !(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT)) as u64;
        let end = hdr + BPF_RINGBUF_HDR_SZ + len;
        if !discard && end > self.size {
            // Move the part written past the end to the start, where the ring continues.
            let tail = self
                .data
                .read_vec(self.size as usize, (end - self.size) as usize);
            self.data.write(0, &tail);
        }
        let flags = if discard { BPF_RINGBUF_DISCARD_BIT } else { 0 };
        word.store((len as u32 | flags) as u64, Ordering::Release);
        let mut n = self.lock_commits();
        *n += 1;
        self.committed.notify_all();
        true
    }

    /// Reserves, copies `data` and commits: `bpf_ringbuf_output`. False when there is no room.
    pub fn output(&self, data: &[u8]) -> bool {
        let Some(addr) = self.reserve(data.len() as u64) else {
            return false;
        };
        let off = (addr - self.data.addr(0)) as usize;
        self.data.write(off, data);
        self.commit(addr, false);
        true
    }

    /// Delivers committed records in order to `f`, skipping discarded ones, until the ring is empty
    /// or the next record is still being written. Returns the number of records delivered.
    pub fn consume(&self, mut f: impl FnMut(&[u8])) -> usize {
        let _consumer = self.consuming.lock().unwrap_or_else(|e| e.into_inner());
        let mut cons = self.consumer.load(Ordering::Relaxed);
        let mut delivered = 0;
        let mask = self.size - 1;
        while cons < self.producer.load(Ordering::Acquire) {
            let off = cons & mask;
            let head = self.data.word((off / 8) as usize).load(Ordering::Acquire) as u32;
            if head & BPF_RINGBUF_BUSY_BIT != 0 {
                break;
            }
            let len = (head & !BPF_RINGBUF_DISCARD_BIT) as u64;
            if head & BPF_RINGBUF_DISCARD_BIT == 0 {
                let mut buf = vec![0u8; len as usize];
                let start = (off + BPF_RINGBUF_HDR_SZ) & mask;
                let first = len.min(self.size - start) as usize;
                self.data.read_unaligned(start as usize, &mut buf[..first]);
                self.data.read_unaligned(0, &mut buf[first..]);
                f(&buf);
                delivered += 1;
            }
            cons += round8(len + BPF_RINGBUF_HDR_SZ);
            self.consumer.store(cons, Ordering::Release);
        }
        delivered
    }

    /// Waits up to `timeout` for a commit after the current state; true when data is available.
    pub fn wait(&self, timeout: Duration) -> bool {
        let n = self.lock_commits();
        if self.avail_data() > 0 {
            return true;
        }
        let start = *n;
        let _ = self
            .committed
            .wait_timeout_while(n, timeout, |n| *n == start)
            .unwrap_or_else(|e| e.into_inner());
        self.avail_data() > 0
    }
}

impl Map for RingBuf {
    map_identity!();

    fn lookup_elem(&self, _key: &[u8]) -> MapResult<Vec<u8>> {
        Err(MapError::new(
            ErrorCode::Enotsupp,
            "ring buffers have no elements to look up: consume records instead",
        ))
    }

    fn value_area(&self) -> Option<(u64, u64)> {
        Some((self.data.addr(0), self.data.len() as u64))
    }

    fn len(&self) -> usize {
        0
    }
}
