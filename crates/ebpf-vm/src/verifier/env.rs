//! What one verification knows besides the path states: the program, its maps and type, the
//! ids it hands out, the instructions processed, the log, and the rejection (the kernel's
//! `bpf_verifier_env`, in part).

use std::fmt::Write;

use super::reg::{MapRef, RegType};
use super::state::FuncState;
use crate::analysis::Analysis;
use crate::context::rewrite::CtxBase;
use crate::error::ErrorCode;
use crate::helpers::prototype::HelperPrototype;

/// The program types the walk knows: what r1 (and r2) hold at entry and what the context allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgramKind {
    /// r1 = `data_size` bytes of memory, r2 = `data_size` (the conformance suite's convention).
    Raw { data_size: u32 },
    /// r1 = `struct __sk_buff`, read through the rules the kernel applies to socket filters.
    SocketFilter,
    /// r1 = `struct xdp_md`.
    Xdp,
    /// r1 = `struct xdp_md` of a program a devmap runs (expected attach type
    /// `BPF_XDP_DEVMAP`), which may also read `egress_ifindex`.
    XdpDevmap,
    /// r1 = `struct __sk_buff` with tc's rules (`sched_cls`, `sched_act`): writable fields,
    /// direct packet read and write.
    Tc,
    /// r1 = `struct __sk_buff` with cgroup_skb's rules (`cg_skb_is_valid_access`): socket
    /// fields readable, `mark`, `priority`, `tstamp` writable, direct packet read (not write);
    /// r0 in [0, 1], or [0, 3] for `egress` (expected attach type `BPF_CGROUP_INET_EGRESS`).
    CgroupSkb { egress: bool },
    /// r1 = `struct pt_regs` (read only).
    Kprobe,
    /// r1 = a tracepoint's record (read only, past its 8-byte common header).
    Tracepoint,
    /// r1 = a raw tracepoint's u64 arguments (read only, 12 at most).
    RawTracepoint,
}

impl ProgramKind {
    /// An XDP program, whatever its attach type.
    pub fn is_xdp(self) -> bool {
        matches!(self, ProgramKind::Xdp | ProgramKind::XdpDevmap)
    }

    /// The range r0 must lie in at the main program's exit (`check_return_code`), where the
    /// program type has one (of the types here, only cgroup_skb: the kernel leaves XDP's, tc's
    /// and socket filters' return values to run time).
    pub fn return_range(self) -> Option<(i64, i64)> {
        match self {
            ProgramKind::CgroupSkb { egress } => Some((0, if egress { 3 } else { 1 })),
            _ => None,
        }
    }
}

/// What the walk needs to know beyond the instructions.
pub struct VerifyOptions<'a> {
    pub kind: ProgramKind,
    /// The program's maps, by the index its map `lddw`s carry.
    pub maps: &'a [MapRef],
    /// The name the log gives helper `id` (`bpf_map_lookup_elem`).
    pub helper_name: &'a dyn Fn(i32) -> Option<String>,
    /// The prototype of helper `id` (`kernel_prototype`, or an embedder's table); a helper
    /// without one is refused.
    pub prototype: &'a dyn Fn(i32) -> Option<HelperPrototype>,
    /// The license is GPL-compatible (`license_is_gpl_compatible`): GPL-only helpers allowed.
    pub gpl_compatible: bool,
    /// 0: no log; 1: the rejection and the path to it; 2: the state after every instruction.
    pub log_level: u32,
    /// The program's global functions (BTF linkage global), verified once against their
    /// prototypes rather than in the context of each call ([`super::global`]).
    pub globals: &'a [super::global::GlobalFunction],
    /// Apply the kernel's extra rules for loads without CAP_BPF and CAP_PERFMON
    /// ([`super::unprivileged`]): no pointer leaks, no pointer comparisons but null checks, no
    /// uninitialised stack reads, the arithmetic Spectre masking needs, no loops, no calls.
    pub unprivileged: bool,
    /// Keep r0 precise at every exit of the main program, as a return range does (which can keep
    /// more states apart), and report the union of its bounds there (`Verified::exit_r0`).
    pub exit_range: bool,
}

/// A rejection: the instruction (slot), the kernel-style message, the errno and the whole log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub slot: usize,
    pub message: String,
    pub code: ErrorCode,
    pub log: String,
}

