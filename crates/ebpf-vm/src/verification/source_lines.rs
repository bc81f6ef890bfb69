//! The C source lines of the verifier's log: before the line of an instruction the walk reaches,
//! the kernel prints the source line that instruction came from (`; if (!cfg) @ prog.c:26`),
//! whenever the BTF line info record that covers it is another than the last one met and has
//! another text (`verbose_linfo`: records of one line at different columns print once; the last
//! record is not forgotten when the walk switches paths). Checked against the kernel's log of
//! `__test__/fixtures/socket_filter.bpf.o` (`__test__/verifier-api.test.ts`).
//!
//! This is a pass over the finished log rather than a part of the walk: the log's instruction
//! lines (`12: (bf) r1 = r6`) are in the order the walk reached them, which is all the rule needs.

use std::fmt::Write;

/// One BTF line info record: the instructions from `slot` up to the next record's came from
/// this place in the source.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceLine {
    pub slot: usize,
    pub file: String,
    pub line: u32,
    pub column: u32,
    /// The source line's text, as the object's BTF holds it.
    pub text: String,
}

/// The slot of an instruction line of the log (`12: (bf) r1 = r6`), `None` for other lines
/// (states, messages, `from 4 to 6: ...`).
fn instruction_slot(line: &str) -> Option<usize> {
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || !line[digits..].starts_with(": (") {
        return None;
    }
    line[..digits].parse().ok()
}

/// `log` with the kernel's source-line comments; `lines` sorted by slot.
pub fn annotate(log: &str, lines: &[SourceLine]) -> String {
    if lines.is_empty() {
        return log.to_string();
    }
    let mut out = String::with_capacity(log.len() + log.len() / 2);
    let mut last: Option<usize> = None;
    for line in log.split_inclusive('\n') {
        if let Some(slot) = instruction_slot(line) {
            let covering = lines.partition_point(|l| l.slot <= slot).checked_sub(1);
            if let Some(i) = covering.filter(|i| last != Some(*i)) {
                let l = &lines[i];
                if last.is_none_or(|p| lines[p].text != l.text) {
                    // The text without its indentation, the file's base name.
                    let file = l.file.rsplit('/').next().unwrap_or(&l.file);
                    let _ = writeln!(out, "; {} @ {file}:{}", l.text.trim_start(), l.line);
                }
                last = Some(i);
            }
        }
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(slot: usize, line: u32, text: &str) -> SourceLine {
        SourceLine {
            slot,
            file: "/src/prog.c".into(),
            line,
            column: 1,
            text: text.into(),
        }
    }

    #[test]
    fn comments_go_before_the_first_instruction_of_each_record_reached() {
        // The shape of the kernel's log of socket_filter.c at level 2 (bpftool -d prog loadall).
        let log = "0: R1=ctx() R10=fp0\n0: (bf) r7 = r1\n1: (b7) r6 = 0\n2: (63) *(u32 *)(r10 -4) = r6\n\
                   3: (05) goto pc+1\n\nfrom 1 to 3: R1=1\n3: R1=1\n3: (05) goto pc+1\nR0 !read_ok\n";
        let lines = [
            at(0, 19, "int f(void)"),
            at(2, 21, "\t__u32 zero = 0;"),
            at(3, 22, "}"),
        ];
        assert_eq!(
            annotate(log, &lines),
            "0: R1=ctx() R10=fp0\n; int f(void) @ prog.c:19\n0: (bf) r7 = r1\n1: (b7) r6 = 0\n\
             ; __u32 zero = 0; @ prog.c:21\n2: (63) *(u32 *)(r10 -4) = r6\n; } @ prog.c:22\n\
             3: (05) goto pc+1\n\nfrom 1 to 3: R1=1\n3: R1=1\n3: (05) goto pc+1\nR0 !read_ok\n"
        );
    }

    #[test]
    fn a_record_of_the_line_last_printed_prints_nothing() {
        // socket_filter.c: records at 10 and 11 are both line 28 (columns 6 and 25).
        let log = "10: (61) r1 = *(u32 *)(r7 +16)\n11: (55) if r1 != 0x8 goto pc+26\n";
        let text = "\tif (skb->protocol != bpf_htons(ETH_P_IP))";
        assert_eq!(
            annotate(log, &[at(10, 28, text), at(11, 28, text)]),
            "; if (skb->protocol != bpf_htons(ETH_P_IP)) @ prog.c:28\n\
             10: (61) r1 = *(u32 *)(r7 +16)\n11: (55) if r1 != 0x8 goto pc+26\n"
        );
    }

    #[test]
    fn instructions_before_the_first_record_and_logs_without_records_are_left_alone() {
        let log = "0: (b7) r0 = 0\n1: (95) exit\n";
        assert_eq!(annotate(log, &[]), log);
        assert_eq!(
            annotate(log, &[at(1, 3, "return 0;")]),
            "0: (b7) r0 = 0\n; return 0; @ prog.c:3\n1: (95) exit\n"
        );
    }
}
