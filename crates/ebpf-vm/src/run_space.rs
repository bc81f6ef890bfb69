//! What a run needs that outlives it and does not change from one run to the next: the stack
//! area, the allocations of the region table and of the map table, and the run state with the
//! context buffer and XDP frame of the last run (`RunState::recycle`). A run borrows one run space
//! for its duration; a batch borrows one for all its packets, as the kernel's `BPF_PROG_TEST_RUN`
//! repeat loop sets up once. Each thread keeps one for its next run, so single runs reuse it too.
//!
//! Nothing of one run is visible to the next: every byte a run can read is zeroed or written by
//! its preparation (the reachable stack frames, the context, the frame), as with fresh memory.

use std::cell::{Cell, UnsafeCell};

use crate::context::RunState;
use crate::maps::RunMaps;
use crate::memory::Regions;
use crate::vm::STACK_SIZE;

/// The JIT's block for the runs of a run space (`jit::Home`), where there is a JIT.
#[cfg(target_arch = "x86_64")]
pub(crate) type JitHome = crate::jit::Home;
#[cfg(not(target_arch = "x86_64"))]
pub(crate) type JitHome = ();

/// The reusable part of a run. Boxed: the stack is 4 KiB, and addresses into it must not change
/// while a run uses it (a run borrows the box, so it cannot move then).
pub struct RunSpace {
    /// Declared before `stack`, so dropped before it: a lock word on the stack is released while
    /// the stack is alive (`RunState`'s `Drop`).
    pub(crate) state: RunState,
    pub(crate) regions: Regions,
    /// The map table of the last run of a batch (`RunMaps::end_run` was called on it).
    pub(crate) maps: Option<RunMaps>,
    /// The JIT's context block for this space's runs of main programs (`jit::Home`).
    pub(crate) jit_home: JitHome,
    /// u64 for alignment. Zeroed once at creation; each run zeroes the frames it can reach.
    stack: [u64; STACK_SIZE / 8],
}

impl RunSpace {
    pub fn new() -> Box<RunSpace> {
        Box::new(RunSpace {
            state: RunState::default(),
            regions: Regions::new(),
            maps: None,
            jit_home: JitHome::default(),
            stack: [0; STACK_SIZE / 8],
        })
    }

    /// The address of the first byte of the stack area.
    pub(crate) fn stack_bytes(&mut self) -> u64 {
        self.stack.as_mut_ptr() as u64
    }
}

thread_local! {
    /// The run space this thread's next run takes (empty while a run of this thread holds it:
    /// a run inside a run, through a JavaScript helper, makes its own).
    static SPARE: Cell<Option<Box<RunSpace>>> = const { Cell::new(None) };
}

/// Calls `f` with this thread's run space (a new one when it is in use), and keeps the space for
/// the next run.
pub fn with_run_space<R>(f: impl FnOnce(&mut RunSpace) -> R) -> R {
    let mut space = SPARE
        .try_with(Cell::take)
        .ok()
        .flatten()
        .unwrap_or_else(RunSpace::new);
    let result = f(&mut space);
    // A map table kept between single runs would keep the last program's maps alive for as long
    // as the thread lives; a batch holds its space, and its table, only while it runs. The table
    // of a program without maps holds nothing and stays.
    if space.maps.as_ref().is_some_and(|m| !m.is_for(None)) {
        space.maps = None;
    }
    // A thread being torn down has no slot: the space is then dropped.
    let _ = SPARE.try_with(|s| s.set(Some(space)));
    result
}

/// The stack area of this thread's bare runs (`Program::run_bare`): code that calls nothing
/// out, so no run of this thread can start while one holds it, and that needs nothing else of a
/// run space. Zeroed once (a thread's first run finds it so); each run zeroes what it reads
/// before writing, as with a run space's stack. A constant without `Drop`: its address is one
/// instruction, where taking and putting back the run space is a score.
#[repr(C, align(16))]
struct BareStack(UnsafeCell<[u64; STACK_SIZE / 8]>);

thread_local! {
    static BARE_STACK: BareStack = const { BareStack(UnsafeCell::new([0; STACK_SIZE / 8])) };
}

/// The address of the first byte of this thread's bare-run stack area (`STACK_SIZE` bytes,
/// valid while the thread lives).
#[inline(always)]
pub(crate) fn bare_stack_bytes() -> u64 {
    BARE_STACK.with(|s| s.0.get() as u64)
}
