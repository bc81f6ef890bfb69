//! The regions helpers add to a run (map values, `bpf_for_each_map_elem` keys, ring buffer
//! records), with what they hold, so that messages can name an address by its place
//! (`context::places`) rather than show it. Maps are named by their handle, resolved through the
//! run's maps only when a place is asked for, so adding costs no allocation beyond the table's.

/// What a region added by a helper holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Added {
    MapValue { map: u64 },
    MapKey { map: u64 },
    RingbufRecord { map: u64 },
}

/// The regions helpers added to a run: (start, length, what).
#[derive(Clone, Debug, Default)]
pub struct AddedRegions {
    list: Vec<(u64, u64, Added)>,
}

impl AddedRegions {
    pub fn add(&mut self, start: u64, len: u64, what: Added) {
        self.list.push((start, len, what));
    }

    /// Forgets the region added last at `start` (it left the run: a ring buffer record submitted,
    /// a `bpf_for_each_map_elem` key after the call), so the list holds what the run can reach.
    pub fn remove(&mut self, start: u64) {
        if let Some(i) = self.list.iter().rposition(|e| e.0 == start) {
            self.list.remove(i);
        }
    }

    /// The length of the region added last at `start`.
    pub fn len_at(&self, start: u64) -> Option<u64> {
        self.list.iter().rev().find(|e| e.0 == start).map(|e| e.1)
    }

    /// Forgets every region, keeping the allocation (the next run on the same run space).
    pub fn clear(&mut self) {
        self.list.clear();
    }

    /// Keeps the first `len` regions.
    pub fn truncate(&mut self, len: usize) {
        self.list.truncate(len);
    }

    /// How many regions the list holds.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &(u64, u64, Added)> {
        self.list.iter()
    }
}
