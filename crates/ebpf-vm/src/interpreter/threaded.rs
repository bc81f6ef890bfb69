//! The threaded form: one `Slot` per instruction slot holding the function that runs it
//! (`Handler`), chosen at load for the opcode, the operand kind and the verifier's proof, with
//! its operands ready (immediates sign-extended, jump targets relative to the slot, the 64-bit
//! value of an `lddw`). Each handler calls the next slot's handler in tail position (see `go`
//! and `FUEL`); `run` starts the chain and returns where it stopped.
//!
//! Why functions rather than the fast loop's `match`: each handler is compiled on its own, so
//! adding one does not move the others around (with one big `match`, every new arm changed the
//! layout, and the cost, of all the rest: BENCHMARKS.md, "Interpreter at 15x native"), and each
//! ends in its own indirect jump, predicted on its own. That makes fused ops cheap to add: an
//! ALU operation and the conditional jump after it, a conditional jump over a `goto` (as clang
//! closes loops), ALU pairs, a load and the ALU operation after it, a load, shift and or, two
//! loads, shifts and an or (a big-endian field), a load, an add or or and the store back (a
//! counter kept on the stack), an ALU operation and a `goto`, a conditional jump over one move,
//! add or subtract (a select, run without a branch). The later slots of a fused op keep their own
//! handlers, for jumps into them.
//!
//! Registers live in `State::reg`, but the value last written also goes on to the next handler
//! as an argument (`Slot::acc`, `arrivals`), so that a dependent instruction does not wait for it
//! to come back from memory; and accesses are checked in one compare against the region their
//! base names first (`State::set_hot`). BENCHMARKS.md, "Interpreter: values handed on in host
//! registers".
//!
//! A handler does only the common case. Whenever it cannot finish an instruction at no risk (an
//! access outside the stack and the data, a segment the budget in hand does not cover, an exit,
//! a call, an instruction without a handler of its own) it stops there having changed nothing,
//! and `run` hands that slot back to the fast loop, which runs it (with every check, trap and
//! count) and calls `run` again. A fused op whose later part cannot finish does its earlier
//! part and goes on at the later part's own slot, which then stops. So the fast loop's arms stay
//! the definition, and a handler is a shortcut that agrees with them where it finishes.

use super::fast::keep_branch;
use super::prepared::{t_of, x_of, Code, Op, DIRECT};
use crate::isa::opcodes::*;
use crate::isa::Insn;
use crate::memory::Region;
use crate::semantics::*;
use std::hint::cold_path;

/// What the handlers work on: the registers, the two regions tried inline (`Regions::hot`) and
/// the budget in hand (instructions left once the current segment has run to its end, as in the
/// fast loop).
pub(super) struct State {
    pub(super) reg: [u64; 16],
    /// Set by `set_hot`.
    pub(super) hot: [Region; 2],
    pub(super) left: u64,
    /// Of each of `hot`, the start and, by access size (1, 2, 4, 8 bytes), the bound below
    /// which `addr - start` keeps a load (`load`) or a store (`store`) inside it: a check in one
    /// compare, against the region the handler expects first (`STACK`, `DATA`). `store` is 0
    /// (nothing fits) for a read-only region, and for the second region where it overlaps the
    /// first (which decides a store there); the full check follows where this one fails.
    start: [u64; 2],
    load: [[u64; 4]; 2],
    store: [[u64; 4]; 2],
}

impl State {
    pub(super) fn new(reg: [u64; 16], left: u64) -> State {
        State {
            reg,
            hot: Default::default(),
            left,
            start: [0; 2],
            load: [[0; 4]; 2],
            store: [[0; 4]; 2],
        }
    }

    /// Sets the two regions tried inline (`Regions::hot`), and the bounds derived from them.
    pub(super) fn set_hot(&mut self, hot: [Region; 2]) {
        let [h0, h1] = &hot;
        let end = |r: &Region| r.start as u128 + r.len as u128;
        let apart = end(h0) <= h1.start as u128 || end(h1) <= h0.start as u128;
        for (k, r) in hot.iter().enumerate() {
            self.start[k] = r.start;
            let stores = r.writable != 0 && (k == 0 || apart);
            for (i, size) in [1u64, 2, 4, 8].into_iter().enumerate() {
                // `fits`: off < len and len - off >= size, that is off < len - size + 1.
                let lim = if r.len >= size { r.len - size + 1 } else { 0 };
                self.load[k][i] = lim;
                self.store[k][i] = if stores { lim } else { 0 };
            }
        }
        self.hot = hot;
    }
}

/// Runs the slot `op` and goes on with the next one (see `go`), or stops at `op` having changed
/// nothing, to leave it to the fast loop; the last argument is the fuel left (see `FUEL`).
/// The last argument is the value of the slot's `acc` register, in a host register (see `acc`).
pub(super) type Handler = fn(&mut State, &Slot, u32, u64) -> Next;

/// One instruction slot of the threaded form (40 bytes).
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub(super) struct Slot {
    handler: Handler,
    /// The immediate, sign-extended (for `lddw`, the 64-bit value).
    imm: u64,
    /// The immediate of the jump of an ALU-and-jump op.
    imm2: i32,
    /// A load's or store's offset; a jump's target relative to this slot, in bytes (`bytes`).
    off: i32,
    /// A conditional jump's fall-through relative to this slot, in bytes (past an unconditional
    /// jump the jump skips, see `extra`).
    off2: i32,
    /// Instructions from this slot through the end of its segment (`Op::run`).
    run: u32,
    /// Registers: destination, source; for fused ops the added register and the register loaded
    /// or stored (see `prepared::fuse`), or the jump's registers.
    d: u8,
    s: u8,
    t: u8,
    x: u8,
    /// Instructions counted on the fall-through besides the segment entered: 1 when a
    /// conditional jump over an unconditional one (`if c goto +1; goto L`) falls through to `L`.
    extra: u8,
    /// The register whose value the handler receives as its last argument (`acc`): the one
    /// the instruction before wrote, where every way into the slot agrees on it (`arrivals`).
    /// Handlers built for it (`ACC`) read that operand from the argument instead of from
    /// `State::reg`, so that a value goes on to the next instruction in a host register instead
    /// of through a store and a reload (about 5 cycles of latency for each dependent step).
    acc: u8,
}

const _: () = assert!(size_of::<Slot>() == 40);

impl Default for Slot {
    fn default() -> Self {
        Slot {
            handler: bail,
            imm: 0,
            imm2: 0,
            off: 0,
            off2: 0,
            run: 0,
            d: 0,
            s: 0,
            t: 0,
            x: 0,
            extra: 0,
            acc: 0,
        }
    }
}

/// Where a chain of handlers stopped: the address of a slot, with bit 0 set when that slot is
/// left to the fast loop (slots are 8-aligned), clear when the chain only ran out of `fuel`.
pub(super) type Next = usize;

/// Handlers a chain runs before it returns to `run`, in unoptimised builds. Each handler calls
/// the next one in tail position, which an optimising compile turns into a jump (one indirect
/// jump per handler, each predicted on its own); without optimisation the calls nest, and the
/// fuel bounds the stack. Optimised builds (`cfg(ebpf_optimized)`, set by `build.rs` from the
/// profile's `opt-level`) count no fuel: the count and its test were 3 of the ~10 instructions
/// of a short handler, and leaving them out made `parse` 6% and `big` 10% faster on Zen 4
/// (BENCHMARKS.md, "Interpreter: tuned for Zen 4"). `__test__/interpreter-stack.test.ts` runs
/// 60 million handlers on the release build, which would overflow the stack were one of them
/// a call.
const FUEL: u32 = 64;

