//! A small x86-64 instruction encoder: just the instructions the JIT emits, each written as the
//! Intel manual encodes it (REX, opcode, ModRM, SIB, displacement, immediate), plus labels with
//! 32-bit relative fixups. Every jump uses the rel32 form so that the size of each instruction is
//! known before emission and code size can be bounded up front.

/// Host register numbers as the hardware encodes them.
pub const RAX: u8 = 0;
pub const RCX: u8 = 1;
pub const RDX: u8 = 2;
pub const RBX: u8 = 3;
pub const RSP: u8 = 4;
pub const RBP: u8 = 5;
pub const RSI: u8 = 6;
pub const RDI: u8 = 7;
pub const R8: u8 = 8;
pub const R9: u8 = 9;
pub const R10: u8 = 10;
pub const R11: u8 = 11;
pub const R12: u8 = 12;
pub const R13: u8 = 13;
pub const R14: u8 = 14;
pub const R15: u8 = 15;

/// Operand width of an instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum W {
    B8,
    B16,
    B32,
    B64,
}

impl W {
    pub fn of_size(size: u32) -> W {
        match size {
            1 => W::B8,
            2 => W::B16,
            4 => W::B32,
            _ => W::B64,
        }
    }
}

/// A memory operand `[base + index * 2^scale + disp]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mem {
    pub base: u8,
    pub index: Option<(u8, u8)>,
    pub disp: i32,
}

pub fn mem(base: u8, disp: i32) -> Mem {
    Mem {
        base,
        index: None,
        disp,
    }
}

pub fn mem_idx(base: u8, index: u8, scale: u8, disp: i32) -> Mem {
    Mem {
        base,
        index: Some((index, scale)),
        disp,
    }
}

/// Condition codes (the low nibble of `Jcc`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cond {
    B = 0x2,
    Ae = 0x3,
    E = 0x4,
    Ne = 0x5,
    Be = 0x6,
    A = 0x7,
    S = 0x8,
    L = 0xc,
    Ge = 0xd,
    Le = 0xe,
    G = 0xf,
}

/// `op r/m, reg` arithmetic opcodes (the /r forms) and their `81 /ext` immediate extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alu {
    Add,
    Or,
    And,
    Sub,
    Xor,
    Cmp,
}

impl Alu {
    fn rm_reg_opcode(self) -> u8 {
        match self {
            Alu::Add => 0x01,
            Alu::Or => 0x09,
            Alu::And => 0x21,
            Alu::Sub => 0x29,
            Alu::Xor => 0x31,
            Alu::Cmp => 0x39,
        }
    }

    fn ext(self) -> u8 {
        match self {
            Alu::Add => 0,
            Alu::Or => 1,
            Alu::And => 4,
            Alu::Sub => 5,
            Alu::Xor => 6,
            Alu::Cmp => 7,
        }
    }
}

/// Shift and rotate extensions of `C1 /ext` and `D3 /ext`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shift {
    Rol = 0,
    Shl = 4,
    Shr = 5,
    Sar = 7,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Label(pub u32);

/// Bound on the instruction being written, which byte indices are masked to: no form this
/// encoder writes exceeds 15 bytes (lock, operand-size and REX prefixes, a two-byte opcode,
/// ModRM, SIB, disp32, imm32), the architecture's limit.
const MAX_LEN: usize = 16;
const _: () = assert!(MAX_LEN.is_power_of_two());
/// Room kept past the end of the code for the instruction being written: twice its bound, so
/// that a 4-byte field at any masked index is in it, written as one store with no bounds check
/// (`Enc::imm32`; four masked byte stores before).
const ROOM: usize = 2 * MAX_LEN;

/// Where an unbound label is (code positions fit in 32 bits: see `compile::size_bound`, far
/// below; labels and fixups held as `u32` take a quarter and a half of the room).
const UNBOUND: u32 = u32::MAX;

/// Machine code under construction.
///
/// Each instruction is written in place into room past the end of the code (see `put`), so
/// that writing a byte is one store: no capacity check and no length update per byte (byte
/// pushes onto a `Vec` were the top of a profile of the JIT's compile).
pub struct Asm {
    /// The code (`..end`), then initialised bytes of no meaning: at least `ROOM` of them, always
    /// (each write that ends the code nearer grows the buffer after it, see `put`).
    buf: Vec<u8>,
    end: usize,
    /// `buf.len() - ROOM`: the end is never past it (`put` tests one field, not a difference).
    limit: usize,
    labels: Vec<u32>,
    /// Positions of rel32 fields and the label each one refers to.
    fixups: Vec<(u32, Label)>,
    /// Positions of 4-byte data fields holding the offset of a label from another (jump
    /// tables' entries, see `offset32`).
    offsets: Vec<(u32, Label, Label)>,
}

