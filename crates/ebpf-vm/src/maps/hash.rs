//! `BPF_MAP_TYPE_HASH` (1), `PERCPU_HASH` (5), `LRU_HASH` (9) and `LRU_PERCPU_HASH` (10).
//!
//! Elements are created on demand up to `max_entries`; a full map refuses new keys with E2BIG, except
//! the LRU types, which evict the least recently used element instead (exactly the least recent: the
//! kernel's LRU is approximate, ours is exact). "Used" means created, updated, or looked up by a
//! program; user-space lookups do not count, as in the kernel.
//!
//! Iteration order (`next_key`): keys in lexicographic order of their bytes. A key that is not in the
//! map restarts the iteration from the first key, as the kernel's hash maps do.
//!
//! Values live in a preallocated pool of `max_entries` slots (`pool`; per-CPU: a slot holds
//! `possible_cpus()` values of `value_stride` bytes), as the kernel preallocates hash elements. A
//! new key takes a free slot, a delete or an LRU eviction gives it back for a later insert; the
//! LRU evicts before it inserts, so `max_entries` slots suffice. Updates of an existing key write in
//! place, so a value's address never changes while the key exists and atomics of concurrent
//! programs are not lost. Copies to and from user space happen under the map's lock (so they never
//! mix two elements' bytes through a reused slot), except `BPF_F_LOCK` copies, which wait for the
//! value's spin lock and so happen outside it, as the kernel's do.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::ErrorCode;

use super::array::{check_lock_flags, check_lookup_flags, load_value, store_value};
use super::def::flags;
use super::percpu::possible_cpus;
use super::pool::{FreeSlots, ValuePool};
use super::{Map, MapCommon, MapDef, MapError, MapResult, MapType, ProgLookup};

struct Entry {
    /// The element's slot in the value pool.
    slot: u32,
    /// LRU clock value of the last use (LRU types only).
    stamp: u64,
}

#[derive(Default)]
struct Inner {
    entries: BTreeMap<Vec<u8>, Entry>,
    /// LRU types: stamp of last use -> key, oldest first.
    by_age: BTreeMap<u64, Vec<u8>>,
    clock: u64,
    free: FreeSlots,
}

impl Inner {
    fn touch(&mut self, key: &[u8]) {
        self.clock += 1;
        let now = self.clock;
        if let Some(e) = self.entries.get_mut(key) {
            // Reuse the age index's copy of the key: a lookup should not allocate.
            let k = self.by_age.remove(&e.stamp).unwrap_or_else(|| key.to_vec());
            e.stamp = now;
            self.by_age.insert(now, k);
        }
    }

    /// Unlinks `key` and frees its slot.
    fn remove(&mut self, key: &[u8]) -> bool {
        let Some(e) = self.entries.remove(key) else {
            return false;
        };
        self.by_age.remove(&e.stamp);
        self.free.give(e.slot);
        true
    }
}

pub struct HashMap {
    common: MapCommon,
    lru: bool,
    cpus: usize,
    stride: usize,
    pool: ValuePool,
    inner: RwLock<Inner>,
}

pub(crate) fn first_key<V>(m: &BTreeMap<Vec<u8>, V>) -> MapResult<Vec<u8>> {
    m.keys()
        .next()
        .cloned()
        .ok_or_else(|| MapError::new(ErrorCode::Enoent, "the map is empty"))
}

/// The first key strictly after `key` in a byte-ordered map, present or not.
pub(crate) fn after_in_order<V>(m: &BTreeMap<Vec<u8>, V>, key: &[u8]) -> MapResult<Vec<u8>> {
    m.range::<[u8], _>((Bound::Excluded(key), Bound::Unbounded))
        .next()
        .map(|(k, _)| k.clone())
        .ok_or_else(|| MapError::new(ErrorCode::Enoent, "no key after the last one"))
}

