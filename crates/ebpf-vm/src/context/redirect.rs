//! `bpf_redirect` (23) for tc and XDP programs, and where a run's packet went.
//!
//! The helper only records the target (net/core/filter.c: `bpf_redirect`, `bpf_xdp_redirect`);
//! the packet goes there when the program then returns the redirect action, `TC_ACT_REDIRECT`
//! (7) or `XDP_REDIRECT` (4). A run reports that target (`ContextOutput::redirect`); the kernel's
//! test run, which sends nothing anywhere, only returns the action.
//! - tc: a flag other than `BPF_F_INGRESS` is `TC_ACT_SHOT`, else `TC_ACT_REDIRECT`.
//! - XDP: any flag is `XDP_ABORTED`, else `XDP_REDIRECT`.

use crate::helpers::skb::BPF_REDIRECT;
use crate::helpers::{HelperContext, HelperError, HelperTable};

use super::tc::{TC_ACT_REDIRECT, TC_ACT_SHOT};
use super::xdp::{XDP_ABORTED, XDP_REDIRECT};
use super::RunState;

/// `BPF_F_INGRESS`: to the interface's ingress rather than its egress (tc only).
pub const BPF_F_INGRESS: u64 = 1;

// The program type is told by the run's packet (`RunState::tc`, `RunState::xdp`): only tc and
// XDP runs have the helper.

/// The target of a redirect: an interface and the flags `bpf_redirect` was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Redirect {
    pub ifindex: u32,
    pub flags: u64,
}

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
    cx.state.redirect = Some(Redirect { ifindex, flags });
    Ok(done)
}

/// `bpf_redirect`, for the types that have it (tc, XDP).
pub fn register(table: &mut HelperTable) {
    table.register_kernel(BPF_REDIRECT, "bpf_redirect", redirect);
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
    state.redirect.filter(|_| r0 as u32 as u64 == action)
}
