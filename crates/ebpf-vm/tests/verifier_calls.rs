//! bpf-to-bpf calls, references, spin locks, callbacks and tail calls in the path walk, against
//! the live kernel (Linux 6.18): each program is loaded into the kernel with a level-2 log and
//! verified here (`verifier_support::compare`: verdict, message, instruction lines, and the
//! `caller:` / `callee:` / `returning from callee:` frames); a rejection must also carry the
//! kernel's errno. Skips, saying why, where the kernel cannot be asked.

mod verifier_support;

use ebpf_vm::isa::Insn;
use verifier_support::compare::{call_lines, compare, compare_verdict, Answers};
use verifier_support::*;

fn i(opcode: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn::new(opcode, dst, src, off, imm)
}

/// `call pc+rel` (a bpf-to-bpf call).
fn call(rel: i32) -> Insn {
    i(0x85, 0, 1, 0, rel)
}

fn helper(id: i32) -> Insn {
    i(0x85, 0, 0, 0, id)
}

fn exit() -> Insn {
    i(0x95, 0, 0, 0, 0)
}

fn mov(dst: u8, imm: i32) -> Insn {
    i(0xb7, dst, 0, 0, imm)
}

/// `lddw dst, map n`.
fn ld_map(dst: u8, n: i32) -> [Insn; 2] {
    [i(0x18, dst, 1, 0, n), i(0, 0, 0, 0, 0)]
}

/// A rejection's errno must be the kernel's too, and its whole message (the leak message
/// names each reference on a line of its own) lines of the kernel's log.
fn same_rejection(name: &str, (kernel, ours): &Answers) {
    if let Err(r) = ours {
        assert_eq!(
            Some(r.code.as_str()),
            kernel.errno.as_deref(),
            "{name}: errno differs ({})",
            r.message
        );
        assert!(
            kernel.log.contains(&format!("{}\n", r.message)),
            "{name}: the kernel's log does not hold our message {:?}\n{}",
            r.message,
            kernel.log
        );
    }
}

/// Compares the kernel's answer with ours (`compare`, errno included) and returns both.
fn answers(name: &str, prog_type: u32, slots: &[Insn], maps: &[&str]) -> Answers {
    let answers = compare(name, prog_type, slots, maps);
    same_rejection(name, &answers);
    answers
}

fn check(name: &str, prog_type: u32, slots: &[Insn], maps: &[&str]) {
    let _ = answers(name, prog_type, slots, maps);
}

#[test]
fn a_callee_reads_the_callers_stack_through_its_argument() {
    kernel_or_skip!();
    let p = [
        mov(1, 5),
        i(0x7a, 10, 0, -8, 7), // *(u64 *)(r10 -8) = 7
        i(0xbf, 1, 10, 0, 0),
        i(0x07, 1, 0, 0, -8),
        call(1),
        exit(),
        // func#1: r0 = *(u64 *)(r1 +0) (the caller's 7), a slot of its own
        i(0x79, 0, 1, 0, 0),
        i(0x7a, 10, 0, -16, 1),
        mov(2, 3),
        exit(),
    ];
    let (kernel, ours) = answers("caller stack argument", SOCKET_FILTER, &p, &[]);
    assert_eq!(call_lines(&kernel.log).len(), 8, "{}", kernel.log);
    let verified = ours.expect("accepted");
    // The kernel's `stack depth 8+16` for the same program.
    assert_eq!(verified.stack_depth, vec![8, 16]);
}

#[test]
fn a_callee_writes_the_callers_stack_and_the_caller_reads_it_back() {
    kernel_or_skip!();
    let p = [
        i(0xbf, 1, 10, 0, 0),
        i(0x07, 1, 0, 0, -8),
        call(2),
        i(0x79, 0, 10, -8, 0), // r0 = *(u64 *)(r10 -8): what the callee stored
        exit(),
        i(0x7a, 1, 0, 0, 42), // *(u64 *)(r1 +0) = 42
        mov(0, 0),
        exit(),
    ];
    check("callee stores into caller", SOCKET_FILTER, &p, &[]);
}

#[test]
fn registers_across_a_call() {
    kernel_or_skip!();
    // The callee sees only what the caller passed in R1-R5.
    let p = [call(2), mov(0, 0), exit(), i(0xbf, 0, 2, 0, 0), exit()];
    check("callee reads an unset R2", SOCKET_FILTER, &p, &[]);
    // The caller's R1-R5 are gone after the call.
    let p = [
        mov(1, 1),
        call(2),
        i(0xbf, 0, 1, 0, 0),
        exit(),
        mov(0, 0),
        exit(),
    ];
    check("caller reads R1 after the call", SOCKET_FILTER, &p, &[]);
    // R0 is what the callee left in it: nothing here.
    let p = [call(1), exit(), exit()];
    check("callee without R0", SOCKET_FILTER, &p, &[]);
    // R6-R9 are the caller's own and survive the call.
    let p = [
        mov(6, 9),
        call(2),
        i(0xbf, 0, 6, 0, 0),
        exit(),
        mov(6, 1),
        mov(0, 0),
        exit(),
    ];
    check("R6 survives a call", SOCKET_FILTER, &p, &[]);
}

#[test]
fn a_function_is_verified_in_the_context_of_each_call() {
    kernel_or_skip!();
    // The second call passes a number where the first passed the stack.
    let p = [
        i(0x7a, 10, 0, -8, 7),
        i(0xbf, 1, 10, 0, 0),
        i(0x07, 1, 0, 0, -8),
        call(3),
        mov(1, 0),
        call(1),
        exit(),
        i(0x79, 0, 1, 0, 0),
        exit(),
    ];
    check("callee in two contexts", SOCKET_FILTER, &p, &[]);
}

