//! Helper calls checked from their prototypes (the kernel's `check_helper_call` and
//! `check_func_arg`): the helper must be offered to the program type and, when GPL-only, to a
//! GPL-compatible program; each argument register must hold what its `ArgType` asks (a map, a
//! key or value of that map's sizes, memory of the size the next argument bounds, the context,
//! any scalar); r1-r5 are clobbered and r0 gets the `RetType`'s state.
//!
//! Ring buffer records are references ([`super::refs`]): reserve acquires one, submit and
//! discard release it. Spin locks are [`super::lock`]'s.
//!
//! Callbacks (`ARG_PTR_TO_FUNC`) are [`super::callback`]'s.
//!
//! A lookup in a map of maps gives the inner map or NULL (`map_ptr_or_null` with the inner
//! template's facts); checked, it is a map argument like any other.
//!
//! Helpers that change packet data leave no packet pointer valid ([`super::packet`]).
//!
//! Not yet (each a rejection that says so): constant strings and kfuncs.

use super::access;
use super::arith::check_init;
use super::callback;
use super::env::{eacces, refuse, unsupported, Env, Refusal};
use super::lock;
use super::refs;
use super::reg::{BaseType, MapRef, RegState, RegType};
use super::state::{FuncState, VerifierState};
use super::subprog;
use super::walk::note_stack_slot;
use crate::analysis::Instruction;
use crate::analysis::MAX_BPF_STACK;
use crate::error::ErrorCode;
use crate::helpers::prototype::{ArgType, KernelProgType, RetType};
use crate::isa::opcodes::CALL_HELPER;

const BPF_FUNC_MAP_LOOKUP_ELEM: i32 = 1;
const BPF_FUNC_TAIL_CALL: i32 = 12;
/// `BPF_MAP_TYPE_PROG_ARRAY`.
const PROG_ARRAY: u32 = 3;

/// `BPF_MAX_VAR_SIZ`: the bound a variable size argument must stay under.
const MAX_VAR_SIZE: u64 = 1 << 29;

/// Map types that only some helpers take, and the helpers that take only some map types
/// (`check_map_func_compatibility`, the part our helpers meet): prog arrays (3) with tail_call
/// (12); perf event arrays (4) with perf_event_read (22), perf_event_output (25),
/// perf_event_read_value (55), skb_output (111), xdp_output (121); queues (22) and stacks (23)
/// with push (87), pop (88), peek (89); bloom filters (30) with push and peek (not pop); ring
/// buffers (27) with ringbuf_output (130), reserve (131), query (134); devmaps (14, 25) and
/// cpumaps (16) with redirect_map only. xskmaps (17) with redirect_map only here: the kernel
/// also lets programs look them up (an `xdp_sock`, `PTR_TO_XDP_SOCK`), which this runtime does
/// not model, so such a lookup is refused; stack traces (7) with get_stackid (27).
const MAP_FUNCS: [(u32, &[i32]); 11] = [
    (3, &[12]),
    (4, &[22, 25, 55, 111, 121]),
    (7, &[27]),
    (14, &[51, 1]),
    (25, &[51, 1]),
    (16, &[51]),
    (17, &[51]),
    (22, &[87, 88, 89]),
    (23, &[87, 88, 89]),
    (27, &[130, 131, 134]),
    (30, &[87, 89]),
];

/// `BPF_MAP_TYPE_ARRAY_OF_MAPS`, `BPF_MAP_TYPE_HASH_OF_MAPS`: programs may only look them up
/// (one way: lookups take other maps too), and a lookup gives the inner map
/// (`CONST_PTR_TO_MAP`), not a value.
const MAP_OF_MAPS: [u32; 2] = [12, 13];

/// What the arguments checked so far tell the later ones (`struct bpf_call_arg_meta`, in part).
#[derive(Default)]
struct Meta {
    /// The unprivileged rules apply ([`super::unprivileged`]).
    unprivileged: bool,
    map: Option<MapRef>,
    /// The constant key of an array lookup, when the stack holds one.
    key: Option<u64>,
    /// The stack slot holding that key.
    key_slot: Option<usize>,
    /// The size `bpf_ringbuf_reserve` asks for (`ARG_CONST_ALLOC_SIZE_OR_ZERO`).
    alloc_size: Option<u32>,
    /// The reference a release argument holds (`OBJ_RELEASE`).
    release: Option<u32>,
    /// The map value a spin lock argument points to, and its register.
    spin_lock: Option<(RegState, u8)>,
    /// The entry of the callback a function pointer argument names.
    callback: Option<usize>,
}

