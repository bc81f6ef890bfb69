//! Issue #11 §2-§3 as counts: what one run, or one map, may make the process hold. Resident memory
//! is read from /proc/self/statm (Linux); the tests of this file take turns so that one's
//! allocations do not show in another's figures.

mod context_support;

use std::sync::Mutex;

use context_support::*;
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::Insn;
use ebpf_vm::maps::{self, MapDef, MapType};
use ebpf_vm::{Engine, RunInput};

const ENGINES: [Engine; 2] = [Engine::Interpreter, Engine::Jit];
const MIB: u64 = 1 << 20;

static TURN: Mutex<()> = Mutex::new(());

/// Resident bytes of this process.
fn resident() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// n times: delete(k); update(k, data); v = lookup(k); *v += 1 (the value comes from the run's
/// data, r1). Then r0 = the size of the region table. Key 0 on the stack at r10 - 4.
fn churn(n: i32) -> Vec<Insn> {
    prog![
        movr(8, 1),
        st(SIZE_W, 10, -4, 0),
        mov(6, n),
        // loop:
        ld_map(1, 0),
        fp_plus(2, -4),
        call(3),
        ld_map(1, 0),
        fp_plus(2, -4),
        movr(3, 8),
        mov(4, 0),
        call(2),
        ld_map(1, 0),
        fp_plus(2, -4),
        call(1),
        ji(JMP_JEQ, 0, 0, 2),
        ldx(SIZE_B, 1, 0, 0),
        stx(SIZE_B, 0, 1, 1),
        add(6, -1),
        ji(JMP_JNE, 6, 0, -22),
        call(REGIONS),
        exit(),
    ]
}

#[test]
fn delete_update_lookup_loops_keep_memory_and_regions_at_the_maps_size() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    for engine in ENGINES {
        // The case: 1 MiB values; 40,000 instructions (2,100 rounds) used to pin 2.4 GiB,
        // 100 rounds (1,905 instructions) pinned 100 MiB.
        let map = maps::create(MapDef::new(MapType::Hash, 4, MIB as u32, 2)).unwrap();
        let p = counting_regions(engine, &churn(100), vec![map.clone()]);
        let mut data = vec![7u8; MIB as usize];
        let once = counting_regions(engine, &churn(1), vec![map.clone()])
            .run(&mut RunInput {
                data: &mut data,
                budget: None,
            })
            .unwrap()
            .r0;
        let before = resident();
        let out = p
            .run(&mut RunInput {
                data: &mut data,
                budget: None,
            })
            .unwrap();
        let grown = resident().saturating_sub(before);
        assert_eq!(out.insn_count, 100 * 19 + 5, "{engine:?}");
        assert_eq!(out.r0, once, "{engine:?}: the region table grew");
        // At most the map's two values, and some slack for the allocator.
        assert!(
            grown < 16 * MIB,
            "{engine:?}: resident memory grew by {grown} bytes"
        );
        assert_eq!(map.len(), 1);
    }
}

#[test]
fn the_default_budget_on_a_one_entry_map_does_not_grow_the_region_table() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    for engine in ENGINES {
        let map = maps::create(MapDef::new(MapType::Hash, 4, 8, 1)).unwrap();
        let mut data = [0u8; 8];
        let mut regions = |n: i32| {
            counting_regions(engine, &churn(n), vec![map.clone()])
                .run(&mut RunInput {
                    data: &mut data,
                    budget: None,
                })
                .unwrap()
        };
        let once = regions(1).r0;
        // 20,000 rounds (380,005 instructions) under the default budget: every round inserts a
        // fresh element and looks it up, which used to add a region each time.
        let many = regions(20_000);
        assert_eq!(many.insn_count, 20_000 * 19 + 5);
        assert_eq!(many.r0, once, "{engine:?}");
    }
}

#[test]
fn big_maps_commit_only_the_memory_they_touch() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    // A million 64-byte values: 64 MiB of address space for each map.
    for map_type in [MapType::Hash, MapType::LruHash, MapType::Array] {
        let before = resident();
        let map = maps::create(MapDef::new(map_type, 4, 64, 1 << 20)).unwrap();
        let created = resident().saturating_sub(before);
        assert!(
            created < 4 * MIB,
            "{map_type:?}: {created} bytes resident after creation"
        );
        for k in 0..1000u32 {
            map.update(&k.to_ne_bytes(), &[1; 64], 0).unwrap();
        }
        let used = resident().saturating_sub(before);
        assert!(
            used < 8 * MIB,
            "{map_type:?}: {used} bytes resident after 1,000 updates"
        );
        drop(map);
    }
    let before = resident();
    // Ten million program slots (the most under the per-map limit is 14.9 million): taken as
    // programs are put in, not at creation.
    let progs = maps::create(MapDef::new(MapType::ProgArray, 4, 4, 10_000_000)).unwrap();
    let created = resident().saturating_sub(before);
    assert!(
        created < 4 * MIB,
        "prog_array: {created} bytes resident after creation"
    );
    drop(progs);
    let before = resident();
    let trie = maps::create(
        MapDef::new(MapType::LpmTrie, 8, 64, 1 << 20).with_flags(maps::flags::BPF_F_NO_PREALLOC),
    )
    .unwrap();
    let created = resident().saturating_sub(before);
    assert!(
        created < 4 * MIB,
        "lpm_trie: {created} bytes resident after creation"
    );
    drop(trie);
}

