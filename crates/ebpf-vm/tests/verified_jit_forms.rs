//! The machine-code forms the JIT emits only for proved accesses (mode verified), against values
//! computed by hand: `t = b; t += x` followed by loads and stores through `t`, after which `t` is
//! dead (the last loads into `t`, or liveness says so), addresses `[b + x + off]` with no `lea`
//! (`jit/compile/alu.rs`, `fold`); and blinded constants in each immediate form. Each program
//! runs on both engines in both modes; the interpreter in mode checked is the reference, and the
//! expected r0 and memory below are worked out from the instructions and the input.

mod common;

use common::*;
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::Insn;
use ebpf_vm::{Engine, Mode, Program, RunInput};

const DATA: usize = 32;

fn ldxs(size: u8, dst: u8, src: u8, off: i16) -> Insn {
    Insn::new(CLASS_LDX | MODE_MEMSX | size, dst, src, off, 0)
}

/// data[k] = 0x10 + k, with data[8] = 0xf0 (a byte with its sign bit set).
fn input() -> Vec<u8> {
    let mut d: Vec<u8> = (0..DATA as u8).map(|k| 0x10 + k).collect();
    d[8] = 0xf0;
    d
}

fn load(code: &[Insn], engine: Engine, mode: Mode) -> Program {
    load_sized(code, engine, mode, DATA)
}

/// Runs `code` on both engines in both modes and checks r0 and the memory against `r0` and
/// `memory` (computed by hand).
fn check(name: &str, code: &[Insn], r0: u64, memory: &[u8]) {
    check_on(name, code, &input(), r0, memory);
}

/// As `check`, on the data `given` (its length the `dataSize`).
fn check_on(name: &str, code: &[Insn], given: &[u8], r0: u64, memory: &[u8]) {
    for engine in [Engine::Interpreter, Engine::Jit] {
        for mode in [Mode::Checked, Mode::Verified] {
            let p = load_sized(code, engine, mode, given.len());
            if mode == Mode::Verified {
                let proved = &p.verifier_report().expect("verified").proved;
                let accesses = code.iter().enumerate().filter(|(_, i)| {
                    matches!(i.opcode & 7, 1..=3) && matches!(i.opcode & 0xe0, 0x60 | 0x80)
                });
                for (slot, _) in accesses {
                    assert!(proved[slot], "{name}: access at {slot} not proved");
                }
            }
            let mut data = given.to_vec();
            let out = run_ok(&p, &mut data, &format!("{name} {engine:?} {mode:?}"));
            assert_eq!(out.r0, r0, "{name}: r0, {engine:?} {mode:?}");
            assert_eq!(data, memory, "{name}: memory, {engine:?} {mode:?}");
        }
    }
}

#[test]
fn loads_through_a_sum_overwritten_by_the_last() {
    // t = r1 + 3; r4 = data[4]; t = data[3]; r0 = t << 8 | r4 = 0x13 << 8 | 0x14.
    let code = [
        mov64_imm(2, 3),
        mov64_reg(3, 1),
        alu64_reg(ALU_ADD, 3, 2),
        ldx(SIZE_B, 4, 3, 1),
        ldx(SIZE_B, 3, 3, 0),
        mov64_reg(0, 3),
        alu64_imm(ALU_LSH, 0, 8),
        alu64_reg(ALU_OR, 0, 4),
        exit(),
    ];
    check("reg", &code, 0x1314, &input());
}

#[test]
fn stores_through_an_immediate_sum() {
    // t = r1 + 5; data[5] = 0xaa; data[6..8] = 0x1234 (little-endian: 0x34, 0x12);
    // t = u32 at data[4..8] = [0x14, 0xaa, 0x34, 0x12] = 0x1234aa14.
    let code = [
        mov64_imm(2, 0x1234),
        mov64_reg(3, 1),
        alu64_imm(ALU_ADD, 3, 5),
        st(SIZE_B, 3, 0, 0xaa),
        stx(SIZE_H, 3, 2, 1),
        ldx(SIZE_W, 3, 3, -1),
        mov64_reg(0, 3),
        exit(),
    ];
    let mut memory = input();
    memory[5] = 0xaa;
    memory[6] = 0x34;
    memory[7] = 0x12;
    check("imm", &code, 0x1234_aa14, &memory);
}

#[test]
fn a_load_into_the_index_ends_nothing_early() {
    // t = r1 + r2 (r2 = 2); r2 = data[2] = 0x12 (the index changes); t = data[3] = 0x13 (the
    // sum before the change, +1); r0 = t << 8 | r2 = 0x1312.
    let code = [
        mov64_imm(2, 2),
        mov64_reg(3, 1),
        alu64_reg(ALU_ADD, 3, 2),
        ldx(SIZE_B, 2, 3, 0),
        ldx(SIZE_B, 3, 3, 1),
        mov64_reg(0, 3),
        alu64_imm(ALU_LSH, 0, 8),
        alu64_reg(ALU_OR, 0, 2),
        exit(),
    ];
    check("index written", &code, 0x1312, &input());
}

#[test]
fn a_scalar_base_and_a_sign_extending_load() {
    // t = 8 + r1; r4 = (s8)data[8] = (s8)0xf0 = -16; t = data[8] = 0xf0; r0 = -16 + 240 = 224.
    let code = [
        mov64_imm(2, 8),
        mov64_reg(3, 2),
        alu64_reg(ALU_ADD, 3, 1),
        ldxs(SIZE_B, 4, 3, 0),
        ldx(SIZE_B, 3, 3, 0),
        mov64_reg(0, 4),
        alu64_reg(ALU_ADD, 0, 3),
        exit(),
    ];
    check("scalar base, memsx", &code, 224, &input());
}

