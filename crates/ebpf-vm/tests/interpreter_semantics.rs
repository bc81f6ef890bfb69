//! Edge cases of the reference semantics, one instruction family at a time. Every expected value is
//! worked out by hand from RFC 9669 (and the kernel for helper/packet conventions), not taken from
//! the engine.

mod common;

use common::*;
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::{Engine, TrapKind};

const U64_MAX: u64 = u64::MAX;
const INT64_MIN: u64 = 0x8000_0000_0000_0000;

fn with_lddw(dst: u8, v: u64, rest: &[ebpf_vm::isa::Insn]) -> Vec<ebpf_vm::isa::Insn> {
    let mut p = lddw(dst, v).to_vec();
    p.extend_from_slice(rest);
    p
}

#[test]
fn add_wraps_and_alu32_zero_extends() {
    assert_eq!(
        r0(&with_lddw(0, U64_MAX, &[alu64_imm(ALU_ADD, 0, 1), exit()])),
        0
    );
    assert_eq!(
        r0(&with_lddw(0, U64_MAX, &[alu32_imm(ALU_ADD, 0, 1), exit()])),
        0
    );
    // The upper half is cleared by any 32-bit operation, even adding zero.
    assert_eq!(
        r0(&with_lddw(
            0,
            0x1_0000_0005,
            &[alu32_imm(ALU_ADD, 0, 0), exit()]
        )),
        5
    );
    assert_eq!(r0(&[alu32_imm(ALU_MOV, 0, -1), exit()]), 0xffff_ffff);
    assert_eq!(r0(&[mov64_imm(0, -1), exit()]), U64_MAX);
    assert_eq!(
        r0(&[alu32_imm(ALU_MOV, 0, 0), alu32_imm(ALU_SUB, 0, 1), exit()]),
        0xffff_ffff
    );
    assert_eq!(
        r0(&with_lddw(
            0,
            INT64_MIN,
            &[alu64_imm(ALU_MUL, 0, 2), exit()]
        )),
        0
    );
}

#[test]
fn unsigned_division_and_modulo_by_zero() {
    let div0 = |op| {
        r0(&[
            mov64_imm(0, 7),
            mov64_imm(1, 0),
            alu64_reg(op, 0, 1),
            exit(),
        ])
    };
    assert_eq!(div0(ALU_DIV), 0);
    assert_eq!(div0(ALU_MOD), 7);
    // 32-bit modulo by zero leaves the low half of the dividend, zero-extended.
    let p = with_lddw(
        0,
        0x1_0000_0007,
        &[mov64_imm(1, 0), alu32_reg(ALU_MOD, 0, 1), exit()],
    );
    assert_eq!(r0(&p), 7);
    let p = with_lddw(
        0,
        0x1_0000_0007,
        &[mov64_imm(1, 0), alu32_reg(ALU_DIV, 0, 1), exit()],
    );
    assert_eq!(r0(&p), 0);
    // A negative immediate is sign-extended to 64 bits and then divides unsigned: 10 / 2^64-1 = 0.
    assert_eq!(
        r0(&[mov64_imm(0, 10), alu64_imm(ALU_DIV, 0, -1), exit()]),
        0
    );
    assert_eq!(
        r0(&[mov64_imm(0, 10), alu32_imm(ALU_DIV, 0, -1), exit()]),
        0
    );
    assert_eq!(r0(&[mov64_imm(0, 10), alu64_imm(ALU_MOD, 0, 3), exit()]), 1);
}

fn sdiv64(a: u64, b: i32) -> u64 {
    r0(&with_lddw(
        0,
        a,
        &[i(CLASS_ALU64 | ALU_DIV | SRC_K, 0, 0, 1, b), exit()],
    ))
}
fn smod64(a: u64, b: i32) -> u64 {
    r0(&with_lddw(
        0,
        a,
        &[i(CLASS_ALU64 | ALU_MOD | SRC_K, 0, 0, 1, b), exit()],
    ))
}

