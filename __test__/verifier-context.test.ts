/**
 * Program types and options that decide what the verifier lets a program read through its context:
 * `tracepoint` and `raw_tracepoint` (the kernel's rules for their contexts, and runs whose `ctx` is
 * zero-extended to what those rules allow) and `expectedAttachType: 'xdp_devmap'` (the only XDP
 * programs that may read `egress_ifindex`). Verdicts and messages are the live kernel's (Linux 6.18,
 * recorded in `__test__/verifier-corpus/verdicts.json` for the same instructions and the corpus's
 * `xdp_parse.c`); run results by hand.
 */
import { describe, expect, it } from 'vitest'
import {
  assemble,
  Collection,
  LoadError,
  loadCollectionSpecSync,
  Program,
  TrapError,
  VerifierError,
} from '../dist/index.js'

const CORPUS_XDP = `${__dirname}/verifier-corpus/c/xdp_parse.bpf.o`

function loadError(load: () => unknown): LoadError {
  try {
    load()
  } catch (e) {
    expect(e).toBeInstanceOf(LoadError)
    return e as LoadError
  }
  throw new Error('the load was accepted')
}

describe('tracepoint and raw_tracepoint programs', () => {
  it('verifies tracepoint reads past the common header and below 8192, and zero-extends the record', () => {
    // r0 = *(u64 *)(r1 + 8) + *(u64 *)(r1 + 8184)
    const instructions = assemble('r0 = *(u64 *)(r1 + 8)\nr2 = *(u64 *)(r1 + 8184)\nr0 += r2\nexit')
    const p = new Program({ type: 'tracepoint', instructions, mode: 'verified' })
    const record = new Uint8Array(16)
    record[8] = 42
    expect(p.run({ ctx: record }).r0).toBe(42n)
    const full = new Uint8Array(8192)
    full[8] = 1
    full[8184] = 2
    expect(p.run({ ctx: full }).r0).toBe(3n)
    expect(() => p.run({ ctx: new Uint8Array(8193) })).toThrow(TrapError)
    // The kernel: tracepoint_ctx_read_u64_off_0_rej, tracepoint_ctx_read_u64_off_8192_rej.
    for (const off of [0, 8192]) {
      const e = loadError(
        () =>
          new Program({
            type: 'tracepoint',
            instructions: assemble(`r0 = *(u64 *)(r1 + ${off})\nexit`),
            mode: 'verified',
          }),
      )
      expect(e).toBeInstanceOf(VerifierError)
      expect(e.code).toBe('EACCES')
      expect(e.message.split('\n')[0]).toBe(`invalid bpf_context access off=${off} size=8`)
    }
  })

  it('verifies raw_tracepoint reads of the 12 arguments and refuses a longer context at run', () => {
    const p = new Program({
      type: 'raw_tracepoint',
      instructions: assemble('r0 = *(u64 *)(r1 + 88)\nexit'),
      mode: 'verified',
    })
    expect(p.run({ ctx: new Uint8Array(8) }).r0).toBe(0n)
    const args = new Uint8Array(96)
    args[88] = 5
    expect(p.run({ ctx: args }).r0).toBe(5n)
    expect(() => p.run({ ctx: new Uint8Array(104) })).toThrow(/context has 96/)
    const e = loadError(
      () =>
        new Program({
          type: 'raw_tracepoint',
          instructions: assemble('r0 = *(u64 *)(r1 + 96)\nexit'),
          mode: 'verified',
        }),
    )
    expect(e.message.split('\n')[0]).toBe('invalid bpf_context access off=96 size=8')
  })

  it('loads tracepoint and raw_tp sections of an object as those types', () => {
    const spec = loadCollectionSpecSync(`${__dirname}/verifier-corpus/c/tracing.bpf.o`)
    const coll = new Collection(spec, { mode: 'verified', programs: ['tracepoint_sys_enter_id_ok'] })
    expect(coll.programs.get('tracepoint_sys_enter_id_ok')!.type).toBe('tracepoint')
    // struct sys_enter_args: the common header, then id (35: true).
    const ctx = new Uint8Array(64)
    ctx[8] = 35
    expect(coll.programs.get('tracepoint_sys_enter_id_ok')!.run({ ctx }).r0).toBe(1n)
    const e = loadError(
      () => new Collection(spec, { mode: 'verified', programs: ['tracepoint_sys_enter_common_header_rej'] }),
    )
    // The kernel's line, then the C source line the object's line info gives.
    expect(e.message).toMatch(/^invalid bpf_context access off=0 size=8\b/)
  })
})

describe("expectedAttachType 'xdp_devmap'", () => {
  const readEgress = assemble('r0 = *(u32 *)(r1 + 20)\nexit')

  it('lets a devmap program read egress_ifindex, and no other xdp program', () => {
    const e = loadError(() => new Program({ type: 'xdp', instructions: readEgress, mode: 'verified' }))
    expect(e.message.split('\n')[0]).toBe('invalid bpf_context access off=20 size=4')
    const p = new Program({ type: 'xdp', instructions: readEgress, mode: 'verified', expectedAttachType: 'xdp_devmap' })
    expect(p.run({ data: new Uint8Array(20) }).r0).toBe(0n)
  })

  it('comes from SEC("xdp/devmap") in a Collection', () => {
    const spec = loadCollectionSpecSync(CORPUS_XDP)
    expect(() => new Collection(spec, { mode: 'verified', programs: ['xdp_egress_ifindex_devmap_ok'] })).not.toThrow()
    const e = loadError(
      () => new Collection(spec, { mode: 'verified', programs: ['xdp_egress_ifindex_plain_xdp_rej'] }),
    )
    expect(e.code).toBe('EACCES')
  })

  it('is refused for other program types and unknown names', () => {
    expect(
      loadError(
        () => new Program({ type: 'socket_filter', instructions: readEgress, expectedAttachType: 'xdp_devmap' }),
      ).code,
    ).toBe('EINVAL')
    expect(
      loadError(
        () => new Program({ type: 'xdp', instructions: readEgress, expectedAttachType: 'cpumap' as 'xdp_devmap' }),
      ).message,
    ).toMatch(/expectedAttachType must be one of 'xdp_devmap'/)
  })
})
