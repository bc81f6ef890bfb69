//! `BPF_MAP_TYPE_PERF_EVENT_ARRAY` (4): an array of perf event slots, key and value 4 bytes, one
//! slot per CPU as libbpf creates it (`max_entries` 0 in an object means the number of possible
//! CPUs). In the kernel a slot holds a perf event (an fd user space opened with
//! `perf_event_open`, sample type `PERF_SAMPLE_RAW`) whose mmapped ring receives what
//! `bpf_perf_event_output` writes. Here a slot holds a `PerfRing` that a consumer opened
//! (`open`, what libbpf's `perf_buffer__new` does for each CPU); closing it empties the slot again.
//!
//! A ring has the kernel's accounting: its data area is `pages * 4096` bytes (a power of two
//! number of pages), a sample takes `perf_record_bytes(len)` bytes (the 8-byte
//! `perf_event_header`, a u32 size, the data, padded to 8), and a write succeeds only while the
//! unread bytes stay below the data size (`CIRC_SPACE`: at most `size - 1` bytes in use). A sample
//! that does not fit is dropped and counted; the next sample that fits is preceded by a
//! `PERF_RECORD_LOST` record (24 bytes, counted in the ring too) carrying the count, which is what
//! libbpf's `lost_cb` hears. Records are kept as entries rather than bytes: the consumer gets each
//! sample's data and each lost count, in order.
//!
//! Program side (`output`): the index is checked against `max_entries` (E2BIG), an empty slot is
//! ENOENT, a slot whose event is on another CPU than the running one EOPNOTSUPP, a full ring
//! ENOSPC, as `__bpf_perf_event_output` returns them (`BPF_F_CURRENT_CPU` is the running thread's
//! per-CPU slot, `percpu::current_cpu`). User space: lookups are
//! ENOTSUPP (the kernel has no syscall lookup for this type), updates too (there is no perf event
//! fd to store: open a ring instead), deletes empty a slot (ENOENT when it is empty already, E2BIG past the end).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::error::ErrorCode;

use super::{Map, MapCommon, MapDef, MapError, MapResult};
use crate::vm::errno::{E2BIG, ENOENT, ENOSPC, EOPNOTSUPP};

/// Bytes of a ring page.
pub const PERF_PAGE_SIZE: u64 = 4096;
/// Most pages one ring may have here (1 GiB with 4 KiB pages), a cap of ours.
pub const MAX_PERF_PAGES: u32 = 1 << 18;
/// Bytes a `PERF_RECORD_LOST` record takes (header, id, lost).
pub const PERF_RECORD_LOST_BYTES: u64 = 24;

/// The bytes a sample of `len` data bytes takes in the kernel's perf ring: the 8-byte
/// `perf_event_header`, then the raw sample (a u32 size and the data) padded to 8 bytes.
pub fn perf_record_bytes(len: u64) -> u64 {
    8 + (len + 4).div_ceil(8) * 8
}

/// The length of a sample's data as a consumer reads it: the data padded so that it and its u32
/// size take a multiple of 8 bytes (`perf_prepare_sample`'s raw size).
fn raw_sample_len(len: usize) -> usize {
    (len + 4).div_ceil(8) * 8 - 4
}

/// One record a consumer reads from a ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PerfEntry {
    /// A `PERF_RECORD_SAMPLE`: the raw data a program output, zero-padded as the kernel pads it.
    Sample(Vec<u8>),
    /// A `PERF_RECORD_LOST`: this many samples were dropped before the next one.
    Lost(u64),
}

/// Wakes the consumer of a set of rings (one per perf buffer).
#[derive(Default)]
pub struct PerfNotify {
    writes: Mutex<u64>,
    written: Condvar,
}

impl PerfNotify {
    fn lock(&self) -> MutexGuard<'_, u64> {
        self.writes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn notify(&self) {
        *self.lock() += 1;
        self.written.notify_all();
    }

