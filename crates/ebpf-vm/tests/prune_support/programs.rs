//! Loop and branch programs for the pruning tests (`tests/verifier_prune.rs`) and the
//! verification-time benchmark (`benches/verify.rs`), as raw instruction slots (so that they do
//! not depend on our assembler).
#![allow(dead_code)]

use ebpf_vm::isa::Insn;

pub fn i(opcode: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn::new(opcode, dst, src, off, imm)
}
pub fn mov(dst: u8, imm: i32) -> Insn {
    i(0xb7, dst, 0, 0, imm)
}
pub fn mov_reg(dst: u8, src: u8) -> Insn {
    i(0xbf, dst, src, 0, 0)
}
pub fn add(dst: u8, imm: i32) -> Insn {
    i(0x07, dst, 0, 0, imm)
}
pub fn add_reg(dst: u8, src: u8) -> Insn {
    i(0x0f, dst, src, 0, 0)
}
pub fn ja(off: i16) -> Insn {
    i(0x05, 0, 0, off, 0)
}
pub fn exit() -> Insn {
    i(0x95, 0, 0, 0, 0)
}
/// `r{dst} = *(u32 *)(r{src} + off)`.
pub fn ldx_w(dst: u8, src: u8, off: i16) -> Insn {
    i(0x61, dst, src, off, 0)
}
/// `lddw dst, map 0`.
pub fn ld_map(dst: u8) -> [Insn; 2] {
    [i(0x18, dst, 1, 0, 0), i(0, 0, 0, 0, 0)]
}

/// `r0 = 0; for (r1 = 0; r1 < n; r1++) r0 += r1; return r0`.
pub fn counted_loop(n: i32) -> Vec<Insn> {
    vec![
        mov(0, 0),
        mov(1, 0),
        add_reg(0, 1),
        add(1, 1),
        i(0xa5, 1, 0, -3, n), // if r1 < n goto -3
        exit(),
    ]
}

/// `n = skb->len; if (n > 64) return 0; while (n) n--; return 0`: the counter is bounded by
/// the check, and every iteration's way out reaches the exit in a state already seen.
pub fn bounded_while() -> Vec<Insn> {
    vec![
        mov(0, 0),
        ldx_w(2, 1, 0),
        i(0x25, 2, 0, 3, 64), // if r2 > 64 goto exit
        i(0x15, 2, 0, 2, 0),  // loop: if r2 == 0 goto exit
        add(2, -1),
        ja(-3),
        exit(),
    ]
}

/// XDP: sum the first 8 bytes of the packet, each read after its own check against
/// `data_end`.
pub fn packet_loop() -> Vec<Insn> {
    vec![
        ldx_w(2, 1, 0), // data
        ldx_w(3, 1, 4), // data_end
        mov(0, 0),
        mov(4, 0),
        mov_reg(5, 2), // loop: r5 = data + i
        add_reg(5, 4),
        mov_reg(6, 5),
        add(6, 1),
        i(0x2d, 6, 3, 5, 0), // if r6 > data_end goto out
        i(0x71, 7, 5, 0, 0), // r7 = *(u8 *)(r5 + 0)
        add_reg(0, 7),
        add(4, 1),
        i(0xa5, 4, 0, -9, 8), // if r4 < 8 goto loop
        mov(0, 2),            // out: XDP_PASS
        exit(),
    ]
}

/// `n` diamonds on bits of `skb->len`, each writing a scratch register that is dead after it:
/// without liveness the paths would double at each diamond.
pub fn dead_diamonds(n: usize) -> Vec<Insn> {
    let mut p = vec![ldx_w(6, 1, 0), mov(0, 0)];
    for k in 0..n {
        p.push(mov_reg(2, 6));
        p.push(i(0x57, 2, 0, 0, 1 << (k % 31))); // r2 &= bit
        p.push(i(0x15, 2, 0, 2, 0)); // if r2 == 0 goto +2
        p.push(mov(3, k as i32));
        p.push(ja(1));
        p.push(mov(3, -(k as i32)));
    }
    p.push(exit());
    p
}

/// `n` diamonds, each setting r7 to one of two numbers, returned at the end: the kernel never
/// needs r7's value exactly (no pointer, size or decided branch uses it), so it is not precise
/// and the ways through each diamond meet in one state.
pub fn live_diamonds(n: usize) -> Vec<Insn> {
    let mut p = vec![ldx_w(6, 1, 0), mov(7, 0)];
    for k in 0..n {
        p.push(mov_reg(2, 6));
        p.push(i(0x57, 2, 0, 0, 1 << (k % 31))); // r2 &= bit
        p.push(i(0x15, 2, 0, 2, 0)); // if r2 == 0 goto +2
        p.push(add(7, 1));
        p.push(ja(1));
        p.push(add(7, 2));
    }
    p.push(mov_reg(0, 7));
    p.push(exit());
    p
}
