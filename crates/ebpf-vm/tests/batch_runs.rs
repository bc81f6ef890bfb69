//! Batches (`Program::run_batch`) and repeated test runs share one run space (stack, region and
//! map tables, context buffer, XDP frame) across their runs. Each run must still see memory as
//! fresh as a single run's: these programs read what the previous run of the batch wrote (stack,
//! XDP frame beyond the packet, socket filter `cb[]`, map value access without a lookup) and
//! dirty it again, and every packet's outcome must equal a single run's on both engines.

mod context_support;
mod random_programs;
mod rng;

use context_support::*;
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::Insn;
use ebpf_vm::maps::{self, MapDef, MapType};
use ebpf_vm::{
    BatchInput, ContextInput, ContextOutput, Engine, ErrorCode, Program, ProgramOptions,
    ProgramType, RunInput, RunOutput, TestRunInput, Trap,
};

const ENGINES: [Engine; 2] = [Engine::Interpreter, Engine::Jit];

fn load_on(insns: &[Insn], prog_type: ProgramType, engine: Engine) -> Program {
    load_with(
        insns,
        ProgramOptions {
            prog_type,
            engine,
            ..ProgramOptions::default()
        },
    )
    .expect("program loads")
}

/// An XDP program loaded in mode verified on `engine`, with `maps`.
fn load_verified_xdp(
    insns: &[Insn],
    engine: Engine,
    maps: Vec<std::sync::Arc<dyn maps::Map>>,
) -> Program {
    load_with(
        insns,
        ProgramOptions {
            prog_type: ProgramType::Xdp,
            engine,
            mode: ebpf_vm::Mode::Verified,
            maps,
            ..ProgramOptions::default()
        },
    )
    .expect("the verifier accepts it")
}

type Outcome = Result<(RunOutput, ContextOutput), Trap>;

/// Each packet run alone and all of them as one batch: the outcomes and the data left must agree
/// packet by packet; the lean form (`r0_only`) gives the same outputs and traps.
fn batch_equals_single_runs(p: &Program, packets: &[Vec<u8>], wire: Option<&[u32]>) -> Vec<u64> {
    let lengths: Vec<u32> = packets.iter().map(|d| d.len() as u32).collect();
    let all: Vec<u8> = packets.concat();
    let mut batch: Vec<(Outcome, Vec<u8>)> = Vec::new();
    let input = BatchInput {
        packets: &all,
        lengths: &lengths,
        wire_lengths: wire,
        ..BatchInput::default()
    };
    let summary = p
        .run_batch(&input, |run| batch.push((run.result, run.data.to_vec())))
        .expect("lengths add up");
    assert_eq!(summary.runs, packets.len());
    let mut r0s = Vec::new();
    let mut singles = Vec::new();
    for (i, (packet, (outcome, data))) in packets.iter().zip(batch).enumerate() {
        let mut alone = packet.clone();
        let image = wire.map(|w| w[i].to_le_bytes());
        let single = p.run_with_context(
            &mut RunInput {
                data: &mut alone,
                budget: None,
            },
            &ContextInput {
                ctx: image
                    .as_ref()
                    .filter(|_| wire.unwrap()[i] > packet.len() as u32)
                    .map(|b| &b[..]),
                ..ContextInput::default()
            },
        );
        assert_eq!(
            outcome, single,
            "packet {i}: the batch's run differs from a single run"
        );
        assert_eq!(data, alone, "packet {i}: data left");
        singles.push(single.map(|(out, _)| out));
        // A trap as u64::MAX (no test expects that r0).
        r0s.push(outcome.map_or(u64::MAX, |(out, _)| out.r0));
    }
    assert_eq!(lean_runs(p, &input), singles, "the lean form");
    r0s
}

/// The outcomes of `input` run in the lean form (`r0_only`: helper-free socket filters run
/// straight, `Program::run_straight`), with the packets back to back as given and again placed
/// apart in one buffer (`offsets`, 16 bytes of 0xee before each, as a capture's record headers):
/// both must agree.
fn lean_runs(p: &Program, input: &BatchInput<'_>) -> Vec<Result<RunOutput, Trap>> {
    let mut spaced = Vec::new();
    let mut offsets = Vec::new();
    let mut at = 0;
    for &len in input.lengths {
        spaced.extend_from_slice(&[0xee; 16]);
        offsets.push(spaced.len());
        spaced.extend_from_slice(&input.packets[at..at + len as usize]);
        at += len as usize;
    }
    let run = |packets: &[u8], offsets: Option<&[usize]>| {
        let mut lean = Vec::new();
        p.run_batch(
            &BatchInput {
                packets,
                offsets,
                r0_only: true,
                ..input.clone()
            },
            |run| lean.push(run.result.map(|(out, _)| out)),
        )
        .unwrap();
        lean
    };
    let together = run(input.packets, None);
    assert_eq!(run(&spaced, Some(&offsets)), together, "packets apart");
    together
}

