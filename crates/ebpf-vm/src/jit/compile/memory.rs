//! Loads, stores, atomics and legacy packet loads, with their memory checks: inline against one
//! fast region, out of line against the other (`Snippet::Check`, which calls one of the shared
//! second-region stubs emitted here), shared by a group of nearby accesses (`group`), or none at
//! all for frame-local and verifier-proved accesses.

use super::snippets::{check_info, Snippet};
use super::{
    blinded, ctx, fast_bound, fast_start, Compiler, OpenGroup, DATA_NEG, REG, STACK_FRAME_SIZE,
};
use crate::isa::opcodes::*;
use crate::isa::Insn;
use crate::jit::frame::*;
use crate::jit::x86::*;

/// Instructions after an access that `group` looks at for more accesses through its base, and
/// the most accesses one group check covers: both bound the work per access (and the group's
/// out-of-line copy), so that compilation stays linear in the program's length.
const GROUP_WINDOW: u32 = 64;
pub(super) const GROUP_MAX_MEMBERS: usize = 16;

/// Whether `[r10 + off, r10 + off + size)` is inside the current frame: r10 is always the top of
/// a 512-byte frame inside the stack area (it only moves by whole frames, at most 7 of them), so
/// such an access can never leave the stack region and needs no run-time check.
pub(super) fn frame_local(base: u8, off: i16, size: u32) -> bool {
    base == FP && off as i32 >= -(STACK_FRAME_SIZE as i32) && off as i32 + size as i32 <= 0
}

