//! Memory regions of one run. Programs use real host addresses (as in the kernel); in checked mode
//! every access must fall entirely inside one region of the run, and stores need a writable one.
//! The region table is the whole of what a program may touch: its stack, its input data, its
//! context and the map memory that helpers handed it during the run.

use crate::error::TrapKind;

/// One contiguous range `[start, start + len)` of host memory that the program may access; for a
/// map's value area, only within one of its values: every `stride` bytes from `start` a value of
/// `elem` bytes (so an access never spans two values or their padding, as the kernel's verifier
/// bounds a map value pointer by the value size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Region {
    pub start: u64,
    pub len: u64,
    /// 1 when stores are allowed, 0 when the region is read-only.
    pub writable: u64,
    /// Distance between values (0: the region is one plain range).
    pub stride: u64,
    /// Bytes of each value (`stride` != 0).
    pub elem: u64,
}

impl Region {
    pub fn new(start: u64, len: u64, writable: bool) -> Self {
        Region {
            start,
            len,
            writable: writable as u64,
            stride: 0,
            elem: 0,
        }
    }

    /// `len` bytes of values of `elem` bytes, `stride` bytes apart (`elem <= stride`). A single
    /// value is a plain region of `elem` bytes.
    pub fn values(start: u64, len: u64, stride: u64, elem: u64, writable: bool) -> Self {
        if len <= stride || stride == 0 {
            return Region::new(start, elem.min(len), writable);
        }
        Region {
            stride,
            elem,
            ..Region::new(start, len, writable)
        }
    }

    pub fn from_slice(s: &[u8]) -> Self {
        Region::new(s.as_ptr() as u64, s.len() as u64, false)
    }

    pub fn from_mut_slice(s: &mut [u8]) -> Self {
        Region::new(s.as_mut_ptr() as u64, s.len() as u64, true)
    }

    /// Whether `[addr, addr + size)` lies inside this region (no overflow possible: the
    /// subtraction happens only once `addr >= start`), and inside one value of a value area.
    #[inline(always)]
    pub fn contains(&self, addr: u64, size: u64) -> bool {
        addr >= self.start
            && addr - self.start <= self.len
            && self.len - (addr - self.start) >= size
            && (self.stride == 0 || (addr - self.start) % self.stride + size <= self.elem)
    }

    /// Plain: accesses anywhere in its range (compiled code and the interpreter's fast loop
    /// inline the checks of such regions only).
    pub fn is_plain(&self) -> bool {
        self.stride == 0
    }
}

/// Most context regions a run has (tc: its five writable field groups and the whole context);
/// more would go to the table of later regions, still after these in the search order.
pub const CONTEXT_PARTS: usize = 6;

/// The memory of a run: the regions a program may touch.
///
/// What every run has is named: its `stack` (the frames the main program can reach, r10 at their
/// end), its `data` (a raw program's data, a socket filter's or tc program's packet, the XDP
/// frame; empty for the tracing types) and its `context` (the context buffer and, before it, the
/// writable parts of a context that is otherwise read-only). The preparers set them
/// (`context::prepare_run`), the engines read them by name. What a run adds (map value areas,
/// ring buffer records, callback stacks, ...) is pushed as it comes.
///
/// An access is allowed when a region contains all of it; a store also needs the region that
/// decides to be writable, and the region that decides is the first one that contains the access
/// in this order: the stack, the data, the context parts in the order given, then the added
/// regions in the order pushed. Added regions are kept sorted by start address and found by
/// binary search: they are distinct allocations and do not overlap; one that lies inside an
/// earlier region adds nothing and is dropped, one that contains earlier added regions of the same
/// writability replaces them. Only an embedder's helper can make added regions overlap otherwise;
/// the table then searches them in insertion order, as it must to give the same answer, in time
/// linear in their number.
#[derive(Clone, Debug, Default)]
pub struct Regions {
    stack: Region,
    data: Region,
    context: [Region; CONTEXT_PARTS],
    context_len: usize,
    /// Added regions by start address, each with its insertion number.
    sorted: Vec<(Region, u64)>,
    inserted: u64,
    /// Some regions of `sorted` overlap (see above).
    overlapping: bool,
}

