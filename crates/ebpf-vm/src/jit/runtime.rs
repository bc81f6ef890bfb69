//! One run of compiled code: the context block is filled from the run's environment, the code is
//! entered, and its exit record is turned into the same `RunOutput` or `Trap` the interpreter
//! gives. Also the two Rust entry points compiled code calls: the slow memory check and helpers.

use std::any::Any;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use super::batch_loop::{self, Loop, LoopEnd};
use super::finish::{finish, Layout, Paused};
use super::frame::*;
use crate::error::{Trap, TrapKind};
use crate::isa::Insn;
use crate::limits::Meter;
use crate::memory::Region;
use crate::vm::env::{call_helper, memory_trap, RunEnv};
use crate::vm::{RunOutput, MAX_CALL_FRAMES, STACK_FRAME_SIZE};

/// What the Rust entry points need during a run (behind `Ctx::state`).
struct RunState {
    /// The run's environment; the lifetime is erased because compiled code only hands this
    /// pointer back to the entry points below, all within the run.
    env: *mut RunEnv<'static>,
    /// The budget, and what of it r12 does not hold yet (with run limits it comes in slices).
    meter: Meter,
    trap: Option<Trap>,
    panic: Option<Box<dyn Any + Send>>,
    /// What the block's inline-check fields were last filled in from (`FastInputs`): the
    /// run's own copy, or its `Home`'s, which a refresh then updates in place. Read only by
    /// helper calls (so unset, dangling, in a run of code that makes none).
    fast_inputs: *mut FastInputs,
    /// A helper call refilled them (`refresh_fast_path`).
    refreshed: bool,
    /// `helper_entry` or `lookup_entry` was called: a batch's loop of machine code hands such a
    /// run back to Rust (`batch_loop`). Next to `refreshed`, so that a run sets both in one store.
    called_out: bool,
    /// The run's state where its budget ended inside a chain (`EXIT_FINISH`), for Rust to finish.
    finish: Option<Box<Paused>>,
    /// What a finish needs of the program's code.
    layout: *const Layout,
}

/// What `refresh_fast_path` reads from the environment: of the two hot regions their start,
/// length and writability (`hot_key`), and the packet. A helper call that changed none of them
/// (most: a map lookup) needs no refresh.
type FastInputs = ([u64; 6], (u64, u64));

/// What `fast_path` reads of the hot regions, as words: compared in a few instructions
/// (`same_words`).
#[inline(always)]
fn hot_key(env: &RunEnv<'_>) -> [u64; 6] {
    let [s, d] = env.regions.hot();
    [s.start, s.len, s.writable, d.start, d.len, d.writable]
}

/// `a == b` without a branch per word or a call of `bcmp` (what `==` on arrays compiles to).
#[inline(always)]
fn same_words<const N: usize>(a: &[u64; N], b: &[u64; N]) -> bool {
    a.iter().zip(b).fold(0, |d, (x, y)| d | (x ^ y)) == 0
}

fn fast_inputs(env: &RunEnv<'_>) -> FastInputs {
    (hot_key(env), env.packet)
}

impl RunState {
    /// Instructions executed before the one a trap names, from the budget in hand as the stubs
    /// see it (r12 raised by the instructions of the block after the trapping one: see
    /// `compile::adj`). Metered code has charged the instruction itself, so the count is at
    /// least 1; unmetered code charges nothing, and its count (what helpers charged) may be 0.
    fn count_before(&self, rem: u64) -> u64 {
        self.meter.count(rem).saturating_sub(1)
    }
}

/// Marks the run as left with its trap recorded (`EXIT_RECORDED`), in the Rust-side block where
/// the exit stubs write their results (`Ctx::self_ptr`).
///
/// # Safety
/// `ctx` is the context block of a live run, as compiled code passes it.
unsafe fn record_exit(ctx: *mut Ctx) {
    (*((*ctx).self_ptr as *mut Ctx)).exit_kind = EXIT_RECORDED;
}

