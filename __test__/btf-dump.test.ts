/**
 * BTF dumps against independent oracles: bpftool 7.1's raw dump of each object (golden files),
 * the BTF the kernel received when libbpf loaded the object (libbpf's fixed-up form), bpftool's
 * dump of the running kernel's raw BTF blob, and clang compiling our C dump with the layout asserted.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Btf } from '../ts/btf/btf.js'

const dir = join(__dirname, 'fixtures')
// Objects built without BTF (-g0) have no golden dump.
const objects = readdirSync(dir)
  .filter((f) => f.endsWith('.bpf.o'))
  .filter((f) => existsSync(join(dir, f.replace('.bpf.o', '.btf.txt'))))

function which(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

describe('raw dump equals `bpftool btf dump file` (bpftool 7.1)', () => {
  it('has at least 12 fixtures', () => expect(objects.length).toBeGreaterThanOrEqual(12))
  for (const f of objects) {
    it(f, () => {
      const btf = Btf.parse(readFileSync(join(dir, f)))
      const golden = readFileSync(join(dir, f.replace('.bpf.o', '.btf.txt')), 'utf8')
      expect(btf.dump({ format: 'raw' })).toBe(golden)
    })
  }
})

describe('fixed-up dump equals the BTF the kernel received from libbpf', () => {
  for (const f of objects) {
    const fixed = join(dir, f.replace('.bpf.o', '.btf.fixed.txt'))
    if (!existsSync(fixed)) continue
    it(f, () => {
      const btf = Btf.parse(readFileSync(join(dir, f)), { fixup: true })
      expect(btf.dump({ format: 'raw' })).toBe(readFileSync(fixed, 'utf8'))
    })
  }
})

const vmlinux = '/sys/kernel/btf/vmlinux'
const haveVmlinux = existsSync(vmlinux) && which('bpftool')
describe.skipIf(!haveVmlinux)(`raw BTF blob (${vmlinux}; skipped when absent or bpftool is missing)`, () => {
  it('dumps byte-identically to bpftool', () => {
    const expected = execFileSync('bpftool', ['btf', 'dump', 'file', vmlinux], { maxBuffer: 1 << 30, encoding: 'utf8' })
    const btf = Btf.parse(new Uint8Array(readFileSync(vmlinux)))
    expect(btf.count).toBeGreaterThan(10000)
    const got = btf.dump({ format: 'raw' })
    expect(got.length).toBe(expected.length)
    expect(got === expected).toBe(true)
  })
})

const clang = ['clang-19', 'clang'].find(which)

/** Compiles the C dump of `btf` with a static assert for every named struct's size and member offsets. */
function compileWithLayoutAsserts(btf: Btf): number {
  const asserts: string[] = []
  // Names used by more than one struct, union or enum are renamed in the dump (name___2): skip them.
  const uses = new Map<string, number>()
  for (const t of btf.types) {
    if (['STRUCT', 'UNION', 'ENUM', 'ENUM64'].includes(t.kind)) uses.set(t.name, (uses.get(t.name) ?? 0) + 1)
  }
  for (const t of btf.types) {
    if ((t.kind !== 'STRUCT' && t.kind !== 'UNION') || t.name === '' || uses.get(t.name)! > 1) continue
    const tag = `${t.kind === 'STRUCT' ? 'struct' : 'union'} ${t.name}`
    asserts.push(`_Static_assert(sizeof(${tag}) == ${t.size}, "size of ${tag}");`)
    for (const m of t.members!) {
      if (m.name === '' || m.bitfieldSize > 0) continue
      asserts.push(`_Static_assert(__builtin_offsetof(${tag}, ${m.name}) == ${m.bitOffset / 8}, "${tag}.${m.name}");`)
    }
  }
  const tmp = mkdtempSync(join(tmpdir(), 'btf-c-'))
  try {
    const file = join(tmp, 'dump.c')
    writeFileSync(file, `${btf.dump({ format: 'c' })}\n${asserts.join('\n')}\n`)
    execFileSync(clang!, ['-target', 'bpf', '-fsyntax-only', '-Werror', '-Wno-unused', file], { stdio: 'pipe' })
  } finally {
    rmSync(tmp, { recursive: true, force: true })
  }
  return asserts.length
}

describe.skipIf(!clang)('C dump compiles with clang and keeps every size and offset', () => {
  for (const f of objects) {
    it(f, () => {
      expect(compileWithLayoutAsserts(Btf.parse(readFileSync(join(dir, f))))).toBeGreaterThan(0)
    })
  }
  it.skipIf(!haveVmlinux)('the running kernel (vmlinux)', () => {
    expect(compileWithLayoutAsserts(Btf.parse(new Uint8Array(readFileSync(vmlinux))))).toBeGreaterThan(10000)
  })
})
