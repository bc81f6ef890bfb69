/**
 * The JIT through the public API: engine selection, `dump('jited')`, and traps that carry the same
 * details as the interpreter's. Programs are assembled from text; expected values are worked out by
 * hand.
 */
import { describe, expect, it } from 'vitest'
import { assemble } from '../ts/asm/index.js'
import { TrapError } from '../ts/errors.js'
import { Program } from '../ts/program.js'

const onX64 = process.arch === 'x64'

const sumBytes = assemble(`
  mov %r0, 0
  mov %r3, 0
loop:
  jge %r3, %r2, out
  mov %r4, %r1
  add %r4, %r3
  ldxb %r4, [%r4]
  add %r0, %r4
  add %r3, 1
  ja loop
out:
  exit`)

describe.skipIf(!onX64)('JIT', () => {
  it('is what auto picks on x86-64', () => {
    expect(new Program({ instructions: sumBytes }).engine).toBe('jit')
    expect(new Program({ instructions: sumBytes, engine: 'interpreter' }).engine).toBe('interpreter')
  })

  it('runs and counts like the interpreter', () => {
    const data = Uint8Array.from([1, 2, 3, 250])
    for (const engine of ['jit', 'interpreter'] as const) {
      const res = new Program({ instructions: sumBytes, engine }).run({ data })
      expect(res.r0).toBe(256n)
      // 2 + 7 per byte + the final compare and exit.
      expect(res.insnCount).toBe(2 + 7 * 4 + 2)
    }
  })

  it('dumps its machine code', () => {
    const text = new Program({ instructions: sumBytes, engine: 'jit' }).dump('jited')
    expect(text).toContain('; insn 0')
    expect(text).toContain('; insn 9')
    expect(text).toMatch(/\bret\b/)
    const interp = new Program({ instructions: sumBytes, engine: 'interpreter' }).dump('jited')
    expect(interp).toContain('interpreter')
  })

  it('marks where the code of each function begins', () => {
    // Three functions: main (0-2) calls f at 3 (1 + 2 after slot 0), f calls g at 6.
    const program = new Program({
      instructions: assemble(`
        call pc+2
        r0 += 1
        exit
        r0 = 5
        call pc+1
        exit
        r0 *= 2
        exit`),
      engine: 'jit',
    })
    const marks = program
      .dump('jited')
      .split('\n')
      .filter((l) => l.startsWith('; function') || l === '; insn 3' || l === '; insn 6')
    expect(marks).toEqual(['; function at insn 3', '; insn 3', '; function at insn 6', '; insn 6'])
    // g doubles f's 5, main adds 1.
    expect(program.run().r0).toBe(11n)
  })

  it('writes none of the program’s immediates into its code unless blindConstants is false', () => {
    // The immediates of an ALU op, a compare, a store, a multiply and both halves of an lddw.
    const imms = ['5A17C0DE', '3C0FFEE1', '0D15EA5E', '2BAD2BAD', '600DCAFE', '7E57C0DE', '5D00DFEE']
    const instructions = assemble(`
      r0 = 0x5a17c0de
      r0 += 0x3c0ffee1
      if r0 == 0xd15ea5e goto out
      *(u32 *)(r10 - 8) = 0x2bad2bad
      r0 *= 0x600dcafe
      r1 = 0x7e57c0de5d00dfee ll
      r0 ^= r1
    out:
      exit`)
    const plain = new Program({ instructions, engine: 'jit', blindConstants: false })
    const blinded = new Program({ instructions, engine: 'jit' })
    const code = (p: Program) => p.dump('jited').toUpperCase()
    for (const imm of imms) {
      expect(code(plain)).toContain(imm)
      expect(code(blinded)).not.toContain(imm)
    }
    // 0x5a17c0de + 0x3c0ffee1 = 0x9627bfbf; * 0x600dcafe (mod 2^64), then ^ the lddw.
    const want = ((0x9627bfbfn * 0x600dcafen) & 0xffffffffffffffffn) ^ 0x7e57c0de5d00dfeen
    for (const p of [plain, blinded, new Program({ instructions, engine: 'interpreter' })]) {
      expect(p.run().r0).toBe(want)
    }
    expect(() => new Program({ instructions, blindConstants: 1 as unknown as boolean })).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringMatching(/blindConstants/) }),
    )
  })

  it('traps with the interpreter’s details', () => {
    // ldxw at offset 1 of a 4-byte buffer reads bytes 1..5: one past the end.
    const oob = assemble(`
      mov %r0, 7
      ldxw %r0, [%r1+1]
      exit`)
    const traps = (['jit', 'interpreter'] as const).map((engine) => {
      try {
        new Program({ instructions: oob, engine }).run({ data: new Uint8Array(4) })
      } catch (e) {
        return e as TrapError
      }
      throw new Error('no trap')
    })
    for (const t of traps) {
      expect(t).toBeInstanceOf(TrapError)
      expect(t.code).toBe('EFAULT')
      expect(t.kind).toBe('out_of_bounds')
      expect(t.insn).toBe(1)
      expect(t.size).toBe(4)
      expect(t.insnCount).toBe(1)
    }
    // Each engine ran over its own copy of the data: the messages agree up to the address.
    expect(traps[0]?.message.replace(/0x[0-9a-f]+/, 'ADDR')).toBe(traps[1]?.message.replace(/0x[0-9a-f]+/, 'ADDR'))

    const spin = assemble(`
    top:
      add %r0, 1
      ja top`)
    try {
      new Program({ instructions: spin, engine: 'jit' }).run({ budget: 1001 })
      throw new Error('no trap')
    } catch (e) {
      const t = e as TrapError
      expect(t.code).toBe('ETIME')
      expect(t.kind).toBe('budget_exhausted')
      // 500 rounds of two instructions, then the add: the jump at 1 is where it stops.
      expect([t.insn, t.insnCount]).toEqual([1, 1001])
    }
  })
})
