//! The interpreter's fast loop (prepared ops, per-segment counting, inline region checks, fused
//! idioms) against its reference loop (`interpreter::run_reference`: the reference code one
//! instruction at a time, the budget checked before each) on random valid programs. Everything a
//! run can be judged by must be identical: r0 and the count, or the trap (kind, pc, address, size,
//! count, message), and the bytes of every writable region afterwards.
//!
//! `cargo test -p ebpf-vm --test interpreter_fast_path`; `FAST_PATH_CASES=300000` for a long run,
//! `FAST_PATH_SEED=<n>` to change the seed.

mod rng;
use ebpf_vm::helpers::{HelperError, HelperTable};
use ebpf_vm::interpreter::{self, RunEnv, STACK_SIZE};
use ebpf_vm::isa::{encode_all, validate, Insn};
use ebpf_vm::memory::{Region, Regions};
use ebpf_vm::{RunOutput, Trap};
use rng::{Random, Rng};

const DATA_LEN: usize = 100;
const EXTRA_LEN: usize = 64;
const HELPER_MIX: u32 = 1;
const HELPER_NEW_REGION: u32 = 2;
const HELPER_FAILS_ON_ODD: u32 = 3;

/// Memory at fixed addresses, shared by both loops of a case (reset before each run), so that
/// addresses, and whatever a program computes from them, are the same.
struct Memory {
    stack: Vec<u64>,
    data: Vec<u8>,
    /// A region that helper 2 adds to the run: the fast loop must notice new regions.
    extra: &'static mut [u8],
}

fn helpers(extra: u64) -> HelperTable {
    let mut t = HelperTable::new();
    t.register(HELPER_MIX, "mix", |_, a| Ok(a[0] ^ a[1].rotate_left(7)));
    t.register(HELPER_NEW_REGION, "new_region", move |cx, a| {
        cx.regions
            .push(Region::new(extra, EXTRA_LEN as u64, a[0] & 1 == 0));
        Ok(extra)
    });
    t.register(HELPER_FAILS_ON_ODD, "fails_on_odd", |_, a| {
        if a[0] & 1 == 1 {
            Err(HelperError("odd".into()))
        } else {
            Ok(a[0])
        }
    });
    t
}

/// Opcodes that validate in some form (the rest of the fields are drawn at random below).
fn opcodes(h: &HelperTable) -> Vec<u8> {
    (0..=255u8)
        .filter(|&op| {
            [
                (0, 0, 0),
                (1, 0, 0),
                (0, 0, 16),
                (0, 1, 0),
                (0, 8, 0),
                (0, 0, 1),
            ]
            .iter()
            .chain(&[(0, 0, 0xf1), (0, 0, 0x40)])
            .any(|&(src, off, imm)| {
                let p = [Insn::new(op, 0, src, off, imm), Insn::new(0x95, 0, 0, 0, 0)];
                validate(&encode_all(&p), &|id| h.contains(id)).is_ok()
            })
        })
        .collect()
}

/// A random instruction that validates on its own (jump and call targets aside: the whole
/// program is validated again once assembled).
fn draw(r: &mut Rng, ops: &[u8], len: usize, h: &HelperTable) -> Insn {
    loop {
        let i = draw_any(r, ops, len);
        let mut probe = i;
        let class = i.opcode & 7;
        if matches!(class, 5 | 6) && !matches!(i.opcode, 0x85 | 0x8d | 0x95) {
            probe.off = 0;
            if i.opcode == 0x06 {
                probe.imm = 0;
            }
        }
        if i.opcode == 0x85 && i.src == 1 {
            probe.imm = 0;
        }
        let p = [probe, Insn::new(0x95, 0, 0, 0, 0)];
        if i.opcode == 0x18 || validate(&encode_all(&p), &|id| h.contains(id)).is_ok() {
            return i;
        }
    }
}

