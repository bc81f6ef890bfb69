import { describe, expect, it } from 'vitest'
import { AssembleError, assemble, LoadError, Program, TrapError } from '../ts/index'

const bytes = (...words: number[][]) => Uint8Array.from(words.flat())
const EXIT = [0x95, 0, 0, 0, 0, 0, 0, 0]
const MOV_R0_42 = [0xb7, 0, 0, 0, 42, 0, 0, 0]

function loadError(instructions: Uint8Array): LoadError {
  try {
    new Program({ instructions })
  } catch (e) {
    expect(e).toBeInstanceOf(LoadError)
    return e as LoadError
  }
  throw new Error('program loaded')
}

function trap(prog: Program, data?: Uint8Array, budget?: number): TrapError {
  try {
    prog.run({ data, budget })
  } catch (e) {
    expect(e).toBeInstanceOf(TrapError)
    return e as TrapError
  }
  throw new Error('program ran')
}

describe('Program', () => {
  it('runs and reports r0, retval, data and the instruction count', () => {
    const prog = new Program({ instructions: bytes(MOV_R0_42, EXIT) })
    const res = prog.run()
    expect(res.r0).toBe(42n)
    expect(res.retval).toBe(42)
    expect(res.insnCount).toBe(2)
    expect(res.durationNs).toBeGreaterThan(0)
    // retval is the low 32 bits, unsigned.
    const neg = new Program({ instructions: assemble('r0 = -1\nexit') }).run()
    expect(neg.r0).toBe(0xffffffffffffffffn)
    expect(neg.retval).toBe(0xffffffff)
  })

  it('works on a copy of the data and returns it as the program left it', () => {
    const input = Uint8Array.of(1, 2, 3)
    const prog = new Program({ instructions: assemble('*(u8 *)(r1 + 1) = 9\nr0 = r2\nexit') })
    const res = prog.run({ data: input })
    expect(res.r0).toBe(3n)
    expect(res.data).toEqual(Uint8Array.of(1, 9, 3))
    expect(input).toEqual(Uint8Array.of(1, 2, 3))
  })

  it('repeat runs from the same input each time; runAsync gives the same result', async () => {
    const prog = new Program({ instructions: assemble('r0 = *(u8 *)(r1 + 0)\nr0 += 1\n*(u8 *)(r1 + 0) = r0\nexit') })
    const res = prog.run({ data: Uint8Array.of(10), repeat: 50 })
    expect(res.r0).toBe(11n)
    expect(res.data).toEqual(Uint8Array.of(11))
    const res2 = await prog.runAsync({ data: Uint8Array.of(10), repeat: 50 })
    expect(res2.r0).toBe(11n)
  })

  it('runBatch: one result per packet, a trap stays with its packet', async () => {
    const prog = new Program({ instructions: assemble('r0 = *(u8 *)(r1 + 0)\nexit') })
    const packets = [Uint8Array.of(5), new Uint8Array(0), Uint8Array.of(7)]
    for (const out of [prog.runBatch(packets), await prog.runBatchAsync(packets)]) {
      expect(out.map((r) => (r.ok ? r.r0 : r.error.code))).toEqual([5n, 'EFAULT', 7n])
    }
  })

  it('runBatchRetvals: the retvals in one array, errors by index', () => {
    const prog = new Program({ instructions: assemble('r0 = *(u8 *)(r1 + 0)\nr2 = 0x100000000 ll\nr0 |= r2\nexit') })
    const { retvals, errors } = prog.runBatchRetvals([Uint8Array.of(5), new Uint8Array(0), Uint8Array.of(7)])
    // The low 32 bits of r0; 0 where the run trapped (packet 1 has no byte to load).
    expect(retvals).toEqual(Uint32Array.of(5, 0, 7))
    expect(errors.map((e) => [e.index, e.error.code])).toEqual([[1, 'EFAULT']])
  })

  it('checks its options', () => {
    expect(() => new Program({ instructions: [1, 2] as unknown as Uint8Array })).toThrow(LoadError)
    expect(() => new Program({ instructions: bytes(EXIT), engine: 'fast' as 'jit' })).toThrow(/engine must be one of/)
    expect(() => new Program({ instructions: bytes(EXIT), type: 'kernel' as 'raw' })).toThrow(/type must be one of/)
    expect(() => new Program({ instructions: bytes(EXIT), budget: 0 })).toThrow(/budget must be a positive integer/)
    const prog = new Program({ instructions: bytes(MOV_R0_42, EXIT) })
    expect(() => prog.run({ repeat: 0 })).toThrow(expect.objectContaining({ code: 'EINVAL' }))
    expect(() => prog.run({ data: 'abc' as unknown as Uint8Array })).toThrow(/data must be a Uint8Array/)
  })
})

