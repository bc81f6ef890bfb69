/**
 * `ebpf run FILE.bin|FILE.s|OBJ.o ...`: loads a program (raw bytecode, assembly text, or a program of
 * an object through a Collection, with `--set` applied to its globals first), runs it once or
 * `--repeat` times, and prints what `bpftool prog run` would: return value, output data if the
 * program changed it, plus r0, the instruction count, trace_printk output and, with `--dump-maps`,
 * the maps after the run. A trap prints its kind, instruction and C source line and exits 2.
 */
import { existsSync, statSync } from 'node:fs'
import {
  actionName,
  type BatchEntry,
  Collection,
  type CollectionSpec,
  type ContextValue,
  EbpfError,
  type EngineName,
  loadCollectionSpecSync,
  Program,
  type ProgramType,
  pcap,
  type RunPcapSummary,
  type RunResult,
  runPcap,
  type SafetyMode,
  TrapError,
} from '../index.js'
import { expectPositionals, optFlag, optList, optPositiveInt, optString, type Parsed, UsageError } from './args.js'
import type { Command } from './command.js'
import { btfContextBytes, parseContextFields } from './ctx-fields.js'
import { dumpMaps, mapJson, mapsText } from './dump-maps.js'
import { json, jsonLine } from './format.js'
import { bpftoolHexDump } from './hex-dump.js'
import {
  about,
  assembleFile,
  CliError,
  classicText,
  displayName,
  isElf,
  parseHex,
  readInput,
  sameBytes,
  toHex,
  writeOutput,
} from './io.js'
import { assignment, loadOptionsFrom, OBJECT_OPTIONS, parseValue } from './object-options.js'
import { LARGE_CAPTURE_BYTES, LARGE_REPEAT, PROGRESS_OPTIONS, Progress, progressWanted } from './progress.js'
import { COVERAGE_OPTIONS, wantsCoverage, writeCoverage } from './run-coverage.js'
import { checkTraceWithRepeat, TRACE_OPTIONS, traceJson, traceRunOptions, traceText } from './run-trace.js'
import { selectProgram } from './select.js'

/**
 * Program types raw bytecode can be run as (objects take libbpf's names: xdp, sched_cls, kprobe, ...).
 * Checked against the binding's declaration of the names (`satisfies`); listed here so that `ebpf help`
 * works without the native binding.
 */
const RAW_TYPES: readonly string[] = [
  'raw',
  'xdp',
  'socket_filter',
  'tc',
  'cgroup_skb',
  'tracing',
  'tracepoint',
  'raw_tracepoint',
] satisfies ProgramType[]

/** The program to run and, for objects, the collection it belongs to. */
interface Loaded {
  program: Program
  /** The object's program name. */
  name?: string
  collection?: Collection
  spec?: CollectionSpec
}

export function applySets(spec: CollectionSpec, sets: readonly string[], file: string): void {
  for (const s of sets) {
    const [name, value] = assignment(s, 'set', 'run')
    const v = spec.variables.get(name)
    if (!v) {
      const known = [...spec.variables.keys()].join(', ') || '(none)'
      throw new CliError(`${displayName(file)}: no global variable '${name}'; the object has: ${known}`)
    }
    try {
      v.set(parseValue(value))
    } catch (e) {
      if (e instanceof EbpfError) throw new CliError(`${displayName(file)}: --set ${name}: ${e.message}`)
      throw e
    }
  }
}

/** `--map-update MAP=[KEY,VALUE]`: entries written into the collection's maps before the run. */
export function applyMapUpdates(coll: Collection, updates: readonly string[], file: string): void {
  for (const u of updates) {
    const [name, text] = assignment(u, 'map-update', 'run')
    const map = coll.maps.get(name)
    if (!map) {
      throw new CliError(`${displayName(file)}: no map '${name}'; the object has: ${[...coll.maps.keys()].join(', ')}`)
    }
    let pair: unknown
    try {
      pair = JSON.parse(text)
    } catch {
      pair = undefined
    }
    if (!Array.isArray(pair) || pair.length !== 2) {
      throw new UsageError(`--map-update ${name}: the value must be a JSON array [KEY, VALUE], got '${text}'`, 'run')
    }
    try {
      map.update(pair[0], pair[1])
    } catch (e) {
      if (e instanceof EbpfError) throw new CliError(`${displayName(file)}: --map-update ${name}: ${e.message}`)
      throw e
    }
  }
}