/// The bytes of one instruction, written into the room past the end of the code.
struct Enc<'a> {
    room: &'a mut [u8; ROOM],
    n: usize,
}

impl Enc<'_> {
    /// One byte. The index is masked to the instruction's bound (no form is longer, see
    /// `MAX_LEN`), which spares a bounds check per byte.
    fn byte(&mut self, b: u8) {
        debug_assert!(self.n < MAX_LEN, "an instruction longer than MAX_LEN");
        self.room[self.n & (MAX_LEN - 1)] = b;
        self.n += 1;
    }

    fn bytes(&mut self, b: &[u8]) {
        for &b in b {
            self.byte(b);
        }
    }

    /// An opcode of one or two bytes (every form `op_rr` and `op_rm` write): two stores, where
    /// the loop of `bytes` over a slice of unknown length became a call of `memcpy`.
    fn opcode(&mut self, op: &[u8]) {
        debug_assert!(matches!(op.len(), 1 | 2), "opcode of {} bytes", op.len());
        self.byte(op[0]);
        if let Some(&b) = op.get(1) {
            self.byte(b);
        }
    }

    fn imm32(&mut self, v: i32) {
        debug_assert!(self.n + 4 <= MAX_LEN, "an instruction longer than MAX_LEN");
        let at = self.n & (MAX_LEN - 1);
        self.room[at..at + 4].copy_from_slice(&v.to_le_bytes());
        self.n += 4;
    }

    /// REX prefix; `force` emits an empty one so that byte registers 4-7 mean spl..dil.
    fn rex(&mut self, w: bool, r: u8, x: u8, b: u8, force: bool) {
        let v = 0x40 | (w as u8) << 3 | (r >> 3 & 1) << 2 | (x >> 3 & 1) << 1 | (b >> 3 & 1);
        if v != 0x40 || force {
            self.byte(v);
        }
    }

    /// Prefixes for width `w`: operand-size override for 16 bits, REX.W for 64.
    fn prefixes(&mut self, w: W, reg: u8, index: u8, base: u8, byte_regs: bool) {
        if w == W::B16 {
            self.byte(0x66);
        }
        self.rex(w == W::B64, reg, index, base, byte_regs);
    }

    fn modrm_reg(&mut self, reg: u8, rm: u8) {
        self.byte(0xc0 | (reg & 7) << 3 | (rm & 7));
    }

    fn modrm_mem(&mut self, reg: u8, m: Mem) {
        let base = m.base & 7;
        // [rbp]/[r13] with mod 00 means RIP/disp32, so those bases always carry a displacement.
        let md = if m.disp == 0 && base != 5 {
            0
        } else if i8::try_from(m.disp).is_ok() {
            1
        } else {
            2
        };
        // [rsp]/[r12] as a base, or any index, needs a SIB byte.
        if base == 4 || m.index.is_some() {
            self.byte(md << 6 | (reg & 7) << 3 | 4);
            let (idx, scale) = m.index.unwrap_or((RSP, 0));
            self.byte(scale << 6 | (idx & 7) << 3 | base);
        } else {
            self.byte(md << 6 | (reg & 7) << 3 | base);
        }
        match md {
            0 => {}
            1 => self.byte(m.disp as i8 as u8),
            _ => self.imm32(m.disp),
        }
    }

    /// `opcode reg, r/m` (or `r/m, reg`) with a register r/m.
    #[inline]
    fn op_rr(&mut self, w: W, opcode: &[u8], reg: u8, rm: u8) {
        let byte_regs = w == W::B8 && (reg & 0xc == 4 || rm & 0xc == 4);
        self.prefixes(w, reg, 0, rm, byte_regs);
        self.opcode(opcode);
        self.modrm_reg(reg, rm);
    }

    /// `opcode reg, [mem]` (or `[mem], reg`).
    #[inline]
    fn op_rm(&mut self, w: W, opcode: &[u8], reg: u8, m: Mem) {
        let byte_regs = w == W::B8 && reg & 0xc == 4;
        let index = m.index.map(|(i, _)| i).unwrap_or(0);
        self.prefixes(w, reg, index, m.base, byte_regs);
        self.opcode(opcode);
        self.modrm_mem(reg, m);
    }
}

/// A code buffer a compile on this thread finished with (see `Code`), for the next one: a load
/// then allocates and zeroes no buffer (zeroing a fresh one, about 18 KB for a 316-instruction
/// program in mode checked, was a twentieth of its JIT part under callgrind).
struct Spare {
    buf: Vec<u8>,
    labels: Vec<u32>,
    fixups: Vec<(u32, Label)>,
}

