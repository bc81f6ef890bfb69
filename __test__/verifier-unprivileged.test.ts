/**
 * `unprivileged: true`: the rules Linux 6.18 applies to a load without CAP_BPF and CAP_PERFMON.
 * The expected verdicts, errnos and messages are the live kernel's, loading the same instructions
 * as a socket filter as uid 65534 with every capability dropped (kernel.unprivileged_bpf_disabled
 * set to 0 for the recording; `crates/ebpf-vm/tests/verifier_unprivileged.rs` holds 100 such
 * recorded cases, checked against the Rust verifier).
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  assemble,
  BpfMap,
  Collection,
  LoadError,
  loadCollectionSpecSync,
  Program,
  VerifierError,
} from '../dist/index.js'

function refusal(f: () => unknown): VerifierError {
  try {
    f()
  } catch (e) {
    expect(e).toBeInstanceOf(VerifierError)
    return e as VerifierError
  }
  throw new Error('expected a VerifierError')
}

const socketFilter = (source: string, opts: { unprivileged?: boolean; maps?: BpfMap[] } = {}) =>
  new Program({ type: 'socket_filter', instructions: assemble(source), mode: 'verified', ...opts })

describe('unprivileged: true', () => {
  it('refuses a pointer in r0 at exit, which root may return (kernel: R0 leaks addr as return value)', () => {
    const src = `
      r0 = r1
      exit`
    expect(() => socketFilter(src)).not.toThrow()
    const e = refusal(() => socketFilter(src, { unprivileged: true }))
    expect(e.code).toBe('EACCES')
    expect(e.insn).toBe(1)
    expect(e.message).toBe('R0 leaks addr as return value')
  })

  it('refuses a read of uninitialised stack (kernel: invalid read from stack R10 off=-8 size=8)', () => {
    const src = `
      r0 = *(u64 *)(r10 - 8)
      exit`
    expect(() => socketFilter(src)).not.toThrow()
    const e = refusal(() => socketFilter(src, { unprivileged: true }))
    expect(e.code).toBe('EACCES')
    expect(e.message).toBe('invalid read from stack R10 off=-8 size=8')
  })

  it('refuses a pointer stored into a map value and a pointer comparison; allows the null check', () => {
    const map = new BpfMap({ type: 'array', keySize: 4, valueSize: 8, maxEntries: 1 })
    const lookup = `
      *(u32 *)(r10 - 4) = 0
      r2 = r10
      r2 += -4
      r1 = map[0] ll
      call 1
      if r0 == 0 goto +1`
    const leak = refusal(() =>
      socketFilter(`${lookup}\n*(u64 *)(r0 + 0) = r10\nr0 = 0\nexit`, { unprivileged: true, maps: [map] }),
    )
    expect(leak.code).toBe('EACCES')
    expect(leak.message).toBe('R10 leaks addr into map')
    const compare = refusal(() =>
      socketFilter(`${lookup}\nif r0 == r10 goto +0\nr0 = 0\nexit`, { unprivileged: true, maps: [map] }),
    )
    expect(compare.message).toBe('R10 pointer comparison prohibited')
    expect(() =>
      socketFilter(`${lookup}\n*(u64 *)(r0 + 0) = 7\nr0 = 0\nexit`, { unprivileged: true, maps: [map] }),
    ).not.toThrow()
  })

  it('refuses loops (EINVAL back-edge) and other program types (EPERM)', () => {
    const loop = refusal(() =>
      socketFilter(
        `
        r0 = 0
        r0 += 1
        if r0 < 10 goto -2
        exit`,
        { unprivileged: true },
      ),
    )
    expect(loop.code).toBe('EINVAL')
    expect(loop.message).toBe('back-edge from insn 2 to 1')
    const xdp = refusal(
      () => new Program({ type: 'xdp', instructions: assemble('r0 = 2\nexit'), mode: 'verified', unprivileged: true }),
    )
    expect(xdp.code).toBe('EPERM')
  })

  it('needs mode verified and a boolean', () => {
    const instructions = assemble('r0 = 0\nexit')
    expect(() => new Program({ type: 'socket_filter', instructions, mode: 'checked', unprivileged: true })).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringContaining("needs mode 'verified'") }),
    )
    expect(
      () =>
        new Program({
          type: 'socket_filter',
          instructions,
          mode: 'verified',
          unprivileged: 'yes' as unknown as boolean,
        }),
    ).toThrow(LoadError)
  })

  it('applies to every program of a Collection (kernel as nobody: 51 insns processed, as root 50)', () => {
    const spec = () => loadCollectionSpecSync(join(__dirname, 'fixtures', 'socket_filter.bpf.o'))
    const unprivileged = new Collection(spec(), { mode: 'verified', unprivileged: true })
    expect(unprivileged.programs.get('udp_port_filter')!.verifierStats!.processedInsns).toBe(51)
    const root = new Collection(spec(), { mode: 'verified' })
    expect(root.programs.get('udp_port_filter')!.verifierStats!.processedInsns).toBe(50)
  })
})
