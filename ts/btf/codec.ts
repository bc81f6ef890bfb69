/**
 * Typed values from BTF: converts between the bytes of a map key, map value or global variable
 * and JavaScript values. Integers up to 32 bits are numbers, wider ones bigints; structs are
 * objects (anonymous members flattened), arrays are arrays, `char` arrays are strings, enums are
 * their enumerator names, bitfields are read and written in place. Little-endian, as BPF is.
 */
import { describeValue } from '../arguments.js'
import { EbpfError } from '../errors.js'
import type { Btf } from './btf.js'
import { textLimits } from './limits.js'
import type { BtfType } from './types.js'

/** A JavaScript value as a codec produces or accepts it. */
export type BtfValue = number | bigint | boolean | string | Uint8Array | BtfValue[] | { [name: string]: BtfValue }

export interface Codec {
  /** Size in bytes of the encoded value. */
  readonly size: number
  /** Encodes a value into a new buffer of `size` bytes. Missing struct members are zero. */
  encode(value: unknown): Uint8Array
  /** Decodes the first `size` bytes of `bytes`. */
  decode(bytes: Uint8Array): BtfValue
  /** Writes `value` at `offset` of `view` (used for variables inside a section). */
  write(view: DataView, offset: number, value: unknown): void
  read(view: DataView, offset: number): BtfValue
}

type Reader = (view: DataView, off: number) => BtfValue
type Writer = (view: DataView, off: number, value: unknown, path: string) => void

interface Part {
  size: number
  read: Reader
  write: Writer
}

const MAX_DEPTH = 32
/** Bytes a codec may encode into one new buffer (map values are at most 1 MiB, sections rarely more). */
const MAX_ENCODED_SIZE = 1 << 30
/**
 * JavaScript values one decode may create beyond one per byte: zero-size elements (`struct {} x[n]`)
 * give values without bytes, and nested arrays of them would make a decode of no bytes exponential.
 */
const MAX_EXTRA_VALUES = 1 << 16

function bad(path: string, message: string): never {
  throw new EbpfError('EINVAL', `${path || 'value'}: ${message}`)
}

function describe(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  return typeof v
}

/** `size` bytes at `offset` of `view` must exist (a DataView would throw a RangeError). */
function checkView(view: unknown, offset: unknown, size: number): void {
  if (!(view instanceof DataView)) bad('', `expected a DataView, got ${describe(view)}`)
  if (typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0 || offset + size > view.byteLength)
    bad('', `offset ${describeValue(offset)} does not leave ${size} bytes in a DataView of ${view.byteLength}`)
}

/** Builds a codec for type `id` of `btf`. */
export function codec(btf: Btf, id: number): Codec {
  work = 0
  maxWork = textLimits(btf.types).work
  building.clear()
  const part = build(btf, id, 0)
  return {
    size: part.size,
    encode(value: unknown): Uint8Array {
      if (part.size > MAX_ENCODED_SIZE) {
        throw new EbpfError('E2BIG', `BTF type #${id} is ${part.size} bytes, more than ${MAX_ENCODED_SIZE} to encode`)
      }
      const out = new Uint8Array(part.size)
      part.write(new DataView(out.buffer), 0, value, '')
      return out
    },
    decode(bytes: Uint8Array): BtfValue {
      if (!(bytes instanceof Uint8Array)) bad('', `expected a Uint8Array, got ${describe(bytes)}`)
      if (bytes.length < part.size) {
        throw new EbpfError('EINVAL', `need ${part.size} bytes to decode, got ${bytes.length}`)
      }
      return part.read(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), 0)
    },
    write(view, offset, value) {
      checkView(view, offset, part.size)
      part.write(view, offset, value, '')
    },
    read(view, offset) {
      checkView(view, offset, part.size)
      return part.read(view, offset)
    },
  }
}

/**
 * Parts are pure functions of (btf, type id), so each is built once: a struct used many times (or
 * a hostile BTF that reuses one type at every level) costs its size once, not exponentially.
 */
const partCache = new WeakMap<Btf, Map<number, Part & { values: number }>>()
/** Parts built and members visited in one codec() call; bounded for the same reason. */
let work = 0
/** The limit of the current codec() call: in proportion to the BTF (ts/btf/limits.ts). */
let maxWork = 0
/** Types whose part is being built: meeting one again is a type that contains itself by value. */
const building = new Set<number>()

