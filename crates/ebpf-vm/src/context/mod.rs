//! Program types and their contexts: what r1 points to, which memory a run has, what a run hands
//! back, which helpers each type may call, and the load-time rewriting of context accesses.
//!
//! | type           | r1 (r2)                     | packet                    | helpers beyond the base set |
//! |----------------|-----------------------------|---------------------------|-----------------------------|
//! | `Raw`          | data address (r2 = length)  | the data, writable        | -                           |
//! | `SocketFilter` | `struct __sk_buff`          | the data, read-only       | skb_load_bytes, get_socket_cookie/uid, perf_event_output |
//! | `Tc`           | `struct __sk_buff` (tc)     | a copy, writable, resizable | skb_load/store_bytes, get_socket_cookie/uid, l3/l4_csum_replace, csum_diff, redirect, skb_change_*, skb_adjust_room, skb_pull_data, skb_vlan_push/pop, hash, ecn, skb_get/set_tunnel_key, perf_event_output |
//! | `Xdp`          | `struct xdp_md`             | a copy in an XDP frame    | csum_diff, xdp_adjust_head/meta/tail, xdp_load/store_bytes, redirect, perf_event_output |
//! | `Tracing`      | the caller's context bytes  | none                      | probe_read(_str), probe_write_user, get_func_ip, get_attach_cookie, get_stack(id), perf_event_output |
//! | `Tracepoint`, `RawTracepoint` | the caller's bytes, zero-extended to 8192 / 96 | none | as `Tracing` |
//!
//! The base set, for every type: the embedder's table (`ProgramOptions::helpers`, standard and map
//! helpers by default) plus trace_printk, tail_call, spin_lock/unlock, strtol/strtoul, snprintf,
//! loop, probe_read_user/kernel(_str) and get_current_task(_btf) (which read the run's address
//! space, `ContextInput::memory`), get_current_pid_tgid/uid_gid/comm (`ContextInput::process`) and
//! send_signal(_thread) (recorded in `ContextOutput::signals`, never sent), as Linux 6.18's
//! `bpf_base_func_proto` offers them to every type. A helper the embedder registered under a number wins over ours. Calling a helper the
//! type does not have is a load error naming the instruction, as in the kernel.

pub mod net;
pub mod pseudo_func;
pub mod redirect;
pub mod rewrite;
pub mod socket_filter;
pub mod tc;
pub mod tc_helpers;
pub mod tracing;
pub mod tunnel;
pub mod xdp;

use std::sync::{Arc, OnceLock};

use crate::analysis::{Analysis, Flow};
use crate::error::{ErrorCode, LoadError, Trap};
use crate::helpers::{self, HelperTable};
use crate::isa::Insn;
use crate::memory::{Region, Regions};
use crate::vm::ProgramType;

pub use crate::run_state::address_space::{AddressSpace, MemoryImage};
pub use crate::run_state::{layout, places, xdp_frags};
pub use crate::run_state::{ProcessInfo, RunState, SentSignal, SocketInfo};

/// The program-type inputs of a run, besides the data (see `Program::run_with_context`).
#[derive(Clone, Copy, Debug, Default)]
pub struct ContextInput<'a> {
    /// A context image: `struct __sk_buff` fields for socket filters, `struct xdp_md` for XDP
    /// (metadata size, ifindex, queue), the context bytes themselves for tracing programs.
    pub ctx: Option<&'a [u8]>,
    /// What the `get_current_*` helpers report.
    pub process: ProcessInfo,
    /// The socket the packet belongs to (`bpf_get_socket_cookie` / `_uid`; socket filter and
    /// tc); `None`: the packet has none (cookie 0, uid 65534, as in the kernel).
    pub socket: Option<SocketInfo>,
    /// What `bpf_jiffies64` returns; `None`: the kernel's count at its HZ on the engine's clock.
    pub jiffies: Option<u64>,
    /// The address space the probe-read helpers read (memory images at addresses; not the
    /// program's memory), typically given to tracing programs.
    pub memory: Option<&'a AddressSpace>,
    /// tc and XDP: the interfaces and routes `bpf_check_mtu`, `bpf_fib_lookup` and
    /// `bpf_clone_redirect` see (`net`); `None`: the test run's loopback and no routes.
    pub network: Option<&'a Arc<net::Network>>,
    /// tc: the tunnel metadata the packet arrived with (`bpf_skb_get_tunnel_key`); `None`: none,
    /// as in the kernel's test run.
    pub tunnel: Option<tunnel::TunnelInfo>,
}

