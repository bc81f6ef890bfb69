//! Verdicts of the path walk against the live kernel on random programs (the issue's
//! "differential verdict fuzzing", short form): socket filters built from what the walk supports
//! (context loads, ALU on scalars and pointers, stack stores and loads at random offsets, a map
//! lookup with or without its null check, forward branches) are loaded into the kernel and
//! verified here, with atomics on the stack and legacy packet loads among them, and programs
//! whose main function calls such a body with the context, a stack pointer or a number. The
//! verdicts must agree; when both reject, the message must be the kernel's.
//! `VERIFIER_VERDICT_PROGRAMS=N` (and `VERIFIER_VERDICT_SEED`) for a longer run.
//!
//! Skips, saying why, where the kernel cannot be asked.

mod random_programs;
mod rng;
mod verifier_support;

use ebpf_vm::analysis::{analyse, AnalysisOptions};
use ebpf_vm::isa::Insn;
use ebpf_vm::verifier::{verify, MapRef, ProgramKind, VerifyOptions};
use random_programs::xdp::random_xdp_program;
use rng::{Random, Rng};
use verifier_support::*;

fn i(opcode: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn::new(opcode, dst, src, off, imm)
}

/// A random socket filter of about `len` instructions. r6 holds the context throughout (the
/// generator never writes it).
fn random_program(rng: &mut Rng, len: usize) -> Vec<Insn> {
    // r6 = r1 (the context), r0-r5 set: mostly well-formed programs, each with a few chances to
    // break a rule.
    let mut p = vec![i(0xbf, 6, 1, 0, 0)];
    for r in 0..=5u8 {
        if rng.chance(50) {
            p.push(i(0x61, r, 6, rng.pick(&[0i16, 4, 8, 16]), 0));
        } else {
            p.push(i(0xb7, r, 0, 0, rng.pick(&[0, 1, 8, -4])));
        }
    }
    let hostile = |rng: &mut Rng| rng.chance(12);
    while p.len() < len {
        let dst = rng.range(0, 5) as u8;
        let src = if hostile(rng) {
            rng.pick(&[6u8, 10, 7])
        } else {
            rng.range(0, 5) as u8
        };
        match rng.below(14) {
            // A context field (sometimes one a socket filter may not read).
            0 => {
                let off = if hostile(rng) {
                    rng.pick(&[76i16, 80, 2, 200, 3])
                } else {
                    rng.pick(&[0i16, 4, 8, 16, 48, 52])
                };
                let op = rng.pick(&[0x61u8, 0x69, 0x71]);
                p.push(i(op, dst, 6, off, 0));
            }
            // ALU with an immediate or a register.
            1 | 2 => {
                let op = rng.pick(&[0x00u8, 0x10, 0x20, 0x40, 0x50, 0x60, 0x70, 0xa0, 0xb0, 0xc0]);
                let class = rng.pick(&[0x07u8, 0x04]);
                if rng.chance(50) {
                    let imm = match op {
                        0x60 | 0x70 | 0xc0 => rng.range(0, 31) as i32,
                        _ => rng.pick(&[0, 1, 7, 0xff, -8, -1, 0x1000, 100]),
                    };
                    p.push(i(class | op, dst, 0, 0, imm));
                } else {
                    p.push(i(class | op | 0x08, dst, src, 0, 0));
                }
            }
            // A frame pointer with an offset.
            3 => {
                p.push(i(0xbf, dst, 10, 0, 0));
                let off = if hostile(rng) {
                    rng.pick(&[-520, 8, -4])
                } else {
                    rng.pick(&[-8, -16, -32, -64, -512])
                };
                p.push(i(0x07, dst, 0, 0, off));
                // Sometimes a variable part too: a multiple of 8 below 32 (or not a multiple).
                if rng.chance(40) {
                    let k = (dst + 1) % 6;
                    p.push(i(0x57, k, 0, 0, rng.pick(&[0x18, 0x1c, 0x7])));
                    p.push(i(0x0f, dst, k, 0, 0));
                }
            }
            // A store to the stack, through r10 or another register.
            4 | 5 => {
                let base = if hostile(rng) { dst } else { 10 };
                let size = rng.pick(&[0x18u8, 0x00, 0x08, 0x10]);
                let off = if hostile(rng) {
                    rng.pick(&[-4i16, -2, -1, -520, 0])
                } else {
                    rng.pick(&[-8i16, -16, -24, -512])
                };
                if rng.chance(50) {
                    p.push(i(0x63 | size, base, src, off, 0));
                } else {
                    p.push(i(0x62 | size, base, 0, off, rng.pick(&[0, 1, -1])));
                }
            }
            // A load from the stack or through another register.
            6 | 7 => {
                let base = if hostile(rng) { src } else { 10 };
                let size = rng.pick(&[0x18u8, 0x00, 0x08, 0x10]);
                let off = if hostile(rng) {
                    rng.pick(&[-4i16, 0, 4])
                } else {
                    rng.pick(&[-8i16, -16, -24])
                };
                p.push(i(0x61 | size, dst, base, off, 0));
            }
            // A map lookup with a key on the stack, maybe checked for NULL, then a read.
            8 => {
                p.push(i(0x62, 10, 0, -32, rng.range(0, 2) as i32));
                p.push(i(0xbf, 2, 10, 0, 0));
                p.push(i(0x07, 2, 0, 0, -32));
                p.push(i(0x18, 1, 1, 0, 0));
                p.push(i(0, 0, 0, 0, 0));
                p.push(i(0x85, 0, 0, 0, 1));
                if !hostile(rng) {
                    p.push(i(0x15, 0, 0, 1, 0)); // if r0 == 0 goto +1
                }
                let off = if hostile(rng) {
                    rng.pick(&[4i16, 8])
                } else {
                    0
                };
                p.push(i(0x79, 3, 0, off, 0));
            }
            // A forward conditional jump over one instruction.
            9 | 10 => {
                let op = rng.pick(&[0x15u8, 0x55, 0x25, 0x35, 0xa5, 0xb5, 0x65, 0xc5, 0x45]);
                let class_bit = if rng.chance(30) { 0x01u8 } else { 0 }; // JMP32 is class 6
                if rng.chance(50) {
                    p.push(i(op | class_bit, dst, 0, 1, rng.pick(&[0, 1, 7, 100, -1])));
                } else {
                    p.push(i(op | class_bit | 0x08, dst, src, 1, 0));
                }
                p.push(i(0xb7, rng.range(0, 5) as u8, 0, 0, rng.range(0, 3) as i32));
            }
            // An atomic operation on the stack (or, now and then, elsewhere).
            11 => {
                let base = if hostile(rng) { src } else { 10 };
                let size = rng.pick(&[0xdbu8, 0xc3]);
                let op = rng.pick(&[0x00, 0x01, 0x41, 0xa1, 0xe1, 0xf1]);
                p.push(i(size, base, dst, rng.pick(&[-8i16, -16]), op));
            }
            // A legacy packet load through the context in r6.
            12 if rng.chance(30) => {
                if rng.chance(50) {
                    p.push(i(
                        0x20 | rng.pick(&[0x00u8, 0x08, 0x10]),
                        0,
                        0,
                        0,
                        rng.range(0, 40) as i32,
                    ));
                } else {
                    p.push(i(
                        0x40 | rng.pick(&[0x00u8, 0x08, 0x10]),
                        0,
                        src,
                        0,
                        rng.range(0, 40) as i32,
                    ));
                }
            }
            // A register copy.
            _ => p.push(i(0xbf, dst, src, 0, 0)),
        }
    }
    if !hostile(rng) {
        p.push(i(0xb7, 0, 0, 0, 0));
    }
    p.push(i(0x95, 0, 0, 0, 0));
    p
}

