//! `lddw rX, <function>` (src = BPF_PSEUDO_FUNC = 4): the address of a function of the program, as
//! clang emits it for the callback argument of `bpf_loop`. The analysis has resolved each one
//! (`analysis::Imm64::Func`, checked as a local call's target is) and made its target a function
//! (`Function::address_taken`). At load time each becomes a plain `lddw` whose value is the
//! target's instruction slot; helpers that take a callback (`HelperContext::call_function`) accept
//! only values in the program's list of such targets, so a program cannot jump anywhere else by
//! passing a made-up number.

use crate::analysis::{Aux, Functions, Imm64, LogicalProgram};
use crate::isa::Insn;

/// Writes every function `lddw` of `insns` as its target's slot; returns the callback entries
/// (slots, sorted and distinct).
pub fn resolve_pseudo_funcs(
    insns: &mut [Insn],
    program: &LogicalProgram,
    aux: &[Aux],
    functions: &Functions,
) -> Vec<usize> {
    for (i, a) in aux.iter().enumerate() {
        if let Imm64::Func { entry } = a.imm64 {
            let pc = program.slot(i);
            insns[pc].src = 0;
            insns[pc].imm = program.slot(entry as usize) as i32;
        }
    }
    (functions.funcs.iter())
        .filter(|f| f.address_taken)
        .map(|f| program.slot(f.start))
        .collect()
}
