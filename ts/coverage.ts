/**
 * Coverage of programs' instructions, branches and C source lines, accumulated over runs
 * (`new Program({ coverage: true })`, `new Collection(spec, { coverage: true })`), and its lcov
 * form for genhtml, c8/istanbul-style reporters and editors.
 *
 * The engine counts hits per instruction and taken / not taken per conditional jump (the JIT
 * per chain of blocks, the interpreter per instruction; both give the same figures). Lines come
 * from BTF line info: an instruction belongs to the last line info entry at or before it; a
 * line's count is the most any of its instructions ran (per program, summed over programs).
 */
import { describeValue } from './arguments.js'
import type { FuncInfo, LineInfo } from './elf/specs.js'
import { LoadError } from './errors.js'
import type { NativeCoverage } from './native.js'
import { lineAt } from './trace.js'

/** A conditional jump's counts. */
export interface BranchCoverage {
  /** Instruction slot of the jump. */
  insn: number
  taken: number
  notTaken: number
  /** Its C source line, from line info. */
  source?: LineInfo
}

/** One program's coverage. */
export interface ProgramCoverage {
  /** The program's name (its function name in an object; `''` for a program made from bytes). */
  name: string
  /** Hits per instruction slot (0 for the second slot of an `lddw`). */
  hits: number[]
  branches: BranchCoverage[]
  lineInfo: readonly LineInfo[]
  funcInfo: readonly FuncInfo[]
  /** Slots that are the second half of an `lddw` (no instruction of their own). */
  secondSlots: ReadonlySet<number>
}

/** A source line's count. */
export interface LineCoverage {
  file: string
  line: number
  hits: number
}

export interface LcovOptions {
  /** The `TN:` test name (default none). */
  testName?: string
  /**
   * Maps a source file name as BTF recorded it (often the absolute path where the object was
   * compiled) to the path the report should name (where the source is now).
   */
  resolve?: (file: string) => string
}

/** The engine's counts for one program, with its line and function info. */
export function programCoverage(
  name: string,
  c: NativeCoverage,
  instructions: Uint8Array,
  lineInfo: readonly LineInfo[],
  funcInfo: readonly FuncInfo[],
): ProgramCoverage {
  const secondSlots = new Set<number>()
  for (let pc = 0; pc * 8 < instructions.length; pc++) {
    // 0x18: lddw, whose next slot holds the upper half of its immediate.
    if (instructions[pc * 8] === 0x18) secondSlots.add(++pc)
  }
  const branches = c.branches.map((b): BranchCoverage => {
    const out: BranchCoverage = { insn: b.slot, taken: b.taken, notTaken: b.notTaken }
    const source = lineAt(lineInfo, b.slot)
    if (source) out.source = source
    return out
  })
  return { name, hits: c.hits, branches, lineInfo, funcInfo, secondSlots }
}

/** Per file and line: the count of each program's line, summed over programs. */
interface FileRecord {
  lines: Map<number, number>
  /** Per line: [taken, notTaken, reached] of each conditional jump on it. */
  branches: Map<number, Array<[number, number, boolean]>>
  /** Per function: its first line and its entry count, summed over programs. */
  functions: Map<string, { line: number; hits: number }>
}

/** Coverage of one or more programs (a collection's, or a program's). */
export class Coverage {
  readonly programs: readonly ProgramCoverage[]

  constructor(programs: readonly ProgramCoverage[]) {
    this.programs = programs
  }

  /** Counts by source file and line (files and lines in ascending order). */
  lines(options: Pick<LcovOptions, 'resolve'> = {}): LineCoverage[] {
    const out: LineCoverage[] = []
    for (const [file, rec] of this.#files(options.resolve)) {
      for (const [line, hits] of [...rec.lines].sort((a, b) => a[0] - b[0])) out.push({ file, line, hits })
    }
    return out
  }