#[test]
fn a_callee_may_not_return_or_leave_its_stack_behind() {
    kernel_or_skip!();
    let p = [
        call(2),
        mov(0, 0),
        exit(),
        i(0xbf, 0, 10, 0, 0),
        i(0x07, 0, 0, 0, -8),
        exit(),
    ];
    check("callee returns its stack", SOCKET_FILTER, &p, &[]);
    let p = [
        i(0xbf, 1, 10, 0, 0),
        i(0x07, 1, 0, 0, -8),
        call(2),
        mov(0, 0),
        exit(),
        i(0xbf, 2, 10, 0, 0),
        i(0x7b, 1, 2, 0, 0), // *(u64 *)(r1 +0) = r2 (the callee's frame pointer)
        mov(0, 0),
        exit(),
    ];
    check(
        "callee spills its fp into the caller",
        SOCKET_FILTER,
        &p,
        &[],
    );
}

#[test]
fn at_most_eight_frames() {
    kernel_or_skip!();
    // main and eight nested calls: one too many.
    let mut p = vec![mov(0, 0), call(1), exit()];
    for _ in 0..8 {
        p.extend([call(1), exit()]);
    }
    p.extend([mov(0, 0), exit()]);
    check("nine frames", SOCKET_FILTER, &p, &[]);
    // Seven nested calls fit.
    let mut p = vec![mov(0, 0), call(1), exit()];
    for _ in 0..6 {
        p.extend([call(1), exit()]);
    }
    p.extend([mov(0, 0), exit()]);
    check("eight frames", SOCKET_FILTER, &p, &[]);
    // Recursion runs into the same limit.
    check(
        "recursion",
        SOCKET_FILTER,
        &[call(1), exit(), call(-1), exit()],
        &[],
    );
}

#[test]
fn the_stack_of_a_call_chain_is_limited_to_512_bytes() {
    kernel_or_skip!();
    // 304 + 256 (each rounded to 16 as the kernel's JIT rounds them).
    let p = [
        i(0x7a, 10, 0, -304, 1),
        call(1),
        exit(),
        i(0x7a, 10, 0, -256, 1),
        mov(0, 0),
        exit(),
    ];
    check("two frames over 512", SOCKET_FILTER, &p, &[]);
    // 200 + 200 + 120 bytes: 208 + 208 + 128 after rounding.
    let p = [
        i(0x7a, 10, 0, -200, 1),
        call(1),
        exit(),
        i(0x7a, 10, 0, -200, 1),
        call(1),
        exit(),
        i(0x7a, 10, 0, -120, 1),
        mov(0, 0),
        exit(),
    ];
    check("three frames over 512", SOCKET_FILTER, &p, &[]);
    // 256 + 256 fits exactly.
    let p = [
        i(0x7a, 10, 0, -256, 1),
        call(1),
        exit(),
        i(0x7a, 10, 0, -256, 1),
        mov(0, 0),
        exit(),
    ];
    let (_, ours) = answers("two frames of 256", SOCKET_FILTER, &p, &[]);
    assert_eq!(ours.expect("accepted").stack_depth, vec![256, 256]);
}

/// `BPF_MAP_TYPE_HASH`, 4-byte keys, 8-byte values.
const HASH: &str = "1:4:8:1";

#[test]
fn map_lookups_through_a_callers_key_and_values_returned_to_the_caller() {
    kernel_or_skip!();
    // The callee looks up the key the caller keeps on its stack and returns the value (or
    // NULL); the caller checks it before reading.
    let mut p = vec![
        i(0x62, 10, 0, -4, 0), // *(u32 *)(r10 -4) = 0
        i(0xbf, 1, 10, 0, 0),
        i(0x07, 1, 0, 0, -4),
        call(4),
        i(0x15, 0, 0, 1, 0), // if r0 == 0 goto +1
        i(0x79, 0, 0, 0, 0), // r0 = *(u64 *)(r0 +0)
        mov(0, 0),
        exit(),
        // func#1 (slot 8): bpf_map_lookup_elem(map 0, r1)
        i(0xbf, 2, 1, 0, 0),
    ];
    p.extend(ld_map(1, 0));
    p.extend([helper(1), exit()]);
    check("lookup in a callee", SOCKET_FILTER, &p, &[HASH]);
    // Without the caller's null check.
    let mut q = p.clone();
    q[4] = mov(1, 0); // no jump
    check("unchecked value from a callee", SOCKET_FILTER, &q, &[HASH]);
}

/// `BPF_MAP_TYPE_RINGBUF` of one page.
const RINGBUF: &str = "27:0:0:4096";

/// `r0 = bpf_ringbuf_reserve(map 0, 8, 0)`.
fn reserve() -> Vec<Insn> {
    let mut p = ld_map(1, 0).to_vec();
    p.extend([mov(2, 8), mov(3, 0), helper(131)]);
    p
}

#[test]
fn a_reserved_record_is_written_and_submitted() {
    kernel_or_skip!();
    let mut p = reserve();
    p.extend([
        i(0x15, 0, 0, 4, 0), // if r0 == 0 goto +4
        i(0x7a, 0, 0, 0, 1), // *(u64 *)(r0 +0) = 1
        i(0xbf, 1, 0, 0, 0), // r1 = r0
        mov(2, 0),           //
        helper(132),         // bpf_ringbuf_submit
        mov(0, 0),
        exit(),
    ]);
    check("reserve, write, submit", SOCKET_FILTER, &p, &[RINGBUF]);
    // Discarded instead, through a copy spilled to the stack and filled back.
    let mut p = reserve();
    p.extend([
        i(0x15, 0, 0, 5, 0),
        i(0x7b, 10, 0, -8, 0), // *(u64 *)(r10 -8) = r0
        i(0x79, 1, 10, -8, 0), // r1 = *(u64 *)(r10 -8)
        mov(2, 0),
        helper(133),           // bpf_ringbuf_discard
        i(0x79, 1, 10, -8, 0), // the spilled copy is a number now
        mov(0, 0),
        exit(),
    ]);
    check("reserve, spill, discard", SOCKET_FILTER, &p, &[RINGBUF]);
}

