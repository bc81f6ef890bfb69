//! The cost of an XDP batch per packet, for profiling (issue #10 item 2): the `xdp_firewall`
//! fixture (`__test__/fixtures/xdp_firewall.bpf.o`: an LPM-trie lookup and an array counter per
//! packet) over BATCHES batches of 10,000 64-byte packets, half of them matching a rule, as
//! `bench/xdp.bench.mjs` runs it from JavaScript. Prints the best batch's nanoseconds per packet
//! and checks the verdicts. For instruction counts, run it with two batch counts under callgrind
//! and divide the difference by 10,000 times the difference of the counts:
//!
//!     cargo build --release -p ebpf-vm --example xdp_batch_cost
//!     valgrind --tool=callgrind target/release/examples/xdp_batch_cost jit verified 3
//!
//! The object is read with a minimal ELF reader (section headers, symbols, `R_BPF_64_64`
//! relocations of the `xdp` section): map symbols become `BPF_PSEUDO_MAP_IDX` (5) and `.rodata`
//! symbols `BPF_PSEUDO_MAP_IDX_VALUE` (6) of a frozen one-element array, as libbpf loads them.

use std::sync::Arc;

use ebpf_vm::maps::def::flags::{BPF_F_NO_PREALLOC, BPF_F_RDONLY_PROG};
use ebpf_vm::maps::{self, Map, MapDef, MapType};
use ebpf_vm::{BatchInput, Engine, Mode, Program, ProgramOptions, ProgramType};

const OBJECT: &[u8] = include_bytes!("../../../__test__/fixtures/xdp_firewall.bpf.o");
const BATCH: usize = 10_000;

fn u16_at(b: &[u8], at: usize) -> usize {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap()) as usize
}
fn u32_at(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize
}
fn u64_at(b: &[u8], at: usize) -> usize {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap()) as usize
}

/// A section: name, file offset, size, link.
struct Section<'a> {
    name: &'a str,
    bytes: &'a [u8],
    link: usize,
}

fn sections(elf: &[u8]) -> Vec<Section<'_>> {
    let (shoff, shentsize, shnum, shstrndx) = (
        u64_at(elf, 0x28),
        u16_at(elf, 0x3a),
        u16_at(elf, 0x3c),
        u16_at(elf, 0x3e),
    );
    let header = |i: usize| &elf[shoff + i * shentsize..][..shentsize];
    let strtab = header(shstrndx);
    let names = &elf[u64_at(strtab, 0x18)..][..u64_at(strtab, 0x20)];
    (0..shnum)
        .map(|i| {
            let h = header(i);
            let name = &names[u32_at(h, 0)..];
            let name = std::str::from_utf8(&name[..name.iter().position(|&c| c == 0).unwrap()]);
            let bytes = &elf[u64_at(h, 0x18)..][..u64_at(h, 0x20)];
            Section {
                name: name.unwrap(),
                bytes: if u32_at(h, 4) == 8 { &[] } else { bytes },
                link: u32_at(h, 0x28),
            }
        })
        .collect()
}

/// The firewall's instructions, relocated against its map list (blocklist, verdicts, .rodata).
fn firewall_code() -> Vec<u8> {
    let secs = sections(OBJECT);
    let find = |n: &str| secs.iter().position(|s| s.name == n).unwrap();
    let mut code = secs[find("xdp")].bytes.to_vec();
    let rel = &secs[find(".relxdp")];
    let symtab = &secs[rel.link];
    let strtab = secs[symtab.link].bytes;
    let rodata = find(".rodata");
    for r in rel.bytes.chunks(16) {
        let (at, sym) = (u64_at(r, 0), u64_at(r, 8) >> 32);
        let s = &symtab.bytes[sym * 24..][..24];
        let name = &strtab[u32_at(s, 0)..];
        let name = std::str::from_utf8(&name[..name.iter().position(|&c| c == 0).unwrap()]);
        let (shndx, value) = (u16_at(s, 6), u64_at(s, 8));
        let (src, imm, next) = if shndx == rodata {
            (6u8, 2u32, value as u32)
        } else {
            let index = match name.unwrap() {
                "blocklist" => 0,
                "verdicts" => 1,
                other => panic!("unknown map {other}"),
            };
            (5, index, 0)
        };
        code[at + 1] = (code[at + 1] & 0x0f) | (src << 4);
        code[at + 4..at + 8].copy_from_slice(&imm.to_le_bytes());
        code[at + 12..at + 16].copy_from_slice(&next.to_le_bytes());
    }
    code
}

fn firewall(engine: Engine, mode: Mode) -> Program {
    let map = |def: MapDef| maps::create(def).unwrap();
    let mut lpm = MapDef::new(MapType::LpmTrie, 8, 16, 1024);
    lpm.flags = BPF_F_NO_PREALLOC;
    let blocklist = map(lpm);
    let verdicts = map(MapDef::new(MapType::Array, 4, 8, 4));
    let mut ro = MapDef::new(MapType::Array, 4, 8, 1);
    ro.flags = BPF_F_RDONLY_PROG;
    let rodata = map(ro);
    // dry_run = 0 (byte 0), min_len = 34 (bytes 4-7).
    rodata
        .update_elem(&0u32.to_le_bytes(), &[0, 0, 0, 0, 34, 0, 0, 0], 0)
        .unwrap();
    // 192.168.7.0/24: hits 0, action XDP_DROP (1), rule 7.
    let mut value = [0u8; 16];
    value[8] = 1;
    value[12] = 7;
    blocklist
        .update_elem(&[24, 0, 0, 0, 192, 168, 7, 0], &value, 0)
        .unwrap();
    let maps: Vec<Arc<dyn Map>> = vec![blocklist, verdicts, rodata];
    Program::load(
        &firewall_code(),
        ProgramOptions {
            prog_type: ProgramType::Xdp,
            engine,
            mode,
            maps,
            ..ProgramOptions::default()
        },
    )
    .unwrap()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: xdp_batch_cost jit|interpreter checked|verified BATCHES";
    let [_, engine, mode, batches] = &args[..] else {
        return Err(usage.into());
    };
    let engine = match engine.as_str() {
        "jit" => Engine::Jit,
        _ => Engine::Interpreter,
    };
    let mode = match mode.as_str() {
        "verified" => Mode::Verified,
        _ => Mode::Checked,
    };
    let prog = firewall(engine, mode);
    let mut packets = Vec::with_capacity(64 * BATCH);
    for i in 0..BATCH {
        let mut p = [0u8; 64];
        p[12] = 0x08;
        p[14] = 0x45;
        p[23] = 17;
        let src = if i % 2 == 1 {
            [192, 168, 7]
        } else {
            [10, 9, 8]
        };
        p[26..29].copy_from_slice(&src);
        p[29] = i as u8;
        packets.extend_from_slice(&p);
    }
    let lengths = vec![64u32; BATCH];
    let input = BatchInput {
        packets: &packets,
        lengths: &lengths,
        r0_only: true,
        ..BatchInput::default()
    };
    let mut best = f64::INFINITY;
    for _ in 0..batches.parse::<usize>()? {
        let mut bad = 0;
        // What `runBatchRetvals` calls.
        let summary = prog.run_batch_r0(&input, |index, result| {
            let want = if index % 2 == 1 { 1 } else { 2 };
            if result.map(|out| out.r0) != Ok(want) {
                bad += 1;
            }
        })?;
        if bad > 0 {
            return Err(format!("{bad} unexpected verdicts").into());
        }
        best = best.min(summary.duration_ns);
    }
    println!("{:.1} ns per packet", best / BATCH as f64);
    Ok(())
}
