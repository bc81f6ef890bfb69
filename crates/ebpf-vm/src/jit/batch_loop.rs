//! A batch's packets run by a loop of machine code (issue #10 item 2): compiled code entered once
//! for many packets of an XDP batch (`program/xdp_batch.rs`), as the kernel's `BPF_PROG_TEST_RUN`
//! repeat loop only calls the program again. The loop (`driver`, emitted once per process: it
//! names nothing of a program, everything comes from its `Loop`) is entered from Rust as compiled
//! code is: it saves the same host registers and copies the run block's inputs onto the host
//! stack as a program's prologue does, so that the program's code runs on its frame. Then, per
//! packet, it does what the Rust loop does for a run that leaves nothing behind:
//!
//! - the frame: the packet copied to the headroom's end (`memcpy`), the bytes past it that the
//!   run before may have written zeroed (`memset`, only when the packet is shorter than the one
//!   before), `data_end` written into the context's hidden word and the frame (`data` and
//!   `data_meta` stay where the batch put them: a run that moves them calls a helper, below);
//! - the stack: the words over the bytes a run may read before writing (`Loop::stack`);
//! - the run: r1-r5, r10, the budget and `data_neg` loaded from the block, the other registers
//!   zeroed, as the prologue leaves them, and a jump to the code after the program's prologue;
//!   the program's exit comes back here (`Ctx::resume`: the exit stub jumps to `Loop::resume`);
//! - the result: r0 and the exit's pc into `Loop::out`, when the run called no Rust entry point
//!   (`Loop::called_out`: a helper, the lookup stub) and returned a value no leak check need look
//!   at (below `Loop::leak_below`).
//!
//! Any other run ends the loop with that run done but not recorded: a trap leaves through the
//! program's epilogue, whose pops and return match the loop's entry; a run that called into Rust
//! or returned a value to check leaves with its exit record written as the exit stub writes it
//! (and `Loop::left` set). Rust takes the result from the block and lets go of what the run may
//! have left behind, as for any run (`Repeat::run_loop`), then enters the loop again for the next
//! packet.

use std::sync::OnceLock;

use super::exec_mem::ExecMem;
use super::frame::*;
use super::x86::*;

/// What the loop reads and writes, all words (addresses as integers).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Loop {
    /// Where a program's exit goes on in the loop (first: the exit stub jumps through it).
    pub resume: u64,
    /// The code after the program's prologue.
    pub body: u64,
    /// The Rust-side run block (`Ctx`), whose inputs the loop copies.
    pub block: u64,
    /// The next packet to run (advanced by the loop; where it stopped when it returns).
    pub index: u64,
    /// The packet to stop before.
    pub end: u64,
    /// The packets' lengths (`*const u32`) and starts (`*const u64`, offsets into `packets`).
    pub lengths: u64,
    pub starts: u64,
    pub packets: u64,
    /// Where a packet starts in the frame (`data`).
    pub data: u64,
    /// The first byte of the frame past what a run may have written (zeroed beyond): the end of
    /// the last packet, or more after a run that moved the bounds.
    pub written_end: u64,
    /// Where `data_end` is kept: the context's hidden word and the frame's field.
    pub ctx_data_end: u64,
    pub frame_data_end: u64,
    /// The stack words zeroed before each run: the first, and how many.
    pub stack: u64,
    pub stack_words: u64,
    /// A flag the Rust entry points set (`*const bool`): true after a run that called one.
    pub called_out: u64,
    /// Results with a value at or above this go back to Rust (the leak check).
    pub leak_below: u64,
    /// Where the next run's `(r0, exit pc)` is written (advanced by the loop).
    pub out: u64,
    /// `memcpy` and `memset`.
    pub memcpy: u64,
    pub memset: u64,
    /// 1 when the loop left after a normal exit it did not record (the exit record is in the
    /// block); a trap leaves it 0.
    pub left: u64,
}

