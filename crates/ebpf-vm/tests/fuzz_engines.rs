//! Issue #11 §7: a standing adversarial suite for bytecode and helpers on both engines.
//!
//! Every case is a program, its maps, its input and a budget; it runs once on the interpreter and
//! once on the JIT, each against its own freshly made and identically filled maps. A case passes
//! when:
//! - neither load nor run panics (`catch_unwind` around both);
//! - both engines load it, or both refuse it with the same `LoadError`;
//! - both runs give the same r0, instruction count and exit instruction, or the same trap (kind,
//!   pc, size, instruction count, message and place), the same data and context after the run,
//!   the same map contents, ring-buffer records, perf records and trace output;
//! - a run's instruction count is within its budget, and what it allocates while it runs stays
//!   within `RUN_HEAP_BOUND` (counted by this binary's allocator, not by time) and its region
//!   table within `REGION_BOUND` (counted by a helper the programs call).
//!
//! A program whose outcome depends on host addresses (it computes with its pointers) is counted,
//! not compared: see `depends_on_addresses`.
//!
//! Two sources of cases:
//! - generated programs (`random_programs`, with the `Extra` hook adding helper calls): map
//!   lookup/update/delete/push/pop/peek on maps of every type, ring-buffer reserve/submit/discard/
//!   output/query, `bpf_loop` and `bpf_for_each_map_elem` callbacks, spin lock/unlock (in order and
//!   not), tail calls through a prog array, `bpf_trace_printk`/`bpf_snprintf`, ktime, strtol,
//!   per-CPU lookups, XDP adjust/load/store and socket-filter load_bytes, perf output, direct
//!   packet access, with plausible and random arguments, as raw, socket_filter and XDP programs;
//! - byte-level mutations of real programs: the executable sections of the committed fixture
//!   objects, and the `*.bin` files of `EBPF_FUZZ_SEED_DIR` (`npm run fuzz:engines` writes the
//!   bpf_conformance programs there, assembled by our assembler).
//!
//! `cargo test -p ebpf-vm --test fuzz_engines` runs `EBPF_FUZZ_CASES` cases (default 400);
//! `EBPF_FUZZ_SECONDS=N` runs cases for N seconds instead (`npm run fuzz:engines`), from seed
//! `EBPF_FUZZ_SEED` (default 1). A failure names the seed of its case and prints its program:
//! `EBPF_FUZZ_SEED=<seed> EBPF_FUZZ_CASES=1` (with the same `EBPF_FUZZ_SEED_DIR`) repeats it.
#![cfg(target_arch = "x86_64")]

mod random_programs;
mod rng;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ebpf_vm::coverage::CoverageReport;
use ebpf_vm::helpers::output::PerfSink;
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::{encode_all, Insn};
use ebpf_vm::maps::def::flags::*;
use ebpf_vm::maps::prog_array::ProgArray;
use ebpf_vm::maps::ringbuf::RingBuf;
use ebpf_vm::maps::{self, Map, MapDef, MapType};
use ebpf_vm::{
    ContextInput, ContextOutput, Engine, HelperTable, LoadError, Program, ProgramOptions,
    ProgramType, RunInput, RunOutput,
};
use random_programs::{function, layout, Calls, Item};
use rng::{Random, Rng, XorShift};

// ---- what a run may take ---------------------------------------------------------------------

/// Counts the bytes this process has allocated and the peak since the last reset, so that a
/// run's memory is a number the test can bound.
struct Counting;

