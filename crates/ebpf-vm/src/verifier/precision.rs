//! Precision tracking (the kernel's `mark_chain_precision` and its backtracking): a scalar only
//! needs to be compared exactly when pruning if some instruction after the checkpoint relied on
//! its value for safety (a pointer offset, a helper's size, a decided branch, a constant map
//! key, ...). Such an instruction asks for precision; the walk then goes back over the path it
//! came by, instruction by instruction, to find which registers and spilled slots of each
//! earlier checkpoint the value came from, and marks them precise there. A checkpoint's
//! imprecise scalars then match any scalar ([`super::equiv`]).
//!
//! A path records only what the instructions themselves do not say: where it came from when
//! it did not fall through (jumps), which stack slot a load or store touched, and which
//! registers a conditional jump refined together (linked scalars). Anything the backtracking
//! cannot follow (atomic fetches, legacy packet loads, calls between functions) makes every
//! scalar of every checkpoint above the path precise, as the kernel does.

use std::fmt::Write;

use super::insn_text::insn_text;
use super::log::frame_state;
use super::state::{FuncState, SlotType, VerifierState, BPF_REG_SIZE};
use crate::analysis::{Analysis, Instruction};
use crate::isa::opcodes::*;

/// Registers (bit r) and stack slots (bit spi) of one frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Marks {
    pub regs: u16,
    pub slots: u64,
}

impl Marks {
    fn is_empty(&self) -> bool {
        self.regs == 0 && self.slots == 0
    }

    fn overlaps(&self, other: &Marks) -> bool {
        self.regs & other.regs != 0 || self.slots & other.slots != 0
    }

    fn add(&mut self, other: &Marks) {
        self.regs |= other.regs;
        self.slots |= other.slots;
    }
}

/// One step of a path worth recording (`struct bpf_jmp_history_entry`): instruction `insn`
/// (logical) was reached from `prev`, possibly touched a stack slot, possibly refined linked
/// scalars.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hist {
    pub insn: usize,
    pub prev: usize,
    /// The stack slot a load or store at a fixed offset touched: (frame, slot).
    pub slot: Option<(u32, usize)>,
    /// The registers and slots a conditional jump refined together (same id).
    pub linked: Option<Marks>,
}

impl Hist {
    /// An arrival at `insn` from `prev` (a jump), and nothing else.
    pub fn arrival(insn: usize, prev: usize) -> Hist {
        Hist {
            insn,
            prev,
            slot: None,
            linked: None,
        }
    }
}

/// The part of a path since its last checkpoint (the kernel keeps it in the state).
#[derive(Clone, Debug, Default)]
pub struct Segment {
    /// The checkpoint the path descends from.
    pub parent: Option<usize>,
    /// The instruction the segment starts at (the parent checkpoint's).
    pub first_insn: usize,
    pub history: Vec<Hist>,
    /// Entries the kernel would have recorded (every arrival at a jump target, every stack
    /// access): past 40 it forces a checkpoint.
    pub kernel_entries: u32,
}

/// What the walk must be able to read to go back along a path: each checkpoint's state (to
/// mark), its segment and the instruction before it.
pub trait Checkpoints {
    fn segment(&self, idx: usize) -> &Segment;
    fn last_insn(&self, idx: usize) -> usize;
    fn state_mut(&mut self, idx: usize) -> &mut VerifierState;
    /// Whether logical instruction `insn` calls a global function (which, like a helper, sets
    /// R0 and clobbers R1-R5 without its body on the path).
    fn calls_global(&self, insn: usize) -> bool;
}

/// Where the backtracking writes its level-2 log lines (`mark_precise: ...`), and what it needs
/// to name instructions as the log does (`3: (07) r1 += 1`).
pub struct PrecisionLog<'a> {
    pub out: &'a mut String,
    pub analysis: &'a Analysis,
    pub helper_name: &'a dyn Fn(i32) -> Option<String>,
}

impl PrecisionLog<'_> {
    fn slot(&self, i: usize) -> usize {
        self.analysis.program.slot(i)
    }

    fn text(&self, i: usize) -> String {
        let helper = |id: i32| (self.helper_name)(id).unwrap_or_else(|| "unknown".into());
        let insn = self.analysis.program.get(i);
        let text = insn_text(insn, self.analysis.aux[i].imm64, &helper);
        format!("{}: {text}", self.slot(i))
    }
}

