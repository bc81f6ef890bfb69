//! The analysis layer (`ebpf_vm::analysis`) on hand-computed control-flow graphs, on the programs
//! the kernel has seen (its verifier log is the oracle: function entries, stack depths, registers
//! live before each instruction, strongly connected components), on programs near the size
//! limit, and on random programs that pass validation (never a panic; dominators and loops agree
//! with a brute-force computation).

mod analysis_support;
mod common;
mod rng;

use std::collections::{BTreeMap, BTreeSet};

use analysis_support::generated;
use common::{exit, i, lddw, ldx, mov64_imm, mov64_reg, st, stx};
use ebpf_vm::analysis::*;
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::{encode_all, validate, Insn};
use ebpf_vm::ErrorCode;
use rng::{Random, Rng};

// ---- Building programs ----------------------------------------------------------------------

fn jcond(op: u8, dst: u8, imm: i32, off: i16) -> Insn {
    i(CLASS_JMP | op | SRC_K, dst, 0, off, imm)
}
fn ja(off: i16) -> Insn {
    i(OP_JA, 0, 0, off, 0)
}
fn gotol(imm: i32) -> Insn {
    i(OP_JA32, 0, 0, 0, imm)
}
fn call_local(imm: i32) -> Insn {
    i(OP_CALL, 0, CALL_LOCAL, 0, imm)
}
fn call_helper(id: i32) -> Insn {
    i(OP_CALL, 0, CALL_HELPER, 0, id)
}
fn add64(dst: u8, imm: i32) -> Insn {
    i(CLASS_ALU64 | ALU_ADD | SRC_K, dst, 0, 0, imm)
}
fn lddw_src(dst: u8, src: u8, low: i32, high: i32) -> [Insn; 2] {
    [i(OP_LDDW, dst, src, 0, low), i(0, 0, 0, 0, high)]
}

/// Validates (every helper exists) and analyses.
fn analyse_with(insns: &[Insn], entries: &[usize]) -> Result<Analysis, ebpf_vm::LoadError> {
    let slots = validate(&encode_all(insns), &|_| true).expect("the program validates");
    analyse(
        &slots,
        &AnalysisOptions {
            func_entries: entries,
        },
    )
}

fn analysed(insns: &[Insn]) -> Analysis {
    analyse_with(insns, &[]).unwrap_or_else(|e| panic!("analysis failed: {e}"))
}

fn blocks(a: &Analysis) -> Vec<(usize, usize)> {
    a.cfg.blocks.iter().map(|b| (b.start, b.end)).collect()
}
fn succs(a: &Analysis) -> Vec<Vec<u32>> {
    (0..a.cfg.len()).map(|b| a.cfg.succs(b).to_vec()).collect()
}
fn idoms(a: &Analysis) -> Vec<Option<usize>> {
    (0..a.cfg.len()).map(|b| a.dominators.idom(b)).collect()
}

// ---- Hand-computed graphs ---------------------------------------------------------------------

#[test]
fn diamond() {
    let a = analysed(&[
        mov64_imm(0, 0),
        jcond(JMP_JEQ, 1, 0, 2), // -> 4
        mov64_imm(0, 1),
        ja(1), // -> 5
        mov64_imm(0, 2),
        exit(),
    ]);
    assert_eq!(blocks(&a), [(0, 2), (2, 4), (4, 5), (5, 6)]);
    assert_eq!(succs(&a), [vec![1, 2], vec![3], vec![3], vec![]]);
    assert_eq!(a.cfg.preds(3), [1, 2]);
    // Depth-first from block 0, fall-through first: post order 3 1 2 0.
    assert_eq!(a.cfg.rpo, [0, 2, 1, 3]);
    assert_eq!(idoms(&a), [None, Some(0), Some(0), Some(0)]);
    assert!(a.dominators.dominates(0, 3) && !a.dominators.dominates(1, 3));
    assert!(a.loops.loops.is_empty() && a.loops.irreducible.is_empty());
    assert!(a.unreachable.is_empty());
    assert_eq!(a.cfg.flows[1], Flow::Branch { target: 4 });
    assert_eq!(a.cfg.flows[3], Flow::Jump { target: 5 });
}

#[test]
fn nested_loops() {
    let a = analysed(&[
        mov64_imm(0, 0),
        mov64_imm(1, 0),
        mov64_imm(2, 0),           // 2: outer header
        add64(2, 1),               // 3: inner header
        jcond(JMP_JLT, 2, 10, -2), // 4: -> 3
        add64(1, 1),               // 5
        jcond(JMP_JLT, 1, 10, -5), // 6: -> 2
        exit(),
    ]);
    assert_eq!(blocks(&a), [(0, 2), (2, 3), (3, 5), (5, 7), (7, 8)]);
    assert_eq!(
        succs(&a),
        [vec![1], vec![2], vec![3, 2], vec![4, 1], vec![]]
    );
    assert_eq!(idoms(&a), [None, Some(0), Some(1), Some(2), Some(3)]);
    let l = &a.loops.loops;
    assert_eq!(l.len(), 2);
    // Innermost first.
    assert_eq!(
        l[0],
        Loop {
            header: 2,
            latches: vec![2],
            parent: Some(1),
            depth: 2
        }
    );
    assert_eq!(
        l[1],
        Loop {
            header: 1,
            latches: vec![3],
            parent: None,
            depth: 1
        }
    );
    assert_eq!(a.loops.body(0), [2]);
    assert_eq!(a.loops.body(1), [1, 2, 3]);
    // Both are laid out header first.
    assert_eq!(a.loops.first_blocks(), [2, 1]);
    assert_eq!(
        (0..5).map(|b| a.loops.depth_of(b)).collect::<Vec<_>>(),
        [0, 1, 2, 1, 0]
    );
}

