/**
 * `BpfMap`: a map of the engine, seen from JavaScript. The map itself lives in Rust and is shared by
 * programs, this object and other threads. Keys and values are raw bytes, or JavaScript values when
 * the map has BTF types (maps of a `Collection`) or codecs given by the caller.
 */
import {
  checkBoolean,
  checkBytes,
  checkDenseArray,
  checkFunction,
  checkObject,
  checkString,
  checkU32,
  checkU64,
  checkUnsigned64,
  describeValue,
  optionsObject,
} from './arguments.js'
import type { Codec } from './btf/codec.js'
import { EbpfError, fromNativeMapError, MapError } from './errors.js'
import { native } from './native.js'
import type { Program } from './program.js'

type NativeMap = InstanceType<typeof native.NativeMap>
type NativeMapDef = Parameters<typeof native.NativeMap.create>[0]

/** Map types in the kernel's numbering (`enum bpf_map_type`). */
export const MAP_TYPES = {
  hash: 1,
  array: 2,
  prog_array: 3,
  perf_event_array: 4,
  percpu_hash: 5,
  percpu_array: 6,
  stack_trace: 7,
  lru_hash: 9,
  lru_percpu_hash: 10,
  lpm_trie: 11,
  array_of_maps: 12,
  hash_of_maps: 13,
  devmap: 14,
  cpumap: 16,
  xskmap: 17,
  queue: 22,
  stack: 23,
  devmap_hash: 25,
  ringbuf: 27,
  bloom_filter: 30,
} as const

export type MapTypeName = keyof typeof MAP_TYPES

/** Update flags, as `BPF_ANY`, `BPF_NOEXIST`, `BPF_EXIST`. */
export type UpdateFlag = 'any' | 'noexist' | 'exist'
const UPDATE_FLAGS: Record<UpdateFlag, number> = { any: 0, noexist: 1, exist: 2 }

export interface MapDefinition {
  type: MapTypeName | number
  keySize: number
  valueSize: number
  maxEntries: number
  /** `BPF_F_*` creation flags. */
  flags?: number
  name?: string
  /** For bloom filters: the number of hash functions (low 4 bits), as `map_extra` (a bigint or a safe integer). */
  mapExtra?: bigint | number
  /** Template of the inner maps of an `array_of_maps` / `hash_of_maps`. */
  innerMap?: Omit<MapDefinition, 'innerMap'>
  /**
   * Hash and array maps: the byte offset of a `struct bpf_spin_lock` in the value (a `Collection`
   * takes it from the value's BTF). Copies from JavaScript leave that word alone, the `lock` update
   * flag takes it, and mode 'verified' checks `bpf_spin_lock` calls against it.
   */
  spinLockOffset?: number
}

/**
 * `arrayView()`'s result: an ArrayBuffer over an array map's values that counts as a writer of the
 * map until it is released (`release()`, `using`, or garbage collection).
 */
export type MapArrayView = ArrayBuffer & {
  /** Detaches the buffer (its length becomes 0) so that the map can be frozen; twice is harmless. */
  release(): void
  [Symbol.dispose](): void
}

/** How keys and values are converted; without a codec they are raw `Uint8Array`s. */
export interface MapCodecs {
  key?: Codec
  value?: Codec
}

function typeNumber(what: string, t: unknown): number {
  if (typeof t === 'number') return u32(what, t)
  const n = typeof t === 'string' && Object.hasOwn(MAP_TYPES, t) ? MAP_TYPES[t as MapTypeName] : undefined
  if (n === undefined) {
    throw new MapError(
      'EINVAL',
      `${what} must be a map type number or one of ${Object.keys(MAP_TYPES).join(', ')}; got ${describeValue(t)}`,
    )
  }
  return n
}

function u32(what: string, v: unknown): number {
  return checkU32(MapError, what, v)
}

/** An update flag: a name or the kernel's number. */
function updateFlag(flags: unknown): number {
  if (typeof flags === 'number') return u32('flags', flags)
  if (typeof flags === 'string' && Object.hasOwn(UPDATE_FLAGS, flags)) return UPDATE_FLAGS[flags as UpdateFlag]
  throw new MapError('EINVAL', `flags must be 'any', 'noexist', 'exist' or a number, got ${describeValue(flags)}`)
}

