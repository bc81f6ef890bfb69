//! Values gathered from byte loads (`jit/compile/gather.rs`): in mode verified the JIT loads
//! `p[0] << 8 | p[1]` and `p[0] << 24 | ... | p[3]`, its pieces consecutive or with other work
//! between them, as one load and a byte swap. Expected values
//! are worked out by hand from the bytes (RFC 9669: byte loads zero-extend, 32-bit ALU results
//! are zero-extended); the generated cases compare the JIT with the interpreter, the reference.
#![cfg(target_arch = "x86_64")]

mod common;

use common::*;
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::Insn;
use ebpf_vm::{Engine, Mode, Program, RunInput};

const SIZE: usize = 32;

fn lsh32(r: u8, k: i32) -> Insn {
    alu32_imm(ALU_LSH, r, k)
}

fn or32(d: u8, s: u8) -> Insn {
    alu32_reg(ALU_OR, d, s)
}

/// r0 and the data after one run of `code` in mode verified on `engine`, and the JIT's listing.
fn run(code: &[Insn], engine: Engine, data: &[u8]) -> (u64, Vec<u8>, String) {
    let p: Program = load_sized(code, engine, Mode::Verified, data.len());
    let mut data = data.to_vec();
    let out = p
        .run(&mut RunInput {
            data: &mut data,
            budget: None,
        })
        .expect("the program runs");
    let listing = match engine {
        Engine::Jit => p.jited_disassembly(),
        _ => String::new(),
    };
    (out.r0, data, listing)
}

fn bytes() -> Vec<u8> {
    let mut d = vec![0u8; SIZE];
    d[..8].copy_from_slice(&[0x12, 0x34, 0x56, 0x78, 0xa1, 0xb2, 0xc3, 0xd4]);
    d
}

/// r0 after both engines ran `code` (they must agree), and whether the JIT's code has `what`.
fn r0_and_listing(code: &[Insn], what: &str) -> (u64, bool) {
    let (r0, data, listing) = run(code, Engine::Jit, &bytes());
    let (want, want_data, _) = run(code, Engine::Interpreter, &bytes());
    assert_eq!((r0, &data), (want, &want_data), "{listing}");
    (r0, listing.contains(what))
}

#[test]
fn a_big_endian_pair_of_bytes_is_one_load_and_a_rotate() {
    // clang's be16 (parse.c): the second byte first, the first shifted and or-ed in.
    let code = [
        ldx(SIZE_B, 2, 1, 1),
        ldx(SIZE_B, 0, 1, 0),
        lsh32(0, 8),
        or32(0, 2),
        exit(),
    ];
    assert_eq!(r0_and_listing(&code, " rol "), (0x1234, true));
    // The base overwritten by the last byte load, as clang does when it is dead after.
    let code = [
        mov64_reg(3, 1),
        ldx(SIZE_B, 2, 3, 1),
        ldx(SIZE_B, 3, 3, 0),
        lsh32(3, 8),
        or32(3, 2),
        mov64_reg(0, 3),
        exit(),
    ];
    assert_eq!(r0_and_listing(&code, " rol "), (0x1234, true));
}