/// Runs handlers from slot `pc` until one leaves its slot to the fast loop; returns that slot.
#[inline(never)]
pub(super) fn run(st: &mut State, slots: &[Slot], pc: usize) -> usize {
    // SAFETY: `pc` is a slot the fast loop was about to run, inside the program.
    let mut op = unsafe { slots.get_unchecked(pc) };
    loop {
        let acc = st.reg[reg(op.acc)];
        let next = (op.handler)(st, op, FUEL, acc);
        // SAFETY: a handler returns the address of a slot of `slots`.
        op = unsafe { &*((next & !1) as *const Slot) };
        if next & 1 != 0 {
            break;
        }
    }
    (op as *const Slot as usize - slots.as_ptr() as usize) / size_of::<Slot>()
}

/// Goes on at `op` with `acc` the value of its `acc` register: runs its handler, or returns it
/// to `run` (which reads `acc` back from `State::reg`) when the fuel is out (unoptimised
/// builds only, see `FUEL`).
#[inline(always)]
fn go(st: &mut State, op: &Slot, fuel: u32, acc: u64) -> Next {
    let counted = !cfg!(ebpf_optimized);
    if counted && fuel == 0 {
        op as *const Slot as usize
    } else {
        (op.handler)(st, op, fuel - counted as u32, acc)
    }
}

/// Leaves `op` to the fast loop.
#[inline(always)]
fn stop(op: &Slot) -> Next {
    op as *const Slot as usize | 1
}

/// `$e` with `$name` a constant equal to `$acc` (0 to 3): the way a run-time `ACC` picks a
/// handler compiled for it.
macro_rules! by_acc {
    ($acc:expr, $name:ident => $e:expr) => {
        match $acc {
            0 => {
                const $name: u8 = 0;
                $e
            }
            1 => {
                const $name: u8 = 1;
                $e
            }
            2 => {
                const $name: u8 = 2;
                $e
            }
            _ => {
                const $name: u8 = 3;
                $e
            }
        }
    };
}

/// Calls `$f::<$pre.., OPCODE>$args` for the opcode `$opcode`, one of the listed ones (`None`
/// for the others): the way a run-time opcode picks a handler compiled for it.
macro_rules! by_opcode {
    ($opcode:expr, $f:ident [] $args:tt, [$($op:literal)*]) => {
        match $opcode {
            $($op => Some($f::<$op> $args),)*
            _ => None,
        }
    };
    ($opcode:expr, $f:ident [$pre:ident] $args:tt, [$($op:literal)*]) => {
        match $opcode {
            $($op => Some($f::<$pre, $op> $args),)*
            _ => None,
        }
    };
    ($opcode:expr, $f:ident [$pre:ident $pre2:ident] $args:tt, [$($op:literal)*]) => {
        match $opcode {
            $($op => Some($f::<$pre, $pre2, $op> $args),)*
            _ => None,
        }
    };
    ($opcode:expr, $f:ident [$pre:ident $pre2:ident $pre3:ident] $args:tt, [$($op:literal)*]) => {
        match $opcode {
            $($op => Some($f::<$pre, $pre2, $pre3, $op> $args),)*
            _ => None,
        }
    };
}

/// Every ALU opcode with a fast-loop arm (the `Code`s `Add64Imm` through `Arsh32Reg`), and
/// negation.
macro_rules! by_alu {
    ($opcode:expr, $f:ident $pre:tt $args:tt) => {
        by_opcode!($opcode, $f $pre $args, [
            0x07 0x0f 0x17 0x1f 0x27 0x2f 0x37 0x3f 0x47 0x4f 0x57 0x5f
            0x67 0x6f 0x77 0x7f 0x97 0x9f 0xa7 0xaf 0xb7 0xbf 0xc7 0xcf
            0x04 0x0c 0x14 0x1c 0x24 0x2c 0x34 0x3c 0x44 0x4c 0x54 0x5c
            0x64 0x6c 0x74 0x7c 0x94 0x9c 0xa4 0xac 0xb4 0xbc 0xc4 0xcc 0x87 0x84
        ])
    };
}

/// The ALU opcodes fused with an ALU operation that follows and reads their result (the first
/// of the frequent pairs of the bench programs: clang's three-address `rD = rS; rD op= X`,
/// shifts before an or, the 32-bit or, xor, multiply and shifts of a hash's mixing steps, each
/// feeding the next, and the 64-bit adds, logic, shifts and negation of address arithmetic and
/// of `big`'s mixing).
macro_rules! by_paired_alu {
    ($opcode:expr, $f:ident $pre:tt $args:tt) => {
        by_opcode!($opcode, $f $pre $args, [
            0xbf 0xbc 0x64 0x4c 0xac 0x24 0x74
            0x07 0x0f 0x4f 0x57 0x5f 0x67 0x77 0x87 0xaf
        ])
    };
}

/// The ALU opcodes fused after a load (shifts, masks and moves of the loaded value, and ors
/// into it).
macro_rules! by_alu_after_load {
    ($opcode:expr, $f:ident $pre:tt $args:tt) => {
        by_opcode!($opcode, $f $pre $args, [0x64 0x67 0x54 0x57 0x74 0x77 0xbc 0xbf 0x4c 0x4f])
    };
}

/// The ALU opcodes a conditional jump over them runs without a branch (`jump_over_alu`): moves,
/// and adds and subtracts of an immediate.
macro_rules! by_selected {
    ($opcode:expr, $f:ident $pre:tt $args:tt) => {
        by_opcode!($opcode, $f $pre $args, [0xb7 0xbf 0xb4 0xbc 0x07 0x04 0x17 0x14])
    };
}

/// The ALU opcodes fused with a conditional jump that follows (loop steps and copies before the
/// loop's test, and masks before a test): add and move, both widths, immediate and register,
/// and `and` with an immediate.
macro_rules! by_fused_alu {
    ($opcode:expr, $f:ident $pre:tt $args:tt) => {
        by_opcode!($opcode, $f $pre $args, [0x07 0x0f 0x04 0x0c 0xbf 0xbc 0x57 0x54])
    };
}

/// Every conditional jump opcode (the `Code`s `JeqImm` through `Jsle32Reg` but `Exit`).
macro_rules! by_jump {
    ($opcode:expr, $f:ident $pre:tt $args:tt) => {
        by_opcode!($opcode, $f $pre $args, [
            0x15 0x1d 0x25 0x2d 0x35 0x3d 0x45 0x4d 0x55 0x5d 0x65 0x6d
            0x75 0x7d 0xa5 0xad 0xb5 0xbd 0xc5 0xcd 0xd5 0xdd
            0x16 0x1e 0x26 0x2e 0x36 0x3e 0x46 0x4e 0x56 0x5e 0x66 0x6e
            0x76 0x7e 0xa6 0xae 0xb6 0xbe 0xc6 0xce 0xd6 0xde
        ])
    };
}

/// The threaded form of prepared ops (`fast` only: every successor lands in the program and
/// registers are at most r10).
pub(super) fn build(insns: &[Insn], ops: &[Op]) -> Vec<Slot> {
    arrivals(insns, ops)
        .into_iter()
        .enumerate()
        .map(|(pc, acc)| slot(insns, ops, pc, acc))
        .collect()
}

// What reaches a slot in `acc` (`Slot::acc`), as `arrivals` finds it: a register number (the
// value of that register, whichever way the chain comes), or one of these.
/// Nothing known yet.
const UNKNOWN: u8 = 0xff;
/// Different registers by different ways (or nothing known): handlers read every operand from
/// `State::reg`.
const MIXED: u8 = 0xfe;

