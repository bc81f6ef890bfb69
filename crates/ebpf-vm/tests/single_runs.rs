//! Single runs (`Program::run`) one after another on one thread: the JIT keeps its context block
//! in the thread's run space between them (`jit::Home`) and fills in its region-dependent fields
//! only where the run's data or stack moved. Runs of other programs, of other data lengths at the
//! same address, traps and budgets in between must not leak into a run: every run gives what the
//! program computes on its own input (worked out by hand below), on both engines.

mod context_support;

use context_support::*;
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::Insn;
use ebpf_vm::{Engine, Mode, Program, ProgramOptions, ProgramType, RunInput, Trap, TrapKind};

fn engines() -> Vec<Engine> {
    let mut v = vec![Engine::Interpreter];
    if cfg!(target_arch = "x86_64") {
        v.push(Engine::Jit);
    }
    v
}

/// `r0 = *(u8 *)(r1 + 15)`: the 16th byte of the data, or an out-of-bounds trap at pc 0 when
/// the data is shorter (mode checked: the access is checked inline, against the data's length).
fn byte_15() -> Vec<Insn> {
    prog![ldx(SIZE_B, 0, 1, 15), exit()]
}

/// `r0 = *(u8 *)(r1 + r2 - 1)`: the last byte of the data, whatever its length.
fn last_byte() -> Vec<Insn> {
    prog![movr(3, 1), addr(3, 2), ldx(SIZE_B, 0, 3, -1), exit()]
}

/// `*(u64 *)(r10 - 8) = r2; r0 = *(u64 *)(r10 - 8) + 1`: the data's length plus one, through the
/// stack (one frame; its accesses are frame-local, so unchecked).
fn length_through_stack() -> Vec<Insn> {
    prog![
        stx(SIZE_DW, 10, 2, -8),
        ldx(SIZE_DW, 0, 10, -8),
        add(0, 1),
        exit()
    ]
}

/// A loop of 1,000 rounds: 2 + 1,000 * 2 + 1 = 2,003 instructions, so a budget of 100 stops it.
fn long_loop() -> Vec<Insn> {
    prog![
        mov(0, 0),
        mov(2, 0),
        add(2, 1),
        ji(JMP_JLT, 2, 1000, -2),
        exit()
    ]
}

fn load_on(insns: &[Insn], engine: Engine, mode: Mode, data_size: Option<u32>) -> Program {
    let p = load_with(
        insns,
        ProgramOptions {
            engine,
            mode,
            data_size,
            ..options(ProgramType::Raw)
        },
    )
    .expect("loads");
    assert_eq!(p.engine(), engine);
    p
}

fn run(p: &Program, data: &mut [u8], budget: Option<u64>) -> Result<u64, Trap> {
    p.run(&mut RunInput { data, budget }).map(|out| out.r0)
}

#[test]
fn runs_of_several_programs_on_one_thread_each_see_their_own_data_and_stack() {
    for engine in engines() {
        let checked_15 = load_on(&byte_15(), engine, Mode::Checked, None);
        let checked_last = load_on(&last_byte(), engine, Mode::Checked, None);
        // Verified for 16 bytes: its access is proved, so its code has no inline check.
        let verified_15 = load_on(&byte_15(), engine, Mode::Verified, Some(16));
        let stack = load_on(&length_through_stack(), engine, Mode::Checked, None);
        let looping = load_on(&long_loop(), engine, Mode::Checked, None);
        let mut buf: [u8; 32] = std::array::from_fn(|i| 100 + i as u8);
        let mut other: [u8; 16] = std::array::from_fn(|i| 200 + i as u8);

        for _ in 0..2 {
            assert_eq!(
                run(&checked_15, &mut buf[..16], None),
                Ok(115),
                "{engine:?}"
            );
            // The same address, 8 bytes: the bound is of 8 bytes now.
            let trap = run(&checked_15, &mut buf[..8], None).expect_err("byte 15 of 8");
            assert_eq!(
                (trap.kind, trap.pc),
                (TrapKind::OutOfBounds, 0),
                "{engine:?}"
            );
            assert_eq!(run(&verified_15, &mut other, None), Ok(215), "{engine:?}");
            let trap = run(&checked_15, &mut buf[..15], None).expect_err("byte 15 of 15");
            assert_eq!(
                (trap.kind, trap.pc),
                (TrapKind::OutOfBounds, 0),
                "{engine:?}"
            );
            assert_eq!(
                run(&checked_last, &mut buf[..32], None),
                Ok(131),
                "{engine:?}"
            );
            assert_eq!(
                run(&checked_last, &mut buf[..3], None),
                Ok(102),
                "{engine:?}"
            );
            assert_eq!(run(&stack, &mut buf[..5], None), Ok(6), "{engine:?}");
            let trap = run(&looping, &mut other, Some(100)).expect_err("the budget stops it");
            assert_eq!(trap.kind, TrapKind::BudgetExhausted, "{engine:?}");
            assert_eq!(run(&looping, &mut other, None), Ok(0), "{engine:?}");
            assert_eq!(run(&stack, &mut other, None), Ok(17), "{engine:?}");
            assert_eq!(run(&checked_15, &mut other, None), Ok(215), "{engine:?}");
            assert_eq!(
                run(&checked_last, &mut other[..1], None),
                Ok(200),
                "{engine:?}"
            );
        }
    }
}