fn ends(r: &Region) -> u64 {
    r.start.saturating_add(r.len)
}

/// Whether every access `inner` allows, `outer` allows too (a plain region around it, or the
/// same value area).
fn covers(outer: &Region, inner: &Region) -> bool {
    let around = inner.start >= outer.start && ends(inner) <= ends(outer);
    around
        && (outer.is_plain()
            || (outer.start, outer.len, outer.stride, outer.elem)
                == (inner.start, inner.len, inner.stride, inner.elem))
}

impl Default for Region {
    /// No memory: contains no access.
    fn default() -> Self {
        Region::new(0, 0, false)
    }
}

impl Regions {
    pub fn new() -> Self {
        Regions::default()
    }

    /// Empties the table and keeps its allocations, for the next run on the same `RunSpace`.
    pub fn clear(&mut self) {
        self.stack = Region::default();
        self.data = Region::default();
        self.context_len = 0;
        self.sorted.clear();
        self.inserted = 0;
        self.overlapping = false;
    }

    /// Sets the run's stack: the frames the main program may reach, ending at its r10.
    pub fn set_stack(&mut self, region: Region) {
        self.stack = region;
    }

    /// Sets (or moves, when a helper moved or resized the packet) the run's data.
    pub fn set_data(&mut self, region: Region) {
        self.data = region;
    }

    /// Adds a part of the context, after those added before it in the search order (the
    /// writable fields before the whole, read-only buffer). Past `CONTEXT_PARTS`, an added region.
    pub fn push_context(&mut self, region: Region) {
        if self.context_len < CONTEXT_PARTS {
            self.context[self.context_len] = region;
            self.context_len += 1;
        } else {
            self.push(region);
        }
    }

    /// The run's stack (empty until set).
    #[inline(always)]
    pub fn stack(&self) -> Region {
        self.stack
    }

    /// The run's data (empty for program types without one).
    #[inline(always)]
    pub fn data(&self) -> Region {
        self.data
    }

    /// The parts of the run's context, in search order.
    pub fn context(&self) -> &[Region] {
        &self.context[..self.context_len]
    }

    /// The two regions compiled code and the interpreter's fast loop check inline: the stack, and
    /// the data, or the context's first part for program types without data (tracing). Either
    /// is the second region in the search order, so an inline answer is the table's.
    #[inline(always)]
    pub fn hot(&self) -> [Region; 2] {
        let second = if self.data.len != 0 || self.context_len == 0 {
            self.data
        } else {
            self.context[0]
        };
        [self.stack, second]
    }

    /// The named regions in search order (empty ones contain nothing).
    #[inline(always)]
    fn named(&self) -> impl Iterator<Item = &Region> {
        [&self.stack, &self.data]
            .into_iter()
            .chain(self.context[..self.context_len].iter())
    }

