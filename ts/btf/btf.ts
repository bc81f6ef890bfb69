/**
 * `Btf`: a parsed set of BTF types with the queries users and the loader need (by id, by name and
 * kind, resolved sizes, member offsets) and the two dumps (bpftool's raw text and a C header).
 */

import { checkBoolean, checkBytes, describeValue, optionsObject } from '../arguments.js'
import { isElf, readElf } from '../binary/elf.js'
import { EbpfError, FormatError } from '../errors.js'
import { dumpC } from './dump-c.js'
import { dumpJson } from './dump-json.js'
import { dumpRaw } from './dump-raw.js'
import { type BtfExt, parseBtfExt } from './ext.js'
import { fixupBtf } from './fixup.js'
import { parseBtf } from './parse.js'
import { type BtfKind, type BtfMember, type BtfType, KIND_NAMES } from './types.js'

/** libbpf stops following type references after this many hops; so do we (cycles are malformed). */
const MAX_RESOLVE_DEPTH = 32

export interface DumpOptions {
  /**
   * `raw`: bpftool's `btf dump` text; `json`: bpftool's `-j` form of it; `c`: a C header declaring
   * every named type.
   */
  format: 'raw' | 'json' | 'c'
}

export interface MemberLocation {
  /** Offset from the start of the outer type, in bits. */
  bitOffset: number
  /** Bitfield width, 0 for an ordinary member. */
  bitfieldSize: number
  /** Type id of the member. */
  type: number
}

const MODIFIERS = new Set<BtfKind>(['TYPEDEF', 'CONST', 'VOLATILE', 'RESTRICT', 'TYPE_TAG'])

/** Passed by `parse`, whose types are well formed by construction. */
const TRUSTED: unique symbol = Symbol('trusted BTF types')

/**
 * The shape of hand-built type records (`new Btf(types)`): what every query and dump reads
 * without checking again. Ids are indexes; references must name existing types.
 */
function checkTypes(types: readonly BtfType[]): void {
  if (!Array.isArray(types) || types.length === 0)
    throw new EbpfError('EINVAL', `BTF types must be a non-empty array (types[0] is void), got ${describeValue(types)}`)
  const isId = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < types.length
  const isU32 = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff
  const list = (v: unknown, item: (x: Record<string, unknown>) => boolean) =>
    Array.isArray(v) && v.every((x) => x !== null && typeof x === 'object' && item(x))
  for (let i = 0; i < types.length; i++) {
    const t = types[i] as unknown as Record<string, unknown> | undefined
    const bad = (what: string) => {
      throw new EbpfError('EINVAL', `BTF types[${i}]: ${what}`)
    }
    if (t === null || typeof t !== 'object') bad(`must be a type record, got ${describeValue(t)}`)
    const r = t!
    if (r.id !== i) bad(`id must be ${i} (its index), got ${describeValue(r.id)}`)
    if (typeof r.kind !== 'string' || !KIND_NAMES.includes(r.kind as BtfKind))
      bad(`unknown kind ${describeValue(r.kind)}`)
    if (typeof r.name !== 'string') bad(`name must be a string, got ${describeValue(r.name)}`)
    if (r.vlen !== undefined && !isU32(r.vlen)) bad('vlen must be a u32')
    for (const f of ['size', 'nelems', 'bits', 'bitsOffset', 'encoding', 'linkage'] as const)
      if (r[f] !== undefined && !isU32(r[f])) bad(`${f} must be a u32, got ${describeValue(r[f])}`)
    for (const f of ['type', 'elemType', 'indexType'] as const)
      if (r[f] !== undefined && !isId(r[f])) bad(`${f} must be the id of a type, got ${describeValue(r[f])}`)
    const k = r.kind as BtfKind
    const sized = ['INT', 'STRUCT', 'UNION', 'ENUM', 'ENUM64', 'FLOAT', 'DATASEC'].includes(k)
    if (sized && r.size === undefined) bad(`a ${k} needs a size`)
    if (
      ['PTR', 'TYPEDEF', 'VOLATILE', 'CONST', 'RESTRICT', 'TYPE_TAG', 'FUNC', 'FUNC_PROTO', 'VAR', 'DECL_TAG'].includes(
        k,
      ) &&
      r.type === undefined
    )
      bad(`a ${k} needs a type`)
    if (k === 'INT' && (r.bits === undefined || r.bitsOffset === undefined || r.encoding === undefined))
      bad('an INT needs bits, bitsOffset and encoding')
    if (k === 'ARRAY' && (r.elemType === undefined || r.nelems === undefined)) bad('an ARRAY needs elemType and nelems')
    if (
      (k === 'STRUCT' || k === 'UNION') &&
      !list(r.members, (m) => typeof m.name === 'string' && isId(m.type) && isU32(m.bitOffset) && isU32(m.bitfieldSize))
    )
      bad('members must be an array of { name, type, bitOffset, bitfieldSize }')
    if (
      (k === 'ENUM' || k === 'ENUM64') &&
      !list(r.values, (v) => typeof v.name === 'string' && typeof v.value === 'bigint')
    )
      bad('values must be an array of { name, value: bigint }')
    if (k === 'FUNC_PROTO' && !list(r.params, (p) => typeof p.name === 'string' && isId(p.type)))
      bad('params must be an array of { name, type }')
    if (k === 'DATASEC' && !list(r.vars, (v) => isId(v.type) && isU32(v.offset) && isU32(v.size)))
      bad('vars must be an array of { type, offset, size }')
  }
}

