//! Large generated programs for the analysis's size tests and its benchmark
//! (`benches/analysis.rs` includes this file by path).
#![allow(dead_code)]

use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::Insn;

fn mov(dst: u8, imm: i32) -> Insn {
    Insn::new(CLASS_ALU64 | ALU_MOV | SRC_K, dst, 0, 0, imm)
}

fn exit() -> Insn {
    Insn::new(OP_EXIT, 0, 0, 0, 0)
}

/// `n` slots: `mov rK, k` (K cycling through r0-r9), then `exit`. One block.
pub fn straight_line(n: usize) -> Vec<Insn> {
    let mut p: Vec<Insn> = (0..n - 1).map(|k| mov((k % 10) as u8, k as i32)).collect();
    p.push(exit());
    p
}

/// `functions` functions of `body + 8` slots each: a store to the stack (8 to 64 bytes deep),
/// `body` instructions with a three-instruction loop every five and a forward branch between
/// them, a call of the next function (the last one calls none), an lddw taking the address of
/// the function after that (a plain lddw near the end), padding, `exit`. Function `f` starts at
/// slot `f * (body + 8)`; with 1,000 functions of 92 the program has 100,000 slots, 18,000 loops
/// and a chain of 1,000 frames.
pub fn many_functions(functions: usize, body: usize) -> Vec<Insn> {
    let size = body + 8;
    let mut p = Vec::with_capacity(functions * size);
    for f in 0..functions {
        let start = p.len();
        let depth = -8 * (1 + (f % 8) as i16);
        p.push(Insn::new(CLASS_ST | MODE_MEM | SIZE_DW, FP, 0, depth, 0));
        for k in 0..body {
            let here = p.len() - start;
            p.push(match k % 5 {
                0 => Insn::new(CLASS_ALU64 | ALU_ADD | SRC_K, 1, 0, 0, 1),
                // Back to the instruction two before: a loop of three.
                1 if here > 4 => Insn::new(CLASS_JMP | JMP_JLT | SRC_K, 1, 0, -3, 100),
                // Over the next instruction.
                2 => Insn::new(CLASS_JMP | JMP_JEQ | SRC_K, 2, 0, 1, k as i32),
                _ => mov(2, k as i32),
            });
        }
        if f + 1 < functions {
            let target = ((f + 1) * size) as i32 - p.len() as i32 - 1;
            p.push(Insn::new(OP_CALL, 0, CALL_LOCAL, 0, target));
        } else {
            p.push(mov(0, 0));
        }
        let (src, imm) = if f + 2 < functions {
            (PSEUDO_FUNC, ((f + 2) * size) as i32 - p.len() as i32 - 1)
        } else {
            (PSEUDO_IMM64, 0)
        };
        p.push(Insn::new(OP_LDDW, 3, src, 0, imm));
        p.push(Insn::new(0, 0, 0, 0, 0));
        while p.len() < start + size - 1 {
            p.push(mov(0, 1));
        }
        p.push(exit());
    }
    p
}
