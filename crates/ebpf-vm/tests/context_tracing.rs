//! Tracing programs: r1 points to the caller's context bytes (read-only, as the kernel's kprobe,
//! tracepoint, raw_tp and fentry contexts are), and the task identity helpers report the run's
//! `ProcessInfo`.

mod context_support;

use context_support::*;
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::{ErrorCode, ProcessInfo, ProgramType, TrapKind};

const TR: ProgramType = ProgramType::Tracing;

#[test]
fn the_context_is_the_callers_bytes() {
    // A struct { u64 a; u32 b; u16 c; } with a = 5, b = 7, c = 9: r0 = a + b + c.
    let mut ctx = vec![0u8; 16];
    ctx[0] = 5;
    ctx[8] = 7;
    ctx[12] = 9;
    let p = load(
        &prog![
            ldx(SIZE_DW, 0, 1, 0),
            ldx(SIZE_W, 2, 1, 8),
            addr(0, 2),
            ldx(SIZE_H, 2, 1, 12),
            addr(0, 2),
            exit()
        ],
        TR,
    )
    .unwrap();
    let (out, cx) = run_process(&p, Some(&ctx), ProcessInfo::default()).unwrap();
    assert_eq!(out.r0, 21);
    assert_eq!(cx, Default::default(), "tracing runs hand nothing back");
    // Past the end of the bytes given: out of bounds.
    let past = load(&prog![ldx(SIZE_W, 0, 1, 16), exit()], TR).unwrap();
    let t = run_process(&past, Some(&ctx), ProcessInfo::default()).unwrap_err();
    assert_eq!((t.kind, t.pc), (TrapKind::OutOfBounds, 0));
}

#[test]
fn the_context_is_read_only_and_there_is_no_packet() {
    let p = load(&prog![st(SIZE_W, 1, 0, 1), mov(0, 0), exit()], TR).unwrap();
    let t = run_process(&p, Some(&[0u8; 8]), ProcessInfo::default()).unwrap_err();
    assert_eq!((t.kind, t.pc), (TrapKind::ReadOnly, 0));
    // r2 holds nothing for tracing programs.
    let r2 = load(&prog![movr(0, 2), exit()], TR).unwrap();
    let mut data = [1u8; 4];
    assert_eq!(r0(&r2, &mut data, Some(&[0u8; 8])), 0);
    let e = load(&prog![movr(6, 1), ld_abs(SIZE_B, 0), exit()], TR).unwrap_err();
    assert_eq!((e.code, e.insn), (ErrorCode::Einval, Some(1)));
}

#[test]
fn task_identity_helpers_report_the_runs_process_info() {
    let info = ProcessInfo {
        pid: 1234,
        tgid: 1200,
        uid: 1000,
        gid: 100,
        comm: ProcessInfo::comm_from("node-worker-thread-1"),
        ..ProcessInfo::default()
    };
    // bpf_get_current_pid_tgid = tgid << 32 | pid
    let pid = load(&prog![call(14), exit()], TR).unwrap();
    assert_eq!(
        run_process(&pid, None, info).unwrap().0.r0,
        1200 << 32 | 1234
    );
    // bpf_get_current_uid_gid = gid << 32 | uid
    let uid = load(&prog![call(15), exit()], TR).unwrap();
    assert_eq!(
        run_process(&uid, None, info).unwrap().0.r0,
        100 << 32 | 1000
    );
    // bpf_get_current_comm(buf, 8) at r10 - 16: 7 characters and a NUL. Then (buf, 16): the
    // name cut at 15 characters, "node-worker-thr", and a NUL; r0 = its bytes 8..16.
    let comm8 = load(
        &prog![
            fp_plus(1, -16),
            mov(2, 8),
            call(16),
            ldx(SIZE_DW, 0, 10, -16),
            exit()
        ],
        TR,
    )
    .unwrap();
    let v = run_process(&comm8, None, info).unwrap().0.r0;
    assert_eq!(&v.to_le_bytes(), b"node-wo\0");
    let comm16 = load(
        &prog![
            fp_plus(1, -16),
            mov(2, 16),
            call(16),
            ldx(SIZE_DW, 0, 10, -8),
            exit()
        ],
        TR,
    )
    .unwrap();
    let v = run_process(&comm16, None, info).unwrap().0.r0;
    assert_eq!(&v.to_le_bytes(), b"ker-thr\0");
    // Defaults: zero and an empty name.
    assert_eq!(
        run_process(&pid, None, ProcessInfo::default())
            .unwrap()
            .0
            .r0,
        0
    );
}
