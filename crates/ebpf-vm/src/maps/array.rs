//! `BPF_MAP_TYPE_ARRAY` (2) and `BPF_MAP_TYPE_PERCPU_ARRAY` (6): `max_entries` preallocated,
//! zero-initialised values indexed by a u32 key (host byte order). Every element always exists:
//! update with `BPF_NOEXIST` is EEXIST, delete is EINVAL, an index past the end is E2BIG on update
//! and ENOENT on lookup, as in the kernel.
//!
//! All values live in one `Words` block that never moves, `value_stride` (value_size rounded up to
//! 8) bytes apart; a per-CPU array keeps `possible_cpus()` slots per element, element-major. The
//! block can be shared zero-copy with user space (`storage`), like a `BPF_F_MMAPABLE` array.

use crate::error::ErrorCode;

use super::def::{flags, MAX_MAP_BYTES};
use super::percpu::possible_cpus;
use super::{Map, MapCommon, MapDef, MapError, MapResult, ProgLookup, Words};

pub struct ArrayMap {
    common: MapCommon,
    stride: usize,
    /// Slots per element: 1, or `possible_cpus()` for a per-CPU array.
    cpus: usize,
    values: Words,
}

/// Checks update flags as `array_map_update_elem` and `htab_map_update_elem` do.
pub(crate) fn check_update_flags(flags: u64) -> MapResult<()> {
    if flags & flags::BPF_F_LOCK != 0 {
        return Err(MapError::new(
            ErrorCode::Einval,
            "BPF_F_LOCK needs a struct bpf_spin_lock in the value, which this map does not have",
        ));
    }
    if flags > flags::BPF_EXIST {
        return Err(MapError::new(
            ErrorCode::Einval,
            format!("update flags 0x{flags:x}: only BPF_ANY (0), BPF_NOEXIST (1) or BPF_EXIST (2)"),
        ));
    }
    Ok(())
}

/// Checks update flags for a map whose values may hold a spin lock at `lock` (`MapDef::
/// spin_lock_off`): `BPF_F_LOCK` is allowed only then. Returns the flags without `BPF_F_LOCK` and
/// whether to take the lock.
pub(crate) fn check_lock_flags(flags: u64, lock: Option<u32>) -> MapResult<(u64, bool)> {
    let locked = flags & flags::BPF_F_LOCK != 0;
    if locked && lock.is_none() {
        check_update_flags(flags)?;
    }
    let base = flags & !flags::BPF_F_LOCK;
    check_update_flags(base)?;
    Ok((base, locked))
}

/// Checks lookup flags (0, or `BPF_F_LOCK` when the values hold a spin lock); true to lock.
pub(crate) fn check_lookup_flags(flags: u64, lock: Option<u32>) -> MapResult<bool> {
    match flags {
        0 => Ok(false),
        flags::BPF_F_LOCK if lock.is_some() => Ok(true),
        _ => Err(MapError::new(
            ErrorCode::Einval,
            format!("lookup flags 0x{flags:x}: only BPF_F_LOCK, for values with a spin lock"),
        )),
    }
}

/// Writes one value of a map whose values may hold a spin lock (see `lock`).
pub(crate) fn store_value(
    words: &Words,
    offset: usize,
    src: &[u8],
    lock: Option<u32>,
    locked: bool,
) -> MapResult<()> {
    match lock {
        None => words.write(offset, src),
        Some(l) if locked => {
            super::lock::with_lock(words, offset + l as usize, || {
                super::lock::write_around(words, offset, src, l as usize)
            })?;
        }
        Some(l) => super::lock::write_around(words, offset, src, l as usize),
    }
    Ok(())
}

/// Reads one value of a map whose values may hold a spin lock; the lock reads as zero.
pub(crate) fn load_value(
    words: &Words,
    offset: usize,
    len: usize,
    lock: Option<u32>,
    locked: bool,
) -> MapResult<Vec<u8>> {
    let mut v = match lock {
        Some(l) if locked => {
            super::lock::with_lock(words, offset + l as usize, || words.read_vec(offset, len))?
        }
        _ => words.read_vec(offset, len),
    };
    if let Some(l) = lock {
        super::lock::hide_lock(&mut v, l as usize);
    }
    Ok(v)
}

/// Reads a u32 array index from a 4-byte key.
pub(crate) fn index_of(key: &[u8]) -> u32 {
    u32::from_ne_bytes(key[..4].try_into().expect("4-byte key"))
}

impl ArrayMap {
    pub fn new(def: MapDef) -> MapResult<ArrayMap> {
        let stride = def.value_stride();
        let cpus = if def.map_type.is_percpu() {
            possible_cpus()
        } else {
            1
        };
        let bytes = def.max_entries as u64 * cpus as u64 * stride as u64;
        if bytes > MAX_MAP_BYTES {
            return Err(MapError::new(
                ErrorCode::E2big,
                format!("array of {bytes} bytes exceeds the limit of {MAX_MAP_BYTES}"),
            ));
        }
        Ok(ArrayMap {
            common: MapCommon::new(def),
            stride,
            cpus,
            values: Words::try_zeroed(bytes as usize).ok_or_else(|| {
                MapError::new(
                    ErrorCode::E2big,
                    format!("cannot allocate {bytes} bytes of array values"),
                )
            })?,
        })
    }

