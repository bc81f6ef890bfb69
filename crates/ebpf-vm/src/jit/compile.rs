//! Translation of validated eBPF into x86-64 machine code: one pass over the instructions in
//! their order, then the out-of-line snippets and the shared stubs. The layout, register assignment and budget scheme are described in `jit/mod.rs`.
//!
//! This file is the driver (the main pass, the state it carries, the dispatch by instruction
//! class); each job has its own file below it:
//! - `shape`: what the JIT reads of the analysis (targets, loop heads, blocks, chains);
//! - `alu`: register arithmetic;
//! - `select`: the masked select `t = -t; t &= y; t ^= a` as a test and a short jump;
//! - `memory`: loads, stores, atomics, packet loads and their checks (groups included), and the
//!   second-region stubs the checks share;
//! - `control`: jumps, exits, calls, the budget meter and refunds;
//! - `fast_loop`: counted loops, their head check and unchecked copy;
//! - `copy_loop`: a proved word-copy loop as one `rep movsq` (unmetered code);
//! - `sum_loop`: a proved byte-sum loop as `psadbw` over 16 bytes at a time (unmetered code);
//! - `cmov`: a conditional jump over one register instruction, as a conditional move;
//! - `lookup`: map lookups without the stub at proved call sites;
//! - `snippets`: the out-of-line code of each site;
//! - `stubs`: the prologues and the shared stubs;
//! - `xor_shift`: a hash's mixing step with its `xor`s reordered, off the chain's latency.

/// A table of `$of(opcode)` for each of the 256 opcodes, built at compile time (`STARTS`,
/// `memory::SCAN`): one lookup where the main pass and the group scan would take an opcode apart.
macro_rules! by_opcode {
    ($of:path) => {{
        let mut t = [0; 256];
        let mut op = 0;
        while op < 256 {
            t[op] = $of(op as u8);
            op += 1;
        }
        t
    }};
}

mod alu;
mod cmov;
mod control;
mod copy_loop;
mod fast_loop;
mod gather;
mod lookup;
mod memory;
mod select;
mod shape;
mod snippets;
mod stubs;
mod sum_loop;
mod switch;
mod xor_shift;

pub use shape::{blocks, chains};

use super::blind::{worth_blinding, Blinder};
use super::finish::Layout;
use super::frame::*;
use super::loops;
use super::x86::*;
use super::JitOptions;
use crate::analysis::Analysis;
use crate::isa::opcodes::*;
use crate::isa::{lddw_imm, Insn};
use crate::vm::{MAX_CALL_FRAMES, STACK_FRAME_SIZE};
use fast_loop::LoopCopy;
use shape::Shape;
use snippets::Snippet;
use stubs::Stubs;

/// Host register of each eBPF register r0-r10.
pub const REG: [u8; 11] = [RDI, RSI, R8, R9, R10, R11, RBX, R13, R14, R15, RBP];
/// Instruction budget left in this run (decremented per metered chain of blocks).
const BUDGET: u8 = R12;
/// `0 - start` of the data region (`Ctx::data_neg`), for the inline check. Code that needs rdx
/// for something else (division, compare-exchange, calls out) reloads it afterwards.
const DATA_NEG: u8 = RDX;

/// Upper bound on the bytes one instruction emits inline, its block's budget check included.
pub const MAX_INSN_BYTES: usize = 144;
/// Upper bound on the out-of-line bytes one instruction adds: its copies (a group's, a fast
/// loop's) and for each a second-region check or a trap snippet, plus its block's budget exit
/// (the request for the next slice). Loose since blocks have no metered copy (`jit::finish`).
/// A check's snippet (at most 20 bytes) and the second-region and full stubs it may be the
/// first to use (at most 41 and 15, emitted after the snippets) fit in two of its 72-byte shares.
pub const MAX_SNIPPET_BYTES: usize =
    4 * MAX_INSN_BYTES + 32 + 4 * 72 + 24 + 2 * LOOP_ALIGN + 64 + 40;
/// Loop heads start on a cache line, so that a short loop is fetched and decoded whole (dense
/// code such as the inline checks is front-end bound; measured: strcmp 16.2 -> 13.9 us).
pub const LOOP_ALIGN: usize = 64;
/// Upper bound on the check a fast loop does at its head (see `loops`); its fixed part has room
/// for a blinded bound (14 bytes where the plain one takes up to 7) and its store in
/// `Ctx::loop_limit` (8), for a stride loop's twin check and offset of its bound (22), and for
/// a byte-sum loop's preamble before it (`sum_loop`).
pub const MAX_GUARD_BYTES: usize = 78 + 40 * loops::MAX_ACCESSES + sum_loop::PREAMBLE_BYTES;
/// Upper bound on the two prologues, the pool's fill (22 bytes a constant) and the shared stubs.
pub const MAX_FIXED_BYTES: usize = 2048 + 24 * POOL_SLOTS;

