//! The JIT against an independent implementation: the `rbpf` crate's interpreter, on the part of
//! the instruction set rbpf 0.4 implements as RFC 9669 says (unsigned ALU incl. division by zero,
//! shifts, byte order, jumps forward, loads/stores on the data and the stack). Where rbpf deviates
//! (64-bit `neg` of INT64_MIN overflows, 64-bit unsigned jumps zero-extend their immediate, 32-bit
//! modulo by zero keeps the upper half), the
//! generator stays away. Random programs,
//! r0 and the final data bytes must match. `DIFF_CASES` scales it like `differential.rs`.
#![cfg(target_arch = "x86_64")]

mod rng;
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::{encode_all, Insn};
use ebpf_vm::{Engine, Program, ProgramOptions, RunInput};
use rng::{Random, Rng};

const DATA_LEN: i16 = 32;
/// Registers that hold values: r1 is the data pointer and r10 the stack pointer, so neither is
/// ever an operand (their values differ between the two runtimes).
const VALUE_REGS: [u8; 9] = [0, 2, 3, 4, 5, 6, 7, 8, 9];

fn imm(r: &mut Rng) -> i32 {
    match r.below(6) {
        0 => 0,
        1 => -1,
        2 => i32::MIN,
        3 => (r.below(70) as i32) - 3,
        _ => r.next() as i32,
    }
}

fn generate(r: &mut Rng) -> Vec<Insn> {
    let mut p = Vec::new();
    for &d in &VALUE_REGS {
        let (a, b) = (r.next(), r.next());
        let v = r.pick(&[0, 1, u64::MAX, 1 << 63, 0xffff_ffff, a, b]);
        p.push(Insn::new(OP_LDDW, d, 0, 0, v as u32 as i32));
        p.push(Insn::new(0, 0, 0, 0, (v >> 32) as i32));
    }
    // Fill the eight stack slots the body uses: rbpf's stack is not zeroed like ours.
    for slot in 1..=8i16 {
        p.push(Insn::new(
            CLASS_STX | MODE_MEM | SIZE_DW,
            10,
            r.pick(&VALUE_REGS),
            -8 * slot,
            0,
        ));
    }
    let n = 5 + r.below(40) as usize;
    let body_start = p.len();
    for k in 0..n {
        let d = r.pick(&VALUE_REGS);
        let s = r.pick(&VALUE_REGS);
        let insn = match r.below(10) {
            0..=4 => {
                let class = r.pick(&[CLASS_ALU, CLASS_ALU64]);
                let op = r.pick(&[
                    ALU_ADD, ALU_SUB, ALU_MUL, ALU_DIV, ALU_OR, ALU_AND, ALU_LSH, ALU_RSH, ALU_NEG,
                    ALU_MOD, ALU_XOR, ALU_MOV, ALU_ARSH,
                ]);
                if op == ALU_NEG {
                    // rbpf's 64-bit neg overflows (panics in debug builds) on INT64_MIN: 32-bit only.
                    Insn::new(CLASS_ALU | op, d, 0, 0, 0)
                } else if class == CLASS_ALU && op == ALU_MOD {
                    // rbpf leaves the upper half of dst on 32-bit modulo by zero (RFC 9669
                    // zero-extends): 32-bit modulo gets a non-zero immediate divisor only.
                    Insn::new(class | op, d, 0, 0, imm(r) | 1)
                } else if r.below(2) == 0 {
                    Insn::new(class | op | SRC_X, d, s, 0, 0)
                } else {
                    let k = if matches!(op, ALU_LSH | ALU_RSH | ALU_ARSH) {
                        r.below(if class == CLASS_ALU { 32 } else { 64 }) as i32
                    } else {
                        imm(r)
                    };
                    Insn::new(class | op, d, 0, 0, k)
                }
            }
            5 => Insn::new(
                CLASS_ALU | ALU_END | r.pick(&[SRC_K, SRC_X]),
                d,
                0,
                0,
                r.pick(&[16, 32, 64]),
            ),
            6 => {
                // Forward conditional jump, staying inside the body (the exit is at body end).
                let class = r.pick(&[CLASS_JMP, CLASS_JMP32]);
                let op = r.pick(&[
                    JMP_JEQ, JMP_JGT, JMP_JGE, JMP_JSET, JMP_JNE, JMP_JSGT, JMP_JSGE, JMP_JLT,
                    JMP_JLE, JMP_JSLT, JMP_JSLE,
                ]);
                let off = r.below((n - k) as u64) as i16;
                if r.below(2) == 0 {
                    Insn::new(class | op | SRC_X, d, s, off, 0)
                } else {
                    // rbpf 0.4 zero-extends the immediate of 64-bit unsigned comparisons (RFC 9669
                    // sign-extends it), so those get non-negative immediates only.
                    let unsigned = !matches!(op, JMP_JSGT | JMP_JSGE | JMP_JSLT | JMP_JSLE);
                    let k = imm(r);
                    let k = if class == CLASS_JMP && unsigned {
                        k & i32::MAX
                    } else {
                        k
                    };
                    Insn::new(class | op, d, 0, off, k)
                }
            }
            7 => {
                let (sz, size) = r.pick(&[(SIZE_B, 1i16), (SIZE_H, 2), (SIZE_W, 4), (SIZE_DW, 8)]);
                let off = r.below((DATA_LEN - size + 1) as u64) as i16;
                match r.below(3) {
                    0 => Insn::new(CLASS_LDX | MODE_MEM | sz, d, 1, off, 0),
                    1 => Insn::new(CLASS_STX | MODE_MEM | sz, 1, s, off, 0),
                    _ => Insn::new(CLASS_ST | MODE_MEM | sz, 1, 0, off, imm(r)),
                }
            }
            _ => {
                let off = -8 * (1 + r.below(8) as i16);
                if r.below(2) == 0 {
                    Insn::new(CLASS_STX | MODE_MEM | SIZE_DW, 10, s, off, 0)
                } else {
                    Insn::new(CLASS_LDX | MODE_MEM | SIZE_DW, d, 10, off, 0)
                }
            }
        };
        p.push(insn);
    }
    debug_assert!(p.len() == body_start + n);
    p.push(Insn::new(OP_EXIT, 0, 0, 0, 0));
    p
}

