//! Runs of a socket filter that calls no helper, one packet after another on one set-up: what a
//! compiled filter expression or a classic BPF program is (`filterPcap`, `runBatchRetvals`).
//!
//! Such a run can change nothing but its stack and the context's `cb[]`, and its memory is its
//! stack, the packet and the context, so most of what `run_on` does per run (a fresh run state,
//! the region table, the map table, the context buffer from the pool, recycling them after) is
//! done once for the whole batch here. Each packet still runs on memory as fresh as a single
//! run's: the stack bytes the program may read before writing are zeroed (as `run_on` zeroes
//! them), the whole context is written back from the batch's image and then gets the packet's
//! fields (`socket_filter::place_packet`, as `prepare` writes them), and the packet region is the
//! packet's own. The outcome of each run is the one `run_on` gives (tests/batch_runs.rs compares
//! them on both engines).

use crate::analysis::Flow;
use crate::context::layout::skb as off;
use crate::context::socket_filter::{image, push_regions, record_packet, write_packet};
use crate::error::Trap;
use crate::limits::RunLimits;
use crate::memory::Region;
use crate::pointer_leaks::PointerLeaks;
use crate::run_space::RunSpace;
use crate::vm::env::{Entry, RunEnv};
use crate::vm::{RunOutput, STACK_FRAME_SIZE, STACK_SIZE};

use super::{refuse_exit_leak, PreparedEngine, Program, ProgramType};

impl Program {
    /// Whether runs of this program with the context image `ctx` can take `run_straight`: a
    /// socket filter with no helper call (`callx` included), no map, no global data and no
    /// coverage counters, and an image that fits `struct __sk_buff`.
    pub(crate) fn runs_straight(&self, ctx: Option<&[u8]>) -> bool {
        self.options.prog_type == ProgramType::SocketFilter
            && self.maps.list().is_none()
            && self.maps.regions.is_empty()
            && self.coverage.is_none()
            && ctx.is_none_or(|c| c.len() <= off::SIZE as usize)
            && !(self.analysis.cfg.flows.iter())
                .any(|f| matches!(f, Flow::Helper { .. } | Flow::CallX))
    }