fn draw_any(r: &mut Rng, ops: &[u8], len: usize) -> Insn {
    let op = r.pick(ops);
    let class = op & 7;
    let mut dst = r.below(11) as u8;
    let mut src = if r.below(3) == 0 {
        0
    } else {
        r.below(11) as u8
    };
    let mut off: i16 = match class {
        5 | 6 => r.below(9) as i16 - 4,
        _ => r.pick(&[0i16, 0, 0, 1, 8, 16, 32]),
    };
    let mut imm: i32 = match r.below(5) {
        0 => r.next() as i32,
        1 => r.pick(&[
            16, 32, 64, 0, 1, 0x40, 0x41, 0x50, 0x51, 0xa0, 0xa1, 0xe1, 0xf1,
        ]),
        2 => r.below(20) as i32 - 10,
        3 => r.pick(&[i32::MIN, i32::MAX, -1, 63, 31]),
        _ => r.below(len as u64) as i32 - len as i32 / 2,
    };
    if matches!(class, 1..=3) && r.below(4) != 0 {
        // Mostly accesses that land: the stack below r10, or the data through r1.
        let base = r.pick(&[1u8, 10]);
        off = if base == 10 {
            -(r.below(520) as i16)
        } else {
            r.below(104) as i16
        };
        if class == 1 {
            src = base;
        } else {
            dst = base;
        }
    }
    if op == 0x85 {
        src = r.pick(&[0u8, 0, 1]);
        imm = if src == 0 {
            r.pick(&[1, 2, 3, 99])
        } else {
            r.below(9) as i32 - 4
        };
    }
    if op & 7 == 6 && op & 0xf0 == 0 {
        imm = r.below(9) as i32 - 4;
    }
    Insn::new(op, dst, src, off, imm)
}

