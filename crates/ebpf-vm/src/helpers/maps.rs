//! Map and ring buffer helpers, with the kernel's numbers and return conventions: lookups return a
//! value address or 0 (NULL); updates, deletes and queue operations return 0 or a negative errno
//! (e.g. -ENOENT = -2 as u64); ring buffer reserve returns an address or 0.
//!
//! Every argument is distrusted: a map argument must be a handle from the run's map table
//! (`RunMaps::resolve`), key and value pointers are read or written only through the run's checked
//! regions, and ring buffer submit/discard accept only reservations this run made and has not
//! released. What the kernel's verifier would reject at load time (an unknown map, an operation the
//! map type does not offer to programs, a write to a `BPF_F_RDONLY_PROG` map, a bad pointer) stops
//! the run with a helper error instead.
//!
//! A value a lookup returns is added to the run's regions (read-only for `BPF_F_RDONLY_PROG` maps),
//! so checked loads and stores through it are allowed; ring buffer reservations likewise, until they
//! are submitted or discarded (at most `MAX_RESERVATIONS` at once). Known gap: values of `BPF_F_WRONLY_PROG` maps are readable, since regions cannot
//! express write-only memory (the kernel's verifier rejects such reads).
//!
//! `bpf_for_each_map_elem` (164) calls back into the program through
//! `HelperContext::call_function` (see `callbacks.rs`).

use crate::maps::added_regions::Added;
use std::sync::Arc;

use crate::error::ErrorCode;
use crate::maps::def::flags::BPF_F_RDONLY_PROG;
use crate::maps::percpu::possible_cpus;
use crate::maps::ringbuf::{RingBuf, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP};
use crate::maps::{errno, Map, MapError, MapType, ProgLookup, RunMaps, Words};
use crate::memory::Region;

use super::{HelperContext, HelperError, HelperTable};
use crate::vm::errno::EAGAIN;

pub const BPF_MAP_LOOKUP_ELEM: u32 = 1;
pub const BPF_MAP_UPDATE_ELEM: u32 = 2;
pub const BPF_MAP_DELETE_ELEM: u32 = 3;
pub const BPF_MAP_PUSH_ELEM: u32 = 87;
pub const BPF_MAP_POP_ELEM: u32 = 88;
pub const BPF_MAP_PEEK_ELEM: u32 = 89;
pub const BPF_RINGBUF_OUTPUT: u32 = 130;
pub const BPF_RINGBUF_RESERVE: u32 = 131;
pub const BPF_RINGBUF_SUBMIT: u32 = 132;
pub const BPF_RINGBUF_DISCARD: u32 = 133;
pub const BPF_RINGBUF_QUERY: u32 = 134;
pub const BPF_FOR_EACH_MAP_ELEM: u32 = 164;
pub const BPF_MAP_LOOKUP_PERCPU_ELEM: u32 = 195;
/// Also in `standard` (as a constant 0); see `register`.
pub const BPF_GET_SMP_PROCESSOR_ID: u32 = 8;

/// Ring buffer records one run may hold reserved at once; `bpf_ringbuf_reserve` returns NULL
/// beyond, as when the ring is full. (The kernel's verifier makes a program release every
/// reservation on every path, which in practice keeps this number small.)
pub const MAX_RESERVATIONS: usize = 1024;

/// A negative errno as r0.
fn neg(e: i64) -> u64 {
    crate::vm::errno::negated(e)
}

fn status(r: Result<(), MapError>) -> u64 {
    match r {
        Ok(()) => 0,
        Err(e) => neg(e.errno()),
    }
}

/// The map a handle names, borrowed from the run's table (no reference-count traffic: every
/// thread running the program would otherwise contend on the map's count).
fn map_arg(maps: &RunMaps, h: u64) -> Result<&Arc<dyn Map>, HelperError> {
    maps.resolve_ref(h)
        .ok_or_else(|| HelperError("r1 is not a map of this program".into()))
}

