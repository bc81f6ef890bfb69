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
//! Each value has its own `Arc<Words>` (per-CPU: `possible_cpus()` slots of `value_stride` bytes).
//! Updates of an existing key write in place, so a value's address never changes while the key
//! exists and atomics of concurrent programs are not lost. A delete unlinks the value; a run that
//! looked it up keeps it alive through its own clone of the `Arc` until the run ends.

use std::any::Any;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::ErrorCode;

use super::array::{check_lock_flags, check_lookup_flags, load_value, store_value};
use super::def::flags;
use super::percpu::possible_cpus;
use super::{Map, MapCommon, MapDef, MapError, MapResult, MapType, ProgLookup, Words};

struct Entry {
    value: Arc<Words>,
    /// LRU clock value of the last use (LRU types only).
    stamp: u64,
}

#[derive(Default)]
struct Inner {
    entries: BTreeMap<Vec<u8>, Entry>,
    /// LRU types: stamp of last use -> key, oldest first.
    by_age: BTreeMap<u64, Vec<u8>>,
    clock: u64,
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

    fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let e = self.entries.remove(key)?;
        self.by_age.remove(&e.stamp);
        Some(e)
    }
}

pub struct HashMap {
    common: MapCommon,
    lru: bool,
    cpus: usize,
    stride: usize,
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
        Ok(HashMap {
            stride: def.value_stride(),
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

    /// A value as user space reads it (per-CPU: every slot, each padded to 8 bytes).
    fn copy_out(&self, words: &Words) -> MapResult<Vec<u8>> {
        let vs = self.value_size();
        if self.cpus == 1 {
            return load_value(words, 0, vs, self.common.def.spin_lock_off, false);
        }
        let mut out = vec![0; self.value_blob_size()];
        for c in 0..self.cpus {
            words.read(
                c * self.stride,
                &mut out[c * self.stride..c * self.stride + vs],
            );
        }
        Ok(out)
    }

    fn value_size(&self) -> usize {
        self.common.def.value_size as usize
    }

    /// Writes `value` into `words`: every slot from a user-space blob, or one slot (`Some(cpu)`)
    /// from a program.
    fn store(
        &self,
        words: &Words,
        value: &[u8],
        cpu: Option<usize>,
        locked: bool,
    ) -> MapResult<()> {
        let vs = self.value_size();
        match cpu {
            // Only plain hash maps can hold a spin lock (one slot).
            _ if self.cpus == 1 => {
                store_value(words, 0, value, self.common.def.spin_lock_off, locked)?
            }
            None => {
                for c in 0..self.cpus {
                    words.write(
                        c * self.stride,
                        &value[c * self.stride..c * self.stride + vs],
                    );
                }
            }
            Some(c) => words.write((c % self.cpus) * self.stride, value),
        }
        Ok(())
    }

    fn update(&self, key: &[u8], value: &[u8], flags: u64, cpu: Option<usize>) -> MapResult<()> {
        let (flags, locked) = check_lock_flags(flags, self.common.def.spin_lock_off)?;
        let mut inner = self.write();
        if let Some(e) = inner.entries.get(key) {
            if flags == flags::BPF_NOEXIST {
                return Err(MapError::new(ErrorCode::Eexist, "the key already exists"));
            }
            let words = e.value.clone();
            if self.lru {
                inner.touch(key);
            }
            // Written outside the map's lock: a BPF_F_LOCK copy may wait for a program's spin
            // lock, and must not hold up every other operation on the map meanwhile.
            drop(inner);
            return self.store(&words, value, cpu, locked);
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
                inner.entries.remove(&oldest);
            }
        }
        let words = Arc::new(Words::zeroed(self.cpus * self.stride));
        // A new value's lock word is 0 and nobody else can see it yet: no locking needed.
        self.store(&words, value, cpu, false)?;
        inner.entries.insert(
            key.to_vec(),
            Entry {
                value: words,
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
    fn common(&self) -> &MapCommon {
        &self.common
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn lookup_elem(&self, key: &[u8]) -> MapResult<Vec<u8>> {
        let words = {
            let inner = self.read();
            let Some(e) = inner.entries.get(key) else {
                return Err(MapError::new(ErrorCode::Enoent, "no such key"));
            };
            e.value.clone()
        };
        self.copy_out(&words)
    }

    fn take_elem(&self, key: &[u8]) -> MapResult<Vec<u8>> {
        let removed = self.write().remove(key);
        match removed {
            Some(e) => self.copy_out(&e.value),
            None => Err(MapError::new(ErrorCode::Enoent, "no such key")),
        }
    }

    fn lookup_elem_flags(&self, key: &[u8], flags: u64) -> MapResult<Vec<u8>> {
        let lock = self.common.def.spin_lock_off;
        if !check_lookup_flags(flags, lock)? {
            return self.lookup_elem(key);
        }
        let words = match self.read().entries.get(key) {
            Some(e) => e.value.clone(),
            None => return Err(MapError::new(ErrorCode::Enoent, "no such key")),
        };
        load_value(&words, 0, self.value_size(), lock, true)
    }

    fn update_elem(&self, key: &[u8], value: &[u8], flags: u64) -> MapResult<()> {
        self.update(key, value, flags, None)
    }

    fn prog_update_elem(&self, key: &[u8], value: &[u8], flags: u64, cpu: usize) -> MapResult<()> {
        self.update(key, value, flags, (self.cpus > 1).then_some(cpu))
    }

    fn delete_elem(&self, key: &[u8]) -> MapResult<()> {
        match self.write().remove(key) {
            Some(_) => Ok(()),
            None => Err(MapError::new(ErrorCode::Enoent, "no such key")),
        }
    }

    fn get_next_key(&self, key: Option<&[u8]>) -> MapResult<Vec<u8>> {
        next_in_order(&self.read().entries, key)
    }

    fn key_after(&self, key: &[u8]) -> MapResult<Vec<u8>> {
        after_in_order(&self.read().entries, key)
    }

    fn prog_lookup(&self, key: &[u8], cpu: usize) -> MapResult<ProgLookup> {
        let words = if self.lru {
            let mut inner = self.write();
            let Some(w) = inner.entries.get(key).map(|e| e.value.clone()) else {
                return Ok(ProgLookup::Null);
            };
            inner.touch(key);
            w
        } else {
            match self.read().entries.get(key) {
                Some(e) => e.value.clone(),
                None => return Ok(ProgLookup::Null),
            }
        };
        Ok(ProgLookup::Value {
            addr: words.addr((cpu % self.cpus) * self.stride),
            len: self.value_size() as u64,
            keep: Some(words),
        })
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
