//! `NativeProgram`: a loaded program and its test runs (on the calling thread, on the thread pool,
//! one packet or a batch). Converts options and results; the engine does the work.

use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ebpf_vm::helpers::output::{perf_record_bytes, PerfRecord, PerfSink};
use ebpf_vm::{
    AddressSpace, BatchInput, CancelToken, ErrorCode, MemoryImage, PointerLeaks, ProcessInfo,
    Program, ProgramOptions, RunInput, RunLimits, SocketInfo, TestRunInput, TestRunOutput, Trap,
};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use ebpf_vm::context::net::{Interface, Network, Route, RouteKind};
use ebpf_vm::context::redirect::{Redirect, Via};
use ebpf_vm::context::tunnel::TunnelInfo;

use crate::batch::{check_lengths, run_packets, NativeBatch, NativeBatchError, PackedRuns};
use crate::errors::{einval, thrown, Code};
use crate::names::{AttachTypeName, EngineName, ProgramTypeName, SafetyMode};
use crate::{invalid, NativeError};

/// Options of `loadProgram`, already checked by the TypeScript layer.
#[napi(object)]
pub struct NativeProgramOptions {
    pub prog_type: ProgramTypeName,
    pub engine: EngineName,
    pub mode: SafetyMode,
    /// Instruction budget of a run (checked mode).
    pub budget: Option<f64>,
    /// Ids of the maps the program refers to: `lddw` with src 5 (map) or 6 (map value) and
    /// `imm = i` means `mapIds[i]`.
    pub map_ids: Option<Vec<u32>>,
    /// Keep `bpf_perf_event_output` records for `takePerfRecords` (else the helper returns
    /// -ENOENT, as the kernel does with no perf event behind the slot).
    pub perf_events: Option<bool>,
    /// Bytes of perf records a run may output, and that wait for `takePerfRecords` (records
    /// beyond are dropped and counted; default 256 KiB).
    pub perf_buffer_bytes: Option<f64>,
    /// Helper ids served by the JavaScript dispatcher given to `loadProgram`, and their names.
    pub js_helper_ids: Option<Vec<u32>>,
    pub js_helper_names: Option<Vec<String>>,
    /// Their prototypes, in the same order (what one leaves out is "scalars in, scalar out").
    pub js_helper_prototypes: Option<Vec<crate::prototypes::NativeHelperDeclaration>>,
    /// 'refuse' (default) | 'allow': whether a run may let host addresses out.
    pub pointer_leaks: Option<String>,
    /// JIT constant blinding (default true).
    pub blind_constants: Option<bool>,
    /// First instruction slots of the program's functions, from the object's function info
    /// (`ProgramSpec.subprograms`, BTF `func_info`).
    pub func_entries: Option<Vec<u32>>,
    /// Mode 'verified': the verifier's log level, 0-2 (default 0).
    pub log_level: Option<u32>,
    /// The program's license (default "GPL"): GPL-only helpers need a GPL-compatible one.
    pub license: Option<String>,
    /// Mode 'verified', type 'raw': the data length every run gets.
    pub data_size: Option<u32>,
    /// The attach type the program is loaded for ('xdp_devmap'), if not the type's default.
    pub expected_attach_type: Option<AttachTypeName>,
    /// BTF line info (`ProgramSpec.lineInfo`): the verifier's log shows the C source lines.
    pub line_info: Option<Vec<NativeLineInfo>>,
    /// Count instruction and branch coverage over runs (`coverage`).
    pub coverage: Option<bool>,
    /// Mode 'verified': the global functions (BTF linkage global) and their prototypes, as the
    /// TypeScript loader resolved them from BTF (`ProgramOptions.globalFunctions`).
    pub global_functions: Option<Vec<NativeGlobalFunction>>,
    /// Mode 'verified': the kernel's extra rules for loads without CAP_BPF/CAP_PERFMON.
    pub unprivileged: Option<bool>,
    /// Mode 'verified': keep r0 precise at exit and report its range (`exitR0`).
    pub exit_range: Option<bool>,
    /// Mode 'verified': meter runs by the budget (`insnCount`, `budget`), as mode 'checked'
    /// always does (default false: verified runs are not metered).
    pub meter: Option<bool>,
}

/// A global function: its entry slot, its name and its prototype's argument types.
#[napi(object)]
pub struct NativeGlobalFunction {
    pub insn: u32,
    pub name: String,
    /// Per argument: 'scalar', 'ctx', 'mem' (`size` bytes, never NULL) or 'mem_or_null'.
    pub args: Vec<NativeFuncArg>,
    /// The kernel's message for a prototype it cannot use (the program is refused where the
    /// function is called).
    pub unsupported: Option<String>,
}

#[napi(object)]
pub struct NativeFuncArg {
    pub kind: String,
    pub size: Option<u32>,
}

/// The engine's form of a global function's description.
fn global_function(
    g: &NativeGlobalFunction,
) -> std::result::Result<ebpf_vm::verifier::GlobalFunction, Box<NativeError>> {
    use ebpf_vm::verifier::{FuncArg, GlobalFunction};
    let args = match &g.unsupported {
        Some(message) => Err(message.clone()),
        None => {
            let args = (g.args.iter().enumerate())
                .map(|(i, a)| match (a.kind.as_str(), a.size) {
                    ("scalar", _) => Ok(FuncArg::Scalar),
                    ("ctx", _) => Ok(FuncArg::Ctx),
                    ("mem", Some(size)) => Ok(FuncArg::Mem { size, nullable: false }),
                    ("mem_or_null", Some(size)) => Ok(FuncArg::Mem { size, nullable: true }),
                    (kind, _) => Err(Box::new(invalid(format!(
                            "globalFunctions: argument {i} of '{}' is '{kind}', not 'scalar', 'ctx', or 'mem'/'mem_or_null' with a size",
                            g.name
                    )))),
                })
                .collect::<std::result::Result<Vec<_>, _>>()?;
            if args.len() > 5 {
                return Err(Box::new(invalid(format!(
                    "globalFunctions: '{}' has {} arguments; at most 5",
                    g.name,
                    args.len()
                ))));
            }
            Ok(args)
        }
    };
    Ok(GlobalFunction {
        slot: g.insn as usize,
        name: g.name.clone(),
        args,
    })
}

