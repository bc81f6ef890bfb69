//! Load-time validation: every field of every instruction against the opcode table, then the
//! control-flow facts both engines rely on (targets in bounds, never into the second slot of
//! `lddw`, no falling off the end). An engine may assume anything this accepts is well formed.

use super::insn::{decode_all, jump_target, Insn, INSN_SIZE};
use super::opcodes::*;
use super::table::{lookup, Kind, OpSpec, RegRule, ValueRule};
use crate::error::{ErrorCode, LoadError};

/// The most instruction slots a program may have (the kernel's limit for privileged loads).
pub const MAX_INSNS: usize = 1_000_000;

/// How the reserved fields of `exit` are validated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReservedFields {
    /// RFC 9669: every reserved field of every instruction must be zero (checked mode, where no
    /// verifier looks at the program again).
    #[default]
    Strict,
    /// As Linux 6.18 (verified mode): the offset of `exit` is never looked at, and its registers
    /// and immediate are left to the verifier, which refuses them on the exits its walk reaches
    /// ("BPF_EXIT uses reserved fields"); an exit on a path no run takes may hold anything.
    /// Both engines treat every `exit` by its opcode alone.
    Kernel,
}

/// What `exit` may hold under `ReservedFields::Kernel`.
const EXIT_AS_KERNEL: OpSpec = OpSpec {
    kind: Kind::Exit,
    dst: RegRule::Unchecked,
    src: RegRule::Unchecked,
    off: ValueRule::Any,
    imm: ValueRule::Any,
};

#[cold]
fn fail(pc: usize, message: String) -> LoadError {
    LoadError::at(ErrorCode::Einval, pc, message)
}

// Inlined: they run twice per instruction on every load, and nearly always pass.
#[inline(always)]
fn check_reg(pc: usize, field: &str, value: u8, rule: RegRule) -> Result<(), LoadError> {
    match rule {
        RegRule::NoReg if value != 0 => Err(fail(
            pc,
            format!("reserved field {field} must be zero, found {value}"),
        )),
        RegRule::Read | RegRule::Write if value as usize >= NUM_REGS => Err(fail(
            pc,
            format!("invalid {field} register r{value} (registers are r0-r10)"),
        )),
        RegRule::Write if value == FP => Err(fail(
            pc,
            format!("{field} register r10 is read-only (frame pointer)"),
        )),
        RegRule::Pseudo(allowed) if !allowed.contains(&value) => Err(fail(
            pc,
            format!("invalid {field} field value {value} for this opcode (allowed: {allowed:?})"),
        )),
        _ => Ok(()),
    }
}

#[inline(always)]
fn check_value(pc: usize, field: &str, value: i32, rule: ValueRule) -> Result<(), LoadError> {
    match rule {
        ValueRule::Zero if value != 0 => Err(fail(
            pc,
            format!("reserved field {field} must be zero, found {value}"),
        )),
        ValueRule::OneOf(allowed) if !allowed.contains(&value) => Err(fail(
            pc,
            format!("invalid {field} value {value} for this opcode (allowed: {allowed:?})"),
        )),
        _ => Ok(()),
    }
}

/// Checks a jump or local-call target (`jump_target`).
fn check_target(
    pc: usize,
    delta: i64,
    len: usize,
    second_slot: &[bool],
    what: &str,
) -> Result<usize, LoadError> {
    let target = jump_target(pc, delta);
    if target < 0 || target >= len as i64 {
        return Err(fail(
            pc,
            format!("{what} target {target} is outside the program (0..{len})"),
        ));
    }
    let target = target as usize;
    if second_slot[target] {
        return Err(fail(
            pc,
            format!("{what} target {target} is the second slot of lddw"),
        ));
    }
    Ok(target)
}

/// Decodes and validates bytecode with every reserved field checked (`ReservedFields::Strict`).
/// `helper_exists` answers whether a helper id is registered.
pub fn validate(bytes: &[u8], helper_exists: &dyn Fn(u32) -> bool) -> Result<Vec<Insn>, LoadError> {
    validate_with(bytes, helper_exists, ReservedFields::Strict)
}

