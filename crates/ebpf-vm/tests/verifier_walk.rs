//! The path walk (`verifier::verify`) against the live kernel (Linux 6.18): hand-written
//! programs, accepted and rejected, are loaded into the kernel with a level-2 log and verified
//! here, compared as `verifier_support::compare` says (verdict, message, every instruction
//! line of the log). Skips, saying why, where the kernel cannot be asked.

mod verifier_support;

use ebpf_vm::analysis::{analyse, AnalysisOptions};
use ebpf_vm::isa::Insn;
use ebpf_vm::verifier::{verify, ProgramKind, VerifyOptions};
use verifier_support::compare::{check, check_licensed, kernel_prototype_of};
use verifier_support::*;

/// `BPF_MAP_TYPE_ARRAY`, 4-byte keys, 8-byte values, one element (the loader names it `m0`).
const ARRAY: &str = "2:4:8:1";
/// `BPF_MAP_TYPE_HASH` of the same shape: a lookup may find nothing.
const HASH: &str = "1:4:8:1";

fn i(opcode: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn::new(opcode, dst, src, off, imm)
}

/// `lddw dst, map 0`.
fn ld_map(dst: u8) -> [Insn; 2] {
    [i(0x18, dst, 1, 0, 0), i(0, 0, 0, 0, 0)]
}

// XDP: data (r2) and data_end (r3) from the context.
fn xdp_prologue() -> Vec<Insn> {
    vec![i(0x61, 2, 1, 0, 0), i(0x61, 3, 1, 4, 0)]
}

#[test]
fn packet_reads_checked_against_data_end_are_accepted() {
    kernel_or_skip!();
    let mut p = xdp_prologue();
    p.extend([
        i(0xbf, 4, 2, 0, 0),  // r4 = r2
        i(0x07, 4, 0, 0, 14), // r4 += 14
        i(0x2d, 4, 3, 2, 0),  // if r4 > r3 goto +2
        i(0x71, 0, 2, 12, 0), // r0 = *(u8 *)(r2 + 12)
        i(0x71, 5, 2, 13, 0), // r5 = *(u8 *)(r2 + 13)
        i(0xb7, 0, 0, 0, 2),  // r0 = XDP_PASS
        i(0x95, 0, 0, 0, 0),
    ]);
    check("xdp parse", XDP, &p, &[]);
}

#[test]
fn a_packet_read_without_a_check_is_rejected() {
    kernel_or_skip!();
    let mut p = xdp_prologue();
    p.extend([
        i(0x71, 0, 2, 12, 0),
        i(0xb7, 0, 0, 0, 2),
        i(0x95, 0, 0, 0, 0),
    ]);
    check("xdp unchecked read", XDP, &p, &[]);
}

#[test]
fn a_packet_read_past_the_checked_range_is_rejected() {
    kernel_or_skip!();
    let mut p = xdp_prologue();
    p.extend([
        i(0xbf, 4, 2, 0, 0),
        i(0x07, 4, 0, 0, 14),
        i(0x2d, 4, 3, 1, 0),  // if r4 > r3 goto +1
        i(0x69, 0, 2, 13, 0), // r0 = *(u16 *)(r2 + 13): bytes 13 and 14
        i(0xb7, 0, 0, 0, 2),
        i(0x95, 0, 0, 0, 0),
    ]);
    check("xdp read past range", XDP, &p, &[]);
}

#[test]
fn the_packet_check_written_the_other_way_round() {
    kernel_or_skip!();
    let mut p = xdp_prologue();
    p.extend([
        i(0xbf, 4, 2, 0, 0),
        i(0x07, 4, 0, 0, 8),
        i(0xbd, 3, 4, 1, 0), // if r3 <= r4 goto +1 (pkt_end <= data + 8: fall-through has 9 bytes)
        i(0x71, 0, 2, 8, 0), // r0 = *(u8 *)(r2 + 8)
        i(0xb7, 0, 0, 0, 1),
        i(0x95, 0, 0, 0, 0),
    ]);
    check("xdp pkt_end <= pkt", XDP, &p, &[]);
}

fn lookup_prologue() -> Vec<Insn> {
    let mut p = vec![
        i(0x62, 10, 0, -4, 0), // *(u32 *)(r10 -4) = 0
        i(0xbf, 2, 10, 0, 0),  // r2 = r10
        i(0x07, 2, 0, 0, -4),  // r2 += -4
    ];
    p.extend(ld_map(1));
    p.push(i(0x85, 0, 0, 0, 1)); // call bpf_map_lookup_elem
    p
}

#[test]
fn a_map_value_read_after_the_null_check_is_accepted() {
    kernel_or_skip!();
    let mut p = lookup_prologue();
    p.extend([
        i(0x15, 0, 0, 2, 0), // if r0 == 0 goto +2
        i(0x79, 1, 0, 0, 0), // r1 = *(u64 *)(r0 + 0)
        i(0x7b, 0, 1, 0, 0), // *(u64 *)(r0 + 0) = r1
        i(0xb7, 0, 0, 0, 0),
        i(0x95, 0, 0, 0, 0),
    ]);
    check("lookup + null check", SOCKET_FILTER, &p, &[HASH]);
    check("array lookup + null check", SOCKET_FILTER, &p, &[ARRAY]);
}

#[test]
fn a_map_value_read_without_the_null_check_is_rejected() {
    kernel_or_skip!();
    let mut p = lookup_prologue();
    p.extend([
        i(0x79, 1, 0, 0, 0),
        i(0xb7, 0, 0, 0, 0),
        i(0x95, 0, 0, 0, 0),
    ]);
    check("lookup without null check", SOCKET_FILTER, &p, &[HASH]);
}

