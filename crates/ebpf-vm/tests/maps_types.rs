//! Every map type through its user-space face: creation checks, flags and errors, iteration order.
//! Expected values are the kernel's documented behaviour; those marked "observed" were checked on
//! this machine's kernel with bpftool on a pinned map (`bpftool map create /sys/fs/bpf/... ;
//! bpftool map update/lookup/getnext/push/pop ...`, pins removed afterwards).

use std::sync::Arc;

use ebpf_vm::maps::def::flags::*;
use ebpf_vm::maps::lpm::LpmTrie;
use ebpf_vm::maps::of_maps::MapOfMaps;
use ebpf_vm::maps::percpu::possible_cpus;
use ebpf_vm::maps::prog_array::ProgArray;
use ebpf_vm::maps::{self, array::ArrayMap, Map, MapDef, MapType};
use ebpf_vm::ErrorCode;

fn create(t: MapType, k: u32, v: u32, n: u32) -> Arc<dyn Map> {
    maps::create(MapDef::new(t, k, v, n)).expect("map is created")
}

fn k32(i: u32) -> [u8; 4] {
    i.to_ne_bytes()
}

fn code<T: std::fmt::Debug>(r: Result<T, maps::MapError>) -> ErrorCode {
    r.expect_err("operation fails").code
}

#[test]
fn creation_checks_follow_the_kernel() {
    let bad = [
        MapDef::new(MapType::Array, 8, 4, 1),       // key must be 4
        MapDef::new(MapType::Array, 4, 0, 1),       // value > 0
        MapDef::new(MapType::Hash, 4, 4, 0),        // max_entries > 0
        MapDef::new(MapType::Hash, 0, 4, 1),        // key > 0
        MapDef::new(MapType::Queue, 4, 4, 1),       // keyless
        MapDef::new(MapType::Ringbuf, 0, 0, 12288), // observed: 3 pages is EINVAL
        MapDef::new(MapType::Ringbuf, 0, 0, 1024),  // below a page
        MapDef::new(MapType::LpmTrie, 8, 4, 4),     // observed: needs BPF_F_NO_PREALLOC
        MapDef::new(MapType::LpmTrie, 4, 4, 4).with_flags(BPF_F_NO_PREALLOC), // no data bytes
        MapDef::new(MapType::Array, 4, 4, 1).with_flags(BPF_F_NO_PREALLOC), // not for arrays
        MapDef::new(MapType::LruHash, 4, 4, 1).with_flags(BPF_F_NO_PREALLOC), // LRU preallocates
        MapDef::new(MapType::Hash, 4, 4, 1).with_flags(BPF_F_RDONLY | BPF_F_WRONLY),
        MapDef::new(MapType::ArrayOfMaps, 4, 4, 1), // needs an inner map definition
        MapDef::new(MapType::BloomFilter, 0, 4, 1).with_map_extra(0x10),
        MapDef::new(MapType::Hash, 4, 4, 1).with_map_extra(1),
    ];
    for def in bad {
        assert_eq!(
            code(maps::create(def.clone())),
            ErrorCode::Einval,
            "{def:?}"
        );
    }
    assert_eq!(
        code(maps::create(MapDef::new(MapType::Hash, 513, 4, 1))),
        ErrorCode::E2big
    );
    // Our memory caps (the kernel would say ENOMEM): 2^31-byte ring buffers, a 4G-entry prog
    // array, a 16 GiB array.
    for def in [
        MapDef::new(MapType::Ringbuf, 0, 0, 1 << 31),
        MapDef::new(MapType::ProgArray, 4, 4, u32::MAX),
        MapDef::new(MapType::Array, 4, 4, u32::MAX),
        MapDef::new(MapType::BloomFilter, 0, 8, u32::MAX),
    ] {
        assert_eq!(code(maps::create(def.clone())), ErrorCode::E2big, "{def:?}");
    }
    // Observed: an 8192-byte ring buffer and a bloom filter of 10 x 4 bytes are accepted.
    create(MapType::Ringbuf, 0, 0, 8192);
    create(MapType::BloomFilter, 0, 4, 10);
    assert_eq!(MapType::from_u32(27), Some(MapType::Ringbuf));
    assert_eq!(MapType::from_name("lpm_trie"), Some(MapType::LpmTrie));
    assert_eq!(MapType::LruHash as u32, 9);
}

#[test]
fn array_semantics() {
    let m = create(MapType::Array, 4, 4, 3);
    // Elements exist from the start, zeroed.
    assert_eq!(m.lookup(&k32(2)).unwrap(), vec![0; 4]);
    m.update(&k32(1), &[1, 2, 3, 4], BPF_ANY).unwrap();
    assert_eq!(m.lookup(&k32(1)).unwrap(), vec![1, 2, 3, 4]);
    m.update(&k32(1), &[5, 6, 7, 8], BPF_EXIST).unwrap();
    assert_eq!(m.lookup(&k32(1)).unwrap(), vec![5, 6, 7, 8]);
    // Observed: index past the end is E2BIG, BPF_NOEXIST is EEXIST, delete is EINVAL.
    assert_eq!(code(m.update(&k32(3), &[0; 4], BPF_ANY)), ErrorCode::E2big);
    assert_eq!(
        code(m.update(&k32(1), &[0; 4], BPF_NOEXIST)),
        ErrorCode::Eexist
    );
    assert_eq!(code(m.delete(&k32(1))), ErrorCode::Einval);
    assert_eq!(code(m.lookup(&k32(3))), ErrorCode::Enoent);
    // Bad flags and sizes.
    assert_eq!(code(m.update(&k32(1), &[0; 4], 3)), ErrorCode::Einval);
    assert_eq!(
        code(m.update(&k32(1), &[0; 4], BPF_F_LOCK)),
        ErrorCode::Einval
    );
    assert_eq!(code(m.update(&k32(1), &[0; 5], BPF_ANY)), ErrorCode::Einval);
    assert_eq!(code(m.lookup(&[0; 8])), ErrorCode::Einval);
    // Iteration: index order; observed: an out-of-range key restarts at 0, the last is ENOENT.
    assert_eq!(m.next_key(None).unwrap(), k32(0));
    assert_eq!(m.next_key(Some(&k32(0))).unwrap(), k32(1));
    assert_eq!(m.next_key(Some(&k32(7))).unwrap(), k32(0));
    assert_eq!(code(m.next_key(Some(&k32(2)))), ErrorCode::Enoent);
    assert_eq!(m.keys().unwrap(), vec![k32(0), k32(1), k32(2)]);
}

