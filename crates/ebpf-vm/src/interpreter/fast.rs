//! The fast loop (`run_from`): the threaded form first, then one dispatch per prepared op,
//! segment-wise instruction counting, inline checks against the run's stack and data
//! (`Regions::hot`); and the reference loop that finishes a run one instruction at a time where
//! the fast loop cannot vouch for it. Each arm computes
//! with the primitives of `semantics`, so that an operation's meaning is written once.

use super::prepared::*;
use super::threaded::{self, State};
use super::Prepared;
use crate::coverage::CoverageCounters;
use crate::error::Trap;
use crate::isa::opcodes::*;
use crate::isa::Insn;
use crate::limits::Meter;
use crate::semantics::*;
use crate::vm::env::{memory_trap, RunEnv};
use crate::vm::RunOutput;

/// Nothing, in a way the optimiser cannot see through: called on one side of a branch, it keeps
/// the branch from becoming a conditional move (see `branch!` in `run_prepared`).
#[inline(always)]
pub(super) fn keep_branch() {
    #[cfg(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64"))]
    // SAFETY: an empty asm block: no instructions, no effects.
    unsafe {
        std::arch::asm!("", options(nomem, nostack, preserves_flags))
    };
}

/// Runs prepared instructions from slot `entry` with r1-r5 = `args`.
///
/// Two loops share the machine state (`threaded::State`). The fast loop first hands the run to
/// the threaded form (`threaded::run`, without coverage), which runs what it can and stops at the
/// first slot it leaves to this loop; then it dispatches once per op on its `Code` (one jump
/// table), with an arm of its own for each frequent instruction and fused idiom; the rest go
/// through `general`, the reference code by instruction class. It counts instructions per
/// *segment* (a straight run of slots ending at the first jump, call, exit or packet load): on
/// entering a segment it adds the segment's length at once, if the budget covers it. When it does
/// not, the budget ends inside that segment, and the reference loop finishes the run one
/// instruction at a time. Traps in the middle of a segment recompute the exact count from the
/// length of the rest of the segment, so counts and traps are what a per-instruction count would
/// give. Conditional jumps stay host branches (see `keep_branch`).
/// Memory checks try the stack and data inline before walking the table, in the table's order,
/// so the outcome (including which region decides a store's writability) is the same.
/// With run limits the budget comes in slices (`limits::Meter`): when the budget in hand does not
/// cover a segment, the limits are checked and the next slice taken; only when the whole budget
/// is in hand does the reference loop take over.
/// With `COUNT`, both loops also count coverage (a copy of their own: runs without coverage pay
/// nothing for it): the fast loop at each segment it enters and at each conditional jump that
/// falls through; the reference loop likewise, one instruction at a time.
pub(super) fn run_from<const COUNT: bool>(
    p: &Prepared,
    env: &mut RunEnv<'_>,
    args: [u64; 5],
    entry: usize,
) -> Result<RunOutput, Trap> {
    let mut frames: Vec<Frame> = Vec::new();
    let mut pc = entry;
    let budget = env.budget;
    // Budget in hand: in the fast loop, what is left once the current segment has run to its end;
    // the count is `meter.count(st.left)` (`budget - left` without limits).
    let (mut meter, left) = Meter::start(budget, &env.state.limits);
    // The hot regions are set when the fast loop starts (empty regions fit nothing).
    let mut st = State::new(entry_registers(args, env.stack_top), left);
    let coverage = if COUNT {
        env.state.coverage.clone()
    } else {
        None
    };
    macro_rules! count {
        ($method:ident, $slot:expr) => {
            if COUNT {
                if let Some(c) = &coverage {
                    c.$method($slot);
                }
            }
        };
    }

    'fast: {
        if !p.fast {
            break 'fast;
        }
        let ops = &p.ops[..];
        // Refreshed after every helper call, the only thing that can add regions during a run.
        st.set_hot(env.regions.hot());

        // Enters the segment at `$t`; if the budget in hand does not cover it, takes the next
        // slice, and leaves for the reference loop if the whole budget ends in it.
        macro_rules! enter {
            ($t:expr) => {{
                let t = $t;
                count!(enter, t);
                // SAFETY: `prepare` checked that every successor lands inside the program.
                let run = unsafe { ops.get_unchecked(t) }.run as u64;
                pc = t;
                match st.left.checked_sub(run) {
                    Some(l) => st.left = l,
                    None => {
                        st.left = meter.next_slice(&env.state.limits, st.left, run, t);
                        // A limit met leaves `st.left` short too (see `Meter::next_slice`).
                        match st.left.checked_sub(run) {
                            Some(l) => st.left = l,
                            None => break 'fast,
                        }
                    }
                }
            }};
        }
        // Instructions executed before slot `$at` of the current segment: the count at the end of
        // the segment less the instructions from `$at` through that end.
        macro_rules! exact {
            ($at:expr) => {
                meter.count(st.left) - ops[$at].run as u64
            };
        }
        // The slow half of a memory check; `pc` has already moved past the instruction.
        macro_rules! check {
            ($addr:expr, $size:expr, $write:expr) => {
                if let Err(kind) = env.regions.check($addr, $size as u64, $write) {
                    let at = pc - 1;
                    return Err(memory_trap(kind, at, $addr, $size, exact!(at), $write, env));
                }
            };
        }
        macro_rules! load_fast {
            ($size:expr, $op:expr, $d:expr, $s:expr) => {{
                let addr = st.reg[$s].wrapping_add($op.off as i64 as u64);
                if $op.ends_segment & DIRECT == 0
                    && !(fits(&st.hot[0], addr, $size) | fits(&st.hot[1], addr, $size))
                {
                    check!(addr, $size, false);
                }
                // SAFETY: inside a region of the run (checked just above, or proved by the
                // verifier).
                st.reg[$d] = unsafe { load(addr, $size) };
            }};
        }
        macro_rules! store_fast {
            ($size:expr, $op:expr, $d:expr, $v:expr) => {{
                let addr = st.reg[$d].wrapping_add($op.off as i64 as u64);
                if $op.ends_segment & DIRECT == 0 {
                    let in0 = fits(&st.hot[0], addr, $size);
                    let ok = (in0 & (st.hot[0].writable != 0))
                        | (!in0 & fits(&st.hot[1], addr, $size) & (st.hot[1].writable != 0));
                    if !ok {
                        check!(addr, $size, true);
                    }
                }
                // SAFETY: inside a writable region of the run (checked just above, or proved by
                // the verifier).
                unsafe { store(addr, $size, $v) };
            }};
        }
        // `rD = rS; rD += rT`, then the access of the third slot (`pc` moved past it first, so
        // that a trap names that slot).
        macro_rules! mov_add_access {
            ($op:expr, $d:expr, $s:expr, $access:expr) => {{
                st.reg[$d] = st.reg[$s];
                st.reg[$d] = st.reg[$d].wrapping_add(st.reg[t_of($op)]);
                pc += 2;
                $access
            }};
        }
        // A conditional jump ends the segment whichever way it goes.
        // It stays a branch of the host: the empty asm keeps the compiler from turning it into a
        // conditional move, which would make the next dispatch wait for the comparison instead of
        // running ahead on the prediction.
        macro_rules! branch {
            ($cond:expr, $op:expr) => {{
                if $cond {
                    keep_branch();
                    enter!(pc.wrapping_add($op.off as isize as usize));
                } else {
                    count!(fall_through, pc - 1);
                    enter!(pc);
                }
            }};
        }

        enter!(pc);
        loop {
            // The threaded form runs what it can; the slot it stops at runs here.
            if !COUNT {
                pc = threaded::run(&mut st, &p.slots, pc);
            }
            // SAFETY: `pc` is a slot the program reaches: slot 0, a checked successor, or the next
            // slot inside a segment, which `prepare` checked exists.
            let op = unsafe { ops.get_unchecked(pc) };
            let d = op.dst as usize;
            let s = op.src as usize;
            // SAFETY: `prepare` only lets the fast loop run when every register is at most r10.
            unsafe { std::hint::assert_unchecked(d < 11 && s < 11) };
            // Read in the arms that need it, so that the others do not pay for it.
            macro_rules! imm {
                () => {
                    op.imm as i64 as u64
                };
            }
            // The operation `$op` of `semantics::alu64` / `alu32` on rD and `$src`.
            macro_rules! alu {
                (64, $op:expr, $src:expr) => {
                    st.reg[d] = alu64($op, 0, st.reg[d], $src)
                };
                (32, $op:expr, $src:expr) => {
                    st.reg[d] = alu32($op, 0, st.reg[d] as u32, $src as u32) as u64
                };
            }
            // `pc` now names the next slot; jumps add their offset to it.
            pc += 1;
            match op.code {
                // ALU64 and ALU32 (zero-extended), immediate and register: `semantics::alu64`
                // and `alu32` with the operation fixed, so each arm compiles to that operation.
                Code::Add64Imm => alu!(64, ALU_ADD, imm!()),
                Code::Add64Reg => alu!(64, ALU_ADD, st.reg[s]),
                Code::Sub64Imm => alu!(64, ALU_SUB, imm!()),
                Code::Sub64Reg => alu!(64, ALU_SUB, st.reg[s]),
                Code::Mul64Imm => alu!(64, ALU_MUL, imm!()),
                Code::Mul64Reg => alu!(64, ALU_MUL, st.reg[s]),
                Code::Div64Imm => alu!(64, ALU_DIV, imm!()),
                Code::Div64Reg => alu!(64, ALU_DIV, st.reg[s]),
                Code::Or64Imm => alu!(64, ALU_OR, imm!()),
                Code::Or64Reg => alu!(64, ALU_OR, st.reg[s]),
                Code::And64Imm => alu!(64, ALU_AND, imm!()),
                Code::And64Reg => alu!(64, ALU_AND, st.reg[s]),
                Code::Lsh64Imm => alu!(64, ALU_LSH, imm!()),
                Code::Lsh64Reg => alu!(64, ALU_LSH, st.reg[s]),
                Code::Rsh64Imm => alu!(64, ALU_RSH, imm!()),
                Code::Rsh64Reg => alu!(64, ALU_RSH, st.reg[s]),
                Code::Mod64Imm => alu!(64, ALU_MOD, imm!()),
                Code::Mod64Reg => alu!(64, ALU_MOD, st.reg[s]),
                Code::Xor64Imm => alu!(64, ALU_XOR, imm!()),
                Code::Xor64Reg => alu!(64, ALU_XOR, st.reg[s]),
                Code::Mov64Imm => alu!(64, ALU_MOV, imm!()),
                Code::Mov64Reg => alu!(64, ALU_MOV, st.reg[s]),
                Code::Arsh64Imm => alu!(64, ALU_ARSH, imm!()),
                Code::Arsh64Reg => alu!(64, ALU_ARSH, st.reg[s]),
                Code::Add32Imm => alu!(32, ALU_ADD, imm!()),
                Code::Add32Reg => alu!(32, ALU_ADD, st.reg[s]),
                Code::Sub32Imm => alu!(32, ALU_SUB, imm!()),
                Code::Sub32Reg => alu!(32, ALU_SUB, st.reg[s]),
                Code::Mul32Imm => alu!(32, ALU_MUL, imm!()),
                Code::Mul32Reg => alu!(32, ALU_MUL, st.reg[s]),
                Code::Div32Imm => alu!(32, ALU_DIV, imm!()),
                Code::Div32Reg => alu!(32, ALU_DIV, st.reg[s]),
                Code::Or32Imm => alu!(32, ALU_OR, imm!()),
                Code::Or32Reg => alu!(32, ALU_OR, st.reg[s]),
                Code::And32Imm => alu!(32, ALU_AND, imm!()),
                Code::And32Reg => alu!(32, ALU_AND, st.reg[s]),
                Code::Lsh32Imm => alu!(32, ALU_LSH, imm!()),
                Code::Lsh32Reg => alu!(32, ALU_LSH, st.reg[s]),
                Code::Rsh32Imm => alu!(32, ALU_RSH, imm!()),
                Code::Rsh32Reg => alu!(32, ALU_RSH, st.reg[s]),
                Code::Mod32Imm => alu!(32, ALU_MOD, imm!()),
                Code::Mod32Reg => alu!(32, ALU_MOD, st.reg[s]),
                Code::Xor32Imm => alu!(32, ALU_XOR, imm!()),
                Code::Xor32Reg => alu!(32, ALU_XOR, st.reg[s]),
                Code::Mov32Imm => alu!(32, ALU_MOV, imm!()),
                Code::Mov32Reg => alu!(32, ALU_MOV, st.reg[s]),
                Code::Arsh32Imm => alu!(32, ALU_ARSH, imm!()),
                Code::Arsh32Reg => alu!(32, ALU_ARSH, st.reg[s]),
                // JMP: 64-bit comparisons.
                Code::Ja => enter!(pc.wrapping_add(op.off as isize as usize)),
                Code::JeqImm => branch!(condition(JMP_JEQ, st.reg[d], imm!(), true), op),
                Code::JeqReg => branch!(condition(JMP_JEQ, st.reg[d], st.reg[s], true), op),
                Code::JgtImm => branch!(condition(JMP_JGT, st.reg[d], imm!(), true), op),
                Code::JgtReg => branch!(condition(JMP_JGT, st.reg[d], st.reg[s], true), op),
                Code::JgeImm => branch!(condition(JMP_JGE, st.reg[d], imm!(), true), op),
                Code::JgeReg => branch!(condition(JMP_JGE, st.reg[d], st.reg[s], true), op),
                Code::JsetImm => branch!(condition(JMP_JSET, st.reg[d], imm!(), true), op),
                Code::JsetReg => branch!(condition(JMP_JSET, st.reg[d], st.reg[s], true), op),
                Code::JneImm => branch!(condition(JMP_JNE, st.reg[d], imm!(), true), op),
                Code::JneReg => branch!(condition(JMP_JNE, st.reg[d], st.reg[s], true), op),
                Code::JsgtImm => branch!(condition(JMP_JSGT, st.reg[d], imm!(), true), op),
                Code::JsgtReg => branch!(condition(JMP_JSGT, st.reg[d], st.reg[s], true), op),
                Code::JsgeImm => branch!(condition(JMP_JSGE, st.reg[d], imm!(), true), op),
                Code::JsgeReg => branch!(condition(JMP_JSGE, st.reg[d], st.reg[s], true), op),
                Code::JltImm => branch!(condition(JMP_JLT, st.reg[d], imm!(), true), op),
                Code::JltReg => branch!(condition(JMP_JLT, st.reg[d], st.reg[s], true), op),
                Code::JleImm => branch!(condition(JMP_JLE, st.reg[d], imm!(), true), op),
                Code::JleReg => branch!(condition(JMP_JLE, st.reg[d], st.reg[s], true), op),
                Code::JsltImm => branch!(condition(JMP_JSLT, st.reg[d], imm!(), true), op),
                Code::JsltReg => branch!(condition(JMP_JSLT, st.reg[d], st.reg[s], true), op),
                Code::JsleImm => branch!(condition(JMP_JSLE, st.reg[d], imm!(), true), op),
                Code::JsleReg => branch!(condition(JMP_JSLE, st.reg[d], st.reg[s], true), op),
                Code::Exit if frames.is_empty() => {
                    return Ok(RunOutput {
                        r0: st.reg[0],
                        insn_count: meter.count(st.left),
                        exit_pc: pc - 1,
                    })
                }
                // JMP32: comparisons of the low halves.
                Code::Jeq32Imm => branch!(condition(JMP_JEQ, st.reg[d], imm!(), false), op),
                Code::Jeq32Reg => branch!(condition(JMP_JEQ, st.reg[d], st.reg[s], false), op),
                Code::Jgt32Imm => branch!(condition(JMP_JGT, st.reg[d], imm!(), false), op),
                Code::Jgt32Reg => branch!(condition(JMP_JGT, st.reg[d], st.reg[s], false), op),
                Code::Jge32Imm => branch!(condition(JMP_JGE, st.reg[d], imm!(), false), op),
                Code::Jge32Reg => branch!(condition(JMP_JGE, st.reg[d], st.reg[s], false), op),
                Code::Jset32Imm => branch!(condition(JMP_JSET, st.reg[d], imm!(), false), op),
                Code::Jset32Reg => branch!(condition(JMP_JSET, st.reg[d], st.reg[s], false), op),
                Code::Jne32Imm => branch!(condition(JMP_JNE, st.reg[d], imm!(), false), op),
                Code::Jne32Reg => branch!(condition(JMP_JNE, st.reg[d], st.reg[s], false), op),
                Code::Jsgt32Imm => branch!(condition(JMP_JSGT, st.reg[d], imm!(), false), op),
                Code::Jsgt32Reg => branch!(condition(JMP_JSGT, st.reg[d], st.reg[s], false), op),
                Code::Jsge32Imm => branch!(condition(JMP_JSGE, st.reg[d], imm!(), false), op),
                Code::Jsge32Reg => branch!(condition(JMP_JSGE, st.reg[d], st.reg[s], false), op),
                Code::Jlt32Imm => branch!(condition(JMP_JLT, st.reg[d], imm!(), false), op),
                Code::Jlt32Reg => branch!(condition(JMP_JLT, st.reg[d], st.reg[s], false), op),
                Code::Jle32Imm => branch!(condition(JMP_JLE, st.reg[d], imm!(), false), op),
                Code::Jle32Reg => branch!(condition(JMP_JLE, st.reg[d], st.reg[s], false), op),
                Code::Jslt32Imm => branch!(condition(JMP_JSLT, st.reg[d], imm!(), false), op),
                Code::Jslt32Reg => branch!(condition(JMP_JSLT, st.reg[d], st.reg[s], false), op),
                Code::Jsle32Imm => branch!(condition(JMP_JSLE, st.reg[d], imm!(), false), op),
                Code::Jsle32Reg => branch!(condition(JMP_JSLE, st.reg[d], st.reg[s], false), op),
                // Loads and stores.
                Code::LdxW => load_fast!(4, op, d, s),
                Code::LdxH => load_fast!(2, op, d, s),
                Code::LdxB => load_fast!(1, op, d, s),
                Code::LdxDw => load_fast!(8, op, d, s),
                Code::StW => store_fast!(4, op, d, imm!()),
                Code::StH => store_fast!(2, op, d, imm!()),
                Code::StB => store_fast!(1, op, d, imm!()),
                Code::StDw => store_fast!(8, op, d, imm!()),
                Code::StxW => store_fast!(4, op, d, st.reg[s]),
                Code::StxH => store_fast!(2, op, d, st.reg[s]),
                Code::StxB => store_fast!(1, op, d, st.reg[s]),
                Code::StxDw => store_fast!(8, op, d, st.reg[s]),
                Code::Lddw => {
                    // SAFETY: `prepare` checked that an lddw has its second slot.
                    let hi = unsafe { ops.get_unchecked(pc) }.imm;
                    st.reg[d] = (op.imm as u32 as u64) | ((hi as u32 as u64) << 32);
                    pc += 1;
                }
                Code::MovAdd => {
                    st.reg[d] = st.reg[s];
                    st.reg[d] = st.reg[d].wrapping_add(st.reg[t_of(op)]);
                    pc += 1;
                }
                Code::MovAddLdxW => mov_add_access!(op, d, s, load_fast!(4, op, x_of(op), d)),
                Code::MovAddLdxH => mov_add_access!(op, d, s, load_fast!(2, op, x_of(op), d)),
                Code::MovAddLdxB => mov_add_access!(op, d, s, load_fast!(1, op, x_of(op), d)),
                Code::MovAddLdxDw => mov_add_access!(op, d, s, load_fast!(8, op, x_of(op), d)),
                Code::MovAddStxW => {
                    mov_add_access!(op, d, s, store_fast!(4, op, d, st.reg[x_of(op)]))
                }
                Code::MovAddStxH => {
                    mov_add_access!(op, d, s, store_fast!(2, op, d, st.reg[x_of(op)]))
                }
                Code::MovAddStxB => {
                    mov_add_access!(op, d, s, store_fast!(1, op, d, st.reg[x_of(op)]))
                }
                Code::MovAddStxDw => {
                    mov_add_access!(op, d, s, store_fast!(8, op, d, st.reg[x_of(op)]))
                }
                Code::General | Code::Exit => {
                    let at = pc - 1;
                    let insn = p.insns[at];
                    match general(
                        &p.insns,
                        at,
                        insn,
                        &mut st.reg,
                        &mut frames,
                        env,
                        exact!(at) + 1,
                    )? {
                        Step::Next(next) => {
                            if op.ends_segment & ENDS != 0 {
                                enter!(next);
                            } else {
                                pc = next;
                            }
                        }
                        Step::Call(next, charged) => {
                            // A call ends its segment, so `st.left` is exact here.
                            st.left = meter.take(st.left, charged);
                            // A helper may have handed the program new regions.
                            st.set_hot(env.regions.hot());
                            enter!(next);
                        }
                        Step::Exit(out) => return Ok(out),
                    }
                }
            }
        }
    }

    if let Some(trap) = meter.stop_trap(st.left) {
        return Err(trap);
    }
    // The reference loop: one instruction at a time, the budget checked before each. It runs a
    // whole program that `prepare` could not vouch for, and otherwise the last, partial segment.
    // Counting, it enters a segment at its start and after each instruction that ends one (the
    // fast loop has counted the segment it left in).
    let mut segments = coverage
        .as_deref()
        .filter(|_| COUNT)
        .map(|counters| Segments {
            ops: &p.ops,
            counters,
            fresh: !p.fast,
        });
    let (insns, left) = (&p.insns[..], st.left);
    reference_loop(
        insns,
        pc,
        &mut st.reg,
        &mut frames,
        env,
        &mut meter,
        left,
        &mut segments,
    )
}

/// The interpreter's coverage in the reference loop: an entry where a segment starts (after an
/// instruction that ends one, or at the loop's first instruction when the fast loop ran none of
/// it), and each conditional jump's fall-through.
struct Segments<'a> {
    ops: &'a [Op],
    counters: &'a CoverageCounters,
    fresh: bool,
}

impl Counting for Segments<'_> {
    fn arrive(&mut self, pc: usize) {
        if self.fresh {
            self.counters.enter(pc);
        }
    }

    fn run(&mut self, pc: usize, insn: &Insn, reg: &[u64; 16]) {
        self.fresh = self.ops[pc].ends_segment & ENDS != 0;
        if is_cond_jump(insn) && !taken(insn, reg) {
            self.counters.fall_through(pc);
        }
    }
}