/// What the log prints after a call.
pub struct CallLog {
    /// The state a callback the helper calls starts in, and the callback's entry: a path the
    /// walk takes later.
    pub callback: Option<(VerifierState, usize)>,
    /// `bpf_loop` started as many runs of its callback as its count allows: none more
    /// (the kernel's "frameN bpf_loop iteration limit reached", at log level 2).
    pub loop_limit: Option<u32>,
    /// A size argument was marked precise: the kernel logs the backtracking, so the state
    /// after the call goes on a line of its own (`N: R0=...`).
    pub state_on_own_line: bool,
}

/// Checks helper call `insn` (at logical instruction `index`) on `state` and applies its effect on the registers; the stack
/// slots the helper writes are added to `slots` (printed after the call).
pub fn helper_call(
    env: &mut Env<'_>,
    state: &mut VerifierState,
    (insn, index): (&Instruction, usize),
    slots: &mut Vec<usize>,
) -> Result<CallLog, Refusal> {
    let slot = env.analysis.program.slot(index);
    if insn.src != CALL_HELPER {
        return Err(unsupported("kfuncs"));
    }
    let id = insn.imm();
    lock::check_call(state, id)?;
    let name = env.helper_name(id);
    let Some(proto) = (env.options.prototype)(id) else {
        return Err(refuse(
            ErrorCode::Einval,
            format!("helper {name}#{id}: its prototype is not known to this verifier yet"),
        ));
    };
    if let Some(kind) = env.options.kind.kernel_type() {
        if !proto.prog_types.contains(kind) {
            return Err(refuse(
                ErrorCode::Einval,
                format!("program of this type cannot use helper {name}#{id}"),
            ));
        }
    }
    super::unprivileged::check_helper(env, id, &name)?;
    if proto.needs_gpl(env.options.kind.kernel_type()) && !env.options.gpl_compatible {
        return Err(refuse(
            ErrorCode::Einval,
            "cannot call GPL-restricted function from non-GPL compatible program",
        ));
    }
    let mut meta = Meta {
        unprivileged: env.options.unprivileged,
        ..Meta::default()
    };
    for (n, arg) in proto.args.iter().enumerate() {
        let r = n as u8 + 1;
        if *arg == ArgType::DontCare {
            continue;
        }
        check_init(&state.frame().regs, r)?;
        if *arg != ArgType::Anything
            && state.frame().regs[r as usize].ty.base.is_packet()
            && !(proto.pkt_access && super::packet::may_read_direct(env.options.kind))
        {
            return Err(eacces("helper access to the packet is not allowed"));
        }
        // Memory in a caller's stack is checked against that stack (and not printed here); a
        // size argument checks the memory in the register before it.
        let sized = matches!(arg, ArgType::ConstSize | ArgType::ConstSizeOrZero);
        let mem = if sized { r - 1 } else { r };
        let caller_stack = subprog::points_to_caller(state, mem);
        // A size's value decides how much memory is checked: precise.
        if sized && state.frame().regs[r as usize].is_scalar() {
            env.want_precise(r);
        }
        subprog::with_stack_of(state, mem, |frame| {
            if let Some(size) = written_size(frame, &proto.args, n, &meta) {
                for off in 0..size.min(MAX_BPF_STACK) {
                    if !caller_stack {
                        note_stack_slot(frame, r, off as i16, slots);
                    }
                }
            }
            let prev = n.checked_sub(1).map(|p| proto.args[p]);
            check_arg(
                frame,
                r,
                *arg,
                (prev, proto.args.get(n + 1).copied()),
                &mut meta,
            )?;
            // The memory a helper reads or writes on the stack counts in the stack depth.
            let touches = sized
                || matches!(
                    arg,
                    ArgType::PtrToMapKey
                        | ArgType::PtrToMapValue
                        | ArgType::PtrToUninitMapValue
                        | ArgType::PtrToFixedSizeUninitMem { .. }
                        | ArgType::PtrToFixedSizeMem { .. }
                );
            let base = frame.regs[mem as usize].clone();
            if touches && base.ty.base == BaseType::Stack {
                frame.reach(&base, 0);
            }
            Ok(())
        })?;
    }
    // A map lookup whose map and key the checks above proved (a map of the program, its key
    // readable for `key_size` bytes): noted as an access through the key's pointer, so that
    // the engines may call the lookup without checking them again (`Proved::direct`).
    if id == crate::helpers::maps::BPF_MAP_LOOKUP_ELEM as i32
        && proto.args[..2] == [ArgType::ConstMapPtr, ArgType::PtrToMapKey]
    {
        let kind = super::walk::access_kind(&state.frame().regs[2]);
        env.note_access(slot, kind);
    }
    // `check_get_func_ip`: offered to every tracing type, callable from kprobes only (and
    // fentry/fexit, which are no type here).
    if id == crate::helpers::probe_read::BPF_GET_FUNC_IP as i32 {
        if let Some(kind) = env.options.kind.kernel_type() {
            if kind != KernelProgType::Kprobe {
                return Err(refuse(
                    ErrorCode::Enotsupp,
                    format!(
                        "func {name}#{id} not supported for program type {}",
                        kind as u32
                    ),
                ));
            }
        }
    }
    // A map programs may only read is not changed through the map helpers either
    // (`record_func_map`, after the arguments).
    use crate::helpers::maps::{
        BPF_MAP_DELETE_ELEM, BPF_MAP_POP_ELEM, BPF_MAP_PUSH_ELEM, BPF_MAP_UPDATE_ELEM,
    };
    let changes_map = matches!(
        id as u32,
        BPF_MAP_UPDATE_ELEM | BPF_MAP_DELETE_ELEM | BPF_MAP_PUSH_ELEM | BPF_MAP_POP_ELEM
    );
    if changes_map && meta.map.as_ref().is_some_and(|m| !m.program_may_write()) {
        return Err(eacces("write into map forbidden"));
    }
    if id == BPF_FUNC_TAIL_CALL {
        // What the kernel checks of a tail call (`record_func_map`, then the program leaves
        // here when the call succeeds: nothing may be held).
        if meta.map.as_ref().is_some_and(|m| m.map_type != PROG_ARRAY) {
            // The kernel's message has no newline: the log's next line runs on.
            return Err(refuse(
                ErrorCode::Einval,
                "expected prog array map for tail call",
            ));
        }
        refs::check_resource_leak(state, "tail_call")?;
    }
    if let Some((reg, r)) = &meta.spin_lock {
        lock::lock_or_unlock(state, (reg, *r), id == lock::BPF_SPIN_LOCK, slot)?;
    }
    if let Some(ref_id) = meta.release {
        if !refs::release(state, ref_id) {
            return Err(refuse(
                ErrorCode::Einval,
                format!("func {name}#{id} reference has not been acquired before"),
            ));
        }
    }
    let (callback, loop_limit) = match meta.callback {
        Some(entry) => {
            let frameno = state.frame().frameno;
            match callback::visit(env, state, (id, index), entry, meta.map.as_ref())? {
                Some(start) => (Some((start, entry)), None),
                None => (None, Some(frameno)),
            }
        }
        None => (None, None),
    };
    // Checked after the callback, as the kernel checks it (near the end of the call).
    if let Some(map) = &meta.map {
        check_map_func(map, id, &name)?;
    }
    for r in 1..=5 {
        state.frame_mut().regs[r] = RegState::not_init();
    }
    let r0 = match proto.ret {
        RetType::Integer => RegState::unknown_scalar(),
        RetType::Void => RegState::not_init(),
        RetType::PtrToMapValueOrNull => {
            // An embedder's prototype may declare this return without a map argument.
            let Some(map) = meta.map else {
                return Err(refuse(
                    ErrorCode::Einval,
                    format!("helper {name}#{id} returns a map value but takes no map"),
                ));
            };
            if MAP_OF_MAPS.contains(&map.map_type) {
                // The inner map, or NULL (6.18 types it `map_ptr_or_null` at once, with the
                // inner template's sizes): never a value, which would let the program read the
                // inner map's handle.
                let Some(inner) = map.inner else {
                    return Err(refuse(
                        ErrorCode::Einval,
                        format!("map '{}' of maps has no inner map template", map.name),
                    ));
                };
                state.frame_mut().regs[0] = RegState {
                    map: Some(*inner),
                    id: env.new_id(),
                    ..RegState::pointer(RegType::or_null(BaseType::ConstMap))
                };
                return Ok(CallLog {
                    callback,
                    loop_limit,
                    state_on_own_line: false,
                });
            }
            let elided = id == BPF_FUNC_MAP_LOOKUP_ELEM && key_in_array(&map, meta.key);
            // The key's value decides whether the element exists: precise.
            if let (true, Some(spi)) = (ARRAY_TYPES.contains(&map.map_type), meta.key_slot) {
                env.want_precise_slot(spi);
            }
            if elided {
                // An array element that exists: no NULL to check for; an id all the same when
                // the value holds a spin lock (unlock must match the pointer locked).
                let id = if map.spin_lock.is_some() {
                    env.new_id()
                } else {
                    0
                };
                RegState {
                    map: Some(map),
                    id,
                    ..RegState::pointer(RegType::of(BaseType::MapValue))
                }
            } else {
                RegState {
                    map: Some(map),
                    id: env.new_id(),
                    ..RegState::pointer(RegType::or_null(BaseType::MapValue))
                }
            }
        }
        RetType::PtrToRingbufMemOrNull => {
            // A record of the constant size asked for, or NULL; the kernel gives the nullable
            // pointer an id, then makes it the reference's (so ids advance by two).
            env.new_id();
            let ref_id = refs::acquire(env, state, slot);
            RegState {
                mem_size: meta.alloc_size.unwrap_or(0),
                id: ref_id,
                ref_obj_id: ref_id,
                ..RegState::pointer(RegType {
                    ringbuf: true,
                    ..RegType::or_null(BaseType::Mem)
                })
            }
        }
        other => return Err(unsupported(&format!("return type {other} of {name}#{id}"))),
    };
    state.frame_mut().regs[0] = r0;
    if super::packet::changes_packet(id) {
        super::packet::clear_all_pkt_pointers(state);
    }
    Ok(CallLog {
        callback,
        loop_limit,
        // The tail call's index is marked precise too (`record_func_key`).
        state_on_own_line: id == BPF_FUNC_TAIL_CALL
            || proto.args.iter().any(|a| {
                matches!(
                    a,
                    ArgType::ConstSize | ArgType::ConstSizeOrZero | ArgType::ConstAllocSizeOrZero
                )
            }),
    })
}

