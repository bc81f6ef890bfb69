//! Helper functions, by the kernel's numbering. A helper receives r1-r5 and the run's context (its
//! memory regions, so that pointer arguments are checked like any other access) and returns r0 or
//! an error that stops the run. Both engines call helpers through the same `HelperTable`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::memory::Regions;

/// What a helper may see and change of the run that called it.
pub struct HelperContext<'a> {
    pub regions: &'a mut Regions,
    /// The maps the run may use, and what it must keep alive (see `maps::run`).
    pub maps: &'a mut crate::maps::RunMaps,
    /// The program-type side of the run: context, packet, task identity, trace/perf output,
    /// callbacks, tail calls, the held spin lock (see `context::run_state`).
    pub state: &'a mut crate::context::RunState,
    /// The calling frame, for helpers that call back into the program (`call_function`).
    pub caller: CallerInfo<'a>,
}

/// What `HelperContext::call_function` needs of the calling frame to run a callback as a nested
/// frame (see `callbacks.rs` for the contract with the engines). Filled by
/// `interpreter::call_helper`, the single path through which both engines call helpers.
#[derive(Clone, Copy)]
pub struct CallerInfo<'a> {
    pub helpers: &'a HelperTable,
    /// The packet of the run (`RunEnv::packet`).
    pub packet: (u64, u64),
    /// The calling frame's budget (`RunEnv::budget`).
    pub budget: u64,
    /// Instructions the calling frame has executed, the call included.
    pub insn_base: u64,
    /// Index of the call instruction.
    pub pc: usize,
    /// How the engine runs a function of the program; `None` if it cannot.
    pub runner: Option<&'a callbacks::FunctionRunner<'a>>,
}

/// A helper failed in a way the program cannot recover from (for example a pointer argument
/// outside the run's memory). The run stops with a `helper_error` trap carrying the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelperError(pub String);

impl fmt::Display for HelperError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub type HelperFn =
    dyn Fn(&mut HelperContext<'_>, [u64; 5]) -> Result<u64, HelperError> + Send + Sync;

#[derive(Clone)]
pub struct Helper {
    pub id: u32,
    pub name: String,
    pub func: Arc<HelperFn>,
}

impl fmt::Debug for Helper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Helper({} {})", self.id, self.name)
    }
}

/// Helpers known to a program, by id.
#[derive(Clone, Debug, Default)]
pub struct HelperTable {
    by_id: BTreeMap<u32, Helper>,
}

impl HelperTable {
    pub fn new() -> Self {
        HelperTable::default()
    }

    /// The helpers every program type has (see `standard`).
    pub fn standard() -> Self {
        let mut table = HelperTable::new();
        standard::register(&mut table);
        maps::register(&mut table);
        table
    }

    pub fn register<F>(&mut self, id: u32, name: &str, func: F)
    where
        F: Fn(&mut HelperContext<'_>, [u64; 5]) -> Result<u64, HelperError> + Send + Sync + 'static,
    {
        self.by_id.insert(
            id,
            Helper {
                id,
                name: name.to_string(),
                func: Arc::new(func),
            },
        );
    }

    pub fn get(&self, id: u32) -> Option<&Helper> {
        self.by_id.get(&id)
    }

    pub fn contains(&self, id: u32) -> bool {
        self.by_id.contains_key(&id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Helper> {
        self.by_id.values()
    }
}

pub mod callbacks;
pub mod format;
pub mod locks;
pub mod maps;
pub mod output;
pub mod packet;
pub mod perf;
pub mod process;
pub mod standard;
pub mod strings;
pub mod tail_call;
pub mod trace;
