//! The benchmark programs (bytecode built by `bench/programs/build.sh` from the C sources beside it)
//! and the memory each one runs against. Inputs are generated from a fixed seed so every run of the
//! bench, and every engine within a run, sees the same bytes.

/// A benchmark program: its name (the C file and, natively, `bench_<name>`), its bytecode, and a
/// builder of its input memory (a 64-byte header of u32 parameters, then data).
pub struct BenchProgram {
    pub name: &'static str,
    pub bytecode: &'static [u8],
    pub input: fn() -> Vec<u8>,
    /// Whether it loads in mode verified (raw, `dataSize` its input's length): the `_fixed`
    /// forms, whose loops have constant bounds, and the straight-line `big`.
    pub verifiable: bool,
}

macro_rules! bytecode {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../bench/programs/bpf/",
            $name,
            ".bin"
        ))
    };
}

/// The run-time benchmarks: loop-heavy (sieve, dispatch), memory-heavy (memcopy), string work,
/// packet parsing, and the straight-line compile-latency subject.
pub fn programs() -> Vec<BenchProgram> {
    vec![
        BenchProgram {
            name: "sieve",
            bytecode: bytecode!("sieve"),
            input: sieve,
            verifiable: false,
        },
        BenchProgram {
            name: "memcopy",
            bytecode: bytecode!("memcopy"),
            input: memcopy,
            verifiable: false,
        },
        BenchProgram {
            name: "strcmp",
            bytecode: bytecode!("strcmp"),
            input: strcmp,
            verifiable: false,
        },
        BenchProgram {
            name: "dispatch",
            bytecode: bytecode!("dispatch"),
            input: dispatch,
            verifiable: false,
        },
        BenchProgram {
            name: "parse",
            bytecode: bytecode!("parse"),
            input: parse,
            verifiable: false,
        },
        BenchProgram {
            name: "big",
            bytecode: bytecode!("big"),
            input: big,
            verifiable: true,
        },
        // The verifiable forms (see bench/programs/*_fixed.c): constant sizes, the same inputs.
        BenchProgram {
            name: "sieve_fixed",
            bytecode: bytecode!("sieve_fixed"),
            input: sieve,
            verifiable: true,
        },
        BenchProgram {
            name: "memcopy_fixed",
            bytecode: bytecode!("memcopy_fixed"),
            input: memcopy,
            verifiable: true,
        },
        BenchProgram {
            name: "strcmp_fixed",
            bytecode: bytecode!("strcmp_fixed"),
            input: strcmp,
            verifiable: true,
        },
        BenchProgram {
            name: "dispatch_fixed",
            bytecode: bytecode!("dispatch_fixed"),
            input: dispatch,
            verifiable: true,
        },
        BenchProgram {
            name: "parse_fixed",
            bytecode: bytecode!("parse_fixed"),
            input: parse,
            verifiable: true,
        },
    ]
}

/// The program of about 1,000 instructions whose compile latency is measured.
pub fn compile_subject() -> BenchProgram {
    BenchProgram {
        name: "big",
        bytecode: bytecode!("big"),
        input: big,
        verifiable: true,
    }
}

const HEADER: usize = 64;

/// xorshift64*: small, fixed, good enough to make inputs that are not degenerate.
struct Rng(u64);

