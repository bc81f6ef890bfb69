/**
 * Sub-program linking, libbpf style: a program's function followed by every `.text` function it
 * reaches (appended depth-first when first called), with bpf-to-bpf call and BPF_PSEUDO_FUNC
 * offsets fixed up, lddw map relocations recorded (and their immediates cleared), .BTF.ext line
 * and func info renumbered, and CO-RE relocations applied when a target BTF is given.
 */

import {
  type ElfFile,
  type ElfRelocation,
  type ElfSection,
  type ElfSymbol,
  R_BPF_64_32,
  R_BPF_64_64,
  R_BPF_NONE,
  SHF_EXECINSTR,
  SHN_LORESERVE,
  SHN_UNDEF,
  STT_SECTION,
} from '../binary/elf.js'
import type { Btf } from '../btf/btf.js'
import { applyCoreRelocations, CoreBudget, type CoreRelocation } from '../btf/core.js'
import type { BtfExt, BtfExtSection } from '../btf/ext.js'
import { EbpfError, FormatError } from '../errors.js'
import { libcallCode } from './libcalls.js'
import type { FuncInfo, LineInfo, MapSpec, ProgramSpec, Relocation } from './specs.js'
import { externProblem } from './unsupported.js'

export const INSN = 8
const OP_LDDW = 0x18
const OP_CALL = 0x85
const PSEUDO_CALL = 1
const PSEUDO_FUNC = 4

/** A function in an executable section. */
export interface Func {
  name: string
  section: ElfSection
  /** First instruction index inside the section. */
  start: number
  /** Number of instruction slots. */
  count: number
  symbol: ElfSymbol
}

/** What the linker needs to know about the object, prepared by the loader. */
export interface LinkContext {
  elf: ElfFile
  /** The `.text` section and its functions, the only place sub-programs live. */
  text: ElfSection | undefined
  textFuncs: Func[]
  /** Relocations per section index, keyed by byte offset. */
  relocIndex: Map<number, Map<number, ElfRelocation>>
  /** Global data maps by section index, and every map by `${section}:${offset}`. */
  dataMaps: Map<number, MapSpec>
  mapAt: Map<string, MapSpec>
  /** Offsets of `.kconfig` externs in the '.kconfig' map. */
  kconfigOffsets: Map<string, number>
  types: Btf
  ext: BtfExt | undefined
  /** The target kernel's BTF for CO-RE, asked for only when a program has CO-RE relocations. */
  kernelTypes: () => Btf | undefined
  /** Where that BTF came from, for the error when there is none ('' when the caller said null). */
  kernelTypesSource: string
}

export type LinkedProgram = Pick<ProgramSpec, 'instructions' | 'relocations' | 'subprograms' | 'lineInfo' | 'funcInfo'>

export class Linker {
  private readonly elf: ElfFile
  private readonly text: ElfSection | undefined
  private readonly textFuncs: Func[]
  private readonly relocIndex: Map<number, Map<number, ElfRelocation>>
  private readonly dataMaps: Map<number, MapSpec>
  private readonly mapAt: Map<string, MapSpec>
  private readonly kconfigOffsets: Map<string, number>
  private readonly types: Btf
  private readonly ext: BtfExt | undefined
  private readonly kernelTypes: () => Btf | undefined
  private readonly kernelTypesSource: string
  /** One CO-RE matching budget for the whole object. */
  private readonly coreBudget = new CoreBudget()

  constructor(ctx: LinkContext) {
    this.elf = ctx.elf
    this.text = ctx.text
    this.textFuncs = ctx.textFuncs
    this.relocIndex = ctx.relocIndex
    this.dataMaps = ctx.dataMaps
    this.mapAt = ctx.mapAt
    this.kconfigOffsets = ctx.kconfigOffsets
    this.types = ctx.types
    this.ext = ctx.ext
    this.kernelTypes = ctx.kernelTypes
    this.kernelTypesSource = ctx.kernelTypesSource
  }

