/**
 * `Collection`: the loaded form of a `CollectionSpec`. Creates the maps (global data sections
 * initialised from the object, `.rodata` frozen and read-only to programs), relocates every
 * program's map references, loads the programs and fills the statically initialised slots of
 * map-in-map and prog_array maps, as libbpf does for the kernel.
 */

import { checkBytes, checkDenseArray, checkObject, checkString, describeValue, optionsObject } from './arguments.js'
import { type Codec, codec } from './btf/codec.js'
import { globalFunctionsOf } from './btf/global-functions.js'
import type { BtfType } from './btf/types.js'
import { Coverage } from './coverage.js'
import { EbpfError, LoadError, MapError, VerifierError } from './errors.js'
import { asBpfMap, BpfMap, MAP_TYPES, type MapCodecs, type MapDefinition, possibleCpus } from './map.js'
import type { AttachTypeName } from './native.js'
import { defaultMode, type EngineName, Program, type ProgramType, type SafetyMode } from './program.js'
import type { CollectionSpec, MapSpec, ProgramSpec } from './spec.js'

export interface CollectionOptions {
  engine?: EngineName
  /** As `ProgramOptions.mode`, for every program of the collection. */
  mode?: SafetyMode
  /** As `ProgramOptions.logLevel`, for every program of the collection. */
  logLevel?: 0 | 1 | 2
  /** As `ProgramOptions.unprivileged`, for every program of the collection. */
  unprivileged?: boolean
  budget?: number
  /** As `ProgramOptions.meter`, for every program of the collection. */
  meter?: boolean
  /** As `ProgramOptions.pointerLeaks`, for every program of the collection. */
  pointerLeaks?: 'allow' | 'refuse'
  /** As `ProgramOptions.blindConstants`, for every program of the collection. */
  blindConstants?: boolean
  /**
   * Load only these programs (by name), as libbpf loads only the programs whose autoload is on:
   * the others, including those the spec marks `unsupported` or whose type is `unspec`, are not
   * loaded and not in `collection.programs`. Only the maps these programs use are created (with
   * the inner maps their slots name); prog_array slots naming programs not loaded stay empty.
   * Default: every program and every map.
   */
  programs?: string[]
  /**
   * With `programs`, also create these maps (by name) though no loaded program uses them, so that a
   * tool can fill or read them (`ebpf map dump`). Default: none beyond the programs' maps.
   */
  maps?: string[]
  /** Use these existing maps instead of creating the object's maps of the same name. */
  mapReplacements?: Record<string, BpfMap>
  /** Where maps with `pinning = LIBBPF_PIN_BY_NAME` are pinned and looked up (default `/sys/fs/bpf`). */
  pinPath?: string
  /**
   * Bytes the maps this collection creates may take together once full (`BpfMap.memoryBound` of
   * each; default 1 GiB). A map that would go over it fails with `E2BIG` naming it, before any
   * memory is taken for it.
   */
  memoryLimit?: number
  /** As `ProgramOptions.coverage`, for every program of the collection (`collection.coverage`). */
  coverage?: boolean
}

/** Bytes the maps of a collection may take together (`limit`) and those created so far take. */
interface MemoryBudget {
  limit: number
  used: number
}

/** The default `CollectionOptions.memoryLimit`: 1 GiB. */
export const DEFAULT_COLLECTION_MEMORY = 2 ** 30

/** `BPF_F_RDONLY_PROG`: programs may read but not write the map. */
const BPF_F_RDONLY_PROG = 1 << 7

/** lddw pseudo sources the engine resolves against a program's map list. */
const PSEUDO_MAP_IDX = 5
const PSEUDO_MAP_IDX_VALUE = 6

/**
 * The engine's program type for a libbpf program type, by the context the program gets:
 * `__sk_buff` programs (socket filters; tc's classifiers and actions with tc's rules; cgroup_skb
 * programs with theirs), `xdp_md`
 * programs and tracing programs whose context is caller-supplied bytes (tracepoints and raw
 * tracepoints with the kernel's rules for their contexts, the others verified as kprobes).
 */
const PROGRAM_TYPES: Record<string, ProgramType> = {
  socket_filter: 'socket_filter',
  sched_cls: 'tc',
  sched_act: 'tc',
  cgroup_skb: 'cgroup_skb',
  xdp: 'xdp',
  kprobe: 'tracing',
  tracepoint: 'tracepoint',
  raw_tracepoint: 'raw_tracepoint',
  raw_tracepoint_writable: 'tracing',
  perf_event: 'tracing',
  tracing: 'tracing',
}

