import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Btf } from '../ts/btf/btf.js'

const dir = join(__dirname, 'fixtures')
const objects = readdirSync(dir).filter((f) => f.endsWith('.bpf.o'))

describe('raw BTF dump equals bpftool 7.1', () => {
  it('has fixtures', () => expect(objects.length).toBeGreaterThanOrEqual(12))
  for (const f of objects) {
    it(f, () => {
      const btf = Btf.parse(readFileSync(join(dir, f)))
      const golden = readFileSync(join(dir, f.replace('.bpf.o', '.btf.txt')), 'utf8')
      expect(btf.dump({ format: 'raw' })).toBe(golden)
    })
  }
})
