//! Scalar tracking against the live kernel (Linux 6.18): random sequences of ALU operations and
//! a final conditional jump, on scalars read from a socket filter's context, are loaded into the
//! kernel with a level-2 log, and after every instruction the state the kernel printed for the
//! destination register must be the one we compute with `verifier::alu`, and on both sides of
//! the jump the states `verifier::branch` computes (or the same decided outcome).
//!
//! Ids and precision marks are left out of the comparison: they belong to the path walk, which
//! these tests do not exercise. Skips, saying why, where the kernel cannot be asked.

mod rng;
mod verifier_support;

use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::Insn;
use ebpf_vm::verifier::alu;
use ebpf_vm::verifier::branch::{self, Taken};
use ebpf_vm::verifier::log::reg_state;
use ebpf_vm::verifier::{Bounds, RegState};
use rng::{Random, Rng};
use verifier_support::*;

/// The scalar registers the programs work on: r2-r5 start unknown (32-bit context fields),
/// r6 and r7 hold constants.
const WORK: [u8; 6] = [2, 3, 4, 5, 6, 7];

/// A 32-bit context field of `__sk_buff` as the kernel types it: unknown, zero-extended.
fn ctx_u32() -> Bounds {
    let mut b = Bounds::UNKNOWN;
    b.coerce_to_size(4);
    b
}

/// Immediates that exercise the edges: small, sign boundaries, powers of two, all ones.
const IMMS: [i32; 16] = [
    1,
    2,
    3,
    7,
    8,
    100,
    255,
    256,
    -1,
    -2,
    -100,
    0x7fff_ffff,
    i32::MIN,
    0x1000,
    0xffff,
    31,
];

struct Program {
    slots: Vec<Insn>,
    /// For each slot, the register to compare after it (None: nothing to compare).
    dst_after: Vec<Option<u8>>,
    /// Our bounds of the work registers after each slot.
    ours_after: Vec<[Bounds; 11]>,
    /// The final jump: its slot, operands and ours on each side.
    jump: usize,
    jump_regs: (u8, Option<u8>),
    taken: Taken,
    on_taken: (Bounds, Bounds),
    on_fall: (Bounds, Bounds),
}

