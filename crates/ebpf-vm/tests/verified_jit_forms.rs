//! The machine-code forms the JIT emits only for proved accesses (mode verified), against values
//! computed by hand: `t = b; t += x` followed by loads and stores through `t`, after which `t` is
//! dead (the last loads into `t`, or liveness says so), addresses `[b + x + off]` with no `lea`
//! (`jit/compile/alu.rs`, `fold`); and blinded constants in each immediate form. Each program
//! runs on both engines in both modes; the interpreter in mode checked is the reference, and the
//! expected r0 and memory below are worked out from the instructions and the input.

use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::{encode_all, Insn};
use ebpf_vm::{Engine, Mode, Program, ProgramOptions, RunInput};

const DATA: usize = 32;

fn mov64(dst: u8, imm: i32) -> Insn {
    Insn::new(CLASS_ALU64 | ALU_MOV | SRC_K, dst, 0, 0, imm)
}
fn mov64_reg(dst: u8, src: u8) -> Insn {
    Insn::new(CLASS_ALU64 | ALU_MOV | SRC_X, dst, src, 0, 0)
}
fn alu64_reg(op: u8, dst: u8, src: u8) -> Insn {
    Insn::new(CLASS_ALU64 | op | SRC_X, dst, src, 0, 0)
}
fn alu64(op: u8, dst: u8, imm: i32) -> Insn {
    Insn::new(CLASS_ALU64 | op | SRC_K, dst, 0, 0, imm)
}
fn ldx(size: u8, dst: u8, src: u8, off: i16) -> Insn {
    Insn::new(CLASS_LDX | MODE_MEM | size, dst, src, off, 0)
}
fn ldxs(size: u8, dst: u8, src: u8, off: i16) -> Insn {
    Insn::new(CLASS_LDX | MODE_MEMSX | size, dst, src, off, 0)
}
fn st(size: u8, dst: u8, off: i16, imm: i32) -> Insn {
    Insn::new(CLASS_ST | MODE_MEM | size, dst, 0, off, imm)
}
fn stx(size: u8, dst: u8, src: u8, off: i16) -> Insn {
    Insn::new(CLASS_STX | MODE_MEM | size, dst, src, off, 0)
}
fn exit() -> Insn {
    Insn::new(OP_EXIT, 0, 0, 0, 0)
}

/// data[k] = 0x10 + k, with data[8] = 0xf0 (a byte with its sign bit set).
fn input() -> Vec<u8> {
    let mut d: Vec<u8> = (0..DATA as u8).map(|k| 0x10 + k).collect();
    d[8] = 0xf0;
    d
}

fn load(code: &[Insn], engine: Engine, mode: Mode) -> Program {
    let options = ProgramOptions {
        engine,
        mode,
        data_size: (mode == Mode::Verified).then_some(DATA as u32),
        ..ProgramOptions::default()
    };
    let p = Program::load(&encode_all(code), options)
        .unwrap_or_else(|e| panic!("{engine:?} {mode:?}: {e}"));
    assert_eq!(p.engine(), engine);
    p
}

/// Runs `code` on both engines in both modes and checks r0 and the memory against `r0` and
/// `memory` (computed by hand).
fn check(name: &str, code: &[Insn], r0: u64, memory: &[u8]) {
    for engine in [Engine::Interpreter, Engine::Jit] {
        for mode in [Mode::Checked, Mode::Verified] {
            let p = load(code, engine, mode);
            if mode == Mode::Verified {
                let proved = &p.verifier_report().expect("verified").proved;
                let accesses = code.iter().enumerate().filter(|(_, i)| {
                    matches!(i.opcode & 7, 1..=3) && matches!(i.opcode & 0xe0, 0x60 | 0x80)
                });
                for (slot, _) in accesses {
                    assert!(proved[slot], "{name}: access at {slot} not proved");
                }
            }
            let mut data = input();
            let out = p
                .run(&mut RunInput {
                    data: &mut data,
                    budget: None,
                })
                .unwrap_or_else(|t| panic!("{name} {engine:?} {mode:?}: {t}"));
            assert_eq!(out.r0, r0, "{name}: r0, {engine:?} {mode:?}");
            assert_eq!(data, memory, "{name}: memory, {engine:?} {mode:?}");
        }
    }
}

