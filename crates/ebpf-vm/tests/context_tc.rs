//! tc programs: `struct __sk_buff` with tc's rules (offsets from linux/bpf.h: mark 8,
//! queue_mapping 12, protocol 16, tc_index 44, cb 48, hash 68, tc_classid 72, data 76,
//! data_end 80, family 88), the packet as the kernel's test run builds it, and what the tc helpers
//! do to the run beyond the bytes the kernel differential test compares
//! (`__test__/kernel-diff-tc.test.ts`): moved packets, `LD_ABS` after a move, results.
//! Expected values are the kernel's rules (net/core/filter.c, net/bpf/test_run.c) worked by hand.

mod context_support;

use context_support::*;
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::{ErrorCode, ProgramType, TrapKind};

const TC: ProgramType = ProgramType::Tc;

/// An IPv4-over-Ethernet frame of `len` bytes: dst 02:..:02, src 02:..:01, then `fill`.
fn frame(len: usize, fill: u8) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    f.resize(len, fill);
    f
}

#[test]
fn the_test_run_view_of_the_packet() {
    let mut pkt = frame(60, 0);
    for (off, want) in [
        (0, 60u64),   // len
        (4, 3),       // pkt_type: PACKET_OTHERHOST (not the loopback's all-zero address)
        (16, 0x0008), // protocol: htons(ETH_P_IP) as it lies in memory
        (40, 1),      // ifindex: the loopback
        (160, 60),    // wire_len
    ] {
        let p = load(&prog![ldx(SIZE_W, 0, 1, off), exit()], TC).unwrap();
        assert_eq!(r0(&p, &mut pkt, None), want, "field at {off}");
    }
    // data_end - data: the whole frame, from the Ethernet header.
    let span = load(
        &prog![
            ldx(SIZE_W, 2, 1, 76),
            ldx(SIZE_W, 0, 1, 80),
            subr(0, 2),
            exit()
        ],
        TC,
    )
    .unwrap();
    assert_eq!(r0(&span, &mut pkt, None), 60);
}

#[test]
fn sixteen_bit_fields_keep_the_low_half_and_no_queue_mapping_stores_nothing() {
    let mut pkt = frame(60, 0);
    let tc_index = load(
        &prog![
            mov(2, 0x1234_5678),
            stx(SIZE_W, 1, 2, 44),
            ldx(SIZE_W, 0, 1, 44),
            exit()
        ],
        TC,
    )
    .unwrap();
    assert_eq!(r0(&tc_index, &mut pkt, None), 0x5678);
    let mut ctx = vec![0u8; 192];
    put32(&mut ctx, 12, 7); // queue_mapping 7 in the image
    for (imm, want) in [
        (0xffff, 7u64),
        (0x1_0005, 7),
        (0x1234, 0x1234),
        (-1, 0xffff),
    ] {
        let p = load(
            &prog![st(SIZE_W, 1, 12, imm), ldx(SIZE_W, 0, 1, 12), exit()],
            TC,
        )
        .unwrap();
        assert_eq!(
            r0(&p, &mut pkt, Some(&ctx)),
            want,
            "queue_mapping = {imm:#x}"
        );
    }
}

#[test]
fn what_tc_may_not_read_or_write_is_a_load_error() {
    for (insns, what) in [
        (prog![ldx(SIZE_W, 0, 1, 88), exit()], "load of family"),
        (
            prog![st(SIZE_W, 1, 16, 1), mov(0, 0), exit()],
            "store to protocol",
        ),
        (
            prog![st(SIZE_H, 1, 8, 1), mov(0, 0), exit()],
            "2-byte store to mark",
        ),
        (
            prog![st(SIZE_W, 1, 152, 1), mov(0, 0), exit()],
            "4-byte store to tstamp",
        ),
    ] {
        let e = load(&insns, TC).unwrap_err();
        assert_eq!(e.code, ErrorCode::Eacces, "{what}: {e}");
    }
    // What tc may write: mark, priority, cb[], tc_classid, tstamp (8 bytes).
    let ok = prog![
        st(SIZE_W, 1, 8, 1),
        st(SIZE_W, 1, 32, 2),
        st(SIZE_B, 1, 49, 3),
        st(SIZE_W, 1, 72, 4),
        st(SIZE_DW, 1, 152, 5),
        mov(0, 0),
        exit()
    ];
    let p = load(&ok, TC).unwrap();
    let (_, out) = run_ctx(&p, &mut frame(60, 0), Some(&[0u8; 192])).unwrap();
    let (ctx, skb) = (out.ctx.unwrap(), out.skb.unwrap());
    // The kernel's test run copies mark, priority, cb[] and tstamp back, not tc_classid.
    assert_eq!(
        [
            get32(&ctx, 8),
            get32(&ctx, 32),
            ctx[49] as u32,
            get32(&ctx, 72)
        ],
        [1, 2, 3, 0]
    );
    assert_eq!(ctx[152], 5);
    assert_eq!(get32(&skb, 72), 4, "skb_out has tc_classid");
}

