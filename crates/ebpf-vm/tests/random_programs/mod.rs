//! The random valid programs of the differential suites: straight-line ALU, memory traffic
//! around the stack, the data (r1) and an extra region (r3), atomics, jumps and counted loops,
//! local calls, `callx` and helper calls. `differential.rs` runs them as they are;
//! `fuzz_engines.rs` adds map, callback, lock, ring-buffer and packet helper calls through the
//! `Extra` hook of `function`. `xdp` holds random XDP programs around direct packet access.
#![allow(dead_code)]

pub mod xdp;

use super::rng::{Random, Rng};
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::Insn;

pub const DATA_LEN: usize = 64;
pub const EXTRA_LEN: usize = 32;
pub const VALUE_LEN: usize = 24;
pub const HELPER_MIX: u32 = 1;
pub const HELPER_FAILS_ON_ODD: u32 = 2;
/// Adds a region for the buffer at `value` and returns its address, as a map lookup does: the
/// run's region table grows while compiled code runs.
pub const HELPER_VALUE: u32 = 3;

/// One program item before jump offsets are known.
#[derive(Clone, Debug)]
pub enum Item {
    Plain(Insn),
    Lddw(u8, u64),
    /// A jump (opcode, dst, src, imm) to item `target`.
    Jump(u8, u8, u8, i32, usize),
    /// `ja32` to item `target`.
    Ja32(usize),
    /// Local call to the item index `target`.
    Call(usize),
    /// `lddw dst, map[index]` (BPF_PSEUDO_MAP_IDX).
    MapRef(u8, i32),
    /// `lddw dst, <function at item target>` (BPF_PSEUDO_FUNC): a callback.
    FuncRef(u8, usize),
}

pub fn interesting(r: &mut Rng) -> u64 {
    match r.below(12) {
        0 => 0,
        1 => 1,
        2 => u64::MAX,
        3 => i64::MIN as u64,
        4 => i64::MAX as u64,
        5 => i32::MIN as i64 as u64,
        6 => 0x8000_0000,
        7 => 0xffff_ffff,
        8 => 0x1_0000_0000,
        9 => r.below(64),
        _ => r.next(),
    }
}

pub fn imm(r: &mut Rng) -> i32 {
    match r.below(8) {
        0 => 0,
        1 => -1,
        2 => i32::MIN,
        3 => 1,
        4 => r.range(-64, 64) as i32,
        _ => r.next() as i32,
    }
}

/// A register the program may write: mostly not r1 (data) or r3 (extra region), so that memory
/// traffic through them stays interesting.
pub fn dst(r: &mut Rng) -> u8 {
    if r.chance(5) {
        r.pick(&[1, 3])
    } else {
        r.pick(&[0, 2, 4, 5, 6, 7, 8, 9])
    }
}

pub fn src(r: &mut Rng) -> u8 {
    r.below(11) as u8
}

pub fn alu(r: &mut Rng) -> Insn {
    let class = r.pick(&[CLASS_ALU, CLASS_ALU64]);
    let ops = [
        ALU_ADD, ALU_SUB, ALU_MUL, ALU_DIV, ALU_OR, ALU_AND, ALU_LSH, ALU_RSH, ALU_NEG, ALU_MOD,
        ALU_XOR, ALU_MOV, ALU_ARSH, ALU_END,
    ];
    let op = r.pick(&ops);
    let d = dst(r);
    match op {
        ALU_NEG => Insn::new(class | op, d, 0, 0, 0),
        ALU_END => {
            let opcode = r.pick(&[
                CLASS_ALU | ALU_END,
                CLASS_ALU | ALU_END | SRC_X,
                CLASS_ALU64 | ALU_END,
            ]);
            Insn::new(opcode, d, 0, 0, r.pick(&[16, 32, 64]))
        }
        _ => {
            let off = match op {
                ALU_DIV | ALU_MOD => r.pick(&[0i16, 1]),
                ALU_MOV if class == CLASS_ALU64 => r.pick(&[0i16, 0, 8, 16, 32]),
                ALU_MOV => r.pick(&[0i16, 0, 8, 16]),
                _ => 0,
            };
            if r.chance(50) {
                Insn::new(class | op | SRC_X, d, src(r), off, 0)
            } else {
                let off = if op == ALU_MOV { 0 } else { off };
                let k = if matches!(op, ALU_LSH | ALU_RSH | ALU_ARSH) && r.chance(70) {
                    r.below(64) as i32
                } else {
                    imm(r)
                };
                Insn::new(class | op, d, 0, off, k)
            }
        }
    }
}

