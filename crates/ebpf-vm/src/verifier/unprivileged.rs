//! The unprivileged policy (`VerifyOptions::unprivileged`): the rules Linux 6.18 adds for a load
//! without CAP_BPF and CAP_PERFMON (`allow_ptr_leaks`, `allow_uninit_stack`, `bypass_spec_v1` and
//! `bpf_capable` all false), for embedders that run untrusted code:
//! - program types: socket filters only (the kernel also lets `cgroup_skb` through, which this
//!   verifier does not model); `raw` programs, which have no kernel type, are allowed; at most
//!   4,096 instructions (`BPF_MAXINSNS`, E2BIG);
//! - no bpf-to-bpf calls, kfunc calls or function pointers (callbacks), EPERM; no back-edges at all, so no
//!   loops (`check_cfg`), EINVAL;
//! - no pointer leaks: r0 at exit, stores and atomics into map values, the context and memory,
//!   helper arguments that take any scalar (`ARG_ANYTHING`), partial copies, sign extensions,
//!   negations and byte swaps of pointers, pointer minus pointer, 32-bit arithmetic on pointers,
//!   a spilled pointer partly overwritten or passed to a helper as memory;
//! - no pointer comparisons but the null check of a pointer that may be NULL (`== 0`, `!= 0`,
//!   64-bit, against the immediate);
//! - no uninitialised stack reads, by instructions or helpers;
//! - the pointer arithmetic Spectre v1 masking needs (`sanitize_ptr_alu`,
//!   `sanitize_check_bounds`): a variable offset only on map values and only of one sign, the
//!   result in bounds (stack pointers in `[-512, -1]` and at a constant offset, map value
//!   pointers inside the value);
//! - only the helpers `bpf_base_func_proto` and the socket filter's prototype table give a
//!   caller without capabilities ([`UNPRIVILEGED_HELPERS`]).
//!
//! Each function here is a hook the core calls where the kernel tests one of those flags; the
//! messages are the kernel's (`tests/verifier_unprivileged.rs` holds its recorded verdicts).

use super::access::{self, Stored};
use super::env::{eacces, refuse, Env, ProgramKind, Refusal};
use super::reg::{BaseType, RegState};
use super::state::{slot_of, FuncState, SlotType, BPF_REG_SIZE};
use crate::analysis::MAX_BPF_STACK;
use crate::error::ErrorCode;
use crate::isa::opcodes::*;

/// The kernel's limit on the instructions of an unprivileged program (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;

/// The helpers a socket filter loaded without capabilities may call on Linux 6.18: every id
/// from 1 to 220 was called from such a program and these are the ones the kernel did not
/// refuse as `cannot use helper` / `unknown func` (recorded by `tests/verifier_unprivileged.rs`).
pub const UNPRIVILEGED_HELPERS: [i32; 32] = [
    1, 2, 3, 5, 7, 8, 12, 14, 15, 25, 26, 42, 46, 47, 68, 87, 88, 89, 105, 106, 120, 122, 125, 130,
    131, 132, 133, 134, 160, 182, 195, 208,
];

const SPECTRE: &str = "pointer arithmetic with it prohibited for !root";

/// Checks before the walk, in the kernel's order: the program type and size
/// (`bpf_prog_load`, which logs nothing), calls and function pointers
/// (`add_subprog_and_kfunc`), back-edges (`check_cfg`). The slot is the instruction to blame.
pub fn check_program(env: &Env<'_>) -> Result<(), (usize, Refusal)> {
    if !env.options.unprivileged {
        return Ok(());
    }
    let program = &env.analysis.program;
    let kind = env.options.kind;
    if !matches!(kind, ProgramKind::SocketFilter | ProgramKind::Raw { .. }) {
        let refusal = refuse(
            ErrorCode::Eperm,
            format!(
                "unprivileged: program type {} needs CAP_BPF (only socket filters load without it)",
                kind_name(kind)
            ),
        );
        return Err((0, refusal));
    }
    if program.slot_count() > MAX_INSNS {
        let refusal = refuse(
            ErrorCode::E2big,
            format!(
                "unprivileged: {} instructions, more than the {MAX_INSNS} a program may have without CAP_BPF",
                program.slot_count()
            ),
        );
        return Err((0, refusal));
    }
    for (index, insn) in program.insns().iter().enumerate() {
        let call =
            insn.opcode == (CLASS_JMP | JMP_CALL) && matches!(insn.src, CALL_LOCAL | CALL_KFUNC);
        let func = insn.is_lddw() && insn.src == PSEUDO_FUNC;
        if call || func {
            let refusal = refuse(
                ErrorCode::Eperm,
                "loading/calling other bpf or kernel functions are allowed for CAP_BPF and CAP_SYS_ADMIN",
            );
            return Err((program.slot(index), refusal));
        }
    }
    check_no_back_edge(env)
}