/// Compiled code and, for each instruction slot, the offset of its code (`u32::MAX` for the
/// second slot of `lddw`), in what a finish of a run needs of the code (`finish::Layout`; its
/// `base` is set once the code is in place).
pub struct Compiled {
    pub code: Code,
    pub layout: Layout,
    /// Where the main prologue ends: the code of a run whose registers and block are set up
    /// (a batch's loop of machine code jumps here, `batch_loop`).
    pub body_start: usize,
    /// Where the out-of-line snippets and shared stubs begin.
    pub body_end: usize,
    /// The function prologue: sets up a run as the main prologue does, then jumps to
    /// `Ctx::entry` (how a callback is entered); only with callback `entries` (else the end of
    /// the code, never entered).
    pub function_entry: usize,
    /// For each callback entry (ascending), the offset of its code.
    pub entries: Vec<(usize, u32)>,
    /// The code checks memory accesses inline, against the run block's fast-path fields (see
    /// `checks`); without, a run need not fill them in.
    pub checks: bool,
    /// Where the code ends and the jump tables (`switch`, data) begin.
    pub code_end: usize,
    /// A bare run's own entry (`Compiler::bare_entry`), for code that can leave only by its
    /// exits (`bare_fits`); `None` otherwise.
    pub bare_entry: Option<usize>,
}

/// The code-size bound, known before emission (compilation fails rather than exceed it).
pub fn size_bound(insns: usize) -> usize {
    insns * (MAX_INSN_BYTES + MAX_SNIPPET_BYTES + MAX_GUARD_BYTES + LOOP_ALIGN - 1 + COUNTER_BYTES)
        + MAX_FIXED_BYTES
}

/// Bytes of the coverage counters' increments (`count`: `mov rax, imm64; add qword [rax], 1`,
/// 14 bytes) one instruction may add: one in its main code (a chain head's, or a conditional
/// jump's fall-through), one in a copy of it (a group's), and in a fast loop's two copies one each, with
/// the back jump's extra entry count and jumps around it.
const COUNTER_BYTES: usize = 6 * 14 + 16;

/// By slot, the registers live after each instruction that falls through to the next: those
/// live before the next (the analysis' liveness, `crate::analysis::liveness`).
fn live_after(analysis: &Analysis) -> Vec<u16> {
    let p = &analysis.program;
    let live = analysis.live_registers(&crate::analysis::all_five);
    let mut after = vec![u16::MAX; p.slot_count()];
    for i in 0..p.len().saturating_sub(1) {
        after[p.slot(i)] = live[i + 1];
    }
    after
}

/// Whether register `r` is live after the instruction at `slot`, which falls through, as
/// `live_after` finds it, when the code near enough decides it: a search of the paths from the
/// next instruction, each followed until it reads `r` (live), writes it or exits (dead unless
/// r0), or comes back to where a path already started. `None` when it would look at more than
/// `STEPS` instructions or leave the program. Liveness over the whole program costs a fifth of a
/// verified load's JIT part (parse_fixed: ~35k of ~186k instructions under callgrind), and a
/// fold's register is mostly overwritten a few instructions on.
fn live_in_line(analysis: &Analysis, slot: usize, r: u8) -> Option<bool> {
    use crate::analysis::{all_five, liveness::uses_and_defs, Flow};
    /// Most instructions looked at, and most paths.
    const STEPS: usize = 64;
    const PATHS: usize = 16;
    let p = &analysis.program;
    let bit = 1u16 << r;
    // Where paths started, and those of them left to follow.
    let (mut seen, mut work) = ([0usize; PATHS], [0usize; PATHS]);
    let (mut n_seen, mut n_work) = (1, 1);
    seen[0] = p.index_of_slot(slot)? + 1;
    work[0] = seen[0];
    let mut steps = 0;
    while n_work > 0 {
        n_work -= 1;
        let mut i = work[n_work];
        loop {
            steps += 1;
            if steps > STEPS {
                return None;
            }
            let flow = *analysis.cfg.flows.get(i)?;
            let (uses, defs) = uses_and_defs(p, flow, i, &all_five);
            if uses & bit != 0 {
                return Some(true);
            }
            if defs & bit != 0 || flow == Flow::Exit {
                break;
            }
            let succs = match flow {
                Flow::Jump { target } => [Some(target as usize), None],
                Flow::Branch { target } => [Some(i + 1), Some(target as usize)],
                _ => {
                    i += 1;
                    continue;
                }
            };
            for s in succs.into_iter().flatten() {
                if !seen[..n_seen].contains(&s) {
                    if n_seen == PATHS {
                        return None;
                    }
                    seen[n_seen] = s;
                    work[n_work] = s;
                    n_seen += 1;
                    n_work += 1;
                }
            }
            break;
        }
    }
    Some(false)
}

