//! `lddw rX, <function>` (src = BPF_PSEUDO_FUNC = 4): the address of a function of the program, as
//! clang emits it for the callback argument of `bpf_loop`. The target is `pc + imm + 1`, as for a
//! local call. At load time each one becomes a plain `lddw` whose value is the target's
//! instruction index; helpers that take a callback (`HelperContext::call_function`) accept only
//! values in the program's list of such targets, so a program cannot jump anywhere else by passing
//! a made-up number.

use crate::error::{ErrorCode, LoadError};
use crate::isa::opcodes::{OP_LDDW, PSEUDO_FUNC};
use crate::isa::Insn;

/// Resolves every function `lddw` in place; returns the sorted, distinct callback entries.
pub fn resolve_pseudo_funcs(insns: &mut [Insn]) -> Result<Vec<usize>, LoadError> {
    let n = insns.len();
    // Second slots of `lddw`: no function may start there.
    let mut second = vec![false; n];
    let mut pc = 0;
    while pc < n {
        if insns[pc].opcode == OP_LDDW {
            if pc + 1 < n {
                second[pc + 1] = true;
            }
            pc += 2;
        } else {
            pc += 1;
        }
    }
    let mut targets = Vec::new();
    for pc in 0..n {
        let insn = insns[pc];
        if insn.opcode != OP_LDDW || insn.src != PSEUDO_FUNC || second[pc] {
            continue;
        }
        let target = pc as i64 + 1 + insn.imm as i64;
        if target < 0 || target >= n as i64 || second[target as usize] {
            return Err(LoadError::at(
                ErrorCode::Einval,
                pc,
                format!("function pointer to instruction {target}, which does not start an instruction of the program"),
            ));
        }
        if pc + 1 < n && insns[pc + 1].imm != 0 {
            return Err(LoadError::at(
                ErrorCode::Einval,
                pc,
                "function pointer lddw with a non-zero upper half",
            ));
        }
        insns[pc].src = 0;
        insns[pc].imm = target as i32;
        targets.push(target as usize);
    }
    targets.sort_unstable();
    targets.dedup();
    Ok(targets)
}
