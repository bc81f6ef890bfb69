//! The tunnel metadata of a tc run's `sk_buff` and the two helpers that read and set it, as
//! Linux 6.18's net/core/filter.c defines them (`bpf_skb_get_tunnel_key`,
//! `bpf_skb_set_tunnel_key`):
//!
//! - The metadata a packet arrives with is the caller's (`ContextInput::tunnel`, e.g. what a
//!   VXLAN or Geneve device in collect-metadata mode recorded on receive); without it the packet
//!   has none, as in the kernel's test run, and `get_tunnel_key` fails with -EINVAL.
//! - `bpf_skb_get_tunnel_key(skb, key, size, flags)`: fills `key` (`struct bpf_tunnel_key`,
//!   44 bytes: `tunnel_id` is a `__u32`), `remote` from the metadata's outer source and `local`
//!   from its outer destination, IPv4 addresses as host-order numbers. Flags other than
//!   `BPF_F_TUNINFO_IPV6` and `BPF_F_TUNINFO_FLAGS`, or no metadata: -EINVAL; a family other
//!   than the flags say: -EPROTO; a size other than 44 and the older layouts' 28, 24, 22 (and
//!   8, IPv4 only): -EINVAL. On an error `size` bytes of `key` are zeroed. With
//!   `BPF_F_TUNINFO_FLAGS`, `tunnel_flags` holds the metadata's `TUNNEL_*` flags big-endian.
//! - `bpf_skb_set_tunnel_key(skb, key, size, flags)`: gives the packet transmit metadata from
//!   `key` (the older sizes as for get, the rest zero). Flags other than `BPF_F_TUNINFO_IPV6`,
//!   `BPF_F_ZERO_CSUM_TX`, `BPF_F_DONT_FRAGMENT`, `BPF_F_SEQ_NUMBER`, `BPF_F_NO_TUNNEL_KEY`,
//!   another size, a non-zero `tunnel_ext`, or a `tunnel_label` without the IPv6 flag: -EINVAL
//!   and nothing changes. The metadata's flags are `NOCACHE`, `CSUM` unless `ZERO_CSUM_TX`,
//!   `KEY` unless `NO_TUNNEL_KEY`, `DONT_FRAGMENT` and `SEQ` when asked; `remote` becomes the
//!   outer destination and `local` the outer source, so that a later get in the same run reads
//!   them back swapped, as the kernel's does. The run reports what the program set
//!   (`ContextOutput::tunnel`).
//!
//! Checked against the kernel's `BPF_PROG_TEST_RUN` of `__test__/fixtures/tunnel_key.c`
//! (`__test__/tunnel-key.test.ts`).

use crate::helpers::packet::require_ctx;
use crate::helpers::{HelperContext, HelperError, HelperTable};
use crate::vm::errno::{negated as err, EINVAL, EPROTO};

pub const BPF_SKB_GET_TUNNEL_KEY: u32 = 20;
pub const BPF_SKB_SET_TUNNEL_KEY: u32 = 21;

/// `sizeof(struct bpf_tunnel_key)`.
pub const KEY_SIZE: usize = 44;
/// The older layouts' sizes: up to `local_ipv4`, `tunnel_label`, `tunnel_ext`, and the first,
/// IPv4-only one ending at `remote_ipv6[1]`.
const OLD_SIZES: [u32; 3] = [28, 24, 22];
const IPV4_ONLY_SIZE: u32 = 8;

const TUNINFO_IPV6: u64 = 1 << 0;
const ZERO_CSUM_TX: u64 = 1 << 1;
const DONT_FRAGMENT: u64 = 1 << 2;
const SEQ_NUMBER: u64 = 1 << 3;
const NO_TUNNEL_KEY: u64 = 1 << 4;
const TUNINFO_FLAGS: u64 = 1 << 4;

/// The `TUNNEL_*` flags (include/uapi/linux/if_tunnel.h's bit numbers as the 16-bit values the
/// old UAPI and `tunnel_flags` use).
pub const TUNNEL_CSUM: u16 = 0x0001;
pub const TUNNEL_KEY: u16 = 0x0004;
pub const TUNNEL_SEQ: u16 = 0x0008;
pub const TUNNEL_DONT_FRAGMENT: u16 = 0x0100;
pub const TUNNEL_NOCACHE: u16 = 0x2000;

/// The IPv6 flow label's 20 bits.
const FLOW_LABEL_MASK: u32 = 0x000f_ffff;

pub use crate::run_state::tunnel::TunnelInfo;

/// Whether `size` is one `struct bpf_tunnel_key` layout, for metadata of this family.
fn known_size(size: u32, ipv6: bool) -> bool {
    size as usize == KEY_SIZE || OLD_SIZES.contains(&size) || (size == IPV4_ONLY_SIZE && !ipv6)
}

