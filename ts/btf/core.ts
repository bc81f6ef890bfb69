/**
 * CO-RE ("compile once, run everywhere") relocations against a target BTF given by the caller
 * (for example the BTF of the kernel whose structures the program reads). The semantics are
 * libbpf's (relo_core.c): the access string is resolved in the object's BTF, candidate target
 * types are found by "essential" name (without a `___flavor` suffix), fields are matched by name
 * through anonymous members, and the instruction's immediate, offset or load size is rewritten.
 * A relocation that cannot be satisfied poisons the instruction (`call 0xbad2310`), as libbpf
 * does, so the program fails verification only if it can reach it.
 */
import { EbpfError } from '../errors.js'
import type { Btf } from './btf.js'
import { CORE_RELO_KINDS } from './ext.js'
import type { BtfType } from './types.js'

export interface CoreRelocation {
  /** Instruction index in the program. */
  insn: number
  typeId: number
  access: string
  kind: number
}

const K = {
  FIELD_BYTE_OFFSET: 0,
  FIELD_BYTE_SIZE: 1,
  FIELD_EXISTS: 2,
  FIELD_SIGNED: 3,
  FIELD_LSHIFT_U64: 4,
  FIELD_RSHIFT_U64: 5,
  TYPE_ID_LOCAL: 6,
  TYPE_ID_TARGET: 7,
  TYPE_EXISTS: 8,
  TYPE_SIZE: 9,
  ENUMVAL_EXISTS: 10,
  ENUMVAL_VALUE: 11,
  TYPE_MATCHES: 12,
} as const

const POISON_IMM = 0xbad2310
const MAX_SPEC_LEN = 64
const MAX_DEPTH = 32

const isFieldKind = (k: number) => k <= K.FIELD_RSHIFT_U64
const isTypeKind = (k: number) => k >= K.TYPE_ID_LOCAL && k <= K.TYPE_SIZE
const isEnumvalKind = (k: number) => k === K.ENUMVAL_EXISTS || k === K.ENUMVAL_VALUE

interface Accessor {
  /** The (resolved) type the accessor indexes into. */
  typeId: number
  idx: number
  /** Member or enumerator name; undefined for array indexes. */
  name?: string
}

interface Spec {
  btf: Btf
  rootId: number
  acc: Accessor[]
  raw: number[]
  bitOffset: number
}

interface Result {
  orig: bigint
  value: bigint
  poison: boolean
  validate: boolean
  origSize: number
  newSize: number
  failMemSizeAdjust: boolean
}

class CoreError extends EbpfError {
  constructor(message: string) {
    super('EINVAL', message)
  }
}

/** Type comparisons one object's relocations may make; a relocation against vmlinux makes hundreds. */
const MAX_MATCH_STEPS = 4_000_000

/**
 * The comparison budget of one object's CO-RE relocations. Matching recurses through members and
 * parameters of both BTFs, and a hostile BTF (a struct whose members are all that struct's
 * neighbours, prototypes taking themselves) could make it exponential; the budget turns that
 * into an `E2BIG`.
 */
export class CoreBudget {
  private steps = 0

  step(): void {
    if (++this.steps > MAX_MATCH_STEPS) {
      throw new EbpfError('E2BIG', `CO-RE type matching took more than ${MAX_MATCH_STEPS} steps`)
    }
  }
}

/** The budget of the relocation being matched (set by applyCoreRelocations). */
let budget = new CoreBudget()

/** Length of a name without its `___flavor` suffix. */
function essentialName(name: string): string {
  for (let i = name.length - 5; i >= 0; i--) {
    if (name.startsWith('___', i) && name[i + 3] !== '_') return name.slice(0, i)
  }
  return name
}

function isComposite(t: BtfType): boolean {
  return t.kind === 'STRUCT' || t.kind === 'UNION'
}

function isAnyEnum(t: BtfType): boolean {
  return t.kind === 'ENUM' || t.kind === 'ENUM64'
}

function kindsCompat(a: BtfType, b: BtfType): boolean {
  return a.kind === b.kind || (isAnyEnum(a) && isAnyEnum(b))
}

const candidateIndex = new WeakMap<Btf, Map<string, BtfType[]>>()