/** The expected attach types a section gives that change what the program may do. */
const ATTACH_TYPES: Record<string, AttachTypeName> = {
  xdp_devmap: 'xdp_devmap',
  cgroup_inet_egress: 'cgroup_inet_egress',
}

/** Runs `load`; a rejection by the verifier gets the name of the program it was loading. */
function named(name: string, load: () => Program): Program {
  try {
    return load()
  } catch (e) {
    if (e instanceof VerifierError) e.program = name
    throw e
  }
}

/** The engine's program type for a program spec, or a LoadError naming the unsupported type. */
export function programTypeOf(spec: ProgramSpec): ProgramType {
  if (spec.type === 'unspec') {
    throw new LoadError(
      'ENOTSUPP',
      `program '${spec.name}': section '${spec.section}' does not say its program type; set it (spec.programs.get('${spec.name}').type = 'xdp', the programTypes load option, or ebpf run --type)`,
    )
  }
  const t = PROGRAM_TYPES[spec.type]
  if (t === undefined) {
    throw new LoadError(
      'ENOTSUPP',
      `program '${spec.name}' (section '${spec.section}') has type '${spec.type}', which cannot run here; supported: ${Object.keys(PROGRAM_TYPES).join(', ')}`,
    )
  }
  return t
}

/** An array of names (`programs`, `maps`), checked to hold strings only. */
function checkNames(what: string, names: unknown): string[] {
  const list = checkDenseArray<unknown>(LoadError, what, names)
  return list.map((n, i) => checkString(LoadError, `${what}[${i}]`, n))
}

/** The programs `names` chooses (all when undefined), each checked to exist. */
function chosenPrograms(spec: CollectionSpec, names: string[] | undefined): ProgramSpec[] {
  if (names === undefined) return [...spec.programs.values()]
  return checkNames('programs', names).map((n, i) => {
    const p = spec.programs.get(n)
    if (!p) {
      throw new LoadError(
        'EINVAL',
        `programs[${i}]: no program '${n}'; the object has: ${[...spec.programs.keys()].join(', ')}`,
      )
    }
    return p
  })
}

/** The map specs `programs` relocate against, with the maps their map-in-map slots name, in spec order. */
function mapsUsedBy(spec: CollectionSpec, programs: ProgramSpec[], extra: readonly string[]): MapSpec[] {
  const used = new Set<string>()
  const add = (name: string): void => {
    if (used.has(name)) return
    used.add(name)
    const m = spec.maps.get(name)
    if (m?.innerMap) for (const slot of m.slots ?? []) add(slot.target)
  }
  for (const p of programs) for (const r of p.relocations) add(r.map)
  extra.forEach((name, i) => {
    if (!spec.maps.has(name)) {
      throw new LoadError('EINVAL', `maps[${i}]: no map '${name}'; the object has: ${[...spec.maps.keys()].join(', ')}`)
    }
    add(name)
  })
  return [...spec.maps.values()].filter((m) => used.has(m.name))
}

function codecOf(spec: CollectionSpec, type: BtfType | undefined): Codec | undefined {
  // Global data maps carry their DATASEC: read them through `variables` instead.
  if (type === undefined || type.kind === 'DATASEC') return undefined
  return codec(spec.types, type.id)
}

/** Hash and array maps take a `struct bpf_spin_lock` in their value (others: EOPNOTSUPP in the kernel). */
const LOCKABLE_MAP_TYPES = new Set<number>([1, 2])

/**
 * The byte offset of the `struct bpf_spin_lock` member of a map's BTF value, if it has one (the
 * kernel's `btf_record` spin_lock_off, top-level members): user-space copies leave it alone and the
 * verifier checks `bpf_spin_lock` calls against it.
 */
function spinLockOffsetOf(spec: CollectionSpec, m: MapSpec): number | undefined {
  if (!LOCKABLE_MAP_TYPES.has(m.type) || m.value === undefined) return undefined
  const value = spec.types.resolve(m.value.id)
  if (value.kind !== 'STRUCT') return undefined
  for (const member of value.members ?? []) {
    const t = spec.types.resolve(member.type)
    if (t.kind === 'STRUCT' && t.name === 'bpf_spin_lock' && member.bitOffset % 8 === 0) return member.bitOffset / 8
  }
  return undefined
}

