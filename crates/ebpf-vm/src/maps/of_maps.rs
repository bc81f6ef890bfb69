//! `BPF_MAP_TYPE_ARRAY_OF_MAPS` (12) and `BPF_MAP_TYPE_HASH_OF_MAPS` (13): maps whose values are
//! other maps. Every inner map must match the definition given at creation (`MapDef::inner`, the
//! kernel's `inner_map_fd`): same type, key size, value size and flags, and same `max_entries`
//! unless the template has `BPF_F_INNER_MAP`.
//!
//! User space stores an inner map by passing its id (`MapCommon::id`, u32 in host order) as the
//! 4-byte value, where the kernel takes an fd, or directly with `set`; lookups return the id, as the
//! kernel's do. A program's `map_lookup_elem` gets the inner map's handle, which the run adds to its
//! map table so that later helper calls can use it.
//!
//! Array of maps: indices in order (missing ones included), update flags must be `BPF_ANY`, an index
//! past the end is E2BIG. Hash of maps: hash-map rules and byte order of keys for iteration.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::ErrorCode;

use super::array::{check_update_flags, index_of};
use super::def::flags;
use super::hash::{after_in_order, next_in_order};
use super::prog_array::next_index;
use super::{registry, Map, MapCommon, MapDef, MapError, MapResult, MapType, ProgLookup};

pub struct MapOfMaps {
    common: MapCommon,
    is_array: bool,
    /// Array of maps: key = the index in host order, like any 4-byte key.
    entries: RwLock<BTreeMap<Vec<u8>, Arc<dyn Map>>>,
}

impl MapOfMaps {
    pub fn new(def: MapDef) -> MapResult<MapOfMaps> {
        Ok(MapOfMaps {
            is_array: def.map_type == MapType::ArrayOfMaps,
            common: MapCommon::new(def),
            entries: RwLock::new(BTreeMap::new()),
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<Vec<u8>, Arc<dyn Map>>> {
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<Vec<u8>, Arc<dyn Map>>> {
        self.entries.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `map` may be stored here (the kernel's `bpf_map_meta_equal`).
    fn check_inner(&self, map: &Arc<dyn Map>) -> MapResult<()> {
        let want = self
            .common
            .def
            .inner
            .as_deref()
            .expect("validated at creation");
        let got = &map.common().def;
        let same = got.map_type == want.map_type
            && got.key_size == want.key_size
            && got.value_size == want.value_size
            && got.flags == want.flags
            && (want.flags & flags::BPF_F_INNER_MAP != 0 || got.max_entries == want.max_entries);
        if same {
            Ok(())
        } else {
            Err(MapError::new(
                ErrorCode::Einval,
                format!(
                    "inner map {} ({} key {} value {} max {} flags 0x{:x}) does not match the \
                     template ({} key {} value {} max {} flags 0x{:x})",
                    map.common().id,
                    got.map_type.name(),
                    got.key_size,
                    got.value_size,
                    got.max_entries,
                    got.flags,
                    want.map_type.name(),
                    want.key_size,
                    want.value_size,
                    want.max_entries,
                    want.flags
                ),
            ))
        }
    }

    /// Stores `map` under `key` with update `flags`.
    pub fn set(&self, key: &[u8], map: Arc<dyn Map>, flags: u64) -> MapResult<()> {
        if key.len() != self.common.def.key_size as usize {
            return Err(MapError::new(
                ErrorCode::Einval,
                format!(
                    "key of {} bytes, the map's keys have {}",
                    key.len(),
                    self.common.def.key_size
                ),
            ));
        }
        self.check_inner(&map)?;
        let mut entries = self.write();
        if self.is_array {
            if flags != flags::BPF_ANY {
                return Err(MapError::new(
                    ErrorCode::Einval,
                    "array of maps updates take BPF_ANY only",
                ));
            }
            let i = index_of(key);
            if i >= self.common.def.max_entries {
                return Err(MapError::new(
                    ErrorCode::E2big,
                    format!("index {i} is past the end"),
                ));
            }
        } else {
            check_update_flags(flags)?;
            let exists = entries.contains_key(key);
            if exists && flags == flags::BPF_NOEXIST {
                return Err(MapError::new(ErrorCode::Eexist, "the key already exists"));
            }
            if !exists && flags == flags::BPF_EXIST {
                return Err(MapError::new(ErrorCode::Enoent, "no such key"));
            }
            if !exists && entries.len() >= self.common.def.max_entries as usize {
                return Err(MapError::new(ErrorCode::E2big, "the map is full"));
            }
        }
        entries.insert(key.to_vec(), map);
        Ok(())
    }

    /// The inner map under `key`.
    pub fn get(&self, key: &[u8]) -> Option<Arc<dyn Map>> {
        self.read().get(key).cloned()
    }
}

impl Map for MapOfMaps {
    map_identity!();

    fn lookup_elem(&self, key: &[u8]) -> MapResult<Vec<u8>> {
        match self.read().get(key) {
            Some(m) => Ok(m.common().id.to_ne_bytes().to_vec()),
            None => Err(MapError::new(
                ErrorCode::Enoent,
                "no inner map under this key",
            )),
        }
    }

    fn update_elem(&self, key: &[u8], value: &[u8], flags: u64) -> MapResult<()> {
        let id = u32::from_ne_bytes(value[..4].try_into().expect("4-byte value"));
        let map = registry::by_id(id)
            .ok_or_else(|| MapError::new(ErrorCode::Einval, format!("no live map has id {id}")))?;
        self.set(key, map, flags)
    }

    /// hash_of_maps only (the kernel's array_of_maps has no lookup_and_delete): the inner map's id.
    fn take_elem(&self, key: &[u8]) -> MapResult<Vec<u8>> {
        if self.is_array {
            return Err(MapError::new(
                ErrorCode::Enotsupp,
                "lookup_and_delete is not supported by array_of_maps maps",
            ));
        }
        match self.write().remove(key) {
            Some(m) => Ok(m.common().id.to_ne_bytes().to_vec()),
            None => Err(MapError::new(
                ErrorCode::Enoent,
                "no inner map under this key",
            )),
        }
    }

    fn delete_elem(&self, key: &[u8]) -> MapResult<()> {
        if self.is_array && index_of(key) >= self.common.def.max_entries {
            return Err(MapError::new(ErrorCode::E2big, "index past the end"));
        }
        match self.write().remove(key) {
            Some(_) => Ok(()),
            None => Err(MapError::new(
                ErrorCode::Enoent,
                "no inner map under this key",
            )),
        }
    }

    fn get_next_key(&self, key: Option<&[u8]>) -> MapResult<Vec<u8>> {
        if self.is_array {
            next_index(key, self.common.def.max_entries)
        } else {
            next_in_order(&self.read(), key)
        }
    }

    fn key_after(&self, key: &[u8]) -> MapResult<Vec<u8>> {
        if self.is_array {
            next_index(Some(key), self.common.def.max_entries)
        } else {
            after_in_order(&self.read(), key)
        }
    }

    fn prog_lookup(&self, key: &[u8], _cpu: usize) -> MapResult<ProgLookup> {
        Ok(match self.get(key) {
            Some(m) => ProgLookup::Map(m),
            None => ProgLookup::Null,
        })
    }

    fn len(&self) -> usize {
        self.read().len()
    }
}