/// XDP in checked mode: returns 2 (XDP_PASS) plus the stack word at r10 - 8 and the frame byte
/// 100 bytes past `data` (beyond a 64-byte packet, inside the frame's writable region), both
/// zero in fresh memory; then writes both and the packet's first byte.
fn xdp_dirtying() -> Vec<Insn> {
    prog![
        ldx(SIZE_W, 2, 1, 0),
        ldx(SIZE_DW, 3, 10, -8),
        ldx(SIZE_B, 4, 2, 100),
        mov(0, 2),
        addr(0, 3),
        addr(0, 4),
        st(SIZE_DW, 10, -8, 0x55),
        st(SIZE_B, 2, 100, 0xaa),
        st(SIZE_B, 2, 0, 0x77),
        exit(),
    ]
}

fn packets(n: usize, len: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| (0..len).map(|k| (i * 31 + k) as u8).collect())
        .collect()
}

#[test]
fn an_xdp_batch_reuses_its_frame_and_stack_without_showing_one_packet_to_the_next() {
    for engine in ENGINES {
        let p = load_on(&xdp_dirtying(), ProgramType::Xdp, engine);
        let r0s = batch_equals_single_runs(&p, &packets(5, 64), None);
        assert_eq!(r0s, vec![2; 5], "{engine:?}");
        // Packets of other lengths in one batch: a longer one first leaves bytes a shorter one
        // must not see.
        let mixed = vec![
            vec![1u8; 300],
            vec![2u8; 60],
            vec![3u8; 3600],
            vec![4u8; 14],
        ];
        let r0s = batch_equals_single_runs(&p, &mixed, None);
        assert_eq!(r0s[1], 2, "{engine:?}");
    }
}

#[test]
fn a_socket_filter_batch_starts_each_packet_with_a_fresh_context() {
    // r0 = cb[0] (0 in a fresh context) + skb->len; then cb[0] = 9.
    let insns = prog![
        ldx(SIZE_W, 2, 1, 48),
        ldx(SIZE_W, 0, 1, 0),
        addr(0, 2),
        st(SIZE_W, 1, 48, 9),
        exit(),
    ];
    for engine in ENGINES {
        let p = load_on(&insns, ProgramType::SocketFilter, engine);
        let pk = packets(4, 60);
        assert_eq!(
            batch_equals_single_runs(&p, &pk, None),
            vec![60; 4],
            "{engine:?}"
        );
        // Wire lengths above the packet's are `len`; the others leave it the packet's.
        let wire = [60, 1500, 10, 70];
        assert_eq!(
            batch_equals_single_runs(&p, &pk, Some(&wire)),
            vec![60, 1500, 60, 70],
            "{engine:?}"
        );
    }
}

