/**
 * The packages as a release would publish them, installed as a user installs them. A copy of the
 * project (what a clone holds, plus the native build's outputs) goes through the release steps:
 * `npm run artifacts` puts the binary into the platform package, `npm pack` packs both (the main
 * package's `prepack` builds the TypeScript and refuses an incomplete package). The tarballs are
 * installed offline into an empty project, which then uses `ebpf` from CommonJS, ESM, `npx` and a
 * TypeScript consumer compiled with `skipLibCheck: false`; without the platform package, what needs
 * no binary still works and the rest says which binary is missing and how to build it.
 *
 * Expected values: r0 of the assembled programs by hand (RFC 9669), the XDP verdict from
 * `xdp_firewall.c` (a 14-byte frame is under `min_len`: XDP_PASS = 2), file lists from
 * package.json's `files` and the README's links.
 */
import { type SpawnSyncOptions, spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, posix } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const ROOT = join(__dirname, '..')
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  name: string
  version: string
  optionalDependencies?: Record<string, string>
}
const PLATFORM_DIR = join('npm', 'linux-x64-gnu')
const PLATFORM = JSON.parse(readFileSync(join(ROOT, PLATFORM_DIR, 'package.json'), 'utf8')) as {
  name: string
  main: string
}
const FIREWALL = join(__dirname, 'fixtures', 'xdp_firewall.bpf.o')
const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
// Only the host the prebuilt package is for can run the installed binary.
const hostMatches = process.platform === 'linux' && process.arch === 'x64'

interface Outcome {
  status: number | null
  stdout: string
  stderr: string
}

function run(cmd: string, args: readonly string[], cwd: string, options: SpawnSyncOptions = {}): Outcome {
  const r = spawnSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    maxBuffer: 1 << 26,
    // No registry: everything installed comes from the tarballs.
    env: { ...process.env, npm_config_update_notifier: 'false', npm_config_audit: 'false', npm_config_fund: 'false' },
    ...options,
  })
  return { status: r.status, stdout: String(r.stdout), stderr: String(r.stderr) }
}

function ok(o: Outcome, what: string): Outcome {
  if (o.status !== 0) throw new Error(`${what} failed (exit ${o.status}):\n${o.stdout}\n${o.stderr}`)
  return o
}

const node = (cwd: string, args: readonly string[]): Outcome => run(process.execPath, args, cwd)
const tarList = (tgz: string): string[] =>
  ok(run('tar', ['-tzf', tgz], ROOT), `tar -tzf ${tgz}`)
    .stdout.split('\n')
    .filter(Boolean)
    .map((f) => f.replace(/^package\//, ''))

let stage = ''
let project = ''
let mainTgz = ''
let platformTgz = ''

beforeAll(() => {
  for (const f of ['native/index.js', 'native/index.d.ts', join('native', PLATFORM.main)]) {
    if (!existsSync(join(ROOT, f))) throw new Error(`${f} is missing: run \`npm run build\` first`)
  }
  // The project as a clone has it, plus the native build's outputs; no dist/ (prepack builds it).
  stage = mkdtempSync(join(tmpdir(), 'ebpf-release-'))
  const skip = new Set(['.git', 'node_modules', 'target', 'dist', 'coverage'].map((d) => join(ROOT, d)))
  cpSync(ROOT, stage, {
    recursive: true,
    filter: (src) => !skip.has(src) && !(src.startsWith(join(ROOT, 'npm')) && src.endsWith('.node')),
  })
  symlinkSync(join(ROOT, 'node_modules'), join(stage, 'node_modules'), 'dir')

  ok(run('npm', ['run', 'artifacts'], stage), 'npm run artifacts')
  const packed = ok(run('npm', ['pack', '--pack-destination', stage], stage), 'npm pack (main)')
  mainTgz = join(stage, packed.stdout.trim().split('\n').at(-1)!)
  const packedPlatform = ok(
    run('npm', ['pack', '--pack-destination', stage], join(stage, PLATFORM_DIR)),
    'npm pack (platform)',
  )
  platformTgz = join(stage, packedPlatform.stdout.trim().split('\n').at(-1)!)

  project = mkdtempSync(join(tmpdir(), 'ebpf-consumer-'))
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }))
  ok(run('npm', ['install', '--offline', mainTgz, platformTgz], project), 'npm install --offline')
}, 600_000)

afterAll(() => {
  for (const d of [stage, project]) if (d) rmSync(d, { recursive: true, force: true })
})