#[test]
fn signed_division_and_modulo() {
    // INT_MIN / -1 overflows: the result wraps to INT_MIN, and the remainder is 0.
    assert_eq!(sdiv64(INT64_MIN, -1), INT64_MIN);
    assert_eq!(smod64(INT64_MIN, -1), 0);
    // Truncation toward zero; the remainder takes the sign of the dividend.
    assert_eq!(sdiv64(-7i64 as u64, 2), -3i64 as u64);
    assert_eq!(smod64(-7i64 as u64, 2), -1i64 as u64);
    assert_eq!(smod64(7, -2), 1);
    assert_eq!(sdiv64(7, 0), 0);
    assert_eq!(smod64(7, 0), 7);
    // 32-bit: INT32_MIN / -1 = INT32_MIN, zero-extended.
    let p = [
        alu32_imm(ALU_MOV, 0, i32::MIN),
        i(CLASS_ALU | ALU_DIV | SRC_K, 0, 0, 1, -1),
        exit(),
    ];
    assert_eq!(r0(&p), 0x8000_0000);
    let p = [
        alu32_imm(ALU_MOV, 0, -7),
        i(CLASS_ALU | ALU_MOD | SRC_K, 0, 0, 1, 2),
        exit(),
    ];
    assert_eq!(r0(&p), 0xffff_ffff);
}

#[test]
fn shifts_mask_their_count() {
    assert_eq!(r0(&[mov64_imm(0, 1), alu64_imm(ALU_LSH, 0, 64), exit()]), 1);
    assert_eq!(r0(&[mov64_imm(0, 1), alu64_imm(ALU_LSH, 0, 65), exit()]), 2);
    assert_eq!(r0(&[mov64_imm(0, 1), alu32_imm(ALU_LSH, 0, 32), exit()]), 1);
    assert_eq!(
        r0(&[
            mov64_imm(0, 1),
            mov64_imm(1, 257),
            alu64_reg(ALU_LSH, 0, 1),
            exit()
        ]),
        2
    );
    // 32-bit right shifts see only the low half.
    assert_eq!(
        r0(&with_lddw(
            0,
            0xffff_ffff_8000_0000,
            &[alu32_imm(ALU_RSH, 0, 31), exit()]
        )),
        1
    );
    assert_eq!(
        r0(&[
            alu32_imm(ALU_MOV, 0, i32::MIN),
            alu32_imm(ALU_ARSH, 0, 31),
            exit()
        ]),
        0xffff_ffff
    );
    assert_eq!(
        r0(&with_lddw(
            0,
            INT64_MIN,
            &[alu64_imm(ALU_ARSH, 0, 63), exit()]
        )),
        U64_MAX
    );
    assert_eq!(
        r0(&with_lddw(
            0,
            INT64_MIN,
            &[alu64_imm(ALU_RSH, 0, 63), exit()]
        )),
        1
    );
}

#[test]
fn negation() {
    assert_eq!(
        r0(&[mov64_imm(0, 5), alu64_imm(ALU_NEG, 0, 0), exit()]),
        -5i64 as u64
    );
    assert_eq!(
        r0(&[mov64_imm(0, 5), alu32_imm(ALU_NEG, 0, 0), exit()]),
        0xffff_fffb
    );
    assert_eq!(
        r0(&with_lddw(
            0,
            INT64_MIN,
            &[alu64_imm(ALU_NEG, 0, 0), exit()]
        )),
        INT64_MIN
    );
}

