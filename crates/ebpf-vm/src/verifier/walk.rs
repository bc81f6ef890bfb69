//! The path walk (the kernel's `do_check`): every path from the first instruction is followed
//! with its own state, the fall-through of a branch first and the jump target later, until an
//! `exit` or a prune point where an explored state covers it ([`super::prune`]); the first
//! instruction whose rule fails rejects the program with the kernel's message. The walk records
//! what the backtracking of precision needs ([`super::precision`]): the jumps taken, the stack
//! slots touched, the scalars a jump refined together, and the scalars each instruction relied
//! on.
//!
//! This is the first walk: straight code, branches (scalar bounds on both sides, null checks,
//! packet ranges from comparisons against `data_end`), stack spills and fills (at fixed and
//! variable offsets), context loads
//! for raw, socket filter and XDP programs, map `lddw`s, helper calls checked from their
//! prototypes ([`super::call`]), bpf-to-bpf calls with a frame each ([`super::subprog`]),
//! ring buffer references ([`super::refs`]), spin locks ([`super::lock`]), callbacks as paths
//! of their own ([`super::callback`]), atomic read-modify-write operations, legacy packet
//! loads, bounded loops (pruning: [`super::prune`]), and with the option the rules of
//! unprivileged loads ([`super::unprivileged`]). Not yet: load-acquire/store-release.
//! Each of those is a rejection that says so, never a silent acceptance.

use std::fmt::Write;

use super::access::{self, Stored};
use super::arith::{self, check_init, check_writable};
use super::branch::{self, Taken};
use super::call::{self, CallLog};
use super::env::{
    eacces, refuse, unsupported, Env, Refusal, Rejection, Verified, VerifyOptions, COMPLEXITY_LIMIT,
};
use super::global;
use super::insn_text::{insn_text, state_column_padding};
use super::lock;
use super::log::{frame_state, state_text};
use super::map_fields;
use super::packet;
use super::precision::{self, Hist, Marks, PrecisionLog, Segment};
use super::prune::{Explored, Visit};
use super::refs;
use super::reg::{BaseType, RegState, RegType};
use super::state::{FuncState, VerifierState};
use super::subprog;
use super::unprivileged;
use crate::analysis::{Analysis, Imm64};
use crate::error::ErrorCode;
use crate::isa::opcodes::*;

/// A path waiting to be walked: its state at `insn` (logical), reached from slot `from`.
struct Pending {
    state: VerifierState,
    insn: usize,
    /// The logical instruction it was reached from (the branch), none for the entry.
    from: Option<usize>,
    /// The path since its checkpoint (set by the walk when it forks).
    segment: Segment,
    /// Where the log stood when the path forked off (set by the walk when it forks): at level
    /// 1 the log goes back there when the path is taken up, so that only the path that failed
    /// stays in it (the kernel's `bpf_vlog_reset` in `pop_stack`).
    log_pos: usize,
}

/// What one instruction does to the path.
enum Next {
    /// Go on at this logical instruction.
    Goto(usize),
    /// The path ended (`exit` of the main program).
    End,
}

/// Verifies the program of `analysis` as `options` describe: the main function with every
/// static function in the context of its calls, then each global function called on some path,
/// once, on its own (`do_check_main`, then `do_check_subprogs`).
pub fn verify(analysis: &Analysis, options: &VerifyOptions<'_>) -> Result<Verified, Rejection> {
    let mut env = Env::new(analysis, options);
    let mut first = VerifierState::entry();
    env.entry_regs(&mut first.frames[0]);
    let helper_args = |id: u32| (options.prototype)(id as i32).map_or(5, |p| p.arg_count() as u8);
    let live = analysis.live_registers(&helper_args);
    let before_walk = unprivileged::check_program(&env).and_then(|_| {
        subprog::check_functions_from_loader(&env)
            .and_then(|_| lock::check_program_maps(&env))
            .and_then(|_| subprog::check_functions_without_btf(&env))
            .map_err(|refusal| (0, refusal))
            .and_then(|_| check_all_reachable(analysis))
    });
    if let Err((slot, refusal)) = before_walk {
        let explored = Explored::new(analysis, live);
        return Err(reject(&mut env, &explored, slot, refusal));
    }
    walk(&mut env, live.clone(), first, 0)?;
    // The kernel's order: by function index, again from the first while a walk called more.
    let mut walked = vec![false; analysis.functions.funcs.len()];
    loop {
        let mut new = 0;
        for (f, done) in walked.iter_mut().enumerate().skip(1) {
            if *done || !env.globals_called[f] {
                continue;
            }
            *done = true;
            new += 1;
            let global = global::global_of(&env, f).expect("a called global function");
            env.walking_global = Some(global);
            env.line(&format!("Validating {}() func#{f}...", global.name));
            let entry = analysis.functions.funcs[f].start;
            let state = match global::entry_state(&mut env, f, global) {
                Ok(state) => state,
                Err(refusal) => {
                    let explored = Explored::new(analysis, live.clone());
                    let slot = analysis.program.slot(entry);
                    return Err(reject(&mut env, &explored, slot, refusal));
                }
            };
            walk(&mut env, live.clone(), state, entry)?;
            env.line(&format!(
                "Func#{f} ('{}') is safe for any args that match its prototype",
                global.name
            ));
        }
        if new == 0 {
            break;
        }
    }
    env.walking_global = None;
    let explored = Explored::new(analysis, live);
    if let Err((slot, refusal)) = subprog::check_stack_depth(&env) {
        return Err(reject(&mut env, &explored, slot, refusal));
    }
    let summary = summary_line(&env, &explored);
    env.line(&summary);
    Ok(Verified {
        processed: env.processed,
        stats: env.finished_stats,
        log: env.log,
        stack_depth: env.stack_depth,
        map_field_loads: env.map_field_loads.into_iter().collect(),
        exit_r0: env
            .exit_r0
            .filter(|_| options.exit_range || options.kind.return_range().is_some()),
        proved: env
            .proved
            .iter()
            .map(|&m| super::env::Proved::direct(m))
            .collect(),
        ctx_bases: (env.proved.iter())
            .map(|&m| super::env::Proved::ctx_base(m))
            .collect(),
        packet_proved: (env.proved.iter())
            .map(|&m| super::env::Proved::direct_or_packet(m))
            .collect(),
    })
}