#[test]
fn an_array_element_with_a_constant_key_needs_no_null_check() {
    kernel_or_skip!();
    let mut p = lookup_prologue();
    p.extend([
        i(0x79, 1, 0, 0, 0),
        i(0xb7, 0, 0, 0, 0),
        i(0x95, 0, 0, 0, 0),
    ]);
    check("array lookup, constant key", SOCKET_FILTER, &p, &[ARRAY]);
}

#[test]
fn a_map_value_read_past_the_value_is_rejected() {
    kernel_or_skip!();
    let mut p = lookup_prologue();
    p.extend([
        i(0x55, 0, 0, 1, 0), // if r0 != 0 goto +1
        i(0x95, 0, 0, 0, 0), // exit (r0 = 0)
        i(0x79, 1, 0, 4, 0), // r1 = *(u64 *)(r0 + 4)
        i(0xb7, 0, 0, 0, 0),
        i(0x95, 0, 0, 0, 0),
    ]);
    check("map value past end", SOCKET_FILTER, &p, &[HASH]);
}

#[test]
fn a_bounded_index_into_a_map_value_is_accepted() {
    kernel_or_skip!();
    let mut p = vec![i(0x61, 6, 1, 0, 0)]; // r6 = skb->len
    p.extend(lookup_prologue());
    p.extend([
        i(0x15, 0, 0, 3, 0), // if r0 == 0 goto +3
        i(0x57, 6, 0, 0, 7), // r6 &= 7
        i(0x0f, 0, 6, 0, 0), // r0 += r6
        i(0x71, 1, 0, 0, 0), // r1 = *(u8 *)(r0 + 0)
        i(0xb7, 0, 0, 0, 0),
        i(0x95, 0, 0, 0, 0),
    ]);
    check("bounded index", SOCKET_FILTER, &p, &[HASH]);
}

#[test]
fn an_unbounded_index_into_a_map_value_is_rejected() {
    kernel_or_skip!();
    let mut p = vec![i(0x61, 6, 1, 0, 0)];
    p.extend(lookup_prologue());
    p.extend([
        i(0x15, 0, 0, 2, 0),
        i(0x0f, 0, 6, 0, 0), // r0 += r6 (0..u32 max)
        i(0x71, 1, 0, 0, 0),
        i(0xb7, 0, 0, 0, 0),
        i(0x95, 0, 0, 0, 0),
    ]);
    check("unbounded index", SOCKET_FILTER, &p, &[HASH]);
}

#[test]
fn stack_spills_and_fills() {
    kernel_or_skip!();
    let p = [
        i(0x61, 2, 1, 0, 0),    // r2 = skb->len
        i(0x57, 2, 0, 0, 0xff), // r2 &= 255
        i(0x7b, 10, 2, -8, 0),  // *(u64 *)(r10 -8) = r2
        i(0x7b, 10, 1, -16, 0), // *(u64 *)(r10 -16) = r1 (ctx)
        i(0x62, 10, 0, -24, 7), // *(u32 *)(r10 -24) = 7
        i(0x7a, 10, 0, -32, 0), // *(u64 *)(r10 -32) = 0
        i(0x79, 3, 10, -8, 0),  // r3 = *(u64 *)(r10 -8)
        i(0x79, 4, 10, -16, 0), // r4 = *(u64 *)(r10 -16)
        i(0x61, 5, 4, 0, 0),    // r5 = *(u32 *)(r4 +0)
        i(0x79, 6, 10, -32, 0), // r6 = *(u64 *)(r10 -32)
        i(0x61, 7, 10, -24, 0), // r7 = *(u32 *)(r10 -24)
        i(0xbf, 0, 3, 0, 0),
        i(0x95, 0, 0, 0, 0),
    ];
    check("spill and fill", SOCKET_FILTER, &p, &[]);
}

#[test]
fn branches_refine_both_sides() {
    kernel_or_skip!();
    let p = [
        i(0x61, 2, 1, 0, 0),
        i(0xbf, 0, 2, 0, 0),   // r0 = r2 (linked)
        i(0x25, 0, 0, 2, 100), // if r0 > 100 goto +2
        i(0x07, 0, 0, 0, 1),
        i(0x95, 0, 0, 0, 0),
        i(0xa6, 2, 0, 1, 7), // if w2 < 7 goto +1
        i(0xb7, 0, 0, 0, 0),
        i(0x95, 0, 0, 0, 0),
    ];
    check("branches", SOCKET_FILTER, &p, &[]);
}

