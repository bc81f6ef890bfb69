/**
 * How the batch forms take their packets from JavaScript (an array packed into one reused buffer,
 * or `{ bytes, lengths }` as they are) and hand back the results (typed arrays unpacked into one
 * entry per packet): every form gives each packet's own result, whatever the packets' sizes and
 * wherever their bytes lie. Expected values are worked by hand from the programs below.
 */
import { describe, expect, it } from 'vitest'
import { assemble, BpfMap, LoadError, Program, type TrapError } from '../ts/index'

// XDP: r0 = bpf_xdp_get_buff_len(ctx) << 8 | byte 13 of the packet (0 when the linear part is
// shorter than 14 bytes; the engine refuses such runts before the run anyway).
const XDP_LEN_AND_BYTE = assemble(`
  r6 = r1
  r2 = *(u32 *)(r6 + 0)
  r3 = *(u32 *)(r6 + 4)
  r7 = 0
  r4 = r2
  r4 += 14
  if r4 > r3 goto len
  r7 = *(u8 *)(r2 + 13)
len:
  r1 = r6
  call 188
  r0 <<= 8
  r0 |= r7
  exit
`)

// Raw: r0 = the packet's first byte | its length << 8; a packet of no bytes traps (the load is out
// of bounds) and the program writes 0xee over the first byte, which runBatch hands back.
const RAW_FIRST_AND_LEN = assemble(`
  r0 = *(u8 *)(r1 + 0)
  r3 = 0xee
  *(u8 *)(r1 + 0) = r3
  r2 <<= 8
  r0 |= r2
  exit
`)

/** A packet of `len` bytes whose byte i is (i * 7 + seed) & 0xff. */
const packet = (len: number, seed: number) => Uint8Array.from({ length: len }, (_, i) => (i * 7 + seed) & 0xff)
/** The XDP program's result for a packet of `len` bytes from `packet(len, seed)`. */
const xdpExpected = (len: number, seed: number) => ((len << 8) | ((13 * 7 + seed) & 0xff)) >>> 0

const engines = ['interpreter', 'jit'] as const
const modes = ['checked', 'verified'] as const

