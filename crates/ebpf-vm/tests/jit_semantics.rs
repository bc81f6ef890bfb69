//! The JIT on the edge cases where x86-64 and eBPF disagree, and on the run-time machinery
//! (budget, frames, helpers, traps, W^X). Expected values are worked out by hand from RFC 9669
//! and the interpreter's documented choices, never taken from either engine.
#![cfg(target_arch = "x86_64")]

mod common;

use common::*;
use ebpf_vm::helpers::HelperTable;
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::Insn;
use ebpf_vm::{Engine, Program, ProgramOptions, RunInput, RunOutput, Trap, TrapKind};

fn jit_r0(insns: &[Insn]) -> u64 {
    run_with(insns, Engine::Jit, &mut [], None)
        .expect("program runs")
        .r0
}

fn prog(mut head: Vec<Insn>, rest: &[Insn]) -> Vec<Insn> {
    head.extend_from_slice(rest);
    head
}

const INT64_MIN: u64 = 0x8000_0000_0000_0000;

fn sdiv64(dst: u8, src: u8) -> Insn {
    i(CLASS_ALU64 | ALU_DIV | SRC_X, dst, src, 1, 0)
}

fn smod64(dst: u8, src: u8) -> Insn {
    i(CLASS_ALU64 | ALU_MOD | SRC_X, dst, src, 1, 0)
}

#[test]
fn signed_division_overflow_does_not_fault() {
    // INT64_MIN / -1 overflows: x86 idiv would raise #DE; RFC 9669 wraps to INT64_MIN.
    let p = prog(
        lddw(0, INT64_MIN).to_vec(),
        &[mov64_imm(1, -1), sdiv64(0, 1), exit()],
    );
    assert_eq!(jit_r0(&p), INT64_MIN);
    let p = prog(
        lddw(0, INT64_MIN).to_vec(),
        &[mov64_imm(1, -1), smod64(0, 1), exit()],
    );
    assert_eq!(jit_r0(&p), 0);
    // Immediate divisor -1, 32-bit: INT32_MIN / -1 = INT32_MIN, zero-extended.
    let p = [
        alu32_imm(ALU_MOV, 0, i32::MIN),
        i(CLASS_ALU | ALU_DIV, 0, 0, 1, -1),
        exit(),
    ];
    assert_eq!(jit_r0(&p), 0x8000_0000);
    // -7 s/ 2 = -3 and -7 s% 2 = -1 (truncating division).
    let p = [mov64_imm(0, -7), mov64_imm(1, 2), sdiv64(0, 1), exit()];
    assert_eq!(jit_r0(&p), (-3i64) as u64);
    let p = [mov64_imm(0, -7), mov64_imm(1, 2), smod64(0, 1), exit()];
    assert_eq!(jit_r0(&p), (-1i64) as u64);
}

#[test]
fn division_by_zero_is_total() {
    let p = [
        mov64_imm(0, 7),
        mov64_imm(1, 0),
        alu64_reg(ALU_DIV, 0, 1),
        exit(),
    ];
    assert_eq!(jit_r0(&p), 0);
    let p = [
        mov64_imm(0, 7),
        mov64_imm(1, 0),
        alu64_reg(ALU_MOD, 0, 1),
        exit(),
    ];
    assert_eq!(jit_r0(&p), 7);
    // 32-bit modulo by zero leaves the dividend's low half, zero-extended.
    let p = prog(
        lddw(0, 0x1_0000_0007).to_vec(),
        &[alu32_imm(ALU_MOD, 0, 0), exit()],
    );
    assert_eq!(jit_r0(&p), 7);
    let p = [mov64_imm(0, -9), sdiv64(0, 1), exit()]; // r1 = 0 at entry (no data)
    assert_eq!(jit_r0(&p), 0);
    // Unsigned 64-bit division by an immediate uses the sign-extended immediate: x / (2^64 - 1).
    let p = prog(
        lddw(0, u64::MAX).to_vec(),
        &[alu64_imm(ALU_DIV, 0, -1), exit()],
    );
    assert_eq!(jit_r0(&p), 1);
}

#[test]
fn shifts_are_masked_and_32_bit_results_zero_extend() {
    // 1 << (65 & 63) = 2.
    let p = [
        mov64_imm(0, 1),
        mov64_imm(1, 65),
        alu64_reg(ALU_LSH, 0, 1),
        exit(),
    ];
    assert_eq!(jit_r0(&p), 2);
    // A 32-bit shift by 0 still clears the upper half.
    let p = prog(
        lddw(0, 0xffff_ffff_0000_0003).to_vec(),
        &[mov64_imm(1, 32), alu32_reg(ALU_LSH, 0, 1), exit()],
    );
    assert_eq!(jit_r0(&p), 3);
    // Arithmetic shift of a negative 32-bit value: 0x80000000 s>> 4 = 0xf8000000.
    let p = [
        alu32_imm(ALU_MOV, 0, i32::MIN),
        alu32_imm(ALU_ARSH, 0, 4),
        exit(),
    ];
    assert_eq!(jit_r0(&p), 0xf800_0000);
}

#[test]
fn byte_order_and_sign_extension() {
    let v = 0x0102_0304_0506_0708u64;
    let be16 = i(CLASS_ALU | ALU_END | SRC_X, 0, 0, 0, 16);
    let le32 = i(CLASS_ALU | ALU_END, 0, 0, 0, 32);
    let bswap64 = i(CLASS_ALU64 | ALU_END, 0, 0, 0, 64);
    assert_eq!(jit_r0(&prog(lddw(0, v).to_vec(), &[be16, exit()])), 0x0807);
    assert_eq!(
        jit_r0(&prog(lddw(0, v).to_vec(), &[le32, exit()])),
        0x0506_0708
    );
    assert_eq!(
        jit_r0(&prog(lddw(0, v).to_vec(), &[bswap64, exit()])),
        0x0807_0605_0403_0201
    );
    // movsx r0, (s8) 0x80 = -128; movsx32 zero-extends its 32-bit result.
    let p = [
        mov64_imm(1, 0x80),
        i(CLASS_ALU64 | ALU_MOV | SRC_X, 0, 1, 8, 0),
        exit(),
    ];
    assert_eq!(jit_r0(&p), (-128i64) as u64);
    let p = [
        mov64_imm(1, 0x8000),
        i(CLASS_ALU | ALU_MOV | SRC_X, 0, 1, 16, 0),
        exit(),
    ];
    assert_eq!(jit_r0(&p), 0xffff_8000);
}

#[test]
fn budget_ends_in_the_middle_of_a_straight_line() {
    // Ten movs and an exit: eleven instructions, one segment.
    let mut p: Vec<Insn> = (0..10).map(|k| mov64_imm(0, k)).collect();
    p.push(exit());
    let out = run_with(&p, Engine::Jit, &mut [], Some(11)).unwrap();
    assert_eq!((out.r0, out.insn_count), (9, 11));
    for budget in [0u64, 1, 4, 10] {
        let t = run_with(&p, Engine::Jit, &mut [], Some(budget)).unwrap_err();
        assert_eq!(t.kind, TrapKind::BudgetExhausted);
        assert_eq!((t.pc, t.insn_count), (budget as usize, budget));
        assert_eq!(
            t.message,
            format!("instruction budget of {budget} exhausted")
        );
    }
}

#[test]
fn infinite_loop_stops_at_the_budget() {
    // 0: r0 += 1; 1: ja -2 (back to 0). Budget 1001: 500 full iterations, then the add.
    let p = [alu64_imm(ALU_ADD, 0, 1), i(OP_JA, 0, 0, -2, 0), exit()];
    let t = run_with(&p, Engine::Jit, &mut [], Some(1001)).unwrap_err();
    assert_eq!(
        (t.kind, t.pc, t.insn_count),
        (TrapKind::BudgetExhausted, 1, 1001)
    );
}

#[test]
fn load_outside_memory_traps_with_address_and_count() {
    // r1 = data (4 bytes); ldxw r0, [r1 + 2] reads bytes 2..6: out of bounds.
    let p = [
        mov64_imm(0, 0),
        i(CLASS_LDX | MODE_MEM | SIZE_W, 0, 1, 2, 0),
        exit(),
    ];
    let mut data = [1u8, 2, 3, 4];
    let addr = data.as_ptr() as u64 + 2;
    let t = run_with(&p, Engine::Jit, &mut data, None).unwrap_err();
    assert_eq!(t.kind, TrapKind::OutOfBounds);
    assert_eq!((t.pc, t.addr, t.size, t.insn_count), (1, addr, 4, 1));
    // The same load at offset 0 is fine and little-endian.
    let p = [i(CLASS_LDX | MODE_MEM | SIZE_W, 0, 1, 0, 0), exit()];
    assert_eq!(
        run_with(&p, Engine::Jit, &mut data, None).unwrap().r0,
        0x0403_0201
    );
}

