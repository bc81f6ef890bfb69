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

mod rng;
use ebpf_vm::helpers::{HelperError, HelperTable};
use ebpf_vm::interpreter::{self, RunEnv, STACK_SIZE};
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::{encode_all, validate, Insn};
use ebpf_vm::jit::{JitOptions, JitProgram};
use ebpf_vm::memory::{Region, Regions};
use ebpf_vm::{RunOutput, Trap};
use rng::{Random, Rng};

const DATA_LEN: usize = 64;
const EXTRA_LEN: usize = 32;
const VALUE_LEN: usize = 24;
const HELPER_MIX: u32 = 1;
const HELPER_FAILS_ON_ODD: u32 = 2;
/// Adds a region for the buffer at `value` and returns its address, as a map lookup does: the
/// run's region table grows while compiled code runs.
const HELPER_VALUE: u32 = 3;

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

/// One program item before jump offsets are known.
#[derive(Clone, Debug)]
enum Item {
    Plain(Insn),
    Lddw(u8, u64),
    /// A jump (opcode, dst, src, imm) to item `target`.
    Jump(u8, u8, u8, i32, usize),
    /// `ja32` to item `target`.
    Ja32(usize),
    /// Local call to the item index `target`.
    Call(usize),
}

fn interesting(r: &mut Rng) -> u64 {
    match r.below(12) {
        0 => 0,
        1 => 1,
        2 => u64::MAX,
        3 => i64::MIN as u64,
        4 => i64::MAX as u64,
        5 => i32::MIN as i64 as u64,
        6 => 0x8000_0000,
        7 => 0xffff_ffff,
        8 => 0x1_0000_0000,
        9 => r.below(64),
        _ => r.next(),
    }
}

fn imm(r: &mut Rng) -> i32 {
    match r.below(8) {
        0 => 0,
        1 => -1,
        2 => i32::MIN,
        3 => 1,
        4 => r.range(-64, 64) as i32,
        _ => r.next() as i32,
    }
}

/// A register the program may write: mostly not r1 (data) or r3 (extra region), so that memory
/// traffic through them stays interesting.
fn dst(r: &mut Rng) -> u8 {
    if r.chance(5) {
        r.pick(&[1, 3])
    } else {
        r.pick(&[0, 2, 4, 5, 6, 7, 8, 9])
    }
}

fn src(r: &mut Rng) -> u8 {
    r.below(11) as u8
}

fn alu(r: &mut Rng) -> Insn {
    let class = r.pick(&[CLASS_ALU, CLASS_ALU64]);
    let ops = [
        ALU_ADD, ALU_SUB, ALU_MUL, ALU_DIV, ALU_OR, ALU_AND, ALU_LSH, ALU_RSH, ALU_NEG, ALU_MOD,
        ALU_XOR, ALU_MOV, ALU_ARSH, ALU_END,
    ];
    let op = r.pick(&ops);
    let d = dst(r);
    match op {
        ALU_NEG => Insn::new(class | op, d, 0, 0, 0),
        ALU_END => {
            let opcode = r.pick(&[
                CLASS_ALU | ALU_END,
                CLASS_ALU | ALU_END | SRC_X,
                CLASS_ALU64 | ALU_END,
            ]);
            Insn::new(opcode, d, 0, 0, r.pick(&[16, 32, 64]))
        }
        _ => {
            let off = match op {
                ALU_DIV | ALU_MOD => r.pick(&[0i16, 1]),
                ALU_MOV if class == CLASS_ALU64 => r.pick(&[0i16, 0, 8, 16, 32]),
                ALU_MOV => r.pick(&[0i16, 0, 8, 16]),
                _ => 0,
            };
            if r.chance(50) {
                Insn::new(class | op | SRC_X, d, src(r), off, 0)
            } else {
                let off = if op == ALU_MOV { 0 } else { off };
                let k = if matches!(op, ALU_LSH | ALU_RSH | ALU_ARSH) && r.chance(70) {
                    r.below(64) as i32
                } else {
                    imm(r)
                };
                Insn::new(class | op, d, 0, off, k)
            }
        }
    }
}

/// Base register and offset of a memory access of `size` bytes.
fn address(r: &mut Rng, size: u32) -> (u8, i16) {
    match r.below(10) {
        0..=3 => (10, r.range(-530, 8) as i16),
        4..=6 => (1, r.range(-4, DATA_LEN as i64 + 4) as i16),
        7 | 8 => (3, r.range(-4, EXTRA_LEN as i64 + 4) as i16),
        _ => (src(r), r.range(-16, 16) as i16 * size as i16),
    }
}