/// An accepted program: how much was explored, and the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub processed: u64,
    /// The explored-state counters of the summary line.
    pub stats: super::prune::PruneStats,
    pub log: String,
    /// Per function (in the analysis' order, main first), the bytes of stack its frames
    /// reached, a multiple of 8 (the kernel's `subprog_info[i].stack_depth`, the log's
    /// `stack depth A+B`).
    pub stack_depth: Vec<u32>,
    /// Loads through map pointers (`map_fields`), by instruction slot, and the value each
    /// gives: the loader rewrites them into moves of these constants.
    pub map_field_loads: Vec<(usize, u64)>,
    /// By instruction slot: a load, store or atomic operation (not a legacy packet load) proved
    /// in bounds on every path that reaches it, each time through a pointer into the stack, a
    /// map value or memory of a known size (`Proved::direct`). The engines access these
    /// directly, without a run-time check; every other access keeps its check.
    pub proved: Vec<bool>,
    /// The union of r0's bounds at every exit of the main program the walk reached, when it
    /// covers every run: where r0 is precise at exit (`VerifyOptions::exit_range`, or a type
    /// with a return range), so that a state pruned into an explored one has its exits' r0
    /// inside that state's. `None` otherwise.
    pub exit_r0: Option<ExitRange>,
    /// By instruction slot: what the base register of a load or store held on the paths the
    /// walk took: the context pointer on all of them, on some, or on none (also for every other
    /// instruction). The load-time context rewrite reads it instead of finding it again.
    pub ctx_bases: Vec<CtxBase>,
    /// By instruction slot: as `proved`, the accesses through the packet too
    /// (`Proved::direct_or_packet`).
    pub packet_proved: Vec<bool>,
}

/// Bounds of a value, signed and unsigned (see [`Verified::exit_r0`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitRange {
    pub smin: i64,
    pub smax: i64,
    pub umin: u64,
    pub umax: u64,
}

impl ExitRange {
    /// Whether `v` lies inside both the signed and the unsigned bounds.
    pub fn contains(&self, v: u64) -> bool {
        (self.smin..=self.smax).contains(&(v as i64)) && (self.umin..=self.umax).contains(&v)
    }

    /// The smallest range holding both.
    pub fn union(self, other: ExitRange) -> ExitRange {
        ExitRange {
            smin: self.smin.min(other.smin),
            smax: self.smax.max(other.smax),
            umin: self.umin.min(other.umin),
            umax: self.umax.max(other.umax),
        }
    }
}

/// The region kinds an access was proved against, a bit each, OR-ed over every visit of its
/// instruction by the walk (each path, each call context).
pub struct Proved;

impl Proved {
    pub const STACK: u8 = 1;
    /// `PTR_TO_MEM`: a raw program's data (`data_size` bytes, the length every run is held to),
    /// a ring buffer record, a global function's memory argument.
    pub const MEM: u8 = 2;
    pub const MAP_VALUE: u8 = 4;
    /// The context (`PTR_TO_CTX`): keeps its run-time check; the context rewrite reads it.
    pub const CTX: u8 = 8;
    /// The packet (`PTR_TO_PACKET`, `PTR_TO_PACKET_META`), proved against `data_end` (or
    /// `data`): keeps its run-time check, but where a program type's packet lies in one block
    /// of run memory for the whole run (XDP's frame) the engines may drop it
    /// (`Proved::direct_or_packet`, `context::xdp::direct_accesses`).
    pub const PACKET: u8 = 16;
    /// Anything else (socket, map key): keeps its run-time check.
    pub const OTHER: u8 = 0x80;
    const DIRECT: u8 = Self::STACK | Self::MEM | Self::MAP_VALUE;

    /// Whether an access seen with `mask` needs no run-time check: it was walked (dead code
    /// never is) and only ever through the stack, a map value or sized memory, whose host
    /// memory every run provides at the addresses the registers hold.
    pub fn direct(mask: u8) -> bool {
        mask != 0 && mask & !Self::DIRECT == 0
    }

    /// As `direct`, the packet too.
    pub fn direct_or_packet(mask: u8) -> bool {
        mask != 0 && mask & !(Self::DIRECT | Self::PACKET) == 0
    }

    /// What the base register of the access seen with `mask` held, as the context rewrite
    /// names it.
    pub fn ctx_base(mask: u8) -> CtxBase {
        match mask {
            Self::CTX => CtxBase::Ctx,
            m if m & Self::CTX != 0 => CtxBase::Mixed,
            _ => CtxBase::Other,
        }
    }
}

/// The kernel's limit on instructions processed over all paths.
pub const COMPLEXITY_LIMIT: u64 = 1_000_000;

/// The rejection an instruction's check returns: message and errno (the walk adds the slot).
pub type Refusal = (String, ErrorCode);

pub fn refuse(code: ErrorCode, message: impl Into<String>) -> Refusal {
    (message.into(), code)
}

/// What this verifier does not check yet: a rejection that says so (never a silent accept).
pub fn unsupported(what: &str) -> Refusal {
    refuse(
        ErrorCode::Einval,
        format!("{what}: not supported by this verifier yet"),
    )
}

pub fn eacces(message: impl Into<String>) -> Refusal {
    refuse(ErrorCode::Eacces, message)
}

