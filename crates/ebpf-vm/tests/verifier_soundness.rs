//! Soundness by execution (short form): random raw programs that the walk accepts are run in
//! checked mode on random data of the size they were verified for, and no run may trap on
//! memory (out of bounds, read-only, misaligned). A trap there is a verifier bug: it accepted
//! an access some run makes outside the memory it proved. Runs that return a host address trap
//! as pointer leaks (the walk applies the privileged rules, which allow returning one); those
//! are allowed here. Programs with a bpf-to-bpf call (a pointer into the caller's stack or
//! the data passed down) likewise. XDP programs are run on packets of several lengths, checked
//! and verified (whose proved packet accesses run unchecked). `VERIFIER_SOUNDNESS_PROGRAMS=N`
//! for a longer run.

mod random_programs;
mod rng;

use ebpf_vm::analysis::{analyse, AnalysisOptions};
use ebpf_vm::isa::{encode_all, Insn};
use ebpf_vm::verifier::{verify, ProgramKind, VerifyOptions};
use ebpf_vm::{
    ContextInput, Engine, Mode, Program, ProgramOptions, ProgramType, RunInput, RunLimits, TrapKind,
};
use random_programs::xdp::random_xdp_program;
use rng::{Random, Rng};

fn i(opcode: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn::new(opcode, dst, src, off, imm)
}

/// A raw program: data reads at constant and data-dependent offsets, masks and comparisons
/// that may or may not bound them, stack traffic, forward branches only (every run ends).
fn random_raw_program(rng: &mut Rng, len: usize) -> Vec<Insn> {
    let mut p = vec![i(0xb7, 0, 0, 0, 0), i(0xbf, 6, 1, 0, 0)]; // r6 = data
    for r in 3..=5u8 {
        p.push(i(0x71, r, 6, rng.range(0, 3) as i16, 0)); // a data byte
    }
    while p.len() < len {
        let r = rng.range(3, 5) as u8;
        match rng.below(8) {
            0 => p.push(i(0x57, r, 0, 0, rng.pick(&[7, 15, 31, 63, 255, -1]))),
            1 => p.push(i(0x07, r, 0, 0, rng.pick(&[1, 4, 8, -1, -8]))),
            2 => {
                // A pointer into the data moved by a number, then a read through it.
                p.push(i(0xbf, 7, 6, 0, 0));
                p.push(i(0x0f, 7, r, 0, 0));
                let size = rng.pick(&[0x10u8, 0x08, 0x00, 0x18]);
                p.push(i(0x61 | size, 0, 7, rng.range(-4, 12) as i16, 0));
            }
            3 => {
                // Bound a number with a comparison: skip the next instruction when it is big.
                let op = rng.pick(&[0x25u8, 0x35, 0xa5, 0x65, 0xc5]);
                p.push(i(op, r, 0, 1, rng.pick(&[4, 8, 16, 100, -1])));
                p.push(i(0x57, r, 0, 0, 3));
            }
            4 => {
                let size = rng.pick(&[0x10u8, 0x08, 0x00, 0x18]);
                p.push(i(0x61 | size, 0, 6, rng.range(-2, 40) as i16, 0));
            }
            5 => {
                p.push(i(0x7b, 10, r, -8 * rng.range(1, 4) as i16, 0));
                p.push(i(0x79, r, 10, -8 * rng.range(1, 4) as i16, 0));
            }
            6 => p.push(i(0x6b, 6, r, rng.range(0, 30) as i16, 0)), // a 2-byte store into the data
            _ => p.push(i(
                rng.pick(&[0x6fu8, 0x7f, 0x2f, 0xaf]),
                r,
                rng.range(3, 5) as u8,
                0,
                0,
            )),
        }
    }
    p.push(i(0x95, 0, 0, 0, 0));
    p
}

