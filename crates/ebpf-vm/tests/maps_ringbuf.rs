//! Ring buffer: record order, wraparound, room accounting, busy and discarded records, several
//! producers. Expected positions are computed by hand from the kernel's record format (8-byte
//! header, data padded to 8) and its room rule (the producer may run at most size - 1 bytes ahead
//! of the consumer, kernel/bpf/ringbuf.c).

use std::sync::Arc;
use std::thread;

use ebpf_vm::maps::ringbuf::*;
use ebpf_vm::maps::{self, Map, MapDef, MapType};

fn ring(size: u32) -> Arc<dyn Map> {
    maps::create(MapDef::new(MapType::Ringbuf, 0, 0, size)).unwrap()
}

fn rb(m: &Arc<dyn Map>) -> &RingBuf {
    m.downcast::<RingBuf>().unwrap()
}

fn drain(r: &RingBuf) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    r.consume(|rec| out.push(rec.to_vec()));
    out
}

#[test]
fn records_come_out_in_order() {
    let m = ring(4096);
    let r = rb(&m);
    assert!(r.output(b"one"));
    assert!(r.output(b""));
    assert!(r.output(b"three33"));
    // 3 -> 8 + 8, 0 -> 8, 7 -> 8 + 8: 40 bytes produced.
    assert_eq!(r.query(BPF_RB_PROD_POS), 40);
    assert_eq!(r.query(BPF_RB_AVAIL_DATA), 40);
    assert_eq!(r.query(BPF_RB_RING_SIZE), 4096);
    assert_eq!(r.query(99), 0);
    assert_eq!(drain(r), vec![b"one".to_vec(), vec![], b"three33".to_vec()]);
    assert_eq!(r.query(BPF_RB_CONS_POS), 40);
    assert_eq!(r.query(BPF_RB_AVAIL_DATA), 0);
    assert!(drain(r).is_empty());
}

#[test]
fn room_is_size_minus_one() {
    let m = ring(4096);
    let r = rb(&m);
    // 4088 bytes of data make a 4096-byte record: more than size - 1 ahead, never fits.
    assert!(r.reserve(4088).is_none());
    // 4080 + 8 = 4088 fits; then even an empty record (8 bytes) would reach 4096.
    let a = r.reserve(4080).unwrap();
    assert!(r.reserve(0).is_none());
    assert!(!r.output(b"x"));
    r.commit(a, false);
    assert_eq!(drain(r).len(), 1);
    assert!(r.reserve(0).is_some());
    assert!(r.reserve(u32::MAX as u64).is_none());
}

#[test]
fn wraparound_keeps_records_whole() {
    let m = ring(4096);
    let r = rb(&m);
    // Records of 1000 bytes take 1008; the fifth starts at 4032 and its data (4040..5040) runs
    // past the end of the ring: it must come out whole.
    let mut expected = Vec::new();
    for i in 0..12u8 {
        let rec: Vec<u8> = (0..1000).map(|j| (j as u8).wrapping_mul(31) ^ i).collect();
        assert!(r.output(&rec), "record {i} fits after draining");
        expected.push(rec);
        if i % 2 == 1 {
            let got = drain(r);
            assert_eq!(got, expected);
            expected.clear();
        }
    }
    assert_eq!(r.producer_pos(), 12 * 1008);
    assert_eq!(r.consumer_pos(), 12 * 1008);
}

#[test]
fn program_style_reserve_write_submit_across_the_end() {
    let m = ring(4096);
    let r = rb(&m);
    // Move the positions to 4032 (four 1000-byte records, consumed).
    for _ in 0..4 {
        assert!(r.output(&[0; 1000]));
    }
    assert_eq!(drain(r).len(), 4);
    let addr = r.reserve(100).unwrap();
    // The reservation is contiguous even though it crosses the end: write it all in place.
    // SAFETY: `reserve` returned 100 writable bytes at `addr`, owned by this test until commit.
    let data = unsafe { std::slice::from_raw_parts_mut(addr as *mut u8, 100) };
    for (i, b) in data.iter_mut().enumerate() {
        *b = i as u8;
    }
    r.commit(addr, false);
    assert_eq!(drain(r), vec![(0..100u8).collect::<Vec<_>>()]);
}

#[test]
fn busy_records_hold_back_later_ones_and_discards_are_skipped() {
    let m = ring(8192);
    let r = rb(&m);
    let a = r.reserve(4).unwrap();
    let b = r.reserve(4).unwrap();
    let c = r.reserve(4).unwrap();
    // SAFETY: each reservation is 4 writable bytes until committed.
    unsafe {
        (a as *mut [u8; 4]).write(*b"aaaa");
        (b as *mut [u8; 4]).write(*b"bbbb");
        (c as *mut [u8; 4]).write(*b"cccc");
    }
    r.commit(c, false);
    r.commit(b, true);
    // `a` is still busy: nothing can be consumed, as in the kernel.
    assert!(drain(r).is_empty());
    assert!(r.commit(a, false));
    assert_eq!(drain(r), vec![b"aaaa".to_vec(), b"cccc".to_vec()]);
    // Committing twice, or something that is not a record, does nothing.
    assert!(!r.commit(a, false));
    assert!(!r.commit(a + 4, false));
    assert!(!r.commit(0, true));
    assert_eq!(r.avail_data(), 0);
}

#[test]
fn several_producers_one_consumer() {
    let m = ring(1 << 16);
    let producers = 4;
    let per = 5000u32;
    let handles: Vec<_> = (0..producers)
        .map(|t| {
            let m = m.clone();
            thread::spawn(move || {
                let r = rb(&m);
                let mut i = 0;
                while i < per {
                    let mut rec = [0u8; 8];
                    rec[..4].copy_from_slice(&(t as u32).to_le_bytes());
                    rec[4..].copy_from_slice(&i.to_le_bytes());
                    if r.output(&rec) {
                        i += 1;
                    } else {
                        thread::yield_now();
                    }
                }
            })
        })
        .collect();
    let mut next = vec![0u32; producers];
    let mut total = 0;
    while total < producers as u32 * per {
        let r = rb(&m);
        r.consume(|rec| {
            let t = u32::from_le_bytes(rec[..4].try_into().unwrap()) as usize;
            let i = u32::from_le_bytes(rec[4..].try_into().unwrap());
            // Each producer's records arrive in the order it produced them.
            assert_eq!(i, next[t]);
            next[t] += 1;
            total += 1;
        });
        r.wait(std::time::Duration::from_millis(10));
    }
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(next, vec![per; producers]);
}