pub struct Env<'a> {
    pub analysis: &'a Analysis,
    pub options: &'a VerifyOptions<'a>,
    pub id_gen: u32,
    pub processed: u64,
    pub log: String,
    /// Scalars (registers, stack slots) of the current frame whose values the instruction
    /// being checked relied on, one request each, in order: the walk marks them precise up the
    /// path after it (one `mark_chain_precision` each, as the kernel makes them).
    pub wanted: Vec<super::precision::Marks>,
    /// Per function, the deepest stack byte its frames reached, rounded up to 8.
    pub stack_depth: Vec<u32>,
    /// The value each load through a map pointer gives, by slot (see `map_fields`).
    pub map_field_loads: std::collections::BTreeMap<usize, u64>,
    /// The union of r0's bounds at the main program's exits so far (see `Verified::exit_r0`).
    pub exit_r0: Option<ExitRange>,
    /// Per function: a global function some walked path calls (so it is walked on its own).
    pub globals_called: Vec<bool>,
    /// The global function being walked on its own, none for the main function.
    pub walking_global: Option<&'a super::global::GlobalFunction>,
    /// The explored-state counters of the walks finished before the current one.
    pub finished_stats: super::prune::PruneStats,
    /// Where the last walk left the counters that pace state keeping ([`super::prune::Explored::pace`]).
    pub pace: [u64; 4],
    /// The logical instruction being checked.
    pub insn_index: usize,
    /// Unprivileged: the masking each pointer move by a register needs, by instruction, as the
    /// first path through it fixed it (the kernel's `aux->alu_state`, `aux->alu_limit`).
    pub alu_sanitation: std::collections::HashMap<usize, (u32, u32)>,
    /// Unprivileged: a pointer moved by an unknown scalar (the kernel's `explore_alu_limits`).
    pub explore_alu_limits: bool,
    /// By slot, the `Proved` kinds of the accesses accepted there.
    pub proved: Vec<u8>,
}

impl<'a> Env<'a> {
    pub fn new(analysis: &'a Analysis, options: &'a VerifyOptions<'a>) -> Env<'a> {
        Env {
            analysis,
            options,
            id_gen: 0,
            processed: 0,
            log: String::new(),
            wanted: Default::default(),
            stack_depth: vec![0; analysis.functions.funcs.len()],
            map_field_loads: Default::default(),
            exit_r0: None,
            globals_called: vec![false; analysis.functions.funcs.len()],
            walking_global: None,
            finished_stats: Default::default(),
            pace: [0; 4],
            insn_index: 0,
            alu_sanitation: Default::default(),
            explore_alu_limits: false,
            proved: vec![0; analysis.program.slot_count()],
        }
    }

    /// The access at `slot` was accepted through a pointer of `kind` (`Proved`).
    pub fn note_access(&mut self, slot: usize, kind: u8) {
        if let Some(m) = self.proved.get_mut(slot) {
            *m |= kind;
        }
    }

    /// A fresh id (for a nullable pointer, a packet pointer moved by a variable, linked
    /// scalars).
    pub fn new_id(&mut self) -> u32 {
        self.id_gen += 1;
        self.id_gen
    }

    /// The instruction being checked relied on the value of scalar register `r`.
    pub fn want_precise(&mut self, r: u8) {
        self.wanted.push(super::precision::Marks {
            regs: 1 << (r & 0x0f),
            slots: 0,
        });
    }

    /// The instruction being checked relied on the scalar spilled in stack slot `spi`.
    pub fn want_precise_slot(&mut self, spi: usize) {
        if spi < 64 {
            self.wanted.push(super::precision::Marks {
                regs: 0,
                slots: 1 << spi,
            });
        }
    }

    /// Counts `frame`'s stack (as far as it has grown) against its function.
    pub fn note_stack_depth(&mut self, frame: &FuncState) {
        let bytes = (frame.stack.len() * super::state::BPF_REG_SIZE) as u32;
        if let Some(depth) = self.stack_depth.get_mut(frame.subprog) {
            *depth = (*depth).max(bytes);
        }
    }

    pub fn log_on(&self, level: u32) -> bool {
        self.options.log_level >= level
    }

    pub fn line(&mut self, text: &str) {
        if self.options.log_level > 0 {
            let _ = writeln!(self.log, "{text}");
        }
    }

    pub fn helper_name(&self, id: i32) -> String {
        (self.options.helper_name)(id).unwrap_or_else(|| "unknown".to_string())
    }

    /// The type of r1 at entry.
    pub fn entry_regs(&self, frame: &mut FuncState) {
        use super::reg::{BaseType, RegState};
        match self.options.kind {
            ProgramKind::Raw { data_size } => {
                let mut mem = RegState::pointer(RegType::of(BaseType::Mem));
                mem.mem_size = data_size;
                frame.regs[1] = mem;
                frame.regs[2] = RegState::known(data_size as u64);
            }
            _ => {
                frame.regs[1] = RegState::pointer(RegType::of(BaseType::Ctx));
            }
        }
    }
}
