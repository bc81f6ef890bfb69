//! devmap, devmap_hash, cpumap and xskmap (`maps::redirect`) and `bpf_redirect_map`.
//!
//! Oracles: the map operations' results were read from Linux 6.18 with `bpftool map create /
//! update / lookup / delete / getnext` (each case below says what the kernel answered; an ifindex
//! the host has was used where the kernel checks it). `bpf_redirect_map`'s return values are the
//! kernel's `BPF_PROG_TEST_RUN` results for `kernel_oracle/redirect_map.c`, every combination of
//! key, flags and map type recorded in `kernel_oracle/redirect_map_6.18.txt`; the test runs the
//! same program, hand-encoded, in both modes.

mod context_support;

use std::sync::Arc;

use context_support::*;
use ebpf_vm::context::redirect::Redirect;
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::maps::def::flags::*;
use ebpf_vm::maps::{self, Map, MapDef, MapType};
use ebpf_vm::{ErrorCode, Mode, ProgramOptions, ProgramType};

fn k(key: u32) -> [u8; 4] {
    key.to_ne_bytes()
}

fn v8(a: u32, b: i32) -> Vec<u8> {
    let mut v = a.to_ne_bytes().to_vec();
    v.extend_from_slice(&b.to_ne_bytes());
    v
}

fn create(t: MapType, value: u32, entries: u32) -> Arc<dyn Map> {
    maps::create(MapDef::new(t, 4, value, entries).with_name("m")).expect("map created")
}

fn code<T>(r: Result<T, maps::MapError>) -> ErrorCode {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.code,
    }
}

#[test]
fn creation_accepts_what_the_kernel_accepts() {
    use MapType::*;
    // bpftool map create: devmap/devmap_hash/cpumap key 4 value 4 or 8; xskmap value 4 only;
    // value 12 or key 8 EINVAL; cpumap entries over NR_CPUS (256 here) E2BIG.
    for t in [Devmap, DevmapHash, Cpumap] {
        for v in [4, 8] {
            assert!(maps::create(MapDef::new(t, 4, v, 4)).is_ok(), "{t:?} {v}");
        }
        assert_eq!(
            code(maps::create(MapDef::new(t, 4, 12, 4))),
            ErrorCode::Einval
        );
        assert_eq!(
            code(maps::create(MapDef::new(t, 8, 4, 4))),
            ErrorCode::Einval
        );
    }
    assert!(maps::create(MapDef::new(Xskmap, 4, 4, 4)).is_ok());
    assert_eq!(
        code(maps::create(MapDef::new(Xskmap, 4, 8, 4))),
        ErrorCode::Einval
    );
    assert!(maps::create(MapDef::new(Cpumap, 4, 4, 256)).is_ok());
    assert_eq!(
        code(maps::create(MapDef::new(Cpumap, 4, 4, 257))),
        ErrorCode::E2big
    );
    // Flags: devmap takes BPF_F_RDONLY (0x8) but not BPF_F_RDONLY_PROG (0x80), which it gets
    // anyway (bpftool map show: flags 0x80); cpumap takes neither; xskmap takes BPF_F_WRONLY.
    let d = maps::create(MapDef::new(Devmap, 4, 4, 4).with_flags(BPF_F_RDONLY)).unwrap();
    assert_ne!(d.common().def.flags & BPF_F_RDONLY_PROG, 0);
    assert_eq!(
        code(maps::create(
            MapDef::new(Devmap, 4, 4, 4).with_flags(BPF_F_RDONLY_PROG)
        )),
        ErrorCode::Einval
    );
    assert_eq!(
        code(maps::create(
            MapDef::new(Cpumap, 4, 4, 4).with_flags(BPF_F_RDONLY)
        )),
        ErrorCode::Einval
    );
    assert!(maps::create(MapDef::new(Xskmap, 4, 4, 4).with_flags(BPF_F_WRONLY)).is_ok());
    assert_eq!(
        maps::create(MapDef::new(Cpumap, 4, 4, 4))
            .unwrap()
            .common()
            .def
            .flags,
        0
    );
    assert_eq!(MapType::from_kernel(14).unwrap(), Devmap);
    assert_eq!(MapType::from_kernel(25).unwrap().name(), "devmap_hash");
}