    /// Runs `runs` packets (`packet(i)`: the bytes and the length on the wire, `__sk_buff.len`
    /// where larger) with the context image `ctx`, and hands each outcome to `each`. Only for a
    /// program that `runs_straight` with this image.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run_straight<'p>(
        &self,
        space: &mut RunSpace,
        runs: usize,
        packet: impl Fn(usize) -> (&'p [u8], u32),
        ctx: Option<&[u8]>,
        limits: &RunLimits,
        budget: Option<u64>,
        mut each: impl FnMut(usize, &'p [u8], Result<RunOutput, Trap>),
    ) {
        debug_assert!(self.runs_straight(ctx));
        let stack_bytes = space.stack_bytes();
        let reach = self.stack_frames * STACK_FRAME_SIZE;
        let stack_top = stack_bytes + STACK_SIZE as u64;
        let stack = Region::new(stack_top - reach as u64, reach as u64, true);
        let RunSpace { state, regions, .. } = space;
        state.prog_type = self.options.prog_type;
        state.packet_stores_proved = self.verifier.is_some();
        state.stack = (stack_bytes, STACK_SIZE as u64);
        state.limits = limits.clone();
        state.refuse_pointer_leaks = self.options.pointer_leaks == PointerLeaks::Refuse;
        let buffer = image(state.spare_ctx.take(), ctx).expect("runs_straight checked the image");
        let template = buffer.read(0, off::BUFFER_SIZE as u64);
        let cb: [u8; 20] = template[off::CB as usize..][..20].try_into().expect("cb[]");
        let word = |at: u32| u32::from_le_bytes(template[at as usize..][..4].try_into().unwrap());
        let (len, protocol) = (word(off::LEN), word(off::PROTOCOL));
        // The stack and the context parts stay for the whole batch; each packet sets the data.
        regions.clear();
        regions.set_stack(stack);
        push_regions(regions, buffer.addr, (0, 0), &[]);
        state.ctx = Some(buffer);
        // The lowest address of the run but the packet's: the stack area and the context parts
        // (a straight run has no other memory).
        debug_assert_eq!(regions.len(), 1 + regions.context().len());
        let lowest = (regions.context().iter())
            .map(|r| r.start)
            .fold(stack_bytes.min(stack.start), u64::min);
        let mut maps = self.maps.run();
        let mut env = RunEnv {
            helpers: &self.helpers,
            regions,
            stack_top,
            budget: self.engine_budget(budget.unwrap_or(self.options.budget)),
            packet: (0, 0),
            maps: &mut maps,
            state,
            function_runner: None,
        };
        let mut runs_on_env = RepeatedRuns::default();
        for index in 0..runs {
            let (data, wire) = packet(index);
            if let Err(trap) = limits.check(0, 0) {
                each(index, data, Err(trap));
                continue;
            }
            // SAFETY: the top of the stack area `space` owns.
            unsafe { self.zero_stack(stack_top) };
            // The only bytes of the context a run may write are `cb[]` (the one writable part,
            // `push_regions`); `len` and `protocol` were set for the packet before.
            let buffer = env.state.ctx.as_ref().expect("the batch's context");
            buffer.write(off::CB as u64, &cb);
            buffer.write_u32(
                off::LEN,
                if wire as usize > data.len() {
                    wire
                } else {
                    len
                },
            );
            buffer.write_u32(off::PROTOCOL, protocol);
            // `place_packet`, the context left where it is.
            let (entry, ctx_addr) = (write_packet(buffer, data), buffer.addr);
            record_packet(env.state, ctx_addr, entry.packet);
            (env.regions).set_data(Region::new(entry.packet.0, entry.packet.1, false));
            env.packet = entry.packet;
            // No address of the run lies below the lowest of its regions: most return values
            // (0, or a length to keep) need no search of the table.
            runs_on_env.no_leak_below = match entry.packet {
                (_, 0) => lowest,
                (at, _) => lowest.min(at),
            };
            let result = runs_on_env.run(self, &mut env, entry.args);
            each(index, data, result);
        }
        space.state.recycle(self.options.prog_type);
    }
}

/// Runs of a program's main entry one after another on one environment (a batch on one set-up):
/// compiled code keeps its run block from run to run (`jit::Repeat`), the interpreter runs as
/// usual; a run that ends with a host address in r0 traps instead when the program refuses
/// pointer leaks, as in `run_chain`.
#[derive(Default)]
pub(super) struct RepeatedRuns {
    #[cfg(target_arch = "x86_64")]
    block: Option<crate::jit::Repeat>,
    /// A return value below this is no address of the run (below its lowest region), so needs no
    /// search for a leak; 0 (the default) searches for every value.
    pub(super) no_leak_below: u64,
}

impl RepeatedRuns {
    pub(super) fn run(
        &mut self,
        program: &Program,
        env: &mut RunEnv<'_>,
        args: [u64; 5],
    ) -> Result<RunOutput, Trap> {
        let (prepared, insns) = (&program.prepared, &program.insns);
        #[cfg(target_arch = "x86_64")]
        let repeated = match prepared {
            PreparedEngine::Jit(jit) => {
                if self.block.is_none() {
                    self.block = jit.repeat(env);
                }
                (self.block.as_mut()).map(|block| jit.run_repeat(block, insns, env, args))
            }
            _ => None,
        };
        #[cfg(not(target_arch = "x86_64"))]
        let repeated = None;
        let result = repeated.unwrap_or_else(|| prepared.run_from(insns, env, args, Entry::Main));
        self.finish(program, env, result)
    }

    /// Packets of an XDP batch in the JIT's loop of machine code on the block of the runs
    /// before (`jit::JitProgram::run_loop`; the run that went back to Rust finished as `run`
    /// finishes it); `None` where there is no such block (the interpreter, or a block the JIT
    /// would not make) or it is not of the run's regions.
    ///
    /// # Safety
    /// As `JitProgram::run_loop`'s.
    #[cfg(target_arch = "x86_64")]
    pub(super) unsafe fn run_loop(
        &mut self,
        program: &Program,
        env: &mut RunEnv<'_>,
        lp: &mut crate::jit::Loop,
    ) -> Option<crate::jit::LoopEnd> {
        let (PreparedEngine::Jit(jit), Some(block)) = (&program.prepared, self.block.as_mut())
        else {
            return None;
        };
        // SAFETY: as this function's.
        match unsafe { jit.run_loop(block, &program.insns, env, lp) }? {
            crate::jit::LoopEnd::Left(result) => {
                Some(crate::jit::LoopEnd::Left(self.finish(program, env, result)))
            }
            done => Some(done),
        }
    }

    /// What every run's result goes through: the leak check, the count of an unmetered run.
    fn finish(
        &self,
        program: &Program,
        env: &mut RunEnv<'_>,
        mut result: Result<RunOutput, Trap>,
    ) -> Result<RunOutput, Trap> {
        if program.options.pointer_leaks == PointerLeaks::Refuse
            && result
                .as_ref()
                .is_ok_and(|out| out.r0 >= self.no_leak_below)
        {
            refuse_exit_leak(&mut result, env);
        }
        program.clear_unmetered_count(&mut result);
        result
    }
}
