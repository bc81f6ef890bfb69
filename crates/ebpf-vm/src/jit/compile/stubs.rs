//! The prologues (main and function entry) and the shared stubs every site jumps or calls to:
//! exit, traps, the slow memory check, helper calls, the next budget slice and the epilogue.

use std::sync::OnceLock;

use super::{ctx, Compiler, BUDGET, DATA_NEG, REG};
use crate::jit::frame::*;
use crate::jit::runtime;
use crate::jit::x86::*;

pub(super) struct Stubs {
    pub(super) exit: Label,
    pub(super) main_exit: Label,
    pub(super) epilogue: Label,
    pub(super) check: Label,
    pub(super) helper: Label,
    /// A map lookup whose arguments the verifier proved (`runtime::lookup_entry`).
    pub(super) lookup: Label,
    pub(super) call_depth: Label,
    pub(super) misaligned: Label,
    pub(super) packet_miss: Label,
    pub(super) refill: Label,
}

impl Stubs {
    /// A label for each stub, bound when the stubs are emitted.
    pub(super) fn new(a: &mut Asm) -> Stubs {
        Stubs {
            exit: a.new_label(),
            main_exit: a.new_label(),
            epilogue: a.new_label(),
            check: a.new_label(),
            helper: a.new_label(),
            lookup: a.new_label(),
            call_depth: a.new_label(),
            misaligned: a.new_label(),
            packet_miss: a.new_label(),
            refill: a.new_label(),
        }
    }
}