  /**
   * The coverage in lcov's tracefile format: per source file `SF`, `FN`/`FNDA`/`FNF`/`FNH` for the
   * functions the object's function info names, `BRDA` for both ways of each conditional jump
   * (`-` where the jump never ran), `BRF`/`BRH`, `DA` per line, `LF`/`LH`.
   */
  toLcov(options: LcovOptions = {}): string {
    if (options === null || typeof options !== 'object') {
      throw new LoadError('EINVAL', `toLcov options must be an object, got ${describeValue(options)}`)
    }
    if (options.resolve !== undefined && typeof options.resolve !== 'function') {
      throw new LoadError('EINVAL', 'toLcov resolve must be a function')
    }
    const out: string[] = []
    for (const [file, rec] of this.#files(options.resolve)) {
      if (options.testName !== undefined) out.push(`TN:${options.testName}`)
      out.push(`SF:${file}`)
      const fns = [...rec.functions].sort((a, b) => a[1].line - b[1].line)
      for (const [name, f] of fns) out.push(`FN:${f.line},${name}`)
      for (const [name, f] of fns) out.push(`FNDA:${f.hits},${name}`)
      out.push(`FNF:${fns.length}`, `FNH:${fns.filter(([, f]) => f.hits > 0).length}`)
      let found = 0
      let hit = 0
      for (const [line, jumps] of [...rec.branches].sort((a, b) => a[0] - b[0])) {
        jumps.forEach(([taken, notTaken, reached], block) => {
          for (const [branch, n] of [taken, notTaken].entries()) {
            out.push(`BRDA:${line},${block},${branch},${reached ? n : '-'}`)
            found++
            if (n > 0) hit++
          }
        })
      }
      out.push(`BRF:${found}`, `BRH:${hit}`)
      const lines = [...rec.lines].sort((a, b) => a[0] - b[0])
      for (const [line, hits] of lines) out.push(`DA:${line},${hits}`)
      out.push(`LF:${lines.length}`, `LH:${lines.filter(([, h]) => h > 0).length}`)
      out.push('end_of_record')
    }
    return out.length > 0 ? `${out.join('\n')}\n` : ''
  }

  /** The programs' counts by source file (files in name order). */
  #files(resolve: ((file: string) => string) | undefined): Map<string, FileRecord> {
    const files = new Map<string, FileRecord>()
    const recordOf = (file: string): FileRecord => {
      const name = resolve ? resolve(file) : file
      let rec = files.get(name)
      if (!rec) {
        rec = { lines: new Map(), branches: new Map(), functions: new Map() }
        files.set(name, rec)
      }
      return rec
    }
    for (const p of this.programs) {
      // This program's count per line: the most any of the line's instructions ran (line info
      // may list a line several times, for the instruction ranges it covers).
      const own = new Map<string, { file: string; line: number; hits: number }>()
      for (let pc = 0; pc < p.hits.length; pc++) {
        const li = lineAt(p.lineInfo, pc)
        if (!li || li.line === 0 || p.secondSlots.has(pc)) continue
        const key = `${li.file}\0${li.line}`
        const prev = own.get(key)
        if (prev) prev.hits = Math.max(prev.hits, p.hits[pc]!)
        else own.set(key, { file: li.file, line: li.line, hits: p.hits[pc]! })
      }
      for (const { file, line, hits } of own.values()) {
        const rec = recordOf(file)
        rec.lines.set(line, (rec.lines.get(line) ?? 0) + hits)
      }
      for (const b of p.branches) {
        if (!b.source || b.source.line === 0) continue
        const rec = recordOf(b.source.file)
        const list = rec.branches.get(b.source.line) ?? []
        list.push([b.taken, b.notTaken, p.hits[b.insn]! > 0])
        rec.branches.set(b.source.line, list)
      }
      for (const f of p.funcInfo) {
        const li = lineAt(p.lineInfo, f.insn)
        if (!li || li.line === 0) continue
        const rec = recordOf(li.file)
        const prev = rec.functions.get(f.name)
        const hits = (prev?.hits ?? 0) + (p.hits[f.insn] ?? 0)
        rec.functions.set(f.name, { line: prev?.line ?? li.line, hits })
      }
    }
    return new Map([...files].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)))
  }
}
