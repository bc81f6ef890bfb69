//! Map types, creation flags and definitions, with the kernel's numbers (`linux/bpf.h`) and the
//! creation-time checks of the kernel's `map_alloc_check` for each type.

use crate::error::ErrorCode;

use super::{MapError, MapResult};

/// Map types, numbered as `enum bpf_map_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum MapType {
    Hash = 1,
    Array = 2,
    ProgArray = 3,
    PerfEventArray = 4,
    PercpuHash = 5,
    PercpuArray = 6,
    StackTrace = 7,
    LruHash = 9,
    LruPercpuHash = 10,
    LpmTrie = 11,
    ArrayOfMaps = 12,
    HashOfMaps = 13,
    Devmap = 14,
    Cpumap = 16,
    Xskmap = 17,
    Queue = 22,
    Stack = 23,
    DevmapHash = 25,
    Ringbuf = 27,
    BloomFilter = 30,
}

impl MapType {
    pub fn from_u32(v: u32) -> Option<MapType> {
        Some(match v {
            1 => MapType::Hash,
            2 => MapType::Array,
            3 => MapType::ProgArray,
            4 => MapType::PerfEventArray,
            5 => MapType::PercpuHash,
            6 => MapType::PercpuArray,
            7 => MapType::StackTrace,
            9 => MapType::LruHash,
            10 => MapType::LruPercpuHash,
            11 => MapType::LpmTrie,
            12 => MapType::ArrayOfMaps,
            13 => MapType::HashOfMaps,
            14 => MapType::Devmap,
            16 => MapType::Cpumap,
            17 => MapType::Xskmap,
            22 => MapType::Queue,
            23 => MapType::Stack,
            25 => MapType::DevmapHash,
            27 => MapType::Ringbuf,
            30 => MapType::BloomFilter,
            _ => return None,
        })
    }

    /// The type for a kernel map type number: ENOTSUPP naming the type for the kernel's types this
    /// runtime does not have (devmap, sockmap, ...), EINVAL for a number that is no map type.
    pub fn from_kernel(v: u32) -> MapResult<MapType> {
        MapType::from_u32(v).ok_or_else(|| match KERNEL_MAP_TYPES.get(v as usize) {
            Some(name) if v != 0 => MapError::new(
                ErrorCode::Enotsupp,
                format!("map type {v} ({name}) is not supported by this runtime"),
            ),
            _ => MapError::new(ErrorCode::Einval, format!("unknown map type {v}")),
        })
    }

    /// The name bpftool and libbpf use (`BPF_MAP_TYPE_` suffix, lower case).
    pub fn from_name(name: &str) -> Option<MapType> {
        ALL.iter().copied().find(|t| t.name() == name)
    }

    pub const fn name(self) -> &'static str {
        match self {
            MapType::Hash => "hash",
            MapType::Array => "array",
            MapType::ProgArray => "prog_array",
            MapType::PerfEventArray => "perf_event_array",
            MapType::StackTrace => "stack_trace",
            MapType::PercpuHash => "percpu_hash",
            MapType::PercpuArray => "percpu_array",
            MapType::LruHash => "lru_hash",
            MapType::LruPercpuHash => "lru_percpu_hash",
            MapType::LpmTrie => "lpm_trie",
            MapType::ArrayOfMaps => "array_of_maps",
            MapType::HashOfMaps => "hash_of_maps",
            MapType::Devmap => "devmap",
            MapType::Cpumap => "cpumap",
            MapType::Xskmap => "xskmap",
            MapType::Queue => "queue",
            MapType::Stack => "stack",
            MapType::DevmapHash => "devmap_hash",
            MapType::Ringbuf => "ringbuf",
            MapType::BloomFilter => "bloom_filter",
        }
    }

    pub const fn is_percpu(self) -> bool {
        matches!(
            self,
            MapType::PercpuArray | MapType::PercpuHash | MapType::LruPercpuHash
        )
    }
}

/// Every kernel map type by number (`enum bpf_map_type`, Linux 6.18), supported here or not.
const KERNEL_MAP_TYPES: [&str; 34] = [
    "unspec",
    "hash",
    "array",
    "prog_array",
    "perf_event_array",
    "percpu_hash",
    "percpu_array",
    "stack_trace",
    "cgroup_array",
    "lru_hash",
    "lru_percpu_hash",
    "lpm_trie",
    "array_of_maps",
    "hash_of_maps",
    "devmap",
    "sockmap",
    "cpumap",
    "xskmap",
    "sockhash",
    "cgroup_storage",
    "reuseport_sockarray",
    "percpu_cgroup_storage",
    "queue",
    "stack",
    "sk_storage",
    "devmap_hash",
    "struct_ops",
    "ringbuf",
    "inode_storage",
    "task_storage",
    "bloom_filter",
    "user_ringbuf",
    "cgrp_storage",
    "arena",
];