/// Slow path of a memory access check: walks the whole region table (it may have grown since the
/// run started). `info` is the access's `access_info` in its low 32 bits and, in its high 32, what
/// the chain charged ahead of it (`Compiler::adj`), which the count of a trap gives back (the code
/// leaves r12 as it is, so that an access allowed here needs no undoing). Returns 0 when the
/// access is allowed; otherwise records the trap and returns 1.
///
/// # Safety
/// `ctx` is the context block of a live run, as compiled code passes it.
pub(super) unsafe extern "C" fn check_entry(ctx: *mut Ctx, addr: u64, info: u64, rem: u64) -> u64 {
    let state = &mut *((*ctx).state as *mut RunState);
    let (pc, size, write) = decode_access_info(info & u64::from(u32::MAX));
    match (*state.env).regions.check(addr, size as u64, write) {
        Ok(()) => 0,
        Err(kind) => {
            let count = state.count_before(rem.wrapping_add(info >> 32));
            let env = &*state.env;
            state.trap = Some(memory_trap(kind, pc, addr, size, count, write, env));
            record_exit(ctx);
            1
        }
    }
}

/// Two words returned in rax:rdx.
#[repr(C)]
pub(super) struct TwoWords(u64, u64);

/// Calls helper `id` through `vm::env::call_helper`, so that both engines share one helper
/// path. Returns r0 and the budget in hand after what the helper charged (callbacks), or all ones
/// in rdx when the run must stop (the trap is recorded). A panic in a helper is caught here (it
/// must not unwind through compiled code) and resumed once the run is back in Rust.
///
/// # Safety
/// `ctx` is the context block of a live run; `args` points at r1-r5.
pub(super) unsafe extern "C" fn helper_entry(
    ctx: *mut Ctx,
    id: u64,
    pc: u64,
    rem: u64,
    args: *const [u64; 5],
) -> TwoWords {
    let state = &mut *((*ctx).state as *mut RunState);
    state.called_out = true;
    // A helper may take a trie's lock that a batch's loop holds on this thread.
    crate::maps::lpm::unpin_batch();
    let env = &mut *state.env;
    let count = state.count_before(rem);
    let args = *args;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        call_helper(env, id, args, pc as usize, count)
    }));
    // A helper may have changed the run's memory (a packet resized, a frame moved): the inline
    // checks must see it as it is now.
    let now = fast_inputs(&*state.env);
    if now != *state.fast_inputs {
        refresh_fast_path(&mut *ctx, &*state.env);
        *state.fast_inputs = now;
        state.refreshed = true;
    }
    match outcome {
        Ok(Ok(ret)) => return TwoWords(ret.r0, state.meter.take(rem, ret.charged)),
        Ok(Err(trap)) => state.trap = Some(trap),
        Err(panic) => state.panic = Some(panic),
    }
    record_exit(ctx);
    TwoWords(0, u64::MAX)
}

/// `bpf_map_lookup_elem` at a call site whose map and key the verifier proved (as
/// `helper_entry`, whose signature it has): the lookup without the general path's checks
/// (`helpers::maps::lookup_proved`), or that path when the fast one does not apply.
///
/// # Safety
/// As `helper_entry`; and the key in r2 is readable for the map's key size (the proof).
pub(super) unsafe extern "C" fn lookup_entry(
    ctx: *mut Ctx,
    id: u64,
    pc: u64,
    rem: u64,
    args: *const [u64; 5],
) -> TwoWords {
    let state = &mut *((*ctx).state as *mut RunState);
    state.called_out = true;
    crate::maps::lpm::unpin_batch();
    let env = &mut *state.env;
    let [map, key, ..] = *args;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let (helpers, maps, regions) = (env.helpers, &mut *env.maps, &mut *env.regions);
        crate::helpers::maps::lookup_proved(helpers, maps, regions, env.state, (map, key))
    }));
    let r0 = match outcome {
        Ok(Some(r0)) => r0,
        Ok(None) => return helper_entry(ctx, id, pc, rem, args),
        Err(panic) => {
            state.panic = Some(panic);
            record_exit(ctx);
            return TwoWords(0, u64::MAX);
        }
    };
    // A lookup adds at most a value area to the region table: the hot regions (stack, data or
    // context) and the packet, which the inline checks read, are as they were.
    debug_assert!(fast_inputs(&*state.env) == *state.fast_inputs);
    TwoWords(r0, state.meter.take(rem, 0))
}

