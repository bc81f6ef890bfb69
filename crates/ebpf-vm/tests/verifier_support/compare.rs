//! The walk against the kernel, instruction by instruction: a program is loaded into the live
//! kernel with a level-2 log and verified here; the verdicts must agree, a rejection must end
//! with the kernel's message, and every instruction line of the log (`N: (op) text ; state`)
//! must be the kernel's.
//!
//! Normalised before comparing: the kernel prints a map `lddw` with the map's kernel address
//! (we print `map[idx:N]`), pads the state to the instruction's length, and marks precise
//! scalars `P` (precision tracking belongs to state pruning).

use ebpf_vm::analysis::{analyse, AnalysisOptions};
use ebpf_vm::isa::Insn;
use ebpf_vm::verifier::{verify, MapRef, ProgramKind, Rejection, Verified, VerifyOptions};

use super::{
    load_licensed, load_with_funcs, Verdict, CGROUP_SKB, KPROBE, RAW_TRACEPOINT, SCHED_CLS,
    TRACEPOINT, XDP, XDP_DEVMAP,
};

pub fn normalise(line: &str) -> String {
    let mut s = line.to_string();
    // The map lddw's operand.
    if let Some(at) = s.find("(18) r") {
        if let Some(eq) = s[at..].find(" = ") {
            let start = at + eq + 3;
            let end = s[start..]
                .find(|c: char| c.is_whitespace())
                .map_or(s.len(), |e| start + e);
            let operand = &s[start..end];
            if operand.starts_with("map[") || operand.starts_with("0xffff") {
                s.replace_range(start..end, "MAP");
            }
        }
    }
    // The padding before the state.
    if let Some(semi) = s.find(" ;") {
        let head = s[..semi].trim_end().to_string();
        s = format!("{head} ;{}", &s[semi + 2..]);
    }
    // Precision marks.
    s.replace("=P", "=")
}

pub fn insn_lines(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| {
            let digits = l.chars().take_while(|c| c.is_ascii_digit()).count();
            digits > 0 && l[digits..].starts_with(": (")
        })
        .map(normalise)
        .collect()
}

/// The kernel's rejection message: the last line before `processed N insns`.
pub fn kernel_message(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let at = lines
        .iter()
        .rposition(|l| l.starts_with("processed "))
        .unwrap_or(lines.len());
    lines[..at].last().copied().unwrap_or_default().to_string()
}

/// What the kernel and we said about one program.
pub type Answers = (Verdict, Result<Verified, Rejection>);

/// Loads `slots` (a program of kernel type `prog_type` with `maps`) into the kernel and
/// verifies it here; panics where the two disagree.
pub fn check(name: &str, prog_type: u32, slots: &[Insn], maps: &[&str]) {
    let _ = compare_licensed(name, prog_type, slots, maps, "GPL");
}

/// `check` under `license` (GPL-only helpers).
pub fn check_licensed(name: &str, prog_type: u32, slots: &[Insn], maps: &[&str], license: &str) {
    let _ = compare_licensed(name, prog_type, slots, maps, license);
}

/// `check`, returning both answers for further checks.
pub fn compare(name: &str, prog_type: u32, slots: &[Insn], maps: &[&str]) -> Answers {
    compare_licensed(name, prog_type, slots, maps, "GPL")
}

/// The verdict alone, for programs whose logs may differ in length (the kernel revisits
/// callbacks until its states converge; a message the kernel writes without its newline):
/// the verdicts must agree and a rejection's last line must be in the kernel's log. Returns
/// both answers.
/// `funcs`: the slots where functions start, given to both as BTF function info (none: no
/// function info).
pub fn compare_verdict(
    name: &str,
    prog_type: u32,
    slots: &[Insn],
    maps: &[&str],
    funcs: &[usize],
) -> Answers {
    let kernel = match load_with_funcs(prog_type, slots, maps, funcs) {
        Ok(v) => v,
        Err(e) => panic!("{name}: the kernel loader failed: {e}"),
    };
    let ours = verify_here(prog_type, slots, maps, "GPL", funcs);
    assert_eq!(
        ours.is_ok(),
        kernel.accepted,
        "{name}: verdicts differ (ours: {:?})\nkernel log:\n{}",
        ours.as_ref().map(|_| ()).map_err(|r| &r.log),
        kernel.log
    );
    if let Err(r) = &ours {
        let last = r.message.lines().last().unwrap_or_default();
        assert!(
            kernel.log.contains(last),
            "{name}: the kernel's log does not hold {last:?}\n{}",
            kernel.log
        );
    }
    (kernel, ours)
}

