//! The JIT's executable memory (`jit/exec_mem`): code arenas of a memory file mapped twice
//! (read+execute where code runs, read+write where loads write), shared by many loads. Freed
//! code is overwritten with `int3` and its room reused; loads and drops from many threads at
//! once; after `fork`, neither process writes code that the other's copy of a program runs.
//! Every program returns a value worked out by hand (`sized`). The tests run one at a time (a
//! fork copies the whole process, so no other test may be half-way through a load then).
#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

mod common;

use common::*;
use ebpf_vm::jit::{JitOptions, JitProgram};
use ebpf_vm::{Engine, Program};
use std::sync::Mutex;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// `counted`'s program on the JIT, and the value it returns.
fn sized(value: u32, adds: u32) -> (Program, u64) {
    let p = load(&counted(value, adds), Engine::Jit).expect("loads");
    (p, value as u64)
}

/// Runs each program and compares its r0 with the value it was built to return.
fn check(programs: &[(Program, u64)], what: &str) -> Result<(), String> {
    for (p, want) in programs {
        let got = run_ok(p, &mut [], what).r0;
        if got != *want {
            return Err(format!("{what}: r0 = {got}, not {want}"));
        }
    }
    Ok(())
}

/// Loads `n` programs of assorted sizes, checks and keeps every `keep`-th, drops the rest.
fn churn(base: u32, n: u32, keep: u32) -> Result<Vec<(Program, u64)>, String> {
    let mut kept = Vec::new();
    for i in 0..n {
        let p = sized(base + i, (i * 7) % 150);
        check(std::slice::from_ref(&p), "churn")?;
        if i % keep == 0 {
            kept.push(p);
        }
    }
    Ok(kept)
}

/// `counted`'s program, compiled alone (for its code's address), constants as they are (so the
/// same program compiles to the same bytes).
fn compiled(value: u32, adds: u32) -> JitProgram {
    let options = JitOptions {
        blind_constants: false,
        ..JitOptions::default()
    };
    JitProgram::compile_with(&counted(value, adds), options).expect("compiles")
}

/// The code as it runs (its read+execute view is readable).
fn code(p: &JitProgram) -> &[u8] {
    // SAFETY: the program's code, mapped while `p` lives.
    unsafe { std::slice::from_raw_parts(p.code_ptr(), p.code_len()) }
}

#[test]
fn code_runs_from_a_shared_read_execute_view_and_freed_code_traps() {
    let _serial = serial();
    let a = compiled(1000, 0);
    let b = compiled(2000, 100);
    let (at_a, at_b, len_b) = (a.code_ptr() as usize, b.code_ptr() as usize, b.code_len());
    let (perms, path) = mapping(at_a).unwrap();
    assert_eq!(perms, "r-xs");
    assert!(path.contains("memfd:ebpf-jit-code"), "{path}");
    // The arenas' file is mapped read+execute and read+write, never both at once.
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let views: Vec<&str> = (maps.lines())
        .filter(|l| l.contains("memfd:ebpf-jit-code"))
        .map(|l| l.split(' ').nth(1).unwrap())
        .collect();
    assert!(
        views.contains(&"r-xs") && views.contains(&"rw-s"),
        "{views:?}"
    );
    assert!(
        views.iter().all(|&v| v == "r-xs" || v == "rw-s"),
        "{views:?}"
    );
    let code_b = code(&b).to_vec();
    drop(b);
    if mapping(at_b) == mapping(at_a) {
        // SAFETY: inside the arena's read+execute view, which `a` keeps mapped.
        let freed = unsafe { std::slice::from_raw_parts(at_b as *const u8, len_b) };
        assert!(
            freed.iter().all(|&x| x == 0xcc),
            "freed code left as it was"
        );
    }
    // The same program again: the same bytes, wherever it lands.
    let b = compiled(2000, 100);
    assert_eq!(code(&b), &code_b[..]);
    check(&[sized(1000, 0), sized(2000, 100)], "after the drop").unwrap();
}