impl Compiler<'_> {
    /// If the access at `pc` starts a group (further accesses through the same base register
    /// in the rest of its chain, before anything writes that register or calls out, within
    /// `HULL_SIZES` bytes of each other), checks the span they cover once, against the data
    /// region, and marks them covered; if that check fails, a copy of the group's instructions
    /// with their own checks runs instead (`Snippet::Group`). Accesses that fit in the data
    /// region are exactly those that pass their own inline check there, so this changes no
    /// outcome. Clobbers rcx.
    ///
    /// A *quiet* group (nothing between its first and last member can be seen after a trap:
    /// its members but the last are loads, and every other instruction there is register
    /// arithmetic or frame-local: `observable`, which jumps are) needs no copy: as the base does
    /// not change between its members, each member's address is known at the group check, and
    /// a trap at a member would leave nothing seen of the instructions before it. So when the
    /// group check fails, each member is checked in turn, in order, with its own trap (pc,
    /// count), and the group's code runs unchecked after them.
    pub(super) fn group(&mut self, pc: usize) {
        let Some((base, off, size, write)) = self.checked_access(pc) else {
            return;
        };
        if base == FP {
            return;
        }
        let (mut lo, mut hi) = (off as i64, off as i64 + size as i64);
        let mut any_write = write;
        // Quiet so far, and at the last member so far (see above).
        let (mut quiet, mut quiet_to_last) = (true, true);
        let mut members = [0; GROUP_MAX_MEMBERS];
        members[0] = pc;
        let mut count = 1;
        let mut p = pc;
        // A bounded look-ahead, so that the scan (and `covered`, searched per access) stays
        // constant per access: a straight line of a million loads through one base is one
        // group per window rather than one scan of the whole chain per load.
        let window = (self.block_n - self.block_k - 1).min(GROUP_WINDOW);
        // Each instruction's opcode is looked up once (`SCAN`), as the one after the last and
        // then as the one whose effect may end the scan.
        let insns = self.insns;
        let (mut kind, mut dst) = (SCAN[insns[pc].opcode as usize], insns[pc].dst);
        for _ in 0..window {
            if count == GROUP_MAX_MEMBERS {
                break;
            }
            if kind & scan::OPAQUE != 0 || (kind & scan::WRITES_DST != 0 && dst == base) {
                break;
            }
            p += 1 + (kind & scan::LDDW) as usize;
            let insn = &insns[p];
            (kind, dst) = (SCAN[insn.opcode as usize], insn.dst);
            if kind & (scan::LOAD | scan::STORE) != 0 {
                let (b, w) = if kind & scan::LOAD != 0 {
                    (insn.src, false)
                } else {
                    (insn.dst, true)
                };
                let (o, sz) = (insn.off, access_size(insn.opcode));
                let (l, h) = (lo.min(o as i64), hi.max(o as i64 + sz as i64));
                if b == base
                    && h - l <= *HULL_SIZES.last().unwrap() as i64
                    && !frame_local(b, o, sz)
                    && !self.is_proved(p)
                {
                    (lo, hi) = (l, h);
                    // A store before this member would be seen after a trap here.
                    quiet &= !any_write;
                    quiet_to_last = quiet;
                    any_write |= w;
                    members[count] = p;
                    count += 1;
                    continue;
                }
            }
            quiet = quiet && !observable(kind, insn);
        }
        if count < 2 {
            return;
        }
        let span = (hi - lo) as u32;
        let bound = if span <= 8 {
            ctx(fast_bound(1, bound_index(8, any_write)))
        } else {
            let k = HULL_SIZES
                .iter()
                .position(|&h| span <= h)
                .expect("span fits");
            ctx(OFF_HULL_BOUND + 8 * hull_index(k, any_write) as i32)
        };
        let at = self.a.new_label();
        let rejoin = self.a.new_label();
        self.a
            .lea(RCX, mem_idx(REG[base as usize], DATA_NEG, 0, lo as i32));
        self.a.alu_rm(Alu::Cmp, W::B64, RCX, bound);
        self.a.jcc(Cond::Ae, at);
        let last = members[count - 1];
        // A quiet group's checks go back to just after the group check.
        let back = quiet_to_last.then(|| {
            let back = self.a.new_label();
            self.a.bind(back);
            back
        });
        self.snippets.push(Snippet::Group {
            at,
            first: pc,
            last,
            block_n: self.block_n,
            block_k: self.block_k,
            rejoin: back.unwrap_or(rejoin),
            recheck: back.is_some(),
        });
        self.group = Some(OpenGroup {
            members,
            count,
            last,
            rejoin,
        });
    }

    /// Checks the access at `m` (the address `base + off`): inline against one fast region,
    /// out of line against the other (a second-region stub, shared by all sites of the same
    /// region order and bound index) and then through the check stub, which walks the whole
    /// region table and traps on failure. Clobbers rax and rcx (rdx holds `data_neg` after).
    ///
    /// The two fast regions may be tried in either order: a load is allowed by any region that
    /// contains it, and `runtime::bounds` gives the data no store bound when the stack is
    /// read-only, so a store accepted inline is one the first containing region accepts. Accesses
    /// through r10 try the stack (`fast_start[0]`) first, all others the data (`fast_start[1]`).
    pub(super) fn check(&mut self, pc: usize, base: u8, m: Mem, size: u32, write: bool) {
        let bi = bound_index(size, write);
        let (first, second) = if base == FP { (0, 1) } else { (1, 0) };
        let slow = self.a.new_label();
        let ok = self.a.new_label();
        if first == 1 {
            // addr - start in one lea: rdx holds -start.
            self.a.lea(RCX, mem_idx(m.base, DATA_NEG, 0, m.disp));
        } else {
            self.a.lea(RCX, m);
            self.a.alu_rm(Alu::Sub, W::B64, RCX, ctx(fast_start(first)));
        }
        self.a
            .alu_rm(Alu::Cmp, W::B64, RCX, ctx(fast_bound(first, bi)));
        self.a.jcc(Cond::Ae, slow);
        self.a.bind(ok);
        let stub = *self.second[second][bi].get_or_insert_with(|| self.a.new_label());
        self.snippets.push(Snippet::Check {
            at: slow,
            back: ok,
            stub,
            info: access_info(pc, size, write),
            adj: self.adj(),
        });
    }

    /// The second-region stubs that sites use (`Compiler::second`): one per region tried second
    /// and bound index, entered by call from a site's `Snippet::Check` with rcx as the inline
    /// check left it (`addr - start` of the region tried first) and rax = access info |
    /// charge-ahead << 32. An access inside the second region returns at once (rdx intact);
    /// otherwise the stub rebuilds the address in rcx and goes on into the check stub, which
    /// returns to the site.
    ///
    /// Before the stack's stub for a bound index, the full stub (`Compiler::full`), which a
    /// quiet group's checks call with rcx = addr - data start: the data's check, then on into
    /// the stack's stub.
    pub(super) fn emit_second_region_stubs(&mut self) {
        // Entered by call: the context block is 8 bytes further up.
        let start = |region| ctx(fast_start(region) + 8);
        let data_neg = ctx(OFF_DATA_NEG + 8);
        for (region, stubs) in self.second.iter().enumerate() {
            for (bi, stub) in stubs.iter().enumerate() {
                let Some(stub) = *stub else { continue };
                let a = &mut self.a;
                if let Some(full) = self.full[bi].filter(|_| region == 0) {
                    a.bind(full);
                    a.alu_rm(Alu::Cmp, W::B64, RCX, ctx(fast_bound(1, bi) + 8));
                    a.jcc(Cond::Ae, stub);
                    a.ret();
                }
                a.bind(stub);
                let miss = a.new_label();
                if region == 0 {
                    // From a data check: rcx = addr - data start, rdx = -data start.
                    a.alu_rr(Alu::Sub, W::B64, RCX, DATA_NEG);
                    a.alu_rm(Alu::Sub, W::B64, RCX, start(0));
                } else {
                    // From a stack check (through r10): rcx = addr - stack start.
                    a.alu_rm(Alu::Add, W::B64, RCX, start(0));
                    a.alu_rm(Alu::Add, W::B64, RCX, data_neg);
                }
                a.alu_rm(Alu::Cmp, W::B64, RCX, ctx(fast_bound(region, bi) + 8));
                a.jcc(Cond::Ae, miss);
                a.ret();
                a.bind(miss);
                if region == 0 {
                    a.alu_rm(Alu::Add, W::B64, RCX, start(0));
                } else {
                    a.alu_rm(Alu::Sub, W::B64, RCX, data_neg);
                }
                a.jmp(self.stubs.check);
            }
        }
    }

    /// The checks of a quiet group's members (see `group`), from `first` to `last` (the chain's
    /// instructions `block_k..`), each in full: against the data, then the stack, then the
    /// region table, whose trap names the member. Then back to the group's code.
    pub(super) fn group_checks(&mut self, first: usize, last: usize, block_k: u32) {
        let mut pc = first;
        self.block_k = block_k;
        loop {
            let kind = SCAN[self.insns[pc].opcode as usize];
            let access = (kind & (scan::LOAD | scan::STORE) != 0)
                .then(|| self.checked_access(pc))
                .flatten();
            if let Some((base, off, size, write)) = access {
                let bi = bound_index(size, write);
                // Both stubs: the full one falls into the stack's.
                self.second[0][bi].get_or_insert_with(|| self.a.new_label());
                let stub = *self.full[bi].get_or_insert_with(|| self.a.new_label());
                let m = mem_idx(REG[base as usize], DATA_NEG, 0, off as i32);
                self.a.lea(RCX, m);
                let info = access_info(pc, size, write);
                self.a.mov_imm64(RAX, check_info(info, self.adj()));
                self.a.call(stub);
            }
            if pc == last {
                break;
            }
            self.block_k += 1;
            pc += 1 + (kind & scan::LDDW) as usize;
        }
    }

    /// A load or store at `pc` that carries a check (`checked_access`, and not proved). Inlined:
    /// `group`'s scan asks it of every instruction it passes (`parse`, mode checked: 246.7k ->
    /// 242.3k instructions a load under callgrind; `parse_fixed` verified 145.8k -> 146.4k).
    #[inline]
    pub(super) fn checked_access(&self, pc: usize) -> Option<(u8, i16, u32, bool)> {
        checked_access(&self.insns[pc]).filter(|_| !self.is_proved(pc))
    }

    /// Whether the verifier proved the access at `pc` in bounds: `any_proved` first, which mode
    /// checked (none proved) answers without the look-up.
    #[inline(always)]
    pub(super) fn is_proved(&self, pc: usize) -> bool {
        self.any_proved && self.proved[pc]
    }

    /// The memory operand of a load/store at `base + off`, checked unless frame-local or
    /// proved in bounds by the verifier. Inlined into `load` and `store` (most accesses are
    /// frame-local or covered: the call cost more than the tests).
    #[inline(always)]
    pub(super) fn operand(&mut self, pc: usize, base: u8, off: i16, size: u32, write: bool) -> Mem {
        if frame_local(base, off, size) {
            return mem(REG[10], off as i32);
        }
        if self.is_proved(pc) {
            return match self.folded {
                // `base + off` with base's `lea` left out (see `fold`).
                Some(f) if f.t == base && pc <= f.last => Mem {
                    disp: f.at.disp + off as i32,
                    ..f.at
                },
                _ => mem(REG[base as usize], off as i32),
            };
        }
        let m = mem(REG[base as usize], off as i32);
        let covered = self.fast.as_ref().is_some_and(|f| f.accesses.contains(&pc))
            || self
                .group
                .as_ref()
                .is_some_and(|g| g.members[..g.count].contains(&pc));
        if !covered {
            self.check(pc, base, m, size, write);
        }
        m
    }

    pub(super) fn load(&mut self, pc: usize, insn: &Insn) {
        let size = access_size(insn.opcode);
        let m = self.operand(pc, insn.src, insn.off, size, false);
        let d = REG[insn.dst as usize];
        if insn.opcode & 0xe0 == MODE_MEMSX {
            self.a.load_sx(size, d, m);
        } else {
            self.a.load_zx(size, d, m);
        }
    }

    pub(super) fn store(&mut self, pc: usize, insn: &Insn) {
        let size = access_size(insn.opcode);
        let m = self.operand(pc, insn.dst, insn.off, size, true);
        let w = W::of_size(size);
        if class(insn.opcode) == CLASS_ST {
            if blinded(&mut self.a, &mut self.blind, w, RAX, insn.imm) {
                self.a.store(w, m, RAX);
            } else {
                self.a.store_imm(w, m, insn.imm);
            }
        } else {
            self.a.store(w, m, REG[insn.src as usize]);
        }
    }

    pub(super) fn atomic(&mut self, pc: usize, insn: &Insn) {
        self.atomic_op(pc, insn);
        // The compare-exchange forms hold the address in rdx.
        self.a.load(W::B64, DATA_NEG, ctx(OFF_DATA_NEG));
    }

    pub(super) fn atomic_op(&mut self, pc: usize, insn: &Insn) {
        let size = access_size(insn.opcode);
        let w = W::of_size(size);
        let s = REG[insn.src as usize];
        // A load-acquire reads through src; every other form writes through dst.
        let load = insn.imm == ATOMIC_LOAD_ACQ;
        let base = if load { insn.src } else { insn.dst };
        let m = mem(REG[base as usize], insn.off as i32);
        // Proved in bounds by the verifier (mode verified): no region check, as for a plain
        // access; the alignment test below stays, as the interpreter's does.
        if !self.proved[pc] {
            self.check(pc, base, m, size, !load);
        }
        self.a.lea(RAX, m);
        let at = self.a.new_label();
        self.snippets.push(Snippet::Misaligned {
            at,
            info: access_info(pc, size, !load),
            adj: self.adj(),
        });
        let a = &mut self.a;
        a.test_al(size as u8 - 1);
        a.jcc(Cond::Ne, at);
        let m = mem(RAX, 0);
        let fetch = insn.imm & ATOMIC_FETCH != 0;
        match insn.imm {
            // x86-64 orders plain loads as acquires and plain stores as releases (TSO), so
            // these are the ordinary moves the kernel's JIT emits: a zero-extending load, a
            // store of the register's low bytes.
            ATOMIC_LOAD_ACQ => a.load_zx(size, REG[insn.dst as usize], m),
            ATOMIC_STORE_REL => a.store(w, m, s),
            ATOMIC_XCHG => {
                a.mov_rr(W::B64, RCX, s);
                a.xchg(w, m, RCX);
                a.mov_rr(W::B64, s, RCX);
            }
            ATOMIC_CMPXCHG => {
                a.mov_rr(W::B64, RDX, RAX);
                a.mov_rr(w, RAX, REG[0]);
                a.lock_cmpxchg(w, mem(RDX, 0), s);
                a.mov_rr(w, REG[0], RAX);
            }
            op => {
                let alu = match op & !ATOMIC_FETCH {
                    ATOMIC_ADD => Alu::Add,
                    ATOMIC_OR => Alu::Or,
                    ATOMIC_AND => Alu::And,
                    _ => Alu::Xor,
                };
                if !fetch {
                    a.lock_alu_mr(alu, w, m, s);
                } else if alu == Alu::Add {
                    a.mov_rr(W::B64, RCX, s);
                    a.lock_xadd(w, m, RCX);
                    a.mov_rr(W::B64, s, RCX);
                } else {
                    // No fetch-or/and/xor instruction exists: a compare-exchange loop.
                    let again = a.new_label();
                    a.mov_rr(W::B64, RDX, RAX);
                    a.load(w, RAX, mem(RDX, 0));
                    a.bind(again);
                    a.mov_rr(w, RCX, RAX);
                    a.alu_rr(alu, w, RCX, s);
                    a.lock_cmpxchg(w, mem(RDX, 0), RCX);
                    a.jcc(Cond::Ne, again);
                    a.mov_rr(w, s, RAX);
                }
            }
        }
    }

    /// Legacy `LD_ABS`/`LD_IND`: a big-endian load from the packet into r0; outside the packet
    /// the program ends with r0 = 0.
    pub(super) fn packet_load(&mut self, pc: usize, insn: &Insn) {
        let size = access_size(insn.opcode);
        let miss = self.a.new_label();
        self.snippets.push(Snippet::PacketMiss {
            at: miss,
            adj: self.adj(),
            pc,
        });
        let a = &mut self.a;
        if !blinded(a, &mut self.blind, W::B64, RAX, insn.imm) {
            a.mov_r64_simm(RAX, insn.imm);
        }
        if insn.opcode & 0xe0 == MODE_IND {
            a.movsx_rr(W::B64, RCX, REG[insn.src as usize], 4);
            a.alu_rr(Alu::Add, W::B64, RAX, RCX);
        }
        a.test_rr(W::B64, RAX, RAX);
        a.jcc(Cond::S, miss);
        a.lea(RCX, mem(RAX, size as i32));
        a.alu_rm(Alu::Cmp, W::B64, RCX, ctx(OFF_PACKET_LEN));
        a.jcc(Cond::A, miss);
        a.alu_rm(Alu::Add, W::B64, RAX, ctx(OFF_PACKET_START));
        a.load_zx(size, RAX, mem(RAX, 0));
        match size {
            2 => a.shift_ri(Shift::Rol, W::B16, RAX, 8),
            4 => a.bswap(W::B32, RAX),
            _ => {}
        }
        a.mov_rr(W::B64, REG[0], RAX);
    }
}