function load(file: string, args: Parsed, engine: EngineName | undefined, budget: number | undefined): Loaded {
  const bytes = readInput(file)
  const name = optString(args, 'program')
  const sets = optList(args, 'set')
  const updates = optList(args, 'map-update')
  const coverage = wantsCoverage(args)
  const mode = optString(args, 'mode') as SafetyMode | undefined
  // The CLI reports insnCount and takes --budget in either mode: verified runs are metered here
  // too (`meter`), where a library user's are not by default.
  const meter = true
  if (isElf(bytes)) {
    const spec = about(file, () => loadCollectionSpecSync(bytes, loadOptionsFrom(args, 'run')))
    const progSpec = selectProgram(spec, name, file)
    // For a section name that says no type (or the wrong one), as spec.programs.get(x).type = T.
    const type = optString(args, 'type')
    if (type !== undefined) progSpec.type = type
    applySets(spec, sets, file)
    // Only the chosen program is loaded (and the maps it uses), so that the object's other
    // programs, supported here or not, do not stand in its way.
    const collection = about(
      file,
      () => new Collection(spec, { engine, mode, budget, meter, coverage, programs: [progSpec.name] }),
    )
    applyMapUpdates(collection, updates, file)
    return { program: collection.programs.get(progSpec.name)!, name: progSpec.name, collection, spec }
  }
  for (const [opt, given] of [
    ['program', name !== undefined],
    ['set', sets.length > 0],
    ['map-update', updates.length > 0],
  ] as const) {
    if (given) throw new UsageError(`--${opt} needs an ELF object; ${displayName(file)} is not one`, 'run')
  }
  const classic = classicText(bytes, file)
  if (classic !== undefined) {
    // tcpdump's filters are socket filters: converted as the kernel converts them on attach.
    const given = optString(args, 'type')
    if (given !== undefined && given !== 'socket_filter') {
      throw new UsageError(
        `${displayName(file)} is classic BPF (${classic.form} text): it runs as a socket_filter, not '${given}'`,
        'run',
      )
    }
    return { program: about(file, () => Program.fromClassic(classic.text, { engine, mode, budget, meter, coverage })) }
  }
  const instructions = /\.(s|S|asm)$/.test(file) ? assembleFile(file, bytes) : bytes
  const type = (optString(args, 'type') ?? 'raw') as ProgramType
  if (!RAW_TYPES.includes(type)) {
    throw new UsageError(`--type for raw bytecode must be one of ${RAW_TYPES.join(', ')}, got '${type}'`, 'run')
  }
  const program = about(file, () => new Program({ type, instructions, engine, mode, budget, meter, coverage }))
  return { program }
}

function logLines(program: Program): string[] {
  const log = program.traceLog()
  return log === '' ? [] : log.replace(/\n$/, '').split('\n')
}

/**
 * What bpf_trace_printk wrote: the program's own lines, then those of other programs of the
 * collection (tail-call targets keep their own log), prefixed with their name.
 */
function traceLines(loaded: Loaded): string[] {
  const lines = logLines(loaded.program)
  for (const [name, p] of loaded.collection?.programs ?? []) {
    if (p !== loaded.program) lines.push(...logLines(p).map((l) => `[${name}] ${l}`))
  }
  return lines
}

const retvalName = actionName

