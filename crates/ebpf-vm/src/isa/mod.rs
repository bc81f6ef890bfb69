//! The instruction set (RFC 9669 at cpu v4): encoding, vocabulary, per-opcode table, validation.

pub mod insn;
pub mod opcodes;
pub mod table;
pub mod validate;

pub use insn::{decode_all, encode_all, jump_target, lddw_imm, Insn, INSN_SIZE};
pub use validate::{validate, validate_with, ReservedFields, MAX_INSNS};