/// What `group`'s scan asks of an instruction, as bits of `SCAN` by opcode: one lookup in place
/// of `loops::writes` and `loops::opaque`, `checked_access`'s and `observable`'s matches, each of
/// which took the opcode apart again (`parse`, mode checked: ~170 instructions scanned a load).
mod scan {
    /// `lddw`, two slots (bit 0: the scan adds it to its step).
    pub const LDDW: u8 = 1;
    /// Writes `dst` (`loops::writes`).
    pub const WRITES_DST: u8 = 2;
    /// Calls out, exits, touches the packet or is atomic (`loops::opaque`).
    pub const OPAQUE: u8 = 4;
    /// A plain load through `src` (`checked_access`, unless frame-local).
    pub const LOAD: u8 = 8;
    /// A plain store through `dst` (`checked_access`, unless frame-local).
    pub const STORE: u8 = 16;
    /// Can always be seen after a trap (`observable`).
    pub const SEEN: u8 = 32;
    /// Can be seen after a trap unless frame-local through `src` / through `dst`.
    pub const SEEN_SRC: u8 = 64;
    pub const SEEN_DST: u8 = 128;

    use crate::isa::opcodes::*;

    pub(super) const fn of(op: u8) -> u8 {
        let mode = op & 0xe0;
        let jump = matches!(class(op), CLASS_JMP | CLASS_JMP32);
        match class(op) {
            CLASS_ALU | CLASS_ALU64 => WRITES_DST,
            CLASS_LD if op == OP_LDDW => LDDW | WRITES_DST,
            CLASS_LD => OPAQUE | SEEN,
            CLASS_LDX if mode == MODE_MEM || mode == MODE_MEMSX => WRITES_DST | LOAD | SEEN_SRC,
            CLASS_LDX => WRITES_DST | SEEN_SRC,
            CLASS_ST | CLASS_STX if mode == MODE_MEM => STORE | SEEN_DST,
            CLASS_STX if mode == MODE_ATOMIC => OPAQUE | SEEN,
            CLASS_ST | CLASS_STX => SEEN_DST,
            _ if jump && matches!(op & 0xf0, JMP_CALL | JMP_EXIT) => OPAQUE | SEEN,
            _ => SEEN,
        }
    }
}