/// Every supported type.
pub const ALL: [MapType; 20] = [
    MapType::Hash,
    MapType::Array,
    MapType::ProgArray,
    MapType::PerfEventArray,
    MapType::PercpuHash,
    MapType::PercpuArray,
    MapType::StackTrace,
    MapType::LruHash,
    MapType::LruPercpuHash,
    MapType::LpmTrie,
    MapType::ArrayOfMaps,
    MapType::HashOfMaps,
    MapType::Devmap,
    MapType::Cpumap,
    MapType::Xskmap,
    MapType::Queue,
    MapType::Stack,
    MapType::DevmapHash,
    MapType::Ringbuf,
    MapType::BloomFilter,
];

/// Creation flags (`map_flags`) and element flags (`flags` of update), as in `linux/bpf.h`.
pub mod flags {
    pub const BPF_ANY: u64 = 0;
    pub const BPF_NOEXIST: u64 = 1;
    pub const BPF_EXIST: u64 = 2;
    pub const BPF_F_LOCK: u64 = 4;

    pub const BPF_F_NO_PREALLOC: u32 = 1 << 0;
    pub const BPF_F_NO_COMMON_LRU: u32 = 1 << 1;
    pub const BPF_F_NUMA_NODE: u32 = 1 << 2;
    pub const BPF_F_RDONLY: u32 = 1 << 3;
    pub const BPF_F_WRONLY: u32 = 1 << 4;
    pub const BPF_F_ZERO_SEED: u32 = 1 << 6;
    pub const BPF_F_RDONLY_PROG: u32 = 1 << 7;
    pub const BPF_F_WRONLY_PROG: u32 = 1 << 8;
    pub const BPF_F_MMAPABLE: u32 = 1 << 10;
    pub const BPF_F_PRESERVE_ELEMS: u32 = 1 << 11;
    pub const BPF_F_INNER_MAP: u32 = 1 << 12;

    /// The access flags every type accepts (`BPF_F_ACCESS_MASK` in the kernel).
    pub const ACCESS_MASK: u32 =
        BPF_F_RDONLY | BPF_F_RDONLY_PROG | BPF_F_WRONLY | BPF_F_WRONLY_PROG;
}

use flags::*;

/// Largest key the kernel's hash maps accept (`MAX_BPF_STACK`: keys come from the stack).
pub const MAX_KEY_SIZE: u32 = 512;
/// Our cap on one value (the kernel's is `KMALLOC_MAX_SIZE`, host dependent): 1 MiB.
pub const MAX_VALUE_SIZE: u32 = 1 << 20;
/// Our cap on the storage one map may preallocate (arrays, ring buffers): 1 GiB.
pub const MAX_MAP_BYTES: u64 = 1 << 30;
/// LPM trie: most data bytes after the 4-byte prefix length (`LPM_DATA_SIZE_MAX`).
pub const LPM_DATA_SIZE_MAX: u32 = 256;
/// LPM trie: largest value (`LPM_VAL_SIZE_MAX` = KMALLOC_MAX_SIZE - MAX_BPF_STACK - overhead; we
/// use our value cap).
pub const LPM_VAL_SIZE_MAX: u32 = MAX_VALUE_SIZE;
/// Ring buffers must be a power-of-two multiple of the page size.
pub const PAGE_SIZE: u32 = 4096;
/// Estimated bytes of an index entry besides its key (a share of a tree node, a key allocation):
/// `MapDef::memory_bound` counts it per element of keyed maps.
pub const INDEX_ENTRY_BYTES: u64 = 64;

/// A map definition, as `BPF_MAP_CREATE` receives it (and as ELF `.maps` sections describe it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapDef {
    pub map_type: MapType,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub flags: u32,
    /// Bloom filter: number of hash functions in bits 0-3 (0 means 5).
    pub map_extra: u64,
    pub name: String,
    /// Map-in-map: the definition every inner map must match (the kernel's `inner_map_fd`).
    pub inner: Option<Box<MapDef>>,
    /// Byte offset of the value's `struct bpf_spin_lock` (from BTF), if it has one: copies from
    /// user space leave that word alone, and `BPF_F_LOCK` takes it (see `lock`).
    pub spin_lock_off: Option<u32>,
}

