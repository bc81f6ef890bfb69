//! The x86-64 JIT. It must agree with `interpreter.rs` bit for bit: r0, memory,
//! the trap (kind, pc, addr, size, message) and the instruction count, for every validated
//! program. Compiled at load time; the code lives in W^X memory (`exec_mem`): written through a
//! read+write view of a shared memory file and run from a read+execute view of it at another
//! address (no mapping is ever writable and executable), in chunks that a load and a drop take
//! and give back with no system call; freed code is overwritten with `int3`. Where such a file
//! cannot be mapped, each program has pages of its own, switched between read+write and
//! read+execute with `mprotect` at load and drop.
//!
//! # Register assignment
//!
//! | eBPF | x86-64 | why |
//! |------|--------|-----|
//! | r0   | rdi    | caller-saved: rewritten by every helper call anyway |
//! | r1-r5| rsi, r8, r9, r10, r11 | caller-saved: pushed around helper calls (they must survive) |
//! | r6-r9| rbx, r13, r14, r15 | callee-saved: survive calls into Rust for free |
//! | r10  | rbp    | callee-saved; `[rbp + off]` frame-local accesses need no check |
//! | budget left | r12 | callee-saved; decremented once per metered chain of blocks |
//! | `0 - data start` | rdx | `Ctx::data_neg`, for the inline data check; reloaded after the few things that clobber it (division, compare-exchange, helper and slow-check calls) |
//! | scratch | rax, rcx | addresses, `div`/`idiv` (with rdx), shift counts (cl) |
//!
//! `rsp` points at the run's context block (`frame::Ctx`), of which the prologue copies onto the
//! host stack what compiled code reads there (`frame::CTX_COPIED`; the fast region bounds only
//! for code with inline checks), so every run-wide value (fast region bounds, packet, call
//! frames) is one `[rsp + const]` away; the exit stubs write the exit record straight to the
//! Rust-side block. rsp never moves in compiled code: bpf-to-bpf calls save r6-r10 and
//! the return address in `Ctx::frames` rather than with host `call`, and only the shared stubs
//! (entered with `call`) push, each restoring rsp before it leaves.
//!
//! # Layout and stubs
//!
//! `prologue | body: one block per instruction, in order | out-of-line snippets | shared stubs`.
//! Fast-loop copies are snippets too.
//!
//! - Snippets (per site): the budget slow path of each block (`mov eax, pc; mov edx, n; call
//!   refill; jmp back`), the way out of a failed inline memory check (`mov rax, info |
//!   charge-ahead << 32; call second-region stub; jmp back`), call-depth traps (`mov eax, pc`),
//!   misaligned-atomic traps (`mov edx, info`) and packet-load misses.
//! - Second-region stubs (after the snippets, one per region tried second and size/direction
//!   bound index that some site uses): entered by call with rcx as the inline check left it
//!   (`addr - start` of the first region), they check the other fast region and return, or
//!   rebuild the address and go on into `check`, which returns to the site. Before the stack's
//!   stub of a bound index, when a quiet group uses it, the full stub: the data's check first.
//! - Shared stubs: `exit` (returns from a bpf-to-bpf frame, or leaves from the main one),
//!   `packet_miss` (legacy packet load outside the packet: r0 = 0, leave),
//!   `call_depth`, `misaligned` (write the exit record straight to the Rust-side block),
//!   `refill` (the next slice of the budget, or the way out for Rust to finish the run),
//!   `check` (slow memory check: saves the caller-saved eBPF registers, calls
//!   `runtime::check_entry`, which walks the whole region table as it is now and, on a trap,
//!   counts with the charge-ahead that came in rax's high half, so r12 is never moved around
//!   the call; reloads rdx), `helper` (pushes
//!   r1-r5 as the argument array, calls `runtime::helper_entry` -> `interpreter::call_helper`,
//!   pops them back, sets r0) and the epilogue (restores host registers). Traps built in Rust
//!   are recorded in the run state; the others are rebuilt in `runtime::run` from the
//!   exit record with the interpreter's own `memory_trap`.
//!
//! Memory checks: each load/store compares `addr - start` against a per-size, per-direction bound
//! of one fast region inline (the data for most bases: `lea rcx, [base + rdx + off]; cmp rcx,
//! [rsp + bound]`; the stack for r10: `lea` then `sub` of its start) and then accesses
//! `[base + off]` directly; on a miss, a three-instruction snippet (what differs between sites:
//! the access's info and the chain's charge-ahead, and the way back) calls the shared stub that
//! tries the other fast region and then goes on into the `check` stub (`parse` has 51 checked
//! accesses; per-site snippets of ten instructions were replaced).
//! Accesses `[r10 + off]` that lie
//! within the current 512-byte frame are proved in bounds at compile time and carry no check.
//! Accesses through one base register within 64 bytes of each other in a chain, with nothing
//! writing that register or calling out between them, share one check of the span they cover
//! (`Compiler::group` in `compile/memory.rs`). If it fails, a *quiet* group (its members loads
//! but maybe the last, nothing a trap would show between them: no jump, store or other checked
//! access) checks each member in turn out of line (`lea rcx, [base + rdx + off]; mov rax, info;
//! call` the full stub) and goes back to run its code unchecked; any other group runs a copy
//! of its instructions with their own checks (`parse`'s six groups, 46 of its 51 accesses, are
//! all quiet: 127 copied instructions fewer; with the shared stubs, its code 7.8 -> 4.9 KB).
//! Counted loops (`t = b; t += i; access [t + off]; ...; if i < n goto head`, or as clang rotates
//! it `if i == n goto out; goto head`; one chain, no helper calls) check every covered access of
//! every iteration once at their head and then run a copy of the chain without those checks
//! (`loops.rs` has the argument; out of line, or in unmetered code right after the head check,
//! which falls into it), unrolled twice and metered as one chain of twice the
//! length (a blinded bound is rebuilt once, by the head check, into `Ctx::loop_limit`); when that
//! check fails, or less than two iterations of budget are left, the ordinary chain runs.
//! The fast regions and the packet are re-read from the environment after every helper call.
//!
//! # Budget scheme
//!
//! Metering is per chain of basic blocks: blocks start at pc 0, at jump and call targets and
//! after a jump, bpf-to-bpf call or exit, and end with such an instruction (helper calls, loads,
//! stores and atomics may sit anywhere in a block). A chain is a block and the blocks that follow
//! it by falling through a conditional jump that leaves the innermost (natural) loop holding it
//! (a loop's early exit, rarely taken) and that are no jump targets (`compile::chains`; blocks,
//! loops and targets come from the analysis). On entry a chain of n instructions does `sub r12, n; jb slow`: if the
//! budget covers the whole chain, no other metering happens in it. A conditional jump taken out
//! of the middle of a chain at index k goes through a snippet that gives back the `n - 1 - k`
//! instructions it skips (`add r12, n-1-k`) before reaching its target. An instruction that can
//! trap at index k of its chain knows statically that `n - 1 - k` instructions of the chain were
//! charged but not executed, and raises r12 by that much before the stub that counts (`check`,
//! `helper`, `misaligned`, `packet_miss`), so a trap's `insn_count` is `budget - r12 - 1` and a
//! normal exit's `budget - r12`, exactly. (Below, "block" means a chain.)
//!
//! `slow` (rem = r12 + n < n: the budget in hand ends inside this block) is a snippet of four
//! instructions that calls the `refill` stub with the block's pc and n. The stub pushes r0-r10
//! and calls `runtime::refill_entry`, which takes the next slice of the budget (`limits::Meter`:
//! with run limits the budget comes in slices, and the limits are checked here). If that covers
//! the block, r12 is set with the block charged and the block runs. If not, the whole budget is
//! in hand and ends inside this block, of which no instruction has run yet: the run's state is
//! captured (`finish::Paused`: the block's pc, r0-r10 as pushed, `rem`, and the live calls'
//! frames from `Ctx::frames`) and the code leaves through the epilogue (`EXIT_FINISH`). Rust then
//! finishes the run from that state in the reference semantics (`semantics::reference_loop`, the
//! interpreter's own code): at most `rem` more instructions, following jumps, calls and helper
//! calls anywhere (on the same memory, maps and `RunEnv`), then the budget trap, or the end of
//! the run if an exit or another trap comes first. So every outcome of a run the budget stops
//! (r0, memory, trap kind, pc, address, size, count) is the interpreter's by construction, and
//! no block needs a second, metered copy of its code (which was 15% of `parse`'s checked load
//! and 24% of its code). The frames' host return addresses go back to pcs through the slots'
//! code offsets (`finish::Layout`, which every run is handed); a callback's run (entered through
//! the function prologue) finishes the same way, as the callback's own run, whose result goes
//! back to the helper that called it; with coverage, the finish counts chain entries and
//! fall-throughs into the same counters as the code (`finish::Chains`).

