//! Load-time rewriting of context accesses, as the kernel's verifier does it (`convert_ctx_accesses`).
//!
//! A 32-bit load of `data`, `data_end` or `data_meta` through the context pointer becomes a 64-bit
//! load of the real pointer from the hidden tail of the context buffer (see `layout.rs`), so objects
//! clang built for the kernel run unchanged. Which loads go through the context pointer: for a
//! verified program, the verifier's pointer types (the base register was `ctx()` on every path the
//! walk took: `verifier::env::Verified::ctx_bases`), as the kernel's own rewrite reads its
//! verifier's. For a checked program, a small forward dataflow pass tracks, per instruction,
//! which registers and which 8-byte stack slots of the current frame hold the unmodified context
//! pointer (r1 at entry; copies by `mov`; spills and fills through r10). The two agree on what
//! compilers emit; the verifier also follows what the pass does not (`r2 = r1; r2 += 0`).
//! bpf-to-bpf calls pass r1-r5 to the callee (all call sites joined); callback entries (`lddw` of
//! a function, for `bpf_loop`) start with no context register. The pass runs over the analysis'
//! logical instructions and follows its resolved flows; it records the field of each context
//! access in the side table (`Aux::ctx_field`).
//!
//! What the kernel rejects here is rejected too (EACCES, naming the instruction): a pointer field
//! loaded with the wrong size or offset, an access past the end of the struct, a store outside the
//! writable fields, an atomic on the context, and one instruction reached with the context pointer
//! on one path and another value on another ("same insn cannot be used with different pointers").

use crate::analysis::{Aux, Flow, Functions, Instruction, LogicalProgram};
use crate::error::{ErrorCode, LoadError};
use crate::isa::opcodes::*;
use crate::isa::Insn;

use super::layout::CtxLayout;

/// What a register or stack slot holds, as far as the context pointer goes; for a load or store,
/// what its base register holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtxBase {
    /// Anything but the unmodified context pointer.
    Other,
    Ctx,
    /// The context pointer on some paths, something else on others.
    Mixed,
}

fn join(a: CtxBase, b: CtxBase) -> CtxBase {
    match (a, b) {
        (x, y) if x == y => x,
        _ => CtxBase::Mixed,
    }
}

/// 8-byte slots of one 512-byte stack frame.
const SLOTS: usize = 64;

#[derive(Clone, PartialEq, Eq)]
struct State {
    regs: [CtxBase; 11],
    stack: [CtxBase; SLOTS],
}

impl State {
    fn entry(ctx_in_r1: bool) -> State {
        let mut regs = [CtxBase::Other; 11];
        if ctx_in_r1 {
            regs[1] = CtxBase::Ctx;
        }
        State {
            regs,
            stack: [CtxBase::Other; SLOTS],
        }
    }

    /// Joins `other` into `self`; true when `self` changed.
    fn merge(&mut self, other: &State) -> bool {
        let mut changed = false;
        for (a, b) in self
            .regs
            .iter_mut()
            .chain(self.stack.iter_mut())
            .zip(other.regs.iter().chain(other.stack.iter()))
        {
            let j = join(*a, *b);
            changed |= j != *a;
            *a = j;
        }
        changed
    }

    fn clobber_caller_saved(&mut self) {
        for r in 0..=5 {
            self.regs[r] = CtxBase::Other;
        }
    }

    /// The slot an 8-byte-aligned access at r10 + `off` names, if it is one.
    fn slot(off: i64) -> Option<usize> {
        if (-(SLOTS as i64) * 8..0).contains(&off) && off % 8 == 0 {
            Some(((off + SLOTS as i64 * 8) / 8) as usize)
        } else {
            None
        }
    }

    /// Any store of `size` bytes at r10 + `off` that is not a whole-slot spill.
    fn smash(&mut self, off: i64, size: u32) {
        let base = SLOTS as i64 * 8;
        for byte in [off, off + size as i64 - 1] {
            if (0..base).contains(&(byte + base)) {
                self.stack[((byte + base) / 8) as usize] = CtxBase::Other;
            }
        }
    }
}

