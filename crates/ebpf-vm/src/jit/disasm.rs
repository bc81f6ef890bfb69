//! `dump('jited')`: the compiled code as Intel-syntax assembly (iced-x86's decoder and
//! formatter), with a marker line where the code of each eBPF instruction begins; and `listing`,
//! the same code instruction by instruction in AT&T syntax as GNU objdump writes it, for the CLI's
//! `prog dump jited` in bpftool's layout.

use std::collections::HashMap;
use std::fmt::Write;

use iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter};

/// `code` as loaded at `base`; `offsets[pc]` is where instruction `pc` starts (`u32::MAX`: none),
/// `body_end` where the out-of-line snippets and shared stubs begin and `functions` the first
/// slot of each eBPF function (a `; function at insn N` line where each but the main one begins).
pub fn disassemble(
    code: &[u8],
    base: u64,
    offsets: &[u32],
    body_end: usize,
    functions: &[usize],
) -> String {
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
        if let Some(&pc) = starts.get(&(off as u32)) {
            if pc > 0 && functions.contains(&pc) {
                let _ = writeln!(out, "; function at insn {pc}");
            }
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
    /// Offset from the first byte of its function's code (of its section, see [`JitedFunction`]).
    pub offset: u32,
    /// The instruction's bytes.
    pub bytes: Vec<u8>,
    /// AT&T syntax as GNU objdump (libopcodes, what bpftool built with libbfd prints) writes it:
    /// the mnemonic padded to 7 columns, hexadecimal numbers, branch targets as offsets from the
    /// start of the function.
    pub text: String,
    /// The eBPF instruction whose code starts here, if one does.
    pub insn: Option<u32>,
}

/// The code of one eBPF function (the kernel's subprogram), or the out-of-line code after them.
///
/// The kernel compiles each function into an image of its own and `bpftool prog dump jited`
/// lists them one after the other, each from offset 0. This JIT compiles the whole program into
/// one image: the prologue and the main function, then each function in the order of its
/// instructions, then code the functions share (the slow paths of checks, trap exits, the
/// stubs and the callback prologue). A function's section runs from where the code of its first
/// instruction begins (the main function's from 0, with the prologue) to where the next one's
/// begins; the shared code is a last section of its own (`slot: None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JitedFunction {
    /// The function's first instruction slot; `None` for the shared out-of-line code.
    pub slot: Option<u32>,
    /// Where the section starts in the image.
    pub start: u32,
    /// Its instructions, decoded with the section's first byte at address 0.
    pub insns: Vec<JitedInsn>,
}

/// `code` as one section per function (`functions`: the first slot of each, ascending, the main
/// function's 0 first) and a last one for what follows `body_end`, each decoded from address 0
/// so that branch targets are offsets in the section, as bpftool decodes each of the kernel's
/// images (immediates the code holds, such as map handles, are shown as they are).
pub fn listing(
    code: &[u8],
    offsets: &[u32],
    body_end: usize,
    functions: &[usize],
) -> Vec<JitedFunction> {
    let mut bounds: Vec<(Option<u32>, usize)> = functions
        .iter()
        .map(|&slot| {
            let at = if slot == 0 {
                0
            } else {
                offsets.get(slot).map_or(body_end, |&o| o as usize)
            };
            (Some(slot as u32), at)
        })
        .collect();
    if bounds.first().is_none_or(|b| b.1 != 0) {
        bounds.insert(0, (Some(0), 0));
    }
    bounds.push((None, body_end));
    let starts: HashMap<u32, u32> = offsets
        .iter()
        .enumerate()
        .filter(|(_, &o)| o != u32::MAX)
        .map(|(pc, &o)| (o, pc as u32))
        .collect();
    let mut out = Vec::with_capacity(bounds.len());
    for (k, &(slot, start)) in bounds.iter().enumerate() {
        let end = bounds.get(k + 1).map_or(code.len(), |b| b.1);
        let start = start.min(code.len());
        let end = end.clamp(start, code.len());
        out.push(JitedFunction {
            slot,
            start: start as u32,
            insns: decode(&code[start..end], start, &starts),
        });
    }
    out
}

/// The instructions of `code` (which starts at `base` in the image), decoded at address 0;
/// `starts` maps an image offset to the eBPF slot whose code begins there.
fn decode(code: &[u8], base: usize, starts: &HashMap<u32, u32>) -> Vec<JitedInsn> {
    use iced_x86::GasFormatter;
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
            insn: starts.get(&((base + off) as u32)).copied(),
        });
    }
    out
}