#[test]
fn array_storage_is_stable_aligned_and_shared() {
    let m = create(MapType::Array, 4, 12, 4);
    let a = m.downcast::<ArrayMap>().unwrap();
    assert_eq!(a.value_stride(), 16);
    let base = a.storage().as_ptr() as usize;
    assert_eq!(base % 8, 0);
    m.update(&k32(2), &[9; 12], BPF_ANY).unwrap();
    // Element 2 is at 2 * stride in the zero-copy view, and stays there after further updates.
    let mut view = [0u8; 12];
    a.storage().read(32, &mut view);
    assert_eq!(view, [9; 12]);
    m.update(&k32(2), &[7; 12], BPF_ANY).unwrap();
    assert_eq!(a.storage().as_ptr() as usize, base);
    a.storage().read(32, &mut view);
    assert_eq!(view, [7; 12]);
    // Single-element arrays are directly addressable (global data); larger ones are not.
    assert!(m.direct_value().is_none());
    let g = create(MapType::Array, 4, 20, 1);
    let (addr, len) = g.direct_value().unwrap();
    assert_eq!(len, 20);
    assert_eq!(addr % 8, 0);
}

#[test]
fn hash_semantics_and_order() {
    let m = create(MapType::Hash, 4, 4, 2);
    assert_eq!(code(m.next_key(None)), ErrorCode::Enoent);
    m.update(&k32(2), &[2; 4], BPF_ANY).unwrap();
    m.update(&k32(1), &[1; 4], BPF_NOEXIST).unwrap();
    // Observed: full map is E2BIG for a new key; an existing key still updates.
    assert_eq!(code(m.update(&k32(3), &[3; 4], BPF_ANY)), ErrorCode::E2big);
    m.update(&k32(2), &[9; 4], BPF_ANY).unwrap();
    assert_eq!(m.lookup(&k32(2)).unwrap(), vec![9; 4]);
    // Observed: NOEXIST on a present key is EEXIST, EXIST on a missing key ENOENT.
    assert_eq!(
        code(m.update(&k32(2), &[0; 4], BPF_NOEXIST)),
        ErrorCode::Eexist
    );
    assert_eq!(
        code(m.update(&k32(5), &[0; 4], BPF_EXIST)),
        ErrorCode::Enoent
    );
    assert_eq!(code(m.lookup(&k32(5))), ErrorCode::Enoent);
    // Observed: deleting a missing key is ENOENT.
    assert_eq!(code(m.delete(&k32(9))), ErrorCode::Enoent);
    // Order: bytes of the key, lexicographically (host order u32 1 = 01 00 00 00 first).
    assert_eq!(m.keys().unwrap(), vec![k32(1), k32(2)]);
    // Observed: a key not in the map gives the first key.
    assert_eq!(m.next_key(Some(&[9, 9, 9, 9])).unwrap(), k32(1));
    assert_eq!(code(m.next_key(Some(&k32(2)))), ErrorCode::Enoent);
    m.delete(&k32(1)).unwrap();
    assert_eq!(m.len(), 1);
    m.update(&k32(3), &[3; 4], BPF_ANY).unwrap();

    let m = create(MapType::Hash, 2, 1, 10);
    for k in [[0x02, 0x00], [0x01, 0xff], [0x01, 0x00], [0xff, 0x00]] {
        m.update(&k, &[0], BPF_ANY).unwrap();
    }
    assert_eq!(
        m.keys().unwrap(),
        vec![
            vec![0x01, 0x00],
            vec![0x01, 0xff],
            vec![0x02, 0x00],
            vec![0xff, 0x00]
        ]
    );
}

#[test]
fn lru_evicts_the_least_recently_used() {
    let m = create(MapType::LruHash, 4, 4, 3);
    for i in 1..=3 {
        m.update(&k32(i), &[i as u8; 4], BPF_ANY).unwrap();
    }
    // Using key 1 (an update counts) makes key 2 the oldest.
    m.update(&k32(1), &[11; 4], BPF_EXIST).unwrap();
    m.update(&k32(4), &[4; 4], BPF_ANY).unwrap();
    assert_eq!(code(m.lookup(&k32(2))), ErrorCode::Enoent);
    assert_eq!(m.keys().unwrap(), vec![k32(1), k32(3), k32(4)]);
    // Next victim is 3, then 1.
    m.update(&k32(5), &[5; 4], BPF_ANY).unwrap();
    assert_eq!(code(m.lookup(&k32(3))), ErrorCode::Enoent);
    m.update(&k32(6), &[6; 4], BPF_ANY).unwrap();
    assert_eq!(code(m.lookup(&k32(1))), ErrorCode::Enoent);
    assert_eq!(m.len(), 3);
}

