/**
 * `ebpf run --trace [--trace-limit N]`: the run's instruction trace, printed as the kernel's
 * verifier log lays out its steps, with the C source lines interleaved (see `formatTrace`). The
 * options, their parsing and the output live here so that `run.ts` only passes them through.
 */
import { formatTrace, type Trace } from '../index.js'
import { type OptionSpec, optFlag, optPositiveInt, type Parsed, UsageError } from './args.js'

export const TRACE_OPTIONS: Record<string, OptionSpec> = {
  trace: { help: 'print every instruction executed, with the registers it wrote and the memory it touched' },
  'trace-limit': { value: true, arg: 'N', help: 'keep the last N steps of the trace (default 10000; implies --trace)' },
}

/** The `trace`/`traceLimit` run options the arguments ask for. */
export function traceRunOptions(args: Parsed): { trace?: boolean; traceLimit?: number } {
  const limit = optPositiveInt(args, 'trace-limit', 'run', 1_000_000)
  if (limit !== undefined) return { trace: true, traceLimit: limit }
  return optFlag(args, 'trace') ? { trace: true } : {}
}

/** Rejects --trace where it cannot apply. */
export function checkTraceWithRepeat(args: Parsed, repeat: number | undefined): void {
  if (repeat !== undefined && repeat > 1 && (optFlag(args, 'trace') || optPositiveInt(args, 'trace-limit', 'run'))) {
    throw new UsageError('--trace records one run: leave out --repeat', 'run')
  }
}

/** The trace as text for stdout (nothing without one). */
export function traceText(trace: Trace | undefined): string {
  return trace ? `instructions:\n${formatTrace(trace)}\n` : ''
}

/** The trace for `--json`: steps with their source line as `file:line`. */
export function traceJson(trace: Trace | undefined): object {
  if (!trace) return {}
  return {
    insnTrace: {
      dropped: trace.dropped,
      limit: trace.limit,
      steps: trace.steps.map((s) => ({
        pc: s.pc,
        insn: s.insn,
        regs: s.regs,
        ...(s.mem ? { mem: s.mem } : {}),
        ...(s.source ? { source: `${s.source.file}:${s.source.line}` } : {}),
      })),
    },
  }
}
