//! Global functions (BTF linkage global): verified once, on their own, from their argument types,
//! and at each call only the arguments are checked against them. The kernel needs BTF function
//! info to tell a global function, which the raw-instruction oracle of `verifier_support` does not
//! load, so the expected logs here are Linux 6.18's own logs (level 1, and 2 where said) for the
//! same instructions, compiled from `__test__/verifier-corpus/c/functions.c` and `global_args.c`
//! by clang-19 and loaded by `__test__/verifier-corpus/load_object.c` (libbpf); source-line
//! comments left out, as these programs have no line info.

mod verifier_support;

use ebpf_vm::analysis::{analyse, AnalysisOptions};
use ebpf_vm::isa::Insn;
use ebpf_vm::verifier::{verify, FuncArg, GlobalFunction, ProgramKind, Rejection, VerifyOptions};
use verifier_support::compare::kernel_prototype_of;

fn i(opcode: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn::new(opcode, dst, src, off, imm)
}

fn exit() -> Insn {
    i(0x95, 0, 0, 0, 0)
}

/// Verifies a socket filter whose global functions are `globals`, at log level `level`.
fn run(slots: &[Insn], globals: &[GlobalFunction], level: u32) -> Result<(u64, String), Rejection> {
    let entries: Vec<usize> = globals.iter().map(|g| g.slot).collect();
    let analysis = analyse(
        slots,
        &AnalysisOptions {
            func_entries: &entries,
        },
    )
    .expect("analyses");
    let names = |id: i32| (id == 7).then(|| "bpf_get_prandom_u32".to_string());
    let options = VerifyOptions {
        globals,
        unprivileged: false,
        exit_range: false,
        kind: ProgramKind::SocketFilter,
        maps: &[],
        helper_name: &names,
        prototype: &kernel_prototype_of,
        gpl_compatible: true,
        log_level: level,
    };
    verify(&analysis, &options).map(|v| (v.processed, v.log))
}

fn global(slot: usize, name: &str, args: Vec<FuncArg>) -> GlobalFunction {
    GlobalFunction {
        slot,
        name: name.to_string(),
        args: Ok(args),
    }
}

const INT_PTR: FuncArg = FuncArg::Mem {
    size: 4,
    nullable: true,
};

/// `int v = 1; return f(&v);` calling `f` at slot 6.
fn pass_stack_int() -> Vec<Insn> {
    vec![
        i(0xb4, 1, 0, 0, 1),   // w1 = 1
        i(0x63, 10, 1, -4, 0), // *(u32 *)(r10 -4) = r1
        i(0xbf, 1, 10, 0, 0),  // r1 = r10
        i(0x07, 1, 0, 0, -4),  // r1 += -4
        i(0x85, 0, 1, 0, 1),   // call pc+1
        exit(),
    ]
}

#[test]
fn a_global_function_is_proved_for_any_pointer_of_its_type_not_for_its_callers_one() {
    // functions.c: global_deref_unchecked(int *p) { return *p; }, called with &v.
    let mut p = pass_stack_int();
    p.extend([i(0x61, 0, 1, 0, 0), exit()]);
    let g = [global(6, "global_deref_unchecked", vec![INT_PTR])];
    let r = run(&p, &g, 1).expect_err("p may be NULL in the function's own proof");
    assert_eq!(r.message, "R1 invalid mem access 'mem_or_null'");
    assert_eq!(r.code.as_str(), "EACCES");
    assert_eq!(
        r.log,
        "Validating global_deref_unchecked() func#1...\n\
         6: R1=mem_or_null(id=1,sz=4) R10=fp0\n\
         6: (61) r0 = *(u32 *)(r1 +0)\n\
         R1 invalid mem access 'mem_or_null'\n\
         processed 7 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n"
    );
    // As a static function, it is proved with the caller's pointer.
    assert!(run(&p, &[], 1).is_ok());
}

#[test]
fn a_global_function_reads_only_the_size_of_its_pointed_to_type() {
    // functions.c: global_reads_past_int(int *p) { return p ? p[1] : 0; }, called with int v[2].
    let p = [
        i(0x18, 1, 0, 0, 1),
        i(0, 0, 0, 0, 2), // r1 = 0x200000001 ll
        i(0x7b, 10, 1, -8, 0),
        i(0xbf, 1, 10, 0, 0),
        i(0x07, 1, 0, 0, -8),
        i(0x85, 0, 1, 0, 1),
        exit(),
        i(0xb4, 0, 0, 0, 0), // w0 = 0
        i(0x15, 1, 0, 1, 0), // if r1 == 0x0 goto pc+1
        i(0x61, 0, 1, 4, 0), // r0 = *(u32 *)(r1 +4)
        exit(),
    ];
    let g = [global(7, "global_reads_past_int", vec![INT_PTR])];
    let r = run(&p, &g, 1).expect_err("past the int");
    assert_eq!(
        r.log,
        "Validating global_reads_past_int() func#1...\n\
         7: R1=mem_or_null(id=1,sz=4) R10=fp0\n\
         7: (b4) w0 = 0                        ; R0=0\n\
         8: (15) if r1 == 0x0 goto pc+1        ; R1=mem(sz=4)\n\
         9: (61) r0 = *(u32 *)(r1 +4)\n\
         invalid access to memory, mem_size=4 off=4 size=4\n\
         R1 min value is outside of the allowed memory range\n\
         processed 9 insns (limit 1000000) max_states_per_insn 0 total_states 1 peak_states 1 mark_read 0\n"
    );
}