/** Target types by essential name, built once per target BTF. */
function candidatesByName(target: Btf): Map<string, BtfType[]> {
  let index = candidateIndex.get(target)
  if (!index) {
    index = new Map()
    for (const t of target.types) {
      if (t.id === 0 || t.name === '') continue
      const key = essentialName(t.name)
      const list = index.get(key)
      if (list) list.push(t)
      else index.set(key, [t])
    }
    candidateIndex.set(target, index)
  }
  return index
}

function parseSpec(btf: Btf, rootId: number, access: string, kind: number): Spec {
  const spec: Spec = { btf, rootId, acc: [], raw: [], bitOffset: 0 }
  if (isTypeKind(kind) || kind === K.TYPE_MATCHES) {
    if (access !== '0') throw new CoreError(`type-based relocation needs access string '0', got '${access}'`)
    return spec
  }
  if (!/^\d+(:\d+)*$/.test(access)) throw new CoreError(`malformed access string '${access}'`)
  spec.raw = access.split(':').map(Number)
  if (spec.raw.length > MAX_SPEC_LEN) throw new CoreError(`access string '${access}' is too long`)
  let t = btf.resolve(rootId)
  let id = t.id
  const first = spec.raw[0]!
  spec.acc.push({ typeId: id, idx: first })
  if (isEnumvalKind(kind)) {
    if (!isAnyEnum(t) || spec.raw.length > 1 || first >= t.vlen) {
      throw new CoreError(`enum value relocation '${access}' does not name an enumerator of type #${rootId}`)
    }
    spec.acc[0]!.name = t.values![first]!.name
    return spec
  }
  if (!isFieldKind(kind)) throw new CoreError(`unknown CO-RE relocation kind ${kind}`)
  spec.bitOffset = first * btf.sizeOf(id) * 8
  for (let i = 1; i < spec.raw.length; i++) {
    t = btf.resolve(id)
    id = t.id
    const idx = spec.raw[i]!
    if (isComposite(t)) {
      if (idx >= t.vlen) throw new CoreError(`access '${access}': member #${idx} of type #${id} does not exist`)
      const m = t.members![idx]!
      spec.bitOffset += m.bitOffset
      if (m.name !== '') spec.acc.push({ typeId: id, idx, name: m.name })
      id = m.type
    } else if (t.kind === 'ARRAY') {
      const elem = btf.resolve(t.elemType!)
      const flex = isFlexArray(btf, spec.acc[spec.acc.length - 1], t)
      if (!flex && idx >= t.nelems!) throw new CoreError(`access '${access}': index ${idx} is out of bounds`)
      id = elem.id
      spec.acc.push({ typeId: id, idx })
      spec.bitOffset += idx * btf.sizeOf(id) * 8
    } else {
      throw new CoreError(`access '${access}' goes through a ${t.kind}`)
    }
  }
  return spec
}

/** An array with no elements that is the last member of its struct (`char data[]`). */
function isFlexArray(btf: Btf, acc: Accessor | undefined, arr: BtfType): boolean {
  if (!acc?.name || arr.nelems! > 0) return false
  const t = btf.typeById(acc.typeId)
  return acc.idx === t.vlen - 1
}

function fieldsCompat(local: Btf, lid: number, target: Btf, tid: number, depth = 0): boolean {
  if (depth > MAX_DEPTH) throw new CoreError('field types nest too deeply')
  budget.step()
  const l = local.resolve(lid)
  const t = target.resolve(tid)
  if (isComposite(l) && isComposite(t)) return true
  if (!kindsCompat(l, t)) return false
  switch (l.kind) {
    case 'PTR':
    case 'FLOAT':
      return true
    case 'FWD':
    case 'ENUM':
    case 'ENUM64': {
      const ln = essentialName(l.name)
      const tn = essentialName(t.name)
      return ln === '' || tn === '' || ln === tn
    }
    case 'INT':
      return l.bitsOffset === 0 && t.bitsOffset === 0
    case 'ARRAY':
      return fieldsCompat(local, l.elemType!, target, t.elemType!, depth + 1)
    default:
      return false
  }
}