#[test]
fn percpu_values_span_every_cpu() {
    let n = possible_cpus();
    let a = create(MapType::PercpuArray, 4, 4, 2);
    assert_eq!(a.value_blob_size(), n * 8);
    let mut blob = vec![0u8; n * 8];
    for c in 0..n {
        blob[c * 8..c * 8 + 4].copy_from_slice(&(c as u32 + 100).to_ne_bytes());
    }
    a.update(&k32(1), &blob, BPF_ANY).unwrap();
    assert_eq!(a.lookup(&k32(1)).unwrap(), blob);
    // One value alone is the wrong size for user space.
    assert_eq!(code(a.update(&k32(1), &[0; 4], BPF_ANY)), ErrorCode::Einval);

    let h = create(MapType::PercpuHash, 4, 4, 2);
    h.update(&k32(7), &blob, BPF_ANY).unwrap();
    assert_eq!(h.lookup(&k32(7)).unwrap(), blob);
    // Program side: each CPU slot separately; a new element's other slots are zero.
    h.prog_update_elem(&k32(8), &[1, 2, 3, 4], BPF_ANY, 0)
        .unwrap();
    let got = h.lookup(&k32(8)).unwrap();
    assert_eq!(&got[..4], &[1, 2, 3, 4]);
    assert!(got[8..].iter().all(|&b| b == 0));
}

#[test]
fn queue_and_stack() {
    // Observed: push on a full queue is E2BIG; BPF_EXIST drops the oldest; pop of an empty map
    // is ENOENT.
    let q = create(MapType::Queue, 0, 4, 2);
    q.push(&k32(1), BPF_ANY).unwrap();
    q.push(&k32(2), BPF_ANY).unwrap();
    assert_eq!(code(q.push(&k32(3), BPF_ANY)), ErrorCode::E2big);
    q.update(&[], &k32(3), BPF_EXIST).unwrap();
    assert_eq!(q.peek().unwrap(), k32(2));
    assert_eq!(q.pop().unwrap(), k32(2));
    assert_eq!(q.pop().unwrap(), k32(3));
    assert_eq!(code(q.pop()), ErrorCode::Enoent);
    assert_eq!(code(q.peek()), ErrorCode::Enoent);
    // Observed: BPF_NOEXIST is EINVAL for push.
    assert_eq!(code(q.push(&k32(1), BPF_NOEXIST)), ErrorCode::Einval);
    assert_eq!(code(q.delete(&[])), ErrorCode::Einval);

    // Observed: stack 1, 2, then 3 with BPF_EXIST pops 3 then 2 (1, the oldest, was dropped).
    let s = create(MapType::Stack, 0, 4, 2);
    s.push(&k32(1), BPF_ANY).unwrap();
    s.push(&k32(2), BPF_ANY).unwrap();
    s.push(&k32(3), BPF_EXIST).unwrap();
    assert_eq!(s.lookup_and_delete(&[]).unwrap(), k32(3));
    assert_eq!(s.pop().unwrap(), k32(2));
    assert_eq!(code(s.pop()), ErrorCode::Enoent);
}

fn lpm_key(plen: u32, ip: [u8; 4]) -> Vec<u8> {
    let mut k = plen.to_ne_bytes().to_vec();
    k.extend_from_slice(&ip);
    k
}

#[test]
fn lpm_longest_prefix_and_order() {
    let m =
        maps::create(MapDef::new(MapType::LpmTrie, 8, 4, 4).with_flags(BPF_F_NO_PREALLOC)).unwrap();
    assert_eq!(m.downcast::<LpmTrie>().unwrap().max_prefixlen(), 32);
    m.update(&lpm_key(16, [192, 168, 0, 0]), &k32(16), BPF_ANY)
        .unwrap();
    m.update(&lpm_key(24, [192, 168, 128, 0]), &k32(24), BPF_ANY)
        .unwrap();
    m.update(&lpm_key(24, [192, 168, 1, 0]), &k32(25), BPF_ANY)
        .unwrap();
    m.update(&lpm_key(24, [192, 168, 0, 0]), &k32(26), BPF_ANY)
        .unwrap();
    // Observed: full trie is ENOSPC, prefixlen 33 is EINVAL, NOEXIST/EXIST as for hashes.
    assert_eq!(
        code(m.update(&lpm_key(8, [10, 0, 0, 0]), &k32(8), BPF_ANY)),
        ErrorCode::Enospc
    );
    assert_eq!(
        code(m.update(&lpm_key(33, [10, 0, 0, 0]), &k32(8), BPF_ANY)),
        ErrorCode::Einval
    );
    assert_eq!(
        code(m.update(&lpm_key(24, [192, 168, 0, 0]), &k32(1), BPF_NOEXIST)),
        ErrorCode::Eexist
    );
    assert_eq!(
        code(m.update(&lpm_key(20, [192, 168, 0, 0]), &k32(1), BPF_EXIST)),
        ErrorCode::Enoent
    );
    // Longest prefix, hand-computed (and observed): 192.168.1.77/32 -> the /24 (25);
    // 192.168.2.77/32 -> only the /16 matches; 192.168.1.77/20 -> the /24 is longer than the
    // key's 20 bits, so the /16; 10.1.1.1 -> nothing; prefixlen 40 -> nothing.
    assert_eq!(m.lookup(&lpm_key(32, [192, 168, 1, 77])).unwrap(), k32(25));
    assert_eq!(m.lookup(&lpm_key(32, [192, 168, 2, 77])).unwrap(), k32(16));
    assert_eq!(m.lookup(&lpm_key(20, [192, 168, 1, 77])).unwrap(), k32(16));
    assert_eq!(
        m.lookup(&lpm_key(32, [192, 168, 128, 255])).unwrap(),
        k32(24)
    );
    assert_eq!(m.lookup(&lpm_key(32, [192, 168, 0, 1])).unwrap(), k32(26));
    assert_eq!(
        code(m.lookup(&lpm_key(32, [10, 1, 1, 1]))),
        ErrorCode::Enoent
    );
    assert_eq!(
        code(m.lookup(&lpm_key(40, [192, 168, 1, 77]))),
        ErrorCode::Enoent
    );
    // Observed order (bpftool map dump): the /24s by address, then the /16 that contains them.
    assert_eq!(
        m.keys().unwrap(),
        vec![
            lpm_key(24, [192, 168, 0, 0]),
            lpm_key(24, [192, 168, 1, 0]),
            lpm_key(24, [192, 168, 128, 0]),
            lpm_key(16, [192, 168, 0, 0]),
        ]
    );
    // Observed: getnext after 192.168.1.0/24 is 192.168.128.0/24; a key not in the trie
    // (192.168.1.0/23) gives the first one.
    assert_eq!(
        m.next_key(Some(&lpm_key(24, [192, 168, 1, 0]))).unwrap(),
        lpm_key(24, [192, 168, 128, 0])
    );
    assert_eq!(
        m.next_key(Some(&lpm_key(23, [192, 168, 1, 0]))).unwrap(),
        lpm_key(24, [192, 168, 0, 0])
    );
    // Delete is exact; the /16 then answers for 192.168.1.x.
    assert_eq!(
        code(m.delete(&lpm_key(23, [192, 168, 1, 0]))),
        ErrorCode::Enoent
    );
    m.delete(&lpm_key(24, [192, 168, 1, 0])).unwrap();
    assert_eq!(m.lookup(&lpm_key(32, [192, 168, 1, 77])).unwrap(), k32(16));
    // A default route (/0) matches everything.
    m.update(&lpm_key(0, [0, 0, 0, 0]), &k32(0), BPF_ANY)
        .unwrap();
    assert_eq!(m.lookup(&lpm_key(32, [8, 8, 8, 8])).unwrap(), k32(0));
}

