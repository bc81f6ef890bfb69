//! The JIT's fallback executable memory (`jit/exec_mem/paged.rs`), which a process takes when
//! no code arena can be mapped (`memfd_create` or `mmap` refused): pages of each program's own,
//! read+execute and private, switched with `mprotect`. A process of its own (this test binary,
//! one test), as the choice is made once, at the first load.
#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

mod common;

use common::*;
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::jit::JitProgram;
use ebpf_vm::Engine;

/// The permissions and path of the mapping holding `addr`, from /proc/self/maps.
fn mapping(addr: usize) -> Option<(String, String)> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (lo, hi) = f[0].split_once('-')?;
        let lo = usize::from_str_radix(lo, 16).ok()?;
        let hi = usize::from_str_radix(hi, 16).ok()?;
        (lo <= addr && addr < hi).then(|| (f[1].to_string(), f[5..].join(" ")))
    })
}

#[test]
fn loads_run_from_private_pages_when_the_fallback_is_forced() {
    assert!(ebpf_vm::jit::force_mprotect_exec_memory());
    let code = |value: i32, adds: i32| {
        let mut p = vec![mov64_imm(0, value - adds)];
        p.extend((0..adds).map(|_| alu64_imm(ALU_ADD, 0, 1)));
        p.push(exit());
        p
    };
    let jit = JitProgram::compile(&code(5, 3)).unwrap();
    let (perms, path) = mapping(jit.code_ptr() as usize).expect("code is mapped");
    assert_eq!((perms.as_str(), path.as_str()), ("r-xp", ""));
    // Loads, runs and drops, also from several threads at once: r0 = value - adds + adds.
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..50 {
                    let value = 1000 * (t + 1) + i;
                    let p = load(&code(value, i % 40), Engine::Jit).unwrap();
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