#[test]
fn jit_agrees_with_rbpf() {
    let cases: u64 = std::env::var("DIFF_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    for seed in 1..=cases {
        let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let insns = generate(&mut r);
        let code = encode_all(&insns);
        let init: Vec<u8> = (0..DATA_LEN).map(|_| r.next() as u8).collect();

        let mut rbpf_data = init.clone();
        let vm = rbpf::EbpfVmRaw::new(Some(&code)).expect("rbpf accepts the program");
        let want = vm
            .execute_program(&mut rbpf_data)
            .expect("rbpf runs the program");

        let prog = Program::load(
            &code,
            ProgramOptions {
                engine: Engine::Jit,
                ..ProgramOptions::default()
            },
        )
        .expect("program loads");
        let mut data = init.clone();
        let got = prog
            .run(&mut RunInput {
                data: &mut data,
                budget: None,
            })
            .unwrap_or_else(|t| panic!("seed {seed}: JIT trapped: {t}"));
        if got.r0 != want {
            let interp = Program::load(
                &code,
                ProgramOptions {
                    engine: Engine::Interpreter,
                    ..ProgramOptions::default()
                },
            )
            .unwrap()
            .run(&mut RunInput {
                data: &mut init.clone(),
                budget: None,
            });
            panic!(
                "seed {seed}: r0 differs: rbpf {want:#x}, jit {:#x}, interpreter {interp:x?}\n{}",
                got.r0,
                insns
                    .iter()
                    .enumerate()
                    .map(|(k, i)| format!("{k}: {i:?}\n"))
                    .collect::<String>()
            );
        }
        assert_eq!(data, rbpf_data, "seed {seed}: data differs\n{insns:#?}");
    }
}