#[test]
fn four_bytes_are_one_load_and_a_bswap_when_consecutive() {
    // parse_fixed's L4 ports as clang-19 wrote them (pcs 235-244): bytes 4-7 (a1 b2 c3 d4) with
    // 32-bit shifts, the fourth byte or-ed in before the third: 0xa1b2c3d4, plus r4 = 8 set
    // before.
    let code = [
        mov64_imm(5, 8),
        ldx(SIZE_B, 2, 1, 4),
        lsh32(2, 24),
        ldx(SIZE_B, 4, 1, 5),
        lsh32(4, 16),
        or32(4, 2),
        ldx(SIZE_B, 2, 1, 7),
        or32(4, 2),
        ldx(SIZE_B, 2, 1, 6),
        lsh32(2, 8),
        or32(4, 2),
        mov64_reg(0, 4),
        alu64_reg(ALU_ADD, 0, 5),
        exit(),
    ];
    assert_eq!(r0_and_listing(&code, " bswap "), (0xa1b2c3dc, true));
    // The same bytes with other work in between (64-bit shifts too; r3's first piece or-ed in
    // before r3 is loaded again): the same value, one load.
    let code = [
        ldx(SIZE_B, 3, 1, 4),
        alu64_imm(ALU_LSH, 3, 24),
        ldx(SIZE_B, 5, 1, 5),
        mov64_imm(4, 7),
        lsh32(5, 16),
        alu64_imm(ALU_ADD, 4, 1),
        or32(5, 3),
        ldx(SIZE_B, 6, 1, 7),
        ldx(SIZE_B, 3, 1, 6),
        lsh32(3, 8),
        or32(5, 3),
        alu64_reg(ALU_OR, 5, 6),
        mov64_reg(0, 5),
        alu64_reg(ALU_ADD, 0, 4),
        exit(),
    ];
    assert_eq!(r0_and_listing(&code, " bswap "), (0xa1b2c3dc, true));
}

#[test]
fn two_gathers_whose_pieces_alternate_as_clang_writes_ipv4_addresses() {
    // parse_fixed's IPv4 path (pcs 268-285): the first address's three high bytes, then three of
    // the second's, then the first's last byte. The first is one load (0x12345678); the second
    // gets its fourth byte only later (here: never), so it stays byte by byte: 0xa1b2c3 << 8 =
    // 0xa1b2c300. r0 = the first + the second's upper half, worked by hand.
    let code = [
        ldx(SIZE_B, 4, 1, 0),
        lsh32(4, 24),
        ldx(SIZE_B, 2, 1, 1),
        lsh32(2, 16),
        or32(2, 4),
        ldx(SIZE_B, 4, 1, 2),
        lsh32(4, 8),
        or32(2, 4),
        ldx(SIZE_B, 4, 1, 4),
        lsh32(4, 24),
        ldx(SIZE_B, 6, 1, 5),
        lsh32(6, 16),
        or32(6, 4),
        ldx(SIZE_B, 4, 1, 6),
        lsh32(4, 8),
        or32(6, 4),
        ldx(SIZE_B, 3, 1, 3),
        or32(2, 3),
        mov64_reg(0, 6),
        alu64_imm(ALU_RSH, 0, 16),
        alu64_reg(ALU_ADD, 0, 2),
        exit(),
    ];
    let (r0, fused) = r0_and_listing(&code, " bswap ");
    assert_eq!((r0, fused), (0x1234_5678 + 0xa1b2, true));
    let (_, _, listing) = run(&code, Engine::Jit, &bytes());
    assert_eq!(listing.matches(" bswap ").count(), 1, "{listing}");
}