#[test]
fn sign_extending_moves() {
    let movsx64 = |v: u64, bits: i16| {
        r0(&with_lddw(
            1,
            v,
            &[i(CLASS_ALU64 | ALU_MOV | SRC_X, 0, 1, bits, 0), exit()],
        ))
    };
    let movsx32 = |v: u64, bits: i16| {
        r0(&with_lddw(
            1,
            v,
            &[i(CLASS_ALU | ALU_MOV | SRC_X, 0, 1, bits, 0), exit()],
        ))
    };
    assert_eq!(movsx64(0x80, 8), 0xffff_ffff_ffff_ff80);
    assert_eq!(movsx64(0x7f, 8), 0x7f);
    assert_eq!(movsx64(0x1_8000, 16), 0xffff_ffff_ffff_8000);
    assert_eq!(movsx64(0x8000_0000, 32), 0xffff_ffff_8000_0000);
    assert_eq!(movsx32(0x80, 8), 0xffff_ff80);
    assert_eq!(movsx32(0xffff_ffff_0000_8000, 16), 0xffff_8000);
    // Plain 32-bit move zero-extends.
    assert_eq!(movsx32(0xffff_ffff_8000_0000, 0), 0x8000_0000);
}

#[test]
fn byte_order() {
    let v = 0x0102_0304_0506_0708u64;
    let end = |opcode: u8, width: i32| r0(&with_lddw(0, v, &[i(opcode, 0, 0, 0, width), exit()]));
    let be = CLASS_ALU | ALU_END | SRC_X;
    let le = CLASS_ALU | ALU_END | SRC_K;
    let bswap = CLASS_ALU64 | ALU_END;
    assert_eq!(end(be, 16), 0x0807);
    assert_eq!(end(be, 32), 0x0807_0605);
    assert_eq!(end(be, 64), 0x0807_0605_0403_0201);
    assert_eq!(end(le, 16), 0x0708);
    assert_eq!(end(le, 32), 0x0506_0708);
    assert_eq!(end(le, 64), v);
    assert_eq!(end(bswap, 16), 0x0807);
    assert_eq!(end(bswap, 32), 0x0807_0605);
    assert_eq!(end(bswap, 64), 0x0807_0605_0403_0201);
}

#[test]
fn signed_unsigned_and_32_bit_comparisons() {
    // r0 = 1 unless the jump is taken.
    let taken = |jump: ebpf_vm::isa::Insn, r1: u64| {
        r0(&with_lddw(
            1,
            r1,
            &[mov64_imm(0, 0), jump, mov64_imm(0, 1), exit()],
        )) == 0
    };
    assert!(!taken(i(CLASS_JMP | JMP_JSGT | SRC_K, 1, 0, 1, 0), U64_MAX));
    assert!(taken(i(CLASS_JMP | JMP_JGT | SRC_K, 1, 0, 1, 0), U64_MAX));
    assert!(taken(i(CLASS_JMP | JMP_JSLT | SRC_K, 1, 0, 1, 0), U64_MAX));
    // The immediate is sign-extended: -1 compares equal to 2^64-1.
    assert!(taken(i(CLASS_JMP | JMP_JEQ | SRC_K, 1, 0, 1, -1), U64_MAX));
    // 32-bit jumps see only the low halves.
    assert!(taken(
        i(CLASS_JMP32 | JMP_JEQ | SRC_K, 1, 0, 1, 0),
        0x1_0000_0000
    ));
    assert!(!taken(
        i(CLASS_JMP | JMP_JEQ | SRC_K, 1, 0, 1, 0),
        0x1_0000_0000
    ));
    assert!(taken(
        i(CLASS_JMP32 | JMP_JSLT | SRC_K, 1, 0, 1, 0),
        0x8000_0000
    ));
    assert!(taken(i(CLASS_JMP | JMP_JSET | SRC_K, 1, 0, 1, 4), 6));
    assert!(!taken(i(CLASS_JMP | JMP_JSET | SRC_K, 1, 0, 1, 8), 6));
    // ja32 (gotol) takes its offset from the immediate.
    assert!(taken(i(OP_JA32, 0, 0, 0, 1), 0));
}