/// The budget in hand does not cover the chain at `pc` of `need` instructions (`r12` is the
/// budget in hand less `need`, wrapped): checks the run's limits and hands over the next slice
/// (`limits::Meter::refill`). Returns the budget in hand with the chain charged and 0; or 1 in
/// rdx when the run must leave: a limit stopped it (the trap is recorded), or the budget ends
/// inside the chain, none of whose instructions has run, and the run is left for Rust to finish
/// (`finish`) from its registers (r0-r10 at `reg`) and frames.
///
/// # Safety
/// `ctx` is the context block of a live run; `reg` points at the run's registers r0-r10.
pub(super) unsafe extern "C" fn refill_entry(
    ctx: *mut Ctx,
    pc: u64,
    need: u64,
    r12: u64,
    reg: *const [u64; 11],
) -> TwoWords {
    let state = &mut *((*ctx).state as *mut RunState);
    let limits = &(*state.env).state.limits;
    let rem = r12.wrapping_add(need);
    match state.meter.refill(limits, rem, need, pc as usize) {
        Ok(in_hand) if in_hand >= need => TwoWords(in_hand - need, 0),
        Ok(in_hand) => {
            let paused = Paused::capture(ctx, pc as usize, reg, in_hand);
            state.finish = Some(Box::new(paused));
            (*((*ctx).self_ptr as *mut Ctx)).exit_kind = EXIT_FINISH;
            TwoWords(0, 1)
        }
        Err(trap) => {
            state.trap = Some(trap);
            record_exit(ctx);
            TwoWords(0, 1)
        }
    }
}

/// Exclusive bounds on `addr - r.start` for accesses of each of `sizes`, loads then stores (see
/// `Ctx::fast_bound`, `Ctx::hull_bound`): `len - size + 1`, 0 when the access never fits or is a
/// store the region refuses. `earlier_read_only`: a region before this one is read-only, so a
/// store this one would accept might belong to that one first; such stores go to the slow path.
/// Straight-line: it runs at every run's start and after every helper call.
#[inline(always)]
fn bounds<const N: usize, const M: usize>(
    r: &Region,
    sizes: [u64; N],
    earlier_read_only: bool,
) -> [u64; M] {
    let stores = if r.writable == 0 || earlier_read_only {
        0
    } else {
        u64::MAX
    };
    const {
        // The layout `bound_index` and `hull_index` give: loads by size, then stores.
        assert!(bound_index(1, false) == 0 && bound_index(8, false) == 3);
        assert!(bound_index(1, true) == 4 && bound_index(8, true) == 7);
        assert!(hull_index(0, false) == 0 && hull_index(0, true) == 3);
    }
    debug_assert_eq!(M, 2 * N);
    let mut b = [0u64; M];
    for (k, size) in sizes.into_iter().enumerate() {
        let load = r.len.saturating_sub(size - 1);
        b[k] = load;
        b[N + k] = load & stores;
    }
    b
}

/// What the inline code checks against (`Ctx::fast_start`, `fast_bound`, `hull_bound`,
/// `data_neg`), from the run's stack and data (`Regions::hot`).
type FastPath = ([u64; 2], [[u64; 8]; 2], [u64; 6], u64);

/// Access sizes of `Ctx::fast_bound`, and the spans of `Ctx::hull_bound`.
const ACCESS: [u64; 4] = [1, 2, 4, 8];
const HULL: [u64; 3] = [
    HULL_SIZES[0] as u64,
    HULL_SIZES[1] as u64,
    HULL_SIZES[2] as u64,
];

