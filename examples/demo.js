// `npm start` runs this after building: assemble a small program, run it on both engines, show what
// a trap looks like. Run it again with `node examples/demo.js`.
const { assemble, disassemble, Program, TrapError } = require('../dist')

// Sum the bytes of the input: r1 = data, r2 = length (the `raw` program type).
const sumBytes = assemble(`
    r0 = 0
    r3 = r1
    r3 += r2
loop:
    if r1 >= r3 goto done
    r4 = *(u8 *)(r1 + 0)
    r0 += r4
    r1 += 1
    goto loop
done:
    exit
`)

console.log('program:')
console.log(
  disassemble(sumBytes)
    .trimEnd()
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n'),
)

const data = Uint8Array.from({ length: 100 }, (_, i) => i + 1)
for (const engine of ['interpreter', 'jit']) {
  let prog
  try {
    prog = new Program({ type: 'raw', instructions: sumBytes, engine })
  } catch (e) {
    console.log(`${engine}: not available here (${e.code}: ${e.message})`)
    continue
  }
  const res = prog.run({ data, repeat: 1000 })
  console.log(
    `${engine}: sum of 1..100 = ${res.r0} in ${res.insnCount} instructions, ${res.durationNs.toFixed(0)} ns per run`,
  )
}

// A program that never ends is stopped by its instruction budget, with a typed error.
const spin = new Program({ instructions: assemble('spin:\n  goto spin\n  exit'), budget: 100000 })
try {
  spin.run()
} catch (e) {
  if (!(e instanceof TrapError)) throw e
  console.log(`runaway program stopped: ${e.code} ${e.kind} at instruction ${e.insn} after ${e.insnCount} instructions`)
}
