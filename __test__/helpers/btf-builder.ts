/**
 * Builds raw BTF blobs by hand (kernel `linux/btf.h` layout, Documentation/bpf/btf.rst), for tests
 * that need BTF no compiler would emit: hostile nesting, bad offsets, cycles, huge name tables.
 * Ids are handed out in order from 1; a type may refer to an id not added yet (`nextId`).
 */

/** BTF_KIND_* numbers, from `linux/btf.h`. */
const KIND = {
  INT: 1,
  PTR: 2,
  ARRAY: 3,
  STRUCT: 4,
  UNION: 5,
  ENUM: 6,
  FWD: 7,
  TYPEDEF: 8,
  VOLATILE: 9,
  CONST: 10,
  RESTRICT: 11,
  FUNC: 12,
  FUNC_PROTO: 13,
  VAR: 14,
  DATASEC: 15,
  FLOAT: 16,
  DECL_TAG: 17,
  TYPE_TAG: 18,
  ENUM64: 19,
} as const

export interface MemberSpec {
  name?: string
  type: number
  /** Bit offset from the start of the struct. */
  bitOffset: number
  /** Bitfield width; setting it on any member makes the struct use kind_flag encoding. */
  bitfieldSize?: number
}

export class BtfBuilder {
  readonly #words: number[] = []
  readonly #strings = new Map<string, number>([['', 0]])
  readonly #strBytes: number[] = [0]
  #count = 0

  /** The id the next added type gets. */
  get nextId(): number {
    return this.#count + 1
  }

  /** Offset of `s` in the string section (each distinct string stored once). */
  str(s: string): number {
    const known = this.#strings.get(s)
    if (known !== undefined) return known
    const off = this.#strBytes.length
    for (const b of new TextEncoder().encode(s)) this.#strBytes.push(b)
    this.#strBytes.push(0)
    this.#strings.set(s, off)
    return off
  }

  #type(name: string, kind: number, vlen: number, sizeOrType: number, kindFlag = false, extra: number[] = []): number {
    this.#words.push(this.str(name), ((kindFlag ? 1 : 0) << 31) | (kind << 24) | vlen, sizeOrType >>> 0, ...extra)
    return ++this.#count
  }

  int(name = 'int', size = 4, signed = true): number {
    return this.#type(name, KIND.INT, 0, size, false, [((signed ? 1 : 0) << 24) | (size * 8)])
  }
  ptr(type: number): number {
    return this.#type('', KIND.PTR, 0, type)
  }
  typedef(name: string, type: number): number {
    return this.#type(name, KIND.TYPEDEF, 0, type)
  }
  const(type: number): number {
    return this.#type('', KIND.CONST, 0, type)
  }
  volatile(type: number): number {
    return this.#type('', KIND.VOLATILE, 0, type)
  }
  array(elem: number, nelems: number, index = elem): number {
    return this.#type('', KIND.ARRAY, 0, 0, false, [elem, index, nelems >>> 0])
  }
  fwd(name: string, union = false): number {
    return this.#type(name, KIND.FWD, 0, 0, union)
  }
  enum(name: string, size: number, values: Array<[string, number]>): number {
    return this.#type(
      name,
      KIND.ENUM,
      values.length,
      size,
      false,
      values.flatMap(([n, v]) => [this.str(n), v >>> 0]),
    )
  }
  struct(name: string, size: number, members: MemberSpec[], union = false): number {
    const flag = members.some((m) => m.bitfieldSize !== undefined)
    const extra = members.flatMap((m) => [
      this.str(m.name ?? ''),
      m.type,
      flag ? ((m.bitfieldSize ?? 0) << 24) | m.bitOffset : m.bitOffset,
    ])
    return this.#type(name, union ? KIND.UNION : KIND.STRUCT, members.length, size, flag, extra)
  }
  union(name: string, size: number, members: MemberSpec[]): number {
    return this.struct(name, size, members, true)
  }
  funcProto(ret: number, params: Array<[string, number]>): number {
    return this.#type(
      '',
      KIND.FUNC_PROTO,
      params.length,
      ret,
      false,
      params.flatMap(([n, t]) => [this.str(n), t]),
    )
  }
  func(name: string, proto: number, linkage = 1): number {
    return this.#type(name, KIND.FUNC, linkage, proto)
  }
  var(name: string, type: number, linkage = 1): number {
    return this.#type(name, KIND.VAR, 0, type, false, [linkage])
  }
  datasec(name: string, size: number, vars: Array<{ type: number; offset: number; size: number }>): number {
    return this.#type(
      name,
      KIND.DATASEC,
      vars.length,
      size,
      false,
      vars.flatMap((v) => [v.type, v.offset, v.size]),
    )
  }

  /** The blob: 24-byte header, type section, string section. */
  build(): Uint8Array {
    const types = new Uint8Array(new Uint32Array(this.#words).buffer)
    const strings = Uint8Array.from(this.#strBytes)
    const out = new Uint8Array(24 + types.length + strings.length)
    const v = new DataView(out.buffer)
    v.setUint16(0, 0xeb9f, true)
    v.setUint8(2, 1)
    v.setUint32(4, 24, true)
    v.setUint32(8, 0, true)
    v.setUint32(12, types.length, true)
    v.setUint32(16, types.length, true)
    v.setUint32(20, strings.length, true)
    out.set(types, 24)
    out.set(strings, 24 + types.length)
    return out
  }
}
/**
 * The C dump's worst case from issue #11: `int`, then `depth` anonymous unions of three members
 * each, all of the previous one; then `struct top { x }`. A C dump spells the innermost union 3^(depth-1) times.
 */
export function nestedUnions(depth: number): Uint8Array {
  const b = new BtfBuilder()
  let inner = b.int()
  for (let d = 0; d < depth; d++) {
    const members = [0, 1, 2].map((k) => ({ name: d === 0 ? `m${k}` : '', type: inner, bitOffset: 0 }))
    inner = b.union('', 4, members)
  }
  b.struct('top', 4, [{ name: 'x', type: inner, bitOffset: 0 }])
  return b.build()
}
