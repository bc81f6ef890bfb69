//! The run environment: everything a run needs besides the instructions ([`RunEnv`]), the one
//! helper path both engines call ([`call_helper`]), and the trap of a failed memory check
//! ([`memory_trap`]), which names the address by its place in the run's memory; and what each
//! engine implements ([`ExecutionEngine`]: prepare from the [`Validated`] program, run from an
//! entry). It holds the
//! helper table, the run's maps and its per-run state, so it sits above those layers and below
//! the engines.

use crate::analysis::Analysis;
use crate::coverage::CoverageCounters;
use crate::error::{LoadError, Trap, TrapKind};
use crate::helpers::callbacks::{Callback, FunctionRunner};
use crate::helpers::{CallerInfo, HelperContext, HelperTable};
use crate::isa::Insn;
use crate::memory::Regions;
use crate::vm::{trap, HelperReturn, RunOutput};

/// Everything a run needs besides the instructions.
pub struct RunEnv<'a> {
    pub helpers: &'a HelperTable,
    /// The run's memory (borrowed: it lives in the run space, as large as a few cache lines).
    pub regions: &'a mut Regions,
    /// r10 of the main frame (one past the top of the stack area).
    pub stack_top: u64,
    /// Instructions that may execute before the run is stopped.
    pub budget: u64,
    /// The packet that `LD_ABS`/`LD_IND` read: start address and length.
    pub packet: (u64, u64),
    /// The maps of the run (`RunMaps::default()` for a program without maps).
    pub maps: &'a mut crate::maps::RunMaps,
    /// The program-type side of the run (context, packet, output, callbacks, tail calls).
    pub state: &'a mut crate::context::RunState,
    /// How this engine runs a function of the program, for helpers that call back
    /// (`bpf_loop`); see `helpers/callbacks.rs`.
    pub function_runner: Option<&'a FunctionRunner<'a>>,
}

impl RunEnv<'_> {
    /// Runs `run` on the environment of a callback (`helpers/callbacks.rs`): the calling run's
    /// helpers, regions, maps and state, borrowed from the helper's context for the callback's
    /// duration, on the callback's own stack and budget.
    pub fn of_callback<R>(
        cx: &mut HelperContext<'_>,
        callback: &Callback,
        run: impl FnOnce(&mut RunEnv<'_>) -> R,
    ) -> R {
        let mut env = RunEnv {
            helpers: cx.caller.helpers,
            regions: &mut *cx.regions,
            stack_top: callback.stack_top,
            budget: callback.budget,
            packet: callback.packet,
            maps: &mut *cx.maps,
            state: &mut *cx.state,
            function_runner: cx.caller.runner,
        };
        run(&mut env)
    }
}

/// The trap for a failed memory check; the message is the one both engines give. It names the
/// address by its place in the run's memory (`stack-8`, `data+70`), never as a host address.
pub fn memory_trap(
    kind: TrapKind,
    pc: usize,
    addr: u64,
    size: u32,
    count: u64,
    write: bool,
    env: &RunEnv<'_>,
) -> Trap {
    let what = if write { "store" } else { "load" };
    let place = crate::context::places::locate(addr, env.state, env.maps);
    let at = match &place {
        Some(p) => format!("at {p}"),
        None => "at an address outside every region of the run".into(),
    };
    let message = match kind {
        TrapKind::ReadOnly => format!("{what} of {size} bytes {at} into read-only memory"),
        TrapKind::Misaligned => format!("misaligned atomic {what} of {size} bytes {at}"),
        _ if place.is_none() => format!("{what} of {size} bytes {at}"),
        _ => format!("{what} of {size} bytes {at} is outside the program's memory"),
    };
    Trap {
        place,
        ..trap(kind, pc, addr, size, count, message)
    }
}

