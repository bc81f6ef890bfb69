//! Malformed bytecode is refused at load with EINVAL (or E2BIG/ENOTSUPP), the index of the
//! offending instruction and a message naming the rule.

mod common;

use common::*;
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::{Engine, ErrorCode, LoadError, Program, ProgramOptions};

fn load_bytes(b: &[u8]) -> Result<Program, LoadError> {
    Program::load(
        b,
        ProgramOptions {
            engine: Engine::Interpreter,
            ..ProgramOptions::default()
        },
    )
}

fn reject(insns: &[ebpf_vm::isa::Insn]) -> LoadError {
    load(insns, Engine::Interpreter).expect_err("program must be rejected")
}

fn assert_rejected(e: &LoadError, code: ErrorCode, insn: Option<usize>, words: &str) {
    assert_eq!(e.code, code, "{e}");
    assert_eq!(e.insn, insn, "{e}");
    assert!(
        e.message.contains(words),
        "message {:?} should contain {words:?}",
        e.message
    );
}

#[test]
fn empty_and_truncated_bytecode() {
    assert_rejected(
        &load_bytes(&[]).unwrap_err(),
        ErrorCode::Einval,
        None,
        "empty",
    );
    let mut b = bytes(&[mov64_imm(0, 0), exit()]);
    b.truncate(12);
    assert_rejected(
        &load_bytes(&b).unwrap_err(),
        ErrorCode::Einval,
        Some(1),
        "not a multiple of 8",
    );
}

#[test]
fn unknown_opcodes() {
    for op in [0xffu8, 0x8e, 0x96, 0x38, 0x8c, 0xdf, 0x06 | SRC_X, 0x9b] {
        let e = reject(&[i(op, 0, 0, 0, 0), exit()]);
        assert_rejected(
            &e,
            ErrorCode::Einval,
            Some(0),
            &format!("unknown opcode 0x{op:02x}"),
        );
    }
}

#[test]
fn reserved_fields_must_be_zero() {
    assert_rejected(
        &reject(&[i(CLASS_ALU64 | ALU_MOV | SRC_K, 0, 1, 0, 0), exit()]),
        ErrorCode::Einval,
        Some(0),
        "src must be zero",
    );
    assert_rejected(
        &reject(&[i(CLASS_ALU64 | ALU_ADD | SRC_K, 0, 0, 1, 0), exit()]),
        ErrorCode::Einval,
        Some(0),
        "offset must be zero",
    );
    assert_rejected(
        &reject(&[i(CLASS_ALU64 | ALU_ADD | SRC_X, 0, 1, 0, 5), exit()]),
        ErrorCode::Einval,
        Some(0),
        "immediate must be zero",
    );
    assert_rejected(
        &reject(&[mov64_imm(0, 0), i(OP_EXIT, 0, 0, 0, 1)]),
        ErrorCode::Einval,
        Some(1),
        "immediate must be zero",
    );
    // The second slot of lddw carries only the high half of the immediate.
    let mut p = lddw(0, 1).to_vec();
    p[1].dst = 3;
    p.push(exit());
    assert_rejected(
        &reject(&p),
        ErrorCode::Einval,
        Some(1),
        "second slot of lddw",
    );
}

#[test]
fn per_opcode_values() {
    // Signed division uses offset 1; nothing else.
    assert_rejected(
        &reject(&[i(CLASS_ALU64 | ALU_DIV | SRC_K, 0, 0, 2, 1), exit()]),
        ErrorCode::Einval,
        Some(0),
        "invalid offset value 2",
    );
    // movsx widths: 8/16/32 for 64-bit, 8/16 for 32-bit.
    assert_rejected(
        &reject(&[i(CLASS_ALU64 | ALU_MOV | SRC_X, 0, 1, 24, 0), exit()]),
        ErrorCode::Einval,
        Some(0),
        "invalid offset value 24",
    );
    assert_rejected(
        &reject(&[i(CLASS_ALU | ALU_MOV | SRC_X, 0, 1, 32, 0), exit()]),
        ErrorCode::Einval,
        Some(0),
        "invalid offset value 32",
    );
    // Byte-order widths.
    assert_rejected(
        &reject(&[i(CLASS_ALU | ALU_END | SRC_X, 0, 0, 0, 8), exit()]),
        ErrorCode::Einval,
        Some(0),
        "invalid immediate value 8",
    );
    // Atomic operation codes.
    assert_rejected(
        &reject(&[
            i(CLASS_STX | MODE_ATOMIC | SIZE_DW, 10, 1, -8, 0x10),
            exit(),
        ]),
        ErrorCode::Einval,
        Some(0),
        "invalid immediate value 16",
    );
    // lddw pseudo sources are 0-6.
    let mut p = lddw(0, 1).to_vec();
    p[0].src = 7;
    p.push(exit());
    assert_rejected(
        &reject(&p),
        ErrorCode::Einval,
        Some(0),
        "invalid src field value 7",
    );
}

