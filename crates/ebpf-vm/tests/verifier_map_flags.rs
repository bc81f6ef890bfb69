//! What a map's flags let programs do, against the live kernel (Linux 6.18): a map created with
//! `BPF_F_RDONLY_PROG` (as libbpf creates `.rodata`) is never written by a program, whether by a
//! store, an atomic, a helper filling memory or a map helper that changes it; one created with
//! `BPF_F_WRONLY_PROG` is never read. Compared as `verifier_support::compare` says (verdict,
//! message, every instruction line of the log); skips, saying why, where the kernel cannot be
//! asked.

mod verifier_support;

use ebpf_vm::isa::Insn;
use verifier_support::compare::{check, compare};
use verifier_support::*;

/// An array of one 8-byte value that programs may only read (`BPF_F_RDONLY_PROG`).
const RDONLY: &str = "2:4:8:1/128";
/// The same array that programs may only write (`BPF_F_WRONLY_PROG`).
const WRONLY: &str = "2:4:8:1/256";
/// The same array with no flags.
const PLAIN: &str = "2:4:8:1";

fn i(opcode: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn::new(opcode, dst, src, off, imm)
}

/// `dst = &value of map 0 + off` (`lddw` with src 2, as global data is addressed).
fn value_of_map(dst: u8, off: i32) -> [Insn; 2] {
    [i(0x18, dst, 2, 0, 0), i(0, 0, 0, 0, off)]
}

/// `dst = map 0`.
fn map(dst: u8) -> [Insn; 2] {
    [i(0x18, dst, 1, 0, 0), i(0, 0, 0, 0, 0)]
}

/// `body` after `r1 = &value + off`, then `r0 = 0; exit`.
fn through_value(off: i32, body: &[Insn]) -> Vec<Insn> {
    let mut p = value_of_map(1, off).to_vec();
    p.extend_from_slice(body);
    p.extend([mov_imm(0, 0), exit()]);
    p
}

/// `check`, and the kernel's refusal must end with `message` (EACCES).
fn refused(name: &str, prog_type: u32, p: &[Insn], maps: &[&str], message: &str) {
    let (kernel, _) = compare(name, prog_type, p, maps);
    assert_eq!(
        kernel.errno.as_deref(),
        Some("EACCES"),
        "{name}: {}",
        kernel.log
    );
    assert_eq!(
        verifier_support::compare::kernel_message(&kernel.log),
        message,
        "{name}"
    );
}

#[test]
fn stores_into_a_read_only_map_are_refused() {
    kernel_or_skip!();
    // *(u64 *)(r1 + 0) = 1
    let st = through_value(0, &[i(0x7a, 1, 0, 0, 1)]);
    refused(
        "st",
        XDP,
        &st,
        &[RDONLY],
        "write into map forbidden, value_size=8 off=0 size=8",
    );
    check("st plain", XDP, &st, &[PLAIN]);
    // r2 = 1; *(u32 *)(r1 + 0) = r2 with r1 at value + 4: the offset counts both.
    let stx = through_value(4, &[mov_imm(2, 1), i(0x63, 1, 2, 0, 0)]);
    let message = "write into map forbidden, value_size=8 off=4 size=4";
    refused("stx at +4", SOCKET_FILTER, &stx, &[RDONLY], message);
    // The same store past the end: the flags are checked before the bounds.
    let past = through_value(4, &[mov_imm(2, 1), i(0x7b, 1, 2, 4, 0)]);
    let message = "write into map forbidden, value_size=8 off=8 size=8";
    refused("stx past the end", KPROBE, &past, &[RDONLY], message);
}

#[test]
fn reads_of_a_read_only_map_are_accepted() {
    kernel_or_skip!();
    let p = through_value(4, &[i(0x61, 2, 1, 0, 0)]);
    check("ldx", XDP, &p, &[RDONLY]);
}

#[test]
fn atomics_on_a_read_only_map_are_refused() {
    kernel_or_skip!();
    // r2 = 1; lock *(u64 *)(r1 + 0) += r2, and the fetching form.
    for imm in [0x00, 0x01] {
        let p = through_value(0, &[mov_imm(2, 1), i(0xdb, 1, 2, 0, imm)]);
        check(&format!("atomic {imm:#x}"), XDP, &p, &[RDONLY]);
    }
}