#[test]
fn rules_the_kernel_states_in_its_own_words() {
    kernel_or_skip!();
    let exit = i(0x95, 0, 0, 0, 0);
    let r0 = i(0xb7, 0, 0, 0, 0);
    let cases: Vec<(&str, u32, Vec<Insn>)> = vec![
        (
            "uninitialised register",
            SOCKET_FILTER,
            vec![i(0xbf, 0, 3, 0, 0), exit],
        ),
        ("uninitialised r0 at exit", SOCKET_FILTER, vec![exit]),
        (
            "write to r10",
            SOCKET_FILTER,
            vec![i(0xb7, 10, 0, 0, 0), r0, exit],
        ),
        (
            "stack out of bounds",
            SOCKET_FILTER,
            vec![r0, i(0x7b, 10, 0, -520, 0), exit],
        ),
        (
            "stack above the frame",
            SOCKET_FILTER,
            vec![r0, i(0x7b, 10, 0, -4, 0), exit],
        ),
        (
            "modified ctx",
            SOCKET_FILTER,
            vec![i(0x07, 1, 0, 0, 8), i(0x61, 0, 1, 0, 0), exit],
        ),
        (
            "bitwise on pointer",
            SOCKET_FILTER,
            vec![i(0x57, 1, 0, 0, 1), r0, exit],
        ),
        (
            "32-bit pointer arithmetic",
            SOCKET_FILTER,
            vec![i(0x04, 1, 0, 0, 1), r0, exit],
        ),
        (
            "pointer times",
            SOCKET_FILTER,
            vec![i(0x27, 1, 0, 0, 2), r0, exit],
        ),
        (
            "stack pointer minus",
            SOCKET_FILTER,
            vec![i(0xbf, 2, 10, 0, 0), i(0x17, 2, 0, 0, 8), r0, exit],
        ),
        (
            "xdp ctx past the struct",
            XDP,
            vec![i(0x61, 0, 1, 24, 0), exit],
        ),
        ("xdp ctx narrow", XDP, vec![i(0x71, 0, 1, 0, 0), exit]),
        (
            "skb data from a socket filter",
            SOCKET_FILTER,
            vec![i(0x61, 0, 1, 76, 0), exit],
        ),
        (
            "skb cb write",
            SOCKET_FILTER,
            vec![r0, i(0x63, 1, 0, 48, 0), exit],
        ),
        (
            "skb len write",
            SOCKET_FILTER,
            vec![r0, i(0x63, 1, 0, 0, 0), exit],
        ),
        (
            "scalar dereference",
            SOCKET_FILTER,
            vec![r0, i(0x71, 1, 0, 0, 0), exit],
        ),
        (
            "div by zero",
            SOCKET_FILTER,
            vec![r0, i(0x37, 0, 0, 0, 0), exit],
        ),
        (
            "shift too far",
            SOCKET_FILTER,
            vec![r0, i(0x64, 0, 0, 0, 32), exit],
        ),
        (
            "pointer minus pointer",
            SOCKET_FILTER,
            vec![i(0xbf, 0, 10, 0, 0), i(0x1f, 0, 1, 0, 0), exit],
        ),
        (
            "scalar minus pointer",
            SOCKET_FILTER,
            vec![r0, i(0x1f, 0, 1, 0, 0), exit],
        ),
        (
            "xdp packet write",
            XDP,
            vec![
                i(0x61, 2, 1, 0, 0),
                i(0x61, 3, 1, 4, 0),
                i(0xbf, 4, 2, 0, 0),
                i(0x07, 4, 0, 0, 1),
                i(0x2d, 4, 3, 1, 0),
                i(0x72, 2, 0, 0, 1),
                r0,
                exit,
            ],
        ),
    ];
    for (name, ty, p) in cases {
        check(name, ty, &p, &[]);
    }
}

#[test]
fn a_bounded_loop_is_walked_to_its_end() {
    kernel_or_skip!();
    let p = [
        i(0xb7, 1, 0, 0, 0),  // r1 = 0
        i(0x07, 1, 0, 0, 1),  // r1 += 1
        i(0xa5, 1, 0, -2, 4), // if r1 < 4 goto -2
        i(0xbf, 0, 1, 0, 0),
        i(0x95, 0, 0, 0, 0),
    ];
    check("bounded loop", SOCKET_FILTER, &p, &[]);
}

#[test]
fn a_null_check_covers_every_copy_of_the_pointer() {
    kernel_or_skip!();
    let mut p = lookup_prologue();
    p.extend([
        i(0xbf, 6, 0, 0, 0),    // r6 = r0
        i(0x7b, 10, 0, -16, 0), // *(u64 *)(r10 -16) = r0
        i(0x55, 0, 0, 2, 0),    // if r0 != 0 goto +2
        i(0xb7, 0, 0, 0, 0),
        i(0x95, 0, 0, 0, 0),
        i(0x79, 7, 10, -16, 0), // r7 = *(u64 *)(r10 -16)
        i(0x79, 1, 6, 0, 0),    // r1 = *(u64 *)(r6 + 0)
        i(0x79, 2, 7, 0, 0),    // r2 = *(u64 *)(r7 + 0)
        i(0xb7, 0, 0, 0, 0),
        i(0x95, 0, 0, 0, 0),
    ]);
    check("null check copies", SOCKET_FILTER, &p, &[HASH]);
}

#[test]
fn a_packet_pointer_moved_by_a_variable_needs_its_own_check() {
    kernel_or_skip!();
    let mut p = xdp_prologue();
    p.extend([
        i(0x61, 5, 1, 12, 0),  // r5 = ctx->ingress_ifindex
        i(0x57, 5, 0, 0, 0xf), // r5 &= 15
        i(0xbf, 4, 2, 0, 0),   // r4 = r2
        i(0x0f, 4, 5, 0, 0),   // r4 += r5
        i(0xbf, 6, 4, 0, 0),   // r6 = r4
        i(0x07, 6, 0, 0, 2),   // r6 += 2
        i(0x2d, 6, 3, 1, 0),   // if r6 > r3 goto +1
        i(0x69, 0, 4, 0, 0),   // r0 = *(u16 *)(r4 + 0)
        i(0xb7, 0, 0, 0, 2),
        i(0x95, 0, 0, 0, 0),
    ]);
    check("variable packet offset", XDP, &p, &[]);
    // The same read through the pointer before the variable was added: no range for it.
    let mut q = xdp_prologue();
    q.extend([
        i(0x61, 5, 1, 12, 0),
        i(0x57, 5, 0, 0, 0xf),
        i(0xbf, 4, 2, 0, 0),
        i(0x0f, 4, 5, 0, 0),
        i(0xbf, 6, 4, 0, 0),
        i(0x07, 6, 0, 0, 2),
        i(0x2d, 6, 3, 1, 0),
        i(0x69, 0, 2, 0, 0), // r0 = *(u16 *)(r2 + 0): r2 was never checked
        i(0xb7, 0, 0, 0, 2),
        i(0x95, 0, 0, 0, 0),
    ]);
    check("variable packet offset, wrong pointer", XDP, &q, &[]);
}

