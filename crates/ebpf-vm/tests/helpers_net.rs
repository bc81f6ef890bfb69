//! `bpf_check_mtu`, `bpf_fib_lookup` (`context::net`) and tc's `bpf_redirect_neigh`,
//! `bpf_redirect_peer`, `bpf_clone_redirect` (`context::redirect`).
//!
//! Oracles: `kernel_oracle/check_mtu_6.18.txt` and `fib_lookup_6.18.txt` hold the kernel's
//! `BPF_PROG_TEST_RUN` results for `kernel_oracle/check_mtu.c` and `fib_lookup.c` (XDP and tc)
//! on a host whose interfaces and routes the test gives the runs here as their network. The
//! host forwards nothing, so the kernel could only be asked about the argument checks and
//! `FWD_DISABLED`; the lookups past them are worked by hand from net/core/filter.c
//! (`bpf_ipv4_fib_lookup`, `bpf_fib_set_fwd_params`). The tc redirect helpers' return values are
//! the kernel's test runs of `kernel_oracle/tc_redirects.c` (results in its closing comment;
//! `bpf_clone_redirect` only where it fails, flags 2 or ifindex 9: a successful one would send a
//! packet).

mod context_support;

use std::sync::Arc;

use context_support::*;
use ebpf_vm::context::net::{Interface, Network, Route, RouteKind, LOOPBACK};
use ebpf_vm::context::redirect::Via;
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::Insn;
use ebpf_vm::{ContextInput, ContextOutput, Mode, Program, ProgramOptions, ProgramType, RunInput};

const XDP: ProgramType = ProgramType::Xdp;
const TC: ProgramType = ProgramType::Tc;

fn arsh(dst: u8, imm: i32) -> Insn {
    Insn::new(CLASS_ALU64 | ALU_ARSH | SRC_K, dst, 0, 0, imm)
}

fn and(dst: u8, imm: i32) -> Insn {
    Insn::new(CLASS_ALU64 | ALU_AND | SRC_K, dst, 0, 0, imm)
}

/// The data and data_end offsets of the type's context.
fn data_offsets(t: ProgramType) -> (i16, i16) {
    if t == XDP {
        (0, 4)
    } else {
        (76, 80)
    }
}

/// `kernel_oracle/check_mtu.c` by hand.
fn check_mtu_prog(t: ProgramType) -> Vec<Insn> {
    let (data, end) = data_offsets(t);
    prog![
        movr(6, 1),
        ldx(SIZE_W, 2, 6, data),
        ldx(SIZE_W, 3, 6, end),
        movr(4, 2),
        add(4, 19),
        mov(0, 0xff),
        jr(JMP_JGT, 4, 3, 1),
        ja(1),
        exit(),
        movr(7, 2),
        ldx(SIZE_B, 5, 7, 15),
        ldx(SIZE_B, 8, 7, 16),
        lsh(8, 8),
        orr(5, 8),
        stx(SIZE_W, 10, 5, -8),
        ldx(SIZE_B, 2, 7, 14),
        fp_plus(3, -8),
        ldx(SIZE_B, 4, 7, 17),
        lsh(4, 56),
        arsh(4, 56),
        ldx(SIZE_B, 5, 7, 18),
        movr(1, 6),
        call(163),
        and(0, 0xff),
        ldx(SIZE_W, 1, 10, -8),
        lsh(1, 8),
        orr(0, 1),
        exit(),
    ]
}