/// Calls helper `id` with r1-r5; the trap on failure names instruction `pc`. `count`: the
/// instructions the calling frame executed before the call.
pub fn call_helper(
    env: &mut RunEnv<'_>,
    id: u64,
    args: [u64; 5],
    pc: usize,
    count: u64,
) -> Result<HelperReturn, Trap> {
    // `env.helpers` is a shared reference of its own: the helper is borrowed from the table
    // while the run's state is lent to it mutably, with no reference counting per call (which
    // threads running one program would contend on).
    let helpers: &HelperTable = env.helpers;
    let Some(helper) = u32::try_from(id).ok().and_then(|id| helpers.get(id)) else {
        // A helper number is 32 bits; a wider value may be a host address (`callx` of a
        // pointer), which a message must not show (see `context::places`).
        let target = match u32::try_from(id) {
            Ok(n) => n.to_string(),
            Err(_) => match crate::context::places::locate(id, env.state, env.maps) {
                Some(place) => place.to_string(),
                None => "a value wider than 32 bits".into(),
            },
        };
        return Err(trap(
            TrapKind::BadCallTarget,
            pc,
            0,
            0,
            count,
            format!("callx to {target}, which is not a helper"),
        ));
    };
    if env.state.held_lock.is_some() {
        if let Err(message) = crate::helpers::locks::check_call(env.state, helper.id) {
            return Err(trap(TrapKind::HelperError, pc, 0, 0, count, message));
        }
    }
    let mut cx = HelperContext {
        regions: &mut *env.regions,
        maps: &mut *env.maps,
        state: env.state,
        caller: CallerInfo {
            helpers: env.helpers,
            packet: env.packet,
            budget: env.budget,
            insn_base: count + 1,
            pc,
            runner: env.function_runner,
        },
        charged: 0,
    };
    let result = (helper.func)(&mut cx, args);
    let charged = cx.charged;
    // A helper that moved the packet (tc) says where it is now, for LD_ABS and LD_IND.
    if let Some(packet) = env.state.packet_moved {
        env.packet = packet;
    }
    result.map(|r0| HelperReturn { r0, charged }).map_err(|e| {
        // A trap inside a callback stops the run as it is.
        if let Some(t) = env.state.pending_trap.take() {
            return t;
        }
        trap(
            TrapKind::HelperError,
            pc,
            0,
            0,
            count,
            format!("helper {} ({}) failed: {e}", helper.id, helper.name),
        )
    })
}

/// What an engine prepares a program from: the validated, relocated and rewritten instructions
/// and the facts its load found.
#[derive(Clone, Copy)]
pub struct Validated<'a> {
    pub insns: &'a [Insn],
    pub analysis: &'a Analysis,
    /// Callback entries (sorted): where a run may enter besides slot 0.
    pub callbacks: &'a [usize],
    /// The stack frames a run exposes (`stack_reach::reachable_frames`).
    pub stack_frames: usize,
    /// Mode verified: the loads and stores the verifier proved in bounds, by slot.
    pub proved: Option<&'a [bool]>,
    /// Emit no immediate of the program as it is (JIT).
    pub blind_constants: bool,
    /// Meter the instruction budget (JIT; see `ProgramOptions::meter`). The interpreter counts
    /// whatever this says: its count is one subtraction per straight-line segment.
    pub meter: bool,
    /// The program's coverage counters, for an engine whose code counts into them.
    pub coverage: Option<&'a CoverageCounters>,
    /// Mode verified: the program's maps whose proved lookups the JIT may do without the lookup
    /// stub (`helpers::maps::InlineLookup`); empty otherwise.
    pub lookups: &'a [crate::helpers::maps::InlineLookup],
}

/// Where a run of an engine starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// The program, at slot 0, on the run's stack.
    Main,
    /// A callback (`helpers/callbacks.rs`) at its first instruction, on its own stack, until its
    /// `exit`.
    Function(usize),
}

impl Entry {
    /// The slot the run starts at.
    pub fn pc(self) -> usize {
        match self {
            Entry::Main => 0,
            Entry::Function(pc) => pc,
        }
    }
}

/// An engine's side of the ABI: prepared once at load from the validated program, then run any
/// number of times from an entry on a run environment. `insns` are the instructions it was
/// prepared from.
pub trait ExecutionEngine: Sized {
    fn prepare(program: &Validated<'_>) -> Result<Self, LoadError>;
    fn run_from(
        &self,
        insns: &[Insn],
        env: &mut RunEnv<'_>,
        args: [u64; 5],
        entry: Entry,
    ) -> Result<RunOutput, Trap>;
}