static LIVE: AtomicU64 = AtomicU64::new(0);
static PEAK: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            let now =
                LIVE.fetch_add(layout.size() as u64, Ordering::Relaxed) + layout.size() as u64;
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            let now =
                LIVE.fetch_add(layout.size() as u64, Ordering::Relaxed) + layout.size() as u64;
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        System.dealloc(p, layout);
        LIVE.fetch_sub(layout.size() as u64, Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let q = System.realloc(p, layout, new_size);
        if !q.is_null() {
            LIVE.fetch_sub(layout.size() as u64, Ordering::Relaxed);
            let now = LIVE.fetch_add(new_size as u64, Ordering::Relaxed) + new_size as u64;
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        q
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes of perf records one run may buffer (`ProgramOptions::perf_buffer_bytes`).
const PERF_BUFFER: u64 = 16 << 10;

/// What one run may allocate beyond the memory it started with: its perf buffer, its trace log
/// (`TRACE_LOG_LIMIT`: a run printing 512-byte lines fills it within its budget; 794,819 bytes
/// were seen), plus 1 MiB for the region table, format buffers, the tail-call chain and the
/// helpers' scratch. Maps are made before the run (preallocated, as the kernel's), and a run's
/// allocations do not grow with its instruction count (issue #11 §2).
const RUN_HEAP_BOUND: u64 =
    PERF_BUFFER + ebpf_vm::helpers::output::TRACE_LOG_LIMIT as u64 + (1 << 20);

/// Regions a run's table may hold: the stack, the context and packet, the maps' value areas and
/// a few live ring-buffer records; not one per lookup (issue #11 §3).
const REGION_BOUND: usize = 64;

/// Helper the generated programs call to report the size of the run's region table.
const REGIONS: i32 = 1000;
static MAX_REGIONS: AtomicUsize = AtomicUsize::new(0);

// ---- maps -------------------------------------------------------------------------------------

const M_HASH_LOCK: i32 = 0;
const M_ARRAY_LOCK: i32 = 1;
const M_PERCPU_HASH: i32 = 2;
const M_PERCPU_ARRAY: i32 = 3;
const M_LRU: i32 = 4;
const M_LRU_PERCPU: i32 = 5;
const M_LPM: i32 = 6;
const M_ARRAY_OF_MAPS: i32 = 7;
const M_HASH_OF_MAPS: i32 = 8;
const M_QUEUE: i32 = 9;
const M_STACK: i32 = 10;
const M_RINGBUF: i32 = 11;
const M_BLOOM: i32 = 12;
const M_PROG_ARRAY: i32 = 13;
const MAP_COUNT: i32 = 14;

/// Value size of each map of the catalogue (what the generated accesses aim around).
fn value_size(map: i32) -> i64 {
    match map {
        M_HASH_LOCK => 16,
        M_ARRAY_LOCK => 24,
        M_ARRAY_OF_MAPS | M_HASH_OF_MAPS => 0,
        M_RINGBUF => 64,
        _ => 8,
    }
}

fn inner_def() -> MapDef {
    MapDef::new(MapType::Hash, 4, 8, 4)
}

/// The maps of a case, one of every type; sizes vary by case.
fn map_defs(r: &mut Rng) -> Vec<MapDef> {
    let n = |r: &mut Rng, lo: i64, hi: i64| r.range(lo, hi) as u32;
    vec![
        MapDef::new(MapType::Hash, 4, 16, n(r, 1, 8)).with_spin_lock(0),
        MapDef::new(MapType::Array, 4, 24, n(r, 1, 4)).with_spin_lock(8),
        MapDef::new(MapType::PercpuHash, 4, 8, n(r, 1, 4)),
        MapDef::new(MapType::PercpuArray, 4, 8, n(r, 1, 4)),
        MapDef::new(MapType::LruHash, 4, 8, n(r, 2, 4)),
        MapDef::new(MapType::LruPercpuHash, 4, 8, n(r, 2, 4)),
        MapDef::new(MapType::LpmTrie, 8, 8, n(r, 1, 8)).with_flags(BPF_F_NO_PREALLOC),
        MapDef::new(MapType::ArrayOfMaps, 4, 4, 2).with_inner(inner_def()),
        MapDef::new(MapType::HashOfMaps, 4, 4, 2).with_inner(inner_def()),
        MapDef::new(MapType::Queue, 0, 8, n(r, 1, 4)),
        MapDef::new(MapType::Stack, 0, 8, n(r, 1, 4)),
        MapDef::new(MapType::Ringbuf, 0, 0, 4096 << r.below(2)),
        MapDef::new(MapType::BloomFilter, 0, 8, n(r, 1, 8)).with_map_extra(r.range(1, 5) as u64),
        MapDef::new(MapType::ProgArray, 4, 4, 4),
    ]
}

/// The maps of one engine's run: made from `defs` and filled from `seed`, the same for both.
struct MapSet {
    maps: Vec<Arc<dyn Map>>,
    inner: Vec<Arc<dyn Map>>,
}

fn make_maps(defs: &[MapDef], seed: u64) -> MapSet {
    let mut r = XorShift(seed | 1);
    let mut inner = Vec::new();
    let maps: Vec<Arc<dyn Map>> = defs
        .iter()
        .map(|d| maps::create(d.clone()).expect("catalogue map"))
        .collect();
    for (k, m) in maps.iter().enumerate() {
        let k = k as i32;
        let val = |r: &mut XorShift, len: usize| -> Vec<u8> {
            (0..len).map(|_| r.next() as u8).collect()
        };
        match k {
            M_HASH_LOCK | M_ARRAY_LOCK | M_PERCPU_HASH | M_PERCPU_ARRAY | M_LRU | M_LRU_PERCPU => {
                let size = m.value_blob_size();
                for key in 0..r.below(4) as u32 {
                    let mut v = val(&mut r, size);
                    if k == M_HASH_LOCK {
                        v[..4].fill(0);
                    } else if k == M_ARRAY_LOCK {
                        v[8..12].fill(0);
                    }
                    let _ = m.update(&key.to_ne_bytes(), &v, BPF_ANY);
                }
            }
            M_LPM => {
                for _ in 0..r.below(4) {
                    let mut key = vec![r.below(33) as u8, 0, 0, 0];
                    key.extend(val(&mut r, 4));
                    let _ = m.update(&key, &val(&mut r, 8), BPF_ANY);
                }
            }
            M_ARRAY_OF_MAPS | M_HASH_OF_MAPS => {
                for key in 0..2u32 {
                    let im = maps::create(inner_def()).unwrap();
                    im.update(&0u32.to_ne_bytes(), &val(&mut r, 8), BPF_ANY)
                        .unwrap();
                    m.update(&key.to_ne_bytes(), &im.id().to_ne_bytes(), BPF_ANY)
                        .unwrap();
                    inner.push(im);
                }
            }
            M_QUEUE | M_STACK | M_BLOOM => {
                for _ in 0..r.below(3) {
                    let _ = m.push(&val(&mut r, 8), 0);
                }
            }
            _ => {}
        }
    }
    MapSet { maps, inner }
}

/// What a map holds, in an order that does not depend on hashing. Destructive for queues, stacks
/// and ring buffers (the case is over).
fn dump(m: &Arc<dyn Map>) -> Vec<(Vec<u8>, Vec<u8>)> {
    match m.map_type() {
        MapType::Queue | MapType::Stack => {
            let mut out = Vec::new();
            while let Ok(v) = m.pop() {
                out.push((Vec::new(), v));
            }
            out
        }
        MapType::Ringbuf => {
            let mut out = Vec::new();
            let rb = m.downcast::<RingBuf>().expect("ring buffer");
            rb.consume(|rec| out.push((Vec::new(), rec.to_vec())));
            out
        }
        // Values are map ids (which differ between the two sets) or programs; the inner maps
        // are dumped on their own.
        MapType::ArrayOfMaps | MapType::HashOfMaps | MapType::ProgArray => {
            let mut keys = m.keys().unwrap_or_default();
            keys.sort();
            keys.into_iter().map(|k| (k, Vec::new())).collect()
        }
        MapType::BloomFilter => (0..=255u8)
            .filter(|b| m.contains(&[*b; 8]).is_ok())
            .map(|b| (vec![b], Vec::new()))
            .collect(),
        _ => {
            let mut out: Vec<_> = m
                .keys()
                .unwrap_or_default()
                .into_iter()
                .map(|k| {
                    let v = m.lookup(&k).unwrap_or_default();
                    (k, v)
                })
                .collect();
            out.sort();
            out
        }
    }
}

// ---- generated programs -------------------------------------------------------------------------

fn plain(i: Insn) -> Item {
    Item::Plain(i)
}
fn mov(d: u8, k: i32) -> Item {
    plain(Insn::new(CLASS_ALU64 | ALU_MOV, d, 0, 0, k))
}
fn movr(d: u8, s: u8) -> Item {
    plain(Insn::new(CLASS_ALU64 | ALU_MOV | SRC_X, d, s, 0, 0))
}
fn add(d: u8, k: i32) -> Item {
    plain(Insn::new(CLASS_ALU64 | ALU_ADD, d, 0, 0, k))
}
fn call(id: i32) -> Item {
    plain(Insn::new(OP_CALL, 0, 0, 0, id))
}
fn st(size: u8, d: u8, off: i16, k: i32) -> Item {
    plain(Insn::new(CLASS_ST | MODE_MEM | size, d, 0, off, k))
}
fn ldx(size: u8, d: u8, s: u8, off: i16) -> Item {
    plain(Insn::new(CLASS_LDX | MODE_MEM | size, d, s, off, 0))
}
/// `dst = r10 + off`.
fn fp(d: u8, off: i32) -> [Item; 2] {
    [movr(d, 10), add(d, off)]
}

/// Where the snippets keep things on the stack: a key (8 bytes), a value (24), a format string
/// (24) and an output buffer (32).
const KEY: i16 = -8;
const VALUE: i16 = -40;
const FMT: i16 = -64;
const OUT: i16 = -96;

/// A register the snippets' accesses write: not r6 (a kept value pointer) or r9 (the context).
fn scratch(r: &mut Rng) -> u8 {
    r.pick(&[0, 2, 3, 4, 5, 7, 8])
}

fn small(r: &mut Rng) -> i32 {
    match r.below(6) {
        0 => -1,
        1 => r.next() as i32,
        _ => r.below(4) as i32,
    }
}

/// One to three loads, stores or atomic adds through `p` at offsets around `[0, len)`.
fn touch(r: &mut Rng, p: u8, len: i64, out: &mut Vec<Item>) {
    for _ in 0..r.range(1, 3) {
        let (sz, size) = r.pick(&[(SIZE_B, 1i64), (SIZE_H, 2), (SIZE_W, 4), (SIZE_DW, 8)]);
        let off = if r.chance(85) {
            r.range(0, (len - size).max(0))
        } else {
            r.range(-8, len + 8)
        } as i16;
        out.push(match r.below(4) {
            0 => ldx(sz, scratch(r), p, off),
            1 => st(sz, p, off, random_programs::imm(r)),
            2 if size >= 4 => plain(Insn::new(
                CLASS_STX | MODE_ATOMIC | sz,
                p,
                scratch(r),
                off - off.rem_euclid(size as i16),
                r.pick(ebpf_vm::isa::table::ATOMIC_OPS),
            )),
            _ => plain(Insn::new(CLASS_STX | MODE_MEM | sz, p, scratch(r), off, 0)),
        });
    }
}

/// `if r0 == 0 goto <after body>; body`, the body's items at `at + out.len() + 1`.
fn unless_null(at: usize, out: &mut Vec<Item>, body: Vec<Item>) {
    let after = at + out.len() + 1 + body.len();
    out.push(Item::Jump(CLASS_JMP | JMP_JEQ, 0, 0, 0, after));
    out.extend(body);
}

/// A map of the catalogue, mostly one the helper is meant for.
fn some_map(r: &mut Rng, meant: &[i32]) -> i32 {
    if r.chance(85) {
        r.pick(meant)
    } else {
        r.below(MAP_COUNT as u64) as i32
    }
}

/// The key at r10 + KEY: a small index, sometimes anything; an LPM key (prefix length, 4 bytes)
/// for the trie.
fn key(r: &mut Rng, map: i32, out: &mut Vec<Item>) {
    if map == M_LPM {
        out.push(st(SIZE_W, 10, KEY, r.range(0, 40) as i32));
        out.push(st(SIZE_W, 10, KEY + 4, small(r)));
    } else {
        out.push(st(SIZE_DW, 10, KEY, small(r)));
    }
}

fn value(r: &mut Rng, out: &mut Vec<Item>) {
    for k in 0..3 {
        out.push(st(SIZE_DW, 10, VALUE + 8 * k, r.next() as i32));
    }
}

const FORMATS: &[&[u8]] = &[
    b"%d\n",
    b"%llx %u\n",
    b"%s",
    b"%p %pK %px",
    b"%c%c%c",
    b"100%%\n",
    b"%lld %llu %i",
    b"%-8d|%08x",
    b"%pI4 %pi6",
    b"%",
    b"no args",
];

/// A format string at r10 + FMT (zero-padded to 24 bytes); returns its length with the NUL.
fn format(r: &mut Rng, out: &mut Vec<Item>) -> i32 {
    let f = r.pick(FORMATS);
    let mut buf = [0u8; 24];
    buf[..f.len()].copy_from_slice(f);
    if r.chance(10) {
        // No NUL within the size given.
        buf[f.len()] = b'x';
    }
    for (k, w) in buf.chunks(4).enumerate() {
        let word = i32::from_le_bytes(w.try_into().unwrap());
        out.push(st(SIZE_W, 10, FMT + 4 * k as i16, word));
    }
    f.len() as i32 + 1
}

/// Which helpers a generated program may call besides the common ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Raw,
    SocketFilter,
    Xdp,
}

impl Kind {
    fn prog_type(self) -> ProgramType {
        match self {
            Kind::Raw => ProgramType::Raw,
            Kind::SocketFilter => ProgramType::SocketFilter,
            Kind::Xdp => ProgramType::Xdp,
        }
    }
}

/// A helper call with its arguments set up, at item index `at`; `cb` is the callback's entry.
fn snippet(r: &mut Rng, at: usize, kind: Kind, cb: usize, tail: bool) -> Vec<Item> {
    let mut out = Vec::new();
    let o = &mut out;
    let choice = match kind {
        Kind::Raw => r.below(20),
        _ => r.below(24),
    };
    match choice {
        // Lookup and use the value, sometimes keeping the pointer in r6.
        0..=2 => {
            let m = some_map(r, &[0, 1, 2, 3, 4, 5, 6, 7, 8]);
            key(r, m, o);
            o.push(Item::MapRef(1, m));
            o.extend(fp(2, KEY as i32));
            o.push(call(1));
            let mut body = Vec::new();
            if m == M_ARRAY_OF_MAPS || m == M_HASH_OF_MAPS {
                // An inner map: look it up in turn.
                let mut inner = Vec::new();
                touch(r, 0, 8, &mut inner);
                body.push(movr(1, 0));
                body.extend(fp(2, KEY as i32));
                body.push(call(1));
                let after = at + o.len() + 1 + body.len() + 1 + inner.len();
                body.push(Item::Jump(CLASS_JMP | JMP_JEQ, 0, 0, 0, after));
                body.extend(inner);
            } else {
                touch(r, 0, value_size(m), &mut body);
                if r.chance(40) {
                    body.push(movr(6, 0));
                }
            }
            unless_null(at, o, body);
        }
        3 | 4 => {
            let m = some_map(r, &[0, 1, 2, 3, 4, 5, 6, 7, 8]);
            key(r, m, o);
            value(r, o);
            o.push(Item::MapRef(1, m));
            o.extend(fp(2, KEY as i32));
            o.extend(fp(3, VALUE as i32));
            o.push(mov(4, r.pick(&[0, 0, 1, 2, 4, 8, -1])));
            o.push(call(2));
        }
        5 => {
            let m = some_map(r, &[0, 2, 4, 5, 6, 8, 1]);
            key(r, m, o);
            o.push(Item::MapRef(1, m));
            o.extend(fp(2, KEY as i32));
            o.push(call(3));
        }
        // Queue, stack and bloom filter.
        6 | 7 => {
            let m = some_map(r, &[M_QUEUE, M_STACK, M_BLOOM]);
            o.push(Item::MapRef(1, m));
            o.extend(fp(2, VALUE as i32));
            match r.below(3) {
                0 => {
                    value(r, o);
                    o.push(mov(3, r.pick(&[0, 0, 2, 1, -1])));
                    o.push(call(87));
                }
                1 => o.push(call(88)),
                _ => o.push(call(89)),
            }
        }
        // Ring buffer: reserve, write, then submit or discard (or neither, or twice).
        8 | 9 => {
            let m = some_map(r, &[M_RINGBUF]);
            o.push(Item::MapRef(1, m));
            let size = r.pick(&[0, 1, 8, 16, 60, 4096, 8000, -1]);
            o.push(mov(2, size));
            o.push(mov(3, r.pick(&[0, 0, 0, 1])));
            o.push(call(131));
            let mut body = Vec::new();
            touch(r, 0, (size.clamp(0, 64)) as i64, &mut body);
            body.push(movr(6, 0));
            let ends = if r.chance(10) { r.below(3) } else { 1 };
            let id = r.pick(&[132, 133]);
            for _ in 0..ends {
                body.push(movr(1, 6));
                body.push(mov(2, r.pick(&[0, 0, 1, 2, 3])));
                body.push(call(id));
            }
            unless_null(at, o, body);
        }
        10 => {
            let m = some_map(r, &[M_RINGBUF]);
            value(r, o);
            o.push(Item::MapRef(1, m));
            o.extend(fp(2, VALUE as i32));
            o.push(mov(3, r.pick(&[0, 8, 24, 25, -1])));
            o.push(mov(4, r.pick(&[0, 0, 1, 2, 4])));
            o.push(call(130));
        }
        11 => {
            o.push(Item::MapRef(1, some_map(r, &[M_RINGBUF])));
            o.push(mov(2, r.pick(&[0, 1, 2, 3, 4])));
            o.push(call(134));
        }
        // Callbacks.
        12 => {
            o.push(st(SIZE_DW, 10, KEY, small(r)));
            o.push(mov(1, r.pick(&[0, 1, 3, 10, 100, (1 << 23) + 1, -1])));
            o.push(Item::FuncRef(2, cb));
            o.extend(fp(3, KEY as i32));
            o.push(mov(4, r.pick(&[0, 0, 0, 1])));
            o.push(call(181));
        }
        13 => {
            o.push(Item::MapRef(1, r.below(MAP_COUNT as u64) as i32));
            o.push(Item::FuncRef(2, cb));
            o.extend(fp(3, KEY as i32));
            o.push(mov(4, r.pick(&[0, 0, 0, 1])));
            o.push(call(164));
        }
        // Spin lock on a value, a few accesses, unlock (sometimes not, or twice, or elsewhere).
        14 | 15 => {
            let m = some_map(r, &[M_HASH_LOCK, M_ARRAY_LOCK]);
            key(r, m, o);
            o.push(Item::MapRef(1, m));
            o.extend(fp(2, KEY as i32));
            o.push(call(1));
            let lock_off = if m == M_ARRAY_LOCK { 8 } else { 0 };
            let mut body = vec![movr(6, 0), movr(1, 6)];
            if r.chance(90) {
                body.push(add(1, lock_off));
            }
            body.push(call(93));
            if r.chance(20) {
                // A helper call while holding the lock.
                body.push(call(r.pick(&[1, 5, 93, 181])));
            }
            touch(r, 6, value_size(m), &mut body);
            for _ in 0..r.pick(&[1, 1, 1, 1, 0, 2]) {
                body.push(movr(1, 6));
                body.push(add(1, lock_off));
                body.push(call(94));
            }
            unless_null(at, o, body);
        }
        16 if tail => {
            o.push(movr(1, 9));
            o.push(Item::MapRef(2, some_map(r, &[M_PROG_ARRAY])));
            o.push(mov(3, r.pick(&[0, 1, 2, 3, 4, -1])));
            o.push(call(12));
        }
        17 => {
            let len = format(r, o);
            o.extend(fp(1, FMT as i32));
            o.push(mov(
                2,
                if r.chance(85) {
                    len
                } else {
                    r.range(0, 30) as i32
                },
            ));
            for a in 3..=5 {
                if r.chance(30) {
                    o.extend(fp(a, VALUE as i32));
                } else {
                    o.push(mov(a, random_programs::imm(r)));
                }
            }
            o.push(call(6));
        }
        18 => {
            let len = format(r, o);
            value(r, o);
            o.extend(fp(1, OUT as i32));
            o.push(mov(2, r.pick(&[32, 32, 0, 1, 16, 33])));
            o.extend(fp(3, FMT as i32));
            let _ = len;
            o.extend(fp(4, VALUE as i32));
            o.push(mov(5, r.pick(&[0, 8, 16, 24, 7, 32])));
            o.push(call(165));
            if r.chance(50) {
                o.push(ldx(SIZE_DW, scratch(r), 10, OUT));
            }
        }
        19 => match r.below(5) {
            // ktime and smp_processor_id: the time differs between the engines' runs.
            0 => {
                o.push(call(r.pick(&[5, 125, 160])));
                o.push(mov(0, 0));
            }
            1 => o.push(call(8)),
            2 => {
                let m = some_map(r, &[M_PERCPU_HASH, M_PERCPU_ARRAY, M_LRU_PERCPU]);
                key(r, m, o);
                o.push(Item::MapRef(1, m));
                o.extend(fp(2, KEY as i32));
                o.push(mov(3, r.pick(&[0, 1, 7, 1024, -1])));
                o.push(call(195));
                let mut body = Vec::new();
                touch(r, 0, 8, &mut body);
                unless_null(at, o, body);
            }
            3 => {
                let _ = format(r, o);
                o.extend(fp(1, FMT as i32));
                o.push(mov(2, r.pick(&[1, 4, 8, 24, 0])));
                o.push(mov(3, r.pick(&[0, 10, 16, 8, 3])));
                o.extend(fp(4, KEY as i32));
                o.push(call(r.pick(&[105, 106])));
            }
            _ => o.push(call(REGIONS)),
        },
        // Packet helpers.
        20 if kind == Kind::Xdp => {
            o.push(movr(1, 9));
            o.push(mov(
                2,
                r.pick(&[-64, -14, -4, -1, 0, 4, 14, 64, 4000, i32::MIN]),
            ));
            o.push(call(r.pick(&[44, 54, 65])));
        }
        20 | 21 => {
            o.push(movr(1, 9));
            o.push(mov(2, r.pick(&[0, 1, 13, 14, 60, 200, -1])));
            o.extend(fp(3, VALUE as i32));
            o.push(mov(4, r.pick(&[0, 1, 4, 8, 24, 25])));
            o.push(call(match kind {
                Kind::Xdp => r.pick(&[189, 190, 188]),
                _ => 26,
            }));
        }
        // Direct packet access: data and data_end from the context, a bounds check, accesses.
        22 => {
            let (data, end) = match kind {
                Kind::Xdp => (0, 4),
                _ => (76, 80),
            };
            o.push(ldx(SIZE_W, 2, 9, data));
            o.push(ldx(SIZE_W, 3, 9, end));
            o.push(movr(4, 2));
            let n = r.pick(&[1, 8, 14, 34, 100]);
            o.push(add(4, n));
            let mut body = Vec::new();
            touch(r, 2, n as i64, &mut body);
            let after = at + o.len() + 1 + body.len();
            o.push(Item::Jump(CLASS_JMP | JMP_JGT | SRC_X, 4, 3, 0, after));
            o.extend(body);
        }
        // Perf output (perf sink set) and csum_diff.
        _ => {
            if kind == Kind::Xdp && r.chance(30) {
                value(r, o);
                o.extend(fp(1, VALUE as i32));
                o.push(mov(2, r.pick(&[0, 4, 8, 3])));
                o.extend(fp(3, VALUE as i32));
                o.push(mov(4, r.pick(&[0, 8, 16, 24])));
                o.push(mov(5, small(r)));
                o.push(call(28));
            } else {
                value(r, o);
                o.push(movr(1, 9));
                o.push(Item::MapRef(2, r.below(MAP_COUNT as u64) as i32));
                o.push(Item::Lddw(
                    3,
                    r.pick(&[0xffff_ffff, 0, 1, 0x10_ffff_ffff, 0x1000_ffff_ffff]),
                ));
                o.extend(fp(4, VALUE as i32));
                o.push(mov(5, r.pick(&[0, 8, 24, 25])));
                o.push(call(25));
            }
        }
    }
    out
}

/// A program: `r9 = r1`, main, a subprogram main may call, and a callback that the helper calls
/// of every function may name.
fn generate(r: &mut Rng, kind: Kind, tail: bool) -> Vec<Insn> {
    let main_len = r.range(4, 60) as usize;
    let sub_len = r.range(2, 12) as usize;
    let cb_len = r.range(2, 24) as usize;
    let (sub, cb) = (3 + main_len, 3 + main_len + sub_len);
    let rate = r.range(20, 80);
    let mut extra = |r: &mut Rng, base: usize, items: &mut Vec<Item>, room: usize| {
        if !r.chance(rate as u64) {
            return false;
        }
        let s = snippet(r, base + items.len(), kind, cb, tail);
        if s.len() > room {
            return false;
        }
        items.extend(s);
        true
    };
    // Bare calls (whatever the registers hold) of helpers that take no pointer: most random
    // arguments would make a map helper stop the run at once.
    let calls = Calls {
        bare: &[8, REGIONS],
        value: None,
    };
    // r9 = the context; r3 = r10 - 128, where the generator's accesses through r3 (its "extra
    // region") land on the stack below the snippets' slots.
    let mut items = vec![movr(9, 1), movr(3, 10), add(3, -128)];
    items.extend(function(r, 3, main_len, sub, &calls, &mut extra));
    items.extend(function(r, sub, sub_len, sub, &calls, &mut extra));
    items.extend(function(r, cb, cb_len, sub, &calls, &mut extra));
    layout(&items)
}

// ---- seeds and mutations ----------------------------------------------------------------------

/// The executable sections of an ELF64 little-endian object (unrelocated: map loads keep
/// their placeholder, which here names map 0 or nothing).
fn text_sections(elf: &[u8]) -> Vec<Vec<u8>> {
    let u16at = |o: usize| {
        elf.get(o..o + 2)
            .map(|b| u16::from_le_bytes(b.try_into().unwrap()))
    };
    let u64at = |o: usize| {
        elf.get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
    };
    let (Some(shoff), Some(shentsize), Some(shnum)) = (u64at(0x28), u16at(0x3a), u16at(0x3c))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for k in 0..shnum as usize {
        let h = shoff as usize + k * shentsize as usize;
        let (Some(flags), Some(off), Some(size)) = (u64at(h + 8), u64at(h + 0x18), u64at(h + 0x20))
        else {
            break;
        };
        const SHF_EXECINSTR: u64 = 4;
        if flags & SHF_EXECINSTR != 0 && size > 0 && size % 8 == 0 {
            if let Some(b) = elf.get(off as usize..(off + size) as usize) {
                out.push(b.to_vec());
            }
        }
    }
    out
}

/// Programs to mutate: the fixture objects' code and `EBPF_FUZZ_SEED_DIR/*.bin`.
fn seeds() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for dir in [
        root.join("__test__/fixtures"),
        root.join("crates/ebpf-vm/tests/context_support/fixtures"),
    ] {
        if let Ok(rd) = std::fs::read_dir(dir) {
            files.extend(rd.flatten().map(|e| e.path()));
        }
    }
    files.sort();
    let mut out: Vec<Vec<u8>> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "o"))
        .flat_map(|p| text_sections(&std::fs::read(p).unwrap_or_default()))
        .collect();
    if let Ok(dir) = std::env::var("EBPF_FUZZ_SEED_DIR") {
        // Relative to the workspace root (cargo runs tests in the crate's directory).
        let dir = root.join(dir);
        let dir = dir.display();
        let mut bins: Vec<_> = std::fs::read_dir(dir.to_string())
            .unwrap_or_else(|e| panic!("EBPF_FUZZ_SEED_DIR {dir}: {e}"))
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "bin"))
            .collect();
        bins.sort();
        out.extend(bins.iter().filter_map(|p| std::fs::read(p).ok()));
    }
    out.retain(|s| !s.is_empty());
    out
}

