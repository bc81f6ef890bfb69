/**
 * Parser for a `.BTF` blob (the section in an object, or a raw file such as
 * /sys/kernel/btf/vmlinux): header, type section, string section. Layout from the kernel's
 * Documentation/bpf/btf.rst; checks follow what libbpf refuses, so bad input is EINVAL with a
 * message naming the type and field.
 */

import { ByteReader } from '../binary/bytes.js'
import { FormatError } from '../errors.js'
import {
  BTF_KIND,
  type BtfEnumValue,
  type BtfMember,
  type BtfParam,
  type BtfType,
  type BtfVarSecinfo,
  KIND_NAMES,
  VOID_TYPE,
} from './types.js'

export const BTF_MAGIC = 0xeb9f

export interface ParsedBtf {
  /** Index = type id; [0] is void. */
  types: BtfType[]
  /** The string section, for .BTF.ext string references. */
  strings: ByteReader
}

/** Reads a string from the BTF string section; offset 0 is the empty name. */
export function btfString(strings: ByteReader, off: number, field: string): string {
  if (off === 0) return ''
  // Names repeat a lot (member names, file names in line info): decode each offset once.
  let cache = stringCaches.get(strings)
  if (!cache) {
    cache = new Map()
    stringCaches.set(strings, cache)
  }
  const hit = cache.get(off)
  if (hit !== undefined) return hit
  if (off >= strings.length) strings.fail(`${field}: string offset ${off} is past the string section`, 0)
  const s = strings.cstring(off, field)
  cache.set(off, s)
  return s
}

const stringCaches = new WeakMap<ByteReader, Map<number, string>>()

/** Parses `.BTF` bytes; `base` is the file offset of `bytes` for error messages. */
export function parseBtf(bytes: Uint8Array, base = 0): ParsedBtf {
  const r = new ByteReader(bytes, '.BTF', base)
  r.need(0, 24, 'BTF header')
  const magic = r.u16(0)
  if (magic === 0x9feb) r.fail('big-endian BTF is not supported', 0)
  if (magic !== BTF_MAGIC) r.fail(`bad magic 0x${magic.toString(16)} (expected 0xeb9f)`, 0)
  const version = r.u8(2)
  if (version !== 1) r.fail(`unsupported BTF version ${version}`, 2)
  const hdrLen = r.u32(4, 'hdr_len')
  if (hdrLen < 24) r.fail(`header length ${hdrLen} is shorter than the 24-byte header`, 4)
  r.need(0, hdrLen, 'BTF header')
  // A longer header than we know must carry zeros only, as the kernel demands.
  for (let o = 24; o < hdrLen; o++) if (r.u8(o) !== 0) r.fail('unknown non-zero fields in an extended header', o)
  const typeOff = r.u32(8, 'type_off')
  const typeLen = r.u32(12, 'type_len')
  const strOff = r.u32(16, 'str_off')
  const strLen = r.u32(20, 'str_len')
  if (typeOff % 4 !== 0) r.fail(`type section offset ${typeOff} is not 4-byte aligned`, 8)
  const typesR = r.slice(hdrLen + typeOff, typeLen, '.BTF type section')
  const strings = r.slice(hdrLen + strOff, strLen, '.BTF string section')
  if (typeOff < strOff ? typeOff + typeLen > strOff : strOff + strLen > typeOff) {
    r.fail('type and string sections overlap', 8)
  }
  if (strLen === 0 || strings.u8(0) !== 0) strings.fail('string section must start with an empty string', 0)
  if (strings.u8(strLen - 1) !== 0) strings.fail('string section is not NUL-terminated', strLen - 1)

  const types: BtfType[] = [VOID_TYPE]
  let o = 0
  while (o < typeLen) {
    const t = parseType(typesR, o, types.length, strings)
    types.push(t.type)
    o = t.next
  }
  checkReferences(types, typesR)
  return { types, strings }
}

