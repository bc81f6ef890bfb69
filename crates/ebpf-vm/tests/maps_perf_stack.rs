//! `perf_event_array` maps with `bpf_perf_event_output` into per-CPU rings, and `stack_trace` maps
//! with `bpf_get_stackid` / `bpf_get_stack`. Expected values: the kernel's rules read from
//! kernel/bpf/arraymap.c, kernel/trace/bpf_trace.c, kernel/events/ring_buffer.c and
//! kernel/bpf/stackmap.c, computed by hand in the comments (ring bytes, stack ids where the
//! bucket count is 1, skips, zero fill); map creation checks against `bpftool map create` on
//! Linux 6.18 (noted where used).

mod context_support;

use std::sync::Arc;

use context_support::*;
use ebpf_vm::context::AddressSpace;
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::Insn;
use ebpf_vm::maps::perf_event_array::{PerfEntry, PerfEventArray, PerfNotify, PerfRing};
use ebpf_vm::maps::{self, flags, Map, MapDef, MapType};
use ebpf_vm::{ContextInput, ErrorCode, Mode, ProgramOptions, ProgramType, RunInput};

const CURRENT_CPU: u64 = 0xffff_ffff;

fn perf_array(entries: u32) -> Arc<dyn Map> {
    maps::create(MapDef::new(MapType::PerfEventArray, 4, 4, entries)).unwrap()
}

fn as_perf(m: &Arc<dyn Map>) -> &PerfEventArray {
    m.downcast::<PerfEventArray>().unwrap()
}

/// Opens a ring of `pages` pages on every slot, slot i on CPU i (as libbpf's perf_buffer does).
fn open_all(m: &Arc<dyn Map>, pages: u32) -> Vec<Arc<PerfRing>> {
    let notify = Arc::new(PerfNotify::default());
    (0..m.common().def.max_entries)
        .map(|i| {
            let ring = Arc::new(PerfRing::new(i, pages, notify.clone()).unwrap());
            as_perf(m).open(i, ring.clone()).unwrap();
            ring
        })
        .collect()
}

/// r6 = perf_event_output(ctx, map 0, flags, r10 - 8 = [1, 2, 3, 4], 4); r0 = cpu | r6 << 32.
fn output_prog(flags: u64) -> Vec<Insn> {
    prog![
        movr(6, 1),
        st(SIZE_W, 10, -8, 0x0403_0201),
        movr(1, 6),
        ld_map(2, 0),
        lddw(3, flags),
        fp_plus(4, -8),
        mov(5, 4),
        call(25),
        movr(6, 0),
        call(8),
        lsh(6, 32),
        orr(0, 6),
        exit(),
    ]
}

fn load_maps(insns: &[Insn], t: ProgramType, maps: Vec<Arc<dyn Map>>) -> ebpf_vm::Program {
    load_with(insns, ProgramOptions { maps, ..options(t) }).unwrap()
}

/// (helper result, cpu) of one run.
fn split(r0: u64) -> (i64, u32) {
    ((r0 as i64) >> 32, r0 as u32)
}

#[test]
fn perf_event_array_creation_follows_the_kernel() {
    // bpftool map create ... type perf_event_array key 4 value 4 entries 4: created; value 8:
    // EINVAL; flags 0x80 (BPF_F_RDONLY_PROG): EINVAL (Linux 6.18).
    assert!(maps::create(MapDef::new(MapType::PerfEventArray, 4, 4, 4)).is_ok());
    for def in [
        MapDef::new(MapType::PerfEventArray, 4, 8, 4),
        MapDef::new(MapType::PerfEventArray, 8, 4, 4),
        MapDef::new(MapType::PerfEventArray, 4, 4, 4).with_flags(flags::BPF_F_RDONLY_PROG),
        MapDef::new(MapType::PerfEventArray, 4, 4, 0),
    ] {
        let e = maps::create(def.clone()).expect_err("refused");
        assert_eq!(e.code, ErrorCode::Einval, "{def:?}");
    }
    let m = perf_array(2);
    // No lookup from user space (ENOTSUPP), no fd to update with, deletes of empty slots ENOENT,
    // past the end E2BIG.
    assert_eq!(
        m.lookup(&0u32.to_ne_bytes()).unwrap_err().code,
        ErrorCode::Enotsupp
    );
    assert_eq!(
        m.update(&0u32.to_ne_bytes(), &3u32.to_ne_bytes(), 0)
            .unwrap_err()
            .code,
        ErrorCode::Enotsupp
    );
    assert_eq!(
        m.delete(&0u32.to_ne_bytes()).unwrap_err().code,
        ErrorCode::Enoent
    );
    assert_eq!(
        m.delete(&2u32.to_ne_bytes()).unwrap_err().code,
        ErrorCode::E2big
    );
    open_all(&m, 1);
    assert!(m.delete(&1u32.to_ne_bytes()).is_ok());
    assert!(as_perf(&m).ring(1).is_none());
    // Array keys: 0, 1, then the end.
    assert_eq!(m.next_key(None).unwrap(), 0u32.to_ne_bytes());
    assert_eq!(
        m.next_key(Some(&0u32.to_ne_bytes())).unwrap(),
        1u32.to_ne_bytes()
    );
    assert_eq!(
        m.next_key(Some(&1u32.to_ne_bytes())).unwrap_err().code,
        ErrorCode::Enoent
    );
    // A ring's page count is a power of two.
    let n = Arc::new(PerfNotify::default());
    assert!(PerfRing::new(0, 3, n.clone()).is_err());
    assert!(PerfRing::new(0, 0, n).is_err());
}

