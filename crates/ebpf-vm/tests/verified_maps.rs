//! Verified programs' map accesses without run-time checks (issue #10, item 2): atomic operations
//! on map values and the stack the verifier proved run directly, and map lookups whose map and
//! key it proved skip the general helper path's checks (`runtime::lookup_entry`). Each program
//! runs on both engines in both modes; the expected values are computed by hand from the
//! instruction set's definition (RFC 9669: fetch forms return the old value, zero-extended for
//! 32 bits; `cmpxchg` compares with r0 and loads the old value into r0) and the kernel's lookup
//! rules (an array index at or past `max_entries` gives NULL).

mod common;

use std::sync::Arc;

use common::*;
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::Insn;
use ebpf_vm::maps::{self, Map, MapDef, MapType};
use ebpf_vm::{Engine, HelperTable, Mode, Program, ProgramOptions, ProgramType, RunInput};

fn ld_map(dst: u8, index: i32) -> [Insn; 2] {
    [i(OP_LDDW, dst, PSEUDO_MAP_IDX, 0, index), i(0, 0, 0, 0, 0)]
}
fn add_imm(dst: u8, imm: i32) -> Insn {
    i(CLASS_ALU64 | ALU_ADD | SRC_K, dst, 0, 0, imm)
}
fn add_reg(dst: u8, src: u8) -> Insn {
    i(CLASS_ALU64 | ALU_ADD | SRC_X, dst, src, 0, 0)
}
fn atomic(size: u8, dst: u8, src: u8, off: i16, op: i32) -> Insn {
    i(CLASS_STX | MODE_ATOMIC | size, dst, src, off, op)
}

fn load(code: &[u8], maps: Vec<Arc<dyn Map>>, engine: Engine, mode: Mode) -> Program {
    load_with(code, maps, engine, mode, HelperTable::standard())
}