/// Control-flow successors of logical instruction `i` (what the analysis resolved: `flow`) and
/// the state each one receives.
fn step(insn: &Instruction, i: usize, flow: Flow, s: &State, out: &mut Vec<(usize, State)>) {
    let op = insn.opcode;
    let d = (insn.dst & 0x0f) as usize;
    let sr = (insn.src & 0x0f) as usize;
    let mut n = s.clone();
    match class(op) {
        CLASS_ALU64 | CLASS_ALU => {
            n.regs[d] = if op == (CLASS_ALU64 | ALU_MOV | SRC_X) && insn.off == 0 {
                s.regs[sr]
            } else {
                CtxBase::Other
            };
        }
        CLASS_LDX => {
            let size = access_size(op);
            n.regs[d] = match State::slot(insn.off as i64) {
                Some(i) if sr == FP as usize && size == 8 && op & 0xe0 == MODE_MEM => s.stack[i],
                _ => CtxBase::Other,
            };
        }
        CLASS_ST | CLASS_STX => {
            let size = access_size(op);
            if d == FP as usize {
                let spill = class(op) == CLASS_STX && op & 0xe0 == MODE_MEM && size == 8;
                match State::slot(insn.off as i64) {
                    Some(i) if spill => n.stack[i] = s.regs[sr],
                    _ => n.smash(insn.off as i64, size),
                }
            }
            if op & 0xe0 == MODE_ATOMIC {
                if insn.imm() == ATOMIC_LOAD_ACQ {
                    n.regs[d] = CtxBase::Other;
                } else if insn.imm() == ATOMIC_CMPXCHG {
                    n.regs[0] = CtxBase::Other;
                } else if insn.imm() & ATOMIC_FETCH != 0 {
                    n.regs[sr] = CtxBase::Other;
                }
            }
        }
        CLASS_LD if insn.is_lddw() => n.regs[d] = CtxBase::Other,
        _ => {}
    }
    match flow {
        Flow::Next => out.push((i + 1, n)),
        Flow::Exit => {}
        Flow::Jump { target } => out.push((target as usize, n)),
        Flow::Branch { target } => {
            out.push((target as usize, n.clone()));
            out.push((i + 1, n));
        }
        Flow::Call { target } => {
            let mut callee = State::entry(false);
            callee.regs[1..=5].copy_from_slice(&s.regs[1..=5]);
            out.push((target as usize, callee));
            n.clobber_caller_saved();
            out.push((i + 1, n));
        }
        // Helper calls, and legacy packet loads (which clobber r0-r5 as in the kernel).
        Flow::Helper { .. } | Flow::CallX | Flow::PacketLoad => {
            n.clobber_caller_saved();
            out.push((i + 1, n));
        }
    }
}

fn ctx_error(pc: usize, layout: &CtxLayout, off: i64, size: u32, what: &str) -> LoadError {
    LoadError::at(
        ErrorCode::Eacces,
        pc,
        format!(
            "invalid bpf_context access off={off} size={size} ({what} of struct {})",
            layout.name
        ),
    )
}

/// Rewrites the context accesses of `insns` for `layout`, and records in `aux` which field each
/// access through the context pointer touches (`Aux::ctx_field`, as the program wrote it).
///
/// Which accesses go through the context pointer: for a verified program, what the verifier
/// proved (`proved_bases`, by instruction slot: the pointer types the walk saw in each access's
/// base register, on every path); otherwise the provenance pass of this module, on the control
/// flow the analysis gives: `program` (the logical instructions of `insns`), `flows` and
/// `functions` (whose callbacks start with no context register). Returns how many loads were
/// rewritten.
pub fn rewrite_ctx_accesses(
    insns: &mut [Insn],
    program: &LogicalProgram,
    flows: &[Flow],
    functions: &Functions,
    aux: &mut [Aux],
    layout: &CtxLayout,
    proved_bases: Option<&[CtxBase]>,
) -> Result<usize, LoadError> {
    let bases: Vec<Option<CtxBase>> = match proved_bases {
        Some(by_slot) => (0..program.len())
            .map(|i| Some(by_slot[program.slot(i)]))
            .collect(),
        None => access_bases(insns, program, flows, functions),
    };
    apply(insns, program, aux, layout, &bases)
}