#[test]
fn map_update_with_key_and_value_on_the_stack() {
    kernel_or_skip!();
    let mut p = vec![
        i(0x62, 10, 0, -4, 1),  // key = 1
        i(0x7a, 10, 0, -16, 7), // value = 7
        i(0xbf, 2, 10, 0, 0),
        i(0x07, 2, 0, 0, -4),
        i(0xbf, 3, 10, 0, 0),
        i(0x07, 3, 0, 0, -16),
        i(0xb7, 4, 0, 0, 0),
    ];
    p.extend(ld_map(1));
    p.extend([i(0x85, 0, 0, 0, 2), i(0x95, 0, 0, 0, 0)]);
    check("update", SOCKET_FILTER, &p, &[HASH]);
}

#[test]
fn sign_extending_loads_and_moves() {
    kernel_or_skip!();
    let p = [
        i(0x61, 2, 1, 0, 0),
        i(0x7b, 10, 2, -8, 0), // spill the u32
        i(0x91, 3, 10, -8, 0), // r3 = *(s8 *)(r10 -8)
        i(0x89, 4, 10, -8, 0), // r4 = *(s16 *)(r10 -8)
        i(0x81, 5, 10, -8, 0), // r5 = *(s32 *)(r10 -8)
        i(0xbf, 6, 2, 16, 0),  // r6 = (s16)r2
        i(0xbc, 7, 10, 0, 0),  // w7 = w10 (part of a pointer)
        i(0xb7, 0, 0, 0, 0),
        i(0x95, 0, 0, 0, 0),
    ];
    check("sign extension", SOCKET_FILTER, &p, &[]);
}

#[test]
fn jumps_between_pointers_explore_both_sides() {
    kernel_or_skip!();
    let p = [
        i(0xbf, 2, 10, 0, 0),
        i(0x2d, 2, 1, 1, 0), // if r2 > r1 goto +1
        i(0xb7, 0, 0, 0, 1),
        i(0xb7, 0, 0, 0, 0),
        i(0x95, 0, 0, 0, 0),
    ];
    check("pointer comparison", SOCKET_FILTER, &p, &[]);
}

#[test]
fn spilled_pointers_are_filled_whole() {
    kernel_or_skip!();
    let exit = i(0x95, 0, 0, 0, 0);
    let r0 = i(0xb7, 0, 0, 0, 0);
    // A pointer spilled, then read back 4 bytes at a time.
    check(
        "narrow fill of a pointer",
        SOCKET_FILTER,
        &[i(0x7b, 10, 1, -8, 0), i(0x61, 2, 10, -8, 0), r0, exit],
        &[],
    );
    // A pointer spilled, then half of it overwritten, then filled.
    check(
        "overwritten pointer spill",
        SOCKET_FILTER,
        &[
            i(0x7b, 10, 1, -8, 0),
            i(0x62, 10, 0, -8, 0),
            i(0x79, 2, 10, -8, 0),
            r0,
            exit,
        ],
        &[],
    );
}

// Raw programs (r1 = data_size bytes of memory, r2 = data_size): no kernel type to compare with;
// the expected messages are the kernel's wording for memory pointers (PTR_TO_MEM), the expected
// verdicts hand-derived.

fn verify_raw(slots: &[Insn], data_size: u32) -> Result<u64, String> {
    let analysis = analyse(slots, &AnalysisOptions::default()).expect("the program analyses");
    let no_names = |_: i32| None;
    let options = VerifyOptions {
        globals: &[],
        unprivileged: false,
        exit_range: false,
        kind: ProgramKind::Raw { data_size },
        maps: &[],
        helper_name: &no_names,
        prototype: &kernel_prototype_of,
        gpl_compatible: true,
        log_level: 1,
    };
    verify(&analysis, &options)
        .map(|v| v.processed)
        .map_err(|r| r.message)
}

#[test]
fn raw_programs_read_their_data_within_its_size() {
    // r0 = *(u32 *)(r1 + 4) on 8 bytes: bytes 4..8, inside.
    let inside = [i(0x61, 0, 1, 4, 0), i(0x95, 0, 0, 0, 0)];
    assert_eq!(verify_raw(&inside, 8), Ok(2));
    // Bytes 6..10 of 8: outside, at the fixed offset (the kernel's PTR_TO_MEM wording).
    let outside = [i(0x61, 0, 1, 6, 0), i(0x95, 0, 0, 0, 0)];
    assert_eq!(
        verify_raw(&outside, 8),
        Err("invalid access to memory, mem_size=8 off=6 size=4\n\
             R1 min value is outside of the allowed memory range"
            .to_string())
    );
    // A byte of the data masked to 0..=7 as an index, then a byte read at r1 + index + 8 on 16
    // bytes: at most byte 15.
    let indexed = [
        i(0x71, 3, 1, 0, 0), // r3 = *(u8 *)(r1 + 0)
        i(0x57, 3, 0, 0, 7), // r3 &= 7
        i(0x0f, 1, 3, 0, 0), // r1 += r3
        i(0x71, 0, 1, 8, 0), // r0 = *(u8 *)(r1 + 8)
        i(0x95, 0, 0, 0, 0),
    ];
    assert_eq!(verify_raw(&indexed, 16), Ok(5));
    // The same on 15 bytes: index 7 + 8 is byte 15, outside.
    assert_eq!(
        verify_raw(&indexed, 15),
        Err("invalid access to memory, mem_size=15 off=15 size=1\n\
             R1 max value is outside of the allowed memory range"
            .to_string())
    );
}