/// The map in r1, which must be of one of `types` for this helper.
fn typed_map<'m>(
    maps: &'m RunMaps,
    h: u64,
    helper: &str,
    types: &[MapType],
) -> Result<&'m Arc<dyn Map>, HelperError> {
    let map = map_arg(maps, h)?;
    if !types.contains(&map.map_type()) {
        return Err(HelperError(format!(
            "{helper} cannot be used on {} maps",
            map.map_type().name()
        )));
    }
    Ok(map)
}

fn bad_pointer(cx: &HelperContext<'_>, what: &str, addr: u64, len: u64) -> HelperError {
    HelperError(format!(
        "{what} pointer {} ({len} bytes) is outside the program's memory",
        cx.describe(addr)
    ))
}

/// Copies `len` bytes of run memory at `addr` (a key or value argument).
fn read_arg(
    cx: &HelperContext<'_>,
    what: &str,
    addr: u64,
    len: u64,
) -> Result<Vec<u8>, HelperError> {
    cx.regions
        .slice(addr, len)
        .map(<[u8]>::to_vec)
        .map_err(|_| bad_pointer(cx, what, addr, len))
}

fn write_arg(
    cx: &HelperContext<'_>,
    what: &str,
    addr: u64,
    bytes: &[u8],
) -> Result<(), HelperError> {
    let out = cx
        .regions
        .slice_mut(addr, bytes.len() as u64)
        .map_err(|_| {
            HelperError(format!(
                "{what} pointer {} ({} bytes) is not writable program memory",
                cx.describe(addr),
                bytes.len()
            ))
        })?;
    out.copy_from_slice(bytes);
    Ok(())
}

fn check_writable_out(cx: &HelperContext<'_>, addr: u64, len: u64) -> Result<(), HelperError> {
    cx.regions.check(addr, len, true).map_err(|_| {
        HelperError(format!(
            "value pointer {} ({len} bytes) is not writable program memory",
            cx.describe(addr)
        ))
    })
}

fn no_prog_writes(map: &Arc<dyn Map>, helper: &str) -> Result<(), HelperError> {
    if map.common().def.flags & BPF_F_RDONLY_PROG != 0 {
        return Err(HelperError(format!(
            "{helper}: the map is read-only for programs (BPF_F_RDONLY_PROG)"
        )));
    }
    Ok(())
}

fn key_size(map: &Arc<dyn Map>) -> u64 {
    map.common().def.key_size as u64
}

fn value_size(map: &Arc<dyn Map>) -> u64 {
    map.common().def.value_size as u64
}

/// This module's `bpf_map_lookup_elem`, one entry shared by every table `register` fills, so
/// that `lookup_proved` can tell it from an embedder's helper registered under the same id.
static LOOKUP: std::sync::LazyLock<Arc<super::Helper>> = std::sync::LazyLock::new(|| {
    Arc::new(super::Helper {
        id: BPF_MAP_LOOKUP_ELEM,
        name: "bpf_map_lookup_elem".into(),
        prototype: super::kernel_prototypes::kernel_prototype(BPF_MAP_LOOKUP_ELEM)
            .unwrap_or_default(),
        func: Arc::new(lookup),
    })
});

/// The most looked-up types first: `typed_map` tests them in order.
const KEYED: [MapType; 11] = [
    MapType::Array,
    MapType::Hash,
    MapType::LpmTrie,
    MapType::PercpuArray,
    MapType::PercpuHash,
    MapType::LruHash,
    MapType::LruPercpuHash,
    MapType::Devmap,
    MapType::DevmapHash,
    MapType::ArrayOfMaps,
    MapType::HashOfMaps,
];
const WRITABLE: [MapType; 7] = [
    MapType::Array,
    MapType::PercpuArray,
    MapType::Hash,
    MapType::PercpuHash,
    MapType::LruHash,
    MapType::LruPercpuHash,
    MapType::LpmTrie,
];
const QUEUES: [MapType; 2] = [MapType::Queue, MapType::Stack];
const PUSHABLE: [MapType; 3] = [MapType::Queue, MapType::Stack, MapType::BloomFilter];

