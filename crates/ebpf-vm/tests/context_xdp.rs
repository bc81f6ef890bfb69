//! XDP programs: `struct xdp_md` (data 0, data_end 4, data_meta 8, ingress_ifindex 12,
//! rx_queue_index 16, egress_ifindex 20, from linux/bpf.h), the rewriting of its pointer fields,
//! and the adjust helpers moving the frame bounds with the kernel's limits and errors.
//!
//! The expected results of the adjust helpers were observed on Linux 6.18 with
//! `bpftool prog run` of clang-built XDP programs making the same calls on a 60-byte packet
//! (each returned `ret & 0xff | (data_end - data) << 8 | (data - data_meta) << 20`).

mod context_support;

use context_support::*;
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::Insn;
use ebpf_vm::{ErrorCode, ProgramType, TrapKind};

const XDP: ProgramType = ProgramType::Xdp;
const HEAD: i32 = 44;
const META: i32 = 54;
const TAIL: i32 = 65;
const EINVAL: u64 = (-22i64) as u8 as u64;
const EACCES: u64 = (-13i64) as u8 as u64;

/// `r0 = ret & 0xff | (data_end - data) << 8 | (data - data_meta) << 20` after the calls
/// `calls` (helper, delta), each result or-ed into ret.
fn report(calls: &[(i32, i32)]) -> Vec<Insn> {
    let mut v = prog![movr(6, 1), mov(7, 0)];
    for &(helper, delta) in calls {
        v.extend(prog![movr(1, 6), mov(2, delta), call(helper), orr(7, 0)]);
    }
    v.extend(prog![
        ldx(SIZE_W, 2, 6, 0),
        ldx(SIZE_W, 3, 6, 4),
        ldx(SIZE_W, 4, 6, 8),
        Insn::new(CLASS_ALU64 | ALU_AND | SRC_K, 7, 0, 0, 0xff),
        movr(0, 3),
        subr(0, 2),
        lsh(0, 8),
        orr(0, 7),
        movr(5, 2),
        subr(5, 4),
        lsh(5, 20),
        orr(0, 5),
        exit(),
    ]);
    v
}

fn outcome(calls: &[(i32, i32)]) -> (u64, u64, u64) {
    let p = load(&report(calls), XDP).unwrap();
    let v = r0(&p, &mut [0u8; 60], None);
    (v & 0xff, (v >> 8) & 0xfff, v >> 20)
}

#[test]
fn adjust_head_moves_data_within_the_headroom() {
    // Headroom is 256 bytes of which 40 (struct xdp_frame) stay reserved.
    assert_eq!(outcome(&[(HEAD, -216)]), (0, 276, 0));
    assert_eq!(outcome(&[(HEAD, -217)]), (EINVAL, 60, 0));
    // At least an Ethernet header must remain.
    assert_eq!(outcome(&[(HEAD, 46)]), (0, 14, 0));
    assert_eq!(outcome(&[(HEAD, 47)]), (EINVAL, 60, 0));
}

#[test]
fn adjust_meta_grows_metadata_in_multiples_of_four() {
    assert_eq!(outcome(&[(META, -4)]), (0, 60, 4));
    assert_eq!(outcome(&[(META, -3)]), (EACCES, 60, 0));
    assert_eq!(outcome(&[(META, -36)]), (0, 60, 36));
    assert_eq!(outcome(&[(META, -216)]), (0, 60, 216));
    assert_eq!(outcome(&[(META, -252)]), (EINVAL, 60, 0));
    assert_eq!(outcome(&[(META, -256)]), (EINVAL, 60, 0));
    assert_eq!(outcome(&[(META, 4)]), (EINVAL, 60, 0));
    // Metadata moves with the head, and counts against the headroom.
    assert_eq!(outcome(&[(META, -8), (HEAD, -208)]), (0, 268, 8));
    assert_eq!(
        outcome(&[(META, -8), (HEAD, -208), (HEAD, -1)]),
        (EINVAL, 268, 8)
    );
}

#[test]
fn adjust_tail_grows_to_the_frame_end_and_shrinks_to_an_ethernet_header() {
    // A 4096-byte frame less 256 headroom and 320 tailroom: 3520 bytes of packet at most.
    assert_eq!(outcome(&[(TAIL, 3520 - 60)]), (0, 3520, 0));
    assert_eq!(outcome(&[(TAIL, 3521 - 60)]), (EINVAL, 60, 0));
    assert_eq!(outcome(&[(TAIL, -46)]), (0, 14, 0));
    assert_eq!(outcome(&[(TAIL, -47)]), (EINVAL, 60, 0));
}

