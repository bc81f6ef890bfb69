//! The verifier's state at one point of one path: per frame, the eleven registers and the stack,
//! tracked per byte (the kernel's `bpf_func_state` and `bpf_stack_state`), and the frames of the
//! calls in progress (`bpf_verifier_state`).

use super::reg::RegState;
use crate::analysis::MAX_BPF_STACK;
use crate::isa::opcodes::NUM_REGS;

/// Bytes per stack slot: a slot holds one spilled register.
pub const BPF_REG_SIZE: usize = 8;

/// What one stack byte holds (`enum bpf_stack_slot_type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SlotType {
    /// Never written: reading it is an error (privileged programs may read it as a scalar only
    /// in the cases the kernel allows).
    #[default]
    Invalid,
    /// Part of a spilled register, whose state the slot keeps.
    Spill,
    /// Written with something not tracked: reads give an unknown scalar.
    Misc,
    /// Known zero.
    Zero,
}

impl SlotType {
    /// The character the log prints for the byte (`slot_type_char`).
    pub fn symbol(self) -> char {
        match self {
            SlotType::Invalid => '?',
            SlotType::Spill => 'r',
            SlotType::Misc => 'm',
            SlotType::Zero => '0',
        }
    }
}

/// One 8-byte stack slot: the type of each byte and, for a spill, the register spilled there.
/// Bytes are indexed as the kernel indexes them (`slot_type[]`): index 7 is the lowest address of
/// the slot and index 0 the highest, so that the log prints them from the top of the slot down.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct StackSlot {
    pub types: [SlotType; BPF_REG_SIZE],
    pub spilled: RegState,
}

/// The slot of the byte at `offset` from the frame pointer (negative) and its index in the
/// slot's `types`.
pub fn slot_of(offset: i64) -> (usize, usize) {
    let byte = (-offset - 1) as usize;
    (byte / BPF_REG_SIZE, byte % BPF_REG_SIZE)
}

/// The state of one frame (`struct bpf_func_state`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FuncState {
    pub regs: [RegState; NUM_REGS],
    /// Slot `i` covers the bytes `[-(i + 1) * 8, -i * 8)` below the frame pointer.
    pub stack: Vec<StackSlot>,
    /// 0 for the main program, one more per call.
    pub frameno: u32,
    /// The instruction that called this frame (none for frame 0).
    pub callsite: Option<usize>,
    /// The function (index in the analysis' `Functions`) this frame runs: its stack depth is
    /// counted against it (the kernel's `subprogno`).
    pub subprog: usize,
    /// The frame runs a callback a helper calls (`bpf_loop`, ...): see [`CallbackFrame`].
    pub callback: Option<CallbackFrame>,
    /// How many runs of a callback this frame's pending helper call has started on this path
    /// (`callback_depth`): `bpf_loop` starts no more than its count allows, and an explored
    /// state covers only states that ran at least as many.
    pub callback_depth: u32,
}

impl FuncState {
    /// A frame with only the frame pointer set.
    pub fn new(frameno: u32, callsite: Option<usize>) -> FuncState {
        let mut regs: [RegState; NUM_REGS] = Default::default();
        regs[NUM_REGS - 1] = RegState::frame_pointer(frameno);
        FuncState {
            regs,
            stack: Vec::new(),
            frameno,
            callsite,
            subprog: 0,
            callback: None,
            callback_depth: 0,
        }
    }

    /// The slot holding the byte at `offset` below the frame pointer (negative), grown when
    /// needed; `None` for offsets outside the stack.
    pub fn slot_mut(&mut self, offset: i64) -> Option<&mut StackSlot> {
        if !(-(MAX_BPF_STACK as i64)..0).contains(&offset) {
            return None;
        }
        let (index, _) = slot_of(offset);
        if self.stack.len() <= index {
            self.stack.resize(index + 1, StackSlot::default());
        }
        self.stack.get_mut(index)
    }

    /// Grows the frame to the lowest byte an access through stack pointer `base` at `off` may
    /// touch: the kernel counts every stack access, reads included, in a function's stack
    /// depth (`grow_stack_state`).
    pub fn reach(&mut self, base: &RegState, off: i64) {
        let b = &base.bounds;
        let var = if b.var_off.is_const() {
            b.var_off.value as i64
        } else {
            b.smin
        };
        let lowest = var.saturating_add(base.off as i64).saturating_add(off);
        self.slot_mut(lowest);
    }