/// How the loop ended (`Repeat::run_loop`).
#[derive(Debug)]
pub enum LoopEnd {
    /// Every packet up to `end` ran and was recorded.
    Done,
    /// The run of packet `index` went back to Rust: its output or trap.
    Left(Result<crate::vm::RunOutput, crate::error::Trap>),
}

macro_rules! field {
    ($f:ident) => {
        std::mem::offset_of!(Loop, $f) as i32
    };
}

/// The loop's code (`extern "C" fn(*mut Loop)`) and where a program's exit goes on in it.
pub fn driver() -> (unsafe extern "C" fn(*mut Loop), u64) {
    static CODE: OnceLock<(ExecMem, usize)> = OnceLock::new();
    let (mem, resume) = CODE.get_or_init(|| {
        let (code, resume) = emit();
        let mem = ExecMem::new(&code).expect("executable memory for the batch loop");
        (mem, resume)
    });
    // SAFETY: the code `emit` wrote, with this signature; `resume` lies inside it.
    unsafe {
        (
            std::mem::transmute::<*const u8, unsafe extern "C" fn(*mut Loop)>(mem.entry()),
            mem.entry().add(*resume) as u64,
        )
    }
}

/// The loop's `Loop`, between runs (compiled code's registers are dead there).
const D: u8 = RBX;
/// The host registers a program's prologue saves, in its order.
const SAVED: [u8; 6] = [RBX, RBP, R12, R13, R14, R15];