fn size_bits(r: &mut Rng) -> (u8, u32) {
    r.pick(&[(SIZE_B, 1), (SIZE_H, 2), (SIZE_W, 4), (SIZE_DW, 8)])
}

fn memory(r: &mut Rng) -> Insn {
    let (sz, size) = size_bits(r);
    match r.below(3) {
        0 => {
            let (base, off) = address(r, size);
            let mode = if size != 8 && r.chance(30) {
                MODE_MEMSX
            } else {
                MODE_MEM
            };
            Insn::new(CLASS_LDX | mode | sz, dst(r), base, off, 0)
        }
        1 => {
            let (base, off) = address(r, size);
            Insn::new(CLASS_ST | MODE_MEM | sz, base, 0, off, imm(r))
        }
        _ => {
            let (base, off) = address(r, size);
            Insn::new(CLASS_STX | MODE_MEM | sz, base, src(r), off, 0)
        }
    }
}

fn atomic(r: &mut Rng) -> Insn {
    let (sz, size) = r.pick(&[(SIZE_W, 4u32), (SIZE_DW, 8)]);
    let (base, mut off) = address(r, size);
    if r.chance(85) {
        off -= off.rem_euclid(size as i16);
    }
    // Every atomic operation the validator accepts.
    let op = r.pick(ebpf_vm::isa::table::ATOMIC_OPS);
    Insn::new(
        CLASS_STX | MODE_ATOMIC | sz,
        base,
        r.below(10) as u8,
        off,
        op,
    )
}

fn jump(r: &mut Rng, target: usize) -> Item {
    let class = r.pick(&[CLASS_JMP, CLASS_JMP32]);
    let op = r.pick(&[
        JMP_JEQ, JMP_JGT, JMP_JGE, JMP_JSET, JMP_JNE, JMP_JSGT, JMP_JSGE, JMP_JLT, JMP_JLE,
        JMP_JSLT, JMP_JSLE,
    ]);
    if r.chance(50) {
        Item::Jump(class | op | SRC_X, src(r), src(r), 0, target)
    } else {
        Item::Jump(class | op, src(r), 0, imm(r), target)
    }
}

/// A counted loop as clang writes it (`t = b; t += i; access [t + off]; i += step;
/// if i < n goto head`), which the JIT may check once at its head: with the index, bound and base
/// sometimes set to fitting values and sometimes left as they are (anything), 64- or 32-bit,
/// loads and stores of every size, and sometimes a write to the base or an extra instruction.
fn counted_loop(r: &mut Rng, base: usize, items: &mut Vec<Item>) {
    let regs = [0u8, 2, 4, 5, 6, 7, 8, 9];
    let i = r.pick(&regs);
    let n = r.pick(&regs);
    let t = r.pick(&regs);
    let b = if r.chance(70) {
        1
    } else if r.chance(50) {
        3
    } else {
        src(r)
    };
    if r.chance(70) {
        let i0 = if r.chance(80) {
            r.range(0, 4)
        } else {
            r.pick(&[-1, -2, 0x7fff_ffff, DATA_LEN as i64 + 3])
        };
        items.push(Item::Plain(Insn::new(
            CLASS_ALU64 | ALU_MOV,
            i,
            0,
            0,
            i0 as i32,
        )));
    }
    let wide = r.chance(60);
    // `if i != n` counting up by one (64-bit), as clang writes fixed-count loops.
    let counts_up = wide && r.chance(40);
    let imm_bound = r.chance(40);
    let bound = r.range(0, 2 * DATA_LEN as i64) as i32;
    if !imm_bound && r.chance(70) {
        items.push(Item::Plain(Insn::new(
            CLASS_ALU64 | ALU_MOV,
            n,
            0,
            0,
            bound,
        )));
    }
    let head = base + items.len();
    items.push(Item::Plain(Insn::new(
        CLASS_ALU64 | ALU_MOV | SRC_X,
        t,
        b,
        0,
        0,
    )));
    items.push(Item::Plain(Insn::new(
        CLASS_ALU64 | ALU_ADD | SRC_X,
        t,
        i,
        0,
        0,
    )));
    let (sz, _) = size_bits(r);
    let off = r.range(-4, 8) as i16;
    items.push(Item::Plain(match r.below(3) {
        0 => Insn::new(CLASS_LDX | MODE_MEM | sz, dst(r), t, off, 0),
        1 => Insn::new(CLASS_ST | MODE_MEM | sz, t, 0, off, imm(r)),
        _ => Insn::new(CLASS_STX | MODE_MEM | sz, t, src(r), off, 0),
    }));
    if r.chance(30) {
        items.push(Item::Plain(alu(r)));
    }
    let step_class = if wide || r.chance(20) {
        CLASS_ALU64
    } else {
        CLASS_ALU
    };
    let step = if counts_up && r.chance(85) {
        1
    } else {
        r.range(1, 9) as i32
    };
    items.push(Item::Plain(Insn::new(step_class | ALU_ADD, i, 0, 0, step)));
    let class = if wide { CLASS_JMP } else { CLASS_JMP32 };
    let cond = if counts_up { JMP_JNE } else { JMP_JLT };
    items.push(if imm_bound {
        Item::Jump(class | cond, i, 0, bound, head)
    } else {
        Item::Jump(class | cond | SRC_X, i, n, 0, head)
    });
}

