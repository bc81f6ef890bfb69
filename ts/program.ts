/**
 * `Program`: a loaded program and its runs. The engine validates, prepares and runs; this class
 * checks options, converts results and turns error data from the engine into typed errors.
 */

import { constants } from 'node:buffer'
import type { Writable } from 'node:stream'
import {
  checkArray,
  checkBoolean,
  checkBytes,
  checkDenseArray,
  checkFunction,
  checkObject,
  checkSlot,
  checkString,
  checkU32 as checkU32Of,
  checkUnsigned64,
  describeValue,
  optionsObject,
} from './arguments.js'
import type { GlobalFunction, GlobalFunctionArg } from './btf/global-functions.js'
import { type ToEbpfOptions, toEbpf } from './cbpf/convert.js'
import type { ClassicInput } from './cbpf/parse.js'
import { type ContextValue, decodeContext, decodeContextAt, encodeContext, type SkbContext } from './context.js'
import { Coverage, type ProgramCoverage, programCoverage } from './coverage.js'
import {
  AbortError,
  EbpfError,
  type ErrorCode,
  fromCodedError,
  LoadError,
  TrapError,
  type TrapKind,
  VerifierError,
} from './errors.js'
import { asBpfMap, type BpfMap } from './map.js'
import {
  type AttachTypeName,
  type EngineName,
  type NativeBatch,
  type NativeCancelToken,
  type NativeError,
  type NativeProgram,
  type NativeRecordsOutcome,
  type NativeRunInput,
  type NativeRunResult,
  native,
  nativeNames,
  type ProgramTypeName,
  type RecordsLayout,
  type SafetyMode,
} from './native.js'
import { type ClonedPacket, type Network, networkOf, type TunnelMetadata, tunnelOf, tunnelResult } from './network.js'
import type { PcapInput } from './pcap/source.js'
import { type FilterPcapOptions, type FilterPcapSummary, filterPcap } from './pcap-filter.js'
import { type RunPcapOptions, type RunPcapSummary, runPcap } from './pcap-run.js'
import type { FuncInfo, LineInfo } from './spec.js'
import { DEFAULT_TRACE_LIMIT, lineAt, MAX_TRACE_LIMIT, type Trace, toTrace } from './trace.js'

/**
 * What r1 points to at entry; see README "Program types". Program types, engines and modes are
 * declared once, in the binding (`crates/ebpf-node/src/names.rs`), which generates these types.
 */
export type ProgramType = ProgramTypeName
export type { AttachTypeName, EngineName, SafetyMode }

export interface ProgramOptions {
  /** What r1/r2 hold at entry. `raw`: r1 = address of `data`, r2 = its length. Default `raw`. */
  type?: ProgramType
  /** Bytecode: 8-byte little-endian instruction slots, as `assemble` or `asm` produce. */
  instructions: Uint8Array
  /** `auto` (default) uses the JIT where the host supports it, else the interpreter. */
  engine?: EngineName
  /**
   * `verified` (the default for every kernel program type): the load fails with a `VerifierError`
   * unless the verifier proves the program safe, as the kernel's verifier would (see README
   * "Verifier"); the accesses it proved run unchecked. `checked` (the default for `raw`, and for
   * classic BPF as the kernel runs it): run-time bounds checks and an instruction budget only.
   */
  mode?: SafetyMode
  /**
   * Mode `verified`: the verifier's log, kept as `verifierLog` (1: the instructions of the paths
   * walked; 2: also the register and stack state after each). Default 0: none, except that a
   * rejection always carries its log (at level 1), as libbpf retries a failed load with one.
   */
  logLevel?: 0 | 1 | 2
  /**
   * Mode `verified`: also apply the rules Linux applies to a load without CAP_BPF and CAP_PERFMON
   * (see README "Verifier"): no pointer may leak (into r0 at exit, maps, the context, helper
   * arguments that take numbers), pointers are compared only in null checks, no uninitialised
   * stack is read, pointer arithmetic stays in bounds at constant stack offsets, no loops and no
   * bpf-to-bpf calls or callbacks, only the helpers an unprivileged socket filter may call, at most
   * 4,096 instructions; only `socket_filter` and `raw` programs (others: `EPERM`). For embedders
   * running untrusted code. Default false; `true` needs mode `verified` (`EINVAL` otherwise).
   */
  unprivileged?: boolean
  /**
   * Mode `verified`: keep r0 precise at every exit, as a return range makes it (which can keep
   * more states apart: more time, and a loop that counts into r0 may reach the complexity limit),
   * and report the range r0 lies in when the program exits as `verifierStats.exitR0`. Default
   * false; `true` needs mode `verified` (`EINVAL` otherwise).
   */
  exitRange?: boolean
  /**
   * Mode `verified`: meter runs by the instruction budget, as mode `checked` always does, so that
   * `insnCount` counts the instructions a run executed, `budget` stops it and `timeoutMs` /
   * `signal` are checked at least every 2^20 instructions. Default false: the verifier proved the
   * program terminates, so its runs are not metered and run at the speed of the code alone; their
   * `insnCount` is 0, no budget stops them, and `timeoutMs` / `signal` are checked between runs and
   * before each callback a helper makes (see README "Metering").
   */
  meter?: boolean
  /**
   * The program's license, as the object's `license` section says it (default `'GPL'`): helpers the
   * kernel marks GPL-only need a GPL-compatible license ('GPL', 'GPL v2', 'Dual BSD/GPL', ...).
   */
  license?: string
  /**
   * Mode `verified` with type `raw`: the length of the data every run gets. The verifier proves
   * the accesses through r1 against it (r1 = that many bytes, r2 = that number), so a run with data
   * of another length stops with an `invalid_input` TrapError. Required for a verified raw program.
   */
  dataSize?: number
  /**
   * The kernel's expected attach type, where it changes what the program may do: `'xdp_devmap'`
   * (an `xdp` program a devmap runs, libbpf's `SEC("xdp/devmap")`) may read `xdp_md.egress_ifindex`
   * in mode `verified`; `'cgroup_inet_egress'` (a `cgroup_skb` program on egress,
   * `SEC("cgroup_skb/egress")`) may return 0 to 3, where ingress programs return 0 or 1. Default: none.
   */
  expectedAttachType?: AttachTypeName
  /** Instructions a run may execute before it is stopped (default 10,000,000). */
  budget?: number
  /**
   * The maps the program uses: `lddw rX, map[i]` (src 5) loads a reference to `maps[i]`, and
   * `lddw rX, map_value[i] + off` (src 6) the address of byte `off` of a single-value array map
   * (global data). A `Collection` fills this in from the object's relocations.
   */
  maps?: readonly BpfMap[]
  /**
   * Source line of instructions (`ProgramSpec.lineInfo`): errors about an instruction then name the
   * C source line it came from (`source`), and the verifier's log shows the lines it walks, as the
   * kernel's does (`; if (!cfg) @ prog.c:26`).
   * C source line it came from.
   */
  lineInfo?: readonly LineInfo[]
  /**
   * Count instruction and branch coverage over the program's runs (`program.coverage`; see
   * README "Coverage"). Cheap enough to leave on: the JIT's code counts once per chain of blocks.
   */
  coverage?: boolean
  /** The program's functions by name (`ProgramSpec.funcInfo`), for coverage reports (lcov `FN`). */
  funcInfo?: readonly FuncInfo[]
  /**
   * First instructions of the program's functions beyond the main one, as the object names them
   * (`ProgramSpec.subprograms`, `ProgramSpec.funcInfo`); local calls and function pointers name the
   * others. Each must start an instruction, and every function must end in `exit` or a jump, as the
   * kernel checks with BTF function info.
   */
  funcEntries?: readonly number[]
  /**
   * Mode `verified`: the program's global functions (BTF `FUNC` linkage global) and their argument
   * types, as `btf.globalFunctionsOf` reads them from BTF (a `Collection` fills this in). Each is
   * verified once, on its own, against its argument types, and each call only checks the arguments
   * against them, as the kernel does; every other function is verified in the context of each call.
   */
  globalFunctions?: readonly GlobalFunction[]
  /**
   * Receives each `bpf_perf_event_output` record, after the run that wrote it. Without it the helper
   * returns -ENOENT, as the kernel does when no perf event is behind the slot.
   */
  onPerfEvent?: (record: PerfRecord) => void
  /**
   * Receives the number of `bpf_perf_event_output` records dropped since the last delivery
   * (called after a run, a batch or `repeat` runs, when some were): a run may output
   * `perfBufferBytes` of records, and as many wait for delivery; beyond that the helper returns
   * -ENOSPC and the record is lost, as with the kernel's perf ring and its lost-sample count.
   */
  onPerfLost?: (count: number) => void
  /**
   * Bytes of perf records, counted as the kernel's perf ring lays them out (8-byte header, u32
   * size, data, padded to 8), that one run may output and that wait for delivery (default
   * 262,144: 64 pages).
   */
  perfBufferBytes?: number
  /**
   * Helpers written in JavaScript, by helper number (a number the kernel uses replaces that helper
   * for this program). They run synchronously on the JavaScript thread, so programs that call them
   * run with `run()`/`runBatch()`, not the async forms.
   */
  helpers?: Record<number, HelperFunction | HelperDeclaration>
  /**
   * `refuse` (default): a run that lets a host address out stops with a `pointer_leak` TrapError
   * (`EACCES`): r0 holding an address of the run at exit, or an address in an 8-byte word that a map
   * update or push, `bpf_perf_event_output`, `bpf_ringbuf_output`/`submit` copies out, or in an
   * argument `bpf_trace_printk`/`bpf_snprintf` print as a number. `allow` lets them through
   * (trusted bytecode). Addresses a program stores into map values or the packet itself are not
   * caught (that needs the verifier).
   */
  pointerLeaks?: 'allow' | 'refuse'
  /**
   * JIT constant blinding (default true): no immediate of the program is written into executable
   * memory as it is (each is XORed with a random key and rebuilt at run time), so untrusted
   * bytecode cannot plant chosen machine code for a JIT-spray attack. `false` for trusted bytecode
   * (measured cost in BENCHMARKS.md).
   */
  blindConstants?: boolean
}