export class Btf {
  /** Index = type id; `types[0]` is void. */
  readonly types: readonly BtfType[]
  /** `.BTF.ext` records when the BTF came from an object that has them. */
  readonly ext: BtfExt | undefined
  private byName: Map<string, BtfType[]> | undefined

  /** Types as `parse` makes them; records built by hand are checked (`EINVAL` naming the first bad one). */
  constructor(types: readonly BtfType[], ext?: BtfExt, trusted?: typeof TRUSTED) {
    if (trusted !== TRUSTED) checkTypes(types)
    this.types = types
    this.ext = ext
  }

  /**
   * Parses a raw BTF blob, or the `.BTF` (and `.BTF.ext`) sections of an ELF object. With
   * `fixup` (ELF only), applies libbpf's DATASEC fix-up: the form the kernel receives.
   */
  static parse(bytes: Uint8Array, options: { fixup?: boolean } = {}): Btf {
    checkBytes(EbpfError, 'BTF input', bytes)
    const { fixup } = optionsObject<{ fixup?: boolean }>(EbpfError, 'parse options', options)
    if (fixup !== undefined) checkBoolean(EbpfError, 'fixup', fixup)
    if (isElf(bytes)) {
      const elf = readElf(bytes)
      const sec = elf.sectionByName('.BTF')
      if (!sec) throw new FormatError('ELF object has no .BTF section')
      const parsed = parseBtf(sec.data, sec.offset)
      const extSec = elf.sectionByName('.BTF.ext')
      const ext = extSec ? parseBtfExt(extSec.data, parsed.strings, extSec.offset) : undefined
      const btf = new Btf(parsed.types, ext, TRUSTED)
      return fixup ? fixupBtf(btf, elf) : btf
    }
    return new Btf(parseBtf(bytes).types, undefined, TRUSTED)
  }

  /** Number of types including void (ids are 0 .. count-1). */
  get count(): number {
    return this.types.length
  }

  typeById(id: number): BtfType {
    if (typeof id !== 'number' || !Number.isInteger(id))
      throw new EbpfError('EINVAL', `a BTF type id must be an integer, got ${describeValue(id)}`)
    const t = this.types[id]
    if (!t) throw new EbpfError('ENOENT', `no BTF type with id ${id} (ids are 0..${this.types.length - 1})`)
    return t
  }

