//! `Mode::Verified` through `Program::load`, the Rust API: the verifier runs on the load, a
//! rejection is a `LoadError` with the verifier's errno, slot, message and log, an accepted
//! program reports what the verifier did. The verdicts, errnos, messages and processed counts
//! are the live kernel's (Linux 6.18, `tests/verifier_support/kernel_load.c`, the same
//! instructions loaded as XDP programs); raw programs (no kernel type) by hand computation.

mod common;

use common::{bytes, exit, i, mov64_imm};
use ebpf_vm::isa::Insn;
use ebpf_vm::{
    ContextInput, ErrorCode, Mode, Program, ProgramOptions, ProgramType, RunInput, TrapKind,
};

/// r2 = ctx->data; r0 = *(u8 *)r2 (no check against data_end); r0 = 2; exit.
fn xdp_unchecked() -> Vec<Insn> {
    vec![
        i(0x61, 2, 1, 0, 0),
        i(0x71, 0, 2, 0, 0),
        mov64_imm(0, 2),
        exit(),
    ]
}

/// The same read after `if data + 1 > data_end goto +1`.
fn xdp_checked() -> Vec<Insn> {
    vec![
        i(0x61, 2, 1, 0, 0),
        i(0x61, 3, 1, 4, 0),
        i(0xbf, 4, 2, 0, 0),
        i(0x07, 4, 0, 0, 1),
        i(0x2d, 4, 3, 1, 0),
        i(0x71, 0, 2, 0, 0),
        mov64_imm(0, 2),
        exit(),
    ]
}

fn verified(prog_type: ProgramType) -> ProgramOptions {
    ProgramOptions {
        prog_type,
        mode: Mode::Verified,
        ..ProgramOptions::default()
    }
}

#[test]
fn a_rejection_is_a_load_error_with_the_kernel_errno_message_and_log() {
    let e = Program::load(&bytes(&xdp_unchecked()), verified(ProgramType::Xdp))
        .expect_err("the kernel rejects it");
    assert_eq!(e.code, ErrorCode::Eacces);
    assert_eq!(e.insn, Some(1));
    // The kernel's two lines.
    assert_eq!(
        e.message,
        "invalid access to packet, off=0 size=1, R2(id=0,off=0,r=0)\nR2 offset is outside of the packet"
    );
    // Log level 0 was asked for: the rejection is logged at level 1 all the same.
    let log = e.log.expect("a verifier rejection carries its log");
    assert!(
        log.contains("1: (71) r0 = *(u8 *)(r2 +0)\ninvalid access to packet"),
        "{log}"
    );
}

#[test]
fn an_accepted_program_reports_what_the_verifier_did() {
    let p = Program::load(&bytes(&xdp_checked()), verified(ProgramType::Xdp)).expect("accepted");
    assert_eq!(p.mode(), Mode::Verified);
    let report = p.verifier_report().expect("verified");
    // The kernel: "processed 10 insns (limit 1000000)".
    assert_eq!(report.processed_insns, 10);
    assert_eq!(report.log, "");
    let logged = Program::load(
        &bytes(&xdp_checked()),
        ProgramOptions {
            log_level: 2,
            ..verified(ProgramType::Xdp)
        },
    )
    .expect("accepted");
    let log = &logged.verifier_report().expect("verified").log;
    // A line of the kernel's level-2 log of the same program.
    assert!(
        log.contains("4: (2d) if r4 > r3 goto pc+1          ; R3=pkt_end() R4=pkt(off=1,r=1)\n"),
        "{log}"
    );
    let checked = Program::load(&bytes(&xdp_unchecked()), ProgramOptions::default())
        .expect("checked mode needs no proof");
    assert!(checked.verifier_report().is_none());
}

#[test]
fn gpl_only_helpers_need_a_gpl_compatible_license() {
    // *(u64 *)(r10 - 8) = 0; bpf_trace_printk(r10 - 8, 8); r0 = 2.
    let printk = [
        mov64_imm(1, 0),
        i(0x7b, 10, 1, -8, 0),
        i(0xbf, 1, 10, 0, 0),
        i(0x07, 1, 0, 0, -8),
        mov64_imm(2, 8),
        i(0x85, 0, 0, 0, 6),
        mov64_imm(0, 2),
        exit(),
    ];
    let e = Program::load(
        &bytes(&printk),
        ProgramOptions {
            gpl_compatible: false,
            ..verified(ProgramType::Xdp)
        },
    )
    .expect_err("the kernel refuses it under a proprietary license");
    assert_eq!(e.code, ErrorCode::Einval);
    assert_eq!(e.insn, Some(5));
    assert_eq!(
        e.message,
        "cannot call GPL-restricted function from non-GPL compatible program"
    );
    assert!(Program::load(&bytes(&printk), verified(ProgramType::Xdp)).is_ok());
    for (license, gpl) in [
        ("GPL", true),
        ("Dual BSD/GPL", true),
        ("GPL v2", true),
        ("MIT", false),
        ("", false),
        ("gpl", false),
    ] {
        assert_eq!(
            ebpf_vm::license_is_gpl_compatible(license),
            gpl,
            "{license}"
        );
    }
}

