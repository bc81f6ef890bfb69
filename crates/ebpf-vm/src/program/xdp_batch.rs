//! Runs of a verified XDP program, one packet after another on one set-up: a batch that wants
//! r0 only (`runBatchRetvals`, and so `filterPcap` of XDP programs), as the kernel's
//! `BPF_PROG_TEST_RUN` repeat loop sets up once.
//!
//! What `run_on` does per run is done once for the batch here: the run state and its inputs, the
//! region table (the stack, the frame, the context, the global data, and the value areas of the
//! program's maps, which lookups then need not add), the map table, the run environment and the
//! JIT's run block (`jit::Repeat`). Per packet, the frame of the run before is made the packet's
//! (`context::xdp::refill`: the bytes that run can have written zeroed, the packet written, the
//! bounds reset), the stack bytes the program may read before writing are zeroed, the program runs,
//! and what a run may leave behind (a held lock, ring buffer reservations, inner maps, a redirect)
//! is let go of.
//!
//! Only verified programs come here: their stores into the frame are proved to lie inside the
//! packet and its metadata (so `refill` need zero only those bytes), and every access through a map
//! value pointer is proved to follow a lookup of this run, so the value areas being regions from the
//! run's start changes no outcome. With the areas standing, a lookup need add no region, so the
//! JIT's code looks into an array itself and calls a hash map's or LPM trie's lookup directly, as
//! the kernel's JIT does (`jit/compile/lookup.rs`; `RunMaps::standing_areas` tells it). Helpers that move the packet (`bpf_xdp_adjust_head`, `_tail`,
//! `_meta`) work as in a single run: they move the bounds of this run's frame, which `refill` resets
//! and whose bytes it zeroes (`touched` follows every move). Everything else takes the general road
//! (`run_on` per packet): checked programs, programs that tail-call, call functions through
//! pointers (callbacks, `callx`), print, count coverage; a context image, an address space or a
//! tunnel given with the batch; a packet of fewer than 14 or more than 3,520 bytes (fragments). The
//! outcome of each run is the one `run_on` gives (tests/batch_runs.rs compares them on both
//! engines). One difference, for programs that store a pointer into a map as a number and return
//! or copy out that number in a later run: with the value areas standing, the pointer-leak check
//! refuses such an address even in a run that did not look into its map (a single run refuses it
//! only after such a lookup).

use crate::analysis::Flow;
use crate::context::{self, ContextInput, ProcessInfo, RunData};
use crate::error::Trap;
use crate::helpers::tail_call::BPF_TAIL_CALL;
use crate::maps::added_regions::Added;
use crate::memory::Region;
use crate::pointer_leaks::PointerLeaks;
use crate::run_space::RunSpace;
use crate::run_state::xdp::{ETH_HLEN, XDP_LINEAR_MAX};
use crate::vm::env::RunEnv;
use crate::vm::{RunOutput, STACK_FRAME_SIZE, STACK_SIZE};

use super::straight::RepeatedRuns;
use super::{Program, ProgramType};

/// What every run of an XDP batch shares (of `batch::BatchInput`).
pub(crate) struct XdpBatchShared<'a> {
    pub process: ProcessInfo,
    pub network: Option<&'a std::sync::Arc<crate::context::net::Network>>,
    pub budget: Option<u64>,
    pub limits: &'a crate::limits::RunLimits,
}

impl Program {
    /// Whether a batch of packets of `lengths` can take `run_xdp_batch` (see the module's
    /// comment); `plain`: the batch wants r0 only and brings no context image, address space,
    /// tunnel nor wire lengths.
    pub(crate) fn runs_xdp_batch(&self, lengths: &[u32], plain: bool) -> bool {
        self.options.prog_type == ProgramType::Xdp
            && self.verifier.is_some()
            && plain
            && self.coverage.is_none()
            && self.callbacks.is_none()
            && !self.prints
            && !(self.analysis.cfg.flows.iter())
                .any(|f| matches!(f, Flow::Helper { id: BPF_TAIL_CALL } | Flow::CallX))
            && (lengths.iter()).all(|&l| (ETH_HLEN..=XDP_LINEAR_MAX).contains(&(l as u64)))
    }