    /// Waits until `ready()` holds or `timeout` passes; returns `ready()`.
    pub fn wait(&self, timeout: Duration, ready: impl Fn() -> bool) -> bool {
        let n = self.lock();
        if ready() {
            return true;
        }
        let start = *n;
        let _ = self
            .written
            .wait_timeout_while(n, timeout, |n| *n == start)
            .unwrap_or_else(|e| e.into_inner());
        ready()
    }
}

#[derive(Default)]
struct RingState {
    entries: VecDeque<PerfEntry>,
    /// Bytes of the entries in the kernel's layout.
    used: u64,
    /// Samples dropped since the last `PERF_RECORD_LOST` went into the ring.
    pending_lost: u64,
    /// Samples dropped over the ring's life.
    lost_total: u64,
}

/// The ring of one slot (one CPU) of a perf event array.
pub struct PerfRing {
    /// The CPU the ring's event counts on (libbpf opens the event of slot i on CPU i).
    cpu: u32,
    data_size: u64,
    state: Mutex<RingState>,
    notify: Arc<PerfNotify>,
}

impl PerfRing {
    /// A ring of `pages` pages (a power of two, as `perf_event_open`'s mmap requires) for an event
    /// on `cpu`, that wakes `notify` on each write.
    pub fn new(cpu: u32, pages: u32, notify: Arc<PerfNotify>) -> MapResult<PerfRing> {
        if pages == 0 || !pages.is_power_of_two() || pages > MAX_PERF_PAGES {
            return Err(MapError::new(
                ErrorCode::Einval,
                format!("a perf ring needs a power of two number of pages up to {MAX_PERF_PAGES}, got {pages}"),
            ));
        }
        Ok(PerfRing {
            cpu,
            data_size: pages as u64 * PERF_PAGE_SIZE,
            state: Mutex::default(),
            notify,
        })
    }

    fn lock(&self) -> MutexGuard<'_, RingState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The CPU of the ring's event.
    pub fn cpu(&self) -> u32 {
        self.cpu
    }

    /// Bytes of the ring's data area.
    pub fn data_size(&self) -> u64 {
        self.data_size
    }

    /// Writes one sample; false (and the loss counted) when the ring has no room for it (and for
    /// the lost record that must precede it).
    pub fn write(&self, data: &[u8]) -> bool {
        let mut s = self.lock();
        let mut need = perf_record_bytes(data.len() as u64);
        if s.pending_lost > 0 {
            need += PERF_RECORD_LOST_BYTES;
        }
        if s.used + need > self.data_size - 1 {
            s.pending_lost += 1;
            s.lost_total += 1;
            return false;
        }
        if s.pending_lost > 0 {
            let n = std::mem::take(&mut s.pending_lost);
            s.entries.push_back(PerfEntry::Lost(n));
        }
        // The raw sample as the kernel lays it out: its u32 size and the data end on 8 bytes, the
        // padding zeroed, and a consumer (libbpf's `perf_buffer`) is handed the padded size.
        let mut sample = data.to_vec();
        sample.resize(raw_sample_len(data.len()), 0);
        s.entries.push_back(PerfEntry::Sample(sample));
        s.used += need;
        drop(s);
        self.notify.notify();
        true
    }

    /// Takes every record written so far, oldest first, freeing their room.
    pub fn drain(&self) -> Vec<PerfEntry> {
        let mut s = self.lock();
        s.used = 0;
        s.entries.drain(..).collect()
    }

    /// Whether records wait to be read.
    pub fn has_records(&self) -> bool {
        !self.lock().entries.is_empty()
    }

    /// Bytes in use, in the kernel's layout.
    pub fn used(&self) -> u64 {
        self.lock().used
    }

    /// Samples dropped since the ring opened (also those not yet reported by a lost record).
    pub fn lost_total(&self) -> u64 {
        self.lock().lost_total
    }
}

pub struct PerfEventArray {
    common: MapCommon,
    slots: Mutex<Vec<Option<Arc<PerfRing>>>>,
}

