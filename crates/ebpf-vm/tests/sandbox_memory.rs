//! Issue #11: memory a hostile program must not be able to misuse, on both engines.
//!
//! - A spin lock taken on a hash value whose key the program then deletes, held at exit: the run
//!   must stop with a typed trap and the lock must be released into live memory (it used to be
//!   written after the value was freed). Run this file under valgrind to see no invalid write:
//!   `valgrind --error-exitcode=1 target/debug/deps/sandbox_memory-*`.
//! - No helper but bpf_spin_unlock while a lock is held (the kernel verifier's rule "function
//!   calls are not allowed while holding a lock"), checked at run time.

mod context_support;

use context_support::*;
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::Insn;
use ebpf_vm::maps::{self, Map, MapDef, MapType};
use ebpf_vm::{Engine, ProgramOptions, ProgramType, RunInput, Trap, TrapKind};

use std::sync::Arc;

const ENGINES: [Engine; 2] = [Engine::Interpreter, Engine::Jit];

fn load_on(engine: Engine, insns: &[Insn], maps: Vec<Arc<dyn Map>>) -> ebpf_vm::Program {
    load_with(
        insns,
        ProgramOptions {
            prog_type: ProgramType::Raw,
            engine,
            maps,
            ..ProgramOptions::default()
        },
    )
    .expect("program loads")
}

fn run(p: &ebpf_vm::Program) -> Result<u64, Trap> {
    p.run(&mut RunInput {
        data: &mut [],
        budget: None,
    })
    .map(|o| o.r0)
}

/// The program of the issue: lookup key 0, lock the value, delete the key, exit holding the lock.
fn lock_delete_exit() -> Vec<Insn> {
    prog![
        st(SIZE_W, 10, -4, 0),
        ld_map(1, 0),
        fp_plus(2, -4),
        call(1), // bpf_map_lookup_elem
        ji(JMP_JEQ, 0, 0, 7),
        movr(1, 0),
        call(93), // bpf_spin_lock(value)
        ld_map(1, 0),
        fp_plus(2, -4),
        call(3), // bpf_map_delete_elem
        mov(0, 0),
        exit(),
    ]
}

fn locked_hash(value_size: u32) -> Arc<dyn Map> {
    let map = maps::create(MapDef::new(MapType::Hash, 4, value_size, 4).with_spin_lock(0)).unwrap();
    map.update(&0u32.to_ne_bytes(), &vec![0u8; value_size as usize], 0)
        .unwrap();
    map
}

#[test]
fn a_lock_on_a_value_deleted_under_it_gives_a_trap_not_a_write_to_freed_memory() {
    for engine in ENGINES {
        for value_size in [8, 1 << 20] {
            let map = locked_hash(value_size);
            let p = load_on(engine, &lock_delete_exit(), vec![map.clone()]);
            let t = run(&p).unwrap_err();
            // The delete is a helper call made while holding the lock: the kernel's verifier refuses
            // it ("function calls are not allowed while holding a lock"); here the run stops there.
            assert_eq!(
                (t.kind, t.pc),
                (TrapKind::HelperError, 13),
                "{engine:?}: {t}"
            );
            assert!(
                t.message.contains("while holding a lock"),
                "{engine:?}: {}",
                t.message
            );
            // The key is still there, its lock free again: a BPF_F_LOCK lookup does not wait.
            assert_eq!(map.len(), 1);
            map.lookup_with_flags(&0u32.to_ne_bytes(), maps::flags::BPF_F_LOCK)
                .expect("the lock was released");
            // Run again: the same trap, and the lock is taken and released again.
            assert_eq!(run(&p).unwrap_err().pc, 13);
        }
    }
}

