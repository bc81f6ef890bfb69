//! Shared scaffolding of the context_* and helpers_* tests: a few instruction constructors with
//! readable names (offsets in the tests come from linux/bpf.h and are written out there), and
//! loading/running a program of a given type on the interpreter.
#![allow(dead_code)]

use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::{encode_all, Insn};
use ebpf_vm::{
    ContextInput, ContextOutput, Engine, LoadError, Program, ProgramOptions, ProgramType, RunInput,
    RunOutput, Trap,
};

pub fn mov(dst: u8, imm: i32) -> Insn {
    Insn::new(CLASS_ALU64 | ALU_MOV | SRC_K, dst, 0, 0, imm)
}
pub fn movr(dst: u8, src: u8) -> Insn {
    Insn::new(CLASS_ALU64 | ALU_MOV | SRC_X, dst, src, 0, 0)
}
pub fn add(dst: u8, imm: i32) -> Insn {
    Insn::new(CLASS_ALU64 | ALU_ADD | SRC_K, dst, 0, 0, imm)
}
pub fn addr(dst: u8, src: u8) -> Insn {
    Insn::new(CLASS_ALU64 | ALU_ADD | SRC_X, dst, src, 0, 0)
}
pub fn subr(dst: u8, src: u8) -> Insn {
    Insn::new(CLASS_ALU64 | ALU_SUB | SRC_X, dst, src, 0, 0)
}
pub fn lsh(dst: u8, imm: i32) -> Insn {
    Insn::new(CLASS_ALU64 | ALU_LSH | SRC_K, dst, 0, 0, imm)
}
pub fn orr(dst: u8, src: u8) -> Insn {
    Insn::new(CLASS_ALU64 | ALU_OR | SRC_X, dst, src, 0, 0)
}
pub fn ldx(size: u8, dst: u8, src: u8, off: i16) -> Insn {
    Insn::new(CLASS_LDX | MODE_MEM | size, dst, src, off, 0)
}
pub fn stx(size: u8, dst: u8, src: u8, off: i16) -> Insn {
    Insn::new(CLASS_STX | MODE_MEM | size, dst, src, off, 0)
}
pub fn st(size: u8, dst: u8, off: i16, imm: i32) -> Insn {
    Insn::new(CLASS_ST | MODE_MEM | size, dst, 0, off, imm)
}
pub fn ld_abs(size: u8, imm: i32) -> Insn {
    Insn::new(CLASS_LD | MODE_ABS | size, 0, 0, 0, imm)
}
pub fn ld_ind(size: u8, src: u8, imm: i32) -> Insn {
    Insn::new(CLASS_LD | MODE_IND | size, 0, src, 0, imm)
}
/// `if dst <op> src goto +off` (64-bit, register).
pub fn jr(op: u8, dst: u8, src: u8, off: i16) -> Insn {
    Insn::new(CLASS_JMP | op | SRC_X, dst, src, off, 0)
}
/// `if dst <op> imm goto +off` (64-bit, immediate).
pub fn ji(op: u8, dst: u8, imm: i32, off: i16) -> Insn {
    Insn::new(CLASS_JMP | op | SRC_K, dst, 0, off, imm)
}
pub fn ja(off: i16) -> Insn {
    Insn::new(OP_JA, 0, 0, off, 0)
}
pub fn call(id: i32) -> Insn {
    Insn::new(OP_CALL, 0, 0, 0, id)
}
pub fn call_local(imm: i32) -> Insn {
    Insn::new(OP_CALL, 0, CALL_LOCAL, 0, imm)
}
pub fn exit() -> Insn {
    Insn::new(OP_EXIT, 0, 0, 0, 0)
}
pub fn lddw(dst: u8, v: u64) -> [Insn; 2] {
    [
        Insn::new(OP_LDDW, dst, 0, 0, v as u32 as i32),
        Insn::new(0, 0, 0, 0, (v >> 32) as u32 as i32),
    ]
}
/// `lddw dst, <function at pc + rel + 1>` (BPF_PSEUDO_FUNC).
pub fn lddw_func(dst: u8, rel: i32) -> [Insn; 2] {
    [
        Insn::new(OP_LDDW, dst, PSEUDO_FUNC, 0, rel),
        Insn::new(0, 0, 0, 0, 0),
    ]
}

/// `lddw dst, map[index]` (BPF_PSEUDO_MAP_IDX).
pub fn ld_map(dst: u8, index: i32) -> [Insn; 2] {
    [
        Insn::new(OP_LDDW, dst, PSEUDO_MAP_IDX, 0, index),
        Insn::new(0, 0, 0, 0, 0),
    ]
}

/// Helper number of `counting_regions`' helper.
pub const REGIONS: i32 = 1000;

/// A raw program on `engine` with `maps` and the standard helpers plus helper `REGIONS`, which
/// returns the size of the run's region table (resource tests count regions with it).
pub fn counting_regions(
    engine: Engine,
    insns: &[Insn],
    maps: Vec<std::sync::Arc<dyn ebpf_vm::maps::Map>>,
) -> Program {
    let mut helpers = ebpf_vm::HelperTable::standard();
    helpers.register(REGIONS as u32, "regions", |cx, _| {
        Ok(cx.regions.len() as u64)
    });
    load_with(
        insns,
        ProgramOptions {
            engine,
            maps,
            helpers,
            ..ProgramOptions::default()
        },
    )
    .expect("program loads")
}

