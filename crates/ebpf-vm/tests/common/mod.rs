//! Shared test scaffolding: encode instructions by hand and run them on a chosen engine.
#![allow(dead_code)]

use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::{encode_all, Insn};
use ebpf_vm::{Engine, LoadError, Mode, Program, ProgramOptions, RunInput, RunOutput, Trap};

pub fn i(opcode: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn::new(opcode, dst, src, off, imm)
}

pub fn mov64_imm(dst: u8, imm: i32) -> Insn {
    i(CLASS_ALU64 | ALU_MOV | SRC_K, dst, 0, 0, imm)
}

pub fn mov64_reg(dst: u8, src: u8) -> Insn {
    i(CLASS_ALU64 | ALU_MOV | SRC_X, dst, src, 0, 0)
}

pub fn alu64_imm(op: u8, dst: u8, imm: i32) -> Insn {
    i(CLASS_ALU64 | op | SRC_K, dst, 0, 0, imm)
}

pub fn alu64_reg(op: u8, dst: u8, src: u8) -> Insn {
    i(CLASS_ALU64 | op | SRC_X, dst, src, 0, 0)
}

pub fn alu32_imm(op: u8, dst: u8, imm: i32) -> Insn {
    i(CLASS_ALU | op | SRC_K, dst, 0, 0, imm)
}

pub fn alu32_reg(op: u8, dst: u8, src: u8) -> Insn {
    i(CLASS_ALU | op | SRC_X, dst, src, 0, 0)
}

pub fn lddw(dst: u8, v: u64) -> [Insn; 2] {
    [
        i(OP_LDDW, dst, 0, 0, v as u32 as i32),
        i(0, 0, 0, 0, (v >> 32) as u32 as i32),
    ]
}

/// `dst = *(size *)(src + off)`.
pub fn ldx(size: u8, dst: u8, src: u8, off: i16) -> Insn {
    i(CLASS_LDX | MODE_MEM | size, dst, src, off, 0)
}

/// `*(size *)(dst + off) = imm`.
pub fn st(size: u8, dst: u8, off: i16, imm: i32) -> Insn {
    i(CLASS_ST | MODE_MEM | size, dst, 0, off, imm)
}

/// `*(size *)(dst + off) = src`.
pub fn stx(size: u8, dst: u8, src: u8, off: i16) -> Insn {
    i(CLASS_STX | MODE_MEM | size, dst, src, off, 0)
}

pub fn exit() -> Insn {
    i(OP_EXIT, 0, 0, 0, 0)
}

pub fn bytes(insns: &[Insn]) -> Vec<u8> {
    encode_all(insns)
}

/// `code` loaded on `engine` in mode `mode`, with `dataSize` `size` in mode verified (a raw
/// program's data length, fixed at load); panics if it does not load on that engine.
pub fn load_sized(code: &[Insn], engine: Engine, mode: Mode, size: usize) -> Program {
    let options = ProgramOptions {
        engine,
        mode,
        data_size: (mode == Mode::Verified).then_some(size as u32),
        ..ProgramOptions::default()
    };
    let p = Program::load(&encode_all(code), options)
        .unwrap_or_else(|e| panic!("{engine:?} {mode:?}: {e}"));
    assert_eq!(p.engine(), engine);
    p
}

pub fn load(insns: &[Insn], engine: Engine) -> Result<Program, LoadError> {
    Program::load(
        &bytes(insns),
        ProgramOptions {
            engine,
            ..ProgramOptions::default()
        },
    )
}

/// One run of `p` on `data` without a budget; panics, naming `what`, if it traps.
pub fn run_ok(p: &Program, data: &mut [u8], what: &str) -> RunOutput {
    p.run(&mut RunInput { data, budget: None })
        .unwrap_or_else(|t| panic!("{what}: {t}"))
}

pub fn run_with(
    insns: &[Insn],
    engine: Engine,
    data: &mut [u8],
    budget: Option<u64>,
) -> Result<RunOutput, Trap> {
    let prog = load(insns, engine).expect("program loads");
    prog.run(&mut RunInput { data, budget })
}

/// r0 after running on the interpreter with no data.
pub fn r0(insns: &[Insn]) -> u64 {
    run_with(insns, Engine::Interpreter, &mut [], None)
        .expect("program runs")
        .r0
}

/// A program that returns `value` worked out by hand: `r0 = value - adds`, then `adds` times
/// `r0 += 1` (its code grows with `adds`).
pub fn counted(value: u32, adds: u32) -> Vec<Insn> {
    let mut p = vec![mov64_imm(0, value.wrapping_sub(adds) as i32)];
    p.extend((0..adds).map(|_| alu64_imm(ALU_ADD, 0, 1)));
    p.push(exit());
    p
}

/// The permissions and path of the mapping holding `addr`, from /proc/self/maps.
pub fn mapping(addr: usize) -> Option<(String, String)> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (lo, hi) = f[0].split_once('-')?;
        let lo = usize::from_str_radix(lo, 16).ok()?;
        let hi = usize::from_str_radix(hi, 16).ok()?;
        (lo <= addr && addr < hi).then(|| (f[1].to_string(), f[5..].join(" ")))
    })
}