#[test]
fn other_work_between_pieces_that_would_see_them_keeps_the_tree_byte_by_byte() {
    // Each case: 0x1234 gathered as p[0] << 8 | p[1], with one instruction of other work between
    // the pieces; r0 worked by hand from the bytes (12 34 56 78 ...).
    let gather_with = |other: Insn, at: usize, tail: &[Insn]| {
        let mut code = vec![
            mov64_imm(5, 1),
            ldx(SIZE_B, 2, 1, 1),
            ldx(SIZE_B, 0, 1, 0),
            lsh32(0, 8),
            or32(0, 2),
        ];
        code.insert(at, other);
        code.extend_from_slice(tail);
        code.push(exit());
        code
    };
    // Reads the second byte's register: 0x1234 + 0x34.
    let code = gather_with(mov64_reg(5, 2), 3, &[alu64_reg(ALU_ADD, 0, 5)]);
    assert_eq!(r0_and_listing(&code, " rol "), (0x1268, false));
    // Reads the shifted first byte: 0x1234 + 0x1200.
    let code = gather_with(mov64_reg(5, 0), 4, &[alu64_reg(ALU_ADD, 0, 5)]);
    assert_eq!(r0_and_listing(&code, " rol "), (0x2434, false));
    // Overwrites the second byte's register before it is or-ed in: 0x1200 | 7.
    let code = gather_with(mov64_imm(2, 7), 3, &[]);
    assert_eq!(r0_and_listing(&code, " rol "), (0x1207, false));
    // Moves the base: the second load reads byte 3 (0x78): 0x7834.
    let code = gather_with(alu64_imm(ALU_ADD, 1, 3), 2, &[]);
    assert_eq!(r0_and_listing(&code, " rol "), (0x7834, false));
    // Stores over byte 1 after both loads: still 0x1234 (one load at the root would see 0x55).
    let code = gather_with(st(SIZE_B, 1, 1, 0x55), 3, &[]);
    assert_eq!(r0_and_listing(&code, " rol "), (0x1234, false));
    // Any store, even of another register to the stack (it might alias a base into the stack):
    // 0x1234 + 1 + 1.
    let code = gather_with(
        stx(SIZE_DW, 10, 5, -8),
        2,
        &[
            ldx(SIZE_DW, 5, 10, -8),
            alu64_reg(ALU_ADD, 0, 5),
            alu64_reg(ALU_ADD, 0, 5),
        ],
    );
    assert_eq!(r0_and_listing(&code, " rol "), (0x1236, false));
    // Arithmetic on another register (r5 = 1 + 6) and a reload from the stack (r7 = 1, stored
    // before the gather) between the pieces touch none of them: one load, 0x1234 + 7 + 1.
    let mut code = gather_with(alu64_imm(ALU_ADD, 5, 6), 3, &[alu64_reg(ALU_ADD, 0, 5)]);
    code.insert(0, stx(SIZE_DW, 10, 5, -8));
    code.insert(0, mov64_imm(5, 1));
    code.insert(6, ldx(SIZE_DW, 7, 10, -8));
    code.insert(code.len() - 1, alu64_reg(ALU_ADD, 0, 7));
    assert_eq!(r0_and_listing(&code, " rol "), (0x1234 + 7 + 1, true));
}

#[test]
fn a_piece_register_written_again_after_it_was_or_ed_in_is_other_work() {
    // 0x12345678 with r4 (the second byte's) set to 9 once or-ed in, and r4 read after: one
    // load, 0x12345678 + 9.
    let code = [
        ldx(SIZE_B, 3, 1, 0),
        lsh32(3, 24),
        ldx(SIZE_B, 4, 1, 1),
        lsh32(4, 16),
        or32(3, 4),
        mov64_imm(4, 9),
        ldx(SIZE_B, 2, 1, 2),
        lsh32(2, 8),
        or32(3, 2),
        ldx(SIZE_B, 2, 1, 3),
        or32(3, 2),
        mov64_reg(0, 3),
        alu64_reg(ALU_ADD, 0, 4),
        exit(),
    ];
    assert_eq!(r0_and_listing(&code, " bswap "), (0x1234_5678 + 9, true));
}

#[test]
fn bytes_or_ed_in_little_endian_order_are_one_load() {
    // p[0] | p[1] << 8: 0x3412, loaded as it is (no swap).
    let code = [
        ldx(SIZE_B, 2, 1, 0),
        ldx(SIZE_B, 3, 1, 1),
        lsh32(3, 8),
        or32(2, 3),
        mov64_reg(0, 2),
        exit(),
    ];
    let (r0, _) = r0_and_listing(&code, "");
    assert_eq!(r0, 0x3412);
    let (_, _, listing) = run(&code, Engine::Jit, &bytes());
    assert!(listing.contains("word ptr"), "{listing}");
}