/// `kernel_oracle/fib_lookup.c` by hand: params at r10-64, copied to packet bytes 64..128.
fn fib_prog(t: ProgramType) -> Vec<Insn> {
    let (data, end) = data_offsets(t);
    let mut v = prog![
        movr(6, 1),
        ldx(SIZE_W, 7, 6, data),
        ldx(SIZE_W, 3, 6, end),
        movr(4, 7),
        add(4, 128),
        mov(0, 0xff),
        jr(JMP_JGT, 4, 3, 1),
        ja(1),
        exit(),
    ];
    for off in (-64..0).step_by(8) {
        v.push(st(SIZE_DW, 10, off as i16, 0));
    }
    v.extend(prog![
        ldx(SIZE_B, 2, 7, 14),
        stx(SIZE_B, 10, 2, -64),
        ldx(SIZE_B, 2, 7, 16),
        stx(SIZE_W, 10, 2, -56),
        ldx(SIZE_H, 2, 7, 17),
        stx(SIZE_H, 10, 2, -58),
        ldx(SIZE_DW, 2, 7, 20),
        stx(SIZE_DW, 10, 2, -32),
        ldx(SIZE_DW, 2, 7, 28),
        stx(SIZE_DW, 10, 2, -24),
        ldx(SIZE_B, 4, 7, 15),
        movr(1, 6),
        fp_plus(2, -64),
        mov(3, 64),
        call(69),
    ]);
    for k in 0..8i16 {
        v.push(ldx(SIZE_DW, 2, 10, -64 + 8 * k));
        v.push(stx(SIZE_DW, 7, 2, 64 + 8 * k));
    }
    v.push(exit());
    v
}

fn iface(ifindex: u32, mtu: u32, mac: [u8; 6]) -> Interface {
    Interface {
        ifindex,
        mtu,
        mac,
        forwarding: false,
    }
}

const ETH0_MAC: [u8; 6] = [2, 0xfc, 0, 0, 0, 1];
const GW_MAC: [u8; 6] = [2, 0xfc, 0, 0, 0, 5];

fn v4(a: [u8; 4]) -> [u8; 16] {
    let mut d = [0u8; 16];
    d[..4].copy_from_slice(&a);
    d
}

fn v6(s: &str) -> [u8; 16] {
    s.parse::<std::net::Ipv6Addr>().unwrap().octets()
}

fn route(ipv6: bool, dst: [u8; 16], prefix_len: u8, gateway: Option<[u8; 16]>) -> Route {
    Route {
        ipv6,
        dst,
        prefix_len,
        kind: RouteKind::Unicast,
        ifindex: 4,
        gateway,
        metric: 0,
        mtu: 0,
        neighbor: None,
    }
}

/// The oracle host's network (see the oracle files' headers).
fn host() -> Arc<Network> {
    let gw4 = v4([192, 0, 2, 1]);
    Arc::new(Network {
        interfaces: vec![
            LOOPBACK,
            iface(2, 1500, [0xee, 0xeb, 0xa1, 0xda, 0x11, 0x33]),
            iface(3, 1500, [0x0e, 0xe3, 0xb7, 0xd6, 0x96, 0x4c]),
            iface(4, 1400, ETH0_MAC),
        ],
        routes: vec![
            Route {
                neighbor: Some(GW_MAC),
                ..route(false, v4([0; 4]), 0, Some(gw4))
            },
            route(false, v4([192, 0, 2, 0]), 24, None),
            Route {
                metric: 256,
                ..route(true, v6("fd00::"), 64, None)
            },
            Route {
                metric: 1024,
                ..route(true, [0; 16], 0, Some(v6("fd00::1")))
            },
        ],
        has_table: true,
    })
}

fn load_mode(insns: &[Insn], t: ProgramType, mode: Mode) -> Program {
    load_with(
        insns,
        ProgramOptions {
            mode,
            gpl_compatible: true,
            ..options(t)
        },
    )
    .expect("loads")
}

/// The modes a type can load in here: tc is not verified yet.
fn modes(t: ProgramType) -> &'static [Mode] {
    if t == XDP {
        &[Mode::Checked, Mode::Verified]
    } else {
        &[Mode::Checked]
    }
}

fn run_net(p: &Program, data: &mut [u8], net: Option<&Arc<Network>>) -> (u64, ContextOutput) {
    let (out, cx) = p
        .run_with_context(
            &mut RunInput { data, budget: None },
            &ContextInput {
                network: net,
                ..ContextInput::default()
            },
        )
        .expect("runs");
    (out.r0, cx)
}

fn prog_type(name: &str) -> ProgramType {
    if name == "xdp" {
        XDP
    } else {
        TC
    }
}

