//! A loaded program: validated instructions, the helpers it may call, its program type, engine and
//! safety mode; and one run of it against input memory.

use std::sync::Arc;

mod plain;
mod straight;
mod xdp_batch;

pub(crate) use xdp_batch::{XdpBatchShared, XdpPackets};

use crate::analysis::{self, Analysis, AnalysisOptions, Flow, Imm64, LogicalProgram};
use crate::context::{self, ContextInput, ContextOutput, RunData, RunState};
use crate::coverage::{Counted, CoverageCounters, CoverageReport};
use crate::error::{ErrorCode, LoadError, Trap, TrapKind};
use crate::helpers::callbacks::{rebase_trap, Callback};
use crate::helpers::output::{PerfSink, ProgramOutput, TraceSink, DEFAULT_PERF_BUFFER_BYTES};
use crate::helpers::{HelperContext, HelperTable};
use crate::interpreter;
use crate::isa::{encode_all, validate_with, Insn, ReservedFields};
use crate::limits::RunLimits;
use crate::memory::{Region, Regions};
use crate::pointer_leaks::{self, PointerLeaks};
use crate::run_space::RunSpace;
use crate::run_trace::RunTrace;
use crate::verification::{verify_load, LoadFacts, SourceLine, VerifierReport, MAX_LOG_LEVEL};
use crate::verifier::ctx_access::PT_REGS_SIZE;
use crate::verifier::GlobalFunction;
use crate::verifier::ProgramKind;
use crate::vm::env::{Entry, ExecutionEngine, RunEnv, Validated};
use crate::vm::{RunOutput, TailCallTarget, STACK_FRAME_SIZE, STACK_SIZE};

/// Which engine runs the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Engine {
    Interpreter,
    Jit,
    /// The JIT where the host supports it, else the interpreter.
    #[default]
    Auto,
}

/// How safety is ensured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// No proof needed: every access is checked at run time and an instruction budget bounds the run.
    #[default]
    Checked,
    /// Load fails unless the verifier proves the program safe (`verification`): the accesses it
    /// proved run unchecked, and runs are not metered (the proof bounds them) unless
    /// `ProgramOptions::meter` asks for it.
    Verified,
}

pub use crate::vm::{AttachType, ProgramType};

/// What a run hands back besides r0 and its count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outputs {
    /// The context output (`context::finish_run`: packet, context, metadata, redirect).
    All,
    /// Nothing but the perf records lost: r0 is all the caller reads (`runBatchRetvals`, the
    /// repetitions of a test run before the last).
    R0,
}

/// How `Program::run_on` runs, besides its memory and inputs.
pub(crate) struct RunHow {
    /// Overrides the program's instruction budget.
    pub budget: Option<u64>,
    /// Records an instruction trace into this (see `run_trace`).
    pub trace: Option<Box<RunTrace>>,
    pub outputs: Outputs,
}

/// How one run ended: its output and the context after it, or the trap that stopped it.
pub type RunOutcome = Result<(RunOutput, ContextOutput), Trap>;

/// The default instruction budget of a run in checked mode.
pub const DEFAULT_BUDGET: u64 = 10_000_000;

/// The budget of an unmetered run: more than any run executes (2^63 instructions), and not all
/// ones, which the JIT's helper stub reads in the budget a helper hands back as "stop the run".
const UNMETERED_BUDGET: u64 = u64::MAX >> 1;

#[derive(Clone, Debug)]
pub struct ProgramOptions {
    pub prog_type: ProgramType,
    pub engine: Engine,
    pub mode: Mode,
    /// Instructions a run may execute (checked mode, or verified with `meter`); a run may lower
    /// or raise it.
    pub budget: u64,
    /// Mode `Verified`: meter runs by the instruction budget as mode `Checked` does, so that
    /// `insn_count` counts, `budget` bounds and run limits are checked every slice. Off by
    /// default: the verifier proved that the program terminates, so its runs go unmetered, at
    /// the speed of the code alone; they report an `insn_count` of 0, no budget stops them, and
    /// run limits are checked only before each callback a helper makes (callbacks are bounded
    /// by their counts; tail calls by their limit of 33). Mode `Checked` always meters.
    pub meter: bool,
    pub helpers: HelperTable,
    /// The program's maps: `lddw` map relocations (pseudo sources 1, 2, 5, 6) index this list.
    pub maps: Vec<std::sync::Arc<dyn crate::maps::Map>>,
    /// Receives `bpf_trace_printk` output instead of the program's log (`Program::trace_log`).
    pub trace_sink: Option<TraceSink>,
    /// Receives `bpf_perf_event_output` records (without one the helper returns -ENOENT).
    pub perf_sink: Option<PerfSink>,
    /// Whether a run may let host addresses out (r0 at exit, words helpers copy out): refused by
    /// default, as untrusted bytecode must not learn the host's layout (see `pointer_leaks`).
    pub pointer_leaks: PointerLeaks,
    /// JIT: emit no immediate of the program as it is in executable memory (constant blinding,
    /// against JIT spraying; see `jit/blind.rs`). On by default: the bytecode is untrusted.
    pub blind_constants: bool,
    /// Bytes of perf records one run may output; records beyond are dropped and counted
    /// (`helpers::output`).
    pub perf_buffer_bytes: u64,
    /// Function entries the object's function info names (BTF `func_info`, the loader's
    /// sub-programs), as instruction slots; local calls and function `lddw`s find the others.
    pub func_entries: Vec<usize>,
    /// Mode `Verified`: the verifier's log level (0 none, 1 the instructions walked, 2 also the
    /// state after each); a rejection carries a log whatever the level.
    pub log_level: u32,
    /// The program's license is GPL-compatible (`verification::license_is_gpl_compatible`):
    /// GPL-only helpers may be called. Only the verifier reads it.
    pub gpl_compatible: bool,
    /// Mode `Verified`, type `Raw`: the length of the data every run gets. The verifier proves
    /// accesses against it (r1 = that many bytes, r2 = that number), so a run whose data has
    /// another length is refused (`invalid_input`). Without it `Raw` cannot be verified.
    pub data_size: Option<u32>,
    /// The attach type the program is loaded for (`None`: the type's default). Only the
    /// verifier reads it; an attach type of another program type is refused at load.
    pub expected_attach_type: Option<AttachType>,
    /// BTF line info of the program (any order): the verifier's log shows the C source line of
    /// the instructions it walks, as the kernel's does.
    pub source_lines: Vec<SourceLine>,
    /// Mode `Verified`: the program's global functions (BTF `FUNC` linkage global) with their
    /// prototypes, verified once on their own as the kernel verifies them; every other function
    /// is verified in the context of each call (a static function).
    pub global_functions: Vec<GlobalFunction>,
    /// Mode `Verified`: apply the kernel's extra rules for loads without CAP_BPF and
    /// CAP_PERFMON (`verifier::unprivileged`): no pointer leaks, no pointer comparisons but null
    /// checks, no uninitialised stack reads, no loops or calls, socket filters (and raw
    /// programs) only. For embedders running untrusted code.
    pub unprivileged: bool,
    /// Mode `Verified`: keep r0 precise at every exit (as a return range does, which may keep
    /// more states and so cost time, or exceed the complexity limit on a loop that counts into
    /// r0) and report the range it lies in there (`VerifierReport::exit_r0`).
    pub exit_range: bool,
    /// Count instruction and branch coverage over the program's runs (`Program::coverage`):
    /// the JIT's code counts per chain of blocks, the interpreter per instruction (see
    /// `coverage`).
    pub coverage: bool,
}