/// Base register and offset of a memory access of `size` bytes.
pub fn address(r: &mut Rng, size: u32) -> (u8, i16) {
    match r.below(10) {
        0..=3 => (10, r.range(-530, 8) as i16),
        4..=6 => (1, r.range(-4, DATA_LEN as i64 + 4) as i16),
        7 | 8 => (3, r.range(-4, EXTRA_LEN as i64 + 4) as i16),
        _ => (src(r), r.range(-16, 16) as i16 * size as i16),
    }
}

pub fn size_bits(r: &mut Rng) -> (u8, u32) {
    r.pick(&[(SIZE_B, 1), (SIZE_H, 2), (SIZE_W, 4), (SIZE_DW, 8)])
}

pub fn memory(r: &mut Rng) -> Insn {
    let (sz, size) = size_bits(r);
    match r.below(3) {
        0 => {
            let (base, off) = address(r, size);
            let mode = if size != 8 && r.chance(30) {
                MODE_MEMSX
            } else {
                MODE_MEM
            };
            Insn::new(CLASS_LDX | mode | sz, dst(r), base, off, 0)
        }
        1 => {
            let (base, off) = address(r, size);
            Insn::new(CLASS_ST | MODE_MEM | sz, base, 0, off, imm(r))
        }
        _ => {
            let (base, off) = address(r, size);
            Insn::new(CLASS_STX | MODE_MEM | sz, base, src(r), off, 0)
        }
    }
}

pub fn atomic(r: &mut Rng) -> Insn {
    // Every atomic operation the validator accepts: read-modify-writes of 32 and 64 bits,
    // load-acquires and store-releases of any size.
    let op = r.pick(ebpf_vm::isa::table::ATOMIC_OPS);
    let ordered = op == ATOMIC_LOAD_ACQ || op == ATOMIC_STORE_REL;
    let (sz, size) = if ordered {
        size_bits(r)
    } else {
        r.pick(&[(SIZE_W, 4u32), (SIZE_DW, 8)])
    };
    let (base, mut off) = address(r, size);
    if r.chance(85) {
        off -= off.rem_euclid(size as i16);
    }
    let other = r.below(10) as u8;
    // A load-acquire reads through src into dst; every other form goes through dst.
    let (d, s) = if op == ATOMIC_LOAD_ACQ {
        (other, base)
    } else {
        (base, other)
    };
    Insn::new(CLASS_STX | MODE_ATOMIC | sz, d, s, off, op)
}

pub fn jump(r: &mut Rng, target: usize) -> Item {
    let class = r.pick(&[CLASS_JMP, CLASS_JMP32]);
    let op = r.pick(&[
        JMP_JEQ, JMP_JGT, JMP_JGE, JMP_JSET, JMP_JNE, JMP_JSGT, JMP_JSGE, JMP_JLT, JMP_JLE,
        JMP_JSLT, JMP_JSLE,
    ]);
    if r.chance(50) {
        Item::Jump(class | op | SRC_X, src(r), src(r), 0, target)
    } else {
        Item::Jump(class | op, src(r), 0, imm(r), target)
    }
}

