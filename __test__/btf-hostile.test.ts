/**
 * Hostile BTF (issue #11): blobs built by hand that no compiler emits, through every public
 * operation on BTF. Each must finish with a result of bounded size or a typed error: EINVAL for a
 * layout or graph the kernel's BTF checks refuse (members outside their struct, cycles), E2BIG for
 * work or output over a limit. Expected counts are worked out by hand from the blob's shape; the
 * layouts the C dump writes are checked by compiling it with clang and reading clang's BTF back.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { Btf } from '../ts/btf/btf.js'
import { applyCoreRelocations } from '../ts/btf/core.js'
import { textLimits } from '../ts/btf/limits.js'
import { btf, EbpfError, FormatError } from '../ts/index.js'
import { BtfBuilder, nestedUnions } from './helpers/btf-builder.js'

/** Runs `f`, which must throw an EbpfError with `code` and a message matching `pattern`. */
function expectCode(f: () => unknown, code: string, pattern?: RegExp): EbpfError {
  let thrown: unknown
  try {
    f()
  } catch (e) {
    thrown = e
  }
  expect(thrown, 'expected an error').toBeInstanceOf(EbpfError)
  const e = thrown as EbpfError
  expect(e.code).toBe(code)
  if (pattern) expect(e.message).toMatch(pattern)
  return e
}

/** Every public operation on a parsed BTF; each may throw, but only an EbpfError. */
function exerciseAll(b: Btf): void {
  const steps: Array<() => unknown> = [
    () => b.dump({ format: 'raw' }),
    () => b.dump({ format: 'c' }),
    () => btf.generateDeclarations(b),
  ]
  for (const t of b.types) {
    steps.push(
      () => b.sizeOf(t.id),
      () => b.alignOf(t.id),
      () => b.resolve(t.id),
      () => b.memberOffset(t.id, 'a.b[1].c'),
      () => btf.tsTypeOf(b, t.id),
      () => btf.codec(b, t.id).decode(new Uint8Array(64)),
    )
  }
  for (const step of steps) {
    try {
      step()
    } catch (e) {
      if (!(e instanceof EbpfError) || e.message.length < 10) throw e
    }
  }
}

/** `int`, then `levels` structs each holding members a and b of the previous one (sizes double). */
function doublingBtf(levels: number, anonymous: boolean): Uint8Array {
  const b = new BtfBuilder()
  let prev = b.int()
  let size = 4
  for (let k = 1; k <= levels; k++) {
    const name = k === levels || !anonymous ? 'top' : ''
    prev = b.struct(name, size * 2, [
      { name: 'a', type: prev, bitOffset: 0 },
      { name: 'b', type: prev, bitOffset: size * 8 },
    ])
    size *= 2
  }
  return b.build()
}

const count = (text: string, what: string) => text.split(what).length - 1

function which(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}
const clang = ['clang-19', 'clang'].find(which)

/** Compiles `source` for BPF with BTF (clang -g) and parses the BTF clang wrote. */
function clangBtf(source: string): Btf {
  const tmp = mkdtempSync(join(tmpdir(), 'btf-hostile-'))
  try {
    writeFileSync(join(tmp, 'dump.c'), source)
    execFileSync(clang!, ['-target', 'bpf', '-g', '-O2', '-c', '-o', join(tmp, 'dump.o'), join(tmp, 'dump.c')], {
      stdio: 'pipe',
    })
    return btf.parse(readFileSync(join(tmp, 'dump.o')))
  } finally {
    rmSync(tmp, { recursive: true, force: true })
  }
}