impl Default for ProgramOptions {
    fn default() -> Self {
        ProgramOptions {
            prog_type: ProgramType::Raw,
            engine: Engine::Auto,
            mode: Mode::Checked,
            budget: DEFAULT_BUDGET,
            meter: false,
            helpers: HelperTable::standard(),
            maps: Vec::new(),
            trace_sink: None,
            perf_sink: None,
            pointer_leaks: PointerLeaks::Refuse,
            blind_constants: true,
            perf_buffer_bytes: DEFAULT_PERF_BUFFER_BYTES,
            func_entries: Vec::new(),
            log_level: 0,
            gpl_compatible: true,
            data_size: None,
            expected_attach_type: None,
            source_lines: Vec::new(),
            global_functions: Vec::new(),
            unprivileged: false,
            exit_range: false,
            coverage: false,
        }
    }
}

/// Input of one run.
#[derive(Debug, Default)]
pub struct RunInput<'a> {
    /// The packet or data buffer; the program may change it in place.
    pub data: &'a mut [u8],
    /// Overrides the program's instruction budget for this run.
    pub budget: Option<u64>,
}

#[derive(Debug)]
pub struct Program {
    insns: Vec<Insn>,
    /// The program's shape, found once at load (`analysis::analyse`): every later stage reads
    /// its facts from here. Indices are logical; the rewrites keep every instruction's slots, so
    /// the shape stays that of `insns`. Its logical instructions are the program as given;
    /// what relocation and the context rewrite made of them is in `insns`, and what they meant
    /// is in its side table (`aux`).
    analysis: Analysis,
    options: ProgramOptions,
    /// The maps of the program and the global-data regions of its runs.
    maps: crate::maps::ProgramMaps,
    /// `options.helpers` plus the helpers of the program type (`context::helpers_for`).
    helpers: HelperTable,
    /// Callback entries (`lddw` of functions): where the engine may be entered besides slot 0.
    callbacks: Option<Arc<[usize]>>,
    /// Trace log and sinks; handed to runs only when the program can print (`prints`).
    output: Arc<ProgramOutput>,
    prints: bool,
    /// The engine, prepared once here so that a run never pays for it: the interpreter's form
    /// of the instructions or the compiled code.
    prepared: PreparedEngine,
    /// Stack frames a run can reach (see `stack_reach`, computed once at load for both engines):
    /// only those are zeroed and accessible.
    stack_frames: usize,
    /// The bytes of those frames a run zeroes (`stack_reach::zeroed_bytes`): from this many
    /// bytes below the top of the stack, this many.
    stack_zero: (usize, usize),
    /// Mode `Verified`: what the verifier reported.
    verifier: Option<VerifierReport>,
    /// Whether runs are metered by the budget: mode `Checked`, or `Verified` with `meter`.
    metered: bool,
    /// Whether `run` takes `run_plain` (`plain_runs`, decided at load).
    plain: bool,
    /// Whether those runs leave the region table and the run state's fields unset (`bare_runs`).
    bare: bool,
    /// A bare program's entry of its own into its compiled code (`jit::JitProgram::bare_entry`),
    /// which `run` calls straight: set at load for a `bare` program whose code has one.
    #[cfg(target_arch = "x86_64")]
    bare_entry: Option<crate::jit::BareEntry>,
    /// The one data length a run may have (`unverified_input`): a verified raw program's
    /// `data_size`.
    data_len: Option<usize>,
    /// Coverage counters (`options.coverage`), and the JIT's chain lengths by head slot when
    /// its code counts into them (see `coverage`).
    coverage: Option<Arc<CoverageCounters>>,
    coverage_chains: Option<Vec<u32>>,
}