function typesCompat(local: Btf, lid: number, target: Btf, tid: number, level = 32): boolean {
  if (!kindsCompat(local.typeById(lid), target.typeById(tid))) return false
  for (let depth = 32; depth >= 0; depth--) {
    budget.step()
    const l = local.resolve(lid)
    const t = target.resolve(tid)
    if (!kindsCompat(l, t)) return false
    switch (l.kind) {
      case 'STRUCT':
      case 'UNION':
      case 'ENUM':
      case 'ENUM64':
      case 'FWD':
        return true
      case 'INT':
        return l.bitsOffset === 0 && t.bitsOffset === 0
      case 'PTR':
        lid = l.type!
        tid = t.type!
        continue
      case 'ARRAY':
        lid = l.elemType!
        tid = t.elemType!
        continue
      case 'FUNC_PROTO': {
        if (l.vlen !== t.vlen) return false
        if (level <= 0) throw new CoreError('function prototypes nest too deeply')
        for (let i = 0; i < l.vlen; i++) {
          const lp = local.resolve(l.params![i]!.type).id
          const tp = target.resolve(t.params![i]!.type).id
          if (!typesCompat(local, lp, target, tp, level - 1)) return false
        }
        lid = local.resolve(l.type!).id
        tid = target.resolve(t.type!).id
        continue
      }
      default:
        return false
    }
  }
  throw new CoreError('type references nest too deeply')
}

const nameIndexes = new WeakMap<readonly { name: string }[], Map<string, { name: string }[]>>()

/**
 * Members or enumerators by essential name (anonymous ones under ''), built once per list: the
 * candidates `namesMatch` can accept for a local name, so that matching two lists of n names
 * costs O(n) lookups instead of n^2 comparisons.
 */
function byEssentialName<T extends { name: string }>(list: readonly T[]): Map<string, T[]> {
  let index = nameIndexes.get(list) as Map<string, T[]> | undefined
  if (!index) {
    index = new Map()
    for (const x of list) {
      const key = essentialName(x.name)
      const same = index.get(key)
      if (same) same.push(x)
      else index.set(key, [x])
    }
    nameIndexes.set(list, index)
  }
  return index
}

/** Names equal up to a `___flavor` suffix; an anonymous target matches only an anonymous local. */
function namesMatch(local: string, target: string): boolean {
  if (target === '') return local === ''
  return essentialName(local) === essentialName(target)
}

/**
 * The stricter `type_matches` relation (libbpf's __bpf_core_types_match): same shape, names
 * matching up to flavors, every local member and enumerator present in the target, equal int sizes
 * and signedness, equal array lengths; behind a pointer a struct may match a forward declaration.
 */
function typesMatch(local: Btf, lid: number, target: Btf, tid: number, behindPtr: boolean, level: number): boolean {
  if (level <= 0) throw new CoreError('types nest too deeply for type_matches')
  for (let depth = 32; depth >= 0; depth--) {
    budget.step()
    const l = local.resolve(lid)
    const t = target.resolve(tid)
    if (!namesMatch(l.name, t.name)) return false
    switch (l.kind) {
      case 'VOID':
        return t.kind === 'VOID'
      case 'FWD':
        if (behindPtr && t.kind !== 'FWD')
          return (t.kind === 'STRUCT' && !l.fwdUnion) || (t.kind === 'UNION' && !!l.fwdUnion)
        return t.kind === 'FWD' && l.fwdUnion === t.fwdUnion
      case 'ENUM':
      case 'ENUM64': {
        if (!isAnyEnum(t) || l.size !== t.size || l.vlen > t.vlen) return false
        const tValues = byEssentialName(t.values!)
        return l.values!.every((lv) => {
          budget.step()
          return (tValues.get(essentialName(lv.name)) ?? []).some((tv) => namesMatch(lv.name, tv.name))
        })
      }
      case 'STRUCT':
      case 'UNION':
        if (behindPtr) {
          if (l.kind === t.kind) return true
          return t.kind === 'FWD' && (l.kind === 'UNION') === !!t.fwdUnion
        }
        if (l.kind !== t.kind || l.vlen > t.vlen) return false
        {
          const tMembers = byEssentialName(t.members!)
          return l.members!.every((lm) => {
            budget.step()
            return (tMembers.get(essentialName(lm.name)) ?? []).some(
              (tm) => namesMatch(lm.name, tm.name) && typesMatch(local, lm.type, target, tm.type, behindPtr, level - 1),
            )
          })
        }
      case 'INT':
        return t.kind === 'INT' && l.size === t.size && (l.encoding! & 1) === (t.encoding! & 1)
      case 'PTR':
        if (t.kind !== 'PTR') return false
        behindPtr = true
        lid = l.type!
        tid = t.type!
        continue
      case 'ARRAY':
        if (t.kind !== 'ARRAY' || l.nelems !== t.nelems) return false
        lid = l.elemType!
        tid = t.elemType!
        continue
      case 'FUNC_PROTO':
        if (t.kind !== 'FUNC_PROTO' || l.vlen !== t.vlen) return false
        for (let i = 0; i < l.vlen; i++) {
          if (!typesMatch(local, l.params![i]!.type, target, t.params![i]!.type, behindPtr, level - 1)) return false
        }
        lid = l.type!
        tid = t.type!
        continue
      default:
        return false
    }
  }
  throw new CoreError('type references nest too deeply for type_matches')
}