#[test]
fn a_sum_still_read_after_the_loads_is_kept() {
    // t = r1 + 2; r4 = data[2] = 0x12; r0 = t - r1 + r4 = 2 + 0x12 = 0x14.
    let code = [
        mov64_reg(3, 1),
        alu64_imm(ALU_ADD, 3, 2),
        ldx(SIZE_B, 4, 3, 0),
        mov64_reg(0, 3),
        alu64_reg(ALU_SUB, 0, 1),
        alu64_reg(ALU_ADD, 0, 4),
        exit(),
    ];
    check("live sum", &code, 0x14, &input());
}

#[test]
fn a_counted_loop_summing_bytes() {
    // r0 = sum of data[0..16] = 16 * 0x10 + (0 + 1 + ... + 15) = 256 + 120 = 376, with data[8]
    // = 0xf0 in place of 0x18: 376 - 0x18 + 0xf0 = 592.
    let code = [
        mov64_imm(0, 0),
        mov64_imm(2, 0),
        // loop:
        mov64_reg(3, 1),
        alu64_reg(ALU_ADD, 3, 2),
        ldx(SIZE_B, 3, 3, 0),
        alu64_reg(ALU_ADD, 0, 3),
        alu64_imm(ALU_ADD, 2, 1),
        Insn::new(CLASS_JMP | JMP_JLT | SRC_K, 2, 0, -6, 16),
        exit(),
    ];
    check("loop", &code, 592, &input());
}

#[test]
fn stores_through_a_sum_dead_after_them_in_a_loop() {
    // for r2 in 0..8: data[16 + r2] = 0x55, then data[24 + r2] = r2 (t is dead at the loop's
    // head, where it is written again, and after the loop); r0 = 0.
    let code = [
        mov64_imm(2, 0),
        // loop:
        mov64_reg(3, 1),
        alu64_reg(ALU_ADD, 3, 2),
        st(SIZE_B, 3, 16, 0x55),
        stx(SIZE_B, 3, 2, 24),
        alu64_imm(ALU_ADD, 2, 1),
        Insn::new(CLASS_JMP | JMP_JLT | SRC_K, 2, 0, -6, 8),
        mov64_imm(0, 0),
        exit(),
    ];
    let mut memory = input();
    for k in 0..8 {
        memory[16 + k] = 0x55;
        memory[24 + k] = k as u8;
    }
    check("dead after stores", &code, 0, &memory);
}

#[test]
fn a_sum_read_at_a_jump_target_is_kept() {
    // t = r1 + 2; r4 = data[2] = 0x12; the jump to the end is taken, where r0 = t - r1 = 2.
    let code = [
        mov64_reg(3, 1),
        alu64_imm(ALU_ADD, 3, 2),
        ldx(SIZE_B, 4, 3, 0),
        Insn::new(CLASS_JMP | JMP_JEQ | SRC_K, 4, 0, 2, 0x12),
        mov64_imm(0, 7),
        exit(),
        mov64_reg(0, 3),
        alu64_reg(ALU_SUB, 0, 1),
        exit(),
    ];
    check("live at a target", &code, 2, &input());
}

#[test]
fn blinded_constants_in_every_form() {
    // Constants worth blinding (more than one chosen byte) in each immediate form, 64-bit and
    // 32-bit, worked out by hand:
    // r0 = 0x12345678; r0 += 0x1000 -> 0x12346678; r0 -= 0x0f00 -> 0x12345778;
    // r0 |= 0x10000 -> 0x12355778; r0 &= 0x00ff_f0f0 -> 0x00355070; r0 ^= 0x1234 -> 0x00354244;
    // r0 *= 0x101 -> 0x00354244 * 0x101 = 0x35778644 (0x354244 * 0x100 = 0x35424400, plus
    // 0x354244); w0 += 0x7fff_0000 -> 0xb5768644 (32-bit: no carry out); r0 = -0x1234 (64-bit mov,
    // sign-extended) checked by a compare; store of 0x4321 (u16) at data[0..2] -> 0x21, 0x43;
    // lddw 0x1122_3344_5566_7788.
    let lddw = |dst: u8, v: u64| {
        [
            Insn::new(OP_LDDW, dst, 0, 0, v as u32 as i32),
            Insn::new(0, 0, 0, 0, (v >> 32) as u32 as i32),
        ]
    };
    let mut code = vec![
        mov64_imm(0, 0x1234_5678),
        alu64_imm(ALU_ADD, 0, 0x1000),
        alu64_imm(ALU_SUB, 0, 0x0f00),
        alu64_imm(ALU_OR, 0, 0x1_0000),
        alu64_imm(ALU_AND, 0, 0x00ff_f0f0),
        alu64_imm(ALU_XOR, 0, 0x1234),
        alu64_imm(ALU_MUL, 0, 0x101),
        Insn::new(CLASS_ALU | ALU_ADD | SRC_K, 0, 0, 0, 0x7fff_0000),
        // r5 = -0x1234; if r5 != -0x1234 goto fail (64-bit compare of the sign-extended value)
        mov64_imm(5, -0x1234),
        Insn::new(CLASS_JMP | JMP_JNE | SRC_K, 5, 0, 8, -0x1234),
        // if w0 != 0xb5768644 goto fail (32-bit compare)
        Insn::new(
            CLASS_JMP32 | JMP_JNE | SRC_K,
            0,
            0,
            7,
            0xb576_8644u32 as i32,
        ),
        // if r0 & 0x2000_0000 (set: 0xb... is 1011 in its top bits) skip the jump to fail
        Insn::new(CLASS_JMP | JMP_JSET | SRC_K, 0, 0, 1, 0x2000_0000),
        Insn::new(CLASS_JMP | JMP_JA, 0, 0, 5, 0),
        st(SIZE_H, 1, 0, 0x4321),
    ];
    code.extend(lddw(6, 0x1122_3344_5566_7788));
    code.extend([
        // r0 ^= r6 -> 0xb5768644 ^ 0x1122334455667788 = 0x11223344e010f1cc
        alu64_reg(ALU_XOR, 0, 6),
        exit(),
        // fail:
        mov64_imm(0, 0),
        exit(),
    ]);
    let mut memory = input();
    memory[0] = 0x21;
    memory[1] = 0x43;
    check("blinded", &code, 0x1122_3344_e010_f1cc, &memory);
}

