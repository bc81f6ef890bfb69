//! Socket filter programs: `struct __sk_buff` as hand-built programs read it, with the offsets of
//! linux/bpf.h written out (len 0, pkt_type 4, mark 8, protocol 16, priority 32, ifindex 40,
//! cb[5] 48, hash 68, data 76, data_end 80), the load-time rewriting of the pointer fields, legacy
//! packet loads, and what the kernel refuses.

mod context_support;

use context_support::*;
use ebpf_vm::isa::decode_all;
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::{ErrorCode, ProgramType, TrapKind};

const SF: ProgramType = ProgramType::SocketFilter;

/// An Ethernet frame: dst ff.., src 02.., ethertype 0x0800, then `payload`.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[2, 0, 0, 0, 0, 1]);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(payload);
    f
}

#[test]
fn len_is_the_packet_length_and_protocol_its_ethertype_in_network_order() {
    let len = load(&prog![ldx(SIZE_W, 0, 1, 0), exit()], SF).unwrap();
    let mut pkt = frame(&[0u8; 46]);
    assert_eq!(r0(&len, &mut pkt, None), 60);
    // skb->protocol holds htons(ETH_P_IP): bytes 08 00 read as a little-endian u16 = 0x0008.
    let proto = load(&prog![ldx(SIZE_W, 0, 1, 16), exit()], SF).unwrap();
    assert_eq!(r0(&proto, &mut pkt, None), 0x0008);
    // A protocol given in the context image wins (htons(ETH_P_IPV6) = 0xdd86).
    let mut ctx = vec![0u8; 20];
    put32(&mut ctx, 16, 0xdd86);
    assert_eq!(r0(&proto, &mut pkt, Some(&ctx)), 0xdd86);
    // A frame too short for an Ethernet header has no protocol.
    assert_eq!(r0(&proto, &mut [1, 2, 3], None), 0);
}

#[test]
fn caller_settable_fields_are_read_back() {
    let mut ctx = vec![0u8; 192];
    put32(&mut ctx, 4, 3); // pkt_type = PACKET_OTHERHOST
    put32(&mut ctx, 8, 0xdead_beef); // mark
    put32(&mut ctx, 32, 7); // priority
    put32(&mut ctx, 40, 42); // ifindex
    put32(&mut ctx, 68, 0x1234_5678); // hash
    put32(&mut ctx, 48 + 16, 99); // cb[4]
    let mut pkt = frame(&[0u8; 10]);
    for (off, want) in [
        (4, 3u64),
        (8, 0xdead_beef),
        (32, 7),
        (40, 42),
        (68, 0x1234_5678),
        (64, 99),
    ] {
        let p = load(&prog![ldx(SIZE_W, 0, 1, off), exit()], SF).unwrap();
        assert_eq!(r0(&p, &mut pkt, Some(&ctx)), want, "field at {off}");
    }
    // len is the packet's length unless the image gives a larger one (the length on the wire of
    // a packet captured short, as libpcap's `len`); a smaller one is replaced.
    let len = load(&prog![ldx(SIZE_W, 0, 1, 0), exit()], SF).unwrap();
    put32(&mut ctx, 0, 5000);
    assert_eq!(r0(&len, &mut pkt, Some(&ctx)), 5000);
    put32(&mut ctx, 0, 10);
    assert_eq!(r0(&len, &mut pkt, Some(&ctx)), 24);
    put32(&mut ctx, 0, 0);
    assert_eq!(r0(&len, &mut pkt, Some(&ctx)), 24);
}

