//! The verified mode of a load: the verifier (`verifier::verify`) run on the program's analysis
//! with what the load knows (its maps, its helpers' names and prototypes, its license, the
//! context its type gives r1), and its rejection as a `LoadError` that carries the whole log.
//!
//! The kernel's convention for the log is kept: at log level 0 an accepted program has no log;
//! a rejected one is verified again at level 1, as libbpf reloads a failed program with a log
//! buffer, so that a rejection always comes with the log that explains it.

mod source_lines;

use std::sync::Arc;
use std::time::Instant;

pub use source_lines::SourceLine;

use crate::analysis::Analysis;
use crate::error::LoadError;
use crate::helpers::{HelperPrototype, HelperTable};
use crate::maps::def::flags::BPF_F_INNER_MAP;
use crate::maps::{Map, MapDef};
use crate::verifier::{self, GlobalFunction, MapRef, ProgramKind, VerifyOptions};

/// What verification found of an accepted program.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifierReport {
    /// Instructions the walk processed over all paths (the kernel's `processed N insns`).
    pub processed_insns: u64,
    /// States kept for pruning over the verification, the most kept at once, and the most at one
    /// instruction (the kernel's `total_states`, `peak_states`, `max_states_per_insn`).
    pub total_states: u32,
    pub peak_states: u32,
    pub max_states_per_insn: u32,
    /// Per function (main first, in instruction order), the bytes of stack it uses, a multiple
    /// of 8 (the kernel's `stack depth A+B+...`).
    pub stack_depth: Vec<u32>,
    /// Wall time of the verification, in nanoseconds.
    pub time_ns: u64,
    /// The log at the level asked for (empty at level 0).
    pub log: String,
    /// Loads through map pointers that the loader turns into moves of constants: instruction
    /// slot and value (`verifier::map_fields`).
    pub map_field_loads: Vec<(usize, u64)>,
    /// By instruction slot: a load or store the proof covers, which the engines run without
    /// a check (`verifier::env::Proved`).
    pub proved: Vec<bool>,
    /// The range r0 lies in when the program exits, for every run: asked for with
    /// `ProgramOptions::exit_range`, or a type with a return range (`Verified::exit_r0`).
    pub exit_r0: Option<crate::verifier::ExitRange>,
    /// By instruction slot: whether a load or store goes through the context pointer, as the
    /// verifier proved it (`verifier::env::Verified::ctx_bases`).
    pub ctx_bases: Vec<crate::context::rewrite::CtxBase>,
    /// By instruction slot: as `proved`, the loads and stores through the packet too, proved
    /// against `data_end` (`verifier::env::Proved::direct_or_packet`); XDP's engines run them
    /// without a check (`context::xdp::direct_accesses`).
    pub packet_proved: Vec<bool>,
}

/// The highest log level (2: the state after every instruction).
pub const MAX_LOG_LEVEL: u32 = 2;

/// The kernel's `license_is_gpl_compatible` (include/linux/license.h): the license strings
/// under which GPL-only helpers may be called.
pub fn license_is_gpl_compatible(license: &str) -> bool {
    matches!(
        license,
        "GPL"
            | "GPL v2"
            | "GPL and additional rights"
            | "Dual BSD/GPL"
            | "Dual MIT/GPL"
            | "Dual MPL/GPL"
    )
}

/// What the verifier is told about one load.
pub struct LoadFacts<'a> {
    pub kind: ProgramKind,
    /// The program's maps, in the order its map `lddw`s index them.
    pub maps: &'a [Arc<dyn Map>],
    /// Every helper the program may call (the program type's and the embedder's).
    pub helpers: &'a HelperTable,
    pub gpl_compatible: bool,
    pub log_level: u32,
    /// BTF line info (any order): the log's `; source @ file.c:N` comments.
    pub source_lines: &'a [SourceLine],
    /// The global functions (BTF linkage global) and their prototypes.
    pub globals: &'a [GlobalFunction],
    /// The unprivileged rules (`VerifyOptions::unprivileged`).
    pub unprivileged: bool,
    /// Report r0's range at exit (`VerifyOptions::exit_range`).
    pub exit_range: bool,
}