#[test]
fn devmap_updates_lookups_deletes_and_iteration() {
    let m = create(MapType::Devmap, 8, 4);
    // key 0 value {1, -1}: ok, read back as {1, 0} (prog id 0).
    m.update(&k(0), &v8(1, -1), BPF_ANY).unwrap();
    assert_eq!(m.lookup(&k(0)).unwrap(), v8(1, 0));
    // key 4: E2BIG; NOEXIST: EEXIST; ifindex 0 with a prog fd: EINVAL; flags 4: EINVAL.
    assert_eq!(code(m.update(&k(4), &v8(1, 0), BPF_ANY)), ErrorCode::E2big);
    assert_eq!(
        code(m.update(&k(2), &v8(1, 0), BPF_NOEXIST)),
        ErrorCode::Eexist
    );
    assert_eq!(code(m.update(&k(2), &v8(0, 5), BPF_ANY)), ErrorCode::Einval);
    assert_eq!(code(m.update(&k(2), &v8(1, 0), 4)), ErrorCode::Einval);
    // A prog fd names a program this runtime cannot run on the entry.
    assert_eq!(
        code(m.update(&k(2), &v8(1, 5), BPF_ANY)),
        ErrorCode::Enotsupp
    );
    // BPF_EXIST on an empty slot is accepted (the slot exists).
    m.update(&k(1), &v8(3, 0), BPF_EXIST).unwrap();
    assert_eq!(m.len(), 2);
    // ifindex 0 empties the slot; an empty slot looks up ENOENT and deletes without error;
    // a key past the end deletes EINVAL.
    m.update(&k(1), &v8(0, 0), BPF_ANY).unwrap();
    assert_eq!(code(m.lookup(&k(1))), ErrorCode::Enoent);
    m.delete(&k(3)).unwrap();
    assert_eq!(code(m.delete(&k(9))), ErrorCode::Einval);
    // getnext: past the end restarts at 0; after the last index ENOENT.
    assert_eq!(m.next_key(Some(&k(9))).unwrap(), k(0));
    assert_eq!(code(m.next_key(Some(&k(3)))), ErrorCode::Enoent);
}

#[test]
fn devmap_hash_keys_are_any_u32_up_to_max_entries() {
    let m = create(MapType::DevmapHash, 4, 2);
    // EXIST on an absent key inserts; NOEXIST on a present one EEXIST; a third key E2BIG;
    // ifindex 0 EINVAL; deleting an absent key ENOENT.
    m.update(&k(7), &k(1), BPF_EXIST).unwrap();
    assert_eq!(code(m.update(&k(7), &k(1), BPF_NOEXIST)), ErrorCode::Eexist);
    m.update(&k(8), &k(1), BPF_ANY).unwrap();
    assert_eq!(code(m.update(&k(9), &k(1), BPF_ANY)), ErrorCode::E2big);
    assert_eq!(code(m.update(&k(9), &k(0), BPF_ANY)), ErrorCode::Einval);
    assert_eq!(code(m.delete(&k(9))), ErrorCode::Enoent);
    // A missing key restarts the walk (the kernel gave 8, its hash's first; ours is key order).
    let first = m.next_key(Some(&k(5))).unwrap();
    assert!(first == k(7) || first == k(8));
    let mut seen = vec![first];
    while let Ok(n) = m.next_key(Some(seen.last().unwrap())) {
        seen.push(n);
    }
    assert_eq!(seen.len(), 2);
    // A freed slot is reused: delete then insert another key stays within 2 entries.
    m.delete(&k(7)).unwrap();
    m.update(&k(100), &k(4), BPF_ANY).unwrap();
    assert_eq!(m.lookup(&k(100)).unwrap(), k(4));
    assert_eq!(m.lookup(&k(8)).unwrap(), k(1));
}

#[test]
fn cpumap_checks_queue_size_and_cpu() {
    let m = create(MapType::Cpumap, 8, 4);
    // qsize 256: ok; 16385: EOVERFLOW; 16384 ok; NOEXIST EEXIST; EXIST ok; prog fd -1 ok.
    m.update(&k(0), &v8(256, 0), BPF_ANY).unwrap();
    assert_eq!(
        code(m.update(&k(0), &v8(16385, 0), BPF_ANY)),
        ErrorCode::Eoverflow
    );
    m.update(&k(0), &v8(16384, 0), BPF_ANY).unwrap();
    m.update(&k(0), &v8(256, -1), BPF_ANY).unwrap();
    assert_eq!(
        code(m.update(&k(0), &v8(256, 0), BPF_NOEXIST)),
        ErrorCode::Eexist
    );
    m.update(&k(0), &v8(256, 0), BPF_EXIST).unwrap();
    assert_eq!(m.lookup(&k(0)).unwrap(), v8(256, 0));
    // A CPU the process does not have: ENODEV (the kernel's 2-CPU host said so for CPU 3).
    let cpus = maps::percpu::possible_cpus() as u32;
    if cpus < 4 {
        assert_eq!(code(m.update(&k(3), &v8(1, 0), BPF_ANY)), ErrorCode::Enodev);
    }
    assert_eq!(code(m.update(&k(4), &v8(1, 0), BPF_ANY)), ErrorCode::E2big);
    // qsize 0 empties; delete past the end EINVAL.
    m.update(&k(0), &v8(0, 0), BPF_ANY).unwrap();
    assert_eq!(code(m.lookup(&k(0))), ErrorCode::Enoent);
    assert_eq!(code(m.delete(&k(7))), ErrorCode::Einval);
}

