/**
 * The libbpf-convention object loader: from a clang-built BPF ELF object to program specs (one
 * per function of each executable section, with their `.text` sub-programs linked in), map specs
 * (`.maps`, legacy `maps`, global data sections), global variables and fixed-up BTF. Nothing is
 * created here; lddw instructions that need a map keep a relocation record instead.
 */
import { Btf } from '../btf/btf.js'
import { codec } from '../btf/codec.js'
import { applyCoreRelocations, type CoreRelocation } from '../btf/core.js'
import { type BtfExt, type BtfExtSection, parseBtfExt } from '../btf/ext.js'
import { parseBtf } from '../btf/parse.js'
import type { BtfType } from '../btf/types.js'
import { EbpfError, FormatError } from '../errors.js'
import type { FuncInfo, LineInfo, MapSpec, ProgramSpec, Relocation } from '../spec.js'
import { fixupBtf } from './fixup.js'
import { BPF_MAP_TYPE, isDataSection, parseBtfMaps, parseLegacyMaps } from './maps.js'
import {
  type ElfFile,
  type ElfRelocation,
  type ElfSection,
  type ElfSymbol,
  R_BPF_64_32,
  R_BPF_64_64,
  R_BPF_64_ABS64,
  R_BPF_NONE,
  readElf,
  SHF_ALLOC,
  SHF_EXECINSTR,
  SHF_WRITE,
  SHN_LORESERVE,
  SHN_UNDEF,
  SHT_NOBITS,
  SHT_PROGBITS,
  STB_LOCAL,
  STB_WEAK,
  STT_FUNC,
  STT_SECTION,
} from './reader.js'
import { sectionType } from './section-types.js'

const INSN = 8
const OP_LDDW = 0x18
const OP_CALL = 0x85
const PSEUDO_CALL = 1
const PSEUDO_FUNC = 4
const BPF_F_RDONLY_PROG = 1 << 7
const BPF_F_MMAPABLE = 1 << 10
/** Largest global data section we allocate (1 GiB): a map value, so far above any real program's. */
const MAX_DATA_SECTION = 1 << 30

export interface VariableInit {
  name: string
  section: string
  offset: number
  size: number
  type: BtfType
  linkage: string
}

export interface LoadedObject {
  programs: Map<string, ProgramSpec>
  maps: Map<string, MapSpec>
  variables: VariableInit[]
  types: Btf
  rawTypes: Btf
  license: string
  kernelVersion: number
}

/** A function in an executable section. */
interface Func {
  name: string
  section: ElfSection
  /** First instruction index inside the section. */
  start: number
  /** Number of instruction slots. */
  count: number
  symbol: ElfSymbol
}

export interface LoadObjectOptions {
  /** BTF of the kernel the programs are meant for: enables CO-RE relocations against it. */
  kernelTypes?: Btf
  /** Values of `.kconfig` externs (LINUX_KERNEL_VERSION, CONFIG_*), encoded with their BTF types. */
  kconfig?: Record<string, unknown>
}

export function loadObject(bytes: Uint8Array, options: LoadObjectOptions = {}): LoadedObject {
  if (!(bytes instanceof Uint8Array)) throw new EbpfError('EINVAL', 'object must be a Uint8Array')
  if (options.kernelTypes !== undefined && !(options.kernelTypes instanceof Btf)) {
    throw new EbpfError('EINVAL', 'kernelTypes must be a Btf (from btf.parse)')
  }
  if (options.kconfig !== undefined && (typeof options.kconfig !== 'object' || options.kconfig === null)) {
    throw new EbpfError('EINVAL', 'kconfig must be an object of extern names to values')
  }
  return new ObjectLoader(readElf(bytes), options.kernelTypes, options.kconfig).load()
}

class ObjectLoader {
  private rawTypes!: Btf
  private types!: Btf
  private ext: BtfExt | undefined
  private readonly maps = new Map<string, MapSpec>()
  /** Map lookup by (section index, offset) for relocations. */
  private readonly mapAt = new Map<string, MapSpec>()
  private readonly dataMaps = new Map<number, MapSpec>()
  private text: ElfSection | undefined
  private textFuncs: Func[] = []
  private relocIndex = new Map<number, Map<number, ElfRelocation>>()
  private license = ''
  private kernelVersion = 0

  private kconfigMap: MapSpec | undefined
  private readonly kconfigOffsets = new Map<string, number>()