    /// The slot holding the byte at `offset`, if the frame has grown to it.
    pub fn slot(&self, offset: i64) -> Option<&StackSlot> {
        if !(-(MAX_BPF_STACK as i64)..0).contains(&offset) {
            return None;
        }
        self.stack.get(slot_of(offset).0)
    }

    /// Marks `size` bytes from `offset` as written with an untracked value (zero if `zero`):
    /// what was spilled in their slots is no longer known.
    pub fn mark_stack_written(&mut self, offset: i64, size: usize, zero: bool) {
        for byte in offset..offset + size as i64 {
            let (_, within) = slot_of(byte);
            let Some(slot) = self.slot_mut(byte) else {
                continue;
            };
            if slot.types.contains(&SlotType::Spill) {
                for t in slot.types.iter_mut() {
                    if *t == SlotType::Spill {
                        *t = SlotType::Misc;
                    }
                }
                slot.spilled = RegState::not_init();
            }
            slot.types[within] = if zero { SlotType::Zero } else { SlotType::Misc };
        }
    }

    /// Spills `reg` to the `size` bytes at `offset`, which starts a slot (8-byte aligned): the
    /// low `size` bytes of the slot become the spill; the bytes above keep what they held
    /// (privileged programs leave never-written bytes invalid, as the kernel does for root).
    pub fn spill(&mut self, offset: i64, size: usize, reg: &RegState) {
        let Some(slot) = self.slot_mut(offset) else {
            return;
        };
        for (i, t) in slot.types.iter_mut().enumerate() {
            if i >= BPF_REG_SIZE - size {
                *t = SlotType::Spill;
            } else if *t == SlotType::Spill {
                *t = SlotType::Misc;
            }
        }
        slot.spilled = reg.clone();
    }
}

/// What a callback's frame must meet at its exit (`in_callback_fn`, `callback_ret_range`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CallbackFrame {
    /// The range R0 must be in.
    pub ret: (i64, i64),
}

/// The state of a path: the frames of the calls in progress, innermost last
/// (`struct bpf_verifier_state`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VerifierState {
    pub frames: Vec<FuncState>,
    /// References acquired and not yet released, in the order acquired (ring buffer records,
    /// and the spin lock held): one list for all frames, as the kernel keeps it since 6.13
    /// (`bpf_verifier_state.refs`).
    pub refs: Vec<Reference>,
    /// Runs of callbacks started on this path (`callback_unroll_depth`): a state that comes
    /// back to an ancestor after more runs is no infinite loop.
    pub callback_unroll_depth: u32,
}

/// A reference the program must release before it exits, or the spin lock it holds (`struct
/// bpf_reference_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    /// A pointer's `ref_obj_id`; for a lock, the id of the map value pointer it was taken
    /// through (0 for a value without one).
    pub id: u32,
    /// The instruction (slot) that acquired it, which the leak message names.
    pub alloc_insn: usize,
    /// For a spin lock: the index of the map whose value holds it.
    pub lock: Option<u32>,
}

impl VerifierState {
    /// The state at a program's first instruction: frame 0 with only R10 set (the walk sets
    /// what the program type passes in R1 and R2).
    pub fn entry() -> VerifierState {
        VerifierState {
            frames: vec![FuncState::new(0, None)],
            refs: Vec::new(),
            callback_unroll_depth: 0,
        }
    }

    /// Applies `f` to every register and spilled register of every frame: what a null check,
    /// a packet range or a release learns holds for copies in callers' frames too
    /// (`bpf_for_each_reg_in_vstate`).
    pub fn for_each_reg_mut(&mut self, mut f: impl FnMut(&mut RegState)) {
        for frame in self.frames.iter_mut() {
            frame.regs.iter_mut().for_each(&mut f);
            for slot in frame.stack.iter_mut() {
                f(&mut slot.spilled);
            }
        }
    }

    pub fn frame(&self) -> &FuncState {
        self.frames.last().expect("a state has a frame")
    }

    pub fn frame_mut(&mut self) -> &mut FuncState {
        self.frames.last_mut().expect("a state has a frame")
    }
}
