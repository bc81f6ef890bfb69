//! The user-space face of every map (what the `bpf(2)` syscall commands do), as inherent methods on
//! `dyn Map`: length and permission checks, then the type's operations. Permissions follow the
//! kernel: `BPF_F_WRONLY` maps cannot be read, `BPF_F_RDONLY` and frozen maps cannot be written
//! (EPERM); the `_PROG` variants only restrict programs.

use std::sync::atomic::Ordering;

use crate::error::ErrorCode;

use super::def::flags;
use super::{Map, MapError, MapResult, MapType};

/// One batch of `lookup_batch`/`lookup_and_delete_batch`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    pub keys: Vec<Vec<u8>>,
    pub values: Vec<Vec<u8>>,
    /// Where the next batch starts (pass it back as `cursor`); `None` once the map is exhausted
    /// (the kernel's ENOENT at the end of a batch walk).
    pub next: Option<Vec<u8>>,
}

fn einval(message: String) -> MapError {
    MapError::new(ErrorCode::Einval, message)
}

impl dyn Map {
    pub fn map_type(&self) -> MapType {
        self.common().def.map_type
    }

    pub fn id(&self) -> u32 {
        self.common().id
    }

    pub fn key_size(&self) -> usize {
        self.common().def.key_size as usize
    }

    /// Downcasts to a concrete map type (e.g. `RingBuf` to consume, `ArrayMap` for its storage).
    pub fn downcast<T: Map>(&self) -> Option<&T> {
        self.as_any().downcast_ref::<T>()
    }

    fn check_key(&self, key: &[u8]) -> MapResult<()> {
        if key.len() != self.key_size() {
            return Err(einval(format!(
                "key of {} bytes, but the map's keys have {}",
                key.len(),
                self.key_size()
            )));
        }
        Ok(())
    }

    fn check_value(&self, value: &[u8]) -> MapResult<()> {
        let want = self.value_blob_size();
        if value.len() != want {
            return Err(einval(format!(
                "value of {} bytes, but the map's values have {want}{}",
                value.len(),
                if self.map_type().is_percpu() {
                    " (one 8-byte-padded value per CPU)"
                } else {
                    ""
                }
            )));
        }
        Ok(())
    }

    fn check_readable(&self) -> MapResult<()> {
        if self.common().def.flags & flags::BPF_F_WRONLY != 0 {
            return Err(MapError::new(
                ErrorCode::Eperm,
                "the map was created BPF_F_WRONLY: user space cannot read it",
            ));
        }
        Ok(())
    }

    fn check_writable(&self) -> MapResult<()> {
        if self.common().def.flags & flags::BPF_F_RDONLY != 0 {
            return Err(MapError::new(
                ErrorCode::Eperm,
                "the map was created BPF_F_RDONLY: user space cannot write it",
            ));
        }
        if self.is_frozen() {
            return Err(MapError::new(
                ErrorCode::Eperm,
                "the map is frozen: user space cannot write it",
            ));
        }
        Ok(())
    }

    fn is_keyless(&self) -> bool {
        matches!(
            self.map_type(),
            MapType::Queue | MapType::Stack | MapType::BloomFilter
        )
    }

    /// The value under `key` (ENOENT when absent). Per-CPU maps: every CPU's value, each padded to
    /// 8 bytes. Queue/stack: peek (the key must be empty).
    pub fn lookup(&self, key: &[u8]) -> MapResult<Vec<u8>> {
        self.check_readable()?;
        self.check_key(key)?;
        if self.is_keyless() {
            return self.peek_elem();
        }
        self.lookup_elem(key)
    }

    /// `lookup` with lookup flags: `BPF_F_LOCK` copies the value while holding its spin lock
    /// (maps whose values have one, `MapDef::spin_lock_off`); the lock word always reads as 0.
    pub fn lookup_with_flags(&self, key: &[u8], flags: u64) -> MapResult<Vec<u8>> {
        self.check_readable()?;
        self.check_key(key)?;
        self.lookup_elem_flags(key, flags)
    }