fn load_with(
    code: &[u8],
    maps: Vec<Arc<dyn Map>>,
    engine: Engine,
    mode: Mode,
    helpers: HelperTable,
) -> Program {
    let p = Program::load(
        code,
        ProgramOptions {
            engine,
            mode,
            maps,
            helpers,
            prog_type: ProgramType::Xdp,
            ..ProgramOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{engine:?} {mode:?}: {e}"));
    assert_eq!(p.engine(), engine);
    p
}

fn run(p: &Program, packet: &[u8]) -> u64 {
    let mut data = packet.to_vec();
    p.run(&mut RunInput {
        data: &mut data,
        budget: None,
    })
    .unwrap_or_else(|t| panic!("trapped: {t}"))
    .r0
}

const ENGINES: [Engine; 2] = [Engine::Interpreter, Engine::Jit];
const MODES: [Mode; 2] = [Mode::Checked, Mode::Verified];

/// Looks up key 0 of map 0 (a key on the stack) into r6, returning 1 when it is absent.
fn lookup_key0() -> Vec<Insn> {
    let mut v = vec![
        i(CLASS_ST | MODE_MEM | SIZE_W, 10, 0, -4, 0),
        mov64_reg(2, 10),
        add_imm(2, -4),
    ];
    v.extend(ld_map(1, 0));
    v.extend([
        i(OP_CALL, 0, 0, 0, 1),
        i(CLASS_JMP | JMP_JNE | SRC_K, 0, 0, 2, 0),
        mov64_imm(0, 1),
        exit(),
        mov64_reg(6, 0),
    ]);
    v
}

#[test]
fn atomics_on_map_values_and_the_stack_agree_in_every_mode() {
    let (dw, w) = (SIZE_DW, SIZE_W);
    let mut code = lookup_key0();
    // The value (16 bytes, zero): u64 at 0, u32 at 8 and 12. r7 sums what the fetches return.
    code.extend([
        mov64_imm(1, 5),
        atomic(dw, 6, 1, 0, ATOMIC_ADD), // v0 = 5
        mov64_imm(1, 7),
        atomic(dw, 6, 1, 0, ATOMIC_ADD | ATOMIC_FETCH), // r1 = 5, v0 = 12
        mov64_reg(7, 1),                                // r7 = 5
        mov64_imm(1, 0xf0),
        atomic(dw, 6, 1, 0, ATOMIC_OR), // v0 = 0xfc
        mov64_imm(1, 0x3c),
        atomic(dw, 6, 1, 0, ATOMIC_AND | ATOMIC_FETCH), // r1 = 0xfc, v0 = 0x3c
        add_reg(7, 1),                                  // r7 = 0x101
        mov64_imm(1, 0xff),
        atomic(dw, 6, 1, 0, ATOMIC_XOR | ATOMIC_FETCH), // r1 = 0x3c, v0 = 0xc3
        add_reg(7, 1),                                  // r7 = 0x13d
        mov64_imm(1, 9),
        atomic(dw, 6, 1, 0, ATOMIC_XCHG), // r1 = 0xc3, v0 = 9
        add_reg(7, 1),                    // r7 = 0x200
        mov64_imm(0, 9),
        mov64_imm(1, 100),
        atomic(dw, 6, 1, 0, ATOMIC_CMPXCHG), // equal: v0 = 100, r0 = 9
        add_reg(7, 0),                       // r7 = 0x209
        mov64_imm(0, 1),
        mov64_imm(1, 200),
        atomic(dw, 6, 1, 0, ATOMIC_CMPXCHG), // unequal: v0 stays 100, r0 = 100
        add_reg(7, 0),                       // r7 = 0x26d
        mov64_imm(1, -1),
        atomic(w, 6, 1, 8, ATOMIC_ADD | ATOMIC_FETCH), // r1 = 0, v8 = 0xffffffff
        add_reg(7, 1),                                 // r7 = 0x26d
        mov64_imm(1, 3),
        atomic(w, 6, 1, 8, ATOMIC_ADD), // v8 = 2 (wraps)
        mov64_imm(1, 0),
        atomic(w, 6, 1, 8, ATOMIC_OR | ATOMIC_FETCH), // r1 = 2
        add_reg(7, 1),                                // r7 = 0x26f
        mov64_imm(0, 2),
        mov64_imm(1, -1),
        atomic(w, 6, 1, 8, ATOMIC_CMPXCHG), // equal: v8 = 0xffffffff, r0 = 2
        add_reg(7, 0),                      // r7 = 0x271
        mov64_imm(1, 0x10),
        atomic(w, 6, 1, 12, ATOMIC_XCHG), // r1 = 0 (zero-extended), v12 = 0x10
        add_reg(7, 1),                    // r7 = 0x271
        // On the stack: 40 + 2 = 42 at r10-16.
        i(CLASS_ST | MODE_MEM | SIZE_DW, 10, 0, -16, 40),
        mov64_imm(1, 2),
        atomic(dw, 10, 1, -16, ATOMIC_ADD),
        i(CLASS_LDX | MODE_MEM | SIZE_DW, 1, 10, -16, 0),
        add_reg(7, 1), // r7 = 0x29b
        mov64_reg(0, 7),
        exit(),
    ]);
    let code = bytes(&code);
    let mut want_value = Vec::new();
    want_value.extend(100u64.to_ne_bytes());
    want_value.extend(0xffff_ffffu32.to_ne_bytes());
    want_value.extend(0x10u32.to_ne_bytes());
    for engine in ENGINES {
        for mode in MODES {
            let map = maps::create(MapDef::new(MapType::Array, 4, 16, 1)).unwrap();
            let p = load(&code, vec![map.clone()], engine, mode);
            if mode == Mode::Verified {
                // Every atomic operation (through the map value or the stack) was proved, so
                // the verified engines run it without a region check.
                let proved = &p.verifier_report().expect("verified").proved;
                for (slot, insn) in p.instructions().iter().enumerate() {
                    if insn.opcode & 0xe0 == MODE_ATOMIC && insn.opcode & 7 == CLASS_STX {
                        assert!(proved[slot], "atomic at {slot} not proved");
                    }
                }
            }
            assert_eq!(run(&p, &[0; 64]), 0x29b, "{engine:?} {mode:?}");
            assert_eq!(
                map.lookup_elem(&0u32.to_ne_bytes()).unwrap(),
                want_value,
                "{engine:?} {mode:?}"
            );
        }
    }
}

/// Looks up the packet's first four bytes (on the stack) in map 0: as a u32 key, or with `lpm`
/// as a /32 IPv4 key (`{ u32 prefixlen; u8 addr[4] }`); runs `on_value` with the value's address
/// in r0, returns 0xdead when the lookup gives NULL, 0xbad when the packet is too short.
fn packet_key_lookup(lpm: bool, on_value: &[Insn]) -> Vec<u8> {
    packet_key_lookup_with(lpm, &[], on_value)
}

/// As `packet_key_lookup`, with `before_call` just before the call.
fn packet_key_lookup_with(lpm: bool, before_call: &[Insn], on_value: &[Insn]) -> Vec<u8> {
    let mut v = vec![
        i(CLASS_LDX | MODE_MEM | SIZE_W, 2, 1, 0, 0), // data
        i(CLASS_LDX | MODE_MEM | SIZE_W, 3, 1, 4, 0), // data_end
        mov64_reg(4, 2),
        add_imm(4, 4),
        i(CLASS_JMP | JMP_JGT | SRC_X, 4, 3, 0, 0), // to the end: offset set below
        i(CLASS_LDX | MODE_MEM | SIZE_W, 5, 2, 0, 0),
        i(CLASS_STX | MODE_MEM | SIZE_W, 10, 5, -4, 0),
    ];
    if lpm {
        v.push(i(CLASS_ST | MODE_MEM | SIZE_W, 10, 0, -8, 32));
    }
    v.extend([mov64_reg(2, 10), add_imm(2, if lpm { -8 } else { -4 })]);
    v.extend(ld_map(1, 0));
    v.extend_from_slice(before_call);
    v.extend([
        i(OP_CALL, 0, 0, 0, 1),
        i(CLASS_JNE_K, 0, 0, 2, 0),
        mov64_imm(0, 0xdead),
        exit(),
    ]);
    v.extend_from_slice(on_value);
    v[4].off = (v.len() - 5) as i16;
    v.extend([mov64_imm(0, 0xbad), exit()]);
    bytes(&v)
}

/// The value's first eight bytes.
fn lookup_packet_key() -> Vec<u8> {
    packet_key_lookup(
        false,
        &[i(CLASS_LDX | MODE_MEM | SIZE_DW, 0, 0, 0, 0), exit()],
    )
}

const CLASS_JNE_K: u8 = CLASS_JMP | JMP_JNE | SRC_K;

fn packet(key: u32) -> [u8; 64] {
    let mut p = [0u8; 64];
    p[..4].copy_from_slice(&key.to_ne_bytes());
    p
}

/// Makes a fresh map with its elements.
type MakeMap = dyn Fn() -> Arc<dyn Map>;

/// The call's slot in `lookup_packet_key`.
const CALL_SLOT: usize = 11;

#[test]
fn proved_lookups_give_values_and_null_as_the_general_path() {
    let code = lookup_packet_key();
    let array = || {
        let m = maps::create(MapDef::new(MapType::Array, 4, 8, 4)).unwrap();
        for k in 0..4u32 {
            m.update_elem(&k.to_ne_bytes(), &(k as u64 * 11 + 1).to_ne_bytes(), 0)
                .unwrap();
        }
        m
    };
    let hash = || {
        let m = maps::create(MapDef::new(MapType::Hash, 4, 8, 4)).unwrap();
        m.update_elem(&7u32.to_ne_bytes(), &77u64.to_ne_bytes(), 0)
            .unwrap();
        m
    };
    // Array: indexes 0-3 hold 1, 12, 23, 34; 4 and beyond give NULL. Hash: only 7 is there.
    let cases: [(&MakeMap, &[(u32, u64)]); 2] = [
        (
            &array,
            &[
                (0, 1),
                (3, 34),
                (4, 0xdead),
                (5, 0xdead),
                (0x8000_0000, 0xdead),
                (u32::MAX, 0xdead),
            ],
        ),
        (&hash, &[(7, 77), (8, 0xdead), (0, 0xdead)]),
    ];
    for (make, keys) in cases {
        for engine in ENGINES {
            for mode in MODES {
                let p = load(&code, vec![make()], engine, mode);
                if mode == Mode::Verified {
                    assert_eq!(p.instructions()[CALL_SLOT].opcode, OP_CALL);
                    let proved = &p.verifier_report().expect("verified").proved;
                    assert!(proved[CALL_SLOT], "the lookup's map and key are proved");
                }
                for &(key, want) in keys {
                    assert_eq!(run(&p, &packet(key)), want, "{engine:?} {mode:?} key {key}");
                }
            }
        }
    }
}

#[test]
fn a_helper_registered_as_lookup_is_called_at_proved_call_sites() {
    // An embedder's helper under id 1, with the kernel's prototype: it always says "absent".
    // The proved call site must call it, not the built-in lookup.
    let mut helpers = HelperTable::new();
    helpers.register_with_prototype(
        1,
        "my_lookup",
        ebpf_vm::helpers::kernel_prototypes::kernel_prototype(1).unwrap(),
        |_, _| Ok(0),
    );
    let code = lookup_packet_key();
    for engine in ENGINES {
        let map = maps::create(MapDef::new(MapType::Array, 4, 8, 4)).unwrap();
        let p = load_with(&code, vec![map], engine, Mode::Verified, helpers.clone());
        assert!(p.verifier_report().expect("verified").proved[CALL_SLOT]);
        assert_eq!(run(&p, &packet(0)), 0xdead, "{engine:?}");
        // In a batch too (no inline lookup bypasses it).
        assert_eq!(run_batch(&p, &[0, 1]), [0xdead, 0xdead], "{engine:?}");
    }
}

/// r0 of each run of a batch of `packet(key)` for `keys` (a trap fails the test).
fn run_batch(p: &Program, keys: &[u32]) -> Vec<u64> {
    let packets: Vec<u8> = keys.iter().flat_map(|&k| packet(k)).collect();
    let lengths = vec![64u32; keys.len()];
    let input = ebpf_vm::BatchInput {
        packets: &packets,
        lengths: &lengths,
        r0_only: true,
        ..ebpf_vm::BatchInput::default()
    };
    let mut got = vec![0u64; keys.len()];
    p.run_batch(&input, |r| {
        got[r.index] = r.result.as_ref().expect("no trap").0.r0;
    })
    .unwrap();
    got
}

/// With map 0 an array of 12-byte values (a u64 count, a u32 tag): adds 1 to the count and
/// returns the tag.
fn count_packet_key() -> Vec<u8> {
    packet_key_lookup(
        false,
        &[
            mov64_imm(1, 1),
            atomic(SIZE_DW, 0, 1, 0, ATOMIC_ADD),
            i(CLASS_LDX | MODE_MEM | SIZE_W, 0, 0, 8, 0),
            exit(),
        ],
    )
}

/// Batches of a verified program do proved array lookups inline in the JIT (as the kernel's
/// `array_map_gen_lookup`: the value at `index * stride`, NULL at or past `max_entries`): each
/// packet's verdict and the map after the batch are those computed by hand, on both engines, in
/// both modes, in a batch and in single runs (which take the lookup stub).
#[test]
fn array_lookups_in_a_batch_give_the_values_and_null_by_hand() {
    let code = count_packet_key();
    // Five elements of 12 bytes (stride 16): tag 100 + k.
    let make = || {
        let m = maps::create(MapDef::new(MapType::Array, 4, 12, 5)).unwrap();
        for k in 0..5u32 {
            let mut v = [0u8; 12];
            v[8..].copy_from_slice(&(100 + k).to_ne_bytes());
            m.update_elem(&k.to_ne_bytes(), &v, 0).unwrap();
        }
        m
    };
    let keys = [0u32, 4, 5, 2, 4, 9, u32::MAX, 0, 0x8000_0004];
    let want = [100u64, 104, 0xdead, 102, 104, 0xdead, 0xdead, 100, 0xdead];
    // Counts by index: 0 twice, 2 once, 4 twice.
    let counts = [2u64, 0, 1, 0, 2];
    for engine in ENGINES {
        for mode in MODES {
            for batch in [true, false] {
                let map = make();
                let p = load(&code, vec![map.clone()], engine, mode);
                let got: Vec<u64> = if batch {
                    run_batch(&p, &keys)
                } else {
                    keys.iter().map(|&k| run(&p, &packet(k))).collect()
                };
                let what = format!("{engine:?} {mode:?} batch {batch}");
                assert_eq!(got, want, "{what}");
                for (k, &count) in counts.iter().enumerate() {
                    let v = map.lookup_elem(&(k as u32).to_ne_bytes()).unwrap();
                    assert_eq!(v[..8], count.to_ne_bytes(), "{what}: count of {k}");
                    assert_eq!(v[8..], (100 + k as u32).to_ne_bytes(), "{what}: tag of {k}");
                }
            }
        }
    }
}

/// With map 0 an LPM trie of IPv4 keys: the value's first eight bytes.
fn lpm_packet_key() -> Vec<u8> {
    packet_key_lookup(
        true,
        &[i(CLASS_LDX | MODE_MEM | SIZE_DW, 0, 0, 0, 0), exit()],
    )
}

/// A program, its map and the keys with what it returns for each.
type Case<'a> = (Vec<u8>, &'a MakeMap, &'a [(u32, u64)]);

/// A map of `t` with u32 keys and u64 values holding `entries`.
fn map_of(t: MapType, entries: &[(u32, u64)]) -> Arc<dyn Map> {
    let m = maps::create(MapDef::new(t, 4, 8, 4)).unwrap();
    for (k, v) in entries {
        m.update_elem(&k.to_ne_bytes(), &v.to_ne_bytes(), 0)
            .unwrap();
    }
    m
}

/// An LPM trie of IPv4 keys and u64 values holding the prefixes `entries` (length, address,
/// value).
fn lpm_v4(entries: &[(u32, [u8; 4], u64)]) -> Arc<dyn Map> {
    let mut def = MapDef::new(MapType::LpmTrie, 8, 8, 8);
    def.flags = ebpf_vm::maps::def::flags::BPF_F_NO_PREALLOC;
    let m = maps::create(def).unwrap();
    for (plen, addr, v) in entries {
        let mut k = plen.to_ne_bytes().to_vec();
        k.extend(addr);
        m.update_elem(&k, &v.to_ne_bytes(), 0).unwrap();
    }
    m
}

/// Hash maps and LPM tries: in a batch, proved lookups call the map's lookup directly (no stub);
/// the verdicts are those worked out by hand, on both engines and modes, batch and single runs.
#[test]
fn hash_and_lpm_lookups_in_a_batch_give_the_values_by_hand() {
    let hash = || map_of(MapType::Hash, &[(7, 77), (9, 99)]);
    // 10.0.0.0/8 -> 8, 10.1.0.0/16 -> 16, 10.1.2.128/25 -> 25.
    let lpm = || {
        lpm_v4(&[
            (8, [10, 0, 0, 0], 8),
            (16, [10, 1, 0, 0], 16),
            (25, [10, 1, 2, 128], 25),
        ])
    };
    let key = |a: [u8; 4]| u32::from_ne_bytes(a);
    // 10.1.2.200: bit 24 is 1 (200 >= 128), so the /25; 10.1.2.3: the /16; 10.2.0.0: the /8;
    // 11.1.2.3: nothing.
    let lpm_keys = [
        (key([10, 1, 2, 200]), 25),
        (key([10, 1, 2, 3]), 16),
        (key([10, 2, 0, 0]), 8),
        (key([11, 1, 2, 3]), 0xdead),
        (key([10, 1, 2, 128]), 25),
    ];
    let hash_keys = [(7, 77), (8, 0xdead), (9, 99), (0, 0xdead), (7, 77)];
    let cases: [Case; 2] = [
        (lookup_packet_key(), &hash, &hash_keys),
        (lpm_packet_key(), &lpm, &lpm_keys),
    ];
    for (code, make, keys) in cases {
        let (keys, want): (Vec<u32>, Vec<u64>) = keys.iter().copied().unzip();
        for engine in ENGINES {
            for mode in MODES {
                let p = load(&code, vec![make()], engine, mode);
                assert_eq!(run_batch(&p, &keys), want, "{engine:?} {mode:?} batch");
                let single: Vec<u64> = keys.iter().map(|&k| run(&p, &packet(k))).collect();
                assert_eq!(single, want, "{engine:?} {mode:?} single");
            }
        }
    }
}

/// Metered code (`meter`) charges the budget at the head of each chain: a lookup call that heads
/// a chain (a `ja +0` before it makes it a jump target) has the budget's check and the lookup
/// without the stub in one instruction's code, which must stay within the JIT's bound; the
/// results are those worked out by hand, in a batch, on both engines.
#[test]
fn lookups_without_the_stub_at_a_chain_head_in_metered_code() {
    let value = [i(CLASS_LDX | MODE_MEM | SIZE_DW, 0, 0, 0, 0), exit()];
    let ja = [i(CLASS_JMP | JMP_JA, 0, 0, 0, 0)];
    let array = || map_of(MapType::Array, &[(1, 5)]);
    let lpm = || lpm_v4(&[(8, [10, 0, 0, 0], 6)]);
    let ip = |a: [u8; 4]| u32::from_ne_bytes(a);
    // Array (4 elements): index 1 holds 5, 0 holds 0, 4 is past the end. LPM: 10.x.x.x is under
    // 10.0.0.0/8.
    let cases: [Case; 2] = [
        (
            packet_key_lookup_with(false, &ja, &value),
            &array,
            &[(1, 5), (0, 0), (4, 0xdead)],
        ),
        (
            packet_key_lookup_with(true, &ja, &value),
            &lpm,
            &[(ip([10, 9, 8, 7]), 6), (ip([11, 0, 0, 0]), 0xdead)],
        ),
    ];
    for (code, make, keys) in cases {
        let (keys, want): (Vec<u32>, Vec<u64>) = keys.iter().copied().unzip();
        for engine in ENGINES {
            let p = Program::load(
                &code,
                ProgramOptions {
                    engine,
                    mode: Mode::Verified,
                    meter: true,
                    maps: vec![make()],
                    prog_type: ProgramType::Xdp,
                    ..ProgramOptions::default()
                },
            )
            .unwrap_or_else(|e| panic!("{engine:?}: {e}"));
            assert_eq!(run_batch(&p, &keys), want, "{engine:?}");
        }
    }
}
