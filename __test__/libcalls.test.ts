/**
 * The C library functions linked in for objects whose clang called them (ts/elf/libcalls.ts), run
 * on both engines through a harness: r1 and r2 point into the data (or r2 is a byte), r3 is n.
 * Expected results are C's: memmove handles overlap either way, memcmp returns the difference of
 * the first differing unsigned bytes.
 */
import { describe, expect, it } from 'vitest'
import { libcallCode } from '../ts/elf/libcalls.js'
import { Program } from '../ts/index.js'

function insn(op: number, dst: number, src: number, off: number, imm: number): number[] {
  const b = new Uint8Array(8)
  const v = new DataView(b.buffer)
  b[0] = op
  b[1] = (src << 4) | dst
  v.setInt16(2, off, true)
  v.setInt32(4, imm, true)
  return [...b]
}

/** Calls `name` with r1 = data + a, r2 = data + b (or the byte `byte`), r3 = n; returns r0 (as an offset for pointers) and the data. */
function call(
  name: string,
  engine: 'interpreter' | 'jit',
  args: { a: number; b?: number; byte?: number; n: number },
  data: number[],
) {
  const returnsPointer = name !== 'memcmp' && name !== 'bcmp'
  const code = [
    insn(0xbf, 6, 1, 0, 0), // r6 = data
    insn(0x07, 1, 0, 0, args.a), // r1 = data + a
    ...(args.byte !== undefined
      ? [insn(0xb7, 2, 0, 0, args.byte)]
      : [insn(0xbf, 2, 6, 0, 0), insn(0x07, 2, 0, 0, args.b!)]),
    insn(0xb7, 3, 0, 0, args.n),
    insn(0x85, 0, 1, 0, returnsPointer ? 2 : 1), // call the function after exit
    ...(returnsPointer ? [insn(0x1f, 0, 6, 0, 0)] : []), // r0 -= data: an offset, not an address
    insn(0x95, 0, 0, 0, 0),
  ].flat()
  const program = new Program({
    type: 'raw',
    instructions: new Uint8Array([...code, ...libcallCode(name)!]),
    mode: 'checked',
    engine,
  })
  const r = program.run({ data: Uint8Array.from(data) })
  return { r0: Number(BigInt.asIntN(64, r.r0)), data: [...r.data] }
}

describe('libcalls linked for clang-emitted calls', () => {
  for (const engine of ['interpreter', 'jit'] as const) {
    it(`memcpy, memmove both ways, memset, memcmp (${engine})`, () => {
      const ten = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
      expect(call('memcpy', engine, { a: 6, b: 0, n: 4 }, ten)).toEqual({ r0: 6, data: [1, 2, 3, 4, 5, 6, 1, 2, 3, 4] })
      expect(call('memcpy', engine, { a: 0, b: 0, n: 0 }, [9])).toEqual({ r0: 0, data: [9] })
      // Overlap with dst above src: copied backwards.
      expect(call('memmove', engine, { a: 2, b: 0, n: 6 }, ten)).toEqual({
        r0: 2,
        data: [1, 2, 1, 2, 3, 4, 5, 6, 9, 10],
      })
      expect(call('memmove', engine, { a: 0, b: 2, n: 6 }, ten)).toEqual({
        r0: 0,
        data: [3, 4, 5, 6, 7, 8, 7, 8, 9, 10],
      })
      expect(call('memset', engine, { a: 1, byte: 7, n: 3 }, [0, 0, 0, 0, 0])).toEqual({ r0: 1, data: [0, 7, 7, 7, 0] })
      expect(call('memcmp', engine, { a: 0, b: 4, n: 4 }, [1, 2, 3, 4, 1, 2, 9, 4]).r0).toBe(3 - 9)
      expect(call('memcmp', engine, { a: 0, b: 4, n: 4 }, [1, 2, 0xff, 4, 1, 2, 1, 4]).r0).toBe(0xff - 1)
      expect(call('memcmp', engine, { a: 0, b: 4, n: 4 }, [1, 2, 3, 4, 1, 2, 3, 4]).r0).toBe(0)
      expect(call('bcmp', engine, { a: 0, b: 1, n: 0 }, [1, 2]).r0).toBe(0)
    })
  }

  it('a copy past the data traps in checked mode instead of touching other memory', () => {
    expect(() => call('memcpy', 'interpreter', { a: 0, b: 2, n: 8 }, [1, 2, 3, 4])).toThrow(
      expect.objectContaining({ kind: expect.any(String) }),
    )
  })

  it('only the functions it knows', () => {
    expect(libcallCode('strcpy')).toBeUndefined()
    expect(libcallCode('toString')).toBeUndefined()
  })
})
