/**
 * Typed maps end to end: the declarations generated from an object's BTF type a Collection's maps in
 * user code. Checked with the real compiler: correct use compiles, a wrong value type does not.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadCollectionSpec } from '../ts/index'

const ROOT = join(__dirname, '..')
const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')

function compile(dir: string, files: string[]): { ok: boolean; output: string } {
  try {
    execFileSync(
      process.execPath,
      [
        tsc,
        '--noEmit',
        '--strict',
        '--module',
        'node16',
        '--moduleResolution',
        'node16',
        '--skipLibCheck',
        '--types',
        'node',
        ...files.map((f) => join(dir, f)),
      ],
      {
        cwd: ROOT,
        encoding: 'utf8',
        stdio: 'pipe',
      },
    )
    return { ok: true, output: '' }
  } catch (e) {
    return { ok: false, output: String((e as { stdout?: string }).stdout) }
  }
}

describe('Collection<Maps> from generated declarations', () => {
  it('types keys and values of maps by name', async () => {
    const spec = await loadCollectionSpec(join(__dirname, 'fixtures', 'xdp_firewall.bpf.o'))
    const dir = mkdtempSync(join(tmpdir(), 'ebpf-typed-'))
    try {
      writeFileSync(join(dir, 'firewall.ts'), spec.declarations())
      const index = join(ROOT, 'ts', 'index').replaceAll('\\\\', '/')
      const use = (value: string) => `
import type { Maps } from './firewall'
import { type BpfMap, Collection, loadCollectionSpec, loadCollectionSpecSync } from '${index}'
export async function main() {
  const coll = new Collection<Maps>(await loadCollectionSpec('x.o'))
  const blocklist = coll.maps.get('blocklist')
  blocklist.update({ prefixlen: 24, addr: [192, 168, 7, 0] }, ${value})
  const r = blocklist.lookup({ prefixlen: 24, addr: [192, 168, 7, 0] })
  const hits: bigint | undefined = r?.hits
  const declared: BpfMap<Maps['verdicts']['key'], Maps['verdicts']['value']> = coll.maps.get('verdicts')
  const other: BpfMap | undefined = coll.maps.get('not_declared')
  const untyped: BpfMap | undefined = new Collection(loadCollectionSpecSync('x.o')).maps.get('blocklist')
  return [hits, declared, other, untyped]
}
export function wrong() {
  const coll = new Collection<Maps>(loadCollectionSpecSync('x.o'))
  const undeclared: BpfMap = coll.maps.get('not_declared')
  const untyped: BpfMap = new Collection(loadCollectionSpecSync('x.o')).maps.get('blocklist')
  return [undeclared, untyped]
}
`
      writeFileSync(
        join(dir, 'good.ts'),
        use('{ hits: 0n, action: 1, rule_id: 7 }').replace(/export function wrong[\s\S]*/, ''),
      )
      writeFileSync(join(dir, 'bad.ts'), use("{ hits: 'many', action: 1, rule_id: 7 }"))
      // One compiler run for both files (it is the slow part): errors name their file.
      const result = compile(dir, ['good.ts', 'bad.ts'])
      expect(result.ok).toBe(false)
      expect(result.output).not.toContain('good.ts')
      const errors = result.output.split('\n').filter((l) => l.includes('error TS'))
      // hits is a __u64 (bigint): a string is refused at the update call.
      expect(errors.some((l) => /bad\.ts\(7,\d+\): error TS2322/.test(l))).toBe(true)
      // A name the Maps interface does not declare, and any name without a Maps interface, may be absent.
      expect(errors.some((l) => /bad\.ts\(17,9\): error TS2322/.test(l) && l.includes('undefined'))).toBe(true)
      expect(errors.some((l) => /bad\.ts\(18,9\): error TS2322/.test(l) && l.includes('undefined'))).toBe(true)
      expect(errors).toHaveLength(3)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 180_000)
})
