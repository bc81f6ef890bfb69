//! Unit tests of the emitter and compiler: every encoding the JIT emits is decoded back with
//! iced-x86 (an independent decoder) and compared with the Intel-syntax text we meant.

use iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter};

use super::x86::*;

fn text(code: &[u8]) -> String {
    let mut d = Decoder::with_ip(64, code, 0, DecoderOptions::NONE);
    let mut f = IntelFormatter::new();
    let mut out = Vec::new();
    for insn in &mut d {
        assert!(!insn.is_invalid(), "invalid encoding in {code:02x?}");
        let mut s = String::new();
        f.format(&insn, &mut s);
        out.push(s);
    }
    out.join("; ")
}

fn asm(f: impl FnOnce(&mut Asm)) -> String {
    let mut a = Asm::default();
    f(&mut a);
    text(&a.finish().unwrap())
}

#[test]
fn encodings_decode_to_what_was_meant() {
    let cases: Vec<(String, &str)> = vec![
        (asm(|a| a.mov_rr(W::B32, RDI, RDI)), "mov edi,edi"),
        (
            asm(|a| a.alu_ri(Alu::And, W::B64, R11, -16)),
            "and r11,0FFFFFFFFFFFFFFF0h",
        ),
        (
            asm(|a| a.alu_ri(Alu::Xor, W::B32, RBX, 0x10000)),
            "xor ebx,10000h",
        ),
        (asm(|a| a.imul_rri(W::B64, R15, R15, 7)), "imul r15,7"),
        (
            asm(|a| a.shift_ri(Shift::Shr, W::B32, R13, 31)),
            "shr r13d,1Fh",
        ),
        (asm(|a| a.shift_ri(Shift::Rol, W::B16, RSI, 8)), "rol si,8"),
        (asm(|a| a.rorx(W::B64, RBX, R11, 51)), "rorx rbx,r11,33h"),
        (asm(|a| a.rorx(W::B64, R14, RSI, 1)), "rorx r14,rsi,1"),
        (asm(|a| a.rorx(W::B32, R9, R15, 19)), "rorx r9d,r15d,13h"),
        (
            asm(|a| a.lea(R11, mem_idx(R10, R10, 2, 0))),
            "lea r11,[r10+r10*4]",
        ),
        (
            asm(|a| a.lea32(RDI, mem_idx(R13, R13, 3, 0))),
            "lea edi,[r13+r13*8]",
        ),
        (asm(|a| a.movzx16_rr(R9, R9)), "movzx r9d,r9w"),
        (asm(|a| a.movsx_rr(W::B64, RDI, RSI, 1)), "movsx rdi,sil"),
        (asm(|a| a.movsx_rr(W::B32, RBX, RDI, 1)), "movsx ebx,dil"),
        (asm(|a| a.movsx_rr(W::B32, R8, R10, 2)), "movsx r8d,r10w"),
        (asm(|a| a.movsx_rr(W::B64, RCX, RBP, 4)), "movsxd rcx,ebp"),
        (
            asm(|a| a.load_zx(2, R14, mem(RBP, -6))),
            "movzx r14d,word ptr [rbp-6]",
        ),
        (
            asm(|a| a.load_sx(1, RSI, mem(RAX, 0))),
            "movsx rsi,byte ptr [rax]",
        ),
        (asm(|a| a.store(W::B8, mem(RAX, 0), RDI)), "mov [rax],dil"),
        (
            asm(|a| a.store(W::B8, mem(RBP, -1), R15)),
            "mov [rbp-1],r15b",
        ),
        (
            asm(|a| a.store_imm(W::B16, mem(RAX, 0), -2)),
            "mov word ptr [rax],0FFFEh",
        ),
        (
            asm(|a| a.store_imm(W::B8, mem(R12, 0x100), 0x7f)),
            "mov byte ptr [r12+100h],7Fh",
        ),
        (
            asm(|a| a.alu_rm(Alu::Cmp, W::B64, RCX, mem(RSP, 0x58))),
            "cmp rcx,[rsp+58h]",
        ),
        (
            asm(|a| a.lock_alu_mr(Alu::Or, W::B32, mem(RAX, 0), R9)),
            "lock or [rax],r9d",
        ),
        (
            asm(|a| a.lock_xadd(W::B64, mem(RAX, 0), RCX)),
            "lock xadd [rax],rcx",
        ),
        (asm(|a| a.xchg(W::B32, mem(RAX, 0), RCX)), "xchg [rax],ecx"),
        (
            asm(|a| a.lock_cmpxchg(W::B64, mem(RDX, 0), RDI)),
            "lock cmpxchg [rdx],rdi",
        ),
        (
            asm(|a| a.test_ri(W::B64, R10, -1)),
            "test r10,0FFFFFFFFFFFFFFFFh",
        ),
        (asm(|a| a.test_al(7)), "test al,7"),
        (asm(|a| a.div(W::B32, RCX)), "div ecx"),
        (asm(|a| a.idiv(W::B64, RCX)), "idiv rcx"),
        (asm(|a| a.sign_extend_ax(W::B32)), "cdq"),
        (asm(|a| a.bswap(W::B32, RBP)), "bswap ebp"),
        (asm(|a| a.push(R12)), "push r12"),
        (asm(|a| a.pop(RBX)), "pop rbx"),
        (asm(|a| a.call_r(RAX)), "call rax"),
        (asm(|a| a.jmp_r(RAX)), "jmp rax"),
        (
            asm(|a| a.jmp_m(mem_idx(RSP, RAX, 0, 0xd0))),
            "jmp qword ptr [rsp+rax+0D0h]",
        ),
        (
            asm(|a| a.lea(RAX, mem_idx(RAX, RAX, 1, 0))),
            "lea rax,[rax+rax*2]",
        ),
        (asm(|a| a.cmov(Cond::B, W::B64, RCX, RAX)), "cmovb rcx,rax"),
        (
            asm(|a| a.lea32(R10, mem_idx(R15, RSI, 0, -1))),
            "lea r10d,[r15+rsi-1]",
        ),
        (
            asm(|a| a.lea(RCX, mem_idx(R13, RDX, 0, 0))),
            "lea rcx,[r13+rdx]",
        ),
        (asm(|a| a.mov_imm64(RDX, 0xffff_ffff)), "mov edx,0FFFFFFFFh"),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter(|(got, want)| got != want)
        .map(|(got, want)| format!("{got:?} != {want:?}"))
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

fn analysed(prog: &[crate::isa::Insn]) -> crate::analysis::Analysis {
    crate::analysis::analyse(prog, &Default::default()).unwrap()
}

#[test]
fn blocks_end_at_jumps_calls_helper_calls_and_exits_and_start_at_targets() {
    use crate::isa::opcodes::*;
    use crate::isa::Insn;
    let i = Insn::new;
    let prog = [
        i(CLASS_ALU64 | ALU_MOV, 0, 0, 0, 1),            // 0: block of 4
        i(CLASS_STX | MODE_MEM | SIZE_DW, 10, 0, -8, 0), // 1
        i(CLASS_LDX | MODE_MEM | SIZE_W, 0, 1, 0, 0),    // 2: a checked load does not end it
        i(OP_CALL, 0, 0, 0, 1), // 3: a helper call does (it may charge the budget)
        i(CLASS_JMP | JMP_JEQ, 0, 0, 0, 0), // 4: block of 1: a jump ends it (to 5)
        i(OP_LDDW, 2, 0, 0, 5), // 5: block of 2 (lddw counts once)
        i(0, 0, 0, 0, 0),
        i(OP_CALL, 0, CALL_LOCAL, 0, 1), // 7: local call to 9: ends the block
        i(OP_EXIT, 0, 0, 0, 0),          // 8: block of 1
        i(CLASS_ALU64 | ALU_ADD, 0, 0, 0, 1), // 9: block of 2
        i(OP_EXIT, 0, 0, 0, 0),
    ];
    assert_eq!(
        super::blocks(&analysed(&prog)),
        vec![4, 0, 0, 0, 1, 2, 0, 0, 1, 2, 0]
    );
}

#[test]
fn chains_continue_past_backward_loop_exits_only() {
    use crate::isa::opcodes::*;
    use crate::isa::Insn;
    let i = Insn::new;
    let prog = [
        i(OP_JA, 0, 0, 2, 0),                   // 0: to 3
        i(CLASS_ALU64 | ALU_ADD, 0, 0, 0, 100), // 1: exit path, before the loop
        i(OP_EXIT, 0, 0, 0, 0),                 // 2
        i(CLASS_ALU64 | ALU_ADD, 0, 0, 0, 1),   // 3: loop head
        i(CLASS_JMP | JMP_JEQ, 0, 0, -4, 3),    // 4: leaves the loop: no split
        i(CLASS_JMP | JMP_JGT, 0, 0, 1, 9),     // 5: forward to 7, inside the loop: split
        i(CLASS_ALU64 | ALU_ADD, 2, 0, 0, 1),   // 6
        i(OP_JA, 0, 0, -5, 0),                  // 7: back to 3
        i(OP_EXIT, 0, 0, 0, 0),                 // 8
    ];
    assert_eq!(
        super::blocks(&analysed(&prog)),
        vec![1, 2, 0, 2, 0, 1, 1, 1, 1]
    );
    assert_eq!(
        super::chains(&analysed(&prog)),
        vec![1, 2, 0, 3, 0, 0, 1, 1, 1]
    );
}

#[test]
fn chains_split_at_jumps_that_stay_in_an_outer_loop() {
    use crate::isa::opcodes::*;
    use crate::isa::Insn;
    let i = Insn::new;
    // 0-3: inner loop (back jump at 3 to 0) inside an outer loop 0-6 (back jump at 6 to 0).
    // The exit at 1 goes to 5, past the inner loop but inside the outer one: a split. The one at
    // 2 goes to 7, out of both: no split.
    let prog = [
        i(CLASS_ALU64 | ALU_ADD, 0, 0, 0, 1), // 0: head of both loops
        i(CLASS_JMP | JMP_JEQ, 0, 0, 3, 5),   // 1: to 5
        i(CLASS_JMP | JMP_JEQ, 0, 0, 4, 6),   // 2: to 7
        i(CLASS_JMP | JMP_JLT, 0, 0, -4, 9),  // 3: back to 0
        i(CLASS_ALU64 | ALU_ADD, 1, 0, 0, 1), // 4
        i(CLASS_ALU64 | ALU_ADD, 2, 0, 0, 1), // 5
        i(CLASS_JMP | JMP_JLT, 2, 0, -7, 9),  // 6: back to 0
        i(OP_EXIT, 0, 0, 0, 0),               // 7
    ];
    assert_eq!(
        super::blocks(&analysed(&prog)),
        vec![2, 0, 1, 1, 1, 2, 0, 1]
    );
    assert_eq!(
        super::chains(&analysed(&prog)),
        vec![2, 0, 2, 0, 1, 2, 0, 1]
    );
}