/// One walk (`do_check`): every path from `first` at logical instruction `entry`. Its counters
/// join `env.finished_stats`; at log level 1 an accepted walk leaves no log, as the kernel
/// resets its log after each function it proves (`do_check_common`).
fn walk(
    env: &mut Env<'_>,
    live: Vec<crate::analysis::RegSet>,
    first: VerifierState,
    entry: usize,
) -> Result<(), Rejection> {
    let analysis = env.analysis;
    let options = env.options;
    let mut explored = Explored::new(analysis, live);
    explored.resume_pace(env.pace);
    explored.global_calls = global::call_sites(env);
    let insns = analysis.program.insns();
    let mut stack = vec![Pending {
        state: first,
        insn: entry,
        from: None,
        segment: Segment::default(),
        log_pos: 0,
    }];
    while let Some(Pending {
        mut state,
        mut insn,
        from,
        mut segment,
        log_pos,
    }) = stack.pop()
    {
        if env.options.log_level == 1 && from.is_some() {
            env.log.truncate(log_pos);
        }
        let mut prev = from;
        let mut popped = true;
        loop {
            env.processed += 1;
            let slot = analysis.program.slot(insn);
            if env.processed > COMPLEXITY_LIMIT {
                let message = format!("BPF program is too large. Processed {} insn", env.processed);
                return Err(reject(
                    env,
                    &explored,
                    slot,
                    refuse(ErrorCode::E2big, message),
                ));
            }
            // Reached other than by falling through: the way back must be recorded.
            let jumped_from = prev.filter(|&p| p + 1 != insn);
            if explored.is_prune_point(insn) {
                let before = prev.unwrap_or(insn);
                let ids = env.id_gen;
                explored.strict_scalars = unprivileged::scalar_compare(env);
                match explored.visit(&state, insn, before, env.processed, ids, &mut segment) {
                    Visit::Continue => {}
                    Visit::Pruned(by) => {
                        if jumped_from.is_some() || explored.is_jmp_point(insn) {
                            segment
                                .history
                                .push(Hist::arrival(insn, prev.unwrap_or(insn)));
                        }
                        let log = precision_log(&mut env.log, analysis, options);
                        explored.propagate_precision(by, insns, &segment, insn, log);
                        match from {
                            Some(f) if popped => {
                                let f = analysis.program.slot(f);
                                env.line(&format!("\nfrom {f} to {slot}: safe"));
                            }
                            _ => {
                                drop_pending_state(&mut env.log);
                                env.line(&format!("{slot}: safe"));
                            }
                        }
                        explored.finish(segment.parent);
                        break;
                    }
                    Visit::InfiniteLoop(old) => {
                        let message = format!("infinite loop detected at insn {slot}");
                        let states = format!(
                            "cur state:{}\nold state:{}",
                            frame_state(state.frame(), None, None),
                            frame_state(old.frame(), None, None)
                        );
                        let refusal = refuse(ErrorCode::Einval, message);
                        return Err(reject_with(env, &explored, slot, refusal, &states));
                    }
                }
            }
            // A path's first state: whole, as all registers are new to the log (level 2 also
            // says where a popped path came from).
            if popped && env.log_on(1) {
                let full = state_text(&state, state.frame(), None, None);
                if let (Some(f), true) = (from, env.log_on(2)) {
                    let f = analysis.program.slot(f);
                    env.line(&format!("\nfrom {f} to {slot}:{full}"));
                }
                env.line(&format!("{slot}:{full}"));
            }
            popped = false;
            let jmp_point = explored.is_jmp_point(insn);
            if jmp_point {
                segment.kernel_entries += 1;
            }
            let code = insns[insn].opcode;
            if matches!(class(code), CLASS_JMP | CLASS_JMP32) {
                explored.count_jump();
            }
            // What the history must say about this instruction, read before it runs.
            let stack_slot = stack_access(state.frame(), &insns[insn]);
            let linked = linked_scalars(state.frame(), &insns[insn]);
            // Precision asked for by an instruction is of its own frame's values (an `exit`
            // leaves with one frame fewer); a callback's exit goes back to the helper's call.
            let frames_before = state.frames.len();
            let callback_exit = code == OP_EXIT && state.frame().callback.is_some();
            let pushed = stack.len();
            let result = step(env, &mut state, insn, &mut stack);
            env.note_stack_depth(state.frame());
            // Every arrival at a jump target is recorded, fall-through or not (as the kernel's
            // jump history does): going back, an instruction first in its segment is then
            // told apart from a later visit of it.
            if jumped_from.is_some() || jmp_point || stack_slot.is_some() || linked.is_some() {
                segment.history.push(Hist {
                    insn,
                    prev: prev.unwrap_or(insn),
                    slot: stack_slot,
                    linked,
                });
            }
            if stack_slot.is_some() && !jmp_point {
                segment.kernel_entries += 1;
            }
            // Paths forked here descend from this path's checkpoint, with its history.
            let log_pos = fork_log_pos(&env.log);
            for forked in &mut stack[pushed..] {
                forked.from = Some(insn);
                forked.segment = segment.clone();
                forked.log_pos = log_pos;
                explored.fork(segment.parent);
            }
            let requests = std::mem::take(&mut env.wanted);
            for wanted in requests.into_iter().filter(|_| result.is_ok()) {
                let mut per_frame = vec![Marks::default(); frames_before];
                if let Some(last) = per_frame.last_mut() {
                    *last = wanted;
                }
                let log = precision_log(&mut env.log, analysis, options);
                explored.mark_precise(insns, &segment, insn, per_frame, log);
            }
            match result {
                Ok(Next::Goto(next)) => {
                    if callback_exit {
                        // Imprecise numbers that changed since the run started become unknown
                        // (`widen_imprecise_scalars`), so that the runs converge.
                        if let Some(old) = explored.ancestor_at(segment.parent, next, &state) {
                            super::callback::widen_imprecise_scalars(old, &mut state);
                        }
                        let to = analysis.program.slot(next);
                        super::subprog::log_return(env, &state, slot, to);
                    }
                    prev = Some(insn);
                    insn = next;
                }
                Ok(Next::End) => {
                    explored.finish(segment.parent);
                    break;
                }
                Err(refusal) => return Err(reject(env, &explored, slot, refusal)),
            }
        }
    }
    env.finished_stats = env.finished_stats.then(explored.stats);
    env.pace = explored.pace();
    if env.options.log_level == 1 {
        env.log.clear();
    }
    Ok(())
}

