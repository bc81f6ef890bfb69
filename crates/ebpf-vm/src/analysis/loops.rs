//! Natural loops, found from dominators rather than read off the layout.
//!
//! An edge `latch -> header` is a back edge when `header` dominates `latch`; the loop of a header
//! is every block that reaches one of its latches without passing through the header, with all
//! back edges to one header making one loop (a `continue` and the loop's own bottom are two latches
//! of one loop). Loops nest: headers are taken innermost first (decreasing reverse-postorder
//! number) and each finished loop is collapsed into its header with a union-find, so an outer loop
//! walks an inner one as a single node. That keeps the whole pass near-linear, however deep the
//! nest.
//!
//! A retreating edge (to a block no later in reverse postorder) whose target does not dominate its
//! source enters a cycle at more than one place: the graph is irreducible there. The kernel accepts
//! such programs (it explores paths, not loops), so it is reported here, not refused.

use super::cfg::{Cfg, NONE};
use super::dominators::Dominators;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loop {
    pub header: usize,
    /// Sources of the back edges to the header, in increasing block order.
    pub latches: Vec<usize>,
    /// The innermost loop that holds this one.
    pub parent: Option<usize>,
    /// 1 for an outermost loop.
    pub depth: u32,
}

/// An edge that enters a cycle other than through a block dominating the cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IrreducibleEdge {
    pub from: usize,
    pub to: usize,
}

#[derive(Clone, Debug, Default)]
pub struct Loops {
    /// Innermost loops first.
    pub loops: Vec<Loop>,
    /// Block -> innermost loop holding it (`NONE` outside every loop).
    loop_of: Vec<u32>,
    /// Each loop's number in a preorder of the loop forest, and one past the last number of the
    /// loops it holds: `m` is inside `l` exactly when its number lies in `l`'s span.
    preorder: Vec<(u32, u32)>,
    pub irreducible: Vec<IrreducibleEdge>,
}

impl Loops {
    pub fn compute(cfg: &Cfg, dom: &Dominators) -> Loops {
        let n = cfg.len();
        let mut latches_of: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut irreducible = Vec::new();
        let mut headers = Vec::new();
        for &b in &cfg.rpo {
            let b = b as usize;
            let from = cfg.rpo_number(b);
            for &s in cfg.succs(b) {
                let s = s as usize;
                if cfg.rpo_number(s) > from {
                    continue; // a forward edge
                }
                if dom.dominates(s, b) {
                    if latches_of[s].is_empty() {
                        headers.push(s);
                    }
                    latches_of[s].push(b);
                } else {
                    irreducible.push(IrreducibleEdge { from: b, to: s });
                }
            }
        }
        // Innermost first: a nested header comes later in reverse postorder than its outer one.
        headers.sort_unstable_by_key(|&h| std::cmp::Reverse(cfg.rpo_number(h)));

        let mut loop_of = vec![NONE; n];
        let mut rep: Vec<u32> = (0..n as u32).collect();
        let mut visited = vec![NONE; n];
        let mut loops: Vec<Loop> = Vec::with_capacity(headers.len());
        let mut work: Vec<usize> = Vec::new();
        for &h in &headers {
            let id = loops.len() as u32;
            let mut latches = std::mem::take(&mut latches_of[h]);
            latches.sort_unstable();
            loop_of[h] = id;
            visited[h] = id;
            work.extend(latches.iter().map(|&l| find(&mut rep, l)));
            while let Some(x) = work.pop() {
                if visited[x] == id {
                    continue;
                }
                visited[x] = id;
                let inner = loop_of[x];
                if inner != NONE && loops[inner as usize].header == x {
                    loops[inner as usize].parent = Some(id as usize);
                } else {
                    loop_of[x] = id;
                }
                rep[x] = h as u32;
                for &p in cfg.preds(x) {
                    if cfg.rpo_number(p as usize).is_none() {
                        continue;
                    }
                    let r = find(&mut rep, p as usize);
                    if visited[r] != id {
                        work.push(r);
                    }
                }
            }
            loops.push(Loop {
                header: h,
                latches,
                parent: None,
                depth: 0,
            });
        }
        // Parents come after their children: set depths outermost first.
        for l in (0..loops.len()).rev() {
            loops[l].depth = loops[l].parent.map_or(1, |p| loops[p].depth + 1);
        }
        let preorder = number_preorder(&loops);
        Loops {
            loops,
            loop_of,
            preorder,
            irreducible,
        }
    }

    /// The innermost loop holding `block`.
    pub fn loop_of(&self, block: usize) -> Option<usize> {
        match self.loop_of[block] {
            NONE => None,
            l => Some(l as usize),
        }
    }

    /// Whether loop `l` holds `block` (directly or through a nested loop), in constant time.
    pub fn contains(&self, l: usize, block: usize) -> bool {
        self.loop_of(block).is_some_and(|m| {
            let (start, end) = self.preorder[l];
            (start..end).contains(&self.preorder[m].0)
        })
    }

    /// The blocks of loop `l`, nested loops' included, in increasing order.
    pub fn body(&self, l: usize) -> Vec<usize> {
        (0..self.loop_of.len())
            .filter(|&b| self.contains(l, b))
            .collect()
    }

    /// Each loop's lowest-numbered block, by loop: where its code starts in the layout, since
    /// blocks are numbered in code order. That is the header for a loop laid out header first;
    /// a rotated loop (entered at its test at the bottom) starts at its body. One pass over the
    /// blocks: each loop and its ancestors are set by the first block found in them.
    pub fn first_blocks(&self) -> Vec<usize> {
        let mut first = vec![usize::MAX; self.loops.len()];
        for (b, &l) in self.loop_of.iter().enumerate() {
            let mut l = l;
            while l != NONE && first[l as usize] == usize::MAX {
                first[l as usize] = b;
                l = self.loops[l as usize].parent.map_or(NONE, |p| p as u32);
            }
        }
        first
    }

    /// How many loops hold `block` (0 outside every loop).
    pub fn depth_of(&self, block: usize) -> u32 {
        self.loop_of(block).map_or(0, |l| self.loops[l].depth)
    }
}

/// Numbers the loops in a preorder of the forest their parents make, with the span of each
/// loop's descendants: iteratively, as nests may be deep.
fn number_preorder(loops: &[Loop]) -> Vec<(u32, u32)> {
    let n = loops.len();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut roots = Vec::new();
    for (l, lp) in loops.iter().enumerate() {
        match lp.parent {
            Some(p) => children[p].push(l),
            None => roots.push(l),
        }
    }
    let mut span = vec![(0u32, 0u32); n];
    let mut counter = 0u32;
    // (loop, whether its children have been pushed)
    let mut stack: Vec<(usize, bool)> = roots.into_iter().rev().map(|r| (r, false)).collect();
    while let Some((l, done)) = stack.pop() {
        if done {
            span[l].1 = counter;
            continue;
        }
        span[l].0 = counter;
        counter += 1;
        stack.push((l, true));
        stack.extend(children[l].iter().rev().map(|&c| (c, false)));
    }
    span
}

/// The representative of `x`'s set, halving the path on the way.
fn find(rep: &mut [u32], mut x: usize) -> usize {
    while rep[x] as usize != x {
        let up = rep[rep[x] as usize];
        rep[x] = up;
        x = up as usize;
    }
    x
}