fn kernel_message(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let at = lines
        .iter()
        .rposition(|l| l.starts_with("processed "))
        .unwrap_or(lines.len());
    lines[..at].last().copied().unwrap_or_default().to_string()
}

/// The number of programs and the seed of a run (`VERIFIER_VERDICT_PROGRAMS`,
/// `VERIFIER_VERDICT_SEED`).
fn run_size(default_seed: u64) -> (usize, u64) {
    let programs = std::env::var("VERIFIER_VERDICT_PROGRAMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let seed = std::env::var("VERIFIER_VERDICT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_seed);
    (programs, seed)
}

/// Loads `programs` programs from `generate` into the kernel (type `prog_type`) and verifies
/// them here (`kind`): the verdicts and the rejection messages must be the kernel's; every
/// disagreement goes to a report and fails the test.
fn compare_verdicts(
    name: &str,
    prog_type: u32,
    kind: ProgramKind,
    default_seed: u64,
    generate: fn(&mut Rng) -> Vec<Insn>,
) {
    compare_verdicts_as(name, prog_type, kind, default_seed, generate, false)
}

/// The unprivileged refusal of a pointer move masked differently on two paths.
const PATHS: &str = "from different maps, paths or scalars";

/// `compare_verdicts`, with `unprivileged` the kernel loading as an unprivileged user
/// (`load_unprivileged`) and ours with `VerifyOptions::unprivileged`.
fn compare_verdicts_as(
    name: &str,
    prog_type: u32,
    kind: ProgramKind,
    default_seed: u64,
    generate: fn(&mut Rng) -> Vec<Insn>,
    unprivileged: bool,
) {
    let (programs, seed) = run_size(default_seed);
    let mut rng = Rng::new(seed);
    let map = MapRef {
        index: 0,
        name: "m0".into(),
        map_type: 1,
        key_size: 4,
        value_size: 8,
        max_entries: 4,
        ..MapRef::default()
    };
    let names = |id: i32| (id == 1).then(|| "bpf_map_lookup_elem".to_string());
    let (mut accepted, mut rejected, mut failures) = (0, 0, Vec::new());
    // Tolerated: rejected only by us for the known unprivileged difference below.
    let mut only_us = 0;
    for n in 0..programs {
        let p = generate(&mut rng);
        let Ok(analysis) = analyse(&p, &AnalysisOptions::default()) else {
            continue;
        };
        // A program with callbacks gets BTF function info (the kernel wants it for function
        // pointers), in both.
        let callbacks = analysis.functions.funcs.iter().any(|f| f.address_taken);
        let funcs: Vec<usize> = if callbacks {
            let program = &analysis.program;
            analysis
                .functions
                .funcs
                .iter()
                .map(|f| program.slot(f.start))
                .collect()
        } else {
            Vec::new()
        };
        let analysis = if callbacks {
            analyse(
                &p,
                &AnalysisOptions {
                    func_entries: &funcs,
                },
            )
            .expect("it analysed before")
        } else {
            analysis
        };
        let kernel = if unprivileged {
            // Without CAP_BPF no BTF can be loaded; the kernel refuses callbacks before it
            // would look for their function info.
            load_unprivileged(prog_type, &p, &["1:4:8:4"])
        } else {
            load_with_funcs(prog_type, &p, &["1:4:8:4"], &funcs)
        }
        .expect("the loader runs");
        let options = VerifyOptions {
            globals: &[],
            unprivileged,
            exit_range: false,
            kind,
            maps: std::slice::from_ref(&map),
            helper_name: &names,
            prototype: &kernel_prototype_of,
            gpl_compatible: true,
            log_level: 1,
        };
        let ours = verify(&analysis, &options);
        let listing = || {
            p.iter()
                .enumerate()
                .map(|(k, s)| {
                    format!(
                        "{k}: {:02x} {} {} {} {}\n",
                        s.opcode, s.dst, s.src, s.off, s.imm
                    )
                })
                .collect::<String>()
        };
        match (&ours, kernel.accepted) {
            (Ok(_), true) => accepted += 1,
            (Err(r), false) => {
                rejected += 1;
                let ours_last = r.message.lines().last().unwrap_or_default().to_string();
                let theirs = kernel_message(&kernel.log);
                if ours_last != theirs {
                    failures.push(format!(
                        "program {n}: messages differ\n ours   {ours_last}\n kernel {theirs}\n{}\nkernel log:\n{}",
                        listing(),
                        kernel.log
                    ));
                }
            }
            (Ok(_), false) => failures.push(format!(
                "program {n}: we accept, the kernel rejects: {}\n{}\nkernel log:\n{}",
                kernel_message(&kernel.log),
                listing(),
                kernel.log
            )),
            // A known difference (README): the kernel skips the masking check at an instruction
            // where a speculative path (which we do not walk) put a barrier.
            (Err(r), true) if unprivileged && r.message.contains(PATHS) => only_us += 1,
            (Err(r), true) => failures.push(format!(
                "program {n}: we reject ({}), the kernel accepts\n{}\nour log:\n{}",
                r.message,
                listing(),
                r.log
            )),
        }
    }
    eprintln!(
        "{name}: {programs} programs: {accepted} accepted by both, {rejected} rejected by both, \
         {only_us} rejected only by us"
    );
    let report = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("verifier_verdicts_{name}.txt"));
    let _ = std::fs::write(&report, failures.join("\n\n"));
    assert!(
        failures.is_empty(),
        "{name}: {} disagreements (all in {}); the first:\n{}",
        failures.len(),
        report.display(),
        failures[0]
    );
}