/// The slots a handler may go on to after slot `pc` (`usize::MAX` for none), as `arrivals`
/// follows them.
#[inline(always)]
fn successors(insns: &[Insn], ops: &[Op], pc: usize) -> [usize; 2] {
    let op = &ops[pc];
    let target = (pc as i64 + op.off as i64 + 1) as usize;
    let next = |k: usize| {
        if pc + k < ops.len() {
            pc + k
        } else {
            usize::MAX
        }
    };
    match op.code {
        Code::Exit => [usize::MAX; 2],
        _ if insns[pc].opcode & 0xf7 == 0x85 => [usize::MAX; 2],
        Code::Lddw => [next(2), usize::MAX],
        Code::Ja => [target, usize::MAX],
        code if is_cond_jump(code) => [next(1), target],
        _ => [next(1), usize::MAX],
    }
}

/// `arrive` with what comes in by one more way, `carry`.
#[inline(always)]
fn join(arrive: u8, carry: u8) -> u8 {
    if carry == UNKNOWN || arrive == carry {
        arrive
    } else if arrive == UNKNOWN {
        carry
    } else {
        MIXED
    }
}

/// For each slot, the register whose value the handler before it hands on in `acc`, where all
/// the ways into the slot agree on one. An instruction that writes a register hands that one on;
/// one that does not (a store, a jump) hands on what it received. Only a handler's step to the
/// next one needs this: `run`, where a chain starts, reads `acc` from `State::reg`, so a slot
/// entered there (or after an instruction the fast loop ran) has the right value whatever it
/// is. Each slot's value only rises (unknown, a register, mixed), at most twice, so the pass
/// is linear in the program: one sweep in program order settles the forward edges, a worklist
/// what back edges change.
fn arrivals(insns: &[Insn], ops: &[Op]) -> Vec<Option<u8>> {
    let n = ops.len();
    let mut arrive = vec![UNKNOWN; n];
    // Joins what `pc` hands on into its successors; calls `changed` with those that changed.
    let hand_on = |arrive: &mut [u8], pc: usize, changed: &mut dyn FnMut(usize)| {
        let carry = if matches!(class(insns[pc].opcode), CLASS_ALU | CLASS_ALU64 | CLASS_LDX)
            || ops[pc].code == Code::Lddw
        {
            insns[pc].dst
        } else {
            arrive[pc]
        };
        for t in successors(insns, ops, pc) {
            if t != usize::MAX {
                let joined = join(arrive[t], carry);
                if joined != arrive[t] {
                    arrive[t] = joined;
                    changed(t);
                }
            }
        }
    };
    let mut work = vec![];
    for pc in 0..n {
        hand_on(&mut arrive, pc, &mut |t| {
            if t <= pc {
                work.push(t)
            }
        });
    }
    loop {
        while let Some(pc) = work.pop() {
            let mut more = [usize::MAX; 2];
            hand_on(&mut arrive, pc, &mut |t| {
                more[(more[0] != usize::MAX) as usize] = t
            });
            work.extend(more.into_iter().filter(|&t| t != usize::MAX));
        }
        // Slots still unknown have no way in from a handler that hands on a known register (no
        // way in at all, or only from instructions that write nothing and are themselves
        // unknown): entered from `run`, nothing is known of what they hand on.
        work.extend((0..n).filter(|&pc| arrive[pc] == UNKNOWN));
        if work.is_empty() {
            break;
        }
        for &pc in &work {
            arrive[pc] = MIXED;
        }
    }
    arrive.into_iter().map(|a| (a < 16).then_some(a)).collect()
}

fn is_alu(code: Code) -> bool {
    (Code::Add64Imm as u8..=Code::Arsh32Reg as u8).contains(&(code as u8))
}

/// Negation (no `Code` of its own: `general` runs it in the fast loop).
fn is_neg(opcode: u8) -> bool {
    opcode == 0x87 || opcode == 0x84
}

fn is_cond_jump(code: Code) -> bool {
    (Code::JeqImm as u8..=Code::Jsle32Reg as u8).contains(&(code as u8)) && code != Code::Exit
}

/// The slot of `pc`, `acc` the register that reaches it in the `acc` argument (`arrivals`).
fn slot(insns: &[Insn], ops: &[Op], pc: usize, acc: Option<u8>) -> Slot {
    let op = &ops[pc];
    let opcode = insns[pc].opcode;
    let proved = op.ends_segment & DIRECT != 0;
    let base = Slot {
        imm: op.imm as i64 as u64,
        off: op.off,
        run: op.run,
        d: op.dst,
        s: op.src,
        acc: acc.unwrap_or(0),
        ..Slot::default()
    };
    // The `ACC` bits of a handler whose first and second registers read are `a` and `b`.
    let from_acc = |a: u8, b: Option<u8>| match acc {
        Some(r) => ((r == a) as u8 * ACC_1) | ((b == Some(r)) as u8 * ACC_2),
        None => 0,
    };
    // The second register an ALU operation or jump reads: rS, if its source is a register.
    let src_reg = (opcode & SRC_X != 0).then_some(op.src);
    // `$f` for `ACC` `$acc`, the access size of the op's code, and the check of an access
    // through `$base` (`check_of`).
    let size = access_size(op.code);
    macro_rules! sized {
        ($f:ident, $acc:expr, $base:expr, $kind:expr) => {
            by_acc!($acc, A => match (size, check_of(proved, $base)) {
                (1, PROVED) => $f::<A, 1, PROVED, $kind> as Handler,
                (2, PROVED) => $f::<A, 2, PROVED, $kind>,
                (4, PROVED) => $f::<A, 4, PROVED, $kind>,
                (8, PROVED) => $f::<A, 8, PROVED, $kind>,
                (1, STACK) => $f::<A, 1, STACK, $kind>,
                (2, STACK) => $f::<A, 2, STACK, $kind>,
                (4, STACK) => $f::<A, 4, STACK, $kind>,
                (8, STACK) => $f::<A, 8, STACK, $kind>,
                (1, _) => $f::<A, 1, DATA, $kind>,
                (2, _) => $f::<A, 2, DATA, $kind>,
                (4, _) => $f::<A, 4, DATA, $kind>,
                _ => $f::<A, 8, DATA, $kind>,
            })
        };
    }
    let handler: Handler = match op.code {
        code if is_alu(code) || is_neg(insns[pc].opcode) => {
            // An add or move before a conditional jump runs with it.
            if pc + 1 < ops.len() && is_cond_jump(ops[pc + 1].code) {
                let (off, off2, extra) = jump_targets(insns, ops, pc + 1);
                let jump = insns[pc + 1].opcode;
                if let Some(Some(handler)) = by_fused_alu!(opcode, alu_jump_for [] (jump)) {
                    return Slot {
                        handler,
                        imm2: ops[pc + 1].imm,
                        off: bytes(off + 1),
                        off2: bytes(off2 + 1),
                        extra,
                        t: ops[pc + 1].dst,
                        x: ops[pc + 1].src,
                        ..base
                    };
                }
            }
            let bits = from_acc(op.dst, src_reg);
            if let Some(slot) = alu_pair(insns, ops, pc, &base, bits) {
                return slot;
            }
            by_acc!(from_acc(op.dst, src_reg), A => by_alu!(opcode, alu_handler [A] ()))
                .expect("an ALU code has an ALU opcode")
        }
        Code::General if matches!(opcode, 0xd4 | 0xdc | 0xd7) => match opcode {
            0xd4 => end::<0xd4>,
            0xdc => end::<0xdc>,
            _ => end::<0xd7>,
        },
        code if is_cond_jump(code) => {
            if let Some(slot) = jump_over_alu(insns, ops, pc, &base) {
                return slot;
            }
            let (off, off2, extra) = jump_targets(insns, ops, pc);
            return Slot {
                handler:
                    by_acc!(from_acc(op.dst, src_reg), A => by_jump!(opcode, jump_handler [A] ()))
                        .expect("a jump code has a jump opcode"),
                off: bytes(off),
                off2: bytes(off2),
                extra,
                ..base
            };
        }
        Code::Ja => {
            return Slot {
                handler: ja,
                off: bytes(op.off + 1),
                ..base
            }
        }
        Code::LdxW | Code::LdxH | Code::LdxB | Code::LdxDw => {
            if let Some(slot) = load_pair(insns, ops, pc, &base) {
                return slot;
            }
            sized!(access, from_acc(0xff, Some(op.src)), op.src, LOAD)
        }
        Code::StW | Code::StH | Code::StB | Code::StDw => {
            sized!(access, from_acc(op.dst, None), op.dst, STORE_IMM)
        }
        Code::StxW | Code::StxH | Code::StxB | Code::StxDw => {
            sized!(access, from_acc(op.dst, Some(op.src)), op.dst, STORE_REG)
        }
        Code::Lddw => {
            let hi = ops[pc + 1].imm;
            return Slot {
                handler: lddw,
                imm: (op.imm as u32 as u64) | ((hi as u32 as u64) << 32),
                ..base
            };
        }
        code if code == Code::MovAdd || code.is_mov_add_access() => {
            let t = t_of(op) as u8;
            // `rD = rS; rD += rT` with rT = rD adds rS to itself.
            let t = if t == op.dst { op.src } else { t };
            let bits = from_acc(op.src, Some(t));
            let handler = match op.code {
                Code::MovAdd => by_acc!(bits, A => mov_add::<A> as Handler),
                Code::MovAddStxW | Code::MovAddStxH | Code::MovAddStxB | Code::MovAddStxDw => {
                    sized!(mov_add_access, bits, op.src, true)
                }
                _ => sized!(mov_add_access, bits, op.src, false),
            };
            return Slot {
                handler,
                t,
                x: x_of(op) as u8,
                ..base
            };
        }
        _ => bail,
    };
    Slot { handler, ..base }
}

