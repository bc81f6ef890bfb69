//! Several std threads using one map at once through its user-space face. Each thread works on its
//! own keys (or counts what it did), so the final contents are known exactly whatever the
//! interleaving.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use ebpf_vm::maps::def::flags::*;
use ebpf_vm::maps::{self, Map, MapDef, MapType};
use ebpf_vm::ErrorCode;

const THREADS: u32 = 4;
const PER: u32 = 500;

fn spawn_all(m: &Arc<dyn Map>, f: fn(&Arc<dyn Map>, u32)) {
    let hs: Vec<_> = (0..THREADS)
        .map(|t| {
            let m = m.clone();
            thread::spawn(move || f(&m, t))
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
}

fn key(t: u32, i: u32) -> [u8; 8] {
    let mut k = [0u8; 8];
    k[..4].copy_from_slice(&t.to_be_bytes());
    k[4..].copy_from_slice(&i.to_be_bytes());
    k
}

#[test]
fn hash_updates_and_deletes_from_several_threads() {
    let m = maps::create(MapDef::new(MapType::Hash, 8, 8, THREADS * PER)).unwrap();
    spawn_all(&m, |m, t| {
        for i in 0..PER {
            m.update(
                &key(t, i),
                &((t * PER + i) as u64).to_ne_bytes(),
                BPF_NOEXIST,
            )
            .unwrap();
        }
        // Delete the odd ones again, and overwrite the even ones with BPF_EXIST.
        for i in 0..PER {
            if i % 2 == 1 {
                m.delete(&key(t, i)).unwrap();
            } else {
                m.update(&key(t, i), &(i as u64).to_ne_bytes(), BPF_EXIST)
                    .unwrap();
            }
        }
    });
    let keys = m.keys().unwrap();
    assert_eq!(keys.len(), (THREADS * PER / 2) as usize);
    // Byte order of big-endian (thread, index) keys is numeric order.
    let want: Vec<Vec<u8>> = (0..THREADS)
        .flat_map(|t| (0..PER).step_by(2).map(move |i| key(t, i).to_vec()))
        .collect();
    assert_eq!(keys, want);
    for k in &keys {
        let i = u32::from_be_bytes(k[4..].try_into().unwrap());
        assert_eq!(m.lookup(k).unwrap(), (i as u64).to_ne_bytes());
    }
}

#[test]
fn a_full_hash_admits_exactly_max_entries_under_contention() {
    let m = maps::create(MapDef::new(MapType::Hash, 8, 8, 1000)).unwrap();
    static OK: AtomicUsize = AtomicUsize::new(0);
    spawn_all(&m, |m, t| {
        for i in 0..PER {
            match m.update(&key(t, i), &[1; 8], BPF_ANY) {
                Ok(()) => {
                    OK.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => assert_eq!(e.code, ErrorCode::E2big),
            }
        }
    });
    assert_eq!(OK.load(Ordering::Relaxed), 1000);
    assert_eq!(m.len(), 1000);
}

#[test]
fn lru_stays_at_capacity_under_contention() {
    let m = maps::create(MapDef::new(MapType::LruHash, 8, 8, 100)).unwrap();
    spawn_all(&m, |m, t| {
        for i in 0..PER {
            m.update(&key(t, i), &[2; 8], BPF_ANY).unwrap();
        }
    });
    assert_eq!(m.len(), 100);
    assert_eq!(m.keys().unwrap().len(), 100);
}

#[test]
fn queue_loses_and_duplicates_nothing() {
    let q = maps::create(MapDef::new(MapType::Queue, 0, 8, THREADS * PER)).unwrap();
    spawn_all(&q, |q, t| {
        for i in 0..PER {
            q.push(&((t * PER + i) as u64).to_ne_bytes(), BPF_ANY)
                .unwrap();
        }
    });
    let mut seen = vec![false; (THREADS * PER) as usize];
    let mut last = vec![None::<u32>; THREADS as usize];
    while let Ok(v) = q.pop() {
        let v = u64::from_ne_bytes(v.try_into().unwrap()) as u32;
        assert!(!seen[v as usize]);
        seen[v as usize] = true;
        // FIFO: each producer's values come out in the order it pushed them.
        let (t, i) = (v / PER, v % PER);
        assert!(last[t as usize].is_none_or(|l| l < i));
        last[t as usize] = Some(i);
    }
    assert!(seen.iter().all(|&s| s));
}

#[test]
fn lpm_inserts_from_several_threads() {
    let m = maps::create(
        MapDef::new(MapType::LpmTrie, 8, 4, THREADS * PER).with_flags(BPF_F_NO_PREALLOC),
    )
    .unwrap();
    spawn_all(&m, |m, t| {
        for i in 0..PER {
            // 10.t.(i/256).(i%256)/32
            let mut k = 32u32.to_ne_bytes().to_vec();
            k.extend_from_slice(&[10, t as u8, (i / 256) as u8, (i % 256) as u8]);
            m.update(&k, &(t * PER + i).to_ne_bytes(), BPF_ANY).unwrap();
        }
    });
    assert_eq!(m.len(), (THREADS * PER) as usize);
    let mut k = 32u32.to_ne_bytes().to_vec();
    k.extend_from_slice(&[10, 3, 1, 4]);
    assert_eq!(m.lookup(&k).unwrap(), (3 * PER + 260).to_ne_bytes());
}

#[test]
fn array_readers_and_writers() {
    let m = maps::create(MapDef::new(MapType::Array, 4, 8, THREADS)).unwrap();
    spawn_all(&m, |m, t| {
        for i in 0..PER as u64 {
            m.update(&t.to_ne_bytes(), &i.to_ne_bytes(), BPF_ANY)
                .unwrap();
            let v = u64::from_ne_bytes(m.lookup(&t.to_ne_bytes()).unwrap().try_into().unwrap());
            // Only this thread writes element t.
            assert_eq!(v, i);
        }
    });
    for t in 0..THREADS {
        assert_eq!(
            m.lookup(&t.to_ne_bytes()).unwrap(),
            ((PER - 1) as u64).to_ne_bytes()
        );
    }
}

/// `lookup_and_delete_batch` against a thread that deletes the same keys one by one: every key is
/// removed exactly once, either returned by a batch or deleted by the other thread, never both,
/// never lost (before, a key the other thread deleted between the batch's lookup and its delete
/// failed the batch with ENOENT after it had already deleted and dropped the keys before it).
#[test]
fn a_deleting_batch_returns_each_key_it_removes_exactly_once_under_concurrent_deletes() {
    for map_type in [MapType::Hash, MapType::LruHash, MapType::PercpuHash] {
        const N: u32 = 4000;
        for round in 0..4 {
            let m = maps::create(MapDef::new(map_type, 8, 8, N)).unwrap();
            for i in 0..N {
                let mut v = vec![0u8; m.value_blob_size()];
                v[..8].copy_from_slice(&(i as u64).to_ne_bytes());
                m.update(&key(0, i), &v, BPF_NOEXIST).unwrap();
            }
            let deleter = {
                let m = m.clone();
                thread::spawn(move || {
                    // From the end backwards (or interleaved), so the two meet in the middle.
                    let mut deleted = Vec::new();
                    for j in 0..N {
                        let i = if round % 2 == 0 {
                            N - 1 - j
                        } else {
                            (j * 7919) % N
                        };
                        match m.delete(&key(0, i)) {
                            Ok(()) => deleted.push(i),
                            Err(e) => assert_eq!(e.code, ErrorCode::Enoent),
                        }
                    }
                    deleted
                })
            };
            let mut returned = Vec::new();
            let mut cursor: Option<Vec<u8>> = None;
            loop {
                let b = m
                    .lookup_and_delete_batch(cursor.as_deref(), 16)
                    .unwrap_or_else(|e| panic!("{map_type:?}: {e}"));
                for (k, v) in b.keys.iter().zip(&b.values) {
                    let i = u32::from_be_bytes(k[4..].try_into().unwrap());
                    // The value is the one stored under that key.
                    assert_eq!(v[..8], (i as u64).to_ne_bytes());
                    returned.push(i);
                }
                match b.next {
                    Some(n) => cursor = Some(n),
                    None => break,
                }
            }
            let deleted = deleter.join().unwrap();
            let mut all: Vec<u32> = returned.iter().chain(&deleted).copied().collect();
            all.sort_unstable();
            let want: Vec<u32> = (0..N).collect();
            assert_eq!(
                all.len(),
                N as usize,
                "{map_type:?} round {round}: {} returned + {} deleted by the other thread",
                returned.len(),
                deleted.len()
            );
            assert_eq!(all, want, "{map_type:?} round {round}");
            assert_eq!(m.len(), 0);
        }
    }
}

/// `lookup_and_delete` of the same keys from several threads: each key's value goes to exactly one
/// of them (the others get ENOENT).
#[test]
fn lookup_and_delete_gives_each_value_to_exactly_one_thread() {
    const N: u32 = 2000;
    let m = maps::create(MapDef::new(MapType::Hash, 8, 8, N)).unwrap();
    for i in 0..N {
        m.update(&key(0, i), &(i as u64).to_ne_bytes(), BPF_NOEXIST)
            .unwrap();
    }
    static TAKEN: AtomicUsize = AtomicUsize::new(0);
    spawn_all(&m, |m, _| {
        for i in 0..N {
            match m.lookup_and_delete(&key(0, i)) {
                Ok(v) => {
                    assert_eq!(v, (i as u64).to_ne_bytes());
                    TAKEN.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => assert_eq!(e.code, ErrorCode::Enoent),
            }
        }
    });
    assert_eq!(TAKEN.load(Ordering::Relaxed), N as usize);
    assert_eq!(m.len(), 0);
}