/// One BTF line info record, as the TypeScript loader reads it from `.BTF.ext`.
#[napi(object)]
pub struct NativeLineInfo {
    pub insn: u32,
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub text: String,
}

/// One test run's input.
#[napi(object)]
pub struct NativeRunInput {
    pub data: Buffer,
    /// The context image (`__sk_buff`, `xdp_md`, or a tracing program's context bytes).
    pub ctx: Option<Buffer>,
    pub repeat: Option<u32>,
    pub budget: Option<f64>,
    /// Wall-clock limit of the call in milliseconds, from the call (every repetition, every
    /// packet of a batch); already checked by the TypeScript layer (finite, > 0).
    pub timeout_ms: Option<f64>,
    /// What `bpf_get_current_pid_tgid/uid_gid/comm` report.
    pub pid: Option<u32>,
    pub tgid: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub comm: Option<String>,
    /// What `bpf_get_current_task` / `_btf` return (an address in `memory`).
    pub task: Option<BigInt>,
    /// The packet's socket (`bpf_get_socket_cookie` / `_uid`); absent: the packet has none.
    pub socket: Option<NativeSocket>,
    /// What `bpf_jiffies64` returns; absent: the kernel's count on the engine's clock.
    pub jiffies: Option<BigInt>,
    /// Tracing programs: the memory images the probe-read helpers read.
    pub memory: Option<Vec<NativeMemoryImage>>,
    /// Tracing programs: the kernel and user call stacks (innermost frame first) that
    /// `bpf_get_stackid` / `bpf_get_stack` report; checked by the TypeScript layer.
    pub stack: Option<Vec<BigInt>>,
    pub user_stack: Option<Vec<BigInt>>,
    /// Tracing programs: what `bpf_get_attach_cookie` returns; checked by the TypeScript layer.
    pub attach_cookie: Option<BigInt>,
    /// Kprobes: what `bpf_get_func_ip` returns; checked by the TypeScript layer.
    pub func_ip: Option<BigInt>,
    /// tc: the tunnel metadata the packet arrives with; checked by the TypeScript layer.
    pub tunnel: Option<NativeTunnel>,
    /// tc and XDP: the interfaces and routes of `bpf_check_mtu`, `bpf_fib_lookup`,
    /// `bpf_clone_redirect`; checked by the TypeScript layer (addresses as bytes).
    pub network: Option<NativeNetwork>,
    /// Record an instruction trace of the (last) run that keeps this many steps; checked by
    /// the TypeScript layer.
    pub trace_limit: Option<u32>,
}

/// The socket a packet belongs to; checked by the TypeScript layer.
#[napi(object)]
pub struct NativeSocket {
    pub cookie: BigInt,
    pub uid: u32,
}

/// A signal a program asked `bpf_send_signal(_thread)` to send.
#[napi(object)]
pub struct NativeSignal {
    pub signal: u32,
    pub thread: bool,
}

/// Bytes at an address of a tracing run's address space; checked by the TypeScript layer.
#[napi(object)]
pub struct NativeMemoryImage {
    pub address: BigInt,
    pub bytes: Buffer,
    pub writable: Option<bool>,
}

/// A packet's tunnel metadata in `struct bpf_tunnel_key`'s terms (`remote`, `local`: 4 or 16
/// bytes, network order); checked by the TypeScript layer.
#[napi(object)]
pub struct NativeTunnel {
    pub ipv6: bool,
    pub id: BigInt,
    pub remote: Buffer,
    pub local: Buffer,
    pub tos: u32,
    pub ttl: u32,
    pub label: u32,
    pub flags: u32,
}

/// Received metadata: `remote` is the outer source, `local` the outer destination.
fn tunnel_in(t: &NativeTunnel) -> TunnelInfo {
    TunnelInfo {
        ipv6: t.ipv6,
        tx: false,
        id: unsigned64(&t.id),
        src: addr16(&t.remote),
        dst: addr16(&t.local),
        tos: t.tos as u8,
        ttl: t.ttl as u8,
        label: t.label,
        flags: t.flags as u16,
    }
}

/// Metadata set for transmit: `remote` is the outer destination, `local` the outer source.
fn tunnel_out(t: &TunnelInfo) -> NativeTunnel {
    let n = if t.ipv6 { 16 } else { 4 };
    NativeTunnel {
        ipv6: t.ipv6,
        id: BigInt::from(t.id),
        remote: t.dst[..n].to_vec().into(),
        local: t.src[..n].to_vec().into(),
        tos: t.tos as u32,
        ttl: t.ttl as u32,
        label: t.label,
        flags: t.flags as u32,
    }
}

/// The run's network (`context::net::Network`).
#[napi(object)]
pub struct NativeNetwork {
    pub interfaces: Vec<NativeInterface>,
    /// Absent: no table (every fib lookup is NOT_FWDED).
    pub routes: Option<Vec<NativeRoute>>,
}

#[napi(object)]
pub struct NativeInterface {
    pub ifindex: u32,
    pub mtu: u32,
    /// 6 bytes.
    pub mac: Buffer,
    pub forwarding: bool,
}