describe('bad bytecode is a LoadError naming the instruction and the rule', () => {
  it('truncated bytecode', () => {
    const e = loadError(bytes(MOV_R0_42, EXIT).slice(0, 12))
    expect([e.code, e.insn]).toEqual(['EINVAL', 1])
    expect(e.message).toMatch(/not a multiple of 8/)
  })
  it('unknown opcode', () => {
    const e = loadError(bytes([0x8e, 0, 0, 0, 0, 0, 0, 0], EXIT))
    expect([e.code, e.insn, e.message]).toEqual(['EINVAL', 0, 'instruction 0: unknown opcode 0x8e'])
  })
  it('reserved field set', () => {
    // mov r0, 42 with src = 1: the src field of an immediate form is reserved.
    const e = loadError(bytes([0xb7, 0x10, 0, 0, 42, 0, 0, 0], EXIT))
    expect([e.code, e.insn]).toEqual(['EINVAL', 0])
    expect(e.message).toMatch(/reserved field src must be zero/)
  })
  it('jump out of range', () => {
    const e = loadError(bytes([0x05, 0, 5, 0, 0, 0, 0, 0], EXIT))
    expect([e.code, e.insn]).toEqual(['EINVAL', 0])
    expect(e.message).toMatch(/outside the program/)
  })
  it('unknown helper', () => {
    const e = loadError(assemble('call 9999\nexit'))
    expect([e.code, e.insn]).toEqual(['EINVAL', 0])
    expect(e.message).toMatch(/unknown helper 9999/)
  })
  it('unknown mnemonic and register are assembler errors with line and column', () => {
    expect(() => assemble('r0 = 1\nfrobnicate r0')).toThrow(AssembleError)
    try {
      assemble('r0 = 1\n  r11 = 2')
    } catch (e) {
      expect((e as AssembleError).code).toBe('EINVAL')
      expect([(e as AssembleError).line, (e as AssembleError).column]).toEqual([2, 3])
    }
  })
})

describe('run-time traps are TrapErrors, identical on both engines', () => {
  for (const engine of ['interpreter', 'jit'] as const) {
    it(`${engine}: budget exhausted (ja -1)`, () => {
      const e = trap(new Program({ instructions: assemble('spin:\ngoto spin\nexit'), engine }), undefined, 1000)
      expect([e.code, e.kind, e.insn, e.insnCount]).toEqual(['ETIME', 'budget_exhausted', 0, 1000])
    })
    it(`${engine}: out-of-bounds load and store`, () => {
      const load = trap(
        new Program({ instructions: assemble('r0 = *(u32 *)(r1 + 2)\nexit'), engine }),
        Uint8Array.of(1, 2, 3, 4),
      )
      expect([load.code, load.kind, load.insn, load.size]).toEqual(['EFAULT', 'out_of_bounds', 0, 4])
      // The address relative to its region; no host address in the error.
      expect([load.region, load.addr]).toEqual(['data', 2n])
      expect(load.message).toBe("instruction 0: load of 4 bytes at data+2 is outside the program's memory")
      const store = trap(new Program({ instructions: assemble('r0 = 0\n*(u64 *)(r10 + 0) = r0\nexit'), engine }))
      expect([store.code, store.kind, store.insn, store.size, store.insnCount]).toEqual([
        'EFAULT',
        'out_of_bounds',
        1,
        8,
        1,
      ])
      expect([store.region, store.addr]).toEqual(['stack', 0n])
      const far = trap(
        new Program({ instructions: assemble('r1 = 0x123456789abc ll\nr0 = *(u8 *)(r1 + 0)\nexit'), engine }),
      )
      expect([far.kind, far.region, far.addr]).toEqual(['out_of_bounds', undefined, 0n])
      expect(far.message).toBe('instruction 2: load of 1 bytes at an address outside every region of the run')
    })
    it(`${engine}: stack overflow through recursion`, () => {
      const e = trap(new Program({ instructions: assemble('f:\ncall f\nexit'), engine }))
      expect([e.code, e.kind, e.insn, e.insnCount]).toEqual(['E2BIG', 'call_depth', 0, 7])
    })
  }
})