/// The bytes the helper writes through argument `n` (uninit memory), when known: the map's
/// value size, the fixed size, or the largest value of the size argument after it.
fn written_size(frame: &FuncState, args: &[ArgType; 5], n: usize, meta: &Meta) -> Option<u32> {
    match args[n] {
        ArgType::PtrToUninitMapValue => meta.map.as_ref().map(|m| m.value_size),
        ArgType::PtrToFixedSizeUninitMem { size } | ArgType::PtrToFixedSizeMem { size } => {
            Some(size)
        }
        ArgType::PtrToUninitMem | ArgType::PtrToWritableMemOrNull | ArgType::PtrToWritableMem => {
            let b = &frame.regs[n + 2].bounds;
            Some(b.umax.min(MAX_VAR_SIZE) as u32)
        }
        _ => None,
    }
}

fn check_map_func(map: &MapRef, id: i32, name: &str) -> Result<(), Refusal> {
    let refused = || {
        refuse(
            ErrorCode::Einval,
            format!(
                "cannot pass map_type {} into func {name}#{id}",
                map.map_type
            ),
        )
    };
    if MAP_OF_MAPS.contains(&map.map_type) && id != BPF_FUNC_MAP_LOOKUP_ELEM {
        return Err(refused());
    }
    if let Some((_, funcs)) = MAP_FUNCS.iter().find(|(t, _)| *t == map.map_type) {
        if !funcs.contains(&id) {
            return Err(refused());
        }
    }
    // Lookups take most map types: only the helpers listed with these types alone are theirs.
    let wanted: Vec<u32> = MAP_FUNCS
        .iter()
        .filter(|(_, funcs)| id != BPF_FUNC_MAP_LOOKUP_ELEM && funcs.contains(&id))
        .map(|(t, _)| *t)
        .collect();
    if !wanted.is_empty() && !wanted.contains(&map.map_type) {
        return Err(refused());
    }
    Ok(())
}