/// Decodes and validates bytecode, with `fields` saying how `exit`'s reserved fields are checked.
pub fn validate_with(
    bytes: &[u8],
    helper_exists: &dyn Fn(u32) -> bool,
    fields: ReservedFields,
) -> Result<Vec<Insn>, LoadError> {
    if bytes.is_empty() {
        return Err(LoadError::new(ErrorCode::Einval, "program is empty"));
    }
    if !bytes.len().is_multiple_of(INSN_SIZE) {
        return Err(LoadError::at(
            ErrorCode::Einval,
            bytes.len() / INSN_SIZE,
            format!(
                "bytecode length {} is not a multiple of 8: truncated instruction",
                bytes.len()
            ),
        ));
    }
    let insns = decode_all(bytes);
    if insns.len() > MAX_INSNS {
        return Err(LoadError::new(
            ErrorCode::E2big,
            format!(
                "program has {} instructions, more than the limit of {MAX_INSNS}",
                insns.len()
            ),
        ));
    }
    let len = insns.len();

    // First pass: fields, and which slots are the second half of an lddw.
    let mut second_slot = vec![false; len];
    let mut pc = 0;
    while pc < len {
        let insn = &insns[pc];
        let Some(spec) = lookup(insn.opcode) else {
            return Err(fail(pc, format!("unknown opcode 0x{:02x}", insn.opcode)));
        };
        let spec = match spec.kind {
            Kind::Exit if fields == ReservedFields::Kernel => &EXIT_AS_KERNEL,
            _ => spec,
        };
        check_reg(pc, "dst", insn.dst, spec.dst)?;
        check_reg(pc, "src", insn.src, spec.src)?;
        check_value(pc, "offset", insn.off as i32, spec.off)?;
        check_value(pc, "immediate", insn.imm, spec.imm)?;
        match spec.kind {
            Kind::Atomic if insn.imm & ATOMIC_FETCH != 0 && insn.src == FP => {
                return Err(fail(
                    pc,
                    "atomic fetch would write r10, which is read-only".into(),
                ));
            }
            Kind::Atomic if insn.imm == ATOMIC_LOAD_ACQ && insn.dst == FP => {
                return Err(fail(
                    pc,
                    "dst register r10 is read-only (frame pointer)".into(),
                ));
            }
            Kind::Atomic
                if access_size(insn.opcode) < 4
                    && !matches!(insn.imm, ATOMIC_LOAD_ACQ | ATOMIC_STORE_REL) =>
            {
                // The kernel's words (`check_atomic_rmw`).
                return Err(fail(pc, "invalid atomic operand size".into()));
            }
            Kind::Lddw => {
                let Some(next) = insns.get(pc + 1) else {
                    return Err(fail(pc, "lddw is missing its second slot".into()));
                };
                if *next != Insn::new(0, 0, 0, 0, next.imm) {
                    return Err(fail(
                        pc + 1,
                        "second slot of lddw must have opcode, registers and offset zero".into(),
                    ));
                }
                second_slot[pc + 1] = true;
                pc += 1;
            }
            _ => {}
        }
        pc += 1;
    }

    // Second pass: targets and helpers.
    for (pc, insn) in insns.iter().enumerate() {
        if second_slot[pc] {
            continue;
        }
        let spec = lookup(insn.opcode).expect("checked above");
        match spec.kind {
            Kind::Jump => {
                check_target(pc, insn.off as i64, len, &second_slot, "jump")?;
            }
            Kind::Jump32Imm => {
                check_target(pc, insn.imm as i64, len, &second_slot, "jump")?;
            }
            Kind::Call => match insn.src {
                CALL_HELPER if !helper_exists(insn.imm as u32) => {
                    return Err(fail(pc, format!("unknown helper {}", insn.imm as u32)));
                }
                CALL_LOCAL => {
                    check_target(pc, insn.imm as i64, len, &second_slot, "call")?;
                }
                CALL_KFUNC => {
                    return Err(LoadError::at(
                        ErrorCode::Enotsupp,
                        pc,
                        format!("kfunc call (BTF id {}) is not supported", insn.imm),
                    ));
                }
                _ => {}
            },
            _ => {}
        }
    }

    // The last instruction must not let control run off the end.
    let last = len - 1;
    let last_insn = &insns[last];
    let ends_flow = !second_slot[last]
        && (last_insn.opcode == OP_EXIT
            || last_insn.opcode == OP_JA
            || last_insn.opcode == OP_JA32);
    if !ends_flow {
        return Err(fail(
            last,
            "last instruction must be exit or an unconditional jump".into(),
        ));
    }
    Ok(insns)
}
