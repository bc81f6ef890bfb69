//! The JIT's out-of-line memory checks: an access whose inline check (against one fast region)
//! fails goes through a second-region stub and then the check stub, which walks the region
//! table and traps. Each case runs on both engines and is held to values worked out by hand
//! (RFC 9669's semantics, the interpreter's documented counting: a trap's `insn_count` is the
//! number of instructions completed before the trapping one), never taken from either engine.
#![cfg(target_arch = "x86_64")]

mod common;

use common::*;
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::Insn;
use ebpf_vm::{Engine, TrapKind};

/// What a trap names.
type Trapped = (TrapKind, usize, u64, u32, u64);

const ENGINES: [Engine; 2] = [Engine::Interpreter, Engine::Jit];
const SIZES: [(u8, u32); 4] = [(SIZE_B, 1), (SIZE_H, 2), (SIZE_W, 4), (SIZE_DW, 8)];

/// The trap of a run of `p` on `engine`: kind, pc, address, size and count.
fn trap(p: &[Insn], engine: Engine, data: &mut [u8], budget: Option<u64>) -> Trapped {
    let t = run_with(p, engine, data, budget).expect_err("traps");
    (t.kind, t.pc, t.addr, t.size, t.insn_count)
}

/// On both engines with no data (the accesses are on the stack): `ok` runs to `(r0, count)`, and
/// `p`, `ok` with one more access, traps out of bounds naming `(pc, size, count)`.
fn passes_then_traps(ok: &[Insn], p: &[Insn], ran: (u64, u64), trapped: (usize, u32, u64)) {
    for engine in ENGINES {
        let out = run_with(ok, engine, &mut [], None).expect("runs");
        assert_eq!((out.r0, out.insn_count), ran, "{engine:?}");
        let (kind, pc, _, size, count) = trap(p, engine, &mut [], None);
        assert_eq!(
            (kind, (pc, size, count)),
            (TrapKind::OutOfBounds, trapped),
            "{engine:?}"
        );
    }
}

/// `r0 = 5; access; r0 += 1` `adds` times; `exit`: one chain, the access at pc 1.
fn access_in_a_chain(access: Insn, adds: usize) -> Vec<Insn> {
    let mut p = vec![mov64_imm(0, 5), access];
    p.extend(std::iter::repeat_n(alu64_imm(ALU_ADD, 0, 1), adds));
    p.push(exit());
    p
}

/// Stores of each size through a pointer into the stack (not r10, so its inline check is against
/// the data and fails), then loads of each size back: all pass in the second region. `apart`:
/// the pointer moves between accesses, so that no two share a group check.
fn stack_through_a_pointer(apart: bool) -> Vec<Insn> {
    let mut p = vec![mov64_reg(2, 10), alu64_imm(ALU_ADD, 2, -64)];
    let step = |p: &mut Vec<Insn>| {
        if apart {
            p.push(alu64_imm(ALU_ADD, 2, 0));
        }
    };
    for (k, (size, _)) in SIZES.iter().enumerate() {
        p.push(st(*size, 2, 8 * k as i16, 0x1122_3344));
        step(&mut p);
    }
    p.push(mov64_imm(0, 0));
    for (k, (size, _)) in SIZES.iter().enumerate() {
        p.push(ldx(*size, 3, 2, 8 * k as i16));
        p.push(alu64_reg(ALU_ADD, 0, 3));
        step(&mut p);
    }
    p.push(exit());
    p
}

#[test]
fn accesses_of_every_size_through_a_stack_pointer_pass_the_second_region_check() {
    // The stores write the low 1, 2, 4 and 8 bytes of 0x11223344 (sign-extended to 64 bits for
    // the doubleword), and the loads read them back zero-extended.
    let want = 0x44 + 0x3344 + 0x1122_3344 + 0x1122_3344;
    for apart in [false, true] {
        let p = stack_through_a_pointer(apart);
        for engine in ENGINES {
            let out = run_with(&p, engine, &mut [0u8; 16], None).expect("runs");
            assert_eq!(out.r0, want, "{engine:?} apart {apart}");
            assert_eq!(out.insn_count, p.len() as u64, "{engine:?} apart {apart}");
        }
    }
}

#[test]
fn a_failing_check_of_every_size_and_direction_counts_what_ran_before_it() {
    // r0 = 5; access one byte past the end of a 16-byte buffer; four more instructions: one chain
    // of seven, of which the access (pc 1) has five charged ahead of it. It traps with one
    // instruction counted, and nothing after it runs.
    for (size, bytes) in SIZES {
        for write in [false, true] {
            let off = 16 - bytes as i16 + 1;
            let access = if write {
                stx(size, 1, 0, off)
            } else {
                ldx(size, 0, 1, off)
            };
            let p = access_in_a_chain(access, 4);
            for engine in ENGINES {
                let mut data = [0u8; 16];
                let addr = data.as_ptr() as u64 + off as u64;
                assert_eq!(
                    trap(&p, engine, &mut data, None),
                    (TrapKind::OutOfBounds, 1, addr, bytes, 1),
                    "{engine:?} size {bytes} write {write}"
                );
                assert_eq!(data, [0; 16], "{engine:?} size {bytes} write {write}");
            }
        }
    }
}