    /// Adds `region`; false when that changes nothing (an empty region, or one inside an earlier
    /// region, which decides every access inside it). Inlined: every run pushes a few regions,
    /// and an out-of-line call read its 40-byte argument back from memory just written.
    #[inline]
    pub fn push(&mut self, region: Region) -> bool {
        if region.len == 0
            || self.named().any(|r| covers(r, &region))
            || self
                .find_sorted(region.start)
                .is_some_and(|r| covers(r, &region))
        {
            return false;
        }
        self.inserted += 1;
        // Earlier regions it covers with the same writability give the same answers as it does
        // (exactly so while no region overlaps another: then it alone contains their bytes).
        if !self.overlapping {
            // Only regions that start inside it can lie inside it: a push searches, removes what it
            // replaces and inserts, without walking the whole table.
            let mut i = self.sorted.partition_point(|(r, _)| r.start < region.start);
            while i < self.sorted.len() && self.sorted[i].0.start < ends(&region) {
                let r = &self.sorted[i].0;
                if covers(&region, r) && r.writable == region.writable {
                    self.sorted.remove(i);
                } else {
                    i += 1;
                }
            }
        }
        let at = self
            .sorted
            .partition_point(|(r, _)| r.start <= region.start);
        let before = at.checked_sub(1).map(|i| &self.sorted[i].0);
        let after = self.sorted.get(at).map(|(r, _)| r);
        if before.is_some_and(|b| ends(b) > region.start)
            || after.is_some_and(|a| a.start < ends(&region))
        {
            self.overlapping = true;
        }
        self.sorted.insert(at, (region, self.inserted));
        true
    }

    /// Removes a region that `push` added, exactly as given (a ring buffer record once submitted
    /// or discarded); false when there is none.
    pub fn remove(&mut self, region: Region) -> bool {
        let from = self.sorted.partition_point(|(r, _)| r.start < region.start);
        let found = self.sorted[from..]
            .iter()
            .take_while(|(r, _)| r.start == region.start)
            .position(|(r, _)| *r == region);
        match found {
            Some(i) => {
                self.sorted.remove(from + i);
                if self.sorted.is_empty() {
                    self.overlapping = false;
                }
                true
            }
            None => false,
        }
    }

