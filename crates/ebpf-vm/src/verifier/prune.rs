//! State pruning (the kernel's `is_state_visited`): at prune points the walk keeps checkpoints
//! of the states it has been in, and a path that reaches a prune point in a state an explored
//! checkpoint covers ([`super::equiv`]) stops there: everything after it was proved for a
//! state at least as general.
//!
//! A checkpoint may only cover other states once every path below it has ended (its
//! `branches` count is zero): until then it is an ancestor of paths still being walked, and a
//! loop that comes back to it in the same state is an infinite loop. Paths carry the
//! checkpoint they descend from; a path that ends (exit, pruned) releases it, and a checkpoint
//! whose count drops to zero releases its own parent.
//!
//! The heuristics are the kernel's, so that the counts printed in the summary line
//! (`max_states_per_insn`, `total_states`, `peak_states`) follow it: a checkpoint is added only
//! after at least 2 jumps and 8 instructions since the last one (20 jumps or 100 instructions
//! inside a loop), and a checkpoint that keeps missing is dropped from its list.

use std::collections::HashMap;

use super::equiv::{maybe_looping, states_equal, Compare};
use super::precision::{self, Checkpoints, Segment};
use super::state::VerifierState;
use crate::analysis::flow::Flow;
use crate::analysis::{Analysis, Instruction, RegSet};

/// An explored state at a prune point (`struct bpf_verifier_state_list` and its state).
struct Checkpoint {
    state: VerifierState,
    /// The logical instruction it was taken at.
    insn: usize,
    /// Paths (and child checkpoints) below this one not finished yet.
    branches: u32,
    /// The path from the parent checkpoint to this one, and the instruction before this one.
    segment: Segment,
    last_insn: usize,
    hits: u32,
    misses: u32,
    /// Still in its instruction's list (not evicted).
    listed: bool,
}

/// What a prune point decided for the current path.
pub enum Visit {
    /// Go on (a checkpoint may have been added: the path now descends from it).
    Continue,
    /// Explored state `idx` covers this one: the path ends here (after taking over its
    /// precision marks, [`Explored::propagate_precision`]).
    Pruned(usize),
    /// The path came back to an ancestor in the same state: the slot of the instruction and
    /// the old state, for the log.
    InfiniteLoop(VerifierState),
}

/// The counters the kernel prints in its summary line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PruneStats {
    pub max_states_per_insn: u32,
    pub total_states: u32,
    pub peak_states: u32,
}

impl PruneStats {
    /// The counters over two walks, one after the other (the main function's and a global
    /// function's): states add up, the peaks and the most states at one instruction do not.
    pub fn then(self, later: PruneStats) -> PruneStats {
        PruneStats {
            max_states_per_insn: self.max_states_per_insn.max(later.max_states_per_insn),
            total_states: self.total_states + later.total_states,
            peak_states: self.peak_states.max(later.peak_states),
        }
    }
}

pub struct Explored {
    checkpoints: Vec<Checkpoint>,
    /// Checkpoints by (logical instruction, call sites of the frames).
    lists: HashMap<(usize, Vec<Option<usize>>), Vec<usize>>,
    prune_point: Vec<bool>,
    /// Jump targets and the instructions after calls (`mark_jmp_point`).
    jmp_point: Vec<bool>,
    /// Calls of helpers that call a callback back at once (`bpf_loop`, ...): the walk comes
    /// back to them after each run of the callback, and always keeps a checkpoint there
    /// (`mark_calls_callback`, `mark_force_checkpoint`).
    calls_callback: Vec<bool>,
    /// Registers live before each logical instruction.
    live: Vec<RegSet>,
    jmps_processed: u64,
    prev_jmps_processed: u64,
    prev_insn_processed: u64,
    /// Checkpoints in lists, and evicted ones still parents of unfinished paths.
    listed: u32,
    evicted_alive: u32,
    /// Per logical instruction: a call to a global function (set by the walk).
    pub global_calls: Vec<bool>,
    /// How strictly scalars are compared when pruning ([`super::unprivileged::scalar_compare`]):
    /// by range whether precise or not (unprivileged: the kernel makes every unknown scalar
    /// precise), or exactly (once a pointer moved by an unknown scalar: `explore_alu_limits`).
    pub strict_scalars: (bool, bool),
    /// States an earlier walk left counted: the kernel does not take the states it frees after
    /// a walk off the count its `peak_states` follows.
    carried: u32,
    pub stats: PruneStats,
}

