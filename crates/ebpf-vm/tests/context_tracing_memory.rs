//! Tracing programs reading the caller's address space: memory images at addresses, read with
//! the probe-read helpers (4, 45, 112-115), the task address of `get_current_task` (35, 158).
//! Expected values are computed by hand from the images; the kernel's behaviour (-EFAULT, -ERANGE
//! for user-half addresses with the kernel forms, `_str` lengths including the NUL, truncation)
//! is Linux 6.18's (kernel/trace/bpf_trace.c, mm/maccess.c), the error codes checked against the
//! live kernel with raw_tracepoint test runs (see `helpers/probe_read.rs`). Both engines.

mod context_support;

use context_support::*;
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::{
    AddressSpace, ContextInput, Engine, MemoryImage, ProcessInfo, Program, ProgramOptions,
    ProgramType, RunInput, TrapKind,
};

/// A fake task at a kernel-half address: pid (u32) at 0, tgid (u32) at 4, a pointer to a name
/// at 8, a NUL-terminated comm at 16.
const TASK: u64 = 0xffff_8880_0000_1000;
const NAME: u64 = 0xffff_8880_0000_2000;
const USER_BUF: u64 = 0x7f00_0000_0000;

fn images() -> Vec<MemoryImage> {
    let mut task = vec![0u8; 32];
    task[0..4].copy_from_slice(&4242u32.to_le_bytes());
    task[4..8].copy_from_slice(&4200u32.to_le_bytes());
    task[8..16].copy_from_slice(&NAME.to_le_bytes());
    task[16..21].copy_from_slice(b"bash\0");
    vec![
        MemoryImage {
            address: TASK,
            bytes: task,
        },
        // "hello, world" without a NUL: the image ends after the 'd'.
        MemoryImage {
            address: NAME,
            bytes: b"hello, world".to_vec(),
        },
        MemoryImage {
            address: USER_BUF,
            bytes: b"user\0".to_vec(),
        },
    ]
}

fn engines() -> Vec<Engine> {
    if cfg!(target_arch = "x86_64") {
        vec![Engine::Interpreter, Engine::Jit]
    } else {
        vec![Engine::Interpreter]
    }
}

fn load_on(insns: &[ebpf_vm::isa::Insn], engine: Engine) -> Program {
    load_with(
        insns,
        ProgramOptions {
            prog_type: ProgramType::Tracing,
            engine,
            ..ProgramOptions::default()
        },
    )
    .expect("program loads")
}

/// r0 of a tracing run with the images above and the task at `TASK`.
fn run(p: &Program) -> Result<u64, ebpf_vm::Trap> {
    let memory = AddressSpace::new(images());
    p.run_with_context(
        &mut RunInput {
            data: &mut [],
            budget: None,
        },
        &ContextInput {
            process: ProcessInfo {
                task: TASK,
                ..ProcessInfo::default()
            },
            memory: Some(&memory),
            ..ContextInput::default()
        },
    )
    .map(|(out, _)| out.r0)
}

/// `helper(r10 - 16, size, src)` with the 16 bytes at r10 - 16 first set to 0xaa; then r0 is
/// the helper's return value if `word` is None, else the u64 at r10 - 16 + word.
fn probe(helper: i32, size: i32, src: u64, word: Option<i16>) -> Vec<ebpf_vm::isa::Insn> {
    let mut v = Vec::new();
    v.extend(lddw(9, 0xaaaa_aaaa_aaaa_aaaa));
    v.push(stx(SIZE_DW, 10, 9, -16));
    v.push(stx(SIZE_DW, 10, 9, -8));
    v.extend(fp_plus(1, -16));
    v.push(mov(2, size));
    v.extend(lddw(3, src));
    v.push(call(helper));
    if let Some(off) = word {
        v.push(ldx(SIZE_DW, 0, 10, -16 + off));
    }
    v.push(exit());
    v
}

fn r0_of(helper: i32, size: i32, src: u64, word: Option<i16>) -> Vec<u64> {
    let insns = probe(helper, size, src, word);
    engines()
        .into_iter()
        .map(|e| run(&load_on(&insns, e)).expect("runs"))
        .collect()
}

fn all(v: u64) -> Vec<u64> {
    engines().iter().map(|_| v).collect()
}

const EFAULT: u64 = -14i64 as u64;
const ERANGE: u64 = -34i64 as u64;

#[test]
fn probe_read_kernel_copies_fields_of_the_fake_task() {
    // pid and tgid: the first 8 bytes, 4242 | 4200 << 32.
    assert_eq!(r0_of(113, 8, TASK, None), all(0));
    assert_eq!(r0_of(113, 8, TASK, Some(0)), all(4242 | 4200 << 32));
    // The name pointer at +8, 8 bytes; the rest of the buffer keeps 0xaa.
    assert_eq!(r0_of(113, 8, TASK + 8, Some(0)), all(NAME));
    assert_eq!(r0_of(113, 8, TASK + 8, Some(8)), all(0xaaaa_aaaa_aaaa_aaaa));
    // The compat helper (4) at a kernel-half address reads the same.
    assert_eq!(r0_of(4, 8, TASK, Some(0)), all(4242 | 4200 << 32));
}

