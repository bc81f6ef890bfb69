//! Instructions as the kernel's verifier log writes them (`print_bpf_insn` in the kernel's
//! `disasm.c`): `(61) r2 = *(u32 *)(r1 +0)`, `(15) if r0 == 0x0 goto pc+2`,
//! `(85) call bpf_map_lookup_elem#1`. ALU immediates are decimal, jump immediates hex.
//!
//! One difference, because the kernel prints an address we do not have: an `lddw` of a map
//! prints `map[idx:N]` (the map's index in the program) where the kernel prints the map's
//! kernel address.

use crate::analysis::{Imm64, Instruction};
use crate::isa::opcodes::*;

const ALU_OPS: [&str; 14] = [
    "+=", "-=", "*=", "/=", "|=", "&=", "<<=", ">>=", "neg", "%=", "^=", "=", "s>>=", "endian",
];
const JMP_OPS: [&str; 14] = [
    "jmp", "==", ">", ">=", "&", "!=", "s>", "s>=", "call", "exit", "<", "<=", "s<", "s<=",
];

fn size_name(opcode: u8, signed: bool) -> &'static str {
    match (opcode & 0x18, signed) {
        (SIZE_W, false) => "u32",
        (SIZE_H, false) => "u16",
        (SIZE_B, false) => "u8",
        (SIZE_DW, false) => "u64",
        (SIZE_W, true) => "s32",
        (SIZE_H, true) => "s16",
        (SIZE_B, true) => "s8",
        _ => "s64",
    }
}

/// The text after `N: ` for instruction `insn` (`imm64` says what an `lddw` loads; `helper`
/// names a helper by number).
pub fn insn_text(insn: &Instruction, imm64: Imm64, helper: &dyn Fn(i32) -> String) -> String {
    let code = insn.opcode;
    let (dst, src, off, imm) = (insn.dst, insn.src, insn.off, insn.imm());
    let body = match class(code) {
        CLASS_ALU | CLASS_ALU64 => {
            let r = if class(code) == CLASS_ALU64 { 'r' } else { 'w' };
            let op = code & 0xf0;
            match op {
                ALU_NEG => format!("{r}{dst} = -{r}{dst}"),
                ALU_END if class(code) == CLASS_ALU64 => format!("r{dst} = bswap{imm} r{dst}"),
                ALU_END => {
                    let order = if code & SRC_X != 0 { "be" } else { "le" };
                    format!("r{dst} = {order}{imm} r{dst}")
                }
                ALU_MOV if code & SRC_X != 0 && off != 0 => {
                    format!("{r}{dst} = (s{off}){r}{src}")
                }
                _ => {
                    let mut name = ALU_OPS[(op >> 4) as usize].to_string();
                    if off == 1 && matches!(op, ALU_DIV | ALU_MOD) {
                        name.insert(0, 's');
                    }
                    if code & SRC_X != 0 {
                        format!("{r}{dst} {name} {r}{src}")
                    } else {
                        format!("{r}{dst} {name} {imm}")
                    }
                }
            }
        }
        CLASS_STX if code & 0xe0 == MODE_ATOMIC => {
            let ty = size_name(code, false);
            let width = if code & 0x18 == SIZE_DW { "64" } else { "" };
            match imm {
                ATOMIC_LOAD_ACQ => format!("r{dst} = load_acquire(({ty} *)(r{src} {off:+}))"),
                ATOMIC_STORE_REL => format!("store_release(({ty} *)(r{dst} {off:+}), r{src})"),
                ATOMIC_ADD | ATOMIC_OR | ATOMIC_AND | ATOMIC_XOR => format!(
                    "lock *({ty} *)(r{dst} {off:+}) {} r{src}",
                    ALU_OPS[(imm >> 4) as usize]
                ),
                ATOMIC_XCHG => {
                    format!("r{src} = atomic{width}_xchg(({ty} *)(r{dst} {off:+}), r{src})")
                }
                ATOMIC_CMPXCHG => {
                    format!("r0 = atomic{width}_cmpxchg(({ty} *)(r{dst} {off:+}), r0, r{src})")
                }
                _ => {
                    let name = match imm & !ATOMIC_FETCH {
                        ATOMIC_ADD => "add",
                        ATOMIC_AND => "and",
                        ATOMIC_OR => "or",
                        _ => "xor",
                    };
                    format!("r{src} = atomic{width}_fetch_{name}(({ty} *)(r{dst} {off:+}), r{src})")
                }
            }
        }
        CLASS_STX => format!("*({} *)(r{dst} {off:+}) = r{src}", size_name(code, false)),
        CLASS_ST => format!("*({} *)(r{dst} {off:+}) = {imm}", size_name(code, false)),
        CLASS_LDX => format!(
            "r{dst} = *({} *)(r{src} {off:+})",
            size_name(code, code & 0xe0 == MODE_MEMSX)
        ),
        CLASS_LD if code & 0xe0 == MODE_ABS => {
            format!("r0 = *({} *)skb[{imm}]", size_name(code, false))
        }
        CLASS_LD if code & 0xe0 == MODE_IND => {
            format!("r0 = *({} *)skb[r{src} + {imm}]", size_name(code, false))
        }
        CLASS_LD => match imm64 {
            Imm64::Map { index } => format!("r{dst} = map[idx:{index}]"),
            Imm64::MapValue { index, offset } => format!("r{dst} = map[idx:{index}]+{offset}"),
            _ => format!("r{dst} = {:#x}", insn.constant as u64),
        },
        _ => {
            let op = code & 0xf0;
            let r = if class(code) == CLASS_JMP32 { 'w' } else { 'r' };
            match op {
                JMP_CALL if src == CALL_LOCAL => format!("call pc{imm:+}"),
                JMP_CALL => format!("call {}#{imm}", helper(imm)),
                JMP_EXIT => "exit".to_string(),
                JMP_JA if class(code) == CLASS_JMP32 => format!("gotol pc{imm:+}"),
                JMP_JA => format!("goto pc{off:+}"),
                _ => {
                    let name = JMP_OPS[(op >> 4) as usize];
                    if code & SRC_X != 0 {
                        format!("if {r}{dst} {name} {r}{src} goto pc{off:+}")
                    } else {
                        format!("if {r}{dst} {name} {:#x} goto pc{off:+}", imm as u32)
                    }
                }
            }
        }
    };
    format!("({code:02x}) {body}")
}

