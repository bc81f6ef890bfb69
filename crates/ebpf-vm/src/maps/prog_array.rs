//! `BPF_MAP_TYPE_PROG_ARRAY` (3): programs by index, for tail calls. The map stores opaque
//! `Arc<dyn Any + Send + Sync>` program references (so that `program.rs` can put programs here
//! without this module knowing the `Program` type) with a u32 id that user-space lookups return, as
//! the kernel returns a program id. Programs cannot read it: `map_lookup_elem` on it is refused.
//! Indices iterate in order, present or not, as for arrays. Update flags must be `BPF_ANY` and an
//! index past the end is E2BIG, as in the kernel's fd arrays.

use std::any::Any;
use std::sync::{Arc, RwLock};

use crate::error::ErrorCode;

use super::array::index_of;
use super::def::MAX_MAP_BYTES;
use super::{Map, MapCommon, MapDef, MapError, MapResult};

/// A program reference stored in a prog array.
pub type ProgRef = Arc<dyn Any + Send + Sync>;

/// One index: the program's user-visible id and the program.
type Slot = RwLock<Option<(u32, ProgRef)>>;

pub struct ProgArray {
    common: MapCommon,
    slots: Box<[Slot]>,
}

fn past_end(index: u32, max: u32) -> MapError {
    MapError::new(
        ErrorCode::E2big,
        format!("index {index} is past the end ({max} entries)"),
    )
}

impl ProgArray {
    pub fn new(def: MapDef) -> MapResult<ProgArray> {
        let n = def.max_entries as usize;
        let bytes = n as u64 * std::mem::size_of::<Slot>() as u64;
        if bytes > MAX_MAP_BYTES {
            return Err(MapError::new(
                ErrorCode::E2big,
                format!("a prog array of {n} entries exceeds the limit of {MAX_MAP_BYTES} bytes"),
            ));
        }
        Ok(ProgArray {
            common: MapCommon::new(def),
            slots: (0..n).map(|_| RwLock::new(None)).collect(),
        })
    }

    fn slot(&self, index: u32) -> MapResult<&Slot> {
        self.slots
            .get(index as usize)
            .ok_or_else(|| past_end(index, self.common.def.max_entries))
    }

    /// Puts program `prog` (user-visible id `id`) at `index`.
    pub fn set(&self, index: u32, id: u32, prog: ProgRef) -> MapResult<()> {
        *self.slot(index)?.write().unwrap_or_else(|e| e.into_inner()) = Some((id, prog));
        Ok(())
    }

    /// The program at `index`, for the tail-call helper.
    pub fn get(&self, index: u32) -> Option<ProgRef> {
        let slot = self.slots.get(index as usize)?;
        let guard = slot.read().unwrap_or_else(|e| e.into_inner());
        guard.as_ref().map(|(_, p)| p.clone())
    }
}

impl Map for ProgArray {
    fn common(&self) -> &MapCommon {
        &self.common
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn lookup_elem(&self, key: &[u8]) -> MapResult<Vec<u8>> {
        let i = index_of(key);
        let slot = self
            .slot(i)
            .map_err(|e| MapError::new(ErrorCode::Enoent, e.message))?;
        match &*slot.read().unwrap_or_else(|e| e.into_inner()) {
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
        match self
            .slot(i)?
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
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
        self.slots
            .iter()
            .filter(|s| s.read().unwrap_or_else(|e| e.into_inner()).is_some())
            .count()
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