fn expected(frame: &FuncState, r: u8, what: &str) -> Refusal {
    eacces(format!(
        "R{r} type={} expected={what}",
        frame.regs[r as usize].ty.name()
    ))
}

/// What a memory argument may point to (`mem_types`: the stack, packet data and metadata, map
/// keys and values, helper memory); never `data_end`, the context or a map handle.
fn is_memory(reg: &RegState) -> bool {
    !reg.ty.maybe_null
        && matches!(
            reg.ty.base,
            BaseType::Stack
                | BaseType::Packet
                | BaseType::PacketMeta
                | BaseType::MapKey
                | BaseType::MapValue
                | BaseType::Mem
        )
}

fn is_null(reg: &RegState) -> bool {
    reg.is_scalar() && reg.bounds.var_off.is_const() && reg.bounds.var_off.value == 0
}

/// A helper's read of `size` bytes through `regs[r]`, with the unprivileged rules when they
/// apply (no uninitialised stack byte, no spilled pointer).
fn helper_read(frame: &FuncState, r: u8, size: u32, unprivileged: bool) -> Result<(), Refusal> {
    access::helper_read(frame, r, size)?;
    super::unprivileged::check_helper_read(unprivileged, frame, r, size)
}

/// One argument (`check_func_arg`); a sized memory argument is checked with its size, when
/// the size argument (`next`) comes.
fn check_arg(
    frame: &mut FuncState,
    r: u8,
    arg: ArgType,
    (prev, next): (Option<ArgType>, Option<ArgType>),
    meta: &mut Meta,
) -> Result<(), Refusal> {
    let reg = frame.regs[r as usize].clone();
    match arg {
        ArgType::DontCare => Ok(()),
        ArgType::Anything => super::unprivileged::check_scalar_arg(meta.unprivileged, &reg, r),
        ArgType::ConstMapPtr => match (&reg.map, reg.ty.base) {
            // A map of maps' lookup result is `map_ptr_or_null` until checked.
            (Some(map), BaseType::ConstMap) if !reg.ty.maybe_null => {
                meta.map = Some(map.clone());
                Ok(())
            }
            _ => Err(expected(frame, r, "map_ptr")),
        },
        ArgType::PtrToMapKey | ArgType::PtrToMapValue | ArgType::PtrToUninitMapValue => {
            let Some(map) = meta.map.clone() else {
                return Err(eacces("invalid map_ptr to access map->key"));
            };
            if arg == ArgType::PtrToMapKey {
                helper_read(frame, r, map.key_size, meta.unprivileged)?;
                // Without CAP_BPF the kernel does not look for a constant key
                // (`get_constant_map_key`): an array lookup's result may always be NULL.
                meta.key = if meta.unprivileged {
                    None
                } else {
                    constant_key(frame, r, map.key_size)
                };
                if meta.key.is_some() {
                    let key = &frame.regs[r as usize];
                    let at = key.bounds.var_off.value as i64 + key.off as i64;
                    meta.key_slot = Some(super::state::slot_of(at).0);
                }
                Ok(())
            } else if arg == ArgType::PtrToMapValue {
                helper_read(frame, r, map.value_size, meta.unprivileged)
            } else {
                access::helper_write(frame, r, map.value_size)
            }
        }
        ArgType::PtrToReadonlyMem
        | ArgType::PtrToReadonlyMemOrNull
        | ArgType::PtrToUninitMem
        | ArgType::PtrToWritableMemOrNull
        | ArgType::PtrToWritableMem => {
            let may_be_null = matches!(
                arg,
                ArgType::PtrToReadonlyMemOrNull | ArgType::PtrToWritableMemOrNull
            );
            if !(is_memory(&reg) || may_be_null && is_null(&reg)) {
                return Err(expected(
                    frame,
                    r,
                    "fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_",
                ));
            }
            match next {
                Some(ArgType::ConstSize | ArgType::ConstSizeOrZero) => Ok(()),
                _ => Err(unsupported(&format!(
                    "a memory argument in R{r} without a size after it"
                ))),
            }
        }
        ArgType::ConstSize | ArgType::ConstSizeOrZero => {
            let writes = matches!(
                prev,
                Some(ArgType::PtrToUninitMem | ArgType::PtrToWritableMemOrNull)
            );
            // Initialised memory the helper also writes: read, then written.
            if prev == Some(ArgType::PtrToWritableMem) {
                check_size(
                    frame,
                    r,
                    arg == ArgType::ConstSizeOrZero,
                    false,
                    meta.unprivileged,
                )?;
            }
            let writes = writes || prev == Some(ArgType::PtrToWritableMem);
            check_size(
                frame,
                r,
                arg == ArgType::ConstSizeOrZero,
                writes,
                meta.unprivileged,
            )
        }
        ArgType::PtrToFixedSizeUninitMem { size } => access::helper_write(frame, r, size),
        ArgType::PtrToFixedSizeMem { size } => {
            access::helper_read(frame, r, size)?;
            access::helper_write(frame, r, size)
        }
        ArgType::PtrToCtx => {
            if reg.ty.base != BaseType::Ctx || reg.ty.maybe_null {
                return Err(expected(frame, r, "ctx"));
            }
            if reg.off != 0 {
                return Err(eacces(format!(
                    "dereference of modified ctx ptr R{r} off={} disallowed",
                    reg.off
                )));
            }
            Ok(())
        }
        ArgType::ConstAllocSizeOrZero => {
            if !reg.is_scalar() {
                return Err(expected(frame, r, "scalar"));
            }
            if !reg.bounds.var_off.is_const() {
                // The kernel's message has the stray quote.
                return Err(eacces(format!("R{r} is not a known constant'")));
            }
            // The kernel keeps the size in 32 bits (a larger reservation fails at run time).
            meta.alloc_size = Some(reg.bounds.var_off.value as u32);
            Ok(())
        }
        ArgType::PtrToRingbufMemRelease => {
            let ringbuf_mem = reg.ty.base == BaseType::Mem && reg.ty.ringbuf && !reg.ty.maybe_null;
            if !ringbuf_mem {
                return Err(expected(frame, r, "ringbuf_mem"));
            }
            if reg.off != 0 {
                return Err(refuse(
                    ErrorCode::Einval,
                    format!("R{r} must have zero offset when passed to release func or trusted arg to kfunc"),
                ));
            }
            if !reg.bounds.var_off.is_const() || reg.bounds.var_off.value != 0 {
                return Err(eacces(format!(
                    "variable {} access var_off={} disallowed",
                    reg.ty.name(),
                    reg.bounds.var_off
                )));
            }
            if reg.ref_obj_id == 0 {
                return Err(refuse(
                    ErrorCode::Einval,
                    format!("R{r} must be referenced when passed to release function"),
                ));
            }
            meta.release = Some(reg.ref_obj_id);
            Ok(())
        }
        ArgType::PtrToSpinLock => {
            if reg.ty.base != BaseType::MapValue || reg.ty.maybe_null {
                return Err(expected(frame, r, "map_value, ptr_"));
            }
            meta.spin_lock = Some((reg, r));
            Ok(())
        }
        ArgType::PtrToFunc => {
            if reg.ty.base != BaseType::Func {
                return Err(expected(frame, r, "func"));
            }
            meta.callback = Some(reg.func_entry as usize);
            Ok(())
        }
        ArgType::PtrToStackOrNull => {
            if reg.ty.base == BaseType::Stack || is_null(&reg) {
                Ok(())
            } else {
                Err(expected(frame, r, "fp"))
            }
        }
        ArgType::PtrToConstStr => Err(unsupported(&format!("argument type {arg} (R{r})"))),
    }
}