#[test]
fn a_check_failing_in_both_fast_regions_traps_with_the_address() {
    // [data] = r10 (so the address is known), then 8-byte accesses just above the stack's top:
    // through r2 = r10 (tried against the data first) and through r10 itself (tried against the
    // stack first, not frame-local). Each traps at its pc with the instructions before it counted.
    for through_r10 in [false, true] {
        for write in [false, true] {
            let access = match (through_r10, write) {
                (false, false) => ldx(SIZE_DW, 0, 2, 8),
                (false, true) => stx(SIZE_DW, 2, 0, 8),
                (true, false) => ldx(SIZE_DW, 0, 10, 8),
                (true, true) => stx(SIZE_DW, 10, 0, 8),
            };
            let p = [
                stx(SIZE_DW, 1, 10, 0),
                mov64_reg(2, 10),
                mov64_imm(0, 0),
                access,
                alu64_imm(ALU_ADD, 0, 1),
                exit(),
            ];
            for engine in ENGINES {
                let mut data = [0u8; 8];
                let t = trap(&p, engine, &mut data, None);
                let r10 = u64::from_le_bytes(data);
                assert_eq!(
                    t,
                    (TrapKind::OutOfBounds, 3, r10 + 8, 8, 3),
                    "{engine:?} through r10 {through_r10} write {write}"
                );
            }
        }
    }
}

#[test]
fn a_group_on_a_stack_pointer_runs_its_copy_and_traps_at_the_member_outside() {
    // r2 = r10 - 16; a group of three accesses through r2: a store and a load inside the frame
    // (both pass in the second region), then a load at r10 + 0, just above it. r0 = [r2 + 8]
    // = 7 before the trap, which comes at pc 4 with four counted and two charged ahead.
    let p = [
        mov64_reg(2, 10),
        alu64_imm(ALU_ADD, 2, -16),
        st(SIZE_DW, 2, 8, 7),
        ldx(SIZE_DW, 0, 2, 8),
        ldx(SIZE_W, 3, 2, 16),
        alu64_reg(ALU_ADD, 0, 3),
        exit(),
    ];
    // Without the last load, the group passes and r0 = 7.
    let ok = [&p[..4], &p[5..]].concat();
    passes_then_traps(&ok, &p, (7, 6), (4, 4, 4));
}

#[test]
fn a_failing_check_in_a_chain_the_budget_ends_in_counts_what_ran_before_it() {
    // The budget ends inside the chain (Rust finishes the run, `jit::finish`): with a budget of 3
    // the access (pc 1) runs and traps before the budget does.
    let p = access_in_a_chain(ldx(SIZE_W, 0, 1, 14), 3);
    for engine in ENGINES {
        let mut data = [0u8; 16];
        let addr = data.as_ptr() as u64 + 14;
        assert_eq!(
            trap(&p, engine, &mut data, Some(3)),
            (TrapKind::OutOfBounds, 1, addr, 4, 1),
            "{engine:?}"
        );
    }
}

#[test]
fn a_group_of_loads_on_a_stack_pointer_checks_each_and_traps_at_the_member_outside() {
    // [r10 - 16] = 7, [r10 - 8] = 5 (frame-local); r2 = r10 - 16; then a group of loads through r2
    // with arithmetic between them (nothing a trap would show): [r2 + 0] = 7, [r2 + 8] = 5, and
    // [r2 + 16] (r10 + 0, just above the frame): a trap at pc 8 with eight counted. As a store,
    // the last member traps the same way.
    let head = [
        st(SIZE_DW, 10, -16, 7),
        st(SIZE_DW, 10, -8, 5),
        mov64_reg(2, 10),
        alu64_imm(ALU_ADD, 2, -16),
        ldx(SIZE_DW, 0, 2, 0),
        alu64_imm(ALU_ADD, 0, 1),
        ldx(SIZE_W, 3, 2, 8),
        alu64_reg(ALU_ADD, 0, 3),
    ];
    let tail = [alu64_imm(ALU_ADD, 0, 1), exit()];
    let ok = [&head[..], &tail[..]].concat();
    for last in [ldx(SIZE_B, 3, 2, 16), st(SIZE_B, 2, 16, 1)] {
        let p = [&head[..], &[last], &tail[..]].concat();
        // Without the last member: 7 + 1 + 5 + 1.
        passes_then_traps(&ok, &p, (14, 10), (8, 1, 8));
    }
}

#[test]
fn a_group_of_loads_whose_span_check_fails_checks_each_member_in_the_data() {
    // Loads at 0, 8 and 12 (8 bytes each) through r1: a span of 20, checked as one against the
    // data with a 32-byte bound, which a 24-byte buffer fails though every load fits; each
    // member then passes its own check. On a 16-byte buffer the third traps (pc 4, four
    // counted), and with the loads in the other order the first does (pc 0, none counted).
    let p = [
        ldx(SIZE_DW, 0, 1, 0),
        alu64_imm(ALU_ADD, 0, 1),
        ldx(SIZE_DW, 3, 1, 8),
        alu64_reg(ALU_ADD, 0, 3),
        ldx(SIZE_DW, 3, 1, 12),
        alu64_reg(ALU_ADD, 0, 3),
        exit(),
    ];
    let mut reversed = p;
    reversed.swap(0, 4);
    reversed[0].dst = 0;
    reversed[4].dst = 3;
    for engine in ENGINES {
        let mut data = [0u8; 24];
        data[0] = 1;
        data[8] = 2;
        data[12] = 4;
        // 1 + 1 + (2 + 4 << 32) + (4 + 0): the loads are little-endian.
        let out = run_with(&p, engine, &mut data, None).expect("runs");
        assert_eq!((out.r0, out.insn_count), (8 + (4 << 32), 7), "{engine:?}");
        for (prog, pc) in [(&p, 4), (&reversed, 0)] {
            let mut data = [0u8; 16];
            let addr = data.as_ptr() as u64 + 12;
            assert_eq!(
                trap(prog, engine, &mut data, None),
                (TrapKind::OutOfBounds, pc, addr, 8, pc as u64),
                "{engine:?}"
            );
        }
    }
}
