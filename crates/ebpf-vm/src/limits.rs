//! Limits of one run besides its instruction budget: a wall-clock deadline and a cancellation
//! token (`RunLimits`), and how the engines meter the budget so that they notice either.
//!
//! Without limits an engine hands its loop the whole budget at once, as it always has. With them
//! it hands it over in slices of at most `SLICE` instructions (`Meter`): when a slice runs out
//! (the interpreter entering a segment, compiled code entering a chain, that the budget in hand
//! does not cover) the engine asks for the next one, and the limits are checked then; a run past
//! its deadline stops with a `timeout` trap, a cancelled one with an `aborted` trap, naming the
//! instruction it would have executed next. Slices change nothing else: the instruction count,
//! budget traps and every other outcome are those of a run without limits.
//!
//! Granularity: a check happens at least every `SLICE` instructions plus one chain or segment of
//! straight-line code (at most the program's length), and before each callback a helper makes
//! (`HelperContext::call_function`), so that a helper walking a large map notices too. A run
//! whose whole budget fits in one slice is never checked: the budget bounds it already.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::error::{Trap, TrapKind};

/// Instructions between two checks of the limits (about a millisecond of the interpreter).
pub const SLICE: u64 = 1 << 20;

/// A flag that stops the runs it is given to (`RunLimits::cancel`); clones share the flag, so one
/// thread may cancel a run going on in another.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Asks every run holding this token to stop (at its next check).
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// What may stop a run before its budget does.
#[derive(Clone, Debug, Default)]
pub struct RunLimits {
    /// The run stops with a `timeout` trap once this instant has passed.
    pub deadline: Option<Instant>,
    /// The run stops with an `aborted` trap once this token is cancelled.
    pub cancel: Option<CancelToken>,
}

impl RunLimits {
    /// Whether there is anything to check (runs without limits are metered as one slice).
    pub fn is_active(&self) -> bool {
        self.deadline.is_some() || self.cancel.is_some()
    }

    /// The trap that stops a run at instruction `pc` after `count` instructions, if a limit has
    /// been reached. Cancellation wins over the deadline.
    pub fn check(&self, pc: usize, count: u64) -> Result<(), Trap> {
        if self.cancel.as_ref().is_some_and(CancelToken::is_cancelled) {
            return Err(limit_trap(TrapKind::Aborted, pc, count));
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(limit_trap(TrapKind::Timeout, pc, count));
        }
        Ok(())
    }
}

/// The trap of a run stopped by its limits.
pub fn limit_trap(kind: TrapKind, pc: usize, count: u64) -> Trap {
    let message = match kind {
        TrapKind::Aborted => "the run was cancelled".to_string(),
        _ => "the run went past its wall-clock limit".to_string(),
    };
    Trap {
        kind,
        pc,
        addr: 0,
        size: 0,
        insn_count: count,
        message,
        place: None,
    }
}

/// The budget of one execution (a run, or a callback of it) as an engine meters it: `reserve` is
/// the part not yet handed to the engine's loop. The instructions executed so far are always
/// `budget - reserve - in_hand`, where `in_hand` is what the loop has left of its slices.
#[derive(Clone, Copy, Debug)]
pub struct Meter {
    pub budget: u64,
    pub reserve: u64,
    /// The limit that stopped the run at `next_slice` (the interpreter raises the trap once out
    /// of its fast loop, which then carries no trap-sized result).
    pub stopped: Option<(TrapKind, usize)>,
}

impl Meter {
    /// The meter of an execution with `budget` instructions; returns it with the first slice.
    pub fn start(budget: u64, limits: &RunLimits) -> (Meter, u64) {
        let first = if limits.is_active() {
            budget.min(SLICE)
        } else {
            budget
        };
        (
            Meter {
                budget,
                reserve: budget - first,
                stopped: None,
            },
            first,
        )
    }

    /// Instructions executed when the loop has `in_hand` left. Wrapping: compiled code reports
    /// its budget in hand raised by instructions it had charged ahead (see `jit::runtime`), and
    /// only the exits that use the figure keep it in range.
    #[inline(always)]
    pub fn count(&self, in_hand: u64) -> u64 {
        self.budget.wrapping_sub(self.reserve).wrapping_sub(in_hand)
    }

    /// The loop's budget in hand does not cover the `need` instructions it is about to charge at
    /// `pc`: checks the limits (a slice has run out) and hands over the next slice, at least
    /// `need - in_hand` where the reserve allows it. With no reserve left there is nothing to
    /// check or hand over: the budget is what stops the run. Returns the new budget in hand.
    #[cold]
    #[inline(never)]
    pub fn refill(
        &mut self,
        limits: &RunLimits,
        in_hand: u64,
        need: u64,
        pc: usize,
    ) -> Result<u64, Trap> {
        if self.reserve == 0 {
            return Ok(in_hand);
        }
        limits.check(pc, self.count(in_hand))?;
        let moved = need.saturating_sub(in_hand).max(SLICE).min(self.reserve);
        self.reserve -= moved;
        Ok(in_hand + moved)
    }

    /// `refill` for a loop that cannot carry a trap: a limit reached is kept in `stopped` (with
    /// `pc`), and the budget in hand returned unchanged, as if the budget had run out; the caller
    /// then turns `stopped` into the trap (`stop_trap`).
    #[cold]
    #[inline(never)]
    pub fn next_slice(&mut self, limits: &RunLimits, in_hand: u64, need: u64, pc: usize) -> u64 {
        match self.refill(limits, in_hand, need, pc) {
            Ok(in_hand) => in_hand,
            Err(trap) => {
                self.stopped = Some((trap.kind, pc));
                in_hand
            }
        }
    }

    /// The trap of a limit `next_slice` met, when the loop had `in_hand` left.
    pub fn stop_trap(&self, in_hand: u64) -> Option<Trap> {
        let (kind, pc) = self.stopped?;
        Some(limit_trap(kind, pc, self.count(in_hand)))
    }

    /// Takes `n` instructions a helper charged (at most what is left, `in_hand + reserve`) from
    /// the budget in hand first, then from the reserve; returns the new budget in hand.
    #[inline]
    pub fn take(&mut self, in_hand: u64, n: u64) -> u64 {
        if n <= in_hand {
            in_hand - n
        } else {
            self.reserve -= n - in_hand;
            0
        }
    }
}