describe('runBatchRetvals and runBatch over packets of any size, wherever they lie', () => {
  for (const engine of engines) {
    for (const mode of modes) {
      const xdp = () => new Program({ type: 'xdp', instructions: XDP_LEN_AND_BYTE, engine, mode })

      it(`${engine}, ${mode}: packets of 14 to 5000 bytes (past the 3520-byte linear frame), each its own result`, () => {
        const sizes = [64, 14, 1500, 5000, 15, 3520, 3521, 100]
        const packets = sizes.map((len, i) => packet(len, i))
        // 5000 bytes: bpf_xdp_get_buff_len counts the fragment too (3520 linear + 1480).
        const expected = Uint32Array.from(sizes, (len, i) => xdpExpected(len, i))
        const p = xdp()
        const lean = p.runBatchRetvals(packets)
        expect(lean.retvals).toEqual(expected)
        expect(lean.errors).toEqual([])
        const packed = p.runBatchRetvals({ bytes: Buffer.concat(packets), lengths: sizes })
        expect(packed.retvals).toEqual(expected)
        const full = p.runBatch(packets)
        expect(full.map((e) => (e.ok ? e.retval : -1))).toEqual(Array.from(expected))
        // Each entry's data is its own packet, as the program left it (it writes nothing).
        full.forEach((e, i) => {
          expect(e.ok && e.data).toEqual(packets[i])
          expect(e.ok && e.r0).toBe(BigInt(expected[i]!))
          expect(e.ok && e.ctxFields).toMatchObject({ data_meta: 0, ingress_ifindex: 1 })
        })
        // Packed into the same reused buffer, a second, smaller batch sees only its own packets.
        expect(p.runBatchRetvals([packet(20, 9)]).retvals).toEqual(Uint32Array.of(xdpExpected(20, 9)))
      })

      it(`${engine}, ${mode}: Buffers and views at an offset into a larger ArrayBuffer`, () => {
        const backing = new ArrayBuffer(4096)
        const whole = new Uint8Array(backing)
        whole.set(packet(4096, 3))
        // Views that start at odd offsets, overlap, and a Buffer over the same memory.
        const views = [
          new Uint8Array(backing, 1, 64),
          new Uint8Array(backing, 33, 100),
          Buffer.from(backing, 1000, 20),
          whole.subarray(4000),
        ]
        // Byte 13 of a view at offset o is byte o + 13 of the whole: ((o + 13) * 7 + 3) & 0xff.
        const expected = Uint32Array.from(
          [
            [1, 64],
            [33, 100],
            [1000, 20],
            [4000, 96],
          ],
          ([o, len]) => ((len! << 8) | (((o! + 13) * 7 + 3) & 0xff)) >>> 0,
        )
        const p = xdp()
        expect(p.runBatchRetvals(views).retvals).toEqual(expected)
        expect(p.runBatch(views).map((e) => (e.ok ? e.retval : -1))).toEqual(Array.from(expected))
        // The packed form's bytes may be a view at an offset too.
        const bytes = new Uint8Array(backing, 1, 64 + 100)
        const packed = p.runBatchRetvals({ bytes, lengths: Uint32Array.of(64, 100) })
        expect(packed.retvals).toEqual(Uint32Array.of(expected[0]!, ((100 << 8) | (((65 + 13) * 7 + 3) & 0xff)) >>> 0))
        // Nothing was written to the caller's memory.
        expect(whole).toEqual(packet(4096, 3))
      })

      it(`${engine}, ${mode}: an empty batch and a batch of one`, () => {
        const p = xdp()
        expect(p.runBatchRetvals([])).toMatchObject({ retvals: new Uint32Array(0), errors: [] })
        expect(p.runBatchRetvals({ bytes: new Uint8Array(0), lengths: [] }).retvals).toEqual(new Uint32Array(0))
        expect(p.runBatch([])).toEqual([])
        expect(p.runBatchRetvals([packet(60, 1)]).retvals).toEqual(Uint32Array.of(xdpExpected(60, 1)))
        const [one] = p.runBatch([packet(60, 1)])
        expect(one?.ok && one.retval).toBe(xdpExpected(60, 1))
      })

      it(`${engine}, ${mode}: a runt mid-batch is its own EINVAL; the packets around it run`, () => {
        const packets = [packet(64, 0), packet(13, 1), packet(64, 2), new Uint8Array(0), packet(64, 4)]
        const p = xdp()
        const { retvals, errors } = p.runBatchRetvals(packets)
        expect(retvals).toEqual(Uint32Array.of(xdpExpected(64, 0), 0, xdpExpected(64, 2), 0, xdpExpected(64, 4)))
        expect(errors.map((e) => [e.index, e.error.code, (e.error as TrapError).kind])).toEqual([
          [1, 'EINVAL', 'invalid_input'],
          [3, 'EINVAL', 'invalid_input'],
        ])
        const full = p.runBatch(packets)
        expect(full.map((e) => (e.ok ? e.retval : e.error.code))).toEqual([
          xdpExpected(64, 0),
          'EINVAL',
          xdpExpected(64, 2),
          'EINVAL',
          xdpExpected(64, 4),
        ])
      })
    }
  }
})