#[test]
fn xskmap_entries_cannot_be_read_back() {
    let m = create(MapType::Xskmap, 4, 4);
    // The kernel needs an AF_XDP socket fd (ENOTSOCK for 1); here the value names the socket.
    m.update(&k(0), &k(1), BPF_ANY).unwrap();
    assert_eq!(code(m.update(&k(0), &k(1), BPF_NOEXIST)), ErrorCode::Eexist);
    assert_eq!(code(m.update(&k(1), &k(1), BPF_EXIST)), ErrorCode::Enoent);
    // lookup: EOPNOTSUPP in the kernel.
    assert_eq!(code(m.lookup(&k(0))), ErrorCode::Enotsupp);
    m.delete(&k(0)).unwrap();
    m.delete(&k(0)).unwrap();
    assert_eq!(code(m.delete(&k(5))), ErrorCode::Einval);
    assert_eq!(m.next_key(Some(&k(5))).unwrap(), k(0));
}

/// `kernel_oracle/redirect_map.c`, by hand: packet byte 14 is the key, 15 the flags, 16 picks
/// the map (0 devmap, 1 devmap_hash, 2 cpumap, else xskmap); a packet under 17 bytes is XDP_DROP.
fn redirect_prog() -> Vec<ebpf_vm::isa::Insn> {
    prog![
        ldx(SIZE_W, 2, 1, 0), // data
        ldx(SIZE_W, 3, 1, 4), // data_end
        movr(4, 2),
        add(4, 17),
        mov(0, 1),
        jr(JMP_JGT, 4, 3, 1),
        ja(1),
        exit(),
        ldx(SIZE_B, 6, 2, 14), // key
        ldx(SIZE_B, 7, 2, 15), // flags
        ldx(SIZE_B, 8, 2, 16), // map
        ji(JMP_JEQ, 8, 0, 5),
        ji(JMP_JEQ, 8, 1, 7),
        ji(JMP_JEQ, 8, 2, 9),
        ld_map(1, 3),
        ja(8),
        ld_map(1, 0),
        ja(5),
        ld_map(1, 1),
        ja(2),
        ld_map(1, 2),
        movr(2, 6),
        movr(3, 7),
        call(51),
        exit(),
    ]
}

fn redirect_maps() -> Vec<Arc<dyn Map>> {
    let dev = create(MapType::Devmap, 4, 4);
    dev.update(&k(1), &k(1), BPF_ANY).unwrap();
    let devh = create(MapType::DevmapHash, 4, 4);
    devh.update(&k(7), &k(1), BPF_ANY).unwrap();
    let cpu = create(MapType::Cpumap, 4, 2);
    cpu.update(&k(0), &k(256), BPF_ANY).unwrap();
    let xsk = create(MapType::Xskmap, 4, 4);
    vec![dev, devh, cpu, xsk]
}

fn load_redirect(mode: Mode, maps: Vec<Arc<dyn Map>>) -> ebpf_vm::Program {
    load_with(
        &redirect_prog(),
        ProgramOptions {
            mode,
            maps,
            gpl_compatible: true,
            ..options(ProgramType::Xdp)
        },
    )
    .expect("loads")
}

fn packet(key: u8, flags: u8, map: u8) -> Vec<u8> {
    let mut p = vec![0u8; 64];
    p[12] = 8;
    (p[14], p[15], p[16]) = (key, flags, map);
    p
}

#[test]
fn redirect_map_returns_what_the_kernels_test_run_returns() {
    let oracle = include_str!("kernel_oracle/redirect_map_6.18.txt");
    for mode in [Mode::Checked, Mode::Verified] {
        let p = load_redirect(mode, redirect_maps());
        let mut n = 0;
        for line in oracle.lines().filter(|l| !l.starts_with('#')) {
            let f: Vec<u64> = line.split(' ').map(|x| x.parse().unwrap()).collect();
            let (key, flags, map, want) = (f[0] as u8, f[1] as u8, f[2] as u8, f[3]);
            let (out, _) = run_ctx(&p, &mut packet(key, flags, map), None).unwrap();
            assert_eq!(out.r0, want, "key {key} flags {flags} map {map}");
            n += 1;
        }
        assert_eq!(n, 120);
    }
}