fn lookup(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let cpu = cx.maps.cpu();
    // The hottest map helper: the map is borrowed and the key read in place.
    let (found, area) = {
        let map = typed_map(cx.maps, a[0], "bpf_map_lookup_elem", &KEYED)?;
        let len = key_size(map);
        let key = cx
            .regions
            .slice(a[1], len)
            .map_err(|_| bad_pointer(cx, "key", a[1], len))?;
        // A map whose values stand as a region of the run needs none made.
        let standing = cx.maps.has_standing_area(a[0]);
        (
            map.prog_lookup(key, cpu),
            (!standing).then(|| value_region(map)).flatten(),
        )
    };
    let found = match found {
        Ok(f) => f,
        // E.g. an LPM key whose prefix length is out of range: nothing matches.
        Err(e) if e.code != ErrorCode::Enotsupp => return Ok(0),
        Err(e) => return Err(HelperError(e.message)),
    };
    Ok(admit(cx, found, area, a[0]))
}

/// The map types whose program lookup changes nothing (no LRU order, no inner map admitted):
/// `lookup_proved` serves these; the general path may then redo a lookup it gives up on.
const PURE_LOOKUP: [MapType; 5] = [
    MapType::Array,
    MapType::Hash,
    MapType::LpmTrie,
    MapType::PercpuArray,
    MapType::PercpuHash,
];

/// `bpf_map_lookup_elem` at a call site the verifier proved (mode verified): r1 a map of the
/// program, r2 readable for its key size on every path. Skips what `lookup` checks for any
/// caller (the helper table, the map's type, the key's region) and returns r0 as `lookup` would,
/// or `None` when the general path must run instead: helper 1 is not this module's lookup, a
/// lock is held, the map is not of a `PURE_LOOKUP` type, or the lookup failed.
pub(crate) fn lookup_proved(
    helpers: &HelperTable,
    maps: &mut RunMaps,
    regions: &mut crate::memory::Regions,
    state: &mut crate::run_state::RunState,
    (h, key): (u64, u64),
) -> Option<u64> {
    if !helpers
        .get(BPF_MAP_LOOKUP_ELEM)
        .is_some_and(|f| std::ptr::eq(f, &**LOOKUP))
        || state.held_lock.is_some()
    {
        return None;
    }
    let cpu = maps.cpu();
    let (found, area) = {
        let map = maps.resolve_ref(h)?;
        // One virtual call for both.
        let def = &map.common().def;
        if !PURE_LOOKUP.contains(&def.map_type) {
            return None;
        }
        // SAFETY: the verifier proved r2 readable for `key_size` bytes of the run's memory.
        let key = unsafe { std::slice::from_raw_parts(key as *const u8, def.key_size as usize) };
        let standing = maps.has_standing_area(h);
        (
            map.prog_lookup(key, cpu).ok()?,
            (!standing).then(|| value_region(map)).flatten(),
        )
    };
    Some(admit_in(maps, regions, state, found, area, h))
}

/// A map of the program whose lookups, at a call site the verifier proved, compiled code may do
/// without the lookup stub when r1 = `handle` and the run's value areas stand as regions from its
/// start (a batch, `program/xdp_batch.rs`), so that the lookup need add none; anything else takes
/// the stub.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InlineLookup {
    pub handle: u64,
    pub how: LookupHow,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LookupHow {
    /// A plain array (one value per index), as the kernel's JIT inlines `array_map_gen_lookup`:
    /// r0 = `base + index * stride` for an index (the u32 at r2) below `max_entries`, 0 (NULL)
    /// past it. The values never move (`maps::array`), so their address can be part of the code.
    Array {
        base: u64,
        max_entries: u32,
        stride: u32,
    },
    /// A map whose lookup changes nothing (hash, LPM trie), called directly as the kernel's JIT
    /// calls a map's `map_lookup_elem`: `func(map, key, key_size)` (SysV) gives r0, or all ones
    /// when the stub must run instead (the lookup failed or panicked: the stub does it again).
    /// `map` stays valid as long as the program (its map list holds it).
    Call { func: u64, map: u64, key_size: u32 },
}

