//! Instructions no run can reach, as the kernel's `check_cfg` finds them ("unreachable insn N"): a
//! walk from instruction 0 along fall-through, jumps, bpf-to-bpf calls and function `lddw`s (a
//! callback is reachable when its address is taken on a reachable path). A function that only
//! the loader names, and that nothing calls, is unreachable. The kernel refuses such programs;
//! here they are listed, for the caller to decide.

use super::cfg::Cfg;
use super::functions::Functions;

/// The unreachable instructions (logical indices), in increasing order.
pub fn unreachable_instructions(cfg: &Cfg, functions: &Functions) -> Vec<usize> {
    let n = cfg.len();
    let mut seen = vec![false; n];
    let mut work = vec![cfg.block_of(0)];
    seen[cfg.block_of(0)] = true;
    // Call edges by calling block (a block may hold several calls and function lddws).
    let mut calls: Vec<(usize, usize)> = functions
        .calls
        .iter()
        .map(|c| {
            (
                cfg.block_of(c.site),
                cfg.block_of(functions.funcs[c.callee].start),
            )
        })
        .collect();
    calls.sort_unstable();
    while let Some(b) = work.pop() {
        let first = calls.partition_point(|&(from, _)| from < b);
        let called = calls[first..]
            .iter()
            .take_while(|&&(from, _)| from == b)
            .map(|&(_, entry)| entry);
        for s in cfg.succs(b).iter().map(|&s| s as usize).chain(called) {
            if !seen[s] {
                seen[s] = true;
                work.push(s);
            }
        }
    }
    let mut unreachable = Vec::new();
    for (b, block) in cfg.blocks.iter().enumerate() {
        if !seen[b] {
            unreachable.extend(block.start..block.end);
        }
    }
    unreachable
}