#[test]
fn a_fault_zeroes_the_destination_and_returns_efault() {
    // 16 bytes from TASK + 24: 8 mapped, 8 past the image's end.
    assert_eq!(r0_of(113, 16, TASK + 24, None), all(EFAULT));
    assert_eq!(r0_of(113, 16, TASK + 24, Some(0)), all(0));
    assert_eq!(r0_of(113, 16, TASK + 24, Some(8)), all(0));
    // The user form of an unmapped address (NULL), as the kernel: -EFAULT.
    assert_eq!(r0_of(112, 8, 0, None), all(EFAULT));
    assert_eq!(r0_of(112, 8, 0, Some(0)), all(0));
    // The kernel form refuses user-half addresses before reading (x86-64): -ERANGE, zeroed,
    // even for 0 bytes; a user address the caller mapped is read.
    if cfg!(target_arch = "x86_64") {
        assert_eq!(r0_of(113, 8, 0, None), all(ERANGE));
        assert_eq!(r0_of(113, 8, 0, Some(0)), all(0));
        assert_eq!(r0_of(113, 0, 0, None), all(ERANGE));
    }
    assert_eq!(r0_of(113, 4, USER_BUF, Some(0)), all(0xaaaa_aaaa_7265_7375));
    // 0 bytes from a mapped or kernel-half address: nothing to read, 0.
    assert_eq!(r0_of(113, 0, TASK + 4096, None), all(0));
    // The user form reads the user image.
    assert_eq!(r0_of(112, 5, USER_BUF, Some(0)), all(0xaaaa_aa00_7265_7375));
}

#[test]
fn str_forms_return_the_length_with_the_nul_and_truncate() {
    // comm "bash\0" at TASK + 16: 5 (4 characters and the NUL); bytes after it untouched.
    assert_eq!(r0_of(115, 16, TASK + 16, None), all(5));
    assert_eq!(
        r0_of(115, 16, TASK + 16, Some(0)),
        all(0xaaaa_aa00_6873_6162)
    );
    // Truncated to 3: "ba" and a NUL, 3 returned.
    assert_eq!(r0_of(115, 3, TASK + 16, None), all(3));
    assert_eq!(
        r0_of(115, 3, TASK + 16, Some(0)),
        all(0xaaaa_aaaa_aa00_6162)
    );
    // "hello, world" has no NUL in its image: reading 16 runs off its end, a fault.
    assert_eq!(r0_of(115, 16, NAME, None), all(EFAULT));
    assert_eq!(r0_of(115, 16, NAME, Some(0)), all(0));
    // ... but 12 bytes of it (the image exactly) are a truncated string: 11 characters, a NUL.
    assert_eq!(r0_of(115, 12, NAME, None), all(12));
    assert_eq!(r0_of(115, 12, NAME, Some(8)), all(0xaaaa_aaaa_006c_726f));
    // Size 0: 0, whatever the address (checked before anything else).
    assert_eq!(r0_of(115, 0, 0, None), all(0));
    assert_eq!(r0_of(114, 0, 0, None), all(0));
    // The user form: "user\0" is 5; NULL faults; the kernel form of NULL is refused.
    assert_eq!(r0_of(114, 16, USER_BUF, None), all(5));
    assert_eq!(r0_of(114, 16, 0, None), all(EFAULT));
    if cfg!(target_arch = "x86_64") {
        assert_eq!(r0_of(115, 16, 0, None), all(ERANGE));
    }
    // The compat str form (45) picks the user side below the user limit.
    assert_eq!(r0_of(45, 16, USER_BUF, None), all(5));
    assert_eq!(r0_of(45, 16, TASK + 16, None), all(5));
}

#[test]
fn current_task_is_the_callers_address_and_not_the_programs_memory() {
    for engine in engines() {
        let task = load_on(&prog![call(35), exit()], engine);
        assert_eq!(run(&task).unwrap(), TASK, "{engine:?}");
        let btf = load_on(&prog![call(158), exit()], engine);
        assert_eq!(run(&btf).unwrap(), TASK, "{engine:?}");
        // A load through the task address traps: the image is not a region of the run.
        let load = load_on(&prog![call(35), ldx(SIZE_W, 0, 0, 0), exit()], engine);
        let t = run(&load).unwrap_err();
        assert_eq!((t.kind, t.pc), (TrapKind::OutOfBounds, 1), "{engine:?}");
    }
}

#[test]
fn a_destination_outside_the_programs_memory_stops_the_run() {
    for engine in engines() {
        // dst = the task address itself: not writable memory of the run.
        let p = load_on(
            &prog![
                call(35),
                movr(1, 0),
                mov(2, 8),
                lddw(3, TASK),
                call(113),
                exit()
            ],
            engine,
        );
        let t = run(&p).unwrap_err();
        assert_eq!((t.kind, t.pc), (TrapKind::HelperError, 5), "{engine:?}");
        assert!(t.message.contains("dst"), "{}", t.message);
    }
}

#[test]
fn only_tracing_programs_have_the_compat_forms() {
    // As Linux 6.18: 4 and 45 for the tracing types only, the others for every type.
    for id in [4, 45] {
        let e = load(&prog![call(id), exit()], ProgramType::Xdp).unwrap_err();
        assert_eq!(e.insn, Some(0), "helper {id}");
    }
    for id in [35, 112, 113, 114, 115, 158] {
        load(&prog![call(id), exit()], ProgramType::Xdp).expect("xdp has it");
    }
}