#[test]
fn raw_programs_are_verified_against_data_size_and_runs_must_bring_that_much() {
    // r0 = *(u64 *)(r1 + 8): bytes 8..16 of the data.
    let read = bytes(&[i(0x79, 0, 1, 8, 0), exit()]);
    let e = Program::load(&read, verified(ProgramType::Raw)).expect_err("no data size");
    assert_eq!(e.code, ErrorCode::Enotsupp);
    assert!(e.message.contains("dataSize"), "{}", e.message);
    let short = ProgramOptions {
        data_size: Some(15),
        ..verified(ProgramType::Raw)
    };
    let e = Program::load(&read, short).expect_err("8 + 8 > 15");
    assert_eq!((e.code, e.insn), (ErrorCode::Eacces, Some(0)));
    let p = Program::load(
        &read,
        ProgramOptions {
            data_size: Some(16),
            ..verified(ProgramType::Raw)
        },
    )
    .expect("8 + 8 <= 16");
    let mut data = [0u8; 16];
    data[8] = 0x2a;
    let out = p
        .run(&mut RunInput {
            data: &mut data,
            budget: None,
        })
        .expect("runs");
    assert_eq!(out.r0, 0x2a);
    let trap = p
        .run(&mut RunInput {
            data: &mut [0u8; 15],
            budget: None,
        })
        .expect_err("data shorter than the proof");
    assert_eq!(trap.kind, TrapKind::InvalidInput);
    assert!(trap.message.contains("16 bytes"), "{}", trap.message);
}

#[test]
fn tracing_programs_are_verified_as_kprobes_and_runs_must_bring_a_whole_pt_regs() {
    // r0 = *(u64 *)(r1 + 112): a field of struct pt_regs (168 bytes on x86-64), which a
    // kprobe may read; 168 would be past its end (hand computation).
    let read = |off: i16| bytes(&[i(0x79, 0, 1, off, 0), exit()]);
    let e = Program::load(&read(168), verified(ProgramType::Tracing)).expect_err("past pt_regs");
    assert_eq!(e.code, ErrorCode::Eacces);
    assert_eq!(e.message, "invalid bpf_context access off=168 size=8");
    let p = Program::load(&read(112), verified(ProgramType::Tracing)).expect("inside pt_regs");
    let mut regs = [0u8; 168];
    regs[112] = 7;
    let run = |ctx: &[u8]| {
        p.run_with_context(
            &mut RunInput {
                data: &mut [],
                budget: None,
            },
            &ContextInput {
                ctx: Some(ctx),
                ..ContextInput::default()
            },
        )
    };
    assert_eq!(run(&regs).expect("runs").0.r0, 7);
    let trap = run(&regs[..64]).expect_err("a context shorter than pt_regs");
    assert_eq!(trap.kind, TrapKind::InvalidInput);
    assert!(trap.message.contains("168 bytes"), "{}", trap.message);
}

/// Loads `insns` as an XDP program in `mode` on `engine` and runs it on a 64-byte packet.
fn xdp_r0(insns: &[Insn], mode: Mode, engine: ebpf_vm::Engine) -> Result<u64, String> {
    let p = Program::load(
        &bytes(insns),
        ProgramOptions {
            engine,
            mode,
            ..verified(ProgramType::Xdp)
        },
    )
    .map_err(|e| format!("{:?} {:?}: {}", e.code, e.insn, e.message))?;
    let mut packet = [0u8; 64];
    let out = p
        .run(&mut RunInput {
            data: &mut packet,
            budget: None,
        })
        .map_err(|t| format!("{t:?}"))?;
    Ok(out.r0)
}

const ENGINES: [ebpf_vm::Engine; 2] = [ebpf_vm::Engine::Interpreter, ebpf_vm::Engine::Jit];

#[test]
fn dead_code_is_refused_in_verified_mode_and_runs_in_checked_mode() {
    // r0 = 2; exit; r0 = 1; exit: the kernel says "unreachable insn 2" (EINVAL).
    let p = [mov64_imm(0, 2), exit(), mov64_imm(0, 1), exit()];
    let e = Program::load(&bytes(&p), verified(ProgramType::Xdp)).expect_err("dead code");
    assert_eq!(e.code, ErrorCode::Einval);
    assert_eq!(e.insn, Some(2));
    assert_eq!(e.message, "unreachable insn 2");
    for engine in ENGINES {
        assert_eq!(xdp_r0(&p, Mode::Checked, engine), Ok(2), "{engine:?}");
    }
}