#[test]
fn a_run_on_another_thread_has_its_own_block() {
    for engine in engines() {
        let checked_15 = std::sync::Arc::new(load_on(&byte_15(), engine, Mode::Checked, None));
        let mut buf: [u8; 16] = std::array::from_fn(|i| i as u8);
        assert_eq!(run(&checked_15, &mut buf, None), Ok(15));
        let p = checked_15.clone();
        let other = std::thread::spawn(move || {
            let mut short = [7u8; 4];
            let trap = run(&p, &mut short, None).expect_err("byte 15 of 4");
            let mut long = [9u8; 16];
            (trap.kind, run(&p, &mut long, None))
        })
        .join()
        .expect("the thread ends");
        assert_eq!(other, (TrapKind::OutOfBounds, Ok(9)), "{engine:?}");
        assert_eq!(
            run(&checked_15, &mut buf[..8], None).map_err(|t| t.kind),
            Err(TrapKind::OutOfBounds)
        );
        assert_eq!(run(&checked_15, &mut buf, None), Ok(15), "{engine:?}");
    }
}

/// `r6 = r1; call bpf_ktime_get_ns; r0 = *(u8 *)(r6 + 15)`: a helper call, so runs take the
/// general path (`run_on`, where tail-call chains run) rather than the plain one; its read is
/// checked against the data of its own run.
fn byte_15_after_a_helper() -> Vec<Insn> {
    prog![movr(6, 1), call(5), ldx(SIZE_B, 0, 6, 15), exit()]
}

#[test]
fn runs_through_the_general_path_and_plain_runs_interleave() {
    for engine in engines() {
        let general = load_on(&byte_15_after_a_helper(), engine, Mode::Checked, None);
        let plain = load_on(&byte_15(), engine, Mode::Checked, None);
        let mut buf: [u8; 16] = std::array::from_fn(|i| 50 + i as u8);
        for _ in 0..2 {
            assert_eq!(run(&general, &mut buf, None), Ok(65), "{engine:?}");
            assert_eq!(run(&plain, &mut buf, None), Ok(65), "{engine:?}");
            let trap = run(&general, &mut buf[..15], None).expect_err("byte 15 of 15");
            assert_eq!(
                (trap.kind, trap.pc),
                (TrapKind::OutOfBounds, 2),
                "{engine:?}"
            );
            let trap = run(&plain, &mut buf[..15], None).expect_err("byte 15 of 15");
            assert_eq!(
                (trap.kind, trap.pc),
                (TrapKind::OutOfBounds, 0),
                "{engine:?}"
            );
            assert_eq!(run(&general, &mut buf, None), Ok(65), "{engine:?}");
        }
    }
}

/// `r0 = r1`: the data's address, which a run refusing pointer leaks (the default) must not
/// return.
fn data_address() -> Vec<Insn> {
    prog![movr(0, 1), exit()]
}

/// `r0 = r10`: the stack's top, one past the stack's last byte (an address of the run too).
fn stack_top() -> Vec<Insn> {
    prog![movr(0, 10), exit()]
}

