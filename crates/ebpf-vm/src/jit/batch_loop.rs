//! A batch's packets run by a loop of machine code (issue #10 item 2): compiled code entered once
//! for many packets of an XDP batch (`program/xdp_batch.rs`), as the kernel's `BPF_PROG_TEST_RUN`
//! repeat loop only calls the program again. The loop (`driver`, emitted once per process: it
//! names nothing of a program, everything comes from its `Loop`) does per packet what the Rust
//! loop does for a run that leaves nothing behind:
//!
//! - the frame: the packet copied to the headroom's end (`memcpy`), the bytes past it that the
//!   run before may have written zeroed (`memset`, only when the packet is shorter than the one
//!   before), `data_end` written into the context's hidden word and the frame (`data` and
//!   `data_meta` stay where the batch put them: a run that moves them calls a helper, below);
//! - the stack: the words over the bytes a run may read before writing (`Loop::stack`);
//! - the run: a call of the program's main entry with the block as it stands (its prologue copies
//!   it, its epilogue writes the exit record);
//! - the result: r0 and the exit's pc into `Loop::out`, when the run left by `exit`, called no
//!   Rust entry point (`Loop::calls_out`: a helper, the lookup stub) and returned a value no leak
//!   check need look at (below `Loop::leak_below`).
//!
//! Any other run (a trap, a helper call, a value that may be an address) ends the loop with that
//! run done but not recorded: Rust takes its exit record from the block and lets go of what it
//! may have left behind, as for any run (`Repeat::run_loop`), then enters the loop again for the
//! next packet.

use std::sync::OnceLock;

use super::exec_mem::ExecMem;
use super::frame::*;
use super::x86::*;

/// What the loop reads and writes, all words (addresses as integers).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Loop {
    /// The program's main entry.
    pub entry: u64,
    /// The run block (`Ctx`) the entry is called with.
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
    /// A count the Rust entry points raise (`*const u64`): not 0 after a run that called one.
    pub calls_out: u64,
    /// Results with a value at or above this go back to Rust (the leak check).
    pub leak_below: u64,
    /// Where the next run's `(r0, exit pc)` is written (advanced by the loop).
    pub out: u64,
    /// `memcpy` and `memset`.
    pub memcpy: u64,
    pub memset: u64,
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

/// The loop's code: `extern "C" fn(*mut Loop) -> u64` (0: done, 1: left).
pub fn driver() -> unsafe extern "C" fn(*mut Loop) -> u64 {
    static CODE: OnceLock<ExecMem> = OnceLock::new();
    let mem =
        CODE.get_or_init(|| ExecMem::new(&emit()).expect("executable memory for the batch loop"));
    // SAFETY: the code `emit` wrote, with this signature.
    unsafe { std::mem::transmute(mem.entry()) }
}

/// The registers the loop keeps across calls (callee-saved in SysV and in compiled code's entry).
const D: u8 = RBX;
const INDEX: u8 = RBP;
const END: u8 = R12;
const OUT: u8 = R13;
const BLOCK: u8 = R14;
const DATA: u8 = R15;