/// Where a path forked at the instruction the log's last line shows is taken up again: just
/// after the instruction's text and the newline the kernel wrote after it. When the state was
/// then printed on the same line (`; R1=...`), that newline became the first blank of the
/// padding, so the path's first state follows on the same line (`goto pc+2 14: R0=0 ...`), as
/// in the kernel's level-1 log.
fn fork_log_pos(log: &str) -> usize {
    let body = log.strip_suffix('\n').unwrap_or(log);
    let start = body.rfind('\n').map_or(0, |n| n + 1);
    let line = &body[start..];
    let text = line.find(';').map_or(line, |semi| line[..semi].trim_end());
    (start + text.len() + 1).min(log.len())
}

/// The kernel's `check_cfg`, before the walk: an instruction that no path from the first one
/// reaches (after an `exit`, jumped over, in a function nothing calls or takes the address of)
/// refuses the program, naming the first such slot. The second slot of an `lddw` is part of its
/// instruction. Only verification refuses dead code: checked mode runs such programs as they are.
fn check_all_reachable(analysis: &Analysis) -> Result<(), (usize, Refusal)> {
    match analysis.unreachable.first() {
        None => Ok(()),
        Some(&index) => {
            let slot = analysis.program.slot(index);
            let message = format!("unreachable insn {slot}");
            Err((slot, refuse(ErrorCode::Einval, message)))
        }
    }
}

/// The kernel prints the state after an instruction only when it goes on to the next one (at
/// the top of its loop, after the prune check): when the next one is pruned, the state of the
/// last line (`N: (op) ... ; state`, or a line `N: state` of its own) is not printed.
fn drop_pending_state(log: &mut String) {
    let body = log.strip_suffix('\n').unwrap_or(log);
    let start = body.rfind('\n').map_or(0, |n| n + 1);
    let line = &body[start..];
    let digits = line.chars().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 || !line[digits..].starts_with(": ") {
        return;
    }
    if line[digits..].starts_with(": (") {
        // The instruction text has no ';': the first one starts the state.
        if let Some(semi) = line.find(';') {
            let keep = line[..semi].trim_end().len();
            log.truncate(start + keep);
            log.push('\n');
        }
    } else {
        log.truncate(start);
    }
}

/// The stack slot a load or store at a fixed offset through a stack pointer touches, with the
/// pointer's frame (recorded for the backtracking of precision).
fn stack_access(frame: &FuncState, insn: &crate::analysis::Instruction) -> Option<(u32, usize)> {
    let base = match class(insn.opcode) {
        CLASS_LDX => insn.src,
        CLASS_STX if is_load_acquire(insn.opcode, insn.imm()) => insn.src,
        CLASS_ST | CLASS_STX => insn.dst,
        _ => return None,
    };
    let reg = frame.regs.get(base as usize)?;
    if reg.ty.base != BaseType::Stack || !reg.bounds.var_off.is_const() {
        return None;
    }
    let at = reg.bounds.var_off.value as i64 + reg.off as i64 + insn.off as i64;
    let in_frame = -(crate::analysis::MAX_BPF_STACK as i64)..0;
    in_frame
        .contains(&at)
        .then(|| (reg.frameno, super::state::slot_of(at).0))
}

/// The registers and slots a conditional jump refines together with its operands (scalars
/// sharing their ids), when there are others.
fn linked_scalars(frame: &FuncState, insn: &crate::analysis::Instruction) -> Option<Marks> {
    let op = insn.opcode & 0xf0;
    if !matches!(class(insn.opcode), CLASS_JMP | CLASS_JMP32)
        || matches!(op, JMP_JA | JMP_CALL | JMP_EXIT)
    {
        return None;
    }
    let mut marks = Marks::default();
    let mut operands = vec![insn.dst];
    if insn.opcode & SRC_X != 0 {
        operands.push(insn.src);
    }
    for r in operands {
        if let Some(reg) = frame.regs.get(r as usize) {
            if reg.is_scalar() {
                let linked = precision::linked_with(frame, reg.id);
                marks.regs |= linked.regs;
                marks.slots |= linked.slots;
            }
        }
    }
    let count = marks.regs.count_ones() + marks.slots.count_ones();
    (count > 1).then_some(marks)
}

/// Where the backtracking of precision writes its lines, at log level 2.
fn precision_log<'a>(
    out: &'a mut String,
    analysis: &'a Analysis,
    options: &'a VerifyOptions<'_>,
) -> Option<PrecisionLog<'a>> {
    (options.log_level >= 2).then_some(PrecisionLog {
        out,
        analysis,
        helper_name: options.helper_name,
    })
}

/// The kernel's last line (`print_verification_stats`). `mark_read` is the longest walk of
/// read marks, which Linux 6.18 no longer makes (its liveness is static): always 0 there too.
fn summary_line(env: &Env<'_>, explored: &Explored) -> String {
    let s = env.finished_stats.then(explored.stats);
    format!(
        "processed {} insns (limit {COMPLEXITY_LIMIT}) max_states_per_insn {} total_states {} peak_states {} mark_read 0",
        env.processed, s.max_states_per_insn, s.total_states, s.peak_states
    )
}

fn reject(env: &mut Env<'_>, explored: &Explored, slot: usize, refusal: Refusal) -> Rejection {
    reject_with(env, explored, slot, refusal, "")
}

/// A rejection whose log line is followed by `details` (lines the kernel prints after it).
fn reject_with(
    env: &mut Env<'_>,
    explored: &Explored,
    slot: usize,
    (message, code): Refusal,
    details: &str,
) -> Rejection {
    env.line(&message);
    if !details.is_empty() {
        env.line(details);
    }
    let summary = summary_line(env, explored);
    env.line(&summary);
    Rejection {
        slot,
        message,
        code,
        log: std::mem::take(&mut env.log),
    }
}