/// Verified, unmetered programs whose accesses are all proved run without setting the region
/// table (`Program::bare`, JIT): the pointer-leak check at exit must still see the run's stack
/// and data, and the runs after them (checked ones, which read the table) their own memory.
#[test]
fn runs_that_leave_the_region_table_unset_still_refuse_leaks_and_leave_nothing_behind() {
    for engine in engines() {
        let address = load_on(&data_address(), engine, Mode::Verified, Some(16));
        let top = load_on(&stack_top(), engine, Mode::Verified, Some(16));
        let verified_15 = load_on(&byte_15(), engine, Mode::Verified, Some(16));
        let checked_15 = load_on(&byte_15(), engine, Mode::Checked, None);
        let allowed = load_with(
            &data_address(),
            ProgramOptions {
                engine,
                mode: Mode::Verified,
                data_size: Some(16),
                pointer_leaks: ebpf_vm::PointerLeaks::Allow,
                ..options(ProgramType::Raw)
            },
        )
        .expect("loads");
        let mut buf: [u8; 16] = std::array::from_fn(|i| 30 + i as u8);
        let mut other: [u8; 16] = std::array::from_fn(|i| 60 + i as u8);
        for _ in 0..2 {
            let trap = run(&address, &mut buf, None).expect_err("the data's address");
            assert_eq!(
                (trap.kind, trap.pc),
                (TrapKind::PointerLeak, 1),
                "{engine:?}"
            );
            let trap = run(&top, &mut other, None).expect_err("the stack's top");
            assert_eq!(
                (trap.kind, trap.pc),
                (TrapKind::PointerLeak, 1),
                "{engine:?}"
            );
            // Allowed, the address comes back as it is.
            let at = buf.as_ptr() as u64;
            assert_eq!(run(&allowed, &mut buf, None), Ok(at), "{engine:?}");
            assert_eq!(run(&verified_15, &mut other, None), Ok(75), "{engine:?}");
            // A checked run after them reads the table: its own data, 8 bytes, no byte 15.
            let trap = run(&checked_15, &mut buf[..8], None).expect_err("byte 15 of 8");
            assert_eq!(
                (trap.kind, trap.pc),
                (TrapKind::OutOfBounds, 0),
                "{engine:?}"
            );
            assert_eq!(run(&verified_15, &mut buf, None), Ok(45), "{engine:?}");
            // A verified program refuses other lengths before it runs.
            let trap = run(&verified_15, &mut buf[..8], None).expect_err("8 bytes, not 16");
            assert_eq!(trap.kind, TrapKind::InvalidInput, "{engine:?}");
            assert_eq!(run(&checked_15, &mut other, None), Ok(75), "{engine:?}");
        }
        // The first run of a new thread (a new run space) of such a program.
        let p = std::sync::Arc::new(verified_15);
        let q = p.clone();
        let on_thread = std::thread::spawn(move || {
            let mut data: [u8; 16] = std::array::from_fn(|i| 90 + i as u8);
            let leak = std::sync::Arc::new(address);
            let mut again = data;
            (
                run(&q, &mut data, None),
                run(&leak, &mut again, None).map_err(|t| t.kind),
            )
        })
        .join()
        .expect("the thread ends");
        assert_eq!(
            on_thread,
            (Ok(105), Err(TrapKind::PointerLeak)),
            "{engine:?}"
        );
        assert_eq!(run(&p, &mut other, None), Ok(75), "{engine:?}");
    }
}

/// `r0 = r1 + r2 + k`: an address k bytes past the data's end.
fn past_the_data(k: i32) -> Vec<Insn> {
    prog![movr(0, 1), addr(0, 2), add(0, k), exit()]
}

/// Large values of r0 that are no address of the run come back as they are, while the data's
/// one-past-the-end address is refused (as `r0 = r10` is): a bare run tells them apart without
/// the region table, and both engines give the same.
#[test]
fn large_values_of_r0_come_back_and_addresses_of_the_run_do_not() {
    for engine in engines() {
        let big = load_on(
            &prog![lddw(0, 0x1234_5678_9abc_def0), exit()],
            engine,
            Mode::Verified,
            Some(16),
        );
        let end = load_on(&past_the_data(0), engine, Mode::Verified, Some(16));
        // About 512 MiB past the data's end (the verifier's largest offset): neither the data nor
        // the run's stack area (a few KiB that are not 512 MiB after the caller's buffer).
        let beyond = load_on(
            &past_the_data((1 << 29) - 1),
            engine,
            Mode::Verified,
            Some(16),
        );
        let top = load_on(&stack_top(), engine, Mode::Verified, Some(16));
        let mut data = vec![7u8; 16];
        for _ in 0..2 {
            assert_eq!(
                run(&big, &mut data, None),
                Ok(0x1234_5678_9abc_def0),
                "{engine:?}"
            );
            let trap = run(&end, &mut data, None).expect_err("one past the data's end");
            assert_eq!(
                (trap.kind, trap.pc),
                (TrapKind::PointerLeak, 3),
                "{engine:?}"
            );
            let at = data.as_ptr() as u64 + 16 + (1 << 29) - 1;
            assert_eq!(run(&beyond, &mut data, None), Ok(at), "{engine:?}");
            let trap = run(&top, &mut data, None).expect_err("the stack's top");
            assert_eq!(
                (trap.kind, trap.pc),
                (TrapKind::PointerLeak, 1),
                "{engine:?}"
            );
        }
    }
}