impl PerfEventArray {
    pub fn new(def: MapDef) -> MapResult<PerfEventArray> {
        let n = def.max_entries as usize;
        Ok(PerfEventArray {
            common: MapCommon::new(def),
            slots: Mutex::new(vec![None; n]),
        })
    }

    fn slots(&self) -> MutexGuard<'_, Vec<Option<Arc<PerfRing>>>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn index(&self, index: u32) -> MapResult<usize> {
        if index >= self.common.def.max_entries {
            return Err(MapError::new(
                ErrorCode::E2big,
                format!(
                    "index {index} is outside the perf event array ({} slots)",
                    self.common.def.max_entries
                ),
            ));
        }
        Ok(index as usize)
    }

    /// Puts `ring` in slot `index` (replacing what was there, as an update of the kernel's map
    /// with a new perf event fd does).
    pub fn open(&self, index: u32, ring: Arc<PerfRing>) -> MapResult<()> {
        let i = self.index(index)?;
        self.slots()[i] = Some(ring);
        Ok(())
    }

    /// Empties slot `index` if it still holds `ring`.
    pub fn close(&self, index: u32, ring: &Arc<PerfRing>) {
        let mut slots = self.slots();
        if let Some(slot) = slots.get_mut(index as usize) {
            if slot.as_ref().is_some_and(|r| Arc::ptr_eq(r, ring)) {
                *slot = None;
            }
        }
    }

    /// The ring in slot `index`, if one is open.
    pub fn ring(&self, index: u32) -> Option<Arc<PerfRing>> {
        self.slots().get(index as usize).cloned().flatten()
    }

    /// `bpf_perf_event_output` from a program running on `cpu` into slot `index`: 0, or the
    /// negative errno the kernel returns (E2BIG past the end, ENOENT for an empty slot, EOPNOTSUPP
    /// when the slot's event is on another CPU, ENOSPC when the ring is full).
    pub fn output(&self, cpu: u32, index: u32, data: &[u8]) -> i64 {
        if index >= self.common.def.max_entries {
            return -E2BIG;
        }
        let Some(ring) = self.ring(index) else {
            return -ENOENT;
        };
        if ring.cpu != cpu {
            return -EOPNOTSUPP;
        }
        if ring.write(data) {
            0
        } else {
            -ENOSPC
        }
    }
}

fn key_index(key: &[u8]) -> u32 {
    u32::from_ne_bytes([key[0], key[1], key[2], key[3]])
}

impl Map for PerfEventArray {
    map_identity!();

    fn lookup_elem(&self, _key: &[u8]) -> MapResult<Vec<u8>> {
        Err(MapError::new(
            ErrorCode::Enotsupp,
            "perf event arrays cannot be read from user space: open a perf buffer on the map",
        ))
    }

    fn update_elem(&self, _key: &[u8], _value: &[u8], _flags: u64) -> MapResult<()> {
        Err(MapError::new(
            ErrorCode::Enotsupp,
            "perf event array slots hold perf events, which this runtime has no fds for: open a \
             perf buffer on the map instead",
        ))
    }

    fn delete_elem(&self, key: &[u8]) -> MapResult<()> {
        let i = self.index(key_index(key))?;
        match self.slots()[i].take() {
            Some(_) => Ok(()),
            None => Err(MapError::new(
                ErrorCode::Enoent,
                format!("slot {i} of the perf event array is empty"),
            )),
        }
    }

    fn get_next_key(&self, key: Option<&[u8]>) -> MapResult<Vec<u8>> {
        let max = self.common.def.max_entries;
        let next = match key.map(key_index) {
            Some(i) if i < max => {
                if i + 1 == max {
                    return Err(MapError::new(
                        ErrorCode::Enoent,
                        "no key after the last slot",
                    ));
                }
                i + 1
            }
            _ => 0,
        };
        Ok(next.to_ne_bytes().to_vec())
    }

    /// An array: every slot is a key (`max_entries`), open or not.
    fn len(&self) -> usize {
        self.common.def.max_entries as usize
    }
}