    /// Creates or replaces the value under `key`, according to `flags` (`BPF_ANY`, `BPF_NOEXIST`,
    /// `BPF_EXIST`). Queue/stack/bloom filter: push (the key must be empty).
    pub fn update(&self, key: &[u8], value: &[u8], flags: u64) -> MapResult<()> {
        self.check_writable()?;
        self.check_key(key)?;
        self.check_value(value)?;
        if self.is_keyless() {
            return self.push_elem(value, flags);
        }
        self.update_elem(key, value, flags)
    }

    pub fn delete(&self, key: &[u8]) -> MapResult<()> {
        self.check_writable()?;
        self.check_key(key)?;
        self.delete_elem(key)
    }

    /// The key after `key` (`None`: the first key); ENOENT after the last. A key that is not in the
    /// map gives the first key, as the kernel does.
    pub fn next_key(&self, key: Option<&[u8]>) -> MapResult<Vec<u8>> {
        self.check_readable()?;
        if let Some(k) = key {
            self.check_key(k)?;
        }
        self.get_next_key(key)
    }

    /// Every key, in the map type's iteration order. Stops after `max_entries` keys, so a map that
    /// changes meanwhile cannot make it loop forever.
    pub fn keys(&self) -> MapResult<Vec<Vec<u8>>> {
        let mut keys = Vec::new();
        let mut at: Option<Vec<u8>> = None;
        self.check_readable()?;
        while keys.len() < self.common().def.max_entries as usize {
            // After the previous key whether or not it is still there, so that concurrent deletes
            // cannot restart the walk.
            let next = match &at {
                None => self.get_next_key(None),
                Some(k) => self.key_after(k),
            };
            match next {
                Ok(k) => {
                    keys.push(k.clone());
                    at = Some(k);
                }
                Err(e) if e.code == ErrorCode::Enoent => break,
                Err(e) => return Err(e),
            }
        }
        Ok(keys)
    }

    /// Queue/stack: add a value (`BPF_EXIST` drops the oldest when full). Bloom filter: add.
    pub fn push(&self, value: &[u8], flags: u64) -> MapResult<()> {
        self.check_writable()?;
        self.check_value(value)?;
        self.push_elem(value, flags)
    }

    /// Queue/stack: remove and return the next value (ENOENT when empty).
    pub fn pop(&self) -> MapResult<Vec<u8>> {
        self.check_writable()?;
        self.pop_elem()
    }

    /// Queue/stack: the next value, kept in the map.
    pub fn peek(&self) -> MapResult<Vec<u8>> {
        self.check_readable()?;
        self.peek_elem()
    }

    /// Bloom filter: Ok when `value` may be present, ENOENT when it is not.
    pub fn contains(&self, value: &[u8]) -> MapResult<()> {
        self.check_readable()?;
        self.check_value(value)?;
        self.contains_elem(value)
    }

    /// Removes and returns the value under `key` (hash types), or pops (queue/stack, `key` empty).
    pub fn lookup_and_delete(&self, key: &[u8]) -> MapResult<Vec<u8>> {
        self.check_readable()?;
        self.check_writable()?;
        self.check_key(key)?;
        match self.map_type() {
            MapType::Queue | MapType::Stack => self.pop_elem(),
            // One step under the map's lock: of two concurrent removals exactly one gets the value.
            MapType::Hash | MapType::LruHash | MapType::PercpuHash | MapType::LruPercpuHash => {
                self.take_elem(key)
            }
            t => Err(MapError::new(
                ErrorCode::Enotsupp,
                format!("lookup_and_delete is not supported by {} maps", t.name()),
            )),
        }
    }

    /// Stops user-space writes for good (programs may still write unless `BPF_F_RDONLY_PROG`).
    /// EBUSY while user space holds a writable view of the values (`view::WritableView`), as the
    /// kernel refuses while a writable mmap exists. Freezing a frozen map is EPERM, as in Linux
    /// 6.18 (`map_freeze` finds no write permission left on a frozen map; `bpftool map freeze`
    /// twice says "Operation not permitted").
    pub fn freeze(&self) -> MapResult<()> {
        let writers = self.common().lock_writers();
        if self.is_frozen() {
            return Err(MapError::new(
                ErrorCode::Eperm,
                format!("map {} is frozen already", self.id()),
            ));
        }
        if *writers > 0 {
            return Err(MapError::new(
                ErrorCode::Ebusy,
                format!(
                    "map {} has {} writable view(s) of its values: release them (or let them be \
                     garbage collected) before freezing",
                    self.id(),
                    *writers
                ),
            ));
        }
        self.common().frozen.store(true, Ordering::Release);
        Ok(())
    }