/// A program that uses every register the host must get back (r6-r9 are its callee-saved rbx,
/// r13-r15; r10 its rbp), writes its data and its stack, divides by zero and has two exits:
/// with d0, d1 the data's first two bytes, r9 = (d0 + d1) << 4, the data's byte 2 = r9's low
/// byte, r0 = r9 + d0 + (r0 / 0 = 0) + (d0 % 0 = d0), less d1 when d1 > 100 (the exit at 20,
/// else at 18).
fn callee_saved() -> Vec<Insn> {
    let div = Insn::new(CLASS_ALU64 | ALU_DIV | SRC_X, 4, 3, 0, 0);
    let modulo = Insn::new(CLASS_ALU64 | ALU_MOD | SRC_X, 5, 3, 0, 0);
    prog![
        ldx(SIZE_B, 6, 1, 0),
        ldx(SIZE_B, 7, 1, 1),
        movr(8, 6),
        addr(8, 7),
        movr(9, 8),
        lsh(9, 4),
        stx(SIZE_B, 1, 9, 2),
        stx(SIZE_DW, 10, 9, -8),
        ldx(SIZE_DW, 0, 10, -8),
        addr(0, 6),
        mov(3, 0),
        movr(4, 0),
        div,
        addr(0, 4),
        movr(5, 6),
        modulo,
        addr(0, 5),
        ji(JMP_JGT, 7, 100, 1),
        exit(),
        subr(0, 7),
        exit()
    ]
}

/// `r0 = f() + 1` with `f` a function returning 41: a verified program whose code calls between
/// functions, so its runs take the block's entry (a call's depth is kept there), not the bare one.
fn local_call() -> Vec<Insn> {
    prog![call_local(2), add(0, 1), exit(), mov(0, 41), exit()]
}

/// r0, the exit's pc and the count of one run.
fn output(p: &Program, data: &mut [u8]) -> Result<(u64, usize, u64), Trap> {
    (p.run(&mut RunInput { data, budget: None })).map(|o| (o.r0, o.exit_pc, o.insn_count))
}

/// A verified program's bare runs (`Program::bare`: the JIT's entry of its own, which sets up
/// only registers and returns r0 and the exit's pc) give the program's results, hand-worked in
/// `callee_saved`, on different buffers, between checked runs and runs that enter through the
/// block, on a new thread too; the host's registers come back whole (the runs and the test go
/// on), and an unmetered run counts nothing.
#[test]
fn bare_runs_give_r0_the_exit_and_the_data_written_and_the_host_its_registers() {
    for engine in engines() {
        let bare = load_on(&callee_saved(), engine, Mode::Verified, Some(16));
        let checked = load_on(&callee_saved(), engine, Mode::Checked, None);
        let called = load_on(&local_call(), engine, Mode::Verified, Some(16));
        let stack = load_on(&length_through_stack(), engine, Mode::Checked, None);
        for round in 0..3 {
            // d0 = 3, d1 = 5: r9 = 128, byte 2 = 128, r0 = 128 + 3 + 0 + 3 = 134, exit at 18.
            let mut low = [0u8; 16];
            (low[0], low[1]) = (3, 5);
            // d0 = 1, d1 = 200: r9 = 3,216 (0xc90), byte 2 = 0x90, r0 = 3,216 + 1 + 0 + 1 -
            // 200 = 3,018, exit at 20.
            let mut high = [7u8; 16];
            (high[0], high[1]) = (1, 200);
            assert_eq!(
                output(&bare, &mut low),
                Ok((134, 18, 0)),
                "{engine:?} {round}"
            );
            assert_eq!(low[2], 128, "{engine:?}");
            assert_eq!(output(&called, &mut low), Ok((42, 2, 0)), "{engine:?}");
            assert_eq!(output(&bare, &mut high), Ok((3018, 20, 0)), "{engine:?}");
            assert_eq!(high[2], 0x90, "{engine:?}");
            // The checked program computes the same, counting its 19 and 20 instructions
            // (0-18; 0-17, 19 and 20).
            (high[2], low[2]) = (7, 0);
            assert_eq!(
                output(&checked, &mut high),
                Ok((3018, 20, 20)),
                "{engine:?}"
            );
            assert_eq!(run(&stack, &mut [0u8; 40], None), Ok(41), "{engine:?}");
            assert_eq!(output(&checked, &mut low), Ok((134, 18, 19)), "{engine:?}");
            // 17 bytes: refused before the run, the data untouched.
            let mut longer = [9u8; 17];
            let trap = output(&bare, &mut longer).expect_err("17 bytes, not 16");
            assert_eq!(trap.kind, TrapKind::InvalidInput, "{engine:?}");
            assert_eq!(longer, [9u8; 17], "{engine:?}");
        }
        let p = std::sync::Arc::new(bare);
        let q = p.clone();
        let on_thread = std::thread::spawn(move || {
            let mut data = [0u8; 16];
            (data[0], data[1]) = (10, 101);
            // r9 = 111 << 4 = 1,776 (0x6f0), r0 = 1,776 + 10 + 0 + 10 - 101 = 1,695.
            (output(&q, &mut data), data[2])
        })
        .join()
        .expect("the thread ends");
        assert_eq!(on_thread, (Ok((1695, 20, 0)), 0xf0), "{engine:?}");
    }
}
