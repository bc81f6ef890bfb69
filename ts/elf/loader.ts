/**
 * The libbpf-convention object loader: from a clang-built BPF ELF object to program specs (one
 * per function of each executable section, with their `.text` sub-programs linked in), map specs
 * (`.maps`, legacy `maps`, global data sections), global variables and fixed-up BTF. Nothing is
 * created here; lddw instructions that need a map keep a relocation record instead.
 */

import { createHash } from 'node:crypto'
import {
  type ElfFile,
  type ElfRelocation,
  type ElfSection,
  type ElfSymbol,
  EM_NONE,
  R_BPF_64_32,
  R_BPF_64_64,
  R_BPF_64_ABS64,
  R_BPF_NONE,
  readElf,
  SHF_ALLOC,
  SHF_EXECINSTR,
  SHF_WRITE,
  SHT_NOBITS,
  SHT_PROGBITS,
  STB_GLOBAL,
  STT_FUNC,
} from '../binary/elf.js'
import { Btf } from '../btf/btf.js'
import { type BtfExt, parseBtfExt } from '../btf/ext.js'
import { fixupBtf } from '../btf/fixup.js'
import { defaultKernelTypes } from '../btf/kernel.js'
import { parseBtf } from '../btf/parse.js'
import type { BtfType } from '../btf/types.js'
import { EbpfError, FormatError } from '../errors.js'
import { kconfigMap } from './kconfig.js'
import { type Func, INSN, Linker } from './link.js'
import { BPF_MAP_TYPE, isDataSection, parseBtfMaps, parseLegacyMaps } from './maps.js'
import { applyProgramTypes, checkProgramTypes } from './program-types.js'
import { sectionType } from './section-types.js'
import type { MapSpec, ProgramSpec } from './specs.js'
import { unsupportedReason } from './unsupported.js'

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

export interface LoadObjectOptions {
  /**
   * BTF of the kernel the programs are meant for: CO-RE relocations are applied against it. Default:
   * the running kernel's (/sys/kernel/btf/vmlinux) when readable, else the UAPI context structs we
   * ship; null: none (CO-RE programs are then unsupported).
   */
  kernelTypes?: Btf | null
  /** Values of `.kconfig` externs (LINUX_KERNEL_VERSION, CONFIG_*), encoded with their BTF types. */
  kconfig?: Record<string, unknown>
  /** Program types by program or section name, for sections whose name does not say (or says wrong). */
  programTypes?: Record<string, string>
}

