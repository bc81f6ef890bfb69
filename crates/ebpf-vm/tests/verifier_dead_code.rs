//! Dead code against the live kernel (Linux 6.18): instructions no path reaches are refused
//! before the walk (`check_cfg`: "unreachable insn N", EINVAL), while code that only the walk
//! finds dead (a branch it knows is never taken) is accepted, and an `exit`'s reserved fields are
//! looked at only where the walk arrives. Compared as `verifier_support::compare` says; skips,
//! saying why, where the kernel cannot be asked. The same rules through `Program::load` (verified
//! mode refuses, checked mode runs) are at the end.

mod verifier_support;

use ebpf_vm::isa::Insn;
use verifier_support::compare::{check, compare_verdict};
use verifier_support::*;

fn i(opcode: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn::new(opcode, dst, src, off, imm)
}

/// `lddw dst, imm` (a plain 64-bit constant: two slots).
fn lddw(dst: u8, imm: i32) -> [Insn; 2] {
    [i(0x18, dst, 0, 0, imm), i(0, 0, 0, 0, 0)]
}

#[test]
fn code_after_exit_is_unreachable() {
    kernel_or_skip!();
    let p = [mov_imm(0, 0), exit(), mov_imm(0, 1), exit()];
    check("after exit", XDP, &p, &[]);
}

#[test]
fn code_jumped_over_is_unreachable() {
    kernel_or_skip!();
    let p = [mov_imm(0, 0), i(0x05, 0, 0, 1, 0), mov_imm(0, 1), exit()];
    check("jumped over", SOCKET_FILTER, &p, &[]);
    // gotol (32-bit offset in the immediate) the same.
    let p = [mov_imm(0, 0), i(0x06, 0, 0, 0, 1), mov_imm(0, 1), exit()];
    check("gotol over", KPROBE, &p, &[]);
}

#[test]
fn an_unreachable_lddw_is_named_by_its_first_slot() {
    kernel_or_skip!();
    let mut p = vec![mov_imm(0, 0), exit()];
    p.extend(lddw(0, 7));
    p.push(exit());
    check("dead lddw", XDP, &p, &[]);
}

#[test]
fn the_second_slot_of_a_reachable_lddw_is_not_dead() {
    kernel_or_skip!();
    let mut p = lddw(0, 7).to_vec();
    p.push(exit());
    check("lddw", XDP, &p, &[]);
}

#[test]
fn dead_code_is_refused_before_the_walk_sees_other_faults() {
    kernel_or_skip!();
    // The walk would refuse the read of an uninitialised stack slot; the CFG check comes first.
    let p = [
        i(0x79, 0, 10, -8, 0), // r0 = *(u64 *)(r10 - 8)
        exit(),
        mov_imm(0, 1),
        exit(),
    ];
    check("dead code and an uninit read", XDP, &p, &[]);
}

#[test]
fn a_branch_the_walk_knows_is_never_taken_is_not_unreachable() {
    kernel_or_skip!();
    // r1 = 0; if r1 != 0 goto +2; r0 = 0; exit; r0 = *(u64 *)(r1 + 0); exit
    let p = [
        mov_imm(1, 0),
        i(0x55, 1, 0, 2, 0),
        mov_imm(0, 0),
        exit(),
        i(0x79, 0, 1, 0, 0),
        exit(),
    ];
    check("dead by the walk", XDP, &p, &[]);
}

#[test]
fn a_function_nothing_calls_is_refused() {
    kernel_or_skip!();
    // Function info names a function at slot 2 that no call and no lddw reaches: the kernel,
    // which finds functions from calls only, refuses the function info before it looks for
    // dead code.
    let p = [mov_imm(0, 0), exit(), mov_imm(0, 1), exit()];
    let (kernel, _) = compare_verdict("uncalled function", XDP, &p, &[], &[0, 2]);
    assert!(
        kernel
            .log
            .contains("number of funcs in func_info doesn't match"),
        "{}",
        kernel.log
    );
    // Without function info the same instructions are dead code.
    check("uncalled code", XDP, &p, &[]);
}

#[test]
fn a_function_whose_address_is_taken_is_reachable() {
    kernel_or_skip!();
    // r2 = &f (lddw src 4, relative to the next slot); r0 = 0; exit; f: r0 = 0; exit
    let p = [
        i(0x18, 2, 4, 0, 3),
        i(0, 0, 0, 0, 0),
        mov_imm(0, 0),
        exit(),
        mov_imm(0, 0),
        exit(),
    ];
    let (kernel, _) = compare_verdict("address taken", XDP, &p, &[], &[0, 4]);
    assert!(!kernel.log.contains("unreachable"), "{}", kernel.log);
}

#[test]
fn a_function_called_from_dead_code_is_dead_too() {
    kernel_or_skip!();
    // r0 = 0; exit; call f; exit; f: r0 = 0; exit
    let p = [
        mov_imm(0, 0),
        exit(),
        i(0x85, 0, 1, 0, 1),
        exit(),
        mov_imm(0, 0),
        exit(),
    ];
    let (kernel, _) = compare_verdict("called from dead code", XDP, &p, &[], &[0, 4]);
    assert!(kernel.log.contains("unreachable insn 2"), "{}", kernel.log);
}

/// `r0 = 0; if r0 != 0 goto +1; exit; BAD`: the last exit sits on a branch the walk knows is
/// never taken (the CFG reaches it, so it is not unreachable).
fn dead_exit(bad: Insn) -> Vec<Insn> {
    vec![mov_imm(0, 0), i(0x55, 0, 0, 1, 0), exit(), bad]
}

/// `r0 = 0; if r0 == 0 goto +1; exit; BAD`: the same exit on the branch the walk takes.
fn live_exit(bad: Insn) -> Vec<Insn> {
    vec![mov_imm(0, 0), i(0x15, 0, 0, 1, 0), exit(), bad]
}

#[test]
fn exit_reserved_fields_on_a_branch_never_taken_pass() {
    kernel_or_skip!();
    for (what, bad) in [
        ("imm", i(0x95, 0, 0, 0, -8)),
        ("src", i(0x95, 0, 7, 0, 0)),
        ("dst", i(0x95, 3, 0, 0, 0)),
        ("src 15", i(0x95, 0, 15, 0, 0)),
        ("dst 15", i(0x95, 15, 0, 0, 0)),
        ("all", i(0x95, 15, 15, -1, -1)),
    ] {
        check(&format!("dead exit {what}"), XDP, &dead_exit(bad), &[]);
    }
}

#[test]
fn exit_reserved_fields_where_the_walk_arrives_are_refused() {
    kernel_or_skip!();
    for (what, bad) in [
        ("imm", i(0x95, 0, 0, 0, -8)),
        ("src", i(0x95, 0, 7, 0, 0)),
        ("dst", i(0x95, 3, 0, 0, 0)),
        ("src 15", i(0x95, 0, 15, 0, 0)),
        ("all", i(0x95, 15, 15, -1, -1)),
    ] {
        check(&format!("live exit {what}"), XDP, &live_exit(bad), &[]);
    }
}

#[test]
fn the_offset_of_exit_is_not_looked_at() {
    kernel_or_skip!();
    for off in [8, -1, i16::MAX, i16::MIN] {
        let p = [mov_imm(0, 0), i(0x95, 0, 0, off, 0)];
        check(&format!("exit offset {off}"), SOCKET_FILTER, &p, &[]);
    }
}
