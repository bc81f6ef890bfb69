//! The socket of a packet, as socket filter and tc programs ask about it:
//! `bpf_get_socket_cookie` (46) and `bpf_get_socket_uid` (47). In the kernel they read
//! `skb->sk`; here the run says which socket the packet belongs to (`SocketInfo`, from
//! `ContextInput::socket`), or that it has none.
//!
//! Without a socket the kernel returns a cookie of 0 and the overflow uid (65534,
//! `/proc/sys/kernel/overflowuid`'s default). Note that the kernel's own test run
//! (`BPF_PROG_TEST_RUN`) gives the packet a fresh socket: uid 0 and a new, non-zero cookie (seen
//! with `bpftool prog run` on Linux 6.18); pass `SocketInfo { uid: 0, cookie: N }` for that.

use super::packet::require_ctx;
use super::{HelperContext, HelperError, HelperTable};

pub use crate::run_state::SocketInfo;

pub const BPF_GET_SOCKET_COOKIE: u32 = 46;
pub const BPF_GET_SOCKET_UID: u32 = 47;

/// What `bpf_get_socket_uid` returns for a packet without a socket (`overflowuid`).
pub const OVERFLOW_UID: u32 = 65534;

fn socket_cookie(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    require_ctx(cx, a[0])?;
    Ok(cx.state.socket.map_or(0, |s| s.cookie))
}

fn socket_uid(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    require_ctx(cx, a[0])?;
    Ok(cx.state.socket.map_or(OVERFLOW_UID, |s| s.uid) as u64)
}

pub fn register(table: &mut HelperTable) {
    table.register_kernel(
        BPF_GET_SOCKET_COOKIE,
        "bpf_get_socket_cookie",
        socket_cookie,
    );
    table.register_kernel(BPF_GET_SOCKET_UID, "bpf_get_socket_uid", socket_uid);
}