#[test]
fn a_continue_to_a_copied_latch() {
    // for r2 in 0..6: if r2 & 1 { r0 += 1 } else { r0 += 10; continue } -- both ways reach the
    // latch `r2 += 1; if r2 < 6 goto head`, the even one by a `ja` that the JIT (unmetered, mode
    // verified) replaces by a copy of the latch. r0 = 3 * 10 + 3 * 1 = 33; then r0 += r2 = 39.
    let code = [
        mov64_imm(0, 0),
        mov64_imm(2, 0),
        // head:
        Insn::new(CLASS_JMP | JMP_JSET | SRC_K, 2, 0, 2, 1),
        alu64_imm(ALU_ADD, 0, 10),
        Insn::new(CLASS_JMP | JMP_JA, 0, 0, 1, 0),
        alu64_imm(ALU_ADD, 0, 1),
        // latch:
        alu64_imm(ALU_ADD, 2, 1),
        Insn::new(CLASS_JMP | JMP_JLT | SRC_K, 2, 0, -6, 6),
        alu64_reg(ALU_ADD, 0, 2),
        exit(),
    ];
    check("latch", &code, 39, &input());
}

// ---- Rotates and multiplications by 3, 5 and 9 (`jit/compile/alu.rs`, `idiom`) ----

/// X, the value rotated below, and the expected rotations worked out by hand: rol(X, 32) swaps
/// the halves; rol(X, 1) and rol(X, 63) shift by one bit with the bit that falls off carried
/// in; rol(X, 13) = (X << 13) | (X >> 51), X >> 51 = the top 13 bits 0x0123 >> 3 = 0x24.
const X: u64 = 0x0123_4567_89ab_cdef;
const ROL_X: [(u8, u64); 5] = [
    (1, 0x0246_8acf_1357_9bde),
    (13, 0x68ac_f135_79bd_e024),
    (31, 0xc4d5_e6f7_8091_a2b3),
    (32, 0x89ab_cdef_0123_4567),
    (63, 0x8091_a2b3_c4d5_e6f7),
];
/// Y, whose low half 0x87654321 the 32-bit forms rotate (the high half must not show).
const Y: u64 = 0xdead_beef_8765_4321;

/// `prefix`, then `body`, then `r0 = result; exit`.
fn program(prefix: &[Insn], body: &[Insn], result: u8) -> Vec<Insn> {
    let mut code = prefix.to_vec();
    code.extend_from_slice(body);
    code.extend([mov64_reg(0, result), exit()]);
    code
}

/// Checks `code` as `check` does, and that the JIT's code (both modes) has a `rol` (or, on a
/// CPU with BMI2, `rorx`) exactly when `fused`.
fn check_rotate(name: &str, code: &[Insn], r0: u64, fused: bool) {
    check(name, code, r0, &input());
    for mode in [Mode::Checked, Mode::Verified] {
        let text = load(code, Engine::Jit, mode).jited_disassembly();
        let rotates = text.contains("rol ") || text.contains("rorx ");
        assert_eq!(rotates, fused, "{name} {mode:?}:\n{text}");
    }
}

#[test]
fn rotates_with_the_temporary_dead() {
    // t = x; t >>= 64 - k; d = x; d <<= k; d |= t (clang's order), and the pairs swapped.
    for (k, rol) in ROL_X {
        let k = k as i32;
        let body = [
            mov64_reg(4, 5),
            alu64_imm(ALU_RSH, 4, 64 - k),
            mov64_reg(6, 5),
            alu64_imm(ALU_LSH, 6, k),
            alu64_reg(ALU_OR, 6, 4),
        ];
        check_rotate("rol", &program(&lddw(5, X), &body, 6), rol, true);
        let swapped = [body[2], body[3], body[0], body[1], alu64_reg(ALU_OR, 4, 6)];
        check_rotate("swapped", &program(&lddw(5, X), &swapped, 4), rol, true);
    }
}

#[test]
fn rotates_in_place_with_the_temporary_read_after() {
    // t = x; t <<= 13; x >>= 51; x |= t; then r0 = x ^ t = rol(X, 13) ^ (X << 13) = X >> 51 =
    // 0x24 (the temporary keeps X << 13).
    let mut body = vec![
        mov64_reg(4, 5),
        alu64_imm(ALU_LSH, 4, 13),
        alu64_imm(ALU_RSH, 5, 51),
        alu64_reg(ALU_OR, 5, 4),
    ];
    body.push(alu64_reg(ALU_XOR, 5, 4));
    check_rotate("in place", &program(&lddw(5, X), &body, 5), 0x24, true);
    // d = x; d <<= 13; x >>= 51; d ^= x (xor: the same on disjoint bits); r0 = d + x, x now
    // X >> 51 = 0x24: 0x68acf13579bde024 + 0x24 = 0x68acf13579bde048.
    let body = [
        mov64_reg(6, 5),
        alu64_imm(ALU_LSH, 6, 13),
        alu64_imm(ALU_RSH, 5, 51),
        alu64_reg(ALU_XOR, 6, 5),
        alu64_reg(ALU_ADD, 6, 5),
    ];
    check_rotate(
        "x is t",
        &program(&lddw(5, X), &body, 6),
        0x68ac_f135_79bd_e048,
        true,
    );
}

