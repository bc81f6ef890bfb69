//! The static safety proof: an abstract interpretation of the program in the spirit of the Linux
//! verifier (6.18), and its log in the kernel's format.
//!
//! Built in layers, each of one job:
//! - [`tnum`]: known bits of a number (`struct tnum`), with the kernel's operations;
//! - [`bounds`]: known bits plus signed/unsigned, 64/32-bit ranges of a value and the deductions
//!   between them (`reg_bounds_sync`);
//! - [`alu`]: the ALU transfer functions on scalars (`adjust_scalar_min_max_vals`, moves,
//!   sign extension, byte swaps);
//! - [`branch`]: decided jumps and what each branch learns (`is_branch_taken`,
//!   `reg_set_min_max`);
//! - [`reg`]: register types and register state (`struct bpf_reg_state`);
//! - [`state`]: frames, registers and the per-byte stack (`struct bpf_func_state`);
//! - [`log`]: the states printed exactly as the kernel prints them, and [`insn_text`] the
//!   instructions;
//! - the walk ([`verify`]): [`walk`] follows every path, [`arith`] runs ALU instructions on
//!   register states (pointer arithmetic included), [`access`] checks loads and stores (through
//!   the context: [`ctx_access`], per program type, tc's in [`tc_context`]), [`call`]
//!   helper calls from their prototypes, [`subprog`] bpf-to-bpf calls and their frames,
//!   [`callback`] the functions helpers call back, [`global`] global functions (verified once
//!   against their BTF prototypes), [`refs`] references to release, [`lock`] spin
//!   locks, [`env`] holds what one verification knows and its options;
//! - [`packet`]: direct packet access per program type, the ranges comparisons teach
//!   (`data_end`, `data_meta`) and the helpers that change the packet;
//! - [`unprivileged`]: the extra rules of loads without privileges (option `unprivileged`),
//!   called from the walk's checks;
//! - pruning: [`prune`] keeps explored states at prune points and stops a path whose state one
//!   of them covers ([`equiv`], with static register liveness), and detects infinite loops;
//!   [`precision`] marks the scalars whose values mattered, so that only those are compared.
//!
//! The expected values of its tests come from hand computation and from the kernel's own log
//! (`tests/verifier_kernel.rs` loads the same programs into the live kernel and compares).

pub mod access;
pub mod alu;
pub mod arith;
pub mod bounds;
pub mod branch;
pub mod call;
pub mod callback;
pub mod ctx_access;
pub mod env;
pub mod equiv;
pub mod global;
pub mod insn_text;
pub mod lock;
pub mod log;
pub mod map_fields;
pub mod packet;
pub mod precision;
pub mod prune;
pub mod refs;
pub mod reg;
pub mod state;
pub mod subprog;
pub mod tc_context;
pub mod tnum;
pub mod unprivileged;
pub mod walk;

pub use bounds::Bounds;
pub use env::{ExitRange, ProgramKind, Rejection, Verified, VerifyOptions};
pub use global::{FuncArg, GlobalFunction};
pub use prune::PruneStats;
pub use reg::{BaseType, MapRef, RegState, RegType};
pub use state::{FuncState, SlotType, StackSlot, VerifierState};
pub use tnum::Tnum;
pub use walk::verify;
