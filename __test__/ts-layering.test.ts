/**
 * The TypeScript modules import one way: no import cycle anywhere in `ts/`. The one allowance is a
 * type-only import between modules of the same directory (a helper that names the type of the class
 * calling it, as `btf/dump-c.ts` names `Btf`): it is erased at compile time and keeps the helper's
 * signature honest. Across directories even type imports go one way, so that, e.g., `binary/` (ELF
 * and byte reading) sits below `btf/`, which sits below `elf/` (the object loader), below `spec.ts`.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'

const root = resolve(__dirname, '../ts')

function sources(dir: string): string[] {
  const out: string[] = []
  for (const e of readdirSync(dir)) {
    const p = join(dir, e)
    if (statSync(p).isDirectory()) out.push(...sources(p))
    else if (p.endsWith('.ts')) out.push(p)
  }
  return out
}

interface Edge {
  to: string
  typeOnly: boolean
}

/** The relative imports and re-exports of a module, each marked type-only or not. */
function importsOf(file: string): Edge[] {
  const text = readFileSync(file, 'utf8')
  const out: Edge[] = []
  for (const m of text.matchAll(/^(import|export)\s+(type\s+)?([^;]*?)\s*from\s+'(\.[^']+)'/gms)) {
    const clause = m[3]!
    const braces = /^\{([^}]*)\}$/s.exec(clause.trim())
    const allTypes =
      braces !== null &&
      braces[1]!
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '')
        .every((s) => s.startsWith('type '))
    out.push({
      to: resolve(dirname(file), m[4]!.replace(/\.js$/, '.ts')),
      typeOnly: m[2] !== undefined || allTypes,
    })
  }
  return out
}

/** Strongly connected components of more than one module (Tarjan). */
function cycles(graph: Map<string, string[]>): string[][] {
  let next = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const out: string[][] = []
  const visit = (v: string): void => {
    index.set(v, next)
    low.set(v, next++)
    stack.push(v)
    onStack.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!))
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = []
      let w: string
      do {
        w = stack.pop()!
        onStack.delete(w)
        scc.push(relative(root, w))
      } while (w !== v)
      if (scc.length > 1) out.push(scc.sort())
    }
  }
  for (const v of graph.keys()) if (!index.has(v)) visit(v)
  return out
}

describe('TypeScript module layering', () => {
  const files = sources(root)

  it('reads the imports it checks (the parser sees real edges)', () => {
    const loader = importsOf(join(root, 'elf/loader.ts'))
    expect(loader.some((e) => e.to === join(root, 'binary/elf.ts') && !e.typeOnly)).toBe(true)
    expect(loader.some((e) => e.to === join(root, 'elf/specs.ts') && e.typeOnly)).toBe(true)
  })

  it('has no import cycle, except type-only imports inside one directory', () => {
    const graph = new Map<string, string[]>()
    for (const f of files) {
      graph.set(
        f,
        importsOf(f)
          .filter((e) => !(e.typeOnly && dirname(e.to) === dirname(f)))
          .map((e) => e.to),
      )
    }
    expect(cycles(graph)).toEqual([])
  })

  it('keeps the object layers in order: binary/ below btf/ below elf/ below spec.ts', () => {
    const rank = (f: string): number | undefined => {
      const r = relative(root, f)
      if (r.startsWith('binary/')) return 0
      if (r.startsWith('btf/')) return 1
      if (r.startsWith('elf/')) return 2
      if (r === 'spec.ts') return 3
      return undefined
    }
    const upward: string[] = []
    for (const f of files) {
      const from = rank(f)
      if (from === undefined) continue
      for (const e of importsOf(f)) {
        const to = rank(e.to)
        if (to !== undefined && to > from) upward.push(`${relative(root, f)} -> ${relative(root, e.to)}`)
      }
    }
    expect(upward).toEqual([])
  })
})
