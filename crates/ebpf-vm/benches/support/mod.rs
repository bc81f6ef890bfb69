//! What the benches share: the benchmark programs and their inputs, the native baseline, and one
//! runner per engine behind a common shape.
#![allow(dead_code)]

pub mod engines;
pub mod inputs;
pub mod load_parts;
pub mod native;
pub mod race;
