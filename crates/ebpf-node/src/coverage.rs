//! A program's coverage (`ebpf_vm::coverage`) as plain data for JavaScript: hits per instruction
//! slot and the counts of each conditional jump. Counts are f64 (exact to 2^53).

use ebpf_vm::coverage::CoverageReport;
use napi_derive::napi;

#[napi(object)]
pub struct NativeBranch {
    pub slot: u32,
    pub taken: f64,
    pub not_taken: f64,
}

#[napi(object)]
pub struct NativeCoverage {
    /// Hits per instruction slot (0 for the second slot of an `lddw`).
    pub hits: Vec<f64>,
    pub branches: Vec<NativeBranch>,
}

pub fn to_js(c: CoverageReport) -> NativeCoverage {
    NativeCoverage {
        hits: c.hits.iter().map(|&h| h as f64).collect(),
        branches: (c.branches.iter())
            .map(|b| NativeBranch {
                slot: b.slot as u32,
                taken: b.taken as f64,
                not_taken: b.not_taken as f64,
            })
            .collect(),
    }
}