/// Whether the code may check a memory access inline (against `Ctx`'s fast-path fields, which
/// the prologue then copies): some load, store or atomic the verifier did not prove.
fn checks(insns: &[Insn], proved: &[bool]) -> bool {
    insns
        .iter()
        .zip(proved)
        .any(|(insn, &proved)| checked(insn, proved))
}

/// Whether `insn` is a load, store or atomic the verifier did not prove (`proved`): one the code
/// may check.
fn checked(insn: &Insn, proved: bool) -> bool {
    matches!(class(insn.opcode), CLASS_LDX | CLASS_ST | CLASS_STX) && !proved
}

/// What the main pass asks of an instruction before it emits it alone, as bits of `STARTS`
/// by opcode: one lookup, and an instruction with no bit (most of them) goes straight to
/// `Compiler::insn` without the tests of the forms it cannot start. A new fused form that
/// starts at an opcode none of these bits covers must add its opcodes here (to `IDIOM` if
/// `Compiler::idiom` tests it). (`NOT_BARE` is for `bare_fits`, which the same lookup serves.)
mod starts {
    use crate::isa::opcodes::*;

    /// May start an idiom (`Compiler::idiom`): a register move, a shift by an immediate or a
    /// `neg` (a masked select, `select`), of ALU or ALU64; register moves also start `mov_add`
    /// and `xor_shift`.
    pub const IDIOM: u8 = 1;
    /// A conditional jump: may start a layout around a `ja` (`cond_over_ja`, `jump_over_ja`).
    pub const COND: u8 = 2;
    /// A load, store or atomic: may open a group check (unless proved; see `checked`).
    pub const ACCESS: u8 = 4;
    /// `lddw`, two slots.
    pub const LDDW: u8 = 8;
    /// A call (helper or local), an atomic or a legacy packet load: the code may leave other
    /// than by its exits (see `bare_fits`).
    pub const NOT_BARE: u8 = 16;

    pub(super) const fn of(op: u8) -> u8 {
        let cls = class(op);
        let alu = cls == CLASS_ALU || cls == CLASS_ALU64;
        let rest = op ^ cls;
        let mut bits = 0;
        if alu && (rest == ALU_MOV | SRC_X || rest == ALU_LSH || rest == ALU_RSH || rest == ALU_NEG)
        {
            bits |= IDIOM;
        }
        let jmp = cls == CLASS_JMP || cls == CLASS_JMP32;
        let kind = op & 0xf0;
        if jmp && kind != JMP_JA && kind != JMP_CALL && kind != JMP_EXIT {
            bits |= COND;
        }
        if cls == CLASS_LDX || cls == CLASS_ST || cls == CLASS_STX {
            bits |= ACCESS;
        }
        if op == OP_LDDW {
            bits |= LDDW;
        }
        let call = cls == CLASS_JMP && kind == JMP_CALL;
        let atomic = cls == CLASS_STX && op & 0xe0 == MODE_ATOMIC;
        let legacy = cls == CLASS_LD && (op & 0xe0 == MODE_ABS || op & 0xe0 == MODE_IND);
        if call || atomic || legacy {
            bits |= NOT_BARE;
        }
        bits
    }
}

/// `starts::of` of every opcode.
static STARTS: [u8; 256] = by_opcode!(starts::of);

/// For an instruction that may start an idiom (`starts::IDIOM`: a register move, a shift by an
/// immediate or a `neg`), whether the instruction after it may be the second of one: every form
/// a move or a shift starts has, of the move's or shift's class, a register move or a shift by
/// an immediate next (a rotate's body, `xor_shift`'s shift), a multiplication by an immediate
/// (`lea_mul`) or an add (`mov_add`); a `neg` is left to `select`. Tested inline before the calls
/// of those searches, which most moves made for nothing (parse_fixed, mode verified: ~75 per
/// load, ~110 instructions each).
#[inline(always)]
fn may_pair(insns: &[Insn], pc: usize) -> bool {
    let first = insns[pc].opcode;
    let cls = class(first);
    first ^ cls == ALU_NEG
        || insns.get(pc + 1).is_some_and(|next| {
            matches!(next.opcode ^ cls, op if op == ALU_MOV | SRC_X
                || op == ALU_LSH
                || op == ALU_RSH
                || op == ALU_ARSH
                || op == ALU_MUL
                || op == ALU_ADD
                || op == ALU_ADD | SRC_X)
        })
}