#[test]
fn a_helper_free_socket_filter_runs_straight_as_single_runs_do() {
    // r0 = cb[1] + the stack word at r10 - 16 (both 0 in fresh memory) + skb->len + protocol +
    // the packet's first byte read directly (a trap on an empty packet: past data_end, unchecked)
    // + LD_ABS half at 12 (an end of the run with r0 = 0 on a packet shorter than 14 bytes); then
    // cb[1] and the stack word are dirtied for the next packet.
    let insns = prog![
        movr(6, 1),
        ldx(SIZE_W, 7, 1, 52),
        ldx(SIZE_DW, 8, 10, -16),
        addr(7, 8),
        ldx(SIZE_W, 8, 1, 0),
        addr(7, 8),
        ldx(SIZE_W, 8, 1, 16),
        addr(7, 8),
        ldx(SIZE_W, 2, 6, 76),
        ldx(SIZE_B, 3, 2, 0),
        addr(7, 3),
        ld_abs(SIZE_H, 12),
        addr(7, 0),
        st(SIZE_W, 6, 52, 7),
        st(SIZE_DW, 10, -16, 1000),
        movr(0, 7),
        exit(),
    ];
    // Returns r1 (the context's address) when the first byte is 0xff: refused as a pointer leak.
    let leaking = prog![
        ldx(SIZE_W, 2, 1, 76),
        ldx(SIZE_B, 3, 2, 0),
        mov(0, 1),
        ji(JMP_JNE, 3, 0xff, 1),
        movr(0, 1),
        exit(),
    ];
    let pk = vec![
        vec![0u8; 60],
        (0..20).collect(),
        vec![0xffu8; 9],
        Vec::new(),
        (0..80).collect(),
        vec![7u8; 1],
    ];
    for engine in ENGINES {
        let p = load_on(&insns, ProgramType::SocketFilter, engine);
        let lengths: Vec<u32> = pk.iter().map(|d| d.len() as u32).collect();
        let wire = [60, 1500, 10, 0, 70, 2];
        let all = pk.concat();
        for wire in [None, Some(&wire[..])] {
            batch_equals_single_runs(&p, &pk, wire);
        }
        let lean = lean_runs(
            &p,
            &BatchInput {
                packets: &all,
                lengths: &lengths,
                ..BatchInput::default()
            },
        );
        // 60 + 0 (LD_ABS of a zero ethertype) + 0; 20 + 0x0c0d + 0x0d0c (protocol as stored) + 0.
        assert_eq!(lean[0].as_ref().map(|o| o.r0), Ok(60), "{engine:?}");
        assert_eq!(
            lean[1].as_ref().map(|o| o.r0),
            Ok(20 + 0x0c0d + 0x0d0c),
            "{engine:?}"
        );
        assert_eq!(
            lean[2].as_ref().map(|o| o.r0),
            Ok(0),
            "{engine:?}: LD_ABS past the end"
        );
        assert!(lean[3].is_err(), "{engine:?}: a load past an empty packet");
        // A budget too small, and the pointer leak, as single runs give them.
        let small = BatchInput {
            packets: &all,
            lengths: &lengths,
            budget: Some(5),
            ..BatchInput::default()
        };
        assert!(
            lean_runs(&p, &small).iter().all(Result::is_err),
            "{engine:?}"
        );
        let leak = load_on(&leaking, ProgramType::SocketFilter, engine);
        batch_equals_single_runs(&leak, &[vec![1u8; 4], vec![0xffu8; 4], vec![2u8; 4]], None)
            .into_iter()
            .for_each(drop);
    }
}

#[test]
fn a_map_value_is_reachable_only_in_the_run_that_looked_it_up() {
    // Packet byte 0 non-zero: look key 0 up. Every packet then stores through the value's
    // address (fixed: the map's value area), which a run that did not look it up must not reach
    // although an earlier run of the batch did.
    let array = maps::create(MapDef::new(MapType::Array, 4, 8, 1)).unwrap();
    let value = array.value_area().expect("an array has a value area").0;
    let insns = prog![
        ldx(SIZE_B, 6, 1, 0),
        ji(JMP_JEQ, 6, 0, 6),
        st(SIZE_W, 10, -4, 0),
        ld_map(1, 0),
        movr(2, 10),
        add(2, -4),
        call(1),
        lddw(1, value),
        st(SIZE_DW, 1, 0, 1),
        mov(0, 7),
        exit(),
    ];
    for engine in ENGINES {
        let p = load_with(
            &insns,
            ProgramOptions {
                engine,
                maps: vec![array.clone()],
                ..ProgramOptions::default()
            },
        )
        .unwrap();
        let packets = [vec![1u8; 8], vec![0u8; 8], vec![1u8; 8]];
        let lengths = [8u32, 8, 8];
        let all = packets.concat();
        let mut outcomes = Vec::new();
        p.run_batch(
            &BatchInput {
                packets: &all,
                lengths: &lengths,
                ..BatchInput::default()
            },
            |run| outcomes.push(run.result.map(|(o, _)| o.r0).map_err(|t| t.kind)),
        )
        .unwrap();
        assert!(
            outcomes[0].is_ok() && outcomes[2].is_ok(),
            "{engine:?}: {outcomes:?}"
        );
        assert_eq!(
            outcomes[1],
            Err(ebpf_vm::TrapKind::OutOfBounds),
            "{engine:?}: the second packet did not look the value up"
        );
    }
}

#[test]
fn repeated_test_runs_start_from_fresh_memory_and_keep_the_last_output() {
    for engine in ENGINES {
        let p = load_on(&xdp_dirtying(), ProgramType::Xdp, engine);
        let data: Vec<u8> = (0..64).collect();
        let once = p.test_run(&TestRunInput {
            data: data.clone(),
            repeat: 1,
            ..TestRunInput::default()
        });
        let many = p.test_run(&TestRunInput {
            data,
            repeat: 50,
            ..TestRunInput::default()
        });
        assert_eq!(many.result, Ok(2), "{engine:?}");
        assert_eq!(
            (
                many.result,
                many.insn_count,
                &many.data,
                &many.ctx,
                &many.meta
            ),
            (
                once.result,
                once.insn_count,
                &once.data,
                &once.ctx,
                &once.meta
            ),
            "{engine:?}"
        );
        assert_eq!(many.data[0], 0x77);
    }
}