function tooComplex(id: number): EbpfError {
  return new EbpfError('E2BIG', `BTF type #${id} is too complex to encode: more than ${maxWork} steps`)
}

function build(btf: Btf, id: number, depth: number): Part & { values: number } {
  let cache = partCache.get(btf)
  if (!cache) {
    cache = new Map()
    partCache.set(btf, cache)
  }
  const hit = cache.get(id)
  if (hit) return hit
  if (++work > maxWork) throw tooComplex(id)
  if (building.has(id)) throw new EbpfError('EINVAL', `BTF type #${id} contains itself`)
  building.add(id)
  const part = buildUncached(btf, id, depth)
  building.delete(id)
  // How many JavaScript values a decode creates: one per leaf, arrays multiply.
  const values = part.values ?? 1
  if (values > 2 * part.size + MAX_EXTRA_VALUES) {
    throw new EbpfError('E2BIG', `BTF type #${id} decodes to ${values} values from ${part.size} bytes`)
  }
  const done = { ...part, values }
  cache.set(id, done)
  return done
}

function buildUncached(btf: Btf, id: number, depth: number): Part & { values?: number } {
  if (depth > MAX_DEPTH) throw new EbpfError('EINVAL', `BTF type #${id} nests too deeply to encode`)
  const t = btf.typeById(id)
  switch (t.kind) {
    case 'TYPEDEF':
    case 'CONST':
    case 'VOLATILE':
    case 'RESTRICT':
    case 'TYPE_TAG':
    case 'VAR':
      return build(btf, t.type!, depth + 1)
    case 'INT':
      return intPart(t)
    case 'PTR':
      return integer(8, false, 'pointer')
    case 'ENUM':
    case 'ENUM64':
      return enumPart(t)
    case 'FLOAT':
      return floatPart(t)
    case 'ARRAY':
      return arrayPart(btf, t, depth)
    case 'STRUCT':
    case 'UNION':
      return structPart(btf, t, depth)
    case 'DATASEC':
      return datasecPart(btf, t, depth)
    default:
      throw new EbpfError('EINVAL', `BTF type #${id} (${t.kind}) has no value representation`)
  }
}

/** True for the element types whose arrays read as strings: plain `char` and CHAR-encoded ints. */
function isCharType(btf: Btf, id: number): boolean {
  const t = btf.resolve(id)
  return t.kind === 'INT' && t.size === 1 && (t.name === 'char' || (t.encoding! & 2) !== 0)
}

function intPart(t: BtfType): Part {
  const size = t.size!
  const signed = (t.encoding! & 1) !== 0
  if ((t.encoding! & 4) !== 0 && t.bitsOffset === 0 && t.bits === size * 8 && size <= 4) {
    const inner = integer(size, false, 'bool')
    return {
      size,
      read: (v, o) => inner.read(v, o) !== 0,
      write: (v, o, x, path) => {
        if (typeof x !== 'boolean' && typeof x !== 'number') bad(path, `expected a boolean, got ${describe(x)}`)
        inner.write(v, o, x ? 1 : 0, path)
      },
    }
  }
  if (t.bitsOffset !== 0 || t.bits !== size * 8) {
    // Old-style int with an explicit bit range: a bitfield inside its own storage.
    return { size, ...bitfield(t.bitsOffset!, t.bits!, signed, size > 4) }
  }
  return integer(size, signed, `${signed ? 's' : 'u'}${size * 8}`)
}

