//! Translation of validated eBPF into x86-64 machine code: basic-block analysis for the budget,
//! then one pass over the instructions, then the out-of-line snippets (among them the metered
//! copies of blocks) and the shared stubs. The layout,
//! register assignment and budget scheme are described in `jit/mod.rs`.

use super::blind::{worth_blinding, Blinder};
use super::frame::*;
use super::loops::{self, FastLoop, Limit};
use super::runtime;
use super::x86::*;
use crate::analysis::{Analysis, Flow, LogicalProgram};
use crate::isa::opcodes::*;
use crate::isa::{lddw_imm, Insn};
use crate::vm::{MAX_CALL_FRAMES, STACK_FRAME_SIZE};

/// Host register of each eBPF register r0-r10.
pub const REG: [u8; 11] = [RDI, RSI, R8, R9, R10, R11, RBX, R13, R14, R15, RBP];
/// Instruction budget left in this run (decremented per metered chain of blocks).
const BUDGET: u8 = R12;
/// `0 - start` of the data region (`Ctx::data_neg`), for the inline check. Code that needs rdx
/// for something else (division, compare-exchange, calls out) reloads it afterwards.
const DATA_NEG: u8 = RDX;

/// Upper bound on the bytes one instruction emits inline, its block's budget check included.
pub const MAX_INSN_BYTES: usize = 144;
/// Upper bound on the out-of-line bytes one instruction adds: its copy in the metered version of
/// its block with a budget probe, and for each of its two copies a second-region check or a trap
/// snippet, plus its block's budget exit (the request for the next slice included).
pub const MAX_SNIPPET_BYTES: usize =
    4 * MAX_INSN_BYTES + 32 + 4 * 72 + 24 + 2 * LOOP_ALIGN + 64 + 40;
/// Loop heads start on a cache line, so that a short loop is fetched and decoded whole (dense
/// code such as the inline checks is front-end bound; measured: strcmp 16.2 -> 13.9 us).
pub const LOOP_ALIGN: usize = 64;
/// Upper bound on the check a fast loop does at its head (see `loops`); its fixed part has room
/// for a blinded bound (13 bytes where the plain one takes up to 7).
pub const MAX_GUARD_BYTES: usize = 48 + 40 * loops::MAX_ACCESSES;
/// Upper bound on the two prologues and the shared stubs.
pub const MAX_FIXED_BYTES: usize = 2048;
/// Instructions after an access that `group` looks at for more accesses through its base, and
/// the most accesses one group check covers: both bound the work per access (and the group's
/// out-of-line copy), so that compilation stays linear in the program's length.
const GROUP_WINDOW: u32 = 64;
const GROUP_MAX_MEMBERS: usize = 16;

/// Compiled code and, for each instruction slot, the offset of its code (`u32::MAX` for the
/// second slot of `lddw`).
pub struct Compiled {
    pub code: Vec<u8>,
    pub offsets: Vec<u32>,
    /// Where the out-of-line snippets and shared stubs begin.
    pub body_end: usize,
    /// The function prologue: sets up a run as the main prologue does, then jumps to
    /// `Ctx::entry` (how a callback is entered).
    pub function_entry: usize,
    /// For each callback entry (ascending), the offset of its code.
    pub entries: Vec<(usize, u32)>,
}

/// The code-size bound, known before emission (compilation fails rather than exceed it).
pub fn size_bound(insns: usize) -> usize {
    insns * (MAX_INSN_BYTES + MAX_SNIPPET_BYTES + MAX_GUARD_BYTES + LOOP_ALIGN - 1 + COUNTER_BYTES)
        + MAX_FIXED_BYTES
}

/// Bytes of the coverage counters' increments (`count`: `mov rax, imm64; add qword [rax], 1`,
/// 14 bytes) one instruction may add: one in its main code (a chain head's, or a conditional
/// jump's fall-through), one in its metered copy, and in a fast loop's two copies one each, with
/// the back jump's extra entry count and jumps around it.
const COUNTER_BYTES: usize = 6 * 14 + 16;

/// Whether `[r10 + off, r10 + off + size)` is inside the current frame: r10 is always the top of
/// a 512-byte frame inside the stack area (it only moves by whole frames, at most 7 of them), so
/// such an access can never leave the stack region and needs no run-time check.
fn frame_local(base: u8, off: i16, size: u32) -> bool {
    base == FP && off as i32 >= -(STACK_FRAME_SIZE as i32) && off as i32 + size as i32 <= 0
}

fn is_lddw(insn: &Insn) -> bool {
    insn.opcode == OP_LDDW
}

/// Whether an instruction ends one of the JIT's basic blocks: it jumps, calls or exits. Helper
/// calls end blocks too, although control comes back to the next instruction: a helper may
/// charge the budget (callbacks, see `helpers/callbacks.rs`), so what is left of it is known only
/// after the call, and the next block meters itself against that. (Finer than the analysis'
/// blocks, which plain helper calls do not end; legacy packet loads end those, not these.)
fn ends_block(flow: Flow) -> bool {
    !matches!(flow, Flow::Next | Flow::PacketLoad)
}

/// Whether an instruction can have an effect that outlives a trap of the run: it may trap
/// itself, end the run, or change memory other than the current stack frame. Register
/// arithmetic, `lddw` and frame-local stack accesses cannot.
fn observable(insn: &Insn) -> bool {
    let op = insn.opcode;
    match class(op) {
        CLASS_ALU | CLASS_ALU64 => false,
        CLASS_LD => !is_lddw(insn),
        CLASS_LDX => !frame_local(insn.src, insn.off, access_size(op)),
        CLASS_ST => !frame_local(insn.dst, insn.off, access_size(op)),
        CLASS_STX => op & 0xe0 == MODE_ATOMIC || !frame_local(insn.dst, insn.off, access_size(op)),
        _ => true,
    }
}

/// What the JIT needs of the analysis, by slot: where each jump and local call goes (resolved
/// once by the analysis), where loops start in the code, and the metered chains.
pub struct Shape {
    /// Slot -> the slot its jump or local call goes to, `NO_TARGET` for other instructions.
    target: Vec<u32>,
    /// Targets of backward jumps: where a loop's code starts in the layout (clang rotates loops,
    /// so that is often not the natural loop's header). Code placement is about the layout:
    /// these are aligned, and only these can head a counted loop (`loops::fast_loop`).
    pub loop_heads: Vec<bool>,
    /// For each slot starting a metered chain, its number of instructions (0 elsewhere).
    pub chains: Vec<u32>,
}

const NO_TARGET: u32 = u32::MAX;

impl Shape {
    pub fn of(analysis: &Analysis) -> Shape {
        let p = &analysis.program;
        let mut target = vec![NO_TARGET; p.slot_count()];
        let mut loop_heads = vec![false; p.slot_count()];
        for (i, flow) in analysis.cfg.flows.iter().enumerate() {
            if let Some(t) = flow_target(*flow) {
                target[p.slot(i)] = p.slot(t) as u32;
                if t <= i && !matches!(flow, Flow::Call { .. }) {
                    loop_heads[p.slot(t)] = true;
                }
            }
        }
        Shape {
            target,
            loop_heads,
            chains: chains(analysis),
        }
    }

    /// The slot the jump or local call at slot `pc` goes to.
    fn target(&self, pc: usize) -> Option<usize> {
        match self.target[pc] {
            NO_TARGET => None,
            t => Some(t as usize),
        }
    }
}

/// Where a jump or local call goes (logical index).
fn flow_target(flow: Flow) -> Option<usize> {
    match flow {
        Flow::Jump { target } | Flow::Branch { target } | Flow::Call { target } => {
            Some(target as usize)
        }
        _ => None,
    }
}

/// Whether an instruction is a conditional jump: control may fall through to the next one.
fn is_cond_jump(insn: &Insn) -> bool {
    let op = insn.opcode;
    matches!(class(op), CLASS_JMP | CLASS_JMP32)
        && !matches!(op & 0xf0, JMP_JA | JMP_CALL | JMP_EXIT)
}

/// For each slot starting a metered chain, the number of instructions in that chain (0
/// elsewhere). A chain is a run of basic blocks that only the first can be entered other than by
/// falling through: each later block follows a conditional jump that leaves the innermost loop
/// holding it (a loop's early exit, rarely taken; a jump that stays inside the loop, such as a
/// switch inside a loop, may as well be its hot path) and is no jump or call target. Loops are
/// the analysis' natural loops (from dominators). The whole chain is charged on entry; a jump
/// taken out of its middle gives back what it skips (see `Snippet::Refund`). Chains only save
/// time; any split of the blocks into chains is exact. Functions start chains (callbacks are
/// entered there too).
pub fn chains(analysis: &Analysis) -> Vec<u32> {
    let (p, cfg, loops) = (&analysis.program, &analysis.cfg, &analysis.loops);
    // A conditional jump joins its chain to the next block when it leaves the innermost loop
    // holding it.
    let leaves_loop = |i: usize, t: usize| {
        loops
            .loop_of(cfg.block_of(i))
            .is_some_and(|l| !loops.contains(l, cfg.block_of(t)))
    };
    let mut head = vec![false; p.slot_count()];
    for f in &analysis.functions.funcs {
        head[p.slot(f.start)] = true;
    }
    for (i, &flow) in cfg.flows.iter().enumerate() {
        let t = flow_target(flow);
        if let Some(t) = t {
            head[p.slot(t)] = true;
        }
        let joins = matches!(flow, Flow::Branch { .. }) && t.is_some_and(|t| leaves_loop(i, t));
        if ends_block(flow) && !joins && i + 1 < p.len() {
            head[p.slot(i + 1)] = true;
        }
    }
    count_runs(p, &head)
}