/// `regs=r1,r4 stack=-8,-16` as the kernel writes a mask (`bt_fmt_reg_mask`,
/// `bt_fmt_stack_mask`).
fn masks(m: &Marks) -> String {
    let regs: Vec<String> = (0..16)
        .filter(|r| m.regs & (1 << r) != 0)
        .map(|r| format!("r{r}"))
        .collect();
    let slots: Vec<String> = (0..64)
        .filter(|spi| m.slots & (1u64 << spi) != 0)
        .map(|spi| format!("-{}", (spi + 1) * BPF_REG_SIZE))
        .collect();
    format!("regs={} stack={}", regs.join(","), slots.join(","))
}

/// The backtracking could not follow an instruction (`-ENOTSUPP`).
struct CannotFollow;

/// What precision is wanted for, per frame (index = frame number).
pub type Wanted = Vec<Marks>;

/// Goes back from instruction `insn` of the current path (whose own effect is not undone: the
/// precision asked for is of the values it read) and marks precise, in the checkpoints above
/// the path, what `wanted` depends on (`__mark_chain_precision`). `insns` are the program's
/// logical instructions.
pub fn mark_chain_precision<C: Checkpoints>(
    checkpoints: &mut C,
    insns: &[Instruction],
    current: &Segment,
    insn: usize,
    mut wanted: Wanted,
    mut log: Option<PrecisionLog<'_>>,
) {
    if wanted.iter().all(Marks::is_empty) {
        return;
    }
    // Inside a called function or a callback, a stack access may reach a caller's frame and a
    // path goes back through the call into another frame: not followed here. Every scalar
    // above is made precise instead (sound; it prunes less than the kernel in callees).
    if wanted.len() > 1 {
        mark_all_precise(checkpoints, current.parent);
        return;
    }
    let fr = wanted.len() - 1;
    let mut segment = current.clone();
    let mut last = insn;
    let mut subseq: Option<usize> = None;
    let mut skip_first = true;
    loop {
        let history = &segment.history;
        let mut h = history.len();
        let mut i = last;
        if let Some(l) = log.as_mut() {
            let subseq = subseq.map_or("-1".to_string(), |s| l.slot(s).to_string());
            let _ = writeln!(
                l.out,
                "mark_precise: frame{fr}: last_idx {} first_idx {} subseq_idx {subseq} ",
                l.slot(last),
                l.slot(segment.first_insn)
            );
        }
        loop {
            if skip_first {
                skip_first = false;
            } else {
                if let Some(l) = log.as_mut() {
                    let _ = writeln!(
                        l.out,
                        "mark_precise: frame{fr}: {} before {}",
                        masks(&wanted[fr]),
                        l.text(i)
                    );
                }
                let entry = (h > 0 && history[h - 1].insn == i).then(|| &history[h - 1]);
                let global = checkpoints.calls_global(i);
                if backtrack_insn(&insns[i], entry, global, &mut wanted).is_err() {
                    mark_all_precise(checkpoints, current.parent);
                    return;
                }
            }
            if wanted.iter().all(Marks::is_empty) {
                return;
            }
            if i == segment.first_insn && (h == 0 || (h == 1 && history[0].insn == i)) {
                break;
            }
            if h > 0 && history[h - 1].insn == i {
                i = history[h - 1].prev;
                h -= 1;
            } else if i == 0 {
                break;
            } else {
                i -= 1;
            }
        }
        let Some(p) = segment.parent else {
            return;
        };
        let state = checkpoints.state_mut(p);
        for (frame, marks) in state.frames.iter_mut().zip(wanted.iter_mut()) {
            mark_frame(frame, marks);
        }
        if let (Some(l), Some(frame)) = (log.as_mut(), state.frames.get(fr)) {
            let _ = writeln!(
                l.out,
                "mark_precise: frame{fr}: parent state {}: {}",
                masks(&wanted[fr]),
                frame_state(frame, None, None)
            );
        }
        if wanted.iter().all(Marks::is_empty) {
            return;
        }
        subseq = Some(segment.first_insn);
        last = checkpoints.last_insn(p);
        segment = checkpoints.segment(p).clone();
    }
}

