//! Logical instructions: the program as instructions rather than 8-byte slots. An `lddw` is one
//! instruction whose constant is the whole 64-bit value of its two slots, as in cilium/ebpf's
//! `asm.Instruction`; every other instruction is one slot. Jump offsets, the kernel's messages and
//! the engines count in slots, so the program keeps the map both ways.

use crate::error::{ErrorCode, LoadError};
use crate::isa::opcodes::OP_LDDW;
use crate::isa::{jump_target, lddw_imm, Insn};

/// Marks a slot that starts no instruction (the second half of an `lddw`).
const NO_INSTRUCTION: u32 = u32::MAX;

/// One logical instruction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Instruction {
    pub opcode: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    /// The immediate, sign-extended; for `lddw` the 64-bit constant of both slots.
    pub constant: i64,
}

impl Instruction {
    /// The 32-bit immediate as the slot holds it (for `lddw`, the low half).
    pub fn imm(&self) -> i32 {
        self.constant as i32
    }

    pub fn is_lddw(&self) -> bool {
        self.opcode == OP_LDDW
    }

    /// How many slots the instruction takes.
    pub fn slots(&self) -> usize {
        if self.is_lddw() {
            2
        } else {
            1
        }
    }
}

/// The logical instructions of a program and the map between logical indices and slots.
#[derive(Clone, Debug, Default)]
pub struct LogicalProgram {
    insns: Vec<Instruction>,
    /// Logical index -> first slot; one entry more than there are instructions (the slot count),
    /// so that `slot(i)..slot(i + 1)` are the slots of instruction `i`.
    slot_of: Vec<u32>,
    /// Slot -> logical index, `NO_INSTRUCTION` for the second half of an `lddw`.
    index_of_slot: Vec<u32>,
}

impl LogicalProgram {
    /// Merges the `lddw` pairs of `slots`. Validation has checked the pairs; what it accepts never
    /// fails here, and anything else is an EINVAL naming the slot.
    pub fn new(slots: &[Insn]) -> Result<LogicalProgram, LoadError> {
        if slots.is_empty() {
            return Err(LoadError::new(ErrorCode::Einval, "program is empty"));
        }
        if slots.len() >= NO_INSTRUCTION as usize {
            return Err(LoadError::new(
                ErrorCode::E2big,
                format!("program has {} instruction slots", slots.len()),
            ));
        }
        let mut insns = Vec::with_capacity(slots.len());
        let mut slot_of = Vec::with_capacity(slots.len() + 1);
        let mut index_of_slot = vec![NO_INSTRUCTION; slots.len()];
        let mut pc = 0;
        while pc < slots.len() {
            let s = &slots[pc];
            let mut constant = s.imm as i64;
            if s.opcode == OP_LDDW {
                let Some(next) = slots.get(pc + 1) else {
                    return Err(LoadError::at(
                        ErrorCode::Einval,
                        pc,
                        "lddw is missing its second slot",
                    ));
                };
                if *next != Insn::new(0, 0, 0, 0, next.imm) {
                    return Err(LoadError::at(
                        ErrorCode::Einval,
                        pc + 1,
                        "second slot of lddw must have opcode, registers and offset zero",
                    ));
                }
                constant = lddw_imm(s, next) as i64;
            }
            index_of_slot[pc] = insns.len() as u32;
            slot_of.push(pc as u32);
            let insn = Instruction {
                opcode: s.opcode,
                dst: s.dst,
                src: s.src,
                off: s.off,
                constant,
            };
            pc += insn.slots();
            insns.push(insn);
        }
        slot_of.push(slots.len() as u32);
        Ok(LogicalProgram {
            insns,
            slot_of,
            index_of_slot,
        })
    }

    pub fn len(&self) -> usize {
        self.insns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }

    pub fn insns(&self) -> &[Instruction] {
        &self.insns
    }

    pub fn get(&self, index: usize) -> &Instruction {
        &self.insns[index]
    }

    /// The number of slots.
    pub fn slot_count(&self) -> usize {
        self.index_of_slot.len()
    }

    /// The first slot of instruction `index`; `slot(len())` is the slot count.
    pub fn slot(&self, index: usize) -> usize {
        self.slot_of[index] as usize
    }

    /// The instruction that starts at `slot`: `None` outside the program and for the second half
    /// of an `lddw`.
    pub fn index_of_slot(&self, slot: usize) -> Option<usize> {
        match self.index_of_slot.get(slot) {
            Some(&i) if i != NO_INSTRUCTION => Some(i as usize),
            _ => None,
        }
    }

    /// The instruction at `slot + 1 + delta` (a jump or call target as the encoding gives it),
    /// or the EINVAL that names `what` and the slot of the instruction that refers to it.
    pub fn target(&self, index: usize, delta: i64, what: &str) -> Result<usize, LoadError> {
        let from = self.slot(index);
        let to = jump_target(from, delta);
        let found = usize::try_from(to).ok().and_then(|t| self.index_of_slot(t));
        found.ok_or_else(|| {
            let why = if to >= 0 && (to as usize) < self.slot_count() {
                "the second slot of lddw"
            } else {
                "outside the program"
            };
            LoadError::at(
                ErrorCode::Einval,
                from,
                format!("{what} target {to} is {why} (0..{})", self.slot_count()),
            )
        })
    }
}