#[test]
fn a_rotated_loop_starts_at_its_body_not_its_header() {
    // The entry jumps to the test at the bottom (3), which jumps back to the body (2): 3
    // dominates 2, so 3 is the header and 2 -> 3 the back edge, but the loop's code starts at 2.
    // The backward jump at 6 goes to a merge point (5) outside any cycle.
    let a = analysed(&[
        mov64_imm(1, 0),
        ja(1),                     // 1: -> 3
        add64(1, 1),               // 2: body
        jcond(JMP_JLT, 1, 10, -2), // 3: header, -> 2
        ja(2),                     // 4: -> 7
        exit(),                    // 5: merge point
        ja(-2),                    // 6: -> 5 (unreachable from 0, never a loop)
        jcond(JMP_JEQ, 1, 0, -3),  // 7: -> 5
        exit(),
    ]);
    assert_eq!(
        blocks(&a),
        [
            (0, 2),
            (2, 3),
            (3, 4),
            (4, 5),
            (5, 6),
            (6, 7),
            (7, 8),
            (8, 9)
        ]
    );
    assert_eq!(a.loops.loops.len(), 1);
    assert_eq!(a.loops.loops[0].header, 2);
    assert_eq!(a.loops.loops[0].latches, [1]);
    assert_eq!(a.loops.first_blocks(), [1]);
}

#[test]
fn one_loop_with_two_back_edges() {
    // A `continue` at 2 and the bottom of the loop at 4 both jump back to 1.
    let a = analysed(&[
        mov64_imm(1, 0),
        add64(1, 1),                                  // 1: header
        i(CLASS_JMP | JMP_JSET | SRC_K, 1, 0, -2, 1), // 2: -> 1
        mov64_reg(2, 1),                              // 3
        jcond(JMP_JLT, 1, 10, -4),                    // 4: -> 1
        exit(),
    ]);
    assert_eq!(blocks(&a), [(0, 1), (1, 3), (3, 5), (5, 6)]);
    assert_eq!(succs(&a), [vec![1], vec![2, 1], vec![3, 1], vec![]]);
    assert_eq!(a.loops.loops.len(), 1);
    assert_eq!(a.loops.loops[0].header, 1);
    assert_eq!(a.loops.loops[0].latches, [1, 2]);
    assert_eq!(a.loops.body(0), [1, 2]);
}

#[test]
fn irreducible_cycle_is_reported_not_refused() {
    // Blocks X (1..3) and Y (3..5) form a cycle that the entry enters at both.
    let a = analysed(&[
        jcond(JMP_JEQ, 1, 0, 2),   // 0: -> 3 (Y)
        add64(0, 1),               // 1: X
        jcond(JMP_JGT, 0, 9, 2),   // 2: -> 5
        add64(0, 2),               // 3: Y
        jcond(JMP_JLT, 0, 20, -4), // 4: -> 1 (X)
        exit(),
    ]);
    assert_eq!(blocks(&a), [(0, 1), (1, 3), (3, 5), (5, 6)]);
    assert_eq!(succs(&a), [vec![1, 2], vec![2, 3], vec![3, 1], vec![]]);
    assert_eq!(a.cfg.rpo, [0, 1, 2, 3]);
    assert_eq!(idoms(&a), [None, Some(0), Some(0), Some(0)]);
    assert!(a.loops.loops.is_empty());
    assert_eq!(a.loops.irreducible, [IrreducibleEdge { from: 2, to: 1 }]);
}

#[test]
fn gotol_targets_its_32_bit_immediate_and_leaves_code_unreachable() {
    let a = analysed(&[gotol(2), mov64_imm(0, 1), exit(), mov64_imm(0, 2), exit()]);
    assert_eq!(a.cfg.flows[0], Flow::Jump { target: 3 });
    assert_eq!(blocks(&a), [(0, 1), (1, 3), (3, 5)]);
    assert_eq!(succs(&a), [vec![2], vec![], vec![]]);
    assert_eq!(a.unreachable, [1, 2]);
    assert_eq!(a.cfg.rpo_number(1), None);
    assert_eq!(a.dominators.idom(1), None);
    assert_eq!(a.dominators.idom(2), Some(0));
}

#[test]
fn lddw_is_one_instruction_and_offsets_count_slots() {
    let mut p = vec![mov64_imm(1, 5)];
    p.extend(lddw(2, 0x1_0000_0002));
    p.push(jcond(JMP_JEQ, 1, 0, 2)); // slot 3 -> slot 6
    p.extend(lddw(0, 7));
    p.push(exit());
    let a = analysed(&p);
    let prog = &a.program;
    assert_eq!(prog.len(), 5);
    assert_eq!(prog.slot_count(), 7);
    assert_eq!(
        (0..=5).map(|k| prog.slot(k)).collect::<Vec<_>>(),
        [0, 1, 3, 4, 6, 7]
    );
    assert_eq!(
        (0..7).map(|s| prog.index_of_slot(s)).collect::<Vec<_>>(),
        [Some(0), Some(1), None, Some(2), Some(3), None, Some(4)]
    );
    assert_eq!(prog.get(1).constant, 0x1_0000_0002);
    assert_eq!(prog.get(3).constant, 7);
    assert_eq!(prog.get(0).constant, 5);
    assert_eq!(a.cfg.flows[2], Flow::Branch { target: 4 });
    // The lddw stays inside the first block.
    assert_eq!(blocks(&a), [(0, 3), (3, 4), (4, 5)]);
    assert_eq!(a.aux[1].imm64, Imm64::Constant);
}

