/**
 * ELF64 reader for BPF relocatable objects: header, section headers, symbol table and REL
 * relocations. Only what the libbpf-convention loader needs; every field is bounds-checked and
 * anything that is not a little-endian ELF64 object for EM_BPF (or EM_NONE) is rejected with EINVAL.
 */
import { FormatError } from '../errors.js'
import { ByteReader } from './bytes.js'

export const SHT_NULL = 0
export const SHT_PROGBITS = 1
export const SHT_SYMTAB = 2
export const SHT_STRTAB = 3
export const SHT_RELA = 4
export const SHT_NOBITS = 8
export const SHT_REL = 9

export const SHF_WRITE = 0x1
export const SHF_ALLOC = 0x2
export const SHF_EXECINSTR = 0x4

export const STT_NOTYPE = 0
export const STT_OBJECT = 1
export const STT_FUNC = 2
export const STT_SECTION = 3

export const STB_LOCAL = 0
export const STB_GLOBAL = 1
export const STB_WEAK = 2

export const SHN_UNDEF = 0
export const SHN_LORESERVE = 0xff00
export const SHN_ABS = 0xfff1
export const SHN_COMMON = 0xfff2

export const EM_NONE = 0
export const EM_BPF = 247
export const ET_REL = 1

export const R_BPF_NONE = 0
export const R_BPF_64_64 = 1
export const R_BPF_64_ABS64 = 2
export const R_BPF_64_ABS32 = 3
export const R_BPF_64_NODYLD32 = 4
export const R_BPF_64_32 = 10

export interface ElfSection {
  index: number
  name: string
  type: number
  flags: number
  offset: number
  size: number
  link: number
  info: number
  addralign: number
  entsize: number
  /** The section's bytes (empty for SHT_NOBITS). */
  data: Uint8Array
}

export interface ElfSymbol {
  index: number
  name: string
  /** STT_* */
  type: number
  /** STB_* */
  bind: number
  /** STV_* (low two bits of st_other) */
  visibility: number
  shndx: number
  value: number
  size: number
}

export interface ElfRelocation {
  offset: number
  type: number
  symbol: ElfSymbol
  /** r_addend of a RELA entry; 0 for REL, whose addend is in the relocated field. */
  addend: number
}

export interface ElfFile {
  bytes: Uint8Array
  /** e_machine: EM_BPF, or EM_NONE from LLVM before BPF had its number. */
  machine: number
  sections: ElfSection[]
  symbols: ElfSymbol[]
  /** Relocations keyed by the index of the (allocated) section they apply to. */
  relocations: Map<number, ElfRelocation[]>
  sectionByName(name: string): ElfSection | undefined
}

const EHDR_SIZE = 64
const SHDR_SIZE = 64
const SYM_SIZE = 24
const REL_SIZE = 16
const RELA_SIZE = 24

/** True when `bytes` starts with the ELF magic. */
export function isElf(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46
}

