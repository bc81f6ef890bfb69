/**
 * Random bytecode through the public API, both engines: every outcome is a result, a LoadError or a
 * TrapError with a Node-style code; the process never crashes and no run exceeds its budget. The
 * programs are biased toward valid opcodes so that many of them load and run.
 */
import { describe, expect, it } from 'vitest'
import { type EbpfError, LoadError, Program, TrapError } from '../ts/index'
import { FUZZ_SEED, fuzzTimeoutMs, LONG, LONG_SECONDS } from './helpers/fuzz-runner'
import { Random } from './helpers/random'

// Opcodes that exist (ALU/JMP/LD/ST of every class), plus a few that do not.
const OPCODES = [
  0x07, 0x0f, 0x17, 0x1f, 0x27, 0x2f, 0x37, 0x3f, 0x47, 0x4f, 0x57, 0x5f, 0x67, 0x6f, 0x77, 0x7f, 0x87, 0x97, 0x9f,
  0xa7, 0xaf, 0xb7, 0xbf, 0xc7, 0xcf, 0xd4, 0xdc, 0xd7, 0x04, 0x0c, 0x14, 0x1c, 0x24, 0x34, 0x3c, 0x94, 0x9c, 0xb4,
  0xbc, 0x05, 0x15, 0x1d, 0x25, 0x2d, 0x35, 0x45, 0x55, 0x5d, 0x65, 0xa5, 0xb5, 0xc5, 0xd5, 0x06, 0x16, 0x1e, 0x26,
  0x56, 0x61, 0x69, 0x71, 0x79, 0x81, 0x89, 0x91, 0x62, 0x6a, 0x72, 0x7a, 0x63, 0x6b, 0x73, 0x7b, 0xc3, 0xdb, 0x18,
  0x20, 0x28, 0x30, 0x40, 0x85, 0x8d, 0x95, 0xff, 0x8e, 0x00,
]

/** One slot: well formed for its opcode most of the time, a random mutation now and then. */
function randomInsn(next: () => number, i: number, n: number): [number, number, number, number, number] {
  const op = OPCODES[next() % OPCODES.length]!
  const cls = op & 7
  const reg = () => next() % 10
  const jump = () => (next() % (n + 1)) - i - 1 // mostly inside the program
  let dst = reg()
  let src = 0
  let off = 0
  let imm = 0
  if (cls === 4 || cls === 7) {
    // ALU: register form has src and imm 0; END takes a width; sdiv/smod may set off 1.
    if ((op & 0xf0) === 0xd0) imm = [16, 32, 64][next() % 3]!
    else if (op & 8) src = reg()
    else imm = next() % 4 === 0 ? next() | 0 : (next() % 64) - 16
    if (((op & 0xf0) === 0x30 || (op & 0xf0) === 0x90) && next() % 2) off = 1
  } else if (cls === 5 || cls === 6) {
    if (op === 0x95) dst = 0
    else if (op === 0x85) [dst, imm] = [0, [5, 7, 8, 9999][next() % 4]!]
    else if (op === 0x8d) src = 0
    else if ((op & 0xf0) === 0) [dst, off, imm] = cls === 6 ? [0, 0, jump()] : [0, jump(), 0]
    else {
      off = jump()
      if (op & 8) src = reg()
      else imm = (next() % 32) - 8
    }
  } else if (cls === 1) {
    src = next() % 3 === 0 ? 10 : 1 + (next() % 2)
    off = src === 10 ? -8 * (1 + (next() % 8)) : next() % 16
  } else if (cls === 2 || cls === 3) {
    dst = next() % 3 === 0 ? 10 : 1
    off = dst === 10 ? -8 * (1 + (next() % 8)) : next() % 16
    if (cls === 3) src = reg()
    else imm = next() | 0
    if (op === 0xc3 || op === 0xdb) imm = [0x00, 0x01, 0x40, 0x41, 0x50, 0xa0, 0xe1, 0xf1][next() % 8]!
  } else if (op === 0x18) {
    src = 0
  } else {
    dst = 0
    src = op & 0x40 ? reg() : 0
    imm = next() % 32
  }
  // One slot in eight gets a random field, to exercise the validator.
  if (next() % 8 === 0) {
    const field = next() % 4
    if (field === 0) dst = next() & 15
    if (field === 1) src = next() & 15
    if (field === 2) off = (next() & 0xffff) - 0x8000
    if (field === 3) imm = next() | 0
  }
  return [op, dst, src, off, imm]
}

function randomProgram(next: () => number): Uint8Array {
  const n = 1 + (next() % 24)
  const b = new Uint8Array(n * 8 + 8)
  const view = new DataView(b.buffer)
  for (let i = 0; i < n; i++) {
    const [op, dst, src, off, imm] = randomInsn(next, i, n)
    b[i * 8] = op
    b[i * 8 + 1] = (dst & 15) | ((src & 15) << 4)
    view.setInt16(i * 8 + 2, off, true)
    view.setInt32(i * 8 + 4, imm | 0, true)
  }
  b[n * 8] = 0x95 // exit, so that many programs end properly
  return b
}

describe('random bytecode through the public API', () => {
  for (const engine of ['interpreter', 'jit'] as const) {
    it(
      `${engine}: 3000 programs give results or typed errors`,
      () => {
        // EBPF_FUZZ_LONG=1: as many programs as fit EBPF_FUZZ_SECONDS, from seed EBPF_FUZZ_SEED.
        const seed = LONG ? FUZZ_SEED : engine === 'jit' ? 7 : 11
        const random = new Random(seed)
        const next = () => random.u32()
        const outcomes = { loaded: 0, rejected: 0, ran: 0, trapped: 0 }
        const deadline = Date.now() + LONG_SECONDS * 1000
        let i = 0
        for (; LONG ? Date.now() < deadline : i < 3000; i++) {
          const code = randomProgram(next)
          let prog: Program
          try {
            prog = new Program({ instructions: code, engine, budget: 5000 })
            outcomes.loaded++
          } catch (e) {
            expect(e).toBeInstanceOf(LoadError)
            expect((e as EbpfError).code).toMatch(/^E[A-Z0-9]+$/)
            outcomes.rejected++
            continue
          }
          const data = Uint8Array.from({ length: next() % 64 }, () => next() & 0xff)
          try {
            const res = prog.run({ data })
            expect(res.insnCount).toBeLessThanOrEqual(5000)
            expect(res.data.length).toBe(data.length)
            outcomes.ran++
          } catch (e) {
            expect(e).toBeInstanceOf(TrapError)
            expect((e as TrapError).insnCount).toBeLessThanOrEqual(5000)
            outcomes.trapped++
          }
        }
        console.log(`fuzz api ${engine}: ${i} programs (seed ${seed}): ${JSON.stringify(outcomes)}`)
        // The generator must exercise both sides of each question.
        expect(outcomes.loaded).toBeGreaterThan(100)
        expect(outcomes.rejected).toBeGreaterThan(100)
        expect(outcomes.ran).toBeGreaterThan(10)
        expect(outcomes.trapped).toBeGreaterThan(10)
      },
      fuzzTimeoutMs(60_000),
    )
  }
})
