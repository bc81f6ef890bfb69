//! `BPF_MAP_TYPE_LPM_TRIE` (11): longest-prefix match. Keys have the kernel's layout
//! `{ u32 prefixlen (host order); u8 data[key_size - 4] (network order, most significant bit first) }`.
//! Maps must be created with `BPF_F_NO_PREALLOC`. Only the first `prefixlen` bits of `data` matter
//! for matching, but the stored key keeps the bytes it was last updated with (the kernel copies the
//! whole key into its node), and `next_key` returns them.
//!
//! - update: `prefixlen` above `8 * (key_size - 4)` is EINVAL; a new prefix in a full map is ENOSPC
//!   (the trie's errno, unlike hash maps' E2BIG); `BPF_NOEXIST`/`BPF_EXIST` as for hash maps.
//! - lookup (user space and programs): the entry with the longest prefix no longer than the key's
//!   `prefixlen` whose bits match the key's data; ENOENT / NULL when none does (also when the key's
//!   `prefixlen` exceeds the data, as in the kernel).
//! - delete: exactly that prefix, else ENOENT.
//! - next_key: the kernel trie's post-order: entries ordered by their bits (0 before 1), a prefix
//!   after every longer prefix it contains (e.g. 192.168.0.0/24, 192.168.1.0/24, 192.168.0.0/16).
//!   A key that is not in the trie restarts from the first entry, as in the kernel.
//!
//! Storage: a `BTreeMap` whose key is the post-order sort key (one byte per prefix bit, then a
//! terminator larger than any bit), so iteration is in order and exact lookups are direct; the
//! longest-prefix lookup probes the prefix lengths present, longest first: for keys of at most 16
//! data bytes (IPv4, IPv6) in an open-addressing table of the prefixes as (length, bits), one
//! probe per length present (`Short`), as routing tables of a few prefix lengths want; for longer
//! keys in the `BTreeMap`. Values live in a
//! preallocated pool of `max_entries` slots, as hash maps' do (`pool`): the kernel allocates trie
//! nodes on demand (`BPF_F_NO_PREALLOC`) and frees them after a grace period, which here would mean
//! keeping each value a run looked up alive per run; a pool bounds the memory by the map's size.

use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::ops::Bound;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::ErrorCode;

use super::array::check_update_flags;
use super::def::flags;
use super::pool::{FreeSlots, ValuePool};
use super::{Map, MapCommon, MapDef, MapError, MapResult, ProgLookup};

struct Entry {
    /// The key bytes as last written (prefixlen + data).
    key: Vec<u8>,
    /// The value's slot in the pool.
    slot: u32,
}

#[derive(Default)]
struct Inner {
    /// Post-order sort key -> entry.
    entries: BTreeMap<Vec<u8>, Entry>,
    /// How many entries have each prefix length.
    lengths: BTreeMap<u32, usize>,
    free: FreeSlots,
    /// Keys of at most 16 data bytes: the prefixes and their lengths present.
    short: Short,
}

/// The index of a trie whose keys have at most 16 data bytes: each prefix as its length and its
/// first `length` bits (as a u128, the data's first byte most significant, the rest zero), in an
/// open-addressing table of its own (linear probing, at most half full, deletion by shifting the
/// run back, so no tombstones), and the lengths present, longest first. A lookup masks the key's
/// bits to each length in turn and probes the table: no allocation, one probe per length present,
/// each a hash of two words and, mostly, one slot compared (a general hash table's probe, with its
/// hasher over the tuple and its control bytes, took about twice the instructions).
#[derive(Default)]
struct Short {
    /// A power of two of slots (none before the first insert).
    slots: Vec<ShortSlot>,
    /// Prefixes held.
    count: usize,
    /// The hash's key, per map from the standard library's random state, so that the prefixes
    /// user space inserts cannot be chosen to collide without knowing it (odd).
    seed: Seed,
    longest_first: Vec<u32>,
}

/// One slot of `Short`: a prefix and its value's slot; `len == EMPTY` for a free slot.
#[derive(Clone, Copy)]
struct ShortSlot {
    bits: u128,
    len: u32,
    slot: u32,
}

/// `ShortSlot::len` of a free slot (no prefix is that long).
const EMPTY: u32 = u32::MAX;

const FREE: ShortSlot = ShortSlot {
    bits: 0,
    len: EMPTY,
    slot: 0,
};