/// For each `true` slot of `head`, the number of instructions up to the next one.
fn count_runs(p: &LogicalProgram, head: &[bool]) -> Vec<u32> {
    let mut count = vec![0u32; p.slot_count()];
    let mut current = 0;
    for i in 0..p.len() {
        let pc = p.slot(i);
        if head[pc] {
            current = pc;
        }
        count[current] += 1;
    }
    count
}

/// For each slot starting a basic block of the JIT (see `ends_block`), the number of
/// instructions in that block (0 elsewhere).
pub fn blocks(analysis: &Analysis) -> Vec<u32> {
    let p = &analysis.program;
    let mut leader = vec![false; p.slot_count()];
    leader[0] = true;
    for (i, &flow) in analysis.cfg.flows.iter().enumerate() {
        if let Some(t) = flow_target(flow) {
            leader[p.slot(t)] = true;
        }
        if ends_block(flow) && i + 1 < p.len() {
            leader[p.slot(i + 1)] = true;
        }
    }
    count_runs(p, &leader)
}

enum Snippet {
    /// Budget in hand too small for the block at `pc` of `n` instructions: take the next slice
    /// (`runtime::refill_entry`) and go on at `resume` if it covers the block; else run its
    /// metered copy (or stop at once when no instruction before its last is observable).
    Budget {
        at: Label,
        resume: Label,
        pc: usize,
        n: u32,
    },
    CallDepth {
        at: Label,
        pc: usize,
    },
    Misaligned {
        at: Label,
        info: u32,
        adj: u32,
    },
    /// A legacy packet load outside the packet.
    PacketMiss {
        at: Label,
        adj: u32,
        pc: usize,
    },
    /// A chain of one `ja` that a conditional jump just before it jumps over: placed out of line
    /// so that the way over it is the fall-through (see `jump_over_ja`).
    LoneJa {
        pc: usize,
    },
    /// A conditional jump taken out of the middle of a chain: give back the `adj` instructions
    /// of the chain that it skips, then go to the target.
    Refund {
        at: Label,
        adj: u32,
        target: Label,
    },
    /// The copy of a loop chain whose covered accesses go unchecked (see `loops`), unrolled
    /// twice, entered at `top` once the check at the head passed; `slow` is the chain's budget
    /// exit, `checked` the ordinary chain after its head check.
    FastLoop {
        head: usize,
        n: u32,
        top: Label,
        slow: Label,
        checked: Label,
        accesses: Vec<usize>,
    },
    /// A group's check failed: run its accesses (and what lies between them) with their own
    /// checks, then rejoin the ordinary code after the last of them.
    Group {
        at: Label,
        first: usize,
        last: usize,
        block_n: u32,
        block_k: u32,
        rejoin: Label,
    },
    /// The inline check against one fast region failed: try the other, then the stub.
    Check {
        at: Label,
        back: Label,
        m: Mem,
        region: usize,
        bi: usize,
        info: u32,
        adj: u32,
    },
}

struct Stubs {
    exit: Label,
    main_exit: Label,
    epilogue: Label,
    check: Label,
    helper: Label,
    budget: Label,
    call_depth: Label,
    misaligned: Label,
    packet_miss: Label,
    refill: Label,
}

struct Compiler<'a> {
    a: Asm,
    insns: &'a [Insn],
    /// Targets, loop heads and chains, from the analysis.
    shape: Shape,
    labels: Vec<Label>,
    stubs: Stubs,
    snippets: Vec<Snippet>,
    /// Size of the block being emitted and the index in it of the instruction being emitted.
    block_n: u32,
    block_k: u32,
    /// While a fast loop's copy is emitted: its head (back jumps to it go to `.1`) and the
    /// accesses that its head check covered.
    fast: Option<(usize, Label, Vec<usize>)>,
    /// In the first half of an unrolled fast loop: where its back jump, inverted, leaves.
    unroll_exit: Option<Label>,
    /// A conditional jump followed by the `ja` that ends its chain: the `ja`'s target, which
    /// the inverted jump goes to (see `cond_over_ja`).
    over_ja: Option<Label>,
    /// A conditional jump over a lone `ja`: where its inverted form goes (the `ja`'s label).
    to_lone_ja: Option<Label>,
    /// In the main pass: accesses a group check covers, and where the group's last one ends
    /// (its pc, and the label to bind after its code).
    covered: Vec<usize>,
    group_end: Option<(usize, Label)>,
    /// Draws the keys of blinded constants; `None` when constants are emitted as they are.
    blind: Option<Blinder>,
    /// Coverage counters (`coverage::CoverageCounters::addresses`): chain entries and
    /// conditional jumps' fall-throughs, a u64 per slot each.
    coverage: Option<(u64, u64)>,
    /// By slot: a load or store the verifier proved in bounds (mode verified), emitted as a
    /// direct access with no check; all false in mode checked.
    proved: Vec<bool>,
}

fn ctx(off: i32) -> Mem {
    mem(RSP, off)
}

fn fast_start(region: usize) -> i32 {
    OFF_FAST_START + 8 * region as i32
}

fn fast_bound(region: usize, bi: usize) -> i32 {
    OFF_FAST_BOUND + 64 * region as i32 + 8 * bi as i32
}