/** A whole integer of 1, 2, 4, 8 or 16 bytes: number up to 4 bytes, bigint above. */
function integer(size: number, signed: boolean, what: string): Part {
  if (![1, 2, 4, 8, 16].includes(size))
    throw new EbpfError('EINVAL', `${what}: integer size ${size} is not 1, 2, 4, 8 or 16`)
  const bits = BigInt(size * 8)
  const min = signed ? -(1n << (bits - 1n)) : 0n
  const max = signed ? (1n << (bits - 1n)) - 1n : (1n << bits) - 1n
  const toBig = (x: unknown, path: string): bigint => {
    let b: bigint
    if (typeof x === 'bigint') b = x
    else if (typeof x === 'number') {
      if (!Number.isInteger(x)) bad(path, `expected an integer for ${what}, got ${x}`)
      b = BigInt(x)
    } else if (typeof x === 'boolean') b = x ? 1n : 0n
    else bad(path, `expected a number or bigint for ${what}, got ${describe(x)}`)
    if (b < min || b > max) bad(path, `${b} is out of range for ${what} (${min}..${max})`)
    return b
  }
  switch (size) {
    case 1:
      return {
        size,
        read: signed ? (v, o) => v.getInt8(o) : (v, o) => v.getUint8(o),
        write: (v, o, x, p) => v.setUint8(o, Number(BigInt.asUintN(8, toBig(x, p)))),
      }
    case 2:
      return {
        size,
        read: signed ? (v, o) => v.getInt16(o, true) : (v, o) => v.getUint16(o, true),
        write: (v, o, x, p) => v.setUint16(o, Number(BigInt.asUintN(16, toBig(x, p))), true),
      }
    case 4:
      return {
        size,
        read: signed ? (v, o) => v.getInt32(o, true) : (v, o) => v.getUint32(o, true),
        write: (v, o, x, p) => v.setUint32(o, Number(BigInt.asUintN(32, toBig(x, p))), true),
      }
    case 8:
      return {
        size,
        read: signed ? (v, o) => v.getBigInt64(o, true) : (v, o) => v.getBigUint64(o, true),
        write: (v, o, x, p) => v.setBigUint64(o, BigInt.asUintN(64, toBig(x, p)), true),
      }
    case 16:
      return {
        size,
        read: (v, o) => {
          const raw = (v.getBigUint64(o + 8, true) << 64n) | v.getBigUint64(o, true)
          return signed ? BigInt.asIntN(128, raw) : raw
        },
        write: (v, o, x, p) => {
          const b = BigInt.asUintN(128, toBig(x, p))
          v.setBigUint64(o, b & 0xffffffffffffffffn, true)
          v.setBigUint64(o + 8, b >> 64n, true)
        },
      }
    default:
      throw new EbpfError('EINVAL', `integer size ${size} is not supported`)
  }
}

/** Reads and writes `bits` bits starting `bitOffset` bits into the value at the given byte offset. */
function bitfield(bitOffset: number, bits: number, signed: boolean, wide: boolean): Omit<Part, 'size'> {
  const first = Math.floor(bitOffset / 8)
  const shift = BigInt(bitOffset % 8)
  const nbytes = Math.ceil(((bitOffset % 8) + bits) / 8)
  const mask = (1n << BigInt(bits)) - 1n
  const min = signed ? -(1n << BigInt(bits - 1)) : 0n
  const max = signed ? (1n << BigInt(bits - 1)) - 1n : mask
  const load = (v: DataView, o: number): bigint => {
    let acc = 0n
    for (let i = nbytes - 1; i >= 0; i--) acc = (acc << 8n) | BigInt(v.getUint8(o + first + i))
    return acc
  }
  return {
    read: (v, o) => {
      let x = (load(v, o) >> shift) & mask
      if (signed) x = BigInt.asIntN(bits, x)
      return wide ? x : Number(x)
    },
    write: (v, o, x, path) => {
      let b: bigint
      if (typeof x === 'bigint') b = x
      else if (typeof x === 'number' && Number.isInteger(x)) b = BigInt(x)
      else if (typeof x === 'boolean') b = x ? 1n : 0n
      else bad(path, `expected an integer for a ${bits}-bit field, got ${describe(x)}`)
      if (b < min || b > max) bad(path, `${b} does not fit ${signed ? 'a signed' : 'an unsigned'} ${bits}-bit field`)
      let acc = load(v, o)
      acc = (acc & ~(mask << shift)) | ((BigInt.asUintN(bits, b) & mask) << shift)
      for (let i = 0; i < nbytes; i++) {
        v.setUint8(o + first + i, Number(acc & 0xffn))
        acc >>= 8n
      }
    },
  }
}