#[test]
fn what_a_full_map_may_take_is_known_before_it_is_created() {
    // A million 64-byte values: 64 MiB for an array; a hash map adds per element its key (4 bytes,
    // kept in 8) and an index entry (64 bytes, an estimate): 136 bytes each.
    let def = |t, k, v, n| MapDef::new(t, k, v, n);
    assert_eq!(def(MapType::Array, 4, 64, 1 << 20).memory_bound(), 64 * MIB);
    assert_eq!(def(MapType::Hash, 4, 64, 1 << 20).memory_bound(), 136 * MIB);
    // 25 million program slots: 72 bytes each once full, though none is taken while empty; over
    // the 1 GiB a map may take, so creating it fails at once (the object committed 1.9 GiB).
    let progs = def(MapType::ProgArray, 4, 4, 25_000_000);
    assert_eq!(progs.memory_bound(), 25_000_000 * 72);
    let e = maps::create(progs.with_name("next")).unwrap_err();
    assert_eq!(e.code, ebpf_vm::ErrorCode::E2big);
    assert!(e.message.contains("\"next\""), "{}", e.message);
    // A ring buffer is allocated twice over (see ringbuf.rs).
    assert_eq!(def(MapType::Ringbuf, 0, 0, 1 << 20).memory_bound(), 2 * MIB);
}

#[test]
fn a_for_each_walk_over_a_million_elements_materialises_no_keys() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    // r0 = for_each_map_elem(array of 2^20 8-byte values, cb, 0, 0); cb: return 0. The walk used
    // to collect every key first (one allocation per index, some 56 MiB for this map).
    let insns = prog![
        ld_map(1, 0),    // 0-1
        lddw_func(2, 5), // 2-3: the callback at 2 + 5 + 1 = 8
        mov(3, 0),       // 4
        mov(4, 0),       // 5
        call(164),       // 6
        exit(),          // 7
        mov(0, 0),       // 8: the callback
        exit(),          // 9
    ];
    for engine in ENGINES {
        let map = maps::create(MapDef::new(MapType::Array, 4, 8, 1 << 20)).unwrap();
        let p = counting_regions(engine, &insns, vec![map.clone()]);
        let before = resident();
        let out = p
            .run(&mut RunInput {
                data: &mut [],
                budget: None,
            })
            .unwrap();
        let grown = resident().saturating_sub(before);
        // Every element visited (the helper returns their number), each costing the callback's
        // call and its two instructions: 5 before the call, 3 * 2^20, and the exit.
        assert_eq!((out.r0, out.insn_count), (1 << 20, 5 + 3 * (1 << 20) + 1));
        // Less than the 8 MiB of the values themselves (which the walk does not touch).
        assert!(
            grown < 8 * MIB,
            "{engine:?}: resident memory grew by {grown} bytes"
        );
    }
}

#[test]
fn a_printing_loop_keeps_the_trace_log_at_its_limit() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    // 100,000 times bpf_trace_printk of a 31-byte line: 3.1 MB printed, of which the log keeps
    // the newest TRACE_LOG_LIMIT (1 MiB) bytes.
    let line = b"0123456789abcdefghijklmnopqrst\n";
    let mut insns = stack_bytes(line, -32);
    insns.extend(prog![
        mov(6, 100_000),
        // loop:
        fp_plus(1, -32),
        mov(2, 32),
        call(6),
        add(6, -1),
        ji(JMP_JNE, 6, 0, -6),
        mov(0, 0),
        exit(),
    ]);
    let limit = ebpf_vm::helpers::output::TRACE_LOG_LIMIT;
    for engine in ENGINES {
        let p = counting_regions(engine, &insns, Vec::new());
        let before = resident();
        p.run(&mut RunInput {
            data: &mut [],
            budget: None,
        })
        .unwrap();
        let grown = resident().saturating_sub(before);
        let log = p.take_trace_log();
        assert!(
            log.len() <= limit && log.len() > limit - line.len(),
            "{engine:?}: {} bytes of log",
            log.len()
        );
        assert!(log.split_inclusive('\n').all(|l| l.as_bytes() == line));
        assert!(
            grown < 8 * MIB,
            "{engine:?}: resident memory grew by {grown} bytes"
        );
    }
}