#[test]
fn lpm_lengths_0_and_32_overlapping_prefixes_and_deletes() {
    let m =
        maps::create(MapDef::new(MapType::LpmTrie, 8, 4, 8).with_flags(BPF_F_NO_PREALLOC)).unwrap();
    // Nested prefixes of 10.1.2.3: /0, /8, /16, /31, /32 (hand-computed matches below).
    for (plen, ip) in [
        (0, [0, 0, 0, 0]),
        (8, [10, 0, 0, 0]),
        (16, [10, 1, 0, 0]),
        (31, [10, 1, 2, 2]),
        (32, [10, 1, 2, 3]),
    ] {
        m.update(&lpm_key(plen, ip), &k32(plen), BPF_ANY).unwrap();
    }
    let at = |plen: u32, ip: [u8; 4]| m.lookup(&lpm_key(plen, ip)).unwrap();
    assert_eq!(at(32, [10, 1, 2, 3]), k32(32));
    // 10.1.2.2 differs from 10.1.2.3 in the last bit only: the /31 holds both.
    assert_eq!(at(32, [10, 1, 2, 2]), k32(31));
    // A key of 31 bits cannot use the /32.
    assert_eq!(at(31, [10, 1, 2, 3]), k32(31));
    assert_eq!(at(32, [10, 1, 2, 4]), k32(16));
    assert_eq!(at(32, [10, 2, 0, 0]), k32(8));
    assert_eq!(at(32, [11, 0, 0, 0]), k32(0));
    // A key of 0 bits matches the /0 only.
    assert_eq!(at(0, [10, 1, 2, 3]), k32(0));
    // Deletes take out one length at a time; the next shorter prefix answers.
    m.delete(&lpm_key(32, [10, 1, 2, 3])).unwrap();
    assert_eq!(at(32, [10, 1, 2, 3]), k32(31));
    m.delete(&lpm_key(31, [10, 1, 2, 2])).unwrap();
    assert_eq!(at(32, [10, 1, 2, 3]), k32(16));
    m.delete(&lpm_key(0, [0, 0, 0, 0])).unwrap();
    assert_eq!(
        code(m.lookup(&lpm_key(32, [11, 0, 0, 0]))),
        ErrorCode::Enoent
    );
    assert_eq!(at(32, [10, 1, 2, 3]), k32(16));
    // Deleting again is ENOENT; inserting again answers again.
    assert_eq!(
        code(m.delete(&lpm_key(32, [10, 1, 2, 3]))),
        ErrorCode::Enoent
    );
    m.update(&lpm_key(32, [10, 1, 2, 3]), &k32(99), BPF_ANY)
        .unwrap();
    assert_eq!(at(32, [10, 1, 2, 3]), k32(99));
    assert_eq!(at(32, [10, 1, 2, 2]), k32(16));
}