  /** The main function with every `.text` function it reaches appended, libbpf style. */
  link(main: Func): LinkedProgram {
    const placed = new Map<Func, number>()
    const order: Func[] = []
    const chunks: Uint8Array[] = []
    const chunkOf = new Map<Func, { code: Uint8Array; view: DataView }>()
    const stack: Array<{ f: Func; i: number }> = []
    let total = 0
    // Depth-first, as libbpf does: a sub-program is appended when first called and processed at
    // once, so the layout (and everything indexed by it) matches what libbpf hands the kernel.
    const place = (f: Func): number => {
      let at = placed.get(f)
      if (at === undefined) {
        at = total
        total += f.count
        placed.set(f, at)
        order.push(f)
        const code = f.section.data.slice(f.start * INSN, (f.start + f.count) * INSN)
        chunks.push(code)
        chunkOf.set(f, { code, view: new DataView(code.buffer, code.byteOffset, code.byteLength) })
        stack.push({ f, i: 0 })
      }
      return at
    }
    place(main)
    const relocations: Relocation[] = []
    const patches: Array<() => void> = []
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!
      if (top.i >= top.f.count) {
        stack.pop()
        continue
      }
      const f = top.f
      const i = top.i++
      const { code, view } = chunkOf.get(f)!
      const op0 = code[i * INSN]!
      const rels = this.relocIndex.get(f.section.index)
      // Fast path: most instructions are neither calls nor relocated.
      if (op0 !== OP_CALL && !rels?.has((f.start + i) * INSN)) continue
      const base = placed.get(f)!
      {
        const o = i * INSN
        const op = code[o]!
        const src = code[o + 1]! >> 4
        const imm = view.getInt32(o + 4, true)
        const secInsn = f.start + i
        const rel = rels?.get(secInsn * INSN)
        const at = base + i
        // Most instructions need nothing: skip them before building any message text.
        if (rel === undefined && !(op === OP_CALL && src === PSEUDO_CALL)) continue
        if (rel && rel.type === R_BPF_NONE) continue
        const where = `program '${main.name}': instruction ${at} (${f.name}+${i})`
        if (op === OP_CALL && src === PSEUDO_CALL) {
          let target: number
          if (rel) {
            if (rel.type !== R_BPF_64_32)
              throw new FormatError(`${where}: call relocation has type ${rel.type}, expected R_BPF_64_32`)
            if (rel.symbol.shndx === SHN_UNDEF) {
              const builtin = this.libcall(rel.symbol.name)
              if (!builtin) throw new EbpfError('ENOTSUPP', `${where}: ${this.extern(rel.symbol.name, true)}`)
              const calleeBase = place(builtin)
              patches.push(() => view.setInt32(o + 4, calleeBase - at - 1, true))
              continue
            }
            if (!this.text || rel.symbol.shndx !== this.text.index) {
              throw new FormatError(`${where}: call to '${rel.symbol.name}' outside the .text section`)
            }
            target = rel.symbol.value / INSN + imm + 1
          } else if (f.section === this.text) {
            target = secInsn + imm + 1
          } else {
            throw new FormatError(`${where}: bpf-to-bpf call without a relocation outside .text`)
          }
          const callee = this.textFunc(target, where)
          const calleeBase = place(callee)
          patches.push(() => view.setInt32(o + 4, calleeBase + (target - callee.start) - at - 1, true))
          continue
        }
        if (op === OP_LDDW && rel) {
          if (rel.type !== R_BPF_64_64)
            throw new FormatError(`${where}: lddw relocation has type ${rel.type}, expected R_BPF_64_64`)
          if (i + 1 >= f.count) throw new FormatError(`${where}: lddw is missing its second slot`)
          const s = rel.symbol
          const kconfigOffset = s.shndx === SHN_UNDEF ? this.kconfigOffsets.get(s.name) : undefined
          if (kconfigOffset !== undefined) {
            // A kconfig extern reads its value from the '.kconfig' map, as libbpf lays it out.
            relocations.push({ insn: at, kind: 'map_value', map: '.kconfig', offset: kconfigOffset })
            code[o + 1] = code[o + 1]! & 0x0f
            view.setInt32(o + 4, 0, true)
            view.setInt32(o + INSN + 4, 0, true)
            continue
          }
          if (s.shndx === SHN_UNDEF) {
            throw new EbpfError('ENOTSUPP', `${where}: ${this.extern(s.name, false)}`)
          }
          if (s.shndx >= SHN_LORESERVE)
            throw new FormatError(`${where}: relocation against '${s.name}' in a special section`)
          const symSec = this.elf.sections[s.shndx]!
          if ((symSec.flags & SHF_EXECINSTR) !== 0) {
            // Address of a function (bpf_loop callbacks, ...): a BPF_PSEUDO_FUNC lddw with a relative offset.
            const byteOff = s.value + imm
            if (byteOff % INSN !== 0 || symSec !== this.text) {
              throw new FormatError(
                `${where}: function address relocation against '${s.name}' is not a .text instruction`,
              )
            }
            const target = byteOff / INSN
            const callee = this.textFunc(target, where)
            const calleeBase = place(callee)
            code[o + 1] = (code[o + 1]! & 0x0f) | (PSEUDO_FUNC << 4)
            patches.push(() => view.setInt32(o + 4, calleeBase + (target - callee.start) - at - 1, true))
            continue
          }
          const dataMap = this.dataMaps.get(s.shndx)
          if (dataMap) {
            // The value offset is the symbol's offset plus what clang put in imm (for section symbols).
            const offset = (s.type === STT_SECTION ? 0 : s.value) + imm + rel.addend
            if (offset < 0 || offset >= Math.max(dataMap.valueSize, 1)) {
              throw new FormatError(
                `${where}: offset ${offset} is outside '${dataMap.name}' (${dataMap.valueSize} bytes)`,
              )
            }
            relocations.push({ insn: at, kind: 'map_value', map: dataMap.name, offset })
          } else {
            const map = this.mapAt.get(`${s.shndx}:${s.value + rel.addend}`)
            if (!map) {
              throw new EbpfError(
                'ENOTSUPP',
                `${where}: relocation against '${s.name}' in section '${symSec.name}' is not a map or global data`,
              )
            }
            relocations.push({ insn: at, kind: 'map', map: map.name, offset: 0 })
          }
          // Relocated lddw: src_reg and both immediates are for the collection loader to fill.
          code[o + 1] = code[o + 1]! & 0x0f
          view.setInt32(o + 4, 0, true)
          view.setInt32(o + INSN + 4, 0, true)
          continue
        }
        if (rel) {
          throw new EbpfError(
            'ENOTSUPP',
            `${where}: relocation against '${rel.symbol.name}' on opcode 0x${op.toString(16)} (only lddw and call are relocatable)`,
          )
        }
      }
    }
    for (const p of patches) p()
    relocations.sort((a, b) => a.insn - b.insn)
    const instructions = new Uint8Array(total * INSN)
    let pos = 0
    for (const c of chunks) {
      instructions.set(c, pos)
      pos += c.length
    }
    this.coreRelocate(main, order, placed, instructions)
    return {
      instructions,
      relocations,
      subprograms: order.slice(1).map((f) => ({ name: f.name, insn: placed.get(f)! })),
      lineInfo: this.infoFor(order, placed, this.ext?.lineInfo, (r, insn) => ({
        insn,
        file: r.file,
        line: r.line,
        column: r.column,
        text: r.text,
      })) as LineInfo[],
      funcInfo: this.infoFor(order, placed, this.ext?.funcInfo, (r, insn) => {
        const t = this.types.types[r.typeId]
        if (t?.kind !== 'FUNC') throw new FormatError(`.BTF.ext func_info names type #${r.typeId}, which is not a FUNC`)
        return { insn, typeId: r.typeId, name: t.name }
      }) as FuncInfo[],
    }
  }

  /** An undefined symbol described for an error: the DATASEC that declares it, a kfunc, a libcall. */
  private extern(name: string, isCall: boolean): string {
    // A call is a kfunc or a libcall; an lddw of a function address is also a kfunc's.
    const sectionOf = (n: string): string | undefined => {
      for (const t of this.types.types) {
        if (t.kind !== 'DATASEC') continue
        if (t.vars!.some((v) => this.types.types[v.type]?.name === n)) return t.name
      }
      return undefined
    }
    return externProblem(name, sectionOf, isCall)
  }

  private readonly libcalls = new Map<string, Func>()

  /**
   * A C library function clang called (memcpy, memset, ...) as a sub-program of our own, unless
   * the object declares the name in a DATASEC (then it is a kfunc or ksym of that name).
   */
  private libcall(name: string): Func | undefined {
    let f = this.libcalls.get(name)
    if (f) return f
    const code = libcallCode(name)
    if (
      !code ||
      this.types.types.some((t) => t.kind === 'DATASEC' && t.vars!.some((v) => this.types.types[v.type]?.name === name))
    ) {
      return undefined
    }
    const section: ElfSection = {
      index: -1,
      name: `<builtin ${name}>`,
      type: 0,
      flags: SHF_EXECINSTR,
      offset: 0,
      size: code.length,
      link: 0,
      info: 0,
      addralign: INSN,
      entsize: 0,
      data: code,
    }
    const symbol: ElfSymbol = {
      index: -1,
      name,
      type: 2,
      bind: 1,
      visibility: 0,
      shndx: -1,
      value: 0,
      size: code.length,
    }
    f = { name, section, start: 0, count: code.length / INSN, symbol }
    this.libcalls.set(name, f)
    return f
  }

  private textFunc(target: number, where: string): Func {
    const f = this.textFuncs.find((g) => target >= g.start && target < g.start + g.count)
    if (!f) throw new FormatError(`${where}: call target ${target} is not inside a .text function`)
    return f
  }

  /** Selects the .BTF.ext records that fall in the linked functions and renumbers them. */
  private infoFor<R extends { insnOff: number }, T>(
    order: Func[],
    placed: Map<Func, number>,
    sections: BtfExtSection<R>[] | undefined,
    make: (r: R, insn: number) => T,
  ): T[] {
    if (!sections) return []
    const out: T[] = []
    for (const f of order) {
      const recs = this.sortedRecords(sections, f.section.name)
      const lo = f.start * INSN
      const hi = (f.start + f.count) * INSN
      // Records are sorted by offset: binary-search the function's first one.
      let a = 0
      let b = recs.length
      while (a < b) {
        const mid = (a + b) >>> 1
        if (recs[mid]!.insnOff < lo) a = mid + 1
        else b = mid
      }
      for (let i = a; i < recs.length && recs[i]!.insnOff < hi; i++) {
        const r = recs[i]!
        if (r.insnOff % INSN !== 0) {
          throw new FormatError(`.BTF.ext record at byte ${r.insnOff} of '${f.section.name}' is misaligned`)
        }
        out.push(make(r, placed.get(f)! + (r.insnOff - lo) / INSN))
      }
    }
    return out
  }

  private readonly sortedCache = new Map<unknown, Map<string, unknown[]>>()

  /** The records of one section sorted by offset (stable, so equal offsets keep file order), cached. */
  private sortedRecords<R extends { insnOff: number }>(sections: BtfExtSection<R>[], name: string): R[] {
    let bySection = this.sortedCache.get(sections)
    if (!bySection) {
      bySection = new Map()
      for (const s of sections) {
        const prev = (bySection.get(s.section) ?? []) as R[]
        bySection.set(
          s.section,
          [...prev, ...s.records].sort((x, y) => x.insnOff - y.insnOff),
        )
      }
      this.sortedCache.set(sections, bySection)
    }
    return (bySection.get(name) ?? []) as R[]
  }

  /** CO-RE relocations need the target kernel's BTF; refuse clearly rather than run unrelocated code. */
  private coreRelocate(main: Func, order: Func[], placed: Map<Func, number>, code: Uint8Array): void {
    const secs = this.ext?.coreRelos
    if (!secs) return
    const relos: CoreRelocation[] = []
    for (const f of order) {
      for (const r of this.sortedRecords(secs, f.section.name)) {
        if (r.insnOff < f.start * INSN || r.insnOff >= (f.start + f.count) * INSN) continue
        if (r.insnOff % INSN !== 0)
          throw new FormatError(`CO-RE record at byte ${r.insnOff} of '${f.section.name}' is misaligned`)
        if (!this.kernelTypes()) {
          const t = this.types.types[r.typeId]
          const tname = t ? `${t.kind.toLowerCase()} ${t.name || '(anon)'}` : `type #${r.typeId}`
          throw new EbpfError(
            'ENOTSUPP',
            `program '${main.name}': CO-RE relocation (${r.kindName}, access '${r.access}') against ${tname} in '${f.name}' needs the target kernel's BTF (pass kernelTypes${this.kernelTypesSource})`,
          )
        }
        relos.push({
          insn: placed.get(f)! + (r.insnOff / INSN - f.start),
          typeId: r.typeId,
          access: r.access,
          kind: r.kind,
        })
      }
    }
    if (relos.length > 0) applyCoreRelocations(code, relos, this.types, this.kernelTypes()!, main.name, this.coreBudget)
  }
}