#[test]
fn check_mtu_returns_and_writes_what_the_kernels_test_run_does() {
    let net = host();
    let oracle = include_str!("kernel_oracle/check_mtu_6.18.txt");
    let mut n = 0;
    for t in [XDP, TC] {
        for &mode in modes(t) {
            let p = load_mode(&check_mtu_prog(t), t, mode);
            for line in oracle.lines().filter(|l| !l.starts_with('#')) {
                let f: Vec<&str> = line.split(' ').collect();
                if prog_type(f[0]) != t {
                    continue;
                }
                let num = |i: usize| f[i].parse::<i64>().unwrap();
                let mut pkt = vec![0u8; num(1) as usize];
                pkt[12] = 8;
                pkt[14] = num(2) as u8;
                pkt[15..17].copy_from_slice(&(num(3) as u16).to_le_bytes());
                pkt[17] = num(4) as i8 as u8;
                pkt[18] = num(5) as u8;
                let (r0, _) = run_net(&p, &mut pkt, Some(&net));
                assert_eq!(r0 as u32 as i64, num(6), "{line} ({mode:?})");
                n += 1;
            }
        }
    }
    assert_eq!(n, 216 * 3);
}

#[test]
fn check_mtu_without_a_network_has_the_test_runs_loopback() {
    let p = load_mode(&check_mtu_prog(XDP), XDP, Mode::Checked);
    let mut pkt = vec![0u8; 64];
    // ifindex 0 and 1: MTU 65536, success; ifindex 4: -ENODEV (0xed), *mtu_len untouched (0).
    assert_eq!(run_net(&p, &mut pkt, None).0 as u32, 65536 << 8);
    pkt[14] = 1;
    assert_eq!(run_net(&p, &mut pkt, None).0 as u32, 65536 << 8);
    pkt[14] = 4;
    assert_eq!(run_net(&p, &mut pkt, None).0 as u32, 0xed);
}

fn fib_packet(family: u8, flags: u8, ifindex: u8, tot_len: u16, dst: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 128];
    b[12] = 8;
    (b[14], b[15], b[16]) = (family, flags, ifindex);
    b[17..19].copy_from_slice(&tot_len.to_le_bytes());
    b[20..20 + dst.len()].copy_from_slice(dst);
    b
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn fib_lookup_checks_its_arguments_and_forwarding_as_the_kernel_does() {
    let net = host();
    let oracle = include_str!("kernel_oracle/fib_lookup_6.18.txt");
    let mut n = 0;
    for t in [XDP, TC] {
        for &mode in modes(t) {
            let p = load_mode(&fib_prog(t), t, mode);
            for line in oracle.lines().filter(|l| !l.starts_with('#')) {
                let f: Vec<&str> = line.split(' ').collect();
                if prog_type(f[0]) != t {
                    continue;
                }
                let num = |i: usize| f[i].parse::<u64>().unwrap();
                let addr: std::net::IpAddr = f[5].parse().unwrap();
                let dst = match addr {
                    std::net::IpAddr::V4(a) => a.octets().to_vec(),
                    std::net::IpAddr::V6(a) => a.octets().to_vec(),
                };
                let mut pkt = fib_packet(
                    num(1) as u8,
                    num(2) as u8,
                    num(3) as u8,
                    num(4) as u16,
                    &dst,
                );
                let (r0, cx) = run_net(&p, &mut pkt, Some(&net));
                assert_eq!(r0 as u32 as u64, num(6), "{line} ({mode:?})");
                let after = cx.packet.unwrap_or(pkt);
                assert_eq!(hex(&after[64..128]), f[7], "{line} ({mode:?})");
                n += 1;
            }
        }
    }
    assert_eq!(n, 192 * 3);
}

/// The oracle host with forwarding on, for the lookups the kernel could not be asked.
fn forwarding_host() -> Arc<Network> {
    let mut net = (*host()).clone();
    for i in &mut net.interfaces {
        i.forwarding = true;
    }
    net.routes.push(Route {
        kind: RouteKind::Blackhole,
        ..route(false, v4([10, 0, 0, 0]), 8, None)
    });
    net.routes.push(Route {
        kind: RouteKind::Unreachable,
        ..route(false, v4([10, 1, 0, 0]), 16, None)
    });
    Arc::new(net)
}