/// The data's bits as a u128, the first byte most significant (`data` has at most 16 bytes).
fn bits(data: &[u8]) -> u128 {
    // IPv4 and IPv6 keys in a load or two (a copy of a length known only at run time is a call).
    match data.len() {
        4 => (u32::from_be_bytes(data.try_into().expect("4 bytes")) as u128) << 96,
        16 => u128::from_be_bytes(data.try_into().expect("16 bytes")),
        n => {
            let mut b = [0u8; 16];
            b[..n].copy_from_slice(data);
            u128::from_be_bytes(b)
        }
    }
}

/// `bits` with only its first `len` bits kept.
fn masked(bits: u128, len: u32) -> u128 {
    match len {
        0 => 0,
        l => bits & (u128::MAX << (128 - l)),
    }
}

/// The key of `Short`'s multiply-rotate hash (a few instructions, where SipHash takes about a
/// hundred per probe).
struct Seed(u64);

impl Default for Seed {
    fn default() -> Self {
        Seed(std::collections::hash_map::RandomState::new().hash_one(0u64) | 1)
    }
}

impl Short {
    /// Most data bytes a key may have to be indexed here.
    const MAX_DATA: usize = 16;

    /// The slot where the probe for `len`/`bits` starts (`slots` is not empty).
    #[inline(always)]
    fn home(&self, len: u32, bits: u128) -> usize {
        const K: u64 = 0x9e37_79b9_7f4a_7c15;
        let h = ((bits >> 64) as u64 ^ self.seed.0).wrapping_mul(K);
        let h = (h.rotate_left(26) ^ bits as u64 ^ len as u64).wrapping_mul(K);
        // The high bits, the best mixed.
        (h >> 32) as usize & (self.slots.len() - 1)
    }

    /// Where `len`/`bits` is held, if it is.
    #[inline(always)]
    fn find(&self, len: u32, bits: u128) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(len, bits);
        loop {
            let s = &self.slots[i];
            if s.len == len && s.bits == bits {
                return Some(i);
            }
            if s.len == EMPTY {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    /// Puts `len`/`bits` -> `slot` in a table known to have room and not to hold it.
    fn place(&mut self, len: u32, bits: u128, slot: u32) {
        let mask = self.slots.len() - 1;
        let mut i = self.home(len, bits);
        while self.slots[i].len != EMPTY {
            i = (i + 1) & mask;
        }
        self.slots[i] = ShortSlot { bits, len, slot };
    }

    fn insert(&mut self, plen: u32, data: &[u8], slot: u32) {
        let b = masked(bits(data), plen);
        if let Some(i) = self.find(plen, b) {
            self.slots[i].slot = slot;
            return;
        }
        // At most half full: a miss ends at a free slot after a probe or two.
        if 2 * (self.count + 1) > self.slots.len() {
            let size = (2 * self.slots.len()).max(16);
            let old = std::mem::replace(&mut self.slots, vec![FREE; size]);
            for s in old.into_iter().filter(|s| s.len != EMPTY) {
                self.place(s.len, s.bits, s.slot);
            }
        }
        self.place(plen, b, slot);
        self.count += 1;
        if let Err(at) = self.longest_first.binary_search_by(|l| plen.cmp(l)) {
            self.longest_first.insert(at, plen);
        }
    }

    /// Removes the prefix; `last`: it was the last of its length.
    fn remove(&mut self, plen: u32, data: &[u8], last: bool) {
        if let Some(mut hole) = self.find(plen, masked(bits(data), plen)) {
            self.count -= 1;
            // Linear probing's deletion: each later slot of the run whose probe starts at or
            // before the hole (cyclically) moves into it, and leaves the next hole.
            let mask = self.slots.len() - 1;
            let mut j = hole;
            loop {
                j = (j + 1) & mask;
                let s = self.slots[j];
                if s.len == EMPTY {
                    break;
                }
                let home = self.home(s.len, s.bits);
                // Distances from the slot's home: it may move back when the hole is no farther
                // from its home than it is.
                if (hole.wrapping_sub(home) & mask) < (j.wrapping_sub(home) & mask) {
                    self.slots[hole] = s;
                    hole = j;
                }
            }
            self.slots[hole] = FREE;
        }
        if last {
            self.longest_first.retain(|&l| l != plen);
        }
    }

    /// The slot of the longest prefix of at most `plen` bits that `data` begins with.
    #[inline]
    fn longest_match(&self, plen: u32, data: &[u8]) -> Option<u32> {
        let b = bits(data);
        (self.longest_first.iter())
            .skip_while(|&&l| l > plen)
            .find_map(|&l| self.find(l, masked(b, l)).map(|i| self.slots[i].slot))
    }
}

pub struct LpmTrie {
    common: MapCommon,
    pool: ValuePool,
    inner: RwLock<Inner>,
}

/// Each byte's bits as eight bytes of 0 or 1, most significant bit first (in memory order).
const SPREAD: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut b = 0;
    while b < 256 {
        let mut i = 0;
        while i < 8 {
            t[b] |= (((b >> (7 - i)) & 1) as u64) << (8 * i);
            i += 1;
        }
        b += 1;
    }
    t
};

/// Bit `i` (0 = most significant bit of byte 0) of `data`.
fn bit(data: &[u8], i: u32) -> u8 {
    (data[(i / 8) as usize] >> (7 - i % 8)) & 1
}

/// The sort key of the prefix `data/plen`: its bits, then 2. Comparing sort keys orders two
/// prefixes by their first differing bit, and a prefix after any longer one that extends it.
fn sort_key(plen: u32, data: &[u8]) -> Vec<u8> {
    let mut k: Vec<u8> = (0..plen).map(|i| bit(data, i)).collect();
    k.push(2);
    k
}

impl LpmTrie {
    pub fn new(def: MapDef) -> MapResult<LpmTrie> {
        let pool = ValuePool::new(
            def.max_entries,
            def.value_stride(),
            &format!("lpm_trie map {:?}", def.name),
        )?;
        Ok(LpmTrie {
            common: MapCommon::new(def),
            pool,
            inner: RwLock::new(Inner::default()),
        })
    }

