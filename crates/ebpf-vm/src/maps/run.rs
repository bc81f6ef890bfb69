//! The maps side of one run: which map handles the program may pass to helpers, which map memory
//! the run reaches, and what the run must clean up.
//!
//! - Handles: a program names a map by the value its `lddw` was relocated to (`maps::handle`, the
//!   map object's address, compared and never dereferenced). Helpers resolve r1 against this table
//!   only: the program's maps, plus inner maps that map-in-map lookups returned during the run. Any
//!   other value is refused, so a program cannot forge a map. Inner maps stay alive here until the
//!   run ends.
//! - Memory: a value a lookup returns lies in its map's `value_area`, which lives as long as the
//!   map (nothing is kept alive per value). The area becomes one region of the run, the first time
//!   the run looks into that map; `owner_of` tells which map some memory of the run belongs to (a
//!   held spin lock keeps that map alive until it is released).
//! - Ring buffer reservations not submitted or discarded by the end of the run are discarded when
//!   the run is dropped, so the consumer is never blocked by a record that will not be committed.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use super::percpu::current_cpu;
use super::ringbuf::RingBuf;
use super::{handle, Map};

/// Hashes map handles (8-byte aligned, distinct addresses) by one multiplication: the table is
/// private to a run and its keys are objects that exist, not values an adversary picks freely.
#[derive(Default)]
pub struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (v >> 3).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// How many of the program's map handles a run's table keeps as words (`RunMaps::handles`).
const HANDLES: usize = 8;

/// Whether `[start, start + len)` holds `addr`.
fn holds(area: (u64, u64), addr: u64) -> bool {
    addr >= area.0 && addr - area.0 < area.1
}

#[derive(Default)]
pub struct RunMaps {
    program: Option<Arc<[Arc<dyn Map>]>>,
    /// The handles of the program's first `HANDLES` maps, in its order: a helper's map argument
    /// is found by comparing words (a handle from an `Arc<dyn Map>` reads the vtable's
    /// alignment), with no allocation for the table.
    handles: [u64; HANDLES],
    /// Inner maps admitted during the run, by handle.
    extra: HashMap<u64, Arc<dyn Map>, BuildHasherDefault<AddrHasher>>,
    /// The value areas of `extra`, by start address.
    extra_areas: BTreeMap<u64, (u64, Arc<dyn Map>)>,
    /// The value area whose region was added last: loops look into the same map again and again.
    last_area: u64,
    /// The value areas of the program's maps are regions of the run from its start (a batch of
    /// a verified program, `program/xdp_batch.rs`): a lookup into them adds nothing.
    standing_areas: bool,
    /// Open ring buffer reservations: record address, length, ring.
    reservations: Vec<(u64, u64, Arc<dyn Map>)>,
    cpu: Option<usize>,
}

impl RunMaps {
    /// The table of a run of a program whose maps are `program` (load-time indices).
    pub fn new(program: Arc<[Arc<dyn Map>]>) -> Self {
        let mut run = RunMaps::default();
        for (h, m) in run.handles.iter_mut().zip(program.iter()) {
            *h = handle(m);
        }
        run.program = Some(program);
        run
    }

    /// Every map the run may name: the program's, then inner maps admitted during the run.
    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn Map>> {
        self.program_maps().iter().chain(self.extra.values())
    }

    /// The maps of the program the run belongs to.
    pub fn program_maps(&self) -> &[Arc<dyn Map>] {
        self.program.as_deref().unwrap_or(&[])
    }

    /// The map a program-supplied handle names, if it is one this run may use.
    pub fn resolve(&self, h: u64) -> Option<Arc<dyn Map>> {
        self.resolve_ref(h).cloned()
    }

    /// As `resolve`, borrowed.
    pub fn resolve_ref(&self, h: u64) -> Option<&Arc<dyn Map>> {
        let program = self.program.as_deref().unwrap_or(&[]);
        let first = program.len().min(HANDLES);
        // 0 is no handle (a map object is never at address 0): unused slots never match.
        if let Some(i) = self.handles[..first].iter().position(|&x| x == h && h != 0) {
            return Some(&program[i]);
        }
        program[first..]
            .iter()
            .find(|m| handle(m) == h)
            .or_else(|| self.extra.get(&h))
    }

    /// Makes `map` usable by the rest of the run (an inner map); returns its handle.
    pub fn admit(&mut self, map: Arc<dyn Map>) -> u64 {
        let h = handle(&map);
        if self.resolve_ref(h).is_none() {
            if let Some((start, len)) = map.value_area() {
                self.extra_areas.insert(start, (len, map.clone()));
            }
            self.extra.insert(h, map);
        }
        h
    }

