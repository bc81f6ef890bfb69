//! `bpf_redirect` (23) for tc and XDP programs, and where a run's packet went.
//!
//! The helper only records the target (net/core/filter.c: `bpf_redirect`, `bpf_xdp_redirect`);
//! the packet goes there when the program then returns the redirect action, `TC_ACT_REDIRECT`
//! (7) or `XDP_REDIRECT` (4). A run reports that target (`ContextOutput::redirect`); the kernel's
//! test run, which sends nothing anywhere, only returns the action.
//! - tc: a flag other than `BPF_F_INGRESS` is `TC_ACT_SHOT`, else `TC_ACT_REDIRECT`.
//! - XDP: any flag is `XDP_ABORTED`, else `XDP_REDIRECT`.
//!
//! `bpf_redirect_map(map, key, flags)` (51, XDP only: `__bpf_xdp_redirect_map`) looks `key` up in
//! a devmap, devmap_hash, cpumap or xskmap (`maps::redirect`):
//! - flags outside the action bits (0-1) and, for the devmaps, `BPF_F_BROADCAST` (8) and
//!   `BPF_F_EXCLUDE_INGRESS` (16) are `XDP_ABORTED`;
//! - a key with no entry returns the flags' lower bits as the action (`XDP_ABORTED` 0, `DROP` 1,
//!   `PASS` 2, `TX` 3: the fallback the program chose), and forgets any earlier target, unless
//!   `BPF_F_BROADCAST` is set;
//! - otherwise (or with `BPF_F_BROADCAST`, which sends to every entry and ignores the key) it
//!   records the map and key and returns `XDP_REDIRECT`. The run's `redirect` then names them
//!   (`map`), with the devmap entry's ifindex in `ifindex` (0 for the other types).
//!
//! tc also has (net/core/filter.c):
//! - `bpf_redirect_neigh(ifindex, params, plen, flags)` (152): flags, or a `plen` that is neither
//!   0 nor at least 20 (`struct bpf_redir_neigh`), is `TC_ACT_SHOT`; else `TC_ACT_REDIRECT` to
//!   the interface's egress through the neighbour subsystem (`via: Neigh`, with the next hop
//!   when `params` gave one);
//! - `bpf_redirect_peer(ifindex, flags)` (155): flags `TC_ACT_SHOT`, else `TC_ACT_REDIRECT` to
//!   the ingress of the device's peer (`via: Peer`);
//! - `bpf_clone_redirect(skb, ifindex, flags)` (13): sends a copy of the packet as it is now
//!   and returns 0 (the run's `clones`); flags other than `BPF_F_INGRESS` are -EINVAL, and so is
//!   an interface the run's network (`net`) does not have. The program goes on.

use crate::helpers::skb::BPF_REDIRECT;
use crate::helpers::{HelperContext, HelperError, HelperTable};
use crate::maps::redirect::RedirectMap;
use crate::maps::MapType;

use super::tc::{TC_ACT_REDIRECT, TC_ACT_SHOT};
use super::xdp::{XDP_ABORTED, XDP_REDIRECT};
use super::RunState;

pub use crate::run_state::redirect::*;

/// `BPF_F_INGRESS`: to the interface's ingress rather than its egress (tc only).
pub const BPF_F_INGRESS: u64 = 1;

// The program type is told by the run's packet (`RunState::tc`, `RunState::xdp`): only tc and
// XDP runs have the helper.

/// `bpf_redirect_map`, helper 51.
pub const BPF_REDIRECT_MAP: u32 = 51;
/// `BPF_F_BROADCAST`: a devmap redirect to every entry.
pub const BPF_F_BROADCAST: u64 = 1 << 3;
/// `BPF_F_EXCLUDE_INGRESS`: a broadcast that skips the interface the packet came in on.
pub const BPF_F_EXCLUDE_INGRESS: u64 = 1 << 4;
/// The XDP actions a failed `bpf_redirect_map` lookup may return (`XDP_ABORTED`..`XDP_TX`).
const ACTION_MASK: u64 = 3;

fn redirect(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (ifindex, flags) = (a[0] as u32, a[1]);
    let (allowed, refused, done) = if cx.state.tc.is_some() {
        (BPF_F_INGRESS, TC_ACT_SHOT, TC_ACT_REDIRECT)
    } else {
        (0, XDP_ABORTED, XDP_REDIRECT)
    };
    if flags & !allowed != 0 {
        return Ok(refused);
    }
    cx.state.redirect = Some(Redirect {
        ifindex,
        flags,
        map: None,
        via: Via::Redirect,
    });
    Ok(done)
}

/// `struct bpf_redir_neigh`: u32 family, then a 16-byte address.
const REDIR_NEIGH_SIZE: u64 = 20;

