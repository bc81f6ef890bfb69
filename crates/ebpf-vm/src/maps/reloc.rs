//! Load-time relocation of map references, as the kernel's verifier does it before a program runs.
//! An `lddw` whose source field is a pseudo source becomes a plain `lddw` (source 0) of a value, so
//! the engines need nothing map-specific:
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

use crate::error::{ErrorCode, LoadError};
use crate::isa::opcodes::{
    OP_LDDW, PSEUDO_MAP_FD, PSEUDO_MAP_IDX, PSEUDO_MAP_IDX_VALUE, PSEUDO_MAP_VALUE,
};
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

    pub fn maps(&self) -> &[Arc<dyn Map>] {
        self.maps.as_deref().unwrap_or(&[])
    }
}

fn set_imm64(insns: &mut [Insn], pc: usize, v: u64) {
    insns[pc].src = 0;
    insns[pc].imm = v as u32 as i32;
    insns[pc + 1].imm = (v >> 32) as u32 as i32;
}

/// Rewrites the map `lddw`s of validated `insns` against `maps` (the program's map list).
pub fn relocate(insns: &mut [Insn], maps: &[Arc<dyn Map>]) -> Result<ProgramMaps, LoadError> {
    let mut regions: Vec<Region> = Vec::new();
    // Starts of the values already in `regions`: one look-up per relocation, whatever the number
    // of maps.
    let mut added = std::collections::HashSet::new();
    let mut pc = 0;
    while pc < insns.len() {
        let insn = insns[pc];
        if insn.opcode != OP_LDDW {
            pc += 1;
            continue;
        }
        let src = insn.src;
        if ![
            PSEUDO_MAP_FD,
            PSEUDO_MAP_IDX,
            PSEUDO_MAP_VALUE,
            PSEUDO_MAP_IDX_VALUE,
        ]
        .contains(&src)
        {
            pc += 2;
            continue;
        }
        let index = insn.imm as u32;
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
        let second = insns[pc + 1].imm as u32;
        if src == PSEUDO_MAP_FD || src == PSEUDO_MAP_IDX {
            if second != 0 {
                return Err(LoadError::at(
                    ErrorCode::Einval,
                    pc,
                    format!("map relocation: lddw of map {index} must have 0 in its second slot, has {second}"),
                ));
            }
            set_imm64(insns, pc, handle(map));
        } else {
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
            if second as u64 >= len {
                return Err(LoadError::at(
                    ErrorCode::Einval,
                    pc,
                    format!("map value relocation: offset {second} is outside the {len}-byte value of map {index}"),
                ));
            }
            set_imm64(insns, pc, addr + second as u64);
            if added.insert(addr) {
                let writable = map.common().def.flags & BPF_F_RDONLY_PROG == 0;
                regions.push(Region::new(addr, len, writable));
            }
        }
        pc += 2;
    }
    Ok(ProgramMaps {
        maps: (!maps.is_empty()).then(|| maps.to_vec().into()),
        regions,
    })
}