function report(loaded: Loaded, res: RunResult, input: Uint8Array, args: Parsed, repeat: number): string {
  const { program } = loaded
  const changed = !sameBytes(input, res.data)
  const trace = traceLines(loaded)
  const maps =
    optFlag(args, 'dump-maps') && loaded.collection && loaded.spec
      ? dumpMaps(loaded.collection, loaded.spec)
      : undefined
  const action = retvalName(program.type, res.retval)
  if (optFlag(args, 'json')) {
    return json({
      retval: res.retval,
      ...(action ? { action } : {}),
      r0: res.r0,
      insnCount: res.insnCount,
      durationNs: res.durationNs,
      repeat,
      engine: program.engine,
      dataChanged: changed,
      data: res.data,
      ...(res.meta && res.meta.length > 0 ? { meta: res.meta } : {}),
      ...(res.ctxFields ? { ctx: res.ctxFields } : {}),
      ...(res.redirect ? { redirect: res.redirect } : {}),
      trace,
      ...(maps ? { maps: Object.fromEntries(maps.map(mapJson)) } : {}),
      ...traceJson(res.trace),
    })
  }
  const lines = [
    `retval: ${res.retval}${action ? ` (${action})` : ''}`,
    `r0: ${res.r0} (0x${res.r0.toString(16)})`,
    `insns: ${res.insnCount}`,
    `duration: ${Math.round(res.durationNs)} ns${repeat > 1 ? ` (mean of ${repeat} runs)` : ''}`,
    `engine: ${program.engine}`,
  ]
  if (changed) lines.push(`data: ${toHex(res.data)}`)
  if (res.meta && res.meta.length > 0) lines.push(`meta: ${toHex(res.meta)}`)
  if (res.redirect) {
    lines.push(`redirect: ifindex ${res.redirect.ifindex}${res.redirect.flags & 1 ? ' (ingress)' : ' (egress)'}`)
  }
  let text = `${lines.join('\n')}\n`
  if (trace.length > 0) text += `trace:\n${trace.map((l) => `  ${l}`).join('\n')}\n`
  if (maps) text += mapsText(maps)
  return text + traceText(res.trace)
}

/** A trap as the user should see it: what, where (instruction and C line), after how many instructions. */
function trapReport(file: string, e: TrapError, trace: string[], asJson: boolean): { stdout: string; stderr: string } {
  // The library appends the C source line to the message; it gets its own line here.
  const src = e.source
  const suffix = src ? ` (${src.file}:${src.line}:${src.column}: ${src.text.trim()})` : ''
  const message = suffix && e.message.endsWith(suffix) ? e.message.slice(0, -suffix.length) : e.message
  const stderr =
    `ebpf run: ${displayName(file)}: trap ${e.kind} (${e.code}): ${message}\n` +
    `  trapped at instruction ${e.insn} after executing ${e.insnCount} instructions\n` +
    (src ? `  source: ${src.file}:${src.line}:${src.column}: ${src.text.trim()}\n` : '')
  const stdout = asJson
    ? json({
        error: {
          code: e.code,
          kind: e.kind,
          insn: e.insn,
          insnCount: e.insnCount,
          addr: e.addr,
          region: e.region,
          size: e.size,
          message: e.message,
          ...(e.source ? { source: e.source } : {}),
        },
        trace,
        ...traceJson(e.trace),
      })
    : (trace.length > 0 ? `trace:\n${trace.map((l) => `  ${l}`).join('\n')}\n` : '') + traceText(e.trace)
  return { stdout, stderr }
}