/// The maps of `maps` whose lookups compiled code may do without the lookup stub at a proved call
/// site (`InlineLookup`), when helper 1 is this module's lookup (an embedder's own lookup must
/// see every call): plain arrays inline (`ArrayMap::prog_lookup`: the value at
/// `index * value_stride` in one block that never moves, NULL for an index past `max_entries`),
/// hash maps through `lookup_direct`, LPM tries through `lookup_direct_lpm`. `maps` must outlive
/// the code (the program's list: `LookupHow::Call` names its elements).
pub(crate) fn inline_lookups(helpers: &HelperTable, maps: &[Arc<dyn Map>]) -> Vec<InlineLookup> {
    let ours = helpers
        .get(BPF_MAP_LOOKUP_ELEM)
        .is_some_and(|f| std::ptr::eq(f, &**LOOKUP));
    if !ours {
        return Vec::new();
    }
    (maps.iter())
        .filter_map(|m| {
            let def = &m.common().def;
            let how = match def.map_type {
                MapType::Array if def.key_size == 4 => LookupHow::Array {
                    base: m.value_area()?.0,
                    max_entries: def.max_entries,
                    stride: i32::try_from(def.value_stride()).ok()? as u32,
                },
                MapType::LpmTrie => LookupHow::Call {
                    func: lookup_direct_lpm as *const () as u64,
                    map: std::ptr::from_ref(m.downcast::<crate::maps::lpm::LpmTrie>()?) as u64,
                    key_size: def.key_size,
                },
                MapType::Hash => LookupHow::Call {
                    func: lookup_direct as *const () as u64,
                    map: std::ptr::from_ref(m) as u64,
                    key_size: def.key_size,
                },
                _ => return None,
            };
            Some(InlineLookup {
                handle: crate::maps::handle(m),
                how,
            })
        })
        .collect()
}

/// The lookup of `LookupHow::Call`: `map`'s program lookup of the `key_size` bytes at `key`, as
/// r0 (the value's address or 0), or all ones when it failed or panicked (the caller then takes
/// the lookup stub, which does it again and reports what went wrong). Only for maps whose
/// lookup changes nothing (hash maps, LPM tries: no per-CPU slot, no LRU order).
///
/// # Safety
/// `map` points at an `Arc<dyn Map>` alive for the call; `key` is readable for `key_size` bytes
/// (the verifier's proof at the call site).
pub(crate) unsafe extern "C" fn lookup_direct(
    map: *const Arc<dyn Map>,
    key: *const u8,
    key_size: u64,
) -> u64 {
    // A panic must not unwind into compiled code.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: as the function's contract says.
        let (map, key) = unsafe { (&*map, std::slice::from_raw_parts(key, key_size as usize)) };
        match map.prog_lookup(key, 0) {
            Ok(ProgLookup::Null) => 0,
            Ok(ProgLookup::Value(addr)) => addr,
            _ => u64::MAX,
        }
    }))
    .unwrap_or(u64::MAX)
}

/// `lookup_direct` for an LPM trie, its lookup inline (no virtual call): r0 for the key.
///
/// # Safety
/// `map` points at an `LpmTrie` alive for the call (in an `Arc` of the program's map list);
/// `key` is readable for `key_size` bytes (the verifier's proof at the call site).
pub(crate) unsafe extern "C" fn lookup_direct_lpm(
    map: *const crate::maps::lpm::LpmTrie,
    key: *const u8,
    key_size: u64,
) -> u64 {
    // A panic must not unwind into compiled code.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: as the function's contract says.
        let (map, key) = unsafe { (&*map, std::slice::from_raw_parts(key, key_size as usize)) };
        map.value_addr(key)
    }))
    .unwrap_or(u64::MAX)
}

/// `bpf_map_lookup_percpu_elem(map, key, cpu)`: the value of another CPU slot of a per-CPU map,
/// NULL when the key is absent or `cpu` is not below `possible_cpus()`.
fn lookup_percpu(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    const PERCPU: [MapType; 3] = [
        MapType::PercpuArray,
        MapType::PercpuHash,
        MapType::LruPercpuHash,
    ];
    let cpu = a[2] as u32 as usize;
    let (found, area) = {
        let map = typed_map(cx.maps, a[0], "bpf_map_lookup_percpu_elem", &PERCPU)?;
        let len = key_size(map);
        let key = cx
            .regions
            .slice(a[1], len)
            .map_err(|_| bad_pointer(cx, "key", a[1], len))?;
        if cpu >= possible_cpus() {
            return Ok(0);
        }
        (map.prog_lookup(key, cpu), value_region(map))
    };
    match found {
        Ok(f) => Ok(admit(cx, f, area, a[0])),
        Err(e) => Err(HelperError(e.message)),
    }
}

