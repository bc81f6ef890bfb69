import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { Worker } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'
import { assemble, BpfMap, type MapArrayView, MapError, Program } from '../ts/index'

const u32 = (n: number) => Uint8Array.from([n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24])
const u64 = (n: bigint) => {
  const b = new Uint8Array(8)
  new DataView(b.buffer).setBigUint64(0, n, true)
  return b
}

describe('BpfMap from JavaScript', () => {
  it('hash: update flags, lookup, delete, iteration', () => {
    const m = new BpfMap({ type: 'hash', keySize: 4, valueSize: 8, maxEntries: 2 })
    m.update(1, 10n)
    m.update(2, 20n, 'noexist')
    expect(m.lookup(1)).toEqual(u64(10n))
    expect(m.lookup(3)).toBeUndefined()
    expect(m.size).toBe(2)
    expect(() => m.update(1, 11n, 'noexist')).toThrow(expect.objectContaining({ code: 'EEXIST' }))
    expect(() => m.update(3, 30n, 'exist')).toThrow(expect.objectContaining({ code: 'ENOENT' }))
    // Full: a third key does not fit (the kernel's E2BIG).
    expect(() => m.update(3, 30n)).toThrow(expect.objectContaining({ code: 'E2BIG' }))
    m.update(1, 12n, 'exist')
    expect(m.lookup(1)).toEqual(u64(12n))
    expect(new Set(Array.from(m.keys(), (k) => (k as Uint8Array)[0]))).toEqual(new Set([1, 2]))
    expect(m.delete(2)).toBe(true)
    expect(m.delete(2)).toBe(false)
    expect([...m.entries()]).toEqual([[u32(1), u64(12n)]])
  })

  it('array: fixed keys, iteration in index order, no delete', () => {
    const m = new BpfMap({ type: 'array', keySize: 4, valueSize: 4, maxEntries: 3 })
    expect(Array.from(m.keys())).toEqual([u32(0), u32(1), u32(2)])
    expect(m.lookup(2)).toEqual(u32(0))
    m.update(2, Uint8Array.of(9, 0, 0, 0))
    expect(m.lookup(2)).toEqual(u32(9))
    expect(() => m.update(3, u32(1))).toThrow(expect.objectContaining({ code: 'E2BIG' }))
    expect(() => m.delete(0)).toThrow(expect.objectContaining({ code: 'EINVAL' }))
    expect(() => m.update(0, u32(1), 'noexist')).toThrow(expect.objectContaining({ code: 'EEXIST' }))
  })

  it('rejects wrong sizes, bad definitions and unknown flags with MapError', () => {
    const m = new BpfMap({ type: 'hash', keySize: 4, valueSize: 8, maxEntries: 2 })
    expect(() => m.update(Uint8Array.of(1, 2), u64(1n))).toThrow(MapError)
    expect(() => m.update(Uint8Array.of(1, 2), u64(1n))).toThrow(/key of 2 bytes/)
    expect(() => m.update(1, Uint8Array.of(1))).toThrow(expect.objectContaining({ code: 'EINVAL' }))
    expect(() => new BpfMap({ type: 'hash', keySize: 0, valueSize: 8, maxEntries: 1 })).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    )
    expect(() => new BpfMap({ type: 'nope' as 'hash', keySize: 4, valueSize: 4, maxEntries: 1 })).toThrow(MapError)
    expect(() => m.update(1, 1n, 'sometimes' as 'any')).toThrow(MapError)
  })

  it('spinLockOffset: copies from JavaScript leave the lock word alone (the kernel masks it), hash and array only', () => {
    // The kernel copies a value around its special fields and zeroes them in what a lookup
    // returns (copy_map_value, check_and_init_map_value): the lock word reads 0 whatever was written.
    const m = new BpfMap({ type: 'array', keySize: 4, valueSize: 8, maxEntries: 1, spinLockOffset: 0 })
    m.update(0, Uint8Array.of(0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4))
    expect([...(m.lookup(0) as Uint8Array)]).toEqual([0, 0, 0, 0, 1, 2, 3, 4])
    const def = { type: 'hash' as const, keySize: 4, valueSize: 8, maxEntries: 1 }
    expect(() => new BpfMap({ ...def, spinLockOffset: 2 })).toThrow(expect.objectContaining({ code: 'EINVAL' }))
    expect(() => new BpfMap({ ...def, spinLockOffset: 8 })).toThrow(/inside the 8-byte value/)
    expect(() => new BpfMap({ ...def, type: 'lru_hash', spinLockOffset: 0 })).toThrow(
      expect.objectContaining({ code: 'ENOTSUPP' }),
    )
  })

  it('queue and stack order, bloom filter membership', () => {
    const q = new BpfMap({ type: 'queue', keySize: 0, valueSize: 4, maxEntries: 2 })
    q.push(u32(1))
    q.push(u32(2))
    expect(() => q.push(u32(3))).toThrow(expect.objectContaining({ code: 'E2BIG' }))
    expect(q.peek()).toEqual(u32(1))
    expect(q.pop()).toEqual(u32(1))
    expect(q.pop()).toEqual(u32(2))
    expect(q.pop()).toBeUndefined()
    const s = new BpfMap({ type: 'stack', keySize: 0, valueSize: 4, maxEntries: 2 })
    s.push(u32(1))
    s.push(u32(2))
    expect(s.pop()).toEqual(u32(2))
    const b = new BpfMap({ type: 'bloom_filter', keySize: 0, valueSize: 4, maxEntries: 100 })
    b.push(u32(42))
    expect(b.mayContain(u32(42))).toBe(true)
  })

  it('batches', () => {
    const m = new BpfMap({ type: 'hash', keySize: 4, valueSize: 4, maxEntries: 10 })
    expect(m.updateBatch([1, 2, 3].map((k) => [u32(k), u32(k * 10)] as [Uint8Array, Uint8Array]))).toBe(3)
    const first = m.lookupBatch({ max: 2 })
    expect(first.entries.length).toBe(2)
    const rest = m.lookupBatch({ cursor: first.next, max: 10 })
    const all = [...first.entries, ...rest.entries].map(([k, v]) => [(k as Uint8Array)[0], (v as Uint8Array)[0]])
    expect(all.sort()).toEqual([
      [1, 10],
      [2, 20],
      [3, 30],
    ])
    expect(m.deleteBatch([u32(1), u32(2)])).toBe(2)
    expect(() => m.deleteBatch([u32(3), u32(9)])).toThrow(/after 1 deletes/)
    expect(m.size).toBe(0)
  })

  it('a deleting batch returns every key it removes exactly once while a worker deletes the same keys', async () => {
    const n = 20_000
    const m = new BpfMap({ type: 'hash', keySize: 4, valueSize: 4, maxEntries: n })
    // Big-endian keys: the map's order (byte order) is numeric order, the worker's order.
    const be = (k: number) => {
      const b = new Uint8Array(4)
      new DataView(b.buffer).setUint32(0, k, false)
      return b
    }
    for (let k = 0; k < n; k++) m.update(be(k), u32(k))
    const pin = `/test/batch-delete-${m.id}`
    m.pin(pin)
    // The worker is ready (slot 1) before this thread lets it start (slot 0), so both run at once.
    const start = new SharedArrayBuffer(8)
    const signal = new Int32Array(start)
    const worker = new Worker(new URL('./workers/delete-keys.cjs', import.meta.url), { workerData: { pin, n, start } })
    const done = new Promise<number[]>((resolve, reject) => {
      worker.on('message', (msg) => resolve(msg as number[]))
      worker.on('error', reject)
    })
    while (Atomics.load(signal, 1) === 0) await new Promise((r) => setTimeout(r, 1))
    Atomics.store(signal, 0, 1)
    Atomics.notify(signal, 0)
    // Both walk the keys upwards: a batch continues after its last key, which is where the worker is.
    const returned: number[] = []
    let cursor: Uint8Array | undefined
    do {
      const b = m.lookupBatch({ cursor, max: 8, delete: true })
      for (const [k, v] of b.entries) {
        const key = new DataView((k as Uint8Array).buffer, (k as Uint8Array).byteOffset).getUint32(0, false)
        expect(v).toEqual(u32(key))
        returned.push(key)
      }
      cursor = b.next
    } while (cursor !== undefined)
    const deleted = await done
    const all = [...returned, ...deleted].sort((a, b) => a - b)
    expect(new Set(returned).size).toBe(returned.length)
    expect(all.length).toBe(n)
    expect(all).toEqual(Array.from({ length: n }, (_, i) => i))
    expect(m.size).toBe(0)
  })

  it('is found by id and by pin path, and a pin path is taken once', () => {
    const m = new BpfMap({ type: 'array', keySize: 4, valueSize: 4, maxEntries: 1 })
    m.update(0, u32(7))
    expect(BpfMap.fromId(m.id).lookup(0)).toEqual(u32(7))
    m.pin(`/test/map-${m.id}`)
    expect(BpfMap.fromPinned(`/test/map-${m.id}`).lookup(0)).toEqual(u32(7))
    expect(() => m.pin(`/test/map-${m.id}`)).toThrow(expect.objectContaining({ code: 'EEXIST' }))
    expect(() => BpfMap.fromPinned('/test/never')).toThrow(expect.objectContaining({ code: 'ENOENT' }))
  })
})