#[inline(always)]
fn fast_path(env: &RunEnv<'_>) -> FastPath {
    let [stack, data] = env.regions.hot();
    let earlier_read_only = stack.writable == 0;
    (
        [stack.start, data.start],
        [
            bounds(&stack, ACCESS, false),
            bounds(&data, ACCESS, earlier_read_only),
        ],
        bounds(&data, HULL, earlier_read_only),
        data.start.wrapping_neg(),
    )
}

/// Copies what the inline code checks against from the environment (after a helper call, which
/// may have moved the packet or added regions).
fn refresh_fast_path(ctx: &mut Ctx, env: &RunEnv<'_>) {
    (ctx.fast_start, ctx.fast_bound, ctx.hull_bound, ctx.data_neg) = fast_path(env);
    ctx.packet_start = env.packet.0;
    ctx.packet_len = env.packet.1;
}

/// Where a run of compiled code starts.
pub(super) enum Start {
    /// The main prologue, which falls into slot 0.
    Main(*const u8),
    /// A function (callback): the function prologue, the code of the function's first
    /// instruction and that instruction's index.
    Function(*const u8, *const u8, usize),
}

/// Runs compiled code for `insns` (the program it was compiled from) from `start`.
///
/// # Safety
/// The addresses of `start` are in code that `compile::compile` produced from exactly `insns`.
pub(super) unsafe fn run(
    start: Start,
    insns: &[Insn],
    layout: &Layout,
    env: &mut RunEnv<'_>,
    args: [u64; 5],
    stack_frames: usize,
    checks: bool,
) -> Result<RunOutput, Trap> {
    let (entry, target, start_pc) = match start {
        Start::Main(entry) => (entry, 0, 0),
        Start::Function(entry, code, pc) => (entry, code as u64, pc),
    };
    let stack_ok = match start {
        Start::Main(_) => main_stack_ok(env, stack_frames),
        Start::Function(..) => env.state.is_callback_stack(env.stack_top),
    };
    if !stack_ok {
        // An embedder's environment (`RunEnv`) whose stack is not where r10 points.
        return Err(Trap::invalid_input(format!(
            "the run's stack does not hold the {stack_frames} frames of 512 bytes under r10 that \
             this program can reach (entry at {start_pc})"
        )));
    }
    let mut ctx = new_ctx(env, args, target, checks);
    let meter = Meter::start(env.budget, &env.state.limits);
    let mut inputs = fast_inputs(env);
    enter(&mut ctx, entry, (insns, layout), env, &mut inputs, meter).0
}

/// Compiled code accesses [r10 - 512, r10) without checks, which is sound only when every frame
/// a run can enter under `stack_top` is memory of the run: for the main program the run's stack
/// holds the frames its calls can reach (`stack_reach`); a callback runs on one of the run's
/// callback stacks, each a whole stack area and a region of the run. Whether `env`'s stack is
/// such a stack for the main program.
fn main_stack_ok(env: &RunEnv<'_>, stack_frames: usize) -> bool {
    let len = (stack_frames * STACK_FRAME_SIZE) as u64;
    let stack = env.regions.stack();
    stack.writable != 0 && env.stack_top == stack.start.wrapping_add(stack.len) && stack.len >= len
}

/// The block of a run at `target` (0: the main program) on `env`, with its inline-check fields
/// where the code has inline checks (`checks`; code without reads none of them but `data_neg`);
/// the budget not yet filled in (`enter`).
fn new_ctx(env: &RunEnv<'_>, args: [u64; 5], target: u64, checks: bool) -> Ctx {
    let (fast_start, fast_bound, hull_bound, data_neg) = if checks {
        fast_path(env)
    } else {
        let data_neg = env.regions.hot()[1].start.wrapping_neg();
        ([0; 2], [[0; 8]; 2], [0; 6], data_neg)
    };
    Ctx {
        fast_start,
        fast_bound,
        hull_bound,
        data_neg,
        packet_start: env.packet.0,
        packet_len: env.packet.1,
        args,
        stack_top: env.stack_top,
        entry: target,
        ..new_block()
    }
}