pub fn compare_licensed(
    name: &str,
    prog_type: u32,
    slots: &[Insn],
    maps: &[&str],
    license: &str,
) -> Answers {
    let kernel = match load_licensed(prog_type, slots, maps, license) {
        Ok(v) => v,
        Err(e) => panic!("{name}: the kernel loader failed: {e}"),
    };
    let ours = verify_here(prog_type, slots, maps, license, &[]);
    let (accepted, our_log, our_message) = match &ours {
        Ok(v) => (true, v.log.clone(), String::new()),
        Err(r) => (
            false,
            r.log.clone(),
            r.message.lines().last().unwrap_or_default().to_string(),
        ),
    };
    assert_eq!(
        accepted, kernel.accepted,
        "{name}: verdicts differ (ours accepted: {accepted})\nkernel log:\n{}\nour log:\n{our_log}",
        kernel.log
    );
    if !accepted {
        assert_eq!(
            our_message,
            kernel_message(&kernel.log),
            "{name}: rejection messages differ\nkernel log:\n{}\nour log:\n{our_log}",
            kernel.log
        );
    }
    let (k, o) = (insn_lines(&kernel.log), insn_lines(&our_log));
    for (n, (kl, ol)) in k.iter().zip(o.iter()).enumerate() {
        assert_eq!(
            ol, kl,
            "{name}: log line {n} differs\nkernel log:\n{}\nour log:\n{our_log}",
            kernel.log
        );
    }
    // The kernel stops a path where it has seen an equivalent state ("safe"); we walk on.
    let pruned = kernel.log.lines().any(|l| l.ends_with(": safe"));
    assert!(
        o.len() == k.len() || (pruned && o.len() > k.len()),
        "{name}: log lengths differ\nkernel log:\n{}\nour log:\n{our_log}",
        kernel.log
    );
    // The frames of bpf-to-bpf calls and their returns.
    let (k, o) = (call_lines(&kernel.log), call_lines(&our_log));
    for (n, (kl, ol)) in k.iter().zip(o.iter()).enumerate() {
        assert_eq!(
            ol, kl,
            "{name}: call line {n} differs\nkernel log:\n{}\nour log:\n{our_log}",
            kernel.log
        );
    }
    assert!(
        o.len() == k.len() || (pruned && o.len() > k.len()),
        "{name}: call lines differ in number\nkernel log:\n{}\nour log:\n{our_log}",
        kernel.log
    );
    (kernel, ours)
}

/// The lines a bpf-to-bpf call and its return print: `caller:`, `callee:`, `returning from
/// callee:` and `to caller at N:`, each with the state on the line after it.
pub fn call_lines(log: &str) -> Vec<String> {
    let lines: Vec<&str> = log.lines().collect();
    let mut out = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        let header = matches!(*line, "caller:" | "callee:" | "returning from callee:")
            || line.starts_with("to caller at ");
        if header {
            out.push(line.to_string());
            out.push(normalise(lines.get(n + 1).copied().unwrap_or_default()));
        }
    }
    out
}

/// The kernel's prototype of helper `id` (none for a negative id).
pub fn kernel_prototype_of(id: i32) -> Option<ebpf_vm::helpers::prototype::HelperPrototype> {
    u32::try_from(id)
        .ok()
        .and_then(ebpf_vm::helpers::kernel_prototypes::kernel_prototype)
}

