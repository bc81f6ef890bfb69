//! `NativeMap`: a map of the engine, shared by programs, JavaScript and worker threads. Conversions
//! only. Errors are thrown with their errno name as the JavaScript error's `code` (`errors::Thrown`);
//! the TypeScript layer turns them into `MapError`.

use std::sync::Arc;
use std::time::Duration;

use ebpf_vm::maps::perf_event_array::{PerfEntry, PerfEventArray, PerfNotify, PerfRing};
use ebpf_vm::maps::prog_array::ProgArray;
use ebpf_vm::maps::ringbuf::RingBuf;
use ebpf_vm::maps::view::WritableView;
use ebpf_vm::maps::{self, Map, MapDef, MapType};
use ebpf_vm::pins;
use ebpf_vm::ErrorCode;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::errors::{einval, map_error as js_err, napi_failure, thrown, Code};

/// A map definition, as `bpf(BPF_MAP_CREATE)` takes it. The inner map of a map-in-map is described
/// by the `inner*` fields.
#[napi(object)]
pub struct NativeMapDef {
    /// Kernel numbering (`BPF_MAP_TYPE_*`).
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub flags: Option<u32>,
    pub name: Option<String>,
    pub map_extra: Option<BigInt>,
    pub inner_map_type: Option<u32>,
    pub inner_key_size: Option<u32>,
    pub inner_value_size: Option<u32>,
    pub inner_max_entries: Option<u32>,
    pub inner_flags: Option<u32>,
    /// Hash and array maps: the byte offset of the value's `struct bpf_spin_lock` (from BTF).
    pub spin_lock_offset: Option<u32>,
}

fn map_type(v: u32) -> Result<MapType, Code> {
    MapType::from_kernel(v).map_err(js_err)
}

fn to_def(d: &NativeMapDef) -> Result<MapDef, Code> {
    let mut def = MapDef::new(
        map_type(d.map_type)?,
        d.key_size,
        d.value_size,
        d.max_entries,
    )
    .with_flags(d.flags.unwrap_or(0));
    if let Some(name) = &d.name {
        def = def.with_name(name);
    }
    if let Some(extra) = &d.map_extra {
        let (negative, v, lossless) = extra.get_u64();
        if negative || !lossless {
            return Err(einval("map_extra must be an unsigned 64-bit value"));
        }
        def = def.with_map_extra(v);
    }
    if let Some(t) = d.inner_map_type {
        let inner = MapDef::new(
            map_type(t)?,
            d.inner_key_size.unwrap_or(0),
            d.inner_value_size.unwrap_or(0),
            d.inner_max_entries.unwrap_or(0),
        )
        .with_flags(d.inner_flags.unwrap_or(0));
        def = def.with_inner(inner);
    }
    if let Some(off) = d.spin_lock_offset {
        // Where the kernel's BTF check would refuse the lock (`map_check_btf`).
        if !matches!(def.map_type, MapType::Hash | MapType::Array) {
            return Err(thrown(
                ErrorCode::Enotsupp,
                "spinLockOffset: only hash and array maps hold a bpf_spin_lock",
            ));
        }
        if off % 4 != 0 || off as u64 + 4 > d.value_size as u64 {
            return Err(einval(format!(
                "spinLockOffset {off} must be 4-byte aligned and inside the {}-byte value",
                d.value_size
            )));
        }
        def = def.with_spin_lock(off);
    }
    Ok(def)
}

/// Ring-buffer records, concatenated, with the length of each.
#[napi(object)]
pub struct NativeRecords {
    pub data: Buffer,
    pub lengths: Vec<u32>,
}

/// One batch of a batched lookup. (Named apart from `program::NativeBatch`: the generated
/// `index.d.ts` has one namespace, where two interfaces of one name would merge.)
#[napi(object)]
pub struct NativeMapBatch {
    pub keys: Vec<Buffer>,
    pub values: Vec<Buffer>,
    /// Cursor for the next batch; absent once the map is exhausted.
    pub next: Option<Buffer>,
}