    /// False when `start` is the value area this run added a region for last (a cheap test before
    /// adding a region for it again, which the region table would drop as a repeat anyway).
    pub fn new_area(&mut self, start: u64) -> bool {
        std::mem::replace(&mut self.last_area, start) != start
    }

    /// Whether the values of map `h` lie in a region the run has from its start
    /// (`set_standing_areas`): a map of the program, not an inner map admitted during the run.
    pub fn has_standing_area(&self, h: u64) -> bool {
        self.standing_areas && (self.extra.is_empty() || !self.extra.contains_key(&h))
    }

    /// Whether `set_standing_areas` holds (until `end_run`).
    pub fn standing_areas(&self) -> bool {
        self.standing_areas
    }

    /// Says that every run on this table, until `end_run`, has the value areas of the program's
    /// maps among its regions from its start.
    pub fn set_standing_areas(&mut self) {
        self.standing_areas = true;
    }

    /// The map whose memory holds `addr` (a value area of a map of the program or of an inner
    /// map of the run, a ring buffer record of the run), or `None` when `addr` is not map memory.
    pub fn owner_of(&self, addr: u64) -> Option<Arc<dyn Map>> {
        if let Some((start, (len, map))) = self.extra_areas.range(..=addr).next_back() {
            if holds((*start, *len), addr) {
                return Some(map.clone());
            }
        }
        let program = self.program.as_deref().unwrap_or(&[]);
        program
            .iter()
            .chain(self.reservations.iter().map(|(.., ring)| ring))
            .find(|m| m.value_area().is_some_and(|area| holds(area, addr)))
            .cloned()
    }

    /// The running thread's per-CPU slot.
    pub fn cpu(&mut self) -> usize {
        *self.cpu.get_or_insert_with(current_cpu)
    }

    pub fn add_reservation(&mut self, addr: u64, len: u64, ring: Arc<dyn Map>) {
        self.reservations.push((addr, len, ring));
    }

    /// Open reservations.
    pub fn reservations(&self) -> usize {
        self.reservations.len()
    }

    /// Removes the outstanding reservation at `addr`; returns its length and ring.
    pub fn take_reservation(&mut self, addr: u64) -> Option<(u64, Arc<dyn Map>)> {
        let i = self.reservations.iter().position(|(a, ..)| *a == addr)?;
        let (_, len, ring) = self.reservations.swap_remove(i);
        Some((len, ring))
    }
}

impl RunMaps {
    /// Ends the run: discards the ring buffer reservations it left open and lets go of the inner
    /// maps it admitted. The table's allocations stay, for the next run of the same program on the
    /// same `RunSpace` (`program` is kept: it is the same program's map list).
    pub fn end_run(&mut self) {
        self.end_batch_run();
        self.last_area = 0;
        self.standing_areas = false;
        // The next run may be on another thread (a run space moves between threads only
        // between runs, but the slot is cheap to find again).
        self.cpu = None;
    }

    /// Ends one run of a batch (on one thread, with the same standing areas): what `end_run`
    /// lets go of, keeping the CPU slot and the standing areas for the batch's next run. Most
    /// runs leave nothing: the test is inline, the letting go out of line.
    #[inline(always)]
    pub fn end_batch_run(&mut self) {
        if !self.reservations.is_empty() || !self.extra.is_empty() {
            self.let_go_of_batch_run();
        }
    }

    #[inline(never)]
    fn let_go_of_batch_run(&mut self) {
        // An empty drain still costs its set-up and drop.
        if !self.reservations.is_empty() {
            for (addr, _, ring) in self.reservations.drain(..) {
                if let Some(rb) = ring.as_any().downcast_ref::<RingBuf>() {
                    rb.commit(addr, true);
                }
            }
        }
        // Clearing an empty B-tree still walks it.
        if !self.extra.is_empty() {
            self.extra.clear();
            self.extra_areas.clear();
            // An inner map's area may have been the last one added.
            self.last_area = 0;
        }
    }

    /// Whether this table is for the map list `program` (the same allocation), so that a run of
    /// that program may reuse it after `end_run`.
    pub fn is_for(&self, program: Option<&Arc<[Arc<dyn Map>]>>) -> bool {
        match (&self.program, program) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl Drop for RunMaps {
    fn drop(&mut self) {
        self.end_run();
    }
}