#[test]
fn stores_reach_the_data_and_the_stack_is_per_frame() {
    // main: r6 = 7; [r10-8] = r6; call sub; r0 += r6; r1 = [r10-8]; r0 += r1; [data] = r0; exit
    // sub:  r6 = 100; [r10-8] = 5 (its own frame); r0 = 1; exit
    let p = [
        mov64_imm(6, 7),
        i(CLASS_STX | MODE_MEM | SIZE_DW, 10, 6, -8, 0),
        mov64_reg(7, 1),
        i(OP_CALL, 0, CALL_LOCAL, 0, 5),
        alu64_reg(ALU_ADD, 0, 6),
        i(CLASS_LDX | MODE_MEM | SIZE_DW, 1, 10, -8, 0),
        alu64_reg(ALU_ADD, 0, 1),
        i(CLASS_STX | MODE_MEM | SIZE_B, 7, 0, 0, 0),
        exit(),
        mov64_imm(6, 100),
        i(CLASS_ST | MODE_MEM | SIZE_DW, 10, 0, -8, 5),
        mov64_imm(0, 1),
        exit(),
    ];
    let mut data = [0u8; 2];
    let out = run_with(&p, Engine::Jit, &mut data, None).unwrap();
    assert_eq!(out.r0, 15);
    // 4 in main before the call, 4 in sub, 5 after the return.
    assert_eq!(out.insn_count, 13);
    assert_eq!(data, [15, 0]);
}

#[test]
fn recursion_stops_at_eight_frames() {
    // 0: call 0 (itself). Seven calls succeed (frames 2..8), the eighth traps.
    let p = [i(OP_CALL, 0, CALL_LOCAL, 0, -1), exit()];
    let t = run_with(&p, Engine::Jit, &mut [], None).unwrap_err();
    assert_eq!((t.kind, t.pc, t.insn_count), (TrapKind::CallDepth, 0, 7));
}

#[test]
fn helpers_see_arguments_and_preserve_r1_to_r5() {
    let mut helpers = HelperTable::new();
    helpers.register(1, "sum", |_, a| Ok(a.iter().sum::<u64>() * 2));
    let p = [
        mov64_imm(1, 1),
        mov64_imm(2, 2),
        mov64_imm(3, 3),
        mov64_imm(4, 4),
        mov64_imm(5, 5),
        i(OP_CALL, 0, 0, 0, 1),
        alu64_reg(ALU_ADD, 0, 1),
        alu64_reg(ALU_ADD, 0, 2),
        alu64_reg(ALU_ADD, 0, 3),
        alu64_reg(ALU_ADD, 0, 4),
        alu64_reg(ALU_ADD, 0, 5),
        exit(),
    ];
    let prog = Program::load(
        &bytes(&p),
        ProgramOptions {
            engine: Engine::Jit,
            helpers,
            ..ProgramOptions::default()
        },
    )
    .unwrap();
    assert_eq!(prog.engine(), Engine::Jit);
    let out = prog
        .run(&mut RunInput {
            data: &mut [],
            budget: None,
        })
        .unwrap();
    assert_eq!(out.r0, 30 + 15);
}

#[test]
fn callx_to_a_non_helper_traps() {
    let p = [mov64_imm(2, 99_999), i(OP_CALLX, 2, 0, 0, 0), exit()];
    let t = run_with(&p, Engine::Jit, &mut [], None).unwrap_err();
    assert_eq!(
        (t.kind, t.pc, t.insn_count),
        (TrapKind::BadCallTarget, 1, 1)
    );
}

#[test]
fn atomics_are_aligned_and_fetch() {
    // [r10-8] = 5; r1 = 3; lock fetch add [r10-8], r1 (r1 = 5); r0 = [r10-8] (8) * 10 + r1.
    let p = [
        i(CLASS_ST | MODE_MEM | SIZE_DW, 10, 0, -8, 5),
        mov64_imm(1, 3),
        i(
            CLASS_STX | MODE_ATOMIC | SIZE_DW,
            10,
            1,
            -8,
            ATOMIC_ADD | ATOMIC_FETCH,
        ),
        i(CLASS_LDX | MODE_MEM | SIZE_DW, 0, 10, -8, 0),
        alu64_imm(ALU_MUL, 0, 10),
        alu64_reg(ALU_ADD, 0, 1),
        exit(),
    ];
    assert_eq!(jit_r0(&p), 85);
    // cmpxchg: r0 = 5 matches, so [r10-8] = r2 = 9 and r0 = old (5); then r0 += [r10-8].
    let p = [
        i(CLASS_ST | MODE_MEM | SIZE_DW, 10, 0, -8, 5),
        mov64_imm(0, 5),
        mov64_imm(2, 9),
        i(CLASS_STX | MODE_ATOMIC | SIZE_DW, 10, 2, -8, ATOMIC_CMPXCHG),
        i(CLASS_LDX | MODE_MEM | SIZE_DW, 3, 10, -8, 0),
        alu64_reg(ALU_ADD, 0, 3),
        exit(),
    ];
    assert_eq!(jit_r0(&p), 14);
    // A 4-byte atomic at r10-6 is misaligned (the stack top is 8-aligned).
    let p = [
        mov64_imm(1, 1),
        i(CLASS_STX | MODE_ATOMIC | SIZE_W, 10, 1, -6, ATOMIC_ADD),
        exit(),
    ];
    let t = run_with(&p, Engine::Jit, &mut [], None).unwrap_err();
    assert_eq!(
        (t.kind, t.pc, t.size, t.insn_count),
        (TrapKind::Misaligned, 1, 4, 1)
    );
}

#[test]
fn legacy_packet_loads_are_big_endian_and_end_the_program_outside() {
    let mut data = [0x12u8, 0x34, 0x56, 0x78];
    let ldh = |k| i(CLASS_LD | MODE_ABS | SIZE_H, 0, 0, 0, k);
    let out = run_with(&[ldh(1), exit()], Engine::Jit, &mut data, None).unwrap();
    assert_eq!(out.r0, 0x3456);
    // Offset 3 + 2 bytes > 4: the program ends with r0 = 0 after 2 instructions.
    let p = [mov64_imm(0, 7), ldh(3), mov64_imm(0, 9), exit()];
    let out = run_with(&p, Engine::Jit, &mut data, None).unwrap();
    assert_eq!((out.r0, out.insn_count), (0, 2));
    // LD_IND: r2 = 4 (length) - 4 + 0 -> word at 0.
    let p = [
        alu64_imm(ALU_SUB, 2, 4),
        i(CLASS_LD | MODE_IND | SIZE_W, 0, 2, 0, 0),
        exit(),
    ];
    assert_eq!(
        run_with(&p, Engine::Jit, &mut data, None).unwrap().r0,
        0x1234_5678
    );
}

/// The permissions of the mapping that starts at `addr`, from /proc/self/maps.
fn mapping_perms(addr: usize) -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines().find_map(|l| {
        let (range, rest) = l.split_once(' ')?;
        let (start, end) = range.split_once('-')?;
        let start = usize::from_str_radix(start, 16).ok()?;
        let end = usize::from_str_radix(end, 16).ok()?;
        (start <= addr && addr < end).then(|| rest.split(' ').next().unwrap_or("").to_string())
    })
}

#[test]
fn code_is_never_writable_and_executable() {
    let jit = ebpf_vm::jit::JitProgram::compile(&[mov64_imm(0, 1), exit()]).unwrap();
    let listing = jit.disassembly(&[0]);
    // The listing's first column is the offset; the entry address comes from the code pointer.
    assert!(
        listing.contains("; insn 0") && listing.contains("ret"),
        "{listing}"
    );
    let perms = mapping_perms(jit.code_ptr() as usize).expect("code is mapped");
    // A shared view of the code arena's memory file (private pages in the fallback scheme).
    assert!(perms == "r-xs" || perms == "r-xp", "{perms}");
}