export const runCommand: Command = {
  name: 'run',
  usage:
    'ebpf run FILE.bin|FILE.s|OBJ.o|FILTER.cbpf [--program NAME] [--type TYPE]\n' +
    '         [--data FILE | --hex HEX | --pcap IN.pcap] [--ctx-hex HEX | --ctx-in FILE | --ctx FIELD=VALUE,...]\n' +
    '         [--data-out FILE] [--ctx-out FILE] [--engine jit|interpreter|auto] [--repeat N]\n' +
    '         [--mode verified|checked] [--budget N] [--set VAR=VALUE ...] [--map-update MAP=[KEY,VALUE] ...] [--dump-maps] [--json]\n' +
    '         [--trace [--trace-limit N]] [--coverage OUT.lcov] [--progress auto|always|never]',
  summary: 'run a program once (or --repeat times) and print its result',
  description:
    'Loads raw bytecode (FILE.s is assembled first) as a program of --type (default raw: r1 = data, r2 =\n' +
    'length; classic BPF text from tcpdump -dd/-ddd is converted to a socket_filter),\n' +
    'length), or a program of an ELF object through a Collection (its maps created, its type from its\n' +
    'section, or --type (libbpf names: xdp, socket_filter, sched_cls, kprobe, ...) where the section says\n' +
    'none; only that program and the maps it uses are loaded; --set changes .rodata/.data/.bss variables before load, --map-update writes map entries\n' +
    'with BTF-typed JSON before the run). Prints retval (with the XDP action name), r0, instructions\n' +
    'executed, duration, the engine, the output data as hex if the program changed it, trace_printk\n' +
    'output and, with --dump-maps, every map after the run; with --trace, every instruction executed as the\n' +
    "kernel's verifier log prints it, with the registers it wrote, the memory it touched and the C source\n" +
    'lines; with --coverage, the C line and branch coverage of the run(s) as an lcov tracefile. Exit code 2\n' +
    'when the program traps.\n' +
    'With --pcap IN.pcap, the program runs once on every packet of the capture (pcap or pcapng) in\n' +
    'batches, with the same context options: one line per packet (its retval and action, the\n' +
    'instructions, whether it changed the packet, or its trap) and the packets per verdict; exit code 2\n' +
    "when a run trapped. (--data takes one packet's raw bytes and refuses a capture file.) A progress line\n" +
    'is shown on standard error when it is a terminal and the work is large (a capture of 32 MiB, a\n' +
    '--repeat of a million runs).',
  options: {
    program: { value: true, arg: 'NAME', help: "the object's program to run (needed when it has several)" },
    type: {
      value: true,
      arg: 'TYPE',
      help: "program type: of raw bytecode raw|xdp|socket_filter|tc|tracing|tracepoint|raw_tracepoint (default raw); of an object's program a libbpf name (xdp, sched_cls, ...), for sections that say none",
    },
    data: { value: true, arg: 'FILE', help: 'input data (packet) from a file' },
    pcap: { value: true, arg: 'IN.pcap', help: 'run every packet of a capture file (pcap or pcapng)' },
    hex: { value: true, arg: 'HEX', help: 'input data as hex (e.g. 0a0b0c or "0a 0b 0c")' },
    'ctx-hex': { value: true, arg: 'HEX', help: 'context bytes (struct xdp_md, struct __sk_buff, tracing ctx)' },
    'ctx-in': { value: true, arg: 'FILE', help: 'context bytes from a file (as bpftool prog run ctx_in)' },
    ctx: {
      value: true,
      arg: 'FIELD=VALUE,...',
      help: 'context by field names: struct __sk_buff / xdp_md (mark=1,ifindex=2,cb=[1,2,3,4,5]); for kprobes, tracepoints and raw tracepoints the BTF names of the context struct (di=1,si=2; a record field; args=[1,2])',
    },
    'data-out': { value: true, arg: 'FILE', help: "write the output data to FILE ('-': hex dump on stdout)" },
    'ctx-out': { value: true, arg: 'FILE', help: "write the context after the run to FILE ('-': hex dump on stdout)" },
    engine: {
      value: true,
      arg: 'ENGINE',
      choices: ['jit', 'interpreter', 'auto'] satisfies EngineName[],
      help: 'default auto',
    },
    mode: {
      value: true,
      arg: 'MODE',
      choices: ['verified', 'checked'] satisfies SafetyMode[],
      help: 'verified (the default, except for --type raw and classic BPF): the verifier must prove the program safe before it runs; checked: run-time checks only',
    },
    repeat: { value: true, arg: 'N', help: 'run N times; duration is the mean' },
    budget: { value: true, arg: 'N', help: 'instructions a run may execute (default 10,000,000)' },
    set: { value: true, repeat: true, arg: 'VAR=VALUE', help: 'set a global variable of the object before load' },
    'map-update': {
      value: true,
      repeat: true,
      arg: 'MAP=[KEY,VALUE]',
      help: 'write a map entry (JSON, typed through BTF) before the run',
    },
    'dump-maps': { help: 'print every map (and global variables) after the run' },
    json: { short: 'j', help: 'JSON output' },
    ...TRACE_OPTIONS,
    ...COVERAGE_OPTIONS,
    ...OBJECT_OPTIONS,
    ...PROGRESS_OPTIONS,
  },
  run(args) {
    const [file] = expectPositionals(args, ['FILE'], 'run') as [string]
    if (optString(args, 'pcap') !== undefined) return runCapture(file, args)
    return runProgram(file, args, 'run', 'ebpf')
  },
}