/// A block of nothing yet: the fields a run does not fill in are 0 (`depth` and the results
/// are written by compiled code, `frames` never read on the Rust side).
#[inline(always)]
fn new_block() -> Ctx {
    Ctx {
        fast_start: [0; 2],
        fast_bound: [[0; 8]; 2],
        hull_bound: [0; 6],
        data_neg: 0,
        packet_start: 0,
        packet_len: 0,
        args: [0; 5],
        stack_top: 0,
        budget: 0,
        state: 0,
        self_ptr: 0,
        standing: 0,
        resume: 0,
        depth: 0,
        loop_limit: 0,
        pool: std::mem::MaybeUninit::uninit(),
        frames: std::mem::MaybeUninit::uninit(),
        r0: 0,
        rem: 0,
        exit_kind: EXIT_NORMAL,
        exit_a: 0,
        exit_b: 0,
        entry: 0,
    }
}

/// Enters compiled code at `entry` with `ctx` (filled in for `env`) under `env`'s budget, and
/// turns the way it left into the run's output or trap; and whether a helper call refilled the
/// block's region-dependent fields (`refresh_fast_path`). Inlined: a run's result is then built
/// where its caller wants it, and the caller's words (r1-r5, the hot regions) are not copied
/// again on the way in.
///
/// # Safety
/// As `run`'s; `ctx` is filled in for `env` (`new_ctx`, `refresh_fast_path`), `entry` is where
/// `run` would enter, `inputs` holds `fast_inputs(env)` (or points nowhere when the code calls
/// no helper: only helper calls read it), and `(meter, in_hand)` is
/// `Meter::start` of `env`'s budget and limits.
#[inline(always)]
unsafe fn enter(
    ctx: &mut Ctx,
    entry: *const u8,
    (insns, layout): (&[Insn], &Layout),
    env: &mut RunEnv<'_>,
    inputs: *mut FastInputs,
    (meter, in_hand): (Meter, u64),
) -> (Result<RunOutput, Trap>, bool) {
    let mut state = run_state(env, inputs, meter, layout);
    let ctx_ptr = arm(ctx, &mut state, in_hand);
    let code: unsafe extern "C" fn(*mut Ctx) = std::mem::transmute(entry);
    code(ctx_ptr);
    // The exit stubs wrote the results through `self_ptr`.
    let result = outcome(&*ctx_ptr, &mut state, insns, env);
    (result, state.refreshed)
}

/// Readies `ctx` for a run under `state` with `in_hand` of budget: the budget, a normal exit
/// until the code says otherwise, the run state and the block's own address (through which the
/// exit stubs write the results). Returns that address.
#[inline(always)]
fn arm(ctx: &mut Ctx, state: *mut RunState, in_hand: u64) -> *mut Ctx {
    ctx.budget = in_hand;
    ctx.exit_kind = EXIT_NORMAL;
    ctx.state = state as u64;
    let ctx_ptr: *mut Ctx = ctx;
    // SAFETY: `ctx`'s own address, written through the pointer the code will be given (not
    // through `ctx`, which would retire that pointer).
    unsafe { (*ctx_ptr).self_ptr = ctx_ptr as u64 };
    ctx_ptr
}

/// The run state of a run on `env` (`inputs` as `enter`'s) under `meter`.
#[inline(always)]
fn run_state(
    env: &mut RunEnv<'_>,
    inputs: *mut FastInputs,
    meter: Meter,
    layout: &Layout,
) -> RunState {
    RunState {
        layout,
        env: std::ptr::from_mut(env).cast::<RunEnv<'static>>(),
        meter,
        trap: None,
        panic: None,
        fast_inputs: inputs,
        refreshed: false,
        called_out: false,
        finish: None,
    }
}

/// The output or trap of the run whose exit record `out` holds.
///
/// # Safety
/// The program whose code ran is alive, and `insns` are the instructions it was compiled from.
#[inline(always)]
unsafe fn outcome(
    out: &Ctx,
    state: &mut RunState,
    insns: &[Insn],
    env: &mut RunEnv<'_>,
) -> Result<RunOutput, Trap> {
    if out.exit_kind == EXIT_NORMAL && state.panic.is_none() {
        Ok(RunOutput {
            r0: out.r0,
            insn_count: state.meter.count(out.rem),
            exit_pc: out.exit_a as usize,
        })
    } else {
        exit_other(out, state, insns, env)
    }
}

