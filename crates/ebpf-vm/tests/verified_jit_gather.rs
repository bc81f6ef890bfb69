//! Reads assembled from byte loads (`jit/compile/gather.rs`): with the loads proved (mode
//! verified), the JIT emits one word load (and a `bswap`, or a `rol` by 8 for a u16) for
//! `r = b[o] << 8 | b[o + 1]` and the u32 of four bytes, in the orders clang emits them
//! (interleaved with other work). Each program runs on both engines in both modes against r0 and
//! memory worked out by hand from the instructions and the input; the verified JIT's code is
//! checked to have (or not have) the one load, and the checked JIT's never to.

mod common;

use common::*;
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::{encode_all, Insn};
use ebpf_vm::{Engine, Mode, Program, ProgramOptions, RunInput};

const DATA: usize = 32;

fn ldxb(dst: u8, src: u8, off: i16) -> Insn {
    Insn::new(CLASS_LDX | MODE_MEM | SIZE_B, dst, src, off, 0)
}
fn ldxdw(dst: u8, src: u8, off: i16) -> Insn {
    Insn::new(CLASS_LDX | MODE_MEM | SIZE_DW, dst, src, off, 0)
}
fn stxdw(dst: u8, src: u8, off: i16) -> Insn {
    Insn::new(CLASS_STX | MODE_MEM | SIZE_DW, dst, src, off, 0)
}
fn stb(dst: u8, off: i16, imm: i32) -> Insn {
    Insn::new(CLASS_ST | MODE_MEM | SIZE_B, dst, 0, off, imm)
}
fn jeq32_imm(dst: u8, imm: i32, off: i16) -> Insn {
    Insn::new(CLASS_JMP32 | JMP_JEQ, dst, 0, off, imm)
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
    Program::load(&encode_all(code), options).unwrap_or_else(|e| panic!("{engine:?} {mode:?}: {e}"))
}

/// Whether the code has a word load standing for bytes: a `bswap`, a `rol` by 8 of a 16-bit
/// register, or (little-endian reads) a load of a word, or no byte load left (every program
/// here loads bytes).
fn one_load(p: &Program) -> bool {
    let text = p.jited_disassembly();
    // The program's own code, before the snippets and stubs.
    let body = text.split("; out-of-line").next().unwrap_or_default();
    body.contains("bswap")
        || body.contains("rol ")
        || body.contains(",word ptr")
        || !body.contains("byte ptr")
}

