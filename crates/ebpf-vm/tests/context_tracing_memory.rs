//! Tracing programs reading the caller's address space: memory images at addresses, read with
//! the probe-read helpers (4, 45, 112-115), the task address of `get_current_task` (35, 158),
//! written with `bpf_probe_write_user` (36) where the caller made them writable, and the probed
//! function's address of `bpf_get_func_ip` (173).
//! Expected values are computed by hand from the images; the kernel's behaviour (-EFAULT, -ERANGE
//! for user-half addresses with the kernel forms, `_str` lengths including the NUL, truncation)
//! is Linux 6.18's (kernel/trace/bpf_trace.c, mm/maccess.c), the error codes checked against the
//! live kernel with raw_tracepoint test runs (see `helpers/probe_read.rs`). Both engines.

mod context_support;

use context_support::*;
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::{
    AddressSpace, ContextInput, ContextOutput, Engine, MemoryImage, ProcessInfo, Program,
    ProgramOptions, ProgramType, RunInput, TrapKind,
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
            writable: false,
        },
        // "hello, world" without a NUL: the image ends after the 'd'.
        MemoryImage {
            address: NAME,
            bytes: b"hello, world".to_vec(),
            writable: false,
        },
        MemoryImage {
            address: USER_BUF,
            bytes: b"user\0".to_vec(),
            writable: false,
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

/// r0 and the context output of a tracing run without data.
fn run_in(p: &Program, cx: &ContextInput) -> Result<(u64, ContextOutput), ebpf_vm::Trap> {
    p.run_with_context(
        &mut RunInput {
            data: &mut [],
            budget: None,
        },
        cx,
    )
    .map(|(out, cx)| (out.r0, cx))
}

/// r0 of a tracing run with the images above and the task at `TASK`.
fn run(p: &Program) -> Result<u64, ebpf_vm::Trap> {
    let memory = AddressSpace::new(images());
    let cx = ContextInput {
        process: ProcessInfo {
            task: TASK,
            ..ProcessInfo::default()
        },
        memory: Some(&memory),
        ..ContextInput::default()
    };
    run_in(p, &cx).map(|(r0, _)| r0)
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

/// Writable images for `bpf_probe_write_user`: 4 bytes of user memory, 16 bytes at the top of
/// the user half (x86-64's TASK_SIZE_MAX is 0x7fff_ffff_f000), and a kernel-half image the
/// caller marked writable (the helper still refuses it).
const USER_W: u64 = 0x7f00_0000_1000;
const TOP: u64 = 0x7fff_ffff_eff8;
const KERNEL_W: u64 = 0xffff_8880_0000_3000;

fn writable_images() -> Vec<MemoryImage> {
    let mut v = images();
    for (address, len) in [(USER_W, 4), (TOP, 16), (KERNEL_W, 8)] {
        v.push(MemoryImage {
            address,
            bytes: vec![0xee; len],
            writable: true,
        });
    }
    v
}

/// `bpf_probe_write_user(dst, r10 - 8, size)` with 0x1122334455667788 at r10 - 8.
fn write_user(dst: u64, size: i32) -> Vec<ebpf_vm::isa::Insn> {
    let mut v = lddw(9, 0x1122_3344_5566_7788).to_vec();
    v.push(stx(SIZE_DW, 10, 9, -8));
    v.extend(lddw(1, dst));
    v.extend(fp_plus(2, -8));
    v.push(mov(3, size));
    v.push(call(36));
    v.push(exit());
    v
}

/// r0 and the writable images after the run, on each engine.
fn run_writing(insns: &[ebpf_vm::isa::Insn], space: &AddressSpace) -> Vec<(u64, Vec<MemoryImage>)> {
    engines()
        .into_iter()
        .map(|e| {
            let cx = ContextInput {
                memory: Some(space),
                ..ContextInput::default()
            };
            let (r0, out) = run_in(&load_on(insns, e), &cx).expect("runs");
            (r0, out.memory)
        })
        .collect()
}

/// The writable images' bytes with `changes` (image index, offset, bytes) applied.
fn expected(changes: &[(usize, usize, &[u8])]) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = writable_images()
        .into_iter()
        .filter(|i| i.writable)
        .map(|i| i.bytes)
        .collect();
    for (k, off, b) in changes {
        v[*k][*off..off + b.len()].copy_from_slice(b);
    }
    v
}

#[test]
fn probe_write_user_writes_writable_user_images_only() {
    let space = AddressSpace::new(writable_images());
    let le = 0x1122_3344_5566_7788u64.to_le_bytes();
    // (dst, size, r0, what the images hold after the run)
    let cases: [(u64, i32, u64, Vec<Vec<u8>>); 7] = [
        (USER_W, 4, 0, expected(&[(0, 0, &le[..4])])),
        // The range runs past the image: the bytes before the fault are written.
        (USER_W + 2, 4, EFAULT, expected(&[(0, 2, &le[..2])])),
        // Mapped but not writable; not mapped at all.
        (USER_BUF, 1, EFAULT, expected(&[])),
        (USER_W + 0x100, 1, EFAULT, expected(&[])),
        // Up to the top of the user half, and past it (nothing written: access_ok fails first).
        (TOP, 8, 0, expected(&[(1, 0, &le)])),
        (TOP + 4, 8, EFAULT, expected(&[])),
        // A kernel address, even one the caller made writable.
        (KERNEL_W, 8, EFAULT, expected(&[])),
    ];
    for (dst, size, r0, images) in cases {
        for (got, memory) in run_writing(&write_user(dst, size), &space) {
            assert_eq!(got, r0, "dst {dst:#x} size {size}");
            let bytes: Vec<Vec<u8>> = memory.into_iter().map(|m| m.bytes).collect();
            assert_eq!(bytes, images, "dst {dst:#x} size {size}");
        }
    }
    // The caller's images are not changed: each run starts from them.
    assert_eq!(space.writable_images()[0].bytes, vec![0xee; 4]);
}

#[test]
fn probe_write_user_is_gpl_only_and_for_tracing_types() {
    let verified = |prog_type, gpl| {
        load_with(
            &write_user(USER_W, 4),
            ProgramOptions {
                prog_type,
                mode: ebpf_vm::Mode::Verified,
                gpl_compatible: gpl,
                ..ProgramOptions::default()
            },
        )
    };
    verified(ProgramType::Tracing, true).expect("a GPL kprobe may call it");
    let e = verified(ProgramType::Tracing, false).unwrap_err();
    assert!(
        e.message.contains("cannot call GPL-restricted function"),
        "{e}"
    );
    let e = verified(ProgramType::Xdp, true).unwrap_err();
    assert!(
        e.message.contains("program of this type cannot use helper"),
        "{e}"
    );
}

/// `r0 = bpf_get_func_ip(ctx)`.
fn func_ip() -> Vec<ebpf_vm::isa::Insn> {
    prog![call(173), exit()]
}

#[test]
fn get_func_ip_is_the_probed_functions_address_given_by_the_caller() {
    let addr = 0xffff_ffff_8123_4560u64;
    for with in [None, Some(addr)] {
        let space = with.map_or_else(AddressSpace::default, |a| {
            AddressSpace::default().with_func_ip(a)
        });
        for (r0, _) in run_writing(&func_ip(), &space) {
            assert_eq!(r0, with.unwrap_or(0));
        }
    }
}

#[test]
fn get_func_ip_is_refused_at_load_for_tracepoints_as_the_kernel_does() {
    // bpftool prog load on Linux 6.18: tracepoint, raw_tp and perf_event programs get
    // "func bpf_get_func_ip#173 not supported for program type N" (-524); tc programs "program
    // of this type cannot use helper bpf_get_func_ip#173" (-22).
    let verified = |prog_type| {
        load_with(
            &func_ip(),
            ProgramOptions {
                prog_type,
                mode: ebpf_vm::Mode::Verified,
                gpl_compatible: true,
                ..ProgramOptions::default()
            },
        )
    };
    verified(ProgramType::Tracing).expect("kprobes may call it");
    for (t, n) in [
        (ProgramType::Tracepoint, 5),
        (ProgramType::RawTracepoint, 17),
    ] {
        let e = verified(t).unwrap_err();
        assert_eq!(e.code, ebpf_vm::ErrorCode::Enotsupp, "{e}");
        assert!(
            e.message.contains(&format!(
                "func bpf_get_func_ip#173 not supported for program type {n}"
            )),
            "{e}"
        );
    }
    let e = verified(ProgramType::Tc).unwrap_err();
    assert_eq!(e.code, ebpf_vm::ErrorCode::Einval, "{e}");
    assert!(
        e.message
            .contains("program of this type cannot use helper bpf_get_func_ip#173"),
        "{e}"
    );
}
