/**
 * C header from BTF: every named struct, union, enum and typedef, in an order a C compiler
 * accepts (forward declarations first, then definitions after their by-value dependencies), with
 * explicit padding or `packed` where the recorded layout is not the natural one, so that
 * `sizeof` and member offsets in the header equal the BTF's.
 */
import { FormatError } from '../errors.js'
import type { Btf } from './btf.js'
import type { BtfType } from './types.js'

/** Deeper type graphs than this are cyclic or hostile; real ones are far shallower. */
const MAX_DEPTH = 64

export function dumpC(btf: Btf): string {
  return new CDumper(btf).run()
}

class CDumper {
  private readonly out: string[] = []
  private readonly defined = new Set<number>()
  private readonly inProgress = new Set<number>()
  /** First type of each (kind, name): later duplicates are referred to through it. */
  private readonly canonical = new Map<string, number>()

  constructor(private readonly btf: Btf) {}

  run(): string {
    const types = this.btf.types
    this.out.push('#ifndef __BTF_DUMP_H__', '#define __BTF_DUMP_H__', '')
    for (const t of types) {
      if (t.name === '') continue
      const tag = this.tagOf(t)
      if (tag === undefined) continue
      const key = `${tag} ${t.name}`
      if (!this.canonical.has(key)) this.canonical.set(key, t.id)
    }
    // Forward declarations let pointers refer to any struct or union before its definition.
    const forwards = new Set<string>()
    for (const t of types) {
      const tag = this.tagOf(t)
      if ((tag === 'struct' || tag === 'union') && t.name !== '' && !forwards.has(`${tag} ${t.name}`)) {
        forwards.add(`${tag} ${t.name}`)
        this.out.push(`${tag} ${t.name};`)
      }
    }
    if (forwards.size) this.out.push('')
    // Enums have no dependencies; named ones are emitted once, anonymous ones as plain enumerators.
    const enumNames = new Set<string>()
    for (const t of types) {
      if (t.kind !== 'ENUM' && t.kind !== 'ENUM64') continue
      if (t.name !== '') {
        if (enumNames.has(t.name)) continue
        enumNames.add(t.name)
      }
      this.out.push(`${this.enumBody(t)};`, '')
      this.defined.add(t.id)
    }
    for (const t of types) {
      if (t.kind === 'TYPEDEF' || ((t.kind === 'STRUCT' || t.kind === 'UNION') && t.name !== '')) this.ensure(t.id, true)
    }
    this.out.push('#endif /* __BTF_DUMP_H__ */', '')
    return this.out.join('\n')
  }

  private tagOf(t: BtfType): string | undefined {
    if (t.kind === 'STRUCT') return 'struct'
    if (t.kind === 'UNION') return 'union'
    if (t.kind === 'ENUM' || t.kind === 'ENUM64') return 'enum'
    if (t.kind === 'TYPEDEF') return 'typedef'
    if (t.kind === 'FWD') return t.fwdUnion ? 'union' : 'struct'
    return undefined
  }

  private canon(t: BtfType): BtfType {
    const tag = this.tagOf(t)
    if (tag === undefined || t.name === '') return t
    const id = this.canonical.get(`${tag} ${t.name}`)
    const c = id === undefined ? t : this.btf.types[id]!
    // A FWD resolves to the struct of the same name when there is one.
    if (t.kind === 'FWD') {
      const full = this.btf.typesByName(t.name).find((x) => x.kind === (t.fwdUnion ? 'UNION' : 'STRUCT'))
      return full ?? c
    }
    return c
  }

  /** Makes sure `id` is declared (and, if `complete`, fully defined) before the current point. */
  private ensure(id: number, complete: boolean, depth = 0): void {
    if (depth > MAX_DEPTH) throw new FormatError(`BTF type #${id}: type graph too deep or cyclic for a C dump`)
    const t = this.canon(this.btf.typeById(id))
    switch (t.kind) {
      case 'CONST':
      case 'VOLATILE':
      case 'RESTRICT':
      case 'TYPE_TAG':
        this.ensure(t.type!, complete, depth + 1)
        return
      case 'PTR':
        this.ensure(t.type!, false, depth + 1)
        return
      case 'ARRAY':
        this.ensure(t.elemType!, true, depth + 1)
        return
      case 'FUNC_PROTO':
        this.ensure(t.type!, false, depth + 1)
        for (const p of t.params!) this.ensure(p.type, false, depth + 1)
        return
      case 'TYPEDEF':
        if (!this.defined.has(t.id)) {
          if (this.inProgress.has(t.id)) return
          this.inProgress.add(t.id)
          const target = this.btf.typeById(t.type!)
          this.ensure(t.type!, target.name === '' || complete, depth + 1)
          this.out.push(`typedef ${this.decl(t.type!, t.name, '')};`, '')
          this.defined.add(t.id)
          this.inProgress.delete(t.id)
        } else if (complete) {
          this.ensure(t.type!, true, depth + 1)
        }
        return
      case 'STRUCT':
      case 'UNION':
        if (t.name === '') {
          for (const m of t.members!) this.ensure(m.type, true, depth + 1)
          return
        }
        if (!complete || this.defined.has(t.id) || this.inProgress.has(t.id)) return
        this.inProgress.add(t.id)
        for (const m of t.members!) this.ensure(m.type, true, depth + 1)
        this.out.push(`${this.body(t, '')};`, '')
        this.defined.add(t.id)
        this.inProgress.delete(t.id)
        return
      default:
        return
    }
  }

