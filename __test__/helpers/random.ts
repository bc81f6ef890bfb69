/**
 * The seeded generator of the TypeScript suites: xorshift32 (shifts 13, 17, 5), so that a failure
 * names a seed that reproduces it. The stream for a seed is the same as the inline copies the
 * suites used before, so their cases are unchanged.
 */
export class Random {
  #x: number

  constructor(seed: number) {
    this.#x = seed >>> 0 || 1
  }

  /** The next 32-bit value. */
  u32(): number {
    let x = this.#x
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    this.#x = x >>> 0
    return this.#x
  }

  /** An integer in [0, n). */
  below(n: number): number {
    return this.u32() % n
  }

  /** A float in [0, 1). */
  float(): number {
    return this.u32() / 0x100000000
  }

  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)]!
  }

  bytes(n: number): Uint8Array {
    return Uint8Array.from({ length: n }, () => this.u32() & 0xff)
  }
}

/** A seed derived from a name, so that each fixture or target has its own stream. */
export function seedOf(name: string, base: number): number {
  return [...name].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, base)
}