/// The program-type outputs of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContextOutput {
    /// XDP: the packet after the run, `[data, data_end)` (moved and resized by the adjust helpers).
    pub packet: Option<Vec<u8>>,
    /// XDP: the metadata after the run, `[data_meta, data)`.
    pub meta: Option<Vec<u8>>,
    /// The context after the run: the `__sk_buff` image (socket filters; `cb[]` may have changed)
    /// or the `xdp_md` image as the kernel's test run returns it.
    pub ctx: Option<Vec<u8>>,
    /// tc: the whole `__sk_buff` as the program left it (`ctx` is the kernel's test-run view,
    /// which leaves out fields such as `tc_classid`).
    pub skb: Option<Vec<u8>>,
    /// tc and XDP: where the packet went, when the program returned the redirect action
    /// (`TC_ACT_REDIRECT`, `XDP_REDIRECT`) after a `bpf_redirect`.
    pub redirect: Option<redirect::Redirect>,
    /// tc: the copies of the packet `bpf_clone_redirect` sent, in order.
    pub clones: Vec<redirect::Clone>,
    /// `bpf_perf_event_output` records the run dropped because its perf buffer was full.
    pub perf_lost: u64,
    /// The signals the program asked `bpf_send_signal(_thread)` to send (nothing is signalled).
    pub signals: Vec<SentSignal>,
    /// tc: the tunnel metadata the program set with `bpf_skb_set_tunnel_key`, if it did.
    pub tunnel: Option<tunnel::TunnelInfo>,
    /// Tracing: the writable memory images as the run left them (`bpf_probe_write_user`).
    pub memory: Vec<MemoryImage>,
}

/// Where a run starts: r1-r5, and the packet that `LD_ABS`/`LD_IND` read.
pub struct Entry {
    pub args: [u64; 5],
    pub packet: (u64, u64),
}

/// The context layout whose pointer fields are rewritten at load, if the type has one.
pub fn layout_of(prog_type: ProgramType) -> Option<&'static layout::CtxLayout> {
    match prog_type {
        ProgramType::SocketFilter => Some(&layout::SKB),
        ProgramType::Tc => Some(&layout::TC_SKB),
        ProgramType::CgroupSkb => Some(&layout::CGROUP_SKB),
        ProgramType::Xdp => Some(&layout::XDP),
        ProgramType::Raw
        | ProgramType::Tracing
        | ProgramType::Tracepoint
        | ProgramType::RawTracepoint => None,
    }
}

/// The helpers a program type adds to the base set, made once per type: every load used to build
/// them again (a name and a closure per helper), which was a third of a small program's load time.
fn type_helpers(prog_type: ProgramType) -> &'static HelperTable {
    static TABLES: [OnceLock<HelperTable>; 5] = [const { OnceLock::new() }; 5];
    let slot = match prog_type {
        ProgramType::Raw => 0,
        // cgroup_skb programs have a socket filter's helpers (skb_ecn_set_ce, the socket
        // lookups and the cgroup ids it adds in the kernel are not implemented).
        ProgramType::SocketFilter | ProgramType::CgroupSkb => 1,
        ProgramType::Xdp => 2,
        // The tracing types share their helpers.
        ProgramType::Tracing | ProgramType::Tracepoint | ProgramType::RawTracepoint => 3,
        ProgramType::Tc => 4,
    };
    TABLES[slot].get_or_init(|| {
        let mut ours = HelperTable::new();
        helpers::trace::register(&mut ours);
        helpers::strings::register(&mut ours);
        helpers::callbacks::register(&mut ours);
        helpers::locks::register(&mut ours);
        helpers::tail_call::register(&mut ours);
        helpers::probe_read::register(&mut ours);
        helpers::process::register(&mut ours);
        helpers::signal::register(&mut ours);
        match prog_type {
            ProgramType::Raw => {}
            ProgramType::SocketFilter | ProgramType::CgroupSkb => {
                helpers::packet::register_skb(&mut ours);
                helpers::socket::register(&mut ours);
                helpers::perf::register(&mut ours);
            }
            ProgramType::Tc => {
                helpers::packet::register_skb(&mut ours);
                helpers::socket::register(&mut ours);
                helpers::packet::register_csum(&mut ours);
                helpers::perf::register(&mut ours);
                tc_helpers::register(&mut ours);
                redirect::register(&mut ours);
                redirect::register_tc(&mut ours);
                net::register(&mut ours);
                tunnel::register(&mut ours);
            }
            ProgramType::Xdp => {
                helpers::packet::register_xdp(&mut ours);
                redirect::register(&mut ours);
                redirect::register_xdp(&mut ours);
                net::register(&mut ours);
                helpers::packet::register_csum(&mut ours);
                helpers::perf::register(&mut ours);
            }
            ProgramType::Tracing | ProgramType::Tracepoint | ProgramType::RawTracepoint => {
                helpers::probe_read::register_compat(&mut ours);
                helpers::perf::register(&mut ours);
                helpers::stack::register(&mut ours);
            }
        }
        ours
    })
}

