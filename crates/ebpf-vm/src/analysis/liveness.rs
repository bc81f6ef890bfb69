//! Register liveness, a backward client of the dataflow solver: a register is live before an
//! instruction when some path from there reads it before writing it. The reads and writes of each
//! instruction are the kernel's (`compute_insn_live_regs`, printed as "Live regs before insn" in a
//! level-2 verifier log): a call reads its arguments (r1 up to the helper's argument count, all
//! five for bpf-to-bpf calls) and writes r0-r5; `exit` reads r0. Legacy packet loads, where the
//! kernel keeps its conservative default, read what they really read: r6 (the context) and, for
//! `LD_IND`, the source register.

use crate::isa::opcodes::*;

use super::cfg::Cfg;
use super::dataflow::{solve, Direction, Problem};
use super::flow::Flow;
use super::program::LogicalProgram;

/// A set of registers: bit `r` for register `r`.
pub type RegSet = u16;

/// r0-r5: what a call may overwrite.
pub const CALLER_SAVED: RegSet = 0b11_1111;

/// How many arguments (r1 up to rN) helper `id` reads; `all_five` when prototypes are unknown.
pub type HelperArgs<'a> = &'a dyn Fn(u32) -> u8;

/// The default `HelperArgs`: every helper may read r1-r5.
pub fn all_five(_id: u32) -> u8 {
    5
}

/// The registers a load (`CLASS_LDX`) or an ALU operation with these fields reads and writes:
/// the part of `uses_and_defs` that needs no flow (the JIT's byte gathers ask it of single
/// instructions).
pub fn data_uses_and_defs(op: u8, dst: u8, src: u8) -> (RegSet, RegSet) {
    let (d, s): (RegSet, RegSet) = (1 << (dst & 0x0f), 1 << (src & 0x0f));
    let x = op & SRC_X != 0;
    match (class(op), op & 0xf0) {
        (CLASS_LDX, _) => (s, d),
        (_, ALU_MOV) if x => (s, d),
        (_, ALU_MOV) => (0, d),
        (_, ALU_NEG | ALU_END) => (d, d),
        _ if x => (d | s, d),
        _ => (d, d),
    }
}

/// The registers instruction `index` reads and writes.
pub fn uses_and_defs(
    program: &LogicalProgram,
    flow: Flow,
    index: usize,
    helper_args: HelperArgs<'_>,
) -> (RegSet, RegSet) {
    let insn = program.get(index);
    let op = insn.opcode;
    let dst: RegSet = 1 << (insn.dst & 0x0f);
    let src: RegSet = 1 << (insn.src & 0x0f);
    let x = op & SRC_X != 0;
    let args = |n: u8| -> RegSet { ((1u32 << (n.min(5) + 1)) - 2) as RegSet };
    match class(op) {
        CLASS_LD if insn.is_lddw() => (0, dst),
        CLASS_LD => {
            let indirect = if op & 0xe0 == MODE_IND { src } else { 0 };
            (1 << 6 | indirect, CALLER_SAVED)
        }
        CLASS_LDX | CLASS_ALU | CLASS_ALU64 => data_uses_and_defs(op, insn.dst, insn.src),
        CLASS_ST => (dst, 0),
        CLASS_STX if op & 0xe0 == MODE_ATOMIC => match insn.imm() {
            ATOMIC_LOAD_ACQ => (src, dst),
            ATOMIC_CMPXCHG => (1 | dst | src, 1),
            imm if imm & ATOMIC_FETCH != 0 => (dst | src, src),
            _ => (dst | src, 0),
        },
        CLASS_STX => (dst | src, 0),
        _ => match flow {
            Flow::Exit => (1, 0),
            Flow::Jump { .. } => (0, 0),
            Flow::Helper { id } => (args(helper_args(id)), CALLER_SAVED),
            Flow::Call { .. } => (args(5), CALLER_SAVED),
            Flow::CallX => (args(5) | dst, CALLER_SAVED),
            _ if x => (dst | src, 0),
            _ => (dst, 0),
        },
    }
}

/// The reads and writes of every instruction, computed once: the solver applies a transfer
/// several times per instruction.
struct Live {
    uses_defs: Vec<(RegSet, RegSet)>,
}

impl Problem for Live {
    type Fact = RegSet;
    const DIRECTION: Direction = Direction::Backward;

    fn bottom(&self) -> RegSet {
        0
    }
    fn boundary(&self) -> RegSet {
        0
    }
    fn join(&self, into: &mut RegSet, other: &RegSet) -> bool {
        let old = *into;
        *into |= *other;
        *into != old
    }
    fn transfer(&self, _: &LogicalProgram, index: usize, live: &mut RegSet) {
        let (uses, defs) = self.uses_defs[index];
        *live = (*live & !defs) | uses;
    }
}

/// The registers live before each instruction (indexed by logical instruction).
pub fn live_registers(
    program: &LogicalProgram,
    cfg: &Cfg,
    helper_args: HelperArgs<'_>,
) -> Vec<RegSet> {
    let problem = Live {
        uses_defs: (0..program.len())
            .map(|i| uses_and_defs(program, cfg.flows[i], i, helper_args))
            .collect(),
    };
    let solution = solve(program, cfg, &problem);
    let mut live = vec![0; program.len()];
    solution.visit(program, cfg, &problem, |i, fact| live[i] = *fact);
    live
}