#[test]
fn a_lock_held_at_exit_on_a_value_another_thread_deleted_is_released_into_live_memory() {
    // r6 = lookup(hash, 0); r7 = lookup(flags, 0); lock(r6); r7[0] = 1; wait for r7[1] != 0;
    // exit holding the lock. Meanwhile another thread sees r7[0], deletes key 0 of the hash map
    // and sets r7[1]: the value the lock lives in is unlinked while the run holds the lock.
    let insns = prog![
        st(SIZE_W, 10, -4, 0),
        ld_map(1, 0),
        fp_plus(2, -4),
        call(1),
        ji(JMP_JEQ, 0, 0, 13),
        movr(6, 0),
        ld_map(1, 1),
        fp_plus(2, -4),
        call(1),
        ji(JMP_JEQ, 0, 0, 6),
        movr(7, 0),
        movr(1, 6),
        call(93),
        st(SIZE_DW, 7, 0, 1),
        ldx(SIZE_DW, 1, 7, 8),
        ji(JMP_JEQ, 1, 0, -2),
        mov(0, 0),
        exit(),
    ];
    for engine in ENGINES {
        let hash = locked_hash(64);
        let flags = maps::create(MapDef::new(MapType::Array, 4, 16, 1)).unwrap();
        let p = load_on(engine, &insns, vec![hash.clone(), flags.clone()]);
        let deleter = {
            let (hash, flags) = (hash.clone(), flags.clone());
            std::thread::spawn(move || {
                let k = 0u32.to_ne_bytes();
                while flags.lookup(&k).unwrap()[0] != 1 {
                    std::thread::yield_now();
                }
                hash.delete(&k).unwrap();
                let mut go = [0u8; 16];
                go[8] = 1;
                flags.update(&k, &go, 0).unwrap();
            })
        };
        let t = p
            .run(&mut RunInput {
                data: &mut [],
                budget: Some(1 << 40),
            })
            .unwrap_err();
        deleter.join().unwrap();
        assert_eq!(
            (t.kind, t.pc),
            (TrapKind::HelperError, 16),
            "{engine:?}: {t}"
        );
        assert!(t.message.contains("exited holding"), "{}", t.message);
        assert!(hash.is_empty());
    }
}

#[test]
fn no_helper_but_unlock_while_a_lock_is_held_and_local_calls_are_allowed() {
    let mut word = [0u8; 8];
    for engine in ENGINES {
        // lock(data); r0 = get_prandom_u32() : stopped at the call.
        let p = load_with(
            &prog![movr(6, 1), call(93), call(7), movr(1, 6), call(94), exit()],
            ProgramOptions {
                engine,
                ..ProgramOptions::default()
            },
        )
        .unwrap();
        let t = p
            .run(&mut RunInput {
                data: &mut word,
                budget: None,
            })
            .unwrap_err();
        assert_eq!(
            (t.kind, t.pc),
            (TrapKind::HelperError, 2),
            "{engine:?}: {t}"
        );
        assert!(t.message.contains("not allowed while holding a lock"));
        assert_eq!(word[..4], [0; 4], "released");
        // lock(data); a bpf-to-bpf call that stores 7 into data[4]; unlock: allowed, as the
        // kernel allows static subprograms inside a critical section.
        let p = load_with(
            &prog![
                movr(6, 1),
                call(93),
                movr(1, 6),
                call_local(3),
                movr(1, 6),
                call(94),
                exit(),
                st(SIZE_B, 1, 4, 7),
                mov(0, 0),
                exit(),
            ],
            ProgramOptions {
                engine,
                ..ProgramOptions::default()
            },
        )
        .unwrap();
        word = [0; 8];
        p.run(&mut RunInput {
            data: &mut word,
            budget: None,
        })
        .unwrap();
        assert_eq!(word, [0, 0, 0, 0, 7, 0, 0, 0]);
    }
}

#[test]
fn ring_buffer_records_leave_the_region_table_when_submitted() {
    // n times: r = reserve(ring, 8); *r = 7; submit(r). Then r0 = regions.
    let reserve_submit = |n: i32| {
        prog![
            mov(6, n),
            ld_map(1, 0),
            mov(2, 8),
            mov(3, 0),
            call(131),
            ji(JMP_JEQ, 0, 0, 6),
            st(SIZE_DW, 0, 0, 7),
            movr(1, 0),
            mov(2, 0),
            call(132),
            add(6, -1),
            ji(JMP_JNE, 6, 0, -12),
            call(REGIONS),
            exit(),
        ]
    };
    for engine in ENGINES {
        let ring = maps::create(MapDef::new(MapType::Ringbuf, 0, 0, 1 << 16)).unwrap();
        let once = counting_regions(engine, &reserve_submit(1), vec![ring.clone()]);
        let many = counting_regions(engine, &reserve_submit(200), vec![ring.clone()]);
        let base = run(&once).unwrap();
        assert_eq!(run(&many).unwrap(), base, "{engine:?}");
        // A store through the pointer after submit traps: the record is no longer the run's.
        let late = counting_regions(
            engine,
            &prog![
                ld_map(1, 0),
                mov(2, 8),
                mov(3, 0),
                call(131),
                ji(JMP_JEQ, 0, 0, 5),
                movr(7, 0),
                movr(1, 0),
                mov(2, 0),
                call(132),
                st(SIZE_DW, 7, 0, 7),
                exit(),
            ],
            vec![ring.clone()],
        );
        let t = run(&late).unwrap_err();
        assert_eq!(
            (t.kind, t.pc),
            (TrapKind::OutOfBounds, 10),
            "{engine:?}: {t}"
        );
    }
}