/// The region a value of `map` gives the run: the map's whole value area (memory the map owns for
/// its life), each access within one value, read-only for `BPF_F_RDONLY_PROG` maps.
pub(crate) fn value_region(map: &Arc<dyn Map>) -> Option<Region> {
    let def = &map.common().def;
    let writable = def.flags & BPF_F_RDONLY_PROG == 0;
    map.value_area().map(|(start, len)| {
        Region::values(
            start,
            len,
            def.value_stride() as u64,
            def.value_size as u64,
            writable,
        )
    })
}

/// What a program receives for a lookup result in map `map` (a handle): 0, an inner map's handle,
/// or a value's address (its map's value area made accessible, once per run).
fn admit(cx: &mut HelperContext<'_>, found: ProgLookup, area: Option<Region>, map: u64) -> u64 {
    admit_in(cx.maps, cx.regions, cx.state, found, area, map)
}

fn admit_in(
    maps: &mut RunMaps,
    regions: &mut crate::memory::Regions,
    state: &mut crate::run_state::RunState,
    found: ProgLookup,
    area: Option<Region>,
    map: u64,
) -> u64 {
    match found {
        ProgLookup::Null => 0,
        ProgLookup::Map(inner) => maps.admit(inner),
        ProgLookup::Value(addr) => {
            if let Some(area) = area {
                if maps.new_area(area.start) && regions.push(area) {
                    state
                        .added
                        .add(area.start, area.len, Added::MapValue { map });
                }
            }
            addr
        }
    }
}

const ITERABLE: [MapType; 6] = [
    MapType::Hash,
    MapType::PercpuHash,
    MapType::LruHash,
    MapType::LruPercpuHash,
    MapType::Array,
    MapType::PercpuArray,
];

/// `bpf_for_each_map_elem(map, callback_fn, callback_ctx, flags)`: calls
/// `callback_fn(map, &key, &value, callback_ctx)` for each element, stopping after a callback
/// that returns non-zero; returns the number of elements visited (that one included), or -EINVAL
/// for flags other than 0. Per-CPU maps give the running thread's slot.
///
/// Arrays are walked by index (0 to max_entries - 1). Hash maps are walked through a cursor in
/// their iteration order (key order, see `maps::hash`): each step looks up the first key after the
/// last one visited, so an element deleted before its turn (by the callback, say) is skipped and
/// one inserted after the cursor is visited when the walk gets to it; no copy of the key set is
/// made. A walk takes at most max_entries steps, so a callback that keeps inserting ahead of the
/// cursor cannot make it run forever. The key is passed in a read-only buffer of the run,
/// rewritten for each element; the value as `map_lookup_elem` would return it.
///
/// Budget: every step costs one instruction of the run's budget (each callback call is charged
/// 1 + its instructions by `call_function`; a key found gone when its turn comes is charged 1),
/// so a walk ends at the run's budget however large the map.
fn for_each_map_elem(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (h, callback, ctx, flags) = (a[0], a[1], a[2], a[3]);
    let map = typed_map(cx.maps, h, "bpf_for_each_map_elem", &ITERABLE)?.clone();
    if flags != 0 {
        return Ok(neg(errno(ErrorCode::Einval)));
    }
    let def = &map.common().def;
    let is_array = matches!(def.map_type, MapType::Array | MapType::PercpuArray);
    let area = value_region(&map);
    // The key buffer is memory of this call only: its region goes when the call returns, so a
    // loop of calls does not grow the run's region table (a key pointer kept past the call
    // then traps).
    let key_buf = Words::zeroed(def.key_size as usize);
    let key_region = Region::new(key_buf.addr(0), def.key_size as u64, false);
    cx.regions.push(key_region);
    cx.state
        .added
        .add(key_region.start, key_region.len, Added::MapKey { map: h });
    let cpu = cx.maps.cpu();
    let mut visited = 0;
    let mut walk = || {
        let mut cursor: Option<Vec<u8>> = None;
        for index in 0..def.max_entries {
            let index_key = index.to_ne_bytes();
            let key: &[u8] = if is_array {
                &index_key
            } else {
                let next = match &cursor {
                    None => map.get_next_key(None),
                    Some(k) => map.key_after(k),
                };
                let Ok(k) = next else { break };
                cursor.insert(k)
            };
            let found = map
                .prog_lookup(key, cpu)
                .map_err(|e| HelperError(e.message))?;
            if matches!(found, ProgLookup::Null) {
                // Deleted since the cursor found it.
                cx.charge(1)?;
                continue;
            }
            key_buf.write(0, key);
            let value = admit(cx, found, area, h);
            visited += 1;
            if cx.call_function(callback, [h, key_region.start, value, ctx, 0])? != 0 {
                break;
            }
        }
        Ok(visited)
    };
    let result = walk();
    cx.regions.remove(key_region);
    cx.state.added.remove(key_region.start);
    result
}