/// params after a lookup: (ifindex, rt_metric, mtu_result, ipv4_dst, smac, dmac).
fn params(after: &[u8]) -> (u32, u32, u16, [u8; 4], [u8; 6], [u8; 6]) {
    let p = &after[64..128];
    (
        u32::from_ne_bytes(p[8..12].try_into().unwrap()),
        u32::from_ne_bytes(p[12..16].try_into().unwrap()),
        u16::from_ne_bytes(p[6..8].try_into().unwrap()),
        p[32..36].try_into().unwrap(),
        p[52..58].try_into().unwrap(),
        p[58..64].try_into().unwrap(),
    )
}

#[test]
fn fib_lookup_forwards_through_the_callers_routes() {
    let net = forwarding_host();
    for t in [XDP, TC] {
        let p = load_mode(&fib_prog(t), t, Mode::Checked);
        let look = |flags: u8, tot_len: u16, dst: [u8; 4]| {
            let mut pkt = fib_packet(2, flags, 4, tot_len, &dst);
            let (r0, cx) = run_net(&p, &mut pkt, Some(&net));
            (r0, params(&cx.packet.unwrap_or(pkt)))
        };
        // 8.8.8.8: the default route; the destination becomes its gateway, whose MAC is known.
        let (r0, (ifindex, metric, mtu, dst, smac, dmac)) = look(0, 100, [8, 8, 8, 8]);
        assert_eq!(r0, 0);
        assert_eq!((ifindex, metric, mtu, dst), (4, 0, 1400, [192, 0, 2, 1]));
        assert_eq!((smac, dmac), (ETH0_MAC, GW_MAC));
        // 192.0.2.7: on link, no neighbour entry: NO_NEIGH (7); with SKIP_NEIGH (4) success and
        // no MACs.
        assert_eq!(look(0, 100, [192, 0, 2, 7]).0, 7);
        let (r0, (.., smac, dmac)) = look(4, 100, [192, 0, 2, 7]);
        assert_eq!((r0, smac, dmac), (0, [0; 6], [0; 6]));
        // tot_len over the route's MTU: FRAG_NEEDED (8) with mtu_result 1400.
        let (r0, (_, _, mtu, ..)) = look(0, 1401, [8, 8, 8, 8]);
        assert_eq!((r0, mtu), (8, 1400));
        // Blackhole 1, unreachable 2 (the longest prefix wins over the default route).
        assert_eq!(look(0, 0, [10, 9, 9, 9]).0, 1);
        assert_eq!(look(0, 0, [10, 1, 2, 3]).0, 2);
    }
    // tc with tot_len 0 checks the packet (128 bytes) against eth0: success, mtu_result 1400.
    let p = load_mode(&fib_prog(TC), TC, Mode::Checked);
    let mut pkt = fib_packet(2, 0, 4, 0, &[8, 8, 8, 8]);
    let (r0, cx) = run_net(&p, &mut pkt, Some(&net));
    assert_eq!((r0, params(&cx.packet.unwrap()).2), (0, 1400));
}

#[test]
fn fib_lookup_without_routes_is_not_forwarded() {
    // The documented default: no table from the caller, every well-formed lookup NOT_FWDED (4);
    // the argument checks stay (-EAFNOSUPPORT for family 7, -EINVAL for flag 64).
    let p = load_mode(&fib_prog(XDP), XDP, Mode::Checked);
    let r =
        |fam, flags| run_net(&p, &mut fib_packet(fam, flags, 4, 0, &[8, 8, 8, 8]), None).0 as i32;
    assert_eq!(r(2, 0), 4);
    assert_eq!(r(10, 2), 4);
    assert_eq!(r(7, 0), -97);
    assert_eq!(r(2, 64), -22);
}

fn frame() -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    f.resize(60, 0xaa);
    f
}

