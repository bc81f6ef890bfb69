//! The live kernel's verifier as an oracle: `kernel_load.c` (built here with `cc`, once per test
//! binary) loads a program through bpf() with a level-2 log, and the helpers below read the
//! states the kernel printed. Nothing is attached or pinned; the program fd is closed at once.
#![allow(dead_code)]

pub mod compare;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use ebpf_vm::isa::Insn;

/// `BPF_PROG_TYPE_SOCKET_FILTER`.
pub const SOCKET_FILTER: u32 = 1;
/// `BPF_PROG_TYPE_SCHED_CLS` (tc).
pub const SCHED_CLS: u32 = 3;
/// `BPF_PROG_TYPE_CGROUP_SKB` (ingress).
pub const CGROUP_SKB: u32 = 8;
/// `BPF_PROG_TYPE_KPROBE`.
pub const KPROBE: u32 = 2;
/// `BPF_PROG_TYPE_TRACEPOINT`.
pub const TRACEPOINT: u32 = 5;
/// `BPF_PROG_TYPE_XDP`.
pub const XDP: u32 = 6;
/// `BPF_PROG_TYPE_RAW_TRACEPOINT`.
pub const RAW_TRACEPOINT: u32 = 17;
/// `BPF_PROG_TYPE_XDP` with expected attach type `BPF_XDP_DEVMAP` (33) in the upper 16 bits,
/// as the loader takes it.
pub const XDP_DEVMAP: u32 = (33 << 16) | XDP;

/// The kernel's answer for one program.
pub struct Verdict {
    pub accepted: bool,
    /// The errno name when rejected (`EACCES`, `EINVAL`, ...).
    pub errno: Option<String>,
    pub log: String,
}

/// Why the kernel cannot be asked here (not root, no `cc`, bpf() refused), or the loader.
pub fn kernel() -> Result<&'static PathBuf, String> {
    static LOADER: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    LOADER
        .get_or_init(build_loader)
        .as_ref()
        .map_err(Clone::clone)
}

fn build_loader() -> Result<PathBuf, String> {
    extern "C" {
        fn geteuid() -> u32;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { geteuid() } != 0 {
        return Err("not root: loading programs needs CAP_BPF and CAP_SYS_ADMIN".into());
    }
    let source =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/verifier_support/kernel_load.c");
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("verifier_kernel_load");
    let built = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&out)
        .arg(&source)
        .output()
        .map_err(|e| format!("cannot run cc: {e}"))?;
    if !built.status.success() {
        return Err(format!(
            "cc could not build kernel_load.c: {}",
            String::from_utf8_lossy(&built.stderr)
        ));
    }
    // One trivial program: the kernel must accept `r0 = 0; exit` if bpf() is usable at all.
    let probe = load_with(&out, SOCKET_FILTER, &[mov_imm(0, 0), exit()], &[], "GPL")?;
    if !probe.accepted {
        return Err(format!(
            "the kernel refused even `r0 = 0; exit`: {}",
            probe.log
        ));
    }
    Ok(out)
}

/// Loads `slots` as a program of kernel type `prog_type`; `maps` are `TYPE:KEY:VALUE:MAX` specs
/// (an `lddw` with src 1 or 2 and imm i names map i; `/FLAGS` after a spec gives the map
/// those flags, e.g. `/128` for `BPF_F_RDONLY_PROG`), `TYPE:KEY:VALUE:MAX:LOCK` for a map whose
/// value holds a `struct bpf_spin_lock` at offset LOCK (the loader gives it BTF).
pub fn load(prog_type: u32, slots: &[Insn], maps: &[&str]) -> Result<Verdict, String> {
    load_with(kernel()?, prog_type, slots, maps, "GPL")
}

/// `load` under `license` (the loader's `KERNEL_LOAD_LICENSE`; `load` uses "GPL").
pub fn load_licensed(
    prog_type: u32,
    slots: &[Insn],
    maps: &[&str],
    license: &str,
) -> Result<Verdict, String> {
    load_with(kernel()?, prog_type, slots, maps, license)
}

