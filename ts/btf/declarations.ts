/**
 * TypeScript declarations for BTF types, matching what `codec()` produces and accepts: user code
 * gets typed map keys and values and global variables (`interface flow_info { ... }`).
 */
import { checkDenseArray, checkObject, checkString, describeValue } from '../arguments.js'
import { EbpfError, FormatError } from '../errors.js'
import { Btf } from './btf.js'
import { type TextLimits, textLimits } from './limits.js'
import type { BtfType } from './types.js'

/**
 * The budget of one run: anonymous types are written out where used, so a hostile BTF (one
 * anonymous struct nested in itself at every level, long names used often) could make the work
 * and the text exponential.
 */
class Budget {
  private work = 0
  private chars = 0
  private readonly limits: TextLimits

  constructor(btf: Btf) {
    this.limits = textLimits(btf.types)
  }

  step(): void {
    if (++this.work > this.limits.work) {
      throw new FormatError(
        `BTF is too complex to declare in TypeScript: more than ${this.limits.work} type references`,
        undefined,
        'E2BIG',
      )
    }
  }

  /** Counts a string just built (nested literals count once per level). */
  text(s: string): string {
    this.chars += s.length
    if (this.chars > this.limits.chars) {
      throw new FormatError(
        `BTF is too large to declare in TypeScript: more than ${this.limits.chars} characters`,
        undefined,
        'E2BIG',
      )
    }
    return s
  }
}

const RESERVED = new Set(
  (
    'break case catch class const continue debugger default delete do else enum export extends false finally for ' +
    'function if import in instanceof new null return super switch this throw true try typeof var void while with ' +
    'as implements interface let package private protected public static yield any boolean number string symbol ' +
    'bigint object never unknown undefined type'
  ).split(' '),
)

/** A TypeScript identifier for a C name. */
export function tsIdent(name: string): string {
  const clean = name.replace(/[^A-Za-z0-9_$]/g, '_')
  const id = /^[0-9]/.test(clean) ? `_${clean}` : clean
  return RESERVED.has(id) ? `${id}_` : id
}

function propName(name: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) ? name : JSON.stringify(name)
}

/** The TypeScript type of type `id`'s decoded value; named types are referred to by name. */
export function tsTypeOf(btf: Btf, id: number, depth = 0, inline = false): string {
  checkBtf(btf)
  if (typeof depth !== 'number' || !Number.isInteger(depth))
    throw new EbpfError('EINVAL', `depth must be an integer, got ${describeValue(depth)}`)
  return typeOf(btf, id, depth, inline === true, new Budget(btf))
}

function checkBtf(btf: unknown): void {
  if (!(btf instanceof Btf)) throw new EbpfError('EINVAL', `btf must be a Btf, got ${describeValue(btf)}`)
}

function typeOf(btf: Btf, id: number, depth: number, inline: boolean, budget: Budget): string {
  if (depth > 32) return 'unknown'
  budget.step()
  const t = btf.typeById(id)
  switch (t.kind) {
    case 'TYPEDEF':
      return inline ? typeOf(btf, t.type!, depth + 1, false, budget) : tsIdent(t.name)
    case 'CONST':
    case 'VOLATILE':
    case 'RESTRICT':
    case 'TYPE_TAG':
    case 'VAR':
      return typeOf(btf, t.type!, depth + 1, inline, budget)
    case 'INT':
      if ((t.encoding! & 4) !== 0 && t.bits === t.size! * 8 && t.size! <= 4) return 'boolean'
      return t.size! > 4 ? 'bigint' : 'number'
    case 'PTR':
      return 'bigint'
    case 'FLOAT':
      return t.size === 4 || t.size === 8 ? 'number' : 'Uint8Array'
    case 'ENUM':
    case 'ENUM64':
      if (t.name !== '' && !inline) return tsIdent(t.name)
      return budget.text(enumUnion(t))
    case 'ARRAY': {
      const e = btf.resolve(t.elemType!)
      if (e.kind === 'INT' && e.size === 1 && (e.name === 'char' || (e.encoding! & 2) !== 0)) return 'string'
      const inner = typeOf(btf, t.elemType!, depth + 1, false, budget)
      return budget.text(/^[A-Za-z0-9_$]+$/.test(inner) ? `${inner}[]` : `Array<${inner}>`)
    }
    case 'STRUCT':
    case 'UNION':
      if (t.name !== '' && !inline) return tsIdent(t.name)
      return budget.text(objectLiteral(btf, t, depth, budget))
    case 'DATASEC':
      return budget.text(
        `{ ${t.vars!.map((v) => `${propName(btf.typeById(v.type).name)}: ${typeOf(btf, v.type, depth + 1, false, budget)}`).join('; ')} }`,
      )
    default:
      return 'unknown'
  }
}