/// The provenance pass: for each logical instruction, what the base register of its load or
/// store holds (`None` where no path reaches it, and for other instructions).
fn access_bases(
    insns: &[Insn],
    program: &LogicalProgram,
    flows: &[Flow],
    functions: &Functions,
) -> Vec<Option<CtxBase>> {
    let n = program.len();
    let mut states: Vec<Option<State>> = vec![None; n];
    let mut queued = vec![false; n];
    let mut work: Vec<usize> = Vec::new();
    let mut seed = |i: usize, s: State, states: &mut Vec<Option<State>>, work: &mut Vec<usize>| {
        states[i] = Some(s);
        if !queued[i] {
            queued[i] = true;
            work.push(i);
        }
    };
    seed(0, State::entry(true), &mut states, &mut work);
    for f in functions.funcs.iter().filter(|f| f.address_taken) {
        if f.start != 0 && states[f.start].is_none() {
            seed(f.start, State::entry(false), &mut states, &mut work);
        }
    }
    let mut succ = Vec::with_capacity(2);
    while let Some(i) = work.pop() {
        queued[i] = false;
        let Some(s) = states[i].clone() else {
            continue;
        };
        succ.clear();
        step(program.get(i), i, flows[i], &s, &mut succ);
        for (to, st) in succ.drain(..) {
            let changed = match &mut states[to] {
                Some(cur) => cur.merge(&st),
                slot @ None => {
                    *slot = Some(st);
                    true
                }
            };
            if changed && !queued[to] {
                queued[to] = true;
                work.push(to);
            }
        }
    }

    (states.iter().enumerate())
        .map(|(i, state)| {
            let insn = insns[program.slot(i)];
            let base = match class(insn.opcode) {
                CLASS_LDX => insn.src,
                // A load-acquire reads through its source register, as `apply` does.
                CLASS_STX if is_load_acquire(insn.opcode, insn.imm) => insn.src,
                CLASS_ST | CLASS_STX => insn.dst,
                _ => return None,
            };
            state.as_ref().map(|s| s.regs[(base & 0x0f) as usize])
        })
        .collect()
}

/// Checks and rewrites each load and store whose base register `bases` gives (by logical
/// instruction).
fn apply(
    insns: &mut [Insn],
    program: &LogicalProgram,
    aux: &mut [Aux],
    layout: &CtxLayout,
    bases: &[Option<CtxBase>],
) -> Result<usize, LoadError> {
    let mut rewritten = 0;
    for (i, &held) in bases.iter().enumerate() {
        let Some(held) = held else { continue };
        let pc = program.slot(i);
        let insn = insns[pc];
        let op = insn.opcode;
        let (base, is_load) = match class(op) {
            CLASS_LDX => ((insn.src & 0x0f) as usize, true),
            CLASS_STX if is_load_acquire(op, insn.imm) => ((insn.src & 0x0f) as usize, true),
            CLASS_ST | CLASS_STX => ((insn.dst & 0x0f) as usize, false),
            _ => continue,
        };
        let off = insn.off as i64;
        let size = access_size(op);
        let pointer = layout.pointer_at(off, size).copied();
        match held {
            CtxBase::Ctx => {}
            CtxBase::Mixed if pointer.is_some() => {
                return Err(LoadError::at(
                    ErrorCode::Eacces,
                    pc,
                    format!(
                        "same insn cannot be used with different pointers: r{base} is the context \
                         on some paths only, and this accesses its {} field",
                        pointer.map(|p| p.name).unwrap_or("")
                    ),
                ));
            }
            _ => continue,
        }
        if off < 0 || off + size as i64 > layout.size as i64 {
            return Err(ctx_error(pc, layout, off, size, "outside"));
        }
        if op & 0xe0 == MODE_ATOMIC && class(op) == CLASS_STX {
            return Err(ctx_error(
                pc,
                layout,
                off,
                size,
                "atomic operation on a field",
            ));
        }
        if !is_load {
            let Some(field) = layout.store_at(off, size) else {
                return Err(ctx_error(
                    pc,
                    layout,
                    off,
                    size,
                    "store to a read-only field",
                ));
            };
            let skipped =
                class(op) == CLASS_ST && field.skip_imm_from.is_some_and(|from| insn.imm >= from);
            if skipped {
                // The kernel stores nothing (it emits `ja +0`). A register moved onto itself
                // instead: the analysis' control flow, which the engines follow, stays as it is.
                insns[pc] = Insn::new(CLASS_ALU64 | ALU_MOV | SRC_X, insn.dst, insn.dst, 0, 0);
            } else if field.width != size {
                // A 16-bit field of the kernel's sk_buff: the kernel stores the low half.
                insns[pc] = Insn::new(
                    class(op) | MODE_MEM | SIZE_H,
                    insn.dst,
                    insn.src,
                    insn.off,
                    insn.imm,
                );
            }
            aux[i].ctx_field = Some(off as u16);
            continue;
        }
        if layout.is_unreadable(off, size) {
            return Err(ctx_error(
                pc,
                layout,
                off,
                size,
                "load of a field this program type cannot read",
            ));
        }
        if let Some(p) = pointer {
            if off != p.off as i64 || size != 4 || op & 0xe0 != MODE_MEM {
                return Err(ctx_error(pc, layout, off, size, p.name));
            }
            insns[pc] = Insn::new(
                CLASS_LDX | MODE_MEM | SIZE_DW,
                insn.dst,
                insn.src,
                p.hidden as i16,
                0,
            );
            rewritten += 1;
        }
        aux[i].ctx_field = Some(off as u16);
    }
    Ok(rewritten)
}