/// The size argument in `r` of the memory argument in `r - 1` (`check_mem_size_reg`): a scalar
/// of known range, and the memory accessible up to its largest value (written
/// when the helper `writes` it).
fn check_size(
    frame: &mut FuncState,
    r: u8,
    zero_allowed: bool,
    writes: bool,
    unprivileged: bool,
) -> Result<(), Refusal> {
    let size = frame.regs[r as usize].clone();
    if !size.is_scalar() {
        return Err(expected(frame, r, "scalar"));
    }
    let b = &size.bounds;
    if b.smin < 0 {
        return Err(eacces(format!(
            "R{r} min value is negative, either use unsigned or 'var &= const'"
        )));
    }
    if b.umin == 0 && !zero_allowed {
        return Err(eacces(format!(
            "R{r} invalid zero-sized read: u64=[{},{}]",
            b.umin, b.umax
        )));
    }
    if b.umax >= MAX_VAR_SIZE {
        return Err(eacces(format!(
            "R{r} unbounded memory access, use 'var &= const' or 'if (var < const)'"
        )));
    }
    let mem = r - 1;
    if b.umax == 0 && is_null(&frame.regs[mem as usize]) {
        return Ok(());
    }
    if is_null(&frame.regs[mem as usize]) {
        return Err(expected(
            frame,
            mem,
            "fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_",
        ));
    }
    if b.umax == 0 {
        return Ok(());
    }
    let umax = b.umax as u32;
    if writes {
        access::helper_write(frame, mem, umax)
    } else {
        helper_read(frame, mem, umax, unprivileged)
    }
}

