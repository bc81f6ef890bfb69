//! `BPF_MAP_TYPE_QUEUE` (22, FIFO) and `BPF_MAP_TYPE_STACK` (23, LIFO): keyless, at most
//! `max_entries` values. Push on a full map is E2BIG unless the flags are `BPF_EXIST`, which drops
//! the oldest value to make room (both types, as in the kernel); pop and peek on an empty map are
//! ENOENT. Values are copied in and out, so nothing a program holds points into the map.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use crate::error::ErrorCode;

use super::def::flags;
use super::{Map, MapCommon, MapDef, MapError, MapResult, MapType};

pub struct QueueMap {
    common: MapCommon,
    lifo: bool,
    /// Oldest value at the front.
    values: Mutex<VecDeque<Vec<u8>>>,
}

impl QueueMap {
    pub fn new(def: MapDef) -> QueueMap {
        QueueMap {
            lifo: def.map_type == MapType::Stack,
            common: MapCommon::new(def),
            values: Mutex::new(VecDeque::new()),
        }
    }

    fn values(&self) -> MutexGuard<'_, VecDeque<Vec<u8>>> {
        self.values.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take(&self, remove: bool) -> MapResult<Vec<u8>> {
        let mut v = self.values();
        let got = match (self.lifo, remove) {
            (false, true) => v.pop_front(),
            (true, true) => v.pop_back(),
            (false, false) => v.front().cloned(),
            (true, false) => v.back().cloned(),
        };
        got.ok_or_else(|| MapError::new(ErrorCode::Enoent, "the map is empty"))
    }
}

impl Map for QueueMap {
    map_identity!();

    fn push_elem(&self, value: &[u8], flags: u64) -> MapResult<()> {
        if flags & !flags::BPF_EXIST != 0 {
            return Err(MapError::new(
                ErrorCode::Einval,
                format!("push flags 0x{flags:x}: only BPF_ANY (0) or BPF_EXIST (2)"),
            ));
        }
        let mut v = self.values();
        if v.len() >= self.common.def.max_entries as usize {
            if flags != flags::BPF_EXIST {
                return Err(MapError::new(
                    ErrorCode::E2big,
                    format!("the map is full ({} values)", self.common.def.max_entries),
                ));
            }
            v.pop_front();
        }
        v.push_back(value.to_vec());
        Ok(())
    }

    fn pop_elem(&self) -> MapResult<Vec<u8>> {
        self.take(true)
    }

    fn peek_elem(&self) -> MapResult<Vec<u8>> {
        self.take(false)
    }

    fn delete_elem(&self, _key: &[u8]) -> MapResult<()> {
        Err(MapError::new(
            ErrorCode::Einval,
            "queue and stack maps have no keys to delete: pop instead",
        ))
    }

    fn get_next_key(&self, _key: Option<&[u8]>) -> MapResult<Vec<u8>> {
        Err(MapError::new(
            ErrorCode::Einval,
            "queue and stack maps have no keys to iterate",
        ))
    }

    fn len(&self) -> usize {
        self.values().len()
    }
}
