//! Loops whose memory accesses can be checked once, before the loop, rather than on every
//! iteration: a chain (see `compile::chains`) that ends in `if i < n goto head`, and accesses in
//! it at `t + off` where `t = b + i` was computed in the same iteration from the values that `b`
//! and `i` had at the head.
//!
//! Why a single check at the head covers every iteration: the back jump is taken only when
//! `i < n` (unsigned), and nothing writes `i` between that jump and the head, so at the head `i`
//! is either its value on entry `i0` or below `n`; that is, below `m = max(i0 + 1, n)`. `b` and
//! `n` are never written in the chain, and no helper runs in it (so the regions stay as they
//! are). If `[b + off, b + off + m - 1 + size)` lies in the data region, so does every access of
//! every iteration. For the 32-bit compare (`if w_i < w_n`) the same holds with `n` zero-extended
//! from 32 bits, provided the last write to `i` in the chain is a 32-bit ALU operation (which
//! clears the upper half); before any write, `i` is `i0`.
//!
//! The loop may also end in `if i != n goto head` (64-bit) when the only write to `i` in the
//! chain is `i += 1`: if `i0 < n` (which the head check requires), the head sees `i0, i0 + 1, ...`
//! and the back jump is taken only while `i + 1 != n`, so every head value is below `n` (`m = n`).
//!
//! Clang often rotates such a loop to end in `if i == n goto out; goto head` (or `if i >= n`),
//! where `out` is the instruction after the `goto`: the back jump is then the `goto`, taken
//! exactly when the compare is not, so it is the loop above with its compare inverted (`==` for
//! `!=`, `>=` for `<`) and the same argument holds (`FastLoop::rotated`).

use crate::isa::opcodes::*;
use crate::isa::{jump_target, Insn};

/// The bound `n` of the loop's compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    Reg(u8),
    /// The compare's immediate, as the compare sees it (sign-extended for 64 bits).
    Imm(i32),
}

/// One access covered by the check at the head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    pub pc: usize,
    /// The loop-invariant base (`t = b + i`).
    pub b: u8,
    pub off: i16,
    pub size: u32,
    pub write: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FastLoop {
    /// The induction register compared at the end of the chain.
    pub i: u8,
    pub limit: Limit,
    /// 64-bit compare (`JMP`) or 32-bit (`JMP32`).
    pub wide: bool,
    /// `if i != n` with `i += 1` the only write to `i` (rather than `if i < n`).
    pub counts_up: bool,
    /// The chain ends in `if i == n goto out; goto head` (or `>=`): the compare, one before the
    /// last instruction, leaves the loop, and the last (a `ja`) goes back.
    pub rotated: bool,
    /// Where the compare is.
    pub cmp: usize,
    pub accesses: Vec<Access>,
    /// The loop is a byte fill (see `Fill`).
    pub fill: Option<Fill>,
}

/// A counted loop that only fills bytes: `t = b; t += i; *(u8 *)(t + off) = v; i += 1;` then the
/// compare (64-bit), with `v` neither `t` nor `i` (so the same byte every iteration). From `i0`
/// it runs `k = m - i0` iterations (`m` as above: `n` when counting up to it, else
/// `max(i0 + 1, n)`), stores `v` at `b + off + i0 .. b + off + m` and leaves `i = m` and
/// `t = b + m - 1`: what one `rep stosb` and three moves do, once the head check has shown
/// the bytes are in the data region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fill {
    pub t: u8,
    pub b: u8,
    pub i: u8,
    pub off: i16,
    pub value: FillValue,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FillValue {
    Reg(u8),
    /// The low byte of the store's immediate.
    Imm(u8),
}

