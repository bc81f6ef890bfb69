//! The prepared form the fast loop runs: one 16-byte `Op` per slot with its `Code` (an arm of
//! the fast loop, or `General`), the length of the segment from each slot, the verifier's proof
//! per access, and fused idioms (`fuse`). Made once at load (`prepare`).

use super::threaded::{self, Slot};
use crate::analysis::Analysis;
use crate::isa::opcodes::*;
use crate::isa::{jump_target, Insn};

/// What the fast loop does with a slot: one variant per instruction with an arm of its own
/// (named after the mnemonic, class width and source), `General` for the rest. An enum rather
/// than the opcode byte so that the dispatch `match` is exhaustive: the compiler checks that every
/// code has an arm, and the jump table needs no range check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Code {
    /// Handed to `general` (and the never-executed second slot of `lddw`).
    #[default]
    General,
    Add64Imm,
    Add64Reg,
    Sub64Imm,
    Sub64Reg,
    Mul64Imm,
    Mul64Reg,
    Div64Imm,
    Div64Reg,
    Or64Imm,
    Or64Reg,
    And64Imm,
    And64Reg,
    Lsh64Imm,
    Lsh64Reg,
    Rsh64Imm,
    Rsh64Reg,
    Mod64Imm,
    Mod64Reg,
    Xor64Imm,
    Xor64Reg,
    Mov64Imm,
    Mov64Reg,
    Arsh64Imm,
    Arsh64Reg,
    Add32Imm,
    Add32Reg,
    Sub32Imm,
    Sub32Reg,
    Mul32Imm,
    Mul32Reg,
    Div32Imm,
    Div32Reg,
    Or32Imm,
    Or32Reg,
    And32Imm,
    And32Reg,
    Lsh32Imm,
    Lsh32Reg,
    Rsh32Imm,
    Rsh32Reg,
    Mod32Imm,
    Mod32Reg,
    Xor32Imm,
    Xor32Reg,
    Mov32Imm,
    Mov32Reg,
    Arsh32Imm,
    Arsh32Reg,
    Ja,
    JeqImm,
    JeqReg,
    JgtImm,
    JgtReg,
    JgeImm,
    JgeReg,
    JsetImm,
    JsetReg,
    JneImm,
    JneReg,
    JsgtImm,
    JsgtReg,
    JsgeImm,
    JsgeReg,
    JltImm,
    JltReg,
    JleImm,
    JleReg,
    JsltImm,
    JsltReg,
    JsleImm,
    JsleReg,
    Exit,
    Jeq32Imm,
    Jeq32Reg,
    Jgt32Imm,
    Jgt32Reg,
    Jge32Imm,
    Jge32Reg,
    Jset32Imm,
    Jset32Reg,
    Jne32Imm,
    Jne32Reg,
    Jsgt32Imm,
    Jsgt32Reg,
    Jsge32Imm,
    Jsge32Reg,
    Jlt32Imm,
    Jlt32Reg,
    Jle32Imm,
    Jle32Reg,
    Jslt32Imm,
    Jslt32Reg,
    Jsle32Imm,
    Jsle32Reg,
    LdxW,
    LdxH,
    LdxB,
    LdxDw,
    StW,
    StH,
    StB,
    StDw,
    StxW,
    StxH,
    StxB,
    StxDw,
    Lddw,
    // Fused sequences (see `fuse`): `rD = rS; rD += rT` alone, or followed by a load or a store
    // through rD, the way clang indexes arrays.
    MovAdd,
    MovAddLdxW,
    MovAddLdxH,
    MovAddLdxB,
    MovAddLdxDw,
    MovAddStxW,
    MovAddStxH,
    MovAddStxB,
    MovAddStxDw,
}

impl Code {
    /// Whether the code is a fused `rD = rS; rD += rT` with a load or store through rD.
    pub(super) fn is_mov_add_access(self) -> bool {
        matches!(
            self,
            Code::MovAddLdxW
                | Code::MovAddLdxH
                | Code::MovAddLdxB
                | Code::MovAddLdxDw
                | Code::MovAddStxW
                | Code::MovAddStxH
                | Code::MovAddStxB
                | Code::MovAddStxDw
        )
    }
}

