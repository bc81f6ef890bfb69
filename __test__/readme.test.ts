/**
 * README.md is executable: every JavaScript and shell block in it runs here, as a reader would run
 * it, against the built package (`require('ebpf')` / `import ... from 'ebpf'`).
 *
 * - ```js blocks run with node: as ES modules when they have `import` lines, else as CommonJS. A
 *   trailing comment that states a value (`x  // 42n`, `console.log(y)  // 'text'`, `const z = f()
 *   // { a: 1 }`) is checked against the value of the code before it: the value ends at the first
 *   ` (` or `;` outside brackets (what follows is prose), `Uint8Array [1, 2]` is a byte array, and an
 *   object states the properties that matter (others are not compared). Comments that start with a
 *   word are prose, and so are comments on lines inside a longer construct (an option of an object
 *   literal). A line with a stated value that never runs fails the block.
 * - ```sh blocks are either transcripts (`$ command` lines followed by the output it prints,
 *   stdout and stderr together; `...` in an output line stands for any text, and `N ns` for any
 *   timing), which run in a scratch directory where `__test__/`, `examples/` and `bench/` are the
 *   project's and `ebpf` is bin/ebpf.js; or commands that run the project's own suites (`npm test`,
 *   `cargo test -p ... --test ...`, `npx vitest run FILE`, ...), which npm test runs anyway: those
 *   are checked to name scripts, packages, test targets and files that exist, and environment
 *   variables that the named suites read.
 * - A block preceded by `<!-- not run: REASON -->` is skipped, and says why.
 * Expected values are the README's own (hand-computed or taken from the C sources and the kernel's
 * conventions); the code under test never provides them.
 */
import { spawnSync } from 'node:child_process'
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const ROOT = join(__dirname, '..')
const README = readFileSync(join(ROOT, 'README.md'), 'utf8')

interface Block {
  lang: string
  code: string
  /** 1-based README line of the block's first code line. */
  line: number
  /** The reason given by a `<!-- not run: ... -->` marker. */
  notRun?: string
}

