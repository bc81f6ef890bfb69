//! Differential testing: randomly generated valid programs run on the interpreter (the reference)
//! and on the JIT, against the same memory at the same addresses. r0, the instruction count, the
//! trap (kind, pc, addr, size, insn_count, message) and the final bytes of every writable region
//! must be identical. Memory: the stack, the data (sometimes read-only), an extra region (sometimes
//! overlapping the data) and a buffer whose region a helper adds during the run.
//!
//! `cargo test -p ebpf-vm --test differential` runs a bounded number of cases; set
//! `DIFF_CASES=200000` for a long run and `DIFF_SEED=<n>` to pick the first seed (a failure
//! prints the seed and the program of the failing case).
#![cfg(target_arch = "x86_64")]

mod random_programs;
mod rng;
use ebpf_vm::helpers::{HelperError, HelperTable};
use ebpf_vm::interpreter::{self, RunEnv, STACK_SIZE};
use ebpf_vm::isa::{encode_all, validate, Insn};
use ebpf_vm::jit::{JitOptions, JitProgram};
use ebpf_vm::memory::{Region, Regions};
use ebpf_vm::{RunOutput, Trap};
use random_programs::*;
use rng::{Random, Rng};

fn helpers(value: u64) -> HelperTable {
    let mut t = HelperTable::new();
    t.register(HELPER_VALUE, "value", move |cx, _| {
        cx.regions.push(Region::new(value, VALUE_LEN as u64, true));
        Ok(value)
    });
    t.register(HELPER_MIX, "mix", |_, a| {
        Ok(a[0].wrapping_mul(3) ^ a[1].rotate_left(7) ^ a[4])
    });
    t.register(HELPER_FAILS_ON_ODD, "fails_on_odd", |_, a| {
        if a[0] & 1 == 1 {
            Err(HelperError("odd argument".into()))
        } else {
            Ok(a[1].wrapping_add(1))
        }
    });
    t
}

/// Everything a run can be judged by.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    result: Result<RunOutput, Trap>,
    data: Vec<u8>,
    extra: Vec<u8>,
    value: Vec<u8>,
}

/// Memory of one case, at fixed addresses for both engines.
struct Memory {
    stack: Vec<u64>,
    data: Vec<u8>,
    extra: Vec<u8>,
    value: Vec<u8>,
}

/// What a case runs against, besides the program.
struct Setup<'a> {
    init: &'a [u8],
    data_writable: bool,
    extra_overlaps: bool,
    budget: u64,
    helpers: &'a HelperTable,
}

fn run_case(
    insns: &[Insn],
    jit: Option<&JitProgram>,
    mem: &mut Memory,
    setup: &Setup<'_>,
) -> Outcome {
    mem.stack.iter_mut().for_each(|w| *w = 0);
    let Setup {
        init,
        data_writable,
        extra_overlaps,
        budget,
        helpers,
    } = *setup;
    mem.data.copy_from_slice(init);
    mem.extra.copy_from_slice(&init[..EXTRA_LEN]);
    mem.value.copy_from_slice(&init[DATA_LEN - VALUE_LEN..]);
    let stack = mem.stack.as_mut_ptr() as u64;
    let data = mem.data.as_mut_ptr() as u64;
    // Sometimes the extra region is a writable window into the (maybe read-only) data, so that
    // the order in which regions are searched matters.
    let extra = if extra_overlaps {
        data + 8
    } else {
        mem.extra.as_mut_ptr() as u64
    };
    let mut regions = Regions::new();
    regions.set_stack(Region::new(stack, STACK_SIZE as u64, true));
    regions.set_data(Region::new(data, DATA_LEN as u64, data_writable));
    regions.push(Region::new(extra, EXTRA_LEN as u64, true));
    let mut env = RunEnv {
        helpers,
        regions: &mut regions,
        stack_top: stack + STACK_SIZE as u64,
        budget,
        packet: (data, DATA_LEN as u64),
        maps: &mut Default::default(),
        state: &mut Default::default(),
        function_runner: None,
    };
    let args = [data, DATA_LEN as u64, extra, 0, 0];
    let result = match jit {
        None => interpreter::run(insns, &mut env, args),
        Some(j) => j.run(insns, &mut env, args),
    };
    Outcome {
        result,
        data: mem.data.clone(),
        extra: mem.extra.clone(),
        value: mem.value.clone(),
    }
}

fn listing(insns: &[Insn]) -> String {
    insns
        .iter()
        .enumerate()
        .map(|(pc, i)| format!("{pc:3}: {i:?}\n"))
        .collect()
}