/** The run memory a JavaScript helper may touch: checked against the run's regions like any access of the program. */
export interface HelperMemory {
  read(addr: bigint, length: number): Uint8Array
  write(addr: bigint, bytes: Uint8Array): void
}

/**
 * A JavaScript helper with its name and, optionally, its prototype in the kernel's spelling
 * (`args: ['ARG_PTR_TO_MEM | MEM_RDONLY', 'ARG_CONST_SIZE']`, `ret: 'RET_INTEGER'`): what the
 * verifier will check at each call. Left out, it takes five scalars and returns a scalar.
 * `helperPrototypes()` lists the spellings the standard helpers use.
 */
export interface HelperDeclaration {
  name: string
  fn: HelperFunction
  /** r1 first, at most five; arguments past the last listed are not read. */
  args?: readonly string[]
  ret?: string
  /** Only programs under a GPL-compatible license may call it. */
  gplOnly?: boolean
}

/** A helper in JavaScript: r1-r5 in, r0 out (a bigint or a safe integer; undefined is 0; -errno as a negative). */
export type HelperFunction = (
  args: [bigint, bigint, bigint, bigint, bigint],
  memory: HelperMemory,
) => bigint | number | undefined

const helperMemory: HelperMemory = {
  read: (addr, length) => {
    const at = checkUnsigned64(EbpfError, 'memory.read: addr', addr)
    const len = checkU32Of(EbpfError, 'memory.read: length', length)
    try {
      return new Uint8Array(native.helperMemoryRead(at, len))
    } catch (e) {
      throw fromCodedError(e, EbpfError, 'memory.read argument')
    }
  },
  write: (addr, bytes) => {
    const at = checkUnsigned64(EbpfError, 'memory.write: addr', addr)
    checkBytes(EbpfError, 'memory.write: bytes', bytes)
    try {
      native.helperMemoryWrite(at, bytes)
    } catch (e) {
      throw fromCodedError(e, EbpfError, 'memory.write argument')
    }
  },
}

/**
 * What a JavaScript helper threw, as an Error whose string form is safe to take: the engine turns
 * it into the run's helper-error trap, and a symbol or an object without a string form would
 * otherwise make that conversion throw a TypeError out of `run()`.
 */
function helperException(id: number, e: unknown): Error {
  let text: string
  if (e instanceof Error) {
    try {
      text = `${String(e.name)}: ${String(e.message)}`
    } catch {
      text = 'an Error without a readable message'
    }
  } else {
    text = describeValue(e)
  }
  const out = new Error(`helper ${id} threw ${text}`)
  out.toString = () => text
  return out
}

/** The prototype a helper declaration gives, its shape checked (the engine checks the names). */
function helperDeclaration(key: string, h: HelperDeclaration): { args?: string[]; ret?: string; gplOnly?: boolean } {
  const out: { args?: string[]; ret?: string; gplOnly?: boolean } = {}
  if (h.args !== undefined) {
    const args = checkDenseArray<string>(LoadError, `helpers[${key}].args`, h.args)
    out.args = args.map((a, i) => checkString(LoadError, `helpers[${key}].args[${i}]`, a))
  }
  if (h.ret !== undefined) out.ret = checkString(LoadError, `helpers[${key}].ret`, h.ret)
  if (h.gplOnly !== undefined) {
    if (typeof h.gplOnly !== 'boolean') {
      throw new LoadError('EINVAL', `helpers[${key}].gplOnly must be a boolean, got ${describeValue(h.gplOnly)}`)
    }
    out.gplOnly = h.gplOnly
  }
  return out
}

/** Whether `code` calls `bpf_tail_call` (helper 12): a run may go on in another program. */
function callsTailCall(code: Uint8Array): boolean {
  for (let at = 0; at + 8 <= code.length; at += 8) {
    // `call imm` (0x85) of a helper (src 0) whose little-endian imm is 12.
    const imm = code[at + 4]! | (code[at + 5]! << 8) | (code[at + 6]! << 16) | (code[at + 7]! << 24)
    if (code[at] === 0x85 && code[at + 1]! >> 4 === 0 && imm === 12) return true
  }
  return false
}

/** The dispatcher the engine calls for JavaScript helpers, and the ids and names it serves. */
function jsHelpers(helpers: ProgramOptions['helpers']):
  | {
      ids: number[]
      names: string[]
      prototypes: { args?: string[]; ret?: string; gplOnly?: boolean }[]
      dispatch: (id: number, ...args: bigint[]) => bigint | number | undefined
    }
  | undefined {
  if (helpers === undefined) return undefined
  checkObject(LoadError, 'helpers (an object keyed by helper number)', helpers)
  const table = new Map<number, HelperFunction>()
  const names: string[] = []
  const prototypes: { args?: string[]; ret?: string; gplOnly?: boolean }[] = []
  for (const [key, h] of Object.entries(helpers)) {
    const id = Number(key)
    if (!Number.isInteger(id) || id < 0 || id > 0xffffffff)
      throw new LoadError('EINVAL', `helper number ${describeValue(key)} is not a u32`)
    const fn = typeof h === 'function' ? h : h !== null && typeof h === 'object' ? h.fn : undefined
    if (typeof fn !== 'function')
      throw new LoadError('EINVAL', `helpers[${key}] must be a function or { name, fn }, got ${describeValue(h)}`)
    table.set(id, fn)
    names.push(typeof h === 'function' ? `js_helper_${id}` : checkString(LoadError, `helpers[${key}].name`, h.name))
    prototypes.push(typeof h === 'function' ? {} : helperDeclaration(key, h))
  }
  return {
    ids: [...table.keys()],
    names,
    prototypes,
    // The return value is checked by the engine (a bigint from -2^63 to 2^64-1, a safe integer or
    // undefined; anything else is the run's helper-error trap, never a truncated value).
    dispatch: (id, ...args) => {
      try {
        return table.get(id)!(args as [bigint, bigint, bigint, bigint, bigint], helperMemory)
      } catch (e) {
        throw helperException(id, e)
      }
    },
  }
}

/** One `bpf_perf_event_output` record. */
export interface PerfRecord {
  /** The perf event array slot (0 for BPF_F_CURRENT_CPU: the engine runs on "CPU" 0). */
  index: number
  /** The program's bytes, then the packet bytes it asked for (socket filter and XDP). */
  data: Uint8Array
}

/** What the `bpf_get_current_*` helpers report during a run. */
export interface ProcessIdentity {
  pid?: number
  tgid?: number
  uid?: number
  gid?: number
  /** Task name, at most 15 bytes are kept (as the kernel's `comm`). */
  comm?: string
  /**
   * What `bpf_get_current_task` and `bpf_get_current_task_btf` return: the address of the task in
   * the run's `memory` (e.g. where a fake `task_struct` image lies). Default 0.
   */
  task?: bigint | number
}

/**
 * The socket a packet belongs to, as `bpf_get_socket_cookie` and `bpf_get_socket_uid` report it
 * (socket_filter and tc). Without one the packet has no socket: cookie 0 and uid 65534 (the
 * kernel's `overflowuid`). The kernel's own test run gives the packet a fresh socket of uid 0 and a
 * new non-zero cookie: `{ cookie: 1n, uid: 0 }` comes close.
 */
export interface SocketIdentity {
  /** The socket's cookie (unique and non-zero for a real socket), 0 to 2^64-1. */
  cookie: bigint | number
  /** The uid that owns the socket. */
  uid: number
}

/**
 * A signal the program asked `bpf_send_signal` (to the process, `thread: false`) or
 * `bpf_send_signal_thread` (to the thread) to send to the current task (`RunOptions.process`).
 * Nothing is ever signalled: the run only records the request. Signal 0 (a permission check) is
 * not recorded; numbers above 64 make the helper return -EINVAL and are not recorded either.
 */
export interface SentSignal {
  signal: number
  thread: boolean
}

/**
 * Bytes at an address of the address space a run's probe-read helpers read (`RunOptions.memory`):
 * a fake `task_struct`, a user buffer... They are not the program's memory: loads and stores
 * through these addresses trap; `bpf_probe_read_kernel` / `_user` / `_str` copy from them.
 */