/// Many prefixes inserted and half of them deleted (the index grows and closes the gaps deletes
/// leave): every lookup gives what a scan of the prefixes left finds, the longest whose bits the
/// key begins with.
#[test]
fn lpm_many_prefixes_match_a_scan_of_the_entries() {
    let m = maps::create(MapDef::new(MapType::LpmTrie, 8, 4, 2000).with_flags(BPF_F_NO_PREALLOC))
        .unwrap();
    // A linear congruential sequence: prefixes of lengths 0-32 with few distinct high bits, so
    // that they overlap.
    let mut x: u32 = 12345;
    let mut next = || {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        x
    };
    let mask = |plen: u32| {
        if plen == 0 {
            0
        } else {
            u32::MAX << (32 - plen)
        }
    };
    let mut live: Vec<(u32, u32, u32)> = Vec::new();
    for i in 0..1500u32 {
        let plen = next() % 33;
        let addr = (next() & 0xff0f_0f0f) & mask(plen);
        if live.iter().any(|&(p, a, _)| p == plen && a == addr) {
            continue;
        }
        m.update(&lpm_key(plen, addr.to_be_bytes()), &k32(i), BPF_ANY)
            .unwrap();
        live.push((plen, addr, i));
    }
    let mut removed = 0;
    let mut i = 0;
    while i < live.len() {
        if next() % 2 == 0 {
            let (plen, addr, _) = live.swap_remove(i);
            m.delete(&lpm_key(plen, addr.to_be_bytes())).unwrap();
            removed += 1;
        } else {
            i += 1;
        }
    }
    assert!(removed > 300 && live.len() > 300);
    for _ in 0..3000 {
        let plen = 32 - next() % 4;
        let addr = next() & 0xff0f_0f0f;
        let want = (live.iter())
            .filter(|&&(p, a, _)| p <= plen && addr & mask(p) == a)
            .max_by_key(|&&(p, _, _)| p)
            .copied();
        match want {
            None => assert_eq!(
                code(m.lookup(&lpm_key(plen, addr.to_be_bytes()))),
                ErrorCode::Enoent
            ),
            Some((p, a, v)) => assert_eq!(
                m.lookup(&lpm_key(plen, addr.to_be_bytes())).unwrap(),
                k32(v),
                "key {addr:#x}/{plen}: expected {a:#x}/{p}"
            ),
        }
    }
    assert_eq!(m.keys().unwrap().len(), live.len());
}

#[test]
fn lpm_bits_after_the_prefix_do_not_matter() {
    let m =
        maps::create(MapDef::new(MapType::LpmTrie, 8, 1, 8).with_flags(BPF_F_NO_PREALLOC)).unwrap();
    // 10.0.0.0/7 (hand: first 7 bits 0000101) with junk in later bits.
    m.update(&lpm_key(7, [0x0b, 0xff, 0xff, 0xff]), &[7], BPF_ANY)
        .unwrap();
    assert_eq!(m.lookup(&lpm_key(32, [0x0a, 1, 2, 3])).unwrap(), vec![7]);
    assert_eq!(m.lookup(&lpm_key(32, [0x0b, 0, 0, 0])).unwrap(), vec![7]);
    assert_eq!(
        code(m.lookup(&lpm_key(32, [0x0c, 0, 0, 0]))),
        ErrorCode::Enoent
    );
    // The same prefix with other junk is the same element.
    assert_eq!(
        code(m.update(&lpm_key(7, [0x0a, 0, 0, 0]), &[8], BPF_NOEXIST)),
        ErrorCode::Eexist
    );
    // 128-bit keys: a /65 differs from a /64 only in bit 64.
    let v6 = maps::create(MapDef::new(MapType::LpmTrie, 20, 1, 8).with_flags(BPF_F_NO_PREALLOC))
        .unwrap();
    let key = |plen: u32, b8: u8| {
        let mut k = plen.to_ne_bytes().to_vec();
        k.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, b8, 0, 0, 0, 0, 0, 0, 0]);
        k
    };
    v6.update(&key(64, 0), &[64], BPF_ANY).unwrap();
    v6.update(&key(65, 0x80), &[65], BPF_ANY).unwrap();
    assert_eq!(v6.lookup(&key(128, 0x80)).unwrap(), vec![65]);
    assert_eq!(v6.lookup(&key(128, 0x7f)).unwrap(), vec![64]);
}

#[test]
fn bloom_filter_has_no_false_negatives() {
    let m = maps::create(MapDef::new(MapType::BloomFilter, 0, 4, 100).with_map_extra(3)).unwrap();
    for i in 0..100u32 {
        m.push(&(i * 7919).to_ne_bytes(), BPF_ANY).unwrap();
    }
    for i in 0..100u32 {
        m.contains(&(i * 7919).to_ne_bytes()).unwrap();
    }
    // With 3 hashes and >= 100*3/ln2 bits the false-positive rate is about 1/8 or less: of 1000
    // absent values, far fewer than half may test positive.
    let fp = (1000..2000u32)
        .filter(|i| m.contains(&(i * 7919 + 1).to_ne_bytes()).is_ok())
        .count();
    assert!(fp < 500, "{fp} false positives");
    assert_eq!(code(m.push(&k32(1), BPF_EXIST)), ErrorCode::Einval);
    assert_eq!(code(m.pop()), ErrorCode::Enotsupp);
    assert_eq!(code(m.delete(&[])), ErrorCode::Enotsupp);
}

#[test]
fn prog_array_holds_opaque_programs() {
    let m = create(MapType::ProgArray, 4, 4, 4);
    let pa = m.downcast::<ProgArray>().unwrap();
    pa.set(2, 42, Arc::new("program two")).unwrap();
    assert_eq!(code(pa.set(4, 1, Arc::new(()))), ErrorCode::E2big);
    let got = pa.get(2).unwrap();
    assert_eq!(got.downcast_ref::<&str>(), Some(&"program two"));
    assert!(pa.get(1).is_none());
    assert_eq!(m.lookup(&k32(2)).unwrap(), 42u32.to_ne_bytes());
    assert_eq!(code(m.lookup(&k32(1))), ErrorCode::Enoent);
    assert_eq!(code(m.update(&k32(1), &k32(1), BPF_ANY)), ErrorCode::Einval);
    m.delete(&k32(2)).unwrap();
    assert_eq!(code(m.delete(&k32(2))), ErrorCode::Enoent);
    assert_eq!(m.keys().unwrap().len(), 4);
}

