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
use crate::memory::{Region, Regions};
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
    pub(crate) fn run_xdp_batch(
        &self,
        space: &mut RunSpace,
        packets: XdpPackets<'_>,
        shared: &XdpBatchShared<'_>,
        mut each: impl FnMut(usize, Result<RunOutput, Trap>),
    ) {
        let runs = packets.lengths.len();
        if runs == 0 {
            return;
        }
        let packet = |i: usize| packets.packet(i);
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
        let packets = XdpPackets {
            later_zero,
            ..packets
        };
        let mut entry = Some(first);
        // After the first packet, the runs go through the JIT's loop of machine code where it can
        // (see `loop_packets`), and one by one below where it cannot.
        #[cfg(target_arch = "x86_64")]
        let looped = self.loops_xdp_batch(limits, stack_top);
        let mut index = 0;
        while index < runs {
            #[cfg(target_arch = "x86_64")]
            if looped && entry.is_none() {
                let ran = self.loop_packets(&mut runs_on_env, &mut env, &packets, index, &mut each);
                if let Some((next, left)) = ran {
                    index = next;
                    if let Some(result) = left {
                        let held = env.state.release_lock();
                        each(index, Program::unlocked(result, held));
                        after_run(&mut env, &standing);
                        index += 1;
                    }
                    continue;
                }
                // The block is not of the run's regions (a helper moved one): this packet runs
                // through `Home::run`, which fills it in again.
            }
            let data = packet(index);
            if let Err(trap) = limits.check(0, 0) {
                each(index, Err(trap));
                index += 1;
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
            each(index, Program::unlocked(result, held));
            after_run(&mut env, &standing);
            index += 1;
        }
        space.state.recycle(self.options.prog_type);
        if let Some(maps) = &mut space.maps {
            maps.end_run();
        }
    }
}

/// What a run may leave behind that the next must not see, let go of; `standing`: the region
/// table every run starts with and the count of its added regions.
fn after_run(env: &mut RunEnv<'_>, standing: &(Regions, usize)) {
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

/// The packets of an XDP batch: packet `i` is `lengths[i]` bytes at `starts[i]` in `bytes` (the
/// caller checked that each lies inside it).
#[derive(Clone, Copy)]
pub(crate) struct XdpPackets<'a> {
    pub bytes: &'a [u8],
    pub lengths: &'a [u32],
    pub starts: &'a [usize],
    /// The stack bytes zeroed before each run after the first (`Program::stack_zero_within`).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    later_zero: (usize, usize),
}

impl<'a> XdpPackets<'a> {
    pub(crate) fn new(bytes: &'a [u8], lengths: &'a [u32], starts: &'a [usize]) -> Self {
        XdpPackets {
            bytes,
            lengths,
            starts,
            later_zero: (0, 0),
        }
    }

    fn packet(&self, i: usize) -> &'a [u8] {
        &self.bytes[self.starts[i]..][..self.lengths[i] as usize]
    }
}

/// Packets the JIT's loop of machine code runs per entry: its results wait in an array of this
/// many on the stack before they are handed on.
#[cfg(target_arch = "x86_64")]
const LOOP_CHUNK: usize = 256;

impl Program {
    #[cfg(target_arch = "x86_64")]
    /// Whether the packets after the first of a batch on `run_xdp_batch`'s road can go through
    /// the JIT's loop of machine code (`jit::Loop`): compiled code, unmetered (the loop fills in
    /// the budget once and reports no count), no run limits (checked before each packet by the
    /// Rust loop), a stack top on a word (the loop zeroes whole words).
    fn loops_xdp_batch(&self, limits: &crate::limits::RunLimits, stack_top: u64) -> bool {
        let jit = matches!(self.prepared, super::PreparedEngine::Jit(_));
        jit && !self.metered && !limits.is_active() && stack_top.is_multiple_of(8)
    }

    /// Packets from `index` on (at most `LOOP_CHUNK`) through the JIT's loop of machine code,
    /// each recorded run handed to `each`: the index of the first packet not handed on, and the
    /// result of its run when it ran (the loop left it to Rust: the caller hands it on and lets
    /// go of what it left behind). `None` when nothing ran (no block to loop on).
    #[cfg(target_arch = "x86_64")]
    fn loop_packets(
        &self,
        runs_on_env: &mut RepeatedRuns,
        env: &mut RunEnv<'_>,
        packets: &XdpPackets<'_>,
        index: usize,
        each: &mut impl FnMut(usize, Result<RunOutput, Trap>),
    ) -> Option<(usize, Option<Result<RunOutput, Trap>>)> {
        let frame = context::xdp::loop_frame(env.state)?;
        // Written by the loop before it is read (no zeroing: it was a `memset` per trip).
        let mut out = [std::mem::MaybeUninit::<(u64, u64)>::uninit(); LOOP_CHUNK];
        let end = packets.lengths.len().min(index + LOOP_CHUNK);
        // The words over the bytes to zero (inside the stack area: its top is on a word).
        let (below_top, zeroed) = packets.later_zero;
        let start = (env.stack_top - below_top as u64) & !7;
        let stop = (env.stack_top - below_top as u64 + zeroed as u64 + 7) & !7;
        let leak_below = match self.options.pointer_leaks {
            PointerLeaks::Refuse => runs_on_env.no_leak_below,
            _ => u64::MAX,
        };
        let mut lp = crate::jit::Loop {
            index: index as u64,
            end: end as u64,
            lengths: packets.lengths.as_ptr() as u64,
            starts: packets.starts.as_ptr() as u64,
            packets: packets.bytes.as_ptr() as u64,
            data: frame.data,
            written_end: frame.written_end,
            ctx_data_end: frame.ctx_data_end,
            frame_data_end: frame.frame_data_end,
            stack: start,
            stack_words: if zeroed == 0 { 0 } else { (stop - start) / 8 },
            leak_below,
            out: out.as_mut_ptr() as u64,
            memcpy: libc::memcpy as *const () as u64,
            memset: libc::memset as *const () as u64,
            ..Default::default()
        };
        let ended = {
            // The first LPM trie's read lock for the trip (its lookups take none of their own;
            // see `LpmTrie::pin_for_batch`), let go of before any result is handed on.
            let _pin = (self.maps.maps().iter())
                .find_map(|m| m.downcast::<crate::maps::lpm::LpmTrie>())
                .map(crate::maps::lpm::LpmTrie::pin_for_batch);
            // SAFETY: the packets lie in `bytes` (the caller checked), each of 14 to 3,520 bytes
            // (`runs_xdp_batch`), so that it fits the frame's linear part from `data`; the stack
            // words lie in the stack area (whole words around bytes of `stack_zero`); the frame and
            // its context are the run state's, alive for the batch.
            unsafe { runs_on_env.run_loop(self, env, &mut lp) }
        };
        if let Some(packet) = context::xdp::after_loop(env.state, lp.written_end) {
            env.packet = packet;
        }
        let ended = ended?;
        let next = lp.index as usize;
        for (k, out) in (index..next).zip(&out) {
            // SAFETY: the loop wrote a result for each packet it recorded (`index..next`).
            let (r0, pc) = unsafe { out.assume_init() };
            let run = RunOutput {
                r0,
                insn_count: 0,
                exit_pc: pc as usize,
            };
            each(k, Ok(run));
        }
        Some((
            next,
            match ended {
                crate::jit::LoopEnd::Done => None,
                crate::jit::LoopEnd::Left(result) => Some(result),
            },
        ))
    }
}