/// One to four byte-level changes to `code`: bit flips, interesting bytes, a slot replaced by a
/// helper call, a map or function load, or a generated instruction, slots duplicated or removed.
fn mutate(r: &mut Rng, code: &[u8]) -> Vec<u8> {
    let mut c = code.to_vec();
    for _ in 0..r.range(1, 4) {
        let slots = c.len() / 8;
        if slots == 0 {
            c = encode_all(&[Insn::new(OP_EXIT, 0, 0, 0, 0)]);
            continue;
        }
        let s = r.below(slots as u64) as usize;
        match r.below(8) {
            0 | 1 => {
                let b = r.below(c.len() as u64) as usize;
                c[b] ^= 1 << r.below(8);
            }
            2 => {
                let b = r.below(c.len() as u64) as usize;
                let any = r.next() as u8;
                c[b] = r.pick(&[0, 0xff, 0x80, 0x7f, 0x85, 0x18, 0x95, any]);
            }
            3 => {
                let id = r.pick(&[1, 2, 3, 12, 25, 26, 44, 93, 94, 131, 132, 164, 181, 6, 165]);
                let insn = encode_all(&[Insn::new(OP_CALL, 0, 0, 0, id)]);
                c[s * 8..s * 8 + 8].copy_from_slice(&insn);
            }
            4 => {
                let insn = encode_all(&[random_programs::alu(r)]);
                c[s * 8..s * 8 + 8].copy_from_slice(&insn);
            }
            5 => {
                let insn = encode_all(&[random_programs::memory(r)]);
                c[s * 8..s * 8 + 8].copy_from_slice(&insn);
            }
            6 => {
                let slot: Vec<u8> = c[s * 8..s * 8 + 8].to_vec();
                c.splice(s * 8..s * 8, slot);
            }
            _ => {
                if slots > 1 {
                    c.drain(s * 8..s * 8 + 8);
                }
            }
        }
    }
    c
}

