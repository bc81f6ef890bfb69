//! What the JIT reads of the analysis (`crate::analysis`): jump and call targets, where loops
//! start in the code, the JIT's basic blocks and its metered chains, all from the analysis' flows,
//! natural loops and functions (no pass of its own over jump offsets). Loop heads are where the
//! analysis' natural loops (from dominators) start in the code. The counted-loop pattern inside
//! one chain is matched on its instructions by `jit::loops`.

use crate::analysis::{Analysis, Flow, LogicalProgram};

/// Whether an instruction ends one of the JIT's basic blocks: it jumps, calls or exits. Helper
/// calls end blocks too, although control comes back to the next instruction: a helper may
/// charge the budget (callbacks, see `helpers/callbacks.rs`), so what is left of it is known only
/// after the call, and the next block meters itself against that. (Finer than the analysis'
/// blocks, which plain helper calls do not end; legacy packet loads end those, not these.)
pub(super) fn ends_block(flow: Flow) -> bool {
    !matches!(flow, Flow::Next | Flow::PacketLoad)
}

/// What the JIT needs of the analysis, by slot: where each jump and local call goes (resolved
/// once by the analysis), where loops start in the code, and the metered chains.
pub struct Shape {
    /// Slot -> the slot its jump or local call goes to, `NO_TARGET` for other instructions.
    target: Vec<u32>,
    /// Where each natural loop's code starts: its first block in the layout
    /// (`Loops::first_blocks`; clang rotates loops, so that is often not the header). These are
    /// aligned, and only these can head a counted loop (`loops::fast_loop`: a chain that jumps
    /// back to its own start is a loop whose header is that start). Backward jumps that close no
    /// natural loop (irreducible cycles) head nothing.
    pub loop_heads: Vec<bool>,
    /// For each slot starting a metered chain, its number of instructions (0 elsewhere).
    pub chains: Vec<u32>,
    /// The jumps and local calls that go back (to their own slot or before it), as (target
    /// slot, slot): where the pool looks for loops' constants (`compile::pooled`) without a walk
    /// over all the jumps.
    pub back: Vec<(u32, u32)>,
}

const NO_TARGET: u32 = u32::MAX;

impl Shape {
    pub fn of(analysis: &Analysis) -> Shape {
        let p = &analysis.program;
        // The targets are found in the chains' walk over the flows (one walk, not two).
        let mut target = vec![NO_TARGET; p.slot_count()];
        let mut back = Vec::new();
        let head = chain_heads(analysis, |i, t| {
            let (from, to) = (p.slot(i) as u32, p.slot(t) as u32);
            target[from as usize] = to;
            if to <= from {
                back.push((to, from));
            }
        });
        let mut loop_heads = vec![false; p.slot_count()];
        for b in analysis.loops.first_blocks() {
            loop_heads[p.slot(analysis.cfg.blocks[b].start)] = true;
        }
        Shape {
            target,
            loop_heads,
            chains: count_runs(p, &head),
            back,
        }
    }

    /// The slot the jump or local call at slot `pc` goes to.
    pub(super) fn target(&self, pc: usize) -> Option<usize> {
        match self.target[pc] {
            NO_TARGET => None,
            t => Some(t as usize),
        }
    }
}

/// Where a jump or local call goes (logical index).
pub(super) fn flow_target(flow: Flow) -> Option<usize> {
    match flow {
        Flow::Jump { target } | Flow::Branch { target } | Flow::Call { target } => {
            Some(target as usize)
        }
        _ => None,
    }
}

/// For each slot starting a metered chain, the number of instructions in that chain (0
/// elsewhere). A chain is a run of basic blocks that only the first can be entered other than by
/// falling through: each later block follows a conditional jump that leaves the innermost loop
/// holding it (a loop's early exit, rarely taken; a jump that stays inside the loop, such as a
/// switch inside a loop, may as well be its hot path) and is no jump or call target. Loops are
/// the analysis' natural loops (from dominators). The whole chain is charged on entry; a jump
/// taken out of its middle gives back what it skips (see `Snippet::Refund`). Chains only save
/// time; any split of the blocks into chains is exact. Functions start chains (callbacks are
/// entered there too).
pub fn chains(analysis: &Analysis) -> Vec<u32> {
    count_runs(&analysis.program, &chain_heads(analysis, |_, _| {}))
}

/// By slot, whether a metered chain starts there (see `chains`); `jump(i, t)` is called for
/// each jump or local call, at logical index `i`, to `t`.
fn chain_heads(analysis: &Analysis, mut jump: impl FnMut(usize, usize)) -> Vec<bool> {
    let (p, cfg, loops) = (&analysis.program, &analysis.cfg, &analysis.loops);
    // A conditional jump joins its chain to the next block when it leaves the innermost loop
    // holding it.
    let leaves_loop = |i: usize, t: usize| {
        loops
            .loop_of(cfg.block_of(i))
            .is_some_and(|l| !loops.contains(l, cfg.block_of(t)))
    };
    let mut head = vec![false; p.slot_count()];
    for f in &analysis.functions.funcs {
        head[p.slot(f.start)] = true;
    }
    for (i, &flow) in cfg.flows.iter().enumerate() {
        let t = flow_target(flow);
        if let Some(t) = t {
            head[p.slot(t)] = true;
            jump(i, t);
        }
        let joins = matches!(flow, Flow::Branch { .. }) && t.is_some_and(|t| leaves_loop(i, t));
        if ends_block(flow) && !joins && i + 1 < p.len() {
            head[p.slot(i + 1)] = true;
        }
    }
    head
}

/// For each `true` slot of `head`, the number of instructions up to the next one (those before
/// the first are counted at slot 0). Found from the heads alone, as the difference of their
/// instruction indices: a scan of `head` and one lookup per head, where counting instruction by
/// instruction took three indexed accesses each (~15 machine instructions a slot).
pub(super) fn count_runs(p: &LogicalProgram, head: &[bool]) -> Vec<u32> {
    let mut count = vec![0u32; p.slot_count()];
    if p.is_empty() {
        return count;
    }
    // The run being counted: its slot and its first instruction's index.
    let (mut current, mut first) = (0, 0);
    for (pc, _) in head.iter().enumerate().skip(1).filter(|&(_, &h)| h) {
        // A head is an instruction's first slot (no jump lands inside an `lddw`).
        let i = p.index_of_slot(pc).expect("a run starts at an instruction");
        count[current] = (i - first) as u32;
        (current, first) = (pc, i);
    }
    count[current] = (p.len() - first) as u32;
    count
}

/// For each slot starting a basic block of the JIT (see `ends_block`), the number of
/// instructions in that block (0 elsewhere).
pub fn blocks(analysis: &Analysis) -> Vec<u32> {
    let p = &analysis.program;
    let mut leader = vec![false; p.slot_count()];
    leader[0] = true;
    for (i, &flow) in analysis.cfg.flows.iter().enumerate() {
        if let Some(t) = flow_target(flow) {
            leader[p.slot(t)] = true;
        }
        if ends_block(flow) && i + 1 < p.len() {
            leader[p.slot(i + 1)] = true;
        }
    }
    count_runs(p, &leader)
}
