//! The seeded generators of the random tests, in one place. Two generators because the suites were
//! written with two, and each suite's seeds must keep producing the cases they always produced.
#![allow(dead_code)]

/// xorshift64* (differential, rbpf differential, interpreter fast path).
pub struct Rng(pub u64);

impl Rng {
    /// A generator whose state is never zero.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
}

/// xorshift64 with shifts 13/7/17 (map and context robustness, kernel maps).
pub struct XorShift(pub u64);

/// What the tests draw; `next` is each generator's own.
pub trait Random {
    fn next(&mut self) -> u64;

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
    /// Bytes of few distinct values, so that keys collide and elements are found again.
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.below(3) as u8).collect()
    }
}

impl Random for Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

impl Random for XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