#[test]
fn a_record_that_is_not_released_leaks() {
    kernel_or_skip!();
    let mut p = reserve();
    p.extend([mov(0, 0), exit()]);
    check("leak", SOCKET_FILTER, &p, &[RINGBUF]);
    // The NULL side holds nothing; the other leaks.
    let mut p = reserve();
    p.extend([i(0x15, 0, 0, 1, 0), exit(), mov(0, 0), exit()]);
    check("leak after the null check", SOCKET_FILTER, &p, &[RINGBUF]);
    // Two records: where the second is NULL, the first is still held and named.
    let mut p = reserve();
    p.extend([i(0xbf, 6, 0, 0, 0), i(0x15, 6, 0, 16, 0)]); // if r6 == 0 goto the last exit
    p.extend(reserve());
    p.extend([
        i(0x15, 0, 0, 8, 0), // if r0 == 0 goto +8: A is still held there
        i(0xbf, 1, 0, 0, 0),
        mov(2, 0),
        helper(133),
        i(0xbf, 1, 6, 0, 0),
        mov(2, 0),
        helper(132),
        mov(0, 0),
        exit(),
        mov(0, 0),
        exit(),
        mov(0, 0),
        exit(),
    ]);
    check("two records", SOCKET_FILTER, &p, &[RINGBUF]);
    // A called function may hold the record; the main program's exit may not.
    let mut p = vec![call(2), mov(0, 0), exit()];
    p.extend(reserve());
    p.extend([mov(0, 0), exit()]);
    check("leak from a callee", SOCKET_FILTER, &p, &[RINGBUF]);
}

#[test]
fn releases_are_checked() {
    kernel_or_skip!();
    // Used after submit.
    let mut p = reserve();
    p.extend([
        i(0x15, 0, 0, 6, 0),
        i(0xbf, 6, 0, 0, 0),
        i(0xbf, 1, 0, 0, 0),
        mov(2, 0),
        helper(132),
        i(0x7a, 6, 0, 0, 1), // *(u64 *)(r6 +0) = 1
        mov(0, 0),
        exit(),
    ]);
    check("use after submit", SOCKET_FILTER, &p, &[RINGBUF]);
    // Submitted before the null check.
    let mut p = reserve();
    p.extend([
        i(0xbf, 1, 0, 0, 0),
        mov(2, 0),
        helper(132),
        mov(0, 0),
        exit(),
    ]);
    check("submit of maybe NULL", SOCKET_FILTER, &p, &[RINGBUF]);
    // Released twice through two copies.
    let mut p = reserve();
    p.extend([
        i(0x15, 0, 0, 7, 0),
        i(0xbf, 6, 0, 0, 0),
        i(0xbf, 1, 0, 0, 0),
        mov(2, 0),
        helper(132),
        i(0xbf, 1, 6, 0, 0),
        mov(2, 0),
        helper(133),
        mov(0, 0),
        exit(),
    ]);
    check("double release", SOCKET_FILTER, &p, &[RINGBUF]);
    // Submitted through a moved pointer.
    let mut p = reserve();
    p.extend([
        i(0x15, 0, 0, 5, 0),
        i(0x07, 0, 0, 0, 1),
        i(0xbf, 1, 0, 0, 0),
        mov(2, 0),
        helper(132),
        mov(0, 0),
        exit(),
    ]);
    check("submit of a moved pointer", SOCKET_FILTER, &p, &[RINGBUF]);
}

#[test]
fn a_record_has_the_constant_size_reserved() {
    kernel_or_skip!();
    // Written past its 8 bytes.
    let mut p = reserve();
    p.extend([
        i(0x15, 0, 0, 4, 0),
        i(0x7a, 0, 0, 8, 1),
        i(0xbf, 1, 0, 0, 0),
        mov(2, 0),
        helper(132),
        mov(0, 0),
        exit(),
    ]);
    check("write past the record", SOCKET_FILTER, &p, &[RINGBUF]);
    // A size that is not a constant.
    let mut p = vec![i(0x61, 2, 1, 0, 0)]; // r2 = skb->len
    p.extend(ld_map(1, 0));
    p.extend([mov(3, 0), helper(131), mov(0, 0), exit()]);
    check("variable size", SOCKET_FILTER, &p, &[RINGBUF]);
}

/// An array of one 16-byte value with a `struct bpf_spin_lock` at offset 0, and a hash map of
/// the same shape with the lock at offset 8 (the loader gives them BTF).
const LOCKED_ARRAY: &str = "2:4:16:1:0";
const LOCKED_HASH: &str = "1:4:16:1:8";

/// `r0 = bpf_map_lookup_elem(map n, &(u32)0)`.
fn lookup(n: i32) -> Vec<Insn> {
    let mut p = vec![
        i(0x62, 10, 0, -4, 0),
        i(0xbf, 2, 10, 0, 0),
        i(0x07, 2, 0, 0, -4),
    ];
    p.extend(ld_map(1, n));
    p.push(helper(1));
    p
}