//! Unmetered code (`JitOptions::meter` off: a verified program whose termination the verifier
//! proved, `ProgramOptions::meter`) has none of this: no chain charges r12, nothing is given back
//! (`adj` is 0), no budget snippet is made, and fast loops' copies charge nothing. r12 keeps
//! what the run started with, moved only by what helpers charge (callbacks), so the count a run
//! reports is theirs alone (`Program` reports 0 for such runs) and no budget trap can happen.
//!
//! # Code quality
//!
//! `dst = src; dst += x` inside a chain is one `lea` (the add is no jump target, so nothing can
//! enter between the two); `mov r, 0` is `xor`, `cmp r, 0` is `test r, r` (no flags live across
//! eBPF instructions); loop heads (targets of backward jumps) are aligned to 64 bytes, as the
//! inline checks make hot loops long enough to be bound by instruction fetch. For accesses the
//! verifier proved, `t = b; t += x` whose sum only those accesses read (dead after them: the last
//! loads into `t`, or liveness says so) is no instruction at all: the accesses address
//! `[b + x + off]` (`compile/alu.rs`, `fold`). In unmetered code a `ja` to a short latch
//! (register arithmetic and a conditional jump: a `continue`, a switch's case) is a copy of the
//! latch, one taken jump fewer per trip round the loop (`compile/control.rs`, `copy_latch`).
//!
//! # Constant blinding
//!
//! By default (`JitOptions::blind_constants`, `ProgramOptions::blind_constants`) no immediate of
//! the program is written into the code as it is: each is XORed with a random key and rebuilt in a
//! scratch register (rax, or rcx for divisors and shift counts) right before the instruction that
//! uses it, which then takes its register form; `dst = src; dst += imm` is then not fused into a
//! `lea`. See `blind.rs`.
//!
//! Safety for any validated bytecode: all memory accesses are checked or frame-local; the
//! budget bounds every loop (each backward jump lands on a block start); `div`/`idiv` never
//! see a zero divisor or INT_MIN / -1; call depth is bounded by 8 frames in `Ctx::frames`, and
//! the host stack use is fixed.