#[test]
fn lengths_that_do_not_add_up_are_einval() {
    let p = load_on(
        &prog![mov(0, 0), exit()],
        ProgramType::Raw,
        Engine::Interpreter,
    );
    let err = p
        .run_batch(
            &BatchInput {
                packets: &[0u8; 10],
                lengths: &[4, 4],
                ..BatchInput::default()
            },
            |_| {},
        )
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Einval);
    let err = p
        .run_batch(
            &BatchInput {
                packets: &[0u8; 8],
                lengths: &[4, 4],
                wire_lengths: Some(&[1]),
                ..BatchInput::default()
            },
            |_| {},
        )
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Einval);
    // Offsets: one per packet, each packet inside the buffer.
    for offsets in [&[0usize][..], &[0, 7]] {
        let err = p
            .run_batch(
                &BatchInput {
                    packets: &[0u8; 10],
                    lengths: &[4, 4],
                    offsets: Some(offsets),
                    ..BatchInput::default()
                },
                |_| {},
            )
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::Einval, "{offsets:?}");
    }
}

#[test]
fn a_raw_batch_runs_each_packet_on_its_own_writable_copy() {
    // data[0] += data[1]; r0 = data[0] (the caller's packets stay as they were).
    let insns = prog![
        ldx(SIZE_B, 2, 1, 0),
        ldx(SIZE_B, 3, 1, 1),
        addr(2, 3),
        stx(SIZE_B, 1, 2, 0),
        movr(0, 2),
        exit(),
    ];
    for engine in ENGINES {
        let p = load_on(&insns, ProgramType::Raw, engine);
        let pk = packets(4, 16);
        let r0s = batch_equals_single_runs(&p, &pk, None);
        let expected: Vec<u64> = pk
            .iter()
            .map(|d| (d[0].wrapping_add(d[1])) as u64)
            .collect();
        assert_eq!(r0s, expected, "{engine:?}");
    }
}

#[test]
fn a_verified_xdp_batch_zeroes_only_what_the_packets_touched_and_shows_nothing_stale() {
    // Verified: stores into the packet (bytes 0-7 and 20), r0 = 2 + its bytes 8-15.
    let insns = prog![
        ldx(SIZE_W, 2, 1, 0),
        ldx(SIZE_W, 3, 1, 4),
        movr(4, 2),
        add(4, 24),
        jr(JMP_JGT, 4, 3, 6),
        ldx(SIZE_DW, 5, 2, 8),
        st(SIZE_DW, 2, 0, -1),
        st(SIZE_B, 2, 20, 0x5a),
        mov(0, 2),
        addr(0, 5),
        exit(),
        mov(0, 1),
        exit(),
    ];
    for engine in ENGINES {
        let verified = load_verified_xdp(&insns, engine, Vec::new());
        let mixed = vec![
            vec![0u8; 200],
            vec![0u8; 64],
            vec![0u8; 1500],
            vec![1u8; 14],
        ];
        let r0s = batch_equals_single_runs(&verified, &mixed, None);
        assert_eq!(r0s, vec![2, 2, 2, 1], "{engine:?}");
        // The frame goes from one program to the next on this thread: a checked program, which
        // can read the whole frame, must find it zero past its packet after the verified
        // program's 1,500 bytes (zeroed as touched), and after its own stores out there (zeroed
        // whole, as a checked program's stores are not proved).
        let checked = load_on(&xdp_dirtying(), ProgramType::Xdp, engine);
        for _ in 0..3 {
            // r0 = 2 + 0x0303030303030303 (the packet's bytes 8-15).
            let r = r0(&verified, &mut [3u8; 1500], None);
            assert_eq!(r, 0x0303_0303_0303_0305, "{engine:?}");
            assert_eq!(r0(&checked, &mut [0u8; 64], None), 2, "{engine:?}");
            assert_eq!(r0(&checked, &mut [0u8; 64], None), 2, "{engine:?}");
        }
    }
}

