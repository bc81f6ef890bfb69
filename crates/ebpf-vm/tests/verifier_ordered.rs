//! Load-acquire and store-release (`STX | ATOMIC` with imm `BPF_LOAD_ACQ` 0x100 and
//! `BPF_STORE_REL` 0x110, any of the four sizes; Linux 6.15, cpu v4) end to end.
//!
//! Oracles: the live kernel (Linux 6.18 on this machine, `verifier_support/kernel_load.c`): its
//! verdict, errno, rejection message and every instruction line of its level-2 log (the text
//! of the instruction and the state after it) for each program below; and for the accepted tc
//! programs the return value of its `BPF_PROG_TEST_RUN` on a set of packets, which both
//! engines must give in verified and in checked mode. Traps of checked mode (misaligned and
//! out-of-bounds accesses, which the kernel refuses at load) by hand.

mod common;
mod verifier_support;

use common::{bytes, exit, i, lddw, mov64_imm, mov64_reg};
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::Insn;
use ebpf_vm::{Engine, Mode, Program, ProgramOptions, ProgramType, RunInput, TrapKind};
use verifier_support::compare::check;
use verifier_support::{load_and_run, KPROBE, SCHED_CLS, SOCKET_FILTER, XDP};

const B: u8 = SIZE_B;
const H: u8 = SIZE_H;
const W: u8 = SIZE_W;
const DW: u8 = SIZE_DW;

/// `dst = load_acquire((size *)(src + off))`.
fn acquire(size: u8, dst: u8, src: u8, off: i16) -> Insn {
    i(
        CLASS_STX | MODE_ATOMIC | size,
        dst,
        src,
        off,
        ATOMIC_LOAD_ACQ,
    )
}

/// `store_release((size *)(dst + off), src)`.
fn release(size: u8, dst: u8, off: i16, src: u8) -> Insn {
    i(
        CLASS_STX | MODE_ATOMIC | size,
        dst,
        src,
        off,
        ATOMIC_STORE_REL,
    )
}

fn stx(size: u8, dst: u8, off: i16, src: u8) -> Insn {
    i(CLASS_STX | MODE_MEM | size, dst, src, off, 0)
}

fn ldx(size: u8, dst: u8, src: u8, off: i16) -> Insn {
    i(CLASS_LDX | MODE_MEM | size, dst, src, off, 0)
}

fn concat(parts: &[&[Insn]]) -> Vec<Insn> {
    parts.iter().flat_map(|p| p.iter().copied()).collect()
}

/// `r0 = map value (or null)` of array map 0 (4-byte key 0). Clobbers r1-r5.
fn lookup0() -> Vec<Insn> {
    let map = i(OP_LDDW, 1, 1, 0, 0);
    vec![
        i(CLASS_ST | MODE_MEM | W, FP, 0, -4, 0),
        mov64_reg(2, FP),
        i(CLASS_ALU64 | ALU_ADD, 2, 0, 0, -4),
        map,
        i(0, 0, 0, 0, 0),
        i(OP_CALL, 0, 0, 0, 1),
    ]
}

/// XDP: r2 = data, r3 = data_end, r4 = data + 8; past data_end skips the next instruction.
fn packet_checked() -> Vec<Insn> {
    vec![
        ldx(W, 2, 1, 0),
        ldx(W, 3, 1, 4),
        mov64_reg(4, 2),
        i(CLASS_ALU64 | ALU_ADD, 4, 0, 0, 8),
        i(CLASS_JMP | JMP_JGT | SRC_X, 4, 3, 1, 0),
    ]
}

const ARRAY_4_8: &str = "2:4:8:4";
const ARRAY_4_64: &str = "2:4:64:4";