#[napi]
pub struct NativeMap {
    pub(crate) inner: Arc<dyn Map>,
}

impl NativeMap {
    pub(crate) fn new(inner: Arc<dyn Map>) -> Self {
        NativeMap { inner }
    }

    fn ringbuf(&self) -> Result<&RingBuf, Code> {
        self.inner
            .downcast::<RingBuf>()
            .ok_or_else(|| einval(format!("map {} is not a ringbuf", self.inner.id())))
    }
}

/// Waiting for ring-buffer records on the thread pool.
pub struct RingbufWait {
    map: Arc<dyn Map>,
    timeout: Duration,
}

impl Task for RingbufWait {
    type Output = bool;
    type JsValue = bool;

    fn compute(&mut self) -> Result<bool> {
        Ok(self
            .map
            .downcast::<RingBuf>()
            .is_some_and(|ring| ring.wait(self.timeout)))
    }

    fn resolve(&mut self, _env: Env, output: bool) -> Result<bool> {
        Ok(output)
    }
}

/// Records of a perf buffer, oldest first per CPU: samples' data concatenated; per record its
/// CPU, its length (samples) and its lost count (0 for a sample, else a `PERF_RECORD_LOST`).
#[napi(object)]
pub struct NativePerfEvents {
    pub data: Buffer,
    pub cpus: Vec<u32>,
    pub lengths: Vec<u32>,
    pub lost: Vec<f64>,
}

/// Per-CPU rings opened on a perf event array (libbpf's `perf_buffer`): slot i holds the ring of
/// CPU i until `close` (or garbage collection).
#[napi]
pub struct NativePerfBuffer {
    map: Arc<dyn Map>,
    rings: Vec<Arc<PerfRing>>,
    notify: Arc<PerfNotify>,
}

impl NativePerfBuffer {
    /// Empties the slots that still hold this buffer's rings (the rings stay readable).
    fn close_rings(&self) {
        if let Some(array) = self.map.downcast::<PerfEventArray>() {
            for (i, ring) in self.rings.iter().enumerate() {
                array.close(i as u32, ring);
            }
        }
    }
}

impl Drop for NativePerfBuffer {
    fn drop(&mut self) {
        self.close_rings();
    }
}

/// Waiting for perf records on the thread pool.
pub struct PerfWait {
    rings: Vec<Arc<PerfRing>>,
    notify: Arc<PerfNotify>,
    timeout: Duration,
}

impl Task for PerfWait {
    type Output = bool;
    type JsValue = bool;

    fn compute(&mut self) -> Result<bool> {
        let rings = &self.rings;
        Ok(self
            .notify
            .wait(self.timeout, || rings.iter().any(|r| r.has_records())))
    }

    fn resolve(&mut self, _env: Env, output: bool) -> Result<bool> {
        Ok(output)
    }
}

#[napi]
impl NativePerfBuffer {
    /// Every record so far, removed from the rings.
    #[napi(catch_unwind)]
    pub fn drain(&self) -> NativePerfEvents {
        let mut out = NativePerfEvents {
            data: Vec::new().into(),
            cpus: Vec::new(),
            lengths: Vec::new(),
            lost: Vec::new(),
        };
        let mut data = Vec::new();
        for (cpu, ring) in self.rings.iter().enumerate() {
            for entry in ring.drain() {
                out.cpus.push(cpu as u32);
                match entry {
                    PerfEntry::Sample(bytes) => {
                        out.lengths.push(bytes.len() as u32);
                        out.lost.push(0.0);
                        data.extend_from_slice(&bytes);
                    }
                    PerfEntry::Lost(n) => {
                        out.lengths.push(0);
                        out.lost.push(n as f64);
                    }
                }
            }
        }
        out.data = data.into();
        out
    }

    /// Resolves to true once a ring has records, false after `timeout_ms`; waits on the thread
    /// pool.
    #[napi(ts_return_type = "Promise<boolean>")]
    pub fn wait(&self, timeout_ms: u32) -> AsyncTask<PerfWait> {
        AsyncTask::new(PerfWait {
            rings: self.rings.clone(),
            notify: self.notify.clone(),
            timeout: Duration::from_millis(timeout_ms as u64),
        })
    }