/// The access size of a load, store or fused access code (8 for the others, which do not use it).
fn access_size(code: Code) -> u32 {
    match code {
        Code::LdxB | Code::StB | Code::StxB | Code::MovAddLdxB | Code::MovAddStxB => 1,
        Code::LdxH | Code::StH | Code::StxH | Code::MovAddLdxH | Code::MovAddStxH => 2,
        Code::LdxW | Code::StW | Code::StxW | Code::MovAddLdxW | Code::MovAddStxW => 4,
        _ => 8,
    }
}

/// Whether slot `pc` holds an ALU operation with a handler of its own.
fn alu_at(insns: &[Insn], ops: &[Op], pc: usize) -> bool {
    pc < ops.len() && (is_alu(ops[pc].code) || is_neg(insns[pc].opcode))
}

/// The ALU operation at `pc` fused with an ALU operation or an unconditional jump after it,
/// where `by_paired_alu` (or any ALU operation, before the jump) has it; `bits` (`ACC`) says
/// which of the first's operands it reads from `acc`.
fn alu_pair(insns: &[Insn], ops: &[Op], pc: usize, base: &Slot, bits: u8) -> Option<Slot> {
    let (first, next) = (insns[pc].opcode, pc + 1);
    if next < ops.len() && ops[next].code == Code::Ja && insns[next].opcode == 0x05 {
        return Some(Slot {
            handler: by_alu!(first, alu_ja_handler [] ())?,
            off: bytes(ops[next].off + 2),
            ..*base
        });
    }
    if !alu_at(insns, ops, next) {
        return None;
    }
    let link = link(insns, ops, pc);
    // Two independent operations stay apart: the pair would hand on only the second's value,
    // and an operation after it that reads the first's would wait for it to come back from
    // `State::reg` (on Zen 4, pairing them made `big` 1.5-3% slower, BENCHMARKS.md "Interpreter:
    // tuned for Zen 4").
    if link == OTHER {
        return None;
    }
    let second = insns[next].opcode;
    let handler = by_acc!(bits, A => by_paired_alu!(first, alu_alu_for[A](second, link)))??;
    Some(with_second(base, handler, &ops[next]))
}

/// `base` run by `handler`, which also runs the ALU operation `second` (in `t`, `x`, `imm2`).
fn with_second(base: &Slot, handler: Handler, second: &Op) -> Slot {
    Slot {
        handler,
        imm2: second.imm,
        t: second.dst,
        x: second.src,
        ..*base
    }
}

/// The load at `pc` fused with an ALU operation after it, where `by_alu_after_load` has it.
fn load_pair(insns: &[Insn], ops: &[Op], pc: usize, base: &Slot) -> Option<Slot> {
    let next = pc + 1;
    if !alu_at(insns, ops, next) {
        return None;
    }
    let check = check_of(ops[pc].ends_segment & DIRECT != 0, ops[pc].src);
    if let Some(slot) = load_alu_store(insns, ops, pc, check, base) {
        return Some(slot);
    }
    if let Some(slot) = load_pair_or(insns, ops, pc, check, base) {
        return Some(slot);
    }
    if let Some(slot) = load_shift_or(insns, ops, pc, check, base) {
        return Some(slot);
    }
    let alu = insns[next].opcode;
    let same = link(insns, ops, pc);
    macro_rules! for_check {
        ($size:literal) => {
            match check {
                PROVED => ldx_alu_for::<$size, PROVED>(alu, same),
                STACK => ldx_alu_for::<$size, STACK>(alu, same),
                _ => ldx_alu_for::<$size, DATA>(alu, same),
            }
        };
    }
    let handler = match ops[pc].code {
        Code::LdxW => for_check!(4),
        Code::LdxH => for_check!(2),
        Code::LdxB => for_check!(1),
        _ => for_check!(8),
    }?;
    Some(with_second(base, handler, &ops[next]))
}

/// The load at `pc` (checked as `check`), a left shift of the loaded register by an immediate
/// and an or of it into another register (`rT |= rD`), as clang assembles a big-endian field
/// byte by byte: one op, `imm2` the shift and `t` the register or-ed into.
fn load_shift_or(insns: &[Insn], ops: &[Op], pc: usize, check: u8, base: &Slot) -> Option<Slot> {
    if pc + 2 >= ops.len() || !alu_at(insns, ops, pc + 1) || !alu_at(insns, ops, pc + 2) {
        return None;
    }
    let (load, shift, or) = (&ops[pc], &ops[pc + 1], &ops[pc + 2]);
    let (shift_op, or_op) = (insns[pc + 1].opcode, insns[pc + 2].opcode);
    if !matches!(shift_op, 0x64 | 0x67)
        || !matches!(or_op, 0x4c | 0x4f)
        || shift.dst != load.dst
        || or.src != load.dst
        || or.dst == load.dst
    {
        return None;
    }
    let handler = shift_or_handler(false, load.code, check, shift_op, or_op);
    Some(Slot {
        handler,
        imm2: shift.imm,
        t: or.dst,
        ..*base
    })
}

/// The handler of a load of `code` checked as `check`, a shift `shift_op` and an or `or_op`:
/// `load_pair_or_op` for two loads and shifts (`pair`), `load_shift_or_op` for one.
fn shift_or_handler(pair: bool, code: Code, check: u8, shift_op: u8, or_op: u8) -> Handler {
    macro_rules! for_check {
        ($size:literal) => {
            match check {
                PROVED => shift_or_for::<$size, PROVED>(pair, shift_op, or_op),
                STACK => shift_or_for::<$size, STACK>(pair, shift_op, or_op),
                _ => shift_or_for::<$size, DATA>(pair, shift_op, or_op),
            }
        };
    }
    match code {
        Code::LdxW => for_check!(4),
        Code::LdxH => for_check!(2),
        Code::LdxB => for_check!(1),
        _ => for_check!(8),
    }
}

