/**
 * C header from BTF: every named struct, union, enum and typedef, in an order a C compiler
 * accepts (forward declarations first, then definitions after their by-value dependencies), with
 * explicit padding or `packed` where the recorded layout is not the natural one, so that
 * `sizeof` and member offsets in the header equal the BTF's.
 */
import { FormatError } from '../errors.js'
import type { Btf } from './btf.js'
import { type TextLimits, textLimits } from './limits.js'
import type { BtfMember, BtfType } from './types.js'

/** Deeper type graphs than this are cyclic or hostile; real ones are far shallower. */
const MAX_DEPTH = 64

export function dumpC(btf: Btf): string {
  return new CDumper(btf).run()
}

/**
 * Hands out C names unique in one namespace: the first use of a name keeps it, later ones get
 * `___2`, `___3`, ... (as bpftool does). The next suffix to try is kept per name, so n uses of one
 * name cost O(n), not O(n^2).
 */
class UniqueNames {
  private readonly used = new Set<string>()
  private readonly nextSuffix = new Map<string, number>()

  take(base: string): string {
    if (!this.used.has(base)) {
      this.used.add(base)
      return base
    }
    let n = this.nextSuffix.get(base) ?? 2
    while (this.used.has(`${base}___${n}`)) n++
    this.nextSuffix.set(base, n + 1)
    const name = `${base}___${n}`
    this.used.add(name)
    return name
  }
}

const tooDeep = (id: number) => new FormatError(`BTF type #${id}: type graph too deep or cyclic for a C dump`)

class CDumper {
  private readonly out: string[] = []
  private readonly defined = new Set<number>()
  private readonly inProgress = new Set<number>()
  /** `ensure` calls made, as `2 * id + complete`: each type is walked once per mode. */
  private readonly ensured = new Set<number>()
  /** `ensure` calls in progress, keyed the same way. */
  private readonly active = new Set<number>()
  /** First type of each (kind, name): later duplicates are referred to through it. */
  private readonly cnames = new Map<number, string>()
  /** The first struct and the first union of each name: what a FWD of that name stands for. */
  private readonly firstStruct = new Map<string, BtfType>()
  private readonly firstUnion = new Map<string, BtfType>()
  /** Enumerator names: C has one namespace for them, so repeats get a suffix (as bpftool does). */
  private readonly enumerators = new UniqueNames()
  /** Padding members get names unique in the whole header (anonymous members share their parent's scope). */
  private padCount = 0
  private work = 0
  /** Characters built so far (counted where strings are made, each once). */
  private chars = 0
  /** Declarator steps and characters this BTF may take (ts/btf/limits.ts). */
  private readonly limits: TextLimits

  constructor(private readonly btf: Btf) {
    this.limits = textLimits(btf.types)
  }

  run(): string {
    const types = this.btf.types
    this.emit('#ifndef __BTF_DUMP_H__', '#define __BTF_DUMP_H__', '')
    for (const t of types) {
      const first = t.kind === 'STRUCT' ? this.firstStruct : t.kind === 'UNION' ? this.firstUnion : undefined
      if (first && t.name !== '' && !first.has(t.name)) first.set(t.name, t)
    }
    // Every distinct named type gets a distinct C name: struct, union and enum tags share one
    // namespace, typedefs another, and deduplicated BTF can still hold two different `struct x`.
    // Later ones are suffixed ___2, ___3 (as bpftool does).
    const tags = new UniqueNames()
    const typedefs = new UniqueNames()
    for (const t of types) {
      if (t.name === '') continue
      if (t.kind === 'STRUCT' || t.kind === 'UNION' || t.kind === 'ENUM' || t.kind === 'ENUM64') {
        this.cnames.set(t.id, tags.take(t.name))
      } else if (t.kind === 'TYPEDEF') {
        // The compiler predefines __builtin_* typedefs (with the BPF target's meaning): keep ours apart.
        this.cnames.set(t.id, typedefs.take(t.name.startsWith('__builtin_') ? `___btf${t.name}` : t.name))
      }
    }
    for (const t of types) {
      if (t.kind === 'FWD' && this.canon(t) === t) this.cnames.set(t.id, tags.take(t.name))
    }
    // Forward declarations let pointers refer to any struct or union before its definition.
    let forwards = 0
    for (const t of types) {
      if (((t.kind === 'STRUCT' || t.kind === 'UNION') && t.name !== '') || (t.kind === 'FWD' && this.canon(t) === t)) {
        this.emit(`${this.tagged(t)};`)
        forwards++
      }
    }
    if (forwards) this.emit('')
    // Enums have no dependencies.
    for (const t of types) {
      if (t.kind !== 'ENUM' && t.kind !== 'ENUM64') continue
      this.emit(`${this.enumBody(t)};`, '')
      this.defined.add(t.id)
    }
    for (const t of types) {
      if (t.kind === 'TYPEDEF' || ((t.kind === 'STRUCT' || t.kind === 'UNION') && t.name !== ''))
        this.ensure(t.id, true)
    }
    this.emit('#endif /* __BTF_DUMP_H__ */', '')
    return this.out.join('\n')
  }