#[test]
fn an_accepted_program_leaves_only_the_summary_at_level_1() {
    // functions.c: global_add(int a, int b) { return a + b; } called with 1, 2.
    let p = [
        i(0xb4, 1, 0, 0, 1),
        i(0xb4, 2, 0, 0, 2),
        i(0x85, 0, 1, 0, 1),
        exit(),
        i(0xbc, 0, 2, 0, 0), // w0 = w2
        i(0x0c, 0, 1, 0, 0), // w0 += w1
        exit(),
    ];
    let g = [global(
        4,
        "global_add",
        vec![FuncArg::Scalar, FuncArg::Scalar],
    )];
    let (processed, log) = run(&p, &g, 1).expect("accepted");
    assert_eq!(processed, 7);
    assert_eq!(
        log,
        "Func#1 ('global_add') is safe for any args that match its prototype\n\
         processed 7 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n"
    );
    // The caller's R0 is an unknown scalar after the call, R1-R5 gone (level 2 shows the walk).
    let (_, log) = run(&p, &g, 2).expect("accepted");
    assert!(log.contains("2: (85) call pc+1\nFunc#1 ('global_add') is global and assumed valid.\n"));
}

#[test]
fn a_call_must_pass_what_the_prototype_says() {
    // global_args.c, as 6.18 refuses each call (errno EINVAL, then "Caller passes invalid args").
    let callee = [i(0xb4, 0, 0, 0, 0), exit()];
    let cases: [(&str, Vec<Insn>, FuncArg, &str); 3] = [
        (
            // ga_read_checked((int *)ctx)
            "ctx for int *",
            vec![i(0x85, 0, 1, 0, 1), exit()],
            INT_PTR,
            "R1 type=ctx expected=fp",
        ),
        (
            // ga_scale((long)&v)
            "pointer for long",
            vec![
                i(0xbf, 1, 10, 0, 0),
                i(0x07, 1, 0, 0, -4),
                i(0x85, 0, 1, 0, 1),
                exit(),
            ],
            FuncArg::Scalar,
            "R1 is not a scalar",
        ),
        (
            // ga_sum_pair((struct pair *)&v) with int v: 8 bytes from fp-4
            "4 stack bytes for an 8-byte struct",
            vec![
                i(0xb4, 1, 0, 0, 1),
                i(0x63, 10, 1, -4, 0),
                i(0xbf, 1, 10, 0, 0),
                i(0x07, 1, 0, 0, -4),
                i(0x85, 0, 1, 0, 1),
                exit(),
            ],
            FuncArg::Mem {
                size: 8,
                nullable: true,
            },
            "invalid read from stack R1 off=-4 size=8",
        ),
    ];
    for (what, mut p, arg, first) in cases {
        let entry = p.len();
        p.extend(callee);
        let g = [global(entry, "f", vec![arg])];
        let r = run(&p, &g, 1).expect_err(what);
        assert_eq!(
            r.message, "Caller passes invalid args into func#1 ('f')",
            "{what}"
        );
        assert_eq!(r.code.as_str(), "EINVAL", "{what}");
        assert!(
            r.log.contains(&format!("{first}\nCaller passes")),
            "{what}: {}",
            r.log
        );
    }
    // NULL (a known zero) is fine for a pointer, and the function is proved for it anyway.
    let mut p = vec![i(0xb7, 1, 0, 0, 0), i(0x85, 0, 1, 0, 1), exit()];
    p.extend(callee);
    assert!(run(&p, &[global(3, "f", vec![INT_PTR])], 0).is_ok());
}

#[test]
fn a_prototype_the_kernel_cannot_use_refuses_the_call() {
    let mut p = vec![i(0x85, 0, 1, 0, 1), exit()];
    p.extend([i(0xb4, 0, 0, 0, 0), exit()]);
    let message =
        "Global function ga_void_store() doesn't return scalar. Only those are supported.";
    let g = [GlobalFunction {
        slot: 2,
        name: "ga_void_store".to_string(),
        args: Err(message.to_string()),
    }];
    let r = run(&p, &g, 1).expect_err("refused");
    assert_eq!(
        r.message,
        "Caller passes invalid args into func#1 ('ga_void_store')"
    );
    assert!(r.log.contains(&format!("{message}\n")));
}