fn random_program(rng: &mut Rng, ops: usize) -> Program {
    let mut regs = [Bounds::UNKNOWN; 11];
    let mut slots = Vec::new();
    let mut dst_after = Vec::new();
    let mut ours_after = Vec::new();
    let mut push = |slots: &mut Vec<Insn>, insn: Insn, dst: Option<u8>, regs: &[Bounds; 11]| {
        slots.push(insn);
        dst_after.push(dst);
        ours_after.push(*regs);
    };
    // Prelude: r0 set (both paths exit with it), four context fields (len, pkt_type, mark, queue_mapping), two constants.
    push(&mut slots, mov_imm(0, 0), None, &regs);
    for (i, r) in [2u8, 3, 4, 5].into_iter().enumerate() {
        regs[r as usize] = ctx_u32();
        push(
            &mut slots,
            Insn::new(0x61, r, 1, (i * 4) as i16, 0),
            Some(r),
            &regs,
        );
    }
    for r in [6u8, 7] {
        let imm = rng.pick(&IMMS);
        regs[r as usize] = alu::mov_imm(imm, false);
        push(&mut slots, mov_imm(r, imm), Some(r), &regs);
    }
    // Narrow the unknowns first so that the ranges are interesting.
    for r in [2u8, 3, 4, 5] {
        let imm = rng.pick(&[0xff, 0xfff, 0x7fff_ffff, 0xf0, 0x3]);
        regs[r as usize] = alu::scalar_alu(
            &regs[r as usize],
            &Bounds::constant(imm as u64),
            ALU_AND,
            false,
        );
        push(
            &mut slots,
            Insn::new(CLASS_ALU64 | ALU_AND, r, 0, 0, imm),
            Some(r),
            &regs,
        );
    }
    for _ in 0..ops {
        let dst = rng.pick(&WORK[..4]);
        let alu32 = rng.chance(35);
        let class = if alu32 { CLASS_ALU } else { CLASS_ALU64 };
        let d = regs[dst as usize];
        let op = rng.pick(&[
            ALU_ADD, ALU_SUB, ALU_MUL, ALU_DIV, ALU_OR, ALU_AND, ALU_LSH, ALU_RSH, ALU_NEG,
            ALU_MOD, ALU_XOR, ALU_ARSH, ALU_MOV, ALU_END, ALU_ADD, ALU_SUB, ALU_AND, ALU_OR,
        ]);
        let (insn, result) = match op {
            ALU_NEG => (
                Insn::new(class | ALU_NEG, dst, 0, 0, 0),
                alu::scalar_alu(&d, &d, ALU_NEG, alu32),
            ),
            ALU_END => {
                let bits = rng.pick(&[16u8, 32, 64]);
                let (opcode, swap) = rng.pick(&[
                    (CLASS_ALU | ALU_END, false),        // le on a little-endian machine
                    (CLASS_ALU | ALU_END | SRC_X, true), // be
                    (CLASS_ALU64 | ALU_END, true),       // bswap
                ]);
                let result = if !swap && bits == 64 {
                    alu::byte_swap(&d, 64, false)
                } else {
                    alu::byte_swap(&d, bits, swap)
                };
                (Insn::new(opcode, dst, 0, 0, bits as i32), result)
            }
            ALU_MOV => {
                // Moves that link no registers: immediates, copies of constants, and sign
                // extensions of values that do need extending (those take no id).
                let src = rng.pick(&WORK);
                let s = regs[src as usize];
                let off = if alu32 {
                    rng.pick(&[0i16, 8, 16])
                } else {
                    rng.pick(&[0i16, 8, 16, 32])
                };
                let links = if off == 0 {
                    !s.var_off.is_const() && (!alu32 || s.umax <= u32::MAX as u64)
                } else {
                    s.umax < 1u64 << (off - 1)
                };
                if links {
                    let imm = rng.pick(&IMMS);
                    (
                        Insn::new(class | ALU_MOV, dst, 0, 0, imm),
                        alu::mov_imm(imm, alu32),
                    )
                } else {
                    (
                        Insn::new(class | ALU_MOV | SRC_X, dst, src, off, 0),
                        alu::mov(&s, off, alu32),
                    )
                }
            }
            _ => {
                let width = if alu32 { 32 } else { 64 };
                let shift = matches!(op, ALU_LSH | ALU_RSH | ALU_ARSH);
                if rng.chance(50) {
                    let src = rng.pick(&WORK);
                    let s = regs[src as usize];
                    (
                        Insn::new(class | op | SRC_X, dst, src, 0, 0),
                        alu::scalar_alu(&d, &s, op, alu32),
                    )
                } else {
                    let mut imm = rng.pick(&IMMS);
                    if shift {
                        imm = rng.range(0, width - 1) as i32;
                    }
                    if matches!(op, ALU_DIV | ALU_MOD) && imm == 0 {
                        imm = 3;
                    }
                    let s = alu::mov_imm(imm, false);
                    (
                        Insn::new(class | op, dst, 0, 0, imm),
                        alu::scalar_alu(&d, &s, op, alu32),
                    )
                }
            }
        };
        regs[dst as usize] = result;
        push(&mut slots, insn, Some(dst), &regs);
    }
    // The jump, then `r0 = 0` on the fall-through and `exit` for both.
    let jmp32 = rng.chance(40);
    let class = if jmp32 { CLASS_JMP32 } else { CLASS_JMP };
    let op = rng.pick(&[
        JMP_JEQ, JMP_JNE, JMP_JGT, JMP_JGE, JMP_JLT, JMP_JLE, JMP_JSGT, JMP_JSGE, JMP_JSLT,
        JMP_JSLE, JMP_JSET,
    ]);
    let a = rng.pick(&WORK[..4]);
    let (insn, b_reg, b) = if rng.chance(50) {
        // Another register: the kernel decides a comparison of a register with itself (or
        // with a linked copy) from the ids, which is the path walk's business.
        let others: Vec<u8> = WORK.iter().copied().filter(|&r| r != a).collect();
        let src = rng.pick(&others);
        (
            Insn::new(class | op | SRC_X, a, src, 1, 0),
            Some(src),
            regs[src as usize],
        )
    } else {
        let imm = rng.pick(&IMMS);
        (
            Insn::new(class | op, a, 0, 1, imm),
            None,
            Bounds::constant(imm as i64 as u64),
        )
    };
    let jump = slots.len();
    let av = regs[a as usize];
    let taken = branch::branch_taken(&av, &b, op, jmp32);
    let (on_taken, on_fall) = branch::refine(&av, &b, op, jmp32);
    push(&mut slots, insn, None, &regs);
    push(&mut slots, mov_imm(0, 0), None, &regs);
    push(&mut slots, exit(), None, &regs);
    Program {
        slots,
        dst_after,
        ours_after,
        jump,
        jump_regs: (a, b_reg),
        taken,
        on_taken,
        on_fall,
    }
}