    pub fn is_frozen(&self) -> bool {
        self.common().frozen.load(Ordering::Acquire)
    }

    fn batch(&self, cursor: Option<&[u8]>, max: usize, delete: bool) -> MapResult<Batch> {
        if max == 0 {
            return Err(einval("a batch needs a count above zero".into()));
        }
        if delete {
            self.check_writable()?;
        }
        self.check_readable()?;
        let mut out = Batch::default();
        if let Some(c) = cursor {
            self.check_key(c)?;
        }
        let mut at = cursor.map(<[u8]>::to_vec);
        loop {
            // The cursor is the last key returned; it may be gone by now (deleted by this batch or
            // by someone else), so continue after where it was rather than from the start.
            let next = match &at {
                None => self.get_next_key(None),
                Some(k) => self.key_after(k),
            };
            let key = match next {
                Ok(k) => k,
                Err(e) if e.code == ErrorCode::Enoent => {
                    out.next = None;
                    return Ok(out);
                }
                Err(e) => return Err(e),
            };
            // A deleting batch takes each element in one step (`take_elem`): an element someone
            // else deletes meanwhile is theirs (ENOENT here, skipped), every element this batch
            // removes is returned, and none is returned twice.
            let found = if delete {
                self.take_elem(&key)
            } else {
                self.lookup_elem(&key)
            };
            match found {
                Ok(v) => {
                    out.keys.push(key.clone());
                    out.values.push(v);
                }
                // Array slots of fd arrays and elements deleted meanwhile are skipped.
                Err(e) if e.code == ErrorCode::Enoent => {}
                // What this batch already took must reach the caller: stop here and let the next
                // batch, which starts after the last key returned, meet the error again.
                Err(_) if !out.keys.is_empty() => {
                    out.next = out.keys.last().cloned();
                    return Ok(out);
                }
                Err(e) => return Err(e),
            }
            at = Some(key);
            if out.keys.len() == max {
                out.next = at;
                return Ok(out);
            }
        }
    }

    /// Up to `max` elements after `cursor` (`None`: from the start), as `BPF_MAP_LOOKUP_BATCH`.
    pub fn lookup_batch(&self, cursor: Option<&[u8]>, max: usize) -> MapResult<Batch> {
        self.batch(cursor, max, false)
    }

    /// As `lookup_batch`, deleting what it returns (`BPF_MAP_LOOKUP_AND_DELETE_BATCH`): the hash
    /// types and hash_of_maps, as in the kernel (ENOTSUPP for the others). Each element is removed
    /// and returned in one step, so a concurrent delete of the same key either wins (the batch
    /// skips it) or loses (ENOENT for the other side): nothing is removed without being returned.
    pub fn lookup_and_delete_batch(&self, cursor: Option<&[u8]>, max: usize) -> MapResult<Batch> {
        self.batch(cursor, max, true)
    }

    /// Updates pairs in order; stops at the first error. Returns how many succeeded and the error.
    pub fn update_batch(
        &self,
        keys: &[&[u8]],
        values: &[&[u8]],
        flags: u64,
    ) -> (usize, MapResult<()>) {
        if keys.len() != values.len() {
            return (
                0,
                Err(einval(format!(
                    "{} keys but {} values",
                    keys.len(),
                    values.len()
                ))),
            );
        }
        for (n, (k, v)) in keys.iter().zip(values).enumerate() {
            if let Err(e) = self.update(k, v, flags) {
                return (n, Err(e));
            }
        }
        (keys.len(), Ok(()))
    }

    /// Deletes keys in order; stops at the first error. Returns how many succeeded and the error.
    pub fn delete_batch(&self, keys: &[&[u8]]) -> (usize, MapResult<()>) {
        for (n, k) in keys.iter().enumerate() {
            if let Err(e) = self.delete(k) {
                return (n, Err(e));
            }
        }
        (keys.len(), Ok(()))
    }
}