fn shift_or_for<const SIZE: u32, const CHECK: u8>(pair: bool, shift_op: u8, or_op: u8) -> Handler {
    macro_rules! pick {
        ($shift:literal, $or:literal) => {
            if pair {
                load_pair_or_op::<SIZE, CHECK, $shift, $or> as Handler
            } else {
                load_shift_or_op::<SIZE, CHECK, $shift, $or>
            }
        };
    }
    match (shift_op, or_op) {
        (0x64, 0x4c) => pick!(0x64, 0x4c),
        (0x64, _) => pick!(0x64, 0x4f),
        (_, 0x4c) => pick!(0x67, 0x4c),
        _ => pick!(0x67, 0x4f),
    }
}

/// A load, an ALU operation on the loaded register and a store of it back where it came from
/// (`rX = *(b + o); rX op= Y; *(b + o) = rX`: a counter or a flag word kept on the stack), where
/// the ALU operation is an add or an or, of 32 or 64 bits: one op, `imm2`/`x` the ALU
/// operation's immediate and source.
fn load_alu_store(insns: &[Insn], ops: &[Op], pc: usize, check: u8, base: &Slot) -> Option<Slot> {
    if pc + 2 >= ops.len() {
        return None;
    }
    let [load, alu, st] = [0, 1, 2].map(|k| &ops[pc + k]);
    let alu_op = insns[pc + 1].opcode;
    if !matches!(st.code, Code::StxW | Code::StxH | Code::StxB | Code::StxDw)
        || access_size(st.code) != access_size(load.code)
        || check_of(st.ends_segment & DIRECT != 0, st.dst) != check
        || check == DATA
        || st.dst != load.src
        || st.off != load.off
        || st.src != load.dst
        || load.dst == load.src
        || alu.dst != load.dst
        || (alu_op & SRC_X != 0 && alu.src == load.dst)
    {
        return None;
    }
    macro_rules! for_check {
        ($size:literal) => {
            match check {
                PROVED => load_alu_store_for::<$size, PROVED>(alu_op),
                _ => load_alu_store_for::<$size, STACK>(alu_op),
            }
        };
    }
    let handler = match load.code {
        Code::LdxW => for_check!(4),
        Code::LdxDw => for_check!(8),
        _ => None,
    }?;
    Some(with_second(base, handler, alu))
}

fn load_alu_store_for<const SIZE: u32, const CHECK: u8>(alu: u8) -> Option<Handler> {
    by_opcode!(alu, load_alu_store_handler [SIZE CHECK] (), [0x07 0x04 0x0f 0x0c 0x4c 0x4f])
}

fn load_alu_store_handler<const SIZE: u32, const CHECK: u8, const OPCODE: u8>() -> Handler {
    load_alu_store_op::<SIZE, CHECK, OPCODE>
}

/// Two loads of the same size through the same base, each shifted left by an immediate, and
/// the first or-ed into the second (`rA = *(b + o1); rA <<= k1; rC = *(b + o2); rC <<= k2;
/// rC |= rA`): how clang assembles a big-endian field two bytes at a time. One op: `d`, `off`
/// and `imm` the first load and shift, `t`, `off2` and `imm2` the second.
fn load_pair_or(insns: &[Insn], ops: &[Op], pc: usize, check: u8, base: &Slot) -> Option<Slot> {
    if pc + 4 >= ops.len() || !(1..=4).all(|k| k == 2 || alu_at(insns, ops, pc + k)) {
        return None;
    }
    let [l1, s1, l2, s2, or] = [0, 1, 2, 3, 4].map(|k| &ops[pc + k]);
    let [shift_op, shift2_op, or_op] = [1, 3, 4].map(|k| insns[pc + k].opcode);
    let (a, c) = (l1.dst, l2.dst);
    // The bytes both loads read, from the lower offset, rounded up to an access size.
    let span = (l1.off.abs_diff(l2.off) + access_size(l1.code)).next_power_of_two();
    if l2.code != l1.code
        || span > 8
        || check_of(l2.ends_segment & DIRECT != 0, l2.src) != check
        || !matches!(shift_op, 0x64 | 0x67)
        || shift2_op != shift_op
        || !matches!(or_op, 0x4c | 0x4f)
        || l2.src != l1.src
        || a == l1.src
        || a == c
        || s1.dst != a
        || s2.dst != c
        || or.dst != c
        || or.src != a
    {
        return None;
    }
    let handler = shift_or_handler(true, l1.code, check, shift_op, or_op);
    Some(Slot {
        handler,
        imm: s1.imm as i64 as u64,
        off2: l2.off,
        t: c,
        x: size_index(span) as u8,
        imm2: s2.imm,
        ..*base
    })
}

// How the ALU operation of a pair that comes second reads the register the first wrote (the
// `LINK` argument of handlers, see `second`): as its destination, as its source, or not at all.
const SAME: u8 = 0;
const FROM: u8 = 1;
const OTHER: u8 = 2;

/// The `LINK` of the pair of slot `pc` and the ALU operation after it.
fn link(insns: &[Insn], ops: &[Op], pc: usize) -> u8 {
    let (first, second) = (&ops[pc], &ops[pc + 1]);
    if second.dst == first.dst {
        SAME
    } else if insns[pc + 1].opcode & SRC_X != 0 && second.src == first.dst {
        FROM
    } else {
        OTHER
    }
}

/// The conditional jump at `pc` over one move, or add or subtract of an immediate (`if c goto
/// +1; rD = X`, as clang writes a select, or `rD += k`, a count of what a test finds): one op
/// that does it or not without a branch (`std::hint::select_unpredictable`), as the JIT makes it
/// a `cmov` (`jit/compile/cmov.rs`). `t`, `x`, `imm2`: the ALU operation's registers and
/// immediate.
fn jump_over_alu(insns: &[Insn], ops: &[Op], pc: usize, base: &Slot) -> Option<Slot> {
    let alu = insns.get(pc + 1)?;
    if ops[pc].off != 1 || pc + 2 >= ops.len() {
        return None;
    }
    let handler = by_selected!(alu.opcode, jump_alu_for [] (insns[pc].opcode))??;
    Some(Slot {
        handler,
        imm2: alu.imm,
        t: alu.dst,
        x: alu.src,
        ..*base
    })
}

/// The taken and fall-through targets of the conditional jump at `pc`, relative to it, and the
/// instructions counted on the fall-through besides its segment: a jump that falls through to
/// an unconditional jump (`if c goto +1; goto L`, as clang closes loops, or a loop's test
/// jumping back, then `goto` its exit) falls through straight to `L`, counting the `goto` (a
/// segment of its own).
fn jump_targets(insns: &[Insn], ops: &[Op], pc: usize) -> (i32, i32, u8) {
    let off = ops[pc].off + 1;
    if pc + 1 < ops.len() && ops[pc + 1].code == Code::Ja && insns[pc + 1].opcode == 0x05 {
        (off, ops[pc + 1].off + 2, 1)
    } else {
        (off, 1, 0)
    }
}

// Which operands a handler built for its slot's `acc` register reads from its `acc` argument
// (the `ACC` argument of handlers, a set of these bits): the first and the second register it
// reads (rD and rS for ALU operations and jumps; rD and rS for stores, rS for loads; rS and rT
// for `rD = rS; rD += rT`); none is 0.
const ACC_1: u8 = 1;
const ACC_2: u8 = 2;

/// Register `r`, or `acc` when `BIT` is in `ACC` (`slot` sets it only where `r` is the slot's
/// `acc` register).
#[inline(always)]
fn get<const ACC: u8, const BIT: u8>(st: &State, r: u8, acc: u64) -> u64 {
    if ACC & BIT != 0 {
        acc
    } else {
        st.reg[reg(r)]
    }
}

