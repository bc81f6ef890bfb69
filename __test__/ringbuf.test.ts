import { describe, expect, it } from 'vitest'
import { assemble, BpfMap, MapError, Program } from '../ts/index'

// Writes one 8-byte record holding the first 8 bytes of the input with bpf_ringbuf_output (130).
const OUTPUT = assemble(`
    r2 = *(u64 *)(r1 + 0)
    *(u64 *)(r10 - 8) = r2
    r1 = map[0] ll
    r2 = r10
    r2 += -8
    r3 = 8
    r4 = 0
    call 130
    exit
`)

const record = (n: number) => {
  const b = new Uint8Array(8)
  new DataView(b.buffer).setUint32(0, n, true)
  return b
}

describe('ring buffer records in JavaScript', () => {
  for (const engine of ['interpreter', 'jit'] as const) {
    it(`${engine}: an async iterator gets the records in order`, async () => {
      const ring = new BpfMap({ type: 'ringbuf', keySize: 0, valueSize: 0, maxEntries: 4096 })
      const prog = new Program({ instructions: OUTPUT, maps: [ring], engine })
      for (let n = 1; n <= 3; n++) expect(prog.run({ data: record(n) }).r0).toBe(0n)
      const got: Uint8Array[] = []
      const controller = new AbortController()
      // A record committed while the reader waits is delivered too.
      setTimeout(() => prog.run({ data: record(4) }), 50)
      for await (const r of ring.records({ signal: controller.signal, pollMs: 20 })) {
        got.push(r)
        if (got.length === 4) controller.abort()
      }
      expect(got).toEqual([record(1), record(2), record(3), record(4)])
      expect(ring.drainRecords()).toEqual([])
    })
  }

  it('a callback gets each record; a full ring makes bpf_ringbuf_output return -EAGAIN, as in the kernel', async () => {
    // 4096-byte ring, records of 8 header + 8 data bytes: the kernel refuses a reservation once
    // new_prod - cons > size - 1, so 255 fit (the 256th would reach 4096).
    const ring = new BpfMap({ type: 'ringbuf', keySize: 0, valueSize: 0, maxEntries: 4096 })
    const prog = new Program({ instructions: OUTPUT, maps: [ring] })
    let accepted = 0
    let refusal: bigint | undefined
    for (let n = 0; n < 300; n++) {
      const r0 = prog.run({ data: record(n) }).r0
      if (r0 === 0n) accepted++
      else refusal ??= BigInt.asIntN(64, r0)
    }
    expect(accepted).toBe(255)
    // The kernel's bpf_ringbuf_output returns -EAGAIN (-11) when the record does not fit.
    expect(refusal).toBe(-11n)
    const seen: number[] = []
    await new Promise<void>((resolve) => {
      const stop = ring.onRecord(
        (r) => {
          seen.push(new DataView(r.buffer, r.byteOffset).getUint32(0, true))
          if (seen.length === 255) {
            stop()
            resolve()
          }
        },
        { pollMs: 20 },
      )
    })
    expect(seen).toEqual(Array.from({ length: 255 }, (_, i) => i))
  })

  it('ring buffer calls on other map types are refused', () => {
    const m = new BpfMap({ type: 'array', keySize: 4, valueSize: 4, maxEntries: 1 })
    expect(() => m.drainRecords()).toThrow(MapError)
  })
})