/**
 * `run(repeat)` as one call, or, when a progress line is wanted (a large `--repeat` and a terminal),
 * as calls of about a tenth of a second each: every repetition starts from the same input (as in
 * one call), the result is the last one's and the duration the mean over all of them.
 */
function repeatWithProgress(args: Parsed, repeat: number, run: (n: number) => RunResult): RunResult {
  if (repeat < 2 || !progressWanted(args, repeat >= LARGE_REPEAT)) return run(repeat)
  const progress = new Progress('runs', repeat)
  let done = 0
  let totalNs = 0
  let chunk = Math.min(repeat, 1000)
  let res: RunResult | undefined
  try {
    while (done < repeat) {
      const n = Math.min(chunk, repeat - done)
      const started = process.hrtime.bigint()
      res = run(n)
      const wall = Number(process.hrtime.bigint() - started)
      totalNs += res.durationNs * n
      done += n
      progress.update(done)
      // About 100 ms per call from here on.
      chunk = Math.max(1, Math.min(repeat, Math.round((n * 1e8) / Math.max(wall, 1))))
    }
  } finally {
    progress.end()
  }
  return { ...res!, durationNs: totalNs / repeat }
}

/** One packet's line of `run --pcap`. */
function packetLine(type: ProgramType, index: number, entry: BatchEntry, input: Uint8Array): string {
  if (!entry.ok)
    return `${index + 1}: trap ${'kind' in entry.error ? `${entry.error.kind} ` : ''}(${entry.error.code}): ${entry.error.message}`
  const action = actionName(type, entry.retval)
  const changed = sameBytes(input, entry.data) ? '' : `, data changed (${entry.data.length} bytes)`
  return `${index + 1}: retval ${entry.retval}${action ? ` (${action})` : ''}, ${entry.insnCount} insns${changed}`
}

function packetJson(type: ProgramType, index: number, entry: BatchEntry, input: Uint8Array): Record<string, unknown> {
  if (!entry.ok) {
    const e = entry.error
    return {
      index,
      error: { code: e.code, ...('kind' in e ? { kind: e.kind, insn: e.insn } : {}), message: e.message },
    }
  }
  const action = actionName(type, entry.retval)
  const changed = !sameBytes(input, entry.data)
  return {
    index,
    retval: entry.retval,
    ...(action ? { action } : {}),
    insnCount: entry.insnCount,
    dataChanged: changed,
    ...(changed ? { data: toHex(entry.data) } : {}),
  }
}