/// The outcome of a run that did not leave normally (`enter`), from its exit record and run
/// state: a trap, or the end of a run its budget left to Rust to finish (`finish`); a panic
/// caught in a helper is resumed here.
///
/// # Safety
/// As `outcome`'s.
#[cold]
#[inline(never)]
unsafe fn exit_other(
    out: &Ctx,
    state: &mut RunState,
    insns: &[Insn],
    env: &mut RunEnv<'_>,
) -> Result<RunOutput, Trap> {
    if let Some(p) = state.panic.take() {
        resume_unwind(p);
    }
    let count_before = state.count_before(out.rem);
    Err(match out.exit_kind {
        EXIT_FINISH => {
            let paused = *(state.finish.take()).expect("a run left to finish has its state");
            return finish(paused, (insns, &*state.layout), env, &mut state.meter);
        }
        EXIT_CALL_DEPTH => Trap {
            kind: TrapKind::CallDepth,
            pc: out.exit_a as usize,
            addr: 0,
            size: 0,
            insn_count: count_before,
            message: format!("call depth exceeds {MAX_CALL_FRAMES} frames"),
            place: None,
        },
        EXIT_MISALIGNED => {
            let (pc, size, write) = decode_access_info(out.exit_b);
            memory_trap(
                TrapKind::Misaligned,
                pc,
                out.exit_a,
                size,
                count_before,
                write,
                env,
            )
        }
        _ => (state.trap.take()).expect("compiled code reported a recorded trap"),
    })
}

/// The context block of the runs of main programs on one run space, one after another (a
/// thread's single runs, `Program::run`; a batch's packets, `Repeat`): kept between runs, so
/// that a run writes only what changes from one run to the next (r1-r5, r10, the packet and
/// the budget) and fills the region-dependent fields (`data_neg`, the inline-check bounds) only
/// where the run's stack or data moved. Nested runs (callbacks, which a helper runs inside a
/// run) never use it: they build their own block (`run`); a tail call's run follows the one
/// before it, which has left by then.
pub struct Home {
    ctx: Ctx,
    /// The hot regions (`hot_key`) the block's region-dependent fields are of: `data_neg`, and
    /// the inline-check bounds when `bounds`; and the packet of the run (what a helper call
    /// compares with, `FastInputs`). All ones before the first run: regions of `u64::MAX`
    /// bytes at `u64::MAX`, which no run has.
    inputs: FastInputs,
    bounds: bool,
}

impl Default for Home {
    fn default() -> Home {
        Home {
            ctx: new_block(),
            inputs: ([u64::MAX; 6], (u64::MAX, u64::MAX)),
            bounds: false,
        }
    }
}

impl Home {
    /// One run of the main program whose code starts at `entry`, as `run` gives it (`stack_frames`
    /// and `checks` as there).
    ///
    /// # Safety
    /// `entry` is the main entry of code that `compile::compile` produced from exactly `insns`.
    #[inline(always)]
    pub(super) unsafe fn run(
        &mut self,
        entry: *const u8,
        (insns, layout): (&[Insn], &Layout),
        env: &mut RunEnv<'_>,
        args: [u64; 5],
        stack_frames: usize,
        checks: bool,
    ) -> Result<RunOutput, Trap> {
        if !main_stack_ok(env, stack_frames) {
            // The refusal, as `run` words it.
            return run(
                Start::Main(entry),
                insns,
                layout,
                env,
                args,
                stack_frames,
                checks,
            );
        }
        let hot = hot_key(env);
        // 1 in a batch, whose maps' value areas stand as regions for the whole run: the inline
        // array lookups may then skip the stub (`jit/compile/lookup.rs`).
        let standing = env.maps.standing_areas() as u64;
        self.set_inputs(env, args, hot, checks, standing);
        self.inputs.1 = env.packet;
        let meter = Meter::start(env.budget, &env.state.limits);
        let ctx = &mut self.ctx;
        let code = (insns, layout);
        let (result, refreshed) = enter(ctx, entry, code, env, &mut self.inputs, meter);
        self.after(refreshed);
        result
    }