/// The verifier's facts of map `index`, defined by `def` (no id: the caller knows whether it is
/// one map or a template).
fn map_ref(index: u32, def: &MapDef) -> MapRef {
    MapRef {
        index,
        name: def.name.clone(),
        map_type: def.map_type as u32,
        key_size: def.key_size,
        value_size: def.value_size,
        max_entries: def.max_entries,
        flags: def.flags,
        map_extra: def.map_extra,
        id: None,
        // Only a lock's offset is kept from a map's BTF: a map with one had BTF (one without
        // may also have had it; only the wording of a lock misuse differs).
        btf: def.spin_lock_off.is_some(),
        spin_lock: def.spin_lock_off,
        inner: None,
        max_entries_vary: false,
    }
}

/// Verifies `analysis` with `facts`; a rejection is a `LoadError` with the verifier's errno,
/// the rejected instruction's slot, its kernel-style message and the whole log.
pub fn verify_load(
    analysis: &Analysis,
    facts: &LoadFacts<'_>,
) -> Result<VerifierReport, LoadError> {
    let maps: Vec<MapRef> = (facts.maps.iter().enumerate())
        .map(|(index, m)| {
            let def = &m.common().def;
            let mut map = MapRef {
                id: Some(m.common().id),
                ..map_ref(index as u32, def)
            };
            // The inner template carries the outer map's index and no name, as the kernel's
            // `inner_map_meta` has none.
            map.inner = def.inner.as_deref().map(|inner| {
                Box::new(MapRef {
                    name: String::new(),
                    max_entries_vary: inner.flags & BPF_F_INNER_MAP != 0,
                    ..map_ref(index as u32, inner)
                })
            });
            map
        })
        .collect();
    // A helper the engine offers only to other program types (the validator let it through in
    // verified mode): its prototype without this type, so that the verifier refuses it as the
    // kernel refuses a helper of another type ("program of this type cannot use helper").
    let elsewhere = |id: i32| {
        let t = facts.kind.kernel_type()?;
        crate::context::engine_helper(id as u32).map(|h| (h, t))
    };
    let helper_name = |id: i32| {
        (facts.helpers.get(id as u32).map(|h| h.name.clone()))
            .or_else(|| elsewhere(id).map(|(h, _)| h.name.clone()))
    };
    let prototype = |id: i32| {
        facts
            .helpers
            .get(id as u32)
            .map(|h| h.prototype)
            .or_else(|| {
                elsewhere(id).map(|(h, t)| HelperPrototype {
                    prog_types: h.prototype.prog_types.without(t),
                    ..h.prototype
                })
            })
    };
    let run = |log_level: u32| {
        let options = VerifyOptions {
            kind: facts.kind,
            maps: &maps,
            helper_name: &helper_name,
            prototype: &prototype,
            gpl_compatible: facts.gpl_compatible,
            log_level,
            globals: facts.globals,
            unprivileged: facts.unprivileged,
            exit_range: facts.exit_range,
        };
        verifier::verify(analysis, &options)
    };
    let start = Instant::now();
    let outcome = run(facts.log_level);
    let time_ns = start.elapsed().as_nanos() as u64;
    let mut sorted = std::borrow::Cow::Borrowed(facts.source_lines);
    if !sorted.is_sorted_by_key(|l| l.slot) {
        sorted.to_mut().sort_by_key(|l| l.slot);
    }
    match outcome {
        Ok(v) => Ok(VerifierReport {
            processed_insns: v.processed,
            total_states: v.stats.total_states,
            peak_states: v.stats.peak_states,
            max_states_per_insn: v.stats.max_states_per_insn,
            stack_depth: v.stack_depth,
            time_ns,
            log: source_lines::annotate(&v.log, &sorted),
            map_field_loads: v.map_field_loads,
            proved: v.proved,
            exit_r0: v.exit_r0,
            ctx_bases: v.ctx_bases,
            packet_proved: v.packet_proved,
        }),
        Err(rejection) => {
            // Level 0 kept no log: walk again with one (the verdict cannot change).
            let rejection = match (facts.log_level, run(1)) {
                (0, Err(logged)) => logged,
                _ => rejection,
            };
            Err(LoadError {
                code: rejection.code,
                insn: Some(rejection.slot),
                message: rejection.message,
                log: Some(source_lines::annotate(&rejection.log, &sorted)),
            })
        }
    }
}
