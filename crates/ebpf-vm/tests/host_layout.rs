//! The host's memory layout stays out of what a run reports (issue 11, section 5): trap messages
//! and `Trap::place` name addresses relative to the run's regions (`stack-520`, `data+70`,
//! `map 'counts' value+12`), never as host addresses; and a program that lets a host address out
//! (r0 at exit, words helpers copy out) is stopped unless it may leak pointers. Every case runs on
//! both engines, which must report the same trap. (Printed pointers: `helpers_trace.rs`.) And
//! the JIT writes none of the program's immediates into executable memory (constant blinding).

mod context_support;

use std::sync::{Arc, Mutex};

use context_support::*;
use ebpf_vm::error::Place;
use ebpf_vm::helpers::output::{PerfRecord, PerfSink};
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::Insn;
use ebpf_vm::maps::def::flags::BPF_ANY;
use ebpf_vm::maps::ringbuf::RingBuf;
use ebpf_vm::maps::{self, Map, MapDef, MapType};
use ebpf_vm::{
    ContextInput, Engine, ErrorCode, PointerLeaks, ProgramOptions, ProgramType, RunInput,
    RunOutput, Trap, TrapKind,
};

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
    // r2 = ctx->data (rewritten to the real pointer); a load at data + 3520, the first byte past
    // `data_hard_end` (256 bytes of headroom and 3,520 of linear room: run_state::xdp). One byte
    // past the frame, no other region can be nearer (another allocation starts at least a
    // malloc header further on); 4000 bytes on, the context could be, wherever the allocator
    // happened to put it (seen: `ctx-48`).
    let insns = prog![ldx(SIZE_W, 2, 1, 0), ldx(SIZE_B, 0, 2, 3520), exit()];
    check(
        "past the XDP frame",
        ProgramType::Xdp,
        &insns,
        Vec::new,
        64,
        None,
        (TrapKind::OutOfBounds, 1, place("data", 3520)),
        "load of 1 bytes at data+3520 is outside the program's memory",
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

#[test]
fn a_callx_to_an_address_names_its_place_not_the_address() {
    // callx r1 with r1 = r10 - 8, then with r1 = the data pointer (found by fuzz_engines: the
    // message printed the register as a number, a host address). A small number is no address
    // and is printed as it is.
    let cases = [
        (
            prog![fp_plus(1, -8), Insn::new(OP_CALLX, 1, 0, 0, 0), exit()],
            2,
            "stack-8",
        ),
        (prog![Insn::new(OP_CALLX, 1, 0, 0, 0), exit()], 0, "data+0"),
        (
            prog![mov(1, 100_000), Insn::new(OP_CALLX, 1, 0, 0, 0), exit()],
            1,
            "100000",
        ),
    ];
    for (insns, pc, what) in cases {
        for engine in ENGINES {
            let t = trap_of(
                engine,
                ProgramType::Raw,
                &insns,
                Vec::new(),
                &mut [0; 8],
                None,
            );
            assert_eq!(
                (t.kind, t.pc),
                (TrapKind::BadCallTarget, pc),
                "{engine:?}: {t}"
            );
            assert_eq!(
                t.message,
                format!("callx to {what}, which is not a helper"),
                "{engine:?}"
            );
        }
    }
}

// ---- pointer leaks -------------------------------------------------------------------------

/// One run of a raw program over `data` with `maps`, leaks refused or allowed.
fn run_raw(
    engine: Engine,
    insns: &[Insn],
    maps: Vec<Arc<dyn Map>>,
    leaks: PointerLeaks,
    data: &mut [u8],
) -> Result<RunOutput, Trap> {
    let p = load_with(
        insns,
        ProgramOptions {
            engine,
            maps,
            pointer_leaks: leaks,
            ..options(ProgramType::Raw)
        },
    )
    .expect("program loads");
    p.run(&mut RunInput { data, budget: None })
}

/// The leak trap of `insns` on both engines (the same on both), after checking that the same
/// program runs when it may leak pointers. Returns the trap of the last engine.
fn refused(insns: &[Insn], maps: impl Fn() -> Vec<Arc<dyn Map>>, data_len: usize) -> Trap {
    let mut traps = Vec::new();
    for engine in ENGINES {
        let mut data = vec![0u8; data_len];
        run_raw(engine, insns, maps(), PointerLeaks::Allow, &mut data).expect("allowed: runs");
        let t = run_raw(engine, insns, maps(), PointerLeaks::Refuse, &mut data).unwrap_err();
        assert_eq!(
            (t.kind, t.kind.code()),
            (TrapKind::PointerLeak, ErrorCode::Eacces)
        );
        assert!(!t.message.contains("0x"), "{}", t.message);
        traps.push(t);
    }
    let same = |t: &Trap| (t.pc, t.insn_count, t.place.clone(), t.message.clone());
    assert_eq!(same(&traps[0]), same(&traps[1]));
    traps.pop().unwrap()
}

fn leak_message(what: &str, at: &str) -> String {
    format!("{what} holds an address ({at}), and this program refuses pointer leaks")
}

#[test]
fn r0_holding_an_address_at_exit_is_refused() {
    // r0 = r10: the top of the stack, one past the end of its region.
    let t = refused(&prog![movr(0, 10), exit()], Vec::new, 0);
    assert_eq!((t.pc, t.insn_count, t.place), (1, 1, place("stack", 0)));
    assert_eq!(t.message, leak_message("r0 at exit", "stack+0"));
    // r0 = r1 + 64: one past the end of the data.
    let t = refused(&prog![movr(0, 1), add(0, 64), exit()], Vec::new, 64);
    assert_eq!((t.pc, t.place), (2, place("data", 64)));
    // Into the stack area below the frames the program can reach.
    let t = refused(&prog![movr(0, 10), add(0, -4000), exit()], Vec::new, 0);
    assert_eq!(t.place, place("stack", -4000));
    // A map handle.
    let counts =
        || vec![maps::create(MapDef::new(MapType::Array, 4, 8, 1).with_name("counts")).unwrap()];
    let t = refused(&prog![ld_map(0, 0), exit()], counts, 0);
    assert_eq!((t.pc, t.place.clone()), (2, None));
    assert_eq!(
        t.message,
        leak_message("r0 at exit", "a map handle, map 'counts'")
    );
    // The exit of the second of two exits names that one.
    let t = refused(
        &prog![mov(0, 0), ji(JMP_JEQ, 1, 0, 1), exit(), movr(0, 10), exit()],
        Vec::new,
        0,
    );
    assert_eq!(t.pc, 4);
    for engine in ENGINES {
        let no = PointerLeaks::Refuse;
        // A function may return an address to its caller: only the program's own exit counts.
        let call = prog![call_local(2), mov(0, 7), exit(), movr(0, 10), exit()];
        assert_eq!(run_raw(engine, &call, vec![], no, &mut []).unwrap().r0, 7);
        // Small values are not addresses; an empty input's r1 is 0.
        let r1 = prog![movr(0, 1), exit()];
        assert_eq!(run_raw(engine, &r1, vec![], no, &mut []).unwrap().r0, 0);
    }
}

/// `*(u64 *)(r10 - 16) = 5; *(u64 *)(r10 - 8) = r10; *(u32 *)(r10 - 20) = 0`, then
/// `call(map 0, &key at r10 - 20, &value at r10 - 16, ...)`: a value whose second word is r10.
fn copy_out_stack_pointer(call: Vec<Insn>) -> Vec<Insn> {
    let mut v = prog![
        st(SIZE_DW, 10, -16, 5),
        stx(SIZE_DW, 10, 10, -8),
        st(SIZE_W, 10, -20, 0),
    ];
    v.extend(call);
    v.extend(prog![mov(0, 0), exit()]);
    v
}

#[test]
fn map_updates_and_pushes_refuse_values_holding_addresses() {
    let counts = maps::create(MapDef::new(MapType::Array, 4, 16, 1).with_name("counts")).unwrap();
    let update = copy_out_stack_pointer(prog![
        ld_map(1, 0),
        fp_plus(2, -20),
        fp_plus(3, -16),
        mov(4, BPF_ANY as i32),
        call(2),
    ]);
    let t = refused(&update, || vec![counts.clone()], 0);
    // Nine instructions before the call at slot 10 (the lddw is one instruction in two slots).
    assert_eq!(
        (t.pc, t.insn_count, t.place.clone()),
        (10, 9, place("stack", 0))
    );
    assert_eq!(
        t.message,
        leak_message("bpf_map_update_elem: the value's word at +8", "stack+0")
    );
    // The refused update did not happen (the allowed runs of `refused` wrote the value; clear it).
    counts.update(&[0; 4], &[0; 16], BPF_ANY).unwrap();
    for engine in ENGINES {
        let r = run_raw(
            engine,
            &update,
            vec![counts.clone()],
            PointerLeaks::Refuse,
            &mut [],
        );
        assert_eq!(r.unwrap_err().kind, TrapKind::PointerLeak);
        assert_eq!(counts.lookup(&[0; 4]).unwrap(), vec![0; 16]);
    }
    let queue = || vec![maps::create(MapDef::new(MapType::Queue, 0, 16, 4)).unwrap()];
    let push = copy_out_stack_pointer(prog![ld_map(1, 0), fp_plus(2, -16), mov(3, 0), call(87)]);
    let t = refused(&push, queue, 0);
    assert_eq!(
        t.message,
        leak_message("bpf_map_push_elem: the value's word at +8", "stack+0")
    );
}

#[test]
fn output_helpers_refuse_records_holding_addresses() {
    // perf_event_output(ctx, map, BPF_F_CURRENT_CPU, r10 - 16, 16).
    let perf = copy_out_stack_pointer(prog![
        mov(2, 0),
        lddw(3, 0xffff_ffff),
        fp_plus(4, -16),
        mov(5, 16),
        call(25),
    ]);
    for engine in ENGINES {
        let got = Arc::new(Mutex::new(Vec::<PerfRecord>::new()));
        let g = got.clone();
        let p = load_with(
            &perf,
            ProgramOptions {
                engine,
                perf_sink: Some(PerfSink::new(move |r| g.lock().unwrap().push(r.clone()))),
                ..options(ProgramType::Tracing)
            },
        )
        .unwrap();
        let t = p
            .run_with_context(
                &mut RunInput::default(),
                &ContextInput {
                    ctx: Some(&[0; 8]),
                    ..ContextInput::default()
                },
            )
            .unwrap_err();
        assert_eq!((t.kind, t.pc), (TrapKind::PointerLeak, 9));
        assert_eq!(
            t.message,
            leak_message("bpf_perf_event_output: the record's word at +8", "stack+0")
        );
        assert!(got.lock().unwrap().is_empty(), "nothing delivered");
    }
    let events = || {
        vec![maps::create(MapDef::new(MapType::Ringbuf, 0, 0, 4096).with_name("events")).unwrap()]
    };
    // ringbuf_output(events, r10 - 16, 16, 0).
    let output = copy_out_stack_pointer(prog![
        ld_map(1, 0),
        fp_plus(2, -16),
        mov(3, 16),
        mov(4, 0),
        call(130)
    ]);
    let t = refused(&output, events, 0);
    assert_eq!(
        t.message,
        leak_message("bpf_ringbuf_output: the data's word at +8", "stack+0")
    );
    // r6 = ringbuf_reserve(events, 16, 0); r6[1] = r10; ringbuf_submit(r6, 0): refused, and the
    // record is discarded at the end of the run, not delivered.
    let submit = prog![
        ld_map(1, 0),
        mov(2, 16),
        mov(3, 0),
        call(131),
        ji(JMP_JEQ, 0, 0, 5),
        movr(6, 0),
        stx(SIZE_DW, 6, 10, 8),
        movr(1, 6),
        mov(2, 0),
        call(132),
        mov(0, 0),
        exit(),
    ];
    let t = refused(&submit, events, 0);
    assert_eq!(t.pc, 10);
    assert_eq!(
        t.message,
        leak_message("bpf_ringbuf_submit: the record's word at +8", "stack+0")
    );
    for engine in ENGINES {
        let ring = events();
        let r = run_raw(engine, &submit, ring.clone(), PointerLeaks::Refuse, &mut []);
        assert_eq!(r.unwrap_err().kind, TrapKind::PointerLeak);
        let rb = ring[0].as_any().downcast_ref::<RingBuf>().unwrap();
        assert_eq!(rb.consume(|_| ()), 0, "no record on {engine:?}");
    }
}

#[test]
fn trace_printk_refuses_addresses_printed_as_numbers() {
    // trace_printk("%d %s", 5, r10 - 8 ("ab")) prints; with r10 for %d it is refused.
    let printk = |first: Insn| {
        let mut v = stack_bytes(b"%d %s", -16);
        v.extend(stack_bytes(b"ab", -24));
        v.extend(prog![
            fp_plus(1, -16),
            mov(2, 6),
            first,
            fp_plus(4, -24),
            call(6),
            exit()
        ]);
        v
    };
    let t = refused(&printk(movr(3, 10)), Vec::new, 0);
    assert_eq!(
        t.message,
        leak_message(
            "bpf_trace_printk: argument 1 (printed as a number)",
            "stack+0"
        )
    );
    for engine in ENGINES {
        let ok = run_raw(
            engine,
            &printk(mov(3, 5)),
            vec![],
            PointerLeaks::Refuse,
            &mut [],
        );
        assert_eq!(ok.unwrap().r0, 4, "\"5 ab\" on {engine:?}");
    }
}

// ---- constant blinding -----------------------------------------------------------------------

/// Distinctive 32-bit immediates, one per kind of instruction that carries one.
const IMMS: [u32; 18] = [
    0x5a17_c0de,
    0x1337_beef,
    0x3c0f_fee1,
    0x2ead_0123,
    0x4f1e_5a1e,
    0x7a57_e000,
    0x600d_cafe,
    0x0bad_f00d,
    0x2bad_2bad,
    0x4ead_4ead,
    0x0d15_ea5e,
    0x7a11_ed00,
    0x51de_5ea7,
    0x7e57_c0de,
    0x5d00_dfee,
    0x3ead_0123,
    0x6a5e_1234,
    0x4c00_c0de,
];

/// A program that uses each of `IMMS` in another way (it is compiled, not run).
fn immediates() -> Vec<Insn> {
    let k = |n: usize| IMMS[n] as i32;
    let alu = |op: u8, imm: i32| Insn::new(CLASS_ALU | op | SRC_K, 0, 0, 0, imm);
    prog![
        mov(0, k(0)),
        Insn::new(CLASS_ALU | ALU_MOV | SRC_K, 2, 0, 0, k(1)),
        add(0, k(2)),
        alu(ALU_SUB, k(3)),
        Insn::new(CLASS_ALU64 | ALU_OR | SRC_K, 0, 0, 0, k(4)),
        alu(ALU_XOR, k(5)),
        Insn::new(CLASS_ALU64 | ALU_MUL | SRC_K, 0, 0, 0, k(6)),
        Insn::new(CLASS_ALU64 | ALU_DIV | SRC_K, 0, 0, 0, k(7)),
        st(SIZE_W, 10, -8, k(8)),
        st(SIZE_DW, 10, -16, k(9)),
        ji(JMP_JEQ, 0, k(10), 0),
        ji(JMP_JSET, 0, k(11), 0),
        Insn::new(CLASS_JMP32 | JMP_JLT | SRC_K, 0, 0, 0, k(12)),
        lddw(3, (IMMS[13] as u64) << 32 | IMMS[14] as u64),
        Insn::new(CLASS_LD | MODE_ABS | SIZE_W, 0, 0, 0, k(15)),
        // A counted loop whose bound is an immediate (the fast-loop check at its head uses it),
        // and `r5 = r1; r5 += imm` (one `lea` when not blinded).
        mov(2, 0),
        movr(3, 1),
        addr(3, 2),
        ldx(SIZE_B, 4, 3, 0),
        add(2, 1),
        ji(JMP_JLT, 2, k(17), -5),
        movr(5, 1),
        add(5, k(16)),
        exit(),
    ]
}

/// Offsets in `code` where the little-endian bytes of `imm` lie.
fn find(code: &[u8], imm: u32) -> Vec<usize> {
    let want = imm.to_le_bytes();
    code.windows(4)
        .enumerate()
        .filter(|(_, w)| *w == want)
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn constant_blinding_keeps_the_programs_immediates_out_of_the_code() {
    use ebpf_vm::jit::{JitOptions, JitProgram};
    let insns = ebpf_vm::isa::validate(&ebpf_vm::isa::encode_all(&immediates()), &|_| true)
        .expect("valid program");
    let code = |blind_constants| {
        let jit = JitProgram::compile_with(
            &insns,
            JitOptions {
                blind_constants,
                coverage: None,
                meter: true,
            },
        )
        .unwrap();
        // SAFETY: the code of a live program, `code_len` bytes at `code_ptr`.
        unsafe { std::slice::from_raw_parts(jit.code_ptr(), jit.code_len()) }.to_vec()
    };
    let plain = code(false);
    for imm in IMMS {
        assert!(
            !find(&plain, imm).is_empty(),
            "{imm:#x} is in the code without blinding"
        );
    }
    // The loop bound is in the fast loop's head check, the ordinary chain's jump and the two jumps
    // of the unrolled fast copy: the head check (which blinding covers too) is there.
    assert_eq!(find(&plain, IMMS[17]).len(), 4);
    // Two compilations draw different keys; neither has any immediate.
    let (a, b) = (code(true), code(true));
    assert_ne!(a, b);
    for blinded in [a, b] {
        for imm in IMMS {
            assert_eq!(find(&blinded, imm), vec![], "{imm:#x} in blinded code");
        }
    }
    // Constants of one chosen byte (-256..=255, all-ones masks) are left as they are (sbpf's rule):
    // with nothing else, blinded code is the plain code.
    let small = prog![
        mov(0, 1),
        add(0, -256),
        Insn::new(CLASS_ALU | ALU_AND | SRC_K, 0, 0, 0, 0xffff),
        st(SIZE_W, 10, -4, 255),
        ji(JMP_JGT, 0, 64, 0),
        lddw(1, u64::MAX),
        exit(),
    ];
    let small = ebpf_vm::isa::validate(&ebpf_vm::isa::encode_all(&small), &|_| true).unwrap();
    let small_code = |blind_constants| {
        let jit = JitProgram::compile_with(
            &small,
            JitOptions {
                blind_constants,
                coverage: None,
                meter: true,
            },
        )
        .unwrap();
        // SAFETY: as above.
        unsafe { std::slice::from_raw_parts(jit.code_ptr(), jit.code_len()) }.to_vec()
    };
    assert_eq!(small_code(true), small_code(false));
    // The default is blinded, for `Program` as for `JitProgram::compile`.
    let default = JitProgram::compile(&insns).unwrap();
    // SAFETY: as above.
    let bytes = unsafe { std::slice::from_raw_parts(default.code_ptr(), default.code_len()) };
    assert!(IMMS.iter().all(|&imm| find(bytes, imm).is_empty()));
    assert!(ProgramOptions::default().blind_constants);
}

/// Blinded and plain code compute the same: the immediates of `immediates()` applied to data,
/// on a program that runs (the conformance suite and the differential test cover the rest).
#[test]
fn blinded_code_computes_what_plain_code_computes() {
    // Every ALU and JMP immediate form, the stores, lddw and a division, folded into r0.
    let insns = prog![
        mov(0, IMMS[0] as i32),
        add(0, IMMS[2] as i32),
        Insn::new(CLASS_ALU64 | ALU_MUL | SRC_K, 0, 0, 0, IMMS[6] as i32),
        Insn::new(CLASS_ALU | ALU_XOR | SRC_K, 0, 0, 0, IMMS[5] as i32),
        Insn::new(CLASS_ALU64 | ALU_LSH | SRC_K, 0, 0, 0, 13),
        Insn::new(CLASS_ALU64 | ALU_MOD | SRC_K, 0, 0, 0, IMMS[7] as i32),
        st(SIZE_DW, 10, -16, IMMS[9] as i32),
        st(SIZE_H, 10, -2, 0x1234),
        ldx(SIZE_DW, 1, 10, -16),
        addr(0, 1),
        ldx(SIZE_H, 1, 10, -2),
        addr(0, 1),
        lddw(1, 0x7e57_c0de_5d00_dfee),
        Insn::new(CLASS_ALU64 | ALU_XOR | SRC_X, 0, 1, 0, 0),
        ji(JMP_JSET, 0, 1, 1),
        add(0, 7),
        Insn::new(CLASS_JMP32 | JMP_JSGT | SRC_K, 0, 0, 1, -5),
        add(0, 11),
        exit(),
    ];
    let run = |engine, blind_constants| {
        let p = load_with(
            &insns,
            ProgramOptions {
                engine,
                blind_constants,
                ..options(ProgramType::Raw)
            },
        )
        .unwrap();
        p.run(&mut RunInput::default()).unwrap().r0
    };
    let want = run(Engine::Interpreter, true);
    assert_eq!(run(Engine::Jit, true), want);
    assert_eq!(run(Engine::Jit, false), want);
}