/// A random valid program: random instructions, planted array-indexing idioms (the fused
/// sequences), lddw pairs, and an exit at the end.
fn generate(r: &mut Rng, ops: &[u8], h: &HelperTable) -> Option<Vec<Insn>> {
    let len = 2 + r.below(40) as usize;
    let mut insns: Vec<Insn> = (0..len).map(|_| draw(r, ops, len, h)).collect();
    for _ in 0..r.below(4) {
        let at = r.below(len as u64 - 1) as usize;
        let d = r.below(10) as u8;
        let base = r.pick(&[1u8, 10, 2, 3]);
        insns[at] = Insn::new(0xbf, d, base, 0, 0);
        insns[at + 1] = Insn::new(0x0f, d, r.pick(&[0u8, 2, 3, d]), 0, 0);
        if at + 2 < len {
            let o = r.pick(&[0x61u8, 0x69, 0x71, 0x79, 0x63, 0x6b, 0x73, 0x7b]);
            let off = if base == 10 {
                -(r.below(80) as i16)
            } else {
                r.below(80) as i16 - 8
            };
            let other = r.below(10) as u8;
            insns[at + 2] = if o & 7 == 1 {
                Insn::new(o, other, d, off, 0)
            } else {
                Insn::new(o, d, other, off, 0)
            };
        }
    }
    // Loops closed as clang closes them, which the threaded form runs as one op: a conditional
    // jump over an unconditional one, after an add, a move or a mask of the register it tests.
    for _ in 0..r.below(3) {
        let at = r.below(len as u64 - 1) as usize;
        let d = r.below(10) as u8;
        let test = r.pick(&[0x2du8, 0xad, 0x55, 0x15, 0x1e, 0xa6, 0xae, 0x66]);
        // A register source, or an immediate (the other field zero, as validation wants).
        let (src, imm) = if test & 8 != 0 {
            (r.below(10) as u8, 0)
        } else {
            (0, r.below(20) as i32)
        };
        insns[at] = Insn::new(test, d, src, 1, imm);
        insns[at + 1] = Insn::new(0x05, 0, 0, r.below(4) as i16, 0);
        if at > 0 {
            let step = r.pick(&[0x07u8, 0x04, 0x0f, 0x0c, 0xbf, 0xbc, 0x57, 0x54]);
            let (src, imm) = if step & 8 != 0 {
                (r.below(10) as u8, 0)
            } else {
                (0, r.below(3) as i32)
            };
            insns[at - 1] = Insn::new(step, d, src, 0, imm);
        }
    }
    // Selects as clang writes them, which the threaded form runs as one op without a branch:
    // a conditional jump over one move, add or subtract (`if c goto +1; rT = X`, `rT += k`), rT
    // at times a register the jump tests or the move's source, and an instruction after that
    // reads rT.
    for _ in 0..r.below(3) {
        if len < 3 {
            break;
        }
        let at = r.below(len as u64 - 2) as usize;
        let (d, other, any) = (r.below(10) as u8, r.below(10) as u8, r.below(11) as u8);
        let t = r.pick(&[other, d]);
        let test = r.pick(&[0x15u8, 0x55, 0x1d, 0x2d, 0xa5, 0x16, 0x56, 0x6e, 0x45, 0xc5]);
        let (src, imm) = if test & 8 != 0 {
            (r.pick(&[other, t]), 0)
        } else {
            (0, r.below(4) as i32)
        };
        insns[at] = Insn::new(test, d, src, 1, imm);
        let mov = r.pick(&[0xb7u8, 0xbf, 0xb4, 0xbc, 0x07, 0x04, 0x17, 0x14]);
        insns[at + 1] = if mov & 8 != 0 {
            Insn::new(mov, t, r.pick(&[any, t, d]), 0, 0)
        } else {
            Insn::new(mov, t, 0, 0, r.next() as i32)
        };
        let e = r.below(10) as u8;
        insns[at + 2] = match r.below(3) {
            0 => Insn::new(0x0f, e, t, 0, 0),
            1 => Insn::new(0xaf, e, t, 0, 0),
            _ => Insn::new(0x67, t, 0, 0, 3),
        };
    }
    // Chains that hand a value on: a pointer copied into rD, moved by an add, then an
    // instruction that reads rD (the threaded form passes the register the instruction before
    // wrote to the next handler in a host register, and reads it from there).
    for _ in 0..r.below(3) {
        if len < 3 {
            break;
        }
        let at = r.below(len as u64 - 2) as usize;
        let d = r.below(10) as u8;
        let e = r.below(10) as u8;
        let (base, off) = if r.below(2) == 0 {
            (10u8, -8 * (1 + r.below(8) as i32))
        } else {
            (1, 8 * r.below(12) as i32)
        };
        insns[at] = Insn::new(0xbf, d, base, 0, 0);
        insns[at + 1] = Insn::new(r.pick(&[0x07u8, 0x04]), d, 0, 0, off);
        insns[at + 2] = match r.below(8) {
            0 => Insn::new(r.pick(&[0x79u8, 0x61, 0x71]), e, d, 0, 0),
            1 => Insn::new(r.pick(&[0x7bu8, 0x63, 0x73]), d, e, 0, 0),
            2 => Insn::new(0x7b, e, d, -8, 0),
            3 => Insn::new(0x72, d, 0, 0, r.next() as i32),
            4 => Insn::new(r.pick(&[0x0fu8, 0xaf, 0x4c, 0xbf]), e, d, 0, 0),
            5 => Insn::new(r.pick(&[0x5du8, 0x2d, 0xbd, 0x1e]), d, e, 1, 0),
            6 => Insn::new(
                r.pick(&[0x15u8, 0x55, 0xa5, 0x16]),
                d,
                0,
                1,
                r.below(8) as i32,
            ),
            _ => Insn::new(
                r.pick(&[0x67u8, 0x77, 0x57, 0x24]),
                d,
                0,
                0,
                r.below(8) as i32,
            ),
        };
    }
    // Big-endian fields built two loads at a time, as clang assembles them (one op in the
    // threaded form): `rA = *(b + o1); rA <<= k1; rC = *(b + o2); rC <<= k2; rC |= rA`, the
    // offsets near each other or apart, some past the end of the region, and at times the base
    // or the registers overlapping.
    for _ in 0..r.below(3) {
        if len < 5 {
            break;
        }
        let at = r.below(len as u64 - 4) as usize;
        let load = r.pick(&[0x71u8, 0x69, 0x61, 0x79]);
        let shift = r.pick(&[0x64u8, 0x67]);
        let b = r.pick(&[1u8, 10, 2]);
        let (a, c) = (r.below(10) as u8, r.below(10) as u8);
        let o1 = if b == 10 {
            -(r.below(72) as i16) - 1
        } else {
            r.below(80) as i16 - 8
        };
        let o2 = o1 + r.below(12) as i16 - 4;
        insns[at] = Insn::new(load, a, b, o1, 0);
        insns[at + 1] = Insn::new(shift, a, 0, 0, r.below(40) as i32);
        insns[at + 2] = Insn::new(load, c, b, o2, 0);
        insns[at + 3] = Insn::new(shift, c, 0, 0, r.below(40) as i32);
        insns[at + 4] = Insn::new(r.pick(&[0x4cu8, 0x4f]), c, a, 0, 0);
    }
    // A value kept in memory, loaded, changed and stored back (`rX = *(b + o); rX op= Y;
    // *(b + o) = rX`, one op in the threaded form), on the stack or in the data, some past the
    // end, at times through a read-only region or with the registers overlapping.
    for _ in 0..r.below(3) {
        if len < 3 {
            break;
        }
        let at = r.below(len as u64 - 2) as usize;
        let (load, store) = r.pick(&[(0x61u8, 0x63u8), (0x79, 0x7b), (0x71, 0x73)]);
        let b = r.pick(&[10u8, 10, 1, 2]);
        let x = r.below(10) as u8;
        let off = if b == 10 {
            -8 * (1 + r.below(9) as i16)
        } else {
            r.below(80) as i16 - 8
        };
        let alu = r.pick(&[0x07u8, 0x04, 0x0f, 0x0c, 0x4c, 0x4f, 0xaf]);
        let (src, imm) = if alu & 8 != 0 {
            (r.below(10) as u8, 0)
        } else {
            (0, r.below(5) as i32 - 2)
        };
        insns[at] = Insn::new(load, x, b, off, 0);
        insns[at + 1] = Insn::new(alu, x, src, 0, imm);
        insns[at + 2] = Insn::new(store, b, x, off, 0);
    }
    let mut i = 0;
    while i < insns.len() {
        if insns[i].opcode == 0x18 {
            insns[i].src = 0;
            let hi = Insn::new(0, 0, 0, 0, r.next() as i32);
            if i + 1 < insns.len() {
                insns[i + 1] = hi;
            } else {
                insns.push(hi);
            }
            i += 1;
        }
        i += 1;
    }
    insns.push(Insn::new(0x95, 0, 0, 0, 0));
    validate(&encode_all(&insns), &|id| h.contains(id)).ok()
}

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    result: Result<RunOutput, Trap>,
    data: Vec<u8>,
    stack: Vec<u64>,
    extra: Vec<u8>,
}