export interface MemoryImage {
  /** Where the image starts (0 to 2^64-1; the image must end by 2^64). */
  address: bigint | number
  bytes: Uint8Array
  /**
   * User memory the traced task may write: `bpf_probe_write_user` writes into it (the caller's
   * bytes are not changed; `RunResult.memory` has the image as the run left it). Default false:
   * a write there fails with -EFAULT.
   */
  writable?: boolean
}

export interface RunOptions {
  /** The input data (packet); the program sees a copy, returned as `data`. */
  data?: Uint8Array
  /**
   * The context: for `xdp`, `socket_filter` and `tc` the fields of `struct xdp_md` / `struct __sk_buff`
   * (an object of named fields, or the struct's bytes); for `tracing` the context bytes themselves;
   * for `tracepoint` (a record, at most 8192 bytes) and `raw_tracepoint` (u64 arguments, at most 12)
   * the bytes, zero-extended to that size (more are refused).
   */
  ctx?: Uint8Array | ContextValue
  /** What `bpf_get_current_pid_tgid`, `_uid_gid`, `_comm` and `_task` report. */
  process?: ProcessIdentity
  /** The packet's socket, for `bpf_get_socket_cookie` / `bpf_get_socket_uid` (see `SocketIdentity`). */
  socket?: SocketIdentity
  /**
   * What `bpf_jiffies64` returns (0 to 2^64-1). Default: the kernel's count on the clock of
   * `bpf_ktime_get_ns`, at Linux's HZ of 250 from its boot value `INITIAL_JIFFIES` (2^32 - 75000).
   */
  jiffies?: bigint | number
  /**
   * The address space `bpf_probe_read*` read (tracing programs, typically): images at addresses.
   * A read touching any byte outside every image fails as in the kernel: the destination is
   * zeroed and the helper returns -EFAULT (-ERANGE for `_kernel` forms at user-half addresses on
   * x86-64 hosts). Images may touch; where they overlap the later one wins.
   */
  memory?: readonly MemoryImage[]
  /**
   * The traced task's kernel call stack, innermost frame first (instruction pointers, up to 127
   * used): what `bpf_get_stackid` and `bpf_get_stack` report, where the kernel walks the real
   * stack. Default: none (an empty callchain: `bpf_get_stackid` returns -EFAULT).
   */
  stack?: readonly (bigint | number)[]
  /** The user call stack, for `BPF_F_USER_STACK`; as `stack`. */
  userStack?: readonly (bigint | number)[]
  /**
   * Tracing programs: the cookie the probe was attached with (libbpf's `bpf_kprobe_opts.bpf_cookie`),
   * what `bpf_get_attach_cookie(ctx)` returns; 0 to 2^64-1, default 0 (as the kernel's test run).
   */
  attachCookie?: bigint | number
  /**
   * Kprobes: the address of the probed function, what `bpf_get_func_ip(ctx)` returns (0 to
   * 2^64-1; default 0, what the kernel returns for a kprobe not on a function's entry). Other
   * program types cannot call the helper (refused at load, as Linux 6.18 does).
   */
  funcIp?: bigint | number
  /**
   * tc: the tunnel metadata the packet arrived with (see `TunnelMetadata`), which
   * `bpf_skb_get_tunnel_key` reads. Default none, as in the kernel's test run: the helper fails
   * with -EINVAL until the program sets metadata with `bpf_skb_set_tunnel_key`.
   */
  tunnel?: TunnelMetadata
  /**
   * tc and XDP: the interfaces and routing table that `bpf_check_mtu`, `bpf_fib_lookup` and
   * `bpf_clone_redirect` see (see `Network`). Default: the kernel test run's loopback (ifindex 1,
   * MTU 65536) and no table (`bpf_fib_lookup` answers `BPF_FIB_LKUP_RET_NOT_FWDED`).
   */
  network?: Network
  /** Runs this many times over the same input (default 1); the result is the last run's, `durationNs` the mean. */
  repeat?: number
  /** Overrides the program's instruction budget for this run. */
  budget?: number
  /**
   * Wall-clock limit of the call in milliseconds, measured from the call (over every repetition,
   * and over the whole batch in the batch forms). A run still going when it passes stops with a
   * `TrapError` of code `ETIME` and kind `timeout` (runs of a batch not yet started stop before
   * their first instruction). Checked at least every 2^20 instructions, so a run shorter than
   * that is never stopped by it.
   */
  timeoutMs?: number
  /**
   * Cancels `runAsync`/`runBatchAsync`: when it fires, the run under way stops (checked at least
   * every 2^20 instructions) and the promise rejects with an `AbortError` (code `ABORT_ERR`). The
   * synchronous forms only honour a signal that has already fired (they block the thread that
   * would deliver it).
   */
  signal?: AbortSignal
  /**
   * Record an instruction trace of the run (the last run when `repeat` > 1) in `RunResult.trace`
   * (or `TrapError.trace`): every instruction executed, with the registers it wrote and the
   * memory it touched. Traced runs take the interpreter on both engines (see README "Traces").
   * Not for the batch forms.
   */
  trace?: boolean
  /** Steps a trace keeps: the last ones (default 10000, at most 1000000); implies `trace`. */
  traceLimit?: number
}

/** The target of `bpf_redirect`: an interface, and its flags (`BPF_F_INGRESS` = 1: to its ingress). */
export interface Redirect {
  ifindex: number
  flags: number
  /** `bpf_redirect_map`: the map's name and the key looked up (devmap entries also set `ifindex`). */
  map?: string
  key?: number
  /** tc: how the packet goes (`bpf_redirect`, `bpf_redirect_neigh`, `bpf_redirect_peer`). */
  via?: 'redirect' | 'neigh' | 'peer'
  /** `bpf_redirect_neigh` with a next hop: its `struct bpf_redir_neigh` (20 bytes: family, then the address). */
  nexthop?: Uint8Array
}

export interface RunResult {
  /** The full 64-bit r0 at exit. */
  r0: bigint
  /** r0 truncated to 32 bits, unsigned: what the kernel's BPF_PROG_TEST_RUN reports. */
  retval: number
  /** The data as the program left it (XDP: the packet from data to data_end, after any adjust_head/tail). */
  data: Uint8Array
  /**
   * The context as the program left it, as bytes (xdp, socket_filter, cgroup_skb, tc). For tc it is what the
   * kernel's test run hands back: the input with `mark`, `priority`, `ingress_ifindex`, `ifindex`,
   * `cb`, `tstamp`, `wire_len`, `gso_segs` and `hwtstamp` as the program left them (`skb` has all).
   */
  ctx?: Uint8Array
  /** The context's named fields (xdp, socket_filter, cgroup_skb, tc). */
  ctxFields?: ContextValue
  /** XDP: the metadata in front of the packet. */
  meta?: Uint8Array
  /** tc: every field of `struct __sk_buff` as the program left it (`tc_classid`, `tc_index`, `hash`, ...). */
  skb?: SkbContext
  /**
   * tc and XDP: where the packet went, when the program returned the redirect action
   * (`TC_ACT_REDIRECT` 7, `XDP_REDIRECT` 4) after `bpf_redirect(ifindex, flags)`.
   */
  redirect?: Redirect
  /**
   * tc: the packets `bpf_clone_redirect` sent during the run, in order, each as the packet was at
   * the call (present when there were any; not reported by the batch forms).
   */
  clones?: ClonedPacket[]
  /**
   * tc: the tunnel metadata the program set with `bpf_skb_set_tunnel_key` (remote: the outer
   * destination), when it set any (not reported by the batch forms, which do give every packet
   * `RunOptions.tunnel`).
   */
  tunnel?: Required<TunnelMetadata> & { id: bigint }
  /**
   * Tracing: the writable images of `RunOptions.memory` as the run left them (what
   * `bpf_probe_write_user` wrote), in the order given, when there are any.
   */
  memory?: { address: bigint; bytes: Uint8Array }[]
  /** Instructions executed. */
  insnCount: number
  /** Wall time of one run inside the engine, in nanoseconds (the mean when `repeat` > 1). */
  durationNs: number
  /** Perf records dropped by this call (programs with `onPerfEvent`; see `perfBufferBytes`). */
  perfLost?: number
  /** The signals the program asked `bpf_send_signal(_thread)` to send, in order, when it asked for any (never sent; not reported by the batch forms). */
  signals?: SentSignal[]
  /** The instruction trace, for a run with `trace: true`. */
  trace?: Trace
}

const POINTER_LEAKS: readonly ('allow' | 'refuse')[] = ['allow', 'refuse']

function oneOf<T extends string>(what: string, value: unknown, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T
  throw new LoadError(
    'EINVAL',
    `${what} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${describeValue(value)}`,
  )
}

function checkBudget(budget: unknown): number | undefined {
  if (budget === undefined) return undefined
  if (typeof budget !== 'number' || !Number.isSafeInteger(budget) || budget < 1) {
    throw new LoadError('EINVAL', `budget must be a positive integer, got ${describeValue(budget)}`)
  }
  return budget
}