describe('nesting and sharing', () => {
  it('anonymous unions nested 30 deep, three members each: C dump and declarations are E2BIG, not 3^30 lines', () => {
    const blob = nestedUnions(30)
    expect(blob.length).toBeLessThan(1536)
    const b = btf.parse(blob)
    // The raw dump prints each type once: 1 int line, 30 unions of 1 + 3 lines, top of 1 + 1.
    expect(b.dump({ format: 'raw' }).split('\n').length - 1).toBe(1 + 30 * 4 + 2)
    const c = expectCode(() => b.dump({ format: 'c' }), 'E2BIG', /C dump/)
    expect(c).toBeInstanceOf(FormatError)
    expectCode(() => btf.generateDeclarations(b), 'E2BIG', /declare/)
    expectCode(() => btf.codec(b, b.count - 1), 'E2BIG', /too complex to encode/)
    // A search for a missing member visits each anonymous union once.
    expectCode(() => b.memberOffset(b.count - 1, 'x.nope'), 'EINVAL', /no member 'nope'/)
    expect(b.memberOffset(b.count - 1, 'x.m2')).toMatchObject({ bitOffset: 0, type: 1 })
  })

  it('the same nesting 6 deep dumps whole: the innermost members appear 3^5 times', () => {
    const b = btf.parse(nestedUnions(6))
    const c = b.dump({ format: 'c' })
    // top spells the 6th union once; each union spells its inner one three times.
    expect(count(c, 'int m0;')).toBe(3 ** 5)
    expect(count(c, 'union {')).toBe(1 + 3 + 9 + 27 + 81 + 243)
    expect(c.length).toBeLessThan(textLimits(b.types).chars)
  })

  it('a type reused at every level does not make codecs exponential', () => {
    const b = btf.parse(doublingBtf(24, false))
    const top = b.types[b.types.length - 1]!
    expect(b.sizeOf(top.id)).toBe(4 * 2 ** 24)
    expect(b.alignOf(top.id)).toBe(4)
    expect(btf.codec(b, top).size).toBe(4 * 2 ** 24)
    expect(b.dump({ format: 'c' })).toContain('struct top {')
  })

  it('anonymous types inlined 2^24 times are refused, not expanded', () => {
    const b = btf.parse(doublingBtf(24, true))
    expectCode(() => b.dump({ format: 'c' }), 'E2BIG', /C dump/)
    expectCode(() => btf.generateDeclarations(b), 'E2BIG', /to declare/)
  })

  it('20,000 FWD + struct pairs of one name get distinct names ___2 .. ___20000', () => {
    const b = new BtfBuilder()
    const int = b.int()
    for (let i = 0; i < 20_000; i++) {
      b.fwd('same')
      b.struct('same', 4, [{ name: 'x', type: int, bitOffset: 0 }])
    }
    const c = btf.parse(b.build()).dump({ format: 'c' })
    // Every FWD stands for the first struct of its name, so only the structs are declared.
    expect(count(c, 'struct same {')).toBe(1)
    expect(count(c, 'struct same___')).toBe(2 * 19_999) // forward declaration + definition
    expect(c).toContain('struct same___20000 {')
  })

  it('suffixes skip names the BTF already uses, for tags and enumerators', () => {
    const b = new BtfBuilder()
    const int = b.int()
    b.struct('x', 4, [{ name: 'a', type: int, bitOffset: 0 }])
    b.struct('x___2', 4, [{ name: 'a', type: int, bitOffset: 0 }])
    b.struct('x', 4, [{ name: 'a', type: int, bitOffset: 0 }])
    b.enum('e1', 4, [['X', 1]])
    b.enum('e2', 4, [
      ['X___2', 2],
      ['X', 3],
    ])
    const c = btf.parse(b.build()).dump({ format: 'c' })
    expect(c).toContain('struct x {')
    expect(c).toContain('struct x___2 {')
    expect(c).toContain('struct x___3 {')
    expect(c).toContain('\tX = 1,')
    expect(c).toContain('\tX___2 = 2,')
    expect(c).toContain('\tX___3 = 3,')
  })
})

