//! `bpf_tail_call` (12) through a prog array: the target runs with the same context and the
//! rest of the budget and does not return; at most 33 tail calls per run (the kernel's
//! MAX_TAIL_CALL_CNT), after which the call falls through; an empty slot or a program of another
//! type falls through too.

mod context_support;

use std::sync::Arc;

use context_support::*;
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::Insn;
use ebpf_vm::maps::prog_array::ProgArray;
use ebpf_vm::maps::{self, Map, MapDef, MapType};
use ebpf_vm::{Engine, Program, ProgramOptions, ProgramType, RunInput};

fn ld_map(dst: u8, index: i32) -> [Insn; 2] {
    [
        Insn::new(OP_LDDW, dst, PSEUDO_MAP_IDX, 0, index),
        Insn::new(0, 0, 0, 0, 0),
    ]
}

fn prog_array(n: u32) -> Arc<dyn Map> {
    maps::create(MapDef::new(MapType::ProgArray, 4, 4, n)).unwrap()
}

fn set(map: &Arc<dyn Map>, index: u32, prog: Arc<Program>) {
    let pa = map.as_any().downcast_ref::<ProgArray>().unwrap();
    pa.set(index, index + 1, prog).unwrap();
}

/// data[0] += 1; tail_call(ctx, map, slot); return r0 (the call's result when it falls through)
fn counting(slot: i32) -> Vec<Insn> {
    prog![
        movr(6, 1),
        ldx(SIZE_B, 2, 6, 0),
        add(2, 1),
        stx(SIZE_B, 6, 2, 0),
        movr(1, 6),
        ld_map(2, 0),
        mov(3, slot),
        call(12),
        exit(),
    ]
}

fn load_raw(insns: &[Insn], map: &Arc<dyn Map>, prog_type: ProgramType) -> Arc<Program> {
    Arc::new(
        load_with(
            insns,
            ProgramOptions {
                maps: vec![map.clone()],
                ..options(prog_type)
            },
        )
        .unwrap(),
    )
}

#[test]
fn thirty_three_tail_calls_then_the_call_falls_through() {
    let map = prog_array(4);
    let p = load_raw(&counting(0), &map, ProgramType::Raw);
    set(&map, 0, p.clone());
    let mut data = [0u8; 4];
    let out = p
        .run(&mut RunInput {
            data: &mut data,
            budget: None,
        })
        .unwrap();
    // The first run and 33 tail calls each added one; the 34th call fell through with -E2BIG.
    assert_eq!(data[0], 34);
    assert_eq!(out.r0, (-7i64) as u64);
    // 34 runs of the program's first 8 instructions (lddw counts once) up to and including the
    // call, plus the exit of the last one.
    assert_eq!(out.insn_count, 34 * 8 + 1);
}

#[test]
fn the_target_runs_instead_of_the_rest_of_the_caller() {
    let map = prog_array(2);
    // Target: r0 = 77 + data[0].
    let target = load_raw(
        &prog![ldx(SIZE_B, 0, 1, 0), add(0, 77), exit()],
        &map,
        ProgramType::Raw,
    );
    set(&map, 1, target);
    let caller = load_raw(&counting(1), &map, ProgramType::Raw);
    let mut data = [5u8; 1];
    let out = caller
        .run(&mut RunInput {
            data: &mut data,
            budget: None,
        })
        .unwrap();
    assert_eq!(out.r0, 77 + 6);
    // An empty slot falls through with -ENOENT.
    let empty = load_raw(&counting(0), &map, ProgramType::Raw);
    let out = empty
        .run(&mut RunInput {
            data: &mut data,
            budget: None,
        })
        .unwrap();
    assert_eq!(out.r0, (-2i64) as u64);
}

#[test]
fn a_program_of_another_type_is_not_tail_called() {
    let map = prog_array(1);
    let xdp = load_raw(&prog![mov(0, 2), exit()], &map, ProgramType::Xdp);
    set(&map, 0, xdp);
    let caller = load_raw(&counting(0), &map, ProgramType::Raw);
    let out = caller
        .run(&mut RunInput {
            data: &mut [0u8; 1],
            budget: None,
        })
        .unwrap();
    assert_eq!(out.r0, (-22i64) as u64);
}