impl Compiler<'_> {
    /// Saves the host registers and sets up the run from the Rust-side context block (in rdi).
    /// The main prologue falls into the code of slot 0; the function prologue (`function`) jumps
    /// to `Ctx::entry` instead. `checks`: the code has inline memory checks, which read the
    /// block's fast-path fields (see `Compiler::checks`); without them those are not copied.
    pub(super) fn prologue(&mut self, function: bool, checks: bool) {
        // The same bytes in every program of a kind (they name no label): encoded once per
        // process, for each of function or main, with or without checks.
        static CODE: [OnceLock<Vec<u8>>; 4] = [const { OnceLock::new() }; 4];
        let code = CODE[2 * function as usize + checks as usize].get_or_init(|| {
            let mut a = Asm::default();
            prologue(&mut a, function, checks);
            a.finish().expect("a prologue names no label")
        });
        self.a.raw(code);
    }

    pub(super) fn emit_stubs(&mut self) {
        let st = &self.stubs;
        let a = &mut self.a;

        // exit: return from a bpf-to-bpf call, or leave the program from the main frame.
        a.bind(st.exit);
        a.load(W::B64, RAX, ctx(OFF_DEPTH));
        a.test_rr(W::B64, RAX, RAX);
        a.jcc(Cond::E, st.main_exit);
        a.alu_ri(Alu::Sub, W::B64, RAX, 1);
        a.store(W::B64, ctx(OFF_DEPTH), RAX);
        frame_slot(a);
        for (k, r) in REG[6..11].iter().enumerate() {
            a.load(W::B64, *r, mem_idx(RSP, RAX, 0, OFF_FRAMES + 8 * k as i32));
        }
        a.jmp_m(mem_idx(RSP, RAX, 0, OFF_FRAMES + 40));

        // A legacy packet load outside the packet ends the whole program with r0 = 0.
        // Both ways here have the instruction the run leaves by in rcx.
        a.bind(st.packet_miss);
        a.alu_rr(Alu::Xor, W::B32, REG[0], REG[0]);
        // The results go straight to the Rust-side block, through rsi (r1, dead at any exit).
        a.bind(st.main_exit);
        a.load(W::B64, OUT, ctx(OFF_SELF));
        // In a batch's loop of machine code, back to the loop (`batch_loop`): rax = its `Loop`,
        // whose first word is where it goes on, r0 and rcx (the exit's pc) as they are.
        let resume = a.new_label();
        a.load(W::B64, RAX, mem(OUT, OFF_RESUME));
        a.test_rr(W::B64, RAX, RAX);
        a.jcc(Cond::Ne, resume);
        a.store(W::B64, mem(OUT, OFF_R0), REG[0]);
        a.store(W::B64, mem(OUT, OFF_EXIT_A), RCX);
        exit_with(a, EXIT_NORMAL, st.epilogue);
        a.bind(resume);
        a.jmp_m(mem(RAX, 0));

        // Traps whose details are in rax (and rdx); the budget left is in r12.
        a.bind(st.call_depth);
        a.load(W::B64, OUT, ctx(OFF_SELF));
        a.store(W::B64, mem(OUT, OFF_EXIT_A), RAX);
        exit_with(a, EXIT_CALL_DEPTH, st.epilogue);
        a.bind(st.misaligned);
        a.load(W::B64, OUT, ctx(OFF_SELF));
        a.store(W::B64, mem(OUT, OFF_EXIT_A), RAX);
        a.store(W::B64, mem(OUT, OFF_EXIT_B), RDX);
        exit_with(a, EXIT_MISALIGNED, st.epilogue);

        // Slow memory check (entered by call, or by a jump from a second-region stub, which a
        // site called; rcx = address, rax = access info | charge-ahead << 32, see
        // `runtime::check_entry`). Saves the caller-saved eBPF registers, calls
        // `runtime::check_entry`; back in the code, rdx holds `data_neg` again.
        a.bind(st.check);
        a.mov_rr(W::B64, RDX, RAX);
        a.mov_rr(W::B64, RAX, RCX);
        save_and_call(a, runtime::check_entry as *const () as u64);
        a.test_rr(W::B64, RAX, RAX);
        for r in [REG[5], REG[4], REG[3], REG[2], REG[1], REG[0]] {
            a.pop(r);
        }
        let check_failed = a.new_label();
        a.jcc(Cond::Ne, check_failed);
        a.pop(RAX);
        a.load(W::B64, DATA_NEG, ctx(OFF_DATA_NEG + 8));
        a.ret();
        a.bind(check_failed);
        a.lea(RSP, mem(RSP, 16));
        a.jmp(st.epilogue);

        // Helper call (entered by call; rax = helper id, edx = pc).
        a.bind(st.helper);
        helper_stub(a, runtime::helper_entry as *const () as u64, st.epilogue);
        a.bind(st.lookup);
        helper_stub(a, runtime::lookup_entry as *const () as u64, st.epilogue);

        // Next slice of the budget (entered by call at a chain's head; eax = its pc, edx = its
        // length n, r12 = the budget in hand less n, wrapped). Pushes r10 down to r0, so that they
        // lie in order at rsp (rsp then 16-byte aligned), and calls `runtime::refill_entry`, which
        // checks the run's limits and returns the budget in hand with the chain charged: r12 is
        // set to it and the chain runs; or the chain is not covered, and the run leaves through
        // the epilogue for Rust to finish it (or with a limit's trap recorded).
        a.bind(st.refill);
        for r in REG.iter().rev() {
            a.push(*r);
        }
        a.mov_rr(W::B64, RSI, RAX);
        a.mov_rr(W::B64, RCX, BUDGET);
        a.mov_rr(W::B64, R8, RSP);
        a.lea(RDI, mem(RSP, 8 * REG.len() as i32 + 8));
        a.mov_addr64(RAX, runtime::refill_entry as *const () as u64);
        a.call_r(RAX);
        for r in &REG[..6] {
            a.pop(*r);
        }
        // r6-r10 are callee-saved: the call kept them.
        a.lea(RSP, mem(RSP, 8 * (REG.len() as i32 - 6)));
        let refill_failed = a.new_label();
        a.test_rr(W::B64, RDX, RDX);
        a.jcc(Cond::Ne, refill_failed);
        a.mov_rr(W::B64, BUDGET, RAX);
        a.load(W::B64, DATA_NEG, ctx(OFF_DATA_NEG + 8));
        a.ret();
        a.bind(refill_failed);
        a.lea(RSP, mem(RSP, 8));
        a.jmp(st.epilogue);

        // Epilogue: restore the host registers (the results are in the Rust-side block: the exit
        // stubs above, or the Rust entry point that recorded the trap, wrote them there).
        a.bind(st.epilogue);
        a.alu_ri(Alu::Add, W::B64, RSP, CTX_BYTES);
        for r in [R15, R14, R13, R12, RBP, RBX] {
            a.pop(r);
        }
        a.ret();
        a.int3();
    }
}