  /** Appends top-level lines to the header. */
  private emit(...lines: string[]): void {
    for (const l of lines) this.charge(l.length + 1)
    this.out.push(...lines)
  }

  /** Counts `n` characters about to be built against the limit. */
  private charge(n: number): void {
    this.chars += n
    if (this.chars > this.limits.chars) {
      throw new FormatError(
        `BTF is too large for a C dump: more than ${this.limits.chars} characters of declarations for ${this.btf.count} types`,
        undefined,
        'E2BIG',
      )
    }
  }

  /** `struct foo` / `union foo` / `enum foo` with its unique C name. */
  private tagged(t: BtfType): string {
    const tag =
      t.kind === 'STRUCT'
        ? 'struct'
        : t.kind === 'UNION'
          ? 'union'
          : t.kind === 'FWD'
            ? t.fwdUnion
              ? 'union'
              : 'struct'
            : 'enum'
    return `${tag} ${this.cnames.get(t.id) ?? t.name}`
  }

  /** A FWD stands for the first struct (or union) of the same name, when the BTF has one. */
  private canon(t: BtfType): BtfType {
    if (t.kind !== 'FWD') return t
    return (t.fwdUnion ? this.firstUnion : this.firstStruct).get(t.name) ?? t
  }

  /**
   * Makes sure `id` is declared (and, if `complete`, fully defined) before the current point. Each
   * (type, complete) pair is walked once: a type shared by many others (or an anonymous struct
   * nested in itself at every level) costs its members once, not once per path to it.
   */
  private ensure(id: number, complete: boolean, depth = 0): void {
    if (depth > MAX_DEPTH) throw tooDeep(id)
    const key = 2 * id + (complete ? 1 : 0)
    if (this.ensured.has(key)) return
    if (this.active.has(key)) {
      // Needing a type complete while completing it: it contains itself by value. A declaration
      // needed while declaring it is a pointer back to it, which the forward declarations cover.
      if (complete) throw this.containsItself(this.btf.typeById(id))
      return
    }
    this.active.add(key)
    this.ensureType(this.canon(this.btf.typeById(id)), complete, depth)
    this.active.delete(key)
    this.ensured.add(key)
  }

  private containsItself(t: BtfType): FormatError {
    return new FormatError(`BTF type #${t.id} (${t.kind} ${t.name === '' ? '(anon)' : `'${t.name}'`}) contains itself`)
  }

