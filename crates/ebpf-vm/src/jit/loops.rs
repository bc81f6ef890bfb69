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
//!
//! Clang also writes `for (; i + 8 <= len; i += 8)` as a compare of a temporary, with the next
//! index made in a second register first (memcopy's loops):
//!
//! ```text
//! head: t = b; t += i; ... accesses through t ...; j += 8; c = i; c += 16; i = j;
//!       if c > n goto out; goto head
//! ```
//!
//! That is the *stride* form (`Stride`): the compare reads `c = i + k` (the last two writes to
//! `c`, made from `i`'s head value; or `c = i` alone, `k = 0`, and then `c` may index accesses as
//! `i` does), the back jump is taken while `c <= n` (or `c < n`), and `i` steps by `s > 0` an
//! iteration, either by its only write `i += s` or through a *twin* `j` whose only write is `j
//! += s`, before `i`'s only write `i = j`. With `j == i` at the head (checked there, at run
//! time), the next head sees `i = j = h + s` again, `h` being the head value before. The back
//! jump after head value `h` is taken only when `h + k <= n` (or `< n`), `k` and `s` below 2^20
//! in magnitude. The check bounds every head value by the data region's length (below 2^47), so
//! for `k >= 0` the sum does not wrap and the next head value is at most `n - k + s` (one less
//! for `<`); for `k < 0` a sum that wraps leaves `h < -k`, and the next value below `-k + s`, no
//! more than that bound. So `m = max(i0 + 1, n - d)` with `d = k - s - 1` (`k - s` for
//! `<`), the check failing where `n - d` wraps.

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
    /// The compare reads `c = i + k` rather than `i` (see the module's notes).
    pub stride: Option<Stride>,
}

/// How a stride loop's compare and index move (see the module's notes): the compare reads
/// `i + k`, and `i` steps by `step`, through `twin` when there is one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stride {
    pub k: i32,
    pub step: i32,
    /// The back jump is taken while `c <= n` (rather than `c < n`).
    pub inclusive: bool,
    /// `j` (`j += step; i = j`), equal to `i` at the head.
    pub twin: Option<u8>,
}

impl Stride {
    /// Every head value after the first is below `n - d` (see the module's notes).
    pub fn d(&self) -> i64 {
        self.k as i64 - self.step as i64 - self.inclusive as i64
    }
}

/// Bound on `|k|` and `step` of a stride loop (see the module's notes).
const MAX_STRIDE: u32 = 1 << 20;

/// The stride form of a loop whose compare reads `c` (`body`: the chain before its compare), as
/// the index register, its `Stride`, and, when `k` is 0, where `c` took `i`'s head value (`c`
/// may then index accesses after that, as `i` does).
fn stride(
    insns: &[Insn],
    body: &[usize],
    c: u8,
    limit: Limit,
    inclusive: bool,
) -> Option<(u8, Stride, Option<usize>)> {
    let writes_of = |r: u8| -> Vec<usize> {
        (0..body.len())
            .filter(|&k| writes(&insns[body[k]], r))
            .collect()
    };
    let add_imm = |insn: &Insn| {
        insn.opcode == CLASS_ALU64 | ALU_ADD | SRC_K && insn.imm.unsigned_abs() < MAX_STRIDE
    };
    let copy = |insn: &Insn| insn.opcode == CLASS_ALU64 | ALU_MOV | SRC_X && insn.off == 0;
    let free = |r: u8| r != c && r != 10 && Limit::Reg(r) != limit;
    // `c = i; c += k` or `c = i` (k = 0): the last writes to `c`.
    let cs = writes_of(c);
    let (at, k) = match cs[..] {
        [.., at, add_at] if add_at == at + 1 && add_imm(&insns[body[add_at]]) => {
            (at, insns[body[add_at]].imm)
        }
        [.., at] => (at, 0),
        [] => return None,
    };
    let mv = &insns[body[at]];
    let i = mv.src;
    if !copy(mv) || !free(i) {
        return None;
    }
    // `i`'s only write comes after `c` read its head value.
    let &[step_at] = &writes_of(i)[..] else {
        return None;
    };
    if step_at < at {
        return None;
    }
    let step = &insns[body[step_at]];
    let (twin, s) = if add_imm(step) {
        (None, step.imm)
    } else if copy(step) {
        let j = step.src;
        let &[j_at] = &writes_of(j)[..] else {
            return None;
        };
        let add_j = &insns[body[j_at]];
        if j == i || !free(j) || j_at > step_at || !add_imm(add_j) {
            return None;
        }
        (Some(j), add_j.imm)
    } else {
        return None;
    };
    let stride = Stride {
        k,
        step: s,
        inclusive,
        twin,
    };
    (s > 0).then_some((i, stride, (k == 0).then_some(at)))
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
    // How the back jump is taken, as a compare of `i` (or, in the stride form, of `i + k`) with
    // `n`: `<`, `<=` or `!=`.
    let (counts_up, inclusive) = match (l.opcode & 0xf0, rotated) {
        (JMP_JLT, false) | (JMP_JGE, true) => (false, false),
        (JMP_JLE, false) | (JMP_JGT, true) if wide => (false, true),
        (JMP_JNE, false) | (JMP_JEQ, true) if wide => (true, false),
        _ => return None,
    };
    let to = if rotated { last + 1 } else { head };
    if jump_target(cmp, l.off as i64) != to as i64 {
        return None;
    }
    let limit = if l.opcode & SRC_X != 0 {
        Limit::Reg(l.src)
    } else {
        Limit::Imm(l.imm)
    };
    let body = &pcs[..pcs.len() - 1 - rotated as usize];
    // The plain form first; a `<` loop whose compared register indexes nothing may be a stride
    // loop, as every `<=` loop must be.
    let plain = (!inclusive)
        .then(|| with_index(insns, body, l.dst, None, limit, wide, counts_up))
        .flatten();
    let (i, accesses, stride) = match plain {
        Some(accesses) => (l.dst, accesses, None),
        None if wide && !counts_up => {
            let (i, s, copy_at) = stride(insns, body, l.dst, limit, inclusive)?;
            let alias = copy_at.map(|at| (l.dst, at));
            let accesses = with_index(insns, body, i, alias, limit, wide, false)?;
            (i, accesses, Some(s))
        }
        None => return None,
    };
    let mut fl = FastLoop {
        i,
        limit,
        wide,
        counts_up,
        rotated,
        cmp,
        accesses,
        fill: None,
        stride,
    };
    if stride.is_none() {
        fl.fill = fill(insns, head, n, &fl);
    }
    Some(fl)
}