/// A checkpoint that misses this many times more than `hits * n + n` is dropped.
const MISS_FACTOR: u32 = 3;

/// The kernel's prune points (`visit_insn`): conditional jumps and their targets, the targets
/// of `ja`, bpf-to-bpf calls and their callees' entries, the instruction after every call and
/// the calls of helpers that call back a callback at once; its jump points, the same without
/// the conditional jumps and bpf-to-bpf calls themselves; and those calls of helpers.
pub fn prune_points(analysis: &Analysis) -> (Vec<bool>, Vec<bool>, Vec<bool>) {
    let n = analysis.program.len();
    let mut jmp = vec![false; n];
    let mut prune = vec![false; n];
    let mut calls_callback = vec![false; n];
    for (i, flow) in analysis.cfg.flows.iter().enumerate() {
        match *flow {
            Flow::Branch { target } => {
                prune[i] = true;
                jmp[target as usize] = true;
            }
            Flow::Jump { target } => jmp[target as usize] = true,
            // A bpf-to-bpf call is itself a prune point, and the callee's entry a jump target
            // (`visit_func_call_insn` with `visit_callee`).
            Flow::Call { target } => {
                prune[i] = true;
                jmp[target as usize] = true;
                if i + 1 < n {
                    jmp[i + 1] = true;
                }
            }
            Flow::Helper { id } if super::callback::calls_back_at_once(id) => {
                calls_callback[i] = true;
                jmp[i] = true;
                if i + 1 < n {
                    jmp[i + 1] = true;
                }
            }
            Flow::Helper { .. } | Flow::CallX if i + 1 < n => {
                jmp[i + 1] = true;
            }
            _ => {}
        }
    }
    // A function's address (`lddw` with src 4) is visited as a call (`visit_func_call_insn`):
    // the `lddw` itself, the instruction after it and the function's entry.
    for (i, aux) in analysis.aux.iter().enumerate() {
        if let crate::analysis::Imm64::Func { entry } = aux.imm64 {
            prune[i] = true;
            if i + 1 < n {
                jmp[i + 1] = true;
            }
            if let Some(e) = jmp.get_mut(entry as usize) {
                *e = true;
            }
        }
    }
    for (p, j) in prune.iter_mut().zip(&jmp) {
        *p |= *j;
    }
    (prune, jmp, calls_callback)
}

impl Explored {
    pub fn new(analysis: &Analysis, live: Vec<RegSet>) -> Explored {
        let (prune_point, jmp_point, calls_callback) = prune_points(analysis);
        Explored {
            checkpoints: Vec::new(),
            lists: HashMap::new(),
            prune_point,
            jmp_point,
            calls_callback,
            live,
            jmps_processed: 0,
            prev_jmps_processed: 0,
            prev_insn_processed: 0,
            listed: 0,
            evicted_alive: 0,
            carried: 0,
            global_calls: Vec::new(),
            strict_scalars: (false, false),
            stats: PruneStats::default(),
        }
    }

    /// The counters that decide when a state is kept (jumps processed, and the jumps and
    /// instructions processed when one was last kept) and the states counted for the peak. The
    /// kernel keeps them in its env, so they run on from the main function's walk into each
    /// global function's.
    pub fn pace(&self) -> [u64; 4] {
        [
            self.jmps_processed,
            self.prev_jmps_processed,
            self.prev_insn_processed,
            (self.carried + self.listed + self.evicted_alive) as u64,
        ]
    }

    /// Goes on with the counters of an earlier walk ([`Explored::pace`]).
    pub fn resume_pace(&mut self, [jmps, prev_jmps, prev_insns, states]: [u64; 4]) {
        self.jmps_processed = jmps;
        self.prev_jmps_processed = prev_jmps;
        self.prev_insn_processed = prev_insns;
        self.carried = states as u32;
    }

    pub fn is_prune_point(&self, insn: usize) -> bool {
        self.prune_point.get(insn).copied().unwrap_or(false)
    }

