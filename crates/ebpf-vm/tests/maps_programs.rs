//! Programs that use maps through the helpers, on the interpreter: lookups, updates, deletes,
//! atomics on map values from several threads, global data through `lddw` map-value relocation,
//! queues, ring buffers, map-in-map, and the refusals (forged handles, bad pointers, writes to
//! read-only maps). Programs are encoded by hand; expected values are worked out by hand from the
//! kernel's helper documentation (linux/bpf.h). `EBPF_TEST_ENGINE=jit cargo test -p ebpf-vm --test
//! maps_programs` runs the same programs on the JIT.

use std::sync::Arc;
use std::thread;

use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::Insn;
use ebpf_vm::maps::def::flags::*;
use ebpf_vm::maps::percpu::possible_cpus;
use ebpf_vm::maps::ringbuf::RingBuf;
use ebpf_vm::maps::{self, Map, MapDef, MapType};
use ebpf_vm::{
    Engine, ErrorCode, HelperError, HelperTable, Program, ProgramOptions, RunInput, Trap, TrapKind,
};

// ---- encoding -------------------------------------------------------------------------------

fn i(opcode: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn::new(opcode, dst, src, off, imm)
}
fn ld_map(dst: u8, index: i32) -> [Insn; 2] {
    [i(OP_LDDW, dst, PSEUDO_MAP_IDX, 0, index), i(0, 0, 0, 0, 0)]
}
fn ld_map_fd(dst: u8, index: i32) -> [Insn; 2] {
    [i(OP_LDDW, dst, PSEUDO_MAP_FD, 0, index), i(0, 0, 0, 0, 0)]
}
fn ld_map_value(dst: u8, src: u8, index: i32, off: i32) -> [Insn; 2] {
    [i(OP_LDDW, dst, src, 0, index), i(0, 0, 0, 0, off)]
}
fn ld_imm64(dst: u8, v: u64) -> [Insn; 2] {
    [
        i(OP_LDDW, dst, 0, 0, v as u32 as i32),
        i(0, 0, 0, 0, (v >> 32) as u32 as i32),
    ]
}
fn mov_imm(dst: u8, imm: i32) -> Insn {
    i(CLASS_ALU64 | ALU_MOV | SRC_K, dst, 0, 0, imm)
}
fn mov_reg(dst: u8, src: u8) -> Insn {
    i(CLASS_ALU64 | ALU_MOV | SRC_X, dst, src, 0, 0)
}
fn add_imm(dst: u8, imm: i32) -> Insn {
    i(CLASS_ALU64 | ALU_ADD | SRC_K, dst, 0, 0, imm)
}
fn st_w(dst: u8, off: i16, imm: i32) -> Insn {
    i(CLASS_ST | MODE_MEM | SIZE_W, dst, 0, off, imm)
}
fn st_dw(dst: u8, off: i16, imm: i32) -> Insn {
    i(CLASS_ST | MODE_MEM | SIZE_DW, dst, 0, off, imm)
}
fn stx_dw(dst: u8, src: u8, off: i16) -> Insn {
    i(CLASS_STX | MODE_MEM | SIZE_DW, dst, src, off, 0)
}
fn ldx_dw(dst: u8, src: u8, off: i16) -> Insn {
    i(CLASS_LDX | MODE_MEM | SIZE_DW, dst, src, off, 0)
}
fn ldx_w(dst: u8, src: u8, off: i16) -> Insn {
    i(CLASS_LDX | MODE_MEM | SIZE_W, dst, src, off, 0)
}
fn atomic_add_dw(dst: u8, src: u8, off: i16) -> Insn {
    i(CLASS_STX | MODE_ATOMIC | SIZE_DW, dst, src, off, ATOMIC_ADD)
}
fn jeq_imm(dst: u8, imm: i32, off: i16) -> Insn {
    i(CLASS_JMP | JMP_JEQ | SRC_K, dst, 0, off, imm)
}
fn call(id: i32) -> Insn {
    i(OP_CALL, 0, 0, 0, id)
}
fn exit() -> Insn {
    i(OP_EXIT, 0, 0, 0, 0)
}

/// Flattens instruction groups (single instructions and lddw pairs) into bytecode.
macro_rules! prog {
    ($($x:expr),* $(,)?) => {{
        let mut v: Vec<Insn> = Vec::new();
        $( v.extend(AsInsns::insns($x)); )*
        v.iter().flat_map(|x| x.encode()).collect::<Vec<u8>>()
    }};
}
trait AsInsns {
    fn insns(self) -> Vec<Insn>;
}
impl AsInsns for Insn {
    fn insns(self) -> Vec<Insn> {
        vec![self]
    }
}
impl AsInsns for [Insn; 2] {
    fn insns(self) -> Vec<Insn> {
        self.to_vec()
    }
}

/// The engine under test: the interpreter, or the JIT with `EBPF_TEST_ENGINE=jit` (the helpers
/// are shared, so the same expectations hold).
fn engine() -> Engine {
    match std::env::var("EBPF_TEST_ENGINE").as_deref() {
        Ok("jit") => Engine::Jit,
        _ => Engine::Interpreter,
    }
}

fn load_with(code: &[u8], maps: Vec<Arc<dyn Map>>, helpers: HelperTable) -> Program {
    Program::load(
        code,
        ProgramOptions {
            engine: engine(),
            maps,
            helpers,
            ..ProgramOptions::default()
        },
    )
    .expect("program loads")
}

fn load(code: &[u8], maps: Vec<Arc<dyn Map>>) -> Program {
    load_with(code, maps, HelperTable::standard())
}

fn run(p: &Program) -> Result<u64, Trap> {
    p.run(&mut RunInput {
        data: &mut [],
        budget: None,
    })
    .map(|o| o.r0)
}

fn create(t: MapType, k: u32, v: u32, n: u32) -> Arc<dyn Map> {
    maps::create(MapDef::new(t, k, v, n)).unwrap()
}

fn neg(errno: i64) -> u64 {
    (-errno) as u64
}

/// r2 = &key on the stack (u32 `key` at r10 - 4).
fn key_on_stack(key: i32) -> [Insn; 3] {
    [st_w(10, -4, key), mov_reg(2, 10), add_imm(2, -4)]
}

/// `map[0][key] += 1` atomically; returns the new value, or 0 when the key is missing.
fn counter_program(key: i32) -> Vec<u8> {
    let [k0, k1, k2] = key_on_stack(key);
    prog![
        k0,
        k1,
        k2,
        ld_map(1, 0),
        call(1),
        jeq_imm(0, 0, 3),
        mov_imm(1, 1),
        atomic_add_dw(0, 1, 0),
        ldx_dw(0, 0, 0),
        exit(),
    ]
}

// ---- tests ----------------------------------------------------------------------------------

