//! Maps: key/value stores owned by Rust and shared, through `Arc<dyn Map>`, by programs, JavaScript
//! and threads. Types, flags, limits and errors follow the kernel (`linux/bpf.h` and the kernel's
//! `map_ops`); where the kernel leaves something unspecified (hash iteration order, what a "CPU" is)
//! the choice is documented on the type.
//!
//! Two faces:
//! - the user-space face (what the `bpf(2)` syscall offers): the inherent methods on `dyn Map`
//!   (`lookup`, `update`, `delete`, `next_key`, batches, `freeze`, queue `push`/`pop`/`peek`). They
//!   check key and value lengths and the access flags, then call the type's `*_elem` operations.
//! - the program face: `prog_lookup` hands out the address of a value inside the map's
//!   `value_area`, memory the map owns for its whole life (arrays: their elements; hash maps and
//!   LPM tries: a preallocated pool of slots, see `pool`), used by the map helpers in
//!   `helpers::maps` through a run's `RunMaps` table.
//!
//! Memory model: every value lives in 8-byte aligned, zero-initialised storage that never moves
//! (`storage::Words`), so programs may use atomic instructions on values and pointers to array values
//! stay valid for the life of the map. Plain concurrent accesses to one value race exactly as they do
//! in the kernel (torn values are possible; host memory safety is not at stake).

/// The two `Map` methods every map type has in the same form (the `common` field and itself as
/// `Any`), written once: `impl Map for X { map_identity!(); ... }`.
macro_rules! map_identity {
    () => {
        fn common(&self) -> &$crate::maps::MapCommon {
            &self.common
        }

        fn as_any(&self) -> &dyn ::std::any::Any {
            self
        }
    };
}

pub mod added_regions;
pub mod array;
pub mod bloom;
pub mod def;
pub mod hash;
pub mod lock;
pub mod lpm;
pub mod of_maps;
pub mod percpu;
pub mod perf_event_array;
pub mod pool;
pub mod prog_array;
pub mod queue;
pub mod redirect;
pub mod registry;
pub mod reloc;
pub mod reuse;
pub mod ringbuf;
pub mod run;
pub mod stack_trace;
pub mod storage;
mod user;
pub mod view;

use std::any::Any;
use std::fmt;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::ErrorCode;

pub use def::{flags, MapDef, MapType};
pub use reloc::ProgramMaps;
pub use run::RunMaps;
pub use storage::Words;
pub use user::Batch;

/// A failed map operation: the kernel's errno and a message saying what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapError {
    pub code: ErrorCode,
    pub message: String,
}

impl MapError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        MapError {
            code,
            message: message.into(),
        }
    }

    /// The positive errno value of `code` (Linux numbering), as helpers return it negated.
    pub fn errno(&self) -> i64 {
        errno(self.code)
    }
}

