//! The network a tc or XDP run sees: interfaces (for `bpf_check_mtu`, `bpf_clone_redirect`,
//! `bpf_fib_lookup`) and routes (for `bpf_fib_lookup`), given by the caller
//! (`ContextInput::network`). This runtime has no devices and reads no routing table.
//!
//! Without a network from the caller, a run has the kernel test run's loopback (ifindex 1, MTU
//! 65536, the device `BPF_PROG_TEST_RUN` gives tc and XDP programs) and no routes: every
//! well-formed `bpf_fib_lookup` answers `BPF_FIB_LKUP_RET_NOT_FWDED` (4).
//!
//! `bpf_check_mtu(ctx, ifindex, &mtu_len, len_diff, flags)` (163; net/core/filter.c
//! `bpf_skb_check_mtu`, `bpf_xdp_check_mtu`): ifindex 0 is the packet's device (the loopback);
//! an ifindex the network lacks is -ENODEV. The length checked is the packet's (tc: `skb->len`;
//! XDP: `data_end - data`) or, when `*mtu_len` is non-zero, `*mtu_len` + the 14-byte Ethernet
//! header; plus `len_diff`. Over MTU + 14: `BPF_MTU_CHK_RET_FRAG_NEEDED` (1), else 0. `*mtu_len`
//! gets the device's MTU (an error leaves it alone). Flags: XDP none (-EINVAL), tc
//! `BPF_MTU_CHK_SEGS` (1) only, with `len_diff` and `*mtu_len` 0 (-EINVAL); test-run packets are
//! not GSO, so SEGS changes nothing. Checked against the kernel's test runs in
//! `tests/kernel_oracle/check_mtu_6.18.txt`.
//!
//! `bpf_fib_lookup(ctx, params, plen, flags)` (69; `bpf_xdp_fib_lookup`, `bpf_skb_fib_lookup`)
//! with a network: `plen` under 64 or unknown flags -EINVAL; a family other than AF_INET (2) or
//! AF_INET6 (10) -EAFNOSUPPORT; `params->ifindex` not an interface -ENODEV; forwarding off on it
//! `FWD_DISABLED` (5), whatever the flags (these checks are compared with the kernel's test runs
//! in `tests/kernel_oracle/fib_lookup_6.18.txt`; the rest follows net/core/filter.c by hand). Then the longest route prefix that holds
//! `ipv4_dst`/`ipv6_dst`: none `NOT_FWDED` (4); a blackhole, unreachable or prohibit route 1, 2, 3.
//! A unicast route's MTU (its own, else its interface's): XDP, and tc when `tot_len` is set, is
//! `FRAG_NEEDED` (8) with `mtu_result` when `tot_len` is over it. Then `params->ifindex` becomes
//! the route's interface, `rt_metric` its metric, the destination its gateway (if it has one);
//! without `BPF_FIB_LOOKUP_SKIP_NEIGH`, a route with no neighbour MAC is `NO_NEIGH` (7), else
//! `dmac` is it and `smac` the interface's MAC. Success (0) clears the VLAN fields and sets
//! `mtu_result`; tc with `tot_len` 0 checks the packet against the interface (`FRAG_NEEDED` when
//! over MTU + 14 + 4 VLAN bytes). `BPF_FIB_LOOKUP_DIRECT`, `TBID`, `SRC` and `MARK` are accepted;
//! the one table is used whatever they say and `SRC` fills no source.

use std::sync::Arc;

use crate::helpers::packet::require_ctx;
use crate::helpers::{HelperContext, HelperError, HelperTable};
use crate::vm::errno::{EAFNOSUPPORT, EINVAL, ENODEV};

pub use crate::run_state::network::*;

/// `bpf_check_mtu`, 163.
pub const BPF_CHECK_MTU: u32 = 163;
/// `bpf_fib_lookup`, 69.
pub const BPF_FIB_LOOKUP: u32 = 69;

const ETH_HLEN: i64 = 14;
const VLAN_HLEN: u64 = 4;
const BPF_MTU_CHK_SEGS: u64 = 1;
const MTU_FRAG_NEEDED: u64 = 1;