describe('runBatch unpacks every field per packet', () => {
  for (const engine of engines) {
    it(`${engine}: raw data as each run left it, a trap mid-batch keeps its packet as given`, async () => {
      const p = new Program({ instructions: RAW_FIRST_AND_LEN, engine })
      const packets = [Uint8Array.of(5, 6, 7), new Uint8Array(0), Uint8Array.of(9), Buffer.from([1, 2])]
      for (const out of [p.runBatch(packets), await p.runBatchAsync(packets)]) {
        expect(out.map((e) => (e.ok ? e.r0 : e.error.code))).toEqual([
          5n | (3n << 8n),
          'EFAULT',
          9n | (1n << 8n),
          1n | (2n << 8n),
        ])
        expect(out.map((e) => (e.ok ? Array.from(e.data) : []))).toEqual([[0xee, 6, 7], [], [0xee], [0xee, 2]])
        // Instructions: 6 for a whole run; the trapped one stopped at its first.
        expect(out.map((e) => (e.ok ? e.insnCount : undefined))).toEqual([6, undefined, 6, 6])
        for (const e of out) if (e.ok) expect(e.durationNs).toBeGreaterThanOrEqual(0)
      }
      // The caller's packets are untouched (the runs work on copies).
      expect(packets[0]).toEqual(Uint8Array.of(5, 6, 7))
      const data = p.runBatchData(packets)
      expect(data.retvals).toEqual(Uint32Array.of(5 | (3 << 8), 0, 9 | (1 << 8), 1 | (2 << 8)))
      // The trapped packet (no bytes) adds nothing; the others as the runs left them.
      expect(Array.from(data.data)).toEqual([0xee, 6, 7, 0xee, 0xee, 2])
      expect(data.dataLengths).toEqual(Uint32Array.of(3, 0, 1, 2))
      expect(data.errors.map((e) => e.index)).toEqual([1])
    })

    it(`${engine}: r0 above 32 bits: retval is its low half, r0 the whole`, () => {
      const p = new Program({
        instructions: assemble('r0 = 0x1234567887654321 ll\nr1 = *(u8 *)(r1 + 0)\nr0 += r1\nexit'),
        engine,
      })
      const [a, b] = p.runBatch([Uint8Array.of(1), Uint8Array.of(0xff)])
      expect(a?.ok && [a.r0, a.retval]).toEqual([0x1234567887654322n, 0x87654322])
      expect(b?.ok && [b.r0, b.retval]).toEqual([0x1234567887654420n, 0x87654420])
      expect(p.runBatchRetvals([Uint8Array.of(1)], { budget: 100 }).retvals).toEqual(Uint32Array.of(0x87654322))
    })
  }
})

describe('bad packets are EINVAL LoadErrors naming the packet', () => {
  const p = new Program({ type: 'xdp', instructions: XDP_LEN_AND_BYTE })
  const forms = {
    runBatch: (x: unknown) => p.runBatch(x as Uint8Array[]),
    runBatchRetvals: (x: unknown) => p.runBatchRetvals(x as Uint8Array[]),
    runBatchData: (x: unknown) => p.runBatchData(x as Uint8Array[]),
  }
  for (const [name, run] of Object.entries(forms)) {
    it(name, () => {
      const bad: Array<[unknown, RegExp]> = [
        [[packet(64, 0), 'abc'], /packets\[1\] must be a Uint8Array, got/],
        [[packet(64, 0), new Uint16Array(32)], /packets\[1\] must be a Uint8Array/],
        [[packet(64, 0), [1, 2, 3]], /packets\[1\] must be a Uint8Array/],
        [new Array(2), /packets\[0\] is missing \(a sparse array\)/],
        ['abc', /packets must be an array/],
        [{ bytes: new Uint8Array(10), lengths: [4, 4] }, /packet lengths add up to 8 bytes, the packets have 10/],
        [{ bytes: new Uint8Array(10), lengths: [4, -1] }, /packets\.lengths\[1\] must be an integer/],
      ]
      for (const [input, message] of bad) {
        if (name === 'runBatch' && !Array.isArray(input) && typeof input === 'object') continue
        expect(() => run(input)).toThrow(
          expect.objectContaining({ constructor: LoadError, code: 'EINVAL', message: expect.stringMatching(message) }),
        )
      }
      // A bad batch leaves the next one right (the reused buffer holds nothing of it).
      expect(p.runBatchRetvals([packet(64, 5)]).retvals).toEqual(Uint32Array.of(xdpExpected(64, 5)))
    })
  }
})

