//! bpf-to-bpf calls: a frame per call, the return to the caller, stack pointers into callers'
//! frames, and the limits on frames and stack along call chains (the kernel's
//! `check_func_call`, `setup_func_entry`, `prepare_func_exit`, `check_max_stack_depth`).
//!
//! A static function is verified in the context of each call, as the kernel does: the callee's
//! R1-R5 are the caller's (pointers into the caller's stack included), R6-R9 and the stack are
//! its own, R10 is its own frame pointer; the caller's R0-R5 are clobbered and R0 gets what the
//! callee left in R0. Global functions (BTF linkage global) are verified once, against their
//! argument types, instead ([`super::global`]).

use super::env::{refuse, Env, Refusal};
use super::log::state_text;
use super::reg::{BaseType, RegState};
use super::state::{FuncState, VerifierState};
use crate::analysis::{CallKind, StackRounding, MAX_BPF_STACK, MAX_CALL_FRAMES};
use crate::error::ErrorCode;

/// A tail call from a function whose callers already hold this many stack bytes is refused
/// (the kernel's bound on what 33 chained tail calls can pile up).
const TAIL_CALL_STACK_LIMIT: u32 = 256;

/// The entry (logical instruction) of the function a call at `index` enters, or the message
/// of a call whose target is outside the program.
fn callee_of(env: &Env<'_>, index: usize) -> Result<usize, Refusal> {
    let insn = env.analysis.program.get(index);
    let target = env
        .analysis
        .program
        .target(index, insn.imm() as i64, "call")
        .map_err(|e| refuse(ErrorCode::Einval, e.message))?;
    Ok(target)
}

/// A bpf-to-bpf `call` at logical instruction `index` (`check_func_call`): for a static
/// function, pushes the callee's frame and returns the instruction to go on at, the callee's
/// entry; a global function's call is checked against its prototype and the walk goes on after
/// it ([`super::global`]). `text` is the instruction as the log prints it.
pub fn call(
    env: &mut Env<'_>,
    state: &mut VerifierState,
    index: usize,
    text: &str,
) -> Result<usize, Refusal> {
    let entry = callee_of(env, index)?;
    let f = env.analysis.functions.function_of(entry);
    if let Some(global) = super::global::global_of(env, f) {
        env.line(text);
        super::global::call(env, state, f, global)?;
        // R0 is new after the `Func#N ... assumed valid.` line: on a line of its own.
        if env.log_on(1) {
            let next = env.analysis.program.slot(index + 1);
            let r0 = state_text(state, state.frame(), Some(&[0]), Some(&[]));
            env.line(&format!("{next}:{r0}"));
        }
        return Ok(index + 1);
    }
    push_frame(env, state, index, entry, text)?;
    Ok(entry)
}

/// Pushes a frame for the function at `entry`, called from `index`, with the caller's R1-R5
/// (the caller's R0-R5 are then gone), and logs the two frames as the kernel does (`caller:` /
/// `callee:`).
fn push_frame(
    env: &mut Env<'_>,
    state: &mut VerifierState,
    index: usize,
    entry: usize,
    text: &str,
) -> Result<(), Refusal> {
    env.line(text);
    let callee = new_frame(env, state, index, entry)?;
    let caller = state.frame_mut();
    for r in 0..=5 {
        caller.regs[r] = RegState::not_init();
    }
    if env.log_on(1) {
        let caller_text = state_text(state, state.frame(), None, None);
        let callee_text = state_text(state, &callee, None, None);
        env.line(&format!("caller:\n{caller_text}\ncallee:\n{callee_text}"));
    }
    state.frames.push(callee);
    if env.log_on(1) {
        let slot = env.analysis.program.slot(entry);
        let now = state_text(state, state.frame(), None, None);
        env.line(&format!("{slot}:{now}"));
    }
    Ok(())
}

/// The frame of a call from `index` in `state`'s current frame to the function at `entry`:
/// R1-R5 the caller's, R10 its own frame pointer; or the kernel's message when eight frames
/// are in use already.
pub fn new_frame(
    env: &Env<'_>,
    state: &VerifierState,
    index: usize,
    entry: usize,
) -> Result<FuncState, Refusal> {
    if state.frames.len() as u32 >= MAX_CALL_FRAMES {
        return Err(refuse(
            ErrorCode::E2big,
            format!(
                "the call stack of {} frames is too deep",
                state.frames.len() + 1
            ),
        ));
    }
    let caller = state.frame();
    let mut callee = FuncState::new(caller.frameno + 1, Some(index));
    callee.subprog = env.analysis.functions.function_of(entry);
    callee.regs[1..=5].clone_from_slice(&caller.regs[1..=5]);
    Ok(callee)
}

