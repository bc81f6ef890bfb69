//! Load-time relocation of map references, as the kernel's verifier does it before a program runs.
//! An `lddw` whose source field is a pseudo source becomes a plain `lddw` (source 0) of a value, so
//! the engines need nothing map-specific; what it was (map i, the value of map i + offset) stays
//! in the analysis' side table (`analysis::Aux::imm64`), for the passes that need to know:
//!
//! - `BPF_PSEUDO_MAP_FD` (1) / `BPF_PSEUDO_MAP_IDX` (5), imm = index into the program's map list:
//!   the map's handle (`maps::handle`). The second slot's imm must be 0.
//! - `BPF_PSEUDO_MAP_VALUE` (2) / `BPF_PSEUDO_MAP_IDX_VALUE` (6), imm = index, second slot's imm =
//!   offset: the address of the map's value plus the offset. Only single-element arrays (global
//!   data: `.data`, `.rodata`, `.bss`) can be addressed so, and the offset must lie inside the
//!   value, as in the kernel. Every such value becomes a region of every run, read-only when the
//!   map is `BPF_F_RDONLY_PROG`.
//!
//! Other pseudo sources are left for the caller to reject or handle.

use std::sync::Arc;

use crate::analysis::{Aux, Imm64, LogicalProgram};
use crate::error::{ErrorCode, LoadError};
use crate::isa::Insn;
use crate::memory::Region;

use super::def::flags::BPF_F_RDONLY_PROG;
use super::{handle, Map, RunMaps};

/// What every run of a relocated program needs from its maps.
#[derive(Clone, Debug, Default)]
pub struct ProgramMaps {
    maps: Option<Arc<[Arc<dyn Map>]>>,
    /// Global-data values the program addresses directly.
    pub regions: Vec<Region>,
}

impl ProgramMaps {
    /// The map table of a new run.
    pub fn run(&self) -> RunMaps {
        match &self.maps {
            Some(m) => RunMaps::new(m.clone()),
            None => RunMaps::default(),
        }
    }

    /// The shared map list that `RunMaps::is_for` compares (absent without maps).
    pub fn list(&self) -> Option<&Arc<[Arc<dyn Map>]>> {
        self.maps.as_ref()
    }

    pub fn maps(&self) -> &[Arc<dyn Map>] {
        self.maps.as_deref().unwrap_or(&[])
    }
}

fn set_imm64(insns: &mut [Insn], pc: usize, v: u64) {
    insns[pc].src = 0;
    insns[pc].imm = v as u32 as i32;
    insns[pc + 1].imm = (v >> 32) as u32 as i32;
}

/// Writes the map `lddw`s of validated `insns` against `maps` (the program's map list). Which
/// `lddw`s refer to maps, and how, is the analysis' side table (`aux`, one entry per logical
/// instruction of `program`): it keeps saying so after the constants are written.
pub fn relocate(
    insns: &mut [Insn],
    program: &LogicalProgram,
    aux: &[Aux],
    maps: &[Arc<dyn Map>],
) -> Result<ProgramMaps, LoadError> {
    let mut regions: Vec<Region> = Vec::new();
    // Starts of the values already in `regions`: one look-up per relocation, whatever the number
    // of maps.
    let mut added = std::collections::HashSet::new();
    for (i, a) in aux.iter().enumerate() {
        let (index, offset) = match a.imm64 {
            Imm64::Map { index } => (index, None),
            Imm64::MapValue { index, offset } => (index, Some(offset)),
            _ => continue,
        };
        let pc = program.slot(i);
        let Some(map) = maps.get(index as usize) else {
            return Err(LoadError::at(
                ErrorCode::Einval,
                pc,
                format!(
                    "map relocation: lddw refers to map {index}, but the program was given {} maps",
                    maps.len()
                ),
            ));
        };
        let Some(offset) = offset else {
            let second = insns[pc + 1].imm as u32;
            if second != 0 {
                return Err(LoadError::at(
                    ErrorCode::Einval,
                    pc,
                    format!("map relocation: lddw of map {index} must have 0 in its second slot, has {second}"),
                ));
            }
            set_imm64(insns, pc, handle(map));
            continue;
        };
        let Some((addr, len)) = map.direct_value() else {
            return Err(LoadError::at(
                ErrorCode::Einval,
                pc,
                format!(
                    "map value relocation: map {index} ({} map, {} entries) has no directly addressable value: \
                     only single-element arrays (global data) do",
                    map.map_type().name(),
                    map.common().def.max_entries
                ),
            ));
        };
        if offset as u64 >= len {
            return Err(LoadError::at(
                ErrorCode::Einval,
                pc,
                format!("map value relocation: offset {offset} is outside the {len}-byte value of map {index}"),
            ));
        }
        set_imm64(insns, pc, addr + offset as u64);
        if added.insert(addr) {
            let writable = map.common().def.flags & BPF_F_RDONLY_PROG == 0;
            regions.push(Region::new(addr, len, writable));
        }
    }
    Ok(ProgramMaps {
        maps: (!maps.is_empty()).then(|| maps.to_vec().into()),
        regions,
    })
}