thread_local! {
    static SPARE: std::cell::RefCell<Spare> = const {
        std::cell::RefCell::new(Spare {
            buf: Vec::new(),
            labels: Vec::new(),
            fixups: Vec::new(),
        })
    };
}

/// The largest buffer kept for the next compile: what a program of a few thousand instructions
/// needs (a larger one is freed, not held by the thread for as long as it lives).
const SPARE_BYTES: usize = 1 << 20;

/// Finished machine code, in the buffer it was assembled in (`bytes`); dropped, the buffer goes
/// back to its thread for the next compile.
pub struct Code {
    buf: Vec<u8>,
    len: usize,
    labels: Vec<u32>,
    fixups: Vec<(u32, Label)>,
}

impl Code {
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl std::ops::Deref for Code {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.bytes()
    }
}

impl Drop for Code {
    fn drop(&mut self) {
        if self.buf.len() > SPARE_BYTES {
            return;
        }
        let (buf, labels, fixups) = (
            std::mem::take(&mut self.buf),
            std::mem::take(&mut self.labels),
            std::mem::take(&mut self.fixups),
        );
        // A thread being torn down keeps nothing.
        let _ = SPARE.try_with(|s| {
            if let Ok(mut s) = s.try_borrow_mut() {
                if buf.len() >= s.buf.len() {
                    s.buf = buf;
                }
                if labels.capacity() >= s.labels.capacity() {
                    s.labels = labels;
                }
                if fixups.capacity() >= s.fixups.capacity() {
                    s.fixups = fixups;
                }
            }
        });
    }
}

impl Default for Asm {
    /// An empty assembler (with the `ROOM` bytes `put` counts on).
    fn default() -> Self {
        Asm {
            buf: vec![0; ROOM],
            end: 0,
            limit: 0,
            labels: Vec::new(),
            fixups: Vec::new(),
            offsets: Vec::new(),
        }
    }
}

impl Asm {
    /// An assembler with room for `bytes` of code and `labels` labels, in the buffers the last
    /// compile on this thread left (`Code`), grown if they are short.
    pub fn with_capacity(bytes: usize, labels: usize) -> Self {
        let spare = SPARE
            .try_with(|s| {
                s.try_borrow_mut().ok().map(|mut s| {
                    (
                        std::mem::take(&mut s.buf),
                        std::mem::take(&mut s.labels),
                        std::mem::take(&mut s.fixups),
                    )
                })
            })
            .ok()
            .flatten();
        let (mut buf, mut labels_v, mut fixups) = spare.unwrap_or_default();
        if buf.len() < bytes + ROOM {
            buf = vec![0; bytes + ROOM];
        }
        labels_v.clear();
        labels_v.reserve(labels);
        fixups.clear();
        // Most labels are jumped to once or twice.
        fixups.reserve(2 * labels);
        Asm {
            limit: buf.len() - ROOM,
            buf,
            end: 0,
            labels: labels_v,
            fixups,
            offsets: Vec::new(),
        }
    }

    pub fn pos(&self) -> usize {
        self.end
    }

    pub fn new_label(&mut self) -> Label {
        self.labels.push(UNBOUND);
        Label(self.labels.len() as u32 - 1)
    }

    /// `n` new labels, numbered on from the one returned.
    pub fn new_labels(&mut self, n: usize) -> Label {
        let first = self.labels.len();
        self.labels.resize(first + n, UNBOUND);
        Label(first as u32)
    }

    pub fn bind(&mut self, l: Label) {
        debug_assert!(self.labels[l.0 as usize] == UNBOUND, "label bound twice");
        self.labels[l.0 as usize] = self.end as u32;
    }

    /// Where label `l` was bound, if it was.
    pub fn label_pos(&self, l: Label) -> Option<usize> {
        let at = self.labels[l.0 as usize];
        (at != UNBOUND).then_some(at as usize)
    }

    /// Patches every rel32 field; fails if a label was never bound (a compiler bug).
    pub fn finish(self) -> Result<Vec<u8>, String> {
        self.finish_code().map(|c| c.bytes().to_vec())
    }

