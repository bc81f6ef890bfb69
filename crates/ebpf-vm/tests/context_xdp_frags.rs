//! XDP inputs as Linux 6.18's `BPF_PROG_TEST_RUN` takes them: fewer than 14 packet bytes are
//! refused (EINVAL); the linear part (`data` .. `data_end`) holds at most 3,520 bytes (or ends at
//! the context's `data_end`) and the rest goes into fragments of up to 4,096 bytes (at most 17),
//! which `bpf_xdp_get_buff_len`, `bpf_xdp_load_bytes`, `bpf_xdp_store_bytes`,
//! `bpf_xdp_adjust_tail` see and the run returns after the linear part. Both engines.
//!
//! Every expected value here was observed on Linux 6.18 with `bpftool prog run` of clang-built
//! programs making the same calls on the same inputs (input byte i = (7i + 3) mod 256, with the
//! delta or offset the program reads in bytes 0-3 or 4-7).

mod context_support;

use context_support::*;
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::Insn;
use ebpf_vm::{ContextInput, ContextOutput, Engine, Program, ProgramType, RunInput, TrapKind};

const TAIL: i32 = 65;
const GET_BUFF_LEN: i32 = 188;
const LOAD_BYTES: i32 = 189;
const STORE_BYTES: i32 = 190;

const ENGINES: [Engine; 2] = [Engine::Interpreter, Engine::Jit];

fn xdp(insns: &[Insn], engine: Engine) -> Program {
    let p = load_with(
        insns,
        ebpf_vm::ProgramOptions {
            engine,
            ..options(ProgramType::Xdp)
        },
    )
    .unwrap();
    assert_eq!(p.engine(), engine);
    p
}

/// A run's r0 and outputs, or the trap's kind.
fn run(p: &Program, data: &[u8], ctx: Option<&[u8]>) -> Result<(u64, ContextOutput), TrapKind> {
    let mut data = data.to_vec();
    p.run_with_context(
        &mut RunInput {
            data: &mut data,
            budget: None,
        },
        &ContextInput {
            ctx,
            ..ContextInput::default()
        },
    )
    .map(|(out, cx)| (out.r0, cx))
    .map_err(|t| t.kind)
}

/// The probes' input: byte i = 7i + 3, then `a` in bytes 0-3 and `b` in bytes 4-7.
fn input(len: usize, a: i32, b: u32) -> Vec<u8> {
    let mut v: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
    if len >= 8 {
        v[0..4].copy_from_slice(&a.to_le_bytes());
        v[4..8].copy_from_slice(&b.to_le_bytes());
    }
    v
}

/// r0 = (data_end - data) | bpf_xdp_get_buff_len(ctx) << 16.
fn lengths() -> Vec<Insn> {
    prog![
        movr(6, 1),
        ldx(SIZE_W, 2, 6, 0),
        ldx(SIZE_W, 7, 6, 4),
        subr(7, 2),
        movr(1, 6),
        call(GET_BUFF_LEN),
        lsh(0, 16),
        orr(0, 7),
        exit(),
    ]
}

fn xdp_md(data: u32, data_end: u32) -> Vec<u8> {
    let mut c = vec![0u8; 24];
    put32(&mut c, 0, data);
    put32(&mut c, 4, data_end);
    c
}

