/**
 * `PerfBuffer`: the consumer of a `perf_event_array` map, shaped like libbpf's `perf_buffer`. It
 * opens one ring per CPU (slot i holds CPU i's ring, up to the map's `max_entries`) of `pageCount`
 * pages; programs write into them with `bpf_perf_event_output`. A full ring drops samples and
 * counts them, as the kernel's does; the count arrives as a lost record before the next sample of
 * that ring (libbpf's `lost_cb`). Records are read with `consume()` (now), `poll()` (waiting off
 * the JavaScript thread), the async iterator, or the `onSample` / `onLost` callbacks.
 */
import { checkFunction, checkU32, describeValue, optionsObject } from './arguments.js'
import { fromNativeMapError, MapError } from './errors.js'
import { asBpfMap, type BpfMap, MAP_TYPES } from './map.js'
import type { native } from './native.js'

type NativePerfBuffer = ReturnType<InstanceType<typeof native.NativeMap>['perfOpen']>

/** One record of a perf buffer: a sample a program output, or the number of samples lost before it. */
export type PerfEvent = { type: 'sample'; cpu: number; data: Uint8Array } | { type: 'lost'; cpu: number; count: number }

export interface PerfBufferOptions {
  /** Pages of each CPU's ring (4096 bytes each), a power of two. Default 8, as bcc and most libbpf tools. */
  pageCount?: number
  /** Called with each sample, by `consume()`, `poll()` and the background reader. */
  onSample?: (cpu: number, data: Uint8Array) => void
  /** Called with the number of samples a CPU's ring dropped because it was full. */
  onLost?: (cpu: number, count: number) => void
  /**
   * With `onSample` or `onLost`: read in the background (waiting off the JavaScript thread) until
   * `close()`. Default true when a callback is given; false leaves reading to `poll()`/`consume()`.
   */
  autoPoll?: boolean
  /** Longest wait of one background poll, in ms (the reader notices `close()` within it). Default 100. */
  pollMs?: number
}

function call<T>(f: () => T, what?: string): T {
  try {
    return f()
  } catch (e) {
    throw fromNativeMapError(e, what)
  }
}

export class PerfBuffer implements AsyncIterable<PerfEvent> {
  readonly map: BpfMap
  readonly #native: NativePerfBuffer
  readonly #onSample: ((cpu: number, data: Uint8Array) => void) | undefined
  readonly #onLost: ((cpu: number, count: number) => void) | undefined
  readonly #pollMs: number
  #closed = false

  constructor(map: BpfMap, options: PerfBufferOptions = {}) {
    this.map = asBpfMap(map, 'map')
    const o = optionsObject<PerfBufferOptions>(MapError, 'PerfBuffer options', options)
    const pageCount = checkU32(MapError, 'pageCount', o.pageCount ?? 8)
    if (pageCount === 0 || (pageCount & (pageCount - 1)) !== 0)
      throw new MapError('EINVAL', `pageCount must be a power of two, got ${pageCount}`)
    if (o.onSample !== undefined) checkFunction(MapError, 'onSample', o.onSample)
    if (o.onLost !== undefined) checkFunction(MapError, 'onLost', o.onLost)
    if (o.autoPoll !== undefined && typeof o.autoPoll !== 'boolean')
      throw new MapError('EINVAL', `autoPoll must be a boolean, got ${describeValue(o.autoPoll)}`)
    this.#pollMs = checkU32(MapError, 'pollMs', o.pollMs ?? 100)
    if (this.map.type !== MAP_TYPES.perf_event_array)
      throw new MapError('EINVAL', `a PerfBuffer needs a perf_event_array map, got map type ${this.map.type}`)
    this.#onSample = o.onSample
    this.#onLost = o.onLost
    this.#native = call(() => this.map.native.perfOpen(pageCount), 'perf buffer')
    const hasCallback = o.onSample !== undefined || o.onLost !== undefined
    if (hasCallback && (o.autoPoll ?? true)) void this.#background()
  }

  /** Number of rings: one per CPU, up to the map's `max_entries`. */
  get cpuCount(): number {
    return this.#native.cpuCount
  }

  /** Samples dropped since the buffer opened, over every ring (reported by a lost record or not yet). */
  get lostTotal(): number {
    return this.#native.lostTotal
  }

  get closed(): boolean {
    return this.#closed
  }

  /** Every record so far, removed from the rings, oldest first per CPU (CPUs in order). */
  read(): PerfEvent[] {
    if (this.#closed) return []
    const { data, cpus, lengths, lost } = this.#native.drain()
    const out: PerfEvent[] = []
    let at = 0
    for (let i = 0; i < cpus.length; i++) {
      const cpu = cpus[i]!
      if (lost[i]! > 0) {
        out.push({ type: 'lost', cpu, count: lost[i]! })
        continue
      }
      const len = lengths[i]!
      out.push({ type: 'sample', cpu, data: new Uint8Array(data.buffer, data.byteOffset + at, len) })
      at += len
    }
    return out
  }

  /** Reads every record so far and hands each to `onSample` / `onLost` (libbpf's `perf_buffer__consume`); returns how many. */
  consume(): number {
    const events = this.read()
    for (const e of events) this.#deliver(e)
    return events.length
  }

  /**
   * Waits up to `timeoutMs` (off the JavaScript thread) for records, then consumes them (libbpf's
   * `perf_buffer__poll`); resolves to the number handled.
   */
  async poll(timeoutMs = 100): Promise<number> {
    const t = checkU32(MapError, 'timeoutMs', timeoutMs)
    if (this.#closed) return 0
    await this.#native.wait(t)
    return this.consume()
  }

  /** Records as they arrive, until `close()` or `signal` aborts; waiting happens off the JavaScript thread. */
  async *events(options: { signal?: AbortSignal } = {}): AsyncGenerator<PerfEvent> {
    const { signal } = optionsObject<{ signal?: AbortSignal }>(MapError, 'events options', options)
    if (signal !== undefined && !(signal instanceof AbortSignal))
      throw new MapError('EINVAL', `signal must be an AbortSignal, got ${describeValue(signal)}`)
    while (!this.#closed && !signal?.aborted) {
      for (const e of this.read()) yield e
      if (this.#closed || signal?.aborted) return
      await this.#native.wait(this.#pollMs)
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<PerfEvent> {
    return this.events()
  }

  /** Empties the map's slots (programs' outputs there become -ENOENT again); unread records are dropped. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#native.close()
  }

  [Symbol.dispose](): void {
    this.close()
  }

  #deliver(e: PerfEvent): void {
    if (e.type === 'sample') this.#onSample?.(e.cpu, e.data)
    else this.#onLost?.(e.cpu, e.count)
  }

  async #background(): Promise<void> {
    while (!this.#closed) {
      this.consume()
      if (this.#closed) return
      await this.#native.wait(this.#pollMs)
    }
  }
}