function enumPart(t: BtfType): Part {
  const size = t.size!
  const signed = t.signed ?? false
  const base = integer(size, signed, `enum ${t.name || '(anon)'}`)
  const byValue = new Map<bigint, string>()
  const byName = new Map<string, bigint>()
  for (const e of t.values!) {
    if (!byValue.has(e.value)) byValue.set(e.value, e.name)
    byName.set(e.name, e.value)
  }
  const wide = size > 4
  return {
    size,
    read: (v, o) => {
      const raw = base.read(v, o)
      const name = byValue.get(BigInt(raw as number | bigint))
      return name ?? raw
    },
    write: (v, o, x, path) => {
      if (typeof x === 'string') {
        const val = byName.get(x)
        if (val === undefined) bad(path, `'${x}' is not an enumerator of enum ${t.name || '(anon)'}`)
        base.write(v, o, wide ? val : Number(val), path)
      } else base.write(v, o, x, path)
    },
  }
}

function floatPart(t: BtfType): Part {
  const size = t.size!
  if (size !== 4 && size !== 8) {
    return {
      size,
      read: (v, o) => new Uint8Array(v.buffer.slice(v.byteOffset + o, v.byteOffset + o + size)),
      write: (v, o, x, path) => rawBytes(v, o, size, x, path),
    }
  }
  return {
    size,
    read: size === 4 ? (v, o) => v.getFloat32(o, true) : (v, o) => v.getFloat64(o, true),
    write: (v, o, x, path) => {
      if (typeof x !== 'number') bad(path, `expected a number for ${t.name}, got ${describe(x)}`)
      if (size === 4) v.setFloat32(o, x, true)
      else v.setFloat64(o, x, true)
    },
  }
}

function rawBytes(v: DataView, o: number, size: number, x: unknown, path: string): void {
  if (!(x instanceof Uint8Array)) bad(path, `expected a Uint8Array of ${size} bytes, got ${describe(x)}`)
  if (x.length > size) bad(path, `${x.length} bytes do not fit ${size}`)
  for (let i = 0; i < size; i++) v.setUint8(o + i, x[i] ?? 0)
}

const utf8 = new TextDecoder('utf-8')
const utf8enc = new TextEncoder()

function arrayPart(btf: Btf, t: BtfType, depth: number): Part & { values?: number } {
  const n = t.nelems!
  if (isCharType(btf, t.elemType!)) {
    return {
      size: n,
      read: (v, o) => {
        const bytes = new Uint8Array(v.buffer, v.byteOffset + o, n)
        const end = bytes.indexOf(0)
        return utf8.decode(end < 0 ? bytes : bytes.subarray(0, end))
      },
      write: (v, o, x, path) => {
        if (x instanceof Uint8Array) return rawBytes(v, o, n, x, path)
        if (typeof x !== 'string') bad(path, `expected a string of at most ${n} bytes, got ${describe(x)}`)
        const bytes = utf8enc.encode(x)
        if (bytes.length > n) bad(path, `string of ${bytes.length} bytes does not fit char[${n}]`)
        for (let i = 0; i < n; i++) v.setUint8(o + i, bytes[i] ?? 0)
      },
    }
  }
  const elem = build(btf, t.elemType!, depth + 1)
  const es = elem.size
  return {
    size: n * es,
    values: 1 + n * elem.values,
    read: (v, o) => {
      const out: BtfValue[] = new Array(n)
      for (let i = 0; i < n; i++) out[i] = elem.read(v, o + i * es)
      return out
    },
    write: (v, o, x, path) => {
      if (x instanceof Uint8Array && es === 1) return rawBytes(v, o, n, x, path)
      if (!Array.isArray(x)) bad(path, `expected an array of ${n} elements, got ${describe(x)}`)
      if (x.length > n) bad(path, `${x.length} elements do not fit an array of ${n}`)
      for (let i = 0; i < n; i++) {
        if (i < x.length) elem.write(v, o + i * es, x[i], `${path}[${i}]`)
        else zero(v, o + i * es, es)
      }
    },
  }
}

function zero(v: DataView, o: number, size: number): void {
  for (let i = 0; i < size; i++) v.setUint8(o + i, 0)
}

interface Field {
  name: string
  byteOffset: number
  /** First byte past the member, to check it lies inside its struct. */
  end: number
  part: Omit<Part, 'size'>
  /** JavaScript values a decode of the member creates. */
  values: number
}

