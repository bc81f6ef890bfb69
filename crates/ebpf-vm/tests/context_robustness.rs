//! Random programs heavy in context traffic (loads and stores through r1 and copies of it, spills,
//! jumps, local calls, function pointers, the type's helpers) loaded as every program type and
//! run in checked mode: loading and running give a result or a typed error, never a panic or a
//! hang, and nothing outside the run's memory is touched (checked mode traps first).

mod rng;
use rng::{Random, XorShift as Rng};
mod context_support;

use context_support::*;
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::Insn;
use ebpf_vm::{ContextInput, ProgramType, RunInput};

fn random_program(rng: &mut Rng, len: usize) -> Vec<Insn> {
    let sizes = [SIZE_B, SIZE_H, SIZE_W, SIZE_DW];
    let regs = [0u8, 1, 2, 3, 6, 7];
    let offs = [
        0i16, 4, 8, 12, 16, 20, 24, 32, 40, 48, 52, 68, 76, 80, 140, 144, 188, 192, -8, -16,
    ];
    // Not the spin locks: a random word that is not 0 is waited for (a second) before failing.
    let helpers = [
        6, 9, 10, 11, 12, 14, 18, 19, 23, 25, 26, 28, 31, 32, 34, 38, 39, 40, 41, 43, 44, 48, 50,
        54, 65, 97, 105, 165, 181,
    ];
    let mut v = Vec::new();
    while v.len() < len {
        let left = (len - v.len()) as i64;
        match rng.below(12) {
            0 => v.push(movr(rng.pick(&regs), rng.pick(&regs))),
            1 => v.push(ldx(
                rng.pick(&sizes),
                rng.pick(&regs),
                rng.pick(&[1, 6, 2, 10]),
                rng.pick(&offs),
            )),
            2 => v.push(stx(
                rng.pick(&sizes),
                rng.pick(&[1, 6, 2, 10]),
                rng.pick(&regs),
                rng.pick(&offs),
            )),
            3 => v.push(st(
                rng.pick(&sizes),
                rng.pick(&[1, 10]),
                rng.pick(&offs),
                rng.next() as i32,
            )),
            4 => v.push(stx(SIZE_DW, 10, rng.pick(&[1, 6]), -8)),
            5 => v.push(ldx(SIZE_DW, rng.pick(&[1, 6, 7]), 10, -8)),
            6 => v.push(mov(rng.pick(&regs[..]), rng.below(64) as i32 - 8)),
            7 if left > 2 => v.push(ji(
                JMP_JGT,
                rng.pick(&regs),
                rng.below(4) as i32,
                rng.below(left as u64 - 1) as i16,
            )),
            8 => v.push(call(rng.pick(&helpers))),
            9 if left > 2 => v.push(call_local(rng.below(left as u64 - 1) as i32)),
            10 if left > 3 => v.extend(lddw_func(2, rng.below(left as u64 - 2) as i32)),
            11 => v.push(add(rng.pick(&regs), rng.below(16) as i32)),
            _ => v.push(exit()),
        }
    }
    v.truncate(len);
    // No lddw cut in half at the end, and an exit to finish.
    if v.len() >= 2 && v[v.len() - 2].opcode == OP_LDDW {
        v.truncate(v.len() - 2);
    }
    v.push(exit());
    v
}

#[test]
fn random_context_programs_load_and_run_without_panics() {
    let mut rng = Rng(0x5eed_c0de_1234_5678);
    let (mut loaded, mut ran) = (0, 0);
    // 4,000 cases: loading applies the kernel's subprogram rules (a function ends in exit or a
    // jump, no jump leaves it), which many random local calls and function pointers break.
    for case in 0..4000 {
        let insns = random_program(&mut rng, 4 + (case % 40));
        for t in [
            ProgramType::Raw,
            ProgramType::SocketFilter,
            ProgramType::Tc,
            ProgramType::Xdp,
            ProgramType::Tracing,
        ] {
            let Ok(p) = load(&insns, t) else { continue };
            loaded += 1;
            let mut data = vec![0x5au8; 64];
            let ctx = [7u8; 24];
            let r = p.run_with_context(
                &mut RunInput {
                    data: &mut data,
                    budget: Some(5_000),
                },
                &ContextInput {
                    ctx: Some(&ctx),
                    ..ContextInput::default()
                },
            );
            ran += r.is_ok() as u32;
        }
    }
    // The generator must exercise both outcomes.
    assert!(loaded > 1000, "only {loaded} programs loaded");
    assert!(ran > 100, "only {ran} runs ended normally");
}