/// `scan::of` of every opcode.
static SCAN: [u8; 256] = by_opcode!(scan::of);

/// Whether an instruction (of `SCAN` bits `kind`) can have an effect that outlives a trap of the
/// run: it may trap itself, end the run, or change memory other than the current stack frame.
/// Register arithmetic, `lddw` and frame-local stack accesses cannot.
fn observable(kind: u8, insn: &Insn) -> bool {
    let size = access_size(insn.opcode);
    kind & scan::SEEN != 0
        || (kind & scan::SEEN_SRC != 0 && !frame_local(insn.src, insn.off, size))
        || (kind & scan::SEEN_DST != 0 && !frame_local(insn.dst, insn.off, size))
}

/// Base register, offset, size and direction of a plain load or store (not atomic, not legacy
/// packet access) that carries a check: not frame-local.
pub(super) fn checked_access(insn: &Insn) -> Option<(u8, i16, u32, bool)> {
    let op = insn.opcode;
    let mode = op & 0xe0;
    let (base, write) = match class(op) {
        CLASS_LDX if mode == MODE_MEM || mode == MODE_MEMSX => (insn.src, false),
        CLASS_ST | CLASS_STX if mode == MODE_MEM => (insn.dst, true),
        _ => return None,
    };
    let size = access_size(op);
    (!frame_local(base, insn.off, size)).then_some((base, insn.off, size, write))
}