/// The fill form of the loop `fl` (chain of `n` at `head`), if it is one (see `Fill`).
fn fill(insns: &[Insn], head: usize, n: u32, fl: &FastLoop) -> Option<Fill> {
    if !fl.wide || n != 5 + fl.rotated as u32 || fl.cmp != head + 4 {
        return None;
    }
    let (mv, add, st, inc) = (
        &insns[head],
        &insns[head + 1],
        &insns[head + 2],
        &insns[head + 3],
    );
    let t = mv.dst;
    let acc = fl.accesses.iter().find(|a| a.pc == head + 2)?;
    let value = match st.opcode {
        op if op == CLASS_STX | MODE_MEM | SIZE_B => FillValue::Reg(st.src),
        op if op == CLASS_ST | MODE_MEM | SIZE_B => FillValue::Imm(st.imm as u8),
        _ => return None,
    };
    let ok = mv.opcode == CLASS_ALU64 | ALU_MOV | SRC_X
        && add.opcode == CLASS_ALU64 | ALU_ADD | SRC_X
        && add.dst == t
        && st.dst == t
        && *inc == Insn::new(CLASS_ALU64 | ALU_ADD, fl.i, 0, 0, 1)
        && !matches!(value, FillValue::Reg(v) if v == t || v == fl.i);
    ok.then_some(Fill {
        t,
        b: acc.b,
        i: fl.i,
        off: st.off,
        value,
    })
}

/// Most accesses one head check covers (bounds the check's code size).
pub const MAX_ACCESSES: usize = 4;
/// Instructions after `t = b + i` searched for accesses through `t`.
const ACCESS_WINDOW: usize = 64;

/// What an instruction does to registers, for this analysis.
enum Effect {
    None,
    Writes(u8),
    /// Calls out, exits, touches the packet or is atomic: the loop is not analysed.
    Opaque,
}

fn effect(insn: &Insn) -> Effect {
    let op = insn.opcode;
    match class(op) {
        CLASS_ALU | CLASS_ALU64 | CLASS_LDX => Effect::Writes(insn.dst),
        CLASS_LD if op == OP_LDDW => Effect::Writes(insn.dst),
        CLASS_LD => Effect::Opaque,
        CLASS_ST => Effect::None,
        CLASS_STX if op & 0xe0 == MODE_ATOMIC => Effect::Opaque,
        CLASS_STX => Effect::None,
        _ => match op & 0xf0 {
            JMP_CALL | JMP_EXIT => Effect::Opaque,
            _ => Effect::None,
        },
    }
}

pub(super) fn writes(insn: &Insn, r: u8) -> bool {
    matches!(effect(insn), Effect::Writes(w) if w == r)
}

/// Whether an instruction calls out (so the regions may change), exits or is atomic. (`group`'s
/// scan asks its table, `SCAN`; a test holds the two equal.)
#[cfg(test)]
pub(super) fn opaque(insn: &Insn) -> bool {
    matches!(effect(insn), Effect::Opaque)
}