/** The definition a map spec creates (read-only global data is `BPF_F_RDONLY_PROG` to programs). */
function definitionOf(spec: CollectionSpec, m: MapSpec): MapDefinition {
  const inner = m.innerMap
  const spinLockOffset = spinLockOffsetOf(spec, m)
  return {
    ...(spinLockOffset === undefined ? {} : { spinLockOffset }),
    type: m.type,
    keySize: m.keySize,
    valueSize: m.valueSize,
    // libbpf: a perf event array without max_entries gets one slot per possible CPU.
    maxEntries: m.type === MAP_TYPES.perf_event_array && m.maxEntries === 0 ? possibleCpus() : m.maxEntries,
    flags: m.flags | (m.readonly ? BPF_F_RDONLY_PROG : 0),
    name: m.name,
    mapExtra: m.mapExtra,
    innerMap: inner && {
      type: inner.type,
      keySize: inner.keySize,
      valueSize: inner.valueSize,
      maxEntries: inner.maxEntries,
      flags: inner.flags,
    },
  }
}

/** The program's instructions with every relocation resolved to an index into `maps`. */
function relocate(prog: ProgramSpec, maps: Map<string, BpfMap>): { instructions: Uint8Array; maps: BpfMap[] } {
  const instructions = prog.instructions.slice()
  const view = new DataView(instructions.buffer)
  const used: BpfMap[] = []
  const index = new Map<string, number>()
  for (const r of prog.relocations) {
    const map = maps.get(r.map)
    if (!map) {
      throw new LoadError(
        'EINVAL',
        `program '${prog.name}': instruction ${r.insn} refers to unknown map '${r.map}'`,
        r.insn,
      )
    }
    let i = index.get(r.map)
    if (i === undefined) {
      i = used.push(map) - 1
      index.set(r.map, i)
    }
    const at = r.insn * 8
    if (at + 16 > instructions.length || instructions[at] !== 0x18) {
      throw new LoadError(
        'EINVAL',
        `program '${prog.name}': relocation at instruction ${r.insn} is not on an lddw`,
        r.insn,
      )
    }
    const src = r.kind === 'map' ? PSEUDO_MAP_IDX : PSEUDO_MAP_IDX_VALUE
    instructions[at + 1] = (instructions[at + 1]! & 0x0f) | (src << 4)
    view.setInt32(at + 4, i, true)
    view.setInt32(at + 12, r.kind === 'map' ? 0 : r.offset, true)
  }
  return { instructions, maps: used }
}

/**
 * The parts of a spec the constructor relies on, checked so that a spec built or edited by hand
 * fails with an error naming the field rather than a TypeError from deep inside the load.
 */
function checkSpec(spec: CollectionSpec): void {
  const what = 'Collection takes a CollectionSpec from loadCollectionSpec'
  if (spec === null || typeof spec !== 'object') throw new EbpfError('EINVAL', `${what}, got ${describeValue(spec)}`)
  for (const k of ['programs', 'maps', 'variables'] as const) {
    if (!(spec[k] instanceof Map)) throw new EbpfError('EINVAL', `${what}: spec.${k} must be a Map`)
  }
  for (const [name, p] of spec.programs) {
    checkObject(LoadError, `program ${describeValue(name)}`, p)
    checkString(LoadError, `program ${describeValue(name)}: name`, p.name)
    checkBytes(LoadError, `program '${p.name}': instructions`, p.instructions)
    checkDenseArray(LoadError, `program '${p.name}': relocations`, p.relocations)
    checkDenseArray(LoadError, `program '${p.name}': lineInfo`, p.lineInfo)
    if (typeof p.type !== 'string') throw new LoadError('EINVAL', `program '${p.name}': type must be a string`)
  }
  for (const [name, m] of spec.maps) {
    checkObject(LoadError, `map ${describeValue(name)}`, m)
    checkString(LoadError, `map ${describeValue(name)}: name`, m.name)
    if (m.contents !== undefined) checkBytes(LoadError, `map '${m.name}': contents`, m.contents)
    if (m.slots !== undefined) checkDenseArray(LoadError, `map '${m.name}': slots`, m.slots)
  }
}

/** Key and value types of maps by name: the `Maps` interface that `spec.declarations()` generates. */
export type MapTypes<M = Record<string, unknown>> = Record<keyof M, { key: unknown; value: unknown }>

/** The map names a `Maps` interface declares; none for the default, which declares no names. */
type DeclaredMapName<M> = string extends keyof M ? never : keyof M & string

/**
 * `collection.maps`: a Map of BpfMaps whose `get` is typed by the object's `Maps` declarations. A
 * declared name gives its typed map (the collection creates every map of its spec, and the
 * declarations come from that spec); any other name may be absent. With `programs`, only the maps
 * those programs use are created: a declared map no chosen program uses is then absent (the type
 * cannot know which programs will be chosen).
 */