#[test]
fn an_exit_is_an_exit_whatever_its_offset_in_verified_mode() {
    // The kernel accepts exit with any offset (it never looks at it) and returns r0.
    for off in [8, -1, i16::MIN] {
        let p = [mov64_imm(0, 2), i(0x95, 0, 0, off, 0)];
        for engine in ENGINES {
            assert_eq!(
                xdp_r0(&p, Mode::Verified, engine),
                Ok(2),
                "offset {off}, {engine:?}"
            );
        }
        // Checked mode keeps RFC 9669's reserved field.
        let e = xdp_r0(&p, Mode::Checked, ebpf_vm::Engine::Interpreter).expect_err("reserved");
        assert_eq!(
            e,
            format!("Einval Some(1): reserved field offset must be zero, found {off}")
        );
    }
    // In a function too: call f; exit (offset -1); f: r0 = 2; exit (offset 8).
    let p = [
        i(0x85, 0, 1, 0, 1),
        i(0x95, 0, 0, -1, 0),
        mov64_imm(0, 2),
        i(0x95, 0, 0, 8, 0),
    ];
    for engine in ENGINES {
        assert_eq!(xdp_r0(&p, Mode::Verified, engine), Ok(2), "{engine:?}");
    }
}

#[test]
fn a_malformed_exit_on_a_path_no_run_takes_loads_in_verified_mode() {
    // r0 = 2; if r0 != 2 goto +1; exit; exit with every field set (the kernel accepts it: the
    // walk never arrives there, and only the walk looks at exit's fields).
    let bad = i(0x95, 15, 15, -1, -1);
    let p = [mov64_imm(0, 2), i(0x55, 0, 0, 1, 2), exit(), bad];
    for engine in ENGINES {
        assert_eq!(xdp_r0(&p, Mode::Verified, engine), Ok(2), "{engine:?}");
    }
    let e = xdp_r0(&p, Mode::Checked, ebpf_vm::Engine::Interpreter).expect_err("reserved");
    assert!(e.starts_with("Einval Some(3): "), "{e}");
    // Where the walk arrives, the kernel's refusal (EINVAL).
    let p = [mov64_imm(0, 2), i(0x15, 0, 0, 1, 2), exit(), bad];
    let e = Program::load(&bytes(&p), verified(ProgramType::Xdp)).expect_err("walked");
    assert_eq!(e.code, ErrorCode::Einval);
    assert_eq!(e.insn, Some(3));
    assert_eq!(e.message, "BPF_EXIT uses reserved fields");
}

#[test]
fn the_side_table_says_what_the_verifier_proved_and_where_it_pruned() {
    // A raw program over 8 bytes of data: a byte loaded from the data (sized memory) and
    // spilled to the stack; both accesses are proved in bounds (slots 1 and 2), the other
    // instructions are no accesses. The prune points are the conditional jump (3) and its
    // target (5), the rule of the kernel's `visit_insn` (the fall-through is none). By hand.
    let code = [
        mov64_imm(0, 1),
        i(0x71, 2, 1, 0, 0),   // r2 = *(u8 *)(r1 + 0)
        i(0x7b, 10, 2, -8, 0), // *(u64 *)(r10 - 8) = r2
        i(0x55, 2, 0, 1, 7),   // if r2 != 7 goto +1
        mov64_imm(0, 2),
        exit(),
    ];
    let options = ProgramOptions {
        data_size: Some(8),
        ..verified(ProgramType::Raw)
    };
    let p = Program::load(&bytes(&code), options).expect("verified");
    let aux = &p.analysis().aux;
    let proved: Vec<bool> = aux.iter().map(|a| a.proved_in_bounds).collect();
    let prune: Vec<bool> = aux.iter().map(|a| a.prune_point).collect();
    assert_eq!(proved, [false, true, true, false, false, false]);
    assert_eq!(prune, [false, false, false, true, false, true]);
    // Checked mode proves nothing.
    let p = Program::load(&bytes(&code), ProgramOptions::default()).expect("checked");
    assert!(p
        .analysis()
        .aux
        .iter()
        .all(|a| !a.proved_in_bounds && !a.prune_point));
}

#[test]
fn a_mod_inside_a_callback_is_no_return_from_it() {
    // bpf_loop(4, callback, NULL, 0); r0 = 0. The callback: r0 = 10; r0 %= 3; r0 = 0; exit.
    // Opcode 0x97 (mod) shares its upper bits with exit's (0x95); only the exit at slot 11
    // goes back to the call, so the level-2 log has no "from 9 to 10" return line.
    let insns = [
        mov64_imm(1, 4),
        i(0x18, 2, 4, 0, 6), // lddw r2, the function at slot 8
        i(0, 0, 0, 0, 0),
        mov64_imm(3, 0),
        mov64_imm(4, 0),
        i(0x85, 0, 0, 0, 181), // bpf_loop
        mov64_imm(0, 0),
        exit(),
        mov64_imm(0, 10),
        i(0x97, 0, 0, 0, 3), // r0 %= 3
        mov64_imm(0, 0),
        exit(),
    ];
    let p = Program::load(
        &bytes(&insns),
        ProgramOptions {
            log_level: 2,
            ..verified(ProgramType::SocketFilter)
        },
    )
    .expect("accepted");
    let log = &p.verifier_report().expect("verified").log;
    assert!(log.contains("11: (95) exit"), "{log}");
    assert!(!log.contains("from 9 to 10"), "{log}");
}