#[test]
fn map_in_map_checks_inner_maps() {
    let inner_def = MapDef::new(MapType::Hash, 4, 8, 16);
    let outer =
        maps::create(MapDef::new(MapType::ArrayOfMaps, 4, 4, 2).with_inner(inner_def.clone()))
            .unwrap();
    let inner = maps::create(inner_def.clone()).unwrap();
    // By id, as user space passes an fd to the kernel; lookups give the id back.
    outer
        .update(&k32(1), &inner.id().to_ne_bytes(), BPF_ANY)
        .unwrap();
    assert_eq!(outer.lookup(&k32(1)).unwrap(), inner.id().to_ne_bytes());
    assert_eq!(code(outer.lookup(&k32(0))), ErrorCode::Enoent);
    // Wrong shape, unknown id, flags, range.
    let wrong = create(MapType::Hash, 4, 8, 17);
    let oom = outer.downcast::<MapOfMaps>().unwrap();
    assert_eq!(code(oom.set(&k32(0), wrong, BPF_ANY)), ErrorCode::Einval);
    assert_eq!(
        code(outer.update(&k32(0), &u32::MAX.to_ne_bytes(), BPF_ANY)),
        ErrorCode::Einval
    );
    assert_eq!(
        code(outer.update(&k32(0), &inner.id().to_ne_bytes(), BPF_NOEXIST)),
        ErrorCode::Einval
    );
    assert_eq!(
        code(outer.update(&k32(2), &inner.id().to_ne_bytes(), BPF_ANY)),
        ErrorCode::E2big
    );
    assert!(Arc::ptr_eq(&oom.get(&k32(1)).unwrap(), &inner));
    // BPF_F_INNER_MAP lets inner maps differ in max_entries.
    let flexible = maps::create(
        MapDef::new(MapType::HashOfMaps, 8, 4, 2)
            .with_inner(MapDef::new(MapType::Array, 4, 4, 1).with_flags(BPF_F_INNER_MAP)),
    )
    .unwrap();
    let big =
        maps::create(MapDef::new(MapType::Array, 4, 4, 100).with_flags(BPF_F_INNER_MAP)).unwrap();
    flexible
        .update(&[1; 8], &big.id().to_ne_bytes(), BPF_ANY)
        .unwrap();
    assert_eq!(flexible.keys().unwrap(), vec![vec![1; 8]]);
    flexible.delete(&[1; 8]).unwrap();
    // hash_of_maps has lookup-and-delete batches (the kernel's BATCH_OPS(htab)): the inner id.
    flexible
        .update(&[2; 8], &big.id().to_ne_bytes(), BPF_ANY)
        .unwrap();
    let taken = flexible.lookup_and_delete_batch(None, 4).unwrap();
    assert_eq!(taken.keys, vec![vec![2; 8]]);
    assert_eq!(taken.values, vec![big.id().to_ne_bytes().to_vec()]);
    assert_eq!(flexible.len(), 0);
}

#[test]
fn permissions_and_freeze() {
    let ro = maps::create(MapDef::new(MapType::Array, 4, 4, 1).with_flags(BPF_F_RDONLY)).unwrap();
    assert_eq!(code(ro.update(&k32(0), &k32(1), BPF_ANY)), ErrorCode::Eperm);
    ro.lookup(&k32(0)).unwrap();
    let wo = maps::create(MapDef::new(MapType::Hash, 4, 4, 1).with_flags(BPF_F_WRONLY)).unwrap();
    wo.update(&k32(0), &k32(1), BPF_ANY).unwrap();
    assert_eq!(code(wo.lookup(&k32(0))), ErrorCode::Eperm);
    let m = create(MapType::Hash, 4, 4, 4);
    m.update(&k32(0), &k32(1), BPF_ANY).unwrap();
    m.freeze().unwrap();
    assert!(m.is_frozen());
    assert_eq!(code(m.update(&k32(0), &k32(2), BPF_ANY)), ErrorCode::Eperm);
    assert_eq!(code(m.delete(&k32(0))), ErrorCode::Eperm);
    assert_eq!(m.lookup(&k32(0)).unwrap(), k32(1));
}

