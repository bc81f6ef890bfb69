/**
 * `ebpf gen skeleton`: the generated module must compile under `tsc --strict` against the package's
 * own declarations, refuse wrong names and types at compile time, and run: the expected results
 * come from globals.c (XDP_PASS = 2 while magic is 0xfeedfacecafebeef, XDP_ABORTED = 0 otherwise,
 * packets_seen starts at 7 and counts each passing packet; a packet longer than limits.max_len is
 * XDP_DROP = 1 and adds weights[limits.level & 3] = weights[2] = 4 to drops).
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const root = join(__dirname, '..')
const bin = join(root, 'bin', 'ebpf.js')
const GLOBALS = join(__dirname, 'fixtures', 'globals.bpf.o')
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')

let work = ''
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'ebpf-skeleton-'))
  // A user's project: the package as node_modules/ebpf.
  mkdirSync(join(work, 'node_modules'))
  symlinkSync(root, join(work, 'node_modules', 'ebpf'))
})
afterAll(() => rmSync(work, { recursive: true, force: true }))

function ebpf(args: readonly string[]) {
  return spawnSync(process.execPath, [bin, ...args], { cwd: work, encoding: 'utf8' })
}

describe('ebpf gen skeleton', () => {
  it('names the class after the file and says what it needs', () => {
    const out = ebpf(['gen', 'skeleton', GLOBALS])
    expect(out.status).toBe(0)
    expect(out.stdout).toContain('export class Globals {')
    expect(out.stdout).toContain('import { type BpfMap, Collection,')
    expect(ebpf(['gen', 'skeleton']).stderr).toContain('missing OBJ.o')
  })

  it('compiles strict, types names and values, and runs as the C source says', () => {
    expect(ebpf(['gen', 'skeleton', GLOBALS, '-o', join(work, 'globals.skel.ts')]).status).toBe(0)
    writeFileSync(
      join(work, 'use.ts'),
      [
        "import { Globals } from './globals.skel'",
        'const eth = (n: number) => new Uint8Array(n)',
        'const skel = new Globals()',
        'const a = skel.programs.xdp_globals.run({ data: eth(64) }).retval',
        "const seen: bigint = skel.variable('packets_seen')",
        'const other = new Globals({ variables: { magic: 1n, limits: { max_packets: 1000, max_len: 100, enabled: 1, level: 2 } } })',
        'const b = other.programs.xdp_globals.run({ data: eth(64) }).retval',
        'const c = other.programs.xdp_globals.run({ data: eth(200) }).retval',
        "const drops = other.variable('drops')",
        "const key = other.maps['.data'].lookup(new Uint8Array(4))",
        'console.log(JSON.stringify({ a, seen: String(seen), b, c, drops: String(drops), hasData: key !== undefined }))',
      ].join('\n'),
    )
    writeFileSync(
      join(work, 'bad.ts'),
      [
        "import { Globals } from './globals.skel'",
        'const skel = new Globals()',
        'skel.programs.no_such_program.run({ data: new Uint8Array(64) })',
        "const n: number = skel.variable('magic')",
        'export { n }',
      ].join('\n'),
    )
    const args = [
      '--strict',
      '--target',
      'ES2022',
      '--module',
      'commonjs',
      '--moduleResolution',
      'node',
      '--types',
      'node',
      '--typeRoots',
      join(root, 'node_modules', '@types'),
    ]
    const bad = spawnSync(process.execPath, [tsc, ...args, '--noEmit', join(work, 'bad.ts')], {
      cwd: work,
      encoding: 'utf8',
    })
    const errors = bad.stdout.split('\n').filter((l) => l.includes('error TS'))
    expect(errors.map((e) => e.replace(/^.*bad\.ts\((\d+),\d+\): error (TS\d+).*$/, '$1 $2'))).toEqual([
      '3 TS2339',
      '4 TS2322',
    ])
    const good = spawnSync(process.execPath, [tsc, ...args, join(work, 'use.ts')], { cwd: work, encoding: 'utf8' })
    expect(good.stdout).toBe('')
    expect(good.status).toBe(0)
    const run = spawnSync(process.execPath, [join(work, 'use.js')], { cwd: work, encoding: 'utf8' })
    expect(run.stderr).toBe('')
    expect(JSON.parse(run.stdout)).toEqual({ a: 2, seen: '8', b: 0, c: 1, drops: '4', hasData: true })
  }, 180_000)
})