/** The fenced code blocks of a Markdown text. */
function codeBlocks(markdown: string): Block[] {
  const lines = markdown.split('\n')
  const blocks: Block[] = []
  for (let i = 0; i < lines.length; i++) {
    const open = /^(`{3,}|~{3,})\s*([\w+-]*)/.exec(lines[i]!)
    if (!open) continue
    const fence = open[1]!
    let end = i + 1
    while (end < lines.length && !lines[end]!.startsWith(fence)) end++
    let before = i - 1
    while (before >= 0 && lines[before]!.trim() === '') before--
    const marker = before >= 0 ? /^<!--\s*not run:(.*)-->\s*$/.exec(lines[before]!) : null
    blocks.push({
      lang: open[2]!.toLowerCase(),
      code: lines.slice(i + 1, end).join('\n'),
      line: i + 2,
      notRun: marker ? marker[1]!.trim() : undefined,
    })
    i = end
  }
  return blocks
}

// ---------------------------------------------------------------------------------------------
// JavaScript blocks

interface Comment {
  /** 0-based line in the block. */
  line: number
  /** Column of the `//`. */
  column: number
  code: string
  text: string
}

/**
 * The trailing `//` comment of every line, found by scanning the block as JavaScript: strings,
 * template literals (which span lines, like the assembler texts) and block comments are skipped.
 */
function lineComments(code: string): Comment[] {
  const out: Comment[] = []
  let quote: string | undefined // ', " or `
  let blockComment = false
  const lines = code.split('\n')
  for (let n = 0; n < lines.length; n++) {
    const l = lines[n]!
    for (let i = 0; i < l.length; i++) {
      const c = l[i]!
      if (blockComment) {
        if (c === '*' && l[i + 1] === '/') {
          blockComment = false
          i++
        }
      } else if (quote) {
        if (c === '\\') i++
        else if (c === quote) quote = undefined
      } else if (c === '/' && l[i + 1] === '/') {
        out.push({ line: n, column: i, code: l.slice(0, i).trimEnd(), text: l.slice(i + 2).trim() })
        break
      } else if (c === '/' && l[i + 1] === '*') {
        blockComment = true
        i++
      } else if (c === "'" || c === '"' || c === '`') {
        quote = c
      }
    }
    // Quotes do not span lines; template literals do.
    if (quote !== '`') quote = undefined
  }
  return out
}

/** The value a comment states, as JavaScript source, or undefined for prose. */
function statedValue(text: string): string | undefined {
  let depth = 0
  let quote: string | undefined
  let end = text.length
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (quote) {
      if (c === '\\') i++
      else if (c === quote) quote = undefined
    } else if (c === "'" || c === '"' || c === '`') quote = c
    else if ('([{'.includes(c)) {
      if (c === '(' && depth === 0 && text[i - 1] === ' ') {
        end = i
        break
      }
      depth++
    } else if (')]}'.includes(c)) depth--
    else if (c === ';' && depth === 0) {
      end = i
      break
    }
  }
  const value = text.slice(0, end).trim()
  return /^(-?\d|'|"|`|\{|\[|Uint8Array\b|true\b|false\b|null\b|undefined\b)/.test(value) ? value : undefined
}

// biome-ignore lint/complexity/useArrowFunction: the constructor of async functions
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor as new (body: string) => unknown

function isExpression(code: string): boolean {
  try {
    new AsyncFunction(`return (${code}\n)`)
    return true
  } catch {
    return false
  }
}

interface Instrumented {
  source: string
  /** Block lines (0-based) whose stated value is checked. */
  checked: number[]
  problems: string[]
}

/** The block with each stated value wrapped in a check; line numbers stay those of the block. */
function instrument(code: string, readmeLine: number): Instrumented {
  const lines = code.split('\n')
  const comments = lineComments(code)
  const checked: number[] = []
  const problems: string[] = []
  for (let k = 0; k < comments.length; k++) {
    const c = comments[k]!
    if (c.code === '') continue
    // A value may go on over comment-only lines that line up with its `//`.
    let text = c.text
    for (let j = k + 1; j < comments.length; j++) {
      const next = comments[j]!
      if (next.line !== comments[j - 1]!.line + 1 || next.code !== '' || next.column !== c.column) break
      text += ` ${next.text}`
    }
    const value = statedValue(text)
    if (value === undefined) continue
    const at = readmeLine + c.line
    const expected = JSON.stringify(value)
    const indent = /^\s*/.exec(c.code)![0]
    const stmt = c.code.trim().replace(/;$/, '')
    const log = /^console\.log\(([\s\S]*)\)$/.exec(stmt)
    const decl = /^((?:const|let|var)\s+[\w$]+\s*=)\s*([\s\S]*)$/.exec(stmt)
    let replaced: string
    if (log && isExpression(log[1]!)) {
      replaced = `console.log(__readme.check((${log[1]}), ${expected}, ${at}))`
    } else if (decl && isExpression(decl[2]!)) {
      replaced = `${decl[1]} __readme.check((${decl[2]}), ${expected}, ${at})`
    } else if (isExpression(stmt)) {
      replaced = `__readme.check((${stmt}), ${expected}, ${at})`
    } else {
      // A line inside a longer construct (an option of an object literal, ...): its comment annotates.
      continue
    }
    lines[c.line] = `${indent}${replaced}  // ${c.text}`
    checked.push(at)
  }
  // Declared first, on the first line, so that line numbers do not move.
  lines[0] = `__readme.expectChecks(${JSON.stringify(checked)}); ${lines[0]}`
  return { source: lines.join('\n'), checked, problems }
}

/** Loaded with `node --require` before each block: the checks and the report of unchecked lines. */
const PRELUDE = `'use strict'
const { inspect } = require('node:util')
const pending = new Set()
function expectedValue(source, line) {
  const js = source.replace(/Uint8Array(?:\\(\\d+\\))? \\[([^\\]]*)\\]/g, 'Uint8Array.of($1)')
  try {
    return new Function('"use strict"; return (' + js + ')')()
  } catch (e) {
    throw new Error('README.md:' + line + ': the comment reads like a value but is not one (' + source + '): ' + e.message + '; write a JavaScript value or start the comment with a word')
  }
}
function matches(actual, expected) {
  if (expected instanceof Uint8Array) {
    return actual instanceof Uint8Array && actual.length === expected.length && expected.every((b, i) => actual[i] === b)
  }
  if (Array.isArray(expected)) {
    return Array.isArray(actual) && actual.length === expected.length && expected.every((e, i) => matches(actual[i], e))
  }
  if (expected !== null && typeof expected === 'object') {
    return actual !== null && typeof actual === 'object' && Object.keys(expected).every((k) => matches(actual[k], expected[k]))
  }
  return Object.is(actual, expected)
}
globalThis.__readme = {
  expectChecks(lines) {
    for (const l of lines) pending.add(l)
  },
  check(actual, source, line) {
    const expected = expectedValue(source, line)
    if (!matches(actual, expected)) {
      throw new Error('README.md:' + line + ': the comment says ' + source + ', the code gives ' + inspect(actual, { depth: 4 }))
    }
    pending.delete(line)
    return actual
  },
}
process.on('exit', () => {
  if (pending.size > 0) {
    process.stderr.write('the lines ' + [...pending].map((l) => 'README.md:' + l).join(', ') + ' state values but never ran\\n')
    process.exitCode = 1
  }
})
`

// ---------------------------------------------------------------------------------------------
// Shell blocks

interface Transcript {
  command: string
  output: string[]
}

function transcripts(code: string): Transcript[] | undefined {
  const lines = code.split('\n')
  if (!lines.some((l) => l.startsWith('$ '))) return undefined
  const out: Transcript[] = []
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!
    if (!l.startsWith('$ ')) {
      if (out.length === 0) return undefined
      out.at(-1)!.output.push(l)
      continue
    }
    let command = l.slice(2)
    while (command.endsWith('\\') && i + 1 < lines.length) command = `${command.slice(0, -1)} ${lines[++i]!.trim()}`
    out.push({ command, output: [] })
  }
  for (const t of out) while (t.output.length > 0 && t.output.at(-1)!.trim() === '') t.output.pop()
  return out
}

/** One expected output line as a pattern: `...` is any text, `N ns` any timing. */
function outputPattern(line: string): RegExp {
  const escaped = line
    .trimEnd()
    .split('...')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\d+ ns\b/g, '\\d+ ns'))
    .join('.*')
  return new RegExp(`^${escaped}$`)
}