#[test]
fn unreachable_code_after_exit() {
    let a = analysed(&[mov64_imm(0, 0), exit(), mov64_imm(0, 1), exit()]);
    assert_eq!(blocks(&a), [(0, 2), (2, 4)]);
    assert_eq!(a.unreachable, [2, 3]);
    assert_eq!(a.cfg.rpo, [0]);
    assert_eq!(a.unproven_stack_reads(), []);
}

#[test]
fn helper_calls_stay_in_the_block_but_tail_calls_and_packet_loads_end_it() {
    let a = analysed(&[
        call_helper(5),                               // ktime_get_ns
        call_helper(BPF_TAIL_CALL as i32),            // may end the run
        i(CLASS_LD | MODE_ABS | SIZE_W, 0, 0, 0, 12), // may end the run
        mov64_imm(0, 0),
        exit(),
    ]);
    assert_eq!(blocks(&a), [(0, 2), (2, 3), (3, 5)]);
    assert!(a.cfg.flows[1].may_end_run() && a.cfg.flows[2].may_end_run());
    assert!(!a.cfg.flows[0].may_end_run());
    assert!(a.functions.funcs[0].has_tail_call);
}

// ---- Functions, the call graph, stack depth ---------------------------------------------------

#[test]
fn functions_ranges_and_call_graph() {
    // main: 0 st; 1 call f; 2 call f; 3-4 lddw g; 5 exit.
    // f (6): st; call g; exit.  g (9): r2 = r10; r2 += -40; call 1; exit.
    let p = vec![
        st(SIZE_DW, FP, -8, 0),
        call_local(4), // slot 1 -> 6
        call_local(3), // slot 2 -> 6
        lddw_src(2, PSEUDO_FUNC, 5, 0)[0],
        lddw_src(2, PSEUDO_FUNC, 5, 0)[1], // slot 3 -> 9
        exit(),
        st(SIZE_W, FP, -20, 1), // slot 6: f
        call_local(1),          // slot 7 -> 9
        exit(),
        mov64_reg(2, FP), // slot 9: g
        add64(2, -40),
        call_helper(1),
        exit(),
    ];
    let a = analysed(&p);
    let f = &a.functions;
    let ranges: Vec<(usize, usize)> = f
        .funcs
        .iter()
        .map(|f| (a.program.slot(f.start), a.program.slot(f.end)))
        .collect();
    assert_eq!(ranges, [(0, 6), (6, 9), (9, 13)]);
    assert!(f.funcs[1].called && !f.funcs[1].address_taken);
    assert!(f.funcs[2].called && f.funcs[2].address_taken);
    let edges: Vec<(usize, usize, usize, CallKind)> = f
        .calls
        .iter()
        .map(|c| (a.program.slot(c.site), c.caller, c.callee, c.kind))
        .collect();
    assert_eq!(
        edges,
        [
            (1, 0, 1, CallKind::Call),
            (2, 0, 1, CallKind::Call),
            (3, 0, 2, CallKind::FuncPointer),
            (7, 1, 2, CallKind::Call),
        ]
    );
    assert_eq!(f.recursive, [false, false, false]);
    assert_eq!(f.max_frames, Some(3));
    assert_eq!(a.aux[3].imm64, Imm64::Func { entry: 8 });
    assert_eq!(a.function_of(a.program.index_of_slot(10).unwrap()), 2);
    let depths = a.stack_depths(&all_five);
    let bytes: Vec<u32> = depths.iter().map(|s| s.bytes).collect();
    assert_eq!(bytes, [8, 24, 40]);
    // Along main -> f -> g, rounded to 16 each (the kernel's JIT rounding): 16 + 32 + 48.
    assert_eq!(
        a.deepest_stack_chain(&depths, StackRounding::Jit),
        Some((96, vec![0, 1, 2]))
    );
    // Rounded to 32 each (its interpreter's): 32 + 32 + 64.
    assert_eq!(
        a.deepest_stack_chain(&depths, StackRounding::Interpreter),
        Some((128, vec![0, 1, 2]))
    );
    assert_eq!(a.check_stack_limits(&depths, StackRounding::Jit), Ok(()));
}

#[test]
fn bpf_loop_callback_through_a_function_lddw() {
    let mut p = vec![mov64_imm(1, 4)];
    p.extend(lddw_src(2, PSEUDO_FUNC, 5, 0)); // slot 1 -> 7
    p.extend([
        mov64_imm(3, 0),
        mov64_imm(4, 0),
        call_helper(181), // bpf_loop
        exit(),
        mov64_imm(0, 0), // slot 7: the callback
        exit(),
    ]);
    let a = analysed(&p);
    assert_eq!(a.functions.funcs.len(), 2);
    assert_eq!(a.functions.funcs[1].start, 6);
    assert!(a.functions.funcs[1].address_taken && !a.functions.funcs[1].called);
    assert_eq!(a.aux[1].imm64, Imm64::Func { entry: 6 });
    assert_eq!(a.functions.calls[0].kind, CallKind::FuncPointer);
    assert_eq!(a.functions.max_frames, Some(2));
    assert!(
        a.unreachable.is_empty(),
        "the callback is reachable through its address"
    );
    assert_eq!(a.cfg.entries, [0, 1]);
}

#[test]
fn recursion_is_found_and_leaves_frames_unbounded() {
    let a = analysed(&[
        call_local(1), // -> 2
        exit(),
        call_local(-1), // 2: calls itself
        exit(),
    ]);
    assert_eq!(a.functions.recursive, [false, true]);
    assert_eq!(a.functions.max_frames, None);
    let depths = a.stack_depths(&all_five);
    assert_eq!(a.deepest_stack_chain(&depths, StackRounding::Jit), None);
    assert_eq!(
        a.check_stack_limits(&depths, StackRounding::Jit)
            .unwrap_err()
            .code,
        ErrorCode::E2big
    );
    // Mutual recursion through a second function.
    let a = analysed(&[
        call_local(1), // -> 2
        exit(),
        call_local(1), // 2 -> 4
        exit(),
        call_local(-3), // 4 -> 2
        exit(),
    ]);
    assert_eq!(a.functions.recursive, [false, true, true]);
}