/// Executes instruction `index` on `state`; a branch whose both sides are possible pushes its
/// jump target on `stack`.
fn step(
    env: &mut Env<'_>,
    state: &mut VerifierState,
    index: usize,
    stack: &mut Vec<Pending>,
) -> Result<Next, Refusal> {
    let analysis = env.analysis;
    env.insn_index = index;
    let insn = *analysis.program.get(index);
    let slot = analysis.program.slot(index);
    let aux = analysis.aux[index];
    let helper = |id: i32| env.helper_name(id);
    // Written only when there is a log (formatting it is most of an instruction's cost).
    let text = if env.log_on(1) {
        format!("{slot}: {}", insn_text(&insn, aux.imm64, &helper))
    } else {
        String::new()
    };
    let next = index + 1;
    let code = insn.opcode;
    let in_called_function = state.frames.len() > 1;
    let frame = state.frame_mut();
    // The registers and stack slots to print after the instruction (the kernel's "scratched").
    let mut shown: Vec<u8> = Vec::new();
    let mut slots: Vec<usize> = Vec::new();
    // A load-acquire is checked as the load it is (`check_atomic_load`), with its own rules.
    let as_class = if is_load_acquire(code, insn.imm()) {
        CLASS_LDX
    } else {
        class(code)
    };
    let outcome = match as_class {
        CLASS_ALU | CLASS_ALU64 => {
            let op = code & 0xf0;
            let with_reg = code & SRC_X != 0 && !matches!(op, ALU_NEG | ALU_END | ALU_MOV);
            let (d, sr) = (
                &frame.regs[insn.dst as usize],
                &frame.regs[insn.src as usize],
            );
            // Pointer and scalar register: the kernel marks the scalar precise, which prints
            // the state itself and leaves none for this line.
            let precise =
                with_reg && d.is_init() && sr.is_init() && d.is_scalar() != sr.is_scalar();
            if !precise {
                shown.push(insn.dst);
                if code & SRC_X != 0 && !matches!(op, ALU_NEG | ALU_END) {
                    shown.push(insn.src);
                }
            }
            arith::alu_insn(env, &mut frame.regs, &insn).map(|_| Next::Goto(next))
        }
        CLASS_LDX => {
            shown.extend([insn.src, insn.dst]);
            // Through a pointer into a caller's stack: that frame's bytes, not printed here.
            let caller_stack = subprog::points_to_caller(state, insn.src);
            let result = subprog::with_stack_of(state, insn.src, |frame| {
                load(env, frame, (&insn, slot), &mut slots)
            });
            if caller_stack {
                slots.clear();
            }
            result.map(|_| Next::Goto(next))
        }
        CLASS_STX | CLASS_ST => {
            shown.push(insn.dst);
            if class(code) == CLASS_STX {
                shown.push(insn.src);
                if code & 0xe0 == MODE_ATOMIC && insn.imm() == ATOMIC_CMPXCHG {
                    shown.push(0);
                }
            }
            let caller_stack = subprog::points_to_caller(state, insn.dst);
            let value = (class(code) == CLASS_STX).then(|| &state.frame().regs[insn.src as usize]);
            let result = subprog::check_store_to_caller(state, insn.dst, value).and_then(|_| {
                subprog::with_stack_of(state, insn.dst, |frame| {
                    store(env, frame, (&insn, slot), &mut slots)
                })
            });
            if caller_stack {
                slots.clear();
            }
            result.map(|_| Next::Goto(next))
        }
        CLASS_LD => {
            shown.push(insn.dst);
            if insn.opcode != OP_LDDW {
                // A legacy packet load reads r6 (and its index register).
                shown.push(6);
                if insn.opcode & 0xe0 == MODE_IND {
                    shown.push(insn.src);
                }
            }
            // A legacy packet load may end the program: no reference may be held.
            let legacy = insn.opcode != OP_LDDW
                && matches!(
                    env.options.kind,
                    super::env::ProgramKind::SocketFilter | super::env::ProgramKind::Tc
                );
            let leak = if legacy {
                refs::check_resource_leak(state, "BPF_LD_[ABS|IND]")
            } else {
                Ok(())
            };
            leak.and_then(|_| ld_imm64(env, state.frame_mut(), &insn, aux.imm64))
                .map(|_| Next::Goto(next))
        }
        _ => {
            let op = code & 0xf0;
            // The kernel looks at exit's fields only here, on exits its walk reaches (never at
            // the offset); validation in verified mode leaves them to this check.
            if op == JMP_EXIT && (insn.imm() != 0 || insn.src != 0 || insn.dst != 0) {
                env.line(&text);
                return Err(refuse(ErrorCode::Einval, "BPF_EXIT uses reserved fields"));
            }
            match op {
                JMP_EXIT if in_called_function => {
                    return subprog::exit(env, state, index, &text).map(Next::Goto);
                }
                JMP_CALL if insn.src == CALL_LOCAL => {
                    return subprog::call(env, state, index, &text).map(Next::Goto);
                }
                JMP_EXIT => {
                    // A global function walked on its own returns a scalar.
                    let global = env.walking_global.is_some();
                    let r0 = &state.frame().regs[0];
                    let result =
                        refs::check_resource_leak(state, "BPF_EXIT instruction in main prog")
                            .and_then(|_| check_init(&state.frame().regs, 0))
                            .and_then(|_| unprivileged::check_exit(env, r0))
                            .and_then(|_| {
                                if global {
                                    global::check_exit(r0)
                                } else {
                                    check_return_range(env, r0)
                                }
                            })
                            .map(|_| Next::End);
                    env.line(&text);
                    return result;
                }
                JMP_CALL => match call::helper_call(env, state, (&insn, index), &mut slots) {
                    Ok(CallLog {
                        callback: Some((start, entry)),
                        ..
                    }) => {
                        // The callback's run is walked later, as a path of its own.
                        // (Its `from` and history are set by the main loop, as for any fork.)
                        stack.push(Pending {
                            state: start,
                            insn: entry,
                            from: Some(index),
                            segment: Segment::default(),
                            log_pos: 0,
                        });
                        env.line(&text);
                        return Ok(Next::Goto(next));
                    }
                    Ok(CallLog {
                        loop_limit: Some(frameno),
                        ..
                    }) => {
                        env.line(&text);
                        if env.log_on(2) {
                            env.line(&format!("frame{frameno} bpf_loop iteration limit reached"));
                        }
                        return Ok(Next::Goto(next));
                    }
                    Ok(log) if log.state_on_own_line => {
                        env.line(&text);
                        if env.log_on(1) {
                            let after = state_text(state, state.frame(), Some(&[0]), Some(&slots));
                            env.line(&format!("{}:{after}", slot + 1));
                        }
                        return Ok(Next::Goto(next));
                    }
                    result => {
                        shown.push(0);
                        result.map(|_| Next::Goto(next))
                    }
                },
                JMP_JA => {
                    let delta = if class(code) == CLASS_JMP32 {
                        insn.imm() as i64
                    } else {
                        insn.off as i64
                    };
                    env.line(&text);
                    return jump_target(env, index, delta).map(Next::Goto);
                }
                _ => {
                    let result = cond_jump(env, state, index, &insn, stack);
                    match &result {
                        Ok((true, _)) => {
                            let mut regs = vec![insn.dst];
                            if code & SRC_X != 0 {
                                regs.push(insn.src);
                            }
                            print_line(env, &text, state, &regs, &[]);
                        }
                        _ => env.line(&text),
                    }
                    return result.map(|(_, n)| Next::Goto(n));
                }
            }
        }
    };
    match &outcome {
        Ok(_) if !shown.is_empty() || !slots.is_empty() => {
            print_line(env, &text, state, &shown, &slots)
        }
        _ => env.line(&text),
    }
    outcome
}