    /// Number of rings (CPUs).
    #[napi(getter)]
    pub fn cpu_count(&self) -> u32 {
        self.rings.len() as u32
    }

    /// Samples dropped so far, over every ring (reported or not yet by a lost record).
    #[napi(getter)]
    pub fn lost_total(&self) -> f64 {
        self.rings.iter().map(|r| r.lost_total()).sum::<u64>() as f64
    }

    /// Empties the map's slots; records not read yet are dropped. Twice is harmless.
    #[napi]
    pub fn close(&self) {
        self.close_rings();
    }
}

#[napi]
impl NativeMap {
    /// Perf event array: opens a ring of `pages` pages (a power of two) for each CPU, up to the
    /// map's `max_entries`, in slots 0.. (what libbpf's `perf_buffer__new` does).
    #[napi(catch_unwind)]
    pub fn perf_open(&self, pages: u32) -> Result<NativePerfBuffer, Code> {
        let array = self
            .inner
            .downcast::<PerfEventArray>()
            .ok_or_else(|| einval(format!("map {} is not a perf_event_array", self.inner.id())))?;
        let cpus = (maps::percpu::possible_cpus() as u32).min(self.inner.common().def.max_entries);
        let notify = Arc::new(PerfNotify::default());
        let mut buffer = NativePerfBuffer {
            map: self.inner.clone(),
            rings: Vec::new(),
            notify: notify.clone(),
        };
        for cpu in 0..cpus {
            let ring = Arc::new(PerfRing::new(cpu, pages, notify.clone()).map_err(js_err)?);
            array.open(cpu, ring.clone()).map_err(js_err)?;
            buffer.rings.push(ring);
        }
        Ok(buffer)
    }

    /// Creates a map (`BPF_MAP_CREATE`).
    #[napi(factory, catch_unwind)]
    pub fn create(def: NativeMapDef) -> Result<NativeMap, Code> {
        let map = maps::create(to_def(&def)?).map_err(js_err)?;
        Ok(NativeMap::new(map))
    }

    /// Bytes the map `def` describes may take once full (`MapDef::memory_bound`), without
    /// creating it; the errors of a definition `create` would refuse.
    #[napi(catch_unwind)]
    pub fn memory_bound(def: NativeMapDef) -> Result<f64, Code> {
        let def = to_def(&def)?;
        def.validate().map_err(js_err)?;
        Ok(def.memory_bound() as f64)
    }

    /// The live map with this id (any thread of the process), or null.
    #[napi(factory, catch_unwind)]
    pub fn from_id(id: u32) -> Result<NativeMap, Code> {
        maps::registry::by_id(id)
            .map(NativeMap::new)
            .ok_or_else(|| thrown(ErrorCode::Enoent, format!("no map with id {id}")))
    }

    /// The map pinned under `path` (like an object pinned in bpffs).
    #[napi(factory, catch_unwind)]
    pub fn from_pinned(path: String) -> Result<NativeMap, Code> {
        pins::get_map(&path).map(NativeMap::new).map_err(js_err)
    }

    #[napi(catch_unwind)]
    pub fn pin(&self, path: String) -> Result<(), Code> {
        pins::pin_map(&path, &self.inner).map_err(js_err)
    }

    /// EINVAL unless this map has the shape `def` describes (libbpf's `map_is_reuse_compat`);
    /// `source` says in the message where this map came from.
    #[napi(catch_unwind)]
    pub fn check_reuse(&self, def: NativeMapDef, source: String) -> Result<(), Code> {
        maps::reuse::check_reuse(&to_def(&def)?, &self.inner.common().def, &source).map_err(js_err)
    }

    #[napi(getter)]
    pub fn id(&self) -> u32 {
        self.inner.id()
    }

    #[napi(getter)]
    pub fn map_type(&self) -> u32 {
        self.inner.map_type() as u32
    }