/// The source operand of an ALU operation or jump `OPCODE`: rS (see `get`), or the immediate
/// `imm`.
#[inline(always)]
fn source<const ACC: u8, const OPCODE: u8>(st: &State, s: u8, imm: u64, acc: u64) -> u64 {
    if OPCODE & SRC_X != 0 {
        get::<ACC, ACC_2>(st, s, acc)
    } else {
        imm
    }
}

/// An ALU operation as a type: `OPCODE` (class, operation and source) fixed at compile time.
struct Alu<const OPCODE: u8>;

impl<const OPCODE: u8> Alu<OPCODE> {
    /// The operation on the value `dst` with the value `src`.
    #[inline(always)]
    fn of(dst: u64, src: u64) -> u64 {
        if class(OPCODE) == CLASS_ALU64 {
            alu64(OPCODE & 0xf0, 0, dst, src)
        } else {
            alu32(OPCODE & 0xf0, 0, dst as u32, src as u32) as u64
        }
    }

    /// Runs the operation on rD, its operands read as `ACC` says; returns the new value.
    #[inline(always)]
    fn exec<const ACC: u8>(st: &mut State, d: u8, s: u8, imm: u64, acc: u64) -> u64 {
        let v = Self::of(
            get::<ACC, ACC_1>(st, d, acc),
            source::<ACC, OPCODE>(st, s, imm, acc),
        );
        st.reg[reg(d)] = v;
        v
    }
}

/// A conditional jump's test as a type, as `Alu`.
struct Cond<const OPCODE: u8>;

impl<const OPCODE: u8> Cond<OPCODE> {
    /// The test on rD and rS or `imm`, read as `ACC` says.
    #[inline(always)]
    fn taken<const ACC: u8>(st: &State, d: u8, s: u8, imm: u64, acc: u64) -> bool {
        let b = source::<ACC, OPCODE>(st, s, imm, acc);
        let a = get::<ACC, ACC_1>(st, d, acc);
        condition(OPCODE & 0xf0, a, b, class(OPCODE) == CLASS_JMP)
    }
}

fn alu_handler<const ACC: u8, const OPCODE: u8>() -> Handler {
    alu::<ACC, OPCODE>
}

fn alu_ja_handler<const OPCODE: u8>() -> Handler {
    alu_ja::<OPCODE>
}

fn alu_alu_for<const ACC: u8, const FIRST: u8>(second: u8, link: u8) -> Option<Handler> {
    match link {
        SAME => by_alu!(second, alu_alu_handler [ACC SAME FIRST] ()),
        FROM => by_alu!(second, alu_alu_handler [ACC FROM FIRST] ()),
        // `alu_pair` leaves independent operations apart.
        _ => None,
    }
}

fn alu_alu_handler<const ACC: u8, const LINK: u8, const FIRST: u8, const SECOND: u8>() -> Handler {
    alu_alu::<ACC, LINK, FIRST, SECOND>
}

fn ldx_alu_for<const SIZE: u32, const CHECK: u8>(alu: u8, link: u8) -> Option<Handler> {
    match link {
        SAME => by_alu_after_load!(alu, ldx_alu_handler [SAME SIZE CHECK] ()),
        FROM => by_alu_after_load!(alu, ldx_alu_handler [FROM SIZE CHECK] ()),
        _ => by_alu_after_load!(alu, ldx_alu_handler [OTHER SIZE CHECK] ()),
    }
}

fn ldx_alu_handler<const LINK: u8, const SIZE: u32, const CHECK: u8, const OPCODE: u8>() -> Handler
{
    ldx_alu::<LINK, SIZE, CHECK, OPCODE>
}

fn jump_alu_for<const ALU: u8>(jump: u8) -> Option<Handler> {
    by_jump!(jump, jump_alu_handler[ALU]())
}

fn jump_alu_handler<const ALU: u8, const JUMP: u8>() -> Handler {
    jump_alu::<ALU, JUMP>
}

fn jump_handler<const ACC: u8, const OPCODE: u8>() -> Handler {
    jump::<ACC, OPCODE>
}

fn alu_jump_for<const ALU: u8>(jump: u8) -> Option<Handler> {
    by_jump!(jump, alu_jump_handler[ALU]())
}

fn alu_jump_handler<const ALU: u8, const JUMP: u8>() -> Handler {
    alu_jump::<ALU, JUMP>
}

/// The slot `k` slots after `op`.
#[inline(always)]
fn at(op: &Slot, k: isize) -> &Slot {
    // SAFETY: handlers step only to successors that `prepare` checked land inside the program
    // (the next slot inside a segment, a jump's target or fall-through), all in `op`'s vector.
    unsafe { &*(op as *const Slot).offset(k) }
}

/// The slot `b` bytes after `op` (a jump's `off` or `off2`).
#[inline(always)]
fn at_bytes(op: &Slot, b: i32) -> &Slot {
    // SAFETY: as for `at`; `slot` wrote `b` as a number of slots times their size (`bytes`).
    unsafe { &*(op as *const Slot).byte_offset(b as isize) }
}

/// `k` slots as a distance in bytes, for `at_bytes`: a jump's handler adds it to its slot's
/// address as it is, without a multiply (a conditional jump is a fifth of the handlers run).
fn bytes(k: i32) -> i32 {
    k * size_of::<Slot>() as i32
}

/// Register `r` of `st`.
#[inline(always)]
fn reg(r: u8) -> usize {
    // SAFETY: `slot` copies register numbers of `Op`s, which are masked to four bits.
    unsafe { std::hint::assert_unchecked(r < 16) };
    r as usize
}

/// Leaves the slot to the fast loop.
fn bail(_: &mut State, op: &Slot, _: u32, _: u64) -> Next {
    stop(op)
}

/// Enters the segment at `t`, counting `extra` instructions more, if the budget in hand covers
/// it; `None` otherwise (the fast loop then runs the jump again, which takes the next slice or
/// leaves for the reference loop).
#[inline(always)]
fn enter<'a>(st: &mut State, t: &'a Slot, extra: u64) -> Option<&'a Slot> {
    let run = t.run as u64 + extra;
    if st.left >= run {
        st.left -= run;
        Some(t)
    } else {
        // Only where the budget runs out (or comes in slices): off the straight path.
        cold_path();
        None
    }
}

fn alu<const ACC: u8, const OPCODE: u8>(st: &mut State, op: &Slot, fuel: u32, acc: u64) -> Next {
    let v = Alu::<OPCODE>::exec::<ACC>(st, op.d, op.s, op.imm, acc);
    go(st, at(op, 1), fuel, v)
}

/// The ALU operation `OPCODE` on rT with rX or `imm2`, the second of a pair whose first wrote
/// `v` to rD: `v` itself stands for rT (`SAME`: rT = rD, as `link` found) or rX (`FROM`), so
/// that a dependent pair does not wait for the value to come back from memory.
#[inline(always)]
fn second<const LINK: u8, const OPCODE: u8>(st: &State, op: &Slot, v: u64) -> u64 {
    let dst = if LINK == SAME { v } else { st.reg[reg(op.t)] };
    let src = if OPCODE & SRC_X == 0 {
        op.imm2 as i64 as u64
    } else if LINK == FROM {
        v
    } else {
        st.reg[reg(op.x)]
    };
    Alu::<OPCODE>::of(dst, src)
}

/// Whether the second ALU operation `OPCODE` of a pair linked by `LINK` writes the first's
/// register without reading it from `State::reg` (`SAME`, with an immediate source): then the
/// first need not store its value, the second's store replaces it.
#[inline(always)]
const fn overwrites<const LINK: u8, const OPCODE: u8>() -> bool {
    LINK == SAME && OPCODE & SRC_X == 0
}