#[napi(object)]
pub struct NativeRoute {
    pub ipv6: bool,
    /// 4 or 16 bytes.
    pub dst: Buffer,
    pub prefix_len: u32,
    /// "unicast", "blackhole", "unreachable" or "prohibit".
    pub kind: String,
    pub ifindex: u32,
    pub gateway: Option<Buffer>,
    pub metric: u32,
    pub mtu: u32,
    /// 6 bytes: the next hop's MAC.
    pub neighbor: Option<Buffer>,
}

fn addr16(b: &[u8]) -> [u8; 16] {
    let mut a = [0u8; 16];
    let n = b.len().min(16);
    a[..n].copy_from_slice(&b[..n]);
    a
}

fn mac6(b: &[u8]) -> [u8; 6] {
    let mut a = [0u8; 6];
    let n = b.len().min(6);
    a[..n].copy_from_slice(&b[..n]);
    a
}

fn network(n: &NativeNetwork) -> Network {
    Network {
        interfaces: n
            .interfaces
            .iter()
            .map(|i| Interface {
                ifindex: i.ifindex,
                mtu: i.mtu,
                mac: mac6(&i.mac),
                forwarding: i.forwarding,
            })
            .collect(),
        routes: n
            .routes
            .iter()
            .flatten()
            .map(|r| Route {
                ipv6: r.ipv6,
                dst: addr16(&r.dst),
                prefix_len: r.prefix_len.min(128) as u8,
                kind: match r.kind.as_str() {
                    "blackhole" => RouteKind::Blackhole,
                    "unreachable" => RouteKind::Unreachable,
                    "prohibit" => RouteKind::Prohibit,
                    _ => RouteKind::Unicast,
                },
                ifindex: r.ifindex,
                gateway: r.gateway.as_ref().map(|g| addr16(g)),
                metric: r.metric,
                mtu: r.mtu,
                neighbor: r.neighbor.as_ref().map(|m| mac6(m)),
            })
            .collect(),
        has_table: n.routes.is_some(),
    }
}

/// A BigInt the TypeScript layer checked to be in 0..2^64, as a u64.
fn unsigned64(b: &BigInt) -> u64 {
    b.get_u64().1
}

#[napi(object)]
pub struct NativeRunResult {
    pub r0: BigInt,
    pub insn_count: f64,
    /// The data as the program left it (XDP: the packet between data and data_end).
    pub data: Buffer,
    pub ctx: Option<Buffer>,
    /// XDP: the metadata in front of the packet.
    pub meta: Option<Buffer>,
    /// tc: the whole `__sk_buff` as the program left it (`ctx` is the kernel's test-run view).
    pub skb: Option<Buffer>,
    /// tc: where the packet went (`TC_ACT_REDIRECT` after `bpf_redirect`).
    pub redirect: Option<NativeRedirect>,
    /// tc: the packets `bpf_clone_redirect` sent.
    pub clones: Vec<NativeClone>,
    /// tc: the tunnel metadata the program set (`bpf_skb_set_tunnel_key`).
    pub tunnel: Option<NativeTunnel>,
    /// Tracing: the writable memory images as the program left them (`bpf_probe_write_user`).
    pub memory: Vec<NativeMemoryImage>,
    /// What the program asked `bpf_send_signal(_thread)` to send (nothing is sent).
    pub signals: Vec<NativeSignal>,
    pub duration_ns: f64,
    pub error: Option<NativeError>,
    /// The run's instruction trace, when `trace_limit` asked for one (also when it trapped).
    pub trace: Option<crate::trace::NativeTrace>,
}

/// The target of a redirect: an interface and `bpf_redirect`'s flags (`BPF_F_INGRESS`), or a
/// `bpf_redirect_map` entry, and how a tc redirect goes.
#[napi(object)]
pub struct NativeRedirect {
    pub ifindex: u32,
    pub flags: u32,
    /// `bpf_redirect_map`: the map's name, id and type, and the key.
    pub map: Option<String>,
    pub map_id: Option<u32>,
    pub map_type: Option<String>,
    pub key: Option<u32>,
    /// "redirect", "neigh" or "peer".
    pub via: String,
    /// `bpf_redirect_neigh`'s `struct bpf_redir_neigh`, when given.
    pub nexthop: Option<Buffer>,
}

/// A packet `bpf_clone_redirect` sent.
#[napi(object)]
pub struct NativeClone {
    pub ifindex: u32,
    pub flags: u32,
    pub packet: Buffer,
}

fn redirect_to_js(r: Redirect) -> NativeRedirect {
    let (via, nexthop) = match r.via {
        Via::Redirect => ("redirect", None),
        Via::Neigh(nh) => ("neigh", nh.map(|b| Buffer::from(b.to_vec()))),
        Via::Peer => ("peer", None),
    };
    NativeRedirect {
        ifindex: r.ifindex,
        flags: r.flags as u32,
        map: r.map.as_ref().map(|m| m.map_name.clone()),
        map_id: r.map.as_ref().map(|m| m.map_id),
        map_type: r.map.as_ref().map(|m| m.map_type.name().to_string()),
        key: r.map.as_ref().map(|m| m.key),
        via: via.to_string(),
        nexthop,
    }
}

#[napi(object)]
pub struct NativePerfRecords {
    pub records: Vec<NativePerfRecord>,
    /// Records dropped since the last call.
    pub lost: f64,
}

#[napi(object)]
pub struct NativePerfRecord {
    /// The perf event array slot (the running CPU, 0, for BPF_F_CURRENT_CPU).
    pub index: u32,
    pub data: Buffer,
}

/// Perf records waiting for `takePerfRecords`, bounded as a perf ring that is read after each call
/// (a run, a batch, `repeat` runs): `limit` bytes of records in the kernel's layout; records beyond
/// are counted in `lost`.
#[derive(Default)]
pub struct PerfBuffer {
    records: Vec<PerfRecord>,
    bytes: u64,
    lost: u64,
    limit: u64,
}

