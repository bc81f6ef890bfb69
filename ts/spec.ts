/**
 * Collection specs: what an object file holds (programs, maps, global variables, BTF types),
 * parsed but not loaded. `loadCollectionSpec` reads a clang/libbpf object; a `Collection` (the
 * next stage) creates the maps, applies `relocations` and verifies the programs.
 */
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { describeValue, optionsObject } from './arguments.js'
import type { Btf } from './btf/btf.js'
import { type BtfValue, type Codec, codec } from './btf/codec.js'
import { generateDeclarations } from './btf/declarations.js'
import type { BtfType } from './btf/types.js'
import { loadObject, type VariableInit } from './elf/loader.js'
import { EbpfError } from './errors.js'

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
  /** 0 none, 1 by name (LIBBPF_PIN_BY_NAME). */
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
}

/** A global variable in a data section; `set` changes the section's initial contents before load. */
export class VariableSpec {
  readonly name: string
  /** Data section ('.data', '.rodata', '.bss', ...); also the name of its MapSpec. */
  readonly section: string
  readonly offset: number
  readonly size: number
  /** The variable's BTF type (the VAR's target). */
  readonly type: BtfType
  /** 'static' or 'global'. */
  readonly linkage: string
  readonly readonly: boolean
  private readonly map: MapSpec
  private readonly types: Btf
  private codecCache: Codec | undefined

  constructor(init: VariableInit & { map: MapSpec; types: Btf }) {
    this.name = init.name
    this.section = init.section
    this.offset = init.offset
    this.size = init.size
    this.type = init.type
    this.linkage = init.linkage
    this.map = init.map
    this.types = init.types
    this.readonly = init.map.readonly ?? false
  }

  get codec(): Codec {
    this.codecCache ??= codec(this.types, this.type.id)
    return this.codecCache
  }

  /** The variable's current initial bytes (a copy). */
  get bytes(): Uint8Array {
    return this.map.contents!.slice(this.offset, this.offset + this.size)
  }

  get(): BtfValue {
    const c = this.map.contents!
    return this.codec.read(new DataView(c.buffer, c.byteOffset, c.byteLength), this.offset)
  }

  /** Encodes `value` with the variable's BTF type into the section contents. Missing struct members become 0. */
  set(value: unknown): void {
    const encoded = this.codec.encode(value)
    if (encoded.length !== this.size) {
      throw new EbpfError('EINVAL', `variable '${this.name}': encoded ${encoded.length} bytes, expected ${this.size}`)
    }
    this.map.contents!.set(encoded, this.offset)
  }
}

export interface CollectionSpec {
  /** Programs by function name, in section order. */
  programs: Map<string, ProgramSpec>
  /** Maps by name: `.maps` definitions, legacy `maps` entries, then global data sections. */
  maps: Map<string, MapSpec>
  /** Global variables by name. */
  variables: Map<string, VariableSpec>
  /** BTF in libbpf's fixed-up form (DATASEC sizes and variable offsets filled in). */
  types: Btf
  /** BTF exactly as in the file. */
  rawTypes: Btf
  license: string
  kernelVersion: number
  /** TypeScript declarations for the object's types, with `Maps` and `Variables` interfaces. */
  declarations(): string
}

export interface LoadOptions {
  /**
   * BTF of the kernel the programs are written for (e.g. `btf.parse(readFileSync('/sys/kernel/btf/vmlinux'))`).
   * With it, CO-RE relocations are applied as libbpf would; without it, an object that has any is refused.
   */
  kernelTypes?: Btf
  /**
   * Values of the object's `.kconfig` externs, e.g. `{ LINUX_KERNEL_VERSION: 0x060c00, CONFIG_HZ: 250 }`
   * (encoded with each extern's BTF type). Weak externs left out are 0; strong ones are an error.
   */
  kconfig?: Record<string, unknown>
}

/** The error for an object file that cannot be read. */
function unreadable(path: string, e: unknown): EbpfError {
  const code = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'ENOENT' : 'EINVAL'
  return new EbpfError(code, `cannot read object '${path}': ${(e as Error).message}`)
}

/** Reads an object file (path or bytes) into a CollectionSpec without loading anything. */
export async function loadCollectionSpec(
  pathOrBytes: string | Uint8Array,
  options: LoadOptions = {},
): Promise<CollectionSpec> {
  if (typeof pathOrBytes !== 'string') return loadCollectionSpecSync(pathOrBytes, options)
  let bytes: Uint8Array
  try {
    bytes = new Uint8Array(await readFile(pathOrBytes))
  } catch (e) {
    throw unreadable(pathOrBytes, e)
  }
  return loadCollectionSpecSync(bytes, options)
}

/** `loadCollectionSpec` without the promise: the file (if a path) is read synchronously. */
export function loadCollectionSpecSync(pathOrBytes: string | Uint8Array, options: LoadOptions = {}): CollectionSpec {
  let bytes: Uint8Array
  if (typeof pathOrBytes === 'string') {
    try {
      bytes = new Uint8Array(readFileSync(pathOrBytes))
    } catch (e) {
      throw unreadable(pathOrBytes, e)
    }
  } else if (pathOrBytes instanceof Uint8Array) {
    bytes = pathOrBytes
  } else {
    throw new EbpfError(
      'EINVAL',
      `loadCollectionSpec takes the path of an object file or its bytes (a Uint8Array), got ${describeValue(pathOrBytes)}`,
    )
  }
  const obj = loadObject(bytes, optionsObject<LoadOptions>(EbpfError, 'load options', options))
  const variables = new Map<string, VariableSpec>()
  for (const v of obj.variables) {
    const map = obj.maps.get(v.section)
    if (!map) continue
    variables.set(v.name, new VariableSpec({ ...v, map, types: obj.types }))
  }
  const spec: CollectionSpec = {
    programs: obj.programs,
    maps: obj.maps,
    variables,
    types: obj.types,
    rawTypes: obj.rawTypes,
    license: obj.license,
    kernelVersion: obj.kernelVersion,
    declarations: () =>
      generateDeclarations(obj.types, {
        maps: [...obj.maps.values()].map((m) => ({ name: m.name, key: m.key?.id, value: m.value?.id })),
        variables: [...variables.values()].map((v) => ({ name: v.name, type: v.type.id })),
      }),
  }
  return spec
}