/** Finds the local member `acc` in target type `tid` (through anonymous members); extends `spec`. */
function matchMember(local: Btf, acc: Accessor, target: Btf, tid: number, spec: Spec, depth = 0): number | undefined {
  if (depth > MAX_DEPTH) throw new CoreError('anonymous members nest too deeply')
  const t = target.resolve(tid)
  if (!isComposite(t)) return undefined
  const localMember = local.typeById(acc.typeId).members![acc.idx]!
  for (let i = 0; i < t.vlen; i++) {
    budget.step()
    const m = t.members![i]!
    if (spec.raw.length >= MAX_SPEC_LEN) throw new CoreError('target access path is too long')
    spec.bitOffset += m.bitOffset
    spec.raw.push(i)
    if (m.name === '') {
      const found = matchMember(local, acc, target, m.type, spec, depth + 1)
      if (found !== undefined) return found
    } else if (m.name === localMember.name) {
      if (!fieldsCompat(local, localMember.type, target, m.type)) {
        spec.bitOffset -= m.bitOffset
        spec.raw.pop()
        return undefined
      }
      spec.acc.push({ typeId: t.id, idx: i, name: m.name })
      return m.type
    }
    spec.bitOffset -= m.bitOffset
    spec.raw.pop()
  }
  return undefined
}

function matchSpec(local: Spec, kind: number, target: Btf, candId: number): Spec | undefined {
  const spec: Spec = { btf: target, rootId: candId, acc: [], raw: [], bitOffset: 0 }
  if (kind === K.TYPE_MATCHES) return typesMatch(local.btf, local.rootId, target, candId, false, 32) ? spec : undefined
  if (isTypeKind(kind)) return typesCompat(local.btf, local.rootId, target, candId) ? spec : undefined
  if (isEnumvalKind(kind)) {
    const t = target.resolve(candId)
    if (!isAnyEnum(t)) return undefined
    const want = essentialName(local.acc[0]!.name!)
    const i = t.values!.findIndex((v) => essentialName(v.name) === want)
    if (i < 0) return undefined
    spec.acc.push({ typeId: t.id, idx: i, name: t.values![i]!.name })
    spec.raw.push(i)
    return spec
  }
  let tid = candId
  for (let i = 0; i < local.acc.length; i++) {
    const la = local.acc[i]!
    const t = target.resolve(tid)
    tid = t.id
    if (la.name !== undefined) {
      const next = matchMember(local.btf, la, target, tid, spec)
      if (next === undefined) return undefined
      tid = next
      continue
    }
    if (i > 0) {
      if (t.kind !== 'ARRAY') return undefined
      const flex = isFlexArray(target, spec.acc[spec.acc.length - 1], t)
      if (!flex && la.idx >= t.nelems!) return undefined
      tid = target.resolve(t.elemType!).id
    }
    spec.acc.push({ typeId: tid, idx: la.idx })
    spec.raw.push(la.idx)
    spec.bitOffset += la.idx * target.sizeOf(tid) * 8
  }
  return spec
}

