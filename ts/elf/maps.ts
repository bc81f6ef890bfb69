/**
 * Map definitions in libbpf's conventions: BTF-defined maps in `.maps` (the `__uint`, `__type`,
 * `__array` and `__ulong` macros of bpf_helpers.h encode each field in the *type* of a struct
 * member), the legacy `maps` section of `struct bpf_map_def` records, and the map types' numbering.
 */

import { ByteReader } from '../binary/bytes.js'
import type { ElfSection, ElfSymbol } from '../binary/elf.js'
import type { Btf } from '../btf/btf.js'
import type { BtfType } from '../btf/types.js'
import { EbpfError, FormatError } from '../errors.js'
import type { MapSpec } from './specs.js'

/** BPF_MAP_TYPE_* names in kernel numbering (linux/bpf.h). */
export const MAP_TYPE_NAMES = [
  'unspec',
  'hash',
  'array',
  'prog_array',
  'perf_event_array',
  'percpu_hash',
  'percpu_array',
  'stack_trace',
  'cgroup_array',
  'lru_hash',
  'lru_percpu_hash',
  'lpm_trie',
  'array_of_maps',
  'hash_of_maps',
  'devmap',
  'sockmap',
  'cpumap',
  'xskmap',
  'sockhash',
  'cgroup_storage',
  'reuseport_sockarray',
  'percpu_cgroup_storage',
  'queue',
  'stack',
  'sk_storage',
  'devmap_hash',
  'struct_ops',
  'ringbuf',
  'inode_storage',
  'task_storage',
  'bloom_filter',
  'user_ringbuf',
  'cgrp_storage',
  'arena',
] as const

export const BPF_MAP_TYPE = Object.fromEntries(MAP_TYPE_NAMES.map((n, i) => [n, i])) as Record<
  (typeof MAP_TYPE_NAMES)[number],
  number
>

export function mapTypeName(type: number): string {
  return MAP_TYPE_NAMES[type] ?? `unknown(${type})`
}

const LIBBPF_PIN_BY_NAME = 1
/** Cilium's pinning flag (bpf/include/bpf/loader.h): never reuse the pinned map, replace it. */
const CILIUM_PIN_REPLACE = 1 << 4

function isMapInMap(type: number): boolean {
  return type === BPF_MAP_TYPE.array_of_maps || type === BPF_MAP_TYPE.hash_of_maps
}

function emptyMap(name: string, section: string): MapSpec {
  return {
    name,
    type: 0,
    typeName: 'unspec',
    keySize: 0,
    valueSize: 0,
    maxEntries: 0,
    flags: 0,
    pinning: 0,
    numaNode: 0,
    mapExtra: 0n,
    section,
  }
}

/**
 * Parses one BTF map definition: `defId` is the struct type of the `.maps` variable.
 * `valuesOffset` receives the byte offset of the `values` array, for static slot initialisers.
 */
