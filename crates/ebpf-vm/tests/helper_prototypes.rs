//! Helper prototypes against their oracles.
//!
//! - Program types and GPL flags: the running kernel. `kernel_oracle/helper_access.c` loads
//!   `call <id>; r0 = 0; exit` for every helper and program type and reads the verifier's log
//!   ("program of this type cannot use helper", "cannot call GPL-restricted function");
//!   `scripts/kernel-helper-access.sh` records its answers on Linux 6.18 in
//!   `kernel_oracle/helper_access_6.18.txt`. Our prototypes must agree with the recorded table
//!   for every helper we implement, and, where root, cc and a 6.18 kernel are present, with the
//!   kernel asked again now (elsewhere that part skips, saying why).
//! - Argument and return types: written out below by hand from the kernel's `struct
//!   bpf_func_proto` definitions, in the kernel's spelling, one line per helper.

use std::collections::BTreeMap;
use std::process::Command;

use ebpf_vm::context::{all_helpers, helpers_for};
use ebpf_vm::helpers::kernel_prototypes::kernel_prototype;
use ebpf_vm::helpers::{HelperPrototype, KernelProgType};
use ebpf_vm::{HelperTable, ProgramType};

const RECORDED: &str = include_str!("kernel_oracle/helper_access_6.18.txt");

/// What the kernel said about one helper: its name and, per program type, `ok`, `gpl` or `-`.
type Access = BTreeMap<u32, (String, BTreeMap<String, String>)>;

fn parse_access(text: &str) -> Access {
    let mut header: Vec<String> = Vec::new();
    let mut rows = Access::new();
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("# id name ") {
            header = h.split_whitespace().map(String::from).collect();
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let id: u32 = words.next().unwrap().parse().unwrap();
        let name = words.next().unwrap().to_string();
        let verdicts = header
            .iter()
            .cloned()
            .zip(words.map(String::from))
            .collect();
        rows.insert(id, (name, verdicts));
    }
    assert!(!header.is_empty(), "the table has a header line");
    rows
}

/// Every helper the engine implements: the standard table and what each program type adds.
fn implemented() -> BTreeMap<u32, (String, HelperPrototype)> {
    all_helpers()
        .iter()
        .map(|h| (h.id, (h.name.clone(), h.prototype)))
        .collect()
}

/// Our prototype's answer in the table's words.
fn verdict(p: &HelperPrototype, t: KernelProgType) -> &'static str {
    match (p.prog_types.contains(t), p.needs_gpl(Some(t))) {
        (false, _) => "-",
        (true, true) => "gpl",
        (true, false) => "ok",
    }
}

/// Helpers the recording host's kernel withholds from every type because it is locked down
/// (`CONFIG_LOCK_DOWN_KERNEL_FORCE_INTEGRITY`: `LOCKDOWN_BPF_WRITE_USER`), and the answers
/// net/core/filter.c's and kernel/trace/bpf_trace.c's prototypes give without lockdown, which
/// ours follow: `bpf_probe_write_user`, GPL-only, for the tracing types.
const LOCKED_DOWN: &[(u32, &str)] = &[(36, "- gpl - gpl - gpl gpl -")];

/// The kernel's answers for a helper, the locked-down ones as an unlocked kernel gives them.
fn unlocked(id: u32, verdicts: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    match LOCKED_DOWN.iter().find(|(i, _)| *i == id) {
        Some((_, row)) => {
            assert!(
                verdicts.values().all(|v| v == "-"),
                "helper {id}: the recorded kernel offers it, so it is not locked down"
            );
            KernelProgType::ALL
                .iter()
                .map(|t| t.name().to_string())
                .zip(row.split(' ').map(String::from))
                .collect()
        }
        None => verdicts.clone(),
    }
}

/// Differences between our prototypes and a table of the kernel's answers, one line each.
fn differences(kernel: &Access) -> Vec<String> {
    let mut out = Vec::new();
    for (id, (name, p)) in implemented() {
        let Some((kname, verdicts)) = kernel.get(&id) else {
            out.push(format!("{id} {name}: not in the kernel's table"));
            continue;
        };
        assert_eq!(kname, &name, "helper {id} has the kernel's name");
        let verdicts = unlocked(id, verdicts);
        for t in KernelProgType::ALL {
            let theirs = verdicts.get(t.name()).map(String::as_str);
            let ours = verdict(&p, t);
            if theirs != Some(ours) {
                out.push(format!(
                    "{id} {name} {}: kernel {theirs:?}, ours {ours:?}",
                    t.name()
                ));
            }
        }
    }
    out
}