#[test]
fn inputs_the_kernels_test_run_refuses_are_refused() {
    let p = load(&prog![mov(0, 0), exit()], TC).unwrap();
    for len in [0usize, 13, 3713] {
        let e = run_ctx(&p, &mut frame(len.max(14), 0)[..len].to_vec(), None).unwrap_err();
        assert_eq!(e.kind, TrapKind::InvalidInput, "{len} bytes");
    }
    assert!(run_ctx(&p, &mut frame(3712, 0), None).is_ok());
    let mut ctx = vec![0u8; 192];
    put32(&mut ctx, 160, 59); // wire_len below the packet length
    let e = run_ctx(&p, &mut frame(60, 0), Some(&ctx)).unwrap_err();
    assert_eq!(e.kind, TrapKind::InvalidInput);
    assert!(e.message.contains("wire_len"), "{}", e.message);
}

#[test]
fn packet_pointers_from_before_a_move_no_longer_reach_the_packet() {
    // r7 = data; bpf_skb_change_tail(skb, 4000, 0) moves the packet to a larger buffer;
    // a store through the old r7 must trap, one through a reloaded data pointer lands.
    let stale = prog![
        movr(6, 1),
        ldx(SIZE_W, 7, 1, 76),
        mov(2, 4000),
        mov(3, 0),
        call(38),
        st(SIZE_B, 7, 0, 0x55),
        mov(0, 0),
        exit()
    ];
    let p = load(&stale, TC).unwrap();
    let e = run_ctx(&p, &mut frame(60, 0), None).unwrap_err();
    assert_eq!(e.kind, TrapKind::OutOfBounds, "{}", e.message);
    let fresh = prog![
        movr(6, 1),
        mov(2, 4000),
        mov(3, 0),
        call(38),
        ldx(SIZE_W, 7, 6, 76),
        ldx(SIZE_W, 8, 6, 80),
        movr(2, 7),
        add(2, 4000),
        jr(JMP_JGT, 2, 8, 2),
        st(SIZE_B, 7, 3999, 0x55),
        ldx(SIZE_W, 0, 6, 0),
        exit()
    ];
    let p = load(&fresh, TC).unwrap();
    let mut pkt = frame(60, 0xaa);
    let (out, cx) = run_ctx(&p, &mut pkt, None).unwrap();
    assert_eq!(out.r0, 4000, "skb->len follows the packet");
    let data = cx.packet.unwrap();
    assert_eq!(data.len(), 4000);
    assert_eq!(&data[..60], &frame(60, 0xaa)[..]);
    assert!(
        data[60..3999].iter().all(|&b| b == 0),
        "bytes gained are zeroed"
    );
    assert_eq!(data[3999], 0x55);
}

#[test]
fn legacy_packet_loads_read_the_packet_after_change_head() {
    // bpf_skb_change_head(skb, 4, 0); then LD_ABS byte 4 is the old first byte (2), byte 0 a
    // new zero; r0 = byte4 << 8 | byte0 | len << 16.
    let insns = prog![
        movr(6, 1),
        mov(2, 4),
        mov(3, 0),
        call(43),
        ld_abs(SIZE_B, 4),
        movr(8, 0),
        lsh(8, 8),
        ld_abs(SIZE_B, 0),
        orr(8, 0),
        ldx(SIZE_W, 0, 6, 0),
        lsh(0, 16),
        orr(0, 8),
        exit()
    ];
    let p = load(&insns, TC).unwrap();
    assert_eq!(r0(&p, &mut frame(60, 0), None), 64 << 16 | 2 << 8);
}