#[test]
fn a_spin_lock_is_taken_and_released_around_the_value() {
    kernel_or_skip!();
    // The array's element needs no null check; the lock is at its start.
    let mut p = lookup(0);
    p.extend([
        i(0xbf, 6, 0, 0, 0),
        i(0xbf, 1, 0, 0, 0),
        helper(93),          // bpf_spin_lock
        i(0x7a, 6, 0, 8, 1), // *(u64 *)(r6 +8) = 1, under the lock
        i(0xbf, 1, 6, 0, 0),
        helper(94), // bpf_spin_unlock
        mov(0, 0),
        exit(),
    ]);
    check("lock an array value", XDP, &p, &[LOCKED_ARRAY]);
    // The hash map's value after its null check, the lock at offset 8; a function called
    // while the lock is held (allowed: it is not a helper).
    let mut p = lookup(0);
    p.extend([
        i(0x15, 0, 0, 9, 0), // if r0 == 0 goto the exit
        i(0xbf, 6, 0, 0, 0),
        i(0xbf, 1, 0, 0, 0),
        i(0x07, 1, 0, 0, 8),
        helper(93),
        call(5),
        i(0xbf, 1, 6, 0, 0),
        i(0x07, 1, 0, 0, 8),
        helper(94),
        mov(0, 0),
        exit(),
        mov(0, 0),
        exit(),
    ]);
    check("lock a hash value, call under it", XDP, &p, &[LOCKED_HASH]);
}

#[test]
fn spin_lock_rules_in_the_kernels_words() {
    kernel_or_skip!();
    let locked = |tail: &[Insn]| {
        let mut p = lookup(0);
        p.extend([i(0xbf, 6, 0, 0, 0), i(0xbf, 1, 0, 0, 0), helper(93)]);
        p.extend_from_slice(tail);
        p
    };
    let unlock_exit = [i(0xbf, 1, 6, 0, 0), helper(94), mov(0, 0), exit()];
    check(
        "exit holding the lock",
        XDP,
        &locked(&[mov(0, 0), exit()]),
        &[LOCKED_ARRAY],
    );
    let mut tail = vec![helper(5)];
    tail.extend(unlock_exit);
    check(
        "helper under the lock",
        XDP,
        &locked(&tail),
        &[LOCKED_ARRAY],
    );
    let mut tail = vec![i(0xbf, 1, 6, 0, 0), helper(93)];
    tail.extend(unlock_exit);
    check("lock twice", XDP, &locked(&tail), &[LOCKED_ARRAY]);
    let mut tail = vec![i(0x61, 2, 6, 0, 0)]; // r2 = *(u32 *)(r6 +0): the lock itself
    tail.extend(unlock_exit);
    check("read the lock", XDP, &locked(&tail), &[LOCKED_ARRAY]);
    // Not at the lock's offset, not a constant offset, not a map value.
    let mut p = lookup(0);
    p.extend([
        i(0xbf, 1, 0, 0, 0),
        i(0x07, 1, 0, 0, 4),
        helper(93),
        mov(0, 0),
        exit(),
    ]);
    check("lock at the wrong offset", XDP, &p, &[LOCKED_ARRAY]);
    let mut p = lookup(0);
    p.extend([
        i(0x61, 2, 0, 8, 0),
        i(0x57, 2, 0, 0, 4),
        i(0xbf, 1, 0, 0, 0),
        i(0x0f, 1, 2, 0, 0),
        helper(93),
        mov(0, 0),
        exit(),
    ]);
    check("lock at a variable offset", XDP, &p, &[LOCKED_ARRAY]);
    let p = [
        i(0xbf, 1, 10, 0, 0),
        i(0x07, 1, 0, 0, -8),
        helper(93),
        mov(0, 0),
        exit(),
    ];
    check("lock on the stack", XDP, &p, &[LOCKED_ARRAY]);
    // Unlocks that match no lock.
    let mut p = lookup(0);
    p.extend([i(0xbf, 1, 0, 0, 0), helper(94), mov(0, 0), exit()]);
    check("unlock without a lock", XDP, &p, &[LOCKED_ARRAY]);
    let mut p = lookup(0);
    p.push(i(0xbf, 6, 0, 0, 0));
    p.extend(lookup(0));
    p.extend([
        i(0xbf, 7, 0, 0, 0),
        i(0xbf, 1, 6, 0, 0),
        helper(93),
        i(0xbf, 1, 7, 0, 0),
        helper(94),
        mov(0, 0),
        exit(),
    ]);
    check("unlock through another lookup", XDP, &p, &[LOCKED_ARRAY]);
    // A map without BTF has no lock.
    let mut p = lookup(0);
    p.extend([i(0xbf, 1, 0, 0, 0), helper(93), mov(0, 0), exit()]);
    check("lock in a map without BTF", XDP, &p, &["2:4:16:1"]);
}

#[test]
fn socket_filters_and_tracing_programs_may_not_use_locked_maps() {
    kernel_or_skip!();
    let mut p = lookup(0);
    p.extend([mov(0, 0), exit()]);
    check("socket filter", SOCKET_FILTER, &p, &[LOCKED_ARRAY]);
    check("kprobe", KPROBE, &p, &[LOCKED_ARRAY]);
}

/// `BPF_MAP_TYPE_PROG_ARRAY` of four programs.
const PROG_ARRAY: &str = "3:4:4:4";

/// `bpf_tail_call(r6 (the context), map n, 0)`.
fn tail_call(n: i32) -> Vec<Insn> {
    let mut p = vec![i(0xbf, 1, 6, 0, 0)];
    p.extend(ld_map(2, n));
    p.extend([mov(3, 0), helper(12)]);
    p
}