/// The `exit` of a called function at logical instruction `index` (`prepare_func_exit`): pops
/// its frame and returns where the caller goes on. R0 must not point into the callee's stack,
/// which is gone. A callback's R0 must be a scalar in its range (and is then precise), and its
/// caller goes back to the helper's call, which may run it again (see [`super::callback`]).
pub fn exit(
    env: &mut Env<'_>,
    state: &mut VerifierState,
    index: usize,
    text: &str,
) -> Result<usize, Refusal> {
    env.line(text);
    // Every frame: the callee may have reached into its callers' stacks.
    for frame in &state.frames {
        env.note_stack_depth(frame);
    }
    let callee = state.frames.pop().expect("a called frame");
    let r0 = &callee.regs[0];
    if r0.ty.base == BaseType::Stack {
        return Err(refuse(
            ErrorCode::Einval,
            "cannot return stack pointer to the caller",
        ));
    }
    let callsite = callee.callsite.expect("a called frame has a call site");
    let back = match &callee.callback {
        Some(callback) => {
            // The range is checked on R0's value: precise (`mark_chain_precision`).
            if r0.is_scalar() {
                env.want_precise(0);
            }
            super::callback::check_exit(r0, callback)?;
            callsite
        }
        None => {
            state.frame_mut().regs[0] = r0.clone();
            callsite + 1
        }
    };
    let from = env.analysis.program.slot(index);
    let to = env.analysis.program.slot(back);
    if env.log_on(1) {
        let callee_text = state_text(state, &callee, None, None);
        let caller_text = state_text(state, state.frame(), None, None);
        env.line(&format!(
            "returning from callee:\n{callee_text}\nto caller at {to}:\n{caller_text}"
        ));
    }
    // After a callback the walk prints the state once it is widened ([`super::callback::widen_imprecise_scalars`]).
    if callee.callback.is_none() {
        log_return(env, state, from, to);
    }
    Ok(back)
}

/// The level-2 line of a return from slot `from` to slot `to`, with the state the caller goes on
/// with (the kernel's `from N to M:`).
pub fn log_return(env: &mut Env<'_>, state: &VerifierState, from: usize, to: usize) {
    if env.log_on(2) {
        let now = state_text(state, state.frame(), None, None);
        env.line(&format!("\nfrom {from} to {to}:{now}"));
    }
}

/// Whether `regs[r]` of the current frame points into the stack of a caller's frame.
pub fn points_to_caller(state: &VerifierState, r: u8) -> bool {
    caller_frame_of(state, r).is_some()
}

fn caller_frame_of(state: &VerifierState, r: u8) -> Option<usize> {
    let frame = state.frame();
    let reg = &frame.regs[r as usize];
    let owner = reg.frameno as usize;
    (reg.ty.base == BaseType::Stack && owner + 1 < state.frames.len()).then_some(owner)
}

/// Runs `f` on the current frame with, when `regs[r]` points into a caller's stack, that
/// stack in place of the frame's own: the loads, stores and helper accesses through the
/// register then read and write the caller's bytes (the kernel's `func(env, reg)`).
pub fn with_stack_of<T>(
    state: &mut VerifierState,
    r: u8,
    f: impl FnOnce(&mut FuncState) -> T,
) -> T {
    let owner = caller_frame_of(state, r);
    let (frame, callers) = state.frames.split_last_mut().expect("a state has a frame");
    match owner {
        None => f(frame),
        Some(o) => {
            std::mem::swap(&mut frame.stack, &mut callers[o].stack);
            let out = f(frame);
            std::mem::swap(&mut frame.stack, &mut callers[o].stack);
            out
        }
    }
}

/// A store through `regs[dst]` into a caller's stack may not leave a stack pointer there: it
/// would outlive the frame it points into (`check_stack_write_fixed_off`).
pub fn check_store_to_caller(
    state: &VerifierState,
    dst: u8,
    value: Option<&RegState>,
) -> Result<(), Refusal> {
    let stack_pointer = value.is_some_and(|v| v.ty.base == BaseType::Stack);
    if stack_pointer && points_to_caller(state, dst) {
        return Err(refuse(
            ErrorCode::Einval,
            "cannot spill pointers to stack into stack frame of the caller",
        ));
    }
    Ok(())
}