#[test]
fn engine_selection() {
    let p = [mov64_imm(0, 1), exit()];
    assert_eq!(load(&p, Engine::Auto).unwrap().engine(), Engine::Jit);
    assert_eq!(
        load(&p, Engine::Interpreter).unwrap().engine(),
        Engine::Interpreter
    );
    let jit = load(&p, Engine::Jit).unwrap();
    assert!(jit.jited_disassembly().contains("; insn 1"));
    assert!(load(&p, Engine::Interpreter)
        .unwrap()
        .jited_disassembly()
        .contains("interpreter"));
}

#[test]
fn regions_added_by_a_helper_are_usable_at_once() {
    // A helper that hands out 16 bytes of fresh memory, as map lookups do.
    let buf: &'static mut [u8; 16] = Box::leak(Box::new([0u8; 16]));
    let addr = buf.as_mut_ptr() as u64;
    let mut helpers = HelperTable::new();
    helpers.register(1, "give", move |cx, _| {
        cx.regions
            .push(ebpf_vm::memory::Region::new(addr, 16, true));
        Ok(addr)
    });
    let load_with = |p: &[Insn]| {
        Program::load(
            &bytes(p),
            ProgramOptions {
                engine: Engine::Jit,
                helpers: helpers.clone(),
                ..ProgramOptions::default()
            },
        )
        .unwrap()
    };
    let store_at = |off| {
        [
            i(OP_CALL, 0, 0, 0, 1),
            i(CLASS_ST | MODE_MEM | SIZE_DW, 0, 0, off, 77),
            i(CLASS_LDX | MODE_MEM | SIZE_DW, 0, 0, off, 0),
            exit(),
        ]
    };
    let run = |p: &Program| {
        p.run(&mut RunInput {
            data: &mut [],
            budget: None,
        })
    };
    assert_eq!(run(&load_with(&store_at(8))).unwrap().r0, 77);
    // Bytes 16..24 are past the end of the new region.
    let t = run(&load_with(&store_at(16))).unwrap_err();
    assert_eq!(
        (t.kind, t.pc, t.addr, t.size),
        (TrapKind::OutOfBounds, 1, addr + 16, 8)
    );
}