#[test]
fn verdicts_agree_with_the_kernel_on_random_socket_filters() {
    kernel_or_skip!();
    compare_verdicts(
        "socket_filter",
        SOCKET_FILTER,
        ProgramKind::SocketFilter,
        0x7e4d_1c75,
        |rng| random_program(rng, 24),
    );
}

/// A program for the unprivileged comparison: half of them short and with the stack written
/// first (zeros at fp-8 to fp-32 and fp-512, so that reads find it initialised and allocated),
/// so that enough are accepted; a few loops and calls.
fn unprivileged_program(rng: &mut Rng) -> Vec<Insn> {
    match rng.below(20) {
        0 => random_loop_program(rng),
        1 => random_call_program(rng),
        2..=4 => random_masking_program(rng),
        5..=10 => random_program(rng, 24),
        _ => {
            let mut p = random_program(rng, 12);
            // After `r6 = r1`, before any jump: no offset changes.
            for (k, off) in [-8i16, -16, -24, -32, -512].into_iter().enumerate() {
                p.insert(1 + k, i(0x7a, 10, 0, off, 0));
            }
            p
        }
    }
}

/// Pointer moves the Spectre v1 masking of unprivileged loads judges: a map value (after its
/// null check) or a stack pointer moved by registers holding constants, masked or signed context
/// fields, set differently on two paths, then a load or store through the result.
fn random_masking_program(rng: &mut Rng) -> Vec<Insn> {
    let mut p = vec![
        i(0xbf, 6, 1, 0, 0),
        i(0x7a, 10, 0, -8, 0),
        i(0x7a, 10, 0, -16, 0),
        i(0x7a, 10, 0, -24, 0),
        i(0x7a, 10, 0, -32, 0),
        i(0x62, 10, 0, -36, rng.range(0, 4) as i32),
        i(0xbf, 2, 10, 0, 0),
        i(0x07, 2, 0, 0, -36),
        i(0x18, 1, 1, 0, 0),
        i(0, 0, 0, 0, 0),
        i(0x85, 0, 0, 0, 1),
        i(0x55, 0, 0, 2, 0), // if r0 != 0 goto +2
        i(0xb7, 0, 0, 0, 0),
        i(0x95, 0, 0, 0, 0),
    ];
    // The base: the map value (r0) or a stack pointer.
    let base = 7;
    if rng.chance(50) {
        p.push(i(0xbf, base, 0, 0, 0));
    } else {
        p.push(i(0xbf, base, 10, 0, 0));
        p.push(i(0x07, base, 0, 0, rng.pick(&[-8, -16, -32, -4, 0])));
    }
    for _ in 0..rng.range(1, 3) {
        // An offset register, maybe set differently on two paths.
        let value = |rng: &mut Rng, p: &mut Vec<Insn>| match rng.below(4) {
            0 => p.push(i(
                0xb7,
                3,
                0,
                0,
                rng.pick(&[-8, -4, -1, 0, 1, 2, 4, 7, 8, 16]),
            )),
            1 => {
                p.push(i(0x61, 3, 6, rng.pick(&[0i16, 8, 16]), 0));
                p.push(i(0x57, 3, 0, 0, rng.pick(&[3, 7, 4, 0xff])));
            }
            2 => {
                p.push(i(0x61, 3, 6, 8, 0));
                p.push(i(0x57, 3, 0, 0, 7));
                p.push(i(0x17, 3, 0, 0, rng.pick(&[4, 8, 2])));
            }
            _ => p.push(i(0x61, 3, 6, 8, 0)),
        };
        value(rng, &mut p);
        if rng.chance(50) {
            // if skb->mark != 0 goto +N (over a second setting of r3)
            let mut other = Vec::new();
            value(rng, &mut other);
            p.push(i(0x61, 4, 6, 8, 0));
            p.push(i(0x55, 4, 0, other.len() as i16, 0));
            p.extend(other);
        }
        let op = if rng.chance(75) { 0x0f } else { 0x1f };
        if rng.chance(85) {
            p.push(i(op, base, 3, 0, 0));
        } else {
            // scalar += pointer
            p.push(i(0x0f, 3, base, 0, 0));
            p.push(i(0xbf, base, 3, 0, 0));
        }
    }
    let off = rng.pick(&[0i16, 0, 4, -4]);
    if rng.chance(50) {
        p.push(i(0x61, 0, base, off, 0));
    } else {
        p.push(i(0x62, base, 0, off, 1));
    }
    p.push(i(0xb7, 0, 0, 0, 0));
    p.push(i(0x95, 0, 0, 0, 0));
    p
}

