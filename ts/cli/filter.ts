/**
 * `ebpf filter (EXPR | PROG.o | FILTER.cbpf) IN.pcap [-w OUT.pcap] [--json]`: runs a socket filter
 * over every packet of a capture and writes the packets it keeps, as `tcpdump -r IN -w OUT EXPR`
 * does. The filter is a pcap-filter(7) expression (compiled for the capture's link type), a
 * socket filter program of an object, or classic BPF from `tcpdump -dd`/`-ddd`. Prints a summary:
 * packets, kept, trapped, bytes, time and packets per second.
 */
import { existsSync, statSync } from 'node:fs'
import {
  Collection,
  compileFilter,
  EbpfError,
  type EngineName,
  FilterError,
  type FilterPcapSummary,
  loadCollectionSpecSync,
  Program,
  pcap,
} from '../index.js'
import { optFlag, optPositiveInt, optString, type Parsed, UsageError } from './args.js'
import type { Command } from './command.js'
import { json } from './format.js'
import { about, CliError, classicText, displayName, isElf, readInput } from './io.js'
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
    if (progSpec.type !== 'socket_filter') {
      throw new CliError(
        `${displayName(file)}: program '${progSpec.name}' is of type '${progSpec.type}'; ebpf filter runs socket filters`,
      )
    }
    const collection = about(file, () => new Collection(spec, { engine, coverage, programs: [progSpec.name] }))
    return collection.programs.get(progSpec.name)!
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
    '            [--coverage OUT.lcov]',
  summary: 'keep the packets of a capture that a filter accepts (tcpdump -r IN -w OUT EXPR)',
  description:
    'Runs a socket filter over every packet of IN.pcap (pcap or pcapng) and writes the packets it keeps,\n' +
    'cut to the length it returns, to OUT (- for standard output). The filter is a pcap-filter(7)\n' +
    "expression (quote it: 'tcp port 80 and not host 10.0.0.1'; several words are joined), compiled\n" +
    "for the capture's link type; a socket filter program of an ELF object; or classic BPF from\n" +
    'tcpdump -dd/-ddd. Prints packets, kept, trapped, bytes, the time and packets per second\n' +
    '(on standard error when the packets go to standard output). --coverage writes the C line and branch\n' +
    "coverage of an object's filter over the whole capture as lcov.",
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
      help: "link type an expression is compiled for (EN10MB, RAW, LINUX_SLL, LINUX_SLL2 or a number); default the capture's",
    },
    format: {
      value: true,
      arg: 'FORMAT',
      choices: ['pcap', 'pcap-ns', 'pcapng'],
      help: 'output format (default pcap)',
    },
    batch: { value: true, arg: 'N', help: 'packets per batch (default 4096)' },
    json: { short: 'j', help: 'the summary as JSON' },
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
    const batchSize = optPositiveInt(args, 'batch', 'filter', 1 << 24)
    const format = optString(args, 'format') as 'pcap' | 'pcap-ns' | 'pcapng' | undefined
    const out = optString(args, 'write')
    const program = await loadFilter(words, input, args, engine)
    let summary: FilterPcapSummary
    try {
      summary = await program.filterPcap(input, out === '-' ? process.stdout : out, {
        ...(batchSize === undefined ? {} : { batchSize }),
        ...(format === undefined ? {} : { format }),
      })
    } catch (e) {
      if (e instanceof EbpfError) throw new CliError(`${input}: ${e.message}`)
      throw e
    }
    const text = optFlag(args, 'json') ? json({ ...summary, engine: program.engine }) : summaryLine(summary)
    ;(out === '-' ? process.stderr : process.stdout).write(text)
    process.stderr.write(writeCoverage(args, program.coverage))
    return 0
  },
}