/// The chain of `n` instructions starting at `head`, if it is such a loop with accesses to cover.
pub fn fast_loop(insns: &[Insn], head: usize, n: u32) -> Option<FastLoop> {
    let mut pcs = Vec::with_capacity(n as usize);
    let mut pc = head;
    for _ in 0..n {
        pcs.push(pc);
        pc += if insns[pc].opcode == OP_LDDW { 2 } else { 1 };
    }
    let &last = pcs.last()?;
    // The rotated form: the compare before a last `ja` to the head leaves to just after it.
    let rotated = pcs.len() >= 2
        && insns[last].opcode == OP_JA
        && jump_target(last, insns[last].off as i64) == head as i64;
    let cmp = if rotated { pcs[pcs.len() - 2] } else { last };
    let l = &insns[cmp];
    let wide = match class(l.opcode) {
        CLASS_JMP => true,
        CLASS_JMP32 => false,
        _ => return None,
    };
    // How the back jump is taken, as a compare of `i` with `n`: `<` or `!=`.
    let counts_up = match (l.opcode & 0xf0, rotated) {
        (JMP_JLT, false) | (JMP_JGE, true) => false,
        (JMP_JNE, false) | (JMP_JEQ, true) if wide => true,
        _ => return None,
    };
    let to = if rotated { last + 1 } else { head };
    if jump_target(cmp, l.off as i64) != to as i64 {
        return None;
    }
    let i = l.dst;
    let limit = if l.opcode & SRC_X != 0 {
        Limit::Reg(l.src)
    } else {
        Limit::Imm(l.imm)
    };
    let body = &pcs[..pcs.len() - 1 - rotated as usize];
    if counts_up {
        let steps: Vec<&Insn> = body
            .iter()
            .map(|&p| &insns[p])
            .filter(|insn| writes(insn, l.dst))
            .collect();
        let inc = Insn::new(CLASS_ALU64 | ALU_ADD, l.dst, 0, 0, 1);
        if steps.len() != 1 || *steps[0] != inc {
            return None;
        }
    }
    let mut last_write_to_i = None;
    for &p in body {
        match effect(&insns[p]) {
            Effect::Opaque => return None,
            Effect::Writes(w) => {
                if Limit::Reg(w) == limit {
                    return None;
                }
                if w == i {
                    last_write_to_i = Some(p);
                }
            }
            Effect::None => {}
        }
    }
    if !wide {
        if let Some(p) = last_write_to_i {
            let op = insns[p].opcode;
            if class(op) != CLASS_ALU || op & 0xf0 == ALU_END {
                return None;
            }
        }
    }
    // Per register: whether the body writes it, and the first body index that writes it (so that
    // each candidate below is tested in constant time: the analysis stays linear in the chain).
    let mut written = [false; 16];
    let mut first_write_of_i = body.len();
    for (k, &p) in body.iter().enumerate() {
        if let Effect::Writes(w) = effect(&insns[p]) {
            written[(w & 0x0f) as usize] = true;
            if w == i && first_write_of_i == body.len() {
                first_write_of_i = k;
            }
        }
    }
    let mut accesses = Vec::new();
    for k in 0..body.len().saturating_sub(1) {
        if accesses.len() == MAX_ACCESSES {
            break;
        }
        let (mv, add) = (&insns[body[k]], &insns[body[k + 1]]);
        if mv.opcode != CLASS_ALU64 | ALU_MOV | SRC_X
            || mv.off != 0
            || add.opcode != CLASS_ALU64 | ALU_ADD | SRC_X
            || add.dst != mv.dst
        {
            continue;
        }
        let t = mv.dst;
        let b = match (mv.src, add.src) {
            (x, y) if x == i && y != i => y,
            (x, y) if y == i && x != i => x,
            _ => continue,
        };
        if t == i || t == b || b == 10 {
            continue;
        }
        // `b` is invariant; `i` still holds its value from the head when the add reads it.
        if written[(b & 0x0f) as usize] || first_write_of_i <= k + 1 {
            continue;
        }
        // Accesses through `t` are looked for in a window after the add (bounded, so that many
        // such adds in one long chain cost linear time).
        let end = body.len().min(k + 2 + ACCESS_WINDOW);
        for &p in &body[k + 2..end] {
            let insn = &insns[p];
            let op = insn.opcode;
            let base = match class(op) {
                CLASS_LDX if op & 0xe0 == MODE_MEM || op & 0xe0 == MODE_MEMSX => Some(insn.src),
                CLASS_ST | CLASS_STX if op & 0xe0 == MODE_MEM => Some(insn.dst),
                _ => None,
            };
            if base == Some(t) && accesses.len() < MAX_ACCESSES {
                accesses.push(Access {
                    pc: p,
                    b,
                    off: insn.off,
                    size: access_size(op),
                    write: class(op) != CLASS_LDX,
                });
            }
            if writes(insn, t) {
                break;
            }
        }
    }
    if accesses.is_empty() {
        return None;
    }
    let mut fl = FastLoop {
        i,
        limit,
        wide,
        counts_up,
        rotated,
        cmp,
        accesses,
        fill: None,
    };
    fl.fill = fill(insns, head, n, &fl);
    Some(fl)
}