    #[napi(getter)]
    pub fn key_size(&self) -> u32 {
        self.inner.common().def.key_size
    }

    #[napi(getter)]
    pub fn value_size(&self) -> u32 {
        self.inner.common().def.value_size
    }

    /// Size of a value as user space reads and writes it (per-CPU maps: all CPUs' values).
    #[napi(getter)]
    pub fn value_blob_size(&self) -> u32 {
        self.inner.value_blob_size() as u32
    }

    #[napi(getter)]
    pub fn max_entries(&self) -> u32 {
        self.inner.common().def.max_entries
    }

    #[napi(getter)]
    pub fn flags(&self) -> u32 {
        self.inner.common().def.flags
    }

    #[napi(getter)]
    pub fn name(&self) -> String {
        self.inner.common().def.name.clone()
    }

    /// Number of elements present.
    #[napi(getter)]
    pub fn size(&self) -> u32 {
        self.inner.len() as u32
    }

    /// Copies the value of `key` into `out` (which must be `valueBlobSize` bytes); false when there
    /// is none. Writing into the caller's buffer avoids allocating a JavaScript object per lookup.
    #[napi(catch_unwind)]
    pub fn lookup_into(&self, key: &[u8], mut out: Uint8ArraySlice<'_>) -> Result<bool, Code> {
        // SAFETY: a borrowed view (no reference per call) of a typed array alive for this call;
        // no JavaScript runs meanwhile.
        let out = unsafe { out.as_mut() };
        match self.inner.lookup(key) {
            Ok(v) if v.len() == out.len() => {
                out.copy_from_slice(&v);
                Ok(true)
            }
            Ok(v) => Err(einval(format!(
                "output buffer of {} bytes for a value of {}",
                out.len(),
                v.len()
            ))),
            Err(e) if e.code == ErrorCode::Enoent => Ok(false),
            Err(e) => Err(js_err(e)),
        }
    }

    /// The value of `key`, or null when there is none (ENOENT).
    #[napi(catch_unwind)]
    pub fn lookup(&self, key: &[u8]) -> Result<Option<Buffer>, Code> {
        match self.inner.lookup(key) {
            Ok(v) => Ok(Some(v.into())),
            Err(e) if e.code == ErrorCode::Enoent => Ok(None),
            Err(e) => Err(js_err(e)),
        }
    }

    #[napi(catch_unwind)]
    pub fn update(&self, key: &[u8], value: &[u8], flags: Option<u32>) -> Result<(), Code> {
        self.inner
            .update(key, value, flags.unwrap_or(0) as u64)
            .map_err(js_err)
    }

    /// Deletes `key`; false when it was not there.
    #[napi(catch_unwind)]
    pub fn delete(&self, key: &[u8]) -> Result<bool, Code> {
        match self.inner.delete(key) {
            Ok(()) => Ok(true),
            Err(e) if e.code == ErrorCode::Enoent => Ok(false),
            Err(e) => Err(js_err(e)),
        }
    }

    /// The key after `key` (null: the first key); null after the last one.
    #[napi(catch_unwind)]
    pub fn next_key(&self, key: Option<&[u8]>) -> Result<Option<Buffer>, Code> {
        match self.inner.next_key(key) {
            Ok(k) => Ok(Some(k.into())),
            Err(e) if e.code == ErrorCode::Enoent => Ok(None),
            Err(e) => Err(js_err(e)),
        }
    }

    /// Lookup and delete in one step (queue/stack pop when `key` is null).
    #[napi(catch_unwind)]
    pub fn lookup_and_delete(&self, key: Option<&[u8]>) -> Result<Option<Buffer>, Code> {
        let r = match key {
            Some(k) => self.inner.lookup_and_delete(k),
            None => self.inner.pop(),
        };
        match r {
            Ok(v) => Ok(Some(v.into())),
            Err(e) if e.code == ErrorCode::Enoent => Ok(None),
            Err(e) => Err(js_err(e)),
        }
    }