    /// Whether the block's region-dependent fields are of the hot regions `hot` (`hot_key`),
    /// the inline-check bounds included where the code has inline checks (`checks`).
    #[inline(always)]
    fn is_of(&self, hot: &[u64; 6], checks: bool) -> bool {
        same_words(hot, &self.inputs.0) && (!checks || self.bounds)
    }

    /// After a run (or a batch loop's trip) on the block: where a helper moved a region
    /// (`refreshed`), it refilled the region-dependent fields of the host stack's copy of the
    /// block (`helper_entry`), not this block's, so the next run fills them in again, whatever
    /// its regions.
    #[inline(always)]
    fn after(&mut self, refreshed: bool) {
        if refreshed {
            self.inputs.0 = [u64::MAX; 6];
        }
    }

    /// Writes the run's inputs into the block: r1-r5 (`args`), r10, the packet and `standing`;
    /// and its region-dependent fields where the block is not of the run's hot regions `hot`
    /// (`hot_key`) already (`fill`).
    #[inline(always)]
    fn set_inputs(
        &mut self,
        env: &RunEnv<'_>,
        args: [u64; 5],
        hot: [u64; 6],
        checks: bool,
        standing: u64,
    ) {
        if !self.is_of(&hot, checks) {
            self.fill(env, hot, checks);
        }
        let ctx = &mut self.ctx;
        (ctx.packet_start, ctx.packet_len) = env.packet;
        ctx.args = args;
        ctx.stack_top = env.stack_top;
        ctx.standing = standing;
    }

    /// Fills the block's region-dependent fields for the hot regions `hot` (`hot_key`):
    /// `data_neg` from `hot` itself, and the inline-check bounds from `env`'s regions when the
    /// code has inline checks (a run that leaves the region table unset has none: see
    /// `run_plain`). Inlined: an XDP batch's packets each fill it (each has its own data).
    #[inline(always)]
    fn fill(&mut self, env: &RunEnv<'_>, hot: [u64; 6], checks: bool) {
        let ctx = &mut self.ctx;
        if checks {
            debug_assert!(hot == hot_key(env));
            (ctx.fast_start, ctx.fast_bound, ctx.hull_bound, ctx.data_neg) = fast_path(env);
        } else {
            // The data's start (`hot_key`: the second region's start, its fourth word).
            ctx.data_neg = hot[3].wrapping_neg();
        }
        self.inputs.0 = hot;
        self.bounds = checks;
    }

    /// `run` of a program that calls no helper (so nothing in the run moves a region or the
    /// packet) on an environment its caller has just set up: the run's stack is the frames the
    /// code was compiled for under `env.stack_top`, writable (what `run` checks first), its hot
    /// regions are `hot` (`hot_key` of the run's stack and data), its maps stand for no run, and
    /// its limits are inactive (the whole budget is in hand from the start). A plain single run
    /// (`Program::run`, `program/plain.rs`) knows all of this without reading it back; it may
    /// even leave `env`'s region table as another run left it when nothing of this run reads
    /// it (`Program::bare`: code without inline checks, whose block is filled from `hot` alone).
    ///
    /// # Safety
    /// As `run`'s, and the run's memory is as above (the stack above all: compiled code
    /// accesses the frames under r10 unchecked).
    #[inline(always)]
    pub(super) unsafe fn run_plain(
        &mut self,
        entry: *const u8,
        code: (&[Insn], &Layout),
        env: &mut RunEnv<'_>,
        args: [u64; 5],
        checks: bool,
        hot: [u64; 6],
    ) -> Result<RunOutput, Trap> {
        debug_assert!(!env.state.limits.is_active() && !env.maps.standing_areas());
        self.set_inputs(env, args, hot, checks, 0);
        let meter = Meter {
            budget: env.budget,
            reserve: 0,
            stopped: None,
        };
        // No helper call reads `inputs` or refreshes the block (`refreshed` stays false); its
        // packet is left as it is, for the next `run` to set.
        let inputs = std::ptr::null_mut();
        let ctx = &mut self.ctx;
        enter(ctx, entry, code, env, inputs, (meter, env.budget)).0
    }
}

