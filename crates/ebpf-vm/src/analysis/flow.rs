//! Where control goes after each instruction, in the kernel verifier's model (`visit_insn`,
//! `bpf_insn_successors`): calls of every kind come back to the next instruction; `exit` leaves the
//! function. Targets are resolved once, to logical indices, so that every later pass can follow
//! them without re-reading offsets (a jump's target is `pc + 1 + off` in slots; `gotol`'s offset is
//! its 32-bit immediate; a local call's is its immediate too).

use crate::error::{ErrorCode, LoadError};
use crate::isa::opcodes::*;

use super::program::{Instruction, LogicalProgram};

/// `bpf_tail_call`: when it succeeds the called program replaces this one and never comes back.
pub const BPF_TAIL_CALL: u32 = 12;

/// What control does after one instruction. Targets are logical indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Flow {
    /// On to the next instruction (arithmetic, loads, stores, `lddw`).
    Next,
    /// `ja` / `gotol`: only to `target`.
    Jump { target: u32 },
    /// A conditional jump: to `target` when taken, else to the next instruction.
    Branch { target: u32 },
    /// `exit`: back to the caller, or the end of the run in the main function.
    Exit,
    /// A bpf-to-bpf call (`call` with src 1) of the function at `target`; the next instruction
    /// runs when it returns.
    Call { target: u32 },
    /// A helper call; the next instruction runs when it returns, except that `bpf_tail_call`
    /// ends the run of this program when it succeeds (see `may_end_run`).
    Helper { id: u32 },
    /// `callx`: a call through a register, whose target is known only at run time.
    CallX,
    /// `LD_ABS` / `LD_IND`: on to the next instruction, or the end of the run (with r0 = 0) when
    /// the load falls outside the packet.
    PacketLoad,
}

impl Flow {
    /// Whether control may continue at the next instruction.
    pub fn falls_through(self) -> bool {
        !matches!(self, Flow::Jump { .. } | Flow::Exit)
    }

    /// The jump target, when there is one (calls are not jumps: they come back).
    pub fn jump_target(self) -> Option<usize> {
        match self {
            Flow::Jump { target } | Flow::Branch { target } => Some(target as usize),
            _ => None,
        }
    }

    /// Whether the run may end here without an `exit` of the main function: a tail call that
    /// succeeds, a packet load outside the packet.
    pub fn may_end_run(self) -> bool {
        matches!(self, Flow::Helper { id: BPF_TAIL_CALL } | Flow::PacketLoad)
    }

    /// Whether the instruction ends a basic block: it jumps, leaves the function or may not come
    /// back to the next instruction in this frame. Plain helper calls do not end blocks.
    pub fn ends_block(self) -> bool {
        match self {
            Flow::Next => false,
            Flow::Helper { .. } => self.may_end_run(),
            _ => true,
        }
    }
}

/// The flow of one instruction at logical index `index`.
fn flow_of(program: &LogicalProgram, index: usize, insn: &Instruction) -> Result<Flow, LoadError> {
    let op = insn.opcode;
    let cls = class(op);
    if cls == CLASS_LD && !insn.is_lddw() {
        return Ok(Flow::PacketLoad);
    }
    if cls != CLASS_JMP && cls != CLASS_JMP32 {
        return Ok(Flow::Next);
    }
    let target = |delta: i64, what: &str| -> Result<u32, LoadError> {
        program.target(index, delta, what).map(|t| t as u32)
    };
    Ok(match op & 0xf0 {
        JMP_EXIT => Flow::Exit,
        JMP_CALL if op & SRC_X != 0 => Flow::CallX,
        JMP_CALL if insn.src == CALL_LOCAL => Flow::Call {
            target: target(insn.imm() as i64, "call")?,
        },
        JMP_CALL => Flow::Helper {
            id: insn.imm() as u32,
        },
        JMP_JA if cls == CLASS_JMP32 => Flow::Jump {
            target: target(insn.imm() as i64, "jump")?,
        },
        JMP_JA => Flow::Jump {
            target: target(insn.off as i64, "jump")?,
        },
        _ => Flow::Branch {
            target: target(insn.off as i64, "jump")?,
        },
    })
}

/// Resolves the flow of every instruction. Fails (EINVAL, naming the slot) on a target outside
/// the program or inside an `lddw`, and on control running off the end.
pub fn resolve_flows(program: &LogicalProgram) -> Result<Vec<Flow>, LoadError> {
    let n = program.len();
    let mut flows = Vec::with_capacity(n);
    for (index, insn) in program.insns().iter().enumerate() {
        let flow = flow_of(program, index, insn)?;
        if flow.falls_through() && index + 1 == n {
            return Err(LoadError::at(
                ErrorCode::Einval,
                program.slot(index),
                "last instruction must be exit or an unconditional jump",
            ));
        }
        flows.push(flow);
    }
    Ok(flows)
}