/// `load` with BTF function info naming the functions that start at `funcs` (slots, 0 first):
/// the kernel wants it for function pointers (callbacks).
pub fn load_with_funcs(
    prog_type: u32,
    slots: &[Insn],
    maps: &[&str],
    funcs: &[usize],
) -> Result<Verdict, String> {
    FUNCS.with(|f| *f.borrow_mut() = funcs.to_vec());
    let verdict = load_with(kernel()?, prog_type, slots, maps, "GPL");
    FUNCS.with(|f| f.borrow_mut().clear());
    verdict
}

/// `load` as an unprivileged user would: the loader runs as `nobody` (uid and gid 65534) with
/// every capability dropped (`setpriv --inh-caps=-all --bounding-set=-all`), so the kernel applies
/// its rules for loads without CAP_BPF and CAP_PERFMON. Needs `kernel.unprivileged_bpf_disabled`
/// = 0 (see [`unprivileged_bpf`]).
pub fn load_unprivileged(prog_type: u32, slots: &[Insn], maps: &[&str]) -> Result<Verdict, String> {
    UNPRIVILEGED.with(|u| u.set(true));
    let verdict = load_with(kernel()?, prog_type, slots, maps, "GPL");
    UNPRIVILEGED.with(|u| u.set(false));
    verdict
}

/// Why unprivileged loads cannot be asked of the kernel here: `kernel.unprivileged_bpf_disabled`
/// is not 0 (the default on most distributions is 2), or no `setpriv`.
pub fn unprivileged_bpf() -> Result<(), String> {
    kernel()?;
    let value = std::fs::read_to_string("/proc/sys/kernel/unprivileged_bpf_disabled")
        .map_err(|e| format!("cannot read kernel.unprivileged_bpf_disabled: {e}"))?;
    if value.trim() != "0" {
        return Err(format!(
            "kernel.unprivileged_bpf_disabled is {} (unprivileged loads need 0)",
            value.trim()
        ));
    }
    Command::new("setpriv")
        .arg("--version")
        .output()
        .map_err(|e| format!("no setpriv: {e}"))?;
    Ok(())
}

