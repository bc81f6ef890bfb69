//! An instruction trace of one run: the instructions executed, in order, each with the registers
//! it wrote and the memory it touched (`Program::run_traced`, the interpreter's traced loop in
//! `interpreter/trace.rs`).
//!
//! Bounded: a trace keeps at most `limit` steps, the last ones (the instructions nearest the end
//! or the trap are the ones a reader wants), and counts the earlier steps it let go in
//! `dropped`. It never holds more than `limit` steps, whatever the run's length.
//!
//! Values that are addresses of the run (pointers into the stack, the data, the context, a map
//! value) are kept as places (`stack-8`, `data+14`), never as host addresses, as trap messages
//! name them (`context::places`).

use std::collections::VecDeque;

use crate::error::Place;

/// Steps a trace keeps when the caller does not say.
pub const DEFAULT_TRACE_LIMIT: usize = 10_000;
/// The most steps a trace may be asked to keep (about 100 bytes each).
pub const MAX_TRACE_LIMIT: usize = 1_000_000;

/// A register's value, or a value in memory, as the trace shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceValue {
    Scalar(u64),
    /// An address of the run, by its place.
    Pointer(Place),
}

/// A memory access of one instruction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceAccess {
    pub write: bool,
    /// Bytes accessed: 1, 2, 4 or 8.
    pub size: u32,
    /// Where; `None` for an address far from every region (the access then trapped).
    pub place: Option<Place>,
    /// The value loaded (after any sign extension) or stored (an atomic's source operand);
    /// `None` when the access trapped.
    pub value: Option<TraceValue>,
}

/// One executed instruction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceStep {
    /// Instruction slot (an `lddw` is the slot of its first half).
    pub pc: usize,
    /// Registers the instruction wrote (its destination, r0 of a call, the registers an `exit`
    /// restored), lowest first, with their new values. Empty when the instruction trapped.
    pub regs: Vec<(u8, TraceValue)>,
    pub access: Option<TraceAccess>,
}

/// The steps of a run, at most `limit` of them (see the module comment).
#[derive(Clone, Debug)]
pub struct RunTrace {
    limit: usize,
    steps: VecDeque<TraceStep>,
    dropped: u64,
}

impl RunTrace {
    /// A trace that keeps the last `limit` steps (at least 1, at most `MAX_TRACE_LIMIT`).
    pub fn new(limit: usize) -> RunTrace {
        let limit = limit.clamp(1, MAX_TRACE_LIMIT);
        RunTrace {
            limit,
            steps: VecDeque::with_capacity(limit.min(1024)),
            dropped: 0,
        }
    }

    pub fn push(&mut self, step: TraceStep) {
        if self.steps.len() == self.limit {
            self.steps.pop_front();
            self.dropped += 1;
        }
        self.steps.push_back(step);
    }

    /// The steps kept, in execution order.
    pub fn steps(&self) -> impl ExactSizeIterator<Item = &TraceStep> {
        self.steps.iter()
    }

    /// Steps executed before the first one kept.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn limit(&self) -> usize {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(pc: usize) -> TraceStep {
        TraceStep {
            pc,
            regs: Vec::new(),
            access: None,
        }
    }

    #[test]
    fn keeps_the_last_steps_and_counts_the_rest() {
        let mut t = RunTrace::new(3);
        for pc in 0..10 {
            t.push(step(pc));
        }
        let pcs: Vec<usize> = t.steps().map(|s| s.pc).collect();
        assert_eq!(pcs, [7, 8, 9]);
        assert_eq!(t.dropped(), 7);
    }

    #[test]
    fn a_limit_is_at_least_one_and_at_most_the_maximum() {
        assert_eq!(RunTrace::new(0).limit(), 1);
        assert_eq!(RunTrace::new(usize::MAX).limit(), MAX_TRACE_LIMIT);
    }
}