#[test]
fn rotates_32_bit() {
    // Of Y's low half 0x87654321: rol 1 = 0x0eca8643, rol 13 = 0xa86430ec, rol 16 = 0x43218765
    // (halves swapped), rol 31 = ror 1 = 0xc3b2a190; the result zero-extended.
    for (k, rol) in [
        (1, 0x0eca_8643),
        (13, 0xa864_30ec),
        (16, 0x4321_8765),
        (31, 0xc3b2_a190),
    ] {
        let body = [
            alu32_reg(ALU_MOV, 4, 5),
            alu32_imm(ALU_RSH, 4, 32 - k),
            alu32_reg(ALU_MOV, 6, 5),
            alu32_imm(ALU_LSH, 6, k),
            alu32_reg(ALU_OR, 6, 4),
        ];
        check_rotate("rol32", &program(&lddw(5, Y), &body, 6), rol, true);
    }
    // In place, the temporary read after: t = 0x87654321 >> 19 = 0x10ec; r0 = rol 13 ^ t =
    // 0xa86430ec ^ 0x10ec = 0xa8642000.
    let body = [
        alu32_reg(ALU_MOV, 4, 5),
        alu32_imm(ALU_RSH, 4, 19),
        alu32_imm(ALU_LSH, 5, 13),
        alu32_reg(ALU_OR, 5, 4),
        alu64_reg(ALU_XOR, 5, 4),
    ];
    check_rotate(
        "rol32 t",
        &program(&lddw(5, Y), &body, 5),
        0xa864_2000,
        true,
    );
    // A 64-bit shift among 32-bit ones is no rotate: w4 = w5 >> 19 (0x10ec); r6 = (u32)Y << 13
    // (64-bit: 0x87654321 << 13 = 0x10eca8642000); w6 |= w4 -> low half 0xa8642000 | 0x10ec.
    let body = [
        alu32_reg(ALU_MOV, 4, 5),
        alu32_imm(ALU_RSH, 4, 19),
        alu32_reg(ALU_MOV, 6, 5),
        alu64_imm(ALU_LSH, 6, 13),
        alu32_reg(ALU_OR, 6, 4),
    ];
    check_rotate("mixed", &program(&lddw(5, Y), &body, 6), 0xa864_30ec, false);
}

#[test]
fn a_rotate_split_by_a_jump_target_is_not_fused() {
    // r4 = 0x100; r6 = 1; r2 = data[0] = 0x10; if r2 == c goto L; r4 = r5; r4 >>= 51; r6 = r5;
    // L: r6 <<= 13; r6 |= r4. Taken (c = 0x10): r6 = 1 << 13 | 0x100 = 0x2100. Not taken
    // (c = 0x11): rol(X, 13).
    for (c, r0) in [(0x10, 0x2100), (0x11, 0x68ac_f135_79bd_e024)] {
        let mut prefix = lddw(5, X).to_vec();
        prefix.extend([
            mov64_imm(4, 0x100),
            mov64_imm(6, 1),
            ldx(SIZE_B, 2, 1, 0),
            Insn::new(CLASS_JMP | JMP_JEQ | SRC_K, 2, 0, 3, c),
        ]);
        let body = [
            mov64_reg(4, 5),
            alu64_imm(ALU_RSH, 4, 51),
            mov64_reg(6, 5),
            alu64_imm(ALU_LSH, 6, 13),
            alu64_reg(ALU_OR, 6, 4),
        ];
        check_rotate("split", &program(&prefix, &body, 6), r0, false);
    }
}

#[test]
fn rotates_in_a_counted_loop() {
    // Five times x = rol(x, 13): rol(X, 65) = rol(X, 1).
    let mut code = lddw(5, X).to_vec();
    code.extend([
        mov64_imm(2, 0),
        mov64_reg(4, 5),
        alu64_imm(ALU_LSH, 4, 13),
        alu64_imm(ALU_RSH, 5, 51),
        alu64_reg(ALU_OR, 5, 4),
        alu64_imm(ALU_ADD, 2, 1),
        Insn::new(CLASS_JMP | JMP_JLT | SRC_K, 2, 0, -6, 5),
        mov64_reg(0, 5),
        exit(),
    ]);
    check_rotate("loop", &code, ROL_X[0].1, true);
}

#[test]
fn multiplies_by_3_5_and_9() {
    // r6 = r5 * 5 (the pair) = 0x05b05b05b05b05ab; w6 = w5 * 9 = 0x87654321 * 9 mod 2^32 =
    // 0xc28f5c29; r5 *= 3 alone = 0x0369d0369d0369cd. r0 = their xor.
    let mut code = lddw(5, X).to_vec();
    code.extend(lddw(7, Y));
    code.extend([
        mov64_reg(6, 5),
        alu64_imm(ALU_MUL, 6, 5),
        alu32_reg(ALU_MOV, 8, 7),
        alu32_imm(ALU_MUL, 8, 9),
        alu64_imm(ALU_MUL, 5, 3),
        alu64_reg(ALU_XOR, 6, 8),
        alu64_reg(ALU_XOR, 6, 5),
        mov64_reg(0, 6),
        exit(),
    ]);
    let r0 = 0x05b0_5b05_b05b_05ab ^ 0xc28f_5c29 ^ 0x0369_d036_9d03_69cd;
    check("mul", &code, r0, &input());
}