/// `BPF_FIB_LKUP_RET_*`.
pub mod fib_ret {
    pub const SUCCESS: u64 = 0;
    pub const BLACKHOLE: u64 = 1;
    pub const UNREACHABLE: u64 = 2;
    pub const PROHIBIT: u64 = 3;
    pub const NOT_FWDED: u64 = 4;
    pub const FWD_DISABLED: u64 = 5;
    pub const NO_NEIGH: u64 = 7;
    pub const FRAG_NEEDED: u64 = 8;
}

const FIB_DIRECT: u64 = 1;
const FIB_OUTPUT: u64 = 2; // accepted; the one table serves both directions
const FIB_SKIP_NEIGH: u64 = 4;
const FIB_TBID: u64 = 8;
const FIB_SRC: u64 = 16;
const FIB_MARK: u64 = 32;
const FIB_PARAMS_SIZE: u64 = 64;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

fn neg(e: i64) -> Result<u64, HelperError> {
    Ok(crate::vm::errno::negated(e))
}

/// The network of the run (the caller's, or the default).
fn network(cx: &HelperContext<'_>) -> Arc<Network> {
    cx.state.network.clone().unwrap_or_default()
}

/// The packet's length as the kernel's helpers see it: tc `skb->len`, XDP `data_end - data`.
fn packet_len(cx: &HelperContext<'_>) -> u64 {
    if let Some(skb) = cx.state.tc.as_deref() {
        skb.len()
    } else if let Some(f) = cx.state.xdp.as_deref() {
        f.data_end - f.data
    } else {
        0
    }
}

fn read_u32(cx: &HelperContext<'_>, addr: u64) -> Result<u32, HelperError> {
    let b = cx.readable(addr, 4, "mtu_len")?;
    Ok(u32::from_ne_bytes(b.try_into().expect("4 bytes")))
}

fn write_u32(cx: &mut HelperContext<'_>, addr: u64, v: u32) -> Result<(), HelperError> {
    cx.writable(addr, 4, "mtu_len")?
        .copy_from_slice(&v.to_ne_bytes());
    Ok(())
}

fn check_mtu(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    require_ctx(cx, a[0])?;
    let (ifindex, mtu_len, len_diff, flags) = (a[1] as u32, a[2], a[3] as i32 as i64, a[4]);
    let tc = cx.state.tc.is_some();
    let given = read_u32(cx, mtu_len)?;
    let net = network(cx);
    let dev = if ifindex == 0 {
        net.own()
    } else {
        net.interface(ifindex)
    };
    if !tc {
        // bpf_xdp_check_mtu: flags first, then the device; *mtu_len is written only after both.
        if flags != 0 {
            return neg(EINVAL);
        }
        let Some(dev) = dev else { return neg(ENODEV) };
        let mut len = packet_len(cx) as i64;
        if given != 0 {
            len = given as i64 + ETH_HLEN;
        }
        len += len_diff;
        let ret = if len > dev.mtu as i64 + ETH_HLEN {
            MTU_FRAG_NEEDED
        } else {
            0
        };
        write_u32(cx, mtu_len, dev.mtu)?;
        return Ok(ret);
    }
    // bpf_skb_check_mtu: a failure leaves *mtu_len alone, as in XDP.
    if flags & !BPF_MTU_CHK_SEGS != 0
        || flags & BPF_MTU_CHK_SEGS != 0 && (len_diff != 0 || given != 0)
    {
        return neg(EINVAL);
    }
    let Some(dev) = dev else { return neg(ENODEV) };
    let mut len = if given != 0 {
        given as i64 + ETH_HLEN
    } else {
        packet_len(cx) as i64
    };
    len += len_diff;
    // Not GSO (test-run packets never are): over the MTU is FRAG_NEEDED.
    let ret = if len <= dev.mtu as i64 + ETH_HLEN {
        0
    } else {
        MTU_FRAG_NEEDED
    };
    write_u32(cx, mtu_len, dev.mtu)?;
    Ok(ret)
}