/// Two to four accesses through one base register at nearby offsets, as a parser's field reads
/// are (the JIT may check the span they cover once), often near an end of the data, sometimes
/// with an instruction between them that may write the base.
fn access_group(r: &mut Rng, items: &mut Vec<Item>) {
    let b = if r.chance(70) {
        1
    } else if r.chance(50) {
        3
    } else {
        src(r)
    };
    let at = if r.chance(50) {
        r.range(DATA_LEN as i64 - 40, DATA_LEN as i64 + 2)
    } else {
        r.range(-10, 20)
    };
    for _ in 0..r.range(2, 5) {
        let (sz, _) = size_bits(r);
        let off = (at + r.range(0, 40)) as i16;
        items.push(Item::Plain(match r.below(3) {
            0 => Insn::new(CLASS_LDX | MODE_MEM | sz, dst(r), b, off, 0),
            1 => Insn::new(CLASS_ST | MODE_MEM | sz, b, 0, off, imm(r)),
            _ => Insn::new(CLASS_STX | MODE_MEM | sz, b, src(r), off, 0),
        }));
        if r.chance(15) {
            items.push(Item::Plain(alu(r)));
        }
    }
}

/// Items of one function occupying item indices `base..base + len`, the last being `exit`.
fn function(r: &mut Rng, base: usize, len: usize, sub: usize) -> Vec<Item> {
    let mut items = Vec::with_capacity(len);
    while items.len() < len - 1 {
        let target = base + r.below(len as u64) as usize;
        if items.len() + 2 < len && r.chance(4) {
            // Get a fresh region from a helper and use it through r0.
            items.push(Item::Plain(Insn::new(
                OP_CALL,
                0,
                0,
                0,
                HELPER_VALUE as i32,
            )));
            let (sz, size) = size_bits(r);
            let off = r.range(-4, VALUE_LEN as i64 + 4) as i16;
            items.push(Item::Plain(match r.below(4) {
                0 => Insn::new(CLASS_LDX | MODE_MEM | sz, dst(r), 0, off, 0),
                1 => Insn::new(CLASS_ST | MODE_MEM | sz, 0, 0, off, imm(r)),
                2 if size >= 4 => {
                    let off = off - off.rem_euclid(size as i16);
                    Insn::new(
                        CLASS_STX | MODE_ATOMIC | sz,
                        0,
                        r.below(10) as u8,
                        off,
                        ATOMIC_ADD,
                    )
                }
                _ => Insn::new(CLASS_STX | MODE_MEM | sz, 0, src(r), off, 0),
            }));
            continue;
        }
        if items.len() + 9 < len && r.chance(10) {
            counted_loop(r, base, &mut items);
            continue;
        }
        if items.len() + 6 < len && r.chance(8) {
            access_group(r, &mut items);
            continue;
        }
        if items.len() + 2 < len && r.chance(5) {
            // Address arithmetic as clang writes it (`rd = rs; rd += rx`), which the JIT may
            // emit as one lea; the add may name rd itself.
            let class = r.pick(&[CLASS_ALU, CLASS_ALU64]);
            let d = dst(r);
            items.push(Item::Plain(Insn::new(
                class | ALU_MOV | SRC_X,
                d,
                src(r),
                0,
                0,
            )));
            items.push(Item::Plain(if r.chance(50) {
                let x = if r.chance(20) { d } else { src(r) };
                Insn::new(class | ALU_ADD | SRC_X, d, x, 0, 0)
            } else {
                Insn::new(class | ALU_ADD, d, 0, 0, imm(r))
            }));
            continue;
        }
        let item = match r.below(100) {
            0..=29 => Item::Plain(alu(r)),
            30..=37 => Item::Lddw(dst(r), interesting(r)),
            38..=57 => Item::Plain(memory(r)),
            58..=63 => Item::Plain(atomic(r)),
            64..=75 => jump(r, target),
            76..=77 => Item::Jump(OP_JA, 0, 0, 0, target),
            78 => Item::Ja32(target),
            79..=82 => Item::Plain(Insn::new(OP_CALL, 0, 0, 0, r.pick(&[1, 2, 3]))),
            83 => Item::Plain(Insn::new(OP_CALLX, src(r), 0, 0, 0)),
            84..=86 => Item::Call(sub),
            87..=89 => {
                let (sz, _) = r.pick(&[(SIZE_B, 1), (SIZE_H, 2), (SIZE_W, 4)]);
                let k = r.range(-2, DATA_LEN as i64 + 2) as i32;
                if r.chance(50) {
                    Item::Plain(Insn::new(CLASS_LD | MODE_ABS | sz, 0, 0, 0, k))
                } else {
                    Item::Plain(Insn::new(CLASS_LD | MODE_IND | sz, 0, src(r), 0, k))
                }
            }
            90..=91 => Item::Plain(Insn::new(OP_EXIT, 0, 0, 0, 0)),
            _ => {
                // Give a register a value that makes divisions and callx interesting.
                let v = r.pick(&[
                    0u64,
                    u64::MAX,
                    1,
                    2,
                    3,
                    i64::MIN as u64,
                    0xffff_ffff_8000_0000,
                ]);
                Item::Lddw(dst(r), v)
            }
        };
        items.push(item);
    }
    items.push(Item::Plain(Insn::new(OP_EXIT, 0, 0, 0, 0)));
    items
}

