//! Callbacks: functions a helper calls back (`bpf_loop`, `bpf_for_each_map_elem`), verified
//! in a frame above the helper's caller with the arguments the kernel gives them
//! (`set_loop_callback_state`, `set_map_elem_callback_state`) and a return value in `[0, 1]`.
//!
//! The kernel walks a callback again and again from the helper's call until its states
//! converge. This walk does not compare states, so it takes the fixed point directly: a
//! callback may run any number of times, and all it can change of its callers is the stack of
//! the frames its context pointer reaches; what it may write there is made unknown (every byte
//! written becomes an unknown number, spilled pointers included) both where the caller goes on
//! after the helper and where the callback starts: the context's bytes it stores to when it
//! stores only through its untouched context argument, else all it can reach. Any run of the callback then starts in a state
//! the walk covered, and the caller goes on in one that covers any number of runs. The cost:
//! what the caller kept in those stacks is unknown after the helper (the kernel's widening of
//! imprecise scalars loses much the same).

use super::env::{eacces, refuse, Env, Refusal};
use super::reg::{BaseType, MapRef, RegState, RegType};
use super::state::{CallbackFrame, Reference, SlotType, VerifierState};
use super::subprog;
use crate::error::ErrorCode;

pub const BPF_FOR_EACH_MAP_ELEM: i32 = 164;
pub const BPF_LOOP: i32 = 181;

/// The map types `bpf_for_each_map_elem` walks: hash, array, percpu hash, percpu array, LRU
/// hash, LRU percpu hash.
const FOR_EACH_MAP_TYPES: [u32; 6] = [1, 2, 5, 6, 9, 10];

/// The range a callback's R0 must be in (`retval_range(0, 1)` for both helpers).
const RETURN_RANGE: (i64, i64) = (0, 1);

/// The register holding the context pointer the helper passes on (`callback_ctx`): R3 for
/// both helpers.
const CTX_ARG: usize = 3;

/// After the arguments of helper `helper` (at logical instruction `index`) were checked on
/// `state`: makes the stacks the callback can reach unknown in `state` (where the caller goes
/// on) and returns the state the callback at `entry` starts in.
pub fn visit(
    env: &Env<'_>,
    state: &mut VerifierState,
    (helper, index): (i32, usize),
    entry: usize,
    map: Option<&MapRef>,
) -> Result<VerifierState, Refusal> {
    let ctx = state.frame().regs[CTX_ARG].clone();
    // Where the callback finds the context, and a map value it may write.
    let regs = if helper == BPF_LOOP {
        (2, None)
    } else {
        (4, Some(3))
    };
    match caller_writes(env, entry, regs) {
        CallerWrites::Nothing => {}
        CallerWrites::AtContext(writes) => forget_context_bytes(state, &ctx, &writes),
        CallerWrites::Anything => forget_reachable_stacks(state, &ctx),
    }
    // A callback that may change the packet (itself or through what it calls) leaves no packet
    // pointer valid in its callers, after the helper and in its later runs (the kernel walks
    // the callback's exit back into the caller, so its `clear_all_pkt_pointers` reaches them).
    let callback_fn = env.analysis.functions.function_of(entry);
    if super::packet::function_changes_packet(env.analysis, callback_fn) {
        super::packet::clear_all_pkt_pointers(state);
    }
    let mut callee = subprog::new_frame(env, state, index, entry)?;
    let regs = &mut callee.regs;
    match helper {
        BPF_LOOP => {
            // callback(u64 index, void *ctx)
            regs[1] = RegState::unknown_scalar();
            regs[2] = ctx;
            for reg in &mut regs[3..=5] {
                *reg = RegState::not_init();
            }
        }
        BPF_FOR_EACH_MAP_ELEM => {
            // callback(struct bpf_map *map, void *key, void *value, void *ctx), for the maps
            // that can walk their elements (`map_for_each_callback`).
            if !map.is_some_and(|m| FOR_EACH_MAP_TYPES.contains(&m.map_type)) {
                return Err(refuse(
                    ErrorCode::Enotsupp,
                    "callback function not allowed for map",
                ));
            }
            let map = map.cloned();
            let of = |base| RegState {
                map: map.clone(),
                ..RegState::pointer(RegType::of(base))
            };
            regs[1] = of(BaseType::ConstMap);
            regs[2] = of(BaseType::MapKey);
            regs[3] = of(BaseType::MapValue);
            regs[4] = ctx;
            regs[5] = RegState::not_init();
        }
        _ => {
            return Err(super::env::unsupported(&format!(
                "the callback of helper #{helper}"
            )))
        }
    }
    callee.callback = Some(CallbackFrame {
        ret: RETURN_RANGE,
        refs: state.refs.clone(),
    });
    let mut start = state.clone();
    for r in 0..=5 {
        start.frame_mut().regs[r] = RegState::not_init();
    }
    start.frames.push(callee);
    Ok(start)
}

