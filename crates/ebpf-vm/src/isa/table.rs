//! The per-opcode table: which of the 256 opcode values exist and what each field of such an
//! instruction may hold. Validation (`validate.rs`) is a walk over the program against this table,
//! in the manner of uBPF's validator: one row per opcode rather than hand-written checks per case.

use super::opcodes::*;

/// What a register field may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegRule {
    /// The field is reserved and must be zero.
    NoReg,
    /// A register that is read (r0-r10).
    Read,
    /// A register that is written (r0-r9: r10 is read-only).
    Write,
    /// Not a register: a small enumerated value (`lddw` and `call` pseudo sources).
    Pseudo(&'static [u8]),
    /// Not looked at by validation (any of the 16 values): the verifier checks it on the
    /// instructions its walk reaches (`exit` in verified mode, `validate::ReservedFields`).
    Unchecked,
}

/// What the 16-bit offset or 32-bit immediate may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueRule {
    Zero,
    Any,
    OneOf(&'static [i32]),
}

/// How the instruction uses its operands; the engines dispatch on the opcode itself, this is for
/// validation and control-flow analysis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Alu,
    /// Conditional or unconditional jump with a 16-bit offset (`off`).
    Jump,
    /// `ja32` / `gotol`: unconditional jump whose offset is the 32-bit immediate.
    Jump32Imm,
    Call,
    CallX,
    Exit,
    Lddw,
    /// Legacy packet loads (`LD_ABS`, `LD_IND`).
    LoadPacket,
    Load,
    Store,
    Atomic,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpSpec {
    pub kind: Kind,
    pub dst: RegRule,
    pub src: RegRule,
    pub off: ValueRule,
    pub imm: ValueRule,
}

const fn spec(kind: Kind, dst: RegRule, src: RegRule, off: ValueRule, imm: ValueRule) -> OpSpec {
    OpSpec {
        kind,
        dst,
        src,
        off,
        imm,
    }
}

const SIGNED_DIVISION: &[i32] = &[0, 1];
const MOVSX64_WIDTHS: &[i32] = &[0, 8, 16, 32];
const MOVSX32_WIDTHS: &[i32] = &[0, 8, 16];
const BYTE_ORDER_WIDTHS: &[i32] = &[16, 32, 64];
const LDDW_SOURCES: &[u8] = &[
    PSEUDO_IMM64,
    PSEUDO_MAP_FD,
    PSEUDO_MAP_VALUE,
    PSEUDO_BTF_ID,
    PSEUDO_FUNC,
    PSEUDO_MAP_IDX,
    PSEUDO_MAP_IDX_VALUE,
];
const CALL_SOURCES: &[u8] = &[CALL_HELPER, CALL_LOCAL, CALL_KFUNC];
pub const ATOMIC_OPS: &[i32] = &[
    ATOMIC_ADD,
    ATOMIC_ADD | ATOMIC_FETCH,
    ATOMIC_OR,
    ATOMIC_OR | ATOMIC_FETCH,
    ATOMIC_AND,
    ATOMIC_AND | ATOMIC_FETCH,
    ATOMIC_XOR,
    ATOMIC_XOR | ATOMIC_FETCH,
    ATOMIC_XCHG,
    ATOMIC_CMPXCHG,
    ATOMIC_LOAD_ACQ,
    ATOMIC_STORE_REL,
];

const ALU_OPS: [u8; 14] = [
    ALU_ADD, ALU_SUB, ALU_MUL, ALU_DIV, ALU_OR, ALU_AND, ALU_LSH, ALU_RSH, ALU_NEG, ALU_MOD,
    ALU_XOR, ALU_MOV, ALU_ARSH, ALU_END,
];
const CONDITIONAL_JUMPS: [u8; 11] = [
    JMP_JEQ, JMP_JGT, JMP_JGE, JMP_JSET, JMP_JNE, JMP_JSGT, JMP_JSGE, JMP_JLT, JMP_JLE, JMP_JSLT,
    JMP_JSLE,
];
const SIZES: [u8; 4] = [SIZE_W, SIZE_H, SIZE_B, SIZE_DW];