describe('member layout', () => {
  it('bitfields jumping to bit 0xffffff of an 8-byte struct (a 1 KB blob) are EINVAL naming the member', () => {
    const b = new BtfBuilder()
    const int = b.int()
    const members = Array.from({ length: 70 }, (_, i) => ({
      name: `f${i}`,
      type: int,
      bitOffset: i % 2 ? 0xffffff - 8 : 0,
      bitfieldSize: 3,
    }))
    b.struct('s', 8, members)
    const blob = b.build()
    expect(blob.length).toBeLessThan(1200)
    expectCode(
      () => btf.parse(blob).dump({ format: 'c' }),
      'EINVAL',
      /member 'f1' at bit offset 16777207 ends at bit 16777210, past the end/,
    )
  })

  const layouts: Array<[string, (b: BtfBuilder, int: number) => void, RegExp]> = [
    [
      'a member past the end',
      (b, int) => b.struct('s', 4, [{ name: 'a', type: int, bitOffset: 8 }]),
      /'a' at bit offset 8 ends at bit 40/,
    ],
    [
      'overlapping members',
      (b, int) =>
        b.struct('s', 8, [
          { name: 'a', type: int, bitOffset: 0 },
          { name: 'b', type: int, bitOffset: 16 },
        ]),
      /'b' at bit offset 16 overlaps/,
    ],
    [
      'members out of order',
      (b, int) =>
        b.struct('s', 8, [
          { name: 'a', type: int, bitOffset: 32 },
          { name: 'b', type: int, bitOffset: 0 },
        ]),
      /'b' at bit offset 0 overlaps/,
    ],
    [
      'a union member at a non-zero offset',
      (b, int) => b.union('u', 8, [{ name: 'a', type: int, bitOffset: 32 }]),
      /union members start at 0/,
    ],
    [
      'a non-bitfield member off a byte boundary',
      (b, int) => b.struct('s', 8, [{ name: 'a', type: int, bitOffset: 3 }]),
      /neither byte-aligned nor a bitfield/,
    ],
    [
      'a bitfield wider than its type',
      (b, int) => b.struct('s', 8, [{ name: 'a', type: int, bitOffset: 0, bitfieldSize: 40 }]),
      /40-bit field of a 32-bit type/,
    ],
  ]
  for (const [what, add, message] of layouts) {
    it(`${what}: the C dump is EINVAL, as the kernel's BTF check`, () => {
      const b = new BtfBuilder()
      add(b, b.int())
      expectCode(() => btf.parse(b.build()).dump({ format: 'c' }), 'EINVAL', message)
    })
  }

  it.skipIf(!clang)('bitfields 2 MiB apart: the gap is three lines, and clang lays the header out as the BTF', () => {
    const b = new BtfBuilder()
    const int = b.int()
    const members = [
      { name: 'a', type: int, bitOffset: 0, bitfieldSize: 3 },
      // Bit offsets of a kind_flag struct have 24 bits: these are near the top of that range.
      { name: 'b', type: int, bitOffset: 0xffffd3, bitfieldSize: 5 },
      { name: 'c', type: int, bitOffset: 0xffffe0, bitfieldSize: 0 },
    ]
    b.struct('s', 0x200000, members)
    const c = btf.parse(b.build()).dump({ format: 'c' })
    // Bits 3 -> 8: an unnamed 5-bit field; bytes 1 .. 2097145: one array; bits 16777168 -> 16777171:
    // an unnamed 3-bit field. b ends at byte 2097147, and c (4-aligned) starts at 2097148.
    expect(c).toContain(
      'struct s {\n\tint a: 3;\n\tunsigned char: 5;\n\tchar __pad0[2097145];\n\tunsigned char: 3;\n\tint b: 5;\n\tint c;\n};',
    )
    const back = clangBtf(`${c}\nstruct s s_var;\n`).typeByName('s', 'STRUCT')!
    expect(back.size).toBe(0x200000)
    const named = back.members!.filter((m) => m.name !== '' && !m.name.startsWith('__pad'))
    expect(named.map((m) => [m.name, m.bitOffset, m.bitfieldSize])).toEqual(
      members.map((m) => [m.name, m.bitOffset, m.bitfieldSize]),
    )
  })
})