export function parseBtfMapDef(
  btf: Btf,
  name: string,
  defId: number,
  section: string,
  isInner = false,
): { map: MapSpec; valuesOffset: number | undefined } {
  const def = btf.resolve(defId)
  const fail = (msg: string): never => {
    throw new EbpfError('EINVAL', `map '${name}': ${msg}`)
  }
  if (def.kind !== 'STRUCT') fail(`definition must be a struct, found ${def.kind}`)
  const map = emptyMap(name, section)
  let keyType: number | undefined
  let valueType: number | undefined
  let valuesOffset: number | undefined
  const uint = (m: { name: string; type: number }): number => {
    const p = btf.resolve(m.type)
    if (p.kind !== 'PTR') fail(`field '${m.name}' must be declared with __uint() (a pointer to an array)`)
    const a = btf.resolve(p.type!)
    if (a.kind !== 'ARRAY') fail(`field '${m.name}' must be declared with __uint() (a pointer to an array)`)
    return a.nelems!
  }
  const ulong = (m: { name: string; type: number }): bigint => {
    const e = btf.resolve(m.type)
    if ((e.kind === 'ENUM' || e.kind === 'ENUM64') && e.values!.length === 1)
      return BigInt.asUintN(64, e.values![0]!.value)
    return BigInt(uint(m))
  }
  const pointee = (m: { name: string; type: number }): number => {
    const p = btf.resolve(m.type)
    if (p.kind !== 'PTR') fail(`field '${m.name}' must be declared with __type() (a pointer)`)
    return p.type!
  }
  let keySizeGiven: number | undefined
  let valueSizeGiven: number | undefined
  for (const m of def.members!) {
    switch (m.name) {
      case 'type':
        map.type = uint(m)
        map.typeName = mapTypeName(map.type)
        break
      case 'max_entries':
        map.maxEntries = uint(m)
        break
      case 'map_flags':
        map.flags = uint(m)
        break
      case 'numa_node':
        map.numaNode = uint(m)
        break
      case 'pinning':
        map.pinning = uint(m)
        if (map.pinning === LIBBPF_PIN_BY_NAME || map.pinning === CILIUM_PIN_REPLACE) map.pinName = name
        if (map.pinning === CILIUM_PIN_REPLACE) map.pinReplace = true
        else if (map.pinning > LIBBPF_PIN_BY_NAME) {
          map.unsupported = `pinning ${map.pinning} is not supported (0 none, 1 LIBBPF_PIN_BY_NAME, 16 cilium's CILIUM_PIN_REPLACE)`
        }
        break
      case 'map_extra':
        map.mapExtra = ulong(m)
        break
      case 'key_size':
        keySizeGiven = uint(m)
        break
      case 'value_size':
        valueSizeGiven = uint(m)
        break
      case 'key':
        keyType = pointee(m)
        break
      case 'value':
        valueType = pointee(m)
        break
      case 'values': {
        // __array(values, T): an array of pointers to T with no elements.
        const a = btf.resolve(m.type)
        if (a.kind !== 'ARRAY' || a.nelems !== 0) fail("'values' must be declared with __array()")
        const p = btf.resolve(a.elemType!)
        if (p.kind !== 'PTR') fail("'values' must be an array of pointers")
        valuesOffset = m.bitOffset / 8
        const target = btf.resolve(p.type!)
        if (target.kind === 'STRUCT') {
          if (isInner) fail('nested map-in-map definitions are not supported')
          map.innerMap = parseBtfMapDef(btf, `${name}.inner`, p.type!, section, true).map
        } else if (target.kind !== 'FUNC_PROTO') {
          fail("'values' must point to a map definition struct or a function prototype")
        }
        break
      }
      default:
        fail(`unknown field '${m.name}' in the map definition`)
    }
  }
  if (map.type === 0) fail("missing 'type'")
  if (keyType !== undefined) {
    map.key = btf.typeById(keyType)
    const size = btf.sizeOf(keyType)
    if (keySizeGiven !== undefined && keySizeGiven !== size)
      fail(`key_size ${keySizeGiven} disagrees with key type size ${size}`)
    map.keySize = size
  } else if (keySizeGiven !== undefined) map.keySize = keySizeGiven
  if (valueType !== undefined) {
    // libbpf takes a 4-byte `value` beside `values` (cilium writes `__type(value, __u32)` so): the
    // slots hold 32-bit ids, which is what such a value type says.
    if (map.innerMap && btf.sizeOf(valueType) !== 4) {
      fail(`a map-in-map's 'value' must be 4 bytes (an inner map id) beside 'values', not ${btf.sizeOf(valueType)}`)
    }
    map.value = btf.typeById(valueType)
    const size = btf.sizeOf(valueType)
    if (valueSizeGiven !== undefined && valueSizeGiven !== size) {
      fail(`value_size ${valueSizeGiven} disagrees with value type size ${size}`)
    }
    map.valueSize = size
  } else if (valueSizeGiven !== undefined) map.valueSize = valueSizeGiven
  if (map.innerMap || (valuesOffset !== undefined && (isMapInMap(map.type) || map.type === BPF_MAP_TYPE.prog_array))) {
    // Slots of map-in-map and prog_array hold 32-bit ids/fds.
    if (valueSizeGiven !== undefined && valueSizeGiven !== 4) fail(`value_size must be 4 for a ${map.typeName}`)
    map.valueSize = 4
  }
  if (isMapInMap(map.type) && !map.innerMap)
    fail(`a ${map.typeName} needs __array(values, ...) describing its inner map`)
  if (map.innerMap && !isMapInMap(map.type))
    fail(`__array(values, struct ...) needs an array_of_maps or hash_of_maps, not ${map.typeName}`)
  return { map, valuesOffset }
}