#[test]
fn output_goes_to_the_ring_of_the_running_cpu() {
    let m = perf_array(ebpf_vm::maps::percpu::possible_cpus() as u32);
    let rings = open_all(&m, 1);
    let p = load_maps(
        &output_prog(CURRENT_CPU),
        ProgramType::Tracing,
        vec![m.clone()],
    );
    let (ret, cpu) = split(r0(&p, &mut [], Some(&[0u8; 8])));
    assert_eq!(ret, 0);
    for (i, ring) in rings.iter().enumerate() {
        let got = ring.drain();
        if i as u32 == cpu {
            assert_eq!(got, vec![PerfEntry::Sample(vec![1, 2, 3, 4])]);
        } else {
            assert!(got.is_empty(), "ring {i} of cpu {cpu}");
        }
    }
}

#[test]
fn output_errors_are_the_kernels() {
    let n = ebpf_vm::maps::percpu::possible_cpus() as u32;
    let m = perf_array(n + 1);
    let p = load_maps(
        &output_prog(CURRENT_CPU),
        ProgramType::Tracing,
        vec![m.clone()],
    );
    // Nothing open at the slot: -ENOENT.
    assert_eq!(split(r0(&p, &mut [], Some(&[0u8; 8]))).0, -2);
    // Past the end: -E2BIG.
    let p = load_maps(
        &output_prog(n as u64 + 1),
        ProgramType::Tracing,
        vec![m.clone()],
    );
    assert_eq!(split(r0(&p, &mut [], Some(&[0u8; 8]))).0, -7);
    // Slot n holds a ring of "CPU" n, which no thread runs on: -EOPNOTSUPP.
    let ring = Arc::new(PerfRing::new(n, 1, Arc::new(PerfNotify::default())).unwrap());
    as_perf(&m).open(n, ring.clone()).unwrap();
    let p = load_maps(
        &output_prog(n as u64),
        ProgramType::Tracing,
        vec![m.clone()],
    );
    assert_eq!(split(r0(&p, &mut [], Some(&[0u8; 8]))).0, -95);
    assert!(ring.drain().is_empty());
    // Flags beyond the index for a tracing program: -EINVAL.
    let p = load_maps(
        &output_prog(CURRENT_CPU | 1 << 32),
        ProgramType::Tracing,
        vec![m],
    );
    assert_eq!(split(r0(&p, &mut [], Some(&[0u8; 8]))).0, -22);
}

#[test]
fn a_full_ring_drops_counts_and_reports_the_loss_before_the_next_sample() {
    // One page: 4096 bytes, of which at most 4095 in use (CIRC_SPACE). A 4-byte sample takes
    // 8 (header) + 8 (u32 size + 4 bytes) = 16 bytes: 255 fit (4080), the 256th would need 4096.
    let m = perf_array(ebpf_vm::maps::percpu::possible_cpus() as u32);
    let rings = open_all(&m, 1);
    let p = load_maps(
        &output_prog(CURRENT_CPU),
        ProgramType::Tracing,
        vec![m.clone()],
    );
    let mut cpu = 0;
    for k in 0..255 {
        let (ret, c) = split(r0(&p, &mut [], Some(&[0u8; 8])));
        assert_eq!(ret, 0, "sample {k}");
        cpu = c;
    }
    let ring = &rings[cpu as usize];
    assert_eq!(ring.used(), 4080);
    for _ in 0..3 {
        assert_eq!(split(r0(&p, &mut [], Some(&[0u8; 8]))).0, -28, "ENOSPC");
    }
    assert_eq!(ring.lost_total(), 3);
    assert_eq!(ring.drain().len(), 255);
    // Next sample: a PERF_RECORD_LOST (24 bytes) of 3, then the sample (16).
    assert_eq!(split(r0(&p, &mut [], Some(&[0u8; 8]))).0, 0);
    assert_eq!(ring.used(), 40);
    assert_eq!(
        ring.drain(),
        vec![PerfEntry::Lost(3), PerfEntry::Sample(vec![1, 2, 3, 4])]
    );
}