mod batch_loop;
mod blind;
mod compile;
mod disasm;
mod exec_mem;
mod finish;
mod frame;
mod loops;
mod runtime;
mod x86;

pub use batch_loop::{Loop, LoopEnd};
pub use runtime::{Home, Repeat};

use crate::analysis::{analyse, Analysis, AnalysisOptions};
use crate::error::{ErrorCode, LoadError, Trap};
use crate::isa::Insn;
use crate::vm::env::{Entry, ExecutionEngine, RunEnv, Validated};
use crate::vm::{RunOutput, MAX_CALL_FRAMES};

pub use compile::{blocks, chains};

/// Makes every later load of this process put its code in pages of its own switched with
/// `mprotect` (the fallback where no arena can be mapped), if no load has chosen yet; says
/// whether that is now the choice. For tests of the fallback.
#[doc(hidden)]
pub fn force_mprotect_exec_memory() -> bool {
    exec_mem::force_fallback()
}
pub use disasm::{JitedFunction, JitedInsn};

/// A program compiled to x86-64.
#[derive(Debug)]
pub struct JitProgram {
    mem: exec_mem::ExecMem,
    /// The offset of each slot's code, and what a finish of a run needs (see `finish`).
    layout: finish::Layout,
    /// Where the main prologue ends (see `compile::Compiled::body_start`).
    body_start: usize,
    body_end: usize,
    /// The function prologue (how callbacks are entered) and each callback entry's code.
    function_entry: usize,
    entries: Vec<(usize, u32)>,
    /// The stack frames a run of the program must expose at least (see `stack_reach`).
    stack_frames: usize,
    /// The code checks memory accesses inline (`compile::Compiled::checks`).
    checks: bool,
    /// Where the instructions end: jump tables (data) follow (`compile::Compiled::code_end`).
    code_end: usize,
    /// A bare run's entry (`compile::Compiled::bare_entry`).
    bare_entry: Option<usize>,
}

