//! The run ABI both engines share, below the maps, helpers and contexts: what a frame is
//! ([`STACK_FRAME_SIZE`], [`MAX_CALL_FRAMES`], [`STACK_SIZE`]), how a run ends ([`RunOutput`],
//! and the trap constructors [`trap`] and [`budget_trap`]), what a helper call returns
//! ([`HelperReturn`]), the program types ([`ProgramType`], [`AttachType`]) that contexts and
//! helpers are chosen by, and what a tail call needs of its target ([`TailCallTarget`]).
//!
//! The run environment itself ([`env::RunEnv`], with `call_helper` and `memory_trap`) holds the
//! maps, helpers and per-run state of the layers above, so it is the one part of the ABI that
//! sits above them, just below the engines (`tests/layering.rs` places `vm::env` there).

pub mod env;
pub mod errno;

use std::any::Any;
use std::sync::Arc;

use crate::error::{Trap, TrapKind};

/// Bytes of stack per call frame, as in the kernel.
pub const STACK_FRAME_SIZE: usize = 512;
/// The most call frames that may be live at once (the main program included), as in the kernel.
pub const MAX_CALL_FRAMES: usize = 8;
/// The whole stack area of a run: one frame for each possible level of bpf-to-bpf call.
pub const STACK_SIZE: usize = STACK_FRAME_SIZE * MAX_CALL_FRAMES;

/// How a run ended normally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunOutput {
    pub r0: u64,
    pub insn_count: u64,
    /// The instruction the run left by: the main frame's `exit`, or the legacy packet load
    /// outside the packet that ended the program.
    pub exit_pc: usize,
}

/// What a helper call returned: r0, and the instructions of the run's budget the helper used
/// besides its call instruction (callbacks, charged work; see `HelperContext::charged`), which
/// the engine adds to its count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HelperReturn {
    pub r0: u64,
    pub charged: u64,
}

/// A trap of `kind` at instruction `pc`, `count` instructions into the run, with no place.
pub fn trap(kind: TrapKind, pc: usize, addr: u64, size: u32, count: u64, message: String) -> Trap {
    Trap {
        kind,
        pc,
        addr,
        size,
        insn_count: count,
        message,
        place: None,
    }
}

/// The trap of a run that used up its instruction budget at instruction `pc`.
pub fn budget_trap(pc: usize, budget: u64) -> Trap {
    trap(
        TrapKind::BudgetExhausted,
        pc,
        0,
        0,
        budget,
        format!("instruction budget of {budget} exhausted"),
    )
}

/// What r1 (and r2) hold at entry, which helpers the program has, and what a run hands back
/// (see `context/mod.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ProgramType {
    /// r1 = address of the input data, r2 = its length (the conformance suite's convention).
    #[default]
    Raw,
    /// r1 = `struct __sk_buff` over the (read-only) data; r0 = bytes of the packet to keep.
    SocketFilter,
    /// r1 = `struct __sk_buff` with tc's rules (`sched_cls`/`sched_act`) over a copy of the data
    /// from the Ethernet header on, writable and resizable by helpers; r0 = a tc action.
    Tc,
    /// r1 = `struct xdp_md` over a copy of the data in an XDP frame; r0 = an XDP action.
    Xdp,
    /// r1 = `struct __sk_buff` with cgroup_skb's rules (`cg_skb_is_valid_access`) over the
    /// (read-only) data, as a socket filter's but with `mark`, `priority` and `tstamp`
    /// writable; r0 = a verdict (1 pass, 0 drop; egress programs also 2 and 3).
    CgroupSkb,
    /// r1 = the context bytes the run supplies (kprobe, fentry style; verified as a kprobe's
    /// `struct pt_regs`).
    Tracing,
    /// r1 = a tracepoint's record as the run supplies it, zero-extended to
    /// `PERF_MAX_TRACE_SIZE` (8192) bytes, the most the kernel lets the program read.
    Tracepoint,
    /// r1 = a raw tracepoint's u64 arguments as the run supplies them, zero-extended to
    /// `MAX_BPF_FUNC_ARGS` (12) of them.
    RawTracepoint,
}

/// The kernel's `expected_attach_type`, where it changes what a program may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachType {
    /// `BPF_XDP_DEVMAP`: an XDP program a devmap runs on transmit, which may read
    /// `xdp_md.egress_ifindex` (libbpf's `SEC("xdp/devmap")`).
    XdpDevmap,
    /// `BPF_CGROUP_INET_EGRESS`: a cgroup_skb program on egress, which may return 0 to 3
    /// (libbpf's `SEC("cgroup_skb/egress")`); without it, ingress, 0 or 1.
    CgroupInetEgress,
}

impl ProgramType {
    /// Every program type, in declaration order.
    pub const ALL: [ProgramType; 8] = [
        ProgramType::Raw,
        ProgramType::SocketFilter,
        ProgramType::Tc,
        ProgramType::Xdp,
        ProgramType::CgroupSkb,
        ProgramType::Tracing,
        ProgramType::Tracepoint,
        ProgramType::RawTracepoint,
    ];

    /// The tracing types: the context is the caller's bytes, read only, with no packet.
    pub fn is_tracing(self) -> bool {
        matches!(
            self,
            ProgramType::Tracing | ProgramType::Tracepoint | ProgramType::RawTracepoint
        )
    }
}

/// What `bpf_tail_call` needs of the program it jumps to: its type, which must be the caller's.
/// `program.rs` implements it for `Program` and runs the chain; the helper and the prog array
/// (which holds opaque references) know nothing more of programs.
pub trait TailCallTarget: Any + Send + Sync {
    fn prog_type(&self) -> ProgramType;
    /// The target as `Any`, for the layer that runs it (`Program::run_chain`).
    fn as_any(&self) -> &dyn Any;
}

/// Turns a prog array's opaque reference into a tail-call target (`None`: not a program), as the
/// layer that runs programs provides it to a run (`RunState::tail_call_target`).
pub type TailCallTargetOf = fn(Arc<dyn Any + Send + Sync>) -> Option<Arc<dyn TailCallTarget>>;