/// The spaces the kernel puts between an instruction printed at the start of a line (`len`
/// characters) and the `;` before the state that follows it (`vlog_alignment`): to the next
/// multiple of 8 at least 4 columns on, and at least to column 40.
pub fn state_column_padding(len: usize) -> usize {
    let pos = len + 1;
    let column = (pos + 4).max(40).div_ceil(8) * 8;
    column - pos - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(opcode: u8, dst: u8, src: u8, off: i16, imm: i32) -> String {
        let insn = Instruction {
            opcode,
            dst,
            src,
            off,
            constant: imm as i64,
        };
        insn_text(&insn, Imm64::Constant, &|id| {
            if id == 1 {
                "bpf_map_lookup_elem".into()
            } else {
                "unknown".into()
            }
        })
    }

    // Each expected string is a line of the kernel's log (Linux 6.18.44) for the same bytes.

    #[test]
    fn instructions_as_the_kernel_prints_them() {
        assert_eq!(text(0x61, 2, 1, 0, 0), "(61) r2 = *(u32 *)(r1 +0)");
        assert_eq!(text(0xbf, 0, 2, 0, 0), "(bf) r0 = r2");
        assert_eq!(text(0x57, 0, 0, 0, 255), "(57) r0 &= 255");
        assert_eq!(text(0x07, 0, 0, 0, -5), "(07) r0 += -5");
        assert_eq!(text(0x87, 0, 0, 0, 0), "(87) r0 = -r0");
        assert_eq!(text(0xdc, 0, 0, 0, 16), "(dc) r0 = be16 r0");
        assert_eq!(text(0xd4, 4, 0, 0, 32), "(d4) r4 = le32 r4");
        assert_eq!(text(0xd7, 0, 0, 0, 32), "(d7) r0 = bswap32 r0");
        assert_eq!(text(0x3c, 0, 3, 0, 0), "(3c) w0 /= w3");
        assert_eq!(text(0x7b, 10, 0, -8, 0), "(7b) *(u64 *)(r10 -8) = r0");
        assert_eq!(text(0x62, 10, 0, -16, 3), "(62) *(u32 *)(r10 -16) = 3");
        assert_eq!(text(0x25, 0, 0, 1, 100), "(25) if r0 > 0x64 goto pc+1");
        assert_eq!(
            text(0x45, 5, 0, 1, -100),
            "(45) if r5 & 0xffffff9c goto pc+1"
        );
        assert_eq!(text(0x16, 3, 0, 0, 5), "(16) if w3 == 0x5 goto pc+0");
        assert_eq!(text(0xbd, 5, 2, 1, 0), "(bd) if r5 <= r2 goto pc+1");
        assert_eq!(text(0xbf, 4, 3, 8, 0), "(bf) r4 = (s8)r3");
        assert_eq!(text(0xbc, 4, 0, 16, 0), "(bc) w4 = (s16)w0");
        assert_eq!(text(0x91, 3, 0, 0, 0), "(91) r3 = *(s8 *)(r0 +0)");
        assert_eq!(text(0x85, 0, 0, 0, 1), "(85) call bpf_map_lookup_elem#1");
        assert_eq!(text(0x05, 0, 0, 0, 0), "(05) goto pc+0");
        assert_eq!(text(0x06, 0, 0, 0, 0), "(06) gotol pc+0");
        assert_eq!(text(0x95, 0, 0, 0, 0), "(95) exit");
        assert_eq!(
            text(0xdb, 10, 4, -8, 1),
            "(db) r4 = atomic64_fetch_add((u64 *)(r10 -8), r4)"
        );
        assert_eq!(
            text(0xdb, 10, 4, -8, 0xe1),
            "(db) r4 = atomic64_xchg((u64 *)(r10 -8), r4)"
        );
        let lddw = Instruction {
            opcode: 0x18,
            dst: 4,
            src: 0,
            off: 0,
            constant: 0x1_2345_ffff_ffff,
        };
        assert_eq!(
            insn_text(&lddw, Imm64::Constant, &|_| String::new()),
            "(18) r4 = 0x12345ffffffff"
        );
    }

    #[test]
    fn the_state_starts_where_the_kernel_starts_it() {
        // `0: (61) r2 = *(u32 *)(r1 +0)` (28 characters) is followed by 10 spaces, a 53-character
        // line by 9, a 48-character line by 6.
        assert_eq!(state_column_padding(28), 10);
        assert_eq!(state_column_padding(53), 9);
        assert_eq!(state_column_padding(48), 6);
    }
}