impl MapDef {
    pub fn new(map_type: MapType, key_size: u32, value_size: u32, max_entries: u32) -> Self {
        MapDef {
            map_type,
            key_size,
            value_size,
            max_entries,
            flags: 0,
            map_extra: 0,
            name: String::new(),
            inner: None,
            spin_lock_off: None,
        }
    }

    /// The value has a `struct bpf_spin_lock` at byte `off`.
    pub fn with_spin_lock(mut self, off: u32) -> Self {
        self.spin_lock_off = Some(off);
        self
    }

    pub fn with_flags(mut self, flags: u32) -> Self {
        self.flags = flags;
        self
    }

    pub fn with_name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    pub fn with_inner(mut self, inner: MapDef) -> Self {
        self.inner = Some(Box::new(inner));
        self
    }

    pub fn with_map_extra(mut self, extra: u64) -> Self {
        self.map_extra = extra;
        self
    }

    /// Value bytes rounded up to 8: the stride of arrays and per-CPU slots.
    pub fn value_stride(&self) -> usize {
        (self.value_size as usize).div_ceil(8) * 8
    }

    /// The most memory the map's elements can take once it is full: its values (allocated up front
    /// or not), and for keyed types an estimate of their index (`INDEX_ENTRY_BYTES` per entry
    /// besides the key). What a `Collection` counts against its memory limit, computed from the
    /// definition alone so that a collection can refuse a map before creating it.
    pub fn memory_bound(&self) -> u64 {
        use MapType::*;
        let max = self.max_entries as u64;
        let stride = self.value_stride() as u64;
        let cpus = if self.map_type.is_percpu() {
            super::percpu::possible_cpus() as u64
        } else {
            1
        };
        let key = (self.key_size as u64).div_ceil(8) * 8 + INDEX_ENTRY_BYTES;
        let per_entry = match self.map_type {
            Array | PercpuArray => cpus * stride,
            Hash | PercpuHash => cpus * stride + key,
            // The LRU's age index holds a second copy of each key.
            LruHash | LruPercpuHash => cpus * stride + 2 * key,
            // The trie's sort key has a byte per prefix bit.
            LpmTrie => stride + key + (self.key_size as u64).saturating_sub(4) * 8 + 1,
            ProgArray | ArrayOfMaps | HashOfMaps | PerfEventArray => key,
            // An 8-byte slot per entry, and devmap_hash's index of keys.
            Devmap | Cpumap | Xskmap => 8 + INDEX_ENTRY_BYTES,
            DevmapHash => 8 + key,
            // A stored stack (its ips and a header) per entry, and a bucket pointer per bucket.
            StackTrace => {
                return max.saturating_mul(stride + 16)
                    + (self.max_entries as u64).next_power_of_two() * 8
            }
            Queue | Stack => stride + INDEX_ENTRY_BYTES,
            BloomFilter => return super::bloom::filter_bits(self) / 8,
            Ringbuf => return 2 * max,
        };
        max.saturating_mul(per_entry)
    }

    fn fail(&self, message: String) -> MapError {
        MapError::new(
            ErrorCode::Einval,
            format!("{} map {:?}: {message}", self.map_type.name(), self.name),
        )
    }