    pub fn is_jmp_point(&self, insn: usize) -> bool {
        self.jmp_point.get(insn).copied().unwrap_or(false)
    }

    /// The nearest checkpoint above the current path (which descends from `parent`) taken at
    /// `insn` with the same call sites as `cur` (`find_prev_entry`): the state a callback's run
    /// started from, when the walk comes back to the helper's call.
    pub fn ancestor_at(
        &self,
        mut parent: Option<usize>,
        insn: usize,
        cur: &VerifierState,
    ) -> Option<&VerifierState> {
        let same_sites = |s: &VerifierState| {
            s.frames.len() == cur.frames.len()
                && s.frames
                    .iter()
                    .zip(&cur.frames)
                    .all(|(a, b)| a.callsite == b.callsite)
        };
        while let Some(p) = parent {
            let cp = &self.checkpoints[p];
            if cp.insn == insn && same_sites(&cp.state) {
                return Some(&cp.state);
            }
            parent = cp.segment.parent;
        }
        None
    }

    /// Counts a jump instruction (calls and exits included), for the heuristics.
    pub fn count_jump(&mut self) {
        self.jmps_processed += 1;
    }

    /// A path descending from `parent` forked: one more path below it.
    pub fn fork(&mut self, parent: Option<usize>) {
        if let Some(p) = parent {
            self.checkpoints[p].branches += 1;
        }
    }

    /// A path descending from `parent` ended (`update_branch_counts`).
    pub fn finish(&mut self, mut parent: Option<usize>) {
        while let Some(p) = parent {
            let cp = &mut self.checkpoints[p];
            cp.branches -= 1;
            if cp.branches > 0 {
                return;
            }
            if !cp.listed {
                self.evicted_alive -= 1;
            }
            parent = cp.segment.parent;
        }
    }

    /// `is_state_visited` for the current path at prune point `insn`, reached from
    /// `prev_insn`: `processed` is the number of instructions processed so far (this one
    /// included), `ids_in_use` the largest id handed out; `segment` is the path since its
    /// checkpoint, restarted when one is added here.
    pub fn visit(
        &mut self,
        cur: &VerifierState,
        insn: usize,
        prev_insn: usize,
        processed: u64,
        ids_in_use: u32,
        segment: &mut Segment,
    ) -> Visit {
        // A long history since the last checkpoint forces one, as does a call of a helper that
        // calls back a callback (the walk comes back to it after each run).
        let calls_callback = self.calls_callback.get(insn).copied().unwrap_or(false);
        let force = segment.kernel_entries > 40 || calls_callback;
        let mut add_new_state = force
            || (self.jmps_processed - self.prev_jmps_processed >= 2
                && processed - self.prev_insn_processed >= 8);
        let key = (insn, cur.frames.iter().map(|f| f.callsite).collect());
        let list = self.lists.entry(key).or_default();
        let mut states_cnt = 0u32;
        // Newest first, as the kernel adds to the head of its list.
        let mut k = list.len();
        while k > 0 {
            k -= 1;
            let idx = list[k];
            states_cnt += 1;
            let cp = &mut self.checkpoints[idx];
            if cp.branches > 0 && calls_callback {
                // Back at the helper's call after a run of its callback: a state within an
                // earlier one at this call means further runs find nothing new (the kernel
                // compares every scalar by range here, precise or not).
                if states_equal(
                    &cp.state,
                    cur,
                    insn,
                    &self.live,
                    ids_in_use,
                    Compare::RangeWithin,
                    true,
                ) {
                    cp.hits += 1;
                    self.close_loop(segment.parent, idx);
                    return Visit::Pruned(idx);
                }
            } else if cp.branches > 0 {
                // An ancestor of this path: the same state again is a loop without end.
                if cp.state.callback_unroll_depth == cur.callback_unroll_depth
                    && maybe_looping(&cp.state, cur)
                    && states_equal(
                        &cp.state,
                        cur,
                        insn,
                        &self.live,
                        ids_in_use,
                        Compare::Exact,
                        false,
                    )
                {
                    return Visit::InfiniteLoop(cp.state.clone());
                }
                // Inside a loop, iterations rarely cover each other: add fewer checkpoints.
                if !force
                    && self.jmps_processed - self.prev_jmps_processed < 20
                    && processed - self.prev_insn_processed < 100
                {
                    add_new_state = false;
                }
            } else if states_equal(
                &cp.state,
                cur,
                insn,
                &self.live,
                ids_in_use,
                if self.strict_scalars.1 {
                    Compare::Exact
                } else {
                    Compare::NotExact
                },
                !self.strict_scalars.0,
            ) {
                cp.hits += 1;
                return Visit::Pruned(idx);
            }
            if add_new_state {
                cp.misses += 1;
            }
            if cp.misses > cp.hits * MISS_FACTOR + MISS_FACTOR {
                // Unlikely to help: dropped from the list (kept while paths descend from it).
                cp.listed = false;
                self.listed -= 1;
                if cp.branches > 0 {
                    self.evicted_alive += 1;
                }
                list.remove(k);
            }
        }
        self.stats.max_states_per_insn = self.stats.max_states_per_insn.max(states_cnt);
        if !add_new_state {
            return Visit::Continue;
        }
        self.stats.total_states += 1;
        self.listed += 1;
        let counted = self.carried + self.listed + self.evicted_alive;
        self.stats.peak_states = self.stats.peak_states.max(counted);
        self.prev_jmps_processed = self.jmps_processed;
        self.prev_insn_processed = processed;
        let idx = self.checkpoints.len();
        let mut state = cur.clone();
        precision::clear_precision(&mut state);
        let restarted = Segment {
            parent: Some(idx),
            first_insn: insn,
            history: Vec::new(),
            kernel_entries: 0,
        };
        self.checkpoints.push(Checkpoint {
            state,
            insn,
            branches: 1,
            segment: std::mem::replace(segment, restarted),
            last_insn: prev_insn,
            hits: 0,
            misses: 0,
            listed: true,
        });
        list.push(idx);
        Visit::Continue
    }