impl PerfBuffer {
    /// Keeps `record`, or counts it lost when it does not fit.
    fn push(&mut self, record: &PerfRecord) -> bool {
        let size = perf_record_bytes(record.data.len() as u64);
        if self.bytes + size > self.limit {
            self.lost += 1;
            return false;
        }
        self.bytes += size;
        self.records.push(record.clone());
        true
    }
}

type SharedPerf = Arc<Mutex<PerfBuffer>>;

fn lock(perf: &SharedPerf) -> std::sync::MutexGuard<'_, PerfBuffer> {
    perf.lock().unwrap_or_else(|e| e.into_inner())
}

fn parse_options(
    o: &NativeProgramOptions,
    perf: &SharedPerf,
) -> std::result::Result<ProgramOptions, Box<NativeError>> {
    let (prog_type, engine, mode) = (o.prog_type.into(), o.engine.into(), o.mode.into());
    let pointer_leaks = match o.pointer_leaks.as_deref() {
        None | Some("refuse") => PointerLeaks::Refuse,
        Some("allow") => PointerLeaks::Allow,
        Some(other) => {
            return Err(Box::new(invalid(format!(
                "pointerLeaks must be 'allow' or 'refuse', got '{other}'"
            ))))
        }
    };
    let mut options = ProgramOptions {
        prog_type,
        engine,
        mode,
        pointer_leaks,
        blind_constants: o.blind_constants.unwrap_or(true),
        coverage: o.coverage.unwrap_or(false),
        // A global function starts a function, whether or not the loader said so.
        func_entries: (o.func_entries.iter().flatten().copied())
            .chain(o.global_functions.iter().flatten().map(|g| g.insn))
            .map(|e| e as usize)
            .collect(),
        log_level: o.log_level.unwrap_or(0),
        gpl_compatible: o
            .license
            .as_deref()
            .is_none_or(ebpf_vm::license_is_gpl_compatible),
        data_size: o.data_size,
        expected_attach_type: o.expected_attach_type.map(Into::into),
        source_lines: (o.line_info.iter().flatten())
            .map(|l| ebpf_vm::verification::SourceLine {
                slot: l.insn as usize,
                file: l.file.clone(),
                line: l.line,
                column: l.column,
                text: l.text.clone(),
            })
            .collect(),
        global_functions: (o.global_functions.iter().flatten())
            .map(global_function)
            .collect::<std::result::Result<Vec<_>, _>>()?,
        unprivileged: o.unprivileged.unwrap_or(false),
        exit_range: o.exit_range.unwrap_or(false),
        meter: o.meter.unwrap_or(false),
        ..ProgramOptions::default()
    };
    if options.log_level > ebpf_vm::verification::MAX_LOG_LEVEL {
        return Err(Box::new(invalid(format!(
            "logLevel must be 0, 1 or 2, got {}",
            options.log_level
        ))));
    }
    if let Some(b) = o.budget {
        if !(b.is_finite() && b >= 1.0) {
            return Err(Box::new(invalid(format!(
                "budget must be a positive integer, got {b}"
            ))));
        }
        options.budget = b as u64;
    }
    for id in o.map_ids.iter().flatten() {
        let map = ebpf_vm::maps::registry::by_id(*id)
            .ok_or_else(|| Box::new(invalid(format!("no map with id {id}"))))?;
        options.maps.push(map);
    }
    if let Some(b) = o.perf_buffer_bytes {
        if !(b.is_finite() && b >= 1.0 && b.fract() == 0.0 && b <= (1u64 << 30) as f64) {
            return Err(Box::new(invalid(format!(
                "perfBufferBytes must be an integer from 1 to 2^30, got {b}"
            ))));
        }
        options.perf_buffer_bytes = b as u64;
    }
    lock(perf).limit = options.perf_buffer_bytes;
    if o.perf_events.unwrap_or(false) {
        let (records, lost) = (perf.clone(), perf.clone());
        options.perf_sink = Some(
            PerfSink::accepting(move |r| lock(&records).push(r))
                .with_lost(move |n| lock(&lost).lost += n),
        );
    }
    Ok(options)
}

/// The limits of a call: its deadline (from `timeout_ms`, measured from now) and the cancel
/// token of an async call.
fn run_limits(i: &NativeRunInput, cancel: Option<&NativeCancelToken>) -> RunLimits {
    let deadline = i
        .timeout_ms
        .filter(|ms| ms.is_finite() && *ms > 0.0)
        .map(|ms| Instant::now() + Duration::from_secs_f64((ms / 1000.0).min(1e9)));
    RunLimits {
        deadline,
        cancel: cancel.map(|c| c.token.clone()),
    }
}

fn test_input(i: &NativeRunInput, data: &[u8], limits: &RunLimits) -> TestRunInput {
    let process = ProcessInfo {
        pid: i.pid.unwrap_or(0),
        tgid: i.tgid.unwrap_or(0),
        uid: i.uid.unwrap_or(0),
        gid: i.gid.unwrap_or(0),
        comm: i
            .comm
            .as_deref()
            .map(ProcessInfo::comm_from)
            .unwrap_or_default(),
        task: i.task.as_ref().map(unsigned64).unwrap_or(0),
    };
    let memory = AddressSpace::new(
        i.memory
            .iter()
            .flatten()
            .map(|m| MemoryImage {
                address: unsigned64(&m.address),
                bytes: m.bytes.to_vec(),
                writable: m.writable.unwrap_or(false),
            })
            .collect(),
    )
    .with_stacks(
        i.stack.iter().flatten().map(unsigned64).collect(),
        i.user_stack.iter().flatten().map(unsigned64).collect(),
    )
    .with_cookie(i.attach_cookie.as_ref().map(unsigned64).unwrap_or(0))
    .with_func_ip(i.func_ip.as_ref().map(unsigned64).unwrap_or(0));
    TestRunInput {
        data: data.to_vec(),
        ctx: i.ctx.as_ref().map(|c| c.to_vec()),
        process,
        socket: i.socket.as_ref().map(|s| SocketInfo {
            cookie: unsigned64(&s.cookie),
            uid: s.uid,
        }),
        jiffies: i.jiffies.as_ref().map(unsigned64),
        memory,
        network: i.network.as_ref().map(|n| Arc::new(network(n))),
        tunnel: i.tunnel.as_ref().map(tunnel_in),
        repeat: i.repeat.unwrap_or(1),
        budget: i
            .budget
            .filter(|b| b.is_finite() && *b >= 1.0)
            .map(|b| b as u64),
        limits: limits.clone(),
        trace_limit: i.trace_limit.map(|n| n as usize),
    }
}