/// A bare run's entry into compiled code (`JitProgram::bare_entry`): r1 = `data`, r2 = `len`,
/// r10 = `stack_top`; returns r0 and the pc of the exit it left by.
pub(crate) type BareEntry = unsafe extern "C" fn(data: u64, len: u64, stack_top: u64) -> BareExit;

/// What a bare run returns (in rax and rdx).
#[repr(C)]
pub(crate) struct BareExit {
    pub r0: u64,
    pub exit_pc: u64,
}

/// How the JIT compiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JitOptions {
    /// Emit no immediate of the program as it is (see `blind.rs`): on by default, as the bytecode
    /// is untrusted.
    pub blind_constants: bool,
    /// Count coverage: the addresses of the counters (`coverage::CoverageCounters::addresses`),
    /// which must outlive the code.
    pub coverage: Option<(u64, u64)>,
    /// Meter the instruction budget (on by default). Off only for programs whose termination the
    /// verifier proved (`ProgramOptions::meter`): the code then charges nothing, so a run's
    /// count stays at what helpers charged and no budget can stop it.
    pub meter: bool,
}

impl Default for JitOptions {
    fn default() -> Self {
        JitOptions {
            blind_constants: true,
            coverage: None,
            meter: true,
        }
    }
}

/// The JIT's metered chains (instruction count by head slot), which its code counts coverage by
/// (see `coverage`).
pub fn coverage_chains(analysis: &Analysis) -> Vec<u32> {
    compile::chains(analysis)
}

impl JitProgram {
    /// Compiles validated instructions, with the default options (constants blinded).
    pub fn compile(insns: &[Insn]) -> Result<JitProgram, LoadError> {
        Self::compile_with(insns, JitOptions::default())
    }

    /// Compiles validated instructions (analysing them first, as a load does), for runs that
    /// expose the whole stack area.
    pub fn compile_with(insns: &[Insn], options: JitOptions) -> Result<JitProgram, LoadError> {
        let analysis = analyse(insns, &AnalysisOptions::default())?;
        Self::compile_program(insns, &analysis, options, &[], MAX_CALL_FRAMES, None, &[])
    }

    /// Compiles validated instructions whose analysis is `analysis`; `entries` are the
    /// program's callback entries (sorted), which `run_function` may start at; a run exposes
    /// `stack_frames` frames of the stack, or all of them (`stack_reach::reachable_frames`).
    /// `proved` (mode verified: `VerifierReport::proved`, by slot) names the loads and stores
    /// the verifier proved in bounds: they are compiled as direct accesses, with no check;
    /// proved lookups into `lookups` skip the lookup stub in a batch (see `InlineLookup`).
    pub fn compile_program(
        insns: &[Insn],
        analysis: &Analysis,
        options: JitOptions,
        entries: &[usize],
        stack_frames: usize,
        proved: Option<&[bool]>,
        lookups: &[crate::helpers::maps::InlineLookup],
    ) -> Result<JitProgram, LoadError> {
        let c = compile::compile(insns, analysis, options, entries, proved, lookups)
            .map_err(|m| LoadError::new(ErrorCode::Einval, format!("JIT: {m}")))?;
        let mem = exec_mem::ExecMem::new(&c.code)
            .map_err(|m| LoadError::new(ErrorCode::E2big, format!("JIT: {m}")))?;
        let mut layout = c.layout;
        layout.base = mem.entry() as u64;
        Ok(JitProgram {
            mem,
            layout,
            body_start: c.body_start,
            body_end: c.body_end,
            function_entry: c.function_entry,
            entries: c.entries,
            stack_frames,
            checks: c.checks,
            code_end: c.code_end,
            bare_entry: c.bare_entry,
        })
    }

    /// Panics unless `insns` can be the instructions the code was compiled from (one offset per
    /// slot): a run decodes its exits against them.
    fn check_insns(&self, insns: &[Insn]) {
        assert_eq!(
            insns.len(),
            self.layout.offsets.len(),
            "JIT code run with other instructions"
        );
    }

    /// Runs the compiled code. `insns` must be the instructions it was compiled from.
    pub fn run(
        &self,
        insns: &[Insn],
        env: &mut RunEnv<'_>,
        args: [u64; 5],
    ) -> Result<RunOutput, Trap> {
        self.check_insns(insns);
        let start = runtime::Start::Main(self.mem.entry());
        // SAFETY: the code was compiled from `insns` (same program; length checked above).
        unsafe { self.run_at(start, insns, env, args) }
    }