interface FieldValue {
  value: bigint
  size: number
  typeId: number
  validate: boolean
  poison: boolean
}

function fieldValue(kind: number, spec: Spec | undefined): FieldValue {
  const out: FieldValue = { value: 0n, size: 0, typeId: 0, validate: true, poison: false }
  if (kind === K.FIELD_EXISTS) {
    out.value = spec ? 1n : 0n
    return out
  }
  if (!spec) {
    out.poison = true
    return out
  }
  const btf = spec.btf
  const acc = spec.acc[spec.acc.length - 1]!
  if (acc.name === undefined) {
    // An array element: only its offset and size can be asked for.
    if (kind === K.FIELD_BYTE_OFFSET) {
      out.value = BigInt(Math.floor(spec.bitOffset / 8))
      let t = btf.resolve(acc.typeId)
      while (t.kind === 'ARRAY') t = btf.resolve(t.elemType!)
      out.size = btf.sizeOf(t.id)
      out.typeId = acc.typeId
    } else if (kind === K.FIELD_BYTE_SIZE) {
      out.value = BigInt(btf.sizeOf(acc.typeId))
    } else {
      throw new CoreError(`${CORE_RELO_KINDS[kind]} cannot apply to an array element`)
    }
    return out
  }
  const owner = btf.typeById(acc.typeId)
  const m = owner.members![acc.idx]!
  const mt = btf.resolve(m.type)
  const bitOff = spec.bitOffset
  let bitSize = m.bitfieldSize
  const bitfield = bitSize > 0
  let byteSize: number
  let byteOff: number
  if (bitfield) {
    // The smallest naturally aligned load (up to 8 bytes) that covers the bitfield.
    byteSize = mt.size ?? 0
    if ((mt.kind !== 'INT' && !isAnyEnum(mt)) || ![1, 2, 4, 8].includes(byteSize)) {
      throw new CoreError(`bitfield '${m.name}' has a ${mt.kind} of ${byteSize} bytes as its type`)
    }
    byteOff = Math.floor(bitOff / 8 / byteSize) * byteSize
    while (bitOff + bitSize - byteOff * 8 > byteSize * 8) {
      if (byteSize >= 8) throw new CoreError(`bitfield '${m.name}' cannot be loaded with one access`)
      byteSize *= 2
      byteOff = Math.floor(bitOff / 8 / byteSize) * byteSize
    }
  } else {
    byteSize = btf.sizeOf(mt.id)
    byteOff = Math.floor(bitOff / 8)
    bitSize = byteSize * 8
  }
  // Compilers may lay bitfields out differently than their BTF suggests: only signedness and the
  // right shift of a bitfield are unambiguous enough to check against the instruction.
  out.validate = !bitfield
  switch (kind) {
    case K.FIELD_BYTE_OFFSET: {
      out.value = BigInt(byteOff)
      if (!bitfield) {
        let t = btf.resolve(mt.id)
        while (t.kind === 'ARRAY') t = btf.resolve(t.elemType!)
        out.size = btf.sizeOf(t.id)
        out.typeId = mt.id
      }
      break
    }
    case K.FIELD_BYTE_SIZE:
      out.value = BigInt(byteSize)
      break
    case K.FIELD_SIGNED:
      out.value = (isAnyEnum(mt) && mt.kindFlag) || (mt.kind === 'INT' && (mt.encoding! & 1) !== 0) ? 1n : 0n
      out.validate = true
      break
    case K.FIELD_LSHIFT_U64:
      out.value = BigInt(64 - (bitOff + bitSize - byteOff * 8))
      break
    case K.FIELD_RSHIFT_U64:
      out.value = BigInt(64 - bitSize)
      out.validate = true
      break
    default:
      throw new CoreError(`unknown field relocation kind ${kind}`)
  }
  return out
}

function typeValue(kind: number, spec: Spec | undefined): { value: bigint; validate: boolean } {
  if (!spec) return { value: 0n, validate: true }
  switch (kind) {
    case K.TYPE_ID_TARGET:
      return { value: BigInt(spec.rootId), validate: false }
    case K.TYPE_EXISTS:
    case K.TYPE_MATCHES:
      return { value: 1n, validate: true }
    case K.TYPE_SIZE:
      return { value: BigInt(spec.btf.sizeOf(spec.rootId)), validate: true }
    default:
      throw new CoreError(`unknown type relocation kind ${kind}`)
  }
}