/// A raw program whose main function passes a function either the data or a slot of its own
/// stack (R1) and a data byte (R2); the function bounds the byte or not, moves the pointer by
/// it and reads or writes through it; the caller then reads its stack back.
fn random_call_program(rng: &mut Rng) -> Vec<Insn> {
    let mut p = vec![
        i(0xb7, 0, 0, 0, 0),
        i(0xbf, 6, 1, 0, 0),
        i(0x71, 3, 6, 0, 0),
        i(0x7b, 10, 3, -8, 0),
        i(0x7b, 10, 3, -16, 0),
    ];
    if rng.chance(50) {
        p.push(i(0xbf, 1, 10, 0, 0));
        p.push(i(0x07, 1, 0, 0, -8 * rng.range(1, 3) as i32));
    }
    p.push(i(0x71, 2, 6, rng.range(0, 3) as i16, 0));
    let call_at = p.len();
    p.push(i(0x85, 0, 1, 0, 0)); // patched below
    p.push(i(0x79, 0, 10, -8, 0));
    p.push(i(0x95, 0, 0, 0, 0));
    let func = p.len();
    p[call_at] = i(0x85, 0, 1, 0, (func - call_at - 1) as i32);
    for _ in 0..rng.range(1, 3) {
        match rng.below(3) {
            0 => p.push(i(0x57, 2, 0, 0, rng.pick(&[3, 7, 15, 255]))),
            1 => {
                p.push(i(
                    rng.pick(&[0x25u8, 0xa5, 0x35]),
                    2,
                    0,
                    1,
                    rng.pick(&[4, 8, 16]),
                ));
                p.push(i(0x57, 2, 0, 0, 7));
            }
            _ => p.push(i(0x07, 2, 0, 0, rng.pick(&[1, -1, 8, -8]))),
        }
    }
    p.push(i(0xbf, 3, 1, 0, 0));
    p.push(i(0x0f, 3, 2, 0, 0));
    let size = rng.pick(&[0x10u8, 0x08, 0x00, 0x18]);
    let off = rng.range(-16, 12) as i16;
    if rng.chance(50) {
        p.push(i(0x61 | size, 0, 3, off, 0));
    } else {
        p.push(i(0x63 | size, 3, 2, off, 0));
        p.push(i(0xb7, 0, 0, 0, 0));
    }
    p.push(i(0x95, 0, 0, 0, 0));
    p
}

/// A raw program that keeps the data pointer and a data byte in a two-word context on its
/// stack and runs `bpf_loop` over a callback that reads them back, perhaps bounds the byte,
/// reads the data at the pointer moved by it, and perhaps writes the loop index into the
/// byte's word (then later runs see that instead).
fn random_loop_program(rng: &mut Rng) -> Vec<Insn> {
    let mut p = vec![
        i(0xb7, 0, 0, 0, 0),
        i(0x7b, 10, 1, -16, 0), // ctx.ptr = data
        i(0x71, 3, 1, rng.range(0, 3) as i16, 0),
        i(0x7b, 10, 3, -8, 0), // ctx.byte = a data byte
        i(0xbf, 3, 10, 0, 0),
        i(0x07, 3, 0, 0, -16),
        i(0xb7, 1, 0, 0, rng.range(1, 4) as i32),
    ];
    let func_at = p.len();
    p.extend([i(0x18, 2, 4, 0, 0), i(0, 0, 0, 0, 0)]);
    p.extend([
        i(0xb7, 4, 0, 0, 0),
        i(0x85, 0, 0, 0, 181), // bpf_loop
        i(0x79, 0, 10, -8, 0),
        i(0x95, 0, 0, 0, 0),
    ]);
    let entry = p.len();
    p[func_at] = i(0x18, 2, 4, 0, (entry - func_at - 1) as i32);
    p.push(i(0x79, 4, 2, 0, 0)); // r4 = ctx.ptr
    p.push(i(0x79, 5, 2, 8, 0)); // r5 = ctx.byte
    if rng.chance(70) {
        p.push(i(0x57, 5, 0, 0, rng.pick(&[3, 7, 15, 31])));
    }
    p.push(i(0x0f, 4, 5, 0, 0));
    p.push(i(0x71, 0, 4, rng.range(-2, 16) as i16, 0));
    if rng.chance(50) {
        p.push(i(0x7b, 2, 1, 8, 0)); // ctx.byte = index
    }
    p.extend([i(0xb7, 0, 0, 0, 0), i(0x95, 0, 0, 0, 0)]);
    p
}