// ---- Masked selects `t = -t; t &= y; t ^= a` (`jit/compile/select.rs`) ----

/// Y >> 7, the `y` of the selects below.
const Y7: u64 = 0x01bd_5b7d_df0e_ca86;

/// r5 = X (a), r6 = Y, r2 = data[k] (0x10 + k: odd for k = 1, even for k = 0), then `body`,
/// then data[8..16] = r2, data[16..24] = r4, data[24..32] = r5 (t, y and a as the body left
/// them), r0 = r3; exit.
fn select_program(k: i16, body: &[Insn]) -> Vec<Insn> {
    let mut code = lddw(5, X).to_vec();
    code.extend(lddw(6, Y));
    code.push(ldx(SIZE_B, 2, 1, k));
    code.extend_from_slice(body);
    code.extend([
        stx(SIZE_DW, 1, 2, 8),
        stx(SIZE_DW, 1, 4, 16),
        stx(SIZE_DW, 1, 5, 24),
        mov64_reg(0, 3),
        exit(),
    ]);
    code
}

/// Runs `select_program(k, body)` for each `(k, t, y, r3)` of `runs` (worked out by hand: t and
/// y as the body leaves r2 and r4, r3 its r0; a stays X) as `check` does; checks that the JIT's
/// code (both modes) has no `neg` exactly when `fused` (in the main body: copies out of line
/// keep each instruction), and that in mode checked (metered) the JIT counts as many
/// instructions as the interpreter.
fn check_select(name: &str, body: &[Insn], runs: &[(i16, u64, u64, u64)], fused: bool) {
    for &(k, t, y, r3) in runs {
        let code = select_program(k, body);
        let mut memory = input();
        for (at, v) in [(8, t), (16, y), (24, X)] {
            memory[at..at + 8].copy_from_slice(&v.to_le_bytes());
        }
        check(name, &code, r3, &memory);
        for mode in [Mode::Checked, Mode::Verified] {
            let text = load(&code, Engine::Jit, mode).jited_disassembly();
            let main = text.split("; out-of-line").next().unwrap_or_default();
            assert_eq!(!main.contains("neg "), fused, "{name} {mode:?}:\n{text}");
        }
        let count = |engine| {
            load(&code, engine, Mode::Checked)
                .run(&mut RunInput {
                    data: &mut input(),
                    budget: None,
                })
                .unwrap_or_else(|t| panic!("{name} {engine:?}: {t}"))
                .insn_count
        };
        let counts = (count(Engine::Jit), count(Engine::Interpreter));
        assert_eq!(counts.0, counts.1, "{name}: count");
    }
}

/// `t &= 1; r3 = 0x100; if <test> goto +1; r3 = 0x200; r4 = r6; t = -t; r4 >>= 7; t &= r4;
/// t ^= r5` (clang's order in `big`), with `test` a jump on t over `r3 = 0x200`.
fn branched_select(test: Insn, last: Insn) -> Vec<Insn> {
    vec![
        alu64_imm(ALU_AND, 2, 1),
        mov64_imm(3, 0x100),
        test,
        mov64_imm(3, 0x200),
        mov64_reg(4, 6),
        alu64_imm(ALU_NEG, 2, 0),
        alu64_imm(ALU_RSH, 4, 7),
        alu64_reg(ALU_AND, 2, 4),
        last,
    ]
}

fn jump_imm(op: u8, dst: u8, off: i16, imm: i32) -> Insn {
    Insn::new(op | SRC_K, dst, 0, off, imm)
}

/// X ^ Y7, the select's result when t is 1.
const X_Y7: u64 = 0x009e_1e1a_56a5_0769;

#[test]
fn selects_after_a_jump_on_the_same_bit() {
    // Odd (k = 1): t = 1, -t = all ones, t = Y7 ^ X = 0x009e1e1a56a50769; the jump on t == 0
    // falls through, r3 = 0x200. Even (k = 0): t = 0 & Y7 ^ X = X; r3 stays 0x100. Each of
    // the jumps below is taken exactly when t is 0.
    let xor = alu64_reg(ALU_XOR, 2, 5);
    let runs = [(1, X_Y7, Y7, 0x200), (0, X, Y7, 0x100)];
    for test in [
        jump_imm(CLASS_JMP | JMP_JEQ, 2, 1, 0),
        jump_imm(CLASS_JMP32 | JMP_JEQ, 2, 1, 0),
        jump_imm(CLASS_JMP | JMP_JNE, 2, 1, 1),
    ] {
        check_select("jump", &branched_select(test, xor), &runs, true);
    }
    // `if t & 1 goto` is taken when t is 1: r3 = 0x200 when even, 0x100 when odd.
    let jset = branched_select(jump_imm(CLASS_JMP | JMP_JSET, 2, 1, 1), xor);
    check_select(
        "jset",
        &jset,
        &[(1, X_Y7, Y7, 0x100), (0, X, Y7, 0x200)],
        true,
    );
}