/// The accesses a head check covers in a loop (`body`: its chain before the compare) indexed by
/// `i`, if the loop is one for that index (the conditions of the module's notes but those on the
/// compare). `alias`: a register and the body index of its last write, a copy of `i`'s head
/// value, which indexes accesses after it as `i` does.
fn with_index(
    insns: &[Insn],
    body: &[usize],
    i: u8,
    alias: Option<(u8, usize)>,
    limit: Limit,
    wide: bool,
    counts_up: bool,
) -> Option<Vec<Access>> {
    if counts_up {
        let steps: Vec<&Insn> = body
            .iter()
            .map(|&p| &insns[p])
            .filter(|insn| writes(insn, i))
            .collect();
        let inc = Insn::new(CLASS_ALU64 | ALU_ADD, i, 0, 0, 1);
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
        // Whether `r` holds `i`'s head value when body index `at` reads it.
        let index = |r: u8, at: usize| {
            (r == i && first_write_of_i > at) || alias.is_some_and(|(a, from)| r == a && at > from)
        };
        let b = match (mv.src, add.src) {
            (x, y) if index(x, k) => y,
            (x, y) if index(y, k + 1) => x,
            _ => continue,
        };
        // `b` is invariant (so neither `i` nor its alias, both written in the body).
        if t == i || t == b || b == i || b == 10 || written[(b & 0x0f) as usize] {
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
    (!accesses.is_empty()).then_some(accesses)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mov(dst: u8, src: u8) -> Insn {
        Insn::new(CLASS_ALU64 | ALU_MOV | SRC_X, dst, src, 0, 0)
    }
    fn add(dst: u8, src: u8) -> Insn {
        Insn::new(CLASS_ALU64 | ALU_ADD | SRC_X, dst, src, 0, 0)
    }
    fn addi(dst: u8, imm: i32) -> Insn {
        Insn::new(CLASS_ALU64 | ALU_ADD, dst, 0, 0, imm)
    }
    fn ldxdw(dst: u8, src: u8, off: i16) -> Insn {
        Insn::new(CLASS_LDX | MODE_MEM | SIZE_DW, dst, src, off, 0)
    }
    fn stxdw(dst: u8, src: u8, off: i16) -> Insn {
        Insn::new(CLASS_STX | MODE_MEM | SIZE_DW, dst, src, off, 0)
    }
    fn access(pc: usize, b: u8, off: i16, write: bool) -> Access {
        Access {
            pc,
            b,
            off,
            size: 8,
            write,
        }
    }

    /// memcopy.c's copy loop as clang-19 emits it (bench/programs/bpf/memcopy.o, pcs 12-23 at
    /// 0-11 here): `i` = r6, its twin r4, `c = i + 16` in r7, `n` = r2.
    fn memcopy_copy_loop() -> Vec<Insn> {
        vec![
            mov(7, 3),
            add(7, 6),
            mov(8, 0),
            add(8, 6),
            ldxdw(8, 8, 0),
            stxdw(7, 8, 0),
            addi(4, 8),
            mov(7, 6),
            addi(7, 16),
            mov(6, 4),
            Insn::new(CLASS_JMP | JMP_JGT | SRC_X, 7, 2, 1, 0),
            Insn::new(OP_JA, 0, 0, -12, 0),
        ]
    }

    #[test]
    fn a_compare_of_the_index_plus_a_constant_with_a_twin_is_a_stride_loop() {
        let fl = fast_loop(&memcopy_copy_loop(), 0, 12).expect("a fast loop");
        assert_eq!(
            (fl.i, fl.limit, fl.rotated, fl.cmp),
            (6, Limit::Reg(2), true, 10)
        );
        let s = Stride {
            k: 16,
            step: 8,
            inclusive: true,
            twin: Some(4),
        };
        assert_eq!(fl.stride, Some(s));
        // Head values after the first at most n - 16 + 8: below n - 7.
        assert_eq!(s.d(), 7);
        assert_eq!(fl.accesses, [access(5, 3, 0, true), access(4, 0, 0, false)]);
    }

    #[test]
    fn a_compare_of_a_copy_of_the_index_and_one_of_the_index_less_a_constant_are_stride_loops() {
        // memcopy_fixed.o's two word loops (pcs 1-7 and 24-34): the first compares `c = i`
        // (r3 = r2) and indexes by c; the second compares `i - 8264` with a twin.
        let copy = [
            mov(3, 2),
            mov(4, 1),
            add(4, 3),
            ldxdw(5, 4, 0x40),
            stxdw(4, 5, 0x2048),
            addi(2, 8),
            Insn::new(CLASS_JMP | JMP_JLT, 3, 0, -7, 0x1ff6),
        ];
        let fl = fast_loop(&copy, 0, 7).expect("a fast loop");
        assert_eq!((fl.i, fl.limit, fl.rotated), (2, Limit::Imm(0x1ff6), false));
        let s = Stride {
            k: 0,
            step: 8,
            inclusive: false,
            twin: None,
        };
        assert_eq!((fl.stride, s.d()), (Some(s), -8));
        assert_eq!(
            fl.accesses,
            [access(3, 1, 0x40, false), access(4, 1, 0x2048, true)]
        );
        let mut hash = vec![mov(0, 1), add(0, 3), ldxdw(0, 0, 0)];
        hash.extend([
            Insn::new(CLASS_ALU64 | ALU_XOR | SRC_X, 0, 5, 0, 0),
            Insn::new(CLASS_ALU64 | ALU_MUL | SRC_X, 0, 2, 0, 0),
            addi(4, 8),
            mov(6, 3),
            addi(6, -0x2048),
            mov(3, 4),
            mov(5, 0),
            Insn::new(CLASS_JMP | JMP_JLT, 6, 0, -11, 0x1ff6),
        ]);
        let fl = fast_loop(&hash, 0, 11).expect("a fast loop");
        let s = Stride {
            k: -0x2048,
            step: 8,
            inclusive: false,
            twin: Some(4),
        };
        assert_eq!((fl.i, fl.stride, s.d()), (3, Some(s), -0x2050));
        assert_eq!(fl.accesses, [access(2, 1, 0, false)]);
    }

    #[test]
    fn stride_loops_whose_index_may_move_otherwise_are_not_taken() {
        let base = memcopy_copy_loop();
        let not_taken = |edit: &dyn Fn(&mut Vec<Insn>)| {
            let mut p = base.clone();
            edit(&mut p);
            fast_loop(&p, 0, 12).is_none()
        };
        // The twin stepped twice (a second `r4 += 8` in place of the load's base copy).
        assert!(not_taken(&|p| p[2] = addi(4, 8)));
        // The twin stepped by a register.
        assert!(not_taken(&|p| p[6] = add(4, 5)));
        // The index written before `c` reads it (`r6 = r4` moved before `r7 = r6`).
        assert!(not_taken(&|p| p.swap(7, 9)));
        // `c` made from another register.
        assert!(not_taken(&|p| p[7] = mov(7, 5)));
        // `c = i + k` with k beyond the bound.
        assert!(not_taken(&|p| p[8] = addi(7, 1 << 20)));
        // The limit written in the chain.
        assert!(not_taken(&|p| p[6] = addi(2, 8)));
        // A 32-bit compare.
        assert!(not_taken(&|p| p[10].opcode = CLASS_JMP32 | JMP_JGT | SRC_X));
    }
}