#[test]
fn one_compiled_program_runs_on_many_threads() {
    // Sum of data bytes, in a loop: r0 = sum(data[0..r2]).
    let p = [
        mov64_imm(0, 0),
        mov64_imm(3, 0),
        // loop: if r3 >= r2 goto end
        i(CLASS_JMP | JMP_JGE | SRC_X, 3, 2, 6, 0),
        mov64_reg(4, 1),
        alu64_reg(ALU_ADD, 4, 3),
        i(CLASS_LDX | MODE_MEM | SIZE_B, 4, 4, 0, 0),
        alu64_reg(ALU_ADD, 0, 4),
        alu64_imm(ALU_ADD, 3, 1),
        i(OP_JA, 0, 0, -7, 0),
        exit(),
    ];
    let prog = std::sync::Arc::new(load(&p, Engine::Jit).unwrap());
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let prog = prog.clone();
            std::thread::spawn(move || {
                for n in 0..200u32 {
                    let mut data: Vec<u8> = (0..n).map(|k| (k as u8).wrapping_add(t)).collect();
                    let want: u64 = data.iter().map(|&b| b as u64).sum();
                    let out = prog
                        .run(&mut RunInput {
                            data: &mut data,
                            budget: None,
                        })
                        .unwrap();
                    assert_eq!(out.r0, want);
                    // 2 + 7 per byte + the final compare and exit.
                    assert_eq!(out.insn_count, 2 + 7 * n as u64 + 2);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn large_programs_compile() {
    // 200,000 instructions of arithmetic and stack traffic: r0 counts the adds.
    let mut p = Vec::new();
    for k in 0..50_000 {
        p.push(alu64_imm(ALU_ADD, 0, 1));
        p.push(i(
            CLASS_STX | MODE_MEM | SIZE_DW,
            10,
            0,
            -8 * (1 + k % 64) as i16,
            0,
        ));
        p.push(i(
            CLASS_LDX | MODE_MEM | SIZE_DW,
            1,
            10,
            -8 * (1 + k % 64) as i16,
            0,
        ));
        p.push(i(CLASS_JMP | JMP_JNE | SRC_X, 0, 1, 0, 0));
    }
    p.push(exit());
    let prog = load(&p, Engine::Jit).unwrap();
    let out = prog
        .run(&mut RunInput {
            data: &mut [],
            budget: None,
        })
        .unwrap();
    assert_eq!((out.r0, out.insn_count), (50_000, 200_001));
}

#[test]
fn a_panicking_helper_unwinds_past_compiled_code() {
    let load_jit = |p: &[Insn]| {
        Program::load(
            &bytes(p),
            ProgramOptions {
                engine: Engine::Jit,
                helpers: panicking_helpers(),
                ..ProgramOptions::default()
            },
        )
        .unwrap()
    };
    let run = |prog: &Program| {
        prog.run(&mut RunInput {
            data: &mut [],
            budget: None,
        })
    };
    // r1 = 1 makes the helper panic.
    let bad = load_jit(&[mov64_imm(1, 1), i(OP_CALL, 0, 0, 0, 1), exit()]);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&bad)));
    assert!(caught.is_err(), "the panic reaches the caller");
    // The process and the compiled code are fine afterwards.
    let good = load_jit(&[mov64_imm(1, 2), i(OP_CALL, 0, 0, 0, 1), exit()]);
    assert_eq!(run(&good).unwrap().r0, 5);
}

/// Helper 1 panics when r1 is 1 and returns 5 otherwise.
fn panicking_helpers() -> HelperTable {
    let mut helpers = HelperTable::new();
    helpers.register(1, "boom", |_, a| {
        if a[0] == 1 {
            panic!("helper panicked on purpose");
        }
        Ok(5)
    });
    helpers
}

#[test]
fn budget_ending_inside_a_block_keeps_earlier_stores_only() {
    // One block: three stores to the data, then exit. r1 = data.
    let stb = |off, v| i(CLASS_ST | MODE_MEM | SIZE_B, 1, 0, off, v);
    let p = [stb(0, 1), stb(1, 2), stb(2, 3), exit()];
    for budget in 0..4u64 {
        let mut data = [0u8; 3];
        let t = run_with(&p, Engine::Jit, &mut data, Some(budget)).unwrap_err();
        assert_eq!(
            (t.kind, t.pc, t.insn_count),
            (TrapKind::BudgetExhausted, budget as usize, budget)
        );
        // Exactly the first `budget` stores happened.
        let want: Vec<u8> = (0..3)
            .map(|k| if k < budget { k as u8 + 1 } else { 0 })
            .collect();
        assert_eq!(data.to_vec(), want, "budget {budget}");
    }
    let mut data = [0u8; 3];
    let out = run_with(&p, Engine::Jit, &mut data, Some(4)).unwrap();
    assert_eq!((out.insn_count, data), (4, [1, 2, 3]));
}

#[test]
fn a_trap_inside_a_block_counts_only_what_ran() {
    // One block: store data[0], load 8 bytes at data+1 (past the 4-byte end), store data[1].
    let p = [
        i(CLASS_ST | MODE_MEM | SIZE_B, 1, 0, 0, 9),
        i(CLASS_LDX | MODE_MEM | SIZE_DW, 0, 1, 1, 0),
        i(CLASS_ST | MODE_MEM | SIZE_B, 1, 0, 1, 9),
        exit(),
    ];
    let mut data = [0u8; 4];
    let addr = data.as_ptr() as u64 + 1;
    let t = run_with(&p, Engine::Jit, &mut data, None).unwrap_err();
    assert_eq!(
        (t.kind, t.pc, t.addr, t.size, t.insn_count),
        (TrapKind::OutOfBounds, 1, addr, 8, 1)
    );
    assert_eq!(data, [9, 0, 0, 0]);
    // With a budget of 1 the load never runs: the budget trap comes first, at the load.
    let mut data = [0u8; 4];
    let t = run_with(&p, Engine::Jit, &mut data, Some(1)).unwrap_err();
    assert_eq!(
        (t.kind, t.pc, t.insn_count),
        (TrapKind::BudgetExhausted, 1, 1)
    );
    assert_eq!(data, [9, 0, 0, 0]);
    // A helper error in the middle of a block: helper 1 fails; two movs before it.
    let mut helpers = HelperTable::new();
    helpers.register(1, "fail", |_, _| Err(ebpf_vm::HelperError("no".into())));
    let p = [
        mov64_imm(0, 1),
        mov64_imm(0, 2),
        i(OP_CALL, 0, 0, 0, 1),
        mov64_imm(0, 3),
        exit(),
    ];
    let prog = Program::load(
        &bytes(&p),
        ProgramOptions {
            engine: Engine::Jit,
            helpers,
            ..ProgramOptions::default()
        },
    )
    .unwrap();
    let t = prog
        .run(&mut RunInput {
            data: &mut [],
            budget: None,
        })
        .unwrap_err();
    assert_eq!((t.kind, t.pc, t.insn_count), (TrapKind::HelperError, 2, 2));
}

/// A loop whose early exit jumps backwards out of it (clang's layout), so that the JIT charges
/// the loop body as one chain and gives back the rest of the chain when the exit is taken.
fn loop_with_backward_exit(exit_path: Insn) -> Vec<Insn> {
    vec![
        i(OP_JA, 0, 0, 2, 0),                // 0: to 3
        exit_path,                           // 1: the exit path, before the loop
        exit(),                              // 2
        alu64_imm(ALU_ADD, 0, 1),            // 3: loop head
        i(CLASS_JMP | JMP_JEQ, 0, 0, -4, 3), // 4: r0 == 3: leave to 1
        alu64_imm(ALU_ADD, 2, 1),            // 5
        i(OP_JA, 0, 0, -4, 0),               // 6: back to 3
        exit(),                              // 7: never reached
    ]
}

#[test]
fn an_early_loop_exit_counts_exactly() {
    // Executed pcs: 0, then 3 4 5 6 twice, then 3 4 (r0 = 3: taken), 1, 2: 13 instructions.
    let seq = [0usize, 3, 4, 5, 6, 3, 4, 5, 6, 3, 4, 1, 2];
    let p = loop_with_backward_exit(alu64_imm(ALU_ADD, 0, 100));
    let out = run_with(&p, Engine::Jit, &mut [], None).unwrap();
    assert_eq!((out.r0, out.insn_count), (103, 13));
    for (budget, &pc) in seq.iter().enumerate() {
        let t = run_with(&p, Engine::Jit, &mut [], Some(budget as u64)).unwrap_err();
        assert_eq!(
            (t.kind, t.pc, t.insn_count),
            (TrapKind::BudgetExhausted, pc, budget as u64),
            "budget {budget}"
        );
    }
    let out = run_with(&p, Engine::Jit, &mut [], Some(13)).unwrap();
    assert_eq!(out.insn_count, 13);
    // A trap on the exit path counts the 11 instructions before it.
    let p = loop_with_backward_exit(i(CLASS_LDX | MODE_MEM | SIZE_DW, 0, 1, 100, 0));
    let mut data = [0u8; 4];
    let addr = data.as_ptr() as u64 + 100;
    let t = run_with(&p, Engine::Jit, &mut data, None).unwrap_err();
    assert_eq!(
        (t.kind, t.pc, t.addr, t.insn_count),
        (TrapKind::OutOfBounds, 1, addr, 11)
    );
}

#[test]
fn mov_then_add_computes_the_same_as_two_instructions() {
    let mut data = [1u8, 2, 3, 4];
    // r3 = r1; r3 += 2; r0 = *(u8 *)(r3 + 0): data[2].
    let p = [
        mov64_reg(3, 1),
        alu64_imm(ALU_ADD, 3, 2),
        i(CLASS_LDX | MODE_MEM | SIZE_B, 0, 3, 0, 0),
        exit(),
    ];
    assert_eq!(run_with(&p, Engine::Jit, &mut data, None).unwrap().r0, 3);
    // w0 = w4; w0 += -1 with r4 = 0: 0xffffffff, zero-extended.
    let p = [
        mov64_imm(4, 0),
        alu32_reg(ALU_MOV, 0, 4),
        alu32_imm(ALU_ADD, 0, -1),
        exit(),
    ];
    assert_eq!(jit_r0(&p), 0xffff_ffff);
    // r0 = r4; r0 += r0 with r4 = 5: the add reads the copy, 10.
    let p = [
        mov64_imm(4, 5),
        mov64_reg(0, 4),
        alu64_reg(ALU_ADD, 0, 0),
        exit(),
    ];
    assert_eq!(jit_r0(&p), 10);
    // 32-bit: w0 = w4; w0 += w5 with r4 = 0xffffffff, r5 = 2: wraps to 1.
    let p = [
        mov64_imm(4, -1),
        mov64_imm(5, 2),
        alu32_reg(ALU_MOV, 0, 4),
        alu32_reg(ALU_ADD, 0, 5),
        exit(),
    ];
    assert_eq!(jit_r0(&p), 1);
}

#[test]
fn a_remainder_left_in_a_scratch_register_never_passes_a_check() {
    // r2 = data % u64::MAX leaves the data address as the remainder; then a load from
    // -data (far outside every region) must trap, whatever division did to scratch registers.
    // Five instructions (lddw counts once) run before the load.
    let mut p = lddw(4, u64::MAX).to_vec();
    p.extend_from_slice(&[
        mov64_reg(2, 1),
        alu64_reg(ALU_MOD, 2, 4),
        mov64_reg(3, 1),
        i(CLASS_ALU64 | ALU_NEG, 3, 0, 0, 0),
        i(CLASS_LDX | MODE_MEM | SIZE_B, 0, 3, 0, 0),
        exit(),
    ]);
    let mut data = [0u8; 64];
    let addr = (data.as_ptr() as u64).wrapping_neg();
    let t = run_with(&p, Engine::Jit, &mut data, None).unwrap_err();
    assert_eq!(
        (t.kind, t.pc, t.addr, t.insn_count),
        (TrapKind::OutOfBounds, 6, addr, 5)
    );
}

/// `r2 = 0; loop: r3 = r1; r3 += r2; *(u8 *)(r3 + 0) = 7; r2 += 1; if r2 < limit goto loop;
/// exit`: a loop whose store the JIT may check once, at the loop head.
fn fill_loop(limit: i32) -> Vec<Insn> {
    vec![
        mov64_imm(2, 0),                             // 0
        mov64_reg(3, 1),                             // 1: loop head
        alu64_reg(ALU_ADD, 3, 2),                    // 2
        i(CLASS_ST | MODE_MEM | SIZE_B, 3, 0, 0, 7), // 3
        alu64_imm(ALU_ADD, 2, 1),                    // 4
        i(CLASS_JMP | JMP_JLT, 2, 0, -5, limit),     // 5: back to 1
        exit(),                                      // 6
    ]
}

#[test]
fn a_loop_checked_once_stores_what_each_iteration_stores() {
    // 16 iterations over 16 bytes: 1 + 16 * 5 + 1 instructions.
    let mut data = [0u8; 16];
    let out = run_with(&fill_loop(16), Engine::Jit, &mut data, None).unwrap();
    assert_eq!((out.r0, out.insn_count), (0, 82));
    assert_eq!(data, [7; 16]);
    // 20 iterations over 16 bytes: the 17th store (pc 3, i = 16) is outside; 1 + 16 * 5 + 2
    // instructions ran before it, and the first 16 stores happened.
    let mut data = [0u8; 16];
    let addr = data.as_ptr() as u64 + 16;
    let t = run_with(&fill_loop(20), Engine::Jit, &mut data, None).unwrap_err();
    assert_eq!(
        (t.kind, t.pc, t.addr, t.size, t.insn_count),
        (TrapKind::OutOfBounds, 3, addr, 1, 83)
    );
    assert_eq!(data, [7; 16]);
    // Budget 50: pc 0, nine whole iterations (45), then pcs 1-4 of the tenth (its store runs);
    // the budget ends at pc 5.
    let mut data = [0u8; 16];
    let t = run_with(&fill_loop(16), Engine::Jit, &mut data, Some(50)).unwrap_err();
    assert_eq!(
        (t.kind, t.pc, t.insn_count),
        (TrapKind::BudgetExhausted, 5, 50)
    );
    let want: Vec<u8> = (0..16).map(|k| if k < 10 { 7 } else { 0 }).collect();
    assert_eq!(data.to_vec(), want);
}

#[test]
fn a_32_bit_loop_bound_says_nothing_of_the_upper_half() {
    // i += 0xffffffff00000000 (64-bit) keeps the low half, so `if w2 < 4` loops on with i far
    // past the data: the second load, at data - 2^32, must trap. Instructions before it: pc 0,
    // the lddw (one), pcs 3-7 of the first iteration, pcs 3-4 of the second: 9.
    let mut p = vec![mov64_imm(2, 0)];
    p.extend_from_slice(&lddw(5, 0xffff_ffff_0000_0000));
    p.extend_from_slice(&[
        mov64_reg(3, 1),                              // 3: loop head
        alu64_reg(ALU_ADD, 3, 2),                     // 4
        i(CLASS_LDX | MODE_MEM | SIZE_B, 0, 3, 0, 0), // 5
        alu64_reg(ALU_ADD, 2, 5),                     // 6
        i(CLASS_JMP32 | JMP_JLT, 2, 0, -5, 4),        // 7: back to 3
        exit(),
    ]);
    let mut data = [0u8; 16];
    let addr = (data.as_ptr() as u64).wrapping_sub(1 << 32);
    let t = run_with(&p, Engine::Jit, &mut data, None).unwrap_err();
    assert_eq!(
        (t.kind, t.pc, t.addr, t.insn_count),
        (TrapKind::OutOfBounds, 5, addr, 9)
    );
}

/// `r2 = i0; r0 = 0; loop: r3 = r1; r3 += r2; r4 = *(u8 *)(r3 + 0); r0 += r4; r2 += 1;
/// if r2 != 4 goto loop; exit`, or `rotated` as clang lays it out: `if r2 == 4 goto out; ja loop;
/// out: exit`.
fn sum_up_to_4(i0: i32, rotated: bool) -> Vec<Insn> {
    let mut p = vec![
        mov64_imm(2, i0),                             // 0
        mov64_imm(0, 0),                              // 1
        mov64_reg(3, 1),                              // 2: loop head
        alu64_reg(ALU_ADD, 3, 2),                     // 3
        i(CLASS_LDX | MODE_MEM | SIZE_B, 4, 3, 0, 0), // 4
        alu64_reg(ALU_ADD, 0, 4),                     // 5
        alu64_imm(ALU_ADD, 2, 1),                     // 6
    ];
    if rotated {
        p.push(i(CLASS_JMP | JMP_JEQ, 2, 0, 1, 4)); // 7: out to 9
        p.push(i(OP_JA, 0, 0, -7, 0)); // 8: back to 2
    } else {
        p.push(i(CLASS_JMP | JMP_JNE, 2, 0, -6, 4)); // 7: back to 2
    }
    p.push(exit());
    p
}

#[test]
fn a_loop_counting_up_to_a_bound_checked_once() {
    let p = |i0| sum_up_to_4(i0, false);
    let mut data = [1u8, 2, 3, 4, 5, 6, 7, 8];
    // From 0: bytes 0-3, 1 + 2 + 3 + 4; 2 + 4 * 6 + 1 instructions.
    let out = run_with(&p(0), Engine::Jit, &mut data, None).unwrap();
    assert_eq!((out.r0, out.insn_count), (10, 27));
    // From 6 the index passes 4 by and runs off the end: bytes 6 and 7, then the load at 8
    // traps after 2 + 2 * 6 + 2 instructions.
    let addr = data.as_ptr() as u64 + 8;
    let t = run_with(&p(6), Engine::Jit, &mut data, None).unwrap_err();
    assert_eq!(
        (t.kind, t.pc, t.addr, t.insn_count),
        (TrapKind::OutOfBounds, 4, addr, 16)
    );
}

#[test]
fn accesses_checked_as_a_group_trap_at_the_first_one_outside() {
    // Three accesses through r1 within 8 bytes: two byte stores, then a 4-byte load at 14..18
    // of a 16-byte buffer. The stores happen, the load traps after 2 instructions.
    let p = [
        i(CLASS_ST | MODE_MEM | SIZE_B, 1, 0, 10, 1),
        i(CLASS_ST | MODE_MEM | SIZE_B, 1, 0, 14, 2),
        i(CLASS_LDX | MODE_MEM | SIZE_W, 0, 1, 14, 0),
        exit(),
    ];
    let mut data = [0u8; 16];
    let addr = data.as_ptr() as u64 + 14;
    let t = run_with(&p, Engine::Jit, &mut data, None).unwrap_err();
    assert_eq!(
        (t.kind, t.pc, t.addr, t.size, t.insn_count),
        (TrapKind::OutOfBounds, 2, addr, 4, 2)
    );
    assert_eq!((data[10], data[14]), (1, 2));
    // On a 20-byte buffer all three fit: the load reads 2, 0, 0, 0.
    let mut data = [0u8; 20];
    let out = run_with(&p, Engine::Jit, &mut data, None).unwrap();
    assert_eq!((out.r0, out.insn_count), (2, 4));
    assert_eq!((data[10], data[14]), (1, 2));
}

#[test]
fn every_budget_inside_a_loop_checked_once_counts_exactly() {
    // fill_loop(16) runs pc 0, then pcs 1-5 sixteen times, then the exit (82 instructions).
    // With budget b < 82 the instruction at position b + 1 (1-based) is where the budget ends,
    // and the stores at positions 4 + 5k <= b (k < 16) are the ones that happened.
    let p = fill_loop(16);
    for budget in 0..82u64 {
        let pos = budget + 1;
        let pc = match pos {
            1 => 0,
            82 => 6,
            _ => 1 + ((pos - 2) % 5) as usize,
        };
        let stores = if budget >= 4 {
            ((budget - 4) / 5 + 1).min(16)
        } else {
            0
        };
        let mut data = [0u8; 16];
        let t = run_with(&p, Engine::Jit, &mut data, Some(budget)).unwrap_err();
        assert_eq!(
            (t.kind, t.pc, t.insn_count),
            (TrapKind::BudgetExhausted, pc, budget),
            "budget {budget}"
        );
        let want: Vec<u8> = (0..16).map(|k| if k < stores { 7 } else { 0 }).collect();
        assert_eq!(data.to_vec(), want, "budget {budget}");
    }
}

#[test]
fn a_loop_ending_in_a_jump_over_its_back_jump_counts_exactly() {
    // r0 = 0; loop: r0 += 1; r2 = r0; if r2 > 3 goto out; ja loop; out: exit.
    // pc 0, three whole iterations (pcs 1-4), pcs 1-3 of the fourth, the exit: 17, r0 = 4.
    let p = [
        mov64_imm(0, 0),                    // 0
        alu64_imm(ALU_ADD, 0, 1),           // 1: loop head
        mov64_reg(2, 0),                    // 2
        i(CLASS_JMP | JMP_JGT, 2, 0, 1, 3), // 3: to 5
        i(OP_JA, 0, 0, -4, 0),              // 4: back to 1
        exit(),                             // 5
    ];
    let out = run_with(&p, Engine::Jit, &mut [], None).unwrap();
    assert_eq!((out.r0, out.insn_count), (4, 17));
    for budget in 0..17u64 {
        let pos = budget + 1;
        let pc = match pos {
            1 => 0,
            17 => 5,
            _ => 1 + ((pos - 2) % 4) as usize,
        };
        let t = run_with(&p, Engine::Jit, &mut [], Some(budget)).unwrap_err();
        assert_eq!(
            (t.kind, t.pc, t.insn_count),
            (TrapKind::BudgetExhausted, pc, budget),
            "budget {budget}"
        );
    }
}

#[test]
fn a_jump_over_a_lone_ja_counts_exactly() {
    // r0 = 0; r2 = 0; loop: r2 += 1; if r2 < 4 goto body; ja out; body: r0 += r2; ja loop;
    // out: exit. Three passes through the body (r0 = 1 + 2 + 3), then 2, 3, 4, 7: 18.
    let p = [
        mov64_imm(0, 0),                    // 0
        mov64_imm(2, 0),                    // 1
        alu64_imm(ALU_ADD, 2, 1),           // 2: loop head
        i(CLASS_JMP | JMP_JLT, 2, 0, 1, 4), // 3: to 5
        i(OP_JA, 0, 0, 2, 0),               // 4: to 7
        alu64_reg(ALU_ADD, 0, 2),           // 5
        i(OP_JA, 0, 0, -5, 0),              // 6: back to 2
        exit(),                             // 7
    ];
    let out = run_with(&p, Engine::Jit, &mut [], None).unwrap();
    assert_eq!((out.r0, out.insn_count), (6, 18));
    for budget in 0..18u64 {
        let pos = budget + 1;
        let pc = match pos {
            1 => 0,
            2 => 1,
            3..=14 => [2, 3, 5, 6][((pos - 3) % 4) as usize],
            15 => 2,
            16 => 3,
            17 => 4,
            _ => 7,
        };
        let t = run_with(&p, Engine::Jit, &mut [], Some(budget)).unwrap_err();
        assert_eq!(
            (t.kind, t.pc, t.insn_count),
            (TrapKind::BudgetExhausted, pc, budget),
            "budget {budget}"
        );
    }
}

#[test]
fn a_loop_checked_once_that_starts_below_the_data_traps_at_once() {
    // As fill_loop(4), but storing at r3 - 1: the first store, at data - 1, traps after
    // pcs 0-2.
    let p = [
        mov64_imm(2, 0),
        mov64_reg(3, 1),
        alu64_reg(ALU_ADD, 3, 2),
        i(CLASS_ST | MODE_MEM | SIZE_B, 3, 0, -1, 7),
        alu64_imm(ALU_ADD, 2, 1),
        i(CLASS_JMP | JMP_JLT, 2, 0, -5, 4),
        exit(),
    ];
    let mut data = [0u8; 16];
    let addr = data.as_ptr() as u64 - 1;
    let t = run_with(&p, Engine::Jit, &mut data, None).unwrap_err();
    assert_eq!(
        (t.kind, t.pc, t.addr, t.size, t.insn_count),
        (TrapKind::OutOfBounds, 3, addr, 1, 3)
    );
    assert_eq!(data, [0; 16]);
}

/// `r2 = 0; loop: r3 = r1; r3 += r2; *(u8 *)(r3 + 0) = 7; r2 += 1; if r2 <cmp> limit goto out;
/// ja loop; out: exit`: `fill_loop` as clang rotates it (the compare leaves, a `ja` goes back),
/// whose store the JIT may check once, at the loop head. `cmp` is the leaving compare's opcode
/// (`JMP | JEQ`: back while `r2 != limit`; `JMP32 | JGE`: back while `w2 < limit`).
fn rotated_fill_loop(cmp: u8, limit: i32) -> Vec<Insn> {
    // fill_loop's pcs 0-4, then the compare that leaves (5: out to 7), the `ja` back to 1 (6).
    let mut p = fill_loop(limit);
    p.truncate(5);
    p.extend_from_slice(&[i(cmp, 2, 0, 1, limit), i(OP_JA, 0, 0, -6, 0), exit()]);
    p
}

/// Runs `p` on both engines and checks that they give the same (hand-worked) result.
fn both(p: &[Insn], len: usize, budget: Option<u64>) -> (Result<RunOutput, Trap>, Vec<u8>) {
    let mut seen = vec![];
    for engine in [Engine::Interpreter, Engine::Jit] {
        let mut data = vec![0u8; len];
        let base = data.as_ptr() as u64;
        let r = run_with(p, engine, &mut data, budget).map_err(|mut t| {
            // Addresses as offsets into the data, so that the two runs compare.
            if t.kind == TrapKind::OutOfBounds {
                t.addr = t.addr.wrapping_sub(base);
            }
            t
        });
        seen.push((r, data));
    }
    let jit = seen.pop().unwrap();
    let interp = seen.pop().unwrap();
    assert_eq!(
        format!("{:?}", jit.0),
        format!("{:?}", interp.0),
        "JIT and interpreter differ"
    );
    assert_eq!(jit.1, interp.1, "JIT and interpreter leave different data");
    jit
}

#[test]
fn a_rotated_loop_checked_once_stores_what_each_iteration_stores() {
    // Limits of one byte (left as they are) and of two (blinded: the JIT rebuilds the bound once,
    // at the head check). Per iteration pcs 1-6, the last one leaves at pc 5.
    for cmp in [
        CLASS_JMP | JMP_JEQ,
        CLASS_JMP32 | JMP_JGE,
        CLASS_JMP | JMP_JGE,
    ] {
        // Odd counts end in the first half of the JIT's unrolled copy, even ones in the second.
        for n in [15usize, 16, 0x1234, 0x1235] {
            let all = 1 + (n as u64 - 1) * 6 + 5 + 1;
            let (out, data) = both(&rotated_fill_loop(cmp, n as i32), n, None);
            let out = out.unwrap();
            assert_eq!((out.r0, out.insn_count), (0, all), "{cmp:#x} {n}");
            assert_eq!(data, vec![7; n]);
            // Over n - 3 bytes: the store at i = n - 3 is outside, after 1 + (n - 3) * 6 + 2
            // instructions; the n - 3 stores before it happened.
            let (t, data) = both(&rotated_fill_loop(cmp, n as i32), n - 3, None);
            let t = t.unwrap_err();
            assert_eq!(
                (t.kind, t.pc, t.addr, t.size, t.insn_count),
                (
                    TrapKind::OutOfBounds,
                    3,
                    n as u64 - 3,
                    1,
                    1 + (n as u64 - 3) * 6 + 2
                ),
                "{cmp:#x} {n}"
            );
            assert_eq!(data, vec![7; n - 3]);
        }
    }
}

#[test]
fn every_budget_inside_a_rotated_loop_checked_once_counts_exactly() {
    // rotated_fill_loop(n) runs pc 0, pcs 1-6 n - 1 times, pcs 1-5, the exit (6n + 1). With
    // budget b < 6n + 1 the budget ends at position b + 1 (1-based), and the stores at positions
    // 4 + 6k <= b (k < n) happened. n = 15 and 16 end in either half of the JIT's unrolled copy;
    // with the bound 0x1234 (blinded), budgets around the copy's two halves, far into the loop.
    for cmp in [CLASS_JMP | JMP_JEQ, CLASS_JMP32 | JMP_JGE] {
        let budgets = [15, 16]
            .into_iter()
            .flat_map(|n| (0..6 * n + 1).map(move |b| (n, b)));
        let far = (6000..6013u64).map(|b| (0x1234, b));
        for (n, budget) in budgets.chain(far) {
            let all = 1 + (n - 1) * 6 + 5 + 1;
            let pos = budget + 1;
            let pc = match pos {
                1 => 0,
                _ if pos == all => 7,
                _ => 1 + ((pos - 2) % 6) as usize,
            };
            let stores = if budget >= 4 {
                ((budget - 4) / 6 + 1).min(n)
            } else {
                0
            };
            let (t, data) = both(&rotated_fill_loop(cmp, n as i32), n as usize, Some(budget));
            let t = t.unwrap_err();
            assert_eq!(
                (t.kind, t.pc, t.insn_count),
                (TrapKind::BudgetExhausted, pc, budget),
                "{cmp:#x} {n} budget {budget}"
            );
            let want: Vec<u8> = (0..n).map(|k| if k < stores { 7 } else { 0 }).collect();
            assert_eq!(data, want, "{cmp:#x} {n} budget {budget}");
        }
    }
}

#[test]
fn a_rotated_loop_counting_up_from_past_its_bound_runs_off_the_data() {
    // sum_up_to_4, rotated. Data: 1..=8.
    let p = |i0| {
        let mut data = [1u8, 2, 3, 4, 5, 6, 7, 8];
        let p = sum_up_to_4(i0, true);
        let base = data.as_ptr() as u64;
        let mut results = vec![];
        for engine in [Engine::Interpreter, Engine::Jit] {
            results.push(
                run_with(&p, engine, &mut data, None)
                    .map(|o| (o.r0, o.insn_count))
                    .map_err(|t| (t.kind, t.pc, t.addr - base, t.insn_count)),
            );
        }
        assert_eq!(results[0], results[1]);
        results.pop().unwrap()
    };
    // From 0: bytes 0-3, 1 + 2 + 3 + 4; 2 + 3 * 7 + 6 + 1 instructions.
    assert_eq!(p(0), Ok((10, 30)));
    // From 6 the index passes 4 by and runs off the end: bytes 6 and 7, then the load at 8 traps
    // after 2 + 2 * 7 + 2 instructions.
    assert_eq!(p(6), Err((TrapKind::OutOfBounds, 4, 8, 18)));
}

/// A byte-fill loop over the data (r1): `i = i0; [v = 0xab;] loop: t = r1; t += i;
/// *(u8 *)(t + 0) = v (or the immediate 0xab); i += 1; if i < n goto loop` (or rotated: `if i == n
/// goto out; ja loop`), then `r0 = (t - r1) << 32 | i; exit`, with i = r2. The JIT may run the
/// iterations as one `rep stosb` (`loops::Fill`) once its head check passes; `t` and `v` may be
/// r0, which that instruction's own register holds.
fn fill_prog(t: u8, v: Option<u8>, i0: i32, n: i32, rotated: bool) -> Vec<Insn> {
    let mut p = vec![mov64_imm(2, i0)];
    if let Some(v) = v {
        p.push(mov64_imm(v, 0xab));
    }
    p.extend_from_slice(&[mov64_reg(t, 1), alu64_reg(ALU_ADD, t, 2)]);
    p.push(match v {
        Some(v) => i(CLASS_STX | MODE_MEM | SIZE_B, t, v, 0, 0),
        None => i(CLASS_ST | MODE_MEM | SIZE_B, t, 0, 0, 0x1ab),
    });
    p.push(alu64_imm(ALU_ADD, 2, 1));
    if rotated {
        p.push(i(CLASS_JMP | JMP_JEQ, 2, 0, 1, n));
        p.push(i(OP_JA, 0, 0, -6, 0));
    } else {
        p.push(i(CLASS_JMP | JMP_JLT, 2, 0, -5, n));
    }
    p.extend_from_slice(&[
        mov64_reg(0, t),
        alu64_reg(ALU_SUB, 0, 1),
        alu64_imm(ALU_LSH, 0, 32),
        alu64_reg(ALU_ADD, 0, 2),
        exit(),
    ]);
    p
}

#[test]
fn a_fill_loop_stores_counts_and_leaves_its_registers_as_each_iteration_would() {
    let shapes = [(3, Some(4)), (0, Some(4)), (3, Some(0)), (0, None)];
    for (t, v) in shapes {
        for rotated in [false, true] {
            for (i0, n) in [(0i32, 300i32), (10, 300), (0, 20)] {
                let p = fill_prog(t, v, i0, n, rotated);
                let setup = 1 + v.is_some() as u64;
                let k = (n - i0) as u64;
                let per = 5 + rotated as u64;
                let all = setup + per * k - rotated as u64 + 5;
                let what = format!("t r{t} v {v:?} rotated {rotated} from {i0} to {n}");
                // Bytes i0..n are 0xab, the rest as they were; t ends at r1 + n - 1, i at n.
                let (out, data) = both(&p, 320, None);
                let out = out.unwrap();
                assert_eq!(
                    (out.r0, out.insn_count),
                    (((n as u64 - 1) << 32) + n as u64, all),
                    "{what}"
                );
                let want: Vec<u8> = (0..320)
                    .map(|k| if k >= i0 && k < n { 0xab } else { 0 })
                    .collect();
                assert_eq!(data, want, "{what}");
                // Over n - 3 bytes: the store at n - 3 traps, after setup + per * (n - 3 - i0) + 2
                // instructions, with the bytes before it stored.
                let len = (n - 3) as usize;
                let (t, data) = both(&p, len, None);
                let t = t.unwrap_err();
                assert_eq!(
                    (t.kind, t.pc, t.addr, t.insn_count),
                    (
                        TrapKind::OutOfBounds,
                        setup as usize + 2,
                        len as u64,
                        setup + per * (len as u64 - i0 as u64) + 2
                    ),
                    "{what}"
                );
                assert!(data[i0 as usize..].iter().all(|&b| b == 0xab), "{what}");
                // Budgets around the whole loop's count: one short of it ends inside the last
                // iteration; exactly it runs the loop and ends at the first instruction after;
                // the whole count runs to the end.
                // The loop's last instruction to run is its compare (pc setup + 4), the tail
                // starts after the chain.
                let tail = setup as usize + 5 + rotated as usize;
                let loop_end = setup + per * k - rotated as u64;
                for (budget, pc) in [
                    (loop_end - 1, setup as usize + 4),
                    (loop_end, tail),
                    (loop_end + 2, tail + 2),
                ] {
                    let (t, data) = both(&p, 320, Some(budget));
                    let t = t.unwrap_err();
                    assert_eq!(
                        (t.kind, t.pc, t.insn_count),
                        (TrapKind::BudgetExhausted, pc, budget),
                        "{what} budget {budget}"
                    );
                    assert_eq!(data, want, "{what} budget {budget}");
                }
                let (out, _) = both(&p, 320, Some(all));
                assert_eq!(out.unwrap().insn_count, all, "{what}");
                // A budget that ends halfway: the stores before it happened, none after.
                let half = setup + per * (k / 2);
                let (t, data) = both(&p, 320, Some(half));
                assert_eq!(t.unwrap_err().insn_count, half, "{what}");
                let stored = data.iter().filter(|&&b| b == 0xab).count() as u64;
                assert_eq!(stored, k / 2, "{what}");
            }
        }
    }
}

#[test]
fn a_loops_blinded_constants_rebuilt_once_per_run_compute_what_they_say() {
    // A loop of ten constants worth blinding (more than the JIT rebuilds once per run: the
    // rest are rebuilt at each use), in 64- and 32-bit ALU operations, a compare and a store:
    // r0 = 1; r3 = 0; r2 = 0; loop: r0 *= 0x01000193; w3 ^= 0x811c9dc5 (zero-extends);
    // r3 += -0x12345; r0 ^= 0x7fff1234; r0 += 0x31337; r3 -= 0x4242; w3 |= 0x10100; r3 &= 0x7ffffff;
    // *(u32 *)(r10 - 8) = 0x5eadbeef; r2 += 0x10001; if r2 != 0x30003 goto loop;
    // r0 ^= r3; r4 = *(u32 *)(r10 - 8); r0 += r4; exit. Worked out in Rust's wrapping arithmetic.
    let alu64 = |op, imm| i(CLASS_ALU64 | op, 0, 0, 0, imm);
    let alu3 = |class, op, imm| i(class | op, 3, 0, 0, imm);
    let p = [
        mov64_imm(0, 1),
        mov64_imm(3, 0),
        mov64_imm(2, 0),
        alu64(ALU_MUL, 0x0100_0193), // 3: loop head
        alu3(CLASS_ALU, ALU_XOR, 0x811c_9dc5_u32 as i32),
        alu3(CLASS_ALU64, ALU_ADD, -0x12345),
        alu64(ALU_XOR, 0x7fff_1234),
        alu64(ALU_ADD, 0x31337),
        alu3(CLASS_ALU64, ALU_SUB, 0x4242),
        alu3(CLASS_ALU, ALU_OR, 0x10100),
        alu3(CLASS_ALU64, ALU_AND, 0x7ff_ffff),
        i(CLASS_ST | MODE_MEM | SIZE_W, 10, 0, -8, 0x5ead_beef),
        alu64_imm(ALU_ADD, 2, 0x10001),
        i(CLASS_JMP | JMP_JNE, 2, 0, -11, 0x30003), // 13: back to 3
        alu64_reg(ALU_XOR, 0, 3),
        i(CLASS_LDX | MODE_MEM | SIZE_W, 4, 10, -8, 0),
        alu64_reg(ALU_ADD, 0, 4),
        exit(),
    ];
    let (mut r0, mut r3) = (1u64, 0u64);
    for _ in 0..3 {
        r0 = r0.wrapping_mul(0x0100_0193);
        r3 = (r3 as u32 ^ 0x811c_9dc5) as u64;
        r3 = r3.wrapping_add(-0x12345i64 as u64);
        r0 ^= 0x7fff_1234;
        r0 = r0.wrapping_add(0x31337);
        r3 = r3.wrapping_sub(0x4242);
        r3 = (r3 as u32 | 0x10100) as u64;
        r3 &= 0x7ff_ffff;
    }
    let want = (r0 ^ r3).wrapping_add(0x5ead_beef);
    for engine in [Engine::Interpreter, Engine::Jit] {
        let out = run_with(&p, engine, &mut [], None).unwrap();
        assert_eq!(
            (out.r0, out.insn_count),
            (want, 3 + 3 * 11 + 4),
            "{engine:?}"
        );
    }
}

/// memcopy.c's word copy as clang lays it out (`loops`, the stride form): `i` (r6) and its twin
/// `j` (r4) start at `i0` and `j0`, words are copied from data to data + 64 while `i + 16 <= n`,
/// `j += 8; c = i + 16; i = j` and a rotated compare; r0 = i at the end.
fn stride_copy(i0: i32, j0: i32, n: i32) -> Vec<Insn> {
    vec![
        mov64_imm(6, i0),                           // 0
        mov64_imm(4, j0),                           // 1
        mov64_imm(2, n),                            // 2
        mov64_reg(3, 1),                            // 3
        alu64_imm(ALU_ADD, 3, 64),                  // 4
        mov64_reg(7, 3),                            // 5: loop head
        alu64_reg(ALU_ADD, 7, 6),                   // 6
        mov64_reg(8, 1),                            // 7
        alu64_reg(ALU_ADD, 8, 6),                   // 8
        ldx(SIZE_DW, 8, 8, 0),                      // 9
        stx(SIZE_DW, 7, 8, 0),                      // 10
        alu64_imm(ALU_ADD, 4, 8),                   // 11
        mov64_reg(7, 6),                            // 12
        alu64_imm(ALU_ADD, 7, 16),                  // 13
        mov64_reg(6, 4),                            // 14
        i(CLASS_JMP | JMP_JGT | SRC_X, 7, 2, 1, 0), // 15: out to 17
        i(OP_JA, 0, 0, -12, 0),                     // 16: back to 5
        mov64_reg(0, 6),                            // 17
        exit(),                                     // 18
    ]
}

fn numbered(len: usize) -> Vec<u8> {
    (0..len).map(|k| k as u8 + 1).collect()
}

#[test]
fn a_stride_loop_checked_once_copies_what_each_iteration_copies() {
    // n = 64: head values 0, 8, ..., 56 (the back jump needs i + 16 <= 64): eight words, the
    // first 64 bytes onto the last 64. 5 + 8 * 12 - 1 (the last `ja`) + 2 instructions.
    let mut data = numbered(128);
    let out = run_with(&stride_copy(0, 0, 64), Engine::Jit, &mut data, None).unwrap();
    assert_eq!((out.r0, out.insn_count), (64, 102));
    assert_eq!(data[64..], numbered(64)[..]);
    // n = 72: a ninth head value, 64, whose store at data + 128 is outside: after 5 + 8 * 12
    // instructions and pcs 5-9 of the ninth iteration (its load of data[64..72] ran).
    let mut data = numbered(128);
    let addr = data.as_ptr() as u64 + 128;
    let t = run_with(&stride_copy(0, 0, 72), Engine::Jit, &mut data, None).unwrap_err();
    assert_eq!(
        (t.kind, t.pc, t.addr, t.size, t.insn_count),
        (TrapKind::OutOfBounds, 10, addr, 8, 106)
    );
    assert_eq!(data[64..], numbered(64)[..]);
}

#[test]
fn a_stride_loop_whose_twin_differs_at_the_head_steps_as_the_twin_says() {
    // j0 = 8, i0 = 0: the first iteration copies word 0 and sets i = 16; then 16, 24, ..., 56
    // (seven iterations): word 8 is never copied. 5 + 7 * 12 - 1 + 2 instructions, r0 = 64.
    let mut data = numbered(128);
    let out = run_with(&stride_copy(0, 8, 64), Engine::Jit, &mut data, None).unwrap();
    assert_eq!((out.r0, out.insn_count), (64, 90));
    let mut want = numbered(128);
    want.copy_within(0..8, 64);
    want.copy_within(16..64, 80);
    assert_eq!(data, want);
    // j0 = 1000: the second head value is 1008, whose load at data + 1008 traps, after 5 + 12
    // instructions and pcs 5-8 of the second iteration.
    let mut data = numbered(128);
    let addr = data.as_ptr() as u64 + 1008;
    let t = run_with(&stride_copy(0, 1000, 64), Engine::Jit, &mut data, None).unwrap_err();
    assert_eq!(
        (t.kind, t.pc, t.addr, t.insn_count),
        (TrapKind::OutOfBounds, 9, addr, 21)
    );
}

#[test]
fn stride_loops_comparing_a_copy_of_the_index_or_the_index_less_a_constant_check_once() {
    // memcopy_fixed's forms: `c = i` indexes the copy and `if c < 56 goto head` (head values
    // 0, 8, ..., 56: eight words onto data + 64; 1 + 8 * 7 + 2 instructions, r0 = 64).
    let copy = |k: i32| {
        vec![
            mov64_imm(2, 0),                     // 0
            mov64_reg(3, 2),                     // 1: loop head
            mov64_reg(4, 1),                     // 2
            alu64_reg(ALU_ADD, 4, 3),            // 3
            ldx(SIZE_DW, 5, 4, 0),               // 4
            stx(SIZE_DW, 4, 5, 64),              // 5
            alu64_imm(ALU_ADD, 2, 8),            // 6
            i(CLASS_JMP | JMP_JLT, 3, 0, -7, k), // 7: back to 1
            mov64_reg(0, 2),                     // 8
            exit(),                              // 9
        ]
    };
    // 136 bytes: room for the head check's bound, 7 bytes past the last store (`loops`).
    let mut data = numbered(136);
    let out = run_with(&copy(56), Engine::Jit, &mut data, None).unwrap();
    assert_eq!((out.r0, out.insn_count), (64, 59));
    let mut want = numbered(136);
    want.copy_within(0..64, 64);
    assert_eq!(data, want);
    // if c < 64: a ninth iteration, whose store at data + 128 is outside a 128-byte buffer,
    // after 1 + 8 * 7 instructions and pcs 1-4 of the ninth.
    let mut data = numbered(128);
    let addr = data.as_ptr() as u64 + 128;
    let t = run_with(&copy(64), Engine::Jit, &mut data, None).unwrap_err();
    assert_eq!(
        (t.kind, t.pc, t.addr, t.insn_count),
        (TrapKind::OutOfBounds, 5, addr, 61)
    );
    // `c = i - 100` with a twin: r0 sums the words at i - 100 while `i - 100 < 56`, from i0.
    let sum = |i0: i32| {
        vec![
            mov64_imm(0, 0),                      // 0
            mov64_imm(3, i0),                     // 1
            mov64_imm(4, i0),                     // 2
            mov64_reg(5, 1),                      // 3: loop head
            alu64_reg(ALU_ADD, 5, 3),             // 4
            ldx(SIZE_DW, 6, 5, -100),             // 5
            alu64_reg(ALU_ADD, 0, 6),             // 6
            alu64_imm(ALU_ADD, 4, 8),             // 7
            mov64_reg(7, 3),                      // 8
            alu64_imm(ALU_ADD, 7, -100),          // 9
            mov64_reg(3, 4),                      // 10
            i(CLASS_JMP | JMP_JLT, 7, 0, -9, 56), // 11: back to 3
            exit(),                               // 12
        ]
    };
    // From 100: the eight words of 64 bytes of 1s (each 0x0101010101010101); 3 + 8 * 9 + 1.
    let mut data = vec![1u8; 72];
    let out = run_with(&sum(100), Engine::Jit, &mut data, None).unwrap();
    assert_eq!((out.r0, out.insn_count), (8 * 0x0101_0101_0101_0101, 76));
    // From 0: `c` wraps (0 - 100 is not below 56), one iteration, whose load at data - 100
    // traps after pcs 0-4.
    let addr = data.as_ptr() as u64 - 100;
    let t = run_with(&sum(0), Engine::Jit, &mut data, None).unwrap_err();
    assert_eq!(
        (t.kind, t.pc, t.addr, t.insn_count),
        (TrapKind::OutOfBounds, 5, addr, 5)
    );
}

#[test]
fn every_budget_inside_a_stride_loop_ends_as_the_interpreter_ends() {
    // The reference semantics is the interpreter's (RFC 9669 with an instruction budget): for
    // every budget below the run's 102 instructions, the same trap, count and bytes copied.
    let p = stride_copy(0, 0, 64);
    for budget in 0..=102u64 {
        let run = |engine| {
            let mut data = numbered(128);
            let r = run_with(&p, engine, &mut data, Some(budget));
            (
                r.map(|o| (o.r0, o.insn_count))
                    .map_err(|t| (t.kind, t.pc, t.insn_count)),
                data,
            )
        };
        assert_eq!(
            run(Engine::Jit),
            run(Engine::Interpreter),
            "budget {budget}"
        );
    }
}
