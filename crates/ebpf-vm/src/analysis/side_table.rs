//! The per-instruction side table (`Aux`, the kernel's `bpf_insn_aux_data`): one entry per logical
//! instruction for what later passes learn about it and must not lose. The analysis fills what the
//! bytes say (what each `lddw` loads); relocation fills in the map behind a map `lddw` instead of
//! erasing it into a constant; the context rewrite records which field a load touches; the
//! verifier records what it proved. Kept small: one entry is 20 bytes.

use crate::error::LoadError;
use crate::isa::opcodes::*;

use super::functions::func_pointer_target;
use super::program::LogicalProgram;

/// What an `lddw` loads, by its source field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Imm64 {
    /// src 0: the constant itself.
    #[default]
    Constant,
    /// src 1 (`BPF_PSEUDO_MAP_FD`) or 5 (`BPF_PSEUDO_MAP_IDX`): map `index` of the program's map
    /// list (the loader passes indices for both).
    Map { index: u32 },
    /// src 2 (`BPF_PSEUDO_MAP_VALUE`) or 6 (`BPF_PSEUDO_MAP_IDX_VALUE`): the address of map
    /// `index`'s value plus `offset` (global data).
    MapValue { index: u32, offset: u32 },
    /// src 3 (`BPF_PSEUDO_BTF_ID`): a kernel variable by BTF id (not supported by the engines).
    BtfId { id: u32 },
    /// src 4 (`BPF_PSEUDO_FUNC`): the address of the function starting at logical instruction
    /// `entry`.
    Func { entry: u32 },
}

/// What is known about one instruction beyond its bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Aux {
    /// For an `lddw`: what it loads (`Constant` for every other instruction).
    pub imm64: Imm64,
    /// For a load or store through the context pointer: the byte offset of the field in the
    /// program type's context struct, as the program wrote it (before any rewrite). Filled by the
    /// context rewrite (from the verifier's pointer types when the program was verified); `None`
    /// until then and for other instructions.
    pub ctx_field: Option<u16>,
    /// Filled by the verifier: every run's memory access here is in bounds, so an engine may leave
    /// out its run-time check.
    pub proved_in_bounds: bool,
    /// Filled by the verifier: a state-pruning point (the kernel's `prune_point`), where it
    /// compares the states it explores.
    pub prune_point: bool,
}

/// The side table as the bytes give it.
pub fn build(program: &LogicalProgram) -> Result<Vec<Aux>, LoadError> {
    let mut aux = vec![Aux::default(); program.len()];
    for (i, insn) in program.insns().iter().enumerate() {
        if !insn.is_lddw() {
            continue;
        }
        let low = insn.constant as u32;
        let high = (insn.constant as u64 >> 32) as u32;
        aux[i].imm64 = match insn.src {
            PSEUDO_MAP_FD | PSEUDO_MAP_IDX => Imm64::Map { index: low },
            PSEUDO_MAP_VALUE | PSEUDO_MAP_IDX_VALUE => Imm64::MapValue {
                index: low,
                offset: high,
            },
            PSEUDO_BTF_ID => Imm64::BtfId { id: low },
            PSEUDO_FUNC => match func_pointer_target(program, i)? {
                Some(entry) => Imm64::Func {
                    entry: entry as u32,
                },
                None => Imm64::Constant,
            },
            _ => Imm64::Constant,
        };
    }
    Ok(aux)
}
