//! `BPF_MAP_TYPE_BLOOM_FILTER` (30): keyless; push adds a value, peek tells whether a value may
//! have been added (0) or certainly was not (ENOENT). No removal, no iteration.
//!
//! Sizing follows the kernel's rule: `k` hash functions (`map_extra` bits 0-3, 0 meaning 5) and
//! `max_entries * k / ln 2` bits rounded up to a power of two, which gives about a 1/2^k false
//! positive rate at `max_entries` values. The hash is our own (FNV-1a 64 with double hashing), so
//! the bit pattern differs from the kernel's jhash, but membership answers have the same
//! guarantee: never a false negative. Bits are set with atomic OR, so pushes need no lock.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::ErrorCode;

use super::def::MAX_MAP_BYTES;
use super::storage::zeroed_atomics;
use super::{Map, MapCommon, MapDef, MapError, MapResult};

pub struct BloomFilter {
    common: MapCommon,
    hashes: u32,
    /// Bit count minus one (a power of two minus one).
    mask: u64,
    bits: Box<[AtomicU64]>,
}

fn fnv1a(seed: u64, data: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for &b in data {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // Final avalanche (from splitmix64) so that low bits depend on every input byte.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Hash functions of the filter: `map_extra` bits 0-3, 0 meaning 5.
fn hash_count(def: &MapDef) -> u32 {
    match def.map_extra & 0xf {
        0 => 5,
        k => k as u32,
    }
}

/// Bits of the filter: max_entries * k / ln 2, computed as * 7 / 5 like the kernel, at least 64,
/// rounded up to a power of two.
pub fn filter_bits(def: &MapDef) -> u64 {
    (def.max_entries as u64 * hash_count(def) as u64 * 7)
        .div_ceil(5)
        .max(64)
        .next_power_of_two()
}

impl BloomFilter {
    pub fn new(def: MapDef) -> MapResult<BloomFilter> {
        let hashes = hash_count(&def);
        let nbits = filter_bits(&def);
        if nbits / 8 > MAX_MAP_BYTES {
            return Err(MapError::new(
                ErrorCode::E2big,
                format!(
                    "a bloom filter of {nbits} bits exceeds the limit of {MAX_MAP_BYTES} bytes"
                ),
            ));
        }
        Ok(BloomFilter {
            common: MapCommon::new(def),
            hashes,
            mask: nbits - 1,
            bits: zeroed_atomics((nbits / 64) as usize).ok_or_else(|| {
                MapError::new(
                    ErrorCode::E2big,
                    format!("cannot allocate a bloom filter of {nbits} bits"),
                )
            })?,
        })
    }

    /// Bit positions of `value`: h1 + i * h2 (Kirsch-Mitzenmacher double hashing).
    fn positions(&self, value: &[u8]) -> impl Iterator<Item = u64> {
        let h1 = fnv1a(0, value);
        let h2 = fnv1a(0x9e37_79b9_7f4a_7c15, value) | 1;
        let mask = self.mask;
        (0..self.hashes as u64).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) & mask)
    }

    /// Number of bits in the filter.
    pub fn bit_count(&self) -> u64 {
        self.mask + 1
    }

    pub fn hash_count(&self) -> u32 {
        self.hashes
    }
}

impl Map for BloomFilter {
    map_identity!();

    fn push_elem(&self, value: &[u8], flags: u64) -> MapResult<()> {
        if flags != 0 {
            return Err(MapError::new(
                ErrorCode::Einval,
                format!("bloom filter push flags must be BPF_ANY (0), got 0x{flags:x}"),
            ));
        }
        for p in self.positions(value) {
            self.bits[(p / 64) as usize].fetch_or(1 << (p % 64), Ordering::Relaxed);
        }
        Ok(())
    }

    fn contains_elem(&self, value: &[u8]) -> MapResult<()> {
        let all = self
            .positions(value)
            .all(|p| self.bits[(p / 64) as usize].load(Ordering::Relaxed) & (1 << (p % 64)) != 0);
        if all {
            Ok(())
        } else {
            Err(MapError::new(
                ErrorCode::Enoent,
                "the value is not in the filter",
            ))
        }
    }

    fn len(&self) -> usize {
        0
    }
}