export function loadObject(given: Uint8Array, options: LoadObjectOptions = {}): LoadedObject {
  if (!(given instanceof Uint8Array)) throw new EbpfError('EINVAL', 'object must be a Uint8Array')
  // A plain view of the caller's bytes: the loader copies sections with `slice`, which a Node
  // Buffer answers with a view, so that linking would write into the caller's file bytes.
  const bytes = new Uint8Array(given.buffer, given.byteOffset, given.byteLength)
  if (options.kernelTypes !== undefined && options.kernelTypes !== null && !(options.kernelTypes instanceof Btf)) {
    throw new EbpfError('EINVAL', 'kernelTypes must be a Btf (from btf.parse), or null for none')
  }
  if (options.kconfig !== undefined && (typeof options.kconfig !== 'object' || options.kconfig === null)) {
    throw new EbpfError('EINVAL', 'kconfig must be an object of extern names to values')
  }
  const programTypes = checkProgramTypes(options.programTypes)
  const loaded = new ObjectLoader(readElf(bytes), options.kernelTypes, options.kconfig).load()
  applyProgramTypes(loaded.programs, programTypes)
  return loaded
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
    private readonly kernelTypes: Btf | null | undefined,
    private readonly kconfig: Record<string, unknown> | undefined,
  ) {}

  load(): LoadedObject {
    const elf = this.elf
    this.readBtf()
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
      const sec = elf.sections[secIndex]!
      for (const r of rels) byInsn.set(r.offset, elf.machine === EM_NONE ? this.emNoneRelocation(sec, r) : r)
      this.relocIndex.set(secIndex, byInsn)
    }

    const execs = elf.sections.filter((s) => s.type === SHT_PROGBITS && (s.flags & SHF_EXECINSTR) !== 0 && s.size > 0)
    this.text = execs.find((s) => s.name === '.text')
    if (this.text) this.textFuncs = this.functionsOf(this.text)
    // A .text without function symbols (old clang) holds no sub-programs: it is a program itself.
    if (this.text && this.textFuncs.length === 0) this.text = undefined
    const linker = new Linker({
      elf,
      text: this.text,
      textFuncs: this.textFuncs,
      relocIndex: this.relocIndex,
      dataMaps: this.dataMaps,
      mapAt: this.mapAt,
      kconfigOffsets: this.kconfigOffsets,
      types: this.types,
      ext: this.ext,
      // Asked for only when a program has CO-RE relocations: the running kernel's BTF is big.
      kernelTypes: () =>
        this.kernelTypes === undefined ? defaultKernelTypes().types : (this.kernelTypes ?? undefined),
      kernelTypesSource: '; kernelTypes was null',
    })
    const programs = new Map<string, ProgramSpec>()
    for (const sec of execs) {
      if (sec === this.text) continue
      const st = sectionType(sec.name)
      let funcs = this.functionsOf(sec)
      // Objects from clang before function symbols (and iproute2's loader) had one program per
      // section, its symbols plain labels: the whole section is the program, named after it.
      if (funcs.length === 0) funcs = [this.wholeSection(sec)]
      for (const f of funcs) {
        if (programs.has(f.name)) throw new FormatError(`two programs are named '${f.name}'`)
        // A static program (cilium's tail calls are) loads as cilium/ebpf loads it; libbpf 1.1
        // refuses it ("program is static and not supported"), but nothing in it needs refusing.
        let unsupported: string | undefined
        let linked: ReturnType<Linker['link']>
        try {
          linked = linker.link(f)
        } catch (e) {
          // What this program needs and we lack (an extern, a kfunc, kernel BTF for CO-RE) makes
          // this program unloadable, not the object: it is listed with the reason.
          const reason = unsupportedReason(e)
          if (reason === undefined) throw e
          unsupported ??= reason
          linked = {
            instructions: f.section.data.slice(f.start * INSN, (f.start + f.count) * INSN),
            relocations: [],
            subprograms: [],
            lineInfo: [],
            funcInfo: [],
          }
        }
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
          ...(unsupported === undefined ? {} : { unsupported }),
        })
      }
    }
    this.readMapSlots(programs)
    this.markProgramsUsingUnsupportedMaps(programs)
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
      // address at run time; libbpf leaves them unrelocated, we mark the map (and the programs
      // that use it) unsupported, naming the pointer.
      const dataMap = this.dataMaps.get(sec.index)
      if (dataMap) {
        const rel = this.elf.relocations.get(sec.index)?.find((r) => r.type !== R_BPF_NONE)
        if (rel) {
          dataMap.unsupported = `section '${sec.name}': global data initialised with the address of '${rel.symbol.name}' (offset ${rel.offset}) is not supported`
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
    if (legacy) {
      // iproute2 names PIN_OBJECT_NS pins after the SHA-1 of the object file.
      const objectId = createHash('sha1').update(elf.bytes).digest('hex')
      for (const [offset, map] of parseLegacyMaps(legacy, elf.symbols, objectId)) this.addMap(map, legacy.index, offset)
    }

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

  private readKconfig(): void {
    const k = kconfigMap(this.types, this.elf.symbols, this.kconfig ?? {})
    if (!k) return
    if (this.maps.has(k.map.name)) throw new FormatError("two maps are named '.kconfig'")
    this.maps.set(k.map.name, k.map)
    this.kconfigMap = k.map
    for (const [name, off] of k.offsets) this.kconfigOffsets.set(name, off)
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
      // clang before 15 wrote R_BPF_64_64 here; libbpf reads both the same way.
      const dataReloc = r.type === R_BPF_64_ABS64 || r.type === R_BPF_64_64
      if (!dataReloc || d.valuesOffset === undefined || r.offset < off + d.valuesOffset) {
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
          // A .text function is a sub-program to libbpf, never loaded alone: the map cannot be filled.
          const what = this.textFuncs.some((f) => f.name === r.symbol.name) ? 'a .text sub-program' : 'not a program'
          map.unsupported ??= `slot ${index} refers to '${r.symbol.name}', which is ${what}`
          continue
        }
        target = r.symbol.name
      }
      map.slots ??= []
      map.slots.push({ index, target })
    }
    for (const m of this.maps.values()) m.slots?.sort((a, b) => a.index - b.index)
  }

  /**
   * A section without function symbols as one program. Its name is the section's; the symbol is
   * made up (global, so that the program is not taken for a static one).
   */
  private wholeSection(sec: ElfSection): Func {
    if (sec.size % INSN !== 0) {
      throw new FormatError(
        `section '${sec.name}' (${sec.size} bytes) is not a whole number of instructions`,
        sec.offset,
      )
    }
    const symbol: ElfSymbol = {
      index: -1,
      name: sec.name,
      type: STT_FUNC,
      bind: STB_GLOBAL,
      visibility: 0,
      shndx: sec.index,
      value: 0,
      size: sec.size,
    }
    return { name: sec.name, section: sec, start: 0, count: sec.size / INSN, symbol }
  }

  /**
   * Relocation types of EM_NONE objects (LLVM before 3.9) are not BPF's numbering (the samples'
   * and iproute2's loaders of the time ignored them): read them from the instruction they patch.
   */
  private emNoneRelocation(sec: ElfSection, r: ElfRelocation): ElfRelocation {
    if ((sec.flags & SHF_EXECINSTR) === 0 || r.offset + INSN > sec.data.length) return r
    const op = sec.data[r.offset]
    if (op === 0x18) return { ...r, type: R_BPF_64_64 }
    if (op === 0x85) return { ...r, type: R_BPF_64_32 }
    return r
  }

  /** A program that relocates against an unsupported map is unsupported, saying which map and why. */
  private markProgramsUsingUnsupportedMaps(programs: Map<string, ProgramSpec>): void {
    for (const p of programs.values()) {
      if (p.unsupported !== undefined) continue
      for (const r of p.relocations) {
        const m = this.maps.get(r.map)
        if (m?.unsupported !== undefined) {
          p.unsupported = `uses map '${m.name}', which is unsupported: ${m.unsupported}`
          break
        }
      }
    }
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