#[test]
fn packet_bytes_follow_the_sample_with_the_ctxlen_flag() {
    // XDP: BPF_F_CURRENT_CPU | 3 << 32 appends the packet's first 3 bytes.
    let m = perf_array(ebpf_vm::maps::percpu::possible_cpus() as u32);
    let rings = open_all(&m, 2);
    let p = load_maps(
        &output_prog(CURRENT_CPU | 3 << 32),
        ProgramType::Xdp,
        vec![m.clone()],
    );
    let mut pkt: Vec<u8> = (10..70).collect();
    let (ret, cpu) = split(r0(&p, &mut pkt, None));
    assert_eq!(ret, 0);
    assert_eq!(
        rings[cpu as usize].drain(),
        // 4 + 3 bytes and the u32 size (11) end on 8 bytes (16) with 5 zeros, as the kernel pads.
        vec![PerfEntry::Sample(vec![
            1, 2, 3, 4, 10, 11, 12, 0, 0, 0, 0, 0
        ])]
    );
    // Socket filter, 61 bytes of a 60-byte packet: -EFAULT, nothing written.
    let p = load_maps(
        &output_prog(CURRENT_CPU | 61 << 32),
        ProgramType::SocketFilter,
        vec![m.clone()],
    );
    let (ret, cpu) = split(r0(&p, &mut pkt, None));
    assert_eq!(ret, -14);
    assert!(rings[cpu as usize].drain().is_empty());
}

#[test]
fn programs_with_perf_event_arrays_load_verified() {
    let m = perf_array(4);
    for t in [
        ProgramType::Tracing,
        ProgramType::Xdp,
        ProgramType::SocketFilter,
    ] {
        let r = load_with(
            &output_prog(CURRENT_CPU),
            ProgramOptions {
                maps: vec![m.clone()],
                mode: Mode::Verified,
                gpl_compatible: true,
                ..options(t)
            },
        );
        assert!(r.is_ok(), "{t:?}: {:?}", r.err());
    }
}

// ---- stack traces ----

fn stack_map(value_size: u32, entries: u32) -> Arc<dyn Map> {
    maps::create(MapDef::new(MapType::StackTrace, 4, value_size, entries)).unwrap()
}

/// r0 = get_stackid(ctx, map 0, flags).
fn stackid_prog(flags: u64) -> Vec<Insn> {
    prog![ld_map(2, 0), lddw(3, flags), call(27), exit()]
}

fn run_stacks(p: &ebpf_vm::Program, kernel: &[u64], user: &[u64]) -> i64 {
    let space = AddressSpace::new(Vec::new()).with_stacks(kernel.to_vec(), user.to_vec());
    p.run_with_context(
        &mut RunInput {
            data: &mut [],
            budget: None,
        },
        &ContextInput {
            ctx: Some(&[0u8; 8]),
            memory: Some(&space),
            ..ContextInput::default()
        },
    )
    .expect("runs")
    .0
    .r0 as i64
}

fn value(ips: &[u64], value_size: usize) -> Vec<u8> {
    let mut v: Vec<u8> = ips.iter().flat_map(|ip| ip.to_ne_bytes()).collect();
    v.resize(value_size, 0);
    v
}