#[test]
fn tail_calls_take_the_context_and_a_prog_array() {
    kernel_or_skip!();
    let mut p = vec![i(0xbf, 6, 1, 0, 0)];
    p.extend(tail_call(0));
    p.extend([mov(0, 0), exit()]);
    check("tail call", SOCKET_FILTER, &p, &[PROG_ARRAY]);
    // The main function may tail-call in a program with functions.
    let mut q = p.clone();
    q.truncate(q.len() - 2);
    q.extend([call(2), mov(0, 0), exit(), mov(0, 0), exit()]);
    check(
        "tail call beside a function",
        SOCKET_FILTER,
        &q,
        &[PROG_ARRAY],
    );
    // Not the context in R1.
    let mut q = vec![i(0xbf, 6, 10, 0, 0)];
    q.extend(tail_call(0));
    q.extend([mov(0, 0), exit()]);
    check(
        "tail call without the context",
        SOCKET_FILTER,
        &q,
        &[PROG_ARRAY],
    );
    // Not a prog array (the kernel's message lacks its newline: compared as contained).
    let _ = compare_verdict(
        "tail call into an array",
        SOCKET_FILTER,
        &p,
        &["2:4:4:4"],
        &[],
    );
}

#[test]
fn what_a_tail_call_may_not_leave_behind() {
    kernel_or_skip!();
    // A reserved ring buffer record.
    let mut p = vec![i(0xbf, 6, 1, 0, 0)];
    p.extend(ld_map(1, 1));
    p.extend([mov(2, 8), mov(3, 0), helper(131)]);
    p.extend([i(0x15, 0, 0, 8, 0), i(0xbf, 7, 0, 0, 0)]);
    p.extend(tail_call(0));
    p.extend([
        i(0xbf, 1, 7, 0, 0),
        mov(2, 0),
        helper(132),
        mov(0, 0),
        exit(),
    ]);
    check(
        "tail call holding a record",
        SOCKET_FILTER,
        &p,
        &[PROG_ARRAY, RINGBUF],
    );
    // A tail call from a function needs BTF function info, which these raw programs lack.
    let mut p = vec![call(2), mov(0, 0), exit(), i(0xbf, 6, 1, 0, 0)];
    p.extend(tail_call(0));
    p.extend([mov(0, 0), exit()]);
    check("tail call in a function", SOCKET_FILTER, &p, &[PROG_ARRAY]);
}

/// `lddw dst, function at +rel` (a function pointer).
fn ld_func(dst: u8, rel: i32) -> [Insn; 2] {
    [i(0x18, dst, 4, 0, rel), i(0, 0, 0, 0, 0)]
}

/// `bpf_loop(10, callback at slot 8, ctx, 0)` with `ctx` set by `ctx_setup` (3 slots, r3),
/// then `r0 = 0; exit`; the callback follows at slot 11 with `body`. Returns the program and
/// its function entries.
fn bpf_loop(ctx_setup: [Insn; 3], body: &[Insn]) -> (Vec<Insn>, Vec<usize>) {
    let mut p = ctx_setup.to_vec();
    p.push(mov(1, 10));
    p.extend(ld_func(2, 11 - 4 - 1));
    p.extend([mov(4, 0), helper(181)]);
    // slot 8: after the loop, read back the context's first word when it is on the stack
    p.extend([i(0x79, 0, 10, -8, 0), mov(0, 0), exit()]);
    p.extend_from_slice(body);
    (p, vec![0, 11])
}

/// The context: `*(u64 *)(r10 -8) = 0; r3 = r10 - 8`.
fn stack_ctx() -> [Insn; 3] {
    [
        i(0x7a, 10, 0, -8, 0),
        i(0xbf, 3, 10, 0, 0),
        i(0x07, 3, 0, 0, -8),
    ]
}

/// No context: `r3 = 0`, and two instructions that change nothing.
fn no_ctx() -> [Insn; 3] {
    [
        i(0x7a, 10, 0, -8, 0),
        i(0xb7, 3, 0, 0, 0),
        i(0xb7, 0, 0, 0, 0),
    ]
}

#[test]
fn bpf_loop_callbacks_get_an_index_and_the_context() {
    kernel_or_skip!();
    let cases: [(&str, [Insn; 3], Vec<Insn>); 7] = [
        ("returns 0", no_ctx(), vec![mov(0, 0), exit()]),
        ("returns 2", no_ctx(), vec![mov(0, 2), exit()]),
        (
            "returns the index",
            no_ctx(),
            vec![i(0xbf, 0, 1, 0, 0), exit()],
        ),
        ("returns nothing", no_ctx(), vec![exit()]),
        (
            "returns its stack",
            no_ctx(),
            vec![i(0xbf, 0, 10, 0, 0), i(0x07, 0, 0, 0, -8), exit()],
        ),
        (
            // *(u64 *)(ctx) += index-ish: a read and a write of the caller's stack
            "counts in the context",
            stack_ctx(),
            vec![
                i(0x79, 3, 2, 0, 0),
                i(0x07, 3, 0, 0, 1),
                i(0x7b, 2, 3, 0, 0),
                mov(0, 0),
                exit(),
            ],
        ),
        (
            "reads past the context",
            stack_ctx(),
            vec![i(0x79, 3, 2, 8, 0), mov(0, 0), exit()],
        ),
    ];
    for (name, ctx, body) in cases {
        let (p, funcs) = bpf_loop(ctx, &body);
        let _ = compare_verdict(name, SOCKET_FILTER, &p, &[], &funcs);
    }
    // The context must be the stack or NULL; the callback a function.
    let (mut p, funcs) = bpf_loop(no_ctx(), &[mov(0, 0), exit()]);
    p[1] = i(0xb7, 3, 0, 0, 1);
    let _ = compare_verdict("a number as the context", SOCKET_FILTER, &p, &[], &funcs);
}