  constructor(
    private readonly elf: ElfFile,
    private readonly kernelTypes: Btf | undefined,
    private readonly kconfig: Record<string, unknown> | undefined,
  ) {}

  load(): LoadedObject {
    const elf = this.elf
    this.readBtf()
    this.checkExterns()
    const lic = elf.sectionByName('license')
    if (lic) {
      const end = lic.data.indexOf(0)
      this.license = new TextDecoder().decode(end < 0 ? lic.data : lic.data.subarray(0, end))
    }
    const ver = elf.sectionByName('version')
    if (ver) {
      if (ver.data.length !== 4)
        throw new FormatError(`'version' section must hold 4 bytes, found ${ver.data.length}`, ver.offset)
      this.kernelVersion = new DataView(ver.data.buffer, ver.data.byteOffset, 4).getUint32(0, true)
    }
    this.readMaps()
    this.readKconfig()
    this.checkUnsupportedSections()
    for (const [secIndex, rels] of elf.relocations) {
      const byInsn = new Map<number, ElfRelocation>()
      for (const r of rels) byInsn.set(r.offset, r)
      this.relocIndex.set(secIndex, byInsn)
    }

    const execs = elf.sections.filter((s) => s.type === SHT_PROGBITS && (s.flags & SHF_EXECINSTR) !== 0 && s.size > 0)
    this.text = execs.find((s) => s.name === '.text')
    if (this.text) this.textFuncs = this.functionsOf(this.text)
    const programs = new Map<string, ProgramSpec>()
    for (const sec of execs) {
      if (sec === this.text) continue
      const st = sectionType(sec.name)
      if (!st) {
        throw new EbpfError('ENOTSUPP', `section '${sec.name}': program type cannot be derived from the section name`)
      }
      const funcs = this.functionsOf(sec)
      if (funcs.length === 0) throw new FormatError(`section '${sec.name}' has code but no function symbol`, sec.offset)
      for (const f of funcs) {
        if (f.symbol.bind === STB_LOCAL) {
          throw new EbpfError(
            'ENOTSUPP',
            `section '${sec.name}': program '${f.name}' is static, which libbpf does not support`,
          )
        }
        if (programs.has(f.name)) throw new FormatError(`two programs are named '${f.name}'`)
        const linked = this.link(f)
        programs.set(f.name, {
          name: f.name,
          section: sec.name,
          type: st.type,
          typeId: st.typeId,
          attachType: st.attachType,
          attachTo: st.target,
          sleepable: st.sleepable,
          license: this.license,
          kernelVersion: this.kernelVersion,
          ...linked,
        })
      }
    }
    this.readMapSlots(programs)
    return {
      programs,
      maps: this.maps,
      variables: this.variables(),
      types: this.types,
      rawTypes: this.rawTypes,
      license: this.license,
      kernelVersion: this.kernelVersion,
    }
  }

  private readBtf(): void {
    const sec = this.elf.sectionByName('.BTF')
    if (!sec) {
      // Objects without BTF still load (legacy maps only); types are empty.
      this.rawTypes = new Btf([{ id: 0, kind: 'VOID', name: 'void', info: 0, kindFlag: false, vlen: 0 }])
      this.types = this.rawTypes
      return
    }
    const parsed = parseBtf(sec.data, sec.offset)
    const extSec = this.elf.sectionByName('.BTF.ext')
    this.ext = extSec ? parseBtfExt(extSec.data, parsed.strings, extSec.offset) : undefined
    this.rawTypes = new Btf(parsed.types, this.ext)
    this.types = fixupBtf(this.rawTypes, this.elf)
  }

  /** Undefined symbols are externs (.kconfig, .ksyms, kfuncs): not supported yet, so say which. */
  private checkExterns(): void {
    const kconfig = new Set(
      (this.types.typeByName('.kconfig', 'DATASEC')?.vars ?? []).map((v) => this.types.types[v.type]?.name),
    )
    for (const s of this.elf.symbols) {
      if (s.shndx !== SHN_UNDEF || s.name === '' || s.index === 0) continue
      if (kconfig.has(s.name)) continue
      let where = 'extern'
      for (const t of this.types.types) {
        if (t.kind !== 'DATASEC') continue
        for (const v of t.vars!) {
          if (this.types.types[v.type]?.name === s.name) where = `${t.name} extern`
        }
      }
      if (where === 'extern' && this.types.typeByName(s.name, 'FUNC')) where = 'kfunc extern'
      throw new EbpfError('ENOTSUPP', `${where} '${s.name}' is not supported yet (externs need the target kernel)`)
    }
  }

