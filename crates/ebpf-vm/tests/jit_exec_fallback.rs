//! The JIT's fallback executable memory (`jit/exec_mem/paged.rs`), which a process takes when
//! no code arena can be mapped (`memfd_create` or `mmap` refused): pages of each program's own,
//! read+execute and private, switched with `mprotect`. A process of its own (this test binary,
//! one test), as the choice is made once, at the first load.
#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

mod common;

use common::*;
use ebpf_vm::jit::JitProgram;
use ebpf_vm::Engine;

#[test]
fn loads_run_from_private_pages_when_the_fallback_is_forced() {
    assert!(ebpf_vm::jit::force_mprotect_exec_memory());
    let jit = JitProgram::compile(&counted(5, 3)).unwrap();
    let (perms, path) = mapping(jit.code_ptr() as usize).expect("code is mapped");
    assert_eq!((perms.as_str(), path.as_str()), ("r-xp", ""));
    // Loads, runs and drops, also from several threads at once.
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..50 {
                    let value = 1000 * (t + 1) + i;
                    let p = load(&counted(value, i % 40), Engine::Jit).unwrap();
                    assert_eq!(run_ok(&p, &mut [], "fallback").r0, value as u64);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    assert!(!maps.contains("ebpf-jit-code"), "an arena was mapped");
}