impl Compiler<'_> {
    /// A bare run's entry (`bare_fits`), called as `extern "C" fn(data, len, stack_top) ->
    /// (r0, exit pc)` (rax:rdx): r1 = data, r2 = len, r10 = stack_top, the registers r6-r9 in
    /// `used` (bits 6-9) zeroed and saved with r10's, and of the block on the host stack only
    /// what code without checks, calls or legacy packet loads reads there: the exit's way out.
    /// (`data_neg`, which such code still reloads into rdx after a division, is read only by
    /// the inline checks of accesses not proved; the depth only by calls and the exit stub of
    /// code with calls.) The main exit goes on through
    /// `Ctx::resume`, which here is the block's own: the entry points it at a word of the block
    /// holding the address of an exit of its own, which returns r0 and the exit's pc (rcx)
    /// without writing any exit record. r12 (the budget) and r0-r5 are neither set nor saved:
    /// unmetered code never reads r12, and r0-r5 are the host's caller-saved registers.
    pub(super) fn bare_entry(&mut self, body: Label, used: u16) {
        let a = &mut self.a;
        let saved: Vec<u8> = (6..10)
            .filter(|r| used & 1 << r != 0)
            .map(|r| REG[r])
            // r12 too, though code that fits a bare entry is unmetered and never moves the
            // budget register: one push keeps a later change from clobbering the caller's r12.
            .chain([REG[10], BUDGET])
            .collect();
        for &r in &saved {
            a.push(r);
        }
        // The block at rsp, which stays 16-byte aligned as the prologue keeps it (8 mod 16 at
        // entry): a word of padding above the block after an odd number of pushes.
        let frame = CTX_BYTES + 8 * (saved.len() as i32 % 2);
        a.alu_ri(Alu::Sub, W::B64, RSP, frame);
        a.mov_rr(W::B64, REG[10], RDX);
        a.mov_rr(W::B64, REG[2], RSI);
        a.mov_rr(W::B64, REG[1], RDI);
        let exit = a.new_label();
        a.store(W::B64, ctx(OFF_SELF), RSP);
        a.lea(RAX, ctx(OFF_ENTRY));
        a.store(W::B64, ctx(OFF_RESUME), RAX);
        a.lea_label(RAX, exit);
        a.store(W::B64, ctx(OFF_ENTRY), RAX);
        for r in (6..10).filter(|r| used & 1 << r != 0) {
            a.alu_rr(Alu::Xor, W::B32, REG[r], REG[r]);
        }
        for r in [REG[0], REG[3], REG[4], REG[5]] {
            a.alu_rr(Alu::Xor, W::B32, r, r);
        }
        a.jmp(body);
        a.bind(exit);
        a.mov_rr(W::B64, RAX, REG[0]);
        a.mov_rr(W::B64, RDX, RCX);
        a.alu_ri(Alu::Add, W::B64, RSP, frame);
        for &r in saved.iter().rev() {
            a.pop(r);
        }
        a.ret();
        a.int3();
    }
}

/// In a stub entered by `call`: pushes rax and the caller-saved eBPF registers r0-r5 (rsp ends
/// 64 bytes below the body's, 16-byte aligned) and calls `f(ctx, rax, rdx, r12)` (SysV: rdi,
/// rsi, rdx, rcx), whose result is in rax:rdx. The stub pops them back.
pub(super) fn save_and_call(a: &mut Asm, f: u64) {
    for r in [RAX, REG[0], REG[1], REG[2], REG[3], REG[4], REG[5]] {
        a.push(r);
    }
    a.mov_rr(W::B64, RSI, RAX);
    a.mov_rr(W::B64, RCX, BUDGET);
    a.lea(RDI, mem(RSP, 64));
    a.mov_addr64(RAX, f);
    a.call_r(RAX);
}

/// rax = depth -> rax = byte offset of that frame slot (depth * 48).
pub(super) fn frame_slot(a: &mut Asm) {
    a.lea(RAX, mem_idx(RAX, RAX, 1, 0));
    a.shift_ri(Shift::Shl, W::B64, RAX, 4);
}