const STDW: u8 = CLASS_ST | MODE_MEM | SIZE_DW;
const STW: u8 = CLASS_ST | MODE_MEM | SIZE_W;
const STB: u8 = CLASS_ST | MODE_MEM | SIZE_B;
const LDXDW: u8 = CLASS_LDX | MODE_MEM | SIZE_DW;
const LDXB: u8 = CLASS_LDX | MODE_MEM | SIZE_B;
const LDXSB: u8 = CLASS_LDX | MODE_MEMSX | SIZE_B;
const LDXSH: u8 = CLASS_LDX | MODE_MEMSX | SIZE_H;
const ATOMIC_DW: u8 = CLASS_STX | MODE_ATOMIC | SIZE_DW;
const ATOMIC_W: u8 = CLASS_STX | MODE_ATOMIC | SIZE_W;

#[test]
fn loads_and_stores() {
    // A 64-bit store of an immediate sign-extends it.
    assert_eq!(
        r0(&[i(STDW, 10, 0, -8, -1), i(LDXDW, 0, 10, -8, 0), exit()]),
        U64_MAX
    );
    // Little-endian memory: the low byte comes first.
    assert_eq!(
        r0(&[
            i(STW, 10, 0, -8, 0x1234_5678),
            i(LDXB, 0, 10, -8, 0),
            exit()
        ]),
        0x78
    );
    assert_eq!(
        r0(&[i(STB, 10, 0, -1, 0x80), i(LDXSB, 0, 10, -1, 0), exit()]),
        0xffff_ffff_ffff_ff80
    );
    assert_eq!(
        r0(&[i(STW, 10, 0, -4, 0x8001), i(LDXSH, 0, 10, -4, 0), exit()]),
        0xffff_ffff_ffff_8001
    );
    // Stores into the data buffer are visible to the caller.
    let mut data = [1u8, 2, 3, 4];
    let out = run_with(
        &[i(STB, 1, 0, 1, 0xab), mov64_imm(0, 0), exit()],
        Engine::Interpreter,
        &mut data,
        None,
    )
    .unwrap();
    assert_eq!(out.r0, 0);
    assert_eq!(data, [1, 0xab, 3, 4]);
}

#[test]
fn atomics() {
    // fetch add: r1 gets the old value 10, memory becomes 15; r0 = mem + (r1 << 32).
    let p = [
        i(STDW, 10, 0, -8, 10),
        mov64_imm(1, 5),
        i(ATOMIC_DW, 10, 1, -8, ATOMIC_ADD | ATOMIC_FETCH),
        i(LDXDW, 0, 10, -8, 0),
        alu64_imm(ALU_LSH, 1, 32),
        alu64_reg(ALU_ADD, 0, 1),
        exit(),
    ];
    assert_eq!(r0(&p), 15 + (10 << 32));
    // Without fetch, the source register is left alone.
    let p = [
        i(STDW, 10, 0, -8, 0b1100),
        mov64_imm(1, 0b1010),
        i(ATOMIC_DW, 10, 1, -8, ATOMIC_AND),
        i(LDXDW, 0, 10, -8, 0),
        alu64_imm(ALU_LSH, 1, 8),
        alu64_reg(ALU_OR, 0, 1),
        exit(),
    ];
    assert_eq!(r0(&p), 0b1000 | (0b1010 << 8));
    // cmpxchg that succeeds: r0 gets the old value 7, memory becomes 9.
    let cmpxchg = |expected: i32| {
        r0(&[
            i(STDW, 10, 0, -8, 7),
            mov64_imm(0, expected),
            mov64_imm(1, 9),
            i(ATOMIC_DW, 10, 1, -8, ATOMIC_CMPXCHG),
            i(LDXDW, 2, 10, -8, 0),
            alu64_imm(ALU_LSH, 0, 8),
            alu64_reg(ALU_OR, 0, 2),
            exit(),
        ])
    };
    assert_eq!(cmpxchg(7), (7 << 8) | 9);
    assert_eq!(cmpxchg(8), (7 << 8) | 7);
    // xchg: r1 gets 7, memory gets 9.
    let p = [
        i(STDW, 10, 0, -8, 7),
        mov64_imm(1, 9),
        i(ATOMIC_DW, 10, 1, -8, ATOMIC_XCHG),
        i(LDXDW, 0, 10, -8, 0),
        alu64_imm(ALU_LSH, 0, 8),
        alu64_reg(ALU_OR, 0, 1),
        exit(),
    ];
    assert_eq!(r0(&p), (9 << 8) | 7);
    // 32-bit fetch add touches only the low word and zero-extends the fetched value.
    let p = [
        i(STDW, 10, 0, -8, -1),
        mov64_imm(1, 1),
        i(ATOMIC_W, 10, 1, -8, ATOMIC_ADD | ATOMIC_FETCH),
        i(LDXDW, 0, 10, -8, 0),
        alu64_reg(ALU_XOR, 0, 1),
        exit(),
    ];
    assert_eq!(r0(&p), 0xffff_ffff_0000_0000 ^ 0xffff_ffff);
}

