//! `BPF_MAP_TYPE_PROG_ARRAY` (3): programs by index, for tail calls. The map stores opaque
//! `Arc<dyn Any + Send + Sync>` program references (so that `program.rs` can put programs here
//! without this module knowing the `Program` type; `RunState::tail_call_target` turns one into a
//! `vm::TailCallTarget`) with a u32 id that user-space lookups return, as
//! the kernel returns a program id. Programs cannot read it: `map_lookup_elem` on it is refused.
//! Indices iterate in order, present or not, as for arrays. Update flags must be `BPF_ANY` and an
//! index past the end is E2BIG, as in the kernel's fd arrays.
//!
//! Slots are kept only for the indices that hold a program (an ordered map under one lock), so a
//! prog array of millions of entries that holds a few programs costs a few entries, not memory in
//! proportion to `max_entries` (the kernel's array of pointers is allocated whole).

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::ErrorCode;

use super::array::index_of;
use super::{Map, MapCommon, MapDef, MapError, MapResult};

/// A program reference stored in a prog array.
pub type ProgRef = Arc<dyn Any + Send + Sync>;

/// The program at an index, with its user-visible id.
type Slot = (u32, ProgRef);

pub struct ProgArray {
    common: MapCommon,
    /// The indices that hold a program.
    slots: RwLock<BTreeMap<u32, Slot>>,
}

fn past_end(index: u32, max: u32) -> MapError {
    MapError::new(
        ErrorCode::E2big,
        format!("index {index} is past the end ({max} entries)"),
    )
}

impl ProgArray {
    pub fn new(def: MapDef) -> MapResult<ProgArray> {
        Ok(ProgArray {
            common: MapCommon::new(def),
            slots: RwLock::new(BTreeMap::new()),
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<u32, Slot>> {
        self.slots.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<u32, Slot>> {
        self.slots.write().unwrap_or_else(|e| e.into_inner())
    }

    fn check(&self, index: u32) -> MapResult<()> {
        let max = self.common.def.max_entries;
        if index < max {
            Ok(())
        } else {
            Err(past_end(index, max))
        }
    }

    /// Puts program `prog` (user-visible id `id`) at `index`.
    pub fn set(&self, index: u32, id: u32, prog: ProgRef) -> MapResult<()> {
        self.check(index)?;
        self.write().insert(index, (id, prog));
        Ok(())
    }

    /// The program at `index`, for the tail-call helper.
    pub fn get(&self, index: u32) -> Option<ProgRef> {
        self.read().get(&index).map(|(_, p)| p.clone())
    }
}

impl Map for ProgArray {
    map_identity!();

    fn lookup_elem(&self, key: &[u8]) -> MapResult<Vec<u8>> {
        let i = index_of(key);
        self.check(i)
            .map_err(|e| MapError::new(ErrorCode::Enoent, e.message))?;
        match self.read().get(&i) {
            Some((id, _)) => Ok(id.to_ne_bytes().to_vec()),
            None => Err(MapError::new(
                ErrorCode::Enoent,
                format!("no program at index {i}"),
            )),
        }
    }

    fn update_elem(&self, _key: &[u8], _value: &[u8], _flags: u64) -> MapResult<()> {
        Err(MapError::new(
            ErrorCode::Einval,
            "a prog array holds programs: set them with ProgArray::set, not as bytes",
        ))
    }

    fn delete_elem(&self, key: &[u8]) -> MapResult<()> {
        let i = index_of(key);
        self.check(i)?;
        match self.write().remove(&i) {
            Some(_) => Ok(()),
            None => Err(MapError::new(
                ErrorCode::Enoent,
                format!("no program at index {i}"),
            )),
        }
    }

    fn get_next_key(&self, key: Option<&[u8]>) -> MapResult<Vec<u8>> {
        next_index(key, self.common.def.max_entries)
    }

    fn len(&self) -> usize {
        self.read().len()
    }
}

/// Array iteration: every index in order; a missing or out-of-range key restarts at 0.
pub(crate) fn next_index(key: Option<&[u8]>, max: u32) -> MapResult<Vec<u8>> {
    let next = match key.map(index_of) {
        Some(i) if i < max && i == max - 1 => {
            return Err(MapError::new(
                ErrorCode::Enoent,
                "no key after the last index",
            ))
        }
        Some(i) if i < max => i + 1,
        _ => 0,
    };
    Ok(next.to_ne_bytes().to_vec())
}