    /// Queue, stack, bloom filter: add a value.
    #[napi(catch_unwind)]
    pub fn push(&self, value: &[u8], flags: Option<u32>) -> Result<(), Code> {
        self.inner
            .push(value, flags.unwrap_or(0) as u64)
            .map_err(js_err)
    }

    /// Queue and stack: the next value without removing it, or null.
    #[napi(catch_unwind)]
    pub fn peek(&self) -> Result<Option<Buffer>, Code> {
        match self.inner.peek() {
            Ok(v) => Ok(Some(v.into())),
            Err(e) if e.code == ErrorCode::Enoent => Ok(None),
            Err(e) => Err(js_err(e)),
        }
    }

    /// Bloom filter: whether `value` may be present.
    #[napi(catch_unwind)]
    pub fn contains(&self, value: &[u8]) -> Result<bool, Code> {
        match self.inner.contains(value) {
            Ok(()) => Ok(true),
            Err(e) if e.code == ErrorCode::Enoent => Ok(false),
            Err(e) => Err(js_err(e)),
        }
    }

    #[napi(catch_unwind)]
    pub fn lookup_batch(
        &self,
        cursor: Option<&[u8]>,
        max: u32,
        and_delete: Option<bool>,
    ) -> Result<NativeMapBatch, Code> {
        let b = if and_delete.unwrap_or(false) {
            self.inner.lookup_and_delete_batch(cursor, max as usize)
        } else {
            self.inner.lookup_batch(cursor, max as usize)
        }
        .map_err(js_err)?;
        Ok(NativeMapBatch {
            keys: b.keys.into_iter().map(Buffer::from).collect(),
            values: b.values.into_iter().map(Buffer::from).collect(),
            next: b.next.map(Buffer::from),
        })
    }

    /// Updates pairs in order; on failure the error's message says how many succeeded.
    #[napi(catch_unwind)]
    pub fn update_batch(
        &self,
        keys: Vec<Buffer>,
        values: Vec<Buffer>,
        flags: Option<u32>,
    ) -> Result<u32, Code> {
        let k: Vec<&[u8]> = keys.iter().map(|b| b.as_ref()).collect();
        let v: Vec<&[u8]> = values.iter().map(|b| b.as_ref()).collect();
        let (n, r) = self.inner.update_batch(&k, &v, flags.unwrap_or(0) as u64);
        r.map(|()| n as u32)
            .map_err(|e| thrown(e.code, format!("{} (after {n} updates)", e.message)))
    }

    #[napi(catch_unwind)]
    pub fn delete_batch(&self, keys: Vec<Buffer>) -> Result<u32, Code> {
        let k: Vec<&[u8]> = keys.iter().map(|b| b.as_ref()).collect();
        let (n, r) = self.inner.delete_batch(&k);
        r.map(|()| n as u32)
            .map_err(|e| thrown(e.code, format!("{} (after {n} deletes)", e.message)))
    }

    /// Prog array: puts `program` at `index` (the tail-call target `bpf_tail_call(ctx, map, index)`).
    #[napi(catch_unwind)]
    pub fn set_program(&self, index: u32, program: &crate::NativeProgram) -> Result<(), Code> {
        let array = self
            .inner
            .downcast::<ProgArray>()
            .ok_or_else(|| einval(format!("map {} is not a prog_array", self.inner.id())))?;
        array
            .set(index, program.id, program.inner.clone())
            .map_err(js_err)
    }

    /// Ring buffer: every committed record, oldest first, removed from the ring (discarded records
    /// are skipped), packed into one buffer (one JavaScript object however many records).
    #[napi(catch_unwind)]
    pub fn ringbuf_drain(&self) -> Result<NativeRecords, Code> {
        let ring = self.ringbuf()?;
        let mut data = Vec::new();
        let mut lengths = Vec::new();
        ring.consume(|rec| {
            data.extend_from_slice(rec);
            lengths.push(rec.len() as u32);
        });
        Ok(NativeRecords {
            data: data.into(),
            lengths,
        })
    }

