//! `dump('jited')`: the compiled code as Intel-syntax assembly (iced-x86's decoder and
//! formatter), with a marker line where the code of each eBPF instruction begins.

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