fn emit() -> Vec<u8> {
    let mut a = Asm::default();
    let (top, copy, run, zero_tail, left, done, out) = (
        a.new_label(),
        a.new_label(),
        a.new_label(),
        a.new_label(),
        a.new_label(),
        a.new_label(),
        a.new_label(),
    );
    let saved = [RBX, RBP, R12, R13, R14, R15];
    for r in saved {
        a.push(r);
    }
    // Entered with rsp 8 mod 16; six pushes and 8 more leave it 16-byte aligned for the calls.
    a.alu_ri(Alu::Sub, W::B64, RSP, 8);
    a.mov_rr(W::B64, D, RDI);
    a.load(W::B64, INDEX, mem(D, field!(index)));
    a.load(W::B64, END, mem(D, field!(end)));
    a.load(W::B64, OUT, mem(D, field!(out)));
    a.load(W::B64, BLOCK, mem(D, field!(block)));
    a.load(W::B64, DATA, mem(D, field!(data)));

    a.bind(top);
    a.alu_rr(Alu::Cmp, W::B64, INDEX, END);
    a.jcc(Cond::Ae, done);
    // rdx = the length, rsi = the packet, rdi = its end in the frame.
    a.load(W::B64, RAX, mem(D, field!(lengths)));
    a.load(W::B32, RDX, mem_idx(RAX, INDEX, 2, 0));
    a.load(W::B64, RAX, mem(D, field!(starts)));
    a.load(W::B64, RSI, mem_idx(RAX, INDEX, 3, 0));
    a.alu_rm(Alu::Add, W::B64, RSI, mem(D, field!(packets)));
    a.lea(RDI, mem_idx(DATA, RDX, 0, 0));
    a.load(W::B64, RAX, mem(D, field!(ctx_data_end)));
    a.store(W::B64, mem(RAX, 0), RDI);
    a.load(W::B64, RAX, mem(D, field!(frame_data_end)));
    a.store(W::B64, mem(RAX, 0), RDI);
    a.store(W::B64, mem(BLOCK, OFF_PACKET_LEN), RDX);
    a.load(W::B64, RCX, mem(D, field!(written_end)));
    a.store(W::B64, mem(D, field!(written_end)), RDI);
    a.alu_rr(Alu::Cmp, W::B64, RCX, RDI);
    a.jcc(Cond::A, zero_tail);
    a.bind(copy);
    a.mov_rr(W::B64, RDI, DATA);
    a.load(W::B64, RAX, mem(D, field!(memcpy)));
    a.call_r(RAX);
    // The stack's words.
    a.load(W::B64, RAX, mem(D, field!(stack)));
    a.load(W::B64, RCX, mem(D, field!(stack_words)));
    a.test_rr(W::B64, RCX, RCX);
    a.jcc(Cond::E, run);
    let zero = a.new_label();
    a.bind(zero);
    a.store_imm(W::B64, mem(RAX, 0), 0);
    a.alu_ri(Alu::Add, W::B64, RAX, 8);
    a.alu_ri(Alu::Sub, W::B64, RCX, 1);
    a.jcc(Cond::Ne, zero);
    a.bind(run);
    a.mov_rr(W::B64, RDI, BLOCK);
    a.load(W::B64, RAX, mem(D, field!(entry)));
    a.call_r(RAX);
    // A plain exit, no call into Rust, no value to check: recorded here.
    a.alu_mi8(
        Alu::Cmp,
        W::B64,
        mem(BLOCK, OFF_EXIT_KIND),
        EXIT_NORMAL as i8,
    );
    a.jcc(Cond::Ne, left);
    a.load(W::B64, RAX, mem(D, field!(calls_out)));
    a.alu_mi8(Alu::Cmp, W::B64, mem(RAX, 0), 0);
    a.jcc(Cond::Ne, left);
    a.load(W::B64, RAX, mem(BLOCK, OFF_R0));
    a.alu_rm(Alu::Cmp, W::B64, RAX, mem(D, field!(leak_below)));
    a.jcc(Cond::Ae, left);
    a.store(W::B64, mem(OUT, 0), RAX);
    a.load(W::B64, RAX, mem(BLOCK, OFF_EXIT_A));
    a.store(W::B64, mem(OUT, 8), RAX);
    a.alu_ri(Alu::Add, W::B64, OUT, 16);
    a.alu_ri(Alu::Add, W::B64, INDEX, 1);
    a.jmp(top);

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

    a.bind(left);
    a.mov_r32_imm(RAX, 1);
    a.jmp(out);
    a.bind(done);
    a.alu_rr(Alu::Xor, W::B32, RAX, RAX);
    a.bind(out);
    a.store(W::B64, mem(D, field!(index)), INDEX);
    a.store(W::B64, mem(D, field!(out)), OUT);
    a.alu_ri(Alu::Add, W::B64, RSP, 8);
    for r in saved.into_iter().rev() {
        a.pop(r);
    }
    a.ret();
    a.finish().expect("the batch loop's labels are bound")
}