#[test]
fn every_path_is_walked_and_the_first_bad_one_rejects() {
    // if r2 > 4 goto +1; exit with r0 unset on the fall-through: R0 !read_ok.
    let p = [
        i(0x25, 2, 0, 2, 4), // if r2 > 4 goto +2
        i(0xb7, 0, 0, 0, 0),
        i(0x95, 0, 0, 0, 0),
        i(0x95, 0, 0, 0, 0), // the jump target exits with r0 never written
    ];
    // r2 = data_size: 8 > 4 always, so only the jump is taken (the kernel does not walk a side
    // no run takes), and that side exits with r0 unset.
    assert_eq!(verify_raw(&p, 8), Err("R0 !read_ok".to_string()));
    // 2 > 4 never: only the fall-through, which sets r0.
    assert_eq!(verify_raw(&p, 2), Ok(3));
}

#[test]
fn an_endless_loop_is_detected() {
    // The kernel (6.18) stops it when the loop comes back to a checkpoint in the same state:
    // "infinite loop detected at insn 0" after 9 instructions (tests/verifier_prune.rs compares
    // the counts).
    let p = [i(0x05, 0, 0, -1, 0)]; // goto -1
    let err = verify_raw(&p, 8).expect_err("an endless loop is refused");
    assert_eq!(err, "infinite loop detected at insn 0");
}

#[test]
fn atomic_operations_on_the_stack_and_map_values() {
    kernel_or_skip!();
    let exit = i(0x95, 0, 0, 0, 0);
    let r0 = i(0xb7, 0, 0, 0, 0);
    check(
        "atomics on the stack",
        SOCKET_FILTER,
        &[
            i(0x7a, 10, 0, -8, 5),     // *(u64 *)(r10 -8) = 5
            i(0xb7, 4, 0, 0, 1),       // r4 = 1
            i(0xdb, 10, 4, -8, 0x00),  // lock *(u64 *)(r10 -8) += r4
            i(0xdb, 10, 4, -8, 0x01),  // r4 = atomic64_fetch_add(...)
            i(0xc3, 10, 4, -16, 0xa1), // r4 = atomic_fetch_xor((u32 *)(r10 -16), r4)
            i(0xb7, 0, 0, 0, 3),
            i(0xdb, 10, 4, -8, 0xf1), // r0 = atomic64_cmpxchg(...)
            i(0xdb, 10, 4, -8, 0xe1), // r4 = atomic64_xchg(...)
            r0,
            exit,
        ],
        &[],
    );
    check(
        "atomic on the context",
        SOCKET_FILTER,
        &[i(0xb7, 4, 0, 0, 1), i(0xc3, 1, 4, 0, 0x00), r0, exit],
        &[],
    );
    check(
        "atomic of a byte",
        SOCKET_FILTER,
        &[i(0xb7, 4, 0, 0, 1), i(0xd3, 10, 4, -8, 0x00), r0, exit],
        &[],
    );
    let mut p = lookup_prologue();
    p.extend([
        i(0x15, 0, 0, 2, 0),
        i(0xb7, 1, 0, 0, 1),
        i(0xdb, 0, 1, 0, 0x01), // r1 = atomic64_fetch_add((u64 *)(r0 +0), r1)
        i(0xb7, 0, 0, 0, 0),
        exit,
    ]);
    check("atomic on a map value", SOCKET_FILTER, &p, &[HASH]);
}

#[test]
fn legacy_packet_loads() {
    kernel_or_skip!();
    let exit = i(0x95, 0, 0, 0, 0);
    check(
        "ld_abs and ld_ind",
        SOCKET_FILTER,
        &[
            i(0xbf, 6, 1, 0, 0),  // r6 = r1
            i(0x28, 0, 0, 0, 12), // r0 = *(u16 *)skb[12]
            i(0xbf, 7, 0, 0, 0),
            i(0x57, 7, 0, 0, 15),
            i(0x50, 0, 7, 0, 14), // r0 = *(u8 *)skb[r7 + 14]
            exit,
        ],
        &[],
    );
    check(
        "ld_abs without r6",
        SOCKET_FILTER,
        &[i(0x30, 0, 0, 0, 12), exit],
        &[],
    );
    check(
        "ld_abs with r6 not the context",
        SOCKET_FILTER,
        &[i(0xb7, 6, 0, 0, 0), i(0x30, 0, 0, 0, 12), exit],
        &[],
    );
    check(
        "ld_abs clobbers r1-r5",
        SOCKET_FILTER,
        &[
            i(0xbf, 6, 1, 0, 0),
            i(0xb7, 2, 0, 0, 1),
            i(0x30, 0, 0, 0, 12),
            i(0xbf, 0, 2, 0, 0),
            exit,
        ],
        &[],
    );
    check(
        "ld_abs in xdp",
        XDP,
        &[i(0xbf, 6, 1, 0, 0), i(0x30, 0, 0, 0, 12), exit],
        &[],
    );
}