#[test]
fn gathers_whose_pieces_are_needed_elsewhere_or_stored_over_run_byte_by_byte() {
    // The shifted first byte also read by `r4 = r0`: 0x1234 + 0x1200.
    let code = [
        ldx(SIZE_B, 2, 1, 1),
        ldx(SIZE_B, 0, 1, 0),
        lsh32(0, 8),
        mov64_reg(4, 0),
        or32(0, 2),
        alu64_reg(ALU_ADD, 0, 4),
        exit(),
    ];
    assert_eq!(r0_and_listing(&code, " rol "), (0x2434, false));
    // Byte 1 stored over between the loads: the first load saw 0x34, so 0x1234 (one load at
    // the last byte's place would see 0x55).
    let code = [
        ldx(SIZE_B, 2, 1, 1),
        st(SIZE_B, 1, 1, 0x55),
        ldx(SIZE_B, 0, 1, 0),
        lsh32(0, 8),
        or32(0, 2),
        exit(),
    ];
    assert_eq!(r0_and_listing(&code, " rol "), (0x1234, false));
    // The base moved between the loads: bytes 1 (0x34) and 4 (0xa1), not a pair, 0xa134.
    let code = [
        mov64_reg(3, 1),
        ldx(SIZE_B, 2, 3, 1),
        alu64_imm(ALU_ADD, 3, 4),
        ldx(SIZE_B, 0, 3, 0),
        lsh32(0, 8),
        or32(0, 2),
        exit(),
    ];
    assert_eq!(r0_and_listing(&code, " rol "), (0xa134, false));
    // A piece still live after the run (r2 returned in the upper half): byte by byte.
    let code = [
        ldx(SIZE_B, 2, 1, 1),
        ldx(SIZE_B, 0, 1, 0),
        lsh32(0, 8),
        or32(0, 2),
        alu64_imm(ALU_LSH, 2, 32),
        alu64_reg(ALU_OR, 0, 2),
        exit(),
    ];
    assert_eq!(r0_and_listing(&code, " rol "), (0x34_0000_1234, false));
}

/// xorshift64*, for the generated cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// A scratch register (r6 is a second base, r1 + 0..8).
    fn reg(&mut self) -> u8 {
        [0, 2, 3, 4, 5, 7, 8, 9][self.below(8) as usize]
    }
}

/// A gather's pieces in program order, and the register it ends in: `n` byte loads at `o..o +
/// n` (in a random order), each shifted by its byte's place (big- or little-endian, now and then
/// a wrong place), or-ed into the first one's register; registers mostly distinct, now and then
/// drawn at random (so pieces may clobber each other).
fn gather(rng: &mut Rng) -> (Vec<Insn>, u8) {
    let n = if rng.below(2) == 0 { 2 } else { 4 };
    // Through r1 or r6 (which other work moves within r1 + 0..8).
    let base = [1, 6][rng.below(2) as usize];
    let o = rng.below((SIZE - 8 - n + 1) as u64) as i16;
    let big = rng.below(2) == 0;
    let mut order: Vec<usize> = (0..n).collect();
    for k in (1..n).rev() {
        order.swap(k, rng.below(k as u64 + 1) as usize);
    }
    let mut pool = vec![0u8, 2, 3, 4, 5, 7, 8, 9];
    let regs: Vec<u8> = (0..n)
        .map(|_| match rng.below(8) {
            0 => rng.reg(),
            _ => pool.remove(rng.below(pool.len() as u64) as usize),
        })
        .collect();
    let mut out = Vec::new();
    for (j, &i) in order.iter().enumerate() {
        let mut shift = 8 * if big { n - 1 - i } else { i } as i32;
        if rng.below(16) == 0 {
            shift = 8 * rng.below(4) as i32;
        }
        out.push(ldx(SIZE_B, regs[j], base, o + i as i16));
        if shift > 0 {
            out.push(match rng.below(2) {
                0 => lsh32(regs[j], shift),
                _ => alu64_imm(ALU_LSH, regs[j], shift),
            });
        }
    }
    for &r in &regs[1..] {
        out.push(match rng.below(2) {
            0 => or32(regs[0], r),
            _ => alu64_reg(ALU_OR, regs[0], r),
        });
    }
    (out, regs[0])
}