/// What a callback, with the functions it calls, may change of its callers' stacks.
enum CallerWrites {
    Nothing,
    /// Only these bytes (offset from the context pointer, size): the callback stores through
    /// the register holding the context, which it never redefines, and nowhere else but its
    /// own frame.
    AtContext(Vec<(i64, u32)>),
    Anything,
}

/// What the callback at `entry`, whose context arrives in `ctx_reg` (and a map value in
/// `value_reg`), may write of its callers' stacks: stores through R10 are its own frame's,
/// through the untouched value register the map's; stores through the untouched context
/// register write the context's bytes; any other store, a helper that writes memory, releases
/// a reference (which turns the callers' copies into numbers) or has no known prototype, or a
/// store in a function it calls, may write anything the context reaches.
fn caller_writes(
    env: &Env<'_>,
    entry: usize,
    (ctx_reg, value_reg): (u8, Option<u8>),
) -> CallerWrites {
    use crate::helpers::prototype::ArgType;
    use crate::isa::opcodes::*;
    let functions = &env.analysis.functions;
    let program = &env.analysis.program;
    let first = functions.function_of(entry);
    // Whether the callback's own code ever writes register `r`.
    let (start, end) = (functions.funcs[first].start, functions.funcs[first].end);
    let redefined = |r: u8| {
        (start..end).any(|k| {
            let insn = program.get(k);
            let fetch_into = match atomic_access(insn.opcode, insn.imm()) {
                Some(AtomicAccess::LoadAcquire) => insn.dst == r,
                Some(AtomicAccess::ReadModifyWrite) => {
                    insn.imm() & ATOMIC_FETCH != 0 && insn.src == r
                }
                _ => false,
            };
            let written = matches!(
                class(insn.opcode),
                CLASS_ALU | CLASS_ALU64 | CLASS_LDX | CLASS_LD
            ) && insn.dst == r;
            fetch_into || written
        })
    };
    let ctx_kept = !redefined(ctx_reg);
    // A map value (`bpf_for_each_map_elem`'s) is no caller's stack.
    let value_kept = value_reg.filter(|&r| !redefined(r));
    let mut at_context = Vec::new();
    let mut seen = vec![false; functions.funcs.len()];
    let mut work = vec![first];
    while let Some(f) = work.pop() {
        if std::mem::replace(&mut seen[f], true) {
            continue;
        }
        work.extend(functions.calls_from(f).iter().map(|c| c.callee));
        let func = &functions.funcs[f];
        for index in func.start..func.end {
            let insn = program.get(index);
            let anything = match class(insn.opcode) {
                CLASS_ST | CLASS_STX if insn.dst == 10 => false,
                CLASS_ST | CLASS_STX if f == first && Some(insn.dst) == value_kept => false,
                CLASS_ST | CLASS_STX if f == first && insn.dst == ctx_reg && ctx_kept => {
                    at_context.push((insn.off as i64, access_size(insn.opcode)));
                    false
                }
                CLASS_ST | CLASS_STX => true,
                CLASS_JMP if insn.opcode == OP_CALL && insn.src == CALL_HELPER => {
                    (env.options.prototype)(insn.imm()).is_none_or(|p| {
                        p.args.iter().any(|a| {
                            matches!(
                                a,
                                ArgType::PtrToUninitMem
                                    | ArgType::PtrToUninitMapValue
                                    | ArgType::PtrToFixedSizeUninitMem { .. }
                                    | ArgType::PtrToFixedSizeMem { .. }
                                    | ArgType::PtrToWritableMem
                                    | ArgType::PtrToWritableMemOrNull
                                    | ArgType::PtrToRingbufMemRelease
                            )
                        })
                    })
                }
                CLASS_JMP => insn.opcode == OP_CALL && insn.src == CALL_KFUNC,
                _ => false,
            };
            if anything {
                return CallerWrites::Anything;
            }
        }
    }
    if at_context.is_empty() {
        CallerWrites::Nothing
    } else {
        CallerWrites::AtContext(at_context)
    }
}