/// Marks `marks` precise in `frame`; what is not a scalar, or was already precise (and so
/// already propagated further up), is dropped from `marks`.
fn mark_frame(frame: &mut FuncState, marks: &mut Marks) {
    for r in 0..16 {
        if marks.regs & (1 << r) == 0 {
            continue;
        }
        match frame.regs.get_mut(r) {
            Some(reg) if reg.is_scalar() && !reg.precise => reg.precise = true,
            _ => marks.regs &= !(1 << r),
        }
    }
    for spi in 0..64 {
        if marks.slots & (1 << spi) == 0 {
            continue;
        }
        match frame.stack.get_mut(spi) {
            Some(slot)
                if slot.types[BPF_REG_SIZE - 1] == SlotType::Spill
                    && slot.spilled.is_scalar()
                    && !slot.spilled.precise =>
            {
                slot.spilled.precise = true
            }
            _ => marks.slots &= !(1 << spi),
        }
    }
}

/// Every scalar of every checkpoint from `parent` up is precise (`mark_all_scalars_precise`).
///
/// The walk stops at the first checkpoint whose scalars were all precise already: a mark is only
/// ever set together with what it depends on further up (the rule `mark_frame` relies on), so
/// everything above such a checkpoint is marked too. Without the stop, a loop inside a callee
/// (where every precision request takes this path) walks the whole growing chain on each turn,
/// and a never-ending one takes quadratic time instead of reaching the complexity limit.
fn mark_all_precise<C: Checkpoints>(checkpoints: &mut C, mut parent: Option<usize>) {
    while let Some(p) = parent {
        let mut changed = false;
        for frame in checkpoints.state_mut(p).frames.iter_mut() {
            let regs = frame.regs.iter_mut();
            let spills = frame.stack.iter_mut().map(|s| &mut s.spilled);
            for reg in regs.chain(spills) {
                if reg.is_scalar() && !reg.precise {
                    reg.precise = true;
                    changed = true;
                }
            }
        }
        if !changed {
            return;
        }
        parent = checkpoints.segment(p).parent;
    }
}

/// Every scalar of `state` imprecise: a checkpoint's marks come only from the paths below it
/// (`mark_all_scalars_imprecise`).
pub fn clear_precision(state: &mut VerifierState) {
    for frame in state.frames.iter_mut() {
        let regs = frame.regs.iter_mut();
        let spills = frame.stack.iter_mut().map(|s| &mut s.spilled);
        for reg in regs.chain(spills) {
            reg.precise = false;
        }
    }
}

/// The line the kernel writes when a pruned path takes over precise marks
/// (`frame 0: propagating r7,fp-8`), none when there are none.
pub fn propagating_line(wanted: &Wanted) -> Option<String> {
    let mut line = String::new();
    for (fr, m) in wanted.iter().enumerate().rev() {
        let mut first = true;
        let regs = (0..10)
            .filter(|r| m.regs & (1 << r) != 0)
            .map(|r| format!("r{r}"));
        let slots = (0..64)
            .filter(|spi| m.slots & (1u64 << spi) != 0)
            .map(|spi| format!("fp{}", -((spi as i64 + 1) * BPF_REG_SIZE as i64)));
        for item in regs.chain(slots) {
            if first {
                let _ = write!(line, "frame {fr}: propagating {item}");
                first = false;
            } else {
                let _ = write!(line, ",{item}");
            }
        }
        if !first {
            line.push('\n');
        }
    }
    (!line.is_empty()).then_some(line)
}

/// The precise scalars of `state`, per frame (`propagate_precision`).
pub fn precise_marks(state: &VerifierState) -> Wanted {
    state
        .frames
        .iter()
        .map(|frame| {
            let mut marks = Marks::default();
            for (r, reg) in frame.regs.iter().enumerate().take(10) {
                if reg.is_scalar() && reg.precise {
                    marks.regs |= 1 << r;
                }
            }
            for (spi, slot) in frame.stack.iter().enumerate().take(64) {
                let spilled = slot.types[BPF_REG_SIZE - 1] == SlotType::Spill;
                if spilled && slot.spilled.is_scalar() && slot.spilled.precise {
                    marks.slots |= 1 << spi;
                }
            }
            marks
        })
        .collect()
}

