//! The host's memory layout stays out of what a run reports (issue 11, section 5): trap messages
//! and `Trap::place` name addresses relative to the run's regions (`stack-520`, `data+70`,
//! `map 'counts' value+12`), never as host addresses. Every case runs on both engines, which must
//! report the same place and message. (Printed pointers: `helpers_trace.rs`.)

mod context_support;

use std::sync::Arc;

use context_support::*;
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::Insn;
use ebpf_vm::maps::{self, Map, MapDef, MapType};
use ebpf_vm::places::Place;
use ebpf_vm::{ContextInput, Engine, ProgramOptions, ProgramType, RunInput, Trap, TrapKind};

const ENGINES: [Engine; 2] = [Engine::Interpreter, Engine::Jit];

fn ld_map(dst: u8, index: i32) -> [Insn; 2] {
    [
        Insn::new(OP_LDDW, dst, PSEUDO_MAP_IDX, 0, index),
        Insn::new(0, 0, 0, 0, 0),
    ]
}

/// The trap of one run of `insns` on `engine`.
fn trap_of(
    engine: Engine,
    prog_type: ProgramType,
    insns: &[Insn],
    maps: Vec<Arc<dyn Map>>,
    data: &mut [u8],
    ctx: Option<&[u8]>,
) -> Trap {
    let p = load_with(
        insns,
        ProgramOptions {
            engine,
            maps,
            ..options(prog_type)
        },
    )
    .expect("program loads");
    p.run_with_context(
        &mut RunInput { data, budget: None },
        &ContextInput {
            ctx,
            ..ContextInput::default()
        },
    )
    .expect_err("program traps")
}

fn place(region: &str, offset: i64) -> Option<Place> {
    Some(Place {
        region: region.into(),
        offset,
    })
}

/// Runs a case on both engines and checks what both report.
#[allow(clippy::too_many_arguments)]
fn check(
    what: &str,
    prog_type: ProgramType,
    insns: &[Insn],
    maps: impl Fn() -> Vec<Arc<dyn Map>>,
    data_len: usize,
    ctx: Option<&[u8]>,
    want: (TrapKind, usize, Option<Place>),
    message: &str,
) {
    for engine in ENGINES {
        let mut data = vec![0u8; data_len];
        let t = trap_of(engine, prog_type, insns, maps(), &mut data, ctx);
        assert_eq!(
            (t.kind, t.pc, t.place.clone()),
            want,
            "{what} on {engine:?}: {t}"
        );
        assert_eq!(t.message, message, "{what} on {engine:?}");
        assert!(!t.message.contains("0x"), "{what}: {}", t.message);
    }
}

#[test]
fn memory_traps_name_the_region_and_offset() {
    let none = Vec::new;
    check(
        "past the end of the data",
        ProgramType::Raw,
        &prog![ldx(SIZE_B, 0, 1, 70), exit()],
        none,
        64,
        None,
        (TrapKind::OutOfBounds, 0, place("data", 70)),
        "load of 1 bytes at data+70 is outside the program's memory",
    );
    check(
        "below the one frame of a program without calls",
        ProgramType::Raw,
        &prog![ldx(SIZE_DW, 0, 10, -520), exit()],
        none,
        0,
        None,
        (TrapKind::OutOfBounds, 0, place("stack", -520)),
        "load of 8 bytes at stack-520 is outside the program's memory",
    );
    check(
        "a store into the read-only context of a tracing program",
        ProgramType::Tracing,
        &prog![st(SIZE_W, 1, 12, 1), mov(0, 0), exit()],
        none,
        0,
        Some(&[0u8; 16]),
        (TrapKind::ReadOnly, 0, place("ctx", 12)),
        "store of 4 bytes at ctx+12 into read-only memory",
    );
    check(
        "a misaligned atomic add on the stack",
        ProgramType::Raw,
        &prog![
            mov(1, 1),
            Insn::new(CLASS_STX | MODE_ATOMIC | SIZE_DW, 10, 1, -12, ATOMIC_ADD),
            exit()
        ],
        none,
        0,
        None,
        (TrapKind::Misaligned, 1, place("stack", -12)),
        "misaligned atomic store of 8 bytes at stack-12",
    );
    check(
        "a NULL map value read at offset 8",
        ProgramType::Raw,
        &prog![mov(1, 0), ldx(SIZE_DW, 0, 1, 8), exit()],
        none,
        0,
        None,
        (TrapKind::OutOfBounds, 1, place("null", 8)),
        "load of 8 bytes at null+8 is outside the program's memory",
    );
    check(
        "an address far from every region",
        ProgramType::Raw,
        &prog![lddw(1, 0x1234_5678_9abc), ldx(SIZE_B, 0, 1, 0), exit()],
        none,
        0,
        None,
        (TrapKind::OutOfBounds, 2, None),
        "load of 1 bytes at an address outside every region of the run",
    );
}