/// The instruction and, at level 2, the registers and slots it touched (printed when any was
/// touched, even if none of them holds anything: `call bpf_ringbuf_submit#132   ;`).
fn print_line(env: &mut Env<'_>, text: &str, state: &VerifierState, regs: &[u8], slots: &[usize]) {
    if !env.log_on(1) {
        env.line(text);
        return;
    }
    let printed = state_text(state, state.frame(), Some(regs), Some(slots));
    if regs.is_empty() && slots.is_empty() {
        env.line(text);
    } else {
        let pad = state_column_padding(text.len());
        let mut line = String::with_capacity(text.len() + pad + printed.len() + 2);
        let _ = write!(line, "{text}{:pad$};{printed}", "");
        env.line(&line);
    }
}

fn jump_target(env: &Env<'_>, index: usize, delta: i64) -> Result<usize, Refusal> {
    env.analysis
        .program
        .target(index, delta, "jump")
        .map_err(|e| refuse(ErrorCode::Einval, e.message))
}

fn load(
    env: &mut Env<'_>,
    frame: &mut FuncState,
    (insn, slot): (&crate::analysis::Instruction, usize),
    slots: &mut Vec<usize>,
) -> Result<(), Refusal> {
    let mode = insn.opcode & 0xe0;
    let acquire = is_load_acquire(insn.opcode, insn.imm());
    if acquire {
        // Before anything else (`check_atomic_load`; a store-release checks its access first).
        atomic_ptr_type_ok(&frame.regs[insn.src as usize], insn.src, "loads from")?;
    }
    check_init(&frame.regs, insn.src)?;
    check_writable(insn.dst)?;
    if mode != MODE_MEM && mode != MODE_MEMSX && !acquire {
        return Err(unsupported("this load mode"));
    }
    let size = access_size(insn.opcode);
    let src = &frame.regs[insn.src as usize];
    if acquire {
        // Misaligned atomic accesses are refused whatever the program's alignment flags.
        access::check_alignment(src, insn.off, size)?;
    }
    if src.ty.base == BaseType::ConstMap && !src.ty.maybe_null {
        if acquire {
            return Err(unsupported("a load-acquire through a map pointer"));
        }
        let (value, constant) = map_fields::load(
            src,
            insn.src,
            insn.off as i64 + src.off as i64,
            size,
            mode == MODE_MEMSX,
        )?;
        // One value per instruction: the loader turns the load into a move of it.
        if *env.map_field_loads.entry(slot).or_insert(constant) != constant {
            return Err(unsupported(
                "a load through map pointers that give different values on different paths",
            ));
        }
        if map_fields::constant_move(insn.dst, constant).is_none() {
            return Err(unsupported(&format!(
                "a map field load of {constant:#x}, which no one-slot move gives"
            )));
        }
        frame.regs[insn.dst as usize] = value;
        return Ok(());
    }
    let kind = access_kind(&frame.regs[insn.src as usize]);
    let mut value = access::load(env, frame, insn.src, insn.off, size, mode == MODE_MEMSX)?;
    env.note_access(slot, kind);
    if value.ty.maybe_null && value.id == 0 {
        // A pointer that may be NULL read from the context (`__sk_buff.sk`): its null check
        // needs an id of its own.
        value.id = env.new_id();
    }
    let base = frame.regs[insn.src as usize].clone();
    lock::check_direct_access(&base, insn.off, size)?;
    if base.ty.base == BaseType::Stack {
        frame.reach(&base, insn.off as i64);
    }
    note_stack_read(frame, insn.src, insn.off, slots);
    frame.regs[insn.dst as usize] = value;
    Ok(())
}

fn store(
    env: &mut Env<'_>,
    frame: &mut FuncState,
    (insn, slot): (&crate::analysis::Instruction, usize),
    slots: &mut Vec<usize>,
) -> Result<(), Refusal> {
    let release = is_store_release(insn.opcode, insn.imm());
    // The stored register is checked before the address register, as the kernel checks them.
    if class(insn.opcode) == CLASS_STX {
        check_init(&frame.regs, insn.src)?;
    }
    check_init(&frame.regs, insn.dst)?;
    let size = access_size(insn.opcode);
    if release {
        // Misaligned atomic accesses are refused whatever the program's alignment flags.
        access::check_alignment(&frame.regs[insn.dst as usize], insn.off, size)?;
    } else if insn.opcode & 0xe0 == MODE_ATOMIC {
        if insn.imm() < 0x100 {
            unprivileged::check_atomic(env, frame, insn, size)?;
        }
        return atomic(env, frame, (insn, slot), size, slots);
    }
    if class(insn.opcode) == CLASS_STX {
        let (base, value) = (
            &frame.regs[insn.dst as usize],
            &frame.regs[insn.src as usize],
        );
        unprivileged::check_store(env, base, insn.src, value)?;
        want_precise_zero(env, frame, insn);
        link_spilled_scalar(env, frame, insn, size);
        let value = frame.regs[insn.src as usize].clone();
        access::store(env, frame, insn.dst, insn.off, size, Stored::Reg(&value))?;
        if release {
            // After the access itself is checked (`check_atomic_store`).
            atomic_ptr_type_ok(&frame.regs[insn.dst as usize], insn.dst, "stores into")?;
        }
    } else {
        access::store(
            env,
            frame,
            insn.dst,
            insn.off,
            size,
            Stored::Imm(insn.imm()),
        )?;
    }
    lock::check_direct_access(&frame.regs[insn.dst as usize], insn.off, size)?;
    let kind = access_kind(&frame.regs[insn.dst as usize]);
    env.note_access(slot, kind);
    note_stack_slot(frame, insn.dst, insn.off, slots);
    Ok(())
}