// ---- one case on both engines -------------------------------------------------------------------

/// A case: the program (and the tail-call target), its maps, input and budget.
struct Case {
    kind: Kind,
    code: Vec<u8>,
    tail: Option<Vec<u8>>,
    defs: Vec<MapDef>,
    fill: u64,
    data: Vec<u8>,
    budget: u64,
    /// Count coverage (and compare its report).
    coverage: bool,
}

/// A trap without its host address (which differs between the engines' maps).
#[derive(Debug, PartialEq, Eq)]
struct TrapSeen {
    kind: ebpf_vm::TrapKind,
    pc: usize,
    size: u32,
    insn_count: u64,
    message: String,
    place: Option<ebpf_vm::error::Place>,
}

/// Everything a case is judged by, on one engine.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    load: Result<(), LoadError>,
    run: Option<Result<(RunOutput, ContextOutput), TrapSeen>>,
    data: Vec<u8>,
    maps: Vec<Vec<(Vec<u8>, Vec<u8>)>>,
    perf: Vec<(u32, Vec<u8>)>,
    trace: String,
    /// The main program's coverage, where the case counts it.
    coverage: Option<CoverageReport>,
}

/// Resources a run used, for the bounds (not compared between engines).
#[derive(Default)]
struct Used {
    heap: u64,
}

