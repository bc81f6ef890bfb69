//! A hash's mixing step `t = h; t >>= k; t ^= x; t ^= h` (`jit/compile/xor_shift.rs`), which the
//! JIT emits with its `xor`s reordered (`t = (x ^ h) ^ (h >> k)`, the shift in rax), and the
//! forms it leaves alone. Each program runs on both engines in both modes against r0 worked out
//! by hand (h = 0x12345678 or 0xfedcba9876543210, x = 0xdeadbeef or 0x0123456789abcdef), and
//! the JIT's code is checked to have (or not have) the reordered form.

mod common;

use common::*;
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::Insn;
use ebpf_vm::{Engine, Mode, Program};

const DATA: usize = 16;

fn load(code: &[Insn], engine: Engine, mode: Mode) -> Program {
    load_sized(code, engine, mode, DATA)
}

/// Whether the program's own code (before the snippets and stubs) shifts rax or eax: the
/// reordered step's shift.
fn reordered(p: &Program) -> bool {
    let text = p.jited_disassembly();
    let body = text.split("; out-of-line").next().unwrap_or_default();
    ["shr", "shl", "sar"]
        .iter()
        .any(|op| body.contains(&format!("{op} eax,")) || body.contains(&format!("{op} rax,")))
}

/// Runs `code` (after `prefix`, which sets h in r2 and x in r3) on both engines in both modes
/// against `r0`; `fused`: whether the JIT reorders in mode `mode_fused` (None: in none).
fn check(name: &str, code: &[Insn], r0: u64, fused: &[Mode]) {
    // data[k] = 0x10 + k.
    let input: Vec<u8> = (0..DATA as u8).map(|k| 0x10 + k).collect();
    for engine in [Engine::Interpreter, Engine::Jit] {
        for mode in [Mode::Checked, Mode::Verified] {
            let p = load(code, engine, mode);
            if engine == Engine::Jit {
                assert_eq!(
                    reordered(&p),
                    fused.contains(&mode),
                    "{name}: reordered, {mode:?}"
                );
            }
            let mut data = input.clone();
            let out = run_ok(&p, &mut data, &format!("{name} {engine:?} {mode:?}"));
            assert_eq!(out.r0, r0, "{name}: r0, {engine:?} {mode:?}");
        }
    }
}

const BOTH: &[Mode] = &[Mode::Checked, Mode::Verified];

/// r2 = h (its upper half set: the 32-bit step ignores it), r3 = x, then `body`, then exit.
fn program(h: u64, x: u64, body: &[Insn]) -> Vec<Insn> {
    let mut code = Vec::new();
    code.extend(lddw(2, h));
    code.extend(lddw(3, x));
    code.extend_from_slice(body);
    code.push(exit());
    code
}

#[test]
fn the_32_bit_step() {
    // (0x12345678 >> 15 = 0x2468) ^ 0xdeadbeef ^ 0x12345678 = 0xcc99ccff.
    let code = program(
        0xffff_ffff_1234_5678,
        0xdead_beef,
        &[
            alu32_reg(ALU_MOV, 0, 2),
            alu32_imm(ALU_RSH, 0, 15),
            alu32_reg(ALU_XOR, 0, 3),
            alu32_reg(ALU_XOR, 0, 2),
        ],
    );
    check("rsh32", &code, 0xcc99_ccff, BOTH);
}

#[test]
fn the_64_bit_step_with_left_and_arithmetic_shifts() {
    let (h, x) = (0xfedc_ba98_7654_3210, 0x0123_4567_89ab_cdef);
    // (h << 13) ^ x ^ h = 0x68acf13579bdffff.
    let code = program(
        h,
        x,
        &[
            mov64_reg(0, 2),
            alu64_imm(ALU_LSH, 0, 13),
            alu64_reg(ALU_XOR, 0, 3),
            alu64_reg(ALU_XOR, 0, 2),
        ],
    );
    check("lsh64", &code, 0x68ac_f135_79bd_ffff, BOTH);
    // (h s>> 7 = 0xfffdb97530eca864) ^ x ^ h = 0x0002468acf13579b.
    let code = program(
        h,
        x,
        &[
            mov64_reg(0, 2),
            alu64_imm(ALU_ARSH, 0, 7),
            alu64_reg(ALU_XOR, 0, 3),
            alu64_reg(ALU_XOR, 0, 2),
        ],
    );
    check("arsh64", &code, 0x0002_468a_cf13_579b, BOTH);
}

#[test]
fn a_load_of_x_between_goes_first_when_proved() {
    // x = u32 data[0..4] = 0x13121110 (loaded between the shift and the xors):
    // 0x2468 ^ 0x13121110 ^ 0x12345678 = 0x01266300. The load is proved in mode verified only:
    // in mode checked the step is left as it is.
    let code = program(
        0x1234_5678,
        0,
        &[
            alu32_reg(ALU_MOV, 0, 2),
            alu32_imm(ALU_RSH, 0, 15),
            Insn::new(CLASS_LDX | MODE_MEM | SIZE_W, 3, 1, 0, 0),
            alu32_reg(ALU_XOR, 0, 3),
            alu32_reg(ALU_XOR, 0, 2),
        ],
    );
    check("load between", &code, 0x0126_6300, &[Mode::Verified]);
}

#[test]
fn forms_left_alone() {
    // Something between reads t (r4 = r0 = 0x2468): 0xcc99ccff + 0x2468 = 0xcc99f167.
    let code = program(
        0x1234_5678,
        0xdead_beef,
        &[
            alu32_reg(ALU_MOV, 0, 2),
            alu32_imm(ALU_RSH, 0, 15),
            mov64_reg(4, 0),
            alu32_reg(ALU_XOR, 0, 3),
            alu32_reg(ALU_XOR, 0, 2),
            alu64_reg(ALU_ADD, 0, 4),
        ],
    );
    check("t read between", &code, 0xcc99_f167, &[]);
    // x is h: h >> 4 ^ h ^ h = 0x01234567.
    let code = program(
        0x1234_5678,
        0,
        &[
            alu32_reg(ALU_MOV, 0, 2),
            alu32_imm(ALU_RSH, 0, 4),
            alu32_reg(ALU_XOR, 0, 2),
            alu32_reg(ALU_XOR, 0, 2),
        ],
    );
    check("x is h", &code, 0x0123_4567, &[]);
    // A jump lands on the first xor (r3 = 0: taken) with r0 = 1: 1 ^ 0 ^ 0x12345678.
    let code = program(
        0x1234_5678,
        0,
        &[
            mov64_imm(0, 1),
            Insn::new(CLASS_JMP | JMP_JEQ, 3, 0, 2, 0),
            alu32_reg(ALU_MOV, 0, 2),
            alu32_imm(ALU_RSH, 0, 15),
            alu32_reg(ALU_XOR, 0, 3),
            alu32_reg(ALU_XOR, 0, 2),
        ],
    );
    check("target inside", &code, 0x1234_5679, &[]);
}
