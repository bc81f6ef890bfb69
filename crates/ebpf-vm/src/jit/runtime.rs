//! One run of compiled code: the context block is filled from the run's environment, the code is
//! entered, and its exit record is turned into the same `RunOutput` or `Trap` the interpreter
//! gives. Also the two Rust entry points compiled code calls: the slow memory check and helpers.

use std::any::Any;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use super::frame::*;
use crate::error::{Trap, TrapKind};
use crate::interpreter::{self, budget_trap, memory_trap, RunEnv, RunOutput, MAX_CALL_FRAMES};
use crate::isa::opcodes::OP_LDDW;
use crate::isa::Insn;
use crate::memory::Region;

/// What the Rust entry points need during a run (behind `Ctx::state`).
struct RunState {
    /// The run's environment; the lifetime is erased because compiled code only hands this
    /// pointer back to the entry points below, all within the run.
    env: *mut RunEnv<'static>,
    budget: u64,
    trap: Option<Trap>,
    panic: Option<Box<dyn Any + Send>>,
}

/// Instructions executed before the one a trap names, from the budget left as the stubs see it
/// (r12 raised by the instructions of the block after the trapping one: see `compile::adj`).
fn count_before(budget: u64, rem: u64) -> u64 {
    budget.wrapping_sub(rem).wrapping_sub(1)
}

/// Slow path of a memory access check: walks the whole region table (it may have grown since the
/// run started). Returns 0 when the access is allowed; otherwise records the trap and returns 1.
///
/// # Safety
/// `ctx` is the context block of a live run, as compiled code passes it.
pub(super) unsafe extern "C" fn check_entry(ctx: *mut Ctx, addr: u64, info: u64, rem: u64) -> u64 {
    let state = &mut *((*ctx).state as *mut RunState);
    let (pc, size, write) = decode_access_info(info);
    match (*state.env).regions.check(addr, size as u64, write) {
        Ok(()) => 0,
        Err(kind) => {
            let count = count_before(state.budget, rem);
            let env = &*state.env;
            state.trap = Some(memory_trap(kind, pc, addr, size, count, write, env));
            (*ctx).exit_kind = EXIT_RECORDED;
            1
        }
    }
}

/// Two words returned in rax:rdx.
#[repr(C)]
pub(super) struct HelperResult {
    value: u64,
    failed: u64,
}

/// Calls helper `id` through `interpreter::call_helper`, so that both engines share one helper
/// path. A panic in a helper is caught here (it must not unwind through compiled code) and
/// resumed once the run is back in Rust.
///
/// # Safety
/// `ctx` is the context block of a live run; `args` points at r1-r5.
pub(super) unsafe extern "C" fn helper_entry(
    ctx: *mut Ctx,
    id: u64,
    pc: u64,
    rem: u64,
    args: *const [u64; 5],
) -> HelperResult {
    let state = &mut *((*ctx).state as *mut RunState);
    let env = &mut *state.env;
    let count = count_before(state.budget, rem);
    let args = *args;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        interpreter::call_helper(env, id, args, pc as usize, count)
    }));
    // A helper may have changed the run's memory (a packet resized, regions added): the inline
    // checks must see the table as it is now.
    refresh_fast_path(&mut *ctx, &*state.env);
    match outcome {
        Ok(Ok(value)) => return HelperResult { value, failed: 0 },
        Ok(Err(trap)) => state.trap = Some(trap),
        Err(panic) => state.panic = Some(panic),
    }
    (*ctx).exit_kind = EXIT_RECORDED;
    HelperResult {
        value: 0,
        failed: 1,
    }
}

/// Exclusive bounds on `addr - region.start` for each access kind (see `Ctx::fast_bound`).
/// `earlier_read_only`: a region before this one is read-only, so a store this one would accept
/// might belong to that one first; such stores go to the slow path.
fn bounds(r: &Region, earlier_read_only: bool) -> [u64; 8] {
    let mut b = [0u64; 8];
    for size in [1u32, 2, 4, 8] {
        for write in [false, true] {
            b[bound_index(size, write)] = bound(r, size as u64, write, earlier_read_only);
        }
    }
    b
}

/// Exclusive bound on `addr - r.start` for `size` bytes at `addr`, 0 when never allowed.
fn bound(r: &Region, size: u64, write: bool, earlier_read_only: bool) -> u64 {
    let allowed = r.len >= size && !(write && (r.writable == 0 || earlier_read_only));
    if allowed {
        r.len - size + 1
    } else {
        0
    }
}