fn is_lddw(insn: &Insn) -> bool {
    insn.opcode == OP_LDDW
}

struct Compiler<'a> {
    a: Asm,
    insns: &'a [Insn],
    /// Targets, loop heads and chains, from the analysis.
    shape: Shape,
    /// The label of slot 0; slot `pc` has the `pc`th after it (`label`).
    labels: Label,
    stubs: Stubs,
    snippets: Vec<Snippet>,
    /// Size of the block being emitted and the index in it of the instruction being emitted.
    block_n: u32,
    block_k: u32,
    /// While a fast loop's copy is emitted: its head and the accesses its head check covered.
    fast: Option<FastCopy>,
    /// How the next conditional jump leaves, when not by its own target (taken by `jump`).
    cond: Option<CondLayout>,
    /// In the main pass: the open group of accesses that one check covers (see `group`).
    group: Option<OpenGroup>,
    /// The second-region stubs that checks use, by region tried second and bound index
    /// (`emit_second_region_stubs`).
    second: [[Option<Label>; 8]; 2],
    /// The full stubs (data, then the stack), by bound index, that quiet groups' checks use.
    full: [Option<Label>; 8],
    /// Draws the keys of blinded constants; `None` when constants are emitted as they are.
    blind: Option<Blinder>,
    /// Coverage counters (`coverage::CoverageCounters::addresses`): chain entries and
    /// conditional jumps' fall-throughs, a u64 per slot each.
    coverage: Option<(u64, u64)>,
    /// By slot: a load or store the verifier proved in bounds (mode verified), emitted as a
    /// direct access with no check; all false in mode checked. Borrowed when the caller has it
    /// (a copy was an allocation and a copy per load).
    proved: std::borrow::Cow<'a, [bool]>,
    /// Some slot of `proved` is true: without, there is no liveness to ask (mode checked).
    /// Found once here: a rotate asked it of all of `proved` (big, 48 rotates and 1,011 slots:
    /// ~240k of its ~990k-instruction JIT part under callgrind).
    any_proved: bool,
    /// The program calls between functions (an `exit` may return to a caller).
    local_calls: bool,
    /// A `t = b; t += x` left unemitted (see `fold`): the proved accesses through `t` up to slot
    /// `last` address `[b + x + off]` instead.
    folded: Option<Folded>,
    /// While the head check of a fast loop whose copy follows it is emitted: where the check's
    /// failure goes (the ordinary chain), bound after the copy (see `guard`).
    inline_fail: Option<Label>,
    analysis: &'a Analysis,
    /// By slot, for an instruction that falls through: the registers live after it (bit r for
    /// r); computed when a fold first needs it and the code after does not decide it
    /// (`live_in_line`).
    live_after: Option<Vec<u16>>,
    /// Whether the code meters the budget (`JitOptions::meter`). Without it no chain charges r12
    /// and nothing gives back (`adj` is 0): r12 keeps what the run started with, moved only by
    /// what helpers charge (callbacks).
    metered: bool,
    /// The program's maps whose proved lookups may skip the lookup stub (`lookup`).
    lookups: &'a [crate::helpers::maps::InlineLookup],
    /// Jump tables of compare trees (`switch`), placed after all code.
    tables: Vec<switch::JumpTable>,
    /// A byte gather found at its first load and loaded at its root (see `gather`).
    pending: Option<gather::Gather>,
    /// The last byte gather walk that found nothing: its first slot and its byte loads, as bits
    /// from there (see `gather`).
    walked: (usize, u32),
}

/// A folded `t = b; t += x` (see `Compiler::fold`): `t` as the accesses up to `last` see it.
#[derive(Clone, Copy)]
struct Folded {
    t: u8,
    at: Mem,
    last: usize,
}

/// The fast loop whose copy is being emitted: back jumps to `head` go to `top`; `accesses` are
/// those its head check covered; `limit_at`, the compare whose blinded bound the head check left
/// in `Ctx::loop_limit`.
struct FastCopy {
    head: usize,
    top: Label,
    accesses: Vec<usize>,
    limit_at: Option<usize>,
}

