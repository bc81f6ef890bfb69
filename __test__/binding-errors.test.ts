import { describe, expect, it } from 'vitest'
import { BpfMap, EbpfError, MapError } from '../ts/index'
import { native } from '../ts/native'

// The binding's one error channel: a thrown error carries its errno name as its `code` property
// (napi-rs sets it from the binding's error status), and its message is the engine's text alone;
// the TypeScript layer adds the `CODE: ` head its messages have always had.
describe('errors thrown by the binding', () => {
  it('carry the code as a property, not in the message', () => {
    let thrown: unknown
    try {
      native.NativeMap.fromId(0xffffffff)
    } catch (e) {
      thrown = e
    }
    expect(thrown).toBeInstanceOf(Error)
    expect(thrown).not.toBeInstanceOf(EbpfError)
    expect((thrown as { code?: unknown }).code).toBe('ENOENT')
    expect((thrown as Error).message).toBe('no map with id 4294967295')
  })

  it('become the library error classes with that code', () => {
    const m = new BpfMap({ type: 'hash', keySize: 4, valueSize: 4, maxEntries: 1 })
    m.update(Uint8Array.of(1, 0, 0, 0), Uint8Array.of(1, 0, 0, 0))
    let thrown: unknown
    try {
      m.update(Uint8Array.of(2, 0, 0, 0), Uint8Array.of(1, 0, 0, 0))
    } catch (e) {
      thrown = e
    }
    expect(thrown).toBeInstanceOf(MapError)
    expect((thrown as MapError).code).toBe('E2BIG')
    expect((thrown as MapError).message).toMatch(/^E2BIG: /)
  })
})