impl Rng {
    fn new() -> Self {
        Rng(0x2545_f491_4f6c_dd1d)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn with_header(params: &[u32], data_len: usize) -> Vec<u8> {
    let mut mem = vec![0u8; HEADER + data_len];
    for (i, p) in params.iter().enumerate() {
        mem[i * 4..i * 4 + 4].copy_from_slice(&p.to_le_bytes());
    }
    mem
}

fn fill_random(buf: &mut [u8], rng: &mut Rng) {
    for b in buf {
        *b = rng.next() as u8;
    }
}

fn sieve() -> Vec<u8> {
    const N: usize = 8192;
    with_header(&[N as u32], N)
}

fn memcopy() -> Vec<u8> {
    // Not a multiple of eight, so the byte tail runs too.
    const LEN: usize = 8192 + 5;
    let aligned = (LEN + 7) & !7;
    let mut mem = with_header(&[LEN as u32], aligned + LEN);
    fill_random(&mut mem[HEADER..HEADER + LEN], &mut Rng::new());
    mem
}

fn strcmp() -> Vec<u8> {
    // Strings share prefixes of varying length with a few stems, so comparisons run on for a while
    // before they differ, as in sorting keys or paths.
    const N: usize = 64;
    const SLOT: usize = 32;
    const STEMS: [&[u8]; 4] = [
        b"/usr/lib/x86_64-linux-gnu/libc",
        b"/usr/lib/x86_64-linux-gnu/libm",
        b"/usr/share/doc/packages/readme",
        b"/home/user/projects/ebpf/bench",
    ];
    let mut rng = Rng::new();
    let mut mem = with_header(&[N as u32], N * SLOT);
    for i in 0..N {
        let slot = &mut mem[HEADER + i * SLOT..HEADER + (i + 1) * SLOT];
        let stem = STEMS[rng.below(STEMS.len() as u64) as usize];
        let keep = rng.below(stem.len() as u64) as usize;
        let len = keep + rng.below((SLOT - 1 - keep) as u64 + 1) as usize;
        slot[..keep].copy_from_slice(&stem[..keep]);
        for b in &mut slot[keep..len] {
            *b = b'a' + rng.below(26) as u8;
        }
    }
    mem
}

fn dispatch() -> Vec<u8> {
    const OPS: usize = 256;
    const ROUNDS: u32 = 16;
    let mut mem = with_header(&[OPS as u32, ROUNDS], OPS * 2);
    fill_random(&mut mem[HEADER..], &mut Rng::new());
    mem
}

fn parse() -> Vec<u8> {
    // A mix of frames: IPv4 TCP/UDP (some with options, some VLAN-tagged), IPv6 TCP/UDP, ARP,
    // ICMP, and truncated ones that fail the bounds checks.
    const FRAMES: usize = 64;
    const SLOT: usize = 128;
    let mut rng = Rng::new();
    let mut mem = with_header(&[FRAMES as u32], FRAMES * SLOT);
    for i in 0..FRAMES {
        let slot = &mut mem[HEADER + i * SLOT..HEADER + (i + 1) * SLOT];
        let mut frame = vec![0u8; 12];
        fill_random(&mut frame, &mut rng);
        let kind = rng.below(8);
        if kind == 1 {
            frame.extend_from_slice(&[0x81, 0x00, 0x00, 0x2a]);
        }
        let l4_proto = if rng.below(2) == 0 { 6u8 } else { 17u8 };
        match kind {
            0..=3 => {
                let options = if kind == 2 { 2usize } else { 0 };
                frame.extend_from_slice(&[0x08, 0x00]);
                let mut ip = vec![0u8; 20 + options * 4];
                fill_random(&mut ip, &mut rng);
                ip[0] = 0x45 + options as u8;
                ip[9] = if kind == 3 { 1 } else { l4_proto };
                frame.extend_from_slice(&ip);
            }
            4 | 5 => {
                frame.extend_from_slice(&[0x86, 0xdd]);
                let mut ip = vec![0u8; 40];
                fill_random(&mut ip, &mut rng);
                ip[0] = 0x60;
                ip[6] = l4_proto;
                frame.extend_from_slice(&ip);
            }
            6 => frame.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]),
            _ => frame.extend_from_slice(&[0x08, 0x00, 0x45]),
        }
        let mut l4 = vec![0u8; 20];
        fill_random(&mut l4, &mut rng);
        frame.extend_from_slice(&l4);
        if kind == 7 {
            frame.truncate(20);
        }
        frame.truncate(SLOT - 8);
        slot[..4].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        slot[8..8 + frame.len()].copy_from_slice(&frame);
    }
    mem
}

fn big() -> Vec<u8> {
    let mut mem = with_header(&[], 48 * 8);
    fill_random(&mut mem[HEADER..], &mut Rng::new());
    mem
}