#[test]
fn the_run_returns_the_final_packet_and_metadata() {
    // Push a 4-byte header in front (adjust_head -4), write 0xaabbccdd there; add 4 bytes of
    // metadata (adjust_meta -4) holding 7; grow the tail by 2 (zeroed); return XDP_TX.
    let insns = prog![
        movr(6, 1),
        mov(2, -4),
        call(HEAD),
        movr(1, 6),
        mov(2, -4),
        call(META),
        movr(1, 6),
        mov(2, 2),
        call(TAIL),
        ldx(SIZE_W, 2, 6, 0),
        ldx(SIZE_W, 3, 6, 4),
        movr(4, 2),
        add(4, 4),
        jr(JMP_JGT, 4, 3, 6),
        lddw(5, 0xddcc_bbaa),
        stx(SIZE_W, 2, 5, 0),
        ldx(SIZE_W, 4, 6, 8),
        st(SIZE_W, 4, 0, 7),
        mov(0, 3),
        exit(),
    ];
    // (the jump skips to the exit above with r0 = whatever: it must not be taken)
    let p = load(&insns, XDP).unwrap();
    let mut data: Vec<u8> = (1..=20).collect();
    let (out, cx) = run_ctx(&p, &mut data, None).unwrap();
    assert_eq!(out.r0, 3, "XDP_TX");
    let mut want = vec![0xaa, 0xbb, 0xcc, 0xdd];
    want.extend(1..=20u8);
    want.extend([0, 0]);
    assert_eq!(cx.packet.as_deref(), Some(&want[..]));
    assert_eq!(cx.meta.as_deref(), Some(&[7, 0, 0, 0][..]));
    // xdp_md out as the kernel's test run gives it: data = metadata size, data_end = meta + packet.
    let c = cx.ctx.unwrap();
    assert_eq!((get32(&c, 0), get32(&c, 4), get32(&c, 8)), (4, 30, 0));
    assert_eq!(
        get32(&c, 12),
        1,
        "ingress_ifindex: the loopback device by default"
    );
    // The input buffer is not the packet: it is unchanged.
    assert_eq!(data, (1..=20).collect::<Vec<u8>>());
}

#[test]
fn context_fields_and_metadata_come_from_the_context_image() {
    // r0 = ingress_ifindex | rx_queue_index << 16 (observed on Linux 6.18 without a context: 1)
    let ifx = load(
        &prog![
            ldx(SIZE_W, 0, 1, 12),
            ldx(SIZE_W, 2, 1, 16),
            lsh(2, 16),
            orr(0, 2),
            exit()
        ],
        XDP,
    )
    .unwrap();
    assert_eq!(r0(&ifx, &mut [0u8; 20], None), 1);
    // A context image naming no device: the loopback device too (also observed on Linux 6.18).
    assert_eq!(r0(&ifx, &mut [0u8; 20], Some(&[0u8; 24])), 1);
    let mut ctx = vec![0u8; 24];
    put32(&mut ctx, 12, 5);
    put32(&mut ctx, 16, 3);
    assert_eq!(r0(&ifx, &mut [0u8; 20], Some(&ctx)), 5 | 3 << 16);
    // 8 leading bytes of the input are metadata: data - data_meta = 8, data_end - data = 22.
    put32(&mut ctx, 0, 8);
    put32(&mut ctx, 4, 30);
    let p = load(&report(&[]), XDP).unwrap();
    let v = r0(&p, &mut [0u8; 30], Some(&ctx));
    assert_eq!(((v >> 8) & 0xfff, v >> 20), (22, 8));
    // What the kernel's test run refuses: metadata not a multiple of 4 or over 216 (the headroom
    // less struct xdp_frame), data_end past the input, egress_ifindex set, a queue without a
    // device (all observed on Linux 6.18).
    for (off, val) in [(0, 6), (0, 220), (4, 31), (20, 1)] {
        let mut bad = ctx.clone();
        put32(&mut bad, off, val);
        let t = run_ctx(&p, &mut [0u8; 30], Some(&bad)).unwrap_err();
        assert_eq!(t.kind, TrapKind::InvalidInput, "field {off} = {val}");
    }
    let mut bad = vec![0u8; 24];
    put32(&mut bad, 16, 1);
    assert_eq!(
        run_ctx(&p, &mut [0u8; 30], Some(&bad)).unwrap_err().kind,
        TrapKind::InvalidInput
    );
}

#[test]
fn the_context_is_read_only_and_legacy_packet_loads_are_refused() {
    let e = load(&prog![st(SIZE_W, 1, 12, 1), mov(0, 2), exit()], XDP).unwrap_err();
    assert_eq!((e.code, e.insn), (ErrorCode::Eacces, Some(0)));
    let e = load(&prog![movr(6, 1), ld_abs(SIZE_B, 0), exit()], XDP).unwrap_err();
    assert_eq!((e.code, e.insn), (ErrorCode::Einval, Some(1)));
    // The packet (frame) is writable; outside the frame is not reachable.
    let p = load(
        &prog![
            ldx(SIZE_W, 2, 1, 4),
            st(SIZE_B, 2, 4096, 1),
            mov(0, 2),
            exit()
        ],
        XDP,
    )
    .unwrap();
    let t = run_ctx(&p, &mut [0u8; 20], None).unwrap_err();
    assert_eq!((t.kind, t.pc), (TrapKind::OutOfBounds, 1));
}