#[test]
fn a_verified_xdp_batch_moves_the_packet_and_counts_in_a_map_as_single_runs_do() {
    // Verified, on one set-up per batch (`program/xdp_batch.rs`): moves the head 4 bytes down,
    // takes 8 bytes of metadata and grows the tail by 8 (the helpers that change the packet),
    // then r0 = 2 + the metadata word + the packet's first word (4 headroom bytes and the old
    // first bytes: zero bytes and the packet's, in fresh memory) and dirties both; a lookup in an
    // array map and an atomic add on its value (the value area stands for the whole batch).
    let counter = maps::create(MapDef::new(MapType::Array, 4, 8, 2)).unwrap();
    let insns = prog![
        movr(6, 1),
        movr(1, 6),
        mov(2, -4),
        call(44),
        movr(1, 6),
        mov(2, -8),
        call(54),
        movr(1, 6),
        mov(2, 8),
        call(65),
        ldx(SIZE_W, 2, 6, 0),
        ldx(SIZE_W, 3, 6, 4),
        ldx(SIZE_W, 4, 6, 8),
        movr(5, 4),
        add(5, 8),
        jr(JMP_JGT, 5, 2, 20),
        ldx(SIZE_DW, 7, 4, 0),
        st(SIZE_DW, 4, 0, -1),
        movr(5, 2),
        add(5, 8),
        jr(JMP_JGT, 5, 3, 15),
        ldx(SIZE_W, 8, 2, 0),
        st(SIZE_W, 2, 0, -1),
        addr(7, 8),
        st(SIZE_W, 10, -4, 1),
        ld_map(1, 0),
        movr(2, 10),
        add(2, -4),
        call(1),
        ji(JMP_JEQ, 0, 0, 5),
        mov(1, 1),
        Insn::new(CLASS_STX | SIZE_DW | MODE_ATOMIC, 0, 1, 0, ATOMIC_ADD),
        mov(0, 2),
        addr(0, 7),
        exit(),
        mov(0, 1),
        exit(),
    ];
    for engine in ENGINES {
        let p = load_verified_xdp(&insns, engine, vec![counter.clone()]);
        let mixed = vec![
            vec![0x11u8; 64],
            vec![0x22u8; 14],
            vec![0x33u8; 3520],
            vec![0x44u8; 60],
            vec![0x55u8; 64],
        ];
        let r0s = batch_equals_single_runs(&p, &mixed, None);
        // The metadata word and the first word (the 4 headroom bytes the head moved over) are
        // zero in fresh memory, though the run before wrote both.
        assert_eq!(r0s, vec![2; 5], "{engine:?}");
    }
    // Every run counted: three rounds (batch, single runs, lean batches: back to back and apart)
    // of five packets, on each engine.
    let count = counter.lookup_elem(&1u32.to_le_bytes()).unwrap();
    assert_eq!(u64::from_le_bytes(count.try_into().unwrap()), 2 * 4 * 5);
}

#[test]
fn an_unmetered_xdp_batch_is_not_stopped_by_the_budget_as_a_single_run_is_not() {
    // Verified, so unmetered: r2 counts to 100 (2 + 100 * 2 + 2 = 204 instructions), then
    // r0 = 2 (XDP_PASS). A budget of 50 stops neither a single run nor a batch's runs.
    let insns = prog![
        mov(0, 0),
        mov(2, 0),
        add(2, 1),
        ji(JMP_JLT, 2, 100, -2),
        mov(0, 2),
        exit(),
    ];
    for engine in ENGINES {
        let p = load_verified_xdp(&insns, engine, vec![]);
        let mut packet = vec![0u8; 64];
        let single = p.run(&mut RunInput {
            data: &mut packet,
            budget: Some(50),
        });
        assert_eq!(single.map(|out| out.r0), Ok(2), "{engine:?}: single run");
        let all = vec![0u8; 64 * 3];
        let mut r0s = Vec::new();
        p.run_batch(
            &BatchInput {
                packets: &all,
                lengths: &[64, 64, 64],
                budget: Some(50),
                r0_only: true,
                ..BatchInput::default()
            },
            |run| r0s.push(run.result.map(|(out, _)| out.r0)),
        )
        .expect("lengths add up");
        assert_eq!(r0s, vec![Ok(2); 3], "{engine:?}: batch");
    }
}

#[test]
fn a_verified_xdp_batch_zeroes_again_the_stack_its_runs_reach() {
    // Verified, r10 copied (so the whole frame is zeroed before a single run): reads the stack
    // word at r10 - 16 before anything wrote it (as the kernel allows privileged programs), then
    // stores the packet's first byte there when it is odd; r0 = 2 + the word read. Single runs
    // read 0 there (a fresh stack), so every packet gives 2; a batch zeroes again, after its
    // first run, only the bytes under the program's stack depth (16), which the store lies in.
    let insns = prog![
        movr(6, 10),
        ldx(SIZE_W, 2, 1, 0),
        ldx(SIZE_W, 3, 1, 4),
        movr(4, 2),
        add(4, 1),
        jr(JMP_JGT, 4, 3, 8),
        ldx(SIZE_B, 5, 2, 0),
        ldx(SIZE_DW, 0, 10, -16),
        add(0, 2),
        stx(SIZE_DW, 10, 5, -8),
        ji(JMP_JSET, 5, 1, 1),
        exit(),
        stx(SIZE_DW, 6, 5, -16),
        exit(),
        mov(0, 1),
        exit(),
    ];
    for engine in ENGINES {
        let p = load_verified_xdp(&insns, engine, Vec::new());
        assert_eq!(
            p.verifier_report().expect("verified").stack_depth,
            [16],
            "{engine:?}"
        );
        let packets: Vec<Vec<u8>> = [1u8, 3, 2, 5, 4].iter().map(|&b| vec![b; 64]).collect();
        let r0s = batch_equals_single_runs(&p, &packets, None);
        assert_eq!(r0s, [2, 2, 2, 2, 2], "{engine:?}");
    }
}