/// The unprivileged policy against the kernel loading as `nobody` without capabilities: the
/// random socket filters above, and now and then one with a bounded loop, a bpf-to-bpf call or a
/// `bpf_loop` callback (refused without CAP_BPF). Needs `kernel.unprivileged_bpf_disabled` = 0
/// (`scripts/verifier-unprivileged.sh` sets it for the run and restores it); skips otherwise.
#[test]
fn verdicts_agree_with_the_kernel_unprivileged_on_random_socket_filters() {
    kernel_or_skip!();
    if let Err(why) = unprivileged_bpf() {
        eprintln!("skipped: cannot load unprivileged here: {why}");
        return;
    }
    compare_verdicts_as(
        "unprivileged",
        SOCKET_FILTER,
        ProgramKind::SocketFilter,
        0x0a11_0c8e,
        unprivileged_program,
        true,
    );
}

/// A socket filter whose main function passes a function the context, a pointer into its
/// own stack or a number, calls it and uses what the call left (R0, its stack, a clobbered
/// register); the function is a random socket filter body working on what it was passed.
fn random_call_program(rng: &mut Rng) -> Vec<Insn> {
    let mut p = vec![
        i(0xbf, 6, 1, 0, 0),
        i(0x7a, 10, 0, -8, rng.range(0, 3) as i32),
    ];
    match rng.below(10) {
        0..=6 => p.push(i(0xbf, 1, 6, 0, 0)),
        7 | 8 => {
            p.push(i(0xbf, 1, 10, 0, 0));
            p.push(i(0x07, 1, 0, 0, rng.pick(&[-8, -16, -64])));
        }
        _ => p.push(i(0xb7, 1, 0, 0, 5)),
    }
    let call_at = p.len();
    p.push(i(0x85, 0, 1, 0, 0)); // patched below
    match rng.below(6) {
        0 => p.push(i(0x79, 0, 10, -8, 0)),
        1 => p.push(i(0xbf, 0, 1, 0, 0)),
        2 => p.push(i(0x79, 0, 0, 0, 0)),
        _ => p.push(i(0xbf, 0, 0, 0, 0)),
    }
    if rng.chance(80) {
        p.push(i(0xb7, 0, 0, 0, 0));
    }
    p.push(i(0x95, 0, 0, 0, 0));
    let callee = p.len();
    p[call_at] = i(0x85, 0, 1, 0, (callee - call_at - 1) as i32);
    p.extend(random_program(rng, 16));
    p
}

