/**
 * The raw dump as JSON, byte for byte what `bpftool -j btf dump file X` prints (seen from bpftool
 * 7.x on Linux 6.18): `{"types":[...]}` with one object per type id from 1, the fields of the raw
 * text under bpftool's names and in its order. 64-bit enumerator values are written as exact
 * integers, as bpftool writes them (JSON readers that use doubles may round the largest).
 */
import { dumpEachType, INT_ENCODINGS, LINKAGE } from './dump-raw.js'
import type { BtfType } from './types.js'

const anon = (name: string) => (name === '' ? '(anon)' : name)

/** A JSON object from ordered fields; bigints as exact integers. */
function object(fields: Array<[string, unknown]>): string {
  return `{${fields.map(([k, v]) => `${JSON.stringify(k)}:${value(v)}`).join(',')}}`
}

function value(v: unknown): string {
  if (typeof v === 'bigint') return v.toString()
  if (Array.isArray(v)) return `[${v.map(value).join(',')}]`
  if (v !== null && typeof v === 'object' && 'json' in v) return (v as { json: string }).json
  return JSON.stringify(v)
}

const raw = (fields: Array<[string, unknown]>) => ({ json: object(fields) })

/**
 * An enumerator's value as bpftool -j writes it: 64-bit ones as they are; a 32-bit one of an
 * unsigned enum sign-extended to 64 bits and printed unsigned (0xefffffff as 18446744073441116159,
 * where the raw text says 4026531839), of a signed enum as the signed number.
 */
function jsonEnumValue(t: BtfType, v: bigint): bigint {
  if (t.kind === 'ENUM64') return v
  const s32 = BigInt.asIntN(32, v)
  return t.signed ? s32 : BigInt.asUintN(64, s32)
}

function typeFields(t: BtfType): Array<[string, unknown]> {
  const f: Array<[string, unknown]> = [
    ['id', t.id],
    ['kind', t.kind],
    ['name', anon(t.name)],
  ]
  switch (t.kind) {
    case 'INT':
      f.push(['size', t.size], ['bits_offset', t.bitsOffset], ['nr_bits', t.bits])
      f.push(['encoding', INT_ENCODINGS[t.encoding!] ?? 'UNKN'])
      break
    case 'PTR':
    case 'CONST':
    case 'VOLATILE':
    case 'RESTRICT':
    case 'TYPEDEF':
    case 'TYPE_TAG':
      f.push(['type_id', t.type])
      break
    case 'ARRAY':
      f.push(['type_id', t.elemType], ['index_type_id', t.indexType], ['nr_elems', t.nelems])
      break
    case 'STRUCT':
    case 'UNION':
      f.push(['size', t.size], ['vlen', t.vlen])
      f.push([
        'members',
        t.members!.map((m) =>
          raw([
            ['name', anon(m.name)],
            ['type_id', m.type],
            ['bits_offset', m.bitOffset],
            ...(m.bitfieldSize ? [['bitfield_size', m.bitfieldSize] as [string, unknown]] : []),
          ]),
        ),
      ])
      break
    case 'ENUM':
    case 'ENUM64':
      f.push(['encoding', t.signed ? 'SIGNED' : 'UNSIGNED'], ['size', t.size], ['vlen', t.vlen])
      f.push([
        'values',
        t.values!.map((v) =>
          raw([
            ['name', anon(v.name)],
            ['val', jsonEnumValue(t, v.value)],
          ]),
        ),
      ])
      break
    case 'FWD':
      f.push(['fwd_kind', t.fwdUnion ? 'union' : 'struct'])
      break
    case 'FUNC':
      f.push(['type_id', t.type], ['linkage', LINKAGE[t.linkage!] ?? '(unknown)'])
      break
    case 'FUNC_PROTO':
      f.push(['ret_type_id', t.type], ['vlen', t.vlen])
      f.push([
        'params',
        t.params!.map((p) =>
          raw([
            ['name', anon(p.name)],
            ['type_id', p.type],
          ]),
        ),
      ])
      break
    case 'VAR':
      f.push(['type_id', t.type], ['linkage', LINKAGE[t.linkage!] ?? '(unknown)'])
      break
    case 'DATASEC':
      f.push(['size', t.size], ['vlen', t.vlen])
      f.push([
        'vars',
        t.vars!.map((v) =>
          raw([
            ['type_id', v.type],
            ['offset', v.offset],
            ['size', v.size],
          ]),
        ),
      ])
      break
    case 'FLOAT':
      f.push(['size', t.size])
      break
    case 'DECL_TAG':
      f.push(['type_id', t.type], ['component_idx', t.componentIdx])
      break
  }
  return f
}

export function dumpJson(types: readonly BtfType[]): string {
  return `{"types":[${dumpEachType(types, 'JSON dump', (t) => object(typeFields(t))).join(',')}]}\n`
}