#[test]
fn registers() {
    assert_rejected(
        &reject(&[mov64_imm(11, 0), exit()]),
        ErrorCode::Einval,
        Some(0),
        "invalid dst register r11",
    );
    assert_rejected(
        &reject(&[mov64_reg(0, 15), exit()]),
        ErrorCode::Einval,
        Some(0),
        "invalid src register r15",
    );
    assert_rejected(
        &reject(&[mov64_imm(10, 0), exit()]),
        ErrorCode::Einval,
        Some(0),
        "r10 is read-only",
    );
    assert_rejected(
        &reject(&[i(CLASS_LDX | MODE_MEM | SIZE_DW, 10, 1, 0, 0), exit()]),
        ErrorCode::Einval,
        Some(0),
        "r10 is read-only",
    );
    // An atomic fetch writes its source register.
    assert_rejected(
        &reject(&[
            i(
                CLASS_STX | MODE_ATOMIC | SIZE_DW,
                1,
                10,
                0,
                ATOMIC_ADD | ATOMIC_FETCH,
            ),
            exit(),
        ]),
        ErrorCode::Einval,
        Some(0),
        "r10",
    );
    // Storing r10 to memory (or through it) is fine.
    assert!(load(
        &[
            i(CLASS_STX | MODE_MEM | SIZE_DW, 10, 10, -8, 0),
            mov64_imm(0, 0),
            exit()
        ],
        Engine::Interpreter
    )
    .is_ok());
}

#[test]
fn control_flow() {
    assert_rejected(
        &reject(&[i(OP_JA, 0, 0, 5, 0), exit()]),
        ErrorCode::Einval,
        Some(0),
        "outside the program",
    );
    assert_rejected(
        &reject(&[i(OP_JA, 0, 0, -2, 0), exit()]),
        ErrorCode::Einval,
        Some(0),
        "outside the program",
    );
    assert_rejected(
        &reject(&[i(OP_JA32, 0, 0, 0, 100), exit()]),
        ErrorCode::Einval,
        Some(0),
        "outside the program",
    );
    let mut p = vec![i(OP_JA, 0, 0, 1, 0)];
    p.extend(lddw(0, 1));
    p.push(exit());
    assert_rejected(
        &reject(&p),
        ErrorCode::Einval,
        Some(0),
        "second slot of lddw",
    );
    assert_rejected(
        &reject(&[i(OP_CALL, 0, CALL_LOCAL, 0, 9), exit()]),
        ErrorCode::Einval,
        Some(0),
        "call target",
    );
    assert_rejected(
        &reject(&[mov64_imm(0, 0)]),
        ErrorCode::Einval,
        Some(0),
        "last instruction",
    );
    assert_rejected(
        &reject(&[mov64_imm(0, 0), i(CLASS_JMP | JMP_JEQ | SRC_K, 0, 0, -2, 0)]),
        ErrorCode::Einval,
        Some(1),
        "last instruction",
    );
    let mut p = vec![mov64_imm(0, 0), exit()];
    p.push(lddw(0, 1)[0]);
    assert_rejected(
        &reject(&p),
        ErrorCode::Einval,
        Some(2),
        "missing its second slot",
    );
}

#[test]
fn helpers_and_relocations() {
    assert_rejected(
        &reject(&[i(OP_CALL, 0, CALL_HELPER, 0, 9999), exit()]),
        ErrorCode::Einval,
        Some(0),
        "unknown helper 9999",
    );
    assert_rejected(
        &reject(&[i(OP_CALL, 0, CALL_KFUNC, 0, 1), exit()]),
        ErrorCode::Enotsupp,
        Some(0),
        "kfunc",
    );
    let mut p = lddw(1, 0).to_vec();
    p[0].src = PSEUDO_MAP_FD;
    p.push(exit());
    assert_rejected(&reject(&p), ErrorCode::Einval, Some(0), "relocation");
}