/** Members of a struct or union, with anonymous struct/union members flattened into the parent. */
function fields(btf: Btf, t: BtfType, baseBits: number, depth: number, out: Field[]): void {
  if (depth > MAX_DEPTH) throw new EbpfError('EINVAL', `BTF type #${t.id} nests too deeply to encode`)
  for (const m of t.members!) {
    if (++work > maxWork) throw tooComplex(t.id)
    const bitOffset = baseBits + m.bitOffset
    const inner = btf.resolve(m.type)
    if (m.name === '' && (inner.kind === 'STRUCT' || inner.kind === 'UNION')) {
      fields(btf, inner, bitOffset, depth + 1, out)
      continue
    }
    if (m.name === '') continue
    if (m.bitfieldSize > 0) {
      const it = inner
      const signed = it.kind === 'INT' ? (it.encoding! & 1) !== 0 : it.kind === 'ENUM' ? (it.signed ?? false) : false
      const wide = btf.sizeOf(m.type) > 4
      const end = Math.ceil((bitOffset + m.bitfieldSize) / 8)
      out.push({ name: m.name, byteOffset: 0, end, part: bitfield(bitOffset, m.bitfieldSize, signed, wide), values: 1 })
      continue
    }
    if (bitOffset % 8 !== 0) throw new EbpfError('EINVAL', `member '${m.name}' is not byte-aligned`)
    const part = build(btf, m.type, depth + 1)
    out.push({ name: m.name, byteOffset: bitOffset / 8, end: bitOffset / 8 + part.size, part, values: part.values })
  }
}

function structPart(btf: Btf, t: BtfType, depth: number): Part & { values: number } {
  const list: Field[] = []
  fields(btf, t, 0, depth, list)
  let values = 1
  for (const f of list) values += f.values
  const byName = new Map(list.map((f) => [f.name, f]))
  const size = t.size!
  const isUnion = t.kind === 'UNION'
  for (const f of list) {
    if (f.end > size) {
      throw new EbpfError(
        'EINVAL',
        `member '${f.name}' ends at byte ${f.end}, past the end of ${t.kind.toLowerCase()} ${t.name || '(anon)'} (${size} bytes)`,
      )
    }
  }
  return {
    size,
    values,
    read: (v, o) => {
      const obj: { [name: string]: BtfValue } = {}
      for (const f of list) obj[f.name] = f.part.read(v, o + f.byteOffset)
      return obj
    },
    write: (v, o, x, path) => {
      if (typeof x !== 'object' || x === null || Array.isArray(x) || x instanceof Uint8Array) {
        if (x instanceof Uint8Array) return rawBytes(v, o, size, x, path)
        bad(path, `expected an object for ${isUnion ? 'union' : 'struct'} ${t.name || '(anon)'}, got ${describe(x)}`)
      }
      const given = x as Record<string, unknown>
      for (const key of Object.keys(given)) {
        if (!byName.has(key)) bad(path, `${t.kind.toLowerCase()} ${t.name || '(anon)'} has no member '${key}'`)
      }
      // Padding and members not given are zero, so that encode() output is deterministic.
      zero(v, o, size)
      for (const f of list) {
        if (!(f.name in given)) continue
        f.part.write(v, o + f.byteOffset, given[f.name], path ? `${path}.${f.name}` : f.name)
      }
    },
  }
}

function datasecPart(btf: Btf, t: BtfType, depth: number): Part & { values: number } {
  const vars = t.vars!.map((s) => ({
    name: btf.typeById(s.type).name,
    offset: s.offset,
    part: build(btf, s.type, depth + 1),
  }))
  let values = 1
  for (const v of vars) values += v.part.values
  for (const v of vars) {
    if (v.offset + v.part.size > t.size!) {
      throw new EbpfError(
        'EINVAL',
        `variable '${v.name}' (offset ${v.offset}) does not fit section ${t.name} (${t.size} bytes)`,
      )
    }
  }
  return {
    size: t.size!,
    values,
    read: (v, o) => {
      const obj: { [name: string]: BtfValue } = {}
      for (const s of vars) obj[s.name] = s.part.read(v, o + s.offset)
      return obj
    },
    write: (v, o, x, path) => {
      if (typeof x !== 'object' || x === null) bad(path, `expected an object of variables, got ${describe(x)}`)
      const given = x as Record<string, unknown>
      for (const s of vars) if (s.name in given) s.part.write(v, o + s.offset, given[s.name], s.name)
    },
  }
}