/// Runs of the main program one after another on one environment whose stack and stack top stay
/// the same (a batch of helper-free socket filters, `program/straight.rs`; an XDP batch): a
/// `Home` for one program's code.
pub struct Repeat {
    home: Home,
    entry: *const u8,
    stack_frames: usize,
    checks: bool,
}

impl Repeat {
    /// The block for runs at the main entry `entry` on `env`, or `None` where `run` would refuse
    /// the run (the run's stack is not the stack compiled code needs).
    pub(super) fn new(
        entry: *const u8,
        env: &RunEnv<'_>,
        stack_frames: usize,
        checks: bool,
    ) -> Option<Repeat> {
        main_stack_ok(env, stack_frames).then(|| Repeat {
            home: Home::default(),
            entry,
            stack_frames,
            checks,
        })
    }

    /// Where its runs enter.
    pub(super) fn entry(&self) -> *const u8 {
        self.entry
    }

    /// One run with r1-r5 `args` on `env` as it is now.
    ///
    /// # Safety
    /// `entry` (given to `new`) is the main entry of code compiled from exactly `insns`.
    pub(super) unsafe fn run(
        &mut self,
        code: (&[Insn], &Layout),
        env: &mut RunEnv<'_>,
        args: [u64; 5],
    ) -> Result<RunOutput, Trap> {
        let (entry, frames, checks) = (self.entry, self.stack_frames, self.checks);
        self.home.run(entry, code, env, args, frames, checks)
    }
}

impl Repeat {
    /// Runs packets `lp.index..lp.end` of a batch in the loop of machine code (`batch_loop`) on
    /// the block of the run before, which `run` set up: `None` (nothing ran) when that block is
    /// not of `env`'s hot regions as they are. The loop records the runs it can in `lp.out`; the
    /// first it cannot ends it, and its output or trap is returned (`LoopEnd::Left`). Only for
    /// unmetered code run without limits: the block's budget is filled in once for all the runs.
    ///
    /// # Safety
    /// As `run`'s, and `lp` describes the batch's frame, packets and stack (`batch_loop::Loop`).
    pub(super) unsafe fn run_loop(
        &mut self,
        (insns, layout): (&[Insn], &Layout),
        env: &mut RunEnv<'_>,
        lp: &mut Loop,
    ) -> Option<LoopEnd> {
        let hot = hot_key(env);
        let home = &mut self.home;
        if !home.is_of(&hot, self.checks) {
            return None;
        }
        home.inputs.1 = env.packet;
        let inputs: *mut FastInputs = &mut home.inputs;
        let (meter, in_hand) = Meter::start(env.budget, &env.state.limits);
        let mut state = run_state(env, inputs, meter, layout);
        let sp: *mut RunState = &mut state;
        let ctx_ptr = arm(&mut home.ctx, sp, in_hand);
        let (driver, resume) = batch_loop::driver();
        lp.resume = resume;
        lp.left = 0;
        // The main program's exit goes back to the loop while it runs, and only then.
        (*ctx_ptr).resume = std::ptr::from_mut(lp) as u64;
        lp.block = ctx_ptr as u64;
        lp.called_out = std::ptr::addr_of!((*sp).called_out) as u64;
        driver(lp);
        (*ctx_ptr).resume = 0;
        let state = &mut *sp;
        home.after(state.refreshed);
        let out = &*ctx_ptr;
        let done = out.exit_kind == EXIT_NORMAL && lp.left == 0 && state.panic.is_none();
        Some(match done {
            true => LoopEnd::Done,
            false => LoopEnd::Left(outcome(out, state, insns, env)),
        })
    }
}
