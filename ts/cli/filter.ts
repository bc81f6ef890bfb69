/**
 * `ebpf filter (EXPR | PROG.o | FILTER.cbpf) IN.pcap [-w OUT.pcap] [--json]`: runs a socket filter
 * over every packet of a capture and writes the packets it keeps, as `tcpdump -r IN -w OUT EXPR`
 * does. The filter is a pcap-filter(7) expression (compiled for the capture's link type), a
 * socket filter program of an object, or classic BPF from `tcpdump -dd`/`-ddd`. Prints a summary:
 * packets, kept, trapped, bytes, time and packets per second.
 */
import { existsSync, statSync } from 'node:fs'
import type { Writable } from 'node:stream'
import {
  Collection,
  compileFilter,
  EbpfError,
  type EngineName,
  FilterError,
  type FilterPcapSummary,
  loadCollectionSpecSync,
  normalizeVerdict,
  Program,
  pcap,
  type RunPcapSummary,
  runPcap,
} from '../index.js'
import { optFlag, optList, optPositiveInt, optString, type Parsed, UsageError } from './args.js'
import type { Command } from './command.js'
import { json } from './format.js'
import { about, CliError, classicText, displayName, isElf, readInput } from './io.js'
import { LARGE_CAPTURE_BYTES, PROGRESS_OPTIONS, Progress, progressWanted } from './progress.js'
import { COVERAGE_OPTIONS, wantsCoverage, writeCoverage } from './run-coverage.js'
import { selectProgram } from './select.js'

/** The link type of the capture's first packet (EN10MB for an empty capture). */
async function captureLinkType(input: string): Promise<number> {
  try {
    for await (const p of pcap.read(input)) return p.linkType
    return pcap.LINK_TYPES.EN10MB
  } catch (e) {
    if (e instanceof EbpfError) throw new CliError(`${input}: ${e.message}`)
    throw e
  }
}

/** An expression error with the expression and a caret under the column. */
function expressionError(expr: string, e: FilterError): CliError {
  return new CliError(`filter expression: ${e.message}\n  ${expr}\n  ${' '.repeat(e.column - 1)}^`)
}

async function loadFilter(
  words: string[],
  input: string,
  args: Parsed,
  engine: EngineName | undefined,
): Promise<Program> {
  const name = optString(args, 'program')
  const coverage = wantsCoverage(args)
  const file = words.length === 1 && existsSync(words[0]!) && statSync(words[0]!).isFile() ? words[0]! : undefined
  if (file === undefined) {
    if (name !== undefined) throw new UsageError('--program needs an object file as the filter', 'filter')
    const expr = words.join(' ')
    const linkType = optString(args, 'link-type') ?? (await captureLinkType(input))
    try {
      const compiled = compileFilter(expr, { linkType: /^\d+$/.test(String(linkType)) ? Number(linkType) : linkType })
      return new Program({ type: 'socket_filter', instructions: compiled.instructions, engine, coverage })
    } catch (e) {
      if (e instanceof FilterError) throw expressionError(expr, e)
      if (e instanceof EbpfError) throw new CliError(`filter expression: ${e.message}`)
      throw e
    }
  }
  const bytes = readInput(file)
  if (isElf(bytes)) {
    const spec = about(file, () => loadCollectionSpecSync(bytes))
    const progSpec = selectProgram(spec, name, file)
    const collection = about(file, () => new Collection(spec, { engine, coverage, programs: [progSpec.name] }))
    const program = collection.programs.get(progSpec.name)!
    if (!VERDICT_TYPES.includes(program.type) && program.type !== 'socket_filter') {
      throw new CliError(
        `${displayName(file)}: program '${progSpec.name}' is of type '${progSpec.type}'; ebpf filter runs socket filters, XDP and tc programs`,
      )
    }
    return program
  }
  if (name !== undefined)
    throw new UsageError(`--program needs an ELF object; ${displayName(file)} is not one`, 'filter')
  const classic = classicText(bytes, file)
  if (classic === undefined) {
    throw new CliError(
      `${displayName(file)}: neither an ELF object nor classic BPF text (tcpdump -dd/-ddd); ` +
        "to use a filter expression that names a file, write it differently (e.g. 'host x')",
    )
  }
  return about(file, () => Program.fromClassic(classic.text, { engine, coverage }))
}