/// A cancellation flag shared with runs on the thread pool: the TypeScript layer cancels it when
/// the call's `AbortSignal` fires, and the run stops at its next check with an `aborted` trap.
#[napi]
pub struct NativeCancelToken {
    token: CancelToken,
}

#[napi]
impl NativeCancelToken {
    #[napi(constructor)]
    pub fn new() -> Self {
        NativeCancelToken {
            token: CancelToken::new(),
        }
    }

    #[napi]
    pub fn cancel(&self) {
        self.token.cancel();
    }
}

impl Default for NativeCancelToken {
    fn default() -> Self {
        Self::new()
    }
}

fn to_js(out: TestRunOutput) -> NativeRunResult {
    let (r0, error) = match out.result {
        Ok(r0) => (r0, None),
        Err(trap) => (0, Some(trap.into())),
    };
    NativeRunResult {
        r0: BigInt::from(r0),
        insn_count: out.insn_count as f64,
        data: out.data.into(),
        ctx: out.ctx.map(Buffer::from),
        meta: out.meta.map(Buffer::from),
        skb: out.skb.map(Buffer::from),
        redirect: out.redirect.map(redirect_to_js),
        clones: out
            .clones
            .into_iter()
            .map(|c| NativeClone {
                ifindex: c.ifindex,
                flags: c.flags as u32,
                packet: c.packet.into(),
            })
            .collect(),
        tunnel: out.tunnel.as_ref().map(tunnel_out),
        memory: out
            .memory
            .into_iter()
            .map(|m| NativeMemoryImage {
                address: BigInt::from(m.address),
                bytes: m.bytes.into(),
                writable: Some(true),
            })
            .collect(),
        signals: out
            .signals
            .iter()
            .map(|s| NativeSignal {
                signal: s.signal,
                thread: s.thread,
            })
            .collect(),
        duration_ns: out.duration_ns,
        error,
        trace: out.trace.as_ref().map(crate::trace::to_js),
    }
}

#[napi]
pub struct NativeProgram {
    pub(crate) inner: Arc<Program>,
    /// Process-unique id, as the kernel's program id (what a prog_array lookup returns).
    pub(crate) id: u32,
    perf: SharedPerf,
    /// The trap of the last failed `run_in_place` / `run_no_data`.
    last_error: Mutex<Option<Trap>>,
    /// The array `set_scratch` was given, kept alive for `scratch_words`.
    scratch: Mutex<Option<BigUint64Array>>,
    /// Its three elements, where `run_no_data` reports (null before `set_scratch`): read with no
    /// lock, as a lock and its release cost a trivial run a tenth of its time.
    scratch_words: AtomicPtr<u64>,
}

fn next_program_id() -> u32 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// What the verifier reported of an accepted program (mode 'verified').
#[napi(object)]
pub struct NativeVerifierStats {
    pub processed_insns: f64,
    pub verification_time_ns: f64,
    pub total_states: u32,
    pub peak_states: u32,
    pub max_states_per_insn: u32,
    /// Per function, main first: the bytes of stack it uses.
    pub stack_depth: Vec<u32>,
    /// The range r0 lies in at exit, where the verifier proves one for every run.
    pub exit_r0: Option<NativeExitRange>,
}

/// Signed and unsigned bounds of r0 at exit.
#[napi(object)]
pub struct NativeExitRange {
    pub smin: BigInt,
    pub smax: BigInt,
    pub umin: BigInt,
    pub umax: BigInt,
}

#[napi]
impl NativeProgram {
    #[napi(getter)]
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Mode 'verified': what the verifier reported; undefined in mode 'checked'.
    #[napi(getter)]
    pub fn verifier_stats(&self) -> Option<NativeVerifierStats> {
        self.inner.verifier_report().map(|r| NativeVerifierStats {
            processed_insns: r.processed_insns as f64,
            verification_time_ns: r.time_ns as f64,
            total_states: r.total_states,
            peak_states: r.peak_states,
            max_states_per_insn: r.max_states_per_insn,
            stack_depth: r.stack_depth.clone(),
            exit_r0: r.exit_r0.map(|e| NativeExitRange {
                smin: BigInt::from(e.smin),
                smax: BigInt::from(e.smax),
                umin: BigInt::from(e.umin),
                umax: BigInt::from(e.umax),
            }),
        })
    }

    /// Mode 'verified': the verifier's log at the level asked for (empty at level 0).
    #[napi(getter)]
    pub fn verifier_log(&self) -> Option<String> {
        self.inner.verifier_report().map(|r| r.log.clone())
    }

    /// The engine that runs the program: 'interpreter' or 'jit'.
    #[napi(getter)]
    pub fn engine(&self) -> EngineName {
        self.inner.engine().into()
    }

    /// The bytecode as loaded.
    #[napi(catch_unwind)]
    pub fn xlated(&self) -> Buffer {
        self.inner.xlated().into()
    }

    /// The machine code as Intel-syntax assembly (a one-line note for interpreted programs).
    #[napi(catch_unwind)]
    pub fn jited(&self) -> String {
        self.inner.jited_disassembly()
    }

