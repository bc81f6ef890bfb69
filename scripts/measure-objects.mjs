#!/usr/bin/env node
/*
 * `node scripts/measure-objects.mjs DIR [--verbose]`: how many of the ELF objects under DIR (found
 * recursively, `*.o`) `loadCollectionSpec` parses, and how many of their programs of a supported
 * type load in checked mode, each alone (`new Collection(spec, { programs: [name], mode: 'checked' })`).
 * Programs the spec marks `unsupported`, and those of type `unspec` (their section name does not say
 * a type; the user sets it), are counted apart.
 * Reads the built package (`npm run build:ts` first). Third-party objects are measured where they
 * lie (e.g. a checkout under /tmp); none are part of this repository.
 *
 * Prints one line per object that fails to parse (and, with --verbose, per program that fails to
 * load), then the totals and the failures grouped by their message with names and numbers removed.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { Collection, loadCollectionSpecSync } from '../dist/index.js'

const dir = process.argv[2]
const verbose = process.argv.includes('--verbose')
if (!dir) {
  process.stderr.write('usage: node scripts/measure-objects.mjs DIR [--verbose]\n')
  process.exit(1)
}

function objects(d) {
  const out = []
  for (const e of readdirSync(d).sort()) {
    const p = join(d, e)
    if (statSync(p).isDirectory()) out.push(...objects(p))
    else if (e.endsWith('.o')) out.push(p)
  }
  return out
}

/** The message with quoted names and numbers replaced, so that failures group by their cause. */
const shape = (m) =>
  m
    .replace(/'[^']*'/g, "'_'")
    .replace(/\d+/g, 'N')
    .slice(0, 140)

const parseFailures = new Map()
const loadFailures = new Map()
const count = (m, k, name) => {
  const e = m.get(k) ?? []
  e.push(name)
  m.set(k, e)
}
let parsed = 0
let programs = 0
let runnable = 0
let loaded = 0
let unsupported = 0
let untyped = 0
const files = objects(dir)
for (const f of files) {
  const name = relative(dir, f)
  let spec
  try {
    spec = loadCollectionSpecSync(readFileSync(f))
    parsed++
  } catch (e) {
    process.stdout.write(`parse FAIL ${name}: ${e.code ?? ''} ${e.message}\n`)
    count(parseFailures, `${e.code ?? e.name}: ${shape(e.message)}`, name)
    continue
  }
  for (const p of spec.programs.values()) {
    programs++
    if (p.unsupported !== undefined) {
      unsupported++
      continue
    }
    if (p.type === 'unspec') {
      untyped++
      continue
    }
    runnable++
    try {
      // Pins are process-wide: each object gets its own pin directory, as separate loads would.
      new Collection(spec, { programs: [p.name], mode: 'checked', pinPath: `/measure/${files.indexOf(f)}` })
      loaded++
    } catch (e) {
      if (verbose) process.stdout.write(`load FAIL ${name} ${p.name} (${p.type}): ${e.code ?? ''} ${e.message}\n`)
      count(loadFailures, `${e.code ?? e.name}: ${shape(e.message)}`, `${name}:${p.name}`)
    }
  }
}
const pct = (a, b) => (b === 0 ? '-' : `${((100 * a) / b).toFixed(1)}%`)
process.stdout.write(`\nobjects: ${files.length}, parsed: ${parsed} (${pct(parsed, files.length)})\n`)
process.stdout.write(
  `programs: ${programs}, marked unsupported by the spec: ${unsupported}, type unspec (section name says none): ${untyped}\n` +
    `loaded in checked mode, each alone: ${loaded} of the other ${runnable} (${pct(loaded, runnable)})\n`,
)
for (const [title, m] of [
  ['parse failures', parseFailures],
  ['load failures', loadFailures],
]) {
  if (m.size === 0) continue
  process.stdout.write(`\n${title} by cause:\n`)
  for (const [k, v] of [...m].sort((a, b) => b[1].length - a[1].length)) {
    process.stdout.write(`${String(v.length).padStart(4)}  ${k}\n        e.g. ${v.slice(0, 3).join(', ')}\n`)
  }
}