fn update(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let map = typed_map(cx.maps, a[0], "bpf_map_update_elem", &WRITABLE)?.clone();
    no_prog_writes(&map, "bpf_map_update_elem")?;
    let key = read_arg(cx, "key", a[1], key_size(&map))?;
    let value = read_arg(cx, "value", a[2], value_size(&map))?;
    cx.refuse_leaked_words("bpf_map_update_elem: the key's", &key)?;
    cx.refuse_leaked_words("bpf_map_update_elem: the value's", &value)?;
    let cpu = cx.maps.cpu();
    Ok(status(map.prog_update_elem(&key, &value, a[3], cpu)))
}

fn delete(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let map = typed_map(cx.maps, a[0], "bpf_map_delete_elem", &WRITABLE)?.clone();
    no_prog_writes(&map, "bpf_map_delete_elem")?;
    let key = read_arg(cx, "key", a[1], key_size(&map))?;
    Ok(status(map.delete_elem(&key)))
}

fn push(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let map = typed_map(cx.maps, a[0], "bpf_map_push_elem", &PUSHABLE)?.clone();
    no_prog_writes(&map, "bpf_map_push_elem")?;
    let value = read_arg(cx, "value", a[1], value_size(&map))?;
    cx.refuse_leaked_words("bpf_map_push_elem: the value's", &value)?;
    Ok(status(map.push_elem(&value, a[2])))
}

fn pop(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let map = typed_map(cx.maps, a[0], "bpf_map_pop_elem", &QUEUES)?.clone();
    no_prog_writes(&map, "bpf_map_pop_elem")?;
    // Check the destination before taking the value, so a bad pointer loses nothing.
    check_writable_out(cx, a[1], value_size(&map))?;
    match map.pop_elem() {
        Ok(v) => write_arg(cx, "value", a[1], &v).map(|_| 0),
        Err(e) => Ok(neg(e.errno())),
    }
}

fn peek(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let map = typed_map(cx.maps, a[0], "bpf_map_peek_elem", &PUSHABLE)?.clone();
    if map.map_type() == MapType::BloomFilter {
        let value = read_arg(cx, "value", a[1], value_size(&map))?;
        return Ok(status(map.contains_elem(&value)));
    }
    check_writable_out(cx, a[1], value_size(&map))?;
    match map.peek_elem() {
        Ok(v) => write_arg(cx, "value", a[1], &v).map(|_| 0),
        Err(e) => Ok(neg(e.errno())),
    }
}

fn ring(cx: &HelperContext<'_>, h: u64, helper: &str) -> Result<Arc<dyn Map>, HelperError> {
    typed_map(cx.maps, h, helper, &[MapType::Ringbuf]).cloned()
}

fn as_ring(map: &Arc<dyn Map>) -> &RingBuf {
    map.downcast::<RingBuf>().expect("ringbuf maps are RingBuf")
}

fn ringbuf_output(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let map = ring(cx, a[0], "bpf_ringbuf_output")?;
    if a[3] & !(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP) != 0 {
        return Ok(neg(errno(ErrorCode::Einval)));
    }
    let data = read_arg(cx, "data", a[1], a[2])?;
    cx.refuse_leaked_words("bpf_ringbuf_output: the data's", &data)?;
    Ok(if as_ring(&map).output(&data) {
        0
    } else {
        neg(EAGAIN)
    })
}