/// Where a chain of calls exceeds the stack (`check_max_stack_depth_subprog` from the main
/// function): the functions are walked depth first through their calls in instruction order,
/// callbacks included, each adding its depth rounded to 16 bytes (the JIT's rounding); the
/// first chain past 512 bytes is reported after the whole walk, as the kernel reports it.
pub fn check_stack_depth(env: &Env<'_>) -> Result<(), (usize, Refusal)> {
    let functions = &env.analysis.functions;
    let depth_of = |f: usize| StackRounding::Jit.round(env.stack_depth[f]);
    // (function, next call of it to follow, the call site that entered it)
    let mut chain: Vec<(usize, usize, usize)> = vec![(0, 0, 0)];
    let mut depth = depth_of(0);
    let mut over: Option<(u32, u32, usize)> = (depth > MAX_BPF_STACK).then_some((1, depth, 0));
    while let Some(&mut (f, ref mut next, _)) = chain.last_mut() {
        let Some(call) = functions.calls_from(f).get(*next).copied() else {
            let (f, _, _) = chain.pop().expect("a function on the chain");
            depth -= depth_of(f);
            continue;
        };
        *next += 1;
        debug_assert!(matches!(call.kind, CallKind::Call | CallKind::FuncPointer));
        let site = env.analysis.program.slot(call.site);
        if chain.len() as u32 >= MAX_CALL_FRAMES {
            return Err((
                site,
                refuse(
                    ErrorCode::E2big,
                    format!("the call stack of {} frames is too deep !", chain.len()),
                ),
            ));
        }
        if functions.funcs[call.callee].has_tail_call && depth >= TAIL_CALL_STACK_LIMIT {
            return Err((
                site,
                refuse(
                    ErrorCode::Eacces,
                    format!(
                        "tail_calls are not allowed when call stack of previous frames is {depth} bytes. Too large"
                    ),
                ),
            ));
        }
        depth += depth_of(call.callee);
        chain.push((call.callee, 0, site));
        if depth > MAX_BPF_STACK && over.is_none() {
            over = Some((chain.len() as u32, depth, site));
        }
    }
    match over {
        Some((calls, bytes, site)) => Err((
            site,
            refuse(
                ErrorCode::Eacces,
                format!("combined stack size of {calls} calls is {bytes}. Too large"),
            ),
        )),
        None => Ok(()),
    }
}

/// The kernel finds functions from calls and function `lddw`s only, then requires the loader's
/// function info to name exactly those (`check_btf_func`, before `check_cfg`): a function the
/// function info names that nothing calls or takes the address of is refused for the count.
pub fn check_functions_from_loader(env: &Env<'_>) -> Result<(), Refusal> {
    let funcs = &env.analysis.functions.funcs;
    if funcs
        .iter()
        .skip(1)
        .any(|f| f.from_loader && !f.called && !f.address_taken)
    {
        return Err(refuse(
            ErrorCode::Einval,
            "number of funcs in func_info doesn't match number of subprogs",
        ));
    }
    Ok(())
}

/// A legacy packet load or a tail call in a function other than the main one needs the
/// program's BTF function info (the kernel checks it before the walk, in that order): without
/// it, the functions were not given by a loader.
pub fn check_functions_without_btf(env: &Env<'_>) -> Result<(), Refusal> {
    use crate::isa::opcodes::{class, CLASS_LD, MODE_ABS, MODE_IND};
    let program = &env.analysis.program;
    for f in env.analysis.functions.funcs.iter().skip(1) {
        if f.from_loader {
            continue;
        }
        let ld_abs = (f.start..f.end).any(|k| {
            let code = program.get(k).opcode;
            class(code) == CLASS_LD && matches!(code & 0xe0, MODE_ABS | MODE_IND)
        });
        let (what, found) = if ld_abs {
            ("LD_ABS", true)
        } else {
            ("tail_call", f.has_tail_call)
        };
        if found {
            return Err(refuse(
                ErrorCode::Einval,
                format!("{what} is not allowed in subprogs without BTF"),
            ));
        }
    }
    Ok(())
}