#[test]
fn a_pointer_in_the_context_stays_a_pointer_while_no_callback_writes_there() {
    kernel_or_skip!();
    // The context holds the program's context pointer; the callback reads a field through it.
    let ctx_holds_ctx = [
        i(0x7b, 10, 1, -8, 0), // *(u64 *)(r10 -8) = r1
        i(0xbf, 3, 10, 0, 0),
        i(0x07, 3, 0, 0, -8),
    ];
    let read = [
        i(0x79, 1, 2, 0, 0), // r1 = *(u64 *)(r2 +0)
        i(0x61, 0, 1, 0, 0), // r0 = skb->len
        mov(0, 0),
        exit(),
    ];
    let (p, funcs) = bpf_loop(ctx_holds_ctx, &read);
    let (_, ours) = compare_verdict(
        "callback reads through the context",
        SOCKET_FILTER,
        &p,
        &[],
        &funcs,
    );
    assert!(ours.is_ok());
    // The callback overwrites the pointer: a later run reads a number.
    let write = [
        i(0x79, 1, 2, 0, 0),
        i(0x7a, 2, 0, 0, 0), // *(u64 *)(r2 +0) = 0
        i(0x61, 0, 1, 0, 0),
        mov(0, 0),
        exit(),
    ];
    let (p, funcs) = bpf_loop(ctx_holds_ctx, &write);
    let (_, ours) = compare_verdict(
        "callback overwrites the context",
        SOCKET_FILTER,
        &p,
        &[],
        &funcs,
    );
    assert!(ours.is_err());
}

#[test]
fn what_the_callback_leaves_in_the_context_is_checked_after_the_loop() {
    kernel_or_skip!();
    // The callback stores 1000 in the context's word; after the loop the caller bounds the
    // word before moving a stack pointer by it (the caller goes on with 0, then with 1000,
    // which the bound makes safe).
    let mut p = stack_ctx().to_vec();
    p.push(mov(1, 10));
    p.extend(ld_func(2, 16 - 4 - 1));
    p.extend([
        mov(4, 0),
        helper(181),
        i(0x79, 2, 10, -8, 0), // r2 = *(u64 *)(r10 -8)
        i(0x25, 2, 0, 4, 7),   // if r2 > 7 goto +4
        i(0xbf, 1, 10, 0, 0),
        i(0x07, 1, 0, 0, -16),
        i(0x0f, 1, 2, 0, 0),
        i(0x71, 0, 1, 0, 0), // r0 = *(u8 *)(r1 +0)
        mov(0, 0),
        exit(),
        // slot 16: the callback
        mov(3, 1000),
        i(0x7b, 2, 3, 0, 0),
        mov(0, 0),
        exit(),
    ]);
    let (_, ours) = compare_verdict(
        "a stack index from the callback",
        SOCKET_FILTER,
        &p,
        &[],
        &[0, 16],
    );
    assert!(ours.is_ok());
}

#[test]
fn each_run_of_a_loop_callback_starts_from_what_the_last_one_left() {
    kernel_or_skip!();
    // The callback returns the context's word, then stores 2 there: its first run returns 0,
    // any later one 2, out of its range. One run is safe, two are not.
    for (runs, accepted) in [(1, true), (2, false), (3, false)] {
        let mut p = stack_ctx().to_vec();
        p.push(mov(1, runs));
        p.extend(ld_func(2, 10 - 4 - 1));
        p.extend([
            mov(4, 0),
            helper(181),
            mov(0, 0),
            exit(),
            // slot 10: the callback
            i(0x79, 0, 2, 0, 0), // r0 = *(u64 *)(r2 +0)
            i(0x7a, 2, 0, 0, 2), // *(u64 *)(r2 +0) = 2
            exit(),
        ]);
        let name = format!("a callback returning what it stored on its last run, {runs} runs");
        let (_, ours) = compare_verdict(&name, SOCKET_FILTER, &p, &[], &[0, 10]);
        assert_eq!(ours.is_ok(), accepted, "{name}");
    }
    // A callback counting its runs in the context. With a count only known at run time and
    // the runs' count unused after the loop, the runs converge once the imprecise count is
    // widened to any number. Used after the loop as a stack offset, the count is precise and
    // each run is walked: safe for 4 runs (fp-16 + 4), not for 20 (past the frame). (Used
    // with a count known only at run time, both walks reach the complexity limit.)
    for (count, used, accepted) in [
        (None, false, true),
        (Some(4), true, true),
        (Some(20), true, false),
    ] {
        let mut p = vec![helper(7)]; // bpf_get_prandom_u32
        p.push(match count {
            None => i(0xbf, 1, 0, 0, 0),
            Some(n) => mov(1, n),
        });
        p.extend(stack_ctx());
        let entry = if used { 16 } else { 12 };
        p.extend(ld_func(2, entry - 5 - 1));
        p.extend([mov(4, 0), helper(181), i(0x79, 2, 10, -8, 0)]);
        if used {
            p.extend([
                i(0xbf, 1, 10, 0, 0),
                i(0x07, 1, 0, 0, -16),
                i(0x0f, 1, 2, 0, 0),
                i(0x71, 0, 1, 0, 0), // r0 = *(u8 *)(r1 +0)
            ]);
        }
        p.extend([
            mov(0, 0),
            exit(),
            // the callback: ctx->count += 1
            i(0x79, 3, 2, 0, 0),
            i(0x07, 3, 0, 0, 1),
            i(0x7b, 2, 3, 0, 0),
            mov(0, 0),
            exit(),
        ]);
        let name = format!("a counting callback, {count:?} runs, the count used after: {used}");
        let (_, ours) = compare_verdict(&name, SOCKET_FILTER, &p, &[], &[0, entry as usize]);
        assert_eq!(ours.is_ok(), accepted, "{name}");
    }
}