export function readElf(bytes: Uint8Array): ElfFile {
  const r = new ByteReader(bytes, 'ELF header')
  if (!isElf(bytes)) throw new FormatError('not an ELF file (bad magic)', 0)
  r.need(0, EHDR_SIZE, 'ELF64 header')
  const cls = r.u8(4)
  if (cls !== 2) throw new FormatError(`not a 64-bit ELF object (EI_CLASS=${cls}); BPF objects are ELF64`, 4)
  const data = r.u8(5)
  if (data === 2) throw new FormatError('big-endian ELF object: only little-endian BPF objects are supported', 5)
  if (data !== 1) throw new FormatError(`bad ELF data encoding EI_DATA=${data}`, 5)
  const type = r.u16(16)
  if (type !== ET_REL) throw new FormatError(`ELF type ${type} is not a relocatable object (ET_REL)`, 16)
  const machine = r.u16(18)
  // LLVM before 3.9 wrote EM_NONE; libbpf accepts it as BPF, and so do we.
  if (machine !== EM_BPF && machine !== EM_NONE)
    throw new FormatError(`ELF machine ${machine} is not BPF (EM_BPF=247, or EM_NONE=0 from old LLVM)`, 18)
  const shoff = r.u64n(40, 'e_shoff')
  const shentsize = r.u16(58, 'e_shentsize')
  let shnum = r.u16(60, 'e_shnum')
  let shstrndx = r.u16(62, 'e_shstrndx')
  if (shoff === 0) throw new FormatError('ELF object has no section header table', 40)
  if (shentsize !== SHDR_SIZE) throw new FormatError(`bad section header size ${shentsize} (expected 64)`, 58)
  // Extended numbering: the real counts live in section header 0.
  const sh = new ByteReader(bytes, 'ELF section headers')
  if (shnum === 0) shnum = sh.u64n(shoff + 32, 'section count (sh_size of section 0)')
  if (shstrndx === 0xffff) shstrndx = sh.u32(shoff + 40, 'section name table index (sh_link of section 0)')
  sh.need(shoff, shnum * SHDR_SIZE, `${shnum} section headers`)
  if (shstrndx >= shnum) throw new FormatError(`section name table index ${shstrndx} is out of range`, 62)

  const raw = []
  for (let i = 0; i < shnum; i++) {
    const o = shoff + i * SHDR_SIZE
    const s = {
      index: i,
      nameOff: sh.u32(o, 'sh_name'),
      type: sh.u32(o + 4, 'sh_type'),
      flags: Number(sh.u64(o + 8, 'sh_flags') & 0xffffffffn),
      offset: sh.u64n(o + 24, 'sh_offset'),
      size: sh.u64n(o + 32, 'sh_size'),
      link: sh.u32(o + 40, 'sh_link'),
      info: sh.u32(o + 44, 'sh_info'),
      addralign: sh.u64n(o + 48, 'sh_addralign'),
      entsize: sh.u64n(o + 56, 'sh_entsize'),
    }
    if (s.type !== SHT_NOBITS && s.type !== SHT_NULL && (s.offset + s.size > bytes.length || s.offset < 0)) {
      throw new FormatError(
        `section #${i} (offset ${s.offset}, size ${s.size}) extends past the end of the file (${bytes.length} bytes)`,
        o + 24,
      )
    }
    raw.push(s)
  }
  const shstr = raw[shstrndx]!
  if (shstr.type !== SHT_STRTAB) throw new FormatError(`section name table #${shstrndx} is not a string table`, 62)
  const names = new ByteReader(
    bytes.subarray(shstr.offset, shstr.offset + shstr.size),
    'section name table',
    shstr.offset,
  )

  const sections: ElfSection[] = raw.map((s) => ({
    index: s.index,
    name: s.index === 0 ? '' : names.cstring(s.nameOff, `name of section #${s.index}`),
    type: s.type,
    flags: s.flags,
    offset: s.offset,
    size: s.size,
    link: s.link,
    info: s.info,
    addralign: s.addralign,
    entsize: s.entsize,
    data:
      s.type === SHT_NOBITS || s.type === SHT_NULL ? new Uint8Array(0) : bytes.subarray(s.offset, s.offset + s.size),
  }))

  const symbols = readSymbols(sections)
  const relocations = new Map<number, ElfRelocation[]>()
  for (const s of sections) {
    // clang writes REL; LLVM before 3.9 (the EM_NONE era) wrote RELA, with the addend apart.
    if (s.type !== SHT_REL && s.type !== SHT_RELA) continue
    const entry = s.type === SHT_RELA ? RELA_SIZE : REL_SIZE
    if (s.info >= sections.length || s.info === 0) {
      throw new FormatError(`relocation section '${s.name}' applies to missing section #${s.info}`, s.offset)
    }
    // Relocations of non-loaded sections (DWARF, .BTF, .BTF.ext) mean nothing to a BPF loader.
    if ((sections[s.info]!.flags & SHF_ALLOC) === 0) continue
    if (s.size % entry !== 0) {
      throw new FormatError(`relocation section '${s.name}' size ${s.size} is not a multiple of ${entry}`, s.offset)
    }
    const rr = new ByteReader(s.data, `relocation section '${s.name}'`, s.offset)
    const list: ElfRelocation[] = []
    for (let o = 0; o < s.size; o += entry) {
      const offset = rr.u64n(o, 'r_offset')
      const info = rr.u64(o + 8, 'r_info')
      const symIndex = Number(info >> 32n)
      const symbol = symbols[symIndex]
      if (symIndex === 0 || symbol === undefined) {
        throw new FormatError(
          `relocation section '${s.name}': relocation #${o / entry} names missing symbol #${symIndex}`,
          s.offset + o + 8,
        )
      }
      const addend = entry === RELA_SIZE ? Number(BigInt.asIntN(64, rr.u64(o + 16, 'r_addend'))) : 0
      if (!Number.isSafeInteger(addend)) rr.fail(`relocation #${o / entry}: r_addend is out of range`, o + 16)
      list.push({ offset, type: Number(info & 0xffffffffn), symbol, addend })
    }
    const existing = relocations.get(s.info)
    if (existing) existing.push(...list)
    else relocations.set(s.info, list)
  }

  const byName = new Map<string, ElfSection>()
  for (const s of sections) if (!byName.has(s.name)) byName.set(s.name, s)
  return { bytes, machine, sections, symbols, relocations, sectionByName: (n) => byName.get(n) }
}

function readSymbols(sections: ElfSection[]): ElfSymbol[] {
  const symtabs = sections.filter((s) => s.type === SHT_SYMTAB)
  if (symtabs.length === 0) return []
  if (symtabs.length > 1) throw new FormatError('ELF object has more than one symbol table', symtabs[1]!.offset)
  const st = symtabs[0]!
  if (st.size % SYM_SIZE !== 0) throw new FormatError(`symbol table size ${st.size} is not a multiple of 24`, st.offset)
  const strtab = sections[st.link]
  if (!strtab || strtab.type !== SHT_STRTAB) {
    throw new FormatError(`symbol table links to section #${st.link}, which is not a string table`, st.offset)
  }
  const r = new ByteReader(st.data, 'symbol table', st.offset)
  const strs = new ByteReader(strtab.data, 'symbol string table', strtab.offset)
  const out: ElfSymbol[] = []
  for (let o = 0, i = 0; o < st.size; o += SYM_SIZE, i++) {
    const nameOff = r.u32(o, 'st_name')
    const info = r.u8(o + 4, 'st_info')
    const other = r.u8(o + 5, 'st_other')
    const shndx = r.u16(o + 6, 'st_shndx')
    const sym: ElfSymbol = {
      index: i,
      name: nameOff === 0 ? '' : strs.cstring(nameOff, `name of symbol #${i}`),
      type: info & 0xf,
      bind: info >> 4,
      visibility: other & 3,
      shndx,
      value: r.u64n(o + 8, 'st_value'),
      size: r.u64n(o + 16, 'st_size'),
    }
    if (shndx !== SHN_UNDEF && shndx < SHN_LORESERVE && shndx >= sections.length) {
      r.fail(`symbol #${i} '${sym.name}' refers to missing section #${shndx}`, o + 6)
    }
    // Section symbols are nameless in the file; name them after their section, as tools print them.
    if (sym.type === STT_SECTION && sym.name === '' && shndx < sections.length) sym.name = sections[shndx]!.name
    out.push(sym)
  }
  return out
}
