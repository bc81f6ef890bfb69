/**
 * Wall-clock limits and cancellation of runs (`timeoutMs`, `signal`), on both engines. The tests
 * assert the outcome's codes and kinds, never how long anything took.
 */
import { describe, expect, it } from 'vitest'
import { AbortError, assemble, EbpfError, LoadError, Program, TrapError } from '../ts/index'

/** An infinite loop; with this budget it would run for hours. */
const SPIN = assemble('r0 = 0\nspin:\nr0 += 1\ngoto spin\nexit')
const HUGE = 2 ** 52

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p
  } catch (e) {
    return e
  }
  throw new Error('the promise resolved')
}

function thrown(f: () => unknown): unknown {
  try {
    f()
  } catch (e) {
    return e
  }
  throw new Error('nothing was thrown')
}

for (const engine of ['interpreter', 'jit'] as const) {
  describe(`run limits (${engine})`, () => {
    const prog = new Program({ instructions: SPIN, engine, budget: HUGE })

    it('runAsync rejects with an AbortError when its signal fires', async () => {
      const controller = new AbortController()
      const run = prog.runAsync({ signal: controller.signal })
      setTimeout(() => controller.abort(new Error('enough')), 20)
      const e = await rejection(run)
      expect(e).toBeInstanceOf(AbortError)
      expect(e).toBeInstanceOf(TrapError)
      expect(e).toBeInstanceOf(EbpfError)
      const a = e as AbortError
      expect([a.name, a.code, a.kind]).toEqual(['AbortError', 'ABORT_ERR', 'aborted'])
      expect((a as { cause?: unknown }).cause).toEqual(new Error('enough'))
      // Stopped at a slice boundary of the loop, after more than a slice's worth of instructions.
      expect(a.insnCount).toBeGreaterThanOrEqual(2 ** 20)
      expect([1, 2]).toContain(a.insn)
    })

    it('a signal that already fired stops the run before it starts', async () => {
      const e = await rejection(prog.runAsync({ signal: AbortSignal.abort() }))
      expect((e as AbortError).code).toBe('ABORT_ERR')
      expect((e as AbortError).insnCount).toBe(0)
      expect((thrown(() => prog.run({ signal: AbortSignal.abort() })) as AbortError).code).toBe('ABORT_ERR')
    })

    it('runBatchAsync rejects with an AbortError when its signal fires', async () => {
      const controller = new AbortController()
      const run = prog.runBatchAsync([new Uint8Array(4), new Uint8Array(4)], { signal: controller.signal })
      setTimeout(() => controller.abort(), 20)
      const e = await rejection(run)
      expect(e).toBeInstanceOf(AbortError)
      expect((e as AbortError).code).toBe('ABORT_ERR')
    })

    it('timeoutMs stops an infinite loop with ETIME / timeout', async () => {
      const e = thrown(() => prog.run({ timeoutMs: 20 })) as TrapError
      expect(e).toBeInstanceOf(TrapError)
      expect([e.code, e.kind]).toEqual(['ETIME', 'timeout'])
      expect([1, 2]).toContain(e.insn)
      const a = (await rejection(prog.runAsync({ timeoutMs: 20 }))) as TrapError
      expect([a.code, a.kind]).toEqual(['ETIME', 'timeout'])
    })

    it('timeoutMs bounds a whole batch', async () => {
      const packets = [new Uint8Array(1), new Uint8Array(2), new Uint8Array(3)]
      const entries = prog.runBatch(packets, { timeoutMs: 10 })
      expect(entries.map((e) => !e.ok && [e.error.code, (e.error as TrapError).kind])).toEqual([
        ['ETIME', 'timeout'],
        ['ETIME', 'timeout'],
        ['ETIME', 'timeout'],
      ])
      const lean = prog.runBatchRetvals(packets, { timeoutMs: 10 })
      expect(lean.errors.map((e) => [e.index, e.error.code])).toEqual([
        [0, 'ETIME'],
        [1, 'ETIME'],
        [2, 'ETIME'],
      ])
      const async = await prog.runBatchAsync(packets, { timeoutMs: 10 })
      expect(async.every((e) => !e.ok && (e.error as TrapError).kind === 'timeout')).toBe(true)
    })

    it('limits that are not reached change nothing', async () => {
      const counted = new Program({
        instructions: assemble('r0 = 0\nl:\nr0 += 1\nif r0 < 3000000 goto l\nexit'),
        engine,
      })
      const plain = counted.run()
      const limited = counted.run({ timeoutMs: 3_600_000 })
      expect([limited.r0, limited.insnCount]).toEqual([plain.r0, plain.insnCount])
      expect(plain.insnCount).toBe(1 + 3_000_000 * 2 + 1)
      const viaAsync = await counted.runAsync({ timeoutMs: 3_600_000, signal: new AbortController().signal })
      expect([viaAsync.r0, viaAsync.insnCount]).toEqual([plain.r0, plain.insnCount])
    })
  })
}

describe('run limit options', () => {
  const prog = new Program({ instructions: assemble('r0 = 1\nexit') })
  it('refuses a timeoutMs that is not a positive number', () => {
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '10']) {
      const e = thrown(() => prog.run({ timeoutMs: bad as number })) as LoadError
      expect(e).toBeInstanceOf(LoadError)
      expect(e.code).toBe('EINVAL')
      expect(e.message).toMatch(/timeoutMs/)
    }
  })
  it('refuses a signal that is not an AbortSignal', () => {
    const e = thrown(() => prog.run({ signal: {} as AbortSignal })) as LoadError
    expect([e.code, e.message]).toEqual(['EINVAL', 'signal must be an AbortSignal'])
  })
})