#[test]
fn kernel_limits_on_frames_and_combined_stack() {
    // Nine frames: main and eight nested calls.
    let mut p = Vec::new();
    for _ in 0..8 {
        p.extend([call_local(1), exit()]);
    }
    p.extend([mov64_imm(0, 0), exit()]);
    let a = analysed(&p);
    assert_eq!(a.functions.max_frames, Some(9));
    let e = a
        .check_stack_limits(&a.stack_depths(&all_five), StackRounding::Jit)
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::E2big);
    assert!(
        e.message.contains("the call stack of 9 frames is too deep"),
        "{e}"
    );
    // Two functions of 300 bytes each: 600 > 512.
    let a = analysed(&[
        st(SIZE_DW, FP, -300, 0),
        call_local(1),
        exit(),
        st(SIZE_DW, FP, -300, 0),
        exit(),
    ]);
    let depths = a.stack_depths(&all_five);
    assert_eq!(depths[0].bytes, 296 + 8);
    let e = a
        .check_stack_limits(&depths, StackRounding::Jit)
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Eacces);
    assert!(
        e.message.contains("combined stack size of 2 calls is 608"),
        "{e}"
    );
}

#[test]
fn stack_depth_follows_copies_of_r10_and_flags_variable_offsets() {
    let a = analysed(&[
        mov64_reg(3, FP),
        add64(3, -64),
        stx(SIZE_B, 3, 1, 3), // r10 - 61: 61 -> 64
        mov64_reg(4, FP),
        i(CLASS_ALU64 | ALU_ADD | SRC_X, 4, 1, 0, 0), // r4 = r10 + r1: unknown offset
        ldx(SIZE_B, 0, 4, 0),
        exit(),
    ]);
    assert_eq!(
        a.stack_depths(&all_five)[0],
        StackDepth {
            bytes: 64,
            variable: true
        }
    );
    assert_eq!(a.stack_depths(&all_five)[0].bound(), MAX_BPF_STACK);
}

// ---- Structural errors ------------------------------------------------------------------------

fn error_of(insns: &[Insn], entries: &[usize]) -> ebpf_vm::LoadError {
    analyse_with(insns, entries).expect_err("the analysis must refuse it")
}

#[test]
fn a_jump_out_of_its_function_is_einval_naming_the_instruction() {
    let e = error_of(
        &[
            call_local(2),           // -> 3
            jcond(JMP_JEQ, 0, 0, 1), // 1 -> 3, inside the callee
            exit(),
            mov64_imm(0, 0), // 3
            exit(),
        ],
        &[],
    );
    assert_eq!((e.code, e.insn), (ErrorCode::Einval, Some(1)));
    assert!(
        e.message.contains("jump out of range from insn 1 to 3"),
        "{e}"
    );
}

#[test]
fn falling_into_the_next_function_is_einval() {
    let e = error_of(
        &[call_local(1), mov64_imm(0, 0), mov64_imm(0, 1), exit()],
        &[],
    );
    assert_eq!((e.code, e.insn), (ErrorCode::Einval, Some(1)));
    assert!(e.message.contains("last insn is not an exit or jmp"), "{e}");
    // The same shape is fine when nothing starts a function at slot 2...
    assert!(analyse_with(&[mov64_imm(0, 0), mov64_imm(0, 1), exit()], &[]).is_ok());
    // ...and refused when the loader's function info says something does.
    let e = error_of(&[mov64_imm(0, 0), mov64_imm(0, 1), exit()], &[1]);
    assert_eq!((e.code, e.insn), (ErrorCode::Einval, Some(0)));
}

#[test]
fn bad_function_pointers_and_entries_are_einval() {
    // Into the second slot of an lddw.
    let mut p = Vec::new();
    p.extend(lddw_src(1, PSEUDO_FUNC, 0, 0)); // slot 0 -> 1
    p.push(exit());
    let e = error_of(&p, &[]);
    assert_eq!((e.code, e.insn), (ErrorCode::Einval, Some(0)));
    assert!(e.message.contains("second slot of lddw"), "{e}");
    // Outside the program.
    let mut p = Vec::new();
    p.extend(lddw_src(1, PSEUDO_FUNC, 100, 0));
    p.push(exit());
    assert!(error_of(&p, &[]).message.contains("outside the program"));
    // A non-zero upper half.
    let mut p = Vec::new();
    p.extend(lddw_src(1, PSEUDO_FUNC, 1, 1));
    p.extend([exit(), exit()]);
    assert!(error_of(&p, &[]).message.contains("upper half"));
    // A loader entry inside an lddw.
    let mut p = Vec::new();
    p.extend(lddw(1, 0));
    p.push(exit());
    let e = error_of(&p, &[1]);
    assert_eq!(e.code, ErrorCode::Einval);
    assert!(e.message.contains("function info"), "{e}");
}

#[test]
fn slots_the_validator_never_saw_are_refused_not_panicked_on() {
    let bad: [&[Insn]; 4] = [
        &[],
        &[i(OP_LDDW, 0, 0, 0, 0)],
        &[ja(5), exit()],
        &[mov64_imm(0, 0)],
    ];
    for slots in bad {
        let e = analyse(slots, &AnalysisOptions::default()).unwrap_err();
        assert_eq!(e.code, ErrorCode::Einval, "{e}");
    }
}

