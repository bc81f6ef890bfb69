/**
 * `bpf_get_attach_cookie` (174) in tracing programs: the run option `attachCookie` is what it
 * returns (fixtures/attach_cookie.c), on both engines; without one, 0, as the kernel's own test
 * run of the raw tracepoint gives (no probe, no cookie), compared where the kernel can be asked.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Collection, loadCollectionSpec, Program } from '../ts/index'
import { KernelObject, kernelOracle } from './helpers/kernel'

const fixture = join(__dirname, 'fixtures', 'attach_cookie.bpf.o')
const oracle = kernelOracle()

describe('bpf_get_attach_cookie', () => {
  for (const engine of ['interpreter', 'jit'] as const) {
    it(`${engine}: the caller's cookie, all 64 bits; 0 without one`, async () => {
      const coll = new Collection(await loadCollectionSpec(fixture), { engine })
      for (const name of ['tp_cookie', 'kp_cookie']) {
        const prog = coll.programs.get(name)!
        const ctx = new Uint8Array(name === 'kp_cookie' ? 168 : 8)
        expect(prog.run({ ctx }).retval).toBe(0)
        expect(coll.variable('cookie')).toBe(0n)
        const r = prog.run({ ctx, attachCookie: 0x1234_5678_9abc_def0n })
        expect(r.retval).toBe(0x9abc_def0)
        expect(coll.variable('cookie')).toBe(0x1234_5678_9abc_def0n)
      }
      // Two calls (one per program) saw a cookie.
      expect(coll.variable('calls')).toEqual({ last: 0x1234_5678_9abc_def0n, with_cookie: 2 })
    })
  }

  it('the kernel offers it to tracing types only: a socket filter calling it does not load', () => {
    // r0 = bpf_get_attach_cookie(r1); exit
    const instructions = Uint8Array.from([0x85, 0, 0, 0, 174, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0])
    expect(() => new Program({ type: 'socket_filter', instructions })).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    )
    expect(
      new Program({ type: 'tracing', instructions }).run({ ctx: new Uint8Array(168), attachCookie: 7 }).retval,
    ).toBe(7)
  })

  it('attachCookie is checked', () => {
    const prog = new Program({
      type: 'tracing',
      instructions: Uint8Array.from([0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]),
    })
    expect(() => prog.run({ attachCookie: -1 })).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringMatching(/attachCookie/) }),
    )
  })

  it.skipIf(!oracle.ok)(
    `the kernel's raw_tp test run returns 0 (${oracle.ok ? 'root, bpftool' : oracle.reason})`,
    () => {
      const kernel = KernelObject.load(fixture)
      try {
        expect(kernel.runRawTp('tp_cookie', [0n, 0n])).toBe(0)
      } finally {
        kernel.close()
      }
    },
  )
})
