//! Where an address lies, in the program's own terms: `stack-8`, `data+70`, `ctx+12`,
//! `map 'counts' value+12`, `ringbuf 'events' record+4` (`error::Place`). Trap messages, helper
//! errors and the `Trap::place` that JavaScript sees use these instead of host addresses, so that a program's
//! output (and what an embedder shows of it) does not reveal where the host put its memory.
//!
//! The regions that the program type and the loader set up (stack, data, context, XDP frame,
//! callback stacks, global data) are named from the run's state when a place is asked for; the
//! ones helpers add during the run (map values, `bpf_for_each_map_elem` keys, ring buffer
//! records) are recorded as they are added (`maps::added_regions`). Looking a place up walks all
//! of them: it happens on errors only.
//!
//! An address inside a region, or at most `NEAR` bytes outside one, is given relative to that
//! region (the nearest one when outside). An address within `NEAR` of zero is given as it is
//! (`null+8`): no host memory lies there. Any other address is "outside every region", with
//! nothing said about where it is.

use crate::error::Place;
use crate::maps::added_regions::Added;
use crate::maps::RunMaps;

use super::RunState;

/// How far outside a region an address is still given relative to it.
pub const NEAR: u64 = 4096;

/// One named extent: `[start, start + len)`, offsets counted from `base`; or, for a map's value
/// area (`stride` != 0), from the start of the value an address inside it falls in.
struct Named {
    start: u64,
    len: u64,
    base: u64,
    stride: u64,
    region: String,
}

fn map_name(maps: &RunMaps, handle: u64, kind: &str) -> String {
    match maps.resolve_ref(handle) {
        Some(m) if !m.common().def.name.is_empty() => format!("{kind} '{}'", m.common().def.name),
        Some(m) => format!("{} {kind}", m.map_type().name()),
        None => kind.to_string(),
    }
}

/// Every named extent of the run: the helper-added ones first (they are the most specific).
fn extents(state: &RunState, maps: &RunMaps) -> Vec<Named> {
    let mut out = Vec::new();
    let mut add_strided = |start: u64, len: u64, base: u64, stride: u64, region: String| {
        if len > 0 {
            out.push(Named {
                start,
                len,
                base,
                stride,
                region,
            })
        }
    };
    for &(start, len, what) in state.added.iter() {
        let (region, stride) = match what {
            // A value area holds every value of the map, `value_stride` bytes apart.
            Added::MapValue { map } => (
                format!("{} value", map_name(maps, map, "map")),
                maps.resolve_ref(map)
                    .map_or(0, |m| m.common().def.value_stride() as u64),
            ),
            Added::MapKey { map } => (format!("{} key", map_name(maps, map, "map")), 0),
            Added::RingbufRecord { map } => {
                (format!("{} record", map_name(maps, map, "ringbuf")), 0)
            }
        };
        add_strided(start, len, start, stride, region);
    }
    let mut add =
        |start: u64, len: u64, base: u64, region: String| add_strided(start, len, base, 0, region);
    let (stack, stack_len) = state.stack;
    add(stack, stack_len, stack + stack_len, "stack".into());
    for s in &state.callback_stacks {
        add(s.addr, s.len, s.addr + s.len, "callback stack".into());
    }
    match &state.xdp {
        Some(frame) => {
            add(
                frame.hard_start,
                frame.hard_end - frame.hard_start,
                frame.data,
                "data".into(),
            );
            if let Some((addr, len)) = frame.ctx_extent() {
                add(addr, len, addr, "ctx".into());
            }
        }
        None => {
            add(state.data.0, state.data.1, state.data.0, "data".into());
            if let Some(ctx) = &state.ctx {
                add(ctx.addr, ctx.len, ctx.addr, "ctx".into());
            }
        }
    }
    for m in maps.program_maps() {
        if let Some((addr, len)) = m.direct_value() {
            let name = &m.common().def.name;
            add(addr, len, addr, format!("map '{name}' value"));
        }
    }
    out
}

/// Where `addr` lies, relative to the region that holds it or the nearest one (see the module
/// comment); `None` when it is far from every region.
pub fn locate(addr: u64, state: &RunState, maps: &RunMaps) -> Option<Place> {
    let all = extents(state, maps);
    let distance = |n: &Named| {
        if addr < n.start {
            n.start - addr
        } else {
            addr.saturating_sub(n.start + n.len - 1)
        }
    };
    let nearest = all
        .iter()
        .map(|n| (distance(n), n))
        .filter(|(d, _)| *d <= NEAR)
        .min_by_key(|(d, _)| *d);
    if let Some((_, n)) = nearest {
        let inside = addr >= n.start && addr - n.start < n.len;
        let offset = if n.stride > 0 && inside {
            ((addr - n.start) % n.stride) as i64
        } else {
            addr.wrapping_sub(n.base) as i64
        };
        return Some(Place {
            region: n.region.clone(),
            offset,
        });
    }
    (addr as i64).unsigned_abs().le(&NEAR).then(|| Place {
        region: "null".into(),
        offset: addr as i64,
    })
}

/// `addr` for a message: its place, or "an address outside every region of the run".
pub fn describe(addr: u64, state: &RunState, maps: &RunMaps) -> String {
    match locate(addr, state, maps) {
        Some(p) => p.to_string(),
        None => "an address outside every region of the run".into(),
    }
}