#[test]
fn a_value_found_by_lookup_is_read_only_too() {
    kernel_or_skip!();
    // *(u32 *)(r10 - 4) = 0; r2 = r10 - 4; r1 = map; call lookup; if r0 == 0 goto +1;
    // *(u64 *)(r0 + 0) = 1; r0 = 0; exit
    let mut p = vec![
        i(0x62, 10, 0, -4, 0),
        i(0xbf, 2, 10, 0, 0),
        i(0x07, 2, 0, 0, -4),
    ];
    p.extend(map(1));
    p.extend([
        i(0x85, 0, 0, 0, 1),
        i(0x15, 0, 0, 1, 0),
        i(0x7a, 0, 0, 0, 1),
        mov_imm(0, 0),
        exit(),
    ]);
    check("lookup then store", XDP, &p, &[RDONLY]);
}

#[test]
fn map_helpers_that_change_a_read_only_map_are_refused() {
    kernel_or_skip!();
    // Key and value on the stack: *(u64 *)(r10 - 8) = 0; *(u64 *)(r10 - 16) = 0.
    let stack = [i(0x7a, 10, 0, -8, 0), i(0x7a, 10, 0, -16, 0)];
    let key = [i(0xbf, 2, 10, 0, 0), i(0x07, 2, 0, 0, -8)];
    let value = [i(0xbf, 3, 10, 0, 0), i(0x07, 3, 0, 0, -16)];
    // update (2): r4 = 0 (flags).
    let mut update = stack.to_vec();
    update.extend(key);
    update.extend(value);
    update.push(mov_imm(4, 0));
    update.extend(map(1));
    update.extend([i(0x85, 0, 0, 0, 2), mov_imm(0, 0), exit()]);
    refused(
        "update",
        XDP,
        &update,
        &[RDONLY],
        "write into map forbidden",
    );
    check("update plain", XDP, &update, &[PLAIN]);
    // delete (3).
    let mut delete = stack.to_vec();
    delete.extend(key);
    delete.extend(map(1));
    delete.extend([i(0x85, 0, 0, 0, 3), mov_imm(0, 0), exit()]);
    check("delete", SOCKET_FILTER, &delete, &[RDONLY]);
    // A read-only value as the key of a lookup is fine: the helper only reads it.
    let mut lookup = value_of_map(2, 0).to_vec();
    lookup.extend(map(1));
    lookup.extend([i(0x85, 0, 0, 0, 1), mov_imm(0, 0), exit()]);
    check("lookup keyed by a read-only value", XDP, &lookup, &[RDONLY]);
}

#[test]
fn helpers_that_fill_memory_may_not_fill_a_read_only_value() {
    kernel_or_skip!();
    // bpf_skb_load_bytes(ctx, 0, r3 = &value + off, 4): its third argument is written.
    for off in [0, 4] {
        let mut p = value_of_map(3, off).to_vec();
        p.extend([
            mov_imm(2, 0),
            mov_imm(4, 4),
            i(0x85, 0, 0, 0, 26),
            mov_imm(0, 0),
            exit(),
        ]);
        check(
            &format!("skb_load_bytes +{off}"),
            SOCKET_FILTER,
            &p,
            &[RDONLY],
        );
    }
    // bpf_probe_read_kernel(r1 = &value, 8, NULL).
    let mut p = value_of_map(1, 0).to_vec();
    p.extend([
        mov_imm(2, 8),
        mov_imm(3, 0),
        i(0x85, 0, 0, 0, 113),
        mov_imm(0, 0),
        exit(),
    ]);
    check("probe_read_kernel", KPROBE, &p, &[RDONLY]);
}

#[test]
fn a_write_only_map_is_never_read() {
    kernel_or_skip!();
    let load = through_value(0, &[i(0x79, 2, 1, 0, 0)]);
    let message = "read from map forbidden, value_size=8 off=0 size=8";
    refused("ldx", XDP, &load, &[WRONLY], message);
    let store = through_value(0, &[i(0x7a, 1, 0, 0, 1)]);
    check("st", XDP, &store, &[WRONLY]);
}
