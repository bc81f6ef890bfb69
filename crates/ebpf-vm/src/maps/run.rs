//! The maps side of one run: which map handles the program may pass to helpers, and what the run
//! must keep alive or clean up.
//!
//! - Handles: a program names a map by the value its `lddw` was relocated to (`maps::handle`, the
//!   map object's address, compared and never dereferenced). Helpers resolve r1 against this table
//!   only: the program's maps, plus inner maps that map-in-map lookups returned during the run. Any
//!   other value is refused, so a program cannot forge a map.
//! - Keep-alive: hash and trie values looked up during the run are held here (`Arc<Words>` clones),
//!   so a concurrent delete cannot free memory the program still points to.
//! - Regions: `first_region` tells whether a value's region was already added to the run's regions,
//!   so repeated lookups do not grow the region list.
//! - Ring buffer reservations not submitted or discarded by the end of the run are discarded when
//!   the run is dropped, so the consumer is never blocked by a record that will not be committed.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use super::percpu::current_cpu;
use super::ringbuf::RingBuf;
use super::{handle, Map, Words};

/// Hashes addresses (8-byte aligned, distinct) by one multiplication: the set is private to a run
/// and its keys are not chosen by an adversary who could profit from collisions beyond a slower
/// run, which the instruction budget bounds anyway.
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

/// What keeps memory a program points into alive while something outside the map table still
/// needs it (a held spin lock: `context::run_state::HeldLock`): a map, whose storage lives as long
/// as it does, or a hash or trie value, which a delete may unlink.
pub enum MemoryOwner {
    Map(Arc<dyn Map>),
    Value(Arc<Words>),
}

/// Whether `[start, start + len)` holds `addr`.
fn holds(area: (u64, u64), addr: u64) -> bool {
    addr >= area.0 && addr - area.0 < area.1
}

#[derive(Default)]
pub struct RunMaps {
    program: Option<Arc<[Arc<dyn Map>]>>,
    extra: Vec<Arc<dyn Map>>,
    keep: Vec<Arc<Words>>,
    seen: HashSet<u64, BuildHasherDefault<AddrHasher>>,
    /// The region start `first_region` saw last: loops look the same value up again and again.
    last_seen: u64,
    /// Open ring buffer reservations: record address, length, ring.
    reservations: Vec<(u64, u64, Arc<dyn Map>)>,
    cpu: Option<usize>,
}

impl RunMaps {
    /// The table of a run of a program whose maps are `program` (load-time indices).
    pub fn new(program: Arc<[Arc<dyn Map>]>) -> Self {
        let mut run = RunMaps::default();
        run.program = Some(program);
        run
    }

    /// Every map the run may name: the program's, then inner maps admitted during the run.
    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn Map>> {
        self.program_maps().iter().chain(self.extra.iter())
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
        program
            .iter()
            .chain(self.extra.iter())
            .find(|m| handle(m) == h)
    }

    /// Makes `map` usable by the rest of the run (an inner map); returns its handle.
    pub fn admit(&mut self, map: Arc<dyn Map>) -> u64 {
        let h = handle(&map);
        if self.resolve(h).is_none() {
            self.extra.push(map);
        }
        h
    }

    /// Keeps a looked-up value alive until the run ends (call it once per value: together with
    /// `first_region`).
    pub fn keep(&mut self, words: Arc<Words>) {
        self.keep.push(words);
    }

    /// The owner of the map memory at `addr` (a value this run looked up, a map's value area, a
    /// ring buffer record), or `None` when `addr` is not map memory of this run.
    pub fn owner_of(&self, addr: u64) -> Option<MemoryOwner> {
        if let Some(w) = self
            .keep
            .iter()
            .find(|w| holds((w.addr(0), w.len() as u64), addr))
        {
            return Some(MemoryOwner::Value(w.clone()));
        }
        let program = self.program.as_deref().unwrap_or(&[]);
        program
            .iter()
            .chain(self.extra.iter())
            .chain(self.reservations.iter().map(|(.., ring)| ring))
            .find(|m| m.value_area().is_some_and(|area| holds(area, addr)))
            .map(|m| MemoryOwner::Map(m.clone()))
    }

    /// True the first time a region starting at `addr` is reported in this run.
    pub fn first_region(&mut self, addr: u64) -> bool {
        if addr == self.last_seen {
            return false;
        }
        self.last_seen = addr;
        self.seen.insert(addr)
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

impl Drop for RunMaps {
    fn drop(&mut self) {
        for (addr, _, ring) in self.reservations.drain(..) {
            if let Some(rb) = ring.as_any().downcast_ref::<RingBuf>() {
                rb.commit(addr, true);
            }
        }
    }
}