#[test]
fn misaligned_atomic_traps() {
    // [r10-15, r10-7) is inside the stack but not 8-byte aligned (r10 is).
    let p = [
        mov64_imm(1, 1),
        i(ATOMIC_DW, 10, 1, -15, ATOMIC_ADD),
        exit(),
    ];
    let t = run_with(&p, Engine::Interpreter, &mut [], None).unwrap_err();
    assert_eq!(
        (t.kind, t.pc, t.size, t.insn_count),
        (TrapKind::Misaligned, 1, 8, 1)
    );
}

#[test]
fn local_calls_get_their_own_frame() {
    let call = |imm| i(OP_CALL, 0, CALL_LOCAL, 0, imm);
    // r6 survives the call even though the callee overwrites it.
    let p = [
        mov64_imm(6, 7),
        call(2),
        alu64_reg(ALU_ADD, 0, 6),
        exit(),
        mov64_imm(6, 100),
        mov64_imm(0, 1),
        exit(),
    ];
    assert_eq!(r0(&p), 8);
    // The callee's [r10-8] is not the caller's.
    let p = [
        i(STDW, 10, 0, -8, 11),
        call(3),
        i(LDXDW, 1, 10, -8, 0),
        alu64_reg(ALU_ADD, 0, 1),
        exit(),
        i(STDW, 10, 0, -8, 22),
        i(LDXDW, 0, 10, -8, 0),
        exit(),
    ];
    assert_eq!(r0(&p), 33);
    // r10 moves down by one 512-byte frame.
    let p = [
        mov64_reg(6, 10),
        call(3),
        alu64_reg(ALU_SUB, 6, 0),
        mov64_reg(0, 6),
        exit(),
        mov64_reg(0, 10),
        exit(),
    ];
    assert_eq!(r0(&p), 512);
}

#[test]
fn recursion_stops_at_eight_frames() {
    // A function calling itself forever: 7 calls succeed (8 frames live), the 8th traps.
    let p = [i(OP_CALL, 0, CALL_LOCAL, 0, -1), exit()];
    let t = run_with(&p, Engine::Interpreter, &mut [], None).unwrap_err();
    assert_eq!((t.kind, t.pc, t.insn_count), (TrapKind::CallDepth, 0, 7));
}

#[test]
fn budget_is_exact() {
    let spin = [i(OP_JA, 0, 0, -1, 0), exit()];
    let t = run_with(&spin, Engine::Interpreter, &mut [], Some(100)).unwrap_err();
    assert_eq!(
        (t.kind, t.pc, t.insn_count),
        (TrapKind::BudgetExhausted, 0, 100)
    );
    assert_eq!(t.kind.code().as_str(), "ETIME");
    let two = [mov64_imm(0, 1), exit()];
    assert_eq!(
        run_with(&two, Engine::Interpreter, &mut [], Some(2))
            .unwrap()
            .insn_count,
        2
    );
    let t = run_with(&two, Engine::Interpreter, &mut [], Some(1)).unwrap_err();
    assert_eq!(
        (t.kind, t.pc, t.insn_count),
        (TrapKind::BudgetExhausted, 1, 1)
    );
}

