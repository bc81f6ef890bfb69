import { describe, expect, it } from 'vitest'
import { assemble, Program, TrapError } from '../ts/index'

describe('helpers written in JavaScript', () => {
  for (const engine of ['interpreter', 'jit'] as const) {
    it(`${engine}: get r1-r5, return r0, and r1-r5 survive the call`, () => {
      const seen: bigint[][] = []
      const prog = new Program({
        engine,
        instructions: assemble(`
          r1 = 1
          r2 = -2
          r3 = 3
          r4 = 4
          r5 = 0x123456789 ll
          call 1000
          r0 += r5
          exit`),
        helpers: {
          1000: (args) => {
            seen.push(args)
            return args[0] + args[2] * 10n
          },
        },
      })
      expect(prog.run().r0).toBe(31n + 0x123456789n)
      expect(seen).toEqual([[1n, 0xfffffffffffffffen, 3n, 4n, 0x123456789n]])
    })

    it(`${engine}: read and write the program's memory through checked accessors`, () => {
      // The helper doubles the byte at r1 and returns the old value; the program passes its data.
      const prog = new Program({
        engine,
        instructions: assemble('call 1001\nexit'),
        helpers: {
          1001: {
            name: 'double_first_byte',
            fn: ([addr], memory) => {
              const [b] = memory.read(addr, 1)
              memory.write(addr, Uint8Array.of(b! * 2))
              return b
            },
          },
        },
      })
      const res = prog.run({ data: Uint8Array.of(21, 1) })
      expect(res.r0).toBe(21n)
      expect(res.data).toEqual(Uint8Array.of(42, 1))
    })

    it(`${engine}: an access outside the run's memory, or a throw, is a helper_error trap`, () => {
      const prog = new Program({
        engine,
        instructions: assemble('r1 = 0\ncall 1002\nexit'),
        helpers: { 1002: ([addr], memory) => memory.read(addr, 8)[0] },
      })
      const e = (() => {
        try {
          prog.run()
        } catch (err) {
          return err as TrapError
        }
      })()
      expect(e).toBeInstanceOf(TrapError)
      expect([e!.kind, e!.insn]).toEqual(['helper_error', 1])
      expect(e!.message).toMatch(/EFAULT: read of 8 bytes at null\+0: out_of_bounds/)
      const thrower = new Program({
        engine,
        instructions: assemble('call 1003\nexit'),
        helpers: {
          1003: () => {
            throw new Error('nope')
          },
        },
      })
      expect(() => thrower.run()).toThrow(/threw: Error: nope/)
    })
  }

  it('returns negative numbers as -errno, replaces kernel helpers, refuses the thread pool', async () => {
    const prog = new Program({ instructions: assemble('call 7\nexit'), helpers: { 7: () => -2 } })
    // bpf_get_prandom_u32 (7) replaced: always -ENOENT.
    expect(prog.run().r0).toBe(BigInt.asUintN(64, -2n))
    await expect(prog.runAsync()).rejects.toThrow(/cannot run off the JavaScript thread/)
    expect(() => new Program({ instructions: assemble('exit'), helpers: { 5: 'x' as never } })).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    )
  })
})