function enumValue(kind: number, spec: Spec | undefined): { value: bigint; poison: boolean } {
  if (kind === K.ENUMVAL_EXISTS) return { value: spec ? 1n : 0n, poison: false }
  if (!spec) return { value: 0n, poison: true }
  const t = spec.btf.typeById(spec.acc[0]!.typeId)
  return { value: BigInt.asUintN(64, t.values![spec.acc[0]!.idx]!.value), poison: false }
}

function calc(kind: number, local: Spec, target: Spec | undefined): Result {
  const res: Result = {
    orig: 0n,
    value: 0n,
    poison: false,
    validate: true,
    origSize: 0,
    newSize: 0,
    failMemSizeAdjust: false,
  }
  if (isFieldKind(kind)) {
    const o = fieldValue(kind, local)
    const n = fieldValue(kind, target)
    res.orig = o.value
    res.validate = o.validate
    res.origSize = o.size
    res.value = n.value
    res.newSize = n.size
    res.poison = n.poison
    if (!res.poison && res.origSize !== res.newSize) {
      // A load of a field whose size changed can be resized only for pointers and unsigned ints.
      const ot = local.btf.resolve(o.typeId)
      const nt = target!.btf.resolve(n.typeId)
      const unsignedInts = ot.kind === 'INT' && nt.kind === 'INT' && ot.encoding !== 1 && nt.encoding !== 1
      res.failMemSizeAdjust = !(ot.kind === 'PTR' && nt.kind === 'PTR') && !unsignedInts
    }
  } else if (isTypeKind(kind) || kind === K.TYPE_MATCHES) {
    const o = typeValue(kind, local)
    res.orig = o.value
    res.validate = o.validate
    res.value = typeValue(kind, target).value
  } else {
    res.orig = enumValue(kind, local).value
    const n = enumValue(kind, target)
    res.value = n.value
    res.poison = n.poison
  }
  return res
}

function poison(view: DataView, o: number): void {
  view.setUint8(o, 0x85)
  view.setUint8(o + 1, 0)
  view.setInt16(o + 2, 0, true)
  view.setInt32(o + 4, POISON_IMM, true)
}

const SIZE_BITS: Record<number, number> = { 1: 0x10, 2: 0x08, 4: 0x00, 8: 0x18 }
const SIZE_BYTES: Record<number, number> = { 16: 1, 8: 2, 0: 4, 24: 8 }