#[allow(clippy::too_many_arguments)]
fn run_case(
    insns: &[Insn],
    reference: bool,
    mem: &mut Memory,
    init: &[u8],
    writable: bool,
    budget: u64,
    h: &HelperTable,
) -> Outcome {
    mem.data.copy_from_slice(init);
    mem.extra.fill(7);
    for (k, w) in mem.stack.iter_mut().enumerate() {
        *w = (k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    let stack = mem.stack.as_mut_ptr() as u64;
    let data = mem.data.as_mut_ptr() as u64;
    let mut regions = Regions::new();
    regions.set_stack(Region::new(stack, STACK_SIZE as u64, true));
    regions.set_data(Region::new(data, DATA_LEN as u64, writable));
    let mut state = Default::default();
    let mut env = RunEnv {
        helpers: h,
        regions: &mut regions,
        stack_top: stack + STACK_SIZE as u64,
        budget,
        packet: (data, DATA_LEN as u64),
        maps: &mut Default::default(),
        state: &mut state,
        function_runner: None,
    };
    let args = [data, DATA_LEN as u64, 0, 0, 0];
    let result = if reference {
        interpreter::run_reference(insns, &mut env, args)
    } else {
        interpreter::run(insns, &mut env, args)
    };
    Outcome {
        result,
        data: mem.data.clone(),
        stack: mem.stack.clone(),
        extra: mem.extra.to_vec(),
    }
}

#[test]
fn fast_loop_agrees_with_reference_loop() {
    let cases: u64 = std::env::var("FAST_PATH_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let seed: u64 = std::env::var("FAST_PATH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let extra: &'static mut [u8] = Box::leak(vec![0u8; EXTRA_LEN].into_boxed_slice());
    let h = helpers(extra.as_ptr() as u64);
    let ops = opcodes(&h);
    let mut mem = Memory {
        stack: vec![0; STACK_SIZE / 8],
        data: vec![0; DATA_LEN],
        extra,
    };
    let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let (mut compared, mut trapped) = (0u64, 0u64);
    for case in 0..cases {
        let Some(insns) = generate(&mut r, &ops, &h) else {
            continue;
        };
        let init: Vec<u8> = (0..DATA_LEN).map(|_| r.next() as u8).collect();
        let writable = r.below(4) != 0;
        let budget = r.pick(&[0u64, 1, 2, 5, 17, 100, 1000, 3000]);
        let want = run_case(&insns, true, &mut mem, &init, writable, budget, &h);
        let got = run_case(&insns, false, &mut mem, &init, writable, budget, &h);
        assert_eq!(
            want, got,
            "case {case} (seed {seed}): loops disagree (budget {budget}, writable {writable})\n{insns:#?}"
        );
        compared += 1;
        trapped += want.result.is_err() as u64;
    }
    eprintln!("{compared} programs compared, {trapped} trapped");
    // The generator must keep producing programs of both kinds, or the test proves little.
    assert!(compared > cases / 4, "only {compared} valid programs");
    assert!(
        trapped > 0 && trapped < compared,
        "{trapped} of {compared} trapped"
    );
}
