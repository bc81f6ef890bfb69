//! Bad input from user space never panics: pseudo-random operation sequences on every map type,
//! with keys and values of right and wrong lengths and arbitrary flags, must only ever succeed or
//! fail with one of the kernel's errnos, and leave the map consistent (`keys()` agrees with
//! `len()`). Map creation with arbitrary definitions likewise.

mod rng;
use rng::{Random, XorShift as Rng};
use std::sync::Arc;

use ebpf_vm::maps::def::flags::*;
use ebpf_vm::maps::def::ALL;
use ebpf_vm::maps::{self, Map, MapDef, MapError, MapType};
use ebpf_vm::ErrorCode;

fn allowed<T>(r: &Result<T, MapError>) {
    if let Err(e) = r {
        assert!(
            matches!(
                e.code,
                ErrorCode::Einval
                    | ErrorCode::Enoent
                    | ErrorCode::Eoverflow
                    | ErrorCode::Enodev
                    | ErrorCode::Eexist
                    | ErrorCode::E2big
                    | ErrorCode::Enospc
                    | ErrorCode::Enotsupp
                    | ErrorCode::Eperm
            ),
            "unexpected {e}"
        );
        assert!(!e.message.is_empty());
    }
}

fn def_for(t: MapType) -> MapDef {
    match t {
        MapType::Array | MapType::PercpuArray => MapDef::new(t, 4, 12, 4),
        MapType::ProgArray | MapType::PerfEventArray => MapDef::new(t, 4, 4, 4),
        MapType::StackTrace => MapDef::new(t, 4, 16, 4),
        MapType::ArrayOfMaps => {
            MapDef::new(t, 4, 4, 4).with_inner(MapDef::new(MapType::Array, 4, 4, 1))
        }
        MapType::HashOfMaps => {
            MapDef::new(t, 2, 4, 4).with_inner(MapDef::new(MapType::Array, 4, 4, 1))
        }
        MapType::LpmTrie => MapDef::new(t, 6, 3, 6).with_flags(BPF_F_NO_PREALLOC),
        MapType::Queue | MapType::Stack | MapType::BloomFilter => MapDef::new(t, 0, 3, 4),
        MapType::Ringbuf => MapDef::new(t, 0, 0, 4096),
        MapType::Devmap | MapType::DevmapHash => MapDef::new(t, 4, 4, 4),
        MapType::Cpumap => MapDef::new(t, 4, 4, 1),
        MapType::Xskmap => MapDef::new(t, 4, 4, 4),
        _ => MapDef::new(t, 2, 5, 4),
    }
}