    /// The machine code as x86-64 instructions in AT&T syntax, one section per eBPF function and
    /// a last one for the code they share, each decoded from offset 0 (empty for an interpreted
    /// program), for `ebpf prog dump jited` in bpftool's layout.
    #[napi(catch_unwind)]
    pub fn jited_functions(&self) -> Vec<JitedFunction> {
        #[cfg(target_arch = "x86_64")]
        return self
            .inner
            .jited_functions()
            .into_iter()
            .map(|f| JitedFunction {
                slot: f.slot,
                start: f.start,
                insns: f
                    .insns
                    .into_iter()
                    .map(|i| JitedInsn {
                        offset: i.offset,
                        bytes: i.bytes.into(),
                        text: i.text,
                        insn: i.insn,
                    })
                    .collect(),
            })
            .collect();
        #[cfg(not(target_arch = "x86_64"))]
        Vec::new()
    }

    /// Each instruction slot as the kernel's verifier log writes it (empty for the second slot
    /// of an `lddw`), for traces.
    #[napi(catch_unwind)]
    pub fn insn_texts(&self) -> Vec<String> {
        self.inner.insn_texts()
    }

    /// The coverage counted so far (absent for a program loaded without `coverage`); `reset`
    /// sets the counters back to zero after reading them.
    #[napi(catch_unwind)]
    pub fn coverage(&self, reset: Option<bool>) -> Option<crate::coverage::NativeCoverage> {
        let report = self.inner.coverage()?;
        if reset.unwrap_or(false) {
            self.inner.reset_coverage();
        }
        Some(crate::coverage::to_js(report))
    }

    /// Each instruction slot as loaded (after relocation and the context rewrite), as the
    /// kernel's verifier log writes it: what `bpftool prog dump xlated` lists.
    #[napi(catch_unwind)]
    pub fn xlated_texts(&self) -> Vec<String> {
        self.inner.xlated_texts()
    }

    /// The first instruction slot of each function (the kernel's subprograms), ascending.
    #[napi(catch_unwind)]
    pub fn function_slots(&self) -> Vec<u32> {
        self.inner
            .function_slots()
            .into_iter()
            .map(|s| s as u32)
            .collect()
    }

    /// `bpf_trace_printk` output so far; `take` empties the log.
    #[napi(catch_unwind)]
    pub fn trace_log(&self, take: Option<bool>) -> String {
        if take.unwrap_or(false) {
            self.inner.take_trace_log()
        } else {
            self.inner.trace_log()
        }
    }

    /// `bpf_perf_event_output` records since the last call, in order, and how many were dropped
    /// meanwhile because a run's perf buffer or this buffer was full.
    #[napi(catch_unwind)]
    pub fn take_perf_records(&self) -> NativePerfRecords {
        let mut perf = lock(&self.perf);
        let records = std::mem::take(&mut perf.records);
        perf.bytes = 0;
        let lost = std::mem::take(&mut perf.lost);
        NativePerfRecords {
            records: records
                .into_iter()
                .map(|r| NativePerfRecord {
                    index: r.index,
                    data: r.data.into(),
                })
                .collect(),
            lost: lost as f64,
        }
    }

    /// The fast path of one `raw` run with nothing but data: runs in place on `data` (the caller's
    /// private copy), writes `[r0, instructions, nanoseconds]` into the array given to
    /// `set_scratch` and returns true; on a trap returns false and keeps the error for
    /// `takeError`. No objects are created per call, and the one typed-array argument is all the
    /// borrow bookkeeping napi-rs does. The TypeScript layer uses it only for programs without
    /// JavaScript helpers (a helper could detach `data` while the program runs).
    #[napi(catch_unwind)]
    pub fn run_in_place(&self, mut data: Uint8ArraySlice<'_>) -> bool {
        let start = Instant::now();
        // SAFETY: a borrowed view (no reference is created: this is the hot path) of a typed
        // array that is alive for this call; no JavaScript runs during it (the program has no
        // JavaScript helpers), and `data` is the caller's own, unshared copy.
        let data = unsafe { data.as_mut() };
        let outcome = self.inner.run(&mut RunInput { data, budget: None });
        let ns = start.elapsed().as_nanos() as u64;
        self.report(outcome, ns)
    }

    /// Keeps `out` (the TypeScript layer's private `BigUint64Array` of three elements, alive as
    /// long as this object) for `run_in_place` and `run_no_data` to report into.
    #[napi(catch_unwind)]
    pub fn set_scratch(&self, mut out: BigUint64Array) -> Result<(), Code> {
        if out.len() < 3 {
            return Err(einval(format!(
                "the scratch array has {} elements; 3 are needed",
                out.len()
            )));
        }
        // SAFETY: the array's elements, which stay where they are while `scratch` holds it (its
        // data pointer was taken when it came from JavaScript, which moves it out of V8's heap).
        let words = unsafe { out.as_mut() }.as_mut_ptr();
        let mut scratch = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        self.scratch_words.store(words, Ordering::Release);
        *scratch = Some(out);
        Ok(())
    }

    /// `run_in_place` of a run without data: a call without arguments, for which napi-rs does
    /// none of the borrow bookkeeping that typed-array arguments cost. False, with the error kept
    /// for `takeError`, when the run trapped or no scratch array was set.
    #[napi(catch_unwind)]
    pub fn run_no_data(&self) -> bool {
        let start = Instant::now();
        let outcome = self.inner.run(&mut RunInput {
            data: &mut [],
            budget: None,
        });
        let ns = start.elapsed().as_nanos() as u64;
        self.report(outcome, ns)
    }