/// The fast loop's code for an instruction.
pub(super) fn code_of(insn: &Insn) -> Code {
    match insn.opcode {
        0x07 => Code::Add64Imm,
        0x0f => Code::Add64Reg,
        0x17 => Code::Sub64Imm,
        0x1f => Code::Sub64Reg,
        0x27 => Code::Mul64Imm,
        0x2f => Code::Mul64Reg,
        0x37 if insn.off == 0 => Code::Div64Imm,
        0x3f if insn.off == 0 => Code::Div64Reg,
        0x47 => Code::Or64Imm,
        0x4f => Code::Or64Reg,
        0x57 => Code::And64Imm,
        0x5f => Code::And64Reg,
        0x67 => Code::Lsh64Imm,
        0x6f => Code::Lsh64Reg,
        0x77 => Code::Rsh64Imm,
        0x7f => Code::Rsh64Reg,
        0x97 if insn.off == 0 => Code::Mod64Imm,
        0x9f if insn.off == 0 => Code::Mod64Reg,
        0xa7 => Code::Xor64Imm,
        0xaf => Code::Xor64Reg,
        0xb7 => Code::Mov64Imm,
        0xbf if insn.off == 0 => Code::Mov64Reg,
        0xc7 => Code::Arsh64Imm,
        0xcf => Code::Arsh64Reg,
        0x04 => Code::Add32Imm,
        0x0c => Code::Add32Reg,
        0x14 => Code::Sub32Imm,
        0x1c => Code::Sub32Reg,
        0x24 => Code::Mul32Imm,
        0x2c => Code::Mul32Reg,
        0x34 if insn.off == 0 => Code::Div32Imm,
        0x3c if insn.off == 0 => Code::Div32Reg,
        0x44 => Code::Or32Imm,
        0x4c => Code::Or32Reg,
        0x54 => Code::And32Imm,
        0x5c => Code::And32Reg,
        0x64 => Code::Lsh32Imm,
        0x6c => Code::Lsh32Reg,
        0x74 => Code::Rsh32Imm,
        0x7c => Code::Rsh32Reg,
        0x94 if insn.off == 0 => Code::Mod32Imm,
        0x9c if insn.off == 0 => Code::Mod32Reg,
        0xa4 => Code::Xor32Imm,
        0xac => Code::Xor32Reg,
        0xb4 => Code::Mov32Imm,
        0xbc if insn.off == 0 => Code::Mov32Reg,
        0xc4 => Code::Arsh32Imm,
        0xcc => Code::Arsh32Reg,
        0x05 => Code::Ja,
        0x15 => Code::JeqImm,
        0x1d => Code::JeqReg,
        0x25 => Code::JgtImm,
        0x2d => Code::JgtReg,
        0x35 => Code::JgeImm,
        0x3d => Code::JgeReg,
        0x45 => Code::JsetImm,
        0x4d => Code::JsetReg,
        0x55 => Code::JneImm,
        0x5d => Code::JneReg,
        0x65 => Code::JsgtImm,
        0x6d => Code::JsgtReg,
        0x75 => Code::JsgeImm,
        0x7d => Code::JsgeReg,
        0xa5 => Code::JltImm,
        0xad => Code::JltReg,
        0xb5 => Code::JleImm,
        0xbd => Code::JleReg,
        0xc5 => Code::JsltImm,
        0xcd => Code::JsltReg,
        0xd5 => Code::JsleImm,
        0xdd => Code::JsleReg,
        0x95 => Code::Exit,
        0x16 => Code::Jeq32Imm,
        0x1e => Code::Jeq32Reg,
        0x26 => Code::Jgt32Imm,
        0x2e => Code::Jgt32Reg,
        0x36 => Code::Jge32Imm,
        0x3e => Code::Jge32Reg,
        0x46 => Code::Jset32Imm,
        0x4e => Code::Jset32Reg,
        0x56 => Code::Jne32Imm,
        0x5e => Code::Jne32Reg,
        0x66 => Code::Jsgt32Imm,
        0x6e => Code::Jsgt32Reg,
        0x76 => Code::Jsge32Imm,
        0x7e => Code::Jsge32Reg,
        0xa6 => Code::Jlt32Imm,
        0xae => Code::Jlt32Reg,
        0xb6 => Code::Jle32Imm,
        0xbe => Code::Jle32Reg,
        0xc6 => Code::Jslt32Imm,
        0xce => Code::Jslt32Reg,
        0xd6 => Code::Jsle32Imm,
        0xde => Code::Jsle32Reg,
        0x61 => Code::LdxW,
        0x69 => Code::LdxH,
        0x71 => Code::LdxB,
        0x79 => Code::LdxDw,
        0x62 => Code::StW,
        0x6a => Code::StH,
        0x72 => Code::StB,
        0x7a => Code::StDw,
        0x63 => Code::StxW,
        0x6b => Code::StxH,
        0x73 => Code::StxB,
        0x7b => Code::StxDw,
        OP_LDDW => Code::Lddw,
        _ => Code::General,
    }
}