  /** All types with this name, optionally of one kind, in id order. */
  typesByName(name: string, kind?: BtfKind): BtfType[] {
    if (typeof name !== 'string')
      throw new EbpfError('EINVAL', `a type name must be a string, got ${describeValue(name)}`)
    if (kind !== undefined && (typeof kind !== 'string' || !KIND_NAMES.includes(kind)))
      throw new EbpfError('EINVAL', `kind must be one of ${KIND_NAMES.join(', ')}, got ${describeValue(kind)}`)
    if (!this.byName) {
      this.byName = new Map()
      for (const t of this.types) {
        if (t.id === 0 || t.name === '') continue
        const list = this.byName.get(t.name)
        if (list) list.push(t)
        else this.byName.set(t.name, [t])
      }
    }
    const all = this.byName.get(name) ?? []
    return kind ? all.filter((t) => t.kind === kind) : all
  }

  /** The first type with this name (and kind), or undefined. */
  typeByName(name: string, kind?: BtfKind): BtfType | undefined {
    return this.typesByName(name, kind)[0]
  }

  /** Follows typedefs and qualifiers (const, volatile, restrict, type tags) to the underlying type. */
  resolve(id: number): BtfType {
    let t = this.typeById(id)
    for (let depth = 0; MODIFIERS.has(t.kind); depth++) {
      if (depth > MAX_RESOLVE_DEPTH) throw new FormatError(`BTF type #${id}: reference chain too long or cyclic`)
      t = this.typeById(t.type!)
    }
    return t
  }

  /** Size in bytes of a type, following references; throws for types without a size (void, func, fwd). */
  sizeOf(id: number): number {
    return this.sizeAt(id, 0)
  }

  private sizeAt(id: number, depth: number): number {
    if (depth > MAX_RESOLVE_DEPTH) throw new FormatError(`BTF type #${id}: reference chain too long or cyclic`)
    const t = this.typeById(id)
    switch (t.kind) {
      case 'INT':
      case 'ENUM':
      case 'ENUM64':
      case 'STRUCT':
      case 'UNION':
      case 'FLOAT':
      case 'DATASEC':
        return t.size!
      case 'PTR':
        return 8
      case 'ARRAY': {
        const size = t.nelems! * this.sizeAt(t.elemType!, depth + 1)
        // The kernel refuses arrays larger than u32 (btf_array_resolve); so do we, which also keeps
        // nested arrays from growing past what a JavaScript number holds exactly.
        if (size > 0xffffffff) {
          throw new FormatError(`BTF type #${id} (ARRAY of ${t.nelems}) is ${size} bytes, more than 2^32-1`)
        }
        return size
      }
      case 'TYPEDEF':
      case 'CONST':
      case 'VOLATILE':
      case 'RESTRICT':
      case 'TYPE_TAG':
      case 'VAR':
        return this.sizeAt(t.type!, depth + 1)
      default:
        throw new EbpfError('EINVAL', `BTF type #${id} (${t.kind}${t.name ? ` '${t.name}'` : ''}) has no size`)
    }
  }

  /** Alignment in bytes as the compiler lays the type out for BPF (natural alignment, at most 8). */
  alignOf(id: number, depth = 0): number {
    if (depth > MAX_RESOLVE_DEPTH) throw new FormatError(`BTF type #${id}: reference chain too long or cyclic`)
    // Cached: struct alignment recurses into members, which would be exponential on shared types.
    const known = this.aligns.get(id)
    if (known !== undefined) return known
    const a = this.alignUncached(id, depth)
    this.aligns.set(id, a)
    return a
  }

  private readonly aligns = new Map<number, number>()

  private alignUncached(id: number, depth: number): number {
    const t = this.resolve(id)
    switch (t.kind) {
      case 'INT':
      case 'ENUM':
      case 'ENUM64':
      case 'FLOAT':
        return Math.min(t.size!, 8)
      case 'PTR':
        return 8
      case 'ARRAY':
        return this.alignOf(t.elemType!, depth + 1)
      case 'STRUCT':
      case 'UNION': {
        let a = 1
        for (const m of t.members!) a = Math.max(a, this.alignOf(m.type, depth + 1))
        return a
      }
      default:
        return 1
    }
  }