#[test]
fn a_tail_called_program_prints_to_its_own_log() {
    let map = prog_array(1);
    // Target: trace_printk("t\n", 3); return 5
    let target = load_raw(
        &prog![
            st(SIZE_W, 10, -8, 0x0a74), // "t\n\0"
            fp_plus(1, -8),
            mov(2, 3),
            call(6),
            mov(0, 5),
            exit()
        ],
        &map,
        ProgramType::Raw,
    );
    set(&map, 0, target.clone());
    let caller = load_raw(&counting(0), &map, ProgramType::Raw);
    let out = caller
        .run(&mut RunInput {
            data: &mut [0u8; 1],
            budget: None,
        })
        .unwrap();
    assert_eq!(out.r0, 5);
    assert_eq!(target.trace_log(), "t\n");
    assert_eq!(caller.trace_log(), "");
}

/// A tail call made through `callx` (the helper id in a register, here r5 = 12) reaches a program
/// with bpf-to-bpf calls, whose second frame must be on the stack the run exposes: the caller
/// has no local call and no `call 12`, so only `callx` tells the load that it may leave its
/// frame. The target's function writes and reads its own frame (r10 - 8 there is 512 bytes below
/// the caller's r10 - 8) and returns 40 + 2.
#[test]
fn a_tail_call_through_callx_exposes_the_frames_of_the_target() {
    for engine in [Engine::Interpreter, Engine::Jit] {
        let map = prog_array(1);
        let opts = || ProgramOptions {
            maps: vec![map.clone()],
            engine,
            ..options(ProgramType::Raw)
        };
        let target = Arc::new(
            load_with(
                &prog![
                    st(SIZE_DW, 10, -8, 40),
                    call_local(1),
                    exit(),
                    // The function: r0 = *(r10 - 8) of its own frame, after writing it.
                    st(SIZE_DW, 10, -8, 2),
                    ldx(SIZE_DW, 0, 10, -8),
                    exit(),
                ],
                opts(),
            )
            .unwrap(),
        );
        set(&map, 0, target);
        let caller = load_with(
            &prog![
                ld_map(2, 0),
                mov(3, 0),
                mov(5, 12),
                Insn::new(OP_CALLX, 5, 0, 0, 0),
                mov(0, 99),
                exit(),
            ],
            opts(),
        )
        .unwrap();
        assert_eq!(caller.engine(), engine);
        let out = caller
            .run(&mut RunInput {
                data: &mut [0u8; 1],
                budget: None,
            })
            .unwrap_or_else(|t| panic!("{engine:?}: {t:?}"));
        // The function returns 2; its caller's frame still holds 40 (not read back: r0 is the
        // function's result), so a wrong frame would have trapped, not changed r0.
        assert_eq!(out.r0, 2, "{engine:?}");
    }
}

#[test]
fn a_tail_called_tc_program_reads_the_packet_a_helper_moved() {
    // The first program makes 4 bytes of room in front (bpf_skb_change_head) and tail-calls the
    // second, whose LD_ABS of byte 4 must read the moved packet: the old first byte (0x21).
    let map = prog_array(1);
    let second = load_raw(&prog![ld_abs(SIZE_B, 4), exit()], &map, ProgramType::Tc);
    set(&map, 0, second);
    let first = load_raw(
        &prog![
            movr(6, 1),
            mov(2, 4),
            mov(3, 0),
            call(43),
            movr(1, 6),
            ld_map(2, 0),
            mov(3, 0),
            call(12),
            mov(0, 99),
            exit(),
        ],
        &map,
        ProgramType::Tc,
    );
    let mut pkt = vec![0x21u8; 60];
    let out = first
        .run(&mut RunInput {
            data: &mut pkt,
            budget: None,
        })
        .unwrap();
    assert_eq!(out.r0, 0x21);
}