fn redirect_neigh(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (ifindex, params, plen, flags) = (a[0] as u32, a[1], a[2] as i32 as i64, a[3]);
    if (plen != 0 && plen < REDIR_NEIGH_SIZE as i64) || flags != 0 {
        return Ok(TC_ACT_SHOT);
    }
    let nexthop = if plen != 0 {
        let b = cx.readable(params, REDIR_NEIGH_SIZE, "params")?;
        Some(b.try_into().expect("20 bytes"))
    } else {
        None
    };
    cx.state.redirect = Some(Redirect {
        ifindex,
        flags: 0,
        map: None,
        via: Via::Neigh(nexthop),
    });
    Ok(TC_ACT_REDIRECT)
}

fn redirect_peer(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (ifindex, flags) = (a[0] as u32, a[1]);
    if flags != 0 {
        return Ok(TC_ACT_SHOT);
    }
    cx.state.redirect = Some(Redirect {
        ifindex,
        flags: 0,
        map: None,
        via: Via::Peer,
    });
    Ok(TC_ACT_REDIRECT)
}

fn clone_redirect(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    crate::helpers::packet::require_ctx(cx, a[0])?;
    let (ifindex, flags) = (a[1] as u32, a[2]);
    const EINVAL: u64 = (-22i64) as u64;
    if flags & !BPF_F_INGRESS != 0 {
        return Ok(EINVAL);
    }
    let known = match &cx.state.network {
        Some(net) => net.interface(ifindex).is_some(),
        None => ifindex == super::net::LOOPBACK.ifindex,
    };
    if !known {
        return Ok(EINVAL);
    }
    let packet = cx
        .state
        .tc
        .as_deref()
        .map(|skb| skb.packet())
        .unwrap_or_default();
    cx.state.clones.push(Clone {
        ifindex,
        flags,
        packet,
    });
    Ok(0)
}

fn redirect_map(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (key, flags) = (a[1] as u32, a[2]);
    let Some(map) = cx.maps.resolve(a[0]) else {
        return Err(HelperError("r1 is not a map of this program".into()));
    };
    let Some(target) = map.as_any().downcast_ref::<RedirectMap>() else {
        return Err(HelperError(
            "bpf_redirect_map needs a devmap, devmap_hash, cpumap or xskmap".into(),
        ));
    };
    let map_type = map.common().def.map_type;
    let extra = if matches!(map_type, MapType::Devmap | MapType::DevmapHash) {
        BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS
    } else {
        0
    };
    if flags & !(ACTION_MASK | extra) != 0 {
        return Ok(XDP_ABORTED);
    }
    let entry = target.target(key);
    if entry.is_none() && flags & BPF_F_BROADCAST == 0 {
        // The last lookup takes precedence: a miss forgets an earlier target.
        cx.state.redirect = None;
        return Ok(flags & ACTION_MASK);
    }
    let broadcast = flags & BPF_F_BROADCAST != 0;
    cx.state.redirect = Some(Redirect {
        ifindex: match map_type {
            MapType::Devmap | MapType::DevmapHash if !broadcast => entry.unwrap_or(0),
            _ => 0,
        },
        // The kernel keeps the flags of a broadcast only.
        flags: if broadcast { flags } else { 0 },
        via: Via::Redirect,
        map: Some(MapTarget {
            map_id: map.common().id,
            map_name: map.common().def.name.clone(),
            map_type,
            key,
        }),
    });
    Ok(XDP_REDIRECT)
}

/// `bpf_redirect`, for the types that have it (tc, XDP).
pub fn register(table: &mut HelperTable) {
    table.register_kernel(BPF_REDIRECT, "bpf_redirect", redirect);
}

/// `bpf_redirect_neigh`, 152.
pub const BPF_REDIRECT_NEIGH: u32 = 152;
/// `bpf_redirect_peer`, 155.
pub const BPF_REDIRECT_PEER: u32 = 155;
/// `bpf_clone_redirect`, 13.
pub const BPF_CLONE_REDIRECT: u32 = 13;

/// The tc-only redirects.
pub fn register_tc(table: &mut HelperTable) {
    table.register_kernel(BPF_REDIRECT_NEIGH, "bpf_redirect_neigh", redirect_neigh);
    table.register_kernel(BPF_REDIRECT_PEER, "bpf_redirect_peer", redirect_peer);
    table.register_kernel(BPF_CLONE_REDIRECT, "bpf_clone_redirect", clone_redirect);
}

/// `bpf_redirect_map`, XDP only.
pub fn register_xdp(table: &mut HelperTable) {
    table.register_kernel(BPF_REDIRECT_MAP, "bpf_redirect_map", redirect_map);
}

/// Where the packet went: the last redirect's target when `r0` is the type's redirect action.
pub(crate) fn redirect_of(state: &RunState, r0: u64) -> Option<Redirect> {
    let action = if state.tc.is_some() {
        TC_ACT_REDIRECT
    } else if state.xdp.is_some() {
        XDP_REDIRECT
    } else {
        return None;
    };
    state
        .redirect
        .clone()
        .filter(|_| r0 as u32 as u64 == action)
}