/** Words of a simple command line (quotes removed; no expansion). */
function words(command: string): string[] {
  return [...command.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]!)
}

const PACKAGE = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
}

function globFiles(dir: string, pattern: string, ext: string): string[] {
  const re = new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`)
  if (!existsSync(dir)) return []
  return readdirSync(dir)
    .filter(
      (f) =>
        (f.endsWith(ext) && re.test(f.slice(0, -ext.length))) || (re.test(f) && existsSync(join(dir, f, 'main.rs'))),
    )
    .map((f) => join(dir, f))
}

/**
 * Problems with a command that runs one of the project's suites, or undefined when the command is
 * not one (then the block must be a transcript or marked).
 */
function suiteCommandProblems(command: string): string[] | undefined {
  const w = words(command.replace(/\s#.*$/, ''))
  const env: string[] = []
  while (w.length > 0 && /^[A-Z_][A-Z0-9_]*=/.test(w[0]!)) env.push(w.shift()!.split('=')[0]!)
  const problems: string[] = []
  /** Files the command runs, where the environment variables it sets must be read. */
  let readers: string[] = []
  let fallback: string[] = []
  const [cmd, sub] = w
  if (cmd === 'npm') {
    if (sub === 'install' || sub === 'ci' || sub === 'i') return []
    const script = sub === 'run' ? w[2] : sub
    if (script === undefined || !['start', 'test', 'run'].includes(sub!)) return undefined
    if (!PACKAGE.scripts[script]) problems.push(`package.json has no script '${script}'`)
    return problems
  }
  if (cmd === 'npx' && sub === 'vitest') {
    const files = w.slice(2).filter((a) => a !== 'run' && !a.startsWith('-'))
    for (const f of files) if (!existsSync(join(ROOT, f))) problems.push(`no file ${f}`)
    readers = files.map((f) => join(ROOT, f))
    fallback = filesUnder(join(ROOT, '__test__', 'helpers'))
  } else if (cmd === 'cargo' && ['test', 'bench', 'run', 'build'].includes(sub!)) {
    const pkg = w[w.indexOf('-p') + 1]
    const crate = w.includes('-p') ? join(ROOT, 'crates', pkg!) : undefined
    if (crate && !existsSync(join(crate, 'Cargo.toml'))) problems.push(`no crate ${pkg} under crates/`)
    for (const [flag, dir] of [
      ['--test', 'tests'],
      ['--bench', 'benches'],
      ['--example', 'examples'],
    ] as const) {
      for (let i = w.indexOf(flag); i >= 0; i = w.indexOf(flag, i + 1)) {
        const found = crate ? globFiles(join(crate, dir), w[i + 1]!, '.rs') : []
        if (found.length === 0) problems.push(`no ${flag.slice(2)} target ${w[i + 1]} in ${pkg ?? 'the workspace'}`)
        readers.push(...found)
      }
    }
    fallback = crate ? filesUnder(crate) : filesUnder(join(ROOT, 'crates'))
  } else if (cmd === 'node' || cmd?.includes('/')) {
    const file = cmd === 'node' ? sub! : cmd!
    if (!existsSync(join(ROOT, file))) problems.push(`no file ${file}`)
    else if (cmd !== 'node' && !(statSync(join(ROOT, file)).mode & 0o111)) problems.push(`${file} is not executable`)
    readers = [join(ROOT, file)]
  } else {
    return undefined
  }
  for (const name of env) {
    const reads = (files: string[]) => files.some((f) => existsSync(f) && readFileSync(f, 'utf8').includes(name))
    if (!reads(readers) && !reads(fallback)) problems.push(`sets ${name}, which nothing it runs reads`)
  }
  return problems
}

// ---------------------------------------------------------------------------------------------

let work = ''
let bin = ''

function which(program: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v '${program}'`], { encoding: 'utf8' })
  return r.status === 0 ? r.stdout.trim() : undefined
}

