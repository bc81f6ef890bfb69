//! What one run owns, as helpers and contexts both see it (`HelperContext::state`): the context
//! and packet the run built (the XDP frame, the tc skb), the task identity `get_current_*`
//! report, where trace and perf output goes, the callback and tail-call bookkeeping, the spin
//! lock the run holds, redirects and the network. It lies below `helpers` and `context`: helpers
//! act on it, and the contexts build it (`context::xdp`, `context::tc`, ...) and register the
//! helpers that need their program type.
//!
//! Memory the program can point into (the context buffer, the XDP frame, callback stacks) is owned
//! here as `Vec<u64>` (8-byte aligned) and only ever touched through the addresses taken once at
//! creation; moving a `RunState` (helpers do, to run a callback) does not move that memory.

pub mod address_space;
pub mod layout;
pub mod network;
pub mod output;
pub mod places;
pub mod redirect;
pub mod skb;
pub mod tunnel;
pub mod xdp;
pub mod xdp_frags;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use crate::error::Trap;
use crate::vm::ProgramType;
use output::ProgramOutput;

use skb::TcSkb;
use xdp::XdpFrame;

/// What `bpf_get_current_pid_tgid` / `_uid_gid` / `_comm` / `_task` report for a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessInfo {
    /// The thread id (the kernel's `pid`).
    pub pid: u32,
    /// The process id (the kernel's `tgid`).
    pub tgid: u32,
    pub uid: u32,
    pub gid: u32,
    /// NUL-padded, as `task->comm` (15 characters and a NUL at most).
    pub comm: [u8; 16],
    /// What `bpf_get_current_task` / `_btf` return: the address of the task in the run's
    /// address space (`ContextInput::memory`), e.g. where the caller put a fake `task_struct`.
    pub task: u64,
}

impl ProcessInfo {
    /// A `comm` from a name, truncated to 15 bytes as the kernel does.
    pub fn comm_from(name: &str) -> [u8; 16] {
        let mut comm = [0u8; 16];
        let n = name.len().min(15);
        comm[..n].copy_from_slice(&name.as_bytes()[..n]);
        comm
    }
}

/// A zeroed, 8-byte aligned buffer owned by the run, addressed by the program.
pub(crate) struct OwnedBuf {
    words: Vec<u64>,
    pub addr: u64,
    pub len: u64,
}

/// Buffers of finished runs, kept per thread for the next runs: a run's frame and context cost a
/// memset, not a malloc and a free (which were a fifth of a short XDP run).
const POOL_BUFFERS: usize = 8;
/// Larger buffers are freed rather than kept.
const POOL_MAX_WORDS: usize = 8192;