/// A hash map of 4-byte keys and 8-byte values.
const HASH8: &str = "1:4:8:4";

#[test]
fn for_each_map_elem_callbacks_get_the_map_key_and_value() {
    kernel_or_skip!();
    // bpf_for_each_map_elem(map, callback, NULL, 0); the callback at slot 9.
    let prog = |body: &[Insn]| {
        let mut p = ld_map(1, 0).to_vec();
        p.extend(ld_func(2, 9 - 2 - 1));
        p.extend([mov(3, 0), mov(4, 0), helper(164), mov(0, 0), exit()]);
        p.extend_from_slice(body);
        p
    };
    let cases: [(&str, Vec<Insn>); 5] = [
        (
            "reads key and value",
            vec![i(0x61, 0, 2, 0, 0), i(0x79, 0, 3, 0, 0), mov(0, 0), exit()],
        ),
        (
            "writes the value",
            vec![i(0x7a, 3, 0, 0, 7), mov(0, 0), exit()],
        ),
        (
            "reads past the key",
            vec![i(0x61, 0, 2, 4, 0), mov(0, 0), exit()],
        ),
        (
            "writes the key",
            vec![i(0x62, 2, 0, 0, 7), mov(0, 0), exit()],
        ),
        ("returns 5", vec![mov(0, 5), exit()]),
    ];
    for (name, body) in cases {
        let p = prog(&body);
        let _ = compare_verdict(name, SOCKET_FILTER, &p, &[HASH8], &[0, 9]);
    }
    // Maps that cannot walk their elements (ENOTSUPP, which has no name in libc).
    let p = prog(&[mov(0, 0), exit()]);
    for map in [RINGBUF, PROG_ARRAY, "22:0:4:4"] {
        let (_, ours) = compare_verdict(map, SOCKET_FILTER, &p, &[map], &[0, 9]);
        assert_eq!(
            ours.map_err(|r| r.code),
            Err(ebpf_vm::error::ErrorCode::Enotsupp)
        );
    }
}

#[test]
fn a_callback_that_keeps_a_record_leaks_it() {
    kernel_or_skip!();
    let mut body = ld_map(1, 0).to_vec();
    body.extend([mov(2, 8), mov(3, 0), helper(131), mov(0, 0), exit()]);
    let (p, funcs) = bpf_loop(no_ctx(), &body);
    let _ = compare_verdict("callback reserves", SOCKET_FILTER, &p, &[RINGBUF], &funcs);
}

#[test]
fn a_null_check_in_a_callee_covers_the_copy_in_its_callers_stack() {
    kernel_or_skip!();
    // The callee looks the caller's key up, leaves the value pointer in the caller's stack,
    // checks it and returns 1 when it is there; the caller then uses its copy.
    let mut p = vec![
        i(0x62, 10, 0, -4, 0), // *(u32 *)(r10 -4) = 0
        i(0xbf, 1, 10, 0, 0),
        i(0x07, 1, 0, 0, -16),
        call(5),
        i(0x15, 0, 0, 2, 0),    // if r0 == 0 goto +2
        i(0x79, 1, 10, -16, 0), // r1 = the copy
        i(0x79, 0, 1, 0, 0),    // r0 = *(u64 *)(r1 +0)
        mov(0, 0),
        exit(),
        // slot 9: the callee
        i(0xbf, 6, 1, 0, 0),
        i(0xbf, 2, 1, 0, 0),
        i(0x07, 2, 0, 0, 12), // the caller's fp-4
    ];
    p.extend(ld_map(1, 0));
    p.extend([
        helper(1),
        i(0x7b, 6, 0, 0, 0), // *(u64 *)(r6 +0) = r0
        i(0x15, 0, 0, 2, 0),
        mov(0, 1),
        exit(),
        mov(0, 0),
        exit(),
    ]);
    check("null check of a caller's copy", SOCKET_FILTER, &p, &[HASH]);
}

#[test]
fn a_for_each_callback_writing_its_value_leaves_the_callers_stack() {
    kernel_or_skip!();
    // The caller keeps the context pointer at fp-8 and passes fp-16 as the callback's context;
    // the callback writes only the map value, so fp-8 is still the pointer after the call.
    let mut p = vec![
        i(0x7b, 10, 1, -8, 0),
        i(0x7a, 10, 0, -16, 0),
        i(0xbf, 3, 10, 0, 0),
        i(0x07, 3, 0, 0, -16),
    ];
    p.extend(ld_map(1, 0));
    p.extend(ld_func(2, 14 - 6 - 1));
    p.extend([
        mov(4, 0),
        helper(164),
        i(0x79, 1, 10, -8, 0),
        i(0x61, 0, 1, 0, 0), // r0 = skb->len through the kept pointer
        mov(0, 0),
        exit(),
        // slot 14: the callback
        i(0x7a, 3, 0, 0, 1), // *(u64 *)(value +0) = 1
        mov(0, 0),
        exit(),
    ]);
    let (_, ours) = compare_verdict(
        "value written, stack kept",
        SOCKET_FILTER,
        &p,
        &[HASH8],
        &[0, 14],
    );
    assert!(ours.is_ok());
}

