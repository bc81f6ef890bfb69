//! The numbers of the tc helpers and the checksum arithmetic they share. The helpers themselves
//! are in `context/tc_helpers.rs`, beside the packet they change (`context/tc.rs`).
//!
//! Checksums as Linux computes them (include/net/checksum.h, include/asm-generic/checksum.h,
//! net/core/utils.c): 16-bit fields are handled as they lie in memory (the bytes read as a
//! little-endian `u16`), which one's complement arithmetic allows whatever the byte order.

pub const BPF_SKB_STORE_BYTES: u32 = 9;
pub const BPF_L3_CSUM_REPLACE: u32 = 10;
pub const BPF_L4_CSUM_REPLACE: u32 = 11;
pub const BPF_SKB_VLAN_PUSH: u32 = 18;
pub const BPF_SKB_VLAN_POP: u32 = 19;
pub const BPF_REDIRECT: u32 = 23;
pub const BPF_SKB_CHANGE_PROTO: u32 = 31;
pub const BPF_SKB_CHANGE_TYPE: u32 = 32;
pub const BPF_GET_HASH_RECALC: u32 = 34;
pub const BPF_SKB_CHANGE_TAIL: u32 = 38;
pub const BPF_SKB_PULL_DATA: u32 = 39;
pub const BPF_CSUM_UPDATE: u32 = 40;
pub const BPF_SET_HASH_INVALID: u32 = 41;
pub const BPF_SKB_CHANGE_HEAD: u32 = 43;
pub const BPF_SET_HASH: u32 = 48;
pub const BPF_SKB_ADJUST_ROOM: u32 = 50;
pub const BPF_SKB_ECN_SET_CE: u32 = 97;

/// One's complement 32-bit addition (`csum_add`).
pub fn csum_add(a: u32, b: u32) -> u32 {
    let (r, carry) = a.overflowing_add(b);
    r.wrapping_add(carry as u32)
}

/// `csum_sub`.
pub fn csum_sub(a: u32, b: u32) -> u32 {
    csum_add(a, !b)
}

/// `csum_fold`: 32 bits folded to 16 and complemented.
pub fn csum_fold(sum: u32) -> u16 {
    let s = (sum & 0xffff) + (sum >> 16);
    let s = (s & 0xffff) + (s >> 16);
    !(s as u16)
}

/// `csum16_add`: 16-bit one's complement addition.
pub fn csum16_add(csum: u16, addend: u16) -> u16 {
    let res = csum.wrapping_add(addend);
    res.wrapping_add((res < addend) as u16)
}

/// `csum_replace4`: the checksum `sum` after a 32-bit word changed from `from` to `to`.
pub fn csum_replace4(sum: u16, from: u32, to: u32) -> u16 {
    let tmp = csum_sub(!(sum as u32), from);
    csum_fold(csum_add(tmp, to))
}

/// `csum_replace2`: the checksum `sum` after a 16-bit field changed from `from` to `to`.
pub fn csum_replace2(sum: u16, from: u16, to: u16) -> u16 {
    !csum16_add(csum16_add(!sum, !from), to)
}

/// `csum_replace_by_diff`: the checksum `sum` with the 32-bit difference `diff` added.
pub fn csum_replace_by_diff(sum: u16, diff: u32) -> u16 {
    csum_fold(csum_add(diff, !(sum as u32)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The IPv4 header of RFC 1071's style example, checksum computed by hand: changing the TTL
    /// and protocol word and updating incrementally gives the checksum computed from scratch.
    fn ip_checksum(h: &[u8]) -> u16 {
        let mut sum = 0u32;
        for w in h.chunks(2) {
            sum += u16::from_le_bytes([w[0], w[1]]) as u32;
        }
        csum_fold(sum)
    }

    #[test]
    fn incremental_updates_equal_a_full_recomputation() {
        let mut h = [
            0x45u8, 0, 0, 0x3c, 0x1c, 0x46, 0x40, 0, 0x40, 0x06, 0, 0, 0xac, 0x10, 0x0a, 0x63,
            0xac, 0x10, 0x0a, 0x0c,
        ];
        let sum = ip_checksum(&h);
        // The example's checksum is 0xb1e6 (network order), read as it lies in memory.
        assert_eq!(sum, u16::from_le_bytes([0xb1, 0xe6]));
        h[10..12].copy_from_slice(&sum.to_le_bytes());
        let old_daddr = u32::from_le_bytes(h[16..20].try_into().unwrap());
        let new_daddr = u32::from_le_bytes([10, 1, 2, 3]);
        h[16..20].copy_from_slice(&new_daddr.to_le_bytes());
        let replaced = csum_replace4(sum, old_daddr, new_daddr);
        h[10..12].fill(0);
        assert_eq!(replaced, ip_checksum(&h));
        h[10..12].copy_from_slice(&replaced.to_le_bytes());
        let old_ttl = u16::from_le_bytes([h[8], h[9]]);
        h[8] -= 1;
        let new_ttl = u16::from_le_bytes([h[8], h[9]]);
        let replaced2 = csum_replace2(replaced, old_ttl, new_ttl);
        h[10..12].fill(0);
        assert_eq!(replaced2, ip_checksum(&h));
    }
}