/// The region kind a plain load or store through `base` was proved against (see
/// [`super::env::Proved`]): its base register's type, once the access is accepted.
pub(super) fn access_kind(base: &RegState) -> u8 {
    use super::env::Proved;
    if base.ty.maybe_null {
        return Proved::OTHER;
    }
    match base.ty.base {
        BaseType::Stack => Proved::STACK,
        BaseType::Mem => Proved::MEM,
        BaseType::MapValue => Proved::MAP_VALUE,
        BaseType::Ctx => Proved::CTX,
        BaseType::Packet | BaseType::PacketMeta => Proved::PACKET,
        _ => Proved::OTHER,
    }
}

/// The pointers an atomic load or store may not go through (`atomic_ptr_type_ok`): the context,
/// packets and sockets (`what`: "loads from" or "stores into").
fn atomic_ptr_type_ok(base: &RegState, regno: u8, what: &str) -> Result<(), Refusal> {
    let refused = match base.ty.base {
        BaseType::Ctx | BaseType::Packet | BaseType::PacketMeta => true,
        BaseType::SockCommon => !base.ty.maybe_null,
        _ => false,
    };
    if refused {
        return Err(eacces(format!(
            "BPF_ATOMIC {what} R{regno} {} is not allowed",
            base.ty.name()
        )));
    }
    Ok(())
}

/// An atomic read-modify-write (`check_atomic_rmw`): the memory must be readable and writable
/// (not the context, not the packet); the fetch forms load the old value into the source
/// register (r0 for `cmpxchg`); the memory then holds a number nothing is known about.
fn atomic(
    env: &mut Env<'_>,
    frame: &mut FuncState,
    (insn, slot): (&crate::analysis::Instruction, usize),
    size: u32,
    slots: &mut Vec<usize>,
) -> Result<(), Refusal> {
    let imm = insn.imm();
    if size != 4 && size != 8 {
        return Err(refuse(ErrorCode::Einval, "invalid atomic operand size"));
    }
    if imm == ATOMIC_CMPXCHG {
        check_init(&frame.regs, 0)?;
    }
    atomic_ptr_type_ok(&frame.regs[insn.dst as usize], insn.dst, "stores into")?;
    // The register the old value goes to is written before the memory is checked, as the
    // kernel marks it: when it is also the address register, the address is then unknown.
    let load_reg =
        (imm & ATOMIC_FETCH != 0).then_some(if imm == ATOMIC_CMPXCHG { 0 } else { insn.src });
    if let Some(r) = load_reg {
        check_writable(r)?;
        frame.regs[r as usize] = RegState::unknown_scalar();
    }
    let base = &frame.regs[insn.dst as usize];
    access::check_alignment(base, insn.off, size)?;
    access::atomic_stack_read(base, insn.dst, insn.off, size)?;
    let old = access::load(env, frame, insn.dst, insn.off, size, false)?;
    lock::check_direct_access(&frame.regs[insn.dst as usize], insn.off, size)?;
    if let Some(r) = load_reg {
        frame.regs[r as usize] = old;
    }
    let kind = access_kind(&frame.regs[insn.dst as usize]);
    access::store(env, frame, insn.dst, insn.off, size, Stored::Unknown)?;
    // Proved in bounds (both its read and its write) as a plain access is: the engines may
    // skip the region check; the alignment check on the host address stays.
    env.note_access(slot, kind);
    note_stack_slot(frame, insn.dst, insn.off, slots);
    Ok(())
}

/// A register known to be zero stored to the stack other than as an aligned spill makes its
/// bytes known zero (`STACK_ZERO`), which later reads rely on: the zero is precise, as the
/// kernel marks it (`check_stack_write_fixed_off`, `check_stack_write_var_off`).
fn want_precise_zero(env: &mut Env<'_>, frame: &FuncState, insn: &crate::analysis::Instruction) {
    let base = &frame.regs[insn.dst as usize];
    let value = &frame.regs[insn.src as usize];
    let zero = value.is_scalar() && value.bounds.is_const() && value.bounds.var_off.value == 0;
    if !zero || base.ty.base != BaseType::Stack {
        return;
    }
    let at = base.bounds.var_off.value as i64 + base.off as i64 + insn.off as i64;
    if !base.bounds.var_off.is_const() || at % 8 != 0 {
        env.want_precise(insn.src);
    }
}

/// A scalar spilled whole to an aligned stack slot stays linked to its register (both get an
/// id), as the kernel links them, so that a later branch on either refines both.
fn link_spilled_scalar(
    env: &mut Env<'_>,
    frame: &mut FuncState,
    insn: &crate::analysis::Instruction,
    size: u32,
) {
    let base = &frame.regs[insn.dst as usize];
    let at = base.bounds.var_off.value as i64 + base.off as i64 + insn.off as i64;
    let aligned = base.ty.base == BaseType::Stack && base.bounds.var_off.is_const() && at % 8 == 0;
    let src = &frame.regs[insn.src as usize];
    let fits = 64 - src.bounds.umax.leading_zeros() <= size * 8;
    if aligned && src.is_scalar() && fits && src.id == 0 && !src.bounds.var_off.is_const() {
        let id = env.new_id();
        frame.regs[insn.src as usize].id = id;
    }
}

/// Records the stack slots an access through `regs[r]` may have touched, for the log: every one
/// for a write; for a read at a variable offset, the kernel's log shows only the lowest.
fn note_stack_read(frame: &FuncState, r: u8, off: i16, slots: &mut Vec<usize>) {
    let before = slots.len();
    note_stack_slot(frame, r, off, slots);
    if slots.len() > before + 1 {
        let lowest = slots[before..].iter().copied().max();
        slots.truncate(before);
        slots.extend(lowest);
    }
}