fn helpers() -> HelperTable {
    let mut h = HelperTable::standard();
    h.register(REGIONS as u32, "regions", |cx, _| {
        MAX_REGIONS.fetch_max(cx.regions.len(), Ordering::Relaxed);
        Ok(0)
    });
    h
}

fn options(case: &Case, engine: Engine, maps: Vec<Arc<dyn Map>>) -> ProgramOptions {
    ProgramOptions {
        prog_type: case.kind.prog_type(),
        engine,
        budget: case.budget,
        coverage: case.coverage,
        helpers: helpers(),
        maps,
        perf_buffer_bytes: PERF_BUFFER,
        ..ProgramOptions::default()
    }
}

/// One run of `case` on `engine`. `shift` moves the data buffer and the maps to other host
/// addresses (an odd number of 8-byte words, and live allocations made before the maps).
fn run_on(engine: Engine, case: &Case, shift: usize) -> Result<(Outcome, Used), String> {
    let pad: Vec<Box<[u64; 6]>> = (0..shift * 7).map(|_| Box::new([0; 6])).collect();
    let set = make_maps(&case.defs, case.fill);
    // And the run's own allocations (context, JIT code) relative to the maps.
    let pad_after: Vec<Vec<u8>> = (0..shift * 5).map(|k| vec![0; 40 + 72 * k]).collect();
    let perf = Arc::new(Mutex::new(Vec::new()));
    let sink = {
        let perf = perf.clone();
        PerfSink::new(move |rec| perf.lock().unwrap().push((rec.index, rec.data.clone())))
    };
    let mut opts = options(case, engine, set.maps.clone());
    opts.perf_sink = Some(sink.clone());
    let loaded = catch_unwind(AssertUnwindSafe(|| Program::load(&case.code, opts)))
        .map_err(|_| "panic in Program::load".to_string())?;
    // The tail-call target has the same maps but an empty prog array of its own (no cycle).
    let tail = match (&case.tail, &loaded) {
        (Some(code), Ok(_)) => {
            let mut tail_maps = set.maps.clone();
            tail_maps[M_PROG_ARRAY as usize] =
                maps::create(case.defs[M_PROG_ARRAY as usize].clone()).expect("prog array");
            let mut opts = options(case, engine, tail_maps);
            opts.perf_sink = Some(sink);
            let t = catch_unwind(AssertUnwindSafe(|| Program::load(code, opts)))
                .map_err(|_| "panic in Program::load (tail target)".to_string())?;
            t.ok().map(Arc::new)
        }
        _ => None,
    };
    if let Some(t) = &tail {
        let pa = set.maps[M_PROG_ARRAY as usize]
            .downcast::<ProgArray>()
            .expect("prog array");
        pa.set(0, 1, t.clone()).unwrap();
        pa.set(2, 1, t.clone()).unwrap();
    }
    let at = 8 * (2 * shift + 1);
    let mut buffer = vec![0u8; at + case.data.len()];
    buffer[at..].copy_from_slice(&case.data);
    let data = &mut buffer[at..];
    let mut used = Used::default();
    let run = match &loaded {
        Err(_) => None,
        Ok(p) => {
            let before = LIVE.load(Ordering::Relaxed);
            PEAK.store(before, Ordering::Relaxed);
            let res = catch_unwind(AssertUnwindSafe(|| {
                p.run_with_context(
                    &mut RunInput {
                        data: &mut *data,
                        budget: None,
                    },
                    &ContextInput::default(),
                )
            }))
            .map_err(|_| "panic in Program::run".to_string())?;
            used.heap = PEAK.load(Ordering::Relaxed).saturating_sub(before);
            Some(res.map_err(|t| TrapSeen {
                kind: t.kind,
                pc: t.pc,
                size: t.size,
                insn_count: t.insn_count,
                message: t.message,
                place: t.place,
            }))
        }
    };
    let mut trace = String::new();
    let mut coverage = None;
    if let Ok(p) = &loaded {
        trace += &p.take_trace_log();
        coverage = p.coverage();
    }
    if let Some(t) = &tail {
        trace += &t.take_trace_log();
    }
    let mut dumps: Vec<_> = set.maps.iter().map(dump).collect();
    dumps.extend(set.inner.iter().map(dump));
    let perf = std::mem::take(&mut *perf.lock().unwrap());
    drop((pad, pad_after));
    Ok((
        Outcome {
            load: loaded.map(|_| ()),
            run,
            data: data.to_vec(),
            maps: dumps,
            perf,
            trace,
            coverage,
        },
        used,
    ))
}

