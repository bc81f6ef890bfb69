//! The network a run sees (`bpf_fib_lookup`, `bpf_check_mtu`, redirects): interfaces and routes,
//! given by the caller or the kernel test run's loopback alone.

/// An interface of the network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub ifindex: u32,
    pub mtu: u32,
    pub mac: [u8; 6],
    /// IP forwarding on (`net.ipv4.conf.*.forwarding`): fib lookups from it may forward.
    pub forwarding: bool,
}

/// What a route does with the packets it matches (`RTN_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteKind {
    Unicast,
    Blackhole,
    Unreachable,
    Prohibit,
}

/// A route: a destination prefix (an IPv4 address in the first 4 bytes of `dst` when `ipv6` is
/// false), where it goes and the neighbour's MAC when known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub ipv6: bool,
    pub dst: [u8; 16],
    pub prefix_len: u8,
    pub kind: RouteKind,
    pub ifindex: u32,
    pub gateway: Option<[u8; 16]>,
    pub metric: u32,
    /// The route's MTU; 0: the interface's.
    pub mtu: u32,
    /// The next hop's MAC (the neighbour entry); `None`: not resolved.
    pub neighbor: Option<[u8; 6]>,
}

/// The interfaces and routes of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    pub interfaces: Vec<Interface>,
    pub routes: Vec<Route>,
    /// Whether the caller gave routes (a table): without one every fib lookup is NOT_FWDED.
    pub has_table: bool,
}

/// The loopback of the kernel's test run.
pub const LOOPBACK: Interface = Interface {
    ifindex: 1,
    mtu: 65536,
    mac: [0; 6],
    forwarding: false,
};

impl Default for Network {
    fn default() -> Self {
        Network {
            interfaces: vec![LOOPBACK],
            routes: Vec::new(),
            has_table: false,
        }
    }
}

impl Network {
    /// The interface with this index.
    pub fn interface(&self, ifindex: u32) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.ifindex == ifindex)
    }

    /// The run's own device (ifindex 0 in `bpf_check_mtu`): the loopback, or the first interface.
    pub(crate) fn own(&self) -> Option<&Interface> {
        self.interface(1).or(self.interfaces.first())
    }

    /// The longest matching prefix for `addr` (4 or 16 bytes).
    pub(crate) fn route(&self, ipv6: bool, addr: &[u8]) -> Option<&Route> {
        self.routes
            .iter()
            .filter(|r| r.ipv6 == ipv6 && prefix_holds(&r.dst[..addr.len()], r.prefix_len, addr))
            .max_by_key(|r| r.prefix_len)
    }
}

fn prefix_holds(prefix: &[u8], len: u8, addr: &[u8]) -> bool {
    let bits = (len as usize).min(addr.len() * 8);
    (0..bits).all(|b| (prefix[b / 8] ^ addr[b / 8]) & (0x80 >> (b % 8)) == 0)
}
