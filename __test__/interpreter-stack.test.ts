/**
 * The interpreter's handlers call one another in tail position (crates/ebpf-vm/src/interpreter/
 * threaded.rs); in an optimised build, which the native module is, they count no fuel and rely
 * on the compiler making every such call a jump. Were one of them a call, a long run would grow
 * the stack by a frame per instruction and overflow it: 60 million instructions here, in one
 * run, on the release build.
 */
import { describe, expect, it } from 'vitest'
import { assemble, Program } from '../ts/index'

const N = 20_000_000
// 2 + 3 * N + 1 instructions (counted by hand), r0 = N.
const LOOP = assemble(`
  r0 = 0
  r2 = ${N}
loop:
  r0 += 1
  r2 -= 1
  if r2 != 0 goto loop
  exit`)

describe('the interpreter runs in constant stack', () => {
  it('60 million instructions in one run', () => {
    const prog = new Program({ instructions: LOOP, engine: 'interpreter', budget: 100_000_000 })
    const res = prog.run({ data: new Uint8Array(0) })
    expect([res.r0, res.insnCount]).toEqual([BigInt(N), 2 + 3 * N + 1])
  })
})