#[test]
fn every_implemented_helper_has_the_kernel_prototype() {
    let all = implemented();
    assert_eq!(all.len(), 81, "{:?}", all.keys().collect::<Vec<_>>());
    for (id, (name, p)) in all {
        assert_eq!(kernel_prototype(id), Some(p), "{id} {name}");
    }
}

#[test]
fn program_types_and_gpl_flags_match_the_recorded_kernel() {
    let diffs = differences(&parse_access(RECORDED));
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

/// The recorded table must still be what the kernel says: its verdicts for the helpers we
/// implement are compared with a fresh run of the loader.
#[test]
fn recorded_table_matches_the_live_kernel() {
    if let Err(why) = live_kernel_usable() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = std::env::temp_dir().join(format!("ebpf-helper-access-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("helper_access");
    let src = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/kernel_oracle/helper_access.c"
    );
    let built = Command::new("cc")
        .args(["-O1", "-o"])
        .arg(&exe)
        .arg(src)
        .output()
        .expect("cc runs");
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let out = Command::new(&exe).output().expect("the loader runs");
    std::fs::remove_dir_all(&dir).ok();
    if out.status.code() == Some(2) {
        // The loader's exit code when the syscall itself is refused (seccomp, no capability).
        eprintln!("skipped: {}", String::from_utf8_lossy(&out.stderr).trim());
        return;
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let live = parse_access(&String::from_utf8_lossy(&out.stdout));
    let recorded = parse_access(RECORDED);
    let changed: Vec<u32> = implemented()
        .into_keys()
        .filter(|id| live.get(id) != recorded.get(id))
        .collect();
    // Builds of one release differ in what they offer (6.18.44-fc-v1300 offers XDP no
    // bpf_xdp_adjust_meta, where v1252, recorded, does): only the recorded build must agree.
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let recorded_on = RECORDED
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("# Linux "))
        .and_then(|l| l.split(':').next())
        .expect("the table's first line names the kernel it was recorded on");
    if !changed.is_empty() && release.trim() != recorded_on {
        let rows: Vec<String> = changed
            .iter()
            .map(|id| {
                format!(
                    "{id}: live {:?}, recorded {:?}",
                    live.get(id),
                    recorded.get(id)
                )
            })
            .collect();
        eprintln!(
            "skipped: this kernel ({}) is not the recorded build ({recorded_on}) and differs on {}",
            release.trim(),
            rows.join("; ")
        );
        return;
    }
    for id in implemented().keys() {
        assert_eq!(live.get(id), recorded.get(id), "helper {id}");
    }
    let diffs = differences(&live);
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

fn live_kernel_usable() -> Result<(), String> {
    extern "C" {
        fn geteuid() -> u32;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { geteuid() } != 0 {
        return Err("not root: the bpf syscall needs CAP_BPF and CAP_PERFMON".into());
    }
    if Command::new("cc").arg("--version").output().is_err() {
        return Err("no C compiler (cc) to build the loader".into());
    }
    if !std::path::Path::new("/usr/include/linux/bpf.h").exists() {
        return Err("no /usr/include/linux/bpf.h (linux-libc-dev) to build the loader".into());
    }
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    if !release.starts_with("6.18.") {
        return Err(format!(
            "the recorded table is Linux 6.18's, this kernel is {}",
            release.trim()
        ));
    }
    Ok(())
}

/// Argument and return types of every helper we implement, copied by hand from Linux 6.18's
/// prototypes (kernel/bpf/helpers.c, ringbuf.c, bpf_iter.c, core.c, net/core/filter.c,
/// kernel/trace/bpf_trace.c). Undeclared arguments are omitted.
const BY_HAND: &[(u32, &str, &[&str])] = &[
    (
        1,
        "RET_PTR_TO_MAP_VALUE_OR_NULL",
        &["ARG_CONST_MAP_PTR", "ARG_PTR_TO_MAP_KEY"],
    ),
    (
        2,
        "RET_INTEGER",
        &[
            "ARG_CONST_MAP_PTR",
            "ARG_PTR_TO_MAP_KEY",
            "ARG_PTR_TO_MAP_VALUE",
            "ARG_ANYTHING",
        ],
    ),
    (
        3,
        "RET_INTEGER",
        &["ARG_CONST_MAP_PTR", "ARG_PTR_TO_MAP_KEY"],
    ),
    (
        4,
        "RET_INTEGER",
        &[
            "ARG_PTR_TO_UNINIT_MEM",
            "ARG_CONST_SIZE_OR_ZERO",
            "ARG_ANYTHING",
        ],
    ),
    (5, "RET_INTEGER", &[]),
    (
        6,
        "RET_INTEGER",
        &["ARG_PTR_TO_MEM | MEM_RDONLY", "ARG_CONST_SIZE"],
    ),
    (7, "RET_INTEGER", &[]),
    (8, "RET_INTEGER", &[]),
    (
        9,
        "RET_INTEGER",
        &[
            "ARG_PTR_TO_CTX",
            "ARG_ANYTHING",
            "ARG_PTR_TO_MEM | MEM_RDONLY",
            "ARG_CONST_SIZE",
            "ARG_ANYTHING",
        ],
    ),
    (
        10,
        "RET_INTEGER",
        &[
            "ARG_PTR_TO_CTX",
            "ARG_ANYTHING",
            "ARG_ANYTHING",
            "ARG_ANYTHING",
            "ARG_ANYTHING",
        ],
    ),
    (
        11,
        "RET_INTEGER",
        &[
            "ARG_PTR_TO_CTX",
            "ARG_ANYTHING",
            "ARG_ANYTHING",
            "ARG_ANYTHING",
            "ARG_ANYTHING",
        ],
    ),
    (
        12,
        "RET_VOID",
        &["ARG_PTR_TO_CTX", "ARG_CONST_MAP_PTR", "ARG_ANYTHING"],
    ),
    (
        13,
        "RET_INTEGER",
        &["ARG_PTR_TO_CTX", "ARG_ANYTHING", "ARG_ANYTHING"],
    ),
    (14, "RET_INTEGER", &[]),
    (15, "RET_INTEGER", &[]),
    (
        16,
        "RET_INTEGER",
        &["ARG_PTR_TO_UNINIT_MEM", "ARG_CONST_SIZE"],
    ),
    (
        18,
        "RET_INTEGER",
        &["ARG_PTR_TO_CTX", "ARG_ANYTHING", "ARG_ANYTHING"],
    ),
    (19, "RET_INTEGER", &["ARG_PTR_TO_CTX"]),
    (
        20,
        "RET_INTEGER",
        &[
            "ARG_PTR_TO_CTX",
            "ARG_PTR_TO_UNINIT_MEM",
            "ARG_CONST_SIZE",
            "ARG_ANYTHING",
        ],
    ),
    (
        21,
        "RET_INTEGER",
        &[
            "ARG_PTR_TO_CTX",
            "ARG_PTR_TO_MEM | MEM_RDONLY",
            "ARG_CONST_SIZE",
            "ARG_ANYTHING",
        ],
    ),
    (23, "RET_INTEGER", &["ARG_ANYTHING", "ARG_ANYTHING"]),
    (
        25,
        "RET_INTEGER",
        &[
            "ARG_PTR_TO_CTX",
            "ARG_CONST_MAP_PTR",
            "ARG_ANYTHING",
            "ARG_PTR_TO_MEM | MEM_RDONLY",
            "ARG_CONST_SIZE_OR_ZERO",
        ],
    ),
    (
        26,
        "RET_INTEGER",
        &[
            "ARG_PTR_TO_CTX",
            "ARG_ANYTHING",
            "ARG_PTR_TO_UNINIT_MEM",
            "ARG_CONST_SIZE",
        ],
    ),
    (
        27,
        "RET_INTEGER",
        &["ARG_PTR_TO_CTX", "ARG_CONST_MAP_PTR", "ARG_ANYTHING"],
    ),
    (
        28,
        "RET_INTEGER",
        &[
            "ARG_PTR_TO_MEM | PTR_MAYBE_NULL | MEM_RDONLY",
            "ARG_CONST_SIZE_OR_ZERO",
            "ARG_PTR_TO_MEM | PTR_MAYBE_NULL | MEM_RDONLY",
            "ARG_CONST_SIZE_OR_ZERO",
            "ARG_ANYTHING",
        ],
    ),
    (
        31,
        "RET_INTEGER",
        &["ARG_PTR_TO_CTX", "ARG_ANYTHING", "ARG_ANYTHING"],
    ),
    (32, "RET_INTEGER", &["ARG_PTR_TO_CTX", "ARG_ANYTHING"]),
    (34, "RET_INTEGER", &["ARG_PTR_TO_CTX"]),
    (35, "RET_INTEGER", &[]),
    (
        36,
        "RET_INTEGER",
        &[
            "ARG_ANYTHING",
            "ARG_PTR_TO_MEM | MEM_RDONLY",
            "ARG_CONST_SIZE",
        ],
    ),
    (
        38,
        "RET_INTEGER",
        &["ARG_PTR_TO_CTX", "ARG_ANYTHING", "ARG_ANYTHING"],
    ),
    (39, "RET_INTEGER", &["ARG_PTR_TO_CTX", "ARG_ANYTHING"]),
    (40, "RET_INTEGER", &["ARG_PTR_TO_CTX", "ARG_ANYTHING"]),
    (41, "RET_INTEGER", &["ARG_PTR_TO_CTX"]),
    (
        43,
        "RET_INTEGER",
        &["ARG_PTR_TO_CTX", "ARG_ANYTHING", "ARG_ANYTHING"],
    ),
    (44, "RET_INTEGER", &["ARG_PTR_TO_CTX", "ARG_ANYTHING"]),
    (
        45,
        "RET_INTEGER",
        &[
            "ARG_PTR_TO_UNINIT_MEM",
            "ARG_CONST_SIZE_OR_ZERO",
            "ARG_ANYTHING",
        ],
    ),
    // bpf_get_socket_cookie_proto (the skb form) and bpf_get_socket_uid_proto.
    (46, "RET_INTEGER", &["ARG_PTR_TO_CTX"]),
    (47, "RET_INTEGER", &["ARG_PTR_TO_CTX"]),
    (48, "RET_INTEGER", &["ARG_PTR_TO_CTX", "ARG_ANYTHING"]),
    (
        50,
        "RET_INTEGER",
        &[
            "ARG_PTR_TO_CTX",
            "ARG_ANYTHING",
            "ARG_ANYTHING",
            "ARG_ANYTHING",
        ],
    ),
    (
        51,
        "RET_INTEGER",
        &["ARG_CONST_MAP_PTR", "ARG_ANYTHING", "ARG_ANYTHING"],
    ),
    (54, "RET_INTEGER", &["ARG_PTR_TO_CTX", "ARG_ANYTHING"]),
    (65, "RET_INTEGER", &["ARG_PTR_TO_CTX", "ARG_ANYTHING"]),
    (
        67,
        "RET_INTEGER",
        &[
            "ARG_PTR_TO_CTX",
            "ARG_PTR_TO_UNINIT_MEM",
            "ARG_CONST_SIZE_OR_ZERO",
            "ARG_ANYTHING",
        ],
    ),
    (
        69,
        "RET_INTEGER",
        &[
            "ARG_PTR_TO_CTX",
            "ARG_PTR_TO_MEM | MEM_WRITE",
            "ARG_CONST_SIZE",
            "ARG_ANYTHING",
        ],
    ),
    (
        87,
        "RET_INTEGER",
        &["ARG_CONST_MAP_PTR", "ARG_PTR_TO_MAP_VALUE", "ARG_ANYTHING"],
    ),
    (
        88,
        "RET_INTEGER",
        &[
            "ARG_CONST_MAP_PTR",
            "ARG_PTR_TO_MAP_VALUE | MEM_UNINIT | MEM_WRITE",
        ],
    ),
    (
        89,
        "RET_INTEGER",
        &[
            "ARG_CONST_MAP_PTR",
            "ARG_PTR_TO_MAP_VALUE | MEM_UNINIT | MEM_WRITE",
        ],
    ),
    (93, "RET_VOID", &["ARG_PTR_TO_SPIN_LOCK"]),
    (94, "RET_VOID", &["ARG_PTR_TO_SPIN_LOCK"]),
    (97, "RET_INTEGER", &["ARG_PTR_TO_CTX"]),
    (
        105,
        "RET_INTEGER",
        &[
            "ARG_PTR_TO_MEM | MEM_RDONLY",
            "ARG_CONST_SIZE",
            "ARG_ANYTHING",
            "ARG_PTR_TO_FIXED_SIZE_MEM | MEM_UNINIT | MEM_WRITE | MEM_ALIGNED (size 8)",
        ],
    ),
    (
        106,
        "RET_INTEGER",
        &[
            "ARG_PTR_TO_MEM | MEM_RDONLY",
            "ARG_CONST_SIZE",
            "ARG_ANYTHING",
            "ARG_PTR_TO_FIXED_SIZE_MEM | MEM_UNINIT | MEM_WRITE | MEM_ALIGNED (size 8)",
        ],
    ),
    // bpf_send_signal_proto and bpf_send_signal_thread_proto: u32 sig.
    (109, "RET_INTEGER", &["ARG_ANYTHING"]),
    (
        112,
        "RET_INTEGER",
        &[
            "ARG_PTR_TO_UNINIT_MEM",
            "ARG_CONST_SIZE_OR_ZERO",
            "ARG_ANYTHING",
        ],
    ),
    (
        113,
        "RET_INTEGER",
        &[
            "ARG_PTR_TO_UNINIT_MEM",
            "ARG_CONST_SIZE_OR_ZERO",
            "ARG_ANYTHING",
        ],
    ),
    (
        114,
        "RET_INTEGER",
        &[
            "ARG_PTR_TO_UNINIT_MEM",
            "ARG_CONST_SIZE_OR_ZERO",
            "ARG_ANYTHING",
        ],
    ),
    (
        115,
        "RET_INTEGER",
        &[
            "ARG_PTR_TO_UNINIT_MEM",
            "ARG_CONST_SIZE_OR_ZERO",
            "ARG_ANYTHING",
        ],
    ),
    (117, "RET_INTEGER", &["ARG_ANYTHING"]),
    (118, "RET_INTEGER", &[]),
    (125, "RET_INTEGER", &[]),
    (
        130,
        "RET_INTEGER",
        &[
            "ARG_CONST_MAP_PTR",
            "ARG_PTR_TO_MEM | MEM_RDONLY",
            "ARG_CONST_SIZE_OR_ZERO",
            "ARG_ANYTHING",
        ],
    ),
    (
        131,
        "RET_PTR_TO_RINGBUF_MEM_OR_NULL",
        &[
            "ARG_CONST_MAP_PTR",
            "ARG_CONST_ALLOC_SIZE_OR_ZERO",
            "ARG_ANYTHING",
        ],
    ),
    (
        132,
        "RET_VOID",
        &["ARG_PTR_TO_RINGBUF_MEM | OBJ_RELEASE", "ARG_ANYTHING"],
    ),
    (
        133,
        "RET_VOID",
        &["ARG_PTR_TO_RINGBUF_MEM | OBJ_RELEASE", "ARG_ANYTHING"],
    ),
    (134, "RET_INTEGER", &["ARG_CONST_MAP_PTR", "ARG_ANYTHING"]),
    (
        152,
        "RET_INTEGER",
        &[
            "ARG_ANYTHING",
            "ARG_PTR_TO_MEM | PTR_MAYBE_NULL | MEM_RDONLY",
            "ARG_CONST_SIZE_OR_ZERO",
            "ARG_ANYTHING",
        ],
    ),
    (155, "RET_INTEGER", &["ARG_ANYTHING", "ARG_ANYTHING"]),
    (158, "RET_PTR_TO_BTF_ID_TRUSTED", &[]),
    (160, "RET_INTEGER", &[]),
    (
        163,
        "RET_INTEGER",
        &[
            "ARG_PTR_TO_CTX",
            "ARG_ANYTHING",
            "ARG_PTR_TO_FIXED_SIZE_MEM | MEM_WRITE | MEM_ALIGNED (size 4)",
            "ARG_ANYTHING",
            "ARG_ANYTHING",
        ],
    ),
    (
        164,
        "RET_INTEGER",
        &[
            "ARG_CONST_MAP_PTR",
            "ARG_PTR_TO_FUNC",
            "ARG_PTR_TO_STACK_OR_NULL",
            "ARG_ANYTHING",
        ],
    ),
    (
        165,
        "RET_INTEGER",
        &[
            "ARG_PTR_TO_MEM_OR_NULL | MEM_WRITE",
            "ARG_CONST_SIZE_OR_ZERO",
            "ARG_PTR_TO_CONST_STR",
            "ARG_PTR_TO_MEM | PTR_MAYBE_NULL | MEM_RDONLY",
            "ARG_CONST_SIZE_OR_ZERO",
        ],
    ),
    // kernel/trace/bpf_trace.c: every variant (_kprobe, _tracing, _kprobe_multi, ...) the same
    // way.
    (173, "RET_INTEGER", &["ARG_PTR_TO_CTX"]),
    // kernel/trace/bpf_trace.c: every variant (_trace, _pe, _tracing, _kprobe_multi, ...) the
    // same way.
    (174, "RET_INTEGER", &["ARG_PTR_TO_CTX"]),
    (
        181,
        "RET_INTEGER",
        &[
            "ARG_ANYTHING",
            "ARG_PTR_TO_FUNC",
            "ARG_PTR_TO_STACK_OR_NULL",
            "ARG_ANYTHING",
        ],
    ),
    (188, "RET_INTEGER", &["ARG_PTR_TO_CTX"]),
    (
        189,
        "RET_INTEGER",
        &[
            "ARG_PTR_TO_CTX",
            "ARG_ANYTHING",
            "ARG_PTR_TO_UNINIT_MEM",
            "ARG_CONST_SIZE",
        ],
    ),
    // As corrected in 6.18's stable updates (net/core/filter.c: the buffer is read); the release
    // had ARG_PTR_TO_UNINIT_MEM. tests/helper_prototypes_live.rs asks the running kernel.
    (
        190,
        "RET_INTEGER",
        &[
            "ARG_PTR_TO_CTX",
            "ARG_ANYTHING",
            "ARG_PTR_TO_MEM | MEM_RDONLY",
            "ARG_CONST_SIZE",
        ],
    ),
    (
        195,
        "RET_PTR_TO_MAP_VALUE_OR_NULL",
        &["ARG_CONST_MAP_PTR", "ARG_PTR_TO_MAP_KEY", "ARG_ANYTHING"],
    ),
];

#[test]
fn argument_and_return_types_are_the_kernels() {
    let all = implemented();
    assert_eq!(
        BY_HAND.iter().map(|(id, _, _)| *id).collect::<Vec<_>>(),
        all.keys().copied().collect::<Vec<_>>(),
        "one line per implemented helper"
    );
    for (id, ret, args) in BY_HAND {
        let (name, p) = &all[id];
        assert_eq!(p.ret.kernel_name(), *ret, "{id} {name} return");
        let ours: Vec<String> = p.args[..p.arg_count()]
            .iter()
            .map(|a| a.kernel_name())
            .collect();
        assert_eq!(&ours, args, "{id} {name} arguments");
    }
}

#[test]
fn embedder_helpers_default_to_scalars_and_may_declare_their_own() {
    use ebpf_vm::helpers::{ArgType, RetType};
    let mut table = HelperTable::standard();
    table.register(7, "my_random", |_, _| Ok(4));
    assert_eq!(table.prototype(7), Some(&HelperPrototype::SCALARS));
    let declared = HelperPrototype::new(
        RetType::Integer,
        &[ArgType::PtrToReadonlyMem, ArgType::ConstSize],
    );
    table.register_with_prototype(1000, "my_sum", declared, |_, _| Ok(0));
    assert_eq!(table.prototype(1000), Some(&declared));
    // The program type's own helpers keep their prototypes when combined with the embedder's.
    let xdp = helpers_for(ProgramType::Xdp, &table);
    assert_eq!(xdp.prototype(44), kernel_prototype(44).as_ref());
    assert_eq!(xdp.prototype(7), Some(&HelperPrototype::SCALARS));
    assert_eq!(xdp.prototype(1000), Some(&declared));
}

/// Where the helper sets of the engine's program types differ from the kernel's for the same
/// type (socket_filter, xdp, and kprobe for `Tracing`), by the recorded table: (type, helper id,
/// whether the engine offers it). The list may only shrink: `context::helpers_for` decides the
/// engine's sets, and a verifier that refuses what the kernel refuses would close these.
const KNOWN_DIVERGENCES: &[(&str, u32, bool)] = &[
    // bpf_skb_ecn_set_ce writes the IP header; a cgroup_skb run here has a read-only packet.
    ("cgroup_skb", 97, false),
    // bpf_ktime_get_coarse_ns comes with the standard table; tracing programs cannot call it.
    ("kprobe", 160, true),
];

#[test]
fn engine_helper_sets_against_the_kernels() {
    let kernel = parse_access(RECORDED);
    let base = HelperTable::standard();
    let mut found = Vec::new();
    for (ours, theirs) in [
        (ProgramType::SocketFilter, KernelProgType::SocketFilter),
        (ProgramType::Tc, KernelProgType::SchedCls),
        (ProgramType::CgroupSkb, KernelProgType::CgroupSkb),
        (ProgramType::Xdp, KernelProgType::Xdp),
        (ProgramType::Tracing, KernelProgType::Kprobe),
    ] {
        let table = helpers_for(ours, &base);
        for id in implemented().keys() {
            let offered = table.contains(*id);
            let kernel_offers = unlocked(*id, &kernel[id].1)[theirs.name()] != "-";
            if offered != kernel_offers {
                found.push((theirs.name(), *id, offered));
            }
        }
    }
    assert_eq!(found, KNOWN_DIVERGENCES);
}