fn generate(r: &mut Rng) -> Vec<Insn> {
    let main_len = r.range(2, 40) as usize;
    let sub_len = r.range(2, 12) as usize;
    // A function may come out a few items longer than asked; the sub-program starts where the
    // main function really ends (as the kernel's function rules want: no function falls into
    // the next), so main's calls are pointed at it once its place is known.
    const SUB: usize = usize::MAX;
    let mut items = function(r, 0, main_len, SUB);
    let sub = items.len();
    for it in items.iter_mut() {
        if let Item::Call(t @ SUB) = it {
            *t = sub;
        }
    }
    items.extend(function(r, sub, sub_len, sub));
    // Slot index of each item.
    let mut slot = Vec::with_capacity(items.len());
    let mut n = 0usize;
    for it in &items {
        slot.push(n);
        n += if matches!(it, Item::Lddw(..)) { 2 } else { 1 };
    }
    let mut out = Vec::with_capacity(n);
    for (k, it) in items.iter().enumerate() {
        let rel = |t: usize| slot[t] as i64 - (slot[k] as i64 + 1);
        match *it {
            Item::Plain(i) => out.push(i),
            Item::Lddw(d, v) => {
                out.push(Insn::new(OP_LDDW, d, 0, 0, v as u32 as i32));
                out.push(Insn::new(0, 0, 0, 0, (v >> 32) as u32 as i32));
            }
            Item::Jump(op, d, s, k, t) => out.push(Insn::new(op, d, s, rel(t) as i16, k)),
            Item::Ja32(t) => out.push(Insn::new(OP_JA32, 0, 0, 0, rel(t) as i32)),
            Item::Call(t) => out.push(Insn::new(OP_CALL, 0, CALL_LOCAL, 0, rel(t) as i32)),
        }
    }
    out
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
    regions.push(Region::new(stack, STACK_SIZE as u64, true));
    regions.push(Region::new(data, DATA_LEN as u64, data_writable));
    regions.push(Region::new(extra, EXTRA_LEN as u64, true));
    let mut env = RunEnv {
        helpers,
        regions,
        stack_top: stack + STACK_SIZE as u64,
        budget,
        packet: (data, DATA_LEN as u64),
        maps: Default::default(),
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
                jit.disassembly()
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