/// A prog array's entry as a tail-call target: a `Program`, or nothing.
fn tail_call_target(prog: Arc<dyn std::any::Any + Send + Sync>) -> Option<Arc<dyn TailCallTarget>> {
    let program: Arc<Program> = prog.downcast().ok()?;
    Some(program)
}

impl TailCallTarget for Program {
    fn prog_type(&self) -> ProgramType {
        self.options.prog_type
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl Program {
    /// Validates `bytecode` and prepares it for the chosen engine.
    pub fn load(bytecode: &[u8], options: ProgramOptions) -> Result<Program, LoadError> {
        check_attach_type(&options)?;
        let helpers = context::helpers_for(options.prog_type, &options.helpers);
        // Verified mode validates as the kernel does: the verifier checks `exit`'s fields where
        // its walk arrives (checked mode has no walk, so it keeps RFC 9669's strict check).
        let fields = match options.mode {
            Mode::Checked => ReservedFields::Strict,
            Mode::Verified => ReservedFields::Kernel,
        };
        // In verified mode a helper of another program type reaches the verifier, which refuses
        // it in the kernel's words (raw programs have no kernel type to name: refused here).
        let of_another_type = |id: u32| {
            options.mode == Mode::Verified
                && options.prog_type != ProgramType::Raw
                && context::engine_helper(id).is_some()
        };
        let mut insns = validate_with(
            bytecode,
            &|id| helpers.contains(id) || of_another_type(id),
            fields,
        )?;
        let mut analysis = analysis::analyse(
            &insns,
            &AnalysisOptions {
                func_entries: &options.func_entries,
            },
        )?;
        // Function pointers first: they are the one `lddw` pseudo source that is not a map.
        let callbacks = context::pseudo_func::resolve_pseudo_funcs(
            &mut insns,
            &analysis.program,
            &analysis.aux,
            &analysis.functions,
        );
        let maps = crate::maps::reloc::relocate(
            &mut insns,
            &analysis.program,
            &analysis.aux,
            &options.maps,
        )?;
        // What neither relocation resolves: kernel variables by BTF id.
        if let Some(i) = (analysis.aux.iter()).position(|a| matches!(a.imm64, Imm64::BtfId { .. }))
        {
            let pc = analysis.program.slot(i);
            return Err(LoadError::at(
                ErrorCode::Einval,
                pc,
                format!(
                    "lddw with pseudo source {} needs a map or object relocation, and none was given",
                    insns[pc].src
                ),
            ));
        }
        // On the program as given (the context rewrite below changes what its loads mean).
        let verifier = match options.mode {
            Mode::Checked => None,
            Mode::Verified => Some(verify_load(
                &analysis,
                &LoadFacts {
                    kind: verifier_kind(&options)?,
                    maps: &options.maps,
                    helpers: &helpers,
                    gpl_compatible: options.gpl_compatible,
                    log_level: options.log_level.min(MAX_LOG_LEVEL),
                    source_lines: &options.source_lines,
                    globals: &options.global_functions,
                    unprivileged: options.unprivileged,
                    exit_range: options.exit_range,
                },
            )?),
        };
        // What a run reads of a map's `struct bpf_map` is known at load: the value itself.
        for &(slot, value) in verifier.iter().flat_map(|v| &v.map_field_loads) {
            insns[slot] = crate::verifier::map_fields::constant_move(insns[slot].dst, value)
                .expect("the verifier accepts only values one move gives");
        }
        context::prepare_program(
            options.prog_type,
            &mut insns,
            &mut analysis,
            verifier.as_ref().map(|v| &v.ctx_bases[..]),
        )?;
        // What the verifier proved and where it compared states, in the side table.
        if let Some(v) = &verifier {
            let (prune, _, _) = crate::verifier::prune::prune_points(&analysis);
            let program = &analysis.program;
            for (i, aux) in analysis.aux.iter_mut().enumerate() {
                aux.proved_in_bounds = v.proved[program.slot(i)];
                aux.prune_point = prune[i];
            }
        }
        // bpf_trace_printk (6), bpf_perf_event_output (25), or a callx that may be either.
        let prints = (analysis.cfg.flows.iter())
            .any(|f| matches!(f, Flow::CallX | Flow::Helper { id: 6 | 25 }));
        let output = Arc::new(ProgramOutput::new(
            options.trace_sink.clone(),
            options.perf_sink.clone(),
            options.perf_buffer_bytes,
        ));
        let stack_frames = crate::stack_reach::reachable_frames(&analysis);
        let stack_zero = crate::stack_reach::zeroed_bytes(&analysis, stack_frames);
        let coverage = (options.coverage).then(|| Arc::new(CoverageCounters::new(insns.len())));
        let direct = verifier.as_ref().map(|v| match options.prog_type {
            ProgramType::Xdp => {
                context::xdp::direct_accesses(&insns, &v.packet_proved, &v.ctx_bases)
            }
            _ => v.proved.clone(),
        });
        let metered = verifier.is_none() || options.meter;
        let lookups = match &verifier {
            Some(_) => crate::helpers::maps::inline_lookups(&helpers, maps.maps()),
            None => Vec::new(),
        };
        let prepared = PreparedEngine::select(
            options.engine,
            &Validated {
                insns: &insns,
                analysis: &analysis,
                callbacks: &callbacks,
                stack_frames,
                proved: direct.as_deref(),
                blind_constants: options.blind_constants,
                meter: metered,
                coverage: coverage.as_deref(),
                lookups: &lookups,
            },
        )?;
        #[cfg(target_arch = "x86_64")]
        let coverage_chains = (coverage.is_some() && prepared.engine() == Engine::Jit)
            .then(|| crate::jit::coverage_chains(&analysis));
        #[cfg(not(target_arch = "x86_64"))]
        let coverage_chains = None;
        let mut program = Program {
            insns,
            analysis,
            options,
            maps,
            helpers,
            callbacks: (!callbacks.is_empty()).then(|| callbacks.into()),
            output,
            prints,
            prepared,
            stack_frames,
            stack_zero,
            verifier,
            metered,
            plain: false,
            bare: false,
            #[cfg(target_arch = "x86_64")]
            bare_entry: None,
            data_len: None,
            coverage,
            coverage_chains,
        };
        program.plain = program.plain_runs();
        program.bare = program.bare_runs();
        #[cfg(target_arch = "x86_64")]
        if let (true, PreparedEngine::Jit(jit)) = (program.bare, &program.prepared) {
            program.bare_entry = jit.bare_entry();
        }
        program.data_len = (program.verifier.is_some()
            && program.options.prog_type == ProgramType::Raw)
            .then_some(program.options.data_size.map(|n| n as usize))
            .flatten();
        Ok(program)
    }

    /// Whether runs are metered by the instruction budget (see `ProgramOptions::meter`).
    pub fn metered(&self) -> bool {
        self.metered
    }

    /// The budget an engine runs this program under, from the run's `budget` (the program's
    /// when `None`): for an unmetered program, one no run reaches, as its code charges nothing
    /// (the interpreter still counts, against it).
    pub(super) fn engine_budget(&self, budget: u64) -> u64 {
        if self.metered {
            budget
        } else {
            UNMETERED_BUDGET
        }
    }

    /// Zeroes the stack bytes a run may read before writing them (`stack_zero`, from
    /// `stack_reach::zeroed_bytes`), under `stack_top`.
    ///
    /// # Safety
    /// `stack_top` is the top of a stack area of `STACK_SIZE` bytes that the caller owns.
    #[inline(always)]
    pub(super) unsafe fn zero_stack(&self, stack_top: u64) {
        // SAFETY: as this function's.
        unsafe { zero_stack_bytes(stack_top, self.stack_zero) }
    }

    /// The bytes of `stack_zero` among the `depth` bytes under the stack's top.
    pub(super) fn stack_zero_within(&self, depth: usize) -> (usize, usize) {
        let (below_top, zeroed) = self.stack_zero;
        let end = below_top - zeroed;
        let below_top = below_top.min(depth);
        (below_top, below_top.saturating_sub(end))
    }
}

/// Zeroes `zeroed` bytes from `below_top` bytes under `stack_top` (a `Program::stack_zero`, or
/// part of it).
///
/// # Safety
/// As `Program::zero_stack`'s, and the bytes are inside those of `stack_zero`.
#[inline(always)]
pub(super) unsafe fn zero_stack_bytes(stack_top: u64, (below_top, zeroed): (usize, usize)) {
    if zeroed == 0 {
        // Most programs write the stack before they read it (`stack_reach`): one test.
        return;
    }
    let start = stack_top - below_top as u64;
    if zeroed > 64 {
        // SAFETY: `zeroed` bytes from `below_top` bytes under the top of the stack area
        // (`zeroed_bytes` keeps them inside the reachable frames).
        return unsafe { std::ptr::write_bytes(start as *mut u8, 0, zeroed) };
    }
    // A few bytes (a batch's later runs zero the firewall's 8) as words stored in place:
    // `write_bytes` of a length known only at run time calls `memset`, which costs more.
    let words = zeroed / 8;
    for w in 0..words {
        // SAFETY: inside the `zeroed` bytes from `start` (as above).
        unsafe { ((start + 8 * w as u64) as *mut u64).write_unaligned(0) };
    }
    for b in 8 * words..zeroed {
        // SAFETY: as above.
        unsafe { ((start + b as u64) as *mut u8).write(0) };
    }
}

impl Program {
    /// An unmetered run reports no count: its engine's figure is what helpers charged (the JIT)
    /// or a count the other engine has not (the interpreter), so both report 0.
    pub(super) fn clear_unmetered_count(&self, result: &mut Result<RunOutput, Trap>) {
        if !self.metered {
            match result {
                Ok(out) => out.insn_count = 0,
                Err(trap) => trap.insn_count = 0,
            }
        }
    }

    /// Mode `Verified`: what the verifier reported (instructions processed, time, log).
    pub fn verifier_report(&self) -> Option<&VerifierReport> {
        self.verifier.as_ref()
    }

    /// What the coverage counters come to so far (`None` without `options.coverage`): hits per
    /// instruction slot and taken / not taken per conditional jump, over every run since load
    /// or the last `reset_coverage`. Traced runs are not counted.
    pub fn coverage(&self) -> Option<CoverageReport> {
        let counters = self.coverage.as_deref()?;
        let counted = match self.coverage_chains.as_deref() {
            Some(chains) => Counted::Chains(chains),
            None => Counted::Segments,
        };
        Some(crate::coverage::report(
            counters,
            &self.insns,
            &self.analysis.program,
            counted,
        ))
    }

    /// Sets the coverage counters back to zero.
    pub fn reset_coverage(&self) {
        if let Some(c) = &self.coverage {
            c.reset();
        }
    }

    /// The engine that actually runs this program (`Auto` resolved).
    pub fn engine(&self) -> Engine {
        self.prepared.engine()
    }

    pub fn mode(&self) -> Mode {
        self.options.mode
    }

    pub fn instructions(&self) -> &[Insn] {
        &self.insns
    }

    /// The program's analysis: functions, blocks, loops and the per-instruction side table.
    pub fn analysis(&self) -> &Analysis {
        &self.analysis
    }

    /// The bytecode as loaded (after any rewriting), for `dump('xlated')`.
    pub fn xlated(&self) -> Vec<u8> {
        encode_all(&self.insns)
    }

    /// The first instruction slot of each function (the kernel's subprograms), ascending.
    pub fn function_slots(&self) -> Vec<usize> {
        let program = &self.analysis.program;
        self.analysis
            .functions
            .funcs
            .iter()
            .map(|f| program.slot(f.start))
            .collect()
    }

    /// The machine code as Intel-syntax assembly, for `dump('jited')`; a one-line note when the
    /// program runs on the interpreter.
    pub fn jited_disassembly(&self) -> String {
        #[cfg(target_arch = "x86_64")]
        if let PreparedEngine::Jit(jit) = &self.prepared {
            return jit.disassembly(&self.function_slots());
        }
        "; not compiled: this program runs on the interpreter\n".to_string()
    }

    /// The machine code as x86-64 instructions in AT&T syntax, one section per eBPF function (the
    /// kernel's subprograms, in the order of their instructions) and a last one for the code they
    /// share, each with offsets from its own start (bytes, the eBPF instruction each begins), for
    /// `bpftool prog dump jited`'s layout; empty when the program runs on the interpreter.
    #[cfg(target_arch = "x86_64")]
    pub fn jited_functions(&self) -> Vec<crate::jit::JitedFunction> {
        match &self.prepared {
            PreparedEngine::Jit(jit) => jit.listing(&self.function_slots()),
            _ => Vec::new(),
        }
    }

    /// Each instruction slot as the kernel's verifier log writes it (`(61) r2 = *(u32 *)(r1 +4)`),
    /// the program as given (before relocation and the context rewrite); empty for the second
    /// slot of an `lddw`. For traces (`run_traced`), whose steps name slots.
    pub fn insn_texts(&self) -> Vec<String> {
        self.texts(&self.analysis.program)
    }

    /// `insn_texts` of the instructions as loaded (`xlated`: after relocation and the context
    /// rewrite, which keep every slot), as `bpftool prog dump xlated` lists them. An `lddw` says
    /// what it loads (`map[idx:N]`), never the handle or address relocation wrote into it.
    pub fn xlated_texts(&self) -> Vec<String> {
        match LogicalProgram::new(&self.insns) {
            Ok(program) => self.texts(&program),
            Err(_) => self.insn_texts(),
        }
    }

    fn texts(&self, program: &LogicalProgram) -> Vec<String> {
        let helper = |id: i32| {
            let name = u32::try_from(id).ok().and_then(|id| self.helpers.get(id));
            name.map_or_else(|| "unknown".to_string(), |h| h.name.clone())
        };
        let mut out = vec![String::new(); program.slot_count()];
        for (index, insn) in program.insns().iter().enumerate() {
            let imm64 = self
                .analysis
                .aux
                .get(index)
                .map_or(Imm64::Constant, |a| a.imm64);
            out[program.slot(index)] = crate::verifier::insn_text::insn_text(insn, imm64, &helper);
        }
        out
    }

    pub fn prog_type(&self) -> ProgramType {
        self.options.prog_type
    }

    /// The `bpf_trace_printk` output of all runs so far (when no `trace_sink` was given).
    pub fn trace_log(&self) -> String {
        self.output.trace_log()
    }

    /// The `bpf_trace_printk` output so far, emptying the log.
    pub fn take_trace_log(&self) -> String {
        self.output.take_trace_log()
    }

    pub fn run(&self, input: &mut RunInput<'_>) -> Result<RunOutput, Trap> {
        if self.plain {
            return self.run_plain(input.data, input.budget);
        }
        // r0 and the count only: no context output is made to be dropped.
        let (result, _, _) = self.run_recording(
            input,
            &ContextInput::default(),
            &RunLimits::default(),
            None,
            Outputs::R0,
        );
        result.map(|(out, _)| out)
    }

    /// A run with the program-type inputs (context image, task identity) and outputs (XDP packet
    /// and metadata, context after the run).
    pub fn run_with_context(
        &self,
        input: &mut RunInput<'_>,
        cx: &ContextInput<'_>,
    ) -> Result<(RunOutput, ContextOutput), Trap> {
        self.run_with_limits(input, cx, &RunLimits::default())
    }

    /// `run_with_context` under a wall-clock deadline and a cancellation token (see `limits`):
    /// the run stops with a `timeout` or `aborted` trap when one is reached.
    pub fn run_with_limits(
        &self,
        input: &mut RunInput<'_>,
        cx: &ContextInput<'_>,
        limits: &RunLimits,
    ) -> Result<(RunOutput, ContextOutput), Trap> {
        self.run_counting_lost(input, cx, limits).0
    }

    /// `run_with_limits`, and the number of perf records the run dropped (also when it trapped).
    pub(crate) fn run_counting_lost(
        &self,
        input: &mut RunInput<'_>,
        cx: &ContextInput<'_>,
        limits: &RunLimits,
    ) -> (Result<(RunOutput, ContextOutput), Trap>, u64) {
        let (result, lost, _) = self.run_recording(input, cx, limits, None, Outputs::All);
        (result, lost)
    }

    /// `run_with_limits` with an instruction trace that keeps the last `limit` steps (see
    /// `run_trace`), returned also when the run trapped. Traced runs take the interpreter's
    /// traced loop on both engines (the JIT's code has no place to record steps), so their
    /// results are the interpreter's, which the JIT agrees with.
    pub fn run_traced(
        &self,
        input: &mut RunInput<'_>,
        cx: &ContextInput<'_>,
        limits: &RunLimits,
        limit: usize,
    ) -> (Result<(RunOutput, ContextOutput), Trap>, RunTrace) {
        let trace = Some(Box::new(RunTrace::new(limit)));
        let (result, _, trace) = self.run_recording(input, cx, limits, trace, Outputs::All);
        (result, *trace.expect("the run keeps its trace"))
    }

    /// A run, recording into `trace` when one is given; returns the perf records dropped and the
    /// trace. Runs on this thread's run space (`run_space`).
    fn run_recording(
        &self,
        input: &mut RunInput<'_>,
        cx: &ContextInput<'_>,
        limits: &RunLimits,
        trace: Option<Box<RunTrace>>,
        outputs: Outputs,
    ) -> (RunOutcome, u64, Option<Box<RunTrace>>) {
        let data = RunData::Writable(&mut *input.data);
        crate::run_space::with_run_space(|space| {
            let how = RunHow {
                budget: input.budget,
                trace,
                outputs,
            };
            self.run_on(space, data, cx, limits, how)
        })
    }

    /// One run on `space`, whose buffers the previous run left (see `run_space`): what a batch
    /// calls once per packet. With `Outputs::R0` the context output is left empty (no copy of
    /// the packet, context or metadata out of the run's memory), for callers that want r0 only.
    /// Inlined into its callers, so that the plain run pays no extra call for it.
    #[inline(always)]
    pub(crate) fn run_on(
        &self,
        space: &mut RunSpace,
        data: RunData<'_>,
        cx: &ContextInput<'_>,
        limits: &RunLimits,
        how: RunHow,
    ) -> (RunOutcome, u64, Option<Box<RunTrace>>) {
        let RunHow {
            budget,
            trace,
            outputs,
        } = how;
        let stack_bytes = space.stack_bytes();
        // Only the frames the program can reach become a region of the run: the rest of the
        // area stays out of reach. Of those, the bytes the program may read before writing them
        // are zeroed (see stack_reach.rs).
        let reach = self.stack_frames * STACK_FRAME_SIZE;
        let reach_start = stack_bytes + (STACK_SIZE - reach) as u64;
        // SAFETY: the top of the stack area `space` owns.
        unsafe { self.zero_stack(stack_bytes + STACK_SIZE as u64) };
        let regions = &mut space.regions;
        regions.clear();
        regions.set_stack(Region::new(reach_start, reach as u64, true));
        if let Some(trap) = self.unverified_input(data.len(), cx.ctx.map(<[u8]>::len)) {
            return (Err(trap), 0, None);
        }
        // Recycled by the run before (below), or new: only the program type is another's.
        let state = &mut space.state;
        state.prog_type = self.options.prog_type;
        state.tail_call_target = Some(tail_call_target);
        state.packet_stores_proved = self.verifier.is_some();
        state.stack = (stack_bytes, STACK_SIZE as u64);
        state.limits = limits.clone();
        if trace.is_some() {
            // `recycle` left none to drop.
            state.trace = trace;
        }
        let entry = match context::prepare_run(self.options.prog_type, data, cx, state, regions) {
            Ok(entry) => entry,
            Err(trap) => {
                let trace = state.trace.take();
                state.recycle(self.options.prog_type);
                return (Err(trap), 0, trace);
            }
        };
        let budget = budget.unwrap_or(self.options.budget);
        let stack_top = stack_bytes + STACK_SIZE as u64;
        let maps = match &mut space.maps {
            Some(maps) if maps.is_for(self.maps.list()) => maps,
            slot => slot.insert(self.maps.run()),
        };
        let home = &mut space.jit_home;
        let result = self.run_chain(regions, maps, state, home, stack_top, budget, &entry);
        let held = state.release_lock();
        let trace = state.trace.take();
        let outcome = Program::finish(state, result, held, outputs);
        let lost = state.perf_lost;
        // What the next run on this space reuses stays (buffers); what this run referred to
        // (its output, callbacks, address space) goes now.
        state.recycle(self.options.prog_type);
        (outcome, lost, trace)
    }

    /// A run whose input does not fit what a verified program was proved against
    /// (`verifier_kind`): a raw program's data must have the length it was verified for, a
    /// tracing program's context must be a whole `struct pt_regs`.
    fn unverified_input(&self, data_len: usize, ctx_len: Option<usize>) -> Option<Trap> {
        self.verifier.as_ref()?;
        let message = match self.options.prog_type {
            ProgramType::Raw => {
                let size = self.options.data_size?;
                (data_len as u64 != size as u64).then(|| {
                    format!(
                        "this program was verified for {size} bytes of data (dataSize) and was \
                         given {data_len}"
                    )
                })?
            }
            ProgramType::Tracing => {
                let len = ctx_len.unwrap_or(0);
                (len < PT_REGS_SIZE as usize).then(|| {
                    format!(
                        "this program was verified as a kprobe, whose context is a struct pt_regs \
                         of {PT_REGS_SIZE} bytes, and was given {len} bytes of context"
                    )
                })?
            }
            // Zero-extended to the whole context the verifier allows (`context::tracing`).
            ProgramType::Tracepoint | ProgramType::RawTracepoint => return None,
            ProgramType::SocketFilter
            | ProgramType::Xdp
            | ProgramType::Tc
            | ProgramType::CgroupSkb => return None,
        };
        Some(Trap::invalid_input(message))
    }

    /// The outcome of a run whose chain gave `result`, `held` being the instruction that took a
    /// lock still held at the end.
    fn finish(
        state: &RunState,
        result: Result<RunOutput, Trap>,
        held: Option<usize>,
        outputs: Outputs,
    ) -> Result<(RunOutput, ContextOutput), Trap> {
        let out = Program::unlocked(result, held)?;
        let r0 = out.r0;
        let cx_out = match outputs {
            Outputs::All => context::finish_run(state, r0),
            Outputs::R0 => ContextOutput {
                perf_lost: state.perf_lost,
                ..ContextOutput::default()
            },
        };
        Ok((out, cx_out))
    }

    /// `result`, or the trap of a run that ended holding the lock it took at `held`.
    fn unlocked(result: Result<RunOutput, Trap>, held: Option<usize>) -> Result<RunOutput, Trap> {
        let out = result?;
        match held {
            None => Ok(out),
            Some(pc) => Err(Trap {
                kind: TrapKind::HelperError,
                pc,
                addr: 0,
                size: 0,
                insn_count: out.insn_count,
                message: "the program exited holding the bpf_spin_lock it took here".into(),
                place: None,
            }),
        }
    }

    /// Runs this program, then the programs it tail-calls, on the same memory and run state.
    /// `regions` is the run's table (left as the run left it), `maps` this program's map table
    /// (left with `end_run` done, for the next run to reuse); `home` the run space's JIT block,
    /// which each program of the chain runs on in turn (callbacks build their own).
    #[allow(clippy::too_many_arguments)]
    fn run_chain(
        &self,
        regions: &mut Regions,
        maps: &mut crate::maps::RunMaps,
        state: &mut RunState,
        home: &mut crate::run_space::JitHome,
        stack_top: u64,
        budget: u64,
        entry: &context::Entry,
    ) -> Result<RunOutput, Trap> {
        for r in &self.maps.regions {
            regions.push(*r);
        }
        state.packet_stores_proved &= self.verifier.is_some();
        // Each program of a tail-call chain has its own callbacks and output.
        state.callbacks = self.callbacks.clone();
        state.output = self.prints.then(|| self.output.clone());
        let refuse_leaks = self.options.pointer_leaks == PointerLeaks::Refuse;
        state.refuse_pointer_leaks = refuse_leaks;
        // The interpreter counts coverage in its counting loops (`run_counted`); the JIT's code
        // counts by itself.
        // Traced runs count nothing.
        let counting = self.coverage.as_ref().filter(|_| state.trace.is_none());
        state.coverage = counting
            .filter(|_| self.engine() == Engine::Interpreter)
            .cloned();
        let runner = |cx: &mut HelperContext<'_>, cb: &Callback| {
            RunEnv::of_callback(cx, cb, |env| {
                let entry = Entry::Function(cb.pc);
                self.prepared.run_from(&self.insns, env, cb.args, entry)
            })
        };
        let mut env = RunEnv {
            helpers: &self.helpers,
            regions: &mut *regions,
            stack_top,
            budget: self.engine_budget(budget),
            // A tail call after a helper moved the packet (tc) starts on the packet as it is.
            packet: state.packet_moved.unwrap_or(entry.packet),
            maps,
            state,
            function_runner: Some(&runner),
        };
        let mut result = (self.prepared).run_main(&self.insns, &mut env, entry.args, home);
        if let Some(c) = counting {
            // Where the run stopped: its chain's instructions after it were not reached.
            c.stop(match &result {
                Ok(out) => out.exit_pc,
                Err(trap) => trap.pc,
            });
        }
        if refuse_leaks {
            refuse_exit_leak(&mut result, &env);
        }
        // A traced run steps through the reference loop, which counts as it records: it keeps
        // its count (one per step of its trace).
        if env.state.trace.is_none() {
            self.clear_unmetered_count(&mut result);
        }
        // An unmetered program's instructions are not counted, nor charged to the chain's budget.
        let counted = |trap: &Trap| if self.metered { trap.insn_count + 1 } else { 0 };
        let next = match &result {
            Err(trap) => env.state.tail_call.take().map(|p| (p, counted(trap))),
            Ok(_) => None,
        };
        let RunEnv {
            regions,
            maps,
            state,
            ..
        } = env;
        let Some((next, used)) = next else {
            maps.end_run();
            return result;
        };
        let Some(next) = next.as_any().downcast_ref::<Program>() else {
            unreachable!("prog arrays hold programs only");
        };
        // The map keep-alives of this program (`maps`) live until the chain ends.
        let mut next_maps = next.maps.run();
        let result = next.run_chain(
            regions,
            &mut next_maps,
            &mut *state,
            home,
            stack_top,
            budget.saturating_sub(used),
            entry,
        );
        drop(next_maps);
        maps.end_run();
        match result {
            Ok(mut out) => {
                out.insn_count += used;
                Ok(out)
            }
            Err(mut trap) => {
                rebase_trap(&mut trap, used, budget);
                Err(trap)
            }
        }
    }
}

/// A run that ends with a host address in r0 traps instead (pointer leaks refused).
/// Inlined, with `is_host_address`'s first test before its call: most programs return small
/// values.
#[inline(always)]
fn refuse_exit_leak(result: &mut Result<RunOutput, Trap>, env: &RunEnv<'_>) {
    if let Ok(out) = &*result {
        if out.r0 >= pointer_leaks::FIRST_PAGE
            && pointer_leaks::is_host_address(out.r0, env.regions, env.state, env.maps)
        {
            // (0 - 1 wraps for an unmetered run, whose count is cleared after this.)
            let count = out.insn_count.wrapping_sub(1);
            let what = "r0 at exit";
            *result = Err(pointer_leaks::leak(
                out.r0,
                out.exit_pc,
                count,
                what,
                env.state,
                env.maps,
            ));
        }
    }
}

/// An attach type belongs to one program type (`BPF_XDP_DEVMAP` to XDP).
fn check_attach_type(options: &ProgramOptions) -> Result<(), LoadError> {
    match (options.expected_attach_type, options.prog_type) {
        (None, _)
        | (Some(AttachType::XdpDevmap), ProgramType::Xdp)
        | (Some(AttachType::CgroupInetEgress), ProgramType::CgroupSkb) => Ok(()),
        (Some(a), t) => Err(LoadError::new(
            ErrorCode::Einval,
            format!("expected attach type {a:?} is not for programs of type {t:?}"),
        )),
    }
}

/// The program type as the verifier models it: `Raw` as `data_size` bytes of memory (refused
/// without one), `Tracing` as a kprobe's `struct pt_regs` (read only), `Tracepoint` and
/// `RawTracepoint` with the kernel's rules for their contexts. Runs must bring inputs of these
/// sizes (`unverified_input`; the tracepoint contexts are zero-extended to theirs).
fn verifier_kind(options: &ProgramOptions) -> Result<ProgramKind, LoadError> {
    const RAW_NEEDS_SIZE: &str = "mode 'verified' for a raw program needs a data size (dataSize; \
        data_size in Rust): r1 points to data of a length the run chooses, and the verifier can \
        prove accesses only against a length fixed at load (or load it in mode 'checked')";
    Ok(match options.prog_type {
        ProgramType::Raw => ProgramKind::Raw {
            data_size: (options.data_size)
                .ok_or_else(|| LoadError::new(ErrorCode::Enotsupp, RAW_NEEDS_SIZE))?,
        },
        ProgramType::SocketFilter => ProgramKind::SocketFilter,
        ProgramType::Xdp => match options.expected_attach_type {
            Some(AttachType::XdpDevmap) => ProgramKind::XdpDevmap,
            _ => ProgramKind::Xdp,
        },
        ProgramType::CgroupSkb => ProgramKind::CgroupSkb {
            egress: options.expected_attach_type == Some(AttachType::CgroupInetEgress),
        },
        ProgramType::Tracing => ProgramKind::Kprobe,
        ProgramType::Tracepoint => ProgramKind::Tracepoint,
        ProgramType::RawTracepoint => ProgramKind::RawTracepoint,
        ProgramType::Tc => ProgramKind::Tc,
    })
}

/// The engine a program runs on, prepared at load (`vm::env::ExecutionEngine`).
#[derive(Debug)]
enum PreparedEngine {
    Interpreter(interpreter::Prepared),
    #[cfg(target_arch = "x86_64")]
    Jit(crate::jit::JitProgram),
}

impl PreparedEngine {
    /// Prepares the engine that will run a program: `Jit` compiles at load time (so that a run
    /// never pays for it) and fails if it cannot (always, on hosts without the JIT); `Auto`
    /// takes the JIT unless it cannot take this program.
    fn select(requested: Engine, program: &Validated<'_>) -> Result<PreparedEngine, LoadError> {
        let interpreter = || interpreter::Prepared::prepare(program).map(Self::Interpreter);
        #[cfg(target_arch = "x86_64")]
        let jit = || crate::jit::JitProgram::prepare(program).map(Self::Jit);
        #[cfg(not(target_arch = "x86_64"))]
        let jit = || {
            Err(LoadError::new(
                ErrorCode::Enotsupp,
                "the JIT engine needs an x86-64 host",
            ))
        };
        match requested {
            Engine::Interpreter => interpreter(),
            Engine::Jit => jit(),
            Engine::Auto => jit().or_else(|_| interpreter()),
        }
    }