    /// Runs `runs` packets (`packet(i)`) with what every run of the batch shares (`shared`)
    /// and hands each outcome to `each`. Only for a batch that `runs_xdp_batch`.
    pub(crate) fn run_xdp_batch<'p>(
        &self,
        space: &mut RunSpace,
        runs: usize,
        packet: impl Fn(usize) -> &'p [u8],
        shared: &XdpBatchShared<'_>,
        mut each: impl FnMut(usize, &'p [u8], Result<RunOutput, Trap>),
    ) {
        if runs == 0 {
            return;
        }
        let limits = shared.limits;
        let stack_bytes = space.stack_bytes();
        let reach = self.stack_frames * STACK_FRAME_SIZE;
        let stack_top = stack_bytes + STACK_SIZE as u64;
        let stack = Region::new(stack_top - reach as u64, reach as u64, true);
        // After the first run, only the stack a run can touch is zeroed again: a verified program
        // with one frame reaches (reads, writes, hands to helpers) no byte below its stack depth
        // (the verifier's, which counts every access as the kernel's does), so the bytes under
        // it stay as the first run's zeroing left them.
        let later_zero = match &self.verifier {
            Some(v) if self.stack_frames == 1 && v.stack_depth.len() == 1 => {
                self.stack_zero_within(v.stack_depth[0] as usize)
            }
            _ => self.stack_zero,
        };
        // SAFETY: the top of the stack area `space` owns; `later_zero` is part of `stack_zero`.
        let zero_stack = |first: bool| unsafe {
            match first {
                true => self.zero_stack(stack_top),
                false => super::zero_stack_bytes(stack_top, later_zero),
            }
        };
        let RunSpace {
            state,
            regions,
            maps,
            ..
        } = space;
        state.prog_type = self.options.prog_type;
        state.packet_stores_proved = true;
        state.stack = (stack_bytes, STACK_SIZE as u64);
        state.limits = limits.clone();
        state.refuse_pointer_leaks = self.options.pointer_leaks == PointerLeaks::Refuse;
        // The first packet's frame and context, built as a single run builds them; later packets
        // refill that frame.
        regions.clear();
        regions.set_stack(stack);
        let cx = ContextInput {
            ctx: None,
            process: shared.process,
            socket: None,
            jiffies: None,
            memory: None,
            network: shared.network,
            tunnel: None,
        };
        let first = RunData::ReadOnly(packet(0));
        let first = context::prepare_run(ProgramType::Xdp, first, &cx, state, regions)
            .expect("runs_xdp_batch checked the packet");
        let maps = match maps {
            Some(maps) if maps.is_for(self.maps.list()) => maps,
            slot => slot.insert(self.maps.run()),
        };
        // The regions every run has from its start (see the module's comment); a run that adds
        // one (an inner map's values, a ring buffer record it keeps) gets them back for the next.
        for r in &self.maps.regions {
            regions.push(*r);
        }
        let areas: Vec<(Region, u64)> = (self.maps.maps().iter())
            .filter_map(|m| {
                Some((
                    crate::helpers::maps::value_region(m)?,
                    crate::maps::handle(m),
                ))
            })
            .collect();
        for &(area, map) in &areas {
            if regions.push(area) {
                state
                    .added
                    .add(area.start, area.len, Added::MapValue { map });
            }
        }
        maps.set_standing_areas();
        let standing = (regions.clone(), state.added.len());
        let mut env = RunEnv {
            helpers: &self.helpers,
            regions,
            stack_top,
            budget: self.engine_budget(shared.budget.unwrap_or(self.options.budget)),
            packet: (0, 0),
            maps,
            state,
            function_runner: None,
        };
        // Below the first page a return value is no address (`is_host_address`): an XDP verdict
        // needs no call to tell.
        let mut runs_on_env = RepeatedRuns::default();
        runs_on_env.no_leak_below = crate::pointer_leaks::FIRST_PAGE;
        let mut entry = Some(first);
        for index in 0..runs {
            let data = packet(index);
            if let Err(trap) = limits.check(0, 0) {
                each(index, data, Err(trap));
                continue;
            }
            let first = entry.is_some();
            let entry = match entry.take() {
                Some(first) => first,
                None => context::xdp::refill(env.state, data).expect("a frame of the batch"),
            };
            zero_stack(first);
            env.packet = entry.packet;
            let result = runs_on_env.run(self, &mut env, entry.args);
            let held = env.state.release_lock();
            each(index, data, Program::unlocked(result, held));
            // What a run may leave behind that the next must not see.
            env.maps.end_batch_run();
            let state = &mut *env.state;
            state.redirect = None;
            state.pending_trap = None;
            state.perf_lost = 0;
            if state.added.len() != standing.1 {
                env.regions.clone_from(&standing.0);
                state.added.truncate(standing.1);
            }
        }
        space.state.recycle(self.options.prog_type);
        if let Some(maps) = &mut space.maps {
            maps.end_run();
        }
    }
}
