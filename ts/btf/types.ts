/**
 * The BTF type model: one record per type as it is stored in `.BTF` (kernel `linux/btf.h` layout),
 * keeping the raw fields a byte-exact dump needs next to the decoded ones a user wants.
 */

/** BTF kinds in the kernel's numbering (BTF_KIND_*). */
export const BTF_KIND = {
  UNKN: 0,
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

export type BtfKind = Exclude<keyof typeof BTF_KIND, 'UNKN'> | 'VOID'

export const KIND_NAMES: readonly BtfKind[] = [
  'VOID',
  'INT',
  'PTR',
  'ARRAY',
  'STRUCT',
  'UNION',
  'ENUM',
  'FWD',
  'TYPEDEF',
  'VOLATILE',
  'CONST',
  'RESTRICT',
  'FUNC',
  'FUNC_PROTO',
  'VAR',
  'DATASEC',
  'FLOAT',
  'DECL_TAG',
  'TYPE_TAG',
  'ENUM64',
]

/** BTF_INT_* encoding bits. */
export const BTF_INT_SIGNED = 1
export const BTF_INT_CHAR = 2
export const BTF_INT_BOOL = 4

/** Linkage of VAR (BTF_VAR_*) and FUNC (BTF_FUNC_*, stored in vlen). */
export const LINKAGE_NAMES = ['static', 'global', 'extern'] as const

export interface BtfMember {
  /** '' for anonymous members. */
  name: string
  type: number
  /** Offset from the start of the struct in bits. */
  bitOffset: number
  /** Width of a bitfield in bits, 0 for an ordinary member. */
  bitfieldSize: number
}

export interface BtfEnumValue {
  name: string
  /** The value as stored, sign-interpreted per the type's `signed` flag. */
  value: bigint
}

export interface BtfParam {
  name: string
  type: number
}

export interface BtfVarSecinfo {
  type: number
  offset: number
  size: number
}

/**
 * One BTF type. `kind` selects which optional fields are present; `size` is set for INT, STRUCT,
 * UNION, ENUM, ENUM64, FLOAT and DATASEC; `type` for the kinds that refer to one other type.
 */
export interface BtfType {
  id: number
  kind: BtfKind
  /** '' for anonymous types. */
  name: string
  /** Raw `info` word (vlen, kind, kind_flag). */
  info: number
  kindFlag: boolean
  vlen: number
  size?: number
  type?: number
  /** INT: encoding bits (BTF_INT_SIGNED/CHAR/BOOL), bit offset and number of bits. */
  encoding?: number
  bitsOffset?: number
  bits?: number
  /** ARRAY */
  elemType?: number
  indexType?: number
  nelems?: number
  /** STRUCT, UNION */
  members?: BtfMember[]
  /** ENUM, ENUM64 */
  values?: BtfEnumValue[]
  signed?: boolean
  /** FUNC_PROTO */
  params?: BtfParam[]
  /** FUNC (0 static, 1 global, 2 extern) and VAR (0 static, 1 global allocated, 2 extern) */
  linkage?: number
  /** DATASEC */
  vars?: BtfVarSecinfo[]
  /** DECL_TAG: -1 for the type itself, else the member or parameter index. */
  componentIdx?: number
  /** FWD: true for a forward-declared union. */
  fwdUnion?: boolean
}

/** The `void` type, id 0. */
export const VOID_TYPE: BtfType = { id: 0, kind: 'VOID', name: 'void', info: 0, kindFlag: false, vlen: 0 }
