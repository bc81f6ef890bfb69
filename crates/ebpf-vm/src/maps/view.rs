//! Writable views of an array map's values that user space holds (what a writable `mmap` of a
//! `BPF_F_MMAPABLE` array is in the kernel). The kernel counts such mappings (`bpf_map_write_active`)
//! and refuses `BPF_MAP_FREEZE` with EBUSY while one exists, since writes through it would go on
//! landing in a map that claims to be frozen; a writable mapping of a frozen map is EPERM. Both
//! checks happen under one lock (the kernel's `freeze_mutex`), so that a view cannot be opened
//! between the check and the freeze.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::ErrorCode;

use super::array::ArrayMap;
use super::{Map, MapError, MapResult, MapType};

/// One writable view of an array map's values. It keeps the map alive and counts as a writer until
/// it is released (`release`, or dropped).
pub struct WritableView {
    map: Arc<dyn Map>,
    released: AtomicBool,
}

impl WritableView {
    /// A view of `map`'s values: EINVAL unless it is a plain array, EPERM when it is frozen.
    pub fn open(map: &Arc<dyn Map>) -> MapResult<WritableView> {
        if map.map_type() != MapType::Array || map.downcast::<ArrayMap>().is_none() {
            return Err(MapError::new(
                ErrorCode::Einval,
                format!("map {} is not an array map", map.id()),
            ));
        }
        let mut writers = map.common().lock_writers();
        if map.is_frozen() {
            return Err(MapError::new(
                ErrorCode::Eperm,
                "the map is frozen: its memory cannot be viewed writable",
            ));
        }
        *writers += 1;
        Ok(WritableView {
            map: map.clone(),
            released: AtomicBool::new(false),
        })
    }

    /// The values' memory: `len` bytes at `ptr`, valid as long as this view (it keeps the map).
    pub fn memory(&self) -> (*mut u8, usize) {
        let Some(array) = self.map.downcast::<ArrayMap>() else {
            unreachable!("`open` admits array maps only");
        };
        (array.storage().as_ptr(), array.storage().len())
    }

    /// The caller no longer writes through this view: it stops counting as a writer. Releasing
    /// twice is harmless.
    pub fn release(&self) {
        if !self.released.swap(true, Ordering::AcqRel) {
            *self.map.common().lock_writers() -= 1;
        }
    }
}

impl Drop for WritableView {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::{create, MapDef};

    fn array() -> Arc<dyn Map> {
        create(MapDef::new(MapType::Array, 4, 8, 2)).unwrap()
    }

    #[test]
    fn freeze_is_ebusy_while_a_view_is_held_and_views_of_frozen_maps_eperm() {
        let m = array();
        let a = WritableView::open(&m).unwrap();
        let b = WritableView::open(&m).unwrap();
        assert_eq!(m.freeze().unwrap_err().code, ErrorCode::Ebusy);
        a.release();
        a.release(); // twice: still one writer (b) left
        assert_eq!(m.freeze().unwrap_err().code, ErrorCode::Ebusy);
        assert!(!m.is_frozen());
        drop(b);
        drop(a);
        m.freeze().unwrap();
        assert!(m.is_frozen());
        assert_eq!(WritableView::open(&m).err().unwrap().code, ErrorCode::Eperm);
        // A second freeze: EPERM, as `bpftool map freeze` twice on Linux 6.18.
        assert_eq!(m.freeze().unwrap_err().code, ErrorCode::Eperm);
        let hash = create(MapDef::new(MapType::Hash, 4, 8, 2)).unwrap();
        assert_eq!(
            WritableView::open(&hash).err().unwrap().code,
            ErrorCode::Einval
        );
    }
}