#[test]
fn a_verified_xdp_programs_packet_accesses_run_without_checks_as_proved() {
    // Verified: after `data + 16 <= data_end`, loads the packet's bytes 8-15, stores 0x42 at
    // byte 9 and loads it back: r0 = the u64 + 0x42; a shorter packet gives 7. The verifier
    // proves the three packet accesses against `data_end` (`packet_proved`), so XDP's engines
    // run them unchecked; `proved` (the stack, map values, sized memory) leaves them out.
    let insns = prog![
        ldx(SIZE_W, 2, 1, 0),
        ldx(SIZE_W, 3, 1, 4),
        movr(4, 2),
        add(4, 16),
        jr(JMP_JGT, 4, 3, 5),
        ldx(SIZE_DW, 0, 2, 8),
        st(SIZE_B, 2, 9, 0x42),
        ldx(SIZE_B, 5, 2, 9),
        addr(0, 5),
        exit(),
        mov(0, 7),
        exit(),
    ];
    for engine in ENGINES {
        let p = load_verified_xdp(&insns, engine, Vec::new());
        let report = p.verifier_report().expect("verified");
        for slot in [5, 6, 7] {
            assert!(report.packet_proved[slot], "{engine:?}: slot {slot}");
            assert!(!report.proved[slot], "{engine:?}: slot {slot}");
        }
        let packets = vec![(0..64u8).collect::<Vec<u8>>(), vec![1u8; 14]];
        let r0s = batch_equals_single_runs(&p, &packets, None);
        // Bytes 8-15 are 8..=15 little-endian, byte 9 then 0x42: 0x0f0e0d0c0b0a0908 + 0x42.
        assert_eq!(r0s, [0x0f0e_0d0c_0b0a_0908 + 0x42, 7], "{engine:?}");
    }
}

/// r0 (or the trap's kind) of each packet of a batch of `packets` in the lean form
/// (`run_batch_r0`, what `runBatchRetvals` calls: a verified XDP program on the JIT takes the
/// JIT's loop of machine code after its first packet, `jit::Loop`).
fn lean_r0s(p: &Program, packets: &[Vec<u8>]) -> Vec<Result<u64, ebpf_vm::TrapKind>> {
    let lengths: Vec<u32> = packets.iter().map(|d| d.len() as u32).collect();
    let all: Vec<u8> = packets.concat();
    let input = BatchInput {
        packets: &all,
        lengths: &lengths,
        r0_only: true,
        ..BatchInput::default()
    };
    let mut got = Vec::new();
    let summary = p
        .run_batch_r0(&input, |index, result| {
            assert_eq!(index, got.len(), "runs handed on in order");
            got.push(result.map(|out| out.r0).map_err(|t| t.kind));
        })
        .expect("lengths add up");
    assert_eq!(summary.runs, packets.len());
    got
}

/// r0 (or the trap's kind) of a single run of `packet` alone.
fn single_r0(p: &Program, packet: &[u8]) -> Result<u64, ebpf_vm::TrapKind> {
    let mut d = packet.to_vec();
    (p.run(&mut RunInput {
        data: &mut d,
        budget: None,
    }))
    .map(|out| out.r0)
    .map_err(|t| t.kind)
}

