//! The traced loop: the reference loop (`general`, one instruction at a time, the budget checked
//! before each) that also records every step in the run's trace (`RunState::trace`, see
//! `run_trace`). A loop of its own, so that untraced runs pay nothing for tracing: a program
//! takes it only for a run that asked for a trace (on both engines: a JIT program runs its traced
//! runs here). Traced runs count no coverage.

use super::{budget_trap, RunEnv, RunOutput};
use crate::context::places::locate;
use crate::error::{Place, Trap};
use crate::isa::opcodes::*;
use crate::isa::Insn;
use crate::limits::Meter;
use crate::pointer_leaks::is_host_address;
use crate::run_trace::{TraceAccess, TraceStep, TraceValue};
use crate::semantics::{entry_registers, general, Frame, Step};

/// Runs validated instructions from slot `entry` with r1-r5 = `args`, recording each step in
/// `env.state.trace` (which must be set).
pub fn run_traced(
    insns: &[Insn],
    env: &mut RunEnv<'_>,
    args: [u64; 5],
    entry: usize,
) -> Result<RunOutput, Trap> {
    let mut reg = entry_registers(args, env.stack_top);
    let mut frames: Vec<Frame> = Vec::new();
    let mut pc = entry;
    let budget = env.budget;
    let (mut meter, mut left) = Meter::start(budget, &env.state.limits);
    let tracing = env.state.trace.is_some();
    loop {
        if left == 0 {
            left = meter.refill(&env.state.limits, 0, 1, pc)?;
            if left == 0 {
                return Err(budget_trap(pc, budget));
            }
        }
        left -= 1;
        let insn = insns[pc];
        let before = reg;
        let access = if tracing {
            access_of(&insn, &reg, env.packet)
        } else {
            None
        };
        let result = general(
            insns,
            pc,
            insn,
            &mut reg,
            &mut frames,
            env,
            meter.count(left),
        );
        if tracing {
            let step = record(env, pc, &insn, &before, &reg, access, result.is_ok());
            if let Some(trace) = env.state.trace.as_mut() {
                trace.push(step);
            }
        }
        match result? {
            Step::Next(next) => pc = next,
            Step::Call(next, charged) => {
                left = meter.take(left, charged);
                pc = next;
            }
            Step::Exit(out) => return Ok(out),
        }
    }
}

/// The memory an instruction is about to access: (address, size, write).
fn access_of(insn: &Insn, reg: &[u64; 16], packet: (u64, u64)) -> Option<(u64, u32, bool)> {
    let op = insn.opcode;
    let off = insn.off as i64 as u64;
    let size = || access_size(op);
    match class(op) {
        CLASS_STX if is_load_acquire(op, insn.imm) => Some((
            reg[(insn.src & 0x0f) as usize].wrapping_add(off),
            size(),
            false,
        )),
        CLASS_LDX => Some((
            reg[(insn.src & 0x0f) as usize].wrapping_add(off),
            size(),
            false,
        )),
        CLASS_ST | CLASS_STX => Some((
            reg[(insn.dst & 0x0f) as usize].wrapping_add(off),
            size(),
            true,
        )),
        CLASS_LD if op != OP_LDDW => {
            // A legacy packet load reads the packet at imm (+ the index register).
            let mut at = insn.imm as i64;
            if op & 0xe0 == MODE_IND {
                at += reg[(insn.src & 0x0f) as usize] as u32 as i32 as i64;
            }
            (at >= 0 && at as u64 + size() as u64 <= packet.1)
                .then(|| (packet.0 + at as u64, size(), false))
        }
        _ => None,
    }
}

/// The registers an instruction writes by its definition (besides any it changes, such as the
/// callee-saved registers an `exit` restores), as a bit mask.
fn written(insn: &Insn) -> u16 {
    let op = insn.opcode;
    let dst = 1u16 << (insn.dst & 0x0f);
    match class(op) {
        CLASS_ALU | CLASS_ALU64 | CLASS_LDX => dst,
        CLASS_LD if op == OP_LDDW => dst,
        CLASS_LD => 1,
        CLASS_STX if is_load_acquire(op, insn.imm) => dst,
        CLASS_STX if op & 0xe0 == MODE_ATOMIC => {
            if insn.imm == ATOMIC_CMPXCHG {
                1
            } else if insn.imm & ATOMIC_FETCH != 0 {
                1 << (insn.src & 0x0f)
            } else {
                0
            }
        }
        CLASS_JMP if op & 0xf0 == JMP_CALL => {
            if insn.src == CALL_LOCAL {
                1 << FP
            } else {
                1
            }
        }
        _ => 0,
    }
}

/// A value as the trace shows it: an address of the run by its place, anything else as it is.
fn shown(v: u64, env: &RunEnv<'_>) -> TraceValue {
    if let Some(map) = env.maps.resolve_ref(v) {
        // A map handle (an `lddw` of a map): the map by name, as the kernel's log names it.
        let name = &map.common().def.name;
        return TraceValue::Pointer(Place {
            region: format!("map '{name}'"),
            offset: 0,
        });
    }
    if is_host_address(v, env.regions, env.state, env.maps) {
        // An address no place names (inside a map object, say) is still not shown.
        let place = locate(v, env.state, env.maps).unwrap_or_else(|| Place {
            region: "hidden address".into(),
            offset: 0,
        });
        return TraceValue::Pointer(place);
    }
    TraceValue::Scalar(v)
}

fn record(
    env: &RunEnv<'_>,
    pc: usize,
    insn: &Insn,
    before: &[u64; 16],
    after: &[u64; 16],
    access: Option<(u64, u32, bool)>,
    ok: bool,
) -> TraceStep {
    let mut regs = Vec::new();
    if ok {
        let mask = written(insn);
        for r in 0..=FP as usize {
            if mask & (1 << r) != 0 || before[r] != after[r] {
                regs.push((r as u8, shown(after[r], env)));
            }
        }
    }
    let access = access.map(|(addr, size, write)| {
        let value = ok.then(|| {
            let v = match class(insn.opcode) {
                CLASS_LDX => after[(insn.dst & 0x0f) as usize],
                _ if is_load_acquire(insn.opcode, insn.imm) => after[(insn.dst & 0x0f) as usize],
                CLASS_LD => after[0],
                CLASS_ST => insn.imm as i64 as u64,
                _ => before[(insn.src & 0x0f) as usize],
            };
            shown(v, env)
        });
        TraceAccess {
            write,
            size,
            place: locate(addr, env.state, env.maps),
            value,
        }
    });
    TraceStep { pc, regs, access }
}