fn emit() -> (Vec<u8>, usize) {
    let mut a = Asm::default();
    let (next, copy, zero_tail, left, done) = (
        a.new_label(),
        a.new_label(),
        a.new_label(),
        a.new_label(),
        a.new_label(),
    );
    // The program's prologue, as far as its frame goes: the same saves, the block's inputs on the
    // host stack (all of them: the inline checks' bounds too, whatever the code reads).
    for r in SAVED {
        a.push(r);
    }
    a.alu_ri(Alu::Sub, W::B64, RSP, CTX_BYTES);
    a.load(W::B64, RSI, mem(RDI, field!(block)));
    for k in 0..OFF_DEPTH / 8 {
        a.load(W::B64, RAX, mem(RSI, 8 * k));
        a.store(W::B64, mem(RSP, 8 * k), RAX);
    }
    a.store_imm(W::B64, mem(RSP, OFF_DEPTH), 0);
    a.mov_rr(W::B64, D, RDI);
    a.jmp(next);

    // A program's exit (the exit stub: rax = the `Loop`, r0 and rcx = the exit's pc).
    let resume = a.pos();
    a.mov_rr(W::B64, D, RAX);
    a.load(W::B64, RAX, mem(D, field!(called_out)));
    a.load_zx(1, RAX, mem(RAX, 0));
    a.test_rr(W::B32, RAX, RAX);
    a.jcc(Cond::Ne, left);
    a.alu_rm(Alu::Cmp, W::B64, REG_R0, mem(D, field!(leak_below)));
    a.jcc(Cond::Ae, left);
    a.load(W::B64, RAX, mem(D, field!(out)));
    a.store(W::B64, mem(RAX, 0), REG_R0);
    a.store(W::B64, mem(RAX, 8), RCX);
    a.alu_ri(Alu::Add, W::B64, RAX, 16);
    a.store(W::B64, mem(D, field!(out)), RAX);
    a.alu_mi8(Alu::Add, W::B64, mem(D, field!(index)), 1);

    a.bind(next);
    a.load(W::B64, RAX, mem(D, field!(index)));
    a.alu_rm(Alu::Cmp, W::B64, RAX, mem(D, field!(end)));
    a.jcc(Cond::Ae, done);
    // rdx = the length, rsi = the packet, rdi = its end in the frame.
    a.load(W::B64, RCX, mem(D, field!(lengths)));
    a.load(W::B32, RDX, mem_idx(RCX, RAX, 2, 0));
    a.load(W::B64, RCX, mem(D, field!(starts)));
    a.load(W::B64, RSI, mem_idx(RCX, RAX, 3, 0));
    a.alu_rm(Alu::Add, W::B64, RSI, mem(D, field!(packets)));
    a.load(W::B64, RDI, mem(D, field!(data)));
    a.alu_rr(Alu::Add, W::B64, RDI, RDX);
    a.load(W::B64, RAX, mem(D, field!(ctx_data_end)));
    a.store(W::B64, mem(RAX, 0), RDI);
    a.load(W::B64, RAX, mem(D, field!(frame_data_end)));
    a.store(W::B64, mem(RAX, 0), RDI);
    a.store(W::B64, mem(RSP, OFF_PACKET_LEN), RDX);
    a.load(W::B64, RCX, mem(D, field!(written_end)));
    a.store(W::B64, mem(D, field!(written_end)), RDI);
    a.alu_rr(Alu::Cmp, W::B64, RCX, RDI);
    a.jcc(Cond::A, zero_tail);
    a.bind(copy);
    a.load(W::B64, RDI, mem(D, field!(data)));
    a.load(W::B64, RAX, mem(D, field!(memcpy)));
    a.call_r(RAX);
    // The stack's words.
    let (zero, zeroed) = (a.new_label(), a.new_label());
    a.load(W::B64, RAX, mem(D, field!(stack)));
    a.load(W::B64, RCX, mem(D, field!(stack_words)));
    a.test_rr(W::B64, RCX, RCX);
    a.jcc(Cond::E, zeroed);
    a.bind(zero);
    a.store_imm(W::B64, mem(RAX, 0), 0);
    a.alu_ri(Alu::Add, W::B64, RAX, 8);
    a.alu_ri(Alu::Sub, W::B64, RCX, 1);
    a.jcc(Cond::Ne, zero);
    a.bind(zeroed);
    // The registers as the prologue leaves them, then the program.
    for (k, r) in [RSI, R8, R9, R10, R11].into_iter().enumerate() {
        a.load(W::B64, r, mem(RSP, OFF_ARGS + 8 * k as i32));
    }
    a.load(W::B64, RBP, mem(RSP, OFF_STACK_TOP));
    a.load(W::B64, R12, mem(RSP, OFF_BUDGET));
    a.load(W::B64, RDX, mem(RSP, OFF_DATA_NEG));
    a.load(W::B64, RAX, mem(D, field!(body)));
    for r in [RDI, RBX, R13, R14, R15] {
        a.alu_rr(Alu::Xor, W::B32, r, r);
    }
    a.jmp_r(RAX);

    // Bytes past the packet that the run before may have written: [rdi, rcx).
    a.bind(zero_tail);
    a.push(RSI);
    a.push(RDX);
    a.alu_rr(Alu::Sub, W::B64, RCX, RDI);
    a.mov_rr(W::B64, RDX, RCX);
    a.alu_rr(Alu::Xor, W::B32, RSI, RSI);
    a.load(W::B64, RAX, mem(D, field!(memset)));
    a.call_r(RAX);
    a.pop(RDX);
    a.pop(RSI);
    a.jmp(copy);

    // A run for Rust to finish: its exit record, as the exit stub writes it.
    a.bind(left);
    a.load(W::B64, RAX, mem(RSP, OFF_SELF));
    a.store(W::B64, mem(RAX, OFF_R0), REG_R0);
    a.store(W::B64, mem(RAX, OFF_EXIT_A), RCX);
    a.store(W::B64, mem(RAX, OFF_REM), R12);
    a.store_imm(W::B64, mem(RAX, OFF_EXIT_KIND), EXIT_NORMAL as i32);
    a.store_imm(W::B64, mem(D, field!(left)), 1);
    // The program's epilogue.
    a.bind(done);
    a.alu_ri(Alu::Add, W::B64, RSP, CTX_BYTES);
    for r in SAVED.into_iter().rev() {
        a.pop(r);
    }
    a.ret();
    let code = a.finish().expect("the batch loop's labels are bound");
    (code, resume)
}

/// r0's host register (`compile::REG[0]`).
const REG_R0: u8 = RDI;