#[test]
fn accepted_loops_never_trap_on_memory() {
    let programs: usize = std::env::var("VERIFIER_SOUNDNESS_PROGRAMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let mut rng = Rng::new(0x100b);
    let (accepted, runs) = run_accepted(&mut rng, programs, random_loop_program);
    eprintln!(
        "{programs} programs with bpf_loop: {accepted} accepted, {runs} runs, none trapped on memory"
    );
    assert!(
        accepted > programs / 20,
        "too few programs accepted ({accepted}) to say anything"
    );
}

#[test]
fn accepted_calls_never_trap_on_memory() {
    let programs: usize = std::env::var("VERIFIER_SOUNDNESS_PROGRAMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let mut rng = Rng::new(0xca11);
    let (accepted, runs) = run_accepted(&mut rng, programs, random_call_program);
    eprintln!(
        "{programs} programs with calls: {accepted} accepted, {runs} runs, none trapped on memory"
    );
    assert!(
        accepted > programs / 20,
        "too few programs accepted ({accepted}) to say anything"
    );
}

/// Verifies `programs` programs from `generate` for random data sizes and runs each accepted
/// one 8 times in checked mode on random data: none may trap on memory, and some must run to
/// their end (or the test says nothing). Returns (accepted, runs).
fn run_accepted(
    rng: &mut Rng,
    programs: usize,
    generate: impl Fn(&mut Rng) -> Vec<Insn>,
) -> (usize, usize) {
    let no_names = |_: i32| None;
    let (mut accepted, mut runs, mut completed) = (0, 0, 0);
    for n in 0..programs {
        let p = generate(rng);
        let Ok(analysis) = analyse(&p, &AnalysisOptions::default()) else {
            continue;
        };
        let data_size = rng.pick(&[8u32, 16, 32, 48]);
        let options = VerifyOptions {
            globals: &[],
            unprivileged: false,
            exit_range: false,
            kind: ProgramKind::Raw { data_size },
            maps: &[],
            helper_name: &no_names,
            prototype: &kernel_prototype_of,
            gpl_compatible: true,
            log_level: 0,
        };
        if verify(&analysis, &options).is_err() {
            continue;
        }
        accepted += 1;
        let prog = Program::load(
            &encode_all(&p),
            ProgramOptions {
                mode: Mode::Checked,
                ..ProgramOptions::default()
            },
        )
        .expect("an accepted program loads");
        for _ in 0..8 {
            let mut data: Vec<u8> = (0..data_size).map(|_| rng.next() as u8).collect();
            runs += 1;
            let result = prog.run(&mut RunInput {
                data: &mut data,
                budget: None,
            });
            if result.is_ok() {
                completed += 1;
            }
            if let Err(trap) = result {
                assert!(
                    !matches!(
                        trap.kind,
                        TrapKind::OutOfBounds | TrapKind::ReadOnly | TrapKind::Misaligned
                    ),
                    "program {n} (verified for {data_size} bytes) trapped: {trap:?}\n{p:?}"
                );
            }
        }
    }
    assert!(completed > 0, "no accepted program ran to its end");
    (accepted, runs)
}

#[test]
fn accepted_programs_never_trap_on_memory() {
    let programs: usize = std::env::var("VERIFIER_SOUNDNESS_PROGRAMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let mut rng = Rng::new(0x50_4e_d0);
    let (accepted, runs) = run_accepted(&mut rng, programs, |rng| random_raw_program(rng, 20));
    eprintln!("{programs} programs: {accepted} accepted, {runs} runs, none trapped on memory");
    assert!(
        accepted > programs / 20,
        "too few programs accepted ({accepted}) to say anything"
    );
}

/// Differential, on the verified forms: programs of every generator that load in mode verified
/// (whose proved accesses then run unchecked, issue #10) give the same result on both engines as
/// in mode checked, run for run: r0 and the instruction count, or the same trap kind (pointer
/// leaks), and the same data afterwards. Verified with `meter` counts as checked does; verified
/// without it (the default: no metering) gives the same r0, trap kind and data, with a count of 0.
/// An unmetered run is only made where the checked one ended before its budget (a verifier that
/// wrongly proved termination would hang it otherwise).
#[test]
fn verified_runs_agree_with_checked_on_both_engines() {
    let programs: usize = std::env::var("VERIFIER_SOUNDNESS_PROGRAMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(400, |n: usize| n / 4);
    let mut rng = Rng::new(0xd1_4ec7);
    type Generator = fn(&mut Rng) -> Vec<Insn>;
    let generators: [(&str, Generator); 3] = [
        ("raw", |rng| random_raw_program(rng, 20)),
        ("call", random_call_program),
        ("loop", random_loop_program),
    ];
    for (name, generate) in generators {
        let (mut loaded, mut runs) = (0, 0);
        for n in 0..programs {
            let p = encode_all(&generate(&mut rng));
            let data_size = rng.pick(&[8u32, 16, 32, 48]);
            let load = |engine, mode, meter| {
                Program::load(
                    &p,
                    ProgramOptions {
                        engine,
                        mode,
                        meter,
                        data_size: (mode == Mode::Verified).then_some(data_size),
                        ..ProgramOptions::default()
                    },
                )
            };
            let Ok(verified_jit) = load(Engine::Jit, Mode::Verified, true) else {
                continue;
            };
            loaded += 1;
            let engines = [
                load(Engine::Interpreter, Mode::Checked, false).expect("checked loads"),
                load(Engine::Jit, Mode::Checked, false).expect("checked loads"),
                load(Engine::Interpreter, Mode::Verified, true).expect("verified loads"),
                verified_jit,
            ];
            let unmetered = [
                load(Engine::Interpreter, Mode::Verified, false).expect("verified loads"),
                load(Engine::Jit, Mode::Verified, false).expect("verified loads"),
            ];
            let run = |prog: &Program, data: &[u8]| {
                let mut d = data.to_vec();
                let result = prog.run(&mut RunInput {
                    data: &mut d,
                    budget: None,
                });
                (result.map(|o| (o.r0, o.insn_count)).map_err(|t| t.kind), d)
            };
            for _ in 0..4 {
                let data: Vec<u8> = (0..data_size).map(|_| rng.next() as u8).collect();
                let outcomes: Vec<_> = engines.iter().map(|prog| run(prog, &data)).collect();
                runs += 1;
                for (k, o) in outcomes.iter().enumerate().skip(1) {
                    assert_eq!(
                        o, &outcomes[0],
                        "{name} program {n} ({data_size} bytes): engine {k} of \
                         [interp checked, jit checked, interp verified, jit verified] differs"
                    );
                }
                let (checked, checked_data) = &outcomes[0];
                if *checked == Err(TrapKind::BudgetExhausted) {
                    continue;
                }
                let expected = (checked.map(|(r0, _)| (r0, 0)), checked_data.clone());
                for (k, prog) in unmetered.iter().enumerate() {
                    assert_eq!(
                        run(prog, &data),
                        expected,
                        "{name} program {n} ({data_size} bytes): unmetered engine {k} of \
                         [interp, jit] differs from checked"
                    );
                }
            }
        }
        eprintln!("{name}: {loaded} of {programs} programs load verified, {runs} runs agree");
        assert!(
            loaded > programs / 20,
            "{name}: too few programs load verified ({loaded})"
        );
    }
}

/// Packet access, whose proved loads and stores run with no check at all in mode verified (XDP's
/// `direct_accesses`, from `packet_proved`): random XDP programs (`random_programs::xdp`) that
/// load in mode verified are run on packets of several lengths with random bytes. Loaded in
/// mode checked, no run may trap on memory (the verifier proved an access some packet puts
/// outside the frame), and the run's trace must show every packet access between `data` and
/// `data_end` (checked mode only keeps it in the frame); loaded in mode verified, on both engines, every run gives the checked
/// run's r0 (or trap kind) and packet bytes. Ten times `VERIFIER_SOUNDNESS_PROGRAMS` programs:
/// few are accepted (about 1.4%; most break a packet rule on purpose).
#[test]
fn accepted_xdp_programs_never_trap_on_memory_and_verified_runs_agree() {
    let programs: usize = std::env::var("VERIFIER_SOUNDNESS_PROGRAMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(20_000, |n: usize| n * 10);
    let lengths = [14usize, 15, 20, 34, 60, 64, 100, 1500];
    let mut rng = Rng::new(0x0d0c_5afe);
    let (mut accepted, mut unchecked, mut runs, mut completed) = (0, 0, 0, 0);
    for n in 0..programs {
        let p = random_xdp_program(&mut rng, 20);
        let code = encode_all(&p);
        let load = |engine, mode| {
            Program::load(
                &code,
                ProgramOptions {
                    prog_type: ProgramType::Xdp,
                    engine,
                    mode,
                    ..ProgramOptions::default()
                },
            )
        };
        let Ok(verified_interp) = load(Engine::Interpreter, Mode::Verified) else {
            continue;
        };
        accepted += 1;
        let report = verified_interp.verifier_report().expect("verified");
        if report.packet_proved.iter().any(|&proved| proved) {
            unchecked += 1;
        }
        let verified = [
            verified_interp,
            load(Engine::Jit, Mode::Verified).expect("verified loads on the JIT"),
        ];
        let checked = load(Engine::Interpreter, Mode::Checked).expect("checked loads");
        let run = |prog: &Program, packet: &[u8]| {
            let mut d = packet.to_vec();
            let result = prog.run(&mut RunInput {
                data: &mut d,
                budget: None,
            });
            (result.map(|o| o.r0).map_err(|t| t.kind), d)
        };
        for &len in &lengths {
            let packet: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let expected = run(&checked, &packet);
            runs += 1;
            match expected.0 {
                Ok(_) => completed += 1,
                Err(kind) => assert!(
                    !matches!(
                        kind,
                        TrapKind::OutOfBounds | TrapKind::ReadOnly | TrapKind::Misaligned
                    ),
                    "XDP program {n} trapped on a {len}-byte packet in mode checked: {kind:?}\n{p:?}"
                ),
            }
            // Checked mode lets an access anywhere in the frame (headroom and tailroom
            // included) pass; the trace names each access's place relative to `data`, so an
            // access past `data_end` the verifier wrongly proved shows here.
            let (_, trace) = checked.run_traced(
                &mut RunInput {
                    data: &mut packet.clone(),
                    budget: None,
                },
                &ContextInput::default(),
                &RunLimits::default(),
                10_000,
            );
            for step in trace.steps() {
                let Some(access) = &step.access else {
                    continue;
                };
                let place = access.place.as_ref();
                let in_packet = place.is_some_and(|at| {
                    at.region == "data"
                        && at.offset >= 0
                        && at.offset + i64::from(access.size) <= len as i64
                });
                let in_ctx = place.is_some_and(|at| at.region == "ctx");
                assert!(
                    in_packet || in_ctx,
                    "XDP program {n}, {len}-byte packet: slot {} accessed {place:?} ({} bytes) \
                     outside the packet\n{p:?}",
                    step.pc,
                    access.size
                );
            }
            for (k, prog) in verified.iter().enumerate() {
                assert_eq!(
                    run(prog, &packet),
                    expected,
                    "XDP program {n}, {len}-byte packet: verified engine {k} of [interp, jit] \
                     differs from checked\n{p:?}"
                );
            }
        }
    }
    eprintln!(
        "{programs} XDP programs: {accepted} accepted ({unchecked} with packet accesses proved, \
         run unchecked when verified), {runs} runs, none trapped on memory or left the packet, \
         verified runs agree"
    );
    assert!(completed > 0, "no accepted XDP program ran to its end");
    assert!(
        unchecked > 0,
        "no accepted XDP program has a proved packet access"
    );
    assert!(
        accepted > programs / 200,
        "too few XDP programs accepted ({accepted}) to say anything"
    );
}

/// The kernel's prototype of helper `id` (none for a negative id).
fn kernel_prototype_of(id: i32) -> Option<ebpf_vm::helpers::prototype::HelperPrototype> {
    u32::try_from(id)
        .ok()
        .and_then(ebpf_vm::helpers::kernel_prototypes::kernel_prototype)
}
