/**
 * Instruction traces of runs (`program.run({ data, trace: true })`): the engine's steps made
 * readable (each with its instruction text and C source line), and their text form in the
 * layout of the kernel's verifier log.
 */

import type { LineInfo } from './elf/specs.js'
import type { NativeTrace, NativeTraceValue } from './native.js'

/** Steps a trace keeps unless `traceLimit` says otherwise (the last ones). */
export const DEFAULT_TRACE_LIMIT = 10_000
/** The most steps `traceLimit` may ask for. */
export const MAX_TRACE_LIMIT = 1_000_000

/**
 * A register's or a memory word's value: a bigint for a number, a string naming a place of the
 * run (`'stack-8'`, `'data+14'`, `'ctx+0'`, `"map 'counts' value+0"`) for an address of the run.
 * Host addresses never reach JavaScript.
 */
export type TraceValue = bigint | string

export interface TraceAccess {
  kind: 'load' | 'store'
  /** Bytes: 1, 2, 4 or 8. */
  size: number
  /** Where, as a place (`'data+4'`); undefined for an address far from every region (the access trapped). */
  place?: string
  /** The value loaded or stored (for an atomic, its source operand); undefined when the access trapped. */
  value?: TraceValue
}

export interface TraceStep {
  /** Instruction slot (an `lddw` is the slot of its first half). */
  pc: number
  /** The instruction as the kernel's verifier log writes it: `(61) r2 = *(u32 *)(r1 +4)`. */
  insn: string
  /**
   * Registers the instruction wrote (its destination, r0 of a call, the registers a
   * sub-program's `exit` restored), by name, with their new values: `{ r2: 5n }`. Empty when the
   * instruction trapped.
   */
  regs: Record<string, TraceValue>
  /** The memory it read or wrote. */
  mem?: TraceAccess
  /** The C source line of the instruction, from BTF line info. */
  source?: LineInfo
}

export interface Trace {
  /** The last `limit` steps executed, in order. */
  steps: TraceStep[]
  /**
   * Steps executed before the first one kept: non-zero when the run was longer than `limit`
   * (the trace keeps the end of the run, where a trap or the result is).
   */
  dropped: number
  limit: number
}

function value(v: NativeTraceValue): TraceValue {
  return v.place ?? v.value ?? 0n
}

/** The line info entry that covers slot `pc` (the last one at or before it), by binary search. */
export function lineAt(lineInfo: readonly LineInfo[], pc: number): LineInfo | undefined {
  let lo = 0
  let hi = lineInfo.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (lineInfo[mid]!.insn <= pc) lo = mid + 1
    else hi = mid
  }
  return lo === 0 ? undefined : lineInfo[lo - 1]
}

/** The engine's trace with instruction texts (`texts[slot]`) and sorted line info added. */
export function toTrace(t: NativeTrace, texts: readonly string[], lineInfo: readonly LineInfo[]): Trace {
  const steps = t.steps.map((s): TraceStep => {
    const regs: Record<string, TraceValue> = {}
    for (const r of s.regs) regs[`r${r.reg}`] = value(r.value)
    const step: TraceStep = { pc: s.pc, insn: texts[s.pc] ?? '', regs }
    if (s.mem) {
      const mem: TraceAccess = { kind: s.mem.write ? 'store' : 'load', size: s.mem.size }
      if (s.mem.place !== undefined) mem.place = s.mem.place
      if (s.mem.value) mem.value = value(s.mem.value)
      step.mem = mem
    }
    const source = lineAt(lineInfo, s.pc)
    if (source) step.source = source
    return step
  })
  return { steps, dropped: t.dropped, limit: t.limit }
}

function shown(v: TraceValue): string {
  return typeof v === 'string' ? v : `0x${v.toString(16)}`
}

/**
 * The trace as the kernel's verifier log lays out its steps: `12: (61) r2 = *(u32 *)(r1 +4)  ;
 * R2=0x5 [data+4]=0x5`, the registers written and the memory touched after the `;` (scalars in
 * hex, addresses of the run by place), and the C source line (`; return x; @ prog.c:12`) before
 * the first step of each new line. A first line says how many earlier steps were dropped.
 */
export function formatTrace(trace: Trace): string {
  const lines: string[] = []
  if (trace.dropped > 0) lines.push(`; ${trace.dropped} earlier instructions not kept (traceLimit ${trace.limit})`)
  let last: LineInfo | undefined
  for (const s of trace.steps) {
    if (s.source && (s.source.line !== last?.line || s.source.file !== last.file)) {
      lines.push(`; ${s.source.text.trim()} @ ${s.source.file}:${s.source.line}`)
      last = s.source
    }
    const notes = Object.entries(s.regs).map(([r, v]) => `${r.toUpperCase()}=${shown(v)}`)
    if (s.mem) {
      const at = s.mem.place ?? 'outside every region'
      notes.push(`[${at}]${s.mem.value === undefined ? '' : `=${shown(s.mem.value)}`}`)
    }
    lines.push(notes.length > 0 ? `${s.pc}: ${s.insn}  ; ${notes.join(' ')}` : `${s.pc}: ${s.insn}`)
  }
  return lines.join('\n')
}