// Adds 1 to the u64 value at key 0 of maps[0] with an atomic instruction.
const ATOMIC_INC = assemble(`
    *(u32 *)(r10 - 4) = 0
    r1 = map[0] ll
    r2 = r10
    r2 += -4
    call 1
    if r0 == 0 goto out
    r1 = 1
    lock *(u64 *)(r0 + 0) += r1
  out:
    r0 = 0
    exit
  `)

describe('zero-copy array view', () => {
  it('shares memory with the map, programs and other views, and keeps the map alive', () => {
    const m = new BpfMap({ type: 'array', keySize: 4, valueSize: 8, maxEntries: 4 })
    expect(m.valueStride).toBe(8)
    const view = new BigUint64Array(m.arrayView())
    expect(view.length).toBe(4)
    view[2] = 99n
    expect(m.lookup(2)).toEqual(u64(99n))
    m.update(3, u64(7n))
    expect(view[3]).toBe(7n)
    // A program's atomic add on value 0 is seen through the view without a copy.
    new Program({ instructions: ATOMIC_INC, maps: [m] }).run({ repeat: 3 })
    expect(view[0]).toBe(3n)
    const again = new BigUint64Array(m.arrayView())
    again[1] = 5n
    expect(view[1]).toBe(5n)
  })

  it('pads values to 8 bytes and refuses frozen maps and other types', () => {
    const m = new BpfMap({ type: 'array', keySize: 4, valueSize: 4, maxEntries: 2 })
    const words = new Uint32Array(m.arrayView())
    words[2] = 0xabcd
    expect(m.lookup(1)).toEqual(u32(0xabcd))
    expect(() => m.freeze()).toThrow(expect.objectContaining({ code: 'EBUSY' }))
    ;(words.buffer as MapArrayView).release()
    m.freeze()
    expect(() => m.arrayView()).toThrow(expect.objectContaining({ code: 'EPERM' }))
    // Freezing again is EPERM, as `bpftool map freeze` twice on Linux 6.18.
    expect(() => m.freeze()).toThrow(expect.objectContaining({ code: 'EPERM', name: 'MapError' }))
    const h = new BpfMap({ type: 'hash', keySize: 4, valueSize: 4, maxEntries: 2 })
    expect(() => h.arrayView()).toThrow(expect.objectContaining({ code: 'EINVAL' }))
  })

  it('freeze is EBUSY while a writable view is held (as the kernel with a writable mmap)', () => {
    const m = new BpfMap({ type: 'array', keySize: 4, valueSize: 8, maxEntries: 2 })
    const a = m.arrayView()
    const b = m.arrayView()
    const words = new BigUint64Array(a)
    words[0] = 7n
    expect(() => m.freeze()).toThrow(expect.objectContaining({ code: 'EBUSY', name: 'MapError' }))
    expect(m.frozen).toBe(false)
    // Releasing detaches the buffer: nothing can write through it any more.
    a.release()
    a.release()
    expect(a.byteLength).toBe(0)
    expect(words.length).toBe(0)
    words[0] = 9n
    expect(m.lookup(0)).toEqual(u64(7n))
    // One view (b) is still held.
    expect(() => m.freeze()).toThrow(expect.objectContaining({ code: 'EBUSY' }))
    {
      using _held = b
    }
    expect(b.byteLength).toBe(0)
    m.freeze()
    expect(m.frozen).toBe(true)
    expect(() => m.update(0, u64(1n))).toThrow(expect.objectContaining({ code: 'EPERM' }))
    expect(m.lookup(0)).toEqual(u64(7n))
  })

  it('a view that is garbage collected no longer blocks freeze', async () => {
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as () => void
    const m = new BpfMap({ type: 'array', keySize: 4, valueSize: 8, maxEntries: 2 })
    ;(() => {
      new BigUint64Array(m.arrayView())[1] = 3n
    })()
    expect(() => m.freeze()).toThrow(expect.objectContaining({ code: 'EBUSY' }))
    // Collection and the buffer's finaliser are asynchronous: a bounded number of rounds.
    let rounds = 0
    while (!m.frozen && rounds < 50) {
      gc()
      await new Promise((r) => setImmediate(r))
      try {
        m.freeze()
      } catch (e) {
        expect(e).toMatchObject({ code: 'EBUSY' })
      }
      rounds++
    }
    expect(m.frozen).toBe(true)
    expect(m.lookup(1)).toEqual(u64(3n))
  })
})