  /**
   * Sections libbpf gives a meaning we do not implement yet. Refusing them beats loading an object
   * whose behaviour silently differs from what the kernel would do.
   */
  private checkUnsupportedSections(): void {
    for (const sec of this.elf.sections) {
      if (sec.name === '.struct_ops' || sec.name === '.struct_ops.link') {
        throw new EbpfError('ENOTSUPP', `section '${sec.name}': struct_ops maps are not supported yet`)
      }
      if (sec.name === '.addr_space.1') {
        throw new EbpfError('ENOTSUPP', `section '${sec.name}': arena globals are not supported yet`)
      }
      // Pointers stored in global data (e.g. `const char *names[] = {...}`) would need the data's
      // address at run time; libbpf leaves them unrelocated, we refuse them by name.
      if (this.dataMaps.has(sec.index)) {
        const rel = this.elf.relocations.get(sec.index)?.find((r) => r.type !== R_BPF_NONE)
        if (rel) {
          throw new EbpfError(
            'ENOTSUPP',
            `section '${sec.name}': global data initialised with the address of '${rel.symbol.name}' (offset ${rel.offset}) is not supported`,
          )
        }
      }
    }
  }

  private readMaps(): void {
    const elf = this.elf
    const mapsSec = elf.sectionByName('.maps')
    if (mapsSec) {
      const datasec = this.types.typeByName('.maps', 'DATASEC')
      if (!datasec) throw new FormatError("the '.maps' section needs BTF (a '.maps' DATASEC) to describe its maps")
      for (const [offset, { map }] of parseBtfMaps(this.types, datasec, mapsSec))
        this.addMap(map, mapsSec.index, offset)
    }
    const legacy = elf.sectionByName('maps')
    if (legacy) for (const [offset, map] of parseLegacyMaps(legacy, elf.symbols)) this.addMap(map, legacy.index, offset)

    for (const sec of elf.sections) {
      if (!isDataSection(sec.name) || (sec.flags & SHF_ALLOC) === 0 || sec.size === 0) continue
      if (sec.type !== SHT_PROGBITS && sec.type !== SHT_NOBITS) continue
      if (sec.size > MAX_DATA_SECTION) {
        throw new EbpfError(
          'E2BIG',
          `data section '${sec.name}' is ${sec.size} bytes, over the ${MAX_DATA_SECTION}-byte limit`,
        )
      }
      const rodata = (sec.flags & SHF_WRITE) === 0
      const datasec = this.types.typeByName(sec.name, 'DATASEC')
      // libbpf makes a data map mmapable when it holds at least one non-static variable.
      const mmapable = datasec?.vars?.some((v) => this.types.types[v.type]?.linkage !== 0) ?? false
      const map: MapSpec = {
        name: sec.name,
        type: BPF_MAP_TYPE.array,
        typeName: 'array',
        keySize: 4,
        valueSize: sec.size,
        maxEntries: 1,
        flags: (rodata ? BPF_F_RDONLY_PROG : 0) | (mmapable ? BPF_F_MMAPABLE : 0),
        pinning: 0,
        numaNode: 0,
        mapExtra: 0n,
        value: datasec,
        contents: sec.type === SHT_NOBITS ? new Uint8Array(sec.size) : sec.data.slice(),
        readonly: rodata,
        section: sec.name,
      }
      this.addMap(map, sec.index, 0)
      this.dataMaps.set(sec.index, map)
    }
  }

