// Issue #11: memory a hostile program must not be able to misuse, from JavaScript, on both engines.
import { describe, expect, it } from 'vitest'
import { assemble, BpfMap, Program, TrapError } from '../ts/index'

// The program of the issue: lock the value of key 0, delete the key, exit holding the lock.
const LOCK_DELETE_EXIT = assemble(`
    *(u32 *)(r10 - 4) = 0
    r1 = map[0] ll
    r2 = r10
    r2 += -4
    call 1
    if r0 == 0 goto out
    r1 = r0
    call 93
    r1 = map[0] ll
    r2 = r10
    r2 += -4
    call 3
  out:
    r0 = 0
    exit
  `)

describe('a spin lock on a value the program deletes', () => {
  for (const engine of ['interpreter', 'jit'] as const) {
    for (const valueSize of [8, 1 << 20]) {
      it(`${engine}, ${valueSize}-byte values: a typed trap at the delete, the lock released`, () => {
        const m = new BpfMap({ type: 'hash', keySize: 4, valueSize, maxEntries: 4 })
        m.update(0, new Uint8Array(valueSize))
        const prog = new Program({ instructions: LOCK_DELETE_EXIT, maps: [m], engine })
        for (let run = 0; run < 3; run++) {
          let error: unknown
          try {
            prog.run({})
          } catch (e) {
            error = e
          }
          expect(error).toBeInstanceOf(TrapError)
          expect(error).toMatchObject({ code: 'EINVAL', kind: 'helper_error', insn: 13 })
          expect((error as Error).message).toContain('not allowed while holding a lock')
          // The delete never happened, and the lock word reads free again (the next run takes it).
          expect(m.size).toBe(1)
        }
      })
    }
  }
})