thread_local! {
    static POOL: std::cell::RefCell<Vec<Vec<u64>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Makes `words` `n` zero words. `fill` is one memset over the words kept; `resize` alone writes
/// word by word (a loop of about eight instructions per word, which was most of the set-up of a
/// short XDP run: its frame is 472 words).
fn zero_words(words: &mut Vec<u64>, n: usize) {
    words.truncate(n);
    words.fill(0);
    words.resize(n, 0);
}

impl OwnedBuf {
    pub fn zeroed(len: usize) -> OwnedBuf {
        let n = len.div_ceil(8).max(1);
        let mut words = POOL
            .try_with(|p| {
                let mut p = p.borrow_mut();
                let i = p.iter().position(|w| w.capacity() >= n)?;
                Some(p.swap_remove(i))
            })
            .ok()
            .flatten()
            .unwrap_or_default();
        // Zeroed whether new or reused: a run never sees what an earlier run left.
        zero_words(&mut words, n);
        let addr = words.as_mut_ptr() as u64;
        OwnedBuf {
            words,
            addr,
            len: len as u64,
        }
    }

    /// A buffer of no bytes that owns no memory (a place holder while a frame is reused).
    pub fn empty() -> OwnedBuf {
        OwnedBuf {
            words: Vec::new(),
            addr: 0,
            len: 0,
        }
    }

    /// A zeroed buffer of `len` bytes: `spare` (a buffer of an earlier run) zeroed again when it
    /// is large enough, else a new one. The memory a run sees is the same either way.
    pub fn zeroed_from(spare: Option<OwnedBuf>, len: usize) -> OwnedBuf {
        match spare {
            Some(mut buf) if buf.words.capacity() >= len.div_ceil(8).max(1) => {
                // Within its capacity: the words stay where they are.
                zero_words(&mut buf.words, len.div_ceil(8).max(1));
                buf.addr = buf.words.as_mut_ptr() as u64;
                buf.len = len as u64;
                buf
            }
            _ => OwnedBuf::zeroed(len),
        }
    }

    /// This buffer with `[at, at + len)` zeroed, the rest as it is: a reused buffer of which
    /// only that part can have changed since it was last all zero.
    pub fn zero_range(self, at: u64, len: u64) -> OwnedBuf {
        self.zero(at, len);
        self
    }

    /// Zeroes `len` bytes at `at`, in place.
    pub fn zero(&self, at: u64, len: u64) {
        assert!(at.saturating_add(len) <= self.len);
        // SAFETY: inside the buffer (asserted), which this value owns.
        unsafe { std::ptr::write_bytes((self.addr + at) as *mut u8, 0, len as usize) };
    }

    /// Copies `bytes` in at byte offset `at` (`at + bytes.len() <= len`).
    #[inline]
    pub fn write(&self, at: u64, bytes: &[u8]) {
        assert!(at + bytes.len() as u64 <= self.len);
        // SAFETY: inside the buffer (asserted), which this struct owns.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), (self.addr + at) as *mut u8, bytes.len())
        }
    }

    #[inline]
    pub fn write_u32(&self, at: u32, v: u32) {
        self.write(at as u64, &v.to_le_bytes());
    }

    #[inline]
    pub fn write_u64(&self, at: u32, v: u64) {
        self.write(at as u64, &v.to_le_bytes());
    }

    /// The little-endian u32 at byte offset `at` (`at + 4 <= len`), without an allocation.
    #[inline]
    pub fn read_u32(&self, at: u32) -> u32 {
        assert!(at as u64 + 4 <= self.len);
        // SAFETY: inside the buffer (asserted); the program is not running while this is called.
        u32::from_le(unsafe { std::ptr::read_unaligned((self.addr + at as u64) as *const u32) })
    }

    pub fn read(&self, at: u64, len: u64) -> Vec<u8> {
        assert!(at + len <= self.len);
        // SAFETY: inside the buffer (asserted); the program is not running while this is called.
        unsafe { std::slice::from_raw_parts((self.addr + at) as *const u8, len as usize).to_vec() }
    }
}

impl Drop for OwnedBuf {
    /// Back to this thread's pool: the run that used it has ended (run state is dropped after).
    fn drop(&mut self) {
        let words = std::mem::take(&mut self.words);
        if words.capacity() > POOL_MAX_WORDS || words.capacity() == 0 {
            return;
        }
        let _ = POOL.try_with(|p| {
            let mut p = p.borrow_mut();
            if p.len() < POOL_BUFFERS {
                p.push(words);
            }
        });
    }
}

/// How many callbacks may be nested (a callback that calls `bpf_loop` ...), as the kernel's
/// limit on call frames.
pub const MAX_CALLBACK_DEPTH: usize = 8;

/// Tail calls one run may make, as the kernel's `MAX_TAIL_CALL_CNT`.
pub const MAX_TAIL_CALLS: u32 = 33;