fn exercise(m: &Arc<dyn Map>, rng: &mut Rng, inner_id: u32) {
    let mut ok_updates = 0;
    let ks = m.key_size();
    let vs = m.value_blob_size();
    for _ in 0..3000 {
        // Mostly the right lengths, sometimes not.
        let klen = if rng.below(8) == 0 {
            rng.below(8) as usize
        } else {
            ks
        };
        let vlen = if rng.below(8) == 0 {
            rng.below(12) as usize
        } else {
            vs
        };
        let mut key = rng.bytes(klen);
        if klen == 4 && ks == 4 && rng.below(4) != 0 {
            // Array-like keys: indices around the end of the array.
            key.copy_from_slice(&(rng.below(6) as u32).to_ne_bytes());
        }
        if m.map_type() == MapType::LpmTrie && klen >= 4 {
            // Prefix lengths around the valid range (0..=16 for 2 data bytes).
            key[..4].copy_from_slice(&(rng.below(20) as u32).to_ne_bytes());
        }
        let mut value = rng.bytes(vlen);
        if matches!(m.map_type(), MapType::ArrayOfMaps | MapType::HashOfMaps) && vlen == 4 {
            let id = if rng.below(2) == 0 {
                inner_id
            } else {
                rng.next() as u32
            };
            value.copy_from_slice(&id.to_ne_bytes());
        }
        let flags = match rng.below(6) {
            0 => rng.next(),
            1 => BPF_F_LOCK | rng.below(3),
            _ => rng.below(3),
        };
        match rng.below(12) {
            0..=2 => {
                let r = m.update(&key, &value, flags);
                allowed(&r);
                ok_updates += r.is_ok() as usize;
            }
            3 | 4 => allowed(&m.lookup(&key)),
            5 => allowed(&m.delete(&key)),
            6 => allowed(&m.next_key(if rng.below(2) == 0 { None } else { Some(&key) })),
            7 => allowed(&m.push(&value, flags)),
            8 => allowed(&m.pop()),
            9 => allowed(&m.lookup_and_delete(&key)),
            10 => {
                let cursor = (rng.below(2) == 0).then_some(&key[..]);
                let n = rng.below(4) as usize;
                if rng.below(2) == 0 {
                    allowed(&m.lookup_batch(cursor, n));
                } else {
                    allowed(&m.lookup_and_delete_batch(cursor, n));
                }
            }
            _ => {
                allowed(&m.peek());
                allowed(&m.contains(&value));
                allowed(&m.lookup_with_flags(&key, flags));
            }
        }
    }
    // The sequences must exercise the maps, not only their error paths (types user space never
    // updates aside, as in the kernel; a cpumap's random queue sizes are almost all over 16384: EOVERFLOW).
    if !matches!(
        m.map_type(),
        MapType::Ringbuf
            | MapType::ProgArray
            | MapType::PerfEventArray
            | MapType::StackTrace
            | MapType::Cpumap
    ) {
        assert!(
            ok_updates > 20,
            "{:?}: {ok_updates} updates succeeded",
            m.map_type()
        );
    }
    match m.keys() {
        Ok(keys) => {
            if !matches!(
                m.map_type(),
                MapType::Array
                    | MapType::PercpuArray
                    | MapType::ProgArray
                    | MapType::ArrayOfMaps
                    | MapType::Devmap
                    | MapType::Cpumap
                    | MapType::Xskmap
            ) {
                assert_eq!(keys.len(), m.len(), "{:?}", m.map_type());
            }
        }
        Err(e) => assert!(matches!(e.code, ErrorCode::Einval | ErrorCode::Enotsupp)),
    }
}

#[test]
fn random_operations_on_every_map_type() {
    let inner = maps::create(MapDef::new(MapType::Array, 4, 4, 1)).unwrap();
    for (n, t) in ALL.iter().enumerate() {
        let m = maps::create(def_for(*t)).unwrap_or_else(|e| panic!("{t:?}: {e}"));
        let mut rng = Rng(0x9e37_79b9 + n as u64);
        exercise(&m, &mut rng, inner.id());
    }
}

#[test]
fn random_definitions_are_accepted_or_refused_cleanly() {
    let mut rng = Rng(0xdead_beef);
    for _ in 0..5000 {
        let t = ALL[rng.below(ALL.len() as u64) as usize];
        let pick = |rng: &mut Rng| match rng.below(4) {
            0 => 0,
            1 => rng.below(10) as u32,
            2 => 1 << rng.below(16),
            _ => rng.next() as u32,
        };
        let mut def = MapDef::new(t, pick(&mut rng), pick(&mut rng), pick(&mut rng) % 1000);
        def.flags = if rng.below(2) == 0 {
            1 << rng.below(14)
        } else {
            rng.next() as u32
        };
        if rng.below(3) == 0 {
            def.map_extra = rng.below(40);
        }
        if rng.below(3) == 0 {
            def.inner = Some(Box::new(MapDef::new(MapType::Hash, 4, 4, 1)));
        }
        if rng.below(5) == 0 {
            def.spin_lock_off = Some(rng.below(20) as u32);
        }
        match maps::create(def) {
            Ok(m) => exercise_briefly(&m),
            Err(e) => allowed::<()>(&Err(e)),
        }
    }
}

fn exercise_briefly(m: &Arc<dyn Map>) {
    let k = vec![1u8; m.key_size()];
    let v = vec![2u8; m.value_blob_size()];
    allowed(&m.update(&k, &v, 0));
    allowed(&m.lookup(&k));
    allowed(&m.next_key(None));
    allowed(&m.delete(&k));
}