/// Undoes one instruction: what `wanted` needs after it becomes what it needs before it
/// (`backtrack_insn`). Only the innermost frame's instructions are followed (the walk has one
/// frame); the slot an access touched comes from its history entry.
fn backtrack_insn(
    insn: &Instruction,
    entry: Option<&Hist>,
    calls_global: bool,
    wanted: &mut Wanted,
) -> Result<(), CannotFollow> {
    let Some(fr) = wanted.len().checked_sub(1) else {
        return Ok(());
    };
    let linked = entry.and_then(|e| e.linked);
    let sync_linked = |wanted: &mut Wanted| {
        if let Some(l) = linked {
            if wanted[fr].overlaps(&l) {
                wanted[fr].add(&l);
            }
        }
    };
    sync_linked(wanted);
    let w = &mut wanted[fr];
    let dst: u16 = 1 << (insn.dst & 0x0f);
    let src: u16 = 1 << (insn.src & 0x0f);
    let fp: u16 = 1 << 10;
    let op = insn.opcode;
    let x = op & SRC_X != 0;
    // A load-acquire backtracks as the load it is, a store-release as the store.
    let access = atomic_access(op, insn.imm());
    let as_class = match access {
        Some(AtomicAccess::LoadAcquire) => CLASS_LDX,
        _ => class(op),
    };
    match as_class {
        CLASS_ALU | CLASS_ALU64 => {
            if w.regs & dst == 0 {
                return Ok(());
            }
            match op & 0xf0 {
                ALU_END | ALU_NEG => {}
                ALU_MOV => {
                    w.regs &= !dst;
                    if x {
                        w.regs |= src & !fp;
                    }
                }
                _ if x => w.regs |= src & !fp,
                _ => {}
            }
        }
        CLASS_LDX => {
            if w.regs & dst == 0 {
                return Ok(());
            }
            w.regs &= !dst;
            // Only a fill from the stack carries a value: any other memory is a new number.
            if let Some((_, spi)) = entry.and_then(|e| e.slot) {
                w.slots |= 1 << spi;
            }
        }
        CLASS_STX if access == Some(AtomicAccess::ReadModifyWrite) => {
            // The value depends on memory and the register in ways not followed.
            let slot = entry.and_then(|e| e.slot).map_or(0, |(_, spi)| 1u64 << spi);
            if w.regs & (src | 1) != 0 || w.slots & slot != 0 {
                return Err(CannotFollow);
            }
        }
        CLASS_STX | CLASS_ST => {
            let Some((_, spi)) = entry.and_then(|e| e.slot) else {
                return Ok(());
            };
            if w.slots & (1 << spi) == 0 {
                return Ok(());
            }
            w.slots &= !(1 << spi);
            if class(op) == CLASS_STX {
                w.regs |= src & !fp;
            }
        }
        CLASS_LD => {
            if w.regs & dst == 0 {
                return Ok(());
            }
            w.regs &= !dst;
            if !insn.is_lddw() {
                return Err(CannotFollow);
            }
        }
        _ => match op & 0xf0 {
            JMP_CALL if insn.src == 0 || calls_global => {
                // A helper or a global function sets r0 and clobbers r1-r5.
                w.regs &= !0b11_1111;
            }
            JMP_CALL | JMP_EXIT => return Err(CannotFollow),
            JMP_JA => {}
            _ => {
                if x && w.regs & (dst | src) != 0 {
                    w.regs |= (dst | src) & !fp;
                }
            }
        },
    }
    sync_linked(wanted);
    Ok(())
}

/// The registers and slots of `frame` holding scalars with id `id` (a linked set).
pub fn linked_with(frame: &FuncState, id: u32) -> Marks {
    let mut marks = Marks::default();
    if id == 0 {
        return marks;
    }
    for (r, reg) in frame.regs.iter().enumerate() {
        if reg.is_scalar() && reg.id == id {
            marks.regs |= 1 << r;
        }
    }
    for (spi, slot) in frame.stack.iter().enumerate().take(64) {
        if slot.spilled.is_scalar() && slot.spilled.id == id {
            marks.slots |= 1 << spi;
        }
    }
    marks
}
