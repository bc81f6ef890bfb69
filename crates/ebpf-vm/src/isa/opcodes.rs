//! The instruction-set vocabulary of RFC 9669: classes, operation codes, sizes and modes.
//!
//! An opcode byte is `class | op | source` for arithmetic and jumps and `class | size | mode` for
//! loads and stores. The constants here are the building blocks; `table.rs` says which combinations
//! exist and what each field of such an instruction may hold.

// Instruction classes (low three bits).
pub const CLASS_LD: u8 = 0x00;
pub const CLASS_LDX: u8 = 0x01;
pub const CLASS_ST: u8 = 0x02;
pub const CLASS_STX: u8 = 0x03;
pub const CLASS_ALU: u8 = 0x04;
pub const CLASS_JMP: u8 = 0x05;
pub const CLASS_JMP32: u8 = 0x06;
pub const CLASS_ALU64: u8 = 0x07;

/// Source bit of arithmetic and jump instructions: `K` uses the immediate, `X` the src register.
pub const SRC_K: u8 = 0x00;
pub const SRC_X: u8 = 0x08;

// Arithmetic operations (high four bits).
pub const ALU_ADD: u8 = 0x00;
pub const ALU_SUB: u8 = 0x10;
pub const ALU_MUL: u8 = 0x20;
pub const ALU_DIV: u8 = 0x30;
pub const ALU_OR: u8 = 0x40;
pub const ALU_AND: u8 = 0x50;
pub const ALU_LSH: u8 = 0x60;
pub const ALU_RSH: u8 = 0x70;
pub const ALU_NEG: u8 = 0x80;
pub const ALU_MOD: u8 = 0x90;
pub const ALU_XOR: u8 = 0xa0;
pub const ALU_MOV: u8 = 0xb0;
pub const ALU_ARSH: u8 = 0xc0;
pub const ALU_END: u8 = 0xd0;

// Jump operations (high four bits).
pub const JMP_JA: u8 = 0x00;
pub const JMP_JEQ: u8 = 0x10;
pub const JMP_JGT: u8 = 0x20;
pub const JMP_JGE: u8 = 0x30;
pub const JMP_JSET: u8 = 0x40;
pub const JMP_JNE: u8 = 0x50;
pub const JMP_JSGT: u8 = 0x60;
pub const JMP_JSGE: u8 = 0x70;
pub const JMP_CALL: u8 = 0x80;
pub const JMP_EXIT: u8 = 0x90;
pub const JMP_JLT: u8 = 0xa0;
pub const JMP_JLE: u8 = 0xb0;
pub const JMP_JSLT: u8 = 0xc0;
pub const JMP_JSLE: u8 = 0xd0;

// Access sizes of loads and stores (bits 3-4).
pub const SIZE_W: u8 = 0x00;
pub const SIZE_H: u8 = 0x08;
pub const SIZE_B: u8 = 0x10;
pub const SIZE_DW: u8 = 0x18;

// Access modes (high three bits).
pub const MODE_IMM: u8 = 0x00;
pub const MODE_ABS: u8 = 0x20;
pub const MODE_IND: u8 = 0x40;
pub const MODE_MEM: u8 = 0x60;
pub const MODE_MEMSX: u8 = 0x80;
pub const MODE_ATOMIC: u8 = 0xc0;

// Atomic operations, carried in the immediate of `STX | ATOMIC` instructions.
pub const ATOMIC_FETCH: i32 = 0x01;
pub const ATOMIC_ADD: i32 = 0x00;
pub const ATOMIC_OR: i32 = 0x40;
pub const ATOMIC_AND: i32 = 0x50;
pub const ATOMIC_XOR: i32 = 0xa0;
pub const ATOMIC_XCHG: i32 = 0xe0 | ATOMIC_FETCH;
pub const ATOMIC_CMPXCHG: i32 = 0xf0 | ATOMIC_FETCH;
/// Load-acquire (`dst = load_acquire(src + off)`) and store-release (`store_release(dst + off,
/// src)`): plain-sized atomic accesses (any of the four sizes; cpu v4, Linux 6.15).
pub const ATOMIC_LOAD_ACQ: i32 = 0x100;
pub const ATOMIC_STORE_REL: i32 = 0x110;

// Source values of `lddw` (pseudo sources the loader resolves; 0 is a plain 64-bit immediate).
pub const PSEUDO_IMM64: u8 = 0;
pub const PSEUDO_MAP_FD: u8 = 1;
pub const PSEUDO_MAP_VALUE: u8 = 2;
pub const PSEUDO_BTF_ID: u8 = 3;
pub const PSEUDO_FUNC: u8 = 4;
pub const PSEUDO_MAP_IDX: u8 = 5;
pub const PSEUDO_MAP_IDX_VALUE: u8 = 6;

// Source values of `call`.
pub const CALL_HELPER: u8 = 0;
pub const CALL_LOCAL: u8 = 1;
pub const CALL_KFUNC: u8 = 2;

// Whole opcodes that are used by name elsewhere.
pub const OP_LDDW: u8 = CLASS_LD | MODE_IMM | SIZE_DW;
pub const OP_CALL: u8 = CLASS_JMP | JMP_CALL;
pub const OP_CALLX: u8 = CLASS_JMP | JMP_CALL | SRC_X;
pub const OP_EXIT: u8 = CLASS_JMP | JMP_EXIT;
pub const OP_JA: u8 = CLASS_JMP | JMP_JA;
pub const OP_JA32: u8 = CLASS_JMP32 | JMP_JA;

/// Number of eBPF registers: r0-r9 general purpose, r10 the read-only frame pointer.
pub const NUM_REGS: usize = 11;
/// The frame pointer register.
pub const FP: u8 = 10;

/// Size in bytes of the access encoded in a load/store opcode.
pub const fn access_size(opcode: u8) -> u32 {
    match opcode & 0x18 {
        SIZE_B => 1,
        SIZE_H => 2,
        SIZE_W => 4,
        _ => 8,
    }
}

/// What an `STX | ATOMIC` instruction is, from its opcode and immediate: a load-acquire, a
/// store-release, or a read-modify-write (anything else, including any other class).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AtomicAccess {
    LoadAcquire,
    StoreRelease,
    ReadModifyWrite,
}

/// See [`AtomicAccess`]; `None` when the instruction is not an `STX | ATOMIC`.
pub const fn atomic_access(opcode: u8, imm: i32) -> Option<AtomicAccess> {
    if class(opcode) != CLASS_STX || opcode & 0xe0 != MODE_ATOMIC {
        return None;
    }
    Some(match imm {
        ATOMIC_LOAD_ACQ => AtomicAccess::LoadAcquire,
        ATOMIC_STORE_REL => AtomicAccess::StoreRelease,
        _ => AtomicAccess::ReadModifyWrite,
    })
}

/// Whether the instruction is a load-acquire: it reads memory through `src` and writes `dst`,
/// as an `LDX | MEM` of its size does.
pub const fn is_load_acquire(opcode: u8, imm: i32) -> bool {
    matches!(atomic_access(opcode, imm), Some(AtomicAccess::LoadAcquire))
}

/// Whether the instruction is a store-release: it stores `src` through `dst`, as an
/// `STX | MEM` of its size does.
pub const fn is_store_release(opcode: u8, imm: i32) -> bool {
    matches!(atomic_access(opcode, imm), Some(AtomicAccess::StoreRelease))
}

/// The class bits of an opcode.
pub const fn class(opcode: u8) -> u8 {
    opcode & 0x07
}