export type CollectionMaps<M extends MapTypes<M>> = {
  get<K extends DeclaredMapName<M>>(name: K): BpfMap<M[K]['key'], M[K]['value']>
  get(name: string): BpfMap | undefined
} & Map<string, BpfMap>

/**
 * A loaded object. Give it the `Maps` interface from `spec.declarations()` (or `ebpf gen-types`) to
 * have typed keys and values: `new Collection<Maps>(spec).maps.get('counts')` is a
 * `BpfMap<Maps['counts']['key'], Maps['counts']['value']>`.
 */
export class Collection<M extends MapTypes<M> = Record<string, { key: unknown; value: unknown }>> {
  readonly spec: CollectionSpec
  readonly programs = new Map<string, Program>()
  // The declared names' maps are all created by the constructor, which is what the type promises.
  readonly maps: CollectionMaps<M> = new Map<string, BpfMap>() as CollectionMaps<M>

  constructor(spec: CollectionSpec, options: CollectionOptions = {}) {
    checkSpec(spec)
    const opts = optionsObject<CollectionOptions>(LoadError, 'Collection options', options)
    const replacements =
      opts.mapReplacements === undefined
        ? {}
        : checkObject<Record<string, BpfMap>>(LoadError, 'mapReplacements', opts.mapReplacements)
    for (const [name, m] of Object.entries(replacements)) asBpfMap(m, `mapReplacements['${name}']`)
    const pinPath = opts.pinPath === undefined ? '/sys/fs/bpf' : checkString(LoadError, 'pinPath', opts.pinPath)
    this.spec = spec
    const limit = opts.memoryLimit ?? DEFAULT_COLLECTION_MEMORY
    if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 0) {
      throw new EbpfError('EINVAL', `memoryLimit must be a non-negative integer, got ${String(limit)}`)
    }
    const budget = { limit, used: 0 }
    const chosen = chosenPrograms(spec, opts.programs)
    const extraMaps = opts.maps === undefined ? [] : checkNames('maps', opts.maps)
    const mapSpecs = opts.programs === undefined ? [...spec.maps.values()] : mapsUsedBy(spec, chosen, extraMaps)
    for (const p of chosen) {
      if (p.unsupported !== undefined) {
        const others = [...spec.programs.values()].filter((q) => q.unsupported === undefined).map((q) => q.name)
        throw new LoadError(
          'ENOTSUPP',
          `program '${p.name}' cannot be loaded here: ${p.unsupported}` +
            (opts.programs === undefined
              ? `; load the others with { programs: [${others.map((n) => `'${n}'`).join(', ')}] }`
              : ''),
        )
      }
    }
    for (const m of mapSpecs) {
      if (m.unsupported !== undefined) {
        throw new LoadError('ENOTSUPP', `map '${m.name}' cannot be created here: ${m.unsupported}`)
      }
    }
    for (const m of mapSpecs) {
      this.maps.set(m.name, this.#mapFor(m, replacements, pinPath, budget))
    }
    for (const m of mapSpecs) this.#fillInnerMaps(m)
    for (const p of chosen) {
      const { instructions, maps } = relocate(p, this.maps)
      const type = programTypeOf(p)
      const mode = opts.mode ?? defaultMode(type)
      this.programs.set(
        p.name,
        named(
          p.name,
          () =>
            new Program({
              type,
              instructions,
              maps,
              engine: opts.engine,
              mode,
              logLevel: opts.logLevel,
              unprivileged: opts.unprivileged,
              license: spec.license,
              // What the section says, where it changes what the program may do.
              expectedAttachType: ATTACH_TYPES[p.attachType],
              budget: opts.budget,
              meter: opts.meter,
              pointerLeaks: opts.pointerLeaks,
              blindConstants: opts.blindConstants,
              lineInfo: p.lineInfo,
              coverage: opts.coverage,
              funcInfo: p.funcInfo,
              funcEntries: [...p.subprograms.map((s) => s.insn), ...p.funcInfo.map((f) => f.insn)],
              // Only the verifier reads them.
              globalFunctions: mode === 'verified' ? globalFunctionsOf(spec.types, p.funcInfo, p.type) : undefined,
            }),
        ),
      )
    }
    for (const m of mapSpecs) this.#fillProgArray(m, opts.programs !== undefined)
  }

  /**
   * The coverage of every program of the collection loaded with `coverage: true` (programs by
   * name; lines merged per source file, `toLcov()` for one report). Undefined without it.
   */
  get coverage(): Coverage | undefined {
    const programs = [...this.programs].flatMap(([name, p]) => p.coverageOf(name) ?? [])
    return programs.length > 0 ? new Coverage(programs) : undefined
  }

