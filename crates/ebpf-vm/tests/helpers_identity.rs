//! The helpers that tell a program who it runs for and when, offered by Linux 6.18 beyond the
//! tracing types: `bpf_get_current_pid_tgid` / `_uid_gid` / `_comm` and `bpf_send_signal(_thread)`
//! and `bpf_jiffies64` to every type (`bpf_base_func_proto`), `bpf_get_socket_cookie` / `_uid` to
//! socket filters and tc (`sk_filter_func_proto`, `tc_cls_act_func_proto`). Which types get
//! which is checked against the kernel in `helper_prototypes.rs`; here, what they return, in
//! checked and verified mode.
//!
//! Oracles: the kernel's return values for `bpf_send_signal` were read with `bpftool prog run`
//! of socket filters on Linux 6.18 (signal 0: 0; 65 and 1000: -EINVAL, as `valid_signal`
//! allows 1-64); its HZ is 250 (501 jiffies over 2 s, and `CONFIG_HZ=250`); the rest is the
//! run's input, computed by hand.

mod context_support;

use context_support::*;
use ebpf_vm::helpers::socket::OVERFLOW_UID;
use ebpf_vm::helpers::standard::{INITIAL_JIFFIES, KERNEL_HZ};
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::{
    ContextInput, ContextOutput, ErrorCode, Mode, ProcessInfo, Program, ProgramOptions,
    ProgramType, RunInput, RunOutput, SentSignal, SocketInfo, Trap, TrapKind,
};

const PACKET_TYPES: [ProgramType; 3] =
    [ProgramType::SocketFilter, ProgramType::Tc, ProgramType::Xdp];

fn run(prog: &Program, input: &ContextInput<'_>) -> Result<(RunOutput, ContextOutput), Trap> {
    let mut data = [0u8; 64];
    prog.run_with_context(
        &mut RunInput {
            data: &mut data,
            budget: None,
        },
        input,
    )
}

fn r0_with(prog: &Program, input: &ContextInput<'_>) -> u64 {
    run(prog, input).expect("program runs").0.r0
}

/// The modes a type loads in: every packet type both ways (tc with tc's rules).
fn verify_modes(_t: ProgramType) -> &'static [bool] {
    &[false, true]
}

/// Loads `insns` checked, and verified when `verify`.
fn load_mode(insns: &[ebpf_vm::isa::Insn], t: ProgramType, verify: bool) -> Program {
    let mode = if verify {
        Mode::Verified
    } else {
        Mode::Checked
    };
    load_with(insns, ProgramOptions { mode, ..options(t) })
        .unwrap_or_else(|e| panic!("{t:?} {mode:?}: {e}"))
}

#[test]
fn task_identity_helpers_report_the_runs_process_in_every_packet_type() {
    let process = ProcessInfo {
        pid: 4321,
        tgid: 4000,
        uid: 1001,
        gid: 50,
        comm: ProcessInfo::comm_from("curl"),
        ..ProcessInfo::default()
    };
    let input = ContextInput {
        process,
        ..ContextInput::default()
    };
    for t in PACKET_TYPES {
        for &verify in verify_modes(t) {
            let pid = load_mode(&prog![call(14), exit()], t, verify);
            assert_eq!(r0_with(&pid, &input), 4000 << 32 | 4321, "{t:?}");
            let uid = load_mode(&prog![call(15), exit()], t, verify);
            assert_eq!(r0_with(&uid, &input), 50 << 32 | 1001, "{t:?}");
            // bpf_get_current_comm(r10 - 16, 16); r0 = the first 8 bytes: "curl" and NULs.
            let comm = load_mode(
                &prog![
                    fp_plus(1, -16),
                    mov(2, 16),
                    call(16),
                    ldx(SIZE_DW, 0, 10, -16),
                    exit()
                ],
                t,
                verify,
            );
            assert_eq!(r0_with(&comm, &input).to_le_bytes(), *b"curl\0\0\0\0");
        }
    }
    // Raw programs get them too (the base set).
    let raw = load(&prog![call(14), exit()], ProgramType::Raw).unwrap();
    assert_eq!(r0_with(&raw, &input), 4000 << 32 | 4321);
}

#[test]
fn jiffies64_is_the_runs_value_or_the_kernels_count_at_250_hz() {
    assert_eq!(KERNEL_HZ, 250);
    // INITIAL_JIFFIES on 64 bits: (unsigned long)(unsigned int)(-300 * HZ).
    assert_eq!(INITIAL_JIFFIES, 4_294_967_296 - 75_000);
    for t in ProgramType::ALL {
        let p = load(&prog![call(118), exit()], t).unwrap();
        let fixed = ContextInput {
            jiffies: Some(0x1_2345_6789),
            ctx: (t == ProgramType::Tracing).then_some(&[0u8; 168][..]),
            ..ContextInput::default()
        };
        assert_eq!(r0_with(&p, &fixed), 0x1_2345_6789, "{t:?}");
    }
    // The clock: from INITIAL_JIFFIES on, never backwards, and at most HZ a second since the
    // clock's origin (this process's first clock reading, not later than now).
    let p = load(&prog![call(118), exit()], ProgramType::Xdp).unwrap();
    let started = std::time::Instant::now();
    let first = r0_with(&p, &ContextInput::default());
    let second = r0_with(&p, &ContextInput::default());
    assert!(
        first >= INITIAL_JIFFIES && second >= first,
        "{first} {second}"
    );
    // Bounded by the test binary's lifetime so far: a generous hour of ticks.
    assert!(second - INITIAL_JIFFIES <= 3600 * KERNEL_HZ + started.elapsed().as_secs() * KERNEL_HZ);
}

