/**
 * Bounded mutation run over every fixture: truncations and seeded random byte changes (biased
 * towards the ELF header, section headers, symbols, relocations, .BTF and .BTF.ext). Every input
 * must either load or fail with an EbpfError carrying a code and a message: never a RangeError,
 * TypeError, stack overflow or hang. Whatever loads is also dumped, declared and decoded
 * (helpers/fuzz-exercise.mjs: exerciseElf). With EBPF_FUZZ_LONG=1 the fixtures share
 * EBPF_FUZZ_SECONDS and every case runs in a worker with a time limit (helpers/fuzz-runner.ts).
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { readElf } from '../ts/binary/elf.js'
import { fuzz, fuzzTimeoutMs, LONG, LONG_SECONDS } from './helpers/fuzz-runner.js'
import { seedOf } from './helpers/random.js'

const dir = join(__dirname, 'fixtures')
const coreTarget = new Uint8Array(readFileSync(join(dir, 'core_target.bpf.o')))
const objects = readdirSync(dir).filter((f) => f.endsWith('.bpf.o'))
const MUTATIONS_PER_FIXTURE = Number(process.env.EBPF_MUTATIONS ?? 300)
/** Change EBPF_MUTATION_SEED (and EBPF_MUTATIONS) for a longer or different run; EBPF_FUZZ_LONG=1 runs by time. */
const SEED = Number(process.env.EBPF_MUTATION_SEED ?? 7)

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
    it(
      f,
      async () => {
        const original = new Uint8Array(readFileSync(join(dir, f)))
        const hot = hotRanges(original)
        // Truncations first: every section boundary and 64 evenly spaced lengths.
        const cuts = new Set<number>([0, 1, 3, 4, 5, 16, 63, 64, 65])
        for (const s of readElf(original).sections) for (const d of [-1, 0, 1]) cuts.add(s.offset + d)
        for (let i = 0; i < 64; i++) cuts.add(Math.floor((original.length * i) / 64))
        const truncations = [...cuts].filter((n) => n >= 0 && n < original.length)
        const stats = await fuzz(
          `elf ${f}`,
          'elf',
          truncations.length + MUTATIONS_PER_FIXTURE,
          (random, i) => {
            if (i < truncations.length) return original.slice(0, truncations[i])
            const bytes = original.slice()
            const changes = 1 + Math.floor(random.float() * 4)
            for (let c = 0; c < changes; c++) {
              let pos: number
              if (random.float() < 0.75) {
                const [start, len] = hot[Math.floor(random.float() * hot.length)]!
                pos = start + Math.floor(random.float() * len)
              } else pos = Math.floor(random.float() * bytes.length)
              if (pos >= bytes.length) continue
              const how = random.float()
              bytes[pos] =
                how < 0.3
                  ? Math.floor(random.float() * 256)
                  : how < 0.45
                    ? 0
                    : how < 0.6
                      ? 0xff
                      : bytes[pos]! ^ (1 << Math.floor(random.float() * 8))
            }
            return bytes
          },
          { seed: seedOf(f, SEED), core: coreTarget, seconds: LONG_SECONDS / objects.length },
        )
        if (!LONG) expect(stats.cases).toBe(truncations.length + MUTATIONS_PER_FIXTURE)
      },
      fuzzTimeoutMs(120_000),
    )
  }
})