/// A counted loop as clang writes it (`t = b; t += i; access [t + off]; i += step;
/// if i < n goto head`), which the JIT may check once at its head: with the index, bound and base
/// sometimes set to fitting values and sometimes left as they are (anything), 64- or 32-bit,
/// loads and stores of every size, and sometimes a write to the base or an extra instruction.
pub fn counted_loop(r: &mut Rng, base: usize, items: &mut Vec<Item>) {
    let regs = [0u8, 2, 4, 5, 6, 7, 8, 9];
    let i = r.pick(&regs);
    let n = r.pick(&regs);
    let t = r.pick(&regs);
    let b = if r.chance(70) {
        1
    } else if r.chance(50) {
        3
    } else {
        src(r)
    };
    if r.chance(70) {
        let i0 = if r.chance(80) {
            r.range(0, 4)
        } else {
            r.pick(&[-1, -2, 0x7fff_ffff, DATA_LEN as i64 + 3])
        };
        items.push(Item::Plain(Insn::new(
            CLASS_ALU64 | ALU_MOV,
            i,
            0,
            0,
            i0 as i32,
        )));
    }
    let wide = r.chance(60);
    // `if i != n` counting up by one (64-bit), as clang writes fixed-count loops.
    let counts_up = wide && r.chance(40);
    let imm_bound = r.chance(40);
    let bound = r.range(0, 2 * DATA_LEN as i64) as i32;
    if !imm_bound && r.chance(70) {
        items.push(Item::Plain(Insn::new(
            CLASS_ALU64 | ALU_MOV,
            n,
            0,
            0,
            bound,
        )));
    }
    let head = base + items.len();
    items.push(Item::Plain(Insn::new(
        CLASS_ALU64 | ALU_MOV | SRC_X,
        t,
        b,
        0,
        0,
    )));
    items.push(Item::Plain(Insn::new(
        CLASS_ALU64 | ALU_ADD | SRC_X,
        t,
        i,
        0,
        0,
    )));
    let (sz, _) = size_bits(r);
    let off = r.range(-4, 8) as i16;
    items.push(Item::Plain(match r.below(3) {
        0 => Insn::new(CLASS_LDX | MODE_MEM | sz, dst(r), t, off, 0),
        1 => Insn::new(CLASS_ST | MODE_MEM | sz, t, 0, off, imm(r)),
        _ => Insn::new(CLASS_STX | MODE_MEM | sz, t, src(r), off, 0),
    }));
    if r.chance(30) {
        items.push(Item::Plain(alu(r)));
    }
    let step_class = if wide || r.chance(20) {
        CLASS_ALU64
    } else {
        CLASS_ALU
    };
    let step = if counts_up && r.chance(85) {
        1
    } else {
        r.range(1, 9) as i32
    };
    items.push(Item::Plain(Insn::new(step_class | ALU_ADD, i, 0, 0, step)));
    let class = if wide { CLASS_JMP } else { CLASS_JMP32 };
    let cond = if counts_up { JMP_JNE } else { JMP_JLT };
    items.push(if imm_bound {
        Item::Jump(class | cond, i, 0, bound, head)
    } else {
        Item::Jump(class | cond | SRC_X, i, n, 0, head)
    });
}

/// Two to four accesses through one base register at nearby offsets, as a parser's field reads
/// are (the JIT may check the span they cover once), often near an end of the data, sometimes
/// with an instruction between them that may write the base.
pub fn access_group(r: &mut Rng, items: &mut Vec<Item>) {
    let b = if r.chance(70) {
        1
    } else if r.chance(50) {
        3
    } else {
        src(r)
    };
    let at = if r.chance(50) {
        r.range(DATA_LEN as i64 - 40, DATA_LEN as i64 + 2)
    } else {
        r.range(-10, 20)
    };
    for _ in 0..r.range(2, 5) {
        let (sz, _) = size_bits(r);
        let off = (at + r.range(0, 40)) as i16;
        items.push(Item::Plain(match r.below(3) {
            0 => Insn::new(CLASS_LDX | MODE_MEM | sz, dst(r), b, off, 0),
            1 => Insn::new(CLASS_ST | MODE_MEM | sz, b, 0, off, imm(r)),
            _ => Insn::new(CLASS_STX | MODE_MEM | sz, b, src(r), off, 0),
        }));
        if r.chance(15) {
            items.push(Item::Plain(alu(r)));
        }
    }
}