#[derive(Default)]
pub struct RunState {
    pub prog_type: ProgramType,
    /// Address of the context the program received in r1 (0 when there is none).
    pub ctx_addr: u64,
    pub(crate) ctx: Option<OwnedBuf>,
    /// The packet of a socket filter (address, length), which `bpf_skb_load_bytes` reads.
    pub skb_packet: (u64, u64),
    /// The XDP frame with its moving bounds.
    pub xdp: Option<Box<XdpFrame>>,
    /// The packet of a tc run with what the kernel's `sk_buff` knows of it.
    pub tc: Option<Box<TcSkb>>,
    /// The target of the last successful `bpf_redirect` (tc, XDP; see `redirect`).
    pub redirect: Option<redirect::Redirect>,
    /// Packets `bpf_clone_redirect` sent (tc), in order.
    pub clones: Vec<redirect::Clone>,
    /// tc: the packet's tunnel metadata (`tunnel`), from the input or `bpf_skb_set_tunnel_key`.
    pub tunnel: Option<tunnel::TunnelInfo>,
    /// The interfaces and routes of the run (`ContextInput::network`); `None`: the default
    /// (`net::Network::default`).
    pub network: Option<Arc<network::Network>>,
    /// Where the packet is now once a helper moved or resized it (tc): every environment that
    /// runs code of this run takes its `LD_ABS`/`LD_IND` packet from here (`RunEnv::packet`
    /// after a helper call, a callback's, a tail-called program's), never an older copy.
    pub packet_moved: Option<(u64, u64)>,
    pub process: ProcessInfo,
    /// The socket of the packet (`bpf_get_socket_cookie` / `_uid`), if it has one.
    pub socket: Option<SocketInfo>,
    /// What `bpf_jiffies64` returns, if the embedder fixed it (otherwise a clock; see
    /// `helpers::standard`).
    pub jiffies: Option<u64>,
    /// The signals the program asked `bpf_send_signal(_thread)` to send, in order (never sent).
    pub signals: Vec<SentSignal>,
    /// The memory the probe-read helpers read (tracing programs; empty for other types).
    pub address_space: address_space::AddressSpace,
    /// Where `bpf_trace_printk` and `bpf_perf_event_output` deliver (absent for programs that
    /// cannot call them).
    pub output: Option<Arc<ProgramOutput>>,
    /// Instruction indices that `call_function` accepts (from `lddw` of functions).
    pub callbacks: Option<Arc<[usize]>>,
    /// Callbacks running now (0 in the main flow).
    pub callback_depth: usize,
    /// One stack area per callback depth, allocated on first use (each `STACK_SIZE` bytes and a
    /// region of the run from then on).
    pub(crate) callback_stacks: Vec<OwnedBuf>,
    /// The run's deadline and cancellation token (see `limits`).
    pub limits: crate::limits::RunLimits,
    /// A tail call the current program asked for: the program (a `Program`, see `program.rs`).
    pub tail_call: Option<Arc<dyn crate::vm::TailCallTarget>>,
    /// How `bpf_tail_call` sees a prog array's entry as a program (set by `program.rs` for each
    /// run; `None`: every tail call falls through).
    pub tail_call_target: Option<crate::vm::TailCallTargetOf>,
    /// Tail calls made so far in this run.
    pub tail_calls: u32,
    /// The `bpf_spin_lock` word this run holds.
    pub held_lock: Option<HeldLock>,
    /// A trap raised inside a callback, which the helper's caller re-raises as is.
    pub pending_trap: Option<Trap>,
    /// The stack area of the run (start, length; r10 of the main frame is its end), for naming
    /// places and telling addresses from other values.
    pub stack: (u64, u64),
    /// The input data (raw) or packet (socket filter): address and length, for naming places.
    pub data: (u64, u64),
    /// Regions helpers added during the run and what they hold (see `places`).
    pub added: crate::maps::added_regions::AddedRegions,
    /// Whether helpers refuse to copy out host addresses (the program's `pointer_leaks`; false in
    /// a run state made outside `Program`).
    pub refuse_pointer_leaks: bool,
    /// Bytes of `bpf_perf_event_output` records this run delivered, as the kernel's perf ring
    /// counts them, and the records dropped because they did not fit (`helpers::output`).
    pub perf_bytes: u64,
    pub perf_lost: u64,
    /// The instruction trace of a run that asked for one (`Program::run_traced`): while it is
    /// set, every program of the run (tail calls, callbacks) runs on the interpreter's traced
    /// loop, which records into it.
    pub trace: Option<Box<crate::run_trace::RunTrace>>,
    /// The coverage counters of the running program when the interpreter counts them (an
    /// interpreted program with coverage, in an untraced run): the program then runs on the
    /// interpreter's observed loop, which counts into them.
    pub coverage: Option<Arc<crate::coverage::CoverageCounters>>,
    /// Buffers of the previous run on the same run space (`recycle`), which the preparers of the
    /// next run take and zero instead of allocating: its context buffer and its XDP frame. They
    /// are no memory of the run (no region, no place names them) until a preparer takes them.
    pub(crate) spare_ctx: Option<OwnedBuf>,
    pub(crate) spare_xdp: Option<Box<XdpFrame>>,
    /// Every program of this run so far was verified: every store it made into packet memory
    /// was proved to lie between the packet's bounds at that point (`xdp::prepare` zeroes a
    /// reused frame only there). A tail call into a program in checked mode clears it.
    pub packet_stores_proved: bool,
}

/// A `bpf_spin_lock` a run holds: the word's address, the instruction that took it, and what keeps
/// the word's memory alive until the lock is released.
///
/// The release must write into live memory whenever it happens (an unlock, the end of the run, a
/// trap, the unwinding of a panic), whichever maps the run's table or a tail-called program kept
/// alive by then. So the lock owns its memory: `owner` is the map whose storage holds the word
/// (map memory lives as long as its map, whatever is deleted meanwhile), and memory that belongs
/// to the run itself (stack, data, context, XDP frame, callback stacks) has no owner because it
/// outlives the `RunState` (see `Drop`).
pub struct HeldLock {
    pub addr: u64,
    pub pc: usize,
    pub owner: Option<Arc<dyn crate::maps::Map>>,
}

impl RunState {
    pub fn new(prog_type: ProgramType) -> RunState {
        let mut state = RunState::default();
        state.prog_type = prog_type;
        state
    }