// ---- The side table ---------------------------------------------------------------------------

#[test]
fn aux_says_what_each_lddw_loads() {
    let mut p = Vec::new();
    p.extend(lddw_src(1, PSEUDO_MAP_FD, 3, 0));
    p.extend(lddw_src(1, PSEUDO_MAP_IDX, 4, 0));
    p.extend(lddw_src(1, PSEUDO_MAP_VALUE, 1, 16));
    p.extend(lddw_src(1, PSEUDO_MAP_IDX_VALUE, 2, 8));
    p.extend(lddw_src(1, PSEUDO_BTF_ID, 77, 0));
    p.extend(lddw(1, u64::MAX));
    p.push(exit());
    let a = analysed(&p);
    let kinds: Vec<Imm64> = a.aux.iter().map(|x| x.imm64).collect();
    assert_eq!(
        kinds,
        [
            Imm64::Map { index: 3 },
            Imm64::Map { index: 4 },
            Imm64::MapValue {
                index: 1,
                offset: 16
            },
            Imm64::MapValue {
                index: 2,
                offset: 8
            },
            Imm64::BtfId { id: 77 },
            Imm64::Constant,
            Imm64::Constant,
        ]
    );
    assert_eq!(a.program.get(5).constant, -1);
    // Nothing is proved or recorded before the later passes run.
    assert!(a
        .aux
        .iter()
        .all(|x| x.ctx_field.is_none() && !x.proved_in_bounds && !x.prune_point));
    assert!(std::mem::size_of::<Aux>() <= 20);
}

// ---- Dataflow clients -------------------------------------------------------------------------

fn regs(mask: RegSet) -> String {
    (0..10)
        .map(|r| {
            if mask & (1 << r) != 0 {
                char::from(b'0' + r)
            } else {
                '.'
            }
        })
        .collect()
}

#[test]
fn live_registers_by_hand() {
    // Worked backwards from each exit (which reads r0): the helper call at 5 writes r0-r5 and
    // reads nothing (ktime_get_ns), so the r0 that 4 writes is dead but 4 still reads r6.
    let a = analysed(&[
        mov64_reg(6, 1),         // 0: live before: r1 r2
        jcond(JMP_JEQ, 6, 0, 2), // 1 -> 4:    r2 r6
        mov64_reg(0, 2),         // 2:         r2
        exit(),                  // 3:         r0
        mov64_reg(0, 6),         // 4:         r6
        call_helper(5),          // 5:         none
        exit(),                  // 6:         r0
    ]);
    let live: Vec<String> = a
        .live_registers(&|id| if id == 5 { 0 } else { 5 })
        .into_iter()
        .map(|m| regs(m & 0x3ff))
        .collect();
    assert_eq!(
        live,
        [
            ".12.......",
            "..2...6...",
            "..2.......",
            "0.........",
            "......6...",
            "..........",
            "0.........",
        ]
    );
    // Without prototypes a helper reads all five argument registers.
    assert_eq!(a.live_registers(&all_five)[5] & 0x3ff, 0b11_1110);
}

#[test]
fn stack_reads_not_written_on_every_path() {
    let a = analysed(&[
        st(SIZE_DW, FP, -8, 1),  // 0: writes -8..-1
        jcond(JMP_JEQ, 1, 0, 1), // 1 -> 3
        st(SIZE_W, FP, -16, 2),  // 2: writes -16..-13 on one path only
        ldx(SIZE_DW, 0, FP, -8), // 3: fine
        ldx(SIZE_W, 0, FP, -16), // 4: written on one path only
        ldx(SIZE_B, 0, FP, -9),  // 5: never written
        ldx(SIZE_H, 0, FP, -2),  // 6: fine
        exit(),
    ]);
    let reads: Vec<(usize, i16, u32)> = a
        .unproven_stack_reads()
        .iter()
        .map(|r| (r.index, r.off, r.size))
        .collect();
    assert_eq!(reads, [(4, -16, 4), (5, -9, 1)]);
    // In a loop: the store at the bottom does not cover the first iteration's load.
    let a = analysed(&[
        mov64_imm(1, 0),
        ldx(SIZE_B, 0, FP, -1), // 1: loop head: unwritten on entry
        st(SIZE_B, FP, -1, 0),  // 2
        add64(1, 1),
        jcond(JMP_JLT, 1, 4, -4), // 4 -> 1
        exit(),
    ]);
    assert_eq!(a.unproven_stack_reads().len(), 1);
    // Each function has its own frame: the callee's read is not covered by the caller's store.
    let a = analysed(&[
        st(SIZE_DW, FP, -8, 0),
        call_local(1),
        exit(),
        ldx(SIZE_DW, 0, FP, -8), // 3: callee
        exit(),
    ]);
    assert_eq!(a.unproven_stack_reads()[0].index, 3);
}

// ---- The kernel as oracle ---------------------------------------------------------------------

/// Argument counts of the helpers the fixture programs call, from their signatures in the UAPI
/// header `linux/bpf.h` (e.g. `long bpf_map_update_elem(struct bpf_map *map, const void *key,
/// const void *value, u64 flags)`: 4). The kernel's liveness counts a call's arguments so.
fn uapi_helper_args(id: u32) -> u8 {
    match id {
        1 => 2,   // map_lookup_elem
        2 => 4,   // map_update_elem
        3 => 2,   // map_delete_elem
        5 => 0,   // ktime_get_ns
        12 => 3,  // tail_call
        14 => 0,  // get_current_pid_tgid
        26 => 4,  // skb_load_bytes
        51 => 3,  // redirect_map
        87 => 3,  // map_push_elem
        88 => 2,  // map_pop_elem
        89 => 2,  // map_peek_elem
        113 => 3, // probe_read_kernel
        130 => 4, // ringbuf_output
        131 => 3, // ringbuf_reserve
        132 => 2, // ringbuf_submit
        181 => 4, // loop
        _ => 5,
    }
}