describe('the packed tarballs', () => {
  it('main package: the built JavaScript and types, the loader, the CLI, what the README links; no binary', () => {
    const files = tarList(mainTgz)
    const shipped = ['dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js', 'bin/ebpf.js', 'package.json']
    for (const f of [...shipped, 'LICENSE-MIT', 'LICENSE-APACHE']) {
      expect(files).toContain(f)
    }
    expect(files).toContain('native/index.js')
    expect(files).toContain('native/index.d.ts')
    expect(files.filter((f) => f.endsWith('.node'))).toEqual([])
    // Every relative link of the README (shipped as the package's page) points into the package.
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
    const links = [...readme.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)].map((m) => m[1]!).filter((l) => !/^\w+:/.test(l))
    expect(links.length).toBeGreaterThan(0)
    for (const l of links) expect(files, `README links ${l}`).toContain(posix.normalize(l))
  })

  it('source maps name shipped sources', () => {
    const files = new Set(tarList(mainTgz))
    const maps = [...files].filter((f) => f.endsWith('.js.map'))
    expect(maps.length).toBeGreaterThan(10)
    const installed = join(project, 'node_modules', PKG.name)
    for (const m of maps) {
      const { sources } = JSON.parse(readFileSync(join(installed, m), 'utf8')) as { sources: string[] }
      for (const s of sources) expect(files, `${m} names ${s}`).toContain(posix.join(posix.dirname(m), s))
    }
  })

  it('main package depends on nothing but the platform packages, at exactly its version', () => {
    const installed = JSON.parse(readFileSync(join(project, 'node_modules', PKG.name, 'package.json'), 'utf8'))
    expect(installed.dependencies ?? {}).toEqual({})
    expect(installed.optionalDependencies).toEqual({ [PLATFORM.name]: PKG.version })
  })

  it('platform package: its binary, package.json, README and the two licenses', () => {
    const expected = [PLATFORM.main, 'README.md', 'package.json', 'LICENSE-MIT', 'LICENSE-APACHE']
    expect(tarList(platformTgz).sort()).toEqual(expected.sort())
  })

  it('prepack refuses a platform package without its binary, and a main package without its loader', () => {
    const empty = mkdtempSync(join(tmpdir(), 'ebpf-refuse-'))
    try {
      // A platform package folder as a fresh clone has it.
      const dir = join(empty, PLATFORM_DIR)
      mkdirSync(dir, { recursive: true })
      cpSync(join(ROOT, PLATFORM_DIR, 'package.json'), join(dir, 'package.json'))
      mkdirSync(join(empty, 'scripts'))
      cpSync(join(ROOT, 'scripts', 'check-package.js'), join(empty, 'scripts', 'check-package.js'))
      const platform = run('npm', ['pack', '--dry-run'], dir)
      expect(platform.status).not.toBe(0)
      expect(platform.stderr).toContain(`${PLATFORM.main} is missing`)
      expect(platform.stderr).toContain('npm run artifacts')
      // The main package without dist/ and native/ (the check prepack runs after tsc).
      writeFileSync(join(empty, 'package.json'), JSON.stringify({ ...PKG, optionalDependencies: {} }))
      const main = node(empty, [join(empty, 'scripts', 'check-package.js')])
      expect(main.status).toBe(1)
      expect(main.stderr).toContain('native/index.js is missing')
      expect(main.stderr).toContain('dist/index.js is missing')
      expect(main.stderr).toContain(`optionalDependencies must list ${PLATFORM.name} at exactly ${PKG.version}`)
    } finally {
      rmSync(empty, { recursive: true, force: true })
    }
  })
})

