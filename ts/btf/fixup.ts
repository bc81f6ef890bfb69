/**
 * libbpf's BTF fix-up for objects straight from clang: DATASEC sizes come from the ELF section
 * sizes and variable offsets from the ELF symbols (clang leaves both zero), hidden globals become
 * static, and each DATASEC's variables are sorted by offset. `.kconfig` externs are laid out as
 * libbpf lays out its kconfig map; `.ksyms` is only sorted (its rewrite needs the kernel's BTF).
 */

import { type ElfFile, STB_GLOBAL, STB_WEAK, STT_OBJECT } from '../binary/elf.js'
import { FormatError } from '../errors.js'
import type { Btf } from './btf.js'
import type { BtfType } from './types.js'

const STV_INTERNAL = 1
const STV_HIDDEN = 2

export function fixupBtf(btf: Btf, elf: ElfFile): Btf {
  const replacements = new Map<number, BtfType>()
  const globals = new Map<string, (typeof elf.symbols)[number]>()
  for (const s of elf.symbols) {
    if (s.type === STT_OBJECT && (s.bind === STB_GLOBAL || s.bind === STB_WEAK) && !globals.has(s.name)) {
      globals.set(s.name, s)
    }
  }
  for (const t of btf.types) {
    if (t.kind !== 'DATASEC') continue
    const vars = t.vars!.map((v) => ({ ...v }))
    const fixed: BtfType = { ...t, vars }
    if (t.name === '.kconfig') {
      layoutKconfig(btf, fixed, replacements)
    } else if (t.name !== '.ksyms') {
      let fixOffsets = false
      if (t.size === 0) {
        const sec = elf.sectionByName(t.name)
        if (!sec || sec.size === 0) {
          throw new FormatError(`BTF DATASEC '${t.name}' has no non-empty ELF section to take its size from`)
        }
        fixed.size = sec.size
        fixOffsets = true
      }
      for (const v of vars) {
        const vt = btf.typeById(v.type)
        if (vt.kind !== 'VAR')
          throw new FormatError(`BTF DATASEC '${t.name}' lists type #${v.type} (${vt.kind}), not a VAR`)
        if (vt.linkage === 0 || vt.linkage === 2) continue
        const sym = globals.get(vt.name)
        if (!sym) throw new FormatError(`BTF DATASEC '${t.name}': no ELF symbol for variable '${vt.name}'`)
        if (fixOffsets) v.offset = sym.value
        if (sym.visibility === STV_HIDDEN || sym.visibility === STV_INTERNAL) {
          replacements.set(vt.id, { ...vt, linkage: 0 })
        }
      }
    }
    vars.sort((a, b) => a.offset - b.offset)
    replacements.set(t.id, fixed)
  }
  return btf.withTypes(replacements)
}

/**
 * libbpf places kconfig externs by descending alignment, then ascending size, then name, each at
 * the next offset aligned for it; the VARs become global-allocated and the DATASEC gets the total size.
 */
function layoutKconfig(btf: Btf, sec: BtfType, replacements: Map<number, BtfType>): void {
  const items = sec.vars!.map((v) => {
    const vt = btf.typeById(v.type)
    return { v, vt, size: btf.sizeOf(vt.type!), align: btf.alignOf(vt.type!) }
  })
  const order = [...items].sort(
    (a, b) => b.align - a.align || a.size - b.size || (a.vt.name < b.vt.name ? -1 : a.vt.name > b.vt.name ? 1 : 0),
  )
  let off = 0
  for (const it of order) {
    it.v.offset = Math.ceil(off / it.align) * it.align
    off = it.v.offset + it.size
    replacements.set(it.vt.id, { ...it.vt, linkage: 1 })
  }
  sec.size = off
}
