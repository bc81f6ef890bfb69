//! Helper functions, by the kernel's numbering. A helper receives r1-r5 and the run's context (its
//! memory regions, so that pointer arguments are checked like any other access) and returns r0 or
//! an error that stops the run. Both engines call helpers through the same `HelperTable`.
//! Every helper carries a `HelperPrototype` (argument and return types in the kernel's
//! vocabulary, GPL flag, program types) for the verifier: the kernel's for the helpers this
//! engine implements (`kernel_prototypes`), "scalars in, scalar out" unless an embedder declares
//! its own (`register_with_prototype`).
//!
//! Contracts between helpers and the engines (all through `interpreter::call_helper`):
//! - Callbacks (`bpf_loop`, `bpf_for_each_map_elem`): a helper calls
//!   `HelperContext::call_function(target, args)`. `target` must be an entry the loader found in a
//!   function `lddw` (src = BPF_PSEUDO_FUNC, turned into the entry's instruction index). The engine
//!   provides `RunEnv::function_runner`, a `FunctionRunner`: run the function at that index with
//!   r1-r5 = args and r10 = `env.stack_top` (a fresh stack area per nesting depth) until its
//!   `exit`, returning its r0 and instruction count or the trap that stopped it. `Program` runs
//!   the function on the program's own engine, entered at that index (no copy of the program).
//!   Callbacks may run what is left of the run's budget; a trap inside one is re-raised with its
//!   count and budget those of the run (`RunState::pending_trap`). Details: `callbacks.rs`.
//! - Budget: a helper whose work grows with its input (a callback per element, a walk over a
//!   map) charges it to the run's instruction budget (`HelperContext::charge`); the engine adds
//!   `HelperContext::charged` to its count after the call, so that `insn_count` and the budget
//!   cover what helpers did on the program's behalf.
//! - Tail calls: `HelperContext::tail_call(program)` records the target and returns an error; the
//!   engine propagates the resulting trap like any other and `Program::run` starts the target on
//!   the same memory (at most 33 per run). Details: `tail_call.rs`.
//! - Program-type state (context, packet, XDP frame, task identity, trace/perf output, held spin
//!   lock) is `HelperContext::state` (`context::RunState`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::memory::Regions;

pub use crate::run_state::{address_space, output};
pub use prototype::{ArgType, HelperPrototype, KernelProgType, ProgTypes, RetType};

/// What a helper may see and change of the run that called it.
pub struct HelperContext<'a> {
    pub regions: &'a mut Regions,
    /// The maps the run may use, and what it must keep alive (see `maps::run`).
    pub maps: &'a mut crate::maps::RunMaps,
    /// The program-type side of the run: context, packet, task identity, trace/perf output,
    /// callbacks, tail calls, the held spin lock (see `context::run_state`).
    pub state: &'a mut crate::run_state::RunState,
    /// The calling frame, for helpers that call back into the program (`call_function`).
    pub caller: CallerInfo<'a>,
    /// Instructions of the run's budget this helper call has used so far, its own call
    /// instruction aside: callbacks and the work a helper charges (`charge`). The engine that
    /// called the helper adds them to its count when the helper returns.
    pub charged: u64,
}

impl HelperContext<'_> {
    /// `addr` as messages show it: its place in the run's memory (`stack-16`, `map 'm' value+4`),
    /// never the host address (see `places`).
    pub fn describe(&self, addr: u64) -> String {
        crate::run_state::places::describe(addr, self.state, self.maps)
    }

    /// The `len` bytes at `addr` that a helper reads through its pointer argument `what`, checked
    /// against the run's regions like any access of the program; else the helper error naming
    /// the argument and its place. Empty for `len` 0 (the kernel's size-0 memory arguments).
    pub fn readable(&self, addr: u64, len: u64, what: &str) -> Result<&[u8], HelperError> {
        if len == 0 {
            return Ok(&[]);
        }
        self.regions.slice(addr, len).map_err(|_| {
            HelperError(format!(
                "{what} ({}, {len} bytes) is not readable memory",
                self.describe(addr)
            ))
        })
    }

    /// As `readable`, for the bytes a helper writes.
    #[allow(clippy::mut_from_ref)]
    pub fn writable(&self, addr: u64, len: u64, what: &str) -> Result<&mut [u8], HelperError> {
        if len == 0 {
            return Ok(&mut []);
        }
        self.regions.slice_mut(addr, len).map_err(|_| {
            HelperError(format!(
                "{what} ({}, {len} bytes) is not writable memory",
                self.describe(addr)
            ))
        })
    }
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
    /// Argument and return types, GPL flag and program types, for the verifier.
    pub prototype: HelperPrototype,
    pub func: Arc<HelperFn>,
}

impl fmt::Debug for Helper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Helper({} {})", self.id, self.name)
    }
}

/// Helper ids below this are found by indexing (every kernel helper number is below it today);
/// a call is on the hot path of every program, a tree walk there cost ~130 instructions.
const DIRECT_IDS: usize = 256;

