//! One decoded instruction slot and its 8-byte little-endian encoding (RFC 9669, section 3).

/// One 64-bit instruction slot. `lddw` occupies two slots; the second one carries the high half of
/// the immediate in its `imm` field and has every other field zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Insn {
    pub opcode: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

/// Size of one instruction slot in bytes.
pub const INSN_SIZE: usize = 8;

/// Where a jump or local call at slot `pc` goes, as the encoding says it: `delta` slots past the
/// next one (`delta` is `off`, or `imm` for `gotol` and calls). May lie outside the program:
/// validation and the analysis check it; everything after them may rely on it.
#[inline(always)]
pub const fn jump_target(pc: usize, delta: i64) -> i64 {
    pc as i64 + 1 + delta
}

impl Insn {
    pub const fn new(opcode: u8, dst: u8, src: u8, off: i16, imm: i32) -> Self {
        Insn {
            opcode,
            dst,
            src,
            off,
            imm,
        }
    }

    /// Decodes one slot. Register nibbles are kept as they are (0-15) so that validation can reject
    /// out-of-range registers with a precise message.
    pub fn decode(bytes: [u8; INSN_SIZE]) -> Self {
        Insn {
            opcode: bytes[0],
            dst: bytes[1] & 0x0f,
            src: bytes[1] >> 4,
            off: i16::from_le_bytes([bytes[2], bytes[3]]),
            imm: i32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
        }
    }

    pub fn encode(&self) -> [u8; INSN_SIZE] {
        let off = self.off.to_le_bytes();
        let imm = self.imm.to_le_bytes();
        [
            self.opcode,
            (self.dst & 0x0f) | (self.src << 4),
            off[0],
            off[1],
            imm[0],
            imm[1],
            imm[2],
            imm[3],
        ]
    }
}

/// Splits bytecode into instruction slots. The caller has already checked that the length is a
/// multiple of eight (see `validate`).
pub fn decode_all(bytes: &[u8]) -> Vec<Insn> {
    bytes
        .chunks_exact(INSN_SIZE)
        .map(|c| Insn::decode(c.try_into().expect("chunk of eight bytes")))
        .collect()
}

pub fn encode_all(insns: &[Insn]) -> Vec<u8> {
    insns.iter().flat_map(|i| i.encode()).collect()
}

/// The 64-bit immediate of an `lddw` whose second slot is `next`.
pub fn lddw_imm(first: &Insn, next: &Insn) -> u64 {
    (first.imm as u32 as u64) | ((next.imm as u32 as u64) << 32)
}