function patch(code: Uint8Array, insn: number, res: Result, where: string): void {
  const view = new DataView(code.buffer, code.byteOffset, code.byteLength)
  const o = insn * 8
  if (o + 8 > code.length) throw new CoreError(`${where}: instruction ${insn} is outside the program`)
  const op = code[o]!
  const cls = op & 7
  const isLdImm64 = op === 0x18
  if (res.poison) {
    if (isLdImm64 && o + 16 <= code.length) poison(view, o + 8)
    poison(view, o)
    return
  }
  switch (cls) {
    case 4: // ALU
    case 7: {
      // ALU64
      if ((op & 0x08) !== 0) throw new CoreError(`${where}: ALU instruction ${insn} uses a register source`)
      const imm = view.getInt32(o + 4, true)
      if (res.validate && BigInt(imm) !== res.orig) {
        throw new CoreError(`${where}: instruction ${insn} has immediate ${imm}, expected ${res.orig}`)
      }
      view.setInt32(o + 4, Number(BigInt.asIntN(32, res.value)), true)
      return
    }
    case 1: // LDX
    case 2: // ST
    case 3: {
      // STX
      const off = view.getInt16(o + 2, true)
      if (res.validate && BigInt(off) !== res.orig) {
        throw new CoreError(`${where}: instruction ${insn} has offset ${off}, expected ${res.orig}`)
      }
      if (res.value > 0x7fffn) throw new CoreError(`${where}: offset ${res.value} does not fit instruction ${insn}`)
      if (res.failMemSizeAdjust) {
        if (isLdImm64 && o + 16 <= code.length) poison(view, o + 8)
        poison(view, o)
        return
      }
      view.setInt16(o + 2, Number(res.value), true)
      if (res.newSize !== res.origSize) {
        if (SIZE_BYTES[op & 0x18] !== res.origSize) {
          throw new CoreError(
            `${where}: instruction ${insn} accesses ${SIZE_BYTES[op & 0x18]} bytes, expected ${res.origSize}`,
          )
        }
        const bits = SIZE_BITS[res.newSize]
        if (bits === undefined) throw new CoreError(`${where}: cannot access ${res.newSize} bytes in one instruction`)
        code[o] = (op & 0xe7) | bits
      }
      return
    }
    case 0: {
      // LD: only lddw with a plain 64-bit immediate
      if (!isLdImm64 || o + 16 > code.length || code[o + 1]! >> 4 !== 0 || view.getInt16(o + 2, true) !== 0) {
        throw new CoreError(`${where}: instruction ${insn} is not a plain lddw`)
      }
      const imm = BigInt.asUintN(64, (BigInt(view.getInt32(o + 12, true)) << 32n) | BigInt(view.getUint32(o + 4, true)))
      if (res.validate && imm !== BigInt.asUintN(64, res.orig)) {
        throw new CoreError(`${where}: lddw ${insn} loads ${imm}, expected ${res.orig}`)
      }
      const v = BigInt.asUintN(64, res.value)
      view.setUint32(o + 4, Number(v & 0xffffffffn), true)
      view.setUint32(o + 12, Number(v >> 32n), true)
      return
    }
    default:
      throw new CoreError(`${where}: instruction ${insn} (opcode 0x${op.toString(16)}) cannot be CO-RE relocated`)
  }
}

/**
 * Applies CO-RE relocations to `code` (a program's instructions) in place. `local` is the
 * object's BTF, `target` the BTF of the system the program is meant for.
 */
export function applyCoreRelocations(
  code: Uint8Array,
  relocations: CoreRelocation[],
  local: Btf,
  target: Btf,
  program: string,
  steps: CoreBudget = new CoreBudget(),
): void {
  budget = steps
  for (const r of relocations) {
    const kindName = CORE_RELO_KINDS[r.kind] ?? `kind ${r.kind}`
    const where = `program '${program}': CO-RE relocation (${kindName}, access '${r.access}') at instruction ${r.insn}`
    if (r.kind >= CORE_RELO_KINDS.length) throw new EbpfError('ENOTSUPP', `${where}: unknown relocation kind`)
    const localType = local.typeById(r.typeId)
    let spec: Spec
    try {
      spec = parseSpec(local, r.typeId, r.access, r.kind)
    } catch (e) {
      throw new CoreError(`${where}: ${(e as Error).message}`)
    }
    let res: Result
    if (r.kind === K.TYPE_ID_LOCAL) {
      res = {
        orig: BigInt(r.typeId),
        value: BigInt(r.typeId),
        poison: false,
        validate: false,
        origSize: 0,
        newSize: 0,
        failMemSizeAdjust: false,
      }
    } else {
      if (localType.name === '') throw new EbpfError('ENOTSUPP', `${where}: anonymous types cannot be relocated`)
      const wanted = essentialName(localType.name)
      const cands = (candidatesByName(target).get(wanted) ?? []).filter((c) => kindsCompat(c, localType))
      let chosen: { spec: Spec; res: Result } | undefined
      for (const c of cands) {
        const m = matchSpec(spec, r.kind, target, c.id)
        if (!m) continue
        const cr = calc(r.kind, spec, m)
        if (!chosen) chosen = { spec: m, res: cr }
        else if (m.bitOffset !== chosen.spec.bitOffset) {
          throw new CoreError(
            `${where}: candidates disagree on the field offset (${m.bitOffset} vs ${chosen.spec.bitOffset} bits)`,
          )
        } else if (cr.poison !== chosen.res.poison || cr.value !== chosen.res.value) {
          throw new CoreError(`${where}: candidates disagree on the result (${cr.value} vs ${chosen.res.value})`)
        }
      }
      res = chosen ? chosen.res : calc(r.kind, spec, undefined)
    }
    patch(code, r.insn, res, where)
  }
}