fn alu_row(class: u8, op: u8, source: u8) -> Option<OpSpec> {
    use RegRule::*;
    use ValueRule::*;
    let wide = class == CLASS_ALU64;
    let reg = source == SRC_X;
    let (src, imm) = if reg { (Read, Zero) } else { (NoReg, Any) };
    Some(match op {
        ALU_NEG => {
            if reg {
                return None;
            }
            spec(Kind::Alu, Write, NoReg, Zero, Zero)
        }
        ALU_END => {
            // ALU64 | END | X does not exist; ALU64 | END | K is the unconditional bswap.
            if wide && reg {
                return None;
            }
            spec(Kind::Alu, Write, NoReg, Zero, OneOf(BYTE_ORDER_WIDTHS))
        }
        ALU_DIV | ALU_MOD => spec(Kind::Alu, Write, src, OneOf(SIGNED_DIVISION), imm),
        ALU_MOV if reg => {
            let widths = if wide { MOVSX64_WIDTHS } else { MOVSX32_WIDTHS };
            spec(Kind::Alu, Write, Read, OneOf(widths), Zero)
        }
        _ => spec(Kind::Alu, Write, src, Zero, imm),
    })
}

fn jump_row(class: u8, op: u8, source: u8) -> Option<OpSpec> {
    use RegRule::*;
    use ValueRule::*;
    let reg = source == SRC_X;
    let long = class == CLASS_JMP32;
    Some(match op {
        JMP_JA if reg => return None,
        JMP_JA if long => spec(Kind::Jump32Imm, NoReg, NoReg, Zero, Any),
        JMP_JA => spec(Kind::Jump, NoReg, NoReg, Any, Zero),
        JMP_CALL if long => return None,
        JMP_CALL if reg => spec(Kind::CallX, Read, NoReg, Zero, Zero),
        JMP_CALL => spec(Kind::Call, NoReg, Pseudo(CALL_SOURCES), Zero, Any),
        JMP_EXIT if long || reg => return None,
        JMP_EXIT => spec(Kind::Exit, NoReg, NoReg, Zero, Zero),
        _ if reg => spec(Kind::Jump, Read, Read, Any, Zero),
        _ => spec(Kind::Jump, Read, NoReg, Any, Any),
    })
}

fn memory_row(class: u8, size: u8, mode: u8) -> Option<OpSpec> {
    use RegRule::*;
    use ValueRule::*;
    Some(match (class, mode) {
        (CLASS_LD, MODE_IMM) if size == SIZE_DW => {
            spec(Kind::Lddw, Write, Pseudo(LDDW_SOURCES), Zero, Any)
        }
        (CLASS_LD, MODE_ABS) if size != SIZE_DW => spec(Kind::LoadPacket, NoReg, NoReg, Zero, Any),
        (CLASS_LD, MODE_IND) if size != SIZE_DW => spec(Kind::LoadPacket, NoReg, Read, Zero, Any),
        (CLASS_LDX, MODE_MEM) => spec(Kind::Load, Write, Read, Any, Zero),
        (CLASS_LDX, MODE_MEMSX) if size != SIZE_DW => spec(Kind::Load, Write, Read, Any, Zero),
        (CLASS_ST, MODE_MEM) => spec(Kind::Store, Read, NoReg, Any, Any),
        (CLASS_STX, MODE_MEM) => spec(Kind::Store, Read, Read, Any, Zero),
        // Every size: byte and half-word only for load-acquire and store-release, which
        // validation checks against the immediate.
        (CLASS_STX, MODE_ATOMIC) => spec(Kind::Atomic, Read, Read, Any, OneOf(ATOMIC_OPS)),
        _ => return None,
    })
}

fn row(opcode: u8) -> Option<OpSpec> {
    let class = class(opcode);
    match class {
        CLASS_ALU | CLASS_ALU64 => {
            let op = opcode & 0xf0;
            ALU_OPS
                .contains(&op)
                .then(|| alu_row(class, op, opcode & 0x08))
                .flatten()
        }
        CLASS_JMP | CLASS_JMP32 => {
            let op = opcode & 0xf0;
            (op == JMP_JA || op == JMP_CALL || op == JMP_EXIT || CONDITIONAL_JUMPS.contains(&op))
                .then(|| jump_row(class, op, opcode & 0x08))
                .flatten()
        }
        _ => {
            let size = opcode & 0x18;
            debug_assert!(SIZES.contains(&size));
            memory_row(class, size, opcode & 0xe0)
        }
    }
}

/// The table, built once: index by opcode byte.
pub fn table() -> &'static [Option<OpSpec>; 256] {
    static TABLE: std::sync::OnceLock<[Option<OpSpec>; 256]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| std::array::from_fn(|op| row(op as u8)))
}

/// The row for one opcode, `None` when the opcode does not exist.
pub fn lookup(opcode: u8) -> Option<&'static OpSpec> {
    table()[opcode as usize].as_ref()
}
