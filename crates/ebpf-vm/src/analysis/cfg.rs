//! Basic blocks and the control-flow graph between them, inside each function (calls come back,
//! so a call is no edge here: the call graph is in `functions.rs`).
//!
//! A block starts at a function entry, at a jump target, or after an instruction that ends a block
//! (`Flow::ends_block`: jumps, `exit`, calls that may not come back here in this frame). Every
//! block is a range of logical instructions. Edges and reverse postorder are what the dominator,
//! loop and dataflow passes walk; reverse postorder starts at each function's entry (the main
//! function first), so blocks no entry reaches have no number.

use super::flow::Flow;
use super::functions::Functions;

/// A sentinel for "none" in the dense `u32` tables.
pub(crate) const NONE: u32 = u32::MAX;

/// A range of logical instructions `start..end` that runs straight through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Block {
    pub start: usize,
    pub end: usize,
}

/// Lists of neighbours, one per node, in one flat vector (compressed sparse rows).
#[derive(Clone, Debug, Default)]
pub struct Adjacency {
    offsets: Vec<u32>,
    targets: Vec<u32>,
}

impl Adjacency {
    fn from_pairs(nodes: usize, pairs: &[(u32, u32)]) -> Adjacency {
        let mut offsets = vec![0u32; nodes + 1];
        for &(from, _) in pairs {
            offsets[from as usize + 1] += 1;
        }
        for i in 0..nodes {
            offsets[i + 1] += offsets[i];
        }
        let mut fill = offsets.clone();
        let mut targets = vec![0u32; pairs.len()];
        for &(from, to) in pairs {
            targets[fill[from as usize] as usize] = to;
            fill[from as usize] += 1;
        }
        Adjacency { offsets, targets }
    }

    pub fn of(&self, node: usize) -> &[u32] {
        &self.targets[self.offsets[node] as usize..self.offsets[node + 1] as usize]
    }
}

/// The blocks of a program and the edges between them.
#[derive(Clone, Debug, Default)]
pub struct Cfg {
    /// What control does after each instruction.
    pub flows: Vec<Flow>,
    pub blocks: Vec<Block>,
    /// Instruction -> block.
    block_of: Vec<u32>,
    succs: Adjacency,
    preds: Adjacency,
    /// The first block of each function, in function order.
    pub entries: Vec<usize>,
    /// Blocks reachable from their function's entry, in reverse postorder.
    pub rpo: Vec<u32>,
    /// Block -> position in `rpo`, `NONE` when unreachable from its function's entry.
    rpo_number: Vec<u32>,
}

impl Cfg {
    /// Splits the program into blocks. The functions' ranges have been checked, so every edge
    /// stays inside one function.
    pub fn build(flows: Vec<Flow>, functions: &Functions) -> Cfg {
        let n = flows.len();
        let mut leader = vec![false; n];
        for f in &functions.funcs {
            leader[f.start] = true;
        }
        for (i, flow) in flows.iter().enumerate() {
            if let Some(t) = flow.jump_target() {
                leader[t] = true;
            }
            if flow.ends_block() && i + 1 < n {
                leader[i + 1] = true;
            }
        }
        let mut blocks = Vec::new();
        let mut block_of = vec![0u32; n];
        for i in 0..n {
            if leader[i] {
                if let Some(last) = blocks.last_mut() {
                    let last: &mut Block = last;
                    last.end = i;
                }
                blocks.push(Block { start: i, end: n });
            }
            block_of[i] = (blocks.len() - 1) as u32;
        }
        let mut pairs = Vec::with_capacity(blocks.len() * 2);
        for (b, block) in blocks.iter().enumerate() {
            let last = block.end - 1;
            let flow = flows[last];
            if flow.falls_through() && block.end < n {
                pairs.push((b as u32, block_of[block.end]));
            }
            if let Some(t) = flow.jump_target() {
                let to = block_of[t];
                if !(flow.falls_through() && block.end < n && block_of[block.end] == to) {
                    pairs.push((b as u32, to));
                }
            }
        }
        let succs = Adjacency::from_pairs(blocks.len(), &pairs);
        let reversed: Vec<(u32, u32)> = pairs.iter().map(|&(a, b)| (b, a)).collect();
        let preds = Adjacency::from_pairs(blocks.len(), &reversed);
        let entries: Vec<usize> = functions
            .funcs
            .iter()
            .map(|f| block_of[f.start] as usize)
            .collect();
        let mut cfg = Cfg {
            flows,
            blocks,
            block_of,
            succs,
            preds,
            entries,
            rpo: Vec::new(),
            rpo_number: Vec::new(),
        };
        cfg.number();
        cfg
    }

    /// Reverse postorder of a depth-first search from each function's entry.
    fn number(&mut self) {
        let n = self.blocks.len();
        let mut seen = vec![false; n];
        let mut post: Vec<u32> = Vec::with_capacity(n);
        let mut stack: Vec<(u32, u32)> = Vec::new();
        // Later functions first, so that after the reversal the main function comes first.
        for &entry in self.entries.iter().rev() {
            if seen[entry] {
                continue;
            }
            seen[entry] = true;
            stack.push((entry as u32, 0));
            while let Some(&mut (b, ref mut next)) = stack.last_mut() {
                let succs = self.succs.of(b as usize);
                if let Some(&s) = succs.get(*next as usize) {
                    *next += 1;
                    if !seen[s as usize] {
                        seen[s as usize] = true;
                        stack.push((s, 0));
                    }
                } else {
                    post.push(b);
                    stack.pop();
                }
            }
        }
        post.reverse();
        let mut number = vec![NONE; n];
        for (i, &b) in post.iter().enumerate() {
            number[b as usize] = i as u32;
        }
        self.rpo = post;
        self.rpo_number = number;
    }

    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// The block holding instruction `index`.
    pub fn block_of(&self, index: usize) -> usize {
        self.block_of[index] as usize
    }

    pub fn succs(&self, block: usize) -> &[u32] {
        self.succs.of(block)
    }

    pub fn preds(&self, block: usize) -> &[u32] {
        self.preds.of(block)
    }

    /// The block's position in reverse postorder, `None` when its function's entry never
    /// reaches it.
    pub fn rpo_number(&self, block: usize) -> Option<usize> {
        match self.rpo_number[block] {
            NONE => None,
            i => Some(i as usize),
        }
    }

    /// Whether the block is the entry of a function.
    pub fn is_entry(&self, block: usize) -> bool {
        self.entries.binary_search(&block).is_ok()
    }
}