    /// Makes this state that of a new run of `prog_type` (every field as `new` gives it), keeping
    /// the buffers of the run that ended as spares for the preparers (`spare_ctx`, `spare_xdp`)
    /// and the allocations of its lists: the set-up a batch of runs pays once. Field by field, in
    /// place (a new state moved in was a fifth of a short run); the pattern names every field, so
    /// a field added to `RunState` does not compile until it is reset here too.
    pub fn recycle(&mut self, prog_type: ProgramType) {
        self.release_lock();
        let RunState {
            prog_type: kind,
            ctx_addr,
            ctx,
            skb_packet,
            xdp,
            tc,
            redirect,
            clones,
            tunnel,
            network,
            packet_moved,
            process,
            socket,
            jiffies,
            signals,
            address_space,
            output,
            callbacks,
            callback_depth,
            callback_stacks,
            limits,
            tail_call,
            tail_call_target,
            tail_calls,
            held_lock: _,
            pending_trap,
            stack,
            data,
            added,
            refuse_pointer_leaks,
            perf_bytes,
            perf_lost,
            trace,
            coverage,
            spare_ctx,
            spare_xdp,
            packet_stores_proved,
        } = self;
        *kind = prog_type;
        *ctx_addr = 0;
        if let Some(buf) = ctx.take() {
            *spare_ctx = Some(buf);
        }
        *skb_packet = (0, 0);
        if let Some(mut frame) = xdp.take() {
            // Whether the stores of the run that just ended (every program of its tail-call
            // chain) stayed inside the packet: then the next run zeroes only that part.
            frame.stores_proved &= *packet_stores_proved;
            *spare_xdp = Some(frame);
        }
        *tc = None;
        *redirect = None;
        clones.clear();
        *tunnel = None;
        *network = None;
        *packet_moved = None;
        *process = ProcessInfo::default();
        *socket = None;
        *jiffies = None;
        signals.clear();
        if !address_space.is_default() {
            *address_space = Default::default();
        }
        *output = None;
        *callbacks = None;
        *callback_depth = 0;
        // Back to the pool: a callback stack is zeroed when a run takes one.
        callback_stacks.clear();
        *limits = Default::default();
        *tail_call = None;
        *tail_call_target = None;
        *tail_calls = 0;
        *pending_trap = None;
        *stack = (0, 0);
        *data = (0, 0);
        added.clear();
        *refuse_pointer_leaks = false;
        *perf_bytes = 0;
        *perf_lost = 0;
        // Dropping a `None` is an out-of-line call.
        if trace.is_some() {
            *trace = None;
        }
        *coverage = None;
        *packet_stores_proved = false;
    }

    /// Whether `top` is the top of one of the run's callback stacks: r10 of a callback, under
    /// which a whole `STACK_SIZE` area of the run lies (what compiled code relies on).
    pub fn is_callback_stack(&self, top: u64) -> bool {
        self.callback_stacks
            .iter()
            .any(|s| s.addr.wrapping_add(s.len) == top)
    }

    /// Releases the spin lock this run holds, if any; returns the instruction that took it.
    pub fn release_lock(&mut self) -> Option<usize> {
        let held = self.held_lock.take()?;
        // SAFETY: the address was checked (writable, 4-aligned, inside a region) when the lock was
        // taken, and its memory is still alive: `held.owner` keeps a map's storage, and memory of
        // the run outlives this state (see `HeldLock`). The owner is dropped after the store.
        let word = unsafe { AtomicU32::from_ptr(held.addr as *mut u32) };
        word.store(0, Ordering::Release);
        Some(held.pc)
    }
}

impl Drop for RunState {
    /// A run that ends in any way (trap included) must not leave a lock taken: other runs would
    /// wait for it forever. `drop` runs before the fields are dropped, so a lock word on a
    /// callback stack, in the context or in the XDP frame (all owned here) is still alive; the run's
    /// stack and data outlive the state (`Program::run_with_context` declares them first).
    fn drop(&mut self) {
        self.release_lock();
    }
}

/// The socket a packet belongs to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocketInfo {
    /// The socket's cookie (the kernel's `sock_gen_cookie`: unique and non-zero for a socket).
    pub cookie: u64,
    /// The uid that owns the socket.
    pub uid: u32,
}

/// One signal a program asked to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SentSignal {
    /// The signal number (1-64).
    pub signal: u32,
    /// `bpf_send_signal_thread`: to the current thread (`ProcessInfo::pid`); otherwise to its
    /// whole process (`ProcessInfo::tgid`).
    pub thread: bool,
}