function checkTimeout(ms: unknown): number | undefined {
  if (ms === undefined) return undefined
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0) {
    throw new LoadError('EINVAL', `timeoutMs must be a positive number of milliseconds, got ${String(ms)}`)
  }
  return ms
}

function checkSignal(signal: unknown): AbortSignal | undefined {
  if (signal === undefined) return undefined
  if (!(signal instanceof AbortSignal)) throw new LoadError('EINVAL', 'signal must be an AbortSignal')
  if (signal.aborted) throw new AbortError('the run was cancelled before it started', undefined, signal.reason)
  return signal
}

/**
 * Runs `call` with a native cancel token that `signal` cancels when it fires (none without a
 * signal); an `aborted` trap in what it returns becomes an `AbortError` carrying the signal's reason.
 */
async function withSignal<T>(
  signal: AbortSignal | undefined,
  call: (token: NativeCancelToken | undefined) => Promise<T>,
): Promise<T> {
  if (signal === undefined) return call(undefined)
  const token = new native.NativeCancelToken()
  const onAbort = () => token.cancel()
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    return await call(token)
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}

function checkU32(what: string, v: unknown): number | undefined {
  return v === undefined ? undefined : checkU32Of(LoadError, what, v)
}

/**
 * Calls into the engine, turning an error napi-rs raises itself (a value it could not convert)
 * into a LoadError: arguments are checked before they get here, so this is only the last line.
 */
function engine<T>(what: string, call: () => T): T {
  try {
    return call()
  } catch (e) {
    throw fromCodedError(e, LoadError, what)
  }
}

async function engineAsync<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call()
  } catch (e) {
    throw fromCodedError(e, LoadError, what)
  }
}

/** The data of runs without data. */
const NO_DATA = new Uint8Array(0)

/** Where the low and the high 32 bits of a u64 are in a `Uint32Array` over its bytes (host order). */
const LOW = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1 ? 0 : 1
const HIGH = 1 - LOW

const view = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength)

/** `trace`/`traceLimit` of run options: the steps to keep, or undefined for an untraced run. */
function traceLimit(options: RunOptions): number | undefined {
  const { trace, traceLimit: limit } = options
  if (trace !== undefined && typeof trace !== 'boolean') {
    throw new LoadError('EINVAL', `trace must be a boolean, got ${describeValue(trace)}`)
  }
  if (limit === undefined) return trace ? DEFAULT_TRACE_LIMIT : undefined
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_TRACE_LIMIT) {
    throw new LoadError(
      'EINVAL',
      `traceLimit must be an integer from 1 to ${MAX_TRACE_LIMIT}, got ${describeValue(limit)}`,
    )
  }
  if (trace === false) throw new LoadError('EINVAL', 'traceLimit was given with trace: false')
  return limit
}

/** Run options of a batch form, which records no traces. */
function batchInput(type: ProgramType, options: RunOptions): NativeRunInput {
  if (options !== null && typeof options === 'object' && (options.trace || options.traceLimit !== undefined)) {
    throw new LoadError('EINVAL', 'the batch forms record no traces: trace a single run (run or runAsync)')
  }
  return runInput(type, options)
}

/** Checks run options and turns them into the engine's run input. */
function runInput(type: ProgramType, options: RunOptions): NativeRunInput {
  checkObject(LoadError, 'run options', options)
  const data = options.data ?? new Uint8Array(0)
  checkBytes(LoadError, 'data', data)
  const { repeat } = options
  if (repeat !== undefined && (!Number.isInteger(repeat) || repeat < 1 || repeat > 0xffffffff)) {
    throw new LoadError('EINVAL', `repeat must be an integer from 1 to 2^32-1, got ${describeValue(repeat)}`)
  }
  const ctx = encodeContext(type, options.ctx)
  const p = optionsObject<ProcessIdentity>(LoadError, 'process', options.process)
  if (p.comm !== undefined) checkString(LoadError, 'process.comm', p.comm)
  const task = p.task === undefined ? undefined : checkUnsigned64(LoadError, 'process.task', p.task)
  const jiffies = options.jiffies === undefined ? undefined : checkUnsigned64(LoadError, 'jiffies', options.jiffies)
  return {
    data: view(data),
    ctx: ctx && view(ctx),
    repeat,
    budget: checkBudget(options.budget),
    timeoutMs: checkTimeout(options.timeoutMs),
    pid: checkU32('process.pid', p.pid),
    tgid: checkU32('process.tgid', p.tgid),
    uid: checkU32('process.uid', p.uid),
    gid: checkU32('process.gid', p.gid),
    comm: p.comm,
    task,
    socket: socketOf(options.socket),
    jiffies,
    memory: memoryImages(options.memory),
    stack: callStack('stack', options.stack),
    userStack: callStack('userStack', options.userStack),
    attachCookie:
      options.attachCookie === undefined ? undefined : checkUnsigned64(LoadError, 'attachCookie', options.attachCookie),
    funcIp: options.funcIp === undefined ? undefined : checkUnsigned64(LoadError, 'funcIp', options.funcIp),
    tunnel: tunnelOf(options.tunnel),
    network: networkOf(options.network),
    traceLimit: traceLimit(options),
  }
}

/** Checks `RunOptions.socket` and turns it into the engine's. */
function socketOf(socket: unknown): NativeRunInput['socket'] {
  if (socket === undefined) return undefined
  checkObject(LoadError, 'socket', socket)
  const s = socket as SocketIdentity
  return {
    cookie: checkUnsigned64(LoadError, 'socket.cookie', s.cookie),
    uid: checkU32Of(LoadError, 'socket.uid', s.uid),
  }
}

/** Checks `RunOptions.stack` / `userStack`: at most 127 frames are ever used, more are refused. */
function callStack(what: string, stack: unknown): bigint[] | undefined {
  if (stack === undefined) return undefined
  const frames = checkDenseArray<bigint | number>(LoadError, what, stack)
  if (frames.length > 127)
    throw new LoadError('EINVAL', `${what} has ${frames.length} frames; the kernel's callchains hold at most 127`)
  return frames.map((ip, i) => checkUnsigned64(LoadError, `${what}[${i}]`, ip))
}

/** Checks `RunOptions.memory` and turns it into the engine's images (the bytes are not copied). */
function memoryImages(memory: unknown): NativeRunInput['memory'] {
  if (memory === undefined) return undefined
  return checkDenseArray<MemoryImage>(LoadError, 'memory', memory).map((image, i) => {
    checkObject(LoadError, `memory[${i}]`, image)
    const address = checkUnsigned64(LoadError, `memory[${i}].address`, image.address)
    const b = checkBytes(LoadError, `memory[${i}].bytes`, image.bytes)
    if (address + BigInt(b.byteLength) > 1n << 64n) {
      throw new LoadError('EINVAL', `memory[${i}] runs past the end of the address space (2^64)`)
    }
    const writable =
      image.writable === undefined ? false : checkBoolean(LoadError, `memory[${i}].writable`, image.writable)
    return { address, bytes: view(b), writable }
  })
}

/** One packet's outcome in `runBatch`. */
export type BatchEntry = ({ ok: true } & RunResult) | { ok: false; error: LoadError | TrapError }

/**
 * Where `reuse` packs packets and their lengths: kept from call to call, so that a batch neither
 * allocates nor faults in fresh pages for its packets (a third of the packing's time). Only for
 * calls during which no JavaScript runs (the engine reads them during the call and keeps nothing).
 */
let packScratch: Buffer = Buffer.alloc(0)
let lengthsScratch = new Uint32Array(0)
const MAX_LENGTH = constants.MAX_LENGTH

/**
 * The packets concatenated, with their lengths. `reuse`: into `packScratch` and `lengthsScratch`
 * (valid until the next such call), checked, measured and copied in one pass; otherwise into a
 * new buffer (`Buffer.concat`). A packet's size is read as `length`, not `byteLength`: the same
 * for a Uint8Array, but V8 (Node 20) inlines the one and calls a builtin for the other (1 ns
 * against 8 ns a packet). Copying in JavaScript (`set`, ~13 ns for 64 bytes) is cheaper than
 * reading the packets' bytes from the binding: N-API takes ~42 ns a packet to get an element and
 * its typed-array info.
 */
function concatPacked(packets: readonly Uint8Array[], reuse = false): { all: Buffer; lengths: Uint32Array } {
  // Holes are found as each packet is read (`packetAt`), not in a pass of their own.
  checkArray(LoadError, 'packets', packets)
  const count = packets.length
  if (!reuse) {
    const lengths = new Uint32Array(count)
    let total = 0
    for (let i = 0; i < count; i++) {
      const len = packetAt(packets, i).length
      lengths[i] = len
      total += len
    }
    return { all: Buffer.concat(packets, total), lengths }
  }
  if (lengthsScratch.length < count) lengthsScratch = new Uint32Array(Math.max(count, 2 * lengthsScratch.length))
  const lengths = lengthsScratch
  let scratch = packScratch
  let at = 0
  for (let i = 0; i < count; i++) {
    const p = packetAt(packets, i)
    const len = p.length
    lengths[i] = len
    if (at + len > scratch.length) scratch = grownScratch(at, at + len)
    scratch.set(p, at)
    at += len
  }
  return { all: scratch.subarray(0, at), lengths: lengths.subarray(0, count) }
}