#[test]
fn batches() {
    let m = create(MapType::Hash, 4, 4, 10);
    let keys: Vec<[u8; 4]> = (0..5).map(|i| k32(i * 256)).collect();
    let vals: Vec<[u8; 4]> = (0..5).map(|i| k32(i + 1)).collect();
    let kr: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
    let vr: Vec<&[u8]> = vals.iter().map(|v| &v[..]).collect();
    let (n, r) = m.update_batch(&kr, &vr, BPF_ANY);
    assert_eq!((n, r), (5, Ok(())));
    // A batch stops at the first failure and says how far it got.
    let (n, r) = m.update_batch(&kr[..2], &vr[..2], BPF_NOEXIST);
    assert_eq!(n, 0);
    assert_eq!(r.unwrap_err().code, ErrorCode::Eexist);
    // Walk in batches of 2: 2 + 2 + 1, in key byte order (k32(i*256) = [0, i, 0, 0]).
    let b1 = m.lookup_batch(None, 2).unwrap();
    assert_eq!(b1.keys, vec![keys[0].to_vec(), keys[1].to_vec()]);
    assert_eq!(b1.values, vec![vals[0].to_vec(), vals[1].to_vec()]);
    // The cursor's key disappears between batches: the walk goes on after it, not from the start.
    m.delete(&keys[1]).unwrap();
    let b2 = m.lookup_batch(b1.next.as_deref(), 2).unwrap();
    assert_eq!(b2.keys, vec![keys[2].to_vec(), keys[3].to_vec()]);
    let b3 = m.lookup_batch(b2.next.as_deref(), 2).unwrap();
    assert_eq!(b3.keys, vec![keys[4].to_vec()]);
    assert_eq!(b3.next, None);
    m.update(&keys[1], &vals[1], BPF_ANY).unwrap();
    // Lookup-and-delete empties the map batch by batch.
    let d1 = m.lookup_and_delete_batch(None, 3).unwrap();
    assert_eq!(d1.keys.len(), 3);
    let d2 = m.lookup_and_delete_batch(d1.next.as_deref(), 3).unwrap();
    assert_eq!(d2.keys, vec![keys[3].to_vec(), keys[4].to_vec()]);
    assert_eq!(m.len(), 0);
    let (n, r) = m.delete_batch(&kr[..1]);
    assert_eq!(n, 0);
    assert_eq!(r.unwrap_err().code, ErrorCode::Enoent);
    // As in the kernel, only the hash types (and hash_of_maps) have lookup-and-delete batches;
    // the others are ENOTSUPP and keep their elements.
    let a = create(MapType::Array, 4, 4, 2);
    a.update(&k32(0), &k32(5), BPF_ANY).unwrap();
    let e = a.lookup_and_delete_batch(None, 2).unwrap_err();
    assert_eq!(e.code, ErrorCode::Enotsupp);
    assert_eq!(a.lookup(&k32(0)).unwrap(), k32(5));
    let lpm =
        maps::create(MapDef::new(MapType::LpmTrie, 8, 4, 2).with_flags(BPF_F_NO_PREALLOC)).unwrap();
    lpm.update(&[32, 0, 0, 0, 10, 0, 0, 1], &k32(1), BPF_ANY)
        .unwrap();
    let e = lpm.lookup_and_delete_batch(None, 2).unwrap_err();
    assert_eq!(e.code, ErrorCode::Enotsupp);
    assert_eq!(lpm.len(), 1);
}

#[test]
fn map_ids_find_live_maps_only() {
    let m = create(MapType::Array, 4, 4, 1);
    let id = m.id();
    assert!(Arc::ptr_eq(&maps::registry::by_id(id).unwrap(), &m));
    drop(m);
    assert!(maps::registry::by_id(id).is_none());
}

#[test]
fn spin_lock_values() {
    // Only hash and array values may hold a lock; it must be 4-aligned inside the value.
    for (def, want) in [
        (
            MapDef::new(MapType::PercpuHash, 4, 16, 1).with_spin_lock(0),
            ErrorCode::Enotsupp,
        ),
        (
            MapDef::new(MapType::Array, 4, 16, 1).with_spin_lock(6),
            ErrorCode::Einval,
        ),
        (
            MapDef::new(MapType::Array, 4, 16, 1).with_spin_lock(16),
            ErrorCode::Einval,
        ),
    ] {
        assert_eq!(code(maps::create(def.clone())), want, "{def:?}");
    }
    let m = maps::create(MapDef::new(MapType::Array, 4, 16, 2).with_spin_lock(8)).unwrap();
    let a = m.downcast::<ArrayMap>().unwrap();
    let lock_word = |held: Option<u32>| {
        // SAFETY: bytes 8..12 of element 0, 4-aligned, inside the map's storage.
        let w = unsafe {
            std::sync::atomic::AtomicU32::from_ptr(a.storage().as_ptr().add(8) as *mut u32)
        };
        if let Some(v) = held {
            w.store(v, std::sync::atomic::Ordering::SeqCst);
        }
        w.load(std::sync::atomic::Ordering::SeqCst)
    };
    // User copies never write the lock word and read it as 0.
    m.update(&k32(0), &[0xaa; 16], BPF_ANY).unwrap();
    assert_eq!(lock_word(None), 0);
    let mut want = vec![0xaa; 16];
    want[8..12].fill(0);
    assert_eq!(m.lookup(&k32(0)).unwrap(), want);
    // While a program holds the lock (word = 1), a plain update goes ahead around it...
    lock_word(Some(1));
    m.update(&k32(0), &[0xbb; 16], BPF_ANY).unwrap();
    assert_eq!(lock_word(None), 1);
    // ...and a BPF_F_LOCK update waits for the unlock.
    let m2 = m.clone();
    let t = std::thread::spawn(move || m2.update(&k32(0), &[0xcc; 16], BPF_F_LOCK | BPF_EXIST));
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(m.lookup(&k32(0)).unwrap()[0], 0xbb);
    lock_word(Some(0));
    t.join().unwrap().unwrap();
    assert_eq!(m.lookup_with_flags(&k32(0), BPF_F_LOCK).unwrap()[0], 0xcc);
    assert_eq!(lock_word(None), 0);
    // BPF_F_LOCK with BPF_NOEXIST is still EEXIST for an array; unknown lookup flags are EINVAL.
    assert_eq!(
        code(m.update(&k32(1), &[0; 16], BPF_F_LOCK | BPF_NOEXIST)),
        ErrorCode::Eexist
    );
    assert_eq!(code(m.lookup_with_flags(&k32(0), 8)), ErrorCode::Einval);
    // A map without a lock refuses BPF_F_LOCK both ways.
    let plain = create(MapType::Hash, 4, 16, 2);
    plain.update(&k32(0), &[1; 16], BPF_ANY).unwrap();
    assert_eq!(
        code(plain.update(&k32(0), &[1; 16], BPF_F_LOCK)),
        ErrorCode::Einval
    );
    assert_eq!(
        code(plain.lookup_with_flags(&k32(0), BPF_F_LOCK)),
        ErrorCode::Einval
    );
}