#[test]
fn jit_agrees_with_interpreter_on_random_programs() {
    let cases: u64 = std::env::var("DIFF_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let first: u64 = std::env::var("DIFF_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut mem = Memory {
        stack: vec![0; STACK_SIZE / 8],
        data: vec![0; DATA_LEN],
        extra: vec![0; EXTRA_LEN],
        value: vec![0; VALUE_LEN],
    };
    let helpers = helpers(mem.value.as_mut_ptr() as u64);
    let (mut trapped, mut exited) = (0u64, 0u64);
    let mut kinds = std::collections::BTreeMap::new();
    for seed in first..first + cases {
        let mut r = Rng::new(seed);
        let insns = generate(&mut r);
        let insns = validate(&encode_all(&insns), &|id| helpers.contains(id)).unwrap_or_else(|e| {
            panic!(
                "seed {seed}: generated program is invalid: {e}\n{}",
                listing(&insns)
            )
        });
        // Half the programs with constant blinding (the default), half without.
        let options = JitOptions {
            blind_constants: seed % 2 == 0,
            coverage: None,
            meter: true,
        };
        let jit = JitProgram::compile_with(&insns, options)
            .unwrap_or_else(|e| panic!("seed {seed}: JIT rejected a valid program: {e}"));
        let init: Vec<u8> = (0..DATA_LEN).map(|_| r.next() as u8).collect();
        let data_writable = r.chance(85);
        let extra_overlaps = r.chance(20);
        let budget = r.range(0, 3000) as u64;
        let setup = Setup {
            init: &init,
            data_writable,
            extra_overlaps,
            budget,
            helpers: &helpers,
        };
        let want = run_case(&insns, None, &mut mem, &setup);
        let got = run_case(&insns, Some(&jit), &mut mem, &setup);
        if want != got {
            panic!(
                "seed {seed}: engines disagree (budget {budget}, data writable {data_writable}, \
                 extra overlaps {extra_overlaps})\n\
                 interpreter: {:?}\njit:         {:?}\n{}\n{}",
                want.result,
                got.result,
                listing(&insns),
                jit.disassembly(&[0])
            );
        }
        match &want.result {
            Ok(_) => exited += 1,
            Err(t) => {
                trapped += 1;
                *kinds.entry(t.kind.as_str()).or_insert(0u64) += 1;
            }
        }
    }
    println!("{cases} cases: {exited} exited, {trapped} trapped: {kinds:?}");
    // The generator must exercise both endings, or the comparison proves little.
    assert!(
        exited > cases / 20 && trapped > cases / 20,
        "exited {exited}, trapped {trapped}"
    );
}

#[test]
fn compiled_code_refuses_a_stack_that_is_not_under_r10() {
    // An environment whose stack region ends 8 bytes below r10: compiled code would touch the 8
    // bytes above it unchecked, so the run is refused (it used to fall back to the interpreter).
    let insns = [
        Insn::new(0x7a, 10, 0, -8, 1), // *(u64 *)(r10 - 8) = 1
        Insn::new(0xb7, 0, 0, 0, 0),   // r0 = 0
        Insn::new(0x95, 0, 0, 0, 0),   // exit
    ];
    let jit = JitProgram::compile(&insns).unwrap();
    let mut stack = vec![0u64; STACK_SIZE / 8 + 1];
    let base = stack.as_mut_ptr() as u64;
    let helpers = HelperTable::new();
    for (stack_len, r10, ok) in [
        (STACK_SIZE as u64, base + STACK_SIZE as u64, true),
        (STACK_SIZE as u64 - 8, base + STACK_SIZE as u64, false),
        (STACK_SIZE as u64, base + STACK_SIZE as u64 + 8, false),
    ] {
        let mut regions = Regions::new();
        regions.set_stack(Region::new(base, stack_len, true));
        let mut env = RunEnv {
            helpers: &helpers,
            regions: &mut regions,
            stack_top: r10,
            budget: 100,
            packet: (0, 0),
            maps: &mut Default::default(),
            state: &mut Default::default(),
            function_runner: None,
        };
        let result = jit.run(&insns, &mut env, [0; 5]);
        match result {
            Ok(out) => assert!(ok && out.r0 == 0, "{stack_len} {r10:#x}"),
            Err(trap) => {
                assert!(!ok, "{trap}");
                assert_eq!(trap.kind, ebpf_vm::TrapKind::InvalidInput, "{trap}");
            }
        }
    }
    assert_eq!(stack[STACK_SIZE / 8 - 1], 1);
}