describe('XDP inputs as the kernel test run takes them (Linux 6.18, bpftool prog run)', () => {
  // r0 = (data_end - data) | (data - data_meta) << 16 | bpf_xdp_get_buff_len(ctx) << 32
  const lengths = assemble(`
    r6 = r1
    r2 = *(u32 *)(r6 + 0)
    r3 = *(u32 *)(r6 + 4)
    r4 = *(u32 *)(r6 + 8)
    r7 = r3
    r7 -= r2
    r8 = r2
    r8 -= r4
    r8 <<= 16
    r7 |= r8
    r1 = r6
    call 188
    r0 <<= 32
    r0 |= r7
    exit
  `)
  for (const engine of ['interpreter', 'jit'] as const) {
    it(`${engine}: runts are EINVAL, metadata comes from ctx.data_meta, long packets go on in fragments`, () => {
      const p = new Program({ type: 'xdp', instructions: lengths, engine })
      expect(() => p.run({ data: new Uint8Array(13) })).toThrow(
        expect.objectContaining({ code: 'EINVAL', kind: 'invalid_input', name: 'TrapError' }),
      )
      const data = Uint8Array.from({ length: 30 }, (_, i) => i)
      const r = p.run({ data, ctx: { data_meta: 8 } })
      // 8 bytes of metadata, 22 of packet.
      expect(r.r0).toBe(22n | (8n << 16n) | (22n << 32n))
      expect(r.meta).toEqual(data.subarray(0, 8))
      expect(r.data).toEqual(data.subarray(8))
      expect(r.ctxFields).toMatchObject({ data_meta: 8, ingress_ifindex: 1 })
      // 5000 bytes: 3520 linear, 1480 in a fragment, all of it returned.
      const long = Uint8Array.from({ length: 5000 }, (_, i) => (i * 7 + 3) & 0xff)
      const l = p.run({ data: long })
      expect(l.r0).toBe(3520n | (5000n << 32n))
      expect(l.data).toEqual(long)
    })
  }
})

describe('pointer leaks are refused unless allowed (pointerLeaks)', () => {
  for (const engine of ['interpreter', 'jit'] as const) {
    it(`${engine}: r0 = r10 at exit is a pointer_leak TrapError; allowed, the run returns it`, () => {
      const instructions = assemble('r0 = r10\nexit')
      const e = trap(new Program({ instructions, engine }))
      expect([e.code, e.kind, e.insn, e.insnCount, e.region, e.addr]).toEqual([
        'EACCES',
        'pointer_leak',
        1,
        1,
        'stack',
        0n,
      ])
      expect(e.message).toBe(
        'instruction 1: r0 at exit holds an address (stack+0), and this program refuses pointer leaks',
      )
      const allowed = new Program({ instructions, engine, pointerLeaks: 'allow' })
      expect(allowed.run().r0).toBeGreaterThan(4096n)
      // Values that are not addresses of the run pass.
      expect(new Program({ instructions: assemble('r0 = r10\nr0 >>= 63\nexit'), engine }).run().r0).toBe(0n)
    })
  }
  it('anything but allow or refuse is EINVAL', () => {
    expect(() => new Program({ instructions: bytes(EXIT), pointerLeaks: 'no' as 'allow' })).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringMatching(/pointerLeaks/) }),
    )
  })
})

describe('run() without data (the native call without arguments)', () => {
  for (const engine of ['interpreter', 'jit'] as const) {
    it(`${engine}: reports r0 and the count, and a trap as a TrapError, run after run`, () => {
      const ok = new Program({ instructions: assemble('r0 = 7\nexit'), engine })
      // r1 is 0 without data: the load is outside every region.
      const bad = new Program({ instructions: assemble('r0 = *(u8 *)(r1 + 0)\nexit'), engine })
      for (let i = 0; i < 3; i++) {
        const r = ok.run()
        expect([r.r0, r.insnCount, r.data.byteLength]).toEqual([7n, 2, 0])
        expect(() => bad.run()).toThrow(expect.objectContaining({ name: 'TrapError', kind: 'out_of_bounds' }))
        expect(ok.run({ data: new Uint8Array(0) }).r0).toBe(7n)
      }
    })
  }
})

describe('run() reads its report from the scratch words', () => {
  for (const engine of ['interpreter', 'jit'] as const) {
    it(`${engine}: r0 whose halves change from run to run, and the count`, () => {
      // r0 = the u64 at the data (little-endian): each run's r0 is its own, not the last run's.
      const prog = new Program({ instructions: assemble('r0 = *(u64 *)(r1 + 0)\nexit'), engine })
      const u64 = (v: bigint) => {
        const b = new Uint8Array(8)
        new DataView(b.buffer).setBigUint64(0, v, true)
        return b
      }
      const cases: Array<[bigint, number]> = [
        [5n, 5],
        [0x1_0000_0005n, 5],
        [0x1_0000_0000n, 0],
        [5n, 5],
        [5n, 5],
        [0xffff_ffff_ffff_ffffn, 0xffffffff],
        [0x8000_0000n, 0x8000_0000],
        [0n, 0],
      ]
      for (const [r0, retval] of cases) {
        const res = prog.run({ data: u64(r0) })
        expect([res.r0, res.retval, res.insnCount]).toEqual([r0, retval, 2])
      }
      // 1 + 100,000 * 2 + 1 instructions.
      const loop = new Program({
        instructions: assemble('r0 = 0\nr0 += 1\nif r0 < 100000 goto -2\nexit'),
        engine,
      })
      const res = loop.run()
      expect([res.r0, res.retval, res.insnCount]).toEqual([100000n, 100000, 200002])
      expect(res.durationNs).toBeGreaterThan(0)
      expect(Number.isInteger(res.durationNs)).toBe(true)
    })
  }
})
