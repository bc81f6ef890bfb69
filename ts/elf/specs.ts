/**
 * The shapes the object loader produces and a `Collection` consumes: program, map and relocation
 * specs. They live beside the loader (rather than in `spec.ts`, which re-exports them) so that the
 * loader's modules need nothing from the layer above them.
 */
import type { BtfType } from '../btf/types.js'

/** An lddw instruction that must receive a map reference (`map`) or a map value address (`map_value`). */
export interface Relocation {
  /** Index of the lddw's first slot in the program's `instructions`. */
  insn: number
  kind: 'map' | 'map_value'
  /** Name of the MapSpec: a map such as 'counts', or a global data section such as '.rodata'. */
  map: string
  /** For `map_value`: byte offset inside the map's value. 0 for `map`. */
  offset: number
}

export interface LineInfo {
  /** Instruction index in the program's `instructions`. */
  insn: number
  file: string
  line: number
  column: number
  /** The source line. */
  text: string
}

export interface FuncInfo {
  /** First instruction of the function in the program's `instructions`. */
  insn: number
  /** BTF FUNC type id. */
  typeId: number
  name: string
}

export interface ProgramSpec {
  /** Function name. */
  name: string
  /** ELF section, e.g. 'xdp' or 'kprobe/do_unlinkat'. */
  section: string
  /** libbpf-style program type: 'xdp', 'socket_filter', 'kprobe', 'tracepoint', 'sched_cls', ... */
  type: string
  /** Kernel BPF_PROG_TYPE_* number. */
  typeId: number
  /** libbpf-style expected attach type ('' when none). */
  attachType: string
  /** What the section name says to attach to (e.g. 'do_unlinkat', 'syscalls/sys_enter_openat'), '' if nothing. */
  attachTo: string
  sleepable: boolean
  /**
   * The function's instructions followed by every `.text` sub-program it calls (directly or not),
   * with call offsets and `BPF_PSEUDO_FUNC` lddw offsets fixed up, and CO-RE relocations applied
   * when `kernelTypes` was given. lddw instructions listed in `relocations` (maps, global data,
   * kconfig externs) have src_reg 0 and both imm fields 0: the loader of the collection fills them.
   */
  instructions: Uint8Array
  relocations: Relocation[]
  /** Sub-programs appended after the main function, with their first instruction index. */
  subprograms: Array<{ name: string; insn: number }>
  license: string
  /** Value of the object's `version` section (0 when absent). */
  kernelVersion: number
  lineInfo: LineInfo[]
  funcInfo: FuncInfo[]
  /**
   * Why this program cannot be loaded here (an extern, a kfunc, CO-RE without kernel BTF, a map that
   * is unsupported), when it cannot. The rest of the object still loads: name the programs you want
   * with `new Collection(spec, { programs: [...] })`. Its `instructions` are then the function's
   * bytes as in the file, unlinked.
   */
  unsupported?: string
}

/** Initial content of a map-in-map or prog_array slot (`.values = { [i] = &x }`). */
export interface MapSlot {
  index: number
  /** Name of the inner MapSpec, or of the ProgramSpec for a prog_array. */
  target: string
}

export interface MapSpec {
  /** Map name; global data maps are named after their section ('.data', '.rodata', '.bss', '.data.foo'). */
  name: string
  /** Kernel BPF_MAP_TYPE_* number. */
  type: number
  /** Lower-case name of the type: 'hash', 'array', 'lpm_trie', 'array_of_maps', ... */
  typeName: string
  keySize: number
  valueSize: number
  maxEntries: number
  flags: number
  /**
   * The pinning field as the object wrote it: in `.maps` 0 none, 1 LIBBPF_PIN_BY_NAME, 16 cilium's
   * CILIUM_PIN_REPLACE; in a legacy `maps` section iproute2's 0 PIN_NONE, 1 PIN_OBJECT_NS,
   * 2 PIN_GLOBAL_NS. `pinName` says where that puts the map.
   */
  pinning: number
  numaNode: number
  mapExtra: bigint
  /** BTF key and value types when the object records them (the DATASEC for global data). */
  key?: BtfType
  value?: BtfType
  /** Template of the inner maps of an array_of_maps / hash_of_maps. */
  innerMap?: MapSpec
  /** Statically initialised slots (`__array(values, ...)` with an initializer). */
  slots?: MapSlot[]
  /** Initial value of a global data map: `valueSize` bytes (zeros for .bss). */
  contents?: Uint8Array
  /** True for .rodata-style maps: read-only to programs once loaded. */
  readonly?: boolean
  /** Section the map was defined in ('.maps', 'maps', or the data section). */
  section: string
  /**
   * Where the map is pinned, relative to `CollectionOptions.pinPath`: its name for
   * LIBBPF_PIN_BY_NAME (pinning 1 in `.maps`); iproute2's `tc/globals/NAME` (PIN_GLOBAL_NS, 2) and
   * `tc/OBJECT/NAME` (PIN_OBJECT_NS, 1 in a legacy `maps` section; OBJECT is the SHA-1 of the
   * object file, as iproute2 names it). Absent when the map is not pinned.
   */
  pinName?: string
  /**
   * Cilium's CILIUM_PIN_REPLACE (pinning 16 in `.maps`): never reuse the pinned map; a new one is
   * created each load. (Cilium's agent re-pins it after attaching, which has no counterpart here.)
   */
  pinReplace?: boolean
  /** iproute2's `id` (legacy `maps` records): what an outer map's `inner_id` refers to. */
  legacyId?: number
  /** Why the map cannot be created here; the programs that use it are unsupported too. */
  unsupported?: string
}