function enumUnion(t: BtfType): string {
  const wide = t.size! > 4
  const names = t.values!.map((v) => JSON.stringify(v.name))
  return [...names, wide ? 'bigint' : 'number'].join(' | ')
}

function collectFields(btf: Btf, t: BtfType, depth: number, out: string[], budget: Budget): void {
  if (depth > 32) return
  for (const m of t.members!) {
    budget.step()
    const inner = btf.resolve(m.type)
    if (m.name === '' && (inner.kind === 'STRUCT' || inner.kind === 'UNION')) {
      collectFields(btf, inner, depth + 1, out, budget)
      continue
    }
    if (m.name === '') continue
    const type =
      m.bitfieldSize > 0
        ? btf.sizeOf(m.type) > 4
          ? 'bigint'
          : 'number'
        : typeOf(btf, m.type, depth + 1, false, budget)
    out.push(budget.text(`${propName(m.name)}: ${type}`))
  }
}

function objectLiteral(btf: Btf, t: BtfType, depth: number, budget: Budget): string {
  const fields: string[] = []
  collectFields(btf, t, depth, fields, budget)
  return `{ ${fields.join('; ')} }`
}

function checkExtras(extras: unknown): void {
  const e = checkObject<DeclarationExtras>(EbpfError, 'extras', extras)
  const id = (what: string, v: unknown) => {
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v)))
      throw new EbpfError('EINVAL', `${what} must be a type id, got ${describeValue(v)}`)
  }
  if (e.maps !== undefined) {
    checkDenseArray(EbpfError, 'extras.maps', e.maps).forEach((x, i) => {
      const m = checkObject<Record<string, unknown>>(EbpfError, `extras.maps[${i}]`, x)
      checkString(EbpfError, `extras.maps[${i}].name`, m.name)
      id(`extras.maps[${i}].key`, m.key)
      id(`extras.maps[${i}].value`, m.value)
    })
  }
  if (e.variables !== undefined) {
    checkDenseArray(EbpfError, 'extras.variables', e.variables).forEach((x, i) => {
      const v = checkObject<Record<string, unknown>>(EbpfError, `extras.variables[${i}]`, x)
      checkString(EbpfError, `extras.variables[${i}].name`, v.name)
      id(`extras.variables[${i}].type`, v.type)
    })
  }
}

export interface DeclarationExtras {
  /** Map name -> key and value type ids (0 or undefined when the map has no BTF for it). */
  maps?: Array<{ name: string; key?: number; value?: number }>
  /** Global variables: name -> type id. */
  variables?: Array<{ name: string; type: number }>
}

/**
 * Declarations for every named struct, union, enum and typedef, plus `Maps` and `Variables`
 * interfaces when `extras` describes them.
 */
export function generateDeclarations(btf: Btf, extras: DeclarationExtras = {}): string {
  checkBtf(btf)
  checkExtras(extras)
  const budget = new Budget(btf)
  const lines: string[] = ['// Generated from BTF by ebpf: the JavaScript shapes of the C types.', '']
  const seen = new Set<string>()
  for (const t of btf.types) {
    if (t.name === '') continue
    const ident = tsIdent(t.name)
    let decl: string | undefined
    if (t.kind === 'STRUCT' || t.kind === 'UNION') {
      const fields: string[] = []
      collectFields(btf, t, 0, fields, budget)
      decl = `export interface ${ident} {\n${fields.map((f) => `  ${f}`).join('\n')}\n}`
    } else if (t.kind === 'ENUM' || t.kind === 'ENUM64') {
      decl = `export type ${ident} = ${budget.text(enumUnion(t))}`
    } else if (t.kind === 'TYPEDEF') {
      decl = `export type ${ident} = ${typeOf(btf, t.type!, 0, false, budget)}`
    }
    if (decl === undefined || seen.has(ident)) continue
    seen.add(ident)
    lines.push(decl, '')
  }
  if (extras.maps) {
    lines.push('export interface Maps {')
    for (const m of extras.maps) {
      const k = m.key ? typeOf(btf, m.key, 0, false, budget) : 'Uint8Array'
      const v = m.value ? typeOf(btf, m.value, 0, false, budget) : 'Uint8Array'
      lines.push(`  ${propName(m.name)}: { key: ${k}; value: ${v} }`)
    }
    lines.push('}', '')
  }
  if (extras.variables) {
    lines.push('export interface Variables {')
    for (const v of extras.variables) lines.push(`  ${propName(v.name)}: ${typeOf(btf, v.type, 0, false, budget)}`)
    lines.push('}', '')
  }
  return lines.join('\n')
}
