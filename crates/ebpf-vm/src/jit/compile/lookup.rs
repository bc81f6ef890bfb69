//! Map lookups without the lookup stub, at a `bpf_map_lookup_elem` call site the verifier proved
//! (its map a map of the program, its key readable for that map's key size on every path), when
//! r1 is the handle of one of the program's maps that allow it (`helpers::maps::InlineLookup`)
//! and the run's value areas stand as regions from its start (`Ctx::standing`: a batch), as the
//! kernel's JIT does them:
//! - a plain array inline (`array_map_gen_lookup`): r0 = the value's address, or 0 for an index
//!   past `max_entries`;
//! - a hash map or LPM trie by a direct call of its lookup (`helpers::maps::lookup_direct`,
//!   `lookup_direct_lpm`), without the stub's saves and the helper path's checks. The verifier
//!   makes r1-r5 unreadable after a call, so the call may clobber r3-r5; r1 and r2 are kept
//!   only for the stub, which runs when the direct lookup gives up.
//!
//! Anything else (another map, a single run, which adds the value area as a region per lookup)
//! calls the lookup stub as before. Which map a site looks into is read off the code before it
//! (the last `lddw` into r1 in the few instructions before the call: what compilers emit); the
//! code compares r1 with that handle at run time, so a site reached with another map on some
//! path takes the stub there.

use super::{ctx, Compiler, DATA_NEG, REG};
use crate::helpers::maps::{InlineLookup, LookupHow};
use crate::isa::lddw_imm;
use crate::isa::opcodes::{
    class, CLASS_ALU, CLASS_ALU64, CLASS_JMP, CLASS_LD, CLASS_LDX, CLASS_STX, OP_LDDW,
};
use crate::jit::frame::{OFF_DATA_NEG, OFF_STANDING};
use crate::jit::x86::*;

// The longest form (a call, 129 bytes with the budget's check of a chain it heads, measured by
// tests/verified_maps.rs `lookups_without_the_stub_at_a_chain_head_in_metered_code`) stays within
// the bound on one instruction's code (`MAX_INSN_BYTES`, 144), the stub's call included.

/// How far back from the call the `lddw` of r1 is looked for.
const LOOK_BACK: usize = 8;

impl Compiler<'_> {
    /// The map of the program whose handle the code before the call at `pc` loads into r1, if
    /// its lookups may skip the stub.
    pub(super) fn inline_lookup_at(&self, pc: usize) -> Option<InlineLookup> {
        if self.lookups.is_empty() {
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
        self.lookups.iter().find(|l| l.handle == handle).copied()
    }

    /// The lookup of `lookup` without the stub (see the module's comment); jumps to `slow` (the
    /// stub's call, which the caller binds and emits right after) when r1 is another map, the
    /// value areas do not stand or the direct lookup gives up, and to `done` (bound by the
    /// caller after the stub's call) with r0 set otherwise.
    pub(super) fn inline_lookup(&mut self, lookup: &InlineLookup, slow: Label, done: Label) {
        let a = &mut self.a;
        a.mov_addr64(RAX, lookup.handle);
        a.alu_rr(Alu::Cmp, W::B64, REG[1], RAX);
        a.jcc(Cond::Ne, slow);
        a.alu_mi8(Alu::Cmp, W::B64, ctx(OFF_STANDING), 0);
        a.jcc(Cond::E, slow);
        match lookup.how {
            LookupHow::Array {
                base,
                max_entries,
                stride,
            } => {
                // The index (the key is 4 bytes, readable: the proof), zero-extended.
                a.load(W::B32, RAX, mem(REG[2], 0));
                a.alu_rr(Alu::Xor, W::B32, REG[0], REG[0]);
                a.alu_ri(Alu::Cmp, W::B32, RAX, max_entries as i32);
                a.jcc(Cond::Ae, done);
                a.imul_rri(W::B64, RAX, RAX, stride as i32);
                a.mov_addr64(REG[0], base);
                a.alu_rr(Alu::Add, W::B64, REG[0], RAX);
                a.jmp(done);
            }
            LookupHow::Call {
                func,
                map,
                key_size,
            } => {
                // r1 and r2 for the stub (two words: rsp stays 16-byte aligned at the call).
                a.push(REG[1]);
                a.push(REG[2]);
                a.mov_addr64(RDI, map);
                a.mov_rr(W::B64, RSI, REG[2]);
                a.mov_r32_imm(RDX, key_size);
                a.mov_addr64(RAX, func);
                a.call_r(RAX);
                a.pop(REG[2]);
                a.pop(REG[1]);
                a.alu_ri(Alu::Cmp, W::B64, RAX, -1);
                a.jcc(Cond::E, slow);
                a.mov_rr(W::B64, REG[0], RAX);
                a.load(W::B64, DATA_NEG, ctx(OFF_DATA_NEG));
                a.jmp(done);
            }
        }
    }
}