#[test]
fn the_run_names_the_map_entry_it_redirected_to() {
    let maps = redirect_maps();
    let ids: Vec<u32> = maps.iter().map(|m| m.common().id).collect();
    let p = load_redirect(Mode::Checked, maps);
    let target = |key, flags, map| {
        run_ctx(&p, &mut packet(key, flags, map), None)
            .unwrap()
            .1
            .redirect
    };
    let r: Redirect = target(1, 0, 0).expect("devmap entry 1");
    let m = r.map.expect("a map target");
    assert_eq!(
        (r.ifindex, r.flags, m.map_id, m.map_type, m.key),
        (1, 0, ids[0], MapType::Devmap, 1)
    );
    assert_eq!(m.map_name, "m");
    let m = target(7, 2, 1).unwrap().map.unwrap();
    assert_eq!((m.map_id, m.key), (ids[1], 7));
    // cpumap: no interface.
    let r = target(0, 0, 2).unwrap();
    assert_eq!((r.ifindex, r.map.unwrap().map_type), (0, MapType::Cpumap));
    // Broadcast (8) with no entry at the key: every entry, flags kept, no single ifindex.
    let r = target(0, 8, 0).unwrap();
    assert_eq!((r.ifindex, r.flags), (0, 8));
    // A miss with the XDP_PASS fallback: no target.
    assert_eq!(target(0, 2, 0), None);
}

#[test]
fn programs_read_devmap_entries_and_may_not_write_them() {
    // r0 = *(u32 *)lookup(devmap, 1) or 0xffff when absent.
    let read = prog![
        st(SIZE_W, 10, -4, 1),
        ld_map(1, 0),
        movr(2, 10),
        add(2, -4),
        call(1),
        ji(JMP_JEQ, 0, 0, 2),
        ldx(SIZE_W, 0, 0, 0),
        exit(),
        mov(0, 0xffff),
        exit(),
    ];
    for mode in [Mode::Checked, Mode::Verified] {
        let dev = create(MapType::Devmap, 8, 4);
        dev.update(&k(1), &v8(9, 0), BPF_ANY).unwrap();
        let opts = ProgramOptions {
            mode,
            maps: vec![dev.clone()],
            ..options(ProgramType::Xdp)
        };
        let p = load_with(&read, opts.clone()).unwrap();
        assert_eq!(r0(&p, &mut packet(0, 0, 0), None), 9);
        dev.delete(&k(1)).unwrap();
        assert_eq!(r0(&p, &mut packet(0, 0, 0), None), 0xffff);
        // A store through the pointer: refused by the verifier (BPF_F_RDONLY_PROG), a fault
        // when checked at run time.
        let mut write = read.clone();
        write[7] = st(SIZE_W, 0, 0, 5);
        dev.update(&k(1), &v8(9, 0), BPF_ANY).unwrap();
        match mode {
            Mode::Verified => {
                assert_eq!(load_with(&write, opts).unwrap_err().code, ErrorCode::Eacces)
            }
            Mode::Checked => {
                let p = load_with(&write, opts).unwrap();
                assert!(run_ctx(&p, &mut packet(0, 0, 0), None).is_err());
            }
        }
    }
}

#[test]
fn the_verifier_keeps_redirect_map_to_its_map_types() {
    let with = |t: MapType, insns: &[ebpf_vm::isa::Insn]| {
        load_with(
            insns,
            ProgramOptions {
                mode: Mode::Verified,
                maps: vec![maps::create(MapDef::new(t, 4, 4, 2)).unwrap()],
                ..options(ProgramType::Xdp)
            },
        )
    };
    let redirect = prog![ld_map(1, 0), mov(2, 0), mov(3, 2), call(51), exit()];
    for t in [
        MapType::Devmap,
        MapType::DevmapHash,
        MapType::Cpumap,
        MapType::Xskmap,
    ] {
        assert!(with(t, &redirect).is_ok(), "{t:?}");
    }
    // The kernel: "cannot pass map_type 2 into func bpf_redirect_map#51".
    let e = with(MapType::Array, &redirect).unwrap_err();
    assert_eq!(e.code, ErrorCode::Einval);
    assert!(
        e.message.contains("cannot pass map_type 2 into func"),
        "{}",
        e.message
    );
    // A cpumap lookup: "cannot pass map_type 16 into func bpf_map_lookup_elem#1".
    let lookup = prog![
        st(SIZE_W, 10, -4, 0),
        ld_map(1, 0),
        movr(2, 10),
        add(2, -4),
        call(1),
        mov(0, 2),
        exit()
    ];
    let e = with(MapType::Cpumap, &lookup).unwrap_err();
    assert!(
        e.message.contains("cannot pass map_type 16"),
        "{}",
        e.message
    );
    assert!(with(MapType::Devmap, &lookup).is_ok());
    // tc has no bpf_redirect_map.
    let e = load_with(
        &redirect,
        ProgramOptions {
            maps: vec![create(MapType::Devmap, 4, 2)],
            ..options(ProgramType::Tc)
        },
    );
    assert!(e.is_err());
}