/** `ebpf run PROG --pcap IN.pcap`: the program on every packet of the capture, one line each and the verdict counts. */
async function runCapture(file: string, args: Parsed): Promise<number> {
  const input = optString(args, 'pcap')!
  for (const option of ['data', 'hex', 'repeat', 'trace', 'data-out', 'ctx-out', 'dump-maps'] as const) {
    if (args.options.has(option)) {
      throw new UsageError(`--${option} does not go with --pcap (every packet of the capture is one run)`, 'run')
    }
  }
  if (!existsSync(input)) throw new CliError(`${input}: cannot read: no such file`)
  const engine = optString(args, 'engine') as EngineName | undefined
  const budget = optPositiveInt(args, 'budget', 'run')
  const loaded = load(file, args, engine, budget)
  const ctx = tracingContext(loaded, contextFrom(args, 'run'), 'run')
  const { program } = loaded
  const asJson = optFlag(args, 'json')
  const size = statSync(input).size
  const progress = progressWanted(args, size >= LARGE_CAPTURE_BYTES) ? new Progress('packets', size) : undefined
  const runs: Record<string, unknown>[] = []
  let pendingText = ''
  const flush = (): void => {
    if (pendingText !== '') process.stdout.write(pendingText)
    pendingText = ''
  }
  let summary: RunPcapSummary
  try {
    summary = await runPcap(
      program,
      input,
      {},
      {
        ...(ctx === undefined ? {} : { run: { ctx } }),
        onPacket: (index, entry, data) => {
          if (asJson) runs.push(packetJson(program.type, index, entry, data))
          else pendingText += `${packetLine(program.type, index, entry, data)}\n`
        },
        onProgress: (n, bytes) => {
          if (!asJson) {
            progress?.end()
            flush()
          }
          progress?.update(n, bytes + 16 * n)
        },
      },
    )
  } catch (e) {
    if (e instanceof EbpfError) throw new CliError(`${input}: ${e.message}`)
    throw e
  } finally {
    progress?.end()
  }
  flush()
  const { written: _w, writtenBytes: _wb, ...counts } = summary
  if (asJson) {
    process.stdout.write(json({ ...counts, engine: program.engine, type: program.type, runs }))
  } else {
    const verdicts = Object.entries(summary.verdicts)
      .map(([v, n]) => `${v} ${n}`)
      .join(', ')
    process.stdout.write(
      `${summary.packets} packets, verdicts: ${verdicts || 'none'}; ${summary.trapped} trapped, ${summary.bytes} bytes, ` +
        `${(summary.durationNs / 1e9).toFixed(3)} s, ${Math.round(summary.packetsPerSecond)} packets/s\n`,
    )
  }
  process.stderr.write(writeCoverage(args, loaded.collection?.coverage ?? program.coverage))
  return summary.trapped > 0 ? 2 : 0
}

/** Program types whose context has fixed field names (`struct xdp_md`, `struct __sk_buff`). */
const FIXED_CONTEXTS: readonly string[] = ['xdp', 'socket_filter', 'tc', 'cgroup_skb']

/**
 * `--ctx FIELD=VALUE` of a tracing program of an object (kprobe, tracepoint, raw tracepoint): the
 * bytes of its context struct by the BTF member names (see `btfContextBytes`); other contexts as given.
 */
function tracingContext(
  loaded: Loaded,
  ctx: Uint8Array | ContextValue | undefined,
  command: string,
): Uint8Array | ContextValue | undefined {
  if (ctx === undefined || ctx instanceof Uint8Array || FIXED_CONTEXTS.includes(loaded.program.type)) return ctx
  if (!loaded.spec || loaded.name === undefined) {
    throw new UsageError(
      `--ctx FIELD=VALUE of a '${loaded.program.type}' program needs an ELF object with BTF; give the bytes with --ctx-hex or --ctx-in`,
      command,
    )
  }
  const type = loaded.spec.programs.get(loaded.name)!.type
  return btfContextBytes(loaded.spec, loaded.name, type, ctx, command)
}

/** The input data the options give: `--data FILE` or `--hex HEX` (not both), else none. */
export function dataFrom(args: Parsed, command: string): Uint8Array {
  const dataFile = optString(args, 'data')
  const hex = optString(args, 'hex')
  if (dataFile !== undefined && hex !== undefined) {
    throw new UsageError('give the input data with --data FILE or --hex HEX, not both', command)
  }
  if (dataFile !== undefined) return readInput(dataFile)
  return hex !== undefined ? parseHex(hex, '--hex') : new Uint8Array(0)
}

/** The context the options give: bytes (`--ctx-hex`, `--ctx-in`) or named fields (`--ctx`), at most one. */
export function contextFrom(args: Parsed, command: string): Uint8Array | ContextValue | undefined {
  const given = (['ctx-hex', 'ctx-in', 'ctx'] as const).filter((o) => optString(args, o) !== undefined)
  if (given.length > 1) {
    throw new UsageError(`give the context once: ${given.map((o) => `--${o}`).join(' and ')} both given`, command)
  }
  const ctxHex = optString(args, 'ctx-hex')
  if (ctxHex !== undefined) return parseHex(ctxHex, '--ctx-hex')
  const ctxIn = optString(args, 'ctx-in')
  if (ctxIn !== undefined) return readInput(ctxIn)
  const fields = optString(args, 'ctx')
  return fields === undefined ? undefined : parseContextFields(fields, command)
}