fn kind_name(kind: ProgramKind) -> &'static str {
    match kind {
        ProgramKind::Raw { .. } => "raw",
        ProgramKind::SocketFilter => "socket_filter",
        ProgramKind::Xdp | ProgramKind::XdpDevmap => "xdp",
        ProgramKind::Tc => "tc",
        ProgramKind::CgroupSkb { .. } => "cgroup_skb",
        ProgramKind::Kprobe => "kprobe",
        ProgramKind::Tracepoint => "tracepoint",
        ProgramKind::RawTracepoint => "raw_tracepoint",
    }
}

/// The successors of instruction `index` in the order `check_cfg` visits them: the
/// fall-through first, then the jump target.
fn successors(env: &Env<'_>, index: usize) -> Vec<usize> {
    let program = &env.analysis.program;
    let insn = program.get(index);
    let code = insn.opcode;
    let cls = class(code);
    let next = index + 1;
    let within = |i: usize| (i < program.len()).then_some(i);
    if cls != CLASS_JMP && cls != CLASS_JMP32 {
        return within(next).into_iter().collect();
    }
    let op = code & 0xf0;
    match op {
        JMP_EXIT => vec![],
        JMP_CALL => within(next).into_iter().collect(),
        JMP_JA => {
            let delta = if cls == CLASS_JMP32 {
                insn.imm() as i64
            } else {
                insn.off as i64
            };
            program
                .target(index, delta, "jump")
                .ok()
                .into_iter()
                .collect()
        }
        _ => {
            let mut out: Vec<usize> = within(next).into_iter().collect();
            out.extend(program.target(index, insn.off as i64, "jump").ok());
            out
        }
    }
}

/// A depth-first walk of the control flow graph from the first instruction (`check_cfg`): an
/// edge to an instruction still on the walk's path is a back-edge, which only programs with
/// CAP_BPF may have (`back-edge from insn T to W`, EINVAL).
fn check_no_back_edge(env: &Env<'_>) -> Result<(), (usize, Refusal)> {
    let program = &env.analysis.program;
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut mark = vec![Mark::New; program.len()];
    // (instruction, its successors, how many of them are done)
    let mut path: Vec<(usize, Vec<usize>, usize)> = vec![(0, successors(env, 0), 0)];
    mark[0] = Mark::OnPath;
    while let Some((t, succ, done)) = path.last_mut() {
        let t = *t;
        if *done == succ.len() {
            mark[t] = Mark::Done;
            path.pop();
            continue;
        }
        let w = succ[*done];
        *done += 1;
        match mark[w] {
            Mark::New => {
                mark[w] = Mark::OnPath;
                path.push((w, successors(env, w), 0));
            }
            Mark::OnPath => {
                let (from, to) = (program.slot(t), program.slot(w));
                return Err((
                    from,
                    refuse(
                        ErrorCode::Einval,
                        format!("back-edge from insn {from} to {to}"),
                    ),
                ));
            }
            Mark::Done => {}
        }
    }
    Ok(())
}

/// r0 at the main program's exit (`check_return_code`).
pub fn check_exit(env: &Env<'_>, r0: &RegState) -> Result<(), Refusal> {
    if env.options.unprivileged && r0.is_pointer() {
        return Err(eacces("R0 leaks addr as return value"));
    }
    Ok(())
}

/// A store of register `value` (number `regno`) through `base` (`check_mem_access`): a pointer
/// may be spilled to the stack, nowhere else.
pub fn check_store(
    env: &Env<'_>,
    base: &RegState,
    regno: u8,
    value: &RegState,
) -> Result<(), Refusal> {
    if !env.options.unprivileged || !value.is_pointer() || base.ty.maybe_null {
        return Ok(());
    }
    let into = match base.ty.base {
        BaseType::MapValue => "map",
        BaseType::Ctx => "ctx",
        BaseType::Mem => "mem",
        BaseType::Packet | BaseType::PacketMeta => "packet",
        _ => return Ok(()),
    };
    Err(eacces(format!("R{regno} leaks addr into {into}")))
}

