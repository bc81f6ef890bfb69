//! Helper prototypes against the live kernel: return types, argument kinds, and whether memory
//! arguments are read or written.
//!
//! Argument kinds: a program passes an argument of the wrong kind (a non-null scalar where
//! memory is wanted, the frame pointer anywhere else; the arguments before it well-formed) and
//! the verifier's refusal lists what it expected ("R2 type=fp expected=map_ptr").
//!
//! Return types: a program calls the helper (arguments as below, memory initialised) and then
//! reads a byte at r0; the verifier's refusal names what r0 is after the call ("R0 !read_ok":
//! `RET_VOID`; "invalid mem access 'scalar'": `RET_INTEGER`; `'map_value_or_null'`,
//! `'ringbuf_mem_or_null'`: the pointers that must be checked against NULL first; the read
//! accepted: `RET_PTR_TO_BTF_ID_TRUSTED`, the current task).
//!
//! Memory arguments: does the helper read the memory
//! (the verifier wants it initialised: `ARG_PTR_TO_MEM | MEM_RDONLY`, `..._OR_NULL`) or only write
//! it (uninitialised stack is fine: `ARG_PTR_TO_UNINIT_MEM`, fixed-size `MEM_UNINIT`)?
//!
//! For every helper we implement whose arguments are only the context, a map, memory (map keys and
//! values included), sizes and scalars, and for each of its memory arguments, a program passes 8
//! bytes of uninitialised stack in that argument (initialised stack in the others, size 8, scalars
//! 0, a map of the kind the helper works on, 8-byte keys and values) and is loaded with a verifier log
//! (`bpf(BPF_PROG_LOAD)`, nothing attached; the program is closed at once). The kernel accepting it
//! means the argument may be uninitialised; "invalid (indirect) read from stack" means it is read.
//! Our prototype must say the same. The loads run on a thread that has dropped CAP_PERFMON and
//! CAP_SYS_ADMIN (capabilities are per thread): with them the verifier lets any read of
//! uninitialised stack through (`allow_uninit_stack`), and could not tell the two apart. Helpers
//! the kernel offers only with CAP_PERFMON (trace_printk, get_current_comm, the probe reads) cannot
//! be asked so.
//! Skips, saying why, without root or off Linux 6.18 x86-64.

use std::collections::BTreeMap;

use ebpf_vm::context::all_helpers;
use ebpf_vm::helpers::{ArgType, HelperPrototype, KernelProgType, RetType};
use ebpf_vm::isa::Insn;

const MOV64_IMM: u8 = 0xb7;
const MOV64_REG: u8 = 0xbf;
const ADD64_IMM: u8 = 0x07;
const LDDW: u8 = 0x18;
/// `lddw` source: the immediate is a map's file descriptor.
const BPF_PSEUDO_MAP_FD: u8 = 1;
const STORE_DW_IMM: u8 = 0x7a;
const LOAD_B: u8 = 0x71;
const CALL: u8 = 0x85;
const EXIT: u8 = 0x95;

/// Initialised stack (`r10 - 8`) and uninitialised stack (`r10 - 16`), 8 bytes each.
const INITIALISED: i32 = -8;
const UNINITIALISED: i32 = -16;

/// The map a helper's `ARG_CONST_MAP_PTR` gets: `BPF_MAP_CREATE`'s type, key size, value size
/// and max entries; `None` for helpers this probe does not give a map.
fn map_for(id: u32) -> Option<(u32, u32, u32, u32)> {
    const HASH: u32 = 1;
    const PROG_ARRAY: u32 = 3;
    const PERF_EVENT_ARRAY: u32 = 4;
    const PERCPU_HASH: u32 = 5;
    const QUEUE: u32 = 22;
    const RINGBUF: u32 = 27;
    const STACK_TRACE: u32 = 7;
    const DEVMAP: u32 = 14;
    Some(match id {
        27 => (STACK_TRACE, 4, 8, 1),
        1..=3 | 164 => (HASH, 8, 8, 1),
        195 => (PERCPU_HASH, 8, 8, 1),
        87..=89 => (QUEUE, 0, 8, 1),
        25 => (PERF_EVENT_ARRAY, 4, 4, 1),
        12 => (PROG_ARRAY, 4, 4, 1),
        51 => (DEVMAP, 4, 4, 1),
        130 | 131 | 134 => (RINGBUF, 0, 0, 4096),
        _ => return None,
    })
}

