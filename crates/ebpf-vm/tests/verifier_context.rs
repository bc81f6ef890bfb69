//! Context access per program type against the live kernel (Linux 6.18): what a socket filter
//! may read and write in `__sk_buff` (`cb[]` words, the `sk` pointer and what may be read
//! through it), XDP's `egress_ifindex` (devmap programs only), sign-extending loads of context
//! fields, and the tracepoint and raw tracepoint contexts. Each program is loaded into the
//! kernel with a level-2 log and verified here; verdicts, messages and every instruction line
//! of the logs must agree (`verifier_support::compare`). Skips, saying why, where the kernel
//! cannot be asked.

mod verifier_support;

use ebpf_vm::isa::Insn;
use verifier_support::compare::check;
use verifier_support::*;

fn i(opcode: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn::new(opcode, dst, src, off, imm)
}

/// `LDX | MEM` of `size` bytes: r0 = *(size *)(r1 + off).
fn read(size: u32, off: i16) -> Insn {
    let sz = match size {
        1 => 0x10,
        2 => 0x08,
        4 => 0x00,
        _ => 0x18,
    };
    i(0x61 | sz, 0, 1, off, 0)
}

/// `LDX | MEMSX` of `size` bytes: r0 = *(s`size` *)(r1 + off).
fn read_signed(size: u32, off: i16) -> Insn {
    let sz = match size {
        1 => 0x10,
        2 => 0x08,
        _ => 0x00,
    };
    i(0x81 | sz, 0, 1, off, 0)
}

/// `ST | MEM` of `size` bytes: *(size *)(r1 + off) = 0.
fn store(size: u32, off: i16) -> Insn {
    let sz = match size {
        1 => 0x10,
        2 => 0x08,
        4 => 0x00,
        _ => 0x18,
    };
    i(0x62 | sz, 1, 0, off, 0)
}

/// One access, then `r0 = 0; exit`.
fn one(access: Insn) -> Vec<Insn> {
    vec![access, mov_imm(0, 0), exit()]
}

#[test]
fn socket_filter_cb_words_read_as_u64_at_8_aligned_offsets_only() {
    kernel_or_skip!();
    for off in [48, 56, 52, 60, 64, 49] {
        check(
            &format!("cb u64 read at {off}"),
            SOCKET_FILTER,
            &one(read(8, off)),
            &[],
        );
    }
}

#[test]
fn socket_filter_cb_stores_are_aligned_and_inside_one_word() {
    kernel_or_skip!();
    for (size, off) in [
        (2, 49),
        (4, 51),
        (4, 58),
        (8, 49),
        (8, 60),
        (8, 64),
        (1, 49),
        (2, 50),
        (8, 48),
        (8, 56),
        (4, 66),
    ] {
        check(
            &format!("cb store of {size} at {off}"),
            SOCKET_FILTER,
            &one(store(size, off)),
            &[],
        );
    }
}

#[test]
fn socket_filter_reads_of_other_fields() {
    kernel_or_skip!();
    // len as u64 (only cb may be read as u64), gso_size, the padding after tstamp_type, hash
    // narrow, tc_classid and wire_len (hidden from socket filters).
    for (size, off) in [
        (8, 0),
        (4, 176),
        (1, 181),
        (2, 70),
        (4, 72),
        (4, 160),
        (4, 88),
    ] {
        check(
            &format!("skb read of {size} at {off}"),
            SOCKET_FILTER,
            &one(read(size, off)),
            &[],
        );
    }
}

#[test]
fn sign_extending_loads_of_context_fields() {
    kernel_or_skip!();
    check("ldsx skb len", SOCKET_FILTER, &one(read_signed(4, 0)), &[]);
    check(
        "ldsx skb len high half",
        SOCKET_FILTER,
        &one(read_signed(2, 2)),
        &[],
    );
    check(
        "ldsx skb cb byte",
        SOCKET_FILTER,
        &one(read_signed(1, 49)),
        &[],
    );
    check(
        "ldsx xdp ingress_ifindex",
        XDP,
        &one(read_signed(4, 12)),
        &[],
    );
    check("ldsx xdp data", XDP, &one(read_signed(4, 0)), &[]);
    check("ldsx xdp data_end", XDP, &one(read_signed(4, 4)), &[]);
    check("ldsx kprobe di", KPROBE, &one(read_signed(4, 112)), &[]);
    check("ldsx kprobe byte", KPROBE, &one(read_signed(1, 9)), &[]);
    check(
        "ldsx raw_tp arg",
        RAW_TRACEPOINT,
        &one(read_signed(4, 8)),
        &[],
    );
    check(
        "ldsx tracepoint field",
        TRACEPOINT,
        &one(read_signed(2, 8)),
        &[],
    );
    // The value's bounds after a sign-extending load: the sign decides the branch.
    let p = vec![
        read_signed(1, 49),
        i(0x65, 0, 0, 1, -1), // if r0 s> -1 goto +1
        mov_imm(0, 1),
        mov_imm(0, 0),
        exit(),
    ];
    check("ldsx skb cb byte, then its sign", SOCKET_FILTER, &p, &[]);
}