#[test]
fn lpm_batches_continue_after_a_deleted_cursor() {
    let m =
        maps::create(MapDef::new(MapType::LpmTrie, 8, 4, 8).with_flags(BPF_F_NO_PREALLOC)).unwrap();
    for (plen, ip) in [(8, [10, 0, 0, 0]), (16, [10, 1, 0, 0]), (24, [10, 1, 1, 0])] {
        m.update(&lpm_key(plen, ip), &k32(plen), BPF_ANY).unwrap();
    }
    // Post-order: 10.1.1.0/24, 10.1.0.0/16, 10.0.0.0/8.
    let b1 = m.lookup_batch(None, 1).unwrap();
    assert_eq!(b1.keys, vec![lpm_key(24, [10, 1, 1, 0])]);
    m.delete(&lpm_key(24, [10, 1, 1, 0])).unwrap();
    let b2 = m.lookup_batch(b1.next.as_deref(), 5).unwrap();
    assert_eq!(
        b2.keys,
        vec![lpm_key(16, [10, 1, 0, 0]), lpm_key(8, [10, 0, 0, 0])]
    );
    assert_eq!(b2.next, None);
}

/// A key of `plen` and `data` for an LPM trie of `data.len()` data bytes.
fn lpm_key_of(plen: u32, data: &[u8]) -> Vec<u8> {
    let mut k = plen.to_ne_bytes().to_vec();
    k.extend_from_slice(data);
    k
}

/// Longest-prefix lookups of tries whose keys have 3, 16 (IPv6) and 20 data bytes (the first
/// two through the index by length, the last through the sorted entries), with a default route
/// (/0), prefixes that share bits, a prefix updated with other bits past its length, and deletes
/// that take the last prefix of a length away. Each expected slot is worked out by hand from the
/// bits: the longest stored prefix, no longer than the key's, whose bits the key's data begins
/// with.
#[test]
fn lpm_longest_prefix_by_hand_for_each_key_size() {
    for data_len in [3usize, 16, 20] {
        let m = maps::create(
            MapDef::new(MapType::LpmTrie, 4 + data_len as u32, 4, 8).with_flags(BPF_F_NO_PREALLOC),
        )
        .unwrap();
        // Data whose first bytes are `head`, the rest `fill`.
        let data = |head: &[u8], fill: u8| {
            let mut d = vec![fill; data_len];
            d[..head.len()].copy_from_slice(head);
            d
        };
        let put = |plen: u32, d: Vec<u8>, v: u32| m.update(&lpm_key_of(plen, &d), &k32(v), BPF_ANY);
        let get = |plen: u32, d: Vec<u8>| m.lookup(&lpm_key_of(plen, &d)).ok();
        put(0, data(&[], 0), 100).unwrap(); // default route
        put(8, data(&[0xab], 0), 8).unwrap(); // 0xab/8
        put(12, data(&[0xab, 0xc0], 0), 12).unwrap(); // 0xabc/12
        put(9, data(&[0xab, 0x80], 0), 9).unwrap(); // 0xab then bit 1 /9
                                                    // The same /12 with other bits past its length: an update, not a new prefix.
        put(12, data(&[0xab, 0xcf], 0xff), 13).unwrap();
        assert_eq!(m.len(), 4, "{data_len}");
        // 0xab 0xcd ...: bits 0xabc match /12 (13), /9 (bit 8 of 0xcd is 1), /8, /0.
        assert_eq!(get(24, data(&[0xab, 0xcd], 0x11)), Some(k32(13).to_vec()));
        // 0xab 0xbd: bit 8 is 1, so /9; the /12 needs 0xabc.
        assert_eq!(get(24, data(&[0xab, 0xbd], 0)), Some(k32(9).to_vec()));
        // 0xab 0x3d: bit 8 is 0: /8.
        assert_eq!(get(24, data(&[0xab, 0x3d], 0)), Some(k32(8).to_vec()));
        // The key's own length bounds the match: 0xab 0xcd /11 cannot take the /12: /9.
        assert_eq!(get(11, data(&[0xab, 0xcd], 0)), Some(k32(9).to_vec()));
        // 0xaa: only the default route; a key of length 0 too.
        assert_eq!(get(24, data(&[0xaa], 0)), Some(k32(100).to_vec()));
        assert_eq!(get(0, data(&[0xab, 0xcd], 0)), Some(k32(100).to_vec()));
        // Deleting the /12 (the last of its length) and the /0 leaves /9 and /8.
        m.delete(&lpm_key_of(12, &data(&[0xab, 0xc0], 0))).unwrap();
        m.delete(&lpm_key_of(0, &data(&[], 0))).unwrap();
        assert_eq!(get(24, data(&[0xab, 0xcd], 0)), Some(k32(9).to_vec()));
        assert_eq!(get(24, data(&[0xaa], 0)), None);
        // A full-length prefix matches only its own data.
        let full = 8 * data_len as u32;
        put(full, data(&[0xab, 0xcd], 0x5a), 77).unwrap();
        assert_eq!(get(full, data(&[0xab, 0xcd], 0x5a)), Some(k32(77).to_vec()));
        let mut other = data(&[0xab, 0xcd], 0x5a);
        *other.last_mut().unwrap() ^= 1;
        assert_eq!(get(full, other), Some(k32(9).to_vec()));
    }
}
