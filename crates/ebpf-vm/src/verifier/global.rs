//! Global functions (BTF `FUNC` linkage global): verified once, on their own, against the
//! argument types their BTF prototype gives, and at each call only the arguments are checked
//! against that prototype (the kernel's `btf_prepare_func_args`, `btf_check_func_arg_match`,
//! the global branch of `check_func_call` and `do_check_subprogs`).
//!
//! What a prototype's argument becomes is decided by the loader, which reads the BTF (the
//! engine receives the result, [`FuncArg`]): an integer or enum is any scalar; a pointer to the
//! program type's context struct is the context; any other pointer to a type of known size is
//! memory of that size that may be NULL. A call passes anything that matches; the function's
//! walk starts from those types and nothing more, so its proof holds for every caller. The
//! caller gets an unknown scalar in R0 and loses R1-R5, whatever the function did. (Linux 6.18
//! supports global functions that return an integer or enum only.)

use super::access;
use super::env::{refuse, Env, Refusal};
use super::reg::{BaseType, RegState, RegType};
use super::state::VerifierState;
use crate::analysis::CallKind;
use crate::error::ErrorCode;

/// What one argument of a global function's prototype is to the verifier (`bpf_subprog_arg_info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FuncArg {
    /// An integer or enum (`ARG_ANYTHING`): any scalar.
    Scalar,
    /// A pointer to the program type's context struct (`ARG_PTR_TO_CTX`).
    Ctx,
    /// A pointer to `size` bytes (`ARG_PTR_TO_MEM`), NULL allowed unless tagged `arg:nonnull`.
    Mem { size: u32, nullable: bool },
}

/// One global function of the program: where it starts, its name and its arguments' types (it
/// returns a scalar: Linux 6.18 supports no other global function), or the kernel's message for
/// a prototype it cannot use (`Arg#0 type STRUCT in f() is not supported yet.`): the program is
/// then refused where the function is called.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalFunction {
    /// The instruction slot of its entry.
    pub slot: usize,
    pub name: String,
    pub args: Result<Vec<FuncArg>, String>,
}

/// The global function that function `f` of the analysis is, if it is one.
pub fn global_of<'a>(env: &Env<'a>, f: usize) -> Option<&'a GlobalFunction> {
    let start = env.analysis.functions.funcs.get(f)?.start;
    let slot = env.analysis.program.slot(start);
    env.options.globals.iter().find(|g| g.slot == slot)
}

/// Per logical instruction, whether it is a `call` to a global function (the backtracking of
/// precision goes past such a call as past a helper's).
pub fn call_sites(env: &Env<'_>) -> Vec<bool> {
    if env.options.globals.is_empty() {
        return Vec::new();
    }
    let functions = &env.analysis.functions;
    let mut sites = vec![false; env.analysis.program.len()];
    for call in &functions.calls {
        if call.kind == CallKind::Call && global_of(env, call.callee).is_some() {
            sites[call.site] = true;
        }
    }
    sites
}

/// A call from logical instruction `index` of `state`'s current frame to global function `f`
/// (`check_func_call`): the arguments must match the prototype, no lock may be held; then R0 is
/// an unknown scalar, R1-R5 are gone, and the walk goes on after the call. The function is
/// marked called: it is walked on its own after the main function.
pub fn call(
    env: &mut Env<'_>,
    state: &mut VerifierState,
    f: usize,
    global: &GlobalFunction,
) -> Result<(), Refusal> {
    let matched = match &global.args {
        Ok(args) => check_args(
            state,
            args,
            super::packet::may_write_direct(env.options.kind),
        ),
        Err(message) => Err(refuse(ErrorCode::Einval, message.clone())),
    };
    if super::lock::held(state).is_some() {
        return Err(refuse(
            ErrorCode::Einval,
            "global function calls are not allowed while holding a lock,\nuse static function instead",
        ));
    }
    if let Err((message, code)) = matched {
        env.line(&message);
        return Err(refuse(
            code,
            format!(
                "Caller passes invalid args into func#{f} ('{}')",
                global.name
            ),
        ));
    }
    env.line(&format!(
        "Func#{f} ('{}') is global and assumed valid.",
        global.name
    ));
    env.globals_called[f] = true;
    let frame = state.frame_mut();
    for r in 1..=5 {
        frame.regs[r] = RegState::not_init();
    }
    frame.regs[0] = RegState::unknown_scalar();
    // A function that may change the packet (itself or through what it calls) leaves the
    // caller no packet pointer (the kernel's `changes_pkt_data` of a subprogram).
    if super::packet::function_changes_packet(env.analysis, f) {
        super::packet::clear_all_pkt_pointers(state);
    }
    Ok(())
}