/// `BPF_MAP_TYPE_ARRAY` and `BPF_MAP_TYPE_PERCPU_ARRAY`: every key below `max_entries` exists.
const ARRAY_TYPES: [u32; 2] = [2, 6];

fn key_in_array(map: &MapRef, key: Option<u64>) -> bool {
    ARRAY_TYPES.contains(&map.map_type)
        && !map.max_entries_vary
        && key.is_some_and(|k| k < map.max_entries as u64)
}

/// The key `r` points to, when the stack holds it as a constant: known-zero bytes, or a scalar
/// spill of exactly the key's width (`get_constant_map_key`). Bytes are counted from the key's
/// first byte up through its slot, as the kernel counts them.
fn constant_key(frame: &FuncState, r: u8, key_size: u32) -> Option<u64> {
    use super::state::SlotType;
    let reg = &frame.regs[r as usize];
    if reg.ty.base != BaseType::Stack || !reg.bounds.var_off.is_const() {
        return None;
    }
    let at = reg.bounds.var_off.value as i64 + reg.off as i64;
    let slot = frame.slot(at)?;
    let (_, within) = super::state::slot_of(at);
    let run = |ty: SlotType| {
        slot.types[..=within]
            .iter()
            .rev()
            .take_while(|t| **t == ty)
            .count()
    };
    if run(SlotType::Zero) >= key_size as usize {
        return Some(0);
    }
    if !slot.spilled.is_scalar() || run(SlotType::Spill) != key_size as usize {
        return None;
    }
    let b = &slot.spilled.bounds;
    b.var_off.is_const().then_some(b.var_off.value)
}

impl super::env::ProgramKind {
    /// The kernel program type whose helper set applies (`None` for raw programs: every
    /// helper).
    pub fn kernel_type(self) -> Option<KernelProgType> {
        match self {
            super::env::ProgramKind::Raw { .. } => None,
            super::env::ProgramKind::SocketFilter => Some(KernelProgType::SocketFilter),
            super::env::ProgramKind::Xdp | super::env::ProgramKind::XdpDevmap => {
                Some(KernelProgType::Xdp)
            }
            super::env::ProgramKind::Tc => Some(KernelProgType::SchedCls),
            super::env::ProgramKind::CgroupSkb { .. } => Some(KernelProgType::CgroupSkb),
            super::env::ProgramKind::Kprobe => Some(KernelProgType::Kprobe),
            super::env::ProgramKind::Tracepoint => Some(KernelProgType::Tracepoint),
            super::env::ProgramKind::RawTracepoint => Some(KernelProgType::RawTracepoint),
        }
    }
}