    fn read_value(&self, slot: u32) -> Vec<u8> {
        self.pool
            .words()
            .read_vec(self.pool.offset(slot), self.common.def.value_size as usize)
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Longest prefix length the data can hold.
    pub fn max_prefixlen(&self) -> u32 {
        (self.common.def.key_size - 4) * 8
    }

    /// Splits a key into prefix length and data, rejecting a prefix longer than the data.
    fn parse<'k>(&self, key: &'k [u8]) -> MapResult<(u32, &'k [u8])> {
        let plen = u32::from_ne_bytes(key[..4].try_into().expect("4-byte prefixlen"));
        if plen > self.max_prefixlen() {
            return Err(MapError::new(
                ErrorCode::Einval,
                format!(
                    "prefixlen {plen} exceeds the {} bits of the key data",
                    self.max_prefixlen()
                ),
            ));
        }
        Ok((plen, &key[4..]))
    }

    /// The slot of the longest matching prefix.
    #[inline]
    fn longest_match(inner: &Inner, max_prefixlen: u32, key: &[u8]) -> Option<u32> {
        let plen = u32::from_ne_bytes(key[..4].try_into().expect("4-byte prefixlen"));
        if plen > max_prefixlen {
            // The kernel finds nothing for such a key (observed: bpftool lookup gives ENOENT).
            return None;
        }
        let data = &key[4..];
        if data.len() <= Short::MAX_DATA {
            return inner.short.longest_match(plen, data);
        }
        LpmTrie::longest_match_long(inner, plen, data)
    }

    /// `longest_match` for keys of more than 16 data bytes, out of line: its buffers would make
    /// every lookup of a short key save registers and open a frame of 264 bytes.
    #[inline(never)]
    fn longest_match_long(inner: &Inner, plen: u32, data: &[u8]) -> Option<u32> {
        // The key's bits as sort-key bytes, once, in a buffer on the stack (a lookup is on the hot
        // path of programs: no allocation); each length tried ends its prefix with the terminator
        // in place, and puts the bit back after.
        let mut lengths = inner
            .lengths
            .range(..=plen)
            .rev()
            .map(|(&len, _)| len as usize);
        let longest = lengths.next()?;
        // IPv4 and IPv6 keys (128 bits at most) on the stack; longer ones in a vector. Whole
        // bytes of the data are spread, eight bits at a time.
        let bytes = longest.div_ceil(8);
        let mut small = [0u8; 136];
        let mut large = Vec::new();
        let k: &mut [u8] = if 8 * bytes < small.len() {
            &mut small
        } else {
            large.resize(8 * bytes + 1, 0);
            &mut large
        };
        for (out, &byte) in k.chunks_exact_mut(8).zip(&data[..bytes]) {
            out.copy_from_slice(&SPREAD[byte as usize].to_le_bytes());
        }
        std::iter::once(longest)
            .chain(lengths)
            .find_map(|len| {
                let bit = std::mem::replace(&mut k[len], 2);
                let found = inner.entries.get(&k[..=len]);
                k[len] = bit;
                found
            })
            .map(|e| e.slot)
    }
}

impl LpmTrie {
    /// A program's lookup (`prog_lookup`): the address of the longest matching prefix's value,
    /// 0 when none matches. Called directly by compiled code in batches
    /// (`helpers::maps::lookup_direct_lpm`), so it stays inline there. Under the read lock this
    /// thread holds for a batch's loop when it holds one on this trie (`pin_for_batch`),
    /// otherwise under its own.
    #[inline]
    pub fn value_addr(&self, key: &[u8]) -> u64 {
        let (pinned, inner) = PINNED.get();
        if !std::ptr::eq(pinned, self) {
            return self.value_addr_locked(key);
        }
        // SAFETY: the read guard `pin_for_batch` keeps in `PIN_GUARD` is alive while `PINNED`
        // names this trie (`unpin_batch` clears the one before dropping the other).
        self.value_addr_in(unsafe { &*inner }, key)
    }

