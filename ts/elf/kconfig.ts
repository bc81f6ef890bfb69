/**
 * `.kconfig` externs (`extern int CONFIG_HZ __kconfig;`): libbpf backs them with a read-only
 * one-entry array map whose layout fixup.ts reproduces. There is no kernel config to read here,
 * so the values come from the caller; a weak extern without a value is 0, a strong one an error.
 */

import { type ElfSymbol, SHN_UNDEF, STB_WEAK } from '../binary/elf.js'
import type { Btf } from '../btf/btf.js'
import { codec } from '../btf/codec.js'
import { EbpfError, FormatError } from '../errors.js'
import { BPF_MAP_TYPE } from './maps.js'
import type { MapSpec } from './specs.js'

const BPF_F_RDONLY_PROG = 1 << 7
const BPF_F_MMAPABLE = 1 << 10

/** The '.kconfig' map and each extern's offset in it, or undefined when the object has none. */
export function kconfigMap(
  types: Btf,
  symbols: ElfSymbol[],
  given: Record<string, unknown>,
): { map: MapSpec; offsets: Map<string, number> } | undefined {
  const datasec = types.typeByName('.kconfig', 'DATASEC')
  if (!datasec) return undefined
  const contents = new Uint8Array(datasec.size!)
  const view = new DataView(contents.buffer)
  const offsets = new Map<string, number>()
  for (const v of datasec.vars!) {
    const vt = types.typeById(v.type)
    if (vt.kind !== 'VAR') throw new FormatError(`.kconfig DATASEC lists type #${v.type}, not a VAR`)
    offsets.set(vt.name, v.offset)
    const sym = symbols.find((s) => s.name === vt.name && s.shndx === SHN_UNDEF)
    if (!(vt.name in given)) {
      if (sym?.bind === STB_WEAK) continue
      throw new EbpfError(
        'ENOTSUPP',
        `.kconfig extern '${vt.name}' has no value: give it in the kconfig load option (there is no kernel config to read)`,
      )
    }
    try {
      codec(types, vt.type!).write(view, v.offset, given[vt.name])
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
  return { map, offsets }
}