/** Program types whose packets `filter` sorts by verdict into `--out-*` captures. */
const VERDICT_TYPES: readonly string[] = ['xdp', 'tc']

/** `--out-pass` and the others: the verdict each names, for XDP and for tc. */
const OUT_OPTIONS: Record<string, { xdp: string; tc?: string; help: string }> = {
  'out-pass': { xdp: 'XDP_PASS', tc: 'TC_ACT_OK', help: 'packets the program passed (XDP_PASS; tc: TC_ACT_OK)' },
  'out-drop': { xdp: 'XDP_DROP', tc: 'TC_ACT_SHOT', help: 'packets it dropped (XDP_DROP; tc: TC_ACT_SHOT)' },
  'out-tx': { xdp: 'XDP_TX', help: 'packets it sent back out (XDP_TX)' },
  'out-redirect': {
    xdp: 'XDP_REDIRECT',
    tc: 'TC_ACT_REDIRECT',
    help: 'packets it redirected (XDP_REDIRECT; tc: TC_ACT_REDIRECT)',
  },
  'out-aborted': { xdp: 'XDP_ABORTED', help: 'packets it aborted on (XDP_ABORTED)' },
  'out-trapped': { xdp: 'trapped', tc: 'trapped', help: 'packets whose run trapped, as they came in' },
}

/** The outputs of an XDP/tc program: verdict -> path (or stdout for '-'). */
function verdictOutputs(args: Parsed, program: Program): Record<string, string | Writable> {
  const type = program.type as 'xdp' | 'tc'
  const outputs: Record<string, string | Writable> = {}
  const add = (verdict: string, to: string, option: string): void => {
    let name: string
    try {
      name = normalizeVerdict(type, verdict)
    } catch (e) {
      if (e instanceof EbpfError) throw new UsageError(`--${option}: ${e.message}`, 'filter')
      throw e
    }
    if (name in outputs) throw new UsageError(`two outputs for the verdict ${name}`, 'filter')
    outputs[name] = to === '-' ? process.stdout : to
  }
  for (const [option, v] of Object.entries(OUT_OPTIONS)) {
    const to = optString(args, option)
    if (to === undefined) continue
    const verdict = v[type]
    if (verdict === undefined) throw new UsageError(`--${option} is for XDP programs; this one is '${type}'`, 'filter')
    add(verdict, to, option)
  }
  for (const o of optList(args, 'out')) {
    const eq = o.indexOf('=')
    if (eq <= 0)
      throw new UsageError(`--out takes VERDICT=OUT.pcap (e.g. TC_ACT_STOLEN=stolen.pcap), got '${o}'`, 'filter')
    add(o.slice(0, eq), o.slice(eq + 1), 'out')
  }
  if (Object.values(outputs).filter((o) => o === process.stdout).length > 1) {
    throw new UsageError('only one output can be standard output (-)', 'filter')
  }
  return outputs
}

function verdictSummaryLine(s: RunPcapSummary): string {
  const verdicts = Object.entries(s.verdicts)
    .map(([v, n]) => `${v} ${n}`)
    .join(', ')
  return (
    `${s.packets} packets, ${s.written} written, verdicts: ${verdicts || 'none'}; ${s.trapped} trapped, ` +
    `${s.writtenBytes} of ${s.bytes} bytes written, ${(s.durationNs / 1e9).toFixed(3)} s, ` +
    `${Math.round(s.packetsPerSecond)} packets/s\n`
  )
}