#[test]
fn selects_with_or_and_add() {
    // Odd: t = Y7 | X = 0x01bf5f7fdfafcfef (or), Y7 + X = 0x02e0a0e568ba9875 (add). Even: X.
    let test = jump_imm(CLASS_JMP | JMP_JEQ, 2, 1, 0);
    for (op, odd) in [
        (ALU_OR, 0x01bf_5f7f_dfaf_cfef),
        (ALU_ADD, 0x02e0_a0e5_68ba_9875),
    ] {
        let body = branched_select(test, alu64_reg(op, 2, 5));
        check_select("op", &body, &[(1, odd, Y7, 0x200), (0, X, Y7, 0x100)], true);
    }
}

#[test]
fn selects_32_bit_and_from_a_top_bit() {
    // w2 &= 1; ...; w2 = -w2; r4 >>= 7 (64-bit, between); w2 &= w4; w2 ^= w5: odd, the low
    // halves' xor 0x89abcdef ^ 0xdf0eca86 = 0x56a50769; even, X's low half 0x89abcdef; both
    // zero-extended. `if w2 != 0 goto` is taken when odd: r3 = 0x100 when odd, 0x200 when even.
    let body = [
        alu32_imm(ALU_AND, 2, 1),
        mov64_imm(3, 0x100),
        jump_imm(CLASS_JMP32 | JMP_JNE, 2, 1, 0),
        mov64_imm(3, 0x200),
        mov64_reg(4, 6),
        alu32_imm(ALU_NEG, 2, 0),
        alu64_imm(ALU_RSH, 4, 7),
        alu32_reg(ALU_AND, 2, 4),
        alu32_reg(ALU_XOR, 2, 5),
    ];
    let runs = [(1, 0x56a5_0769, Y7, 0x100), (0, 0x89ab_cdef, Y7, 0x200)];
    check_select("w", &body, &runs, true);
    // t = data[k] << 63 >> 63 (the low bit, set by a shift), no instruction between the `neg`
    // and the `and`, `if t == 0` tested: odd X ^ Y7, even X.
    let body = [
        alu64_imm(ALU_LSH, 2, 63),
        alu64_imm(ALU_RSH, 2, 63),
        mov64_imm(3, 0x100),
        jump_imm(CLASS_JMP | JMP_JEQ, 2, 1, 0),
        mov64_imm(3, 0x200),
        mov64_reg(4, 6),
        alu64_imm(ALU_RSH, 4, 7),
        alu64_imm(ALU_NEG, 2, 0),
        alu64_reg(ALU_AND, 2, 4),
        alu64_reg(ALU_XOR, 2, 5),
    ];
    check_select(
        "shift",
        &body,
        &[(1, X_Y7, Y7, 0x200), (0, X, Y7, 0x100)],
        true,
    );
}

#[test]
fn selects_left_as_masks() {
    let xor = alu64_reg(ALU_XOR, 2, 5);
    let test = jump_imm(CLASS_JMP | JMP_JEQ, 2, 1, 0);
    // No jump on t before the select (the branch would be new): r3 = 0x200 both ways.
    let mut body = branched_select(test, xor);
    body[2] = jump_imm(CLASS_JMP | JMP_JEQ, 3, 1, 0x55);
    let runs = [(1, X_Y7, Y7, 0x200), (0, X, Y7, 0x200)];
    check_select("untested", &body, &runs, false);
    // t = data[3] & 3 = 3, not 0 or 1: -3 & Y7 ^ X = 0x009e1e1a56a5076b (Y7's bit 1 kept, bit 0
    // cleared: ...86 & ...fd = ...84, ^ ...ef = ...6b).
    let mut body = branched_select(test, xor);
    body[0] = alu64_imm(ALU_AND, 2, 3);
    check_select(
        "t = 3",
        &body,
        &[(3, 0x009e_1e1a_56a5_076b, Y7, 0x200)],
        false,
    );
    // A path around the jump on t: `if r3 == 0x100 goto` (taken) over it to the `r4 = r6`.
    // Odd: X ^ Y7, r3 = 0x100.
    let mut body = branched_select(test, xor);
    body.insert(2, jump_imm(CLASS_JMP | JMP_JEQ, 3, 2, 0x100));
    check_select("around", &body, &[(1, X_Y7, Y7, 0x100)], false);
    // The instruction between reads t: r4 = -t (all ones when odd), then t &= r4 = -1 & -1,
    // t ^= X = !X = 0xfedcba9876543210; r4 stays all ones.
    let mut body = branched_select(test, xor);
    body[6] = mov64_reg(4, 2);
    let runs = [(1, 0xfedc_ba98_7654_3210, u64::MAX, 0x200)];
    check_select("t read between", &body, &runs, false);
}

#[test]
fn a_select_split_by_a_jump_target_is_not_fused() {
    // `if t == 0 goto` lands on the `t &= r4` (after the `neg` and the shift): when even t = 0
    // & Y ^ X = X with r4 = Y (the shift skipped), r3 = 0x100; when odd X ^ Y7, r3 = 0x200.
    let body = [
        alu64_imm(ALU_AND, 2, 1),
        mov64_imm(3, 0x100),
        mov64_reg(4, 6),
        jump_imm(CLASS_JMP | JMP_JEQ, 2, 4, 0),
        mov64_imm(3, 0x200),
        alu64_imm(ALU_NEG, 2, 0),
        alu64_imm(ALU_RSH, 4, 7),
        alu64_reg(ALU_AND, 2, 4),
        alu64_reg(ALU_XOR, 2, 5),
    ];
    let runs = [(1, X_Y7, Y7, 0x200), (0, X, Y, 0x100)];
    check_select("target", &body, &runs, false);
}

// ---- Proved word-copy loops as `rep movsq` (`jit/compile/copy_loop.rs`) ----