pub(super) fn note_stack_slot(frame: &FuncState, r: u8, off: i16, slots: &mut Vec<usize>) {
    let base = &frame.regs[r as usize];
    if base.ty.base != BaseType::Stack {
        return;
    }
    let fixed = base.off as i64 + off as i64;
    let (lo, hi) = if base.bounds.var_off.is_const() {
        let at = base.bounds.var_off.value as i64 + fixed;
        (at, at)
    } else {
        (base.bounds.smin + fixed, base.bounds.smax + fixed)
    };
    let mut at = lo;
    while at <= hi && at < 0 {
        if at >= -(crate::analysis::MAX_BPF_STACK as i64) {
            let slot = super::state::slot_of(at).0;
            if !slots.contains(&slot) {
                slots.push(slot);
            }
        }
        at += 1;
    }
}

fn ld_imm64(
    env: &mut Env<'_>,
    frame: &mut FuncState,
    insn: &crate::analysis::Instruction,
    imm64: Imm64,
) -> Result<(), Refusal> {
    if insn.opcode != OP_LDDW {
        return legacy_packet_load(env, frame, insn);
    }
    check_writable(insn.dst)?;
    let map = |index: u32| {
        env.options
            .maps
            .get(index as usize)
            .cloned()
            .ok_or_else(|| {
                refuse(
                    ErrorCode::Einval,
                    format!("map index {index} is not one of the program's maps"),
                )
            })
    };
    let reg = match imm64 {
        Imm64::Constant => RegState::known(insn.constant as u64),
        Imm64::Map { index } => RegState {
            map: Some(map(index)?),
            ..RegState::pointer(RegType::of(BaseType::ConstMap))
        },
        Imm64::MapValue { index, offset } => RegState {
            map: Some(map(index)?),
            off: offset as i32,
            ..RegState::pointer(RegType::of(BaseType::MapValue))
        },
        Imm64::Func { entry } => RegState {
            func_entry: entry,
            ..RegState::pointer(RegType::of(BaseType::Func))
        },
        Imm64::BtfId { .. } => return Err(unsupported("kernel variables (BTF ids)")),
    };
    frame.regs[insn.dst as usize] = reg;
    Ok(())
}

/// r0 at the main program's exit, for the types with a return range (`check_return_code`):
/// a scalar, marked precise (its value decided the verdict), inside the range.
fn check_return_range(env: &mut Env<'_>, r0: &RegState) -> Result<(), Refusal> {
    if r0.is_scalar() {
        let b = &r0.bounds;
        let here = super::env::ExitRange {
            smin: b.smin,
            smax: b.smax,
            umin: b.umin,
            umax: b.umax,
        };
        env.exit_r0 = Some(env.exit_r0.map_or(here, |r| r.union(here)));
    }
    let Some(range) = env.options.kind.return_range() else {
        if env.options.exit_range && r0.is_scalar() {
            // Asked for r0's range: precise at exit, as a return range makes it, so that
            // `exit_r0` covers the states pruning leaves out.
            env.want_precise(0);
        }
        return Ok(());
    };
    if !r0.is_scalar() {
        return Err(refuse(
            ErrorCode::Einval,
            format!(
                "At program exit the register R0 is not a known value ({})",
                r0.ty.name()
            ),
        ));
    }
    env.want_precise(0);
    super::callback::check_return(r0, range, "At program exit")
}

/// `LD_ABS` / `LD_IND` (`check_ld_abs`): socket filters only, r6 must hold the unmoved
/// context, r1-r5 are clobbered, r0 gets the loaded number (or the program ends there).
fn legacy_packet_load(
    env: &mut Env<'_>,
    frame: &mut FuncState,
    insn: &crate::analysis::Instruction,
) -> Result<(), Refusal> {
    if !matches!(
        env.options.kind,
        super::env::ProgramKind::SocketFilter | super::env::ProgramKind::Tc
    ) {
        return Err(refuse(
            ErrorCode::Einval,
            "BPF_LD_[ABS|IND] instructions not allowed for this program type",
        ));
    }
    let mode = insn.opcode & 0xe0;
    if insn.dst != 0
        || insn.off != 0
        || insn.opcode & 0x18 == SIZE_DW
        || (mode == MODE_ABS && insn.src != 0)
    {
        return Err(refuse(
            ErrorCode::Einval,
            "BPF_LD_[ABS|IND] uses reserved fields",
        ));
    }
    check_init(&frame.regs, 6)?;
    if frame.regs[6].ty.base != BaseType::Ctx || frame.regs[6].ty.maybe_null {
        return Err(refuse(
            ErrorCode::Einval,
            "at the time of BPF_LD_ABS|IND R6 != pointer to skb",
        ));
    }
    if mode == MODE_IND {
        check_init(&frame.regs, insn.src)?;
    }
    let ctx = &frame.regs[6];
    if ctx.off != 0 {
        return Err(eacces(format!(
            "dereference of modified ctx ptr R6 off={} disallowed",
            ctx.off
        )));
    }
    for r in 0..=5 {
        frame.regs[r] = RegState::not_init();
    }
    frame.regs[0] = RegState::unknown_scalar();
    Ok(())
}

