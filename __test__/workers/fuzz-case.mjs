// Worker of the long fuzz runs (__test__/helpers/fuzz-runner.ts): runs one input at a time through
// the built package, so that the runner can time each case out and stop a case that hangs.
import { createRequire } from 'node:module'
import { parentPort } from 'node:worker_threads'
import { exerciseAsm, exerciseBtf, exerciseDisasm, exerciseElf } from '../helpers/fuzz-exercise.mjs'

const require = createRequire(import.meta.url)
const lib = require('../../dist')
const exercises = { btf: exerciseBtf, asm: exerciseAsm, disasm: exerciseDisasm, elf: exerciseElf }
let coreTarget

parentPort.on('message', ({ id, kind, input, core }) => {
  try {
    if (core && !coreTarget) coreTarget = lib.btf.parse(core)
    parentPort.postMessage({ id, outcome: exercises[kind](lib, input, coreTarget) })
  } catch (e) {
    parentPort.postMessage({ id, failure: String(e?.message ?? e) })
  }
})
