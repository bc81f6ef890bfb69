//! Shared pieces of the analysis tests: fixture programs as libbpf handed them to the kernel, and
//! the kernel's own figures for them.
#![allow(dead_code)]

pub mod generated;

use ebpf_vm::isa::{decode_all, Insn};

/// The programs of `__test__/fixtures/<fixture>.libbpf.json`: (name, slots), in file order. The
/// JSON is libbpf's view of the object (sub-programs appended, calls fixed up, map lddws zeroed),
/// written by `__test__/fixtures/libbpf_insns.c`.
pub fn fixture_programs(fixture: &str) -> Vec<(String, Vec<Insn>)> {
    let path = format!(
        "{}/../../__test__/fixtures/{fixture}.libbpf.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut programs = Vec::new();
    let mut name = None;
    for line in text.lines() {
        // A program's key is the only thing indented by two spaces that opens an object.
        if let Some(rest) = line.strip_prefix("  \"") {
            if let Some(n) = rest.strip_suffix("\": {") {
                name = Some(n.to_string());
            }
        }
        if let Some((_, hex)) = line.split_once("\"insns\": \"") {
            let hex = hex.trim_end_matches(['"', ',']);
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
                .collect();
            programs.push((name.clone().expect("program name"), decode_all(&bytes)));
        }
    }
    programs
}

/// The raw instructions of a benchmark program (`bench/programs/bpf/<name>.bin`).
pub fn bench_program(name: &str) -> Vec<Insn> {
    let path = format!(
        "{}/../../bench/programs/bpf/{name}.bin",
        env!("CARGO_MANIFEST_DIR")
    );
    decode_all(&std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
}

/// One instruction as the kernel's verifier log lists it.
pub struct KernelInsn {
    pub slot: usize,
    /// Its strongly connected component in the kernel's numbering, 0 for none.
    pub scc: u32,
    /// The registers r0-r9 live before it, '.' for a dead one (as the log prints them).
    pub live: String,
}

/// What the kernel said about one program.
#[derive(Default)]
pub struct KernelProgram {
    pub funcs: Vec<usize>,
    /// Empty when the kernel refused the program (the benchmark programs).
    pub stack: Vec<u32>,
    pub insns: Vec<KernelInsn>,
}

/// `kernel_oracle.txt` (written by `kernel_oracle.sh` from the kernel's verifier logs), by
/// (fixture, program); the benchmark programs are under the fixture name "bench".
pub fn kernel_oracle() -> std::collections::BTreeMap<(String, String), KernelProgram> {
    let text = include_str!("kernel_oracle.txt");
    let mut out = std::collections::BTreeMap::new();
    let mut current: Option<((String, String), KernelProgram)> = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["program", fixture, name] => {
                current = Some((
                    (fixture.to_string(), name.to_string()),
                    KernelProgram::default(),
                ));
            }
            ["end"] => {
                let (key, program) = current.take().expect("an open program");
                out.insert(key, program);
            }
            ["funcs", rest @ ..] => {
                let p = &mut current.as_mut().expect("an open program").1;
                p.funcs = rest.iter().map(|w| w.parse().expect("slot")).collect();
            }
            ["stack", rest @ ..] => {
                let p = &mut current.as_mut().expect("an open program").1;
                p.stack = rest.iter().map(|w| w.parse().expect("depth")).collect();
            }
            [slot, scc, live] => {
                let p = &mut current.as_mut().expect("an open program").1;
                p.insns.push(KernelInsn {
                    slot: slot.parse().expect("slot"),
                    scc: scc.parse().expect("scc"),
                    live: live.to_string(),
                });
            }
            other => panic!("kernel_oracle.txt: unexpected line {other:?}"),
        }
    }
    out
}