    /// A path descending from `parent` ended at checkpoint `ancestor`, one of its own ancestors
    /// (a callback's run came back to the helper's call within an earlier one): the checkpoints
    /// in between may now cover other states, while what their paths need precise is not all
    /// known (the paths on from `ancestor` are not walked to their end yet). The kernel compares
    /// such checkpoints by range until their loop is done (`incomplete_read_marks`); here every
    /// scalar of theirs becomes precise, which compares them by range from then on.
    fn close_loop(&mut self, mut parent: Option<usize>, ancestor: usize) {
        while let Some(p) = parent.filter(|&p| p != ancestor) {
            let cp = &mut self.checkpoints[p];
            precision::make_scalars_precise(&mut cp.state);
            parent = cp.segment.parent;
        }
    }

    /// The current path was pruned at `insn` by checkpoint `idx`: what that checkpoint needed
    /// precise, the path's checkpoints need too (`propagate_precision`).
    pub fn propagate_precision(
        &mut self,
        idx: usize,
        insns: &[Instruction],
        segment: &Segment,
        insn: usize,
        mut log: Option<precision::PrecisionLog<'_>>,
    ) {
        let wanted = precision::precise_marks(&self.checkpoints[idx].state);
        if let (Some(l), Some(line)) = (log.as_mut(), precision::propagating_line(&wanted)) {
            l.out.push_str(&line);
        }
        precision::mark_chain_precision(self, insns, segment, insn, wanted, log);
    }

    /// Instruction `insn` of the current path needs `wanted` precise.
    pub fn mark_precise(
        &mut self,
        insns: &[Instruction],
        segment: &Segment,
        insn: usize,
        wanted: precision::Wanted,
        log: Option<precision::PrecisionLog<'_>>,
    ) {
        precision::mark_chain_precision(self, insns, segment, insn, wanted, log);
    }
}

impl Checkpoints for Explored {
    fn segment(&self, idx: usize) -> &Segment {
        &self.checkpoints[idx].segment
    }

    fn last_insn(&self, idx: usize) -> usize {
        self.checkpoints[idx].last_insn
    }

    fn state_mut(&mut self, idx: usize) -> &mut VerifierState {
        &mut self.checkpoints[idx].state
    }

    fn calls_global(&self, insn: usize) -> bool {
        self.global_calls.get(insn).copied().unwrap_or(false)
    }
}
