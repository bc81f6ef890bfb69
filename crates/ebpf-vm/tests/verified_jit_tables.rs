//! Three forms of the JIT's unmetered code (mode verified), against values worked out by hand:
//! a tree of conditional jumps on a register masked just before, run through a jump table
//! (`jit/compile/switch.rs`); constants that the code's entry rebuilt once (blinded, in
//! `Ctx::pool`) taken as a memory operand by compares and ALU instructions (`cmp r, [slot]`);
//! and a conditional jump over one register instruction (`if c goto +1; r += k`, `r -= k`,
//! `r = s`) as a conditional move (`jit/compile/select.rs`): each compare width and kind, both
//! ways of each jump, 32-bit results (the upper half cleared when the instruction runs, kept when
//! it is jumped over), the compared register itself moved, another jump into the instruction, and
//! a loop counting with it. Every program runs on both engines in both modes (these forms apply
//! to mode verified only; mode checked meters, and keeps its compares and jumps).

mod common;

use common::*;
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::Insn;
use ebpf_vm::{Engine, Mode, Program};

const DATA: usize = 8;

/// One item of a program: an instruction, a jump to a named place, or a place's name.
enum Item {
    I(Insn),
    /// `opcode dst, imm` (a conditional jump against an immediate, or `ja`) to a named place.
    J(u8, u8, i32, &'static str),
    At(&'static str),
}
use Item::{At, I, J};

/// The instructions of `items`, with each jump's offset to its place.
fn assemble(items: &[Item]) -> Vec<Insn> {
    let mut at = std::collections::HashMap::new();
    let mut n = 0i32;
    for item in items {
        match item {
            At(name) => {
                at.insert(*name, n);
            }
            _ => n += 1,
        }
    }
    let mut out = Vec::new();
    for item in items {
        match item {
            I(insn) => out.push(*insn),
            J(op, dst, imm, to) => {
                let off = at[to] - out.len() as i32 - 1;
                out.push(Insn::new(*op, *dst, 0, off as i16, *imm));
            }
            At(_) => {}
        }
    }
    out
}

fn load(code: &[Insn], engine: Engine, mode: Mode) -> Program {
    load_sized(code, engine, mode, DATA)
}

/// Runs `code` on `data` on both engines in both modes; checks r0 against `r0` (by hand).
fn check(name: &str, code: &[Insn], data: [u8; DATA], r0: u64) {
    for engine in [Engine::Interpreter, Engine::Jit] {
        for mode in [Mode::Checked, Mode::Verified] {
            let p = load(code, engine, mode);
            let mut mem = data;
            let out = run_ok(&p, &mut mem, &format!("{name} {engine:?} {mode:?}"));
            assert_eq!(out.r0, r0, "{name} {data:?}: r0, {engine:?} {mode:?}");
        }
    }
}

/// Whether the JIT's code in mode verified jumps through a table (`jmp rax`, which nothing
/// else emits), and never in mode checked. The listing stops where the tables (data) begin.
fn tabled(code: &[Insn]) -> bool {
    let checked = load(code, Engine::Jit, Mode::Checked).jited_disassembly();
    assert!(!checked.contains("jmp rax"), "mode checked:\n{checked}");
    let text = load(code, Engine::Jit, Mode::Verified).jited_disassembly();
    assert!(!text.contains("(bad)"), "a table listed as code:\n{text}");
    text.contains("jmp rax")
}

const JSGT32: u8 = CLASS_JMP32 | JMP_JSGT | SRC_K;
const JGT32: u8 = CLASS_JMP32 | JMP_JGT | SRC_K;
const JNE32: u8 = CLASS_JMP32 | JMP_JNE | SRC_K;
const JEQ64: u8 = CLASS_JMP | JMP_JEQ | SRC_K;
const JSET64: u8 = CLASS_JMP | JMP_JSET | SRC_K;
const JGE64: u8 = CLASS_JMP | JMP_JGE | SRC_K;
const JA: u8 = CLASS_JMP | JMP_JA;

fn ldxb(dst: u8, src: u8, off: i16) -> Insn {
    Insn::new(CLASS_LDX | MODE_MEM | SIZE_B, dst, src, off, 0)
}

/// `r2 = data[0] & 7`, then a tree on r2 of 32- and 64-bit, signed and unsigned compares, a
/// `jset` and `ja`s, whose leaves return: 0 -> 10, 1 -> 11, 2 -> 12, 3 -> 13, 4 and 5 -> 45,
/// 6 -> 16, 7 -> 100 + r2 (the register read after). With `side`, `data[1] == 1` jumps into the
/// tree's middle (`jset`) before the mask, with r2 = data[0] as it is.
fn tree(side: bool) -> Vec<Insn> {
    let mut items = vec![I(ldxb(2, 1, 0))];
    if side {
        items.extend([I(ldxb(3, 1, 1)), J(JEQ64, 3, 1, "high")]);
    }
    items.extend([
        I(alu32_imm(ALU_AND, 2, 7)),
        // v > 3 (signed, 32-bit)
        J(JSGT32, 2, 3, "hi"),
        // v > 1 (unsigned, 32-bit)
        J(JGT32, 2, 1, "two_three"),
        // v == 0 (64-bit)
        J(JEQ64, 2, 0, "zero"),
        I(mov64_imm(0, 11)),
        I(exit()),
        At("two_three"),
        J(JNE32, 2, 2, "three"),
        J(JA, 0, 0, "two"),
        At("hi"),
        At("high"),
        // v & 2: 6 and 7 (and, from the side, any value with bit 1)
        J(JSET64, 2, 2, "six_seven"),
        J(JA, 0, 0, "four_five"),
        At("six_seven"),
        // v >= 7 (unsigned, 64-bit)
        J(JGE64, 2, 7, "seven"),
        J(JA, 0, 0, "six"),
        At("zero"),
        I(mov64_imm(0, 10)),
        I(exit()),
        At("three"),
        I(mov64_imm(0, 13)),
        I(exit()),
        At("two"),
        I(mov64_imm(0, 12)),
        I(exit()),
        At("four_five"),
        I(mov64_imm(0, 45)),
        I(exit()),
        At("six"),
        I(mov64_imm(0, 16)),
        I(exit()),
        At("seven"),
        I(mov64_imm(0, 100)),
        I(alu64_reg(ALU_ADD, 0, 2)),
        I(exit()),
    ]);
    assemble(&items)
}

/// What `tree` returns for `v = data[0] & 7`, from its leaves.
const CASES: [u64; 8] = [10, 11, 12, 13, 45, 45, 16, 107];

#[test]
fn a_compare_tree_on_a_masked_byte() {
    let code = tree(false);
    assert!(tabled(&code));
    // Every value of the byte: the bits above the mask must not matter.
    for b in 0..=255u8 {
        check(
            "tree",
            &code,
            [b, 0, 0, 0, 0, 0, 0, 0],
            CASES[b as usize & 7],
        );
    }
}

#[test]
fn a_jump_into_the_tree_takes_its_own_way() {
    let code = tree(true);
    assert!(tabled(&code));
    for b in [0u8, 3, 4, 5, 6, 7, 0x0f, 0xf6, 0xfc] {
        check(
            "tree, masked",
            &code,
            [b, 0, 0, 0, 0, 0, 0, 0],
            CASES[b as usize & 7],
        );
    }
    // From the side, unmasked: the `jset` on r2 = b, then `r2 >= 7`.
    // 0x04: bit 1 clear -> 45. 0x06: bit 1, 6 < 7 -> 16. 0xf6: bit 1, >= 7 -> 100 + 0xf6.
    // 0xfc: bit 1 clear -> 45.
    for (b, r0) in [(0x04u8, 45u64), (0x06, 16), (0xf6, 100 + 0xf6), (0xfc, 45)] {
        check("tree, side", &code, [b, 1, 0, 0, 0, 0, 0, 0], r0);
    }
}

#[test]
fn a_tree_whose_root_is_a_jump_target_keeps_its_compares() {
    // As `tree`, with the root reached from before the mask too (`data[1] == 1` jumps to it
    // with r2 = data[0] unmasked): no table, and the compares see the whole value.
    let code = assemble(&[
        I(ldxb(2, 1, 0)),
        I(ldxb(3, 1, 1)),
        J(JEQ64, 3, 1, "root"),
        I(alu64_imm(ALU_AND, 2, 7)),
        At("root"),
        J(JSGT32, 2, 3, "hi"),
        J(JEQ64, 2, 0, "zero"),
        J(JEQ64, 2, 1, "one"),
        I(mov64_imm(0, 23)),
        I(exit()),
        At("hi"),
        J(JSET64, 2, 1, "odd"),
        I(mov64_imm(0, 46)),
        I(exit()),
        At("odd"),
        I(mov64_imm(0, 57)),
        I(exit()),
        At("zero"),
        I(mov64_imm(0, 10)),
        I(exit()),
        At("one"),
        I(mov64_imm(0, 11)),
        I(exit()),
    ]);
    assert!(!tabled(&code));
    // Masked: 0 -> 10, 1 -> 11, 2 and 3 -> 23, 4 and 6 -> 46, 5 and 7 -> 57.
    for (b, r0) in [(0u8, 10u64), (1, 11), (2, 23), (3, 23), (4, 46), (0xfd, 57)] {
        check("root target, masked", &code, [b, 0, 0, 0, 0, 0, 0, 0], r0);
    }
    // Unmasked 0xf8: as a signed 32-bit value 248 > 3, even -> 46; 9: > 3, odd -> 57.
    for (b, r0) in [(0xf8u8, 46u64), (9, 57)] {
        check("root target, side", &code, [b, 1, 0, 0, 0, 0, 0, 0], r0);
    }
}

#[test]
fn a_switch_in_a_loop_with_its_cases_on_the_latch() {
    // r0 = 1; for k in 0..8 { switch data[k] & 3 { 0: r0 += 1; 1: r0 *= 3; 2: r0 ^= 0x55;
    // 3: r0 += 10 } } with data = 0, 1, .., 7 (cases 0, 1, 2, 3, 0, 1, 2, 3):
    // 2, 6, 6 ^ 0x55 = 0x53 = 83, 93, 94, 282, 0x11a ^ 0x55 = 0x14f = 335, 345.
    // Each case's `ja` to the latch is copied (unmetered); the mask is 64-bit.
    let code = assemble(&[
        I(mov64_imm(0, 1)),
        I(mov64_imm(4, 0)),
        At("head"),
        I(mov64_reg(5, 1)),
        I(alu64_reg(ALU_ADD, 5, 4)),
        I(ldxb(2, 5, 0)),
        I(alu64_imm(ALU_AND, 2, 3)),
        J(JGT32, 2, 1, "two_three"),
        J(JEQ64, 2, 0, "c0"),
        I(alu64_imm(ALU_MUL, 0, 3)),
        J(JA, 0, 0, "latch"),
        At("two_three"),
        J(JEQ64, 2, 3, "c3"),
        I(alu64_imm(ALU_XOR, 0, 0x55)),
        J(JA, 0, 0, "latch"),
        At("c0"),
        I(alu64_imm(ALU_ADD, 0, 1)),
        J(JA, 0, 0, "latch"),
        At("c3"),
        I(alu64_imm(ALU_ADD, 0, 10)),
        At("latch"),
        I(alu64_imm(ALU_ADD, 4, 1)),
        J(CLASS_JMP | JMP_JLT | SRC_K, 4, 8, "head"),
        I(exit()),
    ]);
    assert!(tabled(&code));
    check("loop", &code, [0, 1, 2, 3, 4, 5, 6, 7], 345);
    // data = 3, 3, 0, 0, 1, 2, 7, 4 (cases 3, 3, 0, 0, 1, 2, 3, 0):
    // 11, 21, 22, 23, 69, 69 ^ 0x55 = 0x45 ^ 0x55 = 0x10 = 16, 26, 27.
    check("loop", &code, [3, 3, 0, 0, 1, 2, 7, 4], 27);
}

#[test]
fn two_compares_stay_compares() {
    // A tree of two jumps is left as it is (a table would not pay): same results either way.
    let code = assemble(&[
        I(ldxb(2, 1, 0)),
        I(alu32_imm(ALU_AND, 2, 3)),
        J(JGT32, 2, 1, "hi"),
        J(JEQ64, 2, 0, "zero"),
        I(mov64_imm(0, 1)),
        I(exit()),
        At("hi"),
        I(mov64_imm(0, 2)),
        I(exit()),
        At("zero"),
        I(mov64_imm(0, 0)),
        I(exit()),
    ]);
    assert!(!tabled(&code));
    for (b, r0) in [(0u8, 0u64), (1, 1), (2, 2), (0xff, 2), (0xfc, 0)] {
        check("two", &code, [b, 0, 0, 0, 0, 0, 0, 0], r0);
    }
}

#[test]
fn pooled_constants_as_operands() {
    // Five trips of a loop whose constants are worth blinding (more than one chosen byte), so
    // that the code's entry rebuilds them once and the loop reads them from the pool:
    //   r3 += 0x1234 (the bound below is 5 * 0x1234 = 0x5b04, 64-bit compare);
    //   w0 ^= 0x0f0f0f0f (32-bit: r0 = -1 becomes 0xf0f0f0f0 after an odd number of trips,
    //   zero-extended); r5 -= 0x5b04 (64-bit: -0x1c714); w7 -= -0x2000 (32-bit: 0xa000);
    //   r8 += -0x3000 (64-bit, sign-extended: -0xf000); if w8 == -0xf000 (32-bit compare,
    //   0xffff1000: the last trip only) skip r9 += 1 (r9 = 4); r6 *= 0x100 (64-bit: 2^40);
    //   w4 *= 0x10001 (32-bit: (1 + 2^16)^5 = 1 + 5 * 2^16 + 10 * 2^32 + .. = 0x50001 mod 2^32).
    // r0 = 0xf0f0f0f0 - 0x1c714 = 0xf0ef29dc; + 0xa000 = 0xf0efc9dc; - 0xf000 = 0xf0eed9dc;
    // + 4 = 0xf0eed9e0; + 0x50001 = 0xf0f3d9e1; + 2^40 = 0x100_f0f3_d9e1.
    let code = assemble(&[
        I(mov64_imm(0, -1)),
        I(mov64_imm(3, 0)),
        I(mov64_imm(5, 0)),
        I(mov64_imm(7, 0)),
        I(mov64_imm(8, 0)),
        I(mov64_imm(9, 0)),
        I(mov64_imm(6, 1)),
        I(mov64_imm(4, 1)),
        At("head"),
        I(alu64_imm(ALU_ADD, 3, 0x1234)),
        I(alu32_imm(ALU_XOR, 0, 0x0f0f_0f0f)),
        I(alu64_imm(ALU_SUB, 5, 0x5b04)),
        I(alu64_imm(ALU_MUL, 6, 0x100)),
        I(alu32_imm(ALU_MUL, 4, 0x10001)),
        I(alu32_imm(ALU_SUB, 7, -0x2000)),
        I(alu64_imm(ALU_ADD, 8, -0x3000)),
        J(CLASS_JMP32 | JMP_JEQ | SRC_K, 8, -0xf000, "skip"),
        I(alu64_imm(ALU_ADD, 9, 1)),
        At("skip"),
        J(CLASS_JMP | JMP_JNE | SRC_K, 3, 0x5b04, "head"),
        I(alu64_reg(ALU_ADD, 0, 5)),
        I(alu64_reg(ALU_ADD, 0, 7)),
        I(alu64_reg(ALU_ADD, 0, 8)),
        I(alu64_reg(ALU_ADD, 0, 9)),
        I(alu64_reg(ALU_ADD, 0, 6)),
        I(alu64_reg(ALU_ADD, 0, 4)),
        I(exit()),
    ]);
    check("pool", &code, [0; DATA], 0x100_f0f3_d9e1);
    // The loop's compare and ALU instructions read their constants from the pool
    // (`cmp r, [rsp+...]`, `xor r, [rsp+...]`, `imul r, [rsp+...]`), in both modes.
    for mode in [Mode::Checked, Mode::Verified] {
        let text = load(&code, Engine::Jit, mode).jited_disassembly();
        for op in ["cmp ", "xor ", "sub ", "add ", "imul "] {
            let folded = text.lines().any(|l| l.contains(op) && l.contains(",[rsp+"));
            assert!(folded, "{mode:?}: no {op}from the pool:\n{text}");
        }
    }
}

/// Whether the JIT's code in mode verified has a conditional move, and never in mode checked.
fn selects(code: &[Insn]) -> bool {
    let checked = load(code, Engine::Jit, Mode::Checked).jited_disassembly();
    assert!(!checked.contains("cmov"), "mode checked:\n{checked}");
    let text = load(code, Engine::Jit, Mode::Verified).jited_disassembly();
    text.contains("cmov")
}

/// `if dst <op> src goto +off` (register form) of class `cls`.
fn jx(cls: u8, op: u8, dst: u8, src: u8, off: i16) -> Insn {
    Insn::new(cls | op | SRC_X, dst, src, off, 0)
}

/// `if dst <op> imm goto +off` of class `cls`.
fn jk(cls: u8, op: u8, dst: u8, imm: i32, off: i16) -> Insn {
    Insn::new(cls | op | SRC_K, dst, 0, off, imm)
}

/// r2 = data[0], r3 = data[1], r0 = `r0`, then `jump` over `body`, then exit.
fn hammock(r0: u64, jump: Insn, body: Insn) -> Vec<Insn> {
    let mut code = vec![ldxb(2, 1, 0), ldxb(3, 1, 1)];
    code.extend(lddw(0, r0));
    code.extend([jump, body, exit()]);
    code
}

#[test]
fn add_runs_unless_jumped_over() {
    // if r2 > r3 goto +1; r0 += 1 (r0 = 5).
    let code = hammock(5, jx(CLASS_JMP, JMP_JGT, 2, 3, 1), alu64_imm(ALU_ADD, 0, 1));
    assert!(selects(&code));
    // 3 > 7 is false: the add runs.
    check("jgt, not taken", &code, [3, 7, 0, 0, 0, 0, 0, 0], 6);
    // 9 > 7: jumped over.
    check("jgt, taken", &code, [9, 7, 0, 0, 0, 0, 0, 0], 5);
    // Equal: 7 > 7 is false.
    check("jgt, equal", &code, [7, 7, 0, 0, 0, 0, 0, 0], 6);
}

#[test]
fn add32_clears_the_upper_half_only_when_it_runs() {
    // if w2 <= 5 goto +1; w0 += 0x20, r0 = 0xffff_ffff_ffff_fff0.
    let code = hammock(
        0xffff_ffff_ffff_fff0,
        jk(CLASS_JMP32, JMP_JLE, 2, 5, 1),
        alu32_imm(ALU_ADD, 0, 0x20),
    );
    assert!(selects(&code));
    // 9 <= 5 is false: w0 = 0xffff_fff0 + 0x20 = 0x1_0000_0010, truncated and zero-extended.
    check("w0 += 0x20 runs", &code, [9, 0, 0, 0, 0, 0, 0, 0], 0x10);
    // 3 <= 5: r0 keeps all 64 bits.
    check(
        "w0 += 0x20 jumped over",
        &code,
        [3, 0, 0, 0, 0, 0, 0, 0],
        0xffff_ffff_ffff_fff0,
    );
}

#[test]
fn sub_after_a_signed_compare() {
    // r2 = data[0] - 100; if r2 s> r3 goto +1; r0 -= 3 (r0 = 10).
    let mut code = vec![ldxb(2, 1, 0), alu64_imm(ALU_ADD, 2, -100), ldxb(3, 1, 1)];
    code.extend(lddw(0, 10));
    code.extend([
        jx(CLASS_JMP, JMP_JSGT, 2, 3, 1),
        alu64_imm(ALU_SUB, 0, 3),
        exit(),
    ]);
    assert!(selects(&code));
    // -50 s> 7 is false (unsigned it would be true): 10 - 3.
    check("jsgt, negative", &code, [50, 7, 0, 0, 0, 0, 0, 0], 7);
    // 100 s> 7: jumped over.
    check("jsgt, positive", &code, [200, 7, 0, 0, 0, 0, 0, 0], 10);
    // r0 = 1: 1 - 3 wraps to 2^64 - 2.
    let mut wraps = code.clone();
    wraps[3..5].copy_from_slice(&lddw(0, 1));
    check(
        "jsgt, wraps",
        &wraps,
        [50, 7, 0, 0, 0, 0, 0, 0],
        u64::MAX - 1,
    );
}

#[test]
fn moves_of_both_widths() {
    // if r2 & 4 goto +1; r0 = r3 (r0 = 0x1122_3344_5566_7788).
    let code = hammock(
        0x1122_3344_5566_7788,
        jk(CLASS_JMP, JMP_JSET, 2, 4, 1),
        mov64_reg(0, 3),
    );
    assert!(selects(&code));
    check(
        "jset, taken",
        &code,
        [4, 9, 0, 0, 0, 0, 0, 0],
        0x1122_3344_5566_7788,
    );
    check("jset, not taken", &code, [3, 9, 0, 0, 0, 0, 0, 0], 9);
    // r4 = 0xaaaa_bbbb_cccc_dddd; if r2 == r3 goto +1; w0 = w4.
    let mut code = lddw(4, 0xaaaa_bbbb_cccc_dddd).to_vec();
    code.extend(hammock(
        0x1122_3344_5566_7788,
        jx(CLASS_JMP, JMP_JEQ, 2, 3, 1),
        alu32_reg(ALU_MOV, 0, 4),
    ));
    assert!(selects(&code));
    check("w0 = w4 runs", &code, [1, 2, 0, 0, 0, 0, 0, 0], 0xcccc_dddd);
    check(
        "w0 = w4 jumped over",
        &code,
        [2, 2, 0, 0, 0, 0, 0, 0],
        0x1122_3344_5566_7788,
    );
}

#[test]
fn the_compared_register_itself() {
    // r0 = data[0]; if r0 > 3 goto +1; r0 += 10.
    let code = [
        ldxb(0, 1, 0),
        jk(CLASS_JMP, JMP_JGT, 0, 3, 1),
        alu64_imm(ALU_ADD, 0, 10),
        exit(),
    ];
    assert!(selects(&code));
    check("r0 <= 3", &code, [2, 0, 0, 0, 0, 0, 0, 0], 12);
    check("r0 > 3", &code, [5, 0, 0, 0, 0, 0, 0, 0], 5);
    check("r0 = 3", &code, [3, 0, 0, 0, 0, 0, 0, 0], 13);
}

#[test]
fn another_jump_into_the_instruction() {
    // As strcmp's loop leaves for `ordered++` when the strings match to the end: the add is a
    // jump target as well, and that jump runs it.
    let code = [
        ldxb(2, 1, 0),
        ldxb(3, 1, 1),
        mov64_imm(0, 100),
        // 3: if r2 == 0 goto 6 (the add).
        jk(CLASS_JMP, JMP_JEQ, 2, 0, 2),
        mov64_imm(0, 200),
        // 5: if r2 > r3 goto 7, over the add.
        jx(CLASS_JMP, JMP_JGT, 2, 3, 1),
        alu64_imm(ALU_ADD, 0, 1),
        exit(),
    ];
    assert!(selects(&code));
    check("jumped into", &code, [0, 3, 0, 0, 0, 0, 0, 0], 101);
    check("jumped over", &code, [5, 3, 0, 0, 0, 0, 0, 0], 200);
    check("falls into", &code, [2, 3, 0, 0, 0, 0, 0, 0], 201);
}

#[test]
fn counting_in_a_loop() {
    // r0 = the number of data[i] <= 0x80, i < 8.
    let code = [
        mov64_imm(0, 0),
        mov64_imm(2, 0),
        // 2: loop head.
        mov64_reg(3, 1),
        alu64_reg(ALU_ADD, 3, 2),
        ldxb(4, 3, 0),
        // 5: if r4 > 0x80 goto 7.
        jk(CLASS_JMP, JMP_JGT, 4, 0x80, 1),
        alu64_imm(ALU_ADD, 0, 1),
        alu64_imm(ALU_ADD, 2, 1),
        // 8: if r2 < 8 goto 2.
        jk(CLASS_JMP, JMP_JLT, 2, 8, -7),
        exit(),
    ];
    assert!(selects(&code));
    // <= 0x80: 0x10, 0x80, 0x00, 0x7f, 0x20.
    check(
        "count",
        &code,
        [0x10, 0x90, 0x80, 0x81, 0x00, 0xff, 0x7f, 0x20],
        5,
    );
    check("none", &code, [0xff; DATA], 0);
    check("all", &code, [0; DATA], 8);
}

#[test]
fn not_over_more_than_one_instruction() {
    // if r2 > r3 goto +2; r0 += 1; r0 += 2: two instructions, a jump as before.
    let mut code = vec![ldxb(2, 1, 0), ldxb(3, 1, 1)];
    code.extend(lddw(0, 0));
    code.extend([
        jx(CLASS_JMP, JMP_JGT, 2, 3, 2),
        alu64_imm(ALU_ADD, 0, 1),
        alu64_imm(ALU_ADD, 0, 2),
        exit(),
    ]);
    assert!(!selects(&code));
    check("over two, taken", &code, [9, 3, 0, 0, 0, 0, 0, 0], 0);
    check("over two, not taken", &code, [1, 3, 0, 0, 0, 0, 0, 0], 3);
}