/// The bytes the callback writes at fixed offsets from the context pointer `ctx` hold unknown
/// numbers (where the context's offset is not known, everything it reaches does).
fn forget_context_bytes(state: &mut VerifierState, ctx: &RegState, writes: &[(i64, u32)]) {
    let owner = ctx.frameno as usize;
    if ctx.ty.base != BaseType::Stack || owner >= state.frames.len() {
        return;
    }
    if !ctx.bounds.var_off.is_const() {
        return forget_reachable_stacks(state, ctx);
    }
    let base = ctx.bounds.var_off.value as i64 + ctx.off as i64;
    for &(off, size) in writes {
        state.frames[owner].mark_stack_written(base + off, size as usize, false);
    }
}

/// Every stack the context pointer reaches (its frame, and the frames of the stack pointers
/// spilled there, and so on) holds unknown numbers where it held anything.
fn forget_reachable_stacks(state: &mut VerifierState, ctx: &RegState) {
    let mut reached = vec![false; state.frames.len()];
    let mut work = Vec::new();
    if ctx.ty.base == BaseType::Stack {
        work.push(ctx.frameno as usize);
    }
    while let Some(f) = work.pop() {
        if f >= reached.len() || reached[f] {
            continue;
        }
        reached[f] = true;
        for slot in &state.frames[f].stack {
            if slot.spilled.ty.base == BaseType::Stack {
                work.push(slot.spilled.frameno as usize);
            }
        }
    }
    for (frame, _) in state.frames.iter_mut().zip(reached).filter(|(_, r)| *r) {
        for slot in frame.stack.iter_mut() {
            for t in slot.types.iter_mut() {
                if *t != SlotType::Invalid {
                    *t = SlotType::Misc;
                }
            }
            slot.spilled = RegState::not_init();
        }
    }
}

/// A callback's exit: R0 in its range, and nothing acquired that it does not release (a
/// reference it leaves behind leaks from the main program's exit, as the kernel finds it; a
/// lock it leaves held stops the helper's next call).
pub fn check_exit(
    r0: &RegState,
    callback: &CallbackFrame,
    refs: &[Reference],
) -> Result<(), Refusal> {
    if !r0.is_scalar() {
        return Err(eacces("R0 not a scalar value"));
    }
    check_return(r0, callback.ret, "At callback return")?;
    let new: Vec<&Reference> = refs.iter().filter(|r| !callback.refs.contains(r)).collect();
    if new.iter().any(|r| r.lock.is_some()) {
        return Err(refuse(
            ErrorCode::Einval,
            "function calls are not allowed while holding a lock",
        ));
    }
    super::refs::leak(new.into_iter(), "BPF_EXIT instruction in main prog")
}

/// R0, a scalar, at a callback's or the program's exit (`at`: "At callback return", "At
/// program exit"): its signed range lies in `[min, max]` (`retval_range_within`, with the
/// kernel's `verbose_invalid_scalar` message).
pub fn check_return(r0: &RegState, (min, max): (i64, i64), at: &str) -> Result<(), Refusal> {
    let b = &r0.bounds;
    if min <= b.smin && b.smax <= max {
        return Ok(());
    }
    let mut has = String::new();
    if b.smin > i64::MIN {
        has.push_str(&format!(" smin={}", b.smin));
    }
    if b.smax < i64::MAX {
        has.push_str(&format!(" smax={}", b.smax));
    }
    if has.is_empty() {
        has.push_str(" unknown scalar value");
    }
    Err(refuse(
        ErrorCode::Einval,
        format!("{at} the register R0 has{has} should have been in [{min}, {max}]"),
    ))
}