thread_local! {
    /// `verify_unprivileged` is verifying: the unprivileged rules apply.
    static UNPRIV: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Our verifier with the unprivileged rules (`VerifyOptions::unprivileged`), as `verify_here`.
pub fn verify_unprivileged(
    prog_type: u32,
    slots: &[Insn],
    maps: &[&str],
) -> Result<Verified, Rejection> {
    UNPRIV.with(|u| u.set(true));
    let ours = verify_here(prog_type, slots, maps, "GPL", &[]);
    UNPRIV.with(|u| u.set(false));
    ours
}

/// Our verifier as `root` loads: the privileged rules.
pub fn verify_privileged(
    prog_type: u32,
    slots: &[Insn],
    maps: &[&str],
) -> Result<Verified, Rejection> {
    verify_here(prog_type, slots, maps, "GPL", &[])
}

/// Our verifier on the same program, with the loader's maps and the kernel's prototypes and
/// names, at log level 2.
fn verify_here(
    prog_type: u32,
    slots: &[Insn],
    maps: &[&str],
    license: &str,
    funcs: &[usize],
) -> Result<Verified, Rejection> {
    let analysis = analyse(
        slots,
        &AnalysisOptions {
            func_entries: funcs,
        },
    )
    .expect("the program analyses");
    let mut map_refs: Vec<MapRef> = Vec::new();
    for (n, spec) in maps.iter().enumerate() {
        // `SPEC@i`: a map of maps whose inner maps are like map i (the loader's template).
        let (spec, inner) = match spec.split_once('@') {
            Some((s, i)) => (s, Some(i.parse::<usize>().expect("a map index"))),
            None => (*spec, None),
        };
        // `SPEC/FLAGS`: the map's flags.
        let (spec, flags) = spec.split_once('/').unwrap_or((spec, "0"));
        let f: Vec<u32> = spec
            .split(':')
            .map(|x| x.parse().expect("number"))
            .collect();
        let inner = inner.map(|i| {
            Box::new(MapRef {
                index: n as u32,
                name: String::new(),
                id: None,
                ..map_refs[i].clone()
            })
        });
        map_refs.push(MapRef {
            index: n as u32,
            name: format!("m{n}"),
            map_type: f[0],
            key_size: f[1],
            value_size: f[2],
            max_entries: f[3],
            // The loader gives a map with a lock offset BTF with the lock there.
            btf: f.len() > 4,
            spin_lock: f.get(4).copied(),
            inner,
            flags: flags.parse().expect("map flags"),
            // A map of its own (its id is not compared: the kernel's is its own).
            id: Some(n as u32),
            ..MapRef::default()
        });
    }
    let table = ebpf_vm::helpers::HelperTable::standard();
    // The standard table's names, and the kernel's for helpers it does not run.
    let names = |id: i32| match id {
        6 => Some("bpf_trace_printk".to_string()),
        25 => Some("bpf_perf_event_output".to_string()),
        4 => Some("bpf_probe_read".to_string()),
        26 => Some("bpf_skb_load_bytes".to_string()),
        113 => Some("bpf_probe_read_kernel".to_string()),
        93 => Some("bpf_spin_lock".to_string()),
        94 => Some("bpf_spin_unlock".to_string()),
        12 => Some("bpf_tail_call".to_string()),
        164 => Some("bpf_for_each_map_elem".to_string()),
        181 => Some("bpf_loop".to_string()),
        97 => Some("bpf_skb_ecn_set_ce".to_string()),
        _ => u32::try_from(id)
            .ok()
            .and_then(|id| table.get(id))
            .map(|h| h.name.clone()),
    };
    let options = VerifyOptions {
        globals: &[],
        unprivileged: UNPRIV.with(|u| u.get()),
        exit_range: false,
        kind: match prog_type {
            XDP => ProgramKind::Xdp,
            XDP_DEVMAP => ProgramKind::XdpDevmap,
            KPROBE => ProgramKind::Kprobe,
            SCHED_CLS => ProgramKind::Tc,
            CGROUP_SKB => ProgramKind::CgroupSkb { egress: false },
            TRACEPOINT => ProgramKind::Tracepoint,
            RAW_TRACEPOINT => ProgramKind::RawTracepoint,
            _ => ProgramKind::SocketFilter,
        },
        maps: &map_refs,
        helper_name: &names,
        prototype: &kernel_prototype_of,
        gpl_compatible: license == "GPL",
        log_level: 2,
    };
    verify(&analysis, &options)
}