  /**
   * `.kconfig` externs become a read-only one-entry array map named '.kconfig', laid out as libbpf
   * lays it out (see fixup.ts); values come from the caller, since there is no kernel config to
   * read. A weak extern without a value is 0; a strong one is an error naming it.
   */
  private readKconfig(): void {
    const datasec = this.types.typeByName('.kconfig', 'DATASEC')
    if (!datasec) return
    const contents = new Uint8Array(datasec.size!)
    const view = new DataView(contents.buffer)
    const given = this.kconfig ?? {}
    for (const v of datasec.vars!) {
      const vt = this.types.typeById(v.type)
      if (vt.kind !== 'VAR') throw new FormatError(`.kconfig DATASEC lists type #${v.type}, not a VAR`)
      this.kconfigOffsets.set(vt.name, v.offset)
      const sym = this.elf.symbols.find((s) => s.name === vt.name && s.shndx === SHN_UNDEF)
      if (!(vt.name in given)) {
        if (sym?.bind === STB_WEAK) continue
        throw new EbpfError(
          'ENOTSUPP',
          `.kconfig extern '${vt.name}' has no value: give it in the kconfig load option (there is no kernel config to read)`,
        )
      }
      try {
        codec(this.types, vt.type!).write(view, v.offset, given[vt.name])
      } catch (e) {
        if (e instanceof EbpfError) throw new EbpfError(e.code, `.kconfig extern '${vt.name}': ${e.message}`)
        throw e
      }
    }
    const map: MapSpec = {
      name: '.kconfig',
      type: BPF_MAP_TYPE.array,
      typeName: 'array',
      keySize: 4,
      valueSize: datasec.size!,
      maxEntries: 1,
      flags: BPF_F_RDONLY_PROG | BPF_F_MMAPABLE,
      pinning: 0,
      numaNode: 0,
      mapExtra: 0n,
      value: datasec,
      contents,
      readonly: true,
      section: '.kconfig',
    }
    if (this.maps.has(map.name)) throw new FormatError("two maps are named '.kconfig'")
    this.maps.set(map.name, map)
    this.kconfigMap = map
  }

  private addMap(map: MapSpec, secIndex: number, offset: number): void {
    if (this.maps.has(map.name)) throw new FormatError(`two maps are named '${map.name}'`)
    this.maps.set(map.name, map)
    this.mapAt.set(`${secIndex}:${offset}`, map)
  }

  /** Static initialisers of map-in-map and prog_array slots: R_BPF_64_ABS64 relocations in `.maps`. */
  private readMapSlots(programs: Map<string, ProgramSpec>): void {
    const mapsSec = this.elf.sectionByName('.maps')
    const rels = mapsSec ? this.elf.relocations.get(mapsSec.index) : undefined
    if (!mapsSec || !rels) return
    const datasec = this.types.typeByName('.maps', 'DATASEC')!
    const defs = parseBtfMaps(this.types, datasec, mapsSec)
    for (const r of rels) {
      if (r.type === R_BPF_NONE) continue
      const owner = [...defs].find(([off, d]) => r.offset >= off && r.offset < off + d.size)
      if (!owner) throw new FormatError(`.maps relocation at offset ${r.offset} is outside every map`, mapsSec.offset)
      const [off, d] = owner
      const map = this.maps.get(d.map.name)!
      if (r.type !== R_BPF_64_ABS64 || d.valuesOffset === undefined || r.offset < off + d.valuesOffset) {
        throw new EbpfError(
          'ENOTSUPP',
          `map '${map.name}': relocation against '${r.symbol.name}' outside its 'values' slots`,
        )
      }
      const rel = r.offset - off - d.valuesOffset
      if (rel % 8 !== 0)
        throw new FormatError(`map '${map.name}': misaligned slot initialiser`, mapsSec.offset + r.offset)
      const index = rel / 8
      if (index >= map.maxEntries) {
        throw new EbpfError(
          'EINVAL',
          `map '${map.name}': slot ${index} is initialised but max_entries is ${map.maxEntries}`,
        )
      }
      let target: string
      if (map.innerMap) {
        const inner = this.mapAt.get(`${r.symbol.shndx}:${r.symbol.value}`)
        if (!inner || r.symbol.shndx !== mapsSec.index) {
          throw new EbpfError(
            'EINVAL',
            `map '${map.name}': slot ${index} refers to '${r.symbol.name}', which is not a map`,
          )
        }
        target = inner.name
      } else {
        if (!programs.has(r.symbol.name)) {
          throw new EbpfError(
            'EINVAL',
            `map '${map.name}': slot ${index} refers to '${r.symbol.name}', which is not a program`,
          )
        }
        target = r.symbol.name
      }
      map.slots ??= []
      map.slots.push({ index, target })
    }
    for (const m of this.maps.values()) m.slots?.sort((a, b) => a.index - b.index)
  }

  private funcSymbols: Map<number, ElfSymbol[]> | undefined

