//! Programs clang-19 built for the kernel (tests/context_support/fixtures/packets.c, rebuilt by
//! build.sh) run unchanged: their 32-bit loads of xdp_md/__sk_buff pointer fields are rewritten at
//! load time. Every expected verdict and output packet below was observed on Linux 6.18 running
//! the same object with `bpftool prog run` (`skb_fields` as a tc program, the kernel type that
//! may read `skb->data`).

mod context_support;

use context_support::*;
use ebpf_vm::ProgramType;

const XDP_UDP: &[u8] = include_bytes!("context_support/fixtures/xdp_udp.bin");
const XDP_TAG: &[u8] = include_bytes!("context_support/fixtures/xdp_tag.bin");
const SKB_FIELDS: &[u8] = include_bytes!("context_support/fixtures/skb_fields.bin");

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Ethernet 02:00:00:00:00:02 -> 02:00:00:00:00:01, IPv4 10.0.0.1 -> 10.0.0.2, UDP 1234 -> 53,
/// payload "abcd".
const UDP53: &str =
    "02000000000102000000000208004500002000000000401100000a0000010a00000204d20035000c000061626364";
const UDP7: &str =
    "02000000000102000000000208004500002000000000401100000a0000010a00000204d20007000c000061626364";
const TCP: &str =
    "02000000000102000000000208004500002000000000400600000a0000010a000002000000000000000000000000";
const ARP: &str =
    "020000000001020000000002080600000000000000000000000000000000000000000000000000000000";
const TRUNC: &str = "020000000001020000000002080000000000000000000000";

fn program(code: &[u8], t: ProgramType) -> ebpf_vm::Program {
    ebpf_vm::Program::load(code, options(t)).unwrap()
}

#[test]
fn xdp_udp_verdicts_and_packets_match_the_kernel() {
    let p = program(XDP_UDP, ProgramType::Xdp);
    // (input, XDP action, output packet)
    let swapped = "02000000000202000000000108004500002000000000401100000a0000010a00000204d20007000c000061626364";
    for (input, verdict, output) in [
        (UDP53, 1, UDP53),
        (UDP7, 3, swapped),
        (TCP, 2, TCP),
        (ARP, 2, ARP),
        (TRUNC, 0, TRUNC),
    ] {
        let mut data = hex(input);
        let (out, cx) = run_ctx(&p, &mut data, None).unwrap();
        assert_eq!(out.r0, verdict, "{input}");
        assert_eq!(cx.packet.unwrap(), hex(output), "{input}");
    }
}

#[test]
fn xdp_tag_moves_head_and_meta_like_the_kernel() {
    let p = program(XDP_TAG, ProgramType::Xdp);
    let (out, cx) = run_ctx(&p, &mut hex(UDP53), None).unwrap();
    assert_eq!(out.r0, 2);
    // The kernel's data_out is metadata followed by the packet.
    let mut got = cx.meta.unwrap();
    got.extend(cx.packet.unwrap());
    assert_eq!(got, hex(&format!("2e00000000000000c0ffee01{UDP53}")));
}

#[test]
fn skb_fields_reads_len_protocol_and_data_like_a_tc_program_in_the_kernel() {
    let p = program(SKB_FIELDS, ProgramType::SocketFilter);
    assert_eq!(r0(&p, &mut hex(UDP53), None), 3_032_386);
    assert_eq!(r0(&p, &mut hex(ARP), None), 2_752_548);
}