// ---- the suite ----------------------------------------------------------------------------------

#[derive(Default)]
struct Stats {
    cases: u64,
    generated: u64,
    mutated: u64,
    load_errors: BTreeMap<String, u64>,
    exited: u64,
    traps: BTreeMap<&'static str, u64>,
    max_heap: u64,
    max_count: u64,
    /// Cases whose outcome depends on the host addresses of the maps (not compared).
    address_dependent: u64,
    /// One message per load error code (what the programs were refused for).
    load_messages: BTreeMap<String, String>,
    /// What the compared runs produced besides r0: ring-buffer records, perf records, runs that
    /// printed, runs that left a map other than it found it (evidence that the helpers ran).
    ring_records: u64,
    perf_records: u64,
    printed: u64,
    maps_changed: u64,
    failures: Vec<String>,
}

/// The case of `seed`, and whether it is a mutated seed program.
fn make_case(seed: u64, seeds: &[Vec<u8>]) -> (Case, bool) {
    let mut r = Rng::new(seed);
    let kind = r.pick(&[Kind::Raw, Kind::Raw, Kind::SocketFilter, Kind::Xdp]);
    let defs = map_defs(&mut r);
    let mutated = !seeds.is_empty() && r.chance(30);
    let code = if mutated {
        let s = &seeds[r.below(seeds.len() as u64) as usize];
        mutate(&mut r, s)
    } else {
        encode_all(&generate(&mut r, kind, true))
    };
    let tail = if r.chance(60) {
        Some(encode_all(&generate(&mut r, kind, false)))
    } else {
        None
    };
    let len = match kind {
        Kind::Raw => random_programs::DATA_LEN,
        _ if r.chance(10) => r.below(14) as usize,
        _ => r.range(14, 200) as usize,
    };
    let data = (0..len).map(|_| r.next() as u8).collect();
    let budget = r.pick(&[0, 1, 50, 500, 2000, 5000, 20000]) + r.below(100);
    let case = Case {
        kind,
        code,
        tail,
        defs,
        fill: r.next(),
        data,
        budget,
        coverage: false,
    };
    (case, mutated)
}