/// Two ALU operations: `FIRST` on rD with rS or `imm` (rS from `acc` where `ACC` says), then
/// `SECOND` on rT with rX or `imm2`.
fn alu_alu<const ACC: u8, const LINK: u8, const FIRST: u8, const SECOND: u8>(
    st: &mut State,
    op: &Slot,
    fuel: u32,
    acc: u64,
) -> Next {
    let v = Alu::<FIRST>::of(
        get::<ACC, ACC_1>(st, op.d, acc),
        source::<ACC, FIRST>(st, op.s, op.imm, acc),
    );
    if !overwrites::<LINK, SECOND>() {
        st.reg[reg(op.d)] = v;
    }
    let w = second::<LINK, SECOND>(st, op, v);
    st.reg[reg(op.t)] = w;
    go(st, at(op, 2), fuel, w)
}

/// An ALU operation and the unconditional jump after it (`off`: its target, relative to `op`).
/// Where the jump cannot enter its target, the jump's own slot goes on.
fn alu_ja<const OPCODE: u8>(st: &mut State, op: &Slot, fuel: u32, _: u64) -> Next {
    let v = Alu::<OPCODE>::exec::<0>(st, op.d, op.s, op.imm, 0);
    let next = enter(st, at_bytes(op, op.off), 0).unwrap_or(at(op, 1));
    go(st, next, fuel, v)
}

/// A load and the ALU operation `OPCODE` after it (on rT with rX or `imm2`).
fn ldx_alu<const LINK: u8, const SIZE: u32, const CHECK: u8, const OPCODE: u8>(
    st: &mut State,
    op: &Slot,
    fuel: u32,
    _: u64,
) -> Next {
    let Some(v) = load_at::<SIZE, CHECK>(st, st.reg[reg(op.s)], op.off) else {
        return stop(op);
    };
    if !overwrites::<LINK, OPCODE>() {
        st.reg[reg(op.d)] = v;
    }
    let w = second::<LINK, OPCODE>(st, op, v);
    st.reg[reg(op.t)] = w;
    go(st, at(op, 2), fuel, w)
}

/// A load into rD, `rD <<= imm2` (`SHIFT`) and `rT |= rD` (`OR`), as `load_shift_or` found.
fn load_shift_or_op<const SIZE: u32, const CHECK: u8, const SHIFT: u8, const OR: u8>(
    st: &mut State,
    op: &Slot,
    fuel: u32,
    _: u64,
) -> Next {
    let Some(v) = load_at::<SIZE, CHECK>(st, st.reg[reg(op.s)], op.off) else {
        return stop(op);
    };
    let v = Alu::<SHIFT>::of(v, op.imm2 as i64 as u64);
    st.reg[reg(op.d)] = v;
    let w = Alu::<OR>::of(st.reg[reg(op.t)], v);
    st.reg[reg(op.t)] = w;
    go(st, at(op, 3), fuel, w)
}

/// A load, the ALU operation `OPCODE` on the loaded register and the store of it back, as
/// `load_alu_store` found: the store's bound (`State::store`) vouches for the load too. Where
/// it fails, the load and the ALU operation run as `ldx_alu` would, and the store's own slot
/// goes on.
fn load_alu_store_op<const SIZE: u32, const CHECK: u8, const OPCODE: u8>(
    st: &mut State,
    op: &Slot,
    fuel: u32,
    _: u64,
) -> Next {
    let addr = off_by(st.reg[reg(op.s)], op.off);
    let first = (CHECK == DATA) as usize;
    let stored =
        CHECK == PROVED || addr.wrapping_sub(st.start[first]) < st.store[first][size_index(SIZE)];
    let v = if stored {
        // SAFETY: inside a writable region of the run (checked above, or proved by the verifier).
        unsafe { load(addr, SIZE) }
    } else {
        let Some(v) = load_at::<SIZE, CHECK>(st, st.reg[reg(op.s)], op.off) else {
            return stop(op);
        };
        v
    };
    let w = second::<SAME, OPCODE>(st, op, v);
    st.reg[reg(op.d)] = w;
    if !stored {
        return go(st, at(op, 2), fuel, w);
    }
    // SAFETY: as above.
    unsafe { store(addr, SIZE, w) };
    go(st, at(op, 3), fuel, w)
}

/// Two loads, shifts and an or, as `load_pair_or` found: both loads checked in one compare,
/// against the bytes from the lower offset through the end of the higher one, rounded up to the
/// access size whose bound is `x` (`State::load`). Where that fails, each load is checked on
/// its own; where the second cannot finish, the first load and shift are done and the second
/// load's own slot goes on.
fn load_pair_or_op<const SIZE: u32, const CHECK: u8, const SHIFT: u8, const OR: u8>(
    st: &mut State,
    op: &Slot,
    fuel: u32,
    _: u64,
) -> Next {
    let b = st.reg[reg(op.s)];
    let (a1, a2) = (off_by(b, op.off), off_by(b, op.off2));
    let first = (CHECK == DATA) as usize;
    let (v, w) = if CHECK == PROVED
        || off_by(b, op.off.min(op.off2)).wrapping_sub(st.start[first])
            < st.load[first][op.x as usize & 3]
    {
        // SAFETY: both inside one region of the run (checked above, or proved by the verifier).
        unsafe { (load(a1, SIZE), load(a2, SIZE)) }
    } else {
        let Some(v) = load_at::<SIZE, CHECK>(st, b, op.off) else {
            return stop(op);
        };
        let Some(w) = load_at::<SIZE, CHECK>(st, b, op.off2) else {
            let v = Alu::<SHIFT>::of(v, op.imm);
            st.reg[reg(op.d)] = v;
            return go(st, at(op, 2), fuel, v);
        };
        (v, w)
    };
    let v = Alu::<SHIFT>::of(v, op.imm);
    st.reg[reg(op.d)] = v;
    let w = Alu::<OR>::of(Alu::<SHIFT>::of(w, op.imm2 as i64 as u64), v);
    st.reg[reg(op.t)] = w;
    go(st, at(op, 5), fuel, w)
}

/// `base + off`, wrapping as eBPF addresses do.
#[inline(always)]
fn off_by(base: u64, off: i32) -> u64 {
    base.wrapping_add(off as i64 as u64)
}

/// A byte-order operation (`le`/`be` of ALU32, `bswap` of ALU64), its width the immediate.
fn end<const OPCODE: u8>(st: &mut State, op: &Slot, fuel: u32, _: u64) -> Next {
    let d = reg(op.d);
    let v = byte_order(OPCODE, op.imm as i32, st.reg[d]);
    st.reg[d] = v;
    go(st, at(op, 1), fuel, v)
}

/// An unconditional jump; the value of `acc` goes on (a jump writes no register).
fn ja(st: &mut State, op: &Slot, fuel: u32, acc: u64) -> Next {
    match enter(st, at_bytes(op, op.off), 0) {
        Some(t) => go(st, t, fuel, acc),
        None => stop(op),
    }
}

/// Takes a conditional jump whose test gave `taken` (a branch of the host, see
/// `fast::keep_branch`); `off`/`off2`/`extra` as in `Slot`, relative to `op`. Returns the slot
/// entered, or `None` as `enter`.
#[inline(always)]
fn branch<'a>(st: &mut State, op: &'a Slot, taken: bool) -> Option<&'a Slot> {
    if taken {
        keep_branch();
        enter(st, at_bytes(op, op.off), 0)
    } else {
        enter(st, at_bytes(op, op.off2), op.extra as u64)
    }
}

/// A conditional jump; the value of `acc` goes on either way.
fn jump<const ACC: u8, const OPCODE: u8>(st: &mut State, op: &Slot, fuel: u32, acc: u64) -> Next {
    let taken = Cond::<OPCODE>::taken::<ACC>(st, op.d, op.s, op.imm, acc);
    match branch(st, op, taken) {
        Some(t) => go(st, t, fuel, acc),
        None => stop(op),
    }
}