    /// `value_addr` under a read lock of its own; out of line, so that the pinned lookup saves
    /// no registers for it.
    #[inline(never)]
    fn value_addr_locked(&self, key: &[u8]) -> u64 {
        self.value_addr_in(&self.read(), key)
    }

    #[inline(always)]
    fn value_addr_in(&self, inner: &Inner, key: &[u8]) -> u64 {
        match LpmTrie::longest_match(inner, self.max_prefixlen(), key) {
            None => 0,
            Some(slot) => self.pool.addr(slot, 0),
        }
    }

    /// Takes this trie's read lock for a stretch of a batch's runs on this thread (the JIT's loop
    /// of machine code, `program/xdp_batch.rs`), so that its lookups there (`value_addr`) take no
    /// lock of their own: two atomic operations per lookup fewer. Until the pin is dropped, or
    /// `unpin_batch` is called, whichever comes first. A writer on another thread waits for the
    /// stretch to end (at most a few hundred runs: the loop's trip); readers do not. Anything on
    /// this thread that may take the lock again (a helper, the lookup stub: every way from
    /// compiled code into Rust but the direct lookups) must call `unpin_batch` first: a write
    /// under this thread's own read lock would never return, nor would a second read with a
    /// writer waiting.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) fn pin_for_batch(&self) -> BatchPin<'_> {
        unpin_batch();
        let guard = self.read();
        let inner: *const Inner = &*guard;
        // SAFETY: the guard borrows `self`, which outlives the returned pin (its lifetime), and
        // the pin's drop (or an earlier `unpin_batch`) drops the guard: it never outlives `self`.
        let guard = unsafe {
            std::mem::transmute::<RwLockReadGuard<'_, Inner>, RwLockReadGuard<'static, Inner>>(
                guard,
            )
        };
        PIN_GUARD.with(|g| *g.borrow_mut() = Some(guard));
        PINNED.set((self, inner));
        BatchPin(std::marker::PhantomData)
    }
}

thread_local! {
    /// The trie whose read lock this thread holds for a batch (`pin_for_batch`), and its contents
    /// under that lock; null when none.
    static PINNED: std::cell::Cell<(*const LpmTrie, *const Inner)> =
        const { std::cell::Cell::new((std::ptr::null(), std::ptr::null())) };
    /// The read guard of `PINNED`'s trie.
    static PIN_GUARD: std::cell::RefCell<Option<RwLockReadGuard<'static, Inner>>> =
        const { std::cell::RefCell::new(None) };
}

/// The read lock of an LPM trie held for a stretch of a batch (`LpmTrie::pin_for_batch`): let go
/// of when dropped. Must not be forgotten (`mem::forget`): the lock would stay held past the
/// trie's borrow.
pub(crate) struct BatchPin<'a>(std::marker::PhantomData<&'a LpmTrie>);

impl Drop for BatchPin<'_> {
    fn drop(&mut self) {
        unpin_batch();
    }
}

/// Lets go of the read lock this thread holds on a trie for a batch, if it holds one (see
/// `LpmTrie::pin_for_batch`). Cheap when it holds none: one thread-local word read.
#[inline]
pub(crate) fn unpin_batch() {
    if !PINNED.get().0.is_null() {
        let_go_of_pin();
    }
}

#[cold]
#[inline(never)]
fn let_go_of_pin() {
    PINNED.set((std::ptr::null(), std::ptr::null()));
    PIN_GUARD.with(|g| drop(g.borrow_mut().take()));
}

impl Map for LpmTrie {
    map_identity!();