/// Every helper the engine offers some program type: the standard table and what each type adds.
pub fn all_helpers() -> HelperTable {
    let base = HelperTable::standard();
    let mut all = HelperTable::new();
    for t in ProgramType::ALL {
        for h in helpers_for(t, &base).iter() {
            if !all.contains(h.id) {
                all.insert(h.clone());
            }
        }
    }
    all
}

/// A helper the engine offers to some program type (the standard table and the types' own), made
/// once: verified loads use it to refuse a helper of another type in the kernel's words.
pub fn engine_helper(id: u32) -> Option<&'static crate::helpers::Helper> {
    static ALL: OnceLock<HelperTable> = OnceLock::new();
    ALL.get_or_init(all_helpers).get(id)
}

/// The helper table of a program of `prog_type`: the embedder's `base` plus the helpers the type
/// has (where `base` has nothing under that number).
pub fn helpers_for(prog_type: ProgramType, base: &HelperTable) -> HelperTable {
    let mut table = base.clone();
    table.add_missing(type_helpers(prog_type));
    table
}

/// Load-time work of a program type on validated, relocated instructions (`analysis` is theirs):
/// refuses legacy packet loads where the kernel does, and rewrites context accesses, recording
/// their fields in the side table. For a verified program, `proved_bases` (by slot) says which
/// accesses go through the context pointer (`rewrite::rewrite_ctx_accesses`).
pub fn prepare_program(
    prog_type: ProgramType,
    insns: &mut [Insn],
    analysis: &mut Analysis,
    proved_bases: Option<&[rewrite::CtxBase]>,
) -> Result<(), LoadError> {
    // may_access_skb: socket filters and tc only.
    if matches!(prog_type, ProgramType::Xdp | ProgramType::CgroupSkb) || prog_type.is_tracing() {
        if let Some(i) = analysis
            .cfg
            .flows
            .iter()
            .position(|f| *f == Flow::PacketLoad)
        {
            return Err(LoadError::at(
                ErrorCode::Einval,
                analysis.program.slot(i),
                "BPF_LD_[ABS|IND] instructions not allowed for this program type",
            ));
        }
    }
    if let Some(layout) = layout_of(prog_type) {
        rewrite::rewrite_ctx_accesses(
            insns,
            &analysis.program,
            &analysis.cfg.flows,
            &analysis.functions,
            &mut analysis.aux,
            layout,
            proved_bases,
        )?;
    }
    Ok(())
}