/// tc programs whose result the kernel's test run gives: `skb->len` and constants moved
/// through the stack by load-acquires and store-releases of every size.
fn run_programs() -> Vec<(&'static str, Vec<Insn>)> {
    let k = lddw(7, 0x1122_3344_5566_7788);
    vec![
        (
            "every_size_through_the_stack",
            concat(&[
                &[ldx(W, 6, 1, 0)],
                &k,
                &[
                    stx(DW, FP, -8, 7),
                    release(B, FP, -8, 6),
                    release(H, FP, -6, 6),
                    release(W, FP, -16, 7),
                    acquire(DW, 0, FP, -8),
                    acquire(W, 1, FP, -16),
                    i(CLASS_ALU64 | ALU_XOR | SRC_X, 0, 1, 0, 0),
                    acquire(H, 2, FP, -4),
                    i(CLASS_ALU64 | ALU_ADD | SRC_X, 0, 2, 0, 0),
                    acquire(B, 3, FP, -7),
                    i(CLASS_ALU64 | ALU_LSH, 3, 0, 0, 24),
                    i(CLASS_ALU64 | ALU_ADD | SRC_X, 0, 3, 0, 0),
                    exit(),
                ],
            ]),
        ),
        (
            "acquire_zero_extends",
            concat(&[
                &[mov64_imm(2, -1), stx(DW, FP, -8, 2)],
                &[
                    acquire(B, 0, FP, -8),
                    acquire(H, 3, FP, -8),
                    i(CLASS_ALU64 | ALU_ADD | SRC_X, 0, 3, 0, 0),
                    acquire(W, 3, FP, -8),
                    i(CLASS_ALU64 | ALU_RSH, 3, 0, 0, 16),
                    i(CLASS_ALU64 | ALU_ADD | SRC_X, 0, 3, 0, 0),
                    exit(),
                ],
            ]),
        ),
        (
            "release_stores_the_low_bytes",
            concat(&[
                &[
                    ldx(W, 6, 1, 0),
                    i(CLASS_ALU64 | ALU_MUL, 6, 0, 0, 0x0101_0101),
                ],
                &[
                    stx(DW, FP, -8, 6),
                    mov64_imm(2, 0),
                    stx(DW, FP, -16, 2),
                    release(H, FP, -16, 6),
                    release(B, FP, -13, 6),
                    ldx(W, 0, FP, -16),
                    exit(),
                ],
            ]),
        ),
        (
            "filled_pointer_is_dereferenced",
            vec![
                mov64_imm(2, 0x2a),
                stx(DW, FP, -16, 2),
                mov64_reg(3, FP),
                i(CLASS_ALU64 | ALU_ADD, 3, 0, 0, -16),
                stx(DW, FP, -8, 3),
                acquire(DW, 4, FP, -8),
                acquire(W, 0, 4, 0),
                exit(),
            ],
        ),
    ]
}

/// Packets for the test runs: Ethernet-sized and longer, so `skb->len` varies.
fn packets() -> Vec<Vec<u8>> {
    [14usize, 15, 60, 64, 255, 256, 300, 1500]
        .iter()
        .map(|&n| (0..n).map(|k| (k * 7 + 3) as u8).collect())
        .collect()
}