#[test]
fn out_of_bounds_accesses_trap() {
    // Reading 8 bytes at r10 is past the top of the stack.
    let t = run_with(
        &[i(LDXDW, 0, 10, 0, 0), exit()],
        Engine::Interpreter,
        &mut [],
        None,
    )
    .unwrap_err();
    assert_eq!(
        (t.kind, t.pc, t.size, t.insn_count),
        (TrapKind::OutOfBounds, 0, 8, 0)
    );
    assert_eq!(t.kind.code().as_str(), "EFAULT");
    // A store that straddles the end of the data.
    let mut data = [0u8; 4];
    let base = data.as_ptr() as u64;
    let t = run_with(
        &[i(STW, 1, 0, 2, 0), exit()],
        Engine::Interpreter,
        &mut data,
        None,
    )
    .unwrap_err();
    assert_eq!(
        (t.kind, t.pc, t.addr, t.size),
        (TrapKind::OutOfBounds, 0, base + 2, 4)
    );
    // A null dereference.
    let t = run_with(
        &[mov64_imm(1, 0), i(LDXB, 0, 1, 0, 0), exit()],
        Engine::Interpreter,
        &mut [],
        None,
    )
    .unwrap_err();
    assert_eq!(
        (t.kind, t.pc, t.addr, t.size, t.insn_count),
        (TrapKind::OutOfBounds, 1, 0, 1, 1)
    );
    assert!(
        t.message.contains("outside the program's memory"),
        "{}",
        t.message
    );
}

#[test]
fn helper_calls_preserve_argument_registers() {
    let p = [
        mov64_imm(1, 1),
        mov64_imm(2, 2),
        mov64_imm(3, 3),
        mov64_imm(4, 4),
        mov64_imm(5, 5),
        i(OP_CALL, 0, CALL_HELPER, 0, 7),
        mov64_reg(0, 1),
        alu64_reg(ALU_ADD, 0, 2),
        alu64_reg(ALU_ADD, 0, 3),
        alu64_reg(ALU_ADD, 0, 4),
        alu64_reg(ALU_ADD, 0, 5),
        exit(),
    ];
    assert_eq!(r0(&p), 15);
}

#[test]
fn callx_calls_a_helper_by_number_and_traps_otherwise() {
    let p = [
        mov64_imm(1, -1),
        mov64_imm(2, 5),
        i(OP_CALLX, 2, 0, 0, 0),
        mov64_imm(0, 2),
        exit(),
    ];
    assert_eq!(r0(&p), 2);
    let p = [mov64_imm(2, 9999), i(OP_CALLX, 2, 0, 0, 0), exit()];
    let t = run_with(&p, Engine::Interpreter, &mut [], None).unwrap_err();
    assert_eq!(
        (t.kind, t.pc, t.insn_count),
        (TrapKind::BadCallTarget, 1, 1)
    );
}

#[test]
fn legacy_packet_loads_are_big_endian_and_end_the_program_out_of_range() {
    let ld_abs = |size: u8, imm| i(CLASS_LD | MODE_ABS | size, 0, 0, 0, imm);
    let run = |p: &[ebpf_vm::isa::Insn]| {
        let mut data = [0x12u8, 0x34, 0x56, 0x78];
        run_with(p, Engine::Interpreter, &mut data, None)
            .unwrap()
            .r0
    };
    assert_eq!(run(&[ld_abs(SIZE_H, 1), exit()]), 0x3456);
    assert_eq!(run(&[ld_abs(SIZE_W, 0), exit()]), 0x1234_5678);
    assert_eq!(run(&[ld_abs(SIZE_B, 3), exit()]), 0x78);
    assert_eq!(
        run(&[mov64_imm(0, 99), ld_abs(SIZE_W, 2), mov64_imm(0, 5), exit()]),
        0
    );
    let ld_ind = i(CLASS_LD | MODE_IND | SIZE_H, 0, 7, 0, 1);
    assert_eq!(run(&[mov64_imm(7, 1), ld_ind, exit()]), 0x5678);
}