#[test]
fn data_and_data_end_are_rewritten_into_real_pointers() {
    // r2 = skb->data; r3 = skb->data_end; if r2 + 14 > r3 drop; return data[12] << 8 | data[13]
    // + (data_end - data) << 16
    let insns = prog![
        ldx(SIZE_W, 2, 1, 76),
        ldx(SIZE_W, 3, 1, 80),
        movr(4, 2),
        add(4, 14),
        jr(JMP_JGT, 4, 3, 8),
        ldx(SIZE_B, 0, 2, 12),
        lsh(0, 8),
        ldx(SIZE_B, 5, 2, 13),
        orr(0, 5),
        movr(5, 3),
        subr(5, 2),
        lsh(5, 16),
        orr(0, 5),
        exit(),
        mov(0, 0),
        exit(),
    ];
    let p = load(&insns, SF).unwrap();
    let mut pkt = frame(&[0u8; 20]);
    assert_eq!(r0(&p, &mut pkt, None), 34 << 16 | 0x0800);
    // Too short: the bounds check against data_end takes the drop branch.
    assert_eq!(r0(&p, &mut [0u8; 13], None), 0);
    // The loads became 64-bit loads from the hidden tail (192 = data, 200 = data_end).
    let x = decode_all(&p.xlated());
    assert_eq!(
        (x[0].opcode, x[0].off),
        (CLASS_LDX | MODE_MEM | SIZE_DW, 192)
    );
    assert_eq!(
        (x[1].opcode, x[1].off),
        (CLASS_LDX | MODE_MEM | SIZE_DW, 200)
    );
}

#[test]
fn the_context_pointer_is_followed_through_copies_and_stack_spills() {
    // r6 = r1; *(u64 *)(r10 - 8) = r6; r6 = 0; r7 = *(u64 *)(r10 - 8);
    // r0 = data_end - data
    let insns = prog![
        movr(6, 1),
        stx(SIZE_DW, 10, 6, -8),
        mov(6, 0),
        ldx(SIZE_DW, 7, 10, -8),
        ldx(SIZE_W, 2, 7, 76),
        ldx(SIZE_W, 0, 7, 80),
        subr(0, 2),
        exit(),
    ];
    let p = load(&insns, SF).unwrap();
    assert_eq!(r0(&p, &mut [0u8; 77], None), 77);
}

#[test]
fn context_is_passed_to_subprograms() {
    // main: call f; exit.  f: r0 = data_end - data; exit
    let insns = prog![
        call_local(1),
        exit(),
        ldx(SIZE_W, 2, 1, 76),
        ldx(SIZE_W, 0, 1, 80),
        subr(0, 2),
        exit(),
    ];
    let p = load(&insns, SF).unwrap();
    assert_eq!(r0(&p, &mut [0u8; 9], None), 9);
}

#[test]
fn cb_is_writable_and_comes_back_in_the_context_output() {
    // cb[1] = 77; cb[2] += 1 (through a load and a store); return 0
    let insns = prog![
        st(SIZE_W, 1, 52, 77),
        ldx(SIZE_W, 2, 1, 56),
        add(2, 1),
        stx(SIZE_W, 1, 2, 56),
        mov(0, 0),
        exit(),
    ];
    let p = load(&insns, SF).unwrap();
    let mut ctx = vec![0u8; 60];
    put32(&mut ctx, 56, 41);
    put32(&mut ctx, 8, 5);
    let (_, out) = run_ctx(&p, &mut [0u8; 20], Some(&ctx)).unwrap();
    let c = out.ctx.expect("socket filters return their context");
    assert_eq!(c.len(), 192);
    assert_eq!(get32(&c, 52), 77);
    assert_eq!(get32(&c, 56), 42);
    assert_eq!(get32(&c, 8), 5, "mark unchanged");
    assert_eq!(get32(&c, 0), 20, "len");
    assert_eq!(
        get32(&c, 76),
        0,
        "pointer fields read 0 outside the program"
    );
}