  private ensureType(t: BtfType, complete: boolean, depth: number): void {
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
          // C cannot spell a typedef whose definition needs the typedef itself (A -> B -> A).
          if (this.inProgress.has(t.id)) throw this.containsItself(t)
          this.inProgress.add(t.id)
          // `typedef struct foo foo_t;` needs only a forward declaration, so it is emitted before
          // struct foo is completed (foo's members may use foo_t). Anonymous bodies and arrays
          // are spelled out in the typedef and need their members complete first.
          let target = this.btf.typeById(t.type!)
          for (let d = 0; (target.kind === 'CONST' || target.kind === 'VOLATILE') && d < MAX_DEPTH; d++) {
            target = this.btf.typeById(target.type!)
          }
          const inline =
            target.kind === 'ARRAY' || (target.name === '' && (target.kind === 'STRUCT' || target.kind === 'UNION'))
          this.ensure(t.type!, inline, depth + 1)
          this.emit(`typedef ${this.decl(t.type!, this.cnames.get(t.id) ?? t.name, '')};`, '')
          this.defined.add(t.id)
          this.inProgress.delete(t.id)
        }
        if (complete) this.ensure(t.type!, true, depth + 1)
        return
      case 'STRUCT':
      case 'UNION':
        if (t.name === '') {
          for (const m of t.members!) this.ensure(m.type, true, depth + 1)
          return
        }
        if (!complete || this.defined.has(t.id)) return
        if (this.inProgress.has(t.id)) throw this.containsItself(t)
        this.inProgress.add(t.id)
        for (const m of t.members!) this.ensure(m.type, true, depth + 1)
        this.emit(`${this.body(t, '')};`, '')
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
      const safe =
        v.value === -(2n ** 31n) ? '(-2147483647 - 1)' : v.value === -(2n ** 63n) ? '(-9223372036854775807LL - 1)' : lit
      return `\t${this.enumerators.take(v.name)} = ${safe},`
    })
    // An enum whose recorded size is not the compiler's default gets it back through `mode`.
    const mode = ENUM_MODES[t.size!]
    const natural = t.kind === 'ENUM64' ? 8 : 4
    const attr = t.size !== natural && mode ? ` __attribute__((mode(${mode})))` : ''
    return `${t.name ? `${this.tagged(t)} ` : 'enum '}{\n${lines.join('\n')}\n}${attr}`
  }

  /**
   * Struct or union body with the members at the recorded offsets: alignment gaps the compiler
   * would not leave are filled with `char` arrays (or unnamed `unsigned char` bitfields between
   * bitfields), and a layout tighter than natural alignment is marked `packed`.
   */
  private body(t: BtfType, indent: string, depth = 0): string {
    this.checkLayout(t)
    const tag = t.kind === 'STRUCT' ? 'struct' : 'union'
    const inner = `${indent}\t`
    const lines: string[] = []
    const alignUp = (n: number, a: number) => Math.ceil(n / a) * a
    const members = t.members!
    const aligns = members.map((m) => this.safeAlign(m.type))
    let maxAlign = 1
    for (const a of aligns) maxAlign = Math.max(maxAlign, a)
    let packed = false
    let maxEnd = 0
    let endBits = 0
    for (let i = 0; i < members.length; i++) {
      const m = members[i]!
      if (m.bitfieldSize === 0) {
        const off = m.bitOffset / 8
        if (t.kind === 'STRUCT' && (!Number.isInteger(off) || off < alignUp(Math.ceil(endBits / 8), aligns[i]!)))
          packed = true
        endBits = m.bitOffset + this.safeSize(m.type) * 8
      } else endBits = m.bitOffset + m.bitfieldSize
      maxEnd = Math.max(maxEnd, t.kind === 'STRUCT' ? Math.ceil(endBits / 8) : Math.ceil(endBits / 8))
    }
    if (t.size! % maxAlign !== 0 || t.size! < alignUp(maxEnd, maxAlign)) packed = true
    endBits = 0
    for (let i = 0; i < members.length; i++) {
      const m = members[i]!
      if (t.kind === 'STRUCT') {
        if (m.bitfieldSize === 0) {
          const end = Math.ceil(endBits / 8)
          const off = m.bitOffset / 8
          const expected = packed ? end : alignUp(end, aligns[i]!)
          if (off > expected) lines.push(`${inner}char __pad${this.padCount++}[${off - end}];`)
          endBits = m.bitOffset + this.safeSize(m.type) * 8
        } else {
          this.bitGap(endBits, m.bitOffset, inner, lines)
          endBits = m.bitOffset + m.bitfieldSize
        }
      }
      const declarator = m.bitfieldSize ? `${m.name}: ${m.bitfieldSize}` : m.name
      lines.push(`${inner}${this.decl(m.type, declarator, inner, [], depth + 1)};`)
    }
    if (t.kind === 'STRUCT') {
      const end = Math.ceil(endBits / 8)
      if (t.size! > (packed ? end : alignUp(end, maxAlign)))
        lines.push(`${inner}char __pad${this.padCount++}[${t.size! - end}];`)
    } else if (t.size! > alignUp(maxEnd, maxAlign)) {
      lines.push(`${inner}char __pad${this.padCount++}[${t.size!}];`)
    }
    for (const l of lines) this.charge(l.length + 1)
    return `${t.name ? this.tagged(t) : tag} {\n${lines.join('\n')}\n${indent}}${packed ? ' __attribute__((packed))' : ''}`
  }

  /**
   * Fills the bits from `from` to `to` between bitfields: unnamed bitfields of at most a byte up to
   * a byte boundary and after the last one (they never straddle a unit, so they land exactly), and
   * one `char` array for the whole bytes between, so that a gap costs at most three lines.
   */
  private bitGap(from: number, to: number, indent: string, lines: string[]): void {
    if (from >= to) return
    if (from % 8 !== 0) {
      const k = Math.min(8 - (from % 8), to - from)
      lines.push(`${indent}unsigned char: ${k};`)
      from += k
    }
    const bytes = Math.floor((to - from) / 8)
    if (bytes > 0) {
      lines.push(`${indent}char __pad${this.padCount++}[${bytes}];`)
      from += bytes * 8
    }
    if (from < to) lines.push(`${indent}unsigned char: ${to - from};`)
  }

  /**
   * The member layout rules the kernel's BTF check applies (btf_struct_check_meta and the member
   * checks): members inside the struct, in order and not overlapping, union members at offset 0,
   * non-bitfields byte-aligned, bitfields no wider than their type. A layout that breaks them has
   * no C spelling; refusing it also keeps the padding the dump writes bounded by the struct size.
   */
  private checkLayout(t: BtfType): void {
    const what = (m: BtfMember) =>
      `BTF type #${t.id} (${t.kind} ${t.name === '' ? '(anon)' : `'${t.name}'`}, ${t.size} bytes) member '${m.name}'`
    let prevEnd = 0
    for (const m of t.members!) {
      if (t.kind === 'UNION' && m.bitOffset !== 0)
        throw new FormatError(`${what(m)} is at bit offset ${m.bitOffset}: union members start at 0`)
      const typeBits = this.safeSize(m.type) * 8
      if (m.bitfieldSize === 0 && m.bitOffset % 8 !== 0)
        throw new FormatError(`${what(m)} at bit offset ${m.bitOffset} is neither byte-aligned nor a bitfield`)
      if (m.bitfieldSize > typeBits)
        throw new FormatError(`${what(m)} is a ${m.bitfieldSize}-bit field of a ${typeBits}-bit type`)
      const end = m.bitOffset + (m.bitfieldSize || typeBits)
      if (end > t.size! * 8)
        throw new FormatError(`${what(m)} at bit offset ${m.bitOffset} ends at bit ${end}, past the end of its type`)
      if (t.kind === 'STRUCT') {
        if (m.bitOffset < prevEnd)
          throw new FormatError(
            `${what(m)} at bit offset ${m.bitOffset} overlaps the member before it (ending at bit ${prevEnd})`,
          )
        prevEnd = end
      }
    }
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
    if (depth > MAX_DEPTH) throw tooDeep(id)
    // Anonymous types are spelled out where used; a hostile BTF could make that exponential.
    if (++this.work > this.limits.work) {
      throw new FormatError(
        `BTF is too complex for a C dump: more than ${this.limits.work} declarator steps for ${this.btf.count} types`,
        undefined,
        'E2BIG',
      )
    }
    // Each step builds a new declarator around the old one.
    this.charge(declarator.length + indent.length)
    const t0 = this.btf.typeById(id)
    const t = this.canon(t0)
    const q = quals.length ? `${[...new Set(quals)].join(' ')} ` : ''
    const sep = (s: string, charged = 0) => {
      this.charge(s.length - charged + 1)
      return declarator === '' ? s : `${s} ${declarator}`
    }
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
        const qs = quals.length ? `${[...new Set(quals)].join(' ')} ` : ''
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
        return sep(`${q}${this.cnames.get(t.id) ?? t.name}`)
      case 'STRUCT':
      case 'UNION':
        if (t.name !== '') return sep(`${q}${this.tagged(t)}`)
        {
          // The body counted its own lines.
          const body = this.body(t, indent, depth + 1)
          return sep(`${q}${body}`, body.length)
        }
      case 'FWD':
        return sep(`${q}${this.tagged(t)}`)
      case 'ENUM':
      case 'ENUM64':
        if (t.name !== '') return sep(`${q}${this.tagged(t)}`)
        return sep(`${q}${intName(t.size!, t.signed ?? false)}`)
      default:
        // FUNC, VAR, DATASEC and DECL_TAG never appear inside a declaration.
        return sep(`${q}void`)
    }
  }
}

const ENUM_MODES: Record<number, string> = { 1: 'QI', 2: 'HI', 4: 'SI', 8: 'DI' }

function intName(size: number, signed: boolean): string {
  const base = size === 1 ? 'char' : size === 2 ? 'short' : size === 8 ? 'long long' : 'int'
  return `${signed ? 'signed' : 'unsigned'} ${base}`
}