/// Linux errno numbers of the codes map operations produce.
pub const fn errno(code: ErrorCode) -> i64 {
    match code {
        ErrorCode::Eperm => 1,
        ErrorCode::Enoent => 2,
        ErrorCode::E2big => 7,
        ErrorCode::Enodev => 19,
        ErrorCode::Eoverflow => 75,
        ErrorCode::Efault => 14,
        ErrorCode::Eexist => 17,
        ErrorCode::Einval => 22,
        ErrorCode::Enospc => 28,
        ErrorCode::Etime => 62,
        ErrorCode::Eacces => 13,
        ErrorCode::Ebusy => 16,
        ErrorCode::AbortErr => 125,
        // The kernel's internal ENOTSUPP, which helpers and the syscall do return.
        ErrorCode::Enotsupp => 524,
    }
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for MapError {}

pub type MapResult<T> = Result<T, MapError>;

/// What a program's `map_lookup_elem` gets.
pub enum ProgLookup {
    /// No such element: the helper returns 0 (NULL).
    Null,
    /// The host address of the value. It lies in the map's `value_area`, memory the map owns for
    /// its whole life, which the helper makes a region of the run.
    Value(u64),
    /// An inner map (map-in-map lookups): the helper returns its handle.
    Map(Arc<dyn Map>),
}

/// What every map has besides its elements.
#[derive(Debug)]
pub struct MapCommon {
    pub def: MapDef,
    /// Process-unique id, as the kernel's map id (map-in-map values refer to inner maps by id).
    pub id: u32,
    /// Set by `freeze()`: no more writes from user space (programs may still write unless the map
    /// is `BPF_F_RDONLY_PROG`).
    pub frozen: AtomicBool,
    /// Writable views user space holds (`view::WritableView`); `freeze()` is EBUSY while any
    /// exists. The lock also orders freezing against opening a view.
    writers: Mutex<u32>,
}

impl MapCommon {
    pub fn new(def: MapDef) -> Self {
        MapCommon {
            def,
            id: registry::next_id(),
            frozen: AtomicBool::new(false),
            writers: Mutex::new(0),
        }
    }

    /// The count of writable views, locked (see `writers`).
    pub(crate) fn lock_writers(&self) -> MutexGuard<'_, u32> {
        self.writers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn unsupported<T>(common: &MapCommon, what: &str) -> MapResult<T> {
    Err(MapError::new(
        ErrorCode::Enotsupp,
        format!(
            "{what} is not supported by {} maps",
            common.def.map_type.name()
        ),
    ))
}

/// One map type's operations, in the kernel's `map_ops` vocabulary. Callers (the user-space methods
/// on `dyn Map` and the helpers) have already checked that keys are `key_size` bytes and values
/// `value_size` bytes (per-CPU user-space values: `value_blob_size`), so implementations need not.
pub trait Map: Send + Sync + 'static {
    fn common(&self) -> &MapCommon;
    fn as_any(&self) -> &dyn Any;

    /// Copy of the value (per-CPU maps: every CPU's value, each padded to 8 bytes).
    fn lookup_elem(&self, _key: &[u8]) -> MapResult<Vec<u8>> {
        unsupported(self.common(), "lookup")
    }
    /// `lookup_elem` with lookup flags: only `BPF_F_LOCK`, for values with a spin lock.
    fn lookup_elem_flags(&self, key: &[u8], flags: u64) -> MapResult<Vec<u8>> {
        if flags != 0 {
            return Err(MapError::new(
                ErrorCode::Einval,
                format!("lookup flags 0x{flags:x}: only BPF_F_LOCK, for values with a spin lock"),
            ));
        }
        self.lookup_elem(key)
    }
    fn update_elem(&self, _key: &[u8], _value: &[u8], _flags: u64) -> MapResult<()> {
        unsupported(self.common(), "update")
    }
    fn delete_elem(&self, _key: &[u8]) -> MapResult<()> {
        unsupported(self.common(), "delete")
    }
    /// Removes the element under `key` and returns its value (as `lookup_elem` gives it) in one
    /// step under the map's lock, so that of two concurrent removals of one key exactly one gets
    /// it. The kernel has this only for the hash types (`lookup_and_delete` and its batch).
    fn take_elem(&self, _key: &[u8]) -> MapResult<Vec<u8>> {
        unsupported(self.common(), "lookup_and_delete")
    }
    /// The key after `key` in this type's iteration order (`None`: the first key); ENOENT after
    /// the last one.
    fn get_next_key(&self, _key: Option<&[u8]>) -> MapResult<Vec<u8>> {
        unsupported(self.common(), "get_next_key")
    }
    /// The first key after `key` in iteration order whether or not `key` is still in the map (batch
    /// cursors: an element deleted meanwhile must not restart the walk). Types whose `get_next_key`
    /// cannot tell where an absent key would be fall back to it.
    fn key_after(&self, key: &[u8]) -> MapResult<Vec<u8>> {
        self.get_next_key(Some(key))
    }
    /// Queue, stack and bloom filter: add a value.
    fn push_elem(&self, _value: &[u8], _flags: u64) -> MapResult<()> {
        unsupported(self.common(), "push")
    }
    /// Queue and stack: remove and return the next value.
    fn pop_elem(&self) -> MapResult<Vec<u8>> {
        unsupported(self.common(), "pop")
    }
    /// Queue and stack: return the next value without removing it.
    fn peek_elem(&self) -> MapResult<Vec<u8>> {
        unsupported(self.common(), "peek")
    }
    /// Bloom filter: Ok when `value` may be present, ENOENT when it is certainly absent.
    fn contains_elem(&self, _value: &[u8]) -> MapResult<()> {
        unsupported(self.common(), "membership test")
    }
    /// Program-side lookup; `cpu` is the running thread's per-CPU slot (see `percpu`).
    fn prog_lookup(&self, _key: &[u8], _cpu: usize) -> MapResult<ProgLookup> {
        unsupported(self.common(), "lookup from a program")
    }
    /// Program-side update: per-CPU maps take one value and write the running thread's slot
    /// (other slots of a new element are zeroed); other maps update as user space does.
    fn prog_update_elem(&self, key: &[u8], value: &[u8], flags: u64, _cpu: usize) -> MapResult<()> {
        self.update_elem(key, value, flags)
    }
    /// Address and length of the single value of a one-element array (global data), for
    /// `lddw` map-value relocations.
    fn direct_value(&self) -> Option<(u64, u64)> {
        None
    }
    /// Address and length of the storage that holds every value a program can be handed (arrays:
    /// all elements; ring buffers: the data area), which lives as long as the map; `None` when
    /// programs never point into the map's own memory.
    fn value_area(&self) -> Option<(u64, u64)> {
        None
    }
    /// Length of a value as user space reads and writes it.
    fn value_blob_size(&self) -> usize {
        self.common().def.value_size as usize
    }
    /// Number of elements present (arrays: max_entries).
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for dyn Map {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.common();
        write!(
            f,
            "Map(id {} {} {:?})",
            c.id,
            c.def.map_type.name(),
            c.def.name
        )
    }
}

/// The value a program sees for `map`: an opaque handle that helpers look up in the run's map
/// table (the address of the map object, compared but never dereferenced).
pub fn handle(map: &Arc<dyn Map>) -> u64 {
    Arc::as_ptr(map) as *const () as u64
}

/// Creates a map from its definition, validating it as the kernel's `map_alloc_check` does, and
/// refusing (E2BIG) one that may take more than `MAX_MAP_BYTES` once full (`MapDef::memory_bound`).
pub fn create(def: MapDef) -> MapResult<Arc<dyn Map>> {
    def.validate()?;
    let bound = def.memory_bound();
    if bound > def::MAX_MAP_BYTES {
        // The kernel would say ENOMEM, or account it to a memory cgroup; a runtime in someone
        // else's process caps what one map may ever take.
        return Err(MapError::new(
            ErrorCode::E2big,
            format!(
                "{} map {:?} ({} entries) may take {bound} bytes once full, over the limit of {} \
                 bytes per map",
                def.map_type.name(),
                def.name,
                def.max_entries,
                def::MAX_MAP_BYTES
            ),
        ));
    }
    let map: Arc<dyn Map> = match def.map_type {
        MapType::Array | MapType::PercpuArray => Arc::new(array::ArrayMap::new(def)?),
        MapType::Hash | MapType::LruHash | MapType::PercpuHash | MapType::LruPercpuHash => {
            Arc::new(hash::HashMap::new(def)?)
        }
        MapType::ProgArray => Arc::new(prog_array::ProgArray::new(def)?),
        MapType::ArrayOfMaps | MapType::HashOfMaps => Arc::new(of_maps::MapOfMaps::new(def)?),
        MapType::Queue | MapType::Stack => Arc::new(queue::QueueMap::new(def)),
        MapType::LpmTrie => Arc::new(lpm::LpmTrie::new(def)?),
        MapType::BloomFilter => Arc::new(bloom::BloomFilter::new(def)?),
        MapType::Ringbuf => Arc::new(ringbuf::RingBuf::new(def)?),
        MapType::PerfEventArray => Arc::new(perf_event_array::PerfEventArray::new(def)?),
        MapType::StackTrace => Arc::new(stack_trace::StackTraceMap::new(def)?),
        MapType::Devmap | MapType::DevmapHash | MapType::Cpumap | MapType::Xskmap => {
            // The kernel forces BPF_F_RDONLY_PROG on devmaps (dev_map_init_map): programs read
            // the entries their lookups point to, never write them.
            let mut def = def;
            if matches!(def.map_type, MapType::Devmap | MapType::DevmapHash) {
                def.flags |= flags::BPF_F_RDONLY_PROG;
            }
            Arc::new(redirect::RedirectMap::new(def)?)
        }
    };
    registry::register(&map);
    Ok(map)
}
