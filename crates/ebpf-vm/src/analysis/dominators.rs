//! Dominators of the blocks of each function: block `a` dominates `b` when every path from the
//! function's entry to `b` passes through `a`. Computed with the iterative algorithm of Cooper,
//! Harvey and Kennedy ("A Simple, Fast Dominance Algorithm", 2001) over reverse postorder: a few
//! passes on the graphs compilers produce, each linear. The tree is then numbered in preorder and
//! postorder so that "does `a` dominate `b`" is two comparisons.

use super::cfg::{Cfg, NONE};

#[derive(Clone, Debug, Default)]
pub struct Dominators {
    /// Block -> immediate dominator; `NONE` for function entries and unreachable blocks.
    idom: Vec<u32>,
    /// Preorder and postorder numbers in the dominator tree (`NONE` when unreachable).
    pre: Vec<u32>,
    post: Vec<u32>,
}

impl Dominators {
    pub fn compute(cfg: &Cfg) -> Dominators {
        let n = cfg.len();
        let mut idom = vec![NONE; n];
        // During the iteration an entry is its own dominator: the walk up stops there.
        for &e in &cfg.entries {
            idom[e] = e as u32;
        }
        let number = |b: u32| cfg.rpo_number(b as usize).map_or(u32::MAX, |i| i as u32);
        let intersect = |idom: &[u32], mut a: u32, mut b: u32| -> u32 {
            while a != b {
                while number(a) > number(b) {
                    let up = idom[a as usize];
                    if up == a {
                        return NONE; // different trees: only possible on a malformed graph
                    }
                    a = up;
                }
                while number(b) > number(a) {
                    let up = idom[b as usize];
                    if up == b {
                        return NONE;
                    }
                    b = up;
                }
            }
            a
        };
        let mut changed = true;
        while changed {
            changed = false;
            for &b in &cfg.rpo {
                if idom[b as usize] == b {
                    continue; // an entry
                }
                let mut new = NONE;
                for &p in cfg.preds(b as usize) {
                    if idom[p as usize] == NONE {
                        continue; // not processed yet, or unreachable
                    }
                    new = if new == NONE {
                        p
                    } else {
                        intersect(&idom, p, new)
                    };
                }
                if new != NONE && idom[b as usize] != new {
                    idom[b as usize] = new;
                    changed = true;
                }
            }
        }
        for &e in &cfg.entries {
            idom[e] = NONE;
        }
        let (pre, post) = number_tree(&idom, cfg);
        Dominators { idom, pre, post }
    }

    /// The immediate dominator of `block`; `None` for an entry or an unreachable block.
    pub fn idom(&self, block: usize) -> Option<usize> {
        match self.idom[block] {
            NONE => None,
            d => Some(d as usize),
        }
    }

    /// Whether `a` dominates `b` (every block dominates itself). False when either is unreachable.
    pub fn dominates(&self, a: usize, b: usize) -> bool {
        self.pre[a] != NONE
            && self.pre[b] != NONE
            && self.pre[a] <= self.pre[b]
            && self.post[b] <= self.post[a]
    }
}

/// Preorder and postorder numbers of the dominator tree (a forest: one tree per function).
fn number_tree(idom: &[u32], cfg: &Cfg) -> (Vec<u32>, Vec<u32>) {
    let n = idom.len();
    let mut child_count = vec![0u32; n + 1];
    for &d in idom {
        if d != NONE {
            child_count[d as usize + 1] += 1;
        }
    }
    for i in 0..n {
        child_count[i + 1] += child_count[i];
    }
    let mut fill = child_count.clone();
    let mut children = vec![0u32; child_count[n] as usize];
    for (b, &d) in idom.iter().enumerate() {
        if d != NONE {
            children[fill[d as usize] as usize] = b as u32;
            fill[d as usize] += 1;
        }
    }
    let mut pre = vec![NONE; n];
    let mut post = vec![NONE; n];
    let (mut pre_n, mut post_n) = (0u32, 0u32);
    let mut stack: Vec<(u32, u32)> = Vec::new();
    for &root in &cfg.entries {
        if pre[root] != NONE {
            continue;
        }
        pre[root] = pre_n;
        pre_n += 1;
        stack.push((root as u32, child_count[root]));
        while let Some(&mut (b, ref mut next)) = stack.last_mut() {
            if *next < child_count[b as usize + 1] {
                let c = children[*next as usize];
                *next += 1;
                pre[c as usize] = pre_n;
                pre_n += 1;
                stack.push((c, child_count[c as usize]));
            } else {
                post[b as usize] = post_n;
                post_n += 1;
                stack.pop();
            }
        }
    }
    (pre, post)
}