/// What a suite may add to the instructions `function` draws: called before each draw with the
/// items so far and the room left (items before the final `exit`); it pushes at most that many
/// items at indices from `base + items.len()` and returns true, or returns false (and, to keep a
/// suite's seeds producing the same cases, draws nothing) to let `function` draw.
pub type Extra<'a> = &'a mut dyn FnMut(&mut Rng, usize, &mut Vec<Item>, usize) -> bool;

/// No additions: the differential suite's programs.
pub fn no_extra(_: &mut Rng, _: usize, _: &mut Vec<Item>, _: usize) -> bool {
    false
}

/// The helpers `function` calls.
pub struct Calls<'a> {
    /// Called with whatever the registers hold.
    pub bare: &'a [i32],
    /// Returns the address of a fresh region, which the next instruction uses through r0.
    pub value: Option<i32>,
}

/// The differential suite's helpers (see `differential.rs`).
pub const DIFFERENTIAL_CALLS: Calls<'static> = Calls {
    bare: &[
        HELPER_MIX as i32,
        HELPER_FAILS_ON_ODD as i32,
        HELPER_VALUE as i32,
    ],
    value: Some(HELPER_VALUE as i32),
};

/// Items of one function occupying item indices `base..base + len`, the last being `exit`.
pub fn function(
    r: &mut Rng,
    base: usize,
    len: usize,
    sub: usize,
    calls: &Calls<'_>,
    extra: Extra<'_>,
) -> Vec<Item> {
    let mut items = Vec::with_capacity(len);
    while items.len() < len - 1 {
        let room = len - 1 - items.len();
        if extra(r, base, &mut items, room) {
            assert!(items.len() < len, "an extra overran its room");
            continue;
        }
        let target = base + r.below(len as u64) as usize;
        if items.len() + 2 < len && r.chance(4) {
            if let Some(value) = calls.value {
                // Get a fresh region from a helper and use it through r0.
                items.push(Item::Plain(Insn::new(OP_CALL, 0, 0, 0, value)));
                let (sz, size) = size_bits(r);
                let off = r.range(-4, VALUE_LEN as i64 + 4) as i16;
                items.push(Item::Plain(match r.below(4) {
                    0 => Insn::new(CLASS_LDX | MODE_MEM | sz, dst(r), 0, off, 0),
                    1 => Insn::new(CLASS_ST | MODE_MEM | sz, 0, 0, off, imm(r)),
                    2 if size >= 4 => {
                        let off = off - off.rem_euclid(size as i16);
                        Insn::new(
                            CLASS_STX | MODE_ATOMIC | sz,
                            0,
                            r.below(10) as u8,
                            off,
                            ATOMIC_ADD,
                        )
                    }
                    _ => Insn::new(CLASS_STX | MODE_MEM | sz, 0, src(r), off, 0),
                }));
                continue;
            }
        }
        if items.len() + 9 < len && r.chance(10) {
            counted_loop(r, base, &mut items);
            continue;
        }
        if items.len() + 6 < len && r.chance(8) {
            access_group(r, &mut items);
            continue;
        }
        if items.len() + 2 < len && r.chance(5) {
            // Address arithmetic as clang writes it (`rd = rs; rd += rx`), which the JIT may
            // emit as one lea; the add may name rd itself.
            let class = r.pick(&[CLASS_ALU, CLASS_ALU64]);
            let d = dst(r);
            items.push(Item::Plain(Insn::new(
                class | ALU_MOV | SRC_X,
                d,
                src(r),
                0,
                0,
            )));
            items.push(Item::Plain(if r.chance(50) {
                let x = if r.chance(20) { d } else { src(r) };
                Insn::new(class | ALU_ADD | SRC_X, d, x, 0, 0)
            } else {
                Insn::new(class | ALU_ADD, d, 0, 0, imm(r))
            }));
            continue;
        }
        let item = match r.below(100) {
            0..=29 => Item::Plain(alu(r)),
            30..=37 => Item::Lddw(dst(r), interesting(r)),
            38..=57 => Item::Plain(memory(r)),
            58..=63 => Item::Plain(atomic(r)),
            64..=75 => jump(r, target),
            76..=77 => Item::Jump(OP_JA, 0, 0, 0, target),
            78 => Item::Ja32(target),
            79..=82 => Item::Plain(Insn::new(OP_CALL, 0, 0, 0, r.pick(calls.bare))),
            83 => Item::Plain(Insn::new(OP_CALLX, src(r), 0, 0, 0)),
            84..=86 => Item::Call(sub),
            87..=89 => {
                let (sz, _) = r.pick(&[(SIZE_B, 1), (SIZE_H, 2), (SIZE_W, 4)]);
                let k = r.range(-2, DATA_LEN as i64 + 2) as i32;
                if r.chance(50) {
                    Item::Plain(Insn::new(CLASS_LD | MODE_ABS | sz, 0, 0, 0, k))
                } else {
                    Item::Plain(Insn::new(CLASS_LD | MODE_IND | sz, 0, src(r), 0, k))
                }
            }
            90..=91 => Item::Plain(Insn::new(OP_EXIT, 0, 0, 0, 0)),
            _ => {
                // Give a register a value that makes divisions and callx interesting.
                let v = r.pick(&[
                    0u64,
                    u64::MAX,
                    1,
                    2,
                    3,
                    i64::MIN as u64,
                    0xffff_ffff_8000_0000,
                ]);
                Item::Lddw(dst(r), v)
            }
        };
        items.push(item);
    }
    items.push(Item::Plain(Insn::new(OP_EXIT, 0, 0, 0, 0)));
    items
}