/// A program may compute with host addresses (hash the data pointer, take a context pointer
/// modulo 3, compare a map handle with the data pointer, store a pointer into the packet): its
/// outcome then depends on where the stack, the context, the data and the maps happen to be,
/// which differs between the engines' runs. When the engines disagree, the case runs again on
/// both at six other layouts (shifted allocations, on this thread and on new threads, which have
/// another stack and malloc arena). A disagreement of the engines themselves shows at every
/// layout; so the case is counted as address-dependent, not as a failure, when at some layout
/// the engines agree or either engine's outcome changes.
fn depends_on_addresses(case: &Case, want: &Outcome, got: &Outcome) -> Result<bool, String> {
    let both = |shift| -> Result<(Outcome, Outcome), String> {
        Ok((
            run_on(Engine::Interpreter, case, shift)?.0,
            run_on(Engine::Jit, case, shift)?.0,
        ))
    };
    for shift in 1..=3 {
        let here = both(shift)?;
        let there = std::thread::scope(|s| {
            s.spawn(|| both(shift))
                .join()
                .map_err(|_| "panic in a run of the address check".to_string())?
        })?;
        for (i, j) in [here, there] {
            if i == j || i != *want || j != *got {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

fn check(case: &Case, stats: &mut Stats) -> Result<(), String> {
    let (want, used_i) = run_on(Engine::Interpreter, case, 0)?;
    let (got, used_j) = run_on(Engine::Jit, case, 0)?;
    if want != got && depends_on_addresses(case, &want, &got)? {
        stats.address_dependent += 1;
        return Ok(());
    }
    if want != got {
        let mut diff = String::new();
        if want.load != got.load {
            diff += &format!("load: {:?} / {:?}\n", want.load, got.load);
        }
        if want.run != got.run {
            diff += &format!("run: {:?}\n  / {:?}\n", want.run, got.run);
        }
        if want.data != got.data {
            diff += "data after the run differs\n";
        }
        for (k, (a, b)) in want.maps.iter().zip(&got.maps).enumerate() {
            if a != b {
                diff += &format!("map {k}: {a:?}\n  / {b:?}\n");
            }
        }
        if want.perf != got.perf {
            diff += &format!("perf: {:?} / {:?}\n", want.perf, got.perf);
        }
        if want.trace != got.trace {
            diff += &format!("trace: {:?} / {:?}\n", want.trace, got.trace);
        }
        if want.coverage != got.coverage {
            diff += &format!("coverage: {:?}\n  / {:?}\n", want.coverage, got.coverage);
        }
        return Err(format!("engines disagree ({:?})\n{diff}", case.kind));
    }
    if let Err(e) = &want.load {
        *stats
            .load_errors
            .entry(format!("{:?}", e.code))
            .or_default() += 1;
        stats
            .load_messages
            .entry(format!("{:?}", e.code))
            .or_insert_with(|| {
                let insn = e
                    .insn
                    .and_then(|k| ebpf_vm::isa::decode_all(&case.code).get(k).copied());
                format!("{} (at {:?}: {insn:?})", e.message, e.insn)
            });
    }
    match &want.run {
        None => {}
        Some(Ok((out, _))) => {
            stats.exited += 1;
            if out.insn_count > case.budget {
                return Err(format!(
                    "{} instructions, budget {}",
                    out.insn_count, case.budget
                ));
            }
            stats.max_count = stats.max_count.max(out.insn_count);
        }
        Some(Err(t)) => {
            *stats.traps.entry(t.kind.as_str()).or_default() += 1;
            if std::env::var("EBPF_FUZZ_DEBUG").is_ok() {
                println!("{}: {}", t.kind.as_str(), t.message);
            }
            if t.insn_count > case.budget {
                return Err(format!(
                    "trap after {} instructions, budget {}",
                    t.insn_count, case.budget
                ));
            }
            stats.max_count = stats.max_count.max(t.insn_count);
        }
    }
    let heap = used_i.heap.max(used_j.heap);
    stats.max_heap = stats.max_heap.max(heap);
    stats.ring_records += want.maps[M_RINGBUF as usize].len() as u64;
    stats.perf_records += want.perf.len() as u64;
    stats.printed += u64::from(!want.trace.is_empty());
    let initial = make_maps(&case.defs, case.fill);
    let untouched = initial
        .maps
        .iter()
        .chain(&initial.inner)
        .map(dump)
        .collect::<Vec<_>>();
    stats.maps_changed += u64::from(want.run.is_some() && untouched != want.maps);
    if heap > RUN_HEAP_BOUND {
        return Err(format!(
            "a run allocated {heap} bytes (bound {RUN_HEAP_BOUND})"
        ));
    }
    let regions = MAX_REGIONS.swap(0, Ordering::Relaxed);
    if regions > REGION_BOUND {
        return Err(format!("{regions} regions (bound {REGION_BOUND})"));
    }
    Ok(())
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The suites of this binary one at a time: the heap and region bounds are read from counters
/// every thread adds to.
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn both_engines_agree_on_hostile_programs_and_stay_within_their_bounds() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // One per-CPU slot, shared by every thread: the address check's runs on other threads then
    // see the same per-CPU values (the number is read once, before the first map is made).
    std::env::set_var("EBPF_NR_CPUS", "1");
    let seeds = seeds();
    let first = env_u64("EBPF_FUZZ_SEED").unwrap_or(1);
    let until = env_u64("EBPF_FUZZ_SECONDS").map(|s| Instant::now() + Duration::from_secs(s));
    let cases = env_u64("EBPF_FUZZ_CASES").unwrap_or(400);
    let mut stats = Stats::default();
    let mut seed = first;
    loop {
        match until {
            Some(t) if Instant::now() >= t => break,
            None if seed >= first + cases => break,
            _ => {}
        }
        let (case, mutated) = make_case(seed, &seeds);
        stats.cases += 1;
        if mutated {
            stats.mutated += 1;
        } else {
            stats.generated += 1;
        }
        if let Err(e) = check(&case, &mut stats) {
            let listing: String = ebpf_vm::isa::decode_all(&case.code)
                .iter()
                .enumerate()
                .map(|(pc, i)| format!("{pc:3}: {i:?}\n"))
                .collect();
            stats.failures.push(format!("seed {seed}: {e}\n{listing}"));
            if stats.failures.len() >= 5 {
                break;
            }
        }
        seed += 1;
    }
    println!(
        "fuzz_engines: {} cases from seed {first} ({} generated, {} mutated from {} seed \
         programs): {} load errors {:?}; {} exited, traps {:?}; max instructions {}; max run heap \
         {} bytes (bound {}); {} ring-buffer records, {} perf records, {} runs printed, {} runs \
         changed maps; {} address-dependent; failures (crashes, disagreements, bounds) \
         {}\nexamples of load errors: {:?}",
        stats.cases,
        stats.generated,
        stats.mutated,
        seeds.len(),
        stats.load_errors.values().sum::<u64>(),
        stats.load_errors,
        stats.exited,
        stats.traps,
        stats.max_count,
        stats.max_heap,
        RUN_HEAP_BOUND,
        stats.ring_records,
        stats.perf_records,
        stats.printed,
        stats.maps_changed,
        stats.address_dependent,
        stats.failures.len(),
        stats.load_messages
    );
    assert!(stats.failures.is_empty(), "{}", stats.failures.join("\n"));
}

/// Longest run (in instructions, at a budget that does not stop it) whose every budget
/// `every_budget_ends_both_engines_alike` tries.
const SWEEP_LONGEST: u64 = 400;

/// Generated cases (local calls, helpers, `bpf_loop` and `bpf_for_each_map_elem` callbacks,
/// tail calls, packet access), each run with every budget from 1 to one past its whole count,
/// coverage counted, on both engines: every run must give the same outcome (r0, count and exit,
/// or the trap with its place and count), data, maps, records, trace output and coverage report.
/// The JIT's budget ends inside one of its metered chains at most of these budgets, where the
/// code leaves for Rust to finish the run (`jit/finish.rs`), in a callback as often as not.
/// `EBPF_SWEEP_CASES` (default 200) cases from `EBPF_SWEEP_SEED` (default 1).
#[test]
fn every_budget_ends_both_engines_alike() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    std::env::set_var("EBPF_NR_CPUS", "1");
    let first = env_u64("EBPF_SWEEP_SEED").unwrap_or(1);
    let cases = env_u64("EBPF_SWEEP_CASES").unwrap_or(200);
    let (mut swept, mut runs, mut long, mut refused, mut address_dependent) = (0, 0, 0, 0, 0);
    // Runs the budget stopped.
    let mut stopped = 0;
    let mut failures = Vec::new();
    for seed in first..first + cases {
        let (mut case, _) = make_case(seed, &[]);
        case.coverage = true;
        case.budget = 100_000;
        let full = match run_on(Engine::Interpreter, &case, 0).map(|(o, _)| o.run) {
            Ok(Some(Ok((out, _)))) => out.insn_count,
            Ok(Some(Err(t))) => t.insn_count,
            Ok(None) => {
                refused += 1;
                continue;
            }
            Err(e) => panic!("seed {seed}: {e}"),
        };
        if full > SWEEP_LONGEST {
            long += 1;
            continue;
        }
        swept += 1;
        for budget in 1..=full + 1 {
            case.budget = budget;
            let want = run_on(Engine::Interpreter, &case, 0).map(|(o, _)| o);
            let got = run_on(Engine::Jit, &case, 0).map(|(o, _)| o);
            runs += 1;
            let (want, got) = match (want, got) {
                (Ok(w), Ok(g)) => (w, g),
                (w, g) => panic!(
                    "seed {seed}, budget {budget}: {:?} / {:?}",
                    w.err(),
                    g.err()
                ),
            };
            if let Some(Err(t)) = &want.run {
                stopped += u64::from(t.kind == ebpf_vm::TrapKind::BudgetExhausted);
            }
            if want == got {
                continue;
            }
            if depends_on_addresses(&case, &want, &got).unwrap_or(false) {
                address_dependent += 1;
                break;
            }
            failures.push(format!(
                "seed {seed}, budget {budget}:\n{:?}\n  / {:?}\n{:?}\n  / {:?}",
                want.run, got.run, want.coverage, got.coverage
            ));
            break;
        }
    }
    println!(
        "every budget: {swept} cases swept ({runs} budgets on each engine, {stopped} runs \
         stopped by the budget); {long} longer than \
         {SWEEP_LONGEST} instructions and {refused} refused at load, not swept; \
         {address_dependent} address-dependent"
    );
    assert!(
        swept >= cases / 4,
        "too few cases swept: {swept} of {cases}"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