    /// `runtime::run` of this code from `start`.
    ///
    /// # Safety
    /// `start`'s addresses are in this code, and `insns` are the instructions it was compiled
    /// from.
    unsafe fn run_at(
        &self,
        start: runtime::Start,
        insns: &[Insn],
        env: &mut RunEnv<'_>,
        args: [u64; 5],
    ) -> Result<RunOutput, Trap> {
        let (frames, checks) = (self.stack_frames, self.checks);
        runtime::run(start, insns, &self.layout, env, args, frames, checks)
    }

    /// `run` on `home`'s block (a run space's, for its runs of main programs one after another;
    /// see `Home`). Inlined into its two callers (single runs, tail-call chains): a call and
    /// a copy of the result fewer per run.
    #[inline(always)]
    pub fn run_home(
        &self,
        home: &mut Home,
        insns: &[Insn],
        env: &mut RunEnv<'_>,
        args: [u64; 5],
    ) -> Result<RunOutput, Trap> {
        self.check_insns(insns);
        let (entry, frames, checks) = (self.mem.entry(), self.stack_frames, self.checks);
        // SAFETY: the main entry of this code, compiled from `insns` (length checked above).
        unsafe { home.run(entry, (insns, &self.layout), env, args, frames, checks) }
    }

    /// `run_home` for a plain single run (`Home::run_plain`): `env` set up as that says, its hot
    /// regions `hot`.
    ///
    /// # Safety
    /// `env`'s stack region is the `stack_frames` frames this code was compiled for, under
    /// `env.stack_top`, and the rest of `env` is as `Home::run_plain` says.
    #[inline(always)]
    pub(crate) unsafe fn run_plain(
        &self,
        home: &mut Home,
        insns: &[Insn],
        env: &mut RunEnv<'_>,
        args: [u64; 5],
        hot: [u64; 6],
    ) -> Result<RunOutput, Trap> {
        self.check_insns(insns);
        // SAFETY: the main entry of this code, compiled from `insns` (length checked above);
        // `env` as this function's caller promises.
        unsafe {
            let code = (insns, &self.layout);
            home.run_plain(self.mem.entry(), code, env, args, self.checks, hot)
        }
    }

    /// The code's bare entry, where the code can leave only by its exits (no memory check,
    /// budget, call out, trap or legacy packet load: `compile::Compiled::bare_entry`).
    ///
    /// Calling it is safe when the run's stack is the `stack_frames` frames under `stack_top`
    /// (writable, with the bytes the program reads before writing zeroed), `data` is `len`
    /// writable bytes, and the program was verified for that memory: its code accesses both
    /// unchecked.
    pub(crate) fn bare_entry(&self) -> Option<BareEntry> {
        let at = self.bare_entry?;
        // SAFETY: the offset of code emitted with that signature (`Compiler::bare_entry`).
        Some(unsafe { std::mem::transmute::<*const u8, BareEntry>(self.mem.entry().add(at)) })
    }

    /// Whether the code checks memory accesses inline, or calls the check stub: some load,
    /// store or atomic of the program was not proved (`compile::Compiled::checks`).
    pub(crate) fn checks(&self) -> bool {
        self.checks
    }

    /// The block for runs of the main program repeated on `env` (see `Repeat`), or `None` where
    /// a run falls back to the interpreter.
    pub fn repeat(&self, env: &RunEnv<'_>) -> Option<Repeat> {
        Repeat::new(self.mem.entry(), env, self.stack_frames, self.checks)
    }

    /// One run of the main program on `repeat`'s block (from `self.repeat`). `insns` must be the
    /// instructions the code was compiled from.
    pub fn run_repeat(
        &self,
        repeat: &mut Repeat,
        insns: &[Insn],
        env: &mut RunEnv<'_>,
        args: [u64; 5],
    ) -> Result<RunOutput, Trap> {
        self.check_insns(insns);
        assert!(
            repeat.entry() == self.mem.entry(),
            "a block made for other code"
        );
        // SAFETY: `repeat` enters this code's main entry (checked above), which was compiled
        // from `insns` (length checked above).
        unsafe { repeat.run((insns, &self.layout), env, args) }
    }

