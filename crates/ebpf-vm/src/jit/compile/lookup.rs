//! Array lookups done by compiled code itself, as the kernel's JIT inlines
//! `array_map_gen_lookup`: at a `bpf_map_lookup_elem` call site the verifier proved (its map a
//! map of the program, its key readable for that map's key size on every path), when r1 is the
//! handle of one of the program's plain arrays (`vm::env::InlineArray`) and the run's value areas
//! stand as regions from its start (`Ctx::standing`: a batch), r0 is the value's address, or 0
//! for an index past `max_entries`, without leaving the code. Anything else (another map, a
//! single run, which adds the value area as a region per lookup) calls the lookup stub as before.
//!
//! Which array a site looks into is read off the code before it (the last `lddw` into r1 in the
//! few instructions before the call: what compilers emit); the code compares r1 with that handle
//! at run time, so a site reached with another map on some path only takes the stub there.

use super::{ctx, Compiler, REG};
use crate::isa::lddw_imm;
use crate::isa::opcodes::{
    class, CLASS_ALU, CLASS_ALU64, CLASS_JMP, CLASS_LD, CLASS_LDX, CLASS_STX, OP_LDDW,
};
use crate::jit::frame::OFF_STANDING;
use crate::jit::x86::*;
use crate::vm::env::InlineArray;

/// How far back from the call the `lddw` of r1 is looked for.
const LOOK_BACK: usize = 8;

impl Compiler<'_> {
    /// The array of the program whose handle the code before the call at `pc` loads into r1.
    pub(super) fn inline_array(&self, pc: usize) -> Option<InlineArray> {
        if self.arrays.is_empty() {
            return None;
        }
        let mut handle = None;
        let mut j = pc.saturating_sub(LOOK_BACK);
        while j < pc {
            let insn = &self.insns[j];
            if insn.opcode == OP_LDDW && j + 1 < pc {
                if insn.dst == 1 {
                    handle = Some(lddw_imm(insn, &self.insns[j + 1]));
                }
                j += 2;
                continue;
            }
            // Anything else that may write r1 (a call clobbers it) hides which map it holds.
            let writes_r1 = match class(insn.opcode) {
                CLASS_ALU | CLASS_ALU64 | CLASS_LD | CLASS_LDX => insn.dst == 1,
                CLASS_JMP => insn.opcode & 0xf0 == 0x80,
                // An atomic operation that fetches writes its source register.
                CLASS_STX => insn.opcode & 0xe0 == 0xc0 && insn.src == 1,
                _ => false,
            };
            if writes_r1 {
                handle = None;
            }
            j += 1;
        }
        let handle = handle?;
        self.arrays.iter().find(|a| a.handle == handle).copied()
    }

    /// The inline lookup into `array` (see the module's comment); falls into `slow` (the stub's
    /// call, emitted by the caller right after) when r1 is another map or the value areas do not
    /// stand, and jumps to `done` (bound by the caller after the stub's call) otherwise.
    pub(super) fn inline_lookup(&mut self, array: &InlineArray, slow: Label, done: Label) {
        let a = &mut self.a;
        a.mov_imm64(RAX, array.handle);
        a.alu_rr(Alu::Cmp, W::B64, REG[1], RAX);
        a.jcc(Cond::Ne, slow);
        a.alu_mi8(Alu::Cmp, W::B64, ctx(OFF_STANDING), 0);
        a.jcc(Cond::E, slow);
        // The index (the key is 4 bytes, readable: the proof), zero-extended.
        a.load(W::B32, RAX, mem(REG[2], 0));
        a.alu_rr(Alu::Xor, W::B32, REG[0], REG[0]);
        a.alu_ri(Alu::Cmp, W::B32, RAX, array.max_entries as i32);
        a.jcc(Cond::Ae, done);
        a.imul_rri(W::B64, RAX, RAX, array.stride as i32);
        a.mov_imm64(REG[0], array.base);
        a.alu_rr(Alu::Add, W::B64, REG[0], RAX);
        a.jmp(done);
    }
}