/** Reads the BTF-defined maps of the `.maps` section from its DATASEC (fixed-up offsets). */
export function parseBtfMaps(
  btf: Btf,
  datasec: BtfType,
  section: ElfSection,
): Map<number, { map: MapSpec; size: number; valuesOffset?: number }> {
  const out = new Map<number, { map: MapSpec; size: number; valuesOffset?: number }>()
  for (const v of datasec.vars!) {
    const varType = btf.typeById(v.type)
    if (varType.kind !== 'VAR') throw new FormatError(`.maps DATASEC entry #${v.type} is a ${varType.kind}, not a VAR`)
    if (v.offset + v.size > section.size) {
      throw new FormatError(`map '${varType.name}' at offset ${v.offset} (+${v.size}) is outside the .maps section`)
    }
    const { map, valuesOffset } = parseBtfMapDef(btf, varType.name, varType.type!, section.name)
    out.set(v.offset, { map, size: v.size, valuesOffset })
  }
  return out
}

/** struct bpf_map_def: five u32 fields (type, key_size, value_size, max_entries, map_flags). */
const LEGACY_DEF_SIZE = 20
/** iproute2's struct bpf_elf_map before map-in-map: + id, pinning (also cilium's old loader.h). */
const ELF_MAP_PINNED_SIZE = 28
/** iproute2's struct bpf_elf_map: + inner_id, inner_idx. */
const ELF_MAP_SIZE = 36
const BPF_F_NUMA_NODE = 1 << 2
/** iproute2's pinning values (PIN_NONE 0, PIN_OBJECT_NS 1, PIN_GLOBAL_NS 2); higher ones name subdirectories in /etc/iproute2/bpf_pinning. */
const PIN_OBJECT_NS = 1
const PIN_GLOBAL_NS = 2
/** iproute2's inner_idx meaning "not an inner map to insert". */
const NO_INNER_IDX = 0xffffffff

/**
 * Reads the legacy `maps` section, one record per symbol. Three layouts share the section name
 * and the first 20 bytes (struct bpf_map_def); the record size tells them apart, except at 28
 * bytes, where the kernel samples' bpf_map_def (+ inner_map_idx, numa_node) and iproute2's
 * bpf_elf_map (+ id, pinning) collide: a map-in-map, or a map asking for a NUMA node, is read the
 * samples' way, everything else iproute2's. `objectId` names PIN_OBJECT_NS pins (iproute2 uses the
 * SHA-1 of the object file). Map-in-map templates and initial slots are resolved here: the samples'
 * inner_map_idx (a record index), iproute2's inner_id (another map's id) and inner_idx (the slot an
 * inner map with an id is put in, in every outer map whose inner_id is that id).
 */