/// What Linux 6.18's verifier reported for every program of the fixtures (`bpftool -d prog
/// loadall`, the `func#N @slot` lines and the `stack depth A+B` line): function entries (slots)
/// and stack depth per function. Computed by the kernel, not by this code; rebuilt by
/// `tests/analysis_support/kernel_oracle.sh`, and checked against its output file below.
const KERNEL_FUNCS_AND_STACK: &[(&str, &str, &[usize], &[u32])] = &[
    ("all_maps", "tail", &[0], &[8]),
    ("all_maps", "all_maps", &[0], &[40]),
    // The kernel inlines bpf_loop and adds 24 bytes (three spilled registers) to the caller's
    // depth (`optimize_bpf_loop`): 24 of the program's own + 24.
    ("bpf_loop", "xdp_loop_sum", &[0, 22], &[48, 0]),
    ("core", "core_switch", &[0], &[8]),
    ("core_full", "core_everything", &[0], &[16]),
    ("globals", "xdp_globals", &[0], &[0]),
    ("kconfig", "kconfig_filter", &[0], &[0]),
    ("linked", "linked_filter", &[0, 23], &[8, 0]),
    ("map_in_map", "xdp_tenant_count", &[0], &[24]),
    ("more_maps", "xdp_more_maps", &[0], &[24]),
    ("percpu", "percpu_stats", &[0], &[16]),
    ("pkt_counter", "xdp_count", &[0, 15], &[0, 24]),
    ("pkt_counter", "tc_count", &[0, 15], &[0, 24]),
    ("prog_array_init", "count_even", &[0], &[8]),
    ("prog_array_init", "count_odd", &[0], &[8]),
    ("prog_array_init", "parity_dispatch", &[0], &[0]),
    ("ringbuf", "xdp_sample", &[0], &[0]),
    ("ringbuf", "xdp_sample_copy", &[0], &[24]),
    ("socket_filter", "udp_port_filter", &[0], &[8]),
    (
        "subprogs",
        "xdp_bucket",
        &[0, 14, 18, 24, 29],
        &[0, 0, 0, 0, 8],
    ),
    ("subprogs", "xdp_fold_only", &[0, 7, 12], &[0, 0, 0]),
    ("tail_calls", "dispatch", &[0], &[0]),
    ("tail_calls", "handle_tcp", &[0], &[8]),
    ("tail_calls", "handle_udp", &[0], &[8]),
    ("tail_calls", "handle_other", &[0], &[8]),
    ("tracing", "trace_unlink", &[0], &[16]),
    ("tracing", "trace_unlink_ret", &[0], &[0]),
    ("tracing", "trace_openat", &[0], &[16]),
    ("tracing", "trace_exit", &[0], &[8]),
    ("tracing", "raw_sys_enter", &[0], &[0]),
    ("tracing", "uprobe_any", &[0], &[16]),
    ("types", "flow_track", &[0, 73], &[120, 0]),
    ("v4_ops", "v4_filter", &[0, 67], &[16, 0]),
    ("xdp_firewall", "xdp_firewall", &[0], &[16]),
];

/// Bytes the kernel adds to a program's reported depth that are not the program's own.
fn kernel_extra_stack(fixture: &str) -> u32 {
    if fixture == "bpf_loop" {
        24
    } else {
        0
    }
}

fn analyse_for_kernel(slots: &[Insn]) -> Analysis {
    analyse(slots, &AnalysisOptions::default()).unwrap_or_else(|e| panic!("analysis failed: {e}"))
}

#[test]
fn function_entries_and_stack_depth_agree_with_the_kernel() {
    let oracle = analysis_support::kernel_oracle();
    for &(fixture, name, funcs, stack) in KERNEL_FUNCS_AND_STACK {
        let programs = analysis_support::fixture_programs(fixture);
        let (_, slots) = programs
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{fixture}/{name} is not in the fixture's libbpf.json"));
        let a = analyse_for_kernel(slots);
        let entries: Vec<usize> = a
            .functions
            .funcs
            .iter()
            .map(|f| a.program.slot(f.start))
            .collect();
        assert_eq!(entries, funcs, "{fixture}/{name}: function entries");
        let depths = a.stack_depths(&uapi_helper_args);
        let mut ours: Vec<u32> = depths.iter().map(|s| s.bytes).collect();
        ours[0] += kernel_extra_stack(fixture);
        assert_eq!(ours, stack, "{fixture}/{name}: stack depth per function");
        assert!(depths.iter().all(|s| !s.variable), "{fixture}/{name}");
        // The literals above and the script's file say the same.
        let k = &oracle[&(fixture.to_string(), name.to_string())];
        assert_eq!((k.funcs.as_slice(), k.stack.as_slice()), (funcs, stack));
    }
}