describe('maps used by programs', () => {
  for (const engine of ['interpreter', 'jit'] as const) {
    it(`${engine}: a program's map updates are seen from JavaScript`, () => {
      const m = new BpfMap({ type: 'array', keySize: 4, valueSize: 8, maxEntries: 1 })
      const prog = new Program({ instructions: ATOMIC_INC, maps: [m], engine })
      prog.run({ repeat: 5 })
      expect(m.lookup(0)).toEqual(u64(5n))
    })

    it(`${engine}: several worker threads increment one value atomically and get the exact total`, async () => {
      const m = new BpfMap({ type: 'array', keySize: 4, valueSize: 8, maxEntries: 1 })
      const pin = `/test/atomic-${engine}-${m.id}`
      m.pin(pin)
      const workers = 4
      const repeat = 20_000
      await Promise.all(
        Array.from(
          { length: workers },
          () =>
            new Promise<void>((resolve, reject) => {
              const w = new Worker(new URL('./workers/atomic-add.cjs', import.meta.url), {
                workerData: { pin, bytecode: Array.from(ATOMIC_INC), repeat, engine },
              })
              w.on('message', () => resolve())
              w.on('error', reject)
            }),
        ),
      )
      expect(m.lookup(0)).toEqual(u64(BigInt(workers * repeat)))
    })
  }

  it('refuses a program whose map index is out of range', () => {
    expect(() => new Program({ instructions: ATOMIC_INC, maps: [] })).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    )
  })
})