/// `info` as `struct bpf_tunnel_key` with the get flags `flags`.
fn key_of(info: &TunnelInfo, flags: u64) -> [u8; KEY_SIZE] {
    let mut k = [0u8; KEY_SIZE];
    k[0..4].copy_from_slice(&(info.id as u32).to_le_bytes());
    k[20] = info.tos;
    k[21] = info.ttl;
    if flags & TUNINFO_FLAGS != 0 {
        k[22..24].copy_from_slice(&info.flags.to_be_bytes());
    }
    if info.ipv6 {
        k[4..20].copy_from_slice(&info.src);
        k[28..44].copy_from_slice(&info.dst);
        k[24..28].copy_from_slice(&info.label.to_le_bytes());
    } else {
        let host = |a: &[u8; 16]| u32::from_be_bytes([a[0], a[1], a[2], a[3]]).to_le_bytes();
        k[4..8].copy_from_slice(&host(&info.src));
        k[28..32].copy_from_slice(&host(&info.dst));
    }
    k
}

fn get_tunnel_key(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    require_ctx(cx, a[0])?;
    let (size, flags) = (a[2] as u32, a[3]);
    let info = cx.state.tunnel;
    let to = cx.writable(a[1], size as u64, "key")?;
    let ret = match info {
        None => Err(EINVAL),
        Some(_) if flags & !(TUNINFO_IPV6 | TUNINFO_FLAGS) != 0 => Err(EINVAL),
        Some(i) if i.ipv6 != (flags & TUNINFO_IPV6 != 0) => Err(EPROTO),
        Some(i) if !known_size(size, i.ipv6) => Err(EINVAL),
        Some(i) => Ok(key_of(&i, flags)),
    };
    Ok(match ret {
        Ok(key) => {
            to.copy_from_slice(&key[..to.len()]);
            0
        }
        Err(e) => {
            to.fill(0);
            err(e)
        }
    })
}

fn set_tunnel_key(cx: &mut HelperContext<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    require_ctx(cx, a[0])?;
    let (size, flags) = (a[2] as u32, a[3]);
    let from = cx.readable(a[1], size as u64, "key")?;
    let allowed = TUNINFO_IPV6 | ZERO_CSUM_TX | DONT_FRAGMENT | SEQ_NUMBER | NO_TUNNEL_KEY;
    // The IPv4-only size is accepted here whatever the flags (the kernel checks the family of
    // that layout on get only).
    if flags & !allowed != 0 || !known_size(size, false) {
        return Ok(err(EINVAL));
    }
    let mut k = [0u8; KEY_SIZE];
    k[..from.len()].copy_from_slice(from);
    let word = |at: usize| u32::from_le_bytes([k[at], k[at + 1], k[at + 2], k[at + 3]]);
    let ipv6 = flags & TUNINFO_IPV6 != 0;
    let (ext, label) = (u16::from_le_bytes([k[22], k[23]]), word(24));
    if (!ipv6 && label != 0) || ext != 0 {
        return Ok(err(EINVAL));
    }
    let set = |on: bool, flag: u16| if on { flag } else { 0 };
    let mut info = TunnelInfo {
        ipv6,
        tx: true,
        id: word(0) as u64,
        tos: k[20],
        ttl: k[21],
        flags: TUNNEL_NOCACHE
            | set(flags & DONT_FRAGMENT != 0, TUNNEL_DONT_FRAGMENT)
            | set(flags & ZERO_CSUM_TX == 0, TUNNEL_CSUM)
            | set(flags & SEQ_NUMBER != 0, TUNNEL_SEQ)
            | set(flags & NO_TUNNEL_KEY == 0, TUNNEL_KEY),
        ..TunnelInfo::default()
    };
    if ipv6 {
        info.dst.copy_from_slice(&k[4..20]);
        info.src.copy_from_slice(&k[28..44]);
        info.label = label & FLOW_LABEL_MASK;
    } else {
        info.dst[..4].copy_from_slice(&word(4).to_be_bytes());
        info.src[..4].copy_from_slice(&word(28).to_be_bytes());
    }
    cx.state.tunnel = Some(info);
    Ok(0)
}

/// The two helpers (tc).
pub fn register(table: &mut HelperTable) {
    table.register_kernel(
        BPF_SKB_GET_TUNNEL_KEY,
        "bpf_skb_get_tunnel_key",
        get_tunnel_key,
    );
    table.register_kernel(
        BPF_SKB_SET_TUNNEL_KEY,
        "bpf_skb_set_tunnel_key",
        set_tunnel_key,
    );
}