/// What a probe program does differently from a well-formed call.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Probe {
    /// Nothing: every argument as the prototype wants it.
    Nothing,
    /// Memory argument `i` (0-based) is uninitialised stack.
    Uninitialised(usize),
    /// Argument `i` is of the wrong kind: a non-null scalar where memory is wanted, the frame
    /// pointer anywhere else.
    WrongKind(usize),
}

/// A program calling helper `id` as `probe` says, `map_fd` as its map if it takes one; then
/// reading a byte at r0 if `deref_r0`. `None` when an argument is of a kind this probe cannot
/// supply (a function, a ring buffer record, ...).
fn probe_program(
    id: u32,
    p: &HelperPrototype,
    probe: Probe,
    map_fd: Option<i32>,
    deref_r0: bool,
) -> Option<Vec<Insn>> {
    let mut v = vec![
        Insn::new(MOV64_REG, 6, 1, 0, 0),
        Insn::new(STORE_DW_IMM, 10, 0, INITIALISED as i16, 0),
    ];
    for (i, arg) in p.args[..p.arg_count()].iter().enumerate() {
        let r = i as u8 + 1;
        // The verifier checks arguments in order and stops at the first wrong one: those after
        // the probed one need not be well-formed.
        if matches!(probe, Probe::WrongKind(k) if i > k) {
            v.push(Insn::new(MOV64_IMM, r, 0, 0, 0));
            continue;
        }
        if probe == Probe::WrongKind(i) {
            v.push(if is_mem(*arg) {
                Insn::new(MOV64_IMM, r, 0, 0, 1)
            } else {
                Insn::new(MOV64_REG, r, 10, 0, 0)
            });
            continue;
        }
        match arg {
            ArgType::PtrToCtx => v.push(Insn::new(MOV64_REG, r, 6, 0, 0)),
            ArgType::ConstMapPtr => {
                v.push(Insn::new(LDDW, r, BPF_PSEUDO_MAP_FD, 0, map_fd?));
                v.push(Insn::new(0, 0, 0, 0, 0));
            }
            ArgType::PtrToMapKey
            | ArgType::PtrToMapValue
            | ArgType::PtrToUninitMapValue
            | ArgType::PtrToReadonlyMem
            | ArgType::PtrToReadonlyMemOrNull
            | ArgType::PtrToUninitMem
            | ArgType::PtrToWritableMemOrNull
            | ArgType::PtrToWritableMem
            | ArgType::PtrToFixedSizeMem { size: 4 }
            | ArgType::PtrToFixedSizeUninitMem { size: 8 } => {
                let at = if probe == Probe::Uninitialised(i) {
                    UNINITIALISED
                } else {
                    INITIALISED
                };
                v.push(Insn::new(MOV64_REG, r, 10, 0, 0));
                v.push(Insn::new(ADD64_IMM, r, 0, 0, at));
            }
            ArgType::ConstSize | ArgType::ConstSizeOrZero | ArgType::ConstAllocSizeOrZero => {
                v.push(Insn::new(MOV64_IMM, r, 0, 0, 8))
            }
            ArgType::Anything => v.push(Insn::new(MOV64_IMM, r, 0, 0, 0)),
            _ => return None,
        }
    }
    v.push(Insn::new(CALL, 0, 0, 0, id as i32));
    if deref_r0 {
        v.push(Insn::new(LOAD_B, 1, 0, 0, 0));
    }
    v.push(Insn::new(MOV64_IMM, 0, 0, 0, 0));
    v.push(Insn::new(EXIT, 0, 0, 0, 0));
    Some(v)
}

/// Every helper the engine implements, with its prototype.
/// Helpers a locked-down kernel (`LOCKDOWN_BPF_WRITE_USER`, as on the recording host) offers to
/// no program: `bpf_probe_write_user`. It cannot be asked; helper_prototypes.rs says why ours
/// follows the unlocked kernel.
const WITHHELD_UNDER_LOCKDOWN: &[u32] = &[36];