fn ours(insns: &[Insn], engine: Engine, mode: Mode) -> Program {
    Program::load(
        &bytes(insns),
        ProgramOptions {
            prog_type: ProgramType::Tc,
            engine,
            mode,
            ..ProgramOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{engine:?} {mode:?}: {e:?}"))
}

#[test]
fn tc_programs_return_what_the_kernels_test_run_returns_on_both_engines() {
    kernel_or_skip!();
    let packets = packets();
    for (name, insns) in run_programs() {
        check(name, SCHED_CLS, &insns, &[]);
        let (verdict, runs) = load_and_run(SCHED_CLS, &insns, &[], &packets).expect("loader");
        assert!(verdict.accepted, "{name}: {}", verdict.log);
        assert_eq!(runs.len(), packets.len(), "{name}");
        for engine in [Engine::Interpreter, Engine::Jit] {
            for mode in [Mode::Verified, Mode::Checked] {
                let p = ours(&insns, engine, mode);
                for (packet, kernel) in packets.iter().zip(&runs) {
                    let kernel = kernel.clone().unwrap_or_else(|e| panic!("{name}: {e}"));
                    let mut data = packet.clone();
                    let out = p
                        .run(&mut RunInput {
                            data: &mut data,
                            budget: None,
                        })
                        .unwrap_or_else(|t| panic!("{name} {engine:?} {mode:?}: {t:?}"));
                    assert_eq!(
                        out.r0 as u32,
                        kernel,
                        "{name} {engine:?} {mode:?} on {} bytes",
                        packet.len()
                    );
                }
            }
        }
    }
}

#[test]
fn verdicts_messages_and_states_are_the_kernels() {
    kernel_or_skip!();
    let init = [mov64_imm(1, 7), stx(DW, FP, -8, 1)];
    let ret0 = [mov64_imm(0, 0), exit()];
    let cases: Vec<(&str, u32, Vec<Insn>, &[&str])> = vec![
        // Every size on the stack, both directions.
        (
            "stack_sizes",
            SOCKET_FILTER,
            concat(&[
                &init,
                &[
                    acquire(B, 0, FP, -8),
                    acquire(H, 2, FP, -6),
                    acquire(W, 3, FP, -4),
                    acquire(DW, 4, FP, -8),
                    release(B, FP, -16, 0),
                    release(H, FP, -14, 2),
                    release(W, FP, -12, 3),
                    release(DW, FP, -24, 4),
                ],
                &ret0,
            ]),
            &[],
        ),
        // An uninitialised stack slot (privileged: allowed, the value unknown).
        (
            "stack_uninit",
            SOCKET_FILTER,
            concat(&[&[acquire(W, 0, FP, -16)], &[exit()]]),
            &[],
        ),
        // Misaligned, whatever the size: refused (strict alignment for atomics).
        (
            "stack_misaligned_acquire",
            SOCKET_FILTER,
            concat(&[&init, &[acquire(W, 0, FP, -6)], &ret0]),
            &[],
        ),
        (
            "stack_misaligned_release",
            SOCKET_FILTER,
            concat(&[&init, &[release(H, FP, -7, 1)], &ret0]),
            &[],
        ),
        (
            "stack_out_of_frame",
            SOCKET_FILTER,
            concat(&[&init, &[acquire(DW, 0, FP, 0)], &ret0]),
            &[],
        ),
        // A spilled pointer comes back whole; a part of it is a scalar.
        (
            "stack_pointer_fill",
            SOCKET_FILTER,
            concat(&[
                &[stx(DW, FP, -8, FP), acquire(DW, 2, FP, -8)],
                &[ldx(DW, 0, 2, -8), exit()],
            ]),
            &[],
        ),
        (
            "stack_pointer_partial_fill",
            SOCKET_FILTER,
            concat(&[&[stx(DW, FP, -8, FP), acquire(W, 0, FP, -8)], &[exit()]]),
            &[],
        ),
        (
            "stack_pointer_spilled_by_release",
            SOCKET_FILTER,
            concat(&[
                &[mov64_reg(2, FP), release(DW, FP, -8, 2), ldx(DW, 3, FP, -8)],
                &[mov64_imm(0, 1), stx(DW, 3, -16, 0)],
                &ret0,
            ]),
            &[],
        ),
        // Map values: after the null check, in bounds, aligned.
        (
            "map_value",
            SOCKET_FILTER,
            concat(&[
                &lookup0(),
                &[
                    i(CLASS_JMP | JMP_JEQ, 0, 0, 3, 0),
                    acquire(W, 1, 0, 4),
                    release(DW, 0, 0, 1),
                    acquire(B, 1, 0, 7),
                ],
                &ret0,
            ]),
            &[ARRAY_4_8],
        ),
        (
            // An array lookup with a constant key in range is not null in 6.18.
            "array_value_constant_key_not_null",
            XDP,
            concat(&[&lookup0(), &[acquire(W, 1, 0, 0)], &ret0]),
            &[ARRAY_4_8],
        ),
        (
            "map_value_past_end",
            KPROBE,
            concat(&[
                &lookup0(),
                &[i(CLASS_JMP | JMP_JEQ, 0, 0, 1, 0), release(DW, 0, 8, 1)],
                &ret0,
            ]),
            &[ARRAY_4_8],
        ),
        (
            "map_value_misaligned",
            SOCKET_FILTER,
            concat(&[
                &lookup0(),
                &[i(CLASS_JMP | JMP_JEQ, 0, 0, 1, 0), acquire(W, 1, 0, 2)],
                &ret0,
            ]),
            &[ARRAY_4_8],
        ),
        // The loaded byte is [0, 255]: too far for a 64-byte value.
        (
            "map_value_index_by_acquired_byte",
            SOCKET_FILTER,
            concat(&[
                &lookup0(),
                &[
                    i(CLASS_JMP | JMP_JEQ, 0, 0, 4, 0),
                    acquire(B, 1, 0, 0),
                    i(CLASS_ALU64 | ALU_ADD | SRC_X, 0, 1, 0, 0),
                    ldx(B, 2, 0, 0),
                    acquire(H, 2, 0, 0),
                ],
                &ret0,
            ]),
            &[ARRAY_4_64],
        ),
        (
            "map_value_index_by_masked_byte",
            SOCKET_FILTER,
            concat(&[
                &lookup0(),
                &[
                    i(CLASS_JMP | JMP_JEQ, 0, 0, 4, 0),
                    acquire(B, 1, 0, 0),
                    i(CLASS_ALU64 | ALU_AND, 1, 0, 0, 0x38),
                    i(CLASS_ALU64 | ALU_ADD | SRC_X, 0, 1, 0, 0),
                    acquire(DW, 2, 0, 0),
                ],
                &ret0,
            ]),
            &[ARRAY_4_64],
        ),
        // The context, packets and scalars are refused.
        (
            "ctx_acquire",
            SOCKET_FILTER,
            concat(&[&[acquire(W, 0, 1, 0)], &[exit()]]),
            &[],
        ),
        (
            "ctx_release",
            KPROBE,
            concat(&[&[mov64_imm(2, 0), release(DW, 1, 0, 2)], &ret0]),
            &[],
        ),
        (
            "packet_acquire",
            XDP,
            concat(&[&packet_checked(), &[acquire(W, 5, 2, 0)], &ret0]),
            &[],
        ),
        (
            "packet_release",
            XDP,
            concat(&[&packet_checked(), &[release(B, 2, 0, 4)], &ret0]),
            &[],
        ),
        (
            "scalar_acquire",
            SOCKET_FILTER,
            concat(&[&[mov64_imm(2, 4096), acquire(W, 0, 2, 0)], &[exit()]]),
            &[],
        ),
        // Uninitialised registers.
        (
            "uninit_source",
            SOCKET_FILTER,
            concat(&[&[release(W, FP, -8, 5)], &ret0]),
            &[],
        ),
        (
            "uninit_base",
            SOCKET_FILTER,
            concat(&[&[acquire(W, 0, 5, 0)], &[exit()]]),
            &[],
        ),
    ];
    for (name, prog_type, insns, maps) in cases {
        check(name, prog_type, &insns, maps);
    }
}

#[test]
fn checked_mode_traps_misaligned_and_stray_accesses_on_both_engines() {
    for engine in [Engine::Interpreter, Engine::Jit] {
        let run = |insns: &[Insn]| {
            let p = Program::load(
                &bytes(insns),
                ProgramOptions {
                    engine,
                    mode: Mode::Checked,
                    ..ProgramOptions::default()
                },
            )
            .expect("loads in checked mode");
            p.run(&mut RunInput {
                data: &mut [0u8; 16],
                budget: None,
            })
        };
        // Byte accesses are always aligned; the others must be (as the kernel requires).
        let init = [mov64_imm(1, 0x1234), stx(DW, FP, -8, 1)];
        let ok = run(&concat(&[&init, &[acquire(B, 0, FP, -7), exit()]])).expect("runs");
        assert_eq!(ok.r0, 0x12, "{engine:?}");
        for insns in [
            concat(&[&init, &[acquire(H, 0, FP, -7), exit()]]),
            concat(&[&init, &[release(W, FP, -6, 1), mov64_imm(0, 0), exit()]]),
            concat(&[&init, &[acquire(DW, 0, FP, -12), exit()]]),
        ] {
            let trap = run(&insns).expect_err("misaligned");
            assert_eq!(trap.kind, TrapKind::Misaligned, "{engine:?}: {trap:?}");
        }
        // Outside every region: a memory trap, before any alignment question.
        let trap = run(&[mov64_imm(2, 4096), acquire(W, 0, 2, 0), exit()]).expect_err("stray");
        assert_ne!(trap.kind, TrapKind::Misaligned, "{engine:?}: {trap:?}");
        // Store-release of r1's low half-word at fp-6, read back by a plain load.
        let stored = run(&concat(&[
            &init,
            &[release(H, FP, -6, 1), ldx(DW, 0, FP, -8), exit()],
        ]))
        .expect("runs");
        assert_eq!(stored.r0, 0x1234_1234, "{engine:?}");
    }
}