#[test]
fn send_signal_records_the_signal_and_sends_nothing() {
    // r1 = sig; call; r0 stays the helper's return.
    let send = |sig: i32, helper: i32| prog![mov(1, sig), call(helper), exit()];
    for t in PACKET_TYPES {
        for &verify in verify_modes(t) {
            let p = load_mode(&send(9, 109), t, verify);
            let (out, cx) = run(&p, &ContextInput::default()).unwrap();
            assert_eq!(out.r0, 0);
            assert_eq!(
                cx.signals,
                vec![SentSignal {
                    signal: 9,
                    thread: false
                }]
            );
            let p = load_mode(&send(10, 117), t, verify);
            let (out, cx) = run(&p, &ContextInput::default()).unwrap();
            assert_eq!(out.r0, 0);
            assert_eq!(
                cx.signals,
                vec![SentSignal {
                    signal: 10,
                    thread: true
                }]
            );
        }
    }
    let sf = ProgramType::SocketFilter;
    // The kernel: 0 only asks, 64 is the last valid signal, 65 and 1000 are -EINVAL (-22).
    for (sig, r0, recorded) in [
        (0, 0u64, false),
        (64, 0, true),
        (65, (-22i64) as u64, false),
        (1000, (-22i64) as u64, false),
    ] {
        for helper in [109, 117] {
            let p = load(&send(sig, helper), sf).unwrap();
            let (out, cx) = run(&p, &ContextInput::default()).unwrap();
            assert_eq!(out.r0, r0, "signal {sig}, helper {helper}");
            assert_eq!(cx.signals.len(), recorded as usize, "signal {sig}");
        }
    }
    // The argument is a u32: r1 = 2^32 + 2 is signal 2. Two calls record two signals, in order.
    let p = load(
        &prog![
            lddw(1, (1 << 32) | 2),
            call(109),
            mov(1, 15),
            call(117),
            exit()
        ],
        sf,
    )
    .unwrap();
    let (_, cx) = run(&p, &ContextInput::default()).unwrap();
    assert_eq!(
        cx.signals,
        vec![
            SentSignal {
                signal: 2,
                thread: false
            },
            SentSignal {
                signal: 15,
                thread: true
            }
        ]
    );
}

#[test]
fn socket_cookie_and_uid_come_from_the_runs_socket() {
    let socket = ContextInput {
        socket: Some(SocketInfo {
            cookie: 0x0123_4567_89ab_cdef,
            uid: 1000,
        }),
        ..ContextInput::default()
    };
    for t in [ProgramType::SocketFilter, ProgramType::Tc] {
        for &verify in verify_modes(t) {
            let cookie = load_mode(&prog![call(46), exit()], t, verify);
            assert_eq!(r0_with(&cookie, &socket), 0x0123_4567_89ab_cdef, "{t:?}");
            let uid = load_mode(&prog![call(47), exit()], t, verify);
            assert_eq!(r0_with(&uid, &socket), 1000, "{t:?}");
            // No socket: cookie 0 and the overflow uid.
            assert_eq!(r0_with(&cookie, &ContextInput::default()), 0);
            assert_eq!(r0_with(&uid, &ContextInput::default()), OVERFLOW_UID as u64);
        }
    }
    assert_eq!(OVERFLOW_UID, 65534);
    // r1 must be the context: in checked mode the run stops, in verified mode the load fails.
    let sf = ProgramType::SocketFilter;
    let not_ctx = prog![mov(1, 0), call(46), exit()];
    let t = run(&load(&not_ctx, sf).unwrap(), &socket).unwrap_err();
    assert_eq!((t.kind, t.pc), (TrapKind::HelperError, 1));
    let e = load_with(
        &not_ctx,
        ProgramOptions {
            mode: Mode::Verified,
            ..options(sf)
        },
    )
    .unwrap_err();
    assert_eq!((e.code, e.insn), (ErrorCode::Eacces, Some(1)));
    assert!(e.message.contains("R1 type=scalar expected=ctx"), "{e}");
}

#[test]
fn socket_helpers_are_for_socket_filters_and_tc_only() {
    // Linux 6.18 offers them to neither XDP nor the tracing types ("program of this type cannot
    // use helper", helper_access_6.18.txt).
    for t in [ProgramType::Xdp, ProgramType::Tracing, ProgramType::Raw] {
        for id in [46, 47] {
            let e = load(&prog![call(id), exit()], t).unwrap_err();
            assert_eq!((e.code, e.insn), (ErrorCode::Einval, Some(0)), "{t:?} {id}");
        }
    }
}