    /// `finish`, the code left in the buffer it was assembled in (which goes back to the thread
    /// when the `Code` is dropped).
    pub fn finish_code(self) -> Result<Code, String> {
        let mut code = Code {
            buf: self.buf,
            len: self.end,
            labels: self.labels,
            fixups: self.fixups,
        };
        // Every field and every bound label is at or before the end: with the end in i32's
        // range (tested once here, not per jump), each rel32 is the difference of two positions
        // in it and fits.
        if i32::try_from(code.len).is_err() {
            return Err("jump out of rel32 range".into());
        }
        let buf = &mut code.buf[..code.len];
        for &(at, l) in &code.fixups {
            let target = code.labels[l.0 as usize];
            if target == UNBOUND {
                return Err("jump to an unbound label".into());
            }
            let rel = target.wrapping_sub(at + 4) as i32;
            let at = at as usize;
            buf[at..at + 4].copy_from_slice(&rel.to_le_bytes());
        }
        for &(at, l, base) in &self.offsets {
            let pos = |l: Label| match code.labels[l.0 as usize] {
                UNBOUND => Err("offset of an unbound label"),
                p => Ok(p),
            };
            let rel = pos(l)? as i64 - pos(base)? as i64;
            let rel = i32::try_from(rel).map_err(|_| "offset out of rel32 range")?;
            let at = at as usize;
            code.buf[at..at + 4].copy_from_slice(&rel.to_le_bytes());
        }
        Ok(code)
    }

    /// Appends code encoded elsewhere (naming no label).
    pub fn raw(&mut self, code: &[u8]) {
        while self.end + code.len() > self.limit {
            self.grow();
        }
        self.buf[self.end..self.end + code.len()].copy_from_slice(code);
        self.end += code.len();
    }