/// Copies what the inline code checks against from the environment: the first two regions and
/// the packet.
fn refresh_fast_path(ctx: &mut Ctx, env: &RunEnv<'_>) {
    let regions = env.regions.as_slice();
    ctx.fast_start = [0; 2];
    ctx.fast_bound = [[0; 8]; 2];
    ctx.hull_bound = [0; 6];
    for (i, r) in regions.iter().take(2).enumerate() {
        ctx.fast_start[i] = r.start;
        let earlier_read_only = i == 1 && regions[0].writable == 0;
        ctx.fast_bound[i] = bounds(r, earlier_read_only);
        if i == 1 {
            for (k, size) in HULL_SIZES.iter().enumerate() {
                for write in [false, true] {
                    ctx.hull_bound[hull_index(k, write)] =
                        bound(r, *size as u64, write, earlier_read_only);
                }
            }
        }
    }
    ctx.data_neg = ctx.fast_start[1].wrapping_neg();
    ctx.packet_start = env.packet.0;
    ctx.packet_len = env.packet.1;
}

/// Runs that compiled code could not take (an unexpected stack region) and the interpreter ran
/// instead: correct, but slow, so tests watch this count.
pub(super) static FALLBACKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Runs compiled code at `entry` for `insns` (the program it was compiled from).
///
/// # Safety
/// `entry` is the entry of code that `compile::compile` produced from exactly `insns`.
pub(super) unsafe fn run(
    entry: *const u8,
    insns: &[Insn],
    env: &mut RunEnv<'_>,
    args: [u64; 5],
    one_frame: bool,
) -> Result<RunOutput, Trap> {
    let regions = env.regions.as_slice();
    // Compiled code accesses [r10 - 512, r10) without checks, which is sound only when the first
    // region holds every frame a run can enter under `stack_top`: the whole stack area, or just the
    // first frame for a program that has no call that could leave it.
    let frames = |n: usize| {
        let len = (n * interpreter::STACK_FRAME_SIZE) as u64;
        Region::new(env.stack_top.wrapping_sub(len), len, true)
    };
    let first = regions.first();
    if first != Some(&frames(MAX_CALL_FRAMES)) && !(one_frame && first == Some(&frames(1))) {
        FALLBACKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return interpreter::run(insns, env, args);
    }
    let mut ctx = Ctx {
        fast_start: [0; 2],
        fast_bound: [[0; 8]; 2],
        hull_bound: [0; 6],
        data_neg: 0,
        packet_start: env.packet.0,
        packet_len: env.packet.1,
        args,
        stack_top: env.stack_top,
        budget: env.budget,
        state: 0,
        self_ptr: 0,
        depth: 0,
        frames: std::mem::MaybeUninit::uninit(),
        r0: 0,
        rem: 0,
        exit_kind: EXIT_NORMAL,
        exit_a: 0,
        exit_b: 0,
    };
    refresh_fast_path(&mut ctx, env);
    let budget = env.budget;
    let mut state = RunState {
        env: std::ptr::from_mut(env).cast::<RunEnv<'static>>(),
        budget,
        trap: None,
        panic: None,
    };
    ctx.state = &mut state as *mut RunState as u64;
    let ctx_ptr: *mut Ctx = &mut ctx;
    (*ctx_ptr).self_ptr = ctx_ptr as u64;
    let code: unsafe extern "C" fn(*mut Ctx) = std::mem::transmute(entry);
    code(ctx_ptr);
    // The epilogue wrote the results through `self_ptr`.
    let out = &*ctx_ptr;
    if let Some(p) = state.panic.take() {
        resume_unwind(p);
    }
    let count_before = count_before(budget, out.rem);
    match out.exit_kind {
        EXIT_NORMAL => Ok(RunOutput {
            r0: out.r0,
            insn_count: budget - out.rem,
            exit_pc: out.exit_a as usize,
        }),
        EXIT_BUDGET => {
            // The block starting at exit_a had only `rem` instructions of budget left: the
            // budget ends before the instruction `rem` places into it.
            let mut pc = out.exit_a as usize;
            for _ in 0..out.rem {
                pc += if insns[pc].opcode == OP_LDDW { 2 } else { 1 };
            }
            Err(budget_trap(pc, budget))
        }
        EXIT_CALL_DEPTH => Err(Trap {
            kind: TrapKind::CallDepth,
            pc: out.exit_a as usize,
            addr: 0,
            size: 0,
            insn_count: count_before,
            message: format!("call depth exceeds {MAX_CALL_FRAMES} frames"),
            place: None,
        }),
        EXIT_MISALIGNED => {
            let (pc, size, write) = decode_access_info(out.exit_b);
            Err(memory_trap(
                TrapKind::Misaligned,
                pc,
                out.exit_a,
                size,
                count_before,
                write,
                env,
            ))
        }
        _ => Err(state
            .trap
            .take()
            .expect("compiled code reported a recorded trap")),
    }
}