/// Where the exit stubs hold the Rust-side block (`Ctx::self_ptr`): r1's register, which no exit
/// reads.
const OUT: u8 = REG[1];

/// Writes the budget left and the exit `kind` to the Rust-side block (in `OUT`) and leaves.
pub(super) fn exit_with(a: &mut Asm, kind: u64, epilogue: Label) {
    a.store(W::B64, mem(OUT, OFF_REM), BUDGET);
    a.store_imm(W::B64, mem(OUT, OFF_EXIT_KIND), kind as i32);
    a.jmp(epilogue);
}

/// The prologue's code (see `Compiler::prologue`).
fn prologue(a: &mut Asm, function: bool, checks: bool) {
    for r in [RBX, RBP, R12, R13, R14, R15] {
        a.push(r);
    }
    a.alu_ri(Alu::Sub, W::B64, RSP, CTX_BYTES);
    // Copy onto the host stack the inputs of the context block that compiled code reads there
    // (`CTX_COPIED`, and the fast-path fields when it has inline checks), a word at a time: Rust
    // has just written them word by word, and wider loads would miss store forwarding (and
    // `rep movsq` costs more to start than this whole copy). r1-r5, r10 and the budget go
    // straight into their registers.
    let fast = if checks { 0..OFF_DATA_NEG / 8 } else { 0..0 };
    for (n, k) in fast
        .chain(CTX_COPIED.iter().map(|&off| off / 8))
        .enumerate()
    {
        let r = if n % 2 == 0 { RAX } else { RCX };
        a.load(W::B64, r, mem(RDI, 8 * k));
        a.store(W::B64, mem(RSP, 8 * k), r);
    }
    for (k, r) in REG[1..6].iter().enumerate() {
        a.load(W::B64, *r, mem(RDI, OFF_ARGS + 8 * k as i32));
    }
    a.load(W::B64, REG[10], mem(RDI, OFF_STACK_TOP));
    a.load(W::B64, BUDGET, mem(RDI, OFF_BUDGET));
    a.load(W::B64, DATA_NEG, mem(RDI, OFF_DATA_NEG));
    a.store_imm(W::B64, ctx(OFF_DEPTH), 0);
    if function {
        // rdi (r0) still points at the Rust-side block.
        a.load(W::B64, RAX, mem(RDI, OFF_ENTRY));
    }
    // The interpreter starts every other register at zero; so must we.
    for r in [REG[0], REG[6], REG[7], REG[8], REG[9]] {
        a.alu_rr(Alu::Xor, W::B32, r, r);
    }
    if function {
        a.jmp_r(RAX);
    }
}

/// A helper call's stub (entered by call; rax = helper id, edx = pc): r1-r5 are pushed so that
/// they form the argument array, and popped back (helper calls preserve them); calls `entry`
/// (`runtime::helper_entry`'s signature), sets r0 and r12, or leaves through `epilogue`.
fn helper_stub(a: &mut Asm, entry: u64, epilogue: Label) {
    for r in [REG[5], REG[4], REG[3], REG[2], REG[1]] {
        a.push(r);
    }
    // rsp is now 48 bytes below the body's rsp, 16-byte aligned.
    a.mov_rr(W::B64, RSI, RAX);
    a.mov_rr(W::B64, RCX, BUDGET);
    a.mov_rr(W::B64, R8, RSP);
    a.lea(RDI, mem(RSP, 48));
    a.mov_addr64(RAX, entry);
    a.call_r(RAX);
    for r in [REG[1], REG[2], REG[3], REG[4], REG[5]] {
        a.pop(r);
    }
    // rax = r0, rdx = the budget in hand after the helper's charge, or all ones if it failed
    // (never a budget in hand after a call: that is at most the budget less one).
    let helper_failed = a.new_label();
    a.alu_ri(Alu::Cmp, W::B64, RDX, -1);
    a.jcc(Cond::E, helper_failed);
    a.mov_rr(W::B64, BUDGET, RDX);
    a.mov_rr(W::B64, REG[0], RAX);
    a.ret();
    a.bind(helper_failed);
    a.lea(RSP, mem(RSP, 8));
    a.jmp(epilogue);
}