/** The progress line's callback for a capture of `size` bytes (records counted at 16 bytes of header each). */
function captureProgress(
  args: Parsed,
  input: string,
): { update?: (packets: number, bytes: number) => void; end: () => void } {
  const size = statSync(input).size
  if (!progressWanted(args, size >= LARGE_CAPTURE_BYTES)) return { end: () => {} }
  const progress = new Progress('packets', size)
  return {
    update: (packets, bytes) => progress.update(packets, bytes + 16 * packets),
    end: () => progress.end(),
  }
}

/** `filter` with an XDP or tc program: every packet run, sorted by verdict into the `--out-*` captures. */
async function filterByVerdict(program: Program, input: string, args: Parsed, options: PassOptions): Promise<number> {
  if (optString(args, 'write') !== undefined) {
    throw new UsageError(
      `-w is for socket filters (keep or drop); a ${program.type} program's packets go by verdict: --out-pass, --out-drop, --out-tx, --out VERDICT=FILE`,
      'filter',
    )
  }
  const outputs = verdictOutputs(args, program)
  const summary = await overCapture(args, input, options, (o) => runPcap(program, input, outputs, o))
  const toStdout = Object.values(outputs).includes(process.stdout)
  const outs = Object.fromEntries(Object.entries(outputs).map(([v, o]) => [v, o === process.stdout ? '-' : o]))
  const text = optFlag(args, 'json')
    ? json({ ...summary, engine: program.engine, type: program.type, outputs: outs })
    : verdictSummaryLine(summary)
  ;(toStdout ? process.stderr : process.stdout).write(text)
  process.stderr.write(writeCoverage(args, program.coverage))
  return 0
}

/** `--batch` and `--format`, checked before the filter is loaded. */
interface PassOptions {
  batchSize?: number
  format?: 'pcap' | 'pcap-ns' | 'pcapng'
}

function passOptions(args: Parsed): PassOptions {
  const batchSize = optPositiveInt(args, 'batch', 'filter', 1 << 24)
  const format = optString(args, 'format') as PassOptions['format']
  return { ...(batchSize === undefined ? {} : { batchSize }), ...(format === undefined ? {} : { format }) }
}

/**
 * One pass over the capture (`filterPcap` or `runPcap`) with the progress line on standard error;
 * its EbpfError becomes a CliError naming the input.
 */
async function overCapture<T>(
  args: Parsed,
  input: string,
  options: PassOptions,
  pass: (options: PassOptions & { onProgress?: (packets: number, bytes: number) => void }) => Promise<T>,
): Promise<T> {
  const progress = captureProgress(args, input)
  try {
    return await pass({ ...options, ...(progress.update ? { onProgress: progress.update } : {}) })
  } catch (e) {
    if (e instanceof EbpfError) throw new CliError(`${input}: ${e.message}`)
    throw e
  } finally {
    progress.end()
  }
}

function summaryLine(s: FilterPcapSummary): string {
  const pct = s.packets === 0 ? 0 : (100 * s.kept) / s.packets
  return (
    `${s.packets} packets, ${s.kept} kept (${pct.toFixed(1)}%), ${s.trapped} trapped, ` +
    `${s.keptBytes} of ${s.bytes} bytes kept, ${(s.durationNs / 1e9).toFixed(3)} s, ` +
    `${Math.round(s.packetsPerSecond)} packets/s\n`
  )
}