    /// Writes `[r0, instructions, nanoseconds]` of a successful run into the scratch array
    /// (`set_scratch`) and returns true, or keeps the trap (or the want of a scratch array) for
    /// `takeError` and returns false.
    fn report(&self, outcome: std::result::Result<ebpf_vm::RunOutput, Trap>, ns: u64) -> bool {
        let words = self.scratch_words.load(Ordering::Acquire);
        let error = match outcome {
            Ok(o) if !words.is_null() => {
                // SAFETY: the three elements of the array `scratch` holds alive (`set_scratch`),
                // private to the TypeScript layer; no JavaScript runs during this call.
                let out = unsafe { std::slice::from_raw_parts_mut(words, 3) };
                (out[0], out[1], out[2]) = (o.r0, o.insn_count, ns);
                return true;
            }
            Ok(_) => Trap::invalid_input("a run on the fast path before setScratch"),
            Err(trap) => trap,
        };
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
        false
    }

    /// The trap of the last `runInPlace` that returned false.
    #[napi(catch_unwind)]
    pub fn take_error(&self) -> Option<NativeError> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .map(NativeError::from)
    }

    /// A test run (`repeat` times) on the calling thread.
    #[napi(catch_unwind)]
    pub fn run(&self, input: NativeRunInput) -> NativeRunResult {
        let limits = run_limits(&input, None);
        to_js(
            self.inner
                .test_run(&test_input(&input, &input.data, &limits)),
        )
    }

    /// The same as `run`, on the libuv thread pool: the JavaScript thread stays free. `cancel`
    /// stops it (an `aborted` trap) when cancelled.
    #[napi(catch_unwind, ts_return_type = "Promise<NativeRunResult>")]
    pub fn run_async(
        &self,
        input: NativeRunInput,
        cancel: Option<&NativeCancelToken>,
    ) -> AsyncTask<RunTask> {
        let limits = run_limits(&input, cancel);
        AsyncTask::new(RunTask {
            program: self.inner.clone(),
            input: test_input(&input, &input.data, &limits),
        })
    }

    /// One run per packet, in order, with the other inputs of `input` (its data is ignored). The
    /// packets come concatenated in `packets`, `lengths[i]` bytes each; results come back packed,
    /// so that a batch costs a handful of JavaScript objects, not a few per packet.
    #[napi(catch_unwind)]
    pub fn run_batch(
        &self,
        packets: &[u8],
        lengths: Uint32ArraySlice<'_>,
        input: NativeRunInput,
    ) -> Result<NativeBatch, Code> {
        // A copy of the lengths (4 bytes a packet): JavaScript helpers run during the call.
        let lengths = lengths.to_vec();
        check_lengths(packets.len(), &lengths)?;
        let limits = run_limits(&input, None);
        let input = test_input(&input, &[], &limits);
        Ok(run_packets(&self.inner, packets, &lengths, &input)?.into_js())
    }

    /// The lean batch of `runBatchRetvals` (runs that need nothing but the packet): one run per
    /// packet (concatenated in `packets`, `lengths[i]` bytes each), only the low 32 bits of each
    /// r0 kept (0 where the run trapped) and the traps by index; no output is copied back.
    /// `wire_lengths[i]`, where larger than the packet, is a socket filter's `__sk_buff.len`
    /// (a capture cut to its snap length); the caller gives it only for socket filters.
    #[napi(catch_unwind)]
    pub fn run_batch_retvals(
        &self,
        packets: &[u8],
        lengths: Uint32ArraySlice<'_>,
        wire_lengths: Option<Uint32ArraySlice<'_>>,
    ) -> Result<NativeBatchRetvals, Code> {
        // Typed arrays, not lists: no conversion per packet. Nothing runs JavaScript during the
        // call (programs with JavaScript helpers take `run_batch`), so the views stay valid.
        // The engine checks that the lengths add up and that the wire lengths are one per packet.
        let lengths: &[u32] = lengths.as_ref();
        let wire_lengths: Option<&[u32]> = wire_lengths.as_ref().map(|w| w.as_ref());
        // Zeroed up front (0 is a trapped run's retval): a store per run, no push.
        let mut retvals = vec![0u32; lengths.len()];
        let mut errors = Vec::new();
        let input = BatchInput {
            packets,
            lengths,
            wire_lengths,
            r0_only: true,
            ..BatchInput::default()
        };
        let summary = self
            .inner
            .run_batch_r0(&input, |index, result| match result {
                Ok(out) => retvals[index] = out.r0 as u32,
                Err(trap) => errors.push(NativeBatchError {
                    index: index as u32,
                    error: trap.into(),
                }),
            })
            .map_err(|e| einval(e.message))?;
        Ok(NativeBatchRetvals {
            retvals: Uint32Array::new(retvals),
            errors,
            duration_ns: summary.duration_ns,
        })
    }

    /// `run_batch` on the libuv thread pool; `cancel` stops the run under way and the rest.
    /// `packets` must be the caller's private buffer: the task keeps it, without a copy, until
    /// it ends.
    #[napi(catch_unwind, ts_return_type = "Promise<NativeBatch>")]
    pub fn run_batch_async(
        &self,
        packets: Buffer,
        lengths: Uint32ArraySlice<'_>,
        input: NativeRunInput,
        cancel: Option<&NativeCancelToken>,
    ) -> Result<AsyncTask<BatchTask>, Code> {
        let lengths = lengths.to_vec();
        check_lengths(packets.len(), &lengths)?;
        let limits = run_limits(&input, cancel);
        Ok(AsyncTask::new(BatchTask {
            program: self.inner.clone(),
            input: test_input(&input, &[], &limits),
            packets,
            lengths,
        }))
    }
}

#[napi(object)]
pub struct NativeBatchRetvals {
    pub retvals: Uint32Array,
    pub errors: Vec<NativeBatchError>,
    /// Nanoseconds of the whole batch inside the engine (one clock reading at each end).
    pub duration_ns: f64,
}

