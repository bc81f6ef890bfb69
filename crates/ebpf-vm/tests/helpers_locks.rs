//! `bpf_spin_lock` (93) / `bpf_spin_unlock` (94): real mutual exclusion between runs on several
//! threads, and the verifier's rules checked at run time.

mod context_support;

use std::sync::Arc;

use context_support::*;
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::Insn;
use ebpf_vm::maps::{self, MapDef, MapType};
use ebpf_vm::{ProgramOptions, ProgramType, RunInput, TrapKind};

fn run_raw(insns: &[Insn], data: &mut [u8]) -> Result<u64, ebpf_vm::Trap> {
    let p = load(insns, ProgramType::Raw).unwrap();
    p.run(&mut RunInput { data, budget: None }).map(|o| o.r0)
}

#[test]
fn lock_and_unlock_a_word_of_the_runs_memory() {
    // lock(data); data[4] = 1; unlock(data); r0 = data[0..4] (0 again)
    let insns = prog![
        movr(6, 1),
        call(93),
        st(SIZE_B, 6, 4, 1),
        movr(1, 6),
        call(94),
        ldx(SIZE_W, 0, 6, 0),
        exit(),
    ];
    let mut data = [0u8; 8];
    assert_eq!(run_raw(&insns, &mut data).unwrap(), 0);
    assert_eq!(data[4], 1);
}

#[test]
fn what_the_verifier_would_refuse_stops_the_run() {
    let mut data = [0u8; 8];
    // Exit holding the lock: a helper error naming the lock call; the lock is released.
    let t = run_raw(&prog![movr(6, 1), call(93), mov(0, 0), exit()], &mut data).unwrap_err();
    assert_eq!((t.kind, t.pc), (TrapKind::HelperError, 1));
    assert_eq!(data[..4], [0, 0, 0, 0]);
    // Two locks at once.
    let t = run_raw(
        &prog![
            movr(6, 1),
            call(93),
            movr(1, 6),
            add(1, 4),
            call(93),
            exit()
        ],
        &mut data,
    )
    .unwrap_err();
    assert_eq!((t.kind, t.pc), (TrapKind::HelperError, 4));
    assert_eq!(data[..4], [0, 0, 0, 0], "released when the run stopped");
    // Unlocking a lock not held; a misaligned or outside word.
    let t = run_raw(&prog![call(94), exit()], &mut data).unwrap_err();
    assert_eq!((t.kind, t.pc), (TrapKind::HelperError, 0));
    let t = run_raw(&prog![add(1, 2), call(93), exit()], &mut data).unwrap_err();
    assert_eq!((t.kind, t.pc), (TrapKind::HelperError, 1));
    let t = run_raw(&prog![mov(1, 64), call(93), exit()], &mut data).unwrap_err();
    assert_eq!((t.kind, t.pc), (TrapKind::HelperError, 1));
}

#[test]
fn a_lock_word_that_stays_taken_stops_the_run_instead_of_hanging() {
    let mut data = [1u8, 0, 0, 0];
    let t = run_raw(&prog![call(93), exit()], &mut data).unwrap_err();
    assert_eq!(t.kind, TrapKind::HelperError);
    assert!(t.message.contains("not released"), "{}", t.message);
}

#[test]
fn runs_on_four_threads_exclude_each_other() {
    // value = { u32 lock; u32 counter }: v = lookup(map, &0); lock(v); v.counter += 1 (a plain
    // load and store: without the lock, increments would be lost); unlock(v).
    let map = maps::create(MapDef::new(MapType::Array, 4, 8, 1)).unwrap();
    let insns = prog![
        st(SIZE_W, 10, -4, 0),
        Insn::new(OP_LDDW, 1, PSEUDO_MAP_IDX, 0, 0),
        Insn::new(0, 0, 0, 0, 0),
        fp_plus(2, -4),
        call(1),
        ji(JMP_JEQ, 0, 0, 9),
        movr(6, 0),
        movr(1, 6),
        call(93),
        ldx(SIZE_W, 2, 6, 4),
        add(2, 1),
        stx(SIZE_W, 6, 2, 4),
        movr(1, 6),
        call(94),
        mov(0, 0),
        exit(),
    ];
    let p = Arc::new(
        load_with(
            &insns,
            ProgramOptions {
                maps: vec![map.clone()],
                ..options(ProgramType::Raw)
            },
        )
        .unwrap(),
    );
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let p = p.clone();
            std::thread::spawn(move || {
                for _ in 0..2000 {
                    p.run(&mut RunInput {
                        data: &mut [],
                        budget: None,
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let v = map.lookup(&0u32.to_le_bytes()).unwrap();
    assert_eq!(u32::from_le_bytes(v[4..8].try_into().unwrap()), 8000);
    assert_eq!(
        u32::from_le_bytes(v[0..4].try_into().unwrap()),
        0,
        "lock free at the end"
    );
}