/// Helpers known to a program, by id. Entries are shared (`Arc`): every load copies the
/// embedder's table into the program's (`context::helpers_for`), and copying a pointer per helper
/// instead of its name and prototype keeps that copy cheap.
#[derive(Clone, Debug, Default)]
pub struct HelperTable {
    /// Helpers with ids below `DIRECT_IDS`, indexed by id.
    direct: Vec<Option<Arc<Helper>>>,
    /// Helpers with ids from `DIRECT_IDS` on.
    above: BTreeMap<u32, Arc<Helper>>,
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

    /// Registers an embedder's helper with the default prototype: five scalars in, a scalar
    /// out, for every program type (`HelperPrototype::SCALARS`).
    pub fn register<F>(&mut self, id: u32, name: &str, func: F)
    where
        F: Fn(&mut HelperContext<'_>, [u64; 5]) -> Result<u64, HelperError> + Send + Sync + 'static,
    {
        self.register_with_prototype(id, name, HelperPrototype::SCALARS, func);
    }

    /// Registers a helper with its prototype.
    pub fn register_with_prototype<F>(
        &mut self,
        id: u32,
        name: &str,
        prototype: HelperPrototype,
        func: F,
    ) where
        F: Fn(&mut HelperContext<'_>, [u64; 5]) -> Result<u64, HelperError> + Send + Sync + 'static,
    {
        self.insert(Helper {
            id,
            name: name.to_string(),
            prototype,
            func: Arc::new(func),
        });
    }

    /// Registers one of the kernel's helpers that this engine implements, with the kernel's
    /// prototype (`kernel_prototypes`; every id registered this way has one, a unit test
    /// checks it).
    pub(crate) fn register_kernel<F>(&mut self, id: u32, name: &str, func: F)
    where
        F: Fn(&mut HelperContext<'_>, [u64; 5]) -> Result<u64, HelperError> + Send + Sync + 'static,
    {
        let prototype = kernel_prototypes::kernel_prototype(id).unwrap_or_default();
        self.register_with_prototype(id, name, prototype, func);
    }

    /// Adds `helper` (taken from another table, prototype and all), replacing any under its id.
    pub fn insert(&mut self, helper: Helper) {
        self.insert_shared(Arc::new(helper));
    }

    /// Adds `other`'s helpers under the ids this table has nothing under (sharing them).
    pub fn add_missing(&mut self, other: &HelperTable) {
        for (slot, helper) in other.direct.iter().enumerate() {
            if let Some(h) = helper {
                if self.get(slot as u32).is_none() {
                    self.insert_shared(h.clone());
                }
            }
        }
        for (id, h) in &other.above {
            self.above.entry(*id).or_insert_with(|| h.clone());
        }
    }

    fn insert_shared(&mut self, helper: Arc<Helper>) {
        let id = helper.id;
        let slot = id as usize;
        if slot < DIRECT_IDS {
            if self.direct.len() <= slot {
                self.direct.resize(slot + 1, None);
            }
            self.direct[slot] = Some(helper);
        } else {
            self.above.insert(id, helper);
        }
    }

    #[inline]
    pub fn get(&self, id: u32) -> Option<&Helper> {
        if (id as usize) < DIRECT_IDS {
            self.direct.get(id as usize).and_then(Option::as_deref)
        } else {
            self.above.get(&id).map(|h| &**h)
        }
    }

    pub fn contains(&self, id: u32) -> bool {
        self.get(id).is_some()
    }

    /// The helpers in increasing id order.
    pub fn iter(&self) -> impl Iterator<Item = &Helper> {
        (self.direct.iter().flatten())
            .chain(self.above.values())
            .map(|h| &**h)
    }

    /// The prototype of helper `id`, if the table has it.
    pub fn prototype(&self, id: u32) -> Option<&HelperPrototype> {
        self.get(id).map(|h| &h.prototype)
    }
}

pub mod callbacks;
pub mod format;
pub mod kernel_prototypes;
pub mod locks;
pub mod maps;
pub mod packet;
pub mod perf;
pub mod probe_read;
pub mod process;
pub mod prototype;
pub mod signal;
pub mod skb;
pub mod socket;
pub mod stack;
pub mod standard;
pub mod strings;
pub mod tail_call;
pub mod trace;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_by_index_and_by_tree_agree_and_later_registration_wins() {
        let mut t = HelperTable::new();
        t.register(5, "five", |_, _| Ok(5));
        t.register(70_000, "big", |_, _| Ok(7));
        t.register(5, "five again", |_, _| Ok(55));
        assert_eq!(t.get(5).map(|h| h.name.as_str()), Some("five again"));
        assert_eq!(t.get(70_000).map(|h| h.id), Some(70_000));
        assert!(t.get(6).is_none() && t.get(255).is_none() && t.get(256).is_none());
        assert!(t.contains(70_000) && !t.contains(4));
        assert_eq!(t.iter().map(|h| h.id).collect::<Vec<_>>(), vec![5, 70_000]);
    }
}