  /** Sets the coverage counters of every program back to zero. */
  resetCoverage(): void {
    for (const p of this.programs.values()) p.resetCoverage()
  }

  /**
   * The map that stands for `m`: its replacement, the map pinned under its name, or a new one. A
   * replacement or a pinned map must have the shape the object wants (as libbpf checks before
   * reusing a pinned map): the programs are relocated against that shape.
   */
  #mapFor(m: MapSpec, replacements: Record<string, BpfMap>, pinPath: string, budget: MemoryBudget): BpfMap {
    const replacement = Object.hasOwn(replacements, m.name) ? replacements[m.name] : undefined
    if (replacement !== undefined) {
      const map = asBpfMap(replacement, `mapReplacements['${m.name}']`)
      map.checkReuse(definitionOf(this.spec, m), 'the replacement map')
      return map
    }
    const pin = m.pinName === undefined || m.pinReplace ? undefined : `${pinPath}/${m.pinName}`
    if (pin) {
      let pinned: BpfMap | undefined
      try {
        pinned = BpfMap.fromPinned(pin, this.#codecs(m))
      } catch (e) {
        if ((e as EbpfError).code !== 'ENOENT') throw e
      }
      if (pinned) {
        pinned.checkReuse(definitionOf(this.spec, m), `the map pinned at ${pin}`)
        return pinned
      }
    }
    return this.#createMap(m, pin, budget)
  }

  /** Creates map `m` (pinned under `pin` if given); it counts against `budget`. */
  #createMap(m: MapSpec, pin: string | undefined, budget: MemoryBudget): BpfMap {
    const def = definitionOf(this.spec, m)
    const bound = BpfMap.memoryBound(def)
    if (budget.used + bound > budget.limit) {
      throw new MapError(
        'E2BIG',
        `map '${m.name}' (${m.maxEntries} entries of ${m.valueSize} bytes) may take ${bound} bytes once full; ` +
          `with the ${budget.used} bytes of the maps before it that exceeds the collection's memory limit of ` +
          `${budget.limit} bytes (CollectionOptions.memoryLimit)`,
      )
    }
    budget.used += bound
    const map = new BpfMap(def, this.#codecs(m))
    if (m.contents) {
      map.update(new Uint8Array(4), m.contents)
      if (m.readonly) map.freeze()
    }
    if (pin) map.pin(pin)
    return map
  }

  #codecs(m: MapSpec): MapCodecs {
    return { key: codecOf(this.spec, m.key), value: codecOf(this.spec, m.value) }
  }

  /** `__array(values, ...)` initialisers of map-in-map: the slots hold the inner maps' ids. */
  #fillInnerMaps(m: MapSpec): void {
    if (m.type !== MAP_TYPES.array_of_maps && m.type !== MAP_TYPES.hash_of_maps) return
    const outer = this.maps.get(m.name)!
    for (const slot of m.slots ?? []) {
      const inner = this.maps.get(slot.target)
      if (!inner) throw new LoadError('EINVAL', `map '${m.name}' slot ${slot.index} names unknown map '${slot.target}'`)
      const key = new Uint8Array(m.keySize)
      new DataView(key.buffer).setUint32(0, slot.index, true)
      const id = new Uint8Array(4)
      new DataView(id.buffer).setUint32(0, inner.id, true)
      outer.update(key, id)
    }
  }

  /** `__array(values, ...)` initialisers of prog_array maps: the slots hold programs (loaded ones, when `programs` chose). */
  #fillProgArray(m: MapSpec, chosen: boolean): void {
    if (m.type !== MAP_TYPES.prog_array) return
    const array = this.maps.get(m.name)!
    for (const slot of m.slots ?? []) {
      const prog = this.programs.get(slot.target)
      if (!prog && chosen && this.spec.programs.has(slot.target)) continue
      if (!prog)
        throw new LoadError('EINVAL', `map '${m.name}' slot ${slot.index} names unknown program '${slot.target}'`)
      array.setProgram(slot.index, prog)
    }
  }

  /** The global variable `name` as the programs see it now (read from its data map). */
  variable(name: string): unknown {
    checkString(EbpfError, 'variable name', name)
    const v = this.spec.variables.get(name)
    if (!v) throw new EbpfError('ENOENT', `no global variable ${describeValue(name)}`)
    const bytes = this.maps.get(v.section)!.lookup(new Uint8Array(4)) as Uint8Array
    return v.codec.decode(bytes.subarray(v.offset, v.offset + v.size))
  }
}