/// An atomic read-modify-write (`check_atomic_rmw`): r0 of `cmpxchg`, then the source
/// register, must not be pointers, and the first read of the memory, which has no destination
/// register, may not read a spilled pointer (`leaking pointer from stack`).
pub fn check_atomic(
    env: &Env<'_>,
    frame: &FuncState,
    insn: &crate::analysis::Instruction,
    size: u32,
) -> Result<(), Refusal> {
    if !env.options.unprivileged {
        return Ok(());
    }
    let regs = &frame.regs;
    if insn.imm() == ATOMIC_CMPXCHG && regs[0].is_pointer() {
        return Err(eacces("R0 leaks addr into mem"));
    }
    if regs[insn.src as usize].is_pointer() {
        return Err(eacces(format!("R{} leaks addr into mem", insn.src)));
    }
    let base = &regs[insn.dst as usize];
    if base.ty.base == BaseType::Stack && !base.ty.maybe_null && base.bounds.var_off.is_const() {
        let at = insn.off as i64 + base.off as i64 + base.bounds.var_off.value as i64;
        let spilled_pointer = frame.slot(at).is_some_and(|s| {
            s.types.iter().all(|t| *t == SlotType::Spill) && !s.spilled.is_scalar()
        });
        if size as usize == BPF_REG_SIZE && at % BPF_REG_SIZE as i64 == 0 && spilled_pointer {
            return Err(eacces(format!("leaking pointer from stack off {at}")));
        }
    }
    Ok(())
}

/// A store of a number to the stack (`check_stack_write_fixed_off`): without CAP_BPF the kernel
/// does not spill scalars (`env->bpf_capable`), it marks the bytes written, zero when the
/// number is 0. `Some(zero)` for such a store, `None` when the core's rules apply.
pub fn plain_write(env: &Env<'_>, value: &Stored<'_>) -> Option<bool> {
    if !env.options.unprivileged {
        return None;
    }
    match value {
        Stored::Reg(r) if r.is_scalar() => {
            Some(r.bounds.var_off.is_const() && r.bounds.var_off.value == 0)
        }
        Stored::Imm(imm) => Some(*imm == 0),
        _ => None,
    }
}

/// A store of `size` bytes at fixed stack offset `at` (`check_stack_write_fixed_off`): part of
/// a spilled pointer may not be overwritten.
pub fn check_stack_write(
    env: &Env<'_>,
    frame: &FuncState,
    at: i64,
    size: u32,
) -> Result<(), Refusal> {
    if !env.options.unprivileged || size as usize == BPF_REG_SIZE {
        return Ok(());
    }
    if let Some(slot) = frame.slot(at) {
        if slot.types[BPF_REG_SIZE - 1] == SlotType::Spill && !slot.spilled.is_scalar() {
            return Err(eacces("attempt to corrupt spilled pointer on stack"));
        }
    }
    Ok(())
}

/// The stack a frame has allocated (`allocated_stack`): without `allow_uninit_stack` nothing
/// below it may be read.
fn allocated(frame: &FuncState) -> i64 {
    (frame.stack.len() * BPF_REG_SIZE) as i64
}

/// A read of `size` bytes at `at` below the allocated stack (`check_stack_slot_within_bounds`).
pub fn check_stack_allocated(
    unprivileged: bool,
    frame: &FuncState,
    regno: u8,
    at: i64,
    size: u32,
) -> Result<(), Refusal> {
    if unprivileged && at < -allocated(frame) {
        return Err(eacces(format!(
            "invalid read from stack R{regno} off={at} size={size}"
        )));
    }
    Ok(())
}

/// A load's `size` bytes at `at` (fixed offset, within the allocated stack) must all have been
/// written (`check_stack_read_fixed_off`).
pub fn check_stack_read(
    env: &Env<'_>,
    frame: &FuncState,
    at: i64,
    size: u32,
) -> Result<(), Refusal> {
    if !env.options.unprivileged {
        return Ok(());
    }
    for i in 0..size as i64 {
        if byte_type(frame, at + i) == SlotType::Invalid {
            return Err(eacces(format!(
                "invalid read from stack off {at}+{i} size {size}"
            )));
        }
    }
    Ok(())
}