#[test]
fn map_values_and_ring_buffer_records_are_named_after_their_map() {
    let counts =
        || vec![maps::create(MapDef::new(MapType::Array, 4, 8, 1).with_name("counts")).unwrap()];
    // r0 = lookup(counts, &0); r0 = *(u64 *)(r0 + 12): 4 bytes past the 8-byte value.
    let lookup = prog![
        st(SIZE_W, 10, -4, 0),
        ld_map(1, 0),
        fp_plus(2, -4),
        call(1),
        ji(JMP_JEQ, 0, 0, 1),
        ldx(SIZE_DW, 0, 0, 12),
        exit(),
    ];
    check(
        "a load past a map value",
        ProgramType::Raw,
        &lookup,
        counts,
        0,
        None,
        (TrapKind::OutOfBounds, 7, place("map 'counts' value", 12)),
        "load of 8 bytes at map 'counts' value+12 is outside the program's memory",
    );
    let events = || {
        vec![maps::create(MapDef::new(MapType::Ringbuf, 0, 0, 4096).with_name("events")).unwrap()]
    };
    // r0 = ringbuf_reserve(events, 8, 0); *(u32 *)(r0 + 6) = 1: across the record's end.
    let reserve = prog![
        ld_map(1, 0),
        mov(2, 8),
        mov(3, 0),
        call(131),
        ji(JMP_JEQ, 0, 0, 1),
        st(SIZE_W, 0, 6, 1),
        exit(),
    ];
    check(
        "a store across the end of a ring buffer record",
        ProgramType::Raw,
        &reserve,
        events,
        0,
        None,
        (
            TrapKind::OutOfBounds,
            6,
            place("ringbuf 'events' record", 6),
        ),
        "store of 4 bytes at ringbuf 'events' record+6 is outside the program's memory",
    );
}

#[test]
fn xdp_data_places_count_from_where_data_points() {
    // r2 = ctx->data (rewritten to the real pointer); a load 4000 bytes on, past the frame.
    let insns = prog![ldx(SIZE_W, 2, 1, 0), ldx(SIZE_B, 0, 2, 4000), exit()];
    check(
        "past the XDP frame",
        ProgramType::Xdp,
        &insns,
        Vec::new,
        64,
        None,
        (TrapKind::OutOfBounds, 1, place("data", 4000)),
        "load of 1 bytes at data+4000 is outside the program's memory",
    );
}

#[test]
fn helper_errors_name_places_too() {
    // trace_printk(fmt = r10 - 600, 4): below the program's one frame.
    let insns = prog![fp_plus(1, -600), mov(2, 4), call(6), exit()];
    for engine in ENGINES {
        let t = trap_of(engine, ProgramType::Raw, &insns, Vec::new(), &mut [], None);
        assert_eq!(
            (t.kind, t.pc, t.place.clone()),
            (TrapKind::HelperError, 3, None)
        );
        assert_eq!(
            t.message,
            "helper 6 (bpf_trace_printk) failed: fmt (stack-600, 4 bytes) is not readable memory"
        );
    }
}