    /// Number of regions in the table.
    pub fn len(&self) -> usize {
        self.named().filter(|r| r.len != 0).count() + self.sorted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The sorted region with the greatest start not above `addr` (the only one that can contain
    /// `addr` while sorted regions do not overlap).
    fn find_sorted(&self, addr: u64) -> Option<&Region> {
        let at = self.sorted.partition_point(|(r, _)| r.start <= addr);
        at.checked_sub(1).map(|i| &self.sorted[i].0)
    }

    /// The region that decides an access of `size` bytes at `addr`.
    #[inline]
    fn decider(&self, addr: u64, size: u64) -> Option<&Region> {
        // The named regions in `named`'s order, written out: the stack and the data decide most
        // accesses (a helper's key on the stack), without an iterator's set-up.
        let hit = |r: &Region| r.len != 0 && r.contains(addr, size);
        if hit(&self.stack) {
            return Some(&self.stack);
        }
        if hit(&self.data) {
            return Some(&self.data);
        }
        if let Some(r) = self.context[..self.context_len].iter().find(|r| hit(r)) {
            return Some(r);
        }
        if !self.overlapping {
            return self.find_sorted(addr).filter(|r| r.contains(addr, size));
        }
        self.sorted
            .iter()
            .filter(|(r, _)| r.contains(addr, size))
            .min_by_key(|(_, n)| *n)
            .map(|(r, _)| r)
    }

    /// Checks an access of `size` bytes at `addr`.
    #[inline(always)]
    pub fn check(&self, addr: u64, size: u64, write: bool) -> Result<(), TrapKind> {
        match self.decider(addr, size) {
            Some(r) if write && r.writable == 0 => Err(TrapKind::ReadOnly),
            Some(_) => Ok(()),
            None => Err(TrapKind::OutOfBounds),
        }
    }

    /// A checked view of run memory for helpers that take pointer arguments.
    pub fn slice(&self, addr: u64, len: u64) -> Result<&[u8], TrapKind> {
        self.check(addr, len, false)?;
        // SAFETY: the range lies inside a region, and regions describe memory that stays alive and
        // in place for the whole run (the run owns or borrows it).
        Ok(unsafe { std::slice::from_raw_parts(addr as *const u8, len as usize) })
    }

    /// A checked mutable view of run memory for helpers that write through pointer arguments.
    #[allow(clippy::mut_from_ref)]
    pub fn slice_mut(&self, addr: u64, len: u64) -> Result<&mut [u8], TrapKind> {
        self.check(addr, len, true)?;
        // SAFETY: as for `slice`; the program is suspended while a helper runs, so the helper is
        // the only writer of run memory during the call.
        Ok(unsafe { std::slice::from_raw_parts_mut(addr as *mut u8, len as usize) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule the table implements, written plainly: the first inserted region that contains
    /// the access decides.
    fn first_match(list: &[Region], addr: u64, size: u64, write: bool) -> Result<(), TrapKind> {
        match list.iter().find(|r| r.contains(addr, size)) {
            Some(r) if write && r.writable == 0 => Err(TrapKind::ReadOnly),
            Some(_) => Ok(()),
            None => Err(TrapKind::OutOfBounds),
        }
    }

    #[test]
    fn random_tables_answer_as_the_first_inserted_containing_region() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for case in 0..1500 {
            // Few, long regions in a small space overlap often; many short ones seldom.
            let (count, span) = if case % 2 == 0 { (6, 40) } else { (40, 6) };
            let mut table = Regions::new();
            let mut plain = Vec::new();
            for _ in 0..next(count) + 1 {
                let r = if next(4) == 0 {
                    // A value area: values of 1-8 bytes, 8 or 16 apart.
                    let stride = 8 << next(2);
                    Region::values(next(256), next(span * 2), stride, 1 + next(8), next(2) == 0)
                } else {
                    Region::new(next(256), next(span), next(2) == 0)
                };
                table.push(r);
                if r.len > 0 {
                    plain.push(r);
                }
            }
            for addr in 0..300 {
                for size in [1, 2, 4, 8] {
                    for write in [false, true] {
                        assert_eq!(
                            table.check(addr, size, write),
                            first_match(&plain, addr, size, write),
                            "case {case}: {size} at {addr}, write {write}, table {plain:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_run_of_disjoint_regions_stays_sorted_and_records_come_and_go() {
        let mut table = Regions::new();
        // Stack, data, context and its writable part.
        table.set_stack(Region::new(0x1000, 512, true));
        table.set_data(Region::new(0x9000, 64, false));
        table.push_context(Region::new(0xa000, 16, true));
        table.push_context(Region::new(0xa000, 64, false));
        // Map values and ring records in no particular order.
        for k in [7u64, 3, 9, 1, 5] {
            table.push(Region::new(0x10_0000 * k, 4096, k != 9));
        }
        assert_eq!(table.len(), 9);
        assert!(!table.overlapping);
        assert_eq!(table.check(0x50_0000 + 4088, 8, true), Ok(()));
        assert_eq!(
            table.check(0x50_0000 + 4089, 8, false),
            Err(TrapKind::OutOfBounds)
        );
        assert_eq!(table.check(0x90_0000, 8, true), Err(TrapKind::ReadOnly));
        assert_eq!(table.check(0xa008, 8, true), Ok(()));
        assert_eq!(table.check(0xa010, 8, true), Err(TrapKind::ReadOnly));
        // Looking the same value up again adds nothing; a part of it neither.
        table.push(Region::new(0x30_0000, 4096, true));
        table.push(Region::new(0x30_0010, 16, false));
        assert_eq!(table.len(), 9);
        // A record submitted: its region goes, the others stay.
        assert!(table.remove(Region::new(0x30_0000, 4096, true)));
        assert!(!table.remove(Region::new(0x30_0000, 4096, true)));
        assert_eq!(table.check(0x30_0000, 1, false), Err(TrapKind::OutOfBounds));
        assert_eq!(table.check(0x10_0000, 1, false), Ok(()));
        // A value area that grew around an earlier part of it (global data, then the whole
        // array) replaces it.
        table.push(Region::new(0x70_0000, 8192, true));
        assert_eq!(table.len(), 8);
        assert_eq!(table.check(0x70_0000 + 8184, 8, true), Ok(()));
        assert!(!table.overlapping);
    }
}
