/**
 * Bounded mutation run over every fixture: truncations and seeded random byte changes (biased
 * towards the ELF header, section headers, symbols, relocations, .BTF and .BTF.ext). Every input
 * must either load or fail with an EbpfError carrying a code and a message: never a RangeError,
 * TypeError, stack overflow or hang. Whatever loads is also dumped, declared and decoded.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Btf } from '../ts/btf/btf.js'
import { codec } from '../ts/btf/codec.js'
import { readElf } from '../ts/elf/reader.js'
import { EbpfError } from '../ts/errors.js'
import { loadCollectionSpecSync } from '../ts/spec.js'

const dir = join(__dirname, 'fixtures')
const coreTarget = Btf.parse(readFileSync(join(dir, 'core_target.bpf.o')))
const objects = readdirSync(dir).filter((f) => f.endsWith('.bpf.o'))
const MUTATIONS_PER_FIXTURE = Number(process.env.EBPF_MUTATIONS ?? 300)
/** Change EBPF_MUTATION_SEED (and EBPF_MUTATIONS) for a longer or different run. */
const SEED = Number(process.env.EBPF_MUTATION_SEED ?? 7)
const ALLOWED = new Set(['EINVAL', 'ENOTSUPP', 'ENOENT', 'E2BIG'])

/** xorshift32: a fixed seed per fixture keeps the run reproducible. */
function rng(seed: number): () => number {
  let x = seed || 1
  return () => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x / 0x100000000
  }
}

/** Everything a user could do with a parsed object; each step may throw, but only EbpfErrors. */
function exercise(bytes: Uint8Array): void {
  for (const step of [
    () => {
      const b = Btf.parse(bytes)
      b.dump({ format: 'raw' })
      b.dump({ format: 'c' })
    },
    () => Btf.parse(bytes, { fixup: true }).dump({ format: 'raw' }),
    // CO-RE relocation against a small stand-in kernel BTF, and kconfig values.
    () => loadCollectionSpecSync(bytes, { kernelTypes: coreTarget, kconfig: { LINUX_KERNEL_VERSION: 1 } }),
    () => {
      const spec = loadCollectionSpecSync(bytes)
      spec.types.dump({ format: 'c' })
      spec.declarations()
      for (const v of spec.variables.values()) v.set(v.get())
      for (const m of spec.maps.values()) {
        for (const t of [m.key, m.value]) if (t) codec(spec.types, t.id).decode(new Uint8Array(1 << 16))
      }
    },
  ]) {
    try {
      step()
    } catch (e) {
      if (!(e instanceof EbpfError) || !ALLOWED.has(e.code) || e.message.length < 10) {
        throw new Error(
          `unexpected ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}\n${(e as Error)?.stack}`,
        )
      }
    }
  }
}

/** Byte ranges worth hitting: header, section header table, and the structured sections. */
function hotRanges(bytes: Uint8Array): Array<[number, number]> {
  const ranges: Array<[number, number]> = [[0, 64]]
  const elf = readElf(bytes)
  const shoff = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(40, true))
  ranges.push([shoff, elf.sections.length * 64])
  for (const s of elf.sections) {
    if (['.BTF', '.BTF.ext', '.symtab', '.maps', 'maps', 'license', 'version'].includes(s.name) || s.type === 9) {
      if (s.size > 0) ranges.push([s.offset, s.size])
    }
    if ((s.flags & 4) !== 0 && s.size > 0) ranges.push([s.offset, s.size])
  }
  return ranges
}

describe('bounded mutation run', () => {
  for (const f of objects) {
    it(f, () => {
      const original = new Uint8Array(readFileSync(join(dir, f)))
      const random = rng([...f].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, SEED))
      const hot = hotRanges(original)
      let failures = 0
      let loads = 0
      // Truncations: every section boundary and 64 evenly spaced lengths.
      const cuts = new Set<number>([0, 1, 3, 4, 5, 16, 63, 64, 65])
      for (const s of readElf(original).sections) for (const d of [-1, 0, 1]) cuts.add(s.offset + d)
      for (let i = 0; i < 64; i++) cuts.add(Math.floor((original.length * i) / 64))
      for (const n of cuts) {
        if (n < 0 || n >= original.length) continue
        exercise(original.slice(0, n))
      }
      for (let k = 0; k < MUTATIONS_PER_FIXTURE; k++) {
        const bytes = original.slice()
        const changes = 1 + Math.floor(random() * 4)
        for (let c = 0; c < changes; c++) {
          let pos: number
          if (random() < 0.75) {
            const [start, len] = hot[Math.floor(random() * hot.length)]!
            pos = start + Math.floor(random() * len)
          } else pos = Math.floor(random() * bytes.length)
          if (pos >= bytes.length) continue
          const how = random()
          bytes[pos] =
            how < 0.3
              ? Math.floor(random() * 256)
              : how < 0.45
                ? 0
                : how < 0.6
                  ? 0xff
                  : bytes[pos]! ^ (1 << Math.floor(random() * 8))
        }
        try {
          exercise(bytes)
          loads++
        } catch (e) {
          failures++
          throw e
        }
      }
      expect(failures).toBe(0)
      expect(loads).toBe(MUTATIONS_PER_FIXTURE)
    })
  }
})