/** `packets[i]`, checked to be bytes (a `Uint8Array`, or a `Buffer`) and not a hole. */
function packetAt(packets: readonly Uint8Array[], i: number): Uint8Array {
  const p = packets[i]
  if (p instanceof Uint8Array) return p
  checkSlot(LoadError, 'packets', packets, i)
  return checkBytes(LoadError, `packets[${i}]`, p)
}

/** `packScratch` grown to hold at least `need` bytes, its first `used` bytes kept. */
function grownScratch(used: number, need: number): Buffer {
  // Doubled, but never past the largest Buffer when `need` itself fits in one.
  const next = Buffer.allocUnsafeSlow(Math.max(need, Math.min(2 * packScratch.length, MAX_LENGTH), 4096))
  next.set(packScratch.subarray(0, used))
  packScratch = next
  return next
}

/** Packets that lie one after the other in one buffer: `lengths[i]` bytes each (as `pcap.readBatches` gives them). */
export interface PackedPackets {
  bytes: Uint8Array
  lengths: ArrayLike<number>
}

/**
 * The packets as one buffer and a typed array of their lengths: packed ones as they are, others
 * concatenated. `quiet`: no JavaScript runs during the engine's call (the program has no
 * JavaScript helpers), so arrays are packed into the reused buffer and packed input is read in
 * place; otherwise both are copied, since a helper could change or detach the caller's buffer
 * while the engine reads it.
 */
function packed(
  packets: readonly Uint8Array[] | PackedPackets,
  quiet: boolean,
): { all: Uint8Array; lengths: Uint32Array } {
  if (!Array.isArray(packets) && typeof packets === 'object' && packets !== null && 'bytes' in packets) {
    const p = packets as PackedPackets
    const all = checkBytes(LoadError, 'packets.bytes', p.bytes)
    const lengths = p.lengths instanceof Uint32Array ? p.lengths : Uint32Array.from(checkLengths(p.lengths))
    return quiet ? { all, lengths } : { all: Buffer.from(all), lengths: lengths.slice() }
  }
  return concatPacked(packets as readonly Uint8Array[], quiet)
}

function checkLengths(lengths: unknown): number[] {
  if (typeof lengths !== 'object' || lengths === null || typeof (lengths as ArrayLike<number>).length !== 'number') {
    throw new LoadError('EINVAL', `packets.lengths must be an array of lengths, got ${describeValue(lengths)}`)
  }
  return Array.from(lengths as ArrayLike<unknown>, (v, i) => checkU32Of(LoadError, `packets.lengths[${i}]`, v))
}

/** A Buffer view of bytes (no copy). */
const bufferOf = (b: Uint8Array): Buffer => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength))

const bytes = (b: Uint8Array): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength)