#[test]
fn a_global_function_must_return_a_scalar() {
    // Returns its pointer argument: refused at its exit (the kernel's `check_return_code`).
    let p = [
        i(0xb7, 1, 0, 0, 0),
        i(0x85, 0, 1, 0, 1),
        exit(),
        i(0xbf, 0, 1, 0, 0),
        exit(),
    ];
    let g = [global(3, "f", vec![INT_PTR])];
    let r = run(&p, &g, 1).expect_err("a pointer returned");
    assert_eq!(
        r.message,
        "At subprogram exit the register R0 is not a scalar value (mem_or_null)"
    );
}

#[test]
fn global_functions_walked_after_the_main_one_at_level_2_as_the_kernel_logs_them() {
    // global_args.c's socket_ga_global_calls_global_ok: ga_outer(&v) calls ga_read_checked(p)
    // and ga_scale(2), each global. Expected: the kernel's level-2 log (its liveness lines and
    // source lines left out): each function walked once, after the main one, in index order,
    // the counters running on across the walks.
    let p = [
        i(0xb4, 1, 0, 0, 5),
        i(0x63, 10, 1, -4, 0),
        i(0xbf, 1, 10, 0, 0),
        i(0x07, 1, 0, 0, -4),
        i(0x85, 0, 1, 0, 1),
        exit(),
        // ga_outer
        i(0x85, 0, 1, 0, 5),
        i(0xbc, 6, 0, 0, 0),
        i(0xb7, 1, 0, 0, 2),
        i(0x85, 0, 1, 0, 6),
        i(0x0c, 0, 6, 0, 0),
        exit(),
        // ga_read_checked
        i(0xb4, 0, 0, 0, 0),
        i(0x15, 1, 0, 1, 0),
        i(0x61, 0, 1, 0, 0),
        exit(),
        // ga_scale
        i(0xbf, 0, 1, 0, 0),
        i(0x24, 0, 0, 0, 3),
        exit(),
    ];
    let g = [
        global(6, "ga_outer", vec![INT_PTR]),
        global(12, "ga_read_checked", vec![INT_PTR]),
        global(16, "ga_scale", vec![FuncArg::Scalar]),
    ];
    let (processed, log) = run(&p, &g, 2).expect("accepted");
    assert_eq!(processed, 20);
    let kernel = [
        "0: R1=ctx() R10=fp0",
        "0: (b4) w1 = 5                        ; R1=5",
        "1: (63) *(u32 *)(r10 -4) = r1         ; R1=5 R10=fp0 fp-8=mmmm????",
        "2: (bf) r1 = r10                      ; R1=fp0 R10=fp0",
        "3: (07) r1 += -4                      ; R1=fp-4",
        "4: (85) call pc+1",
        "Func#1 ('ga_outer') is global and assumed valid.",
        "5: R0=scalar()",
        "5: (95) exit",
        "Validating ga_outer() func#1...",
        "6: R1=mem_or_null(id=1,sz=4) R10=fp0",
        "6: (85) call pc+5",
        "Func#2 ('ga_read_checked') is global and assumed valid.",
        "7: R0=scalar()",
        "7: (bc) w6 = w0                       ; R0=scalar() R6=scalar(smin=0,smax=umax=0xffffffff,var_off=(0x0; 0xffffffff))",
        "8: (b7) r1 = 2                        ; R1=2",
        "9: (85) call pc+6",
        "Func#3 ('ga_scale') is global and assumed valid.",
        "10: R0=scalar()",
        "10: (0c) w0 += w6                     ; R0=scalar(smin=0,smax=umax=0xffffffff,var_off=(0x0; 0xffffffff)) R6=scalar(smin=0,smax=umax=0xffffffff,var_off=(0x0; 0xffffffff))",
        "11: (95) exit",
        "Func#1 ('ga_outer') is safe for any args that match its prototype",
        "Validating ga_read_checked() func#2...",
        "12: R1=mem_or_null(id=2,sz=4) R10=fp0",
        "12: (b4) w0 = 0                       ; R0=0",
        "13: (15) if r1 == 0x0 goto pc+1       ; R1=mem(sz=4)",
        "14: (61) r0 = *(u32 *)(r1 +0)         ; R0=scalar(smin=0,smax=umax=0xffffffff,var_off=(0x0; 0xffffffff)) R1=mem(sz=4)",
        "15: (95) exit",
        "",
        "from 13 to 15: safe",
        "Func#2 ('ga_read_checked') is safe for any args that match its prototype",
        "Validating ga_scale() func#3...",
        "16: R1=scalar() R10=fp0",
        "16: (bf) r0 = r1                      ; R0=scalar(id=3) R1=scalar(id=3)",
        "17: (24) w0 *= 3                      ; R0=scalar(smin=0,smax=umax=0xffffffff,var_off=(0x0; 0xffffffff))",
        "18: (95) exit",
        "Func#3 ('ga_scale') is safe for any args that match its prototype",
        "processed 20 insns (limit 1000000) max_states_per_insn 0 total_states 2 peak_states 2 mark_read 0",
    ];
    assert_eq!(log, format!("{}\n", kernel.join("\n")));
}