#[test]
fn loads_and_drops_from_many_threads() {
    let _serial = serial();
    let threads: Vec<_> = (0..8u32)
        .map(|t| {
            std::thread::spawn(move || {
                let mut kept = Vec::new();
                for round in 0..5 {
                    kept.extend(churn(10_000 * (t + 1) + 1000 * round, 60, 5)?);
                    check(&kept, "kept across rounds")?;
                    // Give back half of what this thread kept, oldest first.
                    kept.drain(..kept.len() / 2);
                }
                Ok::<_, String>(())
            })
        })
        .collect();
    for t in threads {
        t.join().expect("no panic").unwrap();
    }
}

fn pipe() -> (i32, i32) {
    let mut fds = [0; 2];
    // SAFETY: a two-int array for pipe(2) to fill.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    (fds[0], fds[1])
}

fn signal(fd: i32) {
    // SAFETY: one byte from a live buffer to a pipe of ours.
    assert_eq!(unsafe { libc::write(fd, [1u8].as_ptr().cast(), 1) }, 1);
}

fn wait_for(fd: i32) -> bool {
    let mut b = [0u8];
    // SAFETY: one byte into a live buffer from a pipe of ours.
    unsafe { libc::read(fd, b.as_mut_ptr().cast(), 1) == 1 }
}

/// The child's side: drops its copies of half the parent's programs (a scheme that filled them
/// with `int3` would break the parent's), loads and drops programs of its own (a scheme that
/// handed out the parent's free room would have both write it), and runs its own and the
/// inherited programs before and after the parent does the same.
fn in_child(mut inherited: Vec<(Program, u64)>, go: i32, done: i32) -> Result<(), String> {
    // Drops the first four; the parent drops the others.
    let inherited = inherited.split_off(4);
    let own = churn(50_000, 240, 3)?;
    check(&inherited, "child: inherited")?;
    check(&own, "child: own")?;
    signal(done);
    if !wait_for(go) {
        return Err("child: no word from the parent".into());
    }
    check(&inherited, "child: inherited, after the parent's loads")?;
    check(&own, "child: own, after the parent's loads")?;
    Ok(())
}

#[test]
fn after_a_fork_neither_process_writes_code_the_other_runs() {
    let _serial = serial();
    // Programs of the parent across the fork, and room freed before it.
    let mut kept: Vec<(Program, u64)> = (0..8).map(|i| sized(1000 + i, 20 * i)).collect();
    drop(churn(3000, 40, 1000));
    let ((child_reads, parent_writes), (parent_reads, child_writes)) = (pipe(), pipe());
    // SAFETY: the test threads wait on `ONE_AT_A_TIME`; the child only loads, runs and exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = match in_child(std::mem::take(&mut kept), child_reads, child_writes) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("{e}");
                1
            }
        };
        // SAFETY: leaves the child at once, running nothing of the parent's test harness.
        unsafe { libc::_exit(code) };
    }
    assert!(wait_for(parent_reads), "the child stopped early");
    // Drop the programs the child still runs its copies of, and load many: a scheme that
    // reused their room, or the room of the child's own programs, would write code it runs.
    let inherited_by_child_only = kept.split_off(4);
    drop(inherited_by_child_only);
    let own = churn(70_000, 240, 3).unwrap();
    signal(parent_writes);
    let mut status = 0;
    // SAFETY: waits for the child forked above.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the child failed (status {status:#x})"
    );
    check(&kept, "parent: after the child dropped its copies").unwrap();
    check(&own, "parent: own").unwrap();
    // Loads go on as before.
    check(&churn(90_000, 60, 2).unwrap(), "parent: later loads").unwrap();
}

/// The arenas mapped now (their read+execute views).
fn arenas() -> usize {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    (maps.lines())
        .filter(|l| l.contains("memfd:ebpf-jit-code") && l.contains(" r-xs "))
        .count()
}

#[test]
fn arenas_no_program_uses_are_given_back_but_one() {
    let _serial = serial();
    let before = arenas();
    // About 4 KB of code each: more than one 1 MiB arena's worth.
    let held: Vec<JitProgram> = (0..300).map(|i| compiled(5000 + i, 700)).collect();
    assert!(held.iter().map(|p| p.code_len()).sum::<usize>() > 1 << 20);
    assert!(arenas() >= 2, "{} arenas", arenas());
    drop(held);
    // The arenas these programs filled are unmapped, but for one kept for the next load.
    assert!(
        arenas() <= before + 1,
        "{before} arenas before, {} after",
        arenas()
    );
}