/// Compiles `insns`; with `blind`, no immediate of the program appears in the code (see `blind`).
/// `entries` are the callback entries (sorted), where code may be entered besides slot 0.
/// `analysis` is that of `insns` (the rewrites keep every instruction's slots).
pub fn compile(
    insns: &[Insn],
    analysis: &Analysis,
    blind: bool,
    coverage: Option<(u64, u64)>,
    entries: &[usize],
    proved: Option<&[bool]>,
) -> Result<Compiled, String> {
    if analysis.program.slot_count() != insns.len() {
        return Err("the analysis is of another program".into());
    }
    let proved = match proved {
        Some(p) if p.len() != insns.len() => return Err("the proof is of another program".into()),
        Some(p) => p.to_vec(),
        None => vec![false; insns.len()],
    };
    // The bound is checked as code is emitted; the initial reservation is only a guess.
    let mut a = Asm::with_capacity(insns.len() * 64 + MAX_FIXED_BYTES);
    let labels = (0..insns.len()).map(|_| a.new_label()).collect();
    let stubs = Stubs {
        exit: a.new_label(),
        main_exit: a.new_label(),
        epilogue: a.new_label(),
        check: a.new_label(),
        helper: a.new_label(),
        budget: a.new_label(),
        call_depth: a.new_label(),
        misaligned: a.new_label(),
        packet_miss: a.new_label(),
        refill: a.new_label(),
    };
    let mut c = Compiler {
        a,
        insns,
        shape: Shape::of(analysis),
        labels,
        stubs,
        snippets: Vec::new(),
        block_n: 0,
        block_k: 0,
        fast: None,
        unroll_exit: None,
        over_ja: None,
        to_lone_ja: None,
        covered: Vec::new(),
        group_end: None,
        blind: blind.then(Blinder::new),
        coverage,
        proved,
    };
    c.prologue(false);
    let mut offsets = vec![u32::MAX; insns.len()];
    let mut pc = 0;
    while pc < insns.len() {
        let n = c.shape.chains[pc];
        let loop_head = c.shape.loop_heads[pc];
        // Counted loops are chains that jump back to their own head.
        let fast = if n > 0 && loop_head {
            // Its proved accesses are left out of the head check (see `guard`); the copy, unrolled
            // twice and metered once per two iterations, is worth having all the same.
            loops::fast_loop(insns, pc, n)
        } else {
            None
        };
        // A fast loop runs in its aligned copy; here only its head check runs, once per entry.
        if loop_head && fast.is_none() {
            c.a.align(LOOP_ALIGN);
        }
        let start = c.a.pos();
        offsets[pc] = start as u32;
        c.a.bind(c.labels[pc]);
        let mut start = start;
        if n > 0 {
            if let Some((chain_entries, _)) = c.coverage {
                let counted = c.a.pos();
                c.count(chain_entries, pc);
                start += c.a.pos() - counted;
            }
            // A fast loop's head check comes first: its copy meters itself.
            let guarded = fast.map(|fl| {
                let g = c.a.pos();
                let top = c.guard(&fl);
                let accesses = fl.accesses.iter().map(|acc| acc.pc).collect::<Vec<_>>();
                (top, c.a.pos() - g, accesses)
            });
            let slow = c.meter(pc, n);
            c.block_n = n;
            c.block_k = 0;
            if let Some((top, bytes, accesses)) = guarded {
                if bytes > MAX_GUARD_BYTES {
                    return Err(format!("loop check at {pc} over its bound"));
                }
                start += bytes;
                let checked = c.a.new_label();
                c.a.bind(checked);
                c.snippets.push(Snippet::FastLoop {
                    head: pc,
                    n,
                    top,
                    slow,
                    checked,
                    accesses,
                });
            }
        }
        // With coverage, conditional jumps keep their own layout: a fall-through is counted
        // after the jump (see `jump`), which the layouts around a `ja` would move elsewhere.
        let layouts = c.coverage.is_none();
        let fused = pc + 1 < insns.len()
            && c.shape.chains[pc + 1] == 0
            && (c.mov_add(pc) || (layouts && c.cond_over_ja(pc)));
        let lone = !fused && layouts && c.jump_over_ja(pc);
        if fused {
            // The second one is no jump target (it is inside a chain): nothing can start at it.
            offsets[pc + 1] = c.a.pos() as u32;
            c.a.bind(c.labels[pc + 1]);
            c.block_k += 1;
        } else if lone {
            // The `ja` after it went out of line (its label is bound there).
            offsets[pc + 1] = c.a.pos() as u32;
        } else {
            if c.group_end.is_none() {
                c.group(pc);
            }
            c.insn(pc);
            if let Some((last, rejoin)) = c.group_end {
                if last == pc {
                    c.a.bind(rejoin);
                    c.group_end = None;
                    c.covered.clear();
                }
            }
        }
        c.block_k += 1;
        let used = c.a.pos() - start;
        if used > MAX_INSN_BYTES {
            return Err(format!(
                "instruction {pc} needed {used} bytes, over the bound of {MAX_INSN_BYTES}"
            ));
        }
        pc += if is_lddw(&insns[pc]) || fused || lone {
            2
        } else {
            1
        };
    }
    // Second slots of lddw are never jumped to (validation), but bind them so no label dangles.
    for (pc, off) in offsets.iter().enumerate() {
        if *off == u32::MAX {
            let l = c.labels[pc];
            c.a.bind(l);
        }
    }
    let body_end = c.a.pos();
    c.emit_snippets();
    if c.a.pos() - body_end > MAX_SNIPPET_BYTES * insns.len() {
        return Err("out-of-line code over its bound".into());
    }
    c.emit_stubs();
    let function_entry = c.a.pos();
    c.prologue(true);
    let entries = entries
        .iter()
        .map(|&pc| {
            let at =
                c.a.label_pos(c.labels[pc])
                    .ok_or("callback entry without code")?;
            Ok((pc, at as u32))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let code = c.a.finish()?;
    debug_assert!(code.len() <= size_bound(insns.len()));
    Ok(Compiled {
        code,
        offsets,
        body_end,
        function_entry,
        entries,
    })
}

impl Compiler<'_> {
    /// Saves the host registers and sets up the run from the Rust-side context block (in rdi).
    /// The main prologue falls into the code of slot 0; the function prologue (`function`) jumps
    /// to `Ctx::entry` instead.
    fn prologue(&mut self, function: bool) {
        let a = &mut self.a;
        for r in [RBX, RBP, R12, R13, R14, R15] {
            a.push(r);
        }
        a.alu_ri(Alu::Sub, W::B64, RSP, CTX_BYTES);
        // Copy the inputs of the context block from the Rust side (rdi) onto the host stack, a
        // word at a time: Rust has just written them word by word, and wider loads would miss
        // store forwarding (and `rep movsq` costs more to start than this whole copy).
        for k in 0..CTX_IN_WORDS as i32 {
            let r = if k % 2 == 0 { RAX } else { RCX };
            a.load(W::B64, r, mem(RDI, 8 * k));
            a.store(W::B64, mem(RSP, 8 * k), r);
        }
        for (k, r) in REG[1..6].iter().enumerate() {
            a.load(W::B64, *r, ctx(OFF_ARGS + 8 * k as i32));
        }
        a.load(W::B64, REG[10], ctx(OFF_STACK_TOP));
        a.load(W::B64, BUDGET, ctx(OFF_BUDGET));
        a.load(W::B64, DATA_NEG, ctx(OFF_DATA_NEG));
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

    /// Charges a block of `n` instructions; if fewer are left, goes out of line to run exactly as
    /// many as the budget allows.
    fn meter(&mut self, pc: usize, n: u32) -> Label {
        let at = self.a.new_label();
        let resume = self.a.new_label();
        self.a.alu_ri(Alu::Sub, W::B64, BUDGET, n as i32);
        self.a.jcc(Cond::B, at);
        self.a.bind(resume);
        self.snippets.push(Snippet::Budget { at, resume, pc, n });
        at
    }

    /// At the head of a fast loop (before its meter: the copy meters itself): if one check shows
    /// that every covered access of every iteration is in the data region, go to the copy
    /// without their checks; otherwise fall through to the ordinary chain. Clobbers rax and
    /// rcx; reads registers only, so it is invisible to the budget. See `loops`.
    fn guard(&mut self, fl: &FastLoop) -> Label {
        let fail = self.a.new_label();
        let top = self.a.new_label();
        let a = &mut self.a;
        let i = REG[fl.i as usize];
        if let (true, Limit::Imm(v)) = (fl.counts_up, fl.limit) {
            // i0 < n, and then m = n (64-bit: n is the immediate sign-extended).
            match &mut self.blind {
                Some(b) if worth_blinding(v as i64 as u64) => {
                    b.load(a, W::B64, RCX, v);
                    a.alu_rr(Alu::Cmp, W::B64, i, RCX);
                    a.jcc(Cond::Ae, fail);
                }
                _ => {
                    a.alu_ri(Alu::Cmp, W::B64, i, v);
                    a.jcc(Cond::Ae, fail);
                    a.mov_imm64(RCX, v as i64 as u64);
                }
            }
        } else {
            Self::loop_bound(a, self.blind.as_mut(), fl, i, fail);
        }
        // Accesses the verifier proved need no check here, as nowhere else.
        for acc in fl.accesses.iter().filter(|acc| !self.proved[acc.pc]) {
            // Exclusive bound on `addr - start` of one-byte accesses of this direction: the
            // region's length, or 0 when such accesses are not allowed inline.
            let len = ctx(fast_bound(1, bound_index(1, acc.write)));
            // rax = (b + off - start) mod 2^64, the offset of the first access in the region.
            // With no carry below, rax + m - 1 + size <= len holds as integers, so for every
            // i < m the access at offset rax + i (mod 2^64 the address minus start) ends
            // inside the region; rax < len follows (m >= 1), no check of its own needed.
            a.lea(
                RAX,
                mem_idx(REG[acc.b as usize], DATA_NEG, 0, acc.off as i32),
            );
            a.alu_rr(Alu::Add, W::B64, RAX, RCX);
            a.jcc(Cond::B, fail);
            if acc.size > 1 {
                a.alu_ri(Alu::Add, W::B64, RAX, acc.size as i32 - 1);
                a.jcc(Cond::B, fail);
            }
            a.alu_rm(Alu::Cmp, W::B64, RAX, len);
            a.jcc(Cond::A, fail);
        }
        a.jmp(top);
        a.bind(fail);
        top
    }

    /// rcx = m (see `loops`) for the head check, or a jump to `fail` when it cannot be had.
    fn loop_bound(a: &mut Asm, blind: Option<&mut Blinder>, fl: &FastLoop, i: u8, fail: Label) {
        // rax = n as the compare sees it.
        let w = if fl.wide { W::B64 } else { W::B32 };
        match (fl.limit, fl.wide, blind) {
            (Limit::Reg(r), _, _) => a.mov_rr(w, RAX, REG[r as usize]),
            (Limit::Imm(v), _, Some(b)) if worth_blinding(v as i64 as u64) => b.load(a, w, RAX, v),
            (Limit::Imm(v), true, _) => a.mov_imm64(RAX, v as i64 as u64),
            (Limit::Imm(v), false, _) => a.mov_r32_imm(RAX, v as u32),
        }
        if fl.counts_up {
            // i0 < n, and then m = n.
            a.alu_rr(Alu::Cmp, W::B64, i, RAX);
            a.jcc(Cond::Ae, fail);
            a.mov_rr(W::B64, RCX, RAX);
        } else {
            // rcx = m = max(i + 1, n), unsigned; i + 1 must not wrap.
            a.mov_rr(W::B64, RCX, i);
            a.alu_ri(Alu::Add, W::B64, RCX, 1);
            a.jcc(Cond::B, fail);
            a.alu_rr(Alu::Cmp, W::B64, RCX, RAX);
            a.cmov(Cond::B, W::B64, RCX, RAX);
        }
    }

    /// The copy of a fast loop's chain, unrolled twice and metered as one chain of `2n`: the
    /// first half's back jump becomes a jump out when the loop ends (giving back the second
    /// half), the second half's goes back to the top; the covered accesses go unchecked. With
    /// less than `2n` of budget left it runs the ordinary chain instead (checked, or metered
    /// through `slow` when even `n` is not left).
    fn fast_copy(&mut self, head: usize, n: u32, labels: [Label; 3], accesses: Vec<usize>) {
        let [top, slow, checked] = labels;
        let slow2 = self.a.new_label();
        let exit = self.a.new_label();
        self.a.align(LOOP_ALIGN);
        self.a.bind(top);
        self.a.alu_ri(Alu::Sub, W::B64, BUDGET, 2 * n as i32);
        self.a.jcc(Cond::B, slow2);
        self.fast = Some((head, top, accesses));
        self.block_n = 2 * n;
        self.block_k = 0;
        let mut next = head;
        let mut back = head;
        for half in 0..2 {
            if let (1, Some((entries, _))) = (half, self.coverage) {
                // The first half's back jump was taken: the chain is entered again.
                self.count(entries, head);
            }
            let mut pc = head;
            let mut k = 0;
            while k < n {
                let fused = k + 1 < n && self.mov_add(pc);
                if fused {
                    self.block_k += 1;
                    k += 1;
                } else {
                    if half == 0 && k == n - 1 {
                        self.unroll_exit = Some(exit);
                        back = pc;
                    }
                    self.insn(pc);
                    self.unroll_exit = None;
                }
                self.block_k += 1;
                k += 1;
                pc += if is_lddw(&self.insns[pc]) || fused {
                    2
                } else {
                    1
                };
            }
            next = pc;
        }
        self.fast = None;
        // The chain ended with its back jump, not taken: on to the instruction after it.
        let after = self.label(next);
        self.a.jmp(after);
        // The loop ended after the first half: the second half's n were charged, not run.
        self.a.bind(exit);
        if let Some((_, fall)) = self.coverage {
            // The first half's back jump fell through.
            self.count(fall, back);
        }
        self.a.alu_ri(Alu::Add, W::B64, BUDGET, n as i32);
        self.a.jmp(after);
        // Less than 2n left: r12 = rem - 2n. Charge one chain instead (r12 = rem - n) and run
        // it checked, or metered if rem < n.
        self.a.bind(slow2);
        self.a.alu_ri(Alu::Add, W::B64, BUDGET, n as i32);
        self.a.lea(RAX, mem(BUDGET, n as i32));
        self.a.alu_ri(Alu::Cmp, W::B64, RAX, n as i32);
        self.a.jcc(Cond::B, slow);
        self.a.jmp(checked);
    }

    fn label(&self, pc: usize) -> Label {
        self.labels[pc]
    }

    /// Adds one to the coverage counter of `slot` in the array at `base` (no lock: see
    /// `coverage`). Clobbers rax and the flags, which no instruction leaves live for the next.
    fn count(&mut self, base: u64, slot: usize) {
        self.a.mov_imm64(RAX, base + 8 * slot as u64);
        self.a.alu_mi8(Alu::Add, W::B64, mem(RAX, 0), 1);
    }

    fn insn(&mut self, pc: usize) {
        let insn = self.insns[pc];
        let op = insn.opcode;
        match class(op) {
            CLASS_ALU | CLASS_ALU64 => self.alu(&insn),
            CLASS_JMP | CLASS_JMP32 => self.jump(pc, &insn),
            CLASS_LDX => self.load(pc, &insn),
            CLASS_ST | CLASS_STX if op & 0xe0 == MODE_ATOMIC => self.atomic(pc, &insn),
            CLASS_ST | CLASS_STX => self.store(pc, &insn),
            _ if is_lddw(&insn) => {
                let v = lddw_imm(&insn, &self.insns[pc + 1]);
                let d = REG[insn.dst as usize];
                match &mut self.blind {
                    Some(b) if worth_blinding(v) => b.load64(&mut self.a, d, v, RAX),
                    _ => self.a.mov_imm64(d, v),
                }
            }
            _ => self.packet_load(pc, &insn),
        }
    }

    /// If the access at `pc` starts a group (further accesses through the same base register
    /// in the rest of its chain, before anything writes that register or calls out, within
    /// `HULL_SIZES` bytes of each other), checks the span they cover once, against the data
    /// region, and marks them covered; if that check fails, a copy of the group's instructions
    /// with their own checks runs instead (`Snippet::Group`). Accesses that fit in the data
    /// region are exactly those that pass their own inline check there, so this changes no
    /// outcome. Clobbers rcx.
    fn group(&mut self, pc: usize) {
        let Some((base, off, size, write)) = self.checked_access(pc) else {
            return;
        };
        if base == FP {
            return;
        }
        let (mut lo, mut hi) = (off as i64, off as i64 + size as i64);
        let mut any_write = write;
        let mut members = vec![pc];
        let mut p = pc;
        // A bounded look-ahead, so that the scan (and `covered`, searched per access) stays
        // constant per access: a straight line of a million loads through one base is one
        // group per window rather than one scan of the whole chain per load.
        let window = (self.block_n - self.block_k - 1).min(GROUP_WINDOW);
        for _ in 0..window {
            if members.len() == GROUP_MAX_MEMBERS {
                break;
            }
            let prev = &self.insns[p];
            if loops::writes(prev, base) || loops::opaque(prev) {
                break;
            }
            p += if is_lddw(prev) { 2 } else { 1 };
            if let Some((b, o, sz, w)) = self.checked_access(p) {
                let (l, h) = (lo.min(o as i64), hi.max(o as i64 + sz as i64));
                if b == base && h - l <= *HULL_SIZES.last().unwrap() as i64 {
                    (lo, hi) = (l, h);
                    any_write |= w;
                    members.push(p);
                }
            }
        }
        if members.len() < 2 {
            return;
        }
        let span = (hi - lo) as u32;
        let bound = if span <= 8 {
            ctx(fast_bound(1, bound_index(8, any_write)))
        } else {
            let k = HULL_SIZES
                .iter()
                .position(|&h| span <= h)
                .expect("span fits");
            ctx(OFF_HULL_BOUND + 8 * hull_index(k, any_write) as i32)
        };
        let at = self.a.new_label();
        let rejoin = self.a.new_label();
        self.a
            .lea(RCX, mem_idx(REG[base as usize], DATA_NEG, 0, lo as i32));
        self.a.alu_rm(Alu::Cmp, W::B64, RCX, bound);
        self.a.jcc(Cond::Ae, at);
        let last = *members.last().unwrap();
        self.snippets.push(Snippet::Group {
            at,
            first: pc,
            last,
            block_n: self.block_n,
            block_k: self.block_k,
            rejoin,
        });
        self.covered = members;
        self.group_end = Some((last, rejoin));
    }

    /// `if c goto t; ja back` where the `ja` ends the chain (clang's rotated loops end so): as
    /// `if !c goto back`, then the way to t. Returns whether it emitted the pair.
    fn cond_over_ja(&mut self, pc: usize) -> bool {
        let (cond, ja) = (self.insns[pc], self.insns[pc + 1]);
        if !is_cond_jump(&cond) || self.block_k + 2 != self.block_n {
            return false;
        }
        let back = match ja.opcode {
            OP_JA | OP_JA32 => self.shape.target(pc + 1).expect("ja has a target"),
            _ => return false,
        };
        self.over_ja = Some(self.label(back));
        self.insn(pc);
        debug_assert!(self.over_ja.is_none(), "the jump used it");
        true
    }

    /// `if c goto pc + 2` ending its chain, where `pc + 1` is a chain of one `ja` and no loop
    /// head: emits `if !c goto <the ja>` and puts the `ja` chain out of line, so that the jump
    /// over it (a loop going on, as clang lays loops out) costs no taken branch. Returns whether
    /// it did (the caller then skips `pc + 1`).
    fn jump_over_ja(&mut self, pc: usize) -> bool {
        let insn = self.insns[pc];
        let next = pc + 1;
        if !is_cond_jump(&insn)
            || self.block_k + 1 != self.block_n
            || next >= self.insns.len()
            || self.shape.chains[next] != 1
            || self.shape.loop_heads[next]
            || !matches!(self.insns[next].opcode, OP_JA | OP_JA32)
            || self.shape.target(pc) != Some(pc + 2)
        {
            return false;
        }
        let l = self.label(next);
        self.to_lone_ja = Some(l);
        self.insn(pc);
        debug_assert!(self.to_lone_ja.is_none(), "the jump used it");
        self.snippets.push(Snippet::LoneJa { pc: next });
        true
    }

    /// `dst = src; dst += x` (x a register or an immediate, both 64-bit or both 32-bit) as one
    /// `lea`, when the instruction after `pc` is that add. Returns whether it emitted the pair.
    fn mov_add(&mut self, pc: usize) -> bool {
        let (mv, add) = (self.insns[pc], self.insns[pc + 1]);
        let cls = class(mv.opcode);
        if !matches!(cls, CLASS_ALU | CLASS_ALU64)
            || mv.opcode != cls | ALU_MOV | SRC_X
            || mv.off != 0
            || add.opcode & !SRC_X != cls | ALU_ADD
            || add.dst != mv.dst
        {
            return false;
        }
        if add.opcode & SRC_X == 0 && self.blind.is_some() && worth_blinding(add.imm as i64 as u64)
        {
            // The lea would carry the add's immediate as its displacement.
            return false;
        }
        let d = REG[mv.dst as usize];
        let y = REG[mv.src as usize];
        let m = if add.opcode & SRC_X != 0 {
            // After the mov, dst holds src: `dst += dst` adds src.
            let z = if add.src == mv.dst {
                y
            } else {
                REG[add.src as usize]
            };
            mem_idx(y, z, 0, 0)
        } else {
            mem(y, add.imm)
        };
        if cls == CLASS_ALU64 {
            self.a.lea(d, m);
        } else {
            self.a.lea32(d, m);
        }
        true
    }

    fn alu(&mut self, insn: &Insn) {
        let op = insn.opcode;
        let wide = class(op) == CLASS_ALU64;
        let w = if wide { W::B64 } else { W::B32 };
        let d = REG[insn.dst as usize];
        let x = op & SRC_X != 0;
        // Validation guarantees src <= 10 for register forms and 0 for immediate forms.
        let s = REG[insn.src as usize];
        let imm = insn.imm;
        let (a, blind) = (&mut self.a, &mut self.blind);
        let simple = match op & 0xf0 {
            ALU_ADD => Some(Alu::Add),
            ALU_SUB => Some(Alu::Sub),
            ALU_OR => Some(Alu::Or),
            ALU_AND => Some(Alu::And),
            ALU_XOR => Some(Alu::Xor),
            _ => None,
        };
        if let Some(o) = simple {
            if x {
                a.alu_rr(o, w, d, s);
            } else if blinded(a, blind, w, RAX, imm) {
                a.alu_rr(o, w, d, RAX);
            } else {
                a.alu_ri(o, w, d, imm);
            }
            return;
        }
        match op & 0xf0 {
            ALU_MUL => {
                if x {
                    a.imul_rr(w, d, s);
                } else if blinded(a, blind, w, RAX, imm) {
                    a.imul_rr(w, d, RAX);
                } else {
                    a.imul_rri(w, d, d, imm);
                }
            }
            ALU_DIV | ALU_MOD => self.divide(insn, w, d, s),
            ALU_LSH | ALU_RSH | ALU_ARSH => {
                let sh = match op & 0xf0 {
                    ALU_LSH => Shift::Shl,
                    ALU_RSH => Shift::Shr,
                    _ => Shift::Sar,
                };
                if x {
                    // The hardware masks cl by 63 (or 31) exactly as RFC 9669 asks.
                    a.mov_rr(W::B64, RCX, s);
                    a.shift_cl(sh, w, d);
                    if !wide {
                        // A zero count leaves the register unwritten on some CPUs: zero-extend.
                        a.mov_rr(W::B32, d, d);
                    }
                } else {
                    let n = imm as u32 & if wide { 63 } else { 31 };
                    if n != 0 && blinded(a, blind, W::B32, RCX, n as i32) {
                        a.shift_cl(sh, w, d);
                    } else if n != 0 {
                        a.shift_ri(sh, w, d, n as u8);
                    } else if !wide {
                        a.mov_rr(W::B32, d, d);
                    }
                }
            }
            ALU_NEG => a.neg(w, d),
            ALU_MOV => {
                if !x {
                    if imm == 0 {
                        // No flags live across eBPF instructions: the short zeroing idiom.
                        a.alu_rr(Alu::Xor, W::B32, d, d);
                    } else if blinded(a, blind, w, d, imm) {
                        // Loaded straight into the destination.
                    } else if wide {
                        a.mov_imm64(d, imm as i64 as u64);
                    } else {
                        a.mov_r32_imm(d, imm as u32);
                    }
                } else {
                    match insn.off {
                        8 => a.movsx_rr(w, d, s, 1),
                        16 => a.movsx_rr(w, d, s, 2),
                        32 => a.movsx_rr(W::B64, d, s, 4),
                        _ => a.mov_rr(w, d, s),
                    }
                }
            }
            _ => {
                // ALU_END: le (ALU|K) truncates; be (ALU|X) and bswap (ALU64) also swap.
                let swap = op == CLASS_ALU | ALU_END | SRC_X || op == CLASS_ALU64 | ALU_END;
                match (imm, swap) {
                    (16, false) => a.movzx16_rr(d, d),
                    (32, false) => a.mov_rr(W::B32, d, d),
                    (16, true) => {
                        a.shift_ri(Shift::Rol, W::B16, d, 8);
                        a.movzx16_rr(d, d);
                    }
                    (32, true) => a.bswap(W::B32, d),
                    (_, true) => a.bswap(W::B64, d),
                    _ => {}
                }
            }
        }
    }

    /// Division and modulo with RFC 9669's total semantics: x/0 = 0, x%0 = x, and for the signed
    /// forms x/-1 = -x and x%-1 = 0 (where `idiv` would fault on INT_MIN / -1).
    fn divide(&mut self, insn: &Insn, w: W, d: u8, s: u8) {
        let op = insn.opcode;
        let is_mod = op & 0xf0 == ALU_MOD;
        let signed = insn.off == 1;
        let wide = w == W::B64;
        let (a, blind) = (&mut self.a, &mut self.blind);
        let zero = a.new_label();
        let minus_one = a.new_label();
        let done = a.new_label();
        // The divisor goes to rcx: from the register, or the immediate as the interpreter sees it.
        if op & SRC_X != 0 {
            a.mov_rr(w, RCX, s);
            a.test_rr(w, RCX, RCX);
            a.jcc(Cond::E, zero);
            if signed {
                a.alu_ri(Alu::Cmp, w, RCX, -1);
                a.jcc(Cond::E, minus_one);
            }
        } else if insn.imm == 0 {
            a.jmp(zero);
        } else if signed && insn.imm == -1 {
            a.jmp(minus_one);
        } else if blinded(a, blind, w, RCX, insn.imm) {
            // The divisor, rebuilt in rcx.
        } else if wide {
            a.mov_r64_simm(RCX, insn.imm);
        } else {
            a.mov_r32_imm(RCX, insn.imm as u32);
        }
        a.mov_rr(w, RAX, d);
        if signed {
            a.sign_extend_ax(w);
            a.idiv(w, RCX);
        } else {
            a.alu_rr(Alu::Xor, W::B32, RDX, RDX);
            a.div(w, RCX);
        }
        a.mov_rr(w, d, if is_mod { RDX } else { RAX });
        a.load(W::B64, DATA_NEG, ctx(OFF_DATA_NEG));
        a.jmp(done);
        a.bind(minus_one);
        if is_mod {
            a.alu_rr(Alu::Xor, W::B32, d, d);
        } else {
            a.neg(w, d);
        }
        a.jmp(done);
        a.bind(zero);
        if !is_mod {
            a.alu_rr(Alu::Xor, W::B32, d, d);
        } else if !wide {
            a.mov_rr(W::B32, d, d);
        }
        a.bind(done);
    }

    fn jump(&mut self, pc: usize, insn: &Insn) {
        let op = insn.opcode;
        let wide = class(op) == CLASS_JMP;
        let w = if wide { W::B64 } else { W::B32 };
        let x = op & SRC_X != 0;
        match op & 0xf0 {
            JMP_JA => {
                let t = self.shape.target(pc).expect("ja has a target");
                let l = self.label(t);
                self.a.jmp(l);
            }
            JMP_EXIT => {
                // The exit record names the instruction the run leaves by (`RunOutput::exit_pc`).
                self.a.mov_r32_imm(RCX, pc as u32);
                let l = self.stubs.exit;
                self.a.jmp(l);
            }
            JMP_CALL if x => {
                self.a.mov_rr(W::B64, RAX, REG[insn.dst as usize]);
                self.call_helper(pc);
            }
            JMP_CALL if insn.src == CALL_LOCAL => self.local_call(pc),
            JMP_CALL => {
                if !blinded(&mut self.a, &mut self.blind, W::B32, RAX, insn.imm) {
                    self.a.mov_r32_imm(RAX, insn.imm as u32);
                }
                self.call_helper(pc);
            }
            cond => {
                let d = REG[insn.dst as usize];
                if x {
                    let s = REG[insn.src as usize];
                    if cond == JMP_JSET {
                        self.a.test_rr(w, d, s);
                    } else {
                        self.a.alu_rr(Alu::Cmp, w, d, s);
                    }
                } else if insn.imm == 0 && cond != JMP_JSET {
                    // Same flags as `cmp d, 0` for every condition (CF = OF = 0).
                    self.a.test_rr(w, d, d);
                } else if blinded(&mut self.a, &mut self.blind, w, RAX, insn.imm) {
                    if cond == JMP_JSET {
                        self.a.test_rr(w, d, RAX);
                    } else {
                        self.a.alu_rr(Alu::Cmp, w, d, RAX);
                    }
                } else if cond == JMP_JSET {
                    self.a.test_ri(w, d, insn.imm);
                } else {
                    self.a.alu_ri(Alu::Cmp, w, d, insn.imm);
                }
                let cc = match cond {
                    JMP_JEQ => Cond::E,
                    JMP_JNE | JMP_JSET => Cond::Ne,
                    JMP_JGT => Cond::A,
                    JMP_JGE => Cond::Ae,
                    JMP_JLT => Cond::B,
                    JMP_JLE => Cond::Be,
                    JMP_JSGT => Cond::G,
                    JMP_JSGE => Cond::Ge,
                    JMP_JSLT => Cond::L,
                    _ => Cond::Le,
                };
                let t = self
                    .shape
                    .target(pc)
                    .expect("conditional jump has a target");
                if let Some(exit) = self.unroll_exit {
                    // The first half of an unrolled fast loop: leave when the loop ends.
                    self.a.jcc(invert(cc), exit);
                    return;
                }
                if let Some(ja) = self.to_lone_ja.take() {
                    // Ends its chain: nothing to give back either way.
                    debug_assert_eq!(self.adj(), 0);
                    self.a.jcc(invert(cc), ja);
                    return;
                }
                if let Some(back) = self.over_ja.take() {
                    // `if c goto t; ja back` ending a chain: one jump on the path through the
                    // `ja` (both charged, adj 0 there); the jump to t gives back the `ja`.
                    let adj = self.adj();
                    self.a.jcc(invert(cc), back);
                    self.a.alu_ri(Alu::Add, W::B64, BUDGET, adj as i32);
                    let target = self.label(t);
                    self.a.jmp(target);
                    return;
                }
                // Only the chain's own back jump (its last instruction) stays in a fast loop's
                // copy: any other way to the head must pass the head's check again.
                let back_in_copy =
                    matches!(&self.fast, Some((head, _, _)) if *head == t && self.adj() == 0);
                let target = match &self.fast {
                    Some((_, top, _)) if back_in_copy => *top,
                    _ => self.label(t),
                };
                let adj = self.adj();
                if let (true, Some((entries, _))) = (back_in_copy, self.coverage) {
                    // Another iteration of a fast loop's copy: an entry of its chain that the
                    // head's counter (in the ordinary code) does not see. (Counted per
                    // iteration: a count taken ahead for two would be wrong when the second
                    // leaves early, by a jump out of the chain or a trap.)
                    let skip = self.a.new_label();
                    self.a.jcc(invert(cc), skip);
                    self.count(entries, t);
                    self.a.jmp(target);
                    self.a.bind(skip);
                } else if adj == 0 {
                    self.a.jcc(cc, target);
                } else {
                    let at = self.a.new_label();
                    self.a.jcc(cc, at);
                    self.snippets.push(Snippet::Refund { at, adj, target });
                }
                if let Some((_, fall)) = self.coverage {
                    // Only the way that falls through gets here.
                    self.count(fall, pc);
                }
            }
        }
    }

    /// rax = helper id; the stub passes r1-r5 to `interpreter::call_helper` and sets r0, and r12
    /// to what the helper left of the budget. A helper call ends its chain (`ends_block`), so no
    /// instruction after it was charged in advance.
    fn call_helper(&mut self, pc: usize) {
        debug_assert_eq!(self.adj(), 0, "a helper call ends its chain");
        self.a.mov_r32_imm(RDX, pc as u32);
        let l = self.stubs.helper;
        self.a.call(l);
        // The helper may have moved the regions: the stub's call refreshed the context.
        self.a.load(W::B64, DATA_NEG, ctx(OFF_DATA_NEG));
    }

    /// Instructions of the current block after the one being emitted. The block was charged in
    /// full on entry, so at this instruction `r12 + adj` is the budget left after it: what the
    /// stubs must see to count the instructions executed before it.
    fn adj(&self) -> u32 {
        self.block_n - 1 - self.block_k
    }

    /// Raises r12 by `adj` for a stub that counts instructions and leaves the run.
    fn leave_with_count(&mut self, adj: u32) {
        if adj > 0 {
            self.a.alu_ri(Alu::Add, W::B64, BUDGET, adj as i32);
        }
    }

    /// Emits `f` with r12 raised by `adj` around it (for stubs that count instructions).
    fn with_count(&mut self, adj: u32, f: impl FnOnce(&mut Asm)) {
        if adj > 0 {
            self.a.alu_ri(Alu::Add, W::B64, BUDGET, adj as i32);
        }
        f(&mut self.a);
        if adj > 0 {
            self.a.alu_ri(Alu::Sub, W::B64, BUDGET, adj as i32);
        }
    }

    /// A bpf-to-bpf call: saves r6-r10 and the return address in the next frame slot of the
    /// context, moves r10 down one frame and jumps. `exit` in the callee comes back through the
    /// exit stub. Host `call`/`ret` are not used so that rsp stays fixed and the context stays at
    /// a constant offset from it.
    fn local_call(&mut self, pc: usize) {
        let target = self.shape.target(pc).expect("local call has a target");
        let over = self.a.new_label();
        self.snippets.push(Snippet::CallDepth { at: over, pc });
        let ret = self.label(pc + 1);
        let tl = self.label(target);
        let a = &mut self.a;
        a.load(W::B64, RAX, ctx(OFF_DEPTH));
        a.alu_ri(Alu::Cmp, W::B64, RAX, MAX_CALL_FRAMES as i32 - 1);
        a.jcc(Cond::Ae, over);
        a.lea(RCX, mem(RAX, 1));
        a.store(W::B64, ctx(OFF_DEPTH), RCX);
        frame_slot(a);
        for (k, r) in REG[6..11].iter().enumerate() {
            a.store(W::B64, mem_idx(RSP, RAX, 0, OFF_FRAMES + 8 * k as i32), *r);
        }
        a.lea_label(RCX, ret);
        a.store(W::B64, mem_idx(RSP, RAX, 0, OFF_FRAMES + 40), RCX);
        a.alu_ri(Alu::Sub, W::B64, REG[10], STACK_FRAME_SIZE as i32);
        a.jmp(tl);
    }

    /// Checks the access at `m` (the address `base + off`): inline against one fast region,
    /// out of line against the other and then through the stub, which walks the whole region
    /// table and traps on failure. Clobbers rax, rcx and rdx.
    ///
    /// The two fast regions may be tried in either order: a load is allowed by any region that
    /// contains it, and `runtime::bounds` gives region 1 no store bound when region 0 is
    /// read-only, so a store accepted inline is one the first containing region accepts. Accesses
    /// through r10 try the stack (region 0) first, all others the data (region 1).
    fn check(&mut self, pc: usize, base: u8, m: Mem, size: u32, write: bool) {
        let bi = bound_index(size, write);
        let (first, second) = if base == FP { (0, 1) } else { (1, 0) };
        let slow = self.a.new_label();
        let ok = self.a.new_label();
        if first == 1 {
            // addr - start in one lea: rdx holds -start.
            self.a.lea(RCX, mem_idx(m.base, DATA_NEG, 0, m.disp));
        } else {
            self.a.lea(RCX, m);
            self.a.alu_rm(Alu::Sub, W::B64, RCX, ctx(fast_start(first)));
        }
        self.a
            .alu_rm(Alu::Cmp, W::B64, RCX, ctx(fast_bound(first, bi)));
        self.a.jcc(Cond::Ae, slow);
        self.a.bind(ok);
        self.snippets.push(Snippet::Check {
            at: slow,
            back: ok,
            m,
            region: second,
            bi,
            info: access_info(pc, size, write),
            adj: self.adj(),
        });
    }

    /// A load or store at `pc` that carries a check (`checked_access`, and not proved).
    fn checked_access(&self, pc: usize) -> Option<(u8, i16, u32, bool)> {
        checked_access(&self.insns[pc]).filter(|_| !self.proved[pc])
    }

    /// The memory operand of a load/store at `base + off`, checked unless frame-local or
    /// proved in bounds by the verifier.
    fn operand(&mut self, pc: usize, base: u8, off: i16, size: u32, write: bool) -> Mem {
        if frame_local(base, off, size) {
            return mem(REG[10], off as i32);
        }
        if self.proved[pc] {
            return mem(REG[base as usize], off as i32);
        }
        let m = mem(REG[base as usize], off as i32);
        let covered = matches!(&self.fast, Some((_, _, acc)) if acc.contains(&pc))
            || self.covered.contains(&pc);
        if !covered {
            self.check(pc, base, m, size, write);
        }
        m
    }

    fn load(&mut self, pc: usize, insn: &Insn) {
        let size = access_size(insn.opcode);
        let m = self.operand(pc, insn.src, insn.off, size, false);
        let d = REG[insn.dst as usize];
        if insn.opcode & 0xe0 == MODE_MEMSX {
            self.a.load_sx(size, d, m);
        } else {
            self.a.load_zx(size, d, m);
        }
    }

    fn store(&mut self, pc: usize, insn: &Insn) {
        let size = access_size(insn.opcode);
        let m = self.operand(pc, insn.dst, insn.off, size, true);
        let w = W::of_size(size);
        if class(insn.opcode) == CLASS_ST {
            if blinded(&mut self.a, &mut self.blind, w, RAX, insn.imm) {
                self.a.store(w, m, RAX);
            } else {
                self.a.store_imm(w, m, insn.imm);
            }
        } else {
            self.a.store(w, m, REG[insn.src as usize]);
        }
    }

    fn atomic(&mut self, pc: usize, insn: &Insn) {
        self.atomic_op(pc, insn);
        // The compare-exchange forms hold the address in rdx.
        self.a.load(W::B64, DATA_NEG, ctx(OFF_DATA_NEG));
    }

    fn atomic_op(&mut self, pc: usize, insn: &Insn) {
        let size = access_size(insn.opcode);
        let w = W::of_size(size);
        let s = REG[insn.src as usize];
        let m = mem(REG[insn.dst as usize], insn.off as i32);
        self.check(pc, insn.dst, m, size, true);
        self.a.lea(RAX, m);
        let at = self.a.new_label();
        self.snippets.push(Snippet::Misaligned {
            at,
            info: access_info(pc, size, true),
            adj: self.adj(),
        });
        let a = &mut self.a;
        a.test_al(size as u8 - 1);
        a.jcc(Cond::Ne, at);
        let m = mem(RAX, 0);
        let fetch = insn.imm & ATOMIC_FETCH != 0;
        match insn.imm {
            ATOMIC_XCHG => {
                a.mov_rr(W::B64, RCX, s);
                a.xchg(w, m, RCX);
                a.mov_rr(W::B64, s, RCX);
            }
            ATOMIC_CMPXCHG => {
                a.mov_rr(W::B64, RDX, RAX);
                a.mov_rr(w, RAX, REG[0]);
                a.lock_cmpxchg(w, mem(RDX, 0), s);
                a.mov_rr(w, REG[0], RAX);
            }
            op => {
                let alu = match op & !ATOMIC_FETCH {
                    ATOMIC_ADD => Alu::Add,
                    ATOMIC_OR => Alu::Or,
                    ATOMIC_AND => Alu::And,
                    _ => Alu::Xor,
                };
                if !fetch {
                    a.lock_alu_mr(alu, w, m, s);
                } else if alu == Alu::Add {
                    a.mov_rr(W::B64, RCX, s);
                    a.lock_xadd(w, m, RCX);
                    a.mov_rr(W::B64, s, RCX);
                } else {
                    // No fetch-or/and/xor instruction exists: a compare-exchange loop.
                    let again = a.new_label();
                    a.mov_rr(W::B64, RDX, RAX);
                    a.load(w, RAX, mem(RDX, 0));
                    a.bind(again);
                    a.mov_rr(w, RCX, RAX);
                    a.alu_rr(alu, w, RCX, s);
                    a.lock_cmpxchg(w, mem(RDX, 0), RCX);
                    a.jcc(Cond::Ne, again);
                    a.mov_rr(w, s, RAX);
                }
            }
        }
    }

    /// Legacy `LD_ABS`/`LD_IND`: a big-endian load from the packet into r0; outside the packet
    /// the program ends with r0 = 0.
    fn packet_load(&mut self, pc: usize, insn: &Insn) {
        let size = access_size(insn.opcode);
        let miss = self.a.new_label();
        self.snippets.push(Snippet::PacketMiss {
            at: miss,
            adj: self.adj(),
            pc,
        });
        let a = &mut self.a;
        if !blinded(a, &mut self.blind, W::B64, RAX, insn.imm) {
            a.mov_r64_simm(RAX, insn.imm);
        }
        if insn.opcode & 0xe0 == MODE_IND {
            a.movsx_rr(W::B64, RCX, REG[insn.src as usize], 4);
            a.alu_rr(Alu::Add, W::B64, RAX, RCX);
        }
        a.test_rr(W::B64, RAX, RAX);
        a.jcc(Cond::S, miss);
        a.lea(RCX, mem(RAX, size as i32));
        a.alu_rm(Alu::Cmp, W::B64, RCX, ctx(OFF_PACKET_LEN));
        a.jcc(Cond::A, miss);
        a.alu_rm(Alu::Add, W::B64, RAX, ctx(OFF_PACKET_START));
        a.load_zx(size, RAX, mem(RAX, 0));
        match size {
            2 => a.shift_ri(Shift::Rol, W::B16, RAX, 8),
            4 => a.bswap(W::B32, RAX),
            _ => {}
        }
        a.mov_rr(W::B64, REG[0], RAX);
    }

    /// Emits the out-of-line snippets, including those that the metered copies of blocks add.
    fn emit_snippets(&mut self) {
        while !self.snippets.is_empty() {
            for s in std::mem::take(&mut self.snippets) {
                self.snippet(s);
            }
        }
    }

    fn snippet(&mut self, s: Snippet) {
        match s {
            Snippet::Budget { at, resume, pc, n } => {
                self.a.bind(at);
                // r12 = rem - n (wrapped): back to rem, and ask for the next slice.
                self.a.alu_ri(Alu::Add, W::B64, BUDGET, n as i32);
                self.a.mov_r32_imm(RAX, pc as u32);
                self.a.mov_r32_imm(RDX, n);
                let l = self.stubs.refill;
                self.a.call(l);
                self.a.alu_ri(Alu::Sub, W::B64, BUDGET, n as i32);
                self.a.jcc(Cond::Ae, resume);
                self.metered_copy(pc, n);
                // Budget exhausted at the instruction `rem` places into the block (r12 + n).
                self.a.alu_ri(Alu::Add, W::B64, BUDGET, n as i32);
                self.a.mov_r32_imm(RAX, pc as u32);
                let l = self.stubs.budget;
                self.a.jmp(l);
            }
            Snippet::FastLoop {
                head,
                n,
                top,
                slow,
                checked,
                accesses,
            } => self.fast_copy(head, n, [top, slow, checked], accesses),
            Snippet::Group {
                at,
                first,
                last,
                block_n,
                block_k,
                rejoin,
            } => {
                self.a.bind(at);
                self.block_n = block_n;
                self.block_k = block_k;
                let mut pc = first;
                loop {
                    self.insn(pc);
                    self.block_k += 1;
                    if pc == last {
                        break;
                    }
                    pc += if is_lddw(&self.insns[pc]) { 2 } else { 1 };
                }
                self.a.jmp(rejoin);
            }
            Snippet::LoneJa { pc } => {
                let l = self.label(pc);
                self.a.bind(l);
                self.meter(pc, 1);
                self.block_n = 1;
                self.block_k = 0;
                self.insn(pc);
            }
            Snippet::Refund { at, adj, target } => {
                self.a.bind(at);
                self.a.alu_ri(Alu::Add, W::B64, BUDGET, adj as i32);
                self.a.jmp(target);
            }
            Snippet::CallDepth { at, pc } => {
                self.a.bind(at);
                self.a.mov_r32_imm(RAX, pc as u32);
                let l = self.stubs.call_depth;
                self.a.jmp(l);
            }
            Snippet::Check {
                at,
                back,
                m,
                region,
                bi,
                info,
                adj,
            } => {
                self.a.bind(at);
                self.a.lea(RCX, m);
                self.a
                    .alu_rm(Alu::Sub, W::B64, RCX, ctx(fast_start(region)));
                self.a
                    .alu_rm(Alu::Cmp, W::B64, RCX, ctx(fast_bound(region, bi)));
                self.a.jcc(Cond::B, back);
                self.a.lea(RAX, m);
                self.a.mov_r32_imm(RDX, info);
                let stub = self.stubs.check;
                self.with_count(adj, |a| a.call(stub));
                self.a.load(W::B64, DATA_NEG, ctx(OFF_DATA_NEG));
                self.a.jmp(back);
            }
            Snippet::Misaligned { at, info, adj } => {
                self.a.bind(at);
                self.leave_with_count(adj);
                self.a.mov_r32_imm(RDX, info);
                let l = self.stubs.misaligned;
                self.a.jmp(l);
            }
            Snippet::PacketMiss { at, adj, pc } => {
                self.a.bind(at);
                self.leave_with_count(adj);
                self.a.mov_r32_imm(RCX, pc as u32);
                let l = self.stubs.packet_miss;
                self.a.jmp(l);
            }
        }
    }

    /// The block at `pc` of `n` instructions, for a run whose budget ends inside it: r12 is
    /// `rem - n` (wrapped), `rem < n`. The interpreter would execute the first `rem` instructions
    /// and trap before the next; so each observable instruction `k` runs only if `k < rem`, and
    /// the others (register arithmetic, frame-local stack traffic: invisible once the run traps)
    /// may run regardless. Falls through to the budget trap; the block's last instruction (its
    /// jump, call or exit, if it has one) is never reached, as `rem <= n - 1`.
    fn metered_copy(&mut self, start: usize, n: u32) {
        let mut pcs = Vec::with_capacity(n as usize);
        let mut pc = start;
        for _ in 0..n {
            pcs.push(pc);
            pc += if is_lddw(&self.insns[pc]) { 2 } else { 1 };
        }
        if !pcs[..n as usize - 1]
            .iter()
            .any(|&pc| observable(&self.insns[pc]))
        {
            return;
        }
        let out = self.a.new_label();
        self.block_n = n;
        for (k, &pc) in pcs[..n as usize - 1].iter().enumerate() {
            if observable(&self.insns[pc]) {
                // if rem <= k: stop here.
                self.a.lea(RAX, mem(BUDGET, n as i32));
                self.a.alu_ri(Alu::Cmp, W::B64, RAX, k as i32);
                self.a.jcc(Cond::Be, out);
            }
            self.block_k = k as u32;
            self.insn(pc);
        }
        self.a.bind(out);
    }

    fn emit_stubs(&mut self) {
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
        a.bind(st.main_exit);
        a.store(W::B64, ctx(OFF_R0), REG[0]);
        a.store(W::B64, ctx(OFF_EXIT_A), RCX);
        exit_with(a, EXIT_NORMAL, st.epilogue);

        // Traps whose details are in rax (and rdx); the budget left is in r12.
        a.bind(st.budget);
        a.store(W::B64, ctx(OFF_EXIT_A), RAX);
        exit_with(a, EXIT_BUDGET, st.epilogue);
        a.bind(st.call_depth);
        a.store(W::B64, ctx(OFF_EXIT_A), RAX);
        exit_with(a, EXIT_CALL_DEPTH, st.epilogue);
        a.bind(st.misaligned);
        a.store(W::B64, ctx(OFF_EXIT_A), RAX);
        a.store(W::B64, ctx(OFF_EXIT_B), RDX);
        exit_with(a, EXIT_MISALIGNED, st.epilogue);

        // Slow memory check (entered by call; rax = address, edx = access info). Saves the
        // caller-saved eBPF registers and rax, calls `runtime::check_entry`.
        a.bind(st.check);
        save_and_call(a, runtime::check_entry as *const () as u64);
        a.test_rr(W::B64, RAX, RAX);
        for r in [REG[5], REG[4], REG[3], REG[2], REG[1], REG[0]] {
            a.pop(r);
        }
        let check_failed = a.new_label();
        a.jcc(Cond::Ne, check_failed);
        a.pop(RAX);
        a.ret();
        a.bind(check_failed);
        a.lea(RSP, mem(RSP, 16));
        a.jmp(st.epilogue);

        // Helper call (entered by call; rax = helper id, edx = pc). r1-r5 are pushed so that
        // they form the argument array, and popped back: helper calls preserve them.
        a.bind(st.helper);
        for r in [REG[5], REG[4], REG[3], REG[2], REG[1]] {
            a.push(r);
        }
        // rsp is now 48 bytes below the body's rsp, 16-byte aligned.
        a.mov_rr(W::B64, RSI, RAX);
        a.mov_rr(W::B64, RCX, BUDGET);
        a.mov_rr(W::B64, R8, RSP);
        a.lea(RDI, mem(RSP, 48));
        a.mov_imm64(RAX, runtime::helper_entry as *const () as u64);
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
        a.jmp(st.epilogue);

        // Next slice of the budget (entered by call; eax = pc of the block, edx = its length,
        // r12 = the budget in hand). Saves the caller-saved eBPF registers, calls
        // `runtime::refill_entry`, which checks the run's limits and returns the new budget in
        // hand; sets r12 to it, or leaves through the epilogue with the trap recorded.
        a.bind(st.refill);
        save_and_call(a, runtime::refill_entry as *const () as u64);
        for r in [REG[5], REG[4], REG[3], REG[2], REG[1], REG[0], RCX] {
            a.pop(r);
        }
        let refill_failed = a.new_label();
        a.test_rr(W::B64, RDX, RDX);
        a.jcc(Cond::Ne, refill_failed);
        a.mov_rr(W::B64, BUDGET, RAX);
        a.load(W::B64, DATA_NEG, ctx(OFF_DATA_NEG + 8));
        a.ret();
        a.bind(refill_failed);
        a.lea(RSP, mem(RSP, 8));
        a.jmp(st.epilogue);

        // Epilogue: copy the results to the Rust side, restore the host registers.
        a.bind(st.epilogue);
        a.load(W::B64, RDI, ctx(OFF_SELF));
        for off in [OFF_R0, OFF_REM, OFF_EXIT_KIND, OFF_EXIT_A, OFF_EXIT_B] {
            a.load(W::B64, RAX, ctx(off));
            a.store(W::B64, mem(RDI, off), RAX);
        }
        a.alu_ri(Alu::Add, W::B64, RSP, CTX_BYTES);
        for r in [R15, R14, R13, R12, RBP, RBX] {
            a.pop(r);
        }
        a.ret();
        a.int3();
    }
}

/// With blinding, for a constant worth it, `reg = imm` as a `w`-wide instruction sees its
/// immediate, loaded without the constant in the code (see `blind`), and true; otherwise nothing,
/// and false: the caller then uses the instruction's immediate form.
fn blinded(a: &mut Asm, blind: &mut Option<Blinder>, w: W, reg: u8, imm: i32) -> bool {
    match blind {
        Some(b) if worth_blinding(imm as i64 as u64) => {
            b.load(a, w, reg, imm);
            true
        }
        _ => false,
    }
}

/// The opposite condition (of those eBPF jumps use).
fn invert(c: Cond) -> Cond {
    match c {
        Cond::B => Cond::Ae,
        Cond::Ae => Cond::B,
        Cond::E => Cond::Ne,
        Cond::Ne => Cond::E,
        Cond::Be => Cond::A,
        Cond::A => Cond::Be,
        Cond::L => Cond::Ge,
        Cond::Ge => Cond::L,
        Cond::Le => Cond::G,
        Cond::G => Cond::Le,
        Cond::S => unreachable!("no eBPF jump tests the sign flag"),
    }
}

/// Base register, offset, size and direction of a plain load or store (not atomic, not legacy
/// packet access) that carries a check: not frame-local.
fn checked_access(insn: &Insn) -> Option<(u8, i16, u32, bool)> {
    let op = insn.opcode;
    let mode = op & 0xe0;
    let (base, write) = match class(op) {
        CLASS_LDX if mode == MODE_MEM || mode == MODE_MEMSX => (insn.src, false),
        CLASS_ST | CLASS_STX if mode == MODE_MEM => (insn.dst, true),
        _ => return None,
    };
    let size = access_size(op);
    (!frame_local(base, insn.off, size)).then_some((base, insn.off, size, write))
}

/// In a stub entered by `call`: pushes rax and the caller-saved eBPF registers r0-r5 (rsp ends
/// 64 bytes below the body's, 16-byte aligned) and calls `f(ctx, rax, rdx, r12)` (SysV: rdi,
/// rsi, rdx, rcx), whose result is in rax:rdx. The stub pops them back.
fn save_and_call(a: &mut Asm, f: u64) {
    for r in [RAX, REG[0], REG[1], REG[2], REG[3], REG[4], REG[5]] {
        a.push(r);
    }
    a.mov_rr(W::B64, RSI, RAX);
    a.mov_rr(W::B64, RCX, BUDGET);
    a.lea(RDI, mem(RSP, 64));
    a.mov_imm64(RAX, f);
    a.call_r(RAX);
}

/// rax = depth -> rax = byte offset of that frame slot (depth * 48).
fn frame_slot(a: &mut Asm) {
    a.lea(RAX, mem_idx(RAX, RAX, 1, 0));
    a.shift_ri(Shift::Shl, W::B64, RAX, 4);
}

fn exit_with(a: &mut Asm, kind: u64, epilogue: Label) {
    a.store(W::B64, ctx(OFF_REM), BUDGET);
    a.store_imm(W::B64, ctx(OFF_EXIT_KIND), kind as i32);
    a.jmp(epilogue);
}
