//! A small worklist solver for dataflow problems over the blocks of the control-flow graph, in
//! either direction. A problem gives a lattice (a `bottom` that is the identity of `join`, and
//! `join`), a `boundary` fact (where control enters a function, for a forward problem; after an
//! instruction that leaves it, for a backward one) and the `transfer` of one instruction. The
//! solver iterates to the least fixed point; with a monotone transfer and a lattice of finite
//! height it terminates, and on reducible graphs it needs a few passes over reverse postorder.
//!
//! Facts are kept per block; `visit` replays the transfers inside each block to hand a client the
//! fact at every instruction without storing one per instruction.

use std::collections::VecDeque;

use super::cfg::Cfg;
use super::program::LogicalProgram;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Facts flow with control: from a block to its successors.
    Forward,
    /// Facts flow against control: from a block to its predecessors (liveness).
    Backward,
}

pub trait Problem {
    type Fact: Clone + PartialEq;
    const DIRECTION: Direction;

    /// The identity of `join`: what a block starts from before anything reaches it.
    fn bottom(&self) -> Self::Fact;
    /// The fact at a function's entry (forward) or after an instruction with no successor in
    /// its function (backward).
    fn boundary(&self) -> Self::Fact;
    /// Joins `other` into `into`; true when `into` changed.
    fn join(&self, into: &mut Self::Fact, other: &Self::Fact) -> bool;
    /// The effect of instruction `index`: for a forward problem `fact` is what holds before it
    /// and becomes what holds after it; for a backward problem the other way round.
    fn transfer(&self, program: &LogicalProgram, index: usize, fact: &mut Self::Fact);
}

/// The fixed point: per block, the fact before its first instruction and after its last (in
/// program order, whatever the direction).
#[derive(Clone, Debug)]
pub struct Solution<F> {
    pub before: Vec<F>,
    pub after: Vec<F>,
}

pub fn solve<P: Problem>(program: &LogicalProgram, cfg: &Cfg, problem: &P) -> Solution<P::Fact> {
    let n = cfg.len();
    let mut before = vec![problem.bottom(); n];
    let mut after = vec![problem.bottom(); n];
    let forward = P::DIRECTION == Direction::Forward;
    // The facts that flow into each block from outside it: at entries (forward) or where control
    // leaves the function (backward).
    let boundary = problem.boundary();
    if forward {
        for &e in &cfg.entries {
            before[e] = boundary.clone();
        }
    } else {
        for (b, block) in cfg.blocks.iter().enumerate() {
            let last = block.end - 1;
            if cfg.succs(b).is_empty() || cfg.flows[last].may_end_run() {
                after[b] = boundary.clone();
            }
        }
    }
    // Seed every block once, in an order that suits the direction, unreachable ones last.
    let mut order: Vec<usize> = cfg.rpo.iter().map(|&b| b as usize).collect();
    if !forward {
        order.reverse();
    }
    let mut queued = vec![false; n];
    for &b in &order {
        queued[b] = true;
    }
    order.extend((0..n).filter(|&b| !queued[b]));
    queued.iter_mut().for_each(|q| *q = true);
    let mut work: VecDeque<usize> = order.into();

    // Facts enter a block on its input side (before it, going forward) and leave on its output
    // side, towards the neighbours that the direction follows.
    let (input, output) = if forward {
        (&mut before, &mut after)
    } else {
        (&mut after, &mut before)
    };
    while let Some(b) = work.pop_front() {
        queued[b] = false;
        let block = cfg.blocks[b];
        let mut fact = input[b].clone();
        if forward {
            (block.start..block.end).for_each(|i| problem.transfer(program, i, &mut fact));
        } else {
            (block.start..block.end)
                .rev()
                .for_each(|i| problem.transfer(program, i, &mut fact));
        }
        if fact == output[b] {
            continue;
        }
        output[b] = fact;
        let next = if forward { cfg.succs(b) } else { cfg.preds(b) };
        for &m in next {
            let m = m as usize;
            if problem.join(&mut input[m], &output[b]) && !queued[m] {
                queued[m] = true;
                work.push_back(m);
            }
        }
    }
    Solution { before, after }
}

impl<F: Clone> Solution<F> {
    /// Calls `f(index, fact)` for every instruction, in program order within each block, with the
    /// fact that holds before the instruction in program order: for a forward problem what holds
    /// when it starts, for a backward one what is needed when it starts (e.g. live-in).
    pub fn visit<P: Problem<Fact = F>>(
        &self,
        program: &LogicalProgram,
        cfg: &Cfg,
        problem: &P,
        mut f: impl FnMut(usize, &F),
    ) {
        for (b, block) in cfg.blocks.iter().enumerate() {
            match P::DIRECTION {
                Direction::Forward => {
                    let mut fact = self.before[b].clone();
                    for i in block.start..block.end {
                        f(i, &fact);
                        problem.transfer(program, i, &mut fact);
                    }
                }
                Direction::Backward => {
                    // Replay backwards, then hand the facts out in program order.
                    let mut facts = Vec::with_capacity(block.end - block.start);
                    let mut fact = self.after[b].clone();
                    for i in (block.start..block.end).rev() {
                        problem.transfer(program, i, &mut fact);
                        facts.push(fact.clone());
                    }
                    for (i, fact) in (block.start..block.end).zip(facts.iter().rev()) {
                        f(i, fact);
                    }
                }
            }
        }
    }
}