    /// Writes one instruction (`f` writes its bytes, at most `MAX_LEN`) into the room past the
    /// end, then grows the buffer if less than `ROOM` is left for the next one: tested after the
    /// write, where nothing else is live, the rare call to `grow` costs the common path no saved
    /// registers (tested before, it made each instruction's encoding save and restore six).
    #[inline]
    fn put(&mut self, f: impl FnOnce(&mut Enc<'_>)) {
        debug_assert!(
            self.end <= self.limit && self.limit == self.buf.len() - ROOM,
            "less than ROOM past the end"
        );
        // SAFETY: `ROOM` bytes past the end are always in the buffer (the end is at or before
        // `limit`, the buffer's length less `ROOM`: `with_capacity` and `default` start so,
        // `raw` and this function grow the buffer, and `grow` sets `limit`, whenever it passes),
        // and the `&mut self` borrow makes the reference the only one into them. A bounds check
        // here instead (a slice of the buffer) was a few instructions on every instruction
        // written.
        let room = unsafe { &mut *self.buf.as_mut_ptr().add(self.end).cast::<[u8; ROOM]>() };
        let mut e = Enc { room, n: 0 };
        f(&mut e);
        self.end += e.n;
        if self.end > self.limit {
            self.grow();
        }
    }

    #[cold]
    fn grow(&mut self) {
        let len = (2 * self.buf.len()).max(self.end + ROOM).max(256);
        self.buf.resize(len, 0);
        self.limit = len - ROOM;
    }

    /// An instruction that ends with a rel32 field referring to `l`.
    fn put_rel32(&mut self, l: Label, f: impl FnOnce(&mut Enc<'_>)) {
        self.put(|e| {
            f(e);
            e.imm32(0);
        });
        self.fixups.push((self.end as u32 - 4, l));
    }

    fn op_rr(&mut self, w: W, opcode: &[u8], reg: u8, rm: u8) {
        self.put(|e| e.op_rr(w, opcode, reg, rm));
    }

    fn op_rm(&mut self, w: W, opcode: &[u8], reg: u8, m: Mem) {
        self.put(|e| e.op_rm(w, opcode, reg, m));
    }

    // ---- data movement ----

    pub fn mov_rr(&mut self, w: W, dst: u8, src: u8) {
        self.op_rr(w, &[0x89], src, dst);
    }

    /// `mov r32, imm32`: zero-extends into the 64-bit register.
    pub fn mov_r32_imm(&mut self, dst: u8, imm: u32) {
        self.put(|e| {
            e.rex(false, 0, 0, dst, false);
            e.byte(0xb8 + (dst & 7));
            e.imm32(imm as i32);
        });
    }

    /// `mov r64, simm32`: sign-extends the immediate.
    pub fn mov_r64_simm(&mut self, dst: u8, imm: i32) {
        self.put(|e| {
            e.op_rr(W::B64, &[0xc7], 0, dst);
            e.imm32(imm);
        });
    }

    /// The shortest exact load of a 64-bit constant.
    /// `movabs dst, v`: always the 10-byte form, for host addresses (maps, values, counters,
    /// functions), so that the code's size and layout do not depend on where the allocator put
    /// them (a listing of the same program from two processes has the same bytes but those
    /// immediates; `mov_imm64` picks a shorter form for an address below 4 GiB).
    pub fn mov_addr64(&mut self, dst: u8, v: u64) {
        self.put(|e| {
            e.rex(true, 0, 0, dst, false);
            e.byte(0xb8 + (dst & 7));
            e.imm32(v as u32 as i32);
            e.imm32((v >> 32) as u32 as i32);
        });
    }

    pub fn mov_imm64(&mut self, dst: u8, v: u64) {
        if v <= u32::MAX as u64 {
            self.mov_r32_imm(dst, v as u32);
        } else if v as i64 >= i32::MIN as i64 && v as i64 <= i32::MAX as i64 {
            self.mov_r64_simm(dst, v as i64 as i32);
        } else {
            self.mov_addr64(dst, v);
        }
    }

    /// `mov r, [m]` (8/16-bit forms are not used for loads: see `load_zx`).
    pub fn load(&mut self, w: W, dst: u8, m: Mem) {
        self.op_rm(w, &[0x8b], dst, m);
    }

    /// Zero-extending load of `size` bytes into a 64-bit register.
    #[inline(always)]
    pub fn load_zx(&mut self, size: u32, dst: u8, m: Mem) {
        match size {
            1 => self.op_rm(W::B32, &[0x0f, 0xb6], dst, m),
            2 => self.op_rm(W::B32, &[0x0f, 0xb7], dst, m),
            4 => self.op_rm(W::B32, &[0x8b], dst, m),
            _ => self.op_rm(W::B64, &[0x8b], dst, m),
        }
    }

    /// Sign-extending load of `size` (1, 2, 4) bytes into a 64-bit register.
    pub fn load_sx(&mut self, size: u32, dst: u8, m: Mem) {
        match size {
            1 => self.op_rm(W::B64, &[0x0f, 0xbe], dst, m),
            2 => self.op_rm(W::B64, &[0x0f, 0xbf], dst, m),
            _ => self.op_rm(W::B64, &[0x63], dst, m),
        }
    }

    #[inline]
    pub fn store(&mut self, w: W, m: Mem, src: u8) {
        let op = if w == W::B8 { 0x88 } else { 0x89 };
        self.op_rm(w, &[op], src, m);
    }

    /// Store of an immediate; the 64-bit form sign-extends `imm`.
    pub fn store_imm(&mut self, w: W, m: Mem, imm: i32) {
        self.put(|e| match w {
            W::B8 => {
                e.op_rm(w, &[0xc6], 0, m);
                e.byte(imm as u8);
            }
            W::B16 => {
                e.op_rm(w, &[0xc7], 0, m);
                e.bytes(&(imm as u16).to_le_bytes());
            }
            _ => {
                e.op_rm(w, &[0xc7], 0, m);
                e.imm32(imm);
            }
        });
    }

    #[inline]
    pub fn lea(&mut self, dst: u8, m: Mem) {
        self.op_rm(W::B64, &[0x8d], dst, m);
    }

    /// `cmov<c> dst, src`.
    pub fn cmov(&mut self, c: Cond, w: W, dst: u8, src: u8) {
        self.op_rr(w, &[0x0f, 0x40 | c as u8], dst, src);
    }

    /// `lea r32, [m]`: the low 32 bits of the address, zero-extended.
    pub fn lea32(&mut self, dst: u8, m: Mem) {
        self.op_rm(W::B32, &[0x8d], dst, m);
    }

    /// `lea dst, [rip + label]`.
    pub fn lea_label(&mut self, dst: u8, l: Label) {
        self.put_rel32(l, |e| {
            e.rex(true, dst, 0, 0, false);
            e.byte(0x8d);
            e.byte((dst & 7) << 3 | 5);
        });
    }

    /// `movsx r, r/m8|16` and `movsxd r64, r/m32` from a register.
    pub fn movsx_rr(&mut self, w: W, dst: u8, src: u8, from: u32) {
        match from {
            1 => self.put(|e| {
                // The REX prefix makes source registers 4-7 the low bytes sil/dil, not ah..bh.
                e.prefixes(w, dst, 0, src, true);
                e.bytes(&[0x0f, 0xbe]);
                e.modrm_reg(dst, src);
            }),
            2 => self.op_rr(w, &[0x0f, 0xbf], dst, src),
            _ => self.op_rr(W::B64, &[0x63], dst, src),
        }
    }

    /// `movzx r32, r16`.
    pub fn movzx16_rr(&mut self, dst: u8, src: u8) {
        self.op_rr(W::B32, &[0x0f, 0xb7], dst, src);
    }

    pub fn push(&mut self, r: u8) {
        self.put(|e| {
            e.rex(false, 0, 0, r, false);
            e.byte(0x50 + (r & 7));
        });
    }

    pub fn pop(&mut self, r: u8) {
        self.put(|e| {
            e.rex(false, 0, 0, r, false);
            e.byte(0x58 + (r & 7));
        });
    }

    // ---- arithmetic ----

    pub fn alu_rr(&mut self, op: Alu, w: W, dst: u8, src: u8) {
        self.op_rr(w, &[op.rm_reg_opcode()], src, dst);
    }

    /// `op r, simm32` (the 64-bit form sign-extends the immediate).
    pub fn alu_ri(&mut self, op: Alu, w: W, dst: u8, imm: i32) {
        self.put(|e| {
            if i8::try_from(imm).is_ok() {
                e.op_rr(w, &[0x83], op.ext(), dst);
                e.byte(imm as u8);
            } else {
                e.op_rr(w, &[0x81], op.ext(), dst);
                e.imm32(imm);
            }
        });
    }

    /// `op r, [m]` (reg-destination form).
    pub fn alu_rm(&mut self, op: Alu, w: W, dst: u8, m: Mem) {
        self.op_rm(w, &[op.rm_reg_opcode() + 2], dst, m);
    }

    /// `op [m], simm8` (no lock prefix): a counter's increment.
    pub fn alu_mi8(&mut self, op: Alu, w: W, m: Mem, imm: i8) {
        self.put(|e| {
            e.op_rm(w, &[0x83], op.ext(), m);
            e.byte(imm as u8);
        });
    }

    /// `lock opcode reg, [m]`.
    fn lock_op_rm(&mut self, w: W, opcode: &[u8], reg: u8, m: Mem) {
        self.put(|e| {
            e.byte(0xf0);
            e.op_rm(w, opcode, reg, m);
        });
    }

    /// `lock op [m], r` for add/or/and/xor.
    pub fn lock_alu_mr(&mut self, op: Alu, w: W, m: Mem, src: u8) {
        self.lock_op_rm(w, &[op.rm_reg_opcode()], src, m);
    }

    pub fn test_rr(&mut self, w: W, a: u8, b: u8) {
        self.op_rr(w, &[0x85], b, a);
    }

    pub fn test_ri(&mut self, w: W, a: u8, imm: i32) {
        self.put(|e| {
            e.op_rr(w, &[0xf7], 0, a);
            e.imm32(imm);
        });
    }

    /// `test al, imm8`.
    pub fn test_al(&mut self, imm: u8) {
        self.put(|e| e.bytes(&[0xa8, imm]));
    }

    pub fn imul_rr(&mut self, w: W, dst: u8, src: u8) {
        self.op_rr(w, &[0x0f, 0xaf], dst, src);
    }

    /// `imul r, [m]`.
    pub fn imul_rm(&mut self, w: W, dst: u8, m: Mem) {
        self.op_rm(w, &[0x0f, 0xaf], dst, m);
    }

    pub fn imul_rri(&mut self, w: W, dst: u8, src: u8, imm: i32) {
        self.put(|e| {
            e.op_rr(w, &[0x69], dst, src);
            e.imm32(imm);
        });
    }

    pub fn shift_ri(&mut self, op: Shift, w: W, dst: u8, n: u8) {
        self.put(|e| {
            e.op_rr(w, &[0xc1], op as u8, dst);
            e.byte(n);
        });
    }

    pub fn shift_cl(&mut self, op: Shift, w: W, dst: u8) {
        self.op_rr(w, &[0xd3], op as u8, dst);
    }

    pub fn neg(&mut self, w: W, r: u8) {
        self.op_rr(w, &[0xf7], 3, r);
    }

    /// Unsigned `div r` of rdx:rax (or edx:eax).
    pub fn div(&mut self, w: W, r: u8) {
        self.op_rr(w, &[0xf7], 6, r);
    }

    /// Signed `idiv r`.
    pub fn idiv(&mut self, w: W, r: u8) {
        self.op_rr(w, &[0xf7], 7, r);
    }

    /// `cdq` / `cqo`: sign-extend eax/rax into edx/rdx.
    pub fn sign_extend_ax(&mut self, w: W) {
        self.put(|e| {
            if w == W::B64 {
                e.byte(0x48);
            }
            e.byte(0x99);
        });
    }

    /// `rorx dst, src, n` (BMI2; the caller checks the CPU has it): dst = src rotated right by
    /// n, flags untouched, with no copy into dst first. VEX.LZ.F2.0F3A.W(64-bit) F0 /r ib.
    pub fn rorx(&mut self, w: W, dst: u8, src: u8, n: u8) {
        self.put(|e| {
            // VEX's R and B are inverted; X (no index) is 1, the map 0F3A is 3.
            e.byte(0xc4);
            e.byte((!dst >> 3 & 1) << 7 | 1 << 6 | (!src >> 3 & 1) << 5 | 0x03);
            // W, vvvv unused (1111), L = 0, pp = F2 (3).
            e.byte(((w == W::B64) as u8) << 7 | 0x7b);
            e.byte(0xf0);
            e.modrm_reg(dst, src);
            e.byte(n);
        });
    }

    pub fn bswap(&mut self, w: W, r: u8) {
        self.put(|e| {
            e.rex(w == W::B64, 0, 0, r, false);
            e.bytes(&[0x0f, 0xc8 + (r & 7)]);
        });
    }

    // ---- atomics ----

    pub fn lock_xadd(&mut self, w: W, m: Mem, r: u8) {
        self.lock_op_rm(w, &[0x0f, 0xc1], r, m);
    }

    /// `xchg [m], r` (implicitly locked).
    pub fn xchg(&mut self, w: W, m: Mem, r: u8) {
        self.op_rm(w, &[0x87], r, m);
    }

    /// `lock cmpxchg [m], r` against rax/eax.
    pub fn lock_cmpxchg(&mut self, w: W, m: Mem, r: u8) {
        self.lock_op_rm(w, &[0x0f, 0xb1], r, m);
    }

    // ---- control flow ----

    pub fn jmp(&mut self, l: Label) {
        self.put_rel32(l, |e| e.byte(0xe9));
    }

    pub fn jcc(&mut self, c: Cond, l: Label) {
        self.put_rel32(l, |e| e.bytes(&[0x0f, 0x80 | c as u8]));
    }

    /// `jcc rel8` to a place a few bytes on, bound later with `bind_short`: for a jump over one
    /// short instruction, 2 bytes where `jcc` takes 6 (and no fixup). Returns where its offset is.
    pub fn jcc_short(&mut self, c: Cond) -> usize {
        self.put(|e| e.bytes(&[0x70 | c as u8, 0]));
        self.end - 1
    }

    /// Points the `jcc_short` whose offset is at `at` here.
    pub fn bind_short(&mut self, at: usize) {
        let rel = i8::try_from(self.end - (at + 1)).expect("a short jump within 127 bytes");
        self.buf[at] = rel as u8;
    }

    pub fn call(&mut self, l: Label) {
        self.put_rel32(l, |e| e.byte(0xe8));
    }

    /// `call r`.
    pub fn call_r(&mut self, r: u8) {
        self.op_rr(W::B32, &[0xff], 2, r);
    }

    /// `jmp r`.
    pub fn jmp_r(&mut self, r: u8) {
        self.op_rr(W::B32, &[0xff], 4, r);
    }

    /// `jmp [m]`.
    pub fn jmp_m(&mut self, m: Mem) {
        self.op_rm(W::B32, &[0xff], 4, m);
    }

    pub fn ret(&mut self) {
        self.put(|e| e.byte(0xc3));
    }

    /// Multi-byte `nop`s up to the next multiple of `align` (a power of two) bytes.
    pub fn align(&mut self, align: usize) {
        // The recommended long nops, 1 to 9 bytes.
        const NOPS: [&[u8]; 9] = [
            &[0x90],
            &[0x66, 0x90],
            &[0x0f, 0x1f, 0x00],
            &[0x0f, 0x1f, 0x40, 0x00],
            &[0x0f, 0x1f, 0x44, 0x00, 0x00],
            &[0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00],
            &[0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00],
            &[0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00],
            &[0x66, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00],
        ];
        let mut pad = self.pos().wrapping_neg() & (align - 1);
        while pad > 0 {
            let n = pad.min(9);
            self.put(|e| e.bytes(NOPS[n - 1]));
            pad -= n;
        }
    }

    /// Four bytes of data: the offset of label `l` from label `base` (a jump table's entry).
    pub fn offset32(&mut self, l: Label, base: Label) {
        self.put(|e| e.imm32(0));
        self.offsets.push((self.end as u32 - 4, l, base));
    }

    /// `int3`: padding that traps if ever executed.
    pub fn int3(&mut self) {
        self.put(|e| e.byte(0xcc));
    }
}

#[cfg(test)]
mod tests {
    //! Expected bytes are from the Intel SDM encodings, cross-checked with GNU as.
    use super::*;

    fn enc(f: impl FnOnce(&mut Asm)) -> Vec<u8> {
        let mut a = Asm::default();
        f(&mut a);
        a.finish().unwrap()
    }

    #[test]
    fn register_moves_and_arithmetic() {
        assert_eq!(enc(|a| a.mov_rr(W::B64, RDI, RSI)), [0x48, 0x89, 0xf7]);
        assert_eq!(enc(|a| a.mov_rr(W::B32, R8, R15)), [0x45, 0x89, 0xf8]);
        assert_eq!(
            enc(|a| a.alu_rr(Alu::Add, W::B64, RBX, R13)),
            [0x4c, 0x01, 0xeb]
        );
        assert_eq!(
            enc(|a| a.alu_ri(Alu::Sub, W::B64, R12, 3)),
            [0x49, 0x83, 0xec, 0x03]
        );
        assert_eq!(
            enc(|a| a.alu_ri(Alu::Cmp, W::B32, RSI, 0x1234)),
            [0x81, 0xfe, 0x34, 0x12, 0, 0]
        );
        assert_eq!(
            enc(|a| a.imul_rr(W::B64, R9, R10)),
            [0x4d, 0x0f, 0xaf, 0xca]
        );
        assert_eq!(
            enc(|a| a.shift_cl(Shift::Sar, W::B64, R11)),
            [0x49, 0xd3, 0xfb]
        );
        assert_eq!(enc(|a| a.neg(W::B32, RDI)), [0xf7, 0xdf]);
        assert_eq!(enc(|a| a.bswap(W::B64, R14)), [0x49, 0x0f, 0xce]);
        assert_eq!(enc(|a| a.sign_extend_ax(W::B64)), [0x48, 0x99]);
    }

    #[test]
    fn immediates() {
        assert_eq!(enc(|a| a.mov_imm64(RSI, 5)), [0xbe, 5, 0, 0, 0]);
        assert_eq!(
            enc(|a| a.mov_imm64(R8, u64::MAX)),
            [0x49, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(
            enc(|a| a.mov_imm64(RAX, 0x1122_3344_5566_7788)),
            [0x48, 0xb8, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]
        );
    }

    #[test]
    fn memory_operands() {
        // [rsp + 8] needs a SIB byte; [rbp] and [r13] need a displacement.
        assert_eq!(
            enc(|a| a.load(W::B64, RAX, mem(RSP, 8))),
            [0x48, 0x8b, 0x44, 0x24, 0x08]
        );
        assert_eq!(
            enc(|a| a.load(W::B64, RAX, mem(RBP, 0))),
            [0x48, 0x8b, 0x45, 0x00]
        );
        assert_eq!(
            enc(|a| a.load(W::B64, RAX, mem(R13, 0))),
            [0x49, 0x8b, 0x45, 0x00]
        );
        assert_eq!(
            enc(|a| a.load(W::B64, RAX, mem(R12, 0))),
            [0x49, 0x8b, 0x04, 0x24]
        );
        assert_eq!(
            enc(|a| a.lea(RAX, mem(RBX, -0x200))),
            [0x48, 0x8d, 0x83, 0x00, 0xfe, 0xff, 0xff]
        );
        assert_eq!(
            enc(|a| a.load(W::B64, RBX, mem_idx(RSP, RAX, 0, 0x40))),
            [0x48, 0x8b, 0x5c, 0x04, 0x40]
        );
        // Byte store of sil needs an empty REX prefix.
        assert_eq!(
            enc(|a| a.store(W::B8, mem(RAX, 0), RSI)),
            [0x40, 0x88, 0x30]
        );
        assert_eq!(
            enc(|a| a.store(W::B16, mem(RAX, 0), R9)),
            [0x66, 0x44, 0x89, 0x08]
        );
        assert_eq!(enc(|a| a.load_zx(1, RDI, mem(RAX, 0))), [0x0f, 0xb6, 0x38]);
        assert_eq!(enc(|a| a.load_sx(4, R8, mem(RAX, 0))), [0x4c, 0x63, 0x00]);
        assert_eq!(
            enc(|a| a.store_imm(W::B64, mem(RAX, 0), -1)),
            [0x48, 0xc7, 0x00, 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(
            enc(|a| a.lock_cmpxchg(W::B32, mem(RDX, 0), RBX)),
            [0xf0, 0x0f, 0xb1, 0x1a]
        );
    }

    #[test]
    fn labels_patch_relative_offsets() {
        let code = enc(|a| {
            let l = a.new_label();
            a.jmp(l);
            a.int3();
            a.bind(l);
            a.jcc(Cond::E, l);
        });
        assert_eq!(
            code,
            [0xe9, 1, 0, 0, 0, 0xcc, 0x0f, 0x84, 0xfa, 0xff, 0xff, 0xff]
        );
    }

    #[test]
    fn short_jumps_over_what_follows() {
        // je +3 over `xor r8, r9` (4d 31 c8); jne +0.
        let code = enc(|a| {
            let at = a.jcc_short(Cond::E);
            a.alu_rr(Alu::Xor, W::B64, R8, R9);
            a.bind_short(at);
            let at = a.jcc_short(Cond::Ne);
            a.bind_short(at);
        });
        assert_eq!(code, [0x74, 3, 0x4d, 0x31, 0xc8, 0x75, 0]);
    }
}