/// Work on the thread pool, where `#[napi(catch_unwind)]` does not reach: a panic of the engine
/// (a bug; it is written not to panic) becomes an error instead of unwinding into libuv. The
/// task's `reject` throws it as `EFAULT` (`coded_rejection`).
fn unpanicked<T>(f: impl FnOnce() -> T) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|_| {
        Error::new(
            Status::GenericFailure,
            "the engine panicked (a bug: please report it)",
        )
    })
}

/// A task's failure as the error its promise rejects with, `code` EFAULT (`Task::reject` has
/// napi-rs's own error type, whose status would otherwise become the code).
fn coded_rejection(env: Env, err: Error) -> Error {
    // SAFETY: `reject` runs on the JavaScript thread, with its env.
    let value = unsafe {
        JsError::from(thrown(ErrorCode::Efault, err.reason.clone())).into_value(env.raw())
    };
    // SAFETY: `value` is a live value of this env.
    match unsafe { Unknown::from_napi_value(env.raw(), value) } {
        Ok(v) => Error::from(v),
        Err(e) => e,
    }
}

/// A batch on the thread pool. It owns its inputs: the packets (the TypeScript layer's private
/// concatenation, moved here, not copied) and the run input, whose data buffer each packet reuses.
pub struct BatchTask {
    program: Arc<Program>,
    packets: Buffer,
    lengths: Vec<u32>,
    input: TestRunInput,
}

impl Task for BatchTask {
    type Output = PackedRuns;
    type JsValue = NativeBatch;

    fn compute(&mut self) -> Result<Self::Output> {
        let BatchTask {
            program,
            packets,
            lengths,
            input,
        } = self;
        match unpanicked(|| run_packets(program, packets, lengths, input))? {
            Ok(outputs) => Ok(outputs),
            // The lengths were checked when the task was made (`check_lengths`).
            Err(e) => Err(Error::new(Status::GenericFailure, e.reason.clone())),
        }
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> Result<Self::JsValue> {
        Ok(output.into_js())
    }

    fn reject(&mut self, env: Env, err: Error) -> Result<Self::JsValue> {
        Err(coded_rejection(env, err))
    }
}

/// A test run on the thread pool; the program is shared, the input owned.
pub struct RunTask {
    program: Arc<Program>,
    input: TestRunInput,
}

impl Task for RunTask {
    type Output = TestRunOutput;
    type JsValue = NativeRunResult;

    fn compute(&mut self) -> Result<Self::Output> {
        let (program, input) = (&self.program, &self.input);
        unpanicked(|| program.test_run(input))
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> Result<Self::JsValue> {
        Ok(to_js(output))
    }

    fn reject(&mut self, env: Env, err: Error) -> Result<Self::JsValue> {
        Err(coded_rejection(env, err))
    }
}

#[napi(object)]
pub struct NativeLoadResult {
    pub error: Option<NativeError>,
}

/// Validates and prepares a program. On failure the program is `null` and the error is set.
#[napi(catch_unwind)]
pub fn load_program(
    env: Env,
    bytecode: &[u8],
    options: NativeProgramOptions,
    // Spelled out: the type alias's name would reach the generated index.d.ts undeclared.
    #[napi(
        ts_arg_type = "(id: number, r1: bigint, r2: bigint, r3: bigint, r4: bigint, r5: bigint) => bigint | number | undefined"
    )]
    js_helpers: Option<crate::js_helpers::JsDispatcher<'_>>,
) -> Result<Either<NativeProgram, NativeLoadResult>> {
    let perf = SharedPerf::default();
    let mut parsed = parse_options(&options, &perf);
    let ids = options.js_helper_ids.as_deref().unwrap_or(&[]);
    let declarations = options.js_helper_prototypes.as_deref().unwrap_or(&[]);
    let prototypes = match ids
        .iter()
        .enumerate()
        .map(|(i, &id)| crate::prototypes::declared(id, declarations.get(i)))
        .collect::<std::result::Result<Vec<_>, _>>()
    {
        Ok(p) => p,
        Err(e) => {
            if parsed.is_ok() {
                parsed = Err(e);
            }
            Vec::new()
        }
    };
    if let (Ok(opts), Some(dispatcher)) = (&mut parsed, &js_helpers) {
        crate::js_helpers::register(
            &env,
            &mut opts.helpers,
            dispatcher,
            ids,
            options.js_helper_names.as_deref().unwrap_or(&[]),
            &prototypes,
        )?;
    }
    let loaded = parsed
        .and_then(|opts| Program::load(bytecode, opts).map_err(|e| Box::new(NativeError::from(e))));
    Ok(match loaded {
        Ok(inner) => Either::A(NativeProgram {
            inner: Arc::new(inner),
            id: next_program_id(),
            perf,
            last_error: Mutex::new(None),
            scratch: Mutex::new(None),
            scratch_words: AtomicPtr::new(std::ptr::null_mut()),
        }),
        Err(e) => Either::B(NativeLoadResult { error: Some(*e) }),
    })
}

/// The code of one eBPF function of a JIT program, or the out-of-line code the functions share
/// (`jitedFunctions`).
#[napi(object)]
pub struct JitedFunction {
    /// The function's first instruction slot; absent for the shared out-of-line code.
    pub slot: Option<u32>,
    /// Where the section starts in the program's code.
    pub start: u32,
    pub insns: Vec<JitedInsn>,
}

/// One x86-64 instruction of a JIT program's code (`jitedFunctions`).
#[napi(object)]
pub struct JitedInsn {
    /// Offset from the first byte of its section (its function's code).
    pub offset: u32,
    pub bytes: Buffer,
    /// AT&T syntax, as GNU objdump writes it.
    pub text: String,
    /// The eBPF instruction whose code starts here.
    pub insn: Option<u32>,
}