#[test]
fn stack_access_at_a_variable_offset() {
    kernel_or_skip!();
    let exit = i(0x95, 0, 0, 0, 0);
    let r0 = i(0xb7, 0, 0, 0, 0);
    // An index 0..=3 scaled by 8: r2 = r10 - 32 + index * 8.
    let prologue = [
        i(0x61, 3, 1, 0, 0),  // r3 = skb->len
        i(0x57, 3, 0, 0, 3),  // r3 &= 3
        i(0x67, 3, 0, 0, 3),  // r3 <<= 3
        i(0xbf, 2, 10, 0, 0), // r2 = r10
        i(0x07, 2, 0, 0, -32),
        i(0x0f, 2, 3, 0, 0), // r2 += r3
    ];
    let with = |rest: &[Insn]| {
        let mut p = prologue.to_vec();
        p.extend_from_slice(rest);
        p
    };
    check(
        "variable write then read",
        SOCKET_FILTER,
        &with(&[
            i(0x7a, 10, 0, -16, 0), // *(u64 *)(r10 -16) = 0
            i(0x7b, 2, 3, 0, 0),    // *(u64 *)(r2 +0) = r3
            i(0x79, 4, 2, 0, 0),    // r4 = *(u64 *)(r2 +0)
            i(0x79, 5, 10, -16, 0), // r5 = *(u64 *)(r10 -16)
            r0,
            exit,
        ]),
        &[],
    );
    check(
        "variable write of zero",
        SOCKET_FILTER,
        &with(&[
            i(0x7a, 10, 0, -16, 0),
            i(0x7b, 2, 0, 0, 0), // *(u64 *)(r2 +0) = r0 (r0 is 0 here? no: uninitialised)
            exit,
        ]),
        &[],
    );
    check(
        "variable access past the frame",
        SOCKET_FILTER,
        &with(&[r0, i(0x7b, 2, 0, 8, 0), exit]),
        &[],
    );
    check(
        "variable access misaligned",
        SOCKET_FILTER,
        &with(&[r0, i(0x7b, 2, 0, 4, 0), exit]),
        &[],
    );
    check(
        "variable access unbounded",
        SOCKET_FILTER,
        &[
            i(0x61, 3, 1, 0, 0),
            i(0x67, 3, 0, 0, 35), // r3 <<= 35: beyond any stack
            i(0xbf, 2, 10, 0, 0),
            i(0x0f, 2, 3, 0, 0),
            r0,
            i(0x79, 4, 2, 0, 0),
            exit,
        ],
        &[],
    );
}

// Helper calls checked from their prototypes: right and wrong arguments, the program types
// that may call each helper, GPL-only helpers, the map types a helper takes.

/// `BPF_MAP_TYPE_PERF_EVENT_ARRAY` (the loader's map 0).
const PERF_EVENT_ARRAY: &str = "4:4:4:1";

fn call(id: i32) -> Insn {
    i(0x85, 0, 0, 0, id)
}

/// "hi\n" and its NUL at r10-8, r1 = r10 - 8: a format for bpf_trace_printk.
fn printk_format() -> Vec<Insn> {
    vec![
        i(0x7a, 10, 0, -8, 0x000a_6968), // *(u64 *)(r10 -8) = "hi\n"
        i(0xbf, 1, 10, 0, 0),            // r1 = r10
        i(0x07, 1, 0, 0, -8),            // r1 += -8
    ]
}

fn printk_with_size(size: Insn) -> Vec<Insn> {
    let mut p = printk_format();
    p.extend([size, call(6), i(0xb7, 0, 0, 0, 0), i(0x95, 0, 0, 0, 0)]);
    p
}

#[test]
fn helpers_without_arguments_return_an_unknown_scalar() {
    kernel_or_skip!();
    let exit = i(0x95, 0, 0, 0, 0);
    check("ktime_get_ns", SOCKET_FILTER, &[call(5), exit], &[]);
    check(
        "get_prandom_u32 & 1",
        XDP,
        &[call(7), i(0x57, 0, 0, 0, 1), exit],
        &[],
    );
    // The call clobbers r1-r5: the context in r1 is gone.
    check(
        "r1 after a call",
        SOCKET_FILTER,
        &[call(5), i(0xbf, 0, 1, 0, 0), exit],
        &[],
    );
}

#[test]
fn trace_printk_reads_its_format_of_the_size_after_it() {
    kernel_or_skip!();
    check(
        "trace_printk",
        SOCKET_FILTER,
        &printk_with_size(i(0xb7, 2, 0, 0, 8)),
        &[],
    );
    check(
        "trace_printk size 0",
        SOCKET_FILTER,
        &printk_with_size(i(0xb7, 2, 0, 0, 0)),
        &[],
    );
    check(
        "trace_printk negative size",
        SOCKET_FILTER,
        &printk_with_size(i(0xb7, 2, 0, 0, -1)),
        &[],
    );
    check(
        "trace_printk past the stack",
        SOCKET_FILTER,
        &printk_with_size(i(0xb7, 2, 0, 0, 16)),
        &[],
    );
    // A size known only to fit in 4 bits: the largest value must fit.
    let mut p = vec![call(7), i(0x57, 0, 0, 0, 7), i(0x07, 0, 0, 0, 1)];
    p.extend(printk_with_size(i(0xbf, 2, 0, 0, 0)));
    check("trace_printk bounded size", SOCKET_FILTER, &p, &[]);
    let mut p = vec![call(7), i(0x57, 0, 0, 0, 15), i(0x07, 0, 0, 0, 1)];
    p.extend(printk_with_size(i(0xbf, 2, 0, 0, 0)));
    check("trace_printk size up to 16", SOCKET_FILTER, &p, &[]);
    let mut p = vec![call(7)];
    p.extend(printk_with_size(i(0xbf, 2, 0, 0, 0)));
    check("trace_printk size maybe negative", SOCKET_FILTER, &p, &[]);
    let mut p = vec![call(7), i(0x77, 0, 0, 0, 1)]; // r0 >>= 1: not negative, maybe 0
    p.extend(printk_with_size(i(0xbf, 2, 0, 0, 0)));
    check("trace_printk size maybe zero", SOCKET_FILTER, &p, &[]);
    p[1] = i(0x77, 0, 0, 0, 2); // r0 >>= 2
    p.insert(2, i(0x07, 0, 0, 0, 1)); // r0 += 1: 1 to 2^62, unbounded
    check("trace_printk unbounded size", SOCKET_FILTER, &p, &[]);
    // The format must be memory, not the context.
    check(
        "trace_printk of the ctx",
        SOCKET_FILTER,
        &[
            i(0xb7, 2, 0, 0, 8),
            call(6),
            i(0xb7, 0, 0, 0, 0),
            i(0x95, 0, 0, 0, 0),
        ],
        &[],
    );
}