#[test]
fn array_counter_through_lookup_and_atomic_add() {
    let m = create(MapType::Array, 4, 8, 4);
    let p = load(&counter_program(2), vec![m.clone()]);
    assert_eq!(run(&p).unwrap(), 1);
    assert_eq!(run(&p).unwrap(), 2);
    assert_eq!(run(&p).unwrap(), 3);
    assert_eq!(m.lookup(&2u32.to_ne_bytes()).unwrap(), 3u64.to_ne_bytes());
    // Index 4 is past the end: lookup gives NULL, the program returns 0.
    let p = load(&counter_program(4), vec![m.clone()]);
    assert_eq!(run(&p).unwrap(), 0);
    // PSEUDO_MAP_FD names the map by the same index.
    let [k0, k1, k2] = key_on_stack(2);
    let code = prog![
        k0,
        k1,
        k2,
        ld_map_fd(1, 0),
        call(1),
        ldx_dw(0, 0, 0),
        exit()
    ];
    assert_eq!(run(&load(&code, vec![m])).unwrap(), 3);
}

#[test]
fn atomics_from_several_threads_give_the_exact_total() {
    for t in [MapType::Array, MapType::Hash] {
        let m = create(t, 4, 8, 4);
        m.update(&1u32.to_ne_bytes(), &[0; 8], BPF_ANY).unwrap();
        let p = Arc::new(load(&counter_program(1), vec![m.clone()]));
        let threads = 4;
        let runs = 2500;
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                let p = p.clone();
                thread::spawn(move || {
                    for _ in 0..runs {
                        run(&p).unwrap();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(
            m.lookup(&1u32.to_ne_bytes()).unwrap(),
            ((threads * runs) as u64).to_ne_bytes(),
            "{t:?}"
        );
    }
}

#[test]
fn percpu_array_slots_sum_to_the_total() {
    let m = create(MapType::PercpuArray, 4, 8, 1);
    let p = Arc::new(load(&counter_program(0), vec![m.clone()]));
    let hs: Vec<_> = (0..3)
        .map(|_| {
            let p = p.clone();
            thread::spawn(move || {
                for _ in 0..1000 {
                    run(&p).unwrap();
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let blob = m.lookup(&0u32.to_ne_bytes()).unwrap();
    assert_eq!(blob.len(), possible_cpus() * 8);
    let sum: u64 = blob
        .chunks(8)
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
        .sum();
    assert_eq!(sum, 3000);
}

/// Updates key 7 of map 0 with value 0x1122334455667788 and `flags`; returns the helper's r0.
fn update_program(flags: i32) -> Vec<u8> {
    let [k0, k1, k2] = key_on_stack(7);
    prog![
        k0,
        k1,
        k2,
        ld_imm64(3, 0x1122_3344_5566_7788),
        stx_dw(10, 3, -16),
        mov_reg(3, 10),
        add_imm(3, -16),
        ld_map(1, 0),
        mov_imm(4, flags),
        call(2),
        exit(),
    ]
}

#[test]
fn hash_update_delete_and_errno_returns() {
    let m = create(MapType::Hash, 4, 8, 1);
    let key7 = 7u32.to_ne_bytes();
    // BPF_NOEXIST: created (0), then -EEXIST (-17).
    let p = load(&update_program(BPF_NOEXIST as i32), vec![m.clone()]);
    assert_eq!(run(&p).unwrap(), 0);
    assert_eq!(
        m.lookup(&key7).unwrap(),
        0x1122_3344_5566_7788u64.to_ne_bytes()
    );
    assert_eq!(run(&p).unwrap(), neg(17));
    // Bad flags: -EINVAL (-22).
    assert_eq!(
        run(&load(&update_program(8), vec![m.clone()])).unwrap(),
        neg(22)
    );
    // Full map, new key: -E2BIG (-7).
    m.delete(&key7).unwrap();
    m.update(&9u32.to_ne_bytes(), &[0; 8], BPF_ANY).unwrap();
    assert_eq!(
        run(&load(&update_program(0), vec![m.clone()])).unwrap(),
        neg(7)
    );
    // Delete: 0 for key 9, then -ENOENT (-2).
    let [k0, k1, k2] = key_on_stack(9);
    let del = load(
        &prog![k0, k1, k2, ld_map(1, 0), call(3), exit()],
        vec![m.clone()],
    );
    assert_eq!(run(&del).unwrap(), 0);
    assert_eq!(run(&del).unwrap(), neg(2));
    // Deleting from an array is -EINVAL.
    let a = create(MapType::Array, 4, 8, 10);
    let del = load(&prog![k0, k1, k2, ld_map(1, 0), call(3), exit()], vec![a]);
    assert_eq!(run(&del).unwrap(), neg(22));
}

#[test]
fn percpu_update_from_a_program_writes_one_slot() {
    let m = create(MapType::PercpuHash, 4, 8, 4);
    let p = load(&update_program(0), vec![m.clone()]);
    assert_eq!(run(&p).unwrap(), 0);
    let blob = m.lookup(&7u32.to_ne_bytes()).unwrap();
    let slots: Vec<u64> = blob
        .chunks(8)
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(
        slots
            .iter()
            .filter(|&&v| v == 0x1122_3344_5566_7788)
            .count(),
        1
    );
    assert_eq!(
        slots.iter().filter(|&&v| v == 0).count(),
        possible_cpus() - 1
    );
}

#[test]
fn relocation_keeps_what_each_lddw_loads_in_the_side_table() {
    use ebpf_vm::analysis::Imm64;
    let data = create(MapType::Array, 4, 16, 1);
    let counts = create(MapType::Hash, 4, 8, 4);
    // r1 = &data + 8 (slots 0-1); r2 = map 1 (slots 2-3); r3 = a constant (slots 4-5).
    let code = prog![
        ld_map_value(1, PSEUDO_MAP_IDX_VALUE, 0, 8),
        ld_map(2, 1),
        ld_imm64(3, 1 << 40),
        mov_imm(0, 0),
        exit(),
    ];
    let p = load(&code, vec![data, counts.clone()]);
    let x = p.xlated();
    assert_eq!((x[1] >> 4, x[17] >> 4), (0, 0), "source fields cleared");
    // The constant of the map lddw is the map's handle now; the side table still says map 1.
    let handle = u32::from_le_bytes(x[20..24].try_into().unwrap()) as u64
        | (u32::from_le_bytes(x[28..32].try_into().unwrap()) as u64) << 32;
    assert_eq!(handle, maps::handle(&counts));
    let aux: Vec<Imm64> = p.analysis().aux.iter().map(|a| a.imm64).collect();
    assert_eq!(
        aux,
        [
            Imm64::MapValue {
                index: 0,
                offset: 8
            },
            Imm64::Map { index: 1 },
            Imm64::Constant,
            Imm64::Constant,
            Imm64::Constant,
        ]
    );
}

#[test]
fn global_data_through_map_value_relocation() {
    let data = create(MapType::Array, 4, 16, 1);
    let mut init = [0u8; 16];
    init[8..].copy_from_slice(&0xabcdu64.to_ne_bytes());
    data.update(&0u32.to_ne_bytes(), &init, BPF_ANY).unwrap();
    // r1 = &data + 8; r0 = *r1; *r1 = r0 + 1; return r0.
    let code = prog![
        ld_map_value(1, PSEUDO_MAP_IDX_VALUE, 0, 8),
        ldx_dw(0, 1, 0),
        mov_reg(2, 0),
        add_imm(2, 1),
        stx_dw(1, 2, 0),
        exit(),
    ];
    let p = load(&code, vec![data.clone()]);
    assert_eq!(run(&p).unwrap(), 0xabcd);
    assert_eq!(run(&p).unwrap(), 0xabce);
    assert_eq!(
        &data.lookup(&0u32.to_ne_bytes()).unwrap()[8..],
        &0xabcfu64.to_ne_bytes()
    );
    // The relocated lddw is a plain one in the translated program.
    let x = p.xlated();
    assert_eq!(x[1] >> 4, 0, "source field cleared");
    // PSEUDO_MAP_VALUE (2) works the same.
    let code2 = prog![
        ld_map_value(1, PSEUDO_MAP_VALUE, 0, 8),
        ldx_dw(0, 1, 0),
        exit()
    ];
    assert_eq!(run(&load(&code2, vec![data.clone()])).unwrap(), 0xabcf);
    // Only the value is accessible: 8 bytes at offset 8 + 8 = 16 lie outside it.
    let past = prog![
        ld_map_value(1, PSEUDO_MAP_IDX_VALUE, 0, 8),
        ldx_dw(0, 1, 8),
        exit()
    ];
    let trap = run(&load(&past, vec![data.clone()])).unwrap_err();
    assert_eq!(trap.kind, TrapKind::OutOfBounds);
}

#[test]
fn read_only_global_data_cannot_be_written_by_programs() {
    let ro =
        maps::create(MapDef::new(MapType::Array, 4, 8, 1).with_flags(BPF_F_RDONLY_PROG)).unwrap();
    ro.update(&0u32.to_ne_bytes(), &5u64.to_ne_bytes(), BPF_ANY)
        .unwrap();
    ro.freeze().unwrap();
    let read = prog![
        ld_map_value(1, PSEUDO_MAP_IDX_VALUE, 0, 0),
        ldx_dw(0, 1, 0),
        exit()
    ];
    assert_eq!(run(&load(&read, vec![ro.clone()])).unwrap(), 5);
    let write = prog![
        ld_map_value(1, PSEUDO_MAP_IDX_VALUE, 0, 0),
        st_dw(1, 0, 1),
        exit()
    ];
    let trap = run(&load(&write, vec![ro.clone()])).unwrap_err();
    assert_eq!(trap.kind, TrapKind::ReadOnly);
    // Nor through a looked-up pointer, nor through the update helper.
    let [k0, k1, k2] = key_on_stack(0);
    let via_lookup = prog![k0, k1, k2, ld_map(1, 0), call(1), st_dw(0, 0, 1), exit()];
    assert_eq!(
        run(&load(&via_lookup, vec![ro.clone()])).unwrap_err().kind,
        TrapKind::ReadOnly
    );
    let trap = run(&load(&update_program(0), vec![ro.clone()])).unwrap_err();
    assert_eq!(trap.kind, TrapKind::HelperError);
    assert_eq!(ro.lookup(&0u32.to_ne_bytes()).unwrap(), 5u64.to_ne_bytes());
}

#[test]
fn relocation_errors_are_load_errors() {
    let arr = create(MapType::Array, 4, 16, 2);
    let one = create(MapType::Array, 4, 16, 1);
    let hash = create(MapType::Hash, 4, 16, 1);
    type Case = (Vec<u8>, Vec<Arc<dyn Map>>);
    let cases: Vec<Case> = vec![
        // Map index 1 of a one-map list.
        (prog![ld_map(1, 1), exit()], vec![one.clone()]),
        // Offset 16 of a 16-byte value.
        (
            prog![ld_map_value(1, PSEUDO_MAP_IDX_VALUE, 0, 16), exit()],
            vec![one.clone()],
        ),
        // Direct value of a two-element array and of a hash map.
        (
            prog![ld_map_value(1, PSEUDO_MAP_VALUE, 0, 0), exit()],
            vec![arr],
        ),
        (
            prog![ld_map_value(1, PSEUDO_MAP_VALUE, 0, 0), exit()],
            vec![hash],
        ),
        // A map lddw with something in its second slot.
        (
            prog![
                [i(OP_LDDW, 1, PSEUDO_MAP_FD, 0, 0), i(0, 0, 0, 0, 4)],
                exit()
            ],
            vec![one.clone()],
        ),
    ];
    for (code, maps) in cases {
        let err = Program::load(
            &code,
            ProgramOptions {
                engine: Engine::Interpreter,
                maps,
                ..ProgramOptions::default()
            },
        )
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::Einval, "{err}");
        assert_eq!(err.insn, Some(0));
    }
}

#[test]
fn map_handles_cannot_be_forged() {
    let mine = create(MapType::Array, 4, 8, 1);
    let other = create(MapType::Array, 4, 8, 1);
    let [k0, k1, k2] = key_on_stack(0);
    // A made-up number, and the real handle of a map the program was not given.
    for r1 in [0x1234u64, maps::handle(&other), 0] {
        let code = prog![k0, k1, k2, ld_imm64(1, r1), call(1), exit()];
        let trap = run(&load(&code, vec![mine.clone()])).unwrap_err();
        assert_eq!(trap.kind, TrapKind::HelperError);
        assert!(trap.message.contains("not a map"), "{}", trap.message);
    }
}

#[test]
fn pointer_arguments_are_checked() {
    let m = create(MapType::Hash, 4, 8, 4);
    // Key pointer 0 (r2 never set).
    let code = prog![ld_map(1, 0), mov_imm(2, 0), call(1), exit()];
    let trap = run(&load(&code, vec![m.clone()])).unwrap_err();
    assert_eq!(trap.kind, TrapKind::HelperError);
    // Key partly above the stack top: r10 - 2, 4 bytes.
    let code = prog![
        ld_map(1, 0),
        mov_reg(2, 10),
        add_imm(2, -2),
        call(1),
        exit()
    ];
    assert_eq!(
        run(&load(&code, vec![m.clone()])).unwrap_err().kind,
        TrapKind::HelperError
    );
}

#[test]
fn looked_up_values_are_exactly_the_value() {
    // A 4-byte value: an 8-byte load through the pointer is out of bounds, a 4-byte one is fine.
    let m = create(MapType::Hash, 4, 4, 4);
    m.update(&1u32.to_ne_bytes(), &77u32.to_ne_bytes(), BPF_ANY)
        .unwrap();
    let [k0, k1, k2] = key_on_stack(1);
    let ok = prog![k0, k1, k2, ld_map(1, 0), call(1), ldx_w(0, 0, 0), exit()];
    assert_eq!(run(&load(&ok, vec![m.clone()])).unwrap(), 77);
    let bad = prog![k0, k1, k2, ld_map(1, 0), call(1), ldx_dw(0, 0, 0), exit()];
    assert_eq!(
        run(&load(&bad, vec![m.clone()])).unwrap_err().kind,
        TrapKind::OutOfBounds
    );
    // A missing key: NULL, and dereferencing NULL traps.
    let [k0, k1, k2] = key_on_stack(2);
    let null = prog![k0, k1, k2, ld_map(1, 0), call(1), ldx_w(0, 0, 0), exit()];
    assert_eq!(
        run(&load(&null, vec![m.clone()])).unwrap_err().kind,
        TrapKind::OutOfBounds
    );
    // Two lookups of one key give the same address.
    let [k0, k1, k2] = key_on_stack(1);
    let same = prog![
        k0,
        k1,
        k2,
        ld_map(1, 0),
        call(1),
        mov_reg(6, 0),
        ld_map(1, 0),
        call(1),
        i(CLASS_ALU64 | ALU_SUB | SRC_X, 0, 6, 0, 0),
        exit(),
    ];
    assert_eq!(run(&load(&same, vec![m])).unwrap(), 0);
}

#[test]
fn a_value_deleted_during_the_run_may_be_reused_as_in_the_kernels_preallocated_maps() {
    let m = create(MapType::Hash, 4, 8, 4);
    m.update(&1u32.to_ne_bytes(), &[0; 8], BPF_ANY).unwrap();
    // Helper 0x7000 deletes key 1 from user space while the program holds the pointer, and
    // fills the map with other keys: one of them takes the freed value slot.
    let mut helpers = HelperTable::standard();
    let m2 = m.clone();
    helpers.register(0x7000, "delete_behind_the_program", move |_, _| {
        m2.delete(&1u32.to_ne_bytes())
            .map_err(|e| HelperError(e.to_string()))?;
        for k in 2..5u32 {
            m2.update(&k.to_ne_bytes(), &[0xee; 8], BPF_ANY).unwrap();
        }
        Ok(0)
    });
    let [k0, k1, k2] = key_on_stack(1);
    let code = prog![
        k0,
        k1,
        k2,
        ld_map(1, 0),
        call(1),
        mov_reg(6, 0),
        call(0x7000),
        st_dw(6, 0, 42),
        ldx_dw(0, 6, 0),
        exit(),
    ];
    let p = load_with(&code, vec![m.clone()], helpers);
    // The pointer still points into the map's memory: the store lands in the value of the key
    // that reused the slot, as it would in the kernel's preallocated hash map.
    assert_eq!(run(&p).unwrap(), 42);
    assert_eq!(m.keys().unwrap().len(), 3);
    let values: Vec<Vec<u8>> = (2..5u32)
        .map(|k| m.lookup(&k.to_ne_bytes()).unwrap())
        .collect();
    let mut reused = 42u64.to_ne_bytes().to_vec();
    reused.truncate(8);
    assert_eq!(
        values.iter().filter(|v| **v == reused).count(),
        1,
        "{values:?}"
    );
    assert_eq!(
        values.iter().filter(|v| **v == [0xee; 8]).count(),
        2,
        "{values:?}"
    );
}

#[test]
fn concurrent_deletes_while_programs_run() {
    // Programs increment key 1 while another thread deletes and re-creates it: no crash, no
    // trap, and every increment lands in some incarnation of the value.
    let m = create(MapType::Hash, 4, 8, 4);
    m.update(&1u32.to_ne_bytes(), &[0; 8], BPF_ANY).unwrap();
    let p = Arc::new(load(&counter_program(1), vec![m.clone()]));
    let churn = {
        let m = m.clone();
        thread::spawn(move || {
            for _ in 0..2000 {
                let _ = m.delete(&1u32.to_ne_bytes());
                m.update(&1u32.to_ne_bytes(), &[0; 8], BPF_ANY).unwrap();
            }
        })
    };
    let runners: Vec<_> = (0..2)
        .map(|_| {
            let p = p.clone();
            thread::spawn(move || {
                for _ in 0..5000 {
                    run(&p).expect("no trap");
                }
            })
        })
        .collect();
    churn.join().unwrap();
    for r in runners {
        r.join().unwrap();
    }
}

#[test]
fn lpm_lookup_from_a_program() {
    let m =
        maps::create(MapDef::new(MapType::LpmTrie, 8, 8, 8).with_flags(BPF_F_NO_PREALLOC)).unwrap();
    let key = |plen: u32, ip: [u8; 4]| {
        let mut k = plen.to_ne_bytes().to_vec();
        k.extend_from_slice(&ip);
        k
    };
    m.update(&key(8, [10, 0, 0, 0]), &8u64.to_ne_bytes(), BPF_ANY)
        .unwrap();
    m.update(&key(24, [10, 1, 2, 0]), &24u64.to_ne_bytes(), BPF_ANY)
        .unwrap();
    // Key {32, 10.1.2.3} at r10 - 8: prefixlen word, then the address as a big-endian u32 word.
    let lookup = |ip: [u8; 4]| {
        let code = prog![
            st_w(10, -8, 32),
            st_w(10, -4, i32::from_ne_bytes(ip)),
            mov_reg(2, 10),
            add_imm(2, -8),
            ld_map(1, 0),
            call(1),
            jeq_imm(0, 0, 1),
            ldx_dw(0, 0, 0),
            exit(),
        ];
        run(&load(&code, vec![m.clone()])).unwrap()
    };
    assert_eq!(lookup([10, 1, 2, 3]), 24);
    assert_eq!(lookup([10, 1, 3, 3]), 8);
    assert_eq!(lookup([11, 1, 2, 3]), 0);
}

#[test]
fn queue_push_pop_peek_from_a_program() {
    let q = create(MapType::Queue, 0, 8, 3);
    // Push 1, 2, 3, then 4 (full: -E2BIG), then pop into the stack and return it.
    let push = |v: i32| [st_dw(10, -8, v), mov_reg(2, 10), add_imm(2, -8)];
    let [a0, a1, a2] = push(1);
    let [b0, b1, b2] = push(2);
    let [c0, c1, c2] = push(3);
    let [d0, d1, d2] = push(4);
    let code = prog![
        a0,
        a1,
        a2,
        ld_map(1, 0),
        mov_imm(3, 0),
        call(87),
        b0,
        b1,
        b2,
        ld_map(1, 0),
        mov_imm(3, 0),
        call(87),
        c0,
        c1,
        c2,
        ld_map(1, 0),
        mov_imm(3, 0),
        call(87),
        d0,
        d1,
        d2,
        ld_map(1, 0),
        mov_imm(3, 0),
        call(87),
        exit(),
    ];
    assert_eq!(run(&load(&code, vec![q.clone()])).unwrap(), neg(7));
    let pop = prog![
        mov_reg(2, 10),
        add_imm(2, -8),
        ld_map(1, 0),
        call(88),
        jeq_imm(0, 0, 1),
        exit(),
        ldx_dw(0, 10, -8),
        exit(),
    ];
    let pop = load(&pop, vec![q.clone()]);
    assert_eq!(run(&pop).unwrap(), 1);
    let peek = prog![
        mov_reg(2, 10),
        add_imm(2, -8),
        ld_map(1, 0),
        call(89),
        ldx_dw(0, 10, -8),
        exit(),
    ];
    assert_eq!(run(&load(&peek, vec![q.clone()])).unwrap(), 2);
    assert_eq!(run(&pop).unwrap(), 2);
    assert_eq!(run(&pop).unwrap(), 3);
    // Empty: -ENOENT.
    assert_eq!(run(&pop).unwrap(), neg(2));
    // Pop into read-only memory (r2 = 0) is refused before anything is taken.
    q.push(&9u64.to_ne_bytes(), BPF_ANY).unwrap();
    let bad = prog![mov_imm(2, 0), ld_map(1, 0), call(88), exit()];
    assert_eq!(
        run(&load(&bad, vec![q.clone()])).unwrap_err().kind,
        TrapKind::HelperError
    );
    assert_eq!(q.pop().unwrap(), 9u64.to_ne_bytes());
    // Lookup is not a queue operation for programs.
    let [k0, k1, k2] = key_on_stack(0);
    let lk = prog![k0, k1, k2, ld_map(1, 0), call(1), exit()];
    assert_eq!(
        run(&load(&lk, vec![q])).unwrap_err().kind,
        TrapKind::HelperError
    );
}

#[test]
fn bloom_filter_from_a_program() {
    let b = create(MapType::BloomFilter, 0, 8, 16);
    b.push(&5u64.to_ne_bytes(), BPF_ANY).unwrap();
    let peek = |v: i32| {
        let code = prog![
            st_dw(10, -8, v),
            mov_reg(2, 10),
            add_imm(2, -8),
            ld_map(1, 0),
            call(89),
            exit(),
        ];
        run(&load(&code, vec![b.clone()])).unwrap()
    };
    assert_eq!(peek(5), 0);
    // 1000 absent values: -ENOENT for most (a false positive is possible, a negative is not).
    let absent = (1000..2000).filter(|&v| peek(v) == neg(2)).count();
    assert!(absent > 900, "{absent}");
}

#[test]
fn ringbuf_helpers() {
    let m = maps::create(MapDef::new(MapType::Ringbuf, 0, 0, 4096)).unwrap();
    // reserve 8; if NULL return 1; *p = 0x55; submit(p); output(&stack_u64, 8); return query(0).
    let code = prog![
        ld_map(1, 0),
        mov_imm(2, 8),
        mov_imm(3, 0),
        call(131),
        jeq_imm(0, 0, 17),
        st_dw(0, 0, 0x55),
        mov_reg(1, 0),
        mov_imm(2, 0),
        call(132),
        st_dw(10, -8, 0x66),
        ld_map(1, 0),
        mov_reg(2, 10),
        add_imm(2, -8),
        mov_imm(3, 8),
        mov_imm(4, 0),
        call(130),
        ld_map(1, 0),
        mov_imm(2, 0),
        call(134),
        exit(),
        mov_imm(0, 1),
        exit(),
    ];
    let p = load(&code, vec![m.clone()]);
    // Two records of 8 + 8 bytes are available.
    assert_eq!(run(&p).unwrap(), 32);
    let mut got = Vec::new();
    m.downcast::<RingBuf>()
        .unwrap()
        .consume(|r| got.push(r.to_vec()));
    assert_eq!(
        got,
        vec![
            0x55u64.to_ne_bytes().to_vec(),
            0x66u64.to_ne_bytes().to_vec()
        ]
    );
    // Output with unknown flags: -EINVAL.
    let bad_flags = prog![
        ld_map(1, 0),
        mov_reg(2, 10),
        add_imm(2, -8),
        mov_imm(3, 8),
        mov_imm(4, 4),
        call(130),
        exit(),
    ];
    assert_eq!(run(&load(&bad_flags, vec![m.clone()])).unwrap(), neg(22));
    // Too big to ever fit: reserve gives NULL.
    let big = prog![
        ld_map(1, 0),
        mov_imm(2, 5000),
        mov_imm(3, 0),
        call(131),
        exit()
    ];
    assert_eq!(run(&load(&big, vec![m.clone()])).unwrap(), 0);
}

#[test]
fn ringbuf_reservations_are_checked_and_cleaned_up() {
    let m = maps::create(MapDef::new(MapType::Ringbuf, 0, 0, 4096)).unwrap();
    let r = m.downcast::<RingBuf>().unwrap();
    // Reserve and forget: the run's end discards the record, so later records still flow.
    let forget = prog![
        ld_map(1, 0),
        mov_imm(2, 16),
        mov_imm(3, 0),
        call(131),
        mov_imm(0, 0),
        exit()
    ];
    run(&load(&forget, vec![m.clone()])).unwrap();
    assert!(r.output(b"after"));
    let mut got = Vec::new();
    r.consume(|rec| got.push(rec.to_vec()));
    assert_eq!(got, vec![b"after".to_vec()]);
    // Submitting something that is not an open reservation: a made-up pointer, or twice.
    let bogus = prog![
        mov_reg(1, 10),
        add_imm(1, -8),
        mov_imm(2, 0),
        call(132),
        exit()
    ];
    assert_eq!(
        run(&load(&bogus, vec![m.clone()])).unwrap_err().kind,
        TrapKind::HelperError
    );
    let twice = prog![
        ld_map(1, 0),
        mov_imm(2, 8),
        mov_imm(3, 0),
        call(131),
        jeq_imm(0, 0, 6),
        mov_reg(6, 0),
        mov_reg(1, 6),
        mov_imm(2, 0),
        call(133),
        mov_reg(1, 6),
        call(132),
        exit(),
    ];
    assert_eq!(
        run(&load(&twice, vec![m.clone()])).unwrap_err().kind,
        TrapKind::HelperError
    );
    // Writing past the reserved 8 bytes traps.
    let over = prog![
        ld_map(1, 0),
        mov_imm(2, 8),
        mov_imm(3, 0),
        call(131),
        jeq_imm(0, 0, 1),
        st_dw(0, 8, 1),
        exit(),
    ];
    assert_eq!(
        run(&load(&over, vec![m.clone()])).unwrap_err().kind,
        TrapKind::OutOfBounds
    );
}

#[test]
fn map_in_map_lookup_gives_a_usable_inner_handle() {
    let inner_def = MapDef::new(MapType::Hash, 4, 8, 4);
    let outer =
        maps::create(MapDef::new(MapType::ArrayOfMaps, 4, 4, 2).with_inner(inner_def.clone()))
            .unwrap();
    let inner = maps::create(inner_def).unwrap();
    inner
        .update(&3u32.to_ne_bytes(), &99u64.to_ne_bytes(), BPF_ANY)
        .unwrap();
    outer
        .update(&1u32.to_ne_bytes(), &inner.id().to_ne_bytes(), BPF_ANY)
        .unwrap();
    // inner = outer[1]; if NULL return 1; v = inner[3]; if NULL return 2; return *v.
    let code = prog![
        st_w(10, -4, 1),
        mov_reg(2, 10),
        add_imm(2, -4),
        ld_map(1, 0),
        call(1),
        jeq_imm(0, 0, 10),
        st_w(10, -8, 3),
        mov_reg(1, 0),
        mov_reg(2, 10),
        add_imm(2, -8),
        call(1),
        jeq_imm(0, 0, 2),
        ldx_dw(0, 0, 0),
        exit(),
        mov_imm(0, 2),
        exit(),
        mov_imm(0, 1),
        exit(),
    ];
    let p = load(&code, vec![outer.clone()]);
    assert_eq!(run(&p).unwrap(), 99);
    outer.delete(&1u32.to_ne_bytes()).unwrap();
    assert_eq!(run(&p).unwrap(), 1);
}

/// `lddw dst, <function at slot target>` (BPF_PSEUDO_FUNC) placed at slot `pc`.
fn ld_func(dst: u8, pc: i32, target: i32) -> [Insn; 2] {
    [
        i(OP_LDDW, dst, PSEUDO_FUNC, 0, target - pc - 1),
        i(0, 0, 0, 0, 0),
    ]
}

/// Main: sum = 0; n = for_each_map_elem(map 0, callback, &sum, flags); return sum * 1000 + n.
/// Callback (slot 17): sum += *value; *value += 1; then `tail` (returns 0, or something else).
fn for_each_program(flags: i32, tail: &[Insn]) -> Vec<u8> {
    let mut v: Vec<Insn> = Vec::new();
    v.extend(ld_map(1, 0)); // 0-1
    v.extend(ld_func(2, 2, 17)); // 2-3
    v.push(mov_reg(3, 10)); // 4
    v.push(add_imm(3, -8)); // 5
    v.push(st_dw(10, -8, 0)); // 6
    v.push(mov_imm(4, flags)); // 7
    v.push(call(164)); // 8
    v.push(mov_reg(6, 0)); // 9
    v.push(ldx_dw(0, 10, -8)); // 10
    v.push(i(CLASS_ALU64 | ALU_MUL | SRC_K, 0, 0, 0, 1000)); // 11
    v.push(i(CLASS_ALU64 | ALU_ADD | SRC_X, 0, 6, 0, 0)); // 12
    v.push(exit()); // 13
    v.push(mov_imm(0, 0)); // 14: padding, never reached
    v.push(exit()); // 15
    v.push(exit()); // 16
    assert_eq!(v.len(), 17);
    // Callback: r1 map, r2 key, r3 value, r4 ctx.
    v.push(ldx_dw(5, 3, 0)); // 17
    v.push(ldx_dw(0, 4, 0));
    v.push(i(CLASS_ALU64 | ALU_ADD | SRC_X, 0, 5, 0, 0));
    v.push(stx_dw(4, 0, 0));
    v.push(add_imm(5, 1));
    v.push(stx_dw(3, 5, 0));
    v.extend_from_slice(tail);
    v.iter().flat_map(|x| x.encode()).collect()
}

#[test]
fn for_each_map_elem_visits_every_element() {
    let a = create(MapType::Array, 4, 8, 4);
    for (k, v) in [10u64, 20, 30, 40].iter().enumerate() {
        a.update(&(k as u32).to_ne_bytes(), &v.to_ne_bytes(), BPF_ANY)
            .unwrap();
    }
    let p = load(
        &for_each_program(0, &[mov_imm(0, 0), exit()]),
        vec![a.clone()],
    );
    // Sum 10 + 20 + 30 + 40 = 100 over 4 elements.
    assert_eq!(run(&p).unwrap(), 100_004);
    // The callback incremented every value through its pointer.
    assert_eq!(a.lookup(&3u32.to_ne_bytes()).unwrap(), 41u64.to_ne_bytes());
    // flags must be 0: -EINVAL, and nothing visited (sum 0).
    let bad = load(
        &for_each_program(1, &[mov_imm(0, 0), exit()]),
        vec![a.clone()],
    );
    assert_eq!(run(&bad).unwrap(), neg(22));
}

#[test]
fn for_each_map_elem_stops_when_the_callback_returns_1() {
    let a = create(MapType::Array, 4, 8, 4);
    for (k, v) in [10u64, 20, 30, 40].iter().enumerate() {
        a.update(&(k as u32).to_ne_bytes(), &v.to_ne_bytes(), BPF_ANY)
            .unwrap();
    }
    // Return 1 when *key == 2: elements 0, 1 and 2 are visited (the stopping one counts, as in
    // the kernel), sum 10 + 20 + 30 = 60.
    let tail = [
        ldx_w(0, 2, 0),
        jeq_imm(0, 2, 2),
        mov_imm(0, 0),
        exit(),
        mov_imm(0, 1),
        exit(),
    ];
    let p = load(&for_each_program(0, &tail), vec![a.clone()]);
    assert_eq!(run(&p).unwrap(), 60_003);
}

#[test]
fn for_each_map_elem_over_a_hash_whose_callback_deletes() {
    let h = create(MapType::Hash, 4, 8, 8);
    for k in [5u32, 6, 7] {
        h.update(&k.to_ne_bytes(), &(k as u64).to_ne_bytes(), BPF_ANY)
            .unwrap();
    }
    // The callback deletes the element it is given: r1 (map) and r2 (key) still hold its own
    // arguments, since nothing before the call changes them.
    let tail = [call(3), mov_imm(0, 0), exit()];
    let p = load(&for_each_program(0, &tail), vec![h.clone()]);
    // 5 + 6 + 7 = 18 over 3 elements, and the map is empty afterwards.
    assert_eq!(run(&p).unwrap(), 18_003);
    assert_eq!(h.len(), 0);
    // An empty map: nothing visited.
    assert_eq!(run(&p).unwrap(), 0);
}

/// `Engine::Interpreter` and, on x86-64, `Engine::Jit`, each loaded with `maps`.
fn on_both_engines(code: &[u8], maps: &[Arc<dyn Map>]) -> Vec<Program> {
    let mut engines = vec![Engine::Interpreter];
    if cfg!(target_arch = "x86_64") {
        engines.push(Engine::Jit);
    }
    engines
        .into_iter()
        .map(|engine| {
            let p = Program::load(
                code,
                ProgramOptions {
                    engine,
                    maps: maps.to_vec(),
                    ..ProgramOptions::default()
                },
            )
            .expect("program loads");
            assert_eq!(p.engine(), engine);
            p
        })
        .collect()
}

fn run_budget(p: &Program, budget: u64) -> Result<ebpf_vm::RunOutput, Trap> {
    p.run(&mut RunInput {
        data: &mut [],
        budget: Some(budget),
    })
}

#[test]
fn for_each_map_elem_counts_its_callbacks_in_the_run() {
    // Main (`for_each_program`): slots 0, 2 (two lddw, one instruction each), 4-8 (the call at
    // 8): 7 instructions, then 9-13: 12. Each element: 1 (the call of the callback) + 8 (slots
    // 17-22 and the tail's two). Four elements: 12 + 4 * 9 = 48.
    let a = create(MapType::Array, 4, 8, 4);
    let code = for_each_program(0, &[mov_imm(0, 0), exit()]);
    for p in on_both_engines(&code, std::slice::from_ref(&a)) {
        let out = run_budget(&p, 1_000).unwrap();
        assert_eq!(out.insn_count, 48, "{:?}", p.engine());
        // 7 + 2 elements (18) + the third call (1) + 3 of its instructions = 29: the store at
        // slot 20 (the 4th of the callback) is past the budget.
        let t = run_budget(&p, 29).unwrap_err();
        assert_eq!(
            (t.kind, t.pc, t.insn_count),
            (TrapKind::BudgetExhausted, 20, 29),
            "{:?}",
            p.engine()
        );
    }
}

#[test]
fn for_each_map_elem_over_a_large_array_ends_at_the_budget() {
    // while (1) for_each_map_elem(array of 2^20 elements, cb, 0, 0); cb: return 0.
    // Each element costs 3 instructions (the call, `r0 = 0`, `exit`): a budget of 300,000 ends
    // inside the first walk, after 99,998 elements, without the walk touching the rest.
    let a = create(MapType::Array, 4, 8, 1 << 20);
    let mut v: Vec<Insn> = Vec::new();
    v.extend(ld_map(1, 0)); // 0-1
    v.extend(ld_func(2, 2, 8)); // 2-3
    v.push(mov_imm(3, 0)); // 4
    v.push(mov_imm(4, 0)); // 5
    v.push(call(164)); // 6
    v.push(i(OP_JA, 0, 0, -8, 0)); // 7: back to 0
    v.push(mov_imm(0, 0)); // 8: the callback
    v.push(exit()); // 9
    let code: Vec<u8> = v.iter().flat_map(|x| x.encode()).collect();
    for p in on_both_engines(&code, std::slice::from_ref(&a)) {
        let t = run_budget(&p, 300_000).unwrap_err();
        // 5 instructions before the call; then 99,998 elements (299,994) and the 99,999th
        // call (1): 300,000, its `r0 = 0` at slot 8 past the budget.
        assert_eq!(
            (t.kind, t.pc, t.insn_count),
            (TrapKind::BudgetExhausted, 8, 300_000),
            "{:?}",
            p.engine()
        );
    }
}

#[test]
fn smp_processor_id_names_the_per_cpu_slot() {
    // *percpu[0] = bpf_get_smp_processor_id() + 100; return the id.
    let m = create(MapType::PercpuArray, 4, 8, 1);
    let [k0, k1, k2] = key_on_stack(0);
    let code = prog![
        call(8),
        mov_reg(6, 0),
        k0,
        k1,
        k2,
        ld_map(1, 0),
        call(1),
        jeq_imm(0, 0, 3),
        mov_reg(1, 6),
        add_imm(1, 100),
        stx_dw(0, 1, 0),
        mov_reg(0, 6),
        exit(),
    ];
    let p = Arc::new(load(&code, vec![m.clone()]));
    let ids: Vec<u64> = (0..3)
        .map(|_| {
            let p = p.clone();
            thread::spawn(move || run(&p).unwrap()).join().unwrap()
        })
        .collect();
    let blob = m.lookup(&0u32.to_ne_bytes()).unwrap();
    for id in ids {
        assert!((id as usize) < possible_cpus());
        let slot = &blob[id as usize * 8..id as usize * 8 + 8];
        assert_eq!(slot, (id + 100).to_ne_bytes());
    }
}

#[test]
fn lookup_percpu_elem_reads_any_cpu_slot() {
    let n = possible_cpus();
    let m = create(MapType::PercpuArray, 4, 8, 2);
    let mut blob = vec![0u8; n * 8];
    for c in 0..n {
        blob[c * 8..c * 8 + 8].copy_from_slice(&(1000 + c as u64).to_ne_bytes());
    }
    m.update(&1u32.to_ne_bytes(), &blob, BPF_ANY).unwrap();
    // r0 = *bpf_map_lookup_percpu_elem(map, &1, cpu), or 7 for NULL.
    let read = |cpu: i32| {
        let [k0, k1, k2] = key_on_stack(1);
        let code = prog![
            k0,
            k1,
            k2,
            ld_map(1, 0),
            mov_imm(3, cpu),
            call(195),
            jeq_imm(0, 0, 2),
            ldx_dw(0, 0, 0),
            exit(),
            mov_imm(0, 7),
            exit(),
        ];
        run(&load(&code, vec![m.clone()])).unwrap()
    };
    for c in 0..n {
        assert_eq!(read(c as i32), 1000 + c as u64);
    }
    // A CPU number past the last slot: NULL.
    assert_eq!(read(n as i32), 7);
    // Not a per-CPU map: refused.
    let plain = create(MapType::Array, 4, 8, 2);
    let [k0, k1, k2] = key_on_stack(1);
    let code = prog![k0, k1, k2, ld_map(1, 0), mov_imm(3, 0), call(195), exit()];
    assert_eq!(
        run(&load(&code, vec![plain])).unwrap_err().kind,
        TrapKind::HelperError
    );
}

#[test]
fn spin_locked_values_stay_consistent_between_programs_and_user_space() {
    // Value: struct { bpf_spin_lock lock; u32 pad; u64 a; u64 b; }, invariant a == b.
    let m = maps::create(MapDef::new(MapType::Hash, 4, 24, 1).with_spin_lock(0)).unwrap();
    m.update(&1u32.to_ne_bytes(), &[0; 24], BPF_ANY).unwrap();
    // v = lookup(1); spin_lock(&v->lock); v->a += 1; (delay) v->b = v->a; spin_unlock(&v->lock).
    let [k0, k1, k2] = key_on_stack(1);
    let code = prog![
        k0,
        k1,
        k2,
        ld_map(1, 0),
        call(1),
        jeq_imm(0, 0, 12),
        mov_reg(6, 0),
        mov_reg(1, 6),
        call(93),
        ldx_dw(7, 6, 8),
        add_imm(7, 1),
        stx_dw(6, 7, 8),
        // A wide window between the two stores: 200 turns of an empty loop.
        mov_imm(8, 200),
        add_imm(8, -1),
        i(CLASS_JMP | JMP_JNE | SRC_K, 8, 0, -2, 0),
        stx_dw(6, 7, 16),
        mov_reg(1, 6),
        call(94),
        mov_imm(0, 0),
        exit(),
    ];
    let p = Arc::new(load(&code, vec![m.clone()]));
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let runners: Vec<_> = (0..2)
        .map(|_| {
            let (p, done) = (p.clone(), done.clone());
            thread::spawn(move || {
                for _ in 0..2000 {
                    run(&p).unwrap();
                }
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            })
        })
        .collect();
    // User space resets both fields under the lock and checks the invariant under the lock, for
    // as long as the programs run.
    let mut i = 0u64;
    while done.load(std::sync::atomic::Ordering::SeqCst) < 2 {
        i += 1;
        let mut v = [0u8; 24];
        v[8..16].copy_from_slice(&(i * 1_000_000).to_ne_bytes());
        v[16..24].copy_from_slice(&(i * 1_000_000).to_ne_bytes());
        m.update(&1u32.to_ne_bytes(), &v, BPF_F_LOCK | BPF_EXIST)
            .unwrap();
        let got = m
            .lookup_with_flags(&1u32.to_ne_bytes(), BPF_F_LOCK)
            .unwrap();
        assert_eq!(&got[8..16], &got[16..24], "a == b under the lock");
        assert_eq!(&got[0..4], &[0; 4], "the lock reads as 0");
    }
    for r in runners {
        r.join().unwrap();
    }
    let got = m
        .lookup_with_flags(&1u32.to_ne_bytes(), BPF_F_LOCK)
        .unwrap();
    assert_eq!(&got[8..16], &got[16..24]);
}

/// Loads `code` as a verified XDP program with `maps`.
fn load_verified(code: &[u8], maps: Vec<Arc<dyn Map>>) -> Result<Program, ebpf_vm::LoadError> {
    Program::load(
        code,
        ProgramOptions {
            engine: engine(),
            maps,
            prog_type: ebpf_vm::ProgramType::Xdp,
            mode: ebpf_vm::Mode::Verified,
            ..ProgramOptions::default()
        },
    )
}

fn run_xdp(p: &Program) -> u64 {
    p.run(&mut RunInput {
        data: &mut [0u8; 64],
        budget: None,
    })
    .expect("runs")
    .r0
}

/// `r1 = map 0; r0 = <load of size `op` at off through r1>; exit`.
fn read_map_field(op: u8, off: i16) -> Vec<u8> {
    prog![ld_map(1, 0), i(op, 0, 1, off, 0), exit()]
}

#[test]
fn a_verified_program_reads_struct_bpf_map_fields_as_their_values() {
    // The kernel's struct bpf_map (Linux 6.18, x86-64): sha[32] at 0, map_type at 64, key_size
    // 68, value_size 72, max_entries 76, map_extra 80, map_flags 88, id 92.
    let map =
        maps::create(MapDef::new(MapType::Hash, 4, 8, 77).with_flags(BPF_F_NO_PREALLOC)).unwrap();
    const W: u8 = CLASS_LDX | SIZE_W | MODE_MEM;
    const B: u8 = CLASS_LDX | SIZE_B | MODE_MEM;
    const DW: u8 = CLASS_LDX | SIZE_DW | MODE_MEM;
    for (op, off, want) in [
        (W, 64, 1u64),
        (B, 64, 1),
        (W, 68, 4),
        (W, 72, 8),
        (W, 76, 77),
        (B, 77, 0),
        (W, 88, BPF_F_NO_PREALLOC as u64),
        (W, 92, map.id() as u64),
        (DW, 80, 0),
        (DW, 0, 0),
        (DW, 24, 0),
    ] {
        let p = load_verified(&read_map_field(op, off), vec![map.clone()]).unwrap();
        assert_eq!(run_xdp(&p), want, "off {off}");
        // The load became a move of the value (what both engines run).
        let moved = p.instructions()[2];
        assert_eq!(moved.opcode & 0xf8, ALU_MOV | SRC_K, "{moved:?}");
    }
    // The value with its top bit set, sign-extended by a sign-extending load: max_entries
    // 0x80 read as a signed byte.
    let big = create(MapType::Array, 4, 8, 0x80);
    let sx = load_verified(
        &read_map_field(CLASS_LDX | SIZE_B | MODE_MEMSX, 76),
        vec![big],
    )
    .unwrap();
    assert_eq!(run_xdp(&sx), (-128i64) as u64);
    // Unchecked programs are not proved to hold a map there: the handle is not memory.
    let checked = load(&read_map_field(W, 76), vec![map.clone()]);
    assert_eq!(run(&checked).unwrap_err().kind, TrapKind::OutOfBounds);
}

#[test]
fn fields_of_an_inner_map_come_from_its_template() {
    // inner = outer[0]; if NULL return 0; return *(u32 *)(inner + off).
    let code = |off: i16| {
        prog![
            st_w(10, -4, 0),
            mov_reg(2, 10),
            add_imm(2, -4),
            ld_map(1, 0),
            call(1),
            jeq_imm(0, 0, 1),
            ldx_w(0, 0, off),
            exit()
        ]
    };
    for flags in [0, BPF_F_INNER_MAP] {
        let template = MapDef::new(MapType::Array, 4, 16, 8).with_flags(flags);
        let outer =
            maps::create(MapDef::new(MapType::ArrayOfMaps, 4, 4, 1).with_inner(template.clone()))
                .unwrap();
        let inner = maps::create(template).unwrap();
        outer
            .update(&0u32.to_ne_bytes(), &inner.id().to_ne_bytes(), BPF_ANY)
            .unwrap();
        let value_size = load_verified(&code(72), vec![outer.clone()]).unwrap();
        assert_eq!(run_xdp(&value_size), 16);
        // The id, and max_entries under BPF_F_INNER_MAP, differ between inner maps.
        let e = load_verified(&code(92), vec![outer.clone()]).unwrap_err();
        assert!(e.message.contains("not supported"), "{e}");
        let max = load_verified(&code(76), vec![outer.clone()]);
        if flags == 0 {
            assert_eq!(run_xdp(&max.unwrap()), 8);
        } else {
            assert!(max
                .unwrap_err()
                .message
                .contains("max_entries of an inner map"));
        }
    }
}
