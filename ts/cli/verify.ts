/**
 * `ebpf verify OBJ.o [--program NAME] [--log-level 1|2] [--unprivileged] [--json]`: loads the programs of an object
 * in mode 'verified' and prints the verifier's log of each (with the C source lines the object's
 * line info gives), as `bpftool -d prog loadall` shows the kernel's. Exit 0 when every selected
 * program is accepted, 1 when one is rejected or cannot be loaded.
 */
import { Collection, type CollectionSpec, EbpfError, type ProgramSpec, VerifierError } from '../index.js'
import { expectPositionals, optFlag, optString, type Parsed, UsageError } from './args.js'
import type { Command } from './command.js'
import { json } from './format.js'
import { CliError, cliHint, displayName, readObject } from './io.js'
import { loadOptionsFrom, OBJECT_OPTIONS } from './object-options.js'
import { selectPrograms } from './select.js'

/** One program's outcome. */
interface Verdict {
  name: string
  section: string
  /** `error`: the program could not be loaded for another reason than the verifier's. */
  verdict: 'accepted' | 'rejected' | 'error'
  code?: string
  insn?: number
  message?: string
  source?: { file: string; line: number; column: number; text: string }
  processedInsns?: number
  verificationTimeNs?: number
  totalStates?: number
  peakStates?: number
  maxStatesPerInsn?: number
  stackDepth?: number[]
  log: string
}

function logLevel(args: Parsed): 1 | 2 {
  const text = optString(args, 'log-level')
  if (text === undefined) return 1
  if (text !== '1' && text !== '2') throw new UsageError(`--log-level must be 1 or 2, got '${text}'`, 'verify')
  return Number(text) as 1 | 2
}

/** Loads `p` alone (with the maps it uses) in mode 'verified'. */
function verifyOne(spec: CollectionSpec, p: ProgramSpec, level: 1 | 2, unprivileged: boolean): Verdict {
  const base = { name: p.name, section: p.section }
  try {
    const prog = new Collection(spec, {
      mode: 'verified',
      logLevel: level,
      unprivileged,
      programs: [p.name],
    }).programs.get(p.name)!
    const stats = prog.verifierStats!
    return {
      ...base,
      verdict: 'accepted',
      processedInsns: stats.processedInsns,
      verificationTimeNs: stats.verificationTimeNs,
      totalStates: stats.totalStates,
      peakStates: stats.peakStates,
      maxStatesPerInsn: stats.maxStatesPerInsn,
      stackDepth: stats.stackDepth,
      log: prog.verifierLog ?? '',
    }
  } catch (e) {
    if (e instanceof VerifierError) {
      return {
        ...base,
        verdict: 'rejected',
        code: e.code,
        insn: e.insn,
        message: e.message,
        ...(e.source === undefined ? {} : { source: e.source }),
        log: e.log,
      }
    }
    if (e instanceof EbpfError) {
      return { ...base, verdict: 'error', code: e.code, message: e.message + cliHint(e.message), log: '' }
    }
    throw e
  }
}

export const verifyCommand: Command = {
  name: 'verify',
  usage: 'ebpf verify OBJ.o [--program NAME] [--type TYPE] [--log-level 1|2] [--unprivileged] [--json]',
  summary: "prove an object's programs safe, printing the verifier's log",
  description:
    "Loads each program of the object (or the one --program names) in mode 'verified' and prints the\n" +
    "verifier's log in the kernel's format, with the C source lines from the object's BTF line info:\n" +
    'level 1 (default) the path that failed (an accepted program: the summary), level 2 every path.\n' +
    'Then one line per program: accepted (instructions processed) or rejected (errno, instruction and\n' +
    'the rejection). --json prints an array of { name, section, verdict, code, insn, message, source,\n' +
    'processedInsns, verificationTimeNs, totalStates, peakStates, maxStatesPerInsn, stackDepth, log }.\n' +
    'Exit 0 when every program is accepted, 1 otherwise.\n' +
    '--type gives the libbpf program type (xdp, socket_filter, kprobe, ...) of the programs whose\n' +
    'section says none (of the --program one whatever its section says). --unprivileged adds the\n' +
    "kernel's rules for loads without CAP_BPF/CAP_PERFMON (no pointer leaks or comparisons, no\n" +
    'uninitialised stack, no loops or calls, socket filters only).',
  options: {
    program: { short: 'p', value: true, arg: 'NAME', help: 'verify only this program' },
    type: { short: 't', value: true, arg: 'TYPE', help: 'program type (libbpf name) for sections that say none' },
    'log-level': { value: true, arg: '1|2', help: 'verifier log level (default 1)' },
    unprivileged: { help: "the kernel's rules for loads without CAP_BPF/CAP_PERFMON" },
    json: { short: 'j', help: 'JSON output' },
    ...OBJECT_OPTIONS,
  },
  run(args) {
    const [file] = expectPositionals(args, ['OBJ.o'], 'verify') as [string]
    const level = logLevel(args)
    const spec = readObject(file, loadOptionsFrom(args, 'verify'))
    const name = optString(args, 'program')
    const chosen = selectPrograms(spec, name, file)
    if (chosen.length === 0) throw new CliError(`${displayName(file)}: the object has no programs`)
    // As spec.programs.get(x).type = T: for sections that say no type, or the one program named.
    const type = optString(args, 'type')
    for (const p of chosen) if (type !== undefined && (name !== undefined || p.type === 'unspec')) p.type = type
    const unprivileged = optFlag(args, 'unprivileged')
    const verdicts = chosen.map((p) => verifyOne(spec, p, level, unprivileged))
    if (optFlag(args, 'json')) {
      process.stdout.write(json(verdicts))
    } else {
      for (const v of verdicts) {
        process.stdout.write(`== ${v.name} (section '${v.section}')\n${v.log}`)
        if (v.log !== '' && !v.log.endsWith('\n')) process.stdout.write('\n')
        process.stdout.write(`${summary(v)}\n`)
      }
    }
    return verdicts.every((v) => v.verdict === 'accepted') ? 0 : 1
  },
}

function summary(v: Verdict): string {
  switch (v.verdict) {
    case 'accepted':
      return `${v.name}: accepted (${v.processedInsns} insns processed)`
    case 'rejected':
      return `${v.name}: rejected (${v.code}) at instruction ${v.insn}: ${v.message}`
    default:
      return `${v.name}: cannot be loaded here (${v.code}): ${v.message}`
  }
}