#[test]
fn live_registers_and_loops_agree_with_the_kernel() {
    let oracle = analysis_support::kernel_oracle();
    let mut compared = 0;
    let mut loops_compared = 0;
    for ((fixture, name), k) in &oracle {
        let slots = if fixture == "bench" {
            analysis_support::bench_program(name)
        } else {
            let programs = analysis_support::fixture_programs(fixture);
            programs
                .into_iter()
                .find(|(n, _)| n == name)
                .expect("program of the fixture")
                .1
        };
        let a = analyse_for_kernel(&slots);
        let live = a.live_registers(&uapi_helper_args);
        let ours: Vec<(usize, String)> = (0..a.program.len())
            .map(|i| (a.program.slot(i), regs(live[i] & 0x3ff)))
            .collect();
        let theirs: Vec<(usize, String)> =
            k.insns.iter().map(|x| (x.slot, x.live.clone())).collect();
        assert_eq!(
            ours, theirs,
            "{fixture}/{name}: registers live before each instruction"
        );
        compared += ours.len();

        // The kernel numbers the strongly connected components of the instruction graph (a call
        // of a callback-taking helper such as bpf_loop is one on its own: it models the
        // callback's repeated calls as a loop there). On a reducible graph the components with a
        // cycle are exactly the outermost natural loops.
        assert!(a.loops.irreducible.is_empty(), "{fixture}/{name}");
        let mut kernel_sccs: BTreeMap<u32, BTreeSet<usize>> = BTreeMap::new();
        for x in &k.insns {
            let index = a.program.index_of_slot(x.slot).unwrap();
            let loops_callback = a.cfg.flows[index] == Flow::Helper { id: 181 };
            if x.scc != 0 && !loops_callback {
                kernel_sccs.entry(x.scc).or_default().insert(x.slot);
            }
        }
        let mut ours: Vec<BTreeSet<usize>> = Vec::new();
        for (l, lp) in a.loops.loops.iter().enumerate() {
            if lp.parent.is_none() {
                let body = a.loops.body(l);
                ours.push(
                    body.iter()
                        .flat_map(|&b| a.cfg.blocks[b].start..a.cfg.blocks[b].end)
                        .map(|i| a.program.slot(i))
                        .collect(),
                );
            }
        }
        let mut theirs: Vec<BTreeSet<usize>> = kernel_sccs.into_values().collect();
        ours.sort();
        theirs.sort();
        assert_eq!(ours, theirs, "{fixture}/{name}: outermost loops");
        loops_compared += ours.len();
    }
    // The bench programs have loops (sieve has four, one nested twice).
    assert!(loops_compared >= 8, "only {loops_compared} loops compared");
    assert!(compared > 2000, "only {compared} instructions compared");
}

// ---- Size: near-linear passes -----------------------------------------------------------------

#[test]
fn a_million_straight_line_instructions() {
    let n = ebpf_vm::isa::MAX_INSNS;
    let a = analysed(&generated::straight_line(n));
    assert_eq!(a.cfg.len(), 1);
    assert_eq!(a.program.len(), n);
    // Only r0 is ever read (by the exit): it is live after the last mov that writes it.
    let live = a.live_registers(&all_five);
    let last_r0 = (n - 2) / 10 * 10;
    assert_eq!(live[last_r0], 0);
    assert!(live[last_r0 + 1..].iter().all(|&m| m == 1));
    assert_eq!(live.iter().filter(|&&m| m != 0).count(), n - 1 - last_r0);
}

#[test]
fn a_hundred_thousand_instructions_in_a_thousand_functions() {
    let p = generated::many_functions(1000, 92);
    assert_eq!(p.len(), 100_000);
    let a = analysed(&p);
    assert_eq!(a.functions.funcs.len(), 1000);
    assert_eq!(a.functions.max_frames, Some(1000));
    assert_eq!(a.loops.loops.len(), 1000 * 18);
    assert!(a.unreachable.is_empty());
    let depths = a.stack_depths(&all_five);
    assert!(depths.iter().all(|s| s.bytes >= 8 && s.bytes <= 64));
    let live = a.live_registers(&all_five);
    assert_eq!(live.len(), a.program.len());
    let _ = a.unproven_stack_reads();
    assert_eq!(
        a.check_stack_limits(&depths, StackRounding::Jit)
            .unwrap_err()
            .code,
        ErrorCode::E2big
    );
}

// ---- Random programs: never a panic; dominators and loops as brute force finds them -------------

fn random_program(r: &mut Rng) -> Vec<Insn> {
    let len = 2 + r.below(40) as usize;
    let mut p = Vec::new();
    while p.len() < len - 1 {
        let room = len as i64 - p.len() as i64;
        let off = r.range(-(p.len() as i64) - 1, room) as i16;
        let reg = r.below(11) as u8;
        let wreg = r.below(10) as u8;
        match r.below(16) {
            0..=3 => p.push(add64(wreg, r.range(-64, 64) as i32)),
            4 => p.push(mov64_reg(wreg, reg)),
            5 | 6 => p.push(jcond(r.pick(&[JMP_JEQ, JMP_JLT, JMP_JSGT]), reg, 3, off)),
            7 => p.push(ja(off)),
            8 => p.push(gotol(off as i32)),
            9 if r.chance(30) => p.push(call_local(off as i32)),
            10 => p.push(call_helper(r.pick(&[1, 5, 12, 181]))),
            11 => p.push(exit()),
            12 => {
                let src = r.pick(&[0, PSEUDO_FUNC, PSEUDO_MAP_FD, PSEUDO_MAP_VALUE]);
                p.extend(lddw_src(wreg, src, off as i32, r.pick(&[0, 0, 1])));
            }
            13 => p.push(stx(
                SIZE_DW,
                r.pick(&[FP, wreg]),
                reg,
                -8 * r.range(0, 70) as i16,
            )),
            14 => p.push(ldx(
                SIZE_W,
                wreg,
                r.pick(&[FP, reg]),
                -4 * r.range(0, 140) as i16,
            )),
            _ => p.push(i(CLASS_LD | MODE_IND | SIZE_B, 0, reg, 0, 4)),
        }
    }
    p.push(if r.chance(50) {
        exit()
    } else {
        ja(-(r.below(p.len() as u64 + 1) as i16) - 1)
    });
    p
}

