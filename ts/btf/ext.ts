/**
 * Parser for `.BTF.ext`: per-section func_info, line_info and CO-RE relocation records. Offsets
 * in the object are byte offsets within the named ELF section; the loader turns them into
 * instruction indexes per program. Strings live in the `.BTF` string section.
 */
import { ByteReader } from '../binary/bytes.js'
import { btfString } from './parse.js'

export interface BtfExtFuncInfo {
  /** Byte offset inside the section. */
  insnOff: number
  typeId: number
}

export interface BtfExtLineInfo {
  insnOff: number
  file: string
  /** The source line's text, as clang recorded it. */
  text: string
  line: number
  column: number
}

/** BPF_CORE_* relocation kinds (libbpf's `enum bpf_core_relo_kind`). */
export const CORE_RELO_KINDS = [
  'field_byte_offset',
  'field_byte_size',
  'field_exists',
  'field_signed',
  'field_lshift_u64',
  'field_rshift_u64',
  'type_id_local',
  'type_id_target',
  'type_exists',
  'type_size',
  'enumval_exists',
  'enumval_value',
  'type_matches',
] as const

export interface BtfExtCoreRelo {
  insnOff: number
  typeId: number
  /** Access string such as "0:1:2". */
  access: string
  kind: number
  kindName: string
}

export interface BtfExtSection<T> {
  section: string
  records: T[]
}

export interface BtfExt {
  funcInfo: BtfExtSection<BtfExtFuncInfo>[]
  lineInfo: BtfExtSection<BtfExtLineInfo>[]
  coreRelos: BtfExtSection<BtfExtCoreRelo>[]
}

export function parseBtfExt(bytes: Uint8Array, strings: ByteReader, base = 0): BtfExt {
  const r = new ByteReader(bytes, '.BTF.ext', base)
  r.need(0, 8, '.BTF.ext header')
  const magic = r.u16(0)
  if (magic !== 0xeb9f) r.fail(`bad magic 0x${magic.toString(16)} (expected 0xeb9f)`, 0)
  const version = r.u8(2)
  if (version !== 1) r.fail(`unsupported .BTF.ext version ${version}`, 2)
  const hdrLen = r.u32(4, 'hdr_len')
  if (hdrLen < 24) r.fail(`header length ${hdrLen} is shorter than the 24-byte header`, 4)
  r.need(0, hdrLen, '.BTF.ext header')
  const sub = (offField: number, name: string): ByteReader | undefined => {
    if (hdrLen < offField + 8) return undefined
    const off = r.u32(offField, `${name}_off`)
    const len = r.u32(offField + 4, `${name}_len`)
    if (len === 0) return undefined
    return r.slice(hdrLen + off, len, `.BTF.ext ${name}`)
  }
  const fi = sub(8, 'func_info')
  const li = sub(16, 'line_info')
  const cr = sub(24, 'core_relo')
  return {
    funcInfo: fi
      ? readSections(fi, 8, strings, (x, o) => ({ insnOff: x.u32(o, 'insn_off'), typeId: x.u32(o + 4, 'type_id') }))
      : [],
    lineInfo: li
      ? readSections(li, 16, strings, (x, o, where) => {
          const lineCol = x.u32(o + 12, 'line_col')
          return {
            insnOff: x.u32(o, 'insn_off'),
            file: btfString(strings, x.u32(o + 4), `${where} file_name_off`),
            text: btfString(strings, x.u32(o + 8), `${where} line_off`),
            line: lineCol >>> 10,
            column: lineCol & 0x3ff,
          }
        })
      : [],
    coreRelos: cr
      ? readSections(cr, 16, strings, (x, o, where) => {
          const kind = x.u32(o + 12, 'kind')
          return {
            insnOff: x.u32(o, 'insn_off'),
            typeId: x.u32(o + 4, 'type_id'),
            access: btfString(strings, x.u32(o + 8), `${where} access_str_off`),
            kind,
            kindName: CORE_RELO_KINDS[kind] ?? `unknown(${kind})`,
          }
        })
      : [],
  }
}

/**
 * Each info block is `u32 rec_size`, then per section `{ u32 sec_name_off; u32 num_info;
 * rec_size * num_info bytes }`. A record larger than we know is allowed (newer compilers may
 * append fields); a smaller one is not.
 */
function readSections<T>(
  r: ByteReader,
  minRecSize: number,
  strings: ByteReader,
  readRecord: (r: ByteReader, off: number, where: string) => T,
): BtfExtSection<T>[] {
  const recSize = r.u32(0, 'rec_size')
  if (recSize < minRecSize || recSize % 4 !== 0) r.fail(`record size ${recSize} is invalid (minimum ${minRecSize})`, 0)
  const out: BtfExtSection<T>[] = []
  let o = 4
  while (o < r.length) {
    const section = btfString(strings, r.u32(o, 'sec_name_off'), 'section name')
    const num = r.u32(o + 4, 'num_info')
    if (num === 0) r.fail(`section '${section}' has zero records`, o + 4)
    o += 8
    r.need(o, num * recSize, `${num} records of section '${section}'`)
    const records: T[] = []
    for (let i = 0; i < num; i++, o += recSize) records.push(readRecord(r, o, `section '${section}' record #${i}`))
    out.push({ section, records })
  }
  return out
}