    fn engine(&self) -> Engine {
        match self {
            PreparedEngine::Interpreter(_) => Engine::Interpreter,
            #[cfg(target_arch = "x86_64")]
            PreparedEngine::Jit(_) => Engine::Jit,
        }
    }

    /// `run_from` of the main program, a run of `home`'s run space that is no callback: the JIT
    /// runs it on the space's block (`jit::Home`).
    #[inline(always)]
    fn run_main(
        &self,
        insns: &[Insn],
        env: &mut RunEnv<'_>,
        args: [u64; 5],
        home: &mut crate::run_space::JitHome,
    ) -> Result<RunOutput, Trap> {
        #[cfg(target_arch = "x86_64")]
        if let PreparedEngine::Jit(j) = self {
            if env.state.trace.is_none() {
                return j.run_home(home, insns, env, args);
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let () = *home;
        self.run_from(insns, env, args, Entry::Main)
    }

    /// Runs the program (or one of its callbacks) on this engine; a traced run takes the
    /// interpreter's traced loop on either engine.
    fn run_from(
        &self,
        insns: &[Insn],
        env: &mut RunEnv<'_>,
        args: [u64; 5],
        entry: Entry,
    ) -> Result<RunOutput, Trap> {
        if env.state.trace.is_some() {
            return interpreter::run_traced(insns, env, args, entry.pc());
        }
        match self {
            PreparedEngine::Interpreter(p) => p.run_from(insns, env, args, entry),
            #[cfg(target_arch = "x86_64")]
            PreparedEngine::Jit(j) => j.run_from(insns, env, args, entry),
        }
    }
}