/// `next_key` over a byte-ordered map: the key after `key`, or the first key when `key` is absent.
pub(crate) fn next_in_order<V>(m: &BTreeMap<Vec<u8>, V>, key: Option<&[u8]>) -> MapResult<Vec<u8>> {
    match key {
        Some(k) if m.contains_key(k) => m
            .range::<[u8], _>((Bound::Excluded(k), Bound::Unbounded))
            .next()
            .map(|(k, _)| k.clone())
            .ok_or_else(|| MapError::new(ErrorCode::Enoent, "no key after the last one")),
        _ => first_key(m),
    }
}

impl HashMap {
    pub fn new(def: MapDef) -> MapResult<HashMap> {
        let lru = matches!(def.map_type, MapType::LruHash | MapType::LruPercpuHash);
        let cpus = if def.map_type.is_percpu() {
            possible_cpus()
        } else {
            1
        };
        let stride = def.value_stride();
        let pool = ValuePool::new(
            def.max_entries,
            cpus * stride,
            &format!("{} map {:?}", def.map_type.name(), def.name),
        )?;
        Ok(HashMap {
            stride,
            pool,
            common: MapCommon::new(def),
            lru,
            cpus,
            inner: RwLock::new(Inner::default()),
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    fn value_size(&self) -> usize {
        self.common.def.value_size as usize
    }

    /// Writes `value` into the element at `slot`: every per-CPU value from a user-space blob, or
    /// one (`Some(cpu)`) from a program.
    fn store(&self, slot: u32, value: &[u8], cpu: Option<usize>, locked: bool) -> MapResult<()> {
        let (words, base) = (self.pool.words(), self.pool.offset(slot));
        let vs = self.value_size();
        match cpu {
            // Only plain hash maps can hold a spin lock (one value per slot).
            _ if self.cpus == 1 => {
                store_value(words, base, value, self.common.def.spin_lock_off, locked)?
            }
            None => {
                for c in 0..self.cpus {
                    words.write(
                        base + c * self.stride,
                        &value[c * self.stride..c * self.stride + vs],
                    );
                }
            }
            Some(c) => words.write(base + (c % self.cpus) * self.stride, value),
        }
        Ok(())
    }

    /// Copies the element at `slot` out (per-CPU: every CPU's value, each padded to 8 bytes).
    fn load(&self, slot: u32) -> MapResult<Vec<u8>> {
        let (words, base) = (self.pool.words(), self.pool.offset(slot));
        let vs = self.value_size();
        if self.cpus == 1 {
            return load_value(words, base, vs, self.common.def.spin_lock_off, false);
        }
        let mut out = vec![0; self.value_blob_size()];
        for c in 0..self.cpus {
            words.read(
                base + c * self.stride,
                &mut out[c * self.stride..c * self.stride + vs],
            );
        }
        Ok(out)
    }

    fn update(&self, key: &[u8], value: &[u8], flags: u64, cpu: Option<usize>) -> MapResult<()> {
        let (flags, locked) = check_lock_flags(flags, self.common.def.spin_lock_off)?;
        let mut inner = self.write();
        if let Some(e) = inner.entries.get(key) {
            if flags == flags::BPF_NOEXIST {
                return Err(MapError::new(ErrorCode::Eexist, "the key already exists"));
            }
            let slot = e.slot;
            if self.lru {
                inner.touch(key);
            }
            if locked {
                // A BPF_F_LOCK copy may wait for a program's spin lock, and must not hold up
                // every other operation on the map meanwhile.
                drop(inner);
            }
            return self.store(slot, value, cpu, locked);
        }
        if flags == flags::BPF_EXIST {
            return Err(MapError::new(ErrorCode::Enoent, "no such key"));
        }
        if inner.entries.len() >= self.common.def.max_entries as usize {
            if !self.lru {
                return Err(MapError::new(
                    ErrorCode::E2big,
                    format!("the map is full ({} entries)", self.common.def.max_entries),
                ));
            }
            if let Some((_, oldest)) = inner.by_age.pop_first() {
                if let Some(e) = inner.entries.remove(&oldest) {
                    inner.free.give(e.slot);
                }
            }
        }
        let Some(taken) = inner.free.take(self.pool.slots()) else {
            return Err(MapError::new(
                ErrorCode::E2big,
                "no free value slot (a bug: there is one per entry)",
            ));
        };
        if taken.reused {
            self.pool.clear(taken.slot, self.common.def.spin_lock_off);
        }
        // A new value's lock word is free (or belongs to a run that still holds the deleted
        // element's lock, which only that run releases): no locking for the copy.
        self.store(taken.slot, value, cpu, false)?;
        inner.entries.insert(
            key.to_vec(),
            Entry {
                slot: taken.slot,
                stamp: 0,
            },
        );
        if self.lru {
            inner.touch(key);
        }
        Ok(())
    }
}

impl Map for HashMap {
    map_identity!();

    fn lookup_elem(&self, key: &[u8]) -> MapResult<Vec<u8>> {
        let inner = self.read();
        match inner.entries.get(key) {
            Some(e) => self.load(e.slot),
            None => Err(MapError::new(ErrorCode::Enoent, "no such key")),
        }
    }

    fn take_elem(&self, key: &[u8]) -> MapResult<Vec<u8>> {
        let mut inner = self.write();
        let Some(slot) = inner.entries.get(key).map(|e| e.slot) else {
            return Err(MapError::new(ErrorCode::Enoent, "no such key"));
        };
        // Copied before the slot is freed, under the map's lock: no insert can reuse it meanwhile.
        let value = self.load(slot)?;
        inner.remove(key);
        Ok(value)
    }

    fn lookup_elem_flags(&self, key: &[u8], flags: u64) -> MapResult<Vec<u8>> {
        let lock = self.common.def.spin_lock_off;
        if !check_lookup_flags(flags, lock)? {
            return self.lookup_elem(key);
        }
        let slot = match self.read().entries.get(key) {
            Some(e) => e.slot,
            None => return Err(MapError::new(ErrorCode::Enoent, "no such key")),
        };
        // Outside the map's lock: the copy waits for the value's spin lock.
        load_value(
            self.pool.words(),
            self.pool.offset(slot),
            self.value_size(),
            lock,
            true,
        )
    }

    fn update_elem(&self, key: &[u8], value: &[u8], flags: u64) -> MapResult<()> {
        self.update(key, value, flags, None)
    }

    fn prog_update_elem(&self, key: &[u8], value: &[u8], flags: u64, cpu: usize) -> MapResult<()> {
        self.update(key, value, flags, (self.cpus > 1).then_some(cpu))
    }

    fn delete_elem(&self, key: &[u8]) -> MapResult<()> {
        if self.write().remove(key) {
            Ok(())
        } else {
            Err(MapError::new(ErrorCode::Enoent, "no such key"))
        }
    }

    fn get_next_key(&self, key: Option<&[u8]>) -> MapResult<Vec<u8>> {
        next_in_order(&self.read().entries, key)
    }

    fn key_after(&self, key: &[u8]) -> MapResult<Vec<u8>> {
        after_in_order(&self.read().entries, key)
    }

    fn prog_lookup(&self, key: &[u8], cpu: usize) -> MapResult<ProgLookup> {
        let slot = if self.lru {
            let mut inner = self.write();
            let Some(slot) = inner.entries.get(key).map(|e| e.slot) else {
                return Ok(ProgLookup::Null);
            };
            inner.touch(key);
            slot
        } else {
            match self.read().entries.get(key) {
                Some(e) => e.slot,
                None => return Ok(ProgLookup::Null),
            }
        };
        Ok(ProgLookup::Value(
            self.pool.addr(slot, (cpu % self.cpus) * self.stride),
        ))
    }

    fn value_area(&self) -> Option<(u64, u64)> {
        Some(self.pool.area())
    }

    fn value_blob_size(&self) -> usize {
        if self.cpus == 1 {
            self.value_size()
        } else {
            self.cpus * self.stride
        }
    }

    fn len(&self) -> usize {
        self.read().entries.len()
    }
}