/// `*(u32 *)(r10 -4) = 0; r2 = r10 - 4; r1 = map n; call map_lookup_elem`: a lookup of key 0.
fn lookup_key_0(n: i32) -> Vec<Insn> {
    let mut v = vec![
        i(0x62, 10, 0, -4, 0),
        i(0xbf, 2, 10, 0, 0),
        i(0x07, 2, 0, 0, -4),
    ];
    v.extend(ld_map(1, n));
    v.push(helper(1));
    v
}

/// Maps of maps: map 0 is the inner template (an array of 4 u64s), map 1 an array of maps and
/// map 2 a hash of maps over it.
const MAP_OF_MAPS: [&str; 3] = ["2:4:8:4", "12:4:4:2@0", "13:4:4:2@0"];

#[test]
fn a_lookup_in_a_map_of_maps_gives_the_inner_map_or_null() {
    kernel_or_skip!();
    for (outer, name) in [(1, "array of maps"), (2, "hash of maps")] {
        // The kernel types r0 `map_ptr_or_null` with the template's sizes at once; checked, it
        // is a map for the next lookup, whose constant key 0 is inside the template's 4
        // entries: no NULL check needed there.
        let mut p = lookup_key_0(outer);
        p.push(i(0x15, 0, 0, 6, 0)); // if r0 == 0 goto exit
        p.push(i(0xbf, 1, 0, 0, 0)); // r1 = r0
        p.push(i(0xbf, 2, 10, 0, 0));
        p.push(i(0x07, 2, 0, 0, -4));
        p.push(helper(1));
        p.push(i(0x79, 0, 0, 0, 0)); // r0 = *(u64 *)(r0 +0)
        p.push(exit());
        p.push(mov(0, 0));
        p.push(exit());
        let (kernel, ours) = answers(name, XDP, &p, &MAP_OF_MAPS);
        assert!(
            kernel.log.contains("R0=map_ptr_or_null(id=1,ks=4,vs=8)"),
            "{}",
            kernel.log
        );
        ours.expect("accepted");
        // Unchecked, it is no map: `R1 type=map_ptr_or_null expected=map_ptr`.
        let mut p = lookup_key_0(outer);
        p.push(i(0xbf, 1, 0, 0, 0));
        p.push(i(0xbf, 2, 10, 0, 0));
        p.push(i(0x07, 2, 0, 0, -4));
        p.push(helper(1));
        p.push(mov(0, 0));
        p.push(exit());
        let (_, ours) = answers(name, XDP, &p, &MAP_OF_MAPS);
        assert_eq!(
            ours.expect_err("rejected").message,
            "R1 type=map_ptr_or_null expected=map_ptr"
        );
        // Neither a value to read nor a map to update through the outer map.
        let mut p = lookup_key_0(outer);
        p.push(i(0x15, 0, 0, 1, 0));
        p.push(i(0x79, 0, 0, 0, 0));
        p.push(mov(0, 0));
        p.push(exit());
        check(name, XDP, &p, &MAP_OF_MAPS);
        // Arithmetic on the result before its check, and on the checked map pointer.
        let mut p = lookup_key_0(outer);
        p.push(i(0x07, 0, 0, 0, 8));
        p.push(mov(0, 0));
        p.push(exit());
        check(name, XDP, &p, &MAP_OF_MAPS);
        let mut p = lookup_key_0(outer);
        p.push(i(0x15, 0, 0, 1, 0));
        p.push(i(0x07, 0, 0, 0, 8));
        p.push(mov(0, 0));
        p.push(exit());
        check(name, XDP, &p, &MAP_OF_MAPS);
    }
    // An update of the outer map from the program (its values are maps): refused.
    let mut p = lookup_key_0(1);
    p.truncate(p.len() - 1);
    p.extend([
        i(0xbf, 3, 10, 0, 0),
        i(0x07, 3, 0, 0, -4),
        mov(4, 0),
        helper(2),
        mov(0, 0),
        exit(),
    ]);
    check("update of an array of maps", XDP, &p, &MAP_OF_MAPS);
}

/// `r1 = map 0; <insn>; r0 = 0; exit`.
fn through_map_ptr(insn: Insn) -> Vec<Insn> {
    let mut p = ld_map(1, 0).to_vec();
    p.extend([insn, mov(0, 0), exit()]);
    p
}

#[test]
fn the_fields_of_struct_bpf_map_are_read_through_a_map_pointer() {
    kernel_or_skip!();
    for (map, name) in [("2:4:8:4", "array"), ("1:4:8:16", "hash")] {
        // Whole fields and parts of them: sha (u8[32], 8 bytes of it), excl, map_type (one byte
        // of it), key_size, value_size, max_entries, map_extra, map_flags, id. Each a scalar
        // of the access size, line for line the kernel's.
        for (size, off) in [
            (0x79, 0),
            (0x61, 24),
            (0x61, 32),
            (0x71, 65),
            (0x61, 64),
            (0x61, 68),
            (0x69, 72),
            (0x61, 76),
            (0x79, 80),
            (0x61, 88),
            (0x61, 92),
        ] {
            check(name, XDP, &through_map_ptr(i(size, 2, 1, off, 0)), &[map]);
        }
        // Refused as the kernel refuses them: a negative offset, a store, a read across two
        // fields (key_size and value_size).
        for insn in [
            i(0x79, 2, 1, -8, 0),
            i(0x62, 1, 0, 76, 1),
            i(0x63, 1, 2, 76, 0),
            i(0x79, 2, 1, 68, 0),
        ] {
            let (kernel, ours) = answers(name, XDP, &through_map_ptr(insn), &[map]);
            assert!(!kernel.accepted && ours.is_err(), "{}", kernel.log);
        }
    }
}