/** Helper 1000: on its second call, fills `bytes` with 99 and detaches its buffer (its memory
 * goes to the clone); returns 0. */
function rewriteAndDetachOnSecondCall(bytes: Uint8Array): () => bigint {
  let calls = 0
  return () => {
    calls++
    if (calls === 2 && bytes.buffer.byteLength > 0) {
      bytes.fill(99)
      structuredClone(bytes.buffer, { transfer: [bytes.buffer] })
    }
    return 0n
  }
}

describe('with JavaScript helpers, the engine reads a copy of the packets', () => {
  for (const engine of engines) {
    it(`${engine}: a helper that rewrites and detaches the caller's buffer mid-batch changes no result`, () => {
      const bytes = Uint8Array.of(10, 20, 30, 40)
      const lengths = [1, 1, 1, 1]
      // r0 = the packet's byte, read after the helper ran.
      const p = new Program({
        engine,
        instructions: assemble('r6 = r1\ncall 1000\nr0 = *(u8 *)(r6 + 0)\nexit'),
        helpers: { 1000: rewriteAndDetachOnSecondCall(bytes) },
      })
      const { retvals, errors } = p.runBatchRetvals({ bytes, lengths })
      expect(errors).toEqual([])
      expect(retvals).toEqual(Uint32Array.of(10, 20, 30, 40))
      expect(bytes.byteLength).toBe(0)
      // Arrays of packets too, in each form.
      const packets = [Uint8Array.of(1), Uint8Array.of(2), Uint8Array.of(3)]
      const detachAll = () => {
        for (const q of packets) if (q.byteLength) structuredClone(q.buffer, { transfer: [q.buffer] })
      }
      const q = new Program({
        engine,
        instructions: assemble('r6 = r1\ncall 1000\nr0 = *(u8 *)(r6 + 0)\nexit'),
        helpers: {
          1000: () => {
            detachAll()
            return 0n
          },
        },
      })
      expect(q.runBatch(packets).map((e) => (e.ok ? e.retval : -1))).toEqual([1, 2, 3])
    })

    it(`${engine}: so does a program without helpers that tail-calls into one with them`, () => {
      // Four 14-byte packets whose first bytes are 10, 20, 30, 40.
      const bytes = new Uint8Array(4 * 14)
      for (let k = 0; k < 4; k++) bytes[14 * k] = 10 * (k + 1)
      const lengths = [14, 14, 14, 14]
      // The target: r0 = the packet's first byte, read after the helper ran.
      const target = new Program({
        engine,
        type: 'xdp',
        instructions: assemble(`
          r6 = r1
          r2 = 0
          r3 = 0
          r4 = 0
          r5 = 0
          call 1000
          r2 = *(u32 *)(r6 + 0)
          r3 = *(u32 *)(r6 + 4)
          r0 = 0
          r4 = r2
          r4 += 1
          if r4 > r3 goto out
          r0 = *(u8 *)(r2 + 0)
        out:
          exit`),
        helpers: { 1000: rewriteAndDetachOnSecondCall(bytes) },
      })
      const slots = new BpfMap({ type: 'prog_array', keySize: 4, valueSize: 4, maxEntries: 1 })
      slots.setProgram(0, target)
      // The caller: no helpers of its own, a tail call to slot 0 (77 if it were empty).
      const caller = new Program({
        engine,
        type: 'xdp',
        maps: [slots],
        instructions: assemble('r2 = map[0] ll\nr3 = 0\ncall 12\nr0 = 77\nexit'),
      })
      const { retvals, errors } = caller.runBatchRetvals({ bytes, lengths })
      expect(errors).toEqual([])
      expect(retvals).toEqual(Uint32Array.of(10, 20, 30, 40))
      expect(bytes.byteLength).toBe(0)
    })
  }
})