    fn lookup_elem(&self, key: &[u8]) -> MapResult<Vec<u8>> {
        let inner = self.read();
        match LpmTrie::longest_match(&inner, self.max_prefixlen(), key) {
            Some(slot) => Ok(self.read_value(slot)),
            None => Err(MapError::new(
                ErrorCode::Enoent,
                "no prefix matches the key",
            )),
        }
    }

    fn update_elem(&self, key: &[u8], value: &[u8], flags: u64) -> MapResult<()> {
        check_update_flags(flags)?;
        let (plen, data) = self.parse(key)?;
        let sk = sort_key(plen, data);
        let mut inner = self.write();
        if let Some(e) = inner.entries.get_mut(&sk) {
            if flags == flags::BPF_NOEXIST {
                return Err(MapError::new(
                    ErrorCode::Eexist,
                    "the prefix already exists",
                ));
            }
            e.key.copy_from_slice(key);
            let at = self.pool.offset(e.slot);
            self.pool.words().write(at, value);
            return Ok(());
        }
        if flags == flags::BPF_EXIST {
            return Err(MapError::new(ErrorCode::Enoent, "no such prefix"));
        }
        if inner.entries.len() >= self.common.def.max_entries as usize {
            return Err(MapError::new(
                ErrorCode::Enospc,
                format!("the trie is full ({} entries)", self.common.def.max_entries),
            ));
        }
        let Some(taken) = inner.free.take(self.pool.slots()) else {
            return Err(MapError::new(
                ErrorCode::Enospc,
                "no free value slot (a bug: there is one per entry)",
            ));
        };
        if taken.reused {
            self.pool.clear(taken.slot, None);
        }
        self.pool.words().write(self.pool.offset(taken.slot), value);
        inner.entries.insert(
            sk,
            Entry {
                key: key.to_vec(),
                slot: taken.slot,
            },
        );
        *inner.lengths.entry(plen).or_insert(0) += 1;
        if data.len() <= Short::MAX_DATA {
            inner.short.insert(plen, data, taken.slot);
        }
        Ok(())
    }

    fn delete_elem(&self, key: &[u8]) -> MapResult<()> {
        let (plen, data) = self.parse(key)?;
        let mut inner = self.write();
        let Some(e) = inner.entries.remove(&sort_key(plen, data)) else {
            return Err(MapError::new(ErrorCode::Enoent, "no such prefix"));
        };
        inner.free.give(e.slot);
        let mut last = false;
        if let Some(n) = inner.lengths.get_mut(&plen) {
            *n -= 1;
            if *n == 0 {
                inner.lengths.remove(&plen);
                last = true;
            }
        }
        if data.len() <= Short::MAX_DATA {
            inner.short.remove(plen, data, last);
        }
        Ok(())
    }

    fn get_next_key(&self, key: Option<&[u8]>) -> MapResult<Vec<u8>> {
        let inner = self.read();
        let at = key
            .and_then(|k| self.parse(k).ok())
            .map(|(plen, data)| sort_key(plen, data))
            .filter(|sk| inner.entries.contains_key(sk));
        let next = match &at {
            Some(sk) => inner
                .entries
                .range::<[u8], _>((Bound::Excluded(sk.as_slice()), Bound::Unbounded))
                .next(),
            None => inner.entries.iter().next(),
        };
        match next {
            Some((_, e)) => Ok(e.key.clone()),
            None if at.is_some() => Err(MapError::new(
                ErrorCode::Enoent,
                "no key after the last one",
            )),
            None => Err(MapError::new(ErrorCode::Enoent, "the trie is empty")),
        }
    }

    fn key_after(&self, key: &[u8]) -> MapResult<Vec<u8>> {
        let (plen, data) = self.parse(key)?;
        let sk = sort_key(plen, data);
        let inner = self.read();
        let next = inner
            .entries
            .range::<[u8], _>((Bound::Excluded(sk.as_slice()), Bound::Unbounded))
            .next();
        match next {
            Some((_, e)) => Ok(e.key.clone()),
            None => Err(MapError::new(
                ErrorCode::Enoent,
                "no key after the last one",
            )),
        }
    }

    fn prog_lookup(&self, key: &[u8], _cpu: usize) -> MapResult<ProgLookup> {
        Ok(match self.value_addr(key) {
            0 => ProgLookup::Null,
            addr => ProgLookup::Value(addr),
        })
    }

    fn value_area(&self) -> Option<(u64, u64)> {
        Some(self.pool.area())
    }

    fn len(&self) -> usize {
        self.read().entries.len()
    }
}