#[test]
fn for_each_map_elem_in_a_loop_does_not_grow_the_region_table() {
    // n times: for_each(array, cb, 0, 0) with cb returning 0. Then r0 = regions.
    let walks = |n: i32| {
        prog![
            mov(6, n),
            ld_map(1, 0),
            lddw_func(2, 8),
            mov(3, 0),
            mov(4, 0),
            call(164),
            add(6, -1),
            ji(JMP_JNE, 6, 0, -9),
            call(REGIONS),
            exit(),
            mov(0, 0),
            exit(),
        ]
    };
    for engine in ENGINES {
        let array = maps::create(MapDef::new(MapType::Array, 4, 8, 4)).unwrap();
        let once = counting_regions(engine, &walks(1), vec![array.clone()]);
        let many = counting_regions(engine, &walks(100), vec![array.clone()]);
        let base = run(&once).unwrap();
        assert_eq!(run(&many).unwrap(), base, "{engine:?}");
    }
}

#[test]
fn perf_records_beyond_the_runs_buffer_are_dropped_and_counted() {
    use ebpf_vm::helpers::output::PerfSink;
    use ebpf_vm::{ContextInput, TestRunInput};
    use std::sync::atomic::{AtomicU64, Ordering};
    // 25 times: perf_event_output(ctx, 0, BPF_F_CURRENT_CPU, r10 - 8, 8); r0 = the calls that
    // returned 0. An 8-byte record takes 24 bytes of a perf ring (8-byte header, u32 size, the
    // data, 4 bytes of padding), so a 240-byte buffer holds 10 of them.
    let insns = prog![
        movr(6, 1),
        mov(7, 0),
        mov(8, 25),
        st(SIZE_DW, 10, -8, 0x55),
        movr(1, 6),
        mov(2, 0),
        lddw(3, 0xffff_ffff),
        fp_plus(4, -8),
        mov(5, 8),
        call(25),
        ji(JMP_JNE, 0, 0, 1),
        add(7, 1),
        add(8, -1),
        ji(JMP_JNE, 8, 0, -12),
        movr(0, 7),
        exit(),
    ];
    for engine in ENGINES {
        let kept = Arc::new(AtomicU64::new(0));
        let lost = Arc::new(AtomicU64::new(0));
        let (k, l) = (kept.clone(), lost.clone());
        let sink = PerfSink::new(move |r| {
            assert_eq!(r.data, 0x55u64.to_ne_bytes());
            k.fetch_add(1, Ordering::Relaxed);
        })
        .with_lost(move |n| {
            l.fetch_add(n, Ordering::Relaxed);
        });
        let p = load_with(
            &insns,
            ProgramOptions {
                prog_type: ProgramType::Tracing,
                engine,
                perf_sink: Some(sink),
                perf_buffer_bytes: 240,
                ..ProgramOptions::default()
            },
        )
        .unwrap();
        let ctx = [0u8; 8];
        let (out, cx) = p
            .run_with_context(
                &mut RunInput {
                    data: &mut [],
                    budget: None,
                },
                &ContextInput {
                    ctx: Some(&ctx),
                    ..ContextInput::default()
                },
            )
            .unwrap();
        assert_eq!(out.r0, 10, "{engine:?}");
        assert_eq!(cx.perf_lost, 15, "{engine:?}");
        assert_eq!(kept.load(Ordering::Relaxed), 10);
        assert_eq!(lost.load(Ordering::Relaxed), 15);
        // Each run has its own buffer: three repetitions drop 45 of 75.
        let t = p.test_run(&TestRunInput {
            ctx: Some(ctx.to_vec()),
            repeat: 3,
            ..TestRunInput::default()
        });
        assert_eq!(t.result.unwrap(), 10);
        assert_eq!(t.perf_lost, 45);
        assert_eq!(kept.load(Ordering::Relaxed), 40);
    }
}