    /// Packets of a batch on `repeat`'s block in the loop of machine code (see `Repeat::run_loop`;
    /// the block must have run this code before). `insns` must be the instructions the code was
    /// compiled from; the code must be unmetered and the run without limits.
    ///
    /// # Safety
    /// `lp` describes the batch as `batch_loop::Loop` says: its packets, frame and stack are
    /// memory of the batch's runs, of the lengths it gives.
    pub unsafe fn run_loop(
        &self,
        repeat: &mut Repeat,
        insns: &[Insn],
        env: &mut RunEnv<'_>,
        lp: &mut Loop,
    ) -> Option<LoopEnd> {
        self.check_insns(insns);
        assert!(
            repeat.entry() == self.mem.entry(),
            "a block made for other code"
        );
        assert!(!env.state.limits.is_active(), "a loop run with limits");
        // SAFETY: inside the code (the prologue's end).
        lp.body = unsafe { self.mem.entry().add(self.body_start) } as u64;
        // SAFETY: as `run_repeat`'s; `lp` as this function's contract says.
        unsafe { repeat.run_loop((insns, &self.layout), env, lp) }
    }

    /// Runs the function at callback entry `pc` (one of the `entries` given to `compile`) until
    /// its `exit`, on the stack at `env.stack_top` (a callback stack of the run).
    pub fn run_function(
        &self,
        insns: &[Insn],
        env: &mut RunEnv<'_>,
        args: [u64; 5],
        pc: usize,
    ) -> Result<RunOutput, Trap> {
        self.check_insns(insns);
        let Ok(i) = self.entries.binary_search_by_key(&pc, |e| e.0) else {
            return Err(Trap {
                kind: crate::error::TrapKind::BadCallTarget,
                pc,
                addr: 0,
                size: 0,
                insn_count: 0,
                message: format!("{pc} is not a callback entry of this program"),
                place: None,
            });
        };
        let base = self.mem.entry();
        // SAFETY: offsets inside the code, which was compiled from `insns` (length checked).
        let start = unsafe {
            runtime::Start::Function(
                base.add(self.function_entry),
                base.add(self.entries[i].1 as usize),
                pc,
            )
        };
        // SAFETY: as above.
        unsafe { self.run_at(start, insns, env, args) }
    }

    /// Address of the first byte of machine code (the entry point).
    pub fn code_ptr(&self) -> *const u8 {
        self.mem.entry()
    }

    /// Size of the machine code in bytes.
    pub fn code_len(&self) -> usize {
        self.mem.code().len()
    }

    /// Intel-syntax listing of the machine code (`functions`: the first slot of each eBPF
    /// function, marked where its code begins).
    pub fn disassembly(&self, functions: &[usize]) -> String {
        disasm::disassemble(
            &self.mem.code()[..self.code_end],
            self.mem.entry() as u64,
            &self.layout.offsets,
            self.body_end,
            functions,
        )
    }

    /// The machine code as instructions in AT&T syntax, one section per function (`functions`:
    /// the first slot of each, ascending) and one for the shared out-of-line code, each decoded
    /// from address 0 (see [`JitedFunction`]).
    pub fn listing(&self, functions: &[usize]) -> Vec<disasm::JitedFunction> {
        disasm::listing(
            &self.mem.code()[..self.code_end],
            &self.layout.offsets,
            self.body_end,
            functions,
        )
    }
}

/// The JIT's side of the run ABI: compiled at load (counting coverage into the program's
/// counters when it has them), entered at slot 0 or at a callback's entry.
impl ExecutionEngine for JitProgram {
    fn prepare(p: &Validated<'_>) -> Result<Self, LoadError> {
        let options = JitOptions {
            blind_constants: p.blind_constants,
            coverage: p.coverage.map(crate::coverage::CoverageCounters::addresses),
            meter: p.meter,
        };
        Self::compile_program(
            p.insns,
            p.analysis,
            options,
            p.callbacks,
            p.stack_frames,
            p.proved,
            p.lookups,
        )
    }

    fn run_from(
        &self,
        insns: &[Insn],
        env: &mut RunEnv<'_>,
        args: [u64; 5],
        entry: Entry,
    ) -> Result<RunOutput, Trap> {
        match entry {
            Entry::Main => self.run(insns, env, args),
            Entry::Function(pc) => self.run_function(insns, env, args, pc),
        }
    }
}

#[cfg(test)]
mod tests;