#[test]
fn random_verified_xdp_programs_give_in_a_batch_what_single_runs_give() {
    // hsound's random XDP programs around packet access (reads and writes through packet
    // pointers checked against `data_end` every way round) that the verifier accepts, loaded on
    // the JIT: a batch of 300 packets (more than one trip of the JIT's loop, 256) of lengths from
    // 14 to 3,520 bytes in an order where packets grow and shrink, and batches of 0, 1 and 2
    // packets, each packet's r0 or trap as the interpreter's single run of it gives.
    let mut rng = rng::Rng::new(0x0b47_c400);
    let lengths = [14usize, 15, 20, 34, 60, 64, 100, 1500, 3520, 64, 14, 200];
    // `XDP_BATCH_PROGRAMS` generated programs (4,000 by default; more for a long run).
    let programs: usize = std::env::var("XDP_BATCH_PROGRAMS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(4000);
    let mut loaded = 0;
    for _ in 0..programs {
        let code = random_programs::xdp::random_xdp_program(&mut rng, 20);
        let load = |engine| {
            load_with(
                &code,
                ProgramOptions {
                    prog_type: ProgramType::Xdp,
                    engine,
                    mode: ebpf_vm::Mode::Verified,
                    ..ProgramOptions::default()
                },
            )
        };
        let Ok(reference) = load(Engine::Interpreter) else {
            continue;
        };
        let jit = load(Engine::Jit).expect("verified loads on the JIT");
        loaded += 1;
        let packets: Vec<Vec<u8>> = (0..300)
            .map(|k| {
                let len = lengths[(k * 7 + k / 5) % lengths.len()];
                (0..len)
                    .map(|_| rng::Random::next(&mut rng) as u8)
                    .collect()
            })
            .collect();
        let want: Vec<_> = packets.iter().map(|d| single_r0(&reference, d)).collect();
        assert_eq!(lean_r0s(&jit, &packets), want, "{code:?}");
        for n in [0, 1, 2] {
            assert_eq!(lean_r0s(&jit, &packets[..n]), want[..n], "{n} packets");
        }
    }
    assert!(
        loaded >= programs / 200,
        "too few programs load verified ({loaded} of {programs})"
    );
    eprintln!("{loaded} of {programs} random XDP programs verified and agreed in batches");
}

/// Verified XDP: the array map 0's value at index 0 counted up by an atomic fetch-add, r0 = the
/// count before it (the lookup is inline in a batch: no Rust entry point runs); packets whose
/// first byte is odd also call helper 1000 with that byte, which fails for bytes of 0x81 or more.
fn counting_with_a_failing_helper() -> Vec<Insn> {
    prog![
        ldx(SIZE_W, 2, 1, 0),
        ldx(SIZE_W, 3, 1, 4),
        movr(4, 2),
        add(4, 1),
        jr(JMP_JGT, 4, 3, 21),
        ldx(SIZE_B, 6, 2, 0),
        st(SIZE_W, 10, -4, 0),
        ld_map(1, 0),
        movr(2, 10),
        add(2, -4),
        call(1),
        ji(JMP_JEQ, 0, 0, 13),
        mov(7, 1),
        Insn::new(
            CLASS_STX | SIZE_DW | MODE_ATOMIC,
            0,
            7,
            0,
            ATOMIC_ADD | ATOMIC_FETCH
        ),
        ji(JMP_JSET, 6, 1, 2),
        movr(0, 7),
        exit(),
        movr(1, 6),
        mov(2, 0),
        mov(3, 0),
        mov(4, 0),
        mov(5, 0),
        call(1000),
        movr(0, 7),
        exit(),
        mov(0, 1),
        exit(),
    ]
}

#[test]
fn an_xdp_batch_sees_the_map_updates_of_the_packets_before_and_traps_mid_batch() {
    for engine in ENGINES {
        let counter = maps::create(MapDef::new(MapType::Array, 4, 8, 1)).unwrap();
        let mut helpers = ebpf_vm::HelperTable::standard();
        helpers.register(1000, "fails_past_0x80", |_, a| match a[0] {
            0x81.. => Err(ebpf_vm::helpers::HelperError("byte past 0x80".into())),
            _ => Ok(0),
        });
        let p = load_with(
            &counting_with_a_failing_helper(),
            ProgramOptions {
                prog_type: ProgramType::Xdp,
                engine,
                mode: ebpf_vm::Mode::Verified,
                maps: vec![counter.clone()],
                helpers,
                ..ProgramOptions::default()
            },
        )
        .expect("the verifier accepts it");
        // 600 packets: even first bytes (no helper), odd ones below 0x81 (the helper returns),
        // and odd ones of 0x81 or more (the helper fails: a trap, after the count went up).
        let first = |k: usize| match k % 10 {
            3 => 0x11u8,
            7 => 0x83,
            _ => 2 * (k % 50) as u8,
        };
        let packets: Vec<Vec<u8>> = (0..600).map(|k| vec![first(k); 14 + k % 70]).collect();
        let got = lean_r0s(&p, &packets);
        for (k, r) in got.iter().enumerate() {
            // Every packet counted, those before it included: r0 = k, the count before its add.
            let want = match first(k) {
                0x83 => Err(ebpf_vm::TrapKind::HelperError),
                _ => Ok(k as u64),
            };
            assert_eq!(*r, want, "{engine:?}: packet {k}");
        }
        let count = counter.lookup_elem(&0u32.to_le_bytes()).unwrap();
        assert_eq!(count, 600u64.to_le_bytes(), "{engine:?}");
    }
}

/// Verified XDP over map 0, an LPM trie of IPv4 /32 keys with u64 values: looks up the packet's
/// first four bytes as an address; r0 = the value found, or, on a miss, 2 after inserting the
/// address with the value 7; 1 for a packet too short.
fn lpm_insert_on_miss() -> Vec<Insn> {
    prog![
        ldx(SIZE_W, 2, 1, 0),
        ldx(SIZE_W, 3, 1, 4),
        movr(4, 2),
        add(4, 4),
        jr(JMP_JGT, 4, 3, 22),
        ldx(SIZE_W, 5, 2, 0),
        st(SIZE_W, 10, -8, 32),
        stx(SIZE_W, 10, 5, -4),
        ld_map(1, 0),
        movr(2, 10),
        add(2, -8),
        call(1),
        ji(JMP_JNE, 0, 0, 11),
        st(SIZE_DW, 10, -16, 7),
        ld_map(1, 0),
        movr(2, 10),
        add(2, -8),
        movr(3, 10),
        add(3, -16),
        mov(4, 0),
        call(2),
        mov(0, 2),
        exit(),
        ldx(SIZE_DW, 0, 0, 0),
        exit(),
        mov(0, 1),
        exit(),
    ]
}

fn lpm_trie() -> std::sync::Arc<dyn maps::Map> {
    let mut def = MapDef::new(MapType::LpmTrie, 8, 8, 256);
    def.flags = ebpf_vm::maps::def::flags::BPF_F_NO_PREALLOC;
    maps::create(def).unwrap()
}

/// A packet of 64 bytes whose first four are the address `a`.
fn addressed(a: [u8; 4]) -> Vec<u8> {
    let mut p = vec![0u8; 64];
    p[..4].copy_from_slice(&a);
    p
}

#[test]
fn an_xdp_batch_inserts_into_the_lpm_trie_it_looks_up_and_later_packets_find_it() {
    // The JIT's loop holds the trie's read lock for its trips (`LpmTrie::pin_for_batch`): the
    // update helper on the same thread must find it let go of (a write under its own read lock
    // would never return), and the packets after it must find the new prefix.
    for engine in ENGINES {
        let trie = lpm_trie();
        let p = load_verified_xdp(&lpm_insert_on_miss(), engine, vec![trie.clone()]);
        let packets: Vec<Vec<u8>> = (0..700)
            .map(|k| addressed([10, 0, (k % 3) as u8, (k % 300 / 7) as u8]))
            .collect();
        // On a thread of its own, so that a batch that never returns fails the test.
        let (done, got) = std::sync::mpsc::channel();
        let (program, batch) = (std::sync::Arc::new(p), packets.clone());
        std::thread::spawn(move || done.send(lean_r0s(&program, &batch)));
        let got = (got.recv_timeout(std::time::Duration::from_secs(60)))
            .expect("the batch returns (no deadlock on the trie's lock)");
        let mut seen = std::collections::HashSet::new();
        for (k, packet) in packets.iter().enumerate() {
            // The first packet of an address misses and inserts it; the later ones find 7.
            let want = if seen.insert(packet[..4].to_vec()) {
                2
            } else {
                7
            };
            assert_eq!(got[k], Ok(want), "{engine:?}: packet {k}");
        }
        assert_eq!(trie.len(), seen.len(), "{engine:?}");
    }
}

#[test]
fn an_xdp_batch_and_a_writer_on_another_thread_share_an_lpm_trie() {
    // 10.0.0.0/8 -> 7 stays; another thread puts 10.1.0.0/16 -> 9 in and takes it out while
    // batches of packets to 10.1.2.3 run: each packet finds one of the two, and both threads
    // finish (the batch's read lock is held a trip of the loop at a time, never across a
    // write of its own thread).
    let trie = lpm_trie();
    trie.update_elem(&[8, 0, 0, 0, 10, 0, 0, 0], &7u64.to_le_bytes(), 0)
        .unwrap();
    let p = load_verified_xdp(&lpm_insert_on_miss(), Engine::Jit, vec![trie.clone()]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (trie, stop) = (trie.clone(), stop.clone());
        std::thread::spawn(move || {
            let key = [16, 0, 0, 0, 10, 1, 0, 0];
            let mut rounds = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || rounds < 100 {
                trie.update_elem(&key, &9u64.to_le_bytes(), 0).unwrap();
                trie.delete_elem(&key).unwrap();
                rounds += 1;
            }
            rounds
        })
    };
    let packets = vec![addressed([10, 1, 2, 3]); 2000];
    for _ in 0..20 {
        for (k, r) in lean_r0s(&p, &packets).into_iter().enumerate() {
            assert!(matches!(r, Ok(7) | Ok(9)), "packet {k}: {r:?}");
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(writer.join().unwrap() >= 100);
    assert_eq!(trie.len(), 1);
}
