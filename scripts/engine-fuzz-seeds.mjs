// Writes the programs of the bpf_conformance suite ($BPF_CONFORMANCE_DIR/*.data), assembled by
// our assembler, as DIR/<name>.bin: seeds that crates/ebpf-vm/tests/fuzz_engines.rs mutates
// (EBPF_FUZZ_SEED_DIR). Needs the built package (`npm run build:ts`).
// Usage: node scripts/engine-fuzz-seeds.mjs DIR
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { assemble } from '../dist/index.js'

const [dir] = process.argv.slice(2)
if (!dir) {
  console.error('usage: BPF_CONFORMANCE_DIR=... node scripts/engine-fuzz-seeds.mjs DIR')
  process.exit(2)
}
mkdirSync(dir, { recursive: true })
const tests = process.env.BPF_CONFORMANCE_DIR
if (!tests) {
  console.log('engine fuzz seeds: BPF_CONFORMANCE_DIR is not set, only the fixture objects are mutated')
  process.exit(0)
}
let written = 0
let skipped = 0
for (const name of readdirSync(tests).filter((n) => n.endsWith('.data')).sort()) {
  const text = readFileSync(join(tests, name), 'utf8')
  const asm = /^-- asm\s*\n([\s\S]*?)(?=^-- |(?![\s\S]))/m.exec(text)
  if (!asm) {
    skipped++
    continue
  }
  try {
    writeFileSync(join(dir, name.replace(/\.data$/, '.bin')), assemble(asm[1]))
    written++
  } catch {
    // A program our assembler refuses is no seed.
    skipped++
  }
}
console.log(`engine fuzz seeds: ${written} conformance programs in ${dir} (${skipped} skipped)`)