#[test]
fn tc_redirects_through_the_neighbour_and_the_peer() {
    // redirect_neigh(5, NULL, 0, 0): TC_ACT_REDIRECT (7) to 5 by the neighbour subsystem.
    let neigh = prog![
        mov(1, 5),
        mov(2, 0),
        mov(3, 0),
        mov(4, 0),
        call(152),
        exit()
    ];
    let p = load(&neigh, TC).unwrap();
    let (r0, cx) = run_net(&p, &mut frame(), None);
    let r = cx.redirect.expect("redirected");
    assert_eq!((r0, r.ifindex, r.via), (7, 5, Via::Neigh(None)));
    // With a next hop {AF_INET, 192.0.2.1}: recorded; plen 8 (under 20) or flags 1: TC_ACT_SHOT.
    let with_nh = |plen: i32, flags: i32| {
        prog![
            st(SIZE_W, 10, -24, 2),
            st(SIZE_W, 10, -20, 0x0102_00c0),
            st(SIZE_DW, 10, -16, 0),
            st(SIZE_DW, 10, -8, 0),
            mov(1, 5),
            fp_plus(2, -24),
            mov(3, plen),
            mov(4, flags),
            call(152),
            exit()
        ]
    };
    let p = load(&with_nh(20, 0), TC).unwrap();
    let (r0, cx) = run_net(&p, &mut frame(), None);
    let Via::Neigh(Some(nh)) = cx.redirect.unwrap().via else {
        panic!("a next hop")
    };
    assert_eq!((r0, &nh[..8]), (7, &[2, 0, 0, 0, 192, 0, 2, 1][..]));
    for (plen, flags) in [(8, 0), (20, 1)] {
        let p = load(&with_nh(plen, flags), TC).unwrap();
        let (r0, cx) = run_net(&p, &mut frame(), None);
        assert_eq!((r0, cx.redirect), (2, None));
    }
    // redirect_peer(6, 0): TC_ACT_REDIRECT; flags 1: TC_ACT_SHOT.
    let peer = |flags| prog![mov(1, 6), mov(2, flags), call(155), exit()];
    let (r0, cx) = run_net(&load(&peer(0), TC).unwrap(), &mut frame(), None);
    assert_eq!((r0, cx.redirect.unwrap().via), (7, Via::Peer));
    assert_eq!(
        run_net(&load(&peer(1), TC).unwrap(), &mut frame(), None).0,
        2
    );
    // XDP has neither.
    assert!(load(&peer(0), XDP).is_err());
}

#[test]
fn clone_redirect_sends_a_copy_and_the_program_goes_on() {
    // clone_redirect(skb, ifindex, flags), then write 0x55 at byte 0, then return 0.
    let prog_for = |ifindex: i32, flags: i32| {
        prog![
            movr(6, 1),
            mov(2, ifindex),
            mov(3, flags),
            call(13),
            movr(7, 0),
            ldx(SIZE_W, 2, 6, 76),
            ldx(SIZE_W, 3, 6, 80),
            movr(4, 2),
            add(4, 1),
            jr(JMP_JGT, 4, 3, 1),
            st(SIZE_B, 2, 0, 0x55),
            movr(0, 7),
            exit()
        ]
    };
    // ifindex 1 (the loopback): 0, one copy of the packet as it was then.
    let p = load(&prog_for(1, 1), TC).unwrap();
    let (r0, cx) = run_net(&p, &mut frame(), None);
    assert_eq!(r0, 0);
    assert_eq!(cx.clones.len(), 1);
    assert_eq!((cx.clones[0].ifindex, cx.clones[0].flags), (1, 1));
    assert_eq!(cx.clones[0].packet, frame());
    assert_eq!(cx.packet.unwrap()[0], 0x55);
    // An interface the network lacks, or flags 2: -EINVAL, nothing sent.
    for (ifindex, flags) in [(9, 0), (1, 2)] {
        let p = load(&prog_for(ifindex, flags), TC).unwrap();
        let (r0, cx) = run_net(&p, &mut frame(), None);
        assert_eq!((r0 as i64, cx.clones.len()), (-22, 0));
    }
    // With the caller's network, its interfaces.
    let p = load(&prog_for(4, 0), TC).unwrap();
    assert_eq!(run_net(&p, &mut frame(), Some(&host())).1.clones.len(), 1);
}
