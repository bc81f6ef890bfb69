//! Process-wide map ids, as the kernel's map ids: map-in-map values name their inner map by id (a
//! u32, where the kernel's syscall takes an fd), and user space can find a live map by id. The
//! registry holds weak references only, so it never keeps a map alive.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use super::Map;

static NEXT_ID: AtomicU32 = AtomicU32::new(1);

fn table() -> &'static Mutex<HashMap<u32, Weak<dyn Map>>> {
    static TABLE: OnceLock<Mutex<HashMap<u32, Weak<dyn Map>>>> = OnceLock::new();
    TABLE.get_or_init(|| Mutex::new(HashMap::new()))
}

pub(crate) fn next_id() -> u32 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

pub(crate) fn register(map: &Arc<dyn Map>) {
    let mut t = table().lock().unwrap_or_else(|e| e.into_inner());
    // Forget maps that have been dropped, so the table stays as small as the live set.
    if t.len() >= 64 && t.len().is_power_of_two() {
        t.retain(|_, w| w.strong_count() > 0);
    }
    t.insert(map.common().id, Arc::downgrade(map));
}

/// The live map with this id.
pub fn by_id(id: u32) -> Option<Arc<dyn Map>> {
    let t = table().lock().unwrap_or_else(|e| e.into_inner());
    t.get(&id).and_then(Weak::upgrade)
}
