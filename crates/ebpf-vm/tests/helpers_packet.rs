//! Packet helpers: `bpf_csum_diff` (28), `bpf_skb_load_bytes` (26) and
//! `bpf_perf_event_output` (25). The csum_diff results were observed on Linux 6.18: clang-built
//! XDP programs making the same calls with the same words, run with `bpftool prog run` (6.13+
//! kernels fold the result to 16 bits; the hand derivation of the first case is in the test).

mod context_support;

use std::sync::{Arc, Mutex};

use context_support::*;
use ebpf_vm::helpers::output::{PerfRecord, PerfSink};
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::Insn;
use ebpf_vm::{Engine, ProgramOptions, ProgramType, TrapKind};

const FROM: [u32; 3] = [0x0102_0304, 0xa0b0_c0d0, 0xffff_ffff];
const TO: [u32; 3] = [0x1122_3344, 0x5566_7788, 0x0000_0001];

fn words(w: &[u32]) -> Vec<u8> {
    w.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// csum_diff(from or NULL, from_size, to or NULL, to_size, seed) in an XDP program, with FROM
/// at r10 - 16 and TO at r10 - 32 (`to_is_from`: pass FROM as `to` as well).
fn csum(from: bool, from_size: i32, to: bool, to_size: i32, seed: u32, to_is_from: bool) -> u64 {
    let mut v = stack_bytes(&words(&FROM), -16);
    v.extend(stack_bytes(&words(&TO), -32));
    v.extend(if from {
        fp_plus(1, -16)
    } else {
        [mov(1, 0), mov(0, 0)]
    });
    v.push(mov(2, from_size));
    v.extend(match (to, to_is_from) {
        (true, true) => fp_plus(3, -16),
        (true, false) => fp_plus(3, -32),
        _ => [mov(3, 0), mov(0, 0)],
    });
    v.push(mov(4, to_size));
    v.extend(lddw(5, seed as u64));
    v.extend(prog![call(28), exit()]);
    let p = load(&v, ProgramType::Xdp).unwrap();
    r0(&p, &mut [0u8; 60], None)
}

#[test]
fn csum_diff_matches_linux() {
    // By hand: csum(to) = 0x11223344 + 0x55667788 + 1 = 0x6688aacd; csum(from) =
    // 0x01020304 + 0xa0b0c0d0 + 0xffffffff = 0x1_a1b2_c3d3 -> 0xa1b2c3d4; to - from =
    // 0x6688aacd + ~0xa1b2c3d4 = 0xc4d5e6f8; folded: 0xc4d5 + 0xe6f8 = 0x1abcd -> 0xabce.
    assert_eq!(csum(true, 12, true, 12, 0, false), 0xabce);
    assert_eq!(csum(false, 0, true, 12, 0xffff_fff0, false), 0x1147);
    assert_eq!(csum(true, 12, false, 0, 0x1234_5678, false), 0x0325);
    assert_eq!(csum(true, 12, true, 12, 0, true), 0xffff);
    assert_eq!(csum(true, 10, true, 12, 0, true), 0xffff);
    // Nothing but zeros: 0.
    assert_eq!(csum(false, 0, false, 0, 0, false), 0);
}

#[test]
fn skb_load_bytes_copies_or_zeroes_with_efault() {
    // r0 = skb_load_bytes(skb, off, r10 - 8, 2) << 32 | *(u16 *)(r10 - 8), buffer preset 0xffff.
    let prog_for = |off: i32| {
        prog![
            st(SIZE_DW, 10, -8, 0xffff),
            fp_plus(3, -8),
            mov(2, off),
            mov(4, 2),
            call(26),
            lsh(0, 32),
            ldx(SIZE_H, 2, 10, -8),
            orr(0, 2),
            exit(),
        ]
    };
    let mut pkt = vec![0u8; 60];
    pkt[12] = 0x08;
    pkt[13] = 0x06;
    let p = load(&prog_for(12), ProgramType::SocketFilter).unwrap();
    assert_eq!(r0(&p, &mut pkt, None), 0x0608);
    let p = load(&prog_for(59), ProgramType::SocketFilter).unwrap();
    assert_eq!(r0(&p, &mut pkt, None), (-14i64 as u64) << 32);
    // The context argument must be the context.
    let mut bad = prog_for(0);
    bad.insert(0, mov(1, 0));
    let p = load(&bad, ProgramType::SocketFilter).unwrap();
    assert_eq!(
        run_ctx(&p, &mut pkt, None).unwrap_err().kind,
        TrapKind::HelperError
    );
}

/// perf_event_output(ctx, 0x1234, flags, r10 - 8 = [1, 2, 3, 4], 4)
fn perf_prog(flags: u64) -> Vec<Insn> {
    prog![
        st(SIZE_W, 10, -8, 0x0403_0201),
        mov(2, 0x1234),
        lddw(3, flags),
        fp_plus(4, -8),
        mov(5, 4),
        call(25),
        exit(),
    ]
}

fn with_sink(insns: &[Insn], t: ProgramType) -> (ebpf_vm::Program, Arc<Mutex<Vec<PerfRecord>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    let p = load_with(
        insns,
        ProgramOptions {
            perf_sink: Some(PerfSink::new(move |r| g.lock().unwrap().push(r.clone()))),
            ..options(t)
        },
    )
    .unwrap();
    (p, got)
}

#[test]
fn perf_event_output_delivers_records_with_packet_bytes() {
    const CURRENT_CPU: u64 = 0xffff_ffff;
    let (p, got) = with_sink(&perf_prog(CURRENT_CPU | 3 << 32), ProgramType::Xdp);
    // An Ethernet header's worth at least: the kernel's XDP test run refuses shorter packets.
    let mut frame = vec![9u8, 8, 7, 6, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(r0(&p, &mut frame, None), 0);
    assert_eq!(
        got.lock().unwrap().as_slice(),
        &[PerfRecord {
            map: 0x1234,
            index: 0,
            data: vec![1, 2, 3, 4, 9, 8, 7]
        }]
    );
    // An explicit index; more packet bytes than the packet has: -EFAULT.
    let mut pkt = vec![9u8, 8, 7, 6, 5];
    let (p, got) = with_sink(&perf_prog(5), ProgramType::SocketFilter);
    assert_eq!(r0(&p, &mut pkt, None), 0);
    assert_eq!(got.lock().unwrap()[0].index, 5);
    let (p, _) = with_sink(&perf_prog(6 << 32), ProgramType::SocketFilter);
    assert_eq!(r0(&p, &mut pkt, None), (-14i64) as u64);
    // Tracing programs have no packet to append: those bits are -EINVAL.
    let (p, _) = with_sink(&perf_prog(1 << 32), ProgramType::Tracing);
    assert_eq!(r0(&p, &mut [], Some(&[0u8; 8])), (-22i64) as u64);
    // No sink: -ENOENT, as for an empty perf event array slot.
    let p = load(&perf_prog(0), ProgramType::Xdp).unwrap();
    assert_eq!(r0(&p, &mut frame, None), (-2i64) as u64);
}

/// XDP packet bytes appended to a perf record come from the linear part and the fragments alike,
/// bounded by `xdp_get_buff_len` (the kernel's `bpf_xdp_event_output` and `bpf_xdp_copy`): a
/// 4,000-byte packet has 3,520 linear bytes and a 480-byte fragment. Both engines.
#[test]
fn perf_event_output_appends_xdp_bytes_from_the_fragments_too() {
    const CURRENT_CPU: u64 = 0xffff_ffff;
    let pkt: Vec<u8> = (0..4000u32).map(|i| (i * 7 + 3) as u8).collect();
    for engine in [Engine::Interpreter, Engine::Jit] {
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        let load = |flags: u64| {
            let g = g.clone();
            load_with(
                &perf_prog(flags),
                ProgramOptions {
                    perf_sink: Some(PerfSink::new(move |r| g.lock().unwrap().push(r.clone()))),
                    engine,
                    ..options(ProgramType::Xdp)
                },
            )
            .unwrap()
        };
        let p = load(CURRENT_CPU | 4000 << 32);
        assert_eq!(r0(&p, &mut pkt.clone(), None), 0);
        let mut want = vec![1, 2, 3, 4];
        want.extend_from_slice(&pkt);
        assert_eq!(got.lock().unwrap()[0].data, want, "{engine:?}");
        let p = load(CURRENT_CPU | 4001 << 32);
        assert_eq!(
            r0(&p, &mut pkt.clone(), None),
            (-14i64) as u64,
            "{engine:?}"
        );
    }
}

#[test]
fn perf_event_output_of_a_tc_program_appends_the_packet_as_a_helper_left_it() {
    // bpf_skb_change_head(skb, 2, 0) puts two zero bytes in front; then the record appends the
    // first 3 packet bytes: 0, 0 and the old first byte.
    let mut insns = prog![movr(6, 1), mov(2, 2), mov(3, 0), call(43), movr(1, 6)];
    insns.extend(perf_prog(3 << 32));
    let (p, got) = with_sink(&insns, ProgramType::Tc);
    let mut frame = vec![9u8, 8, 7, 6, 5, 4, 0, 0, 0, 0, 0, 0, 8, 0];
    assert_eq!(r0(&p, &mut frame, None), 0);
    assert_eq!(got.lock().unwrap()[0].data, vec![1, 2, 3, 4, 0, 0, 9]);
}
