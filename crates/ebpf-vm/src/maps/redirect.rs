//! The XDP redirect targets: `BPF_MAP_TYPE_DEVMAP` (14), `DEVMAP_HASH` (25), `CPUMAP` (16) and
//! `XSKMAP` (17), which `bpf_redirect_map` looks up (`helpers`' side is in `context::redirect`).
//! Creation, update, lookup, delete and iteration follow Linux 6.18 (kernel/bpf/devmap.c,
//! cpumap.c, net/xdp/xskmap.c), checked against the kernel with bpftool (tests/maps_redirect.rs):
//!
//! | type | key | value | user-space update | lookup |
//! |------|-----|-------|-------------------|--------|
//! | devmap | u32 index < max_entries (E2BIG) | `{u32 ifindex; [u32 prog fd]}` (4 or 8 bytes) | `BPF_ANY`/`BPF_EXIST` (NOEXIST: EEXIST); ifindex 0 empties the slot | `{ifindex, prog id}` |
//! | devmap_hash | any u32 | as devmap | ifindex 0 is EINVAL; a new key past max_entries is E2BIG | as devmap |
//! | cpumap | CPU number < max_entries (E2BIG), a possible CPU (ENODEV) | `{u32 qsize; [u32 prog fd]}` | qsize 0 empties the slot; qsize > 16384 is EOVERFLOW | `{qsize, prog id}` |
//! | xskmap | u32 index < max_entries | u32 (an AF_XDP socket) | any value | EOPNOTSUPP (ENOTSUPP here) |
//!
//! Where this runtime differs, having no network devices, CPUs to steer to or sockets:
//! - an ifindex is not checked against the host's devices (the kernel says EINVAL for one it
//!   does not have): it names an interface of the caller's choosing;
//! - a program in a value (`prog fd` > 0; the kernel's fd of an XDP program loaded for
//!   `BPF_XDP_DEVMAP`/`BPF_XDP_CPUMAP`) is refused with ENOTSUPP: entries run no program. A prog
//!   fd of 0 or -1 (none) is accepted and read back as prog id 0, as in the kernel;
//! - an xskmap value is not a socket fd (the kernel refuses one that is not an AF_XDP socket
//!   with ENOTSOCK): it is recorded as given, the socket the caller means.
//!
//! The kernel forces `BPF_F_RDONLY_PROG` on devmaps (programs read `{ifindex, prog id}` through
//! `map_lookup_elem`); so does `create` here. devmap_hash iterates in key order (the kernel's in
//! its hash's order, which it does not specify). Programs may not look up a cpumap (only
//! `bpf_redirect_map` takes one); an xskmap lookup from a program (the kernel's `PTR_TO_XDP_SOCK`)
//! is not supported.

use std::collections::BTreeMap;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::ErrorCode;

use super::array::index_of;
use super::def::flags::{BPF_EXIST, BPF_NOEXIST};
use super::prog_array::next_index;
use super::{Map, MapCommon, MapDef, MapError, MapResult, MapType, ProgLookup, Words};

/// The kernel's build-time CPU count (`CONFIG_NR_CPUS` of the Linux 6.18 used as the oracle):
/// a cpumap may not have more entries (E2BIG).
pub const NR_CPUS: u32 = 256;
/// The largest cpumap queue (`qsize`) the kernel accepts.
pub const CPUMAP_MAX_QSIZE: u32 = 16384;

/// A devmap, devmap_hash, cpumap or xskmap. Each present entry has an 8-byte slot in `values`
/// (`{ifindex or qsize or socket, prog id}`, what a program's lookup points to), memory that lives
/// as long as the map; `entries` says which key has which slot (the key itself for the array-like
/// types; devmap_hash takes a free slot).
pub struct RedirectMap {
    common: MapCommon,
    values: Words,
    entries: RwLock<Entries>,
}

#[derive(Default)]
struct Entries {
    by_key: BTreeMap<u32, u32>,
    /// devmap_hash: slots given back by deletes, and the first never used.
    free: Vec<u32>,
    fresh: u32,
}

fn einval(message: impl Into<String>) -> MapError {
    MapError::new(ErrorCode::Einval, message)
}