/// A main function of 2-40 items and a subprogram of 2-12 that main (and itself) may call.
pub fn generate(r: &mut Rng) -> Vec<Insn> {
    let main_len = r.range(2, 40) as usize;
    let sub_len = r.range(2, 12) as usize;
    // A function may come out a few items longer than asked; the sub-program starts where the
    // main function really ends (as the kernel's function rules want: no function falls into
    // the next), so main's calls are pointed at it once its place is known.
    const SUB: usize = usize::MAX;
    let mut items = function(r, 0, main_len, SUB, &DIFFERENTIAL_CALLS, &mut no_extra);
    let sub = items.len();
    for it in items.iter_mut() {
        if let Item::Call(t @ SUB) = it {
            *t = sub;
        }
    }
    items.extend(function(
        r,
        sub,
        sub_len,
        sub,
        &DIFFERENTIAL_CALLS,
        &mut no_extra,
    ));
    layout(&items)
}

/// The instructions of `items`, jump and call offsets resolved.
pub fn layout(items: &[Item]) -> Vec<Insn> {
    // Slot index of each item.
    let mut slot = Vec::with_capacity(items.len());
    let mut n = 0usize;
    for it in items {
        slot.push(n);
        n += if matches!(it, Item::Lddw(..) | Item::MapRef(..) | Item::FuncRef(..)) {
            2
        } else {
            1
        };
    }
    let mut out = Vec::with_capacity(n);
    for (k, it) in items.iter().enumerate() {
        let rel = |t: usize| slot[t] as i64 - (slot[k] as i64 + 1);
        match *it {
            Item::Plain(i) => out.push(i),
            Item::Lddw(d, v) => {
                out.push(Insn::new(OP_LDDW, d, 0, 0, v as u32 as i32));
                out.push(Insn::new(0, 0, 0, 0, (v >> 32) as u32 as i32));
            }
            Item::Jump(op, d, s, k, t) => out.push(Insn::new(op, d, s, rel(t) as i16, k)),
            Item::Ja32(t) => out.push(Insn::new(OP_JA32, 0, 0, 0, rel(t) as i32)),
            Item::Call(t) => out.push(Insn::new(OP_CALL, 0, CALL_LOCAL, 0, rel(t) as i32)),
            Item::MapRef(d, index) => {
                out.push(Insn::new(OP_LDDW, d, PSEUDO_MAP_IDX, 0, index));
                out.push(Insn::new(0, 0, 0, 0, 0));
            }
            Item::FuncRef(d, t) => {
                out.push(Insn::new(OP_LDDW, d, PSEUDO_FUNC, 0, rel(t) as i32));
                out.push(Insn::new(0, 0, 0, 0, 0));
            }
        }
    }
    out
}
