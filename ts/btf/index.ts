/**
 * The `btf` namespace: BTF parsing, queries, dumps, typed value codecs and TypeScript declarations.
 */
import { describeValue } from '../arguments.js'
import { EbpfError } from '../errors.js'
import { Btf } from './btf.js'
import { codec as buildCodec, type Codec } from './codec.js'
import type { BtfType } from './types.js'

export { Btf, type DumpOptions, type MemberLocation } from './btf.js'
export type { BtfValue, Codec } from './codec.js'
export { type DeclarationExtras, generateDeclarations, tsTypeOf } from './declarations.js'
export {
  type BtfExt,
  type BtfExtCoreRelo,
  type BtfExtFuncInfo,
  type BtfExtLineInfo,
  type BtfExtSection,
  CORE_RELO_KINDS,
} from './ext.js'
export {
  type FunctionEntry,
  type GlobalFunction,
  type GlobalFunctionArg,
  globalFunctionsOf,
} from './global-functions.js'
export * from './types.js'

/** Parses raw BTF bytes, or the `.BTF`/`.BTF.ext` of an ELF object, exactly as stored. */
export function parse(bytes: Uint8Array, options: { fixup?: boolean } = {}): Btf {
  return Btf.parse(bytes, options)
}

/** A codec for a type of `types`, given by id or by the type itself. */
export function codec(types: Btf, type: number | BtfType): Codec {
  if (!(types instanceof Btf)) throw new EbpfError('EINVAL', `types must be a Btf, got ${describeValue(types)}`)
  const id = typeof type === 'number' ? type : type !== null && typeof type === 'object' ? type.id : undefined
  if (id === undefined) throw new EbpfError('EINVAL', `type must be a type id or a BtfType, got ${describeValue(type)}`)
  return buildCodec(types, id)
}