/// `btf_check_func_arg_match`: each argument register against its type in the prototype.
/// `packet_writable`: the program type may write its packet (the function may write through a
/// memory argument).
fn check_args(
    state: &VerifierState,
    args: &[FuncArg],
    packet_writable: bool,
) -> Result<(), Refusal> {
    let frame = state.frame();
    for (i, arg) in args.iter().enumerate() {
        let r = (i + 1) as u8;
        let reg = &frame.regs[r as usize];
        match *arg {
            FuncArg::Scalar if !reg.is_scalar() => {
                return Err(refuse(ErrorCode::Einval, format!("R{r} is not a scalar")));
            }
            FuncArg::Scalar => {}
            FuncArg::Ctx => {
                if reg.ty.base == BaseType::Ctx && reg.off != 0 {
                    return Err(refuse(
                        ErrorCode::Eacces,
                        format!(
                            "dereference of modified ctx ptr R{r} off={} disallowed",
                            reg.off
                        ),
                    ));
                }
                if reg.ty != RegType::of(BaseType::Ctx) {
                    return Err(refuse(
                        ErrorCode::Einval,
                        format!("arg#{i} expects pointer to ctx"),
                    ));
                }
            }
            FuncArg::Mem { size, .. } => {
                // NULL is always fine here, and a pointer that may be NULL is checked as if it
                // were not (`check_mem_reg`): the function's own walk starts from "may be NULL"
                // unless its prototype says `arg:nonnull` (6.18 does not check that at calls).
                if reg.is_scalar() && reg.bounds.var_off.is_const() && reg.bounds.var_off.value == 0
                {
                    continue;
                }
                if !is_memory(reg.ty.base) {
                    // `check_helper_mem_access` names the stack as what it expected.
                    let name = reg.ty.name();
                    return Err(refuse(
                        ErrorCode::Einval,
                        format!("R{r} type={name} expected=fp"),
                    ));
                }
                // The function may write through it: a packet only XDP may write (socket
                // filters get no packet pointer today; this keeps it so for the types to come).
                if reg.ty.base.is_packet() && !packet_writable {
                    return Err(refuse(ErrorCode::Einval, "cannot write into pkt"));
                }
                let mut checked = frame.clone();
                checked.regs[r as usize].ty.maybe_null = false;
                access::helper_read(&checked, r, size)
                    .and_then(|_| access::helper_check_write(&checked, r, size))
                    .map_err(|(message, _)| refuse(ErrorCode::Einval, message))?;
            }
        }
    }
    Ok(())
}

/// Pointers to memory a global function's memory argument may be (`check_helper_mem_access`).
fn is_memory(base: BaseType) -> bool {
    matches!(
        base,
        BaseType::Stack
            | BaseType::Packet
            | BaseType::PacketMeta
            | BaseType::MapValue
            | BaseType::MapKey
            | BaseType::Mem
    )
}

/// The state a global function's walk starts from (`do_check_common` for a subprogram): its
/// arguments as the prototype types them, nothing else but the frame pointer.
pub fn entry_state(
    env: &mut Env<'_>,
    f: usize,
    global: &GlobalFunction,
) -> Result<VerifierState, Refusal> {
    let args = global
        .args
        .as_ref()
        .map_err(|message| refuse(ErrorCode::Einval, message.clone()))?;
    let mut state = VerifierState::entry();
    let frame = &mut state.frames[0];
    frame.subprog = f;
    for (i, arg) in args.iter().enumerate() {
        frame.regs[i + 1] = match *arg {
            FuncArg::Scalar => RegState::unknown_scalar(),
            FuncArg::Ctx => RegState::pointer(RegType::of(BaseType::Ctx)),
            FuncArg::Mem { size, nullable } => {
                let ty = if nullable {
                    RegType::or_null(BaseType::Mem)
                } else {
                    RegType::of(BaseType::Mem)
                };
                let mut mem = RegState::pointer(ty);
                mem.mem_size = size;
                if nullable {
                    mem.id = env.new_id();
                }
                mem
            }
        };
    }
    Ok(state)
}

/// The exit of a global function's own walk (`check_return_code` for a subprogram): what it
/// returns must be a scalar.
pub fn check_exit(r0: &RegState) -> Result<(), Refusal> {
    if r0.is_scalar() {
        return Ok(());
    }
    Err(refuse(
        ErrorCode::Einval,
        format!(
            "At subprogram exit the register R0 is not a scalar value ({})",
            r0.ty.name()
        ),
    ))
}