/// A socket filter that keeps a number and the context pointer in a two-word context on its
/// stack and runs `bpf_loop` (with that context or NULL) over a callback that reads, writes or
/// dereferences the words and returns 0, 1, 2, its index or nothing; after the loop the
/// program reads the words back, perhaps dereferencing the pointer.
fn random_loop_program(rng: &mut Rng) -> Vec<Insn> {
    let mut p = vec![
        i(0xbf, 6, 1, 0, 0),
        i(0x7a, 10, 0, -16, rng.range(0, 3) as i32), // ctx.num
        i(0x7b, 10, 1, -8, 0),                       // ctx.ptr = the context
    ];
    if rng.chance(80) {
        p.extend([i(0xbf, 3, 10, 0, 0), i(0x07, 3, 0, 0, -16)]);
    } else {
        p.push(i(0xb7, 3, 0, 0, rng.pick(&[0, 1])));
    }
    p.push(i(0xb7, 1, 0, 0, rng.range(1, 8) as i32));
    let func_at = p.len();
    p.extend([i(0x18, 2, 4, 0, 0), i(0, 0, 0, 0, 0)]);
    p.extend([i(0xb7, 4, 0, 0, 0), i(0x85, 0, 0, 0, 181)]);
    match rng.below(4) {
        0 => p.push(i(0x79, 0, 10, -16, 0)),
        1 => {
            p.push(i(0x79, 1, 10, -8, 0));
            p.push(i(0x61, 0, 1, 0, 0)); // r0 = ctx.ptr->len
        }
        _ => {}
    }
    p.extend([i(0xb7, 0, 0, 0, 0), i(0x95, 0, 0, 0, 0)]);
    let entry = p.len();
    p[func_at] = i(0x18, 2, 4, 0, (entry - func_at - 1) as i32);
    for _ in 0..rng.range(1, 4) {
        match rng.below(6) {
            0 => p.push(i(0x79, 3, 2, 0, 0)), // r3 = ctx.num
            1 => {
                p.push(i(0x79, 4, 2, 8, 0)); // r4 = ctx.ptr
                p.push(i(0x61, 5, 4, rng.pick(&[0i16, 4, 200]), 0));
            }
            2 => p.push(i(0x7b, 2, 1, 0, 0)), // ctx.num = index
            3 => p.push(i(0x7a, 2, 0, 8, 0)), // ctx.ptr = 0
            4 => p.push(i(0x7b, 2, 1, rng.pick(&[8i16, 16, -8]), 0)),
            _ => p.push(i(0x07, 1, 0, 0, 1)),
        }
    }
    match rng.below(6) {
        0 => p.push(i(0xb7, 0, 0, 0, 2)),
        1 => p.push(i(0xbf, 0, 1, 0, 0)),
        2 => {}
        _ => p.push(i(0xb7, 0, 0, 0, rng.range(0, 1) as i32)),
    }
    p.push(i(0x95, 0, 0, 0, 0));
    p
}