/// The data of a run: writable in place (what a raw program gets, and may change), or only read
/// (the other types copy it into memory of their own or, socket filters, map it read-only), so
/// that a batch can hand them its packets without copying them first.
pub enum RunData<'a> {
    Writable(&'a mut [u8]),
    ReadOnly(&'a [u8]),
}

impl RunData<'_> {
    pub fn len(&self) -> usize {
        self.bytes().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn bytes(&self) -> &[u8] {
        match self {
            RunData::Writable(d) => d,
            RunData::ReadOnly(d) => d,
        }
    }
}

/// Builds the context and packet memory of a run and adds their regions (after the stack).
pub fn prepare_run(
    prog_type: ProgramType,
    data: RunData<'_>,
    input: &ContextInput<'_>,
    state: &mut RunState,
    regions: &mut Regions,
) -> Result<Entry, Trap> {
    state.process = input.process;
    state.socket = input.socket;
    state.jiffies = input.jiffies;
    state.network = input.network.cloned();
    state.clones.clear();
    state.tunnel = input.tunnel;
    if let Some(memory) = input.memory {
        state.address_space = memory.clone();
    }
    match (prog_type, data) {
        (ProgramType::Raw, RunData::Writable(data)) => Ok(prepare_raw(data, state, regions)),
        (ProgramType::Raw, RunData::ReadOnly(_)) => Err(Trap::invalid_input(
            "a raw program runs on its data in place: the data must be writable",
        )),
        (ProgramType::SocketFilter, data) => {
            socket_filter::prepare(data.bytes(), input.ctx, &[], state, regions)
        }
        (ProgramType::CgroupSkb, data) => socket_filter::prepare(
            data.bytes(),
            input.ctx,
            socket_filter::CGROUP_SKB_WRITABLE,
            state,
            regions,
        ),
        (ProgramType::Tc, data) => tc::prepare(data.bytes(), input.ctx, state, regions),
        (ProgramType::Xdp, data) => xdp::prepare(data.bytes(), input.ctx, state, regions),
        (ProgramType::Tracing, _) => tracing::prepare(input.ctx, None, state, regions),
        (ProgramType::Tracepoint, _) => tracing::prepare(
            input.ctx,
            Some(tracing::TRACEPOINT_CTX_SIZE),
            state,
            regions,
        ),
        (ProgramType::RawTracepoint, _) => tracing::prepare(
            input.ctx,
            Some(tracing::RAW_TRACEPOINT_CTX_SIZE),
            state,
            regions,
        ),
    }
}

/// r1 of a raw run on `data`: its address, or 0 for no data (an empty slice's pointer is
/// dangling, no address of the run).
#[inline(always)]
pub(crate) fn raw_data_address(data: &mut [u8]) -> u64 {
    if data.is_empty() {
        0
    } else {
        data.as_mut_ptr() as u64
    }
}

/// A raw run: r1 = the data (a writable region), r2 = its length.
fn prepare_raw(data: &mut [u8], state: &mut RunState, regions: &mut Regions) -> Entry {
    let addr = raw_data_address(data);
    regions.set_data(Region::from_mut_slice(data));
    state.data = (addr, data.len() as u64);
    Entry {
        args: [addr, data.len() as u64, 0, 0, 0],
        packet: (addr, data.len() as u64),
    }
}

/// What a finished run that returned `r0` hands back besides r0.
pub fn finish_run(state: &RunState, r0: u64) -> ContextOutput {
    let out = ContextOutput {
        perf_lost: state.perf_lost,
        signals: state.signals.clone(),
        ..ContextOutput::default()
    };
    match state.prog_type {
        ProgramType::Raw => out,
        ProgramType::Tracing | ProgramType::Tracepoint | ProgramType::RawTracepoint => {
            ContextOutput {
                memory: state.address_space.writable_images(),
                ..out
            }
        }
        ProgramType::SocketFilter | ProgramType::CgroupSkb => ContextOutput {
            ctx: socket_filter::ctx_out(state),
            ..out
        },
        ProgramType::Tc => ContextOutput {
            packet: state.tc.as_ref().map(|skb| skb.packet()),
            ctx: tc::ctx_out(state),
            skb: tc::skb_out(state),
            redirect: redirect::redirect_of(state, r0),
            clones: state.clones.clone(),
            tunnel: state.tunnel.filter(|t| t.tx),
            ..out
        },
        ProgramType::Xdp => match &state.xdp {
            Some(frame) => ContextOutput {
                packet: Some(frame.packet()),
                meta: Some(frame.meta()),
                ctx: Some(xdp::ctx_out(frame)),
                redirect: redirect::redirect_of(state, r0),
                ..out
            },
            None => out,
        },
    }
}
