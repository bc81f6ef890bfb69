//! The JIT's run context: one `repr(C)` block whose inputs the prologue copies onto the host stack
//! (those compiled code reads there: `CTX_COPIED`), so that compiled code reaches every field at a
//! fixed offset from `rsp`, and that Rust fills in before and reads back after a run. Offsets are
//! taken with `offset_of!`, so the layout is stated once.

use std::mem::{offset_of, size_of, MaybeUninit};

/// Saved state of one bpf-to-bpf call: r6-r9, r10 and the host return address (48 bytes, so
/// the slot of depth d is at `(d * 3) << 4`).
pub const FRAME_WORDS: usize = 6;

/// How a run left the compiled code.
pub const EXIT_NORMAL: u64 = 0;
/// A Rust trampoline built the trap (memory check, helper error) and stored it in the run state.
pub const EXIT_RECORDED: u64 = 1;
/// The budget ends inside the chain the run was entering: its state is in the run state
/// (`finish::Paused`), for Rust to finish the run (`runtime::refill_entry`).
pub const EXIT_FINISH: u64 = 2;
/// Call depth exceeded; `exit_a` = pc of the call.
pub const EXIT_CALL_DEPTH: u64 = 3;
/// Misaligned atomic; `exit_a` = address, `exit_b` = access info (see `access_info`).
pub const EXIT_MISALIGNED: u64 = 4;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Ctx {
    /// Start address of the run's stack and data (`Regions::hot`: the fast, inline-checked ones).
    pub fast_start: [u64; 2],
    /// For each fast region: exclusive bound on `addr - start` per access kind, indexed by
    /// `bound_index(size, write)`; 0 when that kind of access never fits (so it takes the slow path).
    pub fast_bound: [[u64; 8]; 2],
    /// For the data (`fast_start[1]`): bounds like `fast_bound` for the spans of `HULL_SIZES`
    /// bytes, indexed by `hull_index`; one check of a group of accesses (see `Compiler::group` in `compile/memory.rs`).
    pub hull_bound: [u64; 6],
    /// `0 - fast_start[1]`, kept in rdx by compiled code so that the inline check of the data
    /// region is one `lea` of `base + rdx + off` and one compare.
    pub data_neg: u64,
    pub packet_start: u64,
    pub packet_len: u64,
    /// r1-r5 at entry.
    pub args: [u64; 5],
    /// r10 at entry.
    pub stack_top: u64,
    pub budget: u64,
    /// `*mut RunState` for the Rust trampolines.
    pub state: u64,
    /// The Rust-side copy of this block, where the exit stubs write the results.
    pub self_ptr: u64,
    /// 1 when the value areas of the program's maps are regions of the run from its start
    /// (`RunMaps::standing_areas`: a batch), so that an array lookup can be done inline
    /// (`helpers::maps::InlineLookup`); 0 otherwise.
    pub standing: u64,
    /// A batch's loop of machine code (`batch_loop::Loop`, whose first word is where it goes on)
    /// when the main program's exit must go back to it rather than leave; 0 otherwise. Read by
    /// the exit stub from the Rust-side block only, never copied.
    pub resume: u64,
    // The fields above are the run's inputs, of which the prologue copies what compiled code
    // reads on the host stack (`CTX_COPIED`); those below are written by compiled code before it
    // reads them.
    /// Live bpf-to-bpf calls (0 in the main program; the prologue sets it).
    pub depth: u64,
    /// A fast loop's bound when it is a blinded constant (see `blind`): the check at the loop's
    /// head rebuilds it and leaves it here, so that the loop's compare in its unrolled copy reads
    /// it rather than rebuilding it on every iteration (no constant of the program in the code).
    pub loop_limit: u64,
    /// Blinded constants of the program's loops, rebuilt once by the code's entry (see
    /// `Blinder::fill_pool`): never read on the Rust side, so left uninitialised there.
    pub pool: MaybeUninit<[u64; POOL_SLOTS]>,
    // Results.
    pub r0: u64,
    /// Budget left (r12) when the run stopped.
    pub rem: u64,
    pub exit_kind: u64,
    pub exit_a: u64,
    pub exit_b: u64,
    /// Where the function prologue goes once the block is set up (a callback's code): read from
    /// the Rust-side block only, never copied.
    pub entry: u64,
    /// Saved frames of live calls: never read on the Rust side, so left uninitialised there.
    /// Last, so that the zeroed fields before it are one short run of stores when Rust builds a
    /// block (between them, it had the compiler zero these 384 bytes too, with a `memset` call
    /// per run).
    pub frames: MaybeUninit<[[u64; FRAME_WORDS]; 8]>,
}

