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

function compile(dir: string, file: string): { ok: boolean; output: string } {
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
        join(dir, file),
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
      const use = (value: string) => `
import type { Maps } from './firewall'
import { Collection, loadCollectionSpec } from '${join(ROOT, 'ts', 'index').replaceAll('\\\\', '/')}'
export async function main() {
  const coll = new Collection<Maps>(await loadCollectionSpec('x.o'))
  const blocklist = coll.maps.get('blocklist')!
  blocklist.update({ prefixlen: 24, addr: [192, 168, 7, 0] }, ${value})
  const r = blocklist.lookup({ prefixlen: 24, addr: [192, 168, 7, 0] })
  const hits: bigint | undefined = r?.hits
  return hits
}
`
      writeFileSync(join(dir, 'good.ts'), use('{ hits: 0n, action: 1, rule_id: 7 }'))
      writeFileSync(join(dir, 'bad.ts'), use("{ hits: 'many', action: 1, rule_id: 7 }"))
      const good = compile(dir, 'good.ts')
      expect(good.output).toBe('')
      expect(good.ok).toBe(true)
      const bad = compile(dir, 'bad.ts')
      expect(bad.ok).toBe(false)
      // hits is a __u64 (bigint): a string is refused at the update call.
      expect(bad.output).toMatch(/bad\.ts\(7,\d+\): error TS2322/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})
