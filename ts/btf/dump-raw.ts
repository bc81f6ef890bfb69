/**
 * The raw text dump, line for line what `bpftool btf dump file X` prints (bpftool 7.1,
 * `dump_btf_type` in bpftool's btf.c): one entry per type id from 1, members indented by a tab.
 */
import { FormatError } from '../errors.js'
import { RAW_LINE_CHARS, textLimits } from './limits.js'
import type { BtfType } from './types.js'

export const INT_ENCODINGS: Record<number, string> = { 0: '(none)', 1: 'SIGNED', 2: 'CHAR', 4: 'BOOL' }
export const LINKAGE = ['static', 'global', 'extern']

function q(name: string): string {
  return `'${name === '' ? '(anon)' : name}'`
}

export function dumpTypeRaw(t: BtfType, types: readonly BtfType[]): string {
  let s = `[${t.id}] ${t.kind} ${q(t.name)}`
  switch (t.kind) {
    case 'INT':
      s += ` size=${t.size} bits_offset=${t.bitsOffset} nr_bits=${t.bits} encoding=${INT_ENCODINGS[t.encoding!] ?? 'UNKN'}`
      break
    case 'PTR':
    case 'CONST':
    case 'VOLATILE':
    case 'RESTRICT':
    case 'TYPEDEF':
    case 'TYPE_TAG':
      s += ` type_id=${t.type}`
      break
    case 'ARRAY':
      s += ` type_id=${t.elemType} index_type_id=${t.indexType} nr_elems=${t.nelems}`
      break
    case 'STRUCT':
    case 'UNION':
      s += ` size=${t.size} vlen=${t.vlen}`
      for (const m of t.members!) {
        s += `\n\t${q(m.name)} type_id=${m.type} bits_offset=${m.bitOffset}`
        if (m.bitfieldSize) s += ` bitfield_size=${m.bitfieldSize}`
      }
      break
    case 'ENUM':
    case 'ENUM64': {
      s += ` encoding=${t.signed ? 'SIGNED' : 'UNSIGNED'} size=${t.size} vlen=${t.vlen}`
      const suffix = t.kind === 'ENUM64' ? (t.signed ? 'LL' : 'ULL') : ''
      for (const v of t.values!) s += `\n\t${q(v.name)} val=${v.value}${suffix}`
      break
    }
    case 'FWD':
      s += ` fwd_kind=${t.fwdUnion ? 'union' : 'struct'}`
      break
    case 'FUNC':
      s += ` type_id=${t.type} linkage=${LINKAGE[t.linkage!] ?? '(unknown)'}`
      break
    case 'FUNC_PROTO':
      s += ` ret_type_id=${t.type} vlen=${t.vlen}`
      for (const p of t.params!) s += `\n\t${q(p.name)} type_id=${p.type}`
      break
    case 'VAR':
      s += ` type_id=${t.type}, linkage=${LINKAGE[t.linkage!] ?? '(unknown)'}`
      break
    case 'DATASEC':
      s += ` size=${t.size} vlen=${t.vlen}`
      for (const v of t.vars!) {
        s += `\n\ttype_id=${v.type} offset=${v.offset} size=${v.size}`
        const vt = types[v.type]
        if (vt) s += ` (${vt.id === 0 ? 'UNKNOWN' : vt.kind} ${q(vt.id === 0 ? '' : vt.name)})`
      }
      break
    case 'FLOAT':
      s += ` size=${t.size}`
      break
    case 'DECL_TAG':
      s += ` type_id=${t.type} component_idx=${t.componentIdx}`
      break
  }
  return `${s}\n`
}

/**
 * Every type from id 1 through `dumpType`, joined, refused as E2BIG before the text grows past the
 * limit in proportion to the BTF (a name is printed at every use: see `textLimits`). Shared by the
 * raw text and its JSON form.
 */
export function dumpEachType(types: readonly BtfType[], what: string, dumpType: (t: BtfType) => string): string[] {
  const parts: string[] = []
  const limit = textLimits(types).rawChars
  let chars = 0
  for (let i = 1; i < types.length; i++) {
    const t = types[i]!
    // An upper bound of the type's text before it is built: fixed fields plus every name it prints.
    let names = t.name.length
    for (const m of t.members ?? []) names += m.name.length
    for (const v of t.values ?? []) names += v.name.length
    for (const p of t.params ?? []) names += p.name.length
    for (const v of t.vars ?? []) names += types[v.type]?.name.length ?? 0
    const lines = 1 + (t.members?.length ?? t.values?.length ?? t.params?.length ?? t.vars?.length ?? 0)
    chars += names + RAW_LINE_CHARS * lines
    if (chars > limit) {
      throw new FormatError(
        `BTF is too large for a ${what}: more than ${limit} characters for ${types.length} types`,
        undefined,
        'E2BIG',
      )
    }
    parts.push(dumpType(t))
  }
  return parts
}

export function dumpRaw(types: readonly BtfType[]): string {
  return dumpEachType(types, 'raw dump', (t) => dumpTypeRaw(t, types)).join('')
}