export function parseLegacyMaps(section: ElfSection, symbols: ElfSymbol[], objectId: string): Map<number, MapSpec> {
  const syms = symbols.filter((s) => s.shndx === section.index && s.name !== '' && s.type !== 3 /* STT_SECTION */)
  const out = new Map<number, MapSpec>()
  if (syms.length === 0) return out
  if (section.size % syms.length !== 0) {
    throw new FormatError(
      `legacy 'maps' section size ${section.size} is not a multiple of its ${syms.length} maps`,
      section.offset,
    )
  }
  const defSize = section.size / syms.length
  if (defSize < LEGACY_DEF_SIZE) {
    throw new FormatError(
      `legacy map definitions of ${defSize} bytes are shorter than struct bpf_map_def (20)`,
      section.offset,
    )
  }
  const r = new ByteReader(section.data, "legacy 'maps' section", section.offset)
  const innerIndex = new Map<MapSpec, number>()
  const innerId = new Map<MapSpec, number>()
  const insertAt = new Map<MapSpec, number>()
  for (const s of syms) {
    if (s.value % defSize !== 0 || s.value + defSize > section.size) {
      r.fail(
        `map '${s.name}' at offset ${s.value} is not on a ${defSize}-byte record boundary`,
        Math.min(s.value, section.size),
      )
    }
    const map = emptyMap(s.name, section.name)
    map.type = r.u32(s.value, 'type')
    map.typeName = mapTypeName(map.type)
    map.keySize = r.u32(s.value + 4, 'key_size')
    map.valueSize = r.u32(s.value + 8, 'value_size')
    map.maxEntries = r.u32(s.value + 12, 'max_entries')
    map.flags = r.u32(s.value + 16, 'map_flags')
    out.set(s.value, map)
    if (defSize < ELF_MAP_PINNED_SIZE) {
      checkZeroTail(r, s.value, LEGACY_DEF_SIZE, defSize, map)
      continue
    }
    const samplesLayout =
      defSize === ELF_MAP_PINNED_SIZE && (isMapInMap(map.type) || (map.flags & BPF_F_NUMA_NODE) !== 0)
    if (samplesLayout) {
      // samples/bpf's struct bpf_map_def: inner_map_idx, numa_node.
      if (isMapInMap(map.type)) {
        innerIndex.set(map, r.u32(s.value + 20, 'inner_map_idx'))
        // bpf_load.c created these with bpf_create_map_in_map_node, which passes no value size:
        // the slots hold 4-byte ids whatever the record says (the samples leave it 0).
        if (map.valueSize === 0) map.valueSize = 4
      }
      map.numaNode = r.u32(s.value + 24, 'numa_node')
      continue
    }
    // iproute2's struct bpf_elf_map.
    const id = r.u32(s.value + 20, 'id')
    if (id !== 0) map.legacyId = id
    map.pinning = r.u32(s.value + 24, 'pinning')
    if (map.pinning === PIN_GLOBAL_NS) map.pinName = `tc/globals/${map.name}`
    else if (map.pinning === PIN_OBJECT_NS) map.pinName = `tc/${objectId}/${map.name}`
    else if (map.pinning !== 0) {
      map.unsupported = `pinning ${map.pinning} is an iproute2 custom pinning (a subdirectory named in /etc/iproute2/bpf_pinning), which is not supported`
    }
    if (defSize >= ELF_MAP_SIZE) {
      const inner = r.u32(s.value + 28, 'inner_id')
      if (inner !== 0) innerId.set(map, inner)
      const idx = r.u32(s.value + 32, 'inner_idx')
      if (id !== 0 && inner === 0 && idx !== NO_INNER_IDX) insertAt.set(map, idx)
    }
    checkZeroTail(r, s.value, Math.min(defSize, ELF_MAP_SIZE), defSize, map)
  }
  const records = [...out.entries()].sort((a, b) => a[0] - b[0]).map(([, m]) => m)
  for (const [outer, idx] of innerIndex) {
    const inner = records[idx]
    if (!inner || inner === outer) {
      outer.unsupported = `inner_map_idx ${idx} does not name another map of the section (${records.length} maps)`
      continue
    }
    outer.innerMap = { ...inner, name: `${outer.name}.inner` }
  }
  for (const [outer, id] of innerId) {
    const inner = records.find((m) => m.legacyId === id && m !== outer)
    if (!inner) {
      outer.unsupported = `inner_id ${id} names no map of the section (no map has that id)`
      continue
    }
    outer.innerMap = { ...inner, name: `${outer.name}.inner`, pinName: undefined }
    for (const [m, idx] of insertAt) {
      if (m.legacyId !== id) continue
      outer.slots ??= []
      outer.slots.push({ index: idx, target: m.name })
    }
  }
  for (const m of records) {
    if (isMapInMap(m.type) && !m.innerMap && m.unsupported === undefined) {
      m.unsupported = `a ${m.typeName} needs an inner map template (inner_map_idx or inner_id), and this one names none`
    }
    if (m.innerMap) {
      delete m.innerMap.legacyId
      delete m.innerMap.slots
    }
  }
  return out
}

/** Bytes past the layout we know must be zero (libbpf's rule); otherwise the map is unsupported. */
function checkZeroTail(r: ByteReader, at: number, from: number, to: number, map: MapSpec): void {
  for (let o = from; o < to; o++) {
    if (r.u8(at + o) !== 0) {
      map.unsupported = `fields past the known ${from}-byte map definition (byte ${o} of ${to}) are set, and their meaning is unknown`
      return
    }
  }
}

/** Global data sections libbpf turns into single-entry array maps. */
export function isDataSection(name: string): boolean {
  return (
    name === '.data' ||
    name === '.rodata' ||
    name === '.bss' ||
    name.startsWith('.data.') ||
    name.startsWith('.rodata.') ||
    name.startsWith('.bss.')
  )
}