/// One instruction slot as the fast loop reads it: 16 bytes, fields ready to use.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub(super) struct Op {
    pub(super) code: Code,
    pub(super) dst: u8,
    pub(super) src: u8,
    /// Bit 0 (`ENDS`): the instruction may transfer control (jumps, calls, exit, legacy packet
    /// loads, which can end the program): it ends a segment. Bit 1 (`DIRECT`): its load or store
    /// (for a fused op, that of its third slot) was proved in bounds by the verifier and runs
    /// without a check.
    pub(super) ends_segment: u8,
    pub(super) imm: i32,
    pub(super) off: i32,
    /// Instructions executed from this slot through the end of its segment (0 for an `lddw`
    /// second slot).
    pub(super) run: u32,
}

pub(super) const ENDS: u8 = 1;
pub(super) const DIRECT: u8 = 2;

/// The second source register of a fused op (see `fuse`).
#[inline(always)]
pub(super) fn t_of(op: &Op) -> usize {
    let t = (op.imm & 0xff) as usize;
    // SAFETY: `fuse` stores a register number of a validated instruction (at most r10), and runs
    // only when `prepare` checked them all.
    unsafe { std::hint::assert_unchecked(t < 11) };
    t
}

/// The register a fused op loads into or stores from (see `fuse`).
#[inline(always)]
pub(super) fn x_of(op: &Op) -> usize {
    let x = ((op.imm >> 8) & 0xff) as usize;
    // SAFETY: as for `t_of`.
    unsafe { std::hint::assert_unchecked(x < 11) };
    x
}

/// Instructions prepared for repeated runs (see `prepare`).
#[derive(Clone, Debug, Default)]
pub struct Prepared {
    pub(super) insns: Vec<Insn>,
    pub(super) ops: Vec<Op>,
    /// The threaded form of `ops` (empty unless `fast`), which the fast loop runs first.
    pub(super) slots: Vec<Slot>,
    /// Whether the fast loop may run these instructions: every jump target and fall-through lands
    /// on an executable slot inside the program, and registers are in range. Otherwise only the
    /// reference loop runs them.
    pub(super) fast: bool,
}

/// Precomputes what the fast loop needs: per-slot ops (fused where `fuse` finds an idiom) and
/// segment lengths, for slots no analysis has seen (tests, and the JIT's fallback): a pass of its
/// own finds the `lddw` second halves and checks that every jump lands (see `prepare_proved`).
/// Cheap (one pass each way); a `Program` prepares from its analysis instead (`prepare_analysed`).
pub fn prepare(insns: &[Insn]) -> Prepared {
    prepare_proved(insns, None)
}

/// As `prepare`, with the loads and stores `proved` marks (by slot, `VerifierReport::proved`)
/// run in the fast loop without a check.
pub fn prepare_proved(insns: &[Insn], proved: Option<&[bool]>) -> Prepared {
    let len = insns.len();
    let mut second = vec![false; len];
    let mut pc = 0;
    while pc < len {
        if insns[pc].opcode == OP_LDDW && pc + 1 < len {
            second[pc + 1] = true;
            pc += 2;
        } else {
            pc += 1;
        }
    }
    let fast = len > 0 && len < u32::MAX as usize && every_jump_lands(insns, &second);
    build(insns, &second, fast, proved)
}

/// As `prepare_proved`, for a validated program: its analysis gives the `lddw` second halves,
/// and validation has checked every register and that every jump and fall-through lands on an
/// instruction, so the fast loop may run it.
pub fn prepare_analysed(insns: &[Insn], analysis: &Analysis, proved: Option<&[bool]>) -> Prepared {
    let program = &analysis.program;
    let mut second = vec![false; insns.len()];
    for i in 0..program.len() {
        if program.get(i).is_lddw() {
            second[program.slot(i) + 1] = true;
        }
    }
    let fast = !insns.is_empty() && insns.len() < u32::MAX as usize;
    build(insns, &second, fast, proved)
}

/// Whether the fast loop's unchecked indexing is sound for `insns`: registers in range, and every
/// successor of every instruction inside the program and not an `lddw` second half.
fn every_jump_lands(insns: &[Insn], second: &[bool]) -> bool {
    let len = insns.len();
    // A slot where control may arrive: inside the program and not an lddw second slot.
    let lands = |t: i64| t >= 0 && (t as usize) < len && !second[t as usize];
    (0..len).filter(|&pc| !second[pc]).all(|pc| {
        let insn = &insns[pc];
        let op = insn.opcode;
        let cls = class(op);
        let is_jump = cls == CLASS_JMP || cls == CLASS_JMP32;
        let step = if op == OP_LDDW { 2 } else { 1 };
        if insn.dst > 10 || insn.src > 10 || (op == OP_LDDW && pc + 1 >= len) {
            return false;
        }
        if is_jump && op != OP_EXIT && op != OP_CALLX && !(op == OP_CALL && insn.src != 1) {
            let delta = if op == OP_JA32 || op == OP_CALL {
                insn.imm as i64
            } else {
                insn.off as i64
            };
            if !lands(jump_target(pc, delta)) {
                return false;
            }
        }
        let falls_through = op != OP_EXIT && op != OP_JA && op != OP_JA32;
        !falls_through || lands((pc + step) as i64)
    })
}