/** Calls into the native map, turning its errors into `MapError`s. */
function call<T>(f: () => T, what?: string): T {
  try {
    return f()
  } catch (e) {
    throw fromNativeMapError(e, what)
  }
}

/** A key or value given as a number or bigint: little-endian, u32 for 4 bytes, 64 bits for 8. */
function writeInteger(out: Uint8Array, v: number | bigint, what: string): void {
  const dv = new DataView(out.buffer, out.byteOffset, out.length)
  if (out.length === 4) {
    const n = typeof v === 'bigint' && v >= 0n && v <= 0xffffffffn ? Number(v) : v
    dv.setUint32(0, u32(what, n), true)
  } else {
    dv.setBigUint64(0, checkU64(MapError, what, v), true)
  }
}

/** A buffer outside V8's heap that lives as long as its map (see `#keyScratch`). */
const scratch = (size: number): Uint8Array => new Uint8Array(new ArrayBuffer(Math.max(size, 1)), 0, size)

/** `size` bytes from Node's buffer pool (no allocation per call), as a plain Uint8Array. */
const pooled = (size: number): Uint8Array => {
  const b = Buffer.allocUnsafe(size)
  return new Uint8Array(b.buffer, b.byteOffset, size)
}

/** A plain Uint8Array view of bytes the native layer returned (a Buffer). */
const view = (b: Uint8Array): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength)

/** The native form of a definition, every field checked. */
function nativeDef(def: MapDefinition): NativeMapDef {
  checkObject(MapError, 'map definition', def)
  const inner =
    def.innerMap === undefined
      ? undefined
      : checkObject<Omit<MapDefinition, 'innerMap'>>(MapError, 'innerMap', def.innerMap)
  return {
    mapType: typeNumber('type', def.type),
    keySize: u32('keySize', def.keySize),
    valueSize: u32('valueSize', def.valueSize),
    maxEntries: u32('maxEntries', def.maxEntries),
    flags: def.flags === undefined ? undefined : u32('flags', def.flags),
    name: def.name === undefined ? undefined : checkString(MapError, 'name', def.name),
    mapExtra: def.mapExtra === undefined ? undefined : checkUnsigned64(MapError, 'mapExtra', def.mapExtra),
    innerMapType: inner ? typeNumber('innerMap.type', inner.type) : undefined,
    innerKeySize: inner ? u32('innerMap.keySize', inner.keySize) : undefined,
    innerValueSize: inner ? u32('innerMap.valueSize', inner.valueSize) : undefined,
    innerMaxEntries: inner ? u32('innerMap.maxEntries', inner.maxEntries) : undefined,
    innerFlags: inner?.flags === undefined ? undefined : u32('innerMap.flags', inner.flags),
    spinLockOffset: def.spinLockOffset === undefined ? undefined : u32('spinLockOffset', def.spinLockOffset),
  }
}

const PERCPU_TYPES = new Set<number>([MAP_TYPES.percpu_array, MAP_TYPES.percpu_hash, MAP_TYPES.lru_percpu_hash])

export class BpfMap<K = unknown, V = unknown> implements Iterable<[K, V]> {
  /** @internal */
  readonly native: NativeMap
  readonly #codecs: MapCodecs
  /** Bytes of a value as user space sees it (per-CPU: all slots); fixed for the map's life. */
  #blobSizeCache: number | undefined
  /**
   * Reused buffers for keys and values on their way into the engine. A fresh small typed array
   * per call costs V8 a backing-store allocation when the engine asks for its memory; these are
   * allocated once, outside V8's heap.
   */
  #keyScratch: Uint8Array | undefined
  #valueScratch: Uint8Array | undefined

  /** Creates a new, empty map. */
  constructor(def: MapDefinition, codecs?: MapCodecs)
  /** @internal wraps a native map */
  constructor(def: NativeMap, codecs?: MapCodecs)
  constructor(def: MapDefinition | NativeMap, codecs: MapCodecs = {}) {
    this.#codecs = codecs
    if (def instanceof native.NativeMap) {
      this.native = def
      return
    }
    const codecsGiven = checkObject<MapCodecs>(MapError, 'codecs', codecs)
    for (const k of ['key', 'value'] as const) {
      const c = codecsGiven[k]
      if (c !== undefined && (c === null || typeof c !== 'object' || typeof c.encode !== 'function'))
        throw new MapError('EINVAL', `codecs.${k} must be a Codec (from btf.codec), got ${describeValue(c)}`)
    }
    const spec = nativeDef(def)
    this.native = call(() => native.NativeMap.create(spec), 'map definition')
  }