#[test]
fn the_stack_reaches_only_the_frames_the_call_graph_needs() {
    for engine in [Engine::Interpreter, Engine::Jit] {
        // No calls: one 512-byte frame; [r10 - 520] is below it and traps, as the kernel's
        // verifier refuses it.
        let t = run_with(&[i(LDXDW, 0, 10, -520, 0), exit()], engine, &mut [], None).unwrap_err();
        assert_eq!(
            (t.kind, t.pc, t.size),
            (TrapKind::OutOfBounds, 0, 8),
            "{engine:?}"
        );
        assert_eq!(
            r0(&[i(STDW, 10, 0, -512, 7), i(LDXDW, 0, 10, -512, 0), exit()]),
            7
        );
        // One call: the callee's frame exists, and the caller may reach into it by pointer
        // (r1 = r10 - 520, written by the callee at its own r10 - 8).
        let p = [
            mov64_reg(6, 10),
            alu64_imm(ALU_ADD, 6, -520),
            i(OP_CALL, 0, CALL_LOCAL, 0, 2),
            i(LDXDW, 0, 6, 0, 0),
            exit(),
            i(STDW, 10, 0, -8, 42),
            exit(),
        ];
        let out = run_with(&p, engine, &mut [], None).unwrap();
        assert_eq!(out.r0, 42, "{engine:?}");
    }
}

#[test]
fn a_call_chain_exposes_its_own_depth_of_frames() {
    for engine in [Engine::Interpreter, Engine::Jit] {
        // main -> f: two frames. f's [r10 - 520] would be a third frame, which no call can
        // reach: it traps, as the kernel's verifier refuses an access below the callee's frame.
        let p = [
            i(OP_CALL, 0, CALL_LOCAL, 0, 1),
            exit(),
            i(LDXDW, 0, 10, -520, 0),
            exit(),
        ];
        let t = run_with(&p, engine, &mut [], None).unwrap_err();
        assert_eq!(
            (t.kind, t.pc, t.size),
            (TrapKind::OutOfBounds, 2, 8),
            "{engine:?}"
        );
        // main -> f -> g: g's frame is the third, and f may reach into it by pointer.
        let p = [
            i(OP_CALL, 0, CALL_LOCAL, 0, 1),
            exit(),
            mov64_reg(6, 10),
            alu64_imm(ALU_ADD, 6, -520),
            i(OP_CALL, 0, CALL_LOCAL, 0, 2),
            i(LDXDW, 0, 6, 0, 0),
            exit(),
            i(STDW, 10, 0, -8, 43),
            exit(),
        ];
        assert_eq!(
            run_with(&p, engine, &mut [], None).unwrap().r0,
            43,
            "{engine:?}"
        );
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn jit_programs_run_compiled_code_with_either_stack_layout() {
    // Without calls (one exposed frame) and with a local call (every frame): the run's stack
    // holds what compiled code may touch either way.
    assert_eq!(
        run_with(&[mov64_imm(0, 3), exit()], Engine::Jit, &mut [], None)
            .unwrap()
            .r0,
        3
    );
    let p = [
        i(OP_CALL, 0, CALL_LOCAL, 0, 1),
        exit(),
        mov64_imm(0, 4),
        exit(),
    ];
    assert_eq!(run_with(&p, Engine::Jit, &mut [], None).unwrap().r0, 4);
}
