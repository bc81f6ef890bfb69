//! The x86-64 JIT (checked mode). It must agree with `interpreter.rs` bit for bit: r0, memory,
//! the trap (kind, pc, addr, size, message) and the instruction count, for every validated
//! program. Compiled at load time; the code lives in W^X memory (`exec_mem`) unmapped with the
//! program.
//!
//! # Register assignment
//!
//! | eBPF | x86-64 | why |
//! |------|--------|-----|
//! | r0   | rdi    | caller-saved: rewritten by every helper call anyway |
//! | r1-r5| rsi, r8, r9, r10, r11 | caller-saved: pushed around helper calls (they must survive) |
//! | r6-r9| rbx, r13, r14, r15 | callee-saved: survive calls into Rust for free |
//! | r10  | rbp    | callee-saved; `[rbp + off]` frame-local accesses need no check |
//! | budget left | r12 | callee-saved; decremented once per segment |
//! | scratch | rax, rcx, rdx | addresses, `div`/`idiv` (rdx:rax), shift counts (cl) |
//!
//! `rsp` points at the run's context block (`frame::Ctx`), copied onto the host stack by the
//! prologue, so every run-wide value (fast region bounds, packet, call frames, exit record) is
//! one `[rsp + const]` away. rsp never moves in compiled code: bpf-to-bpf calls save r6-r10 and
//! the return address in `Ctx::frames` rather than with host `call`, and only the shared stubs
//! (entered with `call`) push, each restoring rsp before it leaves.
//!
//! # Layout and stubs
//!
//! `prologue | body: one block per instruction, in order | out-of-line snippets | shared stubs`.
//!
//! - Snippets (per site): the budget slow path of each segment (`add r12, n; mov eax, pc; jmp
//!   budget`), the second-region memory check, call-depth traps (`mov eax, pc`) and
//!   misaligned-atomic traps (`mov edx, info`).
//! - Shared stubs: `exit` (returns from a bpf-to-bpf frame, or leaves from the main one),
//!   `packet_miss` (legacy packet load outside the packet: r0 = 0, leave), `budget`,
//!   `call_depth`, `misaligned` (write the exit record), `check` (slow memory check: saves the
//!   caller-saved eBPF registers, calls `runtime::check_entry`, which walks the whole region
//!   table as it is now), `helper` (pushes r1-r5 as the argument array, calls
//!   `runtime::helper_entry` -> `interpreter::call_helper`, pops them back, sets r0) and the
//!   epilogue (copies the exit record to the Rust side, restores host registers). Traps built
//!   in Rust are recorded in the run state; the others are rebuilt in `runtime::run` from the
//!   exit record with the interpreter's own `memory_trap` / `budget_trap`.
//!
//! Memory checks: each load/store compares `addr - start` (computed with `lea rcx, [base+off]`)
//! against a per-size, per-direction bound of one fast region inline (the data for most bases,
//! the stack for r10) and then accesses `[base + off]` directly; on a miss, an out-of-line snippet
//! tries the other fast region and then calls the `check` stub. Accesses `[r10 + off]` that lie
//! within the current 512-byte frame are proved in bounds at compile time and carry no check.
//! The fast regions and the packet are re-read from the environment after every helper call.
//!
//! # Budget scheme
//!
//! The program is cut into *segments*: straight-line runs that start at a jump/call target or
//! after a segment end, and end with the first instruction that jumps, calls, exits, may trap,
//! or changes memory that outlives the run (checked loads/stores, atomics, packet loads). On
//! entry a segment of n instructions does `sub r12, n; jb slow`. If the budget covers it, no
//! other metering happens inside. If not (`slow`), the run stops *before executing any of it*:
//! every instruction before the last one is register arithmetic or frame-local stack traffic,
//! whose effects are unobservable once the run traps, so stopping early is indistinguishable
//! from the interpreter executing `rem` of them and trapping at the next one; `runtime::run`
//! walks `rem` instructions from the segment start to name that pc. Because every instruction
//! that can trap ends its segment, a trap's `insn_count` is `budget - r12 - 1`, and a normal
//! exit's is `budget - r12`.
//!
//! Safety for any validated bytecode: all memory accesses are checked or frame-local; the
//! budget bounds every loop (each backward jump lands on a segment start); `div`/`idiv` never
//! see a zero divisor or INT_MIN / -1; call depth is bounded by 8 frames in `Ctx::frames`, and
//! the host stack use is fixed.

mod compile;
mod disasm;
mod exec_mem;
mod frame;
mod runtime;
mod x86;

use crate::error::{ErrorCode, LoadError, Trap};
use crate::interpreter::{RunEnv, RunOutput};
use crate::isa::Insn;

pub use compile::segments;

/// A program compiled to x86-64.
#[derive(Debug)]
pub struct JitProgram {
    mem: exec_mem::ExecMem,
    offsets: Vec<u32>,
    body_end: usize,
}

impl JitProgram {
    /// Compiles validated instructions.
    pub fn compile(insns: &[Insn]) -> Result<JitProgram, LoadError> {
        let c = compile::compile(insns)
            .map_err(|m| LoadError::new(ErrorCode::Einval, format!("JIT: {m}")))?;
        let mem = exec_mem::ExecMem::new(&c.code)
            .map_err(|m| LoadError::new(ErrorCode::E2big, format!("JIT: {m}")))?;
        Ok(JitProgram {
            mem,
            offsets: c.offsets,
            body_end: c.body_end,
        })
    }

    /// Runs the compiled code. `insns` must be the instructions it was compiled from.
    pub fn run(
        &self,
        insns: &[Insn],
        env: &mut RunEnv<'_>,
        args: [u64; 5],
    ) -> Result<RunOutput, Trap> {
        assert_eq!(
            insns.len(),
            self.offsets.len(),
            "JIT code run with other instructions"
        );
        // SAFETY: the code was compiled from `insns` (same program; length checked above).
        unsafe { runtime::run(self.mem.entry(), insns, env, args) }
    }

    /// Address of the first byte of machine code (the entry point).
    pub fn code_ptr(&self) -> *const u8 {
        self.mem.entry()
    }

    /// Size of the machine code in bytes.
    pub fn code_len(&self) -> usize {
        self.mem.code().len()
    }

    /// Intel-syntax listing of the machine code.
    pub fn disassembly(&self) -> String {
        disasm::disassemble(
            self.mem.code(),
            self.mem.entry() as u64,
            &self.offsets,
            self.body_end,
        )
    }
}

#[cfg(test)]
mod tests;
