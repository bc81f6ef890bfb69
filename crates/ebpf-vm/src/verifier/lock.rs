//! Spin locks (the kernel's `process_spin_lock` and the rules around it): `bpf_spin_lock` and
//! `bpf_spin_unlock` take a map value pointer at the offset of the `struct bpf_spin_lock` the
//! map's BTF places in the value; one lock is held at a time, on the state's reference list;
//! while it is held no helper but `bpf_spin_unlock` may be called (bpf-to-bpf calls may), and
//! the program may not exit; the lock's bytes are never loaded or stored directly; socket
//! filters and tracing programs may not use maps with a lock at all.

use super::env::{eacces, refuse, Env, ProgramKind, Refusal};
use super::reg::{BaseType, MapRef, RegState};
use super::state::{Reference, VerifierState};
use crate::analysis::Imm64;
use crate::error::ErrorCode;

/// `BPF_FUNC_spin_lock` and `BPF_FUNC_spin_unlock`.
pub const BPF_SPIN_LOCK: i32 = 93;
pub const BPF_SPIN_UNLOCK: i32 = 94;

/// `sizeof(struct bpf_spin_lock)`.
const LOCK_SIZE: i64 = 4;

/// The lock the path holds, if any.
pub fn held(state: &VerifierState) -> Option<&Reference> {
    state.refs.iter().find(|r| r.lock.is_some())
}

/// A map value of a map with a spin lock keeps its id after its null check: unlock must find
/// the lock taken through the same pointer (`reg_may_point_to_spin_lock`).
pub fn may_point_to_lock(reg: &RegState) -> bool {
    reg.ty.base == BaseType::MapValue && reg.map.as_ref().is_some_and(|m| m.spin_lock.is_some())
}

/// Program types that may not use a map with a spin lock (`check_map_prog_compatibility`),
/// checked for every map the program loads before the walk, as the kernel checks them.
pub fn check_program_maps(env: &Env<'_>) -> Result<(), Refusal> {
    let message = match env.options.kind {
        ProgramKind::SocketFilter => "socket filter progs cannot use bpf_spin_lock yet",
        ProgramKind::Kprobe | ProgramKind::Tracepoint | ProgramKind::RawTracepoint => {
            "tracing progs cannot use bpf_spin_lock yet"
        }
        ProgramKind::Raw { .. }
        | ProgramKind::Xdp
        | ProgramKind::XdpDevmap
        | ProgramKind::Tc
        | ProgramKind::CgroupSkb { .. } => return Ok(()),
    };
    for aux in &env.analysis.aux {
        let index = match aux.imm64 {
            Imm64::Map { index } | Imm64::MapValue { index, .. } => index,
            _ => continue,
        };
        let locked = env
            .options
            .maps
            .get(index as usize)
            .is_some_and(|m| m.spin_lock.is_some());
        if locked {
            return Err(refuse(ErrorCode::Einval, message));
        }
    }
    Ok(())
}

/// A helper call while a lock is held: only `bpf_spin_unlock` (the kernel checks this before
/// the call's arguments).
pub fn check_call(state: &VerifierState, helper: i32) -> Result<(), Refusal> {
    if held(state).is_some() && helper != BPF_SPIN_UNLOCK {
        return Err(refuse(
            ErrorCode::Einval,
            "function calls are not allowed while holding a lock",
        ));
    }
    Ok(())
}

/// `bpf_spin_lock(reg)` (`lock`) or `bpf_spin_unlock(reg)` at `slot`, `reg` a map value
/// pointer (its type already checked) in register `r`.
pub fn lock_or_unlock(
    state: &mut VerifierState,
    (reg, r): (&RegState, u8),
    lock: bool,
    slot: usize,
) -> Result<(), Refusal> {
    let einval = |m: String| refuse(ErrorCode::Einval, m);
    if !reg.bounds.var_off.is_const() {
        return Err(einval(format!(
            "R{r} doesn't have constant offset. bpf_spin_lock has to be at the constant offset"
        )));
    }
    let map: &MapRef = reg.map.as_ref().expect("a map value has its map");
    if !map.btf {
        return Err(einval(format!(
            "map '{}' has to have BTF in order to use bpf_spin_lock",
            map.name
        )));
    }
    let Some(lock_off) = map.spin_lock else {
        return Err(einval(format!(
            "map '{}' has no valid bpf_spin_lock",
            map.name
        )));
    };
    let at = reg.bounds.var_off.value as i64 + reg.off as i64;
    if at != lock_off as i64 {
        return Err(einval(format!(
            "off {at} doesn't point to 'struct bpf_spin_lock' that is at {lock_off}"
        )));
    }
    if lock {
        if held(state).is_some() {
            return Err(einval("Locking two bpf_spin_locks are not allowed".into()));
        }
        state.refs.push(Reference {
            id: reg.id,
            alloc_insn: slot,
            lock: Some(map.index),
        });
        return Ok(());
    }
    let Some(held) = held(state).copied() else {
        return Err(einval("bpf_spin_unlock without taking a lock".into()));
    };
    if held.id != reg.id || held.lock != Some(map.index) {
        return Err(einval("bpf_spin_unlock of different lock".into()));
    }
    state.refs.retain(|r| r.lock.is_none());
    Ok(())
}

/// A load or store of `size` bytes at `insn_off` through map value `base` may not touch the
/// lock (`check_map_access`'s special fields).
pub fn check_direct_access(base: &RegState, insn_off: i16, size: u32) -> Result<(), Refusal> {
    let Some(lock_off) = base.map.as_ref().and_then(|m| m.spin_lock) else {
        return Ok(());
    };
    if base.ty.base != BaseType::MapValue {
        return Ok(());
    }
    let off = base.off as i64 + insn_off as i64;
    let (lo, hi) = (
        base.bounds.smin + off,
        base.bounds.umax as i64 + off + size as i64,
    );
    let lock = lock_off as i64;
    if lo < lock + LOCK_SIZE && lock < hi {
        return Err(eacces(
            "bpf_spin_lock cannot be accessed directly by load/store",
        ));
    }
    Ok(())
}