/** The first of `clang`, `clang-22`, ... `clang-14` on PATH (Debian installs clang versioned only). */
const CLANG = ['clang', ...Array.from({ length: 9 }, (_, i) => `clang-${22 - i}`)].map(which).find(Boolean)

/** Whether a transcript's program can run here (`ebpf` is this project's, `clang` any version). */
function available(program: string): boolean {
  if (program === 'ebpf') return true
  if (program === 'clang') return CLANG !== undefined
  return which(program) !== undefined
}

beforeAll(() => {
  if (!existsSync(join(ROOT, 'dist', 'index.js'))) throw new Error('dist/ is missing: run `npm run build`')
  work = mkdtempSync(join(tmpdir(), 'ebpf-readme-'))
  // `require('ebpf')` from the scratch directory is this project; its relative paths are the project's.
  mkdirSync(join(work, 'node_modules'))
  symlinkSync(ROOT, join(work, 'node_modules', 'ebpf'), 'dir')
  for (const d of ['__test__', 'examples', 'bench']) symlinkSync(join(ROOT, d), join(work, d), 'dir')
  bin = join(work, '.bin')
  mkdirSync(bin)
  symlinkSync(join(ROOT, 'bin', 'ebpf.js'), join(bin, 'ebpf'))
  if (CLANG && !CLANG.endsWith('/clang')) symlinkSync(CLANG, join(bin, 'clang'))
  writeFileSync(join(work, 'prelude.cjs'), PRELUDE)
})

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true })
})