impl RedirectMap {
    pub fn new(def: MapDef) -> MapResult<RedirectMap> {
        let bytes = def.max_entries as usize * 8;
        let values = Words::try_zeroed(bytes).ok_or_else(|| {
            MapError::new(
                ErrorCode::E2big,
                format!("cannot allocate {bytes} bytes for the map's entries"),
            )
        })?;
        Ok(RedirectMap {
            common: MapCommon::new(def),
            values,
            entries: RwLock::new(Entries::default()),
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, Entries> {
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Entries> {
        self.entries.write().unwrap_or_else(|e| e.into_inner())
    }

    fn word(&self, slot: u32) -> u32 {
        let mut b = [0u8; 4];
        self.values.read(slot as usize * 8, &mut b);
        u32::from_ne_bytes(b)
    }

    fn map_type(&self) -> MapType {
        self.common.def.map_type
    }

    /// Whether `key` has an entry (what `bpf_redirect_map` looks up).
    pub fn contains(&self, key: u32) -> bool {
        self.read().by_key.contains_key(&key)
    }

    /// The entry's first word (ifindex, qsize or socket), if there is one.
    pub fn target(&self, key: u32) -> Option<u32> {
        let slot = *self.read().by_key.get(&key)?;
        Some(self.word(slot))
    }

    /// The present keys, in order (the targets of a broadcast).
    pub fn keys(&self) -> Vec<u32> {
        self.read().by_key.keys().copied().collect()
    }

    /// Puts `first` (and prog id 0) under `k`, in its slot (a new one for devmap_hash).
    fn put(&self, entries: &mut Entries, k: u32, first: u32) {
        let slot = match entries.by_key.get(&k) {
            Some(s) => *s,
            None if self.map_type() == MapType::DevmapHash => {
                let s = entries.free.pop().unwrap_or_else(|| {
                    entries.fresh += 1;
                    entries.fresh - 1
                });
                entries.by_key.insert(k, s);
                s
            }
            None => {
                entries.by_key.insert(k, k);
                k
            }
        };
        let mut v = first.to_ne_bytes().to_vec();
        v.extend_from_slice(&0u32.to_ne_bytes());
        self.values.write(slot as usize * 8, &v);
    }

    /// Removes `k`'s entry; whether there was one.
    fn take(&self, entries: &mut Entries, k: u32) -> bool {
        match entries.by_key.remove(&k) {
            Some(slot) => {
                self.values.zero(slot as usize * 8, 8);
                if self.map_type() == MapType::DevmapHash {
                    entries.free.push(slot);
                }
                true
            }
            None => false,
        }
    }

    fn past_end(&self, key: u32) -> MapError {
        MapError::new(
            ErrorCode::E2big,
            format!(
                "key {key} is past the end ({} entries)",
                self.common.def.max_entries
            ),
        )
    }
}

/// The value's words: the first, and the prog fd (0 when the value has none).
fn words(value: &[u8]) -> (u32, i32) {
    let first = u32::from_ne_bytes(value[..4].try_into().expect("4-byte value"));
    let fd = value
        .get(4..8)
        .map_or(0, |b| i32::from_ne_bytes(b.try_into().expect("4 bytes")));
    (first, fd)
}

fn no_programs(fd: i32) -> MapResult<()> {
    if fd > 0 {
        return Err(MapError::new(
            ErrorCode::Enotsupp,
            format!(
                "prog fd {fd}: entries that run a program on redirect are not supported by this \
                 runtime (give 0 or -1)"
            ),
        ));
    }
    Ok(())
}

impl Map for RedirectMap {
    map_identity!();

    fn lookup_elem(&self, key: &[u8]) -> MapResult<Vec<u8>> {
        if self.map_type() == MapType::Xskmap {
            return Err(MapError::new(
                ErrorCode::Enotsupp,
                "xskmap entries cannot be read from user space (the kernel says EOPNOTSUPP)",
            ));
        }
        let k = index_of(key);
        let entries = self.read();
        match entries.by_key.get(&k) {
            // The prog id: always 0 (no entry runs a program).
            Some(slot) => Ok(self
                .values
                .read_vec(*slot as usize * 8, self.common.def.value_size as usize)),
            None => Err(MapError::new(
                ErrorCode::Enoent,
                format!("no entry at key {k}"),
            )),
        }
    }

    fn update_elem(&self, key: &[u8], value: &[u8], flags: u64) -> MapResult<()> {
        let k = index_of(key);
        let (first, fd) = words(value);
        let max = self.common.def.max_entries;
        if flags > BPF_EXIST {
            return Err(einval(format!(
                "update flags 0x{flags:x}: only BPF_ANY, BPF_NOEXIST and BPF_EXIST"
            )));
        }
        let t = self.map_type();
        if t == MapType::DevmapHash {
            if first == 0 {
                return Err(einval("devmap_hash: ifindex 0 names no interface"));
            }
            let mut entries = self.write();
            let old = entries.by_key.contains_key(&k);
            if old && flags == BPF_NOEXIST {
                return Err(MapError::new(
                    ErrorCode::Eexist,
                    format!("key {k} is present"),
                ));
            }
            no_programs(fd)?;
            if !old && entries.by_key.len() >= max as usize {
                return Err(MapError::new(
                    ErrorCode::E2big,
                    format!("the map is full ({max} entries)"),
                ));
            }
            self.put(&mut entries, k, first);
            return Ok(());
        }
        if k >= max {
            return Err(self.past_end(k));
        }
        // Array-like types: every slot exists, so NOEXIST always fails (devmap.c, cpumap.c).
        if flags == BPF_NOEXIST && t != MapType::Xskmap {
            return Err(MapError::new(
                ErrorCode::Eexist,
                format!("key {k}: every slot of a {} exists", t.name()),
            ));
        }
        match t {
            MapType::Devmap => {
                if first == 0 && fd > 0 {
                    return Err(einval("devmap: a program without an interface (ifindex 0)"));
                }
                no_programs(fd)?;
            }
            MapType::Cpumap => {
                if first > CPUMAP_MAX_QSIZE {
                    return Err(MapError::new(
                        ErrorCode::Eoverflow,
                        format!("cpumap qsize {first} is over {CPUMAP_MAX_QSIZE}"),
                    ));
                }
                if k as usize >= super::percpu::possible_cpus() {
                    return Err(MapError::new(
                        ErrorCode::Enodev,
                        format!(
                            "CPU {k} is not a possible CPU (this process has {})",
                            super::percpu::possible_cpus()
                        ),
                    ));
                }
                if first != 0 {
                    no_programs(fd)?;
                }
            }
            _ => {
                // xskmap (xsk_map_update_elem): NOEXIST on a present slot is EEXIST, EXIST on
                // an empty one ENOENT.
                let present = self.read().by_key.contains_key(&k);
                if present && flags == BPF_NOEXIST {
                    return Err(MapError::new(
                        ErrorCode::Eexist,
                        format!("key {k} is present"),
                    ));
                }
                if !present && flags == BPF_EXIST {
                    return Err(MapError::new(
                        ErrorCode::Enoent,
                        format!("no entry at key {k}"),
                    ));
                }
            }
        }
        let mut entries = self.write();
        // devmap ifindex 0 and cpumap qsize 0 empty the slot (the kernel's "same as deleting").
        if first == 0 && t != MapType::Xskmap {
            self.take(&mut entries, k);
        } else {
            self.put(&mut entries, k, first);
        }
        Ok(())
    }

    fn delete_elem(&self, key: &[u8]) -> MapResult<()> {
        let k = index_of(key);
        if self.map_type() == MapType::DevmapHash {
            let mut entries = self.write();
            return if self.take(&mut entries, k) {
                Ok(())
            } else {
                Err(MapError::new(
                    ErrorCode::Enoent,
                    format!("no entry at key {k}"),
                ))
            };
        }
        let max = self.common.def.max_entries;
        if k >= max {
            return Err(einval(format!("key {k} is past the end ({max} entries)")));
        }
        // An empty slot deletes without complaint, as in the kernel.
        let mut entries = self.write();
        self.take(&mut entries, k);
        Ok(())
    }

    fn get_next_key(&self, key: Option<&[u8]>) -> MapResult<Vec<u8>> {
        if self.map_type() != MapType::DevmapHash {
            return next_index(key, self.common.def.max_entries);
        }
        let entries = &self.read().by_key;
        // A missing key restarts at the first one, as the kernel's hash walk does.
        let next = match key.map(index_of) {
            Some(k) if entries.contains_key(&k) => entries
                .range(k.saturating_add(1)..)
                .next()
                .filter(|_| k != u32::MAX),
            _ => entries.iter().next(),
        };
        match next {
            Some((k, _)) => Ok(k.to_ne_bytes().to_vec()),
            None => Err(MapError::new(ErrorCode::Enoent, "no key after this one")),
        }
    }

    fn prog_lookup(&self, key: &[u8], _cpu: usize) -> MapResult<ProgLookup> {
        if !matches!(self.map_type(), MapType::Devmap | MapType::DevmapHash) {
            return Err(MapError::new(
                ErrorCode::Enotsupp,
                format!(
                    "lookup of a {} from a program is not supported",
                    self.map_type().name()
                ),
            ));
        }
        let k = index_of(key);
        Ok(match self.read().by_key.get(&k) {
            // The slot lies in `values`, the map's value area (read-only to programs: devmaps
            // are BPF_F_RDONLY_PROG).
            Some(slot) => ProgLookup::Value(self.values.addr(*slot as usize * 8)),
            None => ProgLookup::Null,
        })
    }

    fn value_area(&self) -> Option<(u64, u64)> {
        Some((self.values.addr(0), self.values.len() as u64))
    }

    fn len(&self) -> usize {
        self.read().by_key.len()
    }
}