/// COPY bytes of data, data[k] = k * 7 + 1 (mod 256).
const COPY: usize = 640;

fn copy_input() -> Vec<u8> {
    (0..COPY).map(|k| (k * 7 + 1) as u8).collect()
}

/// `r2 = i0; head: r3 = r2; r4 = r1; r4 += r3; r5 = *(u64 *)(r4 + so); *(u64 *)(r4 + do) = r5;
/// r2 += 8; if r3 < k goto head`, then `tail`, then r0 = r2 << 32 | r3 << 16 | the byte at r4
/// (i, c and t as the loop leaves them), plus r0 from `tail`.
fn copy_program(i0: i32, so: i16, dof: i16, k: i32, tail: &[Insn]) -> Vec<Insn> {
    let mut code = vec![
        mov64_imm(2, i0),
        mov64_reg(3, 2),
        mov64_reg(4, 1),
        alu64_reg(ALU_ADD, 4, 3),
        ldx(SIZE_DW, 5, 4, so),
        stx(SIZE_DW, 4, 5, dof),
        alu64_imm(ALU_ADD, 2, 8),
        Insn::new(CLASS_JMP | JMP_JLT | SRC_K, 3, 0, -7, k),
        mov64_imm(0, 0),
    ];
    code.extend_from_slice(tail);
    code.extend([
        ldx(SIZE_B, 6, 4, 0),
        alu64_reg(ALU_OR, 0, 6),
        alu64_imm(ALU_LSH, 3, 16),
        alu64_reg(ALU_OR, 0, 3),
        alu64_imm(ALU_LSH, 2, 32),
        alu64_reg(ALU_OR, 0, 2),
        exit(),
    ]);
    code
}

/// Checks `code` on `copy_input` as `check_on` does, and that the JIT's code in mode verified
/// has a `rep movsq` exactly when `fused` (never in mode checked, whose code is metered).
fn check_copy(name: &str, code: &[Insn], r0: u64, memory: &[u8], fused: bool) {
    check_on(name, code, &copy_input(), r0, memory);
    for (mode, fused) in [(Mode::Checked, false), (Mode::Verified, fused)] {
        let text = load_sized(code, Engine::Jit, mode, COPY).jited_disassembly();
        assert_eq!(
            text.contains("rep movsq"),
            fused,
            "{name} {mode:?}:\n{text}"
        );
    }
}

/// `copy_program(i0, 0, 320, k)` falling in, with `end` (the last c, plus 8) and `byte` (the
/// data's byte at the last c, which t addresses after the loop) worked out by hand: data[i0..end)
/// copied to data[320 + i0..], i = end, c = end - 8.
fn check_copied(name: &str, (i0, k, end, byte): (i32, i32, usize, u64), fused: bool) {
    let mut memory = copy_input();
    memory.copy_within(i0 as usize..end, 320 + i0 as usize);
    let r0 = (end as u64) << 32 | ((end - 8) as u64) << 16 | byte;
    check_copy(name, &copy_program(i0, 0, 320, k, &[]), r0, &memory, fused);
}

#[test]
fn copies_words_with_a_string_copy() {
    // From 0: c = 0, 8, ..., 312 (the first not below 312): 40 words, data[0..320) copied to
    // data[320..640); t = r1 + 312, whose byte is data[312] = 312 * 7 + 1 = 2185 = 0x89 (mod
    // 256). From 4 to below 300: c = 4, 12, ..., 300: 38 words, data[4..308) to
    // data[324..628); the byte at 300 = 2101 mod 256 = 0x35.
    check_copied("aligned", (0, 312, 320, 0x89), true);
    check_copied("from 4", (4, 300, 308, 0x35), true);
}

#[test]
fn copies_words_forward_over_their_own_source() {
    // *(r4 + 8) = *(r4 + 0) for c = 0, 8, ..., 600: each word copies the one just written, so
    // data[8..616) becomes 76 copies of the first word data[0..8); i = 608, c = 600, the byte at
    // 600 is data[0] = 1.
    let mut memory = copy_input();
    for w in 1..77 {
        memory.copy_within(0..8, 8 * w);
    }
    let r0 = 608 << 32 | 600 << 16 | 1;
    check_copy(
        "overlap",
        &copy_program(0, 0, 8, 600, &[]),
        r0,
        &memory,
        true,
    );
}

#[test]
fn copy_loops_left_as_loops() {
    // A short copy (6 words, c = 0..40) runs the loop itself, after the same preamble: data[0..48)
    // to data[320..368); the byte at 40 = 281 mod 256 = 0x19.
    check_copied("short", (0, 40, 48, 0x19), true);
    // The last word loaded (r5) read after the loop: no string copy. r0 = that word, the bytes
    // data[312..320) = 0x89, 0x90, ..., 0xba (k * 7 + 1), then i, c and t's byte as above.
    let mut memory = copy_input();
    memory.copy_within(0..320, 320);
    let word = u64::from_le_bytes(copy_input()[312..320].try_into().unwrap());
    let r0 = word | 320 << 32 | 312 << 16 | 0x89;
    let tail = [mov64_reg(0, 5)];
    check_copy(
        "v read",
        &copy_program(0, 0, 320, 312, &tail),
        r0,
        &memory,
        false,
    );
}