    /// Ring buffer: resolves to true once records are available, false after `timeout_ms`. Waits on
    /// the thread pool, not the JavaScript thread.
    #[napi(catch_unwind, ts_return_type = "Promise<boolean>")]
    pub fn ringbuf_wait(&self, timeout_ms: u32) -> Result<AsyncTask<RingbufWait>, Code> {
        self.ringbuf()?;
        Ok(AsyncTask::new(RingbufWait {
            map: self.inner.clone(),
            timeout: Duration::from_millis(timeout_ms as u64),
        }))
    }

    /// Array maps: a writable view of the values (`NativeArrayView`), like a writable mmap of a
    /// `BPF_F_MMAPABLE` array. While it is held, `freeze` is EBUSY. Refused for frozen maps (EPERM,
    /// as the kernel refuses a writable mmap of one) and for other types, per-CPU arrays included
    /// (EINVAL).
    #[napi(catch_unwind)]
    pub fn array_view(&self) -> Result<NativeArrayView, Code> {
        let view = WritableView::open(&self.inner).map_err(js_err)?;
        Ok(NativeArrayView {
            view: Arc::new(view),
            buffer_made: false,
        })
    }

    /// Bytes between consecutive values in `arrayView` (the value size rounded up to 8).
    #[napi(getter)]
    pub fn value_stride(&self) -> u32 {
        self.inner.common().def.value_stride() as u32
    }

    /// No more writes from user space (`BPF_MAP_FREEZE`); EBUSY while a writable view is held.
    #[napi(catch_unwind)]
    pub fn freeze(&self) -> Result<(), Code> {
        self.inner.freeze().map_err(js_err)
    }

    #[napi(getter)]
    pub fn frozen(&self) -> bool {
        self.inner.is_frozen()
    }
}

/// One writable view of an array map's values: the ArrayBuffer over them (`buffer`, made once) and
/// its lease, which counts as a writer of the map until `release` or until both this object and
/// the buffer are garbage collected.
#[napi]
pub struct NativeArrayView {
    view: Arc<WritableView>,
    buffer_made: bool,
}

#[napi]
impl NativeArrayView {
    /// The values as one ArrayBuffer over the map's own memory (no copy): value `i` is at byte
    /// `i * valueStride`. Writes through it are seen by programs at once and vice versa.
    #[napi(catch_unwind, ts_return_type = "ArrayBuffer")]
    pub fn buffer<'env>(&mut self, env: &'env Env) -> Result<ArrayBuffer<'env>, Code> {
        if self.buffer_made {
            return Err(einval("this view's buffer was made already"));
        }
        let (ptr, len) = self.view.memory();
        let keep = self.view.clone();
        // SAFETY: the storage never moves and lives as long as the map, which the view keeps; the
        // finalize hint keeps the view until the ArrayBuffer is collected.
        let made = unsafe { ArrayBuffer::from_external(env, ptr, len, keep, |_, keep| drop(keep)) };
        match made {
            Ok(buffer) => {
                self.buffer_made = true;
                Ok(buffer)
            }
            Err(e) => {
                self.view.release();
                Err(napi_failure(e))
            }
        }
    }

    /// Detaches `buffer` (this view's, so that nothing writes through it any more) and stops
    /// counting the view as a writer. Releasing twice is harmless.
    #[napi(catch_unwind)]
    pub fn release(&self, buffer: ArrayBuffer) -> Result<(), Code> {
        if !buffer.is_detached().map_err(napi_failure)? {
            if buffer.as_ptr() != self.view.memory().0.cast_const() {
                return Err(einval("release takes this view's own buffer"));
            }
            buffer.detach().map_err(napi_failure)?;
        }
        self.view.release();
        Ok(())
    }
}

/// Number of per-CPU slots in this process (`maps::percpu::possible_cpus`): the values of per-CPU
/// maps, and the rings a perf buffer opens (a perf event array's default `max_entries`).
#[napi]
pub fn possible_cpus() -> u32 {
    maps::percpu::possible_cpus() as u32
}