  /**
   * The most bytes a map of definition `def` can take once full (its values, whether allocated up
   * front or not, and an estimate of its key index), without creating it. A `Collection` counts
   * its maps against its `memoryLimit` with it.
   */
  static memoryBound(def: MapDefinition): number {
    const d = nativeDef(def)
    return call(() => native.NativeMap.memoryBound(d), 'map definition')
  }

  /** The live map with this id (from any thread of the process). */
  static fromId<K = unknown, V = unknown>(id: number, codecs?: MapCodecs): BpfMap<K, V> {
    return new BpfMap<K, V>(
      call(() => native.NativeMap.fromId(u32('id', id))),
      codecs,
    )
  }

  /** The map pinned under `path` with `pin()`, from any thread of the process. */
  static fromPinned<K = unknown, V = unknown>(path: string, codecs?: MapCodecs): BpfMap<K, V> {
    checkString(MapError, 'path', path)
    return new BpfMap<K, V>(
      call(() => native.NativeMap.fromPinned(path)),
      codecs,
    )
  }

  get #blobSize(): number {
    this.#blobSizeCache ??= this.native.valueBlobSize
    return this.#blobSizeCache
  }

  /** Process-unique id, as the kernel's map id. */
  get id(): number {
    return this.native.id
  }
  get type(): number {
    return this.native.mapType
  }
  get name(): string {
    return this.native.name
  }
  get keySize(): number {
    return this.native.keySize
  }
  get valueSize(): number {
    return this.native.valueSize
  }
  get maxEntries(): number {
    return this.native.maxEntries
  }
  get flags(): number {
    return this.native.flags
  }
  /** Number of elements present (arrays: maxEntries). */
  get size(): number {
    return this.native.size
  }
  get frozen(): boolean {
    return this.native.frozen
  }
  /** True for per-CPU maps, whose values are arrays with one value per slot. */
  get perCpu(): boolean {
    return PERCPU_TYPES.has(this.type)
  }

  /**
   * @internal `EINVAL` unless this map has the shape `def` describes (type, key and value size,
   * max entries, flags, map_extra: libbpf's `map_is_reuse_compat`), naming `def.name`, both shapes
   * and `source` (where this map came from).
   */
  checkReuse(def: MapDefinition, source: string): void {
    call(() => this.native.checkReuse(nativeDef(def), source))
  }

  /** Pins the map under `path` so that other threads can open it with `BpfMap.fromPinned`. */
  pin(path: string): void {
    checkString(MapError, 'path', path)
    call(() => this.native.pin(path))
  }

  /** Encodes a key: a codec's value, raw bytes, or a number/bigint for 4- and 8-byte keys. */
  encodeKey(key: K | Uint8Array): Uint8Array {
    return this.#encode(key, this.#codecs.key, this.keySize, 'key')
  }

  /** Encodes one value (per-CPU maps: one CPU's value). */
  encodeValue(value: V | Uint8Array): Uint8Array {
    return this.#encode(value, this.#codecs.value, this.valueSize, 'value')
  }

  decodeKey(bytes: Uint8Array): K {
    checkBytes(MapError, 'key bytes', bytes)
    return (this.#codecs.key ? this.#codecs.key.decode(bytes) : view(bytes)) as K
  }

  decodeValue(bytes: Uint8Array): V {
    checkBytes(MapError, 'value bytes', bytes)
    return (this.#codecs.value ? this.#codecs.value.decode(bytes) : view(bytes)) as V
  }

  /** The key's bytes for one engine call (a reused buffer unless the caller passed bytes). */
  #keyBytes(key: unknown): Uint8Array {
    if (key instanceof Uint8Array) return key
    this.#keyScratch ??= scratch(this.keySize)
    return this.#encodeInto(this.#keyScratch, key, this.#codecs.key, 'key')
  }

  /** One value's bytes for one engine call (as `#keyBytes`). */
  #valueBytes(value: unknown): Uint8Array {
    if (value instanceof Uint8Array) return value
    this.#valueScratch ??= scratch(this.valueSize)
    return this.#encodeInto(this.#valueScratch, value, this.#codecs.value, 'value')
  }

  #encodeInto(out: Uint8Array, v: unknown, codec: Codec | undefined, what: string): Uint8Array {
    const size = out.length
    if (codec) {
      out.set(codec.encode(v))
      return out
    }
    if ((typeof v === 'number' || typeof v === 'bigint') && (size === 4 || size === 8)) {
      writeInteger(out, v, what)
      return out
    }
    throw new MapError(
      'EINVAL',
      `${what} must be a Uint8Array of ${size} bytes (this map has no BTF type for it), got ${describeValue(v)}`,
    )
  }

  #encode(v: unknown, codec: Codec | undefined, size: number, what: string): Uint8Array {
    if (v instanceof Uint8Array) return v
    if (codec) return codec.encode(v)
    if ((typeof v === 'number' || typeof v === 'bigint') && (size === 4 || size === 8)) {
      const out = new Uint8Array(size)
      writeInteger(out, v, what)
      return out
    }
    throw new MapError(
      'EINVAL',
      `${what} must be a Uint8Array of ${size} bytes (this map has no BTF type for it), got ${describeValue(v)}`,
    )
  }

  /** Splits a per-CPU value blob into one decoded value per slot. */
  #decodeBlob(blob: Uint8Array): V | V[] {
    if (!this.perCpu) return this.decodeValue(blob)
    const stride = (this.valueSize + 7) & ~7
    const out: V[] = []
    for (let off = 0; off < blob.length; off += stride) {
      out.push(this.decodeValue(blob.slice(off, off + this.valueSize)))
    }
    return out
  }

  #encodeBlob(value: V | V[] | Uint8Array): Uint8Array {
    if (!this.perCpu || value instanceof Uint8Array) return this.#valueBytes(value)
    const slotsGiven = checkDenseArray<V>(MapError, 'a per-CPU value (one value per slot)', value)
    const stride = (this.valueSize + 7) & ~7
    const slots = this.#blobSize / stride
    if (slotsGiven.length !== slots) {
      throw new MapError('EINVAL', `a per-CPU value needs ${slots} slots, got ${slotsGiven.length}`)
    }
    const out = new Uint8Array(this.#blobSize)
    slotsGiven.forEach((v, i) => {
      out.set(this.encodeValue(v as V), i * stride)
    })
    return out
  }

  /** The value of `key`, or `undefined`. Per-CPU maps give one value per slot. */
  lookup(key: K | Uint8Array): V | undefined
  lookup(key: K | Uint8Array): V | V[] | undefined {
    const out = pooled(this.#blobSize)
    const found = call(() => this.native.lookupInto(this.#keyBytes(key), out))
    return found ? this.#decodeBlob(out) : undefined
  }

  has(key: K | Uint8Array): boolean {
    return call(() => this.native.lookupInto(this.#keyBytes(key), pooled(this.#blobSize)))
  }

  /** Sets `key` (flags: `any` (default), `noexist`, `exist`); `EEXIST`/`ENOENT`/`E2BIG` as in the kernel. */
  update(key: K | Uint8Array, value: V | V[] | Uint8Array, flags: UpdateFlag | number = 'any'): void {
    const f = updateFlag(flags)
    const k = this.#keyBytes(key)
    const v = this.#encodeBlob(value)
    call(() => this.native.update(k, v, f))
  }

  /** Deletes `key`; false when it was not there. */
  delete(key: K | Uint8Array): boolean {
    return call(() => this.native.delete(this.#keyBytes(key)))
  }

  /** The key after `key` (first key when omitted), or undefined after the last. */
  nextKey(key?: K | Uint8Array): K | undefined {
    const k = call(() => this.native.nextKey(key === undefined ? undefined : this.#keyBytes(key)))
    return k === null ? undefined : this.decodeKey(k)
  }

  /** Keys in the map's iteration order (the kernel's get_next_key order). */
  *keys(): IterableIterator<K> {
    let k: Uint8Array | null = call(() => this.native.nextKey(undefined))
    while (k !== null) {
      const current: Uint8Array = k
      yield this.decodeKey(current)
      k = call(() => this.native.nextKey(current))
    }
  }

  *entries(): IterableIterator<[K, V]> {
    for (const k of this.keys()) {
      const v = this.lookup(this.encodeKey(k as K))
      if (v !== undefined) yield [k, v]
    }
  }

  *values(): IterableIterator<V> {
    for (const [, v] of this.entries()) yield v
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries()
  }

  /** Up to `max` entries per call, from the start or after `cursor`; `next` continues. `delete` removes what it returns. */
  lookupBatch(options: { cursor?: Uint8Array; max?: number; delete?: boolean } = {}): {
    entries: Array<[K, V]>
    next: Uint8Array | undefined
  } {
    const o = optionsObject<{ cursor?: Uint8Array; max?: number; delete?: boolean }>(
      MapError,
      'lookupBatch options',
      options,
    )
    const cursor = o.cursor === undefined ? undefined : checkBytes(MapError, 'cursor', o.cursor)
    const max = u32('max', o.max ?? 1024)
    const del = o.delete === undefined ? undefined : checkBoolean(MapError, 'delete', o.delete)
    const b = call(() => this.native.lookupBatch(cursor, max, del))
    return {
      entries: b.keys.map((k, i) => [this.decodeKey(k), this.#decodeBlob(b.values[i]!) as V]),
      next: b.next === undefined || b.next === null ? undefined : view(b.next),
    }
  }

  /** Updates many entries in order; throws at the first failure (its message says how many succeeded). */
  updateBatch(entries: Iterable<[K | Uint8Array, V | Uint8Array]>, flags: UpdateFlag = 'any'): number {
    const f = updateFlag(flags)
    const keys: Buffer[] = []
    const values: Buffer[] = []
    let i = 0
    for (const entry of iterable<[K | Uint8Array, V | Uint8Array]>('entries', entries)) {
      if (!Array.isArray(entry) || entry.length !== 2)
        throw new MapError('EINVAL', `entries[${i}] must be a [key, value] pair, got ${describeValue(entry)}`)
      keys.push(Buffer.from(this.encodeKey(entry[0])))
      values.push(Buffer.from(this.#encodeBlob(entry[1])))
      i++
    }
    return call(() => this.native.updateBatch(keys, values, f))
  }

  /** Deletes many keys in order; throws at the first missing one. */
  deleteBatch(keys: Iterable<K | Uint8Array>): number {
    const encoded = Array.from(iterable<K | Uint8Array>('keys', keys), (k) => Buffer.from(this.encodeKey(k)))
    return call(() => this.native.deleteBatch(encoded))
  }

  /** Queue, stack, bloom filter: adds a value (`exist` on a full queue/stack replaces the oldest). */
  push(value: V | Uint8Array, flags: UpdateFlag = 'any'): void {
    const f = updateFlag(flags)
    const v = this.encodeValue(value)
    call(() => this.native.push(v, f))
  }

  /** Queue and stack: removes and returns the next value, or undefined when empty. */
  pop(): V | undefined {
    const v = call(() => this.native.lookupAndDelete(undefined))
    return v === null ? undefined : this.decodeValue(v)
  }

  /** Queue and stack: the next value without removing it. */
  peek(): V | undefined {
    const v = call(() => this.native.peek())
    return v === null ? undefined : this.decodeValue(v)
  }

  /** Bloom filter: false when `value` is certainly absent. */
  mayContain(value: V | Uint8Array): boolean {
    return call(() => this.native.contains(this.encodeValue(value)))
  }

  /**
   * Array maps: the values as an ArrayBuffer over the map's own memory, without copying (like a
   * writable mmap of a `BPF_F_MMAPABLE` array). Value `i` starts at byte `i * valueStride`; writes
   * through the view are seen by programs at once and the other way round. The view keeps the map
   * alive. While it exists, `freeze()` fails with `EBUSY` (as the kernel's does while a writable
   * mmap exists): `view.release()` (or `using view = map.arrayView()`) detaches it (its length
   * becomes 0) and lets the map be frozen; a view that is garbage collected is released too.
   * Refused (`EPERM`) for frozen maps, (`EINVAL`) for other map types.
   */
  arrayView(): MapArrayView {
    const lease = call(() => this.native.arrayView())
    const buffer = call(() => lease.buffer())
    const release = (): void => call(() => lease.release(buffer))
    Object.defineProperty(buffer, 'release', { value: release })
    Object.defineProperty(buffer, Symbol.dispose, { value: release })
    return buffer as MapArrayView
  }

  /** Bytes between consecutive values in `arrayView()`: the value size rounded up to 8. */
  get valueStride(): number {
    return this.native.valueStride
  }

  /** Prog array: puts `program` at `index`, the target of `bpf_tail_call(ctx, &map, index)`. */
  setProgram(index: number, program: Program): void {
    const at = u32('index', index)
    const target = (program as { native?: unknown } | null | undefined)?.native
    if (program === null || typeof program !== 'object' || !(target instanceof native.NativeProgram))
      throw new MapError('EINVAL', `program must be a Program, got ${describeValue(program)}`)
    call(() => this.native.setProgram(at, target))
  }

  /** Ring buffer: every committed record so far, oldest first, removed from the ring. */
  drainRecords(): Uint8Array[] {
    const { data, lengths } = call(() => this.native.ringbufDrain())
    const out: Uint8Array[] = []
    let at = 0
    for (const len of lengths) {
      out.push(new Uint8Array(data.buffer, data.byteOffset + at, len))
      at += len
    }
    return out
  }

  /**
   * Ring buffer: records as they are committed, oldest first. Waiting happens off the JavaScript
   * thread; the iteration ends when `signal` aborts (or the loop breaks).
   */
  async *records(options: { signal?: AbortSignal; pollMs?: number } = {}): AsyncGenerator<Uint8Array> {
    const o = optionsObject<{ signal?: AbortSignal; pollMs?: number }>(MapError, 'records options', options)
    const poll = u32('pollMs', o.pollMs ?? 100)
    const { signal } = o
    if (signal !== undefined && !(signal instanceof AbortSignal))
      throw new MapError('EINVAL', `signal must be an AbortSignal, got ${describeValue(signal)}`)
    while (!signal?.aborted) {
      for (const r of this.drainRecords()) yield r
      if (signal?.aborted) return
      await call(() => this.native.ringbufWait(poll))
    }
  }

  /** Ring buffer: calls `fn` with each record as it is committed, until the returned function is called. */
  onRecord(fn: (record: Uint8Array) => void, options: { pollMs?: number } = {}): () => void {
    checkFunction(MapError, 'fn', fn)
    const { pollMs } = optionsObject<{ pollMs?: number }>(MapError, 'onRecord options', options)
    if (pollMs !== undefined) u32('pollMs', pollMs)
    const controller = new AbortController()
    void (async () => {
      for await (const r of this.records({ signal: controller.signal, pollMs })) fn(r)
    })()
    return () => controller.abort()
  }

  /**
   * No more writes from user space (`BPF_MAP_FREEZE`); programs may still write unless read-only to
   * them. `EBUSY` while a writable `arrayView()` of the map is held (release it first).
   */
  freeze(): void {
    call(() => this.native.freeze())
  }
}

/**
 * Number of per-CPU slots of this process: the values a per-CPU map has per key, and the rings a
 * `PerfBuffer` opens (a perf event array's `max_entries` when its definition leaves it 0, as in
 * libbpf). The host's available parallelism, or `EBPF_NR_CPUS` (1-1024) when set.
 */
export function possibleCpus(): number {
  return native.possibleCpus()
}

/** @internal checks that an object is a BpfMap (for APIs taking maps). */
export function asBpfMap(m: unknown, what: string): BpfMap {
  if (!(m instanceof BpfMap)) throw new EbpfError('EINVAL', `${what} must be a BpfMap, got ${describeValue(m)}`)
  return m
}

/** `v` if it can be iterated, else a MapError naming `what`. */
function iterable<T>(what: string, v: unknown): Iterable<T> {
  if (v === null || v === undefined || typeof (v as { [Symbol.iterator]?: unknown })[Symbol.iterator] !== 'function')
    throw new MapError('EINVAL', `${what} must be iterable, got ${describeValue(v)}`)
  return v as Iterable<T>
}