export const filterCommand: Command = {
  name: 'filter',
  usage:
    'ebpf filter (EXPR | PROG.o [--program NAME] | FILTER.cbpf) IN.pcap [-w OUT.pcap] [--json]\n' +
    '            [--engine jit|interpreter|auto] [--link-type TYPE] [--format pcap|pcap-ns|pcapng] [--batch N]\n' +
    '            [--coverage OUT.lcov] [--progress auto|always|never]\n' +
    'ebpf filter XDP_OR_TC.o [--program NAME] IN.pcap [--out-pass OUT] [--out-drop OUT] [--out-tx OUT]\n' +
    '            [--out-redirect OUT] [--out-aborted OUT] [--out-trapped OUT] [--out VERDICT=OUT ...] [--json]',
  summary: 'keep the packets of a capture that a filter accepts (tcpdump -r IN -w OUT EXPR)',
  description:
    'Runs a socket filter over every packet of IN.pcap (pcap or pcapng) and writes the packets it keeps,\n' +
    'cut to the length it returns, to OUT (- for standard output). The filter is a pcap-filter(7)\n' +
    "expression (quote it: 'tcp port 80 and not host 10.0.0.1'; several words are joined), compiled\n" +
    "for the capture's link type; a socket filter program of an ELF object; or classic BPF from\n" +
    'tcpdump -dd/-ddd. Prints packets, kept, trapped, bytes, the time and packets per second\n' +
    '(on standard error when the packets go to standard output). --coverage writes the C line and branch\n' +
    "coverage of an object's filter over the whole capture as lcov.\n" +
    'With an XDP or tc program, every packet is run and written, as the program left it (after\n' +
    'adjust_head/tail and stores), to the output of its verdict (--out-pass, --out-drop, ...; packets of\n' +
    'a verdict with no output are only counted); the summary counts packets per verdict. A progress\n' +
    'line is shown on standard error when it is a terminal and the capture is 32 MiB or more.',
  options: {
    write: { short: 'w', value: true, arg: 'OUT', help: 'write the kept packets to OUT (- for standard output)' },
    program: { value: true, arg: 'NAME', help: "the object's program (needed when it has several)" },
    engine: {
      value: true,
      arg: 'ENGINE',
      choices: ['jit', 'interpreter', 'auto'] satisfies EngineName[],
      help: 'default auto',
    },
    'link-type': {
      value: true,
      arg: 'TYPE',
      help: "link type an expression is compiled for (EN10MB, RAW, LINUX_SLL, LINUX_SLL2, NULL, LOOP or a number); default the capture's",
    },
    format: {
      value: true,
      arg: 'FORMAT',
      choices: ['pcap', 'pcap-ns', 'pcapng'],
      help: 'output format (default pcap)',
    },
    batch: { value: true, arg: 'N', help: 'packets per batch (default 4096)' },
    json: { short: 'j', help: 'the summary as JSON' },
    ...Object.fromEntries(
      Object.entries(OUT_OPTIONS).map(([name, o]) => [name, { value: true, arg: 'OUT', help: o.help }]),
    ),
    out: {
      value: true,
      repeat: true,
      arg: 'VERDICT=OUT',
      help: 'packets of any verdict (XDP_TX, TC_ACT_STOLEN, a return value, trapped) to OUT',
    },
    ...PROGRESS_OPTIONS,
    ...COVERAGE_OPTIONS,
  },
  async run(args) {
    if (args.positionals.length < 2) {
      throw new UsageError(
        args.positionals.length === 0 ? 'missing the filter and IN.pcap' : 'missing IN.pcap',
        'filter',
      )
    }
    const input = args.positionals.at(-1)!
    const words = args.positionals.slice(0, -1)
    if (!existsSync(input)) throw new CliError(`${input}: cannot read: no such file`)
    const engine = optString(args, 'engine') as EngineName | undefined
    const options = passOptions(args)
    const out = optString(args, 'write')
    const program = await loadFilter(words, input, args, engine)
    if (VERDICT_TYPES.includes(program.type)) return filterByVerdict(program, input, args, options)
    const outs = [...Object.keys(OUT_OPTIONS), 'out'].filter(
      (o) => optString(args, o) !== undefined || optList(args, o).length > 0,
    )
    if (outs.length > 0) {
      throw new UsageError(
        `--${outs[0]} is for XDP and tc programs; a socket filter keeps packets with -w OUT.pcap`,
        'filter',
      )
    }
    const summary = await overCapture(args, input, options, (o) =>
      program.filterPcap(input, out === '-' ? process.stdout : out, o),
    )
    const text = optFlag(args, 'json') ? json({ ...summary, engine: program.engine }) : summaryLine(summary)
    ;(out === '-' ? process.stderr : process.stdout).write(text)
    process.stderr.write(writeCoverage(args, program.coverage))
    return 0
  },
}