#[test]
fn short_inputs_are_refused_and_long_ones_continue_in_fragments() {
    for engine in ENGINES {
        let p = xdp(&lengths(), engine);
        let lens = |data: &[u8], ctx: Option<&[u8]>| {
            run(&p, data, ctx).map(|(r0, _)| (r0 & 0xffff, r0 >> 16))
        };
        for n in [0, 1, 13] {
            assert_eq!(
                lens(&input(n, 0, 0), None),
                Err(TrapKind::InvalidInput),
                "{engine:?} {n}"
            );
        }
        for (n, linear) in [
            (14, 14),
            (15, 15),
            (3520, 3520),
            (3521, 3520),
            (20000, 3520),
            (73152, 3520),
        ] {
            assert_eq!(
                lens(&input(n, 0, 0), None),
                Ok((linear, n as u64)),
                "{engine:?} {n}"
            );
        }
        // 3,520 linear bytes and 17 fragments of 4,096 at most (the kernel: ENOMEM beyond).
        assert_eq!(lens(&input(73153, 0, 0), None), Err(TrapKind::InvalidInput));
        // The packet comes back whole, fragments after the linear part.
        let long = input(20000, 0, 0);
        let (_, cx) = run(&p, &long, None).unwrap();
        assert_eq!(cx.packet.as_deref(), Some(&long[..]));
        // data_end = 3520 in the context handed back: it describes the linear part.
        assert_eq!(get32(cx.ctx.as_deref().unwrap(), 4), 3520);

        // With a context: (metadata, data_end, input length) -> (linear, total, data_end out).
        for (meta, end, n, linear, total, end_out) in [
            (0, 100, 200, 100, 200, 100),
            (0, 14, 200, 14, 200, 14),
            (0, 13, 200, 13, 200, 13),
            (8, 100, 200, 92, 192, 100),
            (8, 21, 200, 13, 192, 21),
            (8, 22, 22, 14, 14, 22),
            (216, 300, 300, 84, 84, 300),
            (0, 3600, 4000, 3520, 4000, 3520),
            (8, 4000, 4000, 3520, 3992, 3528),
        ] {
            let c = xdp_md(meta, end);
            let (r0, cx) = run(&p, &input(n as usize, 0, 0), Some(&c)).unwrap();
            assert_eq!(
                (r0 & 0xffff, r0 >> 16),
                (linear, total),
                "{engine:?} {meta}/{end}/{n}"
            );
            let out = cx.ctx.unwrap();
            assert_eq!((get32(&out, 0), get32(&out, 4)), (meta, end_out));
            assert_eq!(cx.packet.unwrap(), input(n as usize, 0, 0)[meta as usize..]);
        }
        // The packet after the metadata needs 14 bytes; metadata at most 216 bytes.
        assert_eq!(
            lens(&input(21, 0, 0), Some(&xdp_md(8, 21))),
            Err(TrapKind::InvalidInput)
        );
        assert_eq!(
            lens(&input(300, 0, 0), Some(&xdp_md(220, 300))),
            Err(TrapKind::InvalidInput)
        );
    }
}

#[test]
fn adjust_tail_grows_the_last_fragment_and_shrinks_through_the_fragments() {
    // delta = *(s32 *)data; r0 = (adjust_tail(ctx, delta) & 0xff) << 24 | get_buff_len(ctx)
    let insns = prog![
        movr(6, 1),
        ldx(SIZE_W, 2, 6, 0),
        ldx(SIZE_W, 2, 2, 0),
        lsh(2, 32),
        Insn::new(CLASS_ALU64 | ALU_ARSH | SRC_K, 2, 0, 0, 32),
        movr(1, 6),
        call(TAIL),
        Insn::new(CLASS_ALU64 | ALU_AND | SRC_K, 0, 0, 0, 0xff),
        lsh(0, 24),
        movr(7, 0),
        movr(1, 6),
        call(GET_BUFF_LEN),
        orr(0, 7),
        exit(),
    ];
    const EINVAL: u64 = 0xea;
    for engine in ENGINES {
        let p = xdp(&insns, engine);
        for (n, delta, ret, total) in [
            (100, 10, 0, 110),
            (100, -86, 0, 14),
            (100, -87, EINVAL, 100),
            (3520, 1, EINVAL, 3520),
            (3520, -3506, 0, 14),
            // 4000: 3520 linear + a 480-byte fragment whose page has 3616 bytes of room.
            (4000, 100, 0, 4100),
            (4000, 3616, 0, 7616),
            (4000, 3617, EINVAL, 4000),
            (4000, -480, 0, 3520),
            (4000, -481, 0, 3519),
            (4000, -3986, 0, 14),
            (4000, -3987, EINVAL, 4000),
            // 8000: fragments of 4096 and 384 bytes.
            (8000, -4000, 0, 4000),
            (8000, -4480, 0, 3520),
            (8000, -4481, 0, 3519),
            (8000, 100, 0, 8100),
            (3521, -1, 0, 3520),
            (3521, 4095, 0, 7616),
            (3521, 4096, EINVAL, 3521),
        ] {
            let data = input(n, delta, 0);
            let (r0, cx) = run(&p, &data, None).unwrap();
            assert_eq!(
                (r0 >> 24, r0 & 0xff_ffff),
                (ret, total as u64),
                "{engine:?} {n} {delta}"
            );
            // Shrinking cuts the input; growing appends zeros.
            let mut want = data.clone();
            want.resize(total, 0);
            assert_eq!(cx.packet.unwrap(), want, "{engine:?} {n} {delta}");
        }
    }
}