/// Bytes the prologue reserves: the block, rounded so that rsp stays 16-byte aligned after the six
/// callee-saved pushes (entry rsp is 8 mod 16; 8 + 48 + CTX_BYTES must be 0 mod 16).
pub const CTX_BYTES: i32 = {
    let s = size_of::<Ctx>();
    (if s % 16 == 8 { s } else { s + 8 }) as i32
};
/// Offsets of the inputs that the prologue copies onto the host stack in every program: those
/// compiled code and the Rust entry points read there (the stubs reload `data_neg`, legacy packet
/// loads read the packet, the entry points the run state; the exit stubs find the Rust-side block;
/// inline array lookups test `standing`).
/// The fast-path fields before `data_neg` are copied only for code with inline checks; r1-r5, r10
/// and the budget are loaded into registers from the Rust-side block.
pub const CTX_COPIED: [i32; 6] = [
    OFF_DATA_NEG,
    OFF_PACKET_START,
    OFF_PACKET_LEN,
    OFF_STATE,
    OFF_SELF,
    OFF_STANDING,
];
const _: () = assert!(OFF_FAST_START == 0 && OFF_HULL_BOUND + 48 == OFF_DATA_NEG);

const _: () = assert!(size_of::<Ctx>().is_multiple_of(8));
const _: () = assert!(CTX_BYTES % 16 == 8);

pub const OFF_FAST_START: i32 = offset_of!(Ctx, fast_start) as i32;
pub const OFF_FAST_BOUND: i32 = offset_of!(Ctx, fast_bound) as i32;
pub const OFF_HULL_BOUND: i32 = offset_of!(Ctx, hull_bound) as i32;
pub const OFF_DATA_NEG: i32 = offset_of!(Ctx, data_neg) as i32;
pub const OFF_PACKET_START: i32 = offset_of!(Ctx, packet_start) as i32;
pub const OFF_PACKET_LEN: i32 = offset_of!(Ctx, packet_len) as i32;
pub const OFF_DEPTH: i32 = offset_of!(Ctx, depth) as i32;
pub const OFF_LOOP_LIMIT: i32 = offset_of!(Ctx, loop_limit) as i32;
pub const OFF_POOL: i32 = offset_of!(Ctx, pool) as i32;
/// How many blinded constants `Ctx::pool` holds.
pub const POOL_SLOTS: usize = 8;
pub const OFF_FRAMES: i32 = offset_of!(Ctx, frames) as i32;
pub const OFF_ARGS: i32 = offset_of!(Ctx, args) as i32;
pub const OFF_STACK_TOP: i32 = offset_of!(Ctx, stack_top) as i32;
pub const OFF_BUDGET: i32 = offset_of!(Ctx, budget) as i32;
pub const OFF_STATE: i32 = offset_of!(Ctx, state) as i32;
pub const OFF_SELF: i32 = offset_of!(Ctx, self_ptr) as i32;
pub const OFF_STANDING: i32 = offset_of!(Ctx, standing) as i32;
pub const OFF_RESUME: i32 = offset_of!(Ctx, resume) as i32;
pub const OFF_R0: i32 = offset_of!(Ctx, r0) as i32;
pub const OFF_REM: i32 = offset_of!(Ctx, rem) as i32;
pub const OFF_EXIT_KIND: i32 = offset_of!(Ctx, exit_kind) as i32;
pub const OFF_EXIT_A: i32 = offset_of!(Ctx, exit_a) as i32;
pub const OFF_EXIT_B: i32 = offset_of!(Ctx, exit_b) as i32;
pub const OFF_ENTRY: i32 = offset_of!(Ctx, entry) as i32;

/// Spans that one check of a group of accesses can cover (larger groups are split).
pub const HULL_SIZES: [u32; 3] = [16, 32, 64];

/// Index into `Ctx::hull_bound` for `HULL_SIZES[k]` and the direction.
pub const fn hull_index(k: usize, write: bool) -> usize {
    (write as usize) * 3 + k
}

/// Index into `fast_bound[region]` for an access of `size` bytes.
pub const fn bound_index(size: u32, write: bool) -> usize {
    let log = match size {
        1 => 0,
        2 => 1,
        4 => 2,
        _ => 3,
    };
    (write as usize) * 4 + log
}

/// What the slow memory check and the misalignment trap learn about an access, packed in 32
/// bits: size in bits 0-3, write in bit 4, the instruction index from bit 8 (indices are below
/// 2^20, see `isa::MAX_INSNS`).
pub const fn access_info(pc: usize, size: u32, write: bool) -> u32 {
    (pc as u32) << 8 | (write as u32) << 4 | size
}

pub fn decode_access_info(info: u64) -> (usize, u32, bool) {
    (
        (info >> 8) as usize,
        (info & 0xf) as u32,
        info >> 4 & 1 == 1,
    )
}