/// Other work: moves, arithmetic, byte loads, stores into the data and the stack, reloads,
/// forward jumps over one instruction (which end runs), and moves of the second base.
fn filler(rng: &mut Rng) -> Vec<Insn> {
    let (d, s) = (rng.reg(), rng.reg());
    let o = rng.below(SIZE as u64) as i16;
    match rng.below(10) {
        9 => vec![mov64_reg(6, 1), alu64_imm(ALU_ADD, 6, rng.below(8) as i32)],
        0 => vec![mov64_reg(d, s)],
        1 => vec![alu64_imm(ALU_ADD, d, rng.below(100) as i32)],
        2 => vec![alu32_reg(ALU_XOR, d, s)],
        3 => vec![ldx(SIZE_B, d, 1, o)],
        4 => vec![st(SIZE_B, 1, o, rng.below(256) as i32)],
        5 => vec![stx(SIZE_DW, 10, d, -8)],
        6 => vec![ldx(SIZE_DW, d, 10, -8)],
        7 => vec![alu64_reg(ALU_OR, d, s)],
        _ => vec![
            i(CLASS_JMP | JMP_JGT, d, 0, 1, rng.below(64) as i32),
            alu64_imm(ALU_ADD, s, 1),
        ],
    }
}

/// A program of two gathers and some other work merged at random (each keeping its order, a
/// gather now and then whole),
/// every register set first; the gathers' registers and one more folded into r0 at the end
/// (folding in every register would keep every piece live, and no gather would be fused).
fn generated(rng: &mut Rng) -> Vec<Insn> {
    let mut code: Vec<Insn> = [0u8, 2, 3, 4, 5, 7, 8, 9]
        .iter()
        .map(|&r| mov64_imm(r, r as i32 * 3))
        .collect();
    code.push(mov64_reg(6, 1));
    code.push(stx(SIZE_DW, 10, 2, -8));
    let ((first, r1), (second, r2)) = (gather(rng), gather(rng));
    let mut streams = vec![first, second];
    let mut other = Vec::new();
    for _ in 0..rng.below(8) {
        other.extend(filler(rng));
    }
    streams.push(other);
    let mut at = vec![0; streams.len()];
    let whole = [rng.below(2) == 0, rng.below(2) == 0];
    loop {
        let left: Vec<usize> = (0..streams.len())
            .filter(|&k| at[k] < streams[k].len())
            .collect();
        if left.is_empty() {
            break;
        }
        let k = left[rng.below(left.len() as u64) as usize];
        // A gather comes whole half the time (only consecutive ones are fused); a jump and the
        // instruction it jumps over stay together.
        if k < 2 && whole[k] {
            code.extend_from_slice(&streams[k]);
            at[k] = streams[k].len();
            continue;
        }
        let insn = streams[k][at[k]];
        code.push(insn);
        at[k] += 1;
        if class(insn.opcode) == CLASS_JMP {
            code.push(streams[k][at[k]]);
            at[k] += 1;
        }
    }
    for r in [r1, r2, rng.reg()] {
        code.push(alu64_imm(ALU_MUL, 0, 31));
        code.push(alu64_reg(ALU_ADD, 0, r));
    }
    code.push(exit());
    code
}

#[test]
fn generated_gathers_give_the_interpreters_results() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let cases = 3000;
    let mut fused = 0;
    for case in 0..cases {
        let code = generated(&mut rng);
        let data: Vec<u8> = (0..SIZE).map(|_| rng.below(256) as u8).collect();
        let (r0, out, listing) = run(&code, Engine::Jit, &data);
        let (want_r0, want_out, _) = run(&code, Engine::Interpreter, &data);
        assert_eq!(
            (r0, &out),
            (want_r0, &want_out),
            "case {case}: {code:?}\n{listing}"
        );
        fused += (listing.contains(" bswap ") || listing.contains(" rol ")) as u32;
    }
    // The generator makes gathers often enough that a good share of the cases has one fused
    // (a big-endian one: a swap in the code; little-endian ones leave no trace to count).
    assert!(fused > cases / 10, "{fused} of {cases} cases fused");
    eprintln!("{fused} of {cases} cases had a big-endian gather fused");
}