#[test]
fn pooled_constants_read_in_place() {
    // Constants used in a loop are rebuilt once per run into the pool, and its compares and ALU
    // operations read them there (`jit/blind.rs`, `pooled`). Three iterations (i = 0x10000,
    // 0x20000, 0x30000): w3 = 3 * -0x1234567 mod 2^32 = 0xfc962fcb (32-bit, the low half of the
    // slot), r4 = -0x1234567 sign-extended (xored three times) = 0xfffffffffedcba99, and
    // `if w2 > 0x7654321` (32-bit, never taken). r0 = r3 ^ r4 = 0xffffffff024a9552.
    let code = [
        mov64_imm(2, 0),
        mov64_imm(3, 0),
        mov64_imm(4, 0),
        alu32_imm(ALU_ADD, 3, -0x123_4567),
        alu64_imm(ALU_XOR, 4, -0x123_4567),
        alu64_imm(ALU_ADD, 2, 0x10000),
        Insn::new(CLASS_JMP32 | JMP_JGT | SRC_K, 2, 0, 3, 0x765_4321),
        Insn::new(CLASS_JMP | JMP_JLT | SRC_K, 2, 0, -5, 0x30000),
        mov64_reg(0, 3),
        alu64_reg(ALU_XOR, 0, 4),
        exit(),
    ];
    check("pool", &code, 0xffff_ffff_024a_9552, &input());
    for mode in [Mode::Checked, Mode::Verified] {
        let text = load(&code, Engine::Jit, mode).jited_disassembly();
        // r3 is r9 and r2 r8 (`jit/compile.rs`, `REG`).
        for read in ["add r9d,[rsp+", "cmp r8d,[rsp+"] {
            assert!(text.contains(read), "{read} {mode:?}:\n{text}");
        }
    }
}

// ---- Proved byte-sum loops with `psadbw` (`jit/compile/sum_loop.rs`) ----

/// `r0 = 1000; r1 = i0; [jump]; head: r3 = r2; r3 += r1; r3 = *(u8 *)(r3 + off); r0 += r3;
/// r1 += 1; if r1 != k goto head` (or, `rotated`, `if r1 == k goto +1; goto head`), with r2 =
/// the data (r1 as it came, moved), then r0 += r1 << 32 | r3 << 20 (i and t as the loop leaves
/// them). With `jump`, `if r1 == i0 goto head` (always taken) over an `r0 = 0` reaches the loop.
fn sum_program(i0: i32, off: i16, k: i32, rotated: bool, jump: bool) -> Vec<Insn> {
    let mut code = vec![mov64_reg(2, 1), mov64_imm(0, 1000), mov64_imm(1, i0)];
    if jump {
        code.extend([
            Insn::new(CLASS_JMP | JMP_JEQ | SRC_K, 1, 0, 1, i0),
            mov64_imm(0, 0),
        ]);
    }
    code.extend([
        mov64_reg(3, 2),
        alu64_reg(ALU_ADD, 3, 1),
        ldx(SIZE_B, 3, 3, off),
        alu64_reg(ALU_ADD, 0, 3),
        alu64_imm(ALU_ADD, 1, 1),
    ]);
    if rotated {
        code.extend([
            Insn::new(CLASS_JMP | JMP_JEQ | SRC_K, 1, 0, 1, k),
            Insn::new(CLASS_JMP | JMP_JA, 0, 0, -7, 0),
        ]);
    } else {
        code.push(Insn::new(CLASS_JMP | JMP_JNE | SRC_K, 1, 0, -6, k));
    }
    code.extend([
        alu64_imm(ALU_LSH, 1, 32),
        alu64_imm(ALU_LSH, 3, 20),
        alu64_reg(ALU_OR, 1, 3),
        alu64_reg(ALU_ADD, 0, 1),
        exit(),
    ]);
    code
}

/// The expected r0 of `sum_program`: 1000 + the bytes of `copy_input` at off + i0 .. off + k,
/// plus k << 32 | (the last of them) << 20.
fn sum_result(i0: usize, off: usize, k: usize) -> u64 {
    let data = copy_input();
    let bytes = &data[off + i0..off + k];
    let sum: u64 = bytes.iter().map(|&b| b as u64).sum();
    1000 + sum + ((k as u64) << 32 | (*bytes.last().unwrap() as u64) << 20)
}

/// Checks `code` on `copy_input` as `check_on` does (the data unchanged), and that the JIT's
/// code in mode verified has a `psadbw` exactly when `fused` (never in mode checked).
fn check_sum(name: &str, code: &[Insn], r0: u64, fused: bool) {
    check_on(name, code, &copy_input(), r0, &copy_input());
    for (mode, fused) in [(Mode::Checked, false), (Mode::Verified, fused)] {
        let text = load_sized(code, Engine::Jit, mode, COPY).jited_disassembly();
        assert_eq!(text.contains("psadbw"), fused, "{name} {mode:?}:\n{text}");
    }
}

#[test]
fn sums_bytes_sixteen_at_a_time() {
    // 100 bytes from 0 (six vector loads and four bytes), 197 from 3 + 5 = 8 (twelve and five),
    // 600 from 1 + 7 (37 and eight), each loop form, entered by falling in or by a jump.
    for (i0, off, k) in [(0, 0, 100), (3, 5, 200), (1, 7, 601)] {
        let r0 = sum_result(i0 as usize, off as usize, k as usize);
        for rotated in [false, true] {
            for jump in [false, true] {
                let code = sum_program(i0, off, k, rotated, jump);
                check_sum("sum", &code, r0, true);
            }
        }
    }
}

#[test]
fn sums_few_bytes_in_the_loop() {
    // 63 bytes (fewer than the preamble sums) run the loop itself: from 10 to below 73.
    let r0 = sum_result(10, 0, 73);
    for rotated in [false, true] {
        check_sum("short", &sum_program(10, 0, 73, rotated, false), r0, true);
    }
}