/// Dominators by the textbook fixed point over sets, block by block, per function.
fn brute_force_dominators(a: &Analysis) -> Vec<BTreeSet<usize>> {
    let n = a.cfg.len();
    let reachable: Vec<bool> = (0..n).map(|b| a.cfg.rpo_number(b).is_some()).collect();
    let all: BTreeSet<usize> = (0..n).collect();
    let mut dom: Vec<BTreeSet<usize>> = (0..n)
        .map(|b| {
            if a.cfg.entries.contains(&b) {
                BTreeSet::from([b])
            } else {
                all.clone()
            }
        })
        .collect();
    let mut changed = true;
    while changed {
        changed = false;
        for b in 0..n {
            if a.cfg.entries.contains(&b) || !reachable[b] {
                continue;
            }
            let mut new: Option<BTreeSet<usize>> = None;
            for &p in a.cfg.preds(b) {
                if !reachable[p as usize] {
                    continue;
                }
                new = Some(match new {
                    None => dom[p as usize].clone(),
                    Some(s) => s.intersection(&dom[p as usize]).copied().collect(),
                });
            }
            let mut new = new.unwrap_or_default();
            new.insert(b);
            if new != dom[b] {
                dom[b] = new;
                changed = true;
            }
        }
    }
    dom
}

#[test]
fn random_valid_programs_never_panic_and_match_brute_force() {
    let mut r = Rng::new(0x5eed_a11a);
    let (mut valid, mut analysed_ok, mut refused, mut with_loops) = (0, 0, 0, 0);
    for _ in 0..6000 {
        let p = random_program(&mut r);
        let Ok(slots) = validate(&encode_all(&p), &|_| true) else {
            continue;
        };
        valid += 1;
        let entries: Vec<usize> = (0..r.below(3))
            .map(|_| r.below(slots.len() as u64) as usize)
            .collect();
        let a = match analyse(
            &slots,
            &AnalysisOptions {
                func_entries: &entries,
            },
        ) {
            Ok(a) => a,
            Err(e) => {
                // Structure the validator does not check (function ranges, function pointers,
                // the loader's entries): refused with EINVAL naming a slot.
                assert_eq!(e.code, ErrorCode::Einval, "{e}: {p:?}");
                assert!(
                    e.insn.is_some() || e.message.contains("function info"),
                    "{e}"
                );
                refused += 1;
                continue;
            }
        };
        analysed_ok += 1;
        // Every instruction in exactly one block, blocks tiling the program in order.
        let mut next = 0;
        for (b, block) in a.cfg.blocks.iter().enumerate() {
            assert_eq!(block.start, next);
            assert!(block.end > block.start);
            for k in block.start..block.end {
                assert_eq!(a.block_of(k), b);
            }
            next = block.end;
        }
        assert_eq!(next, a.program.len());
        // Dominators as the set computation finds them.
        let dom = brute_force_dominators(&a);
        for b in 0..a.cfg.len() {
            if a.cfg.rpo_number(b).is_none() {
                assert_eq!(a.dominators.idom(b), None);
                continue;
            }
            for d in 0..a.cfg.len() {
                let reachable = a.cfg.rpo_number(d).is_some();
                assert_eq!(
                    a.dominators.dominates(d, b),
                    reachable && dom[b].contains(&d),
                    "does block {d} dominate {b}? program {p:?}"
                );
            }
            // The immediate dominator is the closest strict dominator.
            let strict: Vec<usize> = dom[b].iter().copied().filter(|&d| d != b).collect();
            let closest = strict
                .iter()
                .copied()
                .find(|&d| strict.iter().all(|&e| dom[d].contains(&e)));
            assert_eq!(a.dominators.idom(b), closest, "idom of {b}: {p:?}");
        }
        // Natural loops: for each header, the blocks that reach a latch without passing it.
        for (l, lp) in a.loops.loops.iter().enumerate() {
            let mut body = BTreeSet::from([lp.header]);
            let mut work: Vec<usize> = lp.latches.clone();
            while let Some(x) = work.pop() {
                if a.cfg.rpo_number(x).is_some() && body.insert(x) {
                    work.extend(a.cfg.preds(x).iter().map(|&p| p as usize));
                }
            }
            let ours: BTreeSet<usize> = a.loops.body(l).into_iter().collect();
            assert_eq!(ours, body, "loop {l} of {p:?}");
            with_loops += 1;
        }
        // Every back edge belongs to a loop; every other retreating edge is irreducible.
        for (b, dominators_of_b) in dom.iter().enumerate() {
            for &s in a.cfg.succs(b) {
                let s = s as usize;
                if a.cfg.rpo_number(b).is_none() || a.cfg.rpo_number(s) > a.cfg.rpo_number(b) {
                    continue;
                }
                let back = dominators_of_b.contains(&s);
                let in_loop = a
                    .loops
                    .loops
                    .iter()
                    .any(|lp| lp.header == s && lp.latches.contains(&b));
                assert_eq!(back, in_loop);
                assert_eq!(
                    !back,
                    a.loops
                        .irreducible
                        .contains(&IrreducibleEdge { from: b, to: s })
                );
            }
        }
        // The clients run.
        let _ = a.live_registers(&all_five);
        let _ = a.unproven_stack_reads();
        let depths = a.stack_depths(&all_five);
        let _ = a.check_stack_limits(&depths, StackRounding::Interpreter);
        let _ = a.deepest_stack_chain(&depths, StackRounding::Jit);
    }
    // The generator must actually exercise the analysis.
    eprintln!("{valid} valid: {analysed_ok} analysed, {refused} refused; {with_loops} loops");
    assert!(valid > 1500, "only {valid} random programs validated");
    assert!(
        analysed_ok > 600 && refused > 600,
        "{analysed_ok} analysed, {refused} refused"
    );
    assert!(with_loops > 300, "only {with_loops} loops checked");
}