fn byte_type(frame: &FuncState, at: i64) -> SlotType {
    let (_, within) = slot_of(at);
    frame
        .slot(at)
        .map_or(SlotType::Invalid, |s| s.types[within])
}

/// A helper reading `size` bytes of stack through `regs[regno]` (`check_stack_range_initialized`):
/// inside the allocated stack, every byte written, and no spilled pointer among them.
pub fn check_helper_read(
    unprivileged: bool,
    frame: &FuncState,
    regno: u8,
    size: u32,
) -> Result<(), Refusal> {
    let base = &frame.regs[regno as usize];
    if !unprivileged || base.ty.base != BaseType::Stack || !base.bounds.var_off.is_const() {
        return Ok(());
    }
    let min = base.off as i64 + base.bounds.var_off.value as i64;
    if size == 0 {
        return Ok(());
    }
    check_stack_allocated(unprivileged, frame, regno, min, size)?;
    for i in 0..size as i64 {
        let at = min + i;
        let ok = match byte_type(frame, at) {
            SlotType::Misc | SlotType::Zero => true,
            SlotType::Spill => frame.slot(at).is_some_and(|s| s.spilled.is_scalar()),
            _ => false,
        };
        if !ok {
            return Err(eacces(format!(
                "invalid read from stack R{regno} off {min}+{i} size {size}"
            )));
        }
    }
    Ok(())
}

/// A helper argument that takes any value (`ARG_ANYTHING`).
pub fn check_scalar_arg(unprivileged: bool, reg: &RegState, regno: u8) -> Result<(), Refusal> {
    if unprivileged && reg.is_pointer() {
        return Err(eacces(format!("R{regno} leaks addr into helper function")));
    }
    Ok(())
}

/// A helper the program type allows (`bpf_base_func_proto` without CAP_BPF/CAP_PERFMON).
pub fn check_helper(env: &Env<'_>, id: i32, name: &str) -> Result<(), Refusal> {
    if env.options.unprivileged
        && env.options.kind == ProgramKind::SocketFilter
        && !UNPRIVILEGED_HELPERS.contains(&id)
    {
        return Err(refuse(
            ErrorCode::Einval,
            format!("program of this type cannot use helper {name}#{id}"),
        ));
    }
    Ok(())
}

/// A conditional jump's source register (`check_cond_jmp_op`): a pointer only against another
/// packet pointer.
pub fn check_compare_src(
    env: &Env<'_>,
    insn: &crate::analysis::Instruction,
    a: &RegState,
    b: Option<&RegState>,
) -> Result<(), Refusal> {
    let Some(b) = b else {
        return Ok(());
    };
    if env.options.unprivileged
        && b.is_pointer()
        && !(a.ty.base.is_packet() && b.ty.base.is_packet())
    {
        return Err(eacces(format!(
            "R{} pointer comparison prohibited",
            insn.src
        )));
    }
    Ok(())
}

/// A conditional jump's destination register, when the jump is not decided (a pointer that
/// cannot be NULL against 0 is): a pointer only as the null check of a pointer that may be
/// NULL (`== 0`, `!= 0`, 64-bit, against the immediate), or against another packet pointer.
pub fn check_compare_dst(
    env: &Env<'_>,
    insn: &crate::analysis::Instruction,
    a: &RegState,
    b: Option<&RegState>,
) -> Result<(), Refusal> {
    if !env.options.unprivileged || !a.is_pointer() {
        return Ok(());
    }
    let packets = b.is_some_and(|b| a.ty.base.is_packet() && b.ty.base.is_packet());
    let op = insn.opcode & 0xf0;
    let null_check = b.is_none()
        && class(insn.opcode) == CLASS_JMP
        && insn.imm() == 0
        && matches!(op, JMP_JEQ | JMP_JNE)
        && a.ty.maybe_null;
    if !packets && !null_check {
        return Err(eacces(format!(
            "R{} pointer comparison prohibited",
            insn.dst
        )));
    }
    Ok(())
}

/// A move of a pointer: only a whole 64-bit copy (`check_alu_op`, `BPF_MOV`).
pub fn check_mov(
    env: &Env<'_>,
    src: &RegState,
    s: u8,
    alu32: bool,
    off: i16,
) -> Result<(), Refusal> {
    if !env.options.unprivileged || !src.is_pointer() {
        return Ok(());
    }
    if off != 0 {
        return Err(eacces(format!("R{s} sign-extension part of pointer")));
    }
    if alu32 {
        return Err(eacces(format!("R{s} partial copy of pointer")));
    }
    Ok(())
}