  private enumBody(t: BtfType): string {
    const lines = t.values!.map((v) => {
      const lit = t.kind === 'ENUM64' ? (t.signed ? `${v.value}LL` : `${v.value}ULL`) : `${v.value}`
      // -2147483648 is not a literal in C; spell it as an expression.
      const safe = v.value === -(2n ** 31n) ? '(-2147483647 - 1)' : v.value === -(2n ** 63n) ? '(-9223372036854775807LL - 1)' : lit
      return `\t${v.name} = ${safe},`
    })
    return `enum ${t.name ? `${t.name} ` : ''}{\n${lines.join('\n')}\n}`
  }

  /** Struct or union body with the members laid out at the recorded offsets. */
  private body(t: BtfType, indent: string, depth = 0): string {
    const tag = t.kind === 'STRUCT' ? 'struct' : 'union'
    const inner = `${indent}\t`
    const lines: string[] = []
    let end = 0 // natural end of the last member, in bytes
    let maxAlign = 1
    let packed = false
    let pad = 0
    for (const m of t.members!) {
      const align = this.safeAlign(m.type)
      maxAlign = Math.max(maxAlign, align)
      if (t.kind === 'STRUCT' && m.bitfieldSize === 0) {
        const off = m.bitOffset / 8
        const natural = Math.ceil(end / align) * align
        if (off > natural) {
          lines.push(`${inner}char __pad${pad++}[${off - end}];`)
        } else if (off < natural || !Number.isInteger(off)) {
          packed = true
        }
        end = off + this.safeSize(m.type)
      } else if (t.kind === 'STRUCT') {
        end = Math.max(end, Math.ceil((m.bitOffset + m.bitfieldSize) / 8))
      }
      const declarator = m.bitfieldSize ? `${m.name}: ${m.bitfieldSize}` : m.name
      lines.push(`${inner}${this.decl(m.type, declarator, inner, [], depth + 1)};`)
    }
    if (t.kind === 'STRUCT') {
      const natural = Math.ceil(end / maxAlign) * maxAlign
      if (t.size! > natural) lines.push(`${inner}char __pad${pad++}[${t.size! - end}];`)
      else if (t.size! < natural) packed = true
    }
    const name = t.name ? `${t.name} ` : ''
    return `${tag} ${name}{\n${lines.join('\n')}\n${indent}}${packed ? ' __attribute__((packed))' : ''}`
  }

  private safeSize(id: number): number {
    try {
      return this.btf.sizeOf(id)
    } catch {
      return 0
    }
  }

  private safeAlign(id: number): number {
    try {
      return this.btf.alignOf(id)
    } catch {
      return 1
    }
  }

  /** C declaration of `declarator` with type `id` (qualifiers and pointers applied C-style). */
  private decl(id: number, declarator: string, indent: string, quals: string[] = [], depth = 0): string {
    if (depth > MAX_DEPTH) throw new FormatError(`BTF type #${id}: type graph too deep or cyclic for a C dump`)
    const t0 = this.btf.typeById(id)
    const t = this.canon(t0)
    const q = quals.length ? `${quals.join(' ')} ` : ''
    const sep = (s: string) => (declarator === '' ? s : `${s} ${declarator}`)
    switch (t.kind) {
      case 'VOID':
        return sep(`${q}void`)
      case 'INT':
      case 'FLOAT':
        return sep(`${q}${t.name}`)
      case 'CONST':
        return this.decl(t.type!, declarator, indent, [...quals, 'const'], depth + 1)
      case 'VOLATILE':
        return this.decl(t.type!, declarator, indent, [...quals, 'volatile'], depth + 1)
      case 'RESTRICT':
        return this.decl(t.type!, declarator, indent, [...quals, 'restrict'], depth + 1)
      case 'TYPE_TAG':
        return this.decl(t.type!, declarator, indent, quals, depth + 1)
      case 'PTR': {
        const qs = quals.length ? `${quals.join(' ')} ` : ''
        return this.decl(t.type!, `*${qs}${declarator}`, indent, [], depth + 1)
      }
      case 'ARRAY': {
        const d = declarator.startsWith('*') ? `(${declarator})` : declarator
        return this.decl(t.elemType!, `${d}[${t.nelems}]`, indent, quals, depth + 1)
      }
      case 'FUNC_PROTO': {
        const d = declarator.startsWith('*') ? `(${declarator})` : declarator
        const params = t.params!.map((p) => (p.type === 0 ? '...' : this.decl(p.type, p.name, indent, [], depth + 1)))
        const list = params.length === 0 ? 'void' : params.join(', ')
        return this.decl(t.type!, `${d}(${list})`, indent, [], depth + 1)
      }
      case 'TYPEDEF':
        return sep(`${q}${t.name}`)
      case 'STRUCT':
      case 'UNION':
        if (t.name !== '') return sep(`${q}${t.kind === 'STRUCT' ? 'struct' : 'union'} ${t.name}`)
        return sep(`${q}${this.body(t, indent, depth + 1)}`)
      case 'FWD':
        return sep(`${q}${t.fwdUnion ? 'union' : 'struct'} ${t.name}`)
      case 'ENUM':
      case 'ENUM64':
        if (t.name !== '') return sep(`${q}enum ${t.name}`)
        return sep(`${q}${intName(t.size!, t.signed ?? false)}`)
      default:
        // FUNC, VAR, DATASEC and DECL_TAG never appear inside a declaration.
        return sep(`${q}void`)
    }
  }
}

function intName(size: number, signed: boolean): string {
  const base = size === 1 ? 'char' : size === 2 ? 'short' : size === 8 ? 'long long' : 'int'
  return `${signed ? 'signed' : 'unsigned'} ${base}`
}