#[test]
fn xdp_egress_ifindex_is_for_devmap_programs() {
    kernel_or_skip!();
    let p = vec![read(4, 20), mov_imm(0, 2), exit()];
    check("egress_ifindex, plain xdp", XDP, &p, &[]);
    check("egress_ifindex, devmap", XDP_DEVMAP, &p, &[]);
    let narrow = vec![read(2, 20), mov_imm(0, 2), exit()];
    check("egress_ifindex narrow, devmap", XDP_DEVMAP, &narrow, &[]);
    check(
        "ingress_ifindex, devmap",
        XDP_DEVMAP,
        &[read(4, 12), mov_imm(0, 2), exit()],
        &[],
    );
}

#[test]
fn tracepoint_records_past_the_common_header() {
    kernel_or_skip!();
    for (size, off) in [
        (8, 0),
        (4, 4),
        (8, 8),
        (4, 8),
        (1, 3),
        (8, 4),
        (8, 8184),
        (8, 8192),
        (1, 8191),
        (2, 7),
    ] {
        check(
            &format!("tracepoint read of {size} at {off}"),
            TRACEPOINT,
            &one(read(size, off)),
            &[],
        );
    }
    check("tracepoint store", TRACEPOINT, &one(store(8, 8)), &[]);
}

#[test]
fn raw_tracepoint_arguments() {
    kernel_or_skip!();
    for (size, off) in [(8, 0), (8, 88), (8, 96), (4, 92), (4, 4), (8, 4), (1, 95)] {
        check(
            &format!("raw_tp read of {size} at {off}"),
            RAW_TRACEPOINT,
            &one(read(size, off)),
            &[],
        );
    }
    check("raw_tp store", RAW_TRACEPOINT, &one(store(8, 0)), &[]);
}

/// r2 = skb->sk; if r2 == 0 goto exit; then `access` through r2.
fn through_sk(access: Insn) -> Vec<Insn> {
    vec![
        i(0x79, 2, 1, 168, 0), // r2 = *(u64 *)(r1 + 168)
        i(0x15, 2, 0, 1, 0),   // if r2 == 0 goto +1
        access,
        mov_imm(0, 0),
        exit(),
    ]
}

#[test]
fn skb_sk_is_a_sock_common_pointer_that_may_be_null() {
    kernel_or_skip!();
    check("sk read", SOCKET_FILTER, &one(read(8, 168)), &[]);
    check("sk read as u32", SOCKET_FILTER, &one(read(4, 168)), &[]);
    check("sk high half", SOCKET_FILTER, &one(read(4, 172)), &[]);
    check("sk store", SOCKET_FILTER, &one(store(8, 168)), &[]);
    // Fields through the pointer, after the null check.
    for (size, off) in [
        (4, 0),  // bound_dev_if
        (4, 4),  // family
        (1, 4),  // family, narrow
        (1, 5),  // inside family: not at its start
        (4, 8),  // type: full sockets only
        (4, 20), // priority: full sockets only
        (2, 26), // src_ip4, narrow
        (4, 44), // src_port
        (2, 48), // dst_port
        (1, 49), // dst_port's second byte
        (2, 50), // the padding after dst_port
        (4, 48), // dst_port's u32 slot
        (4, 72), // state
        (2, 72), // state, narrow
        (2, 74), // inside state
        (1, 0),  // bound_dev_if, narrow
        (4, 76), // rx_queue_mapping
        (4, 80), // past struct bpf_sock
        (8, 0),  // 8 bytes
        (2, 3),  // misaligned
    ] {
        let r0_from_r2 = i(0x61 | size_bits(size), 0, 2, off, 0);
        check(
            &format!("sk read of {size} at {off}"),
            SOCKET_FILTER,
            &through_sk(r0_from_r2),
            &[],
        );
    }
    check(
        "sk store through",
        SOCKET_FILTER,
        &through_sk(i(0x62, 2, 0, 4, 0)),
        &[],
    );
    // Without the null check, and moved.
    let unchecked = vec![
        i(0x79, 2, 1, 168, 0),
        i(0x61, 0, 2, 4, 0),
        mov_imm(0, 0),
        exit(),
    ];
    check("sk read unchecked", SOCKET_FILTER, &unchecked, &[]);
    check(
        "sk moved",
        SOCKET_FILTER,
        &through_sk(i(0x07, 2, 0, 0, 4)),
        &[],
    );
    let moved_unchecked = vec![
        i(0x79, 2, 1, 168, 0),
        i(0x07, 2, 0, 0, 4),
        mov_imm(0, 0),
        exit(),
    ];
    check("sk moved unchecked", SOCKET_FILTER, &moved_unchecked, &[]);
    // A null check of the non-null pointer is decided.
    let twice = vec![
        i(0x79, 2, 1, 168, 0),
        i(0x15, 2, 0, 3, 0), // if r2 == 0 goto +3
        i(0x15, 2, 0, 1, 0), // if r2 == 0 goto +1 (never)
        i(0x61, 0, 2, 4, 0),
        mov_imm(0, 0),
        exit(),
    ];
    check("sk checked twice", SOCKET_FILTER, &twice, &[]);
}

fn size_bits(size: u32) -> u8 {
    match size {
        1 => 0x10,
        2 => 0x08,
        4 => 0x00,
        _ => 0x18,
    }
}