  private functionsOf(sec: ElfSection): Func[] {
    if (!this.funcSymbols) {
      this.funcSymbols = new Map()
      for (const s of this.elf.symbols) {
        if (s.type !== STT_FUNC) continue
        const list = this.funcSymbols.get(s.shndx)
        if (list) list.push(s)
        else this.funcSymbols.set(s.shndx, [s])
      }
    }
    const funcs: Func[] = []
    for (const s of this.funcSymbols.get(sec.index) ?? []) {
      if (s.value % INSN !== 0 || s.size % INSN !== 0 || s.size === 0 || s.value + s.size > sec.size) {
        throw new FormatError(
          `function '${s.name}' (offset ${s.value}, size ${s.size}) is not a whole number of instructions inside section '${sec.name}' (${sec.size} bytes)`,
          sec.offset,
        )
      }
      funcs.push({ name: s.name, section: sec, start: s.value / INSN, count: s.size / INSN, symbol: s })
    }
    funcs.sort((a, b) => a.start - b.start)
    for (let i = 1; i < funcs.length; i++) {
      const prev = funcs[i - 1]!
      if (funcs[i]!.start < prev.start + prev.count) {
        throw new FormatError(
          `functions '${prev.name}' and '${funcs[i]!.name}' overlap in section '${sec.name}'`,
          sec.offset,
        )
      }
    }
    return funcs
  }

  /** The main function with every `.text` function it reaches appended, libbpf style. */
  private link(
    main: Func,
  ): Pick<ProgramSpec, 'instructions' | 'relocations' | 'subprograms' | 'lineInfo' | 'funcInfo'> {
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
              throw new EbpfError(
                'ENOTSUPP',
                `${where}: call to extern function '${rel.symbol.name}' is not supported yet`,
              )
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
          if (s.shndx === SHN_UNDEF)
            throw new EbpfError('ENOTSUPP', `${where}: extern '${s.name}' is not supported yet`)
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
            const offset = (s.type === STT_SECTION ? 0 : s.value) + imm
            if (offset < 0 || offset >= Math.max(dataMap.valueSize, 1)) {
              throw new FormatError(
                `${where}: offset ${offset} is outside '${dataMap.name}' (${dataMap.valueSize} bytes)`,
              )
            }
            relocations.push({ insn: at, kind: 'map_value', map: dataMap.name, offset })
          } else {
            const map = this.mapAt.get(`${s.shndx}:${s.value}`)
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
        if (!this.kernelTypes) {
          const t = this.types.types[r.typeId]
          const tname = t ? `${t.kind.toLowerCase()} ${t.name || '(anon)'}` : `type #${r.typeId}`
          throw new EbpfError(
            'ENOTSUPP',
            `program '${main.name}': CO-RE relocation (${r.kindName}, access '${r.access}') against ${tname} in '${f.name}' needs the target kernel's BTF (pass kernelTypes)`,
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
    if (relos.length > 0) applyCoreRelocations(code, relos, this.types, this.kernelTypes!, main.name)
  }

  private variables(): Array<{
    name: string
    section: string
    offset: number
    size: number
    type: BtfType
    linkage: string
  }> {
    const out = []
    for (const map of [...this.dataMaps.values(), ...(this.kconfigMap ? [this.kconfigMap] : [])]) {
      const ds = map.value
      if (ds?.kind !== 'DATASEC') continue
      for (const v of ds.vars!) {
        const vt = this.types.typeById(v.type)
        if (vt.kind !== 'VAR') continue
        // Static variables keep offset 0 in fixed-up BTF (as in libbpf); their ELF symbol knows better.
        let offset = v.offset
        if (vt.linkage === 0) {
          const sym = this.elf.symbols.find((s) => s.name === vt.name && this.elf.sections[s.shndx]?.name === map.name)
          if (sym) offset = sym.value
        }
        const typeSize = this.types.sizeOf(vt.type!)
        if (typeSize !== v.size) {
          throw new FormatError(
            `variable '${vt.name}' is ${v.size} bytes in DATASEC '${map.name}' but its type is ${typeSize}`,
          )
        }
        if (offset + v.size > map.valueSize) {
          throw new FormatError(`variable '${vt.name}' (offset ${offset}, size ${v.size}) is outside '${map.name}'`)
        }
        out.push({
          name: vt.name,
          section: map.name,
          offset,
          size: v.size,
          type: this.types.typeById(vt.type!),
          linkage: ['static', 'global', 'extern'][vt.linkage!] ?? 'unknown',
        })
      }
    }
    return out
  }
}