/// Runs `code` on both engines in both modes and checks r0 and the memory against `r0` and
/// `memory` (computed by hand), and whether the verified JIT fused the reads (`fused`).
fn check(name: &str, code: &[Insn], r0: u64, memory: &[u8], fused: bool) {
    for engine in [Engine::Interpreter, Engine::Jit] {
        for mode in [Mode::Checked, Mode::Verified] {
            let p = load(code, engine, mode);
            if engine == Engine::Jit {
                let expected = fused && mode == Mode::Verified;
                assert_eq!(one_load(&p), expected, "{name}: fused, {mode:?}");
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
fn a_big_endian_u16_in_clangs_order() {
    // r2 = data[5]; r0 = data[4]; r0 = 0x14 << 8 | 0x15.
    let code = [
        ldxb(2, 1, 5),
        ldxb(0, 1, 4),
        alu32_imm(ALU_LSH, 0, 8),
        alu32_reg(ALU_OR, 0, 2),
        exit(),
    ];
    check("be16", &code, 0x1415, &input(), true);
}

#[test]
fn a_big_endian_u16_of_64_bit_operations_zero_extends() {
    // data[8] = 0xf0, data[9] = 0x19: 0xf019, no sign extension.
    let code = [
        ldxb(2, 1, 9),
        ldxb(0, 1, 8),
        alu64_imm(ALU_LSH, 0, 8),
        alu64_reg(ALU_OR, 0, 2),
        exit(),
    ];
    check("be16 alu64", &code, 0xf019, &input(), true);
}

#[test]
fn a_big_endian_u32_interleaved_with_another_read_into_its_base() {
    // As parse_fixed's IPv4 addresses: r3 gathers data[4..8] while r4 = data[8] << 8 is built
    // in between; the last byte load writes the base r1 (dead after).
    // r3 = 0x14151617; r4 = 0xf0 << 8 = 0xf000; r0 = r3 ^ r4 = 0x1415e617.
    let code = [
        ldxb(2, 1, 4),
        alu32_imm(ALU_LSH, 2, 24),
        ldxb(3, 1, 5),
        alu32_imm(ALU_LSH, 3, 16),
        alu32_reg(ALU_OR, 3, 2),
        ldxb(4, 1, 8),
        alu32_imm(ALU_LSH, 4, 8),
        ldxb(2, 1, 6),
        alu32_imm(ALU_LSH, 2, 8),
        alu32_reg(ALU_OR, 3, 2),
        ldxb(1, 1, 7),
        alu32_reg(ALU_OR, 3, 1),
        mov64_reg(0, 3),
        alu64_reg(ALU_XOR, 0, 4),
        exit(),
    ];
    check("be32 interleaved", &code, 0x1415_e617, &input(), true);
}

#[test]
fn a_big_endian_u32_with_its_bytes_out_of_order() {
    // As parse_fixed's ports: bytes 72, 73, 75, 74 of the frame; here data[28..32], the last
    // four bytes of the data (the word load reads no further): 0x2c2d2e2f.
    let code = [
        ldxb(2, 1, 28),
        alu32_imm(ALU_LSH, 2, 24),
        ldxb(0, 1, 29),
        alu32_imm(ALU_LSH, 0, 16),
        alu32_reg(ALU_OR, 0, 2),
        ldxb(2, 1, 31),
        alu32_reg(ALU_OR, 0, 2),
        ldxb(2, 1, 30),
        alu32_imm(ALU_LSH, 2, 8),
        alu32_reg(ALU_OR, 0, 2),
        exit(),
    ];
    check("be32 at the end", &code, 0x2c2d_2e2f, &input(), true);
}

#[test]
fn a_little_endian_u32_is_a_plain_load() {
    // data[7] << 24 | data[6] << 16 | data[5] << 8 | data[4] = 0x17161514.
    let code = [
        ldxb(0, 1, 7),
        alu32_imm(ALU_LSH, 0, 24),
        ldxb(2, 1, 6),
        alu32_imm(ALU_LSH, 2, 16),
        alu32_reg(ALU_OR, 0, 2),
        ldxb(2, 1, 5),
        alu32_imm(ALU_LSH, 2, 8),
        alu32_reg(ALU_OR, 0, 2),
        ldxb(2, 1, 4),
        alu32_reg(ALU_OR, 0, 2),
        exit(),
    ];
    check("le32", &code, 0x1716_1514, &input(), true);
}

#[test]
fn a_read_started_from_a_later_byte_is_not_searched() {
    // r0 = data[4] << 8 | data[5] = 0x1415, its first byte loaded first: the search starts
    // only at a u32's top byte or a u16's second byte loaded first (clang's orders).
    let code = [
        ldxb(0, 1, 4),
        alu32_imm(ALU_LSH, 0, 8),
        ldxb(2, 1, 5),
        alu32_reg(ALU_OR, 0, 2),
        exit(),
    ];
    check("not clang's order", &code, 0x1415, &input(), false);
}

#[test]
fn a_temporary_read_after_keeps_the_bytes() {
    // r2 = 0x15 is read after: r0 = 0x1415 + 0x15 = 0x142a.
    let code = [
        ldxb(2, 1, 5),
        ldxb(0, 1, 4),
        alu32_imm(ALU_LSH, 0, 8),
        alu32_reg(ALU_OR, 0, 2),
        alu64_reg(ALU_ADD, 0, 2),
        exit(),
    ];
    check("temporary live", &code, 0x142a, &input(), false);
}

#[test]
fn a_partial_value_read_by_other_work_keeps_the_bytes() {
    // r3 = r0 = 0x1400 before the or: r0 = 0x1415 + 0x1400 = 0x2815.
    let code = [
        ldxb(2, 1, 5),
        ldxb(0, 1, 4),
        alu32_imm(ALU_LSH, 0, 8),
        mov64_reg(3, 0),
        alu32_reg(ALU_OR, 0, 2),
        alu64_reg(ALU_ADD, 0, 3),
        exit(),
    ];
    check("partial read", &code, 0x2815, &input(), false);
}

#[test]
fn a_jump_target_inside_keeps_the_bytes() {
    // r0 = 1, r2 = 2; data[0] = 0x10: with `== 0x10` the jump lands on the shift, past the
    // loads: r0 = 1 << 8 | 2 = 0x102; with `== 0x11` it falls through: 0x1415.
    for (imm, r0) in [(0x10, 0x102), (0x11, 0x1415)] {
        let code = [
            mov64_imm(0, 1),
            mov64_imm(2, 2),
            ldxb(3, 1, 0),
            jeq32_imm(3, imm, 2),
            ldxb(2, 1, 5),
            ldxb(0, 1, 4),
            alu32_imm(ALU_LSH, 0, 8),
            alu32_reg(ALU_OR, 0, 2),
            exit(),
        ];
        check("target inside", &code, r0, &input(), false);
    }
}

#[test]
fn a_store_between_the_loads_keeps_the_bytes() {
    // data[4] = 0x99 after data[5] is read and before data[4] is: r0 = 0x9915. And a spill of
    // a byte to the stack: the same.
    let code = [
        ldxb(2, 1, 5),
        stb(1, 4, 0x99),
        ldxb(0, 1, 4),
        alu32_imm(ALU_LSH, 0, 8),
        alu32_reg(ALU_OR, 0, 2),
        exit(),
    ];
    let mut memory = input();
    memory[4] = 0x99;
    check("data store", &code, 0x9915, &memory, false);
    // r2 = 0x15, spilled and read back: r0 = 0x1415 + 0x15 = 0x142a.
    let code = [
        ldxb(2, 1, 5),
        stxdw(10, 2, -8),
        ldxb(0, 1, 4),
        alu32_imm(ALU_LSH, 0, 8),
        alu32_reg(ALU_OR, 0, 2),
        ldxdw(3, 10, -8),
        alu64_reg(ALU_ADD, 0, 3),
        exit(),
    ];
    check("spill", &code, 0x142a, &input(), false);
}

#[test]
fn bytes_through_a_moved_base_or_apart_stay_bytes() {
    // r1 += 1 between the loads: data[5], then data[1 + 3] = data[4]: still 0x1415, and r1
    // moved (r0 += r1 - r1 is nothing: r1 is read after).
    let code = [
        ldxb(2, 1, 5),
        alu64_imm(ALU_ADD, 1, 1),
        ldxb(0, 1, 3),
        alu32_imm(ALU_LSH, 0, 8),
        alu32_reg(ALU_OR, 0, 2),
        exit(),
    ];
    check("moved base", &code, 0x1415, &input(), false);
    // data[4] << 8 | data[6]: bytes not side by side, 0x1416.
    let code = [
        ldxb(2, 1, 6),
        ldxb(0, 1, 4),
        alu32_imm(ALU_LSH, 0, 8),
        alu32_reg(ALU_OR, 0, 2),
        exit(),
    ];
    check("apart", &code, 0x1416, &input(), false);
}