#[test]
fn gpl_only_helpers_are_refused_to_other_licenses() {
    kernel_or_skip!();
    let p = printk_with_size(i(0xb7, 2, 0, 0, 8));
    check_licensed(
        "trace_printk, proprietary",
        SOCKET_FILTER,
        &p,
        &[],
        "Proprietary",
    );
    check_licensed(
        "ktime_get_ns, proprietary",
        SOCKET_FILTER,
        &[call(5), i(0x95, 0, 0, 0, 0)],
        &[],
        "Proprietary",
    );
}

/// `bpf_skb_load_bytes(ctx, 0, r10 + to, len)`, then a read of the bytes it wrote.
fn skb_load_bytes(ctx: &[Insn], to: i32, len: i32) -> Vec<Insn> {
    let mut p = ctx.to_vec();
    p.extend([
        i(0xb7, 2, 0, 0, 0),
        i(0xbf, 3, 10, 0, 0),
        i(0x07, 3, 0, 0, to),
        i(0xb7, 4, 0, 0, len),
        call(26),
        i(0x79, 0, 10, -8, 0), // r0 = *(u64 *)(r10 -8)
        i(0xb7, 0, 0, 0, 0),
        i(0x95, 0, 0, 0, 0),
    ]);
    p
}

#[test]
fn skb_load_bytes_fills_uninitialised_stack_from_the_context() {
    kernel_or_skip!();
    check(
        "skb_load_bytes",
        SOCKET_FILTER,
        &skb_load_bytes(&[], -8, 8),
        &[],
    );
    check(
        "skb_load_bytes 4 of 8",
        SOCKET_FILTER,
        &skb_load_bytes(&[], -8, 4),
        &[],
    );
    // A length of 1..=8 bytes: the largest must fit; the bytes it may write are scratched.
    let mut p = vec![
        i(0xbf, 6, 1, 0, 0),
        call(7),
        i(0x57, 0, 0, 0, 7),
        i(0x07, 0, 0, 0, 1),
        i(0xbf, 1, 6, 0, 0),
        i(0xb7, 2, 0, 0, 0),
        i(0xbf, 3, 10, 0, 0),
        i(0x07, 3, 0, 0, -8),
        i(0xbf, 4, 0, 0, 0),
        call(26),
        i(0xb7, 0, 0, 0, 0),
        i(0x95, 0, 0, 0, 0),
    ];
    check("skb_load_bytes of 1..=8", SOCKET_FILTER, &p, &[]);
    p[2] = i(0x57, 0, 0, 0, 15);
    check("skb_load_bytes of 1..=16", SOCKET_FILTER, &p, &[]);
    check(
        "skb_load_bytes past the stack",
        SOCKET_FILTER,
        &skb_load_bytes(&[], -4, 8),
        &[],
    );
    check(
        "skb_load_bytes without the ctx",
        SOCKET_FILTER,
        &skb_load_bytes(&[i(0xbf, 1, 10, 0, 0)], -8, 8),
        &[],
    );
    check(
        "skb_load_bytes with a moved ctx",
        SOCKET_FILTER,
        &skb_load_bytes(&[i(0x07, 1, 0, 0, 8)], -8, 8),
        &[],
    );
    check(
        "skb_load_bytes from XDP",
        XDP,
        &skb_load_bytes(&[], -8, 8),
        &[],
    );
}

/// `bpf_perf_event_output(ctx, map 0, BPF_F_CURRENT_CPU, r10 - 8, 8)`.
fn perf_event_output() -> Vec<Insn> {
    let mut p = vec![i(0x7a, 10, 0, -8, 7)];
    p.extend(ld_map(2));
    p.extend([
        i(0xb4, 3, 0, 0, -1), // w3 = -1
        i(0xbf, 4, 10, 0, 0),
        i(0x07, 4, 0, 0, -8),
        i(0xb7, 5, 0, 0, 8),
        call(25),
        i(0xb7, 0, 0, 0, 0),
        i(0x95, 0, 0, 0, 0),
    ]);
    p
}

#[test]
fn a_map_key_must_fit_in_the_stack() {
    kernel_or_skip!();
    let mut p = vec![
        i(0x62, 10, 0, -4, 0), // *(u32 *)(r10 -4) = 0
        i(0xbf, 2, 10, 0, 0),  // r2 = r10
        i(0x07, 2, 0, 0, -2),  // r2 += -2: 2 of the key's 4 bytes above the frame
    ];
    p.extend(ld_map(1));
    p.extend([call(1), i(0xb7, 0, 0, 0, 0), i(0x95, 0, 0, 0, 0)]);
    check("key past the frame", SOCKET_FILTER, &p, &[HASH]);
}

/// `bpf_probe_read_kernel(r10 + to, len, pt_regs->di)` (helper `id`) from a kprobe's context.
fn probe_read(id: i32, to: i32, len: i32) -> Vec<Insn> {
    vec![
        i(0x79, 3, 1, 112, 0), // r3 = *(u64 *)(r1 +112): di
        i(0xbf, 1, 10, 0, 0),
        i(0x07, 1, 0, 0, to),
        i(0xb7, 2, 0, 0, len),
        call(id),
        i(0x79, 0, 10, -8, 0), // r0 = *(u64 *)(r10 -8)
        i(0x95, 0, 0, 0, 0),
    ]
}