    fn def(&self) -> &MapDef {
        &self.common.def
    }

    /// The storage of every value, for zero-copy views: element `i` (CPU `c` for per-CPU arrays)
    /// is at byte `(i * slots + c) * value_stride`. Lives as long as the map.
    pub fn storage(&self) -> &Words {
        &self.values
    }

    pub fn value_stride(&self) -> usize {
        self.stride
    }

    /// Byte offset of element `index`, slot `cpu`.
    fn offset(&self, index: u32, cpu: usize) -> usize {
        (index as usize * self.cpus + cpu) * self.stride
    }

    fn index(&self, key: &[u8]) -> Option<u32> {
        let i = index_of(key);
        (i < self.def().max_entries).then_some(i)
    }
}

impl Map for ArrayMap {
    map_identity!();

    fn lookup_elem(&self, key: &[u8]) -> MapResult<Vec<u8>> {
        let Some(i) = self.index(key) else {
            return Err(MapError::new(
                ErrorCode::Enoent,
                format!(
                    "index {} is past the end ({} entries)",
                    index_of(key),
                    self.def().max_entries
                ),
            ));
        };
        let vs = self.def().value_size as usize;
        if self.cpus == 1 {
            return load_value(
                &self.values,
                self.offset(i, 0),
                vs,
                self.def().spin_lock_off,
                false,
            );
        }
        let mut out = vec![0; self.value_blob_size()];
        for c in 0..self.cpus {
            self.values.read(
                self.offset(i, c),
                &mut out[c * self.stride..c * self.stride + vs],
            );
        }
        Ok(out)
    }

    fn lookup_elem_flags(&self, key: &[u8], flags: u64) -> MapResult<Vec<u8>> {
        let lock = self.def().spin_lock_off;
        if !check_lookup_flags(flags, lock)? {
            return self.lookup_elem(key);
        }
        let Some(i) = self.index(key) else {
            return Err(MapError::new(ErrorCode::Enoent, "index past the end"));
        };
        let vs = self.def().value_size as usize;
        load_value(&self.values, self.offset(i, 0), vs, lock, true)
    }

    fn update_elem(&self, key: &[u8], value: &[u8], flags: u64) -> MapResult<()> {
        let lock = self.def().spin_lock_off;
        let (flags, locked) = check_lock_flags(flags, lock)?;
        let Some(i) = self.index(key) else {
            return Err(MapError::new(
                ErrorCode::E2big,
                format!(
                    "index {} is past the end ({} entries)",
                    index_of(key),
                    self.def().max_entries
                ),
            ));
        };
        if flags == flags::BPF_NOEXIST {
            return Err(MapError::new(
                ErrorCode::Eexist,
                "array elements always exist: BPF_NOEXIST cannot succeed",
            ));
        }
        let vs = self.def().value_size as usize;
        for c in 0..self.cpus {
            store_value(
                &self.values,
                self.offset(i, c),
                &value[c * self.stride..c * self.stride + vs],
                lock,
                locked,
            )?;
        }
        Ok(())
    }

    fn delete_elem(&self, _key: &[u8]) -> MapResult<()> {
        Err(MapError::new(
            ErrorCode::Einval,
            "array elements cannot be deleted",
        ))
    }

    fn get_next_key(&self, key: Option<&[u8]>) -> MapResult<Vec<u8>> {
        let max = self.def().max_entries;
        let next = match key.map(index_of) {
            // A missing or out-of-range key restarts from the first index, as in the kernel.
            None => 0,
            Some(i) if i >= max => 0,
            Some(i) if i == max - 1 => {
                return Err(MapError::new(
                    ErrorCode::Enoent,
                    "no key after the last index",
                ))
            }
            Some(i) => i + 1,
        };
        Ok(next.to_ne_bytes().to_vec())
    }

    fn prog_lookup(&self, key: &[u8], cpu: usize) -> MapResult<ProgLookup> {
        Ok(match self.index(key) {
            None => ProgLookup::Null,
            Some(i) => ProgLookup::Value(self.values.addr(self.offset(i, cpu % self.cpus))),
        })
    }

    fn prog_update_elem(&self, key: &[u8], value: &[u8], flags: u64, cpu: usize) -> MapResult<()> {
        if self.cpus == 1 {
            return self.update_elem(key, value, flags);
        }
        check_update_flags(flags)?;
        let Some(i) = self.index(key) else {
            return Err(MapError::new(ErrorCode::E2big, "index past the end"));
        };
        if flags == flags::BPF_NOEXIST {
            return Err(MapError::new(
                ErrorCode::Eexist,
                "array elements always exist",
            ));
        }
        self.values.write(self.offset(i, cpu % self.cpus), value);
        Ok(())
    }

    fn direct_value(&self) -> Option<(u64, u64)> {
        (self.cpus == 1 && self.def().max_entries == 1)
            .then(|| (self.values.addr(0), self.def().value_size as u64))
    }

    fn value_area(&self) -> Option<(u64, u64)> {
        Some((self.values.addr(0), self.values.len() as u64))
    }

    fn value_blob_size(&self) -> usize {
        if self.cpus == 1 {
            self.def().value_size as usize
        } else {
            self.cpus * self.stride
        }
    }

    fn len(&self) -> usize {
        self.def().max_entries as usize
    }
}