#[test]
fn stack_trace_creation_follows_the_kernel() {
    // bpftool map create ... type stack_trace key 4 value 24 entries 16: created; value 12,
    // value 0, key 8, value 1024 (128 frames > 127): EINVAL (Linux 6.18).
    assert!(maps::create(MapDef::new(MapType::StackTrace, 4, 24, 16)).is_ok());
    for (k, v) in [(4, 12), (4, 0), (8, 24), (4, 1024)] {
        let e = maps::create(MapDef::new(MapType::StackTrace, k, v, 16))
            .err()
            .unwrap();
        assert_eq!(e.code, ErrorCode::Einval, "key {k} value {v}");
    }
    assert!(maps::create(MapDef::new(MapType::StackTrace, 4, 1016, 16)).is_ok());
    let m = stack_map(16, 4);
    // Updates from user space: EINVAL; absent ids: ENOENT.
    assert_eq!(
        m.update(&0u32.to_ne_bytes(), &[0u8; 16], 0)
            .unwrap_err()
            .code,
        ErrorCode::Einval
    );
    assert_eq!(
        m.lookup(&0u32.to_ne_bytes()).unwrap_err().code,
        ErrorCode::Enoent
    );
    assert_eq!(
        m.delete(&1u32.to_ne_bytes()).unwrap_err().code,
        ErrorCode::Enoent
    );
    // 4 entries -> 4 buckets; id 4 is past them.
    assert_eq!(
        m.delete(&4u32.to_ne_bytes()).unwrap_err().code,
        ErrorCode::E2big
    );
    assert_eq!(m.next_key(None).unwrap_err().code, ErrorCode::Enoent);
}

#[test]
fn get_stackid_stores_compares_and_replaces_as_the_kernel() {
    // One entry, one bucket: every stack's id is 0 (hash & 0).
    let m = stack_map(24, 1);
    let p = load_maps(&stackid_prog(0), ProgramType::Tracing, vec![m.clone()]);
    let a = [
        0xffff_ffff_8100_0010,
        0xffff_ffff_8100_0020,
        0xffff_ffff_8100_0030,
    ];
    let b = [0xffff_ffff_8200_0010, 0xffff_ffff_8200_0020];
    assert_eq!(run_stacks(&p, &a, &[]), 0);
    assert_eq!(m.lookup(&0u32.to_ne_bytes()).unwrap(), value(&a, 24));
    // The same stack again: the same id.
    assert_eq!(run_stacks(&p, &a, &[]), 0);
    // Another stack in the occupied bucket: -EEXIST, and the bucket keeps `a`.
    assert_eq!(run_stacks(&p, &b, &[]), -17);
    assert_eq!(m.lookup(&0u32.to_ne_bytes()).unwrap(), value(&a, 24));
    // BPF_F_REUSE_STACKID: `b` replaces `a` (the rest of the value zeroed on lookup).
    let reuse = load_maps(
        &stackid_prog(1 << 10),
        ProgramType::Tracing,
        vec![m.clone()],
    );
    assert_eq!(run_stacks(&reuse, &b, &[]), 0);
    assert_eq!(m.lookup(&0u32.to_ne_bytes()).unwrap(), value(&b, 24));
    // A stack deeper than the value (3 entries) is cut to it: a 5-frame stack whose first 3
    // frames are `a` is stored as `a`.
    let deep = [a[0], a[1], a[2], 7, 8];
    assert_eq!(run_stacks(&reuse, &deep, &[]), 0);
    assert_eq!(m.lookup(&0u32.to_ne_bytes()).unwrap(), value(&a, 24));
    // Skip 1 (flags bits 0-7): frames 1..4 of `deep`, i.e. [a1, a2, 7].
    let skip = load_maps(
        &stackid_prog(1 << 10 | 1),
        ProgramType::Tracing,
        vec![m.clone()],
    );
    assert_eq!(run_stacks(&skip, &deep, &[]), 0);
    assert_eq!(
        m.lookup(&0u32.to_ne_bytes()).unwrap(),
        value(&[a[1], a[2], 7], 24)
    );
    // Skipping every frame: -EFAULT; no stack given: an empty callchain, -EFAULT too.
    let skip3 = load_maps(&stackid_prog(3), ProgramType::Tracing, vec![m.clone()]);
    assert_eq!(run_stacks(&skip3, &a, &[]), -14);
    assert_eq!(run_stacks(&p, &[], &[]), -14);
    // BPF_F_USER_STACK takes the user stack.
    let user = load_maps(
        &stackid_prog(1 << 8 | 1 << 10),
        ProgramType::Tracing,
        vec![m.clone()],
    );
    assert_eq!(run_stacks(&user, &a, &[0x40_1000, 0x40_2000]), 0);
    assert_eq!(
        m.lookup(&0u32.to_ne_bytes()).unwrap(),
        value(&[0x40_1000, 0x40_2000], 24)
    );
    // Unknown flags (bit 11, BPF_F_USER_BUILD_ID, is get_stack's only): -EINVAL.
    let bad = load_maps(
        &stackid_prog(1 << 11),
        ProgramType::Tracing,
        vec![m.clone()],
    );
    assert_eq!(run_stacks(&bad, &a, &[]), -22);
    // Deleting frees the bucket; the map walks its filled buckets only.
    assert_eq!(m.next_key(None).unwrap(), 0u32.to_ne_bytes());
    m.delete(&0u32.to_ne_bytes()).unwrap();
    assert_eq!(m.next_key(None).unwrap_err().code, ErrorCode::Enoent);
}