/// Flattens a program written as a list of instruction groups.
#[macro_export]
macro_rules! prog {
    ($($e:expr),* $(,)?) => {{
        let mut v: Vec<ebpf_vm::isa::Insn> = Vec::new();
        $( $crate::context_support::Push::push_to($e, &mut v); )*
        v
    }};
}

pub trait Push {
    fn push_to(self, v: &mut Vec<Insn>);
}
impl Push for Insn {
    fn push_to(self, v: &mut Vec<Insn>) {
        v.push(self)
    }
}
impl<const N: usize> Push for [Insn; N] {
    fn push_to(self, v: &mut Vec<Insn>) {
        v.extend_from_slice(&self)
    }
}

/// The engine of these tests: the interpreter, or the one `EBPF_TEST_ENGINE` names (`jit`,
/// `auto`), so that the same suites can be run on the JIT.
pub fn engine() -> Engine {
    match std::env::var("EBPF_TEST_ENGINE").as_deref() {
        Ok("jit") => Engine::Jit,
        Ok("auto") => Engine::Auto,
        _ => Engine::Interpreter,
    }
}

pub fn options(prog_type: ProgramType) -> ProgramOptions {
    ProgramOptions {
        prog_type,
        engine: engine(),
        ..ProgramOptions::default()
    }
}

pub fn load_with(insns: &[Insn], options: ProgramOptions) -> Result<Program, LoadError> {
    Program::load(&encode_all(insns), options)
}

pub fn load(insns: &[Insn], prog_type: ProgramType) -> Result<Program, LoadError> {
    load_with(insns, options(prog_type))
}

pub fn run_ctx(
    prog: &Program,
    data: &mut [u8],
    ctx: Option<&[u8]>,
) -> Result<(RunOutput, ContextOutput), Trap> {
    prog.run_with_context(
        &mut RunInput { data, budget: None },
        &ContextInput {
            ctx,
            ..ContextInput::default()
        },
    )
}

/// r0 of a run that must succeed.
pub fn r0(prog: &Program, data: &mut [u8], ctx: Option<&[u8]>) -> u64 {
    run_ctx(prog, data, ctx).expect("program runs").0.r0
}

/// A 4-byte little-endian field written into a context image.
pub fn put32(buf: &mut [u8], off: usize, v: u32) {
    buf[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

pub fn get32(buf: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(buf[off..off + 4].try_into().unwrap())
}

/// Stores `bytes` (zero-padded to a multiple of 8) on the stack at r10 + `at` (8-aligned),
/// through r9.
pub fn stack_bytes(bytes: &[u8], at: i16) -> Vec<Insn> {
    let mut v = Vec::new();
    for (k, chunk) in bytes.chunks(8).enumerate() {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        v.extend(lddw(9, u64::from_le_bytes(w)));
        v.push(stx(SIZE_DW, 10, 9, at + 8 * k as i16));
    }
    if bytes.len().is_multiple_of(8) {
        // Room for the terminating NUL of a string that fills its last word.
        v.push(st(SIZE_DW, 10, at + bytes.len() as i16, 0));
    }
    v
}

/// `dst = r10 + off`.
pub fn fp_plus(dst: u8, off: i32) -> [Insn; 2] {
    [movr(dst, 10), add(dst, off)]
}

pub fn run_process(
    prog: &Program,
    ctx: Option<&[u8]>,
    process: ebpf_vm::ProcessInfo,
) -> Result<(RunOutput, ContextOutput), Trap> {
    prog.run_with_context(
        &mut RunInput {
            data: &mut [],
            budget: None,
        },
        &ContextInput {
            ctx,
            process,
            ..ContextInput::default()
        },
    )
}

/// main: *(u64 *)(r10 - 8) = 0; r0 = bpf_loop(nr, cb, r10 - 8, flags);
///       return *(u64 *)(r10 - 8) << 32 | (u32) r0
/// cb (slot 15): `body`, which sees r1 = index, r2 = &sum.
pub fn looped(nr: i32, flags: i32, body: &[Insn]) -> Vec<Insn> {
    let mut v = prog![
        st(SIZE_DW, 10, -8, 0),                             // 0
        mov(1, nr),                                         // 1
        lddw_func(2, 12),                                   // 2-3: function at 2 + 12 + 1 = 15
        fp_plus(3, -8),                                     // 4-5
        mov(4, flags),                                      // 6
        call(181),                                          // 7
        movr(6, 0),                                         // 8
        ldx(SIZE_DW, 0, 10, -8),                            // 9
        lsh(0, 32),                                         // 10
        movr(7, 6),                                         // 11
        Insn::new(CLASS_ALU | ALU_MOV | SRC_X, 7, 7, 0, 0), // 12: r7 = (u32) r7
        orr(0, 7),                                          // 13
        exit(),                                             // 14
    ];
    v.extend_from_slice(body);
    v
}

/// *sum += index; return 0
pub fn add_index() -> Vec<Insn> {
    prog![
        ldx(SIZE_DW, 3, 2, 0),
        addr(3, 1),
        stx(SIZE_DW, 2, 3, 0),
        mov(0, 0),
        exit()
    ]
}
