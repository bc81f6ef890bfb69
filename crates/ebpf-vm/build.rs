//! Tells the crate whether it is compiled with optimisation (`cfg(ebpf_optimized)`): the
//! interpreter's handlers call each other in tail position, which only an optimising compile
//! turns into jumps; without one, a chain must return now and then to bound the stack
//! (`interpreter/threaded.rs`, `FUEL`). Cargo passes the profile's `opt-level` here; the
//! `debug_assertions` cfg would be a guess (a profile may set either without the other).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(ebpf_optimized)");
    println!("cargo::rerun-if-changed=build.rs");
    let level = std::env::var("OPT_LEVEL").unwrap_or_default();
    if !level.is_empty() && level != "0" {
        println!("cargo::rustc-cfg=ebpf_optimized");
    }
}