#[test]
fn a_redirect_is_reported_when_the_program_returns_tc_act_redirect() {
    // bpf_redirect(5, BPF_F_INGRESS) returns TC_ACT_REDIRECT (7).
    let insns = prog![mov(1, 5), mov(2, 1), call(23), exit()];
    let p = load(&insns, TC).unwrap();
    let (out, cx) = run_ctx(&p, &mut frame(60, 0), None).unwrap();
    assert_eq!(out.r0, 7);
    let r = cx.redirect.expect("a redirect");
    assert_eq!((r.ifindex, r.flags), (5, 1));
    // Returning something else: the packet did not go there.
    let kept = prog![mov(1, 5), mov(2, 0), call(23), mov(0, 0), exit()];
    let p = load(&kept, TC).unwrap();
    assert_eq!(
        run_ctx(&p, &mut frame(60, 0), None).unwrap().1.redirect,
        None
    );
    // A flag other than BPF_F_INGRESS: TC_ACT_SHOT (2), no target.
    let bad = prog![mov(1, 5), mov(2, 2), call(23), exit()];
    let p = load(&bad, TC).unwrap();
    let (out, cx) = run_ctx(&p, &mut frame(60, 0), None).unwrap();
    assert_eq!((out.r0, cx.redirect), (2, None));
}

#[test]
fn the_hash_is_the_one_set_until_invalidated_then_recomputed_and_kept() {
    // set_hash(skb, 0xabcd); r7 = get_hash_recalc(skb); set_hash_invalid(skb);
    // r8 = get_hash_recalc(skb); r9 = get_hash_recalc(skb); r0 = r7 == 0xabcd && r8 == r9 && r8 != 0
    let insns = prog![
        movr(6, 1),
        mov(2, 0xabcd),
        call(48),
        movr(1, 6),
        call(34),
        movr(7, 0),
        movr(1, 6),
        call(41),
        movr(1, 6),
        call(34),
        movr(8, 0),
        movr(1, 6),
        call(34),
        movr(9, 0),
        mov(0, 0),
        ji(JMP_JNE, 7, 0xabcd, 3),
        jr(JMP_JNE, 8, 9, 2),
        ji(JMP_JEQ, 8, 0, 1),
        mov(0, 1),
        exit()
    ];
    let p = load(&insns, TC).unwrap();
    let mut pkt = frame(60, 0);
    pkt[14] = 0x45;
    pkt[23] = 17;
    let (out, cx) = run_ctx(&p, &mut pkt, None).unwrap();
    assert_eq!(out.r0, 1);
    assert_ne!(
        get32(&cx.skb.unwrap(), 68),
        0,
        "skb->hash holds the recomputed hash"
    );
}

#[test]
fn legacy_packet_loads_after_a_callback_moved_the_packet_read_the_moved_packet() {
    // bpf_loop(2, cb, ctx, 0), cb = bpf_skb_change_head(ctx, 4, 0) twice; then LD_ABS byte 8 is
    // the old first byte (2) and skb->len 68. The packet moved inside the callback, twice: the
    // callback's second iteration and the main flow must both see where it is now.
    let insns = prog![
        movr(6, 1),           // 0
        mov(1, 2),            // 1
        lddw_func(2, 10),     // 2-3: function at 2 + 10 + 1 = 13
        movr(3, 6),           // 4
        mov(4, 0),            // 5
        call(181),            // 6: bpf_loop
        ld_abs(SIZE_B, 8),    // 7
        movr(8, 0),           // 8
        ldx(SIZE_W, 0, 6, 0), // 9
        lsh(0, 8),            // 10
        orr(0, 8),            // 11
        exit(),               // 12
        movr(1, 2),           // 13: cb(index, ctx)
        mov(2, 4),            // 14
        mov(3, 0),            // 15
        call(43),             // 16: bpf_skb_change_head
        mov(0, 0),            // 17
        exit()                // 18
    ];
    let p = load(&insns, TC).unwrap();
    assert_eq!(r0(&p, &mut frame(60, 0), None), 68 << 8 | 2);
}

#[test]
fn resizing_helpers_charge_the_budget_for_the_bytes_they_touch() {
    // bpf_skb_change_tail(skb, 64000, 0): 5 instructions and 64000 / 64 = 1000 charged.
    let insns = prog![mov(2, 64000), mov(3, 0), call(38), mov(0, 0), exit()];
    let p = load(&insns, TC).unwrap();
    let (out, cx) = run_ctx(&p, &mut frame(60, 0), None).unwrap();
    assert_eq!((out.insn_count, cx.packet.unwrap().len()), (1005, 64000));
    // A budget that does not cover the work stops the run at the call.
    let e = p
        .run(&mut ebpf_vm::RunInput {
            data: &mut frame(60, 0),
            budget: Some(500),
        })
        .unwrap_err();
    assert_eq!((e.kind, e.pc), (TrapKind::BudgetExhausted, 2));
}
