/**
 * Limits of the text made from a BTF (C dump, TypeScript declarations), in proportion to the BTF
 * itself. Both spell anonymous types out where they are used, so a small hostile blob (an
 * anonymous union nested in itself at every level) could ask for exponential work and text; a
 * fixed limit high enough for vmlinux would still let a 1 KB blob take seconds. In proportion,
 * vmlinux (294,536 records, 2.7 M characters of names: 125,000 declarator steps and 4 M
 * characters of C) stays well inside, and a small blob fails in milliseconds.
 */
import type { BtfType } from './types.js'

export interface TextLimits {
  /** Type references followed (declarator steps, declared fields). */
  work: number
  /** Characters of C or TypeScript built. */
  chars: number
  /**
   * Characters of the raw dump. It prints every record once, but a name at every use: many
   * members naming one long string would print it each time (vmlinux's raw dump: 12 M characters).
   */
  rawChars: number
}

/** Characters of a raw dump line besides the name it prints (ids, offsets, sizes, keywords). */
export const RAW_LINE_CHARS = 72

const cache = new WeakMap<readonly BtfType[], TextLimits>()

export function textLimits(types: readonly BtfType[]): TextLimits {
  let limits = cache.get(types)
  if (!limits) {
    // Records: each type, member, enumerator, parameter and section variable.
    let records = 0
    let names = 0
    const distinct = new Set<string>()
    const name = (n: string) => {
      names += n.length
      distinct.add(n)
    }
    for (const t of types) {
      records++
      name(t.name)
      for (const part of [t.members, t.values, t.params] as const) {
        if (!part) continue
        records += part.length
        for (const p of part) name(p.name)
      }
      records += t.vars?.length ?? 0
    }
    let distinctChars = 0
    for (const n of distinct) distinctChars += n.length
    limits = {
      work: 32_768 + 2 * records,
      chars: 512 * 1024 + 16 * records + 2 * names,
      rawChars: 1024 * 1024 + 128 * records + 2 * distinctChars,
    }
    cache.set(types, limits)
  }
  return limits
}