const blocks = codeBlocks(README)
const isJs = (b: Block) => ['js', 'javascript', 'cjs', 'mjs'].includes(b.lang)
const isShell = (b: Block) => ['sh', 'bash', 'shell', 'console'].includes(b.lang)

describe('README.md code blocks', () => {
  it('has JavaScript and shell blocks, and every marker gives a reason', () => {
    expect(blocks.filter(isJs).length).toBeGreaterThan(3)
    expect(blocks.filter(isShell).length).toBeGreaterThan(3)
    for (const b of blocks) if (b.notRun !== undefined) expect(b.notRun, `README.md:${b.line}`).not.toBe('')
  })

  for (const b of blocks.filter((b) => isJs(b) || isShell(b))) {
    const name = `README.md:${b.line} (${b.lang})`
    if (b.notRun !== undefined) {
      it.skip(`${name}: not run: ${b.notRun}`, () => {})
      continue
    }
    if (isJs(b)) {
      it(`${name} runs and its stated values hold`, () => {
        const { source, problems } = instrument(b.code, b.line)
        expect(problems).toEqual([])
        const esm = /^\s*import\s/m.test(b.code)
        const file = join(work, `readme-${b.line}.${esm ? 'mjs' : 'cjs'}`)
        writeFileSync(file, source)
        const r = spawnSync(process.execPath, ['--require', join(work, 'prelude.cjs'), file], {
          cwd: work,
          encoding: 'utf8',
        })
        expect(r.stderr, `stdout:\n${r.stdout}`).toBe('')
        expect(r.status).toBe(0)
      })
      continue
    }
    const steps = transcripts(b.code)
    if (steps) {
      const programs = steps.map((s) => words(s.command).find((x) => !/^[A-Z_][A-Z0-9_]*=/.test(x))!)
      const missing = programs.filter((p) => !available(p))
      it.skipIf(missing.length > 0)(
        `${name} prints what it shows${missing.length > 0 ? `: skipped, ${missing.join(', ')} not installed` : ''}`,
        () => {
          for (const s of steps) {
            const r = spawnSync('bash', ['-c', `exec 2>&1\n${s.command}`], {
              cwd: work,
              encoding: 'utf8',
              env: pathEnv(),
            })
            const actual = r.stdout.split('\n').map((l) => l.trimEnd())
            while (actual.length > 0 && actual.at(-1) === '') actual.pop()
            const ok =
              actual.length === s.output.length && s.output.every((line, i) => outputPattern(line).test(actual[i]!))
            expect(ok, `$ ${s.command}\nREADME shows:\n${s.output.join('\n')}\nit prints:\n${actual.join('\n')}`).toBe(
              true,
            )
          }
        },
      )
      continue
    }
    it(`${name} names suites, targets and files that exist`, () => {
      const commands = b.code
        .split('\n')
        .filter((l) => l.trim() !== '' && !l.trim().startsWith('#'))
        .flatMap((l) => l.split('&&'))
      const problems = commands.flatMap((c) => {
        const found = suiteCommandProblems(c.trim())
        if (found === undefined) {
          return [
            `'${c.trim()}' neither runs a suite nor is a '$ ' transcript: show its output after '$ ', or mark the block <!-- not run: REASON -->`,
          ]
        }
        return found.map((p) => `'${c.trim()}': ${p}`)
      })
      expect(problems, `README.md:${b.line}`).toEqual([])
    })
  }
})

function pathEnv(): NodeJS.ProcessEnv {
  return { ...process.env, PATH: `${bin}:${process.env.PATH}`, FORCE_COLOR: '0', NO_COLOR: '1' }
}