#[test]
fn the_kernels_context_rules_are_load_errors_naming_the_instruction() {
    // A store to mark (read-only for socket filters).
    let e = load(&prog![mov(0, 0), st(SIZE_W, 1, 8, 1), exit()], SF).unwrap_err();
    assert_eq!((e.code, e.insn), (ErrorCode::Eacces, Some(1)));
    // A 2-byte load of data.
    let e = load(&prog![ldx(SIZE_H, 0, 1, 76), exit()], SF).unwrap_err();
    assert_eq!((e.code, e.insn), (ErrorCode::Eacces, Some(0)));
    // Past the end of the struct.
    let e = load(&prog![ldx(SIZE_W, 0, 1, 192), exit()], SF).unwrap_err();
    assert_eq!((e.code, e.insn), (ErrorCode::Eacces, Some(0)));
    // r1 is the context on one path and the frame pointer on the other.
    let e = load(
        &prog![
            ji(JMP_JEQ, 2, 0, 1),
            movr(1, 10),
            ldx(SIZE_W, 0, 1, 76),
            exit()
        ],
        SF,
    )
    .unwrap_err();
    assert_eq!((e.code, e.insn), (ErrorCode::Eacces, Some(2)));
    assert!(e.message.contains("different pointers"), "{}", e.message);
    // An XDP helper (bpf_xdp_adjust_head = 44) does not exist for socket filters.
    let e = load(&prog![mov(2, 0), call(44), exit()], SF).unwrap_err();
    assert_eq!(e.insn, Some(1));
    assert!(e.message.contains("unknown helper 44"), "{}", e.message);
}

#[test]
fn legacy_packet_loads_read_the_packet_big_endian() {
    let mut pkt = frame(&[0x45, 0x00, 0x00, 0x54]);
    let h = load(&prog![movr(6, 1), ld_abs(SIZE_H, 12), exit()], SF).unwrap();
    assert_eq!(r0(&h, &mut pkt, None), 0x0800);
    let w = load(
        &prog![movr(6, 1), mov(7, 10), ld_ind(SIZE_W, 7, 4), exit()],
        SF,
    )
    .unwrap();
    assert_eq!(r0(&w, &mut pkt, None), 0x4500_0054);
    // Out of the packet: the program ends with r0 = 0, as in the kernel.
    let far = load(
        &prog![movr(6, 1), ld_abs(SIZE_B, 18), mov(0, 9), exit()],
        SF,
    )
    .unwrap();
    assert_eq!(r0(&far, &mut pkt, None), 0);
}

#[test]
fn the_packet_is_read_only_and_bad_context_images_are_refused() {
    let p = load(
        &prog![
            ldx(SIZE_W, 2, 1, 76),
            st(SIZE_B, 2, 0, 1),
            mov(0, 0),
            exit()
        ],
        SF,
    )
    .unwrap();
    let t = run_ctx(&p, &mut [0u8; 4], None).unwrap_err();
    assert_eq!((t.kind, t.pc), (TrapKind::ReadOnly, 1));
    let ok = load(&prog![mov(0, 0), exit()], SF).unwrap();
    let t = run_ctx(&ok, &mut [0u8; 4], Some(&[0u8; 193])).unwrap_err();
    assert_eq!(t.kind, TrapKind::InvalidInput);
    assert_eq!(t.kind.code(), ErrorCode::Einval);
}

#[test]
fn the_side_table_records_the_field_of_each_context_access() {
    // r6 = ctx (a copy); r2 = skb->data (76, rewritten); cb[1] = 7 (52, a store through the
    // copy); r0 = skb->len (0); a stack store and an arithmetic instruction touch no field.
    let insns = prog![
        movr(6, 1),
        ldx(SIZE_W, 2, 6, 76),
        st(SIZE_W, 6, 52, 7),
        st(SIZE_DW, 10, -8, 0),
        ldx(SIZE_W, 0, 1, 0),
        add(0, 1),
        exit(),
    ];
    let p = load(&insns, SF).unwrap();
    let fields: Vec<Option<u16>> = p.analysis().aux.iter().map(|a| a.ctx_field).collect();
    assert_eq!(
        fields,
        [None, Some(76), Some(52), None, Some(0), None, None],
        "as the program wrote them"
    );
    // The load of data became a 64-bit load of the hidden pointer; the side table still says 76.
    let x = decode_all(&p.xlated());
    assert_eq!(x[1].opcode, CLASS_LDX | MODE_MEM | SIZE_DW);
    assert_ne!(x[1].off, 76);
}