#[test]
fn get_stackid_ids_are_bucket_indices_and_entries_are_bounded() {
    // 3 entries: 4 buckets, ids 0..=3, and at most 3 stored stacks (the kernel's freelist): the
    // 4th distinct stack landing in an empty bucket is -ENOMEM.
    let m = stack_map(8, 3);
    let p = load_maps(&stackid_prog(0), ProgramType::Tracing, vec![m.clone()]);
    let mut ids = std::collections::BTreeSet::new();
    let mut enomem = 0;
    for ip in 1..200u64 {
        match run_stacks(&p, &[ip], &[]) {
            id @ 0..=3 => {
                ids.insert(id);
                assert_eq!(
                    m.lookup(&(id as u32).to_ne_bytes()).unwrap(),
                    value(&[ip], 8)
                );
            }
            -17 => {}
            -12 => enomem += 1,
            other => panic!("{other}"),
        }
        if ids.len() == 3 && enomem > 0 {
            break;
        }
    }
    assert_eq!((ids.len(), m.len()), (3, 3));
    assert!(enomem > 0, "a 4th bucket filled without a free entry");
}

/// r0 = get_stack(ctx, r10 - 32, size, flags); the 32 bytes at r10 - 32 preset to 0xff.
fn get_stack_prog(size: i32, flags: u64) -> Vec<Insn> {
    prog![
        lddw(7, u64::MAX),
        stx(SIZE_DW, 10, 7, -32),
        stx(SIZE_DW, 10, 7, -24),
        stx(SIZE_DW, 10, 7, -16),
        stx(SIZE_DW, 10, 7, -8),
        fp_plus(2, -32),
        mov(3, size),
        lddw(4, flags),
        call(67),
        exit(),
    ]
}

/// The buffer's bytes are checked on `stack_trace::get_stack`, which the helper copies into the
/// program's buffer; the program runs check the helper's r0 on the same inputs.
#[test]
fn get_stack_copies_zero_fills_and_returns_bytes() {
    use ebpf_vm::maps::stack_trace::get_stack;
    let s = [0x10, 0x20, 0x30];
    // 32 bytes = 4 entries, 3 frames: 24 bytes copied, the last 8 zeroed.
    let (buf, ret) = get_stack(&s, 32, 0);
    assert_eq!(ret, 24);
    assert_eq!(buf, value(&s, 32));
    // Skip 2: one frame, 8 bytes.
    let (buf, ret) = get_stack(&s, 32, 2);
    assert_eq!((ret, buf), (8, value(&[0x30], 32)));
    // Skip 3 = every frame: 0 bytes (get_stack fails only when the skip is beyond the chain).
    assert_eq!(get_stack(&s, 32, 3), (vec![0; 32], 0));
    assert_eq!(get_stack(&s, 32, 4), (vec![0; 32], -14));
    // Size not a multiple of 8, unknown flags, build ids of the kernel stack: -EINVAL, zeroed.
    assert_eq!(get_stack(&s, 12, 0), (vec![0; 12], -22));
    assert_eq!(get_stack(&s, 32, 1 << 9), (vec![0; 32], -22));
    assert_eq!(get_stack(&s, 32, 1 << 11), (vec![0; 32], -22));
    // A buffer shorter than the stack: cut to it.
    assert_eq!(get_stack(&s, 16, 0), (value(&s[..2], 16), 16));
    // User build ids: one 32-byte record per frame, status 2 (BPF_STACK_BUILD_ID_IP), the ip at
    // offset 24.
    let (buf, ret) = get_stack(&[0x40_1000], 32, 1 << 8 | 1 << 11);
    assert_eq!(ret, 32);
    assert_eq!(&buf[..4], &2i32.to_ne_bytes());
    assert_eq!(&buf[24..], &0x40_1000u64.to_ne_bytes());

    // Through a program: r0 as above, on both stacks.
    let p = load(&get_stack_prog(32, 0), ProgramType::Tracing).unwrap();
    assert_eq!(run_stacks(&p, &s, &[]), 24);
    let p = load(&get_stack_prog(32, 1 << 8), ProgramType::Tracing).unwrap();
    assert_eq!(run_stacks(&p, &s, &[1, 2, 3, 4, 5]), 32);
    let p = load(&get_stack_prog(12, 0), ProgramType::Tracing).unwrap();
    assert_eq!(run_stacks(&p, &s, &[]), -22);
}