#[cfg(test)]
mod tests {
    use super::super::is_lddw;
    use super::*;

    /// `SCAN` says of every opcode what the functions it stands in for say (`observable` as it
    /// was written before the table).
    #[test]
    fn scan_bits_agree_with_the_tests_they_replace() {
        let reference = |insn: &Insn| {
            let op = insn.opcode;
            let local = |r| frame_local(r, insn.off, access_size(op));
            match class(op) {
                CLASS_ALU | CLASS_ALU64 => false,
                CLASS_LD => !is_lddw(insn),
                CLASS_LDX => !local(insn.src),
                CLASS_ST => !local(insn.dst),
                CLASS_STX => op & 0xe0 == MODE_ATOMIC || !local(insn.dst),
                _ => true,
            }
        };
        for op in 0..=255u8 {
            let kind = SCAN[op as usize];
            for (dst, src, off) in [
                (1, 2, 0),
                (10, 2, -8),
                (2, 10, -16),
                (10, 10, 4),
                (3, 3, -600),
            ] {
                let insn = Insn::new(op, dst, src, off, 0);
                for r in 0..11 {
                    let writes = kind & scan::WRITES_DST != 0 && insn.dst == r;
                    assert_eq!(writes, crate::jit::loops::writes(&insn, r), "{op:#x}");
                }
                assert_eq!(
                    kind & scan::OPAQUE != 0,
                    crate::jit::loops::opaque(&insn),
                    "{op:#x}"
                );
                assert_eq!(kind & scan::LDDW != 0, is_lddw(&insn), "{op:#x}");
                let access = (kind & (scan::LOAD | scan::STORE) != 0).then(|| {
                    let (b, w) = if kind & scan::LOAD != 0 {
                        (src, false)
                    } else {
                        (dst, true)
                    };
                    (b, off, access_size(op), w)
                });
                let access = access.filter(|&(b, o, sz, _)| !frame_local(b, o, sz));
                assert_eq!(access, checked_access(&insn), "{op:#x}");
                assert_eq!(observable(kind, &insn), reference(&insn), "{op:#x}");
            }
        }
    }
}