/// The prepared form of `insns` whose `lddw` second halves are `second`; `fast`: the fast loop
/// may run them.
fn build(insns: &[Insn], second: &[bool], fast: bool, proved: Option<&[bool]>) -> Prepared {
    let len = insns.len();
    let direct = |pc: usize| proved.and_then(|p| p.get(pc)).copied().unwrap_or(false);
    let mut ops = vec![Op::default(); len];
    for pc in (0..len).rev() {
        let insn = &insns[pc];
        if second[pc] {
            // Never executed; the lddw before it reads the high half of its immediate here.
            ops[pc].imm = insn.imm;
            continue;
        }
        let op = insn.opcode;
        let cls = class(op);
        let is_jump = cls == CLASS_JMP || cls == CLASS_JMP32;
        let is_packet_load = cls == CLASS_LD && op != OP_LDDW;
        let ends = is_jump || is_packet_load;
        let step = if op == OP_LDDW { 2 } else { 1 };
        let run = if ends || pc + step >= len {
            1
        } else {
            1 + ops[pc + step].run
        };
        ops[pc] = Op {
            code: code_of(insn),
            dst: insn.dst & 0x0f,
            src: insn.src & 0x0f,
            ends_segment: ends as u8 | if direct(pc) { DIRECT } else { 0 },
            imm: insn.imm,
            off: insn.off as i32,
            run,
        };
    }
    if fast {
        fuse(insns, second, &mut ops);
        for (pc, op) in ops.iter_mut().enumerate() {
            if op.code.is_mov_add_access() {
                // The access is the third slot's.
                op.ends_segment =
                    (op.ends_segment & !DIRECT) | if direct(pc + 2) { DIRECT } else { 0 };
            }
        }
    }
    let slots = if fast {
        threaded::build(insns, &ops)
    } else {
        Vec::new()
    };
    Prepared {
        insns: insns.to_vec(),
        ops,
        slots,
        fast,
    }
}

/// Replaces the op of a slot that starts `rD = rS; rD += rT` (64-bit, registers), optionally
/// followed by a load or store whose base is rD, with one op that does all of it. The later slots
/// keep their own ops, so a jump into the middle still works; none of these instructions ends a
/// segment, so counting is unchanged, and a trap in the memory access names its own slot.
/// The fused op keeps rD/rS in `dst`/`src`, rT in bits 0-7 of `imm` and the register loaded or
/// stored in bits 8-15, and the access's offset in `off`.
pub(super) fn fuse(insns: &[Insn], second: &[bool], ops: &mut [Op]) {
    const MOV64_REG: u8 = CLASS_ALU64 | ALU_MOV | SRC_X;
    const ADD64_REG: u8 = CLASS_ALU64 | ALU_ADD | SRC_X;
    let len = insns.len();
    for pc in 0..len.saturating_sub(1) {
        let (a, b) = (&insns[pc], &insns[pc + 1]);
        if second[pc]
            || second[pc + 1]
            || a.opcode != MOV64_REG
            || a.off != 0
            || b.opcode != ADD64_REG
            || b.dst != a.dst
        {
            continue;
        }
        let d = a.dst;
        let mut code = Code::MovAdd;
        let mut other = 0u8;
        let mut off = 0i32;
        if pc + 2 < len && !second[pc + 2] {
            let c = &insns[pc + 2];
            let access = match c.opcode {
                0x61 if c.src == d => Some((Code::MovAddLdxW, c.dst)),
                0x69 if c.src == d => Some((Code::MovAddLdxH, c.dst)),
                0x71 if c.src == d => Some((Code::MovAddLdxB, c.dst)),
                0x79 if c.src == d => Some((Code::MovAddLdxDw, c.dst)),
                0x63 if c.dst == d => Some((Code::MovAddStxW, c.src)),
                0x6b if c.dst == d => Some((Code::MovAddStxH, c.src)),
                0x73 if c.dst == d => Some((Code::MovAddStxB, c.src)),
                0x7b if c.dst == d => Some((Code::MovAddStxDw, c.src)),
                _ => None,
            };
            if let Some((c_code, reg)) = access {
                code = c_code;
                other = reg;
                off = c.off as i32;
            }
        }
        let op = &mut ops[pc];
        op.code = code;
        op.imm = (b.src as i32) | ((other as i32) << 8);
        op.off = off;
    }
}

impl Prepared {
    pub fn instructions(&self) -> &[Insn] {
        &self.insns
    }
}