    /// The kernel's creation checks for this type (EINVAL), plus our size caps (E2BIG).
    pub fn validate(&self) -> MapResult<()> {
        use MapType::*;
        let t = self.map_type;
        let allowed = match t {
            Array => {
                BPF_F_NUMA_NODE
                    | BPF_F_MMAPABLE
                    | ACCESS_MASK
                    | BPF_F_PRESERVE_ELEMS
                    | BPF_F_INNER_MAP
            }
            PercpuArray | ProgArray | ArrayOfMaps => {
                BPF_F_NUMA_NODE | ACCESS_MASK | BPF_F_PRESERVE_ELEMS | BPF_F_INNER_MAP
            }
            Hash | PercpuHash | HashOfMaps => {
                BPF_F_NO_PREALLOC | BPF_F_NUMA_NODE | ACCESS_MASK | BPF_F_ZERO_SEED
            }
            LruHash | LruPercpuHash => {
                BPF_F_NO_COMMON_LRU | BPF_F_NUMA_NODE | ACCESS_MASK | BPF_F_ZERO_SEED
            }
            LpmTrie => BPF_F_NO_PREALLOC | BPF_F_NUMA_NODE | ACCESS_MASK,
            Queue | Stack => BPF_F_NUMA_NODE | ACCESS_MASK,
            BloomFilter => BPF_F_NUMA_NODE | BPF_F_ZERO_SEED | ACCESS_MASK,
            Ringbuf => BPF_F_NUMA_NODE,
            // fd_array_map_alloc_check: no program access flags.
            PerfEventArray => {
                BPF_F_NUMA_NODE
                    | BPF_F_RDONLY
                    | BPF_F_WRONLY
                    | BPF_F_PRESERVE_ELEMS
                    | BPF_F_INNER_MAP
            }
            // STACK_CREATE_FLAG_MASK without BPF_F_STACK_BUILD_ID, refused below (ENOTSUPP).
            StackTrace => {
                BPF_F_NUMA_NODE
                    | BPF_F_RDONLY
                    | BPF_F_WRONLY
                    | super::stack_trace::BPF_F_STACK_BUILD_ID
            }
            // DEV_CREATE_FLAG_MASK (devmap.c) and xskmap's: create forces BPF_F_RDONLY_PROG
            // on devmaps afterwards.
            Devmap | DevmapHash | Xskmap => BPF_F_NUMA_NODE | BPF_F_RDONLY | BPF_F_WRONLY,
            Cpumap => BPF_F_NUMA_NODE,
        };
        if self.flags & !allowed != 0 {
            return Err(self.fail(format!(
                "flags 0x{:x} include 0x{:x}, which this map type does not accept",
                self.flags,
                self.flags & !allowed
            )));
        }
        if self.flags & BPF_F_RDONLY != 0 && self.flags & BPF_F_WRONLY != 0 {
            return Err(self.fail("BPF_F_RDONLY and BPF_F_WRONLY exclude each other".into()));
        }
        if self.flags & BPF_F_RDONLY_PROG != 0 && self.flags & BPF_F_WRONLY_PROG != 0 {
            return Err(
                self.fail("BPF_F_RDONLY_PROG and BPF_F_WRONLY_PROG exclude each other".into())
            );
        }
        if self.map_extra != 0 && t != BloomFilter {
            return Err(self.fail("map_extra is only for bloom filters".into()));
        }
        if self.inner.is_some() != matches!(t, ArrayOfMaps | HashOfMaps) {
            return Err(self.fail(if self.inner.is_some() {
                "only map-in-map types take an inner map definition".into()
            } else {
                "a map-in-map needs an inner map definition".into()
            }));
        }
        if self.max_entries == 0 {
            return Err(self.fail("max_entries must not be zero".into()));
        }
        let (k, v) = (self.key_size, self.value_size);
        match t {
            Array | PercpuArray => {
                if k != 4 || v == 0 {
                    return Err(self.fail(format!(
                        "needs key_size 4 and value_size > 0, got key_size {k}, value_size {v}"
                    )));
                }
            }
            ProgArray | ArrayOfMaps | PerfEventArray => {
                if k != 4 || v != 4 {
                    return Err(self.fail(format!(
                        "needs key_size 4 and value_size 4, got key_size {k}, value_size {v}"
                    )));
                }
            }
            Hash | PercpuHash | LruHash | LruPercpuHash | HashOfMaps => {
                if k == 0 || v == 0 || (t == HashOfMaps && v != 4) {
                    return Err(self.fail(format!(
                        "needs key_size > 0 and value_size {}, got key_size {k}, value_size {v}",
                        if t == HashOfMaps { "4" } else { "> 0" }
                    )));
                }
                if k > MAX_KEY_SIZE {
                    return Err(MapError::new(
                        ErrorCode::E2big,
                        format!("key_size {k} exceeds {MAX_KEY_SIZE}"),
                    ));
                }
            }
            LpmTrie => {
                if k <= 4 || k > 4 + LPM_DATA_SIZE_MAX || v == 0 || v > LPM_VAL_SIZE_MAX {
                    return Err(self.fail(format!(
                        "needs key_size 5..={} ({{u32 prefixlen; u8 data[]}}) and value_size > 0, \
                         got key_size {k}, value_size {v}",
                        4 + LPM_DATA_SIZE_MAX
                    )));
                }
                if self.flags & BPF_F_NO_PREALLOC == 0 {
                    return Err(
                        self.fail("lpm_trie maps must be created with BPF_F_NO_PREALLOC".into())
                    );
                }
            }
            Queue | Stack | BloomFilter => {
                if k != 0 || v == 0 {
                    return Err(self.fail(format!(
                        "needs key_size 0 and value_size > 0, got key_size {k}, value_size {v}"
                    )));
                }
                if t == BloomFilter && self.map_extra & !0xf != 0 {
                    return Err(self.fail(format!(
                        "map_extra 0x{:x}: only bits 0-3 (number of hash functions) are defined",
                        self.map_extra
                    )));
                }
            }
            StackTrace => {
                use super::stack_trace::{BPF_F_STACK_BUILD_ID, PERF_MAX_STACK};
                if k != 4 || v < 8 || !v.is_multiple_of(8) {
                    return Err(self.fail(format!(
                        "needs key_size 4 and value_size a multiple of 8, got key_size {k}, \
                         value_size {v}"
                    )));
                }
                if self.flags & BPF_F_STACK_BUILD_ID != 0 {
                    return Err(MapError::new(
                        ErrorCode::Enotsupp,
                        "BPF_F_STACK_BUILD_ID: this runtime has no build ids to store",
                    ));
                }
                if v / 8 > PERF_MAX_STACK {
                    return Err(self.fail(format!(
                        "value_size {v} holds more than {PERF_MAX_STACK} frames \
                         (sysctl_perf_event_max_stack)"
                    )));
                }
                if self.max_entries > 1 << 31 {
                    return Err(MapError::new(
                        ErrorCode::E2big,
                        format!("max_entries {} exceeds 2^31", self.max_entries),
                    ));
                }
            }
            Devmap | DevmapHash | Cpumap | Xskmap => {
                // {u32 ifindex or qsize; u32 prog fd} or the first field alone; xskmap a u32.
                let values: &[u32] = if t == Xskmap { &[4] } else { &[4, 8] };
                if k != 4 || !values.contains(&v) {
                    return Err(self.fail(format!(
                        "needs key_size 4 and value_size {}, got key_size {k}, value_size {v}",
                        if t == Xskmap { "4" } else { "4 or 8" }
                    )));
                }
                if t == Cpumap && self.max_entries > super::redirect::NR_CPUS {
                    return Err(MapError::new(
                        ErrorCode::E2big,
                        format!(
                            "cpumap max_entries {} is over the kernel's NR_CPUS ({})",
                            self.max_entries,
                            super::redirect::NR_CPUS
                        ),
                    ));
                }
            }
            Ringbuf => {
                if k != 0 || v != 0 {
                    return Err(self.fail(format!(
                        "needs key_size 0 and value_size 0, got key_size {k}, value_size {v}"
                    )));
                }
                let n = self.max_entries;
                if !n.is_power_of_two() || !n.is_multiple_of(PAGE_SIZE) {
                    return Err(self.fail(format!(
                        "max_entries {n} must be a power of two and a multiple of {PAGE_SIZE}"
                    )));
                }
            }
        }
        if v > MAX_VALUE_SIZE {
            return Err(MapError::new(
                ErrorCode::E2big,
                format!("value_size {v} exceeds the limit of {MAX_VALUE_SIZE}"),
            ));
        }
        if let Some(off) = self.spin_lock_off {
            // The kernel's map_check_btf: only these types may hold a bpf_spin_lock.
            if !matches!(t, Hash | Array) {
                return Err(MapError::new(
                    ErrorCode::Enotsupp,
                    format!("{} maps cannot hold a bpf_spin_lock", t.name()),
                ));
            }
            if !off.is_multiple_of(4) || off as u64 + 4 > v as u64 {
                return Err(self.fail(format!(
                    "spin lock offset {off} must be 4-aligned and inside the {v}-byte value"
                )));
            }
        }
        if let Some(inner) = &self.inner {
            if matches!(inner.map_type, ArrayOfMaps | HashOfMaps | ProgArray) {
                return Err(self.fail(format!(
                    "inner maps may not be {} maps",
                    inner.map_type.name()
                )));
            }
            inner.validate()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod kernel_numbers {
    use super::*;

    #[test]
    fn kernel_types_we_lack_are_enotsupp_by_name_and_non_types_einval() {
        assert_eq!(MapType::from_kernel(2).unwrap(), MapType::Array);
        let e = MapType::from_kernel(15).unwrap_err();
        assert_eq!(e.code, ErrorCode::Enotsupp);
        assert!(e.message.contains("sockmap"), "{}", e.message);
        assert_eq!(MapType::from_kernel(0).unwrap_err().code, ErrorCode::Einval);
        assert_eq!(
            MapType::from_kernel(99).unwrap_err().code,
            ErrorCode::Einval
        );
        // Every type this runtime has keeps its kernel name.
        for t in ALL {
            assert_eq!(KERNEL_MAP_TYPES[t as usize], t.name());
        }
    }
}