/** Each run's `retval` (the low 32 bits of its r0). */
function retvalsOf(r0: BigUint64Array): Uint32Array {
  const out = new Uint32Array(r0.length)
  if (LITTLE_ENDIAN) {
    // The low halves, every other word: no BigInt per packet.
    const words = new Uint32Array(r0.buffer, r0.byteOffset, 2 * r0.length)
    for (let i = 0; i < out.length; i++) out[i] = words[2 * i]!
  } else {
    for (let i = 0; i < out.length; i++) out[i] = Number(r0[i]! & 0xffffffffn)
  }
  return out
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

/** Views of the parts of a buffer that holds them one after the other, in order. */
class Slicer {
  /** Where the next part starts in `view`. */
  at = 0
  /** The whole buffer, to decode parts in place (`decodeContextAt`). */
  readonly view: DataView

  constructor(all: Uint8Array) {
    this.view = new DataView(all.buffer, all.byteOffset, all.byteLength)
  }

  next(len: number): Uint8Array {
    const v = new Uint8Array(this.view.buffer, this.view.byteOffset + this.at, len)
    this.at += len
    return v
  }

  /** `next`, or undefined for a part of no bytes (a run that left none). */
  nextOrUndefined(len: number): Uint8Array | undefined {
    return len === 0 ? undefined : this.next(len)
  }
}

function toResult(type: ProgramType, res: NativeRunResult): RunResult {
  const out: RunResult = {
    r0: res.r0,
    retval: Number(res.r0 & 0xffffffffn),
    data: bytes(res.data),
    insnCount: res.insnCount,
    durationNs: res.durationNs,
  }
  if (res.ctx) {
    out.ctx = bytes(res.ctx)
    out.ctxFields = decodeContext(type, out.ctx)
  }
  if (res.meta) out.meta = bytes(res.meta)
  if (res.skb) out.skb = decodeContext('tc', bytes(res.skb)) as SkbContext
  if (res.redirect) {
    const r: Redirect = { ifindex: res.redirect.ifindex, flags: res.redirect.flags }
    if (res.redirect.map != null) {
      r.map = res.redirect.map
      r.key = res.redirect.key ?? 0
    }
    if (res.redirect.via !== 'redirect') r.via = res.redirect.via as 'neigh' | 'peer'
    if (res.redirect.nexthop) r.nexthop = bytes(res.redirect.nexthop)
    out.redirect = r
  }
  if (res.clones.length > 0) {
    out.clones = res.clones.map((c) => ({ ifindex: c.ifindex, flags: c.flags, packet: bytes(c.packet) }))
  }
  if (res.tunnel) out.tunnel = tunnelResult(res.tunnel)
  if (res.memory.length > 0) out.memory = res.memory.map((m) => ({ address: m.address, bytes: bytes(m.bytes) }))
  if (res.signals.length > 0) out.signals = res.signals.map((s) => ({ signal: s.signal, thread: s.thread }))
  return out
}

/** Converts error data from the engine into the matching error class. */
export function fromNative(e: NativeError, cause?: unknown): LoadError | TrapError {
  const code = e.code as ErrorCode
  if (e.kind === 'aborted') {
    return new AbortError(e.message, { insn: e.insn ?? 0, insnCount: e.insnCount ?? 0 }, cause)
  }
  if (e.kind !== undefined) {
    return new TrapError(code, e.message, {
      kind: e.kind as TrapKind,
      insn: e.insn ?? 0,
      addr: e.addr ?? 0n,
      region: e.region ?? undefined,
      size: e.size ?? 0,
      insnCount: e.insnCount ?? 0,
    })
  }
  if (e.log !== undefined && e.log !== null) return new VerifierError(code, e.message, { insn: e.insn, log: e.log })
  return new LoadError(code, e.message, e.insn)
}

/** What the verifier reported of an accepted program (mode `verified`). */
export interface VerifierStats {
  /** Instructions processed over all paths (the kernel's `processed N insns`). */
  processedInsns: number
  /** Wall time of the verification, in nanoseconds. */
  verificationTimeNs: number
  /** States kept for pruning over the whole verification (the kernel's `total_states`). */
  totalStates: number
  /** The most states kept at one time (`peak_states`). */
  peakStates: number
  /** The most states kept at one instruction (`max_states_per_insn`). */
  maxStatesPerInsn: number
  /**
   * Bytes of stack each function uses, the main function first, then the others in instruction
   * order, each a multiple of 8: the kernel's `stack depth 16+8`.
   */
  stackDepth: number[]
  /**
   * The range r0 lies in when the program exits, signed and unsigned, for every run: with
   * `exitRange: true` (r0 kept precise at exit) or a type with a return range (`cgroup_skb`). The
   * union over every exit the walk reached; a path pruning left out ends inside it too.
   */
  exitR0?: { smin: bigint; smax: bigint; umin: bigint; umax: bigint }
}

const LOG_LEVELS: readonly number[] = [0, 1, 2]

/**
 * Whether mode `verified` is the default for the kernel's program types (`xdp`, `socket_filter`,
 * `tc`, `tracing`, ..., and so for every program of a `Collection`), as the design wants; `raw`
 * stays `checked` (it needs `dataSize` to be verified). README "Verifier" lists the fixture
 * programs and what the verifier says of each.
 */
const VERIFIED_BY_DEFAULT = true

/** `ProgramOptions.globalFunctions`, checked field by field (the engine trusts their shape). */
function checkGlobalFunctions(list: readonly GlobalFunction[]): GlobalFunction[] {
  return checkDenseArray<GlobalFunction>(LoadError, 'globalFunctions', list).map((g, i) => {
    const at = `globalFunctions[${i}]`
    checkObject(LoadError, at, g)
    checkU32Of(LoadError, `${at}.insn`, g.insn)
    checkString(LoadError, `${at}.name`, g.name)
    if (g.unsupported !== undefined) checkString(LoadError, `${at}.unsupported`, g.unsupported)
    const args = checkDenseArray<GlobalFunctionArg>(LoadError, `${at}.args`, g.args).map((a, k) => {
      checkObject(LoadError, `${at}.args[${k}]`, a)
      if (!['scalar', 'ctx', 'mem', 'mem_or_null'].includes(a.kind)) {
        throw new LoadError(
          'EINVAL',
          `${at}.args[${k}].kind must be 'scalar', 'ctx', 'mem' or 'mem_or_null', got ${describeValue(a.kind)}`,
        )
      }
      const memory = a.kind === 'mem' || a.kind === 'mem_or_null'
      if (memory) checkU32Of(LoadError, `${at}.args[${k}].size`, a.size)
      return memory ? { kind: a.kind, size: a.size } : { kind: a.kind }
    })
    if (args.length > 5) throw new LoadError('EINVAL', `${at}.args has ${args.length} arguments; at most 5`)
    return { insn: g.insn, name: g.name, args, unsupported: g.unsupported }
  })
}

/** The mode of a program of `type` whose options name none. */
export function defaultMode(type: ProgramType): SafetyMode {
  return VERIFIED_BY_DEFAULT && type !== 'raw' ? 'verified' : 'checked'
}

function checkLogLevel(level: unknown): number | undefined {
  if (level === undefined) return undefined
  if (!LOG_LEVELS.includes(level as number)) {
    throw new LoadError('EINVAL', `logLevel must be 0, 1 or 2, got ${describeValue(level)}`)
  }
  return level as number
}

export class Program {
  readonly type: ProgramType
  readonly mode: SafetyMode
  /** Process-unique id, as the kernel's program id. */
  readonly id: number
  /** @internal the engine's program */
  readonly native: NativeProgram
  readonly #lineInfo: LineInfo[]
  /** What coverage reports need besides the engine's counts (programs loaded with `coverage`). */
  readonly #coverageInfo: { instructions: Uint8Array; funcInfo: readonly FuncInfo[] } | undefined
  readonly #onPerfEvent: ((record: PerfRecord) => void) | undefined
  readonly #onPerfLost: ((count: number) => void) | undefined
  /** `run({ data })` of a raw program without JavaScript helpers takes `runInPlace`. */
  readonly #fastPath: boolean
  /** Whether JavaScript helpers may run during a run (then typed-array views must not be lent to it). */
  readonly #jsMayRun: boolean
  readonly #scratch = new BigUint64Array(3)
  /**
   * The scratch array's words as 32-bit halves (little-endian): the count and the time are read
   * as numbers without a BigInt each, and r0's halves tell whether it is the last run's r0.
   */
  readonly #scratchWords = new Uint32Array(this.#scratch.buffer)
  /** The last r0 read from the scratch array, as a bigint, and its halves: reused when equal. */
  #lastR0 = 0n
  #lastR0Low = 0
  #lastR0High = 0
  #texts: string[] | undefined

  constructor(options: ProgramOptions) {
    checkObject(LoadError, 'Program options', options)
    const { instructions } = options
    checkBytes(LoadError, 'instructions (bytecode)', instructions)
    this.type = oneOf('type', options.type, nativeNames<ProgramType>('ProgramTypeName'), 'raw')
    this.mode = oneOf('mode', options.mode, nativeNames<SafetyMode>('SafetyMode'), defaultMode(this.type))
    const engineName = oneOf('engine', options.engine, nativeNames<EngineName>('EngineName'), 'auto')
    const budget = checkBudget(options.budget)
    const pointerLeaks = oneOf('pointerLeaks', options.pointerLeaks, POINTER_LEAKS, 'refuse')
    const { blindConstants } = options
    if (blindConstants !== undefined && typeof blindConstants !== 'boolean') {
      throw new LoadError('EINVAL', `blindConstants must be a boolean, got ${String(blindConstants)}`)
    }
    const maps = checkDenseArray<BpfMap>(LoadError, 'maps (an array of BpfMap)', options.maps ?? [])
    const mapIds = maps.map((m, i) => asBpfMap(m, `maps[${i}]`).id)
    if (options.onPerfEvent !== undefined) checkFunction(LoadError, 'onPerfEvent', options.onPerfEvent)
    this.#onPerfEvent = options.onPerfEvent
    if (options.onPerfLost !== undefined && typeof options.onPerfLost !== 'function') {
      throw new LoadError('EINVAL', 'onPerfLost must be a function')
    }
    this.#onPerfLost = options.onPerfLost
    const perfBufferBytes = options.perfBufferBytes
    if (
      perfBufferBytes !== undefined &&
      (typeof perfBufferBytes !== 'number' ||
        !Number.isInteger(perfBufferBytes) ||
        perfBufferBytes < 1 ||
        perfBufferBytes > 2 ** 30)
    ) {
      throw new LoadError('EINVAL', `perfBufferBytes must be an integer from 1 to 2^30, got ${String(perfBufferBytes)}`)
    }
    const js = jsHelpers(options.helpers)
    const lineInfo = checkDenseArray<LineInfo>(LoadError, 'lineInfo', options.lineInfo ?? [])
    lineInfo.forEach((li, i) => {
      checkObject(LoadError, `lineInfo[${i}]`, li)
      checkU32Of(LoadError, `lineInfo[${i}].insn`, li.insn)
      checkString(LoadError, `lineInfo[${i}].file`, li.file)
      checkString(LoadError, `lineInfo[${i}].text`, li.text)
      checkU32Of(LoadError, `lineInfo[${i}].line`, li.line)
      checkU32Of(LoadError, `lineInfo[${i}].column`, li.column)
    })
    const logLevel = checkLogLevel(options.logLevel)
    if (options.meter !== undefined) checkBoolean(LoadError, 'meter', options.meter)
    for (const flag of ['unprivileged', 'exitRange'] as const) {
      const value = options[flag]
      if (value !== undefined && typeof value !== 'boolean') {
        throw new LoadError('EINVAL', `${flag} must be a boolean, got ${describeValue(value)}`)
      }
      if (value === true && this.mode !== 'verified') {
        throw new LoadError('EINVAL', `${flag}: true needs mode 'verified' (the mode is '${this.mode}')`)
      }
    }
    const license = options.license === undefined ? undefined : checkString(LoadError, 'license', options.license)
    const dataSize = options.dataSize === undefined ? undefined : checkU32Of(LoadError, 'dataSize', options.dataSize)
    const attachTypes = nativeNames<AttachTypeName>('AttachTypeName')
    const expectedAttachType =
      options.expectedAttachType === undefined
        ? undefined
        : oneOf('expectedAttachType', options.expectedAttachType, attachTypes, attachTypes[0]!)
    if (options.coverage !== undefined && typeof options.coverage !== 'boolean') {
      throw new LoadError('EINVAL', `coverage must be a boolean, got ${describeValue(options.coverage)}`)
    }
    const funcInfo = checkDenseArray<FuncInfo>(LoadError, 'funcInfo', options.funcInfo ?? [])
    funcInfo.forEach((f, i) => {
      checkObject(LoadError, `funcInfo[${i}]`, f)
      checkU32Of(LoadError, `funcInfo[${i}].insn`, f.insn)
      checkString(LoadError, `funcInfo[${i}].name`, f.name)
    })
    const funcEntries = checkDenseArray<number>(LoadError, 'funcEntries', options.funcEntries ?? []).map((e, i) =>
      checkU32Of(LoadError, `funcEntries[${i}]`, e),
    )
    const globalFunctions = checkGlobalFunctions(options.globalFunctions ?? [])
    const loaded = engine('program option', () =>
      native.loadProgram(
        instructions,
        {
          progType: this.type,
          engine: engineName,
          mode: this.mode,
          budget,
          mapIds,
          perfEvents: options.onPerfEvent !== undefined,
          perfBufferBytes,
          jsHelperIds: js?.ids,
          jsHelperNames: js?.names,
          jsHelperPrototypes: js?.prototypes,
          pointerLeaks,
          blindConstants,
          funcEntries,
          logLevel,
          license,
          dataSize,
          expectedAttachType,
          // Only the verifier reads them (its log's source lines).
          lineInfo: this.mode === 'verified' ? [...lineInfo] : undefined,
          coverage: options.coverage,
          globalFunctions: this.mode === 'verified' ? globalFunctions : undefined,
          unprivileged: options.unprivileged,
          exitRange: options.exitRange,
          meter: options.meter,
        },
        js?.dispatch,
      ),
    )
    this.#lineInfo = [...lineInfo].sort((a, b) => a.insn - b.insn)
    this.#coverageInfo = options.coverage
      ? { instructions: new Uint8Array(instructions), funcInfo: [...funcInfo] }
      : undefined
    if ('error' in loaded) {
      throw this.#located(fromNative(loaded.error as NativeError))
    }
    this.native = loaded as NativeProgram
    this.#fastPath = this.type === 'raw' && js === undefined && options.onPerfEvent === undefined
    // Runs without data report into the scratch array the native side keeps: a call with no
    // arguments costs napi-rs no typed-array bookkeeping.
    if (this.#fastPath) this.native.setScratch(this.#scratch)
    // JavaScript may run during a call when the program has JavaScript helpers, or when it can
    // tail-call into a program that has (the prog array's programs are set at run time).
    this.#jsMayRun = js !== undefined || callsTailCall(instructions)
    this.id = this.native.id
  }

  /**
   * A classic BPF program (`tcpdump -dd`/`-ddd` text, `struct sock_filter` bytes or an array of
   * `{ code, jt, jf, k }`), checked as the kernel checks it and converted to an eBPF socket filter
   * as the kernel converts it (see `cbpf.toEbpf`). A run's `retval` is the number of bytes to keep.
   */
  static fromClassic(
    program: ClassicInput,
    options: Omit<ProgramOptions, 'instructions' | 'type'> & ToEbpfOptions = {},
  ): Program {
    checkObject(LoadError, 'Program.fromClassic options', options)
    const { networkOffset, hatype, ...rest } = options
    const instructions = toEbpf(program, {
      ...(networkOffset === undefined ? {} : { networkOffset }),
      ...(hatype === undefined ? {} : { hatype }),
    })
    // The kernel runs a classic filter after bpf_check_classic, never through the eBPF verifier
    // (a converted filter may keep code no path reaches), so the default here is 'checked'.
    return new Program({ ...rest, mode: rest.mode ?? 'checked', type: 'socket_filter', instructions })
  }

  /** Mode `verified`: what the verifier reported; undefined in mode `checked`. */
  get verifierStats(): VerifierStats | undefined {
    const stats = this.native.verifierStats
    if (!stats) return undefined
    const { exitR0, ...rest } = stats
    return exitR0 ? { ...rest, exitR0 } : rest
  }

  /** Mode `verified` with `logLevel` 1 or 2: the verifier's log of the accepted program, in the kernel's format. */
  get verifierLog(): string | undefined {
    const log = this.native.verifierLog
    return log === undefined || log === null || log === '' ? undefined : log
  }

  /** The engine that runs this program: `jit` or `interpreter` (`auto` resolved). */
  get engine(): 'jit' | 'interpreter' {
    return this.native.engine as 'jit' | 'interpreter'
  }

  /** Runs the program (`repeat` times) on the calling thread. Throws `TrapError` if a run stops abnormally. */
  run(options?: RunOptions): RunResult {
    // No options: no object to look into (nor a default one to make).
    if (options === undefined) {
      if (this.#fastPath) return this.#runInPlace(undefined)
      options = {}
    }
    if (
      this.#fastPath &&
      options !== null &&
      typeof options === 'object' &&
      options.ctx === undefined &&
      options.process === undefined &&
      options.repeat === undefined &&
      options.budget === undefined &&
      options.timeoutMs === undefined &&
      options.signal === undefined &&
      options.trace === undefined &&
      options.traceLimit === undefined
    ) {
      return this.#runInPlace(options.data)
    }
    checkSignal(options?.signal)
    const input = runInput(this.type, options)
    const res = engine('run option', () => this.native.run(input))
    return this.#result(res, this.#deliverPerfRecords())
  }

  /**
   * A `raw` run with data only: the engine runs on a private copy of the data in place and reports
   * through a scratch array, so that a call creates no objects but the result.
   */
  #runInPlace(input: Uint8Array | undefined): RunResult {
    if (input !== undefined) checkBytes(LoadError, 'data', input)
    // A copy in a new (never shared) ArrayBuffer: Buffer#slice would be a view of the caller's bytes.
    // No data shares one empty array: nothing can be written to it, and a fresh typed array per
    // run costs V8 a backing-store allocation when the engine asks for its memory.
    const data = input === undefined || input.byteLength === 0 ? NO_DATA : new Uint8Array(input)
    const native = this.native
    let ran: boolean
    try {
      ran = data === NO_DATA ? native.runNoData() : native.runInPlace(data)
    } catch (e) {
      throw fromCodedError(e, LoadError, 'data')
    }
    if (!ran) throw this.#located(fromNative(native.takeError()!))
    // [r0, instructions, nanoseconds] as u64 words: the numbers from their halves (the same
    // rounding as Number(bigint) above 2^53: hi * 2^32 is exact, the sum rounded once).
    const w = this.#scratchWords
    const low = w[LOW]!
    const high = w[HIGH]!
    if (low !== this.#lastR0Low || high !== this.#lastR0High) {
      this.#lastR0 = this.#scratch[0]!
      this.#lastR0Low = low
      this.#lastR0High = high
    }
    return {
      r0: this.#lastR0,
      retval: low,
      data,
      insnCount: w[2 + LOW]! + w[2 + HIGH]! * 0x1_0000_0000,
      durationNs: w[4 + LOW]! + w[4 + HIGH]! * 0x1_0000_0000,
    }
  }

  /**
   * The same as `run`, off the JavaScript thread (on the libuv thread pool). `signal` cancels it:
   * the promise then rejects with an `AbortError`.
   */
  async runAsync(options: RunOptions = {}): Promise<RunResult> {
    const input = runInput(this.type, options)
    const signal = checkSignal(options.signal)
    const res = await engineAsync('run option', () => withSignal(signal, (token) => this.native.runAsync(input, token)))
    return this.#result(res, this.#deliverPerfRecords(), signal?.reason)
  }

  /**
   * One run per packet, in order, each with the other inputs of `options` (ctx, process, budget);
   * a trap on one packet does not stop the others. Each entry is the run's result or its error.
   */
  runBatch(packets: readonly Uint8Array[], options: Omit<RunOptions, 'data' | 'repeat'> = {}): BatchEntry[] {
    // Without JavaScript helpers nothing runs JavaScript during the engine's call: the packets
    // may be packed into the reused buffer.
    const { all, lengths } = concatPacked(packets, !this.#jsMayRun)
    const input = batchInput(this.type, options)
    checkSignal(options?.signal)
    const out = this.#entries(engine('run option', () => this.native.runBatch(all, lengths, input)))
    this.#deliverPerfRecords()
    return out
  }

  /**
   * The lean form of `runBatch` for throughput: only each packet's `retval` (the low 32 bits of
   * r0, 0 where the run trapped) in one array, and the errors of the packets that trapped. No
   * object is created per packet, and with no option but `wireLengths` nothing is copied back.
   * `wireLengths` (socket filters): each packet's length on the wire, its `__sk_buff.len` where
   * larger than the packet (a capture cut to its snap length, as `filterPcap` reads them).
   * `durationNs`: the whole batch's time inside the engine (one clock reading at each end, as the
   * kernel's test run measures `repeat`), where the batch took the lean path.
   */
  runBatchRetvals(
    packets: readonly Uint8Array[] | PackedPackets,
    options: Omit<RunOptions, 'data' | 'repeat'> & { wireLengths?: ArrayLike<number> } = {},
  ): { retvals: Uint32Array; errors: Array<{ index: number; error: LoadError | TrapError }>; durationNs?: number } {
    // Without JavaScript helpers nothing runs JavaScript during the engine's call: the packets
    // may be packed into the reused buffer.
    const { all, lengths } = packed(packets, !this.#jsMayRun)
    checkObject(LoadError, 'runBatchRetvals options', options)
    const { wireLengths, ...rest } = options
    const wire = wireLengths === undefined ? undefined : this.#wireLengths(wireLengths, lengths.length)
    const located = (errors: Array<{ index: number; error: NativeError }>) =>
      errors.map((e) => ({ index: e.index, error: this.#located(fromNative(e.error)) }))
    if (!this.#jsMayRun && Object.values(rest).every((v) => v === undefined)) {
      const b = engine('run option', () => this.native.runBatchRetvals(bufferOf(all), lengths, wire))
      this.#deliverPerfRecords()
      return { retvals: b.retvals, errors: located(b.errors), durationNs: b.durationNs }
    }
    if (wire !== undefined)
      throw new LoadError('EINVAL', 'wireLengths goes with no other run option nor JavaScript helpers')
    const input = batchInput(this.type, rest)
    checkSignal(rest.signal)
    const b = engine('run option', () => this.native.runBatch(bufferOf(all), lengths, input))
    this.#deliverPerfRecords()
    return { retvals: retvalsOf(b.r0), errors: located(b.errors) }
  }

  /** @internal Whether `filterPcapRecords` can run this program: it has no JavaScript helpers. */
  filtersPcapRecords(): boolean {
    return !this.#jsMayRun
  }

  /**
   * @internal `filterPcap`'s fast path (ts/pcap-fast.ts): the program over the pcap records of the
   * file open as `input` from byte `from` (one window of the file), the kept ones written to the
   * descriptor `output` (-1: counted only); see `NativeProgram.filterPcapRecords`. Only for a
   * program that `filtersPcapRecords`.
   */
  filterPcapRecords(
    input: number,
    from: number,
    output: number,
    snaplen: number,
    layout: RecordsLayout,
  ): NativeRecordsOutcome {
    const outcome = engine('filterPcap', () => this.native.filterPcapRecords(input, from, output, snaplen, layout))
    this.#deliverPerfRecords()
    return outcome
  }

  /**
   * `runBatch` without an object per packet: each packet's `retval` (0 where the run trapped), the
   * packets as the runs left them (`data`, one after the other, `dataLengths[i]` bytes each; a
   * packet that trapped as it came in) and the errors of the runs that trapped. The form
   * `runPcap` writes per-verdict captures with.
   */
  runBatchData(
    packets: readonly Uint8Array[] | PackedPackets,
    options: Omit<RunOptions, 'data' | 'repeat'> = {},
  ): {
    retvals: Uint32Array
    data: Uint8Array
    dataLengths: Uint32Array
    errors: Array<{ index: number; error: LoadError | TrapError }>
  } {
    const { all, lengths } = packed(packets, !this.#jsMayRun)
    checkObject(LoadError, 'runBatchData options', options)
    const input = batchInput(this.type, options)
    checkSignal(options.signal)
    const b = engine('run option', () => this.native.runBatch(bufferOf(all), lengths, input))
    this.#deliverPerfRecords()
    return {
      retvals: retvalsOf(b.r0),
      data: bytes(b.data),
      dataLengths: b.dataLengths,
      errors: b.errors.map((e) => ({ index: e.index, error: this.#located(fromNative(e.error)) })),
    }
  }

  /** `wireLengths` checked: socket filters only, one u32 per packet. */
  #wireLengths(wireLengths: ArrayLike<number>, count: number): Uint32Array {
    if (this.type !== 'socket_filter') {
      throw new LoadError(
        'EINVAL',
        `wireLengths are the __sk_buff.len of socket filters; this program is '${this.type}'`,
      )
    }
    const w = wireLengths instanceof Uint32Array ? wireLengths : Uint32Array.from(checkLengths(wireLengths))
    if (w.length !== count) throw new LoadError('EINVAL', `wireLengths has ${w.length} entries for ${count} packets`)
    return w
  }

  /**
   * `runBatch` off the JavaScript thread. `signal` cancels the whole batch: the promise then
   * rejects with an `AbortError`.
   */
  async runBatchAsync(
    packets: readonly Uint8Array[],
    options: Omit<RunOptions, 'data' | 'repeat'> = {},
  ): Promise<BatchEntry[]> {
    // A new buffer of its own, which the engine keeps while the batch runs on the thread pool.
    const { all, lengths } = concatPacked(packets)
    const input = batchInput(this.type, options)
    const signal = checkSignal(options.signal)
    const batch = await engineAsync('run option', () =>
      withSignal(signal, (token) => this.native.runBatchAsync(all, lengths, input, token)),
    )
    this.#deliverPerfRecords()
    const aborted = batch.errors.find((e) => e.error.kind === 'aborted')
    if (aborted) throw fromNative(aborted.error, signal?.reason)
    return this.#entries(batch)
  }

  /**
   * Runs this socket filter over every packet of a capture (a path, stream or bytes, pcap or
   * pcapng) in batches, and writes the packets it keeps, cut to the length it returned, to `output`
   * (a path or stream; undefined: only count). Resolves to the counts and the packets per second.
   */
  filterPcap(
    input: PcapInput,
    output: string | Writable | undefined,
    options: FilterPcapOptions = {},
  ): Promise<FilterPcapSummary> {
    return filterPcap(this, input, output, options)
  }

  /**
   * Runs this program (XDP, tc, or any packet program) over every packet of a capture in batches;
   * `outputs` maps verdicts (`XDP_PASS` or `pass`, `TC_ACT_SHOT` or `shot`, a return value, `trapped`)
   * to a path or stream that gets the packets of that verdict as the program left them. Resolves to
   * the packets per verdict, the bytes and the packets per second.
   */
  runPcap(
    input: PcapInput,
    outputs: Record<string, string | Writable> = {},
    options: RunPcapOptions = {},
  ): Promise<RunPcapSummary> {
    return runPcap(this, input, outputs, options)
  }

  /** Text the program printed with `bpf_trace_printk`, one line per call; `take` empties the log. */
  traceLog(options: { take?: boolean } = {}): string {
    const { take } = optionsObject<{ take?: boolean }>(LoadError, 'traceLog options', options)
    if (take !== undefined && typeof take !== 'boolean')
      throw new LoadError('EINVAL', `take must be a boolean, got ${describeValue(take)}`)
    return this.native.traceLog(take)
  }

  /** Hands the records of the last call to `onPerfEvent`; returns how many were lost. */
  #deliverPerfRecords(): number | undefined {
    if (!this.#onPerfEvent) return undefined
    const { records, lost } = this.native.takePerfRecords()
    for (const r of records) this.#onPerfEvent({ index: r.index, data: bytes(r.data) })
    if (lost > 0) this.#onPerfLost?.(lost)
    return lost
  }

  /** Unpacks a batch: per-packet views into the few buffers the engine returned. */
  #entries(b: NativeBatch): BatchEntry[] {
    const errors = b.errors.length === 0 ? undefined : new Map(b.errors.map((e) => [e.index, e.error]))
    const { r0, insnCounts, durations, dataLengths, ctxLengths, metaLengths, skbLengths } = b
    const { redirectIfindexes, redirectFlags } = b
    const retvals = retvalsOf(r0)
    const data = new Slicer(b.data)
    const ctxs = new Slicer(b.ctx)
    const metas = new Slicer(b.meta)
    const skbs = new Slicer(b.skb)
    const out: BatchEntry[] = []
    for (let i = 0; i < dataLengths.length; i++) {
      // Every packet takes its place in each buffer, a trapped one too.
      const d = data.next(dataLengths[i]!)
      const ctxAt = ctxs.at
      const ctxLen = ctxLengths[i]!
      const ctx = ctxs.nextOrUndefined(ctxLen)
      const meta = metas.nextOrUndefined(metaLengths[i]!)
      const skbAt = skbs.at
      const skbLen = skbLengths[i]!
      const skb = skbLen === 0 ? undefined : (decodeContextAt('tc', skbs.view, skbAt, skbLen) as SkbContext)
      skbs.at += skbLen
      const error = errors?.get(i)
      if (error) {
        out.push({ ok: false, error: this.#located(fromNative(error)) })
        continue
      }
      const flags = redirectFlags[i]!
      // Every field in one literal: one object shape for the whole batch.
      out.push({
        ok: true,
        r0: r0[i]!,
        retval: retvals[i]!,
        data: d,
        ctx,
        ctxFields: ctx && decodeContextAt(this.type, ctxs.view, ctxAt, ctxLen),
        meta,
        skb,
        redirect: flags < 0 ? undefined : { ifindex: redirectIfindexes[i]!, flags },
        insnCount: insnCounts[i]!,
        durationNs: durations[i]!,
      })
    }
    return out
  }

  #result(res: NativeRunResult, perfLost: number | undefined, abortReason?: unknown): RunResult {
    const trace = res.trace && toTrace(res.trace, this.#insnTexts(), this.#lineInfo)
    if (res.error) {
      const e = this.#located(fromNative(res.error, abortReason))
      if (trace && e instanceof TrapError) e.trace = trace
      throw e
    }
    const result = toResult(this.type, res)
    if (perfLost !== undefined) result.perfLost = perfLost
    if (trace) result.trace = trace
    return result
  }

  /**
   * The coverage counted over every untraced run since load (or since `resetCoverage`): hits per
   * instruction, taken / not taken per conditional jump, C lines through line info, `toLcov()`.
   * Undefined for a program loaded without `coverage: true`.
   */
  get coverage(): Coverage | undefined {
    const c = this.coverageOf('')
    return c && new Coverage([c])
  }

  /** @internal this program's coverage under `name` (a collection's report). */
  coverageOf(name: string): ProgramCoverage | undefined {
    const info = this.#coverageInfo
    const counts = info && this.native.coverage(false)
    if (!info || !counts) return undefined
    return programCoverage(name, counts, info.instructions, this.#lineInfo, info.funcInfo)
  }

  /** Sets the coverage counters back to zero. */
  resetCoverage(): void {
    this.native.coverage(true)
  }

  /** Each slot's instruction text for traces, fetched from the engine on the first traced run. */
  #insnTexts(): string[] {
    this.#texts ??= this.native.insnTexts()
    return this.#texts
  }

  /** Adds the C source line of the error's instruction, when line info says it. */
  #located<E extends LoadError | TrapError>(e: E): E {
    const insn = e.insn
    if (insn === undefined) return e
    const found = lineAt(this.#lineInfo, insn)
    if (found) {
      e.source = { file: found.file, line: found.line, column: found.column, text: found.text }
      e.message += ` (${found.file}:${found.line}:${found.column}: ${found.text.trim()})`
    }
    return e
  }

  /**
   * `xlated`: the bytecode as loaded. `jited`: the x86-64 machine code as Intel-syntax assembly,
   * one `; insn N` marker where each instruction's code begins and a `; function at insn N` one
   * where each function but the main one begins (a one-line note when the program runs on the
   * interpreter).
   */
  dump(what: 'xlated'): Uint8Array
  dump(what: 'jited'): string
  dump(what: 'xlated' | 'jited'): Uint8Array | string {
    if (what === 'jited') return this.native.jited()
    if (what !== 'xlated')
      throw new LoadError('EINVAL', `dump kind must be 'xlated' or 'jited', got ${describeValue(what)}`)
    const b = this.native.xlated()
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
  }
}