/** `--data-out` / `--ctx-out`: a file, or bpftool's hex dump on stdout for '-'. */
function writeRunOutputs(args: Parsed, res: RunResult): string {
  let stdout = ''
  for (const [option, bytes] of [
    ['data-out', res.data],
    ['ctx-out', res.ctx],
  ] as const) {
    const to = optString(args, option)
    if (to === undefined || bytes === undefined) continue
    if (to === '-') stdout += bpftoolHexDump(bytes)
    else writeOutput(to, bytes)
  }
  return stdout
}

/** What `bpftool prog run` prints: the retval line (plain) or its JSON object. */
function bpftoolReport(res: RunResult, args: Parsed, repeat: number): string {
  const duration = Math.round(res.durationNs)
  if (optFlag(args, 'json')) {
    const toStdout = (option: string) => optString(args, option) === '-'
    // One line, as `bpftool -j` prints it.
    return jsonLine({
      ...(toStdout('data-out') ? { data_out: [...res.data] } : {}),
      ...(toStdout('ctx-out') && res.ctx ? { ctx_out: [...res.ctx] } : {}),
      retval: res.retval,
      duration,
    })
  }
  return `${writeRunOutputs(args, res)}Return value: ${res.retval}, duration${repeat > 1 ? ' (average)' : ''}: ${duration}ns\n`
}

/**
 * Loads FILE as the options say, runs it, and prints the result in `ebpf run`'s shape or in
 * `bpftool prog run`'s (`style`); the exit code is 2 for a trap.
 */
export function runProgram(file: string, args: Parsed, command: string, style: 'ebpf' | 'bpftool'): number {
  const engine = optString(args, 'engine') as EngineName | undefined
  const repeat = optPositiveInt(args, 'repeat', command, 0xffffffff)
  const budget = optPositiveInt(args, 'budget', command)
  checkTraceWithRepeat(args, repeat)
  const data = dataFrom(args, command)
  const dataFile = optString(args, 'data')
  const capture = dataFile !== undefined ? pcap.captureFormat(data) : undefined
  if (capture !== undefined) {
    // Running a whole capture as one packet would give a meaningless result without a word.
    throw new CliError(
      `${displayName(dataFile!)}: is a ${capture} capture file, not one packet's bytes; --data runs the program once on raw data. ` +
        `To run every packet: ebpf run ${displayName(file)} --pcap ${displayName(dataFile!)}; to keep or sort its packets: ebpf filter ${displayName(file)} ${displayName(dataFile!)}`,
    )
  }
  const loaded = load(file, args, engine, budget)
  const ctx = tracingContext(loaded, contextFrom(args, command), command)
  let res: RunResult
  try {
    res = repeatWithProgress(args, repeat ?? 1, (n) =>
      loaded.program.run({ data, ctx, repeat: n, ...traceRunOptions(args) }),
    )
  } catch (e) {
    if (e instanceof TrapError) {
      const { stdout, stderr } = trapReport(file, e, traceLines(loaded), optFlag(args, 'json'))
      process.stdout.write(stdout)
      process.stderr.write(stderr + writeCoverage(args, loaded.collection?.coverage ?? loaded.program.coverage))
      return 2
    }
    if (e instanceof EbpfError) throw new CliError(`${displayName(file)}: ${e.message}`)
    throw e
  }
  if (style === 'bpftool') {
    process.stdout.write(bpftoolReport(res, args, repeat ?? 1))
  } else {
    process.stdout.write(writeRunOutputs(args, res) + report(loaded, res, data, args, repeat ?? 1))
  }
  process.stderr.write(writeCoverage(args, loaded.collection?.coverage ?? loaded.program.coverage))
  return 0
}