/// A negation or byte swap of a pointer.
pub fn check_unary(env: &Env<'_>, dst: &RegState, d: u8) -> Result<(), Refusal> {
    if env.options.unprivileged && dst.is_pointer() {
        return Err(eacces(format!("R{d} pointer arithmetic prohibited")));
    }
    Ok(())
}

/// Two pointers combined: privileged programs may subtract them (a number), others nothing.
pub fn check_pointer_pair(env: &Env<'_>, d: u8, op_name: &str) -> Result<(), Refusal> {
    if env.options.unprivileged {
        return Err(eacces(format!("R{d} pointer {op_name} pointer prohibited")));
    }
    Ok(())
}

/// 32-bit subtraction with a pointer (privileged: a number).
pub fn check_pointer_alu32(env: &Env<'_>, d: u8) -> Result<(), Refusal> {
    if env.options.unprivileged {
        return Err(eacces(format!("R{d} 32-bit pointer arithmetic prohibited")));
    }
    Ok(())
}

/// What the masking of one pointer move needs (`struct bpf_sanitize_info`): the first
/// call's state and limit, and the direction.
#[derive(Clone, Copy, Debug)]
pub struct Sanitize {
    state: u32,
    limit: u32,
    mask_to_left: bool,
}

const ALU_SANITIZE_SRC: u32 = 1;
const ALU_SANITIZE_DST: u32 = 2;
const ALU_NEG_VALUE: u32 = 4;
const ALU_IMMEDIATE: u32 = 8;

/// How far the masking lets pointer `ptr` move (`retrieve_ptr_limit`): stack and map value
/// pointers only, the limit below their bound (u32 arithmetic, as the kernel's).
fn ptr_limit(ptr: &RegState, mask_to_left: bool) -> Result<u32, Reason> {
    let (limit, max) = match ptr.ty.base {
        BaseType::Stack => (
            (ptr.bounds.var_off.value as u32)
                .wrapping_add(ptr.off as u32)
                .wrapping_neg(),
            MAX_BPF_STACK + mask_to_left as u32,
        ),
        BaseType::MapValue => (
            (if mask_to_left {
                ptr.bounds.smin as u32
            } else {
                ptr.bounds.umax as u32
            })
            .wrapping_add(ptr.off as u32),
            ptr.map.as_ref().map_or(0, |m| m.value_size),
        ),
        _ => return Err(Reason::Type),
    };
    if limit >= max {
        return Err(Reason::Limit);
    }
    Ok(limit)
}

/// Why a pointer move cannot be masked (`enum { REASON_BOUNDS, ... }`).
enum Reason {
    Bounds,
    Type,
    Paths,
    Limit,
}

/// The kernel's message for `reason` (`sanitize_err`).
fn sanitize_err(insn: &crate::analysis::Instruction, reason: Reason) -> Refusal {
    let d = insn.dst;
    let op = if insn.opcode & 0xf0 == ALU_ADD {
        "add"
    } else {
        "sub"
    };
    eacces(match reason {
        Reason::Bounds => {
            format!(
                "R{} has unknown scalar with mixed signed bounds, {SPECTRE}",
                insn.src
            )
        }
        Reason::Type => format!("R{d} has pointer with unsupported alu operation, {SPECTRE}"),
        Reason::Paths => {
            format!("R{d} tried to {op} from different maps, paths or scalars, {SPECTRE}")
        }
        Reason::Limit => format!("R{d} tried to {op} beyond pointer bounds, {SPECTRE}"),
    })
}