/// A conditional jump over one ALU operation, as `jump_over_alu` found: rT gets the operation's
/// result (with rX or `imm2`) where the jump falls through and keeps its value where it is
/// taken, without a branch; either way the chain goes on after the operation, counting it only
/// where it ran. Where the budget in hand does not cover that, the jump's own slot is left to
/// the fast loop, nothing changed.
fn jump_alu<const ALU: u8, const JUMP: u8>(st: &mut State, op: &Slot, fuel: u32, _: u64) -> Next {
    let taken = Cond::<JUMP>::taken::<0>(st, op.d, op.s, op.imm, 0);
    let old = st.reg[reg(op.t)];
    let done = Alu::<ALU>::of(old, source::<0, ALU>(st, op.x, op.imm2 as i64 as u64, 0));
    // The operation counts as an instruction besides the segment after it where it ran.
    let Some(t) = enter(st, at(op, 2), !taken as u64) else {
        return stop(op);
    };
    let v = std::hint::select_unpredictable(taken, old, done);
    st.reg[reg(op.t)] = v;
    go(st, t, fuel, v)
}

/// An add or move and the conditional jump after it (`t`, `x`, `imm2`: the jump's registers and
/// immediate). Where the jump cannot enter its target, the jump's own slot goes on.
fn alu_jump<const ALU: u8, const JUMP: u8>(st: &mut State, op: &Slot, fuel: u32, _: u64) -> Next {
    let v = Alu::<ALU>::exec::<0>(st, op.d, op.s, op.imm, 0);
    let taken = Cond::<JUMP>::taken::<0>(st, op.t, op.x, op.imm2 as i64 as u64, 0);
    let next = branch(st, op, taken).unwrap_or(at(op, 1));
    go(st, next, fuel, v)
}

// How a handler checks an access (its `CHECK` argument): not at all (the verifier proved it),
// or against the stack first (a base of r10), or the data first (any other base).
const PROVED: u8 = 0;
const STACK: u8 = 1;
const DATA: u8 = 2;

/// The `CHECK` of an access through `base`, proved or not.
fn check_of(proved: bool, base: u8) -> u8 {
    match (proved, base) {
        (true, _) => PROVED,
        (false, 10) => STACK,
        _ => DATA,
    }
}

/// The index of `SIZE` in `State::load` and `State::store`.
const fn size_index(size: u32) -> usize {
    size.trailing_zeros() as usize
}

/// Whether a load of `SIZE` bytes at `addr` is inside the stack or the data (the fast loop's
/// inline check, the region `CHECK` names tried first; the verifier's proof when `PROVED`).
#[inline(always)]
fn readable<const SIZE: u32, const CHECK: u8>(st: &State, addr: u64) -> bool {
    let first = (CHECK == DATA) as usize;
    let i = size_index(SIZE);
    CHECK == PROVED || addr.wrapping_sub(st.start[first]) < st.load[first][i] || {
        // The second region: off the handlers' straight path (see `writable`).
        cold_path();
        fits(&st.hot[1 - first], addr, SIZE as u64)
    }
}

/// As `readable`, for a store: the first of the two regions that holds it decides.
#[inline(always)]
fn writable<const SIZE: u32, const CHECK: u8>(st: &State, addr: u64) -> bool {
    if CHECK == PROVED {
        return true;
    }
    let first = (CHECK == DATA) as usize;
    addr.wrapping_sub(st.start[first]) < st.store[first][size_index(SIZE)] || {
        // Accesses outside the region tried first are rare in the programs measured (an
        // access through a copy of r10, or a base that is neither): laid out as the
        // branch not taken, the common case falls through.
        cold_path();
        let [h0, h1] = &st.hot;
        let in0 = fits(h0, addr, SIZE as u64);
        (in0 & (h0.writable != 0)) | (!in0 & fits(h1, addr, SIZE as u64) & (h1.writable != 0))
    }
}

/// The `SIZE` bytes at `base + off`, or `None` where `readable` cannot vouch for them.
#[inline(always)]
fn load_at<const SIZE: u32, const CHECK: u8>(st: &State, base: u64, off: i32) -> Option<u64> {
    let addr = base.wrapping_add(off as i64 as u64);
    // SAFETY: inside a region of the run (checked first, or proved by the verifier).
    readable::<SIZE, CHECK>(st, addr).then(|| unsafe { load(addr, SIZE) })
}

// What a plain memory op does (`access`).
const LOAD: u8 = 0;
const STORE_IMM: u8 = 1;
const STORE_REG: u8 = 2;

/// A load (rD = *(rS + off)) or a store of the immediate or of rS (*(rD + off) = ...). A load
/// hands the value loaded on; a store, `acc` (it writes no register).
fn access<const ACC: u8, const SIZE: u32, const CHECK: u8, const KIND: u8>(
    st: &mut State,
    op: &Slot,
    fuel: u32,
    acc: u64,
) -> Next {
    if KIND == LOAD {
        let Some(v) = load_at::<SIZE, CHECK>(st, get::<ACC, ACC_2>(st, op.s, acc), op.off) else {
            return stop(op);
        };
        st.reg[reg(op.d)] = v;
        go(st, at(op, 1), fuel, v)
    } else {
        let addr = get::<ACC, ACC_1>(st, op.d, acc).wrapping_add(op.off as i64 as u64);
        if !writable::<SIZE, CHECK>(st, addr) {
            return stop(op);
        }
        let v = if KIND == STORE_IMM {
            op.imm
        } else {
            get::<ACC, ACC_2>(st, op.s, acc)
        };
        // SAFETY: inside a writable region of the run (as for a load).
        unsafe { store(addr, SIZE, v) };
        go(st, at(op, 1), fuel, acc)
    }
}

fn lddw(st: &mut State, op: &Slot, fuel: u32, _: u64) -> Next {
    st.reg[reg(op.d)] = op.imm;
    go(st, at(op, 2), fuel, op.imm)
}

/// `rD = rS + rT` (`t` already rewritten for rT = rD, see `slot`), read as `ACC` says.
#[inline(always)]
fn sum<const ACC: u8>(st: &State, op: &Slot, acc: u64) -> u64 {
    get::<ACC, ACC_1>(st, op.s, acc).wrapping_add(get::<ACC, ACC_2>(st, op.t, acc))
}

fn mov_add<const ACC: u8>(st: &mut State, op: &Slot, fuel: u32, acc: u64) -> Next {
    let v = sum::<ACC>(st, op, acc);
    st.reg[reg(op.d)] = v;
    go(st, at(op, 2), fuel, v)
}

/// `rD = rS; rD += rT` and the load into rX or the store of rX through rD (`WRITE`) after it.
/// Hands on the value loaded, or after a store the sum (rD, the last register written).
fn mov_add_access<const ACC: u8, const SIZE: u32, const CHECK: u8, const WRITE: bool>(
    st: &mut State,
    op: &Slot,
    fuel: u32,
    acc: u64,
) -> Next {
    let base = sum::<ACC>(st, op, acc);
    let addr = base.wrapping_add(op.off as i64 as u64);
    let ok = if WRITE {
        writable::<SIZE, CHECK>(st, addr)
    } else {
        readable::<SIZE, CHECK>(st, addr)
    };
    if !ok {
        return stop(op);
    }
    st.reg[reg(op.d)] = base;
    if WRITE {
        // SAFETY: as for `access`; the value is read after rD is set, as the third slot reads it.
        unsafe { store(addr, SIZE, st.reg[reg(op.x)]) };
        go(st, at(op, 3), fuel, base)
    } else {
        // SAFETY: as for `access`.
        let v = unsafe { load(addr, SIZE) };
        st.reg[reg(op.x)] = v;
        go(st, at(op, 3), fuel, v)
    }
}
