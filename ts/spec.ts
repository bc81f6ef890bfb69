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
import type { MapSpec, ProgramSpec } from './elf/specs.js'
import { EbpfError, unreadableFile } from './errors.js'

export type { FuncInfo, LineInfo, MapSlot, MapSpec, ProgramSpec, Relocation } from './elf/specs.js'

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
   * CO-RE relocations are applied against it as libbpf would (a relocation whose target is not
   * found poisons its instruction, which traps if reached). Default: the running kernel's
   * `/sys/kernel/btf/vmlinux` when it is readable (as libbpf does), else the BTF of the UAPI
   * context structs shipped with ebpf (`__sk_buff`, `xdp_md`, `bpf_sock_ops`, `sk_msg_md`,
   * `bpf_perf_event_data`, x86-64 `pt_regs`, arm64 `user_pt_regs`). `null`: none; the programs
   * with CO-RE relocations are then marked `unsupported` (the others load).
   */
  kernelTypes?: Btf | null
  /**
   * Program types by program name (or section name, for all its programs), for sections whose
   * name does not say one (type `unspec`) or says the wrong one: `{ xdp_prog: 'xdp' }`. Values
   * are libbpf's names ('xdp', 'socket_filter', 'sched_cls', 'kprobe', ...).
   */
  programTypes?: Record<string, string>
  /**
   * Values of the object's `.kconfig` externs, e.g. `{ LINUX_KERNEL_VERSION: 0x060c00, CONFIG_HZ: 250 }`
   * (encoded with each extern's BTF type). Weak externs left out are 0; strong ones are an error.
   */
  kconfig?: Record<string, unknown>
}

/** The error for an object file that cannot be read. */
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
    throw unreadableFile('object', pathOrBytes, e)
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
      throw unreadableFile('object', pathOrBytes, e)
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
