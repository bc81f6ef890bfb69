//! `dump('jited')`: the compiled code as Intel-syntax assembly (iced-x86's decoder and
//! formatter), with a marker line where the code of each eBPF instruction begins; and `listing`,
//! the same code instruction by instruction in AT&T syntax as GNU objdump writes it, for the CLI's
//! `prog dump jited` in bpftool's layout.

use std::collections::HashMap;
use std::fmt::Write;

use iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter};

/// `code` as loaded at `base`; `offsets[pc]` is where instruction `pc` starts (`u32::MAX`: none)
/// and `body_end` where the out-of-line snippets and shared stubs begin.
pub fn disassemble(code: &[u8], base: u64, offsets: &[u32], body_end: usize) -> String {
    let starts: HashMap<u32, usize> = offsets
        .iter()
        .enumerate()
        .filter(|(_, &o)| o != u32::MAX)
        .map(|(pc, &o)| (o, pc))
        .collect();
    let mut decoder = Decoder::with_ip(64, code, base, DecoderOptions::NONE);
    let mut formatter = IntelFormatter::new();
    let mut text = String::new();
    let mut out = String::from("; prologue\n");
    for insn in &mut decoder {
        let off = (insn.ip() - base) as usize;
        if let Some(pc) = starts.get(&(off as u32)) {
            let _ = writeln!(out, "; insn {pc}");
        }
        if off == body_end {
            out.push_str("; out-of-line snippets and shared stubs\n");
        }
        text.clear();
        formatter.format(&insn, &mut text);
        let hex: String = code[off..off + insn.len()]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let _ = writeln!(out, "{off:6x}:  {hex:<24} {text}");
    }
    out
}

/// One x86-64 instruction of the compiled code, for `bpftool prog dump jited`'s layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JitedInsn {
    /// Offset from the first byte of the code.
    pub offset: u32,
    /// The instruction's bytes.
    pub bytes: Vec<u8>,
    /// AT&T syntax as GNU objdump (libopcodes, what bpftool built with libbfd prints) writes it:
    /// the mnemonic padded to 7 columns, hexadecimal numbers, branch targets as offsets.
    pub text: String,
    /// The eBPF instruction whose code starts here, if one does.
    pub insn: Option<u32>,
}

/// `code` as a list of instructions, decoded at address 0 so that no host address appears in
/// branch targets (immediates the code holds, such as map handles, are shown as they are).
pub fn listing(code: &[u8], offsets: &[u32]) -> Vec<JitedInsn> {
    use iced_x86::GasFormatter;
    let starts: HashMap<u32, u32> = offsets
        .iter()
        .enumerate()
        .filter(|(_, &o)| o != u32::MAX)
        .map(|(pc, &o)| (o, pc as u32))
        .collect();
    let mut formatter = GasFormatter::new();
    let o = formatter.options_mut();
    o.set_first_operand_char_index(7);
    o.set_small_hex_numbers_in_decimal(false);
    o.set_always_show_scale(true);
    o.set_show_zero_displacements(true);
    o.set_branch_leading_zeros(false);
    o.set_leading_zeros(false);
    o.set_uppercase_hex(false);
    o.set_rip_relative_addresses(true);
    o.set_use_pseudo_ops(false);
    let mut out = Vec::new();
    for insn in Decoder::with_ip(64, code, 0, DecoderOptions::NONE) {
        let off = insn.ip() as usize;
        let mut text = String::new();
        formatter.format(&insn, &mut text);
        // objdump writes the scale only with an index register: `(%rsi,%rdx,1)` but `(%rdi)`;
        // indirect jumps and calls without a size suffix; the target of a %rip-relative operand
        // in a comment.
        let mut text = text.replace(",)", ")");
        for (q, plain) in [("jmpq   ", "jmp    "), ("callq  ", "call   ")] {
            if let Some(rest) = text.strip_prefix(q) {
                text = format!("{plain}{rest}");
            }
        }
        if insn.is_ip_rel_memory_operand() {
            let _ = write!(text, "        # {:#x}", insn.ip_rel_memory_address());
        }
        out.push(JitedInsn {
            offset: off as u32,
            bytes: code[off..off + insn.len()].to_vec(),
            text: text.trim_end().to_string(),
            insn: starts.get(&(off as u32)).copied(),
        });
    }
    out
}
