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
    // The frame the backtracking is in (`bt->frame`): it goes up into a called function at
    // the function's `exit` and back down at the call.
    let mut fr = wanted.len() - 1;
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
                let step = Step {
                    insns,
                    i,
                    subseq,
                    entry,
                    calls_global: global,
                };
                if backtrack_insn(&step, &mut wanted, &mut fr).is_err() {
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
            subseq = Some(i);
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
        if state.frames.len() != fr + 1 {
            // The checkpoint is not in the frame the backtracking reached: not followed.
            mark_all_precise(checkpoints, Some(p));
            return;
        }
        for (frame, marks) in state.frames.iter_mut().zip(wanted.iter_mut()) {
            mark_frame(frame, marks);
        }
        if let Some(l) = log.as_mut() {
            for f in (0..=fr).rev() {
                let _ = writeln!(
                    l.out,
                    "mark_precise: frame{f}: parent state {}: {}",
                    masks(&wanted[f]),
                    frame_state(&state.frames[f], None, None)
                );
            }
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
        if !make_scalars_precise(checkpoints.state_mut(p)) {
            return;
        }
        parent = checkpoints.segment(p).parent;
    }
}

/// Every scalar of `state` (registers and spills, every frame) precise; whether one was not.
pub fn make_scalars_precise(state: &mut VerifierState) -> bool {
    let mut changed = false;
    for frame in state.frames.iter_mut() {
        let regs = frame.regs.iter_mut();
        let spills = frame.stack.iter_mut().map(|s| &mut s.spilled);
        for reg in regs.chain(spills) {
            if reg.is_scalar() && !reg.precise {
                reg.precise = true;
                changed = true;
            }
        }
    }
    changed
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

/// One instruction of the path being gone back over: logical instruction `i` of `insns`, the
/// one the path went on to after it (`subseq_idx`, none for the instruction the backtracking
/// started at), its history entry, and whether it calls a global function (which, like a
/// helper, sets R0 and clobbers R1-R5 without its body on the path).
struct Step<'a> {
    insns: &'a [Instruction],
    i: usize,
    subseq: Option<usize>,
    entry: Option<&'a Hist>,
    calls_global: bool,
}

/// R1-R5.
const ARGS: u16 = 0b11_1110;

/// Whether `insn` calls a helper that calls its callback before it returns.
fn calls_callback(insn: &Instruction) -> bool {
    insn.opcode == OP_CALL
        && insn.src == 0
        && u32::try_from(insn.imm()).is_ok_and(super::callback::calls_back_at_once)
}

/// Undoes one instruction: what `wanted` needs after it becomes what it needs before it
/// (`backtrack_insn`). `fr` is the frame the instruction runs in: going back over a function's
/// `exit` enters the function's frame, going back over its call (or a helper's call of a
/// callback, from the callback's first instruction) returns to the caller's. The slot an
/// access touched, in whichever frame, comes from its history entry.
fn backtrack_insn(
    step: &Step<'_>,
    wanted: &mut Wanted,
    fr: &mut usize,
) -> Result<(), CannotFollow> {
    let insn = &step.insns[step.i];
    let entry = step.entry;
    let linked = entry.and_then(|e| e.linked);
    let cur = *fr;
    let sync_linked = |wanted: &mut Wanted| {
        if let Some(l) = linked {
            if wanted[cur].overlaps(&l) {
                wanted[cur].add(&l);
            }
        }
    };
    sync_linked(wanted);
    // The stack slot an access touched: (frame, bit).
    let slot = entry
        .and_then(|e| e.slot)
        .filter(|(f, _)| (*f as usize) < wanted.len())
        .map(|(f, spi)| (f as usize, 1u64 << spi));
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
            let w = &mut wanted[cur];
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
            let w = &mut wanted[cur];
            if w.regs & dst == 0 {
                return Ok(());
            }
            w.regs &= !dst;
            // Only a fill from the stack carries a value: any other memory is a new number.
            if let Some((f, bit)) = slot {
                wanted[f].slots |= bit;
            }
        }
        CLASS_STX if access == Some(AtomicAccess::ReadModifyWrite) => {
            // The value depends on memory and the register in ways not followed.
            let in_slot = slot.is_some_and(|(f, bit)| wanted[f].slots & bit != 0);
            if wanted[cur].regs & (src | 1) != 0 || in_slot {
                return Err(CannotFollow);
            }
        }
        CLASS_STX | CLASS_ST => {
            let Some((f, bit)) = slot else {
                return Ok(());
            };
            if wanted[f].slots & bit == 0 {
                return Ok(());
            }
            wanted[f].slots &= !bit;
            if class(op) == CLASS_STX {
                wanted[cur].regs |= src & !fp;
            }
        }
        CLASS_LD => {
            let w = &mut wanted[cur];
            if w.regs & dst == 0 {
                return Ok(());
            }
            w.regs &= !dst;
            if !insn.is_lddw() {
                return Err(CannotFollow);
            }
        }
        _ => match op & 0xf0 {
            JMP_CALL if insn.src == CALL_LOCAL && !step.calls_global => {
                // Back from a static function's first instruction to its call: only its
                // arguments may still be wanted, and they are the caller's R1-R5.
                let w = wanted[cur];
                if cur == 0 || w.regs & !ARGS != 0 || w.slots != 0 {
                    return Err(CannotFollow);
                }
                wanted.truncate(cur);
                *fr = cur - 1;
                wanted[*fr].regs |= w.regs;
                return Ok(());
            }
            JMP_CALL if calls_callback(insn) && step.subseq.is_some_and(|s| s != step.i + 1) => {
                // Back from a callback's first instruction to the helper's call: its
                // arguments come from the helper, not from the caller's registers.
                let w = wanted[cur];
                if cur == 0 || w.regs & !ARGS != 0 || w.slots != 0 {
                    return Err(CannotFollow);
                }
                wanted.truncate(cur);
                *fr = cur - 1;
                return Ok(());
            }
            JMP_CALL if insn.src == 0 || step.calls_global => {
                // A helper or a global function sets r0 and clobbers r1-r5.
                wanted[cur].regs &= !0b11_1111;
            }
            JMP_EXIT => {
                // Back from the caller into the function that returned: a callback's exit
                // goes back to the helper's call (whose R1-R5 the helper set, and R0 its own
                // result), a static function's to the instruction after its call (R0 is then
                // the function's).
                let Some(s) = step.subseq else {
                    return Err(CannotFollow);
                };
                let w = &mut wanted[cur];
                if calls_callback(&step.insns[s]) {
                    w.regs &= !ARGS;
                }
                if w.regs & ARGS != 0 {
                    return Err(CannotFollow);
                }
                let after_call = s > 0
                    && step.insns[s - 1].opcode == OP_CALL
                    && step.insns[s - 1].src == CALL_LOCAL;
                let r0 = after_call && w.regs & 1 != 0;
                w.regs &= !1;
                *fr = cur + 1;
                wanted.truncate(*fr);
                wanted.push(Marks {
                    regs: r0 as u16,
                    slots: 0,
                });
                return Ok(());
            }
            JMP_CALL => return Err(CannotFollow),
            JMP_JA => {}
            _ => {
                let w = &mut wanted[cur];
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