fn ringbuf_reserve(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let map = ring(cx, a[0], "bpf_ringbuf_reserve")?;
    if a[2] != 0 {
        return Ok(0);
    }
    if cx.maps.reservations() >= MAX_RESERVATIONS {
        return Ok(0);
    }
    let Some(addr) = as_ring(&map).reserve(a[1]) else {
        return Ok(0);
    };
    // The record is memory of the run until it is submitted or discarded (the kernel's verifier
    // invalidates the pointer then): its region comes and goes with the reservation.
    cx.regions.push(Region::new(addr, a[1], true));
    cx.state
        .added
        .add(addr, a[1], Added::RingbufRecord { map: a[0] });
    cx.maps.add_reservation(addr, a[1], map);
    Ok(addr)
}

fn ringbuf_release(
    cx: &mut HelperContext<'_>,
    a: [u64; 5],
    discard: bool,
) -> Result<u64, HelperError> {
    if !discard && cx.refuses_pointer_leaks() {
        // Checked before the record is taken: a refused record stays reserved, and the run's end
        // discards it.
        if let Some(len) = cx.state.added.len_at(a[0]) {
            let record = read_arg(cx, "record", a[0], len)?;
            cx.refuse_leaked_words("bpf_ringbuf_submit: the record's", &record)?;
        }
    }
    let Some((len, map)) = cx.maps.take_reservation(a[0]) else {
        return Err(HelperError(format!(
            "{} is not a ring buffer reservation of this run that is still open",
            cx.describe(a[0])
        )));
    };
    cx.regions.remove(Region::new(a[0], len, true));
    cx.state.added.remove(a[0]);
    as_ring(&map).commit(a[0], discard);
    Ok(0)
}

fn ringbuf_query(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let map = ring(cx, a[0], "bpf_ringbuf_query")?;
    Ok(as_ring(&map).query(a[1]))
}

/// Registers the map helpers in `table`.
pub fn register(table: &mut HelperTable) {
    // The CPU number must name the per-CPU map slot the program sees (`maps::percpu`), so this
    // replaces the standard table's constant 0 (this module registers after `standard`).
    table.register_kernel(
        BPF_GET_SMP_PROCESSOR_ID,
        "bpf_get_smp_processor_id",
        |cx, _| Ok(cx.maps.cpu() as u64),
    );
    table.insert_shared(LOOKUP.clone());
    table.register_kernel(
        BPF_MAP_LOOKUP_PERCPU_ELEM,
        "bpf_map_lookup_percpu_elem",
        lookup_percpu,
    );
    table.register_kernel(
        BPF_FOR_EACH_MAP_ELEM,
        "bpf_for_each_map_elem",
        for_each_map_elem,
    );
    table.register_kernel(BPF_MAP_UPDATE_ELEM, "bpf_map_update_elem", update);
    table.register_kernel(BPF_MAP_DELETE_ELEM, "bpf_map_delete_elem", delete);
    table.register_kernel(BPF_MAP_PUSH_ELEM, "bpf_map_push_elem", push);
    table.register_kernel(BPF_MAP_POP_ELEM, "bpf_map_pop_elem", pop);
    table.register_kernel(BPF_MAP_PEEK_ELEM, "bpf_map_peek_elem", peek);
    table.register_kernel(BPF_RINGBUF_OUTPUT, "bpf_ringbuf_output", ringbuf_output);
    table.register_kernel(BPF_RINGBUF_RESERVE, "bpf_ringbuf_reserve", ringbuf_reserve);
    table.register_kernel(BPF_RINGBUF_SUBMIT, "bpf_ringbuf_submit", |cx, a| {
        ringbuf_release(cx, a, false)
    });
    table.register_kernel(BPF_RINGBUF_DISCARD, "bpf_ringbuf_discard", |cx, a| {
        ringbuf_release(cx, a, true)
    });
    table.register_kernel(BPF_RINGBUF_QUERY, "bpf_ringbuf_query", ringbuf_query);
}