function parseType(r: ByteReader, o: number, id: number, strings: ByteReader): { type: BtfType; next: number } {
  const where = `type #${id}`
  const nameOff = r.u32(o, `${where} name_off`)
  const info = r.u32(o + 4, `${where} info`)
  const sizeOrType = r.u32(o + 8, `${where} size/type`)
  const kindNum = (info >>> 24) & 0x1f
  const vlen = info & 0xffff
  const kindFlag = info >>> 31 === 1
  if (kindNum === 0 || kindNum > BTF_KIND.ENUM64) r.fail(`${where} has unknown kind ${kindNum}`, o + 4)
  if ((info & 0x60ff0000) !== 0) r.fail(`${where} has reserved info bits set (0x${info.toString(16)})`, o + 4)
  const kind = KIND_NAMES[kindNum]!
  const name = btfString(strings, nameOff, `${where} name`)
  const t: BtfType = { id, kind, name, info, kindFlag, vlen }
  let p = o + 12
  const field = (f: string) => `${where} (${kind}${name ? ` '${name}'` : ''}) ${f}`
  switch (kindNum) {
    case BTF_KIND.INT: {
      t.size = sizeOrType
      const v = r.u32(p, field('int data'))
      p += 4
      t.encoding = (v >>> 24) & 0x0f
      t.bitsOffset = (v >>> 16) & 0xff
      t.bits = v & 0xff
      if ((v & 0xf0000000) !== 0 || (v & 0x0000ff00) !== 0) r.fail(`${field('int data')} has reserved bits set`, p - 4)
      if (![1, 2, 4, 8, 16].includes(sizeOrType))
        r.fail(`${field('size')} ${sizeOrType} is not 1, 2, 4, 8 or 16`, o + 8)
      if (t.bits === 0 || t.bits > 128 || t.bitsOffset + t.bits > sizeOrType * 8) {
        r.fail(`${field('bits')} ${t.bits} at bit offset ${t.bitsOffset} do not fit ${sizeOrType} bytes`, p - 4)
      }
      break
    }
    case BTF_KIND.PTR:
    case BTF_KIND.TYPEDEF:
    case BTF_KIND.VOLATILE:
    case BTF_KIND.CONST:
    case BTF_KIND.RESTRICT:
    case BTF_KIND.TYPE_TAG:
      t.type = sizeOrType
      break
    case BTF_KIND.FUNC:
      t.type = sizeOrType
      t.linkage = vlen
      break
    case BTF_KIND.FWD:
      t.fwdUnion = kindFlag
      break
    case BTF_KIND.FLOAT:
      t.size = sizeOrType
      if (![2, 4, 8, 12, 16].includes(sizeOrType)) r.fail(`${field('size')} ${sizeOrType} is not a float size`, o + 8)
      break
    case BTF_KIND.ARRAY:
      t.elemType = r.u32(p, field('elem type'))
      t.indexType = r.u32(p + 4, field('index type'))
      t.nelems = r.u32(p + 8, field('nelems'))
      p += 12
      break
    case BTF_KIND.STRUCT:
    case BTF_KIND.UNION: {
      t.size = sizeOrType
      const members: BtfMember[] = []
      r.need(p, vlen * 12, field(`${vlen} members`))
      for (let i = 0; i < vlen; i++, p += 12) {
        const mName = btfString(strings, r.u32(p), field(`member #${i} name`))
        const mType = r.u32(p + 4)
        const off = r.u32(p + 8)
        members.push({
          name: mName,
          type: mType,
          bitOffset: kindFlag ? off & 0xffffff : off,
          bitfieldSize: kindFlag ? off >>> 24 : 0,
        })
      }
      t.members = members
      break
    }
    case BTF_KIND.ENUM: {
      t.size = sizeOrType
      t.signed = kindFlag
      const values: BtfEnumValue[] = []
      r.need(p, vlen * 8, field(`${vlen} values`))
      for (let i = 0; i < vlen; i++, p += 8) {
        const vName = btfString(strings, r.u32(p), field(`value #${i} name`))
        values.push({ name: vName, value: BigInt(kindFlag ? r.i32(p + 4) : r.u32(p + 4)) })
      }
      t.values = values
      break
    }
    case BTF_KIND.ENUM64: {
      t.size = sizeOrType
      t.signed = kindFlag
      const values: BtfEnumValue[] = []
      r.need(p, vlen * 12, field(`${vlen} values`))
      for (let i = 0; i < vlen; i++, p += 12) {
        const vName = btfString(strings, r.u32(p), field(`value #${i} name`))
        const raw = (BigInt(r.u32(p + 8)) << 32n) | BigInt(r.u32(p + 4))
        values.push({ name: vName, value: kindFlag ? BigInt.asIntN(64, raw) : raw })
      }
      t.values = values
      break
    }
    case BTF_KIND.FUNC_PROTO: {
      t.type = sizeOrType
      const params: BtfParam[] = []
      r.need(p, vlen * 8, field(`${vlen} parameters`))
      for (let i = 0; i < vlen; i++, p += 8) {
        params.push({ name: btfString(strings, r.u32(p), field(`param #${i} name`)), type: r.u32(p + 4) })
      }
      t.params = params
      break
    }
    case BTF_KIND.VAR:
      t.type = sizeOrType
      t.linkage = r.u32(p, field('linkage'))
      p += 4
      break
    case BTF_KIND.DATASEC: {
      t.size = sizeOrType
      const vars: BtfVarSecinfo[] = []
      r.need(p, vlen * 12, field(`${vlen} variables`))
      for (let i = 0; i < vlen; i++, p += 12) {
        vars.push({ type: r.u32(p), offset: r.u32(p + 4), size: r.u32(p + 8) })
      }
      t.vars = vars
      break
    }
    case BTF_KIND.DECL_TAG:
      t.type = sizeOrType
      t.componentIdx = r.i32(p, field('component_idx'))
      p += 4
      break
  }
  return { type: t, next: p }
}

/** Every type id a type refers to must exist; a loop of modifiers without a sized end is refused later. */
function checkReferences(types: BtfType[], r: ByteReader): void {
  const n = types.length
  const check = (t: BtfType, id: number | undefined, what: string) => {
    if (id !== undefined && id >= n) {
      throw new FormatError(
        `.BTF: type #${t.id} (${t.kind}) ${what} refers to missing type #${id} (only ${n - 1} types)`,
        r.base,
      )
    }
  }
  for (const t of types) {
    check(t, t.type, 'type')
    check(t, t.elemType, 'element type')
    check(t, t.indexType, 'index type')
    if (t.members) for (const m of t.members) check(t, m.type, `member '${m.name}'`)
    if (t.params) for (const p of t.params) check(t, p.type, `parameter '${p.name}'`)
    if (t.vars) for (const v of t.vars) check(t, v.type, 'variable')
  }
}