describe('cycles and chains', () => {
  it('a typedef cycle is EINVAL everywhere it is followed', () => {
    const b = new BtfBuilder()
    const a = b.nextId
    b.typedef('A', a + 1)
    b.typedef('B', a)
    const t = btf.parse(b.build())
    expectCode(() => t.resolve(a), 'EINVAL', /cyclic/)
    expectCode(() => t.sizeOf(a), 'EINVAL', /cyclic/)
    expectCode(() => t.dump({ format: 'c' }), 'EINVAL', /TYPEDEF 'A'\) contains itself/)
    expectCode(() => btf.codec(t, a), 'EINVAL')
    exerciseAll(t)
  })

  it('a pointer cycle is a pointer (8 bytes) but has no C spelling', () => {
    const b = new BtfBuilder()
    const p = b.nextId
    b.ptr(p + 1)
    b.ptr(p)
    b.typedef('pp', p)
    const t = btf.parse(b.build())
    expect(t.sizeOf(p)).toBe(8)
    expect(btf.codec(t, p).size).toBe(8)
    expectCode(() => t.dump({ format: 'c' }), 'EINVAL', /too deep or cyclic/)
    exerciseAll(t)
  })

  it('a chain of 2,000 const is EINVAL, not a stack overflow', () => {
    const b = new BtfBuilder()
    let id = b.int()
    for (let i = 0; i < 2_000; i++) id = b.const(id)
    b.typedef('deep', id)
    const t = btf.parse(b.build())
    expectCode(() => t.sizeOf(id), 'EINVAL', /too long or cyclic/)
    expectCode(() => t.dump({ format: 'c' }), 'EINVAL', /too deep or cyclic/)
    expectCode(() => btf.codec(t, id), 'EINVAL', /nests too deeply/)
    exerciseAll(t)
  })

  it('a struct containing itself by value is EINVAL for the C dump and the codec', () => {
    const b = new BtfBuilder()
    const int = b.int()
    const s = b.nextId
    // The one layout in which it fits its own size: it is its only member.
    b.struct('s', 4, [{ name: 'self', type: s, bitOffset: 0 }])
    void int
    const t = btf.parse(b.build())
    expectCode(() => btf.codec(t, s), 'EINVAL', /contains itself/)
    expectCode(() => t.dump({ format: 'c' }), 'EINVAL', /contains itself/)
    exerciseAll(t)
  })

  it('a section whose variable is the section itself is EINVAL for the codec', () => {
    const b = new BtfBuilder()
    const sec = b.nextId + 1
    const v = b.var('v', sec)
    b.datasec('.data', 8, [{ type: v, offset: 0, size: 8 }])
    const t = btf.parse(b.build())
    expectCode(() => btf.codec(t, sec), 'EINVAL', /contains itself/)
    exerciseAll(t)
  })

  it('arrays larger than 2^32-1 bytes are EINVAL, as the kernel refuses them', () => {
    const b = new BtfBuilder()
    const inner = b.array(b.int(), 0x10000)
    const outer = b.array(inner, 0x10000)
    const t = btf.parse(b.build())
    expect(t.sizeOf(inner)).toBe(0x40000)
    expectCode(() => t.sizeOf(outer), 'EINVAL', /more than 2\^32-1/)
    exerciseAll(t)
  })

  it('2^32-1 zero-size elements are E2BIG for the codec, not a 4-billion-element array', () => {
    const b = new BtfBuilder()
    const empty = b.struct('empty', 0, [])
    const arr = b.array(empty, 0xffffffff)
    const t = btf.parse(b.build())
    expect(t.sizeOf(arr)).toBe(0)
    expectCode(() => btf.codec(t, arr), 'E2BIG', /decodes to 4294967296 values from 0 bytes/)
    exerciseAll(t)
  })
})

describe('output size', () => {
  it('a raw dump printing one 60 KiB name 5,000 times is E2BIG', () => {
    const b = new BtfBuilder()
    const int = b.int()
    const name = 'n'.repeat(60 * 1024)
    b.struct(
      's',
      4,
      Array.from({ length: 5000 }, () => ({ name, type: int, bitOffset: 0 })),
    )
    const blob = b.build()
    expect(blob.length).toBeLessThan(128 * 1024)
    // 5,000 x 60 KiB = 293 MiB of text from a blob of 120 KB. The limit is 1 MiB, plus 128 per
    // record (3 types with void, 5,000 members), plus twice the distinct names ('void', 'int', 's'
    // and the long one): 1,048,576 + 128 x 5,003 + 2 x (4 + 3 + 1 + 61,440) = 1,811,856.
    const parsed = btf.parse(blob)
    expect(textLimits(parsed.types).rawChars).toBe(1_811_856)
    expectCode(() => parsed.dump({ format: 'raw' }), 'E2BIG', /more than 1811856 characters/)
  })
})

describe('CO-RE matching', () => {
  it('type_matches on structs whose members double at every level is E2BIG, not 2^32 comparisons', () => {
    // 30 levels: under type_matches' depth limit of 32, so only the budget can stop it.
    const t = btf.parse(doublingBtf(30, false))
    const top = t.count - 1
    // r0 = 1: the instruction a TYPE_MATCHES relocation rewrites.
    const code = Uint8Array.of(0xb7, 0, 0, 0, 1, 0, 0, 0)
    expectCode(
      () => applyCoreRelocations(code, [{ insn: 0, typeId: top, access: '0', kind: 12 }], t, t, 'p'),
      'E2BIG',
      /CO-RE type matching/,
    )
  })
})