  /**
   * Locates a member by path, e.g. `'times.last_ns'` or `'bytes[1]'`, inside a struct, union or
   * array type (typedefs followed). Anonymous members are searched through.
   */
  memberOffset(id: number, path: string): MemberLocation {
    if (typeof path !== 'string') throw new EbpfError('EINVAL', `member path must be a string, got ${typeof path}`)
    let loc: MemberLocation = { bitOffset: 0, bitfieldSize: 0, type: id }
    const parts = path.match(/[^.[\]]+|\[\d+\]/g)
    if (!parts) throw new EbpfError('EINVAL', `empty member path '${path}'`)
    for (const part of parts) {
      const t = this.resolve(loc.type)
      if (part.startsWith('[')) {
        if (t.kind !== 'ARRAY') throw new EbpfError('EINVAL', `'${path}': ${part} indexes a ${t.kind}, not an array`)
        const i = Number(part.slice(1, -1))
        if (i >= t.nelems!) throw new EbpfError('EINVAL', `'${path}': index ${i} is out of bounds (${t.nelems})`)
        loc = { bitOffset: loc.bitOffset + i * this.sizeOf(t.elemType!) * 8, bitfieldSize: 0, type: t.elemType! }
        continue
      }
      const found = this.findMember(t, part, 0, new Set())
      if (!found) throw new EbpfError('EINVAL', `'${path}': ${t.kind} ${t.name || '(anon)'} has no member '${part}'`)
      loc = {
        bitOffset: loc.bitOffset + found.bitOffset,
        bitfieldSize: found.member.bitfieldSize,
        type: found.member.type,
      }
    }
    return loc
  }

  /**
   * `name` among the members of `t`, searching anonymous members depth first. `searched` holds the
   * anonymous types already searched in vain: a type reached again (one anonymous struct used at
   * every level of a hostile BTF) is not searched again, so a search visits each type once.
   */
  private findMember(
    t: BtfType,
    name: string,
    depth: number,
    searched: Set<number>,
  ): { member: BtfMember; bitOffset: number } | undefined {
    if (depth > MAX_RESOLVE_DEPTH) throw new FormatError(`BTF type #${t.id}: members nest too deeply`)
    if (t.kind !== 'STRUCT' && t.kind !== 'UNION') return undefined
    if (searched.has(t.id)) return undefined
    searched.add(t.id)
    for (const m of t.members!) {
      if (m.name === name) return { member: m, bitOffset: m.bitOffset }
      if (m.name === '') {
        const inner = this.findMember(this.resolve(m.type), name, depth + 1, searched)
        if (inner) return { member: inner.member, bitOffset: m.bitOffset + inner.bitOffset }
      }
    }
    return undefined
  }

  dump(options: DumpOptions = { format: 'raw' }): string {
    if (options === null || typeof options !== 'object')
      throw new EbpfError('EINVAL', `dump options must be an object, got ${describeValue(options)}`)
    if (options.format === 'raw') return dumpRaw(this.types)
    if (options.format === 'json') return dumpJson(this.types)
    if (options.format === 'c') return dumpC(this)
    throw new EbpfError('EINVAL', `dump format must be 'raw', 'json' or 'c', got ${describeValue(options.format)}`)
  }

  /** A copy with some types replaced (used for the libbpf DATASEC fix-up). */
  withTypes(replacements: Map<number, BtfType>): Btf {
    if (!(replacements instanceof Map))
      throw new EbpfError('EINVAL', `replacements must be a Map of type id to type, got ${describeValue(replacements)}`)
    const types = this.types.map((t) => replacements.get(t.id) ?? t)
    if (replacements.size > 0) checkTypes(types)
    return new Btf(types, this.ext, TRUSTED)
  }
}