fn fib_lookup(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    require_ctx(cx, a[0])?;
    let (addr, plen, flags) = (a[1], a[2], a[3]);
    if plen < FIB_PARAMS_SIZE {
        return neg(EINVAL);
    }
    let known = FIB_DIRECT | FIB_OUTPUT | FIB_SKIP_NEIGH | FIB_TBID | FIB_SRC | FIB_MARK;
    if flags & !known != 0 {
        return neg(EINVAL);
    }
    let mut p: [u8; 64] = cx
        .readable(addr, FIB_PARAMS_SIZE, "params")?
        .try_into()
        .expect("64 bytes");
    let tc = cx.state.tc.is_some();
    let len = packet_len(cx);
    let net = network(cx);
    let ret = lookup(&net, &mut p, flags, tc, len);
    if ret < 0 {
        return neg(-ret);
    }
    cx.writable(addr, FIB_PARAMS_SIZE, "params")?
        .copy_from_slice(&p);
    Ok(ret as u64)
}

fn u32_at(p: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(p[at..at + 4].try_into().expect("4 bytes"))
}

/// The lookup on `params` (`p`), changed in place; a negative errno or a `BPF_FIB_LKUP_RET_*`.
fn lookup(net: &Network, p: &mut [u8; 64], flags: u64, tc: bool, skb_len: u64) -> i64 {
    let family = p[0];
    if family != AF_INET && family != AF_INET6 {
        return -EAFNOSUPPORT;
    }
    if !net.has_table {
        return fib_ret::NOT_FWDED as i64;
    }
    let ipv6 = family == AF_INET6;
    let Some(input) = net.interface(u32_at(p, 8)) else {
        return -ENODEV;
    };
    // Checked whatever the flags say (BPF_FIB_LOOKUP_OUTPUT too), as the kernel does.
    if !input.forwarding {
        return fib_ret::FWD_DISABLED as i64;
    }
    let tot_len = u16::from_ne_bytes([p[6], p[7]]) as u32;
    let dst_len = if ipv6 { 16 } else { 4 };
    let dst = p[32..32 + dst_len].to_vec();
    let Some(route) = net.route(ipv6, &dst) else {
        return fib_ret::NOT_FWDED as i64;
    };
    match route.kind {
        RouteKind::Unicast => {}
        RouteKind::Blackhole => return fib_ret::BLACKHOLE as i64,
        RouteKind::Unreachable => return fib_ret::UNREACHABLE as i64,
        RouteKind::Prohibit => return fib_ret::PROHIBIT as i64,
    }
    let Some(out) = net.interface(route.ifindex) else {
        return fib_ret::NOT_FWDED as i64;
    };
    let mtu = if route.mtu != 0 { route.mtu } else { out.mtu };
    // XDP always checks tot_len against the MTU; tc only when it is set.
    let check_mtu = !tc || tot_len != 0;
    if check_mtu && tot_len > mtu {
        p[6..8].copy_from_slice(&(mtu.min(0xffff) as u16).to_ne_bytes());
        return fib_ret::FRAG_NEEDED as i64;
    }
    p[12..16].copy_from_slice(&route.metric.to_ne_bytes());
    p[8..12].copy_from_slice(&out.ifindex.to_ne_bytes());
    if let Some(gw) = route.gateway {
        p[32..32 + dst_len].copy_from_slice(&gw[..dst_len]);
    }
    if flags & FIB_SKIP_NEIGH == 0 {
        let Some(mac) = route.neighbor else {
            return fib_ret::NO_NEIGH as i64;
        };
        p[58..64].copy_from_slice(&mac);
        p[52..58].copy_from_slice(&out.mac);
    }
    // bpf_fib_set_fwd_params: no VLAN, and the MTU when it was checked.
    p[48..52].fill(0);
    if check_mtu {
        p[6..8].copy_from_slice(&(mtu.min(0xffff) as u16).to_ne_bytes());
        return fib_ret::SUCCESS as i64;
    }
    // tc without tot_len: the packet against the output interface (is_skb_forwardable).
    p[6..8].copy_from_slice(&(out.mtu.min(0xffff) as u16).to_ne_bytes());
    if skb_len > out.mtu as u64 + ETH_HLEN as u64 + VLAN_HLEN {
        return fib_ret::FRAG_NEEDED as i64;
    }
    fib_ret::SUCCESS as i64
}

/// `bpf_check_mtu` and `bpf_fib_lookup`, for tc and XDP.
pub fn register(table: &mut HelperTable) {
    table.register_kernel(BPF_CHECK_MTU, "bpf_check_mtu", check_mtu);
    table.register_kernel(BPF_FIB_LOOKUP, "bpf_fib_lookup", fib_lookup);
}
