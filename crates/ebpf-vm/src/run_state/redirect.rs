//! Where a run's packet goes after `bpf_redirect*` and the copies `bpf_clone_redirect` sent.

use crate::maps::MapType;

/// The target of a redirect: an interface and the flags `bpf_redirect` was given, or, after
/// `bpf_redirect_map`, the map entry (`map`) with the devmap entry's ifindex.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
    pub ifindex: u32,
    pub flags: u64,
    pub map: Option<MapTarget>,
    pub via: Via,
}

/// How a tc redirect goes: `bpf_redirect`, `bpf_redirect_neigh` (with the next hop's
/// `struct bpf_redir_neigh` when given), `bpf_redirect_peer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Via {
    #[default]
    Redirect,
    Neigh(Option<[u8; 20]>),
    Peer,
}

/// A copy of the packet `bpf_clone_redirect` sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clone {
    pub ifindex: u32,
    pub flags: u64,
    pub packet: Vec<u8>,
}

/// A `bpf_redirect_map` target: the map (its id and type), the key looked up and the flags
/// (`BPF_F_BROADCAST`: every entry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapTarget {
    pub map_id: u32,
    pub map_name: String,
    pub map_type: MapType,
    pub key: u32,
}