/// A conditional jump: `Ok((print_state, next))`, where the walk goes on at `next` and a jump
/// both of whose sides are possible has pushed the other.
fn cond_jump(
    env: &mut Env<'_>,
    state: &mut VerifierState,
    index: usize,
    insn: &crate::analysis::Instruction,
    stack: &mut Vec<Pending>,
) -> Result<(bool, usize), Refusal> {
    let code = insn.opcode;
    let jmp32 = class(code) == CLASS_JMP32;
    let op = code & 0xf0;
    let frame = state.frame();
    check_init(&frame.regs, insn.dst)?;
    let src_is_reg = code & SRC_X != 0;
    if src_is_reg {
        check_init(&frame.regs, insn.src)?;
    }
    let a = frame.regs[insn.dst as usize].clone();
    let b = if src_is_reg {
        frame.regs[insn.src as usize].clone()
    } else {
        RegState::known(insn.imm() as i64 as u64)
    };
    unprivileged::check_compare_src(env, insn, &a, src_is_reg.then_some(&b))?;
    let target = jump_target(env, index, insn.off as i64)?;
    let fall = index + 1;

    let mut taken_state = state.clone();
    let mut fall_state_changes: Option<VerifierState> = None;
    let decided = if a.is_scalar() && b.is_scalar() {
        match branch::branch_taken(&a.bounds, &b.bounds, op, jmp32) {
            Taken::Unknown => {
                let ((ta, tb), (fa, fb)) = branch::refine(&a.bounds, &b.bounds, op, jmp32);
                let mut fall_state = state.clone();
                set_scalar(&mut taken_state, insn.dst, &a, ta);
                set_scalar(&mut fall_state, insn.dst, &a, fa);
                if src_is_reg {
                    set_scalar(&mut taken_state, insn.src, &b, tb);
                    set_scalar(&mut fall_state, insn.src, &b, fb);
                }
                fall_state_changes = Some(fall_state);
                Taken::Unknown
            }
            t => t,
        }
    } else {
        let packet_like = |r: &RegState| {
            matches!(
                r.ty.base,
                BaseType::Packet | BaseType::PacketMeta | BaseType::PacketEnd
            )
        };
        if !jmp32 && packet_like(&a) && packet_like(&b) {
            match packet::branch_taken(&a, &b, op) {
                Taken::Unknown => {
                    packet::compare(
                        state,
                        &mut taken_state,
                        &mut fall_state_changes,
                        (&a, insn.dst),
                        (&b, insn.src),
                        op,
                    );
                    Taken::Unknown
                }
                t => t,
            }
        } else {
            pointer_branch(
                state,
                &mut taken_state,
                &mut fall_state_changes,
                (&a, &b, src_is_reg),
                op,
                jmp32,
            )
        }
    };
    if decided == Taken::Unknown {
        unprivileged::check_compare_dst(env, insn, &a, src_is_reg.then_some(&b))?;
    }
    // A jump decided on scalars prints no state (the kernel's precision marking, which runs
    // then, prints its own); one decided on a pointer does.
    let print = !(a.is_scalar() && b.is_scalar());
    // A pointer compared with a scalar register: a zero there is a null check, and a null
    // check refines what the pointer is on each side, so the scalar's value matters.
    if src_is_reg && a.is_scalar() != b.is_scalar() {
        env.want_precise(if a.is_scalar() { insn.dst } else { insn.src });
    }
    if decided != Taken::Unknown {
        // Only one side is walked because of the scalars' values: they are precise.
        if a.is_scalar() {
            env.want_precise(insn.dst);
        }
        if src_is_reg && b.is_scalar() {
            env.want_precise(insn.src);
        }
    }
    match decided {
        Taken::Always => Ok((print, target)),
        Taken::Never => Ok((print, fall)),
        Taken::Unknown => {
            if let Some(fall_state) = fall_state_changes {
                *state = fall_state;
            }
            stack.push(Pending {
                state: taken_state,
                insn: target,
                from: None,
                segment: Segment::default(),
                log_pos: 0,
            });
            Ok((true, fall))
        }
    }
}

/// The scalar `r` refined to `bounds` on one side of a branch, with every register and spilled
/// copy that shares its id (`sync_linked_regs`).
fn set_scalar(state: &mut VerifierState, r: u8, before: &RegState, bounds: super::bounds::Bounds) {
    let frame = state.frame_mut();
    frame.regs[r as usize].bounds = bounds;
    if before.id == 0 {
        return;
    }
    let delta_of = |reg: &RegState| if reg.add_const { reg.off as i64 } else { 0 };
    let known = delta_of(before);
    // A copy that is the refined value plus `d - known` gets the refined bounds moved by that.
    let follow = |reg: &mut RegState| {
        if reg.is_scalar() && reg.id == before.id {
            let d = delta_of(reg) - known;
            reg.bounds = if d == 0 {
                bounds
            } else {
                super::alu::scalar_alu(
                    &bounds,
                    &super::bounds::Bounds::constant(d as u64),
                    ALU_ADD,
                    false,
                )
            };
        }
    };
    frame.regs.iter_mut().for_each(follow);
    for slot in frame.stack.iter_mut() {
        follow(&mut slot.spilled);
    }
}

/// Branches on pointers: null checks, packet ranges, pointers that cannot be NULL.
fn pointer_branch(
    state: &VerifierState,
    taken: &mut VerifierState,
    fall: &mut Option<VerifierState>,
    (a, b, src_is_reg): (&RegState, &RegState, bool),
    op: u8,
    jmp32: bool,
) -> Taken {
    // A pointer against the constant 0.
    let (ptr, other) = if a.is_pointer() { (a, b) } else { (b, a) };
    let zero = other.is_scalar()
        && other.bounds.is_const_in(jmp32)
        && other.bounds.const_value_in(jmp32) == 0;
    if zero && !jmp32 && matches!(op, JMP_JEQ | JMP_JNE) {
        // Only `if rP ==/!= 0` with the immediate 0 is a null check to the kernel; against a
        // register known to hold 0 (either side) the pointer stays `_or_null` on both sides.
        if ptr.ty.maybe_null && src_is_reg {
            return Taken::Unknown;
        }
        if ptr.ty.maybe_null {
            // The null check: NULL on the `==` side, not NULL on the other.
            let (null_side, valid_side): (&mut VerifierState, VerifierState) = if op == JMP_JEQ {
                let mut f = state.clone();
                mark_null_checked(&mut f, ptr.id, false);
                (taken, f)
            } else {
                let mut f = state.clone();
                mark_null_checked(&mut f, ptr.id, true);
                mark_null_checked(taken, ptr.id, false);
                refs::drop_if_null(&mut f, ptr.id);
                *fall = Some(f);
                return Taken::Unknown;
            };
            mark_null_checked(null_side, ptr.id, true);
            refs::drop_if_null(null_side, ptr.id);
            *fall = Some(valid_side);
            return Taken::Unknown;
        }
        if matches!(
            ptr.ty.base,
            BaseType::MapValue
                | BaseType::MapKey
                | BaseType::ConstMap
                | BaseType::Mem
                | BaseType::SockCommon
        ) {
            // These are never NULL.
            return if op == JMP_JEQ {
                Taken::Never
            } else {
                Taken::Always
            };
        }
    }
    Taken::Unknown
}

/// On the side where the pointers with `id` are NULL they become the number 0; on the other
/// they are valid pointers (`mark_ptr_or_null_regs`), in every frame.
fn mark_null_checked(state: &mut VerifierState, id: u32, is_null: bool) {
    let fix = |reg: &mut RegState| {
        if reg.ty.maybe_null && reg.id == id {
            if is_null {
                *reg = RegState::known(0);
            } else {
                reg.ty.maybe_null = false;
                if !lock::may_point_to_lock(reg) {
                    reg.id = 0;
                }
            }
        }
    };
    state.for_each_reg_mut(fix);
}