thread_local! {
    /// `load_unprivileged` is loading: the loader runs without privileges.
    static UNPRIVILEGED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// The function entries `load_with_funcs` passes to the loader (`KERNEL_LOAD_FUNCS`).
    static FUNCS: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
    /// The packets `load_and_run` passes to the loader (`KERNEL_LOAD_RUN`), in hex.
    static RUNS: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// `load`, and when the kernel accepts, one `BPF_PROG_TEST_RUN` per packet of `packets`: the
/// verdict and each run's return value (or the errno name of a refused run).
pub fn load_and_run(
    prog_type: u32,
    slots: &[Insn],
    maps: &[&str],
    packets: &[Vec<u8>],
) -> Result<(Verdict, Vec<Result<u32, String>>), String> {
    let hex: Vec<String> = packets
        .iter()
        .map(|p| {
            let h: String = p.iter().map(|b| format!("{b:02x}")).collect();
            if h.is_empty() {
                "-".to_string()
            } else {
                h
            }
        })
        .collect();
    RUNS.with(|r| *r.borrow_mut() = hex.join(","));
    let verdict = load_with(kernel()?, prog_type, slots, maps, "GPL");
    RUNS.with(|r| r.borrow_mut().clear());
    let mut verdict = verdict?;
    let mut runs = Vec::new();
    let mut log = verdict.log.as_str();
    while let Some(rest) = log.strip_prefix("run ") {
        let (line, after) = rest.split_once('\n').unwrap_or((rest, ""));
        runs.push(match line.strip_prefix("error ") {
            Some(errno) => Err(errno.to_string()),
            None => line
                .parse()
                .map_err(|e| format!("bad run line {line:?}: {e}")),
        });
        log = after;
    }
    verdict.log = log.to_string();
    Ok((verdict, runs))
}

fn load_with(
    loader: &PathBuf,
    prog_type: u32,
    slots: &[Insn],
    maps: &[&str],
    license: &str,
) -> Result<Verdict, String> {
    let funcs: Vec<String> = FUNCS.with(|f| f.borrow().iter().map(|s| s.to_string()).collect());
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let file = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "verifier_prog_{}_{}.bin",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let bytes: Vec<u8> = slots.iter().flat_map(|s| s.encode()).collect();
    std::fs::write(&file, bytes).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    let unprivileged = UNPRIVILEGED.with(|u| u.get());
    let mut command = if unprivileged {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ])
        .arg(loader);
        c
    } else {
        Command::new(loader)
    };
    let out = command
        .arg(prog_type.to_string())
        .arg("2")
        .arg(&file)
        .args(maps)
        .env("KERNEL_LOAD_LICENSE", license)
        .env("KERNEL_LOAD_FUNCS", funcs.join(","))
        .env("KERNEL_LOAD_RUN", RUNS.with(|r| r.borrow().clone()))
        .output()
        .map_err(|e| format!("cannot run the loader: {e}"));
    let _ = std::fs::remove_file(&file);
    let out = out?;
    if !out.status.success() {
        return Err(format!(
            "loader failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (first, log) = text.split_once('\n').unwrap_or((&text, ""));
    let mut words = first.split_whitespace().skip(1);
    let accepted = words.next() == Some("accepted");
    Ok(Verdict {
        accepted,
        errno: if accepted {
            None
        } else {
            words.next().map(str::to_string)
        },
        log: log.to_string(),
    })
}

/// Skips the calling test, saying why, when the kernel cannot be asked.
#[macro_export]
macro_rules! kernel_or_skip {
    () => {
        if let Err(why) = verifier_support::kernel() {
            eprintln!("skipped: the kernel oracle is not available: {why}");
            return;
        }
    };
}

/// The state the kernel printed after the instruction at `slot` on its first visit (the text
/// after `; ` on the line `N: (op) ...`), if it printed one.
pub fn state_after(log: &str, slot: usize) -> Option<String> {
    let prefix = format!("{slot}: (");
    log.lines()
        .find(|l| l.starts_with(&prefix))
        .and_then(|l| l.split_once("; ").map(|(_, s)| s.to_string()))
}

/// Whether the instruction at `slot` was processed on some path.
pub fn visited(log: &str, slot: usize) -> bool {
    let prefix = format!("{slot}: (");
    log.lines().any(|l| l.starts_with(&prefix))
}

/// The state the kernel printed when it turned to the branch from `from` to `to`.
pub fn branch_state(log: &str, from: usize, to: usize) -> Option<String> {
    let prefix = format!("from {from} to {to}: ");
    log.lines()
        .find(|l| l.starts_with(&prefix))
        .map(|l| l[prefix.len()..].to_string())
}

/// The items of a printed state (`R0=...`, `fp-8=...`): split at spaces outside parentheses.
pub fn items(state: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in state.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ' ' if depth == 0 => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Register `r`'s printed state in `state` (after `R<r>=`).
pub fn reg(state: &str, r: u8) -> Option<String> {
    let key = format!("R{r}=");
    items(state)
        .into_iter()
        .find_map(|i| i.strip_prefix(&key).map(str::to_string))
}

/// A printed scalar without what only a path walk knows: its precision mark and its id.
pub fn bounds_only(printed: &str) -> String {
    let s = printed.strip_prefix('P').unwrap_or(printed);
    let Some(open) = s.find('(') else {
        return s.to_string();
    };
    let (head, rest) = s.split_at(open + 1);
    let parts: Vec<&str> = split_top(rest.strip_suffix(')').unwrap_or(rest));
    let kept: Vec<&str> = parts
        .into_iter()
        .filter(|p| !p.starts_with("id="))
        .collect();
    format!("{head}{})", kept.join(","))
}

fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

// Instruction constructors (raw encodings, so that the oracle does not depend on our assembler).

pub fn mov_imm(dst: u8, imm: i32) -> Insn {
    Insn::new(0xb7, dst, 0, 0, imm)
}

pub fn exit() -> Insn {
    Insn::new(0x95, 0, 0, 0, 0)
}