describe.runIf(hostMatches)('installed into a fresh project', () => {
  it('require: runs a program with the binary of the platform package', () => {
    const o = ok(
      node(project, [
        '-e',
        `const { assemble, Program } = require('ebpf')
         const prog = new Program({ instructions: assemble('r0 = *(u8 *)(r1 + 1)\\nr0 *= 3\\nexit') })
         console.log(String(prog.run({ data: Uint8Array.of(5, 14) }).r0))
         console.log(Object.keys(require.cache).filter((f) => f.endsWith('.node')).join(','))`,
      ]),
      'require',
    )
    const [r0, binaries] = o.stdout.trim().split('\n')
    expect(r0).toBe('42')
    expect(binaries).toBe(join(project, 'node_modules', PLATFORM.name, PLATFORM.main))
  })

  it('import: ESM named exports', () => {
    const o = ok(
      node(project, [
        '--input-type=module',
        '-e',
        `import { assemble, Program, loadCollectionSpecSync, Collection } from 'ebpf'
         const prog = new Program({ instructions: assemble('r0 = 0x1122 ll\\nexit') })
         console.log(String(prog.run({}).r0), typeof loadCollectionSpecSync, typeof Collection)`,
      ]),
      'import',
    )
    expect(o.stdout.trim()).toBe(`${0x1122} function function`)
  })

  it('npx ebpf: --version, and a run of a clang-built object', () => {
    expect(ok(run('npx', ['--offline', 'ebpf', '--version'], project), 'npx ebpf --version').stdout).toBe(
      `ebpf ${PKG.version}\n`,
    )
    // An Ethernet header alone (14 bytes, the least an XDP test run takes): under min_len (34).
    const frame = '00'.repeat(14)
    const o = ok(run('npx', ['--offline', 'ebpf', 'run', FIREWALL, '--hex', frame, '--json'], project), 'npx ebpf run')
    expect(JSON.parse(o.stdout).retval).toBe(2)
  }, 120_000)

  it('types: a TypeScript consumer compiles with skipLibCheck false (CommonJS and ESM)', () => {
    writeFileSync(
      join(project, 'consumer.ts'),
      `import { assemble, BpfMap, Collection, type CollectionSpec, loadCollectionSpecSync, Program, type RunResult } from 'ebpf'
const prog = new Program({ instructions: assemble('r0 = 1\\nexit'), helpers: { 1000: ([r1]) => r1 + 1n } })
const res: RunResult = prog.run({ data: new Uint8Array(4) })
export const r0: bigint = res.r0
const spec: CollectionSpec = loadCollectionSpecSync('prog.bpf.o')
interface Maps { counts: { key: number; value: bigint } }
export const counts: BpfMap<number, bigint> = new Collection<Maps>(spec).maps.get('counts')
`,
    )
    writeFileSync(
      join(project, 'consumer.mts'),
      `import { assemble, Program } from 'ebpf'
export const r0: bigint = new Program({ instructions: assemble('r0 = 1\\nexit') }).run({}).r0
`,
    )
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          module: 'node16',
          moduleResolution: 'node16',
          target: 'ES2022',
          noEmit: true,
          skipLibCheck: false,
          // TypeScript's own lib files are not the package's; checking them only costs time.
          skipDefaultLibCheck: true,
          types: ['node'],
          typeRoots: [join(ROOT, 'node_modules', '@types')],
        },
        files: ['consumer.ts', 'consumer.mts'],
      }),
    )
    const o = node(project, [tsc, '-p', project])
    expect(o.stdout + o.stderr).toBe('')
    expect(o.status).toBe(0)
  }, 300_000)

  it('without the platform package: help, --version and the assembler work; a run names the missing binary', () => {
    const moved = join(project, 'platform-package-aside')
    const installed = join(project, 'node_modules', PLATFORM.name)
    cpSync(installed, moved, { recursive: true })
    rmSync(installed, { recursive: true })
    try {
      expect(ok(node(project, [join('node_modules', 'ebpf', 'bin', 'ebpf.js'), '--version']), '--version').stdout).toBe(
        `ebpf ${PKG.version}\n`,
      )
      expect(ok(node(project, [join('node_modules', 'ebpf', 'bin', 'ebpf.js'), 'help']), 'help').stdout).toContain(
        'Usage: ebpf',
      )
      const o = node(project, [
        '-e',
        `const { assemble, Program, NativeBindingError } = require('ebpf')
         console.log(assemble('exit').length)
         try { new Program({ instructions: assemble('exit') }) } catch (e) {
           console.log(e instanceof NativeBindingError, e.code, e.platform, e.packageName)
           console.log(e.message)
         }`,
      ])
      const [length, fields, message] = ok(o, 'require without binary').stdout.trim().split('\n')
      expect(length).toBe('8')
      expect(fields).toBe(`true ENOTSUPP linux-x64-gnu ${PLATFORM.name}`)
      expect(message).toContain('no native binary for linux-x64-gnu')
      expect(message).toContain(`the package '${PLATFORM.name}' is not installed`)
      expect(message).toContain('npm ci && npm run build')
      // The CLI: one line naming the same, exit 1.
      const cli = node(project, [join('node_modules', 'ebpf', 'bin', 'ebpf.js'), 'run', FIREWALL, '--hex', '00'])
      expect(cli.status).toBe(1)
      expect(cli.stderr).toContain(`no native binary for linux-x64-gnu: the package '${PLATFORM.name}'`)
      expect(cli.stderr).not.toMatch(/\n\s+at /)
    } finally {
      cpSync(moved, installed, { recursive: true })
    }
  })
})