fn implemented() -> BTreeMap<u32, (String, HelperPrototype)> {
    all_helpers()
        .iter()
        .filter(|h| !WITHHELD_UNDER_LOCKDOWN.contains(&h.id))
        .map(|h| (h.id, (h.name.clone(), h.prototype)))
        .collect()
}

/// The kernel program type a probe of a helper with prototype `p` is loaded as.
fn kernel_type(p: &HelperPrototype) -> Option<KernelProgType> {
    [
        KernelProgType::SocketFilter,
        KernelProgType::Xdp,
        KernelProgType::SchedCls,
        KernelProgType::Kprobe,
    ]
    .into_iter()
    .find(|t| p.prog_types.contains(*t))
}

fn is_mem(a: ArgType) -> bool {
    a.is_sized_mem()
        || matches!(
            a,
            ArgType::PtrToFixedSizeUninitMem { .. }
                | ArgType::PtrToFixedSizeMem { .. }
                | ArgType::PtrToMapKey
                | ArgType::PtrToMapValue
                | ArgType::PtrToUninitMapValue
        )
}

/// What our prototype says: may the memory be uninitialised?
fn may_be_uninitialised(a: ArgType) -> bool {
    matches!(
        a,
        ArgType::PtrToUninitMem
            | ArgType::PtrToFixedSizeUninitMem { .. }
            | ArgType::PtrToUninitMapValue
    )
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod kernel {
    use ebpf_vm::isa::insn::encode_all;
    use ebpf_vm::isa::Insn;

    extern "C" {
        fn syscall(number: i64, ...) -> i64;
        fn close(fd: i32) -> i32;
        fn geteuid() -> u32;
    }

    const SYS_BPF: i64 = 321;
    const SYS_CAPGET: i64 = 125;
    const SYS_CAPSET: i64 = 126;
    const BPF_MAP_CREATE: i64 = 0;
    const BPF_PROG_LOAD: i64 = 5;
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_PERFMON: u32 = 38;

    /// Runs `f` on a thread without CAP_PERFMON and CAP_SYS_ADMIN in its effective set (the
    /// rest of the process keeps its capabilities: they are per thread).
    pub fn without_perfmon<T: Send>(
        f: impl FnOnce() -> Result<T, String> + Send,
    ) -> Result<T, String> {
        std::thread::scope(|s| {
            s.spawn(|| {
                // struct __user_cap_header_struct { u32 version; int pid; } and two
                // struct __user_cap_data_struct { u32 effective, permitted, inheritable; }.
                let header = [LINUX_CAPABILITY_VERSION_3, 0];
                let mut data = [0u32; 6];
                // SAFETY: header and data have the layouts capget/capset take (version 3: two
                // data structs); pid 0 is the calling thread.
                if unsafe { syscall(SYS_CAPGET, header.as_ptr(), data.as_mut_ptr()) } != 0 {
                    return Err("capget failed".to_string());
                }
                for cap in [CAP_SYS_ADMIN, CAP_PERFMON] {
                    data[3 * (cap / 32) as usize] &= !(1 << (cap % 32));
                }
                // SAFETY: as above.
                if unsafe { syscall(SYS_CAPSET, header.as_ptr(), data.as_ptr()) } != 0 {
                    return Err("capset failed".to_string());
                }
                f()
            })
            .join()
            .unwrap_or_else(|_| Err("the probing thread panicked".to_string()))
        })
    }

    pub fn usable() -> Result<(), String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { geteuid() } != 0 {
            return Err("not root: the bpf syscall needs CAP_BPF and CAP_PERFMON".into());
        }
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        if !release.starts_with("6.18.") {
            return Err(format!(
                "the prototypes are Linux 6.18's, this kernel is {}",
                release.trim()
            ));
        }
        // `r0 = 0; exit` as a socket filter: refused only where the syscall itself is (a
        // seccomp filter, a container without the capability).
        let trivial = [Insn::new(0xb7, 0, 0, 0, 0), Insn::new(0x95, 0, 0, 0, 0)];
        load(1, &trivial).map_err(|log| format!("the kernel refuses even `r0 = 0; exit` ({log:?})"))
    }

    /// A map (`BPF_MAP_CREATE`), closed on drop.
    pub struct Map(pub i32);

    impl Drop for Map {
        fn drop(&mut self) {
            // SAFETY: the descriptor `create_map` returned, closed once.
            unsafe { close(self.0) };
        }
    }

    pub fn create_map(
        (map_type, key_size, value_size, max_entries): (u32, u32, u32, u32),
    ) -> Result<Map, String> {
        let mut attr = [0u8; 72];
        for (i, v) in [map_type, key_size, value_size, max_entries]
            .iter()
            .enumerate()
        {
            attr[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
        }
        // SAFETY: `attr` is a zeroed union bpf_attr prefix for BPF_MAP_CREATE.
        let fd = unsafe { syscall(SYS_BPF, BPF_MAP_CREATE, attr.as_ptr(), attr.len() as u32) };
        if fd < 0 {
            return Err(format!("BPF_MAP_CREATE of type {map_type} failed"));
        }
        Ok(Map(fd as i32))
    }

    /// Loads `insns` as a GPL program of `prog_type`: Ok(()) if the kernel accepts it, else the
    /// verifier's log.
    pub fn load(prog_type: u32, insns: &[Insn]) -> Result<(), String> {
        let code = encode_all(insns);
        let license = b"GPL\0";
        let mut log = vec![0u8; 1 << 16];
        // union bpf_attr for BPF_PROG_LOAD, the fields up to log_buf (the rest zero).
        let mut attr = [0u8; 128];
        attr[0..4].copy_from_slice(&prog_type.to_le_bytes());
        attr[4..8].copy_from_slice(&(insns.len() as u32).to_le_bytes());
        attr[8..16].copy_from_slice(&(code.as_ptr() as u64).to_le_bytes());
        attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_le_bytes());
        attr[24..28].copy_from_slice(&1u32.to_le_bytes());
        attr[28..32].copy_from_slice(&(log.len() as u32).to_le_bytes());
        attr[32..40].copy_from_slice(&(log.as_mut_ptr() as u64).to_le_bytes());
        // SAFETY: `attr` points to a zeroed union bpf_attr prefix whose pointers (code, license,
        // log) outlive the call.
        let fd = unsafe { syscall(SYS_BPF, BPF_PROG_LOAD, attr.as_ptr(), attr.len() as u32) };
        if fd >= 0 {
            // SAFETY: the descriptor the call returned, closed once.
            unsafe { close(fd as i32) };
            return Ok(());
        }
        let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
        Err(String::from_utf8_lossy(&log[..end]).into_owned())
    }
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[test]
fn memory_arguments_read_or_written_as_the_kernel_checks_them() {
    if let Err(why) = kernel::usable() {
        eprintln!("skipped: {why}");
        return;
    }
    let helpers = implemented();
    let (asked, wrong) = kernel::without_perfmon(|| {
        let mut asked = Vec::new();
        let mut wrong = Vec::new();
        for (id, (name, p)) in &helpers {
            let Some(prog_type) = kernel_type(p) else {
                continue;
            };
            for (i, arg) in p.args.iter().enumerate() {
                if !is_mem(*arg) {
                    continue;
                }
                let map = map_for(*id).map(kernel::create_map).transpose()?;
                let Some(insns) = probe_program(
                    *id,
                    p,
                    Probe::Uninitialised(i),
                    map.as_ref().map(|m| m.0),
                    false,
                ) else {
                    break;
                };
                let kernel_says = match kernel::load(prog_type as u32, &insns) {
                    Ok(()) => true,
                    Err(log) if log.contains("invalid read from stack") => false,
                    Err(log) if log.contains("invalid indirect read from stack") => false,
                    // Offered only with CAP_PERFMON: not askable on this thread.
                    Err(log) if log.contains("cannot use helper") => break,
                    // The program type itself needs CAP_PERFMON (kprobe): refused before the
                    // verifier runs, with no log.
                    Err(log) if log.is_empty() => break,
                    Err(log) => {
                        return Err(format!(
                            "{id} {name} arg {}: unexpected refusal:\n{log}",
                            i + 1
                        ))
                    }
                };
                asked.push(format!("{name} arg{}", i + 1));
                if kernel_says != may_be_uninitialised(*arg) {
                    wrong.push(format!(
                        "{id} {name} arg{} {}: the kernel {} uninitialised memory",
                        i + 1,
                        arg.kernel_name(),
                        if kernel_says { "accepts" } else { "refuses" }
                    ));
                }
            }
        }
        Ok((asked, wrong))
    })
    .unwrap_or_else(|e| panic!("{e}"));
    // What this probe can ask: the arguments of every helper whose arguments it can supply and
    // that the kernel offers without CAP_PERFMON.
    assert_eq!(
        asked,
        [
            "bpf_map_lookup_elem arg2",
            "bpf_map_update_elem arg2",
            "bpf_map_update_elem arg3",
            "bpf_map_delete_elem arg2",
            "bpf_skb_store_bytes arg3",
            "bpf_skb_get_tunnel_key arg2",
            "bpf_skb_set_tunnel_key arg2",
            "bpf_perf_event_output arg4",
            "bpf_skb_load_bytes arg3",
            "bpf_csum_diff arg1",
            "bpf_csum_diff arg3",
            "bpf_fib_lookup arg2",
            "bpf_map_push_elem arg2",
            "bpf_map_pop_elem arg2",
            "bpf_map_peek_elem arg2",
            "bpf_strtol arg1",
            "bpf_strtol arg4",
            "bpf_strtoul arg1",
            "bpf_strtoul arg4",
            "bpf_ringbuf_output arg2",
            "bpf_redirect_neigh arg2",
            "bpf_check_mtu arg3",
            "bpf_xdp_load_bytes arg3",
            "bpf_xdp_store_bytes arg3",
            "bpf_map_lookup_percpu_elem arg2",
        ]
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Whether the kernel refused the helper to the program type altogether. Builds of one release
/// differ there (6.18.44-fc-v1300 offers XDP no `bpf_xdp_adjust_meta`, v1252 does); which types
/// are offered which helper is `helper_prototypes`' table test, held to the build it was
/// recorded on, so here such a helper is left unasked and named.
fn not_offered(log: &str) -> bool {
    log.contains("program of this type cannot use helper")
}

fn report_unoffered(unoffered: &[String]) {
    if !unoffered.is_empty() {
        eprintln!(
            "not asked: this kernel does not offer {} to the program type the recorded table gives",
            unoffered.join(", ")
        );
    }
}

/// What r0 is after the call, as the verifier's refusal of a read through it names it.
fn ret_type_in_log(log: &str) -> Option<RetType> {
    if log.contains("R0 !read_ok") {
        Some(RetType::Void)
    } else if log.contains("invalid mem access 'scalar'") {
        Some(RetType::Integer)
    } else if log.contains("invalid mem access 'map_value_or_null'") {
        Some(RetType::PtrToMapValueOrNull)
    } else if log.contains("invalid mem access 'ringbuf_mem_or_null'") {
        Some(RetType::PtrToRingbufMemOrNull)
    } else {
        None
    }
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[test]
fn return_types_as_the_kernel_types_r0() {
    if let Err(why) = kernel::usable() {
        eprintln!("skipped: {why}");
        return;
    }
    let mut asked = Vec::new();
    let mut wrong = Vec::new();
    let mut unoffered = Vec::new();
    for (id, (name, p)) in implemented() {
        let Some(prog_type) = kernel_type(&p) else {
            continue;
        };
        let map = map_for(id).map(kernel::create_map).transpose().unwrap();
        let Some(insns) = probe_program(id, &p, Probe::Nothing, map.as_ref().map(|m| m.0), true)
        else {
            continue;
        };
        let kernel_says = match kernel::load(prog_type as u32, &insns) {
            // Only a trusted BTF pointer (the current task) may be read without a check.
            Ok(()) => RetType::PtrToBtfIdTrusted,
            Err(log) if not_offered(&log) => {
                unoffered.push(format!("{id} {name}"));
                continue;
            }
            Err(log) => ret_type_in_log(&log)
                .unwrap_or_else(|| panic!("{id} {name}: unexpected refusal:\n{log}")),
        };
        asked.push(name.clone());
        if kernel_says != p.ret {
            wrong.push(format!(
                "{id} {name}: ours {}, the kernel's {kernel_says}",
                p.ret
            ));
        }
    }
    // Every helper whose arguments the probe can supply: all but spin_lock/unlock (a map value
    // with a BTF-described lock), ringbuf_submit/discard (a reserved record), for_each_map_elem
    // and loop (a callback) and snprintf (a constant string).
    report_unoffered(&unoffered);
    assert_eq!(asked.len() + unoffered.len(), 73, "{asked:?}");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The kind of register an argument wants, in the words of the verifier's "expected=" list:
/// `ctx`, `map_ptr`, `scalar`, or `memory` (a list of pointer kinds with the stack and map values).
fn kind_of(a: ArgType) -> &'static str {
    match a {
        ArgType::PtrToCtx => "ctx",
        ArgType::ConstMapPtr => "map_ptr",
        ArgType::ConstSize | ArgType::ConstSizeOrZero | ArgType::ConstAllocSizeOrZero => "scalar",
        // A map value holding a `struct bpf_spin_lock`, or a BTF object (`ptr_`) holding one.
        ArgType::PtrToSpinLock => "map_value, ptr_",
        ArgType::PtrToRingbufMemRelease => "ringbuf_mem",
        ArgType::PtrToFunc => "func",
        // The string must be in a read-only map value (the kernel checks that further on).
        ArgType::PtrToConstStr => "map_value",
        a if is_mem(a) => "memory",
        _ => "other",
    }
}

/// The kind the verifier's "R<n> type=... expected=..." line of `log` names for register `reg`.
fn expected_kind(log: &str, reg: usize) -> Option<String> {
    let head = format!("R{reg} type=");
    let line = log.lines().find(|l| l.starts_with(&head))?;
    let list = line.split("expected=").nth(1)?.trim();
    Some(match list {
        "ctx" | "map_ptr" | "scalar" => list.to_string(),
        l if l.contains("fp") && l.contains("map_value") => "memory".to_string(),
        other => other.to_string(),
    })
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[test]
fn argument_kinds_as_the_kernel_expects_them() {
    if let Err(why) = kernel::usable() {
        eprintln!("skipped: {why}");
        return;
    }
    let mut asked = 0;
    let mut wrong = Vec::new();
    let (mut unoffered, mut unasked) = (Vec::new(), 0);
    for (id, (name, p)) in implemented() {
        let Some(prog_type) = kernel_type(&p) else {
            continue;
        };
        for (i, arg) in p.args[..p.arg_count()].iter().enumerate() {
            if *arg == ArgType::Anything {
                continue;
            }
            let map = map_for(id).map(kernel::create_map).transpose().unwrap();
            let Some(insns) = probe_program(
                id,
                &p,
                Probe::WrongKind(i),
                map.as_ref().map(|m| m.0),
                false,
            ) else {
                break;
            };
            let log = match kernel::load(prog_type as u32, &insns) {
                Ok(()) => panic!(
                    "{id} {name} arg{}: the kernel took an argument of the wrong kind",
                    i + 1
                ),
                Err(log) if not_offered(&log) => {
                    unoffered.push(format!("{id} {name}"));
                    unasked += p.args[i..p.arg_count()]
                        .iter()
                        .filter(|a| **a != ArgType::Anything)
                        .count();
                    break;
                }
                Err(log) => log,
            };
            let Some(kernel_says) = expected_kind(&log, i + 1) else {
                panic!("{id} {name} arg{}: unexpected refusal:\n{log}", i + 1);
            };
            asked += 1;
            if kernel_says != kind_of(*arg) {
                wrong.push(format!(
                    "{id} {name} arg{} {}: the kernel expects {kernel_says}",
                    i + 1,
                    arg.kernel_name()
                ));
            }
        }
    }
    // Every argument but ARG_ANYTHING up to the first this probe cannot supply well-formed (a
    // callback, a reserved ring buffer record, a constant string, a lock in a map value).
    report_unoffered(&unoffered);
    assert_eq!(asked + unasked, 118);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