#[test]
fn loads_through_a_sum_overwritten_by_the_last() {
    // t = r1 + 3; r4 = data[4]; t = data[3]; r0 = t << 8 | r4 = 0x13 << 8 | 0x14.
    let code = [
        mov64(2, 3),
        mov64_reg(3, 1),
        alu64_reg(ALU_ADD, 3, 2),
        ldx(SIZE_B, 4, 3, 1),
        ldx(SIZE_B, 3, 3, 0),
        mov64_reg(0, 3),
        alu64(ALU_LSH, 0, 8),
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
        mov64(2, 0x1234),
        mov64_reg(3, 1),
        alu64(ALU_ADD, 3, 5),
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
        mov64(2, 2),
        mov64_reg(3, 1),
        alu64_reg(ALU_ADD, 3, 2),
        ldx(SIZE_B, 2, 3, 0),
        ldx(SIZE_B, 3, 3, 1),
        mov64_reg(0, 3),
        alu64(ALU_LSH, 0, 8),
        alu64_reg(ALU_OR, 0, 2),
        exit(),
    ];
    check("index written", &code, 0x1312, &input());
}

#[test]
fn a_scalar_base_and_a_sign_extending_load() {
    // t = 8 + r1; r4 = (s8)data[8] = (s8)0xf0 = -16; t = data[8] = 0xf0; r0 = -16 + 240 = 224.
    let code = [
        mov64(2, 8),
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
        alu64(ALU_ADD, 3, 2),
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
        mov64(0, 0),
        mov64(2, 0),
        // loop:
        mov64_reg(3, 1),
        alu64_reg(ALU_ADD, 3, 2),
        ldx(SIZE_B, 3, 3, 0),
        alu64_reg(ALU_ADD, 0, 3),
        alu64(ALU_ADD, 2, 1),
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
        mov64(2, 0),
        // loop:
        mov64_reg(3, 1),
        alu64_reg(ALU_ADD, 3, 2),
        st(SIZE_B, 3, 16, 0x55),
        stx(SIZE_B, 3, 2, 24),
        alu64(ALU_ADD, 2, 1),
        Insn::new(CLASS_JMP | JMP_JLT | SRC_K, 2, 0, -6, 8),
        mov64(0, 0),
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
        alu64(ALU_ADD, 3, 2),
        ldx(SIZE_B, 4, 3, 0),
        Insn::new(CLASS_JMP | JMP_JEQ | SRC_K, 4, 0, 2, 0x12),
        mov64(0, 7),
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
        mov64(0, 0x1234_5678),
        alu64(ALU_ADD, 0, 0x1000),
        alu64(ALU_SUB, 0, 0x0f00),
        alu64(ALU_OR, 0, 0x1_0000),
        alu64(ALU_AND, 0, 0x00ff_f0f0),
        alu64(ALU_XOR, 0, 0x1234),
        alu64(ALU_MUL, 0, 0x101),
        Insn::new(CLASS_ALU | ALU_ADD | SRC_K, 0, 0, 0, 0x7fff_0000),
        // r5 = -0x1234; if r5 != -0x1234 goto fail (64-bit compare of the sign-extended value)
        mov64(5, -0x1234),
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
        mov64(0, 0),
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
        mov64(0, 0),
        mov64(2, 0),
        // head:
        Insn::new(CLASS_JMP | JMP_JSET | SRC_K, 2, 0, 2, 1),
        alu64(ALU_ADD, 0, 10),
        Insn::new(CLASS_JMP | JMP_JA, 0, 0, 1, 0),
        alu64(ALU_ADD, 0, 1),
        // latch:
        alu64(ALU_ADD, 2, 1),
        Insn::new(CLASS_JMP | JMP_JLT | SRC_K, 2, 0, -6, 6),
        alu64_reg(ALU_ADD, 0, 2),
        exit(),
    ];
    check("latch", &code, 39, &input());
}