#[test]
fn load_and_store_bytes_reach_into_the_fragments() {
    // off = *(u32 *)(data + 4); r = load_bytes(ctx, off, r10 - 8, 4);
    // r0 = r ? 0x7f000000 | (r & 0xff) : the loaded word
    let load = prog![
        movr(6, 1),
        ldx(SIZE_W, 2, 6, 0),
        ldx(SIZE_W, 2, 2, 4),
        st(SIZE_W, 10, -8, 0),
        movr(1, 6),
        fp_plus(3, -8),
        mov(4, 4),
        call(LOAD_BYTES),
        ji(JMP_JEQ, 0, 0, 3),
        Insn::new(CLASS_ALU64 | ALU_AND | SRC_K, 0, 0, 0, 0xff),
        Insn::new(CLASS_ALU64 | ALU_OR | SRC_K, 0, 0, 0, 0x7f00_0000),
        exit(),
        ldx(SIZE_W, 0, 10, -8),
        exit(),
    ];
    // *(u32 *)(r10 - 8) = 0xddccbbaa; r0 = -store_bytes(ctx, off, r10 - 8, 4)
    let store = prog![
        movr(6, 1),
        ldx(SIZE_W, 2, 6, 0),
        ldx(SIZE_W, 2, 2, 4),
        lddw(3, 0xddcc_bbaa),
        stx(SIZE_W, 10, 3, -8),
        movr(1, 6),
        fp_plus(3, -8),
        mov(4, 4),
        call(STORE_BYTES),
        Insn::new(CLASS_ALU64 | ALU_NEG | SRC_K, 0, 0, 0, 0),
        exit(),
    ];
    for engine in ENGINES {
        let (pl, ps) = (xdp(&load, engine), xdp(&store, engine));
        for (n, off, err) in [
            (4000, 3516, 0),
            (4000, 3518, 0),
            (4000, 3520, 0),
            (4000, 3996, 0),
            (4000, 3997, 22),
            (8000, 7615, 0),
            (8000, 7614, 0),
            (100, 96, 0),
            (100, 97, 22),
            (100, 65536, 14),
            (100, 65535, 22),
        ] {
            let data = input(n, 0, off);
            let (r0, _) = run(&pl, &data, None).unwrap();
            if err == 0 {
                let o = off as usize;
                let want = u32::from_le_bytes(data[o..o + 4].try_into().unwrap());
                assert_eq!(r0, want as u64, "{engine:?} load {n} {off}");
            } else {
                assert_eq!(r0, 0x7f00_0000 | (256 - err), "{engine:?} load {n} {off}");
            }
            let (r0, cx) = run(&ps, &data, None).unwrap();
            assert_eq!(r0, err, "{engine:?} store {n} {off}");
            let mut want = data.clone();
            if err == 0 {
                want[off as usize..off as usize + 4].copy_from_slice(&0xddcc_bbaau32.to_le_bytes());
            }
            assert_eq!(cx.packet.unwrap(), want, "{engine:?} store {n} {off}");
        }
    }
}