/// Where a conditional jump goes when it is emitted inverted, for a layout around it.
#[derive(Clone, Copy)]
enum CondLayout {
    /// In the first half of an unrolled fast loop: its back jump, inverted, leaves the loop here.
    UnrollExit(Label),
    /// In the first half of an unrolled rotated fast loop: its compare leaves the loop here.
    UnrollLeave(Label),
    /// Followed by the `ja` that ends its chain: the inverted jump goes to the `ja`'s target
    /// (see `cond_over_ja`).
    OverJa(Label),
    /// Over a lone `ja` placed out of line: the inverted jump goes to that `ja`'s label (see
    /// `jump_over_ja`).
    ToLoneJa(Label),
}

/// Accesses a group check covers and where the group's last one ends (its pc, and the label to
/// bind after its code).
struct OpenGroup {
    /// The first `count` are the members, ascending (an array: a group opens at most once per
    /// checked access, and a vector was an allocation each).
    members: [usize; memory::GROUP_MAX_MEMBERS],
    count: usize,
    last: usize,
    rejoin: Label,
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

/// Compiles `insns` as `options` say: with `blind_constants`, no immediate of the program appears
/// in the code (see `blind`); without `meter`, no budget is charged.
/// `entries` are the callback entries (sorted), where code may be entered besides slot 0.
/// `analysis` is that of `insns` (the rewrites keep every instruction's slots).
pub fn compile(
    insns: &[Insn],
    analysis: &Analysis,
    options: JitOptions,
    entries: &[usize],
    proved: Option<&[bool]>,
    lookups: &[crate::helpers::maps::InlineLookup],
) -> Result<Compiled, String> {
    let JitOptions {
        blind_constants: blind,
        coverage,
        meter: metered,
    } = options;
    if analysis.program.slot_count() != insns.len() {
        return Err("the analysis is of another program".into());
    }
    let proved = match proved {
        Some(p) if p.len() != insns.len() => return Err("the proof is of another program".into()),
        Some(p) => std::borrow::Cow::Borrowed(p),
        None => std::borrow::Cow::Owned(vec![false; insns.len()]),
    };
    let checks = checks(insns, &proved);
    // The bound is checked as code is emitted; the initial reservation is only a guess (the
    // bench programs take 30-45 bytes an instruction with checks or metering, which add
    // out-of-line code, and about 7 with neither), and the last compile's buffer when larger.
    let per_insn = if checks || metered { 48 } else { 16 };
    let mut a = Asm::with_capacity(
        insns.len() * per_insn + MAX_FIXED_BYTES,
        4 * insns.len() + 16,
    );
    let labels = a.new_labels(insns.len());
    let stubs = Stubs::new(&mut a);
    let mut c = Compiler {
        a,
        insns,
        shape: Shape::of(analysis),
        labels,
        stubs,
        // About one snippet per instruction (checks, budget exits, refunds).
        snippets: Vec::with_capacity(insns.len()),
        block_n: 0,
        block_k: 0,
        fast: None,
        cond: None,
        group: None,
        second: [[None; 8]; 2],
        full: [None; 8],
        blind: blind.then(Blinder::new),
        coverage,
        analysis,
        live_after: None,
        any_proved: proved.contains(&true),
        local_calls: (insns.iter()).any(|i| i.opcode == OP_CALL && i.src == CALL_LOCAL),
        proved,
        metered,
        folded: None,
        inline_fail: None,
        lookups,
        tables: Vec::new(),
        pending: None,
        walked: (0, 0),
    };
    c.prologue(false, checks);
    let body_start = c.a.pos();
    let body = c.a.new_label();
    c.a.bind(body);
    // A run enters here or (a callback) at an entry of its own: only without those may the code
    // rebuild its loops' constants once, here, for all of the run.
    // Without blinding there is no pool, and no need to count constants.
    if let Some(b) = c.blind.as_mut().filter(|_| entries.is_empty()) {
        let pooled = pooled(insns, &c.shape);
        if !pooled.is_empty() {
            b.fill_pool(&mut c.a, &pooled);
        }
    }
    let mut offsets = vec![u32::MAX; insns.len()];
    // Byte gathers are loaded whole in proved code that nothing observes between instructions.
    let gathers = c.any_proved && !metered && c.coverage.is_none();
    let mut pc = 0;
    while pc < insns.len() {
        let n = c.shape.chains[pc];
        let loop_head = c.shape.loop_heads[pc];
        // Counted loops are chains that jump back to their own head.
        let fast = if n > 0 && loop_head {
            // Its proved accesses are left out of the head check (see `guard`); the copy, unrolled
            // twice and metered once per two iterations, is worth having all the same.
            // A rotated loop's copy lays its compare out around the `ja` (`cond_over_ja`), which
            // coverage does without (see `layouts` below).
            // A stride loop is taken for its head check only: with every access proved it stays
            // as it is (a proved copy loop's preamble may take it).
            loops::fast_loop(insns, pc, n).filter(|fl| {
                (!fl.rotated || c.coverage.is_none())
                    && (fl.stride.is_none() || fl.accesses.iter().any(|a| !c.proved[a.pc]))
            })
        } else {
            None
        };
        // A fast loop runs in its aligned copy; here only its head check runs, once per entry.
        if loop_head && fast.is_none() {
            // A proved copy loop's preamble copies with `rep movsq` and goes on after the loop;
            // so does a proved byte-sum loop's, with `psadbw` (in a fast loop, its head check
            // starts with it: `guard`). The loop's own back jump comes to its head, so the
            // preamble goes before it: only falling into the loop runs it. (It takes no more
            // than a head check would: the bound below counts it so.)
            if n == 6 || n == 7 {
                c.loop_preamble(pc, n)?;
            }
            c.a.align(LOOP_ALIGN);
        }
        let start = c.a.pos();
        offsets[pc] = start as u32;
        c.a.bind(c.label(pc));
        let mut start = start;
        if n > 0 {
            if let Some((chain_entries, _)) = c.coverage {
                let counted = c.a.pos();
                c.count(chain_entries, pc);
                start += c.a.pos() - counted;
            }
            // A fast loop's head check comes first: its copy meters itself.
            // Unmetered, a fast loop's copy follows its head check, which falls into it (one
            // taken jump fewer per entry; clang falls into its loops); a fill jumps elsewhere.
            let inline = !c.metered
                && c.coverage.is_none()
                && fast.as_ref().is_some_and(|fl| fl.fill.is_none());
            let guarded = fast.map(|fl| {
                c.inline_fail = inline.then(|| c.a.new_label());
                let g = c.a.pos();
                let (top, fill_at, stored) = c.guard(&fl);
                let accesses = fl.accesses.iter().map(|acc| acc.pc).collect::<Vec<_>>();
                let limit_at = stored.then_some(fl.cmp);
                let fill = fill_at.zip(fl.fill);
                (top, c.a.pos() - g, accesses, fl.rotated, limit_at, fill)
            });
            let slow = c.meter(pc, n);
            c.block_n = n;
            c.block_k = 0;
            if let Some((top, bytes, accesses, rotated, limit_at, fill)) = guarded {
                if bytes > MAX_GUARD_BYTES {
                    return Err(format!("loop check at {pc} over its bound"));
                }
                start += bytes;
                let checked = c.a.new_label();
                let copy = LoopCopy {
                    head: pc,
                    n,
                    top,
                    slow,
                    checked,
                    accesses,
                    rotated,
                    limit_at,
                    fill,
                };
                if let Some(fail) = c.inline_fail.take() {
                    let at = c.a.pos();
                    c.fast_copy(copy);
                    c.folded = None;
                    c.a.bind(fail);
                    c.block_n = n;
                    c.block_k = 0;
                    start += c.a.pos() - at;
                } else {
                    c.snippets.push(Snippet::FastLoop(copy));
                }
                c.a.bind(checked);
            }
        }
        // A gather's instructions but its root emit nothing; other work between them is emitted
        // alone (no idiom may take a piece of the tree).
        // (Only with `gathers` is one ever pending: mode checked tests one flag.)
        let pending = gathers && c.pending.is_some();
        if gathers
            && (pending || insns[pc].opcode == CLASS_LDX | MODE_MEM | SIZE_B && c.proved[pc])
            && c.gathered(pc)
        {
            c.block_k += 1;
            pc += 1;
            continue;
        }
        let starts = STARTS[insns[pc].opcode as usize];
        // With coverage, conditional jumps keep their own layout: a fall-through is counted
        // after the jump (see `jump`), which the layouts around a `ja` would move elsewhere.
        let layouts = c.coverage.is_none();
        let alone = starts & (starts::IDIOM | starts::COND) == 0
            || (starts & starts::IDIOM != 0 && !may_pair(insns, pc))
            || pending;
        let (idiom, fused, lone) = if alone {
            // Most instructions start nothing, and most moves and shifts are followed by no
            // second instruction of a form: no test of each form below.
            (0, false, false)
        } else {
            // An idiom's instructions after its first are no jump targets (`idiom` checks).
            let idiom = match c.idiom(pc, usize::MAX) {
                0 if starts & starts::IDIOM != 0 => c.xor_shift(pc),
                n => n,
            };
            let fused = idiom == 0
                && pc + 1 < insns.len()
                && c.shape.chains[pc + 1] == 0
                && (c.mov_add(pc) || (layouts && c.cond_over_ja(pc)));
            // Both put `pc + 1` out of line, for the jumps to it.
            let lone =
                idiom == 0 && !fused && layouts && (c.jump_over_ja(pc) || c.jump_as_cmov(pc));
            (idiom, fused, lone)
        };
        if idiom > 0 {
            let at = c.a.pos() as u32;
            offsets[pc + 1..pc + idiom].fill(at);
            for p in pc + 1..pc + idiom {
                c.a.bind(c.label(p));
            }
            c.block_k += idiom as u32 - 1;
        } else if fused {
            // The second one is no jump target (it is inside a chain): nothing can start at it.
            offsets[pc + 1] = c.a.pos() as u32;
            c.a.bind(c.label(pc + 1));
            c.block_k += 1;
        } else if lone {
            // The `ja` or the conditional move's instruction after it went out of line (its label is bound
            // there).
            offsets[pc + 1] = c.a.pos() as u32;
        } else {
            // Only a checked access opens a group (tested here: `group` is not inlined).
            if starts & starts::ACCESS != 0 && c.group.is_none() && !c.is_proved(pc) {
                c.group(pc);
            }
            c.insn(pc);
            if let Some(g) = c.group.take_if(|g| g.last == pc) {
                c.a.bind(g.rejoin);
            }
            if starts & starts::LDDW != 0 {
                // Its second slot is never jumped to (validation), but bound so that no label
                // dangles (here, not in a walk over all slots after the pass).
                c.a.bind(c.label(pc + 1));
            }
        }
        c.block_k += 1;
        let used = c.a.pos() - start;
        if used > MAX_INSN_BYTES {
            return Err(format!(
                "instruction {pc} needed {used} bytes, over the bound of {MAX_INSN_BYTES}"
            ));
        }
        pc += if idiom > 0 {
            idiom
        } else if starts & starts::LDDW != 0 || fused || lone {
            2
        } else {
            1
        };
    }
    let body_end = c.a.pos();
    c.emit_snippets();
    if c.a.pos() - body_end > MAX_SNIPPET_BYTES * insns.len() {
        return Err("out-of-line code over its bound".into());
    }
    c.emit_second_region_stubs();
    c.emit_stubs();
    // The function prologue enters callbacks only: without callback entries, none.
    let function_entry = c.a.pos();
    if !entries.is_empty() {
        c.prologue(true, checks);
    }
    let entries = entries
        .iter()
        .map(|&pc| {
            let at =
                c.a.label_pos(c.label(pc))
                    .ok_or("callback entry without code")?;
            Ok((pc, at as u32))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let bare_entry = bare_fits(insns, checks, metered, &entries, coverage.is_some()).map(|used| {
        let at = c.a.pos();
        c.bare_entry(body, used);
        at
    });
    let code_end = c.a.pos();
    c.emit_tables();
    let code = c.a.finish_code()?;
    debug_assert!(code.len() <= size_bound(insns.len()));
    let layout = Layout {
        offsets,
        base: 0,
        coverage: coverage.map(|counters| (counters, std::mem::take(&mut c.shape.chains))),
    };
    Ok(Compiled {
        code,
        layout,
        body_start,
        body_end,
        function_entry,
        entries,
        checks,
        code_end,
        bare_entry,
    })
}

/// Whether the code compiled from `insns` can leave only by its exits, with no Rust entry point
/// reached on the way (no memory check, budget, helper, callback or coverage counter) and no trap
/// (no call between functions, whose depth can run out, no atomic, whose misalignment traps, no
/// legacy packet load, which reads the block's packet): then a run may enter it at an entry that
/// sets up only the registers (`Compiler::bare_entry`). `Some` of the eBPF registers r6-r9 the
/// instructions name (bits 6-9), which that entry saves and zeroes; `None` where it does not fit.
fn bare_fits(
    insns: &[Insn],
    checks: bool,
    metered: bool,
    entries: &[(usize, u32)],
    coverage: bool,
) -> Option<u16> {
    if checks || metered || coverage || !entries.is_empty() {
        return None;
    }
    let mut used = 0u16;
    for insn in insns {
        // One lookup (`starts::NOT_BARE`), where the three tests took ~13 instructions each.
        if STARTS[insn.opcode as usize] & starts::NOT_BARE != 0 {
            return None;
        }
        used |= 1 << (insn.dst & 15) | 1 << (insn.src & 15);
    }
    Some(used & 0x3c0)
}

impl Compiler<'_> {
    /// Before the head of a loop of `n` instructions that is no fast loop, the preamble of a
    /// copy loop or a byte-sum loop (see the caller), if it is one. Not inlined: it runs at few
    /// loop heads, and the main pass stays lean (a call there cost a verified `parse_fixed`
    /// load's JIT part ~2.7k of its ~174k instructions under callgrind).
    #[inline(never)]
    fn loop_preamble(&mut self, pc: usize, n: u32) -> Result<(), String> {
        let pre = self.a.pos();
        let done = (n == 7 && self.copy_loop(pc)) || self.sum_loop(pc);
        if done && self.a.pos() - pre > MAX_GUARD_BYTES {
            return Err(format!("copy or sum loop at {pc} over its bound"));
        }
        Ok(())
    }

    /// Whether register `r` is live after the instruction at `slot`, which falls through.
    fn live_after(&mut self, slot: usize, r: u8) -> bool {
        let analysis = self.analysis;
        if let Some(live) = live_in_line(analysis, slot, r) {
            // The tests' builds check the search against the whole program's liveness.
            debug_assert_eq!(live, live_after(analysis)[slot] & 1 << r != 0);
            return live;
        }
        let after = self.live_after.get_or_insert_with(|| live_after(analysis));
        after[slot] & 1 << r != 0
    }

    /// The label of slot `pc`'s code.
    fn label(&self, pc: usize) -> Label {
        debug_assert!(pc < self.insns.len());
        Label(self.labels.0 + pc as u32)
    }

    /// Adds one to the coverage counter of `slot` in the array at `base` (no lock: see
    /// `coverage`). Clobbers rax and the flags, which no instruction leaves live for the next.
    fn count(&mut self, base: u64, slot: usize) {
        self.a.mov_addr64(RAX, base + 8 * slot as u64);
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
}

/// The constants worth blinding that instructions inside loops (between a backward jump's
/// target and the jump) use most often, at most `POOL_SLOTS`: those the code rebuilds once per
/// run into `Ctx::pool` rather than at every use.
fn pooled(insns: &[Insn], shape: &Shape) -> Vec<i32> {
    // The backward jumps (local calls back are no loops), and the slots from the first one's
    // target to the last one: only those can be inside a loop.
    let loops = || {
        shape.back.iter().filter(|&&(_, pc)| {
            let op = insns[pc as usize].opcode;
            matches!(class(op), CLASS_JMP | CLASS_JMP32) && op & 0xf0 != JMP_CALL
        })
    };
    let Some(first) = loops().map(|&(t, _)| t as usize).min() else {
        return Vec::new();
    };
    let end = loops()
        .map(|&(_, pc)| pc as usize + 1)
        .max()
        .unwrap_or(first);
    // +1 where a loop's range starts, -1 after it ends (indexed from `first`).
    let mut depth = vec![0i32; end - first + 1];
    for &(t, pc) in loops() {
        depth[t as usize - first] += 1;
        depth[pc as usize + 1 - first] -= 1;
    }
    let mut counts: Vec<(i32, u32)> = Vec::with_capacity(4 * POOL_SLOTS);
    let mut inside = 0;
    // A jump target: an instruction's first slot.
    let mut pc = first;
    while pc < end {
        inside += depth[pc - first];
        let insn = &insns[pc];
        if is_lddw(insn) {
            inside += depth[pc + 1 - first];
            pc += 2;
            continue;
        }
        if inside > 0 && worth_blinding(insn.imm as i64 as u64) {
            match counts.iter().position(|&(c, _)| c == insn.imm) {
                Some(k) => counts[k].1 += 1,
                // Bounded, so that the search stays constant per instruction.
                None if counts.len() < 4 * POOL_SLOTS => counts.push((insn.imm, 1)),
                None => {}
            }
        }
        pc += 1;
    }
    counts.sort_by_key(|&(c, n)| (std::cmp::Reverse(n), c));
    counts.truncate(POOL_SLOTS);
    counts.into_iter().map(|(c, _)| c).collect()
}

/// With blinding, a constant the code's entry rebuilt into `Ctx::pool` (see `Blinder::pooled`):
/// the slot an instruction may read it from as its operand (`cmp r, [slot]`), one instruction
/// where `blinded` and a register operand take two.
fn pool_slot(blind: &Option<Blinder>, imm: i32) -> Option<Mem> {
    // Most constants are small, never pooled: no search of the pool for them.
    match blind {
        Some(b) if worth_blinding(imm as i64 as u64) => b.pooled(imm),
        _ => None,
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