#[test]
fn verdicts_agree_with_the_kernel_on_random_callbacks() {
    kernel_or_skip!();
    compare_verdicts(
        "callbacks",
        SOCKET_FILTER,
        ProgramKind::SocketFilter,
        0x100b,
        // Callbacks are walked as the kernel walks them (a run per visit of the helper's call
        // until the states converge): the same verdicts and messages.
        random_loop_program,
    );
}

#[test]
fn verdicts_agree_with_the_kernel_on_random_calls() {
    kernel_or_skip!();
    compare_verdicts(
        "calls",
        SOCKET_FILTER,
        ProgramKind::SocketFilter,
        0x000c_a115,
        random_call_program,
    );
}

#[test]
fn verdicts_agree_with_the_kernel_on_random_xdp_packet_access() {
    kernel_or_skip!();
    compare_verdicts("xdp", XDP, ProgramKind::Xdp, 0x0d0c_0ffe, |rng| {
        random_xdp_program(rng, 20)
    });
}

/// The kernel's prototype of helper `id` (none for a negative id).
fn kernel_prototype_of(id: i32) -> Option<ebpf_vm::helpers::prototype::HelperPrototype> {
    u32::try_from(id)
        .ok()
        .and_then(ebpf_vm::helpers::kernel_prototypes::kernel_prototype)
}