#[test]
fn stack_programs_load_verified_and_map_rules_hold() {
    let m = stack_map(32, 8);
    let verified = |insns: &[Insn], maps: Vec<Arc<dyn Map>>, gpl: bool| {
        load_with(
            insns,
            ProgramOptions {
                maps,
                mode: Mode::Verified,
                gpl_compatible: gpl,
                ..options(ProgramType::Tracing)
            },
        )
    };
    assert!(verified(&stackid_prog(0), vec![m.clone()], true).is_ok());
    assert!(verified(&get_stack_prog(32, 0), vec![], true).is_ok());
    // GPL-only for kprobes (the kernel's "cannot call GPL-restricted function").
    assert!(verified(&stackid_prog(0), vec![m.clone()], false).is_err());
    // get_stackid takes stack_trace maps only; stack_trace maps take get_stackid only.
    let array = maps::create(MapDef::new(MapType::Array, 4, 8, 1)).unwrap();
    let e = verified(&stackid_prog(0), vec![array], true).err().unwrap();
    assert!(
        e.to_string()
            .contains("cannot pass map_type 2 into func bpf_get_stackid#27"),
        "{e}"
    );
    let lookup = prog![
        st(SIZE_W, 10, -4, 0),
        ld_map(1, 0),
        fp_plus(2, -4),
        call(1),
        mov(0, 0),
        exit(),
    ];
    let e = verified(&lookup, vec![m], true).err().unwrap();
    assert!(e.to_string().contains("cannot pass map_type 7"), "{e}");
}

/// The stack id hash against the kernel's own `jhash2`, asked through a one-word bloom filter
/// (`kernel_oracle/bloom_jhash.c`: one hash function, seed 0, bit = jhash2(value) & 63, as the
/// kernel's bloom filter computes it for values whose size is a multiple of 4). For stacks of 1 to
/// 4 frames (2 to 8 words: every tail case of jhash2, with and without the 3-word rounds), 64
/// stacks are picked whose low 6 hash bits (ours) are 0..=63; the kernel must say exactly the one
/// sharing X's bit may be present.
#[test]
fn stack_hash_is_the_kernels_jhash2() {
    use ebpf_vm::maps::stack_trace::stack_hash;
    use std::process::Command;
    extern "C" {
        fn geteuid() -> u32;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { geteuid() } != 0 || !std::path::Path::new("/usr/include/linux/bpf.h").exists() {
        eprintln!("skipped: needs root and linux/bpf.h");
        return;
    }
    let dir = std::env::temp_dir().join(format!("ebpf-bloom-jhash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("bloom_jhash");
    let src = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/kernel_oracle/bloom_jhash.c"
    );
    let built = Command::new("cc")
        .args(["-O1", "-o"])
        .arg(&exe)
        .arg(src)
        .output();
    let Ok(built) = built else {
        eprintln!("skipped: no cc");
        return;
    };
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let hex = |ips: &[u64]| -> String {
        ips.iter()
            .flat_map(|ip| ip.to_ne_bytes())
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let base = [
        0xffff_ffff_8100_1000u64,
        0xffff_ffff_8100_2000,
        0x7f00_0000_1234,
        42,
    ];
    for depth in 1..=4 {
        let x = &base[..depth];
        let bit = stack_hash(x) & 63;
        let mut ys = Vec::new();
        for want in 0..64u32 {
            let y = (1u64..)
                .map(|k| {
                    let mut y = x.to_vec();
                    y[depth - 1] = y[depth - 1].wrapping_add(k);
                    y
                })
                .find(|y| stack_hash(y) & 63 == want)
                .unwrap();
            ys.push(y);
        }
        let out = Command::new(&exe)
            .arg(hex(x))
            .args(ys.iter().map(|y| hex(y)))
            .output()
            .unwrap();
        if out.status.code() == Some(2) {
            eprintln!("skipped: {}", String::from_utf8_lossy(&out.stderr).trim());
            std::fs::remove_dir_all(&dir).ok();
            return;
        }
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let kernel: Vec<bool> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l == "1")
            .collect();
        let ours: Vec<bool> = (0..64).map(|j| j == bit).collect();
        assert_eq!(kernel, ours, "{depth} frames: X's bit is {bit}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
