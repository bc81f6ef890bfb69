//! Pinned objects, as bpffs gives them in the kernel: a map pinned under a path can be opened by
//! that path from any thread of the process (a worker thread that did not create it, say). Unlike
//! the id registry, a pin keeps the map alive until it is unpinned.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::ErrorCode;
use crate::maps::{Map, MapError, MapResult};

fn table() -> &'static Mutex<HashMap<String, Arc<dyn Map>>> {
    static PINS: OnceLock<Mutex<HashMap<String, Arc<dyn Map>>>> = OnceLock::new();
    PINS.get_or_init(|| Mutex::new(HashMap::new()))
}

fn check_path(path: &str) -> MapResult<()> {
    if path.is_empty() || path.len() > 4096 || path.contains('\0') {
        return Err(MapError::new(
            ErrorCode::Einval,
            format!("invalid pin path {path:?}: must be 1 to 4096 characters without NUL"),
        ));
    }
    Ok(())
}

/// Pins `map` under `path`; EEXIST when something is pinned there already.
pub fn pin_map(path: &str, map: &Arc<dyn Map>) -> MapResult<()> {
    check_path(path)?;
    let mut pins = table().lock().unwrap_or_else(|e| e.into_inner());
    if pins.contains_key(path) {
        return Err(MapError::new(
            ErrorCode::Eexist,
            format!("{path} is already pinned"),
        ));
    }
    pins.insert(path.to_string(), map.clone());
    Ok(())
}

/// The map pinned under `path`; ENOENT when there is none.
pub fn get_map(path: &str) -> MapResult<Arc<dyn Map>> {
    check_path(path)?;
    let pins = table().lock().unwrap_or_else(|e| e.into_inner());
    pins.get(path)
        .cloned()
        .ok_or_else(|| MapError::new(ErrorCode::Enoent, format!("nothing is pinned at {path}")))
}

/// Removes the pin at `path`; ENOENT when there is none.
pub fn unpin(path: &str) -> MapResult<()> {
    check_path(path)?;
    let mut pins = table().lock().unwrap_or_else(|e| e.into_inner());
    pins.remove(path)
        .map(|_| ())
        .ok_or_else(|| MapError::new(ErrorCode::Enoent, format!("nothing is pinned at {path}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::{create, MapDef, MapType};

    #[test]
    fn pin_get_unpin() {
        let map = create(MapDef::new(MapType::Array, 4, 8, 1)).unwrap();
        pin_map("/test/pins/a", &map).unwrap();
        assert_eq!(
            pin_map("/test/pins/a", &map).unwrap_err().code,
            ErrorCode::Eexist
        );
        assert_eq!(get_map("/test/pins/a").unwrap().id(), map.id());
        unpin("/test/pins/a").unwrap();
        assert_eq!(get_map("/test/pins/a").unwrap_err().code, ErrorCode::Enoent);
        assert_eq!(unpin("/test/pins/a").unwrap_err().code, ErrorCode::Enoent);
        assert_eq!(pin_map("", &map).unwrap_err().code, ErrorCode::Einval);
    }
}