#[test]
fn probe_read_kernel_fills_the_stack_in_tracing_programs() {
    kernel_or_skip!();
    check("probe_read_kernel", KPROBE, &probe_read(113, -8, 8), &[]);
    check(
        "probe_read_kernel of 0",
        KPROBE,
        &probe_read(113, -8, 0),
        &[],
    );
    check(
        "probe_read_kernel past the stack",
        KPROBE,
        &probe_read(113, -8, 16),
        &[],
    );
    check("probe_read", KPROBE, &probe_read(4, -8, 8), &[]);
    // A socket filter has no pt_regs: the source address is 0 there.
    for (name, id) in [("probe_read_kernel", 113), ("probe_read", 4)] {
        let mut p = probe_read(id, -8, 8);
        p[0] = i(0xb7, 3, 0, 0, 0);
        check(
            &format!("{name} from a socket filter"),
            SOCKET_FILTER,
            &p,
            &[],
        );
    }
    check_licensed(
        "probe_read_kernel, proprietary",
        KPROBE,
        &probe_read(113, -8, 8),
        &[],
        "Proprietary",
    );
    // The kprobe context is read only, and read inside struct pt_regs.
    let exit = i(0x95, 0, 0, 0, 0);
    check(
        "pt_regs past its end",
        KPROBE,
        &[i(0x79, 0, 1, 168, 0), exit],
        &[],
    );
    check(
        "pt_regs misaligned",
        KPROBE,
        &[i(0x79, 0, 1, 4, 0), exit],
        &[],
    );
    check("pt_regs narrow", KPROBE, &[i(0x61, 0, 1, 4, 0), exit], &[]);
    check(
        "pt_regs written",
        KPROBE,
        &[i(0xb7, 0, 0, 0, 0), i(0x7b, 1, 0, 0, 0), exit],
        &[],
    );
}

/// `BPF_MAP_TYPE_QUEUE` of 8-byte values (no key).
const QUEUE: &str = "22:0:8:4";

/// `bpf_map_pop_elem(map 0, r10 + to)`.
fn queue_pop(to: i32) -> Vec<Insn> {
    let mut p = ld_map(1).to_vec();
    p.extend([
        i(0xbf, 2, 10, 0, 0),
        i(0x07, 2, 0, 0, to),
        call(88),
        i(0xb7, 0, 0, 0, 0),
        i(0x95, 0, 0, 0, 0),
    ]);
    p
}

#[test]
fn a_popped_value_is_written_to_uninitialised_memory_of_the_value_size() {
    kernel_or_skip!();
    check(
        "pop into the stack",
        SOCKET_FILTER,
        &queue_pop(-8),
        &[QUEUE],
    );
    check(
        "pop past the stack",
        SOCKET_FILTER,
        &queue_pop(-4),
        &[QUEUE],
    );
    check("pop from a hash", SOCKET_FILTER, &queue_pop(-8), &[HASH]);
}

#[test]
fn perf_event_output_takes_a_perf_event_array() {
    kernel_or_skip!();
    let p = perf_event_output();
    check("perf_event_output", SOCKET_FILTER, &p, &[PERF_EVENT_ARRAY]);
    check("perf_event_output from XDP", XDP, &p, &[PERF_EVENT_ARRAY]);
    check("perf_event_output to an array", SOCKET_FILTER, &p, &[ARRAY]);
    check(
        "lookup in a perf event array",
        SOCKET_FILTER,
        &lookup_prologue()
            .into_iter()
            .chain([i(0xb7, 0, 0, 0, 0), i(0x95, 0, 0, 0, 0)])
            .collect::<Vec<_>>(),
        &[PERF_EVENT_ARRAY],
    );
}

/// Helper 1000 declared by an embedder with `proto`, called from a raw program over 8 bytes
/// with r1 = the data, r2 = `size`.
fn call_embedder_helper(
    proto: ebpf_vm::helpers::prototype::HelperPrototype,
    size: i32,
) -> Result<u64, String> {
    let slots = [i(0xb7, 2, 0, 0, size), call(1000), i(0x95, 0, 0, 0, 0)];
    let analysis = analyse(&slots, &AnalysisOptions::default()).expect("the program analyses");
    let names = |id: i32| (id == 1000).then(|| "js_helper".to_string());
    let prototype = move |id: i32| (id == 1000).then_some(proto);
    let options = VerifyOptions {
        globals: &[],
        unprivileged: false,
        exit_range: false,
        kind: ProgramKind::Raw { data_size: 8 },
        maps: &[],
        helper_name: &names,
        prototype: &prototype,
        gpl_compatible: false,
        log_level: 1,
    };
    verify(&analysis, &options)
        .map(|v| v.processed)
        .map_err(|r| r.message)
}

#[test]
fn embedder_prototypes_are_checked_like_the_kernels() {
    use ebpf_vm::helpers::prototype::{ArgType::*, HelperPrototype, RetType};
    let mem = HelperPrototype::new(RetType::Integer, &[PtrToReadonlyMem, ConstSize]);
    assert_eq!(call_embedder_helper(mem, 8), Ok(3));
    // The data is 8 bytes (the kernel's PTR_TO_MEM wording, as for loads).
    assert_eq!(
        call_embedder_helper(mem, 9),
        Err("invalid access to memory, mem_size=8 off=0 size=9\nR1 min value is outside of the allowed memory range".to_string())
    );
    // r0 is a scalar after an integer return, nothing after a void one.
    let void = HelperPrototype::new(RetType::Void, &[Anything]);
    assert_eq!(
        call_embedder_helper(void, 0),
        Err("R0 !read_ok".to_string())
    );
    assert_eq!(
        call_embedder_helper(mem.gpl_only(), 8),
        Err("cannot call GPL-restricted function from non-GPL compatible program".to_string())
    );
    // A declared map-value return without a map argument: refused, not a panic.
    let no_map = HelperPrototype::new(RetType::PtrToMapValueOrNull, &[Anything]);
    assert_eq!(
        call_embedder_helper(no_map, 0),
        Err("helper js_helper#1000 returns a map value but takes no map".to_string())
    );
}