fn printed(b: &Bounds) -> String {
    reg_state(&RegState::scalar(*b), 0)
}

fn disasm(p: &Program, upto: usize) -> String {
    p.slots[..=upto.min(p.slots.len() - 1)]
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!(
                "{i}: {:02x} dst={} src={} off={} imm={}\n",
                s.opcode, s.dst, s.src, s.off, s.imm
            )
        })
        .collect()
}

/// Compares one program; returns the first disagreement.
fn compare(p: &Program) -> Result<(), String> {
    let v = load(SOCKET_FILTER, &p.slots, &[])?;
    if !v.accepted {
        return Err(format!(
            "the kernel rejected the program ({:?}):\n{}",
            v.errno, v.log
        ));
    }
    // A state the kernel split in two (it forks a scalar of range [-1, 0] at an AND, and
    // explores each value alone) is no longer the state of the straight line.
    let forked = (0..p.slots.len()).find(|&k| v.log.contains(&format!("from {k} to {k}: ")));
    for (slot, dst) in p.dst_after.iter().enumerate() {
        let Some(dst) = *dst else { continue };
        if forked.is_some_and(|k| slot >= k) {
            return Ok(());
        }
        let state = state_after(&v.log, slot).ok_or_else(|| format!("no state after {slot}"))?;
        let kernel = bounds_only(
            &reg(&state, dst).ok_or_else(|| format!("R{dst} not printed after {slot}"))?,
        );
        let ours = printed(&p.ours_after[slot][dst as usize]);
        if kernel != ours {
            return Err(format!(
                "after slot {slot}, R{dst}:\n kernel {kernel}\n ours   {ours}\nprogram:\n{}\nkernel log:\n{}",
                disasm(p, slot),
                v.log
            ));
        }
    }
    // The jump.
    let (a, b) = p.jump_regs;
    let fall_visited = visited(&v.log, p.jump + 1);
    let taken_state = branch_state(&v.log, p.jump, p.jump + 2);
    let kernel_taken = match (fall_visited, &taken_state) {
        (true, Some(_)) => Taken::Unknown,
        (true, None) => Taken::Never,
        (false, _) => Taken::Always,
    };
    if kernel_taken != p.taken {
        return Err(format!(
            "jump at {}: kernel {kernel_taken:?}, ours {:?}\nprogram:\n{}\nlog:\n{}",
            p.jump,
            p.taken,
            disasm(p, p.jump),
            v.log
        ));
    }
    if kernel_taken == Taken::Unknown {
        let fall = state_after(&v.log, p.jump).unwrap_or_default();
        let taken = taken_state.unwrap_or_default();
        for (side, state, (oa, ob)) in [
            ("fall-through", &fall, p.on_fall),
            ("taken", &taken, p.on_taken),
        ] {
            let mut pairs = vec![(a, oa)];
            if let Some(b) = b {
                if b != a {
                    pairs.push((b, ob));
                }
            }
            for (r, ours) in pairs {
                let kernel = reg(state, r).map(|s| bounds_only(&s)).unwrap_or_default();
                if kernel != printed(&ours) {
                    return Err(format!(
                        "jump at {}, {side} branch, R{r}:\n kernel {kernel}\n ours   {}\nprogram:\n{}\nlog:\n{}",
                        p.jump,
                        printed(&ours),
                        disasm(p, p.jump),
                        v.log
                    ));
                }
            }
        }
    }
    Ok(())
}

#[test]
fn alu_and_branch_states_match_the_kernel() {
    kernel_or_skip!();
    // The long form: VERIFIER_KERNEL_PROGRAMS=N (and VERIFIER_KERNEL_SEED) for more programs.
    let programs: usize = std::env::var("VERIFIER_KERNEL_PROGRAMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let seed: u64 = std::env::var("VERIFIER_KERNEL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_0001);
    let mut rng = Rng::new(seed);
    let mut failures = Vec::new();
    for n in 0..programs {
        let p = random_program(&mut rng, 10);
        if let Err(e) = compare(&p) {
            failures.push(format!("program {n}: {e}"));
        }
    }
    let report =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("verifier_kernel_failures.txt");
    let _ = std::fs::write(&report, failures.join("\n\n"));
    assert!(
        failures.is_empty(),
        "{} of {programs} programs disagree:\n{}\nthe first in full:\n{}",
        failures.len(),
        failures
            .iter()
            .map(|f| f.lines().take(3).collect::<Vec<_>>().join("\n"))
            .collect::<Vec<_>>()
            .join("\n"),
        failures[0]
    );
}