/// Before a pointer moves by a register (`sanitize_ptr_alu`, the first call; an immediate
/// needs no masking): an offset of unknown sign cannot be masked, and only stack and map value
/// pointers have a limit to mask against. `ptr` is the pointer operand, `off` the scalar.
pub fn check_sanitize(
    env: &mut Env<'_>,
    insn: &crate::analysis::Instruction,
    op: u8,
    (ptr, off): (&RegState, &RegState),
    scalar_dst: bool,
) -> Result<Option<Sanitize>, Refusal> {
    if !env.options.unprivileged || insn.opcode & SRC_X == 0 || !matches!(op, ALU_ADD | ALU_SUB) {
        return Ok(None);
    }
    let b = &off.bounds;
    let off_is_imm = b.var_off.is_const();
    if !off_is_imm && (b.smin < 0) != (b.smax < 0) {
        return Err(sanitize_err(insn, Reason::Bounds));
    }
    let off_is_neg = b.smin < 0;
    let mask_to_left = (op == ALU_ADD && off_is_neg) || (op == ALU_SUB && !off_is_neg);
    let limit = ptr_limit(ptr, mask_to_left).map_err(|r| sanitize_err(insn, r))?;
    let mut state = if off_is_neg { ALU_NEG_VALUE } else { 0 };
    if !off_is_imm {
        // Paths must not prune each other on scalars unless equal: another path may need
        // another mask here (`explore_alu_limits`).
        env.explore_alu_limits = true;
    }
    state |= if off_is_imm { ALU_IMMEDIATE } else { 0 };
    state |= if scalar_dst {
        ALU_SANITIZE_DST
    } else {
        ALU_SANITIZE_SRC
    };
    Ok(Some(Sanitize {
        state,
        limit,
        mask_to_left,
    }))
}

/// After a pointer moved (`sanitize_check_bounds`): a stack pointer at a constant offset in
/// `[-512, -1]`, a map value pointer whose every offset is inside the value; then, for a move
/// by a register, the masking window it needs (`sanitize_ptr_alu`, the commit call), which must
/// be the one every other path through the instruction needed (`REASON_PATHS`).
pub fn check_moved(
    env: &mut Env<'_>,
    insn: &crate::analysis::Instruction,
    moved: &RegState,
    sanitize: Option<Sanitize>,
) -> Result<(), Refusal> {
    if !env.options.unprivileged {
        return Ok(());
    }
    let d = insn.dst;
    // The moved pointer's variable part must stay sane (`check_reg_sane_offset` on the result).
    let limit = 1i64 << 29;
    let smin = moved.bounds.smin;
    if matches!(moved.ty.base, BaseType::Stack | BaseType::MapValue)
        && (smin >= limit || smin <= -limit)
    {
        return Err(refuse(
            ErrorCode::Einval,
            format!("{} pointer offset {smin} is not allowed", moved.ty.name()),
        ));
    }
    match moved.ty.base {
        BaseType::Stack => {
            let off = moved.off as i64 + moved.bounds.var_off.value as i64;
            if !moved.bounds.var_off.is_const() {
                return Err(eacces(format!(
                    "R{d} variable stack access prohibited for !root, var_off={} off={off}",
                    moved.bounds.var_off
                )));
            }
            if off >= 0 || off < -(MAX_BPF_STACK as i64) {
                return Err(eacces(format!(
                    "R{d} stack pointer arithmetic goes out of range, prohibited for !root; off={off}"
                )));
            }
        }
        BaseType::MapValue => {
            if let Err((first, _)) = access::map_value_in_bounds(moved, d, moved.off as i64, 1) {
                return Err(eacces(format!(
                    "{first}\nR{d} pointer arithmetic of map value goes out of range, prohibited for !root"
                )));
            }
        }
        _ => {}
    }
    let Some(first) = sanitize else {
        return Ok(());
    };
    // `scalar += ptr` leaves the pointer in dst: which operand was the scalar only names the
    // register in the messages of the first call, not here.
    let after = ptr_limit(moved, first.mask_to_left).map_err(|r| sanitize_err(insn, r))?;
    let limit = (first.limit.wrapping_sub(after) as i32).unsigned_abs();
    let slot = env.analysis.program.slot(env.insn_index);
    match env.alu_sanitation.get(&slot) {
        Some(&(state, old)) if state != first.state || old != limit => {
            Err(sanitize_err(insn, Reason::Paths))
        }
        _ => {
            env.alu_sanitation.insert(slot, (first.state, limit));
            Ok(())
        }
    }
}

/// How the pruning compares scalars, as (by range even when not precise, exactly): without
/// CAP_BPF the kernel makes every unknown scalar precise (`__mark_reg_unknown`), which comparing
/// every scalar by range covers (constants included: stricter, never less safe); once a pointer
/// moved by an unknown scalar, scalars must be equal (`explore_alu_limits`; here the whole
/// state is compared exactly, stricter again).
pub fn scalar_compare(env: &Env<'_>) -> (bool, bool) {
    (
        env.options.unprivileged,
        env.options.unprivileged && env.explore_alu_limits,
    )
}
