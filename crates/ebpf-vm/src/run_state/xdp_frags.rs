//! The paged part of an XDP packet: what the kernel keeps in `skb_shared_info.frags` when a packet
//! is longer than the linear area. `BPF_PROG_TEST_RUN` puts the input bytes past the linear part
//! into pages of up to `PAGE_SIZE` bytes each (at most `MAX_SKB_FRAGS` of them), at offset 0 of
//! their page. A program cannot reach them with loads and stores (`data_end` stops at the linear
//! part); it sees them through `bpf_xdp_get_buff_len`, `bpf_xdp_load_bytes`/`store_bytes`,
//! `bpf_xdp_adjust_tail` and the packet bytes `bpf_perf_event_output` appends, and they come back
//! after the linear part in the run's output packet.
//!
//! Checked against Linux 6.18 (`net/bpf/test_run.c`, `net/core/filter.c`) with `bpftool prog run`.

use std::ops::Range;

/// The size of one fragment's page (the kernel's `PAGE_SIZE`, also the test run's `frag_size`).
pub const FRAG_PAGE_SIZE: usize = 4096;
/// Most fragments one packet may have (`MAX_SKB_FRAGS`).
pub const MAX_FRAGS: usize = 17;

/// The fragments of one packet, in order.
#[derive(Default)]
pub struct XdpFrags {
    pages: Vec<Vec<u8>>,
}

impl XdpFrags {
    /// `bytes` split into pages of `FRAG_PAGE_SIZE`; `None` when that takes more than `MAX_FRAGS`.
    pub fn from_bytes(bytes: &[u8]) -> Option<XdpFrags> {
        if bytes.len() > MAX_FRAGS * FRAG_PAGE_SIZE {
            return None;
        }
        let pages = bytes
            .chunks(FRAG_PAGE_SIZE)
            .map(|c| {
                let mut page = Vec::with_capacity(FRAG_PAGE_SIZE);
                page.extend_from_slice(c);
                page
            })
            .collect();
        Some(XdpFrags { pages })
    }

    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    /// Bytes in all fragments (`xdp_frags_size`).
    pub fn len(&self) -> u64 {
        self.pages.iter().map(|p| p.len() as u64).sum()
    }

    /// Grows the last fragment by `n` zero bytes, within the room its page has left
    /// (`bpf_xdp_frags_increase_tail`); false when there is not that much room.
    pub fn grow(&mut self, n: u64) -> bool {
        let Some(last) = self.pages.last_mut() else {
            return false;
        };
        if n > (FRAG_PAGE_SIZE - last.len()) as u64 {
            return false;
        }
        last.resize(last.len() + n as usize, 0);
        true
    }

    /// Removes up to `n` bytes from the end, dropping fragments that become empty
    /// (`bpf_xdp_frags_shrink_tail`); returns how many of the `n` bytes were left to take from
    /// the linear part (only once no fragment is left).
    pub fn shrink(&mut self, mut n: u64) -> u64 {
        while n > 0 {
            let Some(last) = self.pages.last_mut() else {
                break;
            };
            let take = n.min(last.len() as u64);
            n -= take;
            if take == last.len() as u64 {
                self.pages.pop();
            } else {
                last.truncate(last.len() - take as usize);
                return 0;
            }
        }
        n
    }

    /// Copies fragment bytes `[at, at + out.len())` (offsets past the linear part) into `out`;
    /// the caller has checked that the range lies inside the fragments.
    pub fn read(&self, at: u64, out: &mut [u8]) {
        for (page, range, done) in self.pieces(at, out.len()) {
            out[done..done + range.len()].copy_from_slice(&self.pages[page][range]);
        }
    }

    /// Copies `bytes` into the fragments at `at` (as `read`).
    pub fn write(&mut self, at: u64, bytes: &[u8]) {
        for (page, range, done) in self.pieces(at, bytes.len()) {
            let n = range.len();
            self.pages[page][range].copy_from_slice(&bytes[done..done + n]);
        }
    }

    /// The pieces of `[at, at + len)`: page index, range in that page, bytes before the piece.
    fn pieces(&self, at: u64, len: usize) -> Vec<(usize, Range<usize>, usize)> {
        let mut at = at as usize;
        let mut done = 0;
        let mut out = Vec::new();
        for (i, page) in self.pages.iter().enumerate() {
            if done == len {
                break;
            }
            if at >= page.len() {
                at -= page.len();
                continue;
            }
            let n = (page.len() - at).min(len - done);
            out.push((i, at..at + n, done));
            done += n;
            at = 0;
        }
        out
    }

    /// Every fragment byte, in order.
    pub fn bytes(&self) -> Vec<u8> {
        self.pages.concat()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_grow_shrink_and_copies_across_page_edges() {
        let bytes: Vec<u8> = (0..9000u32).map(|i| i as u8).collect();
        let mut f = XdpFrags::from_bytes(&bytes).unwrap();
        assert_eq!(f.len(), 9000);
        assert_eq!(
            f.pages.iter().map(Vec::len).collect::<Vec<_>>(),
            [4096, 4096, 808]
        );
        let mut out = [0u8; 10];
        f.read(4090, &mut out);
        assert_eq!(out[..], bytes[4090..4100]);
        f.write(4094, &[0xaa; 4]);
        f.read(4093, &mut out[..6]);
        assert_eq!(out[..6], [bytes[4093], 0xaa, 0xaa, 0xaa, 0xaa, bytes[4098]]);
        // The last page has 4096 - 808 bytes of room.
        assert!(!f.grow(3289));
        assert!(f.grow(3288));
        assert_eq!(f.len(), 12288);
        // Shrinking frees whole pages first, then leaves what the linear part must give up.
        assert_eq!(f.shrink(4096 + 100), 0);
        assert_eq!(f.len(), 12288 - 4196);
        assert_eq!(f.shrink(9000), 9000 - (12288 - 4196));
        assert!(f.is_empty());
        assert!(XdpFrags::from_bytes(&vec![0; MAX_FRAGS * FRAG_PAGE_SIZE]).is_some());
        assert!(XdpFrags::from_bytes(&vec![0; MAX_FRAGS * FRAG_PAGE_SIZE + 1]).is_none());
    }
}
